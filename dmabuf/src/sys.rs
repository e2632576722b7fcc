// SPDX-License-Identifier: GPL-2.0
//! The I/O the tools share: procfs and debugfs reads, fd links, shared
//! mappings.
//!
//! Everything returns `anyhow` errors that say which call failed on what.
//! Files are read with plain open/read/close (no stat first) because the
//! tests read hundreds of thousands of them in a slow guest.

use std::os::fd::{AsRawFd, BorrowedFd};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::{open, readlink, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::read;

use crate::parse::{bufinfo, fdinfo, maps, meminfo, slabinfo, zoneinfo};

/// debugfs' list of every dma-buf with an open file.
pub const BUFINFO: &str = "/sys/kernel/debug/dma_buf/bufinfo";
pub const SLABINFO: &str = "/proc/slabinfo";
pub const MEMINFO: &str = "/proc/meminfo";
pub const ZONEINFO: &str = "/proc/zoneinfo";
/// SLUB's per-cache sysfs directories (`shrink` flushes per-CPU slabs).
pub const SLAB_SYSFS: &str = "/sys/kernel/slab";

/// The whole text of a (proc/sys/debugfs) file.
pub fn read_text(path: &str) -> Result<String> {
    let fd = open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
        .with_context(|| format!("open {path}"))?;
    let mut bytes: Vec<u8> = Vec::with_capacity(4096);
    loop {
        if bytes.len() == bytes.capacity() {
            bytes.reserve(bytes.capacity());
        }
        let start = bytes.len();
        bytes.resize(bytes.capacity(), 0);
        match read(&fd, &mut bytes[start..]) {
            Ok(0) => {
                bytes.truncate(start);
                break;
            }
            Ok(n) => bytes.truncate(start + n),
            Err(Errno::EINTR) => bytes.truncate(start),
            Err(e) => return Err(e).with_context(|| format!("read {path}")),
        }
    }
    String::from_utf8(bytes).with_context(|| format!("{path} is not UTF-8"))
}

/// Writes `text` to an existing (sysfs/procfs) file.
pub fn write_text(path: &str, text: &str) -> Result<()> {
    let fd = open(path, OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty())
        .with_context(|| format!("open {path} for writing"))?;
    nix::unistd::write(&fd, text.as_bytes())
        .with_context(|| format!("write `{text}` to {path}"))?;
    Ok(())
}

/// `/proc/self/fdinfo/N` of `fd`, parsed.
pub fn fdinfo(fd: BorrowedFd<'_>) -> Result<fdinfo::FdInfo> {
    let path = format!("/proc/self/fdinfo/{}", fd.as_raw_fd());
    let text = read_text(&path)?;
    fdinfo::parse(&text).with_context(|| format!("parsing {path}: {text:?}"))
}

/// `readlink /proc/self/fd/N` of `fd`.
pub fn fd_link(fd: BorrowedFd<'_>) -> Result<String> {
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let link = readlink(path.as_str()).with_context(|| format!("readlink {path}"))?;
    Ok(link.to_string_lossy().into_owned())
}

/// debugfs bufinfo, parsed.
pub fn bufinfo() -> Result<bufinfo::BufInfo> {
    let text = read_text(BUFINFO)?;
    bufinfo::parse(&text).with_context(|| format!("parsing {BUFINFO}"))
}

/// /proc/slabinfo, parsed.
pub fn slabinfo() -> Result<Vec<slabinfo::Cache>> {
    let text = read_text(SLABINFO)?;
    slabinfo::parse(&text).with_context(|| format!("parsing {SLABINFO}"))
}

/// /proc/meminfo, parsed.
pub fn meminfo() -> Result<meminfo::Meminfo> {
    let text = read_text(MEMINFO)?;
    meminfo::parse(&text).with_context(|| format!("parsing {MEMINFO}"))
}

/// /proc/zoneinfo, parsed.
pub fn zoneinfo() -> Result<Vec<zoneinfo::Zone>> {
    let text = read_text(ZONEINFO)?;
    zoneinfo::parse(&text).with_context(|| format!("parsing {ZONEINFO}"))
}

/// Flushes every slab cache's per-CPU slabs; false without SLUB's sysfs.
pub fn shrink_slabs() -> Result<bool> {
    let Ok(dir) = std::fs::read_dir(SLAB_SYSFS) else {
        return Ok(false);
    };
    for entry in dir {
        let entry = entry.with_context(|| format!("read_dir {}", SLAB_SYSFS))?;
        // Merged caches appear once as a directory and again as symlinks.
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            let path = entry.path().join("shrink");
            write_text(&path.to_string_lossy(), "1")?;
        }
    }
    Ok(true)
}

/// Every slab cache's `shrink` file, open for as long as this lives, so
/// that flushing the per-CPU slabs again and again (a sampler waiting for
/// a cache to come back to its baseline) opens no sysfs file: each open
/// and close of one allocates a kernfs_open_node and frees it with
/// kfree_rcu(), a backlog in kmalloc-128 that the samples would count.
pub struct SlabShrinker {
    files: Vec<(String, std::os::fd::OwnedFd)>,
}

