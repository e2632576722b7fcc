// SPDX-License-Identifier: GPL-2.0

//! Files, inodes and file systems.
//!
//! C headers: [`include/linux/fs.h`](srctree/include/linux/fs.h) and
//! [`include/linux/file.h`](srctree/include/linux/file.h)

use crate::{
    bindings,
    error::{code::*, from_err_ptr, Result},
    ffi::c_int,
    str::CStr,
    types::{AlwaysRefCounted, Opaque},
};
use core::ptr::NonNull;

pub mod pseudo;

/// Flags of a [`File`], as in `open(2)`.
pub mod flags {
    use crate::bindings;

    /// Bitmask for the access mode flags.
    pub const O_ACCMODE: u32 = bindings::O_ACCMODE;

    /// The file is read only.
    pub const O_RDONLY: u32 = bindings::O_RDONLY;

    /// The file is write only.
    pub const O_WRONLY: u32 = bindings::O_WRONLY;

    /// The file can be both read and written.
    pub const O_RDWR: u32 = bindings::O_RDWR;

    /// The file is using nonblocking I/O.
    pub const O_NONBLOCK: u32 = bindings::O_NONBLOCK;
}

/// An open file, the kernel's `struct file`.
///
/// A file is what a file descriptor refers to; several file descriptors, in one process or in
/// many, may refer to the same file.
///
/// # Invariants
///
/// Instances are always refcounted through `f_count`: a `&File` is only valid while a reference
/// is held by someone, and an [`ARef<File>`](crate::types::ARef) owns one.
#[repr(transparent)]
pub struct File(Opaque<bindings::file>);

// SAFETY: A `struct file` may be used and released from any thread: the last `fput()` defers the
// final release to task work or to a workqueue.
unsafe impl Send for File {}

// SAFETY: The methods of `File` only read fields that do not change once the file is open, or
// read them with `READ_ONCE()` semantics.
unsafe impl Sync for File {}

// SAFETY: The type invariants guarantee that `File` is always refcounted through `f_count`.
unsafe impl AlwaysRefCounted for File {
    fn inc_ref(&self) {
        // SAFETY: The existence of a shared reference means that the refcount is nonzero.
        unsafe { bindings::get_file(self.as_ptr()) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The caller passes us ownership of a reference, which we may drop. The cast is
        // fine because `File` is a transparent wrapper of `struct file`.
        unsafe { bindings::fput(obj.cast().as_ptr()) }
    }
}

impl File {
    /// Returns a raw pointer to the inner C struct.
    #[inline]
    pub fn as_ptr(&self) -> *mut bindings::file {
        self.0.get()
    }

    /// Returns the flags of the file, a combination of the constants in [`flags`].
    #[inline]
    pub fn flags(&self) -> u32 {
        // This `read_volatile` is intended to correspond to a READ_ONCE call: `fcntl(F_SETFL)`
        // may change some of the flags while we look.
        //
        // SAFETY: The file is valid because the shared reference guarantees a nonzero refcount.
        unsafe { core::ptr::addr_of!((*self.as_ptr()).f_flags).read_volatile() }
    }

    /// Returns the inode of the file.
    #[inline]
    pub fn inode(&self) -> &Inode {
        // SAFETY: The file is valid because the shared reference guarantees a nonzero refcount.
        let inode = unsafe { bindings::file_inode(self.as_ptr()) };

        // SAFETY: An open file holds a reference to its inode, so the inode lives at least as
        // long as the shared reference to the file.
        unsafe { Inode::from_raw(inode) }
    }

    /// Writes the path of the file into `buf`, as `readlink` on `/proc/self/fd/N` shows it.
    ///
    /// Files of a pseudo filesystem have no path, and show the name that the filesystem's
    /// [`PseudoFs::dname`](pseudo::PseudoFs::dname) makes instead.
    pub fn path<'a>(&self, buf: &'a mut [u8]) -> Result<&'a CStr> {
        let len = c_int::try_from(buf.len())?;

        // SAFETY: The file is valid because the shared reference guarantees a nonzero refcount,
        // and its `f_path` does not change while it is open; `buf` is valid for writes of `len`
        // bytes.
        let path = unsafe {
            bindings::d_path(
                core::ptr::addr_of!((*self.as_ptr()).f_path),
                buf.as_mut_ptr().cast(),
                len,
            )
        };
        let path = from_err_ptr(path)?;

