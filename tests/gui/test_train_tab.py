"""Train tab and TrainingWorker: a tiny run to the end, stop, close while training, failures, worker helpers."""

from __future__ import annotations

import functools
import json
import re
import shutil
import threading
import time
from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox

from gui.app import settings
from gui.dataset_panel import DatasetPanel
from gui.train_tab import IDLE, PAUSED, RUNNING, TrainTab, _fmt_left
from gui.worker import FunctionWorker, TrainingWorker, active_threads, is_running, start_worker, wait_for_workers

TINY_ARCH = "resnext11_2x4d"  # the smallest CIFAR-style ResNeXt: one block per stage, C=2, d=4


def _setup(qtbot, folder, runs_dir, epochs=2):
    panel = DatasetPanel()
    tab = TrainTab(panel, runs_dir=str(runs_dir))
    for w in (panel, tab):
        qtbot.addWidget(w)
    with qtbot.waitSignal(panel.scan_finished, timeout=60000):
        panel.load_folder(str(folder))
    assert panel.index is not None
    panel.set_image_size(32)
    panel.augment_combo.setCurrentText("light")
    panel.val_spin.setValue(25)
    tab.model_panel.set_arch(TINY_ARCH)
    tab.set_train_values(
        {
            "epochs": epochs,
            "batch_size": 8,
            "lr": 2e-3,
            "device": "cpu",
            "warmup_epochs": 0,
            "scheduler": "cosine",
            "seed": 0,
        }
    )
    tab.show()
    return panel, tab


def _cleanup(panel, tab):
    tab.stop_and_wait()
    panel.cancel_all()
    wait_for_workers(60)


@pytest.mark.timeout(300)
def test_tiny_run_to_the_end_adds_one_point_per_epoch(qtbot, tiny_dataset, runs_dir, monkeypatch):
    panel, tab = _setup(qtbot, tiny_dataset, runs_dir, epochs=2)
    try:
        epochs_seen, reading, on_gui_thread = [], [], []
        real = TrainTab._on_loading  # the images read into memory before the first epoch: said on the batch bar

        # (wraps: PySide queues a call to the GUI thread only for a function named as the tab's own method; this
        # one, named otherwise, ran on the training thread and painted the bar there, which crashed Qt)
        @functools.wraps(real)
        def seen(self, done, total):  # ("Preparing…" had stood still for minutes on a large set)
            real(self, done, total)
            on_gui_thread.append(threading.current_thread() is threading.main_thread())
            reading.append((self.batch_label.text(), self.batch_bar.value(), self.batch_bar.maximum()))
            assert self.batch_bar.text().endswith(" images")  # (the bar's own words: not "batches")

        monkeypatch.setattr(TrainTab, "_on_loading", seen)
        with qtbot.waitSignal(tab.run_finished, timeout=280000) as done:
            assert tab.start(), tab.banner.text()
            assert tab.state != IDLE and not tab.start_button.isEnabled() and tab.stop_button.isEnabled()
            tab.worker.epoch_end.connect(lambda m: epochs_seen.append(m.epoch))

            # what the run trains with is saved at its start, the Dataset tab's settings too (the app may be
            # killed before it quits: a tiny model then came back with the default image size)
            assert int(settings().value("data/image_size")) == panel.size_spin.value()
            assert int(settings().value("train/epochs")) == 2
        result = done.args[0]
        assert result.reason == "completed", result.message
        sizes = json.loads((Path(result.run_dir) / "config.json").read_text())["dataset"]
        n = sizes["train_size"] + sizes["val_size"]
        assert reading and reading[-1] == (f"Reading images {n} / {n}", n, n), reading
        assert all(on_gui_thread), "the tab's handler ran on the training thread"
        assert tab.batch_label.text().startswith("Batch") and tab.batch_bar.text().endswith(" batches")
        assert tab.charts.epoch_points == 2
        assert len(tab.charts.batch_x) >= 2  # smoothed per-batch loss drawn too
        assert tab.state == IDLE and tab.start_button.isEnabled() and not tab.stop_button.isEnabled()
        assert not tab.resume_button.isEnabled()  # (a finished run: nothing to resume)
        for b in (tab.evaluate_button, tab.predict_button, tab.open_button):
            assert b.isEnabled()
        run = Path(result.run_dir)
        assert run.parent == runs_dir and (run / "best.pt").is_file()
        assert tab.best_checkpoint == str(run / "best.pt")
        assert "Training completed" in tab.result_label.text()
        best_acc = next(r["val_acc"] for r in result.history if r["epoch"] == result.best_epoch)
        n_val = result.evaluation["num_samples"]
        # best.pt re-evaluated on the validation split gives the best epoch's number: shown once, with its size
        assert f"validation accuracy {100 * best_acc:.1f}% ({n_val} images)" in tab.result_label.text()
        assert "accuracy of best.pt" not in tab.result_label.text()
        assert "<br>Run folder: 2" in tab.result_label.text() and tab.result_label.toolTip() == str(run)
        with qtbot.waitSignal(tab.predict_requested) as pred:
            tab.predict_button.click()
        assert pred.args == [str(run / "best.pt")]
        with qtbot.waitSignal(tab.evaluate_requested) as ev:
            tab.evaluate_button.click()
        assert ev.args == [str(run)]
        log = tab.log.toPlainText()
        assert "CPU" in log and "Epoch 2:" in log
    finally:
        _cleanup(panel, tab)


def test_time_left_is_said_in_words_not_as_a_clock_time():
    """ "ETA 17:02" beside the log's clock times read as a time of day."""
    assert _fmt_left(42.4) == "42 s left"
    assert _fmt_left(17 * 60 + 2) == "17 min 02 s left"
    assert _fmt_left(3600 + 5 * 60 + 40) == "1 h 05 min left"
    assert _fmt_left(None) == _fmt_left(float("inf")) == "Time left –"


def test_the_loss_line_draws_the_latest_batches_loss_not_the_epochs_running_mean(qtbot, runs_dir):
    from core.engine import BatchProgress

    tab = TrainTab(runs_dir=str(runs_dir))
    qtbot.addWidget(tab)
    tab.ensure_charts()
    tab.charts.reset()
    tab._on_batch(BatchProgress(1, 3, 9, 1.0, 50.0, 12.0, 24, recent_loss=0.5))
    assert tab.charts.batch_y == [0.5]
    tab._on_batch(BatchProgress(1, 4, 9, 0.9, 50.0, 12.0))  # (not known: an older progress file's mean)
    assert len(tab.charts.batch_y) == 2 and tab.charts.batch_y[-1] > 0.5


def test_a_long_run_folder_name_is_cut_in_the_middle_to_the_result_box(qtbot):
    """A long data set name ran past the Result box's edge, cut mid-letter; the whole name comes back when there
    is room, and any other text replaces the line."""
    from gui.train_tab import _ResultLabel

    label = _ResultLabel("")
    qtbot.addWidget(label)
    label.setWordWrap(True)
    label.resize(300, 120)
    label.show()
    name = "20261127-123335-resnext11_4x8d-my_dataset_with_an_extremely_long_folder_name_for_the_run_xx"
    label.show_result(["<b>Training completed</b>"], name)
    last = label.text().split("<br>")[-1]
    assert last.startswith("Run folder: 20261127") and "…" in last and last.endswith("run_xx")
    assert label.fontMetrics().horizontalAdvance(last) <= label.contentsRect().width()
    label.resize(1200, 120)
    qtbot.waitUntil(lambda: label.text().endswith(f"Run folder: {name}"))
    short = "20261127-123020-resnext11_4x8d-sample"  # (it wraps at its hyphens: whole, on two lines if need be)
    label.show_result(["<b>Training completed</b>"], short)
    label.resize(200, 120)
    qtbot.waitUntil(lambda: label.width() == 200)
    assert label.text().endswith(f"Run folder: {short}")
    label.setText("Training…")
    label.resize(250, 120)
    qtbot.waitUntil(lambda: label.width() == 250)
    assert label.text() == "Training…"


def test_a_narrow_window_keeps_the_log_readable_and_the_result_reachable(qtbot):
    """At the window's least width the log had 72 px (its lines broke every 7 characters), the device line lost
    "cached" to its middle cut, and a Result text longer than its box could not be scrolled from the keyboard."""
    from PySide6.QtCore import Qt

    tab = TrainTab()
    qtbot.addWidget(tab)
    tab.resize(tab.minimumSizeHint().width(), 700)
    tab.show()
    qtbot.waitExposed(tab)
    assert tab.log.viewport().width() >= 23 * tab.log.fontMetrics().averageCharWidth()
    tab.device_label.setText("Device: CPU (2 threads) · data: cached 480 images in memory, 1.4 MB " + "x" * 200)
    assert tab.device_label.shown_text().startswith("Device: CPU (2 threads) · data: cached 480")
    assert tab.result_scroll.focusPolicy() == Qt.FocusPolicy.NoFocus  # short: no Tab stop
    tab.result_label.show_result([f"line {i}" for i in range(30)], "20261129-233141-resnext11_4x8d-sample")
    bar = tab.result_scroll.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0)
    assert tab.result_scroll.focusPolicy() == Qt.FocusPolicy.StrongFocus and tab.result_scroll.accessibleName()
    tab.result_scroll.setFocus()
    qtbot.keyClick(tab.result_scroll, Qt.Key.Key_PageDown)
    assert bar.value() > 0  # the keys scroll it


