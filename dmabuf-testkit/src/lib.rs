// SPDX-License-Identifier: GPL-2.0
//! What the tests that run in the VM share: `validator`, `dmabuf-stress`,
//! `dmabuf-bench` and `lsdmabuf-vmtest`, on top of the `dmabuf` crate's
//! parsers, uapi and I/O.
//!
//! - [`exporter`]: the two exporters the tests use, their devices opened
//!   with an error that says what is missing, and one way to export from
//!   either.
//! - [`leftover`]: what closed buffers left behind in a process's fds and
//!   maps and in debugfs bufinfo.
//! - [`scm_rights`]: fds passed to another process over a Unix socket.
//! - [`tap`]: the TAP output of the tests, and the listing of their checks.
//! - [`threads`]: joining test threads, a panic reported with its message.
//! - [`rng`]: the seeded generator their random operation mixes use.

pub mod exporter;
pub mod leftover;
pub mod rng;
pub mod scm_rights;
pub mod tap;
pub mod threads;

pub use exporter::{Backing, Devices, Exporter};
