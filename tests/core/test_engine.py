"""Trainer end to end on a tiny synthetic set: run folder, resume, stop, failures, early stopping; evaluate."""

import copy
import json
import math
import os
import shutil
import time
from pathlib import Path

import pytest
import torch

from core import checkpoint, data, engine, models, runs
from core.config import ConfigError, RunConfig
from core.engine import Callback, StopToken, Trainer, choose_memory_format, evaluate, resolve_defaults
from tests.helpers import make_colour_set


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_colour_set(tmp_path_factory.mktemp("data") / "colours")


def config(root: Path, epochs: int = 2, arch: str = "resnext11_2x4d", **train) -> RunConfig:
    cfg = RunConfig()
    cfg.data.root, cfg.data.image_size, cfg.data.num_workers = str(root), 16, 0
    cfg.model.arch = arch
    cfg.train.epochs, cfg.train.batch_size, cfg.train.lr = epochs, 8, 2e-3
    for k, v in train.items():
        setattr(cfg.train, k, v)
    return cfg


class Recorder(Callback):
    def __init__(self, trainer_hook=None):
        self.events: list[tuple] = []
        self.warnings: list[str] = []
        self.hook = trainer_hook

    def on_loading(self, done, total):
        self.events.append(("loading", (done, total)))

    def on_fit_start(self, info):
        self.events.append(("fit_start", info))

    def on_epoch_start(self, epoch):
        self.events.append(("epoch_start", epoch))

    def on_batch_end(self, p):
        self.events.append(("batch", p))

    def on_epoch_end(self, m):
        self.events.append(("epoch_end", m))

    def on_checkpoint(self, path, kind):
        self.events.append(("checkpoint", kind))

    def on_warning(self, msg):
        self.warnings.append(msg)

    def on_fit_end(self, r):
        self.events.append(("fit_end", r))

    def of(self, kind):
        return [e[1] for e in self.events if e[0] == kind]


def _status(run_dir) -> dict:
    return json.loads((Path(run_dir) / "status.json").read_text())


def _fit_stopped_at(cfg, runs_dir, at: tuple[int, int]):
    """A run of `cfg` stopped (as by the Stop button) after batch at[1] of epoch at[0]."""
    token = StopToken()

    class StopThere(Callback):
        def on_batch_end(self, p):
            if (p.epoch, p.step) == at:
                token.stop()

    rec = Recorder()
    result = Trainer(cfg, callbacks=[StopThere(), rec], stop=token, runs_dir=runs_dir).fit()
    assert result.reason == "stopped", result.message
    steps = next(p.steps for p in rec.of("batch"))  # where it stopped, in the bar's numbers
    assert result.message.startswith(f"stopped during epoch {at[0]}, after batch {at[1]} of {steps}; "), result.message
    return result


def _strip_seconds(history):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in history]


def test_end_to_end_run_folder(dataset, tmp_path, monkeypatch):
    rec = Recorder()
    closed = []
    close = data.BatchLoader.close
    monkeypatch.setattr(data.BatchLoader, "close", lambda self: closed.append(self) or close(self))
    trainer = Trainer(config(dataset), callbacks=[rec], runs_dir=tmp_path / "runs")
    result = trainer.fit()
    assert result.reason == "completed", result.message
    # the final evaluation's loader, then the run's two: their stream's workers end with it
    assert len(closed) == 3 and closed[1:] == [trainer.train_loader, trainer.val_loader]
    run = Path(result.run_dir)
    assert run.parent == tmp_path / "runs" and run.name.endswith("-resnext11_2x4d-colours")
    for name in ("config.json", "history.csv", "status.json", "best.pt", "last.pt", "evaluation.json", "curves.png"):
        assert (run / name).is_file(), name
    assert len(result.history) == 2 and (run / "history.csv").read_text().count("\n") == 3
    assert _status(run)["status"] == "completed" and _status(run)["reason"] == "completed"
    assert _status(run)["device"] == trainer.device.type == "cpu"  # what it trained on, kept past "running"
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["dataset"]["classes"] == ["c0", "c1", "c2"] and cfg["train"]["epochs"] == 2
    # an easy set: well above chance (1/3)
    assert result.history[-1]["val_acc"] >= 0.66 and result.evaluation["accuracy"] >= 0.66
    info = rec.of("fit_start")[0]
    assert info.num_classes == 3 and info.train_size + info.val_size == 24 and info.start_epoch == 0
    batches = rec.of("batch")
    assert batches and all(b.steps == info.steps_per_epoch for b in batches)
    assert [b.step for b in batches if b.epoch == 1][-1] == info.steps_per_epoch  # the last batch is reported
    assert [m.epoch for m in rec.of("epoch_end")] == [1, 2]
    assert not [w for w in rec.warnings if "diverging" in w]  # (a run that learns is not warned of it)
    assert rec.of("fit_end")[0] is result
    best = torch.load(run / "best.pt", weights_only=True)  # plain torch, weights only
    assert best["format"] == checkpoint.FORMAT and best["class_names"] == ["c0", "c1", "c2"]
    assert best["image_size"] == 16 and best["resize_size"] == 16 and len(best["mean"]) == 3
    assert best["epoch"] == result.best_epoch and "optimizer" not in best
    assert not any(k.startswith(("module.", "_orig_mod.")) for k in best["model"])
    last = checkpoint.load(run / "last.pt")
    assert {"optimizer", "scheduler", "scaler", "rng", "history"} <= set(last) and last["epoch"] == 2
    model = checkpoint.model_from_checkpoint(best)
    assert not model.training
    ev = json.loads((run / "evaluation.json").read_text())
    assert (
        ev["split"] == "val"
        and ev["num_samples"] == info.val_size
        and sum(map(sum, ev["confusion_matrix"])) == info.val_size
    )


def test_resume_is_exact(dataset, tmp_path):
    cfg = config(dataset, mixup=0.2)
    straight = Trainer(cfg, runs_dir=tmp_path / "a").fit()
    assert straight.reason == "completed"

    class StopAfterFirst(Callback):
        def __init__(self, token):
            self.token = token

        def on_epoch_end(self, m):
            if m.epoch == 1:
                self.token.stop()

    token = StopToken()
    first = Trainer(cfg, callbacks=[StopAfterFirst(token)], stop=token, runs_dir=tmp_path / "b").fit()
    assert first.reason == "stopped" and len(first.history) == 1
    assert _status(first.run_dir)["status"] == "stopped"
    rec = Recorder()
    running = []  # status.json as the resume starts: it still names the best epoch (a kill then had left none)

    class StatusAtStart(Callback):
        def on_fit_start(self, info):
            running.append(_status(first.run_dir))

    resumed = Trainer(None, callbacks=[rec, StatusAtStart()], resume=first.run_dir).fit()
    assert resumed.reason == "completed" and resumed.run_dir == first.run_dir
    assert running[0]["status"] == "running" and running[0]["epochs_done"] == 1
    assert (running[0]["best_epoch"], running[0]["best_metric"]) == (first.best_epoch, first.best_metric)
    assert rec.of("fit_start")[0].start_epoch == 1 and rec.of("epoch_start") == [2]
    assert _strip_seconds(resumed.history) == _strip_seconds(straight.history)
    a = checkpoint.load(Path(straight.run_dir) / "last.pt")["model"]
    b = checkpoint.load(Path(resumed.run_dir) / "last.pt")["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert len((Path(resumed.run_dir) / "history.csv").read_text().strip().splitlines()) == 3


def test_a_run_still_training_elsewhere_is_not_resumed(dataset, tmp_path):
    """Two processes on one run folder interleave history.csv and overwrite each other's checkpoints."""
    import socket

    first = _fit_stopped_at(config(dataset, epochs=2, batch_size=4), tmp_path, (1, 1))
    (Path(first.run_dir) / ".lock").unlink()  # a run from before run folders were locked: its process id tells
    status_path = Path(first.run_dir) / "status.json"
    status = json.loads(status_path.read_text())
    status.update(status="running", pid=os.getppid(), hostname=socket.gethostname())  # a live process, not us
    status_path.write_text(json.dumps(status))
    with pytest.raises(ConfigError, match="still training"):
        Trainer(None, resume=first.run_dir)
    assert json.loads(status_path.read_text())["pid"] == os.getppid()  # nothing was touched
    if Path("/proc/stat").exists():  # Linux: a process id reused by a program started after the run's last word
        status_path.write_text(json.dumps({**status, "updated": 1000.0}))
        assert runs.effective_status(json.loads(status_path.read_text())) == "interrupted"
        status_path.write_text(json.dumps(status))
    status["pid"] = 2**22 + 12345  # that process is gone: an interrupted run, resumable
    status_path.write_text(json.dumps(status))
    assert Trainer(None, resume=first.run_dir).fit().reason == "completed"


def test_a_run_training_on_another_machine_is_not_resumed_here_until_it_counts_as_ended(dataset, tmp_path):
    """A folder shared with another machine, or copied from it mid-run: status.json names that machine and was
    written a minute ago. The Runs tab would not resume it; `train --resume` (the Trainer) took it at once, and
    both machines then wrote one run folder."""
    import time

    first = _fit_stopped_at(config(dataset, epochs=2, batch_size=4), tmp_path, (1, 1))
    status_path = Path(first.run_dir) / "status.json"
    status = {**json.loads(status_path.read_text()), "status": "running", "hostname": "alice-laptop", "pid": 4242}
    status_path.write_text(json.dumps({**status, "updated": time.time() - 60}))
    with pytest.raises(ConfigError, match="training on alice-laptop") as e:
        Trainer(None, resume=first.run_dir)
    assert "resumed from " in str(e.value) and str(first.run_dir) in str(e.value)
    assert json.loads(status_path.read_text())["hostname"] == "alice-laptop"  # nothing was touched
    old = time.time() - runs.FOREIGN_QUIET_S - 60  # quiet for longer than a live run ever is: ended there
    status_path.write_text(json.dumps({**status, "updated": old}))
    os.utime(status_path, (old, old))
    assert Trainer(None, resume=first.run_dir).fit().reason == "completed"


def test_an_extension_killed_before_its_first_new_epoch_resumes_to_its_plan(dataset, tmp_path):
    """`train --resume RUN --epochs 8` killed before epoch 7 saved: config.json plans 8, last.pt still 6; a plain
    resume said "completed" with nothing trained and wrote the plan back to 6."""
    first = Trainer(config(dataset, epochs=1, batch_size=4), runs_dir=tmp_path).fit()
    run = Path(first.run_dir)
    doc = json.loads((run / "config.json").read_text())
    doc["train"]["epochs"] = 3  # what the extension wrote before it was killed
    (run / "config.json").write_text(json.dumps(doc))
    runs.write_status(run, "interrupted")
    resumed = Trainer(None, resume=run).fit()
    assert resumed.reason == "completed" and [r["epoch"] for r in resumed.history] == [1, 2, 3]
    assert json.loads((run / "config.json").read_text())["train"]["epochs"] == 3


@pytest.mark.parametrize("keep", [3, 16])
def test_a_resume_with_fewer_or_more_images_keeps_its_place_on_the_cosine(tmp_path, keep):
    """The cosine counts steps: 5 steps an epoch turning into 1 left the rate at 0 for the rest of the run, and
    more steps an epoch jolted it back up."""
    root = make_colour_set(tmp_path / "data", per_class=8)
    cfg = config(root, epochs=2, batch_size=4, warmup_epochs=0)
    first = Trainer(cfg, runs_dir=tmp_path / "runs").fit()
    before = checkpoint.load(Path(first.run_dir) / "last.pt")
    assert before["steps_per_epoch"] == before["scheduler"]["last_epoch"] / 2
    for c in range(3):  # fewer images (3 a class), or more (16)
        for i in range(keep, 8):
            (root / f"c{c}" / f"{i:02d}.png").unlink()
        for i in range(8, keep):
            shutil.copy(root / f"c{c}" / "00.png", root / f"c{c}" / f"{i:02d}.png")
    more = Trainer(config(root, epochs=4, batch_size=4, warmup_epochs=0), resume=first.run_dir).fit()
    assert more.reason == "completed", more.message
    lrs = [r["lr"] for r in more.history]
    assert lrs[2] == pytest.approx(cfg.train.lr * 0.5, rel=0.02)  # half-way along a 4-epoch cosine
    assert lrs[3] == pytest.approx(cfg.train.lr * 0.5 * (1 + math.cos(math.pi * 3 / 4)), rel=0.05)


def test_a_resume_keeps_its_place_on_the_cosine_when_a_batch_of_one_was_left_out(tmp_path):
    """The cosine counts the steps that train, and a resume moved its count by the loader's batches: 18 images at
    batch 17 (one step an epoch, the image over left out) resumed with 36 went back up to 0.85 of the rate."""
    root = make_colour_set(tmp_path / "data", per_class=6)
    cfg = config(root, epochs=2, batch_size=17, warmup_epochs=0)
    cfg.data.val_split = 0.0
    first = Trainer(cfg, runs_dir=tmp_path / "runs").fit()
    assert first.reason == "completed", first.message
    saved = checkpoint.load(Path(first.run_dir) / "last.pt")
    assert (saved["steps_per_epoch"], saved["trained_steps_per_epoch"], saved["scheduler"]["last_epoch"]) == (2, 1, 2)
    for c in range(3):  # 12 a class: three steps an epoch, all of them trained
        for i in range(6, 12):
            shutil.copy(root / f"c{c}" / "00.png", root / f"c{c}" / f"{i:02d}.png")
    cfg4 = config(root, epochs=4, batch_size=17, warmup_epochs=0)
    more = Trainer(cfg4, resume=first.run_dir).fit()
    assert more.reason == "completed", more.message
    lrs = [r["lr"] for r in more.history]
    assert lrs[2] == pytest.approx(cfg.train.lr * 0.5, rel=0.02)  # half-way along a 4-epoch cosine
    assert lrs[3] == pytest.approx(cfg.train.lr * 0.5 * (1 + math.cos(math.pi * 3 / 4)), rel=0.05)


def test_sync_bn_in_one_process_is_said_not_silently_ignored(dataset, tmp_path):
    rec = Recorder()
    result = Trainer(config(dataset, epochs=1, sync_bn=True), callbacks=[rec], runs_dir=tmp_path).fit()
    assert result.reason == "completed"
    assert any("sync_bn is for several processes under torchrun" in w for w in rec.warnings)


def test_the_cosine_ends_at_zero_when_the_last_batch_of_one_image_is_left_out(dataset, tmp_path):
    """A last batch of one image is left out (BatchNorm cannot train on it) but the cosine counted it: 17 images at
    batch 16 ended the run at half the rate."""
    cfg = config(dataset, epochs=2, scheduler="cosine", warmup_epochs=0.0)
    n = len(Trainer(cfg, runs_dir=tmp_path / "probe").split.train)
    cfg.train.batch_size = n - 1  # two batches an epoch, the second of one image
    rec = Recorder()
    trainer = Trainer(cfg, callbacks=[rec], runs_dir=tmp_path / "runs")
    result = trainer.fit()
    assert result.reason == "completed", result.message
    assert trainer.steps_per_epoch == 2  # (the progress still counts both batches)
    ends = [m for kind, m in rec.events if kind == "epoch_end"]
    assert ends[0].lr_end == pytest.approx(cfg.train.lr * 0.5)  # half-way along the cosine after one of two steps
    assert ends[-1].lr_end == pytest.approx(0.0, abs=1e-12)  # and at its end after the last


@pytest.mark.parametrize("scheduler", ["cosine", "step", "none"])
def test_an_epoch_reports_the_rates_it_trained_with(dataset, tmp_path, scheduler):
    """The log gave a warm-up epoch's first-step rate alone ("lr 1.88e-04" with 3e-03 set): its end is said too
    where the schedule moved it; a per-epoch schedule (step) keeps one rate through the epoch."""
    rec = Recorder()
    cfg = config(dataset, epochs=2, scheduler=scheduler, warmup_epochs=1.0 if scheduler == "cosine" else 0.0)
    result = Trainer(cfg, callbacks=[rec], runs_dir=tmp_path / "runs").fit()
    assert result.reason == "completed", result.message
    ends = [m for kind, m in rec.events if kind == "epoch_end"]
    if scheduler == "cosine":  # warming up through epoch 1, annealing through epoch 2
        assert ends[0].lr < ends[0].lr_end and ends[1].lr > ends[1].lr_end
        assert ends[0].lr_text() == f"lr {ends[0].lr:.2e}→{ends[0].lr_end:.2e}"
    else:
        assert all(m.lr == pytest.approx(m.lr_end) and "→" not in m.lr_text() for m in ends)
        assert ends[0].lr_text() == f"lr {cfg.train.lr:.2e}"
    assert [r["lr"] for r in result.history] == [m.lr for m in ends]  # (history.csv keeps the epoch's start)


def test_a_run_ended_between_last_pt_and_best_pt_gets_its_best_pt_back(dataset, tmp_path):
    """last.pt is saved before best.pt: a run killed between them has last.pt naming its last epoch the best and
    holding its weights, and a best.pt of an earlier epoch, which the resume writes again."""
    first = Trainer(config(dataset, epochs=2, batch_size=4), runs_dir=tmp_path).fit()
    run = Path(first.run_dir)
    last = checkpoint.load(run / "last.pt")
    last["best"] = dict(last["best"], epoch=2)  # epoch 2 was the best, and the kill came before best.pt was saved
    checkpoint.save(run / "last.pt", last)
    stale = checkpoint.load(run / "best.pt")
    stale["epoch"] = 1
    stale["model"] = {k: torch.zeros_like(v) for k, v in stale["model"].items()}
    checkpoint.save(run / "best.pt", stale)
    rec, token = Recorder(), StopToken()

    class StopAtStart(Callback):  # stopped before it trains: best.pt is as the resume left it
        def on_fit_start(self, info):
            token.stop()

    resumed = Trainer(
        config(dataset, epochs=3, batch_size=4), callbacks=[rec, StopAtStart()], stop=token, resume=run
    ).fit()
    assert resumed.reason == "stopped"
    mended = checkpoint.load(run / "best.pt")
    assert mended["epoch"] == 2 and all(torch.equal(mended["model"][k], last["model"][k]) for k in last["model"])
    assert [w for w in rec.warnings if w.startswith("best.pt did not hold epoch 2, the best")]


def test_a_resume_replaces_a_damaged_best_pt_with_its_own_best(dataset, tmp_path):
    """A best.pt cut short stayed so through a resume that trained to "completed": the resumed epochs had to beat
    the lost epoch's score, and evaluate, predict and export kept failing on the file."""
    first = Trainer(config(dataset, epochs=2, batch_size=4), runs_dir=tmp_path).fit()
    run = Path(first.run_dir)
    last = checkpoint.load(run / "last.pt")
    last["best"] = dict(last["best"], epoch=1, score=[1e9, 1e9])  # an epoch no later one beats
    checkpoint.save(run / "last.pt", last)
    data = (run / "best.pt").read_bytes()
    (run / "best.pt").write_bytes(data[:1000])
    rec, at_start = Recorder(), []

    class StatusAtStart(Callback):
        def on_fit_start(self, info):
            at_start.append(_status(run))

    resumed = Trainer(config(dataset, epochs=3, batch_size=4), callbacks=[rec, StatusAtStart()], resume=run).fit()
    assert resumed.reason == "completed", resumed.message
    assert "best_epoch" not in at_start[0]  # (its best, lost, is not named while the resume has not saved)
    assert checkpoint.load(run / "best.pt")["epoch"] == 3 and resumed.best_epoch == 3
    assert [w for w in rec.warnings if w.startswith("best.pt (epoch 1, the best so far) is damaged")]
    assert resumed.evaluation is not None  # (its final evaluation ran on the new best.pt)


def test_a_last_pt_that_is_not_this_runs_to_go_on_from_is_refused_before_anything(dataset, tmp_path):
    """A best.pt copied over last.pt turned a completed run into a failed one ("KeyError: 'optimizer'"); another
    run's last.pt took the run over (its architecture, history and best.pt replaced, without a word); a forged
    epoch trained "epochs -2..3"; a damaged stored config was reported as "--arch: 'auto'". Each is refused,
    naming last.pt, with the run folder as it was."""
    run = Path(Trainer(config(dataset, epochs=1, batch_size=4), runs_dir=tmp_path / "a").fit().run_dir)
    other = Trainer(config(dataset, epochs=1, batch_size=4, arch="resnext11_4x8d"), runs_dir=tmp_path / "b").fit()
    twin = Trainer(config(dataset, epochs=1, batch_size=4, lr=0.5), runs_dir=tmp_path / "c").fit()  # same model
    good = checkpoint.load(run / "last.pt")
    before = {n: (run / n).read_bytes() for n in ("config.json", "status.json", "history.csv", "best.pt")}

    def refused(ck_or_path, why):
        if isinstance(ck_or_path, Path):
            shutil.copy(ck_or_path, run / "last.pt")
        else:
            checkpoint.save(run / "last.pt", ck_or_path)
        with pytest.raises(checkpoint.CheckpointError) as e:
            Trainer(config(dataset, epochs=3, batch_size=4), resume=run)
        assert str(e.value).startswith(f"{run / 'last.pt'}: cannot resume from it: ") and why in str(e.value)
        assert {n: (run / n).read_bytes() for n in before} == before

    refused(run / "best.pt", "no optimizer state (is it a best.pt")
    refused(
        Path(other.run_dir) / "last.pt",
        "its model.arch is 'resnext11_4x8d' where this run's config.json has 'resnext11_2x4d': the checkpoint of "
        "another run",
    )
    refused(Path(twin.run_dir) / "last.pt", "its train.lr is 0.5 where this run's config.json has 0.002")
    refused(dict(good, class_names=["x", "y", "z"]), "its classes are not this run's (config.json)")
    refused(dict(good, epoch=-3), "its epoch -3 is not a count of epochs")
    refused(dict(good, rng={"torch": 5}), "random-number state is damaged")
    refused(
        dict(good, config={"junk": 1}), "its stored settings name no architecture, its weights are 'resnext11_2x4d'"
    )
    checkpoint.save(run / "last.pt", good)  # and the run's own goes on
    assert Trainer(config(dataset, epochs=2, batch_size=4), resume=run).fit().reason == "completed"


def test_a_resume_of_a_run_folder_it_cannot_write_in_is_refused_before_anything(dataset, tmp_path, monkeypatch):
    """A read-only run folder failed only after the setup, as a "failed" run on config.json (exit 1).
    (Simulated: the tests may run as root, whom permissions do not stop.)"""
    import tempfile

    first = _fit_stopped_at(config(dataset, epochs=2, batch_size=4), tmp_path, (1, 1))
    run = Path(first.run_dir)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    real = tempfile.TemporaryFile

    def no_write(*args, dir=None, **kwargs):
        if dir is not None and Path(dir) == run:
            raise PermissionError(13, "Permission denied")
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "TemporaryFile", no_write)
    with pytest.raises(ConfigError, match="cannot write in this run folder \\(Permission denied\\)"):
        Trainer(None, resume=run)
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


