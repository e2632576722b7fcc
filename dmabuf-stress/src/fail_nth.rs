// SPDX-License-Identifier: GPL-2.0
//! Systematic fault injection, the way syzkaller does it: for n = 1, 2, ...
//! the n-th fallible allocation of one call fails (`/proc/thread-self/
//! fail-nth`), until the call makes fewer than n. Every call must then
//! succeed or fail with a clean errno, and leave nothing behind; every
//! sweep must have injected at least one fault; after the sweeps the slab
//! caches are back to their baseline and kmemleak finds nothing.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::thread::sleep;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::sched::{unshare, CloneFlags};
use nix::sys::mman::{mmap, munmap, MapFlags, ProtFlags};
use nix::sys::uio::{pread, pwrite};

use dmabuf::sys;
use dmabuf::uapi::dma_buf;
use dmabuf_testkit::exporter::ExportError;
use dmabuf_testkit::tap::Tap;
use dmabuf_testkit::threads::joined;
use dmabuf_testkit::{Devices, Exporter};

use crate::common::{backing, export, names, open_devices, Listed, Live, Shrinker, Which};

const FAIL_NTH: &str = "/proc/thread-self/fail-nth";
const FAILSLAB: &str = "/sys/kernel/debug/failslab";
const FAIL_PAGE_ALLOC: &str = "/sys/kernel/debug/fail_page_alloc";
const KMEMLEAK: &str = "/sys/kernel/debug/kmemleak";
/// No call here makes anywhere near this many fallible allocations.
const MAX_N: u32 = 5000;
/// kmemleak reports an object only once it has been unreferenced for 5 s.
const KMEMLEAK_MIN_AGE: Duration = Duration::from_secs(6);

/// Sweeps over every call after the warm-up, by default.
pub const DEFAULT_ROUNDS: u32 = 4;
/// The fewest rounds `--rounds` takes: with one, the slab tolerance below
/// would be 0 objects, and any object the rest of the guest keeps fails.
pub const MIN_ROUNDS: u32 = 2;

/// The objects a watched slab cache may gain over `rounds` sweeps of every
/// call (after a warm-up sweep that the baseline follows).
///
/// A leak on one failure path leaks at least one object each time a fault
/// is injected there, so at least one per round: `rounds` objects in all.
/// The tolerance is one less, the most noise that still lets the smallest
/// such leak through. The numbers, from `dmabuf-stress fail-nth` on
/// v7.3-rc7/debug-rust: a round of both exporters injects about 60 faults
/// (export 16 for udmabuf and 13 for the heap, DMA_BUF_SET_NAME 2 and 2,
/// dup 6 or 7 each, mmap 4 and 6, close 2 and 2), and after the 4 default
/// rounds (239 faults) the largest growth of a watched cache was 1 object
/// (filp), against a tolerance of 3. The planted leak of ci/planted/stress-7-kmemleak
/// leaks an inode at each of the 2 faults inside alloc_file_pseudo() (its
/// dentry, its file) of each export sweep: 4 inodes a round, 16 over the
/// default rounds. What the rest of the guest allocates meanwhile (procfs
/// dentries and inodes of /proc/self/fd, seq_file buffers) is freed again
/// or the same every round; RCU-deferred frees are waited for
/// (`Live::compare`).
fn slab_tolerance(rounds: u32) -> u64 {
    u64::from(rounds.saturating_sub(1))
}

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

    /// The call on a buffer of `e`, as the sweep makes it.
    fn call(self, e: Exporter) -> String {
        match (self, e) {
            (Op::Export, Exporter::Udmabuf) => "UDMABUF_CREATE of a one-page udmabuf buffer".into(),
            (Op::Export, Exporter::Heap) => {
                "DMA_HEAP_IOCTL_ALLOC of a one-page system heap buffer".into()
            }
            (Op::Name, _) => format!("DMA_BUF_SET_NAME on a {e} buffer"),
            (Op::Dup, _) => {
                format!("dup of a {e} buffer into a full fresh fd table (which must grow)")
            }
            (Op::Mmap, _) => format!("a shared mmap of a {e} buffer"),
            (Op::Close, _) => format!("the close of a {e} buffer's only fd"),
        }
    }
}

fn check_name(e: Exporter, op: Op) -> String {
    format!("fail_nth.{}.{}", e.name(), op.name())
}

const BASELINE: &str = "fail_nth.baseline";
const KMEMLEAK_CHECK: &str = "fail_nth.kmemleak";

