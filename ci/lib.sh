# SPDX-License-Identifier: GPL-2.0
# Shared settings and helpers for the scripts in ci/. Source it; do not run it.
#
# Everything built lives under target/ (git-ignored). Versions the project
# relies on are pinned here and checked by ci/setup.

[ -n "${DMABUF_CI_LIB:-}" ] && return 0
DMABUF_CI_LIB=1

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CI="$ROOT/ci"
TARGET="$ROOT/target"
TOOLS="$TARGET/tools"
KERNELS="$TARGET/kernel"
BASE_REPO="$KERNELS/linux"

# Pinned inputs. A change here changes every kernel's build key.
LINUX_VERSION=6.12.117
LINUX_SOURCE_PKG=linux-source-6.12
LINUX_SOURCE_DEB_VERSION=6.12.117-1~deb12u1
LINUX_SOURCE_TARBALL=/usr/src/linux-source-6.12.tar.xz
RUST_DEB_VERSION=1.96.0+dfsg1-1~deb12u2
RUSTC_VERSION=1.96.0
BINDGEN_VERSION=0.69.5
LLVM_VERSION=14

BINDGEN="$TOOLS/bindgen-$BINDGEN_VERSION/bin/bindgen"
BASE_TAG="v$LINUX_VERSION"

# The Debian toolchain, named explicitly: rustup's rustc comes first on PATH
# and has no rust-src, so kbuild must never pick it up.
KMAKE_VARS=(
	LLVM=-$LLVM_VERSION
	RUSTC=/usr/bin/rustc
	RUSTDOC=/usr/bin/rustdoc
	HOSTRUSTC=/usr/bin/rustc
	RUSTFMT=/usr/bin/rustfmt
	CLIPPY_DRIVER=/usr/bin/clippy-driver
	BINDGEN="$BINDGEN"
)

# Colourless, greppable messages on stderr.
log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
die() { printf '%s: error: %s\n' "${0##*/}" "$*" >&2; exit 1; }

# The number of CPUs make may use.
jobs() { nproc; }

# Hash of everything given on stdin, short enough for a directory name.
key_of() { sha256sum | cut -c1-16; }

# Runs make on a kernel tree with the pinned toolchain.
#   kmake SRC OUT [make arguments...]
kmake() {
	local src=$1 out=$2
	shift 2
	make -C "$src" O="$out" "${KMAKE_VARS[@]}" "$@"
}

# Serialises kernel builds: this machine has two cores, and two kernel
# builds at once take longer than one after the other.
with_build_lock() {
	mkdir -p "$KERNELS"
	(
		flock -w 7200 9 || die "could not take $KERNELS/build.lock within 2 hours"
		"$@"
	) 9>"$KERNELS/build.lock"
}

# Makes sure the tools exist before use, saying how to get them.
need() {
	local tool
	for tool in "$@"; do
		command -v "$tool" >/dev/null 2>&1 ||
			die "$tool not found: run ci/setup (it installs every tool the project needs)"
	done
}
