// SPDX-License-Identifier: GPL-2.0
//! `boot-report`: turns one test VM run into a verdict.
//!
//! Reads the serial console log (and the commands' output, when saved apart)
//! and fails, quoting the offending lines, when: a KUnit test case failed or
//! a suite did not finish, a required suite is missing, the kernel printed an
//! Oops, BUG, WARNING, KASAN, lockdep, kmemleak or panic report, QEMU timed
//! out, the guest gave no verdict, or the guest's exit status is not the one
//! expected.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result};
use boot_report::{kunit_suites, qemu_status_for, splats, tap_results, verdict};
use clap::{Parser, ValueEnum};
use serde::Serialize;

#[derive(Parser)]
#[command(about, long_about = None)]
struct Args {
    /// The kernel variant that ran, named in every message.
    #[arg(long)]
    variant: String,
    /// The serial console log (kernel messages and vm-init's lines).
    #[arg(long)]
    console: PathBuf,
    /// The commands' output (the guest's second serial port), a TAP stream.
    #[arg(long)]
    output: Option<PathBuf>,
    /// QEMU's exit status.
    #[arg(long)]
    qemu_status: Option<i32>,
    /// QEMU was killed by the host's timeout.
    #[arg(long)]
    timed_out: bool,
    /// The timeout, in seconds, for the message when it struck.
    #[arg(long, default_value_t = 0)]
    timeout: u64,
    /// A KUnit suite that must be present (and pass); may repeat.
    #[arg(long = "require-suite")]
    require_suites: Vec<String>,
    /// What the guest's exit status must be.
    #[arg(long, value_enum, default_value_t = Expect::Zero)]
    expect_exit: Expect,
    /// With --expect-exit nonzero: the exact set of TAP checks that must
    /// fail, comma-separated. Any other result makes the run a failure.
    #[arg(long, value_delimiter = ',')]
    expect_failing: Vec<String>,
    /// The CPUs QEMU was given: the kernel must bring up as many.
    #[arg(long)]
    cpus: Option<u32>,
    /// Write the report as JSON to this file too.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
enum Expect {
    Zero,
    Nonzero,
    Any,
}

#[derive(Serialize)]
struct Report {
    variant: String,
    suites: Vec<boot_report::Suite>,
    splats: Vec<boot_report::Splat>,
    verdict: Option<i32>,
    qemu_status: Option<i32>,
    checks: Vec<boot_report::TapResult>,
    problems: Vec<String>,
    passed: usize,
    failed: usize,
}

fn main() {
    match run() {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("boot-report: error: {e:#}");
            std::process::exit(2);
        }
    }
}

