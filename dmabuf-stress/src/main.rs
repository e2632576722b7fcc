// SPDX-License-Identifier: GPL-2.0
//! dmabuf-stress: dma-bufs under systematic fault injection, under
//! concurrent stress, and against an unprivileged observer. Runs in the
//! test VM as root; prints TAP ending in `N passed, N failed` and exits 0
//! only when every check passed.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

mod common;
mod fail_nth;
mod security;
mod stress;

use common::{Listed, Which};
use dmabuf_testkit::tap::{self, Tap};

/// dma-bufs under systematic fault injection, concurrent stress and an
/// unprivileged observer.
///
/// Runs as root in the test VM (`ci/vm run KERNEL -- dmabuf-stress run`);
/// each subcommand prints TAP, its plan first, and exits 0 only when every
/// check passed, 1 when one failed, 2 when it cannot run. `--list-checks`
/// names the checks: `dmabuf-stress --list-checks` every one, with the
/// subcommand that runs it; `dmabuf-stress SUBCOMMAND [OPTIONS]
/// --list-checks` those that run plans, one per line, so that `wc -l` is
/// its plan.
#[derive(Parser)]
#[command(version, about, long_about, max_term_width = 100)]
struct Cli {
    /// List every check of every subcommand (with its default options), one
    /// per line: name, subcommand, what passing proves; and exit.
    #[arg(long)]
    list_checks: bool,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Fail the 1st, 2nd, ... allocation of export, DMA_BUF_SET_NAME, dup,
    /// mmap and close (/proc/thread-self/fail-nth) until none is left:
    /// each must succeed or fail cleanly and leave nothing behind, and
    /// every sweep must inject a fault; then the slab caches must be back
    /// to their baseline and kmemleak must find nothing. Needs the debug
    /// kernels' fault injection and kmemleak.
    FailNth {
        #[arg(long, value_enum, default_value_t = Which::All)]
        exporter: Which,
        /// Sweeps over every call after the first (which only warms up).
        /// The slab baseline tolerates one object less than this per cache.
        #[arg(long, default_value_t = fail_nth::DEFAULT_ROUNDS)]
        rounds: u32,
        /// List the checks this run plans (name, what passing proves) and
        /// exit.
        #[arg(long)]
        list_checks: bool,
    },
    /// THREADS threads doing OPS operations each (export, name, dup, mmap,
    /// close) while two more read /proc/self/fd, fdinfo, maps and bufinfo:
    /// no error, no two live buffers with one st_ino, every buffer
    /// released, memory back to its baseline.
    Run {
        #[arg(long, default_value_t = 8)]
        threads: u64,
        #[arg(long, default_value_t = 100_000)]
        ops: u64,
        /// Seed of the operation mix.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// List the checks this run plans (name, what passing proves) and
        /// exit.
        #[arg(long)]
        list_checks: bool,
    },
    /// As root, make dma-bufs; as uid 65534, try procfs on them: refused as
    /// for any file of root's, and a dma-buf the unprivileged process holds
    /// itself looks as usual.
    Security {
        /// List the checks this run plans (name, what passing proves) and
        /// exit.
        #[arg(long)]
        list_checks: bool,
    },
    /// The unprivileged half of `security` (run by it).
    #[command(hide = true)]
    SecurityProbe {
        #[arg(long)]
        pid: i32,
        #[arg(long)]
        targets: String,
        #[arg(long = "own")]
        own: Vec<String>,
    },
}

impl Command {
    /// The subcommand's name on the command line.
    fn name(&self) -> &'static str {
        match self {
            Command::FailNth { .. } => "fail-nth",
            Command::Run { .. } => "run",
            Command::Security { .. } => "security",
            Command::SecurityProbe { .. } => "security-probe",
        }
    }

    /// The checks it runs, with its options, in the order it reports them.
    fn checks(&self) -> Vec<Listed> {
        match self {
            Command::FailNth { exporter, .. } => fail_nth::checks(*exporter),
            Command::Run { .. } => stress::checks(),
            Command::Security { .. } => security::checks(),
            Command::SecurityProbe { .. } => Vec::new(),
        }
    }

    fn list_checks(&self) -> bool {
        match self {
            Command::FailNth { list_checks, .. }
            | Command::Run { list_checks, .. }
            | Command::Security { list_checks } => *list_checks,
            Command::SecurityProbe { .. } => false,
        }
    }
}

