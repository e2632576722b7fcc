// SPDX-License-Identifier: GPL-2.0
//! The `lsdmabuf` binary that sits next to this one, run with the checks'
//! arguments: its output as it is, as JSON, or as text.

use std::os::unix::process::CommandExt;
use std::process::{Command, Output};

use anyhow::{ensure, Context, Result};
use serde_json::Value;

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

/// `lsdmabuf ARGS`, which must succeed.
fn succeeding(args: &[&str], uid: Option<u32>) -> Result<Output> {
    let out = lsdmabuf(args, uid)?;
    ensure!(
        out.status.success(),
        "lsdmabuf {} exited with {}: {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(out)
}

/// `lsdmabuf -J ARGS`, which must succeed, parsed.
pub fn json_of(args: &[&str], uid: Option<u32>) -> Result<Value> {
    let mut all = vec!["-J"];
    all.extend_from_slice(args);
    let out = succeeding(&all, uid)?;
    serde_json::from_slice(&out.stdout)
        .with_context(|| format!("lsdmabuf {} printed no JSON", all.join(" ")))
}

/// The text of `lsdmabuf ARGS`, which must succeed: its stdout and stderr.
pub fn text_of(args: &[&str], uid: Option<u32>) -> Result<(String, String)> {
    let out = succeeding(args, uid)?;
    Ok((
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}
