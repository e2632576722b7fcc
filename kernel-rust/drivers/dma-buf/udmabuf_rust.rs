// SPDX-License-Identifier: GPL-2.0

//! udmabuf in Rust: dma-bufs made of the pages of memfds, by userspace, through `/dev/udmabuf`.
//!
//! The same uapi and behaviour as `udmabuf.c` (`include/uapi/linux/udmabuf.h`): `UDMABUF_CREATE`
//! and `UDMABUF_CREATE_LIST` take ranges of memfds that are sealed against shrinking and not
//! against writing, pin their folios, and return the file descriptor of a dma-buf of their pages;
//! the buffer maps them for importers, for the CPU (`DMA_BUF_IOCTL_SYNC`), into processes (page
//! frames inserted on fault) and into the kernel.

use kernel::{
    device::Device,
    dma::{attrs, DataDirection, DmaMask},
    dma_buf::{Attachment, DmaBuf, DmaBufVma, Exporter, IoSysMap, ResvHeld},
    fs::{
        file::{flags, FileDescriptorReservation},
        File, LocalFile,
    },
    ioctl::_IOW,
    miscdevice::{MiscDevice, MiscDeviceOptions, MiscDeviceRegistration},
    mm::{
        memfd::{self, PinnedPages, Pinning},
        virt::{flags as vm_flags, VmFault, VmFaultResult},
    },
    new_mutex,
    page::{PAGE_SHIFT, PAGE_SIZE},
    prelude::*,
    scatterlist::{Mapped, SGTable},
    sync::{aref::ARef, Mutex},
    transmute::FromBytes,
    uaccess::{UserPtr, UserSlice},
    uapi, warn_on,
};

module! {
    type: UdmabufModule,
    name: "udmabuf",
    authors: ["Gerd Hoffmann <kraxel@redhat.com>"],
    description: "userspace dmabuf misc driver",
    license: "GPL v2",
    params: {
        list_limit: i32 {
            default: 1024,
            description: "udmabuf_create_list->count limit. Default is 1024.",
            perm: 0o644,
        },
        size_limit_mb: i32 {
            default: 2147483647,
            description: "Max size of a dmabuf, in megabytes. Default is INT_MAX.",
            perm: 0o644,
        },
    },
}

const UDMABUF_CREATE: u32 = _IOW::<uapi::udmabuf_create>('u' as u32, 0x42);
const UDMABUF_CREATE_LIST: u32 = _IOW::<uapi::udmabuf_create_list>('u' as u32, 0x43);

/// The seals a memfd must have, and must not have.
const SEALS_WANTED: u32 = memfd::SEAL_SHRINK;
const SEALS_DENIED: u32 = memfd::SEAL_WRITE | memfd::SEAL_FUTURE_WRITE;

/// `struct udmabuf_create`, as userspace passes it.
#[repr(transparent)]
struct Create(uapi::udmabuf_create);

// SAFETY: `struct udmabuf_create` is plain integers: any bytes are a valid value.
unsafe impl FromBytes for Create {}

/// The head of `struct udmabuf_create_list`, as userspace passes it.
#[repr(transparent)]
struct CreateList(uapi::udmabuf_create_list);

// SAFETY: The head of `struct udmabuf_create_list` is plain integers (its list is a flexible
// array, of size 0 here): any bytes are a valid value.
unsafe impl FromBytes for CreateList {}

/// `struct udmabuf_create_item`, as userspace passes it.
#[repr(transparent)]
struct Item(uapi::udmabuf_create_item);

// SAFETY: `struct udmabuf_create_item` is plain integers: any bytes are a valid value.
unsafe impl FromBytes for Item {}

/// A udmabuf: the pinned pages of its memfd ranges, in order.
#[pin_data]
struct Udmabuf {
    /// The table `begin_cpu_access` maps for the misc device, made on its first call.
    ///
    /// Declared before `pages`, so that it is unmapped before the pages are unpinned.
    #[pin]
    cpu_sg: Mutex<Option<KBox<SGTable<Mapped>>>>,
    pages: PinnedPages,
    /// The misc device, which CPU access maps the buffer for.
    misc: ARef<Device>,
}

impl Udmabuf {
    /// Maps the buffer's pages for `dev`.
    fn map_for(&self, dev: &Device, dir: DataDirection) -> Result<SGTable<Mapped>> {
        // SAFETY: The pages are pinned until the buffer is released, which comes after every
        // table of them is unmapped: the importers' before they detach, the CPU's in `cpu_sg`,
        // dropped before `pages`.
        unsafe {
            SGTable::map(
                dev,
                self.pages.pages(),
                dir,
                attrs::DMA_ATTR_SKIP_CPU_SYNC,
                GFP_KERNEL,
            )
        }
    }

