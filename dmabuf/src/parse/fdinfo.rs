// SPDX-License-Identifier: GPL-2.0
//! `/proc/PID/fdinfo/N` (fs/proc/fd.c, and `dma_buf_show_fdinfo()` in
//! drivers/dma-buf/dma-buf.c), tabs shown as `\t`:
//!
//! ```text
//! pos:\t0
//! flags:\t02000002
//! mnt_id:\t15
//! ino:\t3
//! size:\t4096
//! count:\t1
//! exp_name:\tudmabuf
//! name:\tframe-0
//! ```
//!
//! The first four lines exist for every file; `size`, `count`, `exp_name` and
//! (once DMA_BUF_SET_NAME gave one) `name` are the dma-buf's own. `count` is
//! the number of references to the dma-buf's file, procfs' own temporary one
//! not counted.

use super::{dec, ParseError};

const WHAT: &str = "fdinfo";

/// One parsed fdinfo file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FdInfo {
    pub pos: i64,
    /// `O_*` flags of the open file, `O_CLOEXEC` included (printed in octal).
    pub flags: u32,
    pub mnt_id: i32,
    pub ino: u64,
    /// The dma-buf lines; `None` when the file is not a dma-buf.
    pub dmabuf: Option<DmaBufFdInfo>,
}

/// The lines `dma_buf_show_fdinfo()` adds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DmaBufFdInfo {
    pub size: u64,
    pub count: i64,
    pub exp_name: String,
    /// The name DMA_BUF_SET_NAME set; `None` before the first one.
    pub name: Option<String>,
}

/// Parses the whole text of one fdinfo file.
pub fn parse(text: &str) -> Result<FdInfo, ParseError> {
    parse_with(text, true)
}

/// Parses like [`parse`], and also the fdinfo of kernels before 5.14, which
/// print no `ino:` line: [`FdInfo::ino`] is then 0, a number no inode is
/// given (`get_next_ino()` skips it), and the caller can stat the fd instead.
pub fn parse_ino_optional(text: &str) -> Result<FdInfo, ParseError> {
    parse_with(text, false)
}

