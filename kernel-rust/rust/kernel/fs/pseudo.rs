// SPDX-License-Identifier: GPL-2.0

//! Pseudo filesystems and their anonymous inodes.
//!
//! A pseudo filesystem has no mount point that userspace can see: the kernel mounts it for
//! itself and makes files on it whose inodes exist only in memory, as pipes, sockets and
//! dma-bufs have. Unlike the files `anon_inode_getfile()` makes, which all share one inode, every
//! file made here has an inode of its own, so that `stat(2)` tells the files apart (`st_ino`)
//! and says how big each one is (`st_size`, `st_blocks`).
//!
//! A filesystem is described by a type that implements [`PseudoFs`], placed in a `static` as a
//! [`Type`], and mounted with [`Type::mount`]. The [`KernMount`] this returns makes inodes and
//! files, and unmounts the filesystem when dropped; an inode it makes borrows it, so that no
//! inode can outlive its mount.
//!
//! C header: [`include/linux/pseudo_fs.h`](srctree/include/linux/pseudo_fs.h)
//!
//! # Examples
//!
//! ```
//! use kernel::{
//!     fs::{file::flags, pseudo, Dentry, FileOperations},
//!     prelude::*,
//! };
//!
//! struct ExampleFs;
//!
//! // SAFETY: Nothing sets `d_fsdata` on this filesystem.
//! #[vtable]
//! unsafe impl pseudo::PseudoFs for ExampleFs {
//!     const NAME: &'static CStr = c"rust_pseudo_example";
//!     const MAGIC: u32 = 0x52757374;
//!     type DentryData = ();
//!
//!     fn dname<'a>(
//!         dentry: &Dentry,
//!         _data: Option<()>,
//!         buf: pseudo::DnameBuffer<'a>,
//!     ) -> Result<pseudo::DentryName<'a>> {
//!         buf.write(&[b"example:", dentry.name().to_bytes()])
//!     }
//! }
//!
//! static EXAMPLE_FS: pseudo::Type<ExampleFs> = pseudo::Type::new();
//! static EXAMPLE_FOPS: FileOperations = FileOperations::empty::<LocalModule>();
//!
//! let mnt = EXAMPLE_FS.mount()?;
//! let mut inode = mnt.new_inode()?;
//! inode.set_size(3 * 4096);
//! inode.set_bytes(3 * 4096);
//! inode.set_ino(1 << 40);
//! let file = mnt.new_file(inode, c"buffer", flags::O_RDWR, &EXAMPLE_FOPS)?;
//!
//! assert_eq!(file.flags() & flags::O_ACCMODE, flags::O_RDWR);
//! assert_eq!(file.inode().ino(), 1 << 40);
//! assert_eq!(file.inode().size(), 3 * 4096);
//! assert_eq!(file.inode().bytes(), 3 * 4096);
//! assert_eq!(file.inode().magic(), 0x52757374);
//!
//! let mut buf = [0u8; 64];
//! assert_eq!(file.path(&mut buf)?.to_bytes(), b"example:buffer");
//!
//! // The file holds the mount: it may outlive the `KernMount`.
//! drop(mnt);
//! assert_eq!(file.path(&mut buf)?.to_bytes(), b"example:buffer");
//! # Ok::<(), Error>(())
//! ```

use crate::{
    bindings,
    error::{code::*, from_err_ptr, Result, VTABLE_DEFAULT_ERROR},
    ffi::{c_char, c_int, c_ulong},
    fs::{Dentry, File, FileOperations, Inode},
    module::this_module,
    prelude::*,
    str::as_char_ptr_in_const_context,
    sync::aref::ARef,
    types::{ForeignOwnable, Opaque}, //
};
use core::{
    marker::PhantomData,
    ops::Deref,
    ptr::{self, NonNull}, //
};

/// The longest name, with its NUL, that [`DnameBuffer::write`] makes, as for `dynamic_dname()`.
pub const DNAME_MAX: usize = 64;

