// SPDX-License-Identifier: GPL-2.0
//! The measurements, in the test VM: kernel memory per live buffer, and
//! the latency of export+close and of fstat.

use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::resource::{getrlimit, setrlimit, Resource};
use nix::sys::stat::fstat;

use dmabuf::parse::slabinfo::Cache;
use dmabuf::sys;
use dmabuf::uapi::udmabuf;
use dmabuf_testkit::{Backing, Devices, Exporter};

use crate::model::{diff, Latency, Memory, Model, Run, Stats};

/// Buffers made and closed before a baseline, so that the caches and the
/// fd table have grown to what the workload needs before they are counted.
const WARMUP: u64 = 256;
/// Iterations not timed before each latency series.
const LATENCY_WARMUP: u64 = 200;
/// A sample is settled when the slab total moved by at most this much
/// since the one before (inodes and dentries are freed after an RCU grace
/// period, so the frees of the warm-up may still be on their way).
const SETTLED_BYTES: i64 = 16 << 10;
const SETTLE_TRIES: u32 = 50;
const SETTLE_STEP: Duration = Duration::from_millis(100);

pub struct Opts {
    pub counts: Vec<u64>,
    pub iterations: u64,
}

/// /dev/udmabuf, or what is missing and where to run instead.
fn open_devices() -> Result<Devices> {
    Devices::open(&[Exporter::Udmabuf]).map_err(|e| {
        anyhow::anyhow!(
            "{e}; run the benchmark in the test VM (ci/bench, or ci/vm run rust -- dmabuf-bench measure)"
        )
    })
}

/// Lets this process hold `fds` more files, raising the hard limit too
/// when it may.
fn raise_nofile(fds: u64) -> Result<()> {
    let want = fds + 64;
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).context("getrlimit(RLIMIT_NOFILE)")?;
    if soft >= want {
        return Ok(());
    }
    let hard = hard.max(want);
    setrlimit(Resource::RLIMIT_NOFILE, want, hard).with_context(|| {
        format!(
            "the benchmark holds {fds} buffers at once but RLIMIT_NOFILE is {soft}, and raising \
             it to {want} failed: run it as root, or with ulimit -n {want}"
        )
    })
}

/// A memfd of `pages` pages, sealed for udmabuf, its pages allocated now so
/// that the buffers made on it allocate none.
fn backing(pages: u64) -> Result<OwnedFd> {
    let len = pages * sys::page_size();
    udmabuf::populated_memfd(len).with_context(|| format!("memfd of {len} bytes, fallocated"))
}

/// A one-page udmabuf of page `page` of `memfd`.
fn export(d: &Devices, memfd: &OwnedFd, page: u64) -> Result<OwnedFd> {
    let size = sys::page_size();
    d.export(
        Exporter::Udmabuf,
        size,
        Backing::Slice(memfd.as_fd(), page * size),
    )
    .with_context(|| format!("export of page {page} of the memfd"))
}

/// Every slab cache (per-CPU slabs flushed first) and meminfo's Slab, in
/// bytes, once two readings in a row agree.
fn settled_sample() -> Result<(Vec<Cache>, i64)> {
    let mut last: Option<i64> = None;
    for _ in 0..SETTLE_TRIES {
        if !sys::shrink_slabs()? {
            bail!(
                "{} not found: the benchmark needs SLUB's sysfs (CONFIG_SYSFS, CONFIG_SLUB) to \
                 count slab objects exactly",
                sys::SLAB_SYSFS
            );
        }
        let caches = sys::slabinfo()?;
        let total: i64 = caches.iter().map(|c| c.active_bytes() as i64).sum();
        if last.is_some_and(|l| (total - l).abs() <= SETTLED_BYTES) {
            let slab = sys::meminfo()?
                .get("Slab")
                .with_context(|| format!("no Slab line in {}", sys::MEMINFO))?;
            return Ok((caches, slab as i64));
        }
        last = Some(total);
        sleep(SETTLE_STEP);
    }
    bail!(
        "slab usage did not settle in {:?}: something else in the guest is allocating",
        SETTLE_STEP * SETTLE_TRIES
    )
}

/// Kernel memory of `count` live single-page buffers.
fn memory(d: &Devices, count: u64) -> Result<Memory> {
    let memfd = backing(count)?;
    for i in 0..WARMUP.min(count) {
        drop(export(d, &memfd, i)?);
    }
    let (before, slab_before) = settled_sample()?;
    let bufs = (0..count)
        .map(|i| export(d, &memfd, i))
        .collect::<Result<Vec<_>>>()?;
    let (after, slab_after) = settled_sample()?;
    drop(bufs);
    let (caches, slabinfo_bytes) = diff(&before, &after, count);
    Ok(Memory {
        count,
        meminfo_slab_bytes: slab_after - slab_before,
        slabinfo_bytes,
        caches,
    })
}

