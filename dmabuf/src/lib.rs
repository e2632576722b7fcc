// SPDX-License-Identifier: GPL-2.0
//! The dma-buf side of procfs, debugfs and the exporters' uapi, for the
//! project's userspace tools: `validator`, `lsdmabuf`, `dmabuf-stress` and
//! `dmabuf-bench`.
//!
//! - [`parse`]: pure parsers over the text of `/proc/PID/fdinfo/N`,
//!   `/proc/PID/maps`, debugfs `dma_buf/bufinfo`, `/proc/slabinfo`,
//!   `/proc/meminfo` and `/proc/zoneinfo`; no I/O, so they are unit-tested
//!   on the host with text captured from real kernels (`testdata/`).
//! - [`uapi`]: the ioctls of `linux/dma-buf.h`, `linux/udmabuf.h` and
//!   `linux/dma-heap.h`.
//! - [`exporter`]: the two exporters the tools use, their devices opened
//!   with an error that says what is missing, and one way to export from
//!   either.
//! - [`sys`]: the I/O around the parsers: reading procfs and debugfs files,
//!   fd links, shared mappings.
//! - [`leftover`]: what closed buffers left behind in a process's fds and
//!   maps and in debugfs bufinfo.
//! - [`tap`]: the TAP output of the tests that run in the VM, and the
//!   listing of their checks.
//! - [`threads`]: joining test threads, a panic reported with its message.
//! - [`rng`]: the seeded generator their random operation mixes use.

pub mod exporter;
pub mod leftover;
pub mod parse;
pub mod rng;
pub mod sys;
pub mod tap;
pub mod threads;
pub mod uapi;

pub use exporter::{Backing, Devices, Exporter};