impl SlabShrinker {
    /// Opens every cache's `shrink`; `None` without SLUB's sysfs.
    pub fn open() -> Result<Option<SlabShrinker>> {
        let Ok(dir) = std::fs::read_dir(SLAB_SYSFS) else {
            return Ok(None);
        };
        let mut files = Vec::new();
        for entry in dir {
            let entry = entry.with_context(|| format!("read_dir {SLAB_SYSFS}"))?;
            // Merged caches appear once as a directory and again as symlinks.
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                let path = entry.path().join("shrink");
                let path = path.to_string_lossy().into_owned();
                let fd = open(
                    path.as_str(),
                    OFlag::O_WRONLY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .with_context(|| format!("open {path} for writing"))?;
                files.push((path, fd));
            }
        }
        Ok(Some(SlabShrinker { files }))
    }

    /// Flushes every cache's per-CPU slabs (and, under KASAN, its
    /// quarantine).
    pub fn shrink(&self) -> Result<()> {
        for (path, fd) in &self.files {
            nix::sys::uio::pwrite(fd, b"1", 0).with_context(|| format!("write `1` to {path}"))?;
        }
        Ok(())
    }

    /// How many files it holds open.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// How many fds this process has open (entries of /proc/self/fd).
pub fn open_fds() -> Result<usize> {
    let dir = std::fs::read_dir("/proc/self/fd").context("read_dir /proc/self/fd")?;
    // read_dir's own directory fd is one of them.
    Ok(dir.count().saturating_sub(1))
}

/// /proc/self/maps, parsed.
pub fn maps() -> Result<Vec<maps::Mapping>> {
    let text = read_text("/proc/self/maps")?;
    maps::parse(&text).context("parsing /proc/self/maps")
}

/// The uid and gid of `nobody`, the unprivileged user the tests run
/// processes as.
pub const NOBODY: u32 = 65534;

/// The page size.
pub fn page_size() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .unwrap_or(4096) as u64
}

/// A shared mapping of a file, unmapped on drop.
pub struct Mapping {
    addr: std::ptr::NonNull<libc::c_void>,
    len: usize,
}

impl Mapping {
    /// mmap()s `len` bytes of `fd` shared, readable and writable.
    pub fn shared(fd: BorrowedFd<'_>, len: u64) -> Result<Self> {
        let prot = nix::sys::mman::ProtFlags::PROT_READ | nix::sys::mman::ProtFlags::PROT_WRITE;
        Self::shared_range(fd, 0, len, prot)
    }

    /// mmap()s `len` bytes of `fd` at `offset`, shared, with `prot`.
    pub fn shared_range(
        fd: BorrowedFd<'_>,
        offset: u64,
        len: u64,
        prot: nix::sys::mman::ProtFlags,
    ) -> Result<Self> {
        let nz = std::num::NonZeroUsize::new(len as usize).context("mmap of 0 bytes")?;
        // SAFETY: a new mapping at an address the kernel picks aliases no
        // Rust object; this type never dereferences it and unmaps it once.
        let addr = unsafe {
            nix::sys::mman::mmap(
                None,
                nz,
                prot,
                nix::sys::mman::MapFlags::MAP_SHARED,
                fd,
                offset as libc::off_t,
            )
        }
        .with_context(|| format!("mmap of {len} bytes at offset {offset}, MAP_SHARED"))?;
        Ok(Self {
            addr,
            len: len as usize,
        })
    }

    /// A `PROT_NONE` anonymous page: an address no read can succeed on.
    pub fn inaccessible(len: u64) -> Result<Self> {
        let nz = std::num::NonZeroUsize::new(len as usize).context("mmap of 0 bytes")?;
        // SAFETY: as in `shared`.
        let addr = unsafe {
            nix::sys::mman::mmap_anonymous(
                None,
                nz,
                nix::sys::mman::ProtFlags::PROT_NONE,
                nix::sys::mman::MapFlags::MAP_PRIVATE,
            )
        }
        .context("mmap of a PROT_NONE page")?;
        Ok(Self {
            addr,
            len: len as usize,
        })
    }

    pub fn start(&self) -> u64 {
        self.addr.as_ptr() as u64
    }

    pub fn end(&self) -> u64 {
        self.start() + self.len as u64
    }

    /// `(start, end)`, as /proc/PID/maps shows it.
    pub fn range(&self) -> (u64, u64) {
        (self.start(), self.end())
    }

    /// Writes `value` to the first byte of each page of the mapping, which
    /// faults each one in; the mapping must be writable.
    pub fn touch_pages(&self, page_size: usize, value: u8) {
        for off in (0..self.len).step_by(page_size) {
            // SAFETY: `off` is within the mapping, which is of a file and
            // aliases no Rust object; a volatile write is what a device's
            // user does.
            unsafe {
                self.addr
                    .as_ptr()
                    .cast::<u8>()
                    .add(off)
                    .write_volatile(value)
            };
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `addr` is a mapping of `len` bytes made by the constructor
        // and not unmapped before.
        if let Err(e) = unsafe { nix::sys::mman::munmap(self.addr, self.len) } {
            eprintln!("munmap of {:#x}, {} bytes: {e}", self.start(), self.len);
        }
    }
}
