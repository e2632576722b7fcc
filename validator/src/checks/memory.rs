// SPDX-License-Identifier: GPL-2.0
//! Kernel memory back to its baseline after many create/close cycles.
//!
//! # The tolerance
//!
//! A kernel that leaks one object per buffer (an inode, a dentry, a
//! `struct dma_buf`, a name, a pinned page) leaks it `cycles` times: one
//! slab cache ends `cycles` objects fuller, or MemFree `cycles` pages
//! lower. What else moves a cache's count does not grow with `cycles`:
//!
//! - SLUB counts the free objects of the per-CPU slabs as active. Writing
//!   `1` to `/sys/kernel/slab/<cache>/shrink` flushes those slabs before each
//!   sample; without that file (no sysfs), they may hide up to a few slabs'
//!   worth of objects per CPU: 2 CPUs x 2 slabs x 512 objects = 2048 for the
//!   densest cache, kmalloc-8.
//! - Inodes and dentries are freed after an RCU grace period: the check
//!   samples again, for up to [`SETTLE`], until the counts come back.
//! - The rest of an idle test VM allocates a few dozen objects meanwhile.
//! - Freed pages go to per-CPU free lists first, which MemFree does not
//!   count and which, since 6.7, may grow to an eighth of their zone (32 MiB
//!   of a 1 GiB guest): far more than the signal. The free pages compared
//!   are MemFree plus those lists' pages from /proc/zoneinfo.
//!
//! So each cache may end at most `cycles / 2` objects above its baseline,
//! and the free pages at most `cycles / 2` pages below theirs: half of what leaking one
//! object or one page per buffer adds, and, with the default 4096 cycles,
//! still as much as the per-CPU slabs can hide without a shrink. One object
//! per buffer, or more, fails; noise does not. Leaks smaller than a page
//! per buffer are the slab check's to find: free memory moves in pages.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use dmabuf::parse::meminfo::Meminfo;
use dmabuf::parse::slabinfo::Cache;
use dmabuf::sys;
use dmabuf_testkit::{Backing, Exporter};

use super::Ctx;
use crate::buffers::Factory;

/// How long deferred frees (RCU) may take to bring the counts back.
const SETTLE: Duration = Duration::from_secs(3);
/// Cycles before the baseline, so that caches and per-CPU lists have grown
/// to what the workload needs before they are counted.
const WARMUP: u64 = 64;

/// One reading of kernel memory.
pub struct Sample {
    slabs: Option<HashMap<String, Cache>>,
    mem: Meminfo,
    /// Bytes on the per-CPU free lists of every zone.
    pcp: u64,
}

impl Sample {
    /// MemFree plus the per-CPU free lists, in bytes.
    fn free(&self) -> Result<u64> {
        let memfree = self
            .mem
            .get("MemFree")
            .ok_or_else(|| anyhow!("no MemFree in {}", sys::MEMINFO))?;
        Ok(memfree + self.pcp)
    }
}

/// The result of the create/close cycles of one exporter.
pub struct Run {
    cycles: u64,
    baseline: Sample,
    after: Sample,
    shrunk: bool,
    settled_in: f64,
    cycles_in: f64,
}

fn sample(slabs: bool) -> Result<(Sample, bool)> {
    let shrunk = slabs && sys::shrink_slabs()?;
    let slabs = if slabs {
        Some(
            sys::slabinfo()?
                .into_iter()
                .map(|c| (c.name.clone(), c))
                .collect(),
        )
    } else {
        None
    };
    Ok((
        Sample {
            slabs,
            mem: sys::meminfo()?,
            pcp: sys::zoneinfo()?.iter().map(|z| z.pcp_pages()).sum::<u64>() * sys::page_size(),
        },
        shrunk,
    ))
}

/// Creates and closes `n` buffers of one page each.
fn cycle(f: &Factory, e: Exporter, n: u64) -> Result<()> {
    // Every udmabuf pins a page of its own, so that a kernel that forgets to
    // unpin leaks `n` pages, not one.
    let arena = match e {
        Exporter::Udmabuf => Some(
            dmabuf::uapi::udmabuf::sealed_memfd(n * f.page)
                .context("memfd sealed with F_SEAL_SHRINK")?,
        ),
        Exporter::Heap => None,
    };
    for i in 0..n {
        let backing = match &arena {
            Some(m) => Backing::Slice(m.as_fd(), i * f.page),
            None => Backing::OwnMemfd,
        };
        drop(
            f.create(e, f.page, backing)
                .with_context(|| format!("cycle {i} of {n}"))?,
        );
    }
    Ok(())
}

/// The caches that grew by `tolerance` objects or more, most grown first.
fn grown_caches(run: &Run, tolerance: u64) -> Vec<(String, u64, u64)> {
    let (Some(before), Some(after)) = (&run.baseline.slabs, &run.after.slabs) else {
        return Vec::new();
    };
    let mut grown: Vec<(String, u64, u64)> = after
        .values()
        .filter_map(|c| {
            let base = before.get(&c.name).map_or(0, |b| b.active_objs);
            let delta = c.active_objs.saturating_sub(base);
            (delta >= tolerance).then(|| (c.name.clone(), delta, c.objsize))
        })
        .collect();
    grown.sort_by_key(|g| std::cmp::Reverse(g.1));
    grown
}

