// SPDX-License-Identifier: GPL-2.0
//! Checks over the population of `--count` live buffers: fstat, fstatfs,
//! the fd's link and fdinfo, one buffer at a time.

use std::collections::HashMap;
use std::ffi::CString;

use anyhow::{anyhow, bail, Context, Result};
use nix::sys::stat::{major, minor};
use nix::sys::statfs::fstatfs;

use dmabuf::parse::fdinfo::FdInfo;
use dmabuf::sys;
use dmabuf::uapi::dma_buf::{self, ANON_INODE_FS_MAGIC, DMA_BUF_MAGIC, LINK_PREFIX};
use dmabuf_testkit::{Backing, Exporter};

use super::{Ctx, Findings};
use crate::buffers::Population;

/// `major:minor` of a device number, as /proc/PID/maps prints it.
pub fn dev_name(dev: u64) -> String {
    format!("{:02x}:{:02x}", major(dev), minor(dev))
}

pub fn st_ino_nonzero(ctx: &mut Ctx, e: Exporter) -> Result<String> {
    let p = ctx.population(e)?;
    let mut found = Findings::new(p.bufs.len());
    for (i, b) in p.bufs.iter().enumerate() {
        if b.ino() == 0 {
            found.add(|| format!("st_ino of buffer {i} is 0"));
        }
    }
    let (lo, hi) = p.bufs.iter().fold((u64::MAX, 0), |(lo, hi), b| {
        (lo.min(b.ino()), hi.max(b.ino()))
    });
    found.verdict(format!("{} buffers, st_ino {lo} to {hi}", p.bufs.len()))
}

pub fn st_ino_unique(ctx: &mut Ctx, e: Exporter) -> Result<String> {
    let p = ctx.population(e)?;
    let mut found = Findings::new(p.bufs.len());
    let mut owner: HashMap<u64, usize> = HashMap::with_capacity(p.bufs.len());
    for (i, b) in p.bufs.iter().enumerate() {
        if let Some(j) = owner.insert(b.ino(), i) {
            found.add(|| format!("st_ino {} of buffer {i} equals buffer {j}'s", b.ino()));
            owner.insert(b.ino(), j);
        }
    }
    found.verdict(format!(
        "{} live buffers, {} distinct st_ino",
        p.bufs.len(),
        owner.len()
    ))
}

pub fn st_size(ctx: &mut Ctx, e: Exporter) -> Result<String> {
    let p = ctx.population(e)?;
    let mut found = Findings::new(p.bufs.len());
    for (i, b) in p.bufs.iter().enumerate() {
        if b.stat.st_size as u64 != b.size {
            found.add(|| {
                format!(
                    "st_size {} of buffer {i}: expected its size {}",
                    b.stat.st_size, b.size
                )
            });
        }
    }
    found.verdict(format!("{} buffers of {} sizes", p.bufs.len(), sizes(p)))
}

pub fn st_blocks(ctx: &mut Ctx, e: Exporter) -> Result<String> {
    let p = ctx.population(e)?;
    let mut found = Findings::new(p.bufs.len());
    for (i, b) in p.bufs.iter().enumerate() {
        let bytes = b.stat.st_blocks as u64 * 512;
        if bytes != b.size {
            found.add(|| {
                format!(
                    "st_blocks {} ({bytes} bytes) of buffer {i}: expected {} (its size {} / 512)",
                    b.stat.st_blocks,
                    b.size / 512,
                    b.size
                )
            });
        }
    }
    found.verdict(format!("{} buffers of {} sizes", p.bufs.len(), sizes(p)))
}

pub fn st_blksize(ctx: &mut Ctx, e: Exporter) -> Result<String> {
    let page = ctx.f.page;
    let p = ctx.population(e)?;
    let mut found = Findings::new(p.bufs.len());
    for (i, b) in p.bufs.iter().enumerate() {
        if b.stat.st_blksize as u64 != page {
            found.add(|| {
                format!(
                    "st_blksize {} of buffer {i}: expected the page size {page}",
                    b.stat.st_blksize
                )
            });
        }
    }
    found.verdict(format!("{} buffers, st_blksize {page}", p.bufs.len()))
}

