"""Runs tab: lists run folders (CLI-made too), overlays curves per selected run, exports, asks before deleting."""

from __future__ import annotations

import csv
import json
import os
import socket
import warnings
from pathlib import Path

import pytest
import torch
from PIL import Image
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QDialog, QFileDialog, QInputDialog, QLabel, QMessageBox, QTreeWidgetItem

from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from core.runs import read_history, write_history
from gui.runs_tab import (
    COL_ACC,
    COL_ARCH,
    COL_DATA,
    COL_DATE,
    COL_NAME,
    COL_STATUS,
    COLUMNS,
    NUMERIC_COLUMNS,
    PATH_ROLE,
    RunsTab,
    short_run_labels,
)


def make_run(
    root: Path, name: str, status: str, epochs: int, started: float, best: bool = True, last: bool = True
) -> Path:
    """A run folder written by hand, as the trainer or the command line leaves it."""
    d = root / name
    d.mkdir(parents=True)
    cfg = RunConfig(
        data=DataConfig(root="/data/shapes", image_size=32),
        model=ModelConfig(arch="resnext11_2x4d"),
        train=TrainConfig(epochs=5),
    )
    (d / "config.json").write_text(json.dumps(cfg.to_dict()))
    (d / "status.json").write_text(json.dumps({"status": status, "started": started, "epochs_done": epochs}))
    write_history(
        d,
        [
            {
                "epoch": e,
                "train_loss": 2.0 / e,
                "train_acc": 0.3 + 0.1 * e,
                "val_loss": 2.2 / e,
                "val_acc": 0.25 + 0.1 * e,
                "lr": 1e-3,
                "seconds": 1.5,
            }
            for e in range(1, epochs + 1)
        ],
    )
    for flag, fname in ((best, "best.pt"), (last, "last.pt")):
        if flag:
            (d / fname).write_bytes(b"placeholder")
    return d


@pytest.fixture
def runs(tmp_path: Path) -> dict[str, Path]:
    root = tmp_path / "runs"
    return {
        "done": make_run(root, "20240101-100000-resnext11_2x4d-shapes", "completed", 5, 1_704_100_000),
        "stopped": make_run(root, "20240102-100000-resnext11_2x4d-shapes", "stopped", 3, 1_704_200_000),
        "failed": make_run(
            root, "20240103-100000-resnext11_2x4d-shapes", "failed", 1, 1_704_300_000, best=False, last=False
        ),
    }


@pytest.fixture
def tab(qtbot, runs) -> RunsTab:
    w = RunsTab()
    qtbot.addWidget(w)
    w.set_runs_dir(next(iter(runs.values())).parent)
    w.resize(1200, 800)
    return w


def test_lists_every_run_with_its_columns(tab, runs):
    assert tab.run_count() == 3
    listed = {tab.table.item(r, COL_NAME).text(): tab.table.item(r, COL_STATUS).text() for r in range(3)}
    assert listed == {
        p.name: s
        for p, s in (
            (runs["done"], "completed"),
            (runs["stopped"], "stopped"),
            (runs["failed"], "failed · nothing saved"),  # no last.pt: it cannot be resumed
        )
    }
    assert tab.table.item(0, COL_ARCH).text() == "resnext11_2x4d"


def test_a_held_arrow_key_draws_the_run_it_stops_on_not_each_one_it_passes(qtbot, tab, runs, monkeypatch):
    """Each arrow key redrew the curves and the settings of the run it reached (0.1-0.3 s apiece): a key held down
    a list of runs froze the window on every row. The buttons follow at once; a selection the program makes
    (select_runs) is shown at once too."""
    tab.show()
    qtbot.waitExposed(tab)
    first = tab.table.item(0, COL_NAME).data(PATH_ROLE)
    tab.select_runs([first])
    drawn = []
    real = tab._draw_curves
    monkeypatch.setattr(tab, "_draw_curves", lambda: (drawn.append(tab.selected_paths()), real())[1])
    tab.table.setFocus()
    for _ in range(2):
        qtbot.keyClick(tab.table, Qt.Key.Key_Down)
    last = tab.table.item(2, COL_NAME).data(PATH_ROLE)
    assert tab.selected_paths() == [last] and drawn == []  # (nothing drawn on the way)
    assert tab.delete_button.isEnabled() == (tab._info(last).status != "running")  # the buttons: at once
    qtbot.waitUntil(lambda: drawn == [[last]], timeout=5000)
    assert tab.settings_tree.topLevelItem(0).text(1) == Path(last).name
    tab.select_runs([first])
    assert drawn[-1] == [first]  # (chosen by the program: drawn at once)


def test_a_diverged_runs_curves_and_buttons_are_shown(tab, runs):
    """A loss of 2.3e19 in history.csv (diverged, not yet NaN): the loss axis' top had been an int, matplotlib
    raised, and the run showed no curves, no settings and no Delete."""
    rows = read_history(runs["stopped"])
    rows[-1].update(train_loss=2.3e19, val_loss=2.3e19)
    write_history(runs["stopped"], rows)
    tab.refresh()
    tab.select_runs([str(runs["stopped"])])
    assert len(tab.loss_ax.get_lines()) == 1 and tab.delete_button.isEnabled()
    assert tab.loss_ax.get_ylim()[1] >= 2.3e19
    assert tab.settings_tree.topLevelItemCount() > 0
    tab.canvas.draw()  # (raises if matplotlib cannot tick the axis)


def test_an_emptied_history_says_why_there_are_no_curves(tab, runs):
    """history.csv emptied (a full disk, a copy cut short): "0 / 5" epochs and blank charts, without a word."""
    (runs["done"] / "history.csv").write_text("")
    tab.refresh()
    tab.select_runs([str(runs["done"])])
    row = next(r for r in range(tab.run_count()) if tab.table.item(r, COL_NAME).text() == runs["done"].name)
    assert "history.csv cannot be read (damaged or empty)" in tab.table.item(row, COL_STATUS).toolTip()
    assert not tab.curves_button.isEnabled()
    assert (
        tab.curves_button.toolTip()
        == "This run's history.csv cannot be read (damaged or empty): nothing to draw or list"
    )


def test_a_run_trained_on_by_another_program_is_seen_without_a_refresh(qtbot, tab, runs):
    """`train --resume` in a terminal of a run listed as stopped or completed: nothing changed in the runs folder
    itself, so the row said "completed" all through it, Delete and Train more epochs offered, until F5."""
    from core.runs import write_status

    tab.show()

    def status() -> str:
        rows = range(tab.run_count())
        return next(tab.table.item(r, COL_STATUS).text() for r in rows if tab.table.item(r, COL_NAME).text() == name)

    name = runs["done"].name
    assert status() == "completed"
    write_status(runs["done"], "stopped", epochs_done=5)  # (as a resume's start and end replace it)
    qtbot.waitUntil(lambda: status() == "stopped", timeout=10000)


def test_refresh_picks_up_runs_made_elsewhere(tab, runs):
    make_run(runs["done"].parent, "20240104-100000-resnet18-cli", "completed", 2, 1_704_400_000)
    tab.refresh()
    assert tab.run_count() == 4


def test_one_line_per_selected_run(tab, runs):
    assert len(tab.loss_ax.get_lines()) == 0
    tab.select_runs([str(runs["done"]), str(runs["stopped"])])
    lines = tab.loss_ax.get_lines()
    assert len(lines) == 2
    assert {ln.get_label() for ln in lines} == {runs["done"].name, runs["stopped"].name}
    assert len({ln.get_color() for ln in lines}) == 2
    by_label = {ln.get_label(): ln for ln in lines}
    assert list(by_label[runs["done"].name].get_xdata()) == [1, 2, 3, 4, 5]
    assert len(tab.acc_ax.get_lines()) == 2
    assert [t.get_text() for t in tab.figure.legends[0].get_texts()][2:] == []
    tab.train_check.setChecked(True)
    assert len(tab.loss_ax.get_lines()) == 4
    assert len(tab.curve_lines()) == 2
    # the legend says what the dashed lines are (it named the runs alone)
    assert [t.get_text() for t in tab.figure.legends[0].get_texts()][2:] == ["validation", "training (dashed)"]
    rows = [{**r, "val_loss": None, "val_acc": None} for r in read_history(runs["stopped"])]
    write_history(runs["stopped"], rows)  # a run without a validation split: its solid line is its training
    tab.refresh()
    tab.select_runs([str(runs["done"]), str(runs["stopped"])])
    assert [t.get_text() for t in tab.figure.legends[0].get_texts()][2:] == [
        "validation (training without one)",
        "training (dashed)",
    ]
    tab.select_runs([str(runs["failed"])])
    assert len(tab.curve_lines()) == 1
    dashed = [ln for ln in tab.loss_ax.get_lines() if ln.get_linestyle() == "--"]
    assert len(dashed) == 1 and dashed[0].get_marker() == "o"  # one epoch: a dot (a dash through it draws nothing)

    # one run with its training curves: its per-batch loss line (batches.csv) too, smoothed as the Train tab drew it
    from core.runs import write_batches

    write_batches(runs["done"], [(1, 1, 2, 2.0), (1, 2, 2, 1.0), (2, 1, 2, 1.0), (2, 2, 2, 1.0)])
    tab.select_runs([str(runs["done"])])
    batches = [ln for ln in tab.loss_ax.get_lines() if ln.get_gid() == "batches"]
    assert len(batches) == 1 and list(batches[0].get_xdata()) == [0.5, 1.0, 1.5, 2.0]
    y = list(batches[0].get_ydata())
    assert y[0] == pytest.approx(2.0) and 1.0 < y[-1] < y[1] < 2.0 and len(tab.curve_lines()) == 1
    tab.select_runs([str(runs["done"]), str(runs["stopped"])])  # several runs: no per-batch clutter
    assert not [ln for ln in tab.loss_ax.get_lines() if ln.get_gid() == "batches"]
    assert not [ln for ln in tab.loss_ax.get_lines() if ln.get_gid() == "off-scale"]
    assert not tab.loss_ax.get_title(loc="left") and tab.loss_ax.get_title() == "Loss"
    tab.train_check.setChecked(False)  # solid lines alone, and no key to say what they are: the titles say it
    tab.select_runs([str(runs["done"])])
    assert (tab.loss_ax.get_title(), tab.acc_ax.get_title()) == ("Validation loss", "Validation accuracy")
    tab.train_check.setChecked(True)


def test_a_validation_loss_far_above_training_goes_off_the_scale(tab, runs):
    """One huge first validation loss would flatten every run's curve onto the axis: it is marked on the top edge."""
    rows = read_history(runs["done"])
    rows[0]["val_loss"] = 40.0
    write_history(runs["done"], rows)
    tab.refresh()
    tab.select_runs([str(runs["done"]), str(runs["stopped"])])
    top = tab.loss_ax.get_ylim()[1]
    assert top < 5
    marks = [ln for ln in tab.loss_ax.get_lines() if ln.get_gid() == "off-scale"]
    assert len(marks) == 1 and list(marks[0].get_xdata()) == [1] and list(marks[0].get_ydata()) == [top]
    # the note takes the title's place (over the plot it lay across the curves), naming the run of the two
    note = tab.loss_ax.get_title(loc="left").replace("\n", " ")
    assert note == "▲ validation loss 40 at epoch 1 is off the scale (01-01 10:00)" and not tab.loss_ax.get_title()
    assert "01-01 10:00" in tab.settings_tree.headerItem().text(1) + tab.settings_tree.headerItem().text(2)
    tab.canvas.resize(420, 300)  # narrow: wrapped to the plot's width, inside the figure
    tab.figure.canvas.draw()
    box = tab.loss_ax._left_title.get_window_extent()
    plot = tab.loss_ax.get_window_extent()
    assert "\n" in tab.loss_ax.get_title(loc="left") and box.x0 >= 0 and box.x1 <= plot.x1 + 4
    assert len(tab.curve_lines()) == 2  # the marks are not runs (the legend and the click-to-select use these)