    /// Inserts page `pgoff` of the buffer at `address` of the faulting vma.
    fn insert(&self, vmf: &VmFault, address: usize, pgoff: usize) -> Option<VmFaultResult> {
        let vma = vmf.vma().as_pfnmap_vma()?;
        let page = self.pages.page(pgoff)?;
        // SAFETY: The page's folio is pinned until the buffer is released, which comes after
        // every vma mapping the buffer is gone: each holds a reference to its file.
        Some(unsafe { vma.vmf_insert_pfn(address, page.pfn()) })
    }
}

#[vtable]
impl Exporter for Udmabuf {
    const NAME: &'static CStr = c"udmabuf";

    fn map(
        &self,
        attach: &Attachment,
        dir: DataDirection,
        _resv: &ResvHeld<'_>,
    ) -> Result<SGTable<Mapped>> {
        self.map_for(attach.dev(), dir)
    }

    fn mmap(&self, vma: &DmaBufVma<'_, Self>) -> Result {
        if vma.flags() & (vm_flags::SHARED | vm_flags::MAYSHARE) == 0 {
            return Err(EINVAL);
        }
        vma.set_pfnmap()?;
        vma.set_fault_handler();
        vma.set_dontexpand();
        vma.set_dontdump();
        Ok(())
    }

    fn fault(&self, vmf: &VmFault) -> VmFaultResult {
        let Some(ret) = self.insert(vmf, vmf.address(), vmf.pgoff()) else {
            return VmFaultResult::SIGBUS;
        };
        if ret.is_error() {
            return ret;
        }

        // Map the rest of the vma now: its pages are there, pinned.
        let vma = vmf.vma();
        let mut pgoff = vma.pgoff();
        let mut address = vma.start();
        while address < vma.end() {
            if address != vmf.address() {
                // The core checked at mmap time that the vma is within the buffer.
                if warn_on!(pgoff >= self.pages.len()) {
                    break;
                }
                // A page that cannot be inserted now is inserted when it is touched, or the
                // error is returned then.
                match self.insert(vmf, address, pgoff) {
                    Some(ret) if !ret.is_error() => {}
                    _ => break,
                }
            }
            pgoff += 1;
            address += PAGE_SIZE;
        }
        ret
    }

    fn vmap(&self, _resv: &ResvHeld<'_>) -> Result<IoSysMap> {
        self.pages.vm_map_ram().map(IoSysMap::System).ok_or(EINVAL)
    }

    fn vunmap(&self, map: IoSysMap, _resv: &ResvHeld<'_>) {
        if let IoSysMap::System(addr) = map {
            // SAFETY: The core gives back the map `vmap()` made, once, after its last user.
            unsafe { self.pages.vm_unmap_ram(addr) };
        }
    }

    fn begin_cpu_access(&self, dir: DataDirection) -> Result {
        let mut cpu_sg = self.cpu_sg.lock();
        let table = match &mut *cpu_sg {
            Some(table) => table,
            none => none.insert(KBox::new(self.map_for(&self.misc, dir)?, GFP_KERNEL)?),
        };
        table.sync_for_cpu(dir);
        Ok(())
    }

    fn end_cpu_access(&self, dir: DataDirection) -> Result {
        match &*self.cpu_sg.lock() {
            Some(table) => {
                table.sync_for_device(dir);
                Ok(())
            }
            None => Err(EINVAL),
        }
    }
}