def test_two_resumes_of_one_run_at_once_one_is_refused(dataset, tmp_path):
    """Both see the stopped run's process gone; the run folder's lock lets only one of them write it."""
    first = _fit_stopped_at(config(dataset, epochs=2, batch_size=4), tmp_path, (1, 1))
    a = Trainer(None, resume=first.run_dir)
    before = (Path(first.run_dir) / "status.json").read_text()
    with pytest.raises(ConfigError, match="training right now"):
        Trainer(None, resume=first.run_dir)
    assert (Path(first.run_dir) / "status.json").read_text() == before
    assert a.fit().reason == "completed"
    more = Trainer(config(dataset, epochs=3, batch_size=4), resume=first.run_dir).fit()  # the lock was let go
    assert more.reason == "completed" and [r["epoch"] for r in more.history] == [1, 2, 3]
    unused = Trainer(config(dataset, epochs=4, batch_size=4), resume=first.run_dir)  # holds it from construction
    with pytest.raises(ConfigError, match="training right now"):
        Trainer(config(dataset, epochs=4, batch_size=4), resume=first.run_dir)
    unused.close()  # … until fit() ends, or close()
    assert Trainer(config(dataset, epochs=4, batch_size=4), resume=first.run_dir).fit().reason == "completed"


def test_a_resume_overtaken_while_it_started_is_refused(dataset, tmp_path, monkeypatch):
    """It read last.pt, then scanned the data; another resume trained and ended meanwhile, and this one went on
    from the older last.pt and wrote over the other's epochs."""
    first = _fit_stopped_at(config(dataset, epochs=2, batch_size=4), tmp_path, (1, 1))
    real, overtaken = engine._lock_run, []

    def other_process_first(run_dir):
        if not overtaken:
            overtaken.append(None)  # (the other resume locks through here too)
            overtaken[0] = Trainer(config(dataset, epochs=3, batch_size=4), resume=run_dir).fit()
        return real(run_dir)

    monkeypatch.setattr(engine, "_lock_run", other_process_first)
    with pytest.raises(ConfigError, match="another process trained this run while this resume was starting"):
        Trainer(config(dataset, epochs=2, batch_size=4), resume=first.run_dir)
    assert overtaken[0].reason == "completed"
    assert [r["epoch"] for r in runs.read_history(first.run_dir)] == [1, 2, 3]  # the other's epochs stand
    assert checkpoint.load(Path(first.run_dir) / "last.pt")["epoch"] == 3
    assert runs.RunLock(first.run_dir).acquire()  # the refused one let go of the lock


def test_a_run_in_training_cannot_be_resumed_from_the_same_process(dataset, tmp_path):
    """The app trains in a thread of its own process: a resume of that run from the run list is refused."""

    class ResumeMidway(Callback):
        error = ""

        def on_checkpoint(self, path, kind):
            if kind == "last":
                try:
                    Trainer(None, resume=Path(path).parent)
                except ConfigError as e:
                    self.error = str(e)

    probe = ResumeMidway()
    result = Trainer(config(dataset, epochs=1, batch_size=4), callbacks=[probe], runs_dir=tmp_path).fit()
    assert result.reason == "completed" and "training right now" in probe.error


def test_a_validation_loss_that_is_not_finite_fails_and_keeps_no_broken_weights(dataset, tmp_path, monkeypatch):
    """The last steps of an epoch can break the weights after its training loss was read: the validation then
    says so, and neither best.pt nor last.pt may keep them (predict printed 'nan%' with such a best.pt)."""
    real = Trainer._validate

    def broken_in_epoch_2(self):
        loss, acc = real(self)
        return (float("nan"), acc) if self.history else (loss, acc)

    monkeypatch.setattr(Trainer, "_validate", broken_in_epoch_2)
    result = Trainer(config(dataset, epochs=3, save_every_s=0), runs_dir=tmp_path).fit()
    assert result.reason == "failed" and "loss became NaN in the validation after epoch 2" in result.message
    run = Path(result.run_dir)
    assert checkpoint.load(run / "last.pt")["epoch"] == 1 and checkpoint.load(run / "best.pt")["epoch"] == 1
    assert [r["epoch"] for r in runs.read_history(run)] == [1]


def test_a_stop_during_the_final_evaluation_says_the_run_has_no_evaluation(dataset, tmp_path):
    token = StopToken()

    class StopAfterTheLastEpoch(Recorder):
        def on_epoch_end(self, m):
            super().on_epoch_end(m)
            token.stop()  # arrives as the final evaluation starts

    rec = StopAfterTheLastEpoch()
    result = Trainer(config(dataset, epochs=1), callbacks=[rec], stop=token, runs_dir=tmp_path).fit()
    assert not (Path(result.run_dir) / "evaluation.json").exists() and result.evaluation is None
    assert any("final evaluation on the val split was stopped" in w for w in rec.warnings), rec.warnings


def test_resuming_over_a_changed_data_folder_says_the_split_is_new(dataset, tmp_path):
    import shutil

    root = Path(shutil.copytree(dataset, tmp_path / "colours"))
    first = _fit_stopped_at(config(root, epochs=2, batch_size=4), tmp_path / "runs", (2, 1))
    rec = Recorder()
    Trainer(None, callbacks=[rec], resume=first.run_dir)  # unchanged: nothing to say
    assert not [w for w in rec.warnings if "data folder changed" in w]
    c0 = sorted((root / "c0").iterdir())
    for i, p in enumerate(c0[:3]):
        shutil.copy(p, root / "c0" / f"again_{i}{p.suffix}")  # photos added while the run was stopped
    rec = Recorder()
    Trainer(None, callbacks=[rec], resume=first.run_dir)
    said = [w for w in rec.warnings if "data folder changed" in w]
    assert len(said) == 1 and f"c0 {len(c0)} → {len(c0) + 3}" in said[0] and "different images" in said[0]


def test_settings_that_quietly_change_the_run_are_named(tmp_path):
    tiny = make_colour_set(tmp_path / "tiny", per_class=1)  # one image per class: none can go to validation
    rec = Recorder()
    cfg = config(tiny, epochs=1, warmup_epochs=1.0)
    Trainer(cfg, callbacks=[rec], runs_dir=tmp_path / "runs")
    assert any(w.startswith("no validation images: the classes are too small for a 20% share") for w in rec.warnings)
    assert any("warm-up (1 epochs) lasts the whole run of 1" in w for w in rec.warnings), rec.warnings
    rec = Recorder()
    Trainer(config(tiny, epochs=3, warmup_epochs=0.5, scheduler="step"), callbacks=[rec], runs_dir=tmp_path / "r")
    assert any("belongs to the cosine schedule; with 'step' the run starts at the full" in w for w in rec.warnings)


def test_history_records_the_learning_rate_each_epoch_trained_with(dataset, tmp_path):
    one = Trainer(config(dataset, epochs=1), runs_dir=tmp_path).fit()  # cosine, no warm-up
    assert one.history[0]["lr"] == pytest.approx(2e-3)  # was 0: the rate after the schedule had ended
    steps = Trainer(config(dataset, epochs=2, scheduler="step", step_size=1, gamma=0.1), runs_dir=tmp_path).fit()
    assert [r["lr"] for r in steps.history] == pytest.approx([2e-3, 2e-4])  # was each epoch's successor's


def test_stop_mid_epoch_saves_last(dataset, tmp_path, monkeypatch):
    monkeypatch.setattr(engine, "PROGRESS_INTERVAL_S", 0.0)  # report every batch, so "step 2" is seen
    token = StopToken()

    class StopAtStep2(Recorder):
        def on_batch_end(self, p):
            super().on_batch_end(p)
            if p.step >= 2:
                token.stop()

    rec = StopAtStep2()
    cfg = config(dataset, epochs=3, batch_size=4)
    result = Trainer(cfg, callbacks=[rec], stop=token, runs_dir=tmp_path).fit()
    assert result.reason == "stopped" and result.history == []
    assert [(p.epoch, p.step) for p in rec.of("batch")] == [(1, 1), (1, 2)]  # finished batch 2, then stopped
    assert rec.of("batch")[-1].steps > 2 and rec.of("epoch_end") == []
    run = Path(result.run_dir)
    assert _status(run)["status"] == "stopped" and not (run / "evaluation.json").exists()
    last = checkpoint.load(run / "last.pt")
    assert last["epoch"] == 0 and last["partial_epoch"] is True
    assert ("checkpoint", "last") in rec.events


@pytest.mark.parametrize("how", ["after a batch", "while paused before the next"])
def test_a_run_stopped_inside_an_epoch_resumes_from_the_next_batch_exactly(dataset, tmp_path, monkeypatch, how):
    """Stop at epoch 2 after batch 2, resume: no batch is trained twice, the schedule ends where planned, and
    weights and history equal an uninterrupted run's (augmentation and MixUp/CutMix draws go on where they were)."""
    import threading

    monkeypatch.setattr(engine, "PROGRESS_INTERVAL_S", 0.0)
    cfg = config(dataset, epochs=3, batch_size=4, mixup=0.2, cutmix=0.2)
    cfg.data.augment = "standard"
    straight = Trainer(cfg, runs_dir=tmp_path / "a").fit()
    assert straight.reason == "completed", straight.message
    token = StopToken()

    class StopInEpoch2(Recorder):
        def on_batch_end(self, p):
            super().on_batch_end(p)
            if (p.epoch, p.step) == (2, 2):
                if how == "after a batch":
                    token.stop()
                else:  # the stop arrives while the trainer waits, paused, with batch 3 already fetched
                    token.pause()
                    threading.Timer(0.05, token.stop).start()

    first = Trainer(cfg, callbacks=[StopInEpoch2()], stop=token, runs_dir=tmp_path / "b").fit()
    assert first.reason == "stopped" and len(first.history) == 1
    assert not (Path(first.run_dir) / runs.PAUSED_MARKER).exists()  # (a stop while paused ends its mark too)
    last = checkpoint.load(Path(first.run_dir) / "last.pt")
    assert last["epoch"] == 1 and last["partial"]["epoch"] == 2 and last["partial"]["steps_done"] == 2
    assert last["partial"]["ranks"][0]["batches_done"] == 2 and last["partial"]["ranks"][0]["seen"] == 8

    rec = Recorder()
    resumed = Trainer(None, callbacks=[rec], resume=first.run_dir).fit()
    assert resumed.reason == "completed", resumed.message
    steps = rec.of("fit_start")[0].steps_per_epoch
    assert rec.of("fit_start")[0].resume_step == 2  # what the app shows: going on after batch 2 of epoch 2
    assert [p.step for p in rec.of("batch") if p.epoch == 2] == list(range(3, steps + 1))  # from batch 3 on
    assert _strip_seconds(resumed.history) == _strip_seconds(straight.history)
    a = checkpoint.load(Path(straight.run_dir) / "last.pt")
    b = checkpoint.load(Path(resumed.run_dir) / "last.pt")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert b["scheduler"]["last_epoch"] == a["scheduler"]["last_epoch"] == 3 * steps  # every planned step, once
    assert b["partial"] is None and b["partial_epoch"] is False