def _wait_running(qtbot, tab):
    qtbot.waitUntil(lambda: tab.fit_info is not None and tab.state == RUNNING, timeout=120000)


@pytest.mark.timeout(300)
def test_pause_resume_stop_returns_to_idle_with_last_checkpoint(qtbot, tiny_dataset, runs_dir):
    panel, tab = _setup(qtbot, tiny_dataset, runs_dir, epochs=200)
    from PySide6.QtWidgets import QApplication

    def press(button):  # as the keyboard does: the button has the focus
        button.setFocus()
        qtbot.waitUntil(button.hasFocus)
        button.click()

    try:
        tab.activateWindow()
        tab.lr_edit.setFocus()
        qtbot.waitUntil(tab.lr_edit.hasFocus)
        assert tab.start()  # F5 from a field: it is disabled with the form, and the focus was gone with it
        assert QApplication.focusWidget() is not tab.stop_button  # (Pause is off while preparing; Enter then stopped)
        _wait_running(qtbot, tab)
        qtbot.waitUntil(lambda: QApplication.focusWidget() is tab.pause_button)  # given on as soon as it acts
        press(tab.pause_button)
        assert tab.state == PAUSED and tab.resume_button.isEnabled() and not tab.pause_button.isEnabled()
        assert QApplication.focusWidget() is tab.resume_button  # the keys go on to what acts next
        assert tab.eta_label.text() == "Time left – (paused)"  # no frozen estimate while paused
        assert tab.result_label.text().startswith("Paused.")  # not "Training…" while nothing trains
        from core.engine import BatchProgress

        tab._on_batch(BatchProgress(1, 3, 9, 1.0, 50.0, 12.0))  # the batch in flight reports after Pause
        assert tab.eta_label.text() == "Time left – (paused)" and tab.batch_label.text() == "Batch 3 / 9"
        size = tab.model_panel._context["image_size"]
        panel.size_spin.setValue(size * 2)  # the next run's setting: the running run's summary stays
        assert tab.model_panel._context["image_size"] == size
        press(tab.resume_button)
        assert tab.state == RUNNING and tab.pause_button.isEnabled() and tab.result_label.text() == "Training…"
        assert QApplication.focusWidget() is tab.pause_button
        trained = []  # a batch trained before the Stop (one pressed before the first left nothing to resume from)
        tab.worker.batch.connect(trained.append)  # (on the training thread: a list's append is all it does; a
        qtbot.waitUntil(lambda: bool(trained), timeout=120000)  # waitSignal on a worker's signal can miss its quit)
        with qtbot.waitSignal(tab.run_finished, timeout=120000) as done:
            press(tab.stop_button)
        assert done.args[0].reason == "stopped"
        # the bar shows the batch last.pt holds (it stood a few behind, where the throttle had last sent one)
        said, bar = done.args[0].message, tab.batch_label.text()
        at = re.search(r"after batch (\d+) of (\d+)", said)
        if at:
            assert bar == f"Batch {at[1]} / {at[2]}", (said, bar)
        else:  # (or before its epoch's first batch, after its last, while validating, or between two epochs)
            assert re.search(r"validating|stopped before epoch|before its first batch", said), said
            assert "validating" not in said or re.fullmatch(r"Batch (\d+) / \1", bar), (said, bar)
        assert tab.state == IDLE and tab.start_button.isEnabled()
        assert QApplication.focusWidget() is tab.start_button  # (it fell to the log while stopping)
        assert tab.model_panel._context["image_size"] == size * 2  # applied once the run has ended
        assert tab.eta_label.text() == "Time left –"
        bar = tab.log.verticalScrollBar()
        assert bar.maximum() > 0 and bar.value() == bar.maximum()  # the log follows its newest line
        assert "Stopped by you" in tab.log.toPlainText().splitlines()[-1]
        # how it ended, and what Resume does, on one line (a line of its own cut the folder's name at 1024 x 700)
        first = f"<b>Stopped by you</b>: {done.args[0].message}. <i>Resume (Ctrl+Shift+R) goes on from last.pt.</i>"
        assert tab.result_label.text().startswith(f"{first}<br>")
        assert (Path(done.args[0].run_dir) / "last.pt").is_file()
        qtbot.waitUntil(lambda: not is_running(tab.thread), timeout=30000)

        # Resume, after a Stop, goes on with that run from its last.pt (as the Runs tab's "Resume training")
        assert tab.resume_button.isEnabled()
        with qtbot.waitSignal(tab.run_finished, timeout=120000) as again:
            tab.resume_button.click()
            _wait_running(qtbot, tab)
            info = tab.fit_info
            assert (info.start_epoch, info.resume_step) > (0, 0) and tab.run_dir == done.args[0].run_dir
            tab.stop_button.click()
        assert again.args[0].reason == "stopped" and again.args[0].run_dir == done.args[0].run_dir
        qtbot.waitUntil(lambda: not is_running(tab.thread), timeout=30000)
        tab.forget_runs([again.args[0].run_dir])  # (deleted in the Runs tab: nothing to resume any more)
        assert not tab.resume_button.isEnabled() and "Resume" not in tab.result_label.text()
    finally:
        _cleanup(panel, tab)


@pytest.mark.timeout(300)
def test_closing_the_window_during_training_ends_the_thread(qtbot, tiny_dataset, runs_dir, answer_question):
    from gui.main_window import MainWindow

    window = MainWindow(data_dir=str(tiny_dataset), runs_dir=str(runs_dir))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.dataset_panel.index is not None, timeout=60000)
    tab = window.train_tab
    window.dataset_panel.set_image_size(32)
    tab.model_panel.set_arch(TINY_ARCH)
    tab.set_train_values({"epochs": 200, "batch_size": 8, "device": "cpu"})
    assert tab.start()
    _wait_running(qtbot, tab)
    thread = tab.thread

    asked = answer_question("Keep training")
    assert not window.close()
    assert asked and asked[0][1] == ["Stop and close", "Keep training"]
    assert is_running(thread) and tab.state == RUNNING

    answer_question("Stop and close")
    assert window.close()  # (it returns once the thread has ended: a hang fails on the test's timeout)
    assert not is_running(thread) and not active_threads()
    assert tab.result is not None and tab.result.reason == "stopped"


@pytest.mark.timeout(180)
def test_exception_in_training_reaches_the_dialog(qtbot, tiny_dataset, runs_dir, monkeypatch):
    import core.engine

    def boom(self):
        raise RuntimeError("boom inside fit")

    monkeypatch.setattr(core.engine.Trainer, "fit", boom)
    shown = []
    monkeypatch.setattr(QMessageBox, "critical", lambda parent, title, text, *a, **k: shown.append((title, text)))
    panel, tab = _setup(qtbot, tiny_dataset, runs_dir)
    tab.epoch_label.setText("Epoch 2 / 2")  # what a run before this one left
    tab.batch_label.setText("Batch 30 / 30")
    tab.device_label.setText("Device: CPU · data: cached 480 images in memory")
    try:
        with qtbot.waitSignal(tab.state_changed, timeout=60000, check_params_cb=lambda s: s == IDLE):
            assert tab.start()
        assert shown and "boom inside fit" in shown[0][1]
        assert [w.text() for w in (tab.epoch_label, tab.batch_label, tab.device_label)] == [
            "Epoch –",
            "Batch –",
            "Device: –",
        ]  # (this run's numbers, which it never got to)
        assert tab.state == IDLE and tab.start_button.isEnabled()
        assert tab.banner.kind == "error"
        assert not tab.evaluate_button.isEnabled()
    finally:
        _cleanup(panel, tab)


def test_a_runs_folder_that_cannot_be_made_is_named_in_words(qtbot, tiny_dataset, tmp_path, monkeypatch):
    """The engine names the runs folder as its setting (runs_dir='…', the command line's --runs-dir): the window
    says "The runs folder …"."""
    shown = []
    monkeypatch.setattr(QMessageBox, "critical", lambda parent, title, text, *a, **k: shown.append(text))
    blocked = tmp_path / "runs"
    blocked.write_text("a file where the runs folder should be")
    panel, tab = _setup(qtbot, tiny_dataset, blocked)
    try:
        with qtbot.waitSignal(tab.state_changed, timeout=60000, check_params_cb=lambda s: s == IDLE):
            assert tab.start()
        said = " ".join([tab.banner.text(), *shown])
        assert f"The runs folder {blocked} is a file, not a folder" in said and "runs_dir=" not in said, said
    finally:
        _cleanup(panel, tab)


def test_start_without_data_explains_instead_of_failing(qtbot):
    tab = TrainTab(DatasetPanel())
    qtbot.addWidget(tab)
    assert not tab.start()
    assert "Open a data set" in tab.banner.text() and tab.state == IDLE
    wait_for_workers(60, cancel=False)


