// SPDX-License-Identifier: GPL-2.0
//! Dentry data that is not `Sync`: every readlink of /proc/PID/fd borrows it at once.
// expect: E0277

use core::cell::Cell;
use kernel::{fs::pseudo, prelude::*};

struct LocalModule;

impl kernel::ModuleMetadata for LocalModule {
    const NAME: &'static CStr = c"compile_fail";
    // SAFETY: Never loaded: it only has to compile.
    const THIS_MODULE: kernel::ThisModule =
        unsafe { kernel::ThisModule::from_ptr(core::ptr::null_mut()) };
}

struct Fs;

// SAFETY: Nothing sets `d_fsdata`.
#[vtable]
unsafe impl pseudo::PseudoFs for Fs {
    const NAME: &'static CStr = c"compile_fail";
    const MAGIC: u32 = 1;
    type DentryData = KBox<Cell<u64>>;
}

static FS: pseudo::Type<Fs> = pseudo::Type::new();

pub fn use_it() -> Result {
    let mnt = FS.mount()?;
    let inode = mnt.new_inode()?;
    drop(inode);
    drop(mnt);
    Ok(())
}
