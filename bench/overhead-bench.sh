#!/usr/bin/env bash
# overhead-bench.sh: the pipeline's per-file overhead (issue 16 item 2), measured alone:
# `vhprep --format keep` over N 1x1 PNGs from page cache (decode and encode of one pixel
# cost next to nothing, so what is left is the walk, the read, the hand-offs between
# threads, the output's write and its record). Reports files/s and the synchronisations
# per file: futex system calls (perf's syscalls:sys_enter_futex tracepoint, else
# strace -f -c) and context switches, each divided by the file count, and the process's
# CPU time (user + sys) per file, the figure least disturbed by other load on a shared
# machine. The target on 2 cores is >= 50k files/s.
#
#   bash bench/overhead-bench.sh [--count 100000] [--runs 3] [--threads N]
#                                [--outputs DIR] [--vhprep PATH]... [--smoke]
#
# --outputs: where the outputs go (default /dev/shm when it exists, else $TMPDIR): on a
# disk file system, creating 100k inodes costs more than the whole pipeline.
#
# --vhprep may be given several times (e.g. a build before and after a change): the runs
# are interleaved (A B A B ...) and the table shows each binary's median and the ratio to
# the first, measured in one run of this script. Raw runs go to
# bench/results/overhead-<date>.jsonl (--smoke: 2,000 files, 1 run, a temporary file).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
count=100000
runs=3
smoke=0
threads=$(nproc)
bins=()
outroot=
while (($#)); do
	case $1 in
	--count) count=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--threads) threads=$2; shift 2 ;;
	--vhprep) bins+=("$2"); shift 2 ;;
	--outputs) outroot=$2; shift 2 ;;
	--smoke) smoke=1; count=2000; runs=1; shift ;;
	-h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "overhead-bench: unknown argument '$1'" >&2; exit 2 ;;
	esac