/// A pseudo filesystem.
///
/// Its `OwnerModule` (set by `#[vtable]`) is the module that implements it: the filesystem type
/// holds a reference to that module for as long as a superblock of it exists.
///
/// # Safety
///
/// Implementers guarantee that the `d_fsdata` of every dentry of the filesystem is either NULL or
/// a pointer that [`ForeignOwnable::into_foreign`] returned for a [`PseudoFs::DentryData`]
/// whose ownership went to the dentry: the dentry drops it when it is released. Files made with
/// [`Mount::new_file_with_data`] meet this; code that sets `d_fsdata` itself must too.
#[vtable]
pub unsafe trait PseudoFs: Sized + 'static {
    /// The name of the filesystem type.
    const NAME: &'static CStr;

    /// The magic number, `f_type` in `statfs(2)` (see `include/uapi/linux/magic.h`).
    const MAGIC: u32;

    /// What a dentry of the filesystem owns, through its `d_fsdata`.
    ///
    /// Readers of `/proc/PID/fd` on any CPU borrow it at once, through [`PseudoFs::dname`], and
    /// the last reference to the dentry drops it on any CPU: it is `Send + Sync`.
    type DentryData: ForeignOwnable + Send + Sync;

    /// Makes the name that `readlink(2)` shows for a file of the filesystem (`->d_dname()`), from
    /// the dentry and the data it owns, if it has been given any.
    ///
    /// Without it, files of the filesystem show as `/`: their dentries are roots of their own.
    fn dname<'a>(
        _dentry: &Dentry,
        _data: Option<<Self::DentryData as ForeignOwnable>::Borrowed<'_>>,
        _buf: DnameBuffer<'a>,
    ) -> Result<DentryName<'a>> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
}

/// A pseudo filesystem type, to be placed in a `static`.
///
/// # Invariants
///
/// `fs_type` is a `struct file_system_type` that makes `T` filesystems: its name is `T::NAME`,
/// its owner is `T::OwnerModule`, its context is set up by `init_pseudo()` with `T::MAGIC` and
/// the dentry operations of `T`, and it is killed with `kill_anon_super()`.
pub struct Type<T: PseudoFs> {
    fs_type: Opaque<bindings::file_system_type>,
    _p: PhantomData<T>,
}

// SAFETY: The VFS serialises its writes to a filesystem type (its superblock list, under
// `sb_lock`), and the rest of it never changes.
unsafe impl<T: PseudoFs> Sync for Type<T> {}

impl<T: PseudoFs> Type<T> {
    const DENTRY_OPERATIONS: bindings::dentry_operations = bindings::dentry_operations {
        d_dname: if T::HAS_DNAME {
            Some(Self::d_dname)
        } else {
            None
        },
        d_release: Some(Self::d_release),
        ..pin_init::zeroed()
    };

