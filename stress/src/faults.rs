// SPDX-License-Identifier: GPL-2.0
//! Systematic fault injection, the way syzkaller does it: for n = 1, 2, ...
//! the n-th fallible allocation of one call fails (`/proc/thread-self/
//! fail-nth`), until the call makes fewer than n. Every call must then
//! succeed or fail with a clean errno, and leave nothing behind.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, OwnedFd};
use std::thread::sleep;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::sys::mman::{mmap, munmap, MapFlags, ProtFlags};
use nix::sys::uio::{pread, pwrite};

use dmabuf::exporter::ExportError;
use dmabuf::sys;
use dmabuf::tap::Tap;
use dmabuf::uapi::dma_buf;
use dmabuf::{Devices, Exporter};

use crate::common::{backing, export, open_devices, require, Live, Which};

const FAIL_NTH: &str = "/proc/thread-self/fail-nth";
const FAILSLAB: &str = "/sys/kernel/debug/failslab";
const FAIL_PAGE_ALLOC: &str = "/sys/kernel/debug/fail_page_alloc";
const KMEMLEAK: &str = "/sys/kernel/debug/kmemleak";
/// No call here makes anywhere near this many fallible allocations.
const MAX_N: u32 = 5000;
/// kmemleak reports an object only once it has been unreferenced for 5 s.
const KMEMLEAK_MIN_AGE: Duration = Duration::from_secs(6);
/// Objects a cache may gain meanwhile from the rest of the guest.
const SLAB_MARGIN: u64 = 32;

/// The errnos a failed allocation may surface as.
const CLEAN: &[Errno] = &[Errno::ENOMEM, Errno::ENFILE, Errno::EAGAIN, Errno::ENOSPC];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Export,
    Name,
    Dup,
    Mmap,
    Close,
}

const OPS: [Op; 5] = [Op::Export, Op::Name, Op::Dup, Op::Mmap, Op::Close];

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Export => "export",
            Op::Name => "set_name",
            Op::Dup => "dup",
            Op::Mmap => "mmap",
            Op::Close => "close",
        }
    }
}

/// This thread's fail-nth file.
struct FailNth(File);

impl FailNth {
    fn open() -> Result<FailNth> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(FAIL_NTH)
            .map_err(|e| {
                anyhow::anyhow!(
                    "open {FAIL_NTH}: {e}: this kernel lacks CONFIG_FAULT_INJECTION; run \
                 `dmabuf-stress fail-nth` on the debug kernels (ci/vm run debug-rust ...)"
                )
            })?;
        Ok(FailNth(f))
    }

    /// Makes the `n`-th fallible call of this thread fail. `text` is `n`
    /// formatted beforehand: nothing may allocate while armed.
    fn arm(&self, text: &[u8]) -> Result<()> {
        pwrite(self.0.as_fd(), text, 0).with_context(|| format!("write {FAIL_NTH}"))?;
        Ok(())
    }

    /// Disarms; true when the fault was injected (the countdown reached 0).
    fn disarm(&self) -> Result<bool> {
        let mut buf = [0u8; 16];
        let n = pread(self.0.as_fd(), &mut buf, 0).with_context(|| format!("read {FAIL_NTH}"))?;
        let left = std::str::from_utf8(&buf[..n])
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .with_context(|| format!("{FAIL_NTH} reads {:?}", &buf[..n]))?;
        if left != 0 {
            pwrite(self.0.as_fd(), b"0", 0).with_context(|| format!("write {FAIL_NTH}"))?;
        }
        Ok(left == 0)
    }
}

fn write(path: &str, value: &str) -> Result<()> {
    sys::write_text(path, value)
}

