// SPDX-License-Identifier: GPL-2.0
//! `include/uapi/linux/dma-heap.h`: dma-bufs from a dma-heap.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;

/// The system heap (drivers/dma-buf/heaps/system_heap.c), whose buffers
/// carry the exporter name `system`.
pub const SYSTEM: &str = "/dev/dma_heap/system";

/// `struct dma_heap_allocation_data`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct DmaHeapAllocationData {
    pub len: u64,
    /// Out: the new dma-buf's fd. Must be 0 on the way in.
    pub fd: u32,
    /// `O_CLOEXEC` and `O_ACCMODE` bits only.
    pub fd_flags: u32,
    /// No heap flags exist yet: must be 0.
    pub heap_flags: u64,
}

nix::ioctl_readwrite!(dma_heap_ioctl_alloc, b'H', 0x0, DmaHeapAllocationData);

/// An open dma-heap device.
#[derive(Debug)]
pub struct DmaHeap {
    dev: OwnedFd,
}

impl DmaHeap {
    /// Opens the heap device at `path` (root only, mode 0600 by default).
    pub fn open(path: &str) -> nix::Result<Self> {
        let dev = open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())?;
        Ok(Self { dev })
    }

    /// Allocates a read-write dma-buf of `len` bytes (rounded up to pages).
    pub fn alloc(&self, len: u64) -> nix::Result<OwnedFd> {
        self.alloc_raw(DmaHeapAllocationData {
            len,
            fd: 0,
            fd_flags: (libc::O_RDWR | libc::O_CLOEXEC) as u32,
            heap_flags: 0,
        })
    }

    /// DMA_HEAP_IOCTL_ALLOC with the argument as given.
    pub fn alloc_raw(&self, mut data: DmaHeapAllocationData) -> nix::Result<OwnedFd> {
        // SAFETY: `data` is a `struct dma_heap_allocation_data` that outlives
        // the call; the kernel reads it and writes back `fd`.
        unsafe { dma_heap_ioctl_alloc(self.dev.as_raw_fd(), &mut data) }?;
        // SAFETY: on success the ioctl stored a new fd that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(data.fd as i32) })
    }
}
