#!/usr/bin/env bash
# suite.sh: vhprep and its peers side by side, on emulated EFS and Filestore latency, over
# both ways a user reaches network storage: a kernel mount (bench/latencyfs, one round
# trip per FUSE request) and nfs:// (bench/delayproxy in front of a loopback nfs-ganesha).
#
#   bash bench/suite.sh [--smoke] [--profiles a,b] [--datasets x,y] [--count N]
#                       [--flat-count N] [--dirs D] [--per-dir F] [--no-v4-walk]
#                       [--charts DIR] [--help]
#
#   --profiles      from bench/profiles.sh (default: all: local,efs-gp,efs-maxio,filestore-hs)
#   --datasets      imagenet-like (full jobs), flat and wide (walks); default all three
#   --count N       imagenet-like JPEGs (default 2600, two class folders of 1300)
#   --flat-count N  files of the flat set (default 100000)
#   --dirs D, --per-dir F   the wide set: D folders of F files (default 1000 x 100)
#   --no-v4-walk    leave out `vhprep bench --walk-only` over NFSv4 (slow, see README)
#   --smoke         tiny sets (20 JPEGs, 200 flat, 10 x 10 wide), results kept in the
#                   scratch dir: checks that every benchmark runs and prints its table
#   --charts DIR    where bench/plot.sh draws the charts (default bench/charts; with
#                   --smoke the scratch dir): one per dataset, vhprep and each peer
#
# Every command is printed (stderr, "# name: command") before it runs, so anyone can rerun
# it. Rates are wall-clock over the whole command; peak RSS is /usr/bin/time -v's
# "Maximum resident set size" (for a pipeline: its largest single process). The kernel
# mount is remounted before each run, so no cache carries over; the `local` profile runs
# on the plain directory. Every full job's output count is checked against its input
# count, every walk's file count against the dataset's.
# Output: bench/RESULTS.md (tables per dataset and profile with vhprep's ratio to each
# peer, the targets), raw runs appended to bench/results/suite-<date>.jsonl. With --smoke
# both go to the scratch dir and RESULTS.md is printed on stdout. Then the charts
# (bench/plot.sh, gnuplot): the suite fails if one is missing or empty.
# Needs root for ganesha (nfs:// rows are left out without it) and /dev/fuse for the mount
# rows. Ports: ganesha 20790/20791, proxy 20792/20793 (SUITE_PORT_BASE moves all four).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
# shellcheck source=bench/profiles.sh
source bench/profiles.sh

profiles=local,efs-gp,efs-maxio,filestore-hs
datasets=imagenet-like,flat,wide
count=2600
flat_count=100000
dirs=1000
per_dir=100
v4_walk=1
smoke=0
charts=""

usage() {
	sed -n '2,36p' "$0" | sed 's/^# \{0,1\}//'
	exit "${1:-2}"
}

while (($#)); do
	case $1 in
	--profiles) profiles=$2; shift 2 ;;
	--datasets) datasets=$2; shift 2 ;;
	--count) count=$2; shift 2 ;;
	--flat-count) flat_count=$2; shift 2 ;;
	--dirs) dirs=$2; shift 2 ;;
	--per-dir) per_dir=$2; shift 2 ;;
	--no-v4-walk) v4_walk=0; shift ;;
	--charts) charts=$2; shift 2 ;;
	--smoke) smoke=1; count=20; flat_count=200; dirs=10; per_dir=10; shift ;;
	-h | --help) usage 0 ;;
	*) echo "suite: unknown argument '$1'" >&2; usage ;;
	esac
done

build=$(realpath -m -- "${VHPREP_BUILD_DIR:-$root/build}")
export VHPREP_BUILD_DIR=$build
vhprep=$build/vhprep
python=/usr/bin/python3 # Debian's, which has python3-pil
cores=$(nproc)
port_base=${SUITE_PORT_BASE:-20790}
export GANESHA_NFS_PORT=$port_base GANESHA_MNT_PORT=$((port_base + 1))
proxy_nfs_port=$((port_base + 2))
proxy_mnt_port=$((port_base + 3))
for tool in "$vhprep" "$build/bench/vhprep-mkimages" "$build/bench/delayproxy" /usr/bin/time; do
	[ -x "$tool" ] || { echo "suite: $tool missing: build first (cmake --build build)" >&2; exit 2; }
