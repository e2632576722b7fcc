// SPDX-License-Identifier: GPL-2.0
//! Many threads making, naming, duplicating, mapping and closing buffers
//! while others read /proc/self/fd, fdinfo, maps and debugfs bufinfo.

use std::collections::HashSet;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::stat::fstat;

use dmabuf::parse::bufinfo::BufInfo;
use dmabuf::parse::{fdinfo, maps};
use dmabuf::sys::{self, Mapping};
use dmabuf::uapi::dma_buf;
use dmabuf_testkit::leftover::{self, Made};
use dmabuf_testkit::rng::Rng;
use dmabuf_testkit::tap::Tap;
use dmabuf_testkit::threads::joined;
use dmabuf_testkit::{Devices, Exporter};

use crate::common::{backing, export, names, open_devices, Listed, Live, Shrinker};

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

/// What one writer thread did: the operations it completed, and every
/// buffer it made.
#[derive(Default)]
struct WriterReport {
    ops: u64,
    made: Made,
}

fn writer(d: &Devices, s: &Shared, id: u64, ops: u64, seed: u64) -> (WriterReport, Result<()>) {
    let mut report = WriterReport::default();
    let result = write_ops(d, s, id, ops, seed, &mut report);
    (report, result)
}

fn write_ops(
    d: &Devices,
    s: &Shared,
    id: u64,
    ops: u64,
    seed: u64,
    report: &mut WriterReport,
) -> Result<()> {
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
                    let st = fstat(&fd).context("fstat of a new buffer")?;
                    let ino = st.st_ino;
                    report.made.add(st.st_dev, ino);
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
        report.ops += 1;
        s.ops.fetch_add(1, Ordering::Relaxed);
    }
    let mut live = s.live.lock().unwrap_or_else(|e| e.into_inner());
    for b in pool {
        live.remove(&b.ino);
    }
    Ok(())
}

/// What one reader thread did: its passes, and for the fd reader the
/// dma-buf fdinfo files it judged.
#[derive(Default)]
struct ReaderReport {
    passes: u64,
    judged: u64,
}

/// One pass over /proc/self/fd and fdinfo: every dma-buf seen must make
/// sense (one page, a known exporter). Returns how many it judged.
fn read_fds(s: &Shared) -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        s.problem("read_dir /proc/self/fd failed".into());
        return 0;
    };
    let mut judged = 0;
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
                    judged += 1;
                }
            }
            Err(e) => s.problem(format!("{path} does not parse: {e}")),
        }
        s.reads.fetch_add(1, Ordering::Relaxed);
    }
    judged
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

/// Passes of `pass` until the writers are done, and one more after: at
/// least one, the first begun before any writer started.
fn reader(s: &Shared, mut pass: impl FnMut() -> u64) -> ReaderReport {
    let mut r = ReaderReport::default();
    loop {
        let last = s.done.load(Ordering::Acquire);
        r.judged += pass();
        r.passes += 1;
        if last {
            return r;
        }
    }
}

/// What the threads of one workload reported, judged against what they
/// were asked: every join is checked (a panic is a problem, named with its
/// message), every writer did its `ops` operations, every reader made a
/// pass, and the fd reader (the first) judged at least one dma-buf.
#[derive(Default)]
struct Judged {
    /// Every buffer the writers made.
    made: Made,
    /// The readers' passes.
    notes: String,
    problems: Vec<String>,
}

type WriterResult = Result<(WriterReport, Result<()>), String>;

fn judge_threads(
    ops: u64,
    writers: Vec<WriterResult>,
    readers: [(&str, Result<ReaderReport, String>); 2],
) -> Judged {
    let mut j = Judged::default();
    for (id, w) in writers.into_iter().enumerate() {
        match w {
            Err(panic) => j.problems.push(panic),
            Ok((report, result)) => {
                if let Err(e) = result {
                    j.problems.push(format!(
                        "writer thread {id}: {e:#} (after {} of its {ops} operations)",
                        report.ops
                    ));
                } else if report.ops != ops {
                    j.problems.push(format!(
                        "writer thread {id} did {} of the {ops} operations asked",
                        report.ops
                    ));
                }
                j.made.extend(report.made);
            }
        }
    }
    let mut notes = Vec::new();
    for (i, (who, r)) in readers.into_iter().enumerate() {
        match r {
            Err(panic) => j.problems.push(panic),
            Ok(r) if r.passes == 0 => j.problems.push(format!("the {who} made no pass")),
            Ok(r) if i == 0 && r.judged == 0 => j.problems.push(format!(
                "the {who} judged no dma-buf in {} passes over /proc/self/fd while the writers \
                 held up to {POOL} buffers each: no fd's link starts with {}",
                r.passes,
                dma_buf::LINK_PREFIX
            )),
            Ok(r) if i == 0 => notes.push(format!(
                "{} passes of the {who} judging {} dma-buf fdinfo files",
                r.passes, r.judged
            )),
            Ok(r) => notes.push(format!("{} passes of the {who}", r.passes)),
        }
    }
    j.notes = notes.join(", ");
    j
}

