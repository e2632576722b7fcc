// SPDX-License-Identifier: GPL-2.0

//! Pseudo filesystems and anonymous inodes.
//!
//! A pseudo filesystem has no mount point that userspace can see: the kernel mounts it for
//! itself and makes files on it whose inodes exist only in memory, as pipes, sockets and
//! dma-bufs have. Unlike the files `anon_inode_getfile()` makes, which all share one inode, every
//! file made here can have an inode of its own, so that `stat(2)` tells the files apart
//! (`st_ino`) and says how big each one is (`st_size`, `st_blocks`).
//!
//! A filesystem is described by a type that implements [`PseudoFs`], registered statically as a
//! [`Type`], and mounted with [`Type::mount`]; the [`KernMount`] this returns makes inodes and
//! files, and unmounts the filesystem when dropped.
//!
//! C header: [`include/linux/pseudo_fs.h`](srctree/include/linux/pseudo_fs.h)
//!
//! # Examples
//!
//! ```
//! use kernel::{
//!     c_str,
//!     fs::{flags, pseudo, FileOperations},
//!     prelude::*,
//! };
//!
//! struct ExampleFs;
//!
//! // SAFETY: Nothing sets `d_fsdata` on this filesystem.
//! #[vtable]
//! unsafe impl pseudo::PseudoFs for ExampleFs {
//!     const NAME: &'static CStr = c_str!("rust_pseudo_example");
//!     const MAGIC: u32 = 0x52757374;
//!     type DentryData = ();
//!
//!     fn dname<'a>(
//!         dentry: &pseudo::Dentry<Self>,
//!         buf: pseudo::DnameBuffer<'a>,
//!     ) -> Result<pseudo::DentryName<'a>> {
//!         buf.write(&[b"example:", dentry.name().as_bytes()])
//!     }
//! }
//!
//! static EXAMPLE_FS: pseudo::Type<ExampleFs> = pseudo::Type::new();
//! static EXAMPLE_FOPS: FileOperations = FileOperations::empty();
//!
//! let mnt = EXAMPLE_FS.mount()?;
//! let mut inode = mnt.new_inode()?;
//! inode.set_size(3 * 4096);
//! inode.set_bytes(3 * 4096);
//! inode.set_ino(1 << 40);
//! let file = mnt.new_file(inode, c_str!("buffer"), flags::O_RDWR, &EXAMPLE_FOPS)?;
//!
//! assert_eq!(file.flags() & flags::O_ACCMODE, flags::O_RDWR);
//! assert_eq!(file.inode().ino(), 1 << 40);
//! assert_eq!(file.inode().size(), 3 * 4096);
//! assert_eq!(file.inode().bytes(), 3 * 4096);
//! assert_eq!(file.inode().magic(), 0x52757374);
//!
//! let mut buf = [0u8; 64];
//! assert_eq!(file.path(&mut buf)?.as_bytes(), b"example:buffer");
//!
//! // The file goes, then its inode and dentry, then the filesystem.
//! drop(file);
//! drop(mnt);
//! # Ok::<(), Error>(())
//! ```

use crate::{
    bindings,
    error::{code::*, Result},
    ffi::{c_char, c_int, c_ulong},
    fs::{non_null_from_err_ptr, File, FileOperations, Inode},
    str::CStr,
    types::{ARef, ForeignOwnable, Opaque},
};
use core::{marker::PhantomData, ops::Deref, ptr::NonNull};

/// The longest name, with its NUL, that [`DnameBuffer::write`] makes, as for `dynamic_dname()`.
pub const DNAME_MAX: usize = 64;

/// A pseudo filesystem.
///
/// # Safety
///
/// Implementers guarantee that the `d_fsdata` of every dentry of the filesystem is either NULL or
/// a pointer that [`ForeignOwnable::into_foreign`] returned for a [`PseudoFs::DentryData`],
/// whose ownership went to the dentry: the dentry drops it when it is released. Files made with
/// [`Mount::new_file_with_data`] meet this; code that sets `d_fsdata` itself must too.
#[macros::vtable]
pub unsafe trait PseudoFs: Sized + 'static {
    /// The name of the filesystem type.
    const NAME: &'static CStr;

    /// The magic number, `f_type` in `statfs(2)` (see `include/uapi/linux/magic.h`).
    const MAGIC: u32;

    /// What a dentry of the filesystem owns, through its `d_fsdata`.
    type DentryData: ForeignOwnable;

    /// Makes the name that `readlink(2)` shows for a file of the filesystem (`->d_dname()`).
    ///
    /// Without it, files of the filesystem show as `/`: their dentries are roots of their own.
    fn dname<'a>(_dentry: &Dentry<Self>, _buf: DnameBuffer<'a>) -> Result<DentryName<'a>> {
        crate::build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }
}

