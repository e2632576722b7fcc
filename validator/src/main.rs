// SPDX-License-Identifier: GPL-2.0
//! `validator`: proves the per-buffer dma-buf inode contract from userspace.
//!
//! Every dma-buf, from udmabuf and from the system dma-heap, must have an
//! inode of its own on the dmabuf filesystem: a unique, never reused
//! `st_ino`, its size in `st_size` and `st_blocks`, `/dmabuf:<name>` as its
//! link, and the same identity in fdinfo, /proc/PID/maps, map_files and
//! debugfs bufinfo, however the fd travels. Each line of that contract is
//! one check, run once per exporter and reported in TAP (or JSON); the exit
//! status is 0 only when every check passed.

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Result};
use clap::{Parser, ValueEnum};
use serde::Serialize;

mod buffers;
mod checks;
mod dump;
mod preflight;

use checks::{Check, Ctx, Opts, CHECKS};
use dmabuf_testkit::tap::Tap;
use dmabuf_testkit::Exporter;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ExporterArg {
    /// /dev/udmabuf: memfd pages.
    Udmabuf,
    /// /dev/dma_heap/system: the system dma-heap.
    Heap,
    /// Both, udmabuf first.
    All,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// TAP version 14, one `ok N - <exporter>.<check>: message` per check,
    /// then `N passed, N failed`.
    Tap,
    /// One JSON document with every result.
    Json,
}

/// Proves the per-buffer dma-buf inode contract: every dma-buf has an inode
/// of its own, with its size, a unique and never reused st_ino, and the
/// same identity in fdinfo, maps, map_files and debugfs bufinfo.
///
/// Run it as root on the kernel under test, with devtmpfs on /dev, proc,
/// and debugfs on /sys/kernel/debug: `ci/vm run VARIANT -- validator`.
/// Some checks compare debugfs bufinfo and kernel memory before and after:
/// run it where nothing else creates or frees dma-bufs meanwhile. Prints TAP
/// by default and exits 0 only when every check passed, 1 when one failed,
/// 2 when it cannot run (what is missing is said).
#[derive(Parser)]
#[command(version, about, long_about, max_term_width = 100)]
struct Args {
    /// Live buffers of each exporter that the per-buffer checks walk: mostly
    /// one page, some larger, one at udmabuf's size limit (64 MiB by
    /// default). Needs that many fds (RLIMIT_NOFILE is raised where
    /// possible) and about count * 16 KiB + 64 MiB of memory.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    count: usize,

    /// The exporters to test.
    #[arg(long, value_enum, default_value_t = ExporterArg::All)]
    exporter: ExporterArg,

    /// Run only this check: `st_ino_unique` for every exporter, or
    /// `heap.st_ino_unique`. Repeat for more.
    #[arg(long, value_name = "CHECK")]
    only: Vec<String>,

    /// List the checks (with --exporter and --only applied) and exit.
    #[arg(long)]
    list_checks: bool,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Tap)]
    format: Format,

    /// Create/close cycles before the memory checks compare slabinfo and
    /// meminfo with their baseline; the tolerance is half an object (or
    /// page) per cycle.
    #[arg(long, default_value_t = 4096, value_name = "N")]
    cycles: usize,

    /// Print the raw fdinfo, maps, bufinfo, slabinfo, meminfo and zoneinfo
    /// text of a few buffers, for parser test data, and exit.
    #[arg(long)]
    dump: bool,
}

/// One check's result.
#[derive(Serialize)]
struct Outcome {
    name: String,
    exporter: Exporter,
    ok: bool,
    message: String,
    seconds: f64,
    notes: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("validator: {e:#}");
            let _ = cannot_run(args.format, &e, &mut std::io::stdout().lock());
            ExitCode::from(2)
        }
    }
}

/// What `format` says on stdout of a run that could not be made: with
/// `--format json`, a JSON document with the error and no check, so that
/// a reader of the JSON learns why there is none (TAP bails out already
/// where it can, and says nothing before the plan otherwise).
fn cannot_run(format: Format, e: &anyhow::Error, out: &mut dyn Write) -> std::io::Result<()> {
    if format != Format::Json {
        return Ok(());
    }
    let doc = serde_json::json!({
        "error": format!("{e:#}"),
        "checks": [],
        "passed": 0,
        "failed": 0,
    });
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)
}

