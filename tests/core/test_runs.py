"""Run folders: create, list (with interrupted detection), load, delete, history and curves."""

import json
import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core import runs
from core.runs import RunStore


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _fake_run(store: RunStore, arch: str, status: dict, epochs: int = 2, accs=(0.5, 0.75)) -> os.PathLike:
    d = store.create(arch, "flowers")
    (d / "config.json").write_text(
        json.dumps({"model": {"arch": arch}, "train": {"epochs": 5}, "dataset": {"name": "flowers"}})
    )
    for e in range(1, epochs + 1):
        runs.append_history(
            d,
            {
                "epoch": e,
                "train_loss": 1.0 / e,
                "train_acc": 0.4,
                "val_loss": 0.9,
                "val_acc": accs[e - 1],
                "lr": 0.01,
                "seconds": 1.5,
            },
        )
    (d / "status.json").write_text(json.dumps(status))
    return d


def test_default_runs_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("RESNEXT_STUDIO_RUNS", str(tmp_path / "r"))
    assert runs.default_runs_dir() == tmp_path / "r"
    monkeypatch.delenv("RESNEXT_STUDIO_RUNS")
    assert runs.default_runs_dir().name == "runs"


def test_create_names_are_unique(tmp_path, monkeypatch):
    from datetime import datetime

    class Frozen(datetime):  # both in one second (the second could tick over between two real calls)
        @classmethod
        def now(cls, tz=None):
            return cls(2026, 11, 27, 12, 0, 0)

    monkeypatch.setattr(runs, "datetime", Frozen)
    store = RunStore(tmp_path)
    a, b = store.create("resnet18", "my data/set"), store.create("resnet18", "my data/set")
    assert a != b and a.is_dir() and b.is_dir()
    assert a.name == "20261127-120000-resnet18-my-data-set" and b.name == a.name + "-2"


def test_list_detects_interrupted_and_reads_summary(tmp_path):
    store = RunStore(tmp_path)
    host = socket.gethostname()
    dead = _fake_run(store, "resnet18", {"status": "running", "pid": _dead_pid(), "hostname": host, "started": 100})
    alive = _fake_run(
        store, "resnext11_2x4d", {"status": "running", "pid": os.getpid(), "hostname": host, "started": 200}
    )
    done = _fake_run(store, "resnet34", {"status": "completed", "started": 300}, epochs=1)
    (dead / "last.pt").write_bytes(b"x")
    infos = store.list()
    assert [i.path for i in infos] == [done, alive, dead]  # newest first
    by = {i.path: i for i in infos}
    assert by[dead].status == "interrupted" and by[dead].has_last and not by[dead].has_best
    assert by[alive].status == "running"
    assert by[done].status == "completed" and by[done].epochs_done == 1
    assert by[dead].best_val_acc == 0.75 and by[dead].best_epoch == 2 and by[dead].epochs_planned == 5
    assert by[dead].arch == "resnet18" and by[dead].dataset == "flowers"
    rec = store.load(dead)
    assert rec.status["status"] == "interrupted" and rec.evaluation is None
    assert rec.history[1] == {
        "epoch": 2,
        "train_loss": 0.5,
        "train_acc": 0.4,
        "val_loss": 0.9,
        "val_acc": 0.75,
        "lr": 0.01,
        "seconds": 1.5,
    }


def test_a_run_folder_that_cannot_be_read_is_listed_as_such_with_the_rest(tmp_path, monkeypatch):
    """One run folder at chmod 000 made `runs` print a Permission denied and list no run at all. (Simulated:
    the tests may run as root, whom permissions do not stop.)"""
    from pathlib import Path

    store = RunStore(tmp_path)
    done = _fake_run(store, "resnet34", {"status": "completed", "started": 300}, epochs=1)
    locked = tmp_path / "20240101-000000-resnet18-flowers"
    locked.mkdir()
    real_stat, real_listdir = os.stat, os.listdir

    def stat(path, *args, **kwargs):
        if locked in Path(path).parents:
            raise PermissionError(13, "Permission denied", str(path))
        return real_stat(path, *args, **kwargs)

    def listdir(path="."):
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_listdir(path)

    monkeypatch.setattr(os, "stat", stat)
    monkeypatch.setattr(os, "listdir", listdir)
    infos = {i.path: i for i in store.list()}
    assert set(infos) == {done, locked} and infos[done].status == "completed"
    assert infos[locked].status == "unreadable" and "Permission denied" in infos[locked].message


def test_history_rows_without_an_epoch_are_not_counted(tmp_path):
    """A damaged line in history.csv counted as an epoch done ("epochs 2/8" for a run of one)."""
    store = RunStore(tmp_path)
    run = _fake_run(store, "resnet34", {"status": "completed", "started": 300}, epochs=1)
    with open(run / "history.csv", "a", encoding="utf-8") as f:
        f.write("garbage,#,\n")
    assert [r["epoch"] for r in runs.read_history(run)] == [1]
    assert store.list()[0].epochs_done == 1


def test_a_history_line_still_being_written_is_no_epoch_yet(tmp_path):
    """Read between two of the trainer's writes, the last line was half there: a finished run of 2 epochs was
    listed as "3 / 2". A whole line, even one of numbers out of range, is an epoch."""
    store = RunStore(tmp_path)
    run = _fake_run(store, "resnet34", {"status": "completed", "started": 300}, epochs=2)
    whole = (run / "history.csv").read_bytes()
    assert whole.endswith(b"\n")
    for half in (b"3", b"3,0.5,"):
        (run / "history.csv").write_bytes(whole + half)
        assert [r["epoch"] for r in runs.read_history(run)] == [1, 2], half
        assert store.list()[0].epochs_done == 2
    fields = len(whole.splitlines()[0].split(b","))
    (run / "history.csv").write_bytes(whole + b",".join([b"3"] + [b"inf"] * (fields - 1)) + b"\n")
    assert [r["epoch"] for r in runs.read_history(run)] == [1, 2, 3]


