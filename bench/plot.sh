#!/usr/bin/env bash
# plot.sh: the benchmark results as SVG charts (gnuplot), next to their tables.
#
#   bash bench/plot.sh [--out DIR] RESULTS.jsonl...
#
# Reads the JSON lines the benchmarks append to bench/results/ and draws, for what the
# files hold (the latest run of each kind: the newest run_started of suite.sh and
# memory.sh, the last line of each tune.sh run name):
#   tune-depth-PROFILE.svg   tune.sh: files/s against --io-depth (log 2), one line per
#                            access path (vhprep bench on the mount, nfs:// v3, v4) and
#                            the full job on the mount (median of its repeats)
#   suite-DATASET.svg        suite.sh: vhprep and each peer per profile, files/s bars
#                            (log scale); on a peer's bar, vhprep's rate on the same
#                            access path divided by the peer's ("19.4x")
#   memory-rss.svg           memory.sh: resident memory against files processed in one
#                            run (sampled from the metrics lines), its peak so far, and
#                            the run's peak RSS (/usr/bin/time)
# Every chart is checked after it is drawn: the file exists and holds each data series
# with its points (gnuplot's <g id="gnuplot_plot_N"> groups with path or rect data);
# with rsvg-convert installed it must also render. Exit: 0 charts written (their paths
# on stdout), 1 a chart is missing or empty, 2 usage, gnuplot or jq missing, or no
# input holds anything to plot.
set -euo pipefail
out=$(dirname "$0")/charts
files=()
while (($#)); do
	case $1 in
	--out) out=$2; shift 2 ;;
	-h | --help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) echo "plot: unknown option '$1'" >&2; exit 2 ;;
	*) files+=("$1"); shift ;;
	esac
done
((${#files[@]})) || { echo "plot: no results file given (see --help)" >&2; exit 2; }
for tool in gnuplot jq; do
	command -v "$tool" >/dev/null || { echo "plot: needs $tool (bash .ci/install-deps.sh)" >&2; exit 2; }
done
mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/plot.XXXXXX")
trap 'rm -rf -- "$work"' EXIT
all=$work/all.jsonl
cat -- "${files[@]}" >"$all"
made=()
failed=0

# The look shared by every chart.
preamble() { # preamble TITLE XLABEL YLABEL
	cat <<GP
set terminal svg size 1000,560 dynamic enhanced font 'DejaVu Sans,12' background rgb 'white'
set title "$1"
set xlabel "$2"
set ylabel "$3"
set grid ytics lc rgb '#dddddd'
set border 3
set tics nomirror
set key below horizontal maxcols 3 spacing 1.2
GP
}

# check_chart FILE SERIES: FILE holds SERIES plotted series, each with drawn data.
check_chart() {
	local f=$1 want=$2 n
	if [ ! -s "$f" ]; then
		echo "plot: $f is missing or empty" >&2
		return 1
	fi
	# each series is a group gnuplot_plot_N holding a path, rect or point with coordinates
	n=$(grep -c '<g id="gnuplot_plot_[0-9]*"' "$f" || true)
	if [ "$n" -lt "$want" ]; then
		echo "plot: $f has $n data series, want $want" >&2
		return 1
	fi
	# a series draws its key sample first (one path move, or one point); its data adds
	# at least one more move or point
	if ! awk -v want="$want" '
		/<g id="gnuplot_plot_[0-9]+"/ { inside = 1; depth = 0; moves = 0; points = 0 }
		inside {
			depth += gsub(/<g[ >]/, "&") - gsub(/<\/g>/, "&")
			if (/<path/ || moves) moves += gsub(/M *[0-9.]+,[0-9.]+/, "&")
			points += gsub(/<use /, "&")
			if (depth <= 0) { ok += moves >= 2 || points >= 2; inside = 0 }
		}
		END { exit !(ok >= want) }' "$f"; then
		echo "plot: $f: a data series draws nothing" >&2
		return 1
	fi
	if command -v rsvg-convert >/dev/null && ! rsvg-convert -o "$work/check.png" "$f" 2>"$work/rsvg"; then
		echo "plot: $f does not render: $(head -1 "$work/rsvg")" >&2
		return 1
	fi
}

# render NAME SERIES: runs $work/NAME.gp into $out/NAME.svg and checks it.
render() {
	local name=$1 series=$2 svg=$out/$1.svg
	rm -f "$svg"
	if ! gnuplot -e "set output '$svg'" "$work/$name.gp" 2>"$work/$name.err"; then
		echo "plot: gnuplot failed on $name:" >&2
		cat "$work/$name.err" >&2
		failed=1
		return 0
	fi
	if check_chart "$svg" "$series"; then
		made+=("$svg")
	else
		failed=1
	fi
}

# ---- tune.sh: files/s against --io-depth ----

tune_charts() {
	local profile p series
	for profile in $(jq -r 'select(.bench == "tune" and (.run | test("^(depth|job)-"))) | .profile' "$all" | sort -u); do
		# the last line of each run name: a later run of the same day replaces it
		jq -s -r --arg p "$profile" '
			[.[] | select(.bench == "tune" and .profile == $p and (.run | test("^(depth|job)-")))]
			| group_by(.run) | map(last) | .[]
			| [(.run | capture("^(?<k>depth|job)-(?<path>[a-z0-9]+)-(?<d>[0-9]+)") | .k + "-" + .path, .d),
			   .files_per_s] | flatten | @tsv' "$all" >"$work/tune.tsv"
		series=0
		{
			preamble "vhprep files/s by requests in flight, profile $profile" \
				"--io-depth (requests in flight)" "files/s"
			echo "set logscale x 2"
			echo "set xrange [0.8:320]"
			echo "set xtics (1, 2, 4, 8, 16, 32, 64, 128, 256)"
			echo "set yrange [0:*]"
			printf 'plot '
			for p in depth-lfs depth-v3 depth-v4 job-lfs; do
				# the median of each depth's runs (sorted by depth, then rate)
				awk -v k="$p" '$1 == k { print $2, $3 }' "$work/tune.tsv" | sort -k1,1n -k2,2g |
					awk 'function flush() { if (n) print d, (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2 }
					     $1 != d { flush(); d = $1; n = 0 } { v[++n] = $2 } END { flush() }' \
					>"$work/tune-$p.dat"
				[ -s "$work/tune-$p.dat" ] || continue
				((series > 0)) && printf ', '
				printf "'%s' using 1:2 with linespoints lw 2 pt 7 title '%s'" "$work/tune-$p.dat" "$(tune_title "$p")"
				series=$((series + 1))
			done
			echo
		} >"$work/tune-depth-$profile.gp"
		((series > 0)) && render "tune-depth-$profile" "$series"
	done
}

tune_title() {
	case $1 in
	depth-lfs) echo "kernel mount (latencyfs): vhprep bench" ;;
	depth-v3) echo "nfs:// v3: vhprep bench" ;;
	depth-v4) echo "nfs:// v4.0: vhprep bench" ;;
	job-lfs) echo "kernel mount: full job --resize 224 (median)" ;;
	esac
}

