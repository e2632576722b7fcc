// SPDX-License-Identifier: GPL-2.0
//! Helper processes that hold dma-bufs as the test tells them.
//!
//! A helper is a forked child that talks with the test over a
//! `SOCK_SEQPACKET` socket pair: each message is one command, some with a
//! dma-buf fd attached (SCM_RIGHTS), and gets one reply. It exits when the
//! test closes its end of the socket.
//!
//! | command | fd | what the helper does | reply |
//! |---|---|---|---|
//! | `keep KEY` | yes | keeps the fd | `fd N` |
//! | `map KEY OFFSET LEN` | yes | maps LEN bytes at OFFSET shared, closes the fd | `map START-END` |
//! | `become UID` | no | drops to that uid and gid, no groups, dumpable | `ok` |
//!
//! A failed command replies `error: ...`.

use std::collections::BTreeSet;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use anyhow::{anyhow, bail, Context, Result};
use nix::sys::mman::ProtFlags;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult, Gid, Pid, Uid};

use dmabuf::sys::Mapping;
use dmabuf_testkit::scm_rights;

/// The longest command or reply.
const MESSAGE_MAX: usize = 256;

/// One helper process.
pub struct Child {
    pub pid: Pid,
    /// The test's end of the socket; `None` once closed.
    sock: Option<OwnedFd>,
}

impl Child {
    /// Forks a helper. It keeps the fds in `inherit` (at the same numbers,
    /// as fork() gives them) and closes every other fd above 2, so that it
    /// holds no dma-buf and no other helper's socket by accident.
    ///
    /// The caller must be single-threaded.
    pub fn spawn(inherit: &[BorrowedFd<'_>]) -> Result<Child> {
        let (ours, theirs) = scm_rights::seqpacket_pair()?;
        let mut keep: BTreeSet<RawFd> = inherit.iter().map(|fd| fd.as_raw_fd()).collect();
        keep.insert(theirs.as_raw_fd());
        // SAFETY: the test is single-threaded when it spawns helpers, so the
        // child may run any code; it leaves with _exit() and never returns
        // into the parent's code.
        match unsafe { fork() }.context("fork")? {
            ForkResult::Child => {
                drop(ours);
                let status = match close_all_but(&keep) {
                    Ok(()) => serve(theirs),
                    Err(_) => 3,
                };
                // SAFETY: _exit() ends the child without running the
                // parent's destructors.
                unsafe { libc::_exit(status) }
            }
            ForkResult::Parent { child } => Ok(Child {
                pid: child,
                sock: Some(ours),
            }),
        }
    }

    /// Sends `command` (with `fd` attached, if any) and returns the reply.
    pub fn ask(&self, command: &str, fd: Option<BorrowedFd<'_>>) -> Result<String> {
        let sock = self.sock.as_ref().context("the helper was closed")?;
        scm_rights::send(sock.as_fd(), command.as_bytes(), fd)
            .with_context(|| format!("sending `{command}` to helper {}", self.pid))?;
        let (reply, extra) = recv(sock.as_fd())
            .with_context(|| {
                format!(
                    "receiving the reply to `{command}` from helper {}",
                    self.pid
                )
            })?
            .ok_or_else(|| anyhow!("helper {} exited on `{command}`", self.pid))?;
        drop(extra);
        if let Some(e) = reply.strip_prefix("error: ") {
            bail!("helper {}: `{command}`: {e}", self.pid);
        }
        Ok(reply)
    }

    /// `keep KEY` with `fd`: the number the helper got it as.
    pub fn keep(&self, key: &str, fd: BorrowedFd<'_>) -> Result<i32> {
        let reply = self.ask(&format!("keep {key}"), Some(fd))?;
        reply
            .strip_prefix("fd ")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| anyhow!("helper {}: `keep {key}` replied {reply:?}", self.pid))
    }

