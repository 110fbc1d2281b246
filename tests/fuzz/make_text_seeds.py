"""Writes the seeds of the CSV, PNG and JPEG fuzz harnesses (make_seeds.c writes the HDF5 ones and
the CMYK/YCCK JPEGs, which cjpeg cannot make):
   python3 tests/fuzz/make_text_seeds.py tests/fuzz
CSV files by hand (every accepted spelling and each refusal); PNGs chunk by chunk with zlib (every
colour type and bit depth, palettes, tRNS, Adam7, split IDATs, ancillary chunks); JPEGs with
cjpeg/jpegtran (Debian's libjpeg-turbo-progs): baseline, progressive, arithmetic, restart
markers, subsamplings, grey. Small images, so the corpora stay a few KB."""
import os
import random
import struct
import subprocess
import sys
import zlib

CSV = {
    "basic.csv": "a,b,label\n1,2,0\n3,4,1\n5,6,2\n",
    "label-first-crlf.csv": "label,x1,x2,x3\r\n0,0.5,-1e-3,2E+2\r\n1,.5,-0,7\r\n",
    "bom-quoted-blanks.csv": "\ufeff\"x\", \"label\" ,\t\"z\"\n\n 1.5 ,\"0\", 2\n\n  \n-3,1,4.25e-7\n",
    "float-targets.csv": "f,label\n1,0.25\n2,-1.5\n3,1e30\n",
    "index-label.csv": "0,1,2\n9,8,7\n6,5,4\n",
    "big-label.csv": "x,label\n1,3000000000\n2,1\n",
    "negative-label.csv": "x,label\n1,-1\n2,1\n",
    "mixed-label.csv": "x,label\n1,-1\n2,0.5\n3,4000000000\n",
    "bad-number.csv": "x,label\n1,0\nnan,1\n",
    "short-row.csv": "x,y,label\n1,2,0\n3,1\n",
    "header-only.csv": "x,label\n\n",
    "only-label.csv": "label\n1\n2\n",
    "no-label-column.csv": "p,q,r\n1,2,3\n",
    "wide-values.csv": "a,b,c,d,label\n3.4e38,-3.4e38,1e-45,0x1p4,7\n1,2,3,4,2147483647\n",
    "empty.csv": "",
}


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def scanlines(rnd, w, h, bits_per_px):
    """h rows of a random filter type (0-4; any bytes after it are valid) and random samples."""
    rowbytes = (w * bits_per_px + 7) // 8
    return b"".join(bytes([rnd.randrange(5)]) + bytes(rnd.randrange(256) for _ in range(rowbytes)) for _ in range(h))


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def png(rnd, w, h, depth, ctype, interlace=0, extra=b"", split=1, plte=0, trns=b""):
    chans = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[ctype]
    bpp = depth * chans
    if interlace:
        raw = b""
        for x0, y0, dx, dy in ADAM7:
            pw, ph = (w - x0 + dx - 1) // dx, (h - y0 + dy - 1) // dy
            if pw > 0 and ph > 0:
                raw += scanlines(rnd, pw, ph, bpp)
    else:
        raw = scanlines(rnd, w, h, bpp)
    z = zlib.compress(raw, 9)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, interlace))
    out += extra
    if plte:
        out += chunk(b"PLTE", bytes(rnd.randrange(256) for _ in range(3 * plte)))
    if trns:
        out += chunk(b"tRNS", trns)
    step = (len(z) + split - 1) // split
    for i in range(0, len(z), step):
        out += chunk(b"IDAT", z[i:i + step])
    return out + chunk(b"IEND", b"")


