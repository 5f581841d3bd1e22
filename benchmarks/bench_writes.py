"""Benchmark: what writing an epoch's files beside training costs the training steps (issue 7, write-behind).

Run: python benchmarks/bench_writes.py [--device cuda|cpu|auto] [--only ARCH] [--seconds S] [--threads N]

On a GPU the Trainer writes an epoch's last.pt (and best.pt) on a thread of its own while the next epoch trains
(core.engine._WriteBehind). Whatever that thread takes from the training thread (the GIL, cores, the file
system) slows the steps, and a write that lasts longer than an epoch makes the next epoch's end wait. This
script trains the model-only bound of bench_train.py (synthetic batches already on the device) for a fixed time
while another thread, or process, writes files of the size of that model's last.pt + best.pt over and over:

  none                  nothing written (the reference)
  checkpoint.save       what the Trainer does: core.checkpoint.save (torch.save into a file object, atomic, fsync'd)
  ... no crc32          the same with torch's zip CRC-32 off (torch.load does not check it)
  torch.save(path)      torch writes the file itself (C++; no Python file object), fsync'd
  ... no crc32          the same with CRC-32 off
  raw bytes             the same number of bytes written with os.write (no pickling), fsync'd
  raw bytes, process    the same from another process (no GIL shared; the file system and cores still are)
  pickle to memory      torch.save into a BytesIO: serialising only, no file

and prints the training images/s in each case as a share of "none" (two rounds, the second in reverse order, so
that a machine whose speed drifts weighs on all alike), how long one write took alone and beside training, and
what taking the snapshot costs at the epoch's end (copying the training state to the CPU: fresh pageable tensors,
as the Trainer does, or pinned buffers allocated once and filled without a wait per tensor).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from bench_train import CLASSES, _bound_parts, _sync  # noqa: E402

from core import checkpoint  # noqa: E402

CONFIGS = {"cuda": [("resnext29_8x64d", 32), ("resnext50_32x4d", 224)], "cpu": [("resnext11_4x8d", 64)]}

_RAW_WRITER = """
import os, sys
folder, size = sys.argv[1], int(sys.argv[2])
data = os.urandom(1 << 24)
while True:
    with open(os.path.join(folder, "raw_process.bin"), "wb") as f:
        left = size
        while left > 0:
            left -= f.write(data[: min(left, len(data))])
        f.flush()
        os.fsync(f.fileno())
