// SPDX-License-Identifier: GPL-2.0
//! The checks: one function per line of the per-buffer inode contract.
//!
//! Each check runs once per exporter as `<exporter>.<check>` and returns
//! `Ok(summary)` or an error whose message says what was expected and what
//! was seen. A syscall failing where it must not is a failure of the check
//! too, with the call named.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::{anyhow, Result};

use dmabuf_testkit::Exporter;

use crate::buffers::{Factory, Population};

mod badinput;
mod bufinfo;
mod concurrency;
mod identity;
mod memory;
mod population;

/// Options the checks take from the command line.
pub struct Opts {
    /// Live buffers in the population.
    pub count: usize,
    /// Create/close cycles of the memory checks.
    pub cycles: usize,
}

/// What a check needs from the system beyond its exporter's device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// debugfs `dma_buf/bufinfo`.
    Bufinfo,
    /// `/proc/slabinfo` (root, CONFIG_SLUB_DEBUG).
    Slabinfo,
    /// `/proc/PID/map_files` (CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE).
    MapFiles,
}

/// One check of the contract.
pub struct Check {
    /// The name after `<exporter>.`: one snake_case token.
    pub name: &'static str,
    /// What passing proves, for `--list-checks`.
    pub about: &'static str,
    /// The exporter it applies to, when not both.
    pub only: Option<Exporter>,
    /// Whether it works on the population of `--count` live buffers. The
    /// others run with none of the validator's buffers alive.
    pub population: bool,
    pub needs: &'static [Need],
    pub run: fn(&mut Ctx, Exporter) -> Result<String>,
}

impl Check {
    pub fn applies_to(&self, e: Exporter) -> bool {
        self.only.is_none_or(|o| o == e)
    }

    pub fn full_name(&self, e: Exporter) -> String {
        format!("{e}.{}", self.name)
    }
}

const fn check(
    name: &'static str,
    about: &'static str,
    needs: &'static [Need],
    run: fn(&mut Ctx, Exporter) -> Result<String>,
) -> Check {
    Check {
        name,
        about,
        only: None,
        population: false,
        needs,
        run,
    }
}

const fn on_population(check: Check) -> Check {
    Check {
        population: true,
        ..check
    }
}

const fn only(e: Exporter, check: Check) -> Check {
    Check {
        only: Some(e),
        ..check
    }
}

use Exporter::{Heap, Udmabuf};
use Need::*;

