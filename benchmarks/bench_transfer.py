"""Transfer-learning speed and accuracy: linear (cached features) vs finetune vs scratch on generated data.

    python benchmarks/bench_transfer.py              # epoch wall time per mode, one run, with ratios
    python benchmarks/bench_transfer.py --compare    # the docs/transfer.md experiment (~10-15 min on 2 cores)

Everything is generated locally (no network, no ImageNet weights): --compare first pretrains a backbone on a
*source* task of procedural textures, then trains on a *different* target task of photo-like scenes.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from core import data, models  # noqa: E402
from core.config import RunConfig  # noqa: E402
from core.engine import Callback, StopToken, Trainer  # noqa: E402

# ------------------------------------------------------------------------------------------------ generated data

SOURCE_PATTERNS = ("stripes", "checker", "dots", "rings", "zigzag")
TARGET_CLASSES = ("sunset", "forest", "sea", "snowfield", "night_city", "desert", "fruit", "brick_wall")


def _grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) / n
    return xx, yy


def source_image(cls: int, rng: np.random.Generator, n: int = 40) -> np.ndarray:
    """20 texture classes: pattern (5) × frequency (2) × orientation (2); colours random, so only structure counts."""
    pattern, freq, orient = SOURCE_PATTERNS[cls // 4], (3, 7)[(cls // 2) % 2], (0.0, math.pi / 4)[cls % 2]
    xx, yy = _grid(n)
    a = orient + rng.normal(0, 0.08)
    u = xx * math.cos(a) + yy * math.sin(a)
    v = -xx * math.sin(a) + yy * math.cos(a)
    f = freq * rng.uniform(0.85, 1.15)
    ph = rng.uniform(0, 2 * math.pi)
    if pattern == "stripes":
        m = np.sin(2 * math.pi * f * u + ph) > 0
    elif pattern == "checker":
        m = (np.sin(2 * math.pi * f * u + ph) > 0) ^ (np.sin(2 * math.pi * f * v + ph) > 0)
    elif pattern == "dots":
        m = np.sin(2 * math.pi * f * u + ph) * np.sin(2 * math.pi * f * v + ph) > 0.5
    elif pattern == "rings":
        cx, cy = rng.uniform(0.3, 0.7, 2)
        m = np.sin(2 * math.pi * f * np.hypot(xx - cx, yy - cy) + ph) > 0
    else:
        m = np.sin(2 * math.pi * f * u + 0.8 * np.sin(2 * math.pi * f * v) + ph) > 0
    c1, c2 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    img = np.where(m[..., None], c1, c2) + rng.normal(0, 12, (n, n, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _smooth_noise(rng: np.random.Generator, n: int, scale: int) -> np.ndarray:
    small = rng.uniform(0, 1, (scale, scale)).astype(np.float32)
    return np.asarray(Image.fromarray((small * 255).astype(np.uint8)).resize((n, n), Image.BICUBIC), np.float32) / 255


def target_image(cls: int, rng: np.random.Generator, n: int = 48) -> np.ndarray:
    """8 photo-like scene classes with random lighting, tint, blur and noise."""
    xx, yy = _grid(n)
    name = TARGET_CLASSES[cls]
    img = np.zeros((n, n, 3), np.float32)
    horizon = rng.uniform(0.45, 0.75)
    if name == "sunset":
        top, bottom = np.array([90, 40, 120]), np.array([250, 140, 40])
        img[:] = top + (bottom - top) * yy[..., None]
        cx, cy, r = rng.uniform(0.2, 0.8), horizon - rng.uniform(0.05, 0.15), rng.uniform(0.08, 0.15)
        img[np.hypot(xx - cx, yy - cy) < r] = (255, 220, 120)
        img[yy > horizon] = (30, 20, 30)
    elif name == "forest":
        g = _smooth_noise(rng, n, 6)
        img[:] = np.stack([40 + 60 * g, 90 + 100 * g, 30 + 40 * g], -1)
        for x0 in rng.uniform(0, 1, rng.integers(3, 7)):
            img[np.abs(xx - x0) < 0.025] = (70, 45, 25)
    elif name == "sea":
        img[:] = (150, 190, 235)
        waves = 0.5 + 0.5 * np.sin(2 * math.pi * (rng.uniform(6, 10) * yy + 0.3 * np.sin(8 * xx + rng.uniform(0, 6))))
        sea = np.stack([20 + 30 * waves, 70 + 60 * waves, 140 + 60 * waves], -1)
        img = np.where((yy > horizon)[..., None], sea, img)
    elif name == "snowfield":
        g = _smooth_noise(rng, n, 4)
        img[:] = (235 - 40 * g)[..., None] + np.array([0, 3, 12])
        img = np.where((yy < horizon - 0.2)[..., None], np.array([170, 200, 240]), img)
    elif name == "night_city":
        img[:] = (10, 12, 30)
        for _ in range(rng.integers(3, 6)):
            x0, w, h = rng.uniform(0, 0.85), rng.uniform(0.1, 0.25), rng.uniform(0.3, 0.8)
            b = (xx > x0) & (xx < x0 + w) & (yy > 1 - h)
            img[b] = (35, 35, 45)
            lit = (
                b
                & (np.sin(2 * math.pi * 14 * xx) > 0.3)
                & (np.sin(2 * math.pi * 14 * yy) > 0.3)
                & (rng.uniform(0, 1, (n, n)) > 0.4)
            )
            img[lit] = (250, 220, 120)
    elif name == "desert":
        dunes = 0.5 + 0.5 * np.sin(2 * math.pi * (rng.uniform(1.5, 3) * xx + 2 * yy) + rng.uniform(0, 6))
        img[:] = np.stack([190 + 50 * dunes, 150 + 40 * dunes, 90 + 30 * dunes], -1)
        img = np.where((yy < horizon - 0.25)[..., None], np.array([120, 170, 230]), img)
    elif name == "fruit":
        wood = 0.5 + 0.5 * np.sin(2 * math.pi * 12 * yy + 2 * _smooth_noise(rng, n, 3))
        img[:] = np.stack([110 + 40 * wood, 70 + 25 * wood, 40 + 15 * wood], -1)
        cx, cy, r = rng.uniform(0.35, 0.65), rng.uniform(0.35, 0.65), rng.uniform(0.2, 0.32)
        d = np.hypot(xx - cx, yy - cy) / r
        colour = np.array([(230, 40, 30), (250, 150, 20), (240, 220, 40)][rng.integers(3)], np.float32)
        shade = np.clip(1.15 - 0.6 * np.hypot(xx - cx + 0.3 * r, yy - cy + 0.3 * r) / r, 0.3, 1.2)
        img = np.where((d < 1)[..., None], colour * shade[..., None], img)
    else:  # brick_wall
        rows = 6 + rng.integers(0, 4)
        row = np.floor(yy * rows)
        off = (row % 2) * 0.5 / 3
        mortar = (np.abs((yy * rows) % 1 - 0.5) > 0.42) | (np.abs(((xx + off) * 3) % 1 - 0.5) > 0.46)
        red = rng.uniform(140, 200)
        img[:] = np.stack([red + 0 * xx, 0.4 * red + 0 * xx, 0.3 * red + 0 * xx], -1)
        img[mortar] = (200, 195, 185)
    # camera: exposure, colour tint, sometimes desaturated, blur, sensor noise
    img = img * rng.uniform(0.6, 1.3) + rng.normal(0, 18, 3)
    if rng.uniform() < 0.3:
        img = 0.5 * img + 0.5 * img.mean(-1, keepdims=True)
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    pil = pil.filter(ImageFilter.GaussianBlur(rng.uniform(0, 1.2)))
    out = np.asarray(pil, np.float32) + rng.normal(0, 8, (n, n, 3))
    return np.clip(out, 0, 255).astype(np.uint8)


def write_set(root: Path, classes: tuple[str, ...] | int, per_class: int, make, seed: int) -> Path:
    names = [f"texture{c:02d}" for c in range(classes)] if isinstance(classes, int) else list(classes)
    rng = np.random.default_rng(seed)
    for c, name in enumerate(names):
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(make(c, rng)).save(d / f"{i:04d}.jpg", quality=88)
    return root


# ------------------------------------------------------------------------------------------------ runs


class Clock(Callback):
    """Wall time (from construction) at the end of each epoch."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.at: dict[int, float] = {}
        self.loader_mode = ""

    def on_fit_start(self, info) -> None:
        self.loader_mode = info.loader_mode

    def on_epoch_end(self, m) -> None:
        self.at[m.epoch] = time.perf_counter() - self.t0


