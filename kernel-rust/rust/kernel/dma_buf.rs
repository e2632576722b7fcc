// SPDX-License-Identifier: GPL-2.0

//! DMA buffers shared between drivers, devices and processes.
//!
//! A dma-buf is a buffer that one driver (the exporter) makes and others use; userspace holds
//! and passes it on as a file descriptor.
//!
//! C header: [`include/linux/dma-buf.h`](srctree/include/linux/dma-buf.h)

use crate::{
    bindings,
    device::Device,
    dma::DataDirection,
    error::{from_err_ptr, from_result, to_result, VTABLE_DEFAULT_ERROR},
    fs::file::FileDescriptorReservation,
    mm::virt::{VmFault, VmFaultResult, VmaNew},
    module::this_module,
    prelude::*,
    scatterlist::{Mapped, SGTable},
    sync::{
        aref::{ARef, AlwaysRefCounted},
        SpinLock,
    },
    types::{ForeignOwnable, NotThreadSafe, Opaque},
    uapi, //
};
use core::{
    ffi::c_void,
    marker::PhantomData,
    ops::Deref,
    ptr::{self, NonNull},
};

/// The longest name `DMA_BUF_SET_NAME` sets, with its NUL.
pub const NAME_LEN: usize = uapi::DMA_BUF_NAME_LEN as usize;

/// The kernel's `struct dma_buf`, from its export to its final release.
///
/// A dma-buf lives for as long as a reference to its file is held and, after that, until the
/// dentry of its file is freed: readers of `/proc/PID/fd` may still be looking at the name of a
/// file they found there. `Buffer` is what stays valid for that whole time. It takes no
/// reference and gives no access to the file, which may be gone already.
///
/// # Invariants
///
/// A `&Buffer` is only valid while the buffer it wraps is exported and not released.
#[repr(transparent)]
pub struct Buffer(Opaque<bindings::dma_buf>);

// SAFETY: The methods of `Buffer` read fields that do not change after export, or take the lock
// that protects them.
unsafe impl Sync for Buffer {}

impl Buffer {
    /// Creates a reference to a [`Buffer`] from a valid pointer.
    ///
    /// # Safety
    ///
    /// The caller must ensure that `ptr` points at an exported dma-buf that is not released for
    /// the duration of `'a`.
    #[inline]
    pub unsafe fn from_raw<'a>(ptr: *const bindings::dma_buf) -> &'a Buffer {
        // SAFETY: The caller guarantees that the pointer is valid for `'a`. The cast is okay
        // because `Buffer` is `repr(transparent)`.
        unsafe { &*ptr.cast() }
    }

    /// Returns a raw pointer to the inner C struct.
    #[inline]
    pub fn as_ptr(&self) -> *mut bindings::dma_buf {
        self.0.get()
    }

    /// Returns the size of the buffer in bytes, which is set at export and never changes.
    #[inline]
    pub fn size(&self) -> usize {
        // SAFETY: The buffer is valid by the type invariants; `size` does not change after export.
        unsafe { (*self.as_ptr()).size }
    }

    /// Copies the name userspace gave the buffer with `DMA_BUF_SET_NAME` into `buf`.
    ///
    /// The name is read under `name_lock`, as it may be set at any time. Returns `None` when the
    /// buffer has no name, or an empty one.
    pub fn name<'a>(&self, buf: &'a mut [u8; NAME_LEN]) -> Option<&'a CStr> {
        // SAFETY: The buffer is valid by the type invariants.
        let name_lock = unsafe { core::ptr::addr_of_mut!((*self.as_ptr()).name_lock) };

        // SAFETY: `name_lock` is initialised at export and lives as long as the buffer.
        let lock = unsafe { SpinLock::<()>::from_raw(name_lock) };
        let len = {
            let _guard = lock.lock();

            // SAFETY: `name_lock` is held, so `name` is NULL or a NUL-terminated string that
            // stays allocated until the lock is released.
            let name = unsafe { (*self.as_ptr()).name };
            if name.is_null() {
                return None;
            }

            // SAFETY: As above, `name` is a valid NUL-terminated string while the lock is held.
            let name = unsafe { CStr::from_char_ptr(name) }.to_bytes();

            // `DMA_BUF_SET_NAME` refuses longer names; a name that did not fit would show as no
            // name, as `strscpy()` failing shows it in C.
            if name.len() >= NAME_LEN {
                return None;
            }
            buf[..name.len()].copy_from_slice(name);
            name.len()
        };
        if len == 0 {
            return None;
        }
        buf[len] = 0;
        CStr::from_bytes_with_nul(&buf[..=len]).ok()
    }
}

/// A reference to an exported dma-buf: a reference to its file.
///
/// An exporter gets it from [`DmaBuf::export`], an importer from whoever gave it the buffer. The
/// buffer is not released while an `ARef<DmaBuf>` exists. It dereferences to [`Buffer`].
///
/// # Invariants
///
/// A `&DmaBuf` is a dma-buf whose file is referenced for as long as the `&DmaBuf` exists: the
/// buffer is exported and not released.
#[repr(transparent)]
pub struct DmaBuf(Opaque<bindings::dma_buf>);

// SAFETY: A reference to a dma-buf's file may be dropped on any task.
unsafe impl Send for DmaBuf {}

// SAFETY: The core serialises what it must of the calls made through a shared `DmaBuf`.
unsafe impl Sync for DmaBuf {}

// SAFETY: The type invariants guarantee that `DmaBuf` is always refcounted, through its file.
unsafe impl AlwaysRefCounted for DmaBuf {
    #[inline]
    fn inc_ref(&self) {
        // SAFETY: The existence of a shared reference means that the file's refcount is nonzero.
        unsafe { bindings::get_dma_buf(self.as_ptr()) };
    }

    #[inline]
    unsafe fn dec_ref(obj: NonNull<DmaBuf>) {
        // SAFETY: The caller passes us the ownership of a reference to the file, which we drop.
        unsafe { bindings::dma_buf_put(obj.cast().as_ptr()) };
    }
}

impl Deref for DmaBuf {
    type Target = Buffer;

    #[inline]
    fn deref(&self) -> &Buffer {
        // SAFETY: By the type invariants, the buffer is exported and not released while `self`
        // lives.
        unsafe { Buffer::from_raw(self.as_ptr()) }
    }
}

