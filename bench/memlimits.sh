#!/usr/bin/env bash
# memlimits.sh: vhprep's peak memory on inputs that try to make it grow (issue 13), run
# with and without a memory limit around it: the peak is what the container sees.
#
#   bash bench/memlimits.sh [--smoke]
#
# Cases (each made once under build/bench-data/memlimits, hard links where copies of one
# file do): a 20 GB sparse file named x.jpg; 32 and 64 JPEGs whose header claims
# 10000x10000 (within the default --max-pixels) at -j 32, no resize; fifty 8000x6000
# photo JPEGs to 224x224 at the default --read-budget and at 16M. "cgroup" runs it in a
# memory cgroup of that limit (tests/fixtures/cgroup.sh; vhprep's default --memory is
# the limit it reads there; the peak is the cgroup's high-water mark, page cache
# included); "none" runs it bare (--memory defaults to physical memory; the peak is the
# process's max RSS from /usr/bin/time). Output: a Markdown table on stdout; the commands
# on stderr. --smoke: 4 claims, 6 big JPEGs of 4000x3000, no sparse file.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
smoke=0
case ${1:-} in
--smoke) smoke=1 ;;
-h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
"") ;;
*) echo "memlimits: unknown argument '$1'" >&2; exit 2 ;;
esac

build=${VHPREP_BUILD_DIR:-$root/build}
vhprep=$build/vhprep
mkimages=$build/bench/vhprep-mkimages
for tool in "$vhprep" "$mkimages" /usr/bin/time /usr/bin/python3 jq; do
	command -v "$tool" >/dev/null || { echo "memlimits: $tool missing (build first; bash .ci/install-deps.sh)" >&2; exit 2; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/memlimits.XXXXXX")
trap 'rm -rf "$work"' EXIT
data=$build/bench-data/memlimits
[ $smoke = 0 ] || data=$data-smoke
if [ $smoke = 1 ]; then nclaims=(4) nbig=6 bigw=4000 bigh=3000; else nclaims=(32 64) nbig=50 bigw=8000 bigh=6000; fi

# copies N NAME SRC: N hard links of SRC in $data/NAME
copies() {
	mkdir -p "$data/$2"
	for i in $(seq 0 $(($1 - 1))); do ln -f "$3" "$data/$2/$(printf %03d "$i").jpg"; done
}
mkdir -p "$data"
if [ ! -f "$data/claim.jpg" ]; then
	/usr/bin/python3 - "$data/claim.jpg" <<'PY'
import io, sys
from PIL import Image
b = io.BytesIO()
Image.new("RGB", (64, 64), (120, 30, 200)).save(b, "JPEG")
j = bytearray(b.getvalue())
i = j.index(b"\xff\xc0")  # SOF0: length(2) precision(1) height(2) width(2)
j[i + 5:i + 9] = (10000).to_bytes(2, "big") * 2
open(sys.argv[1], "wb").write(j)
PY
fi
if [ ! -f "$data/big.jpg" ]; then
	"$mkimages" --preset photos --count 1 --width $bigw --height $bigh --out "$work/big" >/dev/null
	mv "$(find "$work/big" -name '*.jpg' | head -1)" "$data/big.jpg"
fi
for n in "${nclaims[@]}"; do copies "$n" "claims$n" "$data/claim.jpg"; done
copies $nbig big "$data/big.jpg"
if [ $smoke = 0 ] && [ ! -f "$data/sparse/x.jpg" ]; then
	mkdir -p "$data/sparse"
	truncate -s 20G "$data/sparse/x.jpg"
fi

cgroup_ok=1
bash tests/fixtures/cgroup.sh $((64 << 20)) "$work/probe" -- true 2>/dev/null || cgroup_ok=0
[ $cgroup_ok = 1 ] || echo "memlimits: no memory cgroup here (needs root): bare runs only" >&2

# run CASE LIMIT ARGS...: one row per setting (cgroup of LIMIT bytes, and bare)
run() {
	local name=$1 limit=$2 peak exit s
	shift 2
	for how in cgroup none; do
		[ $how = cgroup ] && [ $cgroup_ok = 0 ] && continue
		rm -rf "$work/out"
		echo "# $name ($how): vhprep $*" >&2
		set +e
		if [ $how = cgroup ]; then
			bash tests/fixtures/cgroup.sh "$limit" "$work/stats" -- \
				"$vhprep" --quiet --metrics-interval 0 -o "$work/out" "$@" 2>"$work/err"
			exit=$?
			peak=$(sed -n 's/^peak=//p' "$work/stats")
			[ "$(sed -n 's/^oom_kill=//p' "$work/stats")" = 0 ] || exit="$exit, OOM-killed"
		else
			/usr/bin/time -f %M -o "$work/time" \
				"$vhprep" --quiet --metrics-interval 0 -o "$work/out" "$@" 2>"$work/err"
			exit=$?
			peak=$(($(tail -1 "$work/time") * 1024))
		fi
		set -e
		s=$work/out/vhprep-summary.json
		if [ -f "$s" ]; then
			echo "| $name | $how | $(jq -r '.config.memory_from' "$s") $(($(jq -r '.config.memory' "$s") >> 20)) MiB | $((peak >> 20)) MiB | $exit | $(jq -r '.files.processed' "$s") | $(jq -r '[.failures | to_entries[] | "\(.value.count) \(.key)"] | join(", ")' "$s") |"
		else
			echo "| $name | $how | | $((peak >> 20)) MiB | $exit | no summary | $(tail -c 200 "$work/err" | tr '\n|' '  ') |"
		fi
	done
}

echo "## vhprep memory bounds: $(nproc) cores; $(date -u +%Y-%m-%d)"
echo
echo "| input | limit | --memory (from) | peak | exit | processed | failures |"
echo "|---|---|---:|---:|---|---:|---|"
[ $smoke = 1 ] || run "20 GB sparse x.jpg" $((256 << 20)) "$data/sparse"
[ $smoke = 1 ] || run "20 GB sparse x.jpg, --max-file-size 100G" $((256 << 20)) --max-file-size 100G "$data/sparse"
for n in "${nclaims[@]}"; do
	run "$n claims of 10000x10000, -j 32" $((2 << 30)) -j 32 --max-errors 1000 "$data/claims$n"
done
run "$nbig ${bigw}x${bigh} JPEGs, --resize 224, -j 4" $((150 << 20)) --resize 224 -j 4 "$data/big"
run "$nbig ${bigw}x${bigh} JPEGs, --resize 224, -j 4, --read-budget 16M" $((150 << 20)) --resize 224 -j 4 --read-budget 16M "$data/big"
