// SPDX-License-Identifier: GPL-2.0
//! What the model reads of the text a walk read of each process: which
//! fds are dma-bufs (by their link), the inode number in fdinfo, the
//! dma-buf lines of maps, whether a process is a kernel thread, its
//! effective uid and its cgroup, the user names of `/etc/passwd`; and the
//! [`Digest`] of one process, all the model takes from it.

use std::collections::BTreeMap;

use dmabuf::parse::{fdinfo, maps, ParseError};
use dmabuf::uapi::dma_buf::LINK_PREFIX;

use super::report::SizeFrom;
use crate::raw::{FileStat, RawFd, RawProcess};

/// The link of a dma-buf fd on kernels before 5.3, where every dma-buf
/// shared one anonymous inode and could not be told apart.
pub const LEGACY_LINK: &str = "anon_inode:dmabuf";

/// What an fd's `/proc/PID/fd/N` link says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// A dma-buf with an inode of its own: `/dmabuf:NAME`.
    DmaBuf,
    /// A dma-buf on anon_inodefs (before 5.3): [`LEGACY_LINK`].
    Legacy,
    /// Anything else.
    Other,
}

/// Classifies an fd by its link, as bytes (links need not be UTF-8).
pub fn link_kind(link: &[u8]) -> LinkKind {
    if link.starts_with(LINK_PREFIX.as_bytes()) {
        LinkKind::DmaBuf
    } else if link == LEGACY_LINK.as_bytes() {
        LinkKind::Legacy
    } else {
        LinkKind::Other
    }
}

/// The inode number a dma-buf fd's fdinfo gives; `None` when the walk must
/// stat() the fd instead: fdinfo missing, unparsable, without dma-buf lines,
/// or without the `ino:` line (kernels before 5.14).
pub fn fdinfo_ino(fdinfo_text: Option<&str>) -> Option<u64> {
    match fdinfo_text.map(fdinfo::parse_ino_optional) {
        Some(Ok(info)) if info.ino != 0 && info.dmabuf.is_some() => Some(info.ino),
        _ => None,
    }
}

/// What a maps line of a dma-buf holds: [`LINK_PREFIX`] after the padding
/// that follows the inode number.
const MAPS_NEEDLE: &str = " /dmabuf:";

/// The lines of maps text that may map a dma-buf, with their 1-based
/// numbers: only those are parsed, so that a line of no interest cannot fail
/// the whole file.
fn dmabuf_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| line.contains(MAPS_NEEDLE))
        .map(|(i, line)| (i + 1, line))
}

/// The mapping on line `n` when it is of a dma-buf: path `/dmabuf:NAME` on
/// a pseudo filesystem (major device number 0).
fn dmabuf_mapping(
    line: &str,
    n: usize,
) -> Result<Option<maps::Mapping>, dmabuf::parse::ParseError> {
    let m = maps::parse_line(line, n)?;
    Ok((m.major == 0 && m.pathname.starts_with(LINK_PREFIX)).then_some(m))
}

/// The mappings of dma-bufs in the text of `/proc/PID/maps`.
pub fn dmabuf_mappings(text: &str) -> Result<Vec<maps::Mapping>, dmabuf::parse::ParseError> {
    dmabuf_lines(text)
        .filter_map(|(n, line)| dmabuf_mapping(line, n).transpose())
        .collect()
}

/// What a walk keeps of the text of a process's `/proc/PID/maps`, in one
/// pass: its dma-buf mappings, and the text the model is to read, which is
/// the lines [`dmabuf_mappings`] parses, or the whole text when one of them
/// does not parse (the model then reports it with its line number). Both
/// are empty when the process maps no dma-buf.
pub fn keep_maps(text: &str) -> (Vec<maps::Mapping>, String) {
    keep_maps_bytes(text.as_bytes())
}

