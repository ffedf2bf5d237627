#!/usr/bin/env bash
# tune.sh: tuning curves of vhprep's I/O knobs at an emulated storage profile (issue 8,
# item 6): files/s against requests in flight (--io-depth) on both access paths,
#   kernel mount  latencyfs at PROFILE_LFS_DELAY_MS per FUSE request: `vhprep bench` and the
#                 full job `vhprep --resize 224`;
#   nfs://        a loopback nfs-ganesha behind bench/delayproxy at PROFILE_PROXY_DELAY_MS one
#                 way (v3 and v4): `vhprep bench`, also against --nfs-connections;
# then the baseline "one request in flight, one connection" against the defaults,
# --walkers on a walk of a wide tree, and --read-budget. Every command is printed on
# stderr before it runs; Markdown tables on stdout, JSON lines appended to
# bench/results/tune-<date>.jsonl, then the files/s by --io-depth chart (bench/plot.sh).
# Docs and the recommendations: bench/NFS.md.
set -euo pipefail
prog=tune
usage() {
	cat <<'EOF'
usage: bench/tune.sh [--smoke] [--profile NAME] [--data DIR] [--no-v4] [--charts DIR]

  --smoke         tiny sizes and few points (< 30 s); results to a temporary file
  --profile NAME  storage profile of bench/profiles.sh (default efs-maxio)
  --data DIR      where the datasets are made and kept (default build/bench-data/nfs,
                  shared with nfs-bench.sh)
  --no-v4         skip the NFSv4 curves (v4 listing is slow on ganesha today)
  --charts DIR    where bench/plot.sh draws tune-depth-PROFILE.svg (default bench/charts;
                  with --smoke a temporary dir); a missing or empty chart fails the run

Needs root, nfs-ganesha, FUSE (for the kernel-mount rows), jq, gnuplot, /usr/bin/time
and a build of vhprep. Exit: 0 done, 2 usage or missing tools, 77 neither path can run here,
1 a run failed.
EOF
}

cd "$(dirname "$0")/.."
root=$PWD
build=${VHPREP_BUILD_DIR:-$root/build}
work=$(mktemp -d "${TMPDIR:-/tmp}/tune.XXXXXX")
smoke=0
profile=efs-maxio
data=$build/bench-data/nfs
v4=1
charts=""
NFS_PROXY_PORT=20592
MNT_PROXY_PORT=20593

parse_args() {
	while (($#)); do
		case $1 in
		--smoke) smoke=1; shift ;;
		--profile) profile=$2; shift 2 ;;
		--data) data=$2; shift 2 ;;
		--no-v4) v4=0; shift ;;
		--charts) charts=$2; shift 2 ;;
		-h | --help) usage; exit 0 ;;
		*) usage >&2; exit 2 ;;
		esac
	done
}
parse_args "$@"
source bench/nfs-lib.sh
source bench/profiles.sh

nfslib_traps

# Sizes and the points of each curve.
set_sizes() {
	if [ "$smoke" = 1 ]; then
		PHOTOS=16 WIDE_D=6 WIDE_F=10 BIG_N=2 BIG_MB=2 data=$work/data
		DEPTHS="1 16" CONNS="1 4" CONN_DEPTHS="16" CONNS_V4="1 4" JOB_REPS=1 WALKERS="1 16" WALKERS_V4="16" BUDGETS="16M 256M"
		results=$work/results.jsonl
		charts=${charts:-$work/charts}
	else
		PHOTOS=1000 WIDE_D=200 WIDE_F=100 BIG_N=20 BIG_MB=64
		DEPTHS="1 2 4 8 16 32 64 128 256" CONNS="1 2 4 8" CONNS_V4="1 2 4 8 16 32" JOB_REPS=3
		CONN_DEPTHS="16 64 256"
		WALKERS="1 2 4 8 16 32 64" WALKERS_V4="1 4 16" BUDGETS="16M 64M 256M"
		results=$root/bench/results/tune-$(date -u +%Y%m%d).jsonl
		charts=${charts:-$root/bench/charts}
	fi
	mkdir -p "$data" "$(dirname "$results")"
	data=$(cd "$data" && pwd -P)
}

make_datasets() {
	PSET=photos-$PHOTOS
	mkphotos "$data/$PSET" "$PHOTOS"
	mktree "$data/wide" "$WIDE_D" "$WIDE_F"
	mkbig "$data/big" "$BIG_N" "$BIG_MB"
}

# -- the two paths --

# Mounts latencyfs over the data at the profile's delay (fresh: no cache carries over).
# --threads 256: the emulated server never caps the in-flight curve below its top point.
lfs_remount() {
	lfs_umount "$mnt"
	lfs_mount "$data" "$mnt" "$PROFILE_LFS_DELAY_MS" --jitter-ms "$PROFILE_LFS_JITTER_MS" \
		--threads 256
}

