// SPDX-License-Identifier: GPL-2.0
//! dmabuf-stress: dma-bufs under systematic fault injection, under
//! concurrent stress, and against an unprivileged observer. Runs in the
//! test VM as root; prints TAP ending in `N passed, N failed` and exits 0
//! only when every check passed.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

mod common;
mod faults;
mod security;
mod stress;

use common::Which;
use dmabuf::tap::Tap;

#[derive(Parser)]
#[command(
    version,
    about = "dma-buf under fault injection, stress and an unprivileged observer",
    max_term_width = 100
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fail the 1st, 2nd, ... allocation of export, DMA_BUF_SET_NAME, dup,
    /// mmap and close (/proc/thread-self/fail-nth) until none is left:
    /// each must succeed or fail cleanly and leave nothing behind; then
    /// kmemleak must find nothing. Needs the debug kernels' fault injection
    /// and kmemleak.
    FailNth {
        #[arg(long, value_enum, default_value_t = Which::All)]
        exporter: Which,
        /// Sweeps over every call after the first (which only warms up).
        /// The slab baseline tolerates one object less than this per cache.
        #[arg(long, default_value_t = faults::DEFAULT_ROUNDS)]
        rounds: u32,
    },
    /// THREADS threads doing OPS operations each (export, name, dup, mmap,
    /// close) while two more read /proc/self/fd, fdinfo, maps and bufinfo:
    /// no error, no two live buffers with one st_ino, memory back to its
    /// baseline.
    Run {
        #[arg(long, default_value_t = 8)]
        threads: u64,
        #[arg(long, default_value_t = 100_000)]
        ops: u64,
        /// Seed of the operation mix.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// As root, make dma-bufs; as uid 65534, try procfs on them: refused as
    /// for any file of root's, and a dma-buf the unprivileged process holds
    /// itself looks as usual.
    Security,
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

fn main_() -> Result<bool> {
    let cmd = Cli::parse().command;
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
    match cmd {
        Command::FailNth { exporter, rounds } => faults::run(exporter, rounds, &mut tap)?,
        Command::Run { threads, ops, seed } => stress::run(threads, ops, seed, &mut tap)?,
        Command::Security => security::run(&mut tap)?,
        Command::SecurityProbe { .. } => unreachable!("handled above"),
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
