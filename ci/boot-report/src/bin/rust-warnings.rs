// SPDX-License-Identifier: GPL-2.0
//! `rust-warnings`: fails when a kernel build log has a rustc or clippy
//! diagnostic in one of the given files.
//!
//! The base tree already has clippy warnings of its own with a newer clippy
//! than it was written for (unfulfilled lint expectations); those are counted
//! and listed, not failed. A diagnostic in a doctest counts for the file the
//! doctest is in.

use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result};
use boot_report::buildlog::{diagnostics, touches, DOCTESTS};
use clap::Parser;

#[derive(Parser)]
#[command(about, long_about = None)]
struct Args {
    /// The build log (make's output).
    #[arg(long)]
    log: PathBuf,
    /// The build's output directory, for the generated doctest file.
    #[arg(long)]
    build_dir: PathBuf,
    /// Source-tree paths whose diagnostics fail the check.
    files: Vec<String>,
}

fn main() {
    match run() {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("rust-warnings: error: {e:#}");
            std::process::exit(2);
        }
    }
}

fn run() -> Result<bool> {
    let args = Args::parse();
    let log =
        fs::read_to_string(&args.log).with_context(|| format!("reading {}", args.log.display()))?;
    let generated = fs::read_to_string(args.build_dir.join(DOCTESTS)).ok();
    let all = diagnostics(&log);
    let (ours, theirs): (Vec<_>, Vec<_>) = all
        .iter()
        .partition(|d| touches(d, &args.files, generated.as_deref()));
    for d in &theirs {
        let (path, line) = &d.locations[0];
        println!("# not ours: {path}:{line}: {}", d.headline);
    }
    for d in &ours {
        println!("not ok: {}", d.headline);
        for l in &d.lines[1..] {
            println!("    {l}");
        }
    }
    println!(
        "rust-warnings: {} diagnostics in the {} files checked, {} elsewhere",
        ours.len(),
        args.files.len(),
        theirs.len()
    );
    Ok(ours.is_empty())
}