/// The checks of `fail-nth --exporter which`, in the order it reports them.
pub fn checks(which: Which) -> Vec<Listed> {
    let mut v: Vec<Listed> = which
        .exporters()
        .into_iter()
        .flat_map(|e| {
            OPS.map(|op| {
                Listed::new(
                    check_name(e, op),
                    format!(
                        "{}, its 1st, 2nd, ... fallible allocation failed in turn: succeeds or \
                         fails with ENOMEM (ENFILE, EAGAIN, ENOSPC) and leaves no fd and no buffer \
                         behind; each sweep injects at least one fault",
                        op.call(e)
                    ),
                )
            })
        })
        .collect();
    v.push(Listed::new(
        BASELINE,
        "after the sweeps, fds, bufinfo and the inode_cache, dentry, filp and kmalloc slab caches \
         are back to their baseline within one object less than the rounds (a leak of one object \
         a round at any fault breaks it)",
    ));
    v.push(Listed::new(
        KMEMLEAK_CHECK,
        "kmemleak finds no unreferenced object after the sweeps (two scans)",
    ));
    v
}

/// This thread's fail-nth file.
struct FailNth(File);

impl FailNth {
    fn open() -> Result<FailNth> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(FAIL_NTH)
            .with_context(|| format!("open {FAIL_NTH}"))?;
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

/// The settings of failslab and fail_page_alloc that decide which
/// allocations fail-nth may fail, as this kernel has them.
const FAILSLAB_ATTRS: &[&str] = &["ignore-gfp-wait", "cache-filter"];
const FAIL_PAGE_ALLOC_ATTRS: &[&str] = &["ignore-gfp-wait", "ignore-gfp-highmem", "min-order"];

/// What fault injection this kernel offers: which of its files exist, and
/// the settings that filter what fail-nth reaches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Setup {
    fail_nth: bool,
    /// The directory's attributes, when it exists.
    failslab: Option<BTreeMap<String, String>>,
    fail_page_alloc: Option<BTreeMap<String, String>>,
    kmemleak: bool,
}

impl Setup {
    fn read() -> Setup {
        let attrs = |dir: &str, names: &[&str]| {
            Path::new(dir).is_dir().then(|| {
                names
                    .iter()
                    .map(|n| {
                        let v = sys::read_text(&format!("{dir}/{n}"))
                            .map(|t| t.trim().to_string())
                            .unwrap_or_else(|e| format!("unreadable: {e:#}"));
                        (n.to_string(), v)
                    })
                    .collect()
            })
        };
        Setup {
            fail_nth: Path::new(FAIL_NTH).exists(),
            failslab: attrs(FAILSLAB, FAILSLAB_ATTRS),
            fail_page_alloc: attrs(FAIL_PAGE_ALLOC, FAIL_PAGE_ALLOC_ATTRS),
            kmemleak: Path::new(KMEMLEAK).exists(),
        }
    }

    /// What the sweeps need and this kernel lacks, each with the option
    /// that gives it.
    fn missing(&self) -> Vec<String> {
        let mut m = Vec::new();
        if !self.fail_nth {
            m.push(format!("{FAIL_NTH} (CONFIG_FAULT_INJECTION)"));
        }
        for (dir, attrs, option) in [
            (FAILSLAB, &self.failslab, "CONFIG_FAILSLAB"),
            (
                FAIL_PAGE_ALLOC,
                &self.fail_page_alloc,
                "CONFIG_FAIL_PAGE_ALLOC",
            ),
        ] {
            if attrs.is_none() {
                m.push(format!(
                    "{dir} ({option} and CONFIG_FAULT_INJECTION_DEBUG_FS, debugfs on /sys/kernel/debug)"
                ));
            }
        }
        m
    }

    /// Everything, for a sweep that injected nothing.
    fn describe(&self) -> String {
        let dir = |path: &str, attrs: &Option<BTreeMap<String, String>>| match attrs {
            None => format!("{path} missing"),
            Some(a) => {
                let v: Vec<String> = a.iter().map(|(k, v)| format!("{k} {v}")).collect();
                format!("{path}: {}", v.join(", "))
            }
        };
        format!(
            "{FAIL_NTH} {}; {}; {}",
            if self.fail_nth { "present" } else { "missing" },
            dir(FAILSLAB, &self.failslab),
            dir(FAIL_PAGE_ALLOC, &self.fail_page_alloc)
        )
    }
}