# ---- suite.sh: vhprep against each peer, per profile ----

# shellcheck source=bench/suite-refs.sh
source "$(dirname "${BASH_SOURCE[0]}")/suite-refs.sh" # suite_ref KEY, as suite.sh's tables

suite_label() {
	case $1 in
	vhprep-mount) echo "vhprep (mount)" ;;
	python-mount) echo "Python/PIL loop (mount)" ;;
	vips-mount) echo "xargs vipsthumbnail (mount)" ;;
	vhprep-nfs3) echo "vhprep (nfs:// v3)" ;;
	vhprep-nfs4) echo "vhprep (nfs:// v4)" ;;
	vhprep-walk-mount) echo "vhprep bench --walk-only (mount)" ;;
	find-mount) echo "find (mount)" ;;
	ls-mount) echo "ls -R (mount)" ;;
	vhprep-walk-nfs3) echo "vhprep bench --walk-only (nfs:// v3)" ;;
	vhprep-walk-nfs4) echo "vhprep bench --walk-only (nfs:// v4)" ;;
	nfsls-nfs3) echo "nfs-ls -R (nfs:// v3)" ;;
	*) echo "$1" ;;
	esac
}

suite_charts() {
	local latest dataset
	latest=$(jq -r 'select(.bench == "suite") | .run_started' "$all" | sort | tail -1)
	[ -n "$latest" ] || return 0
	jq -r --arg s "$latest" 'select(.bench == "suite" and .run_started == $s)
		| [.dataset, .profile, .run, .files_per_s] | @tsv' "$all" >"$work/suite.tsv"
	for dataset in $(cut -f1 "$work/suite.tsv" | awk '!seen[$0]++'); do
		suite_chart "$dataset"
	done
}

