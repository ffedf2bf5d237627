#!/usr/bin/env python3
"""Fetches outputs from vhprep's packed shards through their indexes, as a consumer would:
one ranged read per output (tar), or one ranged read of its zstd frame piped through the
`zstd -d` command (tar.zst). Standard library only.

    read_index.py SHARD_DIR KEYS_FILE OUT_DIR

KEYS_FILE holds one key per line (UTF-8). For the key on line i (from 0), writes
OUT_DIR/i.bin (the output's bytes) and OUT_DIR/i.json (its provenance member). Checks on
the way that the 512 bytes before each member's data are a tar header of that size (a
ustar header always directly precedes a member's data, pax headers or not), so an index
that points into the wrong place fails here too. Exit 0, or 1 with a message.
"""
import glob
import json
import os
import subprocess
import sys
import tarfile


def load_index(shard_dir):
    entries = {}
    for path in sorted(glob.glob(os.path.join(glob.escape(shard_dir), "*.idx.jsonl"))):
        with open(path, encoding="utf-8") as f:
            for line in f:
                e = json.loads(line)
                if e["key"] in entries:
                    raise SystemExit(f"key {e['key']!r} is in two index lines")
                entries[e["key"]] = e
    return entries


def ranged_read(path, offset, size):
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read(size)
    if len(data) != size:
        raise SystemExit(f"{path}: short read at {offset}")
    return data


def member_block(shard_dir, e):
    """The bytes the output's members live in: the shard itself (tar) or its frame."""
    path = os.path.join(shard_dir, e["shard"])
    if "frame_offset" not in e:
        return None, path
    frame = ranged_read(path, e["frame_offset"], e["frame_size"])
    out = subprocess.run(["zstd", "-d", "-q", "-c"], input=frame, capture_output=True, check=True)
    return out.stdout, path


def fetch(block, path, offset, size):
    if block is None:
        block, offset = ranged_read(path, offset - 512, size + 512), 512
    header = block[offset - 512 : offset]
    data = block[offset : offset + size]
    info = tarfile.TarInfo.frombuf(header, "utf-8", "surrogateescape")
    if info.size != size or not info.isreg():
        raise SystemExit(f"{path}@{offset}: the header before the data says size {info.size}")
    return data


def main():
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    shard_dir, keys_file, out_dir = sys.argv[1:]
    entries = load_index(shard_dir)
    with open(keys_file, encoding="utf-8") as f:
        keys = f.read().splitlines()
    for i, key in enumerate(keys):
        e = entries.get(key)
        if e is None:
            raise SystemExit(f"key {key!r} is not in any index")
        block, path = member_block(shard_dir, e)
        with open(os.path.join(out_dir, f"{i}.bin"), "wb") as f:
            f.write(fetch(block, path, e["offset"], e["size"]))
        with open(os.path.join(out_dir, f"{i}.json"), "wb") as f:
            f.write(fetch(block, path, e["json_offset"], e["json_size"]))


if __name__ == "__main__":
    main()
