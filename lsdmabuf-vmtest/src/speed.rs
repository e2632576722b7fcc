// SPDX-License-Identifier: GPL-2.0
//! The speed check: lsdmabuf's scan of a crowd of processes holding
//! dma-bufs, against a bare walk of /proc/*/fd that only reads directories
//! and links, in the same run.

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, ensure, Context, Result};
use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{readlinkat, AtFlags, OFlag};
use nix::sys::mman::ProtFlags;
use nix::sys::stat::{fstatat, Mode};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, pipe2, read, write, ForkResult, Pid};

use dmabuf::sys::Mapping;
use lsdmabuf::human::{Layout, Sizes};
use lsdmabuf::model::{Filter, Report, View};
use lsdmabuf::raw::Reads as ScanReads;
use lsdmabuf::scan;
use lsdmabuf::watch::Watcher;

use crate::scene::Factory;

/// Processes that each hold one buffer of one page until dropped. Child
/// `k` holds it by fd; an odd `k` maps it too; every tenth maps it and
/// closes the fd, holding it by the mapping only.
pub struct Crowd {
    pub pids: Vec<Pid>,
    /// The write end of the pipe every child waits on: closing it lets
    /// them exit.
    release: Option<OwnedFd>,
}

/// How child `k` holds its buffer: (by fd, by mapping).
pub fn holds(k: usize) -> (bool, bool) {
    if k % 10 == 0 {
        (false, true)
    } else {
        (true, k % 2 == 1)
    }
}

impl Crowd {
    /// Forks `n` children; the caller must be single-threaded and hold no
    /// dma-buf (the children would inherit it).
    pub fn new(f: &Factory, n: usize) -> Result<Crowd> {
        let (release_r, release_w) = pipe2(OFlag::O_CLOEXEC).context("pipe2")?;
        let (ready_r, ready_w) = pipe2(OFlag::O_CLOEXEC).context("pipe2")?;
        let mut crowd = Crowd {
            pids: Vec::with_capacity(n),
            release: Some(release_w),
        };
        for k in 0..n {
            // SAFETY: the test is single-threaded here; the child runs
            // `hold` and leaves with _exit().
            match unsafe { fork() }.with_context(|| format!("fork of child {k}"))? {
                ForkResult::Child => {
                    crowd.release = None;
                    // The fd (if kept) lives until _exit().
                    let held = hold(f, k);
                    let ok = held.is_ok();
                    let status = match write(&ready_w, &[u8::from(ok)]) {
                        Ok(1) if ok => wait_release(&release_r),
                        _ => 1,
                    };
                    drop(held);
                    // SAFETY: ends the child without the parent's destructors.
                    unsafe { libc::_exit(status) }
                }
                ForkResult::Parent { child } => crowd.pids.push(child),
            }
        }
        drop(ready_w);
        drop(release_r);
        // One byte per child: 1 once it holds its buffer.
        let mut ready = 0;
        let mut buf = [0u8; 4096];
        while ready < n {
            let got = read(&ready_r, &mut buf).context("reading the children's readiness")?;
            ensure!(
                got > 0,
                "{} of {n} children never said they were ready",
                n - ready
            );
            ensure!(
                buf[..got].iter().all(|&b| b == 1),
                "a child could not make or hold its buffer"
            );
            ready += got;
        }
        Ok(crowd)
    }

    /// Lets every child exit and reaps them.
    pub fn finish(mut self) -> Result<()> {
        self.release = None;
        let mut failed = 0;
        for pid in self.pids.drain(..) {
            if !matches!(waitpid(pid, None), Ok(WaitStatus::Exited(_, 0))) {
                failed += 1;
            }
        }
        if failed > 0 {
            bail!("{failed} children did not exit with 0");
        }
        Ok(())
    }
}

impl Drop for Crowd {
    fn drop(&mut self) {
        self.release = None;
        for pid in self.pids.drain(..) {
            let _ = waitpid(pid, None);
        }
    }
}

/// Child `k`'s buffer, held as [`holds`] says: by its fd, its mapping or
/// both, until dropped.
struct Held {
    _fd: Option<OwnedFd>,
    _map: Option<Mapping>,
}

fn hold(f: &Factory, k: usize) -> Result<Held> {
    let (by_fd, by_map) = holds(k);
    let fd = f.page()?;
    let map = if by_map {
        Some(Mapping::shared_range(
            fd.as_fd(),
            0,
            f.page,
            ProtFlags::PROT_READ,
        )?)
    } else {
        None
    };
    Ok(Held {
        _fd: by_fd.then_some(fd),
        _map: map,
    })
}

/// Blocks until the parent closes the release pipe; 0 then.
fn wait_release(r: &OwnedFd) -> i32 {
    let mut b = [0u8; 1];
    loop {
        match read(r, &mut b) {
            Ok(0) => return 0,
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return 1,
        }
    }
}

/// What a walk saw: fd links, and those that name a dma-buf.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bare {
    pub links: usize,
    pub dmabuf_links: usize,
}

/// The files a [`walk`] reads besides the fd directories and links: each
/// of those lsdmabuf's scan reads, to time them one by one. The default,
/// none of them, is the bare walk.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reads {
    /// `/proc/PID/fdinfo/N` of every dma-buf fd.
    pub fdinfo: bool,
    /// stat() of every dma-buf fd (what the scan does without fdinfo's ino).
    pub stat: bool,
    /// `/proc/PID/maps` of every process.
    pub maps: bool,
    /// `/proc/PID/comm` of every process holding a dma-buf fd.
    pub comm: bool,
}