done
for tool in gnuplot jq; do # the charts (bench/plot.sh)
	command -v "$tool" >/dev/null || { echo "suite: needs $tool (bash .ci/install-deps.sh)" >&2; exit 2; }
done

scratch_parent=/dev/shm
[ -d "$scratch_parent" ] && [ -w "$scratch_parent" ] || scratch_parent=${TMPDIR:-/tmp}
work=$(mktemp -d "$scratch_parent/bench-suite-XXXXXX")
export LATENCYFS_STATE_DIR=$work/latencyfs GANESHA_STATE_DIR=$work/ganesha
mnt=$work/mnt
stamp=$(date -u +%Y%m%d)
if [ "$smoke" = 1 ]; then
	data_root=$build/bench-data/smoke
	results=$work/suite-$stamp.jsonl
	report=$work/RESULTS.md
	charts=${charts:-$work/charts}
else
	data_root=$build/bench-data
	results=$root/bench/results/suite-$stamp.jsonl
	report=$root/bench/RESULTS.md
	charts=${charts:-$root/bench/charts}
fi
mkdir -p "$mnt" "$data_root" "$(dirname "$results")"
log=$work/runs.log
proxy_pid=""
ganesha_up=0
can_mount=1

# ---- lifecycle: exactly what this script started is stopped ----

cleanup() {
	umount_mnt
	stop_proxy
	[ "$ganesha_up" = 1 ] && bash tests/fixtures/ganesha.sh stop >/dev/null 2>&1
	rm -rf -- "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

umount_mnt() {
	bash tests/fixtures/latencyfs.sh umount "$mnt" >>"$log" 2>&1 || true
}

# mount_source DIR: remounts latencyfs over DIR at the profile's round trip; prints the
# path to read (DIR itself for `local`, or when FUSE is unavailable: then returns 1).
mount_source() {
	umount_mnt
	if [ "$PROFILE_NAME" = local ]; then
		echo "$1"
		return 0
	fi
	[ "$can_mount" = 1 ] || return 1
	bash tests/fixtures/latencyfs.sh mount "$1" "$mnt" "$PROFILE_LFS_DELAY_MS" \
		--jitter-ms "$PROFILE_LFS_JITTER_MS" >>"$log" 2>&1 || return 1
	echo "$mnt"
}

# mount_round_trips: unmounts latencyfs if it is mounted and prints the round trips it
# served (its counters line), or nothing.
mount_round_trips() {
	grep -q " $mnt fuse.latencyfs " /proc/self/mounts || return 0
	bash tests/fixtures/latencyfs.sh umount "$mnt" 2>"$work/lfs.txt" || true
	sed -n 's/.* round_trips=\([0-9]*\).*/\1/p' "$work/lfs.txt" | tail -1
}

stop_proxy() {
	[ -n "$proxy_pid" ] || return 0
	kill -TERM "$proxy_pid" 2>/dev/null || true
	wait "$proxy_pid" 2>/dev/null || true
	proxy_pid=""
}

# start_proxy: delayproxy for the loaded profile, nfsport and mountport, one way = RTT/2.
start_proxy() {
	stop_proxy
	"$build/bench/delayproxy" --forward "$proxy_nfs_port:127.0.0.1:$GANESHA_NFS_PORT" \
		--forward "$proxy_mnt_port:127.0.0.1:$GANESHA_MNT_PORT" \
		--delay-ms "$PROFILE_PROXY_DELAY_MS" --jitter-ms "$PROFILE_PROXY_JITTER_MS" \
		--rate-mbit "$PROFILE_RATE_MBIT" --stats-file "$work/proxy-$PROFILE_NAME.json" \
		>>"$log" 2>&1 &
	proxy_pid=$!
	local i
	for ((i = 0; i < 100; i++)); do
		(exec 3<>"/dev/tcp/127.0.0.1/$proxy_nfs_port") 2>/dev/null && return 0
		sleep 0.05
	done
	echo "suite: delayproxy does not listen on $proxy_nfs_port" >&2
	exit 1
}

start_ganesha() {
	local rc=0
	bash tests/fixtures/ganesha.sh start "$data_root" >"$work/ganesha.urls" 2>>"$log" || rc=$?
	case $rc in
	0) ganesha_up=1 ;;
	77) echo "suite: ganesha cannot run here: nfs:// rows left out (see $log)" >&2 ;;
	*) echo "suite: ganesha failed to start:" >&2; tail -5 "$log" >&2; exit 1 ;;
	esac
}