def test_the_highest_loss_point_is_below_the_top_edge(tab, runs):
    """matplotlib's margin is a share of the curves' range: a first validation loss of 1.85 over later ones near
    1.3 sat on the top edge, its marker cut in half."""
    rows = read_history(runs["done"])
    for row, loss in zip(rows, (1.85, 1.36, 1.33, 1.32, 1.32), strict=True):
        row["val_loss"] = loss
    write_history(runs["done"], rows)
    tab.refresh()
    tab.train_check.setChecked(False)
    tab.select_runs([str(runs["done"])])
    assert tab.loss_ax.get_ylim() == (0.0, 2.5)  # (1.1 × 1.85, rounded up as the Train tab rounds it)


def test_hidden_training_losses_do_not_set_the_loss_axis(tab, runs):
    """Training curves unticked, one run diverged (training loss 18, validation loss inf, off the scale): the loss
    axis went to 20 over the validation curves drawn between 1 and 2.2."""
    rows = read_history(runs["done"])
    rows[0]["train_loss"], rows[1]["train_loss"], rows[1]["val_loss"] = 2.0, 18.0, float("inf")
    write_history(runs["done"], rows)
    tab.refresh()
    tab.train_check.setChecked(False)
    tab.select_runs([str(runs["done"]), str(runs["stopped"])])
    assert [ln for ln in tab.loss_ax.get_lines() if ln.get_gid() == "off-scale"]
    assert tab.loss_ax.get_ylim()[1] <= 3.0
    tab.train_check.setChecked(True)  # drawn, the diverged training loss is on the scale: it must show
    assert tab.loss_ax.get_ylim()[1] >= 18.0


def test_settings_and_buttons_follow_the_selection(tab, runs):
    tab.select_runs([str(runs["stopped"])])
    tops = {
        tab.settings_tree.topLevelItem(i).text(0): tab.settings_tree.topLevelItem(i)
        for i in range(tab.settings_tree.topLevelItemCount())
    }
    assert {"run", "data", "model", "training"} <= set(tops)
    train = tops["training"]
    values = {train.child(i).text(0): train.child(i).text(1) for i in range(train.childCount())}
    assert values["epochs"] == "5"
    # the forms' words, not config.json's keys ("train.lr", "batch_size"), which are in the names' tooltips
    cfg = json.loads((runs["stopped"] / "config.json").read_text())
    assert values["learning rate"] == f"{cfg['train']['lr']:g}" and values["batch size"] == "32"
    assert not any("_" in name for name in values)
    tips = {train.child(i).text(0): train.child(i).toolTip(0) for i in range(train.childCount())}
    assert tips["learning rate"] == "learning rate (train.lr in config.json)" and tips["epochs"] == "epochs"
    data = tops["data"]
    shares = {data.child(i).text(0): data.child(i).text(1) for i in range(data.childCount())}
    assert shares["validation share"] == "20 %" and shares["test share"] == "0 %"  # as the Dataset tab says them
    model = tops["model"]
    shown = {model.child(i).text(0): model.child(i).text(1) for i in range(model.childCount())}
    assert shown["freeze the backbone"] in ("yes", "no")  # (not Python's "False")
    assert tab.resume_button.isEnabled()
    assert tab.predict_button.isEnabled() and tab.evaluate_button.isEnabled()

    tab.select_runs([str(runs["done"])])
    assert tab.resume_button.isEnabled() and tab.resume_button.text() == "Train more epochs…"  # a finished run
    tab.select_runs([str(runs["failed"])])
    assert not tab.resume_button.isEnabled()  # no last.pt
    assert not tab.predict_button.isEnabled()  # no best.pt
    tab.select_runs([str(runs["done"]), str(runs["stopped"])])
    assert not tab.csv_button.isEnabled() and tab.curves_button.isEnabled() and tab.delete_button.isEnabled()
    # each button that acts on one run says so when several are selected, Resume too (it said what it does)
    for b in (tab.resume_button, tab.csv_button, tab.predict_button, tab.evaluate_button, tab.model_button):
        assert not b.isEnabled() and b.toolTip() == "Select one run (these act on one)", b.text()
    tab.select_runs([])
    assert not tab.resume_button.isEnabled() and tab.resume_button.toolTip() == "Select a run first"


def test_several_runs_show_the_settings_that_differ_side_by_side(qtbot, tab, runs):
    cfg_path = runs["stopped"] / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["train"]["lr"], cfg["train"]["batch_size"], cfg["train"]["epochs"] = 0.01, 64, 4
    cfg_path.write_text(json.dumps(cfg))
    tab.refresh()
    tab.select_runs([str(runs["done"]), str(runs["stopped"])])
    tree = tab.settings_tree
    titles = {runs["done"].name: "01-01 10:00", runs["stopped"].name: "01-02 10:00"}  # their start times
    want = ["Setting", *(titles[Path(p).name] for p in tab.selected_paths())]
    assert [tree.headerItem().text(c) for c in range(tree.columnCount())] == want
    # each column's dot is its curve's colour (a "●" in the title took the style sheet's grey)
    curve_colours = [QColor(ln.get_color()).name() for ln in tab.loss_ax.get_lines()]
    dots = [tree.headerItem().icon(c).pixmap(24, 24).toImage().pixelColor(12, 12).name() for c in (1, 2)]
    assert dots == curve_colours[:2]
    rows = {
        tree.topLevelItem(i).text(0): [tree.topLevelItem(i).text(c) for c in (1, 2)]
        for i in range(tree.topLevelItemCount())
    }
    order = [Path(p).name for p in tab.selected_paths()]  # the curves' order (and colours)
    assert "run" not in rows  # the same model and data set: the start times in the titles tell them apart
    assert [tree.headerItem().toolTip(c) for c in (1, 2)] == order
    tab.show()
    qtbot.waitUntil(lambda: values_fit(tree, (1, 2)))  # the first run's was a sliver once
    first_is_done = order[0] == runs["done"].name
    lr, batch, epochs = (["0.001", "0.01"], ["32", "64"], ["5 of 5", "3 of 4"])
    flip = (lambda v: v) if first_is_done else (lambda v: v[::-1])
    assert rows["learning rate"] == flip(lr) and rows["batch size"] == flip(batch) and rows["epochs"] == flip(epochs)
    assert "data folder" not in rows  # the same in both: not repeated
    assert len([name for name in rows if name == "epochs"]) == 1  # train.epochs differs, but the epochs row says it
    lr_row = next(
        tree.topLevelItem(i) for i in range(tree.topLevelItemCount()) if tree.topLevelItem(i).text(0) == "learning rate"
    )
    assert lr_row.toolTip(0) == "learning rate (train.lr in config.json)"

    def hints() -> list[str]:  # the rows that are a sentence, not a setting
        items = [tree.topLevelItem(i) for i in range(tree.topLevelItemCount())]
        return [it.text(0) for it in items if not it.text(1)]

    assert hints() == []
    cfg["train"]["lr"], cfg["train"]["batch_size"] = 0.001, 32  # now only the plan differs: not "the same settings"
    cfg_path.write_text(json.dumps(cfg))
    tab._records.clear()
    tab.select_runs([str(runs["done"])])
    tab.select_runs([str(runs["done"]), str(runs["stopped"])])
    assert hints() == ["Only their planned epochs differ"]
    compared = tab.lower_split.sizes()[1]
    tab.select_runs([str(runs["done"])])
    assert tree.columnCount() == 2 and tree.headerItem().text(1) == "Value"  # one run: all its settings again
    assert tree.headerItem().icon(1).isNull() and not tree.headerItem().toolTip(1)  # no dot left from the two
    qtbot.waitUntil(lambda: values_fit(tree, (1,)))  # its name and folder were "2026112…-sample", "/tmp/w…a/many"
    assert tab.lower_split.sizes()[1] <= sum(tab.lower_split.sizes()) // 2
    tab.lower_split.splitterMoved.emit(300, 1)  # the user drags the pane: from now on it keeps the user's width
    tab.lower_split.setSizes([300, sum(tab.lower_split.sizes()) - 300])
    mine = tab.lower_split.sizes()
    tab.select_runs([str(runs["done"]), str(runs["stopped"])])
    assert tab.lower_split.sizes() == mine and compared > 0


def test_a_long_class_name_among_the_settings_leaves_the_values_room(qtbot, tab, runs):
    """A class of 60 characters among the data set's counts made the names' column 494 px and cut every value
    ("20261127-…he_run_xx"); and the pane narrowed and widened again at each click, resizing the curves."""
    from gui.runs_tab import SETTING_COLUMN_MAX

    cfg = json.loads((runs["done"] / "config.json").read_text())
    long = "a_very_long_class_name_for_testing_the_layout_" + "x" * 18
    cfg["dataset"] = {"name": "shapes", "class_counts": {long: 2, "b": 3}}
    cfg["data"]["root"] = "/data/" + "a_data_folder_with_a_long_name_" * 2
    (runs["done"] / "config.json").write_text(json.dumps(cfg))
    tab.refresh()
    tab.show()
    tree = tab.settings_tree
    tab.select_runs([str(runs["stopped"])])
    qtbot.waitUntil(lambda: values_fit(tree, (1,)))
    tab.select_runs([str(runs["done"])])
    assert tree.columnWidth(0) <= SETTING_COLUMN_MAX
    qtbot.waitUntil(lambda: values_fit(tree, (1,)))  # the run's name, its status, epochs and accuracy: whole
    counts = tree.findItems(long, Qt.MatchFlag.MatchExactly | Qt.MatchFlag.MatchRecursive, 0)
    assert [c.toolTip(0) for c in counts] == [long]  # (cut in the middle on screen)
    wide = tab.lower_split.sizes()[1]
    tab.select_runs([str(runs["stopped"])])  # shorter values: the pane, and the curves beside it, stay put
    assert tab.lower_split.sizes()[1] == wide


def test_the_settings_names_widen_with_a_larger_font(qtbot, tab, runs):
    """The names' column stopped at 220 px whatever the font: at 14 pt they read "cache_…get_mb"."""
    from PySide6.QtGui import QFontMetrics
    from PySide6.QtWidgets import QTreeWidgetItemIterator

    tree = tab.settings_tree
    font = tree.font()
    font.setPointSizeF(font.pointSizeF() * 1.8)
    tree.setFont(font)
    tab.resize(1600, 900)
    tab.show()
    tab.select_runs([str(runs["done"])])
    fm = QFontMetrics(tree.font())

    def depth(item) -> int:
        return 0 if item.parent() is None else 1 + depth(item.parent())

    it, need = QTreeWidgetItemIterator(tree), 0
    while it.value() is not None:
        item = it.value()
        need = max(need, fm.horizontalAdvance(item.text(0)) + tree.indentation() * (depth(item) + 1))
        it += 1
    assert need > 240  # (names a 220-px column cut at this font)
    qtbot.waitUntil(lambda: tree.columnWidth(0) >= need)


def values_fit(tree, columns) -> bool:
    """Every value and title in `columns` is shown whole (its text fits its column, with the cell's margins)."""
    from PySide6.QtGui import QFontMetrics

    fm = QFontMetrics(tree.font())
    items = [tree.headerItem()] + [tree.topLevelItem(i) for i in range(tree.topLevelItemCount())]
    return all(fm.horizontalAdvance(item.text(c)) + 6 <= tree.columnWidth(c) for item in items for c in columns)


