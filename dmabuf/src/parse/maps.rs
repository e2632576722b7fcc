// SPDX-License-Identifier: GPL-2.0
//! `/proc/PID/maps` (`show_map_vma()` in fs/proc/task_mmu.c).
//!
//! ```text
//! 7f3a1c000000-7f3a1c001000 rw-s 00000000 00:0d 42                         /dmabuf:frame-0
//! ```
//!
//! start-end, permissions, file offset, device `major:minor` (hex), inode
//! (decimal, 0 without a file), then, after padding, the path or a name such
//! as `[heap]`. For a dma-buf the device and inode are those of its inode on
//! the dmabuf filesystem, the same `st_dev`/`st_ino` that fstat() gives.

use super::{dec, hex, ParseError};

const WHAT: &str = "maps";

/// One mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    /// `rwxs`/`rwxp` as printed.
    pub perms: String,
    pub offset: u64,
    pub major: u32,
    pub minor: u32,
    pub inode: u64,
    /// Path or pseudo name; empty for anonymous memory.
    pub pathname: String,
}

impl Mapping {
    /// Whether the mapping is shared (`s`) rather than private (`p`).
    pub fn shared(&self) -> bool {
        self.perms.ends_with('s')
    }

    /// The name of this mapping's entry in `/proc/PID/map_files/`.
    pub fn map_files_name(&self) -> String {
        format!("{:x}-{:x}", self.start, self.end)
    }
}

/// Parses one line of a maps file; `n` is its line number, for errors.
pub fn parse_line(line: &str, n: usize) -> Result<Mapping, ParseError> {
    let err = |reason: String| ParseError::new(WHAT, Some(n), reason);
    let mut rest = line;
    let mut field = |name: &str| -> Result<&str, ParseError> {
        let s = rest.trim_start_matches(' ');
        let end = s.find(' ').unwrap_or(s.len());
        if end == 0 {
            return Err(err(format!("no {name} in `{line}`")));
        }
        rest = &s[end..];
        Ok(&s[..end])
    };
    let range = field("address range")?;
    let perms = field("permissions")?.to_string();
    let offset = field("offset")?;
    let dev = field("device")?;
    let inode = field("inode")?;
    // The path may hold spaces of its own; only the padding before it goes.
    let pathname = rest.trim_start_matches(' ').to_string();

    let (start, end) = range
        .split_once('-')
        .ok_or_else(|| err(format!("address range `{range}` is not start-end")))?;
    let (major, minor) = dev
        .split_once(':')
        .ok_or_else(|| err(format!("device `{dev}` is not major:minor")))?;
    if perms.len() != 4 {
        return Err(err(format!(
            "permissions `{perms}` are not four characters"
        )));
    }
    Ok(Mapping {
        start: hex(WHAT, n, "start", start)?,
        end: hex(WHAT, n, "end", end)?,
        perms,
        offset: hex(WHAT, n, "offset", offset)?,
        major: hex(WHAT, n, "major", major)? as u32,
        minor: hex(WHAT, n, "minor", minor)? as u32,
        inode: dec(WHAT, n, "inode", inode)?,
        pathname,
    })
}

/// Parses a whole maps file.
pub fn parse(text: &str) -> Result<Vec<Mapping>, ParseError> {
    text.lines()
        .enumerate()
        .map(|(i, l)| parse_line(l, i + 1))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validator_maps_with_dmabufs() {
        let maps = parse(include_str!("../../testdata/maps-dmabuf.txt")).unwrap();
        let bufs: Vec<_> = maps
            .iter()
            .filter(|m| m.pathname.starts_with("/dmabuf:"))
            .collect();
        assert_eq!(bufs.len(), 2, "{maps:#?}");
        for m in &bufs {
            assert!(m.shared());
            assert_ne!(m.inode, 0);
            assert_eq!(m.offset, 0);
            assert!(m.end > m.start);
        }
        assert_ne!(bufs[0].inode, bufs[1].inode);
        assert_eq!(
            (bufs[0].major, bufs[0].minor),
            (bufs[1].major, bufs[1].minor)
        );
        assert!(maps.iter().any(|m| m.pathname == "[stack]" && m.inode == 0));
        assert!(maps
            .iter()
            .any(|m| m.pathname == "/bin/validator" && m.perms.contains('x')));
    }

    #[test]
    fn one_line() {
        let l =
            "7f0000001000-7f0000003000 rw-s 00001000 00:0d 42                         /dmabuf:a b";
        let m = parse_line(l, 1).unwrap();
        assert_eq!(
            (m.start, m.end, m.offset),
            (0x7f0000001000, 0x7f0000003000, 0x1000)
        );
        assert_eq!((m.major, m.minor, m.inode), (0, 0xd, 42));
        assert_eq!(m.pathname, "/dmabuf:a b");
        assert_eq!(m.map_files_name(), "7f0000001000-7f0000003000");
        let anon = parse_line("7ffd1000-7ffd2000 rw-p 00000000 00:00 0 ", 1).unwrap();
        assert_eq!(anon.pathname, "");
    }

    #[test]
    fn rejects_bad_lines() {
        assert!(parse_line("", 1).is_err());
        assert!(parse_line("7f00 rw-s 0 00:0d 42", 1).is_err());
        assert!(parse_line("1-2 rw-s 0 000d 42", 1).is_err());
        assert!(parse_line("1-2 rw-s 0 00:0d x42", 1).is_err());
        assert_eq!(
            parse("1-2 rw-s 0 00:0d 4\n1-2 rw 0 00:0d 4\n")
                .unwrap_err()
                .line,
            Some(2)
        );
    }
}
