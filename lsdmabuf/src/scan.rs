// SPDX-License-Identifier: GPL-2.0
//! The walk of /proc: the only I/O of lsdmabuf.
//!
//! For every process: read the links of `/proc/PID/fd/*` and, for those that
//! name a dma-buf, `/proc/PID/fdinfo/N` (and stat() the fd when fdinfo lacks
//! the inode number, before Linux 5.14); then `/proc/PID/maps`. Of the
//! processes that hold a dma-buf, by fd or by mapping, it keeps the maps
//! lines of dma-bufs and reads `/proc/PID/comm`. Then, for buffers seen only
//! through mappings, debugfs `dma_buf/bufinfo` or `/proc/PID/map_files` for
//! their size. What cannot be read is recorded with its errno, never fatal:
//! only /proc itself must be readable.
//!
//! Files are read with openat() from one descriptor of /proc and one buffer
//! reused, and nothing is read that a bare walk of the fd links would not
//! touch, except for dma-bufs and maps.

use std::collections::{BTreeMap, HashSet};
use std::ffi::CStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};
use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, OFlag};
use nix::sys::stat::{fstatat, Mode};
use nix::unistd::read;

use crate::model::{self, LinkKind};
use crate::raw::{Failure, FileStat, MapFileStat, Raw, RawFd, RawProcess};

/// Where procfs is mounted.
pub const PROC: &str = "/proc";

/// debugfs' list of every dma-buf.
pub const BUFINFO: &str = "/sys/kernel/debug/dma_buf/bufinfo";

/// The most threads a walk uses.
pub const MAX_THREADS: usize = 8;

/// Processes a walker takes from the shared list at a time.
const BATCH: usize = 16;

/// The threads [`scan`] uses: one per CPU this process may run on, at most
/// [`MAX_THREADS`].
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_THREADS))
}

/// Walks /proc once, with [`default_threads`] threads.
pub fn scan() -> Result<Raw> {
    scan_with(default_threads())
}

