"""Bad input on the command line: one line naming the flag or file and exit 2, never a traceback; inputs that could
not be read are listed and give exit 1; nothing half-written is left behind."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import stat
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from core.checkpoint import load
from core.cli import _train_config, build_parser, main
from tests.helpers import TINY_TRAIN_ARGS as TINY
from tests.helpers import train_tiny


def make_set(root: Path, classes=("red", "green", "blue"), per_class: int = 6, shade: int = 0) -> Path:
    """Class folders of plain-coloured images; the same for the same `shade` (another: other images)."""
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (20, 20), (200 * (c == 0) + shade, 200 * (c == 1) + i, 200 * (c == 2) + shade)).save(
                root / name / f"{i}.png"
            )
    return root


def run(capsys, *argv) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def one_line(err: str) -> bool:
    return err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli_errors")
    data = make_set(root / "data")
    run_dir = train_tiny(data, root / "runs")
    return {"root": root, "data": data, "run": run_dir, "best": run_dir / "best.pt"}


def damaged(trained, tmp_path: Path, name: str, change) -> Path:
    ck = torch.load(trained["best"], weights_only=True)
    change(ck)
    path = tmp_path / name
    torch.save(ck, path)
    return path


def test_a_device_that_does_not_exist_is_a_usage_error(capsys, trained, tmp_path):
    devices = ["banana", "meta", "xpu"] + ([] if torch.cuda.is_available() else ["cuda"])  # torch knows meta/xpu
    for dev in devices:
        for argv in (
            ["train", "--data", trained["data"], "--runs-dir", tmp_path / "runs", "--device", dev],
            ["evaluate", "--checkpoint", trained["best"], "--device", dev],
            ["predict", "--checkpoint", trained["best"], trained["data"], "--device", dev],
        ):
            rc, _, err = run(capsys, *argv)
            assert rc == 2 and one_line(err) and f"--device {dev}:" in err, (argv, err)
    assert not (tmp_path / "runs").exists()  # nothing was started


def test_a_device_name_in_capitals_or_with_spaces_is_taken_by_every_command(capsys, trained, tmp_path):
    """predict crashed with a traceback on --device CPU, train refused it, evaluate took it."""
    for argv in (
        ["predict", "--checkpoint", trained["best"], trained["data"] / "red" / "0.png", "--device", "CPU"],
        ["evaluate", "--checkpoint", trained["best"], "--device", " Cpu"],
        ["train", "--data", trained["data"], "--runs-dir", tmp_path / "runs", "--epochs", "1", *TINY]
        + ["--device", "CPU ", "--quiet"],
    ):
        rc, _, err = run(capsys, *argv)
        assert rc == 0 and "Traceback" not in err, (argv, err)


def test_evaluate_explains_empty_splits_unknown_classes_and_damaged_checkpoints(capsys, trained, tmp_path):
    rc, _, err = run(capsys, "evaluate", "--checkpoint", trained["best"], "--split", "test")
    assert rc == 2 and one_line(err) and "the test split" in err and "is empty" in err
    rc, out, err = run(capsys, "evaluate", "--checkpoint", trained["best"])  # its own folder: held-out part
    assert rc == 0 and " images (val): accuracy " in out.splitlines()[0]
    # its bar counts the images read and then the batches: a share, not "0/122" for 120 images
    bars = [line for line in err.splitlines() if line.startswith("evaluating (val)")]
    assert bars[-1].rstrip().endswith(" 100%") and not any("/" in bar for bar in bars), bars
    rc, out, err = run(capsys, "evaluate", "--checkpoint", trained["best"], "--split", "all", "--quiet")
    trained_on = json.loads((trained["run"] / "config.json").read_text())["dataset"]["train_size"]
    assert rc == 0 and f"includes the {trained_on} images it trained on" in err  # (as the app's Evaluate tab says)
    with_test = tmp_path / "with_test"
    rc, _, err = run(capsys, *_tiny_train(trained, with_test), "--test-split", "0.25")
    assert rc == 0, err
    (run_dir,) = with_test.iterdir()
    rc, out, _ = run(capsys, "evaluate", "--checkpoint", run_dir, "--quiet")  # its test split, as the app shows
    assert rc == 0 and " images (test): accuracy " in out.splitlines()[0]
    assert json.loads((run_dir / "evaluation.json").read_text())["split"] == "test"
    other = make_set(tmp_path / "other", classes=("red", "purple"))
    rc, out, err = run(capsys, "evaluate", "--checkpoint", trained["best"], "--data", other)  # another folder:
    # all of it by default; the shared class is evaluated, the unknown one is left out and named: exit 1
    assert rc == 1 and "left out, not classes of the model: purple (" in err, err
    cased = make_set(tmp_path / "cased", classes=("red", "Green "))  # a class of the model but for case and a space
    rc, _, err = run(capsys, "evaluate", "--checkpoint", trained["best"], "--data", cased)
    assert (
        rc == 1
        and (
            'left out, not classes of the model: Green  (6 images; the model\'s class is "green": name the folder so to '
            "evaluate them)"
        )
        in err
    ), err
    assert out.startswith(f"{len(list((Path(other) / 'red').iterdir()))} images (all)")
    strange = make_set(tmp_path / "strange", classes=("purple", "orange"))
    rc, _, err = run(capsys, "evaluate", "--checkpoint", trained["best"], "--data", strange, "--split", "all")
    assert rc == 2 and one_line(err) and "none of its classes (orange, purple) is one of the checkpoint" in err

    def drop_last_layers(ck):
        for key in list(ck["model"])[-2:]:
            del ck["model"][key]

    partial = damaged(trained, tmp_path, "partial.pt", drop_last_layers)
    names = damaged(trained, tmp_path, "names.pt", lambda ck: ck.update(class_names=["a"]))
    config = damaged(trained, tmp_path, "config.pt", lambda ck: ck.update(config="oops"))
    for command in ("evaluate", "predict", "export"):
        extra = {
            "evaluate": [],
            "predict": [trained["data"]],
            "export": ["--format", "torchscript", "--out", tmp_path / "m.ts"],
        }[command]
        rc, _, err = run(capsys, command, "--checkpoint", partial, *extra)
        assert rc == 2 and one_line(err) and "partial.pt" in err and "missing fc." in err, (command, err)
        rc, _, err = run(capsys, command, "--checkpoint", names, *extra)
        assert rc == 2 and one_line(err) and "names.pt" in err and "1 class names for 3 classes" in err
        rc, _, err = run(capsys, command, "--checkpoint", config, *extra)
        assert rc == 2 and one_line(err) and "config.pt" in err and "its config is a str" in err
    assert not (tmp_path / "m.ts").exists()


def test_bad_settings_files_and_paths_are_usage_errors(capsys, trained, tmp_path):
    settings = tmp_path / "list.json"
    settings.write_text("[1, 2]")
    rc, _, err = run(capsys, "train", "--data", trained["data"], "--config", settings)
    assert rc == 2 and one_line(err) and "not a settings file" in err
    assert err.count(str(settings)) == 1  # (the path was said twice)
    rc, _, err = run(capsys, "train", "--data", trained["data"], "--config", tmp_path / "missing.json")
    assert err == f"error: --config {tmp_path / 'missing.json'}: No such file or directory\n"
    rc, _, err = run(capsys, "train", "--config", trained["run"], "--epochs", "1", "--quiet", "--runs-dir", tmp_path)
    assert rc == 0, err  # a run folder: its config.json (it said "[Errno 21] Is a directory")
    fake = tmp_path / "fakerun"
    fake.mkdir()
    (fake / "last.pt").write_bytes(b"\x00garbage")
    for extra in ([], ["--epochs", "5"]):
        rc, _, err = run(capsys, "train", "--resume", fake, *extra)
        assert rc == 2 and one_line(err) and "last.pt" in err, err
    rc, _, err = run(capsys, "train", "--data", trained["data"], "--batch-size", "1")
    assert rc == 2 and one_line(err) and "--batch-size 1: must be ≥ 2" in err
    rc, _, err = run(capsys, "train", "--data", trained["data"], "--lr", "inf")
    assert rc == 2 and one_line(err) and "--lr inf: must be a finite number" in err
    rc, _, err = run(capsys, "train", "--data", trained["data"], "--lr", "0")
    assert rc == 2 and err == "error: --lr 0: must be > 0\n"  # as typed (it read "--lr 0.0")
    rc, _, err = run(capsys, "train", "--data", trained["data"], "--arch", "bogus", "--runs-dir", tmp_path / "r")
    assert rc == 2 and one_line(err) and err.startswith("error: --arch: 'bogus': unknown architecture")
    rc, _, err = run(
        capsys, "train", "--data", trained["data"], "--pretrained", tmp_path / "none.pth", "--runs-dir", tmp_path / "r"
    )
    assert rc == 2 and one_line(err) and err.startswith(f"error: --pretrained {tmp_path / 'none.pth'}: no such file")
    from_file = tmp_path / "pretrained.json"  # the same path in a settings file is blamed on the file, not a flag
    from_file.write_text(json.dumps({"model": {"pretrained": str(tmp_path / "none.pth")}}))
    rc, _, err = run(capsys, "train", "--data", trained["data"], "--config", from_file, "--runs-dir", tmp_path / "r")
    assert rc == 2 and err.startswith(f"error: --config {from_file}: model.pretrained {tmp_path / 'none.pth'}: no such")
    from_file.write_text(json.dumps({"model": {"arch": "bogus"}, "data": {"root": str(trained["data"])}}))
    rc, _, err = run(capsys, "train", "--config", from_file, "--runs-dir", tmp_path / "r")  # (it said "--arch: …")
    assert rc == 2 and one_line(err) and err.startswith(f"error: --config {from_file}: model.arch: 'bogus': unknown")
    rc, _, err = run(capsys, "train", "--config", from_file, "--arch", "bogus2", "--runs-dir", tmp_path / "r")
    assert rc == 2 and err.startswith("error: --arch: 'bogus2': unknown")  # typed: the flag's
    from_file.write_text(json.dumps({"data": {"root": str(tmp_path / "gone")}}))
    rc, _, err = run(capsys, "train", "--config", from_file, "--runs-dir", tmp_path / "r")  # (it said "--data …")
    assert rc == 2 and err == f"error: --config {from_file}: data.root {tmp_path / 'gone'}: no such folder\n"
    rc, _, err = run(capsys, *_tiny_train(trained, tmp_path / "r"), "--freeze-backbone")  # random weights, frozen
    assert rc == 2 and one_line(err) and "--freeze-backbone needs --pretrained imagenet|PATH" in err
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())
    junk = tmp_path / "junk.pth"
    junk.write_bytes(os.urandom(1000))
    rc, _, err = run(capsys, "train", "--data", trained["data"], "--pretrained", junk, "--runs-dir", tmp_path / "r")
    assert rc == 2 and one_line(err) and "junk.pth: not a weights file" in err and "weights_only" not in err
    diverged = tmp_path / "diverged.pt"  # saved after its training blew up: the run failed, "try a lower lr"
    state = torch.load(trained["best"], map_location="cpu", weights_only=True)
    state["model"] = {k: v.fill_(float("nan")) if k == "fc.weight" else v for k, v in state["model"].items()}
    torch.save(state, diverged)
    rc, _, err = run(capsys, *_tiny_train(trained, tmp_path / "r"), "--pretrained", diverged)
    assert rc == 2 and one_line(err) and "diverged.pt: damaged weights (not finite: NaN or inf in fc.weight)" in err
    other = tmp_path / "other.pth"  # a real state dict, of a model of another shape
    torch.save({"conv1.weight": torch.zeros(3, 3, 3, 3)}, other)
    rc, _, err = run(capsys, *_tiny_train(trained, tmp_path / "r"), "--pretrained", other, "--mode", "finetune")
    # an input error, found before the run starts (it failed the run, with exit code 1)
    assert rc == 2 and one_line(err) and "other.pth: layer conv1.weight has shape (3, 3, 3, 3) in the file" in err
    assert "in the model (resnext11_2x4d); wrong architecture?" in err  # (the one tried: with no --arch, unsaid)
    rc, _, err = run(capsys, *_tiny_train(trained, tmp_path / "r"), "--pretrained", "imagenet")
    assert rc == 2 and one_line(err) and "resnext11_2x4d has no ImageNet weights" in err
    rc, _, err = run(capsys, "train", "--data", trained["data"], "--seed", "99999999999999999999")
    assert rc == 2 and one_line(err) and "--seed 99999999999999999999: must be smaller than 2**53 in size" in err
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())  # no failed run for input errors
    rc, _, err = run(capsys, "train", "--data", trained["data"], "--runs-dir", trained["best"] / "runs")
    assert rc == 2 and one_line(err) and "--runs-dir" in err and "is a file, not a folder" in err
    with pytest.MonkeyPatch.context() as env:  # the runs folder chosen by the environment: not "--runs-dir"
        env.setenv("RESNEXT_STUDIO_RUNS", str(trained["best"]))
        for argv in (["train", "--data", trained["data"]], ["runs"]):
            rc, _, err = run(capsys, *argv)
            assert rc == 2 and err == f"error: RESNEXT_STUDIO_RUNS={trained['best']}: a file, not a folder\n", argv
    rc, _, err = run(capsys, "scan", trained["best"])
    assert rc == 2 and "a file, not a folder" in err
    rc, _, err = run(capsys, "train", "--data", trained["best"], "--runs-dir", tmp_path / "r")
    assert rc == 2 and one_line(err) and err.endswith(": a file, not a folder\n")
    rc, _, err = run(capsys, "train", "--data", trained["data"], "--pretrained", tmp_path, "--runs-dir", tmp_path / "r")
    assert rc == 2 and one_line(err) and f"--pretrained {tmp_path}: a folder without best.pt or last.pt" in err
    # a run folder is its best.pt, as for --checkpoint (it was refused as "a folder, not a file")
    argv = ["train", "--data", trained["data"], "--pretrained", trained["run"], "--runs-dir", tmp_path / "ft"]
    rc, out, err = run(capsys, *argv, "--epochs", "1", *TINY, "--quiet", "--json")
    assert rc == 0, err
    config = json.loads((Path(json.loads(out)["run_dir"]) / "config.json").read_text())
    assert config["model"]["pretrained"] == str(trained["run"] / "best.pt")


def _tiny_train(trained, runs_dir) -> list:
    return ["train", "--data", trained["data"], "--epochs", "1", "--runs-dir", runs_dir, "--quiet", *TINY]


def test_unwritable_outputs_are_one_line_and_leave_no_temp_file(capsys, trained, tmp_path, monkeypatch):
    folder = tmp_path / "taken"
    folder.mkdir()
    rc, _, err = run(capsys, "predict", "--checkpoint", trained["best"], trained["data"] / "red", "--csv", folder)
    assert rc == 2 and one_line(err) and f"--csv {folder}: a folder" in err
    rc, _, err = run(capsys, "export", "--checkpoint", trained["best"], "--format", "torchscript", "--out", folder)
    assert rc == 2 and one_line(err) and f"--out {folder}: a folder" in err
    monkeypatch.chdir(tmp_path)  # (the file "-" it wrote went to the working folder)
    rc, _, err = run(capsys, "export", "--checkpoint", trained["best"], "--format", "onnx", "--out", "-")
    assert rc == 2 and one_line(err) and "--out -: export writes an ONNX model to a file, not to standard" in err
    assert not (tmp_path / "-").exists()
    # a name of the other format: a TorchScript zip named .onnx failed in onnxruntime ("INVALID_PROTOBUF")
    for fmt, name, said in (
        (
            "torchscript",
            "m.onnx",
            "a .onnx name for a TorchScript model (it would be taken for the other format); "
            "name it m.pt, or give --format onnx",
        ),
        (
            "onnx",
            "m.pt",
            "a .pt name for an ONNX model (it would be taken for the other format); name it m.onnx, or "
            "give --format torchscript",
        ),
    ):
        rc, _, err = run(capsys, "export", "--checkpoint", trained["best"], "--format", fmt, "--out", tmp_path / name)
        assert rc == 2 and one_line(err) and err == f"error: --out {tmp_path / name}: {said}\n", err
        assert not (tmp_path / name).exists()
    rc, _, err = run(
        capsys, "predict", "--checkpoint", trained["best"], trained["data"] / "red", "--cam", trained["best"]
    )
    assert rc == 2 and one_line(err) and "--cam" in err and "a file, not a folder" in err
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        rc, _, err = run(
            capsys,
            "predict",
            "--checkpoint",
            trained["best"],
            trained["data"] / "red",
            "--quiet",
            "--csv",
            locked / "p.csv",
        )
        assert rc == 2 and one_line(err) and "locked" in err
        locked.chmod(0o700)
    assert not any(folder.iterdir())
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_table_that_cannot_be_written_after_predicting_keeps_the_answers(capsys, trained, tmp_path, monkeypatch):
    """The disk filled while predict wrote --csv: the answers are printed (or in --json, with csv_error) and the
    exit is 1, a partial failure (it had been 2, every answer computed lost)."""
    import errno

    from core import runs

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runs, "atomic_file", full)
    out = tmp_path / "p.csv"
    photos = trained["data"] / "red"
    rc, stdout, err = run(capsys, "predict", "--checkpoint", trained["best"], photos, "--quiet", "--csv", out)
    assert rc == 1, err
    assert f"error: {out}: could not write the table (No space left on device); the answers are printed" in err
    assert len(stdout.splitlines()) == len(list(photos.iterdir())) and not out.exists()
    rc, stdout, err = run(capsys, "predict", "--checkpoint", trained["best"], photos, "--json", "--csv", out)
    doc = json.loads(stdout)
    assert rc == 1 and len(doc["predictions"]) == len(list(photos.iterdir()))
    assert doc["errors"] == [] and doc["csv_error"].startswith(f"{out}: could not write the table")


def test_summary_and_runs_name_the_flag_and_a_damaged_status_hides_no_run(capsys, trained, tmp_path):
    rc, _, err = run(capsys, "summary", "--arch", "resnext50_32x4d", "--image-size", "1")
    assert rc == 2 and one_line(err) and err.startswith("error: --image-size 1: ")
    for n in ("0", "99999999999999999999"):  # (the second overflowed torch's sizes: a traceback)
        rc, _, err = run(capsys, "summary", "--arch", "resnext50_32x4d", "--num-classes", n)
        assert rc == 2 and err == f"error: --num-classes {n}: must be a whole number from 1 to 100,000\n"
    rc, _, err = run(capsys, "summary", "--arch", "resnext0_0x0d")
    assert rc == 2 and one_line(err) and err.startswith("error: --arch: 'resnext0_0x0d': cardinality 0")
    a_file = tmp_path / "runs.txt"
    a_file.write_text("")
    rc, _, err = run(capsys, "runs", "--runs-dir", a_file)
    assert rc == 2 and one_line(err) and "a file, not a folder" in err
    runs = tmp_path / "runs"
    copy = runs / trained["run"].name
    copy.mkdir(parents=True)
    for name in ("config.json", "history.csv"):
        (copy / name).write_bytes((trained["run"] / name).read_bytes())
    (copy / "status.json").write_text('{"status": "completed", "started": "yesterday"}')  # edited by hand
    rc, out, err = run(capsys, "runs", "--runs-dir", runs, "--json")
    assert rc == 0 and [r["name"] for r in json.loads(out)["runs"]] == [copy.name], err
    (copy / "status.json").write_text('{"status": "failed", "message": "loss became NaN at epoch 1 step 3"}')
    rc, out, err = run(capsys, "runs", "--runs-dir", runs)  # no last.pt: said, as it cannot be resumed
    assert rc == 0 and "failed" in out and "(nothing saved: it cannot be resumed)" in out
    (copy / "last.pt").write_bytes((trained["run"] / "last.pt").read_bytes())
    rc, out, err = run(capsys, "runs", "--runs-dir", runs)  # the failure's reason, in short
    assert rc == 0 and "(loss became NaN at epoch 1 step 3)" in out
    (copy / "status.json").write_text('{"status": "completed", "message": "completed 1 epoch"}')
    (copy / "config.json").write_text('{"model": ')  # a completed run's damage: said in the text too (--json alone)
    rc, out, err = run(capsys, "runs", "--runs-dir", runs)
    assert rc == 0 and "completed" in out and "(config.json cannot be read (damaged or empty); completed 1" in out
    (copy / "status.json").write_text('{"status": {"x": 1}}')  # (a traceback in the text listing)
    (copy / "history.csv").unlink()  # no accuracy to show: a dash ("best val acc " ended the line)
    rc, out, err = run(capsys, "runs", "--runs-dir", runs)
    assert rc == 0 and "best val acc —  (status.json and config.json cannot be read" in out, out + err


def test_evaluate_says_so_when_no_image_can_be_read_any_more(capsys, trained, tmp_path, monkeypatch):
    """Files gone between the scan and the decode (a drive unplugged): named, exit 2, no traceback."""
    import shutil

    from core import data

    gone = shutil.copytree(trained["data"], tmp_path / "gone")
    scan = data.scan

    def scan_then_unplug(root, **kw):
        index = scan(root, **kw)
        for p in Path(gone).rglob("*.png"):
            p.unlink()
        return index

    monkeypatch.setattr(data, "scan", scan_then_unplug)
    rc, _, err = run(capsys, "evaluate", "--checkpoint", trained["best"], "--data", gone, "--split", "all")
    assert rc == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == f"error: {gone}: no image of the all split could be read"
    assert "could not read" in err and "0.png" in err


def test_outputs_never_overwrite_the_inputs(capsys, trained, tmp_path):
    """A shell glob after --csv makes a photo the CSV's name; --out set to the checkpoint would replace the model."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        (photos / f"{i}.png").write_bytes((trained["data"] / "red" / f"{i}.png").read_bytes())
    before = (photos / "0.png").read_bytes()
    rc, _, err = run(capsys, "predict", "--checkpoint", trained["best"], photos, "--csv", photos / "0.png")
    assert rc == 2 and one_line(err) and "one of the inputs" in err
    rc, _, err = run(capsys, "predict", "--checkpoint", trained["best"], photos / "1.png", "--csv", photos / "0.png")
    assert rc == 2 and one_line(err) and "an image; not overwriting it" in err
    assert (photos / "0.png").read_bytes() == before
    model = trained["best"].read_bytes()
    rc, _, err = run(
        capsys, "export", "--checkpoint", trained["best"], "--format", "torchscript", "--out", trained["best"]
    )
    assert rc == 2 and one_line(err) and "one of the inputs" in err and trained["best"].read_bytes() == model
    # an export over a photo, or over someone's weights file, is refused; one over an earlier export is not
    rc, _, err = run(capsys, "export", "--checkpoint", trained["best"], "--format", "onnx", "--out", photos / "1.png")
    assert rc == 2 and one_line(err) and "an image; not overwriting it with an ONNX model (name another file)" in err
    weights = tmp_path / "weights.pt"
    torch.save({"conv1.weight": torch.zeros(2)}, weights)
    kept = weights.read_bytes()
    rc, _, err = run(capsys, "export", "--checkpoint", trained["best"], "--format", "torchscript", "--out", weights)
    assert rc == 2 and one_line(err) and "a PyTorch checkpoint or weights file; not overwriting it" in err
    assert weights.read_bytes() == kept
    again = tmp_path / "model"  # (no suffix, as some name their exports)
    for quiet in ([], ["--quiet"]):  # (--quiet: nothing printed on success)
        rc, out, err = run(
            capsys, "export", "--checkpoint", trained["best"], "--format", "torchscript", "--out", again, *quiet
        )
        assert rc == 0 and (out == "") == bool(quiet), (out, err)
    # … but a table is not written over an export, nor anything over a checkpoint of torch's older format
    exported = again.read_bytes()
    rc, _, err = run(capsys, "predict", "--checkpoint", trained["best"], photos / "1.png", "--csv", again)
    assert rc == 2 and one_line(err) and "a TorchScript model; not overwriting it with a table" in err
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"\x08\x08\x12\x07pytorch")  # (what an ONNX file starts with)
    rc, _, err = run(capsys, "predict", "--checkpoint", trained["best"], photos / "1.png", "--csv", onnx)
    assert rc == 2 and one_line(err) and "an ONNX model; not overwriting it" in err
    legacy = tmp_path / "legacy.pth"
    torch.save({"conv1.weight": torch.zeros(2)}, legacy, _use_new_zipfile_serialization=False)
    for argv in (
        ("predict", "--checkpoint", trained["best"], photos / "1.png", "--csv", legacy),
        ("export", "--checkpoint", trained["best"], "--format", "onnx", "--out", legacy),
    ):
        rc, _, err = run(capsys, *argv)
        assert rc == 2 and one_line(err) and "a PyTorch checkpoint or weights file; not overwriting it" in err, argv
    assert again.read_bytes() == exported and onnx.read_bytes().endswith(b"pytorch") and legacy.stat().st_size > 100
    rc, _, err = run(capsys, "predict", "--checkpoint", trained["best"], photos, "--csv", photos / "0.png" / "p.csv")
    assert rc == 2 and one_line(err) and f"{photos / '0.png'} is a file, not a folder" in err
    # an export replaces an earlier export only: not a text file, nor a file no one may write
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    rc, _, err = run(capsys, "export", "--checkpoint", trained["best"], "--format", "onnx", "--out", notes)
    assert rc == 2 and one_line(err) and "a file that is not an exported model; not overwriting it" in err
    assert notes.read_text() == "my notes"
    named = tmp_path / "other.onnx"  # named as an export, but not one: its name alone had let it be replaced
    named.write_bytes(b"\x00\x01 not a model" * 50)
    rc, _, err = run(capsys, "export", "--checkpoint", trained["best"], "--format", "onnx", "--out", named)
    assert rc == 2 and one_line(err) and "a file that is not an exported model; not overwriting it" in err
    assert named.read_bytes() == b"\x00\x01 not a model" * 50
    cut = tmp_path / "cut.pt"  # an export (or a checkpoint: no telling) cut short
    cut.write_bytes(again.read_bytes()[:300])
    rc, _, err = run(capsys, "export", "--checkpoint", trained["best"], "--format", "torchscript", "--out", cut)
    assert rc == 2 and one_line(err) and "a damaged zip archive (a model or a checkpoint cut short)" in err
    bare = tmp_path / "onnx-model"  # (an ONNX export without its suffix, exported again)
    for _ in range(2):
        rc, _, err = run(capsys, "export", "--checkpoint", trained["best"], "--format", "onnx", "--out", bare)
        assert rc == 0, err
    kept = tmp_path / "kept.csv"
    kept.write_text("a,b\n")
    kept.chmod(0o444)
    rc, _, err = run(capsys, "predict", "--checkpoint", trained["best"], photos / "1.png", "--csv", kept)
    assert rc == 2 and one_line(err) and "a read-only file; not overwriting it" in err
    assert kept.read_text() == "a,b\n" and not kept.stat().st_mode & 0o222


