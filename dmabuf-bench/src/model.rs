// SPDX-License-Identifier: GPL-2.0
//! What one benchmark run measured, and the arithmetic on it: pure
//! functions, tested on the host.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use dmabuf::parse::slabinfo::Cache;

/// How a kernel's dma-bufs get their inode, as seen from userspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Model {
    /// Every buffer has an inode of its own (st_ino differs).
    PerBuffer,
    /// All buffers share one inode (the anonymous inode of before v5.3).
    Singleton,
}

impl std::fmt::Display for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Model::PerBuffer => "per-buffer",
            Model::Singleton => "singleton",
        })
    }
}

/// One benchmark run on one kernel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// `uname -r` of the kernel.
    pub kernel: String,
    pub model: Model,
    /// The page size the buffers were made of.
    pub page_size: u64,
    pub memory: Vec<Memory>,
    pub latency: Latency,
}

/// Kernel memory for `count` live single-page buffers, against the
/// baseline taken right before they were made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    pub count: u64,
    /// /proc/meminfo Slab, after minus before, in bytes.
    pub meminfo_slab_bytes: i64,
    /// The sum over every slab cache of active objects times object size,
    /// after minus before, in bytes.
    pub slabinfo_bytes: i64,
    /// The caches that moved, by name.
    pub caches: BTreeMap<String, CacheDelta>,
}

/// How one slab cache moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheDelta {
    pub objsize: u64,
    pub objects: i64,
}

impl CacheDelta {
    pub fn bytes(&self) -> i64 {
        self.objects * self.objsize as i64
    }
}

impl Memory {
    /// Slab bytes per buffer by /proc/meminfo.
    pub fn meminfo_per_buffer(&self) -> f64 {
        self.meminfo_slab_bytes as f64 / self.count as f64
    }

    /// Slab bytes per buffer by /proc/slabinfo: every cache's objects
    /// counted after the per-CPU slabs were flushed, so exact up to what
    /// the rest of the system allocated meanwhile.
    pub fn slabinfo_per_buffer(&self) -> f64 {
        self.slabinfo_bytes as f64 / self.count as f64
    }

    /// Objects per buffer of one cache (0 when it did not move).
    pub fn objects_per_buffer(&self, cache: &str) -> f64 {
        self.caches
            .get(cache)
            .map_or(0.0, |c| c.objects as f64 / self.count as f64)
    }
}

/// A cache counts as moved when it gained or lost at least one object per
/// this many buffers; below that it is the rest of the system.
pub const MOVED_PER: u64 = 50;

/// The caches whose active objects changed by at least `count / MOVED_PER`
/// between `before` and `after`, and the total byte difference over all.
pub fn diff(before: &[Cache], after: &[Cache], count: u64) -> (BTreeMap<String, CacheDelta>, i64) {
    let before: BTreeMap<&str, &Cache> = before.iter().map(|c| (c.name.as_str(), c)).collect();
    let threshold = (count / MOVED_PER).max(1) as i64;
    let mut moved = BTreeMap::new();
    let mut total = 0;
    for a in after {
        let (objs, bytes) = match before.get(a.name.as_str()) {
            Some(b) => (
                a.active_objs as i64 - b.active_objs as i64,
                a.active_bytes() as i64 - b.active_bytes() as i64,
            ),
            None => (a.active_objs as i64, a.active_bytes() as i64),
        };
        total += bytes;
        if objs.abs() >= threshold {
            moved.insert(
                a.name.clone(),
                CacheDelta {
                    objsize: a.objsize,
                    objects: objs,
                },
            );
        }
    }
    (moved, total)
}

/// Export+close and fstat latency, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub export_close: Stats,
    /// Export, mmap() one page, write it (a fault), munmap() and close.
    #[serde(default)]
    pub export_mmap_close: Option<Stats>,
    /// The export alone (the ioctl that makes the buffer and its fd), and
    /// the close alone (the release), of the same buffers.
    #[serde(default)]
    pub export: Option<Stats>,
    #[serde(default)]
    pub close: Option<Stats>,
    pub fstat: Stats,
}

/// Median and 99th percentile of many timed iterations.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub iterations: u64,
    pub median_ns: u64,
    pub p99_ns: u64,
}

impl Stats {
    /// The statistics of `samples`, which it sorts.
    pub fn of(samples: &mut [u64]) -> Stats {
        samples.sort_unstable();
        Stats {
            iterations: samples.len() as u64,
            median_ns: percentile(samples, 50.0),
            p99_ns: percentile(samples, 99.0),
        }
    }
}

/// The nearest-rank percentile `p` of sorted `samples` (0 for none).
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median of some values (the mean of the middle two for an even
/// number), NaN for none.
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(name: &str, active: u64, objsize: u64) -> Cache {
        Cache {
            name: name.into(),
            active_objs: active,
            num_objs: active,
            objsize,
            objperslab: 1,
            pagesperslab: 1,
            active_slabs: active,
            num_slabs: active,
        }
    }

    #[test]
    fn diff_keeps_the_caches_that_moved() {
        let before = [
            cache("inode_cache", 100, 600),
            cache("filp", 50, 256),
            cache("kmalloc-8", 7, 8),
        ];
        let after = [
            cache("inode_cache", 1100, 600),
            cache("filp", 1050, 256),
            cache("kmalloc-8", 9, 8),
            cache("new", 1000, 64),
        ];
        let (moved, total) = diff(&before, &after, 1000);
        assert_eq!(
            moved.keys().collect::<Vec<_>>(),
            ["filp", "inode_cache", "new"]
        );
        assert_eq!(moved["inode_cache"].bytes(), 600_000);
        assert_eq!(total, 600_000 + 256_000 + 16 + 64_000);
    }

    #[test]
    fn a_cache_that_shrank_counts_negative() {
        let (moved, total) = diff(
            &[cache("dentry", 500, 192)],
            &[cache("dentry", 400, 192)],
            1000,
        );
        assert_eq!(moved["dentry"].objects, -100);
        assert_eq!(total, -19_200);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut s: Vec<u64> = (1..=100).rev().collect();
        let st = Stats::of(&mut s);
        assert_eq!((st.iterations, st.median_ns, st.p99_ns), (100, 50, 99));
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
    }

    #[test]
    fn median_of_even_and_odd() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }
}
