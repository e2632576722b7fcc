// SPDX-License-Identifier: GPL-2.0
//! Bad input: each call fails with the errno 6.12 documents in its code and
//! leaves no dma-buf and no fd behind.
//!
//! The errnos, from drivers/dma-buf/udmabuf.c `udmabuf_create()` and
//! `check_memfd_seals()`, drivers/dma-buf/dma-heap.c
//! `dma_heap_ioctl_allocate()`, and drivers/dma-buf/dma-buf.c
//! `dma_buf_set_name()` with mm/util.c `strndup_user()`:
//!
//! | input | errno |
//! |---|---|
//! | offset or size not page-aligned, size 0, more than `size_limit_mb` | EINVAL |
//! | an fd that is not shmem/hugetlbfs (pipe, dma-buf), or no open fd | EBADFD |
//! | a memfd without F_SEAL_SHRINK, or with F_SEAL_WRITE/F_SEAL_FUTURE_WRITE | EINVAL |
//! | heap: len 0 (after PAGE_ALIGN), fd not 0, unknown fd_flags or heap_flags | EINVAL |
//! | DMA_BUF_SET_NAME: unreadable address (`strnlen_user()` returns 0) | EFAULT |
//! | DMA_BUF_SET_NAME: no NUL in the first DMA_BUF_NAME_LEN bytes | EINVAL |

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::SealFlag;
use nix::sys::memfd::{memfd_create, MFdFlags};

use dmabuf::parse::fdinfo::FdInfo;
use dmabuf::sys;
use dmabuf::uapi::dma_buf::{self, DMA_BUF_NAME_LEN};
use dmabuf::uapi::heap::DmaHeapAllocationData;
use dmabuf::uapi::udmabuf::{self, UdmabufCreate, UDMABUF_FLAGS_CLOEXEC};
use dmabuf_testkit::{Backing, Exporter};

use super::Ctx;

/// What a failed call must leave as it was.
#[derive(Debug, PartialEq, Eq)]
struct Before {
    /// Buffers in bufinfo.
    objects: u64,
    /// This process's open fds.
    fds: usize,
}

fn before() -> Result<Before> {
    Ok(Before {
        objects: sys::bufinfo()?.total_objects,
        fds: sys::open_fds()?,
    })
}

/// Fails unless `result` is the errno `want` and nothing was created.
fn expect_errno(
    what: &str,
    result: nix::Result<OwnedFd>,
    want: Errno,
    before: &Before,
) -> Result<()> {
    match result {
        // The fd closes here: the check leaks nothing even when it fails.
        Ok(fd) => bail!(
            "{what} succeeded (fd {}): expected {want:?}",
            fd.as_raw_fd()
        ),
        Err(e) if e != want => bail!("{what} failed with {e:?}: expected {want:?}"),
        Err(_) => {}
    }
    nothing_created(what, before)
}

fn nothing_created(what: &str, before: &Before) -> Result<()> {
    let after = self::before()?;
    if after.objects != before.objects {
        bail!(
            "bufinfo lists {} buffers after the failed {what}: expected {}, as before",
            after.objects,
            before.objects
        );
    }
    if after.fds != before.fds {
        bail!(
            "{} fds open after the failed {what}: expected {}, as before",
            after.fds,
            before.fds
        );
    }
    Ok(())
}

/// UDMABUF_CREATE on `memfd` at `offset`, `size`.
fn create(ctx: &Ctx, memfd: &OwnedFd, offset: u64, size: u64) -> Result<nix::Result<OwnedFd>> {
    Ok(ctx.f.udmabuf()?.create(memfd.as_fd(), offset, size))
}

fn sealed(size: u64) -> Result<OwnedFd> {
    udmabuf::sealed_memfd(size)
        .with_context(|| format!("memfd of {size} bytes sealed with F_SEAL_SHRINK"))
}

pub fn bad_offset_unaligned(ctx: &mut Ctx, _: Exporter) -> Result<String> {
    let page = ctx.f.page;
    let memfd = sealed(4 * page)?;
    let b = before()?;
    for offset in [1, page / 2, page + 512] {
        let what = format!("UDMABUF_CREATE at offset {offset}, size {page}");
        expect_errno(&what, create(ctx, &memfd, offset, page)?, Errno::EINVAL, &b)?;
    }
    Ok("offsets 1, page/2, page+512: EINVAL, nothing created".into())
}

pub fn bad_size_unaligned(ctx: &mut Ctx, _: Exporter) -> Result<String> {
    let page = ctx.f.page;
    let memfd = sealed(4 * page)?;
    let b = before()?;
    for size in [1, page - 1, page + 1] {
        let what = format!("UDMABUF_CREATE of size {size}");
        expect_errno(&what, create(ctx, &memfd, 0, size)?, Errno::EINVAL, &b)?;
    }
    Ok("sizes 1, page-1, page+1: EINVAL, nothing created".into())
}

