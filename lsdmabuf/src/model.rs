// SPDX-License-Identifier: GPL-2.0
//! Who holds which dma-buf: what a walk read ([`Raw`]), grouped by inode.
//!
//! Pure: no I/O, so that it runs on the host on captured text. A dma-buf is
//! named by the inode number of its file on the dmabuf filesystem, the same
//! from every fd and mapping that reaches it. A process *holds* a buffer when
//! one of its fds is the buffer's file or one of its mappings maps it. As in
//! Android's `dmabuf_dump`:
//!
//! - a process's **Rss** is the sum of the sizes of the buffers it holds,
//!   each counted once however many fds and mappings reach it;
//! - its **Pss** is the sum, over those buffers, of the buffer's size
//!   divided by the number of processes that hold it (integer division, in
//!   bytes), so that the Pss of all processes adds up to the size of all
//!   buffers, less the remainders.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use nix::errno::Errno;
use serde::Serialize;

use dmabuf::parse::{bufinfo, fdinfo, maps, ParseError};
use dmabuf::uapi::dma_buf::LINK_PREFIX;

use crate::raw::{FileStat, Raw, RawFd, RawProcess, Reads};

/// The link of a dma-buf fd on kernels before 5.3, where every dma-buf
/// shared one anonymous inode and could not be told apart.
pub const LEGACY_LINK: &str = "anon_inode:dmabuf";

/// What an fd's `/proc/PID/fd/N` link says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// A dma-buf with an inode of its own: `/dmabuf:NAME`.
    DmaBuf,
    /// A dma-buf on anon_inodefs (before 5.3): [`LEGACY_LINK`].
    Legacy,
    /// Anything else.
    Other,
}

/// Classifies an fd by its link, as bytes (links need not be UTF-8).
pub fn link_kind(link: &[u8]) -> LinkKind {
    if link.starts_with(LINK_PREFIX.as_bytes()) {
        LinkKind::DmaBuf
    } else if link == LEGACY_LINK.as_bytes() {
        LinkKind::Legacy
    } else {
        LinkKind::Other
    }
}

/// The inode number a dma-buf fd's fdinfo gives; `None` when the walk must
/// stat() the fd instead: fdinfo missing, unparsable, without dma-buf lines,
/// or without the `ino:` line (kernels before 5.14).
pub fn fdinfo_ino(fdinfo_text: Option<&str>) -> Option<u64> {
    match fdinfo_text.map(fdinfo::parse_ino_optional) {
        Some(Ok(info)) if info.ino != 0 && info.dmabuf.is_some() => Some(info.ino),
        _ => None,
    }
}

/// What a maps line of a dma-buf holds: [`LINK_PREFIX`] after the padding
/// that follows the inode number.
const MAPS_NEEDLE: &str = " /dmabuf:";

/// The lines of maps text that may map a dma-buf, with their 1-based
/// numbers: only those are parsed, so that a line of no interest cannot fail
/// the whole file.
fn dmabuf_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| line.contains(MAPS_NEEDLE))
        .map(|(i, line)| (i + 1, line))
}

/// The mapping on line `n` when it is of a dma-buf: path `/dmabuf:NAME` on
/// a pseudo filesystem (major device number 0).
fn dmabuf_mapping(
    line: &str,
    n: usize,
) -> Result<Option<maps::Mapping>, dmabuf::parse::ParseError> {
    let m = maps::parse_line(line, n)?;
    Ok((m.major == 0 && m.pathname.starts_with(LINK_PREFIX)).then_some(m))
}

/// The mappings of dma-bufs in the text of `/proc/PID/maps`.
pub fn dmabuf_mappings(text: &str) -> Result<Vec<maps::Mapping>, dmabuf::parse::ParseError> {
    dmabuf_lines(text)
        .filter_map(|(n, line)| dmabuf_mapping(line, n).transpose())
        .collect()
}

/// What a walk keeps of the text of a process's `/proc/PID/maps`, in one
/// pass: its dma-buf mappings, and the text the model is to read, which is
/// the lines [`dmabuf_mappings`] parses, or the whole text when one of them
/// does not parse (the model then reports it with its line number). Both
/// are empty when the process maps no dma-buf.
pub fn keep_maps(text: &str) -> (Vec<maps::Mapping>, String) {
    keep_maps_bytes(text.as_bytes())
}

/// [`keep_maps`] of the bytes read: only the lines that hold
/// [`MAPS_NEEDLE`] are made text, so that the maps of a process that maps
/// no dma-buf, most of them, cost one search.
pub fn keep_maps_bytes(bytes: &[u8]) -> (Vec<maps::Mapping>, String) {
    let mut mappings = Vec::new();
    let mut kept = String::new();
    let mut next = 0;
    for hit in memchr::memmem::find_iter(bytes, MAPS_NEEDLE.as_bytes()) {
        if hit < next {
            // A second needle on a line already kept.
            continue;
        }
        let start = memchr::memrchr(b'\n', &bytes[..hit]).map_or(0, |i| i + 1);
        let end = memchr::memchr(b'\n', &bytes[hit..]).map_or(bytes.len(), |i| hit + i);
        next = end;
        let line = String::from_utf8_lossy(&bytes[start..end]);
        // The line number matters only for an error, which the model
        // reports from the whole text.
        match dmabuf_mapping(&line, 0) {
            Ok(Some(m)) => mappings.push(m),
            Ok(None) => {}
            Err(_) => return (Vec::new(), String::from_utf8_lossy(bytes).into_owned()),
        }
        kept.push_str(&line);
        kept.push('\n');
    }
    if mappings.is_empty() {
        kept.clear();
    }
    (mappings, kept)
}

/// Whether the text of `/proc/PID/stat` is a kernel thread's
/// (`PF_KTHREAD` in the flags, field 9); `None` when it cannot be parsed.
pub fn stat_is_kernel_thread(text: &str) -> Option<bool> {
    const PF_KTHREAD: u64 = 0x0020_0000;
    // comm, field 2, is in parentheses and may hold any character: the
    // fields that follow start after the last `)`.
    let rest = &text[text.rfind(')')? + 1..];
    let flags: u64 = rest.split_whitespace().nth(6)?.parse().ok()?;
    Some(flags & PF_KTHREAD != 0)
}

/// The line of `/proc/PID/status` that [`status_uid`] reads: what a walk
/// keeps of the file.
pub fn status_uid_line(text: &str) -> Option<&str> {
    text.lines().find(|l| l.starts_with("Uid:"))
}

/// The effective uid in the text of `/proc/PID/status`: the second number
/// of its `Uid:` line (real, effective, saved, filesystem), the owner `ps`
/// shows.
pub fn status_uid(text: &str) -> Option<u32> {
    status_uid_line(text)?
        .strip_prefix("Uid:")?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The cgroup of a process in the text of `/proc/PID/cgroup`: the path in
/// the hierarchy of the memory controller, the one whose limits dma-heap
/// memory escapes. That is the cgroup2 path (`0::PATH`), unless a cgroup v1
/// hierarchy has the memory controller (a hybrid system): then its path.
/// Without either, the first hierarchy's.
pub fn cgroup_path(text: &str) -> Option<String> {
    let (mut v2, mut first) = (None, None);
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if controllers.split(',').any(|c| c == "memory") {
            return Some(path.to_string());
        }
        if id == "0" && controllers.is_empty() {
            v2.get_or_insert(path);
        }
        first.get_or_insert(path);
    }
    v2.or(first).map(str::to_string)
}

/// uid -> user name, from the text of `/etc/passwd` (`name:x:uid:...`); the
/// first name of a uid stands.
pub fn passwd_names(text: &str) -> BTreeMap<u32, String> {
    let mut names = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 3 || f[0].is_empty() || f[0].starts_with('#') {
            continue;
        }
        if let Ok(uid) = f[2].parse::<u32>() {
            names.entry(uid).or_insert_with(|| f[0].to_string());
        }
    }
    names
}

/// Where a buffer's size comes from, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SizeFrom {
    /// fdinfo `size:` of an fd.
    Fdinfo,
    /// stat() `st_size` of an fd.
    Stat,
    /// debugfs bufinfo, for a buffer seen only through mappings or held by
    /// no process.
    Bufinfo,
    /// stat() of `/proc/PID/map_files/RANGE`, likewise.
    MapFiles,
    /// The end of the furthest mapping: a lower bound only, when nothing
    /// better could be read.
    Mappings,
}

