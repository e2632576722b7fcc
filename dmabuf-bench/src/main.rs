// SPDX-License-Identifier: GPL-2.0
//! dmabuf-bench: what an inode per dma-buf costs.
//!
//! `dmabuf-bench measure` runs in the test VM, as root: kernel memory per
//! live single-page buffer (every slab cache, and meminfo's Slab, against a
//! baseline taken right before), and the latency of export+close and of
//! fstat. `dmabuf-bench report` runs on the host and compares the runs of
//! several kernels: ci/bench boots the singleton-inode, the C and the Rust
//! kernels in turn and gives it their runs.

use std::fs;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

mod measure;
mod model;
mod report;

use model::Run;

#[derive(Parser)]
#[command(
    version,
    about = "What an inode per dma-buf costs: kernel memory and latency",
    max_term_width = 100
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// A table for people.
    Table,
    /// One line of JSON, what `report` reads.
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Measure this kernel (in the test VM, as root; needs /dev/udmabuf,
    /// /proc/slabinfo and /sys/kernel/slab; boot with slab_nomerge so that
    /// every cache is counted under its own name).
    Measure {
        /// Live single-page buffers to measure memory with; repeat for several.
        #[arg(long = "count", default_values_t = [1000u64, 10000])]
        counts: Vec<u64>,
        /// Timed iterations of export+close and of fstat.
        #[arg(long, default_value_t = 20000)]
        iterations: u64,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Compare the JSON runs of several kernels (on the host); exits 1 when
    /// the Rust kernel costs more slab per buffer than the C one.
    Report {
        /// A run: LABEL=FILE, where LABEL is negative (the singleton
        /// inode), c or rust; repeat a label for several rounds.
        #[arg(long = "run", value_name = "LABEL=FILE", required = true)]
        runs: Vec<String>,
        /// Also write the Markdown here.
        #[arg(long)]
        markdown: Option<String>,
        /// Also write the summary as JSON here.
        #[arg(long)]
        json: Option<String>,
        /// What the runs' latencies count: `ns`, or `guest instructions` for runs in a guest
        /// whose clock advances one nanosecond per instruction (QEMU `-icount shift=0`).
        #[arg(long, default_value = "ns")]
        latency_unit: String,
        /// Report the memory comparison as a goal, not a gate: exit 0 when Rust costs more.
        /// For kernels that differ in a driver, not in the dmabuf filesystem (udmabuf in Rust
        /// against udmabuf.c), where the difference is reported with its reasons.
        #[arg(long)]
        goal_only: bool,
    },
}

fn table(r: &Run) -> String {
    let mut o = format!(
        "kernel {} ({} inode), pages of {} bytes\n\n{:>7}  {:>14}  {:>14}  caches that moved: bytes (objects) per buffer\n",
        r.kernel, r.model, r.page_size, "buffers", "slab B/buffer", "meminfo Slab"
    );
    for m in &r.memory {
        let caches: Vec<String> = m
            .caches
            .iter()
            .map(|(n, c)| {
                let per = c.objects as f64 / m.count as f64;
                format!("{n} {:.0} ({per:.2})", c.bytes() as f64 / m.count as f64)
            })
            .collect();
        o += &format!(
            "{:>7}  {:>14.1}  {:>14.1}  {}\n",
            m.count,
            m.slabinfo_per_buffer(),
            m.meminfo_per_buffer(),
            caches.join(", ")
        );
    }
    let l = &r.latency;
    for (what, s) in [("export", &l.export), ("close", &l.close)] {
        if let Some(m) = s {
            o += &format!(
                "\n{what} alone: median {} ns, p99 {} ns ({} iterations)",
                m.median_ns, m.p99_ns, m.iterations
            );
        }
    }
    if let Some(m) = &l.export_mmap_close {
        o += &format!(
            "\nexport+mmap+touch+close: median {} ns, p99 {} ns ({} iterations)",
            m.median_ns, m.p99_ns, m.iterations
        );
    }
    o += &format!(
        "\nexport+close: median {} ns, p99 {} ns ({} iterations)\nfstat:        median {} ns, p99 {} ns ({} iterations)\n",
        l.export_close.median_ns,
        l.export_close.p99_ns,
        l.export_close.iterations,
        l.fstat.median_ns,
        l.fstat.p99_ns,
        l.fstat.iterations
    );
    o
}

fn read_runs(specs: &[String]) -> Result<Vec<(String, Run)>> {
    specs
        .iter()
        .map(|s| {
            let Some((label, file)) = s.split_once('=') else {
                bail!("--run {s}: expected LABEL=FILE, e.g. --run rust=target/bench/rust-1.json");
            };
            let text = fs::read_to_string(file).with_context(|| format!("read {file}"))?;
            let run = serde_json::from_str(text.trim()).with_context(|| {
                format!("{file} is not the JSON of `dmabuf-bench measure --format json`")
            })?;
            Ok((label.to_string(), run))
        })
        .collect()
}

fn main_() -> Result<bool> {
    match Cli::parse().command {
        Command::Measure {
            counts,
            iterations,
            format,
        } => {
            if counts.contains(&0) || iterations == 0 {
                bail!("--count and --iterations must be at least 1");
            }
            let coarse = |e: String| -> ! {
                eprintln!("dmabuf-bench: error: {e}");
                std::process::exit(measure::COARSE_CLOCK.into());
            };
            let source = measure::check_clock().unwrap_or_else(|e| coarse(e));
            let run = measure::run(&measure::Opts { counts, iterations })?;
            let now = measure::clocksource();
            if now != source {
                coarse(format!(
                    "CLOCK_MONOTONIC moves in steps of a tick now: the clocksource changed from \
                     {source} to {now} during the run (under QEMU TCG: the TSC could not be \
                     calibrated); boot again"
                ));
            }
            match format {
                Format::Json => println!("{}", serde_json::to_string(&run)?),
                Format::Table => print!("{}", table(&run)),
            }
            Ok(true)
        }
        Command::Report {
            runs,
            markdown,
            json,
            latency_unit,
            goal_only,
        } => {
            let summary = report::summary(&read_runs(&runs)?)?;
            let md = summary.markdown(&latency_unit);
            print!("{md}");
            if let Some(f) = markdown {
                fs::write(&f, &md).with_context(|| format!("write {f}"))?;
            }
            if let Some(f) = json {
                fs::write(&f, serde_json::to_string_pretty(&summary)?)
                    .with_context(|| format!("write {f}"))?;
            }
            // Nothing to compare is no pass: the memory gate needs a c and a rust run.
            let Some(gate) = &summary.gate else {
                bail!("the runs have no c and rust kernels to compare: give --run c=FILE and --run rust=FILE");
            };
            if goal_only && !gate.passed {
                println!("\n--goal-only: the memory comparison is a goal here, not a gate");
                return Ok(true);
            }
            Ok(gate.passed)
        }
    }
}

fn main() -> ExitCode {
    match main_() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("dmabuf-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