def test_start_after_the_data_folder_was_moved_says_so_and_makes_no_run(qtbot, tiny_dataset, runs_dir, tmp_path):
    """The scanned folder moved away before Start: a run was made that failed on every image (39 skip lines)."""
    panel, tab = _setup(qtbot, tiny_dataset, runs_dir)
    try:
        moved = tiny_dataset.with_name("moved")
        tiny_dataset.rename(moved)
        assert not tab.start() and tab.state == IDLE
        assert tab.banner.text().startswith(f"The data folder {tiny_dataset} is not there any more")
        assert "Open folder" in tab.banner.text()
        assert not Path(runs_dir).is_dir() or not any(Path(runs_dir).iterdir())  # no run folder made
        moved.rename(tiny_dataset)  # back where it was: it trains
        # one class folder gone since the scan: the run trained a class it never saw ("10 images could not be read")
        first = tiny_dataset / panel.index.classes[0]
        first.rename(tmp_path / "away")
        assert not tab.start() and tab.state == IDLE
        assert tab.banner.text() == (
            f"The data folder changed since it was scanned: {first} is not there any more. Press Rescan in the "
            "Dataset tab, then Start training again."
        )
        (tmp_path / "away").rename(first)
        with qtbot.waitSignal(tab.run_finished, timeout=120000) as done:
            assert tab.start(), tab.banner.text()
        assert done.args[0].reason == "completed"
    finally:
        _cleanup(panel, tab)


def test_bad_learning_rate_is_reported(qtbot, tiny_dataset, runs_dir):
    panel, tab = _setup(qtbot, tiny_dataset, runs_dir)
    try:
        tab.lr_edit.setText("fast")
        assert not tab.start()
        assert "Learning rate" in tab.banner.text()
        tab.lr_edit.setText("0")  # the config's own words ("lr=0.0: must be > 0") were the form's no more
        tab.window().show()
        tab.activateWindow()
        assert not tab.start()
        assert tab.banner.text() == "Learning rate 0: must be from 1e-08 to 10"
        qtbot.waitUntil(lambda: tab.lr_edit.hasFocus())  # where to fix it
        # a number past the field's range was let stay, and started a run (1e9 failed it at step 3)
        for text, said in (("1e9", "Learning rate 1e9: must be from 1e-08 to 10"), ("nan", "Learning rate nan: must")):
            tab.lr_edit.setText(text)
            tab.wd_edit.setFocus()
            assert not tab.start() and tab.state == IDLE and tab.banner.text().startswith(said), tab.banner.text()
            qtbot.waitUntil(lambda: tab.lr_edit.hasFocus())
        tab.lr_edit.setText("0.01")
        tab.wd_edit.setText("2")
        assert not tab.start() and tab.banner.text() == "Weight decay 2: must be from 0 to 1"
        tab.wd_edit.setText("5e-4")
        tab.lr_edit.clear()
        tab.lr_edit.insert(" 5e-3\n")  # pasted with a space and a line break: it was refused without a word
        assert tab.lr_edit.text() == "5e-3"
        tab.lr_edit.insert(",5")  # (a comma let in, then "not a number" at Start: the form reads a point)
        assert tab.lr_edit.text() == "5e-3"
        tab.lr_edit.setText("0.01")
        panel.val_spin.setValue(60)
        panel.test_spin.setValue(40)
        assert not tab.start() and tab.state == IDLE
        assert tab.banner.text() == (
            "Validation 60% + test 40% leave no training images (Dataset tab): together they must stay below 100 %."
        )
    finally:
        _cleanup(panel, tab)


def test_function_worker_passes_progress_and_stop_and_reports(qtbot):
    def job(n, progress=None, stop=None):
        for i in range(n):
            if stop.stopped:
                return "stopped"
            progress(i + 1, n)
        return n * 2

    w = FunctionWorker(job, 5)
    got = []
    w.progress.connect(lambda d, t: got.append((d, t)))  # runs in the worker thread: fine for a list
    # (recorded on the worker's thread and waited for here: qtbot.waitSignal on a worker's signal stops its timer
    # from that thread, and a signal in the moment before its loop starts is missed: the wait hung)
    res = []
    w.result.connect(res.append)
    start_worker(w)
    qtbot.waitUntil(lambda: bool(res), timeout=30000)
    assert res == [10]
    assert got[-1] == (5, 5)
    qtbot.waitUntil(lambda: not active_threads(), timeout=10000)

    failing = FunctionWorker(lambda: 1 / 0)
    err = []
    failing.failed.connect(err.append)
    start_worker(failing)
    qtbot.waitUntil(lambda: bool(err), timeout=30000)
    assert "ZeroDivisionError" in err[0]
    qtbot.waitUntil(lambda: not active_threads(), timeout=10000)


def test_a_finished_worker_leaves_nothing_connected_to_its_parent(qtbot):
    """Each worker connected a stop to its parent's destroyed signal for the parent's life: a tab that ran 200 jobs
    (thumbnails, predictions, listings) held 200 connections and their closures. A parent destroyed while its
    worker runs still stops it."""
    from PySide6.QtCore import SIGNAL
    from PySide6.QtWidgets import QWidget

    from gui.worker import _ACTIVE

    owner = QWidget()

    def receivers() -> int:
        return owner.receivers(SIGNAL("destroyed(QObject*)"))

    counts = []
    for _ in range(6):
        worker = FunctionWorker(lambda: None)
        start_worker(worker, owner)
        qtbot.waitUntil(lambda w=worker: all(e[1] is not w for e in _ACTIVE), timeout=10000)  # (released)
        counts.append(receivers())
    assert counts[-1] == counts[0], counts  # (PySide keeps one of its own from the first connection on)

    def job(progress=None, stop=None):
        while not stop.stopped:  # (until the parent's end cancels it)
            time.sleep(0.005)
        return "stopped"

    res = []
    w = FunctionWorker(job)
    w.result.connect(res.append)
    start_worker(w, owner)
    assert receivers() == counts[0] + 1
    owner.deleteLater()
    qtbot.waitUntil(lambda: res == ["stopped"], timeout=10000)
    qtbot.waitUntil(lambda: not active_threads(), timeout=10000)


def test_each_job_hands_its_freed_memory_back_on_its_own_thread(qtbot, monkeypatch):
    """glibc kept what each job's thread freed in that thread's arena: a session of trainings, evaluations and
    predictions grew ~27 MB a round (1.0 to 1.5 GB in 20 rounds) with ~200 MB in use."""
    import platform
    import sys

    from gui import worker as worker_module

    trims = []
    monkeypatch.setattr(worker_module, "release_free_memory", lambda: trims.append(threading.current_thread()))
    res = []
    job = FunctionWorker(lambda: 42)
    job.result.connect(res.append)
    start_worker(job)
    qtbot.waitUntil(lambda: not active_threads(), timeout=10000)
    assert res == [42] and len(trims) == 1 and trims[0] is not threading.main_thread()
    monkeypatch.undo()
    worker_module.release_free_memory()  # the real one: no error, wherever it runs
    if sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc":
        assert worker_module._TRIM[0] is not None  # (found: not a silent no-op on glibc)


def test_training_worker_throttles_batch_signals(qtbot, monkeypatch):
    import core.engine
    from core.engine import BatchProgress, FitResult

    class FakeTrainer:
        def __init__(self, config, index=None, callbacks=(), stop=None, runs_dir=None, resume=None, extend=False):
            self.callbacks = list(callbacks)

        def fit(self):
            for step in range(1, 2001):
                for cb in self.callbacks:
                    cb.on_batch_end(BatchProgress(1, step, 2000, 1.0, 100.0, 1.0))
            return FitResult("completed", "", 1, 1.0, None)

    monkeypatch.setattr(core.engine, "Trainer", FakeTrainer)
    from core.config import RunConfig
    from gui import worker as worker_module

    trims = []  # (a training's thread hands its freed memory back too, as it ends)
    monkeypatch.setattr(worker_module, "release_free_memory", lambda: trims.append(threading.current_thread()))
    cfg = RunConfig()
    cfg.model.arch = TINY_ARCH

    def run() -> tuple[list[int], FitResult]:
        w = TrainingWorker(cfg, batch_interval_s=10.0)
        batches, fin = [], []
        w.batch.connect(lambda p: batches.append(p.step))  # (on the worker's thread: a list's append alone)
        w.finished.connect(fin.append)
        start_worker(w)
        qtbot.waitUntil(lambda: bool(fin), timeout=30000)
        qtbot.waitUntil(lambda: not active_threads(), timeout=10000)
        return batches, fin[0]

    batches, fin = run()
    assert fin.reason == "completed"
    assert batches[0] == 1 and batches[-1] == 2000 and len(batches) <= 3
    assert len(trims) == 1 and trims[0] is not threading.main_thread()
    # a run that ends inside an epoch (Stop): the newest batch, held back by the throttle, is sent before the end
    # (the bar stood a few batches behind the one last.pt holds)
    FakeTrainer.fit = lambda self: (
        [cb.on_batch_end(BatchProgress(1, s, 10, 1.0, 100.0, 1.0)) for s in range(1, 6) for cb in self.callbacks],
        FitResult("stopped", "", 0, None, None),
    )[1]
    assert run()[0] == [1, 5]

    def failing(self):
        for s in range(1, 6):
            for cb in self.callbacks:
                cb.on_batch_end(BatchProgress(1, s, 10, 1.0, 100.0, 1.0))
        raise RuntimeError("boom")

    FakeTrainer.fit = failing
    assert run() == ([1], None)  # a failed run's newest batch is not one last.pt holds: not sent after the error


