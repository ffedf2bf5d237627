#!/usr/bin/env bash
# test_overhead_bench.sh: bench/overhead-bench.sh --smoke runs vhprep --format keep on 2,000
# 1x1 PNGs and prints one table row with files/s, CPU per file and futex calls and context
# switches per file (numbers, not "null", where perf or strace can count). Checks that the
# benchmark runs and measures, never timings. Exit 0 pass, 77 skip, 1 fail.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=check.sh
source "$here/check.sh"
build=${VHPREP_BUILD_DIR:-}
[[ -n $build && -x $build/vhprep ]] || { echo "skip: vhprep not built"; exit 77; }
for cmd in python3 /usr/bin/time; do
	command -v "$cmd" >/dev/null || { echo "skip: $cmd not found"; exit 77; }
done
out=$(mktemp)
trap 'rm -f "$out"' EXIT

check "overhead-bench --smoke exits 0" bash "$here/../../bench/overhead-bench.sh" --smoke >"$out" 2>/dev/null
row=$(grep "^| $build/vhprep | " "$out")
check "one row for the binary" test -n "$row"
check "files/s and CPU per file are positive numbers" \
	awk -F'|' '$3 + 0 > 0 && $5 + 0 > 0 { ok = 1 } END { exit !ok }' <<<"$row"
if perf stat -e syscalls:sys_enter_futex true >/dev/null 2>&1 || command -v strace >/dev/null; then
	check "futex calls per file counted" awk -F'|' '$6 ~ /[0-9]/ { ok = 1 } END { exit !ok }' <<<"$row"
fi
echo "overhead-bench: $passed passed, $failed failed"
((failed == 0))
