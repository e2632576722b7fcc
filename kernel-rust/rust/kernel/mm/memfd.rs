// SPDX-License-Identifier: GPL-2.0

//! The pages of memfds, pinned.
//!
//! A driver that takes memory from userspace as a memfd (`memfd_create(2)`, on shmem or
//! hugetlbfs) pins its folios for as long as it uses their pages, as udmabuf does.
//!
//! C headers: [`include/linux/memfd.h`](srctree/include/linux/memfd.h),
//! [`include/linux/mm.h`](srctree/include/linux/mm.h)

use crate::{
    bindings,
    ffi::{c_uint, c_ulong, c_void},
    fs::LocalFile,
    page::{BorrowedPage, PAGE_SHIFT, PAGE_SIZE},
    prelude::*,
    uapi,
};
use core::ptr::NonNull;

/// `F_SEAL_SHRINK`: the file cannot be made smaller.
pub const SEAL_SHRINK: u32 = uapi::F_SEAL_SHRINK;
/// `F_SEAL_WRITE`: the file cannot be written to.
pub const SEAL_WRITE: u32 = uapi::F_SEAL_WRITE;
/// `F_SEAL_FUTURE_WRITE`: the file cannot be written to through new mappings or `write(2)`.
pub const SEAL_FUTURE_WRITE: u32 = uapi::F_SEAL_FUTURE_WRITE;

/// Returns whether `file` is on shmem or hugetlbfs, the filesystems of memfds.
pub fn is_shmem_or_hugetlb(file: &LocalFile) -> bool {
    // SAFETY: The file is valid for the duration of the call.
    unsafe { bindings::shmem_file(file.as_ptr()) || bindings::is_file_hugepages(file.as_ptr()) }
}

/// Returns the seals of a memfd (`F_SEAL_*`), as `fcntl(F_GET_SEALS)` does.
///
/// Returns [`EINVAL`] for a file that is not a memfd. A caller that checks the seals before it
/// pins the file's folios takes the inode's lock for both ([`Inode::lock_shared`]), as adding a
/// seal takes it exclusively.
///
/// [`Inode::lock_shared`]: crate::fs::Inode::lock_shared
pub fn seals(file: &LocalFile) -> Result<u32> {
    // SAFETY: The file is valid for the duration of the call.
    let seals = unsafe { bindings::memfd_fcntl(file.as_ptr(), uapi::F_GET_SEALS, 0) };
    if seals < 0 {
        // CAST: An errno fits an `i32`.
        return Err(Error::from_errno(seals as i32));
    }
    // CAST: Seals are a bit mask of `unsigned int` flags.
    Ok(seals as u32)
}

/// Pages of memfds, pinned, in the order they were pinned.
///
/// [`Pinning::pin`] adds the pages of each range; the folios they are in stay pinned
/// (`FOLL_PIN`) until the `PinnedPages` is dropped. A folio pinned by two ranges is pinned
/// twice.
///
/// # Invariants
///
/// - Every folio of `folios` holds one pin, which this owns.
/// - Every page of `pages` is a page of a folio of `folios`.
pub struct PinnedPages {
    pages: KVVec<NonNull<bindings::page>>,
    folios: KVVec<NonNull<bindings::folio>>,
}

// SAFETY: Pins may be dropped on any task.
unsafe impl Send for PinnedPages {}

// SAFETY: Nothing changes the pages of a shared `PinnedPages`.
unsafe impl Sync for PinnedPages {}

/// [`PinnedPages`] being made, range by range.
///
/// # Invariants
///
/// `scratch` is never read: `memfd_pin_folios()` writes into it.
pub struct Pinning {
    pinned: PinnedPages,
    scratch: KVVec<*mut bindings::folio>,
}

impl Pinning {
    /// Makes room for `pages` pages in all, and for `per_range` folios pinned by one call of
    /// [`Pinning::pin`].
    pub fn with_capacity(pages: usize, per_range: usize) -> Result<Self> {
        // INVARIANT: Nothing is pinned yet.
        Ok(Self {
            pinned: PinnedPages {
                pages: KVVec::with_capacity(pages, GFP_KERNEL)?,
                folios: KVVec::with_capacity(pages, GFP_KERNEL)?,
            },
            scratch: KVVec::with_capacity(per_range, GFP_KERNEL)?,
        })
    }