        // SAFETY: On success, `d_path()` returns a pointer into `buf` to a NUL-terminated string
        // that ends within `buf`, so it is valid for as long as `buf` is borrowed.
        Ok(unsafe { CStr::from_char_ptr(path) })
    }
}

/// An inode, the kernel's `struct inode`.
///
/// # Invariants
///
/// A `&Inode` only exists while something holds a reference to the inode: an open file on it, a
/// dentry, or the owner of a new inode.
#[repr(transparent)]
pub struct Inode(Opaque<bindings::inode>);

// SAFETY: The methods of `Inode` only read fields with the synchronization that C requires for
// them, so they may be called from any thread.
unsafe impl Sync for Inode {}

impl Inode {
    /// Creates a reference to an [`Inode`] from a valid pointer.
    ///
    /// # Safety
    ///
    /// `ptr` must point at a valid inode that something holds a reference to for the duration of
    /// `'a`.
    #[inline]
    pub unsafe fn from_raw<'a>(ptr: *const bindings::inode) -> &'a Inode {
        // SAFETY: The caller guarantees that the pointer is valid for `'a`. The cast is fine
        // because `Inode` is a transparent wrapper of `struct inode`.
        unsafe { &*ptr.cast() }
    }

    /// Returns a raw pointer to the inner C struct.
    #[inline]
    pub fn as_ptr(&self) -> *mut bindings::inode {
        self.0.get()
    }

    /// Returns the inode number, `st_ino` in `stat(2)`.
    #[inline]
    pub fn ino(&self) -> u64 {
        // SAFETY: The inode is valid by the type invariants; `i_ino` is set before the inode is
        // published.
        let ino = unsafe { (*self.as_ptr()).i_ino };

        // `unsigned long` has at most 64 bits.
        ino as u64
    }

    /// Returns the size in bytes, `st_size` in `stat(2)`.
    #[inline]
    pub fn size(&self) -> i64 {
        // SAFETY: The inode is valid by the type invariants.
        unsafe { bindings::i_size_read(self.as_ptr()) }
    }

    /// Returns the number of bytes in use, `st_blocks * 512` in `stat(2)`.
    #[inline]
    pub fn bytes(&self) -> i64 {
        // SAFETY: The inode is valid by the type invariants; `inode_get_bytes()` takes `i_lock`.
        unsafe { bindings::inode_get_bytes(self.as_ptr()) }
    }

    /// Returns the file type and permission bits, `st_mode` in `stat(2)`.
    #[inline]
    pub fn mode(&self) -> u16 {
        // SAFETY: The inode is valid by the type invariants; `i_mode` does not change once the
        // inode is published.
        unsafe { (*self.as_ptr()).i_mode }
    }

    /// Returns the magic number of the inode's filesystem, `f_type` in `statfs(2)`.
    #[inline]
    pub fn magic(&self) -> u64 {
        // SAFETY: The inode is valid by the type invariants, and so is its superblock, which
        // lives at least as long as the inodes in it.
        let magic = unsafe { (*(*self.as_ptr()).i_sb).s_magic };

        // `unsigned long` has at most 64 bits.
        magic as u64
    }
}

/// The operations of files that C code implements, a `struct file_operations`.
///
/// # Invariants
///
/// The operations are valid for the whole life of the kernel.
#[repr(transparent)]
pub struct FileOperations(Opaque<bindings::file_operations>);

// SAFETY: The VFS only ever reads file operations, from any thread.
unsafe impl Sync for FileOperations {}

impl FileOperations {
    /// Returns operations that implement nothing: every file operation gets the VFS default (a
    /// `read(2)` fails with `EINVAL`, for example).
    pub const fn empty() -> Self {
        // SAFETY: All-zero bytes are a valid `struct file_operations`: every member is an
        // optional function pointer, flags, or the owner module, which may be NULL.
        Self(Opaque::new(unsafe { core::mem::zeroed() }))
    }

    /// Returns a raw pointer to the inner C struct.
    #[inline]
    pub fn as_ptr(&self) -> *const bindings::file_operations {
        self.0.get()
    }
}

/// Checks that `ptr`, returned by C, is a valid pointer rather than an `ERR_PTR()` or NULL.
pub(crate) fn non_null_from_err_ptr<T>(ptr: *mut T) -> Result<NonNull<T>> {
    NonNull::new(from_err_ptr(ptr)?).ok_or(ENOMEM)
}
