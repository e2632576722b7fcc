// SPDX-License-Identifier: GPL-2.0

//! The dmabuf pseudo filesystem, in Rust.
//!
//! Every dma-buf gets an inode of its own, so that `stat(2)` on a dma-buf file descriptor tells
//! the buffers apart (`st_ino`) and says how big each one is (`st_size`, `st_blocks`). Built
//! instead of `dma-buf-fs.c` when `CONFIG_DMABUF_FS_RUST` is set, with the same interface to the
//! dma-buf core and the same behaviour.
//!
//! C header: [`include/linux/dma-buf-fs.h`](srctree/include/linux/dma-buf-fs.h)

use core::{mem::ManuallyDrop, ptr::NonNull};
use kernel::{
    bindings, dma_buf,
    ffi::{c_int, c_void},
    fs::{file::flags, pseudo, Dentry, File, FileOperations},
    prelude::*,
    sync::{
        aref::ARef,
        atomic::{Atomic, Relaxed},
    },
    types::ForeignOwnable,
    uapi,
};

/// The dmabuf filesystem is part of the dma-buf core, which is always built into the kernel.
struct LocalModule;

impl kernel::ModuleMetadata for LocalModule {
    const NAME: &'static CStr = c"dmabuf";

    // SAFETY: Code built into the kernel has no module: its `THIS_MODULE` is NULL.
    const THIS_MODULE: kernel::ThisModule =
        unsafe { kernel::ThisModule::from_ptr(core::ptr::null_mut()) };
}

struct DmaBufFs;

// SAFETY: The dma-buf core is the only code that sets `d_fsdata` on this filesystem: once, in
// `dma_buf_export()`, to the buffer the file was made for, handing the buffer's final release
// to the dentry. That is what a foreign `DentryBuffer` is.
#[vtable]
unsafe impl pseudo::PseudoFs for DmaBufFs {
    const NAME: &'static CStr = c"dmabuf";
    const MAGIC: u32 = uapi::DMA_BUF_MAGIC;
    type DentryData = DentryBuffer;

    /// `/dmabuf:` and the name userspace gave the buffer, if any: what `readlink(2)` shows.
    fn dname<'a>(
        dentry: &Dentry,
        buffer: Option<&dma_buf::Buffer>,
        buf: pseudo::DnameBuffer<'a>,
    ) -> Result<pseudo::DentryName<'a>> {
        let mut name = [0u8; dma_buf::NAME_LEN];
        let name = buffer
            .and_then(|buffer| buffer.name(&mut name))
            .map_or(&[][..], |name| name.to_bytes());
        buf.write(&[b"/", dentry.name().to_bytes(), b":", name])
    }
}

/// What a dentry of the dmabuf filesystem owns: the final release of its buffer.
///
/// The dma-buf core attaches a buffer to the dentry of its file (`d_fsdata`, in
/// `dma_buf_export()`) and hands the buffer's final release to it: the buffer lives until the
/// dentry goes, after the last file reference, so that a reader of `/proc/PID/fd` that still holds
/// the dentry can read the buffer's name.
///
/// # Invariants
///
/// `self.0` is an exported dma-buf whose final release this object owns.
struct DentryBuffer(NonNull<dma_buf::Buffer>);

// SAFETY: The final release of a dma-buf may run on any CPU, as the last `dput()` of its
// dentry does.
unsafe impl Send for DentryBuffer {}

// SAFETY: A shared reference to a `DentryBuffer` only gives a `&dma_buf::Buffer`, which is
// `Sync`.
unsafe impl Sync for DentryBuffer {}

impl Drop for DentryBuffer {
    fn drop(&mut self) {
        // SAFETY: By the type invariants we own the final release of the buffer: no file refers
        // to it any more, and its dentry, which borrowed it, is going.
        unsafe { bindings::dma_buf_release(self.0.as_ref().as_ptr()) };
    }
}

// SAFETY: The foreign representation is the pointer to the `struct dma_buf`, which is never NULL
// and is aligned as `dma_buf::Buffer` is.
unsafe impl ForeignOwnable for DentryBuffer {
    const FOREIGN_ALIGN: usize = core::mem::align_of::<dma_buf::Buffer>();

    type Borrowed<'a> = &'a dma_buf::Buffer;
    type BorrowedMut<'a> = &'a dma_buf::Buffer;

