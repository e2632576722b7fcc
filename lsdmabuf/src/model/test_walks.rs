// SPDX-License-Identifier: GPL-2.0
//! Walks made up for the model's tests: a process's maps text, and
//! processes holding dma-bufs by fd.

use crate::raw::{Raw, RawFd, RawProcess};

/// A process's maps: buffer 41 mapped whole, buffer 42 mapped one page at
/// offset 0x1000 (nothing else says its size), and lines of other files.
pub(super) const MAPS: &str = "\
55d0c0000000-55d0c0001000 r--p 00000000 fe:01 1234  /usr/bin/app
7f0000000000-7f0000002000 rw-s 00000000 00:0b 41    /dmabuf:frame
7f0000002000-7f0000003000 rw-s 00000000 00:01 7     /memfd:x (deleted)
7f0000003000-7f0000004000 rw-s 00001000 00:0b 42    /dmabuf:
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0     [stack]
";

/// A walk of one process, 10 (`app`), that holds buffer 41 (8K of
/// udmabuf, named `frame`) by fd 4 and whose maps text is `maps`.
pub(super) fn raw(maps: &str) -> Raw {
    Raw {
        processes: vec![RawProcess {
            pid: 10,
            comm: "app".into(),
            fds: vec![RawFd {
                fd: 4,
                link: "/dmabuf:frame".into(),
                fdinfo: Some(
                    "pos:\t0\nflags:\t02\nmnt_id:\t11\nino:\t41\nsize:\t8192\ncount:\t2\nexp_name:\tudmabuf\nname:\tframe\n"
                        .into(),
                ),
                stat: None,
            }],
            maps: maps.into(),
            ..RawProcess::default()
        }],
        read: 1,
        ..Raw::default()
    }
}

/// Fd `n`, a dma-buf of `size` bytes, inode `ino`, exported by `exp`.
pub(super) fn fd(n: i32, ino: u64, size: u64, exp: &str) -> RawFd {
    RawFd {
        fd: n,
        link: "/dmabuf:".into(),
        fdinfo: Some(format!(
            "pos:\t0\nflags:\t02000002\nmnt_id:\t15\nino:\t{ino}\nsize:\t{size}\ncount:\t1\nexp_name:\t{exp}\n"
        )),
        stat: None,
    }
}

/// Process `pid` (`comm`) holding `fds`.
pub(super) fn holder(pid: i32, comm: &str, fds: Vec<RawFd>) -> RawProcess {
    RawProcess {
        pid,
        comm: comm.into(),
        fds,
        ..RawProcess::default()
    }
}