fn exporters(arg: ExporterArg) -> Vec<Exporter> {
    match arg {
        ExporterArg::Udmabuf => vec![Exporter::Udmabuf],
        ExporterArg::Heap => vec![Exporter::Heap],
        ExporterArg::All => Exporter::ALL.to_vec(),
    }
}

/// The (exporter, check) pairs to run, in order.
fn select(args: &Args) -> Result<Vec<(Exporter, &'static Check)>> {
    for only in &args.only {
        let known = CHECKS.iter().any(|c| {
            c.name == only
                || Exporter::ALL
                    .iter()
                    .any(|&e| c.applies_to(e) && c.full_name(e) == *only)
        });
        if !known {
            bail!("--only {only}: no such check (--list-checks names them)");
        }
    }
    let selected: Vec<_> = exporters(args.exporter)
        .into_iter()
        .flat_map(|e| {
            CHECKS
                .iter()
                .filter(move |c| c.applies_to(e))
                .map(move |c| (e, c))
        })
        .filter(|(e, c)| {
            args.only.is_empty()
                || args
                    .only
                    .iter()
                    .any(|o| *o == c.name || *o == c.full_name(*e))
        })
        .collect();
    if selected.is_empty() {
        bail!(
            "--only {} selects no check of the exporters chosen with --exporter",
            args.only.join(" --only ")
        );
    }
    Ok(selected)
}

fn run(args: &Args) -> Result<bool> {
    let selected = select(args)?;
    if args.list_checks {
        list(&selected, args.format)?;
        return Ok(true);
    }
    let exporters: Vec<Exporter> = {
        let mut v: Vec<_> = selected.iter().map(|(e, _)| *e).collect();
        v.dedup();
        v
    };
    if args.dump {
        let factory =
            preflight::open(&exporters, &[], 0, args.cycles).map_err(preflight::report)?;
        dump::dump(&factory, &exporters)?;
        return Ok(true);
    }
    let needs: Vec<checks::Need> = selected
        .iter()
        .flat_map(|(_, c)| c.needs.iter().copied())
        .collect();
    let population = selected.iter().any(|(_, c)| c.population);
    if population && args.count < 2 {
        bail!(
            "--count {}: the population checks compare buffers with each other, give at least 2",
            args.count
        );
    }
    let count = if population { args.count } else { 0 };
    let factory = match preflight::open(&exporters, &needs, count, args.cycles) {
        Ok(f) => f,
        Err(problems) => {
            if args.format == Format::Tap {
                Tap::stdout().bail_out(&format!(
                    "the validator cannot run here: {}",
                    problems.join("; ")
                ));
            }
            return Err(preflight::report(problems));
        }
    };
    let mut ctx = Ctx::new(
        factory,
        Opts {
            count: args.count,
            cycles: args.cycles,
        },
    );

    let start = Instant::now();
    let mut tap = (args.format == Format::Tap).then(Tap::stdout);
    if let Some(tap) = &mut tap {
        tap.plan_checks(selected.iter().map(|(e, c)| c.full_name(*e)));
        let cpus = nix::unistd::sysconf(nix::unistd::SysconfVar::_NPROCESSORS_ONLN)
            .ok()
            .flatten()
            .unwrap_or(0);
        tap.comment(&format!(
            "count {}, cycles {}, page {}, udmabuf size limit {} MiB, {cpus} CPUs online",
            args.count,
            args.cycles,
            ctx.f.page,
            ctx.f.size_limit >> 20
        ));
    }
    let mut outcomes = Vec::with_capacity(selected.len());
    for &(e, check) in &selected {
        if !check.population {
            ctx.drop_population();
        }
        let t = Instant::now();
        let result = (check.run)(&mut ctx, e);
        let seconds = t.elapsed().as_secs_f64();
        let (ok, message) = match result {
            Ok(m) => (true, m),
            Err(err) => (false, format!("{err:#}")),
        };
        let outcome = Outcome {
            name: check.full_name(e),
            exporter: e,
            ok,
            message,
            seconds,
            notes: std::mem::take(&mut ctx.notes),
        };
        if let Some(tap) = &mut tap {
            tap.result(&outcome.name, ok, &outcome.message);
            for note in &outcome.notes {
                tap.comment(note);
            }
            tap.comment(&format!("{} took {seconds:.2} s", outcome.name));
        }
        outcomes.push(outcome);
    }
    ctx.drop_population();
    let passed = outcomes.iter().filter(|o| o.ok).count();
    let failed = outcomes.len() - passed;
    let seconds = start.elapsed().as_secs_f64();
    if let Some(mut tap) = tap {
        tap.comment(&format!("{} checks in {seconds:.2} s", outcomes.len()));
        tap.finish();
    } else {
        #[derive(Serialize)]
        struct Report<'a> {
            count: usize,
            cycles: usize,
            checks: &'a [Outcome],
            passed: usize,
            failed: usize,
            seconds: f64,
        }
        let report = Report {
            count: args.count,
            cycles: args.cycles,
            checks: &outcomes,
            passed,
            failed,
            seconds,
        };
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    }
    Ok(failed == 0)
}

