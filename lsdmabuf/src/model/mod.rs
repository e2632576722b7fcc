// SPDX-License-Identifier: GPL-2.0
//! Who holds which dma-buf: what a walk read ([`Raw`](crate::raw::Raw)),
//! grouped by inode.
//!
//! Pure: no I/O, so that it runs on the host on captured text. A dma-buf is
//! named by the inode number of its file on the dmabuf filesystem, the same
//! from every fd and mapping that reaches it. A process *holds* a buffer when
//! one of its fds is the buffer's file or one of its mappings maps it. As in
//! Android's `dmabuf_dump`:
//!
//! - a process's **Rss** is the sum of the sizes of the buffers it holds,
//!   each counted once however many fds and mappings reach it;
//! - its **Pss** is the sum, over those buffers, of its share of the
//!   buffer's size: the size divided by the number of processes that hold
//!   it, in bytes, the remainder of the division a byte each to the first
//!   holders in pid order ([`pss_shares`]), so that the Pss of all
//!   processes adds up exactly to the size of all buffers held.
//!
//! Its parts:
//!
//! - `procfs`: what the model reads of each process's text, and the
//!   [`Digest`] of one process;
//! - `analysis`: one walk grouped by buffer ([`Analysis`]), and the report
//!   of what a [`Filter`] selects;
//! - `report`: the [`Report`]'s lists and totals, sorted and viewed;
//! - `changes`: what changed between two reports ([`Changes`], `--watch`).

mod analysis;
mod changes;
mod procfs;
mod report;
#[cfg(test)]
mod test_walks;

pub use analysis::{errno_name, pss_shares, Analysis, Filter};
pub use changes::{Change, Changes, ProcessChange};
pub use procfs::{
    cgroup_path, digest, dmabuf_mappings, fdinfo_ino, keep_maps, keep_maps_bytes, link_kind,
    passwd_names, stat_is_kernel_thread, status_uid, status_uid_line, Digest, LinkKind,
    LEGACY_LINK,
};
pub use report::{
    Buffer, Count, Exporter, Grid, GridProcess, GridRow, Group, Holder, HolderRow, Process, Report,
    ScanNotes, SizeFrom, SortKey, Totals, Unreadable, View,
};
