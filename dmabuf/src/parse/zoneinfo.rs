// SPDX-License-Identifier: GPL-2.0
//! `/proc/zoneinfo` (`zoneinfo_show_print()` in mm/vmstat.c): per zone, the
//! free pages and, under `pagesets`, each CPU's list of free pages.
//!
//! ```text
//! Node 0, zone    DMA32
//!   pages free     240130
//!         ...
//!         managed  250747
//!         ...
//!   pagesets
//!     cpu: 0
//!               count: 1268
//!               high:  6208
//!               batch: 63
//!   vm stats threshold: 24
//! ```
//!
//! MemFree in /proc/meminfo counts only the buddy allocator's free pages.
//! Freed pages first go to the freeing CPU's list, and since 6.7 a list may
//! grow to an eighth of its zone: pages that are free but not in MemFree.

use super::{dec, ParseError};

const WHAT: &str = "zoneinfo";

/// One zone of one node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Zone {
    pub node: u32,
    pub name: String,
    /// `pages free`: the buddy allocator's free pages.
    pub free: u64,
    pub managed: u64,
    pub pagesets: Vec<Pageset>,
}

/// One CPU's list of free pages of a zone.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pageset {
    pub cpu: u32,
    pub count: u64,
    pub high: u64,
    pub batch: u64,
}

impl Zone {
    /// Free pages on the per-CPU lists.
    pub fn pcp_pages(&self) -> u64 {
        self.pagesets.iter().map(|p| p.count).sum()
    }
}

/// Parses the whole text of /proc/zoneinfo.
pub fn parse(text: &str) -> Result<Vec<Zone>, ParseError> {
    let mut zones: Vec<Zone> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if let Some(rest) = line.strip_prefix("Node ") {
            let (node, zone) = rest.split_once(", zone ").ok_or_else(|| {
                ParseError::new(
                    WHAT,
                    Some(n),
                    format!("`{line}` is not `Node N, zone NAME`"),
                )
            })?;
            zones.push(Zone {
                node: dec(WHAT, n, "node", node)?,
                name: zone.trim().to_string(),
                ..Zone::default()
            });
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(key), Some(value)) = (words.next(), words.last()) else {
            continue;
        };
        let Some(zone) = zones.last_mut() else {
            return Err(ParseError::new(
                WHAT,
                Some(n),
                format!("`{line}` before the first `Node N, zone NAME`"),
            ));
        };
        match key {
            "pages" if line.trim_start().starts_with("pages free") => {
                zone.free = dec(WHAT, n, "pages free", value)?
            }
            "managed" => zone.managed = dec(WHAT, n, key, value)?,
            "cpu:" => zone.pagesets.push(Pageset {
                cpu: dec(WHAT, n, key, value)?,
                ..Pageset::default()
            }),
            "count:" | "high:" | "batch:" => {
                let p = zone.pagesets.last_mut().ok_or_else(|| {
                    ParseError::new(WHAT, Some(n), format!("`{line}` outside a `cpu:` pageset"))
                })?;
                let v = dec(WHAT, n, key, value)?;
                match key {
                    "count:" => p.count = v,
                    "high:" => p.high = v,
                    _ => p.batch = v,
                }
            }
            _ => {}
        }
    }
    if zones.is_empty() {
        return Err(ParseError::new(WHAT, None, "no zones"));
    }
    Ok(zones)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_zoneinfo() {
        let zones = parse(include_str!("../../testdata/zoneinfo.txt")).unwrap();
        let names: Vec<&str> = zones.iter().map(|z| z.name.as_str()).collect();
        assert!(names.contains(&"DMA32"), "{names:?}");
        let dma32 = zones.iter().find(|z| z.name == "DMA32").unwrap();
        assert!(dma32.free > 0 && dma32.free <= dma32.managed, "{dma32:?}");
        // Captured in the test VM, which brings up one CPU.
        assert_eq!(
            dma32.pagesets.iter().map(|p| p.cpu).collect::<Vec<_>>(),
            [0]
        );
        assert!(dma32.pagesets.iter().all(|p| p.batch > 0 && p.high > 0));
        assert_eq!(
            dma32.pcp_pages(),
            dma32.pagesets.iter().map(|p| p.count).sum::<u64>()
        );
        // Zones without memory have no pagesets.
        assert!(zones
            .iter()
            .filter(|z| z.managed == 0)
            .all(|z| z.pagesets.is_empty()));
    }

    #[test]
    fn two_cpus() {
        let text = "Node 0, zone    DMA32\n  pages free     100\n        managed  200\n  pagesets\n    cpu: 0\n              count: 7\n              high:  30\n              batch: 3\n  vm stats threshold: 8\n    cpu: 1\n              count: 5\n              high:  40\n              batch: 3\n  vm stats threshold: 8\n  node_unreclaimable:  0\n  start_pfn:           1\n";
        let zones = parse(text).unwrap();
        assert_eq!(zones.len(), 1);
        let z = &zones[0];
        assert_eq!(
            (z.node, z.name.as_str(), z.free, z.managed),
            (0, "DMA32", 100, 200)
        );
        assert_eq!(
            z.pagesets[1],
            Pageset {
                cpu: 1,
                count: 5,
                high: 40,
                batch: 3
            }
        );
        assert_eq!(z.pcp_pages(), 12);
    }

    #[test]
    fn rejects_bad_text() {
        assert!(parse("").is_err());
        assert_eq!(parse("  pages free 3\n").unwrap_err().line, Some(1));
        assert!(parse("Node 0, zone DMA\n              count: 3\n").is_err());
        assert!(parse("Node x, zone DMA\n").is_err());
        assert!(parse("Node 0, zone DMA\n  pages free x\n").is_err());
    }
}
