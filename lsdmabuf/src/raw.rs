// SPDX-License-Identifier: GPL-2.0
//! What one walk of /proc read, verbatim, and its text capture.
//!
//! [`crate::scan`] fills a [`Raw`] with the text of the files it read (of a
//! maps file, the lines of dma-bufs) and the errors it met, and decides
//! nothing else; [`crate::model`] makes sense of it. A capture
//! ([`Raw::to_capture`], [`Raw::from_capture`]) is that same [`Raw`] as
//! text, so that what a real kernel printed can be kept in `testdata/` and
//! run through the model on any host.
//!
//! The capture format is line based. A line starting with `== ` opens a
//! section and says what it is; the lines up to the next `== ` line are the
//! section's text, exactly as read (no procfs text starts with `== `); tabs
//! are shown as `\t` below:
//!
//! ```text
//! lsdmabuf capture 3
//! == meta
//! euid 0
//! time 1764590400
//! kernel 6.12.117
//! reads users cgroups unheld importers
//! dmabuf_dev 0:11
//! == process 104 lsdmabuf-vmtest
//! == status
//! Uid:\t0\t0\t0\t0
//! == cgroup
//! 0::/a
//! == fd 3 /dmabuf:frame-0
//! == fdinfo 3
//! pos:\t0
//! ...
//! == stat 3 ino 5 size 4096
//! == maps
//! 7f3a1c000000-7f3a1c001000 rw-s 00000000 00:08 5      /dmabuf:frame-0
//! == failure 1 /proc/1/fd 13
//! == counts read 40 exited 0 kernel_threads 0
//! == bufinfo-before
//! ...
//! == bufinfo
//! ...
//! == map_files 104 7f3a1c000000-7f3a1c001000 ino 5 size 4096
//! == user 0 root
//! == end processes 1 sections 16 lines 23
//! ```
//!
//! The last line, `end`, counts the processes, the section lines before it
//! and all lines before it: a capture cut short, or with lines lost, is an
//! error, never a smaller walk. Captures of format 2 (without `end`) and
//! 1 (nor `meta`, `status`, `cgroup`, `bufinfo-before` or `user` sections)
//! are read as well; they must have their `counts` section, which they
//! wrote after every process. A capture of a later format is refused as
//! such. [`MAX_CAPTURE`] bounds what `--load` reads.

use std::collections::BTreeMap;
use std::fmt::{self, Write};

use nix::errno::Errno;

/// Everything one walk read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Raw {
    /// The processes that hold a dma-buf, by fd or by mapping, in pid order.
    pub processes: Vec<RawProcess>,
    /// Processes whose fd directory was read, those above included.
    pub read: usize,
    /// Processes that exited while the walk read them.
    pub exited: usize,
    /// Kernel threads whose fd directory could not be read: they hold no
    /// fds and map nothing, so they are not counted as unreadable.
    pub kernel_threads: usize,
    /// What could not be read, and why.
    pub failures: Vec<Failure>,
    /// debugfs `dma_buf/bufinfo`, read when a buffer was seen only through
    /// mappings, for its size and exporter.
    pub bufinfo: Option<String>,
    /// stat() of `/proc/PID/map_files/RANGE` for buffers seen only through
    /// mappings that bufinfo did not describe.
    pub map_files: Vec<MapFileStat>,
    /// debugfs bufinfo read before the walk, to tell buffers no process
    /// holds (those in both readings) from buffers made or closed during
    /// the walk; read when [`Reads::unheld`] asks.
    pub bufinfo_before: Option<String>,
    /// The names `/etc/passwd` gives the holders' uids.
    pub users: BTreeMap<u32, String>,
    /// Who walked, when, on what.
    pub meta: Meta,
}

/// What a walk read beyond what every walk reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reads {
    /// The `Uid:` line of each holder's `/proc/PID/status`, and
    /// `/etc/passwd`.
    pub users: bool,
    /// Each holder's `/proc/PID/cgroup`.
    pub cgroups: bool,
    /// bufinfo before and after the walk: the buffers no process holds.
    pub unheld: bool,
    /// bufinfo after the walk: the devices attached to each buffer.
    pub importers: bool,
}

impl Reads {
    /// Everything: what `--save` reads, so that a capture shows every view.
    pub const ALL: Reads = Reads {
        users: true,
        cgroups: true,
        unheld: true,
        importers: true,
    };
}

