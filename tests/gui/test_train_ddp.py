"""Train tab "Use all GPUs": torchrun child runs (2 Gloo CPU processes here) followed live, stopped, and the option hidden."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox

import gui.train_tab
from gui.dataset_panel import DatasetPanel
from gui.train_tab import IDLE, RUNNING, STOPPING, TrainTab
from gui.worker import wait_for_workers

TINY_ARCH = "resnext11_2x4d"


def _png_dataset(root: Path) -> Path:
    from PIL import Image

    for ci, name in enumerate(("red", "green", "blue")):
        (root / name).mkdir(parents=True)
        for i in range(8):
            colour = [30 + 5 * i] * 3
            colour[ci] = 220
            Image.new("RGB", (16, 16), tuple(colour)).save(root / name / f"{name}_{i}.png")
    return root


def _tab_with_gpus(qtbot, monkeypatch, gpus: int, runs_dir=None, panel=None):
    monkeypatch.setattr(gui.train_tab, "_gpu_count", lambda: gpus)
    tab = TrainTab(panel or DatasetPanel(), runs_dir=str(runs_dir) if runs_dir else None)
    qtbot.addWidget(tab)
    with qtbot.waitSignal(tab.status_message, timeout=120000, raising=False):
        tab.on_environment_ready()
    qtbot.waitUntil(lambda: tab._defaults is not None, timeout=120000)
    return tab


def _setup(qtbot, monkeypatch, tmp_path, runs_dir, epochs: int, batch: int = 4):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    panel = DatasetPanel()
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.scan_finished, timeout=60000):
        panel.load_folder(str(_png_dataset(tmp_path / "data")))
    assert panel.index is not None
    tab = _tab_with_gpus(qtbot, monkeypatch, 2, runs_dir, panel)
    assert not tab.all_gpus_check.isHidden() and tab.all_gpus_check.text() == "Use all GPUs (2)"
    tab.all_gpus_check.setChecked(True)
    assert tab.use_all_gpus()
    panel.set_image_size(16)
    panel.augment_combo.setCurrentText("none")
    panel.val_spin.setValue(25)
    tab.model_panel.set_arch(TINY_ARCH)
    tab.set_train_values(
        {
            "epochs": epochs,
            "batch_size": batch,
            "lr": 2e-3,
            "device": "cpu",
            "warmup_epochs": 0,
            "seed": 0,
            "mixup": 0,
            "cutmix": 0,
        }
    )
    tab.show()
    return panel, tab


def _cleanup(panel, tab):
    tab.stop_and_wait()
    panel.cancel_all()
    wait_for_workers(60)


def _group_gone(pid: int) -> bool:
    if os.name != "posix":
        return True
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def test_all_gpus_option_hidden_with_one_gpu(qtbot, monkeypatch):
    tab = _tab_with_gpus(qtbot, monkeypatch, 1)
    assert tab.all_gpus_check.isHidden() and not tab.use_all_gpus()
    tab.all_gpus_check.setChecked(True)  # even if something checks it, one GPU means a normal run
    assert not tab.use_all_gpus()
    tab.set_gpu_count(0)
    assert tab.all_gpus_check.isHidden() and not tab.all_gpus_check.isChecked()
    tab.set_gpu_count(4)
    assert not tab.all_gpus_check.isHidden() and tab.all_gpus_check.text() == "Use all GPUs (4)"
    wait_for_workers(60, cancel=False)


def test_all_gpus_is_not_offered_on_windows(monkeypatch):
    import sys

    import torch

    import gui.train_tab

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert gui.train_tab._gpu_count() == 4
    monkeypatch.setattr(sys, "platform", "win32")  # no NCCL, and Stop would kill every process unsaved
    assert gui.train_tab._gpu_count() == 0


@pytest.mark.timeout(240)
def test_all_gpus_run_completes_like_a_normal_run(qtbot, monkeypatch, tmp_path, runs_dir):
    panel, tab = _setup(qtbot, monkeypatch, tmp_path, runs_dir, epochs=2)
    try:
        states = []
        tab.state_changed.connect(lambda s: states.append((s, tab.pause_button.isEnabled())))
        with qtbot.waitSignal(tab.run_finished, timeout=220000) as done:
            assert tab.start(), tab.banner.text()
            assert tab.proc is not None and tab.worker is None and tab.thread is None
            assert not tab.start_button.isEnabled() and tab.stop_button.isEnabled()
            assert not tab.all_gpus_check.isEnabled()
        result = done.args[0]
        assert result.reason == "completed", result.message
        assert (RUNNING, False) in states  # it ran, with Pause unavailable
        assert tab.state == IDLE and tab.proc is None and tab.start_button.isEnabled()
        assert tab.charts.epoch_points == 2
        runs = [p for p in runs_dir.iterdir() if p.is_dir()]
        assert len(runs) == 1 and result.run_dir == str(runs[0])
        assert (runs[0] / "best.pt").is_file() and (runs[0] / "last.pt").is_file()
        assert tab.best_checkpoint == str(runs[0] / "best.pt")
        assert "Training completed" in tab.result_label.text()
        assert tab.evaluate_button.isEnabled() and tab.predict_button.isEnabled()
        assert len(result.history) == 2 and result.best_epoch is not None
        log = tab.log.toPlainText()
        assert "Epoch 2:" in log and "2 processes" in log
    finally:
        _cleanup(panel, tab)


@pytest.mark.timeout(240)
def test_stop_ends_every_process_and_keeps_last_checkpoint(qtbot, monkeypatch, tmp_path, runs_dir):
    panel, tab = _setup(qtbot, monkeypatch, tmp_path, runs_dir, epochs=500)
    try:
        assert tab.start(), tab.banner.text()
        pid = tab.proc.pid
        qtbot.waitUntil(lambda: len(tab.charts.batch_x) >= 1, timeout=180000)  # live progress arrived
        assert tab.state == RUNNING and tab.run_dir is not None
        assert "Batch" in tab.batch_label.text() and "images/s" in tab.speed_label.text()
        with qtbot.waitSignal(tab.run_finished, timeout=120000) as done:
            tab.stop_button.click()
        result = done.args[0]
        assert result.reason == "stopped", result.message
        run = Path(result.run_dir)
        assert (run / "last.pt").is_file()
        assert json.loads((run / "status.json").read_text(encoding="utf-8"))["status"] == "stopped"
        assert tab.state == IDLE and tab.proc is None and tab.start_button.isEnabled()
        qtbot.waitUntil(lambda: _group_gone(pid), timeout=10000)
    finally:
        _cleanup(panel, tab)


@pytest.mark.timeout(400)
def test_resume_after_a_stop_goes_on_under_torchrun_on_every_gpu(qtbot, monkeypatch, tmp_path, runs_dir):
    """Resume of a run stopped with "Use all GPUs" went on in one process, where the run's batch (the global one,
    of every GPU) all fell on one GPU. It goes on under torchrun, in the same run folder, from its last.pt. A Stop
    at once, while torchrun still starts its processes, is not lost (the job trained on to its 500th epoch)."""
    panel, tab = _setup(qtbot, monkeypatch, tmp_path, runs_dir, epochs=500)
    try:
        assert tab.start(), tab.banner.text()
        qtbot.waitUntil(lambda: len(tab.charts.batch_x) >= 1, timeout=180000)
        with qtbot.waitSignal(tab.run_finished, timeout=120000) as first:
            tab.stop_button.click()
        assert first.args[0].reason == "stopped" and tab.resume_button.isEnabled()
        run = first.args[0].run_dir
        with qtbot.waitSignal(tab.run_finished, timeout=240000) as again:
            tab.resume_button.click()
            assert tab.proc is not None and tab.worker is None  # torchrun again, not the one-process worker
            assert "--resume" in tab.proc.args and run in tab.proc.args
            assert "--epochs" not in tab.proc.args  # (to its plan: no extension, which would reset a spent patience)
            assert tab._ddp["progress"] is not None and not tab._ddp["live"]  # (the stopped job's progress.json)
            tab.stop_button.click()  # before the job has begun
            assert tab.state == STOPPING
        assert again.args[0].reason == "stopped" and again.args[0].run_dir == run
        assert [p for p in runs_dir.iterdir() if p.is_dir()] == [Path(run)]  # no second run folder
        assert "2 processes" in tab.log.toPlainText().split("Resuming")[-1]
    finally:
        _cleanup(panel, tab)


@pytest.mark.timeout(240)
def test_stop_and_wait_ends_a_torchrun_job(qtbot, monkeypatch, tmp_path, runs_dir):
    panel, tab = _setup(qtbot, monkeypatch, tmp_path, runs_dir, epochs=500)
    try:
        assert tab.start(), tab.banner.text()
        pid = tab.proc.pid
        qtbot.waitUntil(lambda: tab.run_dir is not None, timeout=180000)
        assert tab.is_running()
        assert tab.stop_and_wait()
        assert tab.state == IDLE and tab.proc is None and not tab.is_running()
        assert tab.result is not None and tab.result.reason == "stopped"
        qtbot.waitUntil(lambda: _group_gone(pid), timeout=10000)
    finally:
        _cleanup(panel, tab)


@pytest.mark.timeout(240)
def test_failing_torchrun_job_shows_the_log_tail(qtbot, monkeypatch, tmp_path, runs_dir):
    shown = []
    monkeypatch.setattr(QMessageBox, "critical", lambda parent, title, text, *a, **k: shown.append(text))
    panel, tab = _setup(qtbot, monkeypatch, tmp_path, runs_dir, epochs=1, batch=2)  # 1 image per process: refused
    try:
        with qtbot.waitSignal(tab.run_finished, timeout=220000) as done:
            assert tab.start(), tab.banner.text()
        result = done.args[0]
        assert result.reason == "failed"
        assert "batch" in result.message.lower(), result.message
        assert shown and tab.banner.kind == "error"
        assert tab.state == IDLE and tab.proc is None and tab.start_button.isEnabled()
    finally:
        _cleanup(panel, tab)