impl SizeFrom {
    /// Whether the size is the buffer's, not a lower bound.
    pub fn exact(self) -> bool {
        self != SizeFrom::Mappings
    }
}

/// One dma-buf.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Buffer {
    pub ino: u64,
    pub size: u64,
    pub size_from: SizeFrom,
    /// The exporter (`exp_name`), unknown for a buffer seen only through
    /// mappings when bufinfo could not be read.
    pub exporter: Option<String>,
    /// The name DMA_BUF_SET_NAME gave; `None` before one.
    pub name: Option<String>,
    /// The devices attached to it, its importers (bufinfo's `Attached
    /// Devices`, as `dev_name()` names them); `None` when bufinfo was not
    /// read or did not list the buffer.
    pub importers: Option<Vec<String>>,
    /// How many processes hold it: what its size is divided by for Pss. 0
    /// for a buffer no process holds (`--all`).
    pub processes: usize,
    /// Every process that holds it, in pid order.
    pub holders: Vec<Holder>,
}

/// One process's hold on one buffer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Holder {
    pub pid: i32,
    pub command: String,
    /// Its fds that are the buffer's file, in order.
    pub fds: Vec<i32>,
    /// Its mappings (VMAs) of the buffer.
    pub mappings: usize,
    /// The bytes those mappings span.
    pub mapped_bytes: u64,
}

/// One process's dma-bufs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Process {
    pub pid: i32,
    pub command: String,
    /// Its effective uid; `None` when not read.
    pub uid: Option<u32>,
    /// The name of that uid; `None` when not read or not in the user
    /// database.
    pub user: Option<String>,
    /// Its cgroup; `None` when not read.
    pub cgroup: Option<String>,
    /// Distinct buffers it holds.
    pub buffers: usize,
    /// Its dma-buf fds.
    pub fds: usize,
    /// Its mappings of dma-bufs.
    pub mappings: usize,
    pub rss: u64,
    pub pss: u64,
    /// Whether every size in `rss` and `pss` is exact; false when one is a
    /// lower bound.
    pub exact: bool,
}

/// The buffers of one exporter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Exporter {
    /// `None` for buffers whose exporter is unknown.
    pub exporter: Option<String>,
    pub buffers: usize,
    pub size: u64,
    /// Whether every size in `size` is exact.
    pub exact: bool,
    /// Processes that hold at least one of them.
    pub processes: usize,
}

/// The processes of one user, or of one cgroup: a line of `--by user` and
/// `--by cgroup`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    /// The uid (`--by user`); `None` for processes whose uid was not read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// The user's name (`--by user`), when the user database has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The cgroup (`--by cgroup`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    pub processes: usize,
    /// Distinct buffers its processes hold.
    pub buffers: usize,
    pub fds: usize,
    pub mappings: usize,
    /// The size of those distinct buffers, each once.
    pub rss: u64,
    /// The sum of its processes' Pss.
    pub pss: u64,
    pub exact: bool,
}

/// A number of buffers and their size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Count {
    pub buffers: usize,
    pub size: u64,
}

/// The sums over what is listed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub buffers: usize,
    /// The size of all buffers listed, each once.
    pub size: u64,
    /// Whether every size summed is exact.
    pub exact: bool,
    pub processes: usize,
    pub fds: usize,
    pub mappings: usize,
    /// The sum of the processes' Rss: shared buffers count once per holder.
    pub rss: u64,
    /// The sum of the processes' Pss.
    pub pss: u64,
    /// The buffers listed that no process holds (`--all`); `None` when they
    /// were not looked for, or bufinfo could not be read.
    pub unheld: Option<Count>,
    /// Every buffer of the system, as bufinfo counts them; `None` when
    /// bufinfo was not read.
    pub system: Option<Count>,
}

/// Something that could not be read, for the JSON output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unreadable {
    pub pid: Option<i32>,
    pub path: String,
    /// The errno's name, `EACCES`.
    pub errno: String,
    /// What it means, `Permission denied`.
    pub error: String,
}

/// How complete the walk was, and its circumstances.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ScanNotes {
    /// Processes whose fds were read.
    pub processes_read: usize,
    /// Processes that could not be read (or not completely), by errno name.
    pub unreadable_processes: BTreeMap<String, usize>,
    /// Every file that could not be read.
    pub unreadable: Vec<Unreadable>,
    pub exited: usize,
    /// Kernel threads skipped because their fds could not be read.
    pub kernel_threads: usize,
    /// dma-buf fds on anon_inodefs (kernels before 5.3): not counted, since
    /// such buffers share one inode and cannot be told apart.
    pub legacy_fds: usize,
    /// Text that could not be parsed, and fds that could not be identified.
    pub warnings: Vec<String>,
    /// The effective uid the walk ran as.
    pub euid: Option<u32>,
    /// When it ran, in seconds since the epoch.
    pub time: Option<u64>,
    /// The kernel it ran on.
    pub kernel: Option<String>,
    /// Whether it read the holders' users, their cgroups, the buffers no
    /// process holds, the devices attached.
    pub read_users: bool,
    pub read_cgroups: bool,
    pub read_unheld: bool,
    pub read_importers: bool,
}

impl ScanNotes {
    /// How many processes could not be read.
    pub fn unreadable_count(&self) -> usize {
        self.unreadable_processes.values().sum()
    }

    /// What was read beyond what every walk reads.
    pub fn reads(&self) -> Reads {
        Reads {
            users: self.read_users,
            cgroups: self.read_cgroups,
            unheld: self.read_unheld,
            importers: self.read_importers,
        }
    }
}

/// What is known about one buffer before filtering.
#[derive(Debug, Clone)]
struct Facts {
    size: u64,
    size_from: SizeFrom,
    exporter: Option<String>,
    name: Option<String>,
    importers: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default)]
struct Hold {
    fds: Vec<i32>,
    mappings: usize,
    mapped_bytes: u64,
}

/// Who a holding process is, beyond its pid and command.
#[derive(Debug, Clone, Default)]
struct Owner {
    uid: Option<u32>,
    user: Option<String>,
    cgroup: Option<String>,
}

/// The owner of a process whose status and cgroup were not read.
const NO_OWNER: Owner = Owner {
    uid: None,
    user: None,
    cgroup: None,
};

/// Every buffer and every holding of one walk, before filters.
#[derive(Debug, Clone, Default)]
pub struct Analysis {
    facts: BTreeMap<u64, Facts>,
    commands: BTreeMap<i32, String>,
    owners: BTreeMap<i32, Owner>,
    /// (ino, pid) -> the hold.
    holds: BTreeMap<(u64, i32), Hold>,
    /// ino -> number of holding processes.
    holders: BTreeMap<u64, usize>,
    /// The buffers bufinfo listed before and after the walk that no process
    /// was seen holding; `None` when they were not looked for, or bufinfo
    /// could not be read twice.
    unheld: Option<BTreeSet<u64>>,
    /// bufinfo's totals.
    system: Option<Count>,
    pub notes: ScanNotes,
}

/// The name in a `/dmabuf:NAME` link or maps path; `None` when empty.
fn link_name(link: &str) -> Option<String> {
    link.strip_prefix(LINK_PREFIX)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
}

/// The buffer behind one dma-buf fd, its fdinfo parsed (`info`): its inode
/// number and what is known.
fn fd_facts(
    pid: i32,
    fd: &RawFd,
    info: Option<Result<fdinfo::FdInfo, ParseError>>,
    warnings: &mut Vec<String>,
) -> Option<(u64, Facts)> {
    let path = || format!("/proc/{pid}/fd/{}", fd.fd);
    let info = match info {
        Some(Ok(info)) => Some(info),
        Some(Err(e)) => {
            warnings.push(format!("{}: fdinfo: {e}", path()));
            None
        }
        None => None,
    };
    let ino = match (&info, fd.stat) {
        (Some(i), _) if i.ino != 0 => i.ino,
        (_, Some(FileStat { ino, .. })) => ino,
        _ => {
            warnings.push(format!("{}: no inode number from fdinfo or stat()", path()));
            return None;
        }
    };
    let d = info.and_then(|i| i.dmabuf);
    let (size, size_from) = match (&d, fd.stat) {
        (Some(d), _) => (d.size, SizeFrom::Fdinfo),
        (None, Some(st)) => (st.size, SizeFrom::Stat),
        (None, None) => {
            warnings.push(format!("{}: no size from fdinfo or stat()", path()));
            return None;
        }
    };
    let (exporter, name) = match d {
        Some(d) => (Some(d.exp_name), d.name.or_else(|| link_name(&fd.link))),
        None => (None, link_name(&fd.link)),
    };
    Some((
        ino,
        Facts {
            size,
            size_from,
            exporter,
            name,
            importers: None,
        },
    ))
}