def _run_stopped_after_epoch_1(folder: Path, runs_dir, epochs: int):
    """A headless run of `epochs` (batch 8) on `folder`, stopped after its first epoch (completed if 1)."""
    from core import data, engine
    from core.config import RunConfig

    cfg = RunConfig()
    cfg.data.root, cfg.data.image_size, cfg.data.num_workers = str(folder), 32, 0
    cfg.model.arch = TINY_ARCH
    cfg.train.epochs, cfg.train.batch_size, cfg.train.device = epochs, 8, "cpu"
    token = engine.StopToken()

    class StopAfterFirst(engine.Callback):
        def on_epoch_end(self, m):
            token.stop()

    first = engine.Trainer(cfg, data.scan(folder), callbacks=[StopAfterFirst()], stop=token, runs_dir=runs_dir).fit()
    # a run of one epoch completes: the stop comes after its last epoch
    assert first.reason == ("completed" if epochs == 1 else "stopped") and len(first.history) == 1
    return first


@pytest.mark.timeout(300)
def test_resuming_a_stopped_run_finishes_its_own_plan(qtbot, tiny_dataset, runs_dir):
    """Resume (from the Runs tab) continues to the run's planned epochs with its own settings, whatever the form."""
    first = _run_stopped_after_epoch_1(tiny_dataset, runs_dir, epochs=3)
    panel, tab = _setup(qtbot, tiny_dataset, runs_dir, epochs=2)  # the form says 2 epochs and batch 8
    tab.set_train_values({"batch_size": 16})
    tab.lr_edit.setText("0")  # a rate the run does not use: no reason to refuse its resume
    try:
        said = []
        with qtbot.waitSignal(tab.run_finished, timeout=280000) as done:
            assert tab.resume_run(first.run_dir), tab.banner.text()
            qtbot.waitUntil(lambda: tab.fit_info is not None, timeout=60000)  # the run has started
            said.append(tab.banner.text())
        said.append(tab.banner.text())
        result = done.args[0]
        assert result.reason == "completed", result.message
        assert result.run_dir == first.run_dir and [h["epoch"] for h in result.history] == [1, 2, 3]
        assert tab.fit_info.epochs == 3 and tab.fit_info.config["train"]["batch_size"] == 8
        # the form (batch 16) is not what runs: the app says what does while it runs, and the log keeps it
        note = f"Continuing with the run's own settings: {TINY_ARCH}, 32 px, batch 8,"
        assert any(t.startswith(note) and t.endswith("The form keeps yours for new runs.") for t in said), said
        assert note in tab.log.toPlainText() and tab.train_values()["batch_size"] == 16
        assert not tab.banner.text()  # cleared when the run ended
        assert tab.charts.epoch_points == 3
        x = tab.charts.batch_x  # the per-batch line covers epoch 1 (from batches.csv) too, in order
        assert x[0] < 1 and x == sorted(x) and x[-1] == 3
    finally:
        _cleanup(panel, tab)


def test_the_offline_weights_dialog_speaks_to_the_window_not_the_command_line(qtbot, runs_dir, monkeypatch):
    panel = DatasetPanel()
    tab = TrainTab(panel, runs_dir=str(runs_dir))
    for w in (panel, tab):
        qtbot.addWidget(w)
    shown = []
    monkeypatch.setattr(QMessageBox, "exec", lambda box: shown.append(box.informativeText()) or 0)
    message = (
        "cannot download https://x/resnext50.pth (no route): no internet and no cached weights at /c/r.pth; "
        "on a computer with internet, download https://x/resnext50.pth and copy it to /c/r.pth (it is checked, then "
        "used offline); or choose a local weights file (--pretrained PATH), or train from scratch"
    )
    tab._offline_choice(None, message)
    assert shown[0].startswith("cannot download https://x/resnext50.pth (no route): no internet and no cached")
    assert "On a computer with internet, download https://x/resnext50.pth and copy it to /c/r.pth" in shown[0]
    assert "--pretrained" not in shown[0] and shown[0].endswith(
        "Or use a weights file you already have, or train from scratch."
    )
    # and in the log, where it stays once the dialog is gone (the log said nothing of it)
    assert "ImageNet weights unavailable: cannot download https://x/resnext50.pth (no route)" in tab.log.toPlainText()

    # "Train from scratch…": Pretrained goes to None and the user checks the model (chosen for its weights: a
    # ResNeXt-50 at 224 px started at once, hours an epoch on a CPU) before starting
    def choose_scratch(box):
        box.clickedButton = lambda: next(b for b in box.buttons() if b.text() == "Train from scratch…")
        return 0

    monkeypatch.setattr(QMessageBox, "exec", choose_scratch)
    tab.model_panel.pretrained_combo.setCurrentIndex(tab.model_panel.pretrained_combo.findData("imagenet"))
    started = []
    monkeypatch.setattr(tab, "start", lambda: started.append(True))
    tab._offline_choice(None, message)
    assert tab.model_panel.pretrained_choice() == "none" and not started
    assert tab.banner.kind == "info" and tab.banner.text().startswith("Pretrained is now None.")


def test_reset_to_recommended_resets_the_image_size_too(qtbot, runs_dir):
    panel = DatasetPanel()
    tab = TrainTab(panel, runs_dir=str(runs_dir))
    for w in (panel, tab):
        qtbot.addWidget(w)
    tab._had_saved_settings = True  # a second session: Reset used to leave size and augmentation as they were
    tab._defaults = {"device_type": "cpu", "image_size": 32, "augment": "none", "train": {"batch_size": 16}}
    panel.set_image_size(224)
    panel.set_augment("strong")
    tab.defaults_button.click()
    assert panel.image_size() == 32 and panel.data_config().augment == "none"
    assert tab.train_values()["batch_size"] == 16


def _form(panel, tab):
    return {**tab.train_values(), "image_size": panel.image_size(), "augment": panel.data_config().augment}


@pytest.mark.timeout(120)
def test_a_first_start_shows_the_recommended_values_before_torch_has_loaded(qtbot, runs_dir, monkeypatch):
    """The form showed 64 px / standard until the device was known, then jumped to the CPU's 32 px / none."""
    import gui.train_tab as train_tab
    from core.config import CPU_PRESET

    monkeypatch.setattr("core.config.likely_device_type", lambda: "cpu")
    panel = DatasetPanel()
    tab = TrainTab(panel, runs_dir=str(runs_dir))
    for w in (panel, tab):
        qtbot.addWidget(w)
    shown = _form(panel, tab)
    assert {k: shown[k] for k in CPU_PRESET} == CPU_PRESET
    tab.set_train_values({"epochs": 7})  # an edit made while torch loads is kept when the guess was right
    shown["epochs"] = 7
    cpu = train_tab._resolved_defaults("cpu")
    with qtbot.waitSignal(tab.status_message, timeout=5000) as said:
        tab._on_defaults(cpu)
    assert said.args == ["Recommended settings for CPU"]
    assert _form(panel, tab) == shown
    assert not tab.amp_check.isEnabled() and "GPUs only" in tab.amp_check.toolTip()  # it was ticked and enabled
    assert tab.amp_check.text() == "Mixed precision (GPU only)"  # greyed and ticked, "(AMP)" alone read as on
    assert not tab.amp_check.isChecked() and tab.train_values()["amp"] is True  # shown off; kept for a GPU
    tab._amp_available(True)
    assert tab.amp_check.isChecked()
    tab.amp_check.setChecked(False)  # the user's untick, on a GPU
    tab.form_box.setEnabled(False)  # (a run greys the form: what quitting then saves is still the untick)
    assert tab.train_values()["amp"] is False
    tab.form_box.setEnabled(True)
    tab._amp_available(True)  # (the device known once torch has loaded: the untick stays)
    assert not tab.amp_check.isChecked() and tab.train_values()["amp"] is False
    tab._amp_available(False)
    tab.set_train_values({"amp": True})  # (a saved run's settings, on the CPU)
    assert not tab.amp_check.isChecked() and tab.train_values()["amp"] is True
    # what the engine recommends for the CPU is what was shown, but for the edit
    assert {k: v for k, v in _form(panel, tab).items() if k != "epochs"} == {
        **{k: v for k, v in cpu["train"].items() if k in shown and k != "epochs"},
        "image_size": cpu["image_size"],
        "augment": cpu["augment"],
        "device": shown["device"],
    }


@pytest.mark.timeout(120)
def test_a_wrong_guess_of_the_device_is_corrected_when_it_is_known(qtbot, runs_dir, monkeypatch):
    import gui.train_tab as train_tab
    from core.config import CPU_PRESET, GPU_PRESET

    monkeypatch.setattr("core.config.likely_device_type", lambda: "cuda")  # a driver, but a CPU-only torch
    panel = DatasetPanel()
    tab = TrainTab(panel, runs_dir=str(runs_dir))
    for w in (panel, tab):
        qtbot.addWidget(w)
    assert {k: _form(panel, tab)[k] for k in GPU_PRESET} == GPU_PRESET
    with qtbot.waitSignal(tab.status_message, timeout=5000) as said:
        tab._on_defaults(train_tab._resolved_defaults("cpu"))
    assert said.args == ["Recommended settings for CPU applied"]
    assert {k: _form(panel, tab)[k] for k in CPU_PRESET} == CPU_PRESET