impl DmaBuf {
    /// Returns a raw pointer to the inner C struct.
    #[inline]
    pub fn as_ptr(&self) -> *mut bindings::dma_buf {
        self.0.get()
    }

    /// Exports a buffer of `size` bytes whose operations are `T`'s, on `data`.
    ///
    /// `flags` are the flags of the buffer's file (`O_RDWR`, say). The data belongs to the buffer
    /// from now on: the operations get it, and it is dropped when the buffer is released, after
    /// the last reference to its file, attachment, mapping and vmap is gone. When the export
    /// fails, it is dropped at once.
    pub fn export<T: Exporter>(
        data: impl PinInit<T, Error>,
        size: usize,
        flags: u32,
    ) -> Result<ARef<DmaBuf>> {
        let data = <Pin<KBox<T>>>::into_foreign(KBox::pin_init(data, GFP_KERNEL)?);
        let info = bindings::dma_buf_export_info {
            exp_name: T::NAME.as_char_ptr(),
            owner: this_module::<T::OwnerModule>().as_ptr(),
            ops: Ops::<T>::build(),
            size,
            flags: flags as c_int,
            resv: ptr::null_mut(),
            priv_: data,
        };

        // SAFETY: `info` is a valid export description; its operations are those of `T`, which
        // get `data` back as a `Pin<KBox<T>>`.
        let buf = match from_err_ptr(unsafe { bindings::dma_buf_export(&info) }) {
            Ok(buf) => buf,
            Err(err) => {
                // SAFETY: The export failed, so the core has not kept `data`, which came from
                // `into_foreign()` above.
                drop(unsafe { <Pin<KBox<T>>>::from_foreign(data) });
                return Err(err);
            }
        };

        // SAFETY: `dma_buf_export()` returned a buffer whose file has one reference, ours. The
        // cast is okay because `DmaBuf` is `repr(transparent)`.
        Ok(unsafe { ARef::from_raw(NonNull::new_unchecked(buf.cast())) })
    }

    /// Installs the buffer's file in the file descriptor reserved by `fd`, and returns it.
    ///
    /// The reference `this` holds goes to the file descriptor table. Reserve the descriptor after
    /// the export, as `dma_buf_fd()` does: a failure to reserve it then drops the buffer, whose
    /// release undoes the export.
    pub fn install(this: ARef<Self>, fd: FileDescriptorReservation) -> u32 {
        let fd = fd.into_raw_fd();
        let buf = ARef::into_raw(this);
        // SAFETY: `fd` is reserved and not used yet; `dma_buf_fd_install()` installs the
        // buffer's file with the reference we give it, and emits the `dma_buf_fd` trace event.
        // CAST: Reserved file descriptors are non-negative `int`s.
        unsafe { bindings::dma_buf_fd_install(buf.as_ptr().cast(), fd as c_int) };
        fd
    }

    /// Attaches `dev` to the buffer, as an importer that does not pin (a static importer).
    ///
    /// The device is detached when the returned [`Attached`] is dropped.
    pub fn attach<'a>(&'a self, dev: &Device) -> Result<Attached<'a>> {
        // SAFETY: The buffer is exported and `dev` is a valid device.
        let attach =
            from_err_ptr(unsafe { bindings::dma_buf_attach(self.as_ptr(), dev.as_raw()) })?;

        // INVARIANT: `dma_buf_attach()` returned an attachment of `self`, which we detach.
        Ok(Attached {
            buf: self,
            // SAFETY: `dma_buf_attach()` returns a valid pointer or an error.
            attach: unsafe { NonNull::new_unchecked(attach) },
        })
    }

    /// Maps the buffer into the kernel's address space, taking the reservation lock.
    ///
    /// The core counts the maps of a buffer: the exporter maps it the first time only, and unmaps
    /// it when the last [`VMap`] is dropped.
    pub fn vmap_unlocked(&self) -> Result<VMap<'_>> {
        let mut map = bindings::iosys_map::default();
        // SAFETY: The buffer is exported and `map` is a valid `struct iosys_map`.
        to_result(unsafe { bindings::dma_buf_vmap_unlocked(self.as_ptr(), &mut map) })?;

        // INVARIANT: `dma_buf_vmap_unlocked()` succeeded and filled in `map`.
        Ok(VMap { buf: self, map })
    }

    /// Tells the exporter that the CPU is about to access the buffer in direction `dir`.
    ///
    /// The core waits for the buffer's fences, then calls the exporter's `begin_cpu_access`.
    pub fn begin_cpu_access(&self, dir: DataDirection) -> Result {
        // SAFETY: The buffer is exported.
        to_result(unsafe { bindings::dma_buf_begin_cpu_access(self.as_ptr(), dir.into()) })
    }

    /// Tells the exporter that the CPU is done accessing the buffer in direction `dir`.
    pub fn end_cpu_access(&self, dir: DataDirection) -> Result {
        // SAFETY: The buffer is exported.
        to_result(unsafe { bindings::dma_buf_end_cpu_access(self.as_ptr(), dir.into()) })
    }
}

/// An attachment of a device to a dma-buf, as the exporter's operations see it.
///
/// # Invariants
///
/// A `&Attachment` is an attachment of an exported buffer, not detached for as long as the
/// `&Attachment` exists.
#[repr(transparent)]
pub struct Attachment(Opaque<bindings::dma_buf_attachment>);

impl Attachment {
    /// Creates a reference to an [`Attachment`] from a valid pointer.
    ///
    /// # Safety
    ///
    /// `ptr` must point at an attachment that is not detached for the duration of `'a`.
    #[inline]
    unsafe fn from_raw<'a>(ptr: *mut bindings::dma_buf_attachment) -> &'a Attachment {
        // SAFETY: The caller guarantees that the pointer is valid for `'a`. The cast is okay
        // because `Attachment` is `repr(transparent)`.
        unsafe { &*ptr.cast() }
    }

    /// Returns a raw pointer to the inner C struct.
    #[inline]
    pub fn as_ptr(&self) -> *mut bindings::dma_buf_attachment {
        self.0.get()
    }

    /// Returns the device that is attached, for which the buffer is mapped.
    pub fn dev(&self) -> &Device {
        // SAFETY: The attachment is valid by the type invariants, and its device is referenced
        // by the importer until it is detached.
        unsafe { Device::from_raw((*self.as_ptr()).dev) }
    }