def test_batches_csv_keeps_the_per_batch_losses_across_a_stop_and_a_resume(dataset, tmp_path, monkeypatch):
    """batches.csv (the app's per-batch line of a resumed run): a stopped and resumed run ends with the same rows as
    an uninterrupted one; rows written after the checkpoint (a crash) and a line cut short are dropped on resume."""
    monkeypatch.setattr(engine, "PROGRESS_INTERVAL_S", 0.0)
    monkeypatch.setattr(engine, "BATCH_LOG_INTERVAL_S", 0.0)
    cfg = config(dataset, epochs=2, batch_size=4)
    rec = Recorder()
    straight = Trainer(cfg, callbacks=[rec], runs_dir=tmp_path / "a").fit()
    assert straight.reason == "completed", straight.message
    rows = runs.read_batches(straight.run_dir)
    # the events carry the same values for the app's loss line (here an event and a row at every step)
    lines = [(b.epoch, b.step, b.steps, b.recent_loss) for b in rec.of("batch")]
    assert [r[:3] for r in rows] == [r[:3] for r in lines]
    assert [r[3] for r in rows] == pytest.approx([r[3] for r in lines], rel=1e-5)
    steps = rows[-1][2]
    assert [(e, s) for e, s, _, _ in rows] == [(e, s) for e in (1, 2) for s in range(1, steps + 1)]
    # each row the loss since the row before (here: of its step), not the running mean: weighted by its step's
    # images, an epoch's rows average to the epoch's training loss
    n = json.loads((Path(straight.run_dir) / "config.json").read_text())["dataset"]["train_size"]
    assert n % 4 != 1  # (a last batch of one image does not train, and is in no mean)
    for epoch, row in enumerate(straight.history, 1):
        mine = [(min(4, n - 4 * (s - 1)), loss) for e, s, _, loss in rows if e == epoch]
        assert sum(k * loss for k, loss in mine) / n == pytest.approx(row["train_loss"], rel=1e-5)
        assert len({round(loss, 6) for _, loss in mine}) > 1

    first = _fit_stopped_at(cfg, tmp_path / "b", (2, 2))
    assert runs.read_batches(first.run_dir) == rows[: steps + 2]  # written with last.pt at the stop
    runs.append_batches(first.run_dir, [(2, 3, steps, 99.0), (2, 4, steps, 99.0)])  # trained after it, then lost
    with open(Path(first.run_dir) / "batches.csv", "a", encoding="utf-8") as f:
        f.write("2,5,")  # a write cut short
    assert len(runs.read_batches(first.run_dir)) == steps + 4  # the cut line is skipped when read
    rec = Recorder()
    resumed = Trainer(None, callbacks=[rec], resume=first.run_dir).fit()
    assert resumed.reason == "completed", resumed.message
    assert runs.read_batches(resumed.run_dir) == rows
    # the loss line goes on from the stop as it would have (its first point was the epoch's running mean)
    again = [(b.epoch, b.step, b.steps, b.recent_loss) for b in rec.of("batch")]
    assert again[0][:2] == (2, 3) and [r[3] for r in again] == pytest.approx([r[3] for r in lines[steps + 2 :]])


def test_batches_csv_rows_cover_every_step_across_a_stop_between_rows(dataset, tmp_path, monkeypatch):
    """Rows are taken at most every 0.25 s: the steps between the last row and a stop were in none (the resumed
    run's rows go on from the stop), so the rows no longer averaged to the epoch's loss."""
    monkeypatch.setattr(engine, "PROGRESS_INTERVAL_S", 0.0)
    monkeypatch.setattr(engine, "BATCH_LOG_INTERVAL_S", 1e9)  # a row at an epoch's first event and its end only
    cfg = config(dataset, epochs=1, batch_size=4)
    first = _fit_stopped_at(cfg, tmp_path / "b", (1, 3))
    assert [r[:2] for r in runs.read_batches(first.run_dir)] == [(1, 1), (1, 3)]  # the stop wrote its row
    resumed = Trainer(None, resume=first.run_dir).fit()
    assert resumed.reason == "completed", resumed.message
    rows = runs.read_batches(resumed.run_dir)
    n = json.loads((Path(resumed.run_dir) / "config.json").read_text())["dataset"]["train_size"]
    steps = rows[-1][2]
    assert [r[:2] for r in rows] == [(1, 1), (1, 3), (1, 4), (1, steps)]
    ends = [s for _, s, _, _ in rows]
    spans = [min(4 * s, n) - min(4 * prev, n) for prev, s in zip([0, *ends], ends, strict=False)]
    assert sum(k * r[3] for k, r in zip(spans, rows, strict=True)) / n == pytest.approx(
        resumed.history[0]["train_loss"], rel=1e-5
    )

    # a stop while the epoch's last step trains: its row is written at the stop, and not again (as the epoch's
    # running mean) when the resumed run reports that step
    token, calls = StopToken(), []
    step = Trainer._train_step

    def last_step_stops(self, *args):
        calls.append(1)
        if len(calls) == steps:
            token.stop()
        return step(self, *args)

    monkeypatch.setattr(Trainer, "_train_step", last_step_stops)
    first = Trainer(cfg, stop=token, runs_dir=tmp_path / "c").fit()
    assert first.reason == "stopped", first.message
    monkeypatch.setattr(Trainer, "_train_step", step)
    resumed = Trainer(None, resume=first.run_dir).fit()
    assert resumed.reason == "completed", resumed.message
    rows = runs.read_batches(resumed.run_dir)
    assert [r[:2] for r in rows] == [(1, 1), (1, steps)]


def test_a_stop_right_after_a_non_finite_loss_fails_instead_of_saving_broken_weights(dataset, tmp_path, monkeypatch):
    """The loss is read lagged (here: never before the stop), so the stop itself checks it: last.pt keeps epoch 1."""
    monkeypatch.setattr(engine, "PROGRESS_INTERVAL_S", 1e9)  # no progress read inside the epoch after step 1
    token = StopToken()
    step = Trainer._train_step
    calls = []

    def poisoned(self, *args):
        loss, correct = step(self, *args)
        calls.append(1)
        if len(calls) == 7:  # epoch 2, step 2 (5 steps per epoch)
            token.stop()
            return torch.full_like(loss, math.nan), correct
        return loss, correct

    monkeypatch.setattr(Trainer, "_train_step", poisoned)
    result = Trainer(config(dataset, epochs=3, batch_size=4, save_every_s=0), stop=token, runs_dir=tmp_path).fit()
    assert result.reason == "failed" and "NaN at epoch 2 step 2" in result.message, result.message
    assert checkpoint.load(Path(result.run_dir) / "last.pt")["epoch"] == 1


def test_a_stop_between_progress_events_reports_the_step_it_stopped_after(dataset, tmp_path, monkeypatch):
    """Progress is throttled: a Stop after step 4 left the last event (and the bars) at step 1 while last.pt held
    4 steps. One more event says the step it stopped after, and the message names it."""
    monkeypatch.setattr(engine, "PROGRESS_INTERVAL_S", 1e9)  # after step 1, no event inside the epoch
    token, calls, step = StopToken(), [], Trainer._train_step

    def counted(self, *args):
        calls.append(1)
        if len(calls) == 4:
            token.stop()
        return step(self, *args)

    monkeypatch.setattr(Trainer, "_train_step", counted)
    rec = Recorder()
    result = Trainer(config(dataset, epochs=2, batch_size=4), callbacks=[rec], stop=token, runs_dir=tmp_path).fit()
    assert [(p.epoch, p.step, p.steps) for p in rec.of("batch")] == [(1, 1, 5), (1, 4, 5)]
    assert result.message.startswith("stopped during epoch 1, after batch 4 of 5; "), result.message
    monkeypatch.setattr(Trainer, "_train_step", step)
    again = Recorder()
    resumed = Trainer(None, callbacks=[again], resume=result.run_dir).fit()
    assert resumed.reason == "completed" and again.of("fit_start")[0].resume_step == 4
    # the other places a Stop can leave an epoch, in words ("after batch 0 of 9" and "5 of 5" had been said)
    assert engine._stopped_where({"steps_done": 0}, 9) == ", before its first batch"
    assert engine._stopped_where({"steps_done": 5}, 5) == ", after its last batch, before validating"
    assert engine._stopped_where(None, 5) == ""


@pytest.mark.skipif(not hasattr(__import__("signal"), "SIGHUP"), reason="POSIX signals")
@pytest.mark.timeout(300)
@pytest.mark.parametrize("stderr", ["pipe", "terminal", "nohup"])
def test_a_closed_terminal_stops_after_the_batch_and_keeps_last_pt(dataset, tmp_path, stderr):
    """SIGHUP (the terminal `train` ran in was closed) killed the run at once and lost the epochs held back; it
    stops as Ctrl-C does. What it prints afterwards to that terminal goes nowhere instead of failing the run; a
    pipe or a file keeps it. Under nohup (SIGHUP ignored) the run goes on to its end. In a process of its own."""
    import pty
    import signal
    import subprocess
    import sys
    import textwrap

    answer = tmp_path / "answer.json"
    code = textwrap.dedent(
        f"""
        import json, os, signal, sys
        from pathlib import Path
        from core.engine import Trainer
        from tests.core.test_engine import Recorder, config

        class Hangup(Recorder):
            def on_batch_end(self, p):
                super().on_batch_end(p)
                if p.epoch == 2 and not getattr(self, "sent", False):
                    self.sent = True
                    os.kill(os.getpid(), signal.SIGHUP)

        cfg = config(Path({str(dataset)!r}), epochs=3, save_every_s=60)  # epoch 1 is held back, not yet saved
        r = Trainer(cfg, callbacks=[Hangup()], runs_dir={str(tmp_path / "runs")!r}).fit()
        print("printed after the signal", file=sys.stderr, flush=True)
        Path({str(answer)!r}).write_text(json.dumps({{"reason": r.reason, "message": r.message, "run": r.run_dir}}))
        """
    )
    root = Path(__file__).resolve().parents[2]
    master, tty = pty.openpty() if stderr == "terminal" else (None, None)

    def ignore_hangups() -> None:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as nohup starts a process

    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=tty if tty is not None else subprocess.PIPE,
        preexec_fn=ignore_hangups if stderr == "nohup" else None,
        timeout=280,
    )
    if tty is not None:
        os.close(tty)
        said = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # (the other end closed: all read)
                break
            if not chunk:
                break
            said += chunk
        os.close(master)
    else:
        said = proc.stderr
    assert proc.returncode == 0, said.decode(errors="replace")
    got = json.loads(answer.read_text())
    if stderr == "nohup":
        assert got["reason"] == "completed", got
        return
    assert (b"printed after the signal" in said) == (stderr == "pipe")  # a closed terminal: the null device
    assert got["reason"] == "stopped" and "during epoch 2" in got["message"], got
    last = checkpoint.load(Path(got["run"]) / "last.pt")
    assert last["epoch"] == 1 and last["partial_epoch"] is True  # epoch 1, held back, and epoch 2 so far


def test_ctrl_c_stops_after_the_batch_and_a_second_one_interrupts(dataset, tmp_path, capsys):
    import os
    import signal

    before = signal.getsignal(signal.SIGINT)

    class CtrlC(Recorder):
        def __init__(self, times: int, signum: int = signal.SIGINT) -> None:
            super().__init__()
            self.times, self.signum = times, signum

        def on_batch_end(self, p):
            super().on_batch_end(p)
            if p.epoch == 2:
                while self.times:
                    self.times -= 1
                    os.kill(os.getpid(), self.signum)  # the handler runs here, on the main thread

    result = Trainer(config(dataset, epochs=3), callbacks=[CtrlC(1)], runs_dir=tmp_path / "a").fit()
    assert result.reason == "stopped" and "during epoch 2" in result.message
    err = capsys.readouterr().err
    assert "stopping: last.pt is saved after the current batch (Ctrl-C again to interrupt at once)" in err
    # a `kill` stops it the same way, and is not told of a Ctrl-C that means nothing to it (a second one does nothing)
    killed = Trainer(config(dataset, epochs=3), callbacks=[CtrlC(2, signal.SIGTERM)], runs_dir=tmp_path / "k").fit()
    err = capsys.readouterr().err
    assert killed.reason == "stopped" and "stopping: last.pt is saved after the current batch\n" in err
    assert "Ctrl-C" not in err
    last = checkpoint.load(Path(result.run_dir) / "last.pt")
    assert last["epoch"] == 1 and last["partial_epoch"] is True
    assert _status(result.run_dir)["status"] == "stopped"
    assert signal.getsignal(signal.SIGINT) is before  # restored
    with pytest.raises(KeyboardInterrupt):
        Trainer(config(dataset, epochs=3, save_every_s=0), callbacks=[CtrlC(2)], runs_dir=tmp_path / "b").fit()
    assert signal.getsignal(signal.SIGINT) is before
    (run,) = (tmp_path / "b").iterdir()  # it said "running" (on another host, for ever)
    status = _status(run)
    assert status["status"] == "interrupted" and status["epochs_done"] == 1 and "second Ctrl-C" in status["message"]
    assert checkpoint.load(run / "last.pt")["epoch"] == 1 and "last.pt holds 1 finished epoch:" in status["message"]
    # save_every_s held epoch 1 back: a second Ctrl-C is let pass once (two quick ones threw the epoch away) …
    capsys.readouterr()
    held = Trainer(config(dataset, epochs=3, save_every_s=3600), callbacks=[CtrlC(2)], runs_dir=tmp_path / "d").fit()
    assert held.reason == "stopped" and "the last finished epoch is not saved yet" in capsys.readouterr().err
    assert checkpoint.load(Path(held.run_dir) / "last.pt")["epoch"] == 1
    with pytest.raises(KeyboardInterrupt):  # … and a third interrupts at once: no last.pt, and it says so
        Trainer(config(dataset, epochs=3, save_every_s=3600), callbacks=[CtrlC(3)], runs_dir=tmp_path / "c").fit()
    (run,) = (tmp_path / "c").iterdir()
    status = _status(run)
    assert not (run / "last.pt").exists() and status["epochs_done"] == 0
    assert "nothing was saved to resume from" in status["message"]


def test_ctrl_c_before_the_first_epoch_says_no_run_is_kept(dataset, tmp_path, capsys):
    import os
    import signal

    class CtrlCAtStart(Callback):
        def on_fit_start(self, info):
            os.kill(os.getpid(), signal.SIGINT)

    result = Trainer(config(dataset), callbacks=[CtrlCAtStart()], runs_dir=tmp_path / "runs").fit()
    err = capsys.readouterr().err
    assert "stopping: training has not begun yet; no run is kept" in err and "last.pt" not in err
    assert result.reason == "stopped" and result.run_dir is None and not any((tmp_path / "runs").iterdir())


def test_a_stop_inside_an_epoch_needs_no_float64_on_the_device(dataset, tmp_path, monkeypatch):
    """Apple's MPS has no float64: the sums of a stopped epoch were read through .double() and the run failed."""

    def no_float64(self, *a, **k):
        raise TypeError("Cannot convert a MPS Tensor to float64 dtype as the MPS framework doesn't support float64")

    monkeypatch.setattr(torch.Tensor, "double", no_float64)
    result = _fit_stopped_at(config(dataset, epochs=2, batch_size=4), tmp_path, (1, 1))
    assert checkpoint.load(Path(result.run_dir) / "last.pt")["partial_epoch"] is True


def test_a_compiler_that_fails_at_the_first_step_falls_back_to_plain_training(dataset, tmp_path, monkeypatch):
    """torch.compile compiles at the first call: without a C++ compiler (Windows) --compile failed the run there."""
    from torch._dynamo.exc import TorchDynamoException

    def no_compiler(module, **kwargs):
        def compiled(*args, **kw):
            raise TorchDynamoException("InductorError: Compiler: cl is not found")

        return compiled

    plain = Trainer(config(dataset, epochs=1), runs_dir=tmp_path / "plain").fit()
    monkeypatch.setattr(torch, "compile", no_compiler)
    rec = Recorder()
    cfg = config(dataset, epochs=1)
    cfg.train.compile = True
    result = Trainer(cfg, callbacks=[rec], runs_dir=tmp_path / "compiled").fit()
    assert result.reason == "completed", result.message
    assert [w for w in rec.warnings if w.startswith("torch.compile failed (") and "cl is not found" in w]
    assert _strip_seconds(result.history) == _strip_seconds(plain.history)  # nothing ran before the failure

    class LazyBackward(torch.autograd.Function):  # the forward compiles; the backward's compiler fails
        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, grad):
            raise TorchDynamoException("BackendCompilerFailed: backward: cl is not found")

    def backward_fails(module, **kwargs):
        return lambda *args, **kw: LazyBackward.apply(module(*args, **kw))

    monkeypatch.setattr(torch, "compile", backward_fails)
    rec = Recorder()
    result = Trainer(cfg, callbacks=[rec], runs_dir=tmp_path / "backward").fit()
    assert result.reason == "completed", result.message
    assert [w for w in rec.warnings if w.startswith("torch.compile failed (") and "backward" in w]
    assert _strip_seconds(result.history) == _strip_seconds(plain.history)  # the failed step was done again

    def out_of_memory(module, **kwargs):
        def compiled(*args, **kw):
            raise RuntimeError("CUDA out of memory")

        return compiled

    monkeypatch.setattr(torch, "compile", out_of_memory)  # the step's own errors are not a compiler's
    failed = Trainer(cfg, runs_dir=tmp_path / "oom").fit()
    assert failed.reason == "failed" and "out of GPU memory" in failed.message


