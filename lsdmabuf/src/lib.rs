// SPDX-License-Identifier: GPL-2.0
//! lsdmabuf: which process holds which dma-buf, and how much memory that is.
//!
//! Every dma-buf has an inode of its own on the dmabuf filesystem (Linux
//! 5.3 and later), the same through every fd and mapping that reaches it.
//! lsdmabuf walks /proc, finds the dma-bufs each process holds by fd and by
//! mapping, and groups them by inode.
//!
//! - [`scan`]: the walk, the only I/O; it returns a [`raw::Raw`], the text it
//!   read.
//! - [`raw`]: that text, and its capture format (`--save`, `--load`, tests).
//! - [`model`]: pure: buffers, holders, per-process Rss and Pss, exporters,
//!   users, cgroups, totals, filters, sorting, and what changed between two
//!   walks; parses with the `dmabuf` crate's parsers.
//! - [`human`]: tables, CSV and sizes for people.
//! - [`watch`]: `--watch`, a walk every few seconds and what changed.
//! - [`verdict`]: the exit status and its reasons, one rule for a walk
//!   and a capture.

pub mod human;
pub mod model;
pub mod raw;
pub mod scan;
pub mod verdict;
pub mod watch;