    /// Creates the filesystem type of `T`.
    #[expect(
        clippy::new_without_default,
        reason = "a filesystem type lives in a static, which `Default` cannot initialise"
    )]
    pub const fn new() -> Self {
        // INVARIANT: The name, owner, context set-up and kill function are the ones the
        // invariants name.
        Self {
            fs_type: Opaque::new(bindings::file_system_type {
                name: as_char_ptr_in_const_context(T::NAME),
                owner: this_module::<T::OwnerModule>().as_ptr(),
                init_fs_context: Some(Self::init_fs_context),
                kill_sb: Some(bindings::kill_anon_super),
                ..pin_init::zeroed()
            }),
            _p: PhantomData,
        }
    }

    /// Mounts a new instance of the filesystem for the kernel's own use (`kern_mount()`).
    pub fn mount(&'static self) -> Result<KernMount<T>> {
        // SAFETY: `fs_type` is a valid filesystem type by the type invariants, and it lives
        // forever.
        let mnt = from_err_ptr(unsafe { bindings::kern_mount(self.fs_type.get()) })?;

        // SAFETY: `kern_mount()` returns a new mount of a `T` filesystem or an `ERR_PTR()`, never
        // NULL, and we own that mount.
        Ok(unsafe { KernMount::from_raw(mnt) })
    }

    /// Sets up the context of a new superblock (`->init_fs_context()`).
    ///
    /// # Safety
    ///
    /// `fc` must be a valid filesystem context of this type, as the VFS passes.
    unsafe extern "C" fn init_fs_context(fc: *mut bindings::fs_context) -> c_int {
        // CAST: An `unsigned long` holds every `u32`.
        let magic = T::MAGIC as c_ulong;

        // SAFETY: The VFS passes a valid context.
        let ctx = unsafe { bindings::init_pseudo(fc, magic) };
        if ctx.is_null() {
            return ENOMEM.to_errno();
        }

        // SAFETY: `init_pseudo()` returned a valid context, which the superblock set-up reads
        // later; the dentry operations are a constant, so they live forever.
        unsafe { (*ctx).dops = &Self::DENTRY_OPERATIONS };
        0
    }

    /// Makes the name of a dentry (`->d_dname()`).
    ///
    /// # Safety
    ///
    /// As the VFS calls it: `dentry` is a dentry of a `T` filesystem to which the caller holds a
    /// reference, and `buffer` is valid for writes of `buflen` bytes.
    unsafe extern "C" fn d_dname(
        dentry: *mut bindings::dentry,
        buffer: *mut c_char,
        buflen: c_int,
    ) -> *mut c_char {
        let Ok(len) = usize::try_from(buflen) else {
            return ENAMETOOLONG.to_ptr();
        };

        // SAFETY: The caller holds a reference to the dentry, for longer than this call, and the
        // dentries of a pseudo filesystem are never renamed.
        let d = unsafe { Dentry::from_raw(dentry) };

        // SAFETY: The dentry is valid, as above.
        let data = unsafe { (*dentry).d_fsdata };
        let data = if data.is_null() {
            None
        } else {
            // SAFETY: By the safety requirements of `PseudoFs`, a non-NULL `d_fsdata` is a
            // `DentryData` owned by the dentry, which drops it only when the dentry is released,
            // after this call.
            Some(unsafe { T::DentryData::borrow(data) })
        };

        // INVARIANT: The caller guarantees that `buffer` is valid for writes of `len` bytes for
        // the duration of this call.
        let buf = DnameBuffer {
            buffer,
            len,
            _p: PhantomData,
        };
        match T::dname(d, data, buf) {
            Ok(name) => name.0.as_ptr(),
            Err(e) => e.to_ptr(),
        }
    }

    /// Releases what a dentry owns (`->d_release()`).
    ///
    /// # Safety
    ///
    /// As the VFS calls it: `dentry` is a dentry of a `T` filesystem that is being freed.
    unsafe extern "C" fn d_release(dentry: *mut bindings::dentry) {
        // SAFETY: The dentry is valid until it is freed, after this call.
        let data = unsafe { (*dentry).d_fsdata };

        // SAFETY: By the safety requirements of `PseudoFs`, a non-NULL `d_fsdata` is a
        // `DentryData` owned by the dentry, which is going: no one can borrow it any more.
        drop(unsafe { T::DentryData::try_from_foreign(data) });
    }
}

/// A mount of a `T` filesystem.
///
/// It makes the inodes and files of the filesystem; [`KernMount`] derefs to it.
///
/// # Invariants
///
/// A `&Mount<T>` is only valid while the mount it wraps, of a `T` filesystem, is mounted.
#[repr(transparent)]
pub struct Mount<T: PseudoFs>(Opaque<bindings::vfsmount>, PhantomData<T>);

// SAFETY: Inodes and files can be made on a mount from any thread, and nothing else changes it.
unsafe impl<T: PseudoFs> Sync for Mount<T> {}

impl<T: PseudoFs> Mount<T> {
    /// Creates a reference to a [`Mount`] from a valid pointer.
    ///
    /// # Safety
    ///
    /// The caller must ensure that `ptr` is a mount of a `T` filesystem that stays mounted for the
    /// duration of `'a`.
    #[inline]
    pub unsafe fn from_raw<'a>(ptr: *mut bindings::vfsmount) -> &'a Self {
        // SAFETY: The caller guarantees that the pointer is valid for `'a`. The cast is okay
        // because `Mount` is `repr(transparent)`.
        unsafe { &*ptr.cast() }
    }

