#!/usr/bin/env bash
# test_latencyfs.sh: functional test of bench/latencyfs through tests/fixtures/latencyfs.sh.
# Mounts a temporary tree (nested dirs, names with spaces and unicode, a 5 MB random file,
# symlinks) at 1 ms and checks: the same listing, byte-identical contents, writes fail with
# EROFS and leave the source alone, sane counters; then mounts a tree at 50 ms and checks
# that 32 concurrent readers overlap (a functional check of the threads, not a benchmark).
# Exit: 0 all passed, 77 FUSE unavailable (skip), 1 a check failed.
# Binary: $LATENCYFS or $VHPREP_BUILD_DIR (default <repo>/build), see the fixture.
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/bench/check.sh
source "$here/check.sh"
fixture=$here/../fixtures/latencyfs.sh
export VHPREP_BUILD_DIR=${VHPREP_BUILD_DIR:-$here/../../build}
export LC_ALL=C.UTF-8

work=$(mktemp -d "${TMPDIR:-/tmp}/test_latencyfs.XXXXXX") || exit 1
src=$work/src
mnt=$work/mnt
par=$work/par
mntpar=$work/mntpar
stats=$work/stats.json

NPAR=32       # concurrent readers
NSERIAL=4     # serial readers measured for the baseline
DELAY_PAR=50  # ms

cleanup() {
	local m clean=1
	for m in "$mnt" "$mntpar"; do
		"$fixture" umount "$m" >/dev/null 2>&1 || clean=0
	done
	if [ "$clean" -eq 1 ]; then
		rm -rf -- "$work"
	else
		echo "latencyfs: a mount is still up, left $work in place" >&2
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM


now_us() { echo "${EPOCHREALTIME//[^0-9]/}"; }

make_tree() {
	mkdir -p "$src/a/b/c/d" "$src/with space/sub dir" "$src/ünïcødé ✓" "$src/empty dir" &&
		head -c 5242880 /dev/urandom >"$src/a/big.bin" &&
		printf 'hello\n' >"$src/with space/sub dir/file name.txt" &&
		printf 'unicode\n' >"$src/ünïcødé ✓/名前 データ.txt" &&
		: >"$src/a/b/c/d/empty.txt" &&
		for i in $(seq 1 40); do printf 'file %d\n' "$i" >"$src/a/b/f$i.txt" || return 1; done &&
		ln -s a/big.bin "$src/link to big" &&
		ln -s "../with space" "$src/a/dirlink" &&
		ln -s does-not-exist "$src/dangling"
}

listing() {
	(cd "$1" && find . -printf '%y %m %s %T@ %l|%P\n' | sort)
}

# ---- checks on the 1 ms mount ----------------------------------------------------------

# Stats files by path before any listing, so each needs its own lookup.
stat_by_path() {
	local i
	for i in $(seq 1 10); do
		stat -- "$mnt/a/b/f$i.txt" >/dev/null || return 1
	done
}

check_listing() {
	local want got
	want=$(listing "$src") && got=$(listing "$mnt") || return 1
	[ "$want" = "$got" ] && return 0
	diff <(echo "$want") <(echo "$got") | head -20
	return 1
}

check_contents() {
	local f n=0
	while IFS= read -r -d '' f; do
		cmp -- "$src/$f" "$mnt/$f" || return 1
		n=$((n + 1))
	done < <(cd "$src" && find . -type f -print0)
	[ "$(readlink "$mnt/link to big")" = a/big.bin ] &&
		cmp -- "$src/a/big.bin" "$mnt/link to big" &&
		[ -f "$mnt/a/dirlink/sub dir/file name.txt" ] && [ "$n" -ge 44 ]
}

# Runs "$@", which must fail with "Read-only file system".
must_erofs() {
	local out
	if out=$("$@" 2>&1); then
		echo "  '$*' succeeded on a read-only mount"
		return 1
	fi
	case "$out" in
	*"Read-only file system"*) return 0 ;;
	*) echo "  '$*': $out"; return 1 ;;
	esac
}

append_line() { echo more >>"$1"; }

check_erofs() {
	local before after
	before=$(listing "$src"; md5sum "$src/a/b/f1.txt")
	must_erofs touch "$mnt/new file" &&
		must_erofs touch "$mnt/a/b/f1.txt" &&
		must_erofs rm -f "$mnt/a/b/f2.txt" &&
		must_erofs mkdir "$mnt/newdir" &&
		must_erofs append_line "$mnt/a/b/f3.txt" &&
		must_erofs mv "$mnt/a/b/f4.txt" "$mnt/a/f4.txt" &&
		must_erofs ln -s x "$mnt/newlink" &&
		must_erofs rmdir "$mnt/empty dir" || return 1
	after=$(listing "$src"; md5sum "$src/a/b/f1.txt")
	[ "$before" = "$after" ] || { echo "  the source changed"; return 1; }
}

