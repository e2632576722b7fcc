// SPDX-License-Identifier: GPL-2.0
//! What lsdmabuf must report about the scene, as the JSON values it prints.
//!
//! [`Want`] counts the scene's own record of who holds what ([`Expect`])
//! with plain loops: Rss is the sum of the sizes of the buffers a process
//! holds, Pss the sum of each size divided by the number of processes
//! holding that buffer; a user's or a cgroup's Rss is the size of the
//! distinct buffers its processes hold, its Pss the sum of theirs. Nothing
//! here comes from lsdmabuf's code.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::scene::{Buf, Expect, Hold};

/// `/proc/PID/comm`, read here rather than taken from lsdmabuf.
pub fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim_end_matches('\n').to_string())
        .unwrap_or_default()
}

/// What lsdmabuf must report: the scene as seen by a reader who can read
/// the processes `visible` accepts, with filters and options.
pub struct Want<'a> {
    expect: &'a Expect,
    visible: &'a dyn Fn(i32) -> bool,
    /// Whether the reader is root: it reads bufinfo for buffers that are
    /// only mapped, where others get a lower bound from the mappings, and
    /// it can list the buffers no process holds.
    root: bool,
    pids: Vec<i32>,
    exporters: Vec<&'a str>,
    /// `--all`: the buffers no process holds too.
    all: bool,
    /// Each buffer's `importers`, each process's `uid`, `user`, `cgroup`
    /// are in the objects compared.
    importers: bool,
    owners: bool,
}

/// One buffer as the reader must see it.
pub struct Seen<'a> {
    pub buf: &'a Buf,
    pub size: u64,
    pub size_from: &'static str,
    pub exporter: Option<&'static str>,
    /// Every visible holder, by pid; none for a buffer no process holds.
    pub holders: Vec<(i32, &'a Hold)>,
}

impl Seen<'_> {
    fn exact(&self) -> bool {
        self.size_from != "mappings"
    }
}

/// A user's or a cgroup's numbers: processes, distinct buffers (key ->
/// size), fds, mappings, Pss, exact.
#[derive(Default)]
struct Group {
    pids: BTreeSet<i32>,
    buffers: BTreeMap<&'static str, u64>,
    fds: u64,
    mappings: u64,
    pss: u64,
    inexact: bool,
}