check_fuse() {
	local probe=$work/probe
	mkdir -p "$probe"
	if ! bash tests/fixtures/latencyfs.sh mount "$probe" "$mnt" 0 >>"$log" 2>&1; then
		can_mount=0
		echo "suite: latencyfs cannot mount here: mount rows left out (see $log)" >&2
	fi
	umount_mnt
}

# ---- one run ----

declare -A rate mbps rss_mb label per_file
rows=() # "key" of each measured run of the current table, in order

# shell_words ARG...: the command as one line a shell reruns (quotes only where needed).
shell_words() {
	local a line=""
	for a in "$@"; do
		[[ $a =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]] || a=${a@Q}
		line+="${line:+ }$a"
	done
	printf '%s' "$line"
}

json_str() {
	local s=${1//\\/\\\\}
	s=${s//\"/\\\"}
	printf '"%s"' "${s//$'\t'/\\t}"
}

# count_output KIND DIR: files a run left in DIR (jobs) or listed in its stdout (walks).
count_output() {
	case $1 in
	job) find "$2" -type f -name '*.jpg' ! -name vhprep-preview.jpg | wc -l ;;
	vhprep-walk) sed -n 's/.*"entries":\([0-9]*\).*/\1/p' "$work/stdout" | tail -1 ;;
	*) grep -c '\.jpg$' "$work/stdout" || true ;;
	esac
}

# measure KEY LABEL CHECK COMMAND...: runs COMMAND once under /usr/bin/time -v (@OUT@ is a
# fresh outputs dir), checks its file count (CHECK: job, vhprep-walk, or list), records
# files/s, MB/s and peak RSS under KEY, appends the raw run to the JSON lines.
measure() {
	local key=$1 what=$2 check=$3
	shift 3
	local out=$work/out
	rm -rf -- "$out"
	mkdir -p -- "$out"
	local cmd=("${@//@OUT@/$out}")
	local shown
	shown=$(shell_words "${cmd[@]}")
	echo "# $cur_dataset/$PROFILE_NAME/$key: $shown" >&2
	local t0 t1 rc=0
	t0=$(date +%s.%N)
	/usr/bin/time -v -o "$work/time" "${cmd[@]}" >"$work/stdout" 2>"$work/stderr" || rc=$?
	t1=$(date +%s.%N)
	if [ "$rc" -ne 0 ]; then
		echo "suite: $key failed (exit $rc):" >&2
		tail -5 "$work/stderr" >&2
		exit 1
	fi
	local got secs kb trips
	trips=$(mount_round_trips)
	got=$(count_output "$check" "$out")
	if [ "${got:-0}" -ne "$cur_files" ]; then
		echo "suite: $key: $got files, want $cur_files" >&2
		exit 1
	fi
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	kb=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$work/time")
	rate[$key]=$(awk -v n="$cur_files" -v s="$secs" 'BEGIN { printf "%.1f", n / s }')
	mbps[$key]=$(awk -v b="$cur_bytes" -v s="$secs" 'BEGIN { printf "%.1f", b / s / 1e6 }')
	rss_mb[$key]=$(awk -v k="$kb" 'BEGIN { printf "%.0f", k / 1024 }')
	per_file[$key]=-
	[ -n "$trips" ] && per_file[$key]=$(awk -v t="$trips" -v n="$cur_files" 'BEGIN { printf "%.3g", t / n }')
	label[$key]=$what
	rows+=("$key")
	printf '{"bench":"suite","dataset":"%s","profile":"%s","rtt_ms":%s,"run":"%s","files":%d,"bytes":%d,"seconds":%s,"files_per_s":%s,"mb_per_s":%s,"peak_rss_kb":%d,"mount_round_trips":%s,"cores":%d,"smoke":%d,"run_started":"%s","date":"%s","command":%s}\n' \
		"$cur_dataset" "$PROFILE_NAME" "$PROFILE_RTT_MS" "$key" "$cur_files" "$cur_bytes" \
		"$secs" "${rate[$key]}" "${mbps[$key]}" "$kb" "${trips:-null}" "$cores" "$smoke" "$run_started" \
		"$(date -u +%FT%TZ)" "$(json_str "$shown")" >>"$results"
	# the global rate table keeps every run for the targets
	all_rate[$cur_dataset/$PROFILE_NAME/$key]=${rate[$key]}
}
declare -A all_rate

