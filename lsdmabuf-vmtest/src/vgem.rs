// SPDX-License-Identifier: GPL-2.0
//! An importer for the scene: vgem, the DRM driver without hardware
//! (drivers/gpu/drm/vgem), imports a dma-buf with
//! `DRM_IOCTL_PRIME_FD_TO_HANDLE`, which attaches its device to the buffer
//! (`dma_buf_attach()`), as a GPU driver importing a camera's frame would.
//! debugfs bufinfo then lists `vgem` among the buffer's attached devices
//! (`dev_name()` of vgem's platform device, a faux device on 6.15 and
//! later), and the imported GEM object keeps the buffer alive after every
//! fd of it is closed, until the DRM file is closed.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;

/// The device name bufinfo shows for vgem's attachments.
pub const DEVICE: &str = "vgem";

/// What a kernel needs for vgem.
pub const CONFIG: &str = "CONFIG_DRM=y and CONFIG_DRM_VGEM=y";

/// `struct drm_prime_handle` (include/uapi/drm/drm.h).
#[repr(C)]
#[derive(Debug, Default)]
struct DrmPrimeHandle {
    handle: u32,
    flags: u32,
    fd: i32,
}

// DRM_IOCTL_PRIME_FD_TO_HANDLE: DRM_IOWR(0x2e, struct drm_prime_handle).
nix::ioctl_readwrite!(drm_prime_fd_to_handle, b'd', 0x2e, DrmPrimeHandle);

/// vgem's render node, open.
pub struct Vgem {
    /// `/dev/dri/renderD...`.
    pub node: String,
    fd: OwnedFd,
}

impl Vgem {
    /// Opens the render node of the DRM device whose sysfs device is named
    /// `vgem`; the error says what the kernel lacks.
    pub fn open() -> Result<Vgem, String> {
        let missing = |why: String| {
            format!(
                "{why}: nothing in the test VM attaches a device to a dma-buf without vgem, \
                 the DRM driver without hardware: the kernel needs {CONFIG}"
            )
        };
        let dir = std::fs::read_dir("/sys/class/drm")
            .map_err(|e| missing(format!("/sys/class/drm: {e}")))?;
        let mut seen = Vec::new();
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with("renderD") {
                continue;
            }
            let device = std::fs::read_link(entry.path().join("device"))
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_default();
            if device != DEVICE {
                seen.push(format!("{name} ({device})"));
                continue;
            }
            let node = format!("/dev/dri/{name}");
            let fd = open(
                node.as_str(),
                OFlag::O_RDWR | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| format!("open {node}: {e} (devtmpfs makes it)"))?;
            return Ok(Vgem { node, fd });
        }
        Err(missing(if seen.is_empty() {
            "no DRM render node in /sys/class/drm".into()
        } else {
            format!("no vgem among the DRM render nodes {}", seen.join(", "))
        }))
    }

    /// Imports `buf`: vgem attaches its device and holds a reference to the
    /// buffer until this file is closed. Returns the GEM handle.
    pub fn import(&self, buf: BorrowedFd<'_>) -> nix::Result<u32> {
        let mut arg = DrmPrimeHandle {
            fd: buf.as_raw_fd(),
            ..DrmPrimeHandle::default()
        };
        // SAFETY: `arg` is a `struct drm_prime_handle` that outlives the
        // call; the kernel reads `fd` and writes `handle`.
        unsafe { drm_prime_fd_to_handle(self.fd.as_raw_fd(), &mut arg) }?;
        Ok(arg.handle)
    }
}