/// The circumstances of a walk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta {
    /// The effective uid of the walker: root sees every process.
    pub euid: Option<u32>,
    /// When, in seconds since the epoch.
    pub time: Option<u64>,
    /// `uname -r`.
    pub kernel: Option<String>,
    /// What the walk read beyond the fds, fdinfo, maps and comm.
    pub reads: Reads,
    /// The device (major, minor) of the dmabuf filesystem, from stat() of
    /// an fd that statfs() found on it: a mapping is of a dma-buf when
    /// maps gives it this device. `None` when the walk met no dma-buf fd
    /// (and in captures before format 3): then a mapping of a file named
    /// `/dmabuf:...` on a device of major 0 is taken for one.
    pub dmabuf_dev: Option<(u32, u32)>,
}

/// One process that holds at least one dma-buf.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawProcess {
    pub pid: i32,
    /// `/proc/PID/comm` without its newline; `?` when it could not be read.
    pub comm: String,
    /// Its dma-buf fds (those whose link names a dma-buf), in fd order.
    pub fds: Vec<RawFd>,
    /// The lines of `/proc/PID/maps` that map a dma-buf (the whole file when
    /// one of those could not be parsed); empty when it could not be read.
    pub maps: String,
    /// The `Uid:` line of `/proc/PID/status`, when read.
    pub status: Option<String>,
    /// `/proc/PID/cgroup`, when read.
    pub cgroup: Option<String>,
}

/// One fd whose `/proc/PID/fd/N` link names a dma-buf.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawFd {
    pub fd: i32,
    /// `readlink /proc/PID/fd/N`: `/dmabuf:NAME`, or `anon_inode:dmabuf` on
    /// kernels before 5.3.
    pub link: String,
    /// `/proc/PID/fdinfo/N`, when it could be read.
    pub fdinfo: Option<String>,
    /// stat() of `/proc/PID/fd/N`, taken when fdinfo did not give the inode
    /// number (kernels before 5.14).
    pub stat: Option<FileStat>,
}

/// What stat() says about a dma-buf's file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileStat {
    pub ino: u64,
    pub size: u64,
}

/// stat() of one mapping's `/proc/PID/map_files/START-END`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MapFileStat {
    pub pid: i32,
    /// `START-END` in hex, as the entry is named.
    pub range: String,
    pub stat: FileStat,
}

/// A file that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The process whose holdings it hides; `None` when it hides none and
    /// only a size is missing (bufinfo, map_files).
    pub pid: Option<i32>,
    pub path: String,
    pub errno: Errno,
}

/// Why a capture could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureError {
    /// 1-based line number.
    pub line: usize,
    pub reason: String,
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "capture line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for CaptureError {}

/// The format [`Raw::to_capture`] writes: 3 has the `end` line.
pub const FORMAT: u32 = 3;
/// What the first line says before the format number.
const MAGIC: &str = "lsdmabuf capture ";
const SECTION: &str = "== ";

/// The largest capture `--load` reads: 64 MiB, a thousand times a capture
/// of a thousand processes holding a buffer each. A larger file is not
/// one that `--save` wrote, and would take several times its size in
/// memory to load.
pub const MAX_CAPTURE: u64 = 64 << 20;

/// The name `--load` gives the capture at `path`: `-` is stdin.
pub fn capture_name(path: &std::path::Path) -> String {
    if path.as_os_str() == "-" {
        "stdin".into()
    } else {
        path.display().to_string()
    }
}

/// Reads the capture at `path` with [`read_capture_text`]; `-` reads
/// `stdin` instead, as `--load -` does.
pub fn read_capture(
    path: &std::path::Path,
    stdin: &mut dyn std::io::Read,
    limit: u64,
) -> std::io::Result<String> {
    if path.as_os_str() == "-" {
        read_capture_text(stdin, limit)
    } else {
        read_capture_text(&mut std::fs::File::open(path)?, limit)
    }
}

/// Reads a capture's text from `r`, refusing more than `limit` bytes and
/// text that is not UTF-8 (procfs text is kept as UTF-8, invalid bytes
/// replaced, so every capture is).
pub fn read_capture_text(r: &mut dyn std::io::Read, limit: u64) -> std::io::Result<String> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    r.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "larger than {} MiB, the most --load reads: not a capture that lsdmabuf --save wrote",
                limit >> 20
            ),
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "not text (byte {} is not UTF-8): not a capture that lsdmabuf --save wrote",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

