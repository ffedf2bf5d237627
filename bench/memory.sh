#!/usr/bin/env bash
# memory.sh: vhprep's resident memory against the files it has processed, in one run
# over many small files: the metrics line vhprep prints on stdout (rss_mb,
# files_processed) every --interval seconds, and the peak RSS of the whole process
# (/usr/bin/time). Memory should stay flat however many files a run takes.
#
#   bash bench/memory.sh [--dirs 1000] [--per-dir 100] [--interval 0.25] [--smoke]
#
# Dataset: --dirs folders of --per-dir tiny JPEGs (vhprep-mkimages --preset wide, 64x48),
# made once under build/bench-data; the run is `vhprep --resize 224`. The command is
# printed on stderr. Output: a Markdown summary on stdout, one JSON line per metrics
# sample plus one for the peak in bench/results/memory-<date>.jsonl (--smoke: 10 x 20
# files into a temporary file), and with --charts DIR the chart (bench/plot.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dirs=1000
per_dir=100
interval=0.25
smoke=0
charts=""
while (($#)); do
	case $1 in
	--dirs) dirs=$2; shift 2 ;;
	--per-dir) per_dir=$2; shift 2 ;;
	--interval) interval=$2; shift 2 ;;
	--charts) charts=$2; shift 2 ;;
	--smoke) smoke=1; dirs=10; per_dir=20; interval=0.02; shift ;;
	-h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "memory: unknown argument '$1'" >&2; exit 2 ;;
	esac
done

build=${VHPREP_BUILD_DIR:-$root/build}
vhprep=$build/vhprep
mkimages=$build/bench/vhprep-mkimages
for tool in "$vhprep" "$mkimages" /usr/bin/time jq; do
	command -v "$tool" >/dev/null || { echo "memory: $tool missing (build first; jq: bash .ci/install-deps.sh)" >&2; exit 2; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/memory.XXXXXX")
trap 'rm -rf -- "$work"' EXIT
files=$((dirs * per_dir))
data=$build/bench-data/wide-jpeg-$dirs-$per_dir
results=$root/bench/results/memory-$(date -u +%Y%m%d).jsonl
[ "$smoke" = 1 ] && results=$work/results.jsonl
mkdir -p "$(dirname "$results")"
if [ ! -f "$data.complete" ]; then
	rm -rf "$data"
	echo "# dataset: $mkimages --preset wide --dirs $dirs --files $per_dir --out $data" >&2
	"$mkimages" --preset wide --dirs "$dirs" --files "$per_dir" --out "$data" >&2
	touch "$data.complete"
fi

cmd=("$vhprep" --resize 224 --quiet --metrics-interval "$interval" -o "$work/out" "$data")
echo "# memory: ${cmd[*]}" >&2
started=$(date -u +%FT%TZ)
/usr/bin/time -f "%M" -o "$work/peak" "${cmd[@]}" >"$work/metrics"
made=$(find "$work/out/processed_images" -name '*.jpg' | wc -l)
[ "$made" -eq "$files" ] || { echo "memory: $made outputs of $files" >&2; exit 1; }
what="$files tiny JPEGs in $dirs folders -> 224x224"
jq -c --arg s "$started" --arg w "$what" --argjson n "$files" \
	'select(.files_processed != null) | {bench: "memory", run_started: $s, what: $w, files: $n,
	  files_processed, rss_mb, elapsed_s}' "$work/metrics" >>"$results"
peak_kb=$(tail -1 "$work/peak")
printf '{"bench":"memory-peak","run_started":"%s","what":"%s","files":%d,"peak_rss_kb":%d,"cores":%d}\n' \
	"$started" "$what" "$files" "$peak_kb" "$(nproc)" >>"$results"
samples=$(jq -s 'length' "$work/metrics")
jq -s -r --arg peak "$peak_kb" '
	def r: . * 10 | round / 10;
	"### Resident memory, one run of \(.[-1].files_processed) files\n\n" +
	"| samples | RSS min MB | RSS max MB | RSS at the end MB | peak RSS MB (/usr/bin/time) |\n" +
	"|---:|---:|---:|---:|---:|\n" +
	"| \(length) | \(map(.rss_mb) | min | r) | \(map(.rss_mb) | max | r) | \(.[-1].rss_mb | r) | \($peak | tonumber / 1024 | r) |"' \
	"$work/metrics"
[ "$samples" -ge 2 ] || { echo "memory: only $samples metrics lines" >&2; exit 1; }
if [ -n "$charts" ]; then
	bash bench/plot.sh --out "$charts" "$results" >&2
fi
echo "raw samples: $results" >&2
