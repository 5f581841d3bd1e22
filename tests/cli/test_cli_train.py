"""train → runs → evaluate → predict → export through the command line, on a tiny data set, as a user would."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from core.cli import main
from tests.helpers import TINY_TRAIN_ARGS as TINY


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    for c, name in enumerate(("dark", "light", "striped")):
        (root / name).mkdir()
        for i in range(8):
            im = Image.new("RGB", (24, 24), (30 + c * 100, 20 + i * 5, 200 - c * 80))
            if name == "striped":
                d = ImageDraw.Draw(im)
                for x in range(0, 24, 4):
                    d.line([(x, 0), (x, 23)], fill=(255, 255, 255))
            im.save(root / name / f"{i}.png")
    return root


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.timeout(300)
def test_train_resume_evaluate_predict_export(capsys, tiny_set, tmp_path):
    runs = tmp_path / "runs"
    argv = ("train", "--data", tiny_set, "--epochs", "1", "--runs-dir", runs, "--json", "--save-every", "0", *TINY)
    rc, out, err = run(capsys, *argv)
    assert rc == 0, err
    doc = json.loads(out)
    run_dir = Path(doc["run_dir"])
    assert json.loads((run_dir / "config.json").read_text())["train"]["save_every_s"] == 0
    assert doc["reason"] == "completed" and len(doc["history"]) == 1
    assert "epoch 1/1" in err and "  acc " in err  # progress went to stderr
    assert "completed; best epoch 1 (val acc " in err  # (what made it best, named: it read "(0.3)")
    assert "settings: resnext11_2x4d, 16 px, batch 4, lr " in err  # what the run uses, defaults filled in
    for name in ("config.json", "history.csv", "status.json", "best.pt", "last.pt", "evaluation.json", "curves.png"):
        assert (run_dir / name).is_file(), name

    # Extend the finished run by one epoch: same folder, history continues.
    rc, out, err = run(capsys, "train", "--resume", run_dir, "--epochs", "2", "--json")
    assert rc == 0, err
    doc = json.loads(out)
    assert Path(doc["run_dir"]) == run_dir
    assert [h["epoch"] for h in doc["history"]] == [1, 2]

    rc, out, _ = run(capsys, "runs", "--runs-dir", runs)
    assert rc == 0 and out.startswith(f"1 run in {runs}\n")
    rc, _, err = run(capsys, "runs", "--runs-dir", tmp_path / "mistyped")
    assert rc == 2 and err == f"error: --runs-dir {tmp_path / 'mistyped'}: no such folder\n"
    rc, out, _ = run(capsys, "runs", "--runs-dir", runs, "--json")
    listed = json.loads(out)["runs"]
    assert [Path(r["path"]) for r in listed] == [run_dir]
    assert listed[0]["status"] == "completed" and listed[0]["epochs_done"] == 2
    # what the text's notes say, in --json too
    assert (listed[0]["ended_early"], listed[0]["resumable"], listed[0]["nothing_saved"]) == (False, False, False)
    rc, out, _ = run(capsys, "runs", "--runs-dir", run_dir)  # a run's own folder, given for its runs folder
    assert rc == 0 and out == f"no runs in {run_dir} ({run_dir.name} is a run; its runs folder is {runs})\n"

    rc, out, _ = run(
        capsys,
        "evaluate",
        "--checkpoint",
        run_dir / "best.pt",
        "--data",
        tiny_set,
        "--split",
        "all",
        "--json",
        "--quiet",
    )
    assert rc == 0
    ev = json.loads(out)
    assert ev["num_samples"] == 24
    assert sum(map(sum, ev["confusion_matrix"])) == 24

    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    rc, out, err = run(
        capsys,
        "predict",
        "--checkpoint",
        run_dir / "best.pt",
        tiny_set / "dark",
        notes,
        "--json",
        "--csv",
        tmp_path / "p.csv",
        "--top-k",
        "2",
    )
    assert rc == 1  # one input could not be read; the rest were predicted
    doc = json.loads(out)
    ok = [p for p in doc["predictions"] if p["ok"]]
    bad = [p for p in doc["predictions"] if not p["ok"]] + doc["errors"]
    assert len(ok) == 8 and len(bad) == 1
    assert "notes.txt" in err
    assert (tmp_path / "p.csv").read_text().count("\n") >= 9

    out_file = tmp_path / "m.pt"
    rc, out, err = run(
        capsys, "export", "--checkpoint", run_dir / "best.pt", "--format", "torchscript", "--out", out_file, "--json"
    )
    assert rc == 0, err
    info = json.loads(out)
    assert out_file.is_file() and info["top1_agree"] and info["max_abs_diff"] <= 1e-4


def test_train_usage_errors_are_one_line(capsys, tmp_path, tiny_set):
    rc, _, err = run(capsys, "train", "--data", tmp_path / "missing")
    assert rc == 2 and "missing" in err and err.count("\n") == 1
    rc, _, err = run(capsys, "train", "--data", tiny_set, "--val-split", "1.5")
    assert rc == 2 and "--val-split 1.5: must be in [0, 1)" in err and err.count("\n") == 1
    rc, _, err = run(capsys, "train", "--data", tiny_set, "--save-every", "-1")
    assert rc == 2 and "--save-every -1: must be ≥ 0 (0: every epoch)" in err and err.count("\n") == 1  # as typed
    rc, _, err = run(capsys, "train", "--resume", tmp_path)
    assert rc == 2 and "last.pt" in err
    rc, _, err = run(capsys, "train", "--resume", tmp_path / "no-such-run")
    assert rc == 2 and err == f"error: --resume {tmp_path / 'no-such-run'}: no such folder\n"
    bogus = tmp_path / "bogus.pt"
    bogus.write_text("hello")
    rc, _, err = run(capsys, "predict", "--checkpoint", bogus, str(tiny_set))
    assert rc == 2 and "bogus.pt" in err and err.count("\n") == 1


@pytest.mark.timeout(300)
def test_under_mixup_the_training_accuracy_is_said_to_be_of_mixed_labels(capsys, tiny_set, tmp_path):
    """Scored against both labels of a mixed image it is well below the model's own: a plain "acc 61 %" beside
    "val acc 100 %" read as underfitting."""
    argv = ("train", "--data", tiny_set, "--epochs", "1", "--runs-dir", tmp_path / "runs", "--mixup", "0.4", *TINY)
    rc, _, err = run(capsys, *argv)
    assert rc == 0, err
    (line,) = [ln for ln in err.splitlines() if ln.startswith("epoch 1/1:")]
    assert "  acc (mixed labels) " in line and "  val acc " in line


@pytest.mark.timeout(300)
def test_evaluate_after_a_resume_in_the_data_folders_new_place_uses_that_place_held_out(capsys, tiny_set, tmp_path):
    """Trained on a folder, which then moved; resumed with --data at its new place. A best.pt from before the
    resume still names the old place: evaluate said that folder was gone, and with --data it scored every image,
    training ones too. It goes by the run's config.json, and scores the held-out split there."""
    import shutil

    old, new, runs = tmp_path / "photos", tmp_path / "moved", tmp_path / "runs"
    shutil.copytree(tiny_set, old)
    rc, out, err = run(capsys, "train", "--data", old, "--epochs", "1", "--runs-dir", runs, "--json", *TINY)
    assert rc == 0, err
    run_dir = Path(json.loads(out)["run_dir"])
    shutil.copy(run_dir / "best.pt", tmp_path / "best-epoch-1.pt")
    old.rename(new)
    rc, out, err = run(capsys, "train", "--resume", run_dir, "--epochs", "2", "--data", new, "--json")
    assert rc == 0, err
    shutil.copy(tmp_path / "best-epoch-1.pt", run_dir / "best.pt")  # (as when epoch 2 did not beat epoch 1)
    for extra in ((), ("--data", new)):
        rc, out, err = run(capsys, "evaluate", "--checkpoint", run_dir / "best.pt", *extra, "--json", "--quiet")
        assert rc == 0, err
        ev = json.loads(out)
        assert ev["split"] == "val" and 0 < ev["num_samples"] < 24, (extra, ev["split"], ev["num_samples"])
        assert ev["checkpoint"] == str(run_dir / "best.pt")  # (it was null)