    /// Returns a raw pointer to the inner C struct.
    #[inline]
    pub fn as_ptr(&self) -> *mut bindings::vfsmount {
        self.0.get()
    }

    /// Makes a new inode on the filesystem (`alloc_anon_inode()`).
    ///
    /// The inode is a regular file with mode 0600, size 0 and a number from `get_next_ino()`,
    /// until it is changed. It borrows the mount: it cannot outlive it.
    pub fn new_inode(&self) -> Result<NewInode<'_, T>> {
        // SAFETY: The mount is valid by the type invariants, and so is its superblock.
        let inode = from_err_ptr(unsafe { bindings::alloc_anon_inode((*self.as_ptr()).mnt_sb) })?;

        // INVARIANT: `alloc_anon_inode()` returned a new inode of this mount's superblock, whose
        // only reference we own.
        Ok(NewInode {
            // SAFETY: `alloc_anon_inode()` returns a valid inode or an `ERR_PTR()`, never NULL.
            inode: unsafe { NonNull::new_unchecked(inode) },
            mnt: self,
        })
    }

    /// Makes a file on `inode`, opened with `flags` and operated by `fops` (`alloc_file_pseudo()`).
    ///
    /// `name` is the name of the file's dentry, from which [`PseudoFs::dname`] makes the name
    /// `readlink(2)` shows. The file holds a reference to the mount, and one to the module that
    /// owns `fops`, which it drops when it goes. If the file cannot be made, the inode is
    /// released.
    ///
    /// Fails with [`EINVAL`] when `inode` was made by another mount.
    pub fn new_file(
        &self,
        inode: NewInode<'_, T>,
        name: &CStr,
        flags: u32,
        fops: &'static FileOperations,
    ) -> Result<ARef<File>> {
        self.make_file(inode, name, flags, fops, None)
    }

    /// Makes a file on `inode` as [`Mount::new_file`] does, whose dentry owns `data`.
    ///
    /// The data is borrowed by [`PseudoFs::dname`] while the dentry lives, and dropped when the
    /// dentry is freed, after the last reference to the file is gone. If the file cannot be made,
    /// `data` is dropped at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use kernel::{
    ///     fmt,
    ///     fs::{file::flags, pseudo, Dentry, FileOperations},
    ///     prelude::*,
    ///     str::CString,
    ///     sync::{
    ///         atomic::{Atomic, Relaxed},
    ///         Arc, ArcBorrow,
    ///     },
    /// };
    ///
    /// struct CounterFs;
    ///
    /// // SAFETY: Only `new_file_with_data` sets `d_fsdata` on this filesystem.
    /// #[vtable]
    /// unsafe impl pseudo::PseudoFs for CounterFs {
    ///     const NAME: &'static CStr = c"rust_pseudo_counter";
    ///     const MAGIC: u32 = 0x52757376;
    ///     type DentryData = Arc<Atomic<u32>>;
    ///
    ///     fn dname<'a>(
    ///         dentry: &Dentry,
    ///         counter: Option<ArcBorrow<'_, Atomic<u32>>>,
    ///         buf: pseudo::DnameBuffer<'a>,
    ///     ) -> Result<pseudo::DentryName<'a>> {
    ///         let n = counter.map_or(0, |c| c.load(Relaxed));
    ///         let n = CString::try_from_fmt(fmt!("{n}"))?;
    ///         buf.write(&[dentry.name().to_bytes(), b":", n.to_bytes()])
    ///     }
    /// }
    ///
    /// static COUNTER_FS: pseudo::Type<CounterFs> = pseudo::Type::new();
    /// static COUNTER_FOPS: FileOperations = FileOperations::empty::<LocalModule>();
    ///
    /// let mnt = COUNTER_FS.mount()?;
    /// let counter = Arc::new(Atomic::new(7), GFP_KERNEL)?;
    /// let file = mnt.new_file_with_data(
    ///     mnt.new_inode()?,
    ///     c"counter",
    ///     flags::O_RDWR,
    ///     &COUNTER_FOPS,
    ///     counter.clone(),
    /// )?;
    ///
    /// let mut buf = [0u8; 64];
    /// assert_eq!(file.path(&mut buf)?.to_bytes(), b"counter:7");
    /// counter.store(8, Relaxed);
    /// assert_eq!(file.path(&mut buf)?.to_bytes(), b"counter:8");
    /// # Ok::<(), Error>(())
    /// ```
    pub fn new_file_with_data(
        &self,
        inode: NewInode<'_, T>,
        name: &CStr,
        flags: u32,
        fops: &'static FileOperations,
        data: T::DentryData,
    ) -> Result<ARef<File>> {
        self.make_file(inode, name, flags, fops, Some(data))
    }

    fn make_file(
        &self,
        inode: NewInode<'_, T>,
        name: &CStr,
        flags: u32,
        fops: &'static FileOperations,
        data: Option<T::DentryData>,
    ) -> Result<ARef<File>> {
        if !ptr::eq(inode.mnt, self) {
            return Err(EINVAL);
        }
        let flags = c_int::try_from(flags).map_err(|_| EINVAL)?;
        let mnt = self.as_ptr();
        let fops = fops.as_ptr();

        // The file's release puts the module that owns its operations (`fops_put()` in
        // `__fput()`), so it takes a reference to that module first, as `anon_inode_getfile()`
        // does. Code built into the kernel has no module to take a reference to.
        //
        // SAFETY: By the type invariants of `FileOperations`, `fops` is valid and its owner is
        // the module implementing it; the owner never changes.
        let owner = unsafe { (*fops).owner };

        // SAFETY: As above.
        if !owner.is_null() && unsafe { bindings::fops_get(fops) }.is_null() {
            return Err(ENOENT);
        }

        // SAFETY: The inode and the mount are valid, the inode is of this mount's superblock,
        // and `name` and `fops` are valid for the duration of the call (`alloc_file_pseudo()`
        // copies the name, and `fops` lives forever).
        let file = from_err_ptr(unsafe {
            bindings::alloc_file_pseudo(inode.as_ptr(), mnt, name.as_char_ptr(), flags, fops)
        });
        let file = match file {
            Ok(file) => file,
            Err(e) => {
                if !owner.is_null() {
                    // SAFETY: The reference to the module taken above is ours.
                    unsafe { bindings::fops_put(fops) };
                }
                // `inode` still owns its reference and releases it when dropped here, and so
                // is `data` dropped.
                return Err(e);
            }
        };

        // The new dentry owns the inode's reference now.
        core::mem::forget(inode);

        if let Some(data) = data {
            // SAFETY: The file is new and no one else knows of it, so neither of its dentry,
            // whose `d_fsdata` is still NULL. The dentry owns the data from now on; it is
            // dropped in `d_release`, which meets the safety requirements of `PseudoFs`.
            unsafe { (*(*file).__bindgen_anon_1.f_path.dentry).d_fsdata = data.into_foreign() };
        }

        // SAFETY: `alloc_file_pseudo()` returns a new file or an `ERR_PTR()`, never NULL, and the
        // new file's one reference is ours. The cast is okay because `File` is
        // `repr(transparent)`.
        Ok(unsafe { ARef::from_raw(NonNull::new_unchecked(file.cast())) })
    }
}

