// SPDX-License-Identifier: GPL-2.0
//! The checks of the scene: what the `lsdmabuf` binary prints, as root and
//! as an unprivileged user, against what the scene made.
//!
//! The expected numbers come from [`Want`], which counts the scene's own
//! record of who holds what.

use std::collections::BTreeSet;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output};

use anyhow::{anyhow, bail, ensure, Context, Result};
use serde_json::{json, Value};

use dmabuf::sys::NOBODY;

use crate::scene::{Expect, Scene};
use crate::want::Want;

/// The `lsdmabuf` binary that sits next to this one.
pub fn lsdmabuf_path() -> Result<std::path::PathBuf> {
    let exe = std::env::current_exe().context("the path of this binary")?;
    Ok(exe.with_file_name("lsdmabuf"))
}

/// Runs the `lsdmabuf` binary that sits next to this one, as `uid` if given.
pub fn lsdmabuf(args: &[&str], uid: Option<u32>) -> Result<Output> {
    let path = lsdmabuf_path()?;
    let mut cmd = Command::new(&path);
    cmd.args(args);
    if let Some(uid) = uid {
        // std drops the supplementary groups too when root changes uid.
        cmd.uid(uid).gid(uid);
    }
    cmd.output()
        .with_context(|| format!("running {} {}", path.display(), args.join(" ")))
}

