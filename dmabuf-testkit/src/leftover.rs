// SPDX-License-Identifier: GPL-2.0
//! What a run's dma-bufs may leave behind once the run closed and unmapped
//! every one of them: an fd of a dma-buf still in the process's table, a
//! mapping of one still in its maps, or an entry of debugfs bufinfo the
//! kernel never released.
//!
//! The run records what it made ([`Made`]: the `st_dev` and `st_ino` of each
//! buffer); [`find`] compares that with the kernel's own lists, as parsed
//! text, so that it is tested on the host; [`read`] reads them.
//!
//! A buffer stays in bufinfo after its last fd and mapping went when a
//! reference to its file was taken and never dropped (the file is never
//! released, `dma_buf_file_release()` never takes it off the list). An fd
//! the run never saw is one installed by an export that reported failure.

use std::collections::HashSet;

use anyhow::{Context, Result};

use dmabuf::parse::bufinfo::{BufInfo, Buffer};
use dmabuf::parse::fdinfo::{self, FdInfo};
use dmabuf::parse::maps::Mapping;
use dmabuf::sys;
use dmabuf::uapi::dma_buf::LINK_PREFIX;

/// The buffers a run made: how many, their device (one for every dma-buf)
/// and inode numbers (as many as buffers where each has its own).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Made {
    pub count: u64,
    pub dev: Option<u64>,
    pub inos: HashSet<u64>,
}

impl Made {
    /// Records one buffer, as fstat() gave it.
    pub fn add(&mut self, dev: u64, ino: u64) {
        self.count += 1;
        self.dev.get_or_insert(dev);
        self.inos.insert(ino);
    }

    /// Everything `other` recorded too.
    pub fn extend(&mut self, other: Made) {
        self.count += other.count;
        if self.dev.is_none() {
            self.dev = other.dev;
        }
        self.inos.extend(other.inos);
    }
}

/// One entry of /proc/self/fd: its number, link and parsed fdinfo (`None`
/// when it could not be read or parsed).
#[derive(Debug, Clone)]
pub struct Fd {
    pub fd: i32,
    pub link: String,
    pub info: Option<FdInfo>,
}

/// What [`find`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leftovers {
    /// Fds of dma-bufs, described.
    pub fds: Vec<String>,
    /// Mappings of dma-bufs, described.
    pub mappings: Vec<String>,
    /// Entries of bufinfo with an inode number the run made and that were
    /// not there before it.
    pub listed: Vec<Buffer>,
}

impl Leftovers {
    pub fn is_empty(&self) -> bool {
        self.fds.is_empty() && self.mappings.is_empty() && self.listed.is_empty()
    }

    /// What is left, one line per kind, or `None`.
    pub fn describe(&self, made: &Made) -> Option<String> {
        let mut lines = Vec::new();
        let few = |v: &[String]| {
            let mut s = v.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
            if v.len() > 5 {
                s += &format!(", and {} more", v.len() - 5);
            }
            s
        };
        if !self.fds.is_empty() {
            lines.push(format!(
                "{} dma-buf fds still open in /proc/self/fd: {}",
                self.fds.len(),
                few(&self.fds)
            ));
        }
        if !self.mappings.is_empty() {
            lines.push(format!(
                "{} dma-buf mappings still in /proc/self/maps: {}",
                self.mappings.len(),
                few(&self.mappings)
            ));
        }
        if !self.listed.is_empty() {
            let entries: Vec<String> = self
                .listed
                .iter()
                .map(|b| {
                    format!(
                        "ino {} ({} bytes, {}, count {}, name {})",
                        b.ino,
                        b.size,
                        b.exp_name,
                        b.count,
                        b.name.as_deref().unwrap_or("<none>")
                    )
                })
                .collect();
            lines.push(format!(
                "debugfs bufinfo still lists {} of the {} buffers made, each closed and unmapped: {}",
                self.listed.len(),
                made.count,
                few(&entries)
            ));
        }
        (!lines.is_empty()).then(|| lines.join("\n"))
    }
}

/// Whether an fd is a dma-buf's: by its link, or, whatever the kernel names
/// it, by the dma-buf lines of its fdinfo.
fn is_dmabuf(fd: &Fd) -> bool {
    fd.link.starts_with(LINK_PREFIX) || fd.info.as_ref().is_some_and(|i| i.dmabuf.is_some())
}