pub fn st_mode(ctx: &mut Ctx, e: Exporter) -> Result<String> {
    let p = ctx.population(e)?;
    let mut found = Findings::new(p.bufs.len());
    for (i, b) in p.bufs.iter().enumerate() {
        let mode = b.stat.st_mode;
        if mode & libc::S_IFMT != 0 {
            found.add(|| {
                format!(
                    "st_mode {mode:#o} of buffer {i} has file-type bits {:#o}",
                    mode & libc::S_IFMT
                )
            });
        } else if mode & 0o7777 != 0o600 {
            found.add(|| format!("st_mode {mode:#o} of buffer {i}: expected 0o600"));
        }
    }
    found.verdict(format!("{} buffers, st_mode 0o600", p.bufs.len()))
}

pub fn st_dev(ctx: &mut Ctx, e: Exporter) -> Result<String> {
    let first_dev = ctx.first_dev;
    let p = ctx.population(e)?;
    let dev0 = p
        .bufs
        .first()
        .ok_or_else(|| anyhow!("no buffers (--count 0)"))?
        .stat
        .st_dev;
    let mut found = Findings::new(p.bufs.len());
    for (i, b) in p.bufs.iter().enumerate() {
        if b.stat.st_dev != dev0 {
            found.add(|| {
                format!(
                    "st_dev {} of buffer {i} differs from buffer 0's {}",
                    dev_name(b.stat.st_dev),
                    dev_name(dev0)
                )
            });
        }
    }
    let verdict = found.verdict(format!(
        "{} buffers on st_dev {}",
        p.bufs.len(),
        dev_name(dev0)
    ))?;
    match first_dev {
        Some((other, dev)) if other != e && dev != dev0 => bail!(
            "st_dev {} of the {e} buffers differs from the {other} buffers' {}",
            dev_name(dev0),
            dev_name(dev)
        ),
        Some((other, _)) if other != e => Ok(format!("{verdict}, as the {other} buffers")),
        Some(_) => Ok(verdict),
        None => {
            ctx.first_dev = Some((e, dev0));
            Ok(verdict)
        }
    }
}

pub fn f_type(ctx: &mut Ctx, e: Exporter) -> Result<String> {
    let p = ctx.population(e)?;
    let mut found = Findings::new(p.bufs.len());
    for (i, b) in p.bufs.iter().enumerate() {
        let fs = fstatfs(b.fd()).with_context(|| format!("fstatfs of buffer {i}"))?;
        let t = fs.filesystem_type().0 as u64;
        if t != DMA_BUF_MAGIC {
            let known = if t == ANON_INODE_FS_MAGIC {
                " (ANON_INODE_FS_MAGIC)"
            } else {
                ""
            };
            found.add(|| {
                format!(
                    "f_type {t:#x}{known} of buffer {i}: expected DMA_BUF_MAGIC {DMA_BUF_MAGIC:#x}"
                )
            });
        }
    }
    found.verdict(format!(
        "{} buffers, f_type {DMA_BUF_MAGIC:#x}",
        p.bufs.len()
    ))
}

pub fn readlink(ctx: &mut Ctx, e: Exporter) -> Result<String> {
    let p = ctx.population(e)?;
    if p.names.is_some() {
        bail!("the population is already named: run readlink before fdinfo_name");
    }
    let mut found = Findings::new(p.bufs.len());
    for (i, b) in p.bufs.iter().enumerate() {
        let link = sys::fd_link(b.fd())?;
        if link != LINK_PREFIX {
            found.add(|| {
                format!("readlink of unnamed buffer {i} is {link:?}: expected {LINK_PREFIX:?}")
            });
        }
    }
    found.verdict(format!("{} buffers link to {LINK_PREFIX:?}", p.bufs.len()))
}

/// fdinfo of every buffer of the population before naming, read once.
fn fdinfo_unnamed(ctx: &mut Ctx, e: Exporter) -> Result<&mut Population> {
    let p = ctx.population(e)?;
    if p.fdinfo.is_none() {
        if p.names.is_some() {
            bail!("the population is already named: the fdinfo checks run before fdinfo_name");
        }
        let infos = p
            .bufs
            .iter()
            .enumerate()
            .map(|(i, b)| sys::fdinfo(b.fd()).with_context(|| format!("fdinfo of buffer {i}")))
            .collect::<Result<Vec<_>>>()?;
        p.fdinfo = Some(infos);
    }
    Ok(p)
}