def test_compared_runs_show_their_values_whole_and_other_models_are_named(qtbot, tab, runs):
    third = make_run(runs["done"].parent, "20240103-090000-resnet18-flowers", "completed", 2, 1_704_270_000)
    cfg = json.loads((third / "config.json").read_text())
    cfg["dataset"] = {"name": "flowers", "files": "4801df71" * 4}  # the images' fingerprint: not a setting
    (third / "config.json").write_text(json.dumps(cfg))
    tab.refresh()
    tab.show()
    paths = [str(runs["done"]), str(runs["stopped"]), str(third)]
    tab.select_runs(paths)
    tree = tab.settings_tree
    qtbot.waitUntil(lambda: values_fit(tree, (1, 2, 3)))
    qtbot.waitUntil(lambda: not tree.horizontalScrollBar().isVisible())
    run_row = next(
        tree.topLevelItem(i) for i in range(tree.topLevelItemCount()) if tree.topLevelItem(i).text(0) == "run"
    )
    names = [run_row.text(c) for c in (1, 2, 3)]
    assert "resnet18-flowers" in names and all(not n[:1].isdigit() for n in names)  # no start time: it heads the column
    rows = [
        tree.topLevelItem(i).text(0) + " " + tree.topLevelItem(i).toolTip(0) for i in range(tree.topLevelItemCount())
    ]
    assert not [r for r in rows if "dataset." in r]  # (its name and fingerprint: in the titles, not settings)
    tab.select_runs([str(third)])
    shown = [tree.topLevelItem(i) for i in range(tree.topLevelItemCount())]
    dataset = next(item for item in shown if item.text(0) == "data set")
    assert [dataset.child(i).text(0) for i in range(dataset.childCount())] == ["name"]


def test_a_run_keeps_its_colour_from_one_comparison_to_the_next(qtbot, tab, runs):
    """Colours went by place in the selection: a run drawn blue turned orange beside a newer run."""
    from matplotlib.colors import to_hex

    root = runs["done"].parent
    newer = make_run(root, "20240105-090000-resnext11_4x8d-shapes", "completed", 2, 1_704_450_000)
    tab.refresh()
    tab.show()

    def colours() -> dict[str, str]:
        return {ln.get_gid(): to_hex(ln.get_color()) for ln in tab.curve_lines()}

    def header_dots() -> list[str]:  # the settings columns' dots, run by run
        head = tab.settings_tree.headerItem()
        return [
            to_hex(head.icon(c).pixmap(8, 8).toImage().pixelColor(4, 4).name()) for c in range(1, head.columnCount())
        ]

    done, stopped = str(runs["done"]), str(runs["stopped"])
    tab.select_runs([done])
    alone = colours()[done]
    tab.select_runs([done, stopped])
    pair = colours()
    assert pair[done] == alone and pair[stopped] != alone
    tab.select_runs([done, stopped, str(newer)])  # the newest comes first in the table
    three = colours()
    assert three[done] == alone and three[stopped] == pair[stopped] and len(set(three.values())) == 3
    assert tab.selected_paths()[0] == str(newer)
    assert header_dots() == [three[p] for p in tab.selected_paths()]  # the settings columns, in the same colours


def test_many_compared_runs_scroll_sideways_rather_than_cut_every_value(qtbot, tab, runs):
    """With 6 runs sharing the width every value read "…" (lr "0…3", accuracies "2…%")."""
    root = runs["done"].parent
    paths = [str(runs["done"]), str(runs["stopped"])]
    for n in range(4):
        run = make_run(root, f"2024010{4 + n}-090000-resnext11_4x8d-shapes", "completed", 2, 1_704_270_000 + n)
        cfg = json.loads((run / "config.json").read_text())
        cfg["train"]["lr"], cfg["data"]["augment"] = [0.003, 0.0003, 0.03, 0.1][n], "standard"
        (run / "config.json").write_text(json.dumps(cfg))
        paths.append(str(run))
    tab.refresh()
    tab.resize(900, 700)
    tab.show()
    tab.select_runs(paths)
    tree = tab.settings_tree
    qtbot.waitUntil(lambda: values_fit(tree, range(1, 7)))
    assert sum(tree.columnWidth(c) for c in range(7)) > tree.viewport().width()  # so the table scrolls
    qtbot.waitUntil(lambda: tree.horizontalScrollBar().maximum() > 0)
    from gui.runs_tab import COMPARE_COLUMN_MAX

    long = QTreeWidgetItem(["data.root", *["/a/very/long/folder/name/" * 6] * 6])
    tree.addTopLevelItem(long)
    tab._fit_run_columns(6)
    assert max(tree.columnWidth(c) for c in range(1, 7)) == COMPARE_COLUMN_MAX  # a folder is cut, not the table
    # scrolled to the last run, the settings' names stay in view beside its values
    frozen = tab._frozen_names
    assert not frozen.isVisible()  # (not scrolled: the tree's own first column shows)
    tree.horizontalScrollBar().setValue(tree.horizontalScrollBar().maximum())
    qtbot.waitUntil(frozen.isVisible)
    assert frozen.geometry().left() <= tree.frameWidth() and frozen.width() >= tree.columnWidth(0)
    row = next(i for i in range(tree.topLevelItemCount()) if tree.topLevelItem(i).text(0) == "learning rate")
    item = tree.topLevelItem(row)
    at = frozen.viewport().mapTo(tree, frozen.visualRect(frozen.model().index(row, 0)).center())
    assert tree.viewport().geometry().contains(at)  # on the row's line, inside the visible part of the tree
    shown = frozen.indexAt(frozen.viewport().mapFrom(tree, at))
    assert (
        shown.data() == "learning rate"
        and tree.visualItemRect(item).center().y() == tree.viewport().mapFrom(tree, at).y()
    )
    tree.verticalScrollBar().setValue(tree.verticalScrollBar().maximum())  # the names follow the rows
    assert frozen.verticalScrollBar().value() == tree.verticalScrollBar().value()
    tree.horizontalScrollBar().setValue(0)
    qtbot.waitUntil(lambda: not frozen.isVisible())


def test_the_legend_takes_fewer_columns_in_a_narrow_chart_and_stays_inside_it(qtbot, tab, runs):
    """Three run names side by side were wider than a narrowed chart: the centred legend lost both its ends."""
    tab.show()
    tab.select_runs([str(runs["done"]), str(runs["stopped"])])

    def legend_inside() -> bool:
        tab.canvas.draw()
        box = tab.figure.legends[0].get_window_extent()
        return box.x0 >= 0 and box.x1 <= tab.figure.bbox.width

    wide = tab.figure.legends[0]._ncols
    tab.lower_split.setSizes([300, 900])  # the chart narrowed to 300 px
    qtbot.waitUntil(lambda: tab.canvas.width() <= 320)
    qtbot.waitUntil(lambda: tab.figure.legends[0]._ncols < wide)
    assert legend_inside()


def test_runs_drawn_alike_keep_the_charts_layout_and_others_get_theirs(qtbot, tab, runs):
    """Constrained layout was 60 % of each redraw (0.15 s an arrow key down a long run list): a run drawn like the
    one before keeps its margins; one with other titles, ticks or legend rows is laid out again. Either way the axes
    sit where a layout worked out afresh puts them."""
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    root = runs["done"].parent
    alike = make_run(root, "20240104-100000-resnext11_2x4d-shapes", "completed", 5, 1_704_400_000)
    rows = read_history(runs["stopped"])
    rows[0]["val_loss"] = 40.0  # off the scale: a note in the title's place, over two lines
    write_history(runs["stopped"], rows)
    tab.show()
    tab.refresh()

    def places() -> list[list[int]]:  # the axes' boxes in pixels
        size = (tab.canvas.width(), tab.canvas.height()) * 2
        return [
            [round(v * n) for v, n in zip(ax.get_position().bounds, size, strict=True)]
            for ax in (tab.loss_ax, tab.acc_ax)
        ]

    def check(paths, kept: bool, before=()) -> None:
        for earlier in before:  # selected, not drawn (an arrow key held: one draw for several selections)
            tab.select_runs([str(p) for p in earlier])
        tab.select_runs([str(p) for p in paths])
        assert isinstance(tab.figure.get_layout_engine(), ConstrainedLayoutEngine) != kept
        tab.canvas.draw()
        drawn = places()
        state = tab._laid_out, tab._layout_asked
        tab.figure.set_layout_engine("constrained")  # afresh, to compare (and what the tab knows left as it was)
        tab.canvas.draw()
        tab._laid_out, tab._layout_asked = state
        again = places()
        assert all(abs(a - b) <= 2 for a, b in zip(sum(drawn, []), sum(again, []), strict=True)), (drawn, again)

    check([runs["done"]], kept=False)  # the first draw
    check([alike], kept=True)  # the next run down the list, drawn alike
    check([runs["stopped"]], kept=False)  # its title is a note over two lines
    check([alike], kept=False, before=[[runs["done"]]])  # (done's layout asked for, never drawn)
    check([runs["stopped"]], kept=False)
    check([runs["done"]], kept=False)
    check([runs["done"], alike], kept=True)  # their legend takes one row, as one run's
    tab.canvas.resize(tab.canvas.width() - 200, tab.canvas.height())
    check([runs["done"], alike], kept=False)  # another size


def test_action_signals(qtbot, tab, runs):
    tab.select_runs([str(runs["stopped"])])
    with qtbot.waitSignal(tab.predict_requested) as sig:
        tab.predict_button.click()
    assert sig.args == [str(runs["stopped"] / "best.pt")]
    with qtbot.waitSignal(tab.evaluate_requested) as sig:
        tab.evaluate_button.click()
    assert sig.args == [str(runs["stopped"])]
    with qtbot.waitSignal(tab.evaluate_requested) as sig:  # Enter on the run, as a double-click
        qtbot.keyClick(tab.table, Qt.Key.Key_Return)
    assert sig.args == [str(runs["stopped"])]
    with qtbot.waitSignal(tab.resume_requested) as sig:
        tab.resume_button.click()
    assert sig.args == [str(runs["stopped"])]


def test_tab_into_the_run_list_selects_its_current_run(qtbot, tab, runs):
    """A row looked current but none was selected: every action button was off (skipped by Tab), Return did
    nothing."""
    from PySide6.QtGui import QFocusEvent
    from PySide6.QtWidgets import QApplication

    tab.select_runs([str(runs["stopped"])])
    tab.table.clearSelection()  # (its row stays the current one)
    assert not tab.evaluate_button.isEnabled()
    QApplication.sendEvent(tab.table, QFocusEvent(QEvent.Type.FocusIn, Qt.FocusReason.TabFocusReason))
    assert tab.selected_paths() == [str(runs["stopped"])] and tab.evaluate_button.isEnabled()
    with qtbot.waitSignal(tab.evaluate_requested) as sig:
        qtbot.keyClick(tab.table, Qt.Key.Key_Return)
    assert sig.args == [str(runs["stopped"])]
    tab.table.clearSelection()  # a click into it is the mouse's own choice: left as it is
    QApplication.sendEvent(tab.table, QFocusEvent(QEvent.Type.FocusIn, Qt.FocusReason.MouseFocusReason))
    assert tab.selected_paths() == []


@pytest.fixture
def more_epochs(monkeypatch):
    """Answers the "Train more epochs" dialog (a real QInputDialog, shown but not waited on): records its text, the
    number it offered and how its label is laid out, and answers `answer["n"]` (None: the number offered)."""
    asked: list[dict] = []
    answer: dict[str, int | None] = {"n": None}

    def exec_(dialog):
        label = next((w for w in dialog.findChildren(QLabel) if w.text() == dialog.labelText()), None)
        dialog.show()
        lines = label.fontMetrics()
        asked.append(
            {
                "text": dialog.labelText(),
                "offered": dialog.intValue(),
                "wraps": label.wordWrap(),
                "width_chars": label.width() / lines.averageCharWidth(),
                "lines": label.height() / lines.lineSpacing(),
            }
        )
        dialog.hide()
        if answer["n"] is not None:
            dialog.setIntValue(answer["n"])
        return QDialog.DialogCode.Accepted

    def get_int(parent, title, text, value, *args, **kwargs):  # (its label does not wrap)
        asked.append({"text": text, "offered": value, "wraps": False})
        return (value if answer["n"] is None else answer["n"]), True

    monkeypatch.setattr(QInputDialog, "exec", exec_)
    monkeypatch.setattr(QInputDialog, "getInt", get_int)
    return asked, answer


