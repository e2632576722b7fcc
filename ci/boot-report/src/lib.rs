// SPDX-License-Identifier: GPL-2.0
//! Reading a test VM's serial log.
//!
//! Pure functions over the text of the logs, so that they can be tested on
//! the host with logs captured from real boots:
//!
//! - [`kunit_suites`]: the KTAP results of every KUnit suite (the kernel
//!   crate's doctests run as the suite `rust_doctests_kernel`);
//! - [`splats`]: every Oops, BUG, WARNING, KASAN, lockdep, kmemleak or panic
//!   report, with the lines that belong to it;
//! - [`verdict`]: the status vm-init reported for the commands it ran;
//! - [`tap`]: the commands' output, cut into one section per command, and
//!   the TAP stream of each;
//! - [`judge`]: the verdict on a whole run, from all of the above.

pub mod buildlog;
pub mod judge;
pub mod tap;

use serde::Serialize;

/// Strips the printk timestamp (`[    1.234567] `) and a trailing `\r`.
pub fn strip_printk_prefix(line: &str) -> &str {
    let line = line.strip_suffix('\r').unwrap_or(line);
    if let Some(rest) = line.strip_prefix('[') {
        if let Some(end) = rest.find("] ") {
            let stamp = rest[..end].trim();
            if !stamp.is_empty() && stamp.chars().all(|c| c.is_ascii_digit() || c == '.') {
                return &rest[end + 2..];
            }
        }
    }
    line
}

/// One KTAP test case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestCase {
    pub name: String,
    pub ok: bool,
    pub skipped: bool,
}

/// One KUnit suite as its KTAP output showed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suite {
    pub name: String,
    /// The plan line `1..N`, when seen.
    pub planned: Option<usize>,
    pub cases: Vec<TestCase>,
    /// Whether the suite's own result line (`ok N name`) was seen.
    pub finished: bool,
}

impl Suite {
    pub fn passed(&self) -> usize {
        self.cases.iter().filter(|c| c.ok && !c.skipped).count()
    }

    pub fn failed(&self) -> Vec<&str> {
        self.cases
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.name.as_str())
            .collect()
    }

    pub fn skipped(&self) -> usize {
        self.cases.iter().filter(|c| c.skipped).count()
    }

    /// Why this suite is not a clean pass, if it is not.
    pub fn problem(&self) -> Option<String> {
        let failed = self.failed();
        if !failed.is_empty() {
            return Some(format!(
                "KUnit suite {}: {} of {} test cases failed: {}",
                self.name,
                failed.len(),
                self.cases.len(),
                failed.join(", ")
            ));
        }
        if !self.finished {
            return Some(format!(
                "KUnit suite {} did not finish: {} of {} test cases reported",
                self.name,
                self.cases.len(),
                self.planned.map_or("?".to_string(), |n| n.to_string())
            ));
        }
        if let Some(n) = self.planned {
            if n != self.cases.len() {
                return Some(format!(
                    "KUnit suite {} planned {n} test cases but reported {}",
                    self.name,
                    self.cases.len()
                ));
            }
        }
        None
    }
}

/// Parses a KTAP result line `ok 3 name # SKIP reason` into a test case.
fn parse_result(line: &str) -> Option<TestCase> {
    let r = tap::parse_result(line)?;
    r.number?;
    Some(TestCase {
        name: r.description,
        ok: r.ok,
        skipped: r.skip.is_some(),
    })
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches([' ', '\t']).len()
}

/// Every KUnit suite in a console log, in order of appearance.
pub fn kunit_suites(log: &str) -> Vec<Suite> {
    let mut suites: Vec<Suite> = Vec::new();
    // The suite being read and the indentation of its lines.
    let mut current: Option<(usize, Suite)> = None;
    for raw in log.lines() {
        let line = strip_printk_prefix(raw);
        let indent = indent_of(line);
        let text = line.trim();
        if let Some(name) = text.strip_prefix("# Subtest: ") {
            if let Some((_, s)) = current.take() {
                suites.push(s);
            }
            current = Some((
                indent,
                Suite {
                    name: name.trim().to_string(),
                    planned: None,
                    cases: Vec::new(),
                    finished: false,
                },
            ));
            continue;
        }
        let Some((suite_indent, suite)) = current.as_mut() else {
            continue;
        };
        if indent == *suite_indent {
            if let Some(n) = text.strip_prefix("1..").and_then(|n| n.parse().ok()) {
                suite.planned = Some(n);
            } else if let Some(case) = parse_result(text) {
                suite.cases.push(case);
            }
        } else if indent < *suite_indent {
            if let Some(case) = parse_result(text) {
                if case.name == suite.name {
                    suite.finished = true;
                    let (_, s) = current.take().expect("current suite");
                    suites.push(s);
                }
            }
        }
    }
    if let Some((_, s)) = current {
        suites.push(s);
    }
    suites
}

