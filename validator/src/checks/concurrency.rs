// SPDX-License-Identifier: GPL-2.0
//! Threads creating, naming, dup()ing and closing buffers while others read
//! fdinfo, fd links and bufinfo.

use std::collections::{HashMap, HashSet};
use std::ffi::CString;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::stat::fstat;

use dmabuf::sys;
use dmabuf::uapi::dma_buf::{self, LINK_PREFIX};
use dmabuf_testkit::leftover::{self, Made};
use dmabuf_testkit::rng::Rng;
use dmabuf_testkit::threads::joined;
use dmabuf_testkit::{Backing, Exporter};

use super::Ctx;
use crate::buffers::{DmaBuf, Factory};

/// Threads that create (and close) buffers, and buffers each creates.
const CREATORS: u64 = 2;
const PER_CREATOR: u64 = 1024;
/// Live buffers at most; a creator closes a random one beyond.
const POOL: usize = 48;
/// What a thread that is not a creator does, again and again.
#[derive(Clone, Copy)]
enum Op {
    Name,
    Dup,
    Read,
    Bufinfo,
}

/// The threads that are not creators: name, seed, operation.
const OTHERS: [(&str, u64, Op); 5] = [
    ("namer", 1, Op::Name),
    ("duper", 2, Op::Dup),
    ("reader 1", 3, Op::Read),
    ("reader 2", 4, Op::Read),
    ("bufinfo reader", 5, Op::Bufinfo),
];
/// How long the other threads may go on after the creators are done, until
/// each has done its operation once: a thread the scheduler kept off the
/// CPUs for the creators' whole run still checks the last buffers.
const GRACE: Duration = Duration::from_secs(10);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Shared<'a> {
    f: &'a Factory,
    e: Exporter,
    /// The live buffers any thread may pick.
    live: Mutex<Vec<Arc<Live<'a>>>>,
    /// st_ino to serial of every live buffer.
    inos: &'a Mutex<HashMap<u64, u64>>,
    /// Every thread waits here first, so that all start together.
    start: Barrier,
    creators_done: AtomicBool,
    errors: Mutex<Vec<String>>,
    ops: [AtomicU64; 6],
}

/// Operation counters, indexes into `Shared::ops`.
const CREATE: usize = 0;
const NAME: usize = 1;
const DUP: usize = 2;
const READ: usize = 3;
const BUFINFO: usize = 4;
const CLOSE: usize = 5;

/// A live buffer; leaves `inos` before its fd closes, so that `inos` never
/// holds a closed buffer (it may miss a live one for that instant).
struct Live<'a> {
    buf: DmaBuf,
    inos: &'a Mutex<HashMap<u64, u64>>,
}

impl Drop for Live<'_> {
    fn drop(&mut self) {
        let mut inos = lock(self.inos);
        if inos.get(&self.buf.ino()) == Some(&self.buf.serial) {
            inos.remove(&self.buf.ino());
        }
    }
}

