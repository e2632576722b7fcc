// SPDX-License-Identifier: GPL-2.0
//! The verdict on one VM run, from its console log and its commands' output.
//!
//! [`judge`] is a pure function of the two texts and the [`Options`]; the
//! `boot-report` binary only reads the files and prints the [`Report`].

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::tap::{self, Section, TapResult};
use crate::{
    cpus_brought_up, kunit_suites, qemu_status_for, splats, strip_printk_prefix, verdict, Splat,
    Suite,
};

/// What the guest's exit status must be.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    /// 0: every command passed.
    #[default]
    Zero,
    /// Not 0: the run must fail (a negative control, a fault).
    Nonzero,
    /// Anything.
    Any,
}

/// `--expect-suite-failing NAME:CASE,CASE...`: the KUnit suite must finish
/// with exactly these test cases failing, every other one passed (a fault
/// planted in the code the suite tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteFailing {
    pub name: String,
    pub cases: BTreeSet<String>,
}

impl FromStr for SuiteFailing {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (name, cases) = s
            .split_once(':')
            .ok_or_else(|| format!("`{s}`: not NAME:CASE,CASE..."))?;
        let cases: BTreeSet<String> = cases
            .split(',')
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect();
        if name.is_empty() || cases.is_empty() {
            return Err(format!(
                "`{s}`: a suite name and at least one test case are needed"
            ));
        }
        Ok(Self {
            name: name.to_string(),
            cases,
        })
    }
}

/// `--require-suite NAME` or `NAME=N`: the KUnit suite must be in the log
/// and pass; with `=N`, with exactly N test cases, all passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteRequirement {
    pub name: String,
    pub cases: Option<usize>,
}

impl FromStr for SuiteRequirement {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (name, cases) = match s.rsplit_once('=') {
            Some((name, n)) => {
                let n = n
                    .parse()
                    .map_err(|_| format!("`{s}`: the N of NAME=N is not a number"))?;
                (name, Some(n))
            }
            None => (s, None),
        };
        if name.is_empty() {
            return Err(format!("`{s}`: no suite name"));
        }
        Ok(SuiteRequirement {
            name: name.to_string(),
            cases,
        })
    }
}

impl fmt::Display for SuiteRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.cases {
            Some(n) => write!(f, "{}={n}", self.name),
            None => write!(f, "{}", self.name),
        }
    }
}

/// `--plan TOOL=N`: the tool's output must be there and plan exactly N
/// checks. TOOL is named as [`tap::tool_name`] names it, and may hold a
/// space (`dmabuf-stress fail-nth=12`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanRequirement {
    pub tool: String,
    pub checks: usize,
}

impl FromStr for PlanRequirement {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (tool, n) = s
            .rsplit_once('=')
            .ok_or_else(|| format!("`{s}`: want TOOL=N"))?;
        let checks = n
            .parse()
            .map_err(|_| format!("`{s}`: the N of TOOL=N is not a number"))?;
        if tool.trim().is_empty() {
            return Err(format!("`{s}`: no tool name"));
        }
        Ok(PlanRequirement {
            tool: tool.trim().to_string(),
            checks,
        })
    }
}

/// What the run must look like, and what the host knows about it.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The kernel variant, named in every message.
    pub variant: String,
    /// QEMU's exit status.
    pub qemu_status: Option<i32>,
    /// QEMU was killed by the host's timeout, of `timeout` seconds.
    pub timed_out: bool,
    pub timeout: u64,
    /// KUnit suites that must be in the log and pass (with a count).
    pub require_suites: Vec<SuiteRequirement>,
    /// KUnit suites that must fail exactly these test cases.
    pub expect_suites_failing: Vec<SuiteFailing>,
    pub expect_exit: Expect,
    /// With [`Expect::Nonzero`]: exactly these checks fail, when not empty.
    pub expect_failing: Vec<String>,
    /// The CPUs QEMU gave the guest.
    pub cpus: Option<u32>,
    /// Tools whose output must plan so many checks.
    pub plans: Vec<PlanRequirement>,
    /// Tools whose skipped checks do not fail the run.
    pub allow_skip: Vec<String>,
    /// Kinds of kernel report (`kmemleak`, ...) that must be in the log, and then do not fail
    /// the run: a planted leak's run expects kmemleak to report it.
    pub expect_splats: Vec<String>,
}

/// The verdict, and what it was drawn from (written as JSON).
#[derive(Debug, Serialize)]
pub struct Report {
    pub variant: String,
    pub suites: Vec<Suite>,
    pub splats: Vec<Splat>,
    /// The status vm-init reported.
    pub verdict: Option<i32>,
    pub qemu_status: Option<i32>,
    /// The commands' output, one section per command.
    pub sections: Vec<Section>,
    /// Sections without any TAP (a tool that prints none): not judged.
    pub sections_without_tap: usize,
    /// Every in-VM check, of every section.
    pub checks: Vec<TapResult>,
    /// What was found right, in order (`ok: VARIANT: ...`).
    pub oks: Vec<String>,
    /// What was found wrong; the run passed when there is none.
    pub problems: Vec<String>,
    pub passed: usize,
    pub failed: usize,
    /// In-VM checks skipped (`# SKIP`, `# TODO`): never passed.
    pub skipped: usize,
}

impl Report {
    /// Whether the run passed.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// What boot-report prints: `ok:` lines, `FAIL:` lines, the tally.
    pub fn text(&self) -> String {
        let v = &self.variant;
        let mut out = String::new();
        for ok in &self.oks {
            out += &format!("ok: {v}: {ok}\n");
        }
        for p in &self.problems {
            out += &format!("FAIL: {v}: {p}\n");
        }
        out += &format!(
            "boot-report: {v}: {} passed, {} failed\n",
            self.passed, self.failed
        );
        out
    }
}

/// The tally while judging.
#[derive(Default)]
struct Tally {
    oks: Vec<String>,
    problems: Vec<String>,
    passed: usize,
    failed: usize,
}