/// Whether a mapping is of a dma-buf: by its path, or by the device and an
/// inode number of a buffer the run made.
fn maps_dmabuf(m: &Mapping, made: &Made) -> bool {
    let dev = libc::makedev(m.major, m.minor);
    m.pathname.starts_with(LINK_PREFIX)
        || (made.dev == Some(dev) && m.inode != 0 && made.inos.contains(&m.inode))
}

/// The entries of `after` with an inode number in `made` that `before` did
/// not list: each entry of `before` accounts for one entry of `after` with
/// its number (on a kernel where every dma-buf has the same one, a buffer
/// that was there before is not taken for one of the run's).
pub fn still_listed(before: &BufInfo, after: &BufInfo, made: &Made) -> Vec<Buffer> {
    let mut earlier: Vec<u64> = before.buffers.iter().map(|b| b.ino).collect();
    let mut left = Vec::new();
    for b in after.buffers.iter().filter(|b| made.inos.contains(&b.ino)) {
        match earlier.iter().position(|&i| i == b.ino) {
            Some(k) => {
                earlier.swap_remove(k);
            }
            None => left.push(b.clone()),
        }
    }
    left
}

/// What the run's buffers left behind: every dma-buf among `fds` and
/// `maps` (the run closed and unmapped all of its own), and every entry of
/// bufinfo [`still_listed`].
pub fn find(
    fds: &[Fd],
    maps: &[Mapping],
    before: &BufInfo,
    after: &BufInfo,
    made: &Made,
) -> Leftovers {
    Leftovers {
        fds: fds
            .iter()
            .filter(|f| is_dmabuf(f))
            .map(|f| {
                let ino = f.info.as_ref().map_or(0, |i| i.ino);
                format!("fd {} -> {} (ino {ino})", f.fd, f.link)
            })
            .collect(),
        mappings: maps
            .iter()
            .filter(|m| maps_dmabuf(m, made))
            .map(|m| {
                format!(
                    "{:x}-{:x} {:x}:{:x} {} {}",
                    m.start, m.end, m.major, m.minor, m.inode, m.pathname
                )
            })
            .collect(),
        listed: still_listed(before, after, made),
    }
}

/// This process's open fds (read_dir's own left out), each with its link
/// and parsed fdinfo.
fn fds() -> Result<Vec<Fd>> {
    let dir = std::fs::read_dir("/proc/self/fd").context("read_dir /proc/self/fd")?;
    let mut fds = Vec::new();
    for entry in dir {
        let entry = entry.context("read_dir /proc/self/fd")?;
        let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        // The directory's own fd is gone by the time its link is read.
        let Ok(link) = std::fs::read_link(entry.path()) else {
            continue;
        };
        let info = sys::read_text(&format!("/proc/self/fdinfo/{fd}"))
            .ok()
            .and_then(|t| fdinfo::parse(&t).ok());
        fds.push(Fd {
            fd,
            link: link.to_string_lossy().into_owned(),
            info,
        });
    }
    Ok(fds)
}

