"""The standard streams as a service or a script leaves them: stderr closed (no progress, no messages, the command
works and stdout holds its answer alone), stdout that cannot be written (said to be the output, in one line)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli import main
from tests.helpers import TINY_TRAIN_ARGS as TINY
from tests.helpers import make_colour_set, train_tiny

ROOT = Path(__file__).resolve().parents[2]
FULL = "error: cannot write the output (standard output): No space left on device\n"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli_streams")
    data = make_colour_set(root / "data")
    run_dir = train_tiny(data, root / "runs")
    return {"data": data, "best": run_dir / "best.pt"}


def _main_py(*argv, stdout=subprocess.PIPE, close=(), unbuffered=True) -> subprocess.CompletedProcess:
    """`main.py ARGV` in a process of its own; `close`: the descriptors closed, as `2>&-` leaves them (sys.stderr
    is None there; a stderr on the null device is an open file, and no such case)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    return subprocess.run(
        [sys.executable, str(ROOT / "main.py"), *map(str, argv)],
        cwd=ROOT,
        env=env,
        stdout=stdout,
        stderr=None if 2 in close else subprocess.PIPE,
        preexec_fn=(lambda: [os.close(fd) for fd in close]) if close else None,  # noqa: PLW1509 - a single-threaded test
        text=True,
        timeout=300,
    )


@pytest.mark.skipif(sys.platform == "win32", reason="closes the child's descriptor 2 before it starts")
@pytest.mark.timeout(600)
def test_with_stderr_closed_every_command_works_and_stdout_holds_its_answer_alone(trained, tmp_path):
    """With stderr closed, predict, evaluate and scan exited 1 with no output (None.isatty() in the progress
    bar), train failed its run with "AttributeError: 'NoneType' object has no attribute 'isatty'", and every
    message and progress line went to stdout instead, into the --json document."""
    ck, data = trained["best"], trained["data"]
    done = _main_py("scan", data, "--json", close=(2,))
    assert done.returncode == 0 and json.loads(done.stdout)["num_images"] == 24, done.stdout
    done = _main_py("predict", "--checkpoint", ck, data / "c0", "--json", close=(2,))
    assert done.returncode == 0 and len(json.loads(done.stdout)["predictions"]) == 8, done.stdout
    done = _main_py("predict", "--checkpoint", ck, data / "c0", close=(2,))  # (the lines, no bar)
    assert done.returncode == 0 and done.stdout.count("\n") == 8 and "█" not in done.stdout, done.stdout
    done = _main_py("evaluate", "--checkpoint", ck, "--json", close=(2,))
    assert done.returncode == 0 and json.loads(done.stdout)["num_samples"] > 0, done.stdout
    runs = tmp_path / "runs"
    done = _main_py("train", "--data", data, "--epochs", "1", "--runs-dir", runs, *TINY, "--json", close=(2,))
    assert done.returncode == 0 and json.loads(done.stdout)["reason"] == "completed", done.stdout
    done = _main_py("scan", tmp_path / "nowhere", "--json", close=(2,))  # (its message goes nowhere)
    assert done.returncode == 2 and done.stdout == ""
    done = _main_py("scan", data, stdout=None, close=(1, 2))  # (no stream at all: nothing to say, nor to fail)
    assert done.returncode == 0
    done = _main_py("scan", data, "--json", stdout=None, close=(1,))  # (--json raised AttributeError on None)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr


def test_a_command_run_from_python_without_stderr_leaves_the_streams_as_it_found_them(capsys, trained):
    """(main() called from Python: the null device put in for a missing stderr, and stdout's wrapper, are taken
    out again after.)"""
    out_before = sys.stdout
    sys.stderr = None
    try:
        rc = main(["scan", str(trained["data"]), "--json"])
        assert sys.stderr is None and sys.stdout is out_before
    finally:
        sys.stderr = sys.__stderr__
    out, _ = capsys.readouterr()
    assert rc == 0 and json.loads(out)["num_images"] == 24


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (a device every write to fails)")
@pytest.mark.timeout(600)
def test_an_output_that_cannot_be_written_is_said_to_be_the_output(trained, tmp_path):
    """`> /dev/full` (a full disk) said "error: No space left on device" and no more, as if of some file; with
    stdout buffered (no PYTHONUNBUFFERED) Python's flush at exit failed instead: "Exception ignored in:
    <_io.TextIOWrapper name='<stdout>'…>" and exit 120. `train --json` trained and saved its run all the same."""
    ck, data = trained["best"], trained["data"]
    with open("/dev/full", "w") as full:
        for unbuffered in (True, False):
            for argv in (
                ["predict", "--checkpoint", ck, data / "c0", "--quiet"],
                ["predict", "--checkpoint", ck, data / "c0", "--quiet", "--csv", "-"],
                ["scan", data, "--json", "--quiet"],
            ):
                done = _main_py(*argv, stdout=full, unbuffered=unbuffered)
                assert (done.returncode, done.stderr) == (2, FULL), (argv, unbuffered)
        runs = tmp_path / "runs"
        done = _main_py("train", "--data", data, "--epochs", "1", "--runs-dir", runs, *TINY, "--json", stdout=full)
    assert done.returncode == 2 and done.stderr.endswith(FULL) and "Traceback" not in done.stderr
    (run_dir,) = runs.iterdir()
    assert json.loads((run_dir / "status.json").read_text())["status"] == "completed"
    assert (run_dir / "best.pt").is_file()