def test_a_model_far_too_big_for_the_machine_is_refused_before_anything(capsys, trained, tmp_path):
    """It ended as a failed run in torch's "[enforce fail at alloc_cpu.cpp:127] … can't allocate memory", or in
    the kernel killing the process."""
    argv = ["train", "--data", trained["data"], "--arch", "resnext152_256x512d", "--device", "cpu"]
    rc, _, err = run(capsys, *argv, "--runs-dir", tmp_path / "r")
    assert rc == 2 and one_line(err) and err.startswith("error: --arch resnext152_256x512d: training it needs about")
    assert "choose a smaller model, batch or image size" in err and not (tmp_path / "r").exists()
    # the CPU trains in float32 (--amp is CUDA's): the figure is that estimate, as the app's model summary says it
    from core import models

    said = float(re.search(r"needs about ([\d.]+) GB at batch (\d+)", err).group(1))
    batch = int(re.search(r"at batch (\d+)", err).group(1))
    classes = len([p for p in Path(trained["data"]).iterdir() if p.is_dir()])
    fp32 = models.estimate_train_memory("resnext152_256x512d", classes, 64, batch, amp=False) / 2**30
    assert said == pytest.approx(fp32, abs=0.06), (said, fp32)
    # a batch size far above the training images is one batch of them all: not refused for its memory
    from core.engine import Trainer

    flags = ["--arch", "resnext11_2x4d", "--batch-size", "10000000", "--image-size", "16", "--device", "cpu"]
    cfg = _train_config(build_parser().parse_args(["train", "--data", str(trained["data"]), *flags]))
    assert Trainer(cfg, runs_dir=tmp_path / "r2").config.train.batch_size == 10_000_000  # (it said 120 GB)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes and symbolic links without privileges: POSIX")
