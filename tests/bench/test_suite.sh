#!/usr/bin/env bash
# test_suite.sh: `bench/suite.sh --smoke` runs every benchmark of the suite on tiny sets
# (both access paths, every profile) and prints every table. Timings are never checked:
# only that each run finished, its file count matched (the suite checks it), and each
# table and row is there.
# Exit: 0 passed; 77 cannot run here (not root, no /dev/fuse, nfs-ganesha, libnfs-utils,
# vipsthumbnail or Pillow missing, tools not built); 1 failed.
# Build: $VHPREP_BUILD_DIR (default <repo>/build). Ports: $SUITE_PORT_BASE (default 20790:
# ganesha 20790/20791, the delay proxy 20792/20793).
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/bench/check.sh
source "$here/check.sh"
root=$(cd "$here/../.." && pwd)
build=${VHPREP_BUILD_DIR:-$root/build}
export VHPREP_BUILD_DIR=$build SUITE_PORT_BASE=${SUITE_PORT_BASE:-20790}

skip() {
	echo "test_suite: skipped: $*" >&2
	exit 77
}

check_prerequisites() {
	local tool
	[ "$(id -u)" -eq 0 ] || skip "needs root (nfs-ganesha's VFS backend)"
	[ -r /dev/fuse ] && [ -w /dev/fuse ] || skip "/dev/fuse is not usable"
	for tool in ganesha.nfsd nfs-ls rpcinfo vipsthumbnail; do # gnuplot: missing fails
		command -v "$tool" >/dev/null || skip "$tool is not installed"
	done
	/usr/bin/python3 -c 'import PIL' 2>/dev/null || skip "/usr/bin/python3 has no Pillow"
	for tool in vhprep bench/vhprep-mkimages bench/latencyfs bench/delayproxy; do
		[ -x "$build/$tool" ] || skip "$build/$tool is not built"
	done
}


# rows PREFIX: how many table rows of the output start with "| PREFIX" (a fixed string).
rows() { P="| $1" awk 'index($0, ENVIRON["P"]) == 1 { n++ } END { print n + 0 }' "$out"; }

# has_rows N PREFIX...: every PREFIX starts exactly N table rows.
has_rows() {
	local n=$1 p
	shift
	for p in "$@"; do
		[ "$(rows "$p")" -eq "$n" ] || { echo "     $(rows "$p") rows start with '$p', want $n"; return 1; }
	done
}

check_prerequisites
work=$(mktemp -d "${TMPDIR:-/tmp}/test_suite.XXXXXX") || exit 1
trap 'rm -rf -- "$work"' EXIT
out=$work/stdout
err=$work/stderr

t0=$SECONDS
bash "$root/bench/suite.sh" --smoke --charts "$work/charts" >"$out" 2>"$err"
rc=$?
echo "     bench/suite.sh --smoke: exit $rc in $((SECONDS - t0)) s"
if [ "$rc" -ne 0 ]; then
	tail -n 20 "$err" >&2
fi
check "suite --smoke exits 0" test "$rc" -eq 0
check "12 tables (3 datasets x 4 profiles) and the targets" test "$(grep -c '^### ' "$out")" -eq 13
check "the targets table" grep -q '^### Targets' "$out"
check "full jobs on the plain dir (local)" has_rows 1 "vhprep --resize 224 (plain dir)" \
	"Python/PIL loop, Valohai docs (plain dir)" 'find \| xargs -P'"$(nproc)"' vipsthumbnail (plain dir)'
check "full jobs on the mount (3 profiles)" has_rows 3 "vhprep --resize 224 (mount," \
	"Python/PIL loop, Valohai docs (mount," 'find \| xargs -P'"$(nproc)"' vipsthumbnail (mount,'
check "full jobs over nfs:// v3 and v4 (4 profiles)" has_rows 4 "vhprep --resize 224 (nfs://v3," \
	"vhprep --resize 224 (nfs://v4,"
check "walks on the plain dir (2 sets)" has_rows 2 "vhprep bench --walk-only (plain dir)" \
	"find (plain dir)" "ls -R (plain dir)"
check "walks on the mount (2 sets x 3 profiles)" has_rows 6 "vhprep bench --walk-only (mount," \
	"find (mount," "ls -R (mount,"
check "walks over nfs:// (2 sets x 4 profiles)" has_rows 8 "vhprep bench --walk-only (nfs://v3," \
	"vhprep bench --walk-only (nfs://v4," "nfs-ls -R (nfs://v3,"
check "the mount rows really ran on latencyfs (round trips counted)" \
	grep -Eq '^\| vhprep --resize 224 \(mount, [0-9.]+ ms/op\) \| [0-9.]+ \| [0-9.]+ \| [0-9]+ \| [0-9.]+ \|' "$out"
check "each command printed before it ran" test "$(grep -c '^# [a-z-]*/[a-z-]*/' "$err")" -eq 68
for chart in suite-imagenet-like suite-flat suite-wide; do
	check "chart $chart.svg drawn (vhprep and peers per profile)" chart_ok "$work/charts/$chart.svg"
done

echo "test_suite: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