/// What the buffers `made` left behind in this process's fds and maps and
/// in bufinfo (against bufinfo `before` they were made), read now: see
/// [`find`].
pub fn read(before: &BufInfo, made: &Made) -> Result<Leftovers> {
    let fds = fds()?;
    let maps = sys::maps()?;
    let after = sys::bufinfo()?;
    Ok(find(&fds, &maps, before, &after, made))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dmabuf::parse::{bufinfo, maps};

    const BUFINFO: &str = include_str!("../../dmabuf/testdata/bufinfo-mixed.txt");
    const EMPTY: &str = include_str!("../../dmabuf/testdata/bufinfo-empty.txt");
    const MAPS: &str = include_str!("../../dmabuf/testdata/maps-dmabuf.txt");

    fn made(dev: u64, inos: &[u64]) -> Made {
        let mut m = Made::default();
        for &i in inos {
            m.add(dev, i);
        }
        m
    }

    #[test]
    fn nothing_left_on_an_empty_list() {
        let empty = bufinfo::parse(EMPTY).unwrap();
        let m = made(8, &[1, 2, 3, 4]);
        let l = find(&[], &[], &empty, &empty, &m);
        assert!(l.is_empty());
        assert_eq!(l.describe(&m), None);
    }

    #[test]
    fn buffers_of_the_run_still_listed() {
        let empty = bufinfo::parse(EMPTY).unwrap();
        let after = bufinfo::parse(BUFINFO).unwrap();
        // The run made inodes 2 and 3 (and 9, which is gone); 1 and 4 are
        // someone else's.
        let m = made(8, &[2, 3, 9]);
        let left = still_listed(&empty, &after, &m);
        let inos: Vec<u64> = left.iter().map(|b| b.ino).collect();
        assert_eq!(inos, [3, 2]);
        let text = find(&[], &[], &empty, &after, &m).describe(&m).unwrap();
        assert!(
            text.starts_with("debugfs bufinfo still lists 2 of the 3 buffers made"),
            "{text}"
        );
        assert!(text.contains("ino 2 (8192 bytes, udmabuf, count 2, name validator-udmabuf-named)"));
        // What was listed before the run is not the run's.
        assert!(still_listed(&after, &after, &m).is_empty());
    }

    #[test]
    fn one_shared_inode_is_counted_per_entry() {
        // On the singleton-inode kernel every buffer has inode 7: one that
        // was there before accounts for one entry, not for all.
        let entry = |n: &str| {
            format!("00004096\t00000002\t00080007\t00000001\tudmabuf\t00000007\t{n}\n\tAttached Devices:\nTotal 0 devices attached\n\n")
        };
        let text = |entries: &[&str]| {
            format!(
                "\nDma-buf Objects:\nsize    \tflags   \tmode    \tcount   \texp_name\tino     \tname\n{}\nTotal {} objects, {} bytes\n",
                entries.iter().map(|n| entry(n)).collect::<String>(),
                entries.len(),
                4096 * entries.len()
            )
        };
        let before = bufinfo::parse(&text(&["old"])).unwrap();
        let m = made(8, &[7]);
        assert!(still_listed(&before, &before, &m).is_empty());
        let after = bufinfo::parse(&text(&["old", "<none>"])).unwrap();
        let left = still_listed(&before, &after, &m);
        assert_eq!(left.len(), 1);
    }

    #[test]
    fn dmabuf_fds_by_link_or_fdinfo() {
        let info = |t: &str| Some(fdinfo::parse(t).unwrap());
        let fds = [
            Fd {
                fd: 3,
                link: "/memfd:backing (deleted)".into(),
                info: info(include_str!("../../dmabuf/testdata/fdinfo-memfd.txt")),
            },
            Fd {
                fd: 4,
                link: "/dmabuf:validator-udmabuf-named".into(),
                info: None,
            },
            // As the singleton-inode kernel names it: found by its fdinfo.
            Fd {
                fd: 5,
                link: "anon_inode:dmabuf".into(),
                info: info(include_str!(
                    "../../dmabuf/testdata/fdinfo-heap-unnamed.txt"
                )),
            },
            Fd {
                fd: 6,
                link: "/dev/udmabuf".into(),
                info: None,
            },
        ];
        let empty = bufinfo::parse(EMPTY).unwrap();
        let l = find(&fds, &[], &empty, &empty, &Made::default());
        assert_eq!(l.fds.len(), 2, "{:?}", l.fds);
        assert!(l.fds[0].starts_with("fd 4 -> /dmabuf:validator-udmabuf-named"));
        assert!(l.fds[1].starts_with("fd 5 -> anon_inode:dmabuf"));
        assert!(l
            .describe(&Made::default())
            .unwrap()
            .starts_with("2 dma-buf fds still open in /proc/self/fd: fd 4"));
    }

    #[test]
    fn dmabuf_mappings_by_path_or_inode() {
        let maps = maps::parse(MAPS).unwrap();
        let empty = bufinfo::parse(EMPTY).unwrap();
        // Both dma-buf mappings, by their path.
        let l = find(&[], &maps, &empty, &empty, &Made::default());
        assert_eq!(l.mappings.len(), 2, "{:?}", l.mappings);
        assert!(l.mappings[0].ends_with("0:8 4 /dmabuf:validator-heap-named"));
        // By device and inode, whatever the path.
        let renamed = MAPS.replace("/dmabuf:", "anon_inode:");
        let maps = maps::parse(&renamed).unwrap();
        let dev = libc::makedev(0, 8);
        assert!(find(&[], &maps, &empty, &empty, &Made::default())
            .mappings
            .is_empty());
        let l = find(&[], &maps, &empty, &empty, &made(dev, &[2]));
        assert_eq!(l.mappings.len(), 1, "{:?}", l.mappings);
        // The binary's own mappings (device 0:2, inode 10) are not the run's.
        assert!(find(&[], &maps, &empty, &empty, &made(dev, &[10]))
            .mappings
            .is_empty());
    }
}
