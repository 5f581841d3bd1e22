"""Export a checkpoint to ONNX or TorchScript, checked against the PyTorch model before the file is kept."""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core import checkpoint as ckpt_mod
from core import data, runs

ATOL = 1e-4
EXTRA_MESSAGE = "ONNX export needs the 'export' extra: pip install 'resnext-studio[export]'"
PREPROCESSING = (
    "Open the image (a JPEG file decoded reduced, see below); turn it as its EXIF orientation says (PIL's "
    "ImageOps.exif_transpose); put transparent pixels (an alpha channel, a palette's or a PNG's transparent "
    "colour) on white; 16-bit grey to 8-bit by (v + 128) // 257, 32-bit or float grey scaled so that 255 (1.0 for "
    "floats) or the brightest value if higher is white; then an RGB image (a JPEG file decoded reduced: PIL's Image.draft('RGB', (resize_size, resize_size)), the smallest "
    "1/2, 1/4 or 1/8 scale whose sides stay >= resize_size, as training did); resize the shorter side to "
    "resize_size (bilinear, antialiased; the longer side int(resize_size * long / short)); centre-crop "
    "resize_size x resize_size (left round((width - resize_size) / 2), top likewise, Python's round); "
    "centre-crop image_size x image_size (left (resize_size - image_size) // 2, top likewise; torchvision's "
    "CenterCrop rounds there, one pixel further for some sizes); scale to [0, 1]; subtract mean and "
    "divide by std per channel; NCHW float32 named 'input'; output 'logits' [N, num_classes] "
    "(apply softmax for probabilities)"
)


class ExportError(RuntimeError):
    """An export could not be made or did not match the PyTorch model; the message says why (with numbers)."""


def _require_onnx() -> tuple[Any, Any]:
    try:
        import onnx
        import onnxruntime
    except ImportError:
        raise ExportError(EXTRA_MESSAGE) from None
    return onnx, onnxruntime