/// The dma-buf lines of `info`, or a finding that they are missing.
fn dmabuf_lines(info: &FdInfo, i: usize) -> Result<&dmabuf::parse::fdinfo::DmaBufFdInfo, String> {
    info.dmabuf
        .as_ref()
        .ok_or_else(|| format!("fdinfo of buffer {i} has no dma-buf lines (size, count, exp_name)"))
}

pub fn fdinfo_ino(ctx: &mut Ctx, e: Exporter) -> Result<String> {
    let p = fdinfo_unnamed(ctx, e)?;
    let infos = p.fdinfo.as_ref().expect("read above");
    let mut found = Findings::new(p.bufs.len());
    for (i, (b, info)) in p.bufs.iter().zip(infos).enumerate() {
        if info.ino != b.ino() {
            found.add(|| {
                format!(
                    "fdinfo ino {} of buffer {i}: expected its st_ino {}",
                    info.ino,
                    b.ino()
                )
            });
        }
    }
    found.verdict(format!("{} buffers", p.bufs.len()))
}

pub fn fdinfo_size(ctx: &mut Ctx, e: Exporter) -> Result<String> {
    let p = fdinfo_unnamed(ctx, e)?;
    let infos = p.fdinfo.as_ref().expect("read above");
    let mut found = Findings::new(p.bufs.len());
    for (i, (b, info)) in p.bufs.iter().zip(infos).enumerate() {
        match dmabuf_lines(info, i) {
            Err(msg) => found.add(|| msg),
            Ok(d) if d.size != b.size => {
                found.add(|| format!("fdinfo size {} of buffer {i}: expected {}", d.size, b.size))
            }
            Ok(_) => {}
        }
    }
    found.verdict(format!("{} buffers of {} sizes", p.bufs.len(), sizes(p)))
}

/// fdinfo `count` of `fd`, with what it is expected to be for the message.
fn count_of(fd: std::os::fd::BorrowedFd<'_>, expected: i64, after: &str) -> Result<()> {
    let info = sys::fdinfo(fd)?;
    let d = info
        .dmabuf
        .ok_or_else(|| anyhow!("fdinfo has no dma-buf lines {after}"))?;
    if d.count != expected {
        bail!("fdinfo count {} {after}: expected {expected}", d.count);
    }
    Ok(())
}

pub fn fdinfo_count(ctx: &mut Ctx, e: Exporter) -> Result<String> {
    let page = ctx.f.page;
    let p = fdinfo_unnamed(ctx, e)?;
    let infos = p.fdinfo.as_ref().expect("read above");
    let mut found = Findings::new(p.bufs.len());
    for (i, info) in infos.iter().enumerate() {
        match dmabuf_lines(info, i) {
            Err(msg) => found.add(|| msg),
            Ok(d) if d.count != 1 => found.add(|| {
                format!(
                    "fdinfo count {} of buffer {i}, held by one fd: expected 1",
                    d.count
                )
            }),
            Ok(_) => {}
        }
    }
    let n = p.bufs.len();
    found.verdict(String::new())?;

    // Every fd and every mapping holds one reference to the file.
    let buf = ctx.f.create(e, 2 * page, Backing::OwnMemfd)?;
    let dup = nix::unistd::dup(buf.fd()).context("dup")?;
    count_of(buf.fd(), 2, "after dup()")?;
    let map = sys::Mapping::shared(buf.fd(), buf.size)?;
    count_of(buf.fd(), 3, "after dup() and mmap()")?;
    drop(map);
    count_of(buf.fd(), 2, "after dup(), mmap() and munmap()")?;
    drop(dup);
    count_of(
        buf.fd(),
        1,
        "after dup(), mmap(), munmap() and closing the dup",
    )?;
    Ok(format!(
        "{n} buffers count 1; 1, dup 2, mmap 3, munmap 2, close 1"
    ))
}

