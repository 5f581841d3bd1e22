"""Generate the bundled sample data set (resources/sample/<class>/NNN.jpg) deterministically.

Large, high-contrast shapes of random colour, size, position and rotation on mildly textured backgrounds, so a
small network learns them from scratch on a CPU in minutes. Run: python resources/make_sample.py [--out DIR]
"""

from __future__ import annotations

import argparse
import colorsys
import math
import random
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

CLASSES = ("circle", "square", "star", "triangle")
SIZE = 64
SUPER = 4  # draw at 4x and downscale for smooth edges
PER_CLASS = 150
SEED = 20240611
QUALITY = 82


def _colour_pair(rng: random.Random) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """Background and shape colours with a large difference in lightness (either way round)."""
    dark_l, light_l = rng.uniform(0.12, 0.32), rng.uniform(0.68, 0.9)
    h1, h2 = rng.random(), rng.random()
    s1, s2 = rng.uniform(0.0, 0.8), rng.uniform(0.3, 1.0)
    bg_l, fg_l = (dark_l, light_l) if rng.random() < 0.5 else (light_l, dark_l)

    def rgb(h: float, lum: float, s: float) -> tuple[int, int, int]:
        r, g, b = colorsys.hls_to_rgb(h, lum, s)
        return int(r * 255), int(g * 255), int(b * 255)

    return rgb(h1, bg_l, s1), rgb(h2, fg_l, s2)


def _background(rng: random.Random, nrng: np.random.Generator, colour: tuple[int, int, int]) -> Image.Image:
    """A flat colour with a soft gradient and a little low-frequency texture."""
    n = SIZE * SUPER
    yy, xx = np.mgrid[0:n, 0:n] / n
    angle = rng.uniform(0, 2 * math.pi)
    grad = (np.cos(angle) * xx + np.sin(angle) * yy - 0.5) * rng.uniform(0, 40)
    blobs = nrng.normal(0, 1, (8, 8))
    texture = (
        np.asarray(
            Image.fromarray(((blobs - blobs.min()) / (np.ptp(blobs) + 1e-9) * 255).astype(np.uint8)).resize(
                (n, n), Image.Resampling.BICUBIC
            ),
            dtype=np.float64,
        )
        / 255
        - 0.5
    )
    tex = texture * rng.uniform(0, 24)
    base = np.array(colour, dtype=np.float64)[None, None, :] + (grad + tex)[:, :, None]
    return Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))


def _polygon(kind: str, cx: float, cy: float, r: float, rot: float) -> list[tuple[float, float]]:
    if kind == "square":
        pts = [
            (r * math.cos(rot + k * math.pi / 2 + math.pi / 4), r * math.sin(rot + k * math.pi / 2 + math.pi / 4))
            for k in range(4)
        ]
    elif kind == "triangle":
        pts = [(r * math.cos(rot + k * 2 * math.pi / 3), r * math.sin(rot + k * 2 * math.pi / 3)) for k in range(3)]
    else:  # star: five points, inner radius 0.45 r
        pts = [
            (
                (r if k % 2 == 0 else 0.45 * r) * math.cos(rot + k * math.pi / 5),
                (r if k % 2 == 0 else 0.45 * r) * math.sin(rot + k * math.pi / 5),
            )
            for k in range(10)
        ]
    return [(cx + x, cy + y) for x, y in pts]


def make_image(kind: str, rng: random.Random, nrng: np.random.Generator) -> Image.Image:
    bg, fg = _colour_pair(rng)
    img = _background(rng, nrng, bg)
    n = SIZE * SUPER
    extent = rng.uniform(0.45, 0.8) * n  # the shape's size: 45-80 % of the image
    r = extent / 2 * {"circle": 1.0, "square": 1.25, "triangle": 1.2, "star": 1.15}[kind]  # similar visual size
    margin = min(r * 1.02, n / 2)
    cx = rng.uniform(margin, n - margin)
    cy = rng.uniform(margin, n - margin)
    draw = ImageDraw.Draw(img)
    if kind == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fg)
    else:
        draw.polygon(_polygon(kind, cx, cy, r, rng.uniform(0, 2 * math.pi)), fill=fg)
    img = img.resize((SIZE, SIZE), Image.Resampling.LANCZOS)
    if rng.random() < 0.3:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.8)))
    noise = nrng.normal(0, rng.uniform(2, 6), (SIZE, SIZE, 1))
    arr = np.asarray(img, dtype=np.float64) + noise
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def generate(out: Path, per_class: int = PER_CLASS, seed: int = SEED) -> int:
    """Write per_class images for each class into out/<class>/NNN.jpg (replacing what is there); return bytes."""
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    total = 0
    for ci, kind in enumerate(CLASSES):
        rng = random.Random(seed * 31 + ci)
        nrng = np.random.default_rng(seed * 31 + ci)
        folder = tmp / kind
        folder.mkdir(parents=True)
        for i in range(per_class):
            path = folder / f"{i:03d}.jpg"
            make_image(kind, rng, nrng).save(path, "JPEG", quality=QUALITY, optimize=True)
            total += path.stat().st_size
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return total


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "sample")
    p.add_argument("--per-class", type=int, default=PER_CLASS)
    p.add_argument("--seed", type=int, default=SEED)
    args = p.parse_args(argv)
    total = generate(args.out, args.per_class, args.seed)
    print(f"wrote {args.per_class * len(CLASSES)} images ({total / 1e6:.2f} MB) to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
