// SPDX-License-Identifier: GPL-2.0
//! `lsdmabuf-vmtest`: tests lsdmabuf in the test VM.
//!
//! Builds a scene of processes that share dma-bufs through fork(),
//! SCM_RIGHTS and mappings whose fd is closed, with a buffer in flight on a
//! socket, buffers vgem imported, two users and two cgroups; runs the
//! `lsdmabuf` binary on it as root and as an unprivileged user, in every
//! view and format, saved and loaded, and watching it change, and compares
//! every number with what the scene made. Then forks a crowd of processes
//! that each hold a buffer and times lsdmabuf's scan against a bare walk of
//! /proc/*/fd, and what each view that is off by default adds. Prints TAP
//! and exits 0 only when every check passed.

use std::process::ExitCode;

use anyhow::{anyhow, Context, Result};
use clap::Parser;

mod binary;
mod checks;
mod child;
mod compare;
mod examples;
mod guest;
mod scene;
mod speed;
mod synthetic;
mod vgem;
mod views;
mod want;

use dmabuf_testkit::tap::Tap;
use scene::{Factory, Scene};

/// Tests lsdmabuf in a VM: exact per-buffer, per-process, per-user and
/// per-cgroup numbers for processes sharing dma-bufs through fork,
/// SCM_RIGHTS and mappings, as root and as uid 65534; the buffers no
/// process holds and their importers; CSV, --save and --load, --watch; and
/// the scan's speed against a bare walk of /proc/*/fd.
///
/// Needs root, /dev/udmabuf, /dev/dma_heap/system, debugfs on
/// /sys/kernel/debug, and no other process holding dma-bufs; for the
/// importers, vgem (CONFIG_DRM, CONFIG_DRM_VGEM); for the cgroups,
/// CONFIG_CGROUPS (it mounts cgroup2 on /sys/fs/cgroup when the guest did
/// not). What is missing fails its check and says so. Prints TAP; exits 0
/// only when every check passed.
#[derive(Parser)]
#[command(version, about, long_about, max_term_width = 100)]
struct Args {
    /// Processes of the speed check, each holding one buffer.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    processes: usize,

    /// Timed runs of each walk in the speed check; the medians are compared.
    #[arg(long, default_value_t = 5, value_name = "N")]
    runs: usize,

    /// Fail when the scan takes more than RATIO times as long as the bare
    /// walk. Without it the ratio is reported, not judged: the scan reads
    /// every process's maps and every dma-buf's fdinfo, which the bare walk
    /// does not, and its ratio moves by a tenth from run to run under TCG.
    #[arg(long, value_name = "RATIO")]
    goal: Option<f64>,

    /// Skip the speed check.
    #[arg(long)]
    no_speed: bool,

    /// List the checks a run with these options makes, one per line (the
    /// name first), and exit.
    #[arg(long)]
    list_checks: bool,

    /// On a host without dma-bufs: build a /proc-like tree of --processes
    /// processes holding a buffer each in DIR (replacing one built before),
    /// and time the scan of it as the speed check times /proc; no scene,
    /// no root needed.
    #[arg(long, value_name = "DIR")]
    synthetic: Option<std::path::PathBuf>,

    /// Build the scene, print what lsdmabuf shows of it in each view (the
    /// README's examples) and exit.
    #[arg(long)]
    examples: bool,

    /// Build the scene, print what lsdmabuf's walk reads of it, everything
    /// `--save` reads, as a capture (for testdata/) and exit.
    #[arg(long)]
    capture: bool,
}

