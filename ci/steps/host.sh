# SPDX-License-Identifier: GPL-2.0
# The steps that need no kernel: the toolchains, the workspace's tests and
# lints, the cache key.
# Sourced by ci/test, which runs each step_NAME in a process of its own
# with TREE selected for a TREE/NAME step.

step_setup() {
	"$CI/setup"
}

# cargo's own tallies, as `tally: P F`.
step_host-tests() {
	local out=$LOGS/host-tests.cargo rc=0 p f
	(cd "$ROOT" && cargo test --workspace --locked --release 2>&1) | tee "$out" || rc=$?
	read -r p f < <(awk '/^test result:/ { p += $4; f += $6 } END { print p + 0, f + 0 }' "$out")
	[ "$rc" = 0 ] || [ "$f" -gt 0 ] || f=1
	echo "tally: $p $f"
	return "$rc"
}

step_host-lint() {
	(cd "$ROOT" && cargo fmt --all --check)
	(cd "$ROOT" && cargo clippy --workspace --release --locked --all-targets -- -D warnings)
	echo "ok: cargo fmt --check and cargo clippy -D warnings"
}

# The cache key of a kernel covers every input, and nothing else.
step_key-test() {
	"$CI/key-test"
	# And a key function that leaves the config fragments out must be caught.
	"$CI/key-test" --broken "$CI/harness-demo/key-leaves-out-config.patch" --expect-failing config-option |
		sed 's/^ok: key-test: /ok: key-test, config left out of the key: /; s/^not ok: key-test: /# with the config left out: /'
}
