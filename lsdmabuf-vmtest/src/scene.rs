// SPDX-License-Identifier: GPL-2.0
//! The scene: processes that share dma-bufs through fork(), SCM_RIGHTS and
//! mappings whose fd is gone, and what lsdmabuf must report about them.
//!
//! The expectation is written down while the scene is built, from what the
//! test did (which buffer of which size went to which process, at which fd
//! or address), never from lsdmabuf's code.
//!
//! | buffer | exporter | size | name | holders |
//! |---|---|---|---|---|
//! | fork | system | 4 pages | `scene-fork` | the test, and two children that inherit its fd |
//! | scm | udmabuf | 2 pages | `scene-scm` | R, twice over SCM_RIGHTS; the test closed its fd |
//! | dup | system | 1 page | - | the test (two fds and a mapping), R |
//! | maponly | udmabuf | 3 pages | `scene-maponly` | M, by a mapping only |
//! | partial | system | 8 pages | `scene-partial` | the test's fd, M's mapping of 2 pages at page 4 |
//! | twomaps | system | 2 pages | `scene-twomaps` | M, by two mappings of its first page |
//! | nobody_fd | system | 2 pages | `scene-nobody-fd` | U, uid 65534, by fd |
//! | nobody_map | udmabuf | 1 page | `scene-nobody-map` | U, by a mapping only |
//! | inflight | udmabuf | 2 pages | `scene-inflight` | no process: sent over SCM_RIGHTS on a socket nobody reads, the test's fd closed |
//! | imported | system | 3 pages | `scene-imported` | the test's fd; imported by vgem |
//! | imported_only | udmabuf | 1 page | `scene-imported-only` | no process: imported by vgem, the test's fd closed |
//!
//! The last two need vgem (see [`crate::vgem`]): without it they are not
//! made, and the importer check says what the kernel lacks. The test, R and
//! M are put in the cgroup `lsdmabuf-a`, F1, F2 and U in `lsdmabuf-b`
//! ([`crate::guest::Cgroups`]); every helper runs as root but U, as nobody,
//! whose names come from [`crate::guest::Users`].

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use anyhow::{bail, Context, Result};
use nix::sys::mman::ProtFlags;
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::sys::stat::fstat;
use nix::unistd::getpid;

use dmabuf::sys::{self, Mapping, NOBODY};
use dmabuf::uapi::dma_buf;
use dmabuf_testkit::scm_rights;
use dmabuf_testkit::{Backing, Devices, Exporter};

use crate::child::Child;
use crate::guest::{Cgroups, Users, GROUPS};
use crate::vgem::{self, Vgem};

/// One buffer the scene made.
#[derive(Debug, Clone)]
pub struct Buf {
    pub key: &'static str,
    pub ino: u64,
    pub size: u64,
    pub exporter: Exporter,
    pub name: Option<&'static str>,
}

/// One mapping of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapAt {
    pub start: u64,
    pub end: u64,
    /// The offset in the buffer it starts at.
    pub offset: u64,
}

/// How one process holds one buffer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hold {
    pub fds: BTreeSet<i32>,
    pub maps: Vec<MapAt>,
}

/// What lsdmabuf must report about the scene.
#[derive(Debug, Clone)]
pub struct Expect {
    pub buffers: Vec<Buf>,
    /// (pid, buffer key) -> the hold.
    pub holds: BTreeMap<(i32, &'static str), Hold>,
    /// pid -> what the process is in the scene (for messages).
    pub roles: BTreeMap<i32, &'static str>,
    /// pid -> the uid the test made it run as.
    pub uids: BTreeMap<i32, u32>,
    /// uid -> the name the user database gives it.
    pub names: BTreeMap<u32, String>,
    /// pid -> the cgroup the test put it in; why there is none.
    pub cgroups: Result<BTreeMap<i32, String>, String>,
    /// buffer key -> the devices the test attached to it.
    pub importers: BTreeMap<&'static str, Vec<String>>,
    /// vgem's render node, or why there is no importer.
    pub vgem: Result<String, String>,
}

impl Default for Expect {
    fn default() -> Self {
        Expect {
            buffers: Vec::new(),
            holds: BTreeMap::new(),
            roles: BTreeMap::new(),
            uids: BTreeMap::new(),
            names: BTreeMap::new(),
            cgroups: Err("not set up yet".into()),
            importers: BTreeMap::new(),
            vgem: Err("not opened yet".into()),
        }
    }
}

impl Expect {
    /// Whether a process holds the buffer `key`.
    pub fn held(&self, key: &str) -> bool {
        self.holds.keys().any(|(_, k)| *k == key)
    }

