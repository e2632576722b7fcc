// SPDX-License-Identifier: GPL-2.0
//! Many threads making, naming, duplicating, mapping and closing buffers
//! while others read /proc/self/fd, fdinfo, maps and debugfs bufinfo.

use std::collections::HashSet;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::Instant;

use anyhow::{Context, Result};
use nix::sys::stat::fstat;

use dmabuf::parse::{fdinfo, maps};
use dmabuf::rng::Rng;
use dmabuf::sys::{self, Mapping};
use dmabuf::tap::Tap;
use dmabuf::uapi::dma_buf;
use dmabuf::{Devices, Exporter};

use crate::common::{backing, export, open_devices, Live};

/// Buffers one thread holds at most.
const POOL: usize = 24;
/// Pages of each thread's memfd for udmabuf.
const PAGES: u64 = 64;
/// Problems kept per kind, beyond which only the count grows.
const KEEP: usize = 5;
/// Objects a slab cache may gain meanwhile from the rest of the guest.
const SLAB_MARGIN: u64 = 1024;

/// What every thread reports into.
struct Shared {
    /// st_ino of every live buffer.
    live: Mutex<HashSet<u64>>,
    problems: Mutex<Vec<String>>,
    problem_count: AtomicU64,
    ops: AtomicU64,
    reads: AtomicU64,
    done: AtomicBool,
}

impl Shared {
    fn problem(&self, p: String) {
        self.problem_count.fetch_add(1, Ordering::Relaxed);
        let mut v = self.problems.lock().unwrap_or_else(|e| e.into_inner());
        if v.len() < KEEP {
            v.push(p);
        }
    }
}

struct Buf {
    fd: OwnedFd,
    ino: u64,
}

fn writer(d: &Devices, s: &Shared, id: u64, ops: u64, seed: u64) -> Result<()> {
    let memfd = backing(PAGES)?;
    let mut rng = Rng::new(seed ^ (id + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut pool: Vec<Buf> = Vec::with_capacity(POOL);
    let page = sys::page_size();
    for i in 0..ops {
        let roll = rng.below(100);
        if pool.is_empty() || (roll < 30 && pool.len() < POOL) {
            let e = if rng.below(2) == 0 {
                Exporter::Udmabuf
            } else {
                Exporter::Heap
            };
            match export(d, e, &memfd, rng.below(PAGES)) {
                Ok(fd) => {
                    let ino = fstat(&fd).context("fstat of a new buffer")?.st_ino;
                    if !s.live.lock().unwrap_or_else(|e| e.into_inner()).insert(ino) {
                        s.problem(format!("thread {id}: a new {} buffer has st_ino {ino}, which a live buffer has", e.name()));
                    }
                    pool.push(Buf { fd, ino });
                }
                Err(err) => s.problem(format!(
                    "thread {id}: export of a {} buffer: {err}",
                    e.name()
                )),
            }
        } else {
            let k = rng.below(pool.len() as u64) as usize;
            let b = &pool[k];
            match roll {
                30..=44 => {
                    let name = format!("t{id}-{i}");
                    let name = std::ffi::CString::new(name).expect("no NUL in a formatted name");
                    if let Err(err) = dma_buf::set_name(b.fd.as_fd(), &name) {
                        s.problem(format!("thread {id}: DMA_BUF_SET_NAME: {err}"));
                    }
                }
                45..=59 => match nix::unistd::dup(b.fd.as_fd()) {
                    Ok(dup) => {
                        let ino = fstat(&dup).context("fstat of a dup")?.st_ino;
                        if ino != b.ino {
                            s.problem(format!(
                                "thread {id}: dup of st_ino {} has st_ino {ino}",
                                b.ino
                            ));
                        }
                    }
                    Err(err) => s.problem(format!("thread {id}: dup: {err}")),
                },
                60..=74 => match Mapping::shared(b.fd.as_fd(), page) {
                    Ok(m) => {
                        // SAFETY: `m` maps `page` writable bytes, which nothing
                        // else in this process aliases.
                        unsafe { (m.start() as *mut u8).write_volatile(id as u8) };
                    }
                    Err(err) => s.problem(format!("thread {id}: mmap: {err:#}")),
                },
                _ => {
                    let b = pool.swap_remove(k);
                    s.live
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&b.ino);
                    drop(b.fd);
                }
            }
        }
        s.ops.fetch_add(1, Ordering::Relaxed);
    }
    let mut live = s.live.lock().unwrap_or_else(|e| e.into_inner());
    for b in pool {
        live.remove(&b.ino);
    }
    Ok(())
}

/// One pass over /proc/self/fd and fdinfo: every dma-buf seen must make
/// sense (one page, a known exporter).
fn read_fds(s: &Shared) {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return s.problem("read_dir /proc/self/fd failed".into());
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Ok(link) = std::fs::read_link(entry.path()) else {
            continue;
        };
        if !link.to_string_lossy().starts_with(dma_buf::LINK_PREFIX) {
            continue;
        }
        let path = format!("/proc/self/fdinfo/{}", name.to_string_lossy());
        // The fd may be closed (or reused) meanwhile: only a text that
        // is still a dma-buf's is judged.
        let Ok(text) = sys::read_text(&path) else {
            continue;
        };
        match fdinfo::parse(&text) {
            Ok(info) => {
                if let Some(b) = info.dmabuf {
                    if b.size != sys::page_size()
                        || !["udmabuf", "system"].contains(&b.exp_name.as_str())
                    {
                        s.problem(format!("{path}: size {} exp_name {:?}: expected a one-page udmabuf or system buffer", b.size, b.exp_name));
                    }
                }
            }
            Err(e) => s.problem(format!("{path} does not parse: {e}")),
        }
        s.reads.fetch_add(1, Ordering::Relaxed);
    }
}