def test_folders_that_are_no_run_yet_are_named_for_watching(tmp_path):
    store = RunStore(tmp_path / "runs")
    done = _fake_run(store, "resnet18", {"status": "completed"})
    making = store.root / "20990101-000000-resnext11_2x4d-shapes"
    making.mkdir()
    (store.root / ".hidden").mkdir()
    (store.root / "notes.txt").write_text("x")
    assert store.forming() == [making] and [i.path for i in store.list()] == [done]
    (making / "config.json").write_text("{}")
    assert store.forming() == []


def test_delete_refuses_outside_root(tmp_path):
    store = RunStore(tmp_path / "runs")
    d = _fake_run(store, "resnet18", {"status": "completed"})
    outside = tmp_path / "precious"
    outside.mkdir()
    for bad in (outside, tmp_path, store.root, d / ".." / ".." / "precious", d / "nested"):
        with pytest.raises(ValueError, match="refusing"):
            store.delete(bad)
    assert outside.is_dir() and store.root.is_dir()
    store.delete(d)
    assert not d.exists() and store.list() == []


def test_status_history_and_curves(tmp_path):
    doc = runs.write_status(tmp_path, "running", epoch=0)
    assert doc["pid"] == os.getpid() and doc["hostname"] == socket.gethostname()
    runs.write_status(tmp_path, "failed", reason="failed", message="boom")
    st = json.loads((tmp_path / "status.json").read_text())
    assert st["status"] == "failed" and st["pid"] == os.getpid() and st["message"] == "boom"
    with pytest.raises(ValueError):
        runs.write_status(tmp_path, "weird")
    rows = [
        {"epoch": 1, "train_loss": 1.2, "train_acc": 0.3, "val_loss": None, "val_acc": None, "lr": 0.1, "seconds": 2.0},
        {
            "epoch": 2,
            "train_loss": 0.8,
            "train_acc": 0.6,
            "val_loss": None,
            "val_acc": None,
            "lr": 0.05,
            "seconds": 2.0,
        },
    ]
    for r in rows:
        runs.append_history(tmp_path, r)
    assert runs.read_history(tmp_path) == rows
    runs.draw_curves(rows, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_lock_is_held_by_one_owner_and_tolerates_file_systems_without_locks(tmp_path, monkeypatch):
    a, b = runs.RunLock(tmp_path), runs.RunLock(tmp_path)
    assert a.acquire() and a.held and a.acquire()  # taking it again is a no-op
    assert not b.acquire() and not b.held
    a.release()
    assert b.acquire() and b.held
    b.release()
    assert (tmp_path / ".lock").is_file()  # left in place (a removed file could be locked by a late opener)
    if os.name != "nt":
        import errno
        import fcntl

        def no_locks(fd, op):
            raise OSError(errno.ENOLCK, "No locks available")

        monkeypatch.setattr(fcntl, "flock", no_locks)
        assert runs.RunLock(tmp_path).acquire()  # e.g. an NFS share without a lock daemon: resuming still works


def test_run_lock_of_a_killed_process_is_free_again(tmp_path):
    code = (
        "import sys, time; from core import runs; lock = runs.RunLock(sys.argv[1]); "
        "print(lock.acquire(), flush=True); time.sleep(120)"
    )
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    store = RunStore(tmp_path)
    run = _fake_run(store, "resnet18", {"status": "running", "started": 1, "hostname": socket.gethostname()})
    assert runs.RunLock(run).probe() is None  # no .lock (a run from before locks): its process id decides
    p = subprocess.Popen([sys.executable, "-c", code, str(run)], stdout=subprocess.PIPE, text=True, cwd=root)
    try:
        assert p.stdout.readline().strip() == "True"
        assert not runs.RunLock(run).acquire(wait_s=0.1)
        assert runs.RunLock(run).probe() is True
        runs.write_status(run, "running", pid=2**22 + 12345)  # whatever its process id says, the lock is held
        assert store.info(run).status == "running" and store.load(run).status["status"] == "running"
        with pytest.raises(ValueError, match="training right now"):
            store.delete(run)
    finally:
        p.kill()
        p.wait()
    assert runs.RunLock(run).probe() is False
    # after a crash and a reboot, its process id belongs to another program (Windows reuses them soon): not running
    runs.write_status(run, "running", pid=os.getppid())
    assert store.info(run).status == "interrupted"
    mine = runs.RunLock(run)
    assert mine.acquire()
    assert runs.RunLock(run).probe() is True  # held by this process (the app trains in a thread)
    del mine  # (a lock dropped without release() lets go too)
    assert runs.RunLock(run).probe() is False
    # a run just made (its folder locked and config.json written, status.json not yet): running, not interrupted
    (run / "status.json").unlink()
    assert store.info(run).status == "interrupted"
    mine = runs.RunLock(run)
    assert mine.acquire() and store.info(run).status == "running"
    mine.release()


def test_the_best_epoch_shown_is_the_one_in_best_pt(tmp_path):
    """Two epochs with the same accuracy: the Trainer breaks the tie on validation loss (and may monitor the loss
    alone); the run list named the first epoch with the highest accuracy, not the one saved in best.pt."""
    store = RunStore(tmp_path)
    run = _fake_run(store, "resnet18", {"status": "completed", "started": 1, "best_epoch": 3})
    runs.write_history(
        run,
        [
            {"epoch": e, "train_loss": 1.0, "train_acc": 0.5, "val_loss": loss, "val_acc": acc, "lr": 1e-3}
            for e, acc, loss in ((1, 0.5, 1.0), (2, 0.8, 0.9), (3, 0.8, 0.7))
        ],
    )
    info = store.info(run)
    assert (info.best_epoch, info.best_val_acc) == (3, 0.8)
    runs.write_status(run, "completed", best_epoch=None)  # status without it (older runs): the highest accuracy
    assert (store.info(run).best_epoch, store.info(run).best_val_acc) == (2, 0.8)


def test_atomic_writes_name_the_file_meant_and_stale_temp_files_go(tmp_path, monkeypatch):
    import errno

    target = tmp_path / "status.json"

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError) as e:
        runs.write_json_atomic(target, {"status": "running"})
    assert e.value.filename == str(target)  # not ".status.json.k3j4h5.tmp"
    monkeypatch.undo()
    (tmp_path / ".last.pt.pou344hq.tmp").write_bytes(b"x" * 100)  # what a kill -9 mid-write leaves
    (tmp_path / ".curves.png.k2j3h4.tmp").write_bytes(b"x")
    (tmp_path / ".progress.json.a1b2c3.tmp").write_bytes(b"x")  # (a torchrun run's)
    keep = [tmp_path / "last.pt", tmp_path / ".lock", tmp_path / "notes.tmp", tmp_path / ".evaluation.json.x1.tmp"]
    for p in keep:
        p.write_bytes(b"")
    assert runs.remove_stale_temp_files(tmp_path) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in keep)