def test_a_finished_run_can_train_more_epochs(qtbot, tab, runs, more_epochs):
    said, answer = more_epochs
    answer["n"] = 3
    tab.select_runs([str(runs["done"])])
    with qtbot.waitSignal(tab.extend_requested) as sig:
        tab.resume_button.click()
    asked = [d["text"] for d in said]
    assert sig.args == [str(runs["done"]), 5 + 3] and "has trained 5 epochs" in asked[0]
    assert "goes on in its own folder" in asked[0] and "best.pt is replaced if" in asked[0]  # (not a copy: said)
    tab.select_runs([str(runs["stopped"])])
    assert tab.resume_button.text() == "Resume training"
    with qtbot.waitSignal(tab.resume_requested) as sig:
        tab.resume_button.click()
    assert sig.args == [str(runs["stopped"])] and len(said) == 1  # a stopped run finishes its own plan


def test_more_epochs_for_an_early_stopped_run_offer_the_rest_of_its_plan(qtbot, tab, runs, more_epochs):
    """Early stopping ended it at 3 of 5 epochs: the dialog said the schedule is "stretched" (5 more made it 8, over
    its plan of 5) and offered 5, where 2 finish the plan its schedule was laid over."""
    asked, _ = more_epochs
    early = make_run(runs["done"].parent, "20240105-100000-resnext11_2x4d-shapes", "completed", 3, 1_704_500_000)
    tab.refresh()
    tab.select_runs([str(early)])
    with qtbot.waitSignal(tab.extend_requested) as sig:
        tab.resume_button.click()
    text, offered = asked[0]["text"], asked[0]["offered"]
    assert "has trained 3 epochs of the 5 it planned (early stopping ended it)" in text and "stretched." not in text
    assert offered == 2 and sig.args == [str(early), 5]  # the offer finishes the plan
    tab.select_runs([str(runs["done"])])  # all its epochs done: more stretch the schedule, 5 offered
    tab.resume_button.click()
    assert asked[1]["offered"] == 5 and "near 0 at the run's end, rises at once" in asked[1]["text"]
    assert "2 more go on at the rate it had planned; fewer lower the rate at once, more raise it." in text


def test_the_more_epochs_dialog_wraps_its_text_to_its_width(qtbot, tab, runs, more_epochs):
    """Its text was broken by hand ("…replaced if a\nnew epoch does better…"): lines short, long, short, at any
    font (QInputDialog.getInt's label does not wrap). The label wraps now; only paragraphs are apart."""
    asked, _ = more_epochs
    tab.select_runs([str(runs["done"])])
    with qtbot.waitSignal(tab.extend_requested):
        tab.resume_button.click()
    shown = asked[0]
    paragraphs = shown["text"].split("\n\n")
    assert len(paragraphs) == 3 and not any("\n" in para for para in paragraphs), shown["text"]
    assert paragraphs[1].startswith("How many more?") and paragraphs[2].startswith("Its cosine learning-rate")
    assert shown["wraps"]
    # laid out: the long paragraphs wrap within a dialog of a readable width (not one line each, nor a tall column)
    assert 40 <= shown["width_chars"] <= 120 and shown["lines"] >= 5, shown


def test_exports(qtbot, tab, runs, tmp_path, monkeypatch):
    tab.select_runs([str(runs["done"])])
    typed = iter([str(tmp_path / "hist"), str(tmp_path / "curves")])  # names typed without an extension
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (next(typed), ""))
    with qtbot.waitSignal(tab.status_message) as said:
        tab._export_csv()
    out = tmp_path / "hist.csv"  # the extension the format needs is added
    assert said.args == [f"Saved 5 epochs of history to {out}"]
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4, 5]
    assert float(rows[1]["val_acc"]) == pytest.approx(0.45)
    with qtbot.waitSignal(tab.status_message) as said:
        tab._export_curves()
    png = tmp_path / "curves.png"
    assert said.args == [f"Saved the curves to {png}"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["curves.png", "hist.csv"]  # no temp files
    # the format is the name's (PNG data had been written under any name typed: "curves.jpg", over a photo too)
    from gui.widgets import FIGURE_FILTERS

    chosen = iter(
        [
            (str(tmp_path / "vector"), FIGURE_FILTERS[".svg"]),
            (str(tmp_path / "print.PDF"), ""),
            (str(tmp_path / "c.jpg"), ""),
        ]
    )
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: next(chosen))
    for _ in range(3):
        tab._export_curves()
    assert (tmp_path / "vector.svg").read_text().lstrip().startswith("<?xml")
    assert (tmp_path / "print.PDF").read_bytes()[:5] == b"%PDF-"
    assert not (tmp_path / "c.jpg").exists() and (tmp_path / "c.jpg.png").read_bytes()[:4] == b"\x89PNG"
    run = runs["done"]  # a run folder's own files are never written over (an export over last.pt broke the run)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    warned = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: warned.append(a[2]))
    assert not tab.export_history_csv(str(run), str(run / "history.csv"))
    assert not tab.export_curves(str(run / "curves.png"))
    tab.export_model(str(run), str(run / "last.pt"), "torchscript")
    assert len(warned) == 3 and all("one of its run folder's own files" in w for w in warned)
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before and tab._export_worker is None
    # nor an image by a CSV or a model, nor a checkpoint outside a run (the save dialog's "replace?" says yes fast)
    photo, weights = tmp_path / "photo.jpg", tmp_path / "weights.pt"
    photo.write_bytes(b"\xff\xd8 a photo")
    torch.save({"w": torch.zeros(2)}, weights)
    kept = {p: p.read_bytes() for p in (photo, weights)}
    warned.clear()
    assert not tab.export_history_csv(str(run), str(photo))
    tab.export_model(str(run), str(weights), "torchscript")
    assert warned == [
        f"{photo} is an image; it is not replaced with the CSV. Choose another name.",
        f"{weights} is a PyTorch checkpoint or weights file; it is not replaced with the model. Choose another name.",
    ]
    assert {p: p.read_bytes() for p in kept} == kept
    assert tab._export_worker is None
    assert tab.export_curves(str(png)) and len(warned) == 2  # the curves may replace an image (the last ones)
    shot = tmp_path / "holiday.png"  # but not a picture no chart export wrote (a photo of a data set)
    Image.new("RGB", (8, 8), (1, 2, 3)).save(shot)
    kept = shot.read_bytes()
    assert not tab.export_curves(str(shot)) and shot.read_bytes() == kept
    assert (
        warned[-1]
        == f"{shot} is an image that no chart export wrote; it is not replaced with the curves. Choose another name."
    )
    warned.pop()
    # into a folder not made yet (typed in the dialog): made, as Export model and Predict's CSV make theirs; it was
    # "Could not write …: No such file or directory"
    new = tmp_path / "new" / "folder"
    assert tab.export_curves(str(new / "c.png")) and tab.export_history_csv(str(run), str(new / "h.csv"))
    assert sorted(p.name for p in new.iterdir()) == ["c.png", "h.csv"] and len(warned) == 2


def _real_best(run: Path) -> torch.nn.Module:
    """Replace the run's placeholder best.pt by a real (untrained, tiny) checkpoint; returns its model."""
    from core import checkpoint, models

    torch.manual_seed(0)
    model = models.build("resnext11_2x4d", 3).eval()
    checkpoint.save(run / "best.pt", checkpoint.payload(model, "resnext11_2x4d", ["a", "b", "c"], 16))
    return model


@pytest.mark.timeout(180)
def test_export_model_saves_a_checked_file_or_says_why_not(qtbot, tab, runs, tmp_path, monkeypatch):
    model = _real_best(runs["done"])
    shown: list[tuple[str, str]] = []
    monkeypatch.setattr(QMessageBox, "information", lambda parent, title, text, *a, **k: shown.append(("info", text)))
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text, *a, **k: shown.append(("warn", text)))
    tab.select_runs([str(runs["failed"])])
    assert not tab.model_button.isEnabled()  # no best.pt
    # a disabled button says why, not what it would do
    assert tab.model_button.toolTip().startswith("This run has no best.pt: it ended before")
    assert tab.evaluate_button.toolTip() == tab.predict_button.toolTip() == tab.model_button.toolTip()
    tab.select_runs([])
    assert tab.predict_button.toolTip() == tab.delete_button.toolTip() == "Select a run first"
    tab.select_runs([str(runs["done"])])
    assert tab.model_button.isEnabled() and tab.model_button.toolTip().startswith("Save the run's best.pt")
    assert tab.predict_button.toolTip() == "Open the Predict tab with this run's best.pt"

    # through the button and its file dialog: TorchScript chosen, the extension added
    picked = (str(tmp_path / "shapes-model"), "TorchScript model (*.pt)")
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: picked)
    with qtbot.waitSignal(tab.model_export_finished, timeout=120_000):
        tab.model_button.click()
        assert not tab.model_button.isEnabled() and tab.model_button.text() == "Exporting…"  # one at a time
    out = tmp_path / "shapes-model.pt"
    assert shown == [("info", shown[0][1])] and str(out) in shown[0][1] and "TorchScript" in shown[0][1]
    assert '_extra_files={"metadata.json": ""}' in shown[0][1]  # how to read its class names, not "see the README"
    assert tab.model_button.isEnabled() and tab.model_button.text() == "Export model…"
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # (torch.jit is deprecated for torch.export, still works)
        assert torch.allclose(torch.jit.load(str(out))(x), model(x), atol=1e-4)

    with qtbot.waitSignal(tab.model_export_finished, timeout=120_000):
        tab.export_model(str(runs["done"]), str(tmp_path / "m.onnx"), "onnx")
    assert shown[-1][0] == "info" and "ONNX" in shown[-1][1] and (tmp_path / "m.onnx").stat().st_size > 10_000
    assert "metadata holds its class names" in shown[-1][1]
    assert tab.last_export["top1_agree"] and tab.last_export["max_abs_diff"] <= 1e-4

    # a typed .pt name decides the format, whichever file type the dialog had selected
    picked = (str(tmp_path / "typed.pt"), "ONNX model (*.onnx)")
    with qtbot.waitSignal(tab.model_export_finished, timeout=120_000):
        tab.model_button.click()
    assert (tmp_path / "typed.pt").is_file() and not (tmp_path / "typed.pt.onnx").exists()
    assert tab.last_export["format"] == "torchscript"

    # a place that cannot be written: the message names the chosen file, not a temporary one
    (tmp_path / "afile").write_text("x")
    with qtbot.waitSignal(tab.model_export_finished, timeout=60_000):
        tab.export_model(str(runs["done"]), str(tmp_path / "afile" / "m.onnx"), "onnx")
    assert shown[-1][0] == "warn" and str(tmp_path / "afile" / "m.onnx") in shown[-1][1], shown[-1]
    assert ".tmp" not in shown[-1][1]

    # a damaged best.pt: a warning that names it, and no file
    with qtbot.waitSignal(tab.model_export_finished, timeout=60_000):
        tab.export_model(str(runs["stopped"]), str(tmp_path / "bad.onnx"), "onnx")
    assert shown[-1][0] == "warn" and str(runs["stopped"] / "best.pt") in shown[-1][1], shown[-1]
    assert "not a ResNeXt Studio checkpoint" in shown[-1][1]
    assert not (tmp_path / "bad.onnx").exists() and tab.last_export is None


