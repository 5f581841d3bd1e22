"""Predictor: same answers as the model through the eval pipeline, per-item errors, inputs, stop, Grad-CAM."""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core import checkpoint, data, models
from core.predict import (
    CANCELLED,
    Predictor,
    expand_paths,
    is_cam_overlay,
    onnx_cache_path,
    prediction_to_dict,
    save_cam_overlay,
    write_csv,
)

ARCH = "resnext11_4x8d"
SIZE = 32
CLASSES = ["apple", "banana", "cherry"]


def make_checkpoint(
    path: Path,
    arch: str = ARCH,
    classes=CLASSES,
    image_size: int = SIZE,
    seed: int = 0,
    model: torch.nn.Module | None = None,
) -> Path:
    torch.manual_seed(seed)
    model = model if model is not None else models.build(arch, len(classes))
    checkpoint.save(path, checkpoint.payload(model, arch, list(classes), image_size))
    return path


def make_images(folder: Path, n: int = 5, fmt: str = "JPEG") -> list[Path]:
    rng = np.random.default_rng(7)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        w, h = 40 + 13 * i, 60 - 5 * i
        arr = (rng.random((h, w, 3)) * 255).astype(np.uint8)
        arr[: h // 2, : w // 2] = (40 * i, 255 - 40 * i, 128)
        p = folder / f"img{i}.{'jpg' if fmt == 'JPEG' else 'png'}"
        Image.fromarray(arr).save(p, format=fmt)
        out.append(p)
    return out


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "best.pt")


@pytest.fixture(scope="module")
def predictor(ckpt) -> Predictor:
    return Predictor.from_checkpoint(ckpt, device="cpu")


def reference_probs(ckpt_path: Path, paths) -> torch.Tensor:
    """The model run by hand: load_image → decode_for_size → BatchTransform(eval) → softmax."""
    from core.config import DataConfig

    c = checkpoint.load(ckpt_path)
    model = checkpoint.model_from_checkpoint(c, "cpu")
    tf = data.BatchTransform(DataConfig(image_size=c["image_size"]), train=False)
    x = torch.stack([data.load_for_model(p, c["image_size"]) for p in paths])
    with torch.no_grad():
        return torch.softmax(model(tf(x)), dim=1)


def test_predict_matches_the_model_through_the_eval_pipeline(ckpt, predictor, tmp_path):
    paths = make_images(tmp_path, 5)
    ref = reference_probs(ckpt, paths)
    for bs in (32, 2):  # one batch, and several batches decoded on the background thread
        preds = predictor.predict(paths, top_k=3, batch_size=bs)
        assert [p.source for p in preds] == [str(p) for p in paths]
        assert all(p.ok for p in preds)
        for p, r in zip(preds, ref, strict=True):
            assert p.index == int(r.argmax())
            assert p.label == CLASSES[p.index] == p.top[0][0]
            assert p.confidence == pytest.approx(float(r.max()), abs=1e-5)
            assert [n for n, _ in p.top] == [CLASSES[i] for i in r.argsort(descending=True).tolist()]
            assert sum(pr for _, pr in p.top) == pytest.approx(1.0, abs=1e-5)


def test_predict_matches_engine_evaluate(ckpt, predictor, tmp_path):
    engine = pytest.importorskip("core.engine")
    root = tmp_path / "set"
    for i, name in enumerate(CLASSES):
        make_images(root / name, 3 + i)
    index = data.scan(root)
    ev = engine.evaluate(str(ckpt), index, split="all", device="cpu")
    rows = ev["predictions"]
    assert len(rows) == len(index.samples)
    by_path = {r["path"]: r["predicted"] for r in rows}
    preds = predictor.predict([s.path for s in index.samples])
    assert {p.source: p.label for p in preds} == by_path


