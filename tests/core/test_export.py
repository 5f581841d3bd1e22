"""ONNX / TorchScript export: parity with PyTorch, checked outside the project, failures leave no file."""

from __future__ import annotations

import builtins
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core import checkpoint, data, export, models
from core.export import ExportError, export_onnx, export_torchscript
from core.predict import Predictor

ROOT = Path(__file__).resolve().parents[2]
CLASSES = ["cat", "dog", "fox", "owl"]
SIZE = 32


def make_checkpoint(path: Path, arch: str = "resnext11_4x8d", image_size: int = SIZE) -> Path:
    torch.manual_seed(3)
    model = models.build(arch, len(CLASSES))
    with torch.no_grad():  # a head with spread-out logits, so top-1 is never a near tie
        model.fc.weight.mul_(20)
    checkpoint.save(path, checkpoint.payload(model, arch, CLASSES, image_size))
    return path


def make_samples(folder: Path) -> list[Path]:
    """JPEGs and PNGs of several sizes and aspect ratios (portrait, landscape, odd sizes, smaller than R)."""
    rng = np.random.default_rng(11)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, (w, h) in enumerate([(500, 375), (375, 500), (97, 61), (33, 120), (20, 20), (64, 64)]):
        yy, xx = np.mgrid[0:h, 0:w]
        arr = np.stack([(xx * (i + 1)) % 256, (yy * 3 + 40 * i) % 256, (rng.random((h, w)) * 255)], -1)
        p = folder / f"s{i}.{'jpg' if i % 2 == 0 else 'png'}"
        Image.fromarray(arr.astype(np.uint8)).save(p)
        out.append(p)
    return out


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("export")
    ckpt = make_checkpoint(d / "best.pt")
    samples = make_samples(d / "samples")
    pred = Predictor.from_checkpoint(ckpt, device="cpu")
    return ckpt, samples, pred


def _fresh_python(code: str, *args: str) -> subprocess.CompletedProcess:
    """Run code in a new interpreter that cannot import the project (cwd and sys.path exclude the repo)."""
    guard = f"import sys; sys.path = [p for p in sys.path if p not in ('', {str(ROOT)!r})]\n"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [sys.executable, "-c", guard + code, *args], cwd="/", capture_output=True, text=True, timeout=300, env=env
    )


def _no_temp_files(folder: Path) -> bool:
    return not [f for f in os.listdir(folder) if f.endswith(".tmp")]


@pytest.mark.timeout(300)
def test_onnx_export_runs_outside_the_project_with_the_same_answers(setup, tmp_path):
    ckpt, samples, pred = setup
    out = tmp_path / "model.onnx"
    info = export_onnx(ckpt, out, samples=samples)
    assert info["path"] == str(out) and info["format"] == "onnx" and out.is_file()
    assert info["n_samples"] == len(samples) and info["top1_agree"] is True
    assert 0 <= info["max_abs_diff"] <= 1e-4 and info["size_bytes"] == out.stat().st_size and info["seconds"] > 0
    assert _no_temp_files(tmp_path)
    expected = [p.label for p in pred.predict(samples)]
    code = textwrap.dedent("""
        import json, sys
        import numpy as np, onnxruntime as ort
        assert not any(m == "core" or m.startswith("core.") for m in sys.modules)
        s = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
        meta = s.get_modelmeta().custom_metadata_map
        S = json.loads(meta["image_size"])
        (inp,), (outp,) = s.get_inputs(), s.get_outputs()
        x = np.random.default_rng(0).standard_normal((3, 3, S, S)).astype(np.float32)
        y = s.run(None, {"input": x})[0]
        print(json.dumps({"meta": meta, "input": inp.name, "shape": [str(d) for d in inp.shape],
                          "out": list(y.shape), "dtype": inp.type}))
    """)
    r = _fresh_python(code, str(out))
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    meta = doc["meta"]
    assert doc["input"] == "input" and doc["dtype"] == "tensor(float)" and doc["out"] == [3, len(CLASSES)]
    assert doc["shape"][1:] == ["3", str(SIZE), str(SIZE)] and not doc["shape"][0].isdigit()  # dynamic batch
    assert json.loads(meta["class_names"]) == CLASSES and meta["input_layout"] == "NCHW"
    assert json.loads(meta["image_size"]) == SIZE and json.loads(meta["resize_size"]) == data.resize_size(SIZE)
    assert json.loads(meta["mean"]) == pytest.approx(data.IMAGENET_MEAN)
    assert json.loads(meta["std"]) == pytest.approx(data.IMAGENET_STD)
    assert "centre-crop" in meta["preprocessing"] and "draft" in meta["preprocessing"]  # (JPEGs decode reduced)
    # the load rule before it (the text had begun at "RGB image": a turned phone photo was read sideways)
    assert all(w in meta["preprocessing"] for w in ("EXIF orientation", "transparent pixels", "16-bit"))
    assert expected == _snippet_labels(out, samples)


