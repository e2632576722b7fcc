// SPDX-License-Identifier: GPL-2.0
//! The checks of what the default view does not show: the buffers no
//! process holds (`--all`), importers, users and cgroups, CSV, a capture
//! saved and loaded, and two ticks of `--watch`. Each compares lsdmabuf's
//! output with what [`Want`] counts from the scene.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::fstat;
use nix::unistd::Pid;
use serde_json::{json, Value};

use dmabuf_testkit::Exporter;

use crate::binary::{json_of, lsdmabuf_path, text_of};
use crate::compare::{
    holder_cells, key_of, same_buffers, same_list, same_object, table, totals_line,
};
use crate::scene::{Factory, Scene};
use crate::want::Want;

/// The checks, in order, with their names.
pub fn checks(scene: &Scene) -> Vec<(&'static str, Result<String>)> {
    vec![
        ("unheld", unheld(scene)),
        ("importers", importers(scene)),
        ("by_user", by_user(scene)),
        ("by_cgroup", by_cgroup(scene)),
        ("process_owners", process_owners(scene)),
        ("csv", csv(scene)),
        ("save_load", save_load()),
    ]
}

fn all_visible(_: i32) -> bool {
    true
}

fn unheld(scene: &Scene) -> Result<String> {
    let e = &scene.expect;
    let want = Want::new(e, &all_visible, true).all();
    let none: Vec<&str> = want
        .listed_seen()
        .iter()
        .filter(|s| s.holders.is_empty())
        .map(|s| s.buf.key)
        .collect();
    ensure!(
        none.contains(&"inflight"),
        "the scene has no buffer in flight: {none:?}"
    );
    let v = json_of(&["--all"], None)?;
    same_buffers("--all buffer", e, &v["buffers"], &want.buffers())?;
    same_list(
        "--all exporter",
        "exporter",
        &v["exporters"],
        &want.exporter_list(),
    )?;
    let totals = want.totals();
    same_object("--all totals", &v["totals"], &totals)?;
    // The table: PROCS 0 and HOLDERS - for them, and the totals line.
    let (text, _) = text_of(&["--all", "--bytes"], None)?;
    let rows = table(
        &text,
        &["INO", "SIZE", "EXPORTER", "NAME", "PROCS", "HOLDERS"],
    )?;
    for s in want.listed_seen().iter().filter(|s| s.holders.is_empty()) {
        let cells = vec![
            s.buf.ino.to_string(),
            s.size.to_string(),
            s.buf.exporter.exp_name().to_string(),
            s.buf.name.unwrap_or("-").to_string(),
            "0".into(),
            "-".into(),
        ];
        ensure!(
            rows.contains(&cells),
            "no line {cells:?} for {} in:\n{text}",
            s.buf.key
        );
    }
    let last = text.lines().last().unwrap_or("");
    let line = totals_line(&totals);
    ensure!(last == line, "the last line is {last:?}, expected {line:?}");
    Ok(format!(
        "--all lists the {} buffers no process holds ({}) with PROCS 0, and bufinfo's {} buffers, {} bytes",
        none.len(),
        none.join(", "),
        totals["system"]["buffers"],
        totals["system"]["size"]
    ))
}

fn importers(scene: &Scene) -> Result<String> {
    let e = &scene.expect;
    let node = e
        .vgem
        .as_ref()
        .map_err(|why| anyhow!("cannot test the importers: {why}"))?;
    let want = Want::new(e, &all_visible, true).all().importers();
    let v = json_of(&["--all", "-o", "+importers"], None)?;
    same_buffers("-o +importers buffer", e, &v["buffers"], &want.buffers())?;
    let (text, _) = text_of(&["--all", "-o", "ino,importers"], None)?;
    let rows = table(&text, &["INO", "IMPORTERS"])?;
    let seen = want.listed_seen();
    ensure!(
        rows.len() == seen.len() + 1,
        "{} lines, expected {} buffers and the totals:\n{text}",
        rows.len(),
        seen.len()
    );
    for (row, s) in rows.iter().zip(&seen) {
        let devices = want.importers_of(s.buf);
        let cell = if devices.is_empty() {
            "-".to_string()
        } else {
            devices.join(",")
        };
        let cells = vec![s.buf.ino.to_string(), cell];
        ensure!(
            *row == cells,
            "{}: line {row:?}, expected {cells:?}",
            s.buf.key
        );
    }
    let imported: Vec<&str> = e.importers.keys().copied().collect();
    Ok(format!(
        "{} attached to vgem ({node}), the other {} buffers to nothing, in JSON and in IMPORTERS",
        imported.join(" and "),
        seen.len() - imported.len()
    ))
}

