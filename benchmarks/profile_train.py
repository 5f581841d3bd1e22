"""Profile where a training step's time goes: our Trainer (b) against the model-only bound (c) (issue 7).

Run: python benchmarks/profile_train.py [--device cuda|cpu|auto] [--arch resnext50_32x4d] [--size 224] [--n 512]
                                        [--batch 32] [--first] [--out DIR]

bench_train.py says how far (b) is from (c); this says why. Both run in this process on the same generated JPEGs:
(b) trains two epochs and torch.profiler records its whole second epoch (with --first, its first epoch instead,
setup excluded); (c) then runs the same number of steps on synthetic tensors under the profiler. Printed per
variant: milliseconds per step, the share of the wall time the GPU was busy with kernels, how often the host waited
(synchronize calls) or copied, and the operators that took the most host time. Every progress event of (b)'s first
epoch is listed with its time, so a slow first epoch shows where it stalls. With --out, Chrome traces go there
(open them in chrome://tracing or Perfetto).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_train import CLASSES, machine_line, make_dataset  # noqa: E402

# host calls that make the CPU wait for the GPU, or move data; counted per step
RUNTIME_CALLS = (
    "cudaStreamSynchronize",
    "cudaDeviceSynchronize",
    "cudaEventSynchronize",
    "cudaMemcpyAsync",
    "cudaHostAlloc",
    "cudaMalloc",
    "cudaFree",
    "cudaLaunchKernel",
)


def _profiler(torch: Any, dev: Any) -> Any:
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
    return profile(activities=acts)


def _sync(torch: Any, dev: Any) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def summarise(prof: Any, steps: int, wall_s: float, top: int) -> dict[str, Any]:
    """Per-step figures from one profile: GPU busy share (union of kernel intervals / wall), runtime-call counts,
    and the operators with the most self host time."""
    from torch.autograd import DeviceType

    kernels = sorted((e.time_range.start, e.time_range.end) for e in prof.events() if e.device_type == DeviceType.CUDA)
    busy_us, end = 0.0, -1.0
    for a, b in kernels:
        if b > end:
            busy_us += b - max(a, end)
            end = b
    averages = prof.key_averages()
    calls = {name: 0 for name in RUNTIME_CALLS}
    call_ms = {name: 0.0 for name in RUNTIME_CALLS}
    for e in averages:
        if e.key in calls:
            calls[e.key] += e.count
            call_ms[e.key] += e.self_cpu_time_total / 1000
    ops = sorted((e for e in averages if e.key not in calls), key=lambda e: e.self_cpu_time_total, reverse=True)
    return {
        "ms_per_step": wall_s * 1000 / steps,
        "gpu_busy": busy_us / 1e6 / wall_s if kernels else None,
        "kernels_per_step": len(kernels) / steps,
        "calls": {k: (calls[k] / steps, call_ms[k] / steps) for k in RUNTIME_CALLS},
        "ops": {e.key: (e.count / steps, e.self_cpu_time_total / 1000 / steps) for e in ops},
        "top": [(e.key, e.count / steps, e.self_cpu_time_total / 1000 / steps) for e in ops[:top]],
    }


def profile_trainer(args: argparse.Namespace, root: Path, dev: Any, torch: Any) -> tuple[dict[str, Any], list]:
    from core import data, engine
    from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig

    index = data.scan(root)
    cfg = RunConfig(
        data=DataConfig(root=str(root), image_size=args.size, val_split=0.0),
        model=ModelConfig(arch=args.arch),
        train=TrainConfig(epochs=2, batch_size=args.batch, device=str(dev)),
    )
    target = 1 if args.first else 2
    marks: dict[str, Any] = {"events": []}
    prof = _profiler(torch, dev)

    class Probe(engine.Callback):
        def on_fit_start(self, info: engine.FitInfo) -> None:
            marks["setup_s"] = time.perf_counter() - marks["t_fit"]
            marks["loader"] = info.loader_mode

        def on_epoch_start(self, epoch: int) -> None:
            marks.setdefault("epoch_t0", {})[epoch] = time.perf_counter()
            if epoch == target:
                _sync(torch, dev)
                prof.start()
                marks["t0"] = time.perf_counter()

        def on_batch_end(self, p: engine.BatchProgress) -> None:
            t = time.perf_counter() - marks["epoch_t0"][p.epoch]
            marks["events"].append((p.epoch, p.step, p.steps, t, p.images_per_s))
            if p.epoch == target and p.step == p.steps:  # finish() has waited for the device
                marks["wall_s"] = time.perf_counter() - marks["t0"]
                prof.stop()
                marks["steps"] = p.steps

    with tempfile.TemporaryDirectory(prefix="profile_runs_") as runs_dir:
        trainer = engine.Trainer(cfg, index, callbacks=[Probe()], runs_dir=runs_dir)
        marks["t_fit"] = time.perf_counter()
        result = trainer.fit()
    if result.reason != "completed":
        raise RuntimeError(f"Trainer ended with {result.reason}: {result.message}")
    if args.out:
        prof.export_chrome_trace(str(Path(args.out) / f"trainer_epoch{target}.json"))
    s = summarise(prof, marks["steps"], marks["wall_s"], args.top)
    s.update(
        setup_s=marks["setup_s"],
        loader=marks["loader"],
        steps=marks["steps"],
        fmt=str(trainer.memory_format).replace("torch.", ""),
        amp=str(trainer.amp_dtype),
    )
    return s, marks["events"]


def profile_bound(args: argparse.Namespace, steps: int, dev: Any, torch: Any) -> dict[str, Any]:
    from bench_train import _bound_parts

    spec = {"arch": args.arch, "device": str(dev), "threads": torch.get_num_threads()}
    torch, dev, fmt, step, *_ = _bound_parts(spec)
    x = torch.randn(args.batch, 3, args.size, args.size, device=dev).contiguous(memory_format=fmt)
    y = torch.randint(0, CLASSES, (args.batch,), device=dev)
    for _ in range(3):  # warm-up: kernel choice, allocations
        step(x, y)
    prof = _profiler(torch, dev)
    _sync(torch, dev)
    prof.start()
    t0 = time.perf_counter()
    for _ in range(steps):
        step(x, y)
    _sync(torch, dev)
    wall = time.perf_counter() - t0
    prof.stop()
    if args.out:
        prof.export_chrome_trace(str(Path(args.out) / "bound.json"))
    return summarise(prof, steps, wall, args.top)


def print_tables(b: dict[str, Any], c: dict[str, Any], cuda: bool) -> None:
    def pct(v: float | None) -> str:
        return "–" if v is None else f"{100 * v:.1f} %"

    print("\n| per step | (b) Trainer | (c) bound | b − c |")
    print("|---|---:|---:|---:|")
    print(f"| wall ms | {b['ms_per_step']:.2f} | {c['ms_per_step']:.2f} | {b['ms_per_step'] - c['ms_per_step']:+.2f} |")
    print(f"| GPU busy | {pct(b['gpu_busy'])} | {pct(c['gpu_busy'])} | |")
    print(
        f"| kernels | {b['kernels_per_step']:.1f} | {c['kernels_per_step']:.1f} | "
        f"{b['kernels_per_step'] - c['kernels_per_step']:+.1f} |"
    )
    if cuda:
        for name in RUNTIME_CALLS:
            (nb, mb), (nc, mc) = b["calls"][name], c["calls"][name]
            print(f"| {name} calls (host ms) | {nb:.2f} ({mb:.3f}) | {nc:.2f} ({mc:.3f}) | {nb - nc:+.2f} |")
    extra = sorted(
        ((k, n - c["ops"].get(k, (0, 0))[0], ms - c["ops"].get(k, (0, 0))[1]) for k, (n, ms) in b["ops"].items()),
        key=lambda r: r[2],
        reverse=True,
    )
    print("\nWhat (b) does beyond (c): operators by extra host time per step")
    print("| operator | extra calls / step | extra host ms / step |")
    print("|---|---:|---:|")
    for key, n, ms in extra[: len(b["top"])]:
        print(f"| `{key}` | {n:+.1f} | {ms:+.3f} |")
    for label, s in (("(b) Trainer", b), ("(c) bound", c)):
        print(f"\n{label}: operators by self host time per step")
        print("| operator | calls / step | host ms / step |")
        print("|---|---:|---:|")
        for key, n, ms in s["top"]:
            print(f"| `{key}` | {n:.1f} | {ms:.3f} |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (cuda when available)")
    p.add_argument("--arch", default=None, help="default: resnext50_32x4d on CUDA, the CPU default model otherwise")
    p.add_argument("--size", type=int, default=None, help="image size (default 224 on CUDA, 64 on the CPU)")
    p.add_argument("--n", type=int, default=None, help="training images (default 512 on CUDA, 64 on the CPU)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--first", action="store_true", help="profile (b)'s first epoch instead of its second")
    p.add_argument("--top", type=int, default=12, help="operators listed per variant")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: cores)")
    p.add_argument("--out", default=None, help="folder for Chrome traces")
    args = p.parse_args(argv)

    import torch

    from core import models

    if args.threads:
        torch.set_num_threads(args.threads)
    name = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        print("--device cuda: no CUDA GPU here", file=sys.stderr)
        return 2
    dev = torch.device(name)
    cuda = dev.type == "cuda"
    args.arch = args.arch or ("resnext50_32x4d" if cuda else models.default_arch("cpu"))
    args.size = args.size or (224 if cuda else 64)
    args.n = args.n or (512 if cuda else 64)
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
    print(f"# {machine_line(torch, torch.get_num_threads(), dev.type)}")
    with tempfile.TemporaryDirectory(prefix="profile_train_") as tmp:
        root = make_dataset(Path(tmp) / "data", args.n)
        b, events = profile_trainer(args, root, dev, torch)
    c = profile_bound(args, b["steps"], dev, torch)
    print(
        f"\n## {args.arch} @ {args.size}, batch {args.batch}, {args.n} images; (b) epoch "
        f"{1 if args.first else 2} profiled ({b['steps']} steps), (c) the same steps"
    )
    print(f"(b) setup {b['setup_s']:.2f} s; loader {b['loader']}; {b['fmt']}; amp {b['amp']}")
    print_tables(b, c, cuda)
    print("\n(b) progress events: epoch, step / steps, seconds since the epoch started, images/s so far")
    for epoch, step, steps, t, ips in events:
        print(f"  {epoch}  {step:>4}/{steps:<4} {t:8.3f} s  {ips:9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
