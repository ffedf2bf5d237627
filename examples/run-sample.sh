#!/usr/bin/env bash
# run-sample.sh: build vhprep, generate the built-in sample dataset and process it.
#
#   bash examples/run-sample.sh
#
# 1. installs the Debian packages (.ci/install-deps.sh, when present; needs root or sudo),
# 2. builds a release of vhprep and vhprep-mkimages into build/,
# 3. generates the sample (a few hundred images: JPEG, PNG, WebP, TIFF, EXIF-rotated, CMYK,
#    ICC-tagged, 64x48 to 2000x1500, nested folders, names with spaces and non-ASCII
#    letters) into build/sample/raw with build/bench/vhprep-mkimages,
# 4. runs `vhprep --resize 224` on it into build/sample/outputs, as a Valohai step would
#    on its NFS mount, and shows what it wrote.
# Any failure stops the script with a non-zero exit (vhprep exits 3 if any image failed).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
count=${SAMPLE_COUNT:-300}
raw=build/sample/raw
out=build/sample/outputs

if [[ -f .ci/install-deps.sh ]]; then
	bash .ci/install-deps.sh
fi

# Only the two programs the sample needs (tests/run.sh builds everything in build/ too).
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$(nproc)" --target vhprep vhprep-mkimages

rm -rf "$raw"
build/bench/vhprep-mkimages --preset sample --count "$count" --out "$raw"

rm -rf "$out"
build/vhprep --resize 224 --outputs "$out" "$raw"

echo
echo "input:   $PWD/$raw ($(find "$raw" -type f | wc -l) files)"
echo "outputs: $PWD/$out/processed_images ($(find "$out/processed_images" -type f | wc -l) files)"
echo "records: $PWD/$out/{valohai.metadata.jsonl,processing_metadata.csv,vhprep-errors.jsonl,vhprep-summary.json}"
echo
echo "== valohai.metadata.jsonl (first 3 of $(wc -l <"$out/valohai.metadata.jsonl") lines)"
head -n 3 "$out/valohai.metadata.jsonl"
echo
echo "== processing_metadata.csv (first 4 lines)"
head -n 4 "$out/processing_metadata.csv"
echo
echo "== vhprep-summary.json"
cat "$out/vhprep-summary.json"
echo
