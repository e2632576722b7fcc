// SPDX-License-Identifier: GPL-2.0
//! One buffer, one st_ino, however it is reached: a dup(), a child, another
//! process over SCM_RIGHTS, /proc/PID/maps and map_files of a mapping; and
//! never an st_ino that an earlier buffer of the run had.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use anyhow::{anyhow, bail, Context, Result};
use nix::sys::socket::MsgFlags;
use nix::sys::stat::{fstat, stat};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, getpid, ForkResult, Pid};

use dmabuf::parse::maps;
use dmabuf::sys;
use dmabuf_testkit::scm_rights;
use dmabuf_testkit::{Backing, Exporter};

use super::population::dev_name;
use super::Ctx;
use crate::buffers::DmaBuf;

/// Buffer sizes, in pages, of the checks that follow a few buffers.
const SAMPLE_PAGES: [u64; 3] = [1, 3, 256];

fn sample(ctx: &Ctx, e: Exporter) -> Result<Vec<DmaBuf>> {
    SAMPLE_PAGES
        .iter()
        .map(|p| ctx.f.create(e, p * ctx.f.page, Backing::OwnMemfd))
        .collect()
}

pub fn dup_ino(ctx: &mut Ctx, e: Exporter) -> Result<String> {
    for b in sample(ctx, e)? {
        let dup = nix::unistd::dup(b.fd()).context("dup")?;
        let st = fstat(&dup).context("fstat of the dup")?;
        if st.st_ino != b.ino() || st.st_dev != b.stat.st_dev {
            bail!(
                "dup() of a {} byte buffer has st_ino {} on {}: expected {} on {}",
                b.size,
                st.st_ino,
                dev_name(st.st_dev),
                b.ino(),
                dev_name(b.stat.st_dev)
            );
        }
    }
    Ok(format!("{} buffers", SAMPLE_PAGES.len()))
}

/// What a child reports about one fd: `st_ino fdinfo-ino`.
fn describe_fd(fd: BorrowedFd<'_>) -> String {
    match (fstat(fd), sys::fdinfo(fd)) {
        (Ok(st), Ok(info)) => format!("{} {}", st.st_ino, info.ino),
        (Err(e), _) => format!("error fstat: {e}"),
        (_, Err(e)) => format!("error fdinfo: {e:#}"),
    }
}

/// Compares a child's `st_ino fdinfo-ino` report on `b` with `b`.
fn compare_report(how: &str, b: &DmaBuf, report: &str) -> Result<()> {
    let mut it = report.split(' ');
    let (Some(ino), Some(fdinfo_ino), None) = (it.next(), it.next(), it.next()) else {
        bail!(
            "{how}: the other process reported {report:?} on the {} byte buffer",
            b.size
        );
    };
    let (ino, fdinfo_ino): (u64, u64) = (ino.parse()?, fdinfo_ino.parse()?);
    if ino != b.ino() || fdinfo_ino != b.ino() {
        bail!(
            "{how}: st_ino {ino} and fdinfo ino {fdinfo_ino} of the {} byte buffer: expected {}, as in the parent",
            b.size,
            b.ino()
        );
    }
    Ok(())
}

/// Waits for `child`; fails unless it exited 0.
fn reap(child: Pid) -> Result<()> {
    match waitpid(child, None).context("waitpid")? {
        WaitStatus::Exited(_, 0) => Ok(()),
        status => Err(anyhow!("the child process ended with {status:?}")),
    }
}

/// Runs `body` in a child process, which exits with its status; the
/// caller must be single-threaded, as the checks are outside `concurrency`.
fn in_child(body: impl FnOnce() -> i32) -> Result<Pid> {
    // SAFETY: the validator is single-threaded here (the concurrency
    // check joins its threads before it returns), so the child may run
    // any code; it leaves with _exit() and runs no destructor of the
    // parent's state.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            let status = body();
            // SAFETY: _exit() ends the child without unwinding.
            unsafe { libc::_exit(status) }
        }
        ForkResult::Parent { child } => Ok(child),
    }
}

pub fn fork_ino(ctx: &mut Ctx, e: Exporter) -> Result<String> {
    let bufs = sample(ctx, e)?;
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe2")?;
    let child = in_child(|| {
        let report: String = bufs.iter().map(|b| describe_fd(b.fd()) + "\n").collect();
        match nix::unistd::write(&w, report.as_bytes()) {
            Ok(n) if n == report.len() => 0,
            _ => 1,
        }
    })?;
    drop(w);
    let mut report = String::new();
    let read = std::io::Read::read_to_string(&mut std::fs::File::from(r), &mut report)
        .context("reading the child's report");
    reap(child)?;
    read?;
    let lines: Vec<&str> = report.lines().collect();
    if lines.len() != bufs.len() {
        bail!(
            "the child reported {report:?}: expected one line per buffer, {}",
            bufs.len()
        );
    }
    for (b, line) in bufs.iter().zip(lines) {
        compare_report("after fork()", b, line)?;
    }
    Ok(format!(
        "{} buffers, st_ino and fdinfo ino in the child",
        bufs.len()
    ))
}

/// Receives one fd and its one-byte message on `sock`; `None` at the end.
fn recv_fd(sock: BorrowedFd<'_>) -> nix::Result<Option<OwnedFd>> {
    let mut byte = [0u8; 1];
    match scm_rights::recv(sock, &mut byte)? {
        None => Ok(None),
        Some((_, Some(fd))) => Ok(Some(fd)),
        Some((_, None)) => Err(nix::errno::Errno::EBADMSG),
    }
}