/// Every check of every subcommand, with its default options: name,
/// subcommand, description.
fn all_checks() -> Vec<[String; 3]> {
    let defaults = ["fail-nth", "run", "security"];
    defaults
        .iter()
        .flat_map(|sub| {
            let cmd = Cli::parse_from(["dmabuf-stress", sub])
                .command
                .expect("a subcommand was given");
            cmd.checks()
                .into_iter()
                .map(move |c| [c.name, sub.to_string(), c.about])
        })
        .collect()
}

fn list(rows: &[impl AsRef<[String]>]) -> Result<()> {
    tap::print(&tap::listing(rows)).context("writing the list of checks")
}

fn main_() -> Result<bool> {
    let cli = Cli::parse();
    let Some(cmd) = cli.command else {
        if cli.list_checks {
            list(&all_checks())?;
            return Ok(true);
        }
        bail!("a subcommand is needed: fail-nth, run or security (--help says more)");
    };
    if cli.list_checks || cmd.list_checks() {
        let rows: Vec<[String; 2]> = cmd
            .checks()
            .into_iter()
            .map(|c| [c.name, c.about])
            .collect();
        if rows.is_empty() {
            bail!("{} has no checks to list", cmd.name());
        }
        list(&rows)?;
        return Ok(true);
    }
    if let Command::SecurityProbe { pid, targets, own } = &cmd {
        let targets: Vec<security::Target> = serde_json::from_str(targets).context("--targets")?;
        let own = own
            .iter()
            .map(|o| {
                let (what, fd) = o.split_once('=').context("--own WHAT=FD")?;
                Ok((what.to_string(), fd.parse().context("--own WHAT=FD")?))
            })
            .collect::<Result<Vec<_>>>()?;
        println!(
            "{}",
            serde_json::to_string(&security::probe(*pid, &targets, &own)?)?
        );
        return Ok(true);
    }
    let mut tap = Tap::stdout();
    let ran = match cmd {
        Command::FailNth {
            exporter, rounds, ..
        } => fail_nth::run(exporter, rounds, &mut tap),
        Command::Run {
            threads, ops, seed, ..
        } => stress::run(threads, ops, seed, &mut tap),
        Command::Security { .. } => security::run(&mut tap),
        Command::SecurityProbe { .. } => unreachable!("handled above"),
    };
    if let Err(e) = ran {
        // The checks after this one are not run: the plan says how many.
        tap.bail_out(&format!("{e:#}"));
        return Err(e);
    }
    Ok(tap.finish())
}

fn main() -> ExitCode {
    match main_() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("dmabuf-stress: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(args: &[&str]) -> Vec<String> {
        let cmd = Cli::parse_from(["dmabuf-stress"].iter().chain(args))
            .command
            .unwrap();
        assert!(cmd.list_checks());
        cmd.checks().into_iter().map(|c| c.name).collect()
    }

    #[test]
    fn each_subcommand_lists_what_it_plans() {
        assert_eq!(listed(&["fail-nth", "--list-checks"]).len(), 12);
        assert_eq!(
            listed(&["fail-nth", "--exporter", "udmabuf", "--list-checks"]).len(),
            7
        );
        assert_eq!(listed(&["run", "--threads", "2", "--list-checks"]).len(), 3);
        assert_eq!(listed(&["security", "--list-checks"]).len(), 4);
    }

    #[test]
    fn the_whole_list_names_each_check_once_with_its_subcommand() {
        let all = all_checks();
        assert_eq!(all.len(), 12 + 3 + 4);
        let mut names: Vec<&str> = all.iter().map(|r| r[0].as_str()).collect();
        for r in &all {
            let prefix = match r[1].as_str() {
                "fail-nth" => "fail_nth.",
                "run" => "stress.",
                "security" => "security.",
                other => panic!("subcommand {other}"),
            };
            assert!(r[0].starts_with(prefix), "{r:?}");
            // One token each, so that awk '{ print $1 }' gives the names.
            assert!(!r[0].contains(char::is_whitespace) && !r[1].contains(' '));
            assert!(!r[2].is_empty());
        }
        names.sort();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n, "duplicate check names");
        let text = tap::listing(&all);
        assert_eq!(text.lines().count(), all.len());
        let first: Vec<&str> = text
            .lines()
            .map(|l| l.split_whitespace().next().unwrap())
            .collect();
        assert_eq!(first[0], "fail_nth.udmabuf.export");
        assert_eq!(first[12], "stress.operations");
        assert_eq!(first[15], "security.udmabuf.procfs_denied");
    }
}
