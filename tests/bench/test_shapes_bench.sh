#!/usr/bin/env bash
# test_shapes_bench.sh: `bench/shapes-bench.sh --smoke` makes every dataset shape of issue
# 16 on a few files, runs vhprep and every peer on each, and prints every table. Timings
# are never checked: only that each run finished with every output (the benchmark checks
# the counts), that each table and row is there, and that each comparison with PIL's
# pictures produced its bytes and MAD columns.
# Exit: 0 passed; 77 cannot run here (vipsthumbnail, Pillow or the tools missing); 1 failed.
# Build: $VHPREP_BUILD_DIR (default <repo>/build).
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/bench/check.sh
source "$here/check.sh"
root=$(cd "$here/../.." && pwd)
build=${VHPREP_BUILD_DIR:-$root/build}
export VHPREP_BUILD_DIR=$build

skip() {
	echo "test_shapes_bench: skipped: $*" >&2
	exit 77
}

command -v vipsthumbnail >/dev/null || skip "vipsthumbnail is not installed"
/usr/bin/python3 -c 'import PIL' 2>/dev/null || skip "/usr/bin/python3 has no Pillow"
[ -d /usr/share/icons/Adwaita ] || skip "adwaita-icon-theme is not installed"
for tool in vhprep bench/vhprep-mkimages; do
	[ -x "$build/$tool" ] || skip "$build/$tool is not built"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/test_shapes_bench.XXXXXX") || exit 1
trap 'rm -rf -- "$work"' EXIT
out=$work/stdout
err=$work/stderr
shapes=(icons cifar gray16 photos big camera)
cores=$(nproc)

t0=$SECONDS
bash "$root/bench/shapes-bench.sh" --smoke >"$out" 2>"$err"
rc=$?
echo "     bench/shapes-bench.sh --smoke: exit $rc in $((SECONDS - t0)) s"
[ "$rc" -eq 0 ] || tail -n 20 "$err" >&2

# rows PREFIX: how many lines of the output start with PREFIX (a fixed string)
rows() { P="$1" awk 'index($0, ENVIRON["P"]) == 1 { n++ } END { print n + 0 }' "$out"; }

check "shapes-bench --smoke exits 0" test "$rc" -eq 0
for s in "${shapes[@]}"; do
	check "a table for $s" test "$(rows "### $s: ")" -eq 1
done
check "the summary table" test "$(rows "### Summary: ")" -eq 1
check "vhprep and each peer once per shape" test "$(rows "| vhprep, $cores threads |")" -eq 6 -a \
	"$(rows "| vhprep --kernel vips, $cores threads |")" -eq 6 -a \
	"$(rows "| Python/PIL loop (Valohai docs), one process |")" -eq 6 -a \
	"$(rows "| Python/PIL loop, one process per core |")" -eq 6 -a \
	"$(rows "| find \\| xargs -P$cores vipsthumbnail |")" -eq 6
for s in "${shapes[@]}"; do
	# | shape | files/s | x | x | x | x | bytes x | MAD |
	check "summary row for $s has its ratios, bytes and MAD" \
		grep -Eq "^\| $s \| [0-9.]+ \| [0-9.]+x \| [0-9.]+x \| [0-9.]+x \| [0-9.]+x \| [0-9.]+x \| [0-9.]+ \|$" "$out"
done
for s in icons cifar gray16; do
	check "png-fast made every $s output" grep -Eq "^vhprep's kernels on $s: png-fast [0-9]+$" "$out"
done
for s in photos big camera; do
	check "jpeg-fast made every $s output" grep -Eq "^vhprep's kernels on $s: jpeg-fast [0-9]+$" "$out"
done
check "each command printed before it ran" test "$(grep -c '^# [a-z0-9]*/[a-z-]*: ' "$err")" -eq 30

echo "test_shapes_bench: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