/// [`keep_maps`] of the bytes read: only the lines that hold
/// [`MAPS_NEEDLE`] are made text, so that the maps of a process that maps
/// no dma-buf, most of them, cost one search.
pub fn keep_maps_bytes(bytes: &[u8]) -> (Vec<maps::Mapping>, String) {
    let mut mappings = Vec::new();
    let mut kept = String::new();
    let mut next = 0;
    for hit in memchr::memmem::find_iter(bytes, MAPS_NEEDLE.as_bytes()) {
        if hit < next {
            // A second needle on a line already kept.
            continue;
        }
        let start = memchr::memrchr(b'\n', &bytes[..hit]).map_or(0, |i| i + 1);
        let end = memchr::memchr(b'\n', &bytes[hit..]).map_or(bytes.len(), |i| hit + i);
        next = end;
        let line = String::from_utf8_lossy(&bytes[start..end]);
        // The line number matters only for an error, which the model
        // reports from the whole text.
        match dmabuf_mapping(&line, 0) {
            Ok(Some(m)) => mappings.push(m),
            Ok(None) => {}
            Err(_) => return (Vec::new(), String::from_utf8_lossy(bytes).into_owned()),
        }
        kept.push_str(&line);
        kept.push('\n');
    }
    if mappings.is_empty() {
        kept.clear();
    }
    (mappings, kept)
}

/// Whether the text of `/proc/PID/stat` is a kernel thread's
/// (`PF_KTHREAD` in the flags, field 9); `None` when it cannot be parsed.
pub fn stat_is_kernel_thread(text: &str) -> Option<bool> {
    const PF_KTHREAD: u64 = 0x0020_0000;
    // comm, field 2, is in parentheses and may hold any character: the
    // fields that follow start after the last `)`.
    let rest = &text[text.rfind(')')? + 1..];
    let flags: u64 = rest.split_whitespace().nth(6)?.parse().ok()?;
    Some(flags & PF_KTHREAD != 0)
}

/// The line of `/proc/PID/status` that [`status_uid`] reads: what a walk
/// keeps of the file.
pub fn status_uid_line(text: &str) -> Option<&str> {
    text.lines().find(|l| l.starts_with("Uid:"))
}

/// The effective uid in the text of `/proc/PID/status`: the second number
/// of its `Uid:` line (real, effective, saved, filesystem), the owner `ps`
/// shows.
pub fn status_uid(text: &str) -> Option<u32> {
    status_uid_line(text)?
        .strip_prefix("Uid:")?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The cgroup of a process in the text of `/proc/PID/cgroup`: the path in
/// the hierarchy of the memory controller, the one whose limits dma-heap
/// memory escapes. That is the cgroup2 path (`0::PATH`), unless a cgroup v1
/// hierarchy has the memory controller (a hybrid system): then its path.
/// Without either, the first hierarchy's.
pub fn cgroup_path(text: &str) -> Option<String> {
    let (mut v2, mut first) = (None, None);
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if controllers.split(',').any(|c| c == "memory") {
            return Some(path.to_string());
        }
        if id == "0" && controllers.is_empty() {
            v2.get_or_insert(path);
        }
        first.get_or_insert(path);
    }
    v2.or(first).map(str::to_string)
}

/// uid -> user name, from the text of `/etc/passwd` (`name:x:uid:...`); the
/// first name of a uid stands.
pub fn passwd_names(text: &str) -> BTreeMap<u32, String> {
    let mut names = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 3 || f[0].is_empty() || f[0].starts_with('#') {
            continue;
        }
        if let Ok(uid) = f[2].parse::<u32>() {
            names.entry(uid).or_insert_with(|| f[0].to_string());
        }
    }
    names
}

/// What is known about one buffer before filtering.
#[derive(Debug, Clone)]
pub(super) struct Facts {
    pub(super) size: u64,
    pub(super) size_from: SizeFrom,
    pub(super) exporter: Option<String>,
    pub(super) name: Option<String>,
    pub(super) importers: Option<Vec<String>>,
}

/// The name in a `/dmabuf:NAME` link or maps path; `None` when empty.
pub(super) fn link_name(link: &str) -> Option<String> {
    link.strip_prefix(LINK_PREFIX)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
}

