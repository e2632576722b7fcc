// SPDX-License-Identifier: GPL-2.0
//! The dma-buf uapi: the ioctls that create and name dma-bufs.
//!
//! Thin wrappers that return the kernel's errno unchanged ([`nix::Result`]),
//! so that callers can tell `EINVAL` from `EBADFD`, and that hand every new
//! file descriptor out as an [`OwnedFd`](std::os::fd::OwnedFd).

pub mod dma_buf;
pub mod heap;
pub mod udmabuf;
