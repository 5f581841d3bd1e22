"""Benchmark: how fast core.data.scan verifies a folder of photo-sized JPEGs (and how fast the cache fills).

Run: python benchmarks/bench_scan.py [--n 500] [--workers W]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.config import DataConfig  # noqa: E402
from core.data import default_workers, make_loader, scan  # noqa: E402

TARGET = 400.0  # verified images per second on 2 cores


def photo_like(rng: np.random.Generator, w: int = 500, h: int = 375) -> Image.Image:
    """Smooth colour fields, a gradient and sensor-like noise: compresses like a photo (~30-60 KB)."""
    low = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    base = np.asarray(Image.fromarray(low).resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32)
    detail = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    base += (np.asarray(Image.fromarray(detail).resize((w, h), Image.Resampling.BILINEAR), np.float32) - 128) * 0.25
    base += rng.normal(0, 6, (h, w, 1)).astype(np.float32)
    return Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))


def make_images(root: Path, n: int, classes: int = 4) -> int:
    rng = np.random.default_rng(0)
    total = 0
    for i in range(n):
        folder = root / f"class{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{i:05d}.jpg"
        photo_like(rng).save(path, "JPEG", quality=88)
        total += path.stat().st_size
    return total


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--workers", type=int, default=None, help=f"scan threads (default {default_workers()})")
    p.add_argument("--repeat", type=int, default=3, help="best of this many timed scans")
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench_scan_") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        size = make_images(root, args.n)
        print(
            f"generated {args.n} JPEGs 500x375 ({size / args.n / 1024:.0f} KB each) in "
            f"{time.perf_counter() - t0:.1f} s; {os.cpu_count()} CPU cores",
            file=sys.stderr,
        )
        scan(root, workers=args.workers)  # warm the page cache so the timing measures decoding, not the disk

        rows = []
        for label, workers in (
            ("scan (1 thread)", 1),
            (f"scan ({args.workers or default_workers()} threads)", args.workers),
        ):
            best = float("inf")
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                idx = scan(root, workers=workers)
                best = min(best, time.perf_counter() - t0)
            assert len(idx.samples) == args.n, idx.bad_files[:3]
            rows.append((label, args.n, best))

        import torch  # noqa: F401 - imported before timing the cache fill

        ids = list(range(len(idx.samples)))
        for size_px in (64, 224):
            cfg = DataConfig(image_size=size_px, cache="memory", cache_budget_mb=4096)
            t0 = time.perf_counter()
            loader = make_loader(idx, ids, cfg, batch_size=64, shuffle=False, seed=0, device="cpu")
            rows.append((f"cache fill {size_px}px ({loader.mode})", args.n, time.perf_counter() - t0))

    print(f"{'step':<26} {'images':>7} {'seconds':>8} {'images/s':>9}")
    for label, n, sec in rows:
        print(f"{label:<26} {n:>7} {sec:>8.2f} {n / sec:>9.0f}")
    rate = rows[1][1] / rows[1][2]
    verdict = "meets" if rate >= TARGET else "BELOW"
    print(f"scan verified {rate:.0f} images/s — {verdict} the target of {TARGET:.0f}/s on 2 cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