@pytest.mark.timeout(300)
def test_a_second_ctrl_c_under_json_still_answers_in_json(capsys, tiny_set, tmp_path, monkeypatch):
    """A script reading --json got nothing on stdout when a second Ctrl-C ended the run at once."""
    import os
    import signal

    from core import cli, engine

    class CtrlCTwice(engine.Callback):
        sent = False

        def on_batch_end(self, p):
            if p.epoch == 2 and not self.sent:
                self.sent = True
                for _ in range(2):
                    os.kill(os.getpid(), signal.SIGINT)  # (the handler runs here, on the main thread)

    monkeypatch.setattr(cli, "_make_printer", CtrlCTwice)
    argv = ("train", "--data", tiny_set, "--epochs", "3", "--runs-dir", tmp_path, "--json", "--save-every", "0")
    rc, out, err = run(capsys, *argv, *TINY)
    assert rc == 130 and err.rstrip().endswith("interrupted")
    doc = json.loads(out)
    assert doc["reason"] == "interrupted" and doc["epochs_done"] == 1 and "second Ctrl-C" in doc["message"]
    assert Path(doc["run_dir"]).parent == tmp_path


@pytest.mark.timeout(120)
def test_a_ctrl_c_in_the_scan_under_json_answers_in_json(capsys, tiny_set, tmp_path, monkeypatch):
    """Before training began (the scan of a large folder), Ctrl-C left a script reading --json with nothing."""
    from core import data

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    scan = data.scan
    monkeypatch.setattr(data, "scan", ctrl_c)
    rc, out, err = run(capsys, "train", "--data", tiny_set, "--runs-dir", tmp_path / "runs", "--json", *TINY)
    assert rc == 130 and err.rstrip().endswith("interrupted")
    doc = json.loads(out)
    assert doc["reason"] == "interrupted" and doc["run_dir"] is None and doc["epochs_done"] == 0
    assert not (tmp_path / "runs").exists()

    # a run resumed: its folder, as it was (not "nothing was saved")
    monkeypatch.setattr(data, "scan", scan)
    argv = ("train", "--data", tiny_set, "--epochs", "1", "--runs-dir", tmp_path / "runs", "--json", *TINY)
    rc, out, err = run(capsys, *argv)
    assert rc == 0, err
    run_dir = json.loads(out)["run_dir"]
    monkeypatch.setattr(data, "scan", ctrl_c)
    rc, out, err = run(capsys, "train", "--resume", run_dir, "--epochs", "2", "--json")
    doc = json.loads(out)
    assert rc == 130 and doc["run_dir"] == run_dir and doc["epochs_done"] == 1 and "as it was" in doc["message"]

    # a Ctrl-C while the answer of a finished run is written: no second document saying it never began
    from core import cli

    monkeypatch.setattr(data, "scan", scan)
    monkeypatch.setattr(cli, "_eval_summary", ctrl_c)
    rc, out, err = run(capsys, *argv)
    assert rc == 130 and "before training began" not in out


