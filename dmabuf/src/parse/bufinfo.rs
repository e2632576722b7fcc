// SPDX-License-Identifier: GPL-2.0
//! debugfs `dma_buf/bufinfo` (`dma_buf_debug_show()` in
//! drivers/dma-buf/dma-buf.c), tabs shown as `\t`:
//!
//! ```text
//!
//! Dma-buf Objects:
//! size    \tflags   \tmode    \tcount   \texp_name\tino     \tname
//! 00004096\t00000002\t00080007\t00000001\tudmabuf\t00000001\t<none>
//! \tAttached Devices:
//! Total 0 devices attached
//!
//!
//! Total 1 objects, 4096 bytes
//! ```
//!
//! One entry per dma-buf whose file is still open somewhere (an fd, a
//! mapping, a driver's reference): size, `f_flags` and `f_mode` (hex), the
//! file's reference count, exporter, inode number and name (`<none>` until
//! DMA_BUF_SET_NAME). Fence lines (`\t<usage> fence:...`) and the attached
//! devices follow each entry. The whole file is produced under one lock, so
//! the totals always agree with the entries; the parser checks that they do.

use super::{dec, hex, ParseError};

const WHAT: &str = "bufinfo";

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BufInfo {
    pub buffers: Vec<Buffer>,
    /// `Total N objects`.
    pub total_objects: u64,
    /// `..., M bytes`.
    pub total_bytes: u64,
}

/// One dma-buf.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Buffer {
    pub size: u64,
    pub flags: u32,
    pub mode: u32,
    /// References to the dma-buf's file (fds, mappings, kernel users).
    pub count: i64,
    pub exp_name: String,
    pub ino: u64,
    /// `None` for `<none>`: no DMA_BUF_SET_NAME yet.
    pub name: Option<String>,
    /// The fence lines as printed, without the leading tab.
    pub fences: Vec<String>,
    pub attached: Vec<String>,
}

impl BufInfo {
    /// The entries whose inode number is `ino`.
    pub fn with_ino(&self, ino: u64) -> impl Iterator<Item = &Buffer> {
        self.buffers.iter().filter(move |b| b.ino == ino)
    }

    /// The entries named `name`.
    pub fn with_name<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Buffer> {
        self.buffers
            .iter()
            .filter(move |b| b.name.as_deref() == Some(name))
    }
}

fn entry(line: &str, n: usize) -> Result<Buffer, ParseError> {
    // No vector for the fields: bufinfo has thousands of entries.
    let mut f = [""; 7];
    let mut fields = line.splitn(7, '\t');
    let mut count = 0;
    for (slot, field) in f.iter_mut().zip(&mut fields) {
        *slot = field;
        count += 1;
    }
    if count != 7 {
        return Err(ParseError::new(
            WHAT,
            Some(n),
            format!("`{line}` has {count} tab-separated fields, not 7"),
        ));
    }
    Ok(Buffer {
        size: dec(WHAT, n, "size", f[0])?,
        flags: hex(WHAT, n, "flags", f[1])? as u32,
        mode: hex(WHAT, n, "mode", f[2])? as u32,
        count: dec(WHAT, n, "count", f[3])?,
        exp_name: f[4].to_string(),
        ino: dec(WHAT, n, "ino", f[5])?,
        name: (f[6] != "<none>").then(|| f[6].to_string()),
        fences: Vec::new(),
        attached: Vec::new(),
    })
}