/// A JSON value as a table cell: strings as they are, `-` for null.
fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        v => v.to_string(),
    }
}

/// The USER cell of an object with `user` and `uid`: the name, else the
/// uid, else `-`.
fn user_cell(v: &Value) -> String {
    match (&v["user"], &v["uid"]) {
        (Value::String(s), _) => s.clone(),
        (_, Value::Null) => "-".into(),
        (_, uid) => uid.to_string(),
    }
}

/// The cells of a user's or cgroup's line, from its JSON.
fn group_cells(g: &Value, first: &[&str]) -> Vec<String> {
    let mut cells: Vec<String> = first
        .iter()
        .map(|k| match *k {
            "user" => user_cell(g),
            k => cell(&g[k]),
        })
        .collect();
    for k in ["processes", "buffers", "fds", "mappings", "rss", "pss"] {
        cells.push(g[k].to_string());
    }
    cells
}

fn by_user(scene: &Scene) -> Result<String> {
    let e = &scene.expect;
    let want = Want::new(e, &all_visible, true);
    let users = want.users();
    ensure!(
        users.len() == 2,
        "the scene has {} users, not 2",
        users.len()
    );
    let v = json_of(&["--by", "user"], None)?;
    same_list("user", "uid", &v["users"], &users)?;
    let (text, _) = text_of(&["--by", "user", "--bytes"], None)?;
    let rows = table(
        &text,
        &["USER", "UID", "PROCS", "BUFS", "FDS", "MAPS", "RSS", "PSS"],
    )?;
    for (row, u) in rows.iter().zip(&users) {
        let cells = group_cells(u, &["user", "uid"]);
        ensure!(*row == cells, "line {row:?}, expected {cells:?}");
    }
    ensure!(
        rows.len() == users.len() + 1,
        "{} lines, expected {} users and the totals:\n{text}",
        rows.len(),
        users.len()
    );
    let names: Vec<String> = users.iter().map(|u| u["user"].to_string()).collect();
    Ok(format!(
        "users {}: processes, distinct buffers, fds, mappings, Rss and Pss, in JSON and the table",
        names.join(" and ")
    ))
}

fn by_cgroup(scene: &Scene) -> Result<String> {
    let e = &scene.expect;
    if let Err(why) = &e.cgroups {
        bail!("cannot test --by cgroup: {why}");
    }
    let want = Want::new(e, &all_visible, true);
    let cgroups = want.cgroups();
    ensure!(
        cgroups.len() == 2,
        "the scene's holders are in {} cgroups, not 2",
        cgroups.len()
    );
    let v = json_of(&["--by", "cgroup"], None)?;
    same_list("cgroup", "cgroup", &v["cgroups"], &cgroups)?;
    let (text, _) = text_of(&["--by", "cgroup", "--bytes"], None)?;
    let rows = table(
        &text,
        &["CGROUP", "PROCS", "BUFS", "FDS", "MAPS", "RSS", "PSS"],
    )?;
    for (row, c) in rows.iter().zip(&cgroups) {
        let cells = group_cells(c, &["cgroup"]);
        ensure!(*row == cells, "line {row:?}, expected {cells:?}");
    }
    let pss: u64 = cgroups.iter().filter_map(|c| c["pss"].as_u64()).sum();
    ensure!(
        json!(pss) == want.totals()["pss"],
        "the cgroups' Pss add up to {pss}, the total Pss is {}",
        want.totals()["pss"]
    );
    let paths: Vec<String> = cgroups.iter().map(|c| c["cgroup"].to_string()).collect();
    Ok(format!(
        "cgroups {}: processes, distinct buffers, fds, mappings, Rss and Pss (adding up to the total Pss)",
        paths.join(" and ")
    ))
}

