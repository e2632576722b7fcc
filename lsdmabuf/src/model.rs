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
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use nix::errno::Errno;
use serde::Serialize;

use dmabuf::parse::{bufinfo, fdinfo, maps};
use dmabuf::uapi::dma_buf::LINK_PREFIX;

use crate::raw::{FileStat, Raw, RawFd};

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
    let mut mappings = Vec::new();
    let mut kept = String::new();
    for (n, line) in dmabuf_lines(text) {
        match dmabuf_mapping(line, n) {
            Ok(Some(m)) => mappings.push(m),
            Ok(None) => {}
            Err(_) => return (Vec::new(), text.to_string()),
        }
        kept.push_str(line);
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

/// Where a buffer's size comes from, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SizeFrom {
    /// fdinfo `size:` of an fd.
    Fdinfo,
    /// stat() `st_size` of an fd.
    Stat,
    /// debugfs bufinfo, for a buffer seen only through mappings.
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
    /// How many processes hold it: what its size is divided by for Pss.
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
    /// Distinct buffers it holds.
    pub buffers: usize,
    /// Its dma-buf fds.
    pub fds: usize,
    /// Its mappings of dma-bufs.
    pub mappings: usize,
    pub rss: u64,
    pub pss: u64,
}

/// The buffers of one exporter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Exporter {
    /// `None` for buffers whose exporter is unknown.
    pub exporter: Option<String>,
    pub buffers: usize,
    pub size: u64,
    /// Processes that hold at least one of them.
    pub processes: usize,
}

/// The sums over what is listed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub buffers: usize,
    /// The size of all buffers listed, each once.
    pub size: u64,
    pub processes: usize,
    pub fds: usize,
    pub mappings: usize,
    /// The sum of the processes' Rss: shared buffers count once per holder.
    pub rss: u64,
    /// The sum of the processes' Pss.
    pub pss: u64,
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

/// How complete the walk was.
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
}

impl ScanNotes {
    /// How many processes could not be read.
    pub fn unreadable_count(&self) -> usize {
        self.unreadable_processes.values().sum()
    }
}

/// What is known about one buffer before filtering.
#[derive(Debug, Clone)]
struct Facts {
    size: u64,
    size_from: SizeFrom,
    exporter: Option<String>,
    name: Option<String>,
}

#[derive(Debug, Clone, Default)]
struct Hold {
    fds: Vec<i32>,
    mappings: usize,
    mapped_bytes: u64,
}

/// Every buffer and every holding of one walk, before filters.
#[derive(Debug, Clone, Default)]
pub struct Analysis {
    facts: BTreeMap<u64, Facts>,
    commands: BTreeMap<i32, String>,
    /// (ino, pid) -> the hold.
    holds: BTreeMap<(u64, i32), Hold>,
    /// ino -> number of holding processes.
    holders: BTreeMap<u64, usize>,
    pub notes: ScanNotes,
}

/// The name in a `/dmabuf:NAME` link or maps path; `None` when empty.
fn link_name(link: &str) -> Option<String> {
    link.strip_prefix(LINK_PREFIX)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
}

/// The buffer behind one dma-buf fd: its inode number and what is known.
fn fd_facts(pid: i32, fd: &RawFd, warnings: &mut Vec<String>) -> Option<(u64, Facts)> {
    let path = || format!("/proc/{pid}/fd/{}", fd.fd);
    let info = match fd.fdinfo.as_deref().map(fdinfo::parse_ino_optional) {
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
        },
    ))
}

