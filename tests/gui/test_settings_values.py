"""Saved settings that are odd (hand-edited, another version's, a folder name that is not UTF-8): the window still
opens, each bad value costs only its own field, and every view has a name for screen readers."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from gui.app import settings


def hand_edit(lines: dict[str, dict[str, str]]) -> None:
    """Write the settings' INI file as a person editing it would ({section: {key: raw text}}), before it is read."""
    path = Path(settings().fileName())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "".join(f"[{sec}]\n" + "".join(f"{k}={v}\n" for k, v in keys.items()) for sec, keys in lines.items())
    )


@pytest.mark.parametrize(
    ("section", "key", "raw", "field", "expected"),
    [
        ("data", "val_percent", "12.5", lambda w: w.dataset_panel.val_spin.value(), 20),
        ("data", "val_percent", "abc", lambda w: w.dataset_panel.val_spin.value(), 20),
        ("data", "seed", "99999999999", lambda w: w.dataset_panel.seed_spin.value(), 2**31 - 1),
        ("data", "color_jitter", "abc", lambda w: w.dataset_panel.jitter_spin.value(), 0.0),
        ("train", "epochs", "99999999999", lambda w: w.train_tab.epochs_spin.value(), 10000),
        ("train", "seed", "99999999999", lambda w: w.train_tab.seed_spin.value(), 2**31 - 1),
        ("train", "early_stop_patience", "abc", lambda w: w.train_tab.patience_spin.value(), 0),
        ("data", "recent", '"[1]"', lambda w: w.dataset_panel.recent_folders(), []),
        ("data", "recent", '"[\\"/tmp\\", null]"', lambda w: w.dataset_panel.recent_folders(), ["/tmp"]),
        ("predict", "top_k", "1000000000000", lambda w: w.predict_tab.topk_spin.value(), 20),
        ("predict", "top_k", "abc", lambda w: w.predict_tab.topk_spin.value(), 5),
    ],
)
def test_one_odd_saved_value_does_not_stop_the_window_opening(qtbot, window, section, key, raw, field, expected):
    """Each of these raised during start-up (ValueError, OverflowError past 32 bits, TypeError in the recent list),
    on every launch; top_k out of range left the Predict tab a placeholder for good."""
    hand_edit({section: {key: raw}})
    w = window(load_initial=False)
    assert w.predict_tab is not None  # (not "This tab is not available in this build (OverflowError: )")
    assert field(w) == expected


def test_a_bad_training_value_resets_only_its_own_field(qtbot, runs_dir):
    """The first bad key made set_train_values raise, and every later one (batch size, lr, seed) went back to the
    form's defaults without a word."""
    from gui.dataset_panel import DatasetPanel
    from gui.train_tab import TrainTab

    hand_edit(
        {
            "train": {
                "epochs": "abc",
                "batch_size": "48",
                "lr": "0.02",
                "optimizer": "sgd",
                "label_smoothing": "7",
                "early_stop_patience": "99999999999",
                "class_weights": "maybe",
                "seed": "7",
            }
        }
    )
    panel = DatasetPanel()
    tab = TrainTab(panel, runs_dir=str(runs_dir))
    for w in (panel, tab):
        qtbot.addWidget(w)
    assert tab.epochs_spin.value() == 10  # its default
    assert tab.batch_spin.value() == 48 and tab.lr_edit.text() == "0.02" and tab.optimizer_combo.currentText() == "sgd"
    assert tab.smoothing_spin.value() == 0.5 and tab.patience_spin.value() == 1000  # brought into their ranges
    assert tab.class_weights_check.isChecked() is False and tab.seed_spin.value() == 7


def test_data_settings_are_read_one_by_one_and_brought_into_range(qtbot):
    from gui.dataset_panel import DatasetPanel

    hand_edit(
        {
            "data": {
                "val_percent": "abc",
                "test_percent": "10",
                "seed": "-3",
                "image_size": "5000",
                "color_jitter": "nan",
                "random_erasing": "0.4",
            }
        }
    )
    panel = DatasetPanel()
    qtbot.addWidget(panel)
    assert (panel.val_spin.value(), panel.test_spin.value(), panel.seed_spin.value()) == (20, 10, 0)
    assert panel.size_spin.value() == 1024 and panel.jitter_spin.value() == 0.0
    assert panel.erasing_spin.value() == pytest.approx(0.4)


def test_top_k_past_the_box_is_kept_for_a_model_with_more_classes(qtbot):
    from gui.predict_tab import PredictTab

    hand_edit({"predict": {"top_k": "1000000000000"}})
    w = PredictTab()
    qtbot.addWidget(w)
    assert (w.topk_spin.value(), w.topk_spin.maximum()) == (20, 20)
    w._fit_topk(30)  # a model of 30 classes: as many as it has
    assert (w.topk_spin.value(), w.topk_spin.maximum()) == (30, 30)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a name of bytes that are not UTF-8: Linux")