    /// `map KEY OFFSET LEN` with `fd`: the mapping's start and end.
    pub fn map(&self, key: &str, fd: BorrowedFd<'_>, offset: u64, len: u64) -> Result<(u64, u64)> {
        let reply = self.ask(&format!("map {key} {offset} {len}"), Some(fd))?;
        reply
            .strip_prefix("map ")
            .and_then(|r| r.split_once('-'))
            .and_then(|(s, e)| {
                Some((
                    u64::from_str_radix(s, 16).ok()?,
                    u64::from_str_radix(e, 16).ok()?,
                ))
            })
            .ok_or_else(|| anyhow!("helper {}: `map {key}` replied {reply:?}", self.pid))
    }

    /// Closes the socket and waits for the helper to exit.
    pub fn finish(mut self) -> Result<()> {
        self.reap()
    }

    fn reap(&mut self) -> Result<()> {
        if self.sock.take().is_none() {
            return Ok(());
        }
        match waitpid(self.pid, None).with_context(|| format!("waitpid({})", self.pid))? {
            WaitStatus::Exited(_, 0) => Ok(()),
            status => bail!("helper {} ended with {status:?}", self.pid),
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.reap();
    }
}

/// Closes every fd above 2 of this process but those in `keep`.
fn close_all_but(keep: &BTreeSet<RawFd>) -> Result<()> {
    let open: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
        .context("read_dir /proc/self/fd")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    for fd in open {
        if fd > 2 && !keep.contains(&fd) {
            // The directory's own fd is in the list and already closed:
            // EBADF is expected for it.
            let _ = nix::unistd::close(fd);
        }
    }
    Ok(())
}

/// One message and the fd that came with it; `None` when the peer closed.
fn recv(sock: BorrowedFd<'_>) -> nix::Result<Option<(String, Option<OwnedFd>)>> {
    let mut buf = [0u8; MESSAGE_MAX];
    Ok(scm_rights::recv(sock, &mut buf)?
        .map(|(n, fd)| (String::from_utf8_lossy(&buf[..n]).into_owned(), fd)))
}

/// The helper's side: answers commands until the test closes the socket.
fn serve(sock: OwnedFd) -> i32 {
    // Kept fds and mappings live until the helper exits.
    let mut kept = Kept::default();
    loop {
        let (command, fd) = match recv(sock.as_fd()) {
            Ok(Some(m)) => m,
            Ok(None) => return 0,
            Err(_) => return 1,
        };
        let reply = match run(&command, fd, &mut kept) {
            Ok(r) => r,
            Err(e) => format!("error: {e:#}"),
        };
        if scm_rights::send(sock.as_fd(), reply.as_bytes(), None).is_err() {
            return 1;
        }
    }
}

/// What a helper holds until it exits.
#[derive(Default)]
struct Kept {
    fds: Vec<OwnedFd>,
    maps: Vec<Mapping>,
}

fn run(command: &str, fd: Option<OwnedFd>, kept: &mut Kept) -> Result<String> {
    let words: Vec<&str> = command.split(' ').collect();
    match (&words[..], fd) {
        (["keep", _], Some(fd)) => {
            let n = fd.as_raw_fd();
            kept.fds.push(fd);
            Ok(format!("fd {n}"))
        }
        (["map", _, offset, len], Some(fd)) => {
            let offset: u64 = offset.parse().context("offset")?;
            let len: u64 = len.parse().context("len")?;
            let map = Mapping::shared_range(fd.as_fd(), offset, len, ProtFlags::PROT_READ)?;
            // The mapping holds the buffer from now on; the fd goes.
            drop(fd);
            let (start, end) = map.range();
            kept.maps.push(map);
            Ok(format!("map {start:x}-{end:x}"))
        }
        (["become", uid], None) => {
            let uid: u32 = uid.parse().context("uid")?;
            nix::unistd::setgroups(&[]).context("setgroups")?;
            nix::unistd::setgid(Gid::from_raw(uid)).context("setgid")?;
            nix::unistd::setuid(Uid::from_raw(uid)).context("setuid")?;
            // setuid() made the process undumpable, which hands its /proc
            // files to root; an ordinary process of that user is dumpable.
            nix::sys::prctl::set_dumpable(true).context("prctl(PR_SET_DUMPABLE)")?;
            Ok("ok".into())
        }
        _ => bail!("unknown command {command:?}"),
    }
}
