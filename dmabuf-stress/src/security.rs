// SPDX-License-Identifier: GPL-2.0
//! An unprivileged process against root's dma-bufs: procfs must refuse it
//! exactly what it refuses for any other file of root's (a memfd here),
//! and a dma-buf it holds itself must look as usual.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{open, readlink, OFlag};
use nix::sys::stat::{fstat, stat, Mode};
use serde::{Deserialize, Serialize};

use dmabuf::sys::{self, Mapping, NOBODY};
use dmabuf::uapi::dma_buf;
use dmabuf::uapi::udmabuf;
use dmabuf_testkit::tap::Tap;
use dmabuf_testkit::Exporter;

use crate::common::{backing, export, names, open_devices, Listed};

/// The checks of `security`, in the order it reports them.
pub fn checks() -> Vec<Listed> {
    Exporter::ALL
        .iter()
        .flat_map(|e| {
            [
                Listed::new(
                    format!("security.{}.procfs_denied", e.name()),
                    format!(
                        "as uid {NOBODY}, stat, readlink and open of /proc/PID/fd/N, open of its \
                         fdinfo and stat and readlink of map_files of root's {} buffer are refused \
                         (EACCES or EPERM) exactly as for root's memfd",
                        e.name()
                    ),
                ),
                Listed::new(
                    format!("security.{}.own_buffer", e.name()),
                    format!(
                        "a {} buffer uid {NOBODY} holds itself shows root's st_ino, mode 0600 and \
                         its /dmabuf: link in its own /proc/self/fd",
                        e.name()
                    ),
                ),
            ]
        })
        .collect()
}

/// One file of the parent's to probe: its fd and the range of a mapping.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Target {
    pub what: String,
    pub fd: i32,
    pub range: String,
}

/// What the probe saw: per target, per attempt, "ok" or the errno; and its
/// own buffers.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Seen {
    pub attempts: BTreeMap<String, BTreeMap<String, String>>,
    pub own: BTreeMap<String, Own>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Own {
    pub fstat_ino: u64,
    pub mode: u32,
    pub proc_stat_ino: Option<u64>,
    pub link: Option<String>,
}

fn outcome<T>(r: nix::Result<T>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => format!("{e:?}"),
    }
}

/// In the child, as nobody: tries procfs on the parent's files, and looks
/// at the buffers it inherited.
pub fn probe(pid: i32, targets: &[Target], own: &[(String, i32)]) -> Result<Seen> {
    let mut seen = Seen::default();
    for t in targets {
        let fd = format!("/proc/{pid}/fd/{}", t.fd);
        let info = format!("/proc/{pid}/fdinfo/{}", t.fd);
        let map = format!("/proc/{pid}/map_files/{}", t.range);
        let mut a = BTreeMap::new();
        a.insert("stat fd".into(), outcome(stat(fd.as_str())));
        a.insert("readlink fd".into(), outcome(readlink(fd.as_str())));
        a.insert(
            "open fd".into(),
            outcome(open(fd.as_str(), OFlag::O_RDONLY, Mode::empty())),
        );
        a.insert(
            "open fdinfo".into(),
            outcome(open(info.as_str(), OFlag::O_RDONLY, Mode::empty())),
        );
        a.insert("stat map_files".into(), outcome(stat(map.as_str())));
        a.insert("readlink map_files".into(), outcome(readlink(map.as_str())));
        seen.attempts.insert(t.what.clone(), a);
    }
    for (what, fd) in own {
        // SAFETY: the fd was inherited from the parent, which left it open
        // for this process; it is only looked at, never closed.
        let b = unsafe { std::os::fd::BorrowedFd::borrow_raw(*fd) };
        let st = fstat(b).with_context(|| format!("fstat of the inherited {what} buffer"))?;
        let path = format!("/proc/self/fd/{fd}");
        seen.own.insert(
            what.clone(),
            Own {
                fstat_ino: st.st_ino,
                mode: st.st_mode,
                proc_stat_ino: stat(path.as_str()).ok().map(|s| s.st_ino),
                link: readlink(path.as_str())
                    .ok()
                    .map(|l| l.to_string_lossy().into_owned()),
            },
        );
    }
    Ok(seen)
}

fn denied(r: &str) -> bool {
    r == format!("{:?}", Errno::EACCES) || r == format!("{:?}", Errno::EPERM)
}

