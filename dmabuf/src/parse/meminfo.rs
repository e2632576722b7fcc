// SPDX-License-Identifier: GPL-2.0
//! `/proc/meminfo` (fs/proc/meminfo.c): `Key:   value kB` lines, a few
//! (`HugePages_Total`, ...) counts without a unit.

use std::collections::BTreeMap;

use super::{dec, ParseError};

const WHAT: &str = "meminfo";

/// All the fields of one meminfo read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Meminfo {
    /// Key to value: bytes for `kB` fields, the bare number otherwise.
    pub fields: BTreeMap<String, u64>,
}

impl Meminfo {
    /// The value of `key` (bytes for `kB` fields).
    pub fn get(&self, key: &str) -> Option<u64> {
        self.fields.get(key).copied()
    }
}

/// Parses the whole text of /proc/meminfo.
pub fn parse(text: &str) -> Result<Meminfo, ParseError> {
    let mut info = Meminfo::default();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let Some((key, value)) = line.split_once(':') else {
            return Err(ParseError::new(
                WHAT,
                Some(n),
                format!("`{line}` is not `Key: value`"),
            ));
        };
        let value = value.trim();
        let v = match value.strip_suffix(" kB") {
            Some(kib) => dec::<u64>(WHAT, n, key, kib)? * 1024,
            None => dec(WHAT, n, key, value)?,
        };
        if info.fields.insert(key.to_string(), v).is_some() {
            return Err(ParseError::new(WHAT, Some(n), format!("`{key}` twice")));
        }
    }
    if info.fields.is_empty() {
        return Err(ParseError::new(WHAT, None, "empty"));
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_meminfo() {
        let m = parse(include_str!("../../testdata/meminfo.txt")).unwrap();
        let total = m.get("MemTotal").unwrap();
        assert!(total > 100 << 20 && total % 1024 == 0);
        assert!(m.get("MemFree").unwrap() < total);
        assert!(m.get("Slab").unwrap() >= m.get("SUnreclaim").unwrap());
        assert_eq!(m.get("NoSuchField"), None);
    }

    #[test]
    fn units() {
        let m = parse("MemTotal:        1000 kB\nHugePages_Total:       3\n").unwrap();
        assert_eq!(m.get("MemTotal"), Some(1024000));
        assert_eq!(m.get("HugePages_Total"), Some(3));
    }

    #[test]
    fn rejects_bad_text() {
        assert!(parse("").is_err());
        assert_eq!(parse("A: 1 kB\nB 2 kB\n").unwrap_err().line, Some(2));
        assert!(parse("A: x kB\n").is_err());
        assert!(parse("A: 1 kB\nA: 2 kB\n").is_err());
    }
}
