"""Train tab: model choice, hyper-parameters, Start/Pause/Resume/Stop, progress, live curves, log, run summary."""

from __future__ import annotations

import contextlib
import html
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QEvent, QEventLoop, QLocale, QObject, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QDoubleValidator
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QProgressDialog,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from gui.app import settings
from gui.model_panel import ModelPanel
from gui.widgets import (
    WARNING_COLOR,
    Banner,
    ElidedLabel,
    ask,
    count_noun,
    dialog_dir,
    elide_middle,
    load_number_setting,
    load_spin_setting,
    remember_dir,
    wheel_scrolls_the_form,
)
from gui.worker import FunctionWorker, TrainingWorker, connect_worker, is_running, start_worker

IDLE, PREPARING, RUNNING, PAUSED, STOPPING = "idle", "preparing", "running", "paused", "stopping"
_RESULT_WHILE = {  # the Result box until the run ends
    RUNNING: "Training…",
    PAUSED: "Paused. Resume goes on from the next batch; Stop keeps last.pt.",
    STOPPING: "Stopping after the current batch…",
}


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


REASONS = {
    "completed": "Training completed",
    "early_stop": "Stopped early (no more improvement)",
    "stopped": "Stopped by you",
    "failed": "Training failed",
}
DDP_POLL_MS = 500  # how often a torchrun run's folder is read
DDP_STOP_WAIT_S = 60.0  # window close: how long a stopped torchrun job may take before it is killed
TRAIN_KEYS = (
    "epochs",
    "batch_size",
    "lr",
    "optimizer",
    "weight_decay",
    "scheduler",
    "warmup_epochs",
    "label_smoothing",
    "mixup",
    "cutmix",
    "early_stop_patience",
    "class_weights",
    "device",
    "amp",
    "seed",
)


RESUME_NOTE = "Continuing with the run's own settings:"


def _hold_width(label: QLabel, widest: str) -> None:
    """Keep `label` as wide as the widest text it shows this run (its numbers at their largest): the progress bars
    beside it moved as "Batch 9 / 30" became "Batch 10 / 30"."""
    width = label.fontMetrics().horizontalAdvance(widest)
    if label.minimumWidth() < width:
        label.setMinimumWidth(width)


def _unbroken(text: str) -> str:
    """`text` with no-break spaces: a value is not parted from its name where a log line wraps (a narrow log split
    "acc" from "33.8%" and "55.0" from "s"). The log's copy and toPlainText give them as spaces."""
    return text.replace(" ", "\u00a0")


def _fmt_left(seconds: float | None) -> str:
    """Time left, in words: "17:02" read as a time of day beside the log's clock times."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "Time left –"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    if h:
        return f"{h} h {m:02d} min left"
    return f"{m} min {s:02d} s left" if m else f"{s} s left"


def _gpu_count() -> int:
    """CUDA devices "Use all GPUs" can train on (0 without CUDA, and on Windows: torchrun there has no NCCL, and
    Stop cannot reach its processes as a signal that lets them save); imports torch."""
    import torch

    if sys.platform == "win32":
        return 0
    return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0


class _FillLayout(QVBoxLayout):
    """A column that fills its scroll area and scrolls only below its minimum height. (A wrapped label makes a
    layout height-for-width, and QScrollArea then gives the column its preferred height: it scrolled at 800 px.)"""

    def hasHeightForWidth(self) -> bool:  # noqa: N802 - Qt override
        return False


class _FormColumn(QScrollArea):
    """The settings column: as wide as its maximum (36 % of the tab, 390 to 480 px, set by TrainTab.resizeEvent
    and again whenever its fields are laid out), down to 390 px, and never narrower than the fields. By its content's size hint it kept 455 px on a 1024-px screen and left the Log 205 px, where
    each epoch's line wrapped to six."""

    FRACTION, LEAST, MOST = 0.36, 390, 480
    _tab_width = 1280

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(self.maximumWidth(), super().sizeHint().height())

    def setWidget(self, widget: QWidget) -> None:  # noqa: N802 - Qt override
        super().setWidget(widget)
        widget.installEventFilter(self)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        # The fields' width is known only once they are laid out, after the tab's last resize when it starts
        # hidden, and it grows later (a larger font, a longer summary): fitted on resizes alone, at 14 pt the
        # column stayed 460 px for 491 px of fields, and every field and combo arrow was cut off at the right.
        if obj is self.widget() and event.type() == QEvent.Type.LayoutRequest:
            self.fit()
        return super().eventFilter(obj, event)

    def fit(self, tab_width: int | None = None) -> None:
        if tab_width is not None:
            self._tab_width = tab_width
        tab_width = self._tab_width
        # never below what the fields need (a larger font): with no horizontal scroll bar they would be cut off
        form = self.widget()
        need = form.minimumSizeHint().width() + self.verticalScrollBar().sizeHint().width() if form else 0
        least = max(self.LEAST, need)
        self.setMinimumWidth(least)
        self.setMaximumWidth(max(least, min(self.MOST, int(self.FRACTION * tab_width))))


class _ResultLabel(QLabel):
    """The Result box's text. Its last line names the run folder, cut in the middle to the box's width (a long
    data set name ran past the edge, cut mid-letter: "…-my_dataset_with_an_extremely_long_folder_name_for_the_ru");
    the whole path is the tooltip, and Show run folder opens it."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._lines: list[str] = []
        self._folder = ""

    def setText(self, text: str) -> None:  # noqa: N802 - Qt override
        self._folder = ""
        super().setText(text)

    def show_result(self, lines: list[str], folder: str) -> None:
        """`lines` (rich text) and then "Run folder: `folder`" (plain)."""
        self._lines, self._folder = list(lines), folder
        self._render()

    def _render(self) -> None:
        fm = self.fontMetrics()
        width = self.contentsRect().width() - 4
        name = self._folder
        # whole where it wraps at its hyphens (20261127-123020- / resnext11_4x8d-sample); cut to one line where a
        # part between them is wider than the box (a data set name of underscores ran past its edge)
        if width > 60 and max(fm.horizontalAdvance(part) for part in name.split("-")) > width:
            name = fm.elidedText(name, Qt.TextElideMode.ElideMiddle, width - fm.horizontalAdvance("Run folder: "))
        super().setText("<br>".join([*self._lines, f"Run folder: {html.escape(name)}"]))

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        if self._folder and event.size().width() != event.oldSize().width():
            self._render()


BUSY_TEXT = "A run is already in progress; stop it before resuming another."
RESUME_HINT = " <i>Resume (Ctrl+Shift+R) goes on from last.pt.</i>"  # (after how a run with a last.pt ended)
CPU_ONLY_TORCH = (
    "This machine has an NVIDIA GPU driver, but the PyTorch installed here is built for the CPU only, so training "
    "runs on the CPU. To train on the GPU, install PyTorch's CUDA build (the command is on pytorch.org)."
)


def _nvidia_driver() -> bool:
    from core.config import likely_device_type

    return likely_device_type() == "cuda"


AUTO_TRAIN_KEYS = ("batch_size", "lr", "epochs", "warmup_epochs")  # what an Auto preset sets besides size and augment


def _resolved_defaults(device: str) -> dict:
    """The engine's defaults for this device: arch, image size and TrainConfig values (imports torch)."""
    from core.config import RunConfig
    from core.engine import resolve_defaults, resolve_device

    dev = resolve_device(device)
    cfg = resolve_defaults(RunConfig(), dev)
    import torch

    return {
        "device_type": dev.type,
        "arch": cfg.model.arch,
        "image_size": cfg.data.image_size,
        "augment": cfg.data.augment,
        "train": cfg.to_dict()["train"],
        "cuda": torch.cuda.is_available(),
        "gpu_count": _gpu_count(),
        "mps": bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()),
        "cuda_build": torch.version.cuda is not None,  # (a CPU-only torch cannot use an NVIDIA GPU at all)
    }


def _download_weights(arch: str, progress: Any = None, stop: Any = None) -> str:
    from core.models import imagenet_weights_path

    return str(imagenet_weights_path(arch, progress=progress, stop=stop))  # (Stop and Cancel end it within 256 kB)


class _NumberValidator(QDoubleValidator):
    """A number field's validator: "0.003" or "3e-3", with "." for the point whatever the desktop's language (the
    form reads it with float(): a typed "1,5" was let in, then refused at Start as no number), and what is pasted
    with spaces or a line break round it taken without them (" 5e-3" was refused without a word, the old value
    kept). A number past its range stays typed (it may be on its way); Start names the range."""

    def __init__(self, low: float, high: float, parent: QObject) -> None:
        super().__init__(low, high, 10, parent)
        self.setNotation(QDoubleValidator.Notation.ScientificNotation)
        c = QLocale.c()
        c.setNumberOptions(QLocale.NumberOption.RejectGroupSeparator)
        self.setLocale(c)

    def validate(self, text: str, pos: int) -> object:
        stripped, pos = text.strip(), min(pos, len(text.strip()))
        return super().validate(stripped, pos)[0], stripped, pos


def _float_edit(value: float, tip: str, low: float = 0.0, high: float = 10.0) -> QLineEdit:
    edit = QLineEdit(f"{value:g}")
    edit.setValidator(_NumberValidator(low, high, edit))
    edit.setToolTip(tip)
    return edit


