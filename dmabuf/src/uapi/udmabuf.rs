// SPDX-License-Identifier: GPL-2.0
//! `include/uapi/linux/udmabuf.h`: dma-bufs of memfd pages.
//!
//! drivers/dma-buf/udmabuf.c takes a memfd (shmem or hugetlbfs) sealed with
//! `F_SEAL_SHRINK` and not with `F_SEAL_WRITE`/`F_SEAL_FUTURE_WRITE`, and a
//! page-aligned, non-empty range of it no larger than `size_limit_mb`.

use std::ffi::CStr;
use std::fs;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::fcntl::{fallocate, fcntl, open, FallocateFlags, FcntlArg, OFlag, SealFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::sys::stat::Mode;
use nix::unistd::ftruncate;

/// Where devtmpfs puts the udmabuf misc device.
pub const DEVICE: &str = "/dev/udmabuf";

/// The module parameter with the size limit in MiB (default 64).
pub const SIZE_LIMIT_PARAM: &str = "/sys/module/udmabuf/parameters/size_limit_mb";

/// `udmabuf.c`'s default `size_limit_mb`.
pub const DEFAULT_SIZE_LIMIT_MB: u64 = 64;

/// `struct udmabuf_create`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct UdmabufCreate {
    pub memfd: u32,
    pub flags: u32,
    pub offset: u64,
    pub size: u64,
}

/// `UDMABUF_FLAGS_CLOEXEC`.
pub const UDMABUF_FLAGS_CLOEXEC: u32 = 0x01;

nix::ioctl_write_ptr!(udmabuf_create, b'u', 0x42, UdmabufCreate);

/// An open `/dev/udmabuf`.
#[derive(Debug)]
pub struct Udmabuf {
    dev: OwnedFd,
}

impl Udmabuf {
    /// Opens [`DEVICE`] (root only, mode 0600 by default).
    pub fn open() -> nix::Result<Self> {
        let dev = open(DEVICE, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())?;
        Ok(Self { dev })
    }

    /// UDMABUF_CREATE of `size` bytes at `offset` of `memfd`.
    pub fn create(&self, memfd: BorrowedFd<'_>, offset: u64, size: u64) -> nix::Result<OwnedFd> {
        self.create_raw(&UdmabufCreate {
            memfd: memfd.as_raw_fd() as u32,
            flags: UDMABUF_FLAGS_CLOEXEC,
            offset,
            size,
        })
    }

    /// UDMABUF_CREATE with the argument as given, `memfd` any number.
    pub fn create_raw(&self, arg: &UdmabufCreate) -> nix::Result<OwnedFd> {
        // SAFETY: `arg` is a `struct udmabuf_create` that outlives the call;
        // the kernel only reads it.
        let fd = unsafe { udmabuf_create(self.dev.as_raw_fd(), arg) }?;
        // SAFETY: on success UDMABUF_CREATE returns a new fd that nothing
        // else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

/// udmabuf's size limit in bytes, from its module parameter; the default when
/// the parameter cannot be read.
pub fn size_limit() -> u64 {
    fs::read_to_string(SIZE_LIMIT_PARAM)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(DEFAULT_SIZE_LIMIT_MB)
        << 20
}

/// A memfd of `size` bytes with sealing allowed and `seals` added.
pub fn memfd(name: &CStr, size: u64, seals: SealFlag) -> nix::Result<OwnedFd> {
    let fd = memfd_create(name, MFdFlags::MFD_ALLOW_SEALING | MFdFlags::MFD_CLOEXEC)?;
    ftruncate(&fd, size as libc::off_t)?;
    if !seals.is_empty() {
        fcntl(&fd, FcntlArg::F_ADD_SEALS(seals))?;
    }
    Ok(fd)
}

/// A memfd of `size` bytes sealed with `F_SEAL_SHRINK`, as udmabuf wants it.
pub fn sealed_memfd(size: u64) -> nix::Result<OwnedFd> {
    memfd(c"udmabuf", size, SealFlag::F_SEAL_SHRINK)
}

/// [`sealed_memfd`] with its pages allocated now (fallocate()), so that the
/// buffers made on it allocate none: what a test that counts allocations,
/// or injects faults into them, cuts its buffers from.
pub fn populated_memfd(size: u64) -> nix::Result<OwnedFd> {
    let fd = sealed_memfd(size)?;
    fallocate(&fd, FallocateFlags::empty(), 0, size as libc::off_t)?;
    Ok(fd)
}
