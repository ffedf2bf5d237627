#!/usr/bin/env bash
# Packs end to end (issue 14): whole vhprep runs writing a directory tree (the dir sink)
# against --pack tar and --pack tar.zst at two levels, on photo JPEGs (bench/mkimages
# --preset photos) resized to 224 and written as JPEG, and the same written as PNG.
# bench/pack-bench.sh measures the sinks alone through a driver; this one measures what a
# user sees: the same command with and without --pack.
#
#   bash bench/pack-e2e.sh [--count N] [--reps R] [--levels "3 19"] [--threads T]
#
# For each output format and sink: files/s and input MB/s over the run (the median of
# --reps runs, interleaved), CPU seconds of the process (user + sys), the bytes the
# outputs take (image files, or shards; records excluded), the ratio dir bytes / those
# bytes, the files the run leaves in the outputs dir, and the files it would leave for
# 100,000 such inputs at the default --shard-size (1 GiB): shards + indexes + 4 records,
# against 100,000 + 4. Prints a Markdown table; raw lines go to
# bench/results/pack-e2e-<date>.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
count=1000
reps=3
levels="3 19"
threads=$(nproc)
while (($#)); do
	case $1 in
	--count) count=$2; shift 2 ;;
	--reps) reps=$2; shift 2 ;;
	--levels) levels=$2; shift 2 ;;
	--threads) threads=$2; shift 2 ;;
	*) echo "usage: $0 [--count N] [--reps R] [--levels \"3 19\"] [--threads T]" >&2; exit 2 ;;
	esac
done
build=${VHPREP_BUILD_DIR:-$root/build}
vhprep=$build/vhprep
mkimages=$build/bench/vhprep-mkimages
for tool in "$vhprep" "$mkimages"; do
	[ -x "$tool" ] || { echo "pack-e2e: $tool missing: build first" >&2; exit 2; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/vhprep-pack-e2e.XXXXXX")
trap 'rm -rf "$work"' EXIT
data=$build/bench-data/pack-e2e-$count
results=$root/bench/results/pack-e2e-$(date -u +%Y%m%d).jsonl
mkdir -p "$(dirname "$results")"
if [ ! -f "$data/complete" ]; then
	rm -rf "$data"
	mkdir -p "$data"
	"$mkimages" --preset photos --count "$count" --per-dir 500 --quality 90 --out "$data/photos" >&2
	touch "$data/complete"
fi
inbytes=$(find "$data/photos" -type f -printf '%s\n' | awk '{s += $1} END {print s}')

sinks=("dir|" "tar|--pack tar")
for l in $levels; do sinks+=("tar.zst-$l|--pack tar.zst --zstd-level $l"); done
formats="jpg png"

declare -A rate cpu
for rep in $(seq "$reps"); do
	for fmt in $formats; do
		cat $(find "$data/photos" -type f) >/dev/null # warm the page cache
		for s in "${sinks[@]}"; do
			name=${s%%|*}
			args=${s#*|}
			out=$work/out-$fmt-$name
			rm -rf "$out"
			cmd="$vhprep -q --metrics-interval 0 --preview 0 -j $threads --resize 224 --format $fmt $args -o $out $data/photos"
			echo "# $fmt/$name rep $rep: $cmd" >&2
			t0=$(date +%s.%N)
			# shellcheck disable=SC2086
			/usr/bin/time -f '%U %S' -o "$work/time" $cmd
			t1=$(date +%s.%N)
			read -r u s <"$work/time"
			secs=$(echo "$t1 - $t0" | bc -l)
			if [ "$name" = dir ]; then
				outbytes=$(find "$out/processed_images" -type f -printf '%s\n' | awk '{s += $1} END {print s}')
			else
				outbytes=$(find "$out" -maxdepth 1 -name 'processed_images-*' ! -name '*.idx.jsonl' -printf '%s\n' | awk '{s += $1} END {print s}')
			fi
			files=$(find "$out" -type f | wc -l)
			processed=$(grep -o '"processed": *[0-9]*' "$out/vhprep-summary.json" | grep -o '[0-9]*$')
			[ "$processed" = "$count" ] || { echo "pack-e2e: $fmt/$name processed $processed of $count" >&2; exit 1; }
			echo "{\"format\":\"$fmt\",\"sink\":\"$name\",\"rep\":$rep,\"count\":$count,\"seconds\":$secs,\"cpu_s\":$(echo "$u + $s" | bc -l),\"in_bytes\":$inbytes,\"out_bytes\":$outbytes,\"files\":$files,\"threads\":$threads,\"date\":\"$(date -u +%FT%TZ)\",\"load\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}" >>"$results"
			rate[$fmt/$name]+="$(echo "$count / $secs" | bc -l)"$'\n'
			cpu[$fmt/$name]+="$(echo "$u + $s" | bc -l)"$'\n'
			echo "$outbytes $files" >"$work/size-$fmt-$name"
		done
	done
done

median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
echo "| output | sink | files/s | vs dir | input MB/s | CPU s | output bytes | dir bytes / bytes | files left | files per 100k inputs |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for fmt in $formats; do
	read -r dirbytes _ <"$work/size-$fmt-dir"
	dirrate=$(printf '%s' "${rate[$fmt/dir]}" | median)
	for s in "${sinks[@]}"; do
		name=${s%%|*}
		read -r bytes files <"$work/size-$fmt-$name"
		r=$(printf '%s' "${rate[$fmt/$name]}" | median)
		c=$(printf '%s' "${cpu[$fmt/$name]}" | median)
		if [ "$name" = dir ]; then
			per100k=100004
		else # shards of at most 1 GiB for 100k outputs of this mean size, each with an index
			per100k=$(echo "scale = 6; b = $bytes * 100000 / $count / 1073741824; scale = 0; s = b / 1; if (s < b) s += 1; 2 * s + 4" | bc)
		fi
		printf '| %s | %s | %.0f | %.2fx | %.1f | %.2f | %d | %.3f | %d | %d |\n' "$fmt" "$name" "$r" \
			"$(echo "$r / $dirrate" | bc -l)" "$(echo "$r * $inbytes / $count / 1000000" | bc -l)" "$c" \
			"$bytes" "$(echo "$dirbytes / $bytes" | bc -l)" "$files" "$per100k"
	done
done
