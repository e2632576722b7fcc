// SPDX-License-Identifier: GPL-2.0
//! The dma-bufs the checks make: the factory every check exports them
//! through, which records each buffer's inode number in the run, and the
//! population of `--count` live buffers.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, Result};
use nix::sys::stat::{fstat, FileStat};

use dmabuf::parse::fdinfo::FdInfo;
use dmabuf::sys;
use dmabuf::uapi::heap::DmaHeap;
use dmabuf::uapi::udmabuf::{self, Udmabuf};
use dmabuf_testkit::exporter::ExportError;
use dmabuf_testkit::{Backing, Devices, Exporter};

/// A dma-buf the validator created, with what fstat() said right after.
#[derive(Debug)]
pub struct DmaBuf {
    pub fd: OwnedFd,
    /// The size asked for.
    pub size: u64,
    pub stat: FileStat,
    /// Creation order within the run, from 1.
    pub serial: u64,
}

impl DmaBuf {
    pub fn ino(&self) -> u64 {
        self.stat.st_ino
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Which buffer had an inode number first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    pub exporter: Exporter,
    pub serial: u64,
}

/// A buffer that got an inode number an earlier buffer of the run had.
#[derive(Debug, Clone, Copy)]
pub struct Reuse {
    pub ino: u64,
    pub earlier: Origin,
    pub later: Origin,
}

/// Every inode number the run's buffers got.
#[derive(Default)]
struct History {
    first: HashMap<u64, Origin>,
    reuses: Vec<Reuse>,
    created: HashMap<Exporter, u64>,
}

/// Creates dma-bufs and records their inode numbers. Shared by threads.
pub struct Factory {
    pub page: u64,
    /// udmabuf's size limit in bytes.
    pub size_limit: u64,
    pub devices: Devices,
    serial: AtomicU64,
    history: Mutex<History>,
}

impl Factory {
    pub fn new(devices: Devices) -> Self {
        Self {
            page: sys::page_size(),
            size_limit: udmabuf::size_limit(),
            devices,
            serial: AtomicU64::new(0),
            history: Mutex::default(),
        }
    }

    /// `/dev/udmabuf`, for the checks that call its ioctl themselves.
    pub fn udmabuf(&self) -> Result<&Udmabuf> {
        Ok(self
            .devices
            .udmabuf()
            .ok_or(ExportError::NotOpen(Exporter::Udmabuf))?)
    }

    /// The system heap, for the checks that call its ioctl themselves.
    pub fn heap(&self) -> Result<&DmaHeap> {
        Ok(self
            .devices
            .heap()
            .ok_or(ExportError::NotOpen(Exporter::Heap))?)
    }

    /// Exports a new dma-buf of `size` bytes, fstat()s and records it.
    pub fn create(&self, exporter: Exporter, size: u64, backing: Backing<'_>) -> Result<DmaBuf> {
        let fd = self.devices.export(exporter, size, backing)?;
        let stat = fstat(&fd).context("fstat(new dma-buf)")?;
        let serial = self.serial.fetch_add(1, Ordering::Relaxed) + 1;
        self.record(exporter, serial, stat.st_ino);
        Ok(DmaBuf {
            fd,
            size,
            stat,
            serial,
        })
    }

    fn record(&self, exporter: Exporter, serial: u64, ino: u64) {
        let mut h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        *h.created.entry(exporter).or_default() += 1;
        let later = Origin { exporter, serial };
        match h.first.get(&ino) {
            Some(&earlier) => h.reuses.push(Reuse {
                ino,
                earlier,
                later,
            }),
            None => {
                h.first.insert(ino, later);
            }
        }
    }

