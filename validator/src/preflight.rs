// SPDX-License-Identifier: GPL-2.0
//! Before any check: the devices, files, privileges, fds and memory the
//! selected checks need, each missing one reported with how to get it.

use std::fs;
use std::io::ErrorKind;

use nix::errno::Errno;
use nix::sys::resource::{getrlimit, setrlimit, Resource};

use dmabuf::sys;
use dmabuf_testkit::exporter::OpenError;
use dmabuf_testkit::{Devices, Exporter};

use crate::buffers::{population_total_pages, Factory};
use crate::checks::Need;

/// fds beyond the population's: the checks' own buffers, pipes, sockets,
/// the concurrency check's pool.
const FD_HEADROOM: u64 = 256;
/// What one live buffer costs the kernel beyond its pages, roughly: file,
/// dentry, inode, `struct dma_buf` and reservation object, the exporter's
/// own structures and page arrays.
const KERNEL_BYTES_PER_BUFFER: u64 = 4096;

/// What is missing for an exporter, and how to do without it.
fn device_problem(e: &OpenError) -> String {
    let other = match e.exporter {
        Exporter::Udmabuf => Exporter::Heap,
        Exporter::Heap => Exporter::Udmabuf,
    };
    match e.errno {
        Errno::ENOENT | Errno::ENODEV | Errno::ENXIO => {
            format!("{e}; or test only {other} with --exporter {other}")
        }
        _ => e.to_string(),
    }
}

fn file_problem(path: &str, what: &str, missing: &str) -> Option<String> {
    match fs::File::open(path) {
        Ok(_) => None,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            Some(format!("{path} does not exist ({what}): {missing}"))
        }
        Err(e) if e.kind() == ErrorKind::PermissionDenied => Some(format!(
            "{path}: permission denied ({what}): run the validator as root"
        )),
        Err(e) => Some(format!("open {path} ({what}): {e}")),
    }
}

fn need_problem(need: Need) -> Option<String> {
    match need {
        Need::Bufinfo => file_problem(
            sys::BUFINFO,
            "the bufinfo, bad-input, set_name and concurrency checks read it",
            "mount debugfs (mount -t debugfs none /sys/kernel/debug) on a kernel with CONFIG_DEBUG_FS=y, \
             or leave those checks out with --only",
        ),
        Need::Slabinfo => file_problem(
            sys::SLABINFO,
            "the slab_baseline check reads it",
            "the kernel needs CONFIG_SLUB_DEBUG=y, or leave slab_baseline out with --only",
        ),
        Need::MapFiles => {
            // Only a missing privilege is a reason not to start; anything
            // else is the map_files_ino check's to report.
            let dir = "/proc/self/map_files";
            let entry = fs::read_dir(dir).ok()?.next()?.ok()?;
            match fs::metadata(entry.path()) {
                Err(e) if e.kind() == ErrorKind::PermissionDenied || e.raw_os_error() == Some(libc::EPERM) => {
                    Some(format!(
                        "{}: {e}: map_files needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE: run the validator as root",
                        entry.path().display()
                    ))
                }
                _ => None,
            }
        }
    }
}

/// Raises RLIMIT_NOFILE to `needed` fds if it is lower, as far as allowed.
fn nofile_problem(needed: u64, count: usize) -> Option<String> {
    let (soft, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok(l) => l,
        Err(e) => return Some(format!("getrlimit(RLIMIT_NOFILE): {e}")),
    };
    if soft >= needed {
        return None;
    }
    let new_hard = hard.max(needed);
    match setrlimit(Resource::RLIMIT_NOFILE, needed, new_hard) {
        Ok(()) => None,
        Err(e) => {
            let nr_open = fs::read_to_string("/proc/sys/fs/nr_open").unwrap_or_default();
            Some(format!(
                "RLIMIT_NOFILE is {soft} (hard {hard}) and --count {count} needs {needed} fds; raising it failed \
                 with {e}: run as root (root may raise it up to fs.nr_open = {}), run `ulimit -n {needed}` first, \
                 or lower --count",
                nr_open.trim()
            ))
        }
    }
}

/// The bytes a population of `count` buffers and `cycles` create/close
/// cycles need, with pages of `page` bytes and buffers of at most
/// `limit_pages`: the exporters run one after the other, each with its
/// population. Computed without a list of the sizes, in u128: `--count`
/// may be any number (and is then refused for it).
fn memory_needed(count: usize, cycles: usize, page: u64, limit_pages: u64) -> u128 {
    population_total_pages(count, limit_pages) * u128::from(page)
        + count as u128 * u128::from(KERNEL_BYTES_PER_BUFFER)
        + cycles as u128 * u128::from(page)
}

fn memory_problem(
    f: &Factory,
    exporters: &[Exporter],
    count: usize,
    cycles: usize,
) -> Option<String> {
    if exporters.is_empty() {
        return None;
    }
    let needed = memory_needed(count, cycles, f.page, f.size_limit / f.page);
    let available = sys::meminfo().ok()?.get("MemAvailable")?;
    (needed > u128::from(available / 10 * 9)).then(|| {
        format!(
            "--count {count} and --cycles {cycles} need about {} MiB of memory, and only {} MiB is available: \
             give the machine more (ci/vm run ... --memory 2G) or lower --count",
            needed >> 20,
            available >> 20
        )
    })
}

/// Opens the exporters' devices and checks what the selected checks need.
pub fn open(
    exporters: &[Exporter],
    needs: &[Need],
    count: usize,
    cycles: usize,
) -> Result<Factory, Vec<String>> {
    let mut problems = Vec::new();
    let devices = Devices::open(exporters).unwrap_or_else(|errors| {
        problems.extend(errors.0.iter().map(device_problem));
        Devices::default()
    });
    let mut seen = Vec::new();
    for &need in needs {
        if !seen.contains(&need) {
            seen.push(need);
            problems.extend(need_problem(need));
        }
    }
    let factory = Factory::new(devices);
    problems.extend(nofile_problem(count as u64 + FD_HEADROOM, count));
    problems.extend(memory_problem(&factory, exporters, count, cycles));
    if problems.is_empty() {
        Ok(factory)
    } else {
        Err(problems)
    }
}

/// The error that ends a run that cannot start.
pub fn report(problems: Vec<String>) -> anyhow::Error {
    anyhow::anyhow!("cannot run:\n  - {}", problems.join("\n  - "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_for_any_count_is_computed_without_a_list() {
        // `--count 99999999999` aborted on allocating the list of sizes
        // before checking anything.
        let t = std::time::Instant::now();
        let needed = memory_needed(99_999_999_999, 4096, 4096, 64 << 8);
        assert!(needed > 400 << 40, "{needed}");
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
        // 1000 buffers of the default population: 1 of 64 MiB, 1 of 4 MiB,
        // 10 of 16 pages, 100 of 2 to 4, the rest one page.
        let listed: u64 = crate::buffers::population_pages(1000, 64 << 8).iter().sum();
        assert_eq!(
            memory_needed(1000, 0, 4096, 64 << 8),
            u128::from(listed) * 4096 + 1000 * u128::from(KERNEL_BYTES_PER_BUFFER)
        );
    }
}
