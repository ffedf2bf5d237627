#!/usr/bin/env bash
# Same pictures: vhprep's 224x224 stretch outputs against the Valohai docs' PIL loop on
# the same photo-like inputs (grain, edges, text), for both kernels, both at vhprep's
# defaults (quality 75, 4:2:0: the seed's, as the loop saves with Pillow's default).
# The mean absolute difference (0-255, over every pixel of every image, decoded RGB)
# must be <= 3.0, and the bytes written within 15% of the loop's.
# Exit 0 pass, 77 skip (no binary or no python3-pil), else fail.
set -u
build=${VHPREP_BUILD_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/build}
src=$(cd "$(dirname "$0")/../.." && pwd)
python=/usr/bin/python3
for tool in "$build/vhprep" "$build/bench/vhprep-mkimages"; do
	[ -x "$tool" ] || { echo "same-pictures: skipped: $tool not built"; exit 77; }
done
"$python" -c 'import PIL' 2>/dev/null || { echo "same-pictures: skipped: no python3-pil"; exit 77; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$build/bench/vhprep-mkimages" --preset photos --count 40 --per-dir 40 --seed 11 \
	--out "$work/raw" 2>/dev/null || { echo "same-pictures: mkimages failed"; exit 1; }
"$python" "$src/bench/peers/python_loop.py" --size 224 "$work/raw" \
	"$work/pil" >/dev/null 2>&1 || { echo "same-pictures: the PIL loop failed"; exit 1; }

passed=0 failed=0
for kernel in auto vips; do
	"$build/vhprep" --resize 224 --kernel "$kernel" -q --metrics-interval 0 \
		-o "$work/vh-$kernel" "$work/raw" || { echo "FAIL: vhprep --kernel $kernel"; failed=$((failed + 1)); continue; }
	want=$([ "$kernel" = auto ] && echo jpeg-fast || echo libvips)
	if ! grep -q "\"kernel\":\"$want\"" "$work/vh-$kernel/valohai.metadata.jsonl"; then
		echo "FAIL: --kernel $kernel did not use $want"
		failed=$((failed + 1))
		continue
	fi
	mad=$("$python" - "$work/pil/processed_images" "$work/vh-$kernel/processed_images" <<'PY'
import os, sys
from PIL import Image, ImageChops, ImageStat
a_root, b_root = sys.argv[1], sys.argv[2]
total = pixels = 0
for dirpath, _, files in os.walk(a_root):
    for f in files:
        rel = os.path.relpath(os.path.join(dirpath, f), a_root)
        a = Image.open(os.path.join(a_root, rel)).convert("RGB")
        b = Image.open(os.path.join(b_root, rel)).convert("RGB")
        assert a.size == b.size == (224, 224), (rel, a.size, b.size)
        n = a.size[0] * a.size[1] * 3
        total += sum(ImageStat.Stat(ImageChops.difference(a, b)).sum)
        pixels += n
assert pixels > 0
def size(root):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(root) for f in fs)
print(f"{total / pixels:.3f} {size(b_root) / size(a_root):.3f}")
PY
	) || { echo "FAIL: comparing --kernel $kernel"; failed=$((failed + 1)); continue; }
	read -r mad ratio <<<"$mad"
	if awk -v m="$mad" -v r="$ratio" 'BEGIN { exit !(m <= 3.0 && r >= 0.85 && r <= 1.15) }'; then
		echo "ok   --kernel $kernel ($want): MAD vs PIL $mad <= 3.0, bytes ${ratio}x PIL's"
		passed=$((passed + 1))
	else
		echo "FAIL: --kernel $kernel ($want): MAD vs PIL $mad (<= 3.0), bytes ${ratio}x PIL's (0.85-1.15)"
		failed=$((failed + 1))
	fi
done
echo "same-pictures: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
