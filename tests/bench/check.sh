# shellcheck shell=bash
# check.sh: the pass/fail counting the shell tests of tests/bench share. Source it; then
# `check NAME COMMAND...` runs COMMAND, prints "ok   NAME" or "FAIL NAME" and counts it
# in $passed or $failed.
passed=0
failed=0

check() {
	local name=$1
	shift
	if "$@"; then
		passed=$((passed + 1))
		echo "ok   $name"
	else
		failed=$((failed + 1))
		echo "FAIL $name"
	fi
}
