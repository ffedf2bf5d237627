#!/usr/bin/env bash
# test_pack_consumer.sh: bench/pack-consumer.sh --smoke processes 200 photos into a dir run
# and a --pack tar run, then reads 200 random outputs each way through latencyfs: both
# modes must read the same bytes (the script fails otherwise) and the table must give
# files/s and round trips per file for each. Checks that the benchmark runs and
# measures, never timings. Needs root and FUSE. Exit 0 pass, 77 skip, 1 fail.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=check.sh
source "$here/check.sh"
build=${VHPREP_BUILD_DIR:-}
[[ -n $build && -x $build/vhprep && -x $build/bench/latencyfs ]] ||
	{ echo "skip: vhprep or latencyfs not built"; exit 77; }
[ "$(id -u)" = 0 ] && [ -c /dev/fuse ] || { echo "skip: needs root and /dev/fuse"; exit 77; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT

check "pack-consumer --smoke exits 0" bash "$here/../../bench/pack-consumer.sh" --smoke >"$out"
for row in "dir tree" "tar shards"; do
	check "a '$row' row with files/s and round trips per file" \
		awk -F'|' -v r="$row" 'index($2, r) && $3 + 0 > 0 && $4 + 0 > 0 { ok = 1 } END { exit !ok }' "$out"
done
echo "pack-consumer: $passed passed, $failed failed"
((failed == 0))