impl Tally {
    fn pass(&mut self, ok: String) {
        self.passed += 1;
        self.oks.push(ok);
    }

    fn fail(&mut self, problem: String) {
        self.failed += 1;
        self.problems.push(problem);
    }
}

/// The console lines with which vm-init says it could not do its job.
const VM_INIT_FAILURES: &[&str] = &[
    "vm-init: setup failed: ",
    "vm-init: cannot open ",
    "vm-init: cannot write to ",
    "vm-init: no command given",
    "vm-init: a command argument holds a NUL byte",
    "vm-init: fork: ",
    "vm-init: waitpid: ",
];

/// Judges one VM run: `console` is the serial console log, `output` the
/// commands' output (the guest's second serial port) when the host kept it.
pub fn judge(console: &str, output: Option<&str>, o: &Options) -> Report {
    let mut t = Tally::default();

    // KUnit, the kernel crate's doctests among it.
    let suites = kunit_suites(console);
    for s in &suites {
        let unreported = s
            .planned
            .unwrap_or(s.cases.len())
            .saturating_sub(s.cases.len());
        t.passed += s.passed();
        if let Some(want) = o.expect_suites_failing.iter().find(|w| w.name == s.name) {
            expect_suite_failing(want, s, &mut t);
            continue;
        }
        t.failed += s.failed().len() + unreported;
        match s.problem() {
            Some(p) => t.problems.push(p),
            None => t.oks.push(format!(
                "KUnit suite {}: {} passed, {} skipped",
                s.name,
                s.passed(),
                s.skipped()
            )),
        }
    }
    for want in &o.require_suites {
        require_suite(want, &suites, &mut t);
    }
    for want in &o.expect_suites_failing {
        if !suites.iter().any(|s| s.name == want.name) {
            t.fail(format!(
                "KUnit suite {} is missing from the log: --expect-suite-failing needs it to run and fail",
                want.name
            ));
        }
    }

    // Every CPU QEMU was given, brought up: concurrency tests on one CPU
    // would only interleave, never run in parallel.
    if let Some(want) = o.cpus {
        match cpus_brought_up(console) {
            Some(n) if n == want => t.pass(format!("{n} CPUs brought up")),
            n => t.fail(format!(
                "QEMU gave the guest {want} CPUs, but the kernel brought up {}: is CONFIG_ACPI on (QEMU's MP table names the boot CPU only)?",
                n.map_or("no secondary CPU (no `smp: Brought up` line)".to_string(), |n| n.to_string())
            )),
        }
    }

    // Kernel reports: none, but the kinds expected, each of which must be there.
    let found = splats(console);
    let (expected, unexpected): (Vec<&Splat>, Vec<&Splat>) = found
        .iter()
        .partition(|s| o.expect_splats.iter().any(|k| k == s.kind));
    for kind in &o.expect_splats {
        if expected.iter().any(|s| s.kind == kind) {
            t.pass(format!("the kernel printed the expected {kind} report"));
        } else {
            t.fail(format!(
                "the kernel printed no {kind} report, but one was expected"
            ));
        }
    }
    if unexpected.is_empty() {
        t.pass("no Oops, BUG, WARNING, KASAN, lockdep, kmemleak or panic report".into());
    } else {
        t.failed += 1;
        for s in &unexpected {
            let quote: Vec<String> = s.lines.iter().map(|l| format!("    | {l}")).collect();
            t.problems
                .push(format!("kernel {} report:\n{}", s.kind, quote.join("\n")));
        }
    }

    // vm-init could not set the guest up or start a command: whatever the
    // exit status, the commands did not run as asked.
    for line in console.lines().map(strip_printk_prefix).map(str::trim) {
        if VM_INIT_FAILURES.iter().any(|p| line.starts_with(p)) {
            t.fail(format!("the guest's init failed: {line}"));
        }
    }

    // The commands' output: each command's TAP stream whole, no skip, the
    // plans asked for; on a run expected to fail as much as on any other.
    let sections = output.map(tap::sections).unwrap_or_default();
    if output.is_some() {
        commands_have_output(console, &sections, &mut t);
    }
    for s in &sections {
        judge_section(s, o, &mut t);
    }
    for want in &o.plans {
        require_plan(want, &sections, output.is_some(), &mut t);
    }

    // In-VM checks: each one counts, except on a kernel expected to fail,
    // where the one thing that counts is that it fails as expected.
    let checks: Vec<TapResult> = sections
        .iter()
        .flat_map(|s| s.tap.results.iter().cloned())
        .collect();
    let failing: BTreeSet<&str> = checks
        .iter()
        .filter(|c| c.failed())
        .map(|c| c.name.as_str())
        .collect();
    let passed_checks = checks.iter().filter(|c| c.passed()).count();
    if o.expect_exit != Expect::Nonzero {
        t.passed += passed_checks;
        for s in &sections {
            for c in s.tap.results.iter().filter(|c| c.failed()) {
                t.fail(format!(
                    "in-VM check failed: {}: {}",
                    s.label(),
                    c.description
                ));
            }
        }
    }

    // The guest's verdict: present, agreed by QEMU, and as expected.
    let guest = verdict(console);
    match verdict_problem(o, guest, console, output.unwrap_or(""), &failing) {
        None => {
            let g = guest.unwrap_or_default();
            t.pass(match o.expect_exit {
                Expect::Nonzero => format!(
                    "the guest failed as expected (status {g}); failing checks: {}",
                    join(&failing)
                ),
                _ => format!("the guest exited {g} ({passed_checks} in-VM checks passed)"),
            });
        }
        Some(p) => t.fail(p),
    }

    let skipped = checks.iter().filter(|c| c.skip.is_some()).count();
    Report {
        variant: o.variant.clone(),
        suites,
        splats: found,
        verdict: guest,
        qemu_status: o.qemu_status,
        sections_without_tap: sections.iter().filter(|s| !s.tap.is_tap()).count(),
        sections,
        checks,
        oks: t.oks,
        problems: t.problems,
        passed: t.passed,
        failed: t.failed,
        skipped,
    }
}