def test_an_early_stopped_run_killed_making_its_end_resumes_to_that_end_alone(dataset, tmp_path, monkeypatch):
    """Killed (or Ctrl-C twice) in its final evaluation, a run that had stopped early trained on when resumed: its
    last.pt's early stop was taken for an extension's, with a new patience window (and best.pt could change). Given
    more epochs on purpose (`--epochs`, Train more epochs…), it trains on."""
    monkeypatch.setattr(Trainer, "_score", lambda self, row: (0.0,))  # (never better than epoch 1: it stops at 2)
    first = Trainer(config(dataset, epochs=4, early_stop_patience=1, save_every_s=0), runs_dir=tmp_path).fit()
    assert first.reason == "early_stop"
    run = Path(first.run_dir)
    (run / "evaluation.json").unlink()  # as the kill left it: no evaluation, status.json not "completed"
    status = json.loads((run / "status.json").read_text())
    (run / "status.json").write_text(json.dumps({**status, "status": "interrupted"}))
    before = [(r["epoch"], r["val_acc"]) for r in runs.read_history(run)]
    assert len(before) == 2 and checkpoint.load(run / "last.pt")["epoch"] == 2
    again = Trainer(None, resume=run).fit()
    assert again.reason == "early_stop" and "no improvement in validation accuracy for 1 epoch" in again.message
    assert [(r["epoch"], r["val_acc"]) for r in runs.read_history(run)] == before
    assert checkpoint.load(run / "last.pt")["epoch"] == 2 and (run / "evaluation.json").is_file()
    assert json.loads((run / "status.json").read_text())["status"] == "completed"
    more = Trainer(config(dataset, epochs=4, early_stop_patience=1), resume=run, extend=True).fit()
    assert more.reason == "early_stop" and len(runs.read_history(run)) == 3  # a new window of one epoch
    # an extension killed before its first new epoch saved: config.json plans more than last.pt did, and a plain
    # resume goes on with it (it ended at once, the epochs asked for dropped)
    cfg = json.loads((run / "config.json").read_text())
    cfg["train"]["epochs"] = 6
    (run / "config.json").write_text(json.dumps(cfg))
    (run / "status.json").write_text(json.dumps({**status, "status": "interrupted", "epochs_done": 3}))
    resumed = Trainer(None, resume=run).fit()
    assert resumed.reason == "early_stop" and len(runs.read_history(run)) == 4


def test_epochs_trained_after_the_last_save_of_a_killed_run_are_said_and_trained_again(dataset, tmp_path):
    """Killed between two saves (save_every_s apart), a run listed 6 epochs done while last.pt held 2, and its
    resume went back to epoch 3 without a word."""
    first = Trainer(config(dataset, epochs=2, save_every_s=0), runs_dir=tmp_path).fit()
    run = Path(first.run_dir)
    saved, status = (run / "last.pt").read_bytes(), (run / "status.json").read_text()
    Trainer(config(dataset, epochs=4, save_every_s=0), resume=run, extend=True).fit()
    assert len(runs.read_history(run)) == 4
    (run / "last.pt").write_bytes(saved)  # as a kill leaves it: last.pt and status.json of epoch 2, history of 4
    (run / "status.json").write_text(json.dumps({**json.loads(status), "status": "interrupted"}))
    info = runs.RunStore(tmp_path).info(run)
    assert info.message.startswith("last.pt holds 2 of the 4 epochs trained: a resume goes on from there")
    rec = Recorder()
    Trainer(config(dataset, epochs=4, save_every_s=0), callbacks=[rec], resume=run).fit()
    said = [w for w in rec.warnings if w.startswith("history.csv had epochs 3-4 too")]
    assert len(said) == 1 and said[0].endswith("training goes on from last.pt, after epoch 2"), rec.warnings
    assert [r["epoch"] for r in runs.read_history(run)] == [1, 2, 3, 4]  # (trained again, each once)


def test_ctrl_c_in_the_final_evaluation_says_training_is_saved(dataset, tmp_path, capsys, monkeypatch):
    """It said "last.pt is saved after the current batch", though every epoch was done."""
    import os
    import signal

    real = engine.evaluate

    def ctrl_c_first(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "evaluate", ctrl_c_first)
    result = Trainer(config(dataset, epochs=1), runs_dir=tmp_path / "runs").fit()
    err = capsys.readouterr().err
    # (a validation of one batch already under way finishes, and is kept: the message must not say "skipped")
    assert "stopping: training is done and saved; the final evaluation of best.pt stops after the batch" in err
    assert "after the current batch" not in err
    assert result.reason == "completed" and not (Path(result.run_dir) / "evaluation.json").exists()


def test_a_run_stopped_before_it_began_leaves_no_folder(dataset, tmp_path):
    token = StopToken()
    token.stop()  # e.g. Stop pressed while the model was being built
    result = Trainer(config(dataset), stop=token, runs_dir=tmp_path / "runs").fit()
    assert result.reason == "stopped" and result.run_dir is None and "no run folder was kept" in result.message
    assert not any((tmp_path / "runs").iterdir())


def test_pause_and_stop_token():
    token = StopToken()
    assert not token.paused and token.wait_if_paused(0)
    token.pause()
    assert token.paused and not token.wait_if_paused(0.01)
    token.resume()
    assert token.wait_if_paused(0)
    token.pause()
    token.stop()  # stopping wakes a paused job
    assert token.stopped and token.wait_if_paused(0)


def test_a_pause_first_reports_the_steps_done_since_the_last_progress_event(dataset, tmp_path, monkeypatch):
    """Progress goes out every PROGRESS_INTERVAL_S: a pause right after a step not yet reported showed
    "Batch 8 / 15" for as long as it lasted, while 9 were trained (and Stop then said "after batch 9")."""
    import threading

    from core import engine

    monkeypatch.setattr(engine, "PROGRESS_INTERVAL_S", 1e9)  # (the first step's event, then none until the end)
    token = StopToken()
    seen_paused: list[int] = []
    tick = engine._EpochMeter.tick

    def tick_then_pause(meter, step):
        tick(meter, step)
        if meter.epoch == 1 and step == 3:
            token.pause()  # as the Pause button does, between two steps

    class WhilePaused(Recorder):
        def on_batch_end(self, p):
            super().on_batch_end(p)
            if token.paused:
                seen_paused.append(p.step)
                token.resume()

    monkeypatch.setattr(engine._EpochMeter, "tick", tick_then_pause)
    safety = threading.Timer(20, token.resume)  # (without the report the pause would last: the test fails, not hangs)
    safety.start()
    try:
        cfg = config(dataset, epochs=1, batch_size=2)  # (steps enough: the third is not the epoch's last)
        result = Trainer(cfg, callbacks=[WhilePaused()], stop=token, runs_dir=tmp_path).fit()
    finally:
        safety.cancel()
    assert result.reason == "completed" and seen_paused == [3]


def test_a_paused_run_is_listed_as_paused_by_other_programs_and_not_after(dataset, tmp_path, capsys, monkeypatch):
    """The app's Pause wrote nothing: status.json says "running" all through it, and `runs` (or another window)
    said "running". While paused the run folder holds runs.PAUSED_MARKER; a resume, a stop or a kill ends it."""
    from core.cli import main as cli_main
    from tests.helpers import look_while_paused

    token = StopToken()
    seen: list[tuple] = []

    def look() -> None:  # as `runs` in a terminal would, while the trainer waits
        info = runs.RunStore(tmp_path).list()[0]
        assert cli_main(["runs", "--runs-dir", str(tmp_path)]) == 0
        listed = capsys.readouterr().out
        seen.append((info.status, info.paused, (info.path / runs.PAUSED_MARKER).exists(), listed))

    another_program = look_while_paused(monkeypatch, token, look)

    class PauseAtStep2(Recorder):
        def on_batch_end(self, p):
            super().on_batch_end(p)
            if (p.epoch, p.step) == (1, 2) and not token.paused and not seen:
                token.pause()  # between two steps, as the Pause button does
                another_program()

    monkeypatch.setattr(engine, "PROGRESS_INTERVAL_S", 0.0)  # (an event at every step: step 2's is not skipped)
    cfg = config(dataset, epochs=1, batch_size=2)
    result = Trainer(cfg, callbacks=[PauseAtStep2()], stop=token, runs_dir=tmp_path).fit()
    assert result.reason == "completed", result.message
    assert len(seen) == 1
    status, paused, marked, listed = seen[0]
    assert (status, paused, marked) == ("running", True, True)
    assert " paused " in listed and " running " not in listed
    run = Path(result.run_dir)
    assert not (run / runs.PAUSED_MARKER).exists() and runs.RunStore(tmp_path).list()[0].paused is False

    # a run killed while paused: its mark says nothing (the run is interrupted), and a resume removes it
    runs.write_status(run, "running", pid=2**22 + 12345)  # (no such process: taken as interrupted)
    (run / runs.PAUSED_MARKER).touch()
    info = runs.RunStore(tmp_path).list()[0]
    assert (info.status, info.paused) == ("interrupted", False)
    trainer = Trainer(None, resume=run)
    try:
        assert not (run / runs.PAUSED_MARKER).exists()
    finally:
        trainer.close()


def test_nan_loss_fails_and_keeps_best(dataset, tmp_path):
    class Poison(Recorder):
        trainer = None

        def on_epoch_start(self, epoch):
            if epoch == 2:
                with torch.no_grad():
                    for p in self.trainer.model.parameters():
                        p.fill_(float("nan"))

    rec = Poison()
    trainer = Trainer(config(dataset, epochs=3, save_every_s=0), callbacks=[rec], runs_dir=tmp_path)
    rec.trainer = trainer
    result = trainer.fit()
    assert result.reason == "failed"
    assert "loss became NaN at epoch 2 step 1" in result.message and "lower learning rate" in result.message
    run = Path(result.run_dir)
    best = checkpoint.load(run / "best.pt")
    assert best["epoch"] == 1 and all(torch.isfinite(v).all() for v in best["model"].values() if v.is_floating_point())
    assert checkpoint.load(run / "last.pt")["epoch"] == 1
    assert _status(run)["status"] == "failed" and "NaN" in _status(run)["message"]
    assert len(result.history) == 1


class _LaggedReads:
    """Stands in for the GPU's queued copies: each read's event says "arrived" only when the test says so."""

    def __init__(self, monkeypatch):
        self.events = []
        monkeypatch.setattr(engine, "_copy_to_host_later", self.later)
        monkeypatch.setattr(engine, "PROGRESS_INTERVAL_S", 0.0)  # a read is due after every step

    def later(self, values):
        event = type("Event", (), {"done": False, "query": lambda self: self.done})()
        self.events.append(event)
        return values.clone(), event

    @staticmethod
    def meter(steps: int, epochs: int = 2, distributed: bool = False):
        class Owner:  # what the meter uses of its Trainer
            device, stop, config, world_size, is_main = torch.device("cpu"), StopToken(), RunConfig(), 1, False
            _fail_nonfinite = Trainer._fail_nonfinite
            _writer = engine._WriteBehind(False)  # (nothing in flight)
            reports: list = []

            def _emit(self, hook, p):
                assert hook == "on_batch_end"
                self.reports.append(p)

        owner = Owner()
        owner.config.train.epochs = epochs
        m = engine._EpochMeter(owner, 1, steps, distributed=distributed)
        m._lagged = True  # as on a GPU
        return m, owner.reports


def test_progress_reads_lag_behind_the_gpu_instead_of_waiting(monkeypatch):
    reads = _LaggedReads(monkeypatch)
    m, reports = reads.meter(steps=4)
    m.add(1, torch.tensor(2.0), torch.tensor(3), 4)
    m.tick(1)
    assert reports == [] and len(reads.events) == 1  # queued; not arrived, so nothing reported and nothing waited
    m.add(2, torch.tensor(1.0), torch.tensor(4), 4)
    m.tick(2)
    assert reports == [] and len(reads.events) == 1  # one read in flight at a time
    reads.events[0].done = True
    m.add(3, torch.tensor(3.0), torch.tensor(1), 2)
    m.tick(3)
    assert [(p.step, p.loss) for p in reports] == [(1, 2.0)]  # step 1's numbers, reported when they arrived
    assert reports[0].eta_s > 0 and reports[0].images_per_s > 0
    m.add(4, torch.tensor(0.5), torch.tensor(2), 2)
    m.tick(4)  # the last step is finish()'s
    loss, acc = m.finish()
    assert loss == pytest.approx((2 * 4 + 1 * 4 + 3 * 2 + 0.5 * 2) / 12) and acc == pytest.approx(10 / 12)
    assert [p.step for p in reports] == [1, 4] and reports[-1].loss == pytest.approx(loss)
    assert reports[-1].eta_s > 0  # one more epoch to go


