// SPDX-License-Identifier: GPL-2.0
//! The two exporters the tools make dma-bufs with: udmabuf (pages of a
//! sealed memfd) and the system dma-heap; their devices, opened with an
//! error that says what is missing and how to get it; and one way to export
//! a buffer from either.

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use serde::Serialize;

use dmabuf::uapi::heap::{self, DmaHeap};
use dmabuf::uapi::udmabuf::{self, Udmabuf};

/// Where a dma-buf comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Exporter {
    /// `/dev/udmabuf`: pages of a memfd sealed with `F_SEAL_SHRINK`.
    Udmabuf,
    /// `/dev/dma_heap/system`: pages of the system dma-heap.
    Heap,
}

impl Exporter {
    /// Both, udmabuf first.
    pub const ALL: [Exporter; 2] = [Exporter::Udmabuf, Exporter::Heap];

    /// Its name in the tools' options and check names: `udmabuf`, `heap`.
    pub fn name(self) -> &'static str {
        match self {
            Exporter::Udmabuf => "udmabuf",
            Exporter::Heap => "heap",
        }
    }

    /// The name its buffers carry (`exp_name` in fdinfo and bufinfo).
    pub fn exp_name(self) -> &'static str {
        match self {
            Exporter::Udmabuf => "udmabuf",
            Exporter::Heap => "system",
        }
    }

    /// Its device.
    pub fn device(self) -> &'static str {
        match self {
            Exporter::Udmabuf => udmabuf::DEVICE,
            Exporter::Heap => heap::SYSTEM,
        }
    }

    /// The kernel options that give it.
    pub fn config(self) -> &'static str {
        match self {
            Exporter::Udmabuf => "CONFIG_UDMABUF=y",
            Exporter::Heap => "CONFIG_DMABUF_HEAPS=y and CONFIG_DMABUF_HEAPS_SYSTEM=y",
        }
    }
}

impl fmt::Display for Exporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why an exporter's device could not be opened; its message says what is
/// missing and how to get it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenError {
    pub exporter: Exporter,
    pub errno: Errno,
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.exporter.device();
        match self.errno {
            Errno::ENOENT | Errno::ENODEV | Errno::ENXIO => write!(
                f,
                "{path} does not exist: the kernel needs {}, and devtmpfs mounted on /dev \
                 (mount -t devtmpfs devtmpfs /dev)",
                self.exporter.config()
            ),
            Errno::EACCES | Errno::EPERM => write!(f, "{path}: permission denied: run as root"),
            e => write!(f, "open {path}: {e}"),
        }
    }
}

impl std::error::Error for OpenError {}

/// Every device that could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenErrors(pub Vec<OpenError>);

impl fmt::Display for OpenErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let all: Vec<String> = self.0.iter().map(OpenError::to_string).collect();
        f.write_str(&all.join("; "))
    }
}

impl std::error::Error for OpenErrors {}

/// What the pages of a udmabuf come from; heap buffers ignore it.
#[derive(Debug, Clone, Copy)]
pub enum Backing<'a> {
    /// A memfd of its own, sealed with `F_SEAL_SHRINK` and closed after the
    /// export (the udmabuf keeps its pages pinned).
    OwnMemfd,
    /// The buffer's size at this offset of a sealed memfd.
    Slice(BorrowedFd<'a>, u64),
}

/// Why an export failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportError {
    /// The exporter's device was not opened by [`Devices::open`].
    NotOpen(Exporter),
    /// A call failed: which, with its arguments, and its errno.
    Failed { call: String, errno: Errno },
}

impl ExportError {
    /// The errno of the call that failed.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            ExportError::NotOpen(_) => None,
            ExportError::Failed { errno, .. } => Some(*errno),
        }
    }
}

impl fmt::Display for ExportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExportError::NotOpen(e) => write!(f, "{} is not open", e.device()),
            ExportError::Failed { call, errno } => write!(f, "{call}: {errno}"),
        }
    }
}

impl std::error::Error for ExportError {}

/// The exporters' devices.
#[derive(Debug, Default)]
pub struct Devices {
    udmabuf: Option<Udmabuf>,
    heap: Option<DmaHeap>,
}