def synthetic_images(n: int = 4, size: int = 96) -> list[Any]:
    """Deterministic RGB test pictures (gradients, stripes, blocks, noise) for the parity check."""
    from PIL import Image

    rng = np.random.default_rng(1234)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(1, size - 1)
    out = []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            arr = np.stack([xx, yy, 1 - xx], axis=-1)
        elif kind == 1:
            arr = np.stack([(np.sin(xx * 20) + 1) / 2, yy, (np.cos(yy * 13) + 1) / 2], axis=-1)
        elif kind == 2:
            arr = np.zeros((size, size, 3), np.float32) + 0.1
            arr[size // 4 : size // 2, size // 3 : 2 * size // 3] = (0.9, 0.2, 0.1)
        else:
            arr = rng.random((size, size, 3), dtype=np.float32)
        out.append(Image.fromarray((arr * 255).astype(np.uint8)).resize((size + 16 * i, size)))
    return out


def _prepare(checkpoint_path: str | Path, samples: Sequence[Any] | None) -> tuple[dict, torch.nn.Module, torch.Tensor]:
    from core.predict import Predictor

    pred = Predictor.from_checkpoint(checkpoint_path, device="cpu", backend="torch")
    if samples:
        tensors = []
        for s in samples:
            try:
                tensors.append(pred.decode(s))
            except data.ImageLoadError as e:
                raise ExportError(f"sample image {e}") from None
        x = pred.preprocess(torch.stack(tensors))
    else:
        g = torch.Generator().manual_seed(0)
        rand = torch.randn(4, 3, pred.image_size, pred.image_size, generator=g)
        synth = pred.preprocess(torch.stack([pred.decode(im) for im in synthetic_images()]))
        x = torch.cat([rand, synth])
    meta = {
        "format": ckpt_mod.FORMAT,
        "arch": pred.arch,
        "num_classes": len(pred.class_names),
        "class_names": pred.class_names,
        "image_size": pred.image_size,
        "resize_size": pred.resize_size,
        "mean": list(pred.mean),
        "std": list(pred.std),
        "input_layout": "NCHW",
        "input_name": "input",
        "output_name": "logits",
        "preprocessing": PREPROCESSING,
    }
    return meta, pred.model, x.contiguous()


def _temp_next_to(out: Path) -> str:
    """A temporary file beside `out` (renamed onto it once checked); an OSError names `out`, not the temporary."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(out)) from None
    os.close(fd)
    return tmp


def _run_onnx(path: str, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    # one batch of all samples and one single image: checks the dynamic batch axis too
    full = sess.run(None, {"input": x})[0]
    one = sess.run(None, {"input": x[:1]})[0]
    if not np.allclose(one, full[:1], atol=ATOL, rtol=0):
        raise ExportError(f"ONNX export gives different answers for batch 1 and batch {len(x)}")
    return full


def _run_torchscript(path: str, x: torch.Tensor) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated in favour of torch.export, still supported
        with open(path, "rb") as f:  # (a path string fails on Windows outside the code page: pytorch#75171)
            m = torch.jit.load(f, map_location="cpu").eval()
    with torch.inference_mode():
        full = m(x)
        one = m(x[:1])
    if not torch.allclose(one, full[:1], atol=ATOL, rtol=0):
        raise ExportError(f"TorchScript export gives different answers for batch 1 and batch {len(x)}")
    return full.numpy()


def _check(fmt: str, ref: np.ndarray, got: np.ndarray, tmp: str) -> tuple[float, bool]:
    diff = float(np.abs(ref - got).max()) if got.shape == ref.shape else float("inf")
    agree = got.shape == ref.shape and bool((ref.argmax(1) == got.argmax(1)).all())
    if not (diff <= ATOL and agree):
        _remove(tmp)
        n_bad = int((ref.argmax(1) != got.argmax(1)).sum()) if got.shape == ref.shape else len(ref)
        raise ExportError(
            f"{fmt} export does not match the PyTorch model: max |Δ logits| = {diff:.3g} "
            f"(allowed {ATOL:g}), top-1 differs on {n_bad} of {len(ref)} samples; file not written"
        )
    return diff, agree


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _finish(fmt: str, tmp: str, out: Path, diff: float, agree: bool, n: int, t0: float) -> dict[str, Any]:
    from core.runs import replace_file, share_like_a_new_file

    try:
        share_like_a_new_file(tmp)
        replace_file(tmp, out)  # fails when `out` is a folder, for instance: leave nothing behind
    except OSError:
        _remove(tmp)
        raise
    return {
        "path": str(out),
        "format": fmt,
        "max_abs_diff": diff,
        "top1_agree": agree,
        "n_samples": n,
        "seconds": round(time.perf_counter() - t0, 3),
        "size_bytes": out.stat().st_size,
    }


def _export(
    fmt: str,
    label: str,
    checkpoint_path: str | Path,
    out: str | Path,
    samples: Sequence[Any] | None,
    write_and_run: Callable[[torch.nn.Module, torch.Tensor, dict[str, Any], str], np.ndarray],
) -> dict[str, Any]:
    """The steps every format shares: reference logits, write to a temporary file next to `out`, run that file on
    the same inputs, check it against the reference, then move it into place (or remove it and raise)."""
    t0 = time.perf_counter()
    out = Path(out)
    meta, model, x = _prepare(checkpoint_path, samples)
    with torch.inference_mode():
        ref = model(x).float().numpy()
    tmp = _temp_next_to(out)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = write_and_run(model, x, meta, tmp)
        diff, agree = _check(label, ref, got, tmp)
        return _finish(fmt, tmp, out, diff, agree, len(x), t0)
    except ExportError:
        raise
    except OSError as e:  # a full disk, a folder that went away: said as such
        raise ExportError(f"{out}: could not write the {label} file ({e.strerror or e})") from None
    except Exception as e:
        raise ExportError(f"{label} export of {checkpoint_path} failed: {type(e).__name__}: {e}") from None
    finally:  # also on Ctrl-C: no hidden temporary file is left next to `out`
        _remove(tmp)


def export_onnx(
    checkpoint_path: str | Path, out: str | Path, samples: Sequence[Any] | None = None, opset: int = 17
) -> dict[str, Any]:
    """Export to ONNX (input "input" NCHW float32 normalised, dynamic batch; metadata holds the preprocessing).

    The file appears at `out` only after onnxruntime reproduces the PyTorch logits on the samples (given image
    paths, else random inputs plus synthetic images): max |Δ logits| ≤ 1e-4 and identical top-1, else ExportError.
    """
    onnx, _ = _require_onnx()

    def write_and_run(model: torch.nn.Module, x: torch.Tensor, meta: dict[str, Any], tmp: str) -> np.ndarray:
        torch.onnx.export(
            model,
            (x[:1],),
            tmp,
            dynamo=False,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=opset,
            do_constant_folding=True,
        )
        proto = onnx.load(tmp)
        del proto.metadata_props[:]
        for k, v in meta.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = k, v if isinstance(v, str) else json.dumps(v)
        proto.doc_string = "ResNeXt Studio classifier. " + PREPROCESSING
        onnx.save(proto, tmp)
        return _run_onnx(tmp, x.numpy())

    return _export("onnx", "ONNX", checkpoint_path, out, samples, write_and_run)


def export_torchscript(
    checkpoint_path: str | Path, out: str | Path, samples: Sequence[Any] | None = None
) -> dict[str, Any]:
    """Export to TorchScript (traced; any batch size); metadata.json rides along as an extra file.

    Load it with `torch.jit.load(path, _extra_files={"metadata.json": ""})`. Checked like `export_onnx`.
    """

    def write_and_run(model: torch.nn.Module, x: torch.Tensor, meta: dict[str, Any], tmp: str) -> np.ndarray:
        traced = torch.jit.trace(model, x[:1], check_trace=False)
        buf = io.BytesIO()  # written from Python: a full disk is an OSError, not a C++ abort of the process
        torch.jit.save(traced, buf, _extra_files={"metadata.json": json.dumps(meta)})
        with open(tmp, "wb") as f:
            f.write(buf.getbuffer())
            f.flush()
            runs.fsync(f.fileno())
        return _run_torchscript(tmp, x)

    return _export("torchscript", "TorchScript", checkpoint_path, out, samples, write_and_run)