@pytest.mark.timeout(300)
def test_predict_lines_keep_one_line_per_image_whatever_the_file_names(capsys, tiny_set, tmp_path):
    """A file name with a line break split its line in two (one image read as two lines by a script)."""
    rc, out, err = run(capsys, "train", "--data", tiny_set, "--epochs", "1", "--runs-dir", tmp_path, "--json", *TINY)
    assert rc == 0, err
    run_dir = json.loads(out)["run_dir"]
    odd = tmp_path / "new\nline\tname.png"
    odd.write_bytes((tiny_set / "dark" / "0.png").read_bytes())
    rc, out, err = run(capsys, "predict", "--checkpoint", run_dir, odd, tiny_set / "dark" / "1.png", "--quiet")
    assert rc == 0, err
    lines = out.splitlines()
    assert len(lines) == 2 and lines[0].startswith(str(tmp_path / "new\\nline\\tname.png") + "\t")
    assert len(lines[0].split("\t")) == len(lines[1].split("\t"))


@pytest.mark.timeout(300)
def test_predict_lines_escape_class_names_too(capsys, tmp_path):
    """Class names are folder names: a tab in one split the top-k part of the line into more fields."""
    data = tmp_path / "data"
    for c, name in enumerate(("a\tb", "plain")):
        (data / name).mkdir(parents=True)
        for i in range(6):
            Image.new("RGB", (24, 24), (40 + 150 * c, 20 + 10 * i, 90)).save(data / name / f"{i}.png")
    rc, out, err = run(
        capsys, "train", "--data", data, "--epochs", "1", "--runs-dir", tmp_path / "runs", "--json", *TINY
    )
    assert rc == 0, err
    rc, out, err = run(
        capsys, "predict", "--checkpoint", json.loads(out)["run_dir"], data / "plain" / "0.png", "--quiet"
    )
    assert rc == 0, err
    fields = out.rstrip("\n").split("\t")
    assert len(fields) == 4 and "a\\tb" in fields[1] + fields[3]  # path, class, confidence, (the other class)


