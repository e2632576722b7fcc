// SPDX-License-Identifier: GPL-2.0
//! `boot-report`: turns one test VM run into a verdict.
//!
//! Reads the serial console log and the commands' output and prints what
//! [`boot_report::judge::judge`] finds; the verdict logic lives in the
//! library, where it is tested.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use boot_report::judge::{judge, Expect, Options, PlanRequirement, SuiteFailing, SuiteRequirement};
use clap::Parser;

/// Judges one test VM run: reads the serial console log and the commands'
/// output, prints `ok:` and `FAIL:` lines and `boot-report: VARIANT: P
/// passed, F failed`, and exits 0 only when nothing failed.
///
/// The run fails, quoting the offending lines, when: a KUnit test case
/// failed or a suite did not finish; a required suite is missing (or, with
/// NAME=N, does not have exactly N test cases, all passed); the kernel
/// printed an Oops, BUG, WARNING, KASAN, lockdep, kmemleak or panic report;
/// the kernel brought up fewer CPUs than QEMU gave it; QEMU timed out; the
/// guest gave no verdict, or QEMU's status disagrees with it; vm-init could
/// not set the guest up (no /dev/ttyS1, for one) or start a command; the
/// guest's exit status is not the one expected.
///
/// The output is cut into one section per command at vm-init's lines
/// `# vm-init: command N: ARGV` and `# vm-init: command N exited S`. The
/// tool of a section is the basename of argv[0], followed by a space and
/// argv[1] when that is a subcommand: a word of a letter, then letters,
/// digits, `-` or `_` (`validator --count 100` is `validator`,
/// `dmabuf-stress fail-nth` is `dmabuf-stress fail-nth`, `dmabuf-stat -v
/// udmabuf` is `dmabuf-stat`). --plan and --allow-skip name tools so.
///
/// Each section's TAP stream must be whole, on a run expected to fail too:
/// one plan line `1..N`, before the first result or after the last, exactly
/// N top-level `ok`/`not ok` results, numbered 1 to N in order where
/// numbered, none after a closing plan, and no `Bail out!`. A section with
/// no TAP at all (no `TAP version` line, no plan, no result) is not judged:
/// that tool prints none. A result with a `# SKIP` or `# TODO` directive
/// (any case) is skipped, never passed, and fails the run unless
/// --allow-skip names its tool: in the project's VM every exporter is
/// there, so a skip means a check did not run.
///
/// A check's name is the first word of its result's description, without
/// a leading `- ` or a trailing `:`: `ok 3 - udmabuf.st_size: ...` (the
/// validator) names `udmabuf.st_size`, `not ok 4 dmabuf.udmabuf.st_blocks`
/// (the kselftest harness) `dmabuf.udmabuf.st_blocks`.
#[derive(Parser)]
#[command(about, long_about, max_term_width = 100)]
struct Args {
    /// The kernel variant that ran, named in every message.
    #[arg(long)]
    variant: String,
    /// The serial console log (kernel messages and vm-init's lines).
    #[arg(long)]
    console: PathBuf,
    /// The commands' output (the guest's second serial port): vm-init's
    /// sections, each a TAP stream or no TAP at all.
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
    /// A KUnit suite that must be present and pass; with NAME=N, with
    /// exactly N test cases, all passed. May repeat.
    #[arg(long = "require-suite", value_name = "NAME[=N]")]
    require_suites: Vec<SuiteRequirement>,
    /// A KUnit suite that must finish with exactly these test cases failing
    /// and the others passed: a fault planted in what it tests. May repeat.
    #[arg(long = "expect-suite-failing", value_name = "NAME:CASE,...")]
    expect_suites_failing: Vec<SuiteFailing>,
    /// The output of TOOL must be there and plan exactly N checks, so that
    /// a tool that silently runs fewer fails. Every section of TOOL must.
    /// May repeat.
    #[arg(long = "plan", value_name = "TOOL=N")]
    plans: Vec<PlanRequirement>,
    /// Skipped checks (`# SKIP`, `# TODO`) of TOOL do not fail the run; they
    /// are counted as skipped, never as passed. May repeat.
    #[arg(long = "allow-skip", value_name = "TOOL")]
    allow_skip: Vec<String>,
    /// A kind of kernel report (kmemleak, KASAN, ...) that the run must print, as a planted
    /// bug's run must; it does not fail the run then. May repeat.
    #[arg(long = "expect-splat", value_name = "KIND")]
    expect_splats: Vec<String>,
    /// What the guest's exit status must be.
    #[arg(long, value_enum, default_value_t = Expect::Zero)]
    expect_exit: Expect,
    /// With --expect-exit nonzero: the exact set of in-VM checks that must
    /// fail, comma-separated, of whichever tools. Any other failing check,
    /// or one of these passing, makes the run a failure.
    #[arg(long, value_delimiter = ',', value_name = "CHECK,...")]
    expect_failing: Vec<String>,
    /// The CPUs QEMU was given: the kernel must bring up as many.
    #[arg(long)]
    cpus: Option<u32>,
    /// Write the report as JSON to this file too.
    #[arg(long)]
    json: Option<PathBuf>,
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

fn read(path: &Path) -> Result<String> {
    let raw = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(String::from_utf8_lossy(&raw).into_owned())
}

fn run() -> Result<bool> {
    let args = Args::parse();
    let console = read(&args.console)?;
    let output = args.output.as_deref().map(read).transpose()?;
    let options = Options {
        variant: args.variant,
        qemu_status: args.qemu_status,
        timed_out: args.timed_out,
        timeout: args.timeout,
        require_suites: args.require_suites,
        expect_suites_failing: args.expect_suites_failing,
        expect_exit: args.expect_exit,
        expect_failing: args.expect_failing,
        cpus: args.cpus,
        plans: args.plans,
        allow_skip: args.allow_skip,
        expect_splats: args.expect_splats,
    };
    let report = judge(&console, output.as_deref(), &options);
    print!("{}", report.text());
    if let Some(path) = &args.json {
        fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(report.ok())
}