def test_outputs_are_never_written_over_links_pipes_or_devices(capsys, trained, tmp_path):
    """An output is written beside its path and renamed over it, which replaces the path itself: `export --out
    /dev/null` left /dev/null a regular file, and a CSV aimed at a link replaced the link with a file."""
    photo = tmp_path / "0.png"
    photo.write_bytes((trained["data"] / "red" / "0.png").read_bytes())
    kept = tmp_path / "kept.csv"
    kept.write_text("mine")
    link = tmp_path / "link.csv"
    link.symlink_to(kept)
    pipe = tmp_path / "pipe.onnx"
    os.mkfifo(pipe)
    for argv, what in (
        (("predict", "--checkpoint", trained["best"], photo, "--csv", link), f"a symbolic link (to {kept})"),
        (("export", "--checkpoint", trained["best"], "--format", "onnx", "--out", pipe), "a named pipe"),
    ):
        rc, _, err = run(capsys, *argv)
        assert rc == 2 and one_line(err) and f"{what}, not a regular file; name a file to write" in err, err
    assert link.is_symlink() and kept.read_text() == "mine" and stat.S_ISFIFO(pipe.lstat().st_mode)
    # (/dev/null itself is not aimed at: a failing check would replace this machine's)
    from core.runs import special_kind

    assert special_kind(os.devnull) == "a device" and special_kind(kept) == "" and special_kind(tmp_path / "no") == ""


