"""Checkpoint files: atomic save, safe (weights-only) load, and rebuilding a model from a checkpoint."""

from __future__ import annotations

import errno
import math
import os
import pickle
import re
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from core import count_noun, runs
from core.runs import not_torch_file, zip_kind  # (torch-free: the run list and the window ask them too)

FORMAT = "resnext-studio/1"

# Keys every checkpoint carries; last.pt adds optimizer, scheduler, scaler, rng.
REQUIRED_KEYS = ("format", "model", "arch", "num_classes", "class_names", "image_size")


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable or not ours; the message names the file."""


def save(path: str | Path, payload: dict[str, Any]) -> None:
    """Write `payload` to `path` atomically: the previous file stays intact if anything fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = _to_cpu(payload)  # optimizer state lives on the GPU: the file must load on a machine without one
    try:
        with runs.atomic_file(path, "wb") as f:
            torch.save(payload, f)
    except (RuntimeError, OSError) as e:  # torch's writer reports a short write ("unexpected pos …"), not why
        cause = e.__context__ if isinstance(e, RuntimeError) else None  # (what stopped the write, kept by torch)
        if isinstance(cause, BaseException) and not isinstance(cause, Exception):
            raise cause from None  # a second Ctrl-C in the write: an interruption, not a failed disk
        if isinstance(cause, OSError) and cause.errno is not None:
            e = cause  # (a file-size limit: "File too large", not "unexpected pos 33600 vs 33496")
        if isinstance(e, OSError) and e.errno not in (errno.ENOSPC, errno.EDQUOT):
            if e.filename is None:
                raise OSError(e.errno, f"could not write it: {e.strerror or e}", str(path)) from None
            raise  # (atomic_file names the file)
        free = shutil.disk_usage(path.parent).free
        full = isinstance(e, OSError) or free < 256 * 2**20
        why = "no space left on device" if full else str(e).strip().splitlines()[0]
        kept = "the file it replaces is kept" if path.exists() else "no file was written"
        # (the space free alone, measured once the temp file was gone, read as room enough: "6 MB free" of a 9 MB
        # file)
        need = f"it needs about {_size_text(_payload_bytes(payload))}; "
        raise OSError(
            errno.ENOSPC if full else errno.EIO,
            f"could not write it: {why} ({need}{_size_text(free)} free; {kept})",
            str(path),
        ) from None
    _fsync_dir(path.parent)


