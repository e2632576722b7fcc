# SPDX-License-Identifier: GPL-2.0
# The steps that boot the series' kernels: the validator and the
# kselftest, the stress runs, lsdmabuf, the benchmark, the debug kernels;
# and what their boots require of every kernel (suites, plans).
# Sourced by ci/test, which runs each step_NAME in a process of its own
# with TREE selected for a TREE/NAME step.

# The checks that must fail on the negative-control kernel, whose dma-bufs
# share one anonymous inode: the validator's and the kselftest's
# (ci/negative/expect; stress.operations is the stress run's).
NEGATIVE_FAILING=$(grep -vE '^(#|$)|^stress\.' "$CI/negative/expect" | paste -sd, -)

# The full validator run every kernel gets; the debug kernels (KASAN under
# TCG is about ten times slower) get a tenth of the buffers.
VALIDATOR_ARGS=(--count 10000)
DEBUG_VALIDATOR_ARGS=(--count 1000)

# Eight threads, 100,000 operations each, with concurrent readers of
# procfs and bufinfo; then procfs against an unprivileged user.
STRESS_ARGS=(--threads 8 --ops 100000)
DEBUG_STRESS_ARGS=(--threads 8 --ops 5000)

# The KUnit suites a boot of the kernel variant must run, each with its
# number of test cases, as `--require-suite NAME=N` options in SUITES: the
# suites its row of ci/kernels names, the cases counted in its build
# (ci/kernel suites), which is built first. Ends the step when either
# fails, so that no boot runs without the suites it must require.
suites() {
	local out w
	"$CI/kernel" build "$TREE/$1" >&2 || exit 1
	out=$("$CI/kernel" suites "$TREE/$1") || exit 1
	SUITES=()
	for w in $out; do
		SUITES+=("$w")
	done
}

# What each tool must report: the validator every check it lists, the
# kselftest its 16 tests for each of udmabuf and the system heap.
validator_plan() {
	plan_of validator
}
DMABUF_STAT_PLAN=dmabuf-stat=32

# Boots a kernel and runs the full validator in it, then the series'
# kselftest, as the kernel's own CI would run it.
boot_validator() {
	local v=$1 plan
	shift
	plan=$(validator_plan)
	"$CI/vm" run "$TREE/$v" --name validator --plan "$plan" --plan "$DMABUF_STAT_PLAN" "$@" \
		-- validator "${VALIDATOR_ARGS[@]}" ';;' dmabuf-stat
}

step_boot-rust() {
	suites rust
	boot_validator rust "${SUITES[@]}"
}

step_boot-c() {
	suites c
	boot_validator c "${SUITES[@]}"
}

step_boot-norust() {
	boot_validator norust
}

step_boot-base() {
	suites base
	boot_validator base "${SUITES[@]}"
}

step_boot-negative() {
	boot_validator negative --expect-exit nonzero --expect-failing "$NEGATIVE_FAILING"
}

# The plan of a dmabuf-stress run: `--plan 'dmabuf-stress SUB=N'`, N the
# checks `dmabuf-stress SUB ARGS... --list-checks` lists.
stress_plan() {
	echo "--plan"
	plan_of dmabuf-stress "$@"
}

boot_stress() {
	local plans
	mapfile -t plans < <(stress_plan run "${STRESS_ARGS[@]}"; stress_plan security)
	"$CI/vm" run "$TREE/$1" --name stress --timeout 600 "${plans[@]}" \
		-- dmabuf-stress run "${STRESS_ARGS[@]}" ';;' dmabuf-stress security
}

step_stress-rust() {
	boot_stress rust
}

step_stress-c() {
	boot_stress c
}

# On the singleton-inode kernel the stress run sees two live buffers with
# one st_ino: it must fail, on that and nothing else.
step_stress-negative() {
	local plans
	mapfile -t plans < <(stress_plan run --threads 8 --ops 10000)
	"$CI/vm" run "$TREE/negative" --name stress --timeout 600 --expect-exit nonzero "${plans[@]}" \
		--expect-failing stress.operations -- dmabuf-stress run --threads 8 --ops 10000
}

# lsdmabuf's numbers for processes sharing buffers through fork,
# SCM_RIGHTS and mappings, as root and as nobody; its speed is reported.
step_lsdmabuf() {
	"$CI/vm" run "$TREE/lsdmabuf" --name lsdmabuf --timeout 600 \
		--plan "$(plan_of lsdmabuf-vmtest)" -- lsdmabuf-vmtest
}

# What an inode per buffer costs: the singleton, C and Rust kernels side by
# side (ci/bench); fails when Rust costs more slab per buffer than C.
step_bench() {
	"$CI/bench" --tree "$TREE"
}

# The debug kernels: the validator, systematic fault injection, the stress
# run and the procfs probe under KASAN, lockdep, debug objects and
# kmemleak, whose reports fail the run.
boot_debug() {
	local plans
	mapfile -t plans < <(stress_plan fail-nth; stress_plan run "${DEBUG_STRESS_ARGS[@]}"; stress_plan security)
	suites "$1"
	"$CI/vm" run "$TREE/$1" --name validator --timeout 1500 "${SUITES[@]}" "${plans[@]}" \
		-- validator "${DEBUG_VALIDATOR_ARGS[@]}" ';;' dmabuf-stress fail-nth \
		';;' dmabuf-stress run "${DEBUG_STRESS_ARGS[@]}" ';;' dmabuf-stress security
}

step_boot-debug-rust() {
	boot_debug debug-rust
}

step_boot-debug-c() {
	boot_debug debug-c
}