@pytest.mark.timeout(120)
def test_auto_with_imagenet_weights_takes_the_transfer_values_the_command_line_uses(qtbot, runs_dir, monkeypatch):
    """Auto + ImageNet on a CPU trained ResNeXt-50 at the small net's 32 px, batch 16, lr 0.003 (the command line
    and the README: a linear probe at 224 px). The values the user changed stay; Reset knows the weights too."""
    import gui.train_tab as train_tab
    from core.config import CPU_PRESET, TRANSFER_PRESET

    monkeypatch.setattr("core.config.likely_device_type", lambda: "cpu")
    panel = DatasetPanel()
    tab = TrainTab(panel, runs_dir=str(runs_dir))
    for w in (panel, tab):
        qtbot.addWidget(w)
    tab._on_defaults(train_tab._resolved_defaults("cpu"))
    mp = tab.model_panel
    mp.set_arch("auto")
    assert {k: _form(panel, tab)[k] for k in CPU_PRESET} == CPU_PRESET
    tab.set_train_values({"epochs": 4})  # the user's own
    with qtbot.waitSignal(tab.status_message, timeout=5000) as said:
        mp.pretrained_combo.setCurrentIndex(mp.pretrained_combo.findData("imagenet"))
    expected = {**TRANSFER_PRESET, "epochs": 4}
    assert {k: _form(panel, tab)[k] for k in TRANSFER_PRESET} == expected
    assert said.args[0].startswith("Auto with pretrained weights: 224 px") and "epochs" not in said.args[0]
    assert mp.model_config().mode == "linear" and "With pretrained weights: ResNeXt-50" in mp.description.text()
    with qtbot.waitSignal(mp.image_size_suggested, timeout=5000) as size:  # Auto chosen again keeps 224 px
        mp.preset_combo.activated.emit(mp.preset_combo.currentIndex())
    assert size.args == [224]
    mp.pretrained_combo.setCurrentIndex(mp.pretrained_combo.findData("file"))  # no file yet: still weights
    assert {k: _form(panel, tab)[k] for k in TRANSFER_PRESET} == expected
    with qtbot.waitSignal(tab.status_message, timeout=5000) as said:
        mp.pretrained_combo.setCurrentIndex(mp.pretrained_combo.findData("none"))  # back: the small net's values
    assert {k: _form(panel, tab)[k] for k in CPU_PRESET} == {**CPU_PRESET, "epochs": 4}
    assert "32 px" in said.args[0] and "no augmentation" in said.args[0]
    assert "A small CIFAR-style ResNeXt" in mp.description.text()
    mp.pretrained_combo.setCurrentIndex(mp.pretrained_combo.findData("imagenet"))
    tab.set_train_values({"epochs": 4, "lr": 0.05})
    tab.apply_recommended()  # "Reset to recommended values" with weights: the transfer values, all of them
    assert {k: _form(panel, tab)[k] for k in TRANSFER_PRESET} == TRANSFER_PRESET
    mp.set_arch("resnext11_4x8d")  # a chosen architecture: its values are the user's, weights or none
    tab.set_train_values({"lr": 0.05})
    mp.pretrained_combo.setCurrentIndex(mp.pretrained_combo.findData("none"))
    assert _form(panel, tab)["lr"] == 0.05 and _form(panel, tab)["image_size"] == 224


def test_a_cpu_only_torch_beside_an_nvidia_driver_is_pointed_out(qtbot, runs_dir, monkeypatch):
    """pip installs the CPU build of PyTorch on Windows: a GPU owner trained on the CPU without knowing why."""
    import gui.train_tab as train_tab

    panel = DatasetPanel()
    tab = TrainTab(panel, runs_dir=str(runs_dir))
    for w in (panel, tab):
        qtbot.addWidget(w)
    cpu = train_tab._resolved_defaults("cpu")
    monkeypatch.setattr(train_tab, "_nvidia_driver", lambda: True)
    tab._on_defaults({**cpu, "cuda_build": True})  # a CUDA build that cannot use the driver: not this case
    assert "CPU only" not in tab.banner.text()
    tab._on_defaults({**cpu, "cuda_build": False})
    assert tab.banner.kind == "info" and "PyTorch installed here is built for the CPU only" in tab.banner.text()
    assert "PyTorch's CUDA build" in tab.log.toPlainText()


def test_a_long_device_line_does_not_widen_the_window(qtbot, runs_dir):
    """A linear probe's line names its feature-cache folder: the window grew past a 1400 px screen."""
    panel = DatasetPanel()
    tab = TrainTab(panel, runs_dir=str(runs_dir))
    for w in (panel, tab):
        qtbot.addWidget(w)
    before = tab.minimumSizeHint().width()
    long = "Device: CPU (2 threads) · data: features: computing 600 backbone views in /" + "deep/" * 60 + "features"
    tab.device_label.setText(long)
    assert tab.minimumSizeHint().width() == before
    assert tab.device_label.text() == long and tab.device_label.toolTip() == long  # whole, where asked for


def test_a_deleted_run_takes_its_result_buttons_with_it(qtbot, tmp_path, runs_dir):
    panel = DatasetPanel()
    tab = TrainTab(panel, runs_dir=str(runs_dir))
    for w in (panel, tab):
        qtbot.addWidget(w)
    run = tmp_path / "run"
    run.mkdir()
    tab.run_dir, tab.best_checkpoint = str(run), str(run / "best.pt")
    tab.result_label.setText(
        "<b>Stopped by you</b>: after batch 2 of 30. <i>Resume (Ctrl+Shift+R) goes on from last.pt.</i><br>Best epoch 1"
    )
    for b in (tab.evaluate_button, tab.predict_button, tab.open_button):
        b.setEnabled(True)
    tab.forget_runs([str(tmp_path / "another")])
    assert tab.evaluate_button.isEnabled()  # not the shown run: nothing changes
    tab.forget_runs([str(run)])
    assert not any(b.isEnabled() for b in (tab.evaluate_button, tab.predict_button, tab.open_button))
    assert tab.run_dir is None and "deleted" in tab.result_label.text()
    # what the run offered went with it: the box says nothing of resuming it any more (it did, above "deleted")
    said = tab.result_label.text()
    assert said.startswith("<b>Stopped by you</b>: after batch 2 of 30.<br>") and "Resume" not in said


@pytest.mark.timeout(300)
def test_resuming_a_run_whose_data_moved_asks_where_it_is(
    qtbot, tiny_dataset, runs_dir, tmp_path, monkeypatch, answer_question
):
    import shutil

    from PySide6.QtWidgets import QFileDialog

    old = Path(shutil.copytree(tiny_dataset, tmp_path / "photos"))
    first = _run_stopped_after_epoch_1(old, runs_dir, epochs=2)
    new = old.rename(tmp_path / "photos-moved")
    panel, tab = _setup(qtbot, tiny_dataset, runs_dir)
    try:
        asked = answer_question("Cancel")
        assert not tab.resume_run(first.run_dir) and tab.state == IDLE
        assert str(old) in asked[0][0] and "is not there any more" in tab.banner.text()
        assert asked[0][2] == "Resume training" and tab.banner.text().startswith("Not resumed:")
        asked = answer_question("Cancel")  # Runs ▸ Train more epochs…: in its own words ("Not resumed" was wrong)
        assert not tab.resume_run(first.run_dir, epochs=3) and asked[0][2] == "Train more epochs"
        assert tab.banner.text().startswith("No more epochs trained:")
        answer_question("Choose folder…")
        monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(new))
        with qtbot.waitSignal(tab.run_finished, timeout=280000) as done:
            assert tab.resume_run(first.run_dir), tab.banner.text()
        assert done.args[0].reason == "completed", done.args[0].message
        assert [h["epoch"] for h in done.args[0].history] == [1, 2]
    finally:
        _cleanup(panel, tab)


@pytest.mark.timeout(300)
def test_a_refused_resume_is_not_called_a_failed_training(qtbot, tiny_dataset, runs_dir, monkeypatch):
    """A run another process holds was reported as "Training failed" in a critical dialog and the Result box."""
    from core.runs import RunLock

    first = _run_stopped_after_epoch_1(tiny_dataset, runs_dir, epochs=2)
    held = RunLock(first.run_dir)
    assert held.acquire()  # as a resume of it running in another process does
    shown = []
    monkeypatch.setattr(QMessageBox, "critical", lambda parent, title, text, *a, **k: shown.append((title, text)))
    panel, tab = _setup(qtbot, tiny_dataset, runs_dir)
    try:
        with qtbot.waitSignal(tab.state_changed, timeout=60000, check_params_cb=lambda s: s == IDLE):
            assert tab.resume_run(first.run_dir)
        assert shown[0][0] == "Could not resume the run" and "locked" in shown[0][1]
        assert "Could not resume the run." in tab.result_label.text()
    finally:
        held.release()
        _cleanup(panel, tab)