@pytest.mark.skipif(os.name != "posix", reason="fcntl is POSIX's")
def test_files_are_flushed_with_f_fullfsync_where_it_exists_and_fsync_where_it_is_refused(tmp_path, monkeypatch):
    """macOS: fsync leaves the data in the drive's cache, F_FULLFSYNC writes it out; a file system that refuses
    F_FULLFSYNC gets fsync. (Linux Python has no F_FULLFSYNC: it is given one here, as macOS's has.)"""
    import errno
    import fcntl

    calls = []
    refuse = False

    def fake_fcntl(fd, cmd, *args):
        calls.append(("F_FULLFSYNC", fd) if cmd == 51 else ("fcntl", cmd))
        if refuse:
            raise OSError(errno.ENOTSUP, "Operation not supported")
        return 0

    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append(("fsync", fd)) or real_fsync(fd))
    runs.write_json_atomic(tmp_path / "a.json", {"n": 1})
    assert [c[0] for c in calls] == ["fsync"]  # (no F_FULLFSYNC here)

    monkeypatch.setattr(fcntl, "F_FULLFSYNC", 51, raising=False)
    monkeypatch.setattr(fcntl, "fcntl", fake_fcntl)
    calls.clear()
    runs.write_json_atomic(tmp_path / "b.json", {"n": 2})
    runs.append_history(tmp_path, {"epoch": 1, "train_loss": 0.5})
    assert [c[0] for c in calls] == ["F_FULLFSYNC", "F_FULLFSYNC"]
    refuse, calls[:] = True, []
    runs.write_json_atomic(tmp_path / "c.json", {"n": 3})
    assert [c[0] for c in calls] == ["F_FULLFSYNC", "fsync"] and calls[0][1] == calls[1][1]
    assert json.loads((tmp_path / "c.json").read_text()) == {"n": 3}


def test_a_history_with_bytes_that_are_not_utf8_hides_no_run(tmp_path):
    store = RunStore(tmp_path)
    run = _fake_run(store, "resnet18", {"status": "completed", "started": 1})
    (run / "history.csv").write_bytes(b"epoch,train_loss\n1,\xff\n")
    assert [i.path for i in store.list()] == [run] and store.info(run).epochs_done == 0
    # and says why its epochs and accuracy are blank (a completed run listed them so without a word)
    info = store.info(run)
    assert info.unreadable_files == ("history.csv",)
    assert info.message == "history.csv cannot be read (damaged or empty)"
    (run / "history.csv").write_text("epoch,val_acc\n1,0.5\nnot a row\n")  # a line of it: said too
    assert store.info(run).unreadable_files == ("history.csv",) and store.info(run).epochs_done == 1
    (run / "status.json").write_text(json.dumps({"status": "completed", "message": "done"}))
    (run / "config.json").write_text("{")  # beside status.json's own message, not in place of it
    assert store.info(run).message == "config.json and history.csv cannot be read (damaged or empty); done"
    (run / "history.csv").write_text("epoch,val_acc\n")  # a header alone (no epoch yet): nothing damaged
    (run / "config.json").write_text(json.dumps({"model": {"arch": "resnet18"}}))
    assert store.info(run).unreadable_files == () and store.info(run).message == "done"
    # not even a header (the trainer always writes one), or no rows where status.json counts 3 epochs done: cut
    # short; the run showed "0 / 5" epochs and blank charts without a word
    (run / "history.csv").write_text("")
    assert store.info(run).unreadable_files == ("history.csv",)
    (run / "history.csv").write_text("epoch,val_acc\n")
    (run / "status.json").write_text(json.dumps({"status": "completed", "message": "done", "epochs_done": 3}))
    assert store.info(run).message == "history.csv cannot be read (damaged or empty); done"
    # its best accuracy is best.pt's own, from status.json (it read "—"); not a loss, when the loss picked it
    doc = {"status": "completed", "epochs_done": 3, "best_epoch": 2, "best_metric": 0.65625}
    (run / "status.json").write_text(json.dumps(doc))
    assert (store.info(run).best_val_acc, store.info(run).best_epoch) == (0.65625, 2)
    (run / "config.json").write_text(json.dumps({"model": {"arch": "resnet18"}, "train": {"monitor": "val_loss"}}))
    assert (store.info(run).best_val_acc, store.info(run).best_epoch) == (None, 2)


