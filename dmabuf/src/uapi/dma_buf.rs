// SPDX-License-Identifier: GPL-2.0
//! `include/uapi/linux/dma-buf.h` and `include/uapi/linux/magic.h`.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;

/// `DMA_BUF_MAGIC`: `f_type` of the dmabuf pseudo filesystem ("DMAB").
pub const DMA_BUF_MAGIC: u64 = 0x444d_4142;

/// `ANON_INODE_FS_MAGIC`: `f_type` of anon_inodefs, where dma-bufs lived
/// before they had inodes of their own.
pub const ANON_INODE_FS_MAGIC: u64 = 0x0904_1934;

/// `DMA_BUF_NAME_LEN`: the longest name DMA_BUF_SET_NAME takes, NUL included.
pub const DMA_BUF_NAME_LEN: usize = 32;

/// The `readlink()` of a dma-buf's fd starts with this, the name follows.
pub const LINK_PREFIX: &str = "/dmabuf:";

/// `DMA_BUF_SET_NAME`: `_IOW('b', 1, const char *)`. The argument is the
/// string's address itself, not a pointer to it.
const DMA_BUF_SET_NAME: libc::Ioctl =
    nix::request_code_write!(b'b', 1, std::mem::size_of::<*const libc::c_char>()) as libc::Ioctl;

/// Names the dma-buf `fd` (DMA_BUF_SET_NAME).
pub fn set_name(fd: BorrowedFd<'_>, name: &CStr) -> nix::Result<()> {
    set_name_at(fd, name.as_ptr() as usize)
}

/// DMA_BUF_SET_NAME with the name read from `addr`, a user address that may
/// or may not be readable.
///
/// The kernel reads at most [`DMA_BUF_NAME_LEN`] bytes there with
/// `strndup_user()`, with fault handling, and never writes: an address it
/// cannot read fails with `EFAULT`, and no address can make this unsound.
pub fn set_name_at(fd: BorrowedFd<'_>, addr: usize) -> nix::Result<()> {
    // SAFETY: DMA_BUF_SET_NAME only reads through its argument, from the
    // kernel side with fault handling (see above); `fd` is open for the call.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), DMA_BUF_SET_NAME, addr) };
    Errno::result(ret).map(drop)
}