fn process_owners(scene: &Scene) -> Result<String> {
    let e = &scene.expect;
    let want = Want::new(e, &all_visible, true).owners();
    let v = json_of(&["--by", "process", "-o", "+uid,user,cgroup"], None)?;
    same_list("process", "pid", &v["processes"], &want.processes())?;
    Ok(format!(
        "{} processes with the uid, user name and cgroup the test gave them",
        want.processes().len()
    ))
}

/// `lsdmabuf ARGS --csv`, parsed.
fn csv_rows(args: &[&str]) -> Result<Vec<Vec<String>>> {
    let mut all = vec!["--csv"];
    all.extend_from_slice(args);
    let (text, _) = text_of(&all, None)?;
    ensure!(
        text.is_empty() || text.ends_with("\r\n"),
        "lsdmabuf {} does not end its lines with CRLF: {text:?}",
        all.join(" ")
    );
    lsdmabuf::human::parse_csv(&text)
        .map_err(|e| anyhow!("lsdmabuf {}: {e}:\n{text}", all.join(" ")))
}

fn csv(scene: &Scene) -> Result<String> {
    let e = &scene.expect;
    let want = Want::new(e, &all_visible, true).all();
    let rows = csv_rows(&["--all"])?;
    let mut expected = vec![vec![
        "INO".to_string(),
        "SIZE".into(),
        "EXPORTER".into(),
        "NAME".into(),
        "PROCS".into(),
        "HOLDERS".into(),
    ]];
    for b in want.buffers() {
        let holders = holder_cells(&b);
        expected.push(vec![
            b["ino"].to_string(),
            b["size"].to_string(),
            b["exporter"].as_str().unwrap_or("-").to_string(),
            b["name"].as_str().unwrap_or("-").to_string(),
            b["processes"].to_string(),
            if holders.is_empty() {
                "-".into()
            } else {
                holders.join(" ")
            },
        ]);
    }
    for (i, (got, want_row)) in rows.iter().zip(&expected).enumerate() {
        let what = if i == 0 {
            "the heading".to_string()
        } else {
            key_of(e, &json!(want_row[0].parse::<u64>().unwrap_or(0)))
        };
        ensure!(
            got == want_row,
            "--csv --all: {what}: row {got:?}, expected {want_row:?}"
        );
    }
    ensure!(
        rows.len() == expected.len(),
        "--csv --all: {} rows, expected {}",
        rows.len(),
        expected.len()
    );
    let shared = expected.iter().filter(|r| r[5].contains(' ')).count();

    let owners = Want::new(e, &all_visible, true).owners();
    let rows = csv_rows(&[
        "--by",
        "process",
        "-o",
        "pid,command,uid,user,cgroup,bufs,fds,maps,rss,pss",
    ])?;
    let mut expected = vec![[
        "PID", "COMMAND", "UID", "USER", "CGROUP", "BUFS", "FDS", "MAPS", "RSS", "PSS",
    ]
    .map(String::from)
    .to_vec()];
    for p in owners.processes() {
        expected.push(
            [
                "pid", "command", "uid", "user", "cgroup", "buffers", "fds", "mappings", "rss",
                "pss",
            ]
            .iter()
            .map(|k| match *k {
                "user" => user_cell(&p),
                k => cell(&p[k]),
            })
            .collect(),
        );
    }
    ensure!(
        rows == expected,
        "--csv --by process: rows {rows:?}, expected {expected:?}"
    );
    Ok(format!(
        "--csv: the {} buffer rows ({shared} with HOLDERS quoted, holding commas and spaces) and {} process rows with their owners parse back to the cells expected",
        want.buffers().len(),
        expected.len() - 1
    ))
}

/// JSON output without the time of its walk.
fn timeless(text: &str) -> Result<Value> {
    let mut v: Value = serde_json::from_str(text).context("not JSON")?;
    if let Some(scan) = v.get_mut("scan").and_then(Value::as_object_mut) {
        scan.remove("time");
    }
    Ok(v)
}