pub fn run(tap: &mut Tap) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("dmabuf-stress security runs as root (it makes root's buffers and probes them as uid {NOBODY})");
    }
    let d = open_devices()?;
    tap.plan_checks(names(&checks()));
    let memfd = backing(1)?;
    let page = sys::page_size();
    let bufs = [
        (
            Exporter::Udmabuf,
            export(&d, Exporter::Udmabuf, &memfd, 0).context("udmabuf export")?,
        ),
        (
            Exporter::Heap,
            export(&d, Exporter::Heap, &memfd, 0).context("heap alloc")?,
        ),
    ];
    let plain = udmabuf::sealed_memfd(page).context("the comparison memfd")?;
    let mut maps = Vec::new();
    let mut targets = Vec::new();
    for (what, fd) in bufs
        .iter()
        .map(|(e, fd)| (e.name(), fd.as_fd()))
        .chain([("memfd", plain.as_fd())])
    {
        let m = Mapping::shared(fd, page)?;
        targets.push(Target {
            what: what.into(),
            fd: fd.as_raw_fd(),
            range: format!("{:x}-{:x}", m.start(), m.end()),
        });
        maps.push(m);
    }
    // The probe's own buffers: dups without O_CLOEXEC, inherited by it.
    let dups = bufs
        .iter()
        .map(|(e, fd)| Ok((e.name().to_string(), nix::unistd::dup(fd)?)))
        .collect::<nix::Result<Vec<_>>>()
        .context("dup")?;
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg("security-probe")
        .arg("--pid")
        .arg(std::process::id().to_string())
        .arg("--targets")
        .arg(serde_json::to_string(&targets)?);
    for (what, fd) in &dups {
        cmd.arg("--own").arg(format!("{what}={}", fd.as_raw_fd()));
    }
    // std drops the supplementary groups when root sets a uid.
    let out = cmd
        .uid(NOBODY)
        .gid(NOBODY)
        .output()
        .context("run the probe as nobody")?;
    if !out.status.success() {
        bail!(
            "the probe (uid {NOBODY}) failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let seen: Seen = serde_json::from_slice(&out.stdout).context("the probe's output")?;
    let memfd_seen = seen.attempts.get("memfd").context("no memfd attempts")?;
    let open_to_nobody: Vec<&String> = memfd_seen
        .iter()
        .filter(|(_, r)| !denied(r))
        .map(|(k, _)| k)
        .collect();
    for (e, fd) in &bufs {
        let a = seen.attempts.get(e.name()).context("missing attempts")?;
        let mut problems = Vec::new();
        for (attempt, r) in a {
            let base = &memfd_seen[attempt];
            if !denied(r) {
                problems.push(format!(
                    "{attempt} on root's {} buffer as uid {NOBODY}: {r}, expected EACCES or EPERM",
                    e.name()
                ));
            }
            if r != base {
                problems.push(format!("{attempt}: {r} on the dma-buf, {base} on a memfd: the dma-buf inode changes what procfs allows"));
            }
        }
        if !open_to_nobody.is_empty() {
            problems.push(format!("procfs let uid {NOBODY} do {open_to_nobody:?} on root's memfd: this guest does not protect /proc/PID at all"));
        }
        let note: Vec<String> = a.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        tap.check(
            &format!("security.{}.procfs_denied", e.name()),
            if problems.is_empty() {
                Ok(note.join(", "))
            } else {
                Err(problems.join("\n"))
            },
        );
        let ino = fstat(fd).context("fstat")?.st_ino;
        let own = seen.own.get(e.name()).context("missing own buffer")?;
        let mut problems = Vec::new();
        if own.fstat_ino != ino {
            problems.push(format!(
                "fstat in the probe gives st_ino {}, root's buffer has {ino}",
                own.fstat_ino
            ));
        }
        if own.mode & 0o7777 != 0o600 {
            problems.push(format!(
                "st_mode {:o}: expected permission bits 0600",
                own.mode
            ));
        }
        if own.proc_stat_ino != Some(ino) {
            problems.push(format!(
                "stat /proc/self/fd of its own buffer gives {:?}: expected st_ino {ino}",
                own.proc_stat_ino
            ));
        }
        if !own
            .link
            .as_deref()
            .is_some_and(|l| l.starts_with(dma_buf::LINK_PREFIX))
        {
            problems.push(format!(
                "readlink /proc/self/fd of its own buffer gives {:?}: expected {}...",
                own.link,
                dma_buf::LINK_PREFIX
            ));
        }
        tap.check(
            &format!("security.{}.own_buffer", e.name()),
            if problems.is_empty() {
                Ok(format!("uid {NOBODY} sees the buffer it holds: st_ino {ino}, mode 0600, its /proc/self/fd link"))
            } else {
                Err(problems.join("\n"))
            },
        );
    }
    drop(maps);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checks_of_security() {
        assert_eq!(
            names(&checks()),
            [
                "security.udmabuf.procfs_denied",
                "security.udmabuf.own_buffer",
                "security.heap.procfs_denied",
                "security.heap.own_buffer"
            ]
        );
    }
}
