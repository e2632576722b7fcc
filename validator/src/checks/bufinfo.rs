// SPDX-License-Identifier: GPL-2.0
//! debugfs bufinfo: every live buffer listed, and dropped after the last
//! reference.

use std::collections::HashMap;
use std::ffi::CString;

use anyhow::{bail, Context, Result};

use dmabuf::parse::bufinfo::{BufInfo, Buffer};
use dmabuf::sys;
use dmabuf::uapi::dma_buf;
use dmabuf_testkit::{Backing, Exporter};

use super::{Ctx, Findings};
use crate::buffers::DmaBuf;

pub fn bufinfo_lists(ctx: &mut Ctx, e: Exporter) -> Result<String> {
    let p = ctx.population(e)?;
    let info = sys::bufinfo()?;
    let mut by_ino: HashMap<u64, Vec<&Buffer>> = HashMap::with_capacity(info.buffers.len());
    for b in &info.buffers {
        by_ino.entry(b.ino).or_default().push(b);
    }
    let mut found = Findings::new(p.bufs.len());
    for (i, b) in p.bufs.iter().enumerate() {
        let name = p.names.as_ref().map(|n| n[i].as_str());
        let entries = by_ino.get(&b.ino()).map(Vec::as_slice).unwrap_or_default();
        let [entry] = entries else {
            found.add(|| {
                format!(
                    "st_ino {} of buffer {i} is listed {} times in bufinfo: expected once",
                    b.ino(),
                    entries.len()
                )
            });
            continue;
        };
        if entry.size != b.size {
            found.add(|| {
                format!(
                    "bufinfo size {} of buffer {i} (ino {}): expected {}",
                    entry.size,
                    b.ino(),
                    b.size
                )
            });
        } else if entry.exp_name != e.exp_name() {
            found.add(|| {
                format!(
                    "bufinfo exp_name {:?} of buffer {i}: expected {:?}",
                    entry.exp_name,
                    e.exp_name()
                )
            });
        } else if entry.name.as_deref() != name {
            found.add(|| {
                format!(
                    "bufinfo name {:?} of buffer {i}: expected {name:?}",
                    entry.name
                )
            });
        } else if entry.count != 1 {
            found.add(|| {
                format!(
                    "bufinfo count {} of buffer {i}, held by one fd: expected 1",
                    entry.count
                )
            });
        }
    }
    found.verdict(format!(
        "{} buffers listed once each ({} entries, {} bytes in all)",
        p.bufs.len(),
        info.total_objects,
        info.total_bytes
    ))
}

/// The bufinfo entries named `name`.
fn listed(info: &BufInfo, name: &str) -> usize {
    info.with_name(name).count()
}

/// Fails unless bufinfo lists `name` `expected` times (0 or 1), `when`.
fn expect_listed(name: &str, expected: usize, when: &str) -> Result<BufInfo> {
    let info = sys::bufinfo()?;
    let n = listed(&info, name);
    if n != expected {
        bail!("bufinfo lists the buffer named {name:?} {n} times {when}: expected {expected}");
    }
    Ok(info)
}

/// A new buffer with a name no other buffer has, to find it in bufinfo by.
fn named(ctx: &Ctx, e: Exporter, tag: &str) -> Result<(DmaBuf, String)> {
    let buf = ctx.f.create(e, ctx.f.page, Backing::OwnMemfd)?;
    let name = format!("drop-{tag}-{}", buf.serial);
    let c = CString::new(name.as_str()).expect("no NUL");
    dma_buf::set_name(buf.fd(), &c).with_context(|| format!("DMA_BUF_SET_NAME {name:?}"))?;
    Ok((buf, name))
}

pub fn bufinfo_drop(ctx: &mut Ctx, e: Exporter) -> Result<String> {
    // The buffers are found by a name of their own, not by st_ino, so that
    // this check is about dropping and nothing else.
    let before = sys::bufinfo()?.total_objects;

    // One fd: listed, then gone with the close().
    let (buf, name) = named(ctx, e, "fd")?;
    expect_listed(&name, 1, "while its fd is open")?;
    drop(buf);
    expect_listed(&name, 0, "after its only fd was closed")?;

    // A dup() keeps it.
    let (buf, name) = named(ctx, e, "dup")?;
    let dup = nix::unistd::dup(buf.fd()).context("dup")?;
    drop(buf);
    expect_listed(&name, 1, "after closing the fd while a dup() of it is open")?;
    drop(dup);
    expect_listed(&name, 0, "after closing the fd and its dup()")?;

    // A mapping keeps it.
    let (buf, name) = named(ctx, e, "mmap")?;
    let map = sys::Mapping::shared(buf.fd(), buf.size)?;
    drop(buf);
    expect_listed(&name, 1, "after closing the fd of a mapped buffer")?;
    drop(map);
    let after = expect_listed(&name, 0, "after closing its fd and unmapping it")?.total_objects;

    if after != before {
        bail!("bufinfo lists {after} buffers after the three were dropped: expected {before}, as before them");
    }
    Ok(format!(
        "dropped after close, after close of fd and dup, after close and munmap; {after} listed"
    ))
}