@pytest.mark.timeout(300)
def test_resuming_with_fewer_epochs_than_planned_says_the_schedule_is_squeezed(capsys, tiny_set, tmp_path):
    """`train --resume RUN --epochs 3` of a run planned for 5: its cosine schedule was squeezed into 3 epochs (the
    rate fell at once) without a word; the README speaks of extending only."""
    runs = tmp_path / "runs"
    rc, out, err = run(capsys, "train", "--data", tiny_set, "--epochs", "1", "--runs-dir", runs, "--json", *TINY)
    assert rc == 0, err
    run_dir = Path(json.loads(out)["run_dir"])
    config = json.loads((run_dir / "config.json").read_text())
    config["train"]["epochs"] = 5  # (as a run planned for 5 and stopped after its first)
    (run_dir / "config.json").write_text(json.dumps(config))
    rc, _, err = run(capsys, "train", "--resume", run_dir, "--epochs", "2", "--quiet")
    assert rc == 0, err
    assert "warning: --epochs 2 is fewer than the 5 this run planned: its cosine learning-rate schedule is " in err
    assert "leave out --epochs to train on to 5" in err
    rc, _, err = run(capsys, "train", "--resume", run_dir, "--epochs", "6")  # more than planned: as asked
    assert rc == 0 and "fewer than" not in err, err
    assert "\nresuming after epoch 2 of 6\n" in err  # where it goes on (it was not said)


@pytest.mark.timeout(300)
def test_an_architecture_typed_in_another_form_is_kept_by_its_own_name(capsys, tiny_set, tmp_path):
    """`--arch ResNeXt11-2x4d` trained the right model, but config.json, the run folder's name and the run lists
    kept the name as typed (capitals and a dash), so runs of one model read as two."""
    runs = tmp_path / "runs"
    rc, out, err = run(
        capsys, "train", "--data", tiny_set, "--epochs", "1", "--runs-dir", runs, "--json", *TINY,
        "--arch", " ResNeXt11-2x4d",
    )  # fmt: skip
    assert rc == 0, err
    run_dir = Path(json.loads(out)["run_dir"])
    assert json.loads((run_dir / "config.json").read_text())["model"]["arch"] == "resnext11_2x4d"
    assert "-resnext11_2x4d-" in run_dir.name