def test_a_hand_edited_start_time_that_is_no_date_is_read_from_the_name(tmp_path):
    """ "started": 1e300 ended the Runs tab's listing (OverflowError in localtime); true dated the run 1970."""
    import datetime

    run = tmp_path / "20260101-120000-resnet18-shapes"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"model": {"arch": "resnet18"}}))
    named = datetime.datetime(2026, 1, 1, 12, 0, 0).timestamp()
    for started in (1e300, True, float("nan"), -5, "soon", None):
        (run / "status.json").write_text(json.dumps({"status": "completed", "started": started}))
        assert RunStore(tmp_path).info(run).created == named, started
    (run / "status.json").write_text(json.dumps({"status": "completed", "started": 1_700_000_000}))
    assert RunStore(tmp_path).info(run).created == 1_700_000_000  # (a real one is kept)


def test_a_run_whose_status_json_cannot_be_read_says_so_and_keeps_its_date(tmp_path):
    """It showed as "interrupted", silently, dated today (the folder's mtime): on top of a list sorted by date."""
    import datetime
    import time

    store = RunStore(tmp_path)
    run = tmp_path / "20260101-120000-resnet18-shapes"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"model": {"arch": "resnet18"}}))
    (run / "status.json").write_text('{"status": "compl')  # cut short
    info = store.info(run)
    assert info.message == "status.json cannot be read (damaged or empty)" and info.arch == "resnet18"
    assert info.created == datetime.datetime(2026, 1, 1, 12, 0, 0).timestamp()
    (run / "config.json").write_text("")
    assert store.info(run).message == "status.json and config.json cannot be read (damaged or empty)"
    # parsed, but no status of ours in it ({"x": 1} ended `runs` in a traceback), or a count past any run's
    for doc in ({"status": {"x": 1}}, {"status": "done?"}, {"epochs_done": 5}):
        (run / "status.json").write_text(json.dumps(doc))
        assert store.info(run).message.startswith("status.json and config.json cannot be read"), doc
        assert store.info(run).status == "interrupted" and runs.read_status(run) == {}
    (run / "status.json").write_text(json.dumps({"status": "completed", "epochs_done": 1e308}))
    assert store.info(run).epochs_done == 0 and store.info(run).status == "completed"
    # unreadable, but its history holds every epoch planned: finished, as `train --resume` takes it (it was listed
    # "interrupted", and a resume then said it had trained all its epochs)
    (run / "config.json").write_text(json.dumps({"model": {"arch": "resnet18"}, "train": {"epochs": 2}}))
    (run / "status.json").write_text("[1, 2]")
    rows = [{"epoch": 1, "train_loss": 1.0, "train_acc": 0.5, "val_loss": 1.0, "val_acc": 0.5, "lr": 0.1, "seconds": 1}]
    runs.write_history(run, rows)
    assert store.info(run).status == "interrupted"  # (1 of 2)
    runs.write_history(run, rows + [{**rows[0], "epoch": 2}])
    info = store.info(run)
    assert info.status == "completed" and info.message == "status.json cannot be read (damaged or empty)"
    # resumed, its status.json written anew: it keeps the date of its name (it was dated now: the newest run)
    runs.write_status(run, "running")
    assert runs.read_status(run)["started"] == datetime.datetime(2026, 1, 1, 12, 0, 0).timestamp()
    fresh = tmp_path / "20260101-130000-resnet18-shapes"
    fresh.mkdir()
    assert abs(runs.write_status(fresh, "running")["started"] - time.time()) < 60  # a new run: now


@pytest.mark.timeout(60)
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_for_a_run_file_does_not_hang_the_listing(tmp_path):
    """`runs` (and the Runs tab) waited for ever on a status.json or history.csv that was a named pipe."""
    run = tmp_path / "20260101-120000-resnet18-shapes"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"model": {"arch": "resnet18"}}))
    for name in ("status.json", "history.csv", "batches.csv"):
        os.mkfifo(run / name)
    (info,) = RunStore(tmp_path).list()
    assert info.message == "status.json and history.csv cannot be read (damaged or empty)"
    assert runs.read_batches(run) == [] and runs.read_history(run) == []


def test_a_hand_edited_epoch_count_is_read_as_a_number_or_not_at_all(tmp_path):
    store = RunStore(tmp_path)
    run = _fake_run(store, "resnet18", {"status": "completed", "started": 1})
    for written, read in (("4", 4), (4.0, 4), ("four", None), (-1, None), (2.5, None), (None, None), (10**400, None)):
        (run / "config.json").write_text(json.dumps({"model": {"arch": "resnet18"}, "train": {"epochs": written}}))
        assert store.info(run).epochs_planned == read


def test_a_replace_blocked_by_a_reader_is_retried_on_windows(tmp_path, monkeypatch):
    """Windows refuses to replace a file another program has open: one such moment failed a whole run."""
    target = tmp_path / "status.json"
    target.write_text("{}")
    real, refusals = os.replace, []

    def held_open_twice(src, dst):
        if len(refusals) < 2:
            refusals.append(dst)
            raise PermissionError(13, "Access is denied", str(dst))
        real(src, dst)

    monkeypatch.setattr(os, "replace", held_open_twice)
    monkeypatch.setattr(runs, "REPLACE_RETRY_S", 2.0)
    runs.write_json_atomic(target, {"status": "running"})
    assert json.loads(target.read_text()) == {"status": "running"} and len(refusals) == 2
    refusals.clear()
    monkeypatch.setattr(runs, "REPLACE_RETRY_S", 0.0)  # elsewhere, a refusal is a real one: said at once
    with pytest.raises(PermissionError) as e:
        runs.write_json_atomic(target, {"status": "completed"})
    assert e.value.filename == str(target) and len(refusals) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]  # no temp file left


