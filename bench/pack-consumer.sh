#!/usr/bin/env bash
# The consumer's side of packs (issue 14): a later step reads random outputs one at a time,
# as a data loader does, from a `dir` run's tree and from a `--pack tar` run's shards
# through their indexes, both on a latencyfs mount (the kernel NFS mount of the dataset,
# emulated: every FUSE request waits --delay-ms).
#
#   bash bench/pack-consumer.sh [--count 10000] [--reads 10000] [--delay-ms 2]
#                               [--reps 3] [--smoke]
#
# --count photo JPEGs (bench/mkimages, 320x240) are processed once with
# `vhprep --resize 224` into a dir outputs dir and a --pack tar one (kept under
# build/bench-data). --reads keys drawn at random (fixed seed, without repeats) are then
# read by bench/pack_consumer.py in each mode, --reps times, interleaved, latencyfs
# remounted before each read so no cache carries over. Both modes must read the same
# bytes (their sha256 lines are compared). Prints a Markdown table: files/s (median),
# round trips per file (latencyfs' counters), the ratio index/dir. Raw lines go to
# bench/results/pack-consumer-<date>.jsonl. Needs root (FUSE).
# --smoke: 200 files, 200 reads, one rep, 0.2 ms; checks that every figure is there.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
count=10000 reads=10000 delay=2 reps=3 smoke=0
while (($#)); do
	case $1 in
	--count) count=$2; shift 2 ;;
	--reads) reads=$2; shift 2 ;;
	--delay-ms) delay=$2; shift 2 ;;
	--reps) reps=$2; shift 2 ;;
	--smoke) smoke=1 count=200 reads=200 delay=0.2 reps=1; shift ;;
	-h | --help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "pack-consumer: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
done
((reads <= count)) || { echo "pack-consumer: --reads $reads is more than --count $count" >&2; exit 2; }
build=${VHPREP_BUILD_DIR:-$root/build}
vhprep=$build/vhprep
mkimages=$build/bench/vhprep-mkimages
for tool in "$vhprep" "$mkimages" /usr/bin/python3; do
	[ -x "$tool" ] || { echo "pack-consumer: $tool missing: build first" >&2; exit 2; }
done
export VHPREP_BUILD_DIR=$build
work=$(mktemp -d "${TMPDIR:-/tmp}/vhprep-pack-consumer.XXXXXX")
mnt=$work/mnt
cleanup() {
	bash tests/fixtures/latencyfs.sh umount "$mnt" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
data=$build/bench-data/pack-consumer-$count
results=$root/bench/results/pack-consumer-$(date -u +%Y%m%d).jsonl
[ $smoke = 1 ] && results=$work/results.jsonl
mkdir -p "$(dirname "$results")"

if [ ! -f "$data/complete" ]; then
	rm -rf "$data"
	mkdir -p "$data"
	"$mkimages" --preset photos --count "$count" --per-dir 1000 --width 320 --height 240 \
		--out "$data/photos" >&2
	for s in "dir|" "tar|--pack tar"; do
		name=${s%%|*}
		echo "+ vhprep --resize 224 ${s#*|} -o $data/$name $data/photos" >&2
		# shellcheck disable=SC2086 # the pack flags are words
		"$vhprep" --resize 224 ${s#*|} --preview 0 --metrics-interval 0 \
			-o "$data/$name" "$data/photos" 2>>"$work/vhprep.log"
	done
	touch "$data/complete"
fi
# the keys: outputs paths, which are both the dir tree's relative paths and the index keys
/usr/bin/python3 - "$data/tar" "$reads" >"$work/keys" <<'PY'
import glob, json, os, random, sys
keys = []
for p in sorted(glob.glob(os.path.join(sys.argv[1], "*.idx.jsonl"))):
    with open(p, encoding="utf-8") as f:
        keys += [json.loads(line)["key"] for line in f]
keys.sort()
print("\n".join(random.Random(1).sample(keys, int(sys.argv[2]))))
PY

declare -A rate trips sums
for rep in $(seq "$reps"); do
	for mode in dir index; do
		src=$data/dir
		[ $mode = index ] && src=$data/tar
		bash tests/fixtures/latencyfs.sh mount "$src" "$mnt" "$delay" >>"$work/lfs.log" 2>&1 ||
			{ cat "$work/lfs.log" >&2; echo "pack-consumer: cannot mount latencyfs (root and FUSE needed)" >&2; exit 1; }
		echo "+ pack_consumer.py $mode $mnt ($reads keys, $delay ms per request), rep $rep" >&2
		line=$(/usr/bin/python3 bench/pack_consumer.py "$mode" "$mnt" "$work/keys")
		bash tests/fixtures/latencyfs.sh umount "$mnt" 2>"$work/lfs.txt"
		rt=$(sed -n 's/.* round_trips=\([0-9]*\).*/\1/p' "$work/lfs.txt" | tail -1)
		[ -n "$rt" ] || { cat "$work/lfs.txt" >&2; echo "pack-consumer: no latencyfs counters" >&2; exit 1; }
		echo "$line" | jq -c --argjson rt "$rt" --arg delay "$delay" --argjson rep "$rep" \
			'. + {round_trips: $rt, delay_ms: ($delay | tonumber), rep: $rep}' >>"$results"
		rate[$mode]+="$(echo "$line" | jq .files_per_s) "
		trips[$mode]=$rt
		sums[$mode]=$(echo "$line" | jq -r .sha256)
	done
	[ "${sums[dir]}" = "${sums[index]}" ] ||
		{ echo "pack-consumer: the two modes read different bytes" >&2; exit 1; }
done

median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
d=$(echo "${rate[dir]}" | median)
i=$(echo "${rate[index]}" | median)
echo "| read $reads random outputs of $count, one at a time, latencyfs at $delay ms | files/s (median of $reps) | round trips / file | vs dir |"
echo "|---|---:|---:|---:|"
awk -v d="$d" -v i="$i" -v td="${trips[dir]}" -v ti="${trips[index]}" -v n="$reads" 'BEGIN {
	printf "| dir tree: open, read, close per file | %.0f | %.2f | 1.00x |\n", d, td / n
	printf "| tar shards through the index: one ranged read per file | %.0f | %.2f | **%.1fx** |\n", i, ti / n, i / d
}'
echo "raw lines: $results" >&2