def run(
    root: Path,
    arch: str,
    size: int,
    mode: str,
    epochs: int,
    lr: float,
    weights: Path | None,
    augment: str = "light",
    batch: int = 32,
) -> dict:
    cfg = RunConfig()
    cfg.data.root, cfg.data.image_size, cfg.data.augment, cfg.data.num_workers = str(root), size, augment, 0
    cfg.model.arch, cfg.model.mode = arch, mode
    cfg.model.pretrained = str(weights) if weights and mode != "scratch" else None
    cfg.train.epochs, cfg.train.batch_size, cfg.train.lr, cfg.train.device = epochs, batch, lr, "cpu"
    cfg.train.warmup_epochs = 0.5 if mode != "linear" else 0.0
    clock = Clock()
    result = Trainer(cfg, callbacks=[clock]).fit()
    if result.reason != "completed":
        raise SystemExit(f"{mode} run ended {result.reason}: {result.message}")
    hist = result.history
    best = max(hist, key=lambda h: (h["val_acc"], -h["val_loss"]))
    return {
        "mode": mode,
        "epoch_s": [h["seconds"] for h in hist],
        "best_acc": best["val_acc"],
        "best_epoch": best["epoch"],
        "time_to_best": clock.at[best["epoch"]],
        "total": clock.at[hist[-1]["epoch"]],
        "first_epoch_at": clock.at[hist[0]["epoch"]] - hist[0]["seconds"],
        "loader": clock.loader_mode,
        "run_dir": result.run_dir,
    }


