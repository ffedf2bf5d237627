#!/usr/bin/env bash
# The engine benchmark (issue: "The vhprep engine, end to end"): files/s of vhprep and of
# the peers a user would otherwise run, side by side in one run, on a plain directory and
# on a latencyfs mount that delays every operation like a network round trip.
#
#   bash bench/engine-bench.sh [--count N] [--width W --height H] [--delay-ms MS] [--smoke]
#
# Prints a Markdown table of files/s and ratios, and appends the raw runs as JSON lines
# to bench/results/engine-<date>.jsonl. Ratios, not absolute times, are the result: the
# machines are shared and noisy. --smoke runs everything on a tiny set (for CI).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
count=2000
width=500
height=375
delay_ms=2
smoke=0
while (($#)); do
	case $1 in
	--count) count=$2; shift 2 ;;
	--delay-ms) delay_ms=$2; shift 2 ;;
	--width) width=$2; shift 2 ;;
	--height) height=$2; shift 2 ;;
	--smoke) smoke=1; count=60; shift ;;
	*) echo "usage: $0 [--count N] [--width W --height H] [--delay-ms MS] [--smoke]" >&2; exit 2 ;;
	esac
done

build=${VHPREP_BUILD_DIR:-$root/build}
vhprep=$build/vhprep
mkimages=$build/bench/vhprep-mkimages
python=/usr/bin/python3 # Debian's, which has python3-pil
for tool in "$vhprep" "$mkimages"; do
	[ -x "$tool" ] || { echo "engine-bench: $tool missing: build first (cmake --build build)" >&2; exit 2; }
done
cores=$(nproc)
work=$(mktemp -d "${TMPDIR:-/tmp}/vhprep-bench.XXXXXX")
per_dir=$(((count + cores - 1) / cores)) # one class folder per core: the per-core Python peer
data=$build/bench-data/photos-$count-$per_dir-${width}x$height
mnt=$work/mnt
results=$root/bench/results/engine-$(date -u +%Y%m%d).jsonl
[ "$smoke" = 1 ] && results=$work/results.jsonl
mkdir -p "$(dirname "$results")" "$mnt"