/// What the model takes from one process's text, parsed: the walk works it
/// out in its threads, as it reads each process ([`crate::scan`]), so that
/// the model, in one thread, only groups; [`digest`] does it for a capture.
#[derive(Debug, Clone, Default)]
pub struct Digest {
    /// Its dma-buf fds that name a buffer: (fd, ino, what is known).
    fds: Vec<(i32, u64, Facts)>,
    /// Its fds on anon_inodefs (before 5.3).
    legacy: usize,
    mappings: Vec<maps::Mapping>,
    /// Text that could not be parsed, fds that could not be identified.
    warnings: Vec<String>,
    uid: Option<u32>,
    cgroup: Option<String>,
}

impl Digest {
    /// Adds dma-buf fd `fd` of process `pid` (in fd order), its fdinfo
    /// parsed (`info`).
    pub fn add_fd(
        &mut self,
        pid: i32,
        fd: &RawFd,
        info: Option<Result<fdinfo::FdInfo, ParseError>>,
    ) {
        if link_kind(fd.link.as_bytes()) == LinkKind::Legacy {
            self.legacy += 1;
        } else if let Some((ino, facts)) = fd_facts(pid, fd, info, &mut self.warnings) {
            self.fds.push((fd.fd, ino, facts));
        }
    }

    /// Sets the process's mappings: `parsed`, when the walk parsed them,
    /// else those of `maps`, the text it kept.
    pub fn set_mappings(&mut self, pid: i32, maps: &str, parsed: Option<Vec<maps::Mapping>>) {
        self.mappings = match parsed {
            Some(m) => m,
            None => match dmabuf_mappings(maps) {
                Ok(m) => m,
                Err(e) => {
                    self.warnings.push(format!("/proc/{pid}/maps: {e}"));
                    Vec::new()
                }
            },
        };
    }

    /// Sets who the process is, from its status' `Uid:` line and cgroup.
    pub fn set_owner(&mut self, status: Option<&str>, cgroup: Option<&str>) {
        self.uid = status.and_then(status_uid);
        self.cgroup = cgroup.and_then(cgroup_path);
    }

    /// The inode numbers of the buffers its fds are.
    pub fn fd_inos(&self) -> impl Iterator<Item = u64> + '_ {
        self.fds.iter().map(|(_, ino, _)| *ino)
    }
}

/// The [`Digest`] of one process of a walk.
pub fn digest(p: &RawProcess) -> Digest {
    let mut d = Digest::default();
    for fd in &p.fds {
        d.add_fd(
            p.pid,
            fd,
            fd.fdinfo.as_deref().map(fdinfo::parse_ino_optional),
        );
    }
    d.set_mappings(p.pid, &p.maps, None);
    d.set_owner(p.status.as_deref(), p.cgroup.as_deref());
    d
}

/// bufinfo text parsed, or a warning.
fn parse_bufinfo(
    text: Option<&str>,
    what: &str,
    warnings: &mut Vec<String>,
) -> Option<bufinfo::BufInfo> {
    match text.map(bufinfo::parse) {
        Some(Ok(info)) => Some(info),
        Some(Err(e)) => {
            warnings.push(format!("{what}: {e}"));
            None
        }
        None => None,
    }
}

impl Analysis {
    /// Groups one walk by buffer.
    pub fn new(raw: &Raw) -> Analysis {
        Analysis::from_digests(raw, raw.processes.iter().map(digest).collect())
    }

    /// [`Analysis::new`] with the processes' digests (in the order of
    /// `raw.processes`) worked out already, as the walk does.
    pub fn from_digests(raw: &Raw, digests: Vec<Digest>) -> Analysis {
        let mut a = Analysis::default();
        let reads = raw.meta.reads;
        let mut notes = ScanNotes {
            processes_read: raw.read,
            exited: raw.exited,
            kernel_threads: raw.kernel_threads,
            euid: raw.meta.euid,
            time: raw.meta.time,
            kernel: raw.meta.kernel.clone(),
            read_users: reads.users,
            read_cgroups: reads.cgroups,
            read_unheld: reads.unheld,
            read_importers: reads.importers,
            ..ScanNotes::default()
        };
        // Mappings of buffers no fd showed, with their process: (pid, mapping).
        let mut mapped_only: Vec<(i32, maps::Mapping)> = Vec::new();
        for (p, d) in raw.processes.iter().zip(digests) {
            a.commands.insert(p.pid, p.comm.clone());
            if d.uid.is_some() || d.cgroup.is_some() {
                a.owners.insert(
                    p.pid,
                    Owner {
                        uid: d.uid,
                        user: d.uid.and_then(|u| raw.users.get(&u).cloned()),
                        cgroup: d.cgroup,
                    },
                );
            }
            notes.legacy_fds += d.legacy;
            notes.warnings.extend(d.warnings);
            for (fd, ino, facts) in d.fds {
                // fdinfo beats stat; the first fd's name stands.
                match a.facts.get(&ino) {
                    Some(old) if old.size_from <= facts.size_from => {}
                    _ => {
                        a.facts.insert(ino, facts);
                    }
                }
                a.holds.entry((ino, p.pid)).or_default().fds.push(fd);
            }
            for m in d.mappings {
                let hold = a.holds.entry((m.inode, p.pid)).or_default();
                hold.mappings += 1;
                hold.mapped_bytes += m.end - m.start;
                mapped_only.push((p.pid, m));
            }
        }
        for hold in a.holds.values_mut() {
            hold.fds.sort_unstable();
        }
        let info = parse_bufinfo(raw.bufinfo.as_deref(), "bufinfo", &mut notes.warnings);
        // Each buffer's entry, found in one step: bufinfo lists thousands.
        let mut by_ino: HashMap<u64, &bufinfo::Buffer> = HashMap::new();
        for b in info.iter().flat_map(|i| &i.buffers) {
            by_ino.entry(b.ino).or_insert(b);
        }
        mapped_only.retain(|(_, m)| !a.facts.contains_key(&m.inode));
        a.describe_mapped_only(raw, &by_ino, &mapped_only);
        if let Some(info) = &info {
            if reads.importers || reads.unheld {
                for (ino, facts) in a.facts.iter_mut() {
                    facts.importers = by_ino.get(ino).map(|b| b.attached.clone());
                }
            }
            a.system = Some(Count {
                buffers: info.total_objects as usize,
                size: info.total_bytes,
            });
        }
        if reads.unheld {
            let before = parse_bufinfo(
                raw.bufinfo_before.as_deref(),
                "bufinfo (before the walk)",
                &mut notes.warnings,
            );
            if let (Some(before), Some(after)) = (before, &info) {
                a.unheld = Some(a.add_unheld(&before, after));
            }
        }
        for &(ino, _) in a.holds.keys() {
            *a.holders.entry(ino).or_default() += 1;
        }
        for f in &raw.failures {
            notes.unreadable.push(Unreadable {
                pid: f.pid,
                path: f.path.clone(),
                errno: errno_name(f.errno),
                error: f.errno.desc().to_string(),
            });
        }
        // A process counts once, however many of its files failed.
        let mut counted = BTreeSet::new();
        for f in &raw.failures {
            if let Some(pid) = f.pid {
                if counted.insert(pid) {
                    *notes
                        .unreadable_processes
                        .entry(errno_name(f.errno))
                        .or_default() += 1;
                }
            }
        }
        a.notes = notes;
        a
    }

    /// Adds the buffers that bufinfo lists `before` and `after` the walk and
    /// no process was seen holding; returns their inode numbers. A buffer
    /// in one list only was made or closed during the walk.
    fn add_unheld(&mut self, before: &bufinfo::BufInfo, after: &bufinfo::BufInfo) -> BTreeSet<u64> {
        let earlier: BTreeSet<u64> = before.buffers.iter().map(|b| b.ino).collect();
        let mut unheld = BTreeSet::new();
        for b in &after.buffers {
            if earlier.contains(&b.ino) && !self.facts.contains_key(&b.ino) {
                self.facts.insert(
                    b.ino,
                    Facts {
                        size: b.size,
                        size_from: SizeFrom::Bufinfo,
                        exporter: Some(b.exp_name.clone()),
                        name: b.name.clone(),
                        importers: Some(b.attached.clone()),
                    },
                );
                unheld.insert(b.ino);
            }
        }
        unheld
    }