impl<'a> Want<'a> {
    pub fn new(expect: &'a Expect, visible: &'a dyn Fn(i32) -> bool, root: bool) -> Want<'a> {
        Want {
            expect,
            visible,
            root,
            pids: Vec::new(),
            exporters: Vec::new(),
            all: false,
            importers: false,
            owners: false,
        }
    }

    pub fn pids(mut self, pids: &[i32]) -> Self {
        self.pids = pids.to_vec();
        self
    }

    pub fn exporters(mut self, e: &[&'a str]) -> Self {
        self.exporters = e.to_vec();
        self
    }

    /// As `--all` lists them.
    pub fn all(mut self) -> Self {
        self.all = true;
        self
    }

    /// With each buffer's importers compared.
    pub fn importers(mut self) -> Self {
        self.importers = true;
        self
    }

    /// With each process's uid, user and cgroup compared.
    pub fn owners(mut self) -> Self {
        self.owners = true;
        self
    }

    pub fn seen(&self) -> Vec<Seen<'a>> {
        let mut out = Vec::new();
        for buf in &self.expect.buffers {
            let holders: Vec<(i32, &Hold)> = self
                .expect
                .holds
                .iter()
                .filter(|((pid, key), _)| *key == buf.key && (self.visible)(*pid))
                .map(|((pid, _), h)| (*pid, h))
                .collect();
            let unheld = !self.expect.held(buf.key);
            if holders.is_empty() && !(unheld && self.all && self.root) {
                continue;
            }
            let by_fd = holders.iter().any(|(_, h)| !h.fds.is_empty());
            let (size, size_from, exporter) = if by_fd {
                (buf.size, "fdinfo", Some(buf.exporter.exp_name()))
            } else if self.root {
                (buf.size, "bufinfo", Some(buf.exporter.exp_name()))
            } else {
                let end = holders
                    .iter()
                    .flat_map(|(_, h)| &h.maps)
                    .map(|m| m.offset + m.end - m.start)
                    .max()
                    .unwrap_or(0);
                (end, "mappings", None)
            };
            out.push(Seen {
                buf,
                size,
                size_from,
                exporter,
                holders,
            });
        }
        out
    }

    fn exporter_ok(&self, s: &Seen) -> bool {
        self.exporters.is_empty() || s.exporter.is_some_and(|e| self.exporters.contains(&e))
    }

    fn selected(&self, pid: i32, s: &Seen) -> bool {
        (self.pids.is_empty() || self.pids.contains(&pid)) && self.exporter_ok(s)
    }

    /// Whether `s` is listed: a selected process holds it, or no process
    /// holds it and `--all` lists it.
    fn listed(&self, s: &Seen) -> bool {
        s.holders.iter().any(|(pid, _)| self.selected(*pid, s))
            || (s.holders.is_empty() && self.pids.is_empty() && self.exporter_ok(s))
    }

    /// The buffers listed, by inode.
    pub fn listed_seen(&self) -> Vec<Seen<'a>> {
        let mut v: Vec<Seen> = self.seen().into_iter().filter(|s| self.listed(s)).collect();
        v.sort_by_key(|s| s.buf.ino);
        v
    }

    /// The devices the scene attached to `buf`.
    pub fn importers_of(&self, buf: &Buf) -> Vec<String> {
        self.expect
            .importers
            .get(buf.key)
            .cloned()
            .unwrap_or_default()
    }

    /// The `buffers` list, by inode.
    pub fn buffers(&self) -> Vec<Value> {
        self.listed_seen()
            .iter()
            .map(|s| {
                let mut v = json!({
                    "ino": s.buf.ino,
                    "size": s.size,
                    "size_from": s.size_from,
                    "exporter": s.exporter,
                    "name": s.buf.name,
                    "processes": s.holders.len(),
                    "holders": s.holders.iter().enumerate().map(|(i, (pid, h))| json!({
                        "pid": pid,
                        "command": comm(*pid),
                        "fds": h.fds.iter().collect::<Vec<_>>(),
                        "mappings": h.maps.len(),
                        "mapped_bytes": h.maps.iter().map(|m| m.end - m.start).sum::<u64>(),
                        "pss": pss_share(s.size, s.holders.len(), i),
                    })).collect::<Vec<_>>(),
                });
                if self.importers {
                    v["importers"] = json!(self.importers_of(s.buf));
                }
                v
            })
            .collect()
    }

    /// The selected holds: (pid, buffer seen, hold).
    fn holds(&self) -> Vec<(i32, Seen<'a>, &'a Hold)> {
        let mut out = Vec::new();
        for s in self.seen() {
            for &(pid, h) in &s.holders {
                if self.selected(pid, &s) {
                    out.push((
                        pid,
                        Seen {
                            buf: s.buf,
                            size: s.size,
                            size_from: s.size_from,
                            exporter: s.exporter,
                            holders: s.holders.clone(),
                        },
                        h,
                    ));
                }
            }
        }
        out
    }

    /// pid -> (buffers, fds, mappings, rss, pss, exact) over the selected
    /// holds.
    fn per_process(&self) -> BTreeMap<i32, ([u64; 5], bool)> {
        let mut out: BTreeMap<i32, ([u64; 5], bool)> = BTreeMap::new();
        for (pid, s, h) in self.holds() {
            let (p, exact) = out.entry(pid).or_insert(([0; 5], true));
            p[0] += 1;
            p[1] += h.fds.len() as u64;
            p[2] += h.maps.len() as u64;
            p[3] += s.size;
            let i = s.holders.iter().position(|(p, _)| *p == pid).unwrap_or(0);
            p[4] += pss_share(s.size, s.holders.len(), i);
            *exact &= s.exact();
        }
        out
    }

    /// The cgroup the scene put `pid` in.
    pub fn cgroup_of(&self, pid: i32) -> Option<String> {
        self.expect.cgroups.as_ref().ok()?.get(&pid).cloned()
    }

    /// The `processes` list, by pid.
    pub fn processes(&self) -> Vec<Value> {
        self.per_process()
            .into_iter()
            .map(|(pid, ([buffers, fds, mappings, rss, pss], exact))| {
                let mut v = json!({
                    "pid": pid, "command": comm(pid), "buffers": buffers, "fds": fds,
                    "mappings": mappings, "rss": rss, "pss": pss, "exact": exact,
                });
                if self.owners {
                    let uid = self.expect.uids.get(&pid).copied();
                    v["uid"] = json!(uid);
                    v["user"] = json!(uid.and_then(|u| self.expect.names.get(&u)));
                    v["cgroup"] = json!(self.cgroup_of(pid));
                }
                v
            })
            .collect()
    }

    /// The `exporters` list, by name (unknown first).
    pub fn exporter_list(&self) -> Vec<Value> {
        let mut by: BTreeMap<Option<&str>, (u64, u64, BTreeSet<i32>, bool)> = BTreeMap::new();
        for s in self.listed_seen() {
            let e = by
                .entry(s.exporter)
                .or_insert((0, 0, BTreeSet::new(), true));
            e.0 += 1;
            e.1 += s.size;
            e.2.extend(
                s.holders
                    .iter()
                    .map(|(p, _)| *p)
                    .filter(|p| self.selected(*p, &s)),
            );
            e.3 &= s.exact();
        }
        by.into_iter()
            .map(|(e, (buffers, size, pids, exact))| {
                json!({"exporter": e, "buffers": buffers, "size": size, "exact": exact,
                       "processes": pids.len()})
            })
            .collect()
    }

    fn groups<K: Ord>(&self, key: impl Fn(i32) -> K) -> BTreeMap<K, Group> {
        let per = self.per_process();
        let mut out: BTreeMap<K, Group> = BTreeMap::new();
        for (pid, s, h) in self.holds() {
            let g = out.entry(key(pid)).or_default();
            g.pids.insert(pid);
            g.buffers.insert(s.buf.key, s.size);
            g.fds += h.fds.len() as u64;
            g.mappings += h.maps.len() as u64;
            g.inexact |= !s.exact();
        }
        for (pid, (p, _)) in &per {
            if let Some(g) = out.get_mut(&key(*pid)) {
                g.pss += p[4];
            }
        }
        out
    }

    fn group_json(g: &Group) -> Value {
        json!({
            "processes": g.pids.len(),
            "buffers": g.buffers.len(),
            "fds": g.fds,
            "mappings": g.mappings,
            "rss": g.buffers.values().sum::<u64>(),
            "pss": g.pss,
            "exact": !g.inexact,
        })
    }

    /// The `users` list, by uid.
    pub fn users(&self) -> Vec<Value> {
        self.groups(|pid| self.expect.uids.get(&pid).copied())
            .iter()
            .map(|(uid, g)| {
                let mut v = Self::group_json(g);
                v["uid"] = json!(uid);
                v["user"] = json!(uid.and_then(|u| self.expect.names.get(&u)));
                v
            })
            .collect()
    }

    /// The `cgroups` list, by path.
    pub fn cgroups(&self) -> Vec<Value> {
        self.groups(|pid| self.cgroup_of(pid))
            .iter()
            .map(|(cgroup, g)| {
                let mut v = Self::group_json(g);
                v["cgroup"] = json!(cgroup);
                v
            })
            .collect()
    }

    /// Every buffer the scene made and keeps alive: what bufinfo counts.
    pub fn system(&self) -> Value {
        json!({
            "buffers": self.expect.buffers.len(),
            "size": self.expect.buffers.iter().map(|b| b.size).sum::<u64>(),
        })
    }

    /// The `totals` object.
    pub fn totals(&self) -> Value {
        let listed = self.listed_seen();
        let procs = self.per_process();
        let sum = |i: usize| procs.values().map(|p| p.0[i]).sum::<u64>();
        let unheld: Vec<&Seen> = listed.iter().filter(|s| s.holders.is_empty()).collect();
        json!({
            "buffers": listed.len(),
            "size": listed.iter().map(|s| s.size).sum::<u64>(),
            "exact": listed.iter().all(|s| s.exact()),
            "processes": procs.len(),
            "fds": sum(1), "mappings": sum(2), "rss": sum(3), "pss": sum(4),
            "unheld": if self.all && self.root {
                json!({"buffers": unheld.len(), "size": unheld.iter().map(|s| s.size).sum::<u64>()})
            } else {
                Value::Null
            },
            // As root bufinfo is read, for the buffers only mapped (the scene
            // has some) if for nothing else; others cannot read it.
            "system": if self.root { self.system() } else { Value::Null },
        })
    }
}