    fn fd(&mut self, pid: i32, key: &'static str, fd: i32) {
        self.holds.entry((pid, key)).or_default().fds.insert(fd);
    }

    fn map(&mut self, pid: i32, key: &'static str, (start, end): (u64, u64), offset: u64) {
        self.holds
            .entry((pid, key))
            .or_default()
            .maps
            .push(MapAt { start, end, offset });
    }
}

/// The live scene: drop it to end every helper and close every buffer.
pub struct Scene {
    pub expect: Expect,
    children: Vec<Child>,
    _fds: Vec<OwnedFd>,
    _maps: Vec<Mapping>,
    /// The socket pair the in-flight buffer is queued on.
    _sockets: Vec<OwnedFd>,
    /// vgem, holding what it imported.
    vgem: Option<Vgem>,
    cgroups: Option<Cgroups>,
    users: Option<Users>,
}

/// Opens the exporters and makes buffers.
pub struct Factory {
    devices: Devices,
    pub page: u64,
}

impl Factory {
    pub fn open() -> Result<Factory> {
        Ok(Factory {
            devices: Devices::open(&Exporter::ALL)?,
            page: sys::page_size(),
        })
    }

    /// A new dma-buf of `pages` pages, named `name` if given.
    pub fn create(&self, e: Exporter, pages: u64, name: Option<&str>) -> Result<OwnedFd> {
        let fd = self
            .devices
            .export(e, pages * self.page, Backing::OwnMemfd)?;
        if let Some(name) = name {
            let c = CString::new(name).context("a name with a NUL byte")?;
            dma_buf::set_name(fd.as_fd(), &c)
                .with_context(|| format!("DMA_BUF_SET_NAME {name}"))?;
        }
        Ok(fd)
    }