pub fn fdinfo_exp_name(ctx: &mut Ctx, e: Exporter) -> Result<String> {
    let p = fdinfo_unnamed(ctx, e)?;
    let infos = p.fdinfo.as_ref().expect("read above");
    let mut found = Findings::new(p.bufs.len());
    for (i, info) in infos.iter().enumerate() {
        match dmabuf_lines(info, i) {
            Err(msg) => found.add(|| msg),
            Ok(d) if d.exp_name != e.exp_name() => found.add(|| {
                format!(
                    "fdinfo exp_name {:?} of buffer {i}: expected {:?}",
                    d.exp_name,
                    e.exp_name()
                )
            }),
            Ok(_) => {}
        }
    }
    found.verdict(format!(
        "{} buffers, exp_name {:?}",
        p.bufs.len(),
        e.exp_name()
    ))
}

/// Names every buffer of the population (once) and reads fdinfo again.
fn name_population(ctx: &mut Ctx, e: Exporter) -> Result<&mut Population> {
    let p = ctx.population(e)?;
    if p.names.is_none() {
        let names: Vec<String> = (0..p.bufs.len())
            .map(|i| Population::name_for(e, i))
            .collect();
        for (i, (b, name)) in p.bufs.iter().zip(&names).enumerate() {
            let c = CString::new(name.as_str()).expect("no NUL in generated names");
            dma_buf::set_name(b.fd(), &c)
                .with_context(|| format!("DMA_BUF_SET_NAME {name:?} on buffer {i}"))?;
        }
        p.names = Some(names);
        let infos = p
            .bufs
            .iter()
            .enumerate()
            .map(|(i, b)| {
                sys::fdinfo(b.fd()).with_context(|| format!("fdinfo of named buffer {i}"))
            })
            .collect::<Result<Vec<_>>>()?;
        p.fdinfo_named = Some(infos);
    }
    Ok(p)
}

pub fn fdinfo_name(ctx: &mut Ctx, e: Exporter) -> Result<String> {
    let p = fdinfo_unnamed(ctx, e)?;
    let mut found = Findings::new(p.bufs.len());
    for (i, info) in p.fdinfo.as_ref().expect("read above").iter().enumerate() {
        match dmabuf_lines(info, i) {
            Err(msg) => found.add(|| msg),
            Ok(d) => {
                if let Some(name) = &d.name {
                    found.add(|| format!("fdinfo of unnamed buffer {i} has name {name:?}"));
                }
            }
        }
    }
    found.verdict(String::new())?;
    let p = name_population(ctx, e)?;
    let names = p.names.as_ref().expect("named above");
    let mut found = Findings::new(p.bufs.len());
    for (i, (info, name)) in p
        .fdinfo_named
        .as_ref()
        .expect("read above")
        .iter()
        .zip(names)
        .enumerate()
    {
        match dmabuf_lines(info, i) {
            Err(msg) => found.add(|| msg),
            Ok(d) if d.name.as_deref() != Some(name) => found.add(|| {
                format!(
                    "fdinfo name of buffer {i} is {:?}: expected Some({name:?})",
                    d.name
                )
            }),
            Ok(_) => {}
        }
    }
    found.verdict(format!(
        "{} buffers without a name line, then with their names",
        p.bufs.len()
    ))
}

pub fn readlink_named(ctx: &mut Ctx, e: Exporter) -> Result<String> {
    let p = name_population(ctx, e)?;
    let names = p.names.as_ref().expect("named above");
    let mut found = Findings::new(p.bufs.len());
    for (i, (b, name)) in p.bufs.iter().zip(names).enumerate() {
        let link = sys::fd_link(b.fd())?;
        let expected = format!("{LINK_PREFIX}{name}");
        if link != expected {
            found.add(|| {
                format!("readlink of buffer {i} named {name:?} is {link:?}: expected {expected:?}")
            });
        }
    }
    found.verdict(format!(
        "{} buffers, names of up to {} bytes",
        p.bufs.len(),
        names[0].len()
    ))
}

/// How many distinct sizes the population has.
fn sizes(p: &Population) -> usize {
    let mut s: Vec<u64> = p.bufs.iter().map(|b| b.size).collect();
    s.sort_unstable();
    s.dedup();
    s.len()
}
