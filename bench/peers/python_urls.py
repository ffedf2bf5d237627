#!/usr/bin/env python3
"""The docs' Python/PIL loop (bench/peers/python_loop.py) fed by a URL list instead of a
mount: what a user writes with the standard library when the images are links.

One URL at a time: urllib.request.urlopen(url).read(), Image.open on the bytes,
img.resize(SIZE), img.save to processed_images/<URL path> (Pillow's default quality
unless --quality); then processing_metadata.csv and valohai.metadata.jsonl as the docs
write them. Nothing is made slower on purpose and nothing is parallelised. A URL that
fails stops the run with a traceback, as the docs' loop does with a bad file.

usage: python_urls.py [--size N|WxH] [--quality Q] [--cacert FILE] LIST [OUTPUTS]
"""
import argparse
import csv
import io
import json
import os
import ssl
import sys
import time
import urllib.request
from urllib.parse import urlsplit

from PIL import Image


def parse_size(text):
    w, _, h = text.partition("x")
    return (int(w), int(h or w))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("list", help="one URL per line")
    ap.add_argument("outputs", nargs="?",
                    default=os.environ.get("VH_OUTPUTS_DIR", "/valohai/outputs"))
    ap.add_argument("--size", type=parse_size, default=(224, 224))
    ap.add_argument("--quality", type=int, default=None)
    ap.add_argument("--cacert", default=None)
    ap.add_argument("--dataset", default="dataset://preprocessed-images/v1")
    args = ap.parse_args()
    start = time.monotonic()
    ctx = ssl.create_default_context(cafile=args.cacert)
    with open(args.list) as f:
        urls = [line.strip() for line in f if line.strip()]
    output_dir = os.path.join(args.outputs, "processed_images")
    save_args = {} if args.quality is None else {"quality": args.quality}
    processed, made = [], set()
    for url in urls:
        filename = urlsplit(url).path.lstrip("/")
        with urllib.request.urlopen(url, context=ctx) as resp:
            data = resp.read()
        img = Image.open(io.BytesIO(data))
        img_resized = img.resize(args.size)
        output_path = os.path.join(output_dir, filename)
        subdir = os.path.dirname(output_path)
        if subdir not in made:
            os.makedirs(subdir, exist_ok=True)
            made.add(subdir)
        img_resized.save(output_path, **save_args)
        processed.append((filename, img.size, img_resized.size))
    with open(os.path.join(args.outputs, "processing_metadata.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["filename", "original_size", "processed_size"])
        for row in processed:
            w.writerow([row[0], str(row[1]), str(row[2])])
    with open(os.path.join(args.outputs, "valohai.metadata.jsonl"), "w") as f:
        for name in [f"processed_images/{p[0]}" for p in processed] + ["processing_metadata.csv"]:
            json.dump({"file": name, "metadata": {"valohai.dataset-versions": [{"uri": args.dataset}]}}, f)
            f.write("\n")
    seconds = time.monotonic() - start
    print(f"python_urls: {len(processed)} files in {seconds:.2f} s "
          f"({len(processed) / seconds if seconds > 0 else 0:.1f} files/s)", file=sys.stderr)


if __name__ == "__main__":
    main()
