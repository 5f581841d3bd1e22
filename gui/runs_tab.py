"""Runs tab: every run folder in a table, overlaid curves of the selected runs, their settings, and run actions."""

from __future__ import annotations

import contextlib
import csv
import datetime
import math
import os
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QFileSystemWatcher, QItemSelection, QItemSelectionModel, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QIcon, QKeySequence, QPainter, QPixmap, QShortcut, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gui.app import at_font, settings
from gui.widgets import (
    ERROR_COLOR,
    FIGURE_FILTERS,
    NOT_A_FOLDER,
    WARNING_COLOR,
    FrozenFirstColumn,
    SortItem,
    ask,
    count_noun,
    dialog_dir,
    figure_path,
    load_json_setting,
    make_folder,
    natural_key,
    on_return,
    refused_output,
    remember_dir,
    show_folder,
    sort_header,
    store_json_setting,
    with_suffix,
    write_export,
)

COLUMNS = ["Date", "Run", "Architecture", "Data set", "Epochs", "Best val acc", "Status"]
COL_DATE, COL_NAME, COL_ARCH, COL_DATA, COL_EPOCHS, COL_ACC, COL_STATUS = range(len(COLUMNS))
NUMERIC_COLUMNS = (COL_EPOCHS, COL_ACC)
STRETCH_COLUMN = COL_NAME  # takes the spare width, so the table has no empty gutter on the right
WATCHED_RUNS_MAX = 500  # run folders watched for changes made by other programs (newest first: each is a watch
# the system counts, of a few thousand it allows a user's programs on some)
SELECTION_SHOW_MS = 60  # a selection changed by hand is drawn once it rests this long (a held arrow key: the run
# it stops on, not a whole redraw for each run it passes, 0.1-0.3 s apiece); one chosen by the program at once
ALIVE_CHECK_MS = 3000  # how often a run listed as running is looked at, while the tab is shown
MAX_FIT_WIDTH = 260  # columns fitted to their contents get no wider than this (the user may widen them)
DATA_LEAST = 110  # px: the data set's column, narrowed for the run names (see fit_columns)
PATH_ROLE = Qt.ItemDataRole.UserRole + 1
STATUS_COLORS = {
    "completed": "#1a7f37",
    "running": "#2f6fdf",
    "stopped": WARNING_COLOR,
    "interrupted": WARNING_COLOR,
    "failed": ERROR_COLOR,
    "unreadable": ERROR_COLOR,
}
RUN_COLORS = [
    "#2f6fdf",
    "#e0672b",
    "#1a7f37",
    "#9b51e0",
    "#d63384",
    "#0f9ea8",
    "#8c6d1f",
    "#5c6370",
    "#b42318",
    "#3f51b5",
]


def _onnx_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))


def _export(fmt: str, checkpoint_path: str, out: str) -> dict[str, Any]:
    """Worker thread: core.export (imports torch, so never on the GUI thread)."""
    from core import export

    return (export.export_onnx if fmt == "onnx" else export.export_torchscript)(checkpoint_path, out)


def _evaluated_accuracy(run_dir: str, best_epoch: int | None = None) -> str | None:
    """ "93.1% (val split, 120 images)" of a run's evaluation.json, None if it has none. Read only for the one run
    shown: the file holds a line per image (2 MB for 3600), and reading it for every run selected to compare their
    curves froze the window for seconds. A best.pt of another epoch than `best_epoch` (the run's best now) is named:
    a run trained on elsewhere and killed before its final evaluation showed epoch 1's 25.0 % beside "best epoch 12"
    as if of the same model."""
    from core.runs import read_json

    ev = read_json(Path(run_dir) / "evaluation.json")
    acc = ev.get("accuracy")
    if not isinstance(acc, (int, float)) or isinstance(acc, bool):  # ("high" in a hand-edited file raised)
        return None
    where = f"{ev.get('split', '?')} split, {ev.get('num_samples', '?')} images"
    if ev.get("data_changed"):  # evaluated after the folder changed: the split may hold training images
        where += "; the data folder had changed"
    epoch, name = ev.get("epoch"), Path(str(ev.get("checkpoint") or "best.pt")).name
    if name == "best.pt" and isinstance(epoch, int) and best_epoch is not None and epoch != best_epoch:
        where += f"; of epoch {epoch}'s best.pt, not the best now: evaluate it again"
    return f"{acc:.1%} ({where})"


def _flatten(obj: dict, prefix: str = "") -> dict[str, Any]:
    """{"train": {"lr": 0.1}} -> {"train.lr": 0.1}."""
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def status_text(info: Any) -> str:
    """The Status cell: the status, and what an ended run kept when that is not enough to resume it."""
    if info.nothing_saved:
        return f"{info.status} · nothing saved"
    if info.ended_early and not info.has_last:
        return f"{info.status} · no last.pt"  # (a full disk, or a kill, between best.pt and last.pt)
    return info.status


def status_explanation(info: Any) -> str:
    """The Status cell's tooltip: how the run ended, in words, and whether it can be resumed."""
    what = {
        "running": "Training now",
        "completed": "Finished every planned epoch (or stopped early: no better validation for a while)",
        "stopped": "Stopped by the user",
        "failed": "Training failed",
        "interrupted": "Its process ended without a word (killed, crashed or the machine stopped)",
    }.get(info.status, info.status)
    if info.status == "running" and getattr(info, "host", ""):
        what += f" on {info.host}, says its status.json"  # (a run copied from there, or in a shared folder)
    if info.status == "unreadable":
        what = info.message[:1].upper() + info.message[1:]  # ("Its folder cannot be read: cannot read …")
    elif info.message and info.status != "running":
        what = f"{what}: {info.message}"
    if info.ended_early:
        if info.resumable:
            what += "\nlast.pt keeps the last saved state: the run can be resumed."
        elif info.has_best:
            what += "\nIt has no last.pt, so it cannot be resumed; its best.pt can still evaluate and predict."
        else:
            what += "\nIt saved no checkpoint, so there is nothing to resume."
    return what


def _start_time(name: str) -> datetime.datetime | None:
    """When a run began, from its folder name (`20261126-101852-…`, as RunStore.create names it); None otherwise."""
    try:
        return datetime.datetime.strptime(name[:15], "%Y%m%d-%H%M%S")
    except ValueError:
        return None


# config.json's record of the data set that is not a setting: counts (the Data set column), folder (data.root),
# and the images' fingerprint
HIDDEN_SETTINGS = ("dataset.counts.", "dataset.root", "dataset.name", "dataset.files")
RUN_MARKERS = "os^Dv"  # the 11th to 20th runs compared share the first ten's colours: their points are squares …
# At the style's 10 pt; wider with a larger desktop font (at_font: at 14 pt the names read "cache_…get_mb")
COMPARE_COLUMN_MAX = 240  # px: a run's column in the settings comparison grows to fit its values up to this
SETTING_COLUMN_MAX = 220  # px: the settings' names (a class name among the data set's counts is cut in the middle)


NO_EPOCH_NOTE = "(no finished epoch)"  # a run compared that has no curve to draw, in the legend


def short_run_labels(paths: list[str]) -> list[str]:
    """Column titles that tell runs apart: their start times from the folder names (`20261126-101852-…`), with the
    date only when the runs began on different days; "run N" for a folder named otherwise."""
    starts = [_start_time(Path(path).name) for path in paths]
    one_day = len({t.date() for t in starts if t is not None}) <= 1
    labels = [
        f"run {n}" if t is None else t.strftime("%H:%M:%S" if one_day else "%m-%d %H:%M")
        for n, t in enumerate(starts, 1)
    ]
    # runs of one label numbered in their folders' order, so that `…-tiny-2` (RunStore's second run of a second)
    # is (2): numbered in the table's order, it was (1)
    keys = [(natural_key(Path(path).name), i) for i, path in enumerate(paths)]
    out = []
    for label, key in zip(labels, keys, strict=True):
        twins = sorted(k for k, other in zip(keys, labels, strict=True) if other == label)
        out.append(f"{label} ({twins.index(key) + 1})" if len(twins) > 1 else label)
    return out


def _smoothed_batches(run_dir: str) -> tuple[list[float], list[float]]:
    """The run's batches.csv as the Train tab drew it: x = epoch - 1 + step/steps, the loss smoothed the same way."""
    from core.runs import read_batches
    from gui.charts import LossSmoother

    smooth = LossSmoother()
    rows = [r for r in read_batches(run_dir) if math.isfinite(r[3])]  # as the Train tab: a NaN is not drawn
    return [e - 1 + s / max(n, 1) for e, s, n, _ in rows], [smooth(loss) for _, _, _, loss in rows]


def dot_icon(color: str, size: int = 12) -> QIcon:
    """A filled circle in a curve's colour, for the column of that run (a header's text colour is the style's)."""
    pix = QPixmap(size * 2, size * 2)  # drawn at twice the size: sharp on HiDPI screens
    pix.setDevicePixelRatio(2.0)
    pix.fill(Qt.GlobalColor.transparent)
    p = QPainter(pix)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor(color))
    p.drawEllipse(1, 1, size - 2, size - 2)
    p.end()
    return QIcon(pix)


def _without_start_time(name: str) -> str:
    """'20261126-120817-resnext11_4x8d-sample' → 'resnext11_4x8d-sample' (the start time heads the column)."""
    return name[16:] if _start_time(name) and len(name) > 16 else name