fn save_load() -> Result<String> {
    let file = "/tmp/lsdmabuf-vmtest.capture";
    let (_, err) = text_of(&["--save", file], None)?;
    ensure!(
        err.contains("saved the walk") && err.contains(file),
        "--save {file} said {err:?}"
    );
    let views: [&[&str]; 7] = [
        &["--by", "buffer"],
        &["--by", "process"],
        &["--by", "exporter"],
        &["--by", "holder"],
        &["--by", "user"],
        &["--by", "cgroup"],
        &["--all", "-o", "+importers"],
    ];
    let mut pairs = 0;
    for view in views {
        for format in ["--bytes", "-J", "--csv"] {
            let mut live: Vec<&str> = view.to_vec();
            live.push(format);
            let mut loaded = vec!["--load", file];
            loaded.extend_from_slice(&live);
            let (a, a_err) = text_of(&live, None)?;
            let (b, b_err) = text_of(&loaded, None)?;
            let what = live.join(" ");
            if format == "-J" {
                let (a, b) = (timeless(&a)?, timeless(&b)?);
                ensure!(
                    a == b,
                    "{what}: live and --load differ:\nlive: {a}\nload: {b}"
                );
            } else {
                ensure!(a == b, "{what}: live and --load differ:\n{a}\n---\n{b}");
            }
            ensure!(
                a_err == b_err,
                "{what}: the notes differ: live {a_err:?}, --load {b_err:?}"
            );
            pairs += 1;
        }
    }
    std::fs::remove_file(file).with_context(|| format!("rm {file}"))?;
    Ok(format!(
        "--load of a --save gives the live output in {} views x 3 formats ({pairs} pairs: tables, CSV, JSON but the walk's time)",
        views.len()
    ))
}

/// Lines of a child's stdout as they come; at its end, what was left
/// after the last newline, if anything.
enum Output {
    Line(String),
    Partial(String),
}

fn lines_of(w: &mut Watching) -> Result<Receiver<Output>> {
    let mut stdout = w.0.stdout.take().context("no stdout pipe")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 65536];
        loop {
            match stdout.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            while let Some(i) = buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buf.drain(..=i).collect();
                let text = String::from_utf8_lossy(&line[..i]).into_owned();
                if tx.send(Output::Line(text)).is_err() {
                    return;
                }
            }
        }
        if !buf.is_empty() {
            let _ = tx.send(Output::Partial(String::from_utf8_lossy(&buf).into_owned()));
        }
    });
    Ok(rx)
}

/// The next line, within `limit`.
fn next_line(rx: &Receiver<Output>, limit: Duration, what: &str) -> Result<String> {
    match rx.recv_timeout(limit) {
        Ok(Output::Line(l)) => Ok(l),
        Ok(Output::Partial(p)) => bail!("{what}: output ended in the middle of a line: {p:?}"),
        Err(_) => bail!("{what}: no line within {} s", limit.as_secs()),
    }
}

/// Sends SIGINT and waits for the child: its exit status, and the lines it
/// printed after the ones read.
fn interrupt(mut w: Watching, rx: &Receiver<Output>) -> Result<(Option<i32>, Vec<String>)> {
    let child = &mut w.0;
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).context("kill -INT")?;
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().context("waitpid")? {
            break status;
        }
        if start.elapsed() > Duration::from_secs(30) {
            // Dropping `w` kills and reaps it.
            bail!("still running 30 s after SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut rest = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Output::Line(l)) => rest.push(l),
            Ok(Output::Partial(p)) => bail!("after SIGINT, a partial line: {p:?}"),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => bail!("stdout still open after the exit"),
        }
    }
    Ok((status.code(), rest))
}

/// A running `lsdmabuf --watch`, killed and reaped when dropped: a check
/// that fails half way leaves no process behind (in the scene's cgroup).
struct Watching(Child);

