// SPDX-License-Identifier: GPL-2.0
//! The comparison of runs on several kernels: medians over rounds, the
//! ratios Rust/C and per-buffer inode/singleton, the memory gate, and the
//! Markdown table. Pure functions over [`Run`]s.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use anyhow::{bail, Result};
use serde::Serialize;

use crate::model::{median, Model, Run, Stats};

/// The labels the comparison knows: the singleton anonymous inode (the
/// negative-control kernel), the C and the Rust per-buffer inode.
pub const SINGLETON: &str = "negative";
pub const C: &str = "c";
pub const RUST: &str = "rust";

/// The gate's margin is at least this many bytes per buffer: slab counts
/// taken after flushing the per-CPU slabs are exact, but the rest of the
/// guest allocates a few objects meanwhile, which N buffers divide.
pub const MIN_MARGIN: f64 = 1.0;

/// A cache in which neither kernel has this many objects per buffer holds
/// none of a buffer's objects: what moves there (whole slabs of objects
/// that the rest of the guest allocates or frees meanwhile, a few hundred
/// objects either way) is reported but not gated on.
pub const PER_BUFFER_OBJECTS: f64 = 0.5;

/// A value over rounds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    fn of(values: &[f64]) -> Spread {
        Spread {
            median: median(values),
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }

    fn width(&self) -> f64 {
        self.max - self.min
    }
}

/// One cache of one kernel at one count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CacheCost {
    pub objsize: u64,
    pub objects_per_buffer: f64,
    pub bytes_per_buffer: f64,
}

/// One kernel at one count, over its rounds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CountSummary {
    pub count: u64,
    pub slab_bytes_per_buffer: Spread,
    pub meminfo_slab_bytes_per_buffer: Spread,
    pub caches: BTreeMap<String, CacheCost>,
}

/// One kernel over its rounds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KernelSummary {
    pub label: String,
    pub kernel: String,
    pub model: Model,
    pub rounds: usize,
    pub counts: Vec<CountSummary>,
    pub export_close_median_ns: Spread,
    pub export_close_p99_ns: Spread,
    /// Export, mmap, touch, munmap and close; `None` when a run has none.
    pub export_mmap_close_median_ns: Option<Spread>,
    /// The export alone and the close alone; `None` when a run has none.
    pub export_median_ns: Option<Spread>,
    pub close_median_ns: Option<Spread>,
    pub fstat_median_ns: Spread,
    pub fstat_p99_ns: Spread,
}

impl KernelSummary {
    fn at(&self, count: u64) -> Option<&CountSummary> {
        self.counts.iter().find(|c| c.count == count)
    }
}

/// The memory gate: Rust may not cost more slab bytes per buffer than C,
/// counted in the caches that hold a buffer's objects.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gate {
    pub count: u64,
    /// Bytes per buffer in the caches that hold a buffer's objects.
    pub c: f64,
    pub rust: f64,
    pub margin: f64,
    /// The caches left out: under [`PER_BUFFER_OBJECTS`] in both kernels.
    pub left_out: Vec<String>,
    pub passed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub kernels: Vec<KernelSummary>,
    pub gate: Option<Gate>,
}