/// A kernel report that means something went wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Splat {
    /// What kind of report: `Oops`, `BUG`, `WARNING`, `KASAN`, ...
    pub kind: &'static str,
    /// The report's first line and the lines that follow it.
    pub lines: Vec<String>,
}

/// Line patterns that start a kernel report, and the kind each one names.
const SPLAT_STARTS: &[(&str, &str)] = &[
    ("BUG: KASAN:", "KASAN"),
    ("BUG: KFENCE:", "KFENCE"),
    ("UBSAN:", "UBSAN"),
    ("WARNING: possible circular locking dependency", "lockdep"),
    ("WARNING: possible recursive locking", "lockdep"),
    ("WARNING: inconsistent lock state", "lockdep"),
    ("WARNING: suspicious RCU usage", "lockdep"),
    ("WARNING: bad unlock balance", "lockdep"),
    ("WARNING: held lock freed", "lockdep"),
    ("WARNING: lock held when returning to user space", "lockdep"),
    (
        "BUG: sleeping function called from invalid context",
        "might_sleep",
    ),
    ("BUG: scheduling while atomic", "might_sleep"),
    ("BUG:", "BUG"),
    ("kernel BUG at", "BUG"),
    ("Oops:", "Oops"),
    ("Oops -", "Oops"),
    ("general protection fault", "Oops"),
    ("WARNING:", "WARNING"),
    ("Kernel panic", "panic"),
    ("kmemleak:", "kmemleak"),
    ("INFO: task ", "hung task"),
    ("rcu: INFO:", "RCU stall"),
    ("Out of memory:", "OOM"),
    ("ODEBUG:", "debugobjects"),
];

/// The kind of report a kernel log line starts, if it starts one.
fn splat_kind(line: &str) -> Option<&'static str> {
    let t = line.trim_start();
    for (pat, kind) in SPLAT_STARTS {
        if *kind == "kmemleak" {
            // Only leak reports: kmemleak also prints its start-up banner.
            if t.starts_with("kmemleak:") && t.contains("suspected memory leak") {
                return Some(kind);
            }
            continue;
        }
        if *kind == "hung task" {
            if t.starts_with(pat) && t.contains("blocked for more than") {
                return Some(kind);
            }
            continue;
        }
        if t.starts_with(pat) || (*kind == "Oops" && t.contains(pat)) {
            return Some(kind);
        }
    }
    None
}

/// Lines quoted after the first line of a report, at most.
const SPLAT_CONTEXT: usize = 40;

/// Every kernel report in a console log, each with the lines up to its end
/// marker (`---[ end trace`, `---[ end Kernel panic`, a row of `=`), at most
/// [`SPLAT_CONTEXT`] lines. Lines vm-init printed are never part of one.
pub fn splats(log: &str) -> Vec<Splat> {
    let lines: Vec<&str> = log.lines().map(strip_printk_prefix).collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(kind) = splat_kind(lines[i]) else {
            i += 1;
            continue;
        };
        let mut quoted = vec![lines[i].to_string()];
        let mut j = i + 1;
        while j < lines.len() && quoted.len() <= SPLAT_CONTEXT {
            let l = lines[j];
            if l.starts_with("vm-init:") || splat_kind(l).is_some_and(|k| k != kind) {
                break;
            }
            quoted.push(l.to_string());
            j += 1;
            if l.contains("---[ end trace") || l.contains("---[ end Kernel panic") {
                break;
            }
        }
        out.push(Splat {
            kind,
            lines: quoted,
        });
        i = j;
    }
    out
}

/// The status vm-init reported (`vm-init: exit status N`), the last one seen.
pub fn verdict(log: &str) -> Option<i32> {
    log.lines()
        .map(strip_printk_prefix)
        .filter_map(|l| l.trim().strip_prefix("vm-init: exit status "))
        .filter_map(|n| n.trim().parse().ok())
        .next_back()
}

/// How many CPUs the kernel brought up, from `smp: Brought up N node(s),
/// M CPU(s)`; `None` when the line is missing (a kernel without SMP).
pub fn cpus_brought_up(log: &str) -> Option<u32> {
    log.lines()
        .map(strip_printk_prefix)
        .filter_map(|l| l.trim().strip_prefix("smp: Brought up "))
        .filter_map(|rest| {
            let (_, cpus) = rest.split_once(", ")?;
            cpus.split_whitespace().next()?.parse().ok()
        })
        .next_back()
}