/// Why a sweep of `op` that injected no fault fails: fail-nth reached none
/// of its allocations.
fn why_none_injected(e: Exporter, op: Op, empty: u32, sweeps: u32, setup: &Setup) -> String {
    format!(
        "{empty} of {sweeps} sweeps of {} injected no fault: the call ran to its end with \
         /proc/thread-self/fail-nth armed at 1, so fail-nth reached none of its allocations. \
         It needs CONFIG_FAULT_INJECTION, CONFIG_FAILSLAB, CONFIG_FAIL_PAGE_ALLOC and \
         CONFIG_FAULT_INJECTION_DEBUG_FS, with failslab and fail_page_alloc's ignore-gfp-wait N, \
         cache-filter N, ignore-gfp-highmem N and min-order 0; this kernel: {}",
        op.call(e),
        setup.describe()
    )
}

/// Lets fail-nth reach every allocation: by default failslab and
/// fail_page_alloc skip those that may sleep (`ignore-gfp-wait`), and
/// fail_page_alloc those of highmem and of order 0 (`min-order` 1). No
/// stack dump for each injected fault (`verbose` 0).
fn configure() -> Result<()> {
    write(&format!("{FAILSLAB}/ignore-gfp-wait"), "N")?;
    write(&format!("{FAILSLAB}/verbose"), "0")?;
    write(&format!("{FAIL_PAGE_ALLOC}/ignore-gfp-wait"), "N")?;
    write(&format!("{FAIL_PAGE_ALLOC}/ignore-gfp-highmem"), "N")?;
    write(&format!("{FAIL_PAGE_ALLOC}/min-order"), "0")?;
    write(&format!("{FAIL_PAGE_ALLOC}/verbose"), "0")?;
    Ok(())
}

/// `FDSize` of /proc/PID/status: the slots of the fd table.
fn fd_size(status: &str) -> Option<i32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("FDSize:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Gives this thread an fd table of its own with only the slots its open
/// fds need (returned: `FDSize`), so that once the table is full a dup()
/// must allocate a larger one (expand_files()), the one allocation a dup
/// makes. unshare(CLONE_FILES) copies the table only while another task
/// shares it: a thread that waits meanwhile does, and keeps the old (grown)
/// table, freed when it exits.
fn fresh_fd_table() -> Result<i32> {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|s| {
        let sharer = s.spawn(move || {
            let _ = rx.recv();
        });
        let r = unshare(CloneFlags::CLONE_FILES).context("unshare(CLONE_FILES)");
        drop(tx);
        joined("the thread sharing the fd table", sharer.join()).map_err(|e| anyhow!(e))?;
        r
    })?;
    let status = sys::read_text("/proc/thread-self/status")?;
    fd_size(&status).context("no FDSize in /proc/thread-self/status")
}

/// Fills the fd table of `size` slots with dups of `with`, up to its last
/// slot, so that the next fd needs a larger table.
fn fill_fd_table(with: &OwnedFd, size: i32) -> Result<Vec<OwnedFd>> {
    let mut fillers = Vec::new();
    loop {
        let f = nix::unistd::dup(with).context("dup() filling the fd table")?;
        let last = f.as_raw_fd() >= size - 1;
        fillers.push(f);
        if last {
            return Ok(fillers);
        }
    }
}

/// What the faults of one call did, over its sweeps.
#[derive(Default)]
struct Tally {
    sweeps: u32,
    /// Sweeps that injected no fault at all.
    empty: u32,
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
            "{} faults injected in {} sweeps: {} failed cleanly ({}), {} recovered (the call succeeded)",
            self.injected,
            self.sweeps,
            self.errnos.values().sum::<u32>(),
            if errnos.is_empty() {
                "-".into()
            } else {
                errnos.join(", ")
            },
            self.recovered
        )
    }

    fn add(&mut self, t: Tally) {
        self.sweeps += t.sweeps;
        self.empty += t.empty;
        self.injected += t.injected;
        self.recovered += t.recovered;
        for (k, v) in t.errnos {
            *self.errnos.entry(k).or_default() += v;
        }
        self.problems.extend(t.problems);
    }

    /// The check's verdict.
    fn verdict(&self, e: Exporter, op: Op, setup: &Setup) -> Result<String, String> {
        let mut problems = self.problems.clone();
        if self.empty > 0 {
            problems.push(why_none_injected(e, op, self.empty, self.sweeps, setup));
        }
        if problems.is_empty() {
            Ok(self.note())
        } else {
            Err(format!("{}\n{}", problems.join("\n"), self.note()))
        }
    }
}