def test_a_run_folder_is_its_best_checkpoint_and_odd_names_are_written_as_they_are(capsys, trained, tmp_path):
    odd = tmp_path / "in"
    odd.mkdir()
    name = os.fsdecode(b"caf\xe9.png")  # not UTF-8 (a Latin-1 name from an old camera or archive)
    (odd / name).write_bytes((trained["data"] / "red" / "0.png").read_bytes())
    rc, out, err = run(capsys, "predict", "--checkpoint", trained["run"], odd, "--csv", tmp_path / "p.csv", "--json")
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["checkpoint"] == str(trained["best"]) and doc["predictions"][0]["ok"]
    assert os.fsencode(odd / name) in (tmp_path / "p.csv").read_bytes()  # the file's own bytes, so it can be found
    rc, out, err = run(capsys, "predict", "--checkpoint", trained["run"], odd)
    assert rc == 0 and "caf\\udce9.png" in out  # printed escaped instead of crashing on a strict terminal


def test_pretrained_imagenet_without_arch_picks_the_imagenet_family(trained):
    args = build_parser().parse_args(
        ["train", "--data", str(trained["data"]), "--pretrained", "imagenet", "--device", "cpu"]
    )
    cfg = _train_config(args)
    assert cfg.model.arch == "resnext50_32x4d" and cfg.model.mode == "linear" and cfg.data.image_size == 224


def test_a_test_split_flag_on_split_folders_says_where_test_images_come_from(capsys, tmp_path):
    """With train/ and val/ only, it said the folder "keeps its test images in test/": there is none."""
    from core.cli import _warn_unused_split_flags
    from core.data import scan

    for part in ("train", "val"):
        make_set(tmp_path / "d" / part, per_class=3)
    args = build_parser().parse_args(["train", "--data", str(tmp_path / "d"), "--test-split", "0.2"])
    _warn_unused_split_flags(args, scan(tmp_path / "d"))
    err = capsys.readouterr().err
    assert err == (
        f"warning: --test-split 0.2 is not used: {tmp_path / 'd'} has split folders: test images come from a test/ "
        "folder (it has none)\n"
    )
    make_set(tmp_path / "d" / "test", per_class=2)
    _warn_unused_split_flags(args, scan(tmp_path / "d"))
    assert capsys.readouterr().err.endswith("keeps its test images in test/\n")


def test_predict_csv_dash_writes_the_table_on_stdout(capsys, trained, tmp_path, monkeypatch):
    """`--csv -` wrote a file named "-" in the working folder."""
    import csv
    import io

    monkeypatch.chdir(tmp_path)
    images = sorted((trained["data"] / "red").iterdir())[:2]
    rc, out, err = run(capsys, "predict", "--checkpoint", trained["run"], *images, "--csv", "-", "--top-k", "2")
    assert rc == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["source"] for r in rows] == [str(p) for p in images] and all(r["ok"] == "yes" for r in rows)
    assert not (tmp_path / "-").exists()
    # byte for byte what the file holds (rows end "\r\n" once; text-mode stdout made it "\r\r\n" on Windows)
    import subprocess
    import sys

    argv = [sys.executable, str(Path(__file__).resolve().parents[2] / "main.py"), "predict", "--checkpoint"]
    argv += [str(trained["run"]), *map(str, images), "--quiet", "--csv"]
    piped = subprocess.run([*argv, "-"], capture_output=True, timeout=120).stdout
    assert subprocess.run([*argv, str(tmp_path / "p.csv")], capture_output=True, timeout=120).returncode == 0
    assert piped == (tmp_path / "p.csv").read_bytes() and piped.count(b"\r\n") == 3
    rc, out, err = run(capsys, "predict", "--checkpoint", trained["run"], images[0], "--csv", "-", "--json")
    assert rc == 2 and out == "" and err == "error: --csv - and --json both write to stdout: choose one\n"
    rc, out, err = run(capsys, "predict", "--checkpoint", trained["run"], "-")  # (it said "-: file not found")
    assert rc == 2 and err == (
        "error: -: predict reads images from files, not from standard input; give the image's path\n"
    )


def test_a_moved_or_copied_data_folder_is_known_as_the_runs_own(capsys, trained, tmp_path):
    """Given at its new place, the run's own images were all scored, the ones it trained on too, with no word
    (66.67 % where its validation images gave less). The file list recorded at training tells them."""
    rc, out, _ = run(capsys, "evaluate", "--checkpoint", trained["run"], "--json", "--quiet")
    assert rc == 0
    own = json.loads(out)
    moved = shutil.copytree(trained["data"], tmp_path / "elsewhere" / "data")
    rc, out, err = run(capsys, "evaluate", "--checkpoint", trained["run"], "--data", moved, "--json", "--quiet")
    assert rc == 0, err
    there = json.loads(out)
    assert own["split"] == there["split"] == "val"  # the same held-out images, drawn again
    assert (there["num_samples"], there["confusion_matrix"]) == (own["num_samples"], own["confusion_matrix"])
    assert f"note: {moved} holds the images this run trained on" in err
    Image.new("RGB", (20, 20), "white").save(moved / "red" / "0.png")  # the same names, another image: another set
    rc, out, err = run(capsys, "evaluate", "--checkpoint", trained["run"], "--data", moved, "--json", "--quiet")
    assert rc == 0 and json.loads(out)["split"] == "all" and "holds the images" not in err
    # ... but most of it is the run's training images, scored as new: said (the accuracy read high, unsaid)
    said = re.search(r"warning: (\d+) of these 18 images are copies of images this model trained on", err)
    assert said and 1 <= int(said.group(1)) < 18 and json.loads(out)["trained_copies"] in err
    rc, _, err = run(capsys, "evaluate", "--checkpoint", trained["run"], "--data", moved)
    assert rc == 0 and "looking for copies of its training images (scanning its folder)" in err  # (not --quiet: the
    # scan of its own folder, as long as the evaluation's, has its own bar)
    new = make_set(tmp_path / "new", per_class=2, shade=30)  # new images only: nothing to say
    rc, _, err = run(capsys, "evaluate", "--checkpoint", trained["run"], "--data", new, "--quiet")
    assert rc == 0 and "copies" not in err, err


def test_resuming_a_run_still_training_before_its_first_save_says_so(capsys, tmp_path):
    """It said "no last.pt in that folder" (true, but the run was still training: its last.pt was to come)."""
    import socket
    import time

    run_dir = tmp_path / "runs" / "20261127-120000-resnext11_4x8d-d"
    run_dir.mkdir(parents=True)
    status = {"status": "running", "pid": os.getppid(), "hostname": socket.gethostname(), "updated": time.time()}
    (run_dir / "status.json").write_text(json.dumps(status))
    rc, _, err = run(capsys, "train", "--resume", run_dir)
    assert rc == 2 and one_line(err), err
    assert err.startswith(f"error: --resume {run_dir}: this run is still training (process {os.getppid()})"), err
    (run_dir / ".paused").touch()  # the window that trains it holds it paused
    rc, _, err = run(capsys, "train", "--resume", run_dir)
    assert rc == 2 and f"this run is paused in another window (process {os.getppid()})" in err, err
    (run_dir / ".paused").unlink()
    status["pid"] = 2**22 + 12345  # gone: a run that ended before saving anything
    (run_dir / "status.json").write_text(json.dumps(status))
    rc, _, err = run(capsys, "train", "--resume", run_dir)
    assert rc == 2 and err == f"error: --resume {run_dir}: no last.pt in that folder\n"


def test_another_schedule_than_the_cosine_takes_no_warm_up_from_the_preset(trained):
    """--scheduler plateau kept the CPU preset's half-epoch warm-up: a warning that it belongs to the cosine, of
    a value the user never gave. One given (flag or config file) is kept, and told."""
    flags = ["train", "--data", str(trained["data"]), "--device", "cpu", "--scheduler"]
    assert _train_config(build_parser().parse_args([*flags, "cosine"])).train.warmup_epochs > 0  # (the preset's)
    assert _train_config(build_parser().parse_args([*flags, "plateau"])).train.warmup_epochs == 0
    given = build_parser().parse_args([*flags, "step", "--warmup-epochs", "2"])
    assert _train_config(given).train.warmup_epochs == 2


