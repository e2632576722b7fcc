// SPDX-License-Identifier: GPL-2.0
//! What lsdmabuf shows and serializes of a walk: the [`Report`], its lists
//! and totals, how complete the walk was ([`ScanNotes`]), and how the
//! lists are sorted ([`SortKey`]) and viewed ([`View`]).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use crate::raw::Reads;

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
    /// Its share of the buffer's size: the size divided by the buffer's
    /// holders, the remainder a byte each to the first holders in pid
    /// order, so that the shares add up to the size.
    pub pss: u64,
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
    /// The buffers by the processes listed (`--by grid`), when that view
    /// was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grid: Option<Grid>,
}

/// The buffers listed by the processes listed: each process's Pss of each
/// buffer, as Android's `dmabuf_dump -a` shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grid {
    /// The columns: the processes listed, in the order of the report.
    pub processes: Vec<GridProcess>,
    /// One row per buffer listed, in the order of the report.
    pub rows: Vec<GridRow>,
    /// Each process's Pss over the buffers listed (its column's sum).
    pub pss: Vec<u64>,
}

/// A column of the [`Grid`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GridProcess {
    pub pid: i32,
    pub command: String,
}

/// A row of the [`Grid`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GridRow {
    pub ino: u64,
    /// The Pss of the buffer of each process of [`Grid::processes`];
    /// `None` where the process does not hold it.
    pub pss: Vec<Option<u64>>,
}

/// One process's hold on one buffer, with the buffer: a row of the
/// holder view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolderRow<'a> {
    pub buffer: &'a Buffer,
    pub holder: &'a Holder,
}

/// What lists can be sorted by: a column of theirs, compared;
/// [`SortKey::applies_to`] says which lists have it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// A buffer's inode number.
    Ino,
    /// The size of a buffer, or of an exporter's buffers.
    Size,
    /// The exporter's name.
    Exporter,
    /// A buffer's name.
    Name,
    /// The number of processes that hold a buffer, an exporter's buffers,
    /// or run as a user or in a cgroup.
    Procs,
    /// A process's pid.
    Pid,
    /// A process's command name.
    Command,
    /// Rss.
    Rss,
    /// Pss.
    Pss,
    /// The number of buffers.
    Bufs,
    /// The number of dma-buf fds.
    Fds,
    /// The number of mappings of dma-bufs.
    Maps,
    /// The user's name, or its uid where it has none.
    User,
    /// The cgroup's path.
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
            View::Buffer | View::Grid => {
                matches!(self, K::Ino | K::Size | K::Exporter | K::Name | K::Procs)
            }
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

/// The lists of the human output, by what one line of them is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// A buffer, with its holders.
    Buffer,
    /// A process, with its Rss and Pss.
    Process,
    /// An exporter, over its buffers.
    Exporter,
    /// A process's hold on one buffer, like a line of lsof.
    Holder,
    /// A user, over the processes it runs.
    User,
    /// A cgroup, over the processes in it.
    Cgroup,
    /// A buffer, with each process's Pss of it in a column of its own
    /// (Android's `dmabuf_dump -a`).
    Grid,
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
            View::Grid => "grid",
        })
    }
}

impl Report {
    /// The buffers listed by the processes listed, in their order.
    pub fn grid(&self) -> Grid {
        let rows: Vec<GridRow> = self
            .buffers
            .iter()
            .map(|b| GridRow {
                ino: b.ino,
                pss: self
                    .processes
                    .iter()
                    .map(|p| b.holders.iter().find(|h| h.pid == p.pid).map(|h| h.pss))
                    .collect(),
            })
            .collect();
        let pss = (0..self.processes.len())
            .map(|i| {
                rows.iter()
                    .filter_map(|r| r.pss[i])
                    .fold(0u64, u64::saturating_add)
            })
            .collect();
        Grid {
            processes: self
                .processes
                .iter()
                .map(|p| GridProcess {
                    pid: p.pid,
                    command: p.command.clone(),
                })
                .collect(),
            rows,
            pss,
        }
    }

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
