// SPDX-License-Identifier: GPL-2.0

//! DMA buffers shared between drivers, devices and processes.
//!
//! A dma-buf is a buffer that one driver (the exporter) makes and others use; userspace holds
//! and passes it on as a file descriptor.
//!
//! C header: [`include/linux/dma-buf.h`](srctree/include/linux/dma-buf.h)

use crate::{
    bindings,
    prelude::*,
    sync::SpinLock,
    types::Opaque,
    uapi, //
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