pub fn scm_rights_ino(ctx: &mut Ctx, e: Exporter) -> Result<String> {
    let (ours, theirs) = scm_rights::seqpacket_pair()?;
    let mut ours = Some(ours);
    // The other process starts before the buffers exist: it can only have
    // them from the messages.
    let child = in_child(|| {
        // The child's copy of the parent's end goes, so that the parent
        // closing its own ends the stream.
        drop(ours.take());
        loop {
            let reply = match recv_fd(theirs.as_fd()) {
                Ok(None) => return 0,
                Ok(Some(fd)) => describe_fd(fd.as_fd()),
                Err(e) => format!("error recvmsg: {e}"),
            };
            if nix::sys::socket::send(theirs.as_raw_fd(), reply.as_bytes(), MsgFlags::empty())
                .is_err()
            {
                return 1;
            }
        }
    })?;
    drop(theirs);
    let ours = ours.expect("only the child takes it");
    let result = (|| -> Result<usize> {
        let bufs = sample(ctx, e)?;
        for b in &bufs {
            scm_rights::send(ours.as_fd(), b"f", Some(b.fd())).context("sendmsg(SCM_RIGHTS)")?;
            let mut reply = [0u8; 512];
            let n = nix::sys::socket::recv(ours.as_raw_fd(), &mut reply, MsgFlags::empty())
                .context("recv")?;
            compare_report("after SCM_RIGHTS", b, &String::from_utf8_lossy(&reply[..n]))?;
        }
        Ok(bufs.len())
    })();
    // The end of the stream tells the other process to exit.
    drop(ours);
    reap(child)?;
    Ok(format!(
        "{} buffers, st_ino and fdinfo ino in the receiving process",
        result?
    ))
}

/// Maps each sample buffer and closes its fd: (mapping, st_ino, st_dev, size).
fn mapped_sample(ctx: &Ctx, e: Exporter) -> Result<Vec<(sys::Mapping, u64, u64, u64)>> {
    let mut maps = Vec::new();
    for b in sample(ctx, e)? {
        let m = sys::Mapping::shared(b.fd(), b.size)?;
        maps.push((m, b.ino(), b.stat.st_dev, b.size));
        // `b` and its fd close here; the mapping outlives them.
    }
    Ok(maps)
}

pub fn maps_ino(ctx: &mut Ctx, e: Exporter) -> Result<String> {
    let mapped = mapped_sample(ctx, e)?;
    let path = format!("/proc/{}/maps", getpid());
    let text = sys::read_text(&path)?;
    let entries = maps::parse(&text).with_context(|| format!("parsing {path}"))?;
    for (m, ino, dev, size) in &mapped {
        let entry = entries
            .iter()
            .find(|x| x.start == m.start())
            .ok_or_else(|| {
                anyhow!(
                    "{path} has no mapping at {:#x}, where a {size} byte buffer is mapped",
                    m.start()
                )
            })?;
        if entry.end != m.end() {
            bail!(
                "{path} maps {:#x}-{:#x}: expected {:#x}-{:#x}",
                entry.start,
                entry.end,
                m.start(),
                m.end()
            );
        }
        let seen = format!("{:02x}:{:02x}", entry.major, entry.minor);
        if entry.inode != *ino || seen != dev_name(*dev) {
            bail!(
                "{path} shows inode {} on {seen} for a {size} byte buffer whose fd is closed: expected its st_ino {ino} on {}",
                entry.inode,
                dev_name(*dev)
            );
        }
    }
    Ok(format!("{} mappings, fds closed", mapped.len()))
}

pub fn map_files_ino(ctx: &mut Ctx, e: Exporter) -> Result<String> {
    let mapped = mapped_sample(ctx, e)?;
    for (m, ino, dev, size) in &mapped {
        let path = format!("/proc/{}/map_files/{:x}-{:x}", getpid(), m.start(), m.end());
        let st = stat(path.as_str()).with_context(|| format!("stat {path}"))?;
        if st.st_ino != *ino || st.st_dev != *dev {
            bail!(
                "stat {path} gives st_ino {} on {} for a {size} byte buffer whose fd is closed: expected {ino} on {}",
                st.st_ino,
                dev_name(st.st_dev),
                dev_name(*dev)
            );
        }
    }
    Ok(format!("{} mappings, fds closed", mapped.len()))
}

pub fn st_ino_not_reused(ctx: &mut Ctx, e: Exporter) -> Result<String> {
    // Create and close buffers in rounds, so that a kernel that recycles
    // freed inodes' numbers gets the chance to; every buffer the run made
    // before counts too.
    const ROUNDS: usize = 8;
    const BATCH: u64 = 64;
    let page = ctx.f.page;
    let arena = match e {
        Exporter::Udmabuf => Some(
            dmabuf::uapi::udmabuf::sealed_memfd(BATCH * page)
                .context("memfd sealed with F_SEAL_SHRINK")?,
        ),
        Exporter::Heap => None,
    };
    for _ in 0..ROUNDS {
        let batch = (0..BATCH)
            .map(|i| {
                let backing = match &arena {
                    Some(m) => Backing::Slice(m.as_fd(), i * page),
                    None => Backing::OwnMemfd,
                };
                ctx.f.create(e, page, backing)
            })
            .collect::<Result<Vec<_>>>()?;
        drop(batch);
    }
    let (reuses, created) = ctx.f.reuses(e);
    match reuses.first() {
        None => Ok(format!("{created} {e} buffers in the run, each with an st_ino no earlier buffer had")),
        Some(r) => bail!(
            "st_ino {} of {} buffer #{} was {} buffer #{}'s already ({} of {created} {e} buffers of the run got an earlier st_ino)",
            r.ino,
            r.later.exporter,
            r.later.serial,
            r.earlier.exporter,
            r.earlier.serial,
            reuses.len()
        ),
    }
}
