#!/usr/bin/env bash
# test_plot.sh: the charts of bench/ (bench/plot.sh, gnuplot). bench/memory.sh --smoke
# draws its chart from a real tiny run; plot.sh draws every chart of the results kept in
# bench/results/; a chart whose bars draw nothing fails the step (exit 1), and input with
# nothing to plot is an error (exit 2). suite.sh's and tune.sh's charts are checked by
# test_suite.sh and test_nfs_bench.sh.
# Exit: 0 passed; 77 vhprep or vhprep-mkimages not built; 1 failed (gnuplot, jq,
# rsvg-convert or vips missing fail: .ci/install-deps.sh installs them).
# Build: $VHPREP_BUILD_DIR (default <repo>/build).
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/bench/check.sh
source "$here/check.sh"
root=$(cd "$here/../.." && pwd)
build=${VHPREP_BUILD_DIR:-$root/build}
export VHPREP_BUILD_DIR=$build

for tool in vhprep bench/vhprep-mkimages; do
	[ -x "$build/$tool" ] || { echo "test_plot: skipped: $build/$tool is not built" >&2; exit 77; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/test_plot.XXXXXX") || exit 1
trap 'rm -rf -- "$work"' EXIT

rc=0
bash "$root/bench/memory.sh" --smoke --charts "$work/memory" >"$work/memory.md" 2>"$work/memory.err" || rc=$?
[ "$rc" -eq 0 ] || tail -n 10 "$work/memory.err" >&2
check "memory.sh --smoke exits 0" test "$rc" -eq 0
check "memory.sh prints its table" grep -q '^| [0-9]* | [0-9.]* |' "$work/memory.md"
check "memory-rss.svg drawn (RSS against files processed)" chart_ok "$work/memory/memory-rss.svg"

rc=0
bash "$root/bench/plot.sh" --out "$work/kept" "$root"/bench/results/*.jsonl >"$work/kept.out" 2>&1 || rc=$?
check "plot.sh on bench/results/ exits 0" test "$rc" -eq 0
for chart in tune-depth-efs-maxio suite-imagenet-like suite-flat suite-wide memory-rss; do
	check "$chart.svg drawn from bench/results/" chart_ok "$work/kept/$chart.svg"
done

# a suite run whose peer rate is 0: its bar cannot be drawn on the log scale
cat >"$work/zero.jsonl" <<'EOF'
{"bench":"suite","dataset":"d","profile":"local","run":"vhprep-mount","files_per_s":100,"run_started":"t"}
{"bench":"suite","dataset":"d","profile":"local","run":"python-mount","files_per_s":0,"run_started":"t"}
EOF
rc=0
bash "$root/bench/plot.sh" --out "$work/zero" "$work/zero.jsonl" >"$work/zero.out" 2>&1 || rc=$?
check "a series that draws nothing fails the step (exit 1)" test "$rc" -eq 1
check "and says which chart" grep -q 'suite-d.svg: a data series draws nothing' "$work/zero.out"

echo '{"bench":"engine","files":1}' >"$work/none.jsonl"
rc=0
bash "$root/bench/plot.sh" --out "$work/none" "$work/none.jsonl" >/dev/null 2>&1 || rc=$?
check "nothing to plot is an error (exit 2)" test "$rc" -eq 2

echo "test_plot: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
