#!/usr/bin/env bash
# The DCT scale of jpeg-fast (issue 16, item 3): for large JPEGs shrunk to 224x224, the
# picture and the cost at each rule "decode at the smallest DCT scale (1/2, 1/4, 1/8)
# whose image is still >= KEEP times the planned size on both axes".
#
#   bash bench/dct-bench.sh [--sizes 4000x3000,2000x1500,1600x1200,1024x768]
#                           [--count N] [--keeps 1,1.25,1.5,2,1000] [--smoke]
#
# For each size: N vhprep-mkimages photos (q90, default 12); PIL's output of the docs'
# loop (img.resize((224, 224)).save(q=75)) once; then for each KEEP (1000: never
# scale, a full decode), kernel-driver --kernel jpegfast --dct-keep KEEP: the DCT scale
# it picks, instructions per image (callgrind: 2 passes less 1), CPU ms per image
# (median of 3 passes), and the MAD (0-255, decoded RGB) against PIL's output.
# Prints a Markdown table on stdout; commands on stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
sizes=4000x3000,2000x1500,1600x1200,1024x768
keeps=1,1.25,1.5,2,1000
count=12
while (($#)); do
	case $1 in
	--sizes) sizes=$2; shift 2 ;;
	--keeps) keeps=$2; shift 2 ;;
	--count) count=$2; shift 2 ;;
	--smoke) sizes=1024x768; keeps=1,2; count=2; shift ;;
	*) echo "usage: $0 [--sizes LIST] [--keeps LIST] [--count N] [--smoke]" >&2; exit 2 ;;
	esac
done
build=${VHPREP_BUILD_DIR:-$root/build}
driver=$build/bench/vhprep-kernel-driver
mkimages=$build/bench/vhprep-mkimages
python=/usr/bin/python3
for tool in "$driver" "$mkimages"; do
	[ -x "$tool" ] || { echo "dct-bench: $tool missing: build first" >&2; exit 2; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/vhprep-dct.XXXXXX")
trap 'rm -rf "$work"' EXIT

# shellcheck source=bench/callgrind-lib.sh
source bench/callgrind-lib.sh

echo "### jpeg-fast DCT scale: photo-like JPEGs (q90) -> 224x224 q75, $(date -u +%F)"
echo
echo "| source | KEEP | DCT scale | decoded | instructions/image | CPU ms/image | MAD vs PIL |"
echo "|---|---:|---:|---:|---:|---:|---:|"
IFS=, read -r -a size_list <<<"$sizes"
IFS=, read -r -a keep_list <<<"$keeps"
for size in "${size_list[@]}"; do
	w=${size%x*} h=${size#*x}
	data=$build/bench-data/dct-$size-$count
	if [ ! -f "$data.complete" ]; then
		rm -rf "$data"
		"$mkimages" --preset photos --count "$count" --width "$w" --height "$h" --quality 90 \
			--out "$data" >&2
		touch "$data.complete"
	fi
	mapfile -t files < <(find "$data" -name '*.jpg' | sort)
	mkdir -p "$work/pil-$size"
	"$python" - "$work/pil-$size" "${files[@]}" <<'EOF'
import os, sys
from PIL import Image
for p in sys.argv[2:]:
    Image.open(p).resize((224, 224)).save(os.path.join(sys.argv[1], os.path.basename(p)))
EOF
	for keep in "${keep_list[@]}"; do
		# the scale the rule picks for this size (jpegfast.c's pick_dct_shift)
		scale=1
		for d in 2 4 8; do
			awk -v a="$w" -v b="$h" -v d="$d" -v k="$keep" \
				'BEGIN { exit !(int((a + d - 1) / d) >= k * 224 && int((b + d - 1) / d) >= k * 224) }' ||
				break
			scale=$d
		done
		out=$work/out-$size-$keep
		mkdir -p "$out"
		k=("$driver" --kernel jpegfast --resize 224x224 --quality 75 --dct-keep "$keep")
		line=$("${k[@]}" --reps 3 --out "$out" "${files[@]}")
		cpu=$(sed -E 's/.*"cpu_median_ms": ([0-9.]+).*/\1/' <<<"$line")
		ir=$(cg_pass "${k[@]}" -- "${files[@]}")
		mad=$("$python" - "$work/pil-$size" "$out" <<'EOF'
import os, sys
from PIL import Image, ImageChops, ImageStat
total = n = 0
for f in sorted(os.listdir(sys.argv[1])):
    a = Image.open(os.path.join(sys.argv[1], f)).convert("RGB")
    b = Image.open(os.path.join(sys.argv[2], f)).convert("RGB")
    total += sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3
    n += 1
print("%.3f" % (total / n))
EOF
		)
		echo "| ${size} | $keep | 1/$scale | $(((w + scale - 1) / scale))x$(((h + scale - 1) / scale)) | $((ir / ${#files[@]})) | $cpu | $mad |"
	done
done