/// `--expect-suite-failing NAME:CASE,...`: the failures are the planted
/// fault's, so they pass the run; anything else about the suite fails it.
fn expect_suite_failing(want: &SuiteFailing, s: &Suite, t: &mut Tally) {
    let failed: BTreeSet<&str> = s.failed().into_iter().collect();
    let wanted: BTreeSet<&str> = want.cases.iter().map(String::as_str).collect();
    let complete = s.finished && s.planned == Some(s.cases.len());
    if failed == wanted && complete {
        t.pass(format!(
            "KUnit suite {} failed as expected: {}",
            s.name,
            join(&failed)
        ));
        return;
    }
    let mut problem = format!(
        "KUnit suite {}: --expect-suite-failing wants exactly {} to fail",
        s.name,
        join(&wanted)
    );
    let missing: BTreeSet<&str> = wanted.difference(&failed).copied().collect();
    let extra: BTreeSet<&str> = failed.difference(&wanted).copied().collect();
    if !missing.is_empty() {
        problem += &format!("; passed or absent: {}", join(&missing));
    }
    if !extra.is_empty() {
        problem += &format!("; failed besides: {}", join(&extra));
    }
    if !complete {
        problem += &format!(
            "; the suite did not finish its plan ({} of {} reported)",
            s.cases.len(),
            s.planned.map_or("?".to_string(), |n| n.to_string())
        );
    }
    t.fail(problem);
}

/// `--require-suite NAME[=N]`.
fn require_suite(want: &SuiteRequirement, suites: &[Suite], t: &mut Tally) {
    let Some(s) = suites.iter().find(|s| s.name == want.name) else {
        t.fail(format!(
            "KUnit suite {} is missing from the log (is CONFIG_KUNIT and the suite's option on?)",
            want.name
        ));
        return;
    };
    let Some(n) = want.cases else {
        return;
    };
    if s.planned == Some(n) && s.cases.len() == n && s.passed() == n {
        t.pass(format!(
            "KUnit suite {}: the {n} test cases --require-suite {want} wants, all passed",
            s.name
        ));
    } else {
        t.fail(format!(
            "KUnit suite {}: --require-suite {want} wants {n} test cases, all passed; it planned {} and reported {}: {} passed, {} failed, {} skipped",
            s.name,
            s.planned.map_or("none".to_string(), |p| p.to_string()),
            s.cases.len(),
            s.passed(),
            s.failed().len(),
            s.skipped()
        ));
    }
}

/// The commands vm-init announced on the console (`vm-init: command N:
/// ARGV`), and whether each ended (`vm-init: command N exited ...`).
fn console_commands(console: &str) -> Vec<(usize, String, bool)> {
    let mut commands: Vec<(usize, String, bool)> = Vec::new();
    for line in console.lines().map(strip_printk_prefix) {
        let Some(rest) = line.trim().strip_prefix("vm-init: command ") else {
            continue;
        };
        let Some((n, rest)) = rest.split_once([':', ' ']) else {
            continue;
        };
        let Ok(n) = n.parse::<usize>() else {
            continue;
        };
        if line.trim().starts_with(&format!("vm-init: command {n}: ")) {
            commands.push((n, rest.trim().to_string(), false));
        } else if rest.starts_with("exited") {
            if let Some(c) = commands.iter_mut().find(|c| c.0 == n) {
                c.2 = true;
            }
        }
    }
    commands
}

/// Every command the console says ran has its section in the output, and
/// every command that ended has vm-init's closing line there: otherwise
/// the output port lost part of the output, and what is missing could be
/// anything.
fn commands_have_output(console: &str, sections: &[Section], t: &mut Tally) {
    for (n, argv, ended) in console_commands(console) {
        match sections.iter().find(|s| s.command == Some(n)) {
            None => t.fail(format!(
                "command {n} ({argv}) ran, the console says, but the output has no `# vm-init: command {n}:` line: the output port lost it (or the guest's /init is not this tree's vm-init)"
            )),
            Some(s) if ended && s.exited.is_none() => t.fail(format!(
                "{}: the command ended, the console says, but the output has no `# vm-init: command {n} exited` line: the output port lost the end of its output",
                s.label()
            )),
            Some(_) => {}
        }
    }
}

/// One section: vm-init's lines in it, its TAP stream whole, no skip.
fn judge_section(s: &Section, o: &Options, t: &mut Tally) {
    let label = s.label();
    for line in &s.vm_init_lines {
        t.fail(format!("{label}: {line}"));
    }
    if !s.tap.is_tap() {
        return;
    }
    let mut problems = s.tap.problems();
    if !o.allow_skip.contains(&s.tool) {
        let hint = format!(
            "a skipped check did not run (--allow-skip '{}' accepts it)",
            s.tool
        );
        for plan in &s.tap.plans {
            if plan.skip.is_some() {
                problems.push(format!("skipped all its checks (`{}`): {hint}", plan.line));
            }
        }
        for (i, r) in s.tap.results.iter().enumerate() {
            if let Some(skip) = &r.skip {
                let name = if r.name.is_empty() {
                    format!("result {}", i + 1)
                } else {
                    format!("check {}", r.name)
                };
                problems.push(format!(
                    "{name} skipped ({} {}): {hint}",
                    skip.directive, skip.reason
                ));
            }
        }
    }
    if problems.is_empty() {
        t.pass(format!(
            "{label}: all {} planned checks reported: {} passed, {} failed, {} skipped",
            s.tap.results.len(),
            s.tap.passed(),
            s.tap.failed(),
            s.tap.skipped()
        ));
    }
    for p in problems {
        t.fail(format!("{label}: {p}"));
    }
}

