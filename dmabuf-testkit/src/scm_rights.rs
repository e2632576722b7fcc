// SPDX-License-Identifier: GPL-2.0
//! Fds passed to another process over a Unix socket (`SCM_RIGHTS`): a
//! message of a few bytes with at most one fd attached, which the receiver
//! gets as a new fd of its own, of the same open file.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use anyhow::{Context, Result};
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};

/// Two connected Unix sockets that keep each message whole
/// (`SOCK_SEQPACKET`), close-on-exec.
pub fn seqpacket_pair() -> Result<(OwnedFd, OwnedFd)> {
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .context("socketpair(AF_UNIX, SOCK_SEQPACKET)")
}

/// Sends `bytes` as one message on `sock`, with `fd` attached when given.
pub fn send(sock: BorrowedFd<'_>, bytes: &[u8], fd: Option<BorrowedFd<'_>>) -> nix::Result<()> {
    let fds = fd.map(|f| [f.as_raw_fd()]);
    let cmsgs: Vec<ControlMessage> = fds
        .as_ref()
        .map(|f| ControlMessage::ScmRights(f))
        .into_iter()
        .collect();
    sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(bytes)],
        &cmsgs,
        MsgFlags::empty(),
        None,
    )?;
    Ok(())
}

/// Receives one message on `sock` into `buf`: how many bytes it had, and
/// the fd that came with it (close-on-exec); `None` when the peer closed
/// its end.
pub fn recv(sock: BorrowedFd<'_>, buf: &mut [u8]) -> nix::Result<Option<(usize, Option<OwnedFd>)>> {
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut fd = None;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for raw in fds {
                // SAFETY: SCM_RIGHTS just installed `raw` in this process;
                // nothing else owns it.
                let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                fd.get_or_insert(owned);
            }
        }
    }
    if msg.bytes == 0 && fd.is_none() {
        return Ok(None);
    }
    Ok(Some((msg.bytes, fd)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::stat::fstat;
    use std::os::fd::AsFd;

    #[test]
    fn an_fd_arrives_as_the_same_file_with_its_message() {
        let (a, b) = seqpacket_pair().unwrap();
        let (read_end, _write_end) = nix::unistd::pipe().unwrap();
        send(a.as_fd(), b"keep 1", Some(read_end.as_fd())).unwrap();
        send(a.as_fd(), b"ok", None).unwrap();
        let mut buf = [0u8; 16];
        let (n, fd) = recv(b.as_fd(), &mut buf).unwrap().unwrap();
        assert_eq!(&buf[..n], b"keep 1");
        let fd = fd.expect("the fd sent");
        assert_ne!(fd.as_raw_fd(), read_end.as_raw_fd());
        assert_eq!(fstat(&fd).unwrap().st_ino, fstat(&read_end).unwrap().st_ino);
        let (n, fd) = recv(b.as_fd(), &mut buf).unwrap().unwrap();
        assert_eq!((&buf[..n], fd.is_none()), (&b"ok"[..], true));
        drop(a);
        assert!(recv(b.as_fd(), &mut buf).unwrap().is_none());
    }
}