class TrainTab(QWidget):
    """The Train tab. Reads data settings from the dataset panel; emits requests for the other tabs."""

    run_finished = Signal(object)  # FitResult
    evaluate_requested = Signal(str)  # run dir
    predict_requested = Signal(str)  # checkpoint path
    open_folder_requested = Signal(str)
    status_message = Signal(str)
    device_in_use = Signal(str)
    state_changed = Signal(str)
    start_changed = Signal(bool)  # Start became available or not (the data set opened can or cannot be trained on)

    def __init__(
        self,
        dataset_panel: Any = None,
        runs_dir: str | None = None,
        parent: QWidget | None = None,
        defer_charts: bool = False,
    ) -> None:
        super().__init__(parent)
        self.charts: Any = None  # gui.charts.TrainingCharts, created by ensure_charts()
        self.dataset_panel = dataset_panel
        self.runs_dir = runs_dir
        self.state = IDLE
        self._data_changed_meanwhile = False  # the data set changed while a run was going
        self._focus_owed: tuple[QWidget | None] | None = None  # the focus fell while stopping: Start takes it at Idle
        self.worker: TrainingWorker | None = None
        self.thread: Any = None
        self.result: Any = None
        self.fit_info: Any = None
        self._acc_name = "acc"
        self._launched_resume = False
        self.best_checkpoint: str | None = None
        self.last_checkpoint: str | None = None
        self.run_dir: str | None = None
        self.proc: subprocess.Popen | None = None  # a torchrun job ("Use all GPUs"), else None
        self._ddp: dict[str, Any] = {}  # that job's follow state: temp dir, files, what was shown already
        self._ddp_timer = QTimer(self)
        self._ddp_timer.setInterval(DDP_POLL_MS)
        self._ddp_timer.timeout.connect(self._poll_ddp)
        self.gpu_count = 0
        self._device_type = "cpu"
        self._defaults: dict | None = None
        self._refusal = ""  # the banner's text when Start refused the form's settings
        self._data_problem = ""  # why the open data set cannot be trained on: Start is disabled, saying so
        self._start_tip = ""  # Start's own tooltip, while another says why it is disabled
        self._had_saved_settings = bool(settings().value("train/epochs"))
        self._guessed_device_type: str | None = None  # first start: the device type whose values the form shows
        self._build()
        self._restore_settings()
        if not self._had_saved_settings:
            self._show_likely_preset()
        self._amp_available(_nvidia_driver())  # until the device is known (then _on_device_changed)
        self._set_state(IDLE)
        if dataset_panel is not None:
            dataset_panel.index_changed.connect(self._on_data_changed)
            dataset_panel.config_changed.connect(self._on_data_changed)
            dataset_panel.scan_started.connect(self._sync_start)  # (Start waits for a scan; a failed one
            dataset_panel.scan_finished.connect(self._sync_start)  # changes no index)
            self.model_panel.image_size_suggested.connect(self._on_image_size_suggested)
        self.model_panel.auto_values = self._auto_values
        self.model_panel.pretrained_changed.connect(self._follow_auto_preset)
        self._on_data_changed()
        if not defer_charts:
            self.ensure_charts()

    def _on_image_size_suggested(self, size: int) -> None:
        """A preset's usual input size goes to the Dataset tab's Image size, and the status bar says so: the field
        sits on another tab, and it changed without a word."""
        panel = self.dataset_panel
        if panel is None or panel.image_size() == int(size):
            return
        panel.set_image_size(size)
        label = self.model_panel.preset_combo.currentText().split(" (")[0]  # "ResNeXt-50 32×4d (ImageNet)"
        self.status_message.emit(f"Image size set to {panel.image_size()} px for {label} (Dataset tab)")

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        self._form_scroll.fit(event.size().width())
        super().resizeEvent(event)

    def ensure_charts(self) -> None:
        """Create the live curves (deferred at start-up so the window shows before matplotlib loads)."""
        if self.charts is None:
            from gui.charts import TrainingCharts

            self.charts = TrainingCharts()
            self.charts.setAccessibleName("Training curves: loss and accuracy per epoch")
            self.charts_layout.addWidget(self.charts)

    # ---- layout -------------------------------------------------------------------------------------------------
    def _build(self) -> None:
        outer = QHBoxLayout(self)
        outer.setContentsMargins(12, 12, 12, 8)
        outer.setSpacing(10)

        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 6, 0)
        self.model_panel = ModelPanel()
        self.model_panel.changed.connect(self._on_model_changed)
        ll.addWidget(self.model_panel)
        ll.addWidget(self._build_form())
        ll.addStretch(1)
        scroll = self._form_scroll = _FormColumn()
        scroll.setWidget(left)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.fit(1280)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # (Tab goes to the form's fields, not to the area around them)
        wheel_scrolls_the_form(scroll)
        outer.addWidget(scroll)

        right_widget = QWidget()
        right = _FillLayout(right_widget)
        right.setContentsMargins(0, 0, 0, 0)
        right.setSpacing(8)
        controls = QHBoxLayout()
        self.start_button = QPushButton("Start training")
        self.start_button.setObjectName("primaryButton")
        self.start_button.setToolTip("Train a new model on the open data set with these settings")
        self.pause_button = QPushButton("Pause")
        self.pause_button.setToolTip("Pause after the current batch (the run keeps its place)")
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue a paused run, or a run you stopped from its last.pt")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setObjectName("dangerButton")
        self.stop_button.setToolTip("Stop after the current batch; last.pt keeps the weights so far")
        self.start_button.clicked.connect(self.start)
        self.pause_button.clicked.connect(self.pause)
        self.resume_button.clicked.connect(self.resume)
        self.stop_button.clicked.connect(self.stop)
        self.all_gpus_check = QCheckBox("Use all GPUs")
        self.all_gpus_check.setToolTip(
            "Train on every GPU of this computer at once (torchrun, one process per GPU). "
            "The batch size is the total over all GPUs. Pause is not available."
        )
        self.all_gpus_check.setVisible(False)
        for b in (self.start_button, self.pause_button, self.resume_button, self.stop_button):
            controls.addWidget(b)
        controls.addWidget(self.all_gpus_check)
        controls.addStretch(1)
        self.state_label = QLabel("Idle")
        self.state_label.setObjectName("stateLabel")
        controls.addWidget(self.state_label)  # (outside the scroll area below: its width can grow, e.g. "Stopping…")

        self.banner = Banner()
        right.addWidget(self.banner)

        prog = QGroupBox("Progress")
        g = QGridLayout(prog)
        g.setHorizontalSpacing(10)
        self.epoch_label = QLabel("Epoch –")
        self.epoch_bar = QProgressBar()
        self.epoch_bar.setFormat("%v / %m epochs done")  # (beside it: the epoch in progress)
        self.batch_label = QLabel("Batch –")
        self.batch_bar = QProgressBar()
        self.batch_bar.setFormat("%v / %m batches")
        self.speed_label = QLabel("– images/s")
        self.eta_label = QLabel("Time left –")
        # a cache path in it must not widen the window; cut at its end ("data…d 480 images" had lost "cached")
        self.device_label = ElidedLabel("Device: –", mode=Qt.TextElideMode.ElideRight)
        self.device_label.setObjectName("hintLabel")
        for w in (self.speed_label, self.eta_label):
            w.setMinimumWidth(110)
        g.addWidget(self.epoch_label, 0, 0)
        g.addWidget(self.epoch_bar, 0, 1)
        g.addWidget(self.speed_label, 0, 2)
        g.addWidget(self.batch_label, 1, 0)
        g.addWidget(self.batch_bar, 1, 1)
        g.addWidget(self.eta_label, 1, 2)
        g.addWidget(self.device_label, 2, 0, 1, 3)
        g.setColumnStretch(1, 1)
        right.addWidget(prog)

        charts_box = QGroupBox("Curves")
        self.charts_layout = QVBoxLayout(charts_box)
        self.charts_layout.setContentsMargins(6, 6, 6, 6)
        charts_box.setMinimumHeight(190)

        log_box = QGroupBox("Log")
        lg = QVBoxLayout(log_box)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setObjectName("logView")
        self.log.setMaximumBlockCount(5000)
        # The log follows new lines unless the user has scrolled up to read (a resize alone does not stop it).
        self._log_follow = True
        bar = self.log.verticalScrollBar()
        bar.valueChanged.connect(lambda v: setattr(self, "_log_follow", v >= bar.maximum() - 2))
        self.log.setAccessibleName("Training log")
        # At the window's least width the Result box's buttons kept theirs and the log had 72 px: its lines broke
        # every 7 characters. It keeps room for about 24.
        self.log.ensurePolished()  # (the style sheet's font: the width of its characters)
        self.log.setMinimumWidth(24 * self.log.fontMetrics().averageCharWidth() + 24)
        lg.addWidget(self.log)
        # half and half: at 3:2 the Result box's five lines (how it ended, the resume hint, the best epoch, the run
        # folder) needed a scroll bar on a 1366 x 768 screen and cut the folder's name. A splitter: on a 1024-px
        # screen the log's lines wrap to five or six, and whoever reads the log more than the result can widen it
        # (the window keeps the sizes, as its other splitters').
        self.bottom_split = bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.setChildrenCollapsible(False)
        bottom.addWidget(log_box)
        bottom.addWidget(self._build_result_box())
        bottom.setStretchFactor(0, 1)
        bottom.setStretchFactor(1, 1)
        bottom.setSizes([1000, 1000])  # (as proportions; by their size hints the log had 205 px of 527)

        split = QSplitter(Qt.Orientation.Vertical)
        split.setChildrenCollapsible(False)
        split.addWidget(charts_box)
        split.addWidget(bottom)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([340, 280])
        right.addWidget(split, 1)
        # On a screen less than ~720 px high (1920 x 1080 at 150 %) the column scrolls rather than squeezing the
        # charts or pushing the window's bottom off the screen.
        right_scroll = QScrollArea()
        right_scroll.setWidget(right_widget)
        right_scroll.setWidgetResizable(True)
        right_scroll.setFrameShape(QFrame.Shape.NoFrame)
        right_scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        right_scroll.setMinimumWidth(right_widget.minimumSizeHint().width() + 14)  # (and room for its scroll bar)
        right_scroll.setMinimumHeight(380)
        column = QVBoxLayout()
        column.setSpacing(8)
        column.addLayout(controls)
        column.addWidget(right_scroll, 1)
        outer.addLayout(column, 1)

    def _build_form(self) -> QGroupBox:
        box = QGroupBox("Training")
        f = QFormLayout(box)
        f.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.epochs_spin = QSpinBox()
        self.epochs_spin.setRange(1, 10000)
        self.epochs_spin.setValue(10)
        self.epochs_spin.setToolTip("Passes over the training images")
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(2, 4096)
        self.batch_spin.setValue(32)
        self.batch_spin.setToolTip("Images per optimisation step; lower it if memory runs out")
        self.lr_edit = _float_edit(
            1e-3, "Learning rate (AdamW: 1e-3; SGD: 0.1 from scratch, 0.01 fine-tuning)", 1e-8, 10.0
        )
        self.optimizer_combo = QComboBox()
        self.optimizer_combo.addItems(["adamw", "adam", "sgd"])
        self.optimizer_combo.setToolTip("AdamW is a safe default; SGD with momentum 0.9 follows the paper")
        self.wd_edit = _float_edit(
            5e-4, "Weight decay (L2 penalty): 5e-4 for small data, 1e-4 for ImageNet-size", 0.0, 1.0
        )
        self.scheduler_combo = QComboBox()
        self.scheduler_combo.addItems(["cosine", "step", "plateau", "none"])
        self.scheduler_combo.setToolTip("How the learning rate decreases over the run")
        self.warmup_spin = QDoubleSpinBox()
        self.warmup_spin.setRange(0.0, 100.0)
        self.warmup_spin.setSingleStep(0.5)
        self.warmup_spin.setDecimals(1)
        self.warmup_spin.setToolTip("Epochs over which the learning rate ramps up from near zero")
        self.scheduler_combo.currentTextChanged.connect(self._on_scheduler_changed)
        self.smoothing_spin = QDoubleSpinBox()
        self.smoothing_spin.setRange(0.0, 0.5)
        self.smoothing_spin.setSingleStep(0.05)
        self.smoothing_spin.setToolTip("Label smoothing: 0.1 often helps; 0 = off")
        self.mixup_spin = QDoubleSpinBox()
        self.mixup_spin.setRange(0.0, 2.0)
        self.mixup_spin.setSingleStep(0.1)
        self.mixup_spin.setToolTip("Mixup alpha: blend pairs of images and labels (0.2 typical; 0 = off)")
        self.cutmix_spin = QDoubleSpinBox()
        self.cutmix_spin.setRange(0.0, 2.0)
        self.cutmix_spin.setSingleStep(0.1)
        self.cutmix_spin.setToolTip("CutMix alpha: paste patches between images (1.0 typical; 0 = off)")
        self.patience_spin = QSpinBox()
        self.patience_spin.setRange(0, 1000)
        self.patience_spin.setSpecialValueText("off")
        self.patience_spin.setToolTip("Stop when validation accuracy has not improved for this many epochs")
        self.class_weights_check = QCheckBox("Class-balanced loss")
        self.class_weights_check.setToolTip(
            "Weight the loss by class frequency: helps when some classes have far fewer images than others"
        )
        self.device_combo = QComboBox()
        self.device_combo.addItem("Auto", "auto")
        self.device_combo.addItem("CPU", "cpu")
        self.device_combo.setToolTip("Where to train; Auto uses a GPU when there is one")
        self.device_combo.currentIndexChanged.connect(self._on_device_changed)
        self.amp_check = QCheckBox("Mixed precision (AMP)")
        self.amp_check.setChecked(True)
        self._amp_wanted = True  # the box's value for a GPU: off a GPU it shows unticked (ticked, it read as on)
        self._amp_gpu = True  # whether the box applies (a CUDA device), whatever greys the form
        self.amp_check.setToolTip("Faster and lighter on NVIDIA GPUs (the CPU trains in full precision)")
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setToolTip("Random seed for initialisation and shuffling (same seed, same run)")
        self.batch_spin.valueChanged.connect(self._on_model_changed)
        self.amp_check.toggled.connect(self._on_amp_toggled)

        f.addRow("&Epochs", self.epochs_spin)
        f.addRow("&Batch size", self.batch_spin)
        f.addRow("&Learning rate", self.lr_edit)
        f.addRow("&Optimizer", self.optimizer_combo)
        f.addRow("&Weight decay", self.wd_edit)
        f.addRow("LR &schedule", self.scheduler_combo)
        f.addRow("Warm-&up epochs", self.warmup_spin)
        f.addRow("Label smoothin&g", self.smoothing_spin)
        f.addRow("Mi&xup", self.mixup_spin)
        f.addRow("&CutMix", self.cutmix_spin)
        f.addRow("Early sto&p", self.patience_spin)
        f.addRow("", self.class_weights_check)
        f.addRow("&Device", self.device_combo)
        f.addRow("", self.amp_check)
        f.addRow("Trai&ning seed", self.seed_spin)  # ("Seed" alone read as the Dataset tab's split seed too)
        self.defaults_button = QPushButton("Reset to recommended values")
        self.defaults_button.setToolTip("Recommended settings for this computer's device")
        self.defaults_button.clicked.connect(self.apply_recommended)
        row = QHBoxLayout()  # the whole row, at its right: beside the labels' column it set the form's least width
        row.addStretch(1)
        row.addWidget(self.defaults_button)
        f.addRow(row)
        self.form_box = box
        return box

    def _build_result_box(self) -> QGroupBox:
        box = QGroupBox("Result")
        lay = QVBoxLayout(box)
        self.result_label = _ResultLabel(
            "No run started in this session yet. Press Start training; earlier runs are in the Runs tab."
        )
        self.result_label.setWordWrap(True)
        self.result_label.setTextFormat(Qt.TextFormat.RichText)
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.result_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.result_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        scroll = QScrollArea()
        scroll.setWidget(self.result_label)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # A stop for Tab only while the text is longer than the box (a small screen, a large font): the arrow keys
        # then scroll it, its frame shows the focus, and a screen reader names it. Otherwise it is skipped.
        scroll.setObjectName("resultScroll")
        scroll.setAccessibleName("Result")
        scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        scroll.verticalScrollBar().rangeChanged.connect(
            lambda _low, high: scroll.setFocusPolicy(Qt.FocusPolicy.StrongFocus if high > 0 else Qt.FocusPolicy.NoFocus)
        )
        self.result_scroll = scroll
        lay.addWidget(scroll, 1)
        self.evaluate_button = QPushButton("Evaluate")
        self.evaluate_button.setToolTip("Confusion matrix and per-class scores of the best model")
        self.predict_button = QPushButton("Predict")
        self.predict_button.setToolTip("Classify new images with the best checkpoint (in the Predict tab)")
        self.open_button = QPushButton("Show run folder")
        self.open_button.setToolTip("Checkpoints, history.csv, curves.png and config.json of this run")
        self.evaluate_button.clicked.connect(lambda: self.run_dir and self.evaluate_requested.emit(self.run_dir))
        self.predict_button.clicked.connect(self._request_predict)
        self.open_button.clicked.connect(lambda: self.run_dir and self.open_folder_requested.emit(self.run_dir))
        # one row: on a 1366x768 screen a second row left the result's text three lines and a scroll bar
        buttons = QHBoxLayout()
        for b in (self.evaluate_button, self.predict_button, self.open_button):
            buttons.addWidget(b)
        lay.addLayout(buttons)
        for b in (self.evaluate_button, self.predict_button, self.open_button):
            b.setEnabled(False)
        return box

    # ---- state --------------------------------------------------------------------------------------------------
    def _on_scheduler_changed(self, name: str) -> None:
        """The warm-up is part of the cosine schedule: with another one it would be ignored, so it is not offered."""
        cosine = name == "cosine"
        self.warmup_spin.setEnabled(cosine)
        self.warmup_spin.setToolTip(
            "Epochs over which the learning rate ramps up from near zero"
            if cosine
            else "The warm-up belongs to the cosine schedule; the others start at the full learning rate"
        )

    def _set_state(self, state: str) -> None:
        self.state = state
        if state == IDLE and self._data_changed_meanwhile:
            self._on_data_changed()
        focused = QApplication.focusWidget()  # (a field or button about to be disabled: see the end)
        busy = state != IDLE
        self._sync_start()
        self.pause_button.setEnabled(state == RUNNING and self.proc is None)
        self.resume_button.setEnabled(state == PAUSED or (state == IDLE and self._stopped_run() is not None))
        self.stop_button.setEnabled(state in (PREPARING, RUNNING, PAUSED))
        self.model_panel.setEnabled(not busy)
        self.form_box.setEnabled(not busy)
        self.all_gpus_check.setEnabled(not busy)
        if state in (PAUSED, STOPPING, IDLE):  # no estimate while nothing runs; the next batch event sets it again
            self.eta_label.setText("Time left – (paused)" if state == PAUSED else "Time left –")
        self.state_label.setText(
            {
                IDLE: "Idle",
                PREPARING: "Preparing…",
                RUNNING: "Training",
                PAUSED: "Paused",
                STOPPING: "Stopping after this batch…",
            }[state]
        )
        self.state_label.setProperty("state", state)
        if state in _RESULT_WHILE and self.result_label.text() in _RESULT_WHILE.values():  # no result shown yet
            self.result_label.setText(_RESULT_WHILE[state])
        self.state_label.style().unpolish(self.state_label)
        self.state_label.style().polish(self.state_label)
        lost = focused is not None and self.isAncestorOf(focused) and not focused.isEnabled()
        owed = self._focus_owed is not None and QApplication.focusWidget() is self._focus_owed[0]
        if lost or owed:
            # F5 from a field, or Start, Pause or Stop pressed: the keys go on to the next control that acts (the
            # focus was cleared with the disabled field, or fell to the log); while stopping none does: on at Idle.
            # Never Stop: given the focus while Preparing (Pause is off then), the next Enter stopped the run
            after = {
                IDLE: (self.start_button, self.resume_button),
                PAUSED: (self.resume_button,),
                STOPPING: (),
            }.get(state, (self.pause_button,))
            target = next((b for b in after if b.isEnabled()), None)
            self._focus_owed = (QApplication.focusWidget(),) if target is None else None  # (where it fell)
            if target is not None:
                target.setFocus(Qt.FocusReason.OtherFocusReason)
        self.state_changed.emit(state)

    def _sync_start(self, *_: Any) -> None:
        """Start is enabled at Idle unless the open data set cannot be trained on (it looked ready beside the red
        banner, and pressing it said the banner again), or while the Dataset tab scans a folder (Start trained on
        the data set open before it, under the new folder's name in the box); its tooltip then says why."""
        why = (
            f"The open data set cannot be trained on: {self._data_problem}"
            if self._data_problem
            else self._scanning_text()
        )
        able = self.state == IDLE and not why
        if why:
            self._start_tip = self._start_tip or self.start_button.toolTip()
            self.start_button.setToolTip(why)
        elif self._start_tip:
            self.start_button.setToolTip(self._start_tip)
            self._start_tip = ""
        if able != self.start_button.isEnabled():
            self.start_button.setEnabled(able)
            self.start_changed.emit(able)

    def _scanning_text(self) -> str:
        """Why Start waits while the Dataset tab scans a folder ("" when it does not)."""
        panel = self.dataset_panel
        if panel is None or not panel.is_scanning():
            return ""
        return f"The Dataset tab is checking the images of {panel.folder}; training can start once it has"

    def is_running(self) -> bool:
        return self.state != IDLE or is_running(self.thread) or self.proc is not None

    def log_line(self, text: str, kind: str = "info") -> None:
        stamp = time.strftime("%H:%M:%S")
        prefix = {"warning": "⚠ ", "error": "✖ "}.get(kind, "")
        follow = self._log_follow
        self.log.appendPlainText(f"{stamp}  {prefix}{text}")
        if follow:
            bar = self.log.verticalScrollBar()
            bar.setValue(bar.maximum())

    # ---- environment and defaults -------------------------------------------------------------------------------
    def on_environment_ready(self) -> None:
        """Called once torch is imported: learn the devices and the recommended defaults (background)."""
        worker = FunctionWorker(_resolved_defaults, "auto")
        connect_worker(worker, self, result=self._on_defaults)
        start_worker(worker, self)

    def _on_defaults(self, d: dict) -> None:
        self._defaults = d
        self._device_type = d["device_type"]
        self.set_gpu_count(int(d.get("gpu_count") or 0))
        if d.get("cuda") and self.device_combo.findData("cuda") < 0:
            self.device_combo.addItem("GPU (CUDA)", "cuda")
        if d.get("mps") and self.device_combo.findData("mps") < 0:
            self.device_combo.addItem("Apple GPU (MPS)", "mps")
        saved = str(settings().value("train/device", "auto"))
        if self.device_combo.findData(saved) >= 0:
            self.device_combo.setCurrentIndex(self.device_combo.findData(saved))
        if d["device_type"] == "cpu" and _nvidia_driver() and not d.get("cuda_build", True):
            self.banner.set_info(CPU_ONLY_TORCH)
            self.log_line(CPU_ONLY_TORCH, "warning")
        if not self._had_saved_settings:
            if d["device_type"] == self._guessed_device_type:  # the form shows these already (and any edit made since)
                self.status_message.emit(f"Recommended settings for {d['device_type'].upper()}")
            else:
                self.apply_recommended()
        self._on_device_changed()

    def _show_likely_preset(self) -> None:
        """First start: fill the form with the recommended values of the device "auto" will likely pick, so that
        they do not change under the user's eyes (or hands) when torch has loaded and the device is known."""
        from core.config import auto_preset, likely_device_type

        self._guessed_device_type = likely_device_type()
        p = auto_preset(self._guessed_device_type)
        self._show_values(
            {k: p[k] for k in ("batch_size", "lr", "epochs", "warmup_epochs")}, p["image_size"], p["augment"]
        )

    def _show_values(self, train: dict, image_size: int, augment: str) -> None:
        """Training values in this form; image size and augmentation in the Dataset tab's."""
        self.set_train_values(train)
        if self.dataset_panel is not None:
            self.dataset_panel.set_image_size(int(image_size))
            self.dataset_panel.set_augment(augment)

    def set_gpu_count(self, n: int) -> None:
        """Show "Use all GPUs (n)" when there is more than one GPU; hide (and clear) it otherwise."""
        self.gpu_count = max(0, int(n))
        self.all_gpus_check.setText(f"Use all GPUs ({self.gpu_count})")
        if self.gpu_count > 1:
            self.all_gpus_check.setChecked(str(settings().value("train/all_gpus", "false")).lower() == "true")
        else:
            self.all_gpus_check.setChecked(False)
        self.all_gpus_check.setVisible(self.gpu_count > 1)

    def use_all_gpus(self) -> bool:
        """True when Start will train through torchrun on every GPU."""
        return self.gpu_count > 1 and self.all_gpus_check.isChecked()

    def apply_recommended(self) -> None:
        d = self._defaults
        if d is None:
            return
        train = dict(d["train"])
        image_size, augment, weights = d["image_size"], d["augment"], ""
        pretrained = self.model_panel.model_config().pretrained
        if pretrained:  # (starting from weights: a linear probe at 224 px on a CPU, not the small net's values)
            auto = self._auto_values(pretrained) or {}
            train.update({k: auto[k] for k in AUTO_TRAIN_KEYS if k in auto})
            image_size, augment = auto.get("image_size", image_size), auto.get("augment", augment)
            weights = " with pretrained weights"
        self._show_values(train, image_size, augment)  # (first start, or the Reset button)
        self.status_message.emit(f"Recommended settings for {d['device_type'].upper()}{weights} applied")

    def _auto_values(self, pretrained: str | None) -> dict | None:
        """The values arch Auto brings on this device with these pretrained weights, as the command line resolves
        them (core.engine.resolve_defaults); None until torch has loaded and the device is known."""
        if self._defaults is None:
            return None
        from core.config import RunConfig
        from core.engine import resolve_defaults

        cfg = RunConfig()
        cfg.model.pretrained = pretrained
        cfg = resolve_defaults(cfg, self._device_type)
        train = cfg.to_dict()["train"]
        return {
            "image_size": cfg.data.image_size,
            "augment": cfg.data.augment,
            **{k: train[k] for k in AUTO_TRAIN_KEYS},
        }

    def _follow_auto_preset(self, before: str | None, after: str | None) -> None:
        """Arch Auto with pretrained weights is ResNeXt-50 at 224 px with its own batch, lr and epochs on a CPU (the
        command line's TRANSFER_PRESET): the values still at Auto's old ones follow, the user's own stay."""
        panel = self.dataset_panel
        if panel is None or self.state != IDLE or self.model_panel.arch() != "auto":
            return
        old, new = self._auto_values(before), self._auto_values(after)
        if not old or not new:
            return
        try:
            now = {**self.train_values(), "image_size": panel.image_size(), "augment": panel.augment()}
        except ValueError:  # a number being typed: left alone
            return
        change = {k: v for k, v in new.items() if v != old[k] and now.get(k) == old[k]}
        if not change:
            return
        self.set_train_values({k: v for k, v in change.items() if k in AUTO_TRAIN_KEYS})
        if "image_size" in change:
            panel.set_image_size(int(change["image_size"]))
        if "augment" in change:
            panel.set_augment(str(change["augment"]))
        words = {
            "image_size": lambda v: f"{v} px",
            "batch_size": lambda v: f"batch {v}",
            "lr": lambda v: f"lr {v:g}",
            "epochs": lambda v: f"{v} epochs",
            "warmup_epochs": lambda v: f"warm-up {v:g}",
            "augment": lambda v: "no augmentation" if v == "none" else f"{v} augmentation",
        }
        said = ", ".join(words[k](v) for k, v in change.items())
        self.status_message.emit(f"Auto {'with' if after else 'without'} pretrained weights: {said}")

    def _on_device_changed(self, *_: Any) -> None:
        choice = self.device_combo.currentData()
        if choice == "auto":
            self._device_type = (self._defaults or {}).get("device_type", "cpu")
        else:
            self._device_type = str(choice)
        gpu = self._device_type == "cuda"
        self._amp_available(gpu)
        self.amp_check.setText("Mixed precision (AMP)" if gpu else "Mixed precision (GPU only)")
        self.amp_check.setToolTip(
            "Faster and lighter on NVIDIA GPUs"
            if gpu
            else "Mixed precision runs on NVIDIA GPUs only: this device trains in full precision"
        )
        self._on_model_changed()

    def _amp_available(self, gpu: bool) -> None:
        """Off a GPU the box is greyed and unticked; the value chosen is kept (settings, a saved run's config) and
        shown again when a GPU is chosen."""
        self._amp_gpu = gpu
        self.amp_check.setEnabled(gpu)
        self.amp_check.setChecked(self._amp_wanted and gpu)

    def _on_amp_toggled(self, on: bool) -> None:
        if self._amp_gpu:  # the user's choice (unticked off a GPU, it is only shown so)
            self._amp_wanted = on
        self._on_model_changed()

    def _on_model_changed(self, *_: Any) -> None:
        self.model_panel.set_context(
            device_type=self._device_type, batch_size=self.batch_spin.value(), amp=self._amp_wanted
        )

    def _on_data_changed(self, *_: Any) -> None:
        panel = self.dataset_panel
        if panel is None:
            return
        if self.state != IDLE:  # the summary describes the running run until it ends; the change applies then
            self._data_changed_meanwhile = True
            return
        self._data_changed_meanwhile = False
        if self._refusal and self.banner.text() == self._refusal:  # "The data set cannot be used" of an old folder
            self.banner.clear_message()
        self._refusal = ""
        problem = panel.training_problem() or (panel.last_error if panel.index is None else "")
        if problem and not self.banner.text():  # said before Start is pressed (it looked ready to train)
            self._refusal = f"The data set cannot be used (Dataset tab): {problem}"
            self.banner.set_error(self._refusal)
        self._data_problem = problem
        self._sync_start()
        n = len(panel.index.classes) if panel.index is not None else None
        self.model_panel.set_context(num_classes=n, image_size=panel.image_size())

    # ---- the form -----------------------------------------------------------------------------------------------
    def train_values(self, ranged: bool = False, lenient: bool = False) -> dict:
        """The Train form's settings. `ranged`: a number past its field's range is refused too (for a new run:
        1e9 as the learning rate started one, and failed it at step 3); a resume uses none of those numbers, and
        the settings keep what is typed. `lenient`: a field that is no number (half typed) is None, not refused
        (what the settings keep of a form closed so)."""

        def num(edit: QLineEdit, key: str) -> float | None:
            """The field's number, or ValueError in the config's form ("lr=1e9: must be …", said in the form's
            words with the field focused)."""
            text = edit.text().strip()
            try:
                value = float(text)
            except ValueError:
                if lenient:
                    return None
                raise ValueError(f"{key}={text!r}: not a number") from None
            v = edit.validator()
            if ranged and not v.bottom() <= value <= v.top():  # (nan and inf too)
                raise ValueError(f"{key}={text}: must be from {v.bottom():g} to {v.top():g}")
            return value

        patience = self.patience_spin.value()
        return {
            "epochs": self.epochs_spin.value(),
            "batch_size": self.batch_spin.value(),
            "lr": num(self.lr_edit, "lr"),
            "optimizer": self.optimizer_combo.currentText(),
            "weight_decay": num(self.wd_edit, "weight_decay"),
            "scheduler": self.scheduler_combo.currentText(),
            # only the cosine schedule has a warm-up (the field is off for the others; its value is kept for later)
            "warmup_epochs": round(self.warmup_spin.value(), 3)
            if self.scheduler_combo.currentText() == "cosine"
            else 0.0,
            "label_smoothing": round(self.smoothing_spin.value(), 3),
            "mixup": round(self.mixup_spin.value(), 3),
            "cutmix": round(self.cutmix_spin.value(), 3),
            "early_stop_patience": patience or None,
            "class_weights": self.class_weights_check.isChecked(),
            "device": str(self.device_combo.currentData()),
            "amp": self._amp_wanted,
            "seed": self.seed_spin.value(),
        }

    def set_train_values(self, t: dict) -> None:
        if "epochs" in t:
            self.epochs_spin.setValue(int(t["epochs"]))
        if "batch_size" in t:
            self.batch_spin.setValue(int(t["batch_size"]))
        if "lr" in t:
            self.lr_edit.setText(f"{float(t['lr']):g}")
        if "optimizer" in t:
            self.optimizer_combo.setCurrentText(str(t["optimizer"]))
        if "weight_decay" in t:
            self.wd_edit.setText(f"{float(t['weight_decay']):g}")
        if "scheduler" in t:
            self.scheduler_combo.setCurrentText(str(t["scheduler"]))
        for key, spin in (
            ("warmup_epochs", self.warmup_spin),
            ("label_smoothing", self.smoothing_spin),
            ("mixup", self.mixup_spin),
            ("cutmix", self.cutmix_spin),
        ):
            if key in t:
                spin.setValue(float(t[key] or 0.0))
        if "early_stop_patience" in t:
            self.patience_spin.setValue(int(t["early_stop_patience"] or 0))
        if "class_weights" in t:
            self.class_weights_check.setChecked(bool(t["class_weights"]))
        if "device" in t:
            i = self.device_combo.findData(str(t["device"]))
            if i >= 0:
                self.device_combo.setCurrentIndex(i)
        if "amp" in t:
            self._amp_wanted = bool(t["amp"])
            self.amp_check.setChecked(self._amp_wanted and self._amp_gpu)
        if "seed" in t:
            self.seed_spin.setValue(int(t["seed"]))

    def build_config(self) -> Any:
        """The RunConfig for a new run from the dataset panel, the model panel and the form (ConfigError/ValueError)."""
        from core.config import RunConfig, TrainConfig
        from core.data import folder_problem

        panel = self.dataset_panel
        if scanning := self._scanning_text():  # (F5 as the scan runs: the set open before is not the one named)
            raise ValueError(f"{scanning}.")
        if panel is not None and panel.index is not None and panel.index.too_few_classes():
            raise ValueError(f"The data set cannot be used (Dataset tab): {panel.training_problem()}")
        if panel is None or panel.index is None:
            if panel is not None and panel.last_error:  # the folder was opened but cannot be trained on: say why
                raise ValueError(f"The data set cannot be used (Dataset tab): {panel.last_error}")
            raise ValueError("Open a data set first (Dataset tab): no images to train on.")
        if problem := folder_problem(panel.index.root):  # changed since the scan: a run made of 39 skipped images
            gone = problem.startswith("no such folder")
            why = (
                "is not there any more (moved, renamed, or on a drive that was removed)"
                if gone
                else f"cannot be used now ({problem})"
            )
            raise ValueError(
                f"The data folder {panel.index.root} {why}: open it again in the Dataset tab (Open folder…)."
            )
        if gone := panel.index.folders_gone():  # (a class folder deleted since: a model with a class never seen)
            more = f" and {count_noun(len(gone) - 1, 'other')}" if len(gone) > 1 else ""
            raise ValueError(
                f"The data folder changed since it was scanned: {gone[0]}{more} is not there any more. Press "
                "Rescan in the Dataset tab, then Start training again."
            )
        train = TrainConfig(**self.train_values(ranged=True))
        data = panel.data_config()
        if data.val_split + data.test_split >= 1.0:  # said in the form's words (the config names its fields)
            raise ValueError(
                f"Validation {data.val_split:.0%} + test {data.test_split:.0%} leave no training images "
                "(Dataset tab): together they must stay below 100 %."
            )
        cfg = RunConfig(data=data, model=self.model_panel.model_config(), train=train)
        return cfg.validate()

    def _number_fields(self) -> dict[str, QWidget]:
        """The form's number fields by their settings' names (two line edits, the rest spin boxes)."""
        return {
            "lr": self.lr_edit,
            "weight_decay": self.wd_edit,
            "epochs": self.epochs_spin,
            "batch_size": self.batch_spin,
            "warmup_epochs": self.warmup_spin,
            "label_smoothing": self.smoothing_spin,
            "mixup": self.mixup_spin,
            "cutmix": self.cutmix_spin,
            "early_stop_patience": self.patience_spin,
            "seed": self.seed_spin,
        }

    def _in_form_words(self, exc: Exception) -> str:
        """A setting the form holds that the config refused ("lr=0.0: must be > 0") in the form's words ("Learning
        rate 0.0: must be > 0"), with the field focused for the fix; any other message as it is."""
        fields = self._number_fields()
        where, sep, why = str(exc).partition(": ")
        name, _, value = where.partition("=")
        field = fields.get(name) if sep else None
        label = self.form_box.layout().labelForField(field) if field is not None else None
        if not isinstance(label, QLabel):
            return str(exc)
        field.setFocus()
        if isinstance(field, QLineEdit):
            field.selectAll()
        return f"{label.text().replace('&', '')} {value}: {why}"

    # ---- actions ------------------------------------------------------------------------------------------------
    def start(self) -> bool:
        """Start a new run with the current settings; False (with a message) when something is missing."""
        if self.state != IDLE:
            return False
        self.banner.clear_message()
        problem = self.model_panel.problem()
        if problem:
            self.banner.set_error(problem)
            return False
        try:
            config = self.build_config()
        except ValueError as exc:  # ConfigError is a ValueError
            message = self._in_form_words(exc)
            self.banner.set_error(message)
            self._refusal = message  # (goes when the data set changes: it may be the answer)
            return False
        if config.model.pretrained == "imagenet":
            self._fetch_weights_then_start(config)
            return True
        self._launch(config, self.dataset_panel.index, resume=None)
        return True

    def resume_run(self, run_dir: str, epochs: int | None = None) -> bool:
        """Continue an interrupted/stopped run from its last.pt, to its planned epochs (or `epochs`: a finished
        run trained further), with its stored settings (this form's device)."""
        if self.state != IDLE:
            self.banner.set_error(BUSY_TEXT)
            return False
        self.banner.clear_message()
        if not (Path(run_dir) / "last.pt").is_file():
            self.banner.set_error(f"{run_dir}: no last.pt to resume from")
            return False
        from core.config import RunConfig, TrainConfig
        from core.runs import section, trained_data_root

        try:
            override = RunConfig(train=TrainConfig(**self.train_values()))  # (its epochs, device, cache only: the
            # run keeps its own rate and the rest; a learning rate of 0 in the form refused a resume that never uses it)
        except ValueError as exc:
            self.banner.set_error(self._in_form_words(exc))
            return False
        try:
            from core.runs import RunStore

            record = RunStore(Path(run_dir).parent).load(run_dir)
            history, config, status = record.history, record.config, record.status
        except Exception:  # noqa: BLE001 — an unreadable folder: the chart starts empty
            history, config, status = [], {}, {}

        # The run keeps its own plan (its schedule was built for it); the form's epoch count is not used here.
        # The epochs last.pt holds: status.json's epochs_done is written after each last.pt, history.csv at every
        # epoch's end (a run killed between two saves, train.save_every_s apart, has more history rows than its
        # checkpoint: the resume goes on from the checkpoint, and so does the chart).
        # A run that has done all its planned epochs (it failed after the last one, in its final evaluation) only
        # makes its end, as `train --resume` does (it was given one more epoch, unasked: its schedule laid anew).
        # (A config.json that gives no plan, damaged: one epoch more than last.pt holds.)
        planned = _int(section(config, "train").get("epochs"), 0)  # (section: "train": "x" raised here)
        saved = _int(status.get("epochs_done"), len(history))
        if status.get("status") == "running":  # (effective: a live process of this machine holds it, or another's
            # writes to it lately) refused here: the trainer's refusal came after this tab had cleared the run's
            # result, curves and buttons as for a run starting
            pid = status.get("pid")
            by = f" (process {pid})" if pid and status.get("hostname") == socket.gethostname() else ""
            from core.runs import PAUSED_MARKER

            paused = (Path(run_dir) / PAUSED_MARKER).exists()
            doing = "is paused in another window" if paused else "is training in another program"
            self.banner.set_error(f"{Path(run_dir).name} {doing}{by}: stop it there before resuming it here.")
            return False
        if epochs is None and status.get("status") == "completed":
            # finished since this tab showed it stopped (`train --resume` in a terminal): Resume trained one more
            # epoch unasked, and laid its schedule anew
            self.banner.set_error(
                f"{Path(run_dir).name} has finished since it stopped here ({saved} epochs, completed): nothing to "
                "resume. To train it further, use Train more epochs… in the Runs tab."
            )
            self.resume_button.setEnabled(False)
            return False
        history = [r for r in history if _int(r.get("epoch"), 0) <= saved]
        override.train.epochs = (
            (planned if planned and planned >= saved else saved + 1) if epochs is None else int(epochs)
        )
        if epochs is not None and override.train.epochs <= saved:
            self.banner.set_error(f"{Path(run_dir).name} has trained {saved} epochs already; ask for more than that.")
            return False
        override.data.root = ""
        data_root = trained_data_root(run_dir, str(section(config, "data").get("root") or ""))
        if data_root and not Path(data_root).is_dir():  # moved or renamed since: ask where it is now
            more = epochs is not None  # (Runs ▸ Train more epochs…: its words, not a resume's)
            found = self._locate_moved_data(data_root, "Train more epochs" if more else "Resume training")
            if not found:
                what = "No more epochs trained" if more else "Not resumed"
                self.banner.set_error(f"{what}: the run's data folder {data_root} is not there any more.")
                return False
            override.data.root = found
        self._launch(override, None, resume=run_dir, history=history, extend=epochs is not None)
        return True

    def _locate_moved_data(self, data_root: str, title: str = "Resume training") -> str:
        """Ask for the new place of a run's data folder; "" when the user does not give one."""
        if not ask(
            self,
            title,
            f"This run was trained on {data_root}, which is not there any more.\n\n"
            "Choose the folder where those images are now? (It must have the same class folders.)",
            yes="Choose folder…",
            default_yes=True,
        ):
            return ""
        return QFileDialog.getExistingDirectory(
            self,
            "Where is the run's data folder now?",
            str(Path(data_root).parent) if Path(data_root).parent.is_dir() else dialog_dir("images"),
        )

    def _launch(
        self, config: Any, index: Any, resume: str | None, history: list | None = None, extend: bool = False
    ) -> None:
        self.result = None
        self.fit_info = None
        self._launched_resume = bool(resume)
        self.best_checkpoint = self.last_checkpoint = None
        self.run_dir = resume
        for b in (self.evaluate_button, self.predict_button, self.open_button):
            b.setEnabled(False)
        self.ensure_charts()
        self.charts.reset()
        if resume:  # the run's earlier epochs and its per-batch line so far
            from core.runs import read_batches

            self.charts.set_history(history or [], read_batches(resume))
        self.charts.set_planned_epochs(config.train.epochs, len(index.classes) if index is not None else 0)
        self.epoch_bar.setRange(0, config.train.epochs)
        self.epoch_bar.setValue(len(history or []))
        self.batch_bar.setRange(0, 1)
        self.batch_bar.setValue(0)
        self.epoch_label.setText("Epoch –")  # (not the previous run's last numbers while this one prepares)
        self.batch_label.setText("Batch –")
        for label in (self.epoch_label, self.batch_label):
            label.setMinimumWidth(0)  # (held again for this run's numbers: _hold_width)
        self.device_label.setText("Device: –")
        self.speed_label.setText("– images/s")
        self.eta_label.setText("Time left –")
        self.result_label.setText(_RESULT_WHILE[RUNNING])
        self.log_line(f"Resuming {resume}" if resume else "Starting a new run")
        self.save_settings()  # the form and the Dataset tab's settings this run trains with, kept even if the app
        self.dataset_panel.save_settings()  # is killed before it quits
        if (resume is not None or index is not None) and self.use_all_gpus():
            # (a resume too: in one process a run's batch, the global batch of all GPUs, would all fall on one)
            self._launch_torchrun(config, self.gpu_count, resume=resume, rows=len(history or []), extend=extend)
            return
        worker = TrainingWorker(config, index, runs_dir=self.runs_dir, resume=resume, extend=extend)
        worker.loading.connect(self._on_loading)
        worker.fit_started.connect(self._on_fit_started)
        worker.epoch_started.connect(self._on_epoch_started)
        worker.batch.connect(self._on_batch)
        worker.epoch_end.connect(self._on_epoch_end)
        worker.warning.connect(self._on_warning)
        worker.checkpoint.connect(self._on_checkpoint)
        worker.failed.connect(self._on_failed)
        worker.finished.connect(self._on_finished)
        self.worker = worker
        self._set_state(PREPARING)
        self.thread = start_worker(worker, self)

    def pause(self) -> None:
        if self.worker is not None and self.proc is None and self.state == RUNNING:
            self.worker.pause()
            self._set_state(PAUSED)
            self.log_line("Paused")

    def resume(self) -> None:
        """A paused run goes on; after a Stop (or a failure), the run shown goes on from its last.pt."""
        if self.worker is not None and self.state == PAUSED:
            self.worker.resume()
            self._set_state(RUNNING)
            self.log_line("Resumed")
        elif self.state == IDLE and (run := self._stopped_run()) is not None:
            self.resume_run(run)

    def _stopped_run(self) -> str | None:
        """The folder of the run this tab shows if it ended before its last epoch (a Stop, a failure) and left a
        last.pt to go on from (what the Runs tab's "Resume training" does, here at hand)."""
        result, run = self.result, self.run_dir
        if result is None or result.reason not in ("stopped", "failed") or not run:
            return None
        if not (Path(run) / "last.pt").is_file():
            return None
        from core.runs import read_status

        return None if read_status(Path(run)).get("status") == "completed" else run  # (finished elsewhere since)

    def stop(self) -> None:
        if getattr(self, "_download_worker", None) is not None and not self._download_worker.cancelled:
            self._download_worker.cancel()
            self.log_line("Cancelling the download of the ImageNet weights…")
        if self.worker is not None and self.state in (PREPARING, RUNNING, PAUSED):
            self.worker.stop()
            self._set_state(STOPPING)
            self.log_line("Stopping after the current batch…")
        elif self.proc is not None and self.state in (PREPARING, RUNNING):
            self._ddp["stop_requested"] = True
            self._signal_stop_when_live()
            self._set_state(STOPPING)
            self.log_line("Stopping all processes after the current batch…")

    def _signal_stop_when_live(self) -> None:
        """A Stop of a torchrun job reaches its processes as SIGINT once they train (have reported progress): one
        sent while torchrun was still starting them was lost, and the job trained on to its last epoch."""
        d = self._ddp
        if d.get("stop_requested") and d.get("live") and not d.get("signalled") and self.proc is not None:
            from core.distributed import stop_torchrun

            stop_torchrun(self.proc)
            d["signalled"] = True

    def stop_and_wait(self, timeout_s: float = 120.0) -> bool:
        """Stop a run and wait for its thread while processing events (window close). True when it ended."""
        if self.proc is not None:
            return self._stop_torchrun_and_wait(min(timeout_s, DDP_STOP_WAIT_S))
        self.stop()
        deadline = time.monotonic() + timeout_s
        app = QCoreApplication.instance()
        while is_running(self.thread) and time.monotonic() < deadline:
            if app is not None:
                app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
            if is_running(self.thread):
                self.thread.wait(20)
        if app is not None:
            app.processEvents()
        return not is_running(self.thread)

    # ---- "Use all GPUs": a torchrun child process followed through its run folder -------------------------------
    def _launch_torchrun(
        self, config: Any, nproc: int, resume: str | None = None, rows: int = 0, extend: bool = False
    ) -> None:
        """Start `main.py train` under torchrun on `nproc` processes (`train --resume` for `resume`, whose chart
        holds `rows` epochs already); a QTimer follows the run folder it writes."""
        from core.distributed import follow_run, launch_torchrun
        from core.engine import choose_arch

        tmp = Path(tempfile.mkdtemp(prefix="resnext-studio-ddp-"))
        cfg_path, out_path, log_path = tmp / "config.json", tmp / "result.json", tmp / "train.log"
        if resume is not None:  # the run's own settings; only these may change (as resume_run set them)
            from core.runs import planned_epochs

            args = ["train", "--resume", resume, "--json"]
            # --epochs says "more epochs, on purpose" (Trainer's extend): a Resume to the run's plan leaves it out
            # (given, a run that had stopped early and was killed making its end trained on past it)
            if extend or config.train.epochs != planned_epochs(resume):
                args += ["--epochs", str(config.train.epochs)]
            args += ["--device", config.train.device] + (["--data", config.data.root] if config.data.root else [])
        else:
            choose_arch(config)  # here, so the CLI's device preset does not replace the form's values
            args = ["train", "--data", config.data.root, "--config", str(cfg_path), "--json"]
            if self.runs_dir:
                args += ["--runs-dir", str(self.runs_dir)]
        try:
            if resume is None:
                config.to_json(cfg_path)
            with open(out_path, "w", encoding="utf-8") as out, open(log_path, "w", encoding="utf-8") as err:
                proc = launch_torchrun(args, nproc, stdout=out, stderr=err)
        except (OSError, ValueError) as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            message = f"Could not start training on {nproc} GPUs: {exc}"
            self.log_line(message, "error")
            self.banner.set_error(message)
            self.result_label.setText("<b>Training failed.</b> See the log.")
            return
        self.proc = proc
        self._ddp = {
            "tmp": tmp,
            "out": out_path,
            "log": log_path,
            "log_pos": 0,
            "rows": rows,
            "epoch": 0,
            # the progress.json a stopped job left in the folder being resumed is not this job's
            "progress": (follow_run(resume).get("progress") or {}).get("updated") if resume else None,
            "live": False,  # this job has reported progress: its processes catch a Stop's signal
            "stop_requested": False,
            "signalled": False,
            "nproc": nproc,
        }
        self.log_line(f"Training with {nproc} processes (torchrun); per-process log: {log_path}")
        self.device_label.setText(f"Device: {nproc} processes (torchrun) · starting…")
        self._set_state(PREPARING)
        self._ddp_timer.start()

    def _poll_ddp(self) -> None:
        """Timer tick: show new progress, epochs and log lines of the torchrun job; finish when it has exited."""
        proc = self.proc
        if proc is None:
            self._ddp_timer.stop()
            return
        from core.distributed import follow_run, run_dir_of

        if self.run_dir is None:
            found = run_dir_of(proc)
            if found is not None:
                self.run_dir = str(found)
                self.log_line(f"Run folder: {found}")
                if self.state == PREPARING:
                    self._set_state(RUNNING)
        self._forward_log()
        if self.run_dir is not None:
            self._show_snapshot(follow_run(self.run_dir))
        self._signal_stop_when_live()
        if proc.poll() is not None:
            self._finish_ddp()

    def _show_snapshot(self, snap: dict) -> None:
        from core.engine import BatchProgress, EpochMetrics

        rows = snap.get("history") or []
        for row in rows[self._ddp["rows"] :]:
            try:
                m = EpochMetrics(
                    epoch=int(row["epoch"]),
                    train_loss=float(row["train_loss"]),
                    train_acc=float(row["train_acc"]),
                    val_loss=row.get("val_loss"),
                    val_acc=row.get("val_acc"),
                    lr=float(row.get("lr") or 0.0),
                    seconds=float(row.get("seconds") or 0.0),
                )
            except (KeyError, TypeError, ValueError):
                continue  # a row still being written; read again next tick
            self._on_epoch_end(m)
            self._ddp["rows"] += 1
            self._ddp["live"] = True
        p = snap.get("progress")
        if not p or p.get("updated") == self._ddp["progress"]:
            return
        self._ddp["progress"] = p.get("updated")
        self._ddp["live"] = True
        try:
            bp = BatchProgress(
                epoch=int(p["epoch"]),
                step=int(p["step"]),
                steps=int(p["steps"]),
                loss=float(p["loss"]),
                images_per_s=float(p["images_per_s"]),
                eta_s=float(p["eta_s"]),
                recent_loss=float(p["recent_loss"]) if p.get("recent_loss") is not None else None,
            )
        except (KeyError, TypeError, ValueError):
            return
        if bp.epoch <= self._ddp["rows"]:
            return  # an epoch already finished (history.csv is ahead of progress.json)
        if self.state == PREPARING:
            self._set_state(RUNNING)
        if bp.epoch != self._ddp["epoch"]:
            self._ddp["epoch"] = bp.epoch
            self._on_epoch_started(bp.epoch)
        self._on_batch(bp)

    def _forward_log(self) -> None:
        """Rank 0's device line and warnings from the job's stderr log into the Log panel."""
        try:
            with open(self._ddp["log"], "rb") as f:
                f.seek(self._ddp["log_pos"])
                chunk = f.read()
        except OSError:
            return
        end = chunk.rfind(b"\n")
        if end < 0:
            return
        self._ddp["log_pos"] += end + 1
        for line in chunk[:end].decode("utf-8", "replace").splitlines():
            line = line.strip()
            if line.startswith("warning: "):
                self._on_warning(line[len("warning: ") :])
            elif line.startswith("device: "):
                device = line[len("device: ") :].split(";")[0]
                self.device_label.setText(f"Device: {device}")
                self.device_in_use.emit(device)
                self.log_line(line[len("device: ") :])

    def _log_tail(self, lines: int = 15) -> str:
        try:
            text = Path(self._ddp["log"]).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def _log_error(self) -> str:
        """The job's own error line: the CLI's "error: ..." or the last "SomeError: ..." of a traceback ("" if none)."""
        try:
            lines = Path(self._ddp["log"]).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        for line in lines:
            if line.startswith("error: "):
                return line[len("error: ") :].strip()
        found = [ln.strip() for ln in lines if re.match(r"^[\w.]*(Error|Exception): ", ln.strip())]
        return found[-1] if found else ""

    def _ddp_result(self, returncode: int) -> Any:
        """A FitResult from what the job left: status.json (reason, message), its --json answer, the run folder."""
        from core.distributed import follow_run
        from core.engine import FitResult

        answer: dict = {}
        with contextlib.suppress(OSError, ValueError):
            text = Path(self._ddp["out"]).read_text(encoding="utf-8")
            start = text.find("{")
            doc = json.loads(text[start:]) if start >= 0 else {}
            answer = doc if isinstance(doc, dict) else {}
        snap = follow_run(self.run_dir) if self.run_dir else {"status": None, "history": []}
        status = snap.get("status") or {}
        reason = status.get("reason") or answer.get("reason")
        if reason is None or status.get("status") == "running":
            reason = "stopped" if self._ddp.get("stop_requested") else "failed"
        message = str(status.get("message") or answer.get("message") or "")
        if reason == "failed" and not message:
            tail = self._log_tail()
            message = self._log_error() or (
                f"torchrun exited with code {returncode}" + (f":\n{tail}" if tail else "")
                if returncode
                else (tail or "the training processes ended without a result")
            )
        evaluation = answer.get("evaluation")
        if evaluation is None and self.run_dir:
            with contextlib.suppress(OSError, ValueError):
                evaluation = json.loads((Path(self.run_dir) / "evaluation.json").read_text(encoding="utf-8"))
        best_epoch = answer.get("best_epoch", status.get("best_epoch"))
        run_dir = self.run_dir if self.run_dir and Path(self.run_dir).is_dir() else None  # gone: stopped early
        return FitResult(
            reason=reason,
            message=message,
            best_epoch=best_epoch,
            best_metric=answer.get("best_metric", status.get("best_metric")),
            run_dir=run_dir,
            history=answer.get("history") or snap.get("history") or [],
            evaluation=evaluation,
        )

    def _finish_ddp(self) -> None:
        """The torchrun job has exited: show its last epochs and the same summary as a normal run, then idle."""
        proc = self.proc
        if proc is None:
            return
        self._ddp_timer.stop()
        returncode = proc.wait()
        if os.name == "posix":  # a rank that outlived torchrun would hold its GPU: end the job's process group
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        from core.distributed import follow_run

        self._forward_log()
        if self.run_dir is None:
            from core.distributed import run_dir_of

            found = run_dir_of(proc)
            self.run_dir = str(found) if found is not None else None
        if self.run_dir is not None:
            self._show_snapshot(follow_run(self.run_dir))
        result = self._ddp_result(returncode)
        if result.reason == "failed":
            tail = self._log_tail()
            if tail and tail not in result.message:
                self.log_line(f"Last lines of the training log:\n{tail}", "error")
        if self.run_dir and (Path(self.run_dir) / "last.pt").is_file():
            self.last_checkpoint = str(Path(self.run_dir) / "last.pt")
        info_path = getattr(proc, "run_info_path", None)
        if info_path:
            with contextlib.suppress(OSError):
                os.unlink(info_path)
        shutil.rmtree(self._ddp.get("tmp") or "", ignore_errors=True)
        self.proc = None
        self._ddp = {}
        self._on_finished(result)

    def _stop_torchrun_and_wait(self, timeout_s: float) -> bool:
        """Stop the torchrun job, wait for it while processing events, kill it if it outlives `timeout_s`."""
        proc = self.proc
        if proc is None:
            return True
        self.stop()
        loop = QEventLoop()
        deadline = time.monotonic() + timeout_s
        while proc.poll() is None and time.monotonic() < deadline:
            loop.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(0.05)
        if proc.poll() is None:
            self.log_line("The training processes did not stop in time; ending them", "warning")
            if os.name == "posix":
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
            proc.wait()
        if self.proc is proc:  # the timer has not finished it yet
            self._finish_ddp()
        return True

    # ---- ImageNet weights ---------------------------------------------------------------------------------------
    def _fetch_weights_then_start(self, config: Any) -> None:
        from core.models import auto_arch

        arch = config.model.arch if config.model.arch != "auto" else auto_arch("cpu", "imagenet")  # Auto: ResNeXt-50
        # (cached weights are read through for their hash first: "Downloading" would not be true of that)
        dialog = QProgressDialog(f"ImageNet weights for {arch}: looking in the cache…", "Cancel", 0, 0, self)
        dialog.setWindowTitle("ImageNet weights")
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.setMinimumDuration(300)
        worker = FunctionWorker(_download_weights, arch)
        self._download_worker = worker
        self._set_state(PREPARING)

        def progress(done: int, total: int) -> None:
            dialog.setLabelText(f"Downloading ImageNet weights for {arch}: {done / 2**20:.0f} MB")
            if total > 0:
                dialog.setRange(0, 1000)
                dialog.setValue(int(1000 * done / total))
                dialog.setLabelText(
                    f"Downloading ImageNet weights for {arch}: {done / 2**20:.0f} / {total / 2**20:.0f} MB"
                )

        def done(_path: str) -> None:
            dialog.reset()
            self._download_worker = None
            self._set_state(IDLE)
            if worker.cancelled:  # (it ended as Stop or Cancel came): no run the user called off
                self.log_line("Download cancelled")
                return
            index = self.dataset_panel.index  # (a scan may have ended meanwhile: the folder is checked again)
            changed = index is None or index.too_few_classes() or index.root != config.data.root
            if changed or self.dataset_panel.is_scanning():  # (or changing: its scan runs)
                self.banner.set_error(
                    "The data set changed while the weights downloaded (Dataset tab); press Start training again."
                )
                return
            self._launch(config, index, resume=None)

        def failed(message: str) -> None:
            dialog.reset()
            self._download_worker = None
            self._set_state(IDLE)
            if worker.cancelled:
                self.log_line("Download cancelled")
                return
            self._offline_choice(config, message)

        dialog.canceled.connect(lambda: worker.cancel())  # a lambda runs here; a slot would queue
        connect_worker(worker, self, progress=progress, result=done, failed=failed)
        start_worker(worker, self)

    def _offline_choice(self, config: Any, message: str) -> None:
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("ImageNet weights unavailable")
        offline = "no internet" in message
        box.setText(f"The ImageNet weights could not be downloaded{' (no internet connection?)' if offline else ''}.")
        # the command line's advice names a flag: the reason, and how to bring the file in by hand, in the box's words
        from core.models import BY_HAND

        reason, _, by_hand = message.partition(f"; {BY_HAND}")
        reason = reason.split("; choose a local weights file")[0]
        by_hand = by_hand.split("; or choose a local weights file")[0]
        self.log_line(f"ImageNet weights unavailable: {reason}", "warning")  # (kept past the dialog)
        hand = f"On a computer with internet, {by_hand}.\n\n" if by_hand else ""
        box.setInformativeText(f"{reason}.\n\n{hand}Or use a weights file you already have, or train from scratch.")
        local = box.addButton("Use a local file…", QMessageBox.ButtonRole.AcceptRole)
        scratch = box.addButton("Train from scratch…", QMessageBox.ButtonRole.ActionRole)
        scratch.setToolTip("Sets Pretrained to None; you check the model for this computer, then Start")
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        clicked = box.clickedButton()
        if clicked is local:
            path, _ = QFileDialog.getOpenFileName(
                self,
                "Choose a weights file",
                dialog_dir("weights"),
                "PyTorch weights (*.pt *.pth *.bin);;All files (*)",
            )
            if path:
                remember_dir("weights", path)
                self.model_panel.pretrained_combo.setCurrentIndex(self.model_panel.pretrained_combo.findData("file"))
                self.model_panel.weights_edit.setText(path)
                self.start()
        elif clicked is scratch:  # not started at once: the model was chosen for its ImageNet weights (a
            self.model_panel.pretrained_combo.setCurrentIndex(0)  # ResNeXt-50 at 224 px: hours an epoch on a CPU)
            self.banner.set_info(
                "Pretrained is now None. A model trained from scratch need not be the one chosen for its ImageNet "
                "weights: check the model and image size (Reset to recommended values suits this computer), then "
                "Start training."
            )

    # ---- worker events ------------------------------------------------------------------------------------------
    def _on_loading(self, done: int, total: int) -> None:
        """The images read into memory before the first epoch, on the batch bar: "Preparing…" had stood for
        minutes on a large set with nothing moving."""
        if self.state != PREPARING:
            return
        self.batch_bar.setFormat("%v / %m images")
        self.batch_bar.setRange(0, max(1, total))
        self.batch_bar.setValue(done)
        self.batch_label.setText(f"Reading images {done:,} / {total:,}")
        _hold_width(self.batch_label, f"Reading images {total:,} / {total:,}")

    def _on_fit_started(self, info: Any) -> None:
        from core.config import train_acc_name

        self.fit_info = info
        self.batch_label.setMinimumWidth(0)  # (held for "Reading images …": the batches' own count holds it now)
        self.batch_bar.setFormat("%v / %m batches")
        self._acc_name = train_acc_name(info.config)  # (the epoch lines' name of the training accuracy)
        self.run_dir = info.run_dir
        if self.state == PREPARING or self.state == PAUSED and self.worker is not None and not self.worker.paused:
            self._set_state(RUNNING)
        self.epoch_bar.setRange(0, info.epochs)
        self.epoch_bar.setValue(info.start_epoch)
        self.charts.set_planned_epochs(info.epochs, info.num_classes)
        self.batch_bar.setRange(0, max(1, info.steps_per_epoch))
        self.device_label.setText(f"Device: {info.device_name} · data: {info.loader_mode}")
        self.device_in_use.emit(info.device_name)
        self.log_line(
            f"{info.arch} ({info.params / 1e6:.2f} M parameters), {info.num_classes} classes on {info.device_name}"
        )
        self.log_line(
            f"Images: train {info.train_size} · val {info.val_size} · test {info.test_size}; "
            f"{info.steps_per_epoch} batches per epoch; data: {info.loader_mode}"
        )
        self.log_line(f"Run folder: {info.run_dir}")
        root = str((info.config.get("data") or {}).get("root") or "")
        where = f" for {elide_middle(Path(root).name or root, 40)}" if root else ""  # (read later: another may be open)
        for note in info.data_notes:  # (the CLI warns of them before it starts; here the log does)
            self.log_line(f"{note}: the Dataset tab's Problems list{where} names them", "warning")
        if info.start_epoch or getattr(info, "resume_step", 0):  # a resumed run keeps its own settings
            from core.config import settings_summary

            text = f"{RESUME_NOTE} {settings_summary(info.config)}."
            self.log_line(text)
            self.banner.set_info(text + " The form keeps yours for new runs.")
        done = getattr(info, "resume_step", 0)
        if done and done >= info.steps_per_epoch:  # (stopped while validating: every batch was trained)
            self.log_line(f"Going on with the validation of epoch {info.start_epoch + 1}, where it was stopped")
        elif done:
            self.log_line(
                f"Going on in epoch {info.start_epoch + 1} after batch {done} of {info.steps_per_epoch}, where it "
                "was stopped"
            )

    def _on_epoch_started(self, epoch: int) -> None:
        info = self.fit_info
        total = info.epochs if info is not None else self.epoch_bar.maximum()
        # epoch 0 is a linear probe's feature pass: the backbone runs over the images once, nothing trains yet
        self.epoch_label.setText(f"Epoch {epoch} / {total}" if epoch else "Computing features")
        _hold_width(self.epoch_label, f"Epoch {total} / {total}")
        # a resumed epoch starts after the batches done before the stop
        done = getattr(info, "resume_step", 0) if info is not None and epoch == info.start_epoch + 1 else 0
        self.batch_bar.setValue(done)
        self.batch_label.setText(f"{'Batch' if epoch else 'Feature batch'} {done} / {self.batch_bar.maximum()}")

    def _on_batch(self, p: Any) -> None:
        what = "Batch" if p.epoch else "Feature batch"
        if max(1, p.steps) != self.batch_bar.maximum():  # (a new count of batches: measured once, not per batch)
            _hold_width(self.batch_label, f"{what} {p.steps} / {p.steps}")
        self.batch_bar.setRange(0, max(1, p.steps))
        self.batch_bar.setValue(p.step)
        self.batch_label.setText(f"{what} {p.step} / {p.steps}")
        # the line shows the loss of the latest batches (the epoch's running mean lags behind it)
        loss = p.loss if getattr(p, "recent_loss", None) is None else p.recent_loss
        if self.state in (PAUSED, STOPPING):  # the batch in flight reports after Pause/Stop: keep their text
            self.charts.add_batch(p.epoch, p.step, p.steps, loss)
            return
        self.speed_label.setText(
            f"{p.images_per_s:,.0f} images/s" if p.images_per_s >= 10 else f"{p.images_per_s:.1f} images/s"
        )
        self.eta_label.setText(_fmt_left(p.eta_s))
        self.charts.add_batch(p.epoch, p.step, p.steps, loss)

    def _on_epoch_end(self, m: Any) -> None:
        self.charts.add_metrics(m)
        self.epoch_bar.setValue(m.epoch)
        val = (
            f" · val {_unbroken(f'loss {m.val_loss:.4f}')}, {_unbroken(f'acc {100 * m.val_acc:.1f}%')}"
            if m.val_acc is not None
            else ""
        )
        self.log_line(
            f"Epoch {m.epoch}: train {_unbroken(f'loss {m.train_loss:.4f}')}, {_unbroken(f'{self._acc_name} {100 * m.train_acc:.1f}%')}"
            f"{val} · {_unbroken(m.lr_text())} · {_unbroken(f'{m.seconds:.1f} s')}"
        )

    def _on_warning(self, msg: str) -> None:
        self.log_line(msg, "warning")

    def _on_checkpoint(self, path: str, kind: str) -> None:
        if kind == "best":
            self.best_checkpoint = path
        elif kind == "last":
            self.last_checkpoint = path

    def _on_failed(self, message: str) -> None:
        self.log_line(message, "error")
        self.banner.set_error(message)
        QMessageBox.critical(self, self._failure_title(), message)

    def _failure_title(self) -> str:
        """Refused before it began (a locked run, a data folder that changed …) is not a training that failed."""
        if self.fit_info is not None:
            return "Training failed"
        return "Could not resume the run" if self._launched_resume else "Could not start training"

    def _on_finished(self, result: Any) -> None:
        self.worker = None
        self.result = result
        if result is not None:  # (a run stopped before it began has no folder any more: the engine removes it)
            self.run_dir = result.run_dir or (None if result.reason == "stopped" else self.run_dir)
        self._set_state(IDLE)
        said_while_it_ran = (self.banner.kind == "info" and self.banner.text().startswith(RESUME_NOTE)) or (
            self.banner.kind == "error" and self.banner.text() == BUSY_TEXT
        )
        if said_while_it_ran:  # (the log keeps the note)
            self.banner.clear_message()
        self.device_in_use.emit("")
        if result is None:  # an exception; _on_failed has shown it
            self.result_label.setText(f"<b>{html.escape(self._failure_title())}.</b> See the log.")
            return
        title = REASONS.get(result.reason, result.reason)
        # how it ended and why on one line: on a 1280 x 720 screen a line of its own pushed the run folder out of
        # the box
        lines = [f"<b>{html.escape(title)}</b>" + (f": {html.escape(result.message)}" if result.message else "")]
        if self._stopped_run() is not None:  # (on the first line: the box shows its first lines unscrolled, and a
            # line of its own cut the run folder's name on a 1024 x 700 screen)
            lines[0] += f"{'' if lines[0].endswith('.') else '.'}{RESUME_HINT}"
        lost = len(result.unreadable)
        if lost:  # deleted or damaged since the scan: the numbers below are of fewer images than it counted
            lines.append(
                f"<span style='color:{WARNING_COLOR}'>{count_noun(lost, 'image')} could not be read and "
                f"{'was' if lost == 1 else 'were'} left out (see the log).</span>"
            )
        ev = result.evaluation or {}
        ev_acc = ev.get("accuracy")
        merged = False
        if result.best_epoch is not None:
            best_row = next((r for r in result.history if r.get("epoch") == result.best_epoch), {})
            acc = best_row.get("val_acc")
            metric = (
                f"validation accuracy {100 * acc:.1f}%"
                if acc is not None
                else f"train loss {best_row.get('train_loss', float('nan')):.4f}"
            )
            n = ev.get("num_samples") or 0
            # the same count of images right (history.csv keeps float32: 0.8333333134 against 0.8333333333)
            same = acc is not None and ev_acc is not None and abs(ev_acc - acc) < 0.5 / max(n, 1)
            if ev.get("split") == "val" and same:
                metric += f" ({ev.get('num_samples')} images)"  # best.pt re-evaluated gives the same: one line
                merged = True
            lines.append(f"Best epoch <b>{result.best_epoch}</b>: {metric}")
        if ev_acc is not None and not merged:
            split = {"val": "Validation", "test": "Test"}.get(ev.get("split"), "Held-out")
            lines.append(f"{split} accuracy of best.pt: {100 * ev_acc:.1f}% ({ev.get('num_samples')} images)")
        if self.run_dir:
            self.result_label.show_result(lines, Path(self.run_dir).name)
        else:
            self.result_label.setText("<br>".join(lines))
        self.result_label.setToolTip(self.run_dir or "")
        self.log_line(
            f"{title}{': ' + result.message if result.message else ''}",
            "error" if result.reason == "failed" else "info",
        )
        run = Path(self.run_dir) if self.run_dir else None
        best = run / "best.pt" if run else None
        if best is not None and best.is_file():
            self.best_checkpoint = str(best)
        self.evaluate_button.setEnabled(bool(best and best.is_file()))
        self.predict_button.setEnabled(bool(best and best.is_file()))
        self.open_button.setEnabled(bool(run and run.is_dir()))
        self.status_message.emit(title)
        if result.reason == "failed":
            self.banner.set_error(result.message or "Training failed")
            QMessageBox.critical(self, "Training failed", result.message or "Training failed (see the log).")
        self.run_finished.emit(result)

    def forget_runs(self, paths: list) -> None:
        """Deleted run folders: if the shown result is one of them, its buttons go and the summary says so."""
        if not self.run_dir or self.state != IDLE or not any(Path(p) == Path(self.run_dir) for p in paths):
            return
        for b in (self.evaluate_button, self.predict_button, self.open_button):
            b.setEnabled(False)
        self.best_checkpoint = self.last_checkpoint = None
        # how it ended stays; what it offered (resume from last.pt, the best epoch's files, its folder) went with it
        title = self.result_label.text().split("<br>")[0].replace(RESUME_HINT, "")
        name = html.escape(Path(self.run_dir).name)
        self.result_label.setText(f"{title}<br><i>Its folder {name} has been deleted (checkpoints and curves).</i>")
        self.run_dir = None
        self._set_state(IDLE)  # (nothing to resume any more)

    def _request_predict(self) -> None:
        if self.best_checkpoint:
            self.predict_requested.emit(self.best_checkpoint)

    # ---- settings -----------------------------------------------------------------------------------------------
    def _restore_settings(self) -> None:
        """Each saved value on its own: one not valid (hand-edited, another version's) keeps its own field's default
        (the first bad one reset every later one, and `early_stop_patience=abc` stopped the window from opening), and
        a number past its field's range is brought into it (past 32 bits setValue raised OverflowError)."""
        s = settings()
        spins = {k: w for k, w in self._number_fields().items() if isinstance(w, (QSpinBox, QDoubleSpinBox))}
        for key in TRAIN_KEYS:
            name = f"train/{key}"
            v = s.value(name)
            if v is None:
                continue
            if key in spins:
                v = load_spin_setting(s, name, spins[key], None)
            elif key in ("lr", "weight_decay"):  # (a value out of range is said in words at Start, as one typed)
                v = load_number_setting(s, name, float, None, None, None)
            elif key in ("class_weights", "amp"):
                v = {"true": True, "false": False}.get(str(v).lower())
            elif not isinstance(v, str):
                v = None
            if v is not None:
                with contextlib.suppress(TypeError, ValueError, OverflowError):
                    self.set_train_values({key: v})

    def save_settings(self) -> None:
        s = settings()
        # (a learning rate left half typed, "1e-", had every Train and Model setting of the session forgotten: the
        # field is left as it was stored, the rest saved)
        values = self.train_values(lenient=True)
        values["warmup_epochs"] = round(self.warmup_spin.value(), 3)  # kept for when cosine is chosen again
        for key, v in values.items():
            if v is None and key in ("lr", "weight_decay"):
                continue
            if isinstance(v, bool):
                v = "true" if v else "false"
            s.setValue(f"train/{key}", 0 if v is None else v)
        if self.gpu_count > 1:
            s.setValue("train/all_gpus", "true" if self.all_gpus_check.isChecked() else "false")
        self.model_panel.save_settings()