def _payload_bytes(obj: Any) -> int:
    """About what a payload takes on disk: its tensors' bytes."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_payload_bytes(v) for v in obj.values())
    if isinstance(obj, list | tuple):
        return sum(_payload_bytes(v) for v in obj)
    return 0


def _size_text(n: int) -> str:
    return f"{n / 2**20:.0f} MB" if n >= 2**20 else f"{max(1, round(n / 1024))} KB" if n else "0 MB"


def snapshot(obj: Any, buffers: dict[tuple[Any, ...], torch.Tensor] | None = None) -> Any:
    """A copy of a payload that training can no longer change, for a save on another thread: tensors copied to
    the CPU (the CPU's own cloned: .cpu() hands those back as they are, and the next step changes them in place),
    dicts, lists and tuples rebuilt.

    `buffers` (a dict kept from one snapshot to the next, {} at first): the tensors are copied into CPU tensors
    made by the first snapshot and reused by the next ones, so nothing must read the previous snapshot any more.
    Those of a CUDA tensor are pinned: the copies are queued without a wait each and one wait ends them all
    (resnext29's weights and AdamW state on an H200: 0.009 s, against 0.309 s into a fresh pageable tensor each)."""
    if buffers is None:
        return _to_cpu(obj, clone=True)
    streams: set[torch.device] = set()

    def into(t: torch.Tensor, key: tuple[Any, ...]) -> torch.Tensor:
        buf, stride = buffers.get(key), _stride(t)
        if buf is None or buf.shape != t.shape or buf.dtype != t.dtype or buf.stride() != stride:
            buf = buffers[key] = _cpu_like(t, stride)
        cuda = t.is_cuda and buf.is_pinned()
        buf.copy_(t, non_blocking=cuda)
        if cuda:
            streams.add(t.device)
        return buf

    out = _map_tensors(obj, into)
    for dev in streams:
        torch.cuda.synchronize(dev)
    return out


def _map_tensors(obj: Any, fn: Callable[[torch.Tensor, tuple[Any, ...]], Any], key: tuple[Any, ...] = ()) -> Any:
    """obj with each tensor t (detached) replaced by fn(t, its path of keys/indices); dicts, lists, tuples rebuilt."""
    if isinstance(obj, torch.Tensor):
        return fn(obj.detach(), key)
    if isinstance(obj, dict):
        return {k: _map_tensors(v, fn, (*key, k)) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        items = [_map_tensors(v, fn, (*key, i)) for i, v in enumerate(obj)]
        return items if isinstance(obj, list) else tuple(items)
    return obj


def _stride(t: torch.Tensor) -> tuple[int, ...]:
    """t's strides where it is dense (channels_last weights stay so, and the copy is one block), else contiguous."""
    dense = t.is_contiguous() or (t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last))
    return tuple(t.stride()) if dense else tuple(torch.empty(t.shape, device="meta").stride())


def _cpu_like(t: torch.Tensor, stride: tuple[int, ...]) -> torch.Tensor:
    """An empty CPU tensor of t's shape and dtype with these strides; pinned for a CUDA tensor where the system
    grants it."""
    if t.is_cuda:
        try:
            return torch.empty_strided(t.shape, stride, dtype=t.dtype, pin_memory=True)
        except RuntimeError:  # (pinned memory refused: a pageable copy waits, but works)
            pass
    return torch.empty_strided(t.shape, stride, dtype=t.dtype)


def _to_cpu(obj: Any, clone: bool = False) -> Any:
    return _map_tensors(obj, lambda t, _: t.clone() if clone and t.device.type == "cpu" else t.cpu())


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        runs.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _readable(path: Path) -> bool:
    """Whether the file can be opened and read at all (permissions; torch reads the rest)."""
    try:
        with open(path, "rb") as f:
            f.read(1)
        return True
    except OSError:
        return False


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a ResNeXt Studio checkpoint with the weights-only unpickler; never runs code from the file."""
    path = Path(path)
    if not path.is_file():
        what = "no such checkpoint file"
        if path.is_dir():
            what = "a folder, not a checkpoint file"
        elif os.path.exists(path):  # (a named pipe was "no such checkpoint file", though it was there)
            what = f"{runs.special_kind(path.resolve()) or 'no regular file'}, not a checkpoint file"
        raise CheckpointError(f"{path}: {what}")
    try:
        with warnings.catch_warnings():  # (torch warns of a pickle file's protocol, or of a TorchScript file,
            warnings.simplefilter("ignore", UserWarning)  # before it refuses it: the refusal says why)
            ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(f"{path}: not a ResNeXt Studio checkpoint ({_refusal(str(e), path)})") from None
    except Exception as e:  # noqa: BLE001 - a damaged file makes the unpickler raise almost anything
        if isinstance(e, OSError) and e.strerror and not _readable(path):  # permissions, a disk error: not
            raise CheckpointError(f"{path}: cannot read the checkpoint file ({e.strerror})") from None  # "damaged"
        # (torch's zip reader says "Invalid argument" of a file cut short: that is damage, the file reads fine)
        why = (
            "not a torch.save file"
            if isinstance(e, KeyError)
            else "cut short"
            if isinstance(e, OSError)
            else (str(e).strip().split(". ")[0] or "file is empty or cut short")
        )
        kind = zip_kind(path)
        if kind == "torchscript":
            raise CheckpointError(runs.TORCHSCRIPT_REFUSAL.format(path=path)) from None
        if kind in ("damaged", "torch.save"):  # torch.save's format, cut short or damaged (a copy that did not finish)
            raise CheckpointError(f"{path}: damaged or incomplete checkpoint file (unreadable: {why})") from None
        raise CheckpointError(f"{path}: not a ResNeXt Studio checkpoint ({not_torch_file(path, kind)})") from None
    if damage := runs.zip_damage(path):  # (read by the unpickler without a word: weights of flipped bytes)
        raise CheckpointError(f"{path}: damaged checkpoint file ({damage})")
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path}: not a ResNeXt Studio checkpoint (contains a {type(ckpt).__name__}, not a dict)")
    if "format" not in ckpt:
        raise CheckpointError(f"{path}: {_foreign_dict(ckpt)}")
    if not str(ckpt["format"]).startswith("resnext-studio/"):
        raise CheckpointError(f"{path}: not a ResNeXt Studio checkpoint (format {ckpt['format']!r})")
    if str(ckpt["format"]) != FORMAT:  # (a later version's layout read as this one's could mean anything)
        raise CheckpointError(
            f"{path}: format {ckpt['format']!r}, not {FORMAT!r} this version reads (made by a newer ResNeXt Studio?)"
        )
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: not a ResNeXt Studio checkpoint (missing {', '.join(missing)})")
    problem = _shape_problem(ckpt)
    if problem:
        raise CheckpointError(f"{path}: damaged checkpoint ({problem})")
    return ckpt


def _foreign_dict(ckpt: dict[str, Any]) -> str:
    """What a torch.save dict without this program's format mark is, in words ("no 'format' key" told a user
    nothing; torchvision's weights file, the commonest, is a model's weights alone)."""
    if ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        return (
            f"a model's weights alone (a state dict of {count_noun(len(ckpt), 'tensor')}: no architecture, class names or "
            "preprocessing), not a ResNeXt Studio checkpoint. To start training from these weights, choose the file "
            "as Pretrained (--pretrained PATH); to classify, use a run's best.pt"
        )
    return (
        "not a ResNeXt Studio checkpoint (another program's file: it holds "
        + (", ".join(repr(k) for k in list(ckpt)[:4]) + (", …" if len(ckpt) > 4 else "") if ckpt else "an empty dict")
        + ")"
    )


def _refusal(message: str, path: str | Path | None = None) -> str:
    """The safe loader's reason in a few words (torch's own message is a paragraph about turning the safe loader
    off, which this program never does)."""
    if "Unsupported operand" in message and path is not None and runs.is_torch_legacy(path):
        return "damaged or incomplete (torch's older format)"  # (cut short: the unpickler read past its end)
    m = re.search(r"GLOBAL ([\w.]+) (?:was not an allowed global|whose module [\w.]+ is blocked)", message)
    if m:
        return f"it holds {m.group(1)} objects, which the safe loader refuses to load"
    if "Unsupported operand" in message:  # (what the file is instead, where it tells: an ONNX model …)
        return not_torch_file(path) if path is not None else "not a file saved by torch.save"
    lines = [ln.strip() for ln in message.strip().splitlines() if ln.strip()]
    return f"refused by the safe loader: {lines[-1] if lines else 'unreadable'}"


def _shape_problem(ckpt: dict[str, Any]) -> str | None:
    """What is wrong with the parts every reader relies on, or None."""
    if not isinstance(ckpt["model"], dict):
        return "its weights are not a state dict"
    try:
        n = int(ckpt["num_classes"])
        size = int(ckpt["image_size"])
    except (TypeError, ValueError):
        return "num_classes and image_size must be numbers"
    names = ckpt["class_names"]
    if not isinstance(names, (list, tuple)) or len(names) != n:
        count = len(names) if isinstance(names, (list, tuple)) else "no list of"
        return f"{count} class names for {n} classes"
    odd = [c for c in names if not isinstance(c, str) or not c]  # (" " is a folder name a class can have)
    if odd:  # (a hand-edited [1, None] loaded, and predicted None)
        return f"class name {odd[0]!r} is not a name"
    twice = sorted({str(c) for c in names if list(names).count(c) > 1})
    if twice:  # (two outputs of one name: the answer "x" would mean either)
        return f"class name{'s' if len(twice) > 1 else ''} {', '.join(map(repr, twice))} given twice"
    if not 1 <= size <= 1024:  # what DataConfig accepts; a huge size would only run the machine out of memory
        return f"image_size {size}"
    from core import models

    try:
        models.parse_arch(str(ckpt["arch"]))
    except models.ModelError:
        return f"architecture {ckpt['arch']!r} is not one this version knows"
    for key in ("mean", "std"):
        value = ckpt.get(key)
        if value is not None and not (
            isinstance(value, (list, tuple))
            and len(value) == 3
            and all(isinstance(v, (int, float)) and math.isfinite(v) for v in value)
        ):
            return f"its {key} is not three numbers"
        if key == "std" and value is not None and min(value) <= 0:  # (every answer would be NaN)
            return f"its std {list(value)} is not above 0"
    for key in ("config", "history", "best"):
        if ckpt.get(key) is not None and not isinstance(ckpt[key], dict if key != "history" else list):
            return f"its {key} is a {type(ckpt[key]).__name__}"
    config = ckpt.get("config") or {}
    for key, value in config.items():  # the sections readers look into (a hand-edited one ended in a traceback)
        if key in ("data", "model", "train", "dataset") and value is not None and not isinstance(value, dict):
            return f"its config's {key} is not a mapping ({str(value)[:40]!r})"
    root = (config.get("data") or {}).get("root")
    if root is not None and not isinstance(root, str):
        return f"its config's data.root is not a folder name ({str(root)[:40]!r})"
    odd = odd_tensor(ckpt["model"])
    if odd:
        return f"its weights are no model's: {odd}"
    broken = not_finite(ckpt["model"])
    if broken:  # saved after the training diverged: every answer would be NaN
        return f"its weights are not finite ({broken})"
    return None


MODEL_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)  # what a model's weights may be saved as


def odd_tensor(state: dict[str, Any]) -> str:
    """A tensor of a state dict that no model holds, in words ("conv1.weight is a sparse tensor", "fc.weight
    holds float8_e4m3fn numbers"), or "": a crafted file's sparse or float8 weights ended every command in a
    traceback (the finite check cannot look into them). Whole-number tensors (counters) and quantized ones pass:
    loading them says what does not fit."""
    for k, t in state.items():
        if not torch.is_tensor(t):
            continue
        if t.layout != torch.strided:
            return f"{k} is a {str(t.layout).removeprefix('torch.').removesuffix('_coo')} tensor"
        if t.is_complex() or (t.is_floating_point() and t.dtype not in MODEL_DTYPES):
            return f"{k} holds {str(t.dtype).removeprefix('torch.')} numbers"
    return ""


def not_finite(state: dict[str, Any]) -> str:
    """Where a state dict's weights hold NaN or inf ("NaN or inf in fc.weight and others"), or "" (all finite).
    Tensors odd_tensor names are not looked into."""
    broken = [
        k
        for k, t in state.items()
        if torch.is_tensor(t) and t.layout == torch.strided and t.dtype in MODEL_DTYPES and not t.isfinite().all()
    ]
    return f"NaN or inf in {broken[0]}{' and others' if len(broken) > 1 else ''}" if broken else ""


def payload(
    model: torch.nn.Module,
    arch: str,
    class_names: list[str],
    image_size: int,
    config: dict[str, Any] | None = None,
    epoch: int = 1,
    metrics: dict[str, Any] | None = None,
    cpu: bool = True,
) -> dict[str, Any]:
    """The checkpoint dict of a model: weights plus what prediction needs to repeat the preprocessing (`cpu`
    False: the weights are the model's own tensors, for a snapshot() to copy)."""
    from core import data

    return {
        "format": FORMAT,
        "model": plain_state_dict(model, cpu),
        "arch": arch,
        "num_classes": len(class_names),
        "class_names": list(class_names),
        "image_size": image_size,
        "resize_size": data.resize_size(image_size),
        "mean": list(data.IMAGENET_MEAN),
        "std": list(data.IMAGENET_STD),
        "config": dict(config or {}),
        "epoch": epoch,
        "metrics": dict(metrics or {}),
    }


def plain_state_dict(model: torch.nn.Module, cpu: bool = True) -> dict[str, torch.Tensor]:
    """The model's state dict without DDP ("module.") or torch.compile ("_orig_mod.") wrappers, copied to the CPU
    (`cpu` False: the model's tensors themselves, detached)."""
    inner = model
    for _ in range(4):
        inner = getattr(inner, "_orig_mod", inner)
        inner = (
            getattr(inner, "module", inner) if isinstance(inner, torch.nn.parallel.DistributedDataParallel) else inner
        )
    out = {}
    for k, v in inner.state_dict().items():
        for prefix in ("_orig_mod.", "module."):
            while k.startswith(prefix):
                k = k[len(prefix) :]
        out[k] = v.detach().to("cpu", copy=True) if cpu else v.detach()
    return out


def model_from_checkpoint(ckpt: dict[str, Any], device: str | torch.device = "cpu") -> torch.nn.Module:
    """Build the checkpoint's architecture, load its weights, and return it in eval mode on `device`."""
    from core import models

    model = models.build(ckpt["arch"], int(ckpt["num_classes"]))
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError:
        raise CheckpointError(
            f"the checkpoint's weights do not fit {ckpt['arch']}: {_mismatch(model.state_dict(), ckpt['model'])}"
        ) from None
    return model.to(device).eval()


def _mismatch(want: dict[str, torch.Tensor], got: dict[str, Any], limit: int = 3) -> str:
    """Which layers are missing, unexpected or of another shape (the first few of each)."""

    def few(keys: list[str]) -> str:
        return ", ".join(keys[:limit]) + (f" and {len(keys) - limit} more" if len(keys) > limit else "")

    parts = []
    missing = [k for k in want if k not in got]
    extra = [k for k in got if k not in want]
    shapes = [
        f"{k} {tuple(got[k].shape)} instead of {tuple(want[k].shape)}"
        for k in want
        if k in got and isinstance(got[k], torch.Tensor) and got[k].shape != want[k].shape
    ]
    if missing:
        parts.append(f"missing {few(missing)}")
    if extra:
        parts.append(f"unexpected {few(extra)}")
    if shapes:
        parts.append(f"shape {few(shapes)}")
    return "; ".join(parts) or "the tensors do not load"


def rng_state() -> dict[str, Any]:
    """All random generator states as tensors and plain types, so the weights-only loader accepts them."""
    import random

    import numpy as np

    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": _to_plain(random.getstate()),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what `rng_state` captured (missing parts are left alone)."""
    import random

    import numpy as np

    if "torch" in state:
        torch.set_rng_state(state["torch"].cpu())
    if "python" in state:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
    if "numpy" in state:
        n = state["numpy"]
        np.random.set_state(
            (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
        )
    if "cuda" in state and torch.cuda.is_available():
        cuda = [s.cpu() for s in state["cuda"]]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)


def _to_plain(obj: Any) -> Any:
    if isinstance(obj, tuple):
        return [_to_plain(x) for x in obj]
    return obj