/// Injects a fault at every fallible allocation of `op` on a buffer of
/// `e`, one at a time.
fn sweep(d: &Devices, fail: &FailNth, memfd: &OwnedFd, e: Exporter, op: Op) -> Result<Tally> {
    let page = sys::page_size() as usize;
    let mut t = Tally {
        sweeps: 1,
        ..Tally::default()
    };
    for n in 1..=MAX_N {
        let table = match op {
            Op::Dup => Some(fresh_fd_table()?),
            _ => None,
        };
        let before = (sys::open_fds()?, sys::bufinfo()?.buffers.len());
        let text = n.to_string();
        let mut pre = match op {
            Op::Export => None,
            _ => Some(export(d, e, memfd, 0).context("export of the buffer under test")?),
        };
        let pre_fd = pre.as_ref().map(|f| f.as_fd());
        // The fd table full, for the dup under test to grow it.
        let fillers = match table {
            Some(size) => fill_fd_table(memfd, size)?,
            None => Vec::new(),
        };
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
        drop(fillers);
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
            if n == 1 {
                t.empty = 1;
            }
            if op == Op::Dup {
                // The next sweeps and the baseline start from a small table.
                fresh_fd_table()?;
            }
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

/// Checks `--rounds` before anything runs.
pub fn validate_rounds(rounds: u32) -> Result<()> {
    if rounds < MIN_ROUNDS {
        bail!(
            "--rounds {rounds}: at least {MIN_ROUNDS}; the slab baseline tolerates one object less \
             than the rounds, so that a leak of one object a round shows"
        );
    }
    Ok(())
}

pub fn run(which: Which, rounds: u32, tap: &mut Tap) -> Result<()> {
    validate_rounds(rounds)?;
    let d = open_devices()?;
    let listed = checks(which);
    let setup = Setup::read();
    let missing = setup.missing();
    tap.plan_checks(names(&listed));
    let exporters = which.exporters();
    if !missing.is_empty() {
        // Nothing to sweep with: every check fails, saying what is missing.
        let why = format!(
            "this kernel cannot inject faults, it lacks {}: run `dmabuf-stress fail-nth` on the \
             debug kernels (ci/vm run v7.3-rc7/debug-rust ...)",
            missing.join(", ")
        );
        for e in &exporters {
            for op in OPS {
                tap.check::<String>(
                    &check_name(*e, op),
                    Err(format!("no fault injected: {why}")),
                );
            }
        }
        tap.check::<String>(BASELINE, Err(format!("no sweep ran: {why}")));
        tap.check::<String>(KMEMLEAK_CHECK, Err(format!("no sweep ran: {why}")));
        return Ok(());
    }
    let fail = FailNth::open()?;
    configure()?;
    // As the sweeps see it, for a sweep that injects nothing.
    let setup = Setup::read();
    let memfd = backing(1)?;
    let mut tallies: Vec<((Exporter, Op), Tally)> = exporters
        .iter()
        .flat_map(|&e| OPS.map(|op| ((e, op), Tally::default())))
        .collect();
    let sweep_all = |tallies: &mut Vec<((Exporter, Op), Tally)>| -> Result<u32> {
        let mut injected = 0;
        for ((e, op), all) in tallies.iter_mut() {
            let t = sweep(&d, &fail, &memfd, *e, *op)?;
            injected += t.injected;
            all.add(t);
        }
        Ok(injected)
    };
    // One sweep before the baseline, so that the caches, the fd table and
    // debugfs have grown to what a sweep needs; and forget what kmemleak
    // knew before.
    if setup.kmemleak {
        write(KMEMLEAK, "clear")?;
    }
    let shrinker = Shrinker::held()?;
    let warm = sweep_all(&mut tallies)?;
    let baseline = Live::now(&shrinker)?;
    let mut measured = 0;
    for _ in 0..rounds {
        measured += sweep_all(&mut tallies)?;
    }
    for ((e, op), all) in &tallies {
        tap.check(&check_name(*e, *op), all.verdict(*e, *op, &setup));
    }
    let tolerance = slab_tolerance(rounds);
    let baseline_result = baseline.compare(&shrinker, tolerance)?.map(|m| {
        format!(
            "{m}, after {rounds} rounds that injected {measured} faults (a leak of one object a \
             round at any of them grows a cache by {rounds})"
        )
    });
    tap.check(BASELINE, baseline_result);
    drop(memfd);
    if setup.kmemleak {
        tap.check(KMEMLEAK_CHECK, kmemleak()?);
    } else {
        tap.check::<String>(
            KMEMLEAK_CHECK,
            Err(format!(
                "{KMEMLEAK} not found: the kernel lacks CONFIG_DEBUG_KMEMLEAK (with debugfs on \
                 /sys/kernel/debug); run on the debug kernels"
            )),
        );
    }
    println!(
        "# fail-nth: {} faults injected in all, {warm} in the warm-up sweep",
        warm + measured
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_of_each_exporter_and_the_two_after() {
        let all = names(&checks(Which::All));
        assert_eq!(all.len(), 12);
        assert_eq!(all[0], "fail_nth.udmabuf.export");
        assert_eq!(all[4], "fail_nth.udmabuf.close");
        assert_eq!(all[9], "fail_nth.heap.close");
        assert_eq!(&all[10..], ["fail_nth.baseline", "fail_nth.kmemleak"]);
        let heap = names(&checks(Which::Heap));
        assert_eq!(
            heap,
            [
                "fail_nth.heap.export",
                "fail_nth.heap.set_name",
                "fail_nth.heap.dup",
                "fail_nth.heap.mmap",
                "fail_nth.heap.close",
                "fail_nth.baseline",
                "fail_nth.kmemleak"
            ]
        );
    }

    #[test]
    fn fd_size_of_a_status() {
        let status = "Name:\tdmabuf-stress\nUmask:\t0022\nState:\tR (running)\nTgid:\t61\n\
                      FDSize:\t64\nGroups:\t\nVmPeak:\t    9000 kB\n";
        assert_eq!(fd_size(status), Some(64));
        assert_eq!(fd_size("Name:\tx\n"), None);
    }

    #[test]
    fn what_is_missing_is_named() {
        let none = Setup::default();
        assert_eq!(
            none.missing(),
            [
                "/proc/thread-self/fail-nth (CONFIG_FAULT_INJECTION)",
                "/sys/kernel/debug/failslab (CONFIG_FAILSLAB and CONFIG_FAULT_INJECTION_DEBUG_FS, debugfs on /sys/kernel/debug)",
                "/sys/kernel/debug/fail_page_alloc (CONFIG_FAIL_PAGE_ALLOC and CONFIG_FAULT_INJECTION_DEBUG_FS, debugfs on /sys/kernel/debug)",
            ]
        );
        let attrs = |kv: &[(&str, &str)]| {
            Some(
                kv.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        let full = Setup {
            fail_nth: true,
            failslab: attrs(&[("ignore-gfp-wait", "N"), ("cache-filter", "Y")]),
            fail_page_alloc: attrs(&[("min-order", "0")]),
            kmemleak: true,
        };
        assert!(full.missing().is_empty());
        assert_eq!(
            full.describe(),
            "/proc/thread-self/fail-nth present; /sys/kernel/debug/failslab: cache-filter Y, \
             ignore-gfp-wait N; /sys/kernel/debug/fail_page_alloc: min-order 0"
        );
    }

    #[test]
    fn a_sweep_that_injects_nothing_fails_naming_the_call() {
        let setup = Setup {
            fail_nth: true,
            ..Setup::default()
        };
        let t = Tally {
            sweeps: 5,
            empty: 5,
            ..Tally::default()
        };
        let err = t.verdict(Exporter::Heap, Op::Dup, &setup).unwrap_err();
        assert!(
            err.starts_with("5 of 5 sweeps of dup of a heap buffer into a full fresh fd table (which must grow) injected no fault"),
            "{err}"
        );
        assert!(err.contains("this kernel: /proc/thread-self/fail-nth present; /sys/kernel/debug/failslab missing; /sys/kernel/debug/fail_page_alloc missing"), "{err}");
        assert!(err.ends_with("0 faults injected in 5 sweeps: 0 failed cleanly (-), 0 recovered (the call succeeded)"), "{err}");
        let mut t = Tally {
            sweeps: 5,
            injected: 10,
            recovered: 5,
            ..Tally::default()
        };
        t.errnos.insert("ENOMEM".into(), 5);
        assert_eq!(
            t.verdict(Exporter::Udmabuf, Op::Export, &setup),
            Ok("10 faults injected in 5 sweeps: 5 failed cleanly (5 ENOMEM), 5 recovered (the call succeeded)".into())
        );
        // One empty sweep among several fails too.
        t.empty = 1;
        assert!(t
            .verdict(Exporter::Udmabuf, Op::Export, &setup)
            .unwrap_err()
            .starts_with("1 of 5 sweeps of UDMABUF_CREATE"));
    }

    #[test]
    fn the_tolerance_is_below_one_object_a_round() {
        assert!(validate_rounds(1).is_err());
        for rounds in [MIN_ROUNDS, DEFAULT_ROUNDS, 10] {
            validate_rounds(rounds).unwrap();
            assert!(slab_tolerance(rounds) < u64::from(rounds));
            assert!(slab_tolerance(rounds) > 0);
        }
        assert_eq!(slab_tolerance(DEFAULT_ROUNDS), 3);
    }
}
