// SPDX-License-Identifier: GPL-2.0

//! DMA buffers shared between drivers, devices and processes.
//!
//! A dma-buf is a buffer that one driver (the exporter) makes and others use; userspace holds
//! and passes it on as a file descriptor.
//!
//! C header: [`include/linux/dma-buf.h`](srctree/include/linux/dma-buf.h)

use crate::{
    bindings,
    str::CStr,
    types::{ForeignOwnable, Opaque},
    uapi,
};
use core::ptr::NonNull;

/// The longest name `DMA_BUF_SET_NAME` sets, with its NUL.
pub const NAME_LEN: usize = uapi::DMA_BUF_NAME_LEN as usize;

/// A dma-buf, the kernel's `struct dma_buf`.
///
/// # Invariants
///
/// A `&DmaBuf` is only valid while something keeps the buffer alive: a reference to its file, or,
/// once the last one is gone, the dentry of the file (see [`DentryData`]). So it gives no access
/// to the file, which may be gone already.
#[repr(transparent)]
pub struct DmaBuf(Opaque<bindings::dma_buf>);

// SAFETY: A dma-buf may be used and released from any thread.
unsafe impl Send for DmaBuf {}

// SAFETY: The methods of `DmaBuf` read fields that do not change after export, or take the lock
// that protects them.
unsafe impl Sync for DmaBuf {}

impl DmaBuf {
    /// Creates a reference to a [`DmaBuf`] from a valid pointer.
    ///
    /// # Safety
    ///
    /// `ptr` must point at a valid, exported dma-buf that stays alive for the duration of `'a`.
    #[inline]
    pub unsafe fn from_raw<'a>(ptr: *const bindings::dma_buf) -> &'a DmaBuf {
        // SAFETY: The caller guarantees that the pointer is valid for `'a`. The cast is fine
        // because `DmaBuf` is a transparent wrapper of `struct dma_buf`.
        unsafe { &*ptr.cast() }
    }

    /// Returns a raw pointer to the inner C struct.
    #[inline]
    pub fn as_ptr(&self) -> *mut bindings::dma_buf {
        self.0.get()
    }

    /// Returns the size of the buffer in bytes.
    #[inline]
    pub fn size(&self) -> usize {
        // SAFETY: The buffer is valid by the type invariants, and its size never changes after
        // export.
        unsafe { (*self.as_ptr()).size }
    }

    /// Returns the name of the exporter, such as `udmabuf` or `system`.
    #[inline]
    pub fn exp_name(&self) -> &CStr {
        // SAFETY: The buffer is valid by the type invariants. The exporter's name is set at
        // export, never changes, and is a string constant of the exporter, which cannot go away
        // while one of its buffers lives (the buffer holds a reference to its module).
        unsafe { CStr::from_char_ptr((*self.as_ptr()).exp_name) }
    }

    /// Copies the name userspace gave the buffer with `DMA_BUF_SET_NAME` into `buf`.
    ///
    /// The name is read under `name_lock`, as it may be set at any time. Returns `None` when the
    /// buffer has no name, or an empty one.
    pub fn name<'a>(&self, buf: &'a mut [u8; NAME_LEN]) -> Option<&'a CStr> {
        let ptr = self.as_ptr();
        let mut len = 0;

        // SAFETY: The buffer is valid by the type invariants, and `name_lock` is initialised at
        // export.
        unsafe { bindings::spin_lock(core::ptr::addr_of_mut!((*ptr).name_lock)) };

        // SAFETY: `name_lock` is held, so `name` is NULL or a NUL-terminated string that stays
        // allocated until the lock is released.
        let name = unsafe { (*ptr).name };
        if !name.is_null() {
            // SAFETY: As above, `name` is a valid NUL-terminated string while the lock is held.
            let bytes = unsafe { CStr::from_char_ptr(name) }.as_bytes();
            // `DMA_BUF_SET_NAME` refuses longer names; a name that did not fit would be shown as
            // no name, as `strscpy()` failing shows it in C.
            if bytes.len() < NAME_LEN {
                buf[..bytes.len()].copy_from_slice(bytes);
                len = bytes.len();
            }
        }

        // SAFETY: The lock was taken above.
        unsafe { bindings::spin_unlock(core::ptr::addr_of_mut!((*ptr).name_lock)) };

        if len == 0 {
            return None;
        }
        buf[len] = 0;
        CStr::from_bytes_with_nul(&buf[..=len]).ok()
    }
}

/// What the dentry of a dma-buf's file owns: the buffer itself.
///
/// A dma-buf lives until the last reference to its file is gone and, after that, until the
/// dentry of the file is freed, since readers of `/proc/PID/fd` may still be looking at the name
/// of a file they found there. The dma-buf core therefore attaches the buffer to the dentry
/// (`d_fsdata`) once it is set up, and the dmabuf filesystem drops this when the dentry goes,
/// which frees the buffer (`dma_buf_release()`).
///
/// Its foreign representation is the `struct dma_buf` pointer itself, which is what the dma-buf
/// core stores in `d_fsdata`; it borrows as a `&DmaBuf`.
///
/// # Invariants
///
/// `self.0` is a dma-buf whose final release this object owns: no file refers to it any more,
/// and nothing but this object can reach it.
pub struct DentryData(NonNull<DmaBuf>);

impl Drop for DentryData {
    fn drop(&mut self) {
        // SAFETY: By the type invariants we own the final release of the buffer.
        unsafe { bindings::dma_buf_release(self.0.as_ptr().cast()) };
    }
}

impl ForeignOwnable for DentryData {
    type Borrowed<'a> = &'a DmaBuf;

    #[inline]
    fn into_foreign(self) -> *const crate::ffi::c_void {
        let ptr = self.0.as_ptr();
        core::mem::forget(self);
        ptr.cast_const().cast()
    }

    #[inline]
    unsafe fn borrow<'a>(ptr: *const crate::ffi::c_void) -> &'a DmaBuf {
        // SAFETY: The safety requirements of this function guarantee that `ptr` is a dma-buf
        // attached to a dentry that has not released it yet, so the buffer is alive.
        unsafe { DmaBuf::from_raw(ptr.cast()) }
    }

    #[inline]
    unsafe fn from_foreign(ptr: *const crate::ffi::c_void) -> Self {
        // SAFETY: The safety requirements of this function guarantee that `ptr` is a non-NULL
        // dma-buf whose dentry gives it back.
        //
        // INVARIANT: The dentry passes us the final release of the buffer.
        Self(unsafe { NonNull::new_unchecked(ptr.cast_mut().cast()) })
    }
}
