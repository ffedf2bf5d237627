#!/usr/bin/env bash
# nfs-lib.sh: the pieces nfs-bench.sh and tune.sh share. Source it after setting:
#   root   the repository root          build  the build dir (vhprep, bench tools)
#   work   a private scratch dir        prog   the script's name (for messages)
# It starts and stops exactly what it started (ganesha, delay proxies, latencyfs mounts):
# nfslib_traps installs the traps that stop it all and remove $work on exit.
#
# Ports: ganesha on $GANESHA_NFS_PORT/$GANESHA_MNT_PORT (default 20590/20591 here, so other
# benchmarks on 20490/20690/20790 run side by side); proxies listen on 20592-20599.
# shellcheck shell=bash disable=SC2034,SC2154 # set here for, or by, the sourcing script

: "${GANESHA_NFS_PORT:=20590}"
: "${GANESHA_MNT_PORT:=20591}"
export GANESHA_NFS_PORT GANESHA_MNT_PORT
export GANESHA_STATE_DIR=$work/ganesha
export LATENCYFS_STATE_DIR=$work/latencyfs
export VHPREP_BUILD_DIR=$build

vhprep=$build/vhprep
ganesha_started=0
proxy_pids=()
lfs_mounts=()

die() { echo "$prog: $*" >&2; exit 1; }

# Prints "$@" shell-quoted on stderr, as the command about to run.
show() {
	printf '+' >&2
	printf ' %q' "$@" >&2
	printf '\n' >&2
}

# Exits 2 unless every given file is an executable.
need_tools() {
	local t
	for t in "$@"; do
		[ -x "$t" ] || { echo "$prog: $t missing: build first (cmake --build build)" >&2; exit 2; }
	done
}

# ganesha_start DIR: exports DIR (nfs_url then names paths under it); sets export_dir.
# Returns 77 when ganesha cannot run here, as tests/fixtures/ganesha.sh does.
ganesha_start() {
	local rc=0
	show bash tests/fixtures/ganesha.sh start "$1"
	bash tests/fixtures/ganesha.sh start "$1" >/dev/null || rc=$?
	[ "$rc" -eq 0 ] || return "$rc"
	ganesha_started=1
	export_dir=$(cd "$1" && pwd -P)
}

ganesha_stop() {
	[ "$ganesha_started" -eq 1 ] || return 0
	bash tests/fixtures/ganesha.sh stop >/dev/null 2>&1 || true
	ganesha_started=0
}

# nfs_url VERSION REL [NFSPORT MNTPORT]: the nfs:// URL of REL (relative to the export).
nfs_url() {
	local v=$1 rel=$2 np=${3:-$GANESHA_NFS_PORT} mp=${4:-$GANESHA_MNT_PORT}
	if [ "$v" = 3 ]; then
		echo "nfs://127.0.0.1$export_dir/$rel?version=3&nfsport=$np&mountport=$mp"
	else
		echo "nfs://127.0.0.1/export/$rel?version=4&nfsport=$np"
	fi
}

# proxy_start NAME DELAY_MS JITTER_MS RATE_MBIT LPORT:TPORT...: a delay proxy in the
# background, forwarding each 127.0.0.1:LPORT to 127.0.0.1:TPORT; waits until it listens.
proxy_start() {
	local name=$1 delay=$2 jitter=$3 rate=$4 fw args=() i
	shift 4
	for fw in "$@"; do
		args+=(--forward "${fw%%:*}:127.0.0.1:${fw#*:}")
	done
	show "$build/bench/delayproxy" "${args[@]}" --delay-ms "$delay" --jitter-ms "$jitter" \
		--rate-mbit "$rate" --seed 1
	"$build/bench/delayproxy" "${args[@]}" --delay-ms "$delay" --jitter-ms "$jitter" \
		--rate-mbit "$rate" --seed 1 --stats-file "$work/$name.stats" 2>"$work/$name.err" &
	proxy_pids+=($!)
	for ((i = 0; i < 100; i++)); do
		(exec 3<>"/dev/tcp/127.0.0.1/${1%%:*}") 2>/dev/null && return 0
		sleep 0.05
	done
	die "delayproxy did not listen on ${1%%:*} (see $work/$name.err)"
}

proxy_stop_all() {
	local p
	for p in "${proxy_pids[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	proxy_pids=()
}

# lfs_mount SRC MNT DELAY_MS [latencyfs options]: (re)mounts latencyfs; returns 77 if
# FUSE is unavailable.
lfs_mount() {
	local rc=0
	show bash tests/fixtures/latencyfs.sh mount "$@"
	bash tests/fixtures/latencyfs.sh mount "$@" 2>"$work/lfs-mount.err" || rc=$?
	[ "$rc" -eq 0 ] || { cat "$work/lfs-mount.err" >&2; return "$rc"; }
	lfs_mounts+=("$2")
}