def pretrain_source(work: Path, arch: str, size: int, minutes: float, classes: int, per_class: int) -> Path:
    """Train `arch` on the texture source task for about `minutes`; returns its state dict file."""
    root = write_set(work / "source", classes, per_class, source_image, seed=1)
    t0 = time.perf_counter()
    index = data.scan(root)
    cfg = RunConfig()
    cfg.data.root, cfg.data.image_size, cfg.data.augment, cfg.data.num_workers = str(root), size, "light", 0
    cfg.data.val_split = 0.1
    cfg.model.arch = arch
    cfg.train.batch_size, cfg.train.lr, cfg.train.device, cfg.train.warmup_epochs = 32, 3e-3, "cpu", 0.5
    # a time budget, not an epoch count: stop at the first epoch end where another epoch would overrun it
    cfg.train.epochs, cfg.train.scheduler = 100, "none"
    stop = StopToken()

    class Budget(Callback):
        def on_epoch_end(self, m) -> None:
            spent = time.perf_counter() - t0
            if spent + m.seconds > minutes * 60:
                stop.stop()

    r = Trainer(cfg, index=index, callbacks=[Budget()], stop=stop).fit()
    cfg.train.epochs = len(r.history)
    best = max(r.history, key=lambda h: h["val_acc"])
    print(
        f"source task: {classes} texture classes × {per_class}, {cfg.train.epochs} epochs, "
        f"val acc {best['val_acc']:.1%} (chance {1 / classes:.1%}), {time.perf_counter() - t0:.0f} s",
        flush=True,
    )
    ckpt = torch.load(Path(r.run_dir) / "best.pt", map_location="cpu", weights_only=True)
    out = work / f"{arch}-textures.pth"
    torch.save(ckpt["model"], out)
    return out


def _fmt(s: float) -> str:
    return f"{s:.1f} s" if s < 100 else f"{s / 60:.1f} min"