/// The largest size a file can have, `loff_t`'s largest: a dma-buf
/// (whose size is its file's `st_size`) is never larger.
pub const MAX_SIZE: u64 = i64::MAX as u64;

/// Why `size` cannot be a buffer's; `None` when it can.
pub(super) fn too_large(size: u64) -> Option<String> {
    (size > MAX_SIZE)
        .then(|| format!("size {size} is larger than any file can be ({MAX_SIZE} bytes)"))
}

/// A parse error of the text of `what` (`fdinfo`, `bufinfo (before the
/// walk)`), named once: `what line N: reason`.
pub(super) fn parse_warning(what: &str, e: &ParseError) -> String {
    match e.line {
        Some(n) => format!("{what} line {n}: {}", e.reason),
        None => format!("{what}: {}", e.reason),
    }
}

/// The buffer behind one dma-buf fd, its fdinfo parsed (`info`): its inode
/// number and what is known.
fn fd_facts(
    pid: i32,
    fd: &RawFd,
    info: Option<Result<fdinfo::FdInfo, ParseError>>,
    warnings: &mut Vec<String>,
) -> Option<(u64, Facts)> {
    let path = || format!("/proc/{pid}/fd/{}", fd.fd);
    let info = match info {
        Some(Ok(info)) => Some(info),
        Some(Err(e)) if fd.stat.is_none() => {
            // Nothing else names the buffer: say why once, not also that
            // no inode number was found.
            warnings.push(format!(
                "{}: {}; the fd is not counted",
                path(),
                parse_warning("fdinfo", &e)
            ));
            return None;
        }
        Some(Err(e)) => {
            warnings.push(format!("{}: {}", path(), parse_warning("fdinfo", &e)));
            None
        }
        None => None,
    };
    let ino = match (&info, fd.stat) {
        (Some(i), _) if i.ino != 0 => i.ino,
        (_, Some(FileStat { ino, .. })) => ino,
        _ => {
            warnings.push(format!("{}: no inode number from fdinfo or stat()", path()));
            return None;
        }
    };
    let d = info.and_then(|i| i.dmabuf);
    let (size, size_from) = match (&d, fd.stat) {
        (Some(d), _) => (d.size, SizeFrom::Fdinfo),
        (None, Some(st)) => (st.size, SizeFrom::Stat),
        (None, None) => {
            warnings.push(format!("{}: no size from fdinfo or stat()", path()));
            return None;
        }
    };
    if let Some(why) = too_large(size) {
        warnings.push(format!("{}: {why}; the fd is not counted", path()));
        return None;
    }
    let (exporter, name) = match d {
        Some(d) => (Some(d.exp_name), d.name.or_else(|| link_name(&fd.link))),
        None => (None, link_name(&fd.link)),
    };
    Some((
        ino,
        Facts {
            size,
            size_from,
            exporter,
            name,
            importers: None,
        },
    ))
}

/// What the model takes from one process's text, parsed: the walk works it
/// out in its threads, as it reads each process ([`crate::scan`]), so that
/// the model, in one thread, only groups; [`digest`] does it for a capture.
#[derive(Debug, Clone, Default)]
pub struct Digest {
    /// Its dma-buf fds that name a buffer: (fd, ino, what is known).
    pub(super) fds: Vec<(i32, u64, Facts)>,
    /// Its fds on anon_inodefs (before 5.3).
    pub(super) legacy: usize,
    pub(super) mappings: Vec<maps::Mapping>,
    /// Text that could not be parsed, fds that could not be identified.
    pub(super) warnings: Vec<String>,
    pub(super) uid: Option<u32>,
    pub(super) cgroup: Option<String>,
}

impl Digest {
    /// Adds dma-buf fd `fd` of process `pid` (in fd order), its fdinfo
    /// parsed (`info`).
    pub fn add_fd(
        &mut self,
        pid: i32,
        fd: &RawFd,
        info: Option<Result<fdinfo::FdInfo, ParseError>>,
    ) {
        if link_kind(fd.link.as_bytes()) == LinkKind::Legacy {
            self.legacy += 1;
        } else if let Some((ino, facts)) = fd_facts(pid, fd, info, &mut self.warnings) {
            self.fds.push((fd.fd, ino, facts));
        }
    }

