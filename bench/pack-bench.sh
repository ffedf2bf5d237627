#!/usr/bin/env bash
# The pack benchmark (issue 14): writing outputs as tar / tar.zst shards (io/pack) against
# writing them as a directory tree with a temporary name + rename per file (io/dirsink,
# what a dir run does), through bench/pack-driver, on the same files, in one run.
#
#   bash bench/pack-bench.sh [--count N] [--reps R] [--levels "3 19"] [--threads T] [--smoke]
#
# Three sets of --count files (default 2000), made once under build/bench-data:
#   photos  photo-like 500x375 JPEGs at quality 90 (bench/mkimages --preset photos)
#   jpg224  those resized by vhprep to 224x224 JPEG (what a preprocessing run writes)
#   png224  the same as PNG (vhprep --format png; libvips deflate level 3)
# For each set: dir; tar; tar.zst at each of --levels; and zstd's own multi-threaded mode
# (--zstd-workers T with 1 pack thread) against T pack threads compressing their own
# frames. Runs are interleaved (every configuration once, then again, --reps times) and
# the median is reported; rates are files/s and MB/s of input over the packing (first read
# to last shard published, page cache warm), and CPU ms/file the process's CPU time (all
# threads) over the same span per file, which load on a shared machine distorts less. Ratio is input bytes / bytes written
# (shards, for pack; records not counted either way). "stream" is the ratio `zstd -L` gets
# on the whole uncompressed tar: what one zstd frame per output (needed to fetch one
# output with one ranged read) costs. "files per 100k" is what an execution with 100,000
# such outputs leaves for Valohai to upload at the default --shard-size (1 GiB): shards +
# indexes + 3 records, against 100,000 + 3.
#
# Prints a Markdown table; appends raw runs as JSON lines to
# bench/results/pack-<date>.jsonl. Ratios between rows of one run are the result (the
# machine is shared and noisy). --smoke: 40 files, 1 rep, levels 3 (for CI).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
count=2000
reps=3
levels="3 19"
threads=$(nproc)
smoke=0
while (($#)); do
	case $1 in
	--count) count=$2; shift 2 ;;
	--reps) reps=$2; shift 2 ;;
	--levels) levels=$2; shift 2 ;;
	--threads) threads=$2; shift 2 ;;
	--smoke) smoke=1; count=40; reps=1; levels=3; shift ;;
	*) echo "usage: $0 [--count N] [--reps R] [--levels \"3 19\"] [--threads T] [--smoke]" >&2; exit 2 ;;
	esac
done

build=${VHPREP_BUILD_DIR:-$root/build}
vhprep=$build/vhprep
mkimages=$build/bench/vhprep-mkimages
driver=$build/bench/vhprep-pack-driver
for tool in "$vhprep" "$mkimages" "$driver"; do
	[ -x "$tool" ] || { echo "pack-bench: $tool missing: build first (cmake --build build)" >&2; exit 2; }