stat_value() {
	sed -n "s/.*\"$1\": \([0-9][0-9]*\).*/\1/p" "$stats"
}

# Fails with a message unless "$1 $2 $3" holds (integers, test(1) operator).
expect() {
	test "$1" "$2" "$3" 2>/dev/null && return 0
	echo "  expected $4: $1 $2 $3"
	return 1
}

check_stats() {
	local lookup getattr open read opendir rdp release releasedir denied rtt bytes ok=0
	[ -s "$stats" ] || { echo "  no stats file $stats"; return 1; }
	echo "  stats: $(cat "$stats")"
	lookup=$(stat_value lookup) getattr=$(stat_value getattr) open=$(stat_value open)
	read=$(stat_value read) opendir=$(stat_value opendir) rdp=$(stat_value readdirplus)
	release=$(stat_value release) releasedir=$(stat_value releasedir)
	denied=$(stat_value denied) rtt=$(stat_value round_trips) bytes=$(stat_value bytes_read)
	expect "$lookup" -ge 12 "lookups >= 10 files stat'ed by path + 2 dirs" || ok=1
	expect "$open" -ge 44 "opens >= files compared" || ok=1
	expect "$read" -ge 5 "reads >= 5 MB / 1 MiB" || ok=1
	expect "$bytes" -ge 5242880 "bytes_read >= the big file" || ok=1
	expect "$opendir" -ge 9 "opendirs >= directories listed" || ok=1
	expect "$rdp" -ge 9 "readdirplus >= directories listed" || ok=1
	expect "$release" -eq "$open" "one release per open" || ok=1
	expect "$releasedir" -eq "$opendir" "one releasedir per opendir" || ok=1
	expect "$denied" -ge 7 "denied >= refused write attempts" || ok=1
	expect "$rtt" -ge $((lookup + getattr + open + read + opendir)) \
		"round trips >= delayed ops" || ok=1
	return $ok
}

# ---- concurrency on the 50 ms mount ------------------------------------------------------

cat_serial() {
	local i
	for i in $(seq 1 "$NSERIAL"); do cat "$mntpar/s$i" >/dev/null || return 1; done
}

cat_parallel() {
	local i pids=() rc=0
	for i in $(seq 1 "$NPAR"); do
		cat "$mntpar/p$i" >/dev/null &
		pids+=($!)
	done
	for i in "${pids[@]}"; do wait "$i" || rc=1; done
	return $rc
}

check_overlap() {
	local t0 serial_us per_file_us par_us limit_us
	cat "$mntpar/s0" >/dev/null || return 1 # the directory is known from here on
	t0=$(now_us)
	cat_serial || return 1
	serial_us=$(($(now_us) - t0))
	per_file_us=$((serial_us / NSERIAL))
	t0=$(now_us)
	cat_parallel || return 1
	par_us=$(($(now_us) - t0))
	limit_us=$((NPAR * per_file_us * 40 / 100))
	echo "  one cat: $((per_file_us / 1000)) ms serial; $NPAR parallel cats: $((par_us / 1000)) ms" \
		"(limit $((limit_us / 1000)) ms = 40% of serial)"
	expect "$per_file_us" -ge $((2 * DELAY_PAR * 1000)) "a cat to cost >= 2 round trips (us)" &&
		expect "$par_us" -lt "$limit_us" "parallel cats to overlap (us)"
}

make_par_tree() {
	local i
	mkdir -p "$par" || return 1
	for i in $(seq 0 "$NSERIAL"); do printf 'serial %d\n' "$i" >"$par/s$i" || return 1; done
	for i in $(seq 1 "$NPAR"); do printf 'parallel %d\n' "$i" >"$par/p$i" || return 1; done
}

# ---- main ----------------------------------------------------------------------------------

mount_or_exit() {
	"$fixture" mount "$@"
	local rc=$?
	[ "$rc" -eq 0 ] && return 0
	[ "$rc" -eq 77 ] && { echo "latencyfs: skipped (the fixture said why above)"; exit 77; }
	echo "latencyfs: cannot mount '$1' on '$2'"
	echo "latencyfs: $passed passed, $((failed + 1)) failed"
	exit 1
}

if ! make_tree || ! make_par_tree; then
	echo "latencyfs: cannot create the test trees in $work"
	exit 1
fi

mount_or_exit "$src" "$mnt" 1 --stats-file "$stats"
check "stat by path" stat_by_path
check "listing matches the source" check_listing
check "contents match the source" check_contents
check "writes fail with EROFS" check_erofs
"$fixture" umount "$mnt" || failed=$((failed + 1))
check "counters are sane" check_stats

mount_or_exit "$par" "$mntpar" "$DELAY_PAR"
check "concurrent reads overlap" check_overlap
"$fixture" umount "$mntpar" || failed=$((failed + 1))

echo "latencyfs: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