/// The exit status QEMU has when the guest wrote `status` to isa-debug-exit.
pub fn qemu_status_for(status: i32) -> i32 {
    (status.clamp(0, 127) << 1) | 1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The console log of a real boot of the base 6.12.117 kernel.
    const BASE_BOOT: &str = include_str!("../testdata/base-boot.log");
    /// A real boot with a doctest that fails and a WARN_ON(1) in udmabuf.
    const FAIL_AND_WARNING: &str = include_str!("../testdata/doctest-fail-and-warning.log");
    /// A real boot with a write to a user address in udmabuf's ioctl.
    const OOPS: &str = include_str!("../testdata/oops.log");
    /// A real boot with ACPI, `-smp 2`: both CPUs up.
    const TWO_CPUS: &str = include_str!("../testdata/acpi-two-cpus.log");

    #[test]
    fn counts_the_cpus_brought_up() {
        // Without ACPI, QEMU's MP table names the boot CPU only.
        assert_eq!(cpus_brought_up(BASE_BOOT), Some(1));
        assert_eq!(cpus_brought_up(TWO_CPUS), Some(2));
        assert_eq!(
            cpus_brought_up("[    0.1] smp: Brought up 2 nodes, 16 CPUs\n"),
            Some(16)
        );
        assert_eq!(
            cpus_brought_up("smp: Bringing up secondary CPUs ...\n"),
            None
        );
    }

    #[test]
    fn strips_printk_timestamps() {
        assert_eq!(strip_printk_prefix("[    1.234567] ok 1 x\r"), "ok 1 x");
        assert_eq!(strip_printk_prefix("[12345.6] x"), "x");
        assert_eq!(strip_printk_prefix("[not a stamp] x"), "[not a stamp] x");
        assert_eq!(strip_printk_prefix("plain"), "plain");
    }

    #[test]
    fn reads_a_passing_doctest_suite() {
        let suites = kunit_suites(BASE_BOOT);
        assert_eq!(suites.len(), 1);
        let s = &suites[0];
        assert_eq!(s.name, "rust_doctests_kernel");
        assert_eq!(s.planned, Some(114));
        assert_eq!(s.passed(), 114);
        assert!(s.finished);
        assert_eq!(s.problem(), None);
    }

    #[test]
    fn names_a_failed_doctest() {
        let suites = kunit_suites(FAIL_AND_WARNING);
        assert_eq!(suites.len(), 1);
        let s = &suites[0];
        assert_eq!(s.failed(), vec!["rust_doctest_kernel_sizes_rs_0"]);
        assert_eq!(s.passed(), 114);
        assert!(s.finished);
        let p = s.problem().unwrap();
        assert!(
            p.contains("1 of 115 test cases failed: rust_doctest_kernel_sizes_rs_0"),
            "{p}"
        );
    }

    #[test]
    fn an_unfinished_suite_is_a_problem() {
        // The base boot's suite, cut off after its tenth result.
        let cut = BASE_BOOT.find("    ok 11 ").unwrap();
        let s = &kunit_suites(&BASE_BOOT[..cut])[0];
        assert!(!s.finished);
        assert_eq!(
            s.problem().unwrap(),
            "KUnit suite rust_doctests_kernel did not finish: 10 of 114 test cases reported"
        );
    }

    #[test]
    fn skips_are_not_failures() {
        let log = "    # Subtest: s\n    1..2\n    ok 1 a # SKIP no device\n    ok 2 b\nok 1 s\n";
        let s = &kunit_suites(log)[0];
        assert_eq!((s.passed(), s.skipped(), s.failed().len()), (1, 1, 0));
        assert_eq!(s.problem(), None);
    }

    #[test]
    fn quotes_a_warning_to_its_end() {
        let found = splats(FAIL_AND_WARNING);
        assert_eq!(found.len(), 1);
        let w = &found[0];
        assert_eq!(w.kind, "WARNING");
        assert!(
            w.lines[0].starts_with("WARNING: CPU: 0 PID: "),
            "{}",
            w.lines[0]
        );
        assert!(w.lines[0].contains("drivers/dma-buf/udmabuf.c"));
        assert!(w.lines.iter().any(|l| l.contains("__x64_sys_ioctl")));
        assert!(w.lines.last().unwrap().contains("---[ end trace"));
    }

    #[test]
    fn finds_an_oops() {
        let kinds: Vec<_> = splats(OOPS).iter().map(|s| s.kind).collect();
        assert_eq!(kinds, vec!["BUG", "Oops"]);
        assert_eq!(verdict(OOPS), Some(137));
    }

    #[test]
    fn a_clean_log_has_no_splats() {
        assert!(splats(BASE_BOOT).is_empty());
        assert!(splats(
            "kmemleak: Kernel memory leak detector initialized (mem pool available: 1)\n"
        )
        .is_empty());
        assert_eq!(
            splats("kmemleak: 2 new suspected memory leaks (see /sys/kernel/debug/kmemleak)\n")
                .len(),
            1
        );
    }

    #[test]
    fn reads_the_verdict() {
        assert_eq!(verdict("x\n[    2.0] vm-init: exit status 3\r\n"), Some(3));
        assert_eq!(
            verdict("vm-init: exit status 0\nvm-init: exit status 1\n"),
            Some(1)
        );
        assert_eq!(verdict("Kernel panic - not syncing\n"), None);
        assert_eq!(qemu_status_for(0), 1);
        assert_eq!(qemu_status_for(3), 7);
        assert_eq!(qemu_status_for(300), 255);
    }
}
