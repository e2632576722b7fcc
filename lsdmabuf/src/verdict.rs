// SPDX-License-Identifier: GPL-2.0
//! The exit status, one rule for a walk of /proc and a `--load`ed capture:
//!
//! - 0: something was found: the view lists a buffer, and each `--pid`
//!   holds one;
//! - 1: nothing matched: no buffer to list, or a `--pid` names no process
//!   that holds a dma-buf;
//! - 2: lsdmabuf could not look: /proc, a capture or what an option needs
//!   (bufinfo for `--all` and IMPORTERS, a `--pid`'s fds) could not be
//!   read, or the command line is wrong.
//!
//! Every status but 0 comes with its reasons, which lsdmabuf prints on
//! stderr, and with `--json` in an `error` object on stdout too.

use serde::Serialize;
use serde_json::{json, Value};

use crate::human::{self, Asked};
use crate::model::{Filter, Report};

/// What the exit status says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// 0: found.
    Found,
    /// 1: nothing matched.
    NothingMatched,
    /// 2: could not look.
    CouldNotLook,
}

impl Status {
    /// The exit status.
    pub fn code(self) -> u8 {
        match self {
            Status::Found => 0,
            Status::NothingMatched => 1,
            Status::CouldNotLook => 2,
        }
    }
}

/// The status and why it is not 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub status: Status,
    /// One sentence each, without `lsdmabuf: `.
    pub reasons: Vec<String>,
}

impl Verdict {
    /// Found, status 0.
    pub fn found() -> Verdict {
        Verdict {
            status: Status::Found,
            reasons: Vec::new(),
        }
    }

    /// Could not look, for `reason`.
    pub fn could_not_look(reason: String) -> Verdict {
        Verdict {
            status: Status::CouldNotLook,
            reasons: vec![reason],
        }
    }

    fn add(&mut self, status: Status, reason: String) {
        self.status = self.status.max(status);
        self.reasons.push(reason);
    }

    /// The `error` object of the JSON output; `None` for status 0.
    pub fn json(&self) -> Option<Value> {
        (self.status != Status::Found).then(|| {
            json!({
                "status": self.status.code(),
                "what": self.status,
                "reasons": self.reasons,
            })
        })
    }
}

/// Whether process `pid` exists, when that can be known (a walk of /proc,
/// not a capture).
pub type Exists<'a> = &'a dyn Fn(i32) -> Option<bool>;