cleanup() {
	bash tests/fixtures/latencyfs.sh umount "$mnt" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

if [ ! -f "$data.complete" ]; then
	rm -rf "$data"
	"$mkimages" --preset photos --count "$count" --width "$width" --height "$height" --quality 90 \
		--per-dir "$per_dir" --out "$data" >&2
	touch "$data.complete"
fi
nfiles=$(find "$data" -name '*.jpg' | wc -l)

declare -A rate
# measure NAME INPUT_DIR COMMAND...: runs COMMAND once (outputs to a fresh dir), records
# wall seconds and peak RSS, prints the command so anyone can rerun it.
measure() {
	local name=$1 input=$2
	shift 2
	local out=$work/out-$name
	rm -rf "$out"
	mkdir -p "$out"
	local cmd=("${@//@OUT@/$out}")
	cmd=("${cmd[@]//@IN@/$input}")
	echo "# $name: ${cmd[*]}" >&2
	local t0 t1
	t0=$(date +%s.%N)
	/usr/bin/time -f "%M" -o "$work/rss" "${cmd[@]}" >"$work/stdout" 2>"$work/stderr" ||
		{ echo "engine-bench: $name failed:" >&2; tail -5 "$work/stderr" >&2; exit 1; }
	t1=$(date +%s.%N)
	local secs rss produced
	secs=$(echo "$t1 - $t0" | bc -l)
	rss=$(tail -1 "$work/rss")
	produced=$(find "$out" -type f \( -name '*.jpg' -o -name '*.jpeg' \) ! -name vhprep-preview.jpg | wc -l)
	if [ "$produced" -ne "$nfiles" ]; then
		echo "engine-bench: $name produced $produced of $nfiles files" >&2
		exit 1
	fi
	rate[$name]=$(echo "$nfiles / $secs" | bc -l)
	printf '{"bench":"engine","name":"%s","files":%d,"seconds":%.3f,"files_per_s":%.1f,"peak_rss_kb":%d,"cores":%d,"delay_ms":%s,"date":"%s"}\n' \
		"$name" "$nfiles" "$secs" "${rate[$name]}" "$rss" "$cores" "$delay_ms" \
		"$(date -u +%FT%TZ)" >>"$results"
}

mount_latency() {
	bash tests/fixtures/latencyfs.sh umount "$mnt" >/dev/null 2>&1 || true
	VHPREP_BUILD_DIR=$build bash tests/fixtures/latencyfs.sh mount "$data" "$mnt" "$delay_ms" >&2
}

vh=("$vhprep" --resize 224 --quality 75 --quiet --metrics-interval 0 --outputs @OUT@)
py=("$python" bench/peers/python_loop.py --size 224 @IN@ @OUT@)
# vipsthumbnail writes next to -o's directory part; "!" forces the exact size like PIL's
# resize((224, 224)); Q=75 is PIL's default JPEG quality.
# the same loop, one process per class folder (= per core), as a user could script it
pyp=(sh -c 'for d in "$1"/*/; do "$3" bench/peers/python_loop.py --size 224 "$d" "$2/$(basename "$d")" >/dev/null & done; wait' sh @IN@ @OUT@ "$python")
vt=(sh -c 'find "$1" -name "*.jpg" | xargs -P "$3" -n 50 vipsthumbnail -s "224x224!" -o "$2/%s.jpg[Q=75]"' sh @IN@ @OUT@ "$cores")

measure vhprep-1t "$data" "${vh[@]}" --threads 1 @IN@
measure vhprep-2t "$data" "${vh[@]}" --threads "$cores" @IN@
measure vhprep-vips-1t "$data" "${vh[@]}" --kernel vips --threads 1 @IN@
measure vhprep-vips-2t "$data" "${vh[@]}" --kernel vips --threads "$cores" @IN@
measure python-loop "$data" "${py[@]}"
measure python-per-core "$data" "${pyp[@]}"
measure vipsthumbnail "$data" "${vt[@]}"
lat=0
if mount_latency; then
	lat=1
	measure vhprep-2t-mount "$mnt" "${vh[@]}" --threads "$cores" @IN@
	mount_latency
	measure python-loop-mount "$mnt" "${py[@]}"
else
	echo "engine-bench: latencyfs unavailable: mount rows skipped" >&2
fi

r() { printf '%.1f' "${rate[$1]}"; }
x() { printf '%.2fx' "$(echo "${rate[$1]} / ${rate[$2]}" | bc -l)"; }
cat <<MD
### vhprep engine: $nfiles photo-like ${width}x$height JPEGs -> 224x224 q75, $cores cores, $(date -u +%F)

| run | files/s | vs Python loop | vs vipsthumbnail -P$cores |
|---|---:|---:|---:|
| vhprep, 1 thread, plain dir | $(r vhprep-1t) | $(x vhprep-1t python-loop) | $(x vhprep-1t vipsthumbnail) |
| vhprep, $cores threads, plain dir | $(r vhprep-2t) | $(x vhprep-2t python-loop) | $(x vhprep-2t vipsthumbnail) |
| vhprep --kernel vips, 1 thread, plain dir | $(r vhprep-vips-1t) | $(x vhprep-vips-1t python-loop) | $(x vhprep-vips-1t vipsthumbnail) |
| vhprep --kernel vips, $cores threads, plain dir | $(r vhprep-vips-2t) | $(x vhprep-vips-2t python-loop) | $(x vhprep-vips-2t vipsthumbnail) |
| Python/PIL loop (Valohai docs), plain dir | $(r python-loop) | 1.00x | $(x python-loop vipsthumbnail) |
| Python/PIL loop, one process per core, plain dir | $(r python-per-core) | $(x python-per-core python-loop) | $(x python-per-core vipsthumbnail) |
| find \| xargs -P$cores vipsthumbnail, plain dir | $(r vipsthumbnail) | $(x vipsthumbnail python-loop) | 1.00x |
MD
if [ "$lat" = 1 ]; then
	cat <<MD
| vhprep, $cores threads, latencyfs ${delay_ms} ms/op | $(r vhprep-2t-mount) | $(x vhprep-2t-mount python-loop-mount) (vs loop on mount) | |
| Python/PIL loop, latencyfs ${delay_ms} ms/op | $(r python-loop-mount) | 1.00x | |

vhprep on the ${delay_ms} ms mount runs at $(x vhprep-2t-mount vhprep-2t) of its plain-directory rate; vhprep at $cores threads is $(x vhprep-2t python-per-core) the Python loop run as one process per core.
MD
fi
echo "raw runs: $results" >&2