def test_probes_of_one_run_do_not_take_each_other_for_its_trainer(tmp_path):
    """A probe held the lock exclusively for a moment: a second reader then saw the run as "running"."""
    store = RunStore(tmp_path)
    run = _fake_run(store, "resnet18", {"status": "completed", "started": 1})
    (run / ".lock").write_bytes(b"")
    if os.name != "nt":
        import fcntl

        with open(run / ".lock", "r+b") as other_reader:
            fcntl.flock(other_reader.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)  # a probe in another process, now
            assert runs.RunLock(run).probe() is False
    trainer = runs.RunLock(run)
    assert trainer.acquire()
    assert runs.RunLock(run).probe() is True
    trainer.release()


def test_data_changes_reads_old_records_and_copies_alike(tmp_path, jpeg_writer):
    """A run recorded "café" decomposed (before names were NFC), or a copy of its folder spells it so: the same
    images, which were reported as "café 0 → 8, café 8 → 0" and "other images, the same counts"."""
    from core import data

    decomposed, composed = "cafe\u0301", "caf\u00e9"
    for name, root in ((composed, tmp_path / "a"), (decomposed, tmp_path / "b")):
        for c in (name, "tea"):
            for i in range(3):
                jpeg_writer(root / c / f"{i}.jpg", i + 10 * (c == "tea"))
    a, b = data.scan(tmp_path / "a"), data.scan(tmp_path / "b")
    assert a.files_digest() == b.files_digest()  # NFC and "/" in the fingerprint
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(
        json.dumps({"dataset": {"counts": {decomposed: 3, "tea": 3}, "files": a.files_digest()}})
    )
    record = runs.config_section(run, "dataset")
    assert runs.data_changes(record, a.counts(), b.files_digest()) == []
    assert runs.data_changes(record, {composed: 4, "tea": 3}) == [f"{composed} 3 → 4"]
    assert (
        runs.data_changes(runs.config_section(tmp_path, "dataset"), a.counts()) is None
    )  # nothing recorded to compare with


