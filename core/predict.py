"""Prediction with a trained checkpoint: Predictor (top-k for paths, PIL images, arrays), Grad-CAM, CSV/JSON output."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from core import checkpoint as ckpt_mod
from core import csv_cell, data

Item = Any  # str | Path | a file object | bytes | PIL.Image.Image | numpy.ndarray

CANCELLED = "cancelled"
NO_IMAGES_IN_FOLDER = "no image files in this folder"  # the reason given for a dropped folder without images
ONLY_OVERLAYS = "no image files in this folder but Grad-CAM overlays of an earlier predict --cam (left out)"
# a runs folder dropped: its runs' curves.png are no photos (it said "no image files", beside its .png files)
ONLY_RUN_FOLDERS = "no image files in this folder but run folders of this program (checkpoints and curves, left out)"
A_RUN_FOLDER = "a run folder of this program (checkpoints and curves, no images: left out)"
NO_IMAGES_REASONS = (NO_IMAGES_IN_FOLDER, ONLY_OVERLAYS, ONLY_RUN_FOLDERS, A_RUN_FOLDER)  # a folder's, not a file's
BACKENDS = ("auto", "torch", "onnx")


@dataclass
class Prediction:
    """The answer for one input: top-k (class name, probability), or ok=False and the reason."""

    source: str
    ok: bool
    error: str | None = None
    top: list[tuple[str, float]] = field(default_factory=list)
    label: str | None = None
    confidence: float | None = None
    index: int | None = None


@dataclass
class CamResult:
    """A Grad-CAM explanation: heatmap in [0, 1] at the input image's size and a colour overlay on the image."""

    heatmap: np.ndarray  # float32 [H, W]
    overlay: Image.Image
    class_index: int
    label: str
    confidence: float
    source: str = ""


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """ "auto" → cuda, then mps, then cpu; anything else is passed to torch.device (as "cpu", "cuda:1"; "CPU" too)."""
    if isinstance(device, str):
        device = device.strip().lower() or "auto"
    if str(device) != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _source_name(item: Item, position: int) -> str:
    if isinstance(item, (str, Path)):
        return str(item)
    if isinstance(item, Image.Image):
        name = getattr(item, "filename", "") or ""
        return name or f"<image {position}>"
    if isinstance(item, np.ndarray):
        return f"<array {position}>"
    return f"<{type(item).__name__} {position}>"


