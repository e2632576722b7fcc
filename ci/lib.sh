# SPDX-License-Identifier: GPL-2.0
# Shared settings and helpers for the scripts in ci/. Source it; do not run it.
#
# Two places hold what is built:
#  - target/ of this clone (git-ignored): the kernel source trees and build
#    directories a build works in, the Rust workspace, the logs of this
#    clone's runs;
#  - the machine-wide cache, $DMABUF_INODE_CACHE (default
#    ${XDG_CACHE_HOME:-$HOME/.cache}/dmabuf-inode): the pristine base trees,
#    the ccache, bindgen, and every kernel and bisect result, each under the
#    key of everything that went into it (ci/kbuild.sh). Another clone on
#    the same machine takes a kernel from there instead of building it.

[ -n "${DMABUF_CI_LIB:-}" ] && return 0
DMABUF_CI_LIB=1

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CI="$ROOT/ci"
TARGET="$ROOT/target"
KERNELS="$TARGET/kernel"
CACHE=${DMABUF_INODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dmabuf-inode}

# The kernel trees, their pins and toolchains.
. "$CI/kbuild.sh"

# Colourless, greppable messages on stderr.
log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
die() { printf '%s: error: %s\n' "${0##*/}" "$*" >&2; exit 1; }

# The number of CPUs make may use.
jobs() { nproc; }

# Hash of everything given on stdin, short enough for a directory name.
key_of() { sha256sum | cut -c1-16; }

# Runs "$@" holding the machine-wide lock NAME of the cache, waiting for it
# up to two hours. Locks are flock(1) locks on files in $CACHE/locks: the
# kernel freeing them when a holder dies, a killed run never leaves one
# taken.
with_lock() {
	local name=$1
	shift
	mkdir -p "$CACHE/locks"
	(
		flock -w 7200 9 || die "could not take the lock $CACHE/locks/$name within 2 hours"
		"$@"
	) 9>"$CACHE/locks/$name"
}

# Serialises kernel builds across every clone on this machine: it has two
# cores, and two kernel builds at once take longer than one after the other.
with_build_lock() {
	with_lock build "$@"
}

# Makes sure the tools exist before use, saying how to get them.
need() {
	local tool
	for tool in "$@"; do
		command -v "$tool" >/dev/null 2>&1 ||
			die "$tool not found: run ci/setup (it installs every tool the project needs)"
	done
}
