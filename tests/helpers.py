"""Small builders shared by the test modules (tiny data sets that a tiny model learns in seconds)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

COLOURS = [(220, 40, 40), (40, 200, 40), (40, 40, 220)]
# `main.py train` flags for a run of a few seconds on the CPU
TINY_TRAIN_ARGS = [
    "--arch",
    "resnext11_2x4d",
    "--image-size",
    "16",
    "--batch-size",
    "4",
    "--device",
    "cpu",
    "--num-workers",
    "0",
    "--no-augment",
    "--lr",
    "0.01",
]


def make_colour_set(root: Path, per_class: int = 8, size: int = 16) -> Path:
    """Three classes (c0, c1, c2) of noisy red, green and blue PNGs; deterministic."""
    rng = np.random.default_rng(0)
    for c, col in enumerate(COLOURS):
        d = root / f"c{c}"
        d.mkdir(parents=True)
        for i in range(per_class):
            a = np.clip(np.array(col)[None, None] + rng.normal(0, 30, (size, size, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(a).save(d / f"{i:02d}.png")
    return root