    /// A one-page buffer of the system heap, unnamed.
    pub fn page(&self) -> Result<OwnedFd> {
        Ok(self
            .devices
            .export(Exporter::Heap, self.page, Backing::OwnMemfd)?)
    }
}

impl Scene {
    /// Builds the scene of the table in the module's documentation.
    pub fn build(f: &Factory) -> Result<Scene> {
        let me = getpid().as_raw();
        let page = f.page;
        let mut s = Scene {
            expect: Expect::default(),
            children: Vec::new(),
            _fds: Vec::new(),
            _maps: Vec::new(),
            _sockets: Vec::new(),
            vgem: None,
            cgroups: None,
            users: None,
        };
        s.expect.roles.insert(me, "the test");
        s.expect.uids.insert(me, 0);

        // R, M and U hold nothing until they are sent buffers. They are
        // forked before the test maps anything: a child inherits its
        // parent's mappings, and with them a hold on the buffers mapped.
        let r = s.spawn(&[], "R (receives over SCM_RIGHTS)")?;
        s.expect.uids.insert(r, 0);
        let m = s.spawn(&[], "M (maps, then closes the fd)")?;
        s.expect.uids.insert(m, 0);
        let u = s.spawn(&[], "U (uid 65534)")?;
        s.child(u).ask(&format!("become {NOBODY}"), None)?;

        let fork = s.buffer(f, "fork", Exporter::Heap, 4, Some("scene-fork"))?;
        let fork_fd = fork.as_raw_fd();
        s.expect.fd(me, "fork", fork_fd);
        for role in ["F1 (inherits over fork)", "F2 (inherits over fork)"] {
            let c = s.spawn(&[fork.as_fd()], role)?;
            s.expect.fd(c, "fork", fork_fd);
            s.expect.uids.insert(c, 0);
        }
        s._fds.push(fork);

        let scm = s.buffer(f, "scm", Exporter::Udmabuf, 2, Some("scene-scm"))?;
        for _ in 0..2 {
            let n = s.child(r).keep("scm", scm.as_fd())?;
            s.expect.fd(r, "scm", n);
        }
        drop(scm);

        let dup = s.buffer(f, "dup", Exporter::Heap, 1, None)?;
        // F_DUPFD_CLOEXEC: the lsdmabuf the checks run must not inherit it.
        let dup2 = dup.try_clone().context("fcntl(F_DUPFD_CLOEXEC)")?;
        let n = s.child(r).keep("dup", dup.as_fd())?;
        s.expect.fd(r, "dup", n);
        let mapping = Mapping::shared_range(dup.as_fd(), 0, page, ProtFlags::PROT_READ)?;
        s.expect.fd(me, "dup", dup.as_raw_fd());
        s.expect.fd(me, "dup", dup2.as_raw_fd());
        s.expect.map(me, "dup", mapping.range(), 0);
        s._fds.extend([dup, dup2]);
        s._maps.push(mapping);

        let maponly = s.buffer(f, "maponly", Exporter::Udmabuf, 3, Some("scene-maponly"))?;
        let range = s.child(m).map("maponly", maponly.as_fd(), 0, 3 * page)?;
        s.expect.map(m, "maponly", range, 0);
        drop(maponly);

        let partial = s.buffer(f, "partial", Exporter::Heap, 8, Some("scene-partial"))?;
        let range = s
            .child(m)
            .map("partial", partial.as_fd(), 4 * page, 2 * page)?;
        s.expect.map(m, "partial", range, 4 * page);
        s.expect.fd(me, "partial", partial.as_raw_fd());
        s._fds.push(partial);

        let twomaps = s.buffer(f, "twomaps", Exporter::Heap, 2, Some("scene-twomaps"))?;
        for _ in 0..2 {
            // The same page twice: two mappings the kernel cannot merge.
            let range = s.child(m).map("twomaps", twomaps.as_fd(), 0, page)?;
            s.expect.map(m, "twomaps", range, 0);
        }
        drop(twomaps);

        let nobody_fd = s.buffer(f, "nobody_fd", Exporter::Heap, 2, Some("scene-nobody-fd"))?;
        let n = s.child(u).keep("nobody_fd", nobody_fd.as_fd())?;
        s.expect.fd(u, "nobody_fd", n);
        drop(nobody_fd);
        let nobody_map = s.buffer(
            f,
            "nobody_map",
            Exporter::Udmabuf,
            1,
            Some("scene-nobody-map"),
        )?;
        let range = s.child(u).map("nobody_map", nobody_map.as_fd(), 0, page)?;
        s.expect.map(u, "nobody_map", range, 0);
        drop(nobody_map);
        s.expect.uids.insert(u, NOBODY);

        // In flight: queued on a socket whose other end nobody reads; the
        // queued message holds the buffer's file.
        let inflight = s.buffer(f, "inflight", Exporter::Udmabuf, 2, Some("scene-inflight"))?;
        let (tx, rx) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .context("socketpair for the buffer in flight")?;
        scm_rights::send(tx.as_fd(), b"inflight", Some(inflight.as_fd()))
            .context("sendmsg of the buffer in flight")?;
        drop(inflight);
        s._sockets.extend([tx, rx]);

        match Vgem::open() {
            Ok(vgem) => match s.import(f, &vgem) {
                Ok(()) => {
                    s.expect.vgem = Ok(vgem.node.clone());
                    s.vgem = Some(vgem);
                }
                Err(e) => s.expect.vgem = Err(format!("{e:#}")),
            },
            Err(why) => s.expect.vgem = Err(why),
        }

        // The cgroups: the test, R and M in one, F1, F2 and U in the other.
        s.expect.cgroups = match Cgroups::setup() {
            Ok(c) => {
                let mut placed = BTreeMap::new();
                let mut result = Ok(());
                for (pid, role) in s.expect.roles.clone() {
                    let group = if pid == me || role.starts_with("R ") || role.starts_with("M ") {
                        GROUPS[0]
                    } else {
                        GROUPS[1]
                    };
                    match c.enter(pid, group) {
                        Ok(path) => {
                            placed.insert(pid, path);
                        }
                        Err(e) => {
                            result = Err(e);
                            break;
                        }
                    }
                }
                s.cgroups = Some(c);
                result.map(|()| placed)
            }
            Err(why) => Err(why),
        };
        match Users::setup() {
            Ok(users) => {
                s.expect.names = users.names.clone();
                s.users = Some(users);
            }
            Err(why) => bail!("the user database: {why}"),
        }
        Ok(s)
    }