def test_good_and_bad_files_come_back_in_input_order(predictor, tmp_path):
    good = make_images(tmp_path / "good", 2)
    text = tmp_path / "notes.jpg"
    text.write_text("this is not a picture")
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(good[0].read_bytes()[:300])
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    missing = tmp_path / "missing.jpg"
    items = [good[0], missing, text, truncated, good[1], empty, tmp_path / "good"]
    preds = predictor.predict(items, top_k=2)
    assert [p.source for p in preds] == [str(i) for i in items]
    assert [p.ok for p in preds] == [True, False, False, False, True, False, False]
    errors = {Path(p.source).name: p.error for p in preds if not p.ok}
    assert "not found" in errors["missing.jpg"]
    assert "not an image" in errors["notes.jpg"] or "identify" in errors["notes.jpg"]
    assert "truncated" in errors["cut.jpg"]
    assert "empty" in errors["empty.png"]
    assert "folder" in errors["good"]
    for p in preds:
        assert (p.label is None) == (not p.ok) and (p.top == []) == (not p.ok)


def test_a_path_that_cannot_be_looked_at_gets_its_own_row(predictor, tmp_path):
    """Path.is_dir raised on "file name too long" (and "permission denied"): one such path ended the whole call,
    from the app and `predict`, with no answer for the good images beside it."""
    good = make_images(tmp_path / "good", 1)
    long = tmp_path / ("a" * 300 + ".jpg")
    inside_a_file = good[0] / "x.jpg"
    files, problems = expand_paths([good[0], long, inside_a_file])
    assert files == [str(good[0]), str(long), str(inside_a_file)] and problems == []
    preds = predictor.predict(files)
    assert [p.ok for p in preds] == [True, False, False]
    assert preds[1].error == "file name too long for the file system"
    assert preds[2].error == "not found: a part of its path is a file, not a folder"


def test_pil_images_and_arrays_give_the_same_answer_as_the_file(predictor, tmp_path):
    paths = make_images(tmp_path, 3, fmt="PNG")  # lossless, so the file and the array hold the same pixels
    pil = [Image.open(p).convert("RGB") for p in paths]
    arrays = [np.asarray(im) for im in pil]
    gray = np.asarray(pil[0].convert("L"))
    by_file = predictor.predict(paths)
    by_pil = predictor.predict(pil)
    by_array = predictor.predict(arrays + [gray])
    for f, p, a in zip(by_file, by_pil, by_array, strict=False):
        assert f.index == p.index == a.index
        assert f.confidence == pytest.approx(p.confidence, abs=1e-6) == pytest.approx(a.confidence, abs=1e-6)
    assert by_array[3].ok and by_array[3].source == "<array 3>"
    bad = predictor.predict([np.zeros((4, 4, 7), np.uint8)])[0]
    assert not bad.ok and bad.error


def test_a_files_bytes_or_file_object_give_the_same_answer_as_its_path(predictor, tmp_path):
    """The docstring offered bytes: they came back "corrupt image (embedded null byte)", a bytearray as an
    AttributeError."""
    import io

    path = make_images(tmp_path, 1)[0]
    raw = path.read_bytes()
    preds = predictor.predict([path, raw, bytearray(raw), io.BytesIO(raw)], top_k=3)
    assert all(p.ok for p in preds), [p.error for p in preds]
    assert all(p.top == preds[0].top for p in preds)
    assert not predictor.predict([b"not a picture"])[0].ok


def test_top_k_is_clamped_and_sorted(predictor, tmp_path):
    p = predictor.predict(make_images(tmp_path, 1), top_k=10)[0]
    assert len(p.top) == len(CLASSES)
    probs = [pr for _, pr in p.top]
    assert probs == sorted(probs, reverse=True)
    assert len(predictor.predict(make_images(tmp_path, 1), top_k=1)[0].top) == 1


class _Stop:
    stopped = False


def test_progress_stop_and_live_iteration(predictor, tmp_path):
    paths = make_images(tmp_path, 7)
    calls = []
    preds = predictor.predict(paths, batch_size=3, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(3, 7), (6, 7), (7, 7)]
    assert all(p.ok for p in preds)

    stop = _Stop()
    it = predictor.predict_iter(paths, batch_size=3, stop=stop)
    first = [next(it) for _ in range(3)]  # the first batch arrives before the rest is computed
    stop.stopped = True
    rest = list(it)
    assert all(p.ok for p in first)
    assert len(first) + len(rest) == 7
    assert [p.source for p in first + rest] == [str(p) for p in paths]
    assert all(not p.ok and p.error == CANCELLED for p in rest)