fn summarize(label: &str, runs: &[&Run]) -> Result<KernelSummary> {
    let first = runs[0];
    if let Some(r) = runs
        .iter()
        .find(|r| r.kernel != first.kernel || r.model != first.model)
    {
        bail!(
            "the runs labelled {label} are of different kernels: {} ({:?}) and {} ({:?})",
            first.kernel,
            first.model,
            r.kernel,
            r.model
        );
    }
    let counts: BTreeSet<u64> = runs
        .iter()
        .flat_map(|r| r.memory.iter().map(|m| m.count))
        .collect();
    let mut out = Vec::new();
    for count in counts {
        let ms: Vec<_> = runs
            .iter()
            .filter_map(|r| r.memory.iter().find(|m| m.count == count))
            .collect();
        let names: BTreeSet<&String> = ms.iter().flat_map(|m| m.caches.keys()).collect();
        let caches = names
            .into_iter()
            .map(|name| {
                let objsize = ms
                    .iter()
                    .find_map(|m| m.caches.get(name).map(|c| c.objsize))
                    .unwrap_or(0);
                let per: Vec<f64> = ms.iter().map(|m| m.objects_per_buffer(name)).collect();
                let objects_per_buffer = median(&per);
                let cost = CacheCost {
                    objsize,
                    objects_per_buffer,
                    bytes_per_buffer: objects_per_buffer * objsize as f64,
                };
                (name.clone(), cost)
            })
            .collect();
        out.push(CountSummary {
            count,
            slab_bytes_per_buffer: Spread::of(
                &ms.iter()
                    .map(|m| m.slabinfo_per_buffer())
                    .collect::<Vec<_>>(),
            ),
            meminfo_slab_bytes_per_buffer: Spread::of(
                &ms.iter()
                    .map(|m| m.meminfo_per_buffer())
                    .collect::<Vec<_>>(),
            ),
            caches,
        });
    }
    let lat =
        |f: &dyn Fn(&Run) -> u64| Spread::of(&runs.iter().map(|r| f(r) as f64).collect::<Vec<_>>());
    let some_lat = |f: &dyn Fn(&Run) -> Option<Stats>| {
        runs.iter()
            .map(|r| f(r).map(|s| s.median_ns as f64))
            .collect::<Option<Vec<f64>>>()
            .map(|v| Spread::of(&v))
    };
    Ok(KernelSummary {
        label: label.to_string(),
        kernel: first.kernel.clone(),
        model: first.model,
        rounds: runs.len(),
        counts: out,
        export_close_median_ns: lat(&|r| r.latency.export_close.median_ns),
        export_close_p99_ns: lat(&|r| r.latency.export_close.p99_ns),
        export_mmap_close_median_ns: some_lat(&|r| r.latency.export_mmap_close),
        export_median_ns: some_lat(&|r| r.latency.export),
        close_median_ns: some_lat(&|r| r.latency.close),
        fstat_median_ns: lat(&|r| r.latency.fstat.median_ns),
        fstat_p99_ns: lat(&|r| r.latency.fstat.p99_ns),
    })
}

/// The gate at the largest count both C and Rust ran. Its margin is the
/// widest spread over rounds of either (what the measurement itself
/// varies by), at least [`MIN_MARGIN`].
fn gate(c: &KernelSummary, rust: &KernelSummary) -> Option<Gate> {
    let count = c
        .counts
        .iter()
        .map(|x| x.count)
        .filter(|&n| rust.at(n).is_some())
        .max()?;
    let (cs, rs) = (c.at(count)?, rust.at(count)?);
    let margin = cs
        .slab_bytes_per_buffer
        .width()
        .max(rs.slab_bytes_per_buffer.width())
        .max(MIN_MARGIN);
    let names: BTreeSet<&String> = cs.caches.keys().chain(rs.caches.keys()).collect();
    let (mut cb, mut rb, mut left_out) = (0.0, 0.0, Vec::new());
    for name in names {
        let (c, r) = (cs.caches.get(name), rs.caches.get(name));
        let objects = |k: Option<&CacheCost>| k.map_or(0.0, |k| k.objects_per_buffer.abs());
        if objects(c) < PER_BUFFER_OBJECTS && objects(r) < PER_BUFFER_OBJECTS {
            left_out.push(name.clone());
            continue;
        }
        cb += c.map_or(0.0, |k| k.bytes_per_buffer);
        rb += r.map_or(0.0, |k| k.bytes_per_buffer);
    }
    Some(Gate {
        count,
        c: cb,
        rust: rb,
        margin,
        left_out,
        passed: rb <= cb + margin,
    })
}

/// Summarizes labelled runs, in the order the labels first appear.
pub fn summary(runs: &[(String, Run)]) -> Result<Summary> {
    if runs.is_empty() {
        bail!("no runs to compare: give --run LABEL=FILE");
    }
    let mut labels: Vec<&str> = Vec::new();
    for (l, _) in runs {
        if !labels.contains(&l.as_str()) {
            labels.push(l);
        }
    }
    let kernels = labels
        .iter()
        .map(|l| {
            let rs: Vec<&Run> = runs
                .iter()
                .filter(|(x, _)| x == l)
                .map(|(_, r)| r)
                .collect();
            summarize(l, &rs)
        })
        .collect::<Result<Vec<_>>>()?;
    let find = |l: &str| kernels.iter().find(|k| k.label == l);
    let gate = match (find(C), find(RUST)) {
        (Some(c), Some(r)) => gate(c, r),
        _ => None,
    };
    Ok(Summary { kernels, gate })
}

fn ratio(a: f64, b: f64) -> String {
    if b == 0.0 || !a.is_finite() || !b.is_finite() {
        "-".into()
    } else {
        format!("{:.3}", a / b)
    }
}

fn spread(s: &Spread, unit: &str) -> String {
    if s.min == s.max {
        format!("{:.1}{unit}", s.median)
    } else {
        format!("{:.1}{unit} ({:.1}–{:.1})", s.median, s.min, s.max)
    }
}