/// How far the free pages fell below their baseline, in bytes.
fn memfree_drop(run: &Run) -> Result<u64> {
    Ok(run.baseline.free()?.saturating_sub(run.after.free()?))
}

fn slab_tolerance(cycles: u64) -> u64 {
    cycles / 2
}

fn memfree_tolerance(cycles: u64, page: u64) -> u64 {
    cycles / 2 * page
}

fn settled(run: &Run, page: u64) -> Result<bool> {
    Ok(grown_caches(run, slab_tolerance(run.cycles)).is_empty()
        && memfree_drop(run)? < memfree_tolerance(run.cycles, page))
}

fn measure(ctx: &Ctx, e: Exporter, with_slabs: bool) -> Result<Run> {
    let cycles = ctx.opts.cycles as u64;
    if cycles < 2 {
        bail!("--cycles {cycles}: at least 2 needed for a tolerance of cycles / 2");
    }
    cycle(&ctx.f, e, WARMUP)?;
    let (baseline, shrunk) = sample(with_slabs)?;
    let start = Instant::now();
    cycle(&ctx.f, e, cycles)?;
    let cycles_in = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let mut run = Run {
        cycles,
        baseline,
        after: sample(with_slabs)?.0,
        shrunk,
        settled_in: 0.0,
        cycles_in,
    };
    while !settled(&run, ctx.f.page)? && start.elapsed() < SETTLE {
        std::thread::sleep(Duration::from_millis(50));
        run.after = sample(with_slabs)?.0;
    }
    run.settled_in = start.elapsed().as_secs_f64();
    Ok(run)
}

/// The cycles of `e`, run once for both checks.
fn run(ctx: &mut Ctx, e: Exporter, with_slabs: bool) -> Result<&Run> {
    let stale = match ctx.memory.get(&e) {
        None => true,
        // A run without slabinfo does not serve the slab check.
        Some(Ok(r)) => with_slabs && r.baseline.slabs.is_none(),
        Some(Err(_)) => false,
    };
    if stale {
        let run = measure(ctx, e, with_slabs).map_err(|e| format!("{e:#}"));
        if let Ok(r) = &run {
            ctx.note(format!(
                "{e}: {} create/close cycles in {:.2} s, settled in {:.2} s, per-CPU slabs {}",
                r.cycles,
                r.cycles_in,
                r.settled_in,
                if r.shrunk {
                    "flushed"
                } else {
                    "not flushed (no /sys/kernel/slab)"
                }
            ));
        }
        ctx.memory.insert(e, run);
    }
    match ctx.memory.get(&e).expect("inserted above") {
        Ok(r) => Ok(r),
        Err(msg) => Err(anyhow!("{msg}")),
    }
}

pub fn slab_baseline(ctx: &mut Ctx, e: Exporter) -> Result<String> {
    let run = run(ctx, e, true)?;
    let tolerance = slab_tolerance(run.cycles);
    let grown = grown_caches(run, tolerance);
    if let Some((name, delta, size)) = grown.first() {
        bail!(
            "slab cache {name} holds {delta} more objects of {size} bytes after {} create/close cycles: expected fewer than {tolerance}, half a leaked object per buffer ({} caches grew that much)",
            run.cycles,
            grown.len()
        );
    }
    let largest = match grown_caches(run, 1).first() {
        Some((name, delta, _)) => format!("largest growth {name} +{delta}"),
        None => "no cache grew".into(),
    };
    let before = run
        .baseline
        .slabs
        .as_ref()
        .map_or(0, |s| s.values().map(Cache::active_bytes).sum::<u64>());
    let after = run
        .after
        .slabs
        .as_ref()
        .map_or(0, |s| s.values().map(Cache::active_bytes).sum::<u64>());
    Ok(format!(
        "{} cycles: no cache grew by {tolerance} objects ({largest}); active slab {} KiB before, {} KiB after",
        run.cycles,
        before >> 10,
        after >> 10
    ))
}

pub fn meminfo_baseline(ctx: &mut Ctx, e: Exporter) -> Result<String> {
    let page = ctx.f.page;
    let with_slabs = std::path::Path::new(sys::SLABINFO).exists();
    let run = run(ctx, e, with_slabs)?;
    let fell = memfree_drop(run)?;
    let tolerance = memfree_tolerance(run.cycles, page);
    if fell >= tolerance {
        bail!(
            "MemFree plus per-CPU free lists is {} KiB below its baseline after {} create/close cycles: expected less than {} KiB, half a leaked page per buffer",
            fell >> 10,
            run.cycles,
            tolerance >> 10
        );
    }
    let kib = |s: &Sample, k: &str| s.mem.get(k).unwrap_or(0) >> 10;
    Ok(format!(
        "{} cycles: MemFree {} + per-CPU lists {} KiB before, {} + {} KiB after (tolerance {} KiB); Slab {} KiB before, {} KiB after",
        run.cycles,
        kib(&run.baseline, "MemFree"),
        run.baseline.pcp >> 10,
        kib(&run.after, "MemFree"),
        run.after.pcp >> 10,
        tolerance >> 10,
        kib(&run.baseline, "Slab"),
        kib(&run.after, "Slab"),
    ))
}