def test_expand_paths_leaves_run_folders_out_as_the_scanner_does(tmp_path):
    """A runs folder kept inside the photos: predict classified each run's curves.png as a photo."""
    root = tmp_path / "photos"
    run = root / "runs" / "20260101-000000-resnext11_2x4d-photos"
    run.mkdir(parents=True)
    (run / "status.json").write_text(json.dumps({"status": "completed"}))
    (run / "config.json").write_text(json.dumps({"model": {"arch": "resnext11_2x4d"}}))
    (run / "curves.png").write_bytes(b"x")
    (root / "a.jpg").write_bytes(b"x")
    found: list[str] = []
    files, problems = expand_paths([root], run_folders=found)
    assert files == [str(root / "a.jpg")] and problems == [] and found == [str(run)]
    ignored: list[str] = []
    files, _ = expand_paths([root], ignored=ignored)  # (the app: counted with the other files left out)
    assert files == [str(root / "a.jpg")] and str(run / "curves.png") in ignored


def test_a_folder_of_run_folders_alone_says_they_were_left_out_not_that_it_holds_no_images(tmp_path):
    """A runs folder given: "no image files in this folder", beside the runs' curves.png it had left out."""
    from core.predict import A_RUN_FOLDER, NO_IMAGES_IN_FOLDER, ONLY_RUN_FOLDERS

    runs = tmp_path / "runs"
    for name in ("20260101-000000-resnext11_2x4d-photos", "20260102-000000-resnext11_2x4d-photos"):
        run = runs / name
        run.mkdir(parents=True)
        (run / "status.json").write_text(json.dumps({"status": "completed"}))
        (run / "config.json").write_text(json.dumps({"model": {"arch": "resnext11_2x4d"}}))
        Image.new("RGB", (4, 4)).save(run / "curves.png")
    (tmp_path / "empty").mkdir()
    for found in (None, []):  # (the app counts their files among the other files; the command line names them)
        files, problems = expand_paths([runs, run, tmp_path / "empty"], run_folders=found)
        assert files == []
        assert problems == [
            (str(runs), ONLY_RUN_FOLDERS),
            (str(run), A_RUN_FOLDER),
            (str(tmp_path / "empty"), NO_IMAGES_IN_FOLDER),  # (one with nothing in it: as before)
        ]
    assert ONLY_RUN_FOLDERS.startswith(NO_IMAGES_IN_FOLDER) and "run folders" in ONLY_RUN_FOLDERS


def test_a_heic_photo_is_named_with_what_to_do_not_an_other_file_or_not_an_image(tmp_path):
    """iPhone photos: in a folder they were counted among "other files ignored", alone "not an image"."""
    folder = tmp_path / "phone"
    folder.mkdir()
    heic = folder / "IMG_0001.HEIC"
    heic.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64))
    ignored: list[str] = []
    files, problems = expand_paths([folder, folder, heic], ignored=ignored)  # (also given alone: named once)
    want = "a HEIC image, a type not read: convert it to JPEG or PNG"
    assert files == [] and ignored == [] and problems == [(str(heic), want)]  # (not "no images in folder" too)
    with pytest.raises(data.ImageLoadError, match=f"IMG_0001.HEIC: {want}$"):
        data.load_image(heic)


