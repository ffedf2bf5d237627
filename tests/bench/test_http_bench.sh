#!/usr/bin/env bash
# test_http_bench.sh: `bench/http-bench.sh --smoke` runs every benchmark of the --urls
# suite on tiny data (download and job rows at two round trips, the RSS rows, the fault
# table) and prints every table. Timings are never checked: only that each run finished
# with the right file count (the bench checks it) and each table and row is there.
# Exit: 0 passed; 77 cannot run here (not root, nginx, aria2c, wget, jq or Pillow
# missing, tools not built); 1 failed. Ports: $HTTP_FIXTURE_PORT (default 20580) .. +4.
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/bench/check.sh
source "$here/check.sh"
root=$(cd "$here/../.." && pwd)
build=${VHPREP_BUILD_DIR:-$root/build}
export VHPREP_BUILD_DIR=$build

skip() {
	echo "test_http_bench: skipped: $*" >&2
	exit 77
}

[ "$(id -u)" -eq 0 ] || skip "needs root (nginx's workers read the test tree)"
for tool in nginx aria2c wget jq openssl curl; do
	command -v "$tool" >/dev/null || skip "$tool is not installed"
done
/usr/bin/python3 -c 'import PIL' 2>/dev/null || skip "/usr/bin/python3 has no Pillow"
for tool in vhprep bench/vhprep-mkimages bench/delayproxy; do
	[ -x "$build/$tool" ] || skip "$build/$tool is not built"
done

out=$(mktemp "${TMPDIR:-/tmp}/http-bench-out.XXXXXX")
trap 'rm -f "$out"' EXIT
bash "$root/bench/http-bench.sh" --smoke >"$out" || { cat "$out"; echo "FAIL the bench exited $?"; exit 1; }
cat "$out"

rows() { P="| $1" awk 'index($0, ENVIRON["P"]) == 1 { n++ } END { print n + 0 }' "$out"; }
check "two round-trip tables" test "$(grep -c '^### rtt4: \|^### local: ' "$out")" -eq 2
check "download rows" test "$(rows 'download: ')" -eq 8
check "job rows" test "$(rows 'job: ')" -eq 4
check "rerun rows (all 304)" test "$(rows 'job again into the same outputs')" -eq 2
check "ratios printed" grep -q '| download: aria2c -i LIST -j 64 | [0-9.]* | [0-9.]*x (h1) |' "$out"
check "RSS table" test "$(grep -c '^| 2000 | [0-9.]* | [0-9]* |' "$out")" -eq 1
check "fault table" test "$(rows '/')" -eq 12
check "429 retried then processed" grep -q '^| /429/a.jpg?n=2 | processed | 3 | 3 |' "$out"
check "503 retried then recorded" grep -q '^| /503/d.jpg | http_status | 4 | 4 |' "$out"
check "error page not retried" grep -q '^| /html/i.jpg | not_image | 1 | 1 |' "$out"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
