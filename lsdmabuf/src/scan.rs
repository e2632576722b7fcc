// SPDX-License-Identifier: GPL-2.0
//! The walk of /proc: the only I/O of lsdmabuf.
//!
//! For every process: read the links of `/proc/PID/fd/*` and, for those that
//! name a dma-buf, `/proc/PID/fdinfo/N` (and stat() the fd when fdinfo lacks
//! the inode number, before Linux 5.14); then `/proc/PID/maps`. Of the
//! processes that hold a dma-buf, by fd or by mapping, it keeps the maps
//! lines of dma-bufs and reads `/proc/PID/comm` (and, when [`Reads`] asks,
//! the `Uid:` line of `/proc/PID/status` and `/proc/PID/cgroup`). Then, for
//! buffers seen only through mappings, debugfs `dma_buf/bufinfo` or
//! `/proc/PID/map_files` for their size; bufinfo also when the buffers no
//! process holds or the devices attached are asked for (then once before
//! the walk too), or when no process holds a buffer at all (to tell whether
//! any exists). What cannot be read is recorded with its errno, never
//! fatal: only /proc itself must be readable.
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

use dmabuf::parse::fdinfo;
use dmabuf::uapi::dma_buf::DMA_BUF_MAGIC;

use crate::model::{self, Analysis, Digest, LinkKind};
use crate::raw::{Failure, FileStat, MapFileStat, Meta, Raw, RawFd, RawProcess, Reads};

/// Where procfs is mounted.
pub const PROC: &str = "/proc";

/// debugfs' list of every dma-buf.
pub const BUFINFO: &str = dmabuf::sys::BUFINFO;

/// Where the names of users are.
pub const PASSWD: &str = "/etc/passwd";

/// How a walk tells which filesystem the file of an fd is on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FsProbe {
    /// statfs() of `/proc/PID/fd/N`, which follows procfs' magic link to
    /// the file itself, and stat() of it for its device.
    #[default]
    Kernel,
    /// A tree laid out like /proc whose fd links lead nowhere (tests,
    /// `lsdmabuf-vmtest --synthetic`): the file `PID/fdfs/N` says what
    /// statfs() and stat() would, `F_TYPE MAJOR:MINOR` (`f_type` in hex).
    Described,
}

/// The filesystem a file is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileFs {
    /// statfs() `f_type`.
    pub magic: u64,
    /// stat() `st_dev`, as (major, minor); `None` when not asked for.
    pub dev: Option<(u32, u32)>,
}

/// What a walk reads, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub reads: Reads,
    /// How it tells a dma-buf's file: [`FsProbe::Kernel`].
    pub fs: FsProbe,
    /// procfs: [`PROC`].
    pub proc: String,
    /// debugfs bufinfo: [`BUFINFO`].
    pub bufinfo: String,
    /// The user database: [`PASSWD`].
    pub passwd: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            reads: Reads::default(),
            fs: FsProbe::Kernel,
            proc: PROC.into(),
            bufinfo: BUFINFO.into(),
            passwd: PASSWD.into(),
        }
    }
}

impl Options {
    /// The default walk, reading what `reads` asks for besides.
    pub fn reading(reads: Reads) -> Self {
        Options {
            reads,
            ..Options::default()
        }
    }
}

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
pub fn scan(opts: &Options) -> Result<Raw> {
    scan_with(opts, default_threads())
}

/// Walks /proc once with up to `threads` threads, each taking the next
/// processes from a shared list. procfs reads of different processes do not
/// contend, so the walk's time divides by the CPUs it gets.
pub fn scan_with(opts: &Options, threads: usize) -> Result<Raw> {
    Ok(scan_digested(opts, threads)?.0)
}