fn list(selected: &[(Exporter, &'static Check)], format: Format) -> Result<()> {
    match format {
        Format::Tap => {
            let rows: Vec<[String; 2]> = selected
                .iter()
                .map(|(e, c)| [c.full_name(*e), c.about.to_string()])
                .collect();
            dmabuf_testkit::tap::print(&dmabuf_testkit::tap::listing(&rows))?;
        }
        Format::Json => {
            #[derive(Serialize)]
            struct Item {
                name: String,
                exporter: Exporter,
                about: &'static str,
            }
            let items: Vec<Item> = selected
                .iter()
                .map(|(e, c)| Item {
                    name: c.full_name(*e),
                    exporter: *e,
                    about: c.about,
                })
                .collect();
            dmabuf_testkit::tap::print(&format!("{}\n", serde_json::to_string_pretty(&items)?))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Args {
        Args::parse_from(["validator"].iter().chain(extra))
    }

    fn names(a: &Args) -> Vec<String> {
        select(a)
            .unwrap()
            .iter()
            .map(|(e, c)| c.full_name(*e))
            .collect()
    }

    #[test]
    fn json_says_why_the_validator_cannot_run() {
        let e = anyhow::anyhow!("cannot run:\n  - /dev/udmabuf: no such file");
        let mut out = Vec::new();
        cannot_run(Format::Json, &e, &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["error"], "cannot run:\n  - /dev/udmabuf: no such file");
        assert_eq!(
            (v["passed"].as_u64(), v["failed"].as_u64()),
            (Some(0), Some(0))
        );
        let mut tap = Vec::new();
        cannot_run(Format::Tap, &e, &mut tap).unwrap();
        assert!(tap.is_empty());
    }

    #[test]
    fn check_names_are_one_snake_case_token() {
        for e in Exporter::ALL {
            for c in CHECKS.iter().filter(|c| c.applies_to(e)) {
                let name = c.full_name(e);
                let (prefix, check) = name.split_once('.').unwrap();
                assert_eq!(prefix, e.name());
                assert!(
                    check
                        .chars()
                        .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_'),
                    "{name}"
                );
            }
        }
        let all = names(&args(&[]));
        let mut unique = all.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(all.len(), unique.len(), "duplicate check names");
    }

    #[test]
    fn only_and_exporter_select() {
        assert_eq!(
            names(&args(&["--only", "st_size"])),
            ["udmabuf.st_size", "heap.st_size"]
        );
        assert_eq!(
            names(&args(&[
                "--only",
                "heap.st_size",
                "--only",
                "udmabuf.f_type"
            ])),
            ["udmabuf.f_type", "heap.st_size"]
        );
        assert_eq!(
            names(&args(&["--exporter", "heap", "--only", "bad_len_zero"])),
            ["heap.bad_len_zero"]
        );
        assert!(select(&args(&["--only", "nonsense"])).is_err());
        assert!(
            select(&args(&["--only", "heap.bad_size_zero"])).is_err(),
            "udmabuf-only check"
        );
        assert!(select(&args(&["--exporter", "udmabuf", "--only", "heap.st_size"])).is_err());
        // What --list-checks prints for an --exporter is what a run with it
        // plans: both come from select().
        let count = |e: &str| select(&args(&["--exporter", e])).unwrap().len();
        assert_eq!(
            (count("udmabuf"), count("heap"), count("all")),
            (35, 30, 65)
        );
        // The population checks come first, as they share the live buffers.
        let all = select(&args(&["--exporter", "heap"])).unwrap();
        let first_other = all.iter().position(|(_, c)| !c.population).unwrap();
        assert!(all[first_other..].iter().all(|(_, c)| !c.population));
    }
}