/// Lets fail-nth reach every allocation: by default failslab and
/// fail_page_alloc skip those that may sleep (`ignore-gfp-wait`), and
/// fail_page_alloc those of highmem and of order 0 (`min-order` 1). No
/// stack dump for each injected fault (`verbose` 0).
fn configure() -> Result<()> {
    let cfg = "CONFIG_FAILSLAB, CONFIG_FAIL_PAGE_ALLOC and CONFIG_FAULT_INJECTION_DEBUG_FS, with \
               debugfs on /sys/kernel/debug: run on the debug kernels (ci/vm run debug-rust ...)";
    require(FAILSLAB, cfg)?;
    require(FAIL_PAGE_ALLOC, cfg)?;
    write(&format!("{FAILSLAB}/ignore-gfp-wait"), "N")?;
    write(&format!("{FAILSLAB}/verbose"), "0")?;
    write(&format!("{FAIL_PAGE_ALLOC}/ignore-gfp-wait"), "N")?;
    write(&format!("{FAIL_PAGE_ALLOC}/ignore-gfp-highmem"), "N")?;
    write(&format!("{FAIL_PAGE_ALLOC}/min-order"), "0")?;
    write(&format!("{FAIL_PAGE_ALLOC}/verbose"), "0")?;
    Ok(())
}

/// What the n-th fault of one call did.
#[derive(Default)]
struct Tally {
    injected: u32,
    recovered: u32,
    errnos: BTreeMap<String, u32>,
    problems: Vec<String>,
}

impl Tally {
    fn note(&self) -> String {
        let errnos: Vec<String> = self
            .errnos
            .iter()
            .map(|(e, n)| format!("{n} {e}"))
            .collect();
        format!(
            "{} faults injected: {} failed cleanly ({}), {} recovered (the call succeeded)",
            self.injected,
            self.errnos.values().sum::<u32>(),
            if errnos.is_empty() {
                "-".into()
            } else {
                errnos.join(", ")
            },
            self.recovered
        )
    }
}

/// Injects a fault at every fallible allocation of `op` on a buffer of
/// `e`, one at a time.
fn sweep(d: &Devices, fail: &FailNth, memfd: &OwnedFd, e: Exporter, op: Op) -> Result<Tally> {
    let page = sys::page_size() as usize;
    let mut t = Tally::default();
    for n in 1..=MAX_N {
        let before = (sys::open_fds()?, sys::bufinfo()?.buffers.len());
        let text = n.to_string();
        let mut pre = match op {
            Op::Export => None,
            _ => Some(export(d, e, memfd, 0).context("export of the buffer under test")?),
        };
        let pre_fd = pre.as_ref().map(|f| f.as_fd());
        let mut made: Option<OwnedFd> = None;
        let mut mapped = None;
        fail.arm(text.as_bytes())?;
        let res: nix::Result<()> = match op {
            Op::Export => match export(d, e, memfd, 0) {
                Ok(f) => {
                    made = Some(f);
                    Ok(())
                }
                Err(ExportError::Failed { errno, .. }) => Err(errno),
                // open_devices() opened both exporters: not reached.
                Err(ExportError::NotOpen(_)) => Err(Errno::EBADF),
            },
            Op::Name => dma_buf::set_name(
                pre_fd.expect("the buffer under test, made above"),
                c"fail-nth",
            ),
            Op::Dup => nix::unistd::dup(pre_fd.expect("the buffer under test, made above"))
                .map(|f| made = Some(f)),
            Op::Mmap => {
                // SAFETY: a new shared mapping at an address the kernel picks;
                // it aliases no Rust object and is unmapped below.
                unsafe {
                    mmap(
                        None,
                        NonZeroUsize::new(page).unwrap(),
                        ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                        MapFlags::MAP_SHARED,
                        pre_fd.expect("the buffer under test, made above"),
                        0,
                    )
                }
                .map(|p| mapped = Some(p))
            }
            Op::Close => {
                pre = None;
                Ok(())
            }
        };
        let injected = fail.disarm()?;
        if let Some(p) = mapped {
            // SAFETY: the mapping made above, of `page` bytes, used by nothing.
            unsafe { munmap(p, page) }.context("munmap")?;
        }
        drop(made);
        drop(pre);
        match (res, injected) {
            (Ok(()), true) => t.recovered += 1,
            (Ok(()), false) => {}
            (Err(err), true) if CLEAN.contains(&err) => {
                *t.errnos.entry(format!("{err:?}")).or_default() += 1
            }
            (Err(err), true) => t.problems.push(format!(
                "fault {n}: {} failed with {err}: expected success or one of {CLEAN:?}",
                op.name()
            )),
            (Err(err), false) => t.problems.push(format!(
                "{} failed with {err} with no fault injected (n = {n})",
                op.name()
            )),
        }
        let after = (sys::open_fds()?, sys::bufinfo()?.buffers.len());
        if after != before {
            t.problems.push(format!(
                "fault {n}: {} left {} fds and {} buffers in bufinfo behind",
                op.name(),
                after.0 as i64 - before.0 as i64,
                after.1 as i64 - before.1 as i64
            ));
        }
        if !injected {
            return Ok(t);
        }
        t.injected += 1;
        if t.problems.len() > 10 {
            return Ok(t);
        }
    }
    t.problems.push(format!(
        "{} still had faults to inject after {MAX_N}",
        op.name()
    ));
    Ok(t)
}