def test_an_empty_or_cut_short_checkpoint_is_not_counted_as_saved(tmp_path, capsys):
    """A copy that did not finish showed as a usable best.pt ("completed", Predict and Evaluate on) until
    evaluate failed on it."""
    import zipfile

    from core.cli import main

    store = RunStore(tmp_path / "runs")
    run = store.create("resnext11_2x4d", "shapes")
    (run / "status.json").write_text(json.dumps({"status": "completed"}))
    with zipfile.ZipFile(run / "best.pt", "w") as z:  # torch.save's format: a zip
        z.writestr("archive/data.pkl", b"x" * 5000)
    assert store.info(run).has_best and not store.info(run).damaged_files  # (whole)
    data = (run / "best.pt").read_bytes()
    (run / "best.pt").write_bytes(data[: len(data) // 2])
    (run / "last.pt").write_bytes(b"")
    info = store.info(run)
    assert (info.has_best, info.has_last, info.damaged_files) == (False, False, ("best.pt", "last.pt"))
    assert info.message == "best.pt and last.pt are empty or cut short: not usable"
    assert main(["runs", "--runs-dir", str(tmp_path / "runs")]) == 0
    assert "(best.pt and last.pt are empty or cut short: not usable)" in capsys.readouterr().out
    assert main(["runs", "--runs-dir", str(tmp_path / "runs"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["runs"][0]["damaged_files"] == ["best.pt", "last.pt"]


def test_a_lost_history_leaves_the_epochs_status_json_counted(tmp_path):
    """history.csv lost (or cut to a junk row): a finished run of 4 epochs read "0/4"."""
    store = RunStore(tmp_path / "runs")
    run = store.create("resnext11_2x4d", "shapes")
    (run / "config.json").write_text(json.dumps({"train": {"epochs": 4}}))
    (run / "status.json").write_text(json.dumps({"status": "completed", "epochs_done": 4}))
    info = store.info(run)
    assert (info.epochs_done, info.epochs_planned) == (4, 4)
    (run / "history.csv").write_text("epoch,train_loss\n1,0.5\n2,0.4\n3,0.3\n4,0.2\n5,0.1\n")  # (more: counted)
    assert store.info(run).epochs_done == 5


def test_a_run_knows_its_images_elsewhere_by_their_bytes_or_when_its_folder_is_gone(tmp_path):
    """The same names with other bytes (a generator run again) were taken for the images a run trained on."""
    import shutil

    from PIL import Image

    from core.data import scan
    from core.runs import holds_its_images

    data = tmp_path / "data"
    for c, name in enumerate(("red", "blue")):
        (data / name).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (8, 8), (200 * (c == 0), i, 200 * (c == 1))).save(data / name / f"{i}.png")
    run = tmp_path / "run"
    run.mkdir()
    index = scan(str(data))
    copy = shutil.copytree(data, tmp_path / "copy")
    Image.new("RGB", (8, 8), "white").save(tmp_path / "copy" / "red" / "0.png")  # the same names, another image
    for dataset, copy_is_its_own in (
        ({"files": index.files_digest(), "content": index.content_digest}, False),  # by the bytes
        ({"files": index.files_digest()}, False),  # an older run: by the names, and its folder is still there
    ):
        (run / "config.json").write_text(json.dumps({"dataset": dataset}))
        assert holds_its_images(run, scan(str(copy)), str(data)) is copy_is_its_own
    (run / "config.json").write_text(json.dumps({"dataset": {"files": index.files_digest()}}))
    shutil.rmtree(data)  # moved away: an older run knows it by its names
    assert holds_its_images(run, scan(str(copy)), str(data))
    Image.new("RGB", (8, 8), (200, 0, 0)).save(tmp_path / "copy" / "red" / "0.png")  # (its bytes back)
    (run / "config.json").write_text(json.dumps({"dataset": {"content": index.content_digest}}))
    assert holds_its_images(run, scan(str(copy)), str(data))


def test_recent_loss_is_the_mean_since_the_previous_event():
    """The loss line's points: the mean of the images since the point before, from the events' running means."""
    from types import SimpleNamespace as P

    recent = runs.RecentLoss()
    assert recent(P(epoch=1, loss=2.0, seen=8)) == 2.0  # a run's first event: its running mean
    assert recent(P(epoch=1, loss=1.5, seen=16)) == pytest.approx(1.0)  # (16 * 1.5 - 8 * 2) / 8
    assert recent(P(epoch=1, loss=1.25, seen=32)) == pytest.approx(1.0)
    assert recent(P(epoch=2, loss=0.9, seen=8)) == 0.9  # a new epoch starts its own mean
    assert recent(P(epoch=2, loss=0.7, seen=16)) == pytest.approx(0.5)
    assert not recent.behind(P(epoch=2, loss=0.7, seen=16))
    # no image since (a last batch of one image does not train): the value as it was, not the running mean 0.7
    assert recent(P(epoch=2, loss=0.7, seen=16)) == pytest.approx(0.5)
    assert math.isnan(recent(P(epoch=0, loss=float("nan"), seen=0)))  # (a feature pass: no loss, not drawn)
    assert recent(P(epoch=2, loss=0.6, seen=0)) == 0.6  # (a count not known: the mean given)
    recent.resume_at(3, 2.0, 8)  # a run stopped after 8 images of epoch 3, at a mean of 2.0
    assert recent(P(epoch=3, loss=1.5, seen=16)) == pytest.approx(1.0)


def test_copies_of_a_runs_training_images_in_another_folder_are_counted(tmp_path):
    """A "test" folder made partly of copies of the training images was scored as new: the accuracy read high."""
    import shutil

    from PIL import Image

    from core.data import scan, split

    data = tmp_path / "data"
    for c, name in enumerate(("red", "blue")):
        (data / name).mkdir(parents=True)
        for i in range(5):
            Image.new("RGB", (8, 8), (200 * (c == 0), 10 * i, 200 * (c == 1))).save(data / name / f"{i}.png")
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"data": {"root": str(data), "val_split": 0.4, "seed": 3}}))
    parts = split(scan(str(data)), 0.4, 0.0, 3)
    index = scan(str(data))
    trained, held = [index.samples[i].path for i in parts.train], [index.samples[i].path for i in parts.val]
    other = tmp_path / "other"
    for k, path in enumerate(trained[:3] + held[:2]):  # 3 training images, 2 validation ones, under new names
        (other / Path(path).parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, other / Path(path).parent.name / f"copy{k}.png")
    (other / "red").mkdir(exist_ok=True)
    Image.new("RGB", (8, 8), "white").save(other / "red" / "new.png")
    assert runs.trained_copies(run, scan(str(other)), "all") == (3, 6)
    in_red = sum(Path(p).parent.name == "red" for p in trained[:3])  # images of classes the model does not know
    red_files = len(list((other / "red").iterdir()))  # are not evaluated: not counted either
    assert runs.trained_copies(run, scan(str(other)), "all", classes=["red"]) == (in_red, red_files)
    counted: list[tuple[int, int]] = []  # the scan of the run's own folder is followed (it had no progress)
    said = runs.trained_copies_warning(
        run, scan(str(other)), progress=lambda done, total: counted.append((done, total))
    )
    assert said.startswith("3 of these 6 images are copies of images this model trained on")
    assert counted and counted[-1][0] == counted[-1][1] and counted[-1][1] >= 10  # (its 10 images)
    assert runs.trained_copies(run, index) is None  # its own folder: the held-out split says what is honest
    stopped = type("Stop", (), {"stopped": True})()  # (Cancel while its folder is scanned: not known, not waited on)
    assert runs.trained_copies(run, scan(str(other)), stop=stopped) is None
    shutil.rmtree(data)  # its folder gone: not known
    assert (
        runs.trained_copies(run, scan(str(other))) is None
        and runs.trained_copies_warning(run, scan(str(other))) is None
    )


def test_a_run_left_running_on_another_machine_is_interrupted_once_its_lock_is_free_and_it_is_quiet(tmp_path):
    """A run copied from another machine while its status.json said "running" (or from a machine that crashed)
    named that machine: only a run of this host was looked at, so it showed "running" for good (Resume and Delete
    disabled) while `train --resume` took it at once."""
    import time

    store = RunStore(tmp_path)
    hour_ago = time.time() - 3600
    doc = {"status": "running", "hostname": "alice-laptop", "pid": 4242, "started": 100, "updated": hour_ago}
    run = _fake_run(store, "resnet18", doc)
    (run / "last.pt").write_bytes(b"x")

    def write(doc, age_here: float = 3600) -> None:  # status.json, written `age_here` ago by this machine's clock
        (run / "status.json").write_text(json.dumps(doc))
        os.utime(run / "status.json", (time.time() - age_here,) * 2)

    write(doc)
    lock = runs.RunLock(run)  # its .lock, as the trainer leaves it (free: nobody trains it)
    assert lock.acquire()
    lock.release()
    info = store.info(run)
    assert info.status == "interrupted" and info.resumable and info.host == "alice-laptop"
    assert info.message.startswith("last seen running on alice-laptop (")  # where, and when
    assert store.load(run).status["status"] == "interrupted" and runs.effective_status(doc, run) == "interrupted"
    # a folder shared with that machine, whose lock reaches here: held, so it trains there now
    assert lock.acquire()
    try:
        assert store.info(run).status == "running" and store.info(run).host == "alice-laptop"
    finally:
        lock.release()
    # status.json written moments ago: a share may keep that machine's lock to itself, so a free lock is not enough
    doc["updated"] = time.time() - 60
    write(doc)
    assert store.info(run).status == "running"
    doc["updated"] = time.time() - runs.FOREIGN_QUIET_S - 5
    write(doc)
    assert store.info(run).status == "interrupted"
    write(doc, age_here=60)  # its clock 10 minutes behind this one's: written a minute ago, here
    assert store.info(run).status == "running"
    # epochs of 8 minutes, or saves 20 minutes apart: quiet for 10 minutes is no end
    runs.append_history(run, {"epoch": 1, "train_loss": 1.0, "seconds": 480.0})
    write(doc, age_here=runs.FOREIGN_QUIET_S + 5)
    assert runs.foreign_quiet_s(run) == 960 and store.info(run).status == "running"
    cfg = json.loads((run / "config.json").read_text())
    cfg.setdefault("train", {})["save_every_s"] = 1200
    (run / "config.json").write_text(json.dumps(cfg))
    assert runs.foreign_quiet_s(run) == 2400
    write(doc, age_here=3600)
    doc["updated"] = hour_ago
    write(doc, age_here=3600)
    assert store.info(run).status == "interrupted"
    # no "updated" time: the file's own; no .lock (a run from before locks): the quiet time alone decides
    del doc["updated"]
    write(doc, age_here=0)
    (run / ".lock").unlink()
    assert store.info(run).status == "running"
    os.utime(run / "status.json", (hour_ago, hour_ago))
    assert store.info(run).status == "interrupted"
    # a status.json that names no machine (hand-written) is as it was: running
    assert runs.effective_status({"status": "running", "updated": hour_ago}, run) == "running"
    store.delete(run)  # (its lock is free: Delete works)
    assert not run.exists()


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != ".lock")  # (.lock: made by the delete's lock)