/// [`scan_with`], and the [`Digest`] of each process (in the order of
/// [`Raw::processes`]): what its threads parsed while they walked, so that
/// [`Analysis::from_digests`] need not parse it again in one thread.
pub fn scan_digested(opts: &Options, threads: usize) -> Result<(Raw, Vec<Digest>)> {
    let dir = opts.proc.as_str();
    let proc = nix::fcntl::open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("open {dir}"))?;
    // bufinfo before the walk: a buffer listed before and after it was
    // alive all along, and any process holding it all along was walked.
    let before = opts.reads.unheld.then(|| {
        let mut w = Walker::new(proc.as_fd(), opts);
        w.raw.bufinfo_before = w.read_bufinfo();
        w
    });
    let pids = list_pids(proc.as_fd()).with_context(|| format!("reading the directory {dir}"))?;
    // No more threads than batches.
    let threads = threads
        .clamp(1, MAX_THREADS)
        .min(pids.len().div_ceil(BATCH).max(1));
    let next = AtomicUsize::new(0);
    let walk = || {
        let mut w = Walker::new(proc.as_fd(), opts);
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
        let mut walkers: Vec<Walker> = before.into_iter().collect();
        walkers.push(walk());
        for h in helpers {
            match h.join() {
                Ok(w) => walkers.push(w),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        walkers
    });
    let mut w = Walker::merge(proc.as_fd(), opts, walkers);
    w.mapped_only();
    if opts.reads.users {
        w.user_names();
    }
    w.raw.meta = Meta {
        dmabuf_dev: w.raw.meta.dmabuf_dev,
        euid: Some(nix::unistd::geteuid().as_raw()),
        time: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs()),
        kernel: nix::sys::utsname::uname()
            .ok()
            .map(|u| u.release().to_string_lossy().into_owned()),
        reads: opts.reads,
    };
    Ok((w.raw, w.digests))
}

/// A walk, grouped: what lsdmabuf shows, before filters.
pub fn analyze(opts: &Options) -> Result<(Raw, Analysis)> {
    let (raw, digests) = scan_digested(opts, default_threads())?;
    let a = Analysis::from_digests(&raw, digests);
    Ok((raw, a))
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
    opts: &'a Options,
    /// Reused for every file read.
    buf: Vec<u8>,
    raw: Raw,
    /// The digest of each of `raw.processes`.
    digests: Vec<Digest>,
    /// The inode numbers of the dma-bufs seen through fds.
    fd_inos: HashSet<u64>,
    /// The dma-bufs seen through mappings: ino -> a process and the
    /// mapping's map_files name.
    mapped: BTreeMap<u64, (i32, String)>,
}

impl<'a> Walker<'a> {
    fn new(proc: BorrowedFd<'a>, opts: &'a Options) -> Self {
        Walker {
            proc,
            opts,
            buf: vec![0; 16 << 10],
            raw: Raw::default(),
            digests: Vec::new(),
            fd_inos: HashSet::new(),
            mapped: BTreeMap::new(),
        }
    }