/// The checks of the scene, in the order they run: each compares
/// lsdmabuf's output with what the scene made.
const SCENE_CHECKS: &[(&str, &str)] = &[
    (
        "buffers",
        "--json: every buffer's ino, size, exporter, name and each holder's fds and mappings",
    ),
    (
        "processes",
        "--by process --json: every process's buffers, fds, mappings, Rss and Pss",
    ),
    (
        "exporters",
        "--by exporter --json: each exporter's buffers, size and processes",
    ),
    (
        "totals",
        "the totals: buffers, fds, mappings, processes, size, Rss, Pss and bufinfo's",
    ),
    ("scan_complete", "as root no process is reported unreadable"),
    (
        "filter_pid",
        "-p: the buffers the named processes hold, with their other holders",
    ),
    (
        "filter_exporter",
        "-e: the buffers of one exporter, and Rss and Pss over them only",
    ),
    ("sort", "-s and -r order processes and buffers"),
    (
        "human_buffers",
        "the buffer table: a line per buffer and the totals, sizes in bytes",
    ),
    ("human_processes", "the process table: exact Rss and Pss"),
    (
        "usage_errors",
        "bad arguments fail with status 1 or 2, saying what is wrong",
    ),
    (
        "unheld",
        "--all: the buffers no process holds, and bufinfo's count and size",
    ),
    (
        "importers",
        "IMPORTERS: the devices attached to each buffer",
    ),
    (
        "by_user",
        "--by user: processes, buffers, fds, mappings, Rss and Pss per user",
    ),
    (
        "by_cgroup",
        "--by cgroup: the same per cgroup, adding up to the total Pss",
    ),
    ("process_owners", "each process's uid, user name and cgroup"),
    (
        "csv",
        "--csv: buffer and process rows parse back to the cells expected",
    ),
    (
        "save_load",
        "--load of a --save gives the live output in every view and format",
    ),
    (
        "unprivileged_buffers",
        "as uid 65534: exactly its own buffers, lower bounds marked",
    ),
    (
        "unprivileged_unreadable",
        "as uid 65534: root's processes unreadable with EACCES, kernel threads not",
    ),
    (
        "unprivileged_notes",
        "as uid 65534: stderr says what could not be read and which sizes are lower bounds",
    ),
    (
        "unknown_exporter",
        "--by exporter as uid 65534: an unknown exporter as - and a lower-bound size",
    ),
    (
        "watch",
        "--watch: the buffers new and gone and the Rss and Pss changes of a tick; SIGINT ends it",
    ),
];

/// The check of the speed run.
const SPEED_CHECKS: &[(&str, &str)] = &[(
    "speed_scan",
    "the scan of the crowd: each process its one buffer, Rss = Pss = 1 page",
)];

