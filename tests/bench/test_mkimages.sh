#!/usr/bin/env bash
# test_mkimages.sh: vhprep-mkimages makes deterministic, well-formed datasets.
#
# Runs $VHPREP_BUILD_DIR/bench/vhprep-mkimages for every preset and checks: same options give
# byte-identical trees (sha256 of every file) whatever the thread count; file counts and names;
# that libvips (vipsheader, vips avg) reads every good file at the size the manifest says and
# decodes it without a warning; that every bad file is bad in the way its name says.
# Exit 0 pass, 77 skip (binary or libvips-tools missing), 1 fail.
# Last line: "mkimages: N passed, M failed".
set -u

bin=${VHPREP_BUILD_DIR:-}/bench/vhprep-mkimages
if [[ -z ${VHPREP_BUILD_DIR:-} || ! -x $bin ]]; then
	echo "skip: set VHPREP_BUILD_DIR to a build with bench/vhprep-mkimages"
	exit 77
fi
for tool in vipsheader vips sha256sum; do
	if ! command -v "$tool" >/dev/null; then
		echo "skip: $tool not found (apt-get install libvips-tools coreutils)"
		exit 77
	fi
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

ok() { passed=$((passed + 1)); }
bad() {
	failed=$((failed + 1))
	echo "FAIL: $*"
}
# check DESCRIPTION COMMAND...: one assertion.
check() {
	local desc=$1
	shift
	if "$@"; then ok; else bad "$desc"; fi
}

# gen NAME ARGS...: runs the generator into $tmp/NAME (manifest $tmp/NAME.tsv).
gen() {
	local name=$1
	shift
	if ! "$bin" --out "$tmp/$name" --manifest "$tmp/$name.tsv" "$@" 2>"$tmp/$name.err"; then
		bad "vhprep-mkimages $* failed: $(cat "$tmp/$name.err")"
		return 1
	fi
}

# hashes DIR: "sha256  ./relpath" for every file, sorted by path.
hashes() { (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum); }
nfiles() { find "$1" -type f | wc -l; }
same_tree() { cmp -s <(hashes "$1") <(hashes "$2"); }
differ_tree() { ! same_tree "$1" "$2"; }
equal() { [[ $1 == "$2" ]]; }

# header FILE: "WIDTH HEIGHT BANDS LOADER" from vipsheader, or nothing when it fails.
header() {
	local line
	line=$(vipsheader "$1" 2>/dev/null) || return 1
	line=${line##*: }
	# "320x240 uchar, 3 bands, srgb, jpegload"
	[[ $line =~ ^([0-9]+)x([0-9]+)\ [a-z]+,\ ([0-9]+)\ band.*,\ ([a-z]+load)$ ]] || return 1
	echo "${BASH_REMATCH[1]} ${BASH_REMATCH[2]} ${BASH_REMATCH[3]} ${BASH_REMATCH[4]}"
}
# decodes FILE LEVEL: libvips decodes every pixel with fail-on=LEVEL.
decodes() { vips avg "$1[fail-on=$2]" >/dev/null 2>&1; }
fails_decode() { ! decodes "$@"; }
not_image() { ! vipsheader "$1" >/dev/null 2>&1; }
has_nonascii_name() { (cd "$1" && find . -type f | LC_ALL=C grep -q '[^ -~]'); }
has_icc() { vipsheader -a "$1" 2>/dev/null | grep -q '^icc-profile-data'; }
is_ushort() { vipsheader "$1" 2>/dev/null | grep -q ' ushort, '; }
is_cmyk() { vipsheader -f interpretation "$1" 2>/dev/null | grep -q 'INTERPRETATION_CMYK'; }
help_lists_presets() { "$bin" --help | grep -q 'photos | sample | bad | flat | wide'; }

loader_for() {
	case $1 in
	jpeg*) echo jpegload ;;
	png*) echo pngload ;;
	webp) echo webpload ;;
	tiff) echo tiffload ;;
	*) echo unknown ;;
	esac
}

