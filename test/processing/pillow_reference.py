"""Writes Pillow reference data for test/processing/pillow-interop.test.ts into the folder argv[1].

resize/: random images of every mode resized with every filter (raw uint8 in/out, P as RGB);
composite: RGBA over white as transformers' Idefics3 convert_to_rgb does it; decode/: PNG, GIF,
BMP and JPEG files of several kinds with the sha256 of what Pillow decodes (after exif_transpose).
"""
import hashlib
import io
import json
import os
import sys

import numpy as np
from PIL import Image, ImageOps

out_dir = sys.argv[1]
n_resize = int(sys.argv[2]) if len(sys.argv) > 2 else 200
rng = np.random.default_rng(1234)
CH = {"L": 1, "RGB": 3, "RGBA": 4, "LA": 2, "P": 1}


def sha(a):
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


resize_cases = []
for i in range(n_resize):
    mode = ["L", "RGB", "RGBA", "LA", "P"][i % 5]
    w, h = int(rng.integers(1, 160)), int(rng.integers(1, 160))
    kind = int(rng.integers(0, 3))
    if kind == 0:
        W, H = int(rng.integers(1, 400)), int(rng.integers(1, 400))
    elif kind == 1:
        W, H = max(1, w // int(rng.integers(1, 9))), max(1, h // int(rng.integers(1, 9)))
    else:
        W, H = w * int(rng.integers(1, 5)), h
    f = int(rng.integers(0, 6))
    arr = rng.integers(0, 256, size=(h, w, CH[mode]), dtype=np.uint8)
    if mode in ("RGBA", "LA"):
        a = arr[..., -1]
        a[a < 60] = 0
        a[a > 200] = 255
    if mode == "P":
        im = Image.fromarray(arr[..., 0], "P")
        im.putpalette(list(rng.integers(0, 256, 768, dtype=np.uint8)))
        src, res = np.array(im.convert("RGB")), np.array(im.resize((W, H), f).convert("RGB"))
    else:
        im = Image.fromarray(arr if CH[mode] > 1 else arr[..., 0], mode)
        src, res = arr, np.array(im.resize((W, H), f))
    src.tofile(os.path.join(out_dir, f"resize{i}.in"))
    res.tofile(os.path.join(out_dir, f"resize{i}.out"))
    resize_cases.append(dict(i=i, mode=mode, w=w, h=h, W=W, H=H, filter=f))

rgba = rng.integers(0, 256, size=(64, 64, 4), dtype=np.uint8)
white = Image.new("RGBA", (64, 64), (255, 255, 255))
rgba.tofile(os.path.join(out_dir, "composite.in"))
np.array(Image.alpha_composite(white, Image.fromarray(rgba, "RGBA")).convert("RGB")).tofile(os.path.join(out_dir, "composite.out"))

decode_cases = []


def save(name, im, fmt, **kw):
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    with open(os.path.join(out_dir, name), "wb") as f:
        f.write(buf.getvalue())
    dec = ImageOps.exif_transpose(Image.open(io.BytesIO(buf.getvalue())))
    decode_cases.append(dict(name=name, mode=dec.mode, size=list(dec.size), rgb_sha256=sha(np.array(dec.convert("RGB")))))


a = rng.integers(0, 256, size=(37, 53, 4), dtype=np.uint8)
p = Image.fromarray(a[..., 0] % 16, "P")
p.putpalette(list(rng.integers(0, 256, 48, dtype=np.uint8)))
save("rgba.png", Image.fromarray(a, "RGBA"), "PNG")
save("la.png", Image.fromarray(a[..., :2], "LA"), "PNG")
save("l.png", Image.fromarray(a[..., 0], "L"), "PNG")
save("p.png", p, "PNG")
save("p_trns.png", p, "PNG", transparency=3)
save("l4.png", Image.fromarray(a[..., 0] // 16 * 17, "L"), "PNG", bits=4)
save("p.gif", p, "GIF")
save("p_trns.gif", p, "GIF", transparency=3)
save("rgb.bmp", Image.fromarray(a[..., :3], "RGB"), "BMP")
save("p.bmp", p, "BMP")
photo = Image.open(sys.argv[3]).convert("RGB") if len(sys.argv) > 3 else Image.fromarray(a[..., :3], "RGB")
for name, kw, mode in [
    ("q90_420.jpg", dict(quality=90, subsampling=2), "RGB"),
    ("q95_444.jpg", dict(quality=95, subsampling=0), "RGB"),
    ("q75_422.jpg", dict(quality=75, subsampling=1), "RGB"),
    ("progressive.jpg", dict(quality=85, progressive=True), "RGB"),
    ("optimized.jpg", dict(quality=60, optimize=True), "RGB"),
    ("gray.jpg", dict(quality=88), "L"),
]:
    save(name, photo.convert(mode), "JPEG", **kw)
save("odd_size.jpg", photo.crop((0, 0, 333, 217)), "JPEG", quality=80)
for o in (2, 3, 4, 5, 6, 7, 8):
    blocks = Image.fromarray(np.repeat(np.repeat(a[:4, :6, :3], 8, 0), 8, 1), "RGB")
    exif = Image.Exif()
    exif[0x0112] = o
    save(f"exif{o}.jpg", blocks, "JPEG", quality=90, exif=exif.tobytes())
    save(f"exif{o}.png", blocks, "PNG", exif=exif.tobytes())

with open(os.path.join(out_dir, "manifest.json"), "w") as f:
    json.dump(dict(pillow=Image.__version__, resize=resize_cases, decode=decode_cases), f)