def _snippet_source() -> str:
    """The README's ONNX snippet when README.md carries one (after `<!-- snippet: onnx -->`), else ours."""
    readme = ROOT / "README.md"
    if readme.is_file():
        m = re.search(r"<!-- snippet: onnx -->\s*\n```python\n(.*?)```", readme.read_text(encoding="utf-8"), re.S)
        if m:
            return m.group(1)
    return (ROOT / "tests" / "core" / "onnx_snippet.py").read_text(encoding="utf-8")


def _snippet_labels(model: Path, images: list[Path]) -> list[str]:
    code = _snippet_source()
    labels = []
    for img in images:
        r = _fresh_python(code, str(model), str(img))
        assert r.returncode == 0, f"snippet failed on {img.name}: {r.stderr}"
        name, prob = r.stdout.split()
        assert 0 < float(prob) <= 1
        labels.append(name)
    return labels


@pytest.mark.parametrize("image_size", [SIZE, 80])  # R == S, and R = 91 > S = 80 (two crops, odd margin)
@pytest.mark.timeout(300)
def test_readme_onnx_snippet(setup, tmp_path, image_size):
    _, samples, _ = setup
    ckpt = make_checkpoint(tmp_path / "best.pt", image_size=image_size)
    pred = Predictor.from_checkpoint(ckpt, device="cpu")
    code_lines = [ln for ln in _snippet_source().splitlines() if ln.strip() and not ln.startswith("# ruff")]
    assert len(code_lines) <= 12
    assert "import core" not in _snippet_source() and "from core" not in _snippet_source()
    out = tmp_path / "m.onnx"
    export_onnx(ckpt, out)
    assert _snippet_labels(out, samples) == [p.label for p in pred.predict(samples)]


@pytest.mark.timeout(300)
def test_torchscript_export_loads_with_plain_torch(setup, tmp_path):
    ckpt, samples, pred = setup
    out = tmp_path / "model.pt"
    info = export_torchscript(ckpt, out, samples=samples)
    assert info["format"] == "torchscript" and info["top1_agree"] is True and info["max_abs_diff"] <= 1e-4
    assert _no_temp_files(tmp_path)
    # preprocess exactly as the checkpoint's metadata says, with Pillow + numpy, then plain torch.jit.load
    code = textwrap.dedent("""
        import json, sys, warnings
        import numpy as np, torch
        from PIL import Image
        warnings.simplefilter("ignore")
        assert "core" not in sys.modules
        extra = {"metadata.json": ""}
        m = torch.jit.load(sys.argv[1], map_location="cpu", _extra_files=extra).eval()
        meta = json.loads(extra["metadata.json"])
        R, S = meta["resize_size"], meta["image_size"]
        xs = []
        for path in sys.argv[2:]:
            img = Image.open(path).convert("RGB")
            w, h = img.size
            img = img.resize((R, max(R, int(R * h / w))) if w <= h else (max(R, int(R * w / h)), R), Image.BILINEAR)
            l, t = round((img.width - R) / 2) + (R - S) // 2, round((img.height - R) / 2) + (R - S) // 2
            x = (np.asarray(img.crop((l, t, l + S, t + S)), np.float32) / 255 - meta["mean"]) / meta["std"]
            xs.append(x.transpose(2, 0, 1).astype(np.float32))
        with torch.no_grad():
            y = m(torch.from_numpy(np.stack(xs)))
        print(json.dumps([meta["class_names"][i] for i in y.argmax(1).tolist()]))
    """)
    r = _fresh_python(code, str(out), *map(str, samples))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [p.label for p in pred.predict(samples)]


