#!/usr/bin/env bash
# The whole test suite, from a fresh machine: install the Debian packages, build twice
# (release and ASan/UBSan), run every test in both. Integration tests that need FUSE
# mount bench/latencyfs themselves (as root).
#
# VHPREP_CI=1: every component a test needs (nfs-ganesha, FUSE, nginx, root, zstd...) is
# installed above, so a missing one FAILS its test instead of skipping it
# (tests/common/vhskip.h; Criterion reports a skip to ctest as a pass). The shell tests
# that exit 77 show as "Not Run" in ctest, which exits 0 for them: ctest_ci fails on those.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
jobs=$(nproc)
export VHPREP_CI=1

bash .ci/install-deps.sh

build() { # build DIR [cmake args...]
	local dir=$1
	shift
	cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
	cmake --build "$dir" -j "$jobs" >/dev/null
}

echo "== build (release)"
build build
echo "== build (ASan + UBSan)"
build build-asan -DVHPREP_SANITIZE=ON

ctest_ci() { # ctest_ci DIR [ctest args...]: ctest, and a skipped test is a failure
	local dir=$1 log
	shift
	log=$(mktemp)
	local rc=0
	(cd "$dir" && ctest --output-on-failure -j "$jobs" "$@") | tee "$log" || rc=$?
	if grep -q "The following tests did not run" "$log"; then
		echo "run.sh: tests were skipped in CI (a component is missing): see above" >&2
		rc=1
	fi
	rm -f "$log"
	return "$rc"
}

echo "== tests (release)"
ctest_ci build

echo "== tests (ASan + UBSan)"
# glib/libvips keep process-lifetime caches that LeakSanitizer reports as leaks: the
# suppressions name them, so a leak of ours still fails.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$root/tests/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
ctest_ci build-asan
