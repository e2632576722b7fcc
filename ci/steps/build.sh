# SPDX-License-Identifier: GPL-2.0
# The steps that judge the series and its builds without booting them:
# checkpatch, kernel-rust/, the bisects, rustfmt, clippy, compile-fail,
# which dmabuf filesystem went in.
# Sourced by ci/test, which runs each step_NAME in a process of its own
# with TREE selected for a TREE/NAME step.

step_checkpatch() {
	"$CI/series" --tree "$TREE" checkpatch
}

step_kernel-rust() {
	"$CI/series" check-kernel-rust
}

# What the 6.12 backport's Rust files change from mainline's; reported.
step_diff-report() {
	"$CI/series" diff-report
}

step_bisect-rust() {
	"$CI/kernel" bisect "$TREE/rust"
}

step_bisect-norust() {
	"$CI/kernel" bisect "$TREE/norust"
}

# The tip builds with Rust (with CLIPPY=1, judged by the clippy step) and
# without.
step_build() {
	"$CI/kernel" build "$TREE/rust" "$TREE/norust"
	echo "ok: $TREE: the series builds with CONFIG_RUST=y and CLIPPY=1, and with CONFIG_RUST=n"
}

# `make rustfmtcheck`, as the build of a kernel with CLIPPY=1 (default:
# rust) ran it.
step_rustfmt() {
	local v=${1:-rust} entry
	"$CI/kernel" build "$TREE/$v"
	entry=$("$CI/kernel" path "$TREE/$v")
	if [ "$(cat "$entry/rustfmt.status")" = 0 ] && [ ! -s "$entry/rustfmt.log" ]; then
		echo "ok: $TREE/$v: make rustfmtcheck"
		return 0
	fi
	echo "not ok: $TREE/$v: make rustfmtcheck (status $(cat "$entry/rustfmt.status")):"
	sed 's/^/    /' "$entry/rustfmt.log" | head -n 60
	return 1
}

# Clippy on every Rust object the series adds or changes: the build of a
# kernel with CLIPPY=1 (default: rust) rebuilt them into one log, which
# rust-warnings reads for diagnostics in the series' files.
step_clippy() {
	local v=${1:-rust} entry files
	build_tools rust-warnings
	"$CI/kernel" build "$TREE/$v"
	entry=$("$CI/kernel" path "$TREE/$v")
	grep -E '^ +CLIPPY' "$entry/clippy.log" | sed 's/^ */  rebuilt: /'
	files=$(cat "$entry/series-rust-files")
	[ -n "$files" ] || { echo "not ok: $TREE/$v: the series has no Rust file to judge"; return 1; }
	mapfile -t files <<<"$files"
	"$TOOLS/rust-warnings" --log "$entry/clippy.log" --build-dir "$entry" "${files[@]}"
}

# What the type system must refuse, compiled against the tree's kernel crate.
step_compile-fail() {
	"$CI/compile-fail" "$TREE"
}

# The rust kernel's dmabuf filesystem is the Rust one, and the c and norust
# kernels' the C one: System.map names the functions that went in.
step_rust-in-use() {
	local v d map rc=0 rust_fs c_fs
	"$CI/kernel" build "$TREE/rust" "$TREE/c" "$TREE/norust"
	for v in rust c norust; do
		d=$("$CI/kernel" path "$TREE/$v")
		map="$d/System.map"
		rust_fs=$(grep -c '_RNv.*10dma_buf_fs' "$map" || true)
		c_fs=$(grep -cE ' t (dmabuffs_dname|dmabuffs_release|dma_buf_fs_init_context)$' "$map" || true)
		if [ "$v" = rust ] && [ "$rust_fs" -gt 0 ] && [ "$c_fs" = 0 ] &&
			grep -q '^CONFIG_DMABUF_FS_RUST=y$' "$d/config"; then
			echo "ok: $TREE/$v: the dmabuf filesystem is Rust ($rust_fs symbols of dma_buf_fs.rs, none of dma-buf-fs.c)"
		elif [ "$v" != rust ] && [ "$rust_fs" = 0 ] && [ "$c_fs" = 3 ]; then
			echo "ok: $TREE/$v: the dmabuf filesystem is C (dmabuffs_dname, dmabuffs_release, dma_buf_fs_init_context)"
		else
			echo "not ok: $TREE/$v: $rust_fs symbols of dma_buf_fs.rs and $c_fs of dma-buf-fs.c in $map"
			rc=1
		fi
	done
	grep -E '(RUSTC|CLIPPY) .*drivers/dma-buf/dma_buf_fs.o' "$("$CI/kernel" path "$TREE/rust")/build.log" |
		sed "s|^ *|  build log of $TREE/rust: |"
	return $rc
}
