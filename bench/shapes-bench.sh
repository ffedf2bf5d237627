#!/usr/bin/env bash
# The dataset-shape benchmark (issue 16, "Fast on every dataset shape"): vhprep against the
# peers a user would otherwise run, on each shape of image set, side by side in one run.
#
#   bash bench/shapes-bench.sh [--shapes icons,cifar,gray16,photos,big,camera]
#                              [--baseline VHPREP_BIN] [--scale F] [--smoke]
#
# Shapes (made once under $build/bench-data/shapes-*, reused; bench/shapes.py makes them):
#   icons   3,000 icon PNGs of Debian's adwaita-icon-theme and hicolor-icon-theme
#           (RGBA, grey+alpha and palette, 8-512 px)                      -> 224x224 PNG
#   cifar   2,000 CIFAR-like 32x32 RGB PNGs (mkimages photos, shrunk)     -> 224x224 PNG
#   gray16  300 16-bit grey 512x512 PNGs (medical-like, 12 bits used)    -> 224x224 PNG
#   photos  2,000 photo-like 500x375 JPEGs (vhprep-mkimages, q90)         -> 224x224 JPEG
#   big     24 JPEGs of 4000x3000 (12 MP, q90)                            -> 224x224 JPEG
#   camera  300 ~100 KB 1600x1200 q75 JPEGs with EXIF (orientation 1/6/3/8) -> 224x224 JPEG
# Runs per shape, each command printed before it runs (stderr, "# shape/run: command"):
#   vhprep, $cores threads, --format keep --quality 75 (PIL's default quality)
#   vhprep --kernel vips, the same (what every PNG got before png-fast)
#   --baseline BIN, the same (e.g. a build of main: "nothing slower than today")
#   the docs' PIL loop (bench/peers/python_loop.py, /usr/bin/python3), one process
#   the same loop, one process per core (one per part folder p0..)
#   find | xargs -P$cores -n 50 vipsthumbnail -s 224x224! (Q=75 for JPEG)
# then, for vhprep and vhprep --kernel vips: output bytes against PIL's and the mean
# absolute difference (MAD, 0-255) of the pictures against PIL's (bench/shapes.py compare;
# the docs' loop ignores EXIF orientation, so PIL's pictures are turned first).
#
# Output: one Markdown table per shape and a summary table on stdout; raw runs as JSON
# lines in bench/results/shapes-<date>.jsonl. Rates are files/s over the whole command
# (wall clock) and files per CPU second (user + sys of the command and every process it
# waited for): the machines are shared and noisy, so read the ratios, measured in one
# run. On an overloaded machine the wall ratios favour whoever runs more threads (the
# scheduler shares the cores per thread: libvips and vipsthumbnail run helper threads),
# so read the CPU ratios there. --scale F makes every set F times its size. Every run's output count is checked against the input count. --smoke runs it all
# on a few files per shape (ctest test_shapes_bench checks the tables, never timings).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
shapes=icons,cifar,gray16,photos,big,camera
baseline=
scale=1
smoke=0
while (($#)); do
	case $1 in
	--shapes) shapes=$2; shift 2 ;;
	--baseline) baseline=$2; shift 2 ;;
	--scale) scale=$2; shift 2 ;;
	--smoke) smoke=1; shift ;;
	*) echo "usage: $0 [--shapes LIST] [--baseline VHPREP_BIN] [--scale F] [--smoke]" >&2; exit 2 ;;
	esac
done

build=${VHPREP_BUILD_DIR:-$root/build}
vhprep=$build/vhprep
mkimages=$build/bench/vhprep-mkimages
python=/usr/bin/python3 # Debian's, which has python3-pil
for tool in "$vhprep" "$mkimages"; do
	[ -x "$tool" ] || { echo "shapes-bench: $tool missing: build first" >&2; exit 2; }
