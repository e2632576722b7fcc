# SPDX-License-Identifier: GPL-2.0
# The steps of the exporter series (mainline): its checkpatch and
# bisect, its kernels with the C udmabuf and with udmabuf in Rust, their
# debug kernel and benchmark.
# Sourced by ci/test, which runs each step_NAME in a process of its own
# with TREE selected for a TREE/NAME step.

# The exporter series (patches/v7.3-rc7/exporter), on top of the series:
# checkpatch --strict on its patches; its kernel (the Rust dmabuf
# filesystem, the KUnit suite rust_dma_buf) built with CLIPPY=1 and judged
# by rustfmt and clippy, then booted: the suite's 5 cases, the doctests
# with the Exporter example, and the validator and kselftest as on the
# rust kernel.
step_exporter-checkpatch() {
	"$CI/series" --series exporter checkpatch
}

# The kernel's own udmabuf selftest has 7 tests; two of them map 2 GiB
# memfds of 2 MiB huge pages, which the guest reserves at boot.
UDMABUF_SELFTEST_PLAN=udmabuf=7
UDMABUF_VM_ARGS=(--memory 3G --append hugepages=1024)

# The validator, the series' kselftest and the kernel's udmabuf selftest.
boot_udmabuf() {
	local v=$1 plan
	shift
	plan=$(validator_plan)
	"$CI/vm" run "$TREE/$v" --name validator "${UDMABUF_VM_ARGS[@]}" --plan "$plan" \
		--plan "$DMABUF_STAT_PLAN" --plan "$UDMABUF_SELFTEST_PLAN" "$@" \
		-- validator "${VALIDATOR_ARGS[@]}" ';;' dmabuf-stat ';;' udmabuf
}

# Every patch of the exporter series builds on the series, with CLIPPY=1 and
# no Rust diagnostic in a file the series touched so far (the udmabuf-rust
# kernel's config, which builds every Rust file of it).
step_exporter-bisect() {
	"$CI/kernel" bisect "$TREE/udmabuf-rust"
}

# The C udmabuf on the exporter series' tip.
step_exporter() {
	step_rustfmt exporter
	step_clippy exporter
	suites exporter
	boot_udmabuf exporter "${SUITES[@]}"
}

# The exporter series' tip without Rust: the C udmabuf and the C dmabuf
# filesystem, as without the series.
step_exporter-norust() {
	boot_udmabuf exporter-norust
}

# Which udmabuf a kernel has, from System.map: udmabuf.c's functions (static,
# so in System.map as t) or udmabuf_rust.rs's.
udmabuf_in() {
	local map=$1
	if grep -qE ' t (udmabuf_ioctl|release_udmabuf)$' "$map"; then
		grep -q udmabuf_rust "$map" && { echo both; return; }
		echo C
	elif grep -q udmabuf_rust "$map"; then
		echo Rust
	else
		echo none
	fi
}

# udmabuf in Rust: rustfmt and clippy of its kernel's build, System.map
# (the exporter kernel's udmabuf is the C one, this one's the Rust one),
# the validator with its udmabuf errnos, both kselftests, and the stress run.
step_udmabuf-rust() {
	local v want have rc=0
	step_rustfmt udmabuf-rust
	step_clippy udmabuf-rust
	"$CI/kernel" build "$TREE/exporter" "$TREE/udmabuf-rust"
	for v in exporter:C udmabuf-rust:Rust; do
		want=${v#*:}
		v=${v%%:*}
		have=$(udmabuf_in "$("$CI/kernel" path "$TREE/$v")/System.map")
		if [ "$have" = "$want" ]; then
			echo "ok: $TREE/$v: System.map has the $want udmabuf only"
		else
			echo "not ok: $TREE/$v: System.map has the $have udmabuf, not the $want one only"
			rc=1
		fi
	done
	suites udmabuf-rust
	boot_udmabuf udmabuf-rust "${SUITES[@]}" || rc=1
	boot_stress udmabuf-rust || rc=1
	return $rc
}

# udmabuf.c against udmabuf in Rust, in guest instructions: create+close,
# create+mmap+touch+close, slab bytes per buffer (a goal, not a gate).
step_bench-udmabuf() {
	"$CI/bench" --tree "$TREE" --udmabuf
}

step_debug-udmabuf-rust() {
	boot_debug debug-udmabuf-rust
}