/// The checks a run with `args` makes.
fn checks(args: &Args) -> Vec<(&'static str, &'static str)> {
    let mut all = SCENE_CHECKS.to_vec();
    if !args.no_speed {
        all.extend_from_slice(SPEED_CHECKS);
        if args.goal.is_some() {
            all.push((
                "speed_ratio",
                "--goal: the scan takes at most RATIO times the bare walk",
            ));
        }
    }
    all
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.list_checks {
        let rows: Vec<[&str; 2]> = checks(&args).iter().map(|&(n, d)| [n, d]).collect();
        let _ = dmabuf_testkit::tap::print(&dmabuf_testkit::tap::listing(&rows));
        return ExitCode::SUCCESS;
    }
    if args.examples {
        let shown = Factory::open()
            .context("opening the exporters")
            .and_then(|f| {
                let scene = Scene::build(&f).context("building the scene")?;
                examples::print(&f)?;
                scene.finish()
            });
        return match shown {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("lsdmabuf-vmtest: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    if args.capture {
        return match capture() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("lsdmabuf-vmtest: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let mut tap = Tap::stdout();
    if let Some(dir) = &args.synthetic {
        synthetic_timings(&mut tap, dir, &args);
        return if tap.finish() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    tap.plan_checks(checks(&args).iter().map(|&(n, _)| n));
    // What the test builds (the scene, the crowd) is no check of lsdmabuf:
    // when it cannot be built or its processes fail, the run cannot be
    // judged and bails out.
    let ran = Factory::open()
        .context("opening the exporters")
        .and_then(|f| {
            scene_checks(&mut tap, &f)?;
            if !args.no_speed {
                speed_checks(&mut tap, &f, &args)?;
            }
            Ok(())
        });
    if let Err(e) = ran {
        tap.bail_out(&format!("{e:#}"));
        tap.finish();
        return ExitCode::from(2);
    }
    if tap.finish() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn capture() -> Result<()> {
    let f = Factory::open().context("opening the exporters")?;
    let scene = Scene::build(&f).context("building the scene")?;
    let raw = lsdmabuf::scan::scan(&lsdmabuf::scan::Options::reading(lsdmabuf::raw::Reads::ALL))?;
    print!("{}", raw.to_capture());
    scene.finish()
}

fn scene_checks(tap: &mut Tap, f: &Factory) -> Result<()> {
    let scene = Scene::build(f).context("building the scene")?;
    let e = &scene.expect;
    let pids: std::collections::BTreeSet<i32> = e.holds.keys().map(|(p, _)| *p).collect();
    tap.comment(&format!(
        "scene: {} buffers held by {} processes through fork, SCM_RIGHTS and mappings",
        e.buffers.len(),
        pids.len()
    ));
    for (pid, role) in &e.roles {
        tap.comment(&format!("scene: pid {pid} is {role}"));
    }
    for b in &e.buffers {
        tap.comment(&format!(
            "scene: buffer {} is ino {}, {} bytes of {}",
            b.key,
            b.ino,
            b.size,
            b.exporter.exp_name()
        ));
    }
    match &e.vgem {
        Ok(node) => tap.comment(&format!(
            "scene: vgem ({node}) imported the buffers imported and imported_only"
        )),
        Err(why) => tap.comment(&format!("scene: no importer: {why}")),
    }
    match &e.cgroups {
        Ok(c) => tap.comment(&format!("scene: cgroups {c:?}")),
        Err(why) => tap.comment(&format!("scene: no cgroups: {why}")),
    }
    for (name, r) in checks::root_checks(&scene) {
        tap.check(name, r);
    }
    for (name, r) in views::checks(&scene) {
        tap.check(name, r);
    }
    for (name, r) in checks::nobody_checks(&scene) {
        tap.check(name, r);
    }
    tap.check("watch", views::watch(&scene, f));
    let helpers = scene.root_helpers().len() + scene.nobody_pids().len();
    scene
        .finish()
        .context("the scene's helpers, after the checks")?;
    tap.comment(&format!("scene: {helpers} helpers exited with 0"));
    Ok(())
}

fn speed_checks(tap: &mut Tap, f: &Factory, args: &Args) -> Result<()> {
    let n = args.processes;
    let t = std::time::Instant::now();
    let crowd = speed::Crowd::new(f, n).context("forking the crowd of the speed check")?;
    tap.comment(&format!(
        "speed: {n} processes forked, each holding a buffer, in {}",
        speed::ms(t.elapsed())
    ));
    let opts = lsdmabuf::scan::Options::default();
    let timings = match speed::measure(&opts, args.runs) {
        Ok(t) => t,
        Err(e) => {
            tap.check("speed_scan", Err(e));
            return crowd.finish().context("the crowd of the speed check");
        }
    };
    tap.check("speed_scan", crowd_seen(&crowd, f.page, &timings));
    report_timings(
        tap,
        &opts,
        args,
        &timings,
        &format!("{n} processes holding buffers"),
    );
    crowd
        .finish()
        .context("the crowd of the speed check, after the checks")?;
    tap.comment(&format!("speed: {n} processes exited with 0"));
    Ok(())
}

/// The speed check on a synthetic tree in `dir`.
fn synthetic_timings(tap: &mut Tap, dir: &std::path::Path, args: &Args) {
    let n = args.processes;
    let page = dmabuf::sys::page_size();
    let t = std::time::Instant::now();
    if let Err(e) = synthetic::build(dir, n, page) {
        tap.check("synthetic_setup", Err(e));
        return;
    }
    tap.pass(
        "synthetic_setup",
        &format!(
            "{n} processes holding a buffer each in {} in {}",
            dir.display(),
            speed::ms(t.elapsed())
        ),
    );
    let root = dir.display().to_string();
    let opts = lsdmabuf::scan::Options {
        proc: root.clone(),
        bufinfo: format!("{root}/bufinfo"),
        passwd: format!("{root}/passwd"),
        fs: lsdmabuf::scan::FsProbe::Described,
        ..lsdmabuf::scan::Options::default()
    };
    let timings = match speed::measure(&opts, args.runs) {
        Ok(t) => t,
        Err(e) => {
            tap.check("speed_scan", Err(e));
            return;
        }
    };
    let r = &timings.last_report;
    let one_each = r
        .processes
        .iter()
        .all(|p| p.buffers == 1 && p.rss == page && p.pss == page);
    tap.check(
        "speed_scan",
        if r.processes.len() == n && r.totals.buffers == n && one_each {
            Ok(format!(
                "the scan found the {n} processes, one buffer of one page each"
            ))
        } else {
            Err(anyhow!(
                "the scan found {} processes and {} buffers, expected {n} of one page each",
                r.processes.len(),
                r.totals.buffers
            ))
        },
    );
    report_timings(
        tap,
        &opts,
        args,
        &timings,
        &format!("{n} synthetic processes holding buffers"),
    );
    match cpu_costs(&opts, args.runs) {
        Ok(text) => tap.comment(&text),
        Err(e) => tap.comment(&format!("speed: CPU time: not measured: {e:#}")),
    }
}

/// The CPU time (user and system, every thread) of the bare walk, the scan
/// and each view off by default, medians of `runs`: on a host that builds
/// kernels meanwhile, what the wall clock cannot tell.
fn cpu_costs(opts: &lsdmabuf::scan::Options, runs: usize) -> Result<String> {
    use lsdmabuf::raw::Reads;
    use speed::{cpu_time, lsdmabuf_scan, lsdmabuf_scan_reading, ms, walk};
    let bare = cpu_time(runs, || walk(&opts.proc, speed::Reads::default()))?;
    let scan = cpu_time(runs, || lsdmabuf_scan(opts))?;
    let (raw, digests) = lsdmabuf::scan::scan_digested(opts, lsdmabuf::scan::default_threads())?;
    let model = cpu_time(runs, || {
        Ok(
            lsdmabuf::model::Analysis::from_digests(&raw, digests.clone())
                .report(&lsdmabuf::model::Filter::default()),
        )
    })?;
    let x = |d: std::time::Duration| {
        format!(
            "{} ({:.2}x the bare walk)",
            ms(d),
            d.as_secs_f64() / bare.as_secs_f64()
        )
    };
    let mut parts = vec![
        format!("bare walk {}", ms(bare)),
        format!("scan {}", x(scan)),
        format!(
            "the model alone (one thread, the digests' copy included) {}",
            ms(model)
        ),
    ];
    for (what, reads) in [
        (
            "users",
            Reads {
                users: true,
                ..Reads::default()
            },
        ),
        (
            "cgroups",
            Reads {
                cgroups: true,
                ..Reads::default()
            },
        ),
        (
            "importers",
            Reads {
                importers: true,
                ..Reads::default()
            },
        ),
        (
            "--all",
            Reads {
                unheld: true,
                ..Reads::default()
            },
        ),
        ("everything", Reads::ALL),
    ] {
        let d = cpu_time(runs, || lsdmabuf_scan_reading(opts, reads))?;
        parts.push(format!("scan with {what} {}", x(d)));
    }
    let mut w = lsdmabuf::watch::Watcher::new(
        opts.clone(),
        lsdmabuf::model::Filter::default(),
        lsdmabuf::human::Layout::new(
            lsdmabuf::model::View::Buffer,
            lsdmabuf::human::Sizes { bytes: false },
        ),
        false,
    );
    w.tick(std::time::SystemTime::now())?;
    let tick = cpu_time(runs, || w.tick(std::time::SystemTime::now()))?;
    parts.push(format!("a --watch tick {}", x(tick)));
    Ok(format!(
        "speed: CPU time, user and system, all threads (medians of {runs}): {}",
        parts.join("; ")
    ))
}

/// The timings of `opts`'s walk: the bare walk and the scan, their ratio
/// (a check with `--goal`), where the time goes and what the views off by
/// default add. `what` says what was walked.
fn report_timings(
    tap: &mut Tap,
    opts: &lsdmabuf::scan::Options,
    args: &Args,
    timings: &speed::Timings,
    what: &str,
) {
    let bare = speed::median(&timings.bare);
    let scan = speed::median(&timings.scan);
    let ratio = scan.as_secs_f64() / bare.as_secs_f64();
    let all = |d: &[std::time::Duration]| {
        d.iter()
            .map(|d| speed::ms(*d))
            .collect::<Vec<_>>()
            .join(", ")
    };
    tap.comment(&format!(
        "speed: bare walk of {}/*/fd (readdir, readlink): median {} of {} runs ({}); {} links, {} of dma-bufs",
        opts.proc,
        speed::ms(bare),
        timings.bare.len(),
        all(&timings.bare),
        timings.last_bare.links,
        timings.last_bare.dmabuf_links
    ));
    tap.comment(&format!(
        "speed: lsdmabuf scan (walk, fdinfo, maps, bufinfo, model): median {} of {} runs ({})",
        speed::ms(scan),
        timings.scan.len(),
        all(&timings.scan)
    ));
    match args.goal {
        None => tap.comment(&format!(
            "speed: ratio {ratio:.2} (scan {} / bare walk {}) with {what}; not judged (--goal RATIO judges it)",
            speed::ms(scan),
            speed::ms(bare)
        )),
        Some(goal) => tap.check(
            "speed_ratio",
            if ratio <= goal {
                Ok(format!(
                    "scan {} / bare walk {} = {ratio:.2} <= {goal} with {what}",
                    speed::ms(scan),
                    speed::ms(bare)
                ))
            } else {
                Err(anyhow!(
                    "scan {} / bare walk {} = {ratio:.2}, above the goal of {goal} with {what}",
                    speed::ms(scan),
                    speed::ms(bare)
                ))
            },
        ),
    }
    match breakdown(opts, args.runs) {
        Ok(text) => tap.comment(&text),
        Err(e) => tap.comment(&format!("speed: where the time goes: not measured: {e:#}")),
    }
    match views_cost(opts, args.runs, bare, scan) {
        Ok(text) => tap.comment(&text),
        Err(e) => tap.comment(&format!(
            "speed: the views off by default: not measured: {e:#}"
        )),
    }
}

/// Where the scan's time goes: the bare walk plus each kind of file the
/// scan reads, one thread, the scan itself with one thread and with its
/// default threads, and the model alone; medians of `runs`.
fn breakdown(opts: &lsdmabuf::scan::Options, runs: usize) -> Result<String> {
    use speed::{ms, time, walk, Reads};
    let none = Reads::default();
    let proc = opts.proc.as_str();
    let bare = time(runs, || walk(proc, none))?;
    let plus = |reads: Reads| -> Result<String> {
        let d = time(runs, || walk(proc, reads))?;
        Ok(format!(
            "{} ({:.2}x)",
            ms(d),
            d.as_secs_f64() / bare.as_secs_f64()
        ))
    };
    let fdinfo = plus(Reads {
        fdinfo: true,
        ..none
    })?;
    let stat = plus(Reads { stat: true, ..none })?;
    let maps = plus(Reads { maps: true, ..none })?;
    let comm = plus(Reads { comm: true, ..none })?;
    let all = plus(Reads {
        fdinfo: true,
        maps: true,
        comm: true,
        ..none
    })?;
    let threads = lsdmabuf::scan::default_threads();
    let one = time(runs, || lsdmabuf::scan::scan_with(opts, 1))?;
    let many = time(runs, || lsdmabuf::scan::scan_with(opts, threads))?;
    let (raw, digests) = lsdmabuf::scan::scan_digested(opts, threads)?;
    let model = time(runs, || {
        Ok(
            lsdmabuf::model::Analysis::from_digests(&raw, digests.clone())
                .report(&lsdmabuf::model::Filter::default()),
        )
    })?;
    Ok(format!(
        "speed: where the time goes (one thread, medians of {runs}): bare walk {}; \
         + fdinfo of dma-buf fds {fdinfo}; + stat of dma-buf fds {stat}; + maps {maps}; \
         + comm {comm}; + fdinfo, maps and comm, all the scan reads {all}; \
         scan without the model: 1 thread {}, {threads} threads {}; the model alone (one thread, \
         the digests' copy included) {}",
        ms(bare),
        ms(one),
        ms(many),
        ms(model)
    ))
}

/// What each view that is off by default adds to the default scan (the
/// walk and the model, default threads), and what a `--watch` tick costs;
/// medians of `runs`, against the medians of the speed check.
fn views_cost(
    opts: &lsdmabuf::scan::Options,
    runs: usize,
    bare: std::time::Duration,
    scan: std::time::Duration,
) -> Result<String> {
    use lsdmabuf::raw::Reads;
    use speed::{lsdmabuf_scan_reading, ms, time};
    let ratio = |d: std::time::Duration| {
        format!(
            "{} ({:.2}x the scan, {:.2}x the bare walk)",
            ms(d),
            d.as_secs_f64() / scan.as_secs_f64(),
            d.as_secs_f64() / bare.as_secs_f64()
        )
    };
    let mut parts = Vec::new();
    for (what, reads) in [
        (
            "users (--by user, USER)",
            Reads {
                users: true,
                ..Reads::default()
            },
        ),
        (
            "cgroups (--by cgroup, CGROUP)",
            Reads {
                cgroups: true,
                ..Reads::default()
            },
        ),
        (
            "importers (IMPORTERS)",
            Reads {
                importers: true,
                ..Reads::default()
            },
        ),
        (
            "buffers no process holds (--all)",
            Reads {
                unheld: true,
                ..Reads::default()
            },
        ),
        ("everything (--save)", Reads::ALL),
    ] {
        let d = time(runs, || lsdmabuf_scan_reading(opts, reads))?;
        parts.push(format!("{what} {}", ratio(d)));
    }
    let (tick, text) = speed::watch_tick(opts, runs)?;
    Ok(format!(
        "speed: the views off by default (medians of {runs}; the scan {}, the bare walk {}): {}; \
         a --watch tick after the first (walk, model, changes, text: {:?}) {}",
        ms(scan),
        ms(bare),
        parts.join("; "),
        text.lines().next().unwrap_or(""),
        ratio(tick)
    ))
}

/// Whether the last timed scan found every child of the crowd with its one
/// buffer, held the way the child holds it.
fn crowd_seen(crowd: &speed::Crowd, page: u64, t: &speed::Timings) -> Result<String> {
    let report = &t.last_report;
    for (k, pid) in crowd.pids.iter().enumerate() {
        let pid = pid.as_raw();
        let (by_fd, by_map) = speed::holds(k);
        let p = report
            .processes
            .iter()
            .find(|p| p.pid == pid)
            .ok_or_else(|| anyhow!("child {k} (pid {pid}) is missing from the scan"))?;
        let got = (p.buffers, p.fds, p.mappings, p.rss, p.pss);
        let want = (1, usize::from(by_fd), usize::from(by_map), page, page);
        if got != want {
            return Err(anyhow!(
                "child {k} (pid {pid}): (buffers, fds, mappings, rss, pss) = {got:?}, expected {want:?}"
            ));
        }
    }
    let n = crowd.pids.len();
    if report.totals.buffers != n {
        return Err(anyhow!(
            "{} buffers, expected the crowd's {n}",
            report.totals.buffers
        ));
    }
    Ok(format!(
        "each of the {n} processes has its one buffer, by fd, mapping or both, Rss = Pss = 1 page"
    ))
}