# check_manifest NAME: every manifest line's file reads with its size, bands and format,
# decodes without a warning, and has the listed byte size.
check_manifest() {
	local name=$1 path w h bands kind bytes got errors=0
	while IFS=$'\t' read -r path w h bands kind bytes; do
		got=$(header "$tmp/$name/$path") || got="unreadable"
		if [[ $got != "$w $h $bands $(loader_for "$kind")" ]]; then
			echo "  $path: vipsheader says '$got', manifest '$w $h $bands $kind'"
			errors=$((errors + 1))
		elif ! decodes "$tmp/$name/$path" warning; then
			echo "  $path: does not decode with fail-on=warning"
			errors=$((errors + 1))
		elif [[ $(stat -c %s "$tmp/$name/$path") != "$bytes" ]]; then
			echo "  $path: size differs from the manifest"
			errors=$((errors + 1))
		fi
	done <"$tmp/$name.tsv"
	[[ $errors == 0 ]]
}

manifest_has() { grep -q -- "$2" "$tmp/$1.tsv"; }

test_usage() {
	check "--help exits 0 and lists the presets" help_lists_presets
	"$bin" --preset nosuch --out "$tmp/x" 2>/dev/null
	check "unknown preset exits 2" equal $? 2
	"$bin" --preset photos 2>/dev/null
	check "missing --out exits 2" equal $? 2
	"$bin" --preset photos --count 0 --out "$tmp/x" 2>/dev/null
	check "--count 0 exits 2" equal $? 2
}

test_photos() {
	local args=(--preset photos --count 25 --per-dir 10 --width 320 --height 240 --seed 7)
	gen photos1 "${args[@]}" || return
	gen photos2 "${args[@]}" --threads 1 || return
	gen photos3 "${args[@]/7/8}" || return
	check "photos: 25 files" equal "$(nfiles "$tmp/photos1")" 25
	check "photos: class folders n0000..n0002" \
		equal "$(cd "$tmp/photos1" && echo n*)" "n0000 n0001 n0002"
	check "photos: 10 per folder, global index names" \
		test -f "$tmp/photos1/n0001/img_000010.jpg" -a -f "$tmp/photos1/n0002/img_000024.jpg"
	check "photos: one thread and two give identical files" same_tree "$tmp/photos1" "$tmp/photos2"
	check "photos: another seed gives other files" differ_tree "$tmp/photos1" "$tmp/photos3"
	check "photos: every file is a 320x240 JPEG that decodes" check_manifest photos1
	check "photos: the summary line names files, bytes and seconds" \
		grep -qE "photos: 25 files, [0-9]+ bytes .* [0-9.]+ s" "$tmp/photos1.err"
}

test_sample() {
	gen sample1 --preset sample --count 32 || return
	gen sample2 --preset sample --count 32 --threads 1 || return
	check "sample: 32 files" equal "$(nfiles "$tmp/sample1")" 32
	check "sample: identical across runs and thread counts" same_tree "$tmp/sample1" "$tmp/sample2"
	check "sample: identical manifests" cmp -s "$tmp/sample1.tsv" "$tmp/sample2.tsv"
	check "sample: every file reads at its size and decodes" check_manifest sample1
	local kind
	for kind in jpeg-orientation-6 jpeg-orientation-8 jpeg-cmyk jpeg-icc-p3 jpeg-progressive \
		png-rgba png-grey png-16bit webp tiff; do
		check "sample: has a $kind file" manifest_has sample1 $'\t'"$kind"$'\t'
	done
	check "sample: has 64x48" manifest_has sample1 $'\t64\t48\t'
	check "sample: has 2000x1500" manifest_has sample1 $'\t2000\t1500\t'
	check "sample: has 8:1" manifest_has sample1 $'\t2000\t250\t'
	check "sample: has a name with spaces" test -f "$tmp/sample1/holiday photos/beach day 01.jpg"
	check "sample: has a non-ASCII name" has_nonascii_name "$tmp/sample1"
	check "sample: has folders 3 deep" \
		test -n "$(find "$tmp/sample1" -mindepth 3 -type d -print -quit)"
	check "sample: orientation 6 is in the EXIF" \
		equal "$(vipsheader -f orientation "$tmp/sample1/phone/IMG_0006.jpg" 2>/dev/null)" 6
	check "sample: the CMYK JPEG is CMYK" is_cmyk "$tmp/sample1/print/cmyk poster.jpg"
	check "sample: the P3 JPEG carries an ICC profile" has_icc "$tmp/sample1/print/display-p3.jpg"
	check "sample: the 16-bit PNG is ushort" is_ushort "$tmp/sample1/scans/scan-16bit.png"
}

