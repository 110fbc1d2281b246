#!/usr/bin/python3
"""The work `convoy convert images DIR --size H,W --channels 3` does, in Python with Pillow and
h5py (Debian's python3-pil, python3-h5py): list the class folders' images in sorted order,
decode each (optionally with draft(), Pillow's DCT-domain shrink), convert to RGB, resize with
Image.BILINEAR, and write /x uint8 (N,H,W,3) and /y to an HDF5 file. With --processes P the
images are decoded by a pool of P processes, in order. Prints images/s (listing to file closed).

usage: launch/pillow_convert.py DIR OUT.h5 --size H,W [--draft] [--processes P]"""
import argparse
import os
import time
from multiprocessing import Pool

import h5py
import numpy as np
from PIL import Image

p = argparse.ArgumentParser()
p.add_argument("dir")
p.add_argument("out")
p.add_argument("--size", required=True)
p.add_argument("--draft", action="store_true")
p.add_argument("--processes", type=int, default=1)
a = p.parse_args()
H, W = (int(v) for v in a.size.split(","))


def load(path):
    im = Image.open(path)
    if a.draft:
        im.draft("RGB", (W, H))
    return np.asarray(im.convert("RGB").resize((W, H), Image.BILINEAR))


t0 = time.perf_counter()
classes = sorted(e for e in os.listdir(a.dir) if os.path.isdir(os.path.join(a.dir, e)))
files, labels = [], []
for k, c in enumerate(classes):
    names = sorted(n for n in os.listdir(os.path.join(a.dir, c)) if n.lower().endswith((".jpg", ".jpeg", ".png")))
    files += [os.path.join(a.dir, c, n) for n in names]
    labels += [k] * len(names)
x = np.empty((len(files), H, W, 3), np.uint8)
if a.processes > 1:
    with Pool(a.processes) as pool:
        for i, img in enumerate(pool.imap(load, files, chunksize=32)):
            x[i] = img
else:
    for i, f in enumerate(files):
        x[i] = load(f)
with h5py.File(a.out, "w") as f:
    f["x"] = x
    f["y"] = np.array(labels, np.int32)
    f.attrs["classes"] = classes
dt = time.perf_counter() - t0
print(f"pillow: {len(files)} images in {dt:.2f} s, {len(files) / dt:.0f} images/s ({a.processes} process{'es' if a.processes > 1 else ''}{', draft' if a.draft else ''})")