def test_delete_asks_and_removes(qtbot, tab, runs, answer_question, monkeypatch):
    from core.runs import RunStore

    real, watched = RunStore.delete, []

    def delete(store, path):  # (on Windows a watched folder is held open: its rename aside was refused)
        watched.append(str(path) in tab._watcher.directories())
        return real(store, path)

    monkeypatch.setattr(RunStore, "delete", delete)
    assert str(runs["failed"]) in tab._watcher.directories()  # (a run trained on elsewhere is seen: watched)
    tab.select_runs([str(runs["failed"])])
    asked = answer_question("Cancel")
    assert tab.delete_selected() is False
    assert runs["failed"].is_dir() and tab.run_count() == 3
    assert asked and asked[0][1] == ["Delete 1 run", "Cancel"]  # buttons that say what they do
    asked = answer_question("Delete 1 run")
    said = []
    tab.status_message.connect(said.append)
    with qtbot.waitSignal(tab.runs_deleted, timeout=5000) as deleted:
        assert tab.delete_selected() is True
    assert deleted.args[0] == [str(runs["failed"])]  # the other tabs drop what pointed at it
    assert watched == [False]  # not watched while it went
    assert said == [f"Deleted {runs['failed'].name}"]  # (the status bar confirms it)
    assert runs["failed"].name in asked[0][0]
    assert not runs["failed"].exists()
    assert tab.run_count() == 2
    assert runs["done"].is_dir()


def test_the_delete_key_in_the_table_asks_too_but_not_for_a_training_run(
    qtbot, tab, runs, answer_question, monkeypatch
):
    from PySide6.QtCore import Qt

    tab.show()
    tab.activateWindow()
    tab.select_runs([str(runs["failed"])])
    tab.table.setFocus()
    qtbot.waitUntil(tab.table.hasFocus, timeout=5000)
    asked = answer_question("Delete 1 run")
    with qtbot.waitSignal(tab.runs_deleted, timeout=5000):
        qtbot.keyClick(tab.table, Qt.Key.Key_Delete)
    assert asked and runs["failed"].name in asked[0][0]
    assert not runs["failed"].exists() and tab.run_count() == 2
    live = make_run(runs["done"].parent, "20240105-100000-resnext11_2x4d-shapes", "running", 2, 1_704_500_000)
    tab.refresh()
    tab.select_runs([str(live)])
    assert not tab.delete_button.isEnabled() and tab.delete_button.toolTip() == "A run training now cannot be deleted"
    young = make_run(runs["done"].parent, "20240106-100000-resnext11_2x4d-shapes", "running", 0, 1_704_600_000, False)
    tab.refresh()
    tab.select_runs([str(young)])  # training its first epoch: not "it ended before …"
    assert tab.predict_button.toolTip().startswith("This run is in its first epoch")
    tab.select_runs([str(live)])
    tab.activateWindow()  # (the question box had the focus)
    tab.table.setFocus()
    qtbot.waitUntil(tab.table.hasFocus, timeout=5000)
    asked = []
    monkeypatch.setattr("gui.runs_tab.ask", lambda *a, **k: asked.append(a) or True)
    qtbot.keyClick(tab.table, Qt.Key.Key_Delete)
    assert asked == [] and live.is_dir()  # the key obeys the button's state: no question, nothing deleted
    tab.select_runs([str(runs["done"])])
    qtbot.keyClick(tab.table, Qt.Key.Key_Delete)
    assert len(asked) == 1 and not runs["done"].exists()  # (the same key, on a run that may go)


def test_empty_runs_folder_shows_a_hint(qtbot, tmp_path):
    w = RunsTab()
    qtbot.addWidget(w)
    w.set_runs_dir(tmp_path / "nothing-here")
    assert w.run_count() == 0
    assert w.table_stack.currentIndex() == 1
    assert "No runs yet" in w.empty_label.text()
    w.show()
    w._draw_curves()
    assert [t.get_text() for t in w.loss_ax.texts] == ["No runs yet"]  # not "Select one or more runs" of none


def test_a_runs_folder_that_goes_away_is_said_to_be_gone_not_empty(qtbot, tab, runs):
    """Its runs listed a moment ago, then the folder gone (a drive unplugged): "No runs yet" read as if there had
    never been any."""
    import shutil

    assert tab.run_count() > 0
    root = tab.runs_dir()
    shutil.rmtree(root)
    tab.refresh()
    assert tab.table_stack.currentIndex() == 1 and f"{root}\nis not there" in tab.empty_label.text()


def test_on_a_narrow_window_the_data_set_column_gives_the_run_names_room(qtbot, tab, runs):
    """At 1024 px the data set's column kept 260 px for one long name while three runs read
    "20261127-…8d-sample" (the run's name ends with the data set's); it widens again with the window."""
    long = "my_dataset_with_an_extremely_long_folder_name_xx"
    run = make_run(runs["done"].parent, f"20240104-100000-resnext11_2x4d-{long}", "completed", 2, 1_704_400_000)
    cfg = json.loads((run / "config.json").read_text())
    cfg["dataset"] = {"name": long}
    (run / "config.json").write_text(json.dumps(cfg))
    tab.refresh()
    tab.resize(1000, 700)
    tab.show()
    from gui.runs_tab import DATA_LEAST, MAX_FIT_WIDTH

    t, h = tab.table, tab.table.horizontalHeader()
    least = max(DATA_LEAST, h.sectionSizeHint(COL_DATA))
    qtbot.waitUntil(lambda: h.sectionSize(COL_DATA) == least)
    usual = h.fontMetrics().horizontalAdvance(runs["done"].name) + 8  # the other runs' names are whole
    assert h.sectionSize(COL_NAME) >= usual
    tab.resize(1600, 700)
    qtbot.waitUntil(lambda: h.sectionSize(COL_DATA) == min(MAX_FIT_WIDTH, t.sizeHintForColumn(COL_DATA)))


def _dark_runs(image, threshold: int = 140) -> list[tuple[int, int]]:
    """The (first, last) x of each stretch of columns of `image` that hold a dark pixel (text, an arrow)."""
    dark = [
        any(image.pixelColor(x, y).value() < threshold for y in range(image.height())) for x in range(image.width())
    ]
    spans, start = [], None
    for x, d in enumerate([*dark, False]):
        if d and start is None:
            start = x
        elif not d and start is not None:
            spans.append((start, x - 1))
            start = None
    return spans


def test_a_sorted_columns_title_stays_clear_of_the_sort_arrow(qtbot, tab, runs):
    """Sorted by "Best val acc" (a right-aligned title, as its numbers are), the arrow was drawn over its last
    letter: "Best val ac" and an arrow (the style sheet's padding; Qt drew the label in the whole section)."""
    from PySide6.QtCore import QRect

    from gui.app import load_stylesheet

    tab.setStyleSheet(load_stylesheet())  # (the app's: the overlap came with its section padding)
    tab.show()
    qtbot.waitExposed(tab)
    t, h = tab.table, tab.table.horizontalHeader()

    def section() -> list[tuple[int, int]]:
        x = h.sectionViewportPosition(COL_ACC)
        return _dark_runs(h.grab(QRect(x, 0, h.sectionSize(COL_ACC), h.height())).toImage())

    t.sortByColumn(COL_DATE, Qt.SortOrder.DescendingOrder)
    title = section()  # the title alone: its letters, no arrow
    t.sortByColumn(COL_ACC, Qt.SortOrder.DescendingOrder)
    sorted_ = section()
    mark = h.style().pixelMetric(h.style().PixelMetric.PM_HeaderMarkSize)
    arrow = sorted_[-1]
    assert arrow[1] - arrow[0] <= mark, (sorted_, title)  # the arrow stands alone at the end …
    assert len(sorted_) == len(title) + 1 and arrow[0] > sorted_[-2][1] + 1  # … after the whole title, a gap between
    widths = [b - a for a, b in sorted_[:-1]]
    assert widths == [b - a for a, b in title]  # every word as wide as unsorted: none cut


def test_columns_fit_their_contents_and_the_name_stretches(qtbot, tab, runs):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QHeaderView

    tab.show()
    qtbot.waitExposed(tab)
    t, h = tab.table, tab.table.horizontalHeader()
    assert h.sectionResizeMode(COL_NAME) == QHeaderView.ResizeMode.Stretch and not h.stretchLastSection()
    assert all(
        h.sectionResizeMode(c) == QHeaderView.ResizeMode.Interactive for c in range(len(COLUMNS)) if c != COL_NAME
    )  # the user can still drag them
    assert h.length() == t.viewport().width()  # the name column takes the spare width: no empty gutter
    metrics = h.fontMetrics()
    for col, title in enumerate(COLUMNS):
        assert h.sectionSize(col) >= h.sectionSizeHint(col) > metrics.horizontalAdvance(title), title
        assert h.sectionSize(col) >= t.sizeHintForColumn(col), title  # the cells fit too (at 1200 px)
    right = Qt.AlignmentFlag.AlignRight
    for col in NUMERIC_COLUMNS:
        assert h.sectionSize(col) < h.sectionSize(COL_NAME) / 2
        assert Qt.AlignmentFlag(t.horizontalHeaderItem(col).textAlignment()) & right
        assert all(Qt.AlignmentFlag(t.item(r, col).textAlignment()) & right for r in range(t.rowCount()))

    date = h.sectionSize(COL_DATE)
    h.resizeSection(COL_ARCH, 300)  # as when the user drags the border
    make_run(
        runs["done"].parent, "20240104-100000-resnext11_2x4d-a-much-longer-data-set-name", "completed", 2, 1_704_400_000
    )
    tab.refresh()
    assert tab.run_count() == 4
    assert h.sectionSize(COL_ARCH) == 300  # the user's width survives a refresh
    assert h.sectionSize(COL_DATE) == date and h.length() == t.viewport().width()


def test_a_run_without_finished_epochs_gets_a_note_not_stale_axes(tab, runs):
    empty = make_run(
        runs["done"].parent, "20240104-100000-resnext11_2x4d-shapes", "stopped", 0, 1_704_400_000, best=False
    )
    tab.refresh()
    tab.select_runs([str(runs["done"])])
    assert len(tab.curve_lines()) == 1
    tab.select_runs([str(empty)])
    assert tab.curve_lines() == [] and not tab.figure.legends
    assert [t.get_text() for t in tab.loss_ax.texts] == ["No finished epoch yet"]
    assert list(tab.loss_ax.get_yticks()) == []  # no axes left over from the previous selection
    tab.select_runs([str(runs["done"]), str(empty)])  # compared with a run that has epochs: only that one is drawn,
    assert [ln.get_label() for ln in tab.curve_lines()] == [runs["done"].name]  # the other named, not left out unsaid
    legend = [t.get_text() for t in tab.figure.legends[0].get_texts()]
    assert legend == [runs["done"].name, f"{empty.name} (no finished epoch)"]


def test_accuracy_ticks_of_a_one_epoch_run_are_distinct(tab, runs, tmp_path):
    one = make_run(tmp_path / "runs", "20240104-100000-resnext11_2x4d-shapes", "completed", 1, 1_704_400_000)
    tab.refresh()
    tab.select_runs([str(one)])
    tab.figure.canvas.draw()
    labels = [t.get_text() for t in tab.acc_ax.get_yticklabels() if t.get_text()]
    assert len(labels) >= 2 and len(set(labels)) == len(labels), labels  # was "28% 28% 27% …"