/// What kmemleak has found since `clear`, after two scans.
fn kmemleak() -> Result<Result<String, String>> {
    sleep(KMEMLEAK_MIN_AGE);
    write(KMEMLEAK, "scan")?;
    write(KMEMLEAK, "scan")?;
    let report = sys::read_text(KMEMLEAK)?;
    if report.trim().is_empty() {
        Ok(Ok("kmemleak: no unreferenced object after two scans".into()))
    } else {
        let n = report.matches("unreferenced object").count();
        let head: Vec<&str> = report.lines().take(40).collect();
        Ok(Err(format!(
            "kmemleak reports {n} unreferenced objects:\n{}",
            head.join("\n")
        )))
    }
}

pub fn run(which: Which, rounds: u32, tap: &mut Tap) -> Result<()> {
    let d = open_devices()?;
    let fail = FailNth::open()?;
    configure()?;
    require(
        KMEMLEAK,
        "CONFIG_DEBUG_KMEMLEAK with debugfs on /sys/kernel/debug: run on the debug kernels",
    )?;
    if rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    let memfd = backing(1)?;
    let exporters = which.exporters();
    let mut tallies: Vec<((Exporter, Op), Tally)> = exporters
        .iter()
        .flat_map(|&e| OPS.map(|op| ((e, op), Tally::default())))
        .collect();
    let sweep_all = |tallies: &mut Vec<((Exporter, Op), Tally)>| -> Result<()> {
        for ((e, op), all) in tallies.iter_mut() {
            let t = sweep(&d, &fail, &memfd, *e, *op)?;
            all.injected += t.injected;
            all.recovered += t.recovered;
            for (k, v) in t.errnos {
                *all.errnos.entry(k).or_default() += v;
            }
            all.problems.extend(t.problems);
        }
        Ok(())
    };
    // One sweep before the baseline, so that the caches, the fd table and
    // debugfs have grown to what a sweep needs; and forget what kmemleak
    // knew before.
    write(KMEMLEAK, "clear")?;
    sweep_all(&mut tallies)?;
    let baseline = Live::now()?;
    for _ in 0..rounds {
        sweep_all(&mut tallies)?;
    }
    let mut total = 0;
    for ((e, op), all) in &tallies {
        total += all.injected;
        let name = format!("fail_nth.{}.{}", e.name(), op.name());
        if all.problems.is_empty() {
            tap.pass(&name, &all.note());
        } else {
            tap.check(
                &name,
                Err(format!("{}\n{}", all.problems.join("\n"), all.note())),
            );
        }
    }
    tap.check("fail_nth.baseline", baseline.compare(SLAB_MARGIN)?);
    drop(memfd);
    tap.check("fail_nth.kmemleak", kmemleak()?);
    println!("# fail-nth: {total} faults injected in all");
    Ok(())
}