/// A pseudo filesystem type, to be placed in a `static`.
///
/// # Invariants
///
/// `fs_type` is a `struct file_system_type` that makes `T` filesystems: its name is `T::NAME`,
/// its context is set up by `init_pseudo()` with `T::MAGIC` and the dentry operations of `T`, and
/// it is killed with `kill_anon_super()`.
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
        // SAFETY: All-zero bytes are valid dentry operations: every other member is an optional
        // function pointer.
        ..unsafe { core::mem::zeroed() }
    };

    /// Creates the filesystem type of `T`.
    #[expect(
        clippy::new_without_default,
        reason = "a filesystem type lives in a static, which `Default` cannot initialise"
    )]
    pub const fn new() -> Self {
        // INVARIANT: The name, context set-up and kill function are the ones the invariants name.
        Self {
            fs_type: Opaque::new(bindings::file_system_type {
                name: T::NAME.as_char_ptr(),
                init_fs_context: Some(Self::init_fs_context),
                kill_sb: Some(bindings::kill_anon_super),
                // SAFETY: All-zero bytes are valid for every other member: flags, optional
                // function pointers, NULL pointers, an empty superblock list and lockdep keys.
                ..unsafe { core::mem::zeroed() }
            }),
            _p: PhantomData,
        }
    }

    /// Mounts a new instance of the filesystem for the kernel's own use (`kern_mount()`).
    pub fn mount(&'static self) -> Result<KernMount<T>> {
        // SAFETY: `fs_type` is a valid filesystem type by the type invariants, and it lives
        // forever.
        let mnt = unsafe { bindings::kern_mount(self.fs_type.get()) };

        // INVARIANT: `kern_mount()` returned a new mount of a `T` filesystem, which we own.
        Ok(KernMount(non_null_from_err_ptr(mnt)?.cast()))
    }

    /// Sets up the context of a new superblock (`->init_fs_context()`).
    ///
    /// # Safety
    ///
    /// `fc` must be a valid filesystem context of this type, as the VFS passes.
    unsafe extern "C" fn init_fs_context(fc: *mut bindings::fs_context) -> c_int {
        // SAFETY: The VFS passes a valid context.
        let ctx = unsafe { bindings::init_pseudo(fc, T::MAGIC as c_ulong) };
        if ctx.is_null() {
            return ENOMEM.to_errno();
        }

        // SAFETY: `init_pseudo()` returned a valid pseudo filesystem context, which the VFS does
        // not use before this function returns; the dentry operations live forever.
        unsafe { (*ctx).dops = &Self::DENTRY_OPERATIONS };
        0
    }

    /// Makes the name of a dentry (`->d_dname()`).
    ///
    /// # Safety
    ///
    /// `dentry` must be a valid dentry of a `T` filesystem and `buffer` must be valid for writes
    /// of `buflen` bytes, as the VFS passes.
    unsafe extern "C" fn d_dname(
        dentry: *mut bindings::dentry,
        buffer: *mut c_char,
        buflen: c_int,
    ) -> *mut c_char {
        // SAFETY: The VFS passes a valid dentry of this filesystem and holds a reference to it
        // for the duration of the call.
        let dentry = unsafe { Dentry::<T>::from_raw(dentry) };

        // INVARIANT: The VFS passes a buffer valid for writes of `buflen` bytes for the duration
        // of the call, which the lifetime of the `DnameBuffer` cannot outlive.
        let buf = DnameBuffer {
            buffer,
            len: usize::try_from(buflen).unwrap_or(0),
            _p: PhantomData,
        };
        match T::dname(dentry, buf) {
            Ok(name) => name.0.as_ptr(),
            Err(e) => e.to_ptr(),
        }
    }

    /// Drops the data a dentry owns, when the dentry is freed (`->d_release()`).
    ///
    /// # Safety
    ///
    /// `dentry` must be a valid dentry of a `T` filesystem that is being freed, as the VFS
    /// passes.
    unsafe extern "C" fn d_release(dentry: *mut bindings::dentry) {
        // SAFETY: The VFS passes a valid dentry.
        let data = unsafe { (*dentry).d_fsdata };

        // SAFETY: By the safety requirements of `PseudoFs`, `data` is NULL or a `DentryData`
        // owned by the dentry; the dentry is being freed, so nothing borrows the data any more.
        drop(unsafe { T::DentryData::try_from_foreign(data) });
    }
}

