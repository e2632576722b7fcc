// SPDX-License-Identifier: GPL-2.0

//! Directory entries.
//!
//! C header: [`include/linux/dcache.h`](srctree/include/linux/dcache.h)

use crate::{
    bindings,
    prelude::*,
    types::Opaque, //
};

/// Wraps the kernel's `struct dentry`.
///
/// A dentry names an inode; an open file refers to its inode through a dentry.
///
/// # Invariants
///
/// A `&Dentry` is only valid while a reference to the dentry is held by someone, and the name of
/// the dentry does not change for as long as the `&Dentry` lives (it is not renamed, as the
/// dentries of a pseudo filesystem never are).
#[repr(transparent)]
pub struct Dentry(Opaque<bindings::dentry>);

// SAFETY: The methods of `Dentry` only read fields that do not change while a `&Dentry` lives.
unsafe impl Sync for Dentry {}

impl Dentry {
    /// Creates a reference to a [`Dentry`] from a valid pointer.
    ///
    /// # Safety
    ///
    /// The caller must ensure that `ptr` points at a valid dentry, that a reference to it is held
    /// for the duration of `'a`, and that it is not renamed during `'a`.
    #[inline]
    pub unsafe fn from_raw<'a>(ptr: *const bindings::dentry) -> &'a Dentry {
        // SAFETY: The caller guarantees that the pointer is valid for `'a`. The cast is okay
        // because `Dentry` is `repr(transparent)`.
        unsafe { &*ptr.cast() }
    }

    /// Returns a raw pointer to the inner C struct.
    #[inline]
    pub fn as_ptr(&self) -> *mut bindings::dentry {
        self.0.get()
    }

    /// Returns the name of the dentry.
    #[inline]
    pub fn name(&self) -> &CStr {
        // SAFETY: The dentry is valid by the type invariants, and it is not renamed while `self`
        // lives, so its name stays allocated and unchanged for that long.
        unsafe { CStr::from_char_ptr((*self.as_ptr()).__bindgen_anon_1.d_name.name.cast()) }
    }
}