@pytest.mark.timeout(300)
def test_a_hand_edited_config_with_odd_sections_still_resumes(qtbot, tiny_dataset, runs_dir):
    """ "train": "x" in config.json raised AttributeError in the Resume button's slot; "dataset": [1] in the trainer."""
    first = _run_stopped_after_epoch_1(tiny_dataset, runs_dir, epochs=2)
    cfg_path = Path(first.run_dir) / "config.json"
    doc = json.loads(cfg_path.read_text())
    doc.update(train="x", data=[1], dataset=[1])
    cfg_path.write_text(json.dumps(doc))
    panel, tab = _setup(qtbot, tiny_dataset, runs_dir)
    try:
        with qtbot.waitSignal(tab.run_finished, timeout=280000) as done:
            assert tab.resume_run(first.run_dir), tab.banner.text()
        assert done.args[0].reason == "completed", done.args[0].message  # last.pt holds the settings it needs
        assert [h["epoch"] for h in done.args[0].history] == [1, 2]
    finally:
        _cleanup(panel, tab)


@pytest.mark.timeout(300)
def test_a_resume_charts_the_epochs_last_pt_holds_not_the_rows_written_after_it(qtbot, tiny_dataset, runs_dir):
    """A run killed between two saves (train.save_every_s apart) has history rows after its last.pt; the resume
    goes on from last.pt, and the chart did not drop them: epoch 2 showed twice."""
    from core import runs

    first = _run_stopped_after_epoch_1(tiny_dataset, runs_dir, epochs=3)
    row = {**first.history[0], "epoch": 2}
    runs.append_history(first.run_dir, row)  # trained, not saved: the process died before its save came
    assert [int(r["epoch"]) for r in runs.read_history(first.run_dir)] == [1, 2]
    panel, tab = _setup(qtbot, tiny_dataset, runs_dir)
    try:
        with qtbot.waitSignal(tab.run_finished, timeout=280000) as done:
            assert tab.resume_run(first.run_dir), tab.banner.text()
            assert tab.charts.epochs == [1]
        assert done.args[0].reason == "completed", done.args[0].message
        assert [h["epoch"] for h in done.args[0].history] == [1, 2, 3] and tab.charts.epochs == [1, 2, 3]
    finally:
        _cleanup(panel, tab)


@pytest.mark.timeout(300)
def test_resume_of_a_run_finished_elsewhere_since_it_stopped_here_is_refused(qtbot, tiny_dataset, runs_dir):
    """Stopped here, then finished by `train --resume` in a terminal: Resume was still offered, and trained one more
    epoch unasked (its cosine laid anew, its best.pt at stake)."""
    from core import runs

    first = _run_stopped_after_epoch_1(tiny_dataset, runs_dir, epochs=2)
    panel, tab = _setup(qtbot, tiny_dataset, runs_dir)
    try:
        tab.result, tab.run_dir = first, first.run_dir  # as this tab's own Stop left it
        tab._set_state(IDLE)
        assert tab.resume_button.isEnabled()
        runs.write_status(first.run_dir, "completed", reason="completed", epochs_done=2)  # the terminal's resume
        tab._set_state(IDLE)
        assert not tab.resume_button.isEnabled()
        assert not tab.resume_run(first.run_dir) and tab.state == IDLE
        assert "has finished since it stopped here (2 epochs, completed)" in tab.banner.text()
        assert "Train more epochs" in tab.banner.text()
        assert runs.read_status(first.run_dir)["epochs_done"] == 2
    finally:
        _cleanup(panel, tab)


def test_a_resume_goes_to_the_runs_plan_or_one_epoch_past_what_it_holds(qtbot, tiny_dataset, runs_dir, monkeypatch):
    """The epochs a Resume asks of the trainer: the run's plan; one more than last.pt holds where config.json gives
    none (damaged), never 0 (a run with no plan and no epoch saved asked for 0, which the trainer refuses)."""
    from core import runs

    panel, tab = _setup(qtbot, tiny_dataset, runs_dir, epochs=7)  # (the form's epochs are not the run's)
    asked = []
    monkeypatch.setattr(tab, "_launch", lambda config, index, **kw: asked.append(config.train.epochs))
    try:
        run = Path(runs_dir) / "r"
        run.mkdir()
        (run / "last.pt").write_bytes(b"x")
        for plan, done, status, want in (
            (5, 2, "stopped", 5),
            (5, 5, "failed", 5),
            (None, 0, "failed", 1),
            (None, 3, "stopped", 4),
            (3, 5, "stopped", 6),
        ):
            (run / "config.json").write_text(json.dumps({"train": {"epochs": plan}} if plan else {}))
            runs.write_status(run, status, epochs_done=done)
            assert tab.resume_run(str(run)), tab.banner.text()
            assert asked[-1] == want, (plan, done, asked)
    finally:
        _cleanup(panel, tab)


@pytest.mark.timeout(300)
def test_resuming_a_run_that_failed_after_its_last_epoch_only_makes_its_end(qtbot, tiny_dataset, runs_dir):
    """All its planned epochs done, it failed in its final evaluation: Resume trained one more epoch unasked (its
    cosine laid anew, its best.pt at stake), where `train --resume` only makes the run's end."""
    from core import runs

    first = _run_stopped_after_epoch_1(tiny_dataset, runs_dir, epochs=1)  # completed: made to look failed in its end
    (Path(first.run_dir) / "evaluation.json").unlink(missing_ok=True)
    runs.write_status(first.run_dir, "failed", reason="failed", epochs_done=1)
    best = (Path(first.run_dir) / "best.pt").read_bytes()
    panel, tab = _setup(qtbot, tiny_dataset, runs_dir, epochs=5)  # (the form's epochs are not the run's)
    try:
        with qtbot.waitSignal(tab.run_finished, timeout=280000) as done:
            assert tab.resume_run(first.run_dir), tab.banner.text()
        assert done.args[0].reason == "completed", done.args[0].message
        assert [h["epoch"] for h in done.args[0].history] == [1]
        assert [r["epoch"] for r in runs.read_history(first.run_dir)] == [1]
        status = runs.read_status(first.run_dir)
        assert status["status"] == "completed" and status["epochs_done"] == 1
        assert json.loads((Path(first.run_dir) / "config.json").read_text())["train"]["epochs"] == 1
        assert (Path(first.run_dir) / "best.pt").read_bytes() == best
    finally:
        _cleanup(panel, tab)


@pytest.mark.timeout(300)
def test_a_finished_run_trains_to_the_epochs_asked_for(qtbot, tiny_dataset, runs_dir):
    first = _run_stopped_after_epoch_1(tiny_dataset, runs_dir, epochs=1)  # completed
    panel, tab = _setup(qtbot, tiny_dataset, runs_dir)
    try:
        assert not tab.resume_run(first.run_dir, epochs=1) and "ask for more than that" in tab.banner.text()
        with qtbot.waitSignal(tab.run_finished, timeout=280000) as done:
            assert tab.resume_run(first.run_dir, epochs=3), tab.banner.text()
        assert done.args[0].reason == "completed", done.args[0].message
        assert [h["epoch"] for h in done.args[0].history] == [1, 2, 3] and tab.fit_info.epochs == 3
    finally:
        _cleanup(panel, tab)


def _fit_info(**kw):
    """A FitInfo of a small CPU run for the tab's handlers; `kw` replaces fields."""
    from core.engine import FitInfo

    fields = dict(
        run_dir="/runs/r",
        device="cpu",
        device_name="CPU",
        arch="resnext11_2x4d",
        num_classes=3,
        class_names=["a", "b", "c"],
        epochs=3,
        start_epoch=0,
        steps_per_epoch=30,
        train_size=480,
        val_size=120,
        test_size=0,
        params=10,
        loader_mode="cached",
        config={},
    )
    return FitInfo(**{**fields, **kw})


def test_a_resumed_epoch_shows_where_it_goes_on(qtbot):
    tab = TrainTab()
    qtbot.addWidget(tab)
    tab.ensure_charts()
    tab._on_fit_started(_fit_info(start_epoch=1, resume_step=14))
    assert "Going on in epoch 2 after batch 14 of 30, where it was stopped" in tab.log.toPlainText()
    tab._on_fit_started(_fit_info(start_epoch=1, resume_step=30))  # stopped while validating: "after batch 30 of 30"
    assert "Going on with the validation of epoch 2, where it was stopped" in tab.log.toPlainText()
    tab._on_fit_started(_fit_info(start_epoch=1, resume_step=14))
    tab._on_epoch_started(2)
    assert tab.batch_label.text() == "Batch 14 / 30" and tab.batch_bar.value() == 14  # not "Batch 0" first
    tab._on_epoch_started(3)
    assert tab.batch_label.text() == "Batch 0 / 30"
    # a linear probe's feature pass ("epoch 0") is not shown as training
    from core.engine import BatchProgress

    tab._on_epoch_started(0)
    tab._on_batch(BatchProgress(0, 8, 50, 1.5, 40.0, 10.0))
    assert tab.epoch_label.text() == "Computing features" and tab.batch_label.text() == "Feature batch 8 / 50"
    assert tab.charts.batch_x == []  # nothing drawn (left of epoch 0), even with a loss
    tab._on_epoch_started(1)
    tab._on_batch(BatchProgress(1, 3, 30, 1.5, 40.0, 10.0))
    assert tab.charts.batch_x == [pytest.approx(0.1)]  # batch 3 of 30 of the first epoch


