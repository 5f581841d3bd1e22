"""Benchmark: where the Trainer's steps lose time against the model-only bound (issue 7's b/c), part by part.

Run: python benchmarks/step_gap.py [--device cuda|cpu] [--arch resnext50_32x4d] [--size 224] [--n 2048] [--epochs 5]
                                   [--variants full,no-aug,no-meter,no-sched,bare]

Each variant is a Trainer run as bench_train.py's (b), with --paired's bound: one epoch of the bound beside each
Trainer epoch in the same process, so each pair meets the same moment of the machine. Knocked out in turn:
  no-aug    the random-resized crop and flip (the evaluation transform instead: centre crop + normalise)
  no-meter  the per-step loss/accuracy rows and progress reads (only the image count is kept)
  no-sched  the per-step learning-rate schedule
  bare      all three: what is left is the loader, the loop and the model's step
The table gives each variant's median b/c over its pairs (first epoch left out): the parts whose removal brings
b/c up are where the gap is. All variants run in one process, one after another.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_train  # noqa: E402

KNOCKS = {
    "full": (),
    "no-aug": ("aug",),
    "no-meter": ("meter",),
    "no-sched": ("sched",),
    "bare": ("aug", "meter", "sched"),
}


def _knocked(knocks: tuple[str, ...]) -> ExitStack:
    """Patches of core.engine that knock the named parts out of the Trainer's step, undone on exit."""
    from core import engine

    stack = ExitStack()
    setup = engine.Trainer._setup

    def knocked_setup(self: Any) -> None:
        setup(self)
        if "aug" in knocks:
            eval_tf = self.eval_tf
            self.train_tf = lambda x, generator=None: eval_tf(x)
        if "sched" in knocks:
            self.scheduler = None

    stack.enter_context(mock.patch.object(engine.Trainer, "_setup", knocked_setup))
    if "meter" in knocks:

        def add(self: Any, step: int, loss: Any, correct: Any, b: int) -> None:
            self._filled = max(self._filled, step)
            self.seen += b

        stack.enter_context(mock.patch.object(engine._EpochMeter, "add", add))
        stack.enter_context(mock.patch.object(engine._EpochMeter, "tick", lambda self, step: None))
    return stack


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda")
    p.add_argument("--arch", default="resnext50_32x4d")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--n", type=int, default=2048)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--variants", default=",".join(KNOCKS))
    args = p.parse_args(argv)
    names = [v for v in args.variants.split(",") if v]
    unknown = [v for v in names if v not in KNOCKS]
    if unknown:
        print(f"--variants: unknown {', '.join(unknown)} (known: {', '.join(KNOCKS)})", file=sys.stderr)
        return 2
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("--device cuda: no CUDA GPU here", file=sys.stderr)
        return 2
    print(f"# {bench_train.machine_line(torch, torch.get_num_threads(), args.device.split(':')[0])}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="step_gap_") as tmp:
        root = Path(tmp) / "data"
        bench_train.make_dataset(root, args.n)
        spec = {
            "arch": args.arch,
            "size": args.size,
            "batch": args.batch,
            "n": args.n,
            "epochs": args.epochs,
            "root": str(root),
            "device": args.device,
            "threads": torch.get_num_threads(),
            "paired": True,
        }
        for name in names:
            t0 = time.perf_counter()
            with _knocked(KNOCKS[name]):
                got = bench_train.worker_trainer(spec)
            ratios = bench_train.pair_ratios([got])
            b = [e[0] / e[1] for e in got["epochs"][1:]]
            c = [e[0] / e[1] for e in got["bound"][1:]]
            print(
                f"#   {name}: b {[round(x) for x in b]}, c {[round(x) for x in c]} img/s "
                f"({time.perf_counter() - t0:.0f} s)",
                file=sys.stderr,
            )
            rows.append((name, statistics.median(b), statistics.median(c), ratios))
    print(f"\n## {args.arch} @ {args.size}, batch {args.batch}, {args.n} images x {args.epochs} epochs ({args.device})")
    print("| variant | (b) steady img/s | (c) paired bound | paired b/c (median) | range | pairs |")
    print("|---|---:|---:|---:|---|---:|")
    for name, b, c, r in rows:
        print(f"| {name} | {b:.0f} | {c:.0f} | **{statistics.median(r):.3f}** | {min(r):.2f}–{max(r):.2f} | {len(r)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
