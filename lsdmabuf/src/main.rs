// SPDX-License-Identifier: GPL-2.0
//! `lsdmabuf`: lists which processes hold which dma-bufs.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};

use lsdmabuf::human::{self, Asked, Layout, Sizes};
use lsdmabuf::model::{Analysis, Filter, Report, SortKey, View};
use lsdmabuf::raw::{self, Raw, Reads};
use lsdmabuf::scan::{self, Options};
use lsdmabuf::verdict::{self, Status, Verdict};
use lsdmabuf::watch::{self, Watcher};

const EXAMPLES: &str = "\
Examples:
  lsdmabuf                      every dma-buf, its size, exporter, name and holders
  lsdmabuf --by process -s pss  which processes hold the most dma-buf memory
  lsdmabuf -p 1234              the buffers process 1234 holds, and who shares them
  lsdmabuf -e system --by exporter
                                how much the system dma-heap has handed out
  lsdmabuf --by holder          one line per process and buffer, like lsof
  lsdmabuf --by grid            buffers by processes, each one's Pss (dmabuf_dump -a)
  lsdmabuf --all                also the buffers no process holds, and the system's total
  lsdmabuf -o +importers        the devices each buffer is attached to
  lsdmabuf --by user            dma-buf memory per user (--by cgroup: per cgroup)
  lsdmabuf --watch 5            what changes every 5 s: buffers made and closed, who grew
  lsdmabuf --save scan.txt      a capture for a bug report; --load scan.txt shows it
  lsdmabuf --by process --csv   for a spreadsheet, sizes in bytes
  lsdmabuf -J | jq '.totals'    everything as JSON, sizes in bytes

