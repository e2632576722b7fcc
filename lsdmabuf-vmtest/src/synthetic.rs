// SPDX-License-Identifier: GPL-2.0
//! A /proc-like tree, for timing the scan where there are no dma-bufs (the
//! host): `PID/fd/N` links, `PID/fdinfo/N`, `PID/fdfs/N` (what statfs()
//! and stat() say of a dma-buf fd's file, as lsdmabuf's
//! `FsProbe::Described` reads it), `PID/maps`, `PID/comm`,
//! `PID/status`, `PID/cgroup` and a `bufinfo`, for processes that hold one
//! buffer each the way the speed check's crowd does ([`crate::speed::holds`]).
//! The text is this process's own maps and status, and fdinfo and bufinfo
//! in the kernel's format, so that the parsers and the model do the work
//! they do on the real thing. Regular files are cheaper to read than
//! procfs's, which makes the model's share larger than in the VM: the
//! ratios measure lsdmabuf's own cost, the VM's the whole.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::speed::holds;

/// The file that marks a tree as made here, so that it may be replaced.
const MARK: &str = ".lsdmabuf-synthetic";

/// The first pid of the tree.
pub const FIRST_PID: i32 = 100_000;

/// Builds the tree of `n` processes in `dir` (replacing one built before),
/// buffers of `page` bytes.
pub fn build(dir: &Path, n: usize, page: u64) -> Result<()> {
    if dir.exists() {
        if !dir.join(MARK).exists() {
            bail!(
                "{} exists and is not a tree --synthetic built: give a new directory",
                dir.display()
            );
        }
        fs::remove_dir_all(dir).with_context(|| format!("rm -r {}", dir.display()))?;
    }
    fs::create_dir_all(dir).with_context(|| format!("mkdir {}", dir.display()))?;
    fs::write(dir.join(MARK), "").context("the mark")?;
    let base_maps = fs::read_to_string("/proc/self/maps").context("/proc/self/maps")?;
    let status = fs::read_to_string("/proc/self/status").context("/proc/self/status")?;
    let mut bufinfo = String::from(
        "\nDma-buf Objects:\nsize    \tflags   \tmode    \tcount   \texp_name\tino     \tname\n",
    );
    for k in 0..n {
        let pid = FIRST_PID + k as i32;
        let ino = 1000 + k as u64;
        let p = dir.join(pid.to_string());
        let fd = p.join("fd");
        let fdinfo = p.join("fdinfo");
        fs::create_dir_all(&fd).with_context(|| format!("mkdir {}", fd.display()))?;
        fs::create_dir_all(&fdinfo)?;
        let (by_fd, by_map) = holds(k);
        let mut links = vec![
            (0, "/dev/null".to_string()),
            (1, "pipe:[4242]".into()),
            (2, "pipe:[4242]".into()),
            (3, format!("socket:[{}]", 50_000 + k)),
            (4, "/usr/lib/locale/locale-archive".into()),
            (5, "anon_inode:[eventfd]".into()),
        ];
        if by_fd {
            links.push((6, "/dmabuf:".into()));
            let fdfs = p.join("fdfs");
            fs::create_dir_all(&fdfs)?;
            // The dmabuf filesystem on device 0:15, `00:0f` in maps.
            fs::write(fdfs.join("6"), "444d4142 0:15\n")?;
            fs::write(
                fdinfo.join("6"),
                format!(
                    "pos:\t0\nflags:\t02000002\nmnt_id:\t15\nino:\t{ino}\nsize:\t{page}\ncount:\t1\nexp_name:\tsystem\n"
                ),
            )?;
        }
        for (n, target) in links {
            symlink(&target, fd.join(n.to_string()))?;
        }
        let mut maps = base_maps.clone();
        if by_map {
            let start = 0x7f00_0000_0000u64 + (k as u64) * 0x10_0000;
            let _ = writeln!(
                maps,
                "{start:x}-{:x} r--s 00000000 00:0f {ino:<20}       /dmabuf:",
                start + page
            );
        }
        fs::write(p.join("maps"), maps)?;
        fs::write(p.join("comm"), "crowd\n")?;
        fs::write(p.join("status"), &status)?;
        fs::write(p.join("cgroup"), "0::/synthetic\n")?;
        fs::write(
            p.join("stat"),
            format!("{pid} (crowd) S 1 1 1 0 -1 4194560 0\n"),
        )?;
        let _ = write!(
            bufinfo,
            "{page:08}\t00000002\t00080007\t00000001\tsystem\t{ino:08}\t<none>\n\tAttached Devices:\nTotal 0 devices attached\n\n"
        );
    }
    let _ = write!(bufinfo, "\nTotal {n} objects, {} bytes\n", n as u64 * page);
    fs::write(dir.join("bufinfo"), bufinfo)?;
    fs::write(
        dir.join("passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n",
    )?;
    Ok(())
}
