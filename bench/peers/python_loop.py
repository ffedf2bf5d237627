#!/usr/bin/env python3
"""The baseline vhprep replaces: the Python/PIL loop of Valohai's network-storage docs.

This is the docs' preprocess_images.py (examples/preprocess_images.py) made runnable against
any input and outputs folder, so benchmarks run the same work a user's script does:

  - list the input (os.walk instead of os.listdir, so ImageNet-style class folders work; a
    flat folder is listed exactly as before), keep names ending in '.jpg' (case-sensitive,
    as in the docs);
  - one file at a time: Image.open, img.resize((224, 224)) (Pillow's default filter),
    img.save to processed_images/<relative path> (Pillow's default quality unless --quality);
  - processing_metadata.csv (filename, original_size, processed_size; the docs use
    pandas.DataFrame.to_csv, written here with the csv module to the same text, because
    pandas is not installed with Debian's python3-pil);
  - valohai.metadata.jsonl: one line per processed file plus one for the CSV, each adding
    it to the dataset version.

Nothing is made slower on purpose and nothing is parallelised: that is the point of the
comparison. Like the docs, a file Pillow cannot read stops the run with a traceback.
The only additions: a timing line on stderr, and --size / --quality / --dataset / --ext.

usage: python_loop.py [--size N|WxH] [--quality Q] [--dataset URI] [--ext .png] INPUT [OUTPUTS]
OUTPUTS defaults to $VH_OUTPUTS_DIR, else /valohai/outputs.
"""
import argparse
import csv
import json
import os
import sys
import time

from PIL import Image


def parse_size(text):
    w, _, h = text.partition("x")
    return (int(w), int(h or w))


def list_images(mount_path, ext=".jpg"):
    """Relative paths of the files ending in ext ('.jpg') under mount_path, in directory
    order."""
    image_files = []
    for dirpath, dirnames, filenames in os.walk(mount_path):
        rel = os.path.relpath(dirpath, mount_path)
        for f in filenames:
            if f.endswith(ext):
                image_files.append(f if rel == "." else os.path.join(rel, f))
    return image_files


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("input", help="folder of images (the NFS mount, e.g. /mnt/raw-images)")
    ap.add_argument("outputs", nargs="?",
                    default=os.environ.get("VH_OUTPUTS_DIR", "/valohai/outputs"))
    ap.add_argument("--size", type=parse_size, default=(224, 224),
                    help="N or WxH (default 224)")
    ap.add_argument("--quality", type=int, default=None,
                    help="JPEG quality for img.save (default: Pillow's, 75)")
    ap.add_argument("--dataset", default="dataset://preprocessed-images/v1")
    ap.add_argument("--ext", default=".jpg",
                    help="keep names ending in EXT (default .jpg, as the docs)")
    args = ap.parse_args()
    start = time.monotonic()

    # 1. Access raw data from network mount (NOT versioned)
    mount_path = args.input
    image_files = list_images(mount_path, args.ext)

    print(f"Found {len(image_files)} images on network mount")

    # 2. Process images
    processed_data = []
    output_dir = os.path.join(args.outputs, "processed_images")
    os.makedirs(output_dir, exist_ok=True)
    save_args = {} if args.quality is None else {"quality": args.quality}
    made_dirs = set()

    for filename in image_files:
        # Read from mount
        input_path = os.path.join(mount_path, filename)
        img = Image.open(input_path)

        # Process (resize, augment, etc.)
        img_resized = img.resize(args.size)

        # Save processed image to Valohai outputs (VERSIONED)
        output_path = os.path.join(output_dir, filename)
        subdir = os.path.dirname(filename)
        if subdir and subdir not in made_dirs:
            os.makedirs(os.path.dirname(output_path), exist_ok=True)
            made_dirs.add(subdir)
        img_resized.save(output_path, **save_args)

        # Track metadata
        processed_data.append({
            "filename": filename,
            "original_size": img.size,
            "processed_size": img_resized.size,
        })

    # 3. Save metadata (pandas.DataFrame(processed_data).to_csv(..., index=False))
    with open(os.path.join(args.outputs, "processing_metadata.csv"), "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["filename", "original_size", "processed_size"])
        for row in processed_data:
            writer.writerow([row["filename"], str(row["original_size"]),
                             str(row["processed_size"])])

    # 4. Create dataset version from processed images
    metadata = {
        f"processed_images/{filename}": {
            "valohai.dataset-versions": [{
                "uri": args.dataset
            }]
        }
        for filename in image_files
    }

    # Add metadata file itself
    metadata["processing_metadata.csv"] = {
        "valohai.dataset-versions": [{"uri": args.dataset}]
    }

    # Save metadata for dataset creation
    metadata_path = os.path.join(args.outputs, "valohai.metadata.jsonl")
    with open(metadata_path, "w") as f:
        for fname, fmeta in metadata.items():
            json.dump({"file": fname, "metadata": fmeta}, f)
            f.write("\n")

    print(f"Processed {len(image_files)} images")
    print(f"Created versioned dataset: {args.dataset}")
    seconds = time.monotonic() - start
    rate = len(image_files) / seconds if seconds > 0 else 0.0
    print(f"python_loop: {len(image_files)} files in {seconds:.2f} s ({rate:.1f} files/s)",
          file=sys.stderr)


if __name__ == "__main__":
    main()