pub fn bad_size_zero(ctx: &mut Ctx, _: Exporter) -> Result<String> {
    let memfd = sealed(ctx.f.page)?;
    let b = before()?;
    expect_errno(
        "UDMABUF_CREATE of size 0",
        create(ctx, &memfd, 0, 0)?,
        Errno::EINVAL,
        &b,
    )?;
    Ok("size 0: EINVAL, nothing created".into())
}

pub fn bad_size_over_limit(ctx: &mut Ctx, _: Exporter) -> Result<String> {
    let (page, limit) = (ctx.f.page, ctx.f.size_limit);
    // Sparse: the pages would only be allocated if the kernel pinned them.
    let memfd = sealed(limit + page)?;
    let b = before()?;
    let what = format!(
        "UDMABUF_CREATE of {} bytes, one page over size_limit_mb ({} MiB)",
        limit + page,
        limit >> 20
    );
    expect_errno(
        &what,
        create(ctx, &memfd, 0, limit + page)?,
        Errno::EINVAL,
        &b,
    )?;
    Ok(format!(
        "size_limit_mb {} plus one page: EINVAL, nothing created",
        limit >> 20
    ))
}

pub fn bad_fd_not_memfd(ctx: &mut Ctx, _: Exporter) -> Result<String> {
    let page = ctx.f.page;
    let dev = ctx.f.udmabuf()?;
    let (pipe_r, _pipe_w) = nix::unistd::pipe().context("pipe")?;
    let dmabuf = ctx.f.create(Exporter::Udmabuf, page, Backing::OwnMemfd)?;
    // Above any fd the kernel hands out: fs.nr_open is smaller.
    let not_open = i32::MAX;
    let b = before()?;
    for (what, fd) in [
        ("a pipe", pipe_r.as_raw_fd()),
        ("a dma-buf", dmabuf.fd.as_raw_fd()),
        ("an fd number nothing is open on", not_open),
    ] {
        let arg = UdmabufCreate {
            memfd: fd as u32,
            flags: UDMABUF_FLAGS_CLOEXEC,
            offset: 0,
            size: page,
        };
        expect_errno(
            &format!("UDMABUF_CREATE of {what} (fd {fd})"),
            dev.create_raw(&arg),
            Errno::EBADFD,
            &b,
        )?;
    }
    Ok("a pipe, a dma-buf, an fd number not open: EBADFD, nothing created".into())
}

pub fn bad_memfd_unsealed(ctx: &mut Ctx, _: Exporter) -> Result<String> {
    let page = ctx.f.page;
    let no_seals = udmabuf::memfd(c"unsealed", page, SealFlag::empty()).context("memfd")?;
    let grow_only = udmabuf::memfd(c"grow-sealed", page, SealFlag::F_SEAL_GROW).context("memfd")?;
    let no_sealing = memfd_create(c"no-sealing", MFdFlags::MFD_CLOEXEC).context("memfd_create")?;
    nix::unistd::ftruncate(&no_sealing, page as libc::off_t).context("ftruncate")?;
    let b = before()?;
    for (what, memfd) in [
        ("a memfd with no seals", &no_seals),
        ("a memfd sealed with F_SEAL_GROW only", &grow_only),
        ("a memfd without MFD_ALLOW_SEALING", &no_sealing),
    ] {
        expect_errno(
            &format!("UDMABUF_CREATE of {what}"),
            create(ctx, memfd, 0, page)?,
            Errno::EINVAL,
            &b,
        )?;
    }
    Ok("no seals, F_SEAL_GROW only, no MFD_ALLOW_SEALING: EINVAL, nothing created".into())
}

pub fn bad_memfd_write_sealed(ctx: &mut Ctx, _: Exporter) -> Result<String> {
    let page = ctx.f.page;
    let mut memfds = Vec::new();
    for (what, seal) in [
        ("F_SEAL_WRITE", SealFlag::F_SEAL_WRITE),
        ("F_SEAL_FUTURE_WRITE", SealFlag::F_SEAL_FUTURE_WRITE),
    ] {
        let memfd = udmabuf::memfd(c"write-sealed", page, SealFlag::F_SEAL_SHRINK | seal)
            .with_context(|| format!("memfd sealed with F_SEAL_SHRINK | {what}"))?;
        memfds.push((what, memfd));
    }
    let b = before()?;
    for (what, memfd) in &memfds {
        let what = format!("UDMABUF_CREATE of a memfd sealed with F_SEAL_SHRINK | {what}");
        expect_errno(&what, create(ctx, memfd, 0, page)?, Errno::EINVAL, &b)?;
    }
    Ok("F_SEAL_WRITE, F_SEAL_FUTURE_WRITE: EINVAL, nothing created".into())
}

pub fn bad_len_zero(ctx: &mut Ctx, _: Exporter) -> Result<String> {
    let heap = ctx.f.heap()?;
    let b = before()?;
    expect_errno(
        "DMA_HEAP_IOCTL_ALLOC of len 0",
        heap.alloc(0),
        Errno::EINVAL,
        &b,
    )?;
    Ok("len 0: EINVAL, nothing created".into())
}

