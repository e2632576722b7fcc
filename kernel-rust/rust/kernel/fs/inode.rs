// SPDX-License-Identifier: GPL-2.0

//! Inodes.
//!
//! C header: [`include/linux/fs.h`](srctree/include/linux/fs.h)

use crate::{
    bindings,
    types::{NotThreadSafe, Opaque}, //
};

/// Wraps the kernel's `struct inode`.
///
/// An inode is what a file is an open instance of: its number, size and mode, what `stat(2)`
/// reports.
///
/// # Invariants
///
/// A `&Inode` is only valid while a reference to the inode is held by someone: an open file on
/// it, a dentry, or the owner of a new inode.
#[repr(transparent)]
pub struct Inode(Opaque<bindings::inode>);

// SAFETY: The methods of `Inode` only read fields with the synchronization that C requires for
// them, so they may be called from any thread.
unsafe impl Sync for Inode {}

impl Inode {
    /// Creates a reference to an [`Inode`] from a valid pointer.
    ///
    /// # Safety
    ///
    /// The caller must ensure that `ptr` points at a valid inode and that a reference to it is held
    /// for the duration of `'a`.
    #[inline]
    pub unsafe fn from_raw<'a>(ptr: *const bindings::inode) -> &'a Inode {
        // SAFETY: The caller guarantees that the pointer is valid for `'a`. The cast is okay
        // because `Inode` is `repr(transparent)`.
        unsafe { &*ptr.cast() }
    }

    /// Returns a raw pointer to the inner C struct.
    #[inline]
    pub fn as_ptr(&self) -> *mut bindings::inode {
        self.0.get()
    }

    /// Returns the inode number, `st_ino` in `stat(2)`.
    #[inline]
    pub fn ino(&self) -> u64 {
        // SAFETY: The inode is valid by the type invariants, and `i_ino` does not change once the
        // inode is in use.
        unsafe { (*self.as_ptr()).i_ino }
    }

    /// Returns the size in bytes, `st_size` in `stat(2)`.
    #[inline]
    pub fn size(&self) -> i64 {
        // SAFETY: The inode is valid by the type invariants, and `i_size_read()` reads `i_size`
        // consistently without a lock.
        unsafe { bindings::i_size_read(self.as_ptr()) }
    }

    /// Returns the number of bytes in use, `st_blocks * 512` in `stat(2)`.
    #[inline]
    pub fn bytes(&self) -> i64 {
        // SAFETY: The inode is valid by the type invariants, and `inode_get_bytes()` takes
        // `i_lock`.
        unsafe { bindings::inode_get_bytes(self.as_ptr()) }
    }

    /// Returns the magic number of the inode's filesystem, `f_type` in `statfs(2)`.
    #[inline]
    pub fn magic(&self) -> u64 {
        // SAFETY: The inode is valid by the type invariants, and so is its superblock, which
        // outlives the inodes in it; `s_magic` does not change once the superblock is set up.
        let magic = unsafe { (*(*self.as_ptr()).i_sb).s_magic };

        // CAST: `unsigned long` has at most 64 bits.
        magic as u64
    }
}

impl Inode {
    /// Takes the inode's lock (`i_rwsem`) for reading, as `inode_lock_shared()` does; the guard
    /// releases it.
    ///
    /// Writers of the inode's state that take the lock exclusively (`memfd_add_seals()`, for
    /// one) wait until the guard is dropped. This may sleep.
    pub fn lock_shared(&self) -> InodeSharedGuard<'_> {
        // SAFETY: The inode is valid by the type invariants.
        unsafe { bindings::inode_lock_shared(self.as_ptr()) };

        // INVARIANT: The lock was just taken for reading, by the current task.
        InodeSharedGuard {
            inode: self,
            _not_send: NotThreadSafe,
        }
    }
}

/// The lock of an inode, held for reading; dropping the guard releases it.
///
/// # Invariants
///
/// The current task holds `inode`'s `i_rwsem` for reading for as long as the guard exists.
pub struct InodeSharedGuard<'a> {
    inode: &'a Inode,
    _not_send: NotThreadSafe,
}

impl InodeSharedGuard<'_> {
    /// Returns the inode whose lock is held.
    pub fn inode(&self) -> &Inode {
        self.inode
    }
}

impl Drop for InodeSharedGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: By the type invariants, the current task holds the lock for reading.
        unsafe { bindings::inode_unlock_shared(self.inode.as_ptr()) };
    }
}