done
command -v vipsthumbnail >/dev/null || { echo "shapes-bench: vipsthumbnail missing (libvips-tools)" >&2; exit 2; }
cores=$(nproc)
work=$(mktemp -d "${TMPDIR:-/tmp}/vhprep-shapes.XXXXXX")
trap 'rm -rf "$work"' EXIT
results=$root/bench/results/shapes-$(date -u +%Y%m%d).jsonl
[ "$smoke" = 1 ] && results=$work/results.jsonl
mkdir -p "$(dirname "$results")"

# -- the datasets ---------------------------------------------------------------------
declare -A count=([icons]=3000 [cifar]=2000 [gray16]=300 [photos]=2000 [big]=24 [camera]=300)
big_size=4000x3000
if [ "$smoke" = 1 ]; then
	count=([icons]=12 [cifar]=12 [gray16]=4 [photos]=12 [big]=2 [camera]=8)
	big_size=800x600
fi
for s in "${!count[@]}"; do
	count[$s]=$(awk -v n="${count[$s]}" -v f="$scale" 'BEGIN { n = int(n * f + 0.5); print n < 2 ? 2 : n }')
done
tag=$([ "$smoke" = 1 ] && echo smoke || echo full)
[ "$scale" = 1 ] || tag=$tag-x$scale
data=$build/bench-data/shapes-$tag-p$cores

# photos N W H Q DIR: vhprep-mkimages photos spread over $cores part folders
photos() {
	"$mkimages" --preset photos --count "$1" --width "$2" --height "$3" --quality "$4" \
		--per-dir "$(((($1) + cores - 1) / cores))" --out "$5" >&2
	# class folders n0000.. become p0..: the per-core peer takes one each
	local i=0 d
	for d in "$5"/n*/; do
		mv "$d" "$5/p$i"
		i=$((i + 1))
	done
}

make_shape() {
	local s=$1 dir=$data/$1 n=${count[$1]}
	[ -f "$dir.complete" ] && return 0
	rm -rf "$dir" "$dir.src"
	echo "shapes-bench: making $s ($n files) in $dir" >&2
	case $s in
	icons) "$python" bench/shapes.py icons "$dir" "$n" "$cores" ;;
	cifar | gray16)
		"$mkimages" --preset photos --count "$((n < 200 ? n : 200))" --out "$dir.src" >&2
		"$python" bench/shapes.py "$s" "$dir.src" "$dir" "$n" "$cores" ;;
	photos) photos "$n" 500 375 90 "$dir" ;;
	big) photos "$n" "${big_size%x*}" "${big_size#*x}" 90 "$dir" ;;
	camera)
		photos "$n" 1600 1200 75 "$dir.src"
		"$python" bench/shapes.py exif "$dir.src" "$dir" "$cores" ;;
	esac
	rm -rf "$dir.src"
	touch "$dir.complete"
}

ext_of() { case $1 in icons | cifar | gray16) echo png ;; *) echo jpg ;; esac; }

