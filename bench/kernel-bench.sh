#!/usr/bin/env bash
# The kernel benchmark (issue 7, "A JPEG fast path"): the two kernels side by side, in
# process, on the same photo-like JPEGs: milliseconds per image on one thread,
# instructions per image (callgrind), and the mean absolute difference (MAD, 0-255) of
# each kernel's output against the PIL loop's output for the same input.
#
#   bash bench/kernel-bench.sh [--count N] [--size WxH] [--quality Q] [--reps R]
#                              [--results FILE] [--smoke]
#
# Defaults: 300 vhprep-mkimages photos of 500x375 at quality 90 → stretch 224x224 at
# quality 75 (the Valohai docs' PIL loop: img.resize((224, 224)); img.save(), Pillow's
# default quality 75). Prints a Markdown table and appends one JSON line per kernel to
# bench/results/kernel-<date>.jsonl (or --results FILE). The machines are shared and noisy: read the
# ratios, and the instruction counts, which noise does not move.
#
# bench/kernel-driver.c is compiled here into the build directory (with cc and
# pkg-config) unless the build already has it as bench/vhprep-kernel-driver.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
count=300
size=500x375
quality=90
reps=3
smoke=0
results=
while (($#)); do
	case $1 in
	--count) count=$2; shift 2 ;;
	--size) size=$2; shift 2 ;;
	--quality) quality=$2; shift 2 ;;
	--reps) reps=$2; shift 2 ;;
	--results) results=$2; shift 2 ;;
	--smoke) smoke=1; count=20; reps=1; shift ;;
	*) echo "usage: $0 [--count N] [--size WxH] [--quality Q] [--reps R] [--results FILE]" \
		"[--smoke]" >&2; exit 2 ;;
	esac
done

build=${VHPREP_BUILD_DIR:-$root/build}
mkimages=$build/bench/vhprep-mkimages
python=/usr/bin/python3 # Debian's, which has python3-pil
[ -x "$mkimages" ] || { echo "kernel-bench: $mkimages missing: build first" >&2; exit 2; }
work=$(mktemp -d "${TMPDIR:-/tmp}/vhprep-kbench.XXXXXX")
trap 'rm -rf "$work"' EXIT
[ -n "$results" ] || results=$root/bench/results/kernel-$(date -u +%Y%m%d).jsonl
[ "$smoke" = 1 ] && results=$work/results.jsonl
mkdir -p "$(dirname "$results")"

# -- the driver ------------------------------------------------------------------
driver=$build/bench/vhprep-kernel-driver
if [ ! -x "$driver" ]; then
	driver=$build/bench-kernel/kernel-driver
	mkdir -p "$(dirname "$driver")"
	srcs=(bench/kernel-driver.c kernels/jpegfast.c kernels/vipskernel.c kernels/kernel.c
		kernels/geometry.c common/vherr.c)
	if [ ! -x "$driver" ] || [ -n "$(find "${srcs[@]}" kernels/*.h common/*.h -newer "$driver")" ]; then
		# shellcheck disable=SC2046
		cc -std=gnu11 -O2 -g -D_GNU_SOURCE -DVHPREP_VERSION='"bench"' -I"$root" \
			$(pkg-config --cflags vips libturbojpeg libswscale) -o "$driver" "${srcs[@]}" \
			$(pkg-config --libs vips libturbojpeg libswscale libavutil) -lm
	fi
fi

# -- the data --------------------------------------------------------------------
data=$build/bench-data/kernel-photos-$size-q$quality-$count
if [ ! -f "$data.complete" ]; then
	rm -rf "$data"
	"$mkimages" --preset photos --count "$count" --width "${size%x*}" --height "${size#*x}" \
		--quality "$quality" --out "$data" >&2
	touch "$data.complete"
fi
mapfile -t files < <(find "$data" -name '*.jpg' | sort)