/// `lsdmabuf -J ARGS`, which must succeed, parsed.
pub(crate) fn json_of(args: &[&str], uid: Option<u32>) -> Result<Value> {
    let mut all = vec!["-J"];
    all.extend_from_slice(args);
    let out = lsdmabuf(&all, uid)?;
    ensure!(
        out.status.success(),
        "lsdmabuf {} exited with {}: {}",
        all.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    serde_json::from_slice(&out.stdout)
        .with_context(|| format!("lsdmabuf {} printed no JSON", all.join(" ")))
}

/// Compares two lists of objects keyed by `id`; the message names the
/// first difference.
pub(crate) fn same_list(what: &str, id: &str, got: &Value, want: &[Value]) -> Result<()> {
    same_list_as(what, id, got, want, &|v| format!("{id} {}", v[id]))
}

/// [`same_list`] with the items named by `label`.
pub(crate) fn same_list_as(
    what: &str,
    id: &str,
    got: &Value,
    want: &[Value],
    label: &dyn Fn(&Value) -> String,
) -> Result<()> {
    let got = got
        .as_array()
        .ok_or_else(|| anyhow!("{what}: not a list: {got}"))?;
    let ids = |l: &[Value]| l.iter().map(|v| v[id].to_string()).collect::<Vec<_>>();
    if ids(got) != ids(want) {
        bail!(
            "{what}: {id}s [{}], expected [{}]",
            ids(got).join(", "),
            ids(want).join(", ")
        );
    }
    for (g, w) in got.iter().zip(want) {
        same_object(&format!("{what} {}", label(w)), g, w)?;
    }
    Ok(())
}

/// Compares every field of `want` with `got`'s.
pub(crate) fn same_object(what: &str, got: &Value, want: &Value) -> Result<()> {
    let Some(fields) = want.as_object() else {
        bail!("{what}: expected an object, not {want}");
    };
    for (k, w) in fields {
        let g = &got[k];
        if g != w {
            bail!("{what}: {k} is {g}, expected {w}");
        }
    }
    Ok(())
}

/// Which buffer of the scene `ino` is, for messages.
pub(crate) fn key_of(expect: &Expect, ino: &Value) -> String {
    expect
        .buffers
        .iter()
        .find(|b| Some(b.ino) == ino.as_u64())
        .map_or_else(
            || format!("ino {ino}"),
            |b| format!("{} (ino {ino})", b.key),
        )
}

/// Compares buffer lists, naming the scene's buffers.
pub(crate) fn same_buffers(what: &str, expect: &Expect, got: &Value, want: &[Value]) -> Result<()> {
    same_list_as(what, "ino", got, want, &|v| key_of(expect, &v["ino"]))
}

/// The HOLDERS cell's words of a buffer's JSON: `COMMAND[PID]:FDS,mem`,
/// one per holder.
pub(crate) fn holder_cells(b: &Value) -> Vec<String> {
    let mut cells = Vec::new();
    for h in b["holders"].as_array().into_iter().flatten() {
        let mut how: Vec<String> = h["fds"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| f.to_string())
            .collect();
        match h["mappings"].as_u64().unwrap_or(0) {
            0 => {}
            1 => how.push("mem".into()),
            n => how.push(format!("mem({n})")),
        }
        cells.push(format!(
            "{}[{}]:{}",
            h["command"].as_str().unwrap_or(""),
            h["pid"],
            how.join(",")
        ));
    }
    cells
}

/// The checks on root's view of the whole scene, in order, with their names.
pub fn root_checks(scene: &Scene) -> Vec<(&'static str, Result<String>)> {
    let expect = &scene.expect;
    let all = |_: i32| true;
    let want = Want::new(expect, &all, true);
    let report = json_of(&[], None);
    let mut out = Vec::new();
    let mut on_report = |name: &'static str, f: &dyn Fn(&Value) -> Result<String>| {
        let r = match &report {
            Ok(v) => f(v),
            Err(e) => Err(anyhow!("{e:#}")),
        };
        out.push((name, r));
    };
    on_report("buffers", &|v| {
        let want_list = want.buffers();
        same_buffers("buffer", expect, &v["buffers"], &want_list)?;
        Ok(format!(
            "{} buffers: ino, size, exporter, name and every holder's fds and mappings as made",
            want_list.len()
        ))
    });
    on_report("processes", &|v| {
        let w = want.processes();
        same_list("process", "pid", &v["processes"], &w)?;
        Ok(format!(
            "{} processes: buffers, fds, mappings, Rss and Pss as counted from the scene",
            w.len()
        ))
    });
    on_report("exporters", &|v| {
        let w = want.exporter_list();
        same_list("exporter", "exporter", &v["exporters"], &w)?;
        Ok(format!(
            "{} exporters: buffers, size and processes",
            w.len()
        ))
    });
    on_report("totals", &|v| {
        let w = want.totals();
        same_object("totals", &v["totals"], &w)?;
        Ok(format!("{w}"))
    });
    on_report("scan_complete", &|v| {
        let scan = &v["scan"];
        ensure!(
            scan["unreadable"] == json!([]),
            "as root, unreadable: {}",
            scan["unreadable"]
        );
        ensure!(
            scan["warnings"] == json!([]),
            "warnings: {}",
            scan["warnings"]
        );
        ensure!(
            scan["legacy_fds"] == json!(0),
            "legacy_fds: {}",
            scan["legacy_fds"]
        );
        let read = scan["processes_read"].as_u64().unwrap_or(0);
        let holders = want.processes().len() as u64;
        ensure!(
            read > holders,
            "processes_read {read}, expected more than the {holders} holders"
        );
        Ok(format!(
            "as root nothing was unreadable; {read} processes read"
        ))
    });
    out.push(("filter_pid", filter_pid(scene)));
    out.push(("filter_exporter", filter_exporter(scene)));
    out.push(("sort", sort(scene)));
    out.push(("human_buffers", human_buffers(scene)));
    out.push(("human_processes", human_processes(scene)));
    out.push(("usage_errors", usage_errors()));
    out
}

fn filter_pid(scene: &Scene) -> Result<String> {
    let e = &scene.expect;
    let all = |_: i32| true;
    // R and M: the receiver and the mapper.
    let pids: Vec<i32> = e
        .roles
        .iter()
        .filter(|(_, r)| r.starts_with("R ") || r.starts_with("M "))
        .map(|(p, _)| *p)
        .collect();
    ensure!(pids.len() == 2, "the scene has no R and M: {:?}", e.roles);
    let arg = format!("{},{}", pids[0], pids[1]);
    let v = json_of(&["-p", &arg], None)?;
    let want = Want::new(e, &all, true).pids(&pids);
    same_buffers("-p buffer", e, &v["buffers"], &want.buffers())?;
    same_list("-p process", "pid", &v["processes"], &want.processes())?;
    same_object("-p totals", &v["totals"], &want.totals())?;
    Ok(format!(
        "-p {arg}: the {} buffers R and M hold, with their other holders, and only R and M",
        want.buffers().len()
    ))
}