/// A pseudo filesystem mounted for the kernel's own use, unmounted when dropped.
///
/// # Invariants
///
/// `self.0` is a mount of a `T` filesystem that `kern_mount()` returned, and this object owns it.
pub struct KernMount<T: PseudoFs>(NonNull<Mount<T>>);

// SAFETY: A mount may be unmounted from any thread.
unsafe impl<T: PseudoFs> Send for KernMount<T> {}

// SAFETY: `KernMount` only gives out `&Mount`, which is `Sync`.
unsafe impl<T: PseudoFs> Sync for KernMount<T> {}

impl<T: PseudoFs> KernMount<T> {
    /// Creates a [`KernMount`] from a raw pointer, taking the ownership of the mount.
    ///
    /// # Safety
    ///
    /// The caller must ensure that `ptr` is a mount of a `T` filesystem that `kern_mount()`
    /// returned, such as one that [`KernMount::into_raw`] gave up, and that it gives up its
    /// ownership of the mount.
    #[inline]
    pub unsafe fn from_raw(ptr: *mut bindings::vfsmount) -> Self {
        // INVARIANT: The caller passes the ownership of such a mount.
        //
        // SAFETY: The caller passes a valid mount, which is not NULL.
        Self(unsafe { NonNull::new_unchecked(ptr.cast()) })
    }