/// `--plan TOOL=N`: every section of TOOL plans N checks, and there is one.
fn require_plan(want: &PlanRequirement, sections: &[Section], have_output: bool, t: &mut Tally) {
    let (tool, n) = (&want.tool, want.checks);
    let of_tool: Vec<&Section> = sections.iter().filter(|s| s.tool == *tool).collect();
    if of_tool.is_empty() {
        let ran: Vec<&str> = sections
            .iter()
            .filter(|s| s.command.is_some())
            .map(|s| s.tool.as_str())
            .collect();
        t.fail(if have_output {
            format!(
                "--plan {tool}={n}: no command ran {tool}; the commands ran: {}",
                if ran.is_empty() {
                    "(none)".to_string()
                } else {
                    ran.join(", ")
                }
            )
        } else {
            format!("--plan {tool}={n}: no output to read (--output)")
        });
    }
    for s in of_tool {
        match s.tap.planned() {
            Some(p) if p == n => t.pass(format!(
                "{}: planned the {n} checks --plan {tool}={n} wants",
                s.label()
            )),
            Some(p) => t.fail(format!(
                "{}: planned {p} checks, but --plan {tool}={n} wants {n}",
                s.label()
            )),
            None if !s.tap.is_tap() => t.fail(format!(
                "{}: printed no TAP, but --plan {tool}={n} wants {n} checks",
                s.label()
            )),
            None => t.fail(format!(
                "{}: no single plan line (`1..N`), but --plan {tool}={n} wants {n} checks",
                s.label()
            )),
        }
    }
}

/// Why the guest's verdict is not the expected one, if it is not.
fn verdict_problem(
    o: &Options,
    guest: Option<i32>,
    console: &str,
    output: &str,
    failing: &BTreeSet<&str>,
) -> Option<String> {
    if o.timed_out {
        return Some(format!(
            "QEMU timed out after {} s; the console log ends with:\n{}",
            o.timeout,
            tail(console, 15)
        ));
    }
    let Some(g) = guest else {
        return Some(format!(
            "the guest gave no verdict (no `vm-init: exit status` line): the kernel panicked or init never ran; the console log ends with:\n{}",
            tail(console, 15)
        ));
    };
    if let Some(q) = o.qemu_status {
        if q != qemu_status_for(g) {
            return Some(format!(
                "QEMU exited with status {q}, but the guest reported {g} (QEMU should exit {})",
                qemu_status_for(g)
            ));
        }
    }
    let expected: BTreeSet<&str> = o
        .expect_failing
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect();
    match o.expect_exit {
        Expect::Zero if g != 0 => Some(format!(
            "the guest exited with status {g}; its output ends with:\n{}",
            tail(output, 15)
        )),
        Expect::Nonzero if g == 0 => Some("the guest exited 0, but it was expected to fail".into()),
        Expect::Nonzero if !expected.is_empty() => (*failing != expected).then(|| {
            format!(
                "the guest failed (status {g}), but not as expected:\n    expected to fail: {}\n    failed:           {}\n    unexpected:       {}\n    missing:          {}",
                join(&expected),
                join(failing),
                join(&failing.difference(&expected).copied().collect()),
                join(&expected.difference(failing).copied().collect()),
            )
        }),
        _ => None,
    }
}

fn join(set: &BTreeSet<&str>) -> String {
    if set.is_empty() {
        "(none)".into()
    } else {
        set.iter().copied().collect::<Vec<_>>().join(", ")
    }
}