def test_the_log_says_when_the_training_accuracy_is_of_mixed_labels(qtbot):
    from core.engine import EpochMetrics

    tab = TrainTab()
    qtbot.addWidget(tab)
    tab.ensure_charts()
    for config, word in (
        ({"train": {"mixup": 0.0, "cutmix": 0.0}}, "acc"),
        ({"train": {"cutmix": 1.0}}, "acc (mixed labels)"),
        ({"train": {"cutmix": 1.0}, "model": {"mode": "linear"}}, "acc"),  # (a probe trains without them)
    ):
        tab._on_fit_started(_fit_info(config=config))
        tab._on_epoch_end(EpochMetrics(1, 0.7, 0.61, 0.2, 1.0, 0.003, 1.0))
        assert (
            tab.log.toPlainText()
            .splitlines()[-1]
            .split("  ", 1)[1]
            .startswith(f"Epoch 1: train loss 0.7000, {word} 61.0%")
        )
        # where the line wraps, a value stays with its name (no-break spaces, copied as spaces)
        shown = tab.log.document().lastBlock().text()
        assert f"loss\u00a00.7000, {word.replace(' ', chr(0xA0))}\u00a061.0%" in shown and "\u00a0s" in shown


def test_the_progress_bars_stay_put_as_the_numbers_grow(qtbot):
    """The bars' left edge moved as "Batch 9 / 30" became "Batch 10 / 30" (and epoch 9 became 10)."""
    from PySide6.QtWidgets import QApplication

    from core.engine import BatchProgress

    tab = TrainTab()
    qtbot.addWidget(tab)
    tab.ensure_charts()
    tab.resize(1200, 800)
    tab.show()
    tab._on_epoch_started(9)
    tab._on_batch(BatchProgress(9, 9, 30, 1.0, 40.0, 10.0))
    QApplication.processEvents()
    left = tab.batch_bar.x(), tab.epoch_bar.x()
    tab._on_epoch_started(10)
    tab._on_batch(BatchProgress(10, 10, 30, 1.0, 40.0, 10.0))
    QApplication.processEvents()
    assert tab.batch_label.text() == "Batch 10 / 30" and (tab.batch_bar.x(), tab.epoch_bar.x()) == left