done
build=${VHPREP_BUILD_DIR:-$root/build}
((${#bins[@]})) || bins=("$build/vhprep")
for b in "${bins[@]}"; do
	[ -x "$b" ] || { echo "overhead-bench: $b missing: build first (cmake --build build)" >&2; exit 2; }
done
[ -x /usr/bin/time ] || { echo "overhead-bench: needs /usr/bin/time" >&2; exit 2; }
command -v python3 >/dev/null || { echo "overhead-bench: needs python3" >&2; exit 2; }
work=$(mktemp -d "${TMPDIR:-/tmp}/overhead-bench.XXXXXX")
[ -n "$outroot" ] || { [ -d /dev/shm ] && [ -w /dev/shm ] && outroot=/dev/shm || outroot=$work; }
outdir=$(mktemp -d "$outroot/overhead-out.XXXXXX")
trap 'rm -rf -- "$work" "$outdir"' EXIT
results=$root/bench/results/overhead-$(date -u +%Y%m%d).jsonl
[ "$smoke" = 1 ] && results=$work/results.jsonl
mkdir -p "$(dirname "$results")"

# The dataset: count 1x1 RGB PNGs, 1000 a folder, each with its own pixel (distinct bytes).
data=$build/bench-data/png1x1-$count
if [ ! -f "$data.complete" ]; then
	rm -rf "$data"
	echo "# dataset: $count 1x1 PNGs in $data" >&2
	python3 - "$data" "$count" <<'PY'
import os, struct, sys, zlib
root, n = sys.argv[1], int(sys.argv[2])
def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
for i in range(n):
    d = os.path.join(root, "d%03d" % (i // 1000))
    if i % 1000 == 0:
        os.makedirs(d, exist_ok=True)
    px = bytes([0, i & 255, (i >> 8) & 255, (i >> 16) & 255])
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(px)) + chunk(b"IEND", b""))
    with open(os.path.join(d, "f%06d.png" % i), "wb") as f:
        f.write(png)
PY
	touch "$data.complete"
fi
find "$data" -type f -exec cat {} + >/dev/null # into page cache

counter=perf
perf stat -e syscalls:sys_enter_futex,context-switches true >/dev/null 2>&1 || counter=strace
[ "$counter" = strace ] && ! command -v strace >/dev/null && counter=none

# run I BIN: one timed run (sets RATE), then one counted run (sets FUTEX, CSW per file).
run() {
	local i=$1 bin=$2 out=$outdir/out t0 t1
	local cmd=("$bin" --format keep --threads "$threads" --quiet --metrics-interval 0
		--preview 0 -o "$out" "$data")
	rm -rf "$out"
	echo "# ${cmd[*]}" >&2
	t0=$(date +%s.%N)
	/usr/bin/time -f "%U %S" -o "$work/time" "${cmd[@]}" >/dev/null 2>"$work/err" ||
		{ echo "overhead-bench: vhprep failed:" >&2; tail -5 "$work/err" >&2; exit 1; }
	t1=$(date +%s.%N)
	CPU_US=$(awk -v n="$count" '{ printf "%.1f", ($1 + $2) * 1e6 / n }' "$work/time")
	local made
	made=$(find "$out" -name '*.png' | wc -l)
	[ "$made" -eq "$count" ] || { echo "overhead-bench: $made outputs of $count" >&2; exit 1; }
	RATE=$(awk -v n="$count" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }')
	rm -rf "$out"
	FUTEX=null CSW=null
	case $counter in
	perf)
		perf stat -x, -o "$work/stat" -e syscalls:sys_enter_futex,context-switches "${cmd[@]}" >/dev/null 2>&1
		FUTEX=$(awk -F, -v n="$count" '$3 ~ /futex/ { printf "%.2f", $1 / n }' "$work/stat")
		CSW=$(awk -F, -v n="$count" '$3 ~ /context-switches/ { printf "%.2f", $1 / n }' "$work/stat") ;;
	strace)
		strace -f -c -e trace=futex -o "$work/stat" "${cmd[@]}" >/dev/null 2>&1
		FUTEX=$(awk -v n="$count" '$NF == "futex" { printf "%.2f", $4 / n }' "$work/stat") ;;
	esac
	printf '{"bench":"overhead","vhprep":"%s","run":%d,"files":%d,"threads":%d,"files_per_s":%s,"futex_per_file":%s,"csw_per_file":%s,"cpu_us_per_file":%s,"counter":"%s","date":"%s"}\n' \
		"$bin" "$i" "$count" "$threads" "$RATE" "$FUTEX" "$CSW" "$CPU_US" "$counter" "$(date -u +%FT%TZ)" >>"$results"
	echo "$i $RATE $FUTEX $CSW $CPU_US" >>"$work/rows.$3"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
for ((i = 1; i <= runs; i++)); do
	for j in "${!bins[@]}"; do run "$i" "${bins[$j]}" "$j"; done
done

cat <<MD
### Per-file overhead: vhprep --format keep on $count 1x1 PNGs (page cache), $threads threads, $(nproc) cores, $(date -u +%F)

| vhprep | files/s (median of $runs) | vs first | CPU µs / file | futex calls / file | context switches / file |
|---|---:|---:|---:|---:|---:|
MD
base=
for j in "${!bins[@]}"; do
	r=$(awk '{ print $2 }' "$work/rows.$j" | median)
	f=$(awk '{ print $3 }' "$work/rows.$j" | median)
	c=$(awk '{ print $4 }' "$work/rows.$j" | median)
	u=$(awk '{ print $5 }' "$work/rows.$j" | median)
	[ -n "$base" ] || base=$r
	printf '| %s | %.0f | %.2fx | %s | %s | %s |\n' "${bins[$j]}" "$r" "$(awk -v a="$r" -v b="$base" 'BEGIN { print a / b }')" "$u" "$f" "$c"
done
echo "counter: $counter; raw runs: $results" >&2