/// What one workload did.
struct Outcome {
    ops: u64,
    reads: u64,
    secs: f64,
    /// The problems the threads met, counted and the first few kept.
    problem_count: u64,
    problems: Vec<String>,
    /// The threads, judged.
    threads: Judged,
}

fn workload(d: &Devices, threads: u64, ops: u64, seed: u64) -> Outcome {
    let s = Shared {
        live: Mutex::new(HashSet::new()),
        problems: Mutex::new(Vec::new()),
        problem_count: AtomicU64::new(0),
        ops: AtomicU64::new(0),
        reads: AtomicU64::new(0),
        done: AtomicBool::new(false),
    };
    let start = Instant::now();
    let (writers, readers) = thread::scope(|sc| {
        let fd_reader = sc.spawn(|| reader(&s, || read_fds(&s)));
        let maps_reader = sc.spawn(|| {
            reader(&s, || {
                read_maps_and_bufinfo(&s);
                0
            })
        });
        let writers: Vec<_> = (0..threads)
            .map(|id| {
                let s = &s;
                sc.spawn(move || writer(d, s, id, ops, seed))
            })
            .collect();
        let writers: Vec<_> = writers
            .into_iter()
            .enumerate()
            .map(|(id, w)| joined(&format!("writer thread {id}"), w.join()))
            .collect();
        s.done.store(true, Ordering::Release);
        let readers = [
            (
                "fd and fdinfo reader",
                joined("the fd and fdinfo reader", fd_reader.join()),
            ),
            (
                "maps and bufinfo reader",
                joined("the maps and bufinfo reader", maps_reader.join()),
            ),
        ];
        (writers, readers)
    });
    let secs = start.elapsed().as_secs_f64();
    Outcome {
        ops: s.ops.load(Ordering::Relaxed),
        reads: s.reads.load(Ordering::Relaxed),
        secs,
        problem_count: s.problem_count.load(Ordering::Relaxed),
        problems: s.problems.into_inner().unwrap_or_else(|e| e.into_inner()),
        threads: judge_threads(ops, writers, readers),
    }
}

/// Operations per thread of the warm-up, before the baseline: the caches,
/// the fd table and the threads' stacks grow to what the run needs.
const WARMUP_OPS: u64 = 1000;

const OPERATIONS: &str = "stress.operations";
const RELEASED: &str = "stress.released";
const BASELINE: &str = "stress.baseline";

/// The checks of `run`, in the order it reports them.
pub fn checks() -> Vec<Listed> {
    vec![
        Listed::new(
            OPERATIONS,
            "threads exporting, naming, dup()ing, mmap()ing and closing buffers while two more \
             read /proc/self/fd, fdinfo, maps and bufinfo: no error, no two live buffers with one \
             st_ino, every thread joined without a panic, every writer did all its operations, \
             and the fd reader judged dma-bufs",
        ),
        Listed::new(
            RELEASED,
            "after the run no dma-buf is left in /proc/self/fd or /proc/self/maps, and debugfs \
             bufinfo lists none of the inodes the threads made: the kernel released every buffer \
             at its last close or munmap",
        ),
        Listed::new(
            BASELINE,
            "fds, bufinfo and the inode_cache, dentry, filp and kmalloc slab caches back to their \
             baseline after the run",
        ),
    ]
}

/// How long the last buffers may take to leave the kernel's lists. The
/// last close and munmap release a buffer before they return; the wait is
/// only for a slow guest, and a buffer the kernel never releases stays.
const RELEASE_WAIT: Duration = Duration::from_secs(2);

/// stress.released: nothing the run made is left.
fn released(before: &BufInfo, made: &Made) -> Result<Result<String, String>> {
    let start = Instant::now();
    loop {
        let left = leftover::read(before, made)?;
        match left.describe(made) {
            None => {
                return Ok(Ok(format!(
                    "none of the {} buffers made is left: no dma-buf fd in /proc/self/fd, no \
                     dma-buf mapping in /proc/self/maps, none of their {} inodes in debugfs \
                     bufinfo",
                    made.count,
                    made.inos.len()
                )))
            }
            Some(text) if start.elapsed() >= RELEASE_WAIT => return Ok(Err(text)),
            Some(_) => thread::sleep(Duration::from_millis(100)),
        }
    }
}