/// Every check, in the order they run for each exporter.
pub static CHECKS: &[Check] = &[
    on_population(check("st_ino_nonzero", "every buffer's st_ino is non-zero", &[], population::st_ino_nonzero)),
    on_population(check("st_ino_unique", "no two live buffers share an st_ino", &[], population::st_ino_unique)),
    on_population(check("st_size", "st_size is the buffer's size", &[], population::st_size)),
    on_population(check("st_blocks", "st_blocks * 512 is the buffer's size", &[], population::st_blocks)),
    on_population(check("st_blksize", "st_blksize is the page size", &[], population::st_blksize)),
    on_population(check("st_mode", "st_mode is 0600 with no file-type bits", &[], population::st_mode)),
    on_population(check("st_dev", "every dma-buf, of any exporter, has the same st_dev", &[], population::st_dev)),
    on_population(check("f_type", "fstatfs() f_type is DMA_BUF_MAGIC", &[], population::f_type)),
    on_population(check("readlink", "readlink /proc/self/fd/N is `/dmabuf:` before naming", &[], population::readlink)),
    on_population(check("fdinfo_ino", "fdinfo `ino` is st_ino", &[], population::fdinfo_ino)),
    on_population(check("fdinfo_size", "fdinfo `size` is the buffer's size", &[], population::fdinfo_size)),
    on_population(check(
        "fdinfo_count",
        "fdinfo `count` is 1 for one fd, and follows dup(), mmap(), munmap() and close()",
        &[],
        population::fdinfo_count,
    )),
    on_population(check("fdinfo_exp_name", "fdinfo `exp_name` names the exporter", &[], population::fdinfo_exp_name)),
    on_population(check(
        "fdinfo_name",
        "fdinfo has no `name` before DMA_BUF_SET_NAME and the name after it",
        &[],
        population::fdinfo_name,
    )),
    on_population(check(
        "readlink_named",
        "readlink is `/dmabuf:<name>` after DMA_BUF_SET_NAME, for names up to DMA_BUF_NAME_LEN - 1",
        &[],
        population::readlink_named,
    )),
    on_population(check(
        "bufinfo_lists",
        "debugfs bufinfo lists each live buffer once, with its st_ino, size, exporter and name",
        &[Bufinfo],
        bufinfo::bufinfo_lists,
    )),
    check("dup_ino", "a dup()ed fd has the same st_ino", &[], identity::dup_ino),
    check("fork_ino", "a child process sees the same st_ino on the fds it inherits", &[], identity::fork_ino),
    check(
        "scm_rights_ino",
        "another process sees the same st_ino on an fd passed with SCM_RIGHTS",
        &[],
        identity::scm_rights_ino,
    ),
    check(
        "maps_ino",
        "/proc/PID/maps shows st_dev and st_ino for a mapping that outlives its fd",
        &[],
        identity::maps_ino,
    ),
    check(
        "map_files_ino",
        "stat() of /proc/PID/map_files/<range> gives st_ino for a mapping that outlives its fd",
        &[MapFiles],
        identity::map_files_ino,
    ),
    check(
        "bufinfo_drop",
        "bufinfo keeps a buffer while an fd or mapping holds it and drops it after the last",
        &[Bufinfo],
        bufinfo::bufinfo_drop,
    ),
    check(
        "set_name_bad_pointer",
        "DMA_BUF_SET_NAME with an unreadable name fails with EFAULT and changes nothing",
        &[Bufinfo],
        badinput::set_name_bad_pointer,
    ),
    check(
        "set_name_too_long",
        "DMA_BUF_SET_NAME with a name of DMA_BUF_NAME_LEN bytes or more fails with EINVAL and changes nothing",
        &[Bufinfo],
        badinput::set_name_too_long,
    ),
    only(
        Udmabuf,
        check(
            "bad_offset_unaligned",
            "UDMABUF_CREATE at an offset that is not page-aligned fails with EINVAL and creates nothing",
            &[Bufinfo],
            badinput::bad_offset_unaligned,
        ),
    ),
    only(
        Udmabuf,
        check(
            "bad_size_unaligned",
            "UDMABUF_CREATE of a size that is not page-aligned fails with EINVAL and creates nothing",
            &[Bufinfo],
            badinput::bad_size_unaligned,
        ),
    ),
    only(
        Udmabuf,
        check(
            "bad_size_zero",
            "UDMABUF_CREATE of size 0 fails with EINVAL and creates nothing",
            &[Bufinfo],
            badinput::bad_size_zero,
        ),
    ),
    only(
        Udmabuf,
        check(
            "bad_size_over_limit",
            "UDMABUF_CREATE of more than size_limit_mb fails with EINVAL and creates nothing",
            &[Bufinfo],
            badinput::bad_size_over_limit,
        ),
    ),
    only(
        Udmabuf,
        check(
            "bad_fd_not_memfd",
            "UDMABUF_CREATE of a pipe, a dma-buf or an fd number not open fails with EBADFD and creates nothing",
            &[Bufinfo],
            badinput::bad_fd_not_memfd,
        ),
    ),
    only(
        Udmabuf,
        check(
            "bad_memfd_unsealed",
            "UDMABUF_CREATE of a memfd without F_SEAL_SHRINK fails with EINVAL and creates nothing",
            &[Bufinfo],
            badinput::bad_memfd_unsealed,
        ),
    ),
    only(
        Udmabuf,
        check(
            "bad_memfd_write_sealed",
            "UDMABUF_CREATE of a memfd sealed with F_SEAL_WRITE or F_SEAL_FUTURE_WRITE fails with EINVAL and creates nothing",
            &[Bufinfo],
            badinput::bad_memfd_write_sealed,
        ),
    ),
    only(
        Heap,
        check(
            "bad_len_zero",
            "DMA_HEAP_IOCTL_ALLOC of len 0 fails with EINVAL and creates nothing",
            &[Bufinfo],
            badinput::bad_len_zero,
        ),
    ),
    only(
        Heap,
        check(
            "bad_alloc_flags",
            "DMA_HEAP_IOCTL_ALLOC with unknown fd_flags or heap_flags, or fd set, fails with EINVAL and creates nothing",
            &[Bufinfo],
            badinput::bad_alloc_flags,
        ),
    ),
    check(
        "concurrency",
        "threads creating, naming, dup()ing and closing buffers while others read fdinfo, links and bufinfo: no error, no two live buffers with one st_ino",
        &[Bufinfo],
        concurrency::concurrency,
    ),
    check(
        "slab_baseline",
        "/proc/slabinfo returns to its baseline after --cycles create/close cycles",
        &[Slabinfo],
        memory::slab_baseline,
    ),
    check(
        "meminfo_baseline",
        "/proc/meminfo MemFree, with the per-CPU free lists of /proc/zoneinfo, returns to its baseline after --cycles create/close cycles",
        &[],
        memory::meminfo_baseline,
    ),
    check(
        "st_ino_not_reused",
        "no buffer of the run got an st_ino that an earlier buffer, live or closed, had",
        &[],
        identity::st_ino_not_reused,
    ),
];

