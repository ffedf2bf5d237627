#!/usr/bin/env bash
# test_nfs_bench.sh: smoke test of bench/nfs-bench.sh and bench/tune.sh: each runs with
# --smoke (tiny sizes) and must exit 0 and print its Markdown tables. No timing is asserted:
# the numbers of a smoke run mean nothing.
# Exit: 0 pass, 77 skip (not root, ganesha or FUSE unavailable, tools missing), 1 fail.
# Build dir: $VHPREP_BUILD_DIR (default <repo>/build).
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
export VHPREP_BUILD_DIR=${VHPREP_BUILD_DIR:-$repo/build}
work=$(mktemp -d "${TMPDIR:-/tmp}/test_nfs_bench.XXXXXX") || exit 1
# shellcheck source=tests/bench/check.sh
source "$here/check.sh"
trap 'rm -rf -- "$work"' EXIT
failed=0

skip() { echo "test_nfs_bench: skipped: $*" >&2; exit 77; }

[ "$(id -u)" -eq 0 ] || skip "needs root (ganesha)"
for t in ganesha.nfsd nfs-ls jq rpcinfo; do
	command -v "$t" >/dev/null || skip "$t is not installed"
done
[ -e /dev/fuse ] || skip "/dev/fuse is missing"
[ -x "$VHPREP_BUILD_DIR/bench/latencyfs" ] || skip "latencyfs is not built"

# run NAME SCRIPT [ARGS]: runs SCRIPT --smoke ARGS; a 77 from it is a skip, anything else
# non-zero a failure.
run() {
	local rc=0 name=$1 script=$2
	shift 2
	bash "$repo/bench/$script" --smoke "$@" >"$work/$name.md" 2>"$work/$name.err" || rc=$?
	[ "$rc" -ne 77 ] || { tail -n 3 "$work/$name.err" >&2; skip "$script cannot run here"; }
	if [ "$rc" -ne 0 ]; then
		echo "FAIL $script --smoke exited $rc" >&2
		tail -n 20 "$work/$name.err" >&2
		failed=1
		return 1
	fi
	echo "ok   $script --smoke exit 0"
}

# expect NAME PATTERN...: each PATTERN (grep -E) is a line of NAME's stdout.
expect() {
	local name=$1 p
	shift
	for p in "$@"; do
		if grep -qE -- "$p" "$work/$name.md"; then
			echo "ok   $name prints: $p"
		else
			echo "FAIL $name prints no line matching: $p" >&2
			failed=1
		fi
	done
}

# A table has a header row, its |---| rule and at least one data row with a number.
rows() { grep -cE '^\| [^-].*\| [0-9.]+x? \|' "$work/$1.md"; }

if run nfs nfs-bench.sh; then
	expect nfs '^### Walk: ' '^\| [0-9]+x[0-9]+ \| v3 \|' '^\| flat \| v4 \|' '^### Target: ' \
		'^\| \*\*median\*\*' '^### Read: ' '^### Peak RSS ' '^\|---'
	[ "$(rows nfs)" -ge 10 ] && echo "ok   nfs-bench table rows: $(rows nfs)" ||
		{ echo "FAIL nfs-bench: too few table rows" >&2; failed=1; }
fi
if run tune tune.sh --charts "$work/charts"; then
	expect tune '^### kernel mount .*by --io-depth' '^### nfs:// v3 .*by --io-depth' \
		'^### nfs:// v4.0 .*by --io-depth' '^### .*full job' '--nfs-connections and --io-depth' \
		'^### Baseline ' '^### Path choice' 'by --walkers' 'by --read-budget' '^\|---'
	[ "$(rows tune)" -ge 15 ] && echo "ok   tune table rows: $(rows tune)" ||
		{ echo "FAIL tune: too few table rows" >&2; failed=1; }
	if chart_ok "$work/charts/tune-depth-efs-maxio.svg"; then
		echo "ok   tune chart tune-depth-efs-maxio.svg drawn"
	else
		echo "FAIL tune chart missing or empty" >&2
		failed=1
	fi
fi
[ "$failed" -eq 0 ] || { cat "$work"/*.md >&2; exit 1; }
echo "test_nfs_bench: passed"