def pngs(rnd):
    ancillary = (chunk(b"gAMA", struct.pack(">I", 45455)) + chunk(b"sRGB", b"\x00")
                 + chunk(b"cHRM", struct.pack(">8I", 31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000))
                 + chunk(b"sBIT", b"\x05\x06\x05") + chunk(b"pHYs", struct.pack(">IIB", 2835, 2835, 1))
                 + chunk(b"tEXt", b"Comment\x00fuzz seed") + chunk(b"zTXt", b"Title\x00\x00" + zlib.compress(b"seed"))
                 + chunk(b"iTXt", b"Author\x00\x00\x00en\x00Autor\x00convoy")
                 + chunk(b"tIME", struct.pack(">HBBBBB", 2026, 1, 2, 3, 4, 5)) + chunk(b"bKGD", b"\x00\x01\x00\x02\x00\x03"))
    return {
        "grey1.png": png(rnd, 9, 3, 1, 0),
        "grey2.png": png(rnd, 5, 2, 2, 0),
        "grey4-trns.png": png(rnd, 3, 3, 4, 0, trns=b"\x00\x05"),
        "grey8.png": png(rnd, 4, 4, 8, 0),
        "grey16.png": png(rnd, 3, 2, 16, 0),
        "grey-alpha8.png": png(rnd, 3, 3, 8, 4),
        "grey-alpha16.png": png(rnd, 2, 2, 16, 4),
        "rgb8-ancillary.png": png(rnd, 4, 3, 8, 2, extra=ancillary),
        "rgb16-trns.png": png(rnd, 3, 2, 16, 2, trns=b"\x00\x01\x00\x02\x00\x03"),
        "rgba8.png": png(rnd, 3, 3, 8, 6),
        "rgba16.png": png(rnd, 2, 2, 16, 6),
        "palette1.png": png(rnd, 10, 2, 1, 3, plte=2),
        "palette2-trns.png": png(rnd, 5, 3, 2, 3, plte=4, trns=b"\x00\x80"),
        "palette4.png": png(rnd, 5, 2, 4, 3, plte=16),
        "palette8-trns.png": png(rnd, 4, 4, 8, 3, plte=256, trns=bytes(range(0, 256, 32))),
        "adam7-rgb8.png": png(rnd, 7, 5, 8, 2, interlace=1),
        "adam7-grey1.png": png(rnd, 11, 9, 1, 0, interlace=1),
        "split-idat-1x1.png": png(rnd, 1, 1, 8, 6, split=3),
    }


def jpegs(outdir):
    """cjpeg from small PPM/PGM ramps with noise; returns nothing (writes the files)."""
    rnd = random.Random(2)
    tmp = os.path.join(outdir, "ramp.ppm")

    def ramp(path, w, h, grey):
        c = 1 if grey else 3
        px = bytes(min(255, (x * 255 // max(1, w - 1) + rnd.randrange(40)) // (1 + ch))
                   for y in range(h) for x in range(w) for ch in range(c))
        with open(path, "wb") as f:
            f.write(b"P%d\n%d %d\n255\n" % (5 if grey else 6, w, h) + px)

    cases = {
        "baseline-420.jpg": (8, 8, False, ["-quality", "75"]),
        "baseline-444.jpg": (8, 8, False, ["-sample", "1x1"]),
        "baseline-422-odd.jpg": (13, 7, False, ["-sample", "2x1", "-quality", "95"]),
        "grey.jpg": (8, 8, True, []),
        "progressive.jpg": (16, 8, False, ["-progressive"]),
        "progressive-grey.jpg": (8, 8, True, ["-progressive"]),
        "arithmetic.jpg": (8, 8, False, ["-arithmetic"]),
        "arithmetic-progressive.jpg": (8, 16, False, ["-arithmetic", "-progressive"]),
        "restart.jpg": (16, 16, False, ["-restart", "1B", "-quality", "30"]),
        "optimize-q100.jpg": (8, 8, False, ["-optimize", "-quality", "100", "-dct", "float"]),
        "q1-smooth.jpg": (9, 9, False, ["-quality", "1", "-smooth", "50"]),
        "tiny-1x1.jpg": (1, 1, False, []),
    }
    for name, (w, h, grey, opts) in cases.items():
        ramp(tmp, w, h, grey)
        with open(os.path.join(outdir, name), "wb") as f:
            subprocess.run(["cjpeg", *opts, tmp], stdout=f, check=True)
    os.remove(tmp)


def main(srcdir):
    for name, text in CSV.items():
        with open(os.path.join(srcdir, "seeds-csv", name), "w", encoding="utf-8", newline="") as f:
            f.write(text)
    rnd = random.Random(1)
    for name, data in pngs(rnd).items():
        with open(os.path.join(srcdir, "seeds-png", name), "wb") as f:
            f.write(data)
    jpegs(os.path.join(srcdir, "seeds-jpeg"))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/fuzz")