def _wheel(widget, notches: int = -3) -> None:
    """A mouse wheel turned over `widget` (negative: towards the user, which scrolls a page down)."""
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    centre = QPointF(widget.rect().center())
    event = QWheelEvent(
        centre,
        QPointF(widget.mapToGlobal(centre.toPoint())),
        QPoint(0, 0),
        QPoint(0, 120 * notches),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(widget, event)


def test_the_wheel_over_a_setting_scrolls_the_form_and_leaves_the_setting_alone(qtbot, runs_dir):
    """Scrolling the settings with the pointer over the LR schedule turned it to "none", unseen. A field takes
    the wheel only once clicked or tabbed into; until then the wheel scrolls the form (a real scroll bar here)."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QScrollArea

    panel = DatasetPanel()
    tab = TrainTab(panel, runs_dir=str(runs_dir))
    for w in (panel, tab):
        qtbot.addWidget(w)
    tab.resize(1000, 420)
    tab.show()
    scroll = next(s for s in tab.findChildren(QScrollArea) if s.widget().isAncestorOf(tab.scheduler_combo))
    bar = scroll.verticalScrollBar()
    assert bar.maximum() > 0  # (the form is taller than the window here)
    schedule, epochs, top = tab.scheduler_combo.currentText(), tab.epochs_spin.value(), bar.value()
    _wheel(tab.scheduler_combo)
    _wheel(tab.epochs_spin)
    assert (tab.scheduler_combo.currentText(), tab.epochs_spin.value()) == (schedule, epochs)
    assert bar.value() > top
    share = panel.val_spin.value()
    _wheel(panel.val_spin)  # (the Dataset tab's form too)
    assert panel.val_spin.value() == share
    fields = (tab.scheduler_combo, tab.epochs_spin, panel.val_spin)
    assert {f.focusPolicy() for f in fields} == {Qt.FocusPolicy.StrongFocus}  # (not given focus by the wheel)
    tab.activateWindow()
    tab.epochs_spin.setFocus()  # clicked or tabbed into: the wheel is the field's again
    qtbot.waitUntil(tab.epochs_spin.hasFocus, timeout=5000)
    _wheel(tab.epochs_spin, notches=1)
    assert tab.epochs_spin.value() == epochs + 1


def _one_class_folder_and_tab(qtbot, tmp_path, tiny_dataset, runs_dir):
    """A folder holding one class of the tiny set (`one`/only), and a Train tab on a Dataset panel."""
    one = tmp_path / "one" / "only"
    shutil.copytree(next(p for p in tiny_dataset.iterdir() if p.is_dir()), one)
    panel = DatasetPanel()
    tab = TrainTab(panel, runs_dir=str(runs_dir))
    for w in (panel, tab):
        qtbot.addWidget(w)
    return one, panel, tab


def _imagenet_start_with(qtbot, tab, monkeypatch, download) -> list:
    """ImageNet weights chosen in the tab, `download` standing in for their download; the list gets the data set
    of every run it launches (none is)."""
    import gui.train_tab as tt

    monkeypatch.setattr(tt, "_download_weights", download)
    launched = []
    monkeypatch.setattr(tab, "_launch", lambda config, index, resume=None: launched.append(index))
    mp = tab.model_panel
    qtbot.waitUntil(lambda: mp.pretrained_combo.findData("imagenet") >= 0, timeout=60000)
    mp.pretrained_combo.setCurrentIndex(mp.pretrained_combo.findData("imagenet"))
    return launched


@pytest.mark.timeout(120)
def test_a_data_set_changed_while_weights_download_is_checked_again(
    qtbot, tmp_path, tiny_dataset, runs_dir, monkeypatch
):
    """Start with ImageNet weights checks the data set, then downloads; a scan that ended meanwhile (here, of a
    one-class folder) was launched unchecked: a one-output model, its loss always 0."""

    one, panel, tab = _one_class_folder_and_tab(qtbot, tmp_path, tiny_dataset, runs_dir)
    with qtbot.waitSignal(panel.scan_finished, timeout=60000):
        panel.load_folder(str(tiny_dataset))
    release = threading.Event()

    def download(arch, progress=None):
        release.wait(30)
        return str(tmp_path / "weights.pth")

    launched = _imagenet_start_with(qtbot, tab, monkeypatch, download)
    assert tab.start() and tab._download_worker is not None
    with qtbot.waitSignal(panel.scan_finished, timeout=60000):
        panel.load_folder(str(one.parent))
    release.set()
    qtbot.waitUntil(lambda: tab._download_worker is None, timeout=30000)
    assert launched == [] and tab.state == IDLE
    assert "changed while the weights downloaded" in tab.banner.text()


@pytest.mark.timeout(120)
def test_start_waits_for_the_scan_of_the_folder_being_opened(qtbot, tmp_path, tiny_dataset, runs_dir, monkeypatch):
    """Start as another folder was being scanned trained on the data set open before, though the folder box named
    the new one (and the summary then described the new one beside that run)."""
    import core.data as data

    other = shutil.copytree(tiny_dataset, tmp_path / "other")
    panel, tab = _setup(qtbot, tiny_dataset, runs_dir)
    launched = []
    monkeypatch.setattr(tab, "_launch", lambda config, index, resume=None: launched.append((config, index)))
    release, real_scan = threading.Event(), data.scan

    def slow_scan(*a, **k):  # the scan of the new folder lasts until the test lets it end
        release.wait(30)
        return real_scan(*a, **k)

    monkeypatch.setattr(data, "scan", slow_scan)
    try:
        assert tab.start_button.isEnabled()
        panel.load_folder(str(other))
        assert not tab.start_button.isEnabled()
        assert tab.start_button.toolTip() == (
            f"The Dataset tab is checking the images of {other}; training can start once it has"
        )
        assert not tab.start() and launched == []  # (F5, the menu: refused, and said)
        assert tab.banner.text().startswith(f"The Dataset tab is checking the images of {other}")
        with qtbot.waitSignal(panel.scan_finished, timeout=60000):
            release.set()
        assert tab.start_button.isEnabled() and not tab.start_button.toolTip().startswith("The Dataset tab")
        assert tab.banner.text() == ""  # (the refusal went with the scan it was about)
        assert tab.start() and launched[0][1].root == str(other) == launched[0][0].data.root
    finally:
        release.set()
        _cleanup(panel, tab)


@pytest.mark.timeout(120)
def test_stop_during_the_weights_download_starts_no_run(qtbot, tmp_path, tiny_dataset, runs_dir, monkeypatch):
    """Stop (and the dialog's Cancel) were ignored: the download went on, and the run started when it ended."""
    from core import models

    _, panel, tab = _one_class_folder_and_tab(qtbot, tmp_path, tiny_dataset, runs_dir)
    with qtbot.waitSignal(panel.scan_finished, timeout=60000):
        panel.load_folder(str(tiny_dataset))
    started, release, tokens = threading.Event(), threading.Event(), []

    def download(arch, progress=None, stop=None):  # ends at the stop, as the real one does, or at `release`
        tokens.append(stop)
        started.set()
        while not release.wait(0.01):
            if stop is not None and stop.stopped and not tokens[1:]:
                raise models.DownloadStopped()
        return str(tmp_path / "weights.pth")

    launched = _imagenet_start_with(qtbot, tab, monkeypatch, download)
    assert tab.start() and started.wait(10)
    tab.stop()
    qtbot.waitUntil(lambda: tab._download_worker is None, timeout=10000)
    assert launched == [] and tab.state == IDLE and tokens[0] is not None
    assert tab.log.toPlainText().splitlines()[-1].endswith("  Download cancelled")
    tokens.append("ignores the stop")  # one that ends with its file just as the Stop comes: no run either
    started.clear()
    assert tab.start() and started.wait(10)
    tab.stop()
    release.set()
    qtbot.waitUntil(lambda: tab._download_worker is None, timeout=10000)
    assert launched == [] and tab.state == IDLE
    assert tab.log.toPlainText().splitlines()[-1].endswith("  Download cancelled")


def test_the_real_download_is_given_the_stop(tmp_path, monkeypatch):
    import gui.train_tab as tt
    from core import models

    class Stopped:
        stopped = True

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(models.urllib.request, "urlopen", lambda *a, **k: _FakeResponse())
    with pytest.raises(models.DownloadStopped):
        tt._download_weights("resnet18", stop=Stopped())
    assert not list(tmp_path.rglob("*.pth"))


class _FakeResponse:
    headers = {"Content-Length": "4"}

    def read(self, n):
        return b"data"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.timeout(120)
def test_starts_refusal_goes_when_another_data_set_is_opened(qtbot, tmp_path, tiny_dataset, runs_dir):
    """ "The data set cannot be used" stayed above the form after a good folder had been opened."""
    one, panel, tab = _one_class_folder_and_tab(qtbot, tmp_path, tiny_dataset, runs_dir)
    with qtbot.waitSignal(panel.scan_finished, timeout=60000):
        panel.load_folder(str(one.parent))
    # said on the Train tab before Start is pressed (it looked ready to train), and again when it is
    assert tab.banner.kind == "error" and tab.banner.text().startswith("The data set cannot be used (Dataset tab): ")
    assert not tab.start() and "The data set cannot be used" in tab.banner.text()
    # and Start is not offered (it looked ready beside the red banner); its tooltip says why
    tip = tab.start_button.toolTip()
    assert not tab.start_button.isEnabled() and tip.startswith("The open data set cannot be trained on: ")
    assert "only one class" in tip
    with qtbot.waitSignal(panel.scan_finished, timeout=60000):
        panel.load_folder(str(tiny_dataset))
    assert panel.index is not None and tab.banner.text() == ""
    assert tab.start_button.isEnabled() and tab.start_button.toolTip().startswith("Train a new model")
    tab.banner.set_info("something else")  # other messages are not the data set's to clear
    panel.set_image_size(48)
    assert tab.banner.text() == "something else"


@pytest.mark.timeout(120)
def test_a_preset_that_changes_the_image_size_says_so_in_the_status_bar(qtbot, runs_dir):
    """Choosing ResNeXt-50 set the Dataset tab's Image size from 32 to 224 px without a word (the field is on
    another tab); now the status bar names the size, the model and the tab."""
    panel = DatasetPanel()
    tab = TrainTab(panel, runs_dir=str(runs_dir))
    for w in (panel, tab):
        qtbot.addWidget(w)
    mp = tab.model_panel
    qtbot.waitUntil(lambda: mp.preset_combo.findData("resnext50_32x4d") >= 0, timeout=60000)  # presets load
    panel.set_image_size(32)
    mp.set_arch("resnext50_32x4d")
    with qtbot.waitSignal(tab.status_message, timeout=5000) as said:
        mp.preset_combo.activated.emit(mp.preset_combo.currentIndex())
    assert panel.image_size() == 224
    assert said.args == ["Image size set to 224 px for ResNeXt-50 32×4d (Dataset tab)"]
    with qtbot.assertNotEmitted(tab.status_message):  # the same size again: nothing changed, nothing to say
        mp.preset_combo.activated.emit(mp.preset_combo.currentIndex())
    assert panel.image_size() == 224


def test_the_split_seed_and_the_training_seed_are_told_apart(qtbot, runs_dir):
    """The Dataset tab and the Train tab each had a field labelled "Seed": one draws the split, the other the
    initialisation and shuffling."""
    panel = DatasetPanel()
    tab = TrainTab(panel, runs_dir=str(runs_dir))
    for w in (panel, tab):
        qtbot.addWidget(w)

    def label(field) -> str:
        return field.parentWidget().layout().labelForField(field).text().replace("&", "")

    assert label(panel.seed_spin) == "Split seed" and "split" in panel.seed_spin.toolTip()
    assert label(tab.seed_spin) == "Training seed" and "shuffling" in tab.seed_spin.toolTip()


def test_the_scans_problems_and_images_lost_while_training_are_said(qtbot, tmp_path):
    """The log said nothing of the unusable files and the image with two labels that the CLI warns of before
    training, and the Result box only "Training completed" when images had vanished during the run."""
    from core.engine import FitResult

    tab = TrainTab()
    qtbot.addWidget(tab)
    tab.ensure_charts()
    notes = ["2 files in the class folders could not be used and are left out"]
    config = {"data": {"root": str(tmp_path / "photos")}}
    tab._on_fit_started(_fit_info(run_dir=str(tmp_path / "r"), data_notes=notes, config=config))
    # the folder named: read later, the Dataset tab may show another one
    assert f"⚠ {notes[0]}: the Dataset tab's Problems list for photos names them" in tab.log.toPlainText()
    tab._on_fit_started(_fit_info(run_dir=str(tmp_path / "r"), data_notes=notes, config={"data": {"root": "/"}}))
    assert f"⚠ {notes[0]}: the Dataset tab's Problems list for / names them" in tab.log.toPlainText()  # (not "for ")
    lost = [(str(tmp_path / "a" / "1.jpg"), "file not found"), (str(tmp_path / "b" / "2.jpg"), "truncated image")]
    tab._on_finished(FitResult("completed", "", 1, 0.5, str(tmp_path / "r"), unreadable=lost))
    assert "2 images could not be read and were left out (see the log)." in tab.result_label.text()
    tab._on_finished(FitResult("completed", "", 1, 0.5, str(tmp_path / "r")))
    assert "could not be read" not in tab.result_label.text()
    # best.pt evaluated again gives the best epoch's 5 of 6: one line, though history.csv kept it in float32
    history = [{"epoch": 1, "val_acc": 0.8333333134651184, "train_loss": 0.5}]
    ev = {"split": "val", "accuracy": 5 / 6, "num_samples": 6}
    tab._on_finished(FitResult("completed", "", 1, 0.83, str(tmp_path / "r"), history=history, evaluation=ev))
    text = tab.result_label.text()
    assert "validation accuracy 83.3% (6 images)" in text and "accuracy of best.pt" not in text
    ev["accuracy"] = 4 / 6  # another number: said on a line of its own
    tab._on_finished(FitResult("completed", "", 1, 0.83, str(tmp_path / "r"), history=history, evaluation=ev))
    assert "Validation accuracy of best.pt: 66.7% (6 images)" in tab.result_label.text()


@pytest.mark.timeout(120)
def test_resume_of_a_run_training_in_another_program_is_refused_before_anything_is_cleared(
    qtbot, tiny_dataset, runs_dir
):
    """`train --resume RUN` in a terminal while this tab showed the run stopped: Resume cleared the run's result,
    curves and buttons before the trainer refused it ("Could not resume the run. See the log.")."""
    import os
    import subprocess
    import sys

    from core import runs

    first = _run_stopped_after_epoch_1(tiny_dataset, runs_dir, epochs=2)
    panel, tab = _setup(qtbot, tiny_dataset, runs_dir)
    hold = (  # the terminal's trainer: it holds the run's lock
        "import sys, time\nfrom core.runs import RunLock\nlock = RunLock(sys.argv[1])\nassert lock.acquire()\n"
        "print('held', flush=True)\ntime.sleep(60)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    other = subprocess.Popen([sys.executable, "-c", hold, first.run_dir], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert other.stdout.readline().strip() == "held"
        tab.result, tab.run_dir = first, first.run_dir  # as this tab's own Stop left it
        tab._set_state(IDLE)
        shown = tab.result_label.text()
        runs.write_status(first.run_dir, "running", epochs_done=1)  # the terminal's resume, in process `other`
        status = json.loads((Path(first.run_dir) / "status.json").read_text())
        status["pid"] = other.pid
        (Path(first.run_dir) / "status.json").write_text(json.dumps(status))
        assert not tab.resume_run(first.run_dir) and tab.state == IDLE
        assert tab.banner.text() == (
            f"{Path(first.run_dir).name} is training in another program (process {other.pid}): stop it there "
            "before resuming it here."
        )
        assert tab.result_label.text() == shown and tab.run_dir == first.run_dir and tab.result is first
        (Path(first.run_dir) / ".paused").touch()  # held paused by another window
        assert not tab.resume_run(first.run_dir)
        assert f"is paused in another window (process {other.pid}): stop it there" in tab.banner.text()
    finally:
        other.kill()
        other.wait()
        _cleanup(panel, tab)