pub fn bad_alloc_flags(ctx: &mut Ctx, _: Exporter) -> Result<String> {
    let page = ctx.f.page;
    let heap = ctx.f.heap()?;
    let good = DmaHeapAllocationData {
        len: page,
        fd: 0,
        fd_flags: (libc::O_RDWR | libc::O_CLOEXEC) as u32,
        heap_flags: 0,
    };
    let b = before()?;
    for (what, data) in [
        (
            "fd_flags with O_NONBLOCK",
            DmaHeapAllocationData {
                fd_flags: good.fd_flags | libc::O_NONBLOCK as u32,
                ..good
            },
        ),
        (
            "heap_flags 1",
            DmaHeapAllocationData {
                heap_flags: 1,
                ..good
            },
        ),
        (
            "fd 1 on the way in",
            DmaHeapAllocationData { fd: 1, ..good },
        ),
    ] {
        expect_errno(
            &format!("DMA_HEAP_IOCTL_ALLOC with {what}"),
            heap.alloc_raw(data),
            Errno::EINVAL,
            &b,
        )?;
    }
    Ok("fd_flags O_NONBLOCK, heap_flags 1, fd 1: EINVAL, nothing created".into())
}

/// What a failed DMA_BUF_SET_NAME must leave as it was.
#[derive(Debug, PartialEq, Eq)]
struct NameState {
    link: String,
    name: Option<String>,
}

fn name_state(fd: std::os::fd::BorrowedFd<'_>) -> Result<NameState> {
    let info: FdInfo = sys::fdinfo(fd)?;
    Ok(NameState {
        link: sys::fd_link(fd)?,
        name: info.dmabuf.and_then(|d| d.name),
    })
}

/// Runs the failing DMA_BUF_SET_NAME calls of `attempts` on a named
/// buffer, each expected to fail with `want` and to change nothing.
fn set_name_fails(ctx: &Ctx, e: Exporter, want: Errno, attempts: &[(&str, usize)]) -> Result<()> {
    let buf = ctx.f.create(e, ctx.f.page, Backing::OwnMemfd)?;
    let name = CString::new(format!("kept-{}", buf.serial)).expect("no NUL");
    dma_buf::set_name(buf.fd(), &name).context("DMA_BUF_SET_NAME of a good name")?;
    let state = name_state(buf.fd())?;
    let b = before()?;
    for &(what, addr) in attempts {
        match dma_buf::set_name_at(buf.fd(), addr) {
            Ok(()) => bail!("DMA_BUF_SET_NAME with {what} succeeded: expected {want:?}"),
            Err(e) if e != want => {
                bail!("DMA_BUF_SET_NAME with {what} failed with {e:?}: expected {want:?}")
            }
            Err(_) => {}
        }
        let now = name_state(buf.fd())?;
        if now != state {
            bail!("DMA_BUF_SET_NAME with {what} failed but changed link and name from {state:?} to {now:?}");
        }
        nothing_created(&format!("DMA_BUF_SET_NAME with {what}"), &b)?;
    }
    Ok(())
}

pub fn set_name_bad_pointer(ctx: &mut Ctx, e: Exporter) -> Result<String> {
    let guard = sys::Mapping::inaccessible(ctx.f.page)?;
    set_name_fails(
        ctx,
        e,
        Errno::EFAULT,
        &[
            ("a NULL name", 0),
            ("a name on a PROT_NONE page", guard.start() as usize),
        ],
    )?;
    Ok("NULL and PROT_NONE names: EFAULT, name and link unchanged".into())
}

pub fn set_name_too_long(ctx: &mut Ctx, e: Exporter) -> Result<String> {
    let exact = CString::new("n".repeat(DMA_BUF_NAME_LEN)).expect("no NUL");
    let long = CString::new("n".repeat(4 * DMA_BUF_NAME_LEN)).expect("no NUL");
    set_name_fails(
        ctx,
        e,
        Errno::EINVAL,
        &[
            ("a name of DMA_BUF_NAME_LEN bytes", exact.as_ptr() as usize),
            (
                "a name of 4 * DMA_BUF_NAME_LEN bytes",
                long.as_ptr() as usize,
            ),
        ],
    )?;
    // The longest name that fits is taken whole.
    let buf = ctx.f.create(e, ctx.f.page, Backing::OwnMemfd)?;
    let max = "m".repeat(DMA_BUF_NAME_LEN - 1);
    dma_buf::set_name(buf.fd(), &CString::new(max.as_str()).expect("no NUL"))
        .context("DMA_BUF_SET_NAME of a name of DMA_BUF_NAME_LEN - 1 bytes")?;
    let state = name_state(buf.fd())?;
    if state.name.as_deref() != Some(max.as_str()) {
        bail!(
            "fdinfo name {:?} after naming the buffer {max:?} (DMA_BUF_NAME_LEN - 1 bytes)",
            state.name
        );
    }
    Ok(format!(
        "{} and {} bytes: EINVAL, name and link unchanged; {} bytes taken",
        DMA_BUF_NAME_LEN,
        4 * DMA_BUF_NAME_LEN,
        DMA_BUF_NAME_LEN - 1
    ))
}
