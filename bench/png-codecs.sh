#!/usr/bin/env bash
# The PNG codec choice of png-fast (issue 16, item 1), by instruction counts (callgrind:
# repeatable on a shared machine, unlike times):
#   decoders  libspng 0.7 against libpng 1.6, decoding each set's input PNGs to RGBA8;
#   encoders  libdeflate 1-12, zlib 1-9 (libpng's and Pillow's) and ISA-L igzip 0-3,
#             compressing the filtered rows png-fast writes for each set's 224x224
#             outputs: instructions per file and bytes against Pillow's PNGs of the
#             same inputs (img.resize((224, 224)).save(): zlib level 6, adaptive
#             filters, Pillow's own picture);
#   the kernel png-fast (at --png-level 1-9) and libvips, each whole, per file.
#
#   bash bench/png-codecs.sh [--files N] [--smoke]
#
# Sets: the icons, cifar and gray16 shapes of bench/shapes-bench.sh (made there, or here
# if missing, under $build/bench-data), N files of each (default 60), spread evenly.
# Prints Markdown tables on stdout; each command it counts is printed on stderr first.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
files=60
smoke=0
while (($#)); do
	case $1 in
	--files) files=$2; shift 2 ;;
	--smoke) smoke=1; files=4; shift ;;
	*) echo "usage: $0 [--files N] [--smoke]" >&2; exit 2 ;;
	esac
done
build=${VHPREP_BUILD_DIR:-$root/build}
codecs=$build/bench/vhprep-png-codecs
driver=$build/bench/vhprep-kernel-driver
python=/usr/bin/python3
for tool in "$codecs" "$driver"; do
	[ -x "$tool" ] || { echo "png-codecs: $tool missing: build first (libpng, zlib, libisal dev packages)" >&2; exit 2; }
done
command -v valgrind >/dev/null || { echo "png-codecs: valgrind missing" >&2; exit 2; }
work=$(mktemp -d "${TMPDIR:-/tmp}/vhprep-pngcodecs.XXXXXX")
trap 'rm -rf "$work"' EXIT

tag=$([ "$smoke" = 1 ] && echo smoke || echo full)
data=$build/bench-data/shapes-$tag-p$(nproc)
for s in icons cifar gray16; do
	make=(bash bench/shapes-bench.sh --shapes "$s")
	[ "$smoke" = 1 ] && make+=(--smoke)
	[ -f "$data/$s.complete" ] || "${make[@]}" >/dev/null
done

# shellcheck source=bench/callgrind-lib.sh
source bench/callgrind-lib.sh
per_file() { echo "$(($1 / $2))"; }
ratio() { printf '%.3f' "$(echo "$1 / $2" | bc -l)"; }

declare -A pick pil_bytes n_of
for s in icons cifar gray16; do
	mapfile -t all < <(find "$data/$s" -name '*.png' | sort)
	step=$(((${#all[@]} + files - 1) / files))
	pick[$s]=$(for ((i = 0; i < ${#all[@]}; i += step)); do echo "${all[i]}"; done)
	n_of[$s]=$(wc -l <<<"${pick[$s]}")
	mkdir -p "$work/$s-pil" "$work/$s-out"
	# shellcheck disable=SC2086
	"$python" - "$work/$s-pil" ${pick[$s]} <<'EOF'
import os, sys
from PIL import Image
for p in sys.argv[2:]:
    Image.open(p).resize((224, 224)).save(os.path.join(sys.argv[1], os.path.basename(p)))
EOF
	pil_bytes[$s]=$(cat "$work/$s-pil"/* | wc -c)
	# shellcheck disable=SC2086
	"$driver" --kernel pngfast --format png --resize 224x224 --out "$work/$s-out" ${pick[$s]} >/dev/null
done

echo "### PNG decoders: instructions per file, decoding to 8-bit RGBA (callgrind)"
echo
echo "| set | files | libspng 0.7 | libpng 1.6 | libpng / libspng |"
echo "|---|---:|---:|---:|---:|"
for s in icons cifar gray16; do
	# shellcheck disable=SC2086
	a=$(cg_count --toggle 'decode_*' "$codecs" decode spng ${pick[$s]})
	# shellcheck disable=SC2086
	b=$(cg_count --toggle 'decode_*' "$codecs" decode libpng ${pick[$s]})
	echo "| $s | ${n_of[$s]} | $(per_file "$a" "${n_of[$s]}") | $(per_file "$b" "${n_of[$s]}") | $(ratio "$b" "$a") |"
done
echo

echo "### Deflate encoders on png-fast's filtered rows (224x224 outputs): instructions per file, bytes vs Pillow's PNGs"
echo
echo "| encoder | $(printf '%s instr/file | %s bytes vs PIL | ' icons icons cifar cifar gray16 gray16)"
echo "|---|---:|---:|---:|---:|---:|---:|"
for enc in "libdeflate 1" "libdeflate 4" "libdeflate 6" "libdeflate 7" "libdeflate 9" \
	"zlib 1" "zlib 3" "zlib 6" "isal 1" "isal 3"; do
	row="| ${enc/ / level } |"
	for s in icons cifar gray16; do
		# shellcheck disable=SC2086
		c=$(cg_count --toggle 'encode_*' "$codecs" encode $enc "$work/$s-out"/*)
		bytes=$(sed -E 's/.*"out_bytes": ([0-9]+).*/\1/' "$work/out")
		# a PNG adds 57 bytes of signature and chunks to the zlib stream
		row+=" $(per_file "$c" "${n_of[$s]}") | $(ratio "$((bytes + 57 * ${n_of[$s]}))" "${pil_bytes[$s]}") |"
	done
	echo "$row"
done
echo

echo "### The whole kernel: instructions per file (callgrind), output bytes vs Pillow's"
echo
echo "| kernel | $(printf '%s instr/file | %s bytes vs PIL | ' icons icons cifar cifar gray16 gray16)"
echo "|---|---:|---:|---:|---:|---:|---:|"
levels=(1 4 6 7 9)
[ "$smoke" = 1 ] && levels=(7)
for k in "${levels[@]/#/pngfast }" "vips 0"; do
	name=${k% *}
	level=${k#* }
	row="| $([ "$name" = vips ] && echo "libvips (zlib 3, as today)" || echo "png-fast --png-level $level") |"
	for s in icons cifar gray16; do
		rm -rf "$work/k" && mkdir -p "$work/k"
		kcmd=("$driver" --kernel "$name" --format png --png-level "$level" --resize 224x224)
		# shellcheck disable=SC2086
		"${kcmd[@]}" --out "$work/k" ${pick[$s]} >/dev/null
		# shellcheck disable=SC2086
		c=$(cg_pass "${kcmd[@]}" -- ${pick[$s]})
		row+=" $(per_file "$c" "${n_of[$s]}") | $(ratio "$(cat "$work/k"/* | wc -c)" "${pil_bytes[$s]}") |"
	done
	echo "$row"
done
