// SPDX-License-Identifier: GPL-2.0
//! `lsdmabuf`: lists which processes hold which dma-bufs.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Parser;

use lsdmabuf::human::{self, Sizes};
use lsdmabuf::model::{Analysis, Filter, SortKey, View};
use lsdmabuf::scan;

const EXAMPLES: &str = "\
Examples:
  lsdmabuf                      every dma-buf, its size, exporter, name and holders
  lsdmabuf --by process -s pss  which processes hold the most dma-buf memory
  lsdmabuf -p 1234              the buffers process 1234 holds, and who shares them
  lsdmabuf -e system --by exporter
                                how much the system dma-heap has handed out
  lsdmabuf --by holder          one line per process and buffer, like lsof
  lsdmabuf -J | jq '.totals'    everything as JSON, sizes in bytes

Columns:
  INO       the buffer's inode number on the dmabuf filesystem: its identity
  SIZE      the buffer's size; >=N when only its mappings were seen and
            nothing said its size (a lower bound)
  EXPORTER  the driver that made it (udmabuf, system, a GPU driver...)
  NAME      what DMA_BUF_SET_NAME called it, - before that
  PROCS     how many processes hold it
  HOLDERS   COMMAND[PID]:FDS,mem: the fds that are the buffer, and mem when
            the process maps it (mem(N): N mappings)
  RSS       the size of every buffer the process holds, each counted once
  PSS       the same with each buffer's size divided by its PROCS, as
            Android's dmabuf_dump counts it: the PSS of all processes adds up
            to the size of all buffers

Exit status: 0 on success, 1 when /proc cannot be read or a --pid names no
process.";

/// List the dma-bufs of the running system: which process holds which
/// buffer, by fd or by mapping, and how much memory that is.
///
/// A dma-buf is a buffer that drivers and processes share as a file: a GPU's
/// frame, a camera's image, a block of a dma-heap. lsdmabuf walks /proc: the
/// links of every process's fds, their fdinfo, and every process's maps (a
/// buffer that is only mapped, its fd closed, still counts). It groups what
/// it finds by the buffer's inode number, which names one buffer however it
/// is reached (Linux 5.3 and later).
///
/// As root it sees every process. As another user it sees only that user's
/// processes, and says how many it could not read and why: their buffers
/// are missing from the lists, and buffers they share are counted as shared
/// by fewer processes. Filters never narrow the walk: Pss always divides by
/// every holder seen.
#[derive(Parser)]
#[command(version, about, long_about, after_long_help = EXAMPLES, max_term_width = 100)]
struct Args {
    /// What one line of output is: a buffer, a process (with Rss and Pss),
    /// an exporter, or a holder (one process's hold on one buffer).
    #[arg(long, value_enum, default_value_t = View::Buffer, value_name = "WHAT")]
    by: View,

    /// Only buffers held by these processes, and their numbers; repeat or
    /// separate with commas. A buffer's other holders are still shown.
    #[arg(short, long, value_name = "PID", value_delimiter = ',')]
    pid: Vec<i32>,

    /// Only buffers of this exporter (as in the EXPORTER column); repeat
    /// or separate with commas. Processes' Rss and Pss then count only
    /// these buffers.
    #[arg(short, long, value_name = "NAME", value_delimiter = ',')]
    exporter: Vec<String>,

    /// Sort by this column. Sizes and counts sort largest first, names and
    /// numbers (ino, pid) smallest first. Default: ino, pid or exporter.
    #[arg(short, long, value_enum, value_name = "KEY")]
    sort: Option<SortKey>,

    /// Reverse the order of --sort.
    #[arg(short, long, requires = "sort")]
    reverse: bool,

    /// Print sizes in bytes, not 4K, 1.5M.
    #[arg(short, long)]
    bytes: bool,

    /// Print every list, the totals and the notes on what could not be read
    /// as one JSON document; sizes are always in bytes.
    #[arg(short = 'J', long)]
    json: bool,

    /// Print no heading line and no totals line.
    #[arg(short, long)]
    noheadings: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("lsdmabuf: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<ExitCode> {
    if let Some(key) = args.sort {
        if !args.json && !key.applies_to(args.by) {
            let keys: Vec<String> = <SortKey as clap::ValueEnum>::value_variants()
                .iter()
                .filter(|k| k.applies_to(args.by))
                .filter_map(|k| {
                    clap::ValueEnum::to_possible_value(k).map(|v| v.get_name().to_string())
                })
                .collect();
            bail!(
                "--sort {} does not sort --by {}; its keys are: {}",
                clap::ValueEnum::to_possible_value(&key)
                    .map_or(String::new(), |v| v.get_name().to_string()),
                args.by,
                keys.join(", ")
            );
        }
    }
    let raw = scan::scan()?;
    let analysis = Analysis::new(&raw);
    let mut status = ExitCode::SUCCESS;
    for pid in &args.pid {
        if !analysis.pids().contains(pid)
            && nix::sys::stat::stat(format!("/proc/{pid}").as_str()).is_err()
        {
            eprintln!("lsdmabuf: --pid {pid}: no such process");
            status = ExitCode::FAILURE;
        }
    }
    let filter = Filter {
        pids: args.pid.clone(),
        exporters: args.exporter.clone(),
    };
    let mut report = analysis.report(&filter);
    let sort = args.sort.map(|k| (k, args.reverse));
    if let Some((key, reverse)) = sort {
        report.sort(key, reverse);
    }
    let mut out = std::io::stdout().lock();
    let written = if args.json {
        serde_json::to_writer_pretty(&mut out, &report)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        let text = human::render(
            &report,
            args.by,
            Sizes { bytes: args.bytes },
            !args.noheadings,
            sort,
        );
        out.write_all(text.as_bytes())
    };
    match written.and_then(|()| out.flush()) {
        Ok(()) => {}
        // `lsdmabuf | head`: the reader has seen enough.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(status),
        Err(e) => return Err(e).context("writing to stdout"),
    }
    if !args.json {
        let root = nix::unistd::geteuid().is_root();
        for note in human::notes(&report, root) {
            eprintln!("lsdmabuf: {note}");
        }
    }
    Ok(status)
}
