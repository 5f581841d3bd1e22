"""Benchmark: Predictor overhead vs the bare model, cold start, folder throughput, Grad-CAM and onnxruntime latency.

Run: python benchmarks/bench_predict.py [--repeats 10] [--images 256] [--skip-big]
Random weights (speed does not depend on them): resnext50_32x4d at 224 px and resnext11_4x8d at 64 px.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core import checkpoint, models  # noqa: E402
from core.predict import Predictor, expand_paths  # noqa: E402

TARGET_RATIO = 1.2  # Predictor single-image latency ÷ bare forward


def photo_like(rng: np.random.Generator, w: int = 500, h: int = 375) -> Image.Image:
    low = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    base = np.asarray(Image.fromarray(low).resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32)
    base += rng.normal(0, 8, (h, w, 1)).astype(np.float32)
    return Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))


def make_checkpoint(path: Path, arch: str, image_size: int, num_classes: int = 10) -> Path:
    torch.manual_seed(0)
    model = models.build(arch, num_classes)
    checkpoint.save(path, checkpoint.payload(model, arch, [f"class{i}" for i in range(num_classes)], image_size))
    return path


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def interleaved(fns: dict, repeats: int) -> dict[str, float]:
    """Median seconds per call for each function, calls interleaved so load drift hits all of them alike."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():  # warm-up
        fn()
    for _ in range(repeats):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def cold_start(ckpt: Path, image: Path) -> tuple[float, float]:
    code = (
        "import time; t0 = time.perf_counter(); from core.predict import Predictor; "
        "import torch, os; torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', '0')) or "
        "torch.get_num_threads()); "
        f"p = Predictor.from_checkpoint({str(ckpt)!r}, device='cpu'); r = p.predict([{str(image)!r}]); "
        "assert r[0].ok; print(time.perf_counter() - t0)"
    )
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return time.perf_counter() - t, float(out.stdout.strip())


def bench_model(tmp: Path, arch: str, size: int, folder: Path, jpeg: Path, repeats: int, onnx: bool) -> list[str]:
    rows = [f"{arch} @ {size} px"]
    ckpt = make_checkpoint(tmp / f"{arch}-{size}.pt", arch, size)
    pred = Predictor.from_checkpoint(ckpt, device="cpu")
    model = pred.model
    pil = Image.open(jpeg).convert("RGB")
    x1 = pred.preprocess(pred.decode(pil).unsqueeze(0))

    def bare() -> None:
        with torch.inference_mode():
            model(x1)

    t = interleaved({"bare": bare, "pil": lambda: pred.predict([pil]), "file": lambda: pred.predict([jpeg])}, repeats)
    rows.append(f"  bare model forward, batch 1            {ms(t['bare'])}")
    for k, label in (("pil", "PIL image in memory"), ("file", "JPEG file 500x375   ")):
        ratio = t[k] / t["bare"]
        verdict = "ok" if ratio <= TARGET_RATIO else "over target"
        rows.append(f"  Predictor.predict, {label}  {ms(t[k])}   {ratio:4.2f}x bare  ({verdict}, ≤ {TARGET_RATIO}x)")

    g = interleaved({"pred": lambda: pred.predict([pil]), "cam": lambda: pred.gradcam(pil)}, max(3, repeats // 2))
    rows.append(f"  Grad-CAM (forward + backward + overlay) {ms(g['cam'])}   {g['cam'] / g['pred']:4.2f}x a prediction")

    wall, inside = cold_start(ckpt, jpeg)
    rows.append(
        f"  cold start, fresh process: load + first prediction {wall:6.2f} s wall "
        f"({inside:.2f} s after interpreter start)"
    )

    files, _ = expand_paths([folder])
    t0 = time.perf_counter()
    preds = pred.predict(files, batch_size=32)
    dt = time.perf_counter() - t0
    assert all(p.ok for p in preds)
    xb = torch.randn(32, 3, size, size)
    with torch.inference_mode():
        model(xb)
        t1 = time.perf_counter()
        model(xb)
        model_rate = 32 / (time.perf_counter() - t1)
    rows.append(
        f"  folder of {len(files)} JPEGs 500x375, batch 32  {len(files) / dt:7.1f} images/s "
        f"(model alone {model_rate:.1f} images/s)"
    )

    if onnx:
        try:
            import onnxruntime as ort

            from core.export import export_onnx
        except ImportError:
            rows.append("  onnxruntime not installed: skipped")
            return rows
        info = export_onnx(ckpt, tmp / f"{arch}-{size}.onnx")
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        opts.intra_op_num_threads = torch.get_num_threads()
        sess = ort.InferenceSession(info["path"], opts, providers=["CPUExecutionProvider"])
        xn = x1.numpy()
        t = interleaved({"torch": bare, "ort": lambda: sess.run(None, {"input": xn})}, repeats)
        rows.append(
            f"  batch 1: eager torch {ms(t['torch'])}   onnxruntime {ms(t['ort'])}   "
            f"({t['torch'] / t['ort']:.2f}x faster; export {info['seconds']:.1f} s, "
            f"max |Δ| {info['max_abs_diff']:.1e})"
        )
        onnx_pred = Predictor.from_checkpoint(ckpt, backend="onnx")
        t = interleaved({"torch": lambda: pred.predict([pil]), "onnx": lambda: onnx_pred.predict([pil])}, repeats)
        rows.append(f"  Predictor backend torch {ms(t['torch'])}   backend onnx {ms(t['onnx'])}")
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=10, help="timed calls per latency (median reported)")
    p.add_argument("--images", type=int, default=256, help="JPEGs in the throughput folder")
    p.add_argument("--skip-big", action="store_true", help="skip resnext50_32x4d at 224 px")
    p.add_argument("--no-onnx", action="store_true")
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch/onnxruntime threads (default: torch's choice); use 1 on a machine shared with "
        "other jobs, where OpenMP threads waiting on each other make timings meaningless",
    )
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the cold-start child and onnxruntime

    with tempfile.TemporaryDirectory(prefix="bench_predict_") as tmp_name:
        tmp = Path(tmp_name)
        os.environ["RESNEXT_STUDIO_CACHE"] = str(tmp / "cache")
        folder = tmp / "photos"
        folder.mkdir()
        rng = np.random.default_rng(0)
        for i in range(args.images):
            photo_like(rng).save(folder / f"{i:04d}.jpg", "JPEG", quality=88)
        jpeg = folder / "0000.jpg"
        print(
            f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPU cores, "
            f"load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        configs = [("resnext11_4x8d", 64)] + ([] if args.skip_big else [("resnext50_32x4d", 224)])
        for arch, size in configs:
            for row in bench_model(tmp, arch, size, folder, jpeg, args.repeats, not args.no_onnx):
                print(row, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
