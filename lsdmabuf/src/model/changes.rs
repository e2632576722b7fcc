// SPDX-License-Identifier: GPL-2.0
//! What changed between two reports: the `--watch` mode's tick.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use super::report::{Buffer, Process, Report, Totals};

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
    let d = i128::from(after) - i128::from(before);
    d.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
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
    use crate::model::test_walks::{fd, holder};
    use crate::model::{Analysis, Filter};
    use crate::raw::Raw;

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
}
