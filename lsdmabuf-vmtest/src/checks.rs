// SPDX-License-Identifier: GPL-2.0
//! The checks of the scene: what the `lsdmabuf` binary prints, as root and
//! as an unprivileged user, against what the scene made.
//!
//! The expected numbers come from [`Want`], which counts the scene's own
//! record of who holds what.

use std::collections::BTreeSet;

use anyhow::{anyhow, ensure, Result};
use serde_json::{json, Value};

use dmabuf::sys::NOBODY;

use crate::binary::{json_of, lsdmabuf, text_of};
use crate::compare::{
    holder_cells, key_of, same_buffers, same_list, same_object, table, totals_line,
};
use crate::scene::Scene;
use crate::want::Want;

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
    // 1: nothing matched; 2: could not look, or a wrong command line.
    let cases: [(&[&str], i32, &[&str]); 8] = [
        (&["-p", "2147483647"], 1, &["no such process"]),
        (&["--by", "exporter", "-s", "pss"], 2, &["size"]),
        (&["-o", "nosuch"], 2, &["no column `nosuch`", "INO,SIZE"]),
        (
            &["--by", "user", "-o", "ino"],
            2,
            &["no column `ino`", "USER,UID"],
        ),
        (&["--watch", "0"], 2, &["at least 0.1 s"]),
        (&["--watch", "two"], 2, &["not a number of seconds"]),
        (&["--all", "-p", "1"], 2, &["cannot be used with"]),
        (
            &["--load", "/nonexistent"],
            2,
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
    out.push(("unknown_exporter", unknown_exporter(&want, NOBODY)));
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

/// `lsdmabuf --by exporter` as `uid`: unknown exporters as `-`, sizes that
/// are lower bounds as `>=`, as in `want`.
pub fn unknown_exporter(want: &Want, uid: u32) -> Result<String> {
    let out = lsdmabuf(&["--by", "exporter", "--bytes", "-n"], Some(uid))?;
    ensure!(out.status.success(), "exited with {}", out.status);
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let expected: Vec<Vec<String>> = want
        .exporter_list()
        .iter()
        .map(|e| {
            let size = e["size"].to_string();
            vec![
                e["exporter"].as_str().unwrap_or("-").to_string(),
                e["buffers"].to_string(),
                if e["exact"] == json!(false) {
                    format!(">={size}")
                } else {
                    size
                },
                e["processes"].to_string(),
            ]
        })
        .collect();
    ensure!(
        rows == expected,
        "--by exporter: lines {rows:?}, expected {expected:?}"
    );
    ensure!(
        expected
            .iter()
            .any(|r| r[0] == "-" && r[2].starts_with(">=")),
        "the scene gives uid {uid} no buffer of unknown exporter and size: {expected:?}"
    );
    Ok(format!(
        "--by exporter as uid {uid}: {} lines, the unknown exporter as - and its size as a lower bound",
        rows.len()
    ))
}