# ---- the benchmarks: full jobs (imagenet-like) and walks (flat, wide) ----

# warm_server NAME: one untimed walk and read of the dataset straight from ganesha (no
# proxy), so no nfs:// row pays for the server's cold caches (a real server is warm) and
# the first row of a table is not penalised for coming first.
warm_server() {
	[ "$ganesha_up" = 1 ] || return 0
	"$vhprep" bench "nfs://127.0.0.1$data_root/$1?nfsport=$GANESHA_NFS_PORT&mountport=$GANESHA_MNT_PORT" \
		>>"$log" 2>&1 || { echo "suite: warming ganesha for $1 failed (see $log)" >&2; exit 1; }
}

nfs3_url() { echo "nfs://127.0.0.1$data_root/$1?nfsport=$proxy_nfs_port&mountport=$proxy_mnt_port"; }
nfs4_url() { echo "nfs://127.0.0.1/export/$1?version=4&nfsport=$proxy_nfs_port"; }

where_mount() {
	if [ "$PROFILE_NAME" = local ]; then
		echo "plain dir"
	else
		echo "mount, ${PROFILE_LFS_DELAY_MS} ms/op"
	fi
}
where_nfs() { echo "nfs://$1, proxy ${PROFILE_PROXY_DELAY_MS} ms each way"; }

jobs_benchmarks() {
	local dir=$1 name=$2 src
	local vh=("$vhprep" --resize 224 --quality 75 --quiet --metrics-interval 0 -o @OUT@)
	if src=$(mount_source "$dir"); then
		local at
		at=$(where_mount)
		measure vhprep-mount "vhprep --resize 224 ($at)" job "${vh[@]}" "$src"
		mount_source "$dir" >/dev/null
		measure python-mount "Python/PIL loop, Valohai docs ($at)" job \
			"$python" bench/peers/python_loop.py --size 224 "$src" @OUT@
		mount_source "$dir" >/dev/null
		measure vips-mount "find | xargs -P$cores vipsthumbnail ($at)" job \
			sh -c 'find "$1" -name "*.jpg" | xargs -P "$3" -n 50 vipsthumbnail -s "224x224!" -o "$2/%s.jpg[Q=75]"' \
			sh "$src" @OUT@ "$cores"
		umount_mnt
	fi
	if [ "$ganesha_up" = 1 ]; then
		measure vhprep-nfs3 "vhprep --resize 224 ($(where_nfs v3))" job "${vh[@]}" "$(nfs3_url "$name")"
		measure vhprep-nfs4 "vhprep --resize 224 ($(where_nfs v4))" job "${vh[@]}" "$(nfs4_url "$name")"
	fi
}