impl Summary {
    fn find(&self, label: &str) -> Option<&KernelSummary> {
        self.kernels.iter().find(|k| k.label == label)
    }

    /// The tables and their reading, in Markdown; latencies are in `unit`: `ns`, or `guest
    /// instructions` when the guest's clock counted instructions (QEMU's `-icount shift=0`).
    pub fn markdown(&self, unit: &str) -> String {
        let mut o = String::new();
        let counts: BTreeSet<u64> = self
            .kernels
            .iter()
            .flat_map(|k| k.counts.iter().map(|c| c.count))
            .collect();
        let _ = writeln!(
            o,
            "### Kernel memory per live buffer (single-page udmabuf)\n"
        );
        let _ = writeln!(
            o,
            "Slab bytes per buffer: every slab cache's active objects times their size, after \
             minus before N live buffers (per-CPU slabs flushed, `slab_nomerge`); median over \
             rounds, (min–max) when they differ. meminfo: the same from /proc/meminfo `Slab`.\n"
        );
        let _ = writeln!(
            o,
            "| kernel | inode | rounds | N | slab B/buffer | meminfo Slab B/buffer |"
        );
        let _ = writeln!(o, "|---|---|---|---|---|---|");
        for k in &self.kernels {
            for c in &k.counts {
                let _ = writeln!(
                    o,
                    "| {} ({}) | {} | {} | {} | {} | {} |",
                    k.label,
                    k.kernel,
                    k.model,
                    k.rounds,
                    c.count,
                    spread(&c.slab_bytes_per_buffer, ""),
                    spread(&c.meminfo_slab_bytes_per_buffer, "")
                );
            }
        }
        for &n in &counts {
            let names: BTreeSet<&String> = self
                .kernels
                .iter()
                .filter_map(|k| k.at(n))
                .flat_map(|c| c.caches.keys())
                .collect();
            let _ = writeln!(
                o,
                "\nPer cache at N = {n}: bytes per buffer (objects per buffer)\n"
            );
            let _ = write!(o, "| cache | object size |");
            for k in &self.kernels {
                let _ = write!(o, " {} |", k.label);
            }
            let _ = write!(o, "\n|---|---|");
            for _ in &self.kernels {
                let _ = write!(o, "---|");
            }
            let _ = writeln!(o);
            for name in names {
                let objsize = self
                    .kernels
                    .iter()
                    .filter_map(|k| k.at(n)?.caches.get(name))
                    .map(|c| c.objsize)
                    .next()
                    .unwrap_or(0);
                let _ = write!(o, "| {name} | {objsize} |");
                for k in &self.kernels {
                    match k.at(n).and_then(|c| c.caches.get(name)) {
                        Some(c) => {
                            let _ = write!(
                                o,
                                " {:.1} ({:.2}) |",
                                c.bytes_per_buffer, c.objects_per_buffer
                            );
                        }
                        None => {
                            let _ = write!(o, " 0 |");
                        }
                    }
                }
                let _ = writeln!(o);
            }
        }
        let _ = writeln!(o, "\n### Latency (1-page udmabuf; medians over rounds)\n");
        let _ = writeln!(
            o,
            "| kernel | export+close median, {unit} | export+close p99, {unit} | export alone, median, {unit} | close alone, median, {unit} | export+mmap+touch+close median, {unit} | fstat median, {unit} | fstat p99, {unit} |"
        );
        let _ = writeln!(o, "|---|---|---|---|---|---|---|---|");
        let some = |s: Option<Spread>| s.map_or("-".to_string(), |s| spread(&s, ""));
        for k in &self.kernels {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                k.label,
                spread(&k.export_close_median_ns, ""),
                spread(&k.export_close_p99_ns, ""),
                some(k.export_median_ns),
                some(k.close_median_ns),
                some(k.export_mmap_close_median_ns),
                spread(&k.fstat_median_ns, ""),
                spread(&k.fstat_p99_ns, "")
            );
        }
        let (s, c, r) = (self.find(SINGLETON), self.find(C), self.find(RUST));
        let _ = writeln!(o, "\n### Ratios\n");
        let _ = writeln!(o, "| | Rust / C | C / singleton | Rust / singleton |");
        let _ = writeln!(o, "|---|---|---|---|");
        let row = |o: &mut String, what: String, f: &dyn Fn(&KernelSummary) -> Option<f64>| {
            let v = |k: Option<&KernelSummary>| k.and_then(f).unwrap_or(f64::NAN);
            let _ = writeln!(
                o,
                "| {what} | {} | {} | {} |",
                ratio(v(r), v(c)),
                ratio(v(c), v(s)),
                ratio(v(r), v(s))
            );
        };
        for &n in &counts {
            row(&mut o, format!("slab bytes per buffer, N = {n}"), &|k| {
                k.at(n).map(|x| x.slab_bytes_per_buffer.median)
            });
        }
        row(&mut o, "export+close median".into(), &|k| {
            Some(k.export_close_median_ns.median)
        });
        row(&mut o, "export alone, median".into(), &|k| {
            k.export_median_ns.map(|s| s.median)
        });
        row(&mut o, "close alone, median".into(), &|k| {
            k.close_median_ns.map(|s| s.median)
        });
        row(&mut o, "export+mmap+touch+close median".into(), &|k| {
            k.export_mmap_close_median_ns.map(|s| s.median)
        });
        row(&mut o, "fstat median".into(), &|k| {
            Some(k.fstat_median_ns.median)
        });
        if let (Some(s), Some(c)) = (s, c) {
            o.push_str(&reading(s, c, r));
        }
        if let Some(g) = &self.gate {
            let _ = writeln!(
                o,
                "\nGate (N = {}): Rust {:.1} B/buffer, C {:.1} B/buffer, margin {:.1} B (the widest \
                 spread over rounds, at least {MIN_MARGIN} B), in the caches that hold at least \
                 {PER_BUFFER_OBJECTS} objects per buffer in either kernel{}: {}",
                g.count,
                g.rust,
                g.c,
                g.margin,
                if g.left_out.is_empty() {
                    String::new()
                } else {
                    format!(" (left out: {})", g.left_out.join(", "))
                },
                if g.passed { "passed" } else { "FAILED: Rust costs more kernel memory per buffer than C" }
            );
        }
        o
    }
}