/// A walk of `proc` (/proc) in one thread: readdir it, readdir every
/// PID/fd, readlink every entry, and read what `reads` names. Unreadable
/// files are skipped.
pub fn walk(proc: &str, reads: Reads) -> Result<Bare> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let mut proc = Dir::open(proc, flags, Mode::empty()).with_context(|| format!("open {proc}"))?;
    let mut pids = Vec::new();
    for e in proc.iter() {
        let e = e.context("readdir /proc")?;
        if let Some(pid) = e
            .file_name()
            .to_str()
            .ok()
            .and_then(|s| s.parse::<u32>().ok())
        {
            pids.push(pid);
        }
    }
    let mut bare = Bare::default();
    let mut names = Vec::new();
    let mut buf = Vec::new();
    for pid in pids {
        let Ok(mut dir) = Dir::openat(
            proc.as_fd(),
            format!("{pid}/fd").as_str(),
            flags,
            Mode::empty(),
        ) else {
            continue;
        };
        names.clear();
        for e in dir.iter() {
            let Ok(e) = e else { break };
            if let Some(fd) = e
                .file_name()
                .to_str()
                .ok()
                .and_then(|s| s.parse::<u32>().ok())
            {
                names.push(fd);
            }
        }
        let mut holds = false;
        for fd in &names {
            let name = fd.to_string();
            let Ok(link) = readlinkat(dir.as_fd(), name.as_str()) else {
                continue;
            };
            bare.links += 1;
            if !link.as_encoded_bytes().starts_with(b"/dmabuf:") {
                continue;
            }
            bare.dmabuf_links += 1;
            holds = true;
            if reads.fdinfo {
                let _ = scan::read_record_at(proc.as_fd(), &format!("{pid}/fdinfo/{fd}"), &mut buf);
            }
            if reads.stat {
                let _ = fstatat(dir.as_fd(), name.as_str(), AtFlags::empty());
            }
        }
        if reads.maps {
            let _ = scan::read_at(proc.as_fd(), &format!("{pid}/maps"), &mut buf);
        }
        if reads.comm && holds {
            let _ = scan::read_record_at(proc.as_fd(), &format!("{pid}/comm"), &mut buf);
        }
    }
    Ok(bare)
}

/// The median time of `runs` calls of `f`.
pub fn time<T>(runs: usize, mut f: impl FnMut() -> Result<T>) -> Result<Duration> {
    let mut d = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        f()?;
        d.push(t.elapsed());
    }
    Ok(median(&d))
}

/// lsdmabuf's whole work but printing: the walk of `opts` and the model.
pub fn lsdmabuf_scan(opts: &scan::Options) -> Result<Report> {
    let (_, analysis) = scan::analyze(opts)?;
    Ok(analysis.report(&Filter::default()))
}

/// [`lsdmabuf_scan`] reading what `reads` asks for besides: the work of a
/// view that is off by default.
pub fn lsdmabuf_scan_reading(opts: &scan::Options, reads: ScanReads) -> Result<Report> {
    lsdmabuf_scan(&scan::Options {
        reads,
        ..opts.clone()
    })
}

/// The median time of a `--watch` tick after the first (a walk, the model,
/// the changes and their text), over `runs` ticks; and the ticks' text.
pub fn watch_tick(opts: &scan::Options, runs: usize) -> Result<(Duration, String)> {
    let mut w = Watcher::new(
        opts.clone(),
        Filter::default(),
        Layout::new(View::Buffer, Sizes { bytes: false }),
        false,
    );
    w.tick(SystemTime::now())?;
    let mut last = String::new();
    let d = time(runs, || {
        last = w.tick(SystemTime::now())?;
        Ok(())
    })?;
    Ok((d, last))
}

/// Times of the two walks, `runs` of each, interleaved.
pub struct Timings {
    pub bare: Vec<Duration>,
    pub scan: Vec<Duration>,
    pub last_bare: Bare,
    pub last_report: Report,
}

pub fn measure(opts: &scan::Options, runs: usize) -> Result<Timings> {
    ensure!(runs > 0, "no runs");
    let mut bare = Vec::new();
    let mut scans = Vec::new();
    let mut last_bare = Bare::default();
    let mut last_report = None;
    for _ in 0..runs {
        let t = Instant::now();
        last_bare = walk(&opts.proc, Reads::default())?;
        bare.push(t.elapsed());
        let t = Instant::now();
        last_report = Some(lsdmabuf_scan(opts)?);
        scans.push(t.elapsed());
    }
    Ok(Timings {
        bare,
        scan: scans,
        last_bare,
        last_report: last_report.context("no scan")?,
    })
}

/// The CPU time (user and system, all threads) this process has used.
pub fn cpu_now() -> Result<Duration> {
    let u = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)
        .context("getrusage")?;
    let tv =
        |t: nix::sys::time::TimeVal| Duration::new(t.tv_sec() as u64, t.tv_usec() as u32 * 1000);
    Ok(tv(u.user_time()) + tv(u.system_time()))
}

/// The median CPU time of `runs` calls of `f`: what they cost whatever else
/// the machine runs (on a busy host the wall clock measures the others).
pub fn cpu_time<T>(runs: usize, mut f: impl FnMut() -> Result<T>) -> Result<Duration> {
    let mut d = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let t = cpu_now()?;
        f()?;
        d.push(cpu_now()? - t);
    }
    Ok(median(&d))
}

/// The median of `d`.
pub fn median(d: &[Duration]) -> Duration {
    let mut v = d.to_vec();
    v.sort();
    v[v.len() / 2]
}

/// Milliseconds with one decimal.
pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}