impl Analysis {
    /// Groups one walk by buffer.
    pub fn new(raw: &Raw) -> Analysis {
        let mut a = Analysis::default();
        let mut notes = ScanNotes {
            processes_read: raw.read,
            exited: raw.exited,
            kernel_threads: raw.kernel_threads,
            ..ScanNotes::default()
        };
        // Mappings of buffers no fd showed, with their process: (pid, mapping).
        let mut mapped_only: Vec<(i32, maps::Mapping)> = Vec::new();
        for p in &raw.processes {
            a.commands.insert(p.pid, p.comm.clone());
            for fd in &p.fds {
                if link_kind(fd.link.as_bytes()) == LinkKind::Legacy {
                    notes.legacy_fds += 1;
                    continue;
                }
                let Some((ino, facts)) = fd_facts(p.pid, fd, &mut notes.warnings) else {
                    continue;
                };
                // fdinfo beats stat; the first fd's name stands.
                match a.facts.get(&ino) {
                    Some(old) if old.size_from <= facts.size_from => {}
                    _ => {
                        a.facts.insert(ino, facts);
                    }
                }
                a.holds.entry((ino, p.pid)).or_default().fds.push(fd.fd);
            }
            let mappings = match dmabuf_mappings(&p.maps) {
                Ok(m) => m,
                Err(e) => {
                    notes.warnings.push(format!("/proc/{}/maps: {e}", p.pid));
                    Vec::new()
                }
            };
            for m in mappings {
                let hold = a.holds.entry((m.inode, p.pid)).or_default();
                hold.mappings += 1;
                hold.mapped_bytes += m.end - m.start;
                mapped_only.push((p.pid, m));
            }
        }
        for hold in a.holds.values_mut() {
            hold.fds.sort_unstable();
        }
        mapped_only.retain(|(_, m)| !a.facts.contains_key(&m.inode));
        a.describe_mapped_only(raw, &mapped_only, &mut notes);
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

    /// Sizes, exporters and names of the buffers seen only through mappings:
    /// from bufinfo, else from map_files, else from the mappings themselves.
    fn describe_mapped_only(
        &mut self,
        raw: &Raw,
        mapped: &[(i32, maps::Mapping)],
        notes: &mut ScanNotes,
    ) {
        if mapped.is_empty() {
            return;
        }
        let info = match raw.bufinfo.as_deref().map(bufinfo::parse) {
            Some(Ok(info)) => Some(info),
            Some(Err(e)) => {
                notes.warnings.push(format!("bufinfo: {e}"));
                None
            }
            None => None,
        };
        for (pid, m) in mapped {
            let ino = m.inode;
            let maps_name = || link_name(&m.pathname);
            let facts = if let Some(b) = info.as_ref().and_then(|i| i.with_ino(ino).next()) {
                Facts {
                    size: b.size,
                    size_from: SizeFrom::Bufinfo,
                    exporter: Some(b.exp_name.clone()),
                    name: b.name.clone().or_else(maps_name),
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
                }
            } else {
                // A mapping of `len` bytes at file offset `offset` shows the
                // buffer is at least `offset + len` long.
                Facts {
                    size: m.offset + (m.end - m.start),
                    size_from: SizeFrom::Mappings,
                    exporter: None,
                    name: maps_name(),
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
        let selected = |pid: i32, ino: u64| {
            (filter.pids.is_empty() || filter.pids.contains(&pid))
                && (filter.exporters.is_empty()
                    || self.facts[&ino]
                        .exporter
                        .as_ref()
                        .is_some_and(|e| filter.exporters.contains(e)))
        };
        let command = |pid: i32| self.commands.get(&pid).cloned().unwrap_or_default();
        let share = |ino: u64| self.facts[&ino].size / self.holders[&ino] as u64;

        let mut buffers = Vec::new();
        let mut processes: BTreeMap<i32, Process> = BTreeMap::new();
        let mut exporters: BTreeMap<Option<String>, (Exporter, BTreeSet<i32>)> = BTreeMap::new();
        let mut totals = Totals::default();
        for (&ino, facts) in &self.facts {
            let holds: Vec<(i32, &Hold)> = self
                .holds
                .range((ino, i32::MIN)..=(ino, i32::MAX))
                .map(|(&(_, pid), h)| (pid, h))
                .collect();
            let chosen: Vec<&(i32, &Hold)> = holds
                .iter()
                .filter(|(pid, _)| selected(*pid, ino))
                .collect();
            if chosen.is_empty() {
                continue;
            }
            buffers.push(Buffer {
                ino,
                size: facts.size,
                size_from: facts.size_from,
                exporter: facts.exporter.clone(),
                name: facts.name.clone(),
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
            let (e, pids) = exporters.entry(facts.exporter.clone()).or_insert_with(|| {
                (
                    Exporter {
                        exporter: facts.exporter.clone(),
                        buffers: 0,
                        size: 0,
                        processes: 0,
                    },
                    BTreeSet::new(),
                )
            });
            e.buffers += 1;
            e.size += facts.size;
            totals.buffers += 1;
            totals.size += facts.size;
            for &&(pid, h) in &chosen {
                pids.insert(pid);
                let p = processes.entry(pid).or_insert_with(|| Process {
                    pid,
                    command: command(pid),
                    buffers: 0,
                    fds: 0,
                    mappings: 0,
                    rss: 0,
                    pss: 0,
                });
                p.buffers += 1;
                p.fds += h.fds.len();
                p.mappings += h.mappings;
                p.rss += facts.size;
                p.pss += share(ino);
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
            totals,
            scan: self.notes.clone(),
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

/// The result: buffers, processes, exporters and totals of what the filter
/// selected. A buffer is listed when a selected process holds it, with all
/// its holders; a process's numbers count only the buffers selected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub buffers: Vec<Buffer>,
    pub processes: Vec<Process>,
    pub exporters: Vec<Exporter>,
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
    /// Buffers or exporters by the number of processes holding them.
    Procs,
    /// Processes by pid.
    Pid,
    /// Processes by command name.
    Command,
    /// Processes by Rss.
    Rss,
    /// Processes by Pss.
    Pss,
    /// Processes or exporters by number of buffers.
    Bufs,
    /// Processes by number of dma-buf fds.
    Fds,
    /// Processes by number of mappings.
    Maps,
}

impl SortKey {
    /// Whether the key is a quantity, sorted largest first.
    pub fn descending(self) -> bool {
        !matches!(
            self,
            SortKey::Ino | SortKey::Exporter | SortKey::Name | SortKey::Pid | SortKey::Command
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
                K::Pid | K::Command | K::Rss | K::Pss | K::Bufs | K::Fds | K::Maps
            ),
            View::Exporter => matches!(self, K::Exporter | K::Size | K::Procs | K::Bufs),
            View::Holder => {
                matches!(self, K::Pid | K::Command | K::Fds | K::Maps)
                    || self.applies_to(View::Buffer)
            }
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
}

impl fmt::Display for View {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            View::Buffer => "buffer",
            View::Process => "process",
            View::Exporter => "exporter",
            View::Holder => "holder",
        })
    }
}

impl Report {
    /// Sorts every list `key` applies to; the others keep their default
    /// order (buffers by inode, processes by pid, exporters by name).
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
}