impl<'a> Shared<'a> {
    fn pick(&self, rng: &mut Rng) -> Option<Arc<Live<'a>>> {
        let live = lock(&self.live);
        (!live.is_empty()).then(|| live[rng.index(live.len())].clone())
    }

    fn count(&self, op: usize) {
        self.ops[op].fetch_add(1, Ordering::Relaxed);
    }

    /// Does `op` once; says whether it found a buffer to work on.
    fn once(&self, op: Op, rng: &mut Rng) -> Result<bool> {
        match op {
            Op::Name => self.name(rng),
            Op::Dup => self.dup(rng),
            Op::Read => self.read(rng),
            Op::Bufinfo => self.bufinfo(),
        }
    }

    /// Repeats `op` until it fails, or the creators are done and it has
    /// worked on a buffer at least once (or [`GRACE`] has passed since they
    /// were done).
    fn repeat(&self, who: &str, seed: u64, op: Op) {
        let mut rng = Rng::new(seed);
        let mut worked = false;
        let mut deadline = None;
        self.start.wait();
        loop {
            if self.creators_done.load(Ordering::Acquire) {
                let end = *deadline.get_or_insert_with(|| Instant::now() + GRACE);
                if worked || Instant::now() >= end {
                    return;
                }
            }
            match self.once(op, &mut rng) {
                Ok(w) => worked |= w,
                Err(e) => {
                    lock(&self.errors).push(format!("{who}: {e:#}"));
                    return;
                }
            }
        }
    }

    /// Creates `PER_CREATOR` buffers, each recorded in `made`.
    fn create(&self, id: u64, made: &mut Made) -> Result<()> {
        // First, so that no early return leaves the other threads waiting.
        self.start.wait();
        let page = self.f.page;
        let arena = match self.e {
            Exporter::Udmabuf => Some(
                dmabuf::uapi::udmabuf::sealed_memfd(PER_CREATOR * page)
                    .context("memfd sealed with F_SEAL_SHRINK")?,
            ),
            Exporter::Heap => None,
        };
        let mut rng = Rng::new(0x9e37_79b9 * (id + 1));
        for i in 0..PER_CREATOR {
            let backing = match &arena {
                Some(m) => Backing::Slice(m.as_fd(), i * page),
                None => Backing::OwnMemfd,
            };
            let buf = self.f.create(self.e, page, backing)?;
            made.add(buf.stat.st_dev, buf.ino());
            self.count(CREATE);
            if let Some(other) = lock(self.inos).insert(buf.ino(), buf.serial) {
                bail!(
                    "buffers #{other} and #{} are both live with st_ino {}",
                    buf.serial,
                    buf.ino()
                );
            }
            let live = Arc::new(Live {
                buf,
                inos: self.inos,
            });
            let victim = {
                let mut pool = lock(&self.live);
                pool.push(live);
                (pool.len() > POOL).then(|| {
                    let i = rng.index(pool.len());
                    pool.swap_remove(i)
                })
            };
            if victim.is_some() {
                self.count(CLOSE);
            }
            // The victim's fd closes here, or when the last thread using it
            // lets go, outside every lock.
            drop(victim);
        }
        Ok(())
    }

    fn name(&self, rng: &mut Rng) -> Result<bool> {
        let Some(live) = self.pick(rng) else {
            return Ok(false);
        };
        let b = &live.buf;
        let n = self.ops[NAME].load(Ordering::Relaxed);
        // Each name carries its buffer's st_ino, so that a link or bufinfo
        // entry showing another buffer's name gives itself away.
        let name = format!("c{}-{n}", b.ino());
        dma_buf::set_name(b.fd(), &CString::new(name.as_str()).expect("no NUL"))
            .with_context(|| format!("DMA_BUF_SET_NAME {name:?}"))?;
        // This is the only thread that names buffers.
        let link = sys::fd_link(b.fd())?;
        if link != format!("{LINK_PREFIX}{name}") {
            bail!("readlink is {link:?} right after naming the buffer {name:?}");
        }
        let info = sys::fdinfo(b.fd())?;
        let seen = info.dmabuf.and_then(|d| d.name);
        if seen.as_deref() != Some(name.as_str()) {
            bail!("fdinfo name is {seen:?} right after naming the buffer {name:?}");
        }
        self.count(NAME);
        Ok(true)
    }

    fn dup(&self, rng: &mut Rng) -> Result<bool> {
        let Some(live) = self.pick(rng) else {
            return Ok(false);
        };
        let b = &live.buf;
        let dup = nix::unistd::dup(b.fd()).context("dup")?;
        let st = fstat(&dup).context("fstat of a dup")?;
        if st.st_ino != b.ino() {
            bail!(
                "dup() of buffer #{} has st_ino {}: expected {}",
                b.serial,
                st.st_ino,
                b.ino()
            );
        }
        let info = sys::fdinfo(dup.as_fd())?;
        match info.dmabuf.map(|d| d.count) {
            Some(c) if c >= 2 => {}
            count => bail!("fdinfo count {count:?} of a dup(): expected at least 2"),
        }
        self.count(DUP);
        Ok(true)
    }

    fn read(&self, rng: &mut Rng) -> Result<bool> {
        let Some(live) = self.pick(rng) else {
            return Ok(false);
        };
        let b = &live.buf;
        let info = sys::fdinfo(b.fd())?;
        if info.ino != b.ino() {
            bail!(
                "fdinfo ino {} of buffer #{}: expected its st_ino {}",
                info.ino,
                b.serial,
                b.ino()
            );
        }
        let Some(d) = info.dmabuf else {
            bail!("fdinfo of buffer #{} has no dma-buf lines", b.serial)
        };
        if d.size != b.size || d.exp_name != self.e.exp_name() {
            bail!(
                "fdinfo of buffer #{} says size {} exp_name {:?}: expected {} {:?}",
                b.serial,
                d.size,
                d.exp_name,
                b.size,
                self.e.exp_name()
            );
        }
        let link = sys::fd_link(b.fd())?;
        let own = format!("c{}-", b.ino());
        match link.strip_prefix(LINK_PREFIX) {
            Some(name) if name.is_empty() || name.starts_with(&own) => {}
            _ => bail!("readlink of buffer #{} (st_ino {}) is {link:?}: expected {LINK_PREFIX:?} and nothing or a name starting {own:?}", b.serial, b.ino()),
        }
        self.count(READ);
        Ok(true)
    }

    fn bufinfo(&self) -> Result<bool> {
        let info = sys::bufinfo()?;
        let mut seen = HashSet::with_capacity(info.buffers.len());
        for entry in &info.buffers {
            if !seen.insert(entry.ino) {
                bail!("bufinfo lists st_ino {} twice", entry.ino);
            }
            let owner = entry
                .name
                .as_deref()
                .and_then(|n| n.strip_prefix('c'))
                .and_then(|n| n.split_once('-'));
            if let Some((ino, _)) = owner {
                if ino.parse() != Ok(entry.ino) && entry.exp_name == self.e.exp_name() {
                    bail!(
                        "bufinfo lists the name {:?} with ino {}",
                        entry.name.as_deref().unwrap_or(""),
                        entry.ino
                    );
                }
            }
        }
        self.count(BUFINFO);
        Ok(true)
    }
}