/// A mount of a pseudo filesystem, through which it makes inodes and files.
///
/// # Invariants
///
/// `self.0` is a valid mount of a `T` filesystem, mounted for as long as the reference lives.
#[repr(transparent)]
pub struct Mount<T: PseudoFs>(Opaque<bindings::vfsmount>, PhantomData<T>);

// SAFETY: Inodes and files may be made on a mount from any thread at once.
unsafe impl<T: PseudoFs> Sync for Mount<T> {}

impl<T: PseudoFs> Mount<T> {
    /// Returns a raw pointer to the inner C struct.
    #[inline]
    pub fn as_ptr(&self) -> *mut bindings::vfsmount {
        self.0.get()
    }

    #[inline]
    fn super_block(&self) -> *mut bindings::super_block {
        // SAFETY: The mount is valid by the type invariants, and its superblock never changes.
        unsafe { (*self.as_ptr()).mnt_sb }
    }

    /// Makes a new anonymous inode (`alloc_anon_inode()`): a regular file of mode 0600, on which
    /// `stat(2)` shows size 0 until [`AnonInode::set_size`] says otherwise.
    pub fn new_inode(&self) -> Result<AnonInode<T>> {
        // SAFETY: The superblock of a mounted filesystem is valid.
        let inode = unsafe { bindings::alloc_anon_inode(self.super_block()) };

        // INVARIANT: `alloc_anon_inode()` returned a new inode of this `T` superblock and passed
        // us its only reference; nothing else knows of it yet.
        Ok(AnonInode {
            inode: non_null_from_err_ptr(inode)?,
            _p: PhantomData,
        })
    }

    /// Makes a file on `inode` (`alloc_file_pseudo()`), with a dentry called `name`.
    ///
    /// The file takes over the inode's reference. If the file cannot be made, the inode is
    /// released. `flags` are the file's flags, such as [`flags::O_RDWR`](super::flags::O_RDWR).
    ///
    /// Fails with `EINVAL` if the inode belongs to another mount of the filesystem.
    ///
    /// # Examples
    ///
    /// ```
    /// use kernel::{
    ///     c_str,
    ///     fs::{flags, pseudo, FileOperations},
    ///     prelude::*,
    /// };
    ///
    /// struct TwoFs;
    ///
    /// // SAFETY: Nothing sets `d_fsdata` on this filesystem.
    /// #[vtable]
    /// unsafe impl pseudo::PseudoFs for TwoFs {
    ///     const NAME: &'static CStr = c_str!("rust_pseudo_two");
    ///     const MAGIC: u32 = 0x52757375;
    ///     type DentryData = ();
    /// }
    ///
    /// static TWO_FS: pseudo::Type<TwoFs> = pseudo::Type::new();
    /// static TWO_FOPS: FileOperations = FileOperations::empty();
    ///
    /// let (one, two) = (TWO_FS.mount()?, TWO_FS.mount()?);
    /// let inode = one.new_inode()?;
    /// let err = two.new_file(inode, c_str!("x"), flags::O_RDONLY, &TWO_FOPS).err();
    /// assert_eq!(err, Some(EINVAL));
    ///
    /// // Without a `dname`, a file has no name of its own.
    /// let file = two.new_file(two.new_inode()?, c_str!("y"), flags::O_RDONLY, &TWO_FOPS)?;
    /// let mut buf = [0u8; 64];
    /// assert_eq!(file.path(&mut buf)?.as_bytes(), b"/");
    /// # Ok::<(), Error>(())
    /// ```
    pub fn new_file(
        &self,
        inode: AnonInode<T>,
        name: &CStr,
        flags: u32,
        fops: &'static FileOperations,
    ) -> Result<ARef<File>> {
        self.make_file(inode, name, flags, fops, None)
    }