    /// Returns whether the importer is dynamic: it pins the buffer itself, and handles moves.
    pub fn is_dynamic(&self) -> bool {
        // SAFETY: The attachment is valid by the type invariants; `importer_ops` is set at
        // attach and never changes.
        !unsafe { (*self.as_ptr()).importer_ops }.is_null()
    }

    /// Returns whether the importer can access the buffer with peer-to-peer DMA.
    pub fn peer2peer(&self) -> bool {
        // SAFETY: The attachment is valid by the type invariants; `peer2peer` is set at attach.
        unsafe { (*self.as_ptr()).peer2peer }
    }
}

/// A device attached to a dma-buf by an importer, detached on drop.
///
/// # Invariants
///
/// `attach` is an attachment of `buf`, made by `dma_buf_attach()` and not yet detached.
pub struct Attached<'a> {
    buf: &'a DmaBuf,
    attach: NonNull<bindings::dma_buf_attachment>,
}

impl Deref for Attached<'_> {
    type Target = Attachment;

    #[inline]
    fn deref(&self) -> &Attachment {
        // SAFETY: By the type invariants, the attachment is not detached while `self` lives.
        unsafe { Attachment::from_raw(self.attach.as_ptr()) }
    }
}

impl Attached<'_> {
    /// Maps the buffer for the attached device in direction `dir`, taking the reservation lock.
    ///
    /// The exporter makes the table; it is unmapped when the returned [`MappedAttachment`] is
    /// dropped.
    pub fn map_unlocked(&self, dir: DataDirection) -> Result<MappedAttachment<'_>> {
        // SAFETY: By the type invariants, the attachment is valid.
        let sgt = from_err_ptr(unsafe {
            bindings::dma_buf_map_attachment_unlocked(self.attach.as_ptr(), dir.into())
        })?;

        // INVARIANT: The core returned a table mapped for this attachment with `dir`.
        Ok(MappedAttachment {
            attached: self,
            // SAFETY: `dma_buf_map_attachment_unlocked()` returns a valid pointer or an error.
            sgt: unsafe { NonNull::new_unchecked(sgt) },
            dir,
        })
    }
}

impl Drop for Attached<'_> {
    fn drop(&mut self) {
        // SAFETY: By the type invariants, `attach` is an attachment of `buf` not yet detached;
        // every mapping of it borrowed `self` and is gone.
        unsafe { bindings::dma_buf_detach(self.buf.as_ptr(), self.attach.as_ptr()) };
    }
}

/// A buffer mapped for an attached device, unmapped on drop.
///
/// It dereferences to the scatter-gather table the exporter made.
///
/// # Invariants
///
/// `sgt` is what `dma_buf_map_attachment_unlocked()` returned for `attached` and `dir`, not yet
/// unmapped.
pub struct MappedAttachment<'a> {
    attached: &'a Attached<'a>,
    sgt: NonNull<bindings::sg_table>,
    dir: DataDirection,
}

impl Deref for MappedAttachment<'_> {
    type Target = SGTable;

    #[inline]
    fn deref(&self) -> &SGTable {
        // SAFETY: By the type invariants, the table is mapped while `self` lives, and the
        // exporter does not change it meanwhile.
        unsafe { SGTable::from_raw(self.sgt.as_ptr()) }
    }
}

impl Drop for MappedAttachment<'_> {
    fn drop(&mut self) {
        // SAFETY: By the type invariants, `sgt` was mapped for this attachment with `dir`.
        unsafe {
            bindings::dma_buf_unmap_attachment_unlocked(
                self.attached.attach.as_ptr(),
                self.sgt.as_ptr(),
                self.dir.into(),
            )
        };
    }
}

/// Where a buffer is mapped in the kernel's address space: `struct iosys_map`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoSysMap {
    /// System memory, accessed with plain loads and stores.
    System(NonNull<c_void>),
    /// I/O memory, accessed with the `io*` accessors only.
    Io(NonNull<c_void>),
}

impl IoSysMap {
    /// Reads a `struct iosys_map` that is set.
    fn from_raw(map: &bindings::iosys_map) -> Option<Self> {
        // SAFETY: Both members of the union are pointers; `is_iomem` says which one it is.
        let vaddr = unsafe { map.__bindgen_anon_1.vaddr };
        let vaddr = NonNull::new(vaddr)?;
        Some(if map.is_iomem {
            Self::Io(vaddr)
        } else {
            Self::System(vaddr)
        })
    }

    fn to_raw(self) -> bindings::iosys_map {
        let (vaddr, is_iomem) = match self {
            Self::System(vaddr) => (vaddr, false),
            Self::Io(vaddr) => (vaddr, true),
        };
        bindings::iosys_map {
            __bindgen_anon_1: bindings::iosys_map__bindgen_ty_1 {
                vaddr: vaddr.as_ptr(),
            },
            is_iomem,
        }
    }
}

/// A kernel mapping of a dma-buf, unmapped on drop.
///
/// # Invariants
///
/// `map` is what `dma_buf_vmap_unlocked()` filled in for `buf`, not yet unmapped.
pub struct VMap<'a> {
    buf: &'a DmaBuf,
    map: bindings::iosys_map,
}

impl VMap<'_> {
    /// Returns where the buffer is mapped.
    pub fn map(&self) -> IoSysMap {
        // A successful vmap always sets the address (the core WARNs otherwise).
        IoSysMap::from_raw(&self.map).unwrap_or(IoSysMap::System(NonNull::dangling()))
    }
}

impl Drop for VMap<'_> {
    fn drop(&mut self) {
        // SAFETY: By the type invariants, `map` is a vmap of `buf` not yet unmapped.
        unsafe { bindings::dma_buf_vunmap_unlocked(self.buf.as_ptr(), &mut self.map) };
    }
}

/// A mapping of a buffer into a process, being set up by [`Exporter::mmap`].
///
/// It dereferences to [`VmaNew`]. The core checked that the mapping is within the buffer; its
/// file is the buffer's own, so the buffer outlives every page table entry of it.
///
/// # Invariants
///
/// `vma` maps the buffer whose data `data` points at, and its file is the buffer's file.
pub struct DmaBufVma<'a, T: Exporter> {
    vma: &'a VmaNew,
    data: *mut c_void,
    _exporter: PhantomData<T>,
}

