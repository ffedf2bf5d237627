#!/usr/bin/env python3
"""The datasets and the picture checks of bench/shapes-bench.sh (run with /usr/bin/python3,
which has python3-pil).

  shapes.py icons OUT N PARTS            N icon PNGs of Debian's Adwaita and hicolor themes
  shapes.py cifar SRC OUT N PARTS        N 32x32 RGB PNGs shrunk from SRC's JPEGs
  shapes.py gray16 SRC OUT N PARTS       N 512x512 16-bit grey PNGs made from SRC's JPEGs
  shapes.py exif SRC OUT PARTS           SRC's JPEGs with a camera-like EXIF APP1 segment
                                         (Make, Model, Orientation 1, 6, 3, 8 in turn)
  shapes.py compare PIL_DIR VH_DIR [SRC]  one JSON line: files, bytes of each, MAD (0-255) of
                                         VH's pictures against PIL's

Every dataset is spread over PARTS folders p0..p{PARTS-1} (one Python process per folder
is the per-core peer), files in a stable order, so a rerun makes the same set. compare
matches files by relative path; 16-bit outputs are read as round(v / 257); where either
picture has alpha, colour is compared premultiplied (what shows) and alpha separately.
The docs' loop ignores EXIF orientation; given SRC (the inputs, same relative paths),
compare turns PIL's output by its source's orientation first (for a square stretch,
turning after the resize gives the turned picture's resize), so MAD measures the picture,
not the rotation.
"""
import hashlib
import json
import os
import shutil
import struct
import sys

from PIL import Image, ImageChops, ImageOps, ImageStat

ICON_ROOTS = ["/usr/share/icons/Adwaita", "/usr/share/icons/hicolor"]


def part_path(out, i, parts, name):
    d = os.path.join(out, "p%d" % (i % parts))
    os.makedirs(d, exist_ok=True)
    return os.path.join(d, name)


def jpegs(src):
    found = []
    for dirpath, _, files in os.walk(src):
        found += [os.path.join(dirpath, f) for f in files if f.endswith(".jpg")]
    return sorted(found)


def icons(out, n, parts):
    seen, k = set(), 0
    for root in ICON_ROOTS:
        for dirpath, _, files in sorted(os.walk(root)):
            for f in sorted(files):
                p = os.path.join(dirpath, f)
                if k >= n or not f.endswith(".png") or os.path.islink(p):
                    continue
                data = open(p, "rb").read()
                digest = hashlib.sha256(data).digest()
                if digest in seen:
                    continue
                seen.add(digest)
                shutil.copyfile(p, part_path(out, k, parts, "i%05d.png" % k))
                k += 1
    if k < n:
        print("shapes.py: only %d icon PNGs found (install adwaita-icon-theme)" % k,
              file=sys.stderr)


def cifar(src, out, n, parts):
    files = jpegs(src)
    for k in range(n):
        im = Image.open(files[k % len(files)]).convert("RGB")
        side = min(im.size)
        im = im.crop((0, 0, side, side)).resize((32, 32), Image.LANCZOS)
        im.save(part_path(out, k, parts, "c%05d.png" % k))


def gray16(src, out, n, parts):
    files = jpegs(src)
    for k in range(n):
        im = Image.open(files[k % len(files)]).convert("L").resize((512, 512), Image.BICUBIC)
        # 12 significant bits, as CT and X-ray scanners store them, with sensor noise
        # in the low bits so they are not all zero
        data = [(v << 4 | (v * 7 + i) % 16) for i, v in enumerate(im.getdata())]
        im16 = Image.new("I;16", im.size)
        im16.putdata(data)
        im16.save(part_path(out, k, parts, "g%05d.png" % k))


def exif_segment(orientation):
    """An APP1 Exif segment: IFD0 with Make, Model and Orientation (little-endian TIFF)."""
    make, model = b"Vhprep\0", b"Bench Camera\0"
    entries = 3
    ifd_size = 2 + entries * 12 + 4
    data_off = 8 + ifd_size
    tiff = b"II*\0" + struct.pack("<I", 8) + struct.pack("<H", entries)
    tiff += struct.pack("<HHII", 0x010F, 2, len(make), data_off)
    tiff += struct.pack("<HHII", 0x0110, 2, len(model), data_off + len(make))
    tiff += struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0)
    tiff += struct.pack("<I", 0) + make + model
    body = b"Exif\0\0" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body


def exif(src, out, parts):
    for k, p in enumerate(jpegs(src)):
        data = open(p, "rb").read()
        with open(part_path(out, k, parts, "e%05d.jpg" % k), "wb") as f:
            f.write(data[:2] + exif_segment((1, 6, 3, 8)[k % 4]) + data[2:])


def load(path):
    im = Image.open(path)
    im.load()
    if im.mode in ("I", "I;16", "I;16B"):
        return Image.frombytes("L", im.size, bytes(min(255, (v + 128) // 257)
                                                   for v in im.getdata()))
    return im


def mad(a, b):
    """(colour MAD, alpha MAD or None) of two pictures of one size."""
    alpha = "A" in a.mode or "A" in b.mode or "transparency" in a.info
    if not alpha:
        d = ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).mean
        return sum(d) / 3, None
    pa, pb = a.convert("RGBA").convert("RGBa"), b.convert("RGBA").convert("RGBa")
    d = ImageStat.Stat(ImageChops.difference(pa, pb)).mean
    return sum(d[:3]) / 3, d[3]


def oriented(im, src):
    """im turned as the EXIF orientation of the file src says (if src exists)."""
    if not src or not os.path.exists(src):
        return im
    orientation = Image.open(src).getexif().get(0x0112, 1)
    im.getexif()[0x0112] = orientation
    im.info["exif"] = im.getexif().tobytes()
    return ImageOps.exif_transpose(im)


def compare(pil_dir, vh_dir, src_dir=None):
    files = bytes_pil = bytes_vh = 0
    colour = alpha = 0.0
    with_alpha = 0
    for dirpath, _, names in os.walk(pil_dir):
        for name in names:
            rel = os.path.relpath(os.path.join(dirpath, name), pil_dir)
            a_path, b_path = os.path.join(pil_dir, rel), os.path.join(vh_dir, rel)
            if not os.path.exists(b_path):
                continue
            a, b = load(a_path), load(b_path)
            if src_dir:
                a = oriented(a, os.path.join(src_dir, rel))
            if a.size != b.size:
                raise SystemExit("shapes.py: %s is %s in PIL's output, %s in the other"
                                 % (rel, a.size, b.size))
            c, al = mad(a, b)
            files += 1
            colour += c
            if al is not None:
                alpha += al
                with_alpha += 1
            bytes_pil += os.path.getsize(a_path)
            bytes_vh += os.path.getsize(b_path)
    print(json.dumps({"files": files, "bytes_pil": bytes_pil, "bytes_other": bytes_vh,
                      "mad": round(colour / max(files, 1), 3),
                      "mad_alpha": round(alpha / with_alpha, 3) if with_alpha else None}))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "icons":
        icons(args[0], int(args[1]), int(args[2]))
    elif cmd == "cifar":
        cifar(args[0], args[1], int(args[2]), int(args[3]))
    elif cmd == "gray16":
        gray16(args[0], args[1], int(args[2]), int(args[3]))
    elif cmd == "exif":
        exif(args[0], args[1], int(args[2]))
    elif cmd == "compare":
        compare(args[0], args[1], args[2] if len(args) > 2 else None)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
