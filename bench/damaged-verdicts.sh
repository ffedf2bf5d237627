#!/usr/bin/env bash
# Damaged JPEGs through both kernels (issue 12): the verdict of each kernel on each file,
# and whether outputs are a pure function of the input bytes (same bytes at -j1, -j2 and
# -j8, and in another walk order).
#
#   bash bench/damaged-verdicts.sh [--fail-on LEVEL]
#
# The corpus is made here (/usr/bin/python3 with Pillow): three photo-like JPEGs
# (baseline 4:2:0, baseline 4:4:4, progressive) and from each: the scan cut at 25/50/75%
# with and without an EOI after it, 2,000 zeroed bytes and 500 random bytes inside the
# scan, a header taller than the scan, a stray RST marker, one flipped bit, a damaged
# Huffman table, the quantisation table removed. Each file is run in a dir of its own
# name order and reversed (a-/z- prefixes), by `--kernel vips` and by the default
# (jpeg-fast where it applies). Prints a Markdown table of verdicts per damage kind (one
# verdict where both kernels agree, "default / libvips" in bold where they do not) and
# the determinism checks; exit 1 when the kernels disagree or a rerun differs. "ok" on
# damaged bytes means no decoder says anything is wrong (a flipped bit, some garbage or
# zeroed runs decode as valid codes): libjpeg, libvips and PIL all accept those.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
failon=truncated
case ${1:-} in
--fail-on) failon=$2 ;;
"") ;;
*) echo "usage: $0 [--fail-on LEVEL]" >&2; exit 2 ;;
esac
vhprep=${VHPREP_BUILD_DIR:-$root/build}/vhprep
[ -x "$vhprep" ] || { echo "damaged-verdicts: $vhprep missing: build first" >&2; exit 2; }
work=$(mktemp -d "${TMPDIR:-/tmp}/vhprep-damaged.XXXXXX")
trap 'rm -rf "$work"' EXIT

/usr/bin/python3 - "$work/src" <<'PY'
import io, os, random, sys
from PIL import Image, ImageDraw, ImageFilter
out = sys.argv[1]
os.makedirs(out)
rnd = random.Random(7)
base = Image.effect_noise((480, 360), 50).convert("RGB").filter(ImageFilter.GaussianBlur(1))
d = ImageDraw.Draw(base)
for i in range(40):
    x, y = rnd.randrange(480), rnd.randrange(360)
    d.rectangle([x, y, x + rnd.randrange(80), y + rnd.randrange(60)],
                fill=(rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)))
kinds = {"base420": dict(quality=90, subsampling=2), "base444": dict(quality=90, subsampling=0),
         "progressive": dict(quality=90, progressive=True)}

def scan(b):
    s = b.rfind(b"\xff\xda")
    return s + 2 + int.from_bytes(b[s + 2:s + 4], "big")

for kind, opts in kinds.items():
    buf = io.BytesIO(); base.save(buf, "JPEG", **opts); j = buf.getvalue()
    s = scan(j); n = len(j); mid = s + (n - s) // 2
    v = {"intact": j}
    for pct in (25, 50, 75):
        cut = s + (n - s) * pct // 100
        v[f"cut{pct}"] = j[:cut]
        v[f"cut{pct}+eoi"] = j[:cut] + b"\xff\xd9"
    z = bytearray(j); z[mid:mid + 2000] = bytes(2000); v["zeroed"] = bytes(z)
    g = bytearray(j)
    for i in range(mid, mid + 500):
        g[i] = rnd.randrange(255)
    v["garbage"] = bytes(g)
    t = bytearray(j); f = t.find(b"\xff\xc0") if b"\xff\xc0" in t else t.find(b"\xff\xc2")
    t[f + 5:f + 7] = (720).to_bytes(2, "big"); v["taller"] = bytes(t)
    r = bytearray(j); r[mid:mid + 2] = b"\xff\xd3"; v["stray-rst"] = bytes(r)
    b = bytearray(j); b[mid] ^= 0x10; v["bitflip"] = bytes(b)
    h = bytearray(j); k = h.find(b"\xff\xc4"); h[k + 5:k + 21] = bytes([255] * 16); v["bad-dht"] = bytes(h)
    q = bytearray(j); k = q.find(b"\xff\xdb"); L = int.from_bytes(q[k + 2:k + 4], "big")
    v["no-dqt"] = bytes(q[:k] + q[k + 2 + L:])
    for name, data in v.items():
        for order in ("a", "z"):
            with open(os.path.join(out, f"{order}-{kind}-{name}.jpg" if order == "a" else f"{order}-{name}-{kind}.jpg"), "wb") as fh:
                fh.write(data)