def test_the_eta_leaves_out_the_first_steps_warm_up(monkeypatch):
    """Right after a resume the first step (model build, first allocations) took as long as ten others: the ETA
    read 4 minutes for a 20-second epoch. The speed still counts every step's time."""
    clock = [100.0]
    monkeypatch.setattr(engine.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(engine, "PROGRESS_INTERVAL_S", 0.0)
    m, reports = _LaggedReads.meter(steps=10, epochs=1)
    m._lagged = False  # (read at once, as on the CPU)
    for step in range(1, 10):
        clock[0] += 10.0 if step == 1 else 1.0  # a slow first step, then 1 s a step
        m.add(step, torch.tensor(1.0), torch.tensor(1), 4)
        m.tick(step)
    last = reports[-1]
    assert last.step == 9
    assert last.eta_s == pytest.approx(1.0)  # one step left at 1 s a step (not 18 s / 9 steps = 2 s)
    assert last.images_per_s == pytest.approx(36 / 18)  # 36 images in 18 s, warm-up included


def test_a_lagged_read_names_the_first_non_finite_step(monkeypatch):
    reads = _LaggedReads(monkeypatch)
    m, reports = reads.meter(steps=8)
    for step, value in enumerate([1.0, 1.0, float("nan"), 1.0], 1):
        m.add(step, torch.tensor(value), torch.tensor(0), 2)
        m.tick(step)
    assert len(reads.events) == 1 and reports == []
    reads.events[0].done = True  # the read queued after step 1: finite
    m.add(5, torch.tensor(1.0), torch.tensor(0), 2)
    m.tick(5)
    assert [p.step for p in reports] == [1]
    m.add(6, torch.tensor(1.0), torch.tensor(0), 2)
    m.tick(6)  # queues a read that holds step 3's NaN
    reads.events[1].done = True
    m.add(7, torch.tensor(1.0), torch.tensor(0), 2)
    with pytest.raises(engine._Failed, match="loss became NaN at epoch 1 step 3;"):
        m.tick(7)


@pytest.mark.parametrize("batch, at", [(3, (1, 4)), (2, (1, 7)), (2, (2, 5))])
def test_a_resumed_epoch_adds_up_its_losses_as_an_unbroken_one(dataset, tmp_path, monkeypatch, batch, at):
    """The epoch's mean loss after a stop and resume is the unbroken run's to the last bit: the stopped steps'
    rows are saved and put back, so the sum runs over the same numbers in the same order (a saved partial sum plus
    the rest's differed in float32's last bits, e.g. 1.7784122890896268 against 1.7784125010172527)."""
    monkeypatch.setattr(engine, "PROGRESS_INTERVAL_S", 0.0)
    cfg = config(dataset, epochs=2, batch_size=batch)
    straight = Trainer(cfg, runs_dir=tmp_path / "a").fit()
    token = StopToken()

    class StopAt(Recorder):
        def on_batch_end(self, p):
            super().on_batch_end(p)
            if (p.epoch, p.step) == at:
                token.stop()

    first = Trainer(cfg, callbacks=[StopAt()], stop=token, runs_dir=tmp_path / "b").fit()
    assert first.reason == "stopped"
    rows = checkpoint.load(Path(first.run_dir) / "last.pt")["partial"]["ranks"][0]["rows"]
    assert tuple(rows.shape) == (at[1], 2)
    resumed = Trainer(None, resume=first.run_dir).fit()
    assert _strip_seconds(resumed.history) == _strip_seconds(straight.history)


def test_the_meter_sums_its_steps_when_read(monkeypatch):
    """Steps only write their row; the sums, the first non-finite step and a resumed stop's sums come together
    when read, also before the first step (a stop there) and past the steps counted."""
    m, _ = _LaggedReads(monkeypatch).meter(steps=4)
    assert m.totals().tolist() == [0.0, 0.0, -1.0]
    m.resume_from(2, 5.0, 3.0, -1.0, 8)
    assert m.settle() == (5.0, 3.0, -1.0)
    m.add(3, torch.tensor(2.0), torch.tensor(3), 4)
    m.add(4, torch.tensor(1.0), torch.tensor(2.5), 2)  # (mixup counts fractions)
    assert m.totals().tolist() == [5.0 + 8.0 + 2.0, 3.0 + 3.0 + 2.5, -1.0] and m.seen == 14
    m.add(5, torch.tensor(float("inf")), torch.tensor(0), 2)
    m.add(6, torch.tensor(float("nan")), torch.tensor(0), 2)
    assert m.totals().tolist()[2] == 5.0  # the first of the two
    m2, _ = _LaggedReads(monkeypatch).meter(steps=4)
    m2.resume_from(2, float("inf"), 1.0, 2.0, 4)  # stopped after a bad step 2
    m2.add(3, torch.tensor(float("nan")), torch.tensor(0), 2)
    assert m2.totals().tolist()[2] == 2.0


def test_a_distributed_rank_notes_a_non_finite_loss_for_the_ranks_to_agree_on(monkeypatch):
    """Under torchrun one rank must not fail alone (the others would wait in their next collective): the meter
    notes (NaN?, first bad step) and the Trainer fails once every rank has agreed on it."""
    reads = _LaggedReads(monkeypatch)
    m, reports = reads.meter(steps=6, distributed=True)
    for step, value in enumerate([1.0, float("inf"), 1.0], 1):
        m.add(step, torch.tensor(value), torch.tensor(0), 2)
        m.tick(step)
    reads.events[0].done = True  # the read queued after step 1: finite, reported
    m.tick(3)
    assert m.bad is None and [p.step for p in reports] == [1]
    m.add(4, torch.tensor(float("nan")), torch.tensor(0), 2)
    m.tick(4)  # queues a read holding step 2's inf (and step 4's NaN)
    reads.events[1].done = True
    m.tick(5)  # no exception here
    assert m.bad == (True, 2) and [p.step for p in reports] == [1]  # inf + NaN sums to NaN; first bad step 2
    m.finish()
    assert m.bad == (True, 2)  # the first note stays


def test_out_of_memory_and_errors_are_reported(dataset, tmp_path):
    class OOM(Recorder):
        trainer = None

        def on_fit_start(self, info):
            def boom(x):
                raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

            self.trainer.model.forward = boom

    rec = OOM()
    trainer = Trainer(config(dataset, epochs=1), callbacks=[rec], runs_dir=tmp_path / "oom")
    rec.trainer = trainer
    result = trainer.fit()
    assert result.reason == "failed" and "batch size 8" in result.message and "--batch-size 4" in result.message

    class Boom(Callback):
        def on_epoch_start(self, epoch):
            raise RuntimeError("boom in a listener")

    result = Trainer(config(dataset, epochs=1), callbacks=[Boom()], runs_dir=tmp_path / "err").fit()
    assert result.reason == "failed" and "boom in a listener" in result.message
    run = Path(result.run_dir)
    assert "Traceback" in (run / "error.txt").read_text() and _status(run)["status"] == "failed"


def test_config_errors_raise_before_anything(dataset, tmp_path):
    with pytest.raises(ConfigError, match="arch"):
        Trainer(config(dataset, arch="resnext7_1x1d"), runs_dir=tmp_path / "runs")
    bad = config(dataset)
    bad.train.lr = -1
    with pytest.raises(ConfigError, match="lr"):
        Trainer(bad, runs_dir=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()
    with pytest.raises(checkpoint.CheckpointError):
        Trainer(None, resume=tmp_path)
    with pytest.raises(data.DataError):
        Trainer(config(tmp_path / "no-such-folder"), runs_dir=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


def test_a_group_of_copies_bigger_than_the_validation_share_stays_in_train(tmp_path):
    """Three images, one file in every class (kept together), a validation share of 50 %: the group went to
    validation whole and training was refused ("only 0 training image(s)"). A group larger than what the share
    asks for now stays in train, and the run says it has no validation images."""
    import shutil

    root = make_colour_set(tmp_path / "data", per_class=1)
    for c in ("c1", "c2"):
        shutil.copy(root / "c0" / "00.png", root / c / "00.png")
    cfg = config(root)
    cfg.data.val_split = 0.5
    rec = Recorder()
    t = Trainer(cfg, callbacks=[rec], runs_dir=tmp_path / "runs")
    assert len(t.split.train) == 3 and t.split.val == []
    assert any(w.startswith("no validation images: the classes are too small for a 50% share") for w in rec.warnings)


def test_a_train_folder_of_one_image_is_refused_with_what_to_change(tmp_path):
    """Fewer than two training images (possible with train/ val/ folders; a split made here keeps at least one
    image of every class in train): refused, saying what to change, before any run folder exists."""
    source = make_colour_set(tmp_path / "colours", per_class=2)
    root = tmp_path / "split"
    (root / "train" / "red").mkdir(parents=True)
    shutil.copy(source / "c0" / "00.png", root / "train" / "red" / "00.png")
    shutil.copytree(source / "c0", root / "val" / "red")
    shutil.copytree(source / "c1", root / "val" / "blue")
    with pytest.raises(data.DataError) as e:
        Trainer(config(root), runs_dir=tmp_path / "runs")
    assert str(e.value) == f"{root}: only 1 training image(s); training needs at least 2: add images to train/"
    assert not (tmp_path / "runs").exists()


def test_split_folders_with_one_class_in_train_are_refused_before_a_run_folder(tmp_path):
    """train/red and val/blue: it warned "no training images for class blue", then trained a one-output model."""
    source = make_colour_set(tmp_path / "colours")
    root = tmp_path / "split"
    shutil.copytree(source / "c0", root / "train" / "red")
    shutil.copytree(source / "c1", root / "val" / "blue")
    with pytest.raises(data.DataError) as e:
        Trainer(config(root), runs_dir=tmp_path / "runs")
    assert str(e.value) == (
        f"{root}: only class 'red' has training images (blue has none in train/): a classifier needs two classes "
        "to train on"
    )
    assert not (tmp_path / "runs").exists()
    assert data.scan(root).notes == [
        "no images in train/ for blue (only in val/): a model trained here cannot learn to predict it"
    ]


def test_a_batch_larger_than_the_training_set_is_pointed_out(dataset, tmp_path):
    """--batch-size 100000 on 480 images trained one step an epoch, without a word."""
    rec = Recorder()
    result = Trainer(config(dataset, epochs=1, batch_size=4096), callbacks=[rec], runs_dir=tmp_path).fit()
    assert result.reason == "completed", result.message
    said = [w for w in rec.warnings if w.startswith("batch size 4096 is more than the ")]
    assert len(said) == 1 and "each epoch is one step over all of them" in said[0]
    rec = Recorder()
    Trainer(config(dataset, epochs=1, batch_size=4), callbacks=[rec], runs_dir=tmp_path).fit()
    assert not [w for w in rec.warnings if w.startswith("batch size")]


def test_early_stopping(tmp_path, monkeypatch):
    dataset = make_colour_set(tmp_path / "data", per_class=4)
    vals = iter([(1.0, 0.5), (0.9, 0.6), (0.95, 0.6), (1.2, 0.4), (0.5, 0.9)])  # (val_loss, val_acc)
    monkeypatch.setattr(Trainer, "_validate", lambda self: next(vals))
    result = Trainer(config(dataset, epochs=5, early_stop_patience=2), runs_dir=tmp_path).fit()
    assert result.reason == "early_stop" and len(result.history) == 4
    assert result.message == "no improvement in validation accuracy for 2 epochs"  # words, not field names
    # epoch 3 ties on accuracy but has a higher loss: not an improvement
    assert result.best_epoch == 2 and result.best_metric == 0.6
    assert checkpoint.load(Path(result.run_dir) / "best.pt")["epoch"] == 2
    assert _status(result.run_dir)["status"] == "completed" and _status(result.run_dir)["reason"] == "early_stop"


def test_an_early_stopped_run_given_more_epochs_gets_a_new_patience_window(tmp_path, monkeypatch):
    """Resumed with the patience used up, it stopped again after one epoch that did not beat the best."""
    dataset = make_colour_set(tmp_path / "data", per_class=4)
    vals = iter([(1.0, 0.5), (0.9, 0.6), (1.0, 0.5), (1.1, 0.5)] + [(1.2, 0.4)] * 10)  # best at epoch 2
    monkeypatch.setattr(Trainer, "_validate", lambda self: next(vals))
    first = Trainer(config(dataset, epochs=8, early_stop_patience=2), runs_dir=tmp_path / "runs").fit()
    assert first.reason == "early_stop" and len(first.history) == 4
    resumed = Trainer(config(dataset, epochs=8, early_stop_patience=2), resume=first.run_dir, extend=True).fit()
    assert resumed.reason == "early_stop", resumed.message
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4, 5, 6]  # two more epochs, the patience's
    assert resumed.best_epoch == 2


def test_deleted_file_is_a_warning(tmp_path):
    root = make_colour_set(tmp_path / "data")
    cfg = config(root)
    cfg.data.cache = "stream"
    victim = root / "c1" / "03.png"

    class Delete(Recorder):
        def on_epoch_end(self, m):
            super().on_epoch_end(m)
            if m.epoch == 1:
                victim.unlink()

    rec = Delete()
    cfg.train.epochs = 3
    result = Trainer(cfg, callbacks=[rec], runs_dir=tmp_path / "runs").fit()
    assert result.reason == "completed" and len(result.history) == 3
    said = [w for w in rec.warnings if w.startswith(f"skipped {victim}")]
    assert len(said) == 1, rec.warnings  # once, not again every epoch
    assert result.unreadable == [(str(victim), "file not found")]
    left = Path("c1", "03.png")  # from the data folder: by name alone, files of two classes read as one
    assert rec.warnings[-1].startswith(f"1 image could not be read during training and was left out ({left})")


def test_torchvision_checkpoint_loads_into_torchvision(dataset, tmp_path):
    import torchvision

    result = Trainer(config(dataset, epochs=1, arch="resnet18"), runs_dir=tmp_path).fit()
    assert result.reason == "completed", result.message
    ckpt = checkpoint.load(Path(result.run_dir) / "best.pt")
    tv = torchvision.models.resnet18(num_classes=ckpt["num_classes"])
    tv.load_state_dict(ckpt["model"])  # strict: every key and shape matches
    tv.eval()
    x = torch.randn(2, 3, 16, 16)
    ours = checkpoint.model_from_checkpoint(ckpt)
    assert torch.allclose(tv(x), ours(x), atol=1e-5)


def test_evaluate_known_case(tmp_path):
    root = make_colour_set(tmp_path / "data", per_class=4)
    index = data.scan(root)
    (root / "c2" / "00.png").unlink()  # unreadable at evaluation time
    model = models.build("resnext11_2x4d", 3)
    with torch.no_grad():
        model.fc.weight.zero_()
        model.fc.bias.copy_(torch.tensor([2.0, 0.0, -1.0]))  # always predicts c0, with known probabilities
    cfg = config(root)
    ckpt = {
        "format": checkpoint.FORMAT,
        "model": model.state_dict(),
        "arch": "resnext11_2x4d",
        "num_classes": 3,
        "class_names": ["c0", "c1", "c2"],
        "image_size": 16,
        "config": cfg.to_dict(),
    }
    ev = evaluate(ckpt, index, split="all", device="cpu")
    assert ev["num_samples"] == 11 and ev["errors"][0]["path"].endswith("00.png")
    assert ev["confusion_matrix"] == [[4, 0, 0], [4, 0, 0], [3, 0, 0]]
    assert ev["accuracy"] == pytest.approx(4 / 11) and ev["top5"] is None
    p = torch.tensor([2.0, 0.0, -1.0]).softmax(0)
    expected_loss = -(4 * math.log(p[0]) + 4 * math.log(p[1]) + 3 * math.log(p[2])) / 11
    assert ev["loss"] == pytest.approx(expected_loss, rel=1e-4)
    c0, c1, c2 = ev["per_class"]
    assert c0["precision"] == pytest.approx(4 / 11) and c0["recall"] == 1.0
    assert c0["f1"] == pytest.approx(2 * (4 / 11) / (1 + 4 / 11))
    assert c1 == {"name": "c1", "precision": None, "recall": 0.0, "f1": 0.0, "support": 4}  # never predicted
    assert ev["macro"]["recall"] == pytest.approx(1 / 3) and ev["macro"]["precision"] == pytest.approx(4 / 33)
    assert len(ev["misclassified"]) == 7 and all(m["predicted"] == "c0" for m in ev["misclassified"])
    assert ev["predictions"][0]["confidence"] == pytest.approx(float(p[0]), rel=1e-5)
    with pytest.raises(ValueError, match="test split"):
        evaluate(ckpt, index, split="test")
    shutil.copytree(root / "c1", root / "zebra")
    ev = evaluate(ckpt, data.scan(root), split="all")  # a class the model does not know: left out and counted
    zebras = len(list((root / "zebra").iterdir()))
    assert ev["left_out_classes"] == {"zebra": zebras} and ev["num_samples"] == len(data.scan(root).samples) - zebras
    only = root.parent / "only_zebras"
    shutil.copytree(root / "zebra", only / "zebra")
    shutil.copytree(root / "zebra", only / "okapi")
    with pytest.raises(ValueError, match="none of its classes"):
        evaluate(ckpt, data.scan(only), split="all")
    ckpt["class_names"] = ["c0", "c1", "c\u0327"]  # a checkpoint from before names were NFC: "ç" decomposed
    (root / "zebra").rename(root / "\u00e7")  # the same class, composed
    shutil.rmtree(root / "c2")
    ev = evaluate(ckpt, data.scan(root), split="all")
    assert ev["left_out_classes"] == {} and ev["num_samples"] == 8 + zebras


def test_amp_uses_bf16_only_on_gpus_with_bf16_tensor_cores(monkeypatch):
    """torch.cuda.is_bf16_supported() says yes on a T4 or V100 (bf16 emulated there, slower than fp32), and it asks
    the current GPU, not the one trained on: bf16 was chosen on every CUDA GPU, and fp16 with its GradScaler never."""
    asked = []
    capability = {0: (7, 5), 1: (8, 0), 2: (9, 0), 3: (6, 1)}  # a T4, an A100, an H100, a GTX 1080

    def fake(device=None):
        asked.append(device)
        return capability[torch.device(device).index]

    monkeypatch.setattr(torch.cuda, "get_device_capability", fake)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # (what it says on all of them)
    chosen = [engine.amp_dtype(torch.device("cuda", i), True) for i in range(4)]
    assert chosen == [torch.float16, torch.bfloat16, torch.bfloat16, torch.float16]
    assert [torch.device(d).index for d in asked] == [0, 1, 2, 3]  # (each GPU asked of itself)
    assert (
        engine.amp_dtype(torch.device("cuda", 1), False) is None and engine.amp_dtype(torch.device("cpu"), True) is None
    )


def test_resolve_defaults_cpu():
    cfg = resolve_defaults(RunConfig(), "cpu")
    assert cfg.model.arch == models.default_arch("cpu") and cfg.data.image_size == 32 and cfg.train.epochs == 15
    mine = RunConfig()
    mine.model.arch, mine.train.lr = "resnet18", 0.05
    assert resolve_defaults(mine, "cpu").train.lr == 0.05 and resolve_defaults(mine, "cpu").model.arch == "resnet18"
    assert choose_memory_format("resnext11_4x8d", "cpu") == torch.channels_last
    assert choose_memory_format("resnet18", "cpu") == torch.contiguous_format
    assert choose_memory_format("resnet18", "cuda") == torch.channels_last
    assert choose_memory_format("resnext11_4x8d", "cpu", "off") == torch.contiguous_format
    gpu = resolve_defaults(RunConfig(), "cuda")
    assert gpu.model.arch == "resnext50_32x4d" and gpu.data.image_size == 224 and gpu.train.batch_size == 64
    # "auto" becomes one model wherever it is resolved (engine, app worker, app summary): ResNeXt-50 with weights
    assert models.auto_arch("cpu", "w.pth") == models.auto_arch("cuda", "imagenet") == "resnext50_32x4d"
    assert models.auto_arch("cpu") == models.default_arch("cpu")
    stepped = RunConfig()
    stepped.train.scheduler = "step"  # the preset's warm-up belongs to cosine: not added to another schedule
    assert resolve_defaults(stepped, "cpu").train.warmup_epochs == 0 and cfg.train.warmup_epochs > 0


def test_optimizer_state_loads_across_fused_and_plain():
    """A run saved with the fused (GPU) optimizer resumes with the plain one and the other way round."""
    from core.engine import load_optimizer_state

    w = torch.nn.Parameter(torch.ones(3))
    fused = torch.optim.AdamW([w], lr=0.1, fused=True)
    w.grad = torch.ones(3)
    fused.step()
    plain = torch.optim.AdamW([torch.nn.Parameter(torch.ones(3))], lr=0.1)
    load_optimizer_state(plain, fused.state_dict())
    assert not plain.param_groups[0]["fused"] and plain.state_dict()["state"][0]["step"] == 1
    back = torch.optim.AdamW([torch.nn.Parameter(torch.ones(3))], lr=0.1, fused=True)
    load_optimizer_state(back, plain.state_dict())
    assert back.param_groups[0]["fused"] is True


def test_optimizer_state_takes_the_weights_memory_layout():
    """A run saved contiguous (a CPU) resumed channels_last (a GPU): the fused update reads raw storage, so moments
    in the other layout updated the weights wrongly; loaded, they take the weights' layout and the step is right."""
    from core.engine import load_optimizer_state

    torch.manual_seed(0)
    start, grad1, grad2 = torch.randn(4, 3, 3, 3), torch.randn(4, 3, 3, 3), torch.randn(4, 3, 3, 3)
    saved_w = torch.nn.Parameter(start.clone())
    saved = torch.optim.AdamW([saved_w], lr=0.1)
    saved_w.grad = grad1.clone()
    saved.step()

    def resumed(layout: torch.memory_format) -> torch.Tensor:
        w = torch.nn.Parameter(saved_w.detach().clone().contiguous(memory_format=layout))
        opt = torch.optim.AdamW([w], lr=0.1, fused=True)
        load_optimizer_state(opt, copy.deepcopy(saved.state_dict()))  # (as from last.pt: tensors of its own)
        if layout == torch.channels_last:
            assert opt.state[w]["exp_avg"].stride() == w.stride() == (27, 1, 9, 3)
        w.grad = grad2.clone().contiguous(memory_format=layout)
        opt.step()
        return w.detach()

    straight = resumed(torch.contiguous_format)
    assert torch.allclose(resumed(torch.channels_last), straight, atol=1e-6)


def test_class_weights_are_inverse_frequencies(tmp_path):
    root = make_colour_set(tmp_path / "uneven")
    for p in sorted((root / "c0").iterdir())[4:]:
        p.unlink()  # c0: 4 images, c1 and c2: 8 each
    cfg = config(root, epochs=1, class_weights=True)
    cfg.data.val_split = 0.0
    seen = {}

    class Probe(Callback):
        def on_fit_start(self, info):
            seen["weight"] = t.criterion.weight.clone()

    t = Trainer(cfg, callbacks=[Probe()], runs_dir=tmp_path / "runs")
    assert t.fit().reason == "completed"
    assert torch.allclose(seen["weight"], torch.tensor([20 / 12, 20 / 24, 20 / 24]))


def test_a_stopped_epoch_resumed_over_another_set_of_images_says_so_and_ends_as_planned(tmp_path, monkeypatch):
    """The memory cache orders only the images it could load, streaming orders every file: with one that fails
    to load (after the scan passed it), the stopped epoch's order cannot be repeated. The resume says so and
    still trains the planned steps."""
    monkeypatch.setattr(engine, "PROGRESS_INTERVAL_S", 0.0)
    root = make_colour_set(tmp_path / "data", per_class=8)
    broken = str(sorted((root / "c0").iterdir())[0])
    load = data.load_for_model

    def failing(path, *args, **kwargs):
        if str(path) == broken:
            raise data.ImageLoadError(path, "truncated since the scan")
        return load(path, *args, **kwargs)

    monkeypatch.setattr(data, "load_for_model", failing)
    cfg = config(root, epochs=3, batch_size=4)
    cfg.data.cache = "memory"
    first = _fit_stopped_at(cfg, tmp_path / "runs", (2, 2))
    override = config(root, epochs=3, batch_size=4)
    override.data.cache = "stream"
    rec = Recorder()
    resumed = Trainer(override, callbacks=[rec], resume=first.run_dir).fit()
    assert resumed.reason == "completed", resumed.message
    assert any("goes on with another set of readable images" in w for w in rec.warnings), rec.warnings
    steps = rec.of("fit_start")[0].steps_per_epoch
    epoch2 = [p.step for p in rec.of("batch") if p.epoch == 2]
    assert epoch2[0] == 3 and epoch2[-1] == steps  # after the 2 steps done (8 images), to the epoch's end
    last = checkpoint.load(Path(resumed.run_dir) / "last.pt")
    assert last["scheduler"]["last_epoch"] <= 3 * steps  # never past the plan (a batch of one image is skipped)


def test_a_finished_run_given_more_epochs_trains_on_the_longer_schedule_from_its_first_batch(dataset, tmp_path):
    """Its cosine ended at 0: the first new batch trained at lr 0 (and history.csv said 0) before the longer
    schedule took over. Now the new epoch starts where a 4-epoch cosine is after 2 epochs: half the rate."""
    cfg = config(dataset, epochs=2, batch_size=4, scheduler="cosine", warmup_epochs=0.0)
    done = Trainer(cfg, runs_dir=tmp_path).fit()
    assert done.reason == "completed" and done.history[-1]["lr"] > 0
    seen: list[float] = []

    class FirstStepLr(Callback):
        def on_epoch_start(self, epoch):
            seen.append(trainer.optimizer.param_groups[0]["lr"])

    trainer = Trainer(config(dataset, epochs=4), callbacks=[FirstStepLr()], resume=done.run_dir)
    more = trainer.fit()
    assert more.reason == "completed"
    assert more.history[2]["lr"] == pytest.approx(0.5 * cfg.train.lr) == seen[0]
    assert cfg.train.lr * 0.5 > more.history[3]["lr"] > 0


def test_auto_starting_from_one_of_our_checkpoints_is_that_checkpoints_architecture(dataset, tmp_path):
    """Fine-tuning a linear probe's best.pt (or any run's) without --arch picked ResNeXt-50, and then refused the
    file: "layer layer1.0.conv1.weight has shape (64, 64, 3, 3) in the file but (128, 64, 1, 1)"."""
    small = Trainer(config(dataset, epochs=1, batch_size=4), runs_dir=tmp_path).fit()
    best = Path(small.run_dir) / "best.pt"
    assert models.auto_arch("cpu", str(best)) == "resnext11_2x4d"
    legacy = tmp_path / "legacy.pt"  # torch's older format (loads as --checkpoint): it cannot be memory-mapped
    torch.save(checkpoint.load(best), legacy, _use_new_zipfile_serialization=False)
    assert models.auto_arch("cpu", str(legacy)) == "resnext11_2x4d"
    mine = RunConfig()
    mine.model.pretrained = str(best)
    assert resolve_defaults(mine, "cpu").data.image_size == 16  # the size it was trained at
    plain = tmp_path / "plain.pth"
    torch.save(checkpoint.load(best)["model"], plain)  # a bare state dict names no architecture
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    for other in (plain, junk, tmp_path / "missing.pth"):
        assert models.auto_arch("cpu", str(other)) == "resnext50_32x4d"
    cfg = config(dataset, epochs=1, batch_size=4, arch="auto")
    cfg.model.pretrained, cfg.model.mode = str(best), "finetune"
    tuned = Trainer(cfg, runs_dir=tmp_path).fit()
    assert tuned.reason == "completed", tuned.message
    assert checkpoint.load(Path(tuned.run_dir) / "best.pt")["arch"] == "resnext11_2x4d"


def test_a_learning_rate_typo_that_blows_up_gets_sensible_advice(dataset, tmp_path):
    result = Trainer(config(dataset, epochs=2, batch_size=4, lr=1e6), runs_dir=tmp_path).fit()
    assert result.reason == "failed" and "try a lower learning rate (it is 1e+06; e.g. 0.01)" in result.message


def test_a_resume_clears_what_a_killed_or_failed_attempt_left(dataset, tmp_path):
    """kill -9 during a checkpoint write leaves its temp file (a full checkpoint's size); an earlier failure's
    error.txt does not describe the resumed run."""
    first = _fit_stopped_at(config(dataset, epochs=2, batch_size=4), tmp_path, (1, 1))
    run = Path(first.run_dir)
    (run / ".last.pt.pou344hq.tmp").write_bytes(b"x" * 1000)
    (run / "error.txt").write_text("Traceback …")
    assert Trainer(None, resume=run).fit().reason == "completed"
    assert not (run / ".last.pt.pou344hq.tmp").exists() and not (run / "error.txt").exists()


def test_status_json_counts_last_pt_epochs_before_best_pt_is_written(dataset, tmp_path, monkeypatch):
    """Killed while best.pt was written (after last.pt), status.json still said the epoch before: the listing then
    said last.pt held one epoch fewer than it did."""
    real_save, seen = checkpoint.save, []

    def watching_save(path, payload):
        if Path(path).name == "best.pt" and (Path(path).parent / "last.pt").is_file():
            last = checkpoint.load(Path(path).parent / "last.pt")["epoch"]
            seen.append((last, _status(Path(path).parent).get("epochs_done")))
        return real_save(path, payload)

    monkeypatch.setattr(checkpoint, "save", watching_save)
    Trainer(config(dataset, epochs=2, save_every_s=0), runs_dir=tmp_path).fit()
    assert seen and all(last == done for last, done in seen), seen


def test_a_runs_folder_that_cannot_be_written_is_an_input_error_before_anything_starts(dataset, tmp_path, monkeypatch):
    """A read-only file system ended the run as "failed" (exit 1) once training was set up; it is refused up front."""
    real = os.access
    monkeypatch.setattr(engine.os, "access", lambda p, mode: False if Path(p) == tmp_path else real(p, mode))
    with pytest.raises(ConfigError, match=f"cannot create a run folder in {tmp_path} \\(not writable\\)"):
        Trainer(config(dataset), runs_dir=tmp_path / "runs")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_a_runs_folder_where_nothing_can_be_made_is_an_input_error_even_when_access_says_yes(dataset):
    """os.access says yes to root, and of /proc: the run failed once set up (exit 1, "No such file or directory")."""
    with pytest.raises(ConfigError, match="runs_dir='/proc/nope': cannot create a run folder in /proc \\("):
        Trainer(config(dataset), runs_dir="/proc/nope")


def test_an_epochs_files_are_written_while_the_next_epoch_trains_and_hold_that_epochs_end(
    dataset, tmp_path, monkeypatch
):
    """On a GPU last.pt (~260 MB for resnext50 with AdamW) is written on a thread of its own while the next epoch
    trains.
    Here epoch 1's write is held until epoch 2 has trained all its steps, which change the weights and the
    optimizer's state in place: the file must still hold epoch 1's end exactly."""
    import copy
    import threading

    epoch2_trained = threading.Event()
    real_save = checkpoint.save

    def held_save(path, payload):
        if Path(path).name == "last.pt" and payload["epoch"] == 1 and not payload["partial_epoch"]:
            assert epoch2_trained.wait(30), "epoch 2 did not train while epoch 1's last.pt was being written"
        real_save(path, payload)

    monkeypatch.setattr(checkpoint, "save", held_save)

    class Probe(Callback):
        at_end1 = file1 = weights2 = None

        def on_batch_end(self, p):
            if p.epoch == 2 and p.step == p.steps:
                epoch2_trained.set()

        def on_epoch_end(self, m):
            if m.epoch == 1:  # (before epoch 1's files are handed over: nothing has changed since its last step)
                self.at_end1 = (
                    {k: v.clone() for k, v in trainer.model.state_dict().items()},
                    copy.deepcopy(trainer.optimizer.state_dict()["state"]),
                )
            else:  # epoch 1's files are done before epoch 2's row
                self.file1 = checkpoint.load(Path(trainer.run_dir) / "last.pt")
                self.weights2 = {k: v.clone() for k, v in trainer.model.state_dict().items()}

    probe = Probe()
    trainer = Trainer(config(dataset, epochs=2, batch_size=4, save_every_s=0), callbacks=[probe], runs_dir=tmp_path)
    assert not trainer._writer.behind  # on the CPU the files are written in place (the cores are training) …
    trainer._writer.behind = True  # … on a GPU behind the next epoch, as here
    result = trainer.fit()
    assert result.reason == "completed", result.message
    weights1, opt1 = probe.at_end1
    assert probe.file1["epoch"] == 1
    moved = [k for k, v in weights1.items() if v.is_floating_point() and not torch.equal(v, probe.weights2[k])]
    assert moved  # epoch 2 changed the weights while the file was being written …
    for k, v in weights1.items():  # … and the file has epoch 1's
        assert torch.equal(probe.file1["model"][k], v), k
    saved = probe.file1["optimizer"]["state"]
    assert saved.keys() == opt1.keys()
    for i, state in opt1.items():
        for name, v in state.items():
            assert torch.equal(saved[i][name], v), (i, name)
    assert checkpoint.load(Path(result.run_dir) / "last.pt")["epoch"] == 2


def test_a_last_pt_that_cannot_be_written_ends_the_run_at_the_next_step_naming_it(dataset, tmp_path, monkeypatch):
    """The write behind the next epoch fails (a full disk): the run fails with the file's name at the next step,
    not after more epochs that could not be saved either, and no last.pt is claimed."""
    import errno

    def full(path, payload):
        raise OSError(
            errno.ENOSPC, "could not write it: no space left on device (0 MB free; no file was written)", path
        )

    monkeypatch.setattr(checkpoint, "save", full)
    steps = {1: 0, 2: 0}
    real_step = Trainer._train_step

    def counted(self, batch, gen, mix_rng):
        steps[self._epoch_now] = steps.get(self._epoch_now, 0) + 1
        return real_step(self, batch, gen, mix_rng)

    class WriteFailsFirst(Recorder):
        def on_epoch_start(self, epoch):
            super().on_epoch_start(epoch)
            trainer._epoch_now = epoch
            if trainer._writer._thread is not None:  # the failed write of the epoch before is over
                trainer._writer._thread.join()

    monkeypatch.setattr(Trainer, "_train_step", counted)
    rec = WriteFailsFirst()
    trainer = Trainer(config(dataset, epochs=5, batch_size=4, save_every_s=0), callbacks=[rec], runs_dir=tmp_path)
    trainer._writer.behind = True  # (as on a GPU)
    result = trainer.fit()
    run = Path(result.run_dir)
    assert result.reason == "failed" and "no space left on device" in result.message
    assert str(run / "last.pt") in result.message
    assert steps[1] > 1 and steps[2] == 1 and len(result.history) == 1
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "failed" and status["epochs_done"] == 0  # (no last.pt: a resume has nothing)
    assert rec.of("checkpoint") == []  # nothing claimed saved


def test_with_the_files_written_behind_a_run_and_a_stopped_and_resumed_one_match_one_written_in_place(
    dataset, tmp_path, monkeypatch
):
    """What a GPU run does (the files written behind the next epoch), here on the CPU: the same weights, history,
    batches.csv and status as with every file written in place, straight and across a stop inside an epoch."""
    monkeypatch.setattr(engine, "PROGRESS_INTERVAL_S", 0.0)
    monkeypatch.setattr(engine, "BATCH_LOG_INTERVAL_S", 0.0)  # a row each step: none left to timing
    cfg = config(dataset, epochs=3, batch_size=4, mixup=0.2)
    in_place = Trainer(cfg, runs_dir=tmp_path / "a").fit()
    assert in_place.reason == "completed", in_place.message
    _behind(monkeypatch)
    behind = Trainer(cfg, runs_dir=tmp_path / "b").fit()
    token = StopToken()

    class StopInEpoch2(Callback):
        def on_batch_end(self, p):
            if (p.epoch, p.step) == (2, 2):
                token.stop()

    first = Trainer(cfg, callbacks=[StopInEpoch2()], stop=token, runs_dir=tmp_path / "c").fit()
    assert first.reason == "stopped" and checkpoint.load(Path(first.run_dir) / "last.pt")["partial"]["epoch"] == 2
    resumed = Trainer(None, resume=first.run_dir).fit()
    a = checkpoint.load(Path(in_place.run_dir) / "last.pt")
    for result in (behind, resumed):
        assert result.reason == "completed", result.message
        assert _strip_seconds(result.history) == _strip_seconds(in_place.history)
        b = checkpoint.load(Path(result.run_dir) / "last.pt")
        assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
        assert b["scheduler"] == a["scheduler"] and b["best"] == a["best"]

        rows = runs.read_batches(result.run_dir)
        assert [r[0] for r in rows if r[1] == r[2]] == [1, 2, 3]
        assert rows == runs.read_batches(in_place.run_dir)
        assert _status(result.run_dir)["status"] == "completed" and _status(result.run_dir)["epochs_done"] == 3


def _behind(monkeypatch):
    """Every Trainer made from here on writes its epochs' files behind the next epoch, as on a GPU."""
    real_init = engine._WriteBehind.__init__
    monkeypatch.setattr(engine._WriteBehind, "__init__", lambda self, behind: real_init(self, True))


def test_with_the_files_written_behind_an_epochs_seconds_leave_out_the_wait_for_the_last_ones(
    dataset, tmp_path, monkeypatch
):
    """An epoch shorter than the write before it waits for that write at its end; history.csv's seconds are its
    training and validation only, as when the files are written in place (a slow disk: epoch 1's last.pt is
    written only once epoch 2 waits for it, and 0.3 s later; a fixed 1.5 s was shorter than epoch 2 on a busy
    machine)."""
    import threading

    real_save = checkpoint.save
    epoch_2_waits = threading.Event()

    def slow_disk(path, payload):
        if Path(path).name == "last.pt" and payload["epoch"] == 1:
            assert epoch_2_waits.wait(120)
            threading.Event().wait(0.3)
        real_save(path, payload)

    monkeypatch.setattr(checkpoint, "save", slow_disk)
    _behind(monkeypatch)
    blocked = []
    real_wait = engine._WriteBehind.wait

    def timed_wait(self, emit):
        t = time.perf_counter()
        if 2 in marks:
            epoch_2_waits.set()
        real_wait(self, emit)
        blocked.append(time.perf_counter() - t)

    monkeypatch.setattr(engine._WriteBehind, "wait", timed_wait)
    marks = {}

    class Clock(Callback):
        def on_epoch_start(self, epoch):
            marks[epoch] = [time.perf_counter()]

        def on_epoch_end(self, m):
            marks[m.epoch].append(time.perf_counter())

    result = Trainer(
        config(dataset, epochs=2, batch_size=4, save_every_s=0), callbacks=[Clock()], runs_dir=tmp_path
    ).fit()
    assert result.reason == "completed", result.message
    start, end = marks[2]
    waited = max(blocked)  # epoch 2's end, waiting for epoch 1's last.pt
    assert waited > 0.2  # (the write outlasted epoch 2, as it should here)
    assert result.history[1]["seconds"] <= end - start - waited + 0.05


def test_with_the_files_written_behind_a_stop_saves_after_the_write_in_flight(dataset, tmp_path, monkeypatch):
    """A stop while epoch 1's last.pt is still being written: the stop's last.pt (epoch 1 and part of epoch 2)
    is written after it, not overwritten by it; and the run's every last.pt is announced once."""
    import threading

    stop_asked, stop_saved = threading.Event(), threading.Event()
    real_save = checkpoint.save

    def held_save(path, payload):
        if Path(path).name == "last.pt" and payload["epoch"] == 1 and not payload["partial_epoch"]:
            assert stop_asked.wait(30)
            stop_saved.wait(2)  # a stop's save that did not wait for this one would have come first
        real_save(path, payload)
        if payload.get("partial_epoch"):
            stop_saved.set()

    monkeypatch.setattr(checkpoint, "save", held_save)
    _behind(monkeypatch)
    token = StopToken()

    class StopInEpoch2(Recorder):
        def on_batch_end(self, p):
            super().on_batch_end(p)
            if (p.epoch, p.step) == (2, 1):
                token.stop()
                stop_asked.set()

    rec = StopInEpoch2()
    result = Trainer(
        config(dataset, epochs=3, batch_size=4, save_every_s=0), callbacks=[rec], stop=token, runs_dir=tmp_path
    ).fit()
    assert result.reason == "stopped", result.message
    last = checkpoint.load(Path(result.run_dir) / "last.pt")
    assert last["epoch"] == 1 and last["partial"]["epoch"] == 2 and last["partial"]["steps_done"] == 1
    assert rec.of("checkpoint").count("last") == 2  # epoch 1's, then the stop's


def test_with_the_files_written_behind_the_last_epochs_files_are_done_before_the_run_ends(
    dataset, tmp_path, monkeypatch
):
    """The run's end waits for the last epoch's files: each epoch's last.pt is announced before on_fit_end, the
    final evaluation reads the last best.pt, and status.json ends "completed" (not a late "running")."""
    _behind(monkeypatch)
    rec = Recorder()
    result = Trainer(config(dataset, epochs=3, batch_size=4, save_every_s=0), callbacks=[rec], runs_dir=tmp_path).fit()
    assert result.reason == "completed", result.message
    kinds = [e[0] if e[0] != "checkpoint" else e for e in rec.events]
    assert [k for k in kinds if k == ("checkpoint", "last")] == [("checkpoint", "last")] * 3
    assert kinds.index("fit_end") > max(i for i, k in enumerate(kinds) if k == ("checkpoint", "last"))
    run = Path(result.run_dir)
    assert _status(run)["status"] == "completed" and _status(run)["epochs_done"] == 3
    best = checkpoint.load(run / "best.pt")
    assert best["epoch"] == result.best_epoch and result.evaluation is not None


def test_a_best_epoch_that_could_not_be_saved_is_not_called_the_best(dataset, tmp_path, monkeypatch):
    """A full disk at epoch 2, the best so far: the failed run's status.json and result named epoch 2 as its best,
    with best.pt holding epoch 1 (the Runs tab, Evaluate and the CLI's last line said so too)."""
    import errno

    real_save = checkpoint.save

    def full_from_epoch_2(path, payload):
        if payload["epoch"] >= 2:
            raise OSError(errno.ENOSPC, "could not write it: no space left on device", path)
        real_save(path, payload)

    monkeypatch.setattr(checkpoint, "save", full_from_epoch_2)
    monkeypatch.setattr(Trainer, "_score", lambda self, row: (row["epoch"],))  # every epoch beats the one before
    result = Trainer(config(dataset, epochs=3, save_every_s=0), runs_dir=tmp_path).fit()
    run = Path(result.run_dir)
    assert result.reason == "failed" and len(result.history) == 2
    assert "epoch 2, the best, could not be saved (best.pt holds epoch 1)" in result.message
    assert result.best_epoch == 1 and checkpoint.load(run / "best.pt")["epoch"] == 1
    held = next(r for r in result.history if r["epoch"] == 1)
    assert result.best_metric == held["val_acc"]
    status = json.loads((run / "status.json").read_text())
    assert status["best_epoch"] == 1 and status["best_metric"] == held["val_acc"] and status["epochs_done"] == 1


def test_an_index_of_one_class_given_to_the_trainer_is_refused(tmp_path):
    """scan(min_classes=1) keeps one class (for evaluation, and for the Dataset tab to show); a Trainer given such
    an index trained a one-output model whose loss is always 0."""
    root = make_colour_set(tmp_path / "data", per_class=6)
    for extra in [p for p in root.iterdir() if p.is_dir()][1:]:
        shutil.rmtree(extra)
    index = data.scan(root, min_classes=1)
    assert len(index.classes) == 1
    with pytest.raises(data.DataError, match="only one class with images .*at least two are needed to train"):
        Trainer(config(root), index=index, runs_dir=tmp_path / "runs")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_resume_whose_best_pt_holds_an_older_epoch_than_the_best_competes_with_what_best_pt_holds(
    dataset, tmp_path, monkeypatch
):
    """last.pt names epoch 2 the best, best.pt holds epoch 1 (epoch 2's weights were never written: a full disk
    while save_every_s held them). The resumed run said "best epoch 2", and its epoch 4, better than best.pt's
    epoch 1 but not than the lost epoch 2, was thrown away."""
    scores = {1: 1.0, 2: 5.0, 3: 0.0, 4: 3.0}
    monkeypatch.setattr(Trainer, "_score", lambda self, row: (scores[row["epoch"]],))
    kept = {}

    class KeepFirstBest(Callback):
        def on_checkpoint(self, path, kind):
            if kind == "best" and not kept:
                kept["bytes"] = Path(path).read_bytes()

    first = Trainer(config(dataset, epochs=3, save_every_s=0), callbacks=[KeepFirstBest()], runs_dir=tmp_path).fit()
    run = Path(first.run_dir)
    assert first.best_epoch == 2 and checkpoint.load(run / "last.pt")["best"]["epoch"] == 2
    (run / "best.pt").write_bytes(kept["bytes"])  # as if epoch 2's best.pt had never been written
    assert checkpoint.load(run / "best.pt")["epoch"] == 1
    rec = Recorder()
    resumed = Trainer(config(dataset, epochs=4), callbacks=[rec], resume=run).fit()
    assert resumed.reason == "completed" and resumed.message == "", resumed.message
    assert any("best.pt holds epoch 1, not epoch 2" in w for w in rec.warnings), rec.warnings
    assert resumed.best_epoch == 4 and checkpoint.load(run / "best.pt")["epoch"] == 4
    assert json.loads((run / "status.json").read_text())["best_epoch"] == 4


@pytest.mark.parametrize("behind", [True, False])
def test_a_write_error_is_raised_even_when_a_listener_of_its_events_fails(behind):
    """The job's error (a full disk) is the one the run fails with; a listener's own error stays attached."""
    import errno

    writer = engine._WriteBehind(behind)

    def job(events):
        events.append(("on_checkpoint", "batches.csv", "x"))
        raise OSError(errno.ENOSPC, "no space left on device")

    def emit(name, *args):
        raise RuntimeError("a listener broke")

    with pytest.raises(OSError, match="no space left") as e:
        writer.submit(job, emit)
        writer.wait(emit)
    assert isinstance(e.value.__context__, RuntimeError)
    writer.wait(emit)  # nothing left in flight, nothing raised twice


def test_an_interrupt_while_the_last_files_are_written_still_lets_go_of_the_run(dataset, tmp_path, monkeypatch):
    """A second Ctrl-C during the wait for the last epoch's files: the run's lock is released all the same."""

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(engine._WriteBehind, "close", interrupted)
    trainer = Trainer(config(dataset, epochs=1, batch_size=4), runs_dir=tmp_path)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    assert runs.RunLock(trainer.run_dir).acquire()  # free for a resume


class _Clock:
    """engine's `time` with a monotonic clock the test moves; everything else is the real module's."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def __getattr__(self, name):
        return getattr(time, name)


class _Weights(Recorder):
    """Records each epoch's weights at its end and, at each checkpoint, its kind and the epoch the file holds; with
    `clock`, each epoch lasts 20 s of it; with `scores`, validation returns (val_loss, val_acc) from that list."""

    def __init__(self, clock=None, scores=None):
        super().__init__()
        self.trainer, self.weights, self.saved, self.clock = None, {}, [], clock
        self.scores = iter(scores) if scores is not None else None

    def attach(self, trainer):
        self.trainer = trainer
        if self.scores is not None:
            trainer._validate = lambda: next(self.scores)
        return trainer

    def on_epoch_end(self, m):
        super().on_epoch_end(m)
        self.weights[m.epoch] = {k: v.detach().clone() for k, v in self.trainer.model.state_dict().items()}
        if self.clock is not None:
            self.clock.now += 20.0

    def on_checkpoint(self, path, kind):
        super().on_checkpoint(path, kind)
        self.saved.append((kind, checkpoint.load(path)["epoch"]))

    def same_as_epoch(self, ckpt) -> bool:
        want = self.weights[ckpt["epoch"]]
        return all(torch.equal(ckpt["model"][k], want[k]) for k in want)


def _fit_5_epochs_saving_every_30s(dataset, runs_dir, monkeypatch, scores):
    """A run of 5 epochs of 20 s each (a test clock) with save_every_s 30, validated with `scores`."""
    clock = _Clock()
    monkeypatch.setattr(engine, "time", clock)
    rec = _Weights(clock, scores=scores)
    cfg = config(dataset, epochs=5, batch_size=4, save_every_s=30)
    return rec, rec.attach(Trainer(cfg, callbacks=[rec], runs_dir=runs_dir)).fit()


@pytest.mark.parametrize("behind", [False, True], ids=["in-place", "behind"])
def test_an_epochs_files_are_saved_at_most_every_save_every_s_and_always_after_the_last_epoch(
    dataset, tmp_path, monkeypatch, behind
):
    """save_every_s 30 with epochs of 20 s (a test clock): last.pt after epochs 2 and 4 (40 s since the last save
    each) and 5 (the last), none after 1 and 3. Epoch 3 is the best: it goes to best.pt with epoch 4's save, with
    its own weights (kept while epoch 4 trained). history.csv has every epoch."""
    if behind:
        _behind(monkeypatch)
    rec, result = _fit_5_epochs_saving_every_30s(
        dataset, tmp_path, monkeypatch, [(1.0, 0.5), (0.9, 0.6), (0.5, 0.9), (0.6, 0.8), (0.7, 0.7)]
    )
    assert result.reason == "completed", result.message
    assert rec.saved == [("last", 2), ("best", 2), ("last", 4), ("best", 3), ("last", 5)]
    best = checkpoint.load(Path(result.run_dir) / "best.pt")
    assert result.best_epoch == best["epoch"] == 3 and rec.same_as_epoch(best)
    assert len(runs.read_history(result.run_dir)) == 5 and _status(result.run_dir)["epochs_done"] == 5


@pytest.mark.parametrize("behind", [False, True], ids=["in-place", "behind"])
def test_a_stop_between_epochs_saves_the_epoch_and_the_best_that_save_every_s_held_back(
    dataset, tmp_path, monkeypatch, behind
):
    """Nothing is saved while the run is younger than save_every_s; a Stop after epoch 2 saves last.pt of epoch 2
    and best.pt of epoch 1, the best (kept in memory since), and a resume goes on from there."""
    if behind:
        _behind(monkeypatch)
    token = StopToken()

    class StopAfter2(_Weights):
        def on_epoch_end(self, m):
            super().on_epoch_end(m)
            if m.epoch == 2:
                token.stop()

    rec = StopAfter2(scores=[(0.5, 0.9), (0.9, 0.6)])
    cfg = config(dataset, epochs=4, batch_size=4, save_every_s=3600)
    trainer = rec.attach(Trainer(cfg, callbacks=[rec], stop=token, runs_dir=tmp_path))
    result = trainer.fit()
    assert result.reason == "stopped" and len(result.history) == 2
    assert rec.saved == [("last", 2), ("best", 1)]
    run = Path(result.run_dir)
    last, best = checkpoint.load(run / "last.pt"), checkpoint.load(run / "best.pt")
    assert last["epoch"] == 2 and not last["partial_epoch"] and rec.same_as_epoch(last)
    assert best["epoch"] == result.best_epoch == 1 and rec.same_as_epoch(best)
    resumed = Trainer(None, resume=run).fit()
    assert resumed.reason == "completed" and [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]


@pytest.mark.parametrize("behind", [False, True], ids=["in-place", "behind"])
def test_a_failed_run_saves_the_best_epoch_that_save_every_s_held_back_and_a_resume_keeps_it(
    dataset, tmp_path, monkeypatch, behind
):
    """Saves every 30 s, epochs of 20 s: last.pt and best.pt of epoch 2, then epoch 3 is the best (held back) and
    epoch 4's validation loss is NaN. best.pt gets epoch 3's weights; last.pt stays at epoch 2, and status.json
    says so. A resume goes on from epoch 2 and keeps that best.pt until a resumed epoch beats it (it was written
    over with epoch 2's weights as "damaged")."""
    if behind:
        _behind(monkeypatch)
    rec, result = _fit_5_epochs_saving_every_30s(
        dataset, tmp_path, monkeypatch, [(1.0, 0.5), (0.9, 0.6), (0.5, 0.9), (float("nan"), 0.1)]
    )
    assert result.reason == "failed" and "NaN" in result.message
    assert rec.saved == [("last", 2), ("best", 2), ("best", 3)]
    run = Path(result.run_dir)
    best = checkpoint.load(run / "best.pt")
    assert best["epoch"] == 3 and rec.same_as_epoch(best) and checkpoint.load(run / "last.pt")["epoch"] == 2
    assert _status(run)["epochs_done"] == 2 and _status(run)["best_epoch"] == 3

    again = _Weights(scores=[(0.6, 0.8), (0.55, 0.85), (0.4, 0.95)])
    resumed = again.attach(Trainer(None, callbacks=[again], resume=run))
    result = resumed.fit()
    assert result.reason == "completed" and [h["epoch"] for h in result.history] == [1, 2, 3, 4, 5]
    assert not [w for w in again.warnings if "best.pt" in w]
    assert ("best", 5) in again.saved and ("best", 3) not in again.saved and result.best_epoch == 5
    assert again.same_as_epoch(checkpoint.load(run / "best.pt"))


@pytest.mark.parametrize("behind", [False, True], ids=["in-place", "behind"])
def test_a_last_pt_that_cannot_be_written_does_not_take_the_held_back_best_epoch_with_it(
    dataset, tmp_path, monkeypatch, behind
):
    """Epoch 3 is the best, held back by save_every_s; epoch 4's save finds the disk full for last.pt. best.pt,
    without the optimizer's state, is still written with epoch 3's weights; the run fails naming last.pt, which
    stays at epoch 2."""
    import errno

    if behind:
        _behind(monkeypatch)
    real_save = checkpoint.save

    def full_for_epoch_4s_last(path, payload):
        if Path(path).name == "last.pt" and payload["epoch"] == 4:
            raise OSError(errno.ENOSPC, "no space left on device", str(path))
        real_save(path, payload)

    monkeypatch.setattr(checkpoint, "save", full_for_epoch_4s_last)
    rec, result = _fit_5_epochs_saving_every_30s(
        dataset, tmp_path, monkeypatch, [(1.0, 0.5), (0.9, 0.6), (0.5, 0.9), (0.6, 0.8), (0.7, 0.7)]
    )
    run = Path(result.run_dir)
    assert result.reason == "failed" and "no space left on device" in result.message
    assert str(run / "last.pt") in result.message
    assert rec.saved == [("last", 2), ("best", 2), ("best", 3)]
    best = checkpoint.load(run / "best.pt")
    assert best["epoch"] == 3 and rec.same_as_epoch(best) and checkpoint.load(run / "last.pt")["epoch"] == 2
    assert _status(run)["epochs_done"] == 2 and _status(run)["best_epoch"] == 3


def test_a_best_epoch_held_back_after_a_stop_inside_an_epoch_survives_the_next_resume(dataset, tmp_path, monkeypatch):
    """Stopped inside epoch 2 (a partial last.pt); resumed, epoch 2 is the best (held back by save_every_s) and
    epoch 3's loss is NaN: best.pt gets epoch 2. The next resume starts from the partial last.pt again; it kept
    last.pt's best (epoch 1) and wrote a worse resumed epoch over that best.pt."""
    clock = _Clock()
    monkeypatch.setattr(engine, "time", clock)
    cfg = config(dataset, epochs=5, batch_size=4, save_every_s=30)
    first = _Weights(scores=[(1.0, 0.5)])
    token = StopToken()

    class StopInEpoch2(Callback):
        def on_batch_end(self, p):
            if (p.epoch, p.step) == (2, 1):
                token.stop()

    run = Path(
        first.attach(Trainer(cfg, callbacks=[first, StopInEpoch2()], stop=token, runs_dir=tmp_path)).fit().run_dir
    )
    assert checkpoint.load(run / "last.pt")["partial_epoch"]
    again = _Weights(clock, scores=[(0.5, 0.9), (float("nan"), 0.1)])
    failed = again.attach(Trainer(None, callbacks=[again], resume=run)).fit()
    assert failed.reason == "failed" and checkpoint.load(run / "best.pt")["epoch"] == 2
    held = checkpoint.load(run / "best.pt")["model"]

    last = _Weights(scores=[(0.8, 0.7), (0.7, 0.75), (0.75, 0.72), (0.9, 0.6)])
    result = last.attach(Trainer(None, callbacks=[last], resume=run)).fit()
    assert result.reason == "completed" and result.best_epoch == 2  # none of the resumed epochs beat it
    best = checkpoint.load(run / "best.pt")
    assert best["epoch"] == 2 and all(torch.equal(best["model"][k], v) for k, v in held.items())


def test_a_snapshot_waits_for_the_write_in_flight_before_it_reuses_that_writes_buffers():
    """The buffers of one snapshot are the next one's: a write still reading them must end first."""
    import threading

    writer = engine._WriteBehind(True)
    source = {"w": torch.zeros(4)}
    first = writer.snapshot(source, lambda *a: None)
    go, read = threading.Event(), []

    def job(events):
        assert go.wait(30)
        read.append(first["w"].clone())

    writer.submit(job, lambda *a: None)
    source["w"].fill_(1.0)
    release = threading.Timer(0.2, go.set)  # (the job ends a moment later; a snapshot without a wait copies now)
    release.start()
    second = writer.snapshot(source, lambda *a: None)
    assert torch.equal(read[0], torch.zeros(4)) and torch.equal(second["w"], torch.ones(4))
    writer.close()


def test_compile_on_the_cpu_does_not_print_torchs_cuda_home_note(tmp_path):
    """`train --compile` on a CPU printed "No CUDA runtime is found, using CUDA_HOME='/usr/local'" among its
    progress lines wherever a CUDA toolkit was installed (torch.utils.cpp_extension warns when imported)."""
    import subprocess
    import sys

    (tmp_path / "bin").mkdir()  # a CUDA toolkit for torch to find, on any machine
    probe = "import torch.utils.cpp_extension; import torch; print('cuda', torch.cuda.is_available())"
    env = {**os.environ, "CUDA_HOME": str(tmp_path), "CUDA_VISIBLE_DEVICES": ""}

    def stderr(prelude: str) -> str:
        done = subprocess.run([sys.executable, "-c", prelude + probe], env=env, capture_output=True, text=True)
        assert done.returncode == 0 and "cuda False" in done.stdout, done.stderr
        return done.stderr

    assert "No CUDA runtime is found" in stderr("")  # (torch does warn here …)
    assert "No CUDA runtime is found" not in stderr("from core.engine import quiet_cuda_home_warning as q; q(); ")


def test_a_compiled_run_on_the_cpu_quiets_the_cuda_home_note(dataset, tmp_path, monkeypatch):
    called = []
    monkeypatch.setattr(engine, "quiet_cuda_home_warning", lambda: called.append(1))
    monkeypatch.setattr(torch, "compile", lambda module, **kwargs: module)  # (compiling itself takes 30 s here)
    cfg = config(dataset, epochs=1)
    cfg.train.compile = True
    assert Trainer(cfg, runs_dir=tmp_path).fit().reason == "completed" and called == [1]
    cfg.train.compile = False
    assert Trainer(cfg, runs_dir=tmp_path).fit().reason == "completed" and called == [1]


def test_an_allocation_failure_is_said_as_out_of_memory():
    from core.engine import _one_line

    e = RuntimeError(
        "[enforce fail at alloc_cpu.cpp:127] data. DefaultCPUAllocator: can't allocate memory: you tried to "
        "allocate 9663676416 bytes. Error code 12 (Cannot allocate memory)"
    )
    assert _one_line(e) == (
        "out of memory (9.0 GB at once): the model, batch or image size is too large for this machine's memory"
    )
    assert _one_line(MemoryError()).startswith("out of memory: ")
    assert _one_line(ValueError("bad value\nmore")) == "bad value"


def test_optimizers_and_schedulers_from_the_config():
    """Weight decay only on weights of 2+ dimensions (not biases nor norm scales); SGD with (Nesterov) momentum,
    Adam and AdamW as named; the plateau schedule lowers the lr after `patience` flat epochs, the step one each
    step_size epochs."""
    from core.config import TrainConfig

    model = models.build("resnext11_2x4d", num_classes=3)
    tc = TrainConfig(lr=0.1, weight_decay=5e-4, momentum=0.9, nesterov=True, optimizer="sgd", gamma=0.5)
    opt = engine.make_optimizer(model, tc)
    assert type(opt) is torch.optim.SGD and opt.defaults["nesterov"] and opt.defaults["momentum"] == 0.9
    decay = {id(p) for g in opt.param_groups if g["weight_decay"] == 5e-4 for p in g["params"]}
    for name, p in model.named_parameters():
        assert (id(p) in decay) == (p.ndim > 1), name  # conv/linear weights decay; biases and BN scales do not
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters()))
    assert {g["lr"] for g in opt.param_groups} == {0.1}  # (training from scratch: one lr)
    tc.momentum = 0.0
    assert not engine.make_optimizer(model, tc).defaults["nesterov"]  # (torch refuses Nesterov without momentum)
    tc.optimizer = "adam"
    assert type(engine.make_optimizer(model, tc)) is torch.optim.Adam
    tc.optimizer = "adamw"
    opt = engine.make_optimizer(model, tc)
    assert type(opt) is torch.optim.AdamW

    tc.scheduler = "plateau"
    sched = engine.make_scheduler(opt, tc, steps_per_epoch=4, mode="min")
    for loss in (1.0, 1.0, 1.0, 1.0):  # better once, then flat for 3 epochs: over patience 2
        sched.step(loss)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.05] * len(opt.param_groups))
    tc.scheduler, tc.step_size = "step", 2
    opt = engine.make_optimizer(model, tc)
    sched = engine.make_scheduler(opt, tc, steps_per_epoch=4, mode="min")
    lrs = []
    for _ in range(4):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs == pytest.approx([0.1, 0.05, 0.05, 0.025])
    tc.scheduler = "none"
    assert engine.make_scheduler(opt, tc, steps_per_epoch=4, mode="min") is None


