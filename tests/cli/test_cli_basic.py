"""The command line's contract for scan and summary: JSON documents, exact counts, exit codes 0/1/2."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from core.cli import main

ROOT = Path(__file__).resolve().parents[2]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize(
    ("arch", "classes", "size", "params", "gmacs"),
    [
        ("resnext50_32x4d", 1000, 224, 25_028_904, 4.23),
        ("resnet50", 1000, 224, 25_557_032, 4.09),
        ("resnext50_8x14d", 1000, 224, 25_603_016, None),
        ("resnext50_2x40d", 1000, 224, 25_425_000, None),
        ("resnext101_32x8d", 1000, 224, 88_791_336, None),
        ("resnext29_8x64d", 10, 32, 34_426_698, 5.39),
        ("resnext29_16x64d", 10, 32, 68_155_210, None),
    ],
)
def test_summary_json_matches_the_paper(capsys, arch, classes, size, params, gmacs):
    rc, out, _ = run(
        capsys, "summary", "--arch", arch, "--num-classes", str(classes), "--image-size", str(size), "--json"
    )
    assert rc == 0
    doc = json.loads(out)
    assert doc["params"] == params
    if gmacs is not None:
        assert round(doc["macs"] / 1e9, 2) == gmacs


def test_summary_unknown_arch_is_a_usage_error(capsys):
    rc, out, err = run(capsys, "summary", "--arch", "resnext7_1x1d")
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and "resnext7_1x1d" in err


def test_scan_json_on_the_sample(capsys, sample_dir):
    rc, out, _ = run(capsys, "scan", str(sample_dir), "--json", "--quiet")
    assert rc == 0
    doc = json.loads(out)
    assert doc["layout"] == "classes"
    assert len(doc["classes"]) >= 3 and all(c["count"] >= 80 for c in doc["classes"])
    assert doc["num_images"] == sum(c["count"] for c in doc["classes"])
    assert doc["bad_files"] == [] and doc["empty_classes"] == []


def _make_set(root: Path, classes: dict[str, int]) -> None:
    for name, n in classes.items():
        (root / name).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (20, 20), (i * 40 % 255, 10, 200)).save(root / name / f"{i}.png")


def test_scan_with_bad_files_exits_1_and_names_them(capsys, tmp_path):
    _make_set(tmp_path, {"a": 2, "b": 2})
    (tmp_path / "a" / "broken.jpg").write_text("not a picture")
    (tmp_path / "b" / "empty.png").write_bytes(b"")
    rc, out, _ = run(capsys, "scan", str(tmp_path), "--json", "--quiet")
    assert rc == 1
    bad = {Path(b["path"]).name: b["reason"] for b in json.loads(out)["bad_files"]}
    assert set(bad) == {"broken.jpg", "empty.png"}
    assert all(bad.values())


def test_scan_text_names_every_kind_of_problem_with_right_plurals_and_columns(capsys, tmp_path):
    for c, name in enumerate(("日本", "plain")):
        (tmp_path / name).mkdir()
        for i in range(3):
            Image.new("RGB", (20, 20), (i * 40, c * 100, 200)).save(tmp_path / name / f"{i}.png")
    shutil.copy(tmp_path / "plain" / "0.png", tmp_path / "日本" / "same.png")  # one image, two labels
    (tmp_path / "plain" / "broken.jpg").write_text("not a picture")
    (tmp_path / "plain" / "notes.txt").write_text("where these came from")
    from PIL.PngImagePlugin import PngInfo

    from core.data import CAM_SOFTWARE

    mark = PngInfo()  # an overlay `predict --cam` wrote into the data folder: no photo of "plain" (it trained as one)
    mark.add_text("Software", CAM_SOFTWARE)
    Image.new("RGB", (20, 20)).save(tmp_path / "plain" / "0_gradcam.png", pnginfo=mark)
    rc, out, err = run(capsys, "scan", str(tmp_path), "--quiet")
    assert rc == 1  # an unusable file: a partial result
    assert "1 file could not be used:" in out and "broken.jpg" in out
    assert "1 group of identical files" in out and "(in different classes!)" in out
    assert "warning: 1 group of identical files in different classes" in err
    assert "2 files in class folders ignored (not images to learn from):" in out and "notes.txt" in out
    assert (
        f"  {tmp_path / 'plain' / '0_gradcam.png'}  (a Grad-CAM overlay of predict --cam, not a photo)"
        in out.splitlines()
    )
    rc, out, _ = run(capsys, "scan", str(tmp_path), "--json")
    assert {c["name"]: c["count"] for c in json.loads(out)["classes"]}["plain"] == 3  # its photos, not the overlay
    rows = [line for line in out.splitlines() if line.startswith("  ") and line.rstrip()[-1].isdigit()]
    assert len(rows) == 2 and len({len(r.replace("日本", "xxxx")) for r in rows}) == 1  # counts line up on screen


def test_a_large_group_of_identical_files_is_one_short_line(capsys, tmp_path):
    """4000 copies of one photo were printed as one line of 259,000 characters; --json keeps every name."""
    import json

    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        Image.new("RGB", (8, 8), (200, 10, 10) if c == "a" else (10, 10, 200)).save(tmp_path / c / "x.png")
    for i in range(12):
        shutil.copy(tmp_path / "a" / "x.png", tmp_path / "a" / f"copy{i:02d}.png")
    rc, out, err = run(capsys, "scan", str(tmp_path), "--quiet")
    line = next(ln for ln in out.splitlines() if "copy00.png" in ln or "x.png" in ln and "==" in ln)
    assert line.count("  ==  ") == 8 and line.endswith("… 5 more copies") and len(line) < 80 * 12
    rc, out, err = run(capsys, "scan", str(tmp_path), "--json")
    assert [len(g) for g in json.loads(out)["duplicates"]] == [13]


def test_table_columns_count_a_file_names_bytes_that_are_not_utf8_as_printed():
    """A class folder named in Latin-1 ("caf\\xe9") prints escaped, "caf\\udce9": its row's counts stood 5 columns
    left of the others'."""
    from core.cli import _pad, _width

    assert _width("caf\udce9") == 9 and _width("日本") == 4 and _width("plain") == 5
    rows = [_pad(name, 12) + "|" for name in ("caf\udce9", "plain")]
    printed = [row.encode("utf-8", "backslashreplace").decode() for row in rows]  # as main() prints them
    assert [line.index("|") for line in printed] == [12, 12]


