// SPDX-License-Identifier: GPL-2.0
//! What lsdmabuf printed against what the scene wants: lists and objects of
//! its JSON, field by field, and what its tables must hold (the HOLDERS
//! cells, the totals line, the cells of each line). Each difference is an
//! error that names the first field or cell that differs.

use anyhow::{anyhow, bail, ensure, Result};
use serde_json::{json, Value};

use crate::scene::Expect;

/// Compares two lists of objects keyed by `id`; the message names the
/// first difference.
pub fn same_list(what: &str, id: &str, got: &Value, want: &[Value]) -> Result<()> {
    same_list_as(what, id, got, want, &|v| format!("{id} {}", v[id]))
}

/// [`same_list`] with the items named by `label`.
pub fn same_list_as(
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
pub fn same_object(what: &str, got: &Value, want: &Value) -> Result<()> {
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
pub fn key_of(expect: &Expect, ino: &Value) -> String {
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
pub fn same_buffers(what: &str, expect: &Expect, got: &Value, want: &[Value]) -> Result<()> {
    same_list_as(what, "ino", got, want, &|v| key_of(expect, &v["ino"]))
}

/// The HOLDERS cell's words of a buffer's JSON: `COMMAND[PID]:FDS,mem`,
/// one per holder.
pub fn holder_cells(b: &Value) -> Vec<String> {
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

/// The totals line lsdmabuf's README documents, from `totals`.
pub fn totals_line(t: &Value) -> String {
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
pub fn table(text: &str, heading: &[&str]) -> Result<Vec<Vec<String>>> {
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    ensure!(head == heading, "heading {head:?}, expected {heading:?}");
    Ok(lines
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect())
}