def test_compared_runs_are_titled_by_their_start_times():
    from gui.runs_tab import short_run_labels

    same_day = ["/r/20261126-101852-resnext11_4x8d-sample", "/r/20261126-102512-resnext11_4x8d-sample"]
    assert short_run_labels(same_day) == ["10:18:52", "10:25:12"]
    assert short_run_labels([same_day[0], "/r/20261127-090000-x-y"]) == ["11-26 10:18", "11-27 09:00"]
    twins = ["/a/20261126-101852-a-b", "/b/20261126-101852-a-b", "/c/my-run"]
    assert short_run_labels(twins) == ["10:18:52 (1)", "10:18:52 (2)", "run 3"]
    # two runs of one second (RunStore names the second `…-2`), the second listed first: numbered by their names
    second = ["/r/20261126-101852-a-b-2", "/r/20261126-101852-a-b", "/r/20261126-101852-a-b-10"]
    assert short_run_labels(second) == ["10:18:52 (2)", "10:18:52 (1)", "10:18:52 (3)"]


def test_failed_and_interrupted_runs_explain_themselves(tab, runs, tmp_path):
    """The failure's message in the Status cell's tooltip; a run with no finished epoch shows the per-batch loss it
    left (e.g. the loss exploding); a disabled Resume says why."""
    from core.runs import write_batches

    failed = runs["failed"]
    (failed / "status.json").write_text(
        json.dumps({"status": "failed", "started": 1_704_300_000, "message": "loss became NaN at epoch 1 step 7"})
    )
    write_history(failed, [])
    write_batches(failed, [(1, 1, 10, 2.0), (1, 4, 10, 40.0), (1, 7, 10, float("nan"))])
    tab.refresh()
    row = next(r for r in range(tab.table.rowCount()) if tab.table.item(r, COL_NAME).text() == failed.name)
    assert tab.table.item(row, COL_STATUS).toolTip() == (
        "Training failed: loss became NaN at epoch 1 step 7\nIt saved no checkpoint, so there is nothing to resume."
    )
    tab.select_runs([str(failed)])
    batches = [ln for ln in tab.loss_ax.get_lines() if ln.get_gid() == "batches"]
    assert len(batches) == 1 and list(batches[0].get_xdata()) == [0.1, 0.4]  # the NaN is left out
    assert "no finished epoch" in tab.loss_ax.get_title() and not tab.loss_ax.texts
    assert [t.get_text() for t in tab.acc_ax.texts] == ["No finished epoch yet"]
    assert not tab.resume_button.isEnabled() and "no last.pt" in tab.resume_button.toolTip()


def test_curves_are_drawn_in_the_train_tabs_frame(tab, runs):
    """A one-epoch run was drawn on an x axis from 0.96 to 1.04 and a y axis from 25.5 to 28 %."""
    tab.select_runs([str(runs["failed"])])  # one epoch
    assert tab.loss_ax.get_xlim()[0] == 0 and 1 < tab.loss_ax.get_xlim()[1] <= 1.5
    assert tab.loss_ax.get_ylim()[0] == 0 and tab.acc_ax.get_ylim() == (0, 1.01)
    tab.select_runs([str(runs["done"]), str(runs["failed"])])
    assert tab.acc_ax.get_xlim()[0] == 0 and 5 < tab.acc_ax.get_xlim()[1] <= 5.5


def test_a_training_run_says_why_it_cannot_be_resumed_or_deleted(tab, runs):
    live = make_run(runs["done"].parent, "20240105-100000-resnext11_2x4d-shapes", "running", 2, 1_704_500_000)
    tab.refresh()
    tab.select_runs([str(live)])  # it has a last.pt: the button was disabled with the "continue a stopped…" text
    assert not tab.resume_button.isEnabled() and "training now" in tab.resume_button.toolTip()
    assert not tab.delete_button.isEnabled()
    # while the Train tab trains another run, Resume waits (it used to ask how many epochs, then refuse)
    tab.select_runs([str(runs["stopped"])])
    assert tab.resume_button.isEnabled()
    tab.set_training_busy(True)
    assert not tab.resume_button.isEnabled() and "Another run is training" in tab.resume_button.toolTip()
    tab.set_training_busy(False)
    assert tab.resume_button.isEnabled()


def test_the_status_cell_says_what_an_ended_run_kept():
    """A full disk between best.pt and last.pt left best.pt alone: the cell said "nothing saved" beside an
    enabled Predict, and the tooltip of a stopped run said it could be resumed without a last.pt."""
    from core.runs import RunInfo
    from gui.runs_tab import status_explanation, status_text

    def info(status, best, last):
        return RunInfo(Path("/r/x"), "x", 0.0, "a", "d", 1, 2, None, None, status, best, last)

    assert status_text(info("failed", False, False)) == "failed · nothing saved"
    assert status_text(info("failed", True, False)) == "failed · no last.pt"
    assert status_text(info("stopped", True, True)) == "stopped"
    assert status_text(info("completed", True, False)) == "completed"
    assert "cannot be resumed; its best.pt can still" in status_explanation(info("stopped", True, False))
    assert "nothing to resume" in status_explanation(info("interrupted", False, False))
    assert status_explanation(info("failed", True, True)).endswith("the run can be resumed.")
    assert "resume" not in status_explanation(info("completed", True, True))


def test_a_hand_edited_evaluation_json_does_not_break_the_settings_pane(qtbot, tab, runs):
    """An "accuracy": "high" raised in the selection slot and left the settings half-filled."""
    run = runs["done"]
    (run / "evaluation.json").write_text(json.dumps({"accuracy": "high", "split": "val", "num_samples": 3}))
    tab.refresh()
    tab.select_runs([str(run)])
    tree = tab.settings_tree
    keys = [tree.topLevelItem(i).text(0) for i in range(tree.topLevelItemCount())]
    assert keys[0] == "run" and "training" in keys  # every section is there
    summary = tree.topLevelItem(0)
    assert "evaluated accuracy" not in [summary.child(i).text(0) for i in range(summary.childCount())]


def test_three_or_more_runs_are_named_by_start_time_in_the_legend(qtbot, tab, runs):
    """Eleven full run names, one a row, pressed the charts flat and then covered them."""
    tab.show()
    paths = [str(p) for p in runs.values()]
    (runs["done"] / "evaluation.json").write_text(json.dumps({"accuracy": 0.5, "split": "val", "num_samples": 4}))
    tab.select_runs(paths)
    texts = [t.get_text() for t in tab.figure.legends[0].get_texts()]
    by_path = dict(zip(tab.selected_paths(), short_run_labels(tab.selected_paths()), strict=True))
    drawn = [ln.get_gid() for ln in tab.curve_lines()]
    assert texts == [by_path[p] for p in drawn]  # the settings columns' titles, in the curves' colours
    assert tab.figure.legends[0]._ncols == len(texts)  # short enough to sit side by side


def test_seventy_runs_keep_their_charts_and_the_legend_says_how_many_more(qtbot, tab, runs):
    """70 runs' names, 24 legend rows, pressed both plots into a sliver behind the legend."""
    tab.show()
    root = runs["done"].parent
    for d in range(1, 24):
        for h in range(3):
            make_run(root, f"202402{d:02d}-1{h}0000-resnext11_2x4d-shapes", "completed", 2, 1_706_000_000 + d * 9e4 + h)
    tab.refresh()
    tab.train_check.setChecked(True)  # (the key, solid/dashed, stays at the legend's end)
    tab.select_runs([str(p) for p in root.iterdir()])
    assert len(tab.curve_lines()) == 72  # one a run
    tab.canvas.draw()
    legend = tab.figure.legends[0]
    texts = [t.get_text() for t in legend.get_texts()]
    assert texts[-2:] == ["validation", "training (dashed)"]
    shown = len(texts) - 3
    assert shown > 0 and texts[-3] == f"… {len(tab._legend_handles) - 2 - shown} more runs"
    fig_h = tab.figure.bbox.height
    assert legend.get_window_extent().height <= fig_h / 3 + 4  # a third of the chart at most
    assert tab.loss_ax.get_window_extent().height >= fig_h / 3  # the plots keep their room


def test_an_evaluation_made_after_the_folder_changed_says_so(qtbot, tab, runs):
    ev = {"accuracy": 0.5, "split": "val", "num_samples": 4, "data_changed": "the data folder changed since …"}
    (runs["done"] / "evaluation.json").write_text(json.dumps(ev))
    tab.refresh()
    tab.select_runs([str(runs["done"])])
    summary = tab.settings_tree.topLevelItem(0)
    rows = {summary.child(i).text(0): summary.child(i).text(1) for i in range(summary.childCount())}
    assert rows["evaluated accuracy"] == "50.0% (val split, 4 images; the data folder had changed)"


def test_an_evaluation_of_an_earlier_best_pt_says_so(qtbot, tab, runs):
    """Trained on elsewhere (train --resume --epochs) and killed before its final evaluation: epoch 1's 25.0 % was
    shown beside "best epoch 5" as if of the same model."""
    ev = {"accuracy": 0.25, "split": "val", "num_samples": 4, "epoch": 1, "checkpoint": str(runs["done"] / "best.pt")}
    (runs["done"] / "evaluation.json").write_text(json.dumps(ev))
    tab.refresh()
    tab.select_runs([str(runs["done"])])
    rows = _summary_rows(tab)
    assert rows["best epoch"] == "5"
    assert (
        rows["evaluated accuracy"]
        == "25.0% (val split, 4 images; of epoch 1's best.pt, not the best now: evaluate it again)"
    )
    (runs["done"] / "evaluation.json").write_text(json.dumps({**ev, "epoch": 5}))  # of the best.pt there now
    tab.select_runs([str(runs["stopped"])])
    tab.select_runs([str(runs["done"])])
    assert _summary_rows(tab)["evaluated accuracy"] == "25.0% (val split, 4 images)"


def test_comparing_runs_reads_no_evaluation_and_one_run_shows_the_newest(qtbot, tab, runs, monkeypatch):
    """evaluation.json holds a line per image (2 MB for 3600): read for every run selected, 200 runs froze the
    window for 2.5 s and kept 440 MB. Only the one-run view reads it, and so shows an evaluation made since."""
    from core import runs as core_runs

    real, read = core_runs.read_json, []

    def read_json(path):
        read.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(core_runs, "read_json", read_json)
    ev = {"accuracy": 0.5, "split": "val", "num_samples": 4, "misclassified": []}
    for path in runs.values():
        (path / "evaluation.json").write_text(json.dumps(ev))
    tab.refresh()
    tab.select_runs([str(p) for p in runs.values()])
    assert len(tab.curve_lines()) >= 2 and "evaluation.json" not in read
    tab.select_runs([str(runs["done"])])
    assert read.count("evaluation.json") == 1
    assert _summary_rows(tab)["evaluated accuracy"] == "50.0% (val split, 4 images)"
    (runs["done"] / "evaluation.json").write_text(json.dumps({**ev, "accuracy": 0.75}))  # evaluated again
    tab.select_runs([str(runs["stopped"])])
    tab.select_runs([str(runs["done"])])
    assert _summary_rows(tab)["evaluated accuracy"] == "75.0% (val split, 4 images)"


def _summary_rows(tab) -> dict[str, str]:
    summary = tab.settings_tree.topLevelItem(0)
    return {summary.child(i).text(0): summary.child(i).text(1) for i in range(summary.childCount())}


def test_runs_past_the_tenth_share_a_colour_but_not_a_marker(qtbot, tab, runs):
    root = runs["done"].parent
    extra = [
        make_run(root, f"202402{d:02d}-100000-resnext11_2x4d-shapes", "completed", 2, 1_706_000_000 + d)
        for d in range(1, 10)
    ]
    tab.refresh()
    tab.select_runs([str(p) for p in [*runs.values(), *extra]])
    lines = tab.curve_lines()
    assert len(lines) == 12
    assert lines[10].get_color() == lines[0].get_color() and lines[10].get_marker() != lines[0].get_marker()
    assert len({(ln.get_color(), ln.get_marker()) for ln in lines}) == 12  # every run tellable apart