done
command -v zstd >/dev/null || { echo "pack-bench: the zstd command is missing (apt-get install zstd)" >&2; exit 2; }
work=$(mktemp -d "${TMPDIR:-/tmp}/vhprep-pack-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
data=$build/bench-data/pack-$count
results=$root/bench/results/pack-$(date -u +%Y%m%d).jsonl
[ "$smoke" = 1 ] && results=$work/results.jsonl
mkdir -p "$(dirname "$results")" "$data"

# The three sets, made once (a stamp file marks a complete set).
if [ ! -f "$data/complete" ]; then
	rm -rf "$data"/*
	echo "# making the sets in $data" >&2
	"$mkimages" --preset photos --count "$count" --per-dir 500 --quality 90 --out "$data/photos" >&2
	"$vhprep" -q --metrics-interval 0 --resize 224 -o "$data/jpg224" "$data/photos"
	"$vhprep" -q --metrics-interval 0 --resize 224 --format png -o "$data/png224" "$data/photos"
	touch "$data/complete"
fi
declare -A src=([photos]=$data/photos [jpg224]=$data/jpg224/processed_images
	[png224]=$data/png224/processed_images)
sets="photos jpg224 png224"

# The configurations: name and driver arguments.
configs=("dir|--format dir --threads $threads" "tar|--format tar --threads $threads")
for l in $levels; do
	configs+=("tar.zst-$l|--format tar.zst --level $l --threads $threads")
done
if [ "$threads" -gt 1 ]; then
	l=${levels%% *}
	configs+=("tar.zst-$l-1thread|--format tar.zst --level $l --threads 1"
		"tar.zst-$l-zstdmt$threads|--format tar.zst --level $l --threads 1 --zstd-workers $threads")
fi

declare -A runs
for rep in $(seq "$reps"); do
	for set in $sets; do
		cat $(find "${src[$set]}" -type f) >/dev/null # warm the page cache
		for c in "${configs[@]}"; do
			name=${c%%|*}
			args=${c#*|}
			out=$work/out
			rm -rf "$out"
			mkdir -p "$out"
			echo "# $set/$name rep $rep: $driver $args ${src[$set]} $out" >&2
			# shellcheck disable=SC2086
			line=$("$driver" $args "${src[$set]}" "$out")
			echo "{\"set\":\"$set\",\"config\":\"$name\",\"rep\":$rep,\"run\":$line,\"date\":\"$(date -u +%FT%TZ)\",\"cores\":$(nproc),\"load\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}" >>"$results"
			runs[$set/$name]+="$line"$'\n'
			if [ "$name" = tar ] && [ "$rep" = 1 ]; then
				# what one stream over the whole tar would get, for comparison
				tarbytes=$(cat "$out"/*.tar | wc -c)
				for l in $levels; do
					z=$(cat "$out"/*.tar | zstd -q -"$l" -T"$threads" -c | wc -c)
					runs[$set/stream-$l]=$(echo "scale=4; $tarbytes / $z" | bc)
				done
			fi
		done
	done
done

# median VALUES...: the middle value (the lower of the two middles for an even count)
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
field() { jq -r ".$1"; }

echo
echo "Pack benchmark, $count files per set, median of $reps interleaved runs, $threads threads,"
echo "$(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%F)."
echo
echo "| set | config | files/s | MB/s in | vs dir | CPU ms/file | ratio (in/out) | stream ratio | files per 100k |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
for set in $sets; do
	dir_fps=$(median $(printf '%s' "${runs[$set/dir]}" | field files_per_s))
	for c in "${configs[@]}"; do
		name=${c%%|*}
		lines=${runs[$set/$name]}
		fps=$(median $(printf '%s' "$lines" | field files_per_s))
		mbs=$(median $(printf '%s' "$lines" | field mb_per_s))
		cpu=$(median $(printf '%s' "$lines" | jq -r '.cpu_seconds * 1000 / .files'))
		ratio=$(printf '%s' "$lines" | head -1 | field ratio)
		bytes_out=$(printf '%s' "$lines" | head -1 | field bytes_out)
		files=$(printf '%s' "$lines" | head -1 | field files)
		stream=-
		case $name in
		tar.zst-*-*) ;;
		tar.zst-*) stream=${runs[$set/stream-${name#tar.zst-}]:-} ;;
		esac
		if [ "$name" = dir ]; then
			per100k=100003
		else
			per100k=$(echo "2 * (($bytes_out * 100000 / $files + 1073741823) / 1073741824) + 3" | bc)
		fi
		printf '| %s | %s | %.0f | %.1f | %.2fx | %.3f | %.3f | %s | %s |\n' "$set" "$name" "$fps" \
			"$mbs" "$(echo "$fps / $dir_fps" | bc -l)" "$cpu" "$ratio" "$stream" "$per100k"
	done
done
echo
echo "Raw runs: $results"