pub fn run(threads: u64, ops: u64, seed: u64, tap: &mut Tap) -> Result<()> {
    let d = open_devices()?;
    let before = sys::bufinfo()?;
    tap.plan_checks(names(&checks()));
    // The readers walk every fd of the process: no 200 sysfs files among
    // them.
    let shrinker = Shrinker::Reopened;
    let warm = workload(&d, threads, ops.min(WARMUP_OPS), seed ^ 0x5eed);
    let baseline = Live::now(&shrinker)?;
    let o = workload(&d, threads, ops, seed);
    let count = o.problem_count
        + warm.problem_count
        + (o.threads.problems.len() + warm.threads.problems.len()) as u64;
    let summary = format!(
        "{threads} threads x {ops} operations = {} in {:.1} s ({:.0}/s), {} concurrent reads of \
         fd links, fdinfo, maps and bufinfo ({}) (after a warm-up of {} operations)",
        o.ops,
        o.secs,
        o.ops as f64 / o.secs,
        o.reads,
        o.threads.notes,
        warm.ops
    );
    if count == 0 && o.ops == threads * ops {
        tap.pass(OPERATIONS, &summary);
    } else {
        // What the threads did wrong first, every one of it; then the
        // first problems they met.
        let mut problems = warm.threads.problems;
        problems.extend(o.threads.problems);
        problems.extend(warm.problems);
        problems.extend(o.problems);
        tap.check(
            OPERATIONS,
            Err(format!(
                "{count} problems, the first:\n{}\n{summary}",
                problems.join("\n")
            )),
        );
    }
    let mut made = warm.threads.made;
    made.extend(o.threads.made);
    tap.check(RELEASED, released(&before, &made)?);
    // A leak on any path the mix takes often (each kind of operation is
    // 15 to 30 % of them) grows a cache by far more than this.
    let margin = SLAB_MARGIN.max(o.ops / 200);
    tap.check(BASELINE, baseline.compare(&shrinker, margin)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer_ok(ops: u64, inos: &[u64]) -> WriterResult {
        let mut made = Made::default();
        for &i in inos {
            made.add(8, i);
        }
        Ok((WriterReport { ops, made }, Ok(())))
    }

    fn readers(
        fd: Result<ReaderReport, String>,
    ) -> [(&'static str, Result<ReaderReport, String>); 2] {
        [
            ("fd and fdinfo reader", fd),
            (
                "maps and bufinfo reader",
                Ok(ReaderReport {
                    passes: 3,
                    judged: 0,
                }),
            ),
        ]
    }

    #[test]
    fn threads_that_did_what_was_asked() {
        let j = judge_threads(
            10,
            vec![writer_ok(10, &[1, 2]), writer_ok(10, &[3])],
            readers(Ok(ReaderReport {
                passes: 4,
                judged: 9,
            })),
        );
        assert!(j.problems.is_empty(), "{:?}", j.problems);
        assert_eq!(j.made.inos.len(), 3);
        assert_eq!(
            j.notes,
            "4 passes of the fd and fdinfo reader judging 9 dma-buf fdinfo files, 3 passes of the maps and bufinfo reader"
        );
    }

    #[test]
    fn a_panic_an_error_and_a_short_count_are_each_named() {
        let failed: WriterResult = Ok((
            WriterReport {
                ops: 4,
                made: Made::default(),
            },
            Err(anyhow::anyhow!("fstat of a new buffer: EBADF")),
        ));
        let j = judge_threads(
            10,
            vec![
                Err("writer thread 0 panicked: index out of bounds".into()),
                failed,
                writer_ok(7, &[5]),
            ],
            readers(Err("the fd and fdinfo reader panicked: boom".into())),
        );
        assert_eq!(
            j.problems,
            [
                "writer thread 0 panicked: index out of bounds",
                "writer thread 1: fstat of a new buffer: EBADF (after 4 of its 10 operations)",
                "writer thread 2 did 7 of the 10 operations asked",
                "the fd and fdinfo reader panicked: boom",
            ]
        );
        // The buffers of a writer that returned are still accounted for.
        assert!(j.made.inos.contains(&5));
    }

    #[test]
    fn an_fd_reader_that_saw_no_dmabuf_fails() {
        let j = judge_threads(
            10,
            vec![writer_ok(10, &[1])],
            readers(Ok(ReaderReport {
                passes: 12,
                judged: 0,
            })),
        );
        assert_eq!(j.problems.len(), 1);
        assert!(j.problems[0].starts_with(
            "the fd and fdinfo reader judged no dma-buf in 12 passes over /proc/self/fd"
        ));
    }

    #[test]
    fn the_checks_of_run() {
        assert_eq!(
            names(&checks()),
            ["stress.operations", "stress.released", "stress.baseline"]
        );
    }
}
