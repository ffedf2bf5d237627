#!/usr/bin/env python3
"""Reads outputs one at a time as a training step's data loader would, and times it:
from a directory tree (open, read, close per file) or from vhprep's tar shards through
their indexes (the indexes read once, then one ranged read per output on a shard opened
once). Standard library only.

    pack_consumer.py dir   ROOT KEYS_FILE
    pack_consumer.py index ROOT KEYS_FILE

ROOT is the outputs dir as the consumer sees it (e.g. a latencyfs mount). KEYS_FILE holds
one key per line: a key is the output's path relative to ROOT, which is also its key in
the shards' indexes. Prints one JSON line: mode, files, bytes, seconds (index loading
included), files_per_s, and sha256 (of the SHA-256s of the files in key order, so two
modes that read the same bytes print the same value). Exit 0, or 1 with a message.
"""
import glob
import hashlib
import json
import os
import sys
import time


def read_dir(root, keys):
    for key in keys:
        with open(os.path.join(root, key), "rb") as f:
            yield f.read()


def read_index(root, keys):
    entries = {}
    for path in sorted(glob.glob(os.path.join(glob.escape(root), "*.idx.jsonl"))):
        with open(path, encoding="utf-8") as f:
            for line in f:
                e = json.loads(line)
                entries[e["key"]] = e
    shards = {}
    try:
        for key in keys:
            e = entries.get(key)
            if e is None:
                raise SystemExit(f"pack_consumer: key {key!r} is in no index")
            if "frame_offset" in e:
                raise SystemExit("pack_consumer: tar.zst shards are not timed here")
            fd = shards.get(e["shard"])
            if fd is None:
                fd = shards[e["shard"]] = os.open(os.path.join(root, e["shard"]), os.O_RDONLY)
            data = os.pread(fd, e["size"], e["offset"])
            if len(data) != e["size"]:
                raise SystemExit(f"pack_consumer: short read of {key!r}")
            yield data
    finally:
        for fd in shards.values():
            os.close(fd)


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("dir", "index"):
        raise SystemExit(__doc__)
    mode, root, keys_file = sys.argv[1:]
    with open(keys_file, encoding="utf-8") as f:
        keys = f.read().splitlines()
    reader = read_dir if mode == "dir" else read_index
    total = hashlib.sha256()
    nbytes = 0
    t0 = time.monotonic()
    for data in reader(root, keys):
        nbytes += len(data)
        total.update(hashlib.sha256(data).digest())
    secs = time.monotonic() - t0
    print(json.dumps({"mode": mode, "files": len(keys), "bytes": nbytes,
                      "seconds": round(secs, 3), "files_per_s": round(len(keys) / secs, 1),
                      "sha256": total.hexdigest()}))


if __name__ == "__main__":
    main()