    /// Makes a file on `inode` as [`Mount::new_file`] does, whose dentry owns `data`.
    ///
    /// [`Dentry::data`] borrows the data while the dentry lives; it is dropped when the dentry
    /// is freed, after the last reference to the file is gone. If the file cannot be made,
    /// `data` is dropped at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use core::sync::atomic::{AtomicU32, Ordering};
    /// use kernel::{
    ///     c_str, fmt,
    ///     fs::{flags, pseudo, FileOperations},
    ///     prelude::*,
    ///     str::CString,
    ///     sync::Arc,
    /// };
    ///
    /// struct CounterFs;
    ///
    /// // SAFETY: Only `new_file_with_data` sets `d_fsdata` on this filesystem.
    /// #[vtable]
    /// unsafe impl pseudo::PseudoFs for CounterFs {
    ///     const NAME: &'static CStr = c_str!("rust_pseudo_counter");
    ///     const MAGIC: u32 = 0x52757376;
    ///     type DentryData = Arc<AtomicU32>;
    ///
    ///     fn dname<'a>(
    ///         dentry: &pseudo::Dentry<Self>,
    ///         buf: pseudo::DnameBuffer<'a>,
    ///     ) -> Result<pseudo::DentryName<'a>> {
    ///         let n = dentry.data().map_or(0, |c| c.load(Ordering::Relaxed));
    ///         let n = CString::try_from_fmt(fmt!("{n}"))?;
    ///         buf.write(&[dentry.name().as_bytes(), b":", n.as_bytes()])
    ///     }
    /// }
    ///
    /// static COUNTER_FS: pseudo::Type<CounterFs> = pseudo::Type::new();
    /// static COUNTER_FOPS: FileOperations = FileOperations::empty();
    ///
    /// let mnt = COUNTER_FS.mount()?;
    /// let counter = Arc::new(AtomicU32::new(7), GFP_KERNEL)?;
    /// let inode = mnt.new_inode()?;
    /// let file = mnt.new_file_with_data(
    ///     inode,
    ///     c_str!("counter"),
    ///     flags::O_RDWR,
    ///     &COUNTER_FOPS,
    ///     counter.clone(),
    /// )?;
    ///
    /// let mut buf = [0u8; 64];
    /// assert_eq!(file.path(&mut buf)?.as_bytes(), b"counter:7");
    /// counter.store(8, Ordering::Relaxed);
    /// assert_eq!(file.path(&mut buf)?.as_bytes(), b"counter:8");
    ///
    /// // The last `fput()` of a kernel thread is deferred to a workqueue: wait for it, after
    /// // which the dentry, and the data it owns, are gone.
    /// drop(file);
    /// // SAFETY: This thread holds no lock that the final release of a file takes.
    /// unsafe { kernel::bindings::flush_delayed_fput() };
    /// assert!(counter.into_unique_or_drop().is_some());
    /// # Ok::<(), Error>(())
    /// ```
    pub fn new_file_with_data(
        &self,
        inode: AnonInode<T>,
        name: &CStr,
        flags: u32,
        fops: &'static FileOperations,
        data: T::DentryData,
    ) -> Result<ARef<File>> {
        self.make_file(inode, name, flags, fops, Some(data))
    }

    fn make_file(
        &self,
        inode: AnonInode<T>,
        name: &CStr,
        flags: u32,
        fops: &'static FileOperations,
        data: Option<T::DentryData>,
    ) -> Result<ARef<File>> {
        if inode.super_block() != self.super_block() {
            return Err(EINVAL);
        }
        let flags = c_int::try_from(flags)?;

        // SAFETY: The inode and the mount are valid, the inode is of this mount's superblock,
        // and `name` and `fops` are valid for the duration of the call (`alloc_file_pseudo()`
        // copies the name, and `fops` lives forever).
        let file = unsafe {
            bindings::alloc_file_pseudo(
                inode.as_ptr(),
                self.as_ptr(),
                name.as_char_ptr(),
                flags,
                fops.as_ptr(),
            )
        };

        // On failure `inode` still owns its reference and releases it when dropped here, and so
        // is `data` dropped.
        let file = non_null_from_err_ptr(file)?;

        // On success the new dentry owns the inode's reference.
        core::mem::forget(inode);

        if let Some(data) = data {
            // SAFETY: The file is new and no one else knows of it, so neither of its dentry,
            // whose `d_fsdata` is still NULL. The dentry owns the data from now on; it is
            // dropped in `d_release`, which meets the safety requirements of `PseudoFs`.
            unsafe { (*(*file.as_ptr()).f_path.dentry).d_fsdata = data.into_foreign().cast_mut() };
        }

        // SAFETY: `alloc_file_pseudo()` returned a new file with a refcount of one, which we own.
        // The cast is fine because `File` is a transparent wrapper of `struct file`.
        Ok(unsafe { ARef::from_raw(file.cast()) })
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

impl<T: PseudoFs> Deref for KernMount<T> {
    type Target = Mount<T>;

    #[inline]
    fn deref(&self) -> &Mount<T> {
        // SAFETY: By the type invariants the mount is valid while `self` lives.
        unsafe { self.0.as_ref() }
    }
}

impl<T: PseudoFs> Drop for KernMount<T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariants we own the mount, so we may unmount it. The
        // superblock stays until the last file on it is gone.
        unsafe { bindings::kern_unmount(self.as_ptr()) };
    }
}