    fn spawn(&mut self, inherit: &[BorrowedFd<'_>], role: &'static str) -> Result<i32> {
        let c = Child::spawn(inherit).with_context(|| format!("spawning {role}"))?;
        let pid = c.pid.as_raw();
        self.children.push(c);
        self.expect.roles.insert(pid, role);
        Ok(pid)
    }

    fn child(&self, pid: i32) -> &Child {
        self.children
            .iter()
            .find(|c| c.pid.as_raw() == pid)
            .expect("a helper of the scene")
    }

    fn buffer(
        &mut self,
        f: &Factory,
        key: &'static str,
        e: Exporter,
        pages: u64,
        name: Option<&'static str>,
    ) -> Result<OwnedFd> {
        let (fd, buf) = Self::made(f, key, e, pages, name)?;
        self.expect.buffers.push(buf);
        Ok(fd)
    }

    /// A new buffer and its record, not yet in the expectation.
    fn made(
        f: &Factory,
        key: &'static str,
        e: Exporter,
        pages: u64,
        name: Option<&'static str>,
    ) -> Result<(OwnedFd, Buf)> {
        let fd = f
            .create(e, pages, name)
            .with_context(|| format!("buffer {key}"))?;
        let st = fstat(&fd).with_context(|| format!("fstat of buffer {key}"))?;
        let buf = Buf {
            key,
            ino: st.st_ino,
            size: pages * f.page,
            exporter: e,
            name,
        };
        Ok((fd, buf))
    }

    /// imported, which the test keeps an fd of, and imported_only, which
    /// it does not, both imported by vgem; in the expectation only once
    /// both imports worked.
    fn import(&mut self, f: &Factory, vgem: &Vgem) -> Result<()> {
        let me = getpid().as_raw();
        let (imported, a) = Self::made(f, "imported", Exporter::Heap, 3, Some("scene-imported"))?;
        let (only, b) = Self::made(
            f,
            "imported_only",
            Exporter::Udmabuf,
            1,
            Some("scene-imported-only"),
        )?;
        for (key, fd) in [("imported", &imported), ("imported_only", &only)] {
            vgem.import(fd.as_fd()).with_context(|| {
                format!("DRM_IOCTL_PRIME_FD_TO_HANDLE of {key} on {}", vgem.node)
            })?;
        }
        self.expect.buffers.extend([a, b]);
        self.expect.fd(me, "imported", imported.as_raw_fd());
        self._fds.push(imported);
        drop(only);
        for key in ["imported", "imported_only"] {
            self.expect
                .importers
                .insert(key, vec![vgem::DEVICE.to_string()]);
        }
        Ok(())
    }

    /// The pids of the helpers that run as root.
    pub fn root_helpers(&self) -> Vec<i32> {
        self.expect
            .holds
            .keys()
            .map(|(pid, _)| *pid)
            .chain(self.children.iter().map(|c| c.pid.as_raw()))
            .filter(|pid| *pid != getpid().as_raw() && !self.nobody_pids().contains(pid))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// The pids of the helpers that run as [`NOBODY`].
    pub fn nobody_pids(&self) -> BTreeSet<i32> {
        self.expect
            .roles
            .iter()
            .filter(|(_, role)| role.contains("uid 65534"))
            .map(|(pid, _)| *pid)
            .collect()
    }

    /// Ends every helper, checking that each exited cleanly, closes what
    /// vgem imported, and undoes the cgroups and the user database.
    pub fn finish(mut self) -> Result<()> {
        let mut result = Ok(());
        for c in self.children.drain(..) {
            let pid = c.pid;
            if let Err(e) = c.finish() {
                result = result.and(Err(e.context(format!("helper {pid}"))));
            }
        }
        self.vgem = None;
        if let Some(c) = self.cgroups.take() {
            result = result.and(c.finish().map_err(anyhow::Error::msg));
        }
        if let Some(u) = self.users.take() {
            result = result.and(u.finish().map_err(anyhow::Error::msg));
        }
        result
    }
}
