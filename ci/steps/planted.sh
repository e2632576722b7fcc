# SPDX-License-Identifier: GPL-2.0
# The steps that show every check failing: the planted bugs (ci/plant)
# and their coverage.
# Sourced by ci/test, which runs each step_NAME in a process of its own
# with TREE selected for a TREE/NAME step.

# Every check the negative control cannot break, failed by a bug planted
# in the kernel (ci/planted, `on: series` or `on: exporter`): each run
# must fail exactly the checks, or the KUnit cases, its expect names.
step_planted() {
	"$CI/plant" run --in kernel
}

# The same for lsdmabuf-vmtest's checks, with bugs planted in lsdmabuf
# (`on: workspace`), on the cached lsdmabuf kernel.
step_planted-lsdmabuf() {
	"$CI/plant" run --in workspace
}

# Every check is failed by some planted bug or by the negative control;
# and the step fails when one bug's expectation is left out.
step_coverage() {
	local demo=validator-2-badinput
	"$CI/plant" coverage
	if "$CI/plant" coverage --without "$demo" >"$LOGS/coverage.demo" 2>&1; then
		echo "not ok: coverage: passes with ci/planted/$demo/expect left out"
		return 1
	fi
	echo "ok: coverage: fails with ci/planted/$demo/expect left out: $(grep -m1 '^not ok' "$LOGS/coverage.demo" | sed 's/^not ok: coverage: //')"
}