/// Appends `text` as a section body: as read, ending with a newline.
fn body(out: &mut String, text: &str) {
    out.push_str(text);
    if !text.is_empty() && !text.ends_with('\n') {
        out.push('\n');
    }
}

impl Raw {
    /// This walk as capture text.
    pub fn to_capture(&self) -> String {
        let mut out = format!("{MAGIC}{FORMAT}\n{SECTION}meta\n");
        let m = &self.meta;
        if let Some(euid) = m.euid {
            let _ = writeln!(out, "euid {euid}");
        }
        if let Some(time) = m.time {
            let _ = writeln!(out, "time {time}");
        }
        if let Some(kernel) = &m.kernel {
            let _ = writeln!(out, "kernel {}", one_line(kernel));
        }
        let reads: String = [
            (m.reads.users, "users"),
            (m.reads.cgroups, "cgroups"),
            (m.reads.unheld, "unheld"),
            (m.reads.importers, "importers"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| format!(" {name}"))
        .collect();
        let _ = writeln!(out, "reads{reads}");
        if let Some((major, minor)) = m.dmabuf_dev {
            let _ = writeln!(out, "dmabuf_dev {major}:{minor}");
        }
        for p in &self.processes {
            // comm never holds a newline: the kernel cuts it at 15 bytes and
            // prints control characters as they are, so escape them.
            let _ = writeln!(out, "{SECTION}process {} {}", p.pid, one_line(&p.comm));
            if let Some(text) = &p.status {
                let _ = writeln!(out, "{SECTION}status");
                body(&mut out, text);
            }
            if let Some(text) = &p.cgroup {
                let _ = writeln!(out, "{SECTION}cgroup");
                body(&mut out, text);
            }
            for fd in &p.fds {
                let _ = writeln!(out, "{SECTION}fd {} {}", fd.fd, one_line(&fd.link));
                if let Some(text) = &fd.fdinfo {
                    let _ = writeln!(out, "{SECTION}fdinfo {}", fd.fd);
                    body(&mut out, text);
                }
                if let Some(st) = fd.stat {
                    let _ = writeln!(
                        out,
                        "{SECTION}stat {} ino {} size {}",
                        fd.fd, st.ino, st.size
                    );
                }
            }
            let _ = writeln!(out, "{SECTION}maps");
            body(&mut out, &p.maps);
        }
        for f in &self.failures {
            let pid = f.pid.map_or("-".to_string(), |p| p.to_string());
            let _ = writeln!(out, "{SECTION}failure {pid} {} {}", f.path, f.errno as i32);
        }
        let _ = writeln!(
            out,
            "{SECTION}counts read {} exited {} kernel_threads {}",
            self.read, self.exited, self.kernel_threads
        );
        if let Some(text) = &self.bufinfo_before {
            let _ = writeln!(out, "{SECTION}bufinfo-before");
            body(&mut out, text);
        }
        if let Some(text) = &self.bufinfo {
            let _ = writeln!(out, "{SECTION}bufinfo");
            body(&mut out, text);
        }
        for m in &self.map_files {
            let _ = writeln!(
                out,
                "{SECTION}map_files {} {} ino {} size {}",
                m.pid, m.range, m.stat.ino, m.stat.size
            );
        }
        for (uid, name) in &self.users {
            let _ = writeln!(out, "{SECTION}user {uid} {}", one_line(name));
        }
        let lines = out.lines().count();
        let sections = out.lines().filter(|l| l.starts_with(SECTION)).count();
        let _ = writeln!(
            out,
            "{SECTION}end processes {} sections {sections} lines {lines}",
            self.processes.len()
        );
        out
    }

    /// Reads back what [`Raw::to_capture`] wrote, or an earlier format.
    pub fn from_capture(text: &str) -> Result<Raw, CaptureError> {
        Raw::from_capture_format(text).map(|(raw, _)| raw)
    }

    /// [`Raw::from_capture`], and the capture's format: before 3, a capture
    /// cut short after its `counts` section cannot be told from a whole one.
    pub fn from_capture_format(text: &str) -> Result<(Raw, u32), CaptureError> {
        let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l)).peekable();
        let first = lines.next().map_or("", |(_, l)| l);
        let format: u32 = match first.strip_prefix(MAGIC).map(str::parse) {
            Some(Ok(f @ 1..=FORMAT)) => f,
            Some(Ok(f)) if f > FORMAT => {
                return Err(err(
                    1,
                    format!(
                        "written by a newer lsdmabuf: capture format {f}, and this lsdmabuf \
                         reads formats 1 to {FORMAT}; load it with a newer lsdmabuf"
                    ),
                ))
            }
            _ => {
                return Err(err(
                    1,
                    format!(
                        "not a capture that lsdmabuf --save wrote: the first line is not \
                         `{MAGIC}{FORMAT}` (nor an earlier format)"
                    ),
                ))
            }
        };
        let mut raw = Raw::default();
        let (mut sections, mut counts, mut end) = (0usize, false, false);
        while let Some((n, line)) = lines.next() {
            if end {
                return Err(err(n, format!("`{line}` is after the `end` line")));
            }
            let Some(head) = line.strip_prefix(SECTION) else {
                return Err(err(n, format!("`{line}` is outside any section")));
            };
            // The section's text: every line up to the next section.
            let mut text = String::new();
            while let Some((_, l)) = lines.next_if(|(_, l)| !l.starts_with(SECTION)) {
                text.push_str(l);
                text.push('\n');
            }
            let (kind, rest) = head.split_once(' ').unwrap_or((head, ""));
            if kind != "end" {
                sections += 1;
            }
            let no_text = |text: &str| {
                if text.is_empty() {
                    Ok(())
                } else {
                    Err(err(n, format!("`{head}` takes no text, it has {text:?}")))
                }
            };
            match kind {
                "process" => {
                    no_text(&text)?;
                    let (pid, comm) = rest.split_once(' ').unwrap_or((rest, ""));
                    raw.processes.push(RawProcess {
                        pid: num(n, "pid", pid)?,
                        comm: comm.to_string(),
                        ..RawProcess::default()
                    });
                }
                "fd" => {
                    no_text(&text)?;
                    let (fd, link) = rest.split_once(' ').unwrap_or((rest, ""));
                    let fd = num(n, "fd", fd)?;
                    process(&mut raw, n)?.fds.push(RawFd {
                        fd,
                        link: link.to_string(),
                        ..RawFd::default()
                    });
                }
                "fdinfo" => {
                    last_fd(&mut raw, n, rest)?.fdinfo = Some(text);
                }
                "stat" => {
                    no_text(&text)?;
                    let f: Vec<&str> = rest.split(' ').collect();
                    let [fd, "ino", ino, "size", size] = f[..] else {
                        return Err(err(n, format!("`{head}` is not `stat FD ino N size N`")));
                    };
                    let st = FileStat {
                        ino: num(n, "ino", ino)?,
                        size: num(n, "size", size)?,
                    };
                    last_fd(&mut raw, n, fd)?.stat = Some(st);
                }
                "maps" => process(&mut raw, n)?.maps = text,
                "failure" => {
                    no_text(&text)?;
                    let f: Vec<&str> = rest.split(' ').collect();
                    let [pid, path, errno] = f[..] else {
                        return Err(err(n, format!("`{head}` is not `failure PID PATH ERRNO`")));
                    };
                    raw.failures.push(Failure {
                        pid: if pid == "-" {
                            None
                        } else {
                            Some(num(n, "pid", pid)?)
                        },
                        path: path.to_string(),
                        errno: Errno::from_raw(num(n, "errno", errno)?),
                    });
                }
                "counts" => {
                    no_text(&text)?;
                    let f: Vec<&str> = rest.split(' ').collect();
                    let ["read", read, "exited", exited, "kernel_threads", kthreads] = f[..] else {
                        return Err(err(
                            n,
                            format!("`{head}` is not `counts read N exited N kernel_threads N`"),
                        ));
                    };
                    counts = true;
                    raw.read = num(n, "read", read)?;
                    raw.exited = num(n, "exited", exited)?;
                    raw.kernel_threads = num(n, "kernel_threads", kthreads)?;
                }
                "bufinfo" => raw.bufinfo = Some(text),
                "bufinfo-before" => raw.bufinfo_before = Some(text),
                "status" => process(&mut raw, n)?.status = Some(text),
                "cgroup" => process(&mut raw, n)?.cgroup = Some(text),
                "meta" => raw.meta = meta(n, &text)?,
                "user" => {
                    no_text(&text)?;
                    let (uid, name) = rest.split_once(' ').unwrap_or((rest, ""));
                    raw.users.insert(num(n, "uid", uid)?, name.to_string());
                }
                "map_files" => {
                    no_text(&text)?;
                    let f: Vec<&str> = rest.split(' ').collect();
                    let [pid, range, "ino", ino, "size", size] = f[..] else {
                        return Err(err(
                            n,
                            format!("`{head}` is not `map_files PID RANGE ino N size N`"),
                        ));
                    };
                    raw.map_files.push(MapFileStat {
                        pid: num(n, "pid", pid)?,
                        range: range.to_string(),
                        stat: FileStat {
                            ino: num(n, "ino", ino)?,
                            size: num(n, "size", size)?,
                        },
                    });
                }
                "end" if format >= 3 => {
                    no_text(&text)?;
                    let f: Vec<&str> = rest.split(' ').collect();
                    let ["processes", processes, "sections", s, "lines", l] = f[..] else {
                        return Err(err(
                            n,
                            format!("`{head}` is not `end processes N sections N lines N`"),
                        ));
                    };
                    let want: [usize; 3] = [
                        num(n, "processes", processes)?,
                        num(n, "sections", s)?,
                        num(n, "lines", l)?,
                    ];
                    let got = [raw.processes.len(), sections, n - 1];
                    if got != want {
                        return Err(err(
                            n,
                            format!(
                                "the capture is not whole: its end line counts {} processes, {} \
                                 sections and {} lines before it, and there are {}, {} and {}",
                                want[0], want[1], want[2], got[0], got[1], got[2]
                            ),
                        ));
                    }
                    end = true;
                }
                _ => return Err(err(n, format!("unknown section `{head}`"))),
            }
        }
        let last = text.lines().count();
        if format >= 3 && !end {
            return Err(err(
                last,
                format!("the capture is cut short: it ends at line {last} without its `end` line"),
            ));
        }
        if !counts {
            return Err(err(
                last,
                format!(
                    "the capture is cut short: it ends at line {last} without its `counts` section"
                ),
            ));
        }
        Ok((raw, format))
    }
}

