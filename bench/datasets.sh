#!/usr/bin/env bash
# datasets.sh: the benchmark datasets, generated deterministically and reused when present.
#
#   bash bench/datasets.sh [--root DIR] [--count N] [--dirs D] [--per-dir F] NAME...
#
# NAME is one of
#   imagenet-like  --count photo-like 500x375 JPEGs at quality 95 (~104 KB each, close to
#                  ImageNet's ~110 KB average), in class folders of --per-dir files
#                  (defaults 2600 files, 1300 per folder, as in ImageNet's train set)
#   flat           one folder of --count empty files (default 100000; up to 1M)
#   wide           --dirs folders of --per-dir empty files each (default 1000 x 100)
# Each dataset is written by build/bench/vhprep-mkimages (presets photos, flat and wide,
# --empty for the walk sets: 1M empty files take ~20 s) into ROOT/<name>-<sizes>, where ROOT
# is --root, else $VHPREP_BENCH_DATA, else $VHPREP_BUILD_DIR/bench-data (default
# build/bench-data). A stamp file ROOT/<name>-<sizes>.complete (beside the dataset, so
# walks never see it) marks a finished dataset: a rerun reuses it, an interrupted one is
# regenerated. Prints one line per dataset on stdout: NAME<TAB>DIR<TAB>FILES<TAB>DIRS.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=$(realpath -m -- "${VHPREP_BUILD_DIR:-$here/../build}")
root=${VHPREP_BENCH_DATA:-$build/bench-data}
mkimages=$build/bench/vhprep-mkimages
count=""
dirs=""
per_dir=""

usage() {
	sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
	exit "${1:-2}"
}

# ensure DIR CMD...: runs CMD (which writes DIR) unless DIR's stamp says it is complete.
ensure() {
	local dir=$1
	shift
	[ -f "$dir.complete" ] && return 0
	rm -rf -- "$dir"
	echo "datasets: generating $dir" >&2
	"$@" --out "$dir" >&2
	touch -- "$dir.complete"
}

# Each dataset function prints NAME<TAB>DIR<TAB>FILES<TAB>DIRS after ensuring it exists.
imagenet_like() {
	local n=${count:-2600} per=${per_dir:-1300} dir
	dir=$root/imagenet-like-$n-$per
	ensure "$dir" "$mkimages" --preset photos --count "$n" --per-dir "$per" --quality 95
	printf 'imagenet-like\t%s\t%d\t%d\n' "$dir" "$n" $(((n + per - 1) / per))
}

flat() {
	local n=${count:-100000} dir
	dir=$root/flat-$n
	ensure "$dir" "$mkimages" --preset flat --empty --count "$n"
	printf 'flat\t%s\t%d\t0\n' "$dir" "$n"
}

wide() {
	local d=${dirs:-1000} f=${per_dir:-100} dir
	dir=$root/wide-$d-$f
	ensure "$dir" "$mkimages" --preset wide --empty --dirs "$d" --files "$f"
	printf 'wide\t%s\t%d\t%d\n' "$dir" $((d * f)) "$d"
}

names=()
while (($#)); do
	case $1 in
	--root) root=$2; shift 2 ;;
	--count) count=$2; shift 2 ;;
	--dirs) dirs=$2; shift 2 ;;
	--per-dir) per_dir=$2; shift 2 ;;
	-h | --help) usage 0 ;;
	-*) echo "datasets: unknown option '$1'" >&2; usage ;;
	*) names+=("$1"); shift ;;
	esac
done
[ ${#names[@]} -gt 0 ] || usage
[ -x "$mkimages" ] || { echo "datasets: $mkimages missing: build first (cmake --build build)" >&2; exit 2; }
mkdir -p -- "$root"
root=$(realpath -- "$root")
for name in "${names[@]}"; do
	case $name in
	imagenet-like) imagenet_like ;;
	flat) flat ;;
	wide) wide ;;
	*) echo "datasets: unknown dataset '$name' (imagenet-like, flat, wide)" >&2; exit 2 ;;
	esac
done