    /// Gives up the ownership of the mount, for C code to hold, and returns it.
    ///
    /// The mount stays mounted until [`KernMount::from_raw`] takes it back and drops it.
    #[inline]
    pub fn into_raw(self) -> *mut bindings::vfsmount {
        let ptr = self.0.as_ptr().cast();
        core::mem::forget(self);
        ptr
    }
}

impl<T: PseudoFs> Deref for KernMount<T> {
    type Target = Mount<T>;

    #[inline]
    fn deref(&self) -> &Mount<T> {
        // SAFETY: By the type invariants the mount is mounted while `self` lives.
        unsafe { self.0.as_ref() }
    }
}

impl<T: PseudoFs> Drop for KernMount<T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariants we own the mount, so we may unmount it. No new inode
        // borrows it any more; the files on it hold mount references of their own, so the
        // superblock stays until the last of them is gone.
        unsafe { bindings::kern_unmount(self.as_ptr()) };
    }
}

/// A new inode of a `T` filesystem, not yet used by any file.
///
/// Give it to [`Mount::new_file`]; dropped instead, it is released (`iput()`). It borrows the
/// mount that made it, since it holds no reference to it: the inode of an unmounted superblock
/// would be freed under it.
///
/// # Invariants
///
/// `inode` is a valid inode of the superblock of `mnt`, to which this object owns the only
/// reference, and which no one else knows of.
pub struct NewInode<'a, T: PseudoFs> {
    inode: NonNull<bindings::inode>,
    mnt: &'a Mount<T>,
}

impl<T: PseudoFs> NewInode<'_, T> {
    #[inline]
    fn as_ptr(&self) -> *mut bindings::inode {
        self.inode.as_ptr()
    }

    /// Sets the size in bytes, `st_size` in `stat(2)`.
    #[inline]
    pub fn set_size(&mut self, size: i64) {
        // SAFETY: The inode is valid and no one else knows of it, so a plain store cannot race
        // with a reader (`i_size_write()` is only needed once the inode is published).
        unsafe { (*self.as_ptr()).i_size = size };
    }

    /// Sets the number of bytes in use, `st_blocks * 512` in `stat(2)`.
    #[inline]
    pub fn set_bytes(&mut self, bytes: i64) {
        // SAFETY: The inode is valid by the type invariants.
        unsafe { bindings::inode_set_bytes(self.as_ptr(), bytes) };
    }

    /// Sets the inode number, `st_ino` in `stat(2)`.
    ///
    /// New inodes are numbered by `get_next_ino()`: 32-bit numbers that every pseudo filesystem
    /// shares and that wrap. A filesystem whose files must be told apart for as long as the
    /// system runs numbers its inodes itself.
    #[inline]
    pub fn set_ino(&mut self, ino: u64) {
        // SAFETY: The inode is valid and no one else knows of it, so the number cannot change
        // under a reader.
        unsafe { (*self.as_ptr()).i_ino = ino };
    }
}

impl<T: PseudoFs> Deref for NewInode<'_, T> {
    type Target = Inode;

    #[inline]
    fn deref(&self) -> &Inode {
        // SAFETY: The inode is valid, and we hold a reference to it while `self` lives.
        unsafe { Inode::from_raw(self.as_ptr()) }
    }
}

impl<T: PseudoFs> Drop for NewInode<'_, T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariants we own the only reference to the inode, and its
        // superblock is still mounted, as `self.mnt` is borrowed.
        unsafe { bindings::iput(self.as_ptr()) };
    }
}