def test_expand_paths_walks_folders_like_the_scanner(tmp_path):
    root = tmp_path / "photos"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / ".hidden").mkdir()
    (root / "__MACOSX").mkdir()
    for rel in (
        "a.jpg",
        "sub/b.PNG",
        "sub/deeper/c.webp",
        ".hidden/d.jpg",
        "__MACOSX/e.jpg",
        ".f.jpg",
        "notes.txt",
        "Thumbs.db",
    ):
        (root / rel).write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    explicit = tmp_path / "readme.txt"
    explicit.write_text("x")
    ignored: list[str] = []
    files, problems = expand_paths(
        [root, explicit, tmp_path / "missing.jpg", tmp_path / "empty", root], ignored=ignored
    )
    names = [Path(f).name for f in files]
    assert names == ["a.jpg", "b.PNG", "c.webp", "readme.txt", "missing.jpg"]
    assert ignored == [str(root / "notes.txt")]  # a folder's other files, once (not Thumbs.db, not hidden ones)
    assert problems == [(str(tmp_path / "empty"), "no image files in this folder")]
    flat, _ = expand_paths([root], recursive=False)
    assert [Path(f).name for f in flat] == ["a.jpg"]
    # a file named on its own and again through its folder (or twice): once, where it came first
    twice, _ = expand_paths([root / "sub" / "b.PNG", root, root / "a.jpg", root / "sub" / ".." / "a.jpg"])
    assert [Path(f).name for f in twice] == ["b.PNG", "a.jpg", "c.webp"]
    # an overlay this program wrote into a folder it reads is no photo: left out (and counted), not classified
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    from core.predict import CAM_SOFTWARE

    mark = PngInfo()
    mark.add_text("Software", CAM_SOFTWARE)
    Image.new("RGB", (4, 4)).save(root / "a_gradcam.png", pnginfo=mark)
    Image.new("RGB", (4, 4)).save(root / "b_gradcam.png")  # (the user's own file of such a name is a photo)
    overlays: list[str] = []
    files, _ = expand_paths([root], overlays=overlays)
    assert overlays == [str(root / "a_gradcam.png")] and str(root / "b_gradcam.png") in files
    assert str(root / "a_gradcam.png") not in files


def test_csv_and_json_output(predictor, tmp_path):
    paths = make_images(tmp_path, 2)
    preds = predictor.predict(paths + [tmp_path / "missing.jpg"], top_k=2)
    out = tmp_path / "out" / "preds.csv"
    write_csv(preds, out, top_k=2)
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["source"] for r in rows] == [p.source for p in preds]
    assert rows[0]["ok"] == "yes" and rows[0]["label"] == preds[0].label and rows[0]["top2"] == preds[0].top[1][0]
    assert float(rows[0]["prob1"]) == pytest.approx(preds[0].confidence, abs=1e-6)
    assert rows[2]["ok"] == "no" and "not found" in rows[2]["error"] and rows[2]["top1"] == ""
    d = json.loads(json.dumps(prediction_to_dict(preds[0])))
    assert d["label"] == preds[0].label and d["top"][0]["label"] == preds[0].label
    assert not [f for f in os.listdir(out.parent) if f.endswith(".tmp")]
    classes = len(predictor.class_names)
    write_csv(predictor.predict(paths, top_k=classes + 3), out, top_k=classes + 3)  # more than the model knows
    header = out.read_text(encoding="utf-8").splitlines()[0].split(",")
    assert f"top{classes}" in header and f"top{classes + 1}" not in header  # no columns that are always empty


def test_a_csv_cell_a_spreadsheet_would_run_as_a_formula_is_text():
    """A class folder named '=HYPERLINK("http://x","open")' (or a file "=cmd.jpg" given by a relative path) went
    into the table as a formula that Excel runs."""
    from core.predict import Prediction, csv_text

    formula = '=HYPERLINK("http://x","open")'
    preds = [
        Prediction("=cmd.jpg", True, label=formula, index=0, confidence=0.9, top=[(formula, 0.9), ("+1", 0.1)]),
        Prediction("photos/cat.jpg", True, label="cat", index=1, confidence=0.8, top=[("cat", 0.8), ("-", 0.2)]),
    ]
    rows = list(csv.reader(csv_text(preds, top_k=2).splitlines()))
    assert rows[1][:4] == ["'=cmd.jpg", "yes", "", "'" + formula] and rows[1][5] == "'" + formula
    assert rows[1][7] == "+1" and rows[2][0] == "photos/cat.jpg" and rows[2][3] == "cat" and rows[2][7] == "'-"
    for name, written in (("-1", "-1"), ("-0.5", "-0.5"), ("+2e3", "+2e3"), ("-1+2", "'-1+2"), ("-1)", "'-1)")):
        one = Prediction("a.jpg", True, label=name, index=0, confidence=1.0, top=[(name, 1.0)])  # (a number runs
        assert list(csv.reader(csv_text([one], top_k=1).splitlines()))[1][3] == written  # nothing; "-1+2" would)