# The settings pane's names for config.json's keys: the words of the Dataset and Train tabs' forms (a key's own name,
# "train.lr" or "cache_budget_mb", is in the name's tooltip, for config files and the command line)
SETTING_LABELS = {
    "data": "data",
    "data.root": "data folder",
    "data.image_size": "image size (px)",
    "data.val_split": "validation share",
    "data.test_split": "test share",
    "data.seed": "split seed",
    "data.augment": "augmentation",
    "data.hflip": "horizontal flip",
    "data.color_jitter": "colour jitter",
    "data.random_erasing": "random erasing",
    "data.cache": "decoded-image cache",
    "data.cache_budget_mb": "cache budget (MB)",
    "data.num_workers": "loader workers",
    "model": "model",
    "model.arch": "architecture",
    "model.pretrained": "pretrained weights",
    "model.mode": "mode",
    "model.freeze_backbone": "freeze the backbone",
    "train": "training",
    "train.epochs": "epochs",
    "train.batch_size": "batch size",
    "train.lr": "learning rate",
    "train.optimizer": "optimizer",
    "train.momentum": "momentum",
    "train.nesterov": "Nesterov momentum",
    "train.weight_decay": "weight decay",
    "train.scheduler": "LR schedule",
    "train.warmup_epochs": "warm-up epochs",
    "train.step_size": "LR step every (epochs)",
    "train.gamma": "LR step factor",
    "train.label_smoothing": "label smoothing",
    "train.grad_clip": "gradient clipping",
    "train.mixup": "mixup",
    "train.cutmix": "CutMix",
    "train.class_weights": "class weights",
    "train.early_stop_patience": "early stop (patience)",
    "train.monitor": "best epoch by",
    "train.device": "device",
    "train.amp": "mixed precision (AMP)",
    "train.channels_last": "channels last",
    "train.compile": "torch.compile",
    "train.seed": "training seed",
    "train.sync_bn": "synchronised batch norm",
    "train.backbone_lr_mult": "backbone LR factor",
    "train.save_every_s": "save at most every (s)",
    "dataset": "data set",
    "dataset.name": "name",
    "dataset.layout": "layout",
    "dataset.classes": "classes",
    "dataset.counts": "images per class",
    "dataset.content": "content fingerprint",
    "dataset.train_size": "training images",
    "dataset.val_size": "validation images",
    "dataset.test_size": "test images",
}


def _name_tip(key: str, label: str) -> str:
    """A setting's tooltip: its name, and its key in config.json when that is other words."""
    return label if key not in SETTING_LABELS or key.rpartition(".")[2] == label else f"{label} ({key} in config.json)"


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"  # ("True" / "False": Python's words)
    if isinstance(value, float):
        return f"{value:.6g}"
    if value is None:
        return "—"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value) or "—"
    return str(value)


# Training settings that only one optimizer / scheduler / mode reads (core.engine.make_optimizer, make_scheduler,
# _param_groups): field -> the run's setting that uses it and the values that do. A run's other values are the
# dataclass defaults, never used: an adamw run listed "momentum 0.9" as if it had one.
USED_ONLY_WITH = {
    "momentum": ("optimizer", ("sgd",)),
    "nesterov": ("optimizer", ("sgd",)),
    "warmup_epochs": ("scheduler", ("cosine",)),
    "step_size": ("scheduler", ("step",)),
    "gamma": ("scheduler", ("step", "plateau")),  # (plateau's factor)
}


def _as_trained(config: dict, status: dict | None = None) -> dict:
    """A run's config.json as the run used it, for the settings pane: the values its optimizer and scheduler do not
    read are left out (and the flip of augmentation "none", which flips nothing), and colour jitter / erasing at 0
    under "strong" say what strong used instead ("0.3 (strong's own)", as the Dataset tab's fields do; "0" read as
    none). The device "auto" chose (status.json's) is said beside it, and mixed precision is "no" off CUDA (a CPU
    run's config says "amp": true, the GPU's default, and trained in full precision)."""
    from core.config import STRONG_ERASING, STRONG_JITTER  # light (no torch)

    out = {key: dict(value) if isinstance(value, dict) else value for key, value in config.items()}
    train, data = out.get("train"), out.get("data")
    used = (status or {}).get("device")
    used = used if isinstance(used, str) and used else None
    if isinstance(train, dict):
        asked = train.get("device")
        if used and asked == "auto":
            train["device"] = f"auto ({used})"
        on = used or (asked if isinstance(asked, str) and asked != "auto" else "")
        if train.get("amp") is True and on and not on.startswith("cuda"):
            train["amp"] = f"no (full precision on {({'cpu': 'the CPU', 'mps': 'MPS'}).get(on, on)})"
        for key, (setting, users) in USED_ONLY_WITH.items():
            if key in train and setting in train and train[setting] not in users:
                del train[key]
        model = config.get("model") if isinstance(config.get("model"), dict) else {}
        if "backbone_lr_mult" in train and (model.get("mode") != "finetune" or model.get("freeze_backbone")):
            del train["backbone_lr_mult"]  # only a fine-tune's trainable backbone learns at lr × this
    if not isinstance(data, dict):
        return out
    for key in ("val_split", "test_split"):  # the shares as the Dataset tab's fields show them ("0.2" read as 0.2 %)
        value = data.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            data[key] = f"{round(100 * value, 1):g} %"
    if data.get("augment") == "none":
        data.pop("hflip", None)  # (a centre crop alone: runs told apart by "hflip True | False" that flipped nothing)
    if data.get("augment") == "strong":
        for key, own in (("color_jitter", STRONG_JITTER), ("random_erasing", STRONG_ERASING)):
            if key in data and data[key] == 0:
                data[key] = f"{_fmt(own)} (strong's own)"
    return out


def ask_int(parent: QWidget, title: str, text: str, value: int, least: int, most: int) -> tuple[int, bool]:
    """QInputDialog.getInt, its text wrapped to the dialog's width: getInt's label keeps each line whole, so a long
    text was broken by hand and read ragged (a short line, a long one, a short one) at any font. Paragraphs are
    separated by blank lines in `text`."""
    dialog = QInputDialog(parent)
    dialog.setWindowTitle(title)
    dialog.setInputMode(QInputDialog.InputMode.IntInput)
    dialog.setIntRange(least, most)
    dialog.setIntValue(value)
    dialog.setLabelText(text)
    label = dialog.findChild(QLabel)
    if label is not None:
        label.setWordWrap(True)
        label.setMinimumWidth(at_font(460, label))  # (wrapped, a label asks for little width: a tall narrow box)
    accepted = dialog.exec() == QDialog.DialogCode.Accepted
    value = dialog.intValue()
    dialog.deleteLater()
    return value, accepted