// The foreign representation of a `KernMount` is the `struct vfsmount` pointer itself, so that C
// code can hold the mount as it would hold one from `kern_mount()`; it borrows as a `&Mount`.
impl<T: PseudoFs> ForeignOwnable for KernMount<T> {
    type Borrowed<'a> = &'a Mount<T>;

    #[inline]
    fn into_foreign(self) -> *const crate::ffi::c_void {
        let ptr = self.0.as_ptr();
        core::mem::forget(self);
        ptr.cast_const().cast()
    }

    #[inline]
    unsafe fn borrow<'a>(ptr: *const crate::ffi::c_void) -> &'a Mount<T> {
        // SAFETY: The safety requirements of this function guarantee that `ptr` came from
        // `into_foreign` and that the mount has not been taken back yet, so it is mounted.
        unsafe { &*ptr.cast() }
    }

    #[inline]
    unsafe fn from_foreign(ptr: *const crate::ffi::c_void) -> Self {
        // SAFETY: The safety requirements of this function guarantee that `ptr` came from
        // `into_foreign`, so it is a non-NULL mount that the caller passes back to us.
        //
        // INVARIANT: Ownership of the mount comes back from the foreign side.
        Self(unsafe { NonNull::new_unchecked(ptr.cast_mut().cast()) })
    }
}

/// A new inode of a `T` filesystem, not yet used by any file.
///
/// Give it to [`Mount::new_file`]; dropped instead, it is released (`iput()`).
///
/// # Invariants
///
/// `inode` is a valid inode of a `T` superblock to which this object owns a reference, and that
/// no one else knows of.
pub struct AnonInode<T: PseudoFs> {
    inode: NonNull<bindings::inode>,
    _p: PhantomData<T>,
}

impl<T: PseudoFs> AnonInode<T> {
    #[inline]
    fn as_ptr(&self) -> *mut bindings::inode {
        self.inode.as_ptr()
    }

    #[inline]
    fn super_block(&self) -> *mut bindings::super_block {
        // SAFETY: The inode is valid by the type invariants.
        unsafe { (*self.as_ptr()).i_sb }
    }

    /// Sets the size in bytes, `st_size` in `stat(2)`.
    #[inline]
    pub fn set_size(&mut self, size: i64) {
        // SAFETY: The inode is valid, and no one else knows of it, so a plain store cannot race
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
    ///
    /// Where `unsigned long` has 32 bits, only the low 32 bits of `ino` are kept, as in C.
    #[inline]
    pub fn set_ino(&mut self, ino: u64) {
        // SAFETY: The inode is valid, and no one else knows of it, so the number cannot change
        // under a reader.
        unsafe { (*self.as_ptr()).i_ino = ino as c_ulong };
    }
}

impl<T: PseudoFs> Deref for AnonInode<T> {
    type Target = Inode;

    #[inline]
    fn deref(&self) -> &Inode {
        // SAFETY: The inode is valid, and we hold a reference to it while `self` lives.
        unsafe { Inode::from_raw(self.as_ptr()) }
    }
}

impl<T: PseudoFs> Drop for AnonInode<T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariants we own a reference to the inode, which we give up.
        unsafe { bindings::iput(self.as_ptr()) };
    }
}

/// A dentry of a `T` filesystem, as its dentry operations see it.
///
/// # Invariants
///
/// `self.0` is a valid dentry of a `T` filesystem, alive for as long as the reference lives.
#[repr(transparent)]
pub struct Dentry<T: PseudoFs>(Opaque<bindings::dentry>, PhantomData<T>);

