// SPDX-License-Identifier: GPL-2.0
//! A Rust side of the dma-buf core's interface that disagrees with its C prototype in
//! include/linux/dma-buf-fs.h: `#[export]` checks the one against the other.
// expect: E0308

use kernel::{bindings, ffi::c_void, prelude::*};

/// Returns what C takes for a `struct vfsmount *`, but as a `void *`.
///
/// # Safety
///
/// Always safe to call.
#[export]
pub unsafe extern "C" fn dma_buf_fs_mount() -> *mut c_void {
    core::ptr::null_mut::<bindings::vfsmount>().cast()
}