walk_benchmarks() {
	local dir=$1 name=$2 src at
	if src=$(mount_source "$dir"); then
		at=$(where_mount)
		measure vhprep-walk-mount "vhprep bench --walk-only ($at)" vhprep-walk \
			"$vhprep" bench --walk-only "$src"
		mount_source "$dir" >/dev/null
		measure find-mount "find ($at)" list find "$src"
		mount_source "$dir" >/dev/null
		measure ls-mount "ls -R ($at)" list ls -R "$src"
		umount_mnt
	fi
	if [ "$ganesha_up" = 1 ]; then
		measure vhprep-walk-nfs3 "vhprep bench --walk-only ($(where_nfs v3))" vhprep-walk \
			"$vhprep" bench --walk-only "$(nfs3_url "$name")"
		if [ "$v4_walk" = 1 ]; then
			measure vhprep-walk-nfs4 "vhprep bench --walk-only ($(where_nfs v4))" vhprep-walk \
				"$vhprep" bench --walk-only "$(nfs4_url "$name")"
		fi
		measure nfsls-nfs3 "nfs-ls -R ($(where_nfs v3))" list nfs-ls -R "$(nfs3_url "$name")"
	fi
}

# ---- tables ----

# shellcheck source=bench/suite-refs.sh
source bench/suite-refs.sh # suite_ref KEY: the vhprep run a peer is compared with

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "n/a" }'; }

print_table() {
	local unit=$1 key ref r mb
	cat <<MD

### $cur_dataset: $cur_desc, profile \`$PROFILE_NAME\` (RTT $PROFILE_RTT_MS ms ± $PROFILE_JITTER_MS, cap $(rate_text))

| run | $unit | MB/s | peak RSS (MB) | mount round trips/file | vhprep ÷ this |
|---|---:|---:|---:|---:|---:|
MD
	for key in "${rows[@]}"; do
		ref=$(suite_ref "$key")
		r="vhprep"
		[ -n "$ref" ] && [ -n "${rate[$ref]:-}" ] && r=$(ratio "${rate[$ref]}" "${rate[$key]}")
		mb=${mbps[$key]}
		[ "$cur_bytes" = 0 ] && mb="-"
		printf '| %s | %s | %s | %s | %s | %s |\n' "${label[$key]//|/\\|}" "${rate[$key]}" "$mb" \
			"${rss_mb[$key]}" "${per_file[$key]}" "$r"
	done
}

rate_text() {
	if [ "$PROFILE_RATE_MBIT" = 0 ]; then echo "none"; else echo "$PROFILE_RATE_MBIT Mbit/s on nfs://"; fi
}

# ---- targets (issue 8), from this run's rates only ----

target_line() { # target_line TEXT NUMERATOR_KEY DENOMINATOR_KEY MIN
	local num=${all_rate[$2]:-} den=${all_rate[$3]:-} r verdict
	if [ -z "$num" ] || [ -z "$den" ]; then
		printf '| %s | not measured in this run | |\n' "$1"
		return
	fi
	r=$(awk -v a="$num" -v b="$den" 'BEGIN { printf "%.2f", a / b }')
	verdict=$(awk -v r="$r" -v m="$4" 'BEGIN { print (r >= m) ? "met" : "**missed**" }')
	printf '| %s | %s (%s / %s) | %s |\n' "$1" "$r" "$num" "$den" "$verdict"
}

print_targets() {
	local m=efs-maxio
	cat <<MD

### Targets (ratios of rates measured in this run$([ "$smoke" = 1 ] && echo "; smoke: tiny sets, not meaningful"))

| target | measured | |
|---|---:|---|
MD
	target_line "efs-maxio: vhprep on the mount ≥ 15x the Python loop on the mount" \
		"imagenet-like/$m/vhprep-mount" "imagenet-like/$m/python-mount" 15
	target_line "efs-maxio: vhprep on the mount ≥ 0.80x its own local rate" \
		"imagenet-like/$m/vhprep-mount" "imagenet-like/local/vhprep-mount" 0.8
	local d
	for d in wide flat; do
		target_line "efs-maxio, $d: vhprep walk ≥ 10x find on the mount" \
			"$d/$m/vhprep-walk-mount" "$d/$m/find-mount" 10
		target_line "efs-maxio, $d: vhprep walk (nfs:// v3) ≥ 10x nfs-ls -R via the proxy" \
			"$d/$m/vhprep-walk-nfs3" "$d/$m/nfsls-nfs3" 10
	done
	target_line "local: vhprep ≥ 2.5x the vipsthumbnail pipeline" \
		"imagenet-like/local/vhprep-mount" "imagenet-like/local/vips-mount" 2.5
}