    /// Sizes, exporters and names of the buffers seen only through mappings:
    /// from bufinfo, else from map_files, else from the mappings themselves.
    fn describe_mapped_only(
        &mut self,
        raw: &Raw,
        bufinfo: &HashMap<u64, &bufinfo::Buffer>,
        mapped: &[(i32, maps::Mapping)],
    ) {
        for (pid, m) in mapped {
            let ino = m.inode;
            let maps_name = || link_name(&m.pathname);
            let facts = if let Some(b) = bufinfo.get(&ino) {
                Facts {
                    size: b.size,
                    size_from: SizeFrom::Bufinfo,
                    exporter: Some(b.exp_name.clone()),
                    name: b.name.clone().or_else(maps_name),
                    importers: None,
                }
            } else if let Some(st) = raw
                .map_files
                .iter()
                .find(|s| s.pid == *pid && s.range == m.map_files_name() && s.stat.ino == ino)
            {
                Facts {
                    size: st.stat.size,
                    size_from: SizeFrom::MapFiles,
                    exporter: None,
                    name: maps_name(),
                    importers: None,
                }
            } else {
                // A mapping of `len` bytes at file offset `offset` shows the
                // buffer is at least `offset + len` long.
                Facts {
                    size: m.offset + (m.end - m.start),
                    size_from: SizeFrom::Mappings,
                    exporter: None,
                    name: maps_name(),
                    importers: None,
                }
            };
            match self.facts.get_mut(&ino) {
                Some(old) if old.size_from < facts.size_from => {}
                Some(old) if old.size_from == facts.size_from => {
                    old.size = old.size.max(facts.size)
                }
                _ => {
                    self.facts.insert(ino, facts);
                }
            }
        }
    }

    /// The pids of every process the walk read that holds a buffer.
    pub fn pids(&self) -> BTreeSet<i32> {
        self.commands.keys().copied().collect()
    }

    /// The report of what `filter` selects.
    pub fn report(&self, filter: &Filter) -> Report {
        let exporter_ok = |ino: u64| {
            filter.exporters.is_empty()
                || self.facts[&ino]
                    .exporter
                    .as_ref()
                    .is_some_and(|e| filter.exporters.contains(e))
        };
        let selected = |pid: i32, ino: u64| {
            (filter.pids.is_empty() || filter.pids.contains(&pid)) && exporter_ok(ino)
        };
        let command = |pid: i32| self.commands.get(&pid).cloned().unwrap_or_default();
        let share = |ino: u64| self.facts[&ino].size / self.holders[&ino] as u64;
        let reads = self.notes.reads();

        let mut buffers = Vec::new();
        let mut processes: BTreeMap<i32, Process> = BTreeMap::new();
        let mut exporters: BTreeMap<Option<&str>, (Exporter, BTreeSet<i32>)> = BTreeMap::new();
        let mut users: BTreeMap<Option<u32>, GroupSum> = BTreeMap::new();
        let mut cgroups: BTreeMap<Option<String>, GroupSum> = BTreeMap::new();
        let mut totals = Totals {
            exact: true,
            unheld: self.unheld.as_ref().map(|_| Count::default()),
            system: self.system,
            ..Totals::default()
        };
        // Reused for every buffer: a report is made every tick of --watch.
        let mut holds: Vec<(i32, &Hold)> = Vec::new();
        for (&ino, facts) in &self.facts {
            holds.clear();
            holds.extend(
                self.holds
                    .range((ino, i32::MIN)..=(ino, i32::MAX))
                    .map(|(&(_, pid), h)| (pid, h)),
            );
            let chosen = || holds.iter().filter(|(pid, _)| selected(*pid, ino));
            let unheld = holds.is_empty()
                && filter.pids.is_empty()
                && exporter_ok(ino)
                && self.unheld.as_ref().is_some_and(|u| u.contains(&ino));
            if chosen().next().is_none() && !unheld {
                continue;
            }
            let exact = facts.size_from.exact();
            buffers.push(Buffer {
                ino,
                size: facts.size,
                size_from: facts.size_from,
                exporter: facts.exporter.clone(),
                name: facts.name.clone(),
                importers: facts.importers.clone(),
                processes: holds.len(),
                holders: holds
                    .iter()
                    .map(|(pid, h)| Holder {
                        pid: *pid,
                        command: command(*pid),
                        fds: h.fds.clone(),
                        mappings: h.mappings,
                        mapped_bytes: h.mapped_bytes,
                    })
                    .collect(),
            });
            let (e, pids) = exporters
                .entry(facts.exporter.as_deref())
                .or_insert_with(|| {
                    (
                        Exporter {
                            exporter: facts.exporter.clone(),
                            buffers: 0,
                            size: 0,
                            exact: true,
                            processes: 0,
                        },
                        BTreeSet::new(),
                    )
                });
            e.buffers += 1;
            e.size += facts.size;
            e.exact &= exact;
            totals.buffers += 1;
            totals.size += facts.size;
            totals.exact &= exact;
            if unheld {
                if let Some(u) = &mut totals.unheld {
                    u.buffers += 1;
                    u.size += facts.size;
                }
            }
            for &(pid, h) in chosen() {
                pids.insert(pid);
                let owner = self.owners.get(&pid).unwrap_or(&NO_OWNER);
                let p = processes.entry(pid).or_insert_with(|| Process {
                    pid,
                    command: command(pid),
                    uid: owner.uid,
                    user: owner.user.clone(),
                    cgroup: owner.cgroup.clone(),
                    buffers: 0,
                    fds: 0,
                    mappings: 0,
                    rss: 0,
                    pss: 0,
                    exact: true,
                });
                p.buffers += 1;
                p.fds += h.fds.len();
                p.mappings += h.mappings;
                p.rss += facts.size;
                p.pss += share(ino);
                p.exact &= exact;
                let add = |g: &mut GroupSum| {
                    g.pids.insert(pid);
                    g.sizes.insert(ino, facts.size);
                    g.fds += h.fds.len();
                    g.mappings += h.mappings;
                    g.pss += share(ino);
                    g.exact &= exact;
                };
                if reads.users {
                    add(users.entry(owner.uid).or_insert_with(|| GroupSum {
                        uid: owner.uid,
                        user: owner.user.clone(),
                        ..GroupSum::default()
                    }));
                }
                if reads.cgroups {
                    add(cgroups
                        .entry(owner.cgroup.clone())
                        .or_insert_with(|| GroupSum {
                            cgroup: owner.cgroup.clone(),
                            ..GroupSum::default()
                        }));
                }
            }
        }
        let processes: Vec<Process> = processes.into_values().collect();
        for p in &processes {
            totals.processes += 1;
            totals.fds += p.fds;
            totals.mappings += p.mappings;
            totals.rss += p.rss;
            totals.pss += p.pss;
        }
        Report {
            buffers,
            processes,
            exporters: exporters
                .into_values()
                .map(|(mut e, pids)| {
                    e.processes = pids.len();
                    e
                })
                .collect(),
            users: reads
                .users
                .then(|| users.into_values().map(GroupSum::group).collect()),
            cgroups: reads
                .cgroups
                .then(|| cgroups.into_values().map(GroupSum::group).collect()),
            totals,
            scan: self.notes.clone(),
        }
    }
}

/// A [`Group`] being summed.
#[derive(Debug, Clone)]
struct GroupSum {
    uid: Option<u32>,
    user: Option<String>,
    cgroup: Option<String>,
    pids: BTreeSet<i32>,
    /// ino -> size of the distinct buffers.
    sizes: BTreeMap<u64, u64>,
    fds: usize,
    mappings: usize,
    pss: u64,
    exact: bool,
}

impl Default for GroupSum {
    fn default() -> Self {
        GroupSum {
            uid: None,
            user: None,
            cgroup: None,
            pids: BTreeSet::new(),
            sizes: BTreeMap::new(),
            fds: 0,
            mappings: 0,
            pss: 0,
            exact: true,
        }
    }
}

impl GroupSum {
    fn group(self) -> Group {
        Group {
            uid: self.uid,
            user: self.user,
            cgroup: self.cgroup,
            processes: self.pids.len(),
            buffers: self.sizes.len(),
            fds: self.fds,
            mappings: self.mappings,
            rss: self.sizes.values().sum(),
            pss: self.pss,
            exact: self.exact,
        }
    }
}

/// The errno's name: `EACCES`.
pub fn errno_name(e: Errno) -> String {
    format!("{e:?}")
}

