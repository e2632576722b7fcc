// SPDX-License-Identifier: GPL-2.0
//! What the scene sets up in the guest besides its processes: two cgroups
//! to put them in, and the names of its two users. Each is undone by its
//! `finish()`; each failure says what the guest or its kernel lacks.

use std::collections::BTreeMap;
use std::path::Path;

use nix::mount::{mount, umount, MsFlags};
use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC};

/// Where cgroup2 is mounted, by the test when the guest's init did not.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The scene's two cgroups.
pub const GROUPS: [&str; 2] = ["lsdmabuf-a", "lsdmabuf-b"];

/// The two cgroups, made on cgroup2.
pub struct Cgroups {
    /// Whether the test mounted cgroup2 (and unmounts it).
    mounted: bool,
    made: Vec<String>,
}

impl Cgroups {
    /// Mounts cgroup2 on [`CGROUP_ROOT`] unless it is there, and makes
    /// [`GROUPS`].
    pub fn setup() -> Result<Cgroups, String> {
        if !Path::new(CGROUP_ROOT).is_dir() {
            return Err(format!(
                "{CGROUP_ROOT} does not exist: the kernel has no cgroups; it needs CONFIG_CGROUPS=y"
            ));
        }
        let on_cgroup2 = statfs(CGROUP_ROOT)
            .map(|s| s.filesystem_type() == CGROUP2_SUPER_MAGIC)
            .unwrap_or(false);
        let mut c = Cgroups {
            mounted: false,
            made: Vec::new(),
        };
        if !on_cgroup2 {
            mount(
                Some("none"),
                CGROUP_ROOT,
                Some("cgroup2"),
                MsFlags::empty(),
                None::<&str>,
            )
            .map_err(|e| {
                format!(
                    "mount -t cgroup2 none {CGROUP_ROOT}: {e}{}",
                    if e == nix::errno::Errno::ENODEV {
                        ": the kernel has no cgroup2; it needs CONFIG_CGROUPS=y"
                    } else {
                        ""
                    }
                )
            })?;
            c.mounted = true;
        }
        for g in GROUPS {
            let dir = format!("{CGROUP_ROOT}/{g}");
            std::fs::create_dir(&dir).map_err(|e| format!("mkdir {dir}: {e}"))?;
            c.made.push(dir);
        }
        Ok(c)
    }

    /// Moves `pid` into `group` (one of [`GROUPS`]); the path lsdmabuf must
    /// show for it.
    pub fn enter(&self, pid: i32, group: &str) -> Result<String, String> {
        let procs = format!("{CGROUP_ROOT}/{group}/cgroup.procs");
        std::fs::write(&procs, format!("{pid}\n"))
            .map_err(|e| format!("writing {pid} to {procs}: {e}"))?;
        Ok(format!("/{group}"))
    }

    /// Moves this process back to the root cgroup and removes the cgroups,
    /// which the scene's helpers have left by exiting; unmounts cgroup2 if
    /// the test mounted it.
    pub fn finish(mut self) -> Result<(), String> {
        let root = format!("{CGROUP_ROOT}/cgroup.procs");
        std::fs::write(&root, format!("{}\n", std::process::id()))
            .map_err(|e| format!("writing this process to {root}: {e}"))?;
        for dir in self.made.drain(..) {
            std::fs::remove_dir(&dir).map_err(|e| format!("rmdir {dir}: {e}"))?;
        }
        if self.mounted {
            self.mounted = false;
            umount(CGROUP_ROOT).map_err(|e| format!("umount {CGROUP_ROOT}: {e}"))?;
        }
        Ok(())
    }
}

/// The user database the scene's users are named in.
pub const PASSWD: &str = "/etc/passwd";

/// The names of the scene's users: `/etc/passwd` as the guest has it, or
/// one the test writes (and removes) when it has none.
pub struct Users {
    /// uid -> name, as the database says.
    pub names: BTreeMap<u32, String>,
    wrote: bool,
}

impl Users {
    /// Reads [`PASSWD`], or writes one naming root and nobody.
    pub fn setup() -> Result<Users, String> {
        match std::fs::read_to_string(PASSWD) {
            Ok(text) => Ok(Users {
                names: names(&text),
                wrote: false,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let text = format!(
                    "root:x:0:0:root:/root:/bin/sh\nnobody:x:{n}:{n}:nobody:/nonexistent:/bin/false\n",
                    n = dmabuf::sys::NOBODY
                );
                std::fs::create_dir_all("/etc").map_err(|e| format!("mkdir /etc: {e}"))?;
                std::fs::write(PASSWD, &text).map_err(|e| format!("writing {PASSWD}: {e}"))?;
                Ok(Users {
                    names: names(&text),
                    wrote: true,
                })
            }
            Err(e) => Err(format!("reading {PASSWD}: {e}")),
        }
    }

    /// Removes the database the test wrote.
    pub fn finish(self) -> Result<(), String> {
        if self.wrote {
            std::fs::remove_file(PASSWD).map_err(|e| format!("rm {PASSWD}: {e}"))?;
        }
        Ok(())
    }
}

/// uid -> name: the first name of a uid in `name:x:uid:...` lines.
fn names(text: &str) -> BTreeMap<u32, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if let (Some(name), Some(uid)) = (f.first(), f.get(2).and_then(|u| u.parse().ok())) {
            if !name.is_empty() && !name.starts_with('#') {
                out.entry(uid).or_insert_with(|| name.to_string());
            }
        }
    }
    out
}