class Predictor:
    """A checkpoint ready to classify images with exactly the evaluation pipeline it was trained with.

    Build it once (`from_checkpoint`) and call `predict` / `predict_iter` / `gradcam` many times; nothing is rebuilt
    per call. Batches are decoded on a background thread while the model runs on the previous one.

    A JPEG given by its path (or as a file object or its bytes) is decoded at a reduced scale as training decoded it (data.load_image's
    draft); a PIL image or an array is taken as it is, at full scale, so its probabilities may differ from its
    file's in the third decimal.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        class_names: Sequence[str],
        image_size: int,
        *,
        mean: Sequence[float] = data.IMAGENET_MEAN,
        std: Sequence[float] = data.IMAGENET_STD,
        device: str | torch.device = "cpu",
        arch: str = "",
        checkpoint_path: str | None = None,
    ) -> None:
        from core.config import DataConfig

        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.class_names = [str(c) for c in class_names]
        self.image_size = int(image_size)
        # what decode_for_size applies; a checkpoint's stored resize_size is written from the same rule
        self.resize_size = data.resize_size(self.image_size)
        self.mean = tuple(float(v) for v in mean)
        self.std = tuple(float(v) for v in std)
        self.arch = arch
        self.checkpoint_path = checkpoint_path
        self.backend = "torch"
        self._onnx_session: Any = None
        self.onnx_path: str | None = None
        self.transform = data.BatchTransform(DataConfig(image_size=self.image_size), train=False)
        # the checkpoint's own statistics win (they equal ImageNet's for every model the trainer makes)
        self.transform.mean, self.transform.std = self.mean, self.std

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "auto", backend: str = "auto") -> Predictor:
        """Load a checkpoint (weights-only; a run folder means its best.pt) and build the model, class names and
        eval pipeline it describes.

        backend: "torch" (default for "auto"), or "onnx" — a cached, parity-checked ONNX export run with onnxruntime
        on the CPU (needs the 'export' extra). "auto" means torch: an export costs seconds on first use and the
        speed-up is CPU-specific (see benchmarks/bench_predict.py).
        """
        if backend not in BACKENDS:
            raise ValueError(f"backend={backend!r}: one of {BACKENDS}")
        if os.path.isdir(path):  # a run folder: its best.pt (last.pt before it has one), as on the command line
            from core.runs import run_checkpoint

            path = run_checkpoint(path) or path
        if backend == "onnx":
            # One copy of the file for the model, the cache entry's name and the export: training replaced best.pt
            # between three reads of it, and an entry named for one version held another's export for good.
            from core.export import ExportError

            with _still_copy(path) as copy:
                try:
                    pred = cls._from_file(copy, torch.device("cpu"), shown=str(path))
                    pred._use_onnx(copy)
                except (ckpt_mod.CheckpointError, ExportError) as e:  # (said of the file given, not of the copy)
                    raise type(e)(str(e).replace(str(copy), str(path))) from None
            return pred
        return cls._from_file(Path(path), resolve_device(device), shown=str(path))

    @classmethod
    def _from_file(cls, path: Path, dev: torch.device, shown: str) -> Predictor:
        ckpt = ckpt_mod.load(path, map_location="cpu")
        try:
            model = ckpt_mod.model_from_checkpoint(ckpt, dev)
        except ckpt_mod.CheckpointError as e:
            raise ckpt_mod.CheckpointError(f"{shown}: {e}") from None
        for p in model.parameters():  # inference only; Grad-CAM needs gradients of activations, not of weights
            p.requires_grad_(False)
        image_size = int(ckpt["image_size"])
        pred = cls(
            model,
            list(ckpt["class_names"]),
            image_size,
            mean=ckpt.get("mean") or data.IMAGENET_MEAN,
            std=ckpt.get("std") or data.IMAGENET_STD,
            device=dev,
            arch=str(ckpt.get("arch", "")),
            checkpoint_path=shown,
        )
        return pred

    def _use_onnx(self, path: Path) -> None:
        """The cached export of `path` (the file this predictor's model came from), made when missing, damaged or
        not this model's (an entry an older version filled from a checkpoint replaced meanwhile)."""
        from core import export

        cache = onnx_cache_path(path)
        if not cache.is_file():
            export.export_onnx(path, cache)
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        try:
            session = ort.InferenceSession(str(cache), opts, providers=["CPUExecutionProvider"])
            if not self._same_answers(session):
                raise ValueError("another model's export")
        except Exception:  # noqa: BLE001 - a damaged cache entry, or another model's: export again
            export.export_onnx(path, cache)  # (which checks the new file against the model)
            session = ort.InferenceSession(str(cache), opts, providers=["CPUExecutionProvider"])
        self._onnx_session = session
        self.onnx_path = str(cache)
        self.backend = "onnx"

    def _same_answers(self, session: Any) -> bool:
        """Whether an ONNX session gives this model's logits (to 1e-3) on two random inputs."""
        x = torch.randn(2, 3, self.image_size, self.image_size, generator=torch.Generator().manual_seed(0))
        with torch.inference_mode():
            want = self.model(x.to(self.device)).float().cpu().numpy()
        got = session.run(None, {"input": x.numpy()})[0]
        return got.shape == want.shape and bool(np.abs(got - want).max() <= 1e-3)

    # ------------------------------------------------------------------ pipeline

    def preprocess(self, uint8_batch: torch.Tensor) -> torch.Tensor:
        """uint8 [B, 3, R, R] (any device) → float32 normalised [B, 3, S, S] on the predictor's device."""
        return self.transform(uint8_batch.to(self.device, non_blocking=self.device.type == "cuda"))

    def decode(self, item: Item) -> torch.Tensor:
        """One input → uint8 [3, R, R] (the cached/streamed form); raises data.ImageLoadError."""
        return data.load_for_model(item, self.image_size)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised float batch → logits (CPU tensor for the onnx backend)."""
        if self._onnx_session is not None:
            out = self._onnx_session.run(None, {"input": x.detach().cpu().numpy()})[0]
            return torch.from_numpy(out)
        with torch.inference_mode():
            return self.model(x)

    def _load(self, item: Item) -> tuple[torch.Tensor | None, str | None]:
        if isinstance(item, (str, Path)) and os.path.isdir(item):  # (False for a path that cannot be looked at:
            # Path.is_dir raised on "permission denied" and "file name too long", ending the whole call)
            return None, "is a folder, not an image (use expand_paths)"
        try:
            return self.decode(item), None
        except data.ImageLoadError as e:
            return None, e.reason
        except Exception as e:  # noqa: BLE001 - one bad input must not stop the others
            return None, f"{type(e).__name__}: {e}"

    # ------------------------------------------------------------------ prediction

    def predict(
        self,
        items: Iterable[Item],
        top_k: int = 5,
        batch_size: int = 32,
        progress: Callable[[int, int], None] | None = None,
        stop: Any = None,
    ) -> list[Prediction]:
        """One Prediction per input, in input order.

        Inputs that cannot be read come back as ok=False with the reason; the rest are predicted. When `stop`
        (anything with a `.stopped` attribute) is set, the batch in flight finishes and every later input comes back
        as ok=False, error="cancelled", so the list always has one entry per input.
        """
        return list(self.predict_iter(items, top_k=top_k, batch_size=batch_size, progress=progress, stop=stop))

    def predict_iter(
        self,
        items: Iterable[Item],
        top_k: int = 5,
        batch_size: int = 32,
        progress: Callable[[int, int], None] | None = None,
        stop: Any = None,
    ) -> Iterator[Prediction]:
        """Like `predict`, yielding predictions in input order as each batch finishes (for live tables)."""
        items = list(items)
        total = len(items)
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size}: must be ≥ 1")
        k = max(1, min(int(top_k), len(self.class_names)))
        starts = list(range(0, total, batch_size))
        if not starts:
            return
        pool = ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) if len(starts) > 1 else None

        def submit(start: int) -> list:
            chunk = items[start : start + batch_size]
            if pool is None:
                return [_Done(self._load(it)) for it in chunk]
            return [pool.submit(self._load, it) for it in chunk]

        done = 0
        try:
            pending = submit(starts[0])
            for bi, start in enumerate(starts):
                if stop is not None and getattr(stop, "stopped", False):
                    for i in range(start, total):
                        yield Prediction(_source_name(items[i], i), False, CANCELLED)
                    return
                loaded = [f.result() for f in pending]
                if bi + 1 < len(starts):
                    pending = submit(starts[bi + 1])  # decode the next batch while the model runs this one
                yield from self._run_batch(items, start, loaded, k)
                done += len(loaded)
                if progress is not None:
                    progress(done, total)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    def _run_batch(self, items: list, start: int, loaded: list, k: int) -> list[Prediction]:
        good = [i for i, (t, _) in enumerate(loaded) if t is not None]
        out: list[Prediction] = []
        probs = idx = None
        if good:
            x = self.preprocess(torch.stack([loaded[i][0] for i in good]))
            p = torch.softmax(self.logits(x).float(), dim=1)
            probs, idx = (t.cpu().tolist() for t in p.topk(k, dim=1))
        row = 0
        for j, (_, err) in enumerate(loaded):
            src = _source_name(items[start + j], start + j)
            if err is not None:
                out.append(Prediction(src, False, err))
                continue
            top = [(self.class_names[c], float(pv)) for c, pv in zip(idx[row], probs[row], strict=False)]
            out.append(Prediction(src, True, None, top, top[0][0], top[0][1], int(idx[row][0])))
            row += 1
        return out

    # ------------------------------------------------------------------ Grad-CAM

    def gradcam(
        self,
        item: Item,
        class_index: int | None = None,
        layer: torch.nn.Module | None = None,
        alpha: float = 0.5,
        max_side: int | None = None,
    ) -> CamResult:
        """Grad-CAM for one input: which parts of the image drove the score of `class_index` (default: top-1).

        One forward and one backward through the layers after `layer` (default: models.cam_layer, the last
        convolutional stage). The heatmap covers the whole input image; the area outside the centre crop the model
        sees is 0. `max_side`: the heat map and overlay on a copy of the image at most that many pixels on a side
        (for a view: over a 95-megapixel photo they took gigabytes); the model's input is the same either way.
        Raises data.ImageLoadError for an unreadable input.
        """
        from core import models

        u8, img = data.load_with_original(item, self.image_size, draft=max_side)
        if max_side:
            img = data.fit_within(img, max_side)  # (a new image: a PIL image given as `item` stays as it was)
        x = self.preprocess(u8.unsqueeze(0))
        target = layer if layer is not None else models.cam_layer(self.model)
        store: dict[str, torch.Tensor] = {}
        me = threading.get_ident()

        def hook(_m: torch.nn.Module, _inp: Any, out: torch.Tensor) -> torch.Tensor | None:
            if threading.get_ident() != me:  # a predict() running on another thread shares the model
                return None
            act = out.detach().requires_grad_(True)  # graph starts here: backward only runs through the head
            store["act"] = act
            return act

        handle = target.register_forward_hook(hook)
        try:
            with torch.inference_mode(False), torch.enable_grad():
                logits = self.model(x.clone())
                probs = torch.softmax(logits.detach().float(), dim=1)[0]
                c = int(probs.argmax()) if class_index is None else int(class_index)
                if not 0 <= c < logits.shape[1]:
                    raise ValueError(f"class_index={class_index}: must be 0..{logits.shape[1] - 1}")
                if "act" not in store:
                    raise RuntimeError("Grad-CAM layer did not run in the forward pass")
                logits[0, c].backward()
        finally:
            handle.remove()
        act, grad = store["act"].detach()[0], store["act"].grad[0]
        if act.shape[-1] * act.shape[-2] == 1:  # one cell: the "heat map" would tint the whole image evenly
            need = 64 if self.image_size < 64 else 2 * self.image_size  # ImageNet-style nets shrink 32-fold
            raise ValueError(
                f"this model sees {self.image_size} px images as a single cell in its last layer, so Grad-CAM "
                f"cannot show where it looked (train it at {need} px or more to see that)"
            )
        weights = grad.float().mean(dim=(1, 2))
        cam = torch.relu((weights[:, None, None] * act.float()).sum(0)).cpu().numpy()
        heat = _place_heatmap(cam, img.size, self.image_size, self.resize_size)
        return CamResult(
            heat, overlay_heatmap(img, heat, alpha), c, self.class_names[c], float(probs[c]), _source_name(item, 0)
        )


class _Done:
    """A finished value with the Future interface (for the single-batch path without a thread pool)."""

    def __init__(self, value: Any) -> None:
        self._value = value

    def result(self) -> Any:
        return self._value


def _place_heatmap(cam: np.ndarray, size: tuple[int, int], image_size: int, resize_size: int) -> np.ndarray:
    """Map a CAM over the S×S model input back onto the original W×H image (0 outside the crop), scaled to [0, 1]."""
    w, h = size
    peak = float(cam.max()) if cam.size else 0.0
    cam = (cam / peak if peak > 0 else np.zeros_like(cam)).astype(np.float32)
    side = image_size * min(w, h) / resize_size  # the crop's side in original pixels
    left, top = (w - side) / 2, (h - side) / 2
    x0, y0 = max(0, int(round(left))), max(0, int(round(top)))
    x1, y1 = min(w, int(round(left + side))), min(h, int(round(top + side)))
    heat = np.zeros((h, w), dtype=np.float32)
    if x1 > x0 and y1 > y0:
        up = Image.fromarray(cam).resize((x1 - x0, y1 - y0), Image.BILINEAR)
        heat[y0:y1, x0:x1] = np.asarray(up, dtype=np.float32)
    return np.clip(heat, 0.0, 1.0)


def _jet_lut() -> np.ndarray:
    x = np.linspace(0.0, 1.0, 256)
    rgb = [np.clip(1.5 - np.abs(4 * x - c), 0, 1) for c in (3, 2, 1)]
    return (np.stack(rgb, axis=1) * 255 + 0.5).astype(np.uint8)


_JET = _jet_lut()


def colorize(heatmap: np.ndarray) -> Image.Image:
    """A [H, W] map in [0, 1] as a jet-coloured RGB image (blue = 0, red = 1)."""
    idx = np.empty(heatmap.shape, dtype=np.uint8)
    np.multiply(np.clip(heatmap, 0, 1), 255, out=idx, casting="unsafe")
    img = Image.fromarray(idx)
    img.putpalette(_JET.tobytes())  # palette lookup in C: much faster than indexing a [H, W, 3] array
    return img.convert("RGB")


def overlay_heatmap(img: Image.Image, heatmap: np.ndarray, alpha: float = 0.5) -> Image.Image:
    """The colour-mapped heatmap blended over the image at a constant `alpha` (no threshold)."""
    return Image.blend(img.convert("RGB"), colorize(heatmap), alpha)


# ---------------------------------------------------------------------- inputs


def _is_skipped(name: str) -> bool:
    """The data scanner's rule: hidden (dot) names and system clutter (__MACOSX, Thumbs.db, …)."""
    return name.startswith(".") or name.lower() in data.SKIP_NAMES


def expand_paths(
    paths: Iterable[str | Path],
    recursive: bool = True,
    ignored: list[str] | None = None,
    overlays: list[str] | None = None,
    run_folders: list[str] | None = None,
) -> tuple[list[str], list[tuple[str, str]]]:
    """Files and folders → (image files, problems).

    Folders are walked (sorted; recursively unless recursive=False) for files with an image extension, skipping
    hidden files/folders, __MACOSX and Thumbs.db as the data scanner does. Files named explicitly are kept whatever
    their extension or existence, so `predict` reports why each one fails. problems holds (folder, reason) for
    folders that hold no images or cannot be read, and (file, reason) for photos in them of a type not read (HEIC).
    A file reached twice is listed once. `ignored`, when given, receives the other files found in the folders (not
    an image type), so that they can be counted to the user.
    Grad-CAM overlays this program wrote (`predict --cam` into a folder it reads) are left out of the folders'
    images, into `overlays` when given: each run classified the last one's overlays and piled up more. Run folders
    of this program inside them (checkpoints and curves.png) are left out too, into `run_folders` when given (else
    their files into `ignored`), as the data scan leaves them out.
    """
    files: list[str] = []
    other: list[str] = []
    mine: list[str] = []  # overlays of ours
    problems: list[tuple[str, str]] = []
    exts = {e.lower() for e in data.IMAGE_EXTENSIONS}
    for raw in paths:
        p = Path(raw)
        if not os.path.isdir(p):  # (a file, or a path that cannot be looked at: its row says why)
            files.append(str(raw))
            continue
        listed: list[str] = []
        found: list[str] = []
        mine_before = len(mine)
        runs_here: list[str] = []
        errors: list[OSError] = []
        if recursive:
            for root, dirs, names in data.walk(p, onerror=errors.append):  # links followed, loops not
                if data.is_run_folder(root, names):  # its curves.png is no photo to classify
                    runs_here.append(root)
                    if run_folders is not None:
                        run_folders.append(root)
                    else:
                        other += [os.path.join(root, n) for n in names if not _is_skipped(n)]
                    dirs[:] = []
                    continue
                listed += [os.path.join(root, n) for n in sorted(names) if not _is_skipped(n)]
        else:
            try:
                listed = [str(c) for c in sorted(p.iterdir()) if c.is_file() and not _is_skipped(c.name)]
            except OSError as e:
                errors.append(e)
        unread = 0
        for f in listed:
            if is_cam_overlay(f):
                mine.append(f)
            elif why := data.unread_photo(f):  # a photo, named with what to do (it was an "other file")
                problems.append((f, why))
                unread += 1
            else:
                (found if os.path.splitext(f)[1].lower() in exts else other).append(f)
        for e in errors:
            problems.append((str(getattr(e, "filename", None) or raw), f"cannot read folder: {e.strerror or e}"))
        if not found and not errors and not unread:
            if runs_here:  # (the folder itself, or run folders in it: their files are left out, not "no images")
                why = A_RUN_FOLDER if runs_here[0] == str(p) else ONLY_RUN_FOLDERS
            else:
                why = ONLY_OVERLAYS if len(mine) > mine_before else NO_IMAGES_IN_FOLDER
            problems.append((str(raw), why))
        files += found
    seen: set[str] = set()  # a file named both alone and through its folder is classified once (first place kept)

    def once(paths: list[str]) -> list[str]:
        return [f for f in paths if not ((key := os.path.normcase(os.path.abspath(f))) in seen or seen.add(key))]

    files = once(files)
    problems = list(dict.fromkeys(problems))  # (a folder given twice: its HEIC photos named once)
    named = {os.path.normcase(os.path.abspath(p)) for p, _ in problems}  # (and once when also given alone)
    files = [f for f in files if os.path.normcase(os.path.abspath(f)) not in named]
    if ignored is not None:
        ignored += once(other)
    if overlays is not None:
        overlays += once(mine)
    return files, problems


# ---------------------------------------------------------------------- output


def prediction_to_dict(p: Prediction) -> dict[str, Any]:
    """A JSON-ready dict for one prediction."""
    return {
        "source": p.source,
        "ok": p.ok,
        "error": p.error,
        "label": p.label,
        "confidence": p.confidence,
        "index": p.index,
        "top": [{"label": n, "probability": pr} for n, pr in p.top],
    }


def write_csv(predictions: Iterable[Prediction], path: str | Path, top_k: int) -> None:
    """Write predictions as CSV (csv_text), atomically."""
    text = csv_text(predictions, top_k)
    _atomic_write(Path(path), text.encode("utf-8", errors="surrogateescape"))  # a name's own bytes


def csv_text(predictions: Iterable[Prediction], top_k: int) -> str:
    """Predictions as CSV (source, ok, error, label, confidence, top1, prob1, …). A model with fewer classes than
    `top_k` gets as many top columns as it has classes (none always empty). A name that a spreadsheet would take
    for a formula (a file or class folder named "=HYPERLINK(…)", "-x", "@x") is written after a ' so that it
    shows as the text it is, as OWASP advises for CSV files; a plain number ("-1", "+1", "-0.5") runs nothing and
    is written as it is, so the common -1/+1 labels read back unchanged."""
    predictions = list(predictions)
    known = max((len(p.top) for p in predictions if p.ok), default=0)
    top_k = min(top_k, known) if known else top_k
    header = ["source", "ok", "error", "label", "confidence"]
    for i in range(1, top_k + 1):
        header += [f"top{i}", f"prob{i}"]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    for p in predictions:
        row: list[Any] = [
            csv_cell(p.source),
            "yes" if p.ok else "no",
            csv_cell(p.error or ""),
            csv_cell(p.label or ""),
            "" if p.confidence is None else f"{p.confidence:.6f}",
        ]
        for i in range(top_k):
            row += [csv_cell(p.top[i][0]), f"{p.top[i][1]:.6f}"] if i < len(p.top) else ["", ""]
        w.writerow(row)
    return buf.getvalue()


def cam_file_name(source: str | Path) -> str:
    """`<image stem>_gradcam.png`; in-memory sources ("<pasted image>") become "pasted_image_gradcam.png"."""
    name = str(source)
    stem = Path(name).stem if not name.startswith("<") else name.strip("<>").replace(" ", "_")
    while len(stem.encode("utf-8", "surrogateescape")) > 180:  # file names end at 255 bytes: room for the suffix,
        stem = stem[:-1]  # a _2 and the temporary file's own suffix while it is written
    return f"{stem}_gradcam.png"


def _text_of_name(name: str) -> str:
    """A file name as text a PNG can hold: a name whose bytes are not UTF-8 (kept by Python as lone surrogates)
    could not be written, and its overlay was lost; those bytes are written as \\xff."""
    try:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        return name.encode("utf-8", "backslashreplace").decode("utf-8")


OVERLAY_MAX_SIDE = 4096  # px: `predict --cam` draws a photo's overlay on a copy at most this size (a 15000 px
# photo's took 4 GB and Pillow warned of a decompression bomb about the overlay itself)


def save_cam_overlay(
    cam: CamResult, out_dir: str | Path, source: str | Path | None = None, file_name: str | None = None
) -> Path:
    """Save the overlay as `<out_dir>/<file_name or cam_file_name(source)>` (overwriting); returns its path. The PNG
    carries a text chunk that `is_cam_overlay` finds: an overlay may replace an older overlay, never a user's file."""
    from PIL.PngImagePlugin import PngInfo

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / (file_name or cam_file_name(source if source is not None else cam.source))
    info = PngInfo()
    info.add_text("Software", CAM_SOFTWARE)
    info.add_text("Source", _text_of_name(str(cam.source if source is None else source)))
    buf = io.BytesIO()
    cam.overlay.save(buf, format="PNG", pnginfo=info)
    _atomic_write(path, buf.getvalue())
    return path


CAM_SOFTWARE = data.CAM_SOFTWARE  # (the scan leaves such overlays out of a data set's images)
is_cam_overlay = data.is_cam_overlay


def _file_id(path: str | Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def cam_names(sources: list, out_dir: str | Path, inputs: list) -> dict[str, str]:
    """A file name in `out_dir` for each source's overlay: `<stem>_gradcam.png`, or `<stem>_2_gradcam.png` … when
    two sources share a stem, or when the name is taken by a file that is no overlay of ours or is an input (a
    user's own photo_gradcam.png, or an overlay being classified again, was written over)."""
    out_dir = Path(out_dir)
    # the inputs as files (device, inode): Photo.png is photo.png on a case-insensitive disk
    keep = {i for i in map(_file_id, inputs) if i is not None}
    taken: set[str] = set()
    names: dict[str, str] = {}
    for source in sources:
        name = cam_file_name(source)
        stem, n = name[: -len("_gradcam.png")], 1
        while True:
            target = out_dir / name
            mine = name.casefold() in taken  # (Photo.jpg and photo.jpg are one file on Windows and macOS)
            if not mine and not target.exists():
                break
            if not mine and _file_id(target) not in keep and is_cam_overlay(target):
                break
            n += 1
            name = f"{stem}_{n}_gradcam.png"
        taken.add(name.casefold())
        names[str(source)] = name
    return names


def _atomic_write(path: Path, payload: bytes) -> None:
    from core.runs import atomic_file

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path, "wb") as f:
        f.write(payload)


# ---------------------------------------------------------------------- ONNX cache


def cache_dir() -> Path:
    """Where exported ONNX files for the onnx backend live: $RESNEXT_STUDIO_CACHE or the user cache dir."""
    env = os.environ.get("RESNEXT_STUDIO_CACHE")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("resnext-studio", appauthor=False)) / "onnx"


@contextlib.contextmanager
def _still_copy(path: str | Path) -> Iterator[Path]:
    """A copy of the file at `path` in the temporary folder, removed after use (a file training replaces now and
    then, read once; the temporary folder, where a copy a killed process left is not kept for ever)."""
    fd, name = tempfile.mkstemp(prefix="resnext-studio-checkpoint-", suffix=".pt")
    os.close(fd)
    try:
        try:
            shutil.copyfile(path, name)
        except OSError:  # (no such file, a folder, a pipe, no permission: said as checkpoint.load says it)
            ckpt_mod.load(path)
            raise
        yield Path(name)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)


def onnx_cache_path(checkpoint_path: str | Path) -> Path:
    """The cached ONNX file for a checkpoint, keyed by the checkpoint's content hash."""
    h = hashlib.sha256()
    with open(checkpoint_path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return cache_dir() / f"{h.hexdigest()[:24]}.onnx"
