# SPDX-License-Identifier: GPL-2.0
# What shapes a kernel build: the base trees and their pins, each tree's
# toolchain, how a tree is made from its base and patches, how a config is
# made from fragments, and the make command lines. Sourced by ci/lib.sh.
#
# The code of this file, its functions and settings as bash holds them
# (kbuild_code: no comment, no blank line), is part of every kernel's key
# (kbuild_key), so a change to what it does rebuilds every kernel and a
# change to a comment none; the CLI around it (ci/kernel) and the tests
# are not, nor is how the base repository is made (make_base in
# ci/lib.sh): the base commit it makes, the same on every machine, is in
# the key.

# The trees, mainline first: the series is developed there, and 6.12 LTS
# carries its backport.
TREES=(v7.3-rc7 v6.12.117)
MAINLINE=v7.3-rc7

# The one Rust toolchain both trees are built with (Debian's rustc-web;
# rustup's rustc, first on PATH, has no library source and must never be
# picked up by kbuild).
RUST_DEB_VERSION=1.96.0+dfsg1-1~deb12u2
RUSTC_VERSION=1.96.0
RUST_BIN=/usr/bin

# Selects TREE: its base, pins and toolchain.
#   LINUX_VERSION         what the base's Makefile says
#   SRC_PKG, SRC_DEB_VERSION, SRC_DEB_SHA256
#                         the Debian package holding the source tarball
#   SRC_TARBALL, SRC_TARBALL_SHA256
#                         the tarball it installs, and its content
#   SRC_TARBALL_ENV       the environment variable naming a local copy of it
#   LLVM_VERSION, BINDGEN_VERSION
#                         the tree's own LLVM and bindgen; bindgen loads
#                         the libclang of LIBCLANG_PATH, never the newest
use_tree() {
	case "$1" in
	v7.3-rc7)
		LINUX_VERSION=7.3.0-rc7
		SRC_PKG=linux-source-7.3
		SRC_DEB_VERSION='7.3~rc7-1~exp1'
		SRC_DEB_SHA256=8bf8ca5ea8b1b307ca698db982ba48d6d223263b4d3dfb1973d055e316c44e75
		SRC_TARBALL=/usr/src/linux-source-7.3.tar.xz
		SRC_TARBALL_SHA256=d958c61d44f5be4e6c874d860889e3f15a7f1d238c58458e91f685f79f721df1
		SRC_TARBALL_ENV=LINUX_SOURCE_7_3_TARBALL
		LLVM_VERSION=19
		BINDGEN_VERSION=0.71.1
		;;
	v6.12.117)
		LINUX_VERSION=6.12.117
		SRC_PKG=linux-source-6.12
		SRC_DEB_VERSION=6.12.117-1~deb12u1
		SRC_DEB_SHA256=
		SRC_TARBALL=/usr/src/linux-source-6.12.tar.xz
		SRC_TARBALL_SHA256=585a4a074597aefa2b1a68ada83a3184ba351c127544dea80618bbcceaa3961f
		SRC_TARBALL_ENV=LINUX_SOURCE_6_12_TARBALL
		LLVM_VERSION=14
		BINDGEN_VERSION=0.69.5
		;;
	*) return 1 ;;
	esac
	TREE=$1
	BASE_TAG=$1
	BASE_REPO="$CACHE/base/$TREE.git"
	BINDGEN="$CACHE/tools/bindgen-$BINDGEN_VERSION/bin/bindgen"
	LLVM_BIN=/usr/lib/llvm-$LLVM_VERSION/bin
	LIBCLANG_PATH=/usr/lib/llvm-$LLVM_VERSION/lib
	KMAKE_VARS=(
		LLVM=-$LLVM_VERSION
		RUSTC=$RUST_BIN/rustc
		RUSTDOC=$RUST_BIN/rustdoc
		HOSTRUSTC=$RUST_BIN/rustc
		RUSTFMT=$RUST_BIN/rustfmt
		CLIPPY_DRIVER=$RUST_BIN/clippy-driver
		BINDGEN="$BINDGEN"
	)
}

# The tarball a tree's base is made from: $SRC_TARBALL_ENV when set, else
# what the Debian package installed.
tree_tarball() {
	local env=${!SRC_TARBALL_ENV:-}
	echo "${env:-$SRC_TARBALL}"
}

# What every build of the current tree is made with, as the tools report
# it. Part of every key: another compiler is another kernel.
toolchain_id() {
	"$RUST_BIN/rustc" --version
	"$RUST_BIN/rustfmt" --version
	"$RUST_BIN/clippy-driver" --version
	"$BINDGEN" --version
	"$LLVM_BIN/clang" --version | head -n1
	"$LLVM_BIN/ld.lld" --version | head -n1
	echo "LIBCLANG_PATH=$LIBCLANG_PATH"
}

# make on a kernel tree with the tree's toolchain, C through ccache.
#   kmake SRC OUT [make arguments...]
kmake() {
	local src=$1 out=$2
	shift 2
	env LIBCLANG_PATH="$LIBCLANG_PATH" \
		CCACHE_DIR="$CACHE/ccache" CCACHE_BASEDIR="$ROOT" CCACHE_NOHASHDIR=1 \
		CCACHE_COMPILERCHECK=content CCACHE_MAXSIZE=20G \
		make -C "$src" O="$out" "${KMAKE_VARS[@]}" CC="ccache clang-$LLVM_VERSION" "$@"
}

base_commit() {
	git -C "$BASE_REPO" rev-parse "refs/tags/$BASE_TAG^{commit}"
}

