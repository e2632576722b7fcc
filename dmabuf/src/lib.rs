// SPDX-License-Identifier: GPL-2.0
//! The dma-buf side of procfs, debugfs and the exporters' uapi, for the
//! project's userspace tools: `lsdmabuf`, and the tests that run in the VM
//! (`validator`, `dmabuf-stress`, `dmabuf-bench`, `lsdmabuf-vmtest`), whose
//! shared test kit is the `dmabuf-testkit` crate.
//!
//! - [`parse`]: pure parsers over the text of `/proc/PID/fdinfo/N`,
//!   `/proc/PID/maps`, debugfs `dma_buf/bufinfo`, `/proc/slabinfo`,
//!   `/proc/meminfo` and `/proc/zoneinfo`; no I/O, so they are unit-tested
//!   on the host with text captured from real kernels (`testdata/`).
//! - [`uapi`]: the ioctls of `linux/dma-buf.h`, `linux/udmabuf.h` and
//!   `linux/dma-heap.h`.
//! - [`sys`]: the I/O around the parsers: reading procfs and debugfs files,
//!   fd links, shared mappings.

pub mod parse;
pub mod sys;
pub mod uapi;