/// What to list: holdings by these processes and of these exporters' buffers
/// (an empty list selects all).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub pids: Vec<i32>,
    pub exporters: Vec<String>,
}

/// The result: buffers, processes, exporters, users, cgroups and totals of
/// what the filter selected. A buffer is listed when a selected process
/// holds it, with all its holders, or, with `--all` and no `--pid`, when no
/// process holds it; a process's numbers count only the buffers selected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub buffers: Vec<Buffer>,
    pub processes: Vec<Process>,
    pub exporters: Vec<Exporter>,
    /// By user, when the walk read the holders' users.
    pub users: Option<Vec<Group>>,
    /// By cgroup, when the walk read the holders' cgroups.
    pub cgroups: Option<Vec<Group>>,
    pub totals: Totals,
    pub scan: ScanNotes,
}

/// One process's hold on one buffer, with the buffer: a row of the
/// holder view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolderRow<'a> {
    pub buffer: &'a Buffer,
    pub holder: &'a Holder,
}

/// What lists can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SortKey {
    /// Buffers by inode number.
    Ino,
    /// Buffers or exporters by size.
    Size,
    /// Buffers or exporters by exporter name.
    Exporter,
    /// Buffers by name.
    Name,
    /// Buffers, exporters, users or cgroups by the number of processes
    /// holding them.
    Procs,
    /// Processes by pid.
    Pid,
    /// Processes by command name.
    Command,
    /// Processes, users or cgroups by Rss.
    Rss,
    /// Processes, users or cgroups by Pss.
    Pss,
    /// Processes, exporters, users or cgroups by number of buffers.
    Bufs,
    /// Processes, users or cgroups by number of dma-buf fds.
    Fds,
    /// Processes, users or cgroups by number of mappings.
    Maps,
    /// Processes or users by user name (uid where it has none).
    User,
    /// Processes or cgroups by cgroup.
    Cgroup,
}

/// A user's name, else its uid, for sorting.
fn user_key(uid: Option<u32>, user: Option<&str>) -> (Option<&str>, Option<u32>) {
    (user, uid)
}

impl SortKey {
    /// Whether the key is a quantity, sorted largest first.
    pub fn descending(self) -> bool {
        !matches!(
            self,
            SortKey::Ino
                | SortKey::Exporter
                | SortKey::Name
                | SortKey::Pid
                | SortKey::Command
                | SortKey::User
                | SortKey::Cgroup
        )
    }

    fn order<T>(
        self,
        reverse: bool,
        key: impl Fn(&T, &T) -> Option<Ordering>,
        tie: impl Fn(&T, &T) -> Ordering,
    ) -> impl Fn(&T, &T) -> Ordering {
        move |a, b| {
            let o = key(a, b).unwrap_or(Ordering::Equal);
            let o = if self.descending() { o.reverse() } else { o };
            let o = if reverse { o.reverse() } else { o };
            o.then_with(|| tie(a, b))
        }
    }

    fn buffers(self, a: &Buffer, b: &Buffer) -> Option<Ordering> {
        Some(match self {
            SortKey::Ino => a.ino.cmp(&b.ino),
            SortKey::Size => a.size.cmp(&b.size),
            SortKey::Exporter => a.exporter.cmp(&b.exporter),
            SortKey::Name => a.name.cmp(&b.name),
            SortKey::Procs => a.processes.cmp(&b.processes),
            _ => return None,
        })
    }

    fn processes(self, a: &Process, b: &Process) -> Option<Ordering> {
        Some(match self {
            SortKey::Pid => a.pid.cmp(&b.pid),
            SortKey::Command => a.command.cmp(&b.command),
            SortKey::Rss => a.rss.cmp(&b.rss),
            SortKey::Pss => a.pss.cmp(&b.pss),
            SortKey::Bufs => a.buffers.cmp(&b.buffers),
            SortKey::Fds => a.fds.cmp(&b.fds),
            SortKey::Maps => a.mappings.cmp(&b.mappings),
            SortKey::User => {
                user_key(a.uid, a.user.as_deref()).cmp(&user_key(b.uid, b.user.as_deref()))
            }
            SortKey::Cgroup => a.cgroup.cmp(&b.cgroup),
            _ => return None,
        })
    }

    fn exporters(self, a: &Exporter, b: &Exporter) -> Option<Ordering> {
        Some(match self {
            SortKey::Exporter => a.exporter.cmp(&b.exporter),
            SortKey::Size => a.size.cmp(&b.size),
            SortKey::Procs => a.processes.cmp(&b.processes),
            SortKey::Bufs => a.buffers.cmp(&b.buffers),
            _ => return None,
        })
    }

    fn groups(self, a: &Group, b: &Group) -> Option<Ordering> {
        Some(match self {
            SortKey::Procs => a.processes.cmp(&b.processes),
            SortKey::Bufs => a.buffers.cmp(&b.buffers),
            SortKey::Fds => a.fds.cmp(&b.fds),
            SortKey::Maps => a.mappings.cmp(&b.mappings),
            SortKey::Rss => a.rss.cmp(&b.rss),
            SortKey::Pss => a.pss.cmp(&b.pss),
            SortKey::User => {
                user_key(a.uid, a.user.as_deref()).cmp(&user_key(b.uid, b.user.as_deref()))
            }
            SortKey::Cgroup => a.cgroup.cmp(&b.cgroup),
            _ => return None,
        })
    }

    fn holders(self, a: &HolderRow, b: &HolderRow) -> Option<Ordering> {
        Some(match self {
            SortKey::Pid => a.holder.pid.cmp(&b.holder.pid),
            SortKey::Command => a.holder.command.cmp(&b.holder.command),
            SortKey::Fds => a.holder.fds.len().cmp(&b.holder.fds.len()),
            SortKey::Maps => a.holder.mappings.cmp(&b.holder.mappings),
            _ => return self.buffers(a.buffer, b.buffer),
        })
    }

    /// Whether the key sorts the list of `view`.
    pub fn applies_to(self, view: View) -> bool {
        use SortKey as K;
        match view {
            View::Buffer => matches!(self, K::Ino | K::Size | K::Exporter | K::Name | K::Procs),
            View::Process => matches!(
                self,
                K::Pid
                    | K::Command
                    | K::Rss
                    | K::Pss
                    | K::Bufs
                    | K::Fds
                    | K::Maps
                    | K::User
                    | K::Cgroup
            ),
            View::Exporter => matches!(self, K::Exporter | K::Size | K::Procs | K::Bufs),
            View::Holder => {
                matches!(self, K::Pid | K::Command | K::Fds | K::Maps)
                    || self.applies_to(View::Buffer)
            }
            View::User => matches!(
                self,
                K::User | K::Procs | K::Bufs | K::Fds | K::Maps | K::Rss | K::Pss
            ),
            View::Cgroup => matches!(
                self,
                K::Cgroup | K::Procs | K::Bufs | K::Fds | K::Maps | K::Rss | K::Pss
            ),
        }
    }
}

/// The lists of the human output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum View {
    /// One line per buffer, with its holders.
    Buffer,
    /// One line per process, with its Rss and Pss.
    Process,
    /// One line per exporter.
    Exporter,
    /// One line per process and buffer it holds, like lsof.
    Holder,
    /// One line per user, over the processes it runs.
    User,
    /// One line per cgroup, over the processes in it.
    Cgroup,
}

impl fmt::Display for View {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            View::Buffer => "buffer",
            View::Process => "process",
            View::Exporter => "exporter",
            View::Holder => "holder",
            View::User => "user",
            View::Cgroup => "cgroup",
        })
    }
}

impl Report {
    /// Sorts every list `key` applies to; the others keep their default
    /// order (buffers by inode, processes by pid, exporters by name, users
    /// by uid, cgroups by path).
    pub fn sort(&mut self, key: SortKey, reverse: bool) {
        if key.applies_to(View::Buffer) {
            self.buffers.sort_by(key.order(
                reverse,
                |a, b| key.buffers(a, b),
                |a: &Buffer, b| a.ino.cmp(&b.ino),
            ));
        }
        if key.applies_to(View::Process) {
            self.processes.sort_by(key.order(
                reverse,
                |a, b| key.processes(a, b),
                |a: &Process, b| a.pid.cmp(&b.pid),
            ));
        }
        if key.applies_to(View::Exporter) {
            self.exporters.sort_by(key.order(
                reverse,
                |a, b| key.exporters(a, b),
                |a: &Exporter, b| a.exporter.cmp(&b.exporter),
            ));
        }
        if key.applies_to(View::User) {
            if let Some(users) = &mut self.users {
                users.sort_by(key.order(
                    reverse,
                    |a, b| key.groups(a, b),
                    |a: &Group, b| a.uid.cmp(&b.uid),
                ));
            }
        }
        if key.applies_to(View::Cgroup) {
            if let Some(cgroups) = &mut self.cgroups {
                cgroups.sort_by(key.order(
                    reverse,
                    |a, b| key.groups(a, b),
                    |a: &Group, b| a.cgroup.cmp(&b.cgroup),
                ));
            }
        }
    }