# Starts the proxies in front of ganesha: NFS on 20592, MOUNT on 20593.
nfs_up() {
	ganesha_start "$data" || return $?
	proxy_start nfs "$PROFILE_PROXY_DELAY_MS" "$PROFILE_PROXY_JITTER_MS" "$PROFILE_RATE_MBIT" \
		"$NFS_PROXY_PORT:$GANESHA_NFS_PORT" "$MNT_PROXY_PORT:$GANESHA_MNT_PORT"
}

# src PATH REL: the source vhprep reads for REL on PATH (lfs, v3 or v4).
src() {
	case $1 in
	lfs) echo "$mnt/$2" ;;
	v3 | v4) nfs_url "${1#v}" "$2" "$NFS_PROXY_PORT" "$MNT_PROXY_PORT" ;;
	esac
}

# -- one measurement --

# bench_run NAME PATH REL ARGS...: `vhprep bench ARGS SOURCE` (latencyfs remounted first);
# sets R_FPS, R_EPS, R_MBS, R_SECS and appends a JSON line.
bench_run() {
	local name=$1 path=$2 rel=$3
	shift 3
	[ "$path" != lfs ] || lfs_remount
	timed "$name" "$vhprep" bench "$@" "$(src "$path" "$rel")"
	R_FPS=$(jfield "$name" .files_per_s)
	R_EPS=$(jfield "$name" .entries_per_s)
	R_MBS=$(jfield "$name" .mb_per_s)
	R_SECS=$T_SECS
	R_OPEN50=$(jfield "$name" '.open_p50_ms // 0')
	R_READ50=$(jfield "$name" '.read_p50_ms // 0')
	[ "$(jfield "$name" .failed)" -eq 0 ] || die "$name: reads failed"
	jsonl "$results" bench=tune run="$name" path="$path" set="$rel" profile="$profile" \
		args="$*" files_per_s="$R_FPS" entries_per_s="$R_EPS" mb_per_s="$R_MBS" \
		wall_seconds="$T_SECS" peak_rss_kb="$T_RSS_KB" open_p50_ms="$R_OPEN50" \
		read_p50_ms="$R_READ50" config="$(jfield "$name" '.config | tojson')"
}

# job_run NAME ARGS...: the full job `vhprep --resize 224 -o OUT ARGS MNT/photos` on a fresh
# latencyfs mount; sets R_FPS (outputs / wall s), checks every input became an output.
job_run() {
	local name=$1 out=$work/out-$1 made
	shift
	rm -rf "$out"
	lfs_remount
	timed "$name" "$vhprep" --resize 224 --quiet --metrics-interval 0 -o "$out" "$@" "$mnt/$PSET"
	made=$(find "$out" -name '*.jpg' ! -name vhprep-preview.jpg | wc -l)
	[ "$made" -eq "$PHOTOS" ] || die "$name: $made of $PHOTOS outputs"
	R_FPS=$(calc "$PHOTOS / $T_SECS")
	jsonl "$results" bench=tune run="$name" path=lfs set="$PSET" profile="$profile" \
		args="$*" files_per_s="$R_FPS" wall_seconds="$T_SECS" peak_rss_kb="$T_RSS_KB"
	rm -rf "$out"
}

# -- the curves --

table_head() {
	echo "### $1"
	echo
	echo "| $2 | files/s | vs first row | MB/s | wall s |"
	echo "|---:|---:|---:|---:|---:|"
}

# depth_curve PATH: vhprep bench at each depth of DEPTHS on PATH (defaults otherwise).
depth_curve() {
	local path=$1 d first=''
	echo "### $(path_label "$path"): vhprep bench (walk+open+read), files/s by --io-depth, $PHOTOS JPEGs"
	echo
	echo "| --io-depth | files/s | vs first row | MB/s | wall s | open p50 ms | read p50 ms |"
	echo "|---:|---:|---:|---:|---:|---:|---:|"
	for d in $DEPTHS; do
		bench_run "depth-$path-$d" "$path" "$PSET" --io-depth "$d"
		first=${first:-$R_FPS}
		printf '| %d | %.0f | %s | %.1f | %.2f | %.2f | %.2f |\n' "$d" "$R_FPS" \
			"$(fmtx "$R_FPS" "$first")" "$R_MBS" "$R_SECS" "$R_OPEN50" "$R_READ50"
	done
	echo
}