/// Makes a udmabuf of the ranges of `items`, and returns its file descriptor.
fn create(misc: &Device, create_flags: u32, items: &[uapi::udmabuf_create_item]) -> Result<isize> {
    // As C computes it: a negative limit is sign-extended, then shifted in 64 bits.
    // CAST: The sign extension is C's `(u64)` of an `int`.
    let pglimit = (i64::from(module_parameters::size_limit_mb.value()) as u64)
        .wrapping_mul(1 << 20)
        >> PAGE_SHIFT;
    let mut pgcnt: u64 = 0;
    let mut max_per_range: u64 = 0;
    for item in items {
        if item.offset % PAGE_SIZE as u64 != 0 || item.size % PAGE_SIZE as u64 != 0 {
            return Err(EINVAL);
        }
        let pages = item.size >> PAGE_SHIFT;
        pgcnt = pgcnt.wrapping_add(pages);
        if pgcnt > pglimit {
            return Err(EINVAL);
        }
        max_per_range = max_per_range.max(pages);
    }
    if pgcnt == 0 {
        return Err(EINVAL);
    }

    let mut pinning = Pinning::with_capacity(
        usize::try_from(pgcnt).map_err(|_| ENOMEM)?,
        usize::try_from(max_per_range).map_err(|_| ENOMEM)?,
    )?;
    for item in items {
        let memfd = LocalFile::fget(item.memfd).map_err(|_| EBADFD)?;
        // Adding a seal takes the lock exclusively: the seals checked are the seals of the pin.
        let _lock = memfd.inode().lock_shared();
        if !memfd::is_shmem_or_hugetlb(&memfd) {
            return Err(EBADFD);
        }
        let seals = memfd::seals(&memfd).map_err(|err| if err == EINVAL { EBADFD } else { err })?;
        if seals & SEALS_WANTED != SEALS_WANTED || seals & SEALS_DENIED != 0 {
            return Err(EINVAL);
        }
        // CAST: The range's pages were added up in `pgcnt`, which fits.
        pinning.pin(&memfd, item.offset, (item.size >> PAGE_SHIFT) as usize)?;
    }
    let pinned = pinning.finish();

    let size = pinned.len() << PAGE_SHIFT;
    let data = try_pin_init!(Udmabuf {
        cpu_sg <- new_mutex!(None),
        pages: pinned,
        misc: misc.into(),
    });
    let buf = DmaBuf::export(data, size, flags::O_RDWR)?;

    let fd_flags = if create_flags & uapi::UDMABUF_FLAGS_CLOEXEC != 0 {
        flags::O_CLOEXEC
    } else {
        0
    };
    // A failure drops the buffer, whose release unpins its pages.
    let fd = FileDescriptorReservation::get_unused_fd_flags(fd_flags)?;
    Ok(DmaBuf::install(buf, fd) as isize)
}

/// `UDMABUF_CREATE`: one range.
fn ioctl_create(misc: &Device, arg: usize) -> Result<isize> {
    let create = UserSlice::new(UserPtr::from_addr(arg), size_of::<Create>())
        .reader()
        .read::<Create>()?
        .0;
    let item = uapi::udmabuf_create_item {
        memfd: create.memfd,
        __pad: 0,
        offset: create.offset,
        size: create.size,
    };
    self::create(misc, create.flags, &[item])
}

/// `UDMABUF_CREATE_LIST`: up to `list_limit` ranges.
fn ioctl_create_list(misc: &Device, arg: usize) -> Result<isize> {
    let head_size = size_of::<CreateList>();
    let head = UserSlice::new(UserPtr::from_addr(arg), head_size)
        .reader()
        .read::<CreateList>()?
        .0;
    // As C compares them: the limit, an `int`, is converted to the count's `u32`.
    // CAST: That conversion.
    if head.count > module_parameters::list_limit.value() as u32 {
        return Err(EINVAL);
    }
    let count = head.count as usize;
    let mut items = KVec::with_capacity(count, GFP_KERNEL | __GFP_NOWARN)?;
    let mut reader = UserSlice::new(
        UserPtr::from_addr(arg.wrapping_add(head_size)),
        count * size_of::<Item>(),
    )
    .reader();
    for _ in 0..count {
        items.push(reader.read::<Item>()?.0, GFP_KERNEL)?;
    }
    create(misc, head.flags, &items)
}

/// `/dev/udmabuf`: each open file refers to the misc device.
struct UdmabufDevice;

#[vtable]
impl MiscDevice for UdmabufDevice {
    type Ptr = ARef<Device>;

    fn open(_file: &File, misc: &MiscDeviceRegistration<Self>) -> Result<ARef<Device>> {
        Ok(misc.device().into())
    }

    fn ioctl(misc: &Device, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        match cmd {
            UDMABUF_CREATE => ioctl_create(misc, arg),
            UDMABUF_CREATE_LIST => ioctl_create_list(misc, arg),
            _ => Err(ENOTTY),
        }
    }

    // As C: the same handler, with no `compat_ptr()`.
    #[cfg(CONFIG_COMPAT)]
    fn compat_ioctl(misc: &Device, file: &File, cmd: u32, arg: usize) -> Result<isize> {
        Self::ioctl(misc, file, cmd, arg)
    }
}

#[pin_data]
struct UdmabufModule {
    #[pin]
    misc: MiscDeviceRegistration<UdmabufDevice>,
}

impl kernel::InPlaceModule for UdmabufModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        let options = MiscDeviceOptions { name: c"udmabuf" };
        try_pin_init!(Self {
            misc <- MiscDeviceRegistration::register(options),
        })
        .pin_chain(|this| {
            // SAFETY: The misc device was just registered: nothing is mapped for it yet, and it
            // is on no bus.
            unsafe {
                this.misc
                    .device()
                    .dma_coerce_mask_and_coherent(DmaMask::new::<64>())
            }
            .inspect_err(|_| pr_err!("Could not setup DMA mask for udmabuf device\n"))
        })
    }
}