def _run_with_files(store: RunStore) -> Path:
    run = Path(_fake_run(store, "resnet18", {"status": "completed", "started": 1}))
    for name in ("best.pt", "last.pt"):
        (run / name).write_bytes(b"x")
    return run


def test_delete_sets_the_run_aside_first_so_a_file_that_cannot_go_never_leaves_it_half_deleted(tmp_path, monkeypatch):
    """status.json that could not be removed (immutable, held open on Windows, a read-only folder) left a run
    without best.pt, last.pt, config.json and history.csv, still listed, and "could not be deleted" said."""
    import errno

    store = RunStore(tmp_path)
    run = _run_with_files(store)
    real_unlink = os.unlink

    def unlink(path, *args, **kwargs):  # (shutil.rmtree removes by name within the folder)
        if os.path.basename(path) == "status.json":
            raise PermissionError(errno.EPERM, "Operation not permitted", str(path))
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", unlink)
    with pytest.raises(runs.PartlyDeleted) as e:
        store.delete(run)
    left = tmp_path / f".deleting-{run.name}"
    assert e.value.left == left and sorted(p.name for p in left.iterdir()) == ["status.json"]
    assert not run.exists() and store.list() == []  # off the list (the folder set aside is hidden), not half a run
    text = str(e.value)
    assert "deleted from the run list" in text and "status.json" in text and str(left) in text, text
    assert "Operation not permitted" in text
    monkeypatch.setattr(os, "unlink", real_unlink)
    # the same name again, with .deleting-NAME still there: set aside beside it
    again = tmp_path / run.name
    again.mkdir()
    (again / "status.json").write_text(json.dumps({"status": "completed"}))
    store.delete(again)
    assert not again.exists() and left.is_dir() and not (tmp_path / f".deleting-{run.name}-2").exists()

    # the rename itself refused (a read-only runs folder, a file held open on Windows): nothing removed
    run = _run_with_files(store)
    files = _files(run)
    real_rename = os.rename

    def rename(src, dst, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(src))

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError, match=r"not deleted: .*Permission denied.*nothing was removed"):
        store.delete(run)
    assert _files(run) == files and [i.path for i in store.list()] == [run]
    monkeypatch.setattr(os, "rename", real_rename)

    # no file could go (a read-only folder): put back as it was, and said so
    monkeypatch.setattr(os, "unlink", lambda path, *a, **k: (_ for _ in ()).throw(PermissionError(13, "Denied")))
    with pytest.raises(OSError, match=r"not deleted: none of its files could be removed \(Denied\)"):
        store.delete(run)
    assert _files(run) == files and [i.path for i in store.list()] == [run]