/// A creator's buffers: what it made, and whether it stopped early.
type Created = (Made, Result<()>);

pub fn concurrency(ctx: &mut Ctx, e: Exporter) -> Result<String> {
    let before = sys::bufinfo()?;
    let inos = Mutex::default();
    let shared = Shared {
        f: &ctx.f,
        e,
        live: Mutex::default(),
        inos: &inos,
        start: Barrier::new(CREATORS as usize + OTHERS.len()),
        creators_done: AtomicBool::new(false),
        errors: Mutex::default(),
        ops: Default::default(),
    };
    let start = Instant::now();
    let (created, others) = thread::scope(|s| {
        let sh = &shared;
        let creators: Vec<_> = (0..CREATORS)
            .map(|id| {
                s.spawn(move || -> Created {
                    let mut made = Made::default();
                    let r = sh.create(id, &mut made);
                    (made, r)
                })
            })
            .collect();
        let others: Vec<_> = OTHERS
            .iter()
            .map(|&(who, seed, op)| (who, s.spawn(move || sh.repeat(who, seed, op))))
            .collect();
        let created: Vec<Result<Created, String>> = creators
            .into_iter()
            .enumerate()
            .map(|(id, c)| joined(&format!("creator {id}"), c.join()))
            .collect();
        sh.creators_done.store(true, Ordering::Release);
        let others: Vec<Result<(), String>> = others
            .into_iter()
            .map(|(who, t)| joined(who, t.join()))
            .collect();
        (created, others)
    });
    let secs = start.elapsed().as_secs_f64();
    lock(&shared.live).clear();
    let mut errors = std::mem::take(&mut *lock(&shared.errors));
    let mut made = Made::default();
    for (id, c) in created.into_iter().enumerate() {
        match c {
            Err(panic) => errors.push(panic),
            Ok((m, r)) => {
                if let Err(e) = r {
                    errors.push(format!("creator {id}: {e:#}"));
                } else if m.count != PER_CREATOR {
                    errors.push(format!(
                        "creator {id} made {} of the {PER_CREATOR} buffers asked",
                        m.count
                    ));
                }
                made.extend(m);
            }
        }
    }
    errors.extend(others.into_iter().filter_map(Result::err));
    let ops: Vec<u64> = shared
        .ops
        .iter()
        .map(|o| o.load(Ordering::Relaxed))
        .collect();
    let summary = format!(
        "{} creates, {} closes, {} names, {} dups, {} fdinfo+link reads, {} bufinfo reads in {secs:.2} s",
        ops[CREATE], ops[CLOSE], ops[NAME], ops[DUP], ops[READ], ops[BUFINFO]
    );
    if let Some(first) = errors.first() {
        bail!("{first} ({} thread(s) failed; {summary})", errors.len());
    }
    // Every buffer is closed: the kernel must have released each one.
    let left = leftover::still_listed(&before, &sys::bufinfo()?, &made);
    if let Some(b) = left.first() {
        bail!(
            "debugfs bufinfo still lists {} of the {} buffers made after every one was closed, \
             the first with ino {} (count {}, name {}) ({summary})",
            left.len(),
            made.count,
            b.ino,
            b.count,
            b.name.as_deref().unwrap_or("<none>")
        );
    }
    for (what, op) in [
        ("names", NAME),
        ("dups", DUP),
        ("fdinfo reads", READ),
        ("bufinfo reads", BUFINFO),
    ] {
        if ops[op] == 0 {
            bail!(
                "no {what} ran while the buffers were created, nor in the {} s after ({summary})",
                GRACE.as_secs()
            );
        }
    }
    Ok(summary)
}