    fn into_foreign(self) -> *mut c_void {
        ManuallyDrop::new(self).0.as_ptr().cast()
    }

    unsafe fn from_foreign(ptr: *mut c_void) -> Self {
        // INVARIANT: The safety requirements of this function guarantee that `ptr` is a dma-buf
        // whose final release its dentry hands back to us.
        //
        // SAFETY: The same requirements guarantee that `ptr` is not NULL.
        Self(unsafe { NonNull::new_unchecked(ptr.cast()) })
    }

    unsafe fn borrow<'a>(ptr: *mut c_void) -> &'a dma_buf::Buffer {
        // SAFETY: The safety requirements of this function guarantee that `ptr` is a buffer whose
        // final release is not run before `'a` ends.
        unsafe { dma_buf::Buffer::from_raw(ptr.cast()) }
    }

    unsafe fn borrow_mut<'a>(ptr: *mut c_void) -> &'a dma_buf::Buffer {
        // SAFETY: As for `borrow`.
        unsafe { Self::borrow(ptr) }
    }
}

static DMA_BUF_FS: pseudo::Type<DmaBufFs> = pseudo::Type::new();

/// The inode number of the newest dma-buf.
///
/// `get_next_ino()` numbers are 32 bits wide, shared with every other pseudo filesystem, and wrap;
/// dma-buf numbers must stay unique among dma-bufs for as long as the system runs.
static LAST_INO: Atomic<u64> = Atomic::new(0);

/// Mounts the dmabuf filesystem for the kernel's own use.
///
/// Returns the mount, or an `ERR_PTR()`.
///
/// # Safety
///
/// Always safe to call.
// Required to be unsafe due to the `#[export]` annotation.
#[export]
pub unsafe extern "C" fn dma_buf_fs_mount() -> *mut bindings::vfsmount {
    match DMA_BUF_FS.mount() {
        Ok(mnt) => mnt.into_raw(),
        Err(e) => e.to_ptr(),
    }
}

/// Unmounts the dmabuf filesystem.
///
/// # Safety
///
/// `mnt` must be a mount that [`dma_buf_fs_mount`] returned and that is not used afterwards.
#[export]
pub unsafe extern "C" fn dma_buf_fs_unmount(mnt: *mut bindings::vfsmount) {
    // SAFETY: The caller passes back the mount `dma_buf_fs_mount()` gave it, for good.
    drop(unsafe { pseudo::KernMount::<DmaBufFs>::from_raw(mnt) });
}

/// Makes the file of a new dma-buf of `size` bytes, on an inode of its own.
///
/// Only `O_ACCMODE` and `O_NONBLOCK` of `flags` are kept. Returns the file, or an `ERR_PTR()`.
///
/// # Safety
///
/// `mnt` must be a mount that [`dma_buf_fs_mount`] returned and that stays mounted during the
/// call, and `fops` must point at file operations that live forever, owned by the code built into
/// the kernel.
#[export]
pub unsafe extern "C" fn dma_buf_fs_getfile(
    mnt: *mut bindings::vfsmount,
    size: usize,
    flags: c_int,
    fops: *const bindings::file_operations,
) -> *mut bindings::file {
    // SAFETY: The caller passes a mount from `dma_buf_fs_mount()` that stays mounted meanwhile.
    let mnt = unsafe { pseudo::Mount::<DmaBufFs>::from_raw(mnt) };

    // SAFETY: The caller passes file operations that live forever, of the dma-buf core, which is
    // built into the kernel and whose `owner` is NULL.
    let fops = unsafe { FileOperations::from_raw(fops) };

    match new_file(mnt, size, flags, fops) {
        Ok(file) => ARef::into_raw(file).as_ptr().cast(),
        Err(e) => e.to_ptr(),
    }
}

fn new_file(
    mnt: &pseudo::Mount<DmaBufFs>,
    size: usize,
    flags: c_int,
    fops: &'static FileOperations,
) -> Result<ARef<File>> {
    let size = i64::try_from(size)?;
    let mut inode = mnt.new_inode()?;
    inode.set_size(size);
    inode.set_bytes(size);
    inode.set_ino(LAST_INO.fetch_add(1, Relaxed) + 1);

    // CAST: The sign bit is no flag: reinterpreting it as unsigned is what C does.
    let flags = flags as u32 & (flags::O_ACCMODE | flags::O_NONBLOCK);
    mnt.new_file(inode, c"dmabuf", flags, fops)
}