def test_a_pre_split_set_says_which_flags_it_ignores_and_which_images_leak(capsys, tmp_path):
    for part, n in (("train", 4), ("val", 2)):
        for c, name in enumerate(("a", "b")):
            (tmp_path / part / name).mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (20, 20), (i * 30 + (part == "val") * 7, c * 100, 50)).save(
                    tmp_path / part / name / f"{i}.png"
                )
    shutil.copy(tmp_path / "train" / "a" / "0.png", tmp_path / "val" / "a" / "copy.png")
    rc, out, err = run(capsys, "scan", str(tmp_path), "--quiet")
    assert "1 group of identical files:" in out and "(in two split folders!)" in out  # not "kept together"
    assert "warning: 1 group of identical files in two split folders" in err
    from core.cli import _warn_unused_split_flags
    from core.data import scan

    class Args:
        val_split, test_split = 0.5, 0.1

    _warn_unused_split_flags(Args, scan(tmp_path))
    err = capsys.readouterr().err
    assert "--val-split 0.5 is not used" in err and "--test-split 0.1 is not used" in err


def test_scan_of_a_missing_folder_exits_2_and_of_one_class_lists_it(capsys, tmp_path):
    rc, out, err = run(capsys, "scan", str(tmp_path / "nope"))
    assert rc == 2 and out == "" and err.count("\n") == 1 and "nope" in err
    # one class: listed, with why it cannot train (it said only that, exit 2, though `evaluate --data` takes it)
    _make_set(tmp_path / "one", {"only": 3})
    rc, out, err = run(capsys, "scan", str(tmp_path / "one"), "--quiet")
    assert rc == 0 and err == "" and "3 images in 1 class" in out
    assert out.splitlines()[-1] == (
        "note: only one class with images ('only'); at least two are needed to train; enough to evaluate a model on "
        "(evaluate --data)"
    )
    rc, out, _ = run(capsys, "scan", str(tmp_path / "one"), "--quiet", "--json")
    doc = json.loads(out)
    assert rc == 0 and doc["classes"] == [{"name": "only", "count": 3}] and "at least two" in doc["cannot_train"]
    _make_set(tmp_path / "two", {"a": 2, "b": 2})
    assert json.loads(run(capsys, "scan", str(tmp_path / "two"), "--quiet", "--json")[1])["cannot_train"] is None


def test_bad_flag_is_one_line_exit_2(capsys):
    rc, out, err = run(capsys, "train", "--data", ".", "--epochs", "many")
    assert rc == 2 and err.count("\n") == 1 and "--epochs" in err