impl Drop for Watching {
    fn drop(&mut self) {
        // Once reaped, std signals it no more: the pid may be another's.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_watch(args: &[&str]) -> Result<Watching> {
    let path = lsdmabuf_path()?;
    Command::new(&path)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map(Watching)
        .with_context(|| format!("running {} {}", path.display(), args.join(" ")))
}

/// Two ticks of `--watch 2 -J`, with a buffer made and one closed between
/// them, then SIGINT; and SIGINT to `--watch 1` after its first table.
pub fn watch(scene: &Scene, f: &Factory) -> Result<String> {
    let me = std::process::id() as i32;
    let page = f.page;
    let old = f.create(Exporter::Heap, 1, Some("watch-old"))?;
    let old_ino = fstat(old.as_fd()).context("fstat")?.st_ino;
    let mut child = spawn_watch(&["--watch", "2", "-J"])?;
    let rx = lines_of(&mut child)?;
    let limit = Duration::from_secs(60);
    let tick0: Value = serde_json::from_str(&next_line(&rx, limit, "the first tick")?)
        .context("the first tick is not JSON")?;
    ensure!(
        tick0["tick"] == 0 && tick0["report"].is_object(),
        "the first tick is {tick0}"
    );
    let mut want_inos: Vec<u64> = Want::new(&scene.expect, &all_visible, true)
        .buffers()
        .iter()
        .filter_map(|b| b["ino"].as_u64())
        .collect();
    want_inos.push(old_ino);
    want_inos.sort();
    let got: Vec<u64> = tick0["report"]["buffers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| b["ino"].as_u64())
        .collect();
    ensure!(
        got == want_inos,
        "tick 0 lists inodes {got:?}, expected {want_inos:?}"
    );
    // Between the ticks: one buffer made, one closed.
    let new = f.create(Exporter::Heap, 3, Some("watch-new"))?;
    let new_ino = fstat(new.as_fd()).context("fstat")?.st_ino;
    let new_fd = new.as_raw_fd();
    drop(old);
    let tick1: Value = serde_json::from_str(&next_line(&rx, limit, "the second tick")?)
        .context("the second tick is not JSON")?;
    let c = &tick1["changes"];
    ensure!(tick1["tick"] == 1, "the second tick is {tick1}");
    let inos = |k: &str| -> Vec<Value> {
        c[k].as_array()
            .into_iter()
            .flatten()
            .map(|b| b["ino"].clone())
            .collect()
    };
    ensure!(
        inos("new") == [json!(new_ino)] && inos("gone") == [json!(old_ino)],
        "tick 1: new {:?}, gone {:?}; expected new [{new_ino}], gone [{old_ino}]",
        inos("new"),
        inos("gone")
    );
    same_object(
        "tick 1's new buffer",
        &c["new"][0],
        &json!({"size": 3 * page, "name": "watch-new", "exporter": "system", "processes": 1,
                "holders": [{"pid": me, "command": crate::want::comm(me), "fds": [new_fd],
                             "mappings": 0, "mapped_bytes": 0, "pss": 3 * page}]}),
    )?;
    same_object(
        "tick 1's gone buffer",
        &c["gone"][0],
        &json!({"size": page, "name": "watch-old"}),
    )?;
    let grew = 2 * page as i64;
    same_list(
        "tick 1's processes",
        "pid",
        &c["processes"],
        &[
            json!({"change": "changed", "pid": me, "buffers_change": 0, "fds_change": 0,
                 "mappings_change": 0, "rss_change": grew, "pss_change": grew}),
        ],
    )?;
    ensure!(
        c["buffers_change"] == 0 && c["size_change"] == grew,
        "tick 1: buffers_change {}, size_change {}; expected 0 and {grew}",
        c["buffers_change"],
        c["size_change"]
    );
    let (status, rest) = interrupt(child, &rx)?;
    ensure!(
        status == Some(0),
        "--watch exited with {status:?} on SIGINT, expected 0"
    );
    for l in &rest {
        let t: Value =
            serde_json::from_str(l).with_context(|| format!("a line after SIGINT: {l:?}"))?;
        ensure!(t["changes"].is_object(), "a tick after SIGINT is {t}");
    }
    drop(new);

    // The table view: SIGINT after the first table, whole lines only.
    let mut child = spawn_watch(&["--watch", "1"])?;
    let rx = lines_of(&mut child)?;
    let mut lines = 0;
    loop {
        let l = next_line(&rx, limit, "--watch 1")?;
        lines += 1;
        if l.starts_with("total: ") {
            break;
        }
    }
    let (status, rest) = interrupt(child, &rx)?;
    ensure!(
        status == Some(0),
        "--watch 1 exited with {status:?} on SIGINT, expected 0"
    );
    Ok(format!(
        "tick 1 of --watch 2 -J: new ino {new_ino} ({} bytes), gone ino {old_ino} ({page}), the test's Rss and Pss +{grew}, nothing else; SIGINT: status 0, whole lines ({} JSON ticks, then {lines} + {} table lines)",
        3 * page,
        2 + rest.len(),
        rest.len()
    ))
}