job_curve() {
	local d first='' i med
	local -A runs=()
	echo "### $(path_label lfs): full job vhprep --resize 224, files/s by --io-depth, $PHOTOS JPEGs, $(nproc) threads, median of $JOB_REPS"
	echo
	echo "| --io-depth | files/s (median) | vs first row | runs files/s |"
	echo "|---:|---:|---:|---|"
	# rounds over all depths, not reps in a row: a burst of load from the other users of
	# this machine then hits one run of several depths, not every run of one depth
	for ((i = 1; i <= JOB_REPS; i++)); do
		for d in $DEPTHS; do
			job_run "job-lfs-$d-$i" --io-depth "$d"
			runs[$d]="${runs[$d]:-}${runs[$d]:+ }$(fmt1 "$R_FPS")"
		done
	done
	for d in $DEPTHS; do
		# shellcheck disable=SC2086 # the runs are words
		med=$(median ${runs[$d]})
		first=${first:-$med}
		printf '| %d | %.0f | %s | %s |\n' "$d" "$med" "$(fmtx "$med" "$first")" "${runs[$d]}"
	done
	echo
}

# conn_curve PATH: files/s by --nfs-connections (rows) at each depth of CONN_DEPTHS.
conn_curve() {
	local path=$1 c d conns=$CONNS
	[ "$path" != v4 ] || conns=$CONNS_V4
	echo "### $(path_label "$path"): vhprep bench files/s by --nfs-connections and --io-depth"
	echo
	printf '| --nfs-connections |'
	for d in $CONN_DEPTHS; do printf ' depth %s |' "$d"; done
	printf '\n|---:|'
	for d in $CONN_DEPTHS; do printf -- '---:|'; done
	echo
	for c in $conns; do
		printf '| %d |' "$c"
		for d in $CONN_DEPTHS; do
			bench_run "conn-$path-$c-$d" "$path" "$PSET" --io-depth "$d" --nfs-connections "$c"
			printf ' %.0f |' "$R_FPS"
		done
		echo
	done
	echo
}

# walkers_curve PATH: entries/s of a walk-only of the wide tree by --walkers, then the
# peer a user would run on the same path (find on the mount, nfs-ls -R on the URL) and
# the ratio of its wall time to vhprep's at the default --walkers.
walkers_curve() {
	local path=$1 w first='' list=$WALKERS files=$((WIDE_D * WIDE_F)) def_secs=''
	[ "$path" != v4 ] || list=$WALKERS_V4
	echo "### $(path_label "$path"): vhprep bench --walk-only, entries/s by --walkers, ${WIDE_D} dirs x ${WIDE_F} files"
	echo
	echo "| --walkers | entries/s (walk) | vs first row | wall s | peer wall s / vhprep wall s |"
	echo "|---:|---:|---:|---:|---:|"
	for w in $list; do
		bench_run "walkers-$path-$w" "$path" wide --walk-only --walkers "$w"
		first=${first:-$R_EPS}
		[ "$w" != 16 ] || def_secs=$R_SECS
		printf '| %d | %.0f | %s | %.2f | |\n' "$w" "$R_EPS" "$(fmtx "$R_EPS" "$first")" "$R_SECS"
	done
	peer_walk "$path" "$files"
	printf '| %s | %.0f (files / wall s) | | %.2f | %s (vs --walkers 16) |\n\n' "$(peer_label "$path")" \
		"$(calc "$files / $T_SECS")" "$T_SECS" "$(fmtx "$T_SECS" "${def_secs:-0}")"
}

# peer_walk PATH FILES: lists the wide tree with the usual tool of PATH; checks the count.
peer_walk() {
	local path=$1 files=$2 n
	if [ "$path" = lfs ]; then
		lfs_remount
		timed "peer-$path" find "$mnt/wide" -type f
	else
		timed "peer-$path" nfs-ls -R "$(src "$path" wide)"
	fi
	n=$(grep -cE '/?f[0-9]+$' "$work/peer-$path.out" || true)
	[ "$n" -eq "$files" ] || die "$(peer_label "$path") listed $n of $files files"
	jsonl "$results" bench=tune run="peer-walk-$path" path="$path" set=wide profile="$profile" \
		tool="$(peer_label "$path")" files="$files" wall_seconds="$T_SECS"
}

peer_label() { [ "$1" = lfs ] && echo "find -type f" || echo "nfs-ls -R"; }

# budget_curve PATH: MB/s and files/s by --read-budget on the photos and the big files.
budget_curve() {
	local path=$1 b set
	echo "### $(path_label "$path"): vhprep bench by --read-budget (--io-depth 64)"
	echo
	echo "| --read-budget | files | files/s | MB/s | wall s |"
	echo "|---:|---|---:|---:|---:|"
	for set in "$PSET" big; do
		for b in $BUDGETS; do
			bench_run "budget-$path-$set-$b" "$path" "$set" --read-budget "$b"
			printf '| %s | %s | %.0f | %.1f | %.2f |\n' "$b" "$set" "$R_FPS" "$R_MBS" "$R_SECS"
		done
	done
	echo
}