/// The Pss of the `i`th holder (in pid order) of a buffer of `size` bytes
/// that `holders` processes hold: the size divided among them, the
/// remainder a byte each to the first.
pub fn pss_share(size: u64, holders: usize, i: usize) -> u64 {
    let n = holders.max(1) as u64;
    size / n + u64::from((i as u64) < size % n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scene::MapAt;
    use dmabuf_testkit::Exporter;

    /// Two processes: 10 (root, /a) holds a by fd; 11 (nobody, /b) maps a
    /// page of it and holds b by fd; c is in flight, b attached to vgem.
    fn expect() -> Expect {
        let buf = |key, ino, size, exporter| Buf {
            key,
            ino,
            size,
            exporter,
            name: Some(key),
        };
        let mut e = Expect {
            buffers: vec![
                buf("a", 1, 8192, Exporter::Heap),
                buf("b", 2, 4096, Exporter::Udmabuf),
                buf("c", 3, 4096, Exporter::Udmabuf),
            ],
            uids: [(10, 0), (11, 65534)].into(),
            names: [(0, "root".to_string())].into(),
            cgroups: Ok([(10, "/a".to_string()), (11, "/b".to_string())].into()),
            importers: [("b", vec!["vgem".to_string()])].into(),
            ..Expect::default()
        };
        e.holds.insert(
            (10, "a"),
            Hold {
                fds: [3].into(),
                maps: Vec::new(),
            },
        );
        e.holds.insert(
            (11, "a"),
            Hold {
                fds: BTreeSet::new(),
                maps: vec![MapAt {
                    start: 0x1000,
                    end: 0x2000,
                    offset: 0,
                }],
            },
        );
        e.holds.insert(
            (11, "b"),
            Hold {
                fds: [4].into(),
                maps: Vec::new(),
            },
        );
        e
    }

    fn everyone(_: i32) -> bool {
        true
    }

    fn only_11(pid: i32) -> bool {
        pid == 11
    }

    #[test]
    fn root_with_all() {
        let e = expect();
        let w = Want::new(&e, &everyone, true).all().importers();
        let inos: Vec<Value> = w.buffers().iter().map(|b| b["ino"].clone()).collect();
        assert_eq!(inos, [json!(1), json!(2), json!(3)]);
        let c = &w.buffers()[2];
        assert_eq!(
            (
                &c["processes"],
                &c["holders"],
                &c["size_from"],
                &c["exporter"]
            ),
            (&json!(0), &json!([]), &json!("bufinfo"), &json!("udmabuf"))
        );
        assert_eq!(w.buffers()[1]["importers"], json!(["vgem"]));
        assert_eq!(w.buffers()[0]["importers"], json!([]));
        // Rss 8K for 10, 8K + 4K for 11; Pss 4K, 4K + 4K.
        assert_eq!(
            w.totals(),
            json!({"buffers": 3, "size": 16384, "exact": true, "processes": 2, "fds": 2,
                   "mappings": 1, "rss": 20480, "pss": 12288,
                   "unheld": {"buffers": 1, "size": 4096},
                   "system": {"buffers": 3, "size": 16384}})
        );
        let users = w.users();
        assert_eq!(users.len(), 2);
        assert_eq!(
            (
                &users[0]["uid"],
                &users[0]["user"],
                &users[0]["rss"],
                &users[0]["pss"]
            ),
            (&json!(0), &json!("root"), &json!(8192), &json!(4096))
        );
        assert_eq!(
            (
                &users[1]["uid"],
                &users[1]["user"],
                &users[1]["buffers"],
                &users[1]["rss"]
            ),
            (&json!(65534), &Value::Null, &json!(2), &json!(12288))
        );
        let cgroups = w.cgroups();
        assert_eq!(cgroups[1]["cgroup"], json!("/b"));
        assert_eq!(cgroups[1]["pss"], json!(8192));
        assert_eq!(
            w.exporter_list(),
            [
                json!({"exporter": "system", "buffers": 1, "size": 8192, "exact": true, "processes": 2}),
                json!({"exporter": "udmabuf", "buffers": 2, "size": 8192, "exact": true, "processes": 1}),
            ]
        );
        let p = Want::new(&e, &everyone, true).owners().processes();
        assert_eq!(
            (&p[1]["uid"], &p[1]["user"], &p[1]["cgroup"]),
            (&json!(65534), &Value::Null, &json!("/b"))
        );
        // -p and --all: nothing in flight is listed.
        let w = Want::new(&e, &everyone, true).all().pids(&[10]);
        assert_eq!(w.buffers().len(), 1);
    }

    #[test]
    fn unprivileged() {
        let e = expect();
        let w = Want::new(&e, &only_11, false).all();
        let b = w.buffers();
        // a only through 11's mapping: a lower bound, exporter unknown.
        assert_eq!(
            (&b[0]["size"], &b[0]["size_from"], &b[0]["exporter"]),
            (&json!(4096), &json!("mappings"), &Value::Null)
        );
        assert_eq!(b.len(), 2, "nothing in flight without bufinfo");
        let t = w.totals();
        assert_eq!(
            (&t["exact"], &t["unheld"], &t["system"], &t["pss"]),
            (&json!(false), &Value::Null, &Value::Null, &json!(8192))
        );
        assert_eq!(w.processes()[0]["exact"], json!(false));
    }
}
