// SPDX-License-Identifier: GPL-2.0

//! The dmabuf pseudo filesystem, in Rust.
//!
//! Every dma-buf gets an inode of its own, so that `stat(2)` on a dma-buf file descriptor tells
//! the buffers apart (`st_ino`) and says how big each one is (`st_size`, `st_blocks`). Built
//! instead of `dma-buf-fs.c` when `CONFIG_DMABUF_FS_RUST` is set, with the same interface to the
//! dma-buf core and the same behaviour.
//!
//! C header: [`drivers/dma-buf/dma-buf-fs.h`](srctree/drivers/dma-buf/dma-buf-fs.h)

use core::sync::atomic::{AtomicU64, Ordering};
use kernel::{
    c_str, dma_buf,
    ffi::{c_int, c_void},
    fs::{flags, pseudo, File, FileOperations},
    prelude::*,
    types::{ARef, ForeignOwnable},
    uapi,
};

struct DmaBufFs;

// SAFETY: The dma-buf core is the only code that sets `d_fsdata` on this filesystem: once, in
// `dma_buf_export()`, to the buffer the file was made for, handing the buffer's final release to
// the dentry. That is what a foreign `dma_buf::DentryData` is.
#[vtable]
unsafe impl pseudo::PseudoFs for DmaBufFs {
    const NAME: &'static CStr = c_str!("dmabuf");
    const MAGIC: u32 = uapi::DMA_BUF_MAGIC;
    type DentryData = dma_buf::DentryData;

    /// `/dmabuf:` and the name userspace gave the buffer, if any: what `readlink(2)` shows.
    fn dname<'a>(
        dentry: &pseudo::Dentry<Self>,
        buf: pseudo::DnameBuffer<'a>,
    ) -> Result<pseudo::DentryName<'a>> {
        let mut name = [0u8; dma_buf::NAME_LEN];
        let name = dentry
            .data()
            .and_then(|dmabuf| dmabuf.name(&mut name))
            .map_or(&[][..], |name| name.as_bytes());
        buf.write(&[b"/", dentry.name().as_bytes(), b":", name])
    }
}

static DMA_BUF_FS: pseudo::Type<DmaBufFs> = pseudo::Type::new();

/// The inode number of the newest dma-buf.
///
/// `get_next_ino()` numbers are 32 bits wide, shared with every other pseudo filesystem, and wrap;
/// dma-buf numbers must stay unique among dma-bufs for as long as the system runs.
static LAST_INO: AtomicU64 = AtomicU64::new(0);

/// Mounts the dmabuf filesystem for the kernel's own use.
///
/// Returns the mount, or an `ERR_PTR()`.
#[no_mangle]
pub extern "C" fn dma_buf_fs_mount() -> *mut c_void {
    match DMA_BUF_FS.mount() {
        Ok(mnt) => mnt.into_foreign().cast_mut(),
        Err(e) => e.to_ptr(),
    }
}

/// Unmounts the dmabuf filesystem.
///
/// # Safety
///
/// `mnt` must be a mount that [`dma_buf_fs_mount`] returned and that is not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn dma_buf_fs_unmount(mnt: *mut c_void) {
    // SAFETY: The caller passes back the mount `dma_buf_fs_mount()` gave it, for good.
    drop(unsafe { pseudo::KernMount::<DmaBufFs>::from_foreign(mnt) });
}

/// Makes the file of a new dma-buf of `size` bytes, on an inode of its own.
///
/// Only `O_ACCMODE` and `O_NONBLOCK` of `flags` are kept. Returns the file, or an `ERR_PTR()`.
///
/// # Safety
///
/// `mnt` must be a mount that [`dma_buf_fs_mount`] returned and that stays mounted during the
/// call, and `fops` must point at file operations that live forever.
#[no_mangle]
pub unsafe extern "C" fn dma_buf_fs_getfile(
    mnt: *mut c_void,
    size: usize,
    flags: c_int,
    fops: *const FileOperations,
) -> *mut File {
    // SAFETY: The caller passes a mount from `dma_buf_fs_mount()` that stays mounted meanwhile.
    let mnt = unsafe { pseudo::KernMount::<DmaBufFs>::borrow(mnt) };

    // SAFETY: The caller passes file operations that live forever (the core's `dma_buf_fops`).
    let fops = unsafe { &*fops };

    match new_file(mnt, size, flags, fops) {
        Ok(file) => ARef::into_raw(file).as_ptr(),
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
    inode.set_ino(LAST_INO.fetch_add(1, Ordering::Relaxed) + 1);

    // The sign bit is no flag: reinterpreting it as unsigned is what C does.
    let flags = flags as u32 & (flags::O_ACCMODE | flags::O_NONBLOCK);
    mnt.new_file(inode, c_str!("dmabuf"), flags, fops)
}