/// The state the checks share during a run.
pub struct Ctx {
    pub f: Factory,
    pub opts: Opts,
    population: Option<(Exporter, Result<Population, String>)>,
    memory: HashMap<Exporter, Result<memory::Run, String>>,
    /// The first dma-buf's st_dev in the run, and its exporter.
    pub first_dev: Option<(Exporter, u64)>,
    /// Lines the runner prints as TAP comments after the check's result.
    pub notes: Vec<String>,
}

impl Ctx {
    pub fn new(f: Factory, opts: Opts) -> Self {
        Self {
            f,
            opts,
            population: None,
            memory: HashMap::new(),
            first_dev: None,
            notes: Vec::new(),
        }
    }

    pub fn note(&mut self, line: String) {
        self.notes.push(line);
    }

    /// The population of `--count` live buffers of `e`, created on first
    /// use. A creation failure is kept, so that the checks after the first
    /// fail at once with the same message.
    pub fn population(&mut self, e: Exporter) -> Result<&mut Population> {
        if self.population.as_ref().is_some_and(|(pe, _)| *pe != e) {
            self.drop_population();
        }
        if self.population.is_none() {
            let created =
                Population::create(&self.f, e, self.opts.count).map_err(|e| format!("{e:#}"));
            if let Ok(p) = &created {
                self.notes.push(format!(
                    "{e}: created {} buffers ({} MiB) in {:.2} s",
                    p.bufs.len(),
                    p.bufs.iter().map(|b| b.size).sum::<u64>() >> 20,
                    p.created_in
                ));
            }
            self.population = Some((e, created));
        }
        match &mut self.population {
            Some((_, Ok(p))) => Ok(p),
            Some((_, Err(msg))) => Err(anyhow!("creating the population of {e} buffers: {msg}")),
            None => unreachable!("the population was just created"),
        }
    }

    /// Closes every buffer of the population.
    pub fn drop_population(&mut self) {
        if let Some((e, Ok(p))) = self.population.take() {
            let start = Instant::now();
            let n = p.bufs.len();
            drop(p);
            self.notes.push(format!(
                "{e}: closed {n} buffers in {:.2} s",
                start.elapsed().as_secs_f64()
            ));
        }
    }
}

/// Per-buffer findings of one check: the first described, the rest counted.
pub struct Findings {
    first: Option<String>,
    count: usize,
    of: usize,
}

impl Findings {
    /// For a check over `of` buffers.
    pub fn new(of: usize) -> Self {
        Self {
            first: None,
            count: 0,
            of,
        }
    }

    /// Records one violation; `describe` runs for the first one only.
    pub fn add(&mut self, describe: impl FnOnce() -> String) {
        if self.first.is_none() {
            self.first = Some(describe());
        }
        self.count += 1;
    }

    /// `Ok(passed)` without findings, else the first one and the count.
    pub fn verdict(self, passed: String) -> Result<String> {
        match self.first {
            None => Ok(passed),
            Some(first) => Err(anyhow!(
                "{first} ({} of {} buffers fail)",
                self.count,
                self.of
            )),
        }
    }
}