/// The buffer in which [`PseudoFs::dname`] writes a name.
///
/// # Invariants
///
/// `buffer` is valid for writes of `len` bytes for the lifetime `'a`.
pub struct DnameBuffer<'a> {
    buffer: *mut c_char,
    len: usize,
    _p: PhantomData<&'a mut [u8]>,
}

/// A name that [`DnameBuffer::write`] wrote.
///
/// # Invariants
///
/// `self.0` points at a NUL-terminated name within a [`DnameBuffer`] of lifetime `'a`.
pub struct DentryName<'a>(NonNull<c_char>, PhantomData<&'a [u8]>);

impl<'a> DnameBuffer<'a> {
    /// Writes the concatenation of `parts` as the name, as `dynamic_dname()` does: at the end of
    /// the buffer and NUL-terminated.
    ///
    /// Fails with [`ENAMETOOLONG`] when the name and its NUL take more than [`DNAME_MAX`] bytes or
    /// do not fit in the buffer.
    ///
    /// # Examples
    ///
    /// ```
    /// use kernel::{
    ///     fs::{file::flags, pseudo, Dentry, FileOperations},
    ///     prelude::*,
    /// };
    ///
    /// struct LongFs;
    ///
    /// // SAFETY: Nothing sets `d_fsdata` on this filesystem.
    /// #[vtable]
    /// unsafe impl pseudo::PseudoFs for LongFs {
    ///     const NAME: &'static CStr = c"rust_pseudo_long";
    ///     const MAGIC: u32 = 0x52757377;
    ///     type DentryData = ();
    ///
    ///     fn dname<'a>(
    ///         dentry: &Dentry,
    ///         _data: Option<()>,
    ///         buf: pseudo::DnameBuffer<'a>,
    ///     ) -> Result<pseudo::DentryName<'a>> {
    ///         // The name, repeated to a given length with its NUL.
    ///         let len = match dentry.name().to_bytes() {
    ///             b"fits" => pseudo::DNAME_MAX,
    ///             _ => pseudo::DNAME_MAX + 1,
    ///         };
    ///         buf.write(&[&[b'x'; pseudo::DNAME_MAX][..len - 1]])
    ///     }
    /// }
    ///
    /// static LONG_FS: pseudo::Type<LongFs> = pseudo::Type::new();
    /// static LONG_FOPS: FileOperations = FileOperations::empty::<LocalModule>();
    ///
    /// let mnt = LONG_FS.mount()?;
    /// let fits = mnt.new_file(mnt.new_inode()?, c"fits", flags::O_RDONLY, &LONG_FOPS)?;
    /// let long = mnt.new_file(mnt.new_inode()?, c"long", flags::O_RDONLY, &LONG_FOPS)?;
    ///
    /// let mut buf = [0u8; 128];
    /// assert_eq!(fits.path(&mut buf)?.to_bytes().len(), pseudo::DNAME_MAX - 1);
    /// assert_eq!(long.path(&mut buf).err(), Some(ENAMETOOLONG));
    ///
    /// // A name must fit the caller's buffer too.
    /// let mut small = [0u8; 16];
    /// assert_eq!(fits.path(&mut small).err(), Some(ENAMETOOLONG));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn write(self, parts: &[&[u8]]) -> Result<DentryName<'a>> {
        let len = parts.iter().map(|p| p.len()).sum::<usize>() + 1;
        if len > DNAME_MAX || len > self.len {
            return Err(ENAMETOOLONG);
        }

        // SAFETY: By the type invariants the buffer holds `self.len >= len` bytes, so its last
        // `len` bytes start within it.
        let start = unsafe { self.buffer.add(self.len - len) };
        let mut at = start;
        for part in parts {
            // SAFETY: The parts and the NUL add up to `len`, so every part ends within the last
            // `len` bytes of the buffer, which do not overlap with the parts we borrow.
            unsafe {
                ptr::copy_nonoverlapping(part.as_ptr(), at.cast(), part.len());
                at = at.add(part.len());
            }
        }

        // SAFETY: `at` is the last byte of the buffer.
        unsafe { at.write(0) };

