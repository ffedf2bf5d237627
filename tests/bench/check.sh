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

# chart_ok SVG: the chart exists, holds gnuplot's data series and renders (rsvg-convert)
# to a picture that is not blank: the check every plot step of a smoke run makes.
chart_ok() {
	local svg=$1 png dev
	[ -s "$svg" ] || { echo "     $svg is missing or empty"; return 1; }
	grep -q '<g id="gnuplot_plot_1"' "$svg" || { echo "     $svg has no data series"; return 1; }
	png=$(mktemp "${TMPDIR:-/tmp}/chart.XXXXXX.png")
	if ! rsvg-convert -o "$png" "$svg"; then
		rm -f -- "$png"
		echo "     $svg does not render"
		return 1
	fi
	dev=$(vips deviate "$png") # 0 for a uniform picture
	rm -f -- "$png"
	awk -v d="$dev" 'BEGIN { exit !(d > 1) }' || { echo "     $svg renders blank (deviation $dev)"; return 1; }
}