# baseline_table PATHS...: one request in flight on one connection against the defaults.
baseline_table() {
	local path base def
	echo "### Baseline (--io-depth 1 --walkers 1 --nfs-connections 1) vs defaults, vhprep bench, $PHOTOS JPEGs"
	echo
	echo "| path | baseline files/s | defaults files/s | defaults / baseline | target |"
	echo "|---|---:|---:|---:|---|"
	for path in "$@"; do
		bench_run "base-$path" "$path" "$PSET" --io-depth 1 --walkers 1 --nfs-connections 1
		base=$R_FPS
		bench_run "default-$path" "$path" "$PSET"
		def=$R_FPS
		printf '| %s | %.0f | %.0f | %s | %s |\n' "$(path_label "$path")" "$base" "$def" \
			"$(fmtx "$def" "$base")" "$([ "$path" = lfs ] && echo "-" || echo ">= 5x")"
	done
	echo
}

# per_conn_table: files/s of one nfs:// connection (v3, v4) against the kernel-mount path,
# all at the default depth: the numbers behind the path choice.
per_conn_table() {
	local path
	echo "### Path choice: one nfs:// connection vs the kernel mount, vhprep bench at --io-depth 64"
	echo
	echo "| path | files/s | per connection |"
	echo "|---|---:|---:|"
	for path in "$@"; do
		if [ "$path" = lfs ]; then
			bench_run "path-$path" "$path" "$PSET"
			printf '| %s | %.0f | (one mount) |\n' "$(path_label "$path")" "$R_FPS"
		else
			bench_run "path-$path-1" "$path" "$PSET" --nfs-connections 1
			printf '| %s, --nfs-connections 1 | %.0f | %.0f |\n' "$(path_label "$path")" \
				"$R_FPS" "$R_FPS"
			bench_run "path-$path-4" "$path" "$PSET" --nfs-connections 4
			printf '| %s, --nfs-connections 4 | %.0f | %.0f |\n' "$(path_label "$path")" \
				"$R_FPS" "$(calc "$R_FPS / 4")"
		fi
	done
	echo
}

path_label() {
	case $1 in
	lfs) echo "kernel mount (latencyfs ${PROFILE_LFS_DELAY_MS} ms/op)" ;;
	v3) echo "nfs:// v3 (proxy ${PROFILE_PROXY_DELAY_MS} ms one way)" ;;
	v4) echo "nfs:// v4.0 (proxy ${PROFILE_PROXY_DELAY_MS} ms one way)" ;;
	esac
}

main() {
	local rc paths=()
	need_tools "$vhprep" "$build/bench/vhprep-mkimages" "$build/bench/delayproxy" /usr/bin/time
	command -v jq >/dev/null || { echo "$prog: needs jq" >&2; exit 2; }
	command -v gnuplot >/dev/null || { echo "$prog: needs gnuplot (the chart)" >&2; exit 2; }
	profile_load "$profile" || exit 2
	set_sizes
	make_datasets
	mnt=$work/mnt
	rc=0
	lfs_remount || rc=$?
	[ "$rc" -eq 0 ] && paths+=(lfs) || echo "$prog: latencyfs unavailable ($rc): no kernel-mount rows" >&2
	rc=0
	nfs_up || rc=$?
	if [ "$rc" -eq 0 ]; then
		paths+=(v3)
		[ "$v4" = 0 ] || paths+=(v4)
	else
		echo "$prog: ganesha unavailable ($rc): no nfs:// rows" >&2
	fi
	[ "${#paths[@]}" -gt 0 ] || { echo "$prog: skipped: neither path can run here" >&2; exit 77; }
	echo "## vhprep tuning curves, profile $profile (RTT $PROFILE_RTT_MS ms +/- $PROFILE_JITTER_MS, $PROFILE_RATE_MBIT Mbit/s), $(date -u '+%F %H:%M') UTC, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
	echo
	run_curves "${paths[@]}"
	bash bench/plot.sh --out "$charts" "$results" >&2
	echo "$prog: raw runs: $results, chart in $charts" >&2
}

# run_curves PATHS...: every curve on the paths that are up.
run_curves() {
	local p
	for p in "$@"; do depth_curve "$p"; done
	[[ " $* " != *" lfs "* ]] || job_curve
	for p in "$@"; do [ "$p" = lfs ] || conn_curve "$p"; done
	baseline_table "$@"
	per_conn_table "$@"
	for p in "$@"; do walkers_curve "$p"; done
	for p in "$@"; do [ "$p" = v4 ] || budget_curve "$p"; done
}
main