fn filter_exporter(scene: &Scene) -> Result<String> {
    let e = &scene.expect;
    let all = |_: i32| true;
    let v = json_of(&["-e", "udmabuf"], None)?;
    let want = Want::new(e, &all, true).exporters(&["udmabuf"]);
    same_buffers("-e buffer", e, &v["buffers"], &want.buffers())?;
    same_list("-e process", "pid", &v["processes"], &want.processes())?;
    same_list(
        "-e exporter",
        "exporter",
        &v["exporters"],
        &want.exporter_list(),
    )?;
    same_object("-e totals", &v["totals"], &want.totals())?;
    Ok(format!(
        "-e udmabuf: {} buffers, and Rss and Pss of {} processes over udmabuf buffers only",
        want.buffers().len(),
        want.processes().len()
    ))
}

fn sort(scene: &Scene) -> Result<String> {
    let e = &scene.expect;
    let all = |_: i32| true;
    let want = Want::new(e, &all, true);
    // Pss largest first, ties by pid.
    let mut procs: Vec<(u64, i64)> = want
        .processes()
        .iter()
        .map(|p| {
            (
                p["pss"].as_u64().unwrap_or(0),
                p["pid"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    procs.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let want_pids: Vec<i64> = procs.iter().map(|p| p.1).collect();
    let v = json_of(&["-s", "pss"], None)?;
    let got: Vec<i64> = v["processes"]
        .as_array()
        .map(|l| l.iter().filter_map(|p| p["pid"].as_i64()).collect())
        .unwrap_or_default();
    ensure!(
        got == want_pids,
        "-s pss: pids in the order {got:?}, expected {want_pids:?}"
    );
    // Size smallest first with -r, ties by inode.
    let mut bufs: Vec<(u64, u64)> = want
        .buffers()
        .iter()
        .map(|b| {
            (
                b["size"].as_u64().unwrap_or(0),
                b["ino"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    bufs.sort();
    let want_inos: Vec<u64> = bufs.iter().map(|b| b.1).collect();
    let v = json_of(&["-s", "size", "-r"], None)?;
    let got: Vec<u64> = v["buffers"]
        .as_array()
        .map(|l| l.iter().filter_map(|b| b["ino"].as_u64()).collect())
        .unwrap_or_default();
    ensure!(
        got == want_inos,
        "-s size -r: inodes in the order {got:?}, expected {want_inos:?}"
    );
    Ok(
        "-s pss orders processes by Pss, largest first; -s size -r buffers by size, smallest first"
            .into(),
    )
}

/// The text of `lsdmabuf ARGS`, which must succeed.
pub(crate) fn text_of(args: &[&str], uid: Option<u32>) -> Result<(String, String)> {
    let out = lsdmabuf(args, uid)?;
    ensure!(
        out.status.success(),
        "lsdmabuf {} exited with {}: {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok((
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// The totals line lsdmabuf's README documents, from `totals`.
pub(crate) fn totals_line(t: &Value) -> String {
    let n = |k: &str| t[k].as_u64().unwrap_or(0);
    let plural = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    // A sum with a lower bound in it is a lower bound too.
    let bound = if t["exact"] == json!(false) { ">=" } else { "" };
    let mut line = format!(
        "total: {}, {bound}{}, held by {} through {} and {}: Rss {bound}{}, Pss {bound}{}",
        plural(n("buffers"), "buffer", "buffers"),
        n("size"),
        plural(n("processes"), "process", "processes"),
        plural(n("fds"), "fd", "fds"),
        plural(n("mappings"), "mapping", "mappings"),
        n("rss"),
        n("pss")
    );
    if let Some(u) = t["unheld"].as_object() {
        let k = |o: &serde_json::Map<String, Value>, f: &str| o[f].as_u64().unwrap_or(0);
        line.push_str(&format!(
            "; held by no process: {}, {}",
            plural(k(u, "buffers"), "buffer", "buffers"),
            k(u, "size")
        ));
        if let Some(s) = t["system"].as_object() {
            line.push_str(&format!(
                "; bufinfo: {}, {}",
                plural(k(s, "buffers"), "buffer", "buffers"),
                k(s, "size")
            ));
        }
    }
    line
}

/// The lines of a table with the heading checked and cells split on runs
/// of spaces.
pub(crate) fn table(text: &str, heading: &[&str]) -> Result<Vec<Vec<String>>> {
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    ensure!(head == heading, "heading {head:?}, expected {heading:?}");
    Ok(lines
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect())
}

fn human_buffers(scene: &Scene) -> Result<String> {
    let e = &scene.expect;
    let all = |_: i32| true;
    let want = Want::new(e, &all, true);
    let (text, _) = text_of(&["--bytes"], None)?;
    let rows = table(
        &text,
        &["INO", "SIZE", "EXPORTER", "NAME", "PROCS", "HOLDERS"],
    )?;
    let bufs = want.buffers();
    ensure!(
        rows.len() == bufs.len() + 1,
        "{} lines, expected {} buffers and the totals:\n{text}",
        rows.len(),
        bufs.len()
    );
    for (row, b) in rows.iter().zip(&bufs) {
        let mut cells = vec![
            b["ino"].to_string(),
            b["size"].to_string(),
            b["exporter"].as_str().unwrap_or("-").to_string(),
            b["name"].as_str().unwrap_or("-").to_string(),
            b["processes"].to_string(),
        ];
        cells.extend(holder_cells(b));
        ensure!(
            *row == cells,
            "{}: line {row:?}, expected {cells:?}",
            key_of(e, &b["ino"])
        );
    }
    let last = text.lines().last().unwrap_or("");
    let line = totals_line(&want.totals());
    ensure!(last == line, "the last line is {last:?}, expected {line:?}");
    Ok(format!(
        "{} buffer lines and the totals line, sizes in bytes",
        bufs.len()
    ))
}

fn human_processes(scene: &Scene) -> Result<String> {
    let e = &scene.expect;
    let all = |_: i32| true;
    let want = Want::new(e, &all, true);
    let (text, _) = text_of(&["--by", "process", "--bytes", "--noheadings"], None)?;
    let procs = want.processes();
    let rows: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    ensure!(
        rows.len() == procs.len(),
        "{} lines, expected {}:\n{text}",
        rows.len(),
        procs.len()
    );
    for (row, p) in rows.iter().zip(&procs) {
        let cells: Vec<String> = ["pid", "command", "buffers", "fds", "mappings", "rss", "pss"]
            .iter()
            .map(|k| {
                p[k].as_str()
                    .map_or_else(|| p[k].to_string(), str::to_string)
            })
            .collect();
        ensure!(*row == cells, "line {row:?}, expected {cells:?}");
    }
    Ok(format!(
        "--by process --noheadings: {} lines of exact Rss and Pss",
        procs.len()
    ))
}

fn usage_errors() -> Result<String> {
    // Each bad input: its status, and words its message must hold.
    let cases: [(&[&str], i32, &[&str]); 8] = [
        (&["-p", "2147483647"], 1, &["no such process"]),
        (&["--by", "exporter", "-s", "pss"], 1, &["size"]),
        (&["-o", "nosuch"], 1, &["no column `nosuch`", "INO,SIZE"]),
        (
            &["--by", "user", "-o", "ino"],
            1,
            &["no column `ino`", "USER,UID"],
        ),
        (&["--watch", "0"], 2, &["at least 0.1 s"]),
        (&["--watch", "two"], 2, &["not a number of seconds"]),
        (&["--all", "-p", "1"], 2, &["cannot be used with"]),
        (
            &["--load", "/nonexistent"],
            1,
            &["--load: reading /nonexistent"],
        ),
    ];
    for (args, status, words) in cases {
        let out = lsdmabuf(args, None)?;
        let err = String::from_utf8_lossy(&out.stderr);
        ensure!(
            out.status.code() == Some(status) && words.iter().all(|w| err.contains(w)),
            "lsdmabuf {} exited with {} and said {err:?}: expected {status} and {words:?}",
            args.join(" "),
            out.status
        );
        ensure!(
            !err.contains("panicked"),
            "lsdmabuf {} panicked: {err}",
            args.join(" ")
        );
    }
    Ok(format!(
        "{} bad inputs (a pid, a sort key, columns, an interval, --all with --pid, a capture) fail with 1 or 2 and say what is wrong",
        cases.len()
    ))
}

/// The checks of lsdmabuf run as uid [`NOBODY`].
pub fn nobody_checks(scene: &Scene) -> Vec<(&'static str, Result<String>)> {
    let e = &scene.expect;
    let nobody = scene.nobody_pids();
    let visible = |pid: i32| nobody.contains(&pid);
    let want = Want::new(e, &visible, false);
    let mut out = Vec::new();
    let report = json_of(&[], Some(NOBODY));
    out.push((
        "unprivileged_buffers",
        report.as_ref().map_err(|e| anyhow!("{e:#}")).and_then(|v| {
            same_buffers("buffer", e, &v["buffers"], &want.buffers())?;
            same_list("process", "pid", &v["processes"], &want.processes())?;
            same_object("totals", &v["totals"], &want.totals())?;
            Ok(format!(
                "uid {NOBODY} sees exactly its own {} buffers; the one it only maps is >= its mapping, exporter unknown",
                want.buffers().len()
            ))
        }),
    ));
    out.push((
        "unprivileged_unreadable",
        report.as_ref().map_err(|e| anyhow!("{e:#}")).and_then(|v| {
            // Every root process but kernel threads: init, the test, its
            // root helpers.
            let mut root: BTreeSet<i64> = [1, i64::from(std::process::id())].into();
            root.extend(scene.root_helpers().iter().map(|p| i64::from(*p)));
            let scan = &v["scan"];
            let got: BTreeSet<i64> = scan["unreadable"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|u| u["pid"].is_i64())
                .map(|u| {
                    ensure!(u["errno"] == "EACCES", "{u}: expected EACCES");
                    Ok(u["pid"].as_i64().unwrap_or(0))
                })
                .collect::<Result<_>>()?;
            ensure!(
                got == root,
                "unreadable pids {got:?}, expected the root processes {root:?}"
            );
            let counts = json!({"EACCES": root.len()});
            ensure!(
                scan["unreadable_processes"] == counts,
                "unreadable_processes {}, expected {counts}",
                scan["unreadable_processes"]
            );
            Ok(format!(
                "the {} root processes are reported unreadable with EACCES, kernel threads are not",
                root.len()
            ))
        }),
    ));
    out.push(("unprivileged_notes", nobody_notes(scene, &want)));
    out.push((
        "unknown_exporter",
        crate::views::unknown_exporter(&want, NOBODY),
    ));
    out
}

fn nobody_notes(scene: &Scene, want: &Want) -> Result<String> {
    let (_, err) = text_of(&[], Some(NOBODY))?;
    let root = scene.root_helpers().len() + 2;
    let unreadable = format!("{root} processes of ");
    ensure!(
        err.contains(&unreadable) && err.contains("EACCES") && err.contains("Run as root"),
        "stderr {err:?} does not say `{unreadable}...`, EACCES and to run as root"
    );
    let lower = want
        .buffers()
        .iter()
        .filter(|b| b["size_from"] == "mappings")
        .count();
    let note = format!("{lower} buffer");
    ensure!(
        err.contains(&note) && err.contains("lower bound"),
        "stderr {err:?} does not say that {lower} buffer sizes are lower bounds"
    );
    Ok(format!(
        "stderr says {root} processes could not be read and why, and which sizes are lower bounds"
    ))
}