fn read_maps_and_bufinfo(s: &Shared) {
    match sys::read_text("/proc/self/maps").map(|t| maps::parse(&t).map(|m| m.len())) {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => s.problem(format!("/proc/self/maps does not parse: {e}")),
        Err(e) => s.problem(format!("{e:#}")),
    }
    if let Err(e) = sys::bufinfo() {
        s.problem(format!("{e:#}"));
    }
    s.reads.fetch_add(2, Ordering::Relaxed);
}

/// What one workload did.
struct Outcome {
    ops: u64,
    reads: u64,
    secs: f64,
    problem_count: u64,
    problems: Vec<String>,
    left_live: usize,
}

fn workload(d: &Devices, threads: u64, ops: u64, seed: u64) -> Result<Outcome> {
    let s = Shared {
        live: Mutex::new(HashSet::new()),
        problems: Mutex::new(Vec::new()),
        problem_count: AtomicU64::new(0),
        ops: AtomicU64::new(0),
        reads: AtomicU64::new(0),
        done: AtomicBool::new(false),
    };
    let start = Instant::now();
    let results: Vec<Result<()>> = thread::scope(|sc| {
        let readers = [
            sc.spawn(|| {
                while !s.done.load(Ordering::Relaxed) {
                    read_fds(&s);
                }
            }),
            sc.spawn(|| {
                while !s.done.load(Ordering::Relaxed) {
                    read_maps_and_bufinfo(&s);
                }
            }),
        ];
        let writers: Vec<_> = (0..threads)
            .map(|id| {
                let s = &s;
                sc.spawn(move || writer(d, s, id, ops, seed))
            })
            .collect();
        let r = writers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a writer thread panicked")))
            })
            .collect();
        s.done.store(true, Ordering::Relaxed);
        for r in readers {
            let _ = r.join();
        }
        r
    });
    let secs = start.elapsed().as_secs_f64();
    for r in results {
        r?;
    }
    Ok(Outcome {
        ops: s.ops.load(Ordering::Relaxed),
        reads: s.reads.load(Ordering::Relaxed),
        secs,
        problem_count: s.problem_count.load(Ordering::Relaxed),
        problems: s.problems.into_inner().unwrap_or_else(|e| e.into_inner()),
        left_live: s.live.into_inner().unwrap_or_else(|e| e.into_inner()).len(),
    })
}

/// Operations per thread of the warm-up, before the baseline: the caches,
/// the fd table and the threads' stacks grow to what the run needs.
const WARMUP_OPS: u64 = 1000;

pub fn run(threads: u64, ops: u64, seed: u64, tap: &mut Tap) -> Result<()> {
    let d = open_devices()?;
    let warm = workload(&d, threads, ops.min(WARMUP_OPS), seed ^ 0x5eed)?;
    let baseline = Live::now()?;
    let o = workload(&d, threads, ops, seed)?;
    let count = o.problem_count + warm.problem_count;
    let summary = format!(
        "{threads} threads x {ops} operations = {} in {:.1} s ({:.0}/s), {} concurrent reads of \
         fd links, fdinfo, maps and bufinfo (after a warm-up of {} operations)",
        o.ops,
        o.secs,
        o.ops as f64 / o.secs,
        o.reads,
        warm.ops
    );
    if count == 0 && o.ops == threads * ops {
        tap.pass("stress.operations", &summary);
    } else {
        let mut problems = warm.problems;
        problems.extend(o.problems);
        tap.check(
            "stress.operations",
            Err(format!(
                "{count} problems, the first:\n{}\n{summary}",
                problems.join("\n")
            )),
        );
    }
    let left = o.left_live + warm.left_live;
    tap.check(
        "stress.live_set_empty",
        if left == 0 {
            Ok("every buffer made was closed".into())
        } else {
            Err(format!(
                "{left} inode numbers still counted live after every thread closed its buffers"
            ))
        },
    );
    // A leak on any path the mix takes often (each kind of operation is
    // 15 to 30 % of them) grows a cache by far more than this.
    let margin = SLAB_MARGIN.max(o.ops / 200);
    tap.check("stress.baseline", baseline.compare(margin)?);
    Ok(())
}