    /// One walker with what `walkers` found, processes in pid order.
    fn merge(proc: BorrowedFd<'a>, opts: &'a Options, walkers: Vec<Walker<'a>>) -> Self {
        let mut all = Walker::new(proc, opts);
        let mut processes = Vec::new();
        for w in walkers {
            let raw = w.raw;
            all.raw.bufinfo_before = all.raw.bufinfo_before.or(raw.bufinfo_before);
            all.raw.meta.dmabuf_dev = all.raw.meta.dmabuf_dev.or(raw.meta.dmabuf_dev);
            processes.extend(raw.processes.into_iter().zip(w.digests));
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
        processes.sort_unstable_by_key(|(p, _)| p.pid);
        (all.raw.processes, all.digests) = processes.into_iter().unzip();
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
        let (fds, mut digest) = match self.fds(pid, fd_dir) {
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
        let (mappings, maps) = model::keep_maps_bytes(&self.buf[..n]);
        if fds.is_empty() && maps.is_empty() {
            return;
        }
        for m in &mappings {
            self.mapped
                .entry(m.inode)
                .or_insert_with(|| (pid, m.map_files_name()));
        }
        // No mappings with lines kept: one of them did not parse, which the
        // digest reports from the text.
        let parsed = (!mappings.is_empty() || maps.is_empty()).then_some(mappings);
        digest.set_mappings(pid, &maps, parsed);
        let comm = match self.read_record(&format!("{pid}/comm")) {
            Ok(text) => text.strip_suffix('\n').unwrap_or(&text).to_string(),
            Err(_) => "?".to_string(),
        };
        let status = if self.opts.reads.users {
            self.detail(pid, "status")
                .map(|t| match model::status_uid_line(&t) {
                    Some(line) => format!("{line}\n"),
                    None => String::new(),
                })
        } else {
            None
        };
        let cgroup = if self.opts.reads.cgroups {
            self.detail(pid, "cgroup")
        } else {
            None
        };
        digest.set_owner(status.as_deref(), cgroup.as_deref());
        self.raw.processes.push(RawProcess {
            pid,
            comm,
            fds,
            maps,
            status,
            cgroup,
        });
        self.digests.push(digest);
    }

    /// `/proc/PID/FILE`, a detail of a process already read: a failure
    /// hides none of its buffers, and is recorded without its pid. A
    /// missing `cgroup` is recorded too: a kernel without cgroups has none.
    fn detail(&mut self, pid: i32, file: &str) -> Option<String> {
        match self.read_record(&format!("{pid}/{file}")) {
            Ok(text) => Some(text),
            Err(e) => {
                if file == "cgroup" || !matches!(gone(e), Gone::Exited) {
                    self.fail(None, format!("/proc/{pid}/{file}"), e);
                }
                None
            }
        }
    }

    /// The whole of debugfs bufinfo, or `None` with the failure recorded.
    fn read_bufinfo(&mut self) -> Option<String> {
        let path = self.opts.bufinfo.as_str();
        match read_at(self.proc, path, &mut self.buf) {
            Ok(n) => Some(String::from_utf8_lossy(&self.buf[..n]).into_owned()),
            Err(e) => {
                self.fail(None, path.to_string(), e);
                None
            }
        }
    }

    /// The names of the holders' uids, from the user database.
    fn user_names(&mut self) {
        let uids: HashSet<u32> = self
            .raw
            .processes
            .iter()
            .filter_map(|p| model::status_uid(p.status.as_deref()?))
            .collect();
        if uids.is_empty() {
            return;
        }
        // A system without a user database (a test VM) has numbers only.
        if let Ok(n) = read_at(self.proc, &self.opts.passwd, &mut self.buf) {
            let text = String::from_utf8_lossy(&self.buf[..n]);
            self.raw.users = model::passwd_names(&text)
                .into_iter()
                .filter(|(uid, _)| uids.contains(uid))
                .collect();
        }
    }

    /// The dma-buf fds of `pid`, from its open fd directory, and the digest
    /// of them.
    fn fds(&mut self, pid: i32, mut dir: Dir) -> Result<(Vec<RawFd>, Digest), Gone> {
        let mut fds = Vec::new();
        let mut digest = Digest::default();
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
            // A link that reads /dmabuf: is any file of that name (a tmpfs
            // file opened as /dmabuf:frame): a dma-buf is a file on the
            // dmabuf filesystem.
            if kind == LinkKind::DmaBuf {
                match self.file_fs(dir.as_fd(), pid, fd) {
                    Ok(fs) if fs.magic == DMA_BUF_MAGIC => {
                        if let Some(dev) = fs.dev {
                            self.raw.meta.dmabuf_dev = Some(dev);
                        }
                    }
                    Ok(_) | Err(Errno::ENOENT) => continue,
                    Err(e) => {
                        self.fail(Some(pid), format!("/proc/{pid}/fd/{fd}"), e);
                        continue;
                    }
                }
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
            // Parsed once, here: for the inode number, and for the digest.
            let info = fdinfo.as_deref().map(fdinfo::parse_ino_optional);
            let ino = match (&info, kind) {
                (Some(Ok(i)), LinkKind::DmaBuf) if i.ino != 0 && i.dmabuf.is_some() => Some(i.ino),
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
            let raw = RawFd {
                fd,
                link,
                fdinfo,
                stat,
            };
            digest.add_fd(pid, &raw, info);
            fds.push(raw);
        }
        Ok((fds, digest))
    }

    /// The filesystem of fd `fd` of `pid` (`dir` is its fd directory), and
    /// its device while the walk does not know the dmabuf filesystem's.
    fn file_fs(&mut self, dir: BorrowedFd<'_>, pid: i32, fd: i32) -> nix::Result<FileFs> {
        let want_dev = self.raw.meta.dmabuf_dev.is_none();
        match self.opts.fs {
            FsProbe::Kernel => {
                let name = fd.to_string();
                let fs =
                    nix::sys::statfs::statfs(format!("{}/{pid}/fd/{fd}", self.opts.proc).as_str())?;
                let magic = fs.filesystem_type().0 as u64;
                let dev = if want_dev && magic == DMA_BUF_MAGIC {
                    let st = fstatat(dir, name.as_str(), nix::fcntl::AtFlags::empty())?;
                    Some((libc::major(st.st_dev), libc::minor(st.st_dev)))
                } else {
                    None
                };
                Ok(FileFs { magic, dev })
            }
            FsProbe::Described => {
                let text = self.read(&format!("{pid}/fdfs/{fd}"))?;
                parse_file_fs(&text).ok_or(Errno::EINVAL)
            }
        }
    }

    /// Reads what tells the size of buffers seen only through mappings:
    /// bufinfo once, else stat() of a map_files entry per buffer. Reads
    /// bufinfo anyway when the buffers no process holds or the devices
    /// attached are asked for, or when no process holds any buffer.
    fn mapped_only(&mut self) {
        let unknown: Vec<(i32, u64, String)> = std::mem::take(&mut self.mapped)
            .into_iter()
            .filter(|(ino, _)| !self.fd_inos.contains(ino))
            .map(|(ino, (pid, range))| (pid, ino, range))
            .collect();
        if !needs_bufinfo(
            self.opts.reads,
            !unknown.is_empty(),
            self.raw.processes.is_empty(),
        ) {
            return;
        }
        self.raw.bufinfo = self.read_bufinfo();
        if self.raw.bufinfo.is_some() {
            return;
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

/// What [`FsProbe::Described`] reads: `F_TYPE MAJOR:MINOR`, `f_type` in
/// hex.
pub fn parse_file_fs(text: &str) -> Option<FileFs> {
    let (magic, dev) = text.trim().split_once(' ')?;
    let (major, minor) = dev.split_once(':')?;
    Some(FileFs {
        magic: u64::from_str_radix(magic.trim_start_matches("0x"), 16).ok()?,
        dev: Some((major.parse().ok()?, minor.parse().ok()?)),
    })
}

/// Whether a walk reads bufinfo after it: for the buffers seen only through
/// mappings (`mapped_only`), for what `reads` asks, or to tell whether any
/// buffer exists when no process holds one (`none_held`).
pub fn needs_bufinfo(reads: Reads, mapped_only: bool, none_held: bool) -> bool {
    mapped_only || reads.unheld || reads.importers || none_held
}

/// What a walk reading only `reads` would have read of the system that
/// `raw` (read with more) saw: what `--load` shows, so that a capture shows
/// what lsdmabuf showed with the same options on that system.
pub fn as_walked(raw: &Raw, reads: Reads) -> Raw {
    let had = raw.meta.reads;
    let reads = Reads {
        users: reads.users && had.users,
        cgroups: reads.cgroups && had.cgroups,
        unheld: reads.unheld && had.unheld,
        importers: reads.importers && had.importers,
    };
    let mut out = raw.clone();
    out.meta.reads = reads;
    for p in &mut out.processes {
        if !reads.users {
            p.status = None;
        }
        if !reads.cgroups {
            p.cgroup = None;
        }
    }
    if !reads.users {
        out.users.clear();
    }
    if !reads.unheld {
        out.bufinfo_before = None;
    }
    // The buffers mapped that no fd showed, as the walk tells them.
    let fd_inos: HashSet<u64> = raw
        .processes
        .iter()
        .flat_map(|p| &p.fds)
        .filter_map(|fd| model::fdinfo_ino(fd.fdinfo.as_deref()).or(fd.stat.map(|s| s.ino)))
        .collect();
    let mapped_only = raw
        .processes
        .iter()
        .flat_map(|p| model::keep_maps(&p.maps).0)
        .any(|m| !fd_inos.contains(&m.inode));
    let bufinfo = needs_bufinfo(reads, mapped_only, raw.processes.is_empty());
    if !bufinfo {
        out.bufinfo = None;
    }
    // The failures of the files it would not have read.
    out.failures.retain(|f| {
        let path = f.path.as_str();
        !((!reads.users && path.ends_with("/status"))
            || (!reads.cgroups && path.ends_with("/cgroup"))
            || (!bufinfo && f.pid.is_none() && path.ends_with("/bufinfo")))
    });
    out
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Filter;
    use std::os::unix::fs::symlink;
    use std::path::{Path, PathBuf};

    /// A directory laid out like /proc, removed on drop.
    struct Tree(PathBuf);

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn fdinfo(ino: u64, size: u64) -> String {
        format!(
            "pos:\t0\nflags:\t02000002\nmnt_id:\t15\nino:\t{ino}\nsize:\t{size}\ncount:\t1\nexp_name:\tsystem\n"
        )
    }

    const MAPS: &str =
        "55d0c0000000-55d0c0001000 r--p 00000000 fe:01 1234                       /usr/bin/app\n";

    /// 10 holds 41 by fd and maps 42; 11 maps a line that does not parse;
    /// 12 holds nothing; 13 holds 41 too, by an fd with a name; bufinfo
    /// lists 41, 42 and 43, which no process holds.
    fn tree(name: &str) -> Tree {
        let dir =
            std::env::temp_dir().join(format!("lsdmabuf-scan-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let t = Tree(dir.clone());
        for (pid, fds) in [
            (
                10,
                vec![(0, "/dev/null"), (3, "/dmabuf:"), (4, "socket:[7]")],
            ),
            (11, vec![(0, "/dev/null")]),
            (12, vec![(0, "/dev/null"), (1, "pipe:[9]")]),
            (13, vec![(5, "/dmabuf:frame")]),
        ] {
            let p = dir.join(pid.to_string());
            std::fs::create_dir_all(p.join("fd")).unwrap();
            for (fd, target) in fds {
                symlink(target, p.join("fd").join(fd.to_string())).unwrap();
            }
            write(&p.join("comm"), &format!("proc{pid}\n"));
            write(&p.join("status"), "Name:\tx\nUid:\t0\t0\t0\t0\n");
            write(&p.join("cgroup"), "0::/t\n");
        }
        write(&dir.join("10/fdinfo/3"), &fdinfo(41, 8192));
        write(&dir.join("13/fdinfo/5"), &fdinfo(41, 8192));
        // What statfs() and stat() say of the dma-bufs' files.
        write(&dir.join("10/fdfs/3"), DMABUF_FS);
        write(&dir.join("13/fdfs/5"), DMABUF_FS);
        write(
            &dir.join("10/maps"),
            &format!("{MAPS}7f0000000000-7f0000001000 rw-s 00000000 00:0b 42                         /dmabuf:\n"),
        );
        write(
            &dir.join("11/maps"),
            &format!("{MAPS}7f00zz000000-7f0000001000 rw-s 00000000 00:0b 42                         /dmabuf:\n"),
        );
        write(&dir.join("12/maps"), MAPS);
        write(&dir.join("13/maps"), MAPS);
        let entry = |size: u64, ino: u64| {
            format!("{size:08}\t00000002\t00080007\t00000001\tsystem\t{ino:08}\t<none>\n\tAttached Devices:\nTotal 0 devices attached\n\n")
        };
        write(
            &dir.join("bufinfo"),
            &format!(
                "\nDma-buf Objects:\nsize    \tflags   \tmode    \tcount   \texp_name\tino     \tname\n{}{}{}\nTotal 3 objects, 20480 bytes\n",
                entry(8192, 41),
                entry(8192, 42),
                entry(4096, 43)
            ),
        );
        write(&dir.join("passwd"), "root:x:0:0::/:/bin/sh\n");
        t
    }

    /// The dmabuf filesystem, on device 0:11 (`00:0b` in maps).
    const DMABUF_FS: &str = "444d4142 0:11\n";

    fn opts(t: &Tree, reads: Reads) -> Options {
        let root = t.0.display().to_string();
        Options {
            reads,
            fs: FsProbe::Described,
            bufinfo: format!("{root}/bufinfo"),
            passwd: format!("{root}/passwd"),
            proc: root,
        }
    }

    #[test]
    fn walks_a_tree_like_proc() {
        let t = tree("walk");
        for reads in [Reads::default(), Reads::ALL] {
            for threads in [1, 3] {
                let (raw, digests) = scan_digested(&opts(&t, reads), threads).unwrap();
                let pids: Vec<i32> = raw.processes.iter().map(|p| p.pid).collect();
                // 12 holds nothing and is not kept.
                assert_eq!(pids, [10, 11, 13], "{reads:?}");
                assert_eq!(raw.read, 4);
                // The walk's digests give what parsing the text again gives.
                let walked = Analysis::from_digests(&raw, digests).report(&Filter::default());
                let again = Analysis::new(&raw).report(&Filter::default());
                assert_eq!(walked, again);
                let inos: Vec<u64> = walked.buffers.iter().map(|b| b.ino).collect();
                let b42 = walked.buffers.iter().find(|b| b.ino == 42).unwrap();
                // 42 is only mapped: bufinfo gives its size.
                assert_eq!((b42.size, b42.exporter.as_deref()), (8192, Some("system")));
                assert_eq!(
                    walked.scan.warnings,
                    ["/proc/11/maps: maps line 2: start `7f00zz000000` is not a hexadecimal number"]
                );
                let p10 = &walked.processes[0];
                assert_eq!(
                    (p10.pid, p10.buffers, p10.rss, p10.pss),
                    (10, 2, 16384, 12288)
                );
                if reads.unheld {
                    assert_eq!(inos, [41, 42, 43]);
                    assert_eq!(
                        walked.users.as_ref().unwrap()[0].user.as_deref(),
                        Some("root")
                    );
                    assert_eq!(walked.processes[0].cgroup.as_deref(), Some("/t"));
                } else {
                    assert_eq!(inos, [41, 42]);
                    assert_eq!(walked.processes[0].cgroup, None);
                }
                // What a walk with fewer reads would have read, from this one.
                let fewer = as_walked(&raw, Reads::default());
                assert_eq!(
                    Analysis::new(&fewer)
                        .report(&Filter::default())
                        .buffers
                        .len(),
                    2
                );
            }
        }
    }

    #[test]
    fn a_file_named_like_a_dmabuf_is_not_one() {
        let t = tree("fake");
        // 14 opened a tmpfs file at /dmabuf:fake-frame and mapped it: its
        // link and its maps line read like a dma-buf's.
        let p = t.0.join("14");
        std::fs::create_dir_all(p.join("fd")).unwrap();
        symlink("/dmabuf:fake-frame", p.join("fd/6")).unwrap();
        write(&p.join("fdfs/6"), "1021994 0:23\n");
        write(
            &p.join("fdinfo/6"),
            "pos:\t0\nflags:\t0100002\nmnt_id:\t25\nino:\t7\n",
        );
        write(
            &p.join("maps"),
            &format!(
                "{MAPS}7f0000000000-7f0000004000 rw-s 00000000 00:17 7     /dmabuf:fake-frame\n"
            ),
        );
        write(&p.join("comm"), "faker\n");
        let (raw, digests) = scan_digested(&opts(&t, Reads::default()), 2).unwrap();
        assert_eq!(raw.meta.dmabuf_dev, Some((0, 11)));
        // The walk keeps 14's maps line, which the model then refuses.
        assert_eq!(raw.read, 5);
        assert!(raw
            .processes
            .iter()
            .all(|p| p.fds.iter().all(|f| f.link != "/dmabuf:fake-frame")));
        let r = Analysis::from_digests(&raw, digests).report(&Filter::default());
        let pids: Vec<i32> = r.processes.iter().map(|p| p.pid).collect();
        assert_eq!(pids, [10, 13]);
        let inos: Vec<u64> = r.buffers.iter().map(|b| b.ino).collect();
        assert_eq!(inos, [41, 42]);
        assert_eq!(r.totals.size, 16384);
        // A capture of the walk knows the device too.
        let again = Raw::from_capture(&raw.to_capture()).unwrap();
        assert_eq!(again.meta.dmabuf_dev, Some((0, 11)));
    }

    #[test]
    fn a_mapping_on_another_device_is_not_a_dmabuf() {
        // As above, but the fake file's fd closed: only its mapping shows.
        let mut raw = Raw {
            processes: vec![RawProcess {
                pid: 14,
                comm: "faker".into(),
                maps: "7f0000000000-7f0000004000 rw-s 00000000 00:17 7     /dmabuf:fake-frame\n"
                    .into(),
                ..RawProcess::default()
            }],
            read: 1,
            ..Raw::default()
        };
        raw.meta.dmabuf_dev = Some((0, 11));
        let r = Analysis::new(&raw).report(&Filter::default());
        assert!(r.buffers.is_empty(), "{:?}", r.buffers);
        // Without the device (a capture of format 2) the name decides.
        raw.meta.dmabuf_dev = None;
        assert_eq!(
            Analysis::new(&raw).report(&Filter::default()).buffers.len(),
            1
        );
    }

    #[test]
    fn what_statfs_says_in_a_tree() {
        assert_eq!(
            parse_file_fs("444d4142 0:11\n"),
            Some(FileFs {
                magic: DMA_BUF_MAGIC,
                dev: Some((0, 11))
            })
        );
        assert_eq!(parse_file_fs("zz 0:1"), None);
    }
}
