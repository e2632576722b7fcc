// SPDX-License-Identifier: GPL-2.0
//! One walk grouped by buffer ([`Analysis`]), and the [`Report`] of what a
//! [`Filter`] selects: every buffer with its holders, each process's Rss
//! and Pss, and the sums per exporter, user and cgroup.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use nix::errno::Errno;

use dmabuf::parse::{bufinfo, maps};

use super::procfs::{digest, link_name, parse_warning, too_large, Digest, Facts};
use super::report::{
    Buffer, Count, Exporter, Group, Holder, Process, Report, ScanNotes, SizeFrom, Totals,
    Unreadable,
};
use crate::raw::Raw;

/// One process's hold on one buffer: its fds that are the buffer, and its
/// mappings of it.
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
    /// The buffers bufinfo listed before and after the walk that no process
    /// was seen holding; `None` when they were not looked for, or bufinfo
    /// could not be read twice.
    unheld: Option<BTreeSet<u64>>,
    /// bufinfo's totals.
    system: Option<Count>,
    pub notes: ScanNotes,
}

/// bufinfo text parsed, or a warning.
fn parse_bufinfo(
    text: Option<&str>,
    what: &str,
    warnings: &mut Vec<String>,
) -> Option<bufinfo::BufInfo> {
    match text.map(bufinfo::parse) {
        Some(Ok(mut info)) => {
            info.buffers.retain(|b| match too_large(b.size) {
                Some(why) => {
                    warnings.push(format!("{what}: inode {}: {why}; not counted", b.ino));
                    false
                }
                None => true,
            });
            Some(info)
        }
        Some(Err(e)) => {
            warnings.push(parse_warning(what, &e));
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
                // Known, the dmabuf filesystem's device tells a dma-buf's
                // mapping from a file's that is only named like one.
                if raw
                    .meta
                    .dmabuf_dev
                    .is_some_and(|dev| dev != (m.major, m.minor))
                {
                    continue;
                }
                let hold = a.holds.entry((m.inode, p.pid)).or_default();
                hold.mappings += 1;
                hold.mapped_bytes = hold
                    .mapped_bytes
                    .saturating_add(m.end.saturating_sub(m.start));
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
            } else if let Some(st) = raw.map_files.iter().find(|s| {
                s.pid == *pid
                    && s.range == m.map_files_name()
                    && s.stat.ino == ino
                    && too_large(s.stat.size).is_none()
            }) {
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
                    size: m.offset.saturating_add(m.end.saturating_sub(m.start)),
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
        let mut holds: Vec<(i32, &Hold, u64)> = Vec::new();
        for (&ino, facts) in &self.facts {
            holds.clear();
            holds.extend(
                self.holds
                    .range((ino, i32::MIN)..=(ino, i32::MAX))
                    .map(|(&(_, pid), h)| (pid, h, 0)),
            );
            for (share, (_, _, pss)) in pss_shares(facts.size, holds.len()).zip(&mut holds) {
                *pss = share;
            }
            let chosen = || holds.iter().filter(|(pid, _, _)| selected(*pid, ino));
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
                    .map(|(pid, h, pss)| Holder {
                        pid: *pid,
                        command: command(*pid),
                        fds: h.fds.clone(),
                        mappings: h.mappings,
                        mapped_bytes: h.mapped_bytes,
                        pss: *pss,
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
            e.size = e.size.saturating_add(facts.size);
            e.exact &= exact;
            totals.buffers += 1;
            totals.size = totals.size.saturating_add(facts.size);
            totals.exact &= exact;
            if unheld {
                if let Some(u) = &mut totals.unheld {
                    u.buffers += 1;
                    u.size = u.size.saturating_add(facts.size);
                }
            }
            for &(pid, h, share) in chosen() {
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
                p.rss = p.rss.saturating_add(facts.size);
                p.pss = p.pss.saturating_add(share);
                p.exact &= exact;
                let add = |g: &mut GroupSum| {
                    g.pids.insert(pid);
                    g.sizes.insert(ino, facts.size);
                    g.fds += h.fds.len();
                    g.mappings += h.mappings;
                    g.pss = g.pss.saturating_add(share);
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
            totals.rss = totals.rss.saturating_add(p.rss);
            totals.pss = totals.pss.saturating_add(p.pss);
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
            grid: None,
        }
    }
}

/// The Pss of each of `holders` processes holding a buffer of `size`
/// bytes, in pid order: the size divided among them, the remainder a byte
/// each to the first, so that the shares add up to the size exactly.
pub fn pss_shares(size: u64, holders: usize) -> impl Iterator<Item = u64> {
    let n = holders.max(1) as u64;
    let (share, rest) = (size / n, size % n);
    (0..holders as u64).map(move |i| share + u64::from(i < rest))
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
            rss: self.sizes.values().fold(0, |sum, s| sum.saturating_add(*s)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_walks::{fd, holder, raw, MAPS};
    use crate::model::{keep_maps, SortKey};
    use crate::raw::{RawProcess, Reads};

    /// The real bufinfo of the validator's `--dump` (inodes 2, 3 and 4 and
    /// more), with a device attached to inode 2 the way
    /// `dma_buf_debug_show()` prints one (`\t%s\n` of `dev_name()`).
    fn bufinfo_with_vgem() -> String {
        let real = include_str!("../../../dmabuf/testdata/bufinfo-mixed.txt");
        let entry = "\tudmabuf\t00000002\tvalidator-udmabuf-named\n\tAttached Devices:\n";
        assert!(real.contains(entry), "{real}");
        real.replacen(
            &format!("{entry}Total 0 devices attached"),
            &format!("{entry}\tvgem\nTotal 1 devices attached"),
            1,
        )
    }

    #[test]
    fn pss_shares_add_up_to_the_size() {
        assert_eq!(pss_shares(16384, 3).collect::<Vec<_>>(), [5462, 5461, 5461]);
        assert_eq!(pss_shares(8, 4).collect::<Vec<_>>(), [2, 2, 2, 2]);
        assert_eq!(pss_shares(5, 0).count(), 0);
        for (size, n) in [(0, 1), (1, 3), (4097, 7), (u64::MAX, 1000)] {
            assert_eq!(
                pss_shares(size, n).map(u128::from).sum::<u128>(),
                u128::from(size)
            );
        }
        // Three holders of 16K: the first in pid order gets the byte over.
        let r = Analysis::new(&Raw {
            processes: vec![
                holder(30, "c", vec![fd(3, 41, 16384, "system")]),
                holder(10, "a", vec![fd(3, 41, 16384, "system")]),
                holder(20, "b", vec![fd(3, 41, 16384, "system")]),
            ],
            read: 3,
            ..Raw::default()
        })
        .report(&Filter::default());
        let pss: Vec<(i32, u64)> = r.processes.iter().map(|p| (p.pid, p.pss)).collect();
        assert_eq!(pss, [(10, 5462), (20, 5461), (30, 5461)]);
        let held: Vec<u64> = r.buffers[0].holders.iter().map(|h| h.pss).collect();
        assert_eq!(held, [5462, 5461, 5461]);
        assert_eq!(r.totals.pss, 16384);
    }

    #[test]
    fn by_user_and_by_cgroup() {
        // 10 (uid 1000, /a) holds 41 (8K) and 43 (4K); 11 (uid 0, /b)
        // shares 41; 12 (uid 1000, /b) holds 43 too.
        let mut raw = Raw {
            processes: vec![
                RawProcess {
                    status: Some(include_str!("../../testdata/status.txt").into()),
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
    const SCENE: &str = include_str!("../../testdata/scene.capture");

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
            (106496, 176128, 106496)
        );
        // Each buffer's holders' Pss add up to its size, the processes'
        // to the size of the buffers held, as --help says.
        for b in &r.buffers {
            if !b.holders.is_empty() {
                assert_eq!(b.holders.iter().map(|h| h.pss).sum::<u64>(), b.size);
            }
        }
        let held: u64 = r
            .buffers
            .iter()
            .filter(|b| b.processes > 0)
            .map(|b| b.size)
            .sum();
        assert_eq!(r.totals.pss, held);
        assert_eq!(r.processes.iter().map(|p| p.pss).sum::<u64>(), held);
    }
}