def test_a_class_without_validation_images_and_the_scans_problems_are_said_at_the_start(tmp_path):
    """A class of one photo trains but has no validation image: the best epoch's "validation accuracy" said
    nothing of it, and nothing said so until Evaluate. The scan's problems (unreadable files, one image under two
    labels) reach the log through FitInfo.data_notes (the window's log said nothing of them)."""
    root = make_colour_set(tmp_path / "d", per_class=6)
    make_colour_set(tmp_path / "one", per_class=1)
    shutil.copytree(tmp_path / "one" / "c1", root / "c3")  # a class of one image: none can go to validation
    shutil.copy(root / "c0" / "00.png", root / "c1" / "like_c0.png")  # one image, two labels
    (root / "c1" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    shutil.copy(root / "c2" / "00.png", root / "stray.png")
    rec = Recorder()
    t = Trainer(config(root, epochs=1), callbacks=[rec], runs_dir=tmp_path / "runs")
    assert [w for w in rec.warnings if w.startswith("no validation images of")] == [
        "no validation images of class c3 (1 image): the validation accuracy does not measure it (it needs more "
        "images for a share to go there)"
    ]
    assert t.index.problem_notes() == [
        "1 file in the class folders could not be used and is left out",
        "1 image outside the class folders is left out",
        "1 group of identical files in different classes (one image, two labels)",
    ]
    t.fit()
    start = next(e[1] for e in rec.events if e[0] == "fit_start")
    assert start.data_notes == t.index.problem_notes()
    rec = Recorder()
    Trainer(config(make_colour_set(tmp_path / "clean", per_class=6), epochs=1), callbacks=[rec], runs_dir=tmp_path)
    assert not [w for w in rec.warnings if "no validation images" in w]


def _stopping_after(monkeypatch, token, images: int) -> list[str]:
    """data.load_for_model counting its calls, the token set once `images` have been decoded."""
    import threading

    real, decoded, lock = data.load_for_model, [], threading.Lock()

    def counting(path, *args, **kwargs):
        with lock:
            decoded.append(path)
            if len(decoded) == images:
                token.stop()
        return real(path, *args, **kwargs)

    monkeypatch.setattr(data, "load_for_model", counting)
    monkeypatch.setattr(data, "default_workers", lambda: 2)  # (the decodes under way when it is set: at most 2)
    return decoded


def test_stop_while_the_images_are_read_into_memory_ends_the_reading(dataset, tmp_path, monkeypatch):
    """Stop was not looked at until every image was decoded into the cache (minutes for a large set; the window's
    close waited, then gave up): the reading ends, and no run folder is left for a run that trained nothing."""
    n = len(data.scan(dataset).samples)
    token = StopToken()
    decoded = _stopping_after(monkeypatch, token, 3)
    rec = Recorder()
    cfg = config(dataset)
    cfg.data.cache = "memory"
    result = Trainer(cfg, callbacks=[rec], stop=token, runs_dir=tmp_path / "runs").fit()
    assert result.reason == "stopped" and result.run_dir is None, result.message
    assert rec.of("fit_start") == [] and len(decoded) <= 3 + 2, (len(decoded), n)  # (those under way finish)
    assert not any((tmp_path / "runs").iterdir())
    # evaluate's Cancel too: it ends with nothing scored, said as stopped; its bar counted the reading
    run = _fit_stopped_at(config(dataset, epochs=1), tmp_path / "runs2", (1, 1)).run_dir
    token, seen = StopToken(), []
    decoded = _stopping_after(monkeypatch, token, 3)
    ev = evaluate(
        Path(run) / "last.pt", data.scan(dataset), split="all", stop=token, progress=lambda d, t: seen.append((d, t))
    )
    assert ev["stopped"] and ev["num_samples"] == 0 and len(decoded) <= 3 + 2
    monkeypatch.undo()
    seen.clear()
    ev = evaluate(Path(run) / "last.pt", data.scan(dataset), split="all", progress=lambda d, t: seen.append((d, t)))
    assert ev["num_samples"] == n and len({t for _, t in seen}) == 1  # one bar: the reading, then the batches
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and seen[-1][0] == seen[-1][1] > n
    # a resumed run stopped while reading is as its last.pt left it: its status keeps its epochs and its best
    done = Trainer(config(dataset, epochs=1), runs_dir=tmp_path / "runs3").fit()
    before = (Path(done.run_dir) / "last.pt").read_bytes()
    token = StopToken()
    _stopping_after(monkeypatch, token, 3)
    cfg = config(dataset, epochs=2)
    cfg.data.cache = "memory"
    again = Trainer(cfg, stop=token, resume=done.run_dir).fit()
    assert again.reason == "stopped" and "reading the images" in again.message and len(again.history) == 1
    status = _status(done.run_dir)
    assert (status["status"], status["epochs_done"], status["best_epoch"]) == ("stopped", 1, done.best_epoch)
    assert (Path(done.run_dir) / "last.pt").read_bytes() == before


def test_the_final_evaluation_is_in_the_precision_the_run_validated_in(dataset, tmp_path, monkeypatch):
    """On a GPU the epochs validated under bf16/fp16 autocast and evaluate() ran in fp32: evaluation.json of the
    best epoch disagreed with that epoch's validation in history.csv. Played on the CPU with bf16 autocast."""
    monkeypatch.setattr(engine, "amp_dtype", lambda dev, enabled: torch.bfloat16 if enabled else None)
    cfg = config(dataset, epochs=1)
    cfg.data.val_split = 0.5
    result = Trainer(cfg, runs_dir=tmp_path / "runs").fit()
    assert result.reason == "completed", result.message
    ev = json.loads((Path(result.run_dir) / "evaluation.json").read_text())
    row = result.history[-1]
    assert ev["split"] == "val" and ev["loss"] == pytest.approx(row["val_loss"], rel=1e-6, abs=1e-7)
    assert ev["accuracy"] == pytest.approx(row["val_acc"])
    linear = checkpoint.load(Path(result.run_dir) / "best.pt")  # a linear probe validates in float32: so too here
    linear["config"]["model"].update(mode="linear", pretrained="weights.pth")
    probe = evaluate(linear, data.scan(dataset), split="val")
    monkeypatch.undo()  # in fp32 the numbers are others: the agreement above is the precision's
    full = evaluate(Path(result.run_dir) / "best.pt", data.scan(dataset), split="val")
    assert full["loss"] != pytest.approx(row["val_loss"], rel=1e-6, abs=1e-7)
    assert probe["loss"] == full["loss"]


def test_the_reading_of_the_images_into_memory_is_counted_before_the_first_epoch(dataset, tmp_path):
    """Minutes of reading a large set into memory came with no event: "Preparing…" stood still in the app, and the
    command line said nothing. Training's and validation's images are one count; a set streamed has none."""
    rec = Recorder()
    cfg = config(dataset, epochs=1)
    cfg.data.cache = "memory"
    result = Trainer(cfg, callbacks=[rec], runs_dir=tmp_path / "runs").fit()
    assert result.reason == "completed", result.message
    kinds = [e[0] for e in rec.events]
    assert kinds.index("fit_start") > max(i for i, k in enumerate(kinds) if k == "loading")  # all before it
    counts = rec.of("loading")
    info = rec.of("fit_start")[0]
    n = info.train_size + info.val_size
    assert counts[0][0] == 0 and counts[-1] == (n, n)
    assert [d for d, _ in counts] == sorted(d for d, _ in counts) and all(t == n for _, t in counts)
    streamed = Recorder()
    cfg.data.cache = "stream"
    assert Trainer(cfg, callbacks=[streamed], runs_dir=tmp_path / "runs").fit().reason == "completed"
    assert streamed.of("loading") == []


def test_the_command_line_shows_a_slow_reading_of_the_images_and_says_nothing_of_a_quick_one(capsys, monkeypatch):
    from core import cli

    clock = [100.0]
    monkeypatch.setattr(cli.time, "monotonic", lambda: clock[0])
    quick = cli._make_printer()
    quick.on_loading(0, 24)
    quick.on_loading(24, 24)
    assert capsys.readouterr().err == ""
    slow = cli._make_printer()
    slow.on_loading(0, 20000)
    clock[0] += 1.5
    slow.on_loading(20000, 20000)
    err = capsys.readouterr().err
    assert "reading the images into memory" in err and "20000/20000" in err


def test_a_run_saved_by_a_newer_version_names_its_checkpoint_when_resumed_or_evaluated(dataset, tmp_path):
    """ "data.mixup_schedule: unknown setting" named no file: the user had typed no setting of that name."""
    first = _fit_stopped_at(config(dataset, epochs=2, batch_size=4), tmp_path / "runs", (1, 1))
    last = Path(first.run_dir) / "last.pt"
    ckpt = checkpoint.load(last)
    ckpt["config"]["data"]["mixup_schedule"] = "linear"  # a setting a later version added
    checkpoint.save(last, ckpt)
    with pytest.raises(ConfigError) as resumed:
        Trainer(None, resume=first.run_dir)
    assert str(resumed.value).startswith(f"{last}: data.mixup_schedule") and "newer version" in str(resumed.value)
    with pytest.raises(ConfigError) as evaluated:
        evaluate(last, data.scan(dataset))
    assert str(evaluated.value).startswith(f"{last}: data.mixup_schedule")


def test_a_diverging_training_loss_is_said_once():
    """A learning rate of 10 ended "completed" at a loss of 1.4 million, without a word."""
    import types

    said = []
    t = types.SimpleNamespace(_diverging_said=False, is_main=True, num_classes=4, history=[], _warn=said.append)

    def epoch(n: int, loss: float) -> None:
        row = {"epoch": n, "train_loss": loss, "lr": 0.5}
        t.history.append(row)
        Trainer._note_diverging(t, row)

    epoch(1, 1.38)
    epoch(2, 1.1)  # learning: nothing said
    epoch(3, 1.3)
    assert said == []
    epoch(4, 4.5)  # over three times epoch 1's, and well above guessing's ln 4 = 1.39
    assert said == [
        "the training loss is 4.5 in epoch 4 (from 1.38 in epoch 1; guessing scores 1.39): training is diverging; "
        "a lower learning rate than 0.5 usually helps"
    ]
    epoch(5, 1e6)
    assert len(said) == 1  # once a run
    t.history.clear(), said.clear()
    t._diverging_said = False
    epoch(1, 1.4e6)  # broken from the first epoch on
    assert said and said[0].startswith("the training loss is 1.4e+06 in epoch 1 (guessing scores 1.39)")
    t.history.clear(), said.clear()
    t._diverging_said, t.num_classes = False, 1000
    epoch(1, 6.9)  # ln 1000: a thousand classes start there
    epoch(2, 8.0)
    assert said == []


def test_the_cpu_is_named_with_its_thread_count_in_words(monkeypatch):
    """Under torchrun (one thread a process) it read "CPU (1 threads)"."""
    from core.engine import device_name

    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert device_name(torch.device("cpu")) == "CPU (1 thread)"
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    assert device_name(torch.device("cpu")) == "CPU (4 threads)"


def test_a_pause_writes_the_best_weights_that_save_every_s_held_back(dataset, tmp_path, monkeypatch):
    """Paused after two epochs with save_every_s not yet due, the run folder held no best.pt: a crash or a kill
    during a long pause lost the epochs' best weights."""
    from tests.helpers import look_while_paused

    token = StopToken()
    seen: list[tuple] = []

    def look() -> None:
        run = next(p for p in tmp_path.iterdir() if p.is_dir())
        best = run / "best.pt"
        seen.append((best.is_file(), checkpoint.load(best)["epoch"] if best.is_file() else None))

    another_program = look_while_paused(monkeypatch, token, look)

    class PauseInEpoch3(Recorder):
        def on_batch_end(self, p):
            super().on_batch_end(p)
            if (p.epoch, p.step) == (3, 1) and not seen:
                token.pause()
                another_program()

    cfg = config(dataset, epochs=3, batch_size=4)
    cfg.train.save_every_s = 3600  # (nothing written before the run's end)
    result = Trainer(cfg, callbacks=[PauseInEpoch3()], stop=token, runs_dir=tmp_path).fit()
    assert result.reason == "completed", result.message
    assert len(seen) == 1 and seen[0][0] and seen[0][1] in (1, 2)  # the best of the two epochs done
    assert checkpoint.load(Path(result.run_dir) / "last.pt")["epoch"] == 3  # (and the end as before)
