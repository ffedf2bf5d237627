#!/usr/bin/env bash
# test_pack_bench.sh: bench/pack-bench.sh --smoke runs every configuration on tiny sets and
# prints its table: one row per set and configuration, the packed ones with a files-per-100k
# figure far below the dir sink's. Checks that the benchmark runs, never timings.
# Exit 0 pass, 77 skip (a tool missing), 1 fail.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=check.sh
source "$here/check.sh"
build=${VHPREP_BUILD_DIR:-}
for tool in "$build/vhprep" "$build/bench/vhprep-mkimages" "$build/bench/vhprep-pack-driver"; do
	[[ -n $build && -x $tool ]] || { echo "skip: $tool not built"; exit 77; }
done
for cmd in zstd jq bc; do
	command -v "$cmd" >/dev/null || { echo "skip: $cmd not found (.ci/install-deps.sh)"; exit 77; }
done
out=$(mktemp)
trap 'rm -f "$out"' EXIT

check "pack-bench --smoke exits 0" bash "$here/../../bench/pack-bench.sh" --smoke >"$out" 2>/dev/null
rows() { grep -c "^| $1 | " "$out"; }
for set in photos jpg224 png224; do
	check "$set: dir, tar and tar.zst rows at least" test "$(rows "$set")" -ge 3
	check "$set: the dir sink leaves 100003 files per 100k" \
		grep -q "^| $set | dir | .* | 100003 |$" "$out"
	check "$set: tar.zst leaves a few dozen at most" \
		awk -F'|' -v s=" $set " '$2 == s && $3 == " tar.zst-3 " && $10 + 0 < 50 { ok = 1 } END { exit !ok }' "$out"
done
echo "pack-bench: $passed passed, $failed failed"
((failed == 0))