Columns (-o):
  INO        the buffer's inode number on the dmabuf filesystem: its identity
  SIZE       the buffer's size, or the size of the buffers on the line; >=N when
             a buffer was seen only through mappings and nothing said its size
             (a lower bound), and so are sums it is part of
  EXPORTER   the driver that made it (udmabuf, system, a GPU driver...)
  NAME       what DMA_BUF_SET_NAME called it
  PROCS      how many processes hold it, or run as the user, or are in the cgroup
  HOLDERS    COMMAND[PID]:FDS,mem: the fds that are the buffer, and mem when
             the process maps it (mem(N): N mappings)
  IMPORTERS  the devices attached to it (debugfs bufinfo, root only)
  PID, COMMAND, UID, USER (the effective user), CGROUP (the cgroup2 path)
  BUFS       how many buffers
  FDS        the holder's fds that are the buffer, or how many dma-buf fds
  MAPS       how many mappings of dma-bufs
  RSS        the size of every buffer held, each counted once
  PSS        the same with each buffer's size divided by its PROCS, as
             Android's dmabuf_dump counts it, the remainder a byte each to the
             first holders by pid: the PSS of all processes adds up exactly
             to the size of all buffers held
  A cell with no value (unknown, none, not named) is -.

  --by buffer:   INO SIZE EXPORTER NAME PROCS HOLDERS; also IMPORTERS
  --by process:  PID COMMAND BUFS FDS MAPS RSS PSS; also UID USER CGROUP
  --by exporter: EXPORTER BUFS SIZE PROCS
  --by holder:   PID COMMAND FDS MAPS INO SIZE EXPORTER NAME; also UID USER
                 CGROUP IMPORTERS PSS (the holder's share of the buffer)
  --by user:     USER UID PROCS BUFS FDS MAPS RSS PSS
  --by cgroup:   CGROUP PROCS BUFS FDS MAPS RSS PSS
  --by grid:     INO SIZE EXPORTER NAME PROCS, then a column COMMAND[PID] per
                 process with its Pss of the buffer (- for none), as
                 dmabuf_dump -a; the last line, PSS, each process's Pss.
                 JSON: \"grid\". -o chooses the buffer's columns

Exit status, the same for a walk of /proc and for --load:
  0  found: the view lists a buffer, and every --pid holds one (and --watch
     ended by Ctrl-C)
  1  nothing matched: no buffer to list, or a --pid names no process that
     holds a dma-buf
  2  could not look: /proc or a capture cannot be read, what --all or
     IMPORTERS needs (debugfs bufinfo) cannot be read, a --pid's fds cannot
     be read (another user's process, without root), or the command line
     is wrong (-o or -s naming what the view does not have too)
Every status but 0 says why on stderr; with --json, stdout has an \"error\"
object too: {\"status\": N, \"what\": \"nothing_matched\", \"reasons\": [...]},
beside the report when there is one.";

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
/// every holder seen. What the default view does not show (the buffers no
/// process holds, importers, users, cgroups) is read only when asked for.
#[derive(Parser)]
#[command(version, about, long_about, after_long_help = EXAMPLES, max_term_width = 100)]
struct Args {
    /// What one line of output is: a buffer, a process (with Rss and Pss),
    /// an exporter, a holder (one process's hold on one buffer), a user or
    /// a cgroup (over their processes).
    #[arg(long, value_enum, default_value_t = ViewArg::Buffer, value_name = "WHAT")]
    by: ViewArg,

    /// Only buffers held by these processes, and their numbers; repeat or
    /// separate with commas. A buffer's other holders are still shown.
    #[arg(short, long, value_name = "PID", value_delimiter = ',')]
    pid: Vec<i32>,

    /// Only buffers of this exporter (as in the EXPORTER column); repeat
    /// or separate with commas. Processes' Rss and Pss then count only
    /// these buffers.
    #[arg(short, long, value_name = "NAME", value_delimiter = ',')]
    exporter: Vec<String>,

    /// Also list the buffers no process holds (held by a driver, attached
    /// to a device, or an fd in flight on a socket), from debugfs bufinfo,
    /// and the system's total; needs root. A buffer counts when bufinfo
    /// lists it before and after the walk and no process was seen holding
    /// it. Not with --pid.
    #[arg(short, long, conflicts_with = "pid")]
    all: bool,

    /// The columns to show, separated by commas (see Columns below); with a
    /// leading +, these besides the view's own: -o +IMPORTERS.
    #[arg(short, long, value_name = "COLUMNS")]
    output: Option<String>,

    /// Sort by this column. Sizes and counts sort largest first, names and
    /// numbers (ino, pid) smallest first. Default: ino, pid, exporter, uid
    /// or cgroup.
    #[arg(short, long, value_enum, value_name = "KEY")]
    sort: Option<SortKeyArg>,

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

    /// Print the view's table as CSV (RFC 4180) with a heading line, sizes
    /// in bytes, no totals line.
    #[arg(long, conflicts_with_all = ["json", "watch"])]
    csv: bool,

    /// Print no heading line and no totals line.
    #[arg(short, long)]
    noheadings: bool,

    /// Walk again every SECONDS (fractions allowed) and print what changed:
    /// buffers new and gone, and the processes whose holdings changed, with
    /// how much. The first walk prints the whole view. Ctrl-C ends it, with
    /// status 0. With --json, one JSON document per walk and line.
    #[arg(short, long, value_name = "SECONDS", value_parser = watch::parse_interval)]
    watch: Option<Duration>,

    /// Also write everything the walk read to FILE, for a bug report: it
    /// reads what every view needs (as root, the buffers no process holds
    /// and their importers too). `--load FILE` shows it. With --load, writes
    /// the capture loaded in the current format.
    #[arg(long, value_name = "FILE", conflicts_with = "watch")]
    save: Option<PathBuf>,

    /// Show what a --save wrote, on any machine, instead of walking /proc;
    /// every view and option applies. `-` reads it from stdin. A capture
    /// ends with a line that counts what it holds, so that one cut short is
    /// an error; captures of earlier formats load too. At most 64 MiB.
    #[arg(long, value_name = "FILE", conflicts_with = "watch")]
    load: Option<PathBuf>,
}

/// The values of `--by`: [`View`] as the command line names it.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ViewArg {
    /// One line per buffer, with its holders.
    Buffer,
    /// One line per process, with its Rss and Pss.
    Process,
    /// One line per exporter.
    Exporter,
    /// One line per process and buffer it holds, like lsof.
    Holder,
    /// One line per user, over the processes it runs.
    User,
    /// One line per cgroup, over the processes in it.
    Cgroup,
    /// One line per buffer and a column per process, with its Pss of the
    /// buffer (as dmabuf_dump -a); the last line each process's Pss.
    Grid,
}

impl From<ViewArg> for View {
    fn from(v: ViewArg) -> View {
        match v {
            ViewArg::Buffer => View::Buffer,
            ViewArg::Process => View::Process,
            ViewArg::Exporter => View::Exporter,
            ViewArg::Holder => View::Holder,
            ViewArg::User => View::User,
            ViewArg::Cgroup => View::Cgroup,
            ViewArg::Grid => View::Grid,
        }
    }
}

/// The values of `--sort`: [`SortKey`] as the command line names it.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SortKeyArg {
    /// Buffers by inode number.
    Ino,
    /// Buffers or exporters by size.
    Size,
    /// Buffers or exporters by exporter name.
    Exporter,
    /// Buffers by name.
    Name,
    /// Buffers, exporters, users or cgroups by the number of processes
    /// holding them.
    Procs,
    /// Processes by pid.
    Pid,
    /// Processes by command name.
    Command,
    /// Processes, users or cgroups by Rss.
    Rss,
    /// Processes, users or cgroups by Pss.
    Pss,
    /// Processes, exporters, users or cgroups by number of buffers.
    Bufs,
    /// Processes, users or cgroups by number of dma-buf fds.
    Fds,
    /// Processes, users or cgroups by number of mappings.
    Maps,
    /// Processes or users by user name (uid where it has none).
    User,
    /// Processes or cgroups by cgroup.
    Cgroup,
}

impl From<SortKeyArg> for SortKey {
    fn from(k: SortKeyArg) -> SortKey {
        match k {
            SortKeyArg::Ino => SortKey::Ino,
            SortKeyArg::Size => SortKey::Size,
            SortKeyArg::Exporter => SortKey::Exporter,
            SortKeyArg::Name => SortKey::Name,
            SortKeyArg::Procs => SortKey::Procs,
            SortKeyArg::Pid => SortKey::Pid,
            SortKeyArg::Command => SortKey::Command,
            SortKeyArg::Rss => SortKey::Rss,
            SortKeyArg::Pss => SortKey::Pss,
            SortKeyArg::Bufs => SortKey::Bufs,
            SortKeyArg::Fds => SortKey::Fds,
            SortKeyArg::Maps => SortKey::Maps,
            SortKeyArg::User => SortKey::User,
            SortKeyArg::Cgroup => SortKey::Cgroup,
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let verdict = run(&args).unwrap_or_else(|e| {
        let v = Verdict::could_not_look(format!("{e:#}"));
        if args.json {
            // Nothing else was written: the error alone.
            println!("{}", serde_json::json!({ "error": v.json() }));
        }
        v
    });
    for reason in &verdict.reasons {
        eprintln!("lsdmabuf: {reason}");
    }
    ExitCode::from(verdict.status.code())
}

/// The name of a `--sort` key as the command line has it.
fn arg_name(v: &SortKeyArg) -> String {
    v.to_possible_value()
        .map_or(String::new(), |p| p.get_name().to_string())
}

/// What the walk must read for `view`, its columns (`columns`) and
/// `--all`.
fn view_reads(args: &Args, view: View, columns: &[human::Column]) -> Reads {
    let mut r = human::reads_for(columns);
    r.users |= view == View::User;
    r.cgroups |= view == View::Cgroup;
    r.unheld |= args.all;
    r
}

/// Runs lsdmabuf, printing what it found; returns the verdict, whose
/// reasons are yet to print (less those the notes said already).
fn run(args: &Args) -> Result<Verdict> {
    let view = View::from(args.by);
    if let Some(arg) = args.sort {
        if !args.json && !SortKey::from(arg).applies_to(view) {
            let keys: Vec<String> = SortKeyArg::value_variants()
                .iter()
                .filter(|&&k| SortKey::from(k).applies_to(view))
                .map(arg_name)
                .collect();
            bail!(
                "--sort {} does not sort --by {view}; its keys are: {}",
                arg_name(&arg),
                keys.join(", ")
            );
        }
    }
    let columns = match &args.output {
        Some(spec) => human::parse_columns(view, spec).map_err(anyhow::Error::msg)?,
        None => human::default_columns(view),
    };
    let wanted = view_reads(args, view, &columns);
    // --save reads everything, so that the capture shows every view.
    let walk = if args.save.is_some() {
        Reads::ALL
    } else {
        wanted
    };
    let layout = Layout {
        view,
        columns,
        sizes: Sizes { bytes: args.bytes },
        headings: !args.noheadings,
        sort: args.sort.map(|k| (k.into(), args.reverse)),
    };
    let filter = Filter {
        pids: args.pid.clone(),
        exporters: args.exporter.clone(),
    };
    let asked = Asked {
        filtered: !filter.pids.is_empty() || !filter.exporters.is_empty(),
        reads: wanted,
    };
    let root = nix::unistd::geteuid().is_root();
    if let Some(interval) = args.watch {
        let mut w = Watcher::new(Options::reading(wanted), filter.clone(), layout, args.json);
        let mut found = Verdict::found();
        let mut first = |report: &Report| {
            if !args.json {
                for note in human::notes(report, Some(root), asked) {
                    eprintln!("lsdmabuf: {note}");
                }
            }
            // A watch waits for buffers to come: only what it could not
            // look at is an error.
            let holders = report.processes.iter().map(|p| p.pid).collect();
            let v = verdict::judge(report, &filter, asked, &holders, &live, Some(root));
            if v.status == Status::CouldNotLook {
                found = v;
            }
        };
        watch::run(&mut w, interval, &mut std::io::stdout().lock(), &mut first)?;
        return Ok(found);
    }

    let (raw, analysis) = if args.load.is_none() && args.save.is_none() {
        // The walk's threads parse what they read: the model only groups.
        scan::analyze(&Options::reading(walk))?
    } else {
        let raw = match &args.load {
            Some(path) => load(path, wanted)?,
            None => scan::scan(&Options::reading(walk))?,
        };
        if let Some(path) = &args.save {
            std::fs::write(path, raw.to_capture())
                .with_context(|| format!("--save: writing {}", path.display()))?;
            eprintln!(
                "lsdmabuf: saved the walk ({} processes holding dma-bufs) to {}",
                raw.processes.len(),
                path.display()
            );
        }
        // What was read beyond what the options ask for is saved, not
        // shown: the output is what lsdmabuf shows without --save, and
        // with --load.
        let shown = scan::as_walked(&raw, wanted);
        let analysis = Analysis::new(&shown);
        (shown, analysis)
    };
    let mut report = analysis.report(&filter);
    if let Some((key, reverse)) = layout.sort {
        report.sort(key, reverse);
    }
    let root = match &args.load {
        Some(_) => raw.meta.euid.map(|u| u == 0),
        None => Some(root),
    };
    let exists = |pid: i32| -> Option<bool> {
        match &args.load {
            Some(_) => None,
            None => live(pid),
        }
    };
    let mut verdict = verdict::judge(&report, &filter, asked, &analysis.pids(), &exists, root);
    let mut out = std::io::stdout().lock();
    let written = if args.json {
        // The human and CSV renderings make the grid as they print it.
        if view == View::Grid {
            report.grid = Some(report.grid());
        }
        let mut value = serde_json::to_value(&report)?;
        if let Some(error) = verdict.json() {
            value["error"] = error;
        }
        serde_json::to_writer_pretty(&mut out, &value)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
    } else if args.csv {
        out.write_all(human::render_csv(&report, &layout).as_bytes())
    } else {
        out.write_all(human::render(&report, &layout).as_bytes())
    };
    match written.and_then(|()| out.flush()) {
        Ok(()) => {}
        // `lsdmabuf | head`: the reader has seen enough.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(verdict),
        Err(e) => return Err(e).context("writing to stdout"),
    }
    if !args.json {
        let notes = human::notes(&report, root, asked);
        for note in &notes {
            eprintln!("lsdmabuf: {note}");
        }
        verdict.reasons.retain(|r| !notes.contains(r));
    }
    Ok(verdict)
}

/// Whether process `pid` exists on this system.
fn live(pid: i32) -> Option<bool> {
    match nix::sys::stat::stat(format!("{}/{pid}", scan::PROC).as_str()) {
        Ok(_) => Some(true),
        Err(nix::errno::Errno::ENOENT) => Some(false),
        Err(_) => None,
    }
}

/// Reads a capture (`-`: stdin), and checks that it holds what the
/// options need.
fn load(path: &std::path::Path, wanted: Reads) -> Result<Raw> {
    let name = raw::capture_name(path);
    let text = raw::read_capture(path, &mut std::io::stdin().lock(), raw::MAX_CAPTURE)
        .with_context(|| format!("--load: reading {name}"))?;
    let (raw, format) =
        Raw::from_capture_format(&text).with_context(|| format!("--load: {name}"))?;
    if format < raw::FORMAT {
        eprintln!(
            "lsdmabuf: --load: {name} is a capture of format {format}, which has no end line: \
             whether it was cut short after its counts cannot be told"
        );
    }
    let had = raw.meta.reads;
    let lacking: Vec<&str> = [
        (
            wanted.users && !had.users,
            "the holders' users (--by user, USER, UID)",
        ),
        (
            wanted.cgroups && !had.cgroups,
            "their cgroups (--by cgroup, CGROUP)",
        ),
        (
            wanted.unheld && !had.unheld,
            "the buffers no process holds (--all)",
        ),
        (
            wanted.importers && !had.importers,
            "the devices attached (IMPORTERS)",
        ),
    ]
    .into_iter()
    .filter(|(lacks, _)| *lacks)
    .map(|(_, what)| what)
    .collect();
    if !lacking.is_empty() {
        bail!(
            "--load: {name} was saved without {}: show it without them, or save it again with \
             --save, which reads them",
            lacking.join(", ")
        );
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_is_named_as_the_command_line_names_it() {
        for &arg in ViewArg::value_variants() {
            let name = arg.to_possible_value().unwrap().get_name().to_string();
            assert_eq!(View::from(arg).to_string(), name);
        }
    }

    #[test]
    fn each_sort_key_of_the_command_line_is_another_key_that_sorts_a_view() {
        let views = ViewArg::value_variants().iter().map(|&v| View::from(v));
        let keys: Vec<SortKey> = SortKeyArg::value_variants()
            .iter()
            .map(|&k| k.into())
            .collect();
        for (i, key) in keys.iter().enumerate() {
            assert!(!keys[..i].contains(key), "{key:?} twice");
            assert!(views.clone().any(|v| key.applies_to(v)), "{key:?}");
        }
    }
}