def test_from_checkpoint_rejects_a_bad_file(tmp_path):
    bad = tmp_path / "x.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(checkpoint.CheckpointError, match="x.pt"):
        Predictor.from_checkpoint(bad)
    with pytest.raises(ValueError, match="backend"):
        Predictor.from_checkpoint(bad, backend="tensorrt")


def test_a_run_folder_means_its_best_checkpoint(ckpt, predictor):
    from_folder = Predictor.from_checkpoint(ckpt.parent, device="cpu")  # (it said "no such checkpoint file")
    assert from_folder.class_names == predictor.class_names
    assert all(
        torch.equal(a, b)
        for a, b in zip(from_folder.model.state_dict().values(), predictor.model.state_dict().values(), strict=True)
    )


# ---------------------------------------------------------------------------------------------- Grad-CAM


def test_gradcam_map_covers_the_input_image(predictor, tmp_path):
    img = Image.fromarray((np.random.default_rng(0).random((45, 80, 3)) * 255).astype(np.uint8))
    cam = predictor.gradcam(img)
    assert cam.heatmap.shape == (45, 80) and cam.heatmap.dtype == np.float32
    assert cam.heatmap.min() >= 0.0 and cam.heatmap.max() <= 1.0
    assert cam.overlay.size == (80, 45) and cam.overlay.mode == "RGB"
    top = predictor.predict([img])[0]
    assert cam.class_index == top.index and cam.label == top.label
    assert cam.confidence == pytest.approx(top.confidence, abs=1e-5)
    # the model sees only the centre 45×45 crop: the side bands carry no heat
    assert cam.heatmap[:, :15].max() == 0 and cam.heatmap[:, -15:].max() == 0
    other = predictor.gradcam(img, class_index=(top.index + 1) % 3)
    assert other.class_index == (top.index + 1) % 3
    with pytest.raises(ValueError, match="class_index"):
        predictor.gradcam(img, class_index=7)
    path = save_cam_overlay(cam, tmp_path / "cams", "/somewhere/photo.jpg")
    assert path == tmp_path / "cams" / "photo_gradcam.png"
    assert Image.open(path).size == (80, 45)
    # a name whose bytes are not UTF-8: its overlay could not be written ("surrogates not allowed")
    odd = os.fsdecode(b"/somewhere/bad\xff\xfename.jpg")
    path = save_cam_overlay(cam, tmp_path / "cams", odd)
    assert path.name == os.fsdecode(b"bad\xff\xfename_gradcam.png") and is_cam_overlay(path)
    assert Image.open(path).text["Source"] == "/somewhere/bad\\xff\\xfename.jpg"
    with pytest.raises(data.ImageLoadError):
        predictor.gradcam(tmp_path / "missing.jpg")
    # for a view: the map and overlay on a smaller copy, the same answer, the picture given left as it was
    small = predictor.gradcam(img, max_side=40)
    assert small.overlay.size == (40, 22) and small.heatmap.shape == (22, 40) and img.size == (80, 45)
    assert small.class_index == cam.class_index and small.confidence == pytest.approx(cam.confidence)
    assert small.heatmap[:, :7].max() == 0 and small.heatmap[:, -7:].max() == 0 and small.heatmap.max() > 0.5
    assert predictor.gradcam(img, max_side=500).overlay.size == (80, 45)  # (never enlarged)