/// The last `n` lines of `text`, indented for quoting.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    if lines.iter().all(|l| l.trim().is_empty()) {
        return "    (nothing)".into();
    }
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| format!("    | {}", strip_printk_prefix(l)))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The console log of a real boot of the mainline rust kernel that ran
    /// `validator --count 100 ;; dmabuf-stress security ;; validator
    /// --list-checks --exporter heap`, and its output port.
    const CONSOLE: &str = include_str!("../testdata/three-commands-console.log");
    const OUTPUT: &str = include_str!("../testdata/three-commands-output.txt");

    /// What the kselftest harness prints for the series' dmabuf-stat (cut
    /// down to four tests).
    const KSELFTEST: &str = "\
TAP version 13
1..4
# Starting 4 tests from 2 test cases.
#  RUN           dmabuf.udmabuf.st_ino_nonzero ...
#            OK  dmabuf.udmabuf.st_ino_nonzero
ok 1 dmabuf.udmabuf.st_ino_nonzero
#  RUN           dmabuf.udmabuf.st_ino_unique ...
# dmabuf-stat.c:485:st_ino_unique:Expected ino[i] (1) != ino[j] (1)
# st_ino_unique: Test terminated by assertion
#          FAIL  dmabuf.udmabuf.st_ino_unique
not ok 2 dmabuf.udmabuf.st_ino_unique
#  RUN           dmabuf.system_heap.st_ino_nonzero ...
#            OK  dmabuf.system_heap.st_ino_nonzero
ok 3 dmabuf.system_heap.st_ino_nonzero
#  RUN           dmabuf.system_heap.st_ino_unique ...
# dmabuf-stat.c:485:st_ino_unique:Expected ino[i] (1) != ino[j] (1)
# st_ino_unique: Test terminated by assertion
#          FAIL  dmabuf.system_heap.st_ino_unique
not ok 4 dmabuf.system_heap.st_ino_unique
# FAILED: 2 / 4 tests passed.
# Totals: pass:2 fail:2 xfail:0 xpass:0 skip:0 error:0
";

    /// The output of command `n` of the captured run, between vm-init's lines.
    fn body(n: usize) -> String {
        let start = format!("# vm-init: command {n}: ");
        let from = OUTPUT.find(&start).unwrap();
        let from = from + OUTPUT[from..].find('\n').unwrap() + 1;
        let to = from + OUTPUT[from..].find("# vm-init: command ").unwrap();
        OUTPUT[from..to].to_string()
    }

    /// The validator's output of the captured run with `failing` checks
    /// failed, as the negative control's output has them.
    fn validator_failing(failing: &[&str]) -> String {
        body(1)
            .lines()
            .map(|l| match l.split_once(" - ") {
                Some((ok, rest))
                    if ok.starts_with("ok ")
                        && failing.iter().any(|f| rest.starts_with(&format!("{f}:"))) =>
                {
                    format!("not {ok} - {rest}\n")
                }
                _ => format!("{l}\n"),
            })
            .collect()
    }

    /// The captured console up to vm-init's first line, then vm-init's lines
    /// for `commands` (ARGV, status), then the verdict, when there is one.
    fn console(commands: &[(&str, i32)], verdict: Option<i32>) -> String {
        let mut s = CONSOLE[..CONSOLE.find("vm-init: command 1:").unwrap()].to_string();
        for (i, (argv, status)) in commands.iter().enumerate() {
            let n = i + 1;
            s += &format!(
                "vm-init: command {n}: {argv}\r\n\r\nvm-init: command {n} exited with status {status}\r\n\r\n"
            );
        }
        if let Some(v) = verdict {
            s += &format!("vm-init: exit status {v}\r\n");
        }
        s
    }

    /// An output port holding `sections` (ARGV, output, exit) as vm-init
    /// frames them.
    fn output(sections: &[(&str, &str, &str)]) -> String {
        let mut s = String::new();
        for (i, (argv, body, exited)) in sections.iter().enumerate() {
            let n = i + 1;
            s += &format!(
                "# vm-init: command {n}: {argv}\n{body}# vm-init: command {n} exited {exited}\n"
            );
        }
        s
    }

    /// The options of ci/vm's runs: two CPUs, QEMU's status agreeing with
    /// the guest's `status`.
    fn options(status: i32) -> Options {
        Options {
            variant: "v7.3-rc7/rust".into(),
            qemu_status: Some(qemu_status_for(status)),
            timeout: 300,
            cpus: Some(2),
            ..Options::default()
        }
    }

    fn negative(status: i32, failing: &[&str]) -> Options {
        Options {
            expect_exit: Expect::Nonzero,
            expect_failing: failing.iter().map(|s| s.to_string()).collect(),
            ..options(status)
        }
    }

    /// Runs `judge` and returns its problems, each checked to be in the text.
    fn problems(console: &str, output: &str, o: &Options) -> Vec<String> {
        let r = judge(console, Some(output), o);
        let text = r.text();
        for p in &r.problems {
            assert!(text.contains(&format!("FAIL: v7.3-rc7/rust: {p}\n")));
        }
        assert!(text.ends_with(&format!(
            "boot-report: v7.3-rc7/rust: {} passed, {} failed\n",
            r.passed, r.failed
        )));
        assert_eq!(r.ok(), r.problems.is_empty());
        r.problems
    }

    /// `problems` for one expected problem, which must contain `want`.
    fn one_problem(console: &str, output: &str, o: &Options, want: &str) {
        let p = problems(console, output, o);
        assert_eq!(p.len(), 1, "{p:#?}");
        assert!(p[0].contains(want), "{}\n  does not contain\n{want}", p[0]);
    }

    #[test]
    fn a_real_run_passes() {
        let o = Options {
            require_suites: vec!["rust_doctests_kernel=358".parse().unwrap()],
            plans: vec!["dmabuf-stress security=4".parse().unwrap()],
            ..options(0)
        };
        let r = judge(CONSOLE, Some(OUTPUT), &o);
        assert!(r.ok(), "{:#?}", r.problems);
        assert_eq!(r.verdict, Some(0));
        assert_eq!(r.sections.len(), 3);
        // `validator --list-checks` prints no TAP: counted, not judged.
        assert_eq!(r.sections_without_tap, 1);
        assert_eq!((r.checks.len(), r.skipped), (69, 0));
        // 365 KUnit cases, 69 checks; the CPUs, no splat, two whole streams,
        // the suite's count, the plan, the verdict.
        assert_eq!((r.passed, r.failed), (365 + 69 + 7, 0));
        let text = r.text();
        assert!(text.contains("ok: v7.3-rc7/rust: validator (command 1): all 65 planned checks reported: 65 passed, 0 failed, 0 skipped\n"));
        assert!(text.contains("ok: v7.3-rc7/rust: the guest exited 0 (69 in-VM checks passed)\n"));
    }

    #[test]
    fn a_failed_check_fails_a_run_expected_to_pass() {
        let out = output(&[(
            "validator --count 100",
            &validator_failing(&["heap.st_size"]),
            "1",
        )]);
        let p = problems(
            &console(&[("validator --count 100", 1)], Some(1)),
            &out,
            &options(1),
        );
        assert_eq!(p.len(), 2, "{p:#?}");
        assert!(p[0].starts_with("in-VM check failed: validator (command 1): - heap.st_size: "));
        assert!(p[1].starts_with("the guest exited with status 1; its output ends with:\n"));
    }

    #[test]
    fn an_expected_kmemleak_report_is_required_and_passes() {
        let failing = ["heap.st_size"];
        let out = output(&[("validator --count 100", &validator_failing(&failing), "1")]);
        let leak = "kmemleak: 4 new suspected memory leaks (see /sys/kernel/debug/kmemleak)\n";
        let con = console(&[("validator --count 100", 1)], Some(1));
        let with_leak = format!("{leak}{con}");
        let expect = Options {
            expect_splats: vec!["kmemleak".into()],
            ..negative(1, &failing)
        };
        let r = judge(&with_leak, Some(&out), &expect);
        assert!(r.ok(), "{:#?}", r.problems);
        assert!(r.text().contains("the expected kmemleak report"));
        // Expected and absent: a failure.
        let p = problems(&con, &out, &expect);
        assert!(p.iter().any(|p| p.contains("no kmemleak report")), "{p:#?}");
        // Present and not expected: a failure, as before.
        let p = problems(&with_leak, &out, &negative(1, &failing));
        assert!(
            p.iter().any(|p| p.contains("kernel kmemleak report")),
            "{p:#?}"
        );
    }

    #[test]
    fn an_expected_failure_with_the_exact_set_passes() {
        let failing = ["udmabuf.st_ino_unique", "heap.st_ino_unique"];
        let out = output(&[("validator --count 100", &validator_failing(&failing), "1")]);
        let con = console(&[("validator --count 100", 1)], Some(1));
        let r = judge(&con, Some(&out), &negative(1, &failing));
        assert!(r.ok(), "{:#?}", r.problems);
        assert!(r.text().contains(
            "ok: v7.3-rc7/rust: the guest failed as expected (status 1); failing checks: heap.st_ino_unique, udmabuf.st_ino_unique\n"
        ));
    }

    #[test]
    fn extra_and_missing_failures_fail() {
        let out = output(&[(
            "validator --count 100",
            &validator_failing(&["udmabuf.st_ino_unique", "heap.st_ino_unique"]),
            "1",
        )]);
        let con = console(&[("validator --count 100", 1)], Some(1));
        one_problem(
            &con,
            &out,
            &negative(1, &["udmabuf.st_ino_unique", "udmabuf.st_size"]),
            "the guest failed (status 1), but not as expected:\n    \
             expected to fail: udmabuf.st_ino_unique, udmabuf.st_size\n    \
             failed:           heap.st_ino_unique, udmabuf.st_ino_unique\n    \
             unexpected:       heap.st_ino_unique\n    \
             missing:          udmabuf.st_size",
        );
        // A kernel expected to fail that passes.
        let out = output(&[("validator --count 100", &body(1), "0")]);
        one_problem(
            &console(&[("validator --count 100", 0)], Some(0)),
            &out,
            &negative(0, &["udmabuf.st_ino_unique"]),
            "the guest exited 0, but it was expected to fail",
        );
    }

    #[test]
    fn names_of_the_kselftest_and_the_validator_coexist() {
        let out = output(&[
            (
                "validator --count 100",
                &validator_failing(&["udmabuf.st_ino_unique", "heap.st_ino_unique"]),
                "1",
            ),
            ("dmabuf-stat", KSELFTEST, "1"),
        ]);
        let con = console(&[("validator --count 100", 1), ("dmabuf-stat", 1)], Some(1));
        let all = [
            "udmabuf.st_ino_unique",
            "heap.st_ino_unique",
            "dmabuf.udmabuf.st_ino_unique",
            "dmabuf.system_heap.st_ino_unique",
        ];
        let o = Options {
            plans: vec![
                "validator=65".parse().unwrap(),
                "dmabuf-stat=4".parse().unwrap(),
            ],
            ..negative(1, &all)
        };
        let r = judge(&con, Some(&out), &o);
        assert!(r.ok(), "{:#?}", r.problems);
        // Without the kselftest's names the set is not the one expected.
        one_problem(
            &con,
            &out,
            &negative(1, &all[..2]),
            "unexpected:       dmabuf.system_heap.st_ino_unique, dmabuf.udmabuf.st_ino_unique",
        );
    }

    #[test]
    fn a_timeout_fails() {
        // QEMU killed while the validator ran: no verdict, the stream cut.
        let cut = body(1)[..body(1).find("ok 41 ").unwrap()].to_string();
        let mut out = output(&[("validator --count 100", &cut, "0")]);
        out.truncate(out.find("# vm-init: command 1 exited").unwrap());
        let mut con = console(&[], None);
        con += "vm-init: command 1: validator --count 100\r\n";
        let o = Options {
            timed_out: true,
            qemu_status: Some(124),
            ..options(0)
        };
        let p = problems(&con, &out, &o);
        assert_eq!(p.len(), 2, "{p:#?}");
        assert!(p[0].starts_with(
            "validator (command 1): planned 65 checks but reported 40: the run stopped early (the last: `ok 40 - "
        ));
        assert!(p[1].starts_with("QEMU timed out after 300 s; the console log ends with:\n"));
        assert!(p[1].ends_with("    | vm-init: command 1: validator --count 100"));
    }

    #[test]
    fn no_verdict_fails() {
        let con = format!(
            "{}Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b\r\n",
            console(&[], None)
        );
        let p = problems(&con, "", &options(0));
        assert_eq!(p.len(), 2, "{p:#?}");
        assert!(p[0].starts_with("kernel panic report:\n    | Kernel panic - not syncing"));
        assert!(p[1].starts_with("the guest gave no verdict (no `vm-init: exit status` line)"));
    }

    #[test]
    fn qemu_disagreeing_with_the_guest_fails() {
        let out = output(&[("validator --count 100", &body(1), "0")]);
        let o = Options {
            qemu_status: Some(3),
            ..options(0)
        };
        one_problem(
            &console(&[("validator --count 100", 0)], Some(0)),
            &out,
            &o,
            "QEMU exited with status 3, but the guest reported 0 (QEMU should exit 1)",
        );
    }

    #[test]
    fn a_plan_shorter_than_the_results_fails() {
        let out = output(&[(
            "validator --count 100",
            &body(1).replacen("1..65\n", "1..63\n", 1),
            "0",
        )]);
        one_problem(
            &console(&[("validator --count 100", 0)], Some(0)),
            &out,
            &options(0),
            "validator (command 1): planned 63 checks but reported 65",
        );
    }

    #[test]
    fn results_without_a_plan_fail_even_when_expected_to_fail() {
        // dmabuf-stress prints its plan last: cut before it, as when the
        // output port loses the end, the stream has results and no plan.
        let b = body(2);
        let cut = &b[..b.find("1..4").unwrap()];
        let out = output(&[("dmabuf-stress security", cut, "1")]);
        let con = console(&[("dmabuf-stress security", 1)], Some(1));
        one_problem(
            &con,
            &out,
            &negative(1, &[]),
            "dmabuf-stress security (command 1): 4 results but no plan line `1..N`: the stream was cut short (the last: `ok 4 - security.heap.own_buffer`)",
        );
    }

    #[test]
    fn a_truncated_run_does_not_fail_as_expected() {
        // The expected checks failed, then the validator stopped.
        let failing = ["udmabuf.st_ino_unique"];
        let full = validator_failing(&failing);
        let cut = &full[..full.find("ok 41 ").unwrap()];
        let out = output(&[("validator --count 100", cut, "signal 9")]);
        let con = console(&[("validator --count 100", 137)], Some(137));
        one_problem(
            &con,
            &out,
            &negative(137, &failing),
            "validator (command 1): planned 65 checks but reported 40: the run stopped early",
        );
    }

    #[test]
    fn a_bail_out_fails() {
        let bail = "TAP version 14\nBail out! the validator cannot run here: /dev/udmabuf: No such file or directory (needs CONFIG_UDMABUF=y)\nvalidator: /dev/udmabuf: No such file or directory (needs CONFIG_UDMABUF=y)\n";
        let out = output(&[("validator --count 100", bail, "2")]);
        let con = console(&[("validator --count 100", 2)], Some(2));
        one_problem(
            &con,
            &out,
            &negative(2, &[]),
            "validator (command 1): bailed out: `Bail out! the validator cannot run here: /dev/udmabuf: No such file or directory (needs CONFIG_UDMABUF=y)`",
        );
    }

    #[test]
    fn a_skip_fails_unless_allowed() {
        let skipping = KSELFTEST
            .replace(
                "ok 1 dmabuf.udmabuf.st_ino_nonzero",
                "ok 1 dmabuf.udmabuf.st_ino_nonzero # SKIP /dev/udmabuf: No such file or directory (needs CONFIG_UDMABUF=y)",
            )
            .replace("not ok 2", "ok 2")
            .replace("not ok 4", "ok 4");
        let out = output(&[("dmabuf-stat", &skipping, "0")]);
        let con = console(&[("dmabuf-stat", 0)], Some(0));
        one_problem(
            &con,
            &out,
            &options(0),
            "dmabuf-stat (command 1): check dmabuf.udmabuf.st_ino_nonzero skipped (SKIP /dev/udmabuf: No such file or directory (needs CONFIG_UDMABUF=y)): a skipped check did not run (--allow-skip 'dmabuf-stat' accepts it)",
        );
        let o = Options {
            allow_skip: vec!["dmabuf-stat".into()],
            ..options(0)
        };
        let r = judge(&con, Some(&out), &o);
        assert!(r.ok(), "{:#?}", r.problems);
        // Skipped, never passed.
        assert_eq!(r.skipped, 1);
        assert!(r.text().contains("ok: v7.3-rc7/rust: dmabuf-stat (command 1): all 4 planned checks reported: 3 passed, 0 failed, 1 skipped\n"));
        assert!(r
            .text()
            .contains("the guest exited 0 (3 in-VM checks passed)"));
        // Allowing another tool's skips does not allow these.
        let o = Options {
            allow_skip: vec!["validator".into()],
            ..options(0)
        };
        assert_eq!(problems(&con, &out, &o).len(), 1);
    }

    #[test]
    fn a_tool_that_skips_everything_fails() {
        let out = output(&[(
            "dmabuf-stat",
            "TAP version 13\n1..0 # SKIP /dev/dma_heap/system: No such file or directory\n",
            "4",
        )]);
        let con = console(&[("dmabuf-stat", 4)], Some(4));
        one_problem(
            &con,
            &out,
            &Options {
                expect_exit: Expect::Any,
                ..options(4)
            },
            "dmabuf-stat (command 1): skipped all its checks (`1..0 # SKIP /dev/dma_heap/system: No such file or directory`): a skipped check did not run",
        );
    }

    #[test]
    fn a_plan_other_than_the_one_required_fails() {
        let out = output(&[("validator --count 100", &body(1), "0")]);
        let con = console(&[("validator --count 100", 0)], Some(0));
        let o = Options {
            plans: vec!["validator=66".parse().unwrap()],
            ..options(0)
        };
        one_problem(
            &con,
            &out,
            &o,
            "validator (command 1): planned 65 checks, but --plan validator=66 wants 66",
        );
        let o = Options {
            plans: vec!["dmabuf-stress fail-nth=12".parse().unwrap()],
            ..options(0)
        };
        one_problem(
            &con,
            &out,
            &o,
            "--plan dmabuf-stress fail-nth=12: no command ran dmabuf-stress fail-nth; the commands ran: validator",
        );
        // Every section of the tool: `validator --list-checks` prints no TAP.
        let o = Options {
            plans: vec!["validator=65".parse().unwrap()],
            ..options(0)
        };
        one_problem(
            CONSOLE,
            OUTPUT,
            &o,
            "validator (command 3): printed no TAP, but --plan validator=65 wants 65 checks",
        );
    }

    /// The console with a KUnit suite `rust_dma_buf` of these cases added.
    fn with_suite(console: &str, cases: &[(&str, bool)]) -> String {
        let mut suite = format!(
            "    KTAP version 1\r\n    # Subtest: rust_dma_buf\r\n    # speed: normal\r\n    1..{}\r\n",
            cases.len()
        );
        for (i, (name, ok)) in cases.iter().enumerate() {
            let not = if *ok { "" } else { "not " };
            suite += &format!("    {not}ok {} {name}\r\n", i + 1);
        }
        let not = if cases.iter().all(|c| c.1) {
            ""
        } else {
            "not "
        };
        suite += &format!("{not}ok 9 rust_dma_buf\r\n");
        let at = console.find("vm-init: command 1:").unwrap();
        format!("{}{suite}{}", &console[..at], &console[at..])
    }

    #[test]
    fn a_suite_expected_to_fail_must_fail_exactly_those_cases() {
        let out = output(&[("validator --count 100", &body(1), "0")]);
        let con = console(&[("validator --count 100", 0)], Some(0));
        let cases = [("a", false), ("b", true), ("c", false)];
        let failing = |spec: &str| Options {
            expect_suites_failing: vec![spec.parse().unwrap()],
            ..options(0)
        };
        // Unexpected, the failures fail the run.
        one_problem(
            &with_suite(&con, &cases),
            &out,
            &options(0),
            "KUnit suite rust_dma_buf: 2 of 3 test cases failed: a, c",
        );
        // Expected exactly, they pass it.
        let p = problems(
            &with_suite(&con, &cases),
            &out,
            &failing("rust_dma_buf:a,c"),
        );
        assert!(p.is_empty(), "{p:#?}");
        // One that passed although expected to fail, or one failing besides.
        one_problem(
            &with_suite(&con, &cases),
            &out,
            &failing("rust_dma_buf:a,b,c"),
            "wants exactly a, b, c to fail; passed or absent: b",
        );
        one_problem(
            &with_suite(&con, &cases),
            &out,
            &failing("rust_dma_buf:a"),
            "wants exactly a to fail; failed besides: c",
        );
        // A suite that passes, or is not there, does not fail as expected.
        one_problem(
            &with_suite(&con, &[("a", true)]),
            &out,
            &failing("rust_dma_buf:a"),
            "passed or absent: a",
        );
        one_problem(
            &con,
            &out,
            &failing("rust_dma_buf:a"),
            "KUnit suite rust_dma_buf is missing from the log",
        );
        assert!("rust_dma_buf".parse::<SuiteFailing>().is_err());
        assert!("rust_dma_buf:".parse::<SuiteFailing>().is_err());
    }

    #[test]
    fn a_suite_with_another_count_fails() {
        let out = output(&[("validator --count 100", &body(1), "0")]);
        let con = console(&[("validator --count 100", 0)], Some(0));
        let o = Options {
            require_suites: vec!["rust_doctests_kernel=118".parse().unwrap()],
            ..options(0)
        };
        one_problem(
            &con,
            &out,
            &o,
            "KUnit suite rust_doctests_kernel: --require-suite rust_doctests_kernel=118 wants 118 test cases, all passed; it planned 358 and reported 358: 358 passed, 0 failed, 0 skipped",
        );
        let o = Options {
            require_suites: vec![
                "rust_doctests_kernel".parse().unwrap(),
                "kunit_x".parse().unwrap(),
            ],
            ..options(0)
        };
        one_problem(
            &con,
            &out,
            &o,
            "KUnit suite kunit_x is missing from the log",
        );
    }

    #[test]
    fn a_missing_output_port_fails_even_when_expected_to_fail() {
        let con = format!(
            "{}vm-init: cannot open /dev/ttyS1 (Input/output error (os error 5)): the commands' output has nowhere to go\r\n\r\nvm-init: exit status 125\r\n",
            console(&[], None)
        );
        for o in [options(125), negative(125, &[])] {
            let p = problems(&con, "", &o);
            assert!(
                p[0] == "the guest's init failed: vm-init: cannot open /dev/ttyS1 (Input/output error (os error 5)): the commands' output has nowhere to go",
                "{p:#?}"
            );
            assert_eq!(p.len(), if o.expect_exit == Expect::Zero { 2 } else { 1 });
        }
    }

    #[test]
    fn an_output_port_without_a_uart_fails() {
        // A real boot with one -serial only: /dev/ttyS1 opens, but takes
        // nothing.
        const NO_PORT: &str = include_str!("../testdata/no-output-port-console.log");
        let p = problems(NO_PORT, "", &negative(125, &[]));
        assert_eq!(
            p,
            ["the guest's init failed: vm-init: cannot write to /dev/ttyS1 (Input/output error (os error 5)): the commands' output has nowhere to go"]
        );
        assert_eq!(problems(NO_PORT, "", &options(125)).len(), 2);
    }

    #[test]
    fn output_lost_by_the_port_fails() {
        let con = console(
            &[("validator --count 100", 0), ("dmabuf-stress security", 0)],
            Some(0),
        );
        // The second command's section is missing.
        let out = output(&[("validator --count 100", &body(1), "0")]);
        one_problem(
            &con,
            &out,
            &options(0),
            "command 2 (dmabuf-stress security) ran, the console says, but the output has no `# vm-init: command 2:` line",
        );
        // Its end is missing.
        let mut out = output(&[
            ("validator --count 100", &body(1), "0"),
            ("dmabuf-stress security", &body(2), "0"),
        ]);
        out.truncate(out.find("# vm-init: command 2 exited").unwrap());
        one_problem(
            &con,
            &out,
            &options(0),
            "dmabuf-stress security (command 2): the command ended, the console says, but the output has no `# vm-init: command 2 exited` line",
        );
    }

    #[test]
    fn a_command_that_cannot_run_fails() {
        let out = output(&[(
            "lsdmabuf-vmtest",
            "vm-init: cannot run /bin/lsdmabuf-vmtest: ENOENT: No such file or directory\n",
            "127",
        )]);
        let con = console(&[("lsdmabuf-vmtest", 127)], Some(127));
        one_problem(
            &con,
            &out,
            &negative(127, &[]),
            "lsdmabuf-vmtest (command 1): vm-init: cannot run /bin/lsdmabuf-vmtest: ENOENT",
        );
    }

    #[test]
    fn parses_requirements() {
        assert_eq!(
            "rust_doctests_kernel=118".parse(),
            Ok(SuiteRequirement {
                name: "rust_doctests_kernel".into(),
                cases: Some(118)
            })
        );
        assert_eq!(
            "rust_doctests_kernel"
                .parse::<SuiteRequirement>()
                .unwrap()
                .cases,
            None
        );
        assert!("x=many".parse::<SuiteRequirement>().is_err());
        assert_eq!(
            "dmabuf-stress fail-nth=12".parse(),
            Ok(PlanRequirement {
                tool: "dmabuf-stress fail-nth".into(),
                checks: 12
            })
        );
        assert!("validator".parse::<PlanRequirement>().is_err());
        assert!("=3".parse::<PlanRequirement>().is_err());
    }
}