    /// One row per (process, buffer) hold, sorted by `key`, or by pid then
    /// inode.
    pub fn holder_rows(&self, sort: Option<(SortKey, bool)>) -> Vec<HolderRow<'_>> {
        // The buffers listed are those of the exporters selected; their
        // holders selected are those of the processes listed.
        let pids: BTreeSet<i32> = self.processes.iter().map(|p| p.pid).collect();
        let mut rows: Vec<HolderRow> = self
            .buffers
            .iter()
            .flat_map(|b| {
                b.holders.iter().map(move |h| HolderRow {
                    buffer: b,
                    holder: h,
                })
            })
            .filter(|r| pids.contains(&r.holder.pid))
            .collect();
        let tie = |a: &HolderRow, b: &HolderRow| {
            (a.holder.pid, a.buffer.ino).cmp(&(b.holder.pid, b.buffer.ino))
        };
        match sort {
            Some((key, reverse)) => rows.sort_by(key.order(reverse, |a, b| key.holders(a, b), tie)),
            None => rows.sort_by(tie),
        }
        rows
    }
}

/// How a process's holdings changed between two reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// It holds buffers now and held none before.
    New,
    /// It held buffers before and holds none now.
    Gone,
    /// Its buffers, fds, mappings, Rss or Pss changed.
    Changed,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Change::New => "new",
            Change::Gone => "gone",
            Change::Changed => "changed",
        })
    }
}

/// One process's change: its numbers now (0 once gone) and how much each
/// moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessChange {
    pub change: Change,
    pub pid: i32,
    pub command: String,
    pub buffers: usize,
    pub buffers_change: i64,
    pub fds: usize,
    pub fds_change: i64,
    pub mappings: usize,
    pub mappings_change: i64,
    pub rss: u64,
    pub rss_change: i64,
    pub pss: u64,
    pub pss_change: i64,
    pub exact: bool,
}

/// What changed from one report to the next: the watch mode's tick.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Changes {
    /// Buffers listed now and not before, by inode.
    pub new: Vec<Buffer>,
    /// Buffers listed before and not now, as they were.
    pub gone: Vec<Buffer>,
    /// Processes whose holdings changed, by pid.
    pub processes: Vec<ProcessChange>,
    /// The totals now.
    pub totals: Totals,
    pub buffers_change: i64,
    pub size_change: i64,
}

fn delta(before: u64, after: u64) -> i64 {
    after as i64 - before as i64
}

