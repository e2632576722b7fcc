// SPDX-License-Identifier: GPL-2.0
//! `/proc/slabinfo`, version 2.1 (`cache_show()` in mm/slab_common.c).
//!
//! ```text
//! slabinfo - version: 2.1
//! # name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>
//! inode_cache          294    294    560   14    2 : tunables    0    0    0 : slabdata     21     21      0
//! ```
//!
//! Merged caches show up once, under the name of the cache they were merged
//! into; `kmalloc-*` caches hold every kmalloc() of their size class.

use super::{dec, ParseError};

const WHAT: &str = "slabinfo";

/// One cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cache {
    pub name: String,
    /// Objects in use. SLUB counts the free objects of the per-CPU slabs as
    /// active too, so this overstates by at most those slabs' free objects.
    pub active_objs: u64,
    pub num_objs: u64,
    /// Bytes per object, metadata included.
    pub objsize: u64,
    pub objperslab: u64,
    pub pagesperslab: u64,
    pub active_slabs: u64,
    pub num_slabs: u64,
}

impl Cache {
    /// Bytes of the active objects.
    pub fn active_bytes(&self) -> u64 {
        self.active_objs * self.objsize
    }
}

/// Parses the whole text of /proc/slabinfo.
pub fn parse(text: &str) -> Result<Vec<Cache>, ParseError> {
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    match lines.next() {
        Some((_, "slabinfo - version: 2.1")) => {}
        Some((n, l)) => {
            return Err(ParseError::new(
                WHAT,
                Some(n),
                format!("`{l}`: only version 2.1 is understood"),
            ))
        }
        None => return Err(ParseError::new(WHAT, None, "empty")),
    }
    let mut caches = Vec::new();
    for (n, line) in lines {
        if line.starts_with('#') {
            continue;
        }
        // name active num objsize objperslab pagesperslab : tunables l b s
        // : slabdata active_slabs num_slabs sharedavail
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() != 16 || f[6] != ":" || f[7] != "tunables" || f[11] != ":" || f[12] != "slabdata"
        {
            return Err(ParseError::new(
                WHAT,
                Some(n),
                format!("`{line}` is not a version 2.1 cache line"),
            ));
        }
        caches.push(Cache {
            name: f[0].to_string(),
            active_objs: dec(WHAT, n, "active_objs", f[1])?,
            num_objs: dec(WHAT, n, "num_objs", f[2])?,
            objsize: dec(WHAT, n, "objsize", f[3])?,
            objperslab: dec(WHAT, n, "objperslab", f[4])?,
            pagesperslab: dec(WHAT, n, "pagesperslab", f[5])?,
            active_slabs: dec(WHAT, n, "active_slabs", f[13])?,
            num_slabs: dec(WHAT, n, "num_slabs", f[14])?,
        });
    }
    Ok(caches)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_slabinfo() {
        let caches = parse(include_str!("../../testdata/slabinfo.txt")).unwrap();
        assert!(caches.len() > 20, "{caches:#?}");
        for name in ["inode_cache", "filp", "kmalloc-64"] {
            let c = caches
                .iter()
                .find(|c| c.name == name)
                .unwrap_or_else(|| panic!("no {name}"));
            assert!(c.active_objs <= c.num_objs && c.objsize > 0 && c.objperslab > 0);
            assert!(c.num_slabs * c.objperslab == c.num_objs, "{c:?}");
        }
        let k = caches.iter().find(|c| c.name == "kmalloc-64").unwrap();
        assert_eq!(k.objsize, 64);
        assert_eq!(k.active_bytes(), k.active_objs * 64);
    }

    #[test]
    fn rejects_other_versions_and_bad_lines() {
        assert!(parse("slabinfo - version: 2.0\n").is_err());
        assert!(parse("").is_err());
        let e = parse("slabinfo - version: 2.1\n# name\nx 1 2 3\n").unwrap_err();
        assert_eq!(e.line, Some(3));
        let e = parse("slabinfo - version: 2.1\nx 1 y 3 4 5 : tunables 0 0 0 : slabdata 1 1 0\n")
            .unwrap_err();
        assert!(e.reason.contains("num_objs"));
    }
}
