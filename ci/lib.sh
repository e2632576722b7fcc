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

# The workspace's tools for the host, built by build_tools.
TOOLS="$ROOT/target/release"

# Builds the workspace's host binaries NAME... into $TOOLS (cargo keeps
# them up to date: a second call costs a check of their sources).
#   build_tools NAME...
build_tools() {
	local args=() b
	need cargo
	for b in "$@"; do
		args+=(--bin "$b")
	done
	(cd "$ROOT" && cargo build --quiet --release --locked "${args[@]}") ||
		die "building $* from the workspace failed"
}

# The number of checks `BIN ARGS... --list-checks` lists, BIN built from
# the workspace first: the plan of a run of BIN with ARGS.
listed_checks() {
	local bin=$1
	shift
	build_tools "$bin"
	"$TOOLS/$bin" "$@" --list-checks | wc -l
}

# `TOOL=N` (`dmabuf-stress SUB=N`) for a run of TOOL ARGS...: the checks
# it lists, which boot-report's --plan requires it to report.
#   plan_of TOOL [ARGS...]
plan_of() {
	local tool=$1
	shift
	case "$tool" in
	dmabuf-stress) echo "dmabuf-stress $1=$(listed_checks dmabuf-stress "$@")" ;;
	*) echo "$tool=$(listed_checks "$tool" "$@")" ;;
	esac
}