        // INVARIANT: `start` points into the buffer, at the name just written.
        //
        // SAFETY: `start` points into the buffer, which is not NULL.
        Ok(DentryName(
            unsafe { NonNull::new_unchecked(start) },
            PhantomData,
        ))
    }
}

#[cfg(CONFIG_RUST_FS_PSEUDO_KUNIT_TEST)]
#[macros::kunit_tests(rust_fs_pseudo)]
mod tests {
    use super::*;
    use crate::{
        fs::file::flags,
        sync::{
            atomic::{Atomic, Relaxed},
            Arc,
        },
        time::{delay::fsleep, Delta},
    };

    struct TestFs;

    // SAFETY: Only `new_file_with_data` sets `d_fsdata` on this filesystem.
    #[vtable]
    unsafe impl PseudoFs for TestFs {
        const NAME: &'static CStr = c"rust_pseudo_test";
        const MAGIC: u32 = 0x52757378;
        type DentryData = Arc<Dropped>;
    }

    /// Counts its drops.
    struct Dropped(Arc<Atomic<u32>>);

    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.add(1, Relaxed);
        }
    }

    static TEST_FS: Type<TestFs> = Type::new();
    static TEST_FOPS: FileOperations = FileOperations::empty::<crate::LocalModule>();

    /// Waits up to a second for `drops` to reach `want`: the last `fput()` of a kernel thread is
    /// deferred to a workqueue, and the dentry goes with it.
    fn wait_for(drops: &Atomic<u32>, want: u32) -> u32 {
        for _ in 0..100 {
            if drops.load(Relaxed) >= want {
                break;
            }
            fsleep(Delta::from_millis(10));
        }
        drops.load(Relaxed)
    }

    #[test]
    fn the_type_is_owned_by_its_module() {
        // SAFETY: The filesystem type is valid; its owner never changes.
        let owner = unsafe { (*TEST_FS.fs_type.get()).owner };
        assert_eq!(owner, this_module::<crate::LocalModule>().as_ptr());
        // SAFETY: The file operations are valid; their owner never changes.
        let owner = unsafe { (*TEST_FOPS.as_ptr()).owner };
        assert_eq!(owner, this_module::<crate::LocalModule>().as_ptr());
    }

    #[test]
    fn an_inode_of_another_mount_is_refused() -> Result {
        let one = TEST_FS.mount()?;
        let other = TEST_FS.mount()?;
        let drops = Arc::new(Atomic::new(0), GFP_KERNEL)?;
        let data = Arc::new(Dropped(drops.clone()), GFP_KERNEL)?;
        let inode = other.new_inode()?;
        let err = one.new_file_with_data(inode, c"x", flags::O_RDWR, &TEST_FOPS, data);
        assert_eq!(err.err(), Some(EINVAL));
        // The data was dropped at once, with the inode.
        assert_eq!(drops.load(Relaxed), 1);
        Ok(())
    }

    #[test]
    fn the_data_goes_with_the_dentry() -> Result {
        let mnt = TEST_FS.mount()?;
        let drops = Arc::new(Atomic::new(0), GFP_KERNEL)?;
        let data = Arc::new(Dropped(drops.clone()), GFP_KERNEL)?;
        let file =
            mnt.new_file_with_data(mnt.new_inode()?, c"x", flags::O_RDWR, &TEST_FOPS, data)?;
        let again = file.clone();
        drop(file);
        // A reference to the file is left: the dentry and its data stay.
        assert_eq!(drops.load(Relaxed), 0);
        drop(again);
        assert_eq!(wait_for(&drops, 1), 1);
        Ok(())
    }

    #[test]
    fn the_file_outlives_the_kern_mount() -> Result {
        let mnt = TEST_FS.mount()?;
        let mut inode = mnt.new_inode()?;
        inode.set_ino(42);
        let file = mnt.new_file(inode, c"x", flags::O_RDONLY, &TEST_FOPS)?;
        drop(mnt);
        assert_eq!(file.inode().ino(), 42);
        assert_eq!(file.inode().magic(), u64::from(TestFs::MAGIC));
        Ok(())
    }
}
