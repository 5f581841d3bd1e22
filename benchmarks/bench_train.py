"""Benchmark: training images/s of the tutorial loop vs our Trainer vs the model-only bound (issue 7).

Run: python benchmarks/bench_train.py [--device cpu|cuda|auto] [--quick] [--threads N] [--rounds R] [--no-formats]
                                      [--only ARCH] [--n IMAGES] [--epochs E] [--skip-tutorial] [--paired]
                                      [--baseline CHECKOUT]

(a) tutorial: torchvision ImageFolder + PIL transforms every epoch, DataLoader(batch, shuffle, num_workers=0), Adam,
    fp32, default memory format. (b) ours: core.engine.Trainer with its defaults for the architecture (AdamW, cosine,
    standard augmentation, decoded-image cache, channels_last/AMP where choose_memory_format/amp_dtype say so),
    val_split=0, speed read from its batch events (training only: no validation runs). (c) the bound: the same
    model, memory format, optimizer and batch sizes as (b) on synthetic tensors already on the device.
Every variant runs in its own process (so that peak memory is its own) with the same torch thread count, and the
rounds alternate the order a,b,c / c,b,a so that load from other programs falls on all three alike. "images per
CPU-s" (process CPU time) is printed too: on a shared machine it moves far less with the load than wall time.
--paired adds (p): (b) and (c) in one process, one epoch of the bound beside each Trainer epoch (order alternating),
and b/c from each pair: on a machine whose speed drifts from second to second, separate processes met different
moments (epochs of one variant spread 1100-2000 img/s on a lent H200).
--baseline runs (b) a second time with another checkout's `core` (e.g. `git worktree add /tmp/base HEAD~1`), in
the same rounds, and prints b/b0: whether a change to the Trainer made it faster, measured on one machine in one run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CORE_ROOT = os.environ.get("BENCH_CORE_ROOT")  # a (b0) worker imports this checkout's `core` (--baseline)
if CORE_ROOT:
    sys.path.insert(0, CORE_ROOT)

TARGETS = {"cpu": (1.25, 0.95), "cuda": (3.0, 0.95)}  # (b/a, b/c)
CLASSES = 4


# ------------------------------------------------------------------------------------------------------- data


def photo_like(rng: np.random.Generator, w: int = 500, h: int = 375) -> Image.Image:
    """Gradient + smooth colour field + a few shapes + sensor noise: decodes and compresses like a photo."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    grad = (np.cos(angle) * xx / w + np.sin(angle) * yy / h)[..., None] * rng.uniform(-120, 120, 3)
    low = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    base = np.asarray(Image.fromarray(low).resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32) + grad
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(2, 6))):
        x0, y0 = int(rng.integers(0, w - 40)), int(rng.integers(0, h - 40))
        box = (x0, y0, x0 + int(rng.integers(20, w // 2)), y0 + int(rng.integers(20, h // 2)))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
    a = np.asarray(img, dtype=np.float32) + rng.normal(0, 6, (h, w, 1)).astype(np.float32)
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def make_dataset(root: Path, n: int, w: int = 500, h: int = 375) -> Path:
    """n photo-like JPEGs in CLASSES class folders; image i is the same on every run (seeded by i), made on a few
    threads (Pillow and numpy let go of the GIL for most of the work)."""
    from concurrent.futures import ThreadPoolExecutor

    for c in range(CLASSES):
        (root / f"class{c}").mkdir(parents=True, exist_ok=True)

    def one(i: int) -> None:
        img = photo_like(np.random.default_rng([0, i]), w, h)
        img.save(root / f"class{i % CLASSES}" / f"{i:05d}.jpg", "JPEG", quality=90)

    with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
        list(pool.map(one, range(n)))
    return root


# ------------------------------------------------------------------------------------------------------- workers
# Each worker runs in a fresh process and prints one JSON line: {"epochs": [[images, seconds], ...], ...}.


def _setup_torch(spec: dict[str, Any]) -> Any:
    import torch

    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    return torch


def _sync(torch: Any, dev: Any) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _peaks(torch: Any, dev: Any) -> dict[str, float]:
    out = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if dev.type == "cuda":
        out["peak_cuda_mb"] = torch.cuda.max_memory_allocated(dev) / 2**20
    return out


def worker_tutorial(spec: dict[str, Any]) -> dict[str, Any]:
    """The loop the tutorials teach."""
    torch = _setup_torch(spec)
    import torchvision.transforms as T
    from torch import nn
    from torch.utils.data import DataLoader
    from torchvision.datasets import ImageFolder

    from core import models

    dev = torch.device(spec["device"])
    s = spec["size"]
    norm = T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    if s > 64:
        tf = T.Compose([T.RandomResizedCrop(s), T.RandomHorizontalFlip(), T.ToTensor(), norm])
    else:
        tf = T.Compose([T.Resize(s), T.CenterCrop(s), T.RandomHorizontalFlip(), T.ToTensor(), norm])
    model = models.build(spec["arch"], CLASSES).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    crit = nn.CrossEntropyLoss()
    ds = ImageFolder(spec["root"], transform=tf)
    loader = DataLoader(ds, batch_size=spec["batch"], shuffle=True, num_workers=0)
    epochs = []
    model.train()
    for _ in range(spec["epochs"]):
        _sync(torch, dev)
        t0, c0 = time.perf_counter(), time.process_time()
        seen = 0
        for x, y in loader:
            if x.shape[0] < 2:
                continue
            x, y = x.to(dev), y.to(dev)
            opt.zero_grad()
            loss = crit(model(x), y)
            loss.backward()
            opt.step()
            seen += x.shape[0]
        _sync(torch, dev)
        epochs.append([seen, time.perf_counter() - t0, time.process_time() - c0])
    return {"epochs": epochs, **_peaks(torch, dev)}


def worker_trainer(spec: dict[str, Any]) -> dict[str, Any]:
    """core.engine.Trainer with its defaults; training speed from its batch events (no validation split).

    spec["paired"]: the bound (c) runs in this process too, one epoch of it beside each Trainer epoch (before it
    on even epochs, after it on odd ones), so that each pair meets the same moment of a machine whose speed
    drifts; returned as "bound"."""
    torch = _setup_torch(spec)
    from core import data, engine
    from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig

    index = data.scan(spec["root"])  # the tutorial's ImageFolder scan is not timed either
    cfg = RunConfig(
        data=DataConfig(root=spec["root"], image_size=spec["size"], val_split=0.0),
        model=ModelConfig(arch=spec["arch"]),
        train=TrainConfig(epochs=spec["epochs"], batch_size=spec["batch"], device=spec["device"]),
    )
    marks: dict[str, Any] = {"last": {}, "cpu0": {}, "cpu": {}, "starts": []}
    bound: list[list[float]] = []
    bound_epoch = _bound_epoch(spec) if spec.get("paired") else None

    class Probe(engine.Callback):
        def on_fit_start(self, info: engine.FitInfo) -> None:
            marks["setup_s"] = time.perf_counter() - marks["t_fit"]
            marks["loader"] = info.loader_mode

        def on_epoch_start(self, epoch: int) -> None:
            if bound_epoch and epoch % 2 == 0:
                bound.append(bound_epoch(len(trainer.split.train)))
            marks["cpu0"][epoch] = time.process_time()
            marks["starts"].append(time.perf_counter())

        def on_batch_end(self, p: engine.BatchProgress) -> None:
            if p.step == p.steps:
                marks["last"][p.epoch] = p.images_per_s
                marks["cpu"][p.epoch] = time.process_time() - marks["cpu0"][p.epoch]

        def on_epoch_end(self, m: engine.EpochMetrics) -> None:
            if bound_epoch and m.epoch % 2 == 1:
                bound.append(bound_epoch(len(trainer.split.train)))

        def on_warning(self, msg: str) -> None:
            print(f"warning: {msg}", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="bench_runs_") as runs_dir:
        trainer = engine.Trainer(cfg, index, callbacks=[Probe()], runs_dir=runs_dir)
        n_train = len(trainer.split.train)
        marks["t_fit"] = time.perf_counter()
        result = trainer.fit()
    if result.reason != "completed":
        raise RuntimeError(f"Trainer ended with {result.reason}: {result.message}")
    dev = trainer.device
    seen = n_train - (n_train % spec["batch"] == 1)  # a last batch of one image is skipped (BatchNorm)
    epochs = [[seen, seen / marks["last"][e], marks["cpu"][e]] for e in sorted(marks["last"])]
    # epoch start to epoch start: training and what the epoch's end does (last.pt …); the paired bound runs in there.
    # (The last epoch has no such interval: after it come the run's end, curves.png and status.json.)
    starts = marks["starts"]
    wall = [] if bound_epoch else [[seen, t1 - t0] for t0, t1 in zip(starts, starts[1:], strict=False)]
    fmt = "channels_last" if trainer.memory_format == torch.channels_last else "contiguous"
    return {
        "epochs": epochs,
        "wall": wall,
        "setup_s": marks["setup_s"],
        "loader": marks["loader"],
        "memory_format": fmt,
        "amp": str(trainer.amp_dtype),
        "bound": bound,
        **_peaks(torch, dev),
    }


def _bound_parts(spec: dict[str, Any], fmt_name: str = "auto") -> tuple[Any, ...]:
    torch = _setup_torch(spec)
    from torch import nn

    from core import engine, models
    from core.config import TrainConfig

    dev = torch.device(spec["device"])
    if dev.type == "cuda":  # what Trainer._setup switches on
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    fmt = engine.choose_memory_format(spec["arch"], dev, fmt_name)
    model = models.build(spec["arch"], CLASSES).to(dev, memory_format=fmt).train()
    opt = engine.make_optimizer(model, TrainConfig())
    amp = engine.amp_dtype(dev, True)
    scaler = torch.amp.GradScaler("cuda", enabled=amp == torch.float16)
    crit = nn.CrossEntropyLoss()

    def step(x: Any, y: Any) -> Any:
        with torch.autocast(dev.type, dtype=amp, enabled=amp is not None):
            loss = crit(model(x), y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        return loss

    return torch, dev, fmt, step, model, opt


def _bound_epoch(spec: dict[str, Any]) -> Any:
    """A function running one epoch of the bound over n images: [images, seconds, CPU seconds]."""
    torch, dev, fmt, step, *_ = _bound_parts(spec)
    b, s = spec["batch"], spec["size"]
    inputs: dict[int, tuple[Any, Any]] = {}

    def epoch(n: int) -> list[float]:
        sizes = [b] * (n // b) + ([n % b] if n % b >= 2 else [])
        for k in set(sizes) - set(inputs):
            x = torch.randn(k, 3, s, s, device=dev).contiguous(memory_format=fmt)
            inputs[k] = (x, torch.randint(0, CLASSES, (k,), device=dev))
        _sync(torch, dev)
        t0, c0 = time.perf_counter(), time.process_time()
        for k in sizes:
            step(*inputs[k])
        _sync(torch, dev)
        return [sum(sizes), time.perf_counter() - t0, time.process_time() - c0]

    return epoch


def worker_bound(spec: dict[str, Any]) -> dict[str, Any]:
    """The model-only bound: same model/format/optimizer/batches, synthetic inputs already on the device."""
    import torch

    epoch = _bound_epoch(spec)
    epochs = [epoch(spec["n"]) for _ in range(spec["epochs"])]
    return {"epochs": epochs, **_peaks(torch, torch.device(spec["device"]))}


def worker_formats(spec: dict[str, Any]) -> dict[str, Any]:
    """Seconds per training step, contiguous vs channels_last (interleaved), and the BatchTransform cost."""
    torch = _setup_torch(spec)
    from core import data
    from core.config import DataConfig

    b, s, reps = spec["batch"], spec["size"], spec["reps"]
    out: dict[str, Any] = {}
    parts = {name: _bound_parts(spec, name) for name in ("off", "on")}
    dev = parts["off"][1]
    y = torch.randint(0, CLASSES, (b,), device=dev)
    xs = {name: torch.randn(b, 3, s, s, device=dev).contiguous(memory_format=p[2]) for name, p in parts.items()}
    times: dict[str, list[float]] = {"off": [], "on": []}
    for name, p in parts.items():  # warm-up (first-call allocations, oneDNN/cuDNN kernel choice)
        p[3](xs[name], y)
    for _ in range(reps):
        for name, p in parts.items():
            _sync(torch, dev)
            t0 = time.perf_counter()
            p[3](xs[name], y)
            _sync(torch, dev)
            times[name].append(time.perf_counter() - t0)
    out["contiguous_s"] = statistics.median(times["off"])
    out["channels_last_s"] = statistics.median(times["on"])
    tf = data.BatchTransform(DataConfig(image_size=s, augment="standard"), train=True)
    r = data.resize_size(s)
    xb = torch.randint(0, 256, (b, 3, r, r), dtype=torch.uint8, device=dev)
    g = torch.Generator().manual_seed(0)
    tf(xb, generator=g)
    tt = []
    for _ in range(20):
        _sync(torch, dev)
        t0 = time.perf_counter()
        tf(xb, generator=g).contiguous(memory_format=parts["on"][2])
        _sync(torch, dev)
        tt.append(time.perf_counter() - t0)
    out["transform_s"] = min(tt)  # its own cost: on a shared machine the median mostly measures time slices
    return out


WORKERS = {"a": worker_tutorial, "b": worker_trainer, "c": worker_bound, "formats": worker_formats}


def run_worker(kind: str, spec: dict[str, Any], core_root: str | None = None) -> dict[str, Any]:
    load0 = os.getloadavg()[0]
    env = {**os.environ, "BENCH_CORE_ROOT": core_root} if core_root else None
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", kind, json.dumps(spec)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"worker {kind} failed:\n{proc.stderr[-3000:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["load"] = (load0 + os.getloadavg()[0]) / 2
    return res


# ------------------------------------------------------------------------------------------------------- main


def configs(device: str, quick: bool) -> list[dict[str, Any]]:
    from core import models

    if device == "cpu":
        small = models.default_arch("cpu")
        return [
            {"arch": "resnext50_32x4d", "size": 224, "n": 32 if quick else 64, "epochs": 2, "batch": 32},
            {"arch": small, "size": 64, "n": 128 if quick else 256, "epochs": 2 if quick else 3, "batch": 32},
        ]
    return [
        {"arch": "resnext50_32x4d", "size": 224, "n": 256 if quick else 512, "epochs": 3, "batch": 32},
        {"arch": "resnext29_8x64d", "size": 32, "n": 256 if quick else 1024, "epochs": 3, "batch": 32},
    ]


def format_configs(device: str, quick: bool) -> list[dict[str, Any]]:
    from core import models

    small = models.default_arch("cpu")
    if device == "cpu":
        rows = [{"arch": small, "size": 32, "batch": 32}, {"arch": small, "size": 64, "batch": 32}]
        if not quick:
            rows.insert(0, {"arch": "resnext50_32x4d", "size": 224, "batch": 8})
        return rows
    return [{"arch": "resnext50_32x4d", "size": 224, "batch": 32}, {"arch": "resnext29_8x64d", "size": 32, "batch": 32}]


def summarise(results: list[dict[str, Any]]) -> dict[str, float]:
    """Median over rounds of the first epoch's and the later epochs' images/s, and the largest peaks."""
    first: list[float] = []
    steady: list[float] = []
    per_cpu: list[float] = []
    for r in results:
        eps = r["epochs"]
        setup = r.get("setup_s", 0.0)
        first.append(eps[0][0] / (eps[0][1] + setup))
        later = eps[1:] or eps
        steady.append(sum(e[0] for e in later) / sum(e[1] for e in later))
        per_cpu.append(sum(e[0] for e in later) / sum(e[2] for e in later))
    out = {
        "first": statistics.median(first),
        "steady": statistics.median(steady),
        "per_cpu_s": statistics.median(per_cpu),
        "rss": max(r["peak_rss_mb"] for r in results),
        "load": statistics.mean(r["load"] for r in results),
    }
    if "peak_cuda_mb" in results[0]:
        out["cuda"] = max(r["peak_cuda_mb"] for r in results)
    walls = [r["wall"][1:] or r["wall"] for r in results if r.get("wall")]
    if walls:  # (b): steady images/s from one epoch's start to the next's, its end's files included
        out["wall"] = statistics.median(sum(e[0] for e in w) / sum(e[1] for e in w) for w in walls)
    return out


def pair_ratios(results: list[dict[str, Any]]) -> list[float]:
    """b/c of each (Trainer epoch, bound epoch) pair of the paired runs, first epochs (warm-up) left out."""
    out = []
    for r in results:
        for b, c in list(zip(r["epochs"], r["bound"], strict=True))[1:]:
            out.append((b[0] / b[1]) / (c[0] / c[1]))
    return out


def machine_line(torch: Any, threads: int, device: str) -> str:
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if device == "cuda" else ""
    return (
        f"CPU {cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {threads} torch threads{gpu}, "
        f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (cuda when available)")
    p.add_argument("--quick", action="store_true", help="fewer images, one round, smaller format table")
    p.add_argument("--threads", type=int, default=None, help="torch threads for every variant (default: cores)")
    p.add_argument("--rounds", type=int, default=None, help="repetitions of a,b,c (default 2, 1 with --quick)")
    p.add_argument("--no-formats", action="store_true", help="skip the memory-format / transform-cost table")
    p.add_argument("--only", default=None, help="run only configs whose arch contains this text")
    p.add_argument("--n", type=int, default=None, help="images per config (default: the config's)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per config (default: the config's)")
    p.add_argument("--baseline", default=None, help="another checkout: its Trainer runs as (b0) beside (b)")
    p.add_argument("--skip-tutorial", action="store_true", help="leave out (a) (b/c and b/b0 only)")
    p.add_argument(
        "--paired",
        action="store_true",
        help="also (p): (b) and (c) in one process, epochs alternating; b/c from each pair (steadier on a "
        "machine whose speed drifts)",
    )
    p.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(WORKERS[args.worker[0]](json.loads(args.worker[1]))))
        return 0

    import torch

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        print("--device cuda: no CUDA GPU here", file=sys.stderr)
        return 2
    kind = "cuda" if device.startswith("cuda") else "cpu"
    threads = args.threads or os.cpu_count() or 1
    rounds = args.rounds or (1 if args.quick else 2)
    baseline = str(Path(args.baseline).resolve()) if args.baseline else None
    if baseline and not (Path(baseline) / "core" / "engine.py").is_file():
        print(f"--baseline {args.baseline}: no core/engine.py there", file=sys.stderr)
        return 2
    print(f"# {machine_line(torch, threads, kind)}")
    want_ba, want_bc = TARGETS[kind]

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        for cfg in configs(kind, args.quick):
            if args.only and args.only not in cfg["arch"]:
                continue
            cfg = {**cfg, "n": args.n or cfg["n"], "epochs": args.epochs or cfg["epochs"]}
            root = Path(tmp) / f"n{cfg['n']}"
            if not root.exists():
                t0 = time.perf_counter()
                make_dataset(root, cfg["n"])
                print(f"# generated {cfg['n']} JPEGs 500x375 in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
            spec = {**cfg, "root": str(root), "device": device, "threads": threads}
            wanted = {"a": not args.skip_tutorial, "b0": bool(baseline), "p": args.paired}
            kinds = tuple(k for k in ("a", "b", "b0", "c", "p") if wanted.get(k, True))
            got: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
            for rnd in range(rounds):
                for k in kinds if rnd % 2 == 0 else kinds[::-1]:
                    k_spec = {**spec, "paired": True} if k == "p" else spec
                    got[k].append(run_worker("b" if k in ("b0", "p") else k, k_spec, baseline if k == "b0" else None))
                    rates = [round(e[0] / e[1], 2) for e in got[k][-1]["epochs"]]
                    if k == "p":
                        rates = [(b, round(e[0] / e[1], 2)) for b, e in zip(rates, got[k][-1]["bound"], strict=True)]
                    print(
                        f"#   {cfg['arch']}@{cfg['size']} round {rnd + 1} {k}: {rates} img/s per epoch", file=sys.stderr
                    )
            paired = pair_ratios(got.pop("p", []))
            s = {k: summarise(v) for k, v in got.items()}
            rows.append((cfg, s, got["b"][0], paired))

    print(
        f"\n## Training images/s ({kind}; median of {rounds} round(s); steady = epochs 2+; "
        "(b) first epoch includes its setup: model build + cache fill)"
    )
    print(
        "| model @ px | images x epochs | variant | first epoch | steady | images per CPU-s | peak RSS MB"
        + (" | peak CUDA MB" if kind == "cuda" else "")
        + " | load avg |"
    )
    print("|---|---|---|---:|---:|---:|---:|" + ("---:|" if kind == "cuda" else "") + "---:|")
    names = {"a": "(a) tutorial loop", "b": "(b) our Trainer", "b0": "(b0) Trainer of --baseline"}
    names["c"] = "(c) model-only bound"
    verdicts = []
    pad = " |" * (6 if kind == "cuda" else 5)  # the table's empty cells after a line of text
    for cfg, s, b0, paired in rows:
        for k in s:
            v = s[k]
            extra = f" {v['cuda']:.0f} |" if kind == "cuda" else ""
            print(
                f"| {cfg['arch']} @ {cfg['size']} | {cfg['n']} x {cfg['epochs']} | {names[k]} | {v['first']:.2f} "
                f"| {v['steady']:.2f} | {v['per_cpu_s']:.2f} | {v['rss']:.0f} |{extra} {v['load']:.2f} |"
            )
        bc, cbc = s["b"]["steady"] / s["c"]["steady"], s["b"]["per_cpu_s"] / s["c"]["per_cpu_s"]
        if "a" in s:
            ba, ba1 = s["b"]["steady"] / s["a"]["steady"], s["b"]["first"] / s["a"]["first"]
            cba = s["b"]["per_cpu_s"] / s["a"]["per_cpu_s"]
            ok = ba >= want_ba and bc >= want_bc
            ratios = f"b/a = {ba:.2f} (first epoch {ba1:.2f}), b/c = {bc:.2f}"
            cpu_ratios = f"per CPU-s: b/a = {cba:.2f}, b/c = {cbc:.2f}"
        else:
            ok = bc >= want_bc
            ratios, cpu_ratios = f"b/c = {bc:.2f}", f"per CPU-s: b/c = {cbc:.2f}"
        verdicts.append(ok)
        print(
            f"| {cfg['arch']} @ {cfg['size']} | | **{ratios}** — {'meets' if ok else 'BELOW'} targets "
            f"{want_ba if 'a' in s else '–'}/{want_bc} | | | {cpu_ratios} | | |" + (" |" if kind == "cuda" else "")
        )
        if "b0" in s:
            print(
                f"| {cfg['arch']} @ {cfg['size']} | | b/b0 = {s['b']['steady'] / s['b0']['steady']:.3f} "
                f"(b0/c = {s['b0']['steady'] / s['c']['steady']:.2f}) |" + pad
            )
        for k in ("b", "b0"):
            if "wall" in s.get(k, {}):
                w = s[k]["wall"]
                print(
                    f"| {cfg['arch']} @ {cfg['size']} | | {names[k]}, epoch start to epoch start (its files "
                    f"included): {w:.2f} img/s = {w / s[k]['steady']:.3f} of its steady |" + pad
                )
        if paired:
            print(
                f"| {cfg['arch']} @ {cfg['size']} | | paired (one process, epochs alternating): **b/c = "
                f"{statistics.median(paired):.3f}**, median of {len(paired)} pairs (range {min(paired):.2f}–"
                f"{max(paired):.2f}) |" + pad
            )
        print(
            f"#   (b) loader: {b0['loader']}; memory format {b0['memory_format']}; amp {b0['amp']}; "
            f"setup {b0['setup_s']:.1f} s",
            file=sys.stderr,
        )

    if not args.no_formats:
        print(f"\n## Seconds per training step: contiguous vs channels_last ({kind}), and BatchTransform per batch")
        print("| model @ px | batch | contiguous s | channels_last s | speed-up | transform s (% of step) | load |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for fc in format_configs(kind, args.quick):
            if args.only and args.only not in fc["arch"]:
                continue
            r = run_worker("formats", {**fc, "device": device, "threads": threads, "reps": 3 if args.quick else 5})
            best = min(r["contiguous_s"], r["channels_last_s"])
            print(
                f"| {fc['arch']} @ {fc['size']} | {fc['batch']} | {r['contiguous_s']:.3f} | "
                f"{r['channels_last_s']:.3f} | {r['contiguous_s'] / r['channels_last_s']:.2f}x | "
                f"{r['transform_s']:.4f} ({100 * r['transform_s'] / best:.1f} %) | {r['load']:.2f} |"
            )
        decode_table(kind == "cpu")
    return 0 if all(verdicts) else 1


def decode_table(include_big: bool) -> None:
    """ms per image: full decode + resize (the old rule, and the tutorial's cost) vs load_for_model's draft decode."""
    from core import data

    print("\n## Decode ms per image (one thread): full-resolution decode vs load_for_model (JPEG draft)")
    print("| JPEG | model px | full decode + resize | load_for_model | speed-up |")
    print("|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="bench_decode_") as tmp:
        rng = np.random.default_rng(1)
        for w, h in ((500, 375), (2000, 1500)) if include_big else ((500, 375),):
            paths = []
            for i in range(16):
                paths.append(Path(tmp) / f"{w}_{i}.jpg")
                photo_like(rng, w, h).save(paths[-1], "JPEG", quality=90)
            for size in (32, 64, 224):
                full = _best_ms(lambda p, s=size: data.decode_for_size(data.load_image(p), s), paths)
                fast = _best_ms(lambda p, s=size: data.load_for_model(p, s), paths)
                print(f"| {w}x{h} | {size} | {full:.2f} | {fast:.2f} | {full / fast:.1f}x |")


def _best_ms(fn: Any, paths: list[Path], repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for path in paths:
            fn(path)
        best = min(best, (time.perf_counter() - t0) / len(paths) * 1000)
    return best


if __name__ == "__main__":
    sys.exit(main())