/// The verdict on `report`, made with `filter` from a walk in which
/// `holders` are the pids of every process seen holding a dma-buf. `root`
/// is whether the walk ran as root, when known.
pub fn judge(
    report: &Report,
    filter: &Filter,
    asked: Asked,
    holders: &std::collections::BTreeSet<i32>,
    exists: Exists<'_>,
    root: Option<bool>,
) -> Verdict {
    let mut v = Verdict::found();
    let s = &report.scan;
    for &pid in &filter.pids {
        // Any file of it that could not be read may hide its buffers.
        if let Some(u) = s.unreadable.iter().find(|u| u.pid == Some(pid)) {
            let advice = match (u.errno.as_str(), root) {
                ("EACCES" | "EPERM", Some(false)) => ": run as root to read it",
                _ => "",
            };
            v.add(
                Status::CouldNotLook,
                format!(
                    "--pid {pid}: {}: {} ({}): the dma-bufs it holds cannot be known{advice}",
                    u.path,
                    u.error.to_lowercase(),
                    u.errno
                ),
            );
            continue;
        }
        if holders.contains(&pid) {
            continue;
        }
        let reason = match exists(pid) {
            Some(false) => format!("--pid {pid}: no such process"),
            Some(true) => format!("--pid {pid}: the process holds no dma-buf"),
            None => format!("--pid {pid}: no process of the capture with that pid holds a dma-buf"),
        };
        v.add(Status::NothingMatched, reason);
    }
    let why_bufinfo = || {
        human::bufinfo_failure(s).map_or_else(
            || "bufinfo was not read or could not be parsed".to_string(),
            human::bufinfo_why,
        )
    };
    if asked.reads.unheld && report.totals.unheld.is_none() {
        v.add(
            Status::CouldNotLook,
            format!(
                "--all: the buffers no process holds could not be read: {}",
                why_bufinfo()
            ),
        );
    }
    if asked.reads.importers && report.totals.system.is_none() {
        v.add(
            Status::CouldNotLook,
            format!(
                "IMPORTERS: the devices attached could not be read: {}",
                why_bufinfo()
            ),
        );
    }
    if report.buffers.is_empty() && v.status == Status::Found {
        let reason = if asked.filtered {
            let mut what = Vec::new();
            if !filter.pids.is_empty() {
                let pids: Vec<String> = filter.pids.iter().map(i32::to_string).collect();
                what.push(format!("--pid {}", pids.join(",")));
            }
            if !filter.exporters.is_empty() {
                what.push(format!("--exporter {}", filter.exporters.join(",")));
            }
            format!("no dma-buf matches {}", what.join(" and "))
        } else {
            human::none_listed(report, root)
        };
        v.add(Status::NothingMatched, reason);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Analysis;
    use crate::raw::{Failure, Raw, RawFd, RawProcess, Reads};
    use nix::errno::Errno;

    /// Process 10 holds buffer 41 (8K); process 1 could not be read.
    fn walk() -> Raw {
        Raw {
            processes: vec![RawProcess {
                pid: 10,
                comm: "app".into(),
                fds: vec![RawFd {
                    fd: 3,
                    link: "/dmabuf:".into(),
                    fdinfo: Some(
                        "pos:\t0\nflags:\t02\nmnt_id:\t15\nino:\t41\nsize:\t8192\ncount:\t1\nexp_name:\tsystem\n"
                            .into(),
                    ),
                    stat: None,
                }],
                ..RawProcess::default()
            }],
            read: 1,
            failures: vec![Failure {
                pid: Some(1),
                path: "/proc/1/fd".into(),
                errno: Errno::EACCES,
            }],
            ..Raw::default()
        }
    }

    fn verdict(raw: &Raw, filter: Filter, reads: Reads, exists: Exists<'_>) -> Verdict {
        let a = Analysis::new(raw);
        let asked = Asked {
            filtered: !filter.pids.is_empty() || !filter.exporters.is_empty(),
            reads,
        };
        judge(
            &a.report(&filter),
            &filter,
            asked,
            &a.pids(),
            exists,
            Some(false),
        )
    }

    fn pids(p: &[i32]) -> Filter {
        Filter {
            pids: p.to_vec(),
            ..Filter::default()
        }
    }

    const CAPTURE: Exists<'static> = &|_| None;

    #[test]
    fn found_is_0() {
        let v = verdict(&walk(), Filter::default(), Reads::default(), CAPTURE);
        assert_eq!((v.status, v.reasons.len()), (Status::Found, 0));
        assert_eq!(v.json(), None);
        let v = verdict(&walk(), pids(&[10]), Reads::default(), CAPTURE);
        assert_eq!(v.status, Status::Found);
    }

    #[test]
    fn a_pid_that_cannot_be_read_is_2() {
        // -p 1 as a user who cannot read process 1: not "0 buffers".
        let v = verdict(&walk(), pids(&[1]), Reads::default(), &|_| Some(true));
        assert_eq!(v.status, Status::CouldNotLook);
        assert_eq!(
            v.reasons,
            [
                "--pid 1: /proc/1/fd: permission denied (EACCES): the dma-bufs it holds cannot be \
              known: run as root to read it"
            ]
        );
        assert_eq!(v.json().unwrap()["status"], 2);
    }

    #[test]
    fn a_pid_that_holds_nothing_is_1_live_and_loaded() {
        for (exists, reason) in [(&|_| Some(false)) as Exists<'_>, &|_| Some(true), CAPTURE]
            .into_iter()
            .zip([
                "--pid 99999: no such process",
                "--pid 99999: the process holds no dma-buf",
                "--pid 99999: no process of the capture with that pid holds a dma-buf",
            ])
        {
            let v = verdict(&walk(), pids(&[99999]), Reads::default(), exists);
            assert_eq!(v.status, Status::NothingMatched);
            assert_eq!(v.reasons, [reason]);
        }
        // One pid of two holding nothing is 1 as well.
        let v = verdict(&walk(), pids(&[10, 99999]), Reads::default(), CAPTURE);
        assert_eq!(v.status, Status::NothingMatched);
    }

    #[test]
    fn what_an_option_needs_and_cannot_read_is_2_with_a_reason() {
        // -o +importers and --all with no buffer and no bufinfo.
        let mut none = Raw {
            read: 3,
            ..Raw::default()
        };
        none.failures.push(Failure {
            pid: None,
            path: "/sys/kernel/debug/dma_buf/bufinfo".into(),
            errno: Errno::EACCES,
        });
        for reads in [
            Reads {
                importers: true,
                ..Reads::default()
            },
            Reads {
                unheld: true,
                ..Reads::default()
            },
        ] {
            none.meta.reads = reads;
            let v = verdict(&none, Filter::default(), reads, CAPTURE);
            assert_eq!(v.status, Status::CouldNotLook, "{reads:?}");
            assert_eq!(v.reasons.len(), 1, "{v:?}");
            assert!(
                v.reasons[0].ends_with(
                    "/sys/kernel/debug/dma_buf/bufinfo: Permission denied: debugfs is root's: \
                     run as root"
                ),
                "{v:?}"
            );
            let json = v.json().unwrap();
            assert_eq!(json["reasons"][0], v.reasons[0].as_str());
            // With a buffer too.
            let mut one = walk();
            one.failures = none.failures.clone();
            one.meta.reads = reads;
            let v = verdict(&one, Filter::default(), reads, CAPTURE);
            assert_eq!(v.status, Status::CouldNotLook, "{reads:?}");
        }
    }

    #[test]
    fn nothing_listed_is_1_with_a_reason() {
        let v = verdict(
            &Raw {
                read: 3,
                ..Raw::default()
            },
            Filter::default(),
            Reads::default(),
            CAPTURE,
        );
        assert_eq!(v.status, Status::NothingMatched);
        assert!(
            v.reasons[0].starts_with("no process that can be read holds a dma-buf"),
            "{v:?}"
        );
        let e = Filter {
            exporters: vec!["udmabuf".into()],
            ..Filter::default()
        };
        let v = verdict(&walk(), e, Reads::default(), CAPTURE);
        assert_eq!(v.reasons, ["no dma-buf matches --exporter udmabuf"]);
    }
}