@pytest.mark.timeout(300)
def test_unusable_files_are_listed_and_exit_1_after_training_on_the_rest(capsys, tmp_path):
    data = make_set(tmp_path / "data")
    (data / "red" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    runs = tmp_path / "runs"
    rc, out, err = run(capsys, "train", "--data", data, "--epochs", "1", "--runs-dir", runs, "--json", *TINY)
    assert rc == 1, err
    doc = json.loads(out)
    broken = str((data / "red" / "broken.png").absolute())
    assert doc["reason"] == "completed"
    assert [u["path"] for u in doc["unusable"]] == [broken] and doc["unusable"][0]["reason"]  # why rc is 1
    assert "warning: 1 file in " in err and "could not be used and is left out" in err and "broken.png" in err
    (run_dir,) = runs.iterdir()
    assert Path(doc["run_dir"]) == run_dir.absolute()
    rc, out, err = run(capsys, "evaluate", "--checkpoint", run_dir / "best.pt", "--split", "all", "--json")
    doc = json.loads(out)
    assert rc == 1 and "broken.png" in err and doc["num_samples"] == 18
    assert [u["path"] for u in doc["unusable"]] == [broken]
    # files written through a temp file get the permissions of a plainly created file, not mkstemp's 0600
    umask = os.umask(0)
    os.umask(umask)
    for name in ("best.pt", "last.pt", "config.json", "status.json", "evaluation.json"):
        assert stat.S_IMODE((run_dir / name).stat().st_mode) == 0o666 & ~umask, name


@pytest.mark.timeout(300)
def test_quiet_still_reports_a_failure_and_classes_without_training_images_are_named(capsys, tmp_path):
    data = tmp_path / "data"
    make_set(data / "train", classes=("red", "green"))
    make_set(data / "val", classes=("red", "Green", "blue"), per_class=2)
    rc, _, err = run(
        capsys, "train", "--data", data, "--epochs", "1", "--runs-dir", tmp_path / "runs", *TINY[:-2], "--lr", "1e30"
    )
    assert rc == 1
    assert "warning: no training images for classes Green, blue" in err
    assert "(folder names that differ only in case are two classes: Green / green)" in err
    assert "failed: loss became" in err.splitlines()[-1]
    rc, _, err = run(
        capsys,
        "train",
        "--data",
        data,
        "--epochs",
        "1",
        "--runs-dir",
        tmp_path / "runs",
        *TINY[:-2],
        "--lr",
        "1e30",
        "--quiet",
    )
    assert rc == 1 and err.strip().splitlines()[-1].startswith("failed: loss became")


@pytest.mark.timeout(300)
def test_resume_of_an_early_stopped_run_trains_nothing_unless_given_epochs(capsys, trained, tmp_path):
    """An early stop is how the run ended: resumed without --epochs it trained on past it (and exited 0)."""
    import shutil

    run_dir = shutil.copytree(trained["run"], tmp_path / "run")
    status = json.loads((run_dir / "status.json").read_text())
    status.update(reason="early_stop", message="no improvement in validation accuracy for 2 epochs")
    (run_dir / "status.json").write_text(json.dumps(status))
    cfg = json.loads((run_dir / "config.json").read_text())
    cfg["train"]["epochs"] = 9  # it planned 9 and stopped after 1
    (run_dir / "config.json").write_text(json.dumps(cfg))
    before = (run_dir / "last.pt").read_bytes()
    rc, _, err = run(capsys, "train", "--resume", run_dir)
    assert rc == 2 and one_line(err)
    assert "stopped early after epoch 1 of 9 (no improvement in validation accuracy for 2 epochs)" in err
    assert "give --epochs 9 to train on to its planned end" in err
    assert (run_dir / "last.pt").read_bytes() == before


@pytest.mark.timeout(300)
def test_resume_names_what_it_ignores_refuses_to_shrink_and_follows_moved_data(capsys, trained, tmp_path):
    import shutil
    import socket

    run_dir = shutil.copytree(trained["run"], tmp_path / "run")
    rc, _, err = run(capsys, "train", "--resume", run_dir, "--epochs", "1")
    assert rc == 2 and one_line(err) and "already trained 1 epoch;" in err
    # killed after its last epoch (in its final evaluation): --epochs of its plan makes its end (it was refused)
    killed = shutil.copytree(run_dir, tmp_path / "killed")
    doc = json.loads((killed / "status.json").read_text())
    doc.update(status="running", hostname=socket.gethostname(), pid=2**22 + 7)  # (no such process)
    (killed / "status.json").write_text(json.dumps(doc))
    rc, _, err = run(capsys, "train", "--resume", killed, "--epochs", "1", "--quiet")
    assert rc == 0, err
    assert json.loads((killed / "status.json").read_text())["status"] == "completed"
    rc, _, err = run(capsys, "train", "--resume", run_dir)  # finished: says how to go on, trains nothing
    assert rc == 2 and one_line(err) and "has trained all its 1 epoch; give --epochs 6" in err
    for status in ("", "{{"):  # status.json lost or damaged: its history still says it trained them all
        lost = shutil.copytree(run_dir, tmp_path / f"lost{len(status)}")
        (lost / "status.json").unlink() if not status else (lost / "status.json").write_text(status)
        kept = {p.name: p.read_bytes() for p in lost.iterdir() if p.is_file()}
        rc, _, err = run(capsys, "train", "--resume", lost)
        assert rc == 2 and one_line(err) and "has trained all its 1 epoch; give --epochs 6" in err
        rc, _, err = run(capsys, "train", "--resume", lost, "--epochs", "1")  # (by the same test: it "resumed")
        assert rc == 2 and one_line(err) and "already trained 1 epoch;" in err
        assert {p.name: p.read_bytes() for p in lost.iterdir() if p.is_file()} == kept  # (nothing rewritten)
    gone = shutil.copytree(run_dir, tmp_path / "gone_run")
    ck = load(gone / "last.pt")
    ck["config"]["data"]["root"] = str(tmp_path / "gone")  # its images are no longer where they were
    torch.save(ck, gone / "last.pt")
    rc, _, err = run(capsys, "train", "--resume", gone, "--epochs", "2")
    assert (
        rc == 2
        and one_line(err)
        and err.endswith("no such folder; if its images moved, give --data DIR where they are now\n")
    )
    moved = shutil.copytree(trained["data"], tmp_path / "moved")
    rc, out, err = run(capsys, "train", "--resume", run_dir, "--epochs", "2", "--lr", "5", "--data", moved, "--json")
    assert rc == 0, err
    assert "warning: --lr ignored" in err
    assert [h["epoch"] for h in json.loads(out)["history"]] == [1, 2]
    assert load(run_dir / "last.pt")["config"]["train"]["lr"] == 0.01


def test_cam_overlays_of_same_named_images_do_not_overwrite_each_other(capsys, trained, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for folder, src in ((a, "red/0.png"), (b, "green/0.png")):
        folder.mkdir()
        (folder / "photo.png").write_bytes((trained["data"] / src).read_bytes())
    rc, _, err = run(capsys, "predict", "--checkpoint", trained["best"], a, b, "--cam", tmp_path / "cams")
    assert rc == 0, err
    assert sorted(p.name for p in (tmp_path / "cams").iterdir()) == ["photo_2_gradcam.png", "photo_gradcam.png"]
    (b / "photo.png").rename(b / "Photo.png")  # one file name on Windows and macOS: not one overlay there either
    rc, _, err = run(capsys, "predict", "--checkpoint", trained["best"], a, b, "--cam", tmp_path / "cams2")
    assert rc == 0, err
    assert sorted(p.name for p in (tmp_path / "cams2").iterdir()) == ["Photo_2_gradcam.png", "photo_gradcam.png"]
    # --json names each image's overlay (which of the two was whose was said nowhere)
    rc, out, err = run(capsys, "predict", "--checkpoint", trained["best"], b, a, "--cam", tmp_path / "c3", "--json")
    assert rc == 0, err
    got = {Path(p["source"]).parent.name: Path(p["overlay"]) for p in json.loads(out)["predictions"]}
    assert got == {"b": tmp_path / "c3" / "Photo_gradcam.png", "a": tmp_path / "c3" / "photo_2_gradcam.png"}
    rc, _, err = run(capsys, "predict", "--checkpoint", trained["best"], tmp_path / "missing.png")
    assert rc == 2  # nothing could be classified


def test_a_huge_photos_overlay_is_drawn_at_most_4096_px_on_a_side(capsys, trained, tmp_path):
    """A 15000 x 11900 photo's overlay was drawn at full size: 4.2 GB of memory, and Pillow warned of a
    decompression bomb about the overlay itself."""
    big = tmp_path / "wide.png"
    Image.new("RGB", (6000, 300), (200, 10, 10)).save(big)
    rc, out, err = run(capsys, "predict", "--checkpoint", trained["best"], big, "--cam", tmp_path / "c", "--json")
    assert rc == 0, err
    with Image.open(json.loads(out)["predictions"][0]["overlay"]) as overlay:
        assert overlay.size == (4096, 205)


def test_a_ctrl_c_during_the_overlays_keeps_the_predictions(capsys, trained, tmp_path, monkeypatch):
    """Ctrl-C while the Grad-CAM overlays were drawn (the slow part) threw away every answer already made: no
    table, nothing printed, and a half-full overlay folder. Now the table is written and the answers printed,
    and it still ends as interrupted (130)."""
    import core.predict

    real, calls = core.predict.save_cam_overlay, []

    def save(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(core.predict, "save_cam_overlay", save)
    table = tmp_path / "p.csv"
    folder = trained["data"] / "red"
    rc, out, err = run(
        capsys, "predict", "--checkpoint", trained["best"], folder, "--cam", tmp_path / "c", "--csv", table
    )
    images = sorted(folder.iterdir())
    assert rc == 130 and len(images) > 3
    assert f"interrupted with 2 of {len(images)} made" in err and err.rstrip().endswith("interrupted")
    assert len(list((tmp_path / "c").iterdir())) == 2
    with table.open(newline="") as f:
        assert len(list(csv.DictReader(f))) == len(images)  # every answer, in the table …
    assert len(out.splitlines()) == len(images)  # … and printed


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs signal.pthread_kill")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # (the swallowed Ctrl-C)
def test_a_ctrl_c_swallowed_while_train_starts_still_stops_it(capsys, trained, tmp_path, monkeypatch):
    """A Ctrl-C raised inside a callback (a module lock's, as torch is imported) is reported by Python as
    "ignored" and lost: the run trained to its end and exited 0. Here the callback is a weakref's."""
    import gc
    import threading
    import weakref

    import core.cli

    real = core.cli._warn_unused_split_flags

    def signalled_in_a_callback(*a, **k):
        class Thing:
            pass

        def callback(_ref):
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
            sum(range(1000))  # (the handler runs here, and its KeyboardInterrupt is ignored)

        thing = Thing()
        ref = weakref.ref(thing, callback)
        del thing
        gc.collect()
        assert ref() is None
        return real(*a, **k)

    monkeypatch.setattr(core.cli, "_warn_unused_split_flags", signalled_in_a_callback)
    runs = tmp_path / "runs"
    rc, _, err = run(capsys, "train", "--data", trained["data"], "--runs-dir", runs, *TINY, "--epochs", "1")
    assert rc == 130 and err.rstrip().endswith("interrupted")
    assert not list(runs.glob("*/history.csv"))  # no epoch was trained


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a closed pseudo-terminal gives EIO on Linux")
def test_a_closed_terminal_during_the_overlays_keeps_the_predictions(trained, tmp_path):
    """SIGHUP (the terminal closed) while the overlays were drawn: the note to the dead terminal failed (EIO),
    and that error, reported to it again, ended the command in a traceback (exit 1) with no table written."""
    import subprocess

    table = tmp_path / "p.csv"
    argv = ["predict", "--checkpoint", str(trained["best"]), str(trained["data"] / "red"), "--cam", str(tmp_path / "c")]
    script = f"""
import os, pty, signal, sys
import core.cli, core.predict
master, slave = pty.openpty()
real, calls = core.predict.save_cam_overlay, []
def save(*a, **k):
    calls.append(1)
    if len(calls) == 3:
        os.close(master)  # the terminal is gone
        os.kill(os.getpid(), signal.SIGHUP)
    return real(*a, **k)
core.predict.save_cam_overlay = save
report = os.dup(1)
os.dup2(slave, 1)
os.dup2(slave, 2)
sys.stdout, sys.stderr = os.fdopen(1, "w", buffering=1), os.fdopen(2, "w", buffering=1)  # (as on a terminal)
rc = core.cli.main({[*argv, "--csv", str(table)]!r})
os.write(report, f"rc={{rc}}".encode())
"""
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=120)
    assert done.stdout == "rc=129", (done.returncode, done.stdout, done.stderr)
    with table.open(newline="") as f:
        assert len(list(csv.DictReader(f))) == len(list((trained["data"] / "red").iterdir()))


def test_cam_overlays_replace_older_overlays_only_never_a_users_file_or_an_input(capsys, trained, tmp_path):
    """`predict D --cam D` wrote n01.png's overlay over the user's own n01_gradcam.png, itself one of the inputs."""
    d = tmp_path / "d"
    d.mkdir()
    for name, src in (("n00.png", "red/0.png"), ("n01.png", "green/0.png"), ("n01_gradcam.png", "blue/0.png")):
        (d / name).write_bytes((trained["data"] / src).read_bytes())
    own = (d / "n01_gradcam.png").read_bytes()
    rc, _, err = run(capsys, "predict", "--checkpoint", trained["best"], d, "--cam", d)
    assert rc == 0, err
    assert (d / "n01_gradcam.png").read_bytes() == own  # the user's file (and an input) is kept
    made = sorted(p.name for p in d.iterdir() if p.name not in ("n00.png", "n01.png", "n01_gradcam.png"))
    assert made == ["n00_gradcam.png", "n01_2_gradcam.png", "n01_gradcam_gradcam.png"]
    # an older overlay is replaced (no _2 pile-up) …
    cams = tmp_path / "cams"
    rc, _, err = run(capsys, "predict", "--checkpoint", trained["best"], d / "n01.png", "--cam", cams)
    (cams / "n01_gradcam.png").rename(cams / "n00_gradcam.png")  # (an overlay of ours, of another image)
    older = (cams / "n00_gradcam.png").read_bytes()
    rc, _, err = run(capsys, "predict", "--checkpoint", trained["best"], d / "n00.png", "--cam", cams)
    assert rc == 0 and sorted(p.name for p in cams.iterdir()) == ["n00_gradcam.png"]
    assert (cams / "n00_gradcam.png").read_bytes() != older
    # … an overlay of ours in a folder read is left out of its images, and said (each `predict D --cam D` classified
    # the last one's overlays and piled up more) …
    rc, _, err = run(capsys, "predict", "--checkpoint", trained["best"], d / "n00.png", cams, "--cam", cams)
    assert rc == 1 and "note: 1 Grad-CAM overlay of an earlier predict --cam left out (not photos)" in err
    assert f"error: {cams}: no image files in this folder but Grad-CAM overlays of an earlier predict --cam" in err
    assert sorted(p.name for p in cams.iterdir()) == ["n00_gradcam.png"]
    # … but named on its own it is an input: it is classified, kept, and its own overlay is made too
    as_input = (cams / "n00_gradcam.png").read_bytes()
    named = cams / "n00_gradcam.png"
    rc, _, err = run(capsys, "predict", "--checkpoint", trained["best"], d / "n00.png", named, "--cam", cams)
    assert rc == 0 and (cams / "n00_gradcam.png").read_bytes() == as_input
    assert sorted(p.name for p in cams.iterdir()) == ["n00_2_gradcam.png", "n00_gradcam.png", "n00_gradcam_gradcam.png"]


def test_an_overlay_that_cannot_be_made_keeps_every_prediction(capsys, trained, tmp_path, monkeypatch):
    """An image gone between its prediction and its overlay (a traceback), or a 240-byte file name (exit 2): the
    CSV and the printed results were lost with it."""
    from core.predict import Predictor

    folder = tmp_path / "in"
    folder.mkdir()
    long = folder / ("x" * 240 + ".png")
    for i, target in enumerate((long, folder / "gone.png", folder / "kept.png")):
        target.write_bytes((trained["data"] / "red" / f"{i}.png").read_bytes())
    real = Predictor.gradcam

    def image_gone(self, source, *args, **kwargs):
        if Path(str(source)).name == "gone.png":
            Path(str(source)).unlink()
        return real(self, source, *args, **kwargs)

    monkeypatch.setattr(Predictor, "gradcam", image_gone)
    csv = tmp_path / "out.csv"
    rc, out, err = run(
        capsys, "predict", "--checkpoint", trained["best"], folder, "--cam", tmp_path / "cams", "--csv", csv
    )
    assert rc == 1, err
    assert f"error: {folder / 'gone.png'}: no Grad-CAM overlay: file not found" in err
    assert len(out.splitlines()) == 3 and len(csv.read_text().splitlines()) == 4  # header + every prediction
    cams = sorted(p.name for p in (tmp_path / "cams").iterdir())
    assert cams == ["kept_gradcam.png", "x" * 180 + "_gradcam.png"]


def test_grad_cam_overlays_on_a_full_disk_are_said_once(capsys, trained, tmp_path, monkeypatch):
    """Each overlay after the disk filled said its own "No space left on device": 160 lines for 160 images."""
    import errno

    import core.predict as cp

    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(4):
        (folder / f"{i}.png").write_bytes((trained["data"] / "red" / f"{i}.png").read_bytes())
    tried = []

    def full(*args, **kwargs):
        tried.append(args)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cp, "save_cam_overlay", full)
    rc, out, err = run(capsys, "predict", "--checkpoint", trained["best"], folder, "--cam", tmp_path / "cams", "--json")
    lines = [ln for ln in err.splitlines() if "Grad-CAM overlay" in ln]
    assert rc == 1 and len(tried) == 1 and len(lines) == 1, err
    assert lines[0].endswith("no Grad-CAM overlay: No space left on device; the 3 overlays after it are not made")
    doc = json.loads(out)  # every image without its overlay is still listed as such
    assert [e["error"] for e in doc["errors"]] == [lines[0].split(": ", 2)[2].split(";")[0]] + [
        f"no Grad-CAM overlay: {tmp_path / 'cams'} is full"
    ] * 3
    assert [p["overlay"] for p in doc["predictions"]] == [None] * 4


def test_a_relative_data_folder_still_works_from_another_working_folder(capsys, trained, tmp_path, monkeypatch):
    """`train --data photos` stored "photos": evaluate and resume then failed anywhere but where train had run."""
    import shutil

    monkeypatch.chdir(trained["data"].parent)
    runs_dir = tmp_path / "runs"
    assert (
        main(["train", "--data", trained["data"].name, "--epochs", "1", "--runs-dir", str(runs_dir), "--quiet", *TINY])
        == 0
    )
    (run_dir,) = runs_dir.iterdir()
    assert json.loads((run_dir / "config.json").read_text())["data"]["root"] == str(trained["data"])
    # a run made before the path was stored absolute: data.root as typed, config.json's dataset.root absolute
    old = shutil.copytree(run_dir, tmp_path / "old_run")
    for name in ("best.pt", "last.pt"):
        ck = torch.load(old / name, weights_only=True)
        ck["config"]["data"]["root"] = trained["data"].name
        torch.save(ck, old / name)
    doc = json.loads((old / "config.json").read_text())
    doc["data"]["root"] = trained["data"].name
    (old / "config.json").write_text(json.dumps(doc))
    monkeypatch.chdir(tmp_path)
    rc, out, err = run(capsys, "evaluate", "--checkpoint", old, "--json")
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["data_root"] == str(trained["data"]) and doc["split"] == "val"  # held out, not "all" (training too)
    rc, out, err = run(capsys, "train", "--resume", old, "--epochs", "2", "--json")
    assert rc == 0, err
    assert [h["epoch"] for h in json.loads(out)["history"]] == [1, 2]


def test_only_settings_are_translated_into_flags():
    """A run folder named `myrun` that was locked read "--myrun: this run is training right now"."""
    from core.cli import _flag_message
    from core.config import ConfigError

    assert _flag_message(ConfigError("train.batch_size=1: must be ≥ 2")) == "--batch-size 1: must be ≥ 2"
    assert _flag_message(ConfigError("data.root: no data folder given")) == "--data: no data folder given"
    assert _flag_message(ConfigError("runs_dir='/r': not writable")) == "--runs-dir /r: not writable"
    for text in (
        "myrun: this run is training right now (its folder is locked); stop it before resuming it",
        "WORLD_SIZE=3: but this PyTorch build has no distributed support",
        "cfg.json: not valid JSON (Expecting value)",
        "exp.lr: this run is training right now (its folder is locked); stop it before resuming it",
    ):
        assert _flag_message(ConfigError(text)) == text


def test_a_resume_given_a_relative_data_folder_trains_on_that_folder(capsys, trained, tmp_path, monkeypatch):
    """`--resume RUN --data copy` went on with the run's old folder, without a word."""
    import shutil

    run_dir = shutil.copytree(trained["run"], tmp_path / "run")
    shutil.copytree(trained["data"], tmp_path / "copy")
    monkeypatch.chdir(tmp_path)
    rc, _, err = run(capsys, "train", "--resume", run_dir, "--epochs", "2", "--data", "copy", "--quiet")
    assert rc == 0, err
    assert load(run_dir / "last.pt")["config"]["data"]["root"] == str(tmp_path / "copy")


def test_an_empty_argument_is_refused_not_read_as_the_working_folder(capsys, trained, tmp_path, monkeypatch):
    """`predict "$IMG"` with IMG unset classified everything under the working folder; --data "" fell back."""
    (tmp_path / "private.png").write_bytes((trained["data"] / "red" / "0.png").read_bytes())
    monkeypatch.chdir(tmp_path)
    for argv, name in (
        (["predict", "--checkpoint", trained["best"], ""], "PATH"),
        (["predict", "--checkpoint", trained["best"], trained["data"] / "red" / "1.png", ""], "PATH"),
        (["evaluate", "--checkpoint", trained["best"], "--data", ""], "--data"),
        (["train", "--config", "", "--data", trained["data"]], "--config"),
        (["scan", ""], "DIR"),
    ):
        rc, out, err = run(capsys, *argv)
        assert rc == 2 and out == "" and one_line(err), argv
        assert err == f'error: {name}: an empty value ("")\n'


def test_evaluating_a_changed_data_folder_warns_that_its_split_may_hold_training_images(capsys, tmp_path):
    """Images added after training: `evaluate` drew the val split again and scored training images, silently."""
    import shutil

    from core.runs import config_section, data_changes

    data = make_set(tmp_path / "data", per_class=8)
    run_dir = train_tiny(data, tmp_path / "runs")
    rc, _, err = run(capsys, "evaluate", "--checkpoint", run_dir, "--quiet")
    assert rc == 0 and "warning" not in err, err
    shutil.copy(data / "red" / "0.png", data / "red" / "0 copy.png")
    rc, _, err = run(capsys, "evaluate", "--checkpoint", run_dir, "--quiet")
    assert rc == 0 and "warning: the data folder changed since this run trained (red 8 → 9)" in err
    assert "its val split is drawn again" in err
    (data / "red" / "0 copy.png").unlink()
    (data / "red" / "1.png").rename(data / "red" / "renamed.png")  # 8 each again, but not the same files
    assert (
        data_changes(config_section(run_dir, "dataset"), {"red": 8, "green": 8, "blue": 8}) == []
    )  # (counts alone cannot tell)
    rc, _, err = run(capsys, "evaluate", "--checkpoint", run_dir, "--quiet")
    assert "(other images, the same counts)" in err
    rc, _, err = run(capsys, "evaluate", "--checkpoint", run_dir, "--quiet", "--split", "all")
    assert "warning" not in err  # "all" says what it is: every image


def test_evaluating_a_run_that_kept_no_held_out_images_warns_that_it_scores_its_training_images(capsys, tmp_path):
    """--val-split 0: evaluate fell back to every image of the run's folder, with no word that the model trained on
    them; a folder of new images needs no such warning."""
    data = make_set(tmp_path / "data", per_class=4)
    runs = tmp_path / "runs"
    argv = ["train", "--data", str(data), "--epochs", "1", "--runs-dir", str(runs), "--val-split", "0", "--quiet"]
    assert main([*argv, *TINY]) == 0
    (run_dir,) = runs.iterdir()
    rc, out, err = run(capsys, "evaluate", "--checkpoint", run_dir, "--quiet")
    assert rc == 0 and out.startswith("12 images (all)")
    assert "warning: this run kept no validation or test images, so every image of its data folder is scored" in err
    new = make_set(tmp_path / "new", shade=30)  # (new images: the same bytes are now said to be training images)
    rc, _, err = run(capsys, "evaluate", "--checkpoint", run_dir, "--data", new, "--quiet")
    assert rc == 0 and "warning" not in err


@pytest.mark.parametrize("quiet", [[], ["--quiet"]])
def test_an_image_unreadable_while_training_makes_train_exit_1_and_is_listed(capsys, tmp_path, monkeypatch, quiet):
    """260 "skipped" lines (each file again every epoch), then exit 0 and "completed" as if nothing was lost.
    Under --quiet the file was named three times: its warning, the run's end, and a list of its own."""
    from core import data as data_module

    data = make_set(tmp_path / "data", per_class=8)
    victim = str(data / "green" / "3.png")
    real = data_module.load_for_model

    def gone(source, image_size):
        if str(source) == victim:
            raise data_module.ImageLoadError(victim, "file not found")
        return real(source, image_size)

    monkeypatch.setattr(data_module, "load_for_model", gone)
    argv = ["train", "--data", data, "--epochs", "2", "--runs-dir", tmp_path / "runs", "--cache", "stream", "--json"]
    rc, out, err = run(capsys, *argv, *TINY, *quiet)
    assert rc == 1, err
    assert err.count(f"skipped {victim}") == 1 and err.count(victim) == 1, err
    assert f"1 image could not be read during training and was left out ({Path('green', '3.png')})" in err
    doc = json.loads(out)
    assert doc["reason"] == "completed" and doc["unreadable"] == [{"path": victim, "reason": "file not found"}]


def test_outputs_never_overwrite_a_run_folders_own_files(capsys, trained, tmp_path):
    """`export --out RUN/last.pt` succeeded and broke the run's resume; `--csv RUN/history.csv` cut its curves."""
    run_dir = trained["run"]
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    image = trained["data"] / "red" / "0.png"
    for argv, flag in (
        (["export", "--checkpoint", run_dir, "--format", "torchscript", "--out", run_dir / "last.pt"], "--out"),
        (["export", "--checkpoint", run_dir, "--format", "onnx", "--out", run_dir / "curves.png"], "--out"),
        (["predict", "--checkpoint", run_dir, image, "--csv", run_dir / "history.csv"], "--csv"),
        (["predict", "--checkpoint", run_dir, image, "--csv", run_dir / "evaluation.json"], "--csv"),
        (["export", "--checkpoint", run_dir, "--format", "torchscript", "--out", run_dir / "Last.pt"], "--out"),
    ):
        rc, _, err = run(capsys, *argv)
        assert rc == 2 and one_line(err) and f"error: {flag} " in err and "a run folder's own files" in err, argv
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before
    rc, _, err = run(capsys, "predict", "--checkpoint", run_dir, image, "--csv", run_dir / "my_predictions.csv")
    assert rc == 0, err  # another name in the run folder is fine
    (run_dir / "my_predictions.csv").unlink()


def test_a_held_out_test_folder_of_one_class_evaluates(capsys, trained, tmp_path):
    """`evaluate --data held_out/` with held_out/test/<class>/ was "only one class with images ('test')"."""
    held = tmp_path / "held_out" / "test" / "red"
    held.mkdir(parents=True)
    for i in range(3):
        (held / f"{i}.png").write_bytes((trained["data"] / "red" / f"{i}.png").read_bytes())
    rc, out, err = run(capsys, "evaluate", "--checkpoint", trained["best"], "--data", tmp_path / "held_out", "--json")
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["split"] == "all" and doc["num_samples"] == 3
    rc, out, err = run(
        capsys,
        "evaluate",
        "--checkpoint",
        trained["best"],
        "--data",
        tmp_path / "held_out",
        "--split",
        "test",
        "--json",
    )
    assert rc == 0 and json.loads(out)["num_samples"] == 3, err  # its own test/ part
    green = tmp_path / "held_out" / "test" / "green"
    green.mkdir()
    for i in range(3):
        (green / f"{i}.png").write_bytes((trained["data"] / "green" / f"{i}.png").read_bytes())
    rc, _, err = run(capsys, "train", "--data", tmp_path / "held_out", "--runs-dir", tmp_path / "runs", *TINY)
    assert rc == 2 and one_line(err) and "test/ but no train/ folder" in err


def test_train_warns_about_what_scan_would(capsys, tmp_path):
    """One image in two classes, or an empty class folder: `scan` warned, `train` said nothing and exited 0."""
    data = make_set(tmp_path / "data", per_class=6)
    (data / "green" / "copy of red 0.png").write_bytes((data / "red" / "0.png").read_bytes())
    (data / "purple").mkdir()
    (data / "grey").mkdir()
    (data / "grey" / "0.png").write_bytes(b"not a png")
    rc, _, err = run(
        capsys, "train", "--data", data, "--epochs", "1", "--runs-dir", tmp_path / "runs", "--quiet", *TINY
    )
    assert rc == 1, err  # (trained; an unusable file is a partial failure)
    assert (
        "warning: 1 group of identical files in different classes (one image, two labels); python main.py scan" in err
    )
    assert "warning: empty class folder left out: purple" in err
    assert "warning: class folder left out, none of its files can be used: grey" in err


def test_a_resume_that_moves_data_or_device_keeps_an_extensions_plan(capsys, tmp_path):
    """`train --resume RUN --device cpu` (or --data) after an extension was killed: back to the old total, nothing
    trained; a plain --resume went on to the plan."""
    data = make_set(tmp_path / "data", per_class=6)
    run_dir = train_tiny(data, tmp_path / "runs")
    doc = json.loads((run_dir / "config.json").read_text())
    doc["train"]["epochs"] = 2  # what `--epochs 2` wrote before it was killed
    (run_dir / "config.json").write_text(json.dumps(doc))
    (run_dir / "status.json").write_text(json.dumps({"status": "interrupted"}))
    rc, out, err = run(capsys, "train", "--resume", run_dir, "--device", "cpu", "--data", data, "--json", "--quiet")
    assert rc == 0, err
    assert [h["epoch"] for h in json.loads(out)["history"]] == [1, 2]


def test_the_end_line_names_the_score_the_best_epoch_was_chosen_by(capsys, trained, tmp_path):
    """--config with train.monitor val_loss: the best epoch is the lowest validation loss, and the end line says
    so (it said "val acc …" of an epoch chosen by its loss)."""
    cfg = tmp_path / "settings.json"
    cfg.write_text(json.dumps({"train": {"monitor": "val_loss"}}))
    argv = ["train", "--data", trained["data"], "--epochs", "1", "--runs-dir", tmp_path / "r", "--config", cfg]
    rc, _, err = run(capsys, *argv, *TINY)
    assert rc == 0, err
    assert "completed; best epoch 1 (val loss " in err.splitlines()[-1]


def test_runs_kept_inside_the_data_folder_are_said_and_left_out(capsys, trained, tmp_path):
    """`train --data D --runs-dir D/runs`, again: the second run had a class "runs" (of curves.png files)."""
    data = tmp_path / "d"
    shutil.copytree(trained["data"], data)
    argv = ["train", "--data", data, "--runs-dir", data / "runs", "--epochs", "1", *TINY, "--quiet", "--json"]
    for _ in range(2):
        rc, out, err = run(capsys, *argv)
        assert rc == 0, err
    classes = load(Path(json.loads(out)["run_dir"]) / "best.pt")["class_names"]
    assert classes == sorted(p.name for p in trained["data"].iterdir() if p.is_dir())
    assert "note: run folders in the data folder are left out (not images to learn from): " in err
    assert json.loads(out)["unusable"] == []
    rc, out, _ = run(capsys, "scan", data)
    assert rc == 0 and out.count("run folder ignored (not images): ") == 2 and f"in {len(classes)} classes" in out
    rc, out, _ = run(capsys, "scan", data, "--json", "--quiet")
    doc = json.loads(out)
    assert rc == 0 and doc["bad_files"] == [] and len(doc["run_folders"]) == 2  # (apart, as train --json has them)


def test_split_shares_that_leave_nothing_to_train_name_both(capsys, trained, tmp_path):
    """`--test-split 0.9` was refused as "--val-split 0.2: val + test must be < 1", a flag not given."""
    rc, _, err = run(capsys, "train", "--data", trained["data"], "--runs-dir", tmp_path / "r", "--test-split", "0.9")
    assert rc == 2 and one_line(err), err
    assert err == (
        "error: the validation share 0.2 + the test share 0.9 = 1.1: must be < 1, or no image is left to train on "
        "(--val-split, --test-split)\n"
    )
    assert not (tmp_path / "r").exists()


def test_python_m_core_cli_runs_the_command_line(trained):
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "core.cli", "scan", str(trained["data"]), "--json", "--quiet"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and json.loads(done.stdout)["num_images"] > 0, done.stderr


def test_an_output_that_cannot_be_written_is_refused_before_the_work(capsys, trained, tmp_path, monkeypatch):
    """predict computed every prediction, then failed on --csv in a folder it could not write in and printed none
    of them. (/proc refuses new files to root too.)"""
    if not Path("/proc/self").is_dir():
        pytest.skip("needs /proc")
    predicted = []
    monkeypatch.setattr("core.predict.Predictor.predict", lambda *a, **k: predicted.append(1) or [])
    image = trained["data"] / "red" / "0.png"
    for flag, out in (("--csv", "/proc/p.csv"), ("--cam", "/proc"), ("--csv", "/proc/self/p.csv")):
        rc, _, err = run(capsys, "predict", "--checkpoint", trained["best"], image, flag, out)
        where = Path(out) if flag == "--cam" else Path(out).parent
        assert rc == 2 and one_line(err) and f"{flag} {out}: cannot write in {where} (" in err, err
    assert predicted == []
    writable = tmp_path / "cams"  # (an existing folder is the one tried, not the one above it)
    writable.mkdir()
    rc, _, err = run(capsys, "predict", "--checkpoint", trained["best"], image, "--cam", writable)
    assert "cannot write" not in err and predicted == [1]


def test_a_file_whose_name_begins_with_a_dash_gets_a_hint(capsys, trained, tmp_path, monkeypatch):
    """argparse reads "-odd.png" as an option: "the following arguments are required: PATH", and nothing more."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(next(Path(trained["data"]).rglob("*.png")), tmp_path / "-odd.png")
    rc, _, err = run(capsys, "predict", "--checkpoint", trained["run"], "-odd.png")
    assert (
        rc == 2
        and one_line(err)
        and err.rstrip().endswith("(-odd.png is a file: put -- before names that begin with '-')")
    )
    rc, out, err = run(capsys, "predict", "--checkpoint", trained["run"], "--quiet", "--", "-odd.png")
    assert rc == 0 and out.startswith("-odd.png\t"), (out, err)
    rc, _, err = run(capsys, "predict", "--checkpoint", tmp_path / "nosuch.pt", "--", "-odd.png")
    assert rc == 2 and "put --" not in err  # (another error, and -- given: no hint)


def test_a_line_break_in_a_name_does_not_make_a_line_of_its_own(capsys, tmp_path):
    """`scan` printed a bad file named "evil\\n  fake.jpg" as two lines (the second one faking an entry), and a
    class folder with a tab in its name broke the class table; an error naming one was no longer one line."""
    photos = make_set(tmp_path / "photos", classes=("red", "gr\teen", "blue"))
    (photos / "red" / "evil\n  fake.jpg").write_bytes(b"not a picture")
    rc, out, err = run(capsys, "scan", photos)
    assert rc == 1
    assert "  gr\\teen       6" in out.splitlines()
    assert f"  {photos / 'red' / 'evil'}\\n  fake.jpg: not an image (cannot identify image file)" in out
    assert not [line for line in out.splitlines() if line.startswith("  fake.jpg")]
    rc, out, err = run(capsys, "scan", photos / "gr\teen" / "0.png")
    assert rc == 2 and one_line(err) and "gr\\teen" in err


def test_quiet_training_still_says_its_warnings(capsys, trained, tmp_path):
    """--quiet ("warnings and failures still") hid every warning of the run: that best.pt was damaged and its
    weights lost, that the data changed, that an epoch's end could not be saved; here, a warm-up ignored."""
    argv = ["train", "--data", trained["data"], "--epochs", "1", "--runs-dir", tmp_path / "runs", *TINY]
    rc, out, err = run(capsys, *argv, "--scheduler", "step", "--warmup-epochs", "1", "--quiet")
    assert rc == 0 and out == ""
    assert err == (
        "warning: the warm-up (1 epochs) belongs to the cosine schedule; with 'step' the run starts at the full "
        "learning rate\n"
    )


def test_a_command_to_copy_from_a_message_quotes_a_path_with_spaces(capsys, trained, tmp_path):
    """ "python main.py scan /data/my photos lists them" ran scan on /data/my and a folder named photos."""
    import shlex

    spaced = shutil.copytree(trained["data"], tmp_path / "my photos")
    (spaced / "red" / "IMG_0001.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic")  # (a type not read)
    rc, _, err = run(capsys, "evaluate", "--checkpoint", trained["best"], "--data", spaced, "--quiet")
    assert f"python main.py scan '{spaced}' lists them" in err, err
    assert shlex.split(err.split("python main.py scan ")[1].split(" lists them")[0]) == [str(spaced)]


def test_a_run_folder_without_best_pt_is_said_to_give_its_last_pt(capsys, trained, tmp_path):
    """evaluate --checkpoint RUN_DIR on a run with no best.pt used its last.pt; only --json's "checkpoint" said so."""
    run_dir = shutil.copytree(trained["run"], tmp_path / "run")
    (run_dir / "best.pt").unlink()
    rc, out, err = run(capsys, "evaluate", "--checkpoint", run_dir, "--quiet")
    assert rc == 0 and out, err
    assert f"note: --checkpoint {run_dir}: the run has no best.pt yet; its last.pt is used" in err
    rc, _, err = run(capsys, "evaluate", "--checkpoint", trained["run"], "--quiet")
    assert rc == 0 and "no best.pt" not in err


def test_under_torchrun_one_process_of_a_machine_says_a_refusal(capsys, monkeypatch, tmp_path):
    """Every process of a torchrun job printed the same "error: --data …: no such folder" (three times with three
    processes); one of a machine's processes says it. What the trainer's set-up refuses may be one process's alone:
    every process says that, tagged with its rank. Outside torchrun (LOCAL_RANK left in the environment) nothing
    is kept quiet."""
    missing = str(tmp_path / "nope")
    monkeypatch.setenv("WORLD_SIZE", "2")
    for local_rank, said in (("0", True), ("1", False)):
        monkeypatch.setenv("LOCAL_RANK", local_rank)
        assert main(["train", "--data", missing, "--runs-dir", str(tmp_path / "runs")]) == 2
        err = capsys.readouterr().err
        assert (f"--data {missing}" in err) is said, (local_rank, err)
    monkeypatch.setenv("RANK", "3")

    class Refusing:
        def __init__(self, *a, **k):
            from core.config import ConfigError

            raise ConfigError("LOCAL_RANK=1: only 1 CUDA device(s) on this machine; lower --nproc_per_node")

    monkeypatch.setattr("core.engine.Trainer", Refusing)
    data = tmp_path / "d"
    for name in ("a", "b"):
        (data / name).mkdir(parents=True)
    assert main(["train", "--data", str(data)]) == 2
    assert "[rank 3] error: LOCAL_RANK=1: only 1 CUDA device(s)" in capsys.readouterr().err
    monkeypatch.delenv("WORLD_SIZE")
    assert main(["train", "--data", missing]) == 2
    assert f"error: --data {missing}" in capsys.readouterr().err