"""


def _no_crc(fn: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        torch.serialization.set_crc32_options(False)
        try:
            fn()
        finally:
            torch.serialization.set_crc32_options(True)

    return run


def _save_path(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, str(tmp))
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _raw(path: Path, size: int, block: bytes) -> None:
    with open(path, "wb") as f:
        left = size
        while left > 0:
            left -= f.write(memoryview(block)[: min(left, len(block))])
        f.flush()
        os.fsync(f.fileno())


def writers(folder: Path, last: dict[str, Any], best: dict[str, Any], size: int) -> dict[str, Callable[[], None]]:
    block = os.urandom(1 << 24)

    def ours() -> None:
        checkpoint.save(folder / "last.pt", last)
        checkpoint.save(folder / "best.pt", best)

    def by_path() -> None:
        _save_path(last, folder / "last_p.pt")
        _save_path(best, folder / "best_p.pt")

    def to_memory() -> None:
        for obj in (last, best):
            torch.save(obj, io.BytesIO())

    return {
        "none": lambda: None,
        "checkpoint.save": ours,
        "checkpoint.save, no crc32": _no_crc(ours),
        "torch.save(path)": by_path,
        "torch.save(path), no crc32": _no_crc(by_path),
        "raw bytes": lambda: _raw(folder / "raw.bin", size, block),
        "raw bytes, process": lambda: None,  # (see beside())
        "pickle to memory": to_memory,
    }


def beside(name: str, write: Callable[[], None], train: Callable[[], float], folder: Path, size: int) -> dict:
    """Training images/s while `write` runs over and over on another thread (or the raw writer process)."""
    stop, times = threading.Event(), []

    def loop() -> None:
        while not stop.is_set():
            t0 = time.perf_counter()
            write()
            times.append(time.perf_counter() - t0)

    proc = thread = None
    if name == "raw bytes, process":
        proc = subprocess.Popen([sys.executable, "-c", _RAW_WRITER, str(folder), str(size)])
        time.sleep(0.2)  # (its start: python, not yet writing)
    elif name != "none":
        thread = threading.Thread(target=loop, name="writer")
        thread.start()
    try:
        rate = train()
    finally:
        stop.set()
        if thread is not None:
            thread.join()
        if proc is not None:
            proc.kill()
            proc.wait()
    return {"rate": rate, "writes": times}


def snapshot_costs(model: Any, opt: Any, dev: Any, reps: int = 3) -> dict[str, float]:
    """Seconds to copy the training state to the CPU: as the Trainer does (plain_state_dict + snapshot of the
    optimizer's state: a fresh pageable tensor each, one wait each) and into pinned buffers made once."""
    fresh = []
    for _ in range(reps):
        _sync(torch, dev)
        t0 = time.perf_counter()
        checkpoint.plain_state_dict(model)
        checkpoint.snapshot(opt.state_dict())
        fresh.append(time.perf_counter() - t0)
    tensors = [t for t in model.state_dict().values()]
    tensors += [v for s in opt.state.values() for v in s.values() if torch.is_tensor(v)]
    pin = dev.type == "cuda"
    t0 = time.perf_counter()
    bufs = [torch.empty(t.shape, dtype=t.dtype, pin_memory=pin) for t in tensors]
    alloc = time.perf_counter() - t0
    pinned = []
    for _ in range(reps):
        _sync(torch, dev)
        t0 = time.perf_counter()
        for b, t in zip(bufs, tensors, strict=True):
            b.copy_(t.detach(), non_blocking=pin)
        _sync(torch, dev)
        pinned.append(time.perf_counter() - t0)
    return {"fresh": statistics.median(fresh), "pinned": statistics.median(pinned), "alloc": alloc}


def run(arch: str, size: int, device: str, seconds: float, threads: int) -> None:
    spec = {"arch": arch, "size": size, "device": device, "threads": threads}
    _, dev, fmt, step, model, opt = _bound_parts(spec)
    b = 32
    x = torch.randn(b, 3, size, size, device=dev).contiguous(memory_format=fmt)
    y = torch.randint(0, CLASSES, (b,), device=dev)
    for _ in range(5):
        step(x, y)
    _sync(torch, dev)
    t0 = time.perf_counter()
    for _ in range(10):
        step(x, y)
    _sync(torch, dev)
    steps = max(20, round(seconds / ((time.perf_counter() - t0) / 10)))

    def train() -> float:
        _sync(torch, dev)
        t0 = time.perf_counter()
        for _ in range(steps):
            step(x, y)
        _sync(torch, dev)
        return steps * b / (time.perf_counter() - t0)

    snap = snapshot_costs(model, opt, dev)
    best = checkpoint.payload(model, arch, [str(i) for i in range(CLASSES)], size)
    last = {**best, "optimizer": checkpoint.snapshot(opt.state_dict())}
    with tempfile.TemporaryDirectory(prefix="bench_writes_", dir=os.environ.get("BENCH_WRITES_DIR")) as tmp:
        folder = Path(tmp)
        checkpoint.save(folder / "last.pt", last)
        checkpoint.save(folder / "best.pt", best)
        size_b = (folder / "last.pt").stat().st_size + (folder / "best.pt").stat().st_size
        ws = writers(folder, last, best, size_b)
        alone = {}
        for name, fn in ws.items():
            if name in ("none", "raw bytes, process"):
                continue
            fn()  # (first write: allocations, page cache)
            t0 = time.perf_counter()
            fn()
            alone[name] = time.perf_counter() - t0
        names = list(ws)
        got: dict[str, list[dict]] = {n: [] for n in names}
        for rnd in range(2):
            for name in names if rnd == 0 else names[::-1]:
                got[name].append(beside(name, ws[name], train, folder, size_b))
                print(f"#   {arch} round {rnd + 1} {name}: {got[name][-1]['rate']:.1f} img/s", file=sys.stderr)
    ref = statistics.mean(r["rate"] for r in got["none"])
    print(
        f"\n## {arch} @ {size}, batch {b}, {device}: training beside a writer of last.pt + best.pt "
        f"({size_b / 2**20:.0f} MB), {steps} steps per measure"
    )
    print("| writer | img/s (round 1, 2) | share of none | one write alone s | one write beside training s |")
    print("|---|---:|---:|---:|---:|")
    for name in names:
        rates = [r["rate"] for r in got[name]]
        writes = [w for r in got[name] for w in r["writes"]]
        during = f"{statistics.median(writes):.3f} ({len(writes)})" if writes else "–"
        a = f"{alone[name]:.3f}" if name in alone else "–"
        print(f"| {name} | {rates[0]:.0f}, {rates[1]:.0f} | {statistics.mean(rates) / ref:.3f} | {a} | {during} |")
    print(
        f"\nSnapshot of the training state at the epoch's end: {snap['fresh']:.3f} s as the Trainer takes it "
        f"(fresh pageable tensors), {snap['pinned']:.3f} s into {'pinned ' if dev.type == 'cuda' else ''}buffers "
        f"made once ({snap['alloc']:.3f} s to make them)."
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--only", default=None, help="only architectures whose name contains this text")
    p.add_argument("--seconds", type=float, default=2.0, help="training time per measure")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    kind = "cuda" if device.startswith("cuda") else "cpu"
    if kind == "cuda" and not torch.cuda.is_available():
        print("--device cuda: no CUDA GPU here", file=sys.stderr)
        return 2
    threads = args.threads or os.cpu_count() or 1
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if kind == "cuda" else ""
    print(f"# {os.cpu_count()} cores, torch {torch.__version__}{gpu}, load {os.getloadavg()[0]:.2f}")
    for arch, size in CONFIGS[kind]:
        if args.only and args.only not in arch:
            continue
        run(arch, size, device, args.seconds, threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