# The KUnit cases the patches PATCH... add, one a line: SUITE, the file,
# the module and the case, tab-separated; a case is a `#[test]` function
# of a file whose module is `#[kunit_tests(SUITE)]`, in that patch or an
# earlier one.
#   kunit_cases PATCH...
kunit_cases() {
	cat "$@" /dev/null | awk -v OFS='\t' '
		/^\+\+\+ b\// { file = substr($2, 3) }
		/^\+.*kunit_tests\(/ { s = $0; sub(/.*kunit_tests\(/, "", s); sub(/\).*/, "", s); of[file] = s; m = 1; next }
		m && /^\+ *(pub )?mod / { n = $0; sub(/^\+ *(pub )?mod /, "", n); sub(/[ {].*/, "", n); mod[file] = n; m = 0 }
		/^\+ *#\[test\]/ { t = 1; next }
		t && /^\+ *fn / { n = $0; sub(/^\+ *fn /, "", n); sub(/\(.*/, "", n); if (of[file] != "") print of[file], file, mod[file], n; t = 0 }'
}

# The patches of a series directory (patches/TREE, patches/TREE/exporter),
# in order, without its cover letter.
series_files() {
	find "$1" -maxdepth 1 -name '[0-9][0-9][0-9][0-9]-*.patch' ! -name '0000-*' | sort
}

# Makes the cache entry ENTRY whole or not at all: runs COMMAND with
# STAGE, a new directory beside ENTRY, to fill, then renames STAGE to
# ENTRY. A failure (COMMAND runs under set -e, and dies on error) or a
# run killed meanwhile leaves neither; when another run stored ENTRY
# first, that one stays (the same inputs, by the key). An entry is whole
# when it has the file WHOLE.
#   stage_entry ENTRY WHOLE COMMAND...
stage_entry() {
	local entry=$1 whole=$2
	shift 2
	[ -e "$entry/$whole" ] && return 0
	STAGE="$entry.tmp.$$"
	rm -rf "$STAGE"
	mkdir -p "$STAGE"
	trap 'rm -rf "${STAGE:-}"' EXIT
	"$@"
	[ -e "$STAGE/$whole" ] || die "$entry: made without $whole"
	# What a run of an older layout left there without WHOLE.
	[ -e "$entry/$whole" ] || rm -rf "$entry"
	if ! mv -T "$STAGE" "$entry" 2>/dev/null; then
		rm -rf "$STAGE"
		[ -e "$entry/$whole" ] || die "could not store $entry"
	fi
	STAGE=
}

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

# The pristine base: the tarball in a bare git repository of the cache
# whose one commit, tagged with the tree's name, is every file of the
# tarball. Fixed author, dates and parentage make that commit's id the
# same on every machine. Made once per machine, in a temporary directory
# renamed into place when whole.
make_base() {
	git -C "$BASE_REPO" rev-parse -q --verify "refs/tags/$BASE_TAG^{commit}" >/dev/null 2>&1 && return 0
	with_lock "base-$TREE" make_base_locked
}

make_base_locked() {
	git -C "$BASE_REPO" rev-parse -q --verify "refs/tags/$BASE_TAG^{commit}" >/dev/null 2>&1 && return 0
	local tarball tmp sum
	tarball=$(tree_tarball)
	[ -r "$tarball" ] || die "$TREE: $tarball not found: run ci/setup (package $SRC_PKG=$SRC_DEB_VERSION), or point $SRC_TARBALL_ENV at a copy of that package's tarball"
	log "$TREE: checking $tarball"
	sum=$(sha256sum <"$tarball" | cut -d' ' -f1)
	[ "$sum" = "$SRC_TARBALL_SHA256" ] ||
		die "$TREE: $tarball has sha256 $sum, not $SRC_TARBALL_SHA256 (the tarball of $SRC_PKG $SRC_DEB_VERSION)"
	rm -rf "$BASE_REPO" "$BASE_REPO".tmp.*
	tmp="$BASE_REPO.tmp.$$"
	mkdir -p "$tmp/tree"
	log "$TREE: unpacking $tarball into the machine-wide cache ($BASE_REPO)"
	tar -xf "$tarball" -C "$tmp/tree" --strip-components=1
	check_base_version "$tmp/tree"
	drop_debian_gitignore "$tmp/tree/.gitignore"
	(
		cd "$tmp/tree"
		export GIT_AUTHOR_NAME=base GIT_AUTHOR_EMAIL=base@localhost
		export GIT_COMMITTER_NAME=base GIT_COMMITTER_EMAIL=base@localhost
		export GIT_AUTHOR_DATE=2000-01-01T00:00:00Z GIT_COMMITTER_DATE=2000-01-01T00:00:00Z
		git init -q --bare "$tmp/repo.git"
		export GIT_DIR="$tmp/repo.git" GIT_WORK_TREE="$tmp/tree"
		# Loose objects, fast to write: the clones share them, and
		# packing 100,000 of them takes minutes.
		git config core.looseCompression 1
		# Every file of the tarball, dot-files too: its .gitignore ignores
		# '.*' without upstream's list of exceptions (.rustfmt.toml, ...).
		git add -A -f .
		local commit
		commit=$(printf '%s\n\n%s\n' "Linux $LINUX_VERSION ($SRC_PKG $SRC_DEB_VERSION)" \
			"Tarball-SHA256: $SRC_TARBALL_SHA256" | git commit-tree "$(git write-tree)")
		git tag "$BASE_TAG" "$commit"
	)
	[ -n "$(git -C "$tmp/repo.git" ls-tree "$BASE_TAG" drivers/dma-buf/dma-buf.c)" ] &&
		[ -n "$(git -C "$tmp/repo.git" ls-tree "$BASE_TAG" .rustfmt.toml)" ] ||
		die "$TREE: the base commit lacks files of the tarball: is a .gitignore still ignoring them?"
	rm -rf "$tmp/tree"
	mv -T "$tmp/repo.git" "$BASE_REPO"
	rmdir "$tmp"
	log "$TREE: base $(git -C "$BASE_REPO" rev-parse "$BASE_TAG^{commit}")"
}

check_base_version() {
	local mk=$1/Makefile v
	v=$(awk -F' = ' '/^VERSION =/ { a = $2 } /^PATCHLEVEL =/ { b = $2 }
		/^SUBLEVEL =/ { c = $2 } /^EXTRAVERSION =/ { d = $2 }
		END { printf "%s.%s.%s%s", a, b, c, d }' "$mk")
	[ "$v" = "$LINUX_VERSION" ] || die "$TREE: the tarball is Linux $v, not $LINUX_VERSION"
}

# Debian's top-level .gitignore ends with a block ('/*' then '!/debian/')
# that ignores the whole tree; upstream's has no such block.
drop_debian_gitignore() {
	local f=$1 n
	n=$(grep -n '^# Debian packaging' "$f" | cut -d: -f1 || true)
	[ -n "$n" ] || return 0
	# The block starts with a '#' line and follows a blank line.
	head -n $((n - 3)) "$f" >"$f.new"
	mv "$f.new" "$f"
}

# Makes sure the tools exist before use, saying how to get them.
need() {
	local tool
	for tool in "$@"; do
		command -v "$tool" >/dev/null 2>&1 ||
			die "$tool not found: run ci/setup (it installs every tool the project needs)"
	done
}