/// The `meta` section's `key value` lines, from line `n` on.
fn meta(n: usize, text: &str) -> Result<Meta, CaptureError> {
    let mut m = Meta::default();
    for (i, line) in text.lines().enumerate() {
        let line_n = n + 1 + i;
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        match key {
            "euid" => m.euid = Some(num(line_n, "euid", value)?),
            "time" => m.time = Some(num(line_n, "time", value)?),
            "kernel" => m.kernel = Some(value.to_string()),
            "dmabuf_dev" => {
                let (major, minor) = value.split_once(':').unwrap_or((value, ""));
                m.dmabuf_dev = Some((num(line_n, "major", major)?, num(line_n, "minor", minor)?));
            }
            "reads" => {
                for word in value.split_whitespace() {
                    match word {
                        "users" => m.reads.users = true,
                        "cgroups" => m.reads.cgroups = true,
                        "unheld" => m.reads.unheld = true,
                        "importers" => m.reads.importers = true,
                        _ => return Err(err(line_n, format!("unknown read `{word}`"))),
                    }
                }
            }
            // A newer lsdmabuf may say more about its walk.
            _ => {}
        }
    }
    Ok(m)
}

/// `s` on one line: control characters as `\xNN`.
pub fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            let _ = write!(out, "\\x{:02x}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

fn err(line: usize, reason: String) -> CaptureError {
    CaptureError { line, reason }
}

fn num<T: std::str::FromStr>(line: usize, what: &str, s: &str) -> Result<T, CaptureError> {
    s.parse()
        .map_err(|_| err(line, format!("{what} `{s}` is not a number")))
}

fn process(raw: &mut Raw, line: usize) -> Result<&mut RawProcess, CaptureError> {
    raw.processes
        .last_mut()
        .ok_or_else(|| err(line, "no `process` section before this one".into()))
}

fn last_fd<'a>(raw: &'a mut Raw, line: usize, fd: &str) -> Result<&'a mut RawFd, CaptureError> {
    let fd: i32 = num(line, "fd", fd)?;
    let last = process(raw, line)?.fds.last_mut();
    match last {
        Some(last) if last.fd == fd => Ok(last),
        _ => Err(err(
            line,
            format!("no `fd {fd}` section just before this one"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Raw {
        Raw {
            processes: vec![RawProcess {
                pid: 104,
                comm: "a b".into(),
                fds: vec![
                    RawFd {
                        fd: 3,
                        link: "/dmabuf:x: y".into(),
                        fdinfo: Some("pos:\t0\nflags:\t02\nmnt_id:\t9\nino:\t5\n".into()),
                        stat: None,
                    },
                    RawFd {
                        fd: 7,
                        link: "/dmabuf:".into(),
                        fdinfo: None,
                        stat: Some(FileStat { ino: 6, size: 8192 }),
                    },
                ],
                maps: "7f00-7f01 rw-s 00000000 00:08 5     /dmabuf:x: y\n".into(),
                status: Some("Uid:\t1000\t1000\t1000\t1000\n".into()),
                cgroup: Some("0::/user.slice/a b\n".into()),
            }],
            read: 12,
            exited: 1,
            kernel_threads: 3,
            failures: vec![
                Failure {
                    pid: Some(1),
                    path: "/proc/1/fd".into(),
                    errno: Errno::EACCES,
                },
                Failure {
                    pid: None,
                    path: "/sys/kernel/debug/dma_buf/bufinfo".into(),
                    errno: Errno::ENOENT,
                },
            ],
            bufinfo: Some("\nDma-buf Objects:\n".into()),
            map_files: vec![MapFileStat {
                pid: 104,
                range: "7f00-7f01".into(),
                stat: FileStat { ino: 5, size: 4096 },
            }],
            bufinfo_before: Some("\nDma-buf Objects:\nsize\n".into()),
            users: [(1000, "alice".to_string())].into(),
            meta: Meta {
                euid: Some(0),
                time: Some(1764590400),
                kernel: Some("6.12.117".into()),
                dmabuf_dev: Some((0, 11)),
                reads: Reads {
                    users: true,
                    cgroups: false,
                    unheld: true,
                    importers: false,
                },
            },
        }
    }

    #[test]
    fn round_trip() {
        let raw = sample();
        assert_eq!(Raw::from_capture(&raw.to_capture()).unwrap(), raw);
        assert_eq!(
            Raw::from_capture(&Raw::default().to_capture()).unwrap(),
            Raw::default()
        );
    }

    #[test]
    fn rejects_bad_captures() {
        assert_eq!(Raw::from_capture("").unwrap_err().line, 1);
        let e = Raw::from_capture(&format!("{MAGIC}{FORMAT}\n== fd 3 /dmabuf:\n")).unwrap_err();
        assert!(e.reason.contains("process"), "{e}");
        let e = Raw::from_capture(&format!(
            "{MAGIC}{FORMAT}\n== process 1 x\n== fdinfo 3\npos:\t0\n"
        ))
        .unwrap_err();
        assert_eq!(e.line, 3);
        let e = Raw::from_capture(&format!("{MAGIC}{FORMAT}\nstray\n")).unwrap_err();
        assert!(e.reason.contains("outside"), "{e}");
        let e = Raw::from_capture(&format!(
            "{MAGIC}{FORMAT}\n== counts read x exited 0 kernel_threads 0\n"
        ))
        .unwrap_err();
        assert!(e.reason.contains("`x`"), "{e}");
        assert!(Raw::from_capture(&format!("{MAGIC}{FORMAT}\n== what\n")).is_err());
    }

    #[test]
    fn reads_version_1() {
        let v1 = "lsdmabuf capture 1\n== process 7 app\n== fd 3 /dmabuf:\n== maps\n\
                  == counts read 2 exited 0 kernel_threads 1\n";
        let raw = Raw::from_capture(v1).unwrap();
        assert_eq!(raw.processes[0].fds[0].fd, 3);
        assert_eq!(raw.processes[0].status, None);
        assert_eq!(raw.meta, Meta::default());
        assert_eq!(raw.read, 2);

        let e = Raw::from_capture(&format!("{MAGIC}{FORMAT}\n== meta\nreads users sizes\n"))
            .unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.reason.contains("sizes"), "{e}");
    }

    /// lsdmabuf-vmtest's scene, saved in format 3 and, before it, in 2.
    const SCENE: &str = include_str!("../testdata/scene.capture");
    const SCENE_2: &str = include_str!("../testdata/scene-2.capture");

    #[test]
    fn a_capture_cut_short_is_an_error() {
        assert!(SCENE.starts_with("lsdmabuf capture 3\n"));
        let whole = Raw::from_capture(SCENE).unwrap();
        assert_eq!(whole.processes.len(), 6);
        let lines: Vec<&str> = SCENE.lines().collect();
        for n in 0..lines.len() {
            let cut = lines[..n].join("\n");
            assert!(
                Raw::from_capture(&cut).is_err(),
                "the first {n} lines loaded"
            );
        }
        // The first 100 lines, and the first line alone, say so.
        let e = Raw::from_capture(&lines[..100].join("\n")).unwrap_err();
        assert!(e.reason.contains("cut short"), "{e}");
        let e = Raw::from_capture("lsdmabuf capture 3\n").unwrap_err();
        assert!(e.reason.contains("cut short"), "{e}");
        // A line lost in the middle.
        let lost = SCENE.replacen("pos:\t0\n", "", 1);
        let e = Raw::from_capture(&lost).unwrap_err();
        assert!(e.reason.contains("not whole"), "{e}");
        let after = format!("{SCENE}== user 1 x\n");
        assert!(Raw::from_capture(&after)
            .unwrap_err()
            .reason
            .contains("after"));
    }

    #[test]
    fn format_2_is_read_and_a_cut_one_refused() {
        let (raw, format) = Raw::from_capture_format(SCENE_2).unwrap();
        assert_eq!(format, 2);
        // The same walk as the capture of format 3 made from it.
        assert_eq!(raw, Raw::from_capture(SCENE).unwrap());
        let first_100: String = SCENE_2
            .lines()
            .take(100)
            .map(|l| format!("{l}\n"))
            .collect();
        let e = Raw::from_capture(&first_100).unwrap_err();
        assert!(e.reason.contains("cut short"), "{e}");
        let e = Raw::from_capture("lsdmabuf capture 2\n").unwrap_err();
        assert!(
            e.reason.contains("cut short") && e.reason.ends_with("section"),
            "{e}"
        );
    }

    #[test]
    fn a_newer_format_is_named_so() {
        let e = Raw::from_capture("lsdmabuf capture 99\n== meta\n").unwrap_err();
        assert!(e.reason.contains("written by a newer lsdmabuf"), "{e}");
        assert!(!e.reason.contains("not a capture"), "{e}");
        for not in [
            "",
            "hello\n",
            "lsdmabuf capture x\n",
            "lsdmabuf capture 0\n",
        ] {
            let e = Raw::from_capture(not).unwrap_err();
            assert!(e.reason.contains("not a capture"), "{not:?}: {e}");
        }
    }

    #[test]
    fn what_load_reads_is_bounded() {
        let e = read_capture_text(&mut std::io::repeat(b'x'), 1 << 20).unwrap_err();
        assert!(e.to_string().contains("larger than 1 MiB"), "{e}");
        let e = read_capture_text(&mut &b"lsdmabuf capture 3\n\xff"[..], 1 << 20).unwrap_err();
        assert!(e.to_string().contains("not UTF-8"), "{e}");
        let text = read_capture_text(&mut SCENE.as_bytes(), SCENE.len() as u64).unwrap();
        assert_eq!(text, SCENE);
        // `--load -` reads stdin, not a file named `-`.
        let dash = std::path::Path::new("-");
        assert_eq!(capture_name(dash), "stdin");
        let text = read_capture(dash, &mut SCENE.as_bytes(), MAX_CAPTURE).unwrap();
        assert_eq!(text, SCENE);
        let e = read_capture(std::path::Path::new("/dev/zero"), &mut &b""[..], 1 << 20);
        assert!(e.unwrap_err().to_string().contains("larger than 1 MiB"));
    }

    #[test]
    fn one_line_escapes_control_characters() {
        assert_eq!(one_line("a\nb\tc d"), "a\\x0ab\\x09c d");
    }
}