impl<T: PseudoFs> Dentry<T> {
    /// Creates a reference to a [`Dentry`] from a valid pointer.
    ///
    /// # Safety
    ///
    /// `ptr` must point at a valid dentry of a `T` filesystem that stays alive for `'a`.
    #[inline]
    unsafe fn from_raw<'a>(ptr: *mut bindings::dentry) -> &'a Self {
        // SAFETY: The caller guarantees that the pointer is valid for `'a`. The cast is fine
        // because `Dentry` is a transparent wrapper of `struct dentry`.
        unsafe { &*ptr.cast() }
    }

    /// Returns the name the dentry was made with, the `name` of [`Mount::new_file`].
    #[inline]
    pub fn name(&self) -> &CStr {
        // SAFETY: The dentry is valid by the type invariants. Dentries of pseudo filesystems are
        // never renamed, so the name lives as long as the dentry.
        unsafe { CStr::from_char_ptr((*self.0.get()).d_name.name.cast()) }
    }

    /// Returns the data the dentry owns, if it has been given any.
    #[inline]
    pub fn data(&self) -> Option<<T::DentryData as ForeignOwnable>::Borrowed<'_>> {
        // SAFETY: The dentry is valid by the type invariants.
        let data = unsafe { (*self.0.get()).d_fsdata };
        if data.is_null() {
            return None;
        }

        // SAFETY: By the safety requirements of `PseudoFs`, a non-NULL `d_fsdata` is a
        // `DentryData` owned by the dentry, which only drops it when the dentry is freed, after
        // every borrow of the dentry, and so of the data, has ended.
        Some(unsafe { T::DentryData::borrow(data) })
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
pub struct DentryName<'a>(NonNull<c_char>, PhantomData<&'a [u8]>);

impl<'a> DnameBuffer<'a> {
    /// Writes the concatenation of `parts` as the name, as `dynamic_dname()` does: at the end of
    /// the buffer and NUL-terminated.
    ///
    /// Fails with `ENAMETOOLONG` when the name and its NUL take more than [`DNAME_MAX`] bytes or
    /// do not fit in the buffer.
    ///
    /// # Examples
    ///
    /// ```
    /// use kernel::{
    ///     c_str,
    ///     fs::{flags, pseudo, FileOperations},
    ///     prelude::*,
    /// };
    ///
    /// struct LongFs;
    ///
    /// // SAFETY: Nothing sets `d_fsdata` on this filesystem.
    /// #[vtable]
    /// unsafe impl pseudo::PseudoFs for LongFs {
    ///     const NAME: &'static CStr = c_str!("rust_pseudo_long");
    ///     const MAGIC: u32 = 0x52757377;
    ///     type DentryData = ();
    ///
    ///     fn dname<'a>(
    ///         dentry: &pseudo::Dentry<Self>,
    ///         buf: pseudo::DnameBuffer<'a>,
    ///     ) -> Result<pseudo::DentryName<'a>> {
    ///         // The name, repeated to a given length with its NUL.
    ///         let len = match dentry.name().as_bytes() {
    ///             b"fits" => pseudo::DNAME_MAX,
    ///             _ => pseudo::DNAME_MAX + 1,
    ///         };
    ///         buf.write(&[&[b'x'; pseudo::DNAME_MAX][..len - 1]])
    ///     }
    /// }
    ///
    /// static LONG_FS: pseudo::Type<LongFs> = pseudo::Type::new();
    /// static LONG_FOPS: FileOperations = FileOperations::empty();
    ///
    /// let mnt = LONG_FS.mount()?;
    /// let fits = mnt.new_file(mnt.new_inode()?, c_str!("fits"), flags::O_RDONLY, &LONG_FOPS)?;
    /// let long = mnt.new_file(mnt.new_inode()?, c_str!("long"), flags::O_RDONLY, &LONG_FOPS)?;
    ///
    /// let mut buf = [0u8; 128];
    /// assert_eq!(fits.path(&mut buf)?.len(), pseudo::DNAME_MAX - 1);
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
                core::ptr::copy_nonoverlapping(part.as_ptr(), at.cast(), part.len());
                at = at.add(part.len());
            }
        }

        // SAFETY: `at` is the last byte of the buffer.
        unsafe { at.write(0) };

        // INVARIANT: `start` points into the buffer, at the name just written.
        let start = NonNull::new(start).ok_or(EINVAL)?;
        Ok(DentryName(start, PhantomData))
    }
}