def test_a_run_listed_again_is_not_read_again_until_its_files_change(tmp_path, monkeypatch):
    """The Runs and Predict tabs list every run each time they are shown: 300 runs took 0.6 s of the window's
    thread, most of it opening each checkpoint's zip index and parsing each history.csv again."""
    import time
    import zipfile

    store = RunStore(tmp_path / "runs")
    run = Path(_fake_run(store, "resnext11_2x4d", {"status": "completed", "epochs_done": 2}))
    with zipfile.ZipFile(run / "best.pt", "w") as z:
        z.writestr("archive/data.pkl", b"x" * 5000)
    long_ago = time.time_ns() - 3600 * 10**9  # (a file changed within the last 2 s is read each time)
    for f in run.iterdir():
        os.utime(f, ns=(long_ago, long_ago))
    first = store.list()
    opened, parsed = [], []
    real_zip, real_parse = zipfile.ZipFile, runs._parse_history
    monkeypatch.setattr(runs.zipfile, "ZipFile", lambda f, *a, **k: (opened.append(f), real_zip(f, *a, **k))[1])
    monkeypatch.setattr(runs, "_parse_history", lambda p: (parsed.append(p), real_parse(p))[1])
    assert store.list() == first and opened == [] and parsed == []
    first[0].epochs_done = 99  # (a reader's copy: changing it changes nothing kept)
    runs.read_history(run)[0]["val_acc"] = 0.0
    assert store.list()[0].epochs_done == 2 and store.list()[0].best_val_acc == 0.75
    runs.append_history(run, {"epoch": 3, "train_loss": 0.2, "train_acc": 0.9, "val_loss": 0.3, "val_acc": 0.9})
    os.utime(run / "history.csv", ns=(long_ago + 10**9, long_ago + 10**9))
    again = store.list()[0]
    assert (again.epochs_done, again.best_val_acc) == (3, 0.9) and parsed == [run / "history.csv"]
    (run / "best.pt").write_bytes((run / "best.pt").read_bytes()[:100])  # cut short, just now: read again
    assert store.list()[0].damaged_files == ("best.pt",)
    # rewritten in place with its modification time put back (rsync -t, touch -r): its change time says so
    text = (run / "history.csv").read_text()
    (run / "history.csv").write_text(text.replace("0.9,", "0.8,"))
    os.utime(run / "history.csv", ns=(long_ago + 10**9, long_ago + 10**9))
    assert store.list()[0].best_val_acc == 0.8
    # a history that could not be read (a permission, a share away) is read again next time, not kept so
    real_open = open
    failing = [run / "history.csv"]

    def refuse_once(file, *a, **k):
        if Path(file) in failing:
            failing.clear()
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *a, **k)

    monkeypatch.setattr("builtins.open", refuse_once)
    os.utime(run / "history.csv", ns=(long_ago + 2 * 10**9, long_ago + 2 * 10**9))
    assert store.list()[0].epochs_done == 2 and not failing  # (status.json's count; history.csv not read)
    assert store.list()[0].best_val_acc == 0.8  # read again, and there


def test_what_a_killed_training_left_where_no_run_goes_on_is_removed_when_listed(tmp_path):
    """kill -9 as a run folder was made left it with only its lock (and a half-written config.json): never listed
    and never removed. One killed in its first last.pt's write kept the temp file (a checkpoint's size) for ever:
    only a resume removed such files, and that run had no last.pt to resume from."""
    store = RunStore(tmp_path)
    made = tmp_path / "20261130-000102-resnext11_2x4d-data"
    made.mkdir()
    (made / ".lock").touch()
    (made / ".config.json.yk2grvl3.tmp").write_text("{")
    (made / "error.txt").touch()  # (a full disk's)
    killed = {"status": "running", "started": 1, "hostname": socket.gethostname(), "pid": 2**22 + 12345}
    run = _fake_run(store, "resnext11_2x4d", killed)  # (its process gone: its lock free)
    (run / ".lock").touch()
    (run / ".last.pt.pou344hq.tmp").write_bytes(b"x" * 1000)
    (run / ".evaluation.json.abc.tmp").write_text("{")  # (the app's, not a trainer's: left alone)
    copying = tmp_path / "20261130-000103-copied-in"  # (being copied in: no lock, files of its own)
    copying.mkdir()
    (copying / "history.csv").write_text("epoch\n")
    held = tmp_path / "20261130-000104-resnext11_2x4d-data"  # (a trainer has it: its lock is held)
    held.mkdir()
    lock = runs.RunLock(held)
    assert lock.acquire()
    (held / ".config.json.q1w2e3r4.tmp").write_text("{")
    young = tmp_path / "20261130-000105-resnext11_2x4d-data"  # (just made, by another machine's trainer maybe)
    young.mkdir()
    (young / ".lock").touch()
    (run / ".best.pt.n3w.tmp").write_text("being written")  # (as by another machine's trainer: too new to go)
    long_ago = time.time() - runs.DEBRIS_AGE_S - 60
    for p in [made, *made.iterdir(), *held.iterdir(), run / ".last.pt.pou344hq.tmp", run / ".evaluation.json.abc.tmp"]:
        os.utime(p, (long_ago, long_ago))
    live = _fake_run(store, "resnext11_2x4d", {**killed, "pid": os.getpid()})  # (no lock: its process decides)
    (live / ".last.pt.w1r2t3.tmp").write_bytes(b"x")
    os.utime(live / ".last.pt.w1r2t3.tmp", (long_ago, long_ago))
    try:
        infos = store.list()
        assert sorted(i.path for i in infos) == sorted([run, live])
        assert (live / ".last.pt.w1r2t3.tmp").is_file() and not (live / ".lock").exists()  # (trained: kept)
        assert not made.exists() and copying.is_dir() and (held / ".config.json.q1w2e3r4.tmp").is_file()
        assert (young / ".lock").is_file()
        left = sorted(p.name for p in run.iterdir() if p.name.startswith("."))
        assert left == [".best.pt.n3w.tmp", ".evaluation.json.abc.tmp", ".lock"]
    finally:
        lock.release()
