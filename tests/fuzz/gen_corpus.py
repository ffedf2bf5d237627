#!/usr/bin/python3
"""Writes the seed corpora of fuzz_nfsurl, fuzz_exif and fuzz_kernels under corpus/.

Every input is made here (Pillow for the pictures, struct for the TIFF data), so the
corpora carry no third-party files. Run from anywhere: /usr/bin/python3 gen_corpus.py
(Debian's python3-pil). Inputs that libFuzzer finds worth keeping go next to these."""
import io
import os
import struct

from PIL import Image

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, name, data):
    os.makedirs(os.path.join(HERE, target), exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(HERE, target, name), "wb") as f:
        f.write(data)


URLS = {
    "v3": "nfs://server/export/images",
    "v4": "nfs://server.example.com/export?version=4",
    "port": "nfs://10.0.0.7:20490/data/raw?version=3&mountport=20491",
    "ipv6": "nfs://[fe80::1]/exp",
    "ids": "nfs://h/a/b?uid=1000&gid=1000",
    "root": "nfs://h/",
    "trailing": "nfs://h/a/b/",
    "dotdot": "nfs://h/a/../b",
    "dup_key": "nfs://h/a?version=3&version=4",
    "both_ports": "nfs://h:2049/a?nfsport=2049",
    "bad_version": "nfs://h/a?version=5",
    "percent": "nfs://h/a%20b",
    "empty": "",
    "no_path": "nfs://host",
    "big_port": "nfs://h:65536/a",
    "uid_max": "nfs://h/a?uid=4294967295",
}


def tiff(order, entries, ifd_off=8):
    e = "<" if order == "II" else ">"
    b = order.encode() + struct.pack(e + "HI", 42, ifd_off) + b"\0" * (ifd_off - 8)
    b += struct.pack(e + "H", len(entries))
    for tag, typ, cnt, val in entries:
        if typ in (3, 8):
            b += struct.pack(e + "HHIHH", tag, typ, cnt, val, 0)
        else:
            b += struct.pack(e + "HHII", tag, typ, cnt, val)
    return b + struct.pack(e + "I", 0)


EXIF = {
    "le_short_6": tiff("II", [(0x112, 3, 1, 6)]),
    "be_short_8": tiff("MM", [(0x112, 3, 1, 8)]),
    "le_long_3": tiff("II", [(0x112, 4, 1, 3)]),
    "be_sshort_2": tiff("MM", [(0x112, 8, 1, 2)]),
    "out_of_range": tiff("II", [(0x112, 3, 1, 9)]),
    "first_wins": tiff("II", [(0x10F, 2, 4, 0x41414141), (0x112, 3, 1, 5), (0x112, 3, 1, 7)]),
    "ifd_offset_far": tiff("II", [(0x112, 3, 1, 6)], ifd_off=4000),
    "entry_cut": tiff("II", [(0x112, 3, 1, 6)])[:-6],
    "empty": b"",
    "header_only": b"II*\0",
    "bad_magic": b"II+\0\x08\0\0\0",
}


def grad(w, h, mode="RGB"):
    im = Image.new("RGB", (w, h))
    px = im.load()
    for y in range(h):
        for x in range(w):
            px[x, y] = ((x * 255) // max(w - 1, 1), (y * 255) // max(h - 1, 1), ((x ^ y) * 7) & 255)
    return im.convert(mode)


def enc(im, **kw):
    b = io.BytesIO()
    im.save(b, **kw)
    return b.getvalue()


def kernels():
    j = enc(grad(64, 48), format="JPEG", quality=80)
    ex = Image.Exif()
    ex[0x112] = 6
    z = bytearray(j)
    z[len(z) // 2 : len(z) // 2 + 40] = b"\0" * 40
    tall = bytearray(j)
    i = tall.find(b"\xff\xc0")
    tall[i + 5 : i + 7] = struct.pack(">H", 96)  # the header promises more rows
    png = enc(grad(30, 20), format="PNG")
    return {
        "jpeg_420": j,
        "jpeg_444": enc(grad(33, 17), format="JPEG", quality=95, subsampling=0),
        "jpeg_422": enc(grad(80, 60), format="JPEG", quality=75, subsampling=1),
        "jpeg_gray": enc(grad(40, 40, "L"), format="JPEG", quality=85),
        "jpeg_progressive": enc(grad(72, 50), format="JPEG", quality=80, progressive=True),
        "jpeg_1x1": enc(grad(1, 1), format="JPEG"),
        "jpeg_exif6": enc(grad(48, 32), format="JPEG", exif=ex.tobytes()),
        "jpeg_cut_half": j[: len(j) // 2],
        "jpeg_cut_half_eoi": j[: len(j) // 2] + b"\xff\xd9",
        "jpeg_zeroed": bytes(z),
        "jpeg_tall_header": bytes(tall),
        "png_rgb": png,
        "png_rgba": enc(grad(25, 25, "RGBA"), format="PNG"),
        "png_gray": enc(grad(20, 30, "L"), format="PNG"),
        "png_la": enc(grad(12, 12, "LA"), format="PNG"),
        "png_palette": enc(grad(16, 16).convert("P"), format="PNG"),
        "png_cut": png[: len(png) * 2 // 3],
    }


for name, url in URLS.items():
    put("nfsurl", name, url)
for name, data in EXIF.items():
    put("exif", name, data)
for name, data in kernels().items():
    put("kernels", name, data)