def test_a_folder_whose_name_is_not_utf8_is_reopened_from_the_settings(qtbot, tmp_path, dataset_factory):
    """Qt dropped the byte from the saved last folder and the recent list's entry: the next start opened the sample
    set, and choosing the entry said "no such folder"."""
    from gui.dataset_panel import DatasetPanel

    bad = os.fsdecode(os.fsencode(str(tmp_path)) + b"/photos-\xff")
    try:
        dataset_factory(Path(bad), {"red": 6, "blue": 6})
    except OSError:
        pytest.skip("this file system does not take such a name")
    panel = DatasetPanel()
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.scan_finished, timeout=60000):
        panel.load_folder(bad)
    assert panel.index is not None and panel.index.root == bad and not panel.last_error

    again = DatasetPanel()  # the next start
    qtbot.addWidget(again)
    with qtbot.waitSignal(again.scan_finished, timeout=60000):
        again.recent_combo.setCurrentIndex(0)
        again.recent_combo.activated.emit(0)  # the entry chosen, as a user would
    assert again.folder == bad and again.index is not None and again.index.root == bad
    assert again.last_error == "" and "no such folder" not in again.banner.text()
    assert "photos-\ufffd" in again.recent_combo.itemText(0)  # (shown with a mark where the byte is)
    assert again.last_folder() == bad

    from gui.main_window import MainWindow

    window = MainWindow(runs_dir=str(tmp_path / "runs"))  # the next start of the window opens it again
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: window.dataset_panel.index is not None, timeout=60000)
    assert window.dataset_panel.index.root == bad
    window.confirm_close = False


def test_the_last_folder_of_an_earlier_version_is_still_read(qtbot, tmp_path):
    from gui.dataset_panel import DatasetPanel

    settings().setValue("data/last_folder", str(tmp_path))  # (a plain value, as it was always written)
    assert DatasetPanel.last_folder() == str(tmp_path)


def test_the_dataset_tabs_lists_have_names_for_screen_readers(qtbot):
    from gui.dataset_panel import DatasetPanel

    panel = DatasetPanel()
    qtbot.addWidget(panel)
    names = {v: v.accessibleName() for v in (panel.class_table, panel.bad_table, panel.dup_list)}
    assert all(names.values()) and len(set(names.values())) == 3, names


@pytest.mark.parametrize("arch", ["resnext50_99999999999x4d", "resnext29_8x99999999999d", "resnext29_300x16d"])
def test_a_saved_custom_network_past_the_forms_range_is_not_taken_or_made_another(qtbot, window, arch):
    """A cardinality or width past 32 bits ended every start-up with an OverflowError; 300 groups, past the box's
    256, came back as resnext29_256x16d, a network of 159 M parameters that Start would have trained."""
    hand_edit({"model": {"arch": arch}})
    w = window(load_initial=False)
    assert w.train_tab.model_panel.arch() == "auto"


def test_a_half_typed_learning_rate_at_closing_keeps_the_rest_of_the_form(qtbot, runs_dir):
    """A learning rate left at "1e-" when the window closed made every Train and Model setting of the session be
    forgotten (save_settings stopped at the first field that was no number)."""
    from gui.dataset_panel import DatasetPanel
    from gui.train_tab import TrainTab

    settings().setValue("train/lr", "0.02")
    panel = DatasetPanel()
    tab = TrainTab(panel, runs_dir=str(runs_dir))
    for w in (panel, tab):
        qtbot.addWidget(w)
    tab.set_train_values({"epochs": 7, "optimizer": "sgd"})
    tab.model_panel.set_arch("resnext20_4x8d")
    tab.lr_edit.setText("1e-")
    tab.save_settings()
    s = settings()
    assert s.value("train/epochs") in (7, "7") and s.value("train/optimizer") == "sgd"
    assert s.value("model/arch") == "resnext20_4x8d"
    assert s.value("train/lr") in (0.02, "0.02")  # (the field half typed: its stored value stays)


def test_a_data_set_gone_since_the_last_time_is_said_and_a_gone_entry_keeps_the_open_one(
    qtbot, window, tmp_path, dataset_factory
):
    """The data set open last time, deleted since, was replaced by the sample without a word; picking it in the
    folder list then closed the data set that was open."""
    import shutil

    gone = dataset_factory(tmp_path / "gone", {"a": 4, "b": 4})
    w = window(data_dir=str(gone))
    qtbot.waitUntil(lambda: w.dataset_panel.index is not None, timeout=60000)
    w.close()
    shutil.rmtree(gone)
    w2 = window()
    panel = w2.dataset_panel
    qtbot.waitUntil(lambda: panel.index is not None, timeout=150000)
    assert f"{gone}, the data set open last time, is not there any more" in panel.banner.text()
    open_now = panel.index.root
    i = next(k for k in range(panel.recent_combo.count()) if panel.recent_path(k) == str(gone))
    panel.recent_combo.setCurrentIndex(i)
    panel.recent_combo.activated.emit(i)
    assert panel.index is not None and panel.index.root == open_now  # (still open)
    assert f"{gone}: no such folder. Still open:" in panel.banner.text()


def test_two_windows_keep_each_others_changes(qtbot, window):
    """With two windows of the app open, the one closed last wrote every value it had read at its start over what
    the other had changed meanwhile (the other window's epochs were lost). What this window changed stays its own,
    also a value it saved at Start and then set back."""
    from PySide6.QtCore import QSettings

    from gui.app import APP, ORG

    def other_window() -> QSettings:  # (another process's writes: not this one's record)
        return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORG, APP)

    settings().setValue("train/epochs", 9)
    settings().setValue("train/seed", 3)
    settings().setValue("train/batch_size", 16)
    w = window(load_initial=False)
    assert w.train_tab.epochs_spin.value() == 9
    w.train_tab.batch_spin.setValue(24)
    w.train_tab.save_settings()  # (as Start does)
    other_window().setValue("train/epochs", 5)
    other_window().setValue("train/batch_size", 64)
    w.train_tab.seed_spin.setValue(7)  # (this one's own change)
    w.train_tab.batch_spin.setValue(16)  # (and back to its start-up value after Start saved 24)
    w.close()
    values = {k: int(settings().value(f"train/{k}")) for k in ("epochs", "seed", "batch_size")}
    assert values == {"epochs": 5, "seed": 7, "batch_size": 16}