    /// Pins the `pages` pages of `memfd` from byte `offset` on, and adds them.
    ///
    /// Returns [`EINVAL`] for a range that is not in the file, for no pages, and when there is
    /// no room left for them; and the error of `memfd_pin_folios()`, which may allocate the
    /// folios of a range not yet in memory. Nothing of the range stays pinned on an error.
    pub fn pin(&mut self, memfd: &LocalFile, offset: u64, pages: usize) -> Result {
        let PinnedPages {
            pages: page_list,
            folios,
        } = &mut self.pinned;
        if pages == 0
            || pages > self.scratch.capacity()
            || pages > page_list.capacity() - page_list.len()
        {
            return Err(EINVAL);
        }
        // As C computes them, in `loff_t`: an offset past `i64::MAX` is negative, and refused
        // by `memfd_pin_folios()`.
        // CAST: The wrap is the one of C's `loff_t` conversion.
        let start = offset as i64;
        // CAST: `pages` fits, it was allocated for.
        let end = start
            .wrapping_add(((pages as u64) << PAGE_SHIFT) as i64)
            .wrapping_sub(1);
        let mut first_offset: c_ulong = 0;
        // SAFETY: `memfd` is valid; `scratch` has room for `pages` folios, and
        // `memfd_pin_folios()` writes at most `pages` into it.
        let n = unsafe {
            bindings::memfd_pin_folios(
                memfd.as_ptr(),
                start,
                end,
                self.scratch.as_mut_ptr(),
                // CAST: As C passes it: `memfd_pin_folios()` takes an `unsigned int`.
                pages as c_uint,
                &mut first_offset,
            )
        };
        if n <= 0 {
            // CAST: An errno fits an `i32`.
            return Err(if n == 0 {
                EINVAL
            } else {
                Error::from_errno(n as i32)
            });
        }
        // CAST: `0 < n <= pages`.
        let n = n as usize;

        // Each folio has at least one page of the range, so they fit where the pages do.
        let mut added = 0;
        let mut sub = first_offset;
        for i in 0..n {
            // SAFETY: `memfd_pin_folios()` wrote `n` pinned folios into `scratch`.
            let folio = unsafe { NonNull::new_unchecked(*self.scratch.as_ptr().add(i)) };
            // INVARIANT: The pin is ours from now on.
            if folios.push_within_capacity(folio).is_err() {
                // Unreachable: `folios` has room for as many folios as `pages` has pages.
                // SAFETY: The folio's pin is ours, and not stored.
                unsafe { bindings::unpin_folio(folio.as_ptr()) };
                continue;
            }
            // SAFETY: The folio is pinned, so valid.
            let size = unsafe { bindings::folio_size(folio.as_ptr()) };
            while (sub as usize) < size && added < pages {
                // SAFETY: The folio is pinned and `sub` is within it.
                let page = unsafe { bindings::folio_page(folio.as_ptr(), sub >> PAGE_SHIFT) };
                // SAFETY: A page of a valid folio is not NULL.
                let page = unsafe { NonNull::new_unchecked(page) };
                // INVARIANT: The page is in a folio of `folios`. There is room: `pages` was
                // checked against it.
                let _ = page_list.push_within_capacity(page);
                added += 1;
                sub += PAGE_SIZE as c_ulong;
            }
            sub = 0;
        }
        Ok(())
    }

    /// Returns the pages pinned so far, and frees the room made for pinning.
    pub fn finish(self) -> PinnedPages {
        self.pinned
    }
}

impl PinnedPages {
    /// Returns the number of pages.
    #[inline]
    pub fn len(&self) -> usize {
        self.pages.len()
    }

    /// Returns whether there are no pages.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }

    /// Returns page `i`.
    pub fn page(&self, i: usize) -> Option<BorrowedPage<'_>> {
        let page = *self.pages.get(i)?;
        // SAFETY: By the type invariants, the page's folio is pinned for as long as `self`
        // exists, which outlives the borrow.
        Some(unsafe { BorrowedPage::from_raw(page) })
    }

    /// Returns the pages, in order.
    pub fn pages(&self) -> impl Iterator<Item = BorrowedPage<'_>> + '_ {
        // SAFETY: As in `page()`.
        self.pages
            .iter()
            .map(|page| unsafe { BorrowedPage::from_raw(*page) })
    }

    /// Maps the pages contiguously into the kernel's address space, as `vm_map_ram()` does.
    ///
    /// Returns `None` when there is no room in the address space, or no memory for the page
    /// tables. The mapping stays until [`PinnedPages::vm_unmap_ram`].
    pub fn vm_map_ram(&self) -> Option<NonNull<c_void>> {
        // SAFETY: The pages are valid: their folios are pinned.
        NonNull::new(unsafe {
            bindings::vm_map_ram(
                self.pages.as_ptr().cast_mut().cast(),
                // CAST: As C passes it.
                self.pages.len() as c_uint,
                bindings::NUMA_NO_NODE,
            )
        })
    }

    /// Unmaps a mapping [`PinnedPages::vm_map_ram`] made.
    ///
    /// # Safety
    ///
    /// `addr` must be what `vm_map_ram()` of `self` returned, not unmapped yet, and not accessed
    /// after this call.
    pub unsafe fn vm_unmap_ram(&self, addr: NonNull<c_void>) {
        // SAFETY: The caller passes a mapping of all of our pages.
        // CAST: As C passes it.
        unsafe { bindings::vm_unmap_ram(addr.as_ptr(), self.pages.len() as c_uint) };
    }
}

impl Drop for PinnedPages {
    fn drop(&mut self) {
        for folio in self.folios.iter() {
            // SAFETY: By the type invariants, each folio holds one pin that we own.
            unsafe { bindings::unpin_folio(folio.as_ptr()) };
        }
    }
}