impl Devices {
    /// Opens the devices of `exporters`; every one that cannot be opened is
    /// in the error.
    pub fn open(exporters: &[Exporter]) -> Result<Devices, OpenErrors> {
        let mut d = Devices::default();
        let mut problems = Vec::new();
        for &e in exporters {
            let opened = match e {
                Exporter::Udmabuf => Udmabuf::open().map(|u| d.udmabuf = Some(u)),
                Exporter::Heap => DmaHeap::open(heap::SYSTEM).map(|h| d.heap = Some(h)),
            };
            if let Err(errno) = opened {
                problems.push(OpenError { exporter: e, errno });
            }
        }
        if problems.is_empty() {
            Ok(d)
        } else {
            Err(OpenErrors(problems))
        }
    }

    /// `/dev/udmabuf`, if opened.
    pub fn udmabuf(&self) -> Option<&Udmabuf> {
        self.udmabuf.as_ref()
    }

    /// The system heap, if opened.
    pub fn heap(&self) -> Option<&DmaHeap> {
        self.heap.as_ref()
    }

    /// Exports a read-write dma-buf of `size` bytes (a multiple of the page
    /// size) from `exporter`. With a [`Backing::Slice`], or from the heap,
    /// this is the export ioctl alone, nothing else: fault injection can
    /// aim at it.
    pub fn export(
        &self,
        exporter: Exporter,
        size: u64,
        backing: Backing<'_>,
    ) -> Result<OwnedFd, ExportError> {
        // The call's description is made only when it failed: an export
        // is timed by the benchmark.
        let failed = |errno, call: &dyn Fn() -> String| ExportError::Failed {
            call: call(),
            errno,
        };
        match exporter {
            Exporter::Udmabuf => {
                let dev = self.udmabuf().ok_or(ExportError::NotOpen(exporter))?;
                match backing {
                    Backing::OwnMemfd => {
                        let memfd = udmabuf::sealed_memfd(size).map_err(|e| {
                            failed(e, &|| {
                                format!("memfd of {size} bytes sealed with F_SEAL_SHRINK")
                            })
                        })?;
                        dev.create(memfd.as_fd(), 0, size).map_err(|e| {
                            failed(e, &|| format!("ioctl(UDMABUF_CREATE, size {size})"))
                        })
                    }
                    Backing::Slice(memfd, offset) => dev.create(memfd, offset, size).map_err(|e| {
                        failed(e, &|| {
                            format!("ioctl(UDMABUF_CREATE, offset {offset}, size {size})")
                        })
                    }),
                }
            }
            Exporter::Heap => self
                .heap()
                .ok_or(ExportError::NotOpen(exporter))?
                .alloc(size)
                .map_err(|e| failed(e, &|| format!("ioctl(DMA_HEAP_IOCTL_ALLOC, len {size})"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let names: Vec<_> = Exporter::ALL
            .iter()
            .map(|e| (e.name(), e.exp_name(), e.device()))
            .collect();
        assert_eq!(
            names,
            [
                ("udmabuf", "udmabuf", "/dev/udmabuf"),
                ("heap", "system", "/dev/dma_heap/system")
            ]
        );
        assert_eq!(Exporter::Heap.to_string(), "heap");
    }

    #[test]
    fn open_errors_say_what_to_do() {
        let missing = OpenError {
            exporter: Exporter::Heap,
            errno: Errno::ENOENT,
        };
        let text = missing.to_string();
        assert!(text.contains("CONFIG_DMABUF_HEAPS_SYSTEM=y"), "{text}");
        assert!(text.contains("devtmpfs"), "{text}");
        let denied = OpenError {
            exporter: Exporter::Udmabuf,
            errno: Errno::EACCES,
        };
        assert_eq!(
            denied.to_string(),
            "/dev/udmabuf: permission denied: run as root"
        );
        let both = OpenErrors(vec![denied, missing]).to_string();
        assert!(both.starts_with(
            "/dev/udmabuf: permission denied: run as root; /dev/dma_heap/system does not exist"
        ));
    }

    #[test]
    fn export_without_its_device() {
        let d = Devices::default();
        let e = d
            .export(Exporter::Udmabuf, 4096, Backing::OwnMemfd)
            .unwrap_err();
        assert_eq!(e, ExportError::NotOpen(Exporter::Udmabuf));
        assert_eq!(e.errno(), None);
        assert_eq!(e.to_string(), "/dev/udmabuf is not open");
    }
}
