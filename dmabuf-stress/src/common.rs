// SPDX-License-Identifier: GPL-2.0
//! What the subcommands share: the exporters, the live-object counts, the
//! slab comparison.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};
use std::thread::sleep;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::ValueEnum;

use dmabuf::sys;
use dmabuf::uapi::udmabuf;
use dmabuf_testkit::exporter::ExportError;
use dmabuf_testkit::{Backing, Devices, Exporter};

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

/// How the samples flush the slab caches' per-CPU slabs.
pub enum Shrinker {
    /// Through their `shrink` files, opened once before the baseline and
    /// held for every sample after it (the fds they take are in every
    /// count): a sample then allocates nothing that outlives it.
    Held(Option<sys::SlabShrinker>),
    /// Opening each `shrink` file for each sample, which leaves a
    /// kfree_rcu() backlog of about one small object per cache: for a
    /// baseline that tolerates far more, in a process whose fd table
    /// should hold no more than its own fds.
    Reopened,
}

impl Shrinker {
    pub fn held() -> Result<Shrinker> {
        Ok(Shrinker::Held(sys::SlabShrinker::open()?))
    }

    fn shrink(&self) -> Result<()> {
        match self {
            Shrinker::Held(Some(s)) => s.shrink(),
            Shrinker::Held(None) => Ok(()),
            Shrinker::Reopened => sys::shrink_slabs().map(|_| ()),
        }
    }
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
    /// The counts now, the slabs flushed by `shrinker` first.
    pub fn now(shrinker: &Shrinker) -> Result<Live> {
        shrinker.shrink()?;
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

    /// `now` against this baseline: what did not come back, given `margin`
    /// objects per cache of noise; or, when everything did, the largest
    /// growth within the margin.
    pub fn judge(&self, now: &Live, margin: u64) -> Result<String, Vec<String>> {
        let mut problems = Vec::new();
        if now.fds != self.fds {
            problems.push(format!("{} fds open, {} before", now.fds, self.fds));
        }
        if now.buffers != self.buffers {
            problems.push(format!(
                "debugfs bufinfo lists {} buffers, {} before",
                now.buffers, self.buffers
            ));
        }
        let mut largest: Option<(&str, u64)> = None;
        for (name, &(objs, size)) in &now.slabs {
            let before = self.slabs.get(name).map_or(0, |b| b.0);
            let grown = objs.saturating_sub(before);
            if grown > margin {
                problems.push(format!(
                    "slab cache {name} holds {grown} more objects of {size} bytes ({before} -> {objs}); \
                     at most {margin} is noise"
                ));
            } else if grown > 0 && largest.is_none_or(|(_, g)| grown > g) {
                largest = Some((name, grown));
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(format!(
            "fds, bufinfo and the inode_cache, dentry, filp and kmalloc caches back to their \
             baseline within {margin} objects ({})",
            match largest {
                Some((name, g)) => format!("the largest growth: {name} +{g}"),
                None => "none grew".into(),
            }
        ))
    }

    /// What did not come back, given `margin` objects per cache of noise
    /// (the rest of the guest allocates meanwhile). Inodes and dentries are
    /// freed after an RCU grace period, and kfree_rcu() drains its batches
    /// only every 5 s (KFREE_DRAIN_JIFFIES), later on a slow debug kernel:
    /// it samples again for up to 20 s before it says so. A leak never
    /// comes back, however long it waits.
    pub fn compare(&self, shrinker: &Shrinker, margin: u64) -> Result<Result<String, String>> {
        let mut problems = Vec::new();
        for _ in 0..100 {
            match self.judge(&Live::now(shrinker)?, margin) {
                Ok(message) => return Ok(Ok(message)),
                Err(p) => problems = p,
            }
            sleep(Duration::from_millis(200));
        }
        Ok(Err(problems.join("\n")))
    }
}

/// One check a subcommand runs, for `--list-checks` and its TAP plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub name: String,
    pub about: String,
}

impl Listed {
    pub fn new(name: impl Into<String>, about: impl Into<String>) -> Self {
        Listed {
            name: name.into(),
            about: about.into(),
        }
    }
}

/// The names of `checks`, in order: the plan of the run that lists them.
pub fn names(checks: &[Listed]) -> Vec<String> {
    checks.iter().map(|c| c.name.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(fds: usize, buffers: usize, slabs: &[(&str, u64)]) -> Live {
        Live {
            fds,
            buffers,
            slabs: slabs
                .iter()
                .map(|&(n, objs)| (n.to_string(), (objs, 64)))
                .collect(),
        }
    }

    #[test]
    fn judged_against_the_baseline() {
        let base = live(5, 0, &[("inode_cache", 100), ("kmalloc-64", 50)]);
        assert_eq!(
            base.judge(&base, 0),
            Ok(
                "fds, bufinfo and the inode_cache, dentry, filp and kmalloc caches back to their \
                baseline within 0 objects (none grew)"
                    .into()
            )
        );
        let noisy = live(5, 0, &[("inode_cache", 102), ("kmalloc-64", 49)]);
        assert!(base
            .judge(&noisy, 3)
            .unwrap()
            .ends_with("(the largest growth: inode_cache +2)"));
        assert_eq!(
            base.judge(&noisy, 1),
            Err(vec![
                "slab cache inode_cache holds 2 more objects of 64 bytes (100 -> 102); at most 1 is noise"
                    .to_string()
            ])
        );
        let leaky = live(
            6,
            1,
            &[("inode_cache", 100), ("kmalloc-64", 50), ("filp", 4)],
        );
        assert_eq!(
            base.judge(&leaky, 3),
            Err(vec![
                "6 fds open, 5 before".to_string(),
                "debugfs bufinfo lists 1 buffers, 0 before".to_string(),
                "slab cache filp holds 4 more objects of 64 bytes (0 -> 4); at most 3 is noise"
                    .to_string(),
            ])
        );
    }
}