lfs_umount() {
	bash tests/fixtures/latencyfs.sh umount "$1" >/dev/null 2>&1 || true
}

nfslib_cleanup() {
	local m
	for m in "${lfs_mounts[@]}"; do
		lfs_umount "$m"
	done
	proxy_stop_all
	ganesha_stop
	rm -rf "$work"
}

# nfslib_traps: on exit (also after SIGINT/SIGTERM, with 130/143) nfslib_cleanup runs.
nfslib_traps() {
	trap nfslib_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

# timed NAME CMD...: runs CMD once, stdout to $work/NAME.out, stderr to $work/NAME.err;
# sets T_SECS (wall) and T_RSS_KB (peak RSS). A failing command is fatal, with its stderr.
timed() {
	local name=$1 t0 t1 rc=0
	shift
	show "$@"
	t0=$(date +%s.%N)
	/usr/bin/time -f %M -o "$work/$name.rss" "$@" >"$work/$name.out" 2>"$work/$name.err" || rc=$?
	t1=$(date +%s.%N)
	if [ "$rc" -ne 0 ]; then
		tail -n 5 "$work/$name.err" >&2
		die "$name failed (exit $rc)"
	fi
	T_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')
	T_RSS_KB=$(tail -n 1 "$work/$name.rss")
}

# jfield NAME FILTER: a jq FILTER applied to the last JSON line of $work/NAME.out.
jfield() {
	grep '^{' "$work/$1.out" | tail -n 1 | jq -r "$2"
}

# calc EXPR: awk arithmetic, printed with up to 4 significant decimals.
calc() { awk "BEGIN { v = $1; printf \"%.4g\", v }"; }
# fmt1 X: X with one decimal; fmtx A B: A / B as "N.NNx".
fmt1() { awk -v v="$1" 'BEGIN { printf "%.1f", v }'; }
fmtx() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'; }

# median X...: the median of the numbers.
median() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
		if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# jsonl FILE KEY=VALUE...: appends one JSON object; values that look numeric stay numbers.
jsonl() {
	local file=$1
	shift
	jq -cn --arg date "$(date -u +%FT%TZ)" --arg cores "$(nproc)" '
		[$ARGS.positional[] | capture("^(?<k>[^=]+)=(?<v>.*)$")]
		| map({(.k): (.v | (tonumber? // .))}) | add + {date: $date, cores: ($cores | tonumber)}' \
		--args "$@" >>"$file"
}

# mktree DIR NDIRS NFILES: NDIRS folders d0000.. of NFILES empty files each (NDIRS 0:
# NFILES files directly in DIR). Kept between runs: DIR.complete marks a finished tree.
mktree() {
	local dir=$1 nd=$2 nf=$3
	[ -f "$dir.complete" ] && return 0
	echo "$prog: creating $dir ($nd dirs x $nf files)" >&2
	rm -rf "$dir"
	/usr/bin/python3 - "$dir" "$nd" "$nf" <<'PY'
import os, sys
root, nd, nf = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(root, exist_ok=True)
dirs = [root] if nd == 0 else [os.path.join(root, "d%04d" % i) for i in range(nd)]
for d in dirs:
    os.makedirs(d, exist_ok=True)
    for j in range(nf):
        os.close(os.open(os.path.join(d, "f%07d" % j), os.O_CREAT | os.O_WRONLY, 0o644))
PY
	touch "$dir.complete"
}

# mkphotos DIR COUNT: COUNT photo-like 500x375 JPEGs (about 110 KB each at quality 95).
mkphotos() {
	local dir=$1 n=$2
	[ -f "$dir.complete" ] && return 0
	rm -rf "$dir"
	show "$build/bench/vhprep-mkimages" --preset photos --count "$n" --quality 95 --per-dir 500 --out "$dir"
	"$build/bench/vhprep-mkimages" --preset photos --count "$n" --quality 95 --per-dir 500 \
		--out "$dir" >&2
	touch "$dir.complete"
}

# mkbig DIR COUNT MB: COUNT files of MB MiB of random bytes.
mkbig() {
	local dir=$1 n=$2 mb=$3 i
	[ -f "$dir.complete" ] && return 0
	rm -rf "$dir"
	mkdir -p "$dir"
	for ((i = 0; i < n; i++)); do
		head -c "${mb}M" /dev/urandom >"$dir/big$i.bin"
	done
	touch "$dir.complete"
}