# -- time per image: two interleaved rounds per kernel, the lower median kept ---------
declare -A json cpu wall ir mad
for round in 1 2; do
	for k in jpegfast vips; do
		line=$("$driver" --kernel "$k" --resize 224x224 --quality 75 --reps "$reps" "${files[@]}")
		c=$(sed -E 's/.*"cpu_median_ms": ([0-9.]+).*/\1/' <<<"$line")
		if [ -z "${cpu[$k]:-}" ] || (($(echo "$c < ${cpu[$k]}" | bc))); then
			cpu[$k]=$c
			wall[$k]=$(sed -E 's/.*"wall_median_ms": ([0-9.]+).*/\1/' <<<"$line")
			json[$k]=$line
		fi
	done
done

# -- instructions per image: (Ir of 3 passes - Ir of 1 pass) / (2 * files) ----------
nir=$((${#files[@]} < 20 ? ${#files[@]} : 20))
collected() {
	VIPSHOME=/nonexistent valgrind --tool=callgrind --callgrind-out-file=/dev/null "$driver" --kernel "$1" \
		--resize 224x224 --quality 75 --reps "$2" "${files[@]:0:$nir}" 2>&1 >/dev/null |
		sed -nE 's/.*Collected : ([0-9]+).*/\1/p'
}
if command -v valgrind >/dev/null; then
	for k in jpegfast vips; do
		one=$(collected "$k" 1)
		three=$(collected "$k" 3)
		ir[$k]=$(((three - one) / (2 * nir)))
	done
fi

# -- MAD against the PIL loop ----------------------------------------------------------
for k in jpegfast vips; do
	mkdir -p "$work/$k"
	"$driver" --kernel "$k" --resize 224x224 --quality 75 --out "$work/$k" "${files[@]}" >/dev/null
done
printf '%s\n' "${files[@]}" >"$work/list"
eval "$("$python" - "$work/list" "$work/jpegfast" "$work/vips" <<'EOF'
import io, os, sys
from PIL import Image

paths = [l.strip() for l in open(sys.argv[1])]
dirs = {"jpegfast": sys.argv[2], "vips": sys.argv[3]}
total = {k: 0.0 for k in dirs}
for p in paths:
    im = Image.open(p)
    buf = io.BytesIO()
    im.resize((224, 224)).save(buf, "JPEG")  # the docs' loop: default filter, quality 75
    ref = Image.open(io.BytesIO(buf.getvalue())).convert("RGB").tobytes()
    for k, d in dirs.items():
        out = Image.open(os.path.join(d, os.path.basename(p))).convert("RGB").tobytes()
        total[k] += sum(abs(a - b) for a, b in zip(out, ref)) / len(ref)
for k in dirs:
    print(f"mad[{k}]={total[k] / len(paths):.3f}")
EOF
)"

# -- report ----------------------------------------------------------------------------
echo "| kernel | ms/image CPU (median) | ms/image wall (median) | instructions/image | MAD vs PIL loop |"
echo "|---|---:|---:|---:|---:|"
for k in jpegfast vips; do
	echo "| $k | ${cpu[$k]} | ${wall[$k]} | ${ir[$k]:-n/a} | ${mad[$k]} |"
done
echo "speed-up jpegfast vs vips: CPU $(echo "scale=2; ${cpu[vips]} / ${cpu[jpegfast]}" | bc)x," \
	"instructions $( [ -n "${ir[vips]:-}" ] && echo "scale=2; ${ir[vips]} / ${ir[jpegfast]}" | bc)x" \
	"(${#files[@]} files of $size q$quality, $reps passes; $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg))"
for k in jpegfast vips; do
	printf '{"date": "%s", "size": "%s", "quality": %d, "instructions_per_image": %s, "mad_vs_pil": %s, "run": %s}\n' \
		"$(date -u +%FT%TZ)" "$size" "$quality" "${ir[$k]:-null}" "${mad[$k]}" "${json[$k]}" >>"$results"
done
echo "kernel-bench: results appended to $results" >&2
