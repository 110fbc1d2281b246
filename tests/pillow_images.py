"""Outside check of `convoy convert images` against Pillow (Debian's python3-pil):
   pillow_images.py make DIR      writes a folder of class folders with every kind of PNG and JPEG
   pillow_images.py check F.h5 DIR [draft]
                                  decodes DIR's files with Pillow as Keras's load_img does
                                  (convert to the file's channels, resize with Image.BILINEAR;
                                  draft() first with `draft`) and compares with F.h5's /x and /y;
                                  exits 1 on any difference."""
import os
import sys

import h5py
import numpy as np
from PIL import Image


def make(d):
    rng = np.random.default_rng(1)

    def ramp(h, w, c):
        x = np.linspace(0, 255, w)[None, :, None] * np.ones((h, 1, c)) * 0.5 + rng.integers(0, 128, (h, w, c))
        return x.clip(0, 255).astype(np.uint8)
    for sub in ("cat", "dog/sub"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    Image.fromarray(ramp(40, 50, 3)).save(f"{d}/cat/a_rgb.png")
    Image.fromarray(ramp(37, 23, 1)[:, :, 0], "L").save(f"{d}/cat/b_grey.png")
    Image.fromarray(ramp(30, 30, 4), "RGBA").save(f"{d}/cat/c_rgba.png")
    Image.fromarray(ramp(41, 33, 3)).convert("P", palette=Image.ADAPTIVE).save(f"{d}/cat/d_palette.png")
    g16 = ramp(20, 20, 1)[:, :, 0].astype(np.uint16) * 257 + 3
    Image.fromarray(g16, "I;16").save(f"{d}/dog/e_16bit.png")
    Image.fromarray(ramp(64, 48, 3)).save(f"{d}/dog/f_baseline.jpg", quality=90)
    Image.fromarray(ramp(35, 35, 1)[:, :, 0], "L").save(f"{d}/dog/h_grey.jpg")
    Image.fromarray(ramp(16, 12, 4), "CMYK").save(f"{d}/dog/i_cmyk.jpg")
    Image.fromarray(ramp(64, 48, 3)).save(f"{d}/dog/sub/g_progressive.JPEG", quality=80, progressive=True)
    # Keras's order is by folder path, then name: dog/sub, dog/sub-x, dog/sub/deeper ('-' < '/')
    for sub in ("dog/sub-x", "dog/sub/deeper"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
        Image.fromarray(ramp(20, 20, 3)).save(f"{d}/{sub}/j.png")
    with open(f"{d}/dog/notes.txt", "w") as f:
        f.write("not an image\n")


def files_of(d):
    out = []
    for label, cls in enumerate(sorted(e for e in os.listdir(d) if os.path.isdir(os.path.join(d, e)))):
        rows = []
        for root, _, names in os.walk(os.path.join(d, cls)):
            rows += [(root, n) for n in names if n.lower().endswith((".png", ".jpg", ".jpeg", ".jpe"))]
        out += [(os.path.join(r, n), label) for r, n in sorted(rows)]
    return out


def check(h5, d, draft):
    f = h5py.File(h5, "r")
    n, h, w, c = f["x"].shape
    files = files_of(d)
    bad = 0
    if n != len(files):
        print(f"{h5}: {n} images, Pillow finds {len(files)}")
        return 1
    for i, (path, label) in enumerate(files):
        im = Image.open(path)
        if draft and im.format == "JPEG":
            im.draft(im.mode, (w, h))
        if im.mode in ("I", "I;16"):  # 16-bit grey: convoy keeps the high byte (Pillow's convert would clip)
            im = Image.fromarray((np.array(im) >> 8).astype(np.uint8), "L")
        want = np.array(im.convert("RGB" if c == 3 else "L").resize((w, h), Image.BILINEAR)).reshape(h, w, c)
        diff = int(np.abs(want.astype(int) - f["x"][i]).max())
        if diff or f["y"][i] != label:
            print(f"{path}: max |convoy - Pillow| = {diff}, label {f['y'][i]} (want {label})")
            bad += 1
    print(f"{h5}: {n} images of {h}x{w}x{c}, {bad} differ from Pillow {Image.__version__}")
    return 1 if bad else 0


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
    else:
        sys.exit(check(sys.argv[2], sys.argv[3], len(sys.argv) > 4))
