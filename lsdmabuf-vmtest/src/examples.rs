// SPDX-License-Identifier: GPL-2.0
//! `--examples`: what lsdmabuf shows of the scene in each view, as a user
//! would see it (the README's examples come from it): each command, then
//! its output and its notes.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use dmabuf::sys::NOBODY;
use dmabuf_testkit::Exporter;

use crate::binary::{lsdmabuf, lsdmabuf_path};
use crate::scene::Factory;

fn show(args: &[&str], uid: Option<u32>) -> Result<()> {
    let out = lsdmabuf(args, uid)?;
    let who = if uid.is_some() {
        "$ (as nobody) "
    } else {
        "$ "
    };
    let mut line = format!("{who}lsdmabuf");
    for a in args {
        line.push(' ');
        line.push_str(a);
    }
    println!("{line}");
    print!("{}", String::from_utf8_lossy(&out.stdout));
    for l in String::from_utf8_lossy(&out.stderr).lines() {
        println!("{l}");
    }
    println!();
    Ok(())
}

/// `lsdmabuf --watch 2` while a buffer is made and another closed, ended
/// with SIGINT after its second tick.
fn watch(f: &Factory) -> Result<()> {
    let old = f.create(Exporter::Heap, 1, Some("frame-old"))?;
    let path = lsdmabuf_path()?;
    let mut child = Command::new(&path)
        .args(["--watch", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("lsdmabuf --watch 2")?;
    // The first tick is printed at once; the change comes before the
    // second, which is printed 2 s after it.
    std::thread::sleep(Duration::from_millis(1500));
    let new = f.create(Exporter::Heap, 4, Some("frame-new"))?;
    drop(old);
    std::thread::sleep(Duration::from_millis(2500));
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).context("kill -INT")?;
    let mut text = String::new();
    child
        .stdout
        .take()
        .context("no stdout")?
        .read_to_string(&mut text)
        .context("reading lsdmabuf --watch")?;
    let status = child.wait().context("waitpid")?;
    println!("$ lsdmabuf --watch 2");
    print!("{text}");
    println!("^C ({status})");
    println!();
    drop(new);
    Ok(())
}

/// Prints each view of the scene.
pub fn print(f: &Factory) -> Result<()> {
    let me = std::process::id().to_string();
    for args in [
        &[][..],
        &["--by", "process"],
        &["--by", "exporter"],
        &["--all", "-o", "+importers"],
        &["--by", "user"],
        &["--by", "cgroup"],
        &["--by", "process", "-o", "+user,cgroup"],
        &["--by", "holder", "-p", &me],
        &["--csv", "--by", "process"],
    ] {
        show(args, None)?;
    }
    show(&[], Some(NOBODY))?;
    show(&["--by", "exporter"], Some(NOBODY))?;
    let file = "/tmp/lsdmabuf-examples.capture";
    show(&["--save", file, "--by", "exporter"], None)?;
    show(&["--load", file, "--by", "user"], None)?;
    std::fs::remove_file(file).with_context(|| format!("rm {file}"))?;
    watch(f)
}