/// Walks /proc once with up to `threads` threads, each taking the next
/// processes from a shared list. procfs reads of different processes do not
/// contend, so the walk's time divides by the CPUs it gets.
pub fn scan_with(threads: usize) -> Result<Raw> {
    let proc = nix::fcntl::open(
        PROC,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("open {PROC}"))?;
    let pids = list_pids(proc.as_fd()).with_context(|| format!("reading the directory {PROC}"))?;
    // No more threads than batches.
    let threads = threads
        .clamp(1, MAX_THREADS)
        .min(pids.len().div_ceil(BATCH).max(1));
    let next = AtomicUsize::new(0);
    let walk = || {
        let mut w = Walker::new(proc.as_fd());
        loop {
            let start = next.fetch_add(BATCH, Ordering::Relaxed);
            let Some(batch) = pids.get(start..pids.len().min(start + BATCH)) else {
                break;
            };
            if batch.is_empty() {
                break;
            }
            for &pid in batch {
                w.process(pid);
            }
        }
        w
    };
    let walkers: Vec<Walker> = std::thread::scope(|s| {
        // This thread walks too; a thread that cannot be started leaves its
        // share to the others.
        let helpers: Vec<_> = (1..threads)
            .filter_map(|_| std::thread::Builder::new().spawn_scoped(s, walk).ok())
            .collect();
        let mut walkers = vec![walk()];
        for h in helpers {
            match h.join() {
                Ok(w) => walkers.push(w),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        walkers
    });
    let mut w = Walker::merge(proc.as_fd(), walkers);
    w.mapped_only();
    Ok(w.raw)
}

/// The numeric entries of /proc: its processes (thread-group leaders).
pub fn list_pids(proc: BorrowedFd<'_>) -> nix::Result<Vec<i32>> {
    let mut dir = Dir::openat(
        proc,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut pids = Vec::new();
    for entry in dir.iter() {
        if let Some(pid) = number(entry?.file_name()) {
            pids.push(pid);
        }
    }
    pids.sort_unstable();
    Ok(pids)
}

/// A directory entry's name as a number; `None` for `.`, `self`, ...
fn number(name: &CStr) -> Option<i32> {
    let s = name.to_str().ok()?;
    if s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

/// How a read of a process's file ended, when not with its text.
enum Gone {
    /// The process (or the fd) no longer exists.
    Exited,
    /// Anything else, recorded as a failure.
    Failed(Errno),
}

fn gone(e: Errno) -> Gone {
    // ESRCH: the task died after the open; ENOENT: before it.
    if e == Errno::ENOENT || e == Errno::ESRCH {
        Gone::Exited
    } else {
        Gone::Failed(e)
    }
}

/// One thread's walk.
struct Walker<'a> {
    proc: BorrowedFd<'a>,
    /// Reused for every file read.
    buf: Vec<u8>,
    raw: Raw,
    /// The inode numbers of the dma-bufs seen through fds.
    fd_inos: HashSet<u64>,
    /// The dma-bufs seen through mappings: ino -> a process and the
    /// mapping's map_files name.
    mapped: BTreeMap<u64, (i32, String)>,
}

impl<'a> Walker<'a> {
    fn new(proc: BorrowedFd<'a>) -> Self {
        Walker {
            proc,
            buf: vec![0; 16 << 10],
            raw: Raw::default(),
            fd_inos: HashSet::new(),
            mapped: BTreeMap::new(),
        }
    }

    /// One walker with what `walkers` found, processes in pid order.
    fn merge(proc: BorrowedFd<'a>, walkers: Vec<Walker<'a>>) -> Self {
        let mut all = Walker::new(proc);
        for w in walkers {
            let raw = w.raw;
            all.raw.processes.extend(raw.processes);
            all.raw.read += raw.read;
            all.raw.exited += raw.exited;
            all.raw.kernel_threads += raw.kernel_threads;
            all.raw.failures.extend(raw.failures);
            all.fd_inos.extend(w.fd_inos);
            for (ino, (pid, range)) in w.mapped {
                // The lowest pid's mapping, whichever thread saw it first.
                match all.mapped.get(&ino) {
                    Some((p, _)) if *p < pid => {}
                    _ => {
                        all.mapped.insert(ino, (pid, range));
                    }
                }
            }
        }
        all.raw.processes.sort_unstable_by_key(|p| p.pid);
        all.raw
            .failures
            .sort_by(|a, b| (a.pid, &a.path).cmp(&(b.pid, &b.path)));
        all
    }

    /// The whole text of `path`, relative to /proc.
    fn read(&mut self, path: &str) -> nix::Result<String> {
        let n = read_at(self.proc, path, &mut self.buf)?;
        Ok(String::from_utf8_lossy(&self.buf[..n]).into_owned())
    }

    /// [`Walker::read`] of a file made of one seq_file record.
    fn read_record(&mut self, path: &str) -> nix::Result<String> {
        let n = read_record_at(self.proc, path, &mut self.buf)?;
        Ok(String::from_utf8_lossy(&self.buf[..n]).into_owned())
    }

    fn fail(&mut self, pid: Option<i32>, path: String, errno: Errno) {
        self.raw.failures.push(Failure { pid, path, errno });
    }

    /// Whether `pid` is a kernel thread, from `/proc/PID/stat`, which anyone
    /// may read.
    fn kernel_thread(&mut self, pid: i32) -> bool {
        self.read(&format!("{pid}/stat"))
            .ok()
            .and_then(|t| model::stat_is_kernel_thread(&t))
            .unwrap_or(false)
    }

    fn process(&mut self, pid: i32) {
        let fd_dir = match Dir::openat(
            self.proc,
            format!("{pid}/fd").as_str(),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(d) => d,
            Err(e) => {
                match gone(e) {
                    Gone::Exited => self.raw.exited += 1,
                    Gone::Failed(_) if self.kernel_thread(pid) => self.raw.kernel_threads += 1,
                    Gone::Failed(e) => self.fail(Some(pid), format!("/proc/{pid}/fd"), e),
                }
                return;
            }
        };
        let fds = match self.fds(pid, fd_dir) {
            Ok(fds) => fds,
            Err(Gone::Exited) => {
                self.raw.exited += 1;
                return;
            }
            Err(Gone::Failed(e)) => {
                self.fail(Some(pid), format!("/proc/{pid}/fd"), e);
                return;
            }
        };
        let n = match read_at(self.proc, &format!("{pid}/maps"), &mut self.buf) {
            Ok(n) => n,
            Err(e) => match gone(e) {
                Gone::Exited => {
                    self.raw.exited += 1;
                    return;
                }
                Gone::Failed(e) => {
                    self.fail(Some(pid), format!("/proc/{pid}/maps"), e);
                    0
                }
            },
        };
        self.raw.read += 1;
        // Most processes hold no dma-buf: keep their maps only as long as it
        // takes to see that; of the others', what the model reads.
        let text = String::from_utf8_lossy(&self.buf[..n]);
        let (mappings, maps) = model::keep_maps(&text);
        if fds.is_empty() && maps.is_empty() {
            return;
        }
        for m in mappings {
            self.mapped
                .entry(m.inode)
                .or_insert_with(|| (pid, m.map_files_name()));
        }
        let comm = match self.read_record(&format!("{pid}/comm")) {
            Ok(text) => text.strip_suffix('\n').unwrap_or(&text).to_string(),
            Err(_) => "?".to_string(),
        };
        self.raw.processes.push(RawProcess {
            pid,
            comm,
            fds,
            maps,
        });
    }

    /// The dma-buf fds of `pid`, from its open fd directory.
    fn fds(&mut self, pid: i32, mut dir: Dir) -> Result<Vec<RawFd>, Gone> {
        let mut fds = Vec::new();
        // Collect first: the directory's iterator borrows it mutably, the
        // reads below need it shared.
        let mut names = Vec::new();
        for entry in dir.iter() {
            let entry = entry.map_err(gone)?;
            if let Some(fd) = number(entry.file_name()) {
                names.push(fd);
            }
        }
        for fd in names {
            let link = match readlinkat(dir.as_fd(), fd.to_string().as_str()) {
                Ok(link) => link,
                // Closed since the directory was read.
                Err(Errno::ENOENT) => continue,
                Err(e) => return Err(gone(e)),
            };
            let kind = model::link_kind(link.as_bytes());
            if kind == LinkKind::Other {
                continue;
            }
            let link = link.to_string_lossy().into_owned();
            let fdinfo = if kind == LinkKind::DmaBuf {
                match self.read_record(&format!("{pid}/fdinfo/{fd}")) {
                    Ok(text) => Some(text),
                    Err(Errno::ENOENT) => continue,
                    Err(e) => {
                        self.fail(Some(pid), format!("/proc/{pid}/fdinfo/{fd}"), e);
                        None
                    }
                }
            } else {
                None
            };
            let ino = match kind {
                LinkKind::DmaBuf => model::fdinfo_ino(fdinfo.as_deref()),
                _ => None,
            };
            let stat = if kind == LinkKind::DmaBuf && ino.is_none() {
                match fstatat(
                    dir.as_fd(),
                    fd.to_string().as_str(),
                    nix::fcntl::AtFlags::empty(),
                ) {
                    Ok(st) => Some(FileStat {
                        ino: st.st_ino,
                        size: st.st_size as u64,
                    }),
                    Err(Errno::ENOENT) => continue,
                    Err(e) => {
                        self.fail(Some(pid), format!("/proc/{pid}/fd/{fd}"), e);
                        None
                    }
                }
            } else {
                None
            };
            if let Some(ino) = ino.or(stat.map(|s| s.ino)) {
                self.fd_inos.insert(ino);
            }
            fds.push(RawFd {
                fd,
                link,
                fdinfo,
                stat,
            });
        }
        Ok(fds)
    }

    /// Reads what tells the size of buffers seen only through mappings:
    /// bufinfo once, else stat() of a map_files entry per buffer.
    fn mapped_only(&mut self) {
        let unknown: Vec<(i32, u64, String)> = std::mem::take(&mut self.mapped)
            .into_iter()
            .filter(|(ino, _)| !self.fd_inos.contains(ino))
            .map(|(ino, (pid, range))| (pid, ino, range))
            .collect();
        if unknown.is_empty() {
            return;
        }
        match read_at(self.proc, BUFINFO, &mut self.buf) {
            Ok(n) => {
                self.raw.bufinfo = Some(String::from_utf8_lossy(&self.buf[..n]).into_owned());
                return;
            }
            Err(e) => self.fail(None, BUFINFO.to_string(), e),
        }
        for (pid, ino, range) in unknown {
            match fstatat(
                self.proc,
                format!("{pid}/map_files/{range}").as_str(),
                nix::fcntl::AtFlags::empty(),
            ) {
                Ok(st) if st.st_ino == ino => self.raw.map_files.push(MapFileStat {
                    pid,
                    range,
                    stat: FileStat {
                        ino: st.st_ino,
                        size: st.st_size as u64,
                    },
                }),
                // Unmapped and mapped again meanwhile: not the same buffer.
                Ok(_) => {}
                Err(e) => match gone(e) {
                    Gone::Exited => {}
                    // The process was read: only a size is missing.
                    Gone::Failed(e) => self.fail(None, format!("/proc/{pid}/map_files/{range}"), e),
                },
            }
        }
    }
}

/// Reads the whole of `path` (relative to `dir`, or absolute) into the
/// start of `buf` and returns its length. `buf` only grows, and its bytes
/// are never cleared: a walk reads thousands of small files into one buffer.
pub fn read_at(dir: BorrowedFd<'_>, path: &str, buf: &mut Vec<u8>) -> nix::Result<usize> {
    let fd = openat(dir, path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())?;
    read_from(&fd, 0, buf)
}

/// [`read_at`] of a seq_file made with single_open(), such as fdinfo and
/// comm: its one record is printed whole into the kernel's buffer, and a
/// read() that returns less than it asked for has returned all of it. That
/// saves the read() that would only see the end of the file.
pub fn read_record_at(dir: BorrowedFd<'_>, path: &str, buf: &mut Vec<u8>) -> nix::Result<usize> {
    let fd = openat(dir, path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())?;
    if buf.is_empty() {
        buf.resize(4096, 0);
    }
    let n = loop {
        match read(&fd, buf) {
            Err(Errno::EINTR) => {}
            r => break r?,
        }
    };
    if n < buf.len() {
        return Ok(n);
    }
    read_from(&fd, n, buf)
}

/// Reads `fd` to its end into `buf` after its first `n` bytes.
fn read_from(fd: &OwnedFd, mut n: usize, buf: &mut Vec<u8>) -> nix::Result<usize> {
    if buf.is_empty() {
        buf.resize(4096, 0);
    }
    loop {
        if n == buf.len() {
            buf.resize(2 * n, 0);
        }
        match read(fd, &mut buf[n..]) {
            Ok(0) => return Ok(n),
            Ok(k) => n += k,
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
}