def _colour_detector_model() -> torch.nn.Module:
    """A hand-wired CIFAR-style ResNeXt: class 0's logit is the mean of a 'red here' map, class 1's of 'blue here'.

    The stem's channel 0 computes R - B - 1 and channel 1 B - R - 1 at each pixel; every residual branch is zero and
    the shortcuts pass those two channels through (subsampling), so the last stage holds the two maps and the head
    averages them. Grad-CAM must therefore light up exactly where the red (class 0) or blue (class 1) paint is.
    """
    model = models.build(ARCH, 2)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d | torch.nn.Linear):
                m.weight.zero_()
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, torch.nn.BatchNorm2d):
                m.reset_parameters()
                m.reset_running_stats()
        model.conv1.weight[0, 0, 1, 1], model.conv1.weight[0, 2, 1, 1] = 1.0, -1.0
        model.conv1.weight[1, 2, 1, 1], model.conv1.weight[1, 0, 1, 1] = 1.0, -1.0
        model.bn1.bias[:2] = -1.0  # a threshold, so grey and dark pixels excite neither detector
        for stage in (model.layer1, model.layer2, model.layer3):
            shortcut = stage[0].downsample[0]
            shortcut.weight[0, 0, 0, 0] = shortcut.weight[1, 1, 0, 0] = 1.0
        model.fc.weight[0, 0] = model.fc.weight[1, 1] = 1.0
    return model.eval()


def test_gradcam_says_when_the_last_layer_is_a_single_cell(tmp_path):
    """ResNet-style nets shrink 32-fold: at 32 px the map is 1×1 and would tint the whole image evenly."""
    pred = Predictor.from_checkpoint(make_checkpoint(tmp_path / "r.pt", arch="resnet18", image_size=32), device="cpu")
    image = make_images(tmp_path / "in", 1)[0]
    assert pred.predict([image])[0].ok  # the prediction itself stands
    with pytest.raises(ValueError, match=r"single cell in its last layer.*train it at 64 px or more"):
        pred.gradcam(image)


def test_gradcam_peaks_on_the_region_that_decides_the_class(tmp_path):
    """On a non-square photo (two crops, R=110, S=96) the map must sit on the paint of the class asked about."""
    ckpt_path = make_checkpoint(
        tmp_path / "colours.pt", classes=["red", "blue"], image_size=96, model=_colour_detector_model()
    )
    pred = Predictor.from_checkpoint(ckpt_path, device="cpu")
    arr = (np.random.default_rng(0).random((120, 160, 1)) * 80).astype(np.uint8).repeat(3, axis=2)  # grey noise
    red, blue = (20, 44, 40, 64), (78, 94, 98, 114)  # y0, y1, x0, x1 in the original image; both inside the crop
    arr[red[0] : red[1], red[2] : red[3]] = (230, 30, 30)
    arr[blue[0] : blue[1], blue[2] : blue[3]] = (30, 30, 230)
    top = pred.predict([arr])[0]
    assert top.label == "red"  # the red square is larger
    for cls, (y0, y1, x0, x1) in ((None, red), (1, blue)):
        cam = pred.gradcam(arr, class_index=cls)
        h = cam.heatmap
        assert h.shape == (120, 160)
        py, px = np.unravel_index(h.argmax(), h.shape)
        assert y0 - 4 <= py < y1 + 4 and x0 - 4 <= px < x1 + 4, (cam.label, (py, px))
        away = np.ones_like(h, dtype=bool)
        away[max(0, y0 - 6) : y1 + 6, max(0, x0 - 6) : x1 + 6] = False
        assert h[y0:y1, x0:x1].mean() > 0.5 and h[away].mean() < 0.05, cam.label
    assert pred.gradcam(arr).label == "red" and pred.gradcam(arr, class_index=1).label == "blue"


# ---------------------------------------------------------------------------------------------- ONNX backend