impl<T: Exporter> Deref for DmaBufVma<'_, T> {
    type Target = VmaNew;

    #[inline]
    fn deref(&self) -> &VmaNew {
        self.vma
    }
}

impl<T: Exporter> DmaBufVma<'_, T> {
    /// Has [`Exporter::fault`] handle the page faults of the mapping.
    pub fn set_fault_handler(&self) {
        build_assert!(T::HAS_FAULT, "set_fault_handler() needs Exporter::fault()");
        // SAFETY: The operations are static. They take `data` back as the exporter's data,
        // which lives until the buffer is released: by the type invariants that is after every
        // vma mapping it is gone, as each holds a reference to the buffer's file, and `VmaNew`
        // cannot change a vma's file.
        unsafe { self.vma.set_vm_ops(&FaultOps::<T>::VM_OPS, self.data) };
    }
}

/// The `struct vm_operations_struct` of an exporter `T`'s mappings.
struct FaultOps<T>(PhantomData<T>);

impl<T: Exporter> FaultOps<T> {
    const VM_OPS: bindings::vm_operations_struct = bindings::vm_operations_struct {
        fault: Some(Self::fault),
        ..pin_init::zeroed()
    };

    /// # Safety
    ///
    /// `vmf` must be a fault of a vma whose operations `set_fault_handler()` set.
    unsafe extern "C" fn fault(vmf: *mut bindings::vm_fault) -> bindings::vm_fault_t {
        // SAFETY: The core calls this for a fault being handled, whose vma holds the exporter's
        // data in `vm_private_data` (`set_fault_handler()`), valid while the vma exists.
        let (vmf, data) = unsafe {
            let vmf = VmFault::from_raw(vmf);
            let data = <Pin<KBox<T>>>::borrow((*vmf.vma().as_ptr()).vm_private_data);
            (vmf, data)
        };
        T::fault(&data, vmf).as_raw()
    }
}

/// Proof that the reservation lock of a buffer is held.
///
/// The core calls some operations of an exporter with the buffer's reservation lock held and
/// gives them this token: an operation that gets one must not take the lock again, which would
/// deadlock (lockdep reports it). It cannot be made outside this module, nor sent to another
/// task.
///
/// # Invariants
///
/// The reservation lock of the buffer is held by the current task for `'a`.
pub struct ResvHeld<'a> {
    _buf: PhantomData<&'a Buffer>,
    _not_send: NotThreadSafe,
}

impl ResvHeld<'_> {
    /// # Safety
    ///
    /// The caller must hold the reservation lock of the buffer for the lifetime of the token.
    unsafe fn new() -> Self {
        // INVARIANT: The caller holds the lock.
        Self {
            _buf: PhantomData,
            _not_send: NotThreadSafe,
        }
    }
}

/// The operations of a dma-buf exporter.
///
/// The implementing type is the buffer's data, given to [`DmaBuf::export`] and dropped when the
/// buffer is released. The core calls:
///
/// - `map` and `unmap` with the reservation lock held ([`ResvHeld`]); the table `map` returns
///   is given back to `unmap`. Every mapping is unmapped before its attachment is detached.
/// - `vmap` and `vunmap` with the reservation lock held, `vmap` for the first kernel mapping and
///   `vunmap` for the last, with what `vmap` returned.
/// - `attach`, `detach`, `begin_cpu_access` and `end_cpu_access` without it, and they may take
///   it. The CPU access ones may run concurrently with each other and with everything else.
///
/// The buffer is released after its last file reference, attachment and kernel mapping are gone,
/// in process context: that is when the data is dropped.
///
/// # Examples
///
/// ```
/// use kernel::{
///     dma::{attrs, DataDirection},
///     dma_buf::{Attachment, DmaBuf, Exporter, ResvHeld},
///     fs::file::flags,
///     page::{Page, PAGE_SIZE},
///     prelude::*,
///     scatterlist::{Mapped, SGTable},
///     sync::aref::ARef,
/// };
///
/// /// A buffer of one page.
/// #[pin_data]
/// struct OnePage {
///     page: Page,
/// }
///
/// #[vtable]
/// impl Exporter for OnePage {
///     const NAME: &'static CStr = c"one_page";
///
///     fn map(
///         &self,
///         attach: &Attachment,
///         dir: DataDirection,
///         _resv: &ResvHeld<'_>,
///     ) -> Result<SGTable<Mapped>> {
///         let attrs = attrs::DMA_ATTR_SKIP_CPU_SYNC;
///         // SAFETY: The page is the buffer's: it stays until the buffer is released, which
///         // comes after every mapping is unmapped.
///         unsafe { SGTable::map(attach.dev(), [&self.page], dir, attrs, GFP_KERNEL) }
///     }
/// }
///
/// fn export_one_page() -> Result<ARef<DmaBuf>> {
///     let page = try_pin_init!(OnePage {
///         page: Page::alloc_page(GFP_KERNEL | __GFP_ZERO)?,
///     });
///     DmaBuf::export(page, PAGE_SIZE, flags::O_RDWR)
/// }
/// ```
#[vtable]
pub trait Exporter: Sized + Send + Sync {
    /// The exporter's name, which `/proc/PID/fdinfo` shows as `exp_name`.
    const NAME: &'static CStr;

    /// Maps the buffer for `attach`'s device in direction `dir`.
    fn map(
        &self,
        attach: &Attachment,
        dir: DataDirection,
        resv: &ResvHeld<'_>,
    ) -> Result<SGTable<Mapped>>;

    /// Unmaps a table that [`Exporter::map`] made for `attach`. Dropping it unmaps it.
    fn unmap(
        &self,
        _attach: &Attachment,
        table: SGTable<Mapped>,
        _dir: DataDirection,
        _resv: &ResvHeld<'_>,
    ) {
        drop(table);
    }