/// Times `op` `iterations` times, one by one.
fn timed(iterations: u64, mut op: impl FnMut() -> Result<()>) -> Result<Stats> {
    for _ in 0..LATENCY_WARMUP {
        op()?;
    }
    let mut ns = Vec::with_capacity(iterations as usize);
    for _ in 0..iterations {
        let t = Instant::now();
        op()?;
        ns.push(t.elapsed().as_nanos() as u64);
    }
    Ok(Stats::of(&mut ns))
}

/// Times the export and the close of each of `iterations` buffers apart.
fn timed_apart(d: &Devices, memfd: &OwnedFd, iterations: u64) -> Result<(Stats, Stats)> {
    for _ in 0..LATENCY_WARMUP {
        drop(export(d, memfd, 0)?);
    }
    let mut made = Vec::with_capacity(iterations as usize);
    let mut closed = Vec::with_capacity(iterations as usize);
    for _ in 0..iterations {
        let t = Instant::now();
        let buf = export(d, memfd, 0)?;
        let exported = Instant::now();
        drop(buf);
        closed.push(exported.elapsed().as_nanos() as u64);
        made.push((exported - t).as_nanos() as u64);
    }
    Ok((Stats::of(&mut made), Stats::of(&mut closed)))
}

fn latency(d: &Devices, iterations: u64) -> Result<Latency> {
    let memfd = backing(1)?;
    let export_close = timed(iterations, || export(d, &memfd, 0).map(drop))?;
    let (export_only, close_only) = timed_apart(d, &memfd, iterations)?;
    let page = sys::page_size();
    let export_mmap_close = timed(iterations, || {
        let buf = export(d, &memfd, 0)?;
        let map = sys::Mapping::shared(buf.as_fd(), page)?;
        map.touch_pages(page as usize, 0x5a);
        drop(map);
        drop(buf);
        Ok(())
    })?;
    let buf = export(d, &memfd, 0)?;
    let fstat = timed(iterations, || {
        fstat(&buf).context("fstat of a dma-buf")?;
        Ok(())
    })?;
    Ok(Latency {
        export_close,
        export_mmap_close: Some(export_mmap_close),
        export: Some(export_only),
        close: Some(close_only),
        fstat,
    })
}

/// Whether two live buffers have one inode or two.
fn model(d: &Devices) -> Result<Model> {
    let memfd = backing(2)?;
    let (a, b) = (export(d, &memfd, 0)?, export(d, &memfd, 1)?);
    let ino = |fd: &OwnedFd| fstat(fd).map(|s| s.st_ino).context("fstat of a dma-buf");
    Ok(if ino(&a)? == ino(&b)? {
        Model::Singleton
    } else {
        Model::PerBuffer
    })
}

/// Exit status of a run that could not time anything: ci/bench boots the
/// kernel again on it.
pub const COARSE_CLOCK: u8 = 3;

/// The guest's clock must tell microseconds apart. Under TCG the TSC's
/// calibration against the PIT fails now and then on a busy host ("tsc:
/// Unable to calibrate against PIT"); without HPET or ACPI the kernel then
/// falls back to jiffies, and CLOCK_MONOTONIC moves in steps of a tick.
/// (clock_getres() does not tell: it gives the hrtimer resolution, a tick
/// on a kernel without high-resolution timers whatever the clocksource.)
pub fn check_clock() -> Result<String, String> {
    // tsc-early is replaced once the TSC is calibrated, about a second
    // after boot, by tsc or, when that fails, by jiffies: wait for it.
    let mut source = clocksource();
    for _ in 0..50 {
        if source != "tsc-early" {
            break;
        }
        sleep(Duration::from_millis(100));
        source = clocksource();
    }
    let step = (0..20)
        .map(|_| {
            let t = Instant::now();
            loop {
                let d = t.elapsed();
                if !d.is_zero() {
                    break d;
                }
            }
        })
        .min()
        .unwrap_or_default();
    if step > Duration::from_micros(1) {
        return Err(format!(
            "CLOCK_MONOTONIC moves in steps of {step:?} (clocksource {}): latencies of a few \
             microseconds cannot be timed; under QEMU TCG this happens when the TSC could not be \
             calibrated (see the kernel log): boot again",
            source
        ));
    }
    Ok(source)
}

/// The clocksource in use (empty when sysfs does not say).
pub fn clocksource() -> String {
    fs::read_to_string(CLOCKSOURCE)
        .unwrap_or_default()
        .trim()
        .to_string()
}

const CLOCKSOURCE: &str = "/sys/devices/system/clocksource/clocksource0/current_clocksource";

pub fn run(opts: &Opts) -> Result<Run> {
    let d = open_devices()?;
    let most = opts.counts.iter().copied().max().unwrap_or(0);
    raise_nofile(most)?;
    let kernel = nix::sys::utsname::uname()
        .context("uname")?
        .release()
        .to_string_lossy()
        .into_owned();
    let model = model(&d)?;
    let memory = opts
        .counts
        .iter()
        .map(|&n| memory(&d, n).with_context(|| format!("memory of {n} buffers")))
        .collect::<Result<Vec<_>>>()?;
    let latency = latency(&d, opts.iterations)?;
    Ok(Run {
        kernel,
        model,
        page_size: sys::page_size(),
        memory,
        latency,
    })
}