/// What the per-buffer inode costs over the singleton, cache by cache.
fn reading(s: &KernelSummary, c: &KernelSummary, r: Option<&KernelSummary>) -> String {
    let mut o = String::new();
    let Some(n) = c
        .counts
        .iter()
        .map(|x| x.count)
        .filter(|&n| s.at(n).is_some())
        .max()
    else {
        return o;
    };
    let (sc, cc) = (s.at(n).unwrap(), c.at(n).unwrap());
    let extra = cc.slab_bytes_per_buffer.median - sc.slab_bytes_per_buffer.median;
    let _ = writeln!(
        o,
        "\nReading (N = {n}): an inode per buffer costs {extra:.0} bytes of slab per buffer more \
         than the singleton inode ({:.0} against {:.0}), {:.1} MiB for {n} buffers. Where it goes:",
        cc.slab_bytes_per_buffer.median,
        sc.slab_bytes_per_buffer.median,
        extra * n as f64 / (1 << 20) as f64
    );
    let names: BTreeSet<&String> = sc.caches.keys().chain(cc.caches.keys()).collect();
    for name in names {
        let get = |x: &crate::report::CountSummary| {
            x.caches.get(name).map_or((0.0, 0.0, 0), |k| {
                (k.objects_per_buffer, k.bytes_per_buffer, k.objsize)
            })
        };
        let (so, sb, _) = get(sc);
        let (co, cb, size) = get(cc);
        if (co - so).abs() >= 0.05 {
            let _ = writeln!(
                o,
                "- {name} (objects of {size} B): {:+.2} objects, {:+.0} B per buffer",
                co - so,
                cb - sb
            );
        }
    }
    if let Some(rc) = r.and_then(|r| r.at(n)) {
        let _ = writeln!(
            o,
            "\nThe Rust filesystem allocates {:.0} B per buffer, C {:.0} B: ratio {}.",
            rc.slab_bytes_per_buffer.median,
            cc.slab_bytes_per_buffer.median,
            ratio(
                rc.slab_bytes_per_buffer.median,
                cc.slab_bytes_per_buffer.median
            )
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CacheDelta, Latency, Memory};

    fn run(model: Model, count: u64, caches: &[(&str, u64, i64)], latency_ns: u64) -> Run {
        let caches: BTreeMap<String, CacheDelta> = caches
            .iter()
            .map(|&(n, size, objs)| {
                (
                    n.to_string(),
                    CacheDelta {
                        objsize: size,
                        objects: objs,
                    },
                )
            })
            .collect();
        let bytes: i64 = caches.values().map(CacheDelta::bytes).sum();
        let stats = Stats {
            iterations: 100,
            median_ns: latency_ns,
            p99_ns: latency_ns * 2,
        };
        Run {
            kernel: "6.12.117".into(),
            model,
            page_size: 4096,
            memory: vec![Memory {
                count,
                meminfo_slab_bytes: bytes,
                slabinfo_bytes: bytes,
                caches,
            }],
            latency: Latency {
                export_close: stats,
                export_mmap_close: None,
                export: None,
                close: None,
                fstat: stats,
            },
        }
    }

    fn three(rust_inodes: i64) -> Vec<(String, Run)> {
        let common = [
            ("filp", 256, 1000),
            ("dentry", 192, 1000),
            ("kmalloc-512", 512, 1000),
        ];
        let with = |inodes: i64| {
            let mut v = common.to_vec();
            v.push(("inode_cache", 600, inodes));
            v
        };
        vec![
            ("negative".into(), run(Model::Singleton, 1000, &common, 100)),
            ("c".into(), run(Model::PerBuffer, 1000, &with(1000), 120)),
            (
                "rust".into(),
                run(Model::PerBuffer, 1000, &with(rust_inodes), 118),
            ),
            ("c".into(), run(Model::PerBuffer, 1000, &with(1000), 122)),
            (
                "rust".into(),
                run(Model::PerBuffer, 1000, &with(rust_inodes), 119),
            ),
        ]
    }

    #[test]
    fn per_buffer_inode_costs_one_inode_more() {
        let s = summary(&three(1000)).unwrap();
        let c = s
            .find(C)
            .unwrap()
            .at(1000)
            .unwrap()
            .slab_bytes_per_buffer
            .median;
        let neg = s
            .find(SINGLETON)
            .unwrap()
            .at(1000)
            .unwrap()
            .slab_bytes_per_buffer
            .median;
        assert_eq!(c - neg, 600.0);
        assert_eq!(s.find(C).unwrap().rounds, 2);
        assert_eq!(s.find(C).unwrap().export_close_median_ns.median, 121.0);
        let md = s.markdown("ns");
        assert!(
            md.contains("- inode_cache (objects of 600 B): +1.00 objects, +600 B per buffer"),
            "{md}"
        );
        assert!(
            md.contains("| slab bytes per buffer, N = 1000 | 1.000 | 1.625 | 1.625 |"),
            "{md}"
        );
        assert!(s.gate.unwrap().passed);
    }

    #[test]
    fn the_gate_trips_when_rust_costs_more() {
        // Rust leaks a second inode for every tenth buffer: 60 B a buffer.
        let s = summary(&three(1100)).unwrap();
        let g = s.gate.clone().unwrap();
        assert!(!g.passed, "{g:?}");
        assert_eq!(g.margin, MIN_MARGIN);
        assert!(s.markdown("ns").contains("FAILED"));
    }

    /// `three`, with a cache that holds none of a buffer's objects, in
    /// which C and Rust see `c` and `rust` objects come or go.
    fn with_background(c: i64, rust: i64) -> Vec<(String, Run)> {
        let mut runs = three(1000);
        for (label, r) in &mut runs {
            let n = match label.as_str() {
                "c" => c,
                "rust" => rust,
                _ => 0,
            };
            for m in &mut r.memory {
                let moved = CacheDelta {
                    objsize: 96,
                    objects: n,
                };
                m.slabinfo_bytes += moved.bytes();
                m.meminfo_slab_bytes += moved.bytes();
                m.caches.insert("kmalloc-96".into(), moved);
            }
        }
        runs
    }

    #[test]
    fn whole_slabs_moving_in_a_cache_no_buffer_uses_do_not_trip_the_gate() {
        // Measured on 6.12.117: kmalloc-96 lost 378 objects during C's
        // runs and gained 210 during Rust's, 5.6 B a buffer at N = 10,000.
        let s = summary(&with_background(-38, 21)).unwrap();
        let g = s.gate.clone().unwrap();
        assert!(g.passed, "{g:?}");
        assert_eq!(g.left_out, vec!["kmalloc-96".to_string()]);
        assert!(s.markdown("ns").contains("(left out: kmalloc-96)"));
    }

    #[test]
    fn an_object_for_every_second_buffer_in_another_cache_trips_the_gate() {
        let g = summary(&with_background(0, 500)).unwrap().gate.unwrap();
        assert!(!g.passed, "{g:?}");
        assert!(g.left_out.is_empty(), "{g:?}");
    }

    #[test]
    fn rounds_of_different_kernels_are_refused() {
        let mut runs = three(1000);
        runs[4].1.kernel = "6.13.0".into();
        let e = summary(&runs).unwrap_err().to_string();
        assert!(e.contains("different kernels"), "{e}");
    }
}