# ---- main ----

dataset_info() { # prints DIR FILES BYTES DESC for dataset $1
	local line dir n
	case $1 in
	imagenet-like) line=$(bash bench/datasets.sh --root "$data_root" --count "$count" --per-dir 1300 imagenet-like) ;;
	flat) line=$(bash bench/datasets.sh --root "$data_root" --count "$flat_count" flat) ;;
	wide) line=$(bash bench/datasets.sh --root "$data_root" --dirs "$dirs" --per-dir "$per_dir" wide) ;;
	*) echo "suite: unknown dataset '$1' (imagenet-like, flat, wide)" >&2; exit 2 ;;
	esac
	IFS=$'\t' read -r _ dir n _ <<<"$line"
	cur_dir=$dir
	cur_files=$n
	cur_bytes=$(find "$dir" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
	case $1 in
	imagenet-like) cur_desc="$n photo-like 500x375 JPEGs ($((cur_bytes / n / 1000)) KB avg) -> 224x224 q75, full job" ;;
	flat) cur_desc="one folder of $n empty files, walk only" ;;
	wide) cur_desc="$dirs folders x $per_dir empty files, walk only" ;;
	esac
}

header() {
	cat <<MD
# vhprep benchmark suite: $(date -u +%F)

\`bash bench/suite.sh$([ "$smoke" = 1 ] && echo " --smoke") --profiles $profiles --datasets $datasets --count $count --flat-count $flat_count --dirs $dirs --per-dir $per_dir$([ "$v4_walk" = 0 ] && echo " --no-v4-walk")\`
on $cores cores ($(lscpu 2>/dev/null | awk -F': +' '/Model name/ { print $2; exit }')), load at
start: $load_start; at end: $(cut -d' ' -f1-3 /proc/loadavg). vhprep $(git rev-parse --short HEAD 2>/dev/null || echo '?').
Rates are wall-clock over the whole command (files/s for jobs, files listed/s for walks).
Ratios within one run are the result: the machine is shared and noisy (other builds and
benchmarks ran beside this one). The mount is remounted before every run; ganesha is warmed
once per dataset (an untimed walk and read without the proxy), as a real server would be.
Raw runs: \`${results#"$root"/}\`; the commands are in the suite's stderr.
MD
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
run_started=$(date -u +%FT%TZ)
IFS=, read -r -a profile_list <<<"$profiles"
IFS=, read -r -a dataset_list <<<"$datasets"
for p in "${profile_list[@]}"; do profile_load "$p" >/dev/null || exit 2; done
for d in "${dataset_list[@]}"; do dataset_info "$d" >/dev/null; done
check_fuse
start_ganesha
body=$work/body.md
: >"$body"
for cur_dataset in "${dataset_list[@]}"; do
	dataset_info "$cur_dataset"
	warm_server "$(basename "$cur_dir")"
	# the dataset's chart (drawn at the end) above its tables
	printf '\n![%s: vhprep and its peers by profile](%s/suite-%s.svg)\n' "$cur_dataset" \
		"$(realpath -m --relative-to="$(dirname "$report")" "$charts")" "$cur_dataset" >>"$body"
	for p in "${profile_list[@]}"; do
		profile_load "$p"
		start_proxy
		rows=()
		unset rate mbps rss_mb label per_file
		declare -A rate mbps rss_mb label per_file
		if [ "$cur_dataset" = imagenet-like ]; then
			jobs_benchmarks "$cur_dir" "$(basename "$cur_dir")"
			print_table "files/s" | tee -a "$body"
		else
			walk_benchmarks "$cur_dir" "$(basename "$cur_dir")"
			print_table "files listed/s" | tee -a "$body"
		fi
		stop_proxy
	done
done
{
	header
	cat "$body"
	print_targets
} >"$report"
print_targets
bash bench/plot.sh --out "$charts" "$results" >&2
echo "suite: report $report, raw runs $results, charts in $charts" >&2
