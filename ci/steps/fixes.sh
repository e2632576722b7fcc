# SPDX-License-Identifier: GPL-2.0
# The steps of the fixes series (both trees): checkpatch, and its
# reproducers on the base, on the fixes and on udmabuf in Rust.
# Sourced by ci/test, which runs each step_NAME in a process of its own
# with TREE selected for a TREE/NAME step.

# The fixes series (patches/TREE/fixes): checkpatch --strict on its
# patches, with the tree's own checkpatch.
step_fixes-checkpatch() {
	"$CI/series" --tree "$TREE" --series fixes checkpatch
}

# The fixes series' kselftests, built from the base with the fixes series
# (ci/kernel fixes-selftest), as a kernel CI would run them: the two
# reproducers, udmabuf-list-limit and udmabuf-sync-race, must fail on the
# base kernel, exactly their one test each, and pass on the fixes kernel
# (the base with the fixes series alone, configured as base); dmabuf-stat
# passes on both; and the same on the fixes series built with
# CONFIG_RUST=n (fixes-norust). On mainline, udmabuf in Rust (the
# udmabuf-rust kernel, which has none of the fixes series) must pass the
# same reproducers: its table is made under a mutex, and its list is
# allocated for its whole length before anything is read.
FIXES_FAILING=udmabuf_list.count_wrapping_the_size_is_refused,udmabuf_sync.racing_starts_leak_nothing
FIXES_PLANS=(--plan udmabuf-list-limit=1 --plan udmabuf-sync-race=1 --plan "$DMABUF_STAT_PLAN")

boot_fixes() {
	local v=$1
	shift
	"$CI/vm" run "$TREE/$v" --selftests fixes --name fixes --timeout 900 "${FIXES_PLANS[@]}" "$@" \
		-- udmabuf-list-limit ';;' udmabuf-sync-race ';;' dmabuf-stat
}

step_fixes() {
	local rc=0
	"$CI/kernel" build "$TREE/base" "$TREE/fixes" "$TREE/fixes-norust"
	echo "ok: $TREE: the fixes series builds on the base with base's config and with CONFIG_RUST=n"
	echo "=== $TREE/base: the reproducers must fail, exactly $FIXES_FAILING"
	suites base
	boot_fixes base "${SUITES[@]}" --expect-exit nonzero --expect-failing "$FIXES_FAILING" || rc=1
	echo "=== $TREE/fixes: everything must pass"
	suites fixes
	boot_fixes fixes "${SUITES[@]}" || rc=1
	echo "=== $TREE/fixes-norust: everything must pass"
	boot_fixes fixes-norust || rc=1
	if [ "$TREE" = "$MAINLINE" ]; then
		echo "=== $TREE/udmabuf-rust: everything must pass"
		suites udmabuf-rust
		boot_fixes udmabuf-rust "${SUITES[@]}" || rc=1
	fi
	return $rc
}
