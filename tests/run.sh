#!/usr/bin/env bash
# The whole test suite, from a fresh machine: install the Debian packages, build three
# times (release and ASan/UBSan with gcc, ThreadSanitizer with clang) and a fourth for
# libFuzzer, run every test in the release build, all but the benchmark tools' tests
# (label bench) under ASan, the fuzz targets for a few seconds each, and the concurrent
# part of the suite under TSan. Integration tests that need FUSE mount bench/latencyfs
# themselves (as root). Each stage's header says how long the run has taken so far.
#
# VHPREP_CI=1: every component a test needs (nfs-ganesha, FUSE, nginx, root, zstd...) is
# installed by .ci/install-deps.sh, so a missing one FAILS its test instead of skipping it
# (tests/common/vhskip.h; Criterion reports a skip to ctest as a pass). The shell tests
# that exit 77 show as "Not Run" in ctest, which exits 0 for them: ctest_ci fails on those.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
jobs=$(nproc)
# Tests wait on sockets, FUSE round trips and child processes: at one per core, a quarter
# of the cores sat idle in a full run (user + sys 1.43 cores of 2); 1.5 per core still
# left 1.5 cores of 2 busy over the test stages.
test_jobs=$((jobs * 2))
export VHPREP_CI=1

# stage TITLE: a stage's header, with the minutes and seconds since the start
stage() { echo "== $1 [$((SECONDS / 60))m$((SECONDS % 60))s]"; }

bash .ci/install-deps.sh

stage "format (.clang-format; .ci/format-exempt.txt lists the files that predate it)"
bash .ci/format-check.sh

build() { # build DIR [cmake args...]
	local dir=$1
	shift
	cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
	cmake --build "$dir" -j "$jobs" >/dev/null
}

stage "build (release)"
build build
stage "build (ASan + UBSan)"
build build-asan -DVHPREP_SANITIZE=ON
stage "build (ThreadSanitizer, clang + LLVM OpenMP): the binaries the tests drive"
# Criterion cannot start under TSan ("Could not initialize inheritable arena", Criterion
# issue #274), so this build makes only what the integration tests run and the fuzz
# replays; the tests themselves come from build/ (VHPREP_TEST_BUILD_DIR below).
CC=clang-14 cmake -S "$root" -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	-DVHPREP_SANITIZE=thread >/dev/null
replays=$(cd build-tsan && cmake --build . --target help |
	sed -n 's/^\.\.\. \(fuzz_[a-z0-9_]*_replay\)$/\1/p')
# shellcheck disable=SC2086 # one target name a word
cmake --build build-tsan -j "$jobs" --target vhprep vhprep-nosys vhprep-mkimages $replays \
	>/dev/null

ctest_ci() { # ctest_ci DIR [ctest args...]: ctest, and a skipped test is a failure
	local dir=$1 log
	shift
	log=$(mktemp)
	local rc=0
	(cd "$dir" && ctest --output-on-failure -j "$test_jobs" "$@") | tee "$log" || rc=$?
	if grep -q "The following tests did not run" "$log"; then
		echo "run.sh: tests were skipped in CI (a component is missing): see above" >&2
		rc=1
	fi
	rm -f "$log"
	return "$rc"
}

stage "tests (release)"
ctest_ci build

stage "tests (ASan + UBSan)"
# glib/libvips keep process-lifetime caches that LeakSanitizer reports as leaks: the
# suppressions name them, so a leak of ours still fails.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$root/tests/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# Left out: the benchmark tools' tests (label bench, see tests/bench/CMakeLists.txt);
# itest_memory, whose bounds hold for the release build only (under ASan it runs in a
# container four times larger and proves nothing the release stage has not); and
# itest_modes and itest_shard (170 s under ASan, 1/7 of the stage): the geometry and the
# shard environments they drive run under ASan in test_geometry, test_vipskernel,
# test_jpegfast, test_config, test_shardenv and itest_select.
ctest_ci build-asan -LE '^bench$' -E '^itest_(memory|modes|shard)$'

