#!/usr/bin/env bash
# The whole test suite, from a fresh machine: install the Debian packages, build twice
# (release and ASan/UBSan), run every test in both. Integration tests that need FUSE
# mount bench/latencyfs themselves (as root).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
jobs=$(nproc)

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

echo "== tests (release)"
(cd build && ctest --output-on-failure -j "$jobs")

echo "== tests (ASan + UBSan)"
# glib/libvips keep process-lifetime caches that LeakSanitizer reports as leaks: the
# suppressions name them, so a leak of ours still fails.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$root/tests/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
(cd build-asan && ctest --output-on-failure -j "$jobs")