    /// The buffers of `exporter` that got an inode number an earlier buffer
    /// of the run had, and how many buffers of `exporter` the run created.
    pub fn reuses(&self, exporter: Exporter) -> (Vec<Reuse>, u64) {
        let h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let reuses = h
            .reuses
            .iter()
            .filter(|r| r.later.exporter == exporter)
            .copied()
            .collect();
        (reuses, h.created.get(&exporter).copied().unwrap_or(0))
    }
}

/// The largest buffer of a population, in pages of 4 KiB: udmabuf's
/// `size_limit_mb` was 64 before 6.14, and is `INT_MAX` since.
pub const LARGEST_PAGES: u64 = 64 << 8;

/// The sizes of a population of `count` buffers, in pages: mostly one
/// page, every tenth 2 to 4 pages, every hundredth 16, every thousandth
/// 1024, and the first one as large as `limit_pages` allows, up to
/// [`LARGEST_PAGES`].
pub fn population_pages(count: usize, limit_pages: u64) -> Vec<u64> {
    (0..count)
        .map(|i| match i {
            0 => limit_pages.min(LARGEST_PAGES),
            _ if i % 1000 == 1 => 1024,
            _ if i % 100 == 2 => 16,
            _ if i % 10 == 3 => 2 + (i as u64 / 10) % 3,
            _ => 1,
        })
        .map(|p| p.min(limit_pages).max(1))
        .collect()
}

/// The sum of [`population_pages`] without making the list: `--count` may
/// be any number, and a list of 10^11 sizes cannot be allocated. The sizes
/// after the first repeat every 3000 buffers.
pub fn population_total_pages(count: usize, limit_pages: u64) -> u128 {
    const PERIOD: usize = 3000;
    if count == 0 {
        return 0;
    }
    let rest = count - 1;
    let sum = |n: usize| -> u128 {
        population_pages(n + 1, limit_pages)[1..]
            .iter()
            .map(|&p| u128::from(p))
            .sum()
    };
    let first = u128::from(population_pages(1, limit_pages)[0]);
    first + (rest / PERIOD) as u128 * sum(PERIOD) + sum(rest % PERIOD)
}

/// `--count` live buffers of one exporter, and what was read about them.
pub struct Population {
    pub bufs: Vec<DmaBuf>,
    /// fdinfo of each buffer before naming.
    pub fdinfo: Option<Vec<FdInfo>>,
    /// The names given, once named.
    pub names: Option<Vec<String>>,
    /// fdinfo of each buffer after naming.
    pub fdinfo_named: Option<Vec<FdInfo>>,
    pub created_in: f64,
}

impl Population {
    /// Creates `count` buffers of mixed sizes.
    pub fn create(f: &Factory, exporter: Exporter, count: usize) -> Result<Self> {
        let start = Instant::now();
        let pages = population_pages(count, f.size_limit / f.page);
        // udmabufs are cut from one memfd: one memfd per buffer would cost
        // three more syscalls each and say nothing more about the dma-buf.
        let arena =
            match exporter {
                Exporter::Udmabuf => {
                    let total: u64 = pages.iter().sum::<u64>() * f.page;
                    Some(udmabuf::sealed_memfd(total).with_context(|| {
                        format!("memfd of {total} bytes sealed with F_SEAL_SHRINK")
                    })?)
                }
                Exporter::Heap => None,
            };
        let mut bufs = Vec::with_capacity(count);
        let mut offset = 0;
        for (i, p) in pages.iter().enumerate() {
            let size = p * f.page;
            let backing = match &arena {
                Some(memfd) => Backing::Slice(memfd.as_fd(), offset),
                None => Backing::OwnMemfd,
            };
            let buf = f
                .create(exporter, size, backing)
                .with_context(|| format!("creating buffer {} of {count} ({size} bytes)", i + 1))?;
            bufs.push(buf);
            offset += size;
        }
        Ok(Self {
            bufs,
            fdinfo: None,
            names: None,
            fdinfo_named: None,
            created_in: start.elapsed().as_secs_f64(),
        })
    }

    /// The name for buffer `i`: `<exporter>-<i>`, and for buffer 0 the
    /// longest name DMA_BUF_SET_NAME takes.
    pub fn name_for(exporter: Exporter, i: usize) -> String {
        let name = format!("{exporter}-{i}");
        if i == 0 {
            let max = dmabuf::uapi::dma_buf::DMA_BUF_NAME_LEN - 1;
            format!("{name:-<max$}")
        } else {
            name
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn population_sizes() {
        let limit = 16384;
        let pages = population_pages(10000, limit);
        assert_eq!(pages.len(), 10000);
        assert_eq!(pages[0], limit, "one buffer at udmabuf's size limit");
        let single = pages.iter().filter(|&&p| p == 1).count();
        assert!(single > 8500, "mostly single pages: {single}");
        assert_eq!(pages.iter().filter(|&&p| p == 1024).count(), 10);
        assert!(pages.iter().all(|&p| (1..=limit).contains(&p)));
        let total: u64 = pages.iter().sum();
        assert!(
            total < 48 * 1024,
            "{total} pages: small enough for a 1 GiB guest"
        );
        // A small limit caps every size.
        assert!(population_pages(2000, 8)
            .iter()
            .all(|&p| (1..=8).contains(&p)));
        assert!(population_pages(0, 8).is_empty());
        for count in [0, 1, 2, 3, 999, 1000, 1001, 2999, 3000, 3001, 7777, 12345] {
            for limit in [8, 1 << 14] {
                let listed: u64 = population_pages(count, limit).iter().sum();
                assert_eq!(population_total_pages(count, limit), u128::from(listed));
            }
        }
        // udmabuf's limit since 6.14 is INT_MAX MiB: the largest buffer stays 64 MiB.
        let pages = population_pages(10000, (i32::MAX as u64) << 8);
        assert_eq!(pages[0], LARGEST_PAGES);
        assert!(pages.iter().sum::<u64>() < 48 * 1024);
    }

    #[test]
    fn names_fit_dma_buf_name_len() {
        let max = dmabuf::uapi::dma_buf::DMA_BUF_NAME_LEN - 1;
        assert_eq!(Population::name_for(Exporter::Udmabuf, 0).len(), max);
        assert_eq!(Population::name_for(Exporter::Heap, 0).len(), max);
        assert_eq!(Population::name_for(Exporter::Heap, 12345), "heap-12345");
        assert!(Population::name_for(Exporter::Udmabuf, usize::MAX).len() <= max);
    }
}