@pytest.mark.timeout(300)
def test_default_samples_are_random_and_synthetic(setup, tmp_path):
    ckpt, _, _ = setup
    info = export_torchscript(ckpt, tmp_path / "m.pt")
    pictures = export.synthetic_images()
    assert info["n_samples"] == 4 + len(pictures)  # 4 random tensors and the pictures
    assert [im.size for im in pictures] == [(96, 96), (112, 96), (128, 96), (144, 96)]  # wider ones: resized
    assert pictures[0].getpixel((0, 0)) == (0, 0, 255) and pictures[2].getpixel((56, 36)) == (229, 51, 25)
    noise = np.asarray(pictures[3]).astype(float)
    assert noise.std() > 50  # uniform noise, not a flat picture
    assert np.array_equal(noise, np.asarray(export.synthetic_images()[3]))  # the same pixels every call


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
@pytest.mark.timeout(300)
def test_parity_failure_raises_and_leaves_no_file(setup, tmp_path, monkeypatch, fmt):
    ckpt, samples, _ = setup
    runner = "_run_onnx" if fmt == "onnx" else "_run_torchscript"
    real = getattr(export, runner)

    def perturbed(path, x):
        y = np.array(real(path, x), copy=True)
        y[:, 0] += 5e-3  # enough to break max |Δ| ≤ 1e-4, not necessarily top-1
        return y

    monkeypatch.setattr(export, runner, perturbed)
    out = tmp_path / f"model.{fmt}"
    fn = export_onnx if fmt == "onnx" else export_torchscript
    with pytest.raises(ExportError, match=r"max \|Δ logits\| = 0\.005") as exc:
        fn(ckpt, out, samples=samples[:2])
    assert "file not written" in str(exc.value)
    assert not out.exists() and _no_temp_files(tmp_path)

    out.write_bytes(b"previous export")  # an earlier good file is not touched by a failed export
    monkeypatch.setattr(export, runner, lambda path, x: np.array(real(path, x))[:, ::-1].copy())
    with pytest.raises(ExportError, match="top-1 differs"):
        fn(ckpt, out, samples=samples[:2])
    assert out.read_bytes() == b"previous export" and _no_temp_files(tmp_path)


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
@pytest.mark.timeout(300)
def test_ctrl_c_or_a_full_disk_leaves_no_temporary_file(setup, tmp_path, monkeypatch, fmt):
    ckpt, samples, _ = setup
    runner = "_run_onnx" if fmt == "onnx" else "_run_torchscript"
    fn = export_onnx if fmt == "onnx" else export_torchscript

    def interrupted(path, x):
        assert os.path.exists(path)  # written, not yet checked
        raise KeyboardInterrupt

    monkeypatch.setattr(export, runner, interrupted)
    with pytest.raises(KeyboardInterrupt):
        fn(ckpt, tmp_path / f"m.{fmt}", samples=samples[:2])
    assert _no_temp_files(tmp_path) and not (tmp_path / f"m.{fmt}").exists()

    def disk_full(path, x):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export, runner, disk_full)
    with pytest.raises(ExportError) as e:
        fn(ckpt, tmp_path / f"m.{fmt}", samples=samples[:2])
    assert str(e.value).endswith("file (No space left on device)") and str(tmp_path / f"m.{fmt}") in str(e.value)
    assert _no_temp_files(tmp_path)


def test_missing_export_extra_gives_the_install_command(setup, tmp_path, monkeypatch):
    ckpt, _, _ = setup
    real_import = builtins.__import__

    def blocked(name, *args, **kwargs):
        if name.split(".")[0] in ("onnx", "onnxruntime"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", blocked)
    with pytest.raises(ExportError) as exc:
        export_onnx(ckpt, tmp_path / "m.onnx")
    assert str(exc.value) == "ONNX export needs the 'export' extra: pip install 'resnext-studio[export]'"
    assert not (tmp_path / "m.onnx").exists()


def test_bad_sample_or_checkpoint_is_named(setup, tmp_path):
    ckpt, samples, _ = setup
    with pytest.raises(ExportError, match="nope.jpg"):
        export_torchscript(ckpt, tmp_path / "m.pt", samples=[samples[0], tmp_path / "nope.jpg"])
    with pytest.raises(checkpoint.CheckpointError, match="missing.pt"):
        export_onnx(tmp_path / "missing.pt", tmp_path / "m.onnx")
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(os.name == "nt", reason="POSIX signals")
@pytest.mark.timeout(180)
@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_an_export_ended_by_a_signal_leaves_no_hidden_file(setup, tmp_path, signame):
    """A `kill` (SIGTERM) or a closed terminal (SIGHUP) left a 56 MB ".m.onnx.….tmp" beside the output each time;
    Ctrl-C did not. The export is held inside its check (a marker file says so) and the signal sent there."""
    import signal
    import time

    ckpt = setup[0]
    out, marker = tmp_path / "out" / "m.pt", tmp_path / "checking"
    code = textwrap.dedent(
        f"""
        import sys, time
        import core.export as export
        def held(*args, **kwargs):
            open({str(marker)!r}, "w").close()
            while True:
                time.sleep(0.05)
        export._check = held
        from core.cli import main
        sys.exit(main(["export", "--checkpoint", {str(ckpt)!r}, "--format", "torchscript", "--out", {str(out)!r}]))
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 150
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)  # (waiting for the export to reach its check, not timing anything)
        assert marker.exists(), proc.stderr.read() if proc.poll() is not None else "the export never reached its check"
        assert [f for f in os.listdir(out.parent) if f.endswith(".tmp")]  # the file being checked is there …
        proc.send_signal(getattr(signal, signame))
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + getattr(signal, signame), err
    assert err.strip().endswith(f"interrupted ({signame})")
    assert _no_temp_files(out.parent) and not out.exists()  # … and gone with the export