fn run() -> Result<bool> {
    let args = Args::parse();
    let v = &args.variant;
    let console =
        fs::read(&args.console).with_context(|| format!("reading {}", args.console.display()))?;
    let console = String::from_utf8_lossy(&console);
    let output = match &args.output {
        Some(p) => {
            let raw = fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            String::from_utf8_lossy(&raw).into_owned()
        }
        None => String::new(),
    };

    let mut problems = Vec::new();
    let (mut passed, mut failed) = (0, 0);

    // KUnit, the kernel crate's doctests among it.
    let suites = kunit_suites(&console);
    for s in &suites {
        let unreported = s
            .planned
            .unwrap_or(s.cases.len())
            .saturating_sub(s.cases.len());
        passed += s.passed();
        failed += s.failed().len() + unreported;
        match s.problem() {
            Some(p) => problems.push(p),
            None => println!(
                "ok: {v}: KUnit suite {}: {} passed, {} skipped",
                s.name,
                s.passed(),
                s.skipped()
            ),
        }
    }
    for want in &args.require_suites {
        if !suites.iter().any(|s| &s.name == want) {
            failed += 1;
            problems.push(format!("KUnit suite {want} is missing from the log (is CONFIG_KUNIT and the suite's option on?)"));
        }
    }

    // Every CPU QEMU was given, brought up: concurrency tests on one CPU
    // would only interleave, never run in parallel.
    if let Some(want) = args.cpus {
        match boot_report::cpus_brought_up(&console) {
            Some(n) if n == want => {
                passed += 1;
                println!("ok: {v}: {n} CPUs brought up");
            }
            n => {
                failed += 1;
                problems.push(format!(
                    "QEMU gave the guest {want} CPUs, but the kernel brought up {}: is CONFIG_ACPI on (QEMU's MP table names the boot CPU only)?",
                    n.map_or("no secondary CPU (no `smp: Brought up` line)".to_string(), |n| n.to_string())
                ));
            }
        }
    }

    // Kernel reports.
    let found = splats(&console);
    if found.is_empty() {
        passed += 1;
        println!("ok: {v}: no Oops, BUG, WARNING, KASAN, lockdep, kmemleak or panic report");
    } else {
        failed += 1;
        for s in &found {
            let quote: Vec<String> = s.lines.iter().map(|l| format!("    | {l}")).collect();
            problems.push(format!("kernel {} report:\n{}", s.kind, quote.join("\n")));
        }
    }

    // In-VM checks: each one counts, except on a kernel expected to fail,
    // where the one thing that counts is that it fails as expected.
    let checks = tap_results(&output);
    let failing: BTreeSet<&str> = checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| check_name(&c.name))
        .collect();
    if args.expect_exit != Expect::Nonzero {
        passed += checks.iter().filter(|c| c.ok).count();
        failed += failing.len();
        for c in checks.iter().filter(|c| !c.ok) {
            problems.push(format!("in-VM check failed: {}", c.name));
        }
    }

    // The guest's verdict: present, agreed by QEMU, and as expected.
    let guest = verdict(&console);
    match verdict_problem(&args, guest, &console, &output, &failing) {
        None => {
            passed += 1;
            let g = guest.unwrap_or_default();
            match args.expect_exit {
                Expect::Nonzero => println!(
                    "ok: {v}: the guest failed as expected (status {g}); failing checks: {}",
                    join(&failing)
                ),
                _ => println!(
                    "ok: {v}: the guest exited {g} ({} in-VM checks passed)",
                    checks.iter().filter(|c| c.ok).count()
                ),
            }
        }
        Some(p) => {
            failed += 1;
            problems.push(p);
        }
    }

    for p in &problems {
        println!("FAIL: {v}: {p}");
    }
    println!("boot-report: {v}: {passed} passed, {failed} failed");

    let ok = problems.is_empty();
    if let Some(path) = &args.json {
        let report = Report {
            variant: v.clone(),
            suites,
            splats: found,
            verdict: guest,
            qemu_status: args.qemu_status,
            checks,
            problems,
            passed,
            failed,
        };
        fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ok)
}

/// Why the guest's verdict is not the expected one, if it is not.
fn verdict_problem(
    args: &Args,
    guest: Option<i32>,
    console: &str,
    output: &str,
    failing: &BTreeSet<&str>,
) -> Option<String> {
    if args.timed_out {
        return Some(format!(
            "QEMU timed out after {} s; the console log ends with:\n{}",
            args.timeout,
            tail(console, 15)
        ));
    }
    let Some(g) = guest else {
        return Some(format!(
            "the guest gave no verdict (no `vm-init: exit status` line): the kernel panicked or init never ran; the console log ends with:\n{}",
            tail(console, 15)
        ));
    };
    if let Some(q) = args.qemu_status {
        if q != qemu_status_for(g) {
            return Some(format!(
                "QEMU exited with status {q}, but the guest reported {g} (QEMU should exit {})",
                qemu_status_for(g)
            ));
        }
    }
    match args.expect_exit {
        Expect::Zero if g != 0 => Some(format!(
            "the guest exited with status {g}; its output ends with:\n{}",
            tail(output, 15)
        )),
        Expect::Nonzero if g == 0 => Some("the guest exited 0, but it was expected to fail".into()),
        Expect::Nonzero if !args.expect_failing.is_empty() => {
            let expected: BTreeSet<&str> = args.expect_failing.iter().map(String::as_str).collect();
            (*failing != expected).then(|| {
                format!(
                    "the guest failed (status {g}), but not as expected:\n    expected to fail: {}\n    failed:           {}\n    unexpected:       {}\n    missing:          {}",
                    join(&expected),
                    join(failing),
                    join(&failing.difference(&expected).copied().collect()),
                    join(&expected.difference(failing).copied().collect()),
                )
            })
        }
        _ => None,
    }
}

/// The name of a TAP check: the first word of its description, without the
/// leading `- ` and a trailing `:` (`ok 3 - udmabuf.st_size: ...`).
fn check_name(desc: &str) -> &str {
    let word = desc
        .strip_prefix("- ")
        .unwrap_or(desc)
        .split_whitespace()
        .next()
        .unwrap_or("");
    word.strip_suffix(':').unwrap_or(word)
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
        .map(|l| format!("    | {}", boot_report::strip_printk_prefix(l)))
        .collect::<Vec<_>>()
        .join("\n")
}
