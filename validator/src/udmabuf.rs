// SPDX-License-Identifier: GPL-2.0
//! Exporting dma-bufs through /dev/udmabuf (include/uapi/linux/udmabuf.h).

use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::unistd::ftruncate;

/// `struct udmabuf_create`.
#[repr(C)]
pub struct UdmabufCreate {
    pub memfd: u32,
    pub flags: u32,
    pub offset: u64,
    pub size: u64,
}

/// `UDMABUF_FLAGS_CLOEXEC`.
pub const UDMABUF_FLAGS_CLOEXEC: u32 = 0x01;

nix::ioctl_write_ptr!(udmabuf_create_ioctl, b'u', 0x42, UdmabufCreate);

pub const DEVICE: &str = "/dev/udmabuf";

/// An open /dev/udmabuf.
pub struct Udmabuf {
    dev: File,
}

impl Udmabuf {
    pub fn open() -> Result<Self> {
        if !Path::new(DEVICE).exists() {
            bail!(
                "{DEVICE} not found: this kernel lacks CONFIG_UDMABUF, or devtmpfs is not mounted; \
                 run the validator in the test VM (ci/vm run VARIANT -- validator)"
            );
        }
        let dev = OpenOptions::new()
            .read(true)
            .write(true)
            .open(DEVICE)
            .with_context(|| format!("open {DEVICE} (udmabuf needs root)"))?;
        Ok(Self { dev })
    }

    /// Exports `size` bytes of a fresh sealed memfd as a dma-buf.
    pub fn export(&self, size: u64) -> Result<OwnedFd> {
        let memfd = sealed_memfd(size)?;
        self.export_from(&memfd, 0, size)
    }

    /// `UDMABUF_CREATE` on `memfd`, with `offset` and `size` as given.
    pub fn export_from(&self, memfd: &OwnedFd, offset: u64, size: u64) -> Result<OwnedFd> {
        let arg = UdmabufCreate {
            memfd: memfd.as_raw_fd() as u32,
            flags: UDMABUF_FLAGS_CLOEXEC,
            offset,
            size,
        };
        // SAFETY: `arg` is a valid `struct udmabuf_create` for the call.
        let fd = unsafe { udmabuf_create_ioctl(self.dev.as_raw_fd(), &arg) }
            .with_context(|| format!("ioctl(UDMABUF_CREATE, offset {offset}, size {size})"))?;
        // SAFETY: on success the ioctl returns a new fd that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

/// A memfd of `size` bytes sealed against shrinking, as udmabuf requires.
pub fn sealed_memfd(size: u64) -> Result<OwnedFd> {
    let fd = memfd_create(c"validator", MFdFlags::MFD_ALLOW_SEALING | MFdFlags::MFD_CLOEXEC)
        .context("memfd_create")?;
    ftruncate(&fd, size as i64).with_context(|| format!("ftruncate(memfd, {size})"))?;
    fcntl(&fd, FcntlArg::F_ADD_SEALS(SealFlag::F_SEAL_SHRINK)).context("fcntl(F_ADD_SEALS, F_SEAL_SHRINK)")?;
    Ok(fd)
}