def test_main_py_entry_point_runs_headless_commands():
    out = subprocess.run(
        [sys.executable, "main.py", "summary", "--arch", "resnet18", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["params"] == 11_689_512


@pytest.mark.parametrize(("signame", "code"), [("SIGINT", 0), ("SIGTERM", 0), ("SIGINT", 2)])
def test_a_signal_after_the_command_has_finished_exits_with_its_status(signame, code):
    """A Ctrl-C (or kill) in the interpreter's shutdown, after the command's last line: its own exit status, no
    traceback (the process had died of SIGINT, exit -2, after "exported …")."""
    argv = ["summary", "--arch", "resnet18", "--json"] if code == 0 else ["summary", "--arch", "nope"]
    script = (
        "import os, signal, sys, main\n"
        f"sys.argv = ['main.py', *{argv!r}]\n"
        "main.entry()\n"
        f"os.kill(os.getpid(), signal.{signame})\n"
        "sys.exit(99)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == code, out.stderr
    assert "Traceback" not in out.stderr and "KeyboardInterrupt" not in out.stderr
    if code == 0:
        assert json.loads(out.stdout)["params"] == 11_689_512  # printed whole before the exit
    else:
        assert "nope" in out.stderr


def _summary_after(prelude: str) -> subprocess.CompletedProcess:
    """`main.py summary --arch resnet18 --json` through main.entry() in a process of its own, after `prelude`'s
    lines of Python (atexit, os, signal, sys, time and main imported)."""
    script = (
        "import atexit, os, signal, sys, time, main\n"
        + prelude
        + "sys.argv = ['main.py', 'summary', '--arch', 'resnet18', '--json']\nsys.exit(main.entry())\n"
    )
    return subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_a_signal_while_the_interpreter_tears_down_its_modules_keeps_the_command_s_status():
    """Python puts its signal handlers back to the default while it tears the modules down (torch's take
    seconds): a Ctrl-C then killed a finished export by SIGINT (exit -2). Sent from a __del__ run in that
    teardown, here."""
    out = _summary_after(
        "class Late:\n"
        "    def __del__(self):\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "        time.sleep(0.2)\n"
        "late = Late()\n"
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["params"] == 11_689_512


def test_a_signal_in_an_earlier_exit_callback_still_ends_the_process_at_once(tmp_path):
    """The signals are ignored only after every other exit callback: one that hangs (a loader's join) can still
    be ended by Ctrl-C, with the command's own status."""
    marker = tmp_path / "went-on"
    out = _summary_after(
        "def slow():\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    time.sleep(0.5)\n"
        f"    open({str(marker)!r}, 'w').close()\n"
        "command = main.main\n"
        "def registering(argv=None):\n"
        "    atexit.register(slow)  # (as an import inside the command does: multiprocessing's, torch's)\n"
        "    return command(argv)\n"
        "main.main = registering\n"
    )
    assert out.returncode == 0, out.stderr
    assert not marker.exists()  # ended in the callback, not after it


def test_every_flag_of_every_command_says_what_it_does():
    from core.cli import build_parser

    parser = build_parser()
    (commands,) = [a for a in parser._subparsers._group_actions]
    silent = {
        name: [a.option_strings[0] for a in sub._actions if a.option_strings and not a.help]
        for name, sub in commands.choices.items()
    }
    assert set(silent) >= {"gui", "scan", "summary", "train", "evaluate", "predict", "export", "runs"}
    assert all(not flags for flags in silent.values()), silent


def test_a_runaway_loss_prints_in_a_few_digits():
    from core.cli import _loss

    assert _loss(0.69314718) == "0.6931" and _loss(5.661287553891336e32) == "5.66e+32" and _loss(math.inf) == "inf"


def test_the_settings_line_under_torchrun_gives_the_global_batch_it_trains_with(capsys):
    """--batch-size 5 over 2 processes trains with 2 × 2 = 4 (a warning says so); the settings line said 5."""
    from core.cli import _make_printer
    from core.config import RunConfig
    from core.engine import FitInfo

    cfg = RunConfig()
    cfg.model.arch, cfg.train.batch_size = "resnext11_2x4d", 5
    info = FitInfo(
        run_dir="r", device="cpu", device_name="CPU", arch="resnext11_2x4d", num_classes=3, class_names=["a", "b", "c"],
        epochs=1, start_epoch=0, steps_per_epoch=1, train_size=8, val_size=2, test_size=0, params=1,
        loader_mode="cached", config=cfg.to_dict(), world_size=2,
    )  # fmt: skip
    _make_printer().on_fit_start(info)
    assert ", batch 4," in capsys.readouterr().err
    _make_printer().on_fit_start(FitInfo(**{**info.__dict__, "world_size": 1}))
    assert ", batch 5," in capsys.readouterr().err


def test_a_command_run_from_python_leaves_the_signal_handlers_as_it_found_them(capsys):
    """main() ends a command on SIGTERM or SIGHUP as on Ctrl-C; called from Python, it puts the caller's back."""
    import signal

    before = signal.getsignal(signal.SIGTERM)
    assert run(capsys, "summary", "--arch", "resnext11_4x8d", "--json")[0] == 0
    assert signal.getsignal(signal.SIGTERM) is before
