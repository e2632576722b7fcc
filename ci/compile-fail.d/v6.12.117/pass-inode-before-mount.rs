// SPDX-License-Identifier: GPL-2.0
//! The control: the right order compiles, so that the misuses below fail for their own reason.
// expect: pass

use kernel::{c_str, fs::pseudo, prelude::*};

// SAFETY: Never loaded: it only has to compile.
static THIS_MODULE: ThisModule = unsafe { ThisModule::from_ptr(core::ptr::null_mut()) };

struct Fs;

// SAFETY: Nothing sets `d_fsdata`.
#[vtable]
unsafe impl pseudo::PseudoFs for Fs {
    const NAME: &'static CStr = c_str!("compile_fail");
    const MAGIC: u32 = 1;
    type DentryData = ();
}

static FS: pseudo::Type<Fs> = pseudo::Type::new(&THIS_MODULE);

pub fn use_it() -> Result {
    let mnt = FS.mount()?;
    let inode = mnt.new_inode()?;
    drop(inode);
    drop(mnt);
    Ok(())
}