class RunsTab(QWidget):
    """Lists the runs folder; compares curves; exports, deletes, and hands runs to Predict / Evaluate / Train."""

    predict_requested = Signal(str)  # path of best.pt
    evaluate_requested = Signal(str)  # run folder
    resume_requested = Signal(str)  # run folder
    extend_requested = Signal(str, int)  # a completed run's folder, and the epochs it should reach
    runs_deleted = Signal(list)  # run folders that no longer exist
    model_export_finished = Signal()  # an "Export model" job ended (its message box has been shown)
    status_message = Signal(str)  # for the window's status bar: "Saved curves to …"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._runs_dir: str | None = None
        self._training_busy = False  # the Train tab is training a run (one at a time)
        self._own_run: str | None = None  # that run's folder, once known
        self._paused_run: str | None = None  # the run the Train tab holds paused (status.json says "running")
        self._infos: list[Any] = []
        self._had_runs = False  # (runs were listed in this window: a runs folder gone since is said to be gone)
        self._records: dict[str, Any] = {}
        self.last_export: dict[str, Any] | None = None  # what the last "Export model" saved (None: it failed)
        self._watcher = QFileSystemWatcher(self)
        self._watcher.directoryChanged.connect(self._on_folder_changed)
        self._root_parent: str | None = None  # the runs folder's parent, watched for its going
        self._watcher.fileChanged.connect(self._schedule_refresh)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(400)
        self._debounce.timeout.connect(self.refresh)
        # a killed process writes nothing, so no file change tells of it: while the tab shows a running run, the
        # lock (or pid) behind it is looked at every few seconds (a CLI run killed stayed "running" until Refresh)
        self._alive = QTimer(self)
        self._alive.setInterval(ALIVE_CHECK_MS)
        self._alive.timeout.connect(self._check_running)
        self._build()
        self.refresh()

    # ------------------------------------------------------------------ layout

    def _build(self) -> None:
        top = QHBoxLayout()
        self.folder_label = QLabel("")
        self.folder_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.folder_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        top.addWidget(self.folder_label, 1)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Re-read the runs folder; runs made by the command line appear too (F5)")
        self.refresh_button.clicked.connect(self.refresh)
        self.open_folder_button = QPushButton("Show runs folder")
        self.open_folder_button.setToolTip("Show the runs folder in the file manager")
        self.open_folder_button.clicked.connect(self._open_folder)
        top.addWidget(self.refresh_button)
        top.addWidget(self.open_folder_button)

        self.table = QTableWidget(0, len(COLUMNS))
        sort_header(self.table)  # (the sorted numbers' right-aligned titles ran under the arrow)
        self.table.setAccessibleName("Runs")
        self.table.setTabKeyNavigation(False)  # Tab reaches the buttons; arrows move in the table
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setSortingEnabled(True)
        self.table.verticalHeader().setVisible(False)
        self.table.setWordWrap(False)
        h = self.table.horizontalHeader()
        # every column but the run name is user-resizable and fitted to its contents on refresh (until the user
        # resizes it); the run name stretches over the rest of the width
        h.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        h.setSectionResizeMode(STRETCH_COLUMN, QHeaderView.ResizeMode.Stretch)
        h.setStretchLastSection(False)
        h.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        for col in NUMERIC_COLUMNS:
            self.table.horizontalHeaderItem(col).setTextAlignment(
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
            )
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # long run names keep their date and data set
        self._user_sized: set[int] = set()
        self._fitting = False
        h.sectionResized.connect(self._on_section_resized)
        self.table.sortItems(COL_DATE, Qt.SortOrder.DescendingOrder)
        self._selection_rest = QTimer(self)
        self._selection_rest.setSingleShot(True)
        self._selection_rest.setInterval(SELECTION_SHOW_MS)
        self._selection_rest.timeout.connect(self._on_selection)
        self.table.itemSelectionChanged.connect(self._on_selection_changed)
        self.table.doubleClicked.connect(lambda *_: self._evaluate())
        on_return(self.table, self._evaluate)

        self.empty_label = QLabel()
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        self.empty_label.setObjectName("emptyNote")  # (style.qss: larger and grey, scaled with the desktop font)
        self.table_stack = QStackedWidget()
        self.table_stack.addWidget(self.table)
        self.table_stack.addWidget(self.empty_label)

        buttons = QHBoxLayout()
        self.predict_button = QPushButton("Predict")  # short labels: this row sets the window's least width
        self.predict_button.clicked.connect(self._predict)
        self.evaluate_button = QPushButton("Evaluate")
        self.evaluate_button.setToolTip("Open the run in the Evaluate tab (double-click a row does the same)")
        self.evaluate_button.clicked.connect(self._evaluate)
        self.resume_button = QPushButton("Resume training")
        self.resume_button.setToolTip("Continue a stopped, interrupted or failed run from its last.pt")
        self.resume_button.clicked.connect(self._resume)
        self.curves_button = QPushButton("Curves image…")
        self.curves_button.setToolTip("Export the curves shown as an image (PNG, or SVG / PDF to scale them)")
        self.curves_button.clicked.connect(self._export_curves)
        self.csv_button = QPushButton("History CSV…")
        self.csv_button.setToolTip("Export the run's history.csv (one row per epoch)")
        self.csv_button.clicked.connect(self._export_csv)
        self.model_button = QPushButton("Export model…")
        self.model_button.setToolTip(
            "Save the run's best.pt as ONNX or TorchScript for use outside the app; the "
            "file is kept only if it gives the same answers as the PyTorch model"
        )
        self.model_button.clicked.connect(self._export_model)
        self._export_worker: Any = None
        self.delete_button = QPushButton("Delete…")
        self.delete_button.setToolTip("Delete the selected runs' folders, after asking (Delete key)")
        self.delete_button.clicked.connect(self.delete_selected)
        self.predict_button.setToolTip("Open the Predict tab with this run's best.pt")
        # what each button does; a disabled one says why instead (_update_buttons)
        self._tips = {
            b: b.toolTip()
            for b in (
                self.predict_button,
                self.evaluate_button,
                self.curves_button,
                self.csv_button,
                self.model_button,
                self.delete_button,
            )
        }
        delete_key = QShortcut(QKeySequence.StandardKey.Delete, self.table)
        delete_key.setContext(Qt.ShortcutContext.WidgetShortcut)  # the table's Delete, not a text field's
        delete_key.activated.connect(lambda: self.delete_button.isEnabled() and self.delete_selected())
        for b in (self.predict_button, self.evaluate_button, self.resume_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        for b in (self.model_button, self.curves_button, self.csv_button, self.delete_button):
            buttons.addWidget(b)

        upper = QWidget()
        uv = QVBoxLayout(upper)
        uv.setContentsMargins(0, 0, 0, 0)
        uv.addWidget(self.table_stack, 1)
        uv.addLayout(buttons)

        # curves: the matplotlib canvas is made on first use (matplotlib takes most of a second to import)
        self.canvas: Any = None
        self.figure: Any = None
        self._legend_handles: list[Any] = []  # the lines the legend names
        self._legend_key = 0  # how many of them, at the end, are the key (solid/dashed), not runs
        self._legend_labels: list[str] = []  # and what it calls them
        self._legend_now: tuple[int, int] = (0, 0)  # its columns and most rows, as placed
        self._laid_out: tuple | None = None  # what the chart's last constrained layout was worked out for
        self._layout_asked: tuple | None = None  # and what the next one is asked for (drawn: _laid_out)
        self.table.viewport().installEventFilter(self)  # (refits the columns on a resize: eventFilter)
        self.table.installEventFilter(self)  # (Tab into it selects a run: eventFilter)
        self._loss_ax: Any = None
        self._acc_ax: Any = None
        self.train_check = QCheckBox("Also show training curves (dashed)")
        self.train_check.setChecked(bool(load_json_setting(settings(), "runs/train_curves", False)))  # (as left)
        self.train_check.toggled.connect(lambda on: store_json_setting(settings(), "runs/train_curves", on))
        self.train_check.toggled.connect(self._draw_curves)
        chart_box = QWidget()
        chart_box.setMinimumHeight(220)
        self.chart_layout = QVBoxLayout(chart_box)
        self.chart_layout.setContentsMargins(0, 0, 0, 0)
        self.chart_layout.addStretch(1)
        self.chart_layout.addWidget(self.train_check)

        self.settings_tree = QTreeWidget()
        self._settings_shown: list[str] | None = None  # the runs whose settings it shows
        self.settings_tree.setAccessibleName("Settings of the selected runs")
        self.settings_tree.setHeaderLabels(["Setting", "Value"])
        self.settings_tree.setAlternatingRowColors(True)
        self.settings_tree.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # run names differ at the start and end
        self.settings_tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.settings_tree.setMinimumWidth(260)
        self._frozen_names = FrozenFirstColumn(self.settings_tree)  # many runs compared scroll sideways

        lower = QSplitter(Qt.Orientation.Horizontal)
        lower.addWidget(chart_box)
        lower.addWidget(self.settings_tree)
        lower.setStretchFactor(0, 3)
        lower.setStretchFactor(1, 1)
        lower.setSizes([820, 340])
        self.lower_split = lower
        self._settings_sized_by_user = False  # once the user drags it, the settings pane keeps its width
        self._off_note = ""  # the loss plot's note on validation losses off its scale ("" without)
        self._slot_of: dict[str, int] = {}  # each run's colour (and marker) slot, kept from one comparison to the next
        lower.splitterMoved.connect(lambda *_: setattr(self, "_settings_sized_by_user", True))

        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(upper)
        split.addWidget(lower)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        split.setSizes([300, 420])

        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(split, 1)
        self._update_buttons()

    def _ensure_canvas(self) -> None:
        if self.canvas is not None:
            return
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg

        from gui.charts import chart_figure

        self.figure = chart_figure(8, 3.2)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setAccessibleName("Loss and accuracy curves of the selected runs")
        self.canvas.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._loss_ax = self.figure.add_subplot(1, 2, 1)
        self._acc_ax = self.figure.add_subplot(1, 2, 2)
        stretch = self.chart_layout.takeAt(0)  # the placeholder stretch
        del stretch
        self.chart_layout.insertWidget(0, self.canvas, 1)
        self.canvas.installEventFilter(self)  # a narrower chart gets a legend of fewer columns
        self.canvas.mpl_connect("draw_event", self._on_drawn)

    def eventFilter(self, obj: Any, event: Any) -> bool:
        if event.type() == QEvent.Type.Resize and obj is self.table.viewport():
            self.fit_columns()  # (a narrower window: the run names first)
        keyboard = (
            Qt.FocusReason.TabFocusReason,
            Qt.FocusReason.BacktabFocusReason,
            Qt.FocusReason.ShortcutFocusReason,
        )
        focused = obj is self.table and event.type() == QEvent.Type.FocusIn and event.reason() in keyboard
        if focused and self.table.rowCount() and not self.table.selectionModel().hasSelection():
            # Tab into the list: its current run is selected (a row looked current, but nothing was: every button
            # was off, and Return did nothing)
            current = self.table.currentRow()
            self.table.selectRow(current if current >= 0 else 0)
        if obj is self.canvas and event.type() == QEvent.Type.Resize:
            self._lay_out(None)  # (the margins are worked out again for the new size)
        resized = obj is self.canvas and event.type() == QEvent.Type.Resize and self._legend_handles
        if resized and self._legend_shape(event.size().width(), event.size().height()) != self._legend_now:
            self._place_legend(event.size().width(), event.size().height())
        if resized and self._off_note:
            self._title_loss(event.size().width())  # (drawn with the resize)
        return super().eventFilter(obj, event)

    def _legend_columns(self, width: int) -> int:
        """As many columns (up to 6) as the names fit side by side: a centred legend wider than the chart was cut
        off at both ends."""
        from gui.charts import px_per_point

        chars = max(len(label) for label in self._legend_labels)
        per = chars * 8 * 0.6 * px_per_point(self.figure) + 40  # 8 pt text, and the line sample with its gaps
        return max(1, min(6, len(self._legend_handles), int(width / per)))

    def _legend_rows(self, height: int) -> int:
        """The legend's most rows: a third of the chart's height (70 runs' names, 24 rows, had pressed both plots
        into a sliver behind them)."""
        from gui.charts import px_per_point

        row = 8 * 1.75 * px_per_point(self.figure)  # 8 pt text and the space between rows
        return max(1, int(height / 3 / row))

    def _legend_shape(self, width: int, height: int) -> tuple[int, int]:
        return self._legend_columns(width), self._legend_rows(height)

    def _place_legend(self, width: int | None = None, height: int | None = None) -> None:
        from matplotlib.lines import Line2D

        for legend in self.figure.legends:
            legend.remove()
        if not self._legend_handles:
            return
        self._legend_now = self._legend_shape(
            self.canvas.width() if width is None else width, self.canvas.height() if height is None else height
        )
        cols, rows = self._legend_now
        handles, labels = list(self._legend_handles), list(self._legend_labels)
        room = cols * rows
        if len(handles) > room:  # the first runs, then how many more, and the key (dashed/solid) if there is one
            tail = self._legend_key
            runs = max(0, room - 1 - tail)
            more = len(handles) - tail - runs
            handles = [*handles[:runs], Line2D([], [], linestyle="none"), *handles[len(handles) - tail :]]
            labels = [*labels[:runs], f"… {count_noun(more, 'more run')}", *labels[len(labels) - tail :]]
        self.figure.legend(
            handles=handles,
            labels=labels,
            loc="outside lower center",
            fontsize=8,
            frameon=False,
            ncols=cols,
        )

    @property
    def loss_ax(self) -> Any:
        self._ensure_canvas()
        return self._loss_ax

    @property
    def acc_ax(self) -> Any:
        self._ensure_canvas()
        return self._acc_ax

    # ------------------------------------------------------------------ data

    def set_runs_dir(self, path: str | os.PathLike) -> None:
        self._runs_dir = str(path)
        self.refresh()

    def runs_dir(self) -> Path:
        from core.runs import default_runs_dir

        return Path(self._runs_dir) if self._runs_dir else default_runs_dir()

    def _store(self) -> Any:
        from core.runs import RunStore

        return RunStore(self.runs_dir())

    def refresh(self) -> None:
        """Re-read the runs folder, keeping the selection."""
        selected = set(self.selected_paths())
        root = self.runs_dir()
        try:
            self._infos = self._store().list()
        except OSError as e:
            self._infos = []
            self.folder_label.setText(f"Cannot read {root}: {e.strerror or e}")
        else:
            self.folder_label.setText(f"{count_noun(len(self._infos), 'run')} in {root}")
        self._records.clear()
        self._watch(root)
        self._sync_alive_check()
        self.table.blockSignals(True)
        self.table.setSortingEnabled(False)
        self.table.clearContents()
        self.table.setRowCount(len(self._infos))
        for row, info in enumerate(self._infos):
            self._fill_row(row, info)
        self.table.setSortingEnabled(True)
        self.fit_columns()
        self.table.clearSelection()
        mode = self.table.selectionMode()
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.MultiSelection)
        for row in range(self.table.rowCount()):
            if self.table.item(row, COL_NAME).data(PATH_ROLE) in selected:
                self.table.selectRow(row)
        self.table.setSelectionMode(mode)
        self.table.blockSignals(False)
        if self._infos:
            self._had_runs = True
            self.table_stack.setCurrentIndex(0)
        elif not root.exists() and self._had_runs:
            # (runs listed a moment ago, and the folder gone: a drive unplugged, a folder removed; "No runs yet"
            # read as if there had been none)
            self.empty_label.setText(
                f"The runs folder\n{root}\nis not there (moved, deleted, or on a drive not connected).\n\n"
                "A new run makes it again."
            )
            self.table_stack.setCurrentIndex(1)
        else:
            self.empty_label.setText(
                f"No runs yet in\n{root}\n\nTrain a model in the Train tab, or from a terminal:\n"
                "python main.py train --data DIR"
            )
            self.table_stack.setCurrentIndex(1)
        self._on_selection()

    def _fill_row(self, row: int, info: Any) -> None:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.created)) if info.created else "—"
        planned = info.epochs_planned
        epochs = f"{info.epochs_done} / {planned}" if planned else str(info.epochs_done)
        acc = "—" if info.best_val_acc is None else f"{info.best_val_acc:.1%}"
        if info.best_val_acc is not None and info.best_epoch is not None:
            acc += f"  (ep {info.best_epoch})"
        cells = [
            SortItem(created, info.created),
            SortItem(info.name, info.name.lower()),
            SortItem(info.arch, info.arch),
            SortItem(info.dataset, info.dataset.lower()),
            SortItem(epochs, info.epochs_done),
            SortItem(acc, info.best_val_acc),
            SortItem(status_text(info), info.status),
        ]
        cells[COL_NAME].setData(PATH_ROLE, str(info.path))
        cells[COL_NAME].setToolTip(str(info.path))
        cells[COL_STATUS].setForeground(QColor(STATUS_COLORS.get(info.status, "#4a525c")))
        cells[COL_STATUS].setToolTip(status_explanation(info))
        here = self._is_paused(info)
        if here or self._paused_elsewhere(info):
            cells[COL_STATUS].setText("paused")  # (it said "running", "Training now", beside "Paused" below)
            cells[COL_STATUS].setForeground(QColor(WARNING_COLOR))
            cells[COL_STATUS].setToolTip(
                "Paused in this window: Resume in the Train tab goes on with it"
                if here
                else "Paused in another window: its Resume goes on with it"
            )
        for c in (COL_EPOCHS, COL_ACC):
            cells[c].setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        for col, item in enumerate(cells):
            self.table.setItem(row, col, item)

    def fit_columns(self) -> None:
        """Size the columns to their header and cells (capped), except the stretch column and user-resized ones.
        The data set's column gives up width (down to DATA_LEAST) while the run names are cut: at 1024 px it kept
        260 for one long name and three runs read "20261127-…8d-sample" (the data set's name ends the run's)."""
        h = self.table.horizontalHeader()
        self._fitting = True
        try:
            for col in range(len(COLUMNS)):
                if col == STRETCH_COLUMN or col in self._user_sized:
                    continue
                cells = self.table.sizeHintForColumn(col) if self.table.rowCount() else 0
                h.resizeSection(col, min(MAX_FIT_WIDTH, max(h.sectionSizeHint(col), cells)))
            if self.table.rowCount() and COL_DATA not in self._user_sized:
                others = sum(h.sectionSize(c) for c in range(len(COLUMNS)) if c != STRETCH_COLUMN)
                short = self.table.sizeHintForColumn(STRETCH_COLUMN) + 8 - (self.table.viewport().width() - others)
                if short > 0:
                    least = max(DATA_LEAST, h.sectionSizeHint(COL_DATA))
                    h.resizeSection(COL_DATA, max(least, h.sectionSize(COL_DATA) - short))
        finally:
            self._fitting = False

    def _on_section_resized(self, col: int, _old: int, _new: int) -> None:
        if not self._fitting and col != STRETCH_COLUMN:
            self._user_sized.add(col)  # a width the user chose is kept across refreshes

    def _watch(self, root: Path) -> None:
        """Watch the runs folder (runs made and deleted), every run's folder (status.json replaced: a run resumed
        or trained on by another program, which was shown stopped or completed all through it, Delete and Resume
        offered) up to WATCHED_RUNS_MAX of the newest, and the history.csv of those running (a line per epoch)."""
        old = self._watcher.directories() + self._watcher.files()
        if old:
            self._watcher.removePaths(old)
        # (no runs folder yet: the nearest folder above it that is there, so the first run's making of it is seen;
        # the list said "0 runs" all through that run)
        above = next((p for p in root.parents if p.is_dir()), None)
        paths = [str(root)] if root.is_dir() else [str(above)] if above is not None else []
        # the folder above it too, to see the runs folder renamed or moved away (its own watch says nothing: the
        # runs stayed listed, Delete offered on folders no longer there); its other changes are let be
        self._root_parent = str(root.parent) if root.is_dir() and root.parent != root else None
        if self._root_parent is not None:
            paths.append(self._root_parent)
        # and folders in it that are no run yet (one just made, one being copied in): listed once their files land
        with contextlib.suppress(OSError):
            paths += [str(p) for p in self._store().forming()]
        running = [i for i in self._infos if i.status == "running"]
        others = [i for i in self._infos if i.status != "running"][: max(0, WATCHED_RUNS_MAX - len(running))]
        paths += [str(i.path) for i in running + others]
        for info in running:
            hist = Path(info.path) / "history.csv"
            if hist.exists():
                paths.append(str(hist))
        if paths:
            self._watcher.addPaths(paths)

    def _schedule_refresh(self, *_: Any) -> None:
        self._debounce.start()

    def _on_folder_changed(self, path: str) -> None:
        if path == self._root_parent and self.runs_dir().is_dir():
            return  # (something else beside the runs folder)
        self._schedule_refresh()

    def _sync_alive_check(self) -> None:
        if self.isVisible() and any(i.status == "running" for i in self._infos):
            if not self._alive.isActive():
                self._alive.start()
        else:
            self._alive.stop()

    def _check_running(self) -> None:
        """Refresh when a run listed as running is not any more (its process ended without writing a word)."""
        if self.window().isMinimized():
            return  # (nobody is looking: the first tick after the window comes back looks)
        for info in self._infos:
            if info.status == "running":
                try:
                    ended = self._store().info(info.path).status != "running"
                except OSError:
                    ended = True  # (its folder gone or unreadable: the listing says which)
                if ended:
                    self.refresh()
                    return
        self._sync_alive_check()

    def hideEvent(self, event: Any) -> None:  # noqa: N802
        super().hideEvent(event)
        self._alive.stop()

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802
        super().showEvent(event)
        self.refresh()
        if self.canvas is None:
            self._draw_curves()

    def _info(self, path: str) -> Any:
        return next((i for i in self._infos if str(i.path) == path), None)

    def _record(self, path: str) -> Any:
        if path not in self._records:
            try:
                self._records[path] = self._store().load(path, evaluation=False)  # (read by _evaluated_accuracy)
            except (OSError, ValueError):
                self._records[path] = None
        return self._records[path]

    def run_count(self) -> int:
        return self.table.rowCount()

    def selected_paths(self) -> list[str]:
        """Run folders of the selected rows, in table order."""
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        return [self.table.item(r, COL_NAME).data(PATH_ROLE) for r in rows if self.table.item(r, COL_NAME)]

    def run_slots(self, paths: list[str]) -> list[int]:
        """The colour slots of these runs: RUN_COLORS[slot % 10], RUN_MARKERS[slot // 10]. A run keeps the slot it
        was first drawn in while that slot is free in the selection: by place in the selection, a run turned from
        blue to orange when a newer run was selected beside it. A new run takes the lowest slot no other run
        holds, as long as one is left."""
        used: set[int] = set()
        out = []
        for path in paths:
            slot = self._slot_of.get(path)
            if slot is None or slot in used:
                held = set(self._slot_of.values())
                free = [i for i in range(len(RUN_COLORS)) if i not in used and i not in held]
                slot = free[0] if free else next(i for i in range(len(paths) + len(used) + 1) if i not in used)
                self._slot_of[path] = slot
            used.add(slot)
            out.append(slot)
        return out

    @staticmethod
    def slot_color(slot: int) -> str:
        return RUN_COLORS[slot % len(RUN_COLORS)]

    def select_runs(self, paths: list[str]) -> None:
        """Select these run folders (others are deselected)."""
        wanted = {str(p) for p in paths}
        model, last = self.table.model(), self.table.columnCount() - 1
        chosen = QItemSelection()  # (at once: a row at a time drew the curves of 1, 2, … runs on the way)
        rows = [r for r in range(self.table.rowCount()) if self.table.item(r, COL_NAME).data(PATH_ROLE) in wanted]
        for row in rows:
            chosen.select(model.index(row, 0), model.index(row, last))
        selection = self.table.selectionModel()
        if rows:  # (the current row, which Enter acts on: the last chosen, as selectRow left it)
            selection.setCurrentIndex(model.index(rows[-1], COL_NAME), QItemSelectionModel.SelectionFlag.NoUpdate)
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        selection.select(chosen, flags)
        if self._selection_rest.isActive():  # (chosen by the program: shown at once)
            self._on_selection()

    # ------------------------------------------------------------------ selection → curves, settings, buttons

    def _on_selection_changed(self) -> None:
        """By hand (a click, an arrow key): the buttons follow at once, the curves and settings once it rests."""
        self._update_buttons()
        self._selection_rest.start()

    def _on_selection(self) -> None:
        self._selection_rest.stop()
        self._draw_curves()
        self._show_settings()
        self._update_buttons()

    def _has_curves(self, path: str) -> bool:
        """A finished epoch in its history.csv to draw or list (status.json's count alone is not: the file may have
        been emptied)."""
        info = self._info(path)
        if info is None or not info.epochs_done:
            return False
        if "history.csv" in info.unreadable_files:
            record = self._record(path)
            return bool(record is not None and record.history)
        return True

    def _newer_settings(self, path: str) -> str:
        """Why a run cannot be resumed here when its config.json holds settings this version does not know (written
        by a newer ResNeXt Studio), naming the file; "" otherwise."""
        from core.config import newer_settings_message, unknown_settings

        record = self._record(path)
        unknown = unknown_settings(record.config) if record is not None else []
        return newer_settings_message(unknown, Path(path) / "config.json") if unknown else ""

    def _is_paused(self, info: Any) -> bool:
        """Whether `info` is the run the Train tab holds paused (its status.json says "running")."""
        return bool(
            info is not None
            and info.status == "running"
            and self._paused_run
            and Path(info.path) == Path(self._paused_run)
        )

    def _paused_elsewhere(self, info: Any) -> bool:
        """Whether `info` is a run another program (another window) holds paused: `runs` and this list said
        "running" all through it."""
        own = bool(info is not None and self._own_run and Path(info.path) == Path(self._own_run))
        # (this window's own: its mark outlives a Resume by a moment, until the training thread is back)
        return bool(info is not None and info.status == "running" and info.paused and not own)

    def set_paused_run(self, run_dir: str | None) -> None:
        """The run the Train tab has paused (None: none is): its row says "paused", not "running"."""
        if run_dir != self._paused_run:
            self._paused_run = run_dir
            if self.isVisible():  # (a hidden tab is refreshed when it is shown: showEvent)
                self.refresh()

    def set_training_busy(self, busy: bool, run_dir: str | None = None) -> None:
        """The Train tab started or ended a run (`run_dir`: its folder, once known): Resume / Train more epochs…
        wait while it trains."""
        self._training_busy = bool(busy)
        self._own_run = run_dir if busy else None
        if busy and run_dir and all(str(i.path) != str(run_dir) for i in self._infos):
            self._schedule_refresh()  # (its folder made before the runs folder was watched: listed only at its end)
        self._update_buttons()

    def _update_buttons(self) -> None:
        paths = self.selected_paths()
        one = self._info(paths[0]) if len(paths) == 1 else None
        self.predict_button.setEnabled(bool(one and one.has_best))
        self.evaluate_button.setEnabled(bool(one and one.has_best))
        more = bool(one and one.has_last and one.status == "completed")  # a finished run can train on
        self.resume_button.setText("Train more epochs…" if more else "Resume training")
        self.resume_button.setToolTip(
            "Go on training this finished run from its last.pt for more epochs"
            if more
            else "Continue a stopped, interrupted or failed run from its last.pt"
        )
        self.resume_button.setEnabled(bool(one and (one.resumable or more)))
        if len(paths) != 1:  # a disabled button says why (as the others do: Resume alone still said what it does)
            self.resume_button.setToolTip("Select one run (these act on one)" if paths else "Select a run first")
        elif self._is_paused(one):
            self.resume_button.setToolTip("This run is paused in the Train tab: its Resume goes on with it")
        elif self._paused_elsewhere(one):
            self.resume_button.setToolTip("This run is paused in another window: its Resume goes on with it")
        elif one is not None and one.status == "running" and getattr(one, "host", ""):
            from core.runs import foreign_quiet_s

            quiet = round(foreign_quiet_s(one.path) / 60)  # (longer for a run of long epochs or rare saves)
            self.resume_button.setToolTip(
                f"This run is training on {one.host}, says its status.json. If it is not, the run shows as "
                f"interrupted once that file is {quiet} minutes old and nothing holds its folder's lock"
            )
        elif one is not None and one.status == "running":
            self.resume_button.setToolTip("This run is training now; resume it once it has stopped")
        elif self.resume_button.isEnabled() and (newer := self._newer_settings(paths[0])):
            self.resume_button.setEnabled(False)  # (the Train tab failed on it with a message naming no file)
            self.resume_button.setToolTip(newer)
        elif self._training_busy and self.resume_button.isEnabled():
            self.resume_button.setEnabled(False)
            self.resume_button.setToolTip("Another run is training in the Train tab; this one can go on after it")
        elif one is not None and not one.has_last:
            self.resume_button.setToolTip(
                "This run has no last.pt (it ended before its first epoch was saved): nothing to resume"
            )
        with_epochs = [p for p in paths if self._has_curves(p)]
        self.curves_button.setEnabled(bool(with_epochs))  # nothing to draw or list for runs without a finished epoch
        self.csv_button.setEnabled(len(paths) == 1 and bool(with_epochs))
        self.model_button.setEnabled(bool(one and one.has_best) and self._export_worker is None)
        self.delete_button.setEnabled(
            bool(paths) and all((i := self._info(p)) is not None and i.status != "running" for p in paths)
        )
        infos = [self._info(p) for p in paths]
        if not paths:
            no_best = no_epoch = "Select a run first"
        elif len(paths) > 1:
            no_best = no_epoch = "Select one run (these act on one)"
        elif one is None:
            no_best = no_epoch = "This run's folder cannot be read"
        elif one.status == "running":
            doing = (
                "paused in its first epoch (Train tab)"
                if self._is_paused(one)
                else "paused in its first epoch"
                if self._paused_elsewhere(one)
                else "in its first epoch"
            )
            no_best = no_epoch = f"This run is {doing}: its best.pt and curves come when that epoch ends"
        else:
            no_best = "This run has no best.pt: it ended before its first epoch was saved"
            no_epoch = "This run has no finished epoch: nothing to draw or list"
        if one is not None and "history.csv" in one.unreadable_files and not with_epochs:
            no_epoch = "This run's history.csv cannot be read (damaged or empty): nothing to draw or list"
        if len(paths) > 1 and not with_epochs:
            no_epoch = "None of these runs has a finished epoch yet: nothing to draw"
        if not paths:
            no_delete = "Select a run first"
        elif any(self._is_paused(i) for i in infos):
            no_delete = "A run paused in the Train tab cannot be deleted; stop it there first"
        elif any(self._paused_elsewhere(i) for i in infos):
            no_delete = "A run paused in another window cannot be deleted; stop it there first"
        elif any(i is not None and i.status == "running" for i in infos):
            no_delete = "A run training now cannot be deleted"
        else:
            no_delete = "A run folder that cannot be read is not deleted from here; use Show runs folder"
        why = {
            self.predict_button: no_best,
            self.evaluate_button: no_best,
            self.curves_button: no_epoch,
            self.csv_button: no_epoch,
            self.model_button: "An export is being made; one at a time" if self._export_worker else no_best,
            self.delete_button: no_delete,
        }
        for button, tip in self._tips.items():
            button.setToolTip(tip if button.isEnabled() else why[button])

    def _style(self, ax: Any) -> None:
        ax.grid(True, color="#e3e6ea", linewidth=0.8)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        for side in ("left", "bottom"):
            ax.spines[side].set_color("#9aa3ad")
        ax.tick_params(colors="#4a525c", labelsize=8)

    def _draw_curves(self) -> None:
        paths = self.selected_paths()
        if self.canvas is None and not paths and not self.isVisible():
            return
        self._ensure_canvas()
        for ax, title, ylabel in ((self.loss_ax, "Loss", "loss"), (self.acc_ax, "Accuracy", "accuracy")):
            ax.clear()
            self._style(ax)
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("epoch", fontsize=9)
            ax.set_ylabel(ylabel, fontsize=9)
        self._legend_handles, self._legend_labels = [], []
        self._off_note = ""
        self._place_legend()
        if not paths:  # (no runs at all: the table's place says how to make one)
            self._placeholder("Select one or more runs\nto compare their curves" if self._infos else "No runs yet")
            return
        show_train = self.train_check.isChecked()
        train_losses: list[float] = []  # every run's training losses: they set the scale (charts.loss_cap)
        drawn_train: list[float] = []  # those drawn (the axis fits what it shows)
        val_points: list[tuple[str, str, list[float], list[float]]] = []  # (colour, run, epochs, validation losses)
        slots = dict(zip(paths, self.run_slots(paths), strict=True))
        records = [(slots[path], path, self._record(path)) for path in paths]
        records = [(n, path, r) for n, path, r in records if r is not None and r.history]
        if not records:
            xs, ys = _smoothed_batches(paths[0]) if len(paths) == 1 else ([], [])
            if xs:  # e.g. a run whose loss exploded in its first epoch: its batches show how
                self.loss_ax.plot(xs, ys, "-", color=self.slot_color(slots[paths[0]]), linewidth=1.2, gid="batches")
                self.loss_ax.set_title("Loss per batch (no finished epoch)", fontsize=10)
                self.loss_ax.xaxis.get_major_locator().set_params(integer=True)
                self._placeholder("No finished epoch yet", axes=(self.acc_ax,))
                return
            self._placeholder("No finished epoch yet" if len(paths) == 1 else "No finished epoch yet\nin these runs")
            return
        no_val = False  # a run drawn with its training curve as the solid line (it has no validation split)
        short = dict(zip(paths, short_run_labels(paths), strict=True))
        for n, path, record in records:  # n: the run's colour slot, kept from one comparison to the next
            color = self.slot_color(n)
            label = Path(path).name
            for ax, key in ((self.loss_ax, "loss"), (self.acc_ax, "acc")):
                val = self._series(record.history, f"val_{key}")
                train = self._series(record.history, f"train_{key}")
                main = val if val[0] else train  # runs without a validation split show their training curve
                no_val = no_val or not val[0]
                if key == "loss":
                    train_losses += train[1]
                    if show_train or not val[0]:
                        drawn_train += train[1]
                    if val[0]:
                        val_points.append((color, short[path], *val))
                ax.plot(
                    main[0],
                    main[1],
                    "-",
                    marker=RUN_MARKERS[n // len(RUN_COLORS) % len(RUN_MARKERS)],  # after 10 runs colours repeat
                    color=color,
                    markersize=3 if n < len(RUN_COLORS) else 4,
                    linewidth=1.6,
                    label=label,
                    gid=path,
                )
                if show_train and val[0] and train[0]:
                    one = len(train[0]) == 1  # (a dashed line through one point draws nothing: a hollow dot)
                    ax.plot(
                        train[0],
                        train[1],
                        "--",
                        marker="o" if one else None,
                        markerfacecolor="white",
                        color=color,
                        linewidth=1.0,
                        alpha=0.8,
                        gid=path,
                    )
            if show_train and len(records) == 1:  # one run: its per-batch training loss too, as it was drawn live
                xs, ys = _smoothed_batches(path)
                if xs:
                    train_losses += ys
                    drawn_train += ys
                    self.loss_ax.plot(
                        xs,
                        ys,
                        "-",
                        color=color,
                        linewidth=1.0,
                        alpha=0.35,
                        gid="batches",
                        label="training loss per batch",
                    )
        drawn = {path for _, path, _ in records}
        no_epoch: dict[Any, str] = {}  # selected runs with nothing to draw: named in the legend, not left out unsaid
        for path in paths:
            if path not in drawn:
                color = self.slot_color(slots[path])
                (line,) = self.loss_ax.plot([], [], "-", color=color, linewidth=1.6, gid="no-epoch")
                line.set_label(f"{Path(path).name} {NO_EPOCH_NOTE}")
                no_epoch[line] = path
        # the Train tab's frame: epochs from 0, loss from 0, accuracy 0-100 % (a one-epoch run was drawn on an
        # axis from 0.96 to 1.04 against 25.5-28 %)
        last = max((max(r.history, key=lambda h: h.get("epoch") or 0).get("epoch") or 1 for _, _, r in records))
        for ax in (self.loss_ax, self.acc_ax):
            ax.set_xlim(0, last + max(0.2, 0.02 * last))
        from gui.charts import nice_ceiling

        # from 0 to a round value above the highest point, as the Train tab draws it (matplotlib's margin is a
        # share of the curves' range: a first validation loss of 1.85 sat on the top edge, its marker cut)
        peak = max((float(y) for ln in self.loss_ax.get_lines() for y in ln.get_ydata() if math.isfinite(y)), default=1)
        self.loss_ax.set_ylim(0.0, nice_ceiling(1.1 * peak))
        self.acc_ax.set_ylim(0, 1.01)
        dashed = any(ln.get_linestyle() == "--" for ln in self.loss_ax.get_lines())
        if not dashed and not (no_val and val_points):  # one kind of curve and no key (below): titles say which
            which = "Training" if no_val else "Validation"
            self.loss_ax.set_title(f"{which} loss", fontsize=10)
            self.acc_ax.set_title(f"{which} accuracy", fontsize=10)
        self._mark_off_scale(train_losses, val_points, several=len(records) > 1, drawn=drawn_train)
        from matplotlib.ticker import PercentFormatter

        self.acc_ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))  # decimals follow the tick step
        for ax in (self.loss_ax, self.acc_ax):
            ax.xaxis.get_major_locator().set_params(integer=True)
        batches = [ln for ln in self.loss_ax.get_lines() if ln.get_gid() == "batches"]
        key: list[Any] = []  # what the dashed lines and hollow dots are (the legend named the runs alone)
        if dashed:
            from matplotlib.lines import Line2D

            grey = "#5f6b78"
            key = [
                Line2D(
                    [],
                    [],
                    color=grey,
                    linewidth=1.6,
                    label="validation (training without one)" if no_val else "validation",
                ),
                Line2D([], [], color=grey, linestyle="--", linewidth=1.0, label="training (dashed)"),
            ]
        self._legend_handles = self.curve_lines() + list(no_epoch) + batches + key
        self._legend_key = len(key)  # (always shown, after the runs a crowded legend leaves out)
        self._legend_labels = [ln.get_label() for ln in self._legend_handles]
        # 3 runs or more: the settings columns' titles (start times); full names, one a row, pressed the charts flat
        if len(paths) >= 3:
            self._legend_labels = [
                f"{short[no_epoch[ln]]} {NO_EPOCH_NOTE}" if ln in no_epoch else short.get(ln.get_gid(), ln.get_label())
                for ln in self._legend_handles
            ]
        self._place_legend()
        self._lay_out(self._layout_key())
        self.canvas.draw_idle()

    def _layout_key(self) -> tuple:
        """What the chart's margins depend on: its size, its legend's rows, the titles and labels, and the tick
        labels' lengths (the y axes' widths). Runs that draw alike (the next run in the list, most often) share it."""
        axes = (self.loss_ax, self.acc_ax)
        legends = self.figure.legends
        shown = len(legends[0].legend_handles) if legends else 0
        cols = max(1, self._legend_now[0])
        texts = [(ax.get_title("left"), ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) for ax in axes]

        def ticks(axis: Any) -> tuple[int, ...]:
            return tuple(len(t) for t in axis.get_major_formatter().format_ticks(axis.get_majorticklocs()))

        return (
            self.canvas.width(),
            self.canvas.height(),
            self.canvas.device_pixel_ratio,
            -(-shown // cols),
            tuple(texts),
            tuple((ticks(ax.yaxis), max(ticks(ax.xaxis), default=0)) for ax in axes),
        )

    def _lay_out(self, key: tuple | None) -> None:
        """Constrained layout at the next draw only when `key` (_layout_key; None: unknown) differs from the last
        one laid out: it was 60 % of a draw (0.15 s of 0.25 s per arrow key in the runs list), and the margins it
        finds for one run fit the next run drawn alike. Otherwise the axes keep the places it gave them. A layout
        counts once drawn (_on_drawn): two selections before one draw (an arrow key held) leave none worked out."""
        if self.figure is None:
            return
        if key is not None and key == self._laid_out:
            self.figure.set_layout_engine("none")
        else:
            self.figure.set_layout_engine("constrained")
            self._layout_asked = key

    def _on_drawn(self, _event: Any) -> None:
        from matplotlib.layout_engine import ConstrainedLayoutEngine

        if isinstance(self.figure.get_layout_engine(), ConstrainedLayoutEngine):
            self._laid_out, self._layout_asked = self._layout_asked, None

    def _mark_off_scale(
        self,
        train: list[float],
        val: list[tuple[str, str, list[float], list[float]]],
        several: bool,
        drawn: list[float] | None = None,
    ) -> None:
        """Validation losses far above every training loss (a first epoch from scratch) go off the top of the loss
        axis as ▲, with a note, instead of flattening every other curve onto the axis (as in the Train tab). The
        note takes the Loss title's place (the y label still names the plot), wrapped to the plot's width, and
        names the run when several are drawn: in the plot's corner it lay over the curves, and ran off its left
        edge in a narrow chart."""
        from gui.charts import loss_cap, nice_ceiling, off_scale_note

        cap = loss_cap(train)
        off = [(c, e, v) for c, _, epochs, losses in val for e, v in zip(epochs, losses, strict=True) if v > cap]
        if not off:
            return
        # the axis fits what is drawn: training losses hidden (the box unticked) set it 0-20 over curves at 1-2
        shown = [v for v in (train if drawn is None else drawn) if math.isfinite(v)]
        shown += [v for _, _, _, losses in val for v in losses if v <= cap]
        top = nice_ceiling(1.1 * max(shown, default=1.0))
        self.loss_ax.set_ylim(0.0, top)
        for color in dict.fromkeys(c for c, _, _ in off):
            xs = [e for c, e, _ in off if c == color]
            self.loss_ax.plot(xs, [top] * len(xs), "^", color=color, markersize=6, clip_on=False, gid="off-scale")
        note = off_scale_note([(e, v) for _, e, v in off])
        whose = list(dict.fromkeys(name for _, name, epochs, losses in val if any(v > cap for v in losses)))
        if several and len(whose) == 1:  # (a colour is not a name: the legend gives the name)
            note = f"{note} ({whose[0]})"
        self._off_note = note
        self._title_loss()

    def _title_loss(self, width: int | None = None) -> None:
        """The off-scale note in the loss plot's title's place, wrapped to the plot's width (none: "Loss" stays)."""
        import textwrap

        from gui.charts import px_per_point

        ax = self.loss_ax
        if not self._off_note:
            return
        plot_px = 0.42 * (self.canvas.width() if width is None else width)  # (two plots side by side)
        chars = max(16, int(plot_px / (8 * 0.6 * px_per_point(self.figure))))  # 8 pt text
        ax.set_title("")
        ax.set_title(textwrap.fill(self._off_note, chars), loc="left", fontsize=8, color="#4a525c")

    def _placeholder(self, text: str, axes: tuple[Any, ...] = ()) -> None:
        for ax in axes or (self.loss_ax, self.acc_ax):
            ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#8a929c", fontsize=10)
            ax.set_xticks([])
            ax.set_yticks([])
        self._lay_out(None)
        self.canvas.draw_idle()

    @staticmethod
    def _series(history: list[dict], key: str) -> tuple[list[float], list[float]]:
        pts = [(r.get("epoch"), r.get(key)) for r in history]
        pts = [(e, v) for e, v in pts if e is not None and v is not None and v == v]
        return [p[0] for p in pts], [p[1] for p in pts]

    def curve_lines(self) -> list[Any]:
        """The main (one per selected run) lines on the loss axes."""
        return [
            ln
            for ln in self.loss_ax.get_lines()
            if ln.get_linestyle() != "--" and ln.get_gid() not in ("batches", "off-scale", "no-epoch")
        ]

    def _show_settings(self) -> None:
        """The selected runs' settings, drawn again at each refresh (an epoch of a run training elsewhere): the same
        runs keep the sections folded and the place scrolled to (they opened again, and it jumped to the top)."""
        tree = self.settings_tree
        paths = self.selected_paths()
        same = paths == self._settings_shown
        folded = self._folded_settings() if same else set()
        scrolled = tree.verticalScrollBar().value() if same else 0
        self._settings_shown = paths
        self._fill_settings(paths)
        if folded:
            for item in self._settings_items():
                if self._setting_key(item) in folded:
                    item.setExpanded(False)
        tree.verticalScrollBar().setValue(scrolled)

    def _settings_items(self) -> list[QTreeWidgetItem]:
        items, todo = [], [self.settings_tree.topLevelItem(i) for i in range(self.settings_tree.topLevelItemCount())]
        while todo:
            item = todo.pop()
            items.append(item)
            todo += [item.child(i) for i in range(item.childCount())]
        return items

    @staticmethod
    def _setting_key(item: QTreeWidgetItem) -> tuple[str, ...]:
        key = []
        while item is not None:
            key.append(item.text(0))
            item = item.parent()
        return tuple(reversed(key))

    def _folded_settings(self) -> set[tuple[str, ...]]:
        return {self._setting_key(i) for i in self._settings_items() if i.childCount() and not i.isExpanded()}

    def _fill_settings(self, paths: list[str]) -> None:
        tree = self.settings_tree
        tree.clear()
        tree.setColumnCount(2)
        tree.setHeaderItem(QTreeWidgetItem(["Setting", "Value"]))  # (no dot or tooltip left from a comparison)
        tree.header().setStretchLastSection(True)
        tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        tree.header().setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        if len(paths) > 1 and self._show_differences(paths):
            return
        width = None  # the settings pane's: its first share (the chart has its width back), or one run's values'
        if len(paths) != 1:
            self._hint("Select one run to see its settings")
        else:
            width = self._show_one_run(paths[0])
        self._fit_setting_column()
        self._size_settings_pane(width)

    def _fit_setting_column(self) -> None:
        """The settings' names as wide as they need, up to SETTING_COLUMN_MAX: sized to its contents, a class of
        60 characters among a data set's counts took 494 px and cut every value to "20261127-…he_run_xx"."""
        tree = self.settings_tree
        width = min(tree.sizeHintForColumn(0) + 8, at_font(SETTING_COLUMN_MAX, tree))
        tree.header().resizeSection(0, max(width, tree.header().sectionSizeHint(0)))

    def _show_one_run(self, path: str) -> int | None:
        """All of one run's settings; returns the width that shows its values whole (None: it cannot be read)."""
        record = self._record(path)
        info = self._info(path)
        if record is None:
            bad = QTreeWidgetItem(["Cannot read this run folder", ""])
            self.settings_tree.addTopLevelItem(bad)
            bad.setFirstColumnSpanned(True)
            return None
        summary = QTreeWidgetItem(["run", Path(path).name])
        summary.setToolTip(1, path)
        self.settings_tree.addTopLevelItem(summary)
        # (paused: as its row says; status.json says "running" while the Train tab holds it)
        paused = self._is_paused(info) or self._paused_elsewhere(info)
        rows = [("status", "paused" if paused else info.status if info else record.status.get("status"))]
        if record.status.get("message"):
            rows.append(("message", record.status.get("message")))
        if info is not None:
            rows += [
                ("epochs", f"{info.epochs_done} of {info.epochs_planned or '?'}"),
                ("best val acc", "—" if info.best_val_acc is None else f"{info.best_val_acc:.1%}"),
                ("best epoch", info.best_epoch),
            ]
        evaluated = _evaluated_accuracy(path, info.best_epoch if info is not None else None)
        if evaluated:
            rows.append(("evaluated accuracy", evaluated))
        for k, v in rows:
            item = QTreeWidgetItem([k, _fmt(v)])
            item.setToolTip(1, _fmt(v))  # long values (a stop message) are cut at the column's edge
            summary.addChild(item)
        self._add_tree(None, _as_trained(record.config, record.status))
        tree = self.settings_tree
        tree.expandAll()
        # (half the width at most: a folder may not)
        value = min(tree.sizeHintForColumn(1), 2 * at_font(COMPARE_COLUMN_MAX, tree))
        names = min(tree.sizeHintForColumn(0) + 8, at_font(SETTING_COLUMN_MAX, tree))
        return names + value + tree.verticalScrollBar().sizeHint().width() + 12 + 2 * tree.frameWidth()

    def _hint(self, text: str) -> None:
        hint = QTreeWidgetItem([text, ""])
        hint.setForeground(0, QColor("#8a929c"))
        self.settings_tree.addTopLevelItem(hint)
        hint.setFirstColumnSpanned(True)  # a sentence, not a setting: it must not widen the "Setting" column

    def _show_differences(self, paths: list[str]) -> bool:
        """Several runs selected: one column per run (in the curves' colours) with the settings that differ, so the
        curves can be told apart by what was changed. False when a run folder cannot be read."""
        records = [self._record(p) for p in paths]
        if any(r is None for r in records):
            return False
        flat = [_flatten(_as_trained(r.config, r.status)) for r in records]
        infos = [self._info(p) for p in paths]
        keys = [k for k in dict.fromkeys(k for f in flat for k in f) if len({_fmt(f.get(k)) for f in flat}) > 1]
        # (train.epochs is the "of N" of the epochs row: listed again, the two said the same thing twice)
        keys = [k for k in keys if not k.startswith(HIDDEN_SETTINGS)]
        planned_differ = "train.epochs" in keys
        keys = [k for k in keys if k != "train.epochs"]
        self.settings_tree.setColumnCount(1 + len(paths))
        self.settings_tree.setHeaderLabels(["Setting", *short_run_labels(paths)])
        slots = self.run_slots(paths)  # (the curves' colours)
        for col, path in enumerate(paths, 1):
            self.settings_tree.headerItem().setToolTip(col, Path(path).name)
            self.settings_tree.headerItem().setIcon(col, dot_icon(self.slot_color(slots[col - 1])))
        self.settings_tree.header().setStretchLastSection(False)
        names = [_without_start_time(Path(p).name) for p in paths]
        rows = [("run", names)] if len(set(names)) > 1 else []  # (the same model and data: the titles tell them apart)
        rows += [
            ("best val acc", ["—" if i is None or i.best_val_acc is None else f"{i.best_val_acc:.1%}" for i in infos]),
            ("epochs", ["?" if i is None else f"{i.epochs_done} of {i.epochs_planned or '?'}" for i in infos]),
        ]
        rows += [(k, [_fmt(f.get(k)) for f in flat]) for k in keys]
        for name, values in rows:
            # config.json's keys in the form's words; one without a label (of another version) as it is
            item = QTreeWidgetItem([SETTING_LABELS.get(name, name) if name in keys else name, *values])
            if name in keys:
                item.setToolTip(0, _name_tip(name, item.text(0)))
            for col, value in enumerate(values, 1):
                item.setToolTip(col, Path(paths[col - 1]).name if name == "run" else value)
            self.settings_tree.addTopLevelItem(item)
        self._fit_run_columns(len(paths))
        if not keys:  # ("the same settings" beside "5 of 5" and "3 of 4" read as if the plans were the same)
            self._hint(
                "Only their planned epochs differ" if planned_differ else "The selected runs have the same settings"
            )
        return True

    def _fit_run_columns(self, runs: int) -> None:
        """Each run's column as wide as its values and title, up to COMPARE_COLUMN_MAX px (longer values, such as
        folders, are cut in the middle, with the whole value in their tooltip); the table scrolls sideways rather
        than cut every value. Columns sharing the width cut "0.003" and "72.5%" to "…" from 5 runs up."""
        tree, header = self.settings_tree, self.settings_tree.header()
        self._fit_setting_column()
        for col in range(1, runs + 1):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.Interactive)  # the user may widen one
            want = max(tree.sizeHintForColumn(col), header.sectionSizeHint(col)) + 8
            header.resizeSection(col, min(want, at_font(COMPARE_COLUMN_MAX, tree)))
        need = sum(tree.columnWidth(c) for c in range(runs + 1)) + 2 * tree.frameWidth() + 4
        self._size_settings_pane(need)  # widens the settings pane to show them, up to half the width

    def _size_settings_pane(self, width: int | None) -> None:
        """The settings pane widened to `width` px (at most half, at least its first quarter) when it is narrower;
        it does not narrow again for a run of shorter values: the curves beside it changed size at every click.
        Once the user has dragged it, it keeps their width."""
        if self._settings_sized_by_user:
            return
        sizes = self.lower_split.sizes()
        total = sum(sizes)
        if total <= 0:
            return
        quarter = total // 4
        want = quarter if width is None else max(quarter, min(width, total // 2))
        want = max(want, min(sizes[1], total // 2))
        if want != sizes[1]:
            self.lower_split.setSizes([total - want, want])

    def _add_tree(self, parent: QTreeWidgetItem | None, obj: dict, prefix: str = "") -> None:
        for key, value in obj.items():
            path = f"{prefix}{key}"
            if path == "dataset.files":  # a fingerprint, not a setting
                continue
            label = SETTING_LABELS.get(path, str(key))  # (a class among the counts: its name)
            item = QTreeWidgetItem([label, "" if isinstance(value, dict) else _fmt(value)])
            item.setToolTip(0, _name_tip(path, label))  # (a long name is cut in the middle)
            if not isinstance(value, dict):
                item.setToolTip(1, _fmt(value))
            if parent is None:
                self.settings_tree.addTopLevelItem(item)
            else:
                parent.addChild(item)
            if isinstance(value, dict):
                self._add_tree(item, value, f"{prefix}{key}.")

    # ------------------------------------------------------------------ actions

    def _one(self) -> str | None:
        paths = self.selected_paths()
        return paths[0] if len(paths) == 1 else None

    def _predict(self) -> None:
        path = self._one()
        if path:
            self.predict_requested.emit(str(Path(path) / "best.pt"))

    def _evaluate(self) -> None:
        path = self._one()
        if path and self.evaluate_button.isEnabled():
            self.evaluate_requested.emit(path)

    def _resume(self) -> None:
        path = self._one()
        info = self._info(path) if path else None
        if not path or info is None:
            return
        if info.status != "completed":
            self.resume_requested.emit(path)
            return
        from core.runs import section

        done, planned = info.epochs_done, info.epochs_planned or 0
        record = self._record(path)
        cosine = section(record.config if record else {}, "train").get("scheduler", "cosine") == "cosine"
        early = planned > done  # early stopping ended it ("completed" before its last planned epoch)
        so_far = count_noun(done, "epoch") + (
            f" of the {planned} it planned (early stopping ended it)" if early else ""
        )
        schedule = ""  # (no line breaks within a paragraph: the dialog wraps them to its width)
        if cosine and early:  # the cosine is laid over the new total from where the run is: its rate moves at once
            schedule = (
                f"\n\nIts cosine learning-rate schedule is laid over the new total: {planned - done} more go on at "
                "the rate it had planned; fewer lower the rate at once, more raise it."
            )
        elif cosine:
            schedule = (
                "\n\nIts cosine learning-rate schedule is laid over the new total: the rate, near 0 at the run's "
                "end, rises at once and falls to 0 again by the last new epoch."
            )
        extra, ok = ask_int(
            self,
            "Train more epochs",
            f"{info.name} has trained {so_far}.\n\n"
            "How many more? The run goes on in its own folder: its history grows, and its best.pt is replaced if a "
            f"new epoch does better.{schedule}",
            planned - done if early else 5,
            1,
            10000,
        )
        if ok:
            self.extend_requested.emit(path, info.epochs_done + extra)

    def _open_folder(self) -> bool:
        """Show the runs folder in the file manager, making it first; a path that cannot be a folder (a file there,
        a folder that cannot be written) is said in the tab and the status bar, naming the path and why (it raised
        to stderr, and nothing was shown). False then."""
        root = self.runs_dir()
        why = make_folder(root)
        if why:
            why = why if why == NOT_A_FOLDER else f"it cannot be made: {why}"
            text = f"Cannot show the runs folder {root}: {why}"
            self.folder_label.setText(text)
            self.status_message.emit(text)
            return False
        show_folder(str(root), self)
        return True

    def _export_curves(self) -> None:
        name = "curves.png" if len(self.selected_paths()) != 1 else f"{Path(self.selected_paths()[0]).name}.png"
        path, chosen = QFileDialog.getSaveFileName(
            self, "Export curves", dialog_dir("exports", name), ";;".join(FIGURE_FILTERS.values())
        )
        if path:
            remember_dir("exports", path)
            self.export_curves(figure_path(path, chosen))

    def export_curves(self, path: str) -> bool:
        """Save the curves as they are drawn now (atomically), in the format of the name's extension (PNG, SVG or
        PDF); False, after saying why, when it cannot."""
        from gui.charts import save_figure

        self._ensure_canvas()
        if not write_export(self, "Export curves", path, "the curves", lambda p: save_figure(self.figure, p), True):
            return False
        self.status_message.emit(f"Saved the curves to {path}")
        return True

    def _export_csv(self) -> None:
        run = self._one()
        if not run:
            return
        path, _ = QFileDialog.getSaveFileName(
            self, "Export history as CSV", dialog_dir("exports", f"{Path(run).name}-history.csv"), "CSV files (*.csv)"
        )
        if path:
            remember_dir("exports", path)
            self.export_history_csv(run, with_suffix(path, ".csv"))

    def export_history_csv(self, run_dir: str, path: str) -> bool:
        """Write the run's per-epoch history to `path` (atomically); False, after saying why, when it cannot."""
        from core.runs import HISTORY_FIELDS, atomic_file

        record = self._record(run_dir)
        rows = record.history if record else []

        def write(target: str) -> None:
            with atomic_file(target, newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(HISTORY_FIELDS), extrasaction="ignore")
                w.writeheader()
                for row in rows:
                    w.writerow({k: "" if row.get(k) is None else row.get(k) for k in HISTORY_FIELDS})

        if not write_export(self, "Export history", path, "the CSV", write):
            return False
        self.status_message.emit(f"Saved {count_noun(len(rows), 'epoch')} of history to {path}")
        return True

    def _export_model(self) -> None:
        run = self._one()
        if not run or not self.model_button.isEnabled():
            return
        filters = {"onnx": "ONNX model (*.onnx)", "torchscript": "TorchScript model (*.pt)"}
        if not _onnx_available():
            filters["onnx"] = "ONNX model (*.onnx) — needs pip install 'resnext-studio[export]'"
        path, chosen = QFileDialog.getSaveFileName(
            self,
            "Export model",
            dialog_dir("exports", f"{Path(run).name}.onnx"),
            ";;".join(filters.values()),
            filters["onnx"],
        )
        if path:
            suffix = Path(path).suffix.lower()  # a typed extension decides; else the chosen file type
            fmt = (
                "onnx"
                if suffix == ".onnx"
                else "torchscript"
                if suffix in (".pt", ".pth", ".ts")
                else "torchscript"
                if chosen == filters["torchscript"]
                else "onnx"
            )
            self.export_model(run, path, fmt)

    def export_model(self, run_dir: str, path: str, fmt: str = "onnx") -> None:
        """Export the run's best.pt to `path` ("onnx" or "torchscript") in a worker thread; a message box gives the
        result. A path without the format's extension gets it."""
        from gui.worker import FunctionWorker, connect_worker, start_worker

        suffix = ".onnx" if fmt == "onnx" else ".pt"
        target = Path(path)
        if target.suffix.lower() not in ((suffix,) if fmt == "onnx" else (".pt", ".pth", ".ts")):
            target = target.with_name(target.name + suffix)
        if refused_output(self, "Export model", str(target), "the model", model_ok=True):
            return
        worker = FunctionWorker(_export, fmt, str(Path(run_dir) / "best.pt"), str(target))
        self._export_worker = worker
        self.model_button.setText("Exporting…")
        self._update_buttons()
        connect_worker(
            worker, self, result=self._on_exported, failed=self._on_export_failed, finished=self._on_export_finished
        )
        start_worker(worker, self)

    def _on_exported(self, info: dict) -> None:
        self.last_export = info
        remember_dir("exports", info["path"])  # the next export starts where this one went (not a failed folder)
        if self._export_worker is not None and self._export_worker.cancelled:
            return  # the window is closing: the file is written, nobody is there to read a message
        kind = "ONNX" if info["format"] == "onnx" else "TorchScript"
        n = info["n_samples"]
        QMessageBox.information(
            self,
            "Export model",
            f"Saved {info['path']}\n({kind}, {info['size_bytes'] / 1e6:.1f} MB, in {info['seconds']:.1f} s).\n\n"
            f"Checked against the PyTorch model on {count_noun(n, 'test input')}: the largest difference in the "
            f"outputs is {info['max_abs_diff']:.1e} and every top-1 class is the same.\n\n"
            + (
                "The file's metadata holds its class names and how to prepare an image (sizes, mean, std): "
                "onnxruntime, Pillow and numpy are all a program needs to use it."
                if info["format"] == "onnx"
                else "Its class names and how to prepare an image (sizes, mean, std) ride along as metadata.json: "
                'torch.jit.load(path, _extra_files={"metadata.json": ""}).'
            ),
        )

    def _on_export_failed(self, message: str) -> None:
        self.last_export = None
        QMessageBox.warning(self, "Export model", f"The model was not exported.\n\n{message}")

    def _on_export_finished(self) -> None:
        self._export_worker = None
        self.model_button.setText("Export model…")
        self._update_buttons()
        self.model_export_finished.emit()

    def delete_selected(self) -> bool:
        """Ask, then delete the selected run folders. True if something was deleted."""
        paths = self.selected_paths()
        if not paths:
            return False
        names = "\n".join(Path(p).name for p in paths[:10]) + ("\n…" if len(paths) > 10 else "")
        # runs of another machine taken as ended there (quiet for long): one paused there writes nothing
        away = [i for p in paths if (i := self._info(p)) is not None and i.host and i.status == "interrupted"]
        careful = "".join(
            f"\n\n{i.path.name} was {i.message.split(';')[0]}: if it is still training or paused there, deleting "
            "it loses that run."
            for i in away[:3]
        )
        if not ask(
            self,
            "Delete runs",
            f"Delete {len(paths)} run folder{'s' if len(paths) > 1 else ''} with "
            f"{'their' if len(paths) > 1 else 'its'} checkpoints?\n\n{names}{careful}\n\n"
            "This cannot be undone.",
            yes=f"Delete {count_noun(len(paths), 'run')}",
        ):
            return False
        from core.runs import PartlyDeleted

        store = self._store()
        errors, deleted, partly = [], [], []
        # not watched while they go: on Windows a watched folder is held open, and its rename aside refused
        folders = {str(p) for p in paths}
        going = [w for w in self._watcher.directories() if w in folders]
        going += [w for w in self._watcher.files() if str(Path(w).parent) in folders]  # (a running run's history)
        if going:
            self._watcher.removePaths(going)
        for p in paths:
            try:
                store.delete(p)
                deleted.append(p)
            except PartlyDeleted as e:  # off the list, but some of its files are left (in a hidden folder: said)
                deleted.append(p)
                partly.append(f"{Path(p).name}: {e}")
            except (OSError, ValueError) as e:
                errors.append(f"{Path(p).name}: {e}")
        self.table.clearSelection()
        self.refresh()
        if deleted:
            self.runs_deleted.emit(deleted)
            what = Path(deleted[0]).name if len(deleted) == 1 else count_noun(len(deleted), "run")
            self.status_message.emit(f"Deleted {what}")
        if errors or partly:
            said = (["Some runs could not be deleted:", *errors] if errors else []) + (
                ["Not all files could be removed:", *partly] if partly else []
            )
            QMessageBox.warning(self, "Delete runs", "\n".join(said))
        return len(errors) < len(paths)