stage "fuzz (libFuzzer + ASan/UBSan, clang): each target from its corpus for ${VHPREP_FUZZ_SECONDS:=5} s"
# The replays of tests/fuzz/corpus already ran above as ctests (gcc); this runs the
# targets themselves for a fixed budget, so CI also explores a little past the corpus.
# New inputs go to a scratch dir, never into the corpus; a failing input is printed.
CC=clang-14 cmake -S "$root" -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVHPREP_FUZZ=ON \
	-DVHPREP_BENCH=OFF >/dev/null
fuzzers=$(cd build-fuzz && cmake --build . --target help |
	sed -n 's/^\.\.\. \(fuzz_[a-z0-9_]*\)$/\1/p' | grep -v '_replay$')
# shellcheck disable=SC2086 # one target name a word
cmake --build build-fuzz -j "$jobs" --target $fuzzers >/dev/null
for f in $fuzzers; do
	scratch=$(mktemp -d)
	if ! build-fuzz/tests/fuzz/"$f" -max_total_time="$VHPREP_FUZZ_SECONDS" \
		-artifact_prefix="$scratch/" "$scratch" "tests/fuzz/corpus/${f#fuzz_}" \
		>"$scratch/log" 2>&1; then
		tail -n 40 "$scratch/log" >&2
		for a in "$scratch"/crash-* "$scratch"/leak-* "$scratch"/timeout-*; do
			[ -e "$a" ] && { echo "failing input $a:" >&2; od -c "$a" | head -20 >&2; }
		done
		echo "run.sh: $f failed (above)" >&2
		exit 1
	fi
	echo "$f: $(grep -o 'Done [0-9]* runs' "$scratch/log")"
	rm -rf "$scratch"
done

stage "tests (ThreadSanitizer: the concurrent integration tests and the fuzz replays)"
# Every thread of vhprep (workers, I/O pool, NFS and HTTP event loops, progress monitor,
# records) runs in the binary, so the integration tests built in build/ drive the TSan
# vhprep of build-tsan. TSan runs the code 5-15x slower: the whole suite would not fit
# CI's 20 minutes next to the other two builds, so this stage runs the suites that drive
# the threads hardest: the pipeline under signals (signals), the progress monitor
# (metrics), the records (records, since), the libcurl loop (http) and the NFS event
# loop (nfs). Not safety: its kill-and-rerun trials exceed ctest's 300 s under TSan.
# OpenMP: libomp's Archer tool tells TSan about OpenMP's barriers and joins (see
# tests/tsan.supp). Reports go to files (a test may not read a child's stderr, and a
# killed run has no exit code to check): any report fails the stage.
# report_thread_leaks=0: a second SIGTERM ends vhprep with _exit while its walkers
# still run, by design (issue 12 item 9); a leaked thread is not a race.
# ASAN_OPTIONS stays set: the RSS bounds of the NFS tests read it as "a sanitizer build".
tsan_logs=$(mktemp -d)
export TSAN_OPTIONS="suppressions=$root/tests/tsan.supp:ignore_noninstrumented_modules=1:report_thread_leaks=0:log_path=$tsan_logs/report:halt_on_error=0:exitcode=66:second_deadlock_stack=1"
export OMP_TOOL_LIBRARIES=/usr/lib/llvm-14/lib/libarcher.so
export VHPREP_TEST_BUILD_DIR=$root/build-tsan
tsan_rc=0
ctest_ci build -R '^itest_(signals|metrics|records|since|http|nfs)$' || tsan_rc=1
unset VHPREP_TEST_BUILD_DIR
ctest_ci build-tsan -L '^fuzz$' || tsan_rc=1
if compgen -G "$tsan_logs/report*" >/dev/null; then
	cat "$tsan_logs"/report* >&2
	echo "run.sh: ThreadSanitizer reported (above)" >&2
	tsan_rc=1
fi
stage "done"
exit "$tsan_rc"