def test_settings_show_what_strong_used_and_leave_out_what_the_optimizer_and_schedule_do_not_read(tab, runs):
    """A run trained with augmentation "strong" listed "color_jitter 0" and "random_erasing 0", though strong used
    0.3 and 0.25 there; an adamw run listed "momentum 0.9" and "nesterov False", and a cosine one "step_size 10"."""
    cfg_path = runs["done"] / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["data"].update(augment="strong", color_jitter=0.0, random_erasing=0.5)
    cfg["train"].update(optimizer="adamw", scheduler="cosine", warmup_epochs=1.0)
    cfg_path.write_text(json.dumps(cfg))
    tab.refresh()
    tab.select_runs([str(runs["done"])])
    tree = tab.settings_tree
    tops = {tree.topLevelItem(i).text(0): tree.topLevelItem(i) for i in range(tree.topLevelItemCount())}

    def values(section: str) -> dict[str, str]:
        item = tops[section]
        return {item.child(i).text(0): item.child(i).text(1) for i in range(item.childCount())}

    data, train = values("data"), values("training")
    assert data["colour jitter"] == "0.3 (strong's own)"
    assert data["random erasing"] == "0.5"  # set by the user: strong's own is not used
    sgd_or_step = {"momentum", "Nesterov momentum", "LR step every (epochs)", "LR step factor", "backbone LR factor"}
    assert not sgd_or_step & set(train)
    assert train["warm-up epochs"] == "1" and train["weight decay"] == "0.0005"

    # sgd with a step schedule: momentum and step are its own; cosine's warm-up is not
    cfg["data"]["augment"] = "standard"
    cfg["train"].update(optimizer="sgd", scheduler="step")
    cfg_path.write_text(json.dumps(cfg))
    tab.refresh()
    tab.select_runs([str(runs["stopped"])])
    tab.select_runs([str(runs["done"])])
    tops = {tree.topLevelItem(i).text(0): tree.topLevelItem(i) for i in range(tree.topLevelItemCount())}
    data, train = values("data"), values("training")
    assert data["colour jitter"] == "0"  # standard adds none
    assert train["momentum"] == "0.9" and train["LR step every (epochs)"] == "10" and train["LR step factor"] == "0.1"
    assert train["Nesterov momentum"] == "no"
    assert "warm-up epochs" not in train

    # compared with an adamw run, the momentum it does not have is "—", not the same 0.9
    tab.select_runs([str(runs["done"]), str(runs["stopped"])])
    rows = {tree.topLevelItem(i).text(0): tree.topLevelItem(i) for i in range(tree.topLevelItemCount())}
    assert "momentum" in rows
    by_run = dict(zip(tab.selected_paths(), (rows["momentum"].text(c) for c in (1, 2)), strict=True))
    assert by_run == {str(runs["done"]): "0.9", str(runs["stopped"]): "—"}

    # augmentation "none" flips nothing: two such runs are not told apart by the flip box they were saved with
    for run, flip in (("done", True), ("stopped", False)):
        run_cfg = json.loads((runs[run] / "config.json").read_text())
        run_cfg["data"].update(augment="none", hflip=flip)
        run_cfg["train"] = cfg["train"]
        (runs[run] / "config.json").write_text(json.dumps(run_cfg))
    tab.refresh()
    tab.select_runs([str(runs["done"])])
    tab.select_runs([str(runs["done"]), str(runs["stopped"])])
    rows = {tree.topLevelItem(i).text(0) for i in range(tree.topLevelItemCount())}
    assert "horizontal flip" not in rows and "augmentation" not in rows


def test_the_settings_say_the_device_auto_chose_and_no_mixed_precision_off_cuda(tab, runs):
    """A CPU run's config.json keeps "amp": true (the GPU's default) and device "auto": the pane said "mixed
    precision (AMP) yes" for a run that trained in full precision, and not on what."""
    tree = tab.settings_tree

    def training(run: Path, device: str | None, asked: str) -> dict[str, str]:
        cfg = json.loads((run / "config.json").read_text())
        cfg["train"].update(device=asked, amp=True)
        (run / "config.json").write_text(json.dumps(cfg))
        status = json.loads((run / "status.json").read_text())
        status.pop("device", None)
        (run / "status.json").write_text(json.dumps(status if device is None else {**status, "device": device}))
        tab._records.clear()
        tab.refresh()
        tab.select_runs([str(run)])
        top = next(
            tree.topLevelItem(i) for i in range(tree.topLevelItemCount()) if tree.topLevelItem(i).text(0) == "training"
        )
        return {top.child(i).text(0): top.child(i).text(1) for i in range(top.childCount())}

    shown = training(runs["done"], "cpu", "auto")
    assert shown["device"] == "auto (cpu)" and shown["mixed precision (AMP)"] == "no (full precision on the CPU)"
    shown = training(runs["done"], "cuda", "auto")
    assert shown["device"] == "auto (cuda)" and shown["mixed precision (AMP)"] == "yes"
    shown = training(runs["done"], None, "cpu")  # a run from before status.json said: its config's own device
    assert shown["device"] == "cpu" and shown["mixed precision (AMP)"].startswith("no ")
    shown = training(runs["done"], None, "auto")  # not known: as written
    assert shown["device"] == "auto" and shown["mixed precision (AMP)"] == "yes"


def test_also_show_training_curves_is_kept_for_the_next_start(qtbot, tab):
    assert not tab.train_check.isChecked()
    tab.train_check.setChecked(True)
    again = RunsTab()
    qtbot.addWidget(again)
    assert again.train_check.isChecked()


def test_a_run_whose_process_ended_without_a_word_stops_showing_as_running(qtbot, tab, runs):
    """A command-line run killed (kill -9) writes nothing, so no file change refreshed the tab: its row said
    "running", and Delete and Resume stayed disabled, until Refresh was pressed."""
    import socket

    from core.runs import RunLock

    live = make_run(runs["done"].parent, "20240105-100000-resnext11_2x4d-shapes", "running", 2, 1_704_500_000)
    (live / "status.json").write_text(
        json.dumps({"status": "running", "started": 1_704_500_000, "hostname": socket.gethostname()})
    )
    lock = RunLock(live)  # the training process's lock (the same process here: RunLock knows its own)
    assert lock.acquire()
    try:
        tab.show()
        tab.refresh()

        def status() -> str:
            row = next(r for r in range(tab.run_count()) if tab.table.item(r, COL_NAME).text() == live.name)
            return tab.table.item(row, COL_STATUS).text()

        assert status() == "running" and tab._alive.isActive()
        tab._check_running()
        assert status() == "running"  # (its process is there)
    finally:
        lock.release()
    tab._check_running()  # (what the timer calls every few seconds)
    assert status() == "interrupted" and not tab._alive.isActive()
    tab.hide()
    assert not tab._alive.isActive()


def test_the_run_paused_in_the_train_tab_says_paused(qtbot, tab, runs):
    """A paused run's row said "running" ("Training now") while the status bar said "Paused"."""
    live = make_run(runs["done"].parent, "20240105-100000-resnext11_2x4d-shapes", "running", 2, 1_704_500_000)
    tab.refresh()

    def cell():
        row = next(r for r in range(tab.run_count()) if tab.table.item(r, COL_NAME).text() == live.name)
        return tab.table.item(row, COL_STATUS)

    assert cell().text() == "running"
    tab.show()
    tab.set_paused_run(str(live))
    assert cell().text() == "paused" and "Resume in the Train tab" in cell().toolTip()
    tab.set_paused_run(None)
    assert cell().text() == "running"
    # selected, everything says paused: its settings (they said "status running"), and why its buttons are off
    first = make_run(live.parent, "20240106-100000-resnext11_2x4d-shapes", "running", 0, 1_704_600_000, False, False)
    tab.refresh()
    tab.set_paused_run(str(first))
    tab.select_runs([str(first)])
    status_row = tab.settings_tree.topLevelItem(0).child(0)
    assert (status_row.text(0), status_row.text(1)) == ("status", "paused")
    assert tab.resume_button.toolTip() == "This run is paused in the Train tab: its Resume goes on with it"
    assert tab.predict_button.toolTip().startswith("This run is paused in its first epoch (Train tab)")
    assert tab.delete_button.toolTip().startswith("A run paused in the Train tab cannot be deleted")
    tab.set_paused_run(None)
    tab.select_runs([str(first)])
    assert tab.settings_tree.topLevelItem(0).child(0).text(1) == "running"
    assert tab.predict_button.toolTip().startswith("This run is in its first epoch:")


def test_a_run_paused_in_another_window_says_paused_here_too(qtbot, tab, runs):
    """Paused in a second window (or by another program of the app), a run's row here said "running" ("training
    now") all through the pause: its trainer marks the folder (runs.PAUSED_MARKER), which is watched."""
    from core.runs import PAUSED_MARKER

    live = make_run(
        runs["done"].parent, "20240106-100000-resnext11_2x4d-shapes", "running", 0, 1_704_600_000, False, False
    )
    tab.refresh()
    tab.show()

    def cell():
        row = next(r for r in range(tab.run_count()) if tab.table.item(r, COL_NAME).text() == live.name)
        return tab.table.item(row, COL_STATUS)

    assert cell().text() == "running"
    (live / PAUSED_MARKER).touch()  # (the other window's Pause)
    qtbot.waitUntil(lambda: cell().text() == "paused", timeout=10000)
    assert "another window" in cell().toolTip()
    tab.select_runs([str(live)])
    status_row = tab.settings_tree.topLevelItem(0).child(0)
    assert (status_row.text(0), status_row.text(1)) == ("status", "paused")
    assert tab.resume_button.toolTip() == "This run is paused in another window: its Resume goes on with it"
    assert tab.predict_button.toolTip().startswith("This run is paused in its first epoch:")
    assert tab.delete_button.toolTip().startswith("A run paused in another window cannot be deleted")
    assert not tab.delete_button.isEnabled() and not tab.resume_button.isEnabled()
    (live / PAUSED_MARKER).unlink()  # (its Resume)
    qtbot.waitUntil(lambda: cell().text() == "running", timeout=10000)
    # a mark left by a run killed while paused says nothing: the run is interrupted
    (live / PAUSED_MARKER).touch()
    status = json.loads((live / "status.json").read_text())
    gone = {"pid": 2**22 + 12345, "hostname": socket.gethostname()}  # (no such process here)
    (live / "status.json").write_text(json.dumps({**status, **gone}))
    tab.refresh()
    assert cell().text().startswith("interrupted") and "paused" not in cell().toolTip()


def test_this_windows_own_run_resumed_is_not_said_paused_in_another_window(qtbot, tab, runs):
    """Training ▸ Resume: the Train tab's state changes at once, the trainer's thread removes its folder's mark a
    moment later; meanwhile the row said "paused" with "Paused in another window", and Delete the same."""
    from core.runs import PAUSED_MARKER

    live = make_run(runs["done"].parent, "20240105-100000-resnext11_2x4d-shapes", "running", 2, 1_704_500_000)
    tab.show()
    tab.set_training_busy(True, str(live))
    tab.set_paused_run(str(live))
    (live / PAUSED_MARKER).touch()  # (its own trainer, waiting in the pause)
    tab.set_paused_run(None)  # Resume pressed: the thread has not woken yet
    row = next(r for r in range(tab.run_count()) if tab.table.item(r, COL_NAME).text() == live.name)
    assert tab.table.item(row, COL_STATUS).text() == "running"
    tab.set_training_busy(False)  # (another window's, once this one trains nothing: said paused there)
    tab.refresh()
    row = next(r for r in range(tab.run_count()) if tab.table.item(r, COL_NAME).text() == live.name)
    assert tab.table.item(row, COL_STATUS).text() == "paused"