impl Changes {
    /// From `before` to `after`: buffers by inode (an inode number names one
    /// buffer for as long as the system runs), processes by pid.
    pub fn between(before: &Report, after: &Report) -> Changes {
        let inos = |r: &Report| -> BTreeSet<u64> { r.buffers.iter().map(|b| b.ino).collect() };
        let (was, is) = (inos(before), inos(after));
        let mut new: Vec<Buffer> = after
            .buffers
            .iter()
            .filter(|b| !was.contains(&b.ino))
            .cloned()
            .collect();
        let mut gone: Vec<Buffer> = before
            .buffers
            .iter()
            .filter(|b| !is.contains(&b.ino))
            .cloned()
            .collect();
        new.sort_by_key(|b| b.ino);
        gone.sort_by_key(|b| b.ino);
        let by_pid = |r: &Report| -> BTreeMap<i32, Process> {
            r.processes.iter().map(|p| (p.pid, p.clone())).collect()
        };
        let (then, now) = (by_pid(before), by_pid(after));
        let pids: BTreeSet<i32> = then.keys().chain(now.keys()).copied().collect();
        let mut processes = Vec::new();
        for pid in pids {
            let (change, b, a) = match (then.get(&pid), now.get(&pid)) {
                (None, Some(a)) => (Change::New, None, a),
                (Some(b), None) => (Change::Gone, Some(b), b),
                (Some(b), Some(a)) => (Change::Changed, Some(b), a),
                (None, None) => continue,
            };
            let numbers = |p: Option<&Process>| {
                p.map_or([0; 5], |p| {
                    [
                        p.buffers as u64,
                        p.fds as u64,
                        p.mappings as u64,
                        p.rss,
                        p.pss,
                    ]
                })
            };
            let was = numbers(b);
            let is = if change == Change::Gone {
                [0; 5]
            } else {
                numbers(Some(a))
            };
            if change == Change::Changed && was == is {
                continue;
            }
            processes.push(ProcessChange {
                change,
                pid,
                command: a.command.clone(),
                buffers: is[0] as usize,
                buffers_change: delta(was[0], is[0]),
                fds: is[1] as usize,
                fds_change: delta(was[1], is[1]),
                mappings: is[2] as usize,
                mappings_change: delta(was[2], is[2]),
                rss: is[3],
                rss_change: delta(was[3], is[3]),
                pss: is[4],
                pss_change: delta(was[4], is[4]),
                exact: a.exact && b.is_none_or(|b| b.exact),
            });
        }
        Changes {
            new,
            gone,
            processes,
            totals: after.totals.clone(),
            buffers_change: delta(before.totals.buffers as u64, after.totals.buffers as u64),
            size_change: delta(before.totals.size, after.totals.size),
        }
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.new.is_empty() && self.gone.is_empty() && self.processes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw::RawProcess;

    const MAPS: &str = "\
55d0c0000000-55d0c0001000 r--p 00000000 fe:01 1234  /usr/bin/app
7f0000000000-7f0000002000 rw-s 00000000 00:0b 41    /dmabuf:frame
7f0000002000-7f0000003000 rw-s 00000000 00:01 7     /memfd:x (deleted)
7f0000003000-7f0000004000 rw-s 00001000 00:0b 42    /dmabuf:
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0     [stack]
";

    fn raw(maps: &str) -> Raw {
        Raw {
            processes: vec![RawProcess {
                pid: 10,
                comm: "app".into(),
                fds: vec![RawFd {
                    fd: 4,
                    link: "/dmabuf:frame".into(),
                    fdinfo: Some(
                        "pos:\t0\nflags:\t02\nmnt_id:\t11\nino:\t41\nsize:\t8192\ncount:\t2\nexp_name:\tudmabuf\nname:\tframe\n"
                            .into(),
                    ),
                    stat: None,
                }],
                maps: maps.into(),
                ..RawProcess::default()
            }],
            read: 1,
            ..Raw::default()
        }
    }

    #[test]
    fn a_walk_keeps_the_lines_of_dmabufs() {
        let (m, kept) = keep_maps(MAPS);
        assert_eq!(
            kept,
            "7f0000000000-7f0000002000 rw-s 00000000 00:0b 41    /dmabuf:frame\n\
             7f0000003000-7f0000004000 rw-s 00001000 00:0b 42    /dmabuf:\n"
        );
        assert_eq!(m.iter().map(|m| m.inode).collect::<Vec<_>>(), [41, 42]);
        let (m, kept) = keep_maps("55d0c0000000-55d0c0001000 r--p 00000000 fe:01 1 /a\n");
        assert!(m.is_empty() && kept.is_empty());
    }

    #[test]
    fn kept_lines_give_the_report_of_the_whole_file() {
        let whole = Analysis::new(&raw(MAPS)).report(&Filter::default());
        let kept = Analysis::new(&raw(&keep_maps(MAPS).1)).report(&Filter::default());
        assert_eq!(whole, kept);
        // The fd's buffer and the mapped-only one, sized by its mapping.
        assert_eq!(whole.buffers.len(), 2);
        assert_eq!(whole.totals.size, 8192 + 0x2000);
        assert!(whole.scan.warnings.is_empty(), "{:?}", whole.scan.warnings);
    }

    #[test]
    fn a_bad_line_is_reported_with_its_line_number() {
        let bad = MAPS.replace("rw-s 00001000 00:0b 42", "rw-s 0000zz00 00:0b 42");
        let (m, kept) = keep_maps(&bad);
        assert!(m.is_empty());
        assert_eq!(kept, bad);
        let report = Analysis::new(&raw(&kept)).report(&Filter::default());
        assert_eq!(
            report.scan.warnings,
            ["/proc/10/maps: maps line 4: offset `0000zz00` is not a hexadecimal number"]
        );
    }

    /// The real bufinfo of the validator's `--dump` (inodes 2, 3 and 4 and
    /// more), with a device attached to inode 2 the way
    /// `dma_buf_debug_show()` prints one (`\t%s\n` of `dev_name()`).
    fn bufinfo_with_vgem() -> String {
        let real = include_str!("../../dmabuf/testdata/bufinfo-mixed.txt");
        let entry = "\tudmabuf\t00000002\tvalidator-udmabuf-named\n\tAttached Devices:\n";
        assert!(real.contains(entry), "{real}");
        real.replacen(
            &format!("{entry}Total 0 devices attached"),
            &format!("{entry}\tvgem\nTotal 1 devices attached"),
            1,
        )
    }

    fn fd(n: i32, ino: u64, size: u64, exp: &str) -> RawFd {
        RawFd {
            fd: n,
            link: "/dmabuf:".into(),
            fdinfo: Some(format!(
                "pos:\t0\nflags:\t02000002\nmnt_id:\t15\nino:\t{ino}\nsize:\t{size}\ncount:\t1\nexp_name:\t{exp}\n"
            )),
            stat: None,
        }
    }

    fn holder(pid: i32, comm: &str, fds: Vec<RawFd>) -> RawProcess {
        RawProcess {
            pid,
            comm: comm.into(),
            fds,
            ..RawProcess::default()
        }
    }

    #[test]
    fn status_cgroup_and_passwd_text() {
        // A real /proc/self/status of `setpriv --ruid 65534 --euid 1000`.
        let status = include_str!("../testdata/status.txt");
        assert_eq!(
            status_uid_line(status),
            Some("Uid:\t65534\t1000\t1000\t1000")
        );
        assert_eq!(status_uid(status), Some(1000));
        assert_eq!(status_uid(status_uid_line(status).unwrap()), Some(1000));
        assert_eq!(status_uid("Name:\tx\n"), None);
        assert_eq!(status_uid("Uid:\t1\n"), None);
        // A real /proc/self/cgroup of a hybrid system: the memory
        // controller's v1 hierarchy, not the unified one's `/`.
        let hybrid = include_str!("../testdata/cgroup-v1-hybrid.txt");
        assert!(hybrid.contains("0::/\n"));
        assert_eq!(
            cgroup_path(hybrid).as_deref(),
            Some("/process_api/f80e36b7292f31a2c8768b9a29c3e3ae")
        );
        assert_eq!(cgroup_path("0::/a/b c\n").as_deref(), Some("/a/b c"));
        assert_eq!(
            cgroup_path("3:cpu,cpuacct:/x\n2:pids:/y\n").as_deref(),
            Some("/x")
        );
        assert_eq!(cgroup_path(""), None);
        let passwd =
            "root:x:0:0:root:/root:/bin/bash\n# a comment\nnobody:x:65534:65534::/:/sbin/nologin\n\
                      toor:x:0:0::/:/bin/sh\nbroken\n";
        assert_eq!(
            passwd_names(passwd),
            [(0, "root".to_string()), (65534, "nobody".to_string())].into()
        );
    }

    #[test]
    fn by_user_and_by_cgroup() {
        // 10 (uid 1000, /a) holds 41 (8K) and 43 (4K); 11 (uid 0, /b)
        // shares 41; 12 (uid 1000, /b) holds 43 too.
        let mut raw = Raw {
            processes: vec![
                RawProcess {
                    status: Some(include_str!("../testdata/status.txt").into()),
                    cgroup: Some("0::/a\n".into()),
                    ..holder(
                        10,
                        "app",
                        vec![fd(3, 41, 8192, "system"), fd(4, 43, 4096, "udmabuf")],
                    )
                },
                RawProcess {
                    status: Some("Uid:\t0\t0\t0\t0".into()),
                    cgroup: Some("0::/b\n".into()),
                    ..holder(11, "comp", vec![fd(5, 41, 8192, "system")])
                },
                RawProcess {
                    status: Some("Uid:\t1000\t1000\t1000\t1000".into()),
                    cgroup: Some("0::/b\n".into()),
                    ..holder(12, "cam", vec![fd(6, 43, 4096, "udmabuf")])
                },
            ],
            read: 3,
            users: [(0, "root".to_string())].into(),
            ..Raw::default()
        };
        raw.meta.reads = Reads {
            users: true,
            cgroups: true,
            ..Reads::default()
        };
        let r = Analysis::new(&raw).report(&Filter::default());
        let users = r.users.clone().unwrap();
        let got: Vec<_> = users
            .iter()
            .map(|g| {
                (
                    g.uid,
                    g.user.as_deref(),
                    g.processes,
                    g.buffers,
                    g.rss,
                    g.pss,
                )
            })
            .collect();
        // uid 1000: 41 and 43 once each (12K); Pss 4K + 2K + 2K.
        assert_eq!(
            got,
            [
                (Some(0), Some("root"), 1, 1, 8192, 4096),
                (Some(1000), None, 2, 2, 12288, 8192)
            ]
        );
        let cgroups: Vec<_> = r
            .cgroups
            .clone()
            .unwrap()
            .iter()
            .map(|g| {
                (
                    g.cgroup.clone().unwrap(),
                    g.processes,
                    g.buffers,
                    g.fds,
                    g.rss,
                    g.pss,
                )
            })
            .collect();
        assert_eq!(
            cgroups,
            [
                ("/a".to_string(), 1, 2, 2, 12288, 6144),
                ("/b".to_string(), 2, 2, 2, 12288, 6144)
            ]
        );
        let p = &r.processes[0];
        assert_eq!(
            (p.uid, p.user.as_deref(), p.cgroup.as_deref()),
            (Some(1000), None, Some("/a"))
        );
        // The Pss of every user, and of every cgroup, adds up to the total.
        assert_eq!(users.iter().map(|g| g.pss).sum::<u64>(), r.totals.pss);
        // Processes by user: by name, uids without one first, then by pid.
        let mut by_user = r.clone();
        by_user.sort(SortKey::User, false);
        let pids: Vec<i32> = by_user.processes.iter().map(|p| p.pid).collect();
        assert_eq!(pids, [10, 12, 11]);
        // Without the reads there are no lists.
        raw.meta.reads = Reads::default();
        let r = Analysis::new(&raw).report(&Filter::default());
        assert_eq!((r.users, r.cgroups), (None, None));
    }

    #[test]
    fn buffers_no_process_holds_and_importers() {
        let after = bufinfo_with_vgem();
        let info = bufinfo::parse(&after).unwrap();
        let inos: Vec<u64> = info.buffers.iter().map(|b| b.ino).collect();
        assert!(
            inos.contains(&2) && inos.contains(&3) && inos.contains(&4),
            "{inos:?}"
        );
        // Before the walk: every buffer of `after` but 4 (made during the
        // walk), and 99 (closed during it).
        let before = after.replace("\t00000004\t", "\t00000099\t");
        // 4 is held: it was made and given to process 10 during the walk.
        let mut raw = Raw {
            processes: vec![holder(10, "app", vec![fd(3, 3, 16384, "system")])],
            read: 1,
            bufinfo: Some(after.clone()),
            bufinfo_before: Some(before),
            ..Raw::default()
        };
        raw.meta.reads = Reads {
            unheld: true,
            ..Reads::default()
        };
        let r = Analysis::new(&raw).report(&Filter::default());
        let listed: Vec<(u64, usize)> = r.buffers.iter().map(|b| (b.ino, b.processes)).collect();
        let unheld: Vec<&bufinfo::Buffer> = info
            .buffers
            .iter()
            .filter(|b| b.ino != 3 && b.ino != 4)
            .collect();
        let mut want: Vec<(u64, usize)> = unheld.iter().map(|b| (b.ino, 0)).collect();
        want.push((3, 1));
        want.sort();
        assert_eq!(listed, want);
        let two = r.buffers.iter().find(|b| b.ino == 2).unwrap();
        assert_eq!(two.importers.as_deref(), Some(&["vgem".to_string()][..]));
        assert_eq!(two.exporter.as_deref(), Some("udmabuf"));
        assert_eq!(two.name.as_deref(), Some("validator-udmabuf-named"));
        assert!(two.holders.is_empty());
        let three = r.buffers.iter().find(|b| b.ino == 3).unwrap();
        assert_eq!(three.importers.as_deref(), Some(&[][..]));
        let unheld_size: u64 = unheld.iter().map(|b| b.size).sum();
        assert_eq!(
            r.totals.unheld,
            Some(Count {
                buffers: unheld.len(),
                size: unheld_size
            })
        );
        assert_eq!(
            r.totals.system,
            Some(Count {
                buffers: info.buffers.len(),
                size: info.total_bytes
            })
        );
        assert_eq!(r.totals.buffers, unheld.len() + 1);
        assert_eq!((r.totals.processes, r.totals.rss), (1, 16384));
        // -e keeps the unheld buffers of that exporter; -p none of them.
        let e = Analysis::new(&raw).report(&Filter {
            exporters: vec!["udmabuf".into()],
            ..Filter::default()
        });
        assert!(e
            .buffers
            .iter()
            .all(|b| b.exporter.as_deref() == Some("udmabuf")));
        assert!(e.buffers.iter().any(|b| b.ino == 2));
        let p = Analysis::new(&raw).report(&Filter {
            pids: vec![10],
            ..Filter::default()
        });
        assert_eq!(p.buffers.iter().map(|b| b.ino).collect::<Vec<_>>(), [3]);
        // Without a reading before the walk nothing is called unheld.
        raw.bufinfo_before = None;
        let r = Analysis::new(&raw).report(&Filter::default());
        assert_eq!(r.totals.unheld, None);
        assert_eq!(r.buffers.len(), 1);
        assert!(r.totals.system.is_some());
    }

    #[test]
    fn a_lower_bound_marks_every_sum_it_is_in() {
        // 10 maps 42 and holds 41 by fd; nothing says 42's size.
        let r = Analysis::new(&raw(MAPS)).report(&Filter::default());
        assert!(!r
            .buffers
            .iter()
            .find(|b| b.ino == 42)
            .unwrap()
            .size_from
            .exact());
        assert!(!r.processes[0].exact);
        assert!(!r.totals.exact);
        assert_eq!(
            r.exporters
                .iter()
                .map(|e| (e.exporter.as_deref(), e.exact))
                .collect::<Vec<_>>(),
            [(None, false), (Some("udmabuf"), true)]
        );
        // With bufinfo its size is known, and so are the sums.
        let mut known = raw(MAPS);
        known.bufinfo = Some(
            "\nDma-buf Objects:\nsize    \tflags   \tmode    \tcount   \texp_name\tino     \tname\n\
             00008192\t00000002\t00080007\t00000002\tsystem\t00000042\t<none>\n\
             \tAttached Devices:\nTotal 0 devices attached\n\n\nTotal 1 objects, 8192 bytes\n"
                .into(),
        );
        let r = Analysis::new(&known).report(&Filter::default());
        assert!(r.processes[0].exact && r.totals.exact);
        assert_eq!(r.processes[0].rss, 8192 + 8192);
    }

    #[test]
    fn changes_between_two_walks() {
        let one = Raw {
            processes: vec![
                holder(
                    10,
                    "app",
                    vec![fd(3, 41, 8192, "system"), fd(4, 42, 4096, "system")],
                ),
                holder(11, "old", vec![fd(3, 44, 4096, "udmabuf")]),
            ],
            read: 2,
            ..Raw::default()
        };
        let two = Raw {
            processes: vec![
                holder(
                    10,
                    "app",
                    vec![fd(3, 41, 8192, "system"), fd(5, 43, 16384, "system")],
                ),
                holder(12, "new", vec![fd(3, 41, 8192, "system")]),
            ],
            read: 2,
            ..Raw::default()
        };
        let a = Analysis::new(&one).report(&Filter::default());
        let b = Analysis::new(&two).report(&Filter::default());
        let c = Changes::between(&a, &b);
        assert_eq!(c.new.iter().map(|b| b.ino).collect::<Vec<_>>(), [43]);
        assert_eq!(c.gone.iter().map(|b| b.ino).collect::<Vec<_>>(), [42, 44]);
        let p: Vec<_> = c
            .processes
            .iter()
            .map(|p| {
                (
                    p.change,
                    p.pid,
                    p.buffers,
                    p.rss,
                    p.rss_change,
                    p.pss_change,
                )
            })
            .collect();
        assert_eq!(
            p,
            [
                // 41 is shared now: 8K/2 + 16K, from 8K + 4K.
                (
                    Change::Changed,
                    10,
                    2,
                    8192 + 16384,
                    12288,
                    4096 + 16384 - 12288
                ),
                (Change::Gone, 11, 0, 0, -4096, -4096),
                (Change::New, 12, 1, 8192, 8192, 4096),
            ]
        );
        assert_eq!((c.buffers_change, c.size_change), (-1, 16384 - 4096 - 4096));
        assert!(Changes::between(&b, &b).is_empty());
    }

    #[test]
    fn a_capture_gives_the_report_of_the_walk() {
        let mut raw = Raw {
            processes: vec![RawProcess {
                status: Some("Uid:\t0\t0\t0\t0\n".into()),
                cgroup: Some("0::/x\n".into()),
                maps: keep_maps(MAPS).1,
                ..holder(10, "app", vec![fd(3, 41, 8192, "udmabuf")])
            }],
            read: 5,
            bufinfo: Some(bufinfo_with_vgem()),
            bufinfo_before: Some(bufinfo_with_vgem()),
            users: [(0, "root".to_string())].into(),
            ..Raw::default()
        };
        raw.meta.reads = Reads::ALL;
        raw.meta.euid = Some(0);
        let again = Raw::from_capture(&raw.to_capture()).unwrap();
        assert_eq!(again, raw);
        assert_eq!(
            Analysis::new(&again).report(&Filter::default()),
            Analysis::new(&raw).report(&Filter::default())
        );
    }

    /// A capture of lsdmabuf-vmtest's scene on 7.3-rc7 (`--capture`): every
    /// read, as root, vgem having imported inodes 10 and 11.
    const SCENE: &str = include_str!("../testdata/scene.capture");

    #[test]
    fn the_scene_captured_in_the_vm() {
        let raw = Raw::from_capture(SCENE).unwrap();
        assert_eq!(raw.meta.reads, Reads::ALL);
        let r = Analysis::new(&raw).report(&Filter::default());
        assert!(r.scan.warnings.is_empty(), "{:?}", r.scan.warnings);
        assert_eq!(r.buffers.len(), 11);
        let unheld: Vec<(u64, Option<&str>)> = r
            .buffers
            .iter()
            .filter(|b| b.processes == 0)
            .map(|b| (b.ino, b.name.as_deref()))
            .collect();
        assert_eq!(
            unheld,
            [
                (9, Some("scene-inflight")),
                (11, Some("scene-imported-only"))
            ]
        );
        for b in &r.buffers {
            let want: &[&str] = if b.ino == 10 || b.ino == 11 {
                &["vgem"]
            } else {
                &[]
            };
            assert_eq!(b.importers.as_deref().unwrap(), want, "ino {}", b.ino);
        }
        assert_eq!(
            (r.totals.unheld, r.totals.system),
            (
                Some(Count {
                    buffers: 2,
                    size: 12288
                }),
                Some(Count {
                    buffers: 11,
                    size: 118784
                })
            )
        );
        let users: Vec<_> = r
            .users
            .iter()
            .flatten()
            .map(|g| (g.uid, g.user.as_deref(), g.processes))
            .collect();
        assert_eq!(
            users,
            [(Some(0), Some("root"), 5), (Some(65534), Some("nobody"), 1)]
        );
        let cgroups: Vec<_> = r
            .cgroups
            .iter()
            .flatten()
            .map(|g| (g.cgroup.as_deref(), g.processes))
            .collect();
        assert_eq!(
            cgroups,
            [(Some("/lsdmabuf-a"), 3), (Some("/lsdmabuf-b"), 3)]
        );
        assert_eq!(
            r.totals.pss,
            r.users.iter().flatten().map(|g| g.pss).sum::<u64>()
        );
        // As a walk without --all and the owners would have shown it.
        let plain = crate::scan::as_walked(&raw, Reads::default());
        let p = Analysis::new(&plain).report(&Filter::default());
        assert_eq!((p.buffers.len(), p.users.as_ref()), (9, None));
        assert_eq!(
            (p.totals.size, p.totals.rss, p.totals.pss),
            (106496, 176128, 106495)
        );
    }
}
