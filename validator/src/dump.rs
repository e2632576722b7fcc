// SPDX-License-Identifier: GPL-2.0
//! `--dump`: the raw text of the kernel interfaces the parsers read, for a
//! few buffers of each exporter, between `==> NAME <==` and `<== NAME ==>`
//! lines. The parsers' test data in dmabuf/testdata/ was captured with it.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use anyhow::{Context, Result};
use nix::sys::memfd::{memfd_create, MFdFlags};

use dmabuf::sys;
use dmabuf::uapi::dma_buf;
use dmabuf_testkit::{Backing, Exporter};

use crate::buffers::Factory;

fn section(name: &str, text: &str) {
    println!("==> {name} <==");
    print!("{text}");
    if !text.ends_with('\n') {
        println!();
    }
    println!("<== {name} ==>");
}

fn fdinfo_text(fd: BorrowedFd<'_>) -> Result<String> {
    sys::read_text(&format!("/proc/self/fdinfo/{}", fd.as_raw_fd()))
}

pub fn dump(f: &Factory, exporters: &[Exporter]) -> Result<()> {
    let mut keep = Vec::new();
    let mut maps = Vec::new();
    for &e in exporters {
        let unnamed = f.create(e, 4 * f.page, Backing::OwnMemfd)?;
        section(
            &format!("fdinfo-{e}-unnamed.txt"),
            &fdinfo_text(unnamed.fd())?,
        );
        let dup = nix::unistd::dup(unnamed.fd()).context("dup")?;
        section(&format!("fdinfo-{e}-dup.txt"), &fdinfo_text(dup.as_fd())?);
        let named = f.create(e, 2 * f.page, Backing::OwnMemfd)?;
        let name = format!("validator-{e}-named");
        dma_buf::set_name(named.fd(), &CString::new(name).expect("no NUL"))
            .context("DMA_BUF_SET_NAME")?;
        section(&format!("fdinfo-{e}-named.txt"), &fdinfo_text(named.fd())?);
        maps.push(sys::Mapping::shared(named.fd(), named.size)?);
        keep.extend([unnamed, named]);
        drop(dup);
    }
    let memfd = memfd_create(c"validator-dump", MFdFlags::MFD_CLOEXEC).context("memfd_create")?;
    section("fdinfo-memfd.txt", &fdinfo_text(memfd.as_fd())?);
    section(
        "maps-dmabuf.txt",
        &sys::read_text(&format!("/proc/{}/maps", nix::unistd::getpid()))?,
    );
    section("bufinfo-mixed.txt", &sys::read_text(sys::BUFINFO)?);
    drop(keep);
    drop(maps);
    section("bufinfo-empty.txt", &sys::read_text(sys::BUFINFO)?);
    section("slabinfo.txt", &sys::read_text(sys::SLABINFO)?);
    section("meminfo.txt", &sys::read_text(sys::MEMINFO)?);
    section("zoneinfo.txt", &sys::read_text(sys::ZONEINFO)?);
    Ok(())
}
