// SPDX-License-Identifier: GPL-2.0
//! What the subcommands share: the exporters, the live-object counts, the
//! slab comparison.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};
use std::thread::sleep;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::ValueEnum;

use dmabuf::exporter::ExportError;
use dmabuf::uapi::udmabuf;
use dmabuf::{sys, Backing, Devices, Exporter};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Which {
    Udmabuf,
    Heap,
    All,
}

impl Which {
    pub fn exporters(self) -> Vec<Exporter> {
        match self {
            Which::Udmabuf => vec![Exporter::Udmabuf],
            Which::Heap => vec![Exporter::Heap],
            Which::All => Exporter::ALL.to_vec(),
        }
    }
}

/// Both exporters' devices, or what is missing and where to run instead.
pub fn open_devices() -> Result<Devices> {
    Devices::open(&Exporter::ALL).map_err(|e| {
        anyhow::anyhow!(
            "{e}; run dmabuf-stress in the test VM: ci/vm run rust -- dmabuf-stress ..."
        )
    })
}

/// A one-page buffer of `e`; for udmabuf, page `page` of `memfd`. The
/// export ioctl is the only call.
pub fn export(
    d: &Devices,
    e: Exporter,
    memfd: &OwnedFd,
    page: u64,
) -> Result<OwnedFd, ExportError> {
    let size = sys::page_size();
    d.export(e, size, Backing::Slice(memfd.as_fd(), page * size))
}

/// A sealed memfd of `pages` pages for udmabuf, its pages allocated.
pub fn backing(pages: u64) -> Result<OwnedFd> {
    let len = pages * sys::page_size();
    udmabuf::populated_memfd(len).with_context(|| format!("memfd of {len} bytes, fallocated"))
}

/// What must come back to where it was: this process's fds, the buffers
/// debugfs lists, and the slab caches (per-CPU slabs flushed).
pub struct Live {
    pub fds: usize,
    pub buffers: usize,
    pub slabs: BTreeMap<String, (u64, u64)>,
}

/// The caches a dma-buf and its file are made of, and that a leak on their
/// paths would grow.
fn watched(name: &str) -> bool {
    matches!(name, "inode_cache" | "dentry" | "filp") || name.starts_with("kmalloc-")
}

impl Live {
    pub fn now() -> Result<Live> {
        sys::shrink_slabs()?;
        Ok(Live {
            fds: sys::open_fds()?,
            buffers: sys::bufinfo()?.buffers.len(),
            slabs: sys::slabinfo()?
                .into_iter()
                .filter(|c| watched(&c.name))
                .map(|c| (c.name, (c.active_objs, c.objsize)))
                .collect(),
        })
    }

    /// What did not come back, given `margin` objects per cache of noise
    /// (the rest of the guest allocates meanwhile). Inodes and dentries are
    /// freed after an RCU grace period, and kfree_rcu() drains its batches
    /// only every 5 s (KFREE_DRAIN_JIFFIES), later on a slow debug kernel:
    /// it samples again for up to 20 s before it says so. A leak never
    /// comes back, however long it waits.
    pub fn compare(&self, margin: u64) -> Result<Result<String, String>> {
        let mut problems = Vec::new();
        for _ in 0..100 {
            let now = Live::now()?;
            problems.clear();
            if now.fds != self.fds {
                problems.push(format!("{} fds open, {} before", now.fds, self.fds));
            }
            if now.buffers != self.buffers {
                problems.push(format!(
                    "debugfs bufinfo lists {} buffers, {} before",
                    now.buffers, self.buffers
                ));
            }
            for (name, &(objs, size)) in &now.slabs {
                let before = self.slabs.get(name).map_or(0, |b| b.0);
                if objs > before + margin {
                    problems.push(format!(
                        "slab cache {name} holds {} more objects of {size} bytes ({before} -> {objs}); \
                         at most {margin} is noise",
                        objs - before
                    ));
                }
            }
            if problems.is_empty() {
                return Ok(Ok(format!(
                    "fds, bufinfo and the inode_cache, dentry, filp and kmalloc caches back to \
                     their baseline (within {margin} objects)"
                )));
            }
            sleep(Duration::from_millis(200));
        }
        Ok(Err(problems.join("\n")))
    }
}