def test_a_hidden_runs_tab_is_not_read_again_for_a_pause_until_it_is_shown(qtbot, tab, runs, monkeypatch):
    """Pausing and resuming in the Train tab re-read every run folder although the Runs tab was not showing."""
    live = make_run(runs["done"].parent, "20240105-100000-resnext11_2x4d-shapes", "running", 2, 1_704_500_000)
    tab.refresh()
    refreshes = []
    real = tab.refresh
    monkeypatch.setattr(tab, "refresh", lambda: (refreshes.append(1), real())[1])
    tab.set_paused_run(str(live))
    assert refreshes == []
    tab.show()  # (showEvent refreshes: the row is up to date when it is seen)
    row = next(r for r in range(tab.run_count()) if tab.table.item(r, COL_NAME).text() == live.name)
    assert refreshes and tab.table.item(row, COL_STATUS).text() == "paused"


def test_a_minimised_window_does_not_look_for_ended_runs(qtbot, tab, runs, monkeypatch):
    """The every-few-seconds check for a run whose process ended read its status while nobody could see it."""
    make_run(runs["done"].parent, "20240105-100000-resnext11_2x4d-shapes", "running", 2, 1_704_500_000)
    tab.show()
    tab.refresh()
    reads = []
    store = tab._store()
    real_info = store.info
    monkeypatch.setattr(tab, "_store", lambda: store)
    monkeypatch.setattr(store, "info", lambda path: (reads.append(path), real_info(path))[1])
    tab.showMinimized()
    tab._check_running()  # (what the timer calls)
    assert reads == []
    tab.showNormal()
    tab._check_running()
    assert reads


def test_a_run_left_running_on_another_machine_can_be_resumed_and_deleted(qtbot, tab, runs, monkeypatch):
    """Copied from a machine while its status.json said "running" (or from one that crashed): only a run of this
    host was looked at, so the row said "running" for good, Resume and Delete disabled ("This run is training
    now…"), while `main.py train --resume` on it went ahead."""
    import time

    from core.runs import RunLock

    away = make_run(runs["done"].parent, "20240105-100000-resnext11_2x4d-shapes", "running", 2, 1_704_500_000)
    doc = {"status": "running", "started": 1_704_500_000, "epochs_done": 2, "hostname": "alice-laptop", "pid": 4242}
    (away / "status.json").write_text(json.dumps(doc | {"updated": time.time() - 3600}))
    os.utime(away / "status.json", (time.time() - 3600,) * 2)  # (and an hour ago by this machine's clock)
    lock = RunLock(away)  # (its .lock, free: nobody trains it)
    assert lock.acquire()
    lock.release()
    tab.refresh()
    tab.select_runs([str(away)])
    row = next(r for r in range(tab.run_count()) if tab.table.item(r, COL_NAME).text() == away.name)
    cell = tab.table.item(row, COL_STATUS)
    assert cell.text() == "interrupted" and "last seen running on alice-laptop (" in cell.toolTip()
    assert tab.resume_button.isEnabled() and tab.resume_button.text() == "Resume training"
    assert tab.delete_button.isEnabled()
    asked = []
    monkeypatch.setattr("gui.runs_tab.ask", lambda parent, title, text, **k: asked.append(text) or False)
    assert not tab.delete_selected() and away.is_dir()  # asked first, with where it was last seen; No: kept
    assert f"{away.name} was last seen running on alice-laptop (" in asked[0] and "paused there" in asked[0]
    # written a minute ago: it may be training there (a share may keep that machine's lock to itself); said so
    (away / "status.json").write_text(json.dumps(doc | {"updated": time.time() - 60}))
    tab.refresh()
    tab.select_runs([str(away)])
    row = next(r for r in range(tab.run_count()) if tab.table.item(r, COL_NAME).text() == away.name)
    assert tab.table.item(row, COL_STATUS).text() == "running"
    assert tab.table.item(row, COL_STATUS).toolTip().startswith("Training now on alice-laptop")
    assert not tab.resume_button.isEnabled() and "training on alice-laptop" in tab.resume_button.toolTip()
    assert "10 minutes old" in tab.resume_button.toolTip()
    assert not tab.delete_button.isEnabled()
    from core.runs import append_history

    append_history(away, {"epoch": 3, "train_loss": 1.0, "seconds": 1500.0})  # epochs of 25 minutes: 50 quiet ones
    tab.refresh()
    tab.select_runs([str(away)])
    assert "50 minutes old" in tab.resume_button.toolTip()  # (it said 10, the least, however long its epochs)


def test_show_runs_folder_says_why_it_cannot(qtbot, tmp_path, monkeypatch):
    """A runs path that is a file, or cannot be made: mkdir raised to stderr, and nothing was shown."""
    shown: list[str] = []
    monkeypatch.setattr("gui.runs_tab.show_folder", lambda folder, parent=None: shown.append(folder) or True)
    blocker = tmp_path / "runs-is-a-file"
    blocker.write_text("not a folder")
    w = RunsTab()
    qtbot.addWidget(w)
    said: list[str] = []
    w.status_message.connect(said.append)
    w.set_runs_dir(blocker)
    w.open_folder_button.click()
    assert shown == [] and said == [f"Cannot show the runs folder {blocker}: it is a file, not a folder"]
    assert w.folder_label.text() == said[0]  # (in the tab too, not only the status bar's passing line)
    w.set_runs_dir(blocker / "runs")  # a folder inside that file: cannot be made
    w.open_folder_button.click()
    assert shown == [] and said[-1].startswith(f"Cannot show the runs folder {blocker / 'runs'}: it cannot be made: ")
    w.set_runs_dir(tmp_path / "new")
    w.open_folder_button.click()
    assert shown == [str(tmp_path / "new")] and (tmp_path / "new").is_dir() and len(said) == 2


def test_a_run_one_of_whose_files_cannot_go_is_deleted_from_the_list_and_what_is_left_is_said(
    qtbot, tab, runs, answer_question, monkeypatch
):
    """status.json undeletable (immutable, held open on Windows): best.pt, last.pt, config.json and history.csv
    went, the run stayed listed, half deleted, and the box said it "could not be deleted"."""
    import errno
    import os

    real_unlink = os.unlink

    def unlink(path, *args, **kwargs):
        if os.path.basename(path) == "status.json":
            raise PermissionError(errno.EPERM, "Operation not permitted", str(path))
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", unlink)
    warned: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text, *a, **k: warned.append(text))
    run = runs["stopped"]
    tab.select_runs([str(run)])
    answer_question("Delete 1 run")
    with qtbot.waitSignal(tab.runs_deleted, timeout=5000) as deleted:
        assert tab.delete_selected() is True
    assert deleted.args[0] == [str(run)] and tab.run_count() == 2 and not run.exists()
    left = run.parent / f".deleting-{run.name}"
    assert [p.name for p in left.iterdir() if p.name != ".lock"] == ["status.json"]
    assert len(warned) == 1 and "could not be deleted" not in warned[0]
    assert f"{run.name}: deleted from the run list, but 1 file could not be removed" in warned[0]
    assert str(left) in warned[0] and "status.json" in warned[0]


def test_a_run_saved_by_a_newer_version_says_why_it_cannot_be_resumed(tab, runs):
    """Its config.json holds a setting this version does not know: Resume failed in the Train tab with
    "data.mixup_schedule: unknown setting", naming no file."""
    config = json.loads((runs["stopped"] / "config.json").read_text())
    config["data"]["mixup_schedule"] = "linear"
    (runs["stopped"] / "config.json").write_text(json.dumps(config))
    tab.refresh()
    tab.select_runs([str(runs["stopped"])])
    tip = tab.resume_button.toolTip()
    assert not tab.resume_button.isEnabled()
    assert str(runs["stopped"] / "config.json") in tip and "data.mixup_schedule" in tip and "newer version" in tip
    assert tab.predict_button.isEnabled()  # (best.pt needs none of its settings to predict)


def test_the_first_run_made_in_a_runs_folder_not_there_yet_is_listed(qtbot, tmp_path):
    """Before the first run the runs folder does not exist, so nothing watched it: the list said "0 runs" all
    through the first training, until it ended."""
    root = tmp_path / "home" / "runs"
    tab = RunsTab()
    qtbot.addWidget(tab)
    tab.set_runs_dir(root)
    tab.show()
    assert tab.folder_label.text() == f"0 runs in {root}"
    make_run(root, "20240101-100000-resnext11_2x4d-shapes", "running", 0, 1_704_100_000)  # (made by a training)
    qtbot.waitUntil(lambda: tab.folder_label.text() == f"1 run in {root}", timeout=10000)
    # a run whose folder came while nothing looked: the Train tab's word that it trains it brings it in
    second = make_run(root, "20240102-100000-resnext11_2x4d-shapes", "running", 0, 1_704_200_000)
    tab._watcher.removePaths(tab._watcher.directories())  # (as if the change had been missed)
    tab.set_training_busy(True, str(second))
    qtbot.waitUntil(lambda: tab.folder_label.text() == f"2 runs in {root}", timeout=10000)


def test_a_run_whose_files_come_after_its_folder_is_listed_without_a_refresh(qtbot, tab, runs, tmp_path):
    """A folder made (by a trainer, or `cp -r` of a run, which writes config.json last) and listed before its
    files came was never watched: the run stayed unlisted until Refresh."""
    root = next(iter(runs.values())).parent
    tab.show()
    spare = make_run(tmp_path / "spare", "20240104-100000-resnext11_2x4d-shapes", "completed", 2, 1_704_400_000)
    target = root / spare.name
    target.mkdir()
    tab.refresh()  # (the listing made between the folder and its files)
    assert tab.folder_label.text() == f"3 runs in {root}" and str(target) in tab._watcher.directories()
    for f in sorted(spare.iterdir(), key=lambda f: f.name == "config.json"):  # config.json last, as cp does
        (target / f.name).write_bytes(f.read_bytes())
    qtbot.waitUntil(lambda: tab.folder_label.text() == f"4 runs in {root}", timeout=10000)


def test_a_runs_folder_moved_away_empties_the_list(qtbot, tab, runs):
    """Renamed while shown, the runs folder's own watch said nothing: its runs stayed listed, and Delete was
    offered on folders no longer there."""
    root = next(iter(runs.values())).parent
    tab.show()
    tab.select_runs([str(runs["done"])])
    assert tab.delete_button.isEnabled()
    root.rename(root.with_name("runs-moved"))
    qtbot.waitUntil(lambda: tab.folder_label.text() == f"0 runs in {root}", timeout=10000)
    assert not tab.delete_button.isEnabled() and tab.selected_paths() == []
    (root.parent / "unrelated").mkdir()  # something else beside it (and it back): looked at, not listed twice
    root.with_name("runs-moved").rename(root)
    qtbot.waitUntil(lambda: tab.folder_label.text() == f"3 runs in {root}", timeout=10000)


def test_the_settings_sections_folded_stay_folded_when_the_list_is_read_again(qtbot, tab, runs):
    """Each epoch of a run training elsewhere reads the list again: the sections the user had folded opened again
    and the pane jumped to its top."""
    tab.show()
    tab.resize(1200, 500)
    tab.select_runs([str(runs["done"])])
    tree = tab.settings_tree
    sections = [tree.topLevelItem(i) for i in range(tree.topLevelItemCount())]
    folded = [s for s in sections if s.childCount()][1]
    folded.setExpanded(False)
    name = folded.text(0)
    bar = tree.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0)
    bar.setValue(bar.maximum())
    scrolled = bar.value()
    tab.refresh()

    def section(text):
        return next(
            tree.topLevelItem(i) for i in range(tree.topLevelItemCount()) if tree.topLevelItem(i).text(0) == text
        )

    assert not section(name).isExpanded() and bar.value() == scrolled
    assert sum(1 for i in range(tree.topLevelItemCount()) if not tree.topLevelItem(i).isExpanded()) == 1
    tab.select_runs([str(runs["stopped"])])  # another run: shown whole, from its top
    assert all(
        tree.topLevelItem(i).isExpanded() for i in range(tree.topLevelItemCount()) if tree.topLevelItem(i).childCount()
    )
