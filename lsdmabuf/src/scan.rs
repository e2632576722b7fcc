// SPDX-License-Identifier: GPL-2.0
//! The walk of /proc: the only I/O of lsdmabuf.
//!
//! For every process: read the links of `/proc/PID/fd/*` and, for those that
//! name a dma-buf, `/proc/PID/fdinfo/N` (and stat() the fd when fdinfo lacks
//! the inode number, before Linux 5.14); then `/proc/PID/maps`, and
//! `/proc/PID/comm` of the processes that hold a dma-buf. Then, for buffers
//! seen only through mappings, debugfs `dma_buf/bufinfo` or
//! `/proc/PID/map_files` for their size. What cannot be read is recorded with
//! its errno, never fatal: only /proc itself must be readable.
//!
//! Files are read with openat() from one descriptor of /proc and one buffer
//! reused, and nothing is read that a bare walk of the fd links would not
//! touch, except for dma-bufs and maps.

use std::ffi::CStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

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

/// Walks /proc once.
pub fn scan() -> Result<Raw> {
    let proc = nix::fcntl::open(
        PROC,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("open {PROC}"))?;
    let pids = list_pids(proc.as_fd()).with_context(|| format!("reading the directory {PROC}"))?;
    let mut w = Walker {
        proc,
        buf: Vec::with_capacity(16 << 10),
        raw: Raw::default(),
    };
    for pid in pids {
        w.process(pid);
    }
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

struct Walker {
    proc: OwnedFd,
    /// Reused for every file read.
    buf: Vec<u8>,
    raw: Raw,
}

impl Walker {
    /// The whole text of `path`, relative to /proc.
    fn read(&mut self, path: &str) -> nix::Result<String> {
        read_at(self.proc.as_fd(), path, &mut self.buf)?;
        Ok(String::from_utf8_lossy(&self.buf).into_owned())
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
            self.proc.as_fd(),
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
        let maps = match self.read(&format!("{pid}/maps")) {
            Ok(text) => text,
            Err(e) => match gone(e) {
                Gone::Exited => {
                    self.raw.exited += 1;
                    return;
                }
                Gone::Failed(e) => {
                    self.fail(Some(pid), format!("/proc/{pid}/maps"), e);
                    String::new()
                }
            },
        };
        self.raw.read += 1;
        if fds.is_empty() && !model::maps_dmabufs(&maps) {
            return;
        }
        let comm = match self.read(&format!("{pid}/comm")) {
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
                match self.read(&format!("{pid}/fdinfo/{fd}")) {
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
            let stat = if kind == LinkKind::DmaBuf && model::needs_stat(fdinfo.as_deref()) {
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
        let unknown = model::mapped_only(&self.raw.processes);
        if unknown.is_empty() {
            return;
        }
        match read_at(self.proc.as_fd(), BUFINFO, &mut self.buf) {
            Ok(()) => {
                self.raw.bufinfo = Some(String::from_utf8_lossy(&self.buf).into_owned());
                let described = self
                    .raw
                    .bufinfo
                    .as_deref()
                    .map(validator::parse::bufinfo::parse);
                if let Some(Ok(info)) = described {
                    if unknown
                        .iter()
                        .all(|(_, ino, _)| info.with_ino(*ino).next().is_some())
                    {
                        return;
                    }
                }
            }
            Err(e) => self.fail(None, BUFINFO.to_string(), e),
        }
        for (pid, ino, range) in unknown {
            match fstatat(
                self.proc.as_fd(),
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

/// Reads the whole of `path` (relative to `dir`, or absolute) into `buf`.
pub fn read_at(dir: BorrowedFd<'_>, path: &str, buf: &mut Vec<u8>) -> nix::Result<()> {
    let fd = openat(dir, path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())?;
    buf.clear();
    loop {
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(buf.capacity().max(4096));
        }
        let start = buf.len();
        buf.resize(buf.capacity(), 0);
        match read(&fd, &mut buf[start..]) {
            Ok(0) => {
                buf.truncate(start);
                return Ok(());
            }
            Ok(n) => buf.truncate(start + n),
            Err(Errno::EINTR) => buf.truncate(start),
            Err(e) => {
                buf.truncate(start);
                return Err(e);
            }
        }
    }
}