    /// Accepts or refuses a device that attaches (`EBUSY`: the buffer's memory is out of its
    /// reach).
    fn attach(&self, _attach: &Attachment) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Forgets a device that is detached.
    fn detach(&self, _attach: &Attachment) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Maps the buffer into the kernel's address space.
    fn vmap(&self, _resv: &ResvHeld<'_>) -> Result<IoSysMap> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Unmaps what [`Exporter::vmap`] mapped.
    fn vunmap(&self, _map: IoSysMap, _resv: &ResvHeld<'_>) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Sets up a mapping of the buffer into a process, without the reservation lock and with
    /// the process's `mmap_lock` held for writing.
    fn mmap(&self, _vma: &DmaBufVma<'_, Self>) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Handles a page fault in a mapping whose fault handler [`Exporter::mmap`] set.
    fn fault(&self, _vmf: &VmFault) -> VmFaultResult {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Makes the buffer coherent for the CPU to access it in direction `dir`.
    fn begin_cpu_access(&self, _dir: DataDirection) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Makes the buffer coherent for devices after the CPU accessed it in direction `dir`.
    fn end_cpu_access(&self, _dir: DataDirection) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
}

/// The `struct dma_buf_ops` of an exporter `T`.
struct Ops<T>(PhantomData<T>);

impl<T: Exporter> Ops<T> {
    const OPS: bindings::dma_buf_ops = bindings::dma_buf_ops {
        attach: if T::HAS_ATTACH {
            Some(Self::attach)
        } else {
            None
        },
        detach: if T::HAS_DETACH {
            Some(Self::detach)
        } else {
            None
        },
        map_dma_buf: Some(Self::map_dma_buf),
        unmap_dma_buf: Some(Self::unmap_dma_buf),
        release: Some(Self::release),
        begin_cpu_access: if T::HAS_BEGIN_CPU_ACCESS {
            Some(Self::begin_cpu_access)
        } else {
            None
        },
        end_cpu_access: if T::HAS_END_CPU_ACCESS {
            Some(Self::end_cpu_access)
        } else {
            None
        },
        mmap: if T::HAS_MMAP { Some(Self::mmap) } else { None },
        vmap: if T::HAS_VMAP { Some(Self::vmap) } else { None },
        vunmap: if T::HAS_VUNMAP {
            Some(Self::vunmap)
        } else {
            None
        },
        ..pin_init::zeroed()
    };

    const fn build() -> &'static bindings::dma_buf_ops {
        &Self::OPS
    }

    /// The exporter's data of a buffer exported with these operations.
    ///
    /// # Safety
    ///
    /// `buf` must be a buffer exported by [`DmaBuf::export::<T>`] and not released for `'a`.
    unsafe fn data<'a>(buf: *mut bindings::dma_buf) -> Pin<&'a T> {
        // SAFETY: The buffer is valid; its `priv` came from `into_foreign()` in `export()`, and
        // is only taken back by `release()`.
        unsafe { <Pin<KBox<T>>>::borrow((*buf).priv_) }
    }

    /// # Safety
    ///
    /// `attach` must be a valid attachment of a buffer exported with these operations.
    unsafe extern "C" fn attach(
        buf: *mut bindings::dma_buf,
        attach: *mut bindings::dma_buf_attachment,
    ) -> c_int {
        // SAFETY: The core calls this with a buffer exported with these operations and an
        // attachment that is not detached before `detach()` returns.
        let (data, attach) = unsafe { (Self::data(buf), Attachment::from_raw(attach)) };
        from_result(|| {
            T::attach(&data, attach)?;
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// `attach` must be a valid attachment of a buffer exported with these operations.
    unsafe extern "C" fn detach(
        buf: *mut bindings::dma_buf,
        attach: *mut bindings::dma_buf_attachment,
    ) {
        // SAFETY: As in `attach()`.
        let (data, attach) = unsafe { (Self::data(buf), Attachment::from_raw(attach)) };
        T::detach(&data, attach);
    }

    /// # Safety
    ///
    /// `attach` must be a valid attachment of a buffer exported with these operations, and its
    /// reservation lock must be held.
    unsafe extern "C" fn map_dma_buf(
        attach: *mut bindings::dma_buf_attachment,
        dir: bindings::dma_data_direction,
    ) -> *mut bindings::sg_table {
        // SAFETY: The core calls this with a valid attachment of a buffer exported with these
        // operations, holding the buffer's reservation lock for the duration of the call.
        let (data, attach, resv) = unsafe {
            (
                Self::data((*attach).dmabuf),
                Attachment::from_raw(attach),
                ResvHeld::new(),
            )
        };
        let table = DataDirection::try_from(dir)
            .and_then(|dir| T::map(&data, attach, dir, &resv))
            .and_then(|table| KBox::new(table, GFP_KERNEL).map_err(Error::from));
        match table {
            Ok(table) => table.into_foreign(),
            Err(err) => err.to_ptr(),
        }
    }

    /// # Safety
    ///
    /// `sgt` must come from `map_dma_buf()` for `attach`, and the reservation lock must be held.
    unsafe extern "C" fn unmap_dma_buf(
        attach: *mut bindings::dma_buf_attachment,
        sgt: *mut bindings::sg_table,
        dir: bindings::dma_data_direction,
    ) {
        // SAFETY: The core calls this with an attachment of a buffer exported with these
        // operations and a table `map_dma_buf()` returned for it, which it gives back, holding
        // the reservation lock.
        let (data, attach, table, resv) = unsafe {
            (
                Self::data((*attach).dmabuf),
                Attachment::from_raw(attach),
                SGTable::<Mapped>::from_foreign(sgt),
                ResvHeld::new(),
            )
        };
        match DataDirection::try_from(dir) {
            Ok(dir) => T::unmap(&data, attach, KBox::into_inner(table), dir, &resv),
            // The table was mapped with a valid direction: unmap it with that one.
            Err(_) => drop(table),
        }
    }

    /// # Safety
    ///
    /// `buf` must be a buffer exported with these operations, being released.
    unsafe extern "C" fn release(buf: *mut bindings::dma_buf) {
        // SAFETY: The core calls this once, last, with no file, attachment or vmap left: the
        // data that `export()` gave away is ours again.
        drop(unsafe { <Pin<KBox<T>>>::from_foreign((*buf).priv_) });
    }

    /// # Safety
    ///
    /// `buf` must be a buffer exported with these operations and not released.
    unsafe extern "C" fn begin_cpu_access(
        buf: *mut bindings::dma_buf,
        dir: bindings::dma_data_direction,
    ) -> c_int {
        // SAFETY: The core calls this with a buffer exported with these operations, referenced
        // by its caller.
        let data = unsafe { Self::data(buf) };
        from_result(|| {
            T::begin_cpu_access(&data, DataDirection::try_from(dir)?)?;
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// `buf` must be a buffer exported with these operations and not released.
    unsafe extern "C" fn end_cpu_access(
        buf: *mut bindings::dma_buf,
        dir: bindings::dma_data_direction,
    ) -> c_int {
        // SAFETY: As in `begin_cpu_access()`.
        let data = unsafe { Self::data(buf) };
        from_result(|| {
            T::end_cpu_access(&data, DataDirection::try_from(dir)?)?;
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// `buf` must be a buffer exported with these operations and `vma` a mapping of it being
    /// set up, whose file is the buffer's.
    unsafe extern "C" fn mmap(
        buf: *mut bindings::dma_buf,
        vma: *mut bindings::vm_area_struct,
    ) -> c_int {
        // SAFETY: The core calls this with a buffer exported with these operations and a vma
        // being set up, whose file it made the buffer's (`dma_buf_mmap_internal()` is the
        // buffer file's own `mmap`, `dma_buf_mmap()` sets it).
        let (data, vma) = unsafe { (Self::data(buf), VmaNew::from_raw(vma)) };
        // INVARIANT: As above: the vma maps this buffer and its file is the buffer's.
        let vma = DmaBufVma {
            vma,
            // SAFETY: The buffer is valid.
            data: unsafe { (*buf).priv_ },
            _exporter: PhantomData,
        };
        from_result(|| {
            T::mmap(&data, &vma)?;
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// `buf` must be a buffer exported with these operations, its reservation lock held, and
    /// `map` a valid `struct iosys_map`.
    unsafe extern "C" fn vmap(buf: *mut bindings::dma_buf, map: *mut bindings::iosys_map) -> c_int {
        // SAFETY: The core calls this with a buffer exported with these operations, holding its
        // reservation lock, and a map to fill in.
        let (data, resv) = unsafe { (Self::data(buf), ResvHeld::new()) };
        from_result(|| {
            let vmap = T::vmap(&data, &resv)?;
            // SAFETY: `map` is valid for writes.
            unsafe { map.write(vmap.to_raw()) };
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// `buf` must be a buffer exported with these operations, its reservation lock held, and
    /// `map` what `vmap()` filled in.
    unsafe extern "C" fn vunmap(buf: *mut bindings::dma_buf, map: *mut bindings::iosys_map) {
        // SAFETY: The core calls this with a buffer exported with these operations, holding its
        // reservation lock, and the map `vmap()` filled in.
        let (data, resv, map) = unsafe { (Self::data(buf), ResvHeld::new(), &*map) };
        if let Some(map) = IoSysMap::from_raw(map) {
            T::vunmap(&data, map, &resv);
        }
    }
}

#[cfg(CONFIG_RUST_DMA_BUF_KUNIT_TEST)]
#[macros::kunit_tests(rust_dma_buf)]
mod tests {
    use super::*;
    use crate::{
        device::Bound,
        dma::{attrs, DmaMask},
        faux,
        fs::file::flags,
        new_mutex,
        page::{AsPageIter, PAGE_SIZE},
        sync::{
            atomic::{Atomic, Relaxed},
            Arc, Mutex,
        },
        time::{delay::fsleep, Delta},
        uaccess::{UserPtr, UserSlice},
    };

    /// What the core called of the test exporter, and with which directions.
    struct Calls {
        attach: Atomic<u32>,
        detach: Atomic<u32>,
        map: Atomic<u32>,
        unmap: Atomic<u32>,
        vmap: Atomic<u32>,
        vunmap: Atomic<u32>,
        begin: Atomic<u32>,
        end: Atomic<u32>,
        mmap: Atomic<u32>,
        fault: Atomic<u32>,
        released: Atomic<u32>,
        /// Every operation that got a direction records it here.
        dir: Atomic<u32>,
    }

    impl Calls {
        fn new() -> Result<Arc<Self>> {
            let calls = Self {
                attach: Atomic::new(0),
                detach: Atomic::new(0),
                map: Atomic::new(0),
                unmap: Atomic::new(0),
                vmap: Atomic::new(0),
                vunmap: Atomic::new(0),
                begin: Atomic::new(0),
                end: Atomic::new(0),
                mmap: Atomic::new(0),
                fault: Atomic::new(0),
                released: Atomic::new(0),
                dir: Atomic::new(u32::MAX),
            };
            Ok(Arc::new(calls, GFP_KERNEL)?)
        }

        /// Waits up to a second for the buffer to be released: the last `fput()` of a kernel
        /// thread is deferred to a workqueue, and the release goes with it.
        fn released(&self) -> u32 {
            let mut waited = 0;
            while self.released.load(Relaxed) == 0 && waited < 100 {
                fsleep(Delta::from_millis(10));
                waited += 1;
            }
            self.released.load(Relaxed)
        }
    }

    /// Counts the release of the buffer that holds it.
    struct Released(Arc<Calls>);

    impl Drop for Released {
        fn drop(&mut self) {
            self.0.released.add(1, Relaxed);
        }
    }

    /// A buffer of vmalloc memory.
    #[pin_data]
    struct TestBuffer {
        #[pin]
        memory: Mutex<VVec<u8>>,
        calls: Arc<Calls>,
        released: Released,
    }

    impl TestBuffer {
        fn new(calls: &Arc<Calls>, size: usize) -> impl PinInit<Self, Error> + '_ {
            try_pin_init!(Self {
                memory <- new_mutex!(VVec::with_capacity(size, GFP_KERNEL)?),
                calls: calls.clone(),
                released: Released(calls.clone()),
            })
        }
    }

    #[vtable]
    impl Exporter for TestBuffer {
        const NAME: &'static CStr = c"rust_dma_buf_test";

        fn map(
            &self,
            attach: &Attachment,
            dir: DataDirection,
            _resv: &ResvHeld<'_>,
        ) -> Result<SGTable<Mapped>> {
            self.calls.map.add(1, Relaxed);
            self.calls.dir.store(dir as u32, Relaxed);
            let mut memory = self.memory.lock();
            // SAFETY: The memory is never reallocated, and is freed when the buffer is released,
            // after every mapping is unmapped.
            unsafe {
                SGTable::map(
                    attach.dev(),
                    memory.page_iter(),
                    dir,
                    attrs::DMA_ATTR_SKIP_CPU_SYNC,
                    GFP_KERNEL,
                )
            }
        }

        fn unmap(
            &self,
            _attach: &Attachment,
            table: SGTable<Mapped>,
            dir: DataDirection,
            _resv: &ResvHeld<'_>,
        ) {
            self.calls.unmap.add(1, Relaxed);
            self.calls.dir.store(dir as u32, Relaxed);
            drop(table);
        }

        fn attach(&self, _attach: &Attachment) -> Result {
            self.calls.attach.add(1, Relaxed);
            Ok(())
        }

        fn detach(&self, _attach: &Attachment) {
            self.calls.detach.add(1, Relaxed);
        }

        fn vmap(&self, _resv: &ResvHeld<'_>) -> Result<IoSysMap> {
            self.calls.vmap.add(1, Relaxed);
            let memory = self.memory.lock();
            Ok(IoSysMap::System(
                NonNull::new(memory.as_ptr().cast_mut().cast()).ok_or(ENOMEM)?,
            ))
        }

        fn vunmap(&self, _map: IoSysMap, _resv: &ResvHeld<'_>) {
            self.calls.vunmap.add(1, Relaxed);
        }

        fn begin_cpu_access(&self, dir: DataDirection) -> Result {
            self.calls.begin.add(1, Relaxed);
            self.calls.dir.store(dir as u32, Relaxed);
            Ok(())
        }

        fn end_cpu_access(&self, dir: DataDirection) -> Result {
            // As udmabuf: ending an access that never began is refused.
            if self.calls.begin.load(Relaxed) == 0 {
                return Err(EINVAL);
            }
            self.calls.end.add(1, Relaxed);
            self.calls.dir.store(dir as u32, Relaxed);
            Ok(())
        }

        fn mmap(&self, vma: &DmaBufVma<'_, Self>) -> Result {
            self.calls.mmap.add(1, Relaxed);
            vma.set_pfnmap()?;
            vma.set_fault_handler();
            Ok(())
        }

        fn fault(&self, vmf: &VmFault) -> VmFaultResult {
            self.calls.fault.add(1, Relaxed);
            let Some(vma) = vmf.vma().as_pfnmap_vma() else {
                return VmFaultResult::SIGBUS;
            };
            let mut memory = self.memory.lock();
            let Some(page) = memory.page_iter().nth(vmf.pgoff()) else {
                return VmFaultResult::SIGBUS;
            };
            // SAFETY: The memory is freed when the buffer is released, after every vma mapping
            // it is gone: each holds a reference to the buffer's file.
            unsafe { vma.vmf_insert_pfn(vmf.address(), page.pfn()) }
        }
    }

    /// A device to attach, which DMA can be mapped for.
    fn device() -> Result<faux::Registration> {
        let reg = faux::Registration::new(c"rust_dma_buf_test", None)?;
        // SAFETY: The device is new: nothing is mapped for it yet, and its bus sets no mask.
        unsafe { dev(&reg).dma_coerce_mask_and_coherent(DmaMask::new::<64>()) }?;
        Ok(reg)
    }

    fn dev(reg: &faux::Registration) -> &Device {
        let dev: &faux::Device<Bound> = reg.as_ref();
        let dev: &Device<Bound> = dev.as_ref();
        dev
    }

    const SIZE: usize = 4 * PAGE_SIZE;

    #[test]
    fn the_data_goes_with_the_last_reference() -> Result {
        let calls = Calls::new()?;
        let buf = DmaBuf::export(TestBuffer::new(&calls, SIZE), SIZE, flags::O_RDWR)?;
        assert_eq!(buf.size(), SIZE);
        let again = buf.clone();
        drop(buf);
        fsleep(Delta::from_millis(50));
        assert_eq!(calls.released.load(Relaxed), 0);
        drop(again);
        assert_eq!(calls.released(), 1);
        // Nothing but the release was called.
        assert_eq!(calls.map.load(Relaxed) + calls.vmap.load(Relaxed), 0);
        Ok(())
    }

    #[test]
    fn a_mapping_covers_the_buffer() -> Result {
        let calls = Calls::new()?;
        let reg = device()?;
        let dev = dev(&reg);
        let buf = DmaBuf::export(TestBuffer::new(&calls, SIZE), SIZE, flags::O_RDWR)?;
        {
            let attached = buf.attach(dev)?;
            assert_eq!(calls.attach.load(Relaxed), 1);
            assert!(!attached.is_dynamic());
            assert_eq!(attached.dev().as_raw(), dev.as_raw());
            {
                let mapped = attached.map_unlocked(DataDirection::FromDevice)?;
                assert_eq!(calls.map.load(Relaxed), 1);
                assert_eq!(calls.dir.load(Relaxed), DataDirection::FromDevice as u32);
                let mut len = 0;
                for entry in mapped.iter() {
                    assert_ne!(entry.dma_len(), 0);
                    len += entry.dma_len();
                }
                assert_eq!(len, SIZE as u64);
                assert_eq!(calls.unmap.load(Relaxed), 0);
            }
            assert_eq!(calls.unmap.load(Relaxed), 1);
            assert_eq!(calls.dir.load(Relaxed), DataDirection::FromDevice as u32);
            assert_eq!(calls.detach.load(Relaxed), 0);
        }
        assert_eq!(calls.detach.load(Relaxed), 1);
        assert_eq!(calls.released.load(Relaxed), 0);
        drop(buf);
        assert_eq!(calls.released(), 1);
        Ok(())
    }

    #[test]
    fn the_core_counts_kernel_mappings() -> Result {
        let calls = Calls::new()?;
        let buf = DmaBuf::export(TestBuffer::new(&calls, SIZE), SIZE, flags::O_RDWR)?;
        {
            let one = buf.vmap_unlocked()?;
            let two = buf.vmap_unlocked()?;
            // The exporter mapped it once; both maps are its map.
            assert_eq!(calls.vmap.load(Relaxed), 1);
            assert_eq!(one.map(), two.map());
            let IoSysMap::System(vaddr) = one.map() else {
                return Err(EINVAL);
            };
            // SAFETY: The map is the buffer's memory, `SIZE` bytes that nothing else accesses.
            unsafe { vaddr.cast::<u8>().as_ptr().add(SIZE - 1).write(0x5a) };
            drop(one);
            assert_eq!(calls.vunmap.load(Relaxed), 0);
            drop(two);
            assert_eq!(calls.vunmap.load(Relaxed), 1);
        }
        drop(buf);
        assert_eq!(calls.released(), 1);
        Ok(())
    }

    #[test]
    fn cpu_access_reaches_the_exporter() -> Result {
        let calls = Calls::new()?;
        let buf = DmaBuf::export(TestBuffer::new(&calls, SIZE), SIZE, flags::O_RDWR)?;
        // The exporter's error comes back to the caller.
        assert_eq!(buf.end_cpu_access(DataDirection::ToDevice), Err(EINVAL));
        buf.begin_cpu_access(DataDirection::Bidirectional)?;
        assert_eq!(calls.begin.load(Relaxed), 1);
        assert_eq!(calls.dir.load(Relaxed), DataDirection::Bidirectional as u32);
        buf.end_cpu_access(DataDirection::ToDevice)?;
        assert_eq!(calls.end.load(Relaxed), 1);
        assert_eq!(calls.dir.load(Relaxed), DataDirection::ToDevice as u32);
        drop(buf);
        assert_eq!(calls.released(), 1);
        Ok(())
    }

    /// Maps `buf` into the test's own address space, as `mmap(2)` of its file would: returns
    /// the address, or the error.
    fn map_into_test(buf: &DmaBuf, prot: u32, flags: u32) -> Result<usize> {
        // SAFETY: A test runs in its KUnit test case, which stays valid while it runs.
        let test = unsafe { bindings::kunit_get_current_test() };
        // CAST: The uapi's `u32` flags fit in the `unsigned long` ones of `vm_mmap()`.
        let (prot, flags) = (prot as c_ulong, flags as c_ulong);
        // SAFETY: `test` is the running test and the buffer's file is valid: `buf` references
        // the buffer, which references its file. The mapping references the file in turn.
        let addr =
            unsafe { bindings::kunit_vm_mmap(test, (*buf.as_ptr()).file, 0, SIZE, prot, flags, 0) };
        // CAST: `vm_mmap()` returns a negative errno as an address.
        let ret = addr as isize;
        match addr {
            0 => Err(ENOMEM),
            _ if ret < 0 && ret >= -(bindings::MAX_ERRNO as isize) => {
                // CAST: No smaller than `-MAX_ERRNO`.
                Err(Error::from_errno(ret as c_int))
            }
            _ => Ok(addr),
        }
    }

    #[test]
    fn a_process_mapping_faults_in_the_pages() -> Result {
        let calls = Calls::new()?;
        let buf = DmaBuf::export(TestBuffer::new(&calls, SIZE), SIZE, flags::O_RDWR)?;
        let addr = map_into_test(&buf, uapi::PROT_READ | uapi::PROT_WRITE, uapi::MAP_SHARED)?;
        assert_eq!(calls.mmap.load(Relaxed), 1);
        assert_eq!(calls.fault.load(Relaxed), 0);

        // Every byte different from its page's neighbours: a page mapped at another offset
        // shows.
        let mut pattern = KVec::with_capacity(SIZE, GFP_KERNEL)?;
        for i in 0..SIZE {
            // CAST: Wraps on purpose.
            pattern.push((i / PAGE_SIZE * 7 + i) as u8, GFP_KERNEL)?;
        }
        UserSlice::new(UserPtr::from_addr(addr), SIZE)
            .writer()
            .write_slice(&pattern)?;
        // One fault per page: the handler inserts the faulting page only.
        assert_eq!(calls.fault.load(Relaxed), (SIZE / PAGE_SIZE) as u32);
        {
            let map = buf.vmap_unlocked()?;
            let IoSysMap::System(vaddr) = map.map() else {
                return Err(EINVAL);
            };
            // SAFETY: The map is the buffer's memory, `SIZE` bytes, written only through the
            // process mapping, which nothing writes any more.
            let memory = unsafe { core::slice::from_raw_parts(vaddr.cast::<u8>().as_ptr(), SIZE) };
            assert!(memory == &pattern[..]);
        }
        let mut back = KVec::with_capacity(SIZE, GFP_KERNEL)?;
        UserSlice::new(UserPtr::from_addr(addr), SIZE)
            .reader()
            .read_all(&mut back, GFP_KERNEL)?;
        assert!(back == pattern);
        // Reading faults nothing more in.
        assert_eq!(calls.fault.load(Relaxed), (SIZE / PAGE_SIZE) as u32);

        // The mapping holds the buffer: the release waits for the unmap.
        drop(buf);
        fsleep(Delta::from_millis(50));
        assert_eq!(calls.released.load(Relaxed), 0);
        // SAFETY: The mapping is the test's own, `SIZE` bytes at `addr`, used no more.
        assert_eq!(unsafe { bindings::vm_munmap(addr, SIZE) }, 0);
        assert_eq!(calls.released(), 1);
        Ok(())
    }

    #[test]
    fn a_private_writable_mapping_is_refused() -> Result {
        let calls = Calls::new()?;
        let buf = DmaBuf::export(TestBuffer::new(&calls, SIZE), SIZE, flags::O_RDWR)?;
        // Its pages would be copied on write, which page frame mappings cannot do.
        assert_eq!(
            map_into_test(&buf, uapi::PROT_READ | uapi::PROT_WRITE, uapi::MAP_PRIVATE),
            Err(EINVAL)
        );
        assert_eq!(calls.mmap.load(Relaxed), 1);
        assert_eq!(calls.fault.load(Relaxed), 0);
        drop(buf);
        assert_eq!(calls.released(), 1);
        Ok(())
    }

    #[test]
    fn a_direction_from_c_is_checked() {
        // The values of `enum dma_data_direction`, and one past them.
        assert_eq!(DataDirection::try_from(0), Ok(DataDirection::Bidirectional));
        assert_eq!(DataDirection::try_from(1), Ok(DataDirection::ToDevice));
        assert_eq!(DataDirection::try_from(2), Ok(DataDirection::FromDevice));
        assert_eq!(DataDirection::try_from(3), Ok(DataDirection::None));
        assert_eq!(DataDirection::try_from(4), Err(EINVAL));
    }
}