# -- the runs -------------------------------------------------------------------------
declare -A rate cpu
# measure SHAPE NAME COMMAND...: runs COMMAND once with @IN@/@OUT@ substituted, records
# files/s, checks the output count, prints the command first.
measure() {
	local shape=$1 name=$2
	shift 2
	local in=$data/$shape out=$work/$shape-$name
	rm -rf "$out"
	mkdir -p "$out"
	local cmd=("${@//@OUT@/$out}")
	cmd=("${cmd[@]//@IN@/$in}")
	echo "# $shape/$name: ${cmd[*]}" >&2
	local t0 t1 secs produced cpu_s
	t0=$(date +%s.%N)
	/usr/bin/time -f "%U %S" -o "$work/cpu" "${cmd[@]}" >"$work/stdout" 2>"$work/stderr" ||
		{ echo "shapes-bench: $shape/$name failed:" >&2; tail -5 "$work/stderr" >&2; exit 1; }
	t1=$(date +%s.%N)
	secs=$(echo "$t1 - $t0" | bc -l)
	cpu_s=$(awk '{ print $1 + $2 }' "$work/cpu")
	produced=$(find "$out" -type f -name "*.$(ext_of "$shape")" ! -name vhprep-preview.jpg | wc -l)
	if [ "$produced" -ne "$nfiles" ]; then
		echo "shapes-bench: $shape/$name produced $produced of $nfiles files" >&2
		exit 1
	fi
	rate[$shape/$name]=$(echo "$nfiles / $secs" | bc -l)
	cpu[$shape/$name]=$(echo "$nfiles / ($cpu_s + 0.001)" | bc -l)
	printf '{"bench":"shapes","shape":"%s","name":"%s","files":%d,"seconds":%.3f,"files_per_s":%.1f,"cpu_seconds":%.2f,"files_per_cpu_s":%.1f,"cores":%d,"load":%s,"date":"%s"}\n' \
		"$shape" "$name" "$nfiles" "$secs" "${rate[$shape/$name]}" "$cpu_s" \
		"${cpu[$shape/$name]}" "$cores" "$(cut -d' ' -f1 /proc/loadavg)" \
		"$(date -u +%FT%TZ)" >>"$results"
}

declare -A cmp
# compare SHAPE NAME: bytes and MAD of NAME's outputs against the one-process PIL loop's
compare() {
	local line
	line=$("$python" bench/shapes.py compare "$work/$1-python-loop/processed_images" \
		"$work/$1-$2/processed_images" "$data/$1")
	cmp[$1/$2]=$line
	printf '{"bench":"shapes","shape":"%s","name":"%s","compare":%s}\n' "$1" "$2" "$line" >>"$results"
}
field() { sed -E "s/.*\"$2\": ([0-9.]+|null).*/\\1/" <<<"${cmp[$1]}"; }

r() { printf '%.1f' "${rate[$1]}"; }
x() { printf '%.2fx' "$(echo "${rate[$1]} / ${rate[$2]}" | bc -l)"; }
rc() { printf '%.1f' "${cpu[$1]}"; }
xc() { printf '%.2fx' "$(echo "${cpu[$1]} / ${cpu[$2]}" | bc -l)"; }
bytes_ratio() {
	printf '%.2fx' "$(echo "$(field "$1" bytes_other) / $(field "$1" bytes_pil)" | bc -l)"
}