/// Parses the whole text of bufinfo.
pub fn parse(text: &str) -> Result<BufInfo, ParseError> {
    let err = |n: usize, reason: String| ParseError::new(WHAT, Some(n), reason);
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.is_empty());
    match lines.next() {
        Some((_, "Dma-buf Objects:")) => {}
        Some((n, l)) => {
            return Err(err(
                n,
                format!("`{l}` where `Dma-buf Objects:` was expected"),
            ))
        }
        None => return Err(ParseError::new(WHAT, None, "empty")),
    }
    match lines.next() {
        Some((_, l)) if l.starts_with("size") && l.contains("ino") => {}
        Some((n, l)) => {
            return Err(err(
                n,
                format!("`{l}` where the column header was expected"),
            ))
        }
        None => return Err(ParseError::new(WHAT, None, "no column header")),
    }

    let mut info = BufInfo::default();
    // The entry whose `Total N devices attached` has not been seen yet, and
    // whether its `Attached Devices:` line has.
    let mut open: Option<(Buffer, bool)> = None;
    let mut totals = false;
    for (n, line) in lines {
        if totals {
            return Err(err(n, format!("`{line}` after the totals")));
        }
        if let Some(tail) = line.strip_prefix("Total ") {
            if let Some(k) = tail.strip_suffix(" devices attached") {
                let Some((buffer, _)) = open.take() else {
                    return Err(err(n, "devices total outside an entry".into()));
                };
                let k: usize = dec(WHAT, n, "attached devices", k)?;
                if k != buffer.attached.len() {
                    return Err(err(
                        n,
                        format!("{k} devices attached, {} listed", buffer.attached.len()),
                    ));
                }
                info.buffers.push(buffer);
            } else if let Some((objects, bytes)) = tail
                .strip_suffix(" bytes")
                .and_then(|t| t.split_once(" objects, "))
            {
                if open.is_some() {
                    return Err(err(n, "totals inside an entry".into()));
                }
                info.total_objects = dec(WHAT, n, "objects", objects)?;
                info.total_bytes = dec(WHAT, n, "bytes", bytes)?;
                totals = true;
            } else {
                return Err(err(n, format!("unknown total `{line}`")));
            }
        } else if let Some(detail) = line.strip_prefix('\t') {
            let Some((buffer, attached)) = open.as_mut() else {
                return Err(err(n, format!("`{line}` outside an entry")));
            };
            if detail == "Attached Devices:" {
                *attached = true;
            } else if *attached {
                buffer.attached.push(detail.to_string());
            } else if detail.contains(" fence:") {
                buffer.fences.push(detail.to_string());
            } else {
                return Err(err(n, format!("`{line}` is neither a fence nor a device")));
            }
        } else {
            if open.is_some() {
                return Err(err(
                    n,
                    "a new entry before the previous one's devices total".into(),
                ));
            }
            open = Some((entry(line, n)?, false));
        }
    }
    if !totals {
        return Err(ParseError::new(
            WHAT,
            None,
            "no `Total N objects, M bytes` line",
        ));
    }
    let Some(bytes) = info
        .buffers
        .iter()
        .try_fold(0u64, |sum, b| sum.checked_add(b.size))
    else {
        return Err(ParseError::new(
            WHAT,
            None,
            "the entries' sizes add up to more than 2^64 bytes",
        ));
    };
    if info.total_objects != info.buffers.len() as u64 || info.total_bytes != bytes {
        return Err(ParseError::new(
            WHAT,
            None,
            format!(
                "totals say {} objects of {} bytes, the entries {} of {bytes}",
                info.total_objects,
                info.total_bytes,
                info.buffers.len()
            ),
        ));
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_that_add_up_past_2_64_are_an_error() {
        let entry = |ino: u64| {
            format!(
                "{}\t00000002\t00080007\t00000001\tsystem\t{ino:08}\t<none>\n\tAttached Devices:\nTotal 0 devices attached\n\n",
                u64::MAX
            )
        };
        let text = format!(
            "\nDma-buf Objects:\nsize    \tflags   \tmode    \tcount   \texp_name\tino     \tname\n{}{}\nTotal 2 objects, 18446744073709551614 bytes\n",
            entry(1),
            entry(2)
        );
        let e = parse(&text).unwrap_err();
        assert!(e.reason.contains("more than 2^64"), "{e}");
    }

    #[test]
    fn empty_list() {
        let info = parse(include_str!("../../testdata/bufinfo-empty.txt")).unwrap();
        assert_eq!(info, BufInfo::default());
    }

    #[test]
    fn both_exporters_named_and_not() {
        let info = parse(include_str!("../../testdata/bufinfo-mixed.txt")).unwrap();
        assert!(info.buffers.len() >= 3, "{info:#?}");
        let exporters: std::collections::BTreeSet<_> =
            info.buffers.iter().map(|b| b.exp_name.as_str()).collect();
        assert_eq!(exporters, ["system", "udmabuf"].into());
        assert!(info.buffers.iter().any(|b| b.name.is_none()));
        let named = info.with_name("validator-heap-named").next().unwrap();
        assert_eq!(named.exp_name, "system");
        for b in &info.buffers {
            assert_ne!(b.ino, 0);
            assert_eq!(info.with_ino(b.ino).count(), 1);
            assert_eq!(b.size % 4096, 0);
            assert!(b.count >= 1);
            assert!(b.attached.is_empty() && b.fences.is_empty());
        }
    }

    #[test]
    fn fences_and_devices() {
        let text = "\nDma-buf Objects:\nsize    \tflags   \tmode    \tcount   \texp_name\tino     \tname\n\
            00008192\t00000002\t00080007\t00000003\tsystem\t00000012\tgpu: a\tb\n\
            \twrite fence:drv tl seq 4 signalled\n\tAttached Devices:\n\t0000:00:02.0\nTotal 1 devices attached\n\n\
            \nTotal 1 objects, 8192 bytes\n";
        let info = parse(text).unwrap();
        let b = &info.buffers[0];
        assert_eq!((b.size, b.count, b.ino, b.mode), (8192, 3, 12, 0x80007));
        assert_eq!(b.name.as_deref(), Some("gpu: a\tb"));
        assert_eq!(b.fences, ["write fence:drv tl seq 4 signalled"]);
        assert_eq!(b.attached, ["0000:00:02.0"]);
    }

    #[test]
    fn rejects_inconsistent_text() {
        let head = "\nDma-buf Objects:\nsize\tflags\tmode\tcount\texp_name\tino\tname\n";
        let one = "00004096\t00000002\t00080007\t00000001\tudmabuf\t00000001\t<none>\n\tAttached Devices:\nTotal 0 devices attached\n\n";
        assert!(parse(&format!("{head}{one}\nTotal 1 objects, 4096 bytes\n")).is_ok());
        let e = parse(&format!("{head}{one}\nTotal 2 objects, 4096 bytes\n")).unwrap_err();
        assert!(e.reason.contains("totals say"), "{e}");
        assert!(parse(&format!("{head}{one}")).is_err(), "no totals");
        assert!(parse(&format!("{head}{one}{one}")).is_err(), "no totals");
        let e = parse(&format!("{head}00004096\tx\n")).unwrap_err();
        assert_eq!(e.line, Some(4));
        assert!(parse(&format!("{head}{}", one.replace("Total 0", "Total 1"))).is_err());
        assert!(parse("size\n").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn attached_devices_of_a_real_boot() {
        // lsdmabuf-vmtest's scene on 7.3-rc7 with vgem, which imported
        // inodes 10 and 11.
        let info = parse(include_str!("../../testdata/bufinfo-vgem.txt")).unwrap();
        assert_eq!((info.total_objects, info.total_bytes), (11, 118784));
        for b in &info.buffers {
            let want: &[&str] = if b.ino == 10 || b.ino == 11 {
                &["vgem"]
            } else {
                &[]
            };
            assert_eq!(b.attached, want, "ino {}", b.ino);
            assert!(b.fences.is_empty());
        }
        let only = info.with_ino(11).next().unwrap();
        assert_eq!(
            (
                only.size,
                only.exp_name.as_str(),
                only.name.as_deref(),
                only.count
            ),
            (4096, "udmabuf", Some("scene-imported-only"), 3)
        );
    }
}