# What goes into a source tree: the base commit and the patches applied to
# it, in order, by content (their paths and this clone's path do not
# matter).
#   tree_key PATCH...
tree_key() {
	local p
	{
		base_commit
		for p in "$@"; do
			sha256sum <"$p" | cut -d' ' -f1
		done
	} | key_of
}

# Makes SRC the base with PATCHES applied by git am, unless it already is.
# SRC is a clone of the cache's base repository sharing its objects.
#   prepare_tree SRC PATCH...
prepare_tree() {
	local src=$1 key p
	shift
	key=$(tree_key "$@")
	if [ -f "$src.key" ] && [ "$(cat "$src.key")" = "$key" ] &&
		[ -z "$(git -C "$src" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
		return 0
	fi
	rm -f "$src.key"
	if ! git -C "$src" rev-parse -q --verify "refs/tags/$BASE_TAG" >/dev/null 2>&1; then
		rm -rf "$src"
		mkdir -p "$(dirname "$src")"
		git clone -q --shared --no-checkout "$BASE_REPO" "$src"
	fi
	git -C "$src" am --abort >/dev/null 2>&1 || true
	git -C "$src" checkout -q --force --detach "$BASE_TAG"
	for p in "$@"; do
		if ! git -C "$src" -c user.name=ci -c user.email=ci@localhost \
			am -q --keep-cr "$p" >"$src.am.log" 2>&1; then
			git -C "$src" am --abort >/dev/null 2>&1 || true
			cat "$src.am.log" >&2
			die "$TREE: patch ${p#"$ROOT"/} does not apply to $BASE_TAG"
		fi
	done
	echo "$key" >"$src.key"
}

# Every option a fragment asks for, checked against the final .config:
# olddefconfig silently drops an option whose dependency is missing.
#   check_config NAME CONFIG FRAGMENT...
check_config() {
	local name=$1 config=$2 frag line opt bad=0
	shift 2
	for frag in "$@"; do
		while IFS= read -r line; do
			case "$line" in
			CONFIG_*=*)
				if ! grep -qxF "$line" "$config"; then
					opt=${line%%=*}
					log "$name: ${frag#"$ROOT"/} asks for $line, but .config has: $(grep -E "^(# )?$opt[= ]" "$config" || echo "nothing (the option does not exist or its dependencies are off)")"
					bad=1
				fi
				;;
			"# CONFIG_"*" is not set")
				opt=${line#\# }
				opt=${opt%% *}
				if grep -qE "^$opt=" "$config"; then
					log "$name: ${frag#"$ROOT"/} asks for $opt off, but .config has: $(grep -E "^$opt=" "$config")"
					bad=1
				fi
				;;
			esac
		done <"$frag"
	done
	[ $bad = 0 ] || die "$name: wanted config options are missing (see above)"
}

# tinyconfig + the fragments, then olddefconfig, into OUT/.config. The
# .config is replaced only when it changes, so kbuild's dependency
# tracking stays valid.
#   prepare_config NAME SRC OUT FRAGMENT...
prepare_config() {
	local name=$1 src=$2 out=$3 scratch
	shift 3
	scratch="$out.config-scratch"
	mkdir -p "$scratch" "$out"
	kmake "$src" "$scratch" -s tinyconfig >/dev/null
	KCONFIG_CONFIG="$scratch/.config" "$src/scripts/kconfig/merge_config.sh" \
		-m -O "$scratch" "$scratch/.config" "$@" >"$out.merge.log" 2>&1 ||
		{ cat "$out.merge.log" >&2; die "$name: merge_config.sh failed"; }
	kmake "$src" "$scratch" -s olddefconfig >/dev/null
	check_config "$name" "$scratch/.config" "$@"
	cmp -s "$scratch/.config" "$out/.config" || cp "$scratch/.config" "$out/.config"
}

# The key of a kernel: everything that goes into it, known before its tree
# is prepared. Two clones at different paths with the same inputs get the
# same key; a byte changed in any input gives another.
#   kbuild_manifest "PATCH..." "FRAGMENT..." "MAKE-ARG..." prints the inputs
#   kbuild_key      (same arguments)          prints their hash
kbuild_manifest() {
	local patches=$1 configs=$2 args=$3 f
	echo "format: 1"
	echo "tree: $TREE"
	echo "base: $(base_commit)"
	for f in $patches; do
		echo "patch: $(sha256sum <"$f" | cut -d' ' -f1)"
	done
	for f in $configs; do
		echo "config: $(sha256sum <"$f" | cut -d' ' -f1)"
	done
	echo "make: $args"
	toolchain_id | sed 's/^/toolchain: /'
	echo "kbuild: $(kbuild_code | sha256sum | cut -d' ' -f1)"
}

# The code that shapes a build: every setting and function this file
# defines, as bash prints them (declare), so without its comments. A
# function or setting added here is in it without being named, as long
# as it is written as the others are: `name() {` and `NAME=...` at the
# start of a line; nothing else may be at the top level of this file. A
# bash that prints functions otherwise gives other keys (builds anew).
kbuild_code() {
	local names
	names=$(sed -n 's/^\([A-Z_][A-Z0-9_]*\)=.*/\1/p' "$CI/kbuild.sh" | sort -u)
	# shellcheck disable=SC2086
	declare -p $names
	names=$(sed -n 's/^\([a-z_][a-z0-9_]*\)() {$/\1/p' "$CI/kbuild.sh")
	# shellcheck disable=SC2086
	declare -f $names
}

kbuild_key() {
	kbuild_manifest "$@" | key_of
}