run_shape() {
	local s=$1 e
	e=$(ext_of "$s")
	nfiles=$(find "$data/$s" -type f -name "*.$e" | wc -l)
	local vh=("$vhprep" --resize 224 --quality 75 --format keep --threads "$cores" --quiet
		--metrics-interval 0 --outputs @OUT@)
	local vt_out='%s.png'
	[ "$e" = jpg ] && vt_out='%s.jpg[Q=75]'
	measure "$s" vhprep "${vh[@]}" @IN@
	measure "$s" vhprep-vips "${vh[@]}" --kernel vips @IN@
	if [ -n "$baseline" ]; then
		local base=("${vh[@]}")
		base[0]=$baseline
		measure "$s" baseline "${base[@]}" @IN@
	fi
	measure "$s" python-loop "$python" bench/peers/python_loop.py --size 224 --ext ".$e" @IN@ @OUT@
	# shellcheck disable=SC2016 # the inner sh expands them
	measure "$s" python-per-core sh -c 'for d in "$1"/*/; do "$3" bench/peers/python_loop.py --size 224 --ext "$4" "$d" "$2/$(basename "$d")" >/dev/null & done; wait' \
		sh @IN@ @OUT@ "$python" ".$e"
	# shellcheck disable=SC2016 # the inner sh expands them
	measure "$s" vipsthumbnail sh -c 'find "$1" -name "*.$4" | xargs -P "$3" -n 50 vipsthumbnail -s "224x224!" -o "$2/$5"' \
		sh @IN@ @OUT@ "$cores" "$e" "$vt_out"
	compare "$s" vhprep
	compare "$s" vhprep-vips

	echo "### $s: $nfiles files -> 224x224 $e, $cores cores, $(date -u +%F)"
	echo
	echo "vhprep's kernels on $s: $(grep -o '"kernel":"[a-z-]*"' "$work/$s-vhprep/valohai.metadata.jsonl" |
		sort | uniq -c | awk '{ sub(/"kernel":/, "", $2); gsub(/"/, "", $2); printf "%s%s %d", sep, $2, $1; sep = ", " }')"
	echo
	echo "| run | files/s | vhprep is | files per CPU-s | vhprep is (CPU) | output bytes vs PIL | MAD vs PIL (alpha) |"
	echo "|---|---:|---:|---:|---:|---:|---:|"
	row() { echo "| $1 | $(r "$s/$2") | $(x "$s/vhprep" "$s/$2") | $(rc "$s/$2") | $(xc "$s/vhprep" "$s/$2") | $3 | $4 |"; }
	row "vhprep, $cores threads" vhprep "$(bytes_ratio "$s/vhprep")" "$(field "$s/vhprep" mad) ($(field "$s/vhprep" mad_alpha))"
	row "vhprep --kernel vips, $cores threads" vhprep-vips "$(bytes_ratio "$s/vhprep-vips")" "$(field "$s/vhprep-vips" mad) ($(field "$s/vhprep-vips" mad_alpha))"
	[ -n "$baseline" ] && row "baseline vhprep ($baseline), $cores threads" baseline "" ""
	row "Python/PIL loop (Valohai docs), one process" python-loop 1.00x 0
	row "Python/PIL loop, one process per core" python-per-core "" ""
	row "find \\| xargs -P$cores vipsthumbnail" vipsthumbnail "" ""
	echo
}

IFS=, read -r -a list <<<"$shapes"
for s in "${list[@]}"; do
	[ -n "${count[$s]:-}" ] || { echo "shapes-bench: unknown shape '$s'" >&2; exit 2; }
	make_shape "$s"
done
for s in "${list[@]}"; do
	run_shape "$s"
done

echo "### Summary: vhprep, $cores threads, against each peer ($(date -u +%F), load $(cut -d' ' -f1 /proc/loadavg))"
echo
echo "| shape | vhprep files/s | vs PIL loop | vs PIL loop per core | vs xargs -P$cores vipsthumbnail | vs --kernel vips | output bytes vs PIL | MAD vs PIL |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for s in "${list[@]}"; do
	echo "| $s | $(r "$s/vhprep") | $(x "$s/vhprep" "$s/python-loop") | $(x "$s/vhprep" "$s/python-per-core") | $(x "$s/vhprep" "$s/vipsthumbnail") | $(x "$s/vhprep" "$s/vhprep-vips") | $(bytes_ratio "$s/vhprep") | $(field "$s/vhprep" mad) |"
done
echo
echo "### Summary by CPU time: files per CPU second, vhprep against each peer"
echo
echo "| shape | vhprep files/CPU-s | vs PIL loop | vs PIL loop per core | vs xargs -P$cores vipsthumbnail | vs --kernel vips |$([ -n "$baseline" ] && echo " vs baseline |")"
echo "|---|---:|---:|---:|---:|---:|$([ -n "$baseline" ] && echo "---:|")"
for s in "${list[@]}"; do
	echo "| $s | $(rc "$s/vhprep") | $(xc "$s/vhprep" "$s/python-loop") | $(xc "$s/vhprep" "$s/python-per-core") | $(xc "$s/vhprep" "$s/vipsthumbnail") | $(xc "$s/vhprep" "$s/vhprep-vips") |$([ -n "$baseline" ] && echo " $(xc "$s/vhprep" "$s/baseline") |")"
done
echo "raw runs: $results" >&2