test_bad() {
	gen bad1 --preset bad || return
	gen bad2 --preset bad --threads 1 || return
	local d=$tmp/bad1
	check "bad: identical across runs" same_tree "$tmp/bad1" "$tmp/bad2"
	check "bad: the expected 8 files" equal "$(cd "$d" && echo *)" \
		"bomb.png corrupt.jpg good.jpg notimage.jpg truncated.jpg truncated.png undecodable.jpg zero.jpg"
	check "bad: good.jpg reads and decodes" decodes "$d/good.jpg" warning
	check "bad: corrupt.jpg has a valid header" equal "$(header "$d/corrupt.jpg")" "320 240 3 jpegload"
	check "bad: corrupt.jpg fails with fail-on=warning" fails_decode "$d/corrupt.jpg" warning
	check "bad: undecodable.jpg has a valid header" equal "$(header "$d/undecodable.jpg")" "320 240 3 jpegload"
	check "bad: undecodable.jpg fails even with fail-on=none" fails_decode "$d/undecodable.jpg" none
	check "bad: truncated.jpg has a valid header" equal "$(header "$d/truncated.jpg")" "320 240 3 jpegload"
	check "bad: truncated.jpg fails with fail-on=truncated" fails_decode "$d/truncated.jpg" truncated
	check "bad: truncated.png has a valid header" equal "$(header "$d/truncated.png")" "320 240 3 pngload"
	check "bad: truncated.png fails with fail-on=truncated" fails_decode "$d/truncated.png" truncated
	check "bad: truncated.jpg is 60% of good.jpg" \
		equal "$(stat -c %s "$d/truncated.jpg")" "$(($(stat -c %s "$d/good.jpg") * 6 / 10))"
	check "bad: zero.jpg is empty" equal "$(stat -c %s "$d/zero.jpg")" 0
	check "bad: zero.jpg is not an image" not_image "$d/zero.jpg"
	check "bad: notimage.jpg is not an image" not_image "$d/notimage.jpg"
	check "bad: bomb.png claims 60000x60000" equal "$(header "$d/bomb.png")" "60000 60000 1 pngload"
	check "bad: bomb.png is under 1 MB" test "$(stat -c %s "$d/bomb.png")" -lt 1000000
}

test_walk() {
	gen flat --preset flat --count 50 || return
	gen flat0 --preset flat --count 20 --empty || return
	gen wide --preset wide --dirs 3 --files 4 || return
	check "flat: 50 files in one folder" equal "$(find "$tmp/flat" -maxdepth 1 -type f | wc -l)" 50
	check "flat: tiny JPEGs" equal "$(header "$tmp/flat/f0000049.jpg")" "64 48 3 jpegload"
	check "flat --empty: 20 empty files" equal "$(find "$tmp/flat0" -type f -empty | wc -l)" 20
	check "wide: 3 folders" equal "$(cd "$tmp/wide" && echo d*)" "d0000 d0001 d0002"
	check "wide: 12 files" equal "$(nfiles "$tmp/wide")" 12
	check "wide: every file reads" check_manifest wide
}

test_usage
test_photos
test_sample
test_bad
test_walk

echo "mkimages: $passed passed, $failed failed"
[[ $failed == 0 ]]