# suite_chart DATASET: one cluster of bars per profile, one bar per run.
suite_chart() {
	local dataset=$1 profiles runs p r x=0 i=0 unit rate ref label series=0
	profiles=$(awk -F'\t' -v d="$dataset" '$1 == d { print $2 }' "$work/suite.tsv" | awk '!seen[$0]++')
	runs=$(awk -F'\t' -v d="$dataset" '$1 == d { print $3 }' "$work/suite.tsv" | awk '!seen[$0]++')
	unit="files/s"
	[ "$dataset" = imagenet-like ] || unit="files listed/s"
	: >"$work/suite-xtics"
	for r in $runs; do : >"$work/suite-$dataset-$r.dat"; done
	for p in $profiles; do
		local first=$x
		for r in $runs; do
			rate=$(awk -F'\t' -v d="$dataset" -v p="$p" -v r="$r" '$1 == d && $2 == p && $3 == r { v = $4 } END { print v }' "$work/suite.tsv")
			x=$((x + 1))
			[ -n "$rate" ] || continue
			ref=$(suite_ref "$r")
			label=$(awk -F'\t' -v d="$dataset" -v p="$p" -v r="$ref" -v me="$rate" '
				r != "" && $1 == d && $2 == p && $3 == r { v = $4 }
				END { if (v != "" && me > 0) printf "%.1fx", v / me; else if (r == "") printf "%s", (me >= 10000 ? sprintf("%.0fk", me / 1000) : sprintf("%.0f", me)) }' "$work/suite.tsv")
			printf '%d %s "%s"\n' "$x" "$rate" "$label" >>"$work/suite-$dataset-$r.dat"
		done
		printf '"%s" %s\n' "$p" "$(awk -v a="$first" -v b="$x" 'BEGIN { print (a + 1 + b) / 2 }')" >>"$work/suite-xtics"
		x=$((x + 1)) # a gap between profiles
	done
	{
		preamble "$dataset: vhprep and its peers by storage profile (label on a peer: vhprep ÷ peer)" \
			"storage profile (bench/profiles.sh)" "$unit (log scale)"
		echo "set logscale y"
		# from half the smallest bar, so the smallest stands clear of the axis
		awk -F'\t' -v d="$dataset" '$1 == d && $4 > 0 { m = (m == "" || $4 < m) ? $4 : m }
			END { if (m != "") printf "set yrange [%g:*]\n", m / 2 }' "$work/suite.tsv"
		echo "set format y '%.0s%c'"
		echo "set style fill solid 0.85 border -1"
		echo "set boxwidth 0.9"
		echo "set xrange [0:$((x))]"
		printf 'set xtics ('
		awk 'NR > 1 { printf ", " } { printf "%s %s", $1, $2 }' "$work/suite-xtics"
		echo ')'
		printf 'plot '
		for r in $runs; do
			[ -s "$work/suite-$dataset-$r.dat" ] || continue
			((series > 0)) && printf ', '
			printf "'%s' using 1:2 with boxes title '%s'" "$work/suite-$dataset-$r.dat" "$(suite_label "$r")"
			series=$((series + 1))
		done
		# the labels: one more series, drawn over the bars
		cat "$work"/suite-"$dataset"-*.dat >"$work/suite-$dataset-labels.dat"
		printf ", '%s' using 1:2:3 with labels offset 0,0.7 font ',9' notitle\n" "$work/suite-$dataset-labels.dat"
	} >"$work/suite-$dataset.gp"
	((series > 0)) && render "suite-$dataset" "$series"
}

# ---- memory.sh: RSS against files processed ----

memory_charts() {
	local latest
	latest=$(jq -r 'select(.bench == "memory") | .run_started' "$all" | sort | tail -1)
	[ -n "$latest" ] || return 0
	jq -r --arg s "$latest" 'select(.bench == "memory" and .run_started == $s)
		| [.files_processed, .rss_mb] | @tsv' "$all" | sort -n |
		awk '{ peak = $2 > peak ? $2 : peak; print $1, $2, peak }' >"$work/memory.dat"
	local what peak series=2
	what=$(jq -r --arg s "$latest" 'select(.bench == "memory" and .run_started == $s) | .what' "$all" | sed -n 1p)
	peak=$(jq -r --arg s "$latest" 'select(.bench == "memory-peak" and .run_started == $s) | .peak_rss_kb / 1024 * 10 | round / 10' "$all" | tail -1)
	{
		preamble "vhprep resident memory during one run: $what" "files processed" "MB"
		echo "set yrange [0:*]"
		echo "set xrange [0:*]"
		printf "plot '%s' using 1:2 with points pt 7 ps 0.5 lc rgb '#3366aa' title 'RSS (metrics line)', " "$work/memory.dat"
		printf "'' using 1:3 with steps lw 2 lc rgb '#cc3333' title 'peak RSS so far (of the samples)'"
		if [ -n "$peak" ]; then
			printf ", %s with lines dt 2 lw 2 lc rgb '#333333' title 'peak RSS of the run (/usr/bin/time): %s MB'" "$peak" "$peak"
			series=3
		fi
		echo
	} >"$work/memory-rss.gp"
	[ -s "$work/memory.dat" ] && render memory-rss "$series"
}

tune_charts
suite_charts
memory_charts
if ((${#made[@]} == 0)) && [ "$failed" = 0 ]; then
	echo "plot: nothing to plot in ${files[*]}" >&2
	exit 2
fi
printf '%s\n' "${made[@]}"
exit "$failed"