    /// Sets the process's mappings: `parsed`, when the walk parsed them,
    /// else those of `maps`, the text it kept.
    pub fn set_mappings(&mut self, pid: i32, maps: &str, parsed: Option<Vec<maps::Mapping>>) {
        self.mappings = match parsed {
            Some(m) => m,
            None => match dmabuf_mappings(maps) {
                Ok(m) => m,
                Err(e) => {
                    self.warnings.push(format!("/proc/{pid}/maps: {e}"));
                    Vec::new()
                }
            },
        };
    }

    /// Sets who the process is, from its status' `Uid:` line and cgroup.
    pub fn set_owner(&mut self, status: Option<&str>, cgroup: Option<&str>) {
        self.uid = status.and_then(status_uid);
        self.cgroup = cgroup.and_then(cgroup_path);
    }

    /// The inode numbers of the buffers its fds are.
    pub fn fd_inos(&self) -> impl Iterator<Item = u64> + '_ {
        self.fds.iter().map(|(_, ino, _)| *ino)
    }
}

/// The [`Digest`] of one process of a walk.
pub fn digest(p: &RawProcess) -> Digest {
    let mut d = Digest::default();
    for fd in &p.fds {
        d.add_fd(
            p.pid,
            fd,
            fd.fdinfo.as_deref().map(fdinfo::parse_ino_optional),
        );
    }
    d.set_mappings(p.pid, &p.maps, None);
    d.set_owner(p.status.as_deref(), p.cgroup.as_deref());
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_walks::{fd, holder, raw, MAPS};
    use crate::model::{Analysis, Filter};

    #[test]
    fn a_walk_keeps_the_lines_of_dmabufs() {
        let (m, kept) = keep_maps(MAPS);
        assert_eq!(
            kept,
            "7f0000000000-7f0000002000 rw-s 00000000 00:0b 41    /dmabuf:frame\n\
             7f0000003000-7f0000004000 rw-s 00001000 00:0b 42    /dmabuf:\n"
        );
        assert_eq!(m.iter().map(|m| m.inode).collect::<Vec<_>>(), [41, 42]);
        let (m, kept) = keep_maps("55d0c0000000-55d0c0001000 r--p 00000000 fe:01 1 /a\n");
        assert!(m.is_empty() && kept.is_empty());
    }

    #[test]
    fn kept_lines_give_the_report_of_the_whole_file() {
        let whole = Analysis::new(&raw(MAPS)).report(&Filter::default());
        let kept = Analysis::new(&raw(&keep_maps(MAPS).1)).report(&Filter::default());
        assert_eq!(whole, kept);
        // The fd's buffer and the mapped-only one, sized by its mapping.
        assert_eq!(whole.buffers.len(), 2);
        assert_eq!(whole.totals.size, 8192 + 0x2000);
        assert!(whole.scan.warnings.is_empty(), "{:?}", whole.scan.warnings);
    }

    #[test]
    fn a_bad_line_is_reported_with_its_line_number() {
        let bad = MAPS.replace("rw-s 00001000 00:0b 42", "rw-s 0000zz00 00:0b 42");
        let (m, kept) = keep_maps(&bad);
        assert!(m.is_empty());
        assert_eq!(kept, bad);
        let report = Analysis::new(&raw(&kept)).report(&Filter::default());
        assert_eq!(
            report.scan.warnings,
            ["/proc/10/maps: maps line 4: offset `0000zz00` is not a hexadecimal number"]
        );
    }

    #[test]
    fn an_fdinfo_that_does_not_parse_is_named_once() {
        let mut r = raw("");
        let fdinfo = r.processes[0].fds[0].fdinfo.as_mut().unwrap();
        *fdinfo = fdinfo.replace("size:\t8192", "size:\tabc");
        let report = Analysis::new(&r).report(&Filter::default());
        assert!(report.buffers.is_empty());
        assert_eq!(
            report.scan.warnings,
            [
                "/proc/10/fd/4: fdinfo line 5: size `abc` is not a decimal number; the fd is not \
              counted"
            ]
        );
    }

    #[test]
    fn sizes_no_file_can_have_are_not_counted() {
        // Process 10 holds buffer 41 (8K); process 11 one of an impossible
        // size, by fd, and 12 one by a mapping no file could hold.
        for huge in [u64::MAX, 1 << 63] {
            let mut r = raw("");
            r.processes
                .push(holder(11, "x", vec![fd(3, 50, huge, "system")]));
            r.processes.push(RawProcess {
                maps: format!(
                    "7f0000000000-7f0000001000 rw-s {:x} 00:0b 51 /dmabuf:\n",
                    u64::MAX - 0x800
                ),
                ..holder(12, "y", vec![])
            });
            r.map_files.push(crate::raw::MapFileStat {
                pid: 12,
                range: "7f0000000000-7f0000001000".into(),
                stat: FileStat {
                    ino: 51,
                    size: huge,
                },
            });
            let report = Analysis::new(&r).report(&Filter::default());
            assert_eq!(
                report.scan.warnings,
                [format!(
                    "/proc/11/fd/3: size {huge} is larger than any file can be \
                     (9223372036854775807 bytes); the fd is not counted"
                )]
            );
            // 51's size is a lower bound that saturates; the sums with it too.
            let b51 = report.buffers.iter().find(|b| b.ino == 51).unwrap();
            assert_eq!((b51.size, b51.size_from), (u64::MAX, SizeFrom::Mappings));
            assert_eq!(
                (report.totals.buffers, report.totals.size, report.totals.rss),
                (2, u64::MAX, u64::MAX)
            );
            assert_eq!(report.processes[0].rss, 8192);
        }
    }

    #[test]
    fn a_bufinfo_that_does_not_parse_is_named_once() {
        let mut r = raw("");
        r.bufinfo = Some(
            "\nDma-buf Objects:\nsize    \tflags   \tmode    \tcount   \texp_name\tino     \tname\n".into(),
        );
        let report = Analysis::new(&r).report(&Filter::default());
        assert_eq!(
            report.scan.warnings,
            ["bufinfo: no `Total N objects, M bytes` line"]
        );
    }

    #[test]
    fn status_cgroup_and_passwd_text() {
        // A real /proc/self/status of `setpriv --ruid 65534 --euid 1000`.
        let status = include_str!("../../testdata/status.txt");
        assert_eq!(
            status_uid_line(status),
            Some("Uid:\t65534\t1000\t1000\t1000")
        );
        assert_eq!(status_uid(status), Some(1000));
        assert_eq!(status_uid(status_uid_line(status).unwrap()), Some(1000));
        assert_eq!(status_uid("Name:\tx\n"), None);
        assert_eq!(status_uid("Uid:\t1\n"), None);
        // A real /proc/self/cgroup of a hybrid system: the memory
        // controller's v1 hierarchy, not the unified one's `/`.
        let hybrid = include_str!("../../testdata/cgroup-v1-hybrid.txt");
        assert!(hybrid.contains("0::/\n"));
        assert_eq!(
            cgroup_path(hybrid).as_deref(),
            Some("/process_api/f80e36b7292f31a2c8768b9a29c3e3ae")
        );
        assert_eq!(cgroup_path("0::/a/b c\n").as_deref(), Some("/a/b c"));
        assert_eq!(
            cgroup_path("3:cpu,cpuacct:/x\n2:pids:/y\n").as_deref(),
            Some("/x")
        );
        assert_eq!(cgroup_path(""), None);
        let passwd =
            "root:x:0:0:root:/root:/bin/bash\n# a comment\nnobody:x:65534:65534::/:/sbin/nologin\n\
                      toor:x:0:0::/:/bin/sh\nbroken\n";
        assert_eq!(
            passwd_names(passwd),
            [(0, "root".to_string()), (65534, "nobody".to_string())].into()
        );
    }
}
