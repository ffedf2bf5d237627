# shellcheck shell=bash
# callgrind-lib.sh: instruction counts for the benchmarks that decide by them
# (png-codecs.sh, dct-bench.sh). Source it; $work must name a scratch directory.
# shellcheck disable=SC2154 # work is the sourcing script's
#
# cg_count [--toggle PATTERN] COMMAND...: prints the instructions callgrind counts for
# COMMAND (all of it, every thread; or only inside functions matching PATTERN), keeps
# COMMAND's stdout in $work/out, prints the command on stderr first, and fails the run
# loudly when COMMAND fails under valgrind. libvips loads no modules there
# (VIPSHOME elsewhere): libhwy, under vips-jxl, executes an instruction (RDTSCP) that
# valgrind 3.19 cannot decode as it is loaded.
cg_count() {
	local toggle=() log=$work/callgrind.log
	if [ "$1" = --toggle ]; then
		toggle=(--toggle-collect="$2")
		shift 2
	fi
	echo "# callgrind${toggle[*]:+ (${toggle[*]})}: $*" >&2
	VIPSHOME=/nonexistent valgrind --tool=callgrind --callgrind-out-file=/dev/null \
		"${toggle[@]}" "$@" >"$work/out" 2>"$log" ||
		{ echo "callgrind run failed: $*" >&2; tail -5 "$log" >&2; exit 1; }
	sed -nE 's/.*Collected : ([0-9]+).*/\1/p' "$log"
}

# cg_pass COMMAND...: the instructions of one more pass (COMMAND --reps 2 less COMMAND
# --reps 1; the files follow), so start-up and reading the files are not counted.
# Usage: cg_pass "${cmd[@]}" -- FILE...
cg_pass() {
	local cmd=() two one
	while [ "$1" != -- ]; do
		cmd+=("$1")
		shift
	done
	shift
	two=$(cg_count "${cmd[@]}" --reps 2 "$@") || exit 1
	one=$(cg_count "${cmd[@]}" --reps 1 "$@") || exit 1
	echo $((two - one))
}