def bench_epochs(args: argparse.Namespace, work: Path) -> None:
    root = write_set(work / "target", TARGET_CLASSES[:4], args.per_class, target_image, seed=2)
    weights = work / "random.pth"
    torch.save(models.build(args.arch, 10).state_dict(), weights)
    # untimed: the first fit in a process pays one-off costs (allocator, kernels, thread pools) that made the
    # scratch epoch, measured first, look 5× slower than it is
    run(root, args.arch, args.image_size, "scratch", 1, 3e-3, weights)
    rows = []
    for mode in ("scratch", "finetune"):
        rows.append(run(root, args.arch, args.image_size, mode, 3, 3e-3, weights))
    first = run(root, args.arch, args.image_size, "linear", 3, 1e-2, weights)
    second = run(root, args.arch, args.image_size, "linear", 3, 1e-2, weights)
    scratch = float(np.median(rows[0]["epoch_s"]))
    print(
        f"\n{args.arch} at {args.image_size} px, {4 * args.per_class} images (80 % train), "
        f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'mode':<34} {'s / epoch (median)':>18} {'× faster than scratch':>22}")
    for label, r in (("scratch", rows[0]), ("finetune", rows[1]), ("linear (epochs on cached features)", second)):
        e = float(np.median(r["epoch_s"]))
        print(f"{label:<34} {e:>18.4f} {scratch / e:>22.1f}")
    print(f"linear, first run: feature pass + setup {first['first_epoch_at']:.1f} s ({first['loader']})")
    print(f"linear, second run: setup {second['first_epoch_at']:.2f} s ({second['loader']})")


def compare(args: argparse.Namespace, work: Path) -> None:
    t_all = time.perf_counter()
    loads = [os.getloadavg()[0]]
    weights = pretrain_source(work, args.arch, args.image_size, args.pretrain_minutes, 20, args.source_per_class)
    loads.append(os.getloadavg()[0])
    root = write_set(work / "target", TARGET_CLASSES, args.per_class, target_image, seed=2)
    results = []
    for mode, lr in (("scratch", 3e-3), ("finetune", 3e-3), ("linear", 1e-2)):
        results.append(run(root, args.arch, args.image_size, mode, args.epochs, lr, weights))
        loads.append(os.getloadavg()[0])
        print(
            f"{mode}: best val acc {results[-1]['best_acc']:.1%} at epoch {results[-1]['best_epoch']}, "
            f"{_fmt(results[-1]['time_to_best'])} to best",
            flush=True,
        )
    again = run(root, args.arch, args.image_size, "linear", args.epochs, 1e-2, weights)
    again["mode"] = "linear (features cached)"
    results.append(again)
    n = len(TARGET_CLASSES) * args.per_class
    print(
        f"\n{args.arch} at {args.image_size} px; target: {len(TARGET_CLASSES)} classes × {args.per_class} = {n} "
        f"images (80/20 split); {args.epochs} epochs each; augment light; {torch.get_num_threads()} threads; "
        f"load average during the runs {min(loads):.1f}-{max(loads):.1f}; whole experiment "
        f"{_fmt(time.perf_counter() - t_all)}\n"
    )
    print("| mode | best val accuracy | at epoch | time to best | s / epoch (mean) | total |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['mode']} | {r['best_acc']:.1%} | {r['best_epoch']} | {_fmt(r['time_to_best'])} | "
            f"{np.mean(r['epoch_s']):.2f} | {_fmt(r['total'])} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--compare", action="store_true", help="run the scratch / linear / finetune accuracy experiment")
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--per-class", type=int, default=None, help="target images per class (default 60; compare 125)")
    ap.add_argument("--epochs", type=int, default=6, help="compare: epochs per mode")
    ap.add_argument("--pretrain-minutes", type=float, default=4.0, help="compare: source-task training budget")
    ap.add_argument("--source-per-class", type=int, default=40, help="compare: source images per texture class")
    ap.add_argument("--workdir", default=None, help="keep data, runs and caches here (default: a temp folder)")
    args = ap.parse_args()
    args.per_class = args.per_class or (125 if args.compare else 60)
    with tempfile.TemporaryDirectory(prefix="bench_transfer.") as tmp:
        work = Path(args.workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        os.environ["RESNEXT_STUDIO_RUNS"] = str(work / "runs")
        os.environ["RESNEXT_STUDIO_CACHE"] = str(work / "cache")
        (compare if args.compare else bench_epochs)(args, work)


if __name__ == "__main__":
    main()