@pytest.mark.timeout(180)
def test_onnx_backend_gives_the_same_answers(ckpt, predictor, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("RESNEXT_STUDIO_CACHE", str(tmp_path / "cache"))
    paths = make_images(tmp_path / "imgs", 4)
    fast = Predictor.from_checkpoint(ckpt, backend="onnx")
    assert fast.backend == "onnx" and Path(fast.onnx_path) == onnx_cache_path(ckpt)
    cached = Path(fast.onnx_path).stat().st_mtime_ns
    for a, b in zip(fast.predict(paths), predictor.predict(paths), strict=True):
        assert a.index == b.index and a.confidence == pytest.approx(b.confidence, abs=1e-5)
    again = Predictor.from_checkpoint(ckpt, backend="onnx")  # reuses the cached export
    assert Path(again.onnx_path).stat().st_mtime_ns == cached
    Path(fast.onnx_path).write_bytes(b"damaged")  # a broken cache entry is exported again
    repaired = Predictor.from_checkpoint(ckpt, backend="onnx")
    assert repaired.predict(paths[:1])[0].index == fast.predict(paths[:1])[0].index
    assert fast.gradcam(paths[0]).heatmap.shape == Image.open(paths[0]).size[::-1]


def _failing_export(path, out, *a, **k):
    from core.export import ExportError

    raise ExportError(f"ONNX export of {path} failed: RuntimeError: no")


@pytest.mark.timeout(180)
def test_an_onnx_cache_entry_of_another_model_is_made_again(ckpt, predictor, tmp_path, monkeypatch):
    """Training replaced best.pt between the three reads of it (its model, its cache name, its export): the entry
    named for one version held another's export, and every later ONNX predictor of that version used it."""
    pytest.importorskip("onnxruntime")
    from core import export

    monkeypatch.setenv("RESNEXT_STUDIO_CACHE", str(tmp_path / "cache"))
    other = checkpoint.load(ckpt)
    other["model"] = {
        k: v + 0.05 * torch.randn_like(v) if v.is_floating_point() else v for k, v in other["model"].items()
    }
    checkpoint.save(tmp_path / "other.pt", other)
    export.export_onnx(tmp_path / "other.pt", onnx_cache_path(ckpt))  # the entry named for ckpt holds the other
    paths = make_images(tmp_path / "imgs", 4)
    import tempfile

    copies = set(Path(tempfile.gettempdir()).glob("resnext-studio-checkpoint-*"))
    fast = Predictor.from_checkpoint(ckpt, backend="onnx")
    for a, b in zip(fast.predict(paths), predictor.predict(paths), strict=True):
        assert a.index == b.index and a.confidence == pytest.approx(b.confidence, abs=1e-5)
    assert fast.checkpoint_path == str(ckpt)  # (its own name, not the copy read)
    assert set(Path(tempfile.gettempdir()).glob("resnext-studio-checkpoint-*")) == copies  # (no copy left)
    with pytest.raises(checkpoint.CheckpointError, match=f"^{re.escape(str(tmp_path / 'missing.pt'))}: no such"):
        Predictor.from_checkpoint(tmp_path / "missing.pt", backend="onnx")
    (tmp_path / "cut.pt").write_bytes(ckpt.read_bytes()[:1000])
    with pytest.raises(checkpoint.CheckpointError, match=f"^{re.escape(str(tmp_path / 'cut.pt'))}: damaged"):
        Predictor.from_checkpoint(tmp_path / "cut.pt", backend="onnx")
    onnx_cache_path(ckpt).unlink()
    monkeypatch.setattr(export, "export_onnx", _failing_export)
    with pytest.raises(export.ExportError, match=re.escape(str(ckpt))):  # (the file given, not the copy read)
        Predictor.from_checkpoint(ckpt, backend="onnx")


def test_gradcam_and_predict_can_share_a_predictor_across_threads(predictor, tmp_path):
    """The GUI runs a folder prediction and a Grad-CAM on worker threads with one cached Predictor."""
    import threading

    paths = make_images(tmp_path, 4)
    expected = [(p.index, p.confidence) for p in predictor.predict(paths)]
    cam_ref = predictor.gradcam(paths[0]).heatmap
    failures: list[str] = []

    def predicting() -> None:
        for _ in range(6):
            got = [(p.index, p.confidence) for p in predictor.predict(paths, batch_size=2)]
            if [g[0] for g in got] != [e[0] for e in expected] or not np.allclose(
                [g[1] for g in got], [e[1] for e in expected], atol=1e-5
            ):
                failures.append(f"predict: {got} != {expected}")

    t = threading.Thread(target=predicting)
    t.start()
    for _ in range(6):
        if not np.allclose(predictor.gradcam(paths[0]).heatmap, cam_ref, atol=1e-5):
            failures.append("gradcam map changed while predict ran on another thread")
    t.join()
    assert not failures, failures[:3]