PY

run() { # run NAME ARGS...: outputs in $work/NAME
	local name=$1
	shift
	local rc=0
	"$vhprep" --resize 224 --fail-on "$failon" --max-errors 100000 --preview 0 \
		--metrics-interval 0 "$@" -o "$work/$name" "$work/src" >/dev/null 2>"$work/$name.log" ||
		rc=$?
	if ((rc != 0)); then
		cat "$work/$name.log" >&2
		echo "damaged-verdicts: vhprep $* exited $rc" >&2
		exit 1
	fi
}
# verdicts NAME: "file verdict [sha256]" per input, sorted, the a-/z- copies folded
verdicts() {
	{
		jq -r 'select(.metadata.source_relpath) | "\(.metadata.source_relpath) ok \(.metadata.kernel)"' "$work/$1/valohai.metadata.jsonl"
		jq -r '"\(.path | split("/") | last) \(.reason) -"' "$work/$1/vhprep-errors.jsonl"
	} | sed -E 's/^(z-([a-z0-9+-]+)-(base420|base444|progressive)|a-(base420|base444|progressive)-([a-z0-9+-]+))\.jpg/\3\4 \2\5/' | sort -u
}
digests() { # digests NAME: "relpath sha256" of every output
	(cd "$work/$1/processed_images" && find . -type f -exec sha256sum {} + | awk '{print $2, $1}' | sort)
}
for j in 1 2 8; do run "auto-j$j" -j "$j"; done
run vips-j2 -j 2 --kernel vips
run vips-j8 -j 8 --kernel vips

rc=0
same_j=0
for j in 2 8; do
	if cmp -s <(digests auto-j1) <(digests "auto-j$j"); then same_j=$((same_j + 1)); else rc=1; echo "outputs differ between -j1 and -j$j" >&2; fi
done
cmp -s <(digests vips-j2) <(digests vips-j8) || { rc=1; echo "libvips outputs differ between -j2 and -j8" >&2; }
auto=$(verdicts auto-j2 | awk '{print $1, $2, $3}')
vips=$(verdicts vips-j2 | awk '{print $1, $2, $3}')
echo "| damage | base420 | base444 | progressive |"
echo "|---|---|---|---|"
join -j 1 <(echo "$auto" | awk '{print $1 "/" $2, $3}' | sort) <(echo "$vips" | awk '{print $1 "/" $2, $3}' | sort) |
	awk '{split($1, k, "/"); v[k[2], k[1]] = ($2 == $3 ? $2 : "**" $2 " / " $3 "**"); names[k[2]] = 1; if ($2 != $3) bad++}
	END {
		for (n in names) printf "| %s | %s | %s | %s |\n", n, v[n, "base420"], v[n, "base444"], v[n, "progressive"]
		exit bad > 0
	}' | sort || { rc=1; echo "the kernels disagree (bold)" >&2; }
files=$(find "$work/src" -type f | wc -l)
echo
echo "$files files ($((files / 2)) inputs, each twice in opposite walk order); outputs identical at -j1, -j2, -j8: $([ $same_j = 2 ] && echo yes || echo NO); pairs a-/z- with the same output bytes: $(digests auto-j2 | sed -E 's/^\.\/a-([a-z0-9]+)-([a-z0-9+-]+)\.jpg/\1 \2/; s/^\.\/z-([a-z0-9+-]+)-([a-z0-9]+)\.jpg/\2 \1/' | sort | uniq -c | awk '$1 == 1 {bad++} END {print bad ? bad " unpaired" : "all"}')"
exit "$rc"