fn parse_with(text: &str, need_ino: bool) -> Result<FdInfo, ParseError> {
    let mut info = FdInfo::default();
    let (mut pos, mut flags, mut mnt_id, mut ino) = (false, false, false, false);
    let (mut size, mut count, mut exp_name, mut name) = (None, None, None, None);
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        // Lock lines ("lock:\t1: POSIX ...") and other files' fields hold
        // colons of their own: split at the first one only.
        let Some((key, value)) = line.split_once(':') else {
            return Err(ParseError::new(
                WHAT,
                Some(n),
                format!("`{line}` is not `key:\tvalue`"),
            ));
        };
        // The kernel separates key and value with one tab; the name is
        // printed as it was set, so only that one tab is not part of it.
        let value = value.strip_prefix('\t').unwrap_or(value);
        match key {
            "pos" => (info.pos, pos) = (dec(WHAT, n, key, value)?, true),
            "flags" => {
                info.flags = u32::from_str_radix(value.trim(), 8).map_err(|_| {
                    ParseError::new(
                        WHAT,
                        Some(n),
                        format!("flags `{value}` is not an octal number"),
                    )
                })?;
                flags = true;
            }
            "mnt_id" => (info.mnt_id, mnt_id) = (dec(WHAT, n, key, value)?, true),
            "ino" => (info.ino, ino) = (dec(WHAT, n, key, value)?, true),
            "size" => size = Some(dec(WHAT, n, key, value)?),
            "count" => count = Some(dec(WHAT, n, key, value)?),
            "exp_name" => exp_name = Some(value.to_string()),
            "name" => name = Some(value.to_string()),
            _ => {}
        }
    }
    for (seen, key) in [
        (pos, "pos"),
        (flags, "flags"),
        (mnt_id, "mnt_id"),
        (ino || !need_ino, "ino"),
    ] {
        if !seen {
            return Err(ParseError::new(WHAT, None, format!("no `{key}:` line")));
        }
    }
    info.dmabuf = match (size, count, exp_name) {
        (Some(size), Some(count), Some(exp_name)) => Some(DmaBufFdInfo {
            size,
            count,
            exp_name,
            name,
        }),
        (None, None, None) if name.is_none() => None,
        _ => {
            return Err(ParseError::new(
                WHAT,
                None,
                "some but not all of the dma-buf lines `size:`, `count:`, `exp_name:`",
            ))
        }
    };
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unnamed_udmabuf() {
        let info = parse(include_str!("../../testdata/fdinfo-udmabuf-unnamed.txt")).unwrap();
        assert_eq!(info.pos, 0);
        assert_eq!(info.flags & 0o3, 0o2, "O_RDWR");
        assert_ne!(info.flags & 0o2000000, 0, "O_CLOEXEC");
        assert_ne!(info.ino, 0);
        let d = info.dmabuf.unwrap();
        assert_eq!(d.size, 16384);
        assert_eq!(d.count, 1);
        assert_eq!(d.exp_name, "udmabuf");
        assert_eq!(d.name, None);
    }

    #[test]
    fn named_heap_buffer() {
        let info = parse(include_str!("../../testdata/fdinfo-heap-named.txt")).unwrap();
        let d = info.dmabuf.unwrap();
        assert_eq!(d.exp_name, "system");
        assert_eq!(d.name.as_deref(), Some("validator-heap-named"));
    }

    #[test]
    fn dup_counts_two_references() {
        let info = parse(include_str!("../../testdata/fdinfo-udmabuf-dup.txt")).unwrap();
        assert_eq!(info.dmabuf.unwrap().count, 2);
    }

    #[test]
    fn not_a_dmabuf() {
        let info = parse(include_str!("../../testdata/fdinfo-memfd.txt")).unwrap();
        assert!(info.dmabuf.is_none());
        assert_ne!(info.ino, 0);
    }

    #[test]
    fn every_capture() {
        let captures = [
            (
                "udmabuf",
                1,
                None,
                include_str!("../../testdata/fdinfo-udmabuf-unnamed.txt"),
            ),
            (
                "udmabuf",
                2,
                None,
                include_str!("../../testdata/fdinfo-udmabuf-dup.txt"),
            ),
            (
                "udmabuf",
                1,
                Some("validator-udmabuf-named"),
                include_str!("../../testdata/fdinfo-udmabuf-named.txt"),
            ),
            (
                "system",
                1,
                None,
                include_str!("../../testdata/fdinfo-heap-unnamed.txt"),
            ),
            (
                "system",
                2,
                None,
                include_str!("../../testdata/fdinfo-heap-dup.txt"),
            ),
            (
                "system",
                1,
                Some("validator-heap-named"),
                include_str!("../../testdata/fdinfo-heap-named.txt"),
            ),
        ];
        for (exp_name, count, name, text) in captures {
            let info = parse(text).unwrap();
            let d = info.dmabuf.unwrap();
            assert_eq!(
                (d.exp_name.as_str(), d.count, d.name.as_deref()),
                (exp_name, count, name),
                "{text}"
            );
            assert_eq!(d.size % 4096, 0);
        }
    }

    #[test]
    fn name_keeps_colons_and_spaces() {
        let text = "pos:\t0\nflags:\t02\nmnt_id:\t9\nino:\t7\nsize:\t4096\ncount:\t1\nexp_name:\tsystem\nname:\ta: b \n";
        assert_eq!(
            parse(text).unwrap().dmabuf.unwrap().name.as_deref(),
            Some("a: b ")
        );
    }

    #[test]
    fn before_5_14_without_ino() {
        let text = include_str!("../../testdata/fdinfo-heap-named.txt").replace("ino:\t4\n", "");
        assert!(parse(&text).unwrap_err().reason.contains("ino"));
        let info = parse_ino_optional(&text).unwrap();
        assert_eq!(info.ino, 0);
        assert_eq!(info.dmabuf.unwrap().exp_name, "system");
        let with_ino = include_str!("../../testdata/fdinfo-heap-named.txt");
        assert_eq!(parse_ino_optional(with_ino), parse(with_ino));
    }

    #[test]
    fn rejects_missing_and_bad_fields() {
        assert!(parse("pos:\t0\nflags:\t02\nmnt_id:\t9\n")
            .unwrap_err()
            .reason
            .contains("ino"));
        let e = parse("pos:\t0\nflags:\t09\nmnt_id:\t9\nino:\t1\n").unwrap_err();
        assert_eq!(e.line, Some(2));
        let e = parse("pos:\t0\nflags:\t02\nmnt_id:\t9\nino:\t1\nsize:\t4096\n").unwrap_err();
        assert!(e.reason.contains("not all"));
        assert!(parse("pos 0\n").is_err());
    }
}
