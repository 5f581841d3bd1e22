"""Model choice: preset or custom ResNeXt, pretrained weights, training mode, and a live size/memory summary."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from gui.app import settings
from gui.widgets import SteadyLabel, dialog_dir, remember_dir, shrinkable, typed_path
from gui.worker import FunctionWorker, connect_worker, start_worker

AUTO = "auto"
CUSTOM = "custom"
PRETRAINED_CHOICES = (
    ("none", "None (train from scratch)"),
    ("imagenet", "ImageNet (torchvision)"),
    ("file", "Local weights file…"),
)
MODES = (
    ("scratch", "Train everything from scratch"),
    ("linear", "Linear probe (train the last layer only)"),
    ("finetune", "Fine-tune (all layers, lower backbone lr)"),
)
AUTO_PRETRAINED = "auto+weights"
DESCRIPTIONS = {  # the choices that are no preset of core.models
    AUTO: "A small CIFAR-style ResNeXt on a CPU, ResNeXt-50 32×4d on a GPU.",
    AUTO_PRETRAINED: "With pretrained weights: ResNeXt-50 32×4d at 224 px; with a run's checkpoint, that run's "
    "model and image size.",
    CUSTOM: "ResNeXt-{depth}_{C}×{d}d: depth 50/101/152 ImageNet-style, 9n+2 CIFAR-style (e.g. 29). "
    "Higher cardinality beats deeper or wider.",
}


def _presets() -> list[dict]:
    from core.models import presets

    return presets()


def trained_arch(arch: str, device_type: str, weights: str | None) -> Any:
    """The ArchSpec of what trains: Auto made concrete for the device and weights (models.ModelError for a name
    that is none)."""
    from core import models

    return models.parse_arch(models.auto_arch(device_type, weights) if arch == AUTO else arch)


def _summarise(
    arch: str,
    device_type: str,
    num_classes: int,
    image_size: int,
    batch_size: int,
    amp: bool,
    weights: str | None = None,
) -> dict:
    """`weights`: None, "imagenet" or a weights file (a checkpoint of ours makes Auto its architecture)."""
    from core import models

    spec = trained_arch(arch, device_type, weights)
    info = models.summary(spec.name, num_classes, image_size)
    memory = models.estimate_train_memory(
        spec.name, num_classes, image_size, batch_size, amp=amp and device_type == "cuda"
    )
    return {
        "arch": spec.name,
        "params": info["params"],
        "macs": info["macs"],
        "memory": memory,
        "has_imagenet_weights": spec.has_imagenet_weights,
        "image_size": image_size,
        "batch_size": batch_size,
        "num_classes": num_classes,
    }


NO_IMAGENET_ADVICE = "choose ResNeXt-50/101, a ResNet, or another weights source."


def human_count(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n:.0f}"


def human_bytes(n: float) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} B"


class DepthSpin(QSpinBox):
    """The custom ResNeXt's depth: only depths that exist (9n+2: 11, 20, 29 … CIFAR-style; 50, 101, 152
    ImageNet-style). The arrows step between them; a typed value is taken as the nearest one."""

    DEPTHS = sorted({*range(11, 1002, 9), 50, 101, 152})

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setRange(self.DEPTHS[0], self.DEPTHS[-1])

    def stepBy(self, steps: int) -> None:  # noqa: N802 — Qt override
        i = min(range(len(self.DEPTHS)), key=lambda k: abs(self.DEPTHS[k] - self.value()))
        self.setValue(self.DEPTHS[max(0, min(len(self.DEPTHS) - 1, i + steps))])

    def validate(self, text: str, pos: int) -> object:  # noqa: D102 — Qt override
        from PySide6.QtGui import QValidator

        digits = text.strip()
        if digits.isdigit() and int(digits) in self.DEPTHS:
            return QValidator.State.Acceptable
        if digits == "" or (digits.isdigit() and any(str(d).startswith(digits) for d in self.DEPTHS)):
            return QValidator.State.Intermediate  # on the way to a depth that exists
        return QValidator.State.Invalid

    def fixup(self, text: str) -> str:  # noqa: D102 — Qt override
        n = int(text) if text.strip().isdigit() else self.value()
        return str(min(self.DEPTHS, key=lambda d: abs(d - n)))


class ModelPanel(QGroupBox):
    """The "Model" group on the Train tab. `model_config()` gives a core.config.ModelConfig."""

    changed = Signal()
    image_size_suggested = Signal(int)  # the user picked a preset whose usual input size differs
    pretrained_changed = Signal(object, object)  # model_config().pretrained before, after (Auto's values follow it)
    summary_ready = Signal(object)  # dict (see _summarise) or None on error

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Model", parent)
        self.presets: list[dict] = []
        self.last_summary: dict | None = None
        self.summary_error = ""
        # Auto's recommended values (image_size, augment, batch_size, …) with the given pretrained weights, or None
        # until the device is known: set by the Train tab
        self.auto_values: Callable[[str | None], dict | None] = lambda _pretrained: None
        self._pretrained_now: str | None = None
        self._context = {"device_type": "cpu", "num_classes": 10, "image_size": 64, "batch_size": 32, "amp": False}
        self._summary_worker: FunctionWorker | None = None
        self._summary_pending = False
        # the architecture to show once the preset list has come: the saved one, then the one chosen (_on_changed)
        self._arch_wanted = str(settings().value("model/arch", AUTO))
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(300)
        self._timer.timeout.connect(self._start_summary)
        self._build()
        self._restore()
        self._pretrained_now = self.model_config().pretrained
        self._load_presets()

    # ---- layout -------------------------------------------------------------------------------------------------
    def _build(self) -> None:
        form = QFormLayout(self)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.preset_combo = shrinkable(QComboBox())
        self.preset_combo.setToolTip("The network to train; 'Auto' picks a good one for this computer")
        self.preset_combo.addItem("Auto (chosen for the device)", AUTO)
        self.preset_combo.addItem("Custom ResNeXt…", CUSTOM)
        self.preset_combo.currentIndexChanged.connect(self._on_preset_changed)
        self.preset_combo.activated.connect(self._on_preset_activated)
        form.addRow("&Architecture", self.preset_combo)

        self.custom_row = QWidget()
        cr = QHBoxLayout(self.custom_row)
        cr.setContentsMargins(0, 0, 0, 0)
        self.depth_spin = DepthSpin()
        self.depth_spin.setValue(29)
        self.depth_spin.setToolTip("Depth: 50/101/152 = ImageNet-style (4 stages); 9n+2 (11, 20, 29…) = CIFAR-style")
        self.card_spin = QSpinBox()
        self.card_spin.setRange(1, 256)
        self.card_spin.setValue(8)
        self.card_spin.setToolTip("Cardinality C: number of parallel paths (groups) in each block")
        self.width_spin = QSpinBox()
        self.width_spin.setRange(1, 512)
        self.width_spin.setValue(16)
        self.width_spin.setToolTip("Width d: channels per path in the first stage (doubles every stage)")
        for label, w in (("depth", self.depth_spin), ("C", self.card_spin), ("d", self.width_spin)):
            cr.addWidget(QLabel(label))
            cr.addWidget(w, 1)
            w.valueChanged.connect(self._on_changed)
        form.addRow("", self.custom_row)

        self.description = SteadyLabel()  # as tall as the longest description: the form below does not jump
        self.description.setObjectName("hintLabel")
        form.addRow("", self.description)

        self.pretrained_combo = shrinkable(QComboBox())
        for key, text in PRETRAINED_CHOICES:
            self.pretrained_combo.addItem(text, key)
        self.pretrained_combo.setToolTip("Start from random weights, torchvision's ImageNet weights, or a file")
        self.pretrained_combo.currentIndexChanged.connect(self._on_pretrained_changed)
        form.addRow("P&retrained", self.pretrained_combo)

        self.file_row = QWidget()
        fr = QHBoxLayout(self.file_row)
        fr.setContentsMargins(0, 0, 0, 0)
        self.weights_edit = QLineEdit()
        self.weights_edit.setPlaceholderText("state-dict or checkpoint file (.pt / .pth)")
        self.weights_edit.setToolTip("A weights file for the same architecture (the classifier layer is replaced)")
        self.weights_edit.textChanged.connect(self._on_changed)
        self.weights_browse = QPushButton("Browse…")
        self.weights_browse.setToolTip("Choose a weights file")
        self.weights_browse.clicked.connect(self.browse_weights)
        fr.addWidget(self.weights_edit, 1)
        fr.addWidget(self.weights_browse)
        form.addRow("", self.file_row)

        self.mode_combo = shrinkable(QComboBox())
        for key, text in MODES:
            self.mode_combo.addItem(text, key)
        self.mode_combo.setToolTip("Linear probe and fine-tune start from pretrained weights")
        self.mode_combo.currentIndexChanged.connect(self._on_mode_changed)
        form.addRow("&Mode", self.mode_combo)

        self.freeze_check = QCheckBox("Freeze the backbone")
        self.freeze_check.setToolTip(
            "Train only the classifier: keep the pretrained feature extractor fixed; much faster, needs pretrained "
            "weights"
        )
        self.freeze_check.toggled.connect(self._on_changed)
        form.addRow("", self.freeze_check)

        self.summary_label = QLabel("Model size: computing…")
        self.summary_label.setObjectName("modelSummary")
        self.summary_label.setWordWrap(True)
        self.summary_label.setTextFormat(Qt.TextFormat.RichText)
        form.addRow("Summary", self.summary_label)
        self._update_visibility()

    # ---- presets ------------------------------------------------------------------------------------------------
    def _load_presets(self) -> None:
        worker = FunctionWorker(_presets)
        connect_worker(
            worker,
            self,
            result=self._on_presets,
            failed=lambda msg: self.description.setText(f"Model list unavailable: {msg}"),
        )
        start_worker(worker, self)

    def _on_presets(self, presets: list[dict]) -> None:
        self.presets = list(presets)
        self.preset_combo.blockSignals(True)
        self.preset_combo.clear()
        self.preset_combo.addItem("Auto (chosen for the device)", AUTO)
        for p in self.presets:
            self.preset_combo.addItem(p["label"], p["name"])
            self.preset_combo.setItemData(
                self.preset_combo.count() - 1, p.get("description", ""), Qt.ItemDataRole.ToolTipRole
            )
        self.preset_combo.addItem("Custom ResNeXt…", CUSTOM)
        self.preset_combo.blockSignals(False)
        self.description.set_texts([*DESCRIPTIONS.values(), *(p.get("description", "") for p in self.presets)])
        self.set_arch(self._arch_wanted)
        self._on_preset_changed()

    def _preset(self, name: str) -> dict | None:
        return next((p for p in self.presets if p["name"] == name), None)

    def set_arch(self, name: str) -> None:
        """Select `name` (a preset, "auto", or any other name as a custom ResNeXt)."""
        i = self.preset_combo.findData(name)
        if i >= 0:
            self.preset_combo.setCurrentIndex(i)
            return
        import re

        m = re.match(r"^resnext(\d+)_(\d+)x(\d+)d$", str(name))
        spins = ((self.card_spin, 2), (self.width_spin, 3))
        # an impossible saved depth, cardinality or width is not quietly made another (300 groups became 256, a
        # network of 159 M parameters; one past 32 bits ended the start-up with an OverflowError)
        if (
            m
            and int(m.group(1)) in DepthSpin.DEPTHS
            and all(spin.minimum() <= int(m.group(k)) <= spin.maximum() for spin, k in spins)
        ):
            self.depth_spin.setValue(int(m.group(1)))
            self.card_spin.setValue(int(m.group(2)))
            self.width_spin.setValue(int(m.group(3)))
            self.preset_combo.setCurrentIndex(self.preset_combo.findData(CUSTOM))

    def arch(self) -> str:
        key = self.preset_combo.currentData()
        if key == CUSTOM:
            return f"resnext{self.depth_spin.value()}_{self.card_spin.value()}x{self.width_spin.value()}d"
        return str(key or AUTO)

    def pretrained_choice(self) -> str:
        return str(self.pretrained_combo.currentData())

    def model_config(self) -> Any:
        from core.config import ModelConfig

        choice = self.pretrained_choice()
        pretrained = (
            None
            if choice == "none"
            else "imagenet"
            if choice == "imagenet"
            else (typed_path(self.weights_edit.text()) or None)  # (a path pasted in quotes, or as file://…)
        )
        return ModelConfig(
            arch=self.arch(),
            pretrained=pretrained,
            mode=str(self.mode_combo.currentData()),
            freeze_backbone=self.freeze_check.isChecked(),
        )

    def problem(self) -> str | None:
        """Why the current choice cannot start, or None. (Of the choice now, not of the summary: that comes a moment
        after a change, and Start in that moment had refused a custom net + ImageNet as "no internet connection?",
        or refused ImageNet's absence when Pretrained was None again.)"""
        choice = self.pretrained_choice()
        if choice == "file" and not self.weights_edit.text().strip():
            return "Choose a weights file, or set Pretrained to None or ImageNet."
        if choice == "file" and not os.path.isfile(path := typed_path(self.weights_edit.text())):
            # (a file remembered from the last time, deleted since: Start's error box was the first word of it)
            why = "a folder, not a weights file" if os.path.isdir(path) else "no such weights file"
            return f"{path}: {why}. Choose another, or set Pretrained to None or ImageNet."
        if choice == "none" and self.mode_combo.currentData() != "scratch":
            return "Linear probe and fine-tune need pretrained weights."
        if choice == "imagenet":
            from core import models

            try:
                spec = trained_arch(self.arch(), self._context["device_type"], "imagenet")
            except models.ModelError as e:
                return str(e)
            if not spec.has_imagenet_weights:
                return f"{spec.name} has no ImageNet weights: {NO_IMAGENET_ADVICE}"
        if (
            self.summary_error
            and not self._summary_pending
            and self._summary_worker is None
            and not self._timer.isActive()
        ):
            return self.summary_error  # (one of the choice shown: no newer summary is coming)
        return None

    def browse_weights(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Choose a weights file", dialog_dir("weights"), "PyTorch weights (*.pt *.pth *.bin);;All files (*)"
        )
        if path:
            remember_dir("weights", path)
            self.weights_edit.setText(path)

    # ---- reactions ----------------------------------------------------------------------------------------------
    def _on_preset_activated(self, _i: int) -> None:
        p = self._preset(self.arch())
        if p is not None and p.get("default_image_size"):
            self.image_size_suggested.emit(int(p["default_image_size"]))
        elif self.arch() == AUTO:  # back to Auto after trying a 224 px preset: the size Auto trains at
            values = self.auto_values(self.model_config().pretrained)
            if values:
                self.image_size_suggested.emit(int(values["image_size"]))

    def _on_preset_changed(self, *_: Any) -> None:
        key = self.preset_combo.currentData()
        p = self._preset(str(key))
        if key == AUTO:
            self.description.setText(DESCRIPTIONS[AUTO if self.pretrained_choice() == "none" else AUTO_PRETRAINED])
        elif key == CUSTOM:
            self.description.setText(DESCRIPTIONS[CUSTOM])
        elif p is not None:
            self.description.setText(p.get("description", ""))
        self._update_visibility()
        self._on_changed()

    def _on_pretrained_changed(self, *_: Any) -> None:
        if self.pretrained_choice() == "none":
            self.mode_combo.setCurrentIndex(0)
            self.freeze_check.setChecked(False)
        elif self.mode_combo.currentData() == "scratch":
            from core.transfer import default_mode  # torch is loaded by now (background warm-up)

            mode = default_mode(self.pretrained_choice(), self._context["device_type"])
            self.mode_combo.setCurrentIndex(max(0, self.mode_combo.findData(mode)))
        self._on_preset_changed()  # (Auto's description says what the weights make it)

    def _on_mode_changed(self, *_: Any) -> None:
        mode = self.mode_combo.currentData()
        # a linear probe trains the classifier alone; a fine-tune, and "all layers" (left for by the user, who can
        # tick it again), every layer: leaving the probe for "all layers" kept the backbone frozen
        self.freeze_check.setChecked(mode == "linear")
        self._update_visibility()
        self._on_changed()

    def _update_visibility(self) -> None:
        self.custom_row.setVisible(self.preset_combo.currentData() == CUSTOM)
        self.file_row.setVisible(self.pretrained_choice() == "file")
        has_weights = self.pretrained_choice() != "none"
        model = self.mode_combo.model()
        for row in (1, 2):
            item = model.item(row) if hasattr(model, "item") else None
            if item is not None:
                item.setEnabled(has_weights)
        # the modes decide freezing themselves; only "all layers at the full rate" from weights leaves the choice
        self.freeze_check.setEnabled(has_weights and self.mode_combo.currentData() == "scratch")
        if not has_weights:
            self.freeze_check.setChecked(False)
        # "from scratch" with a weights file would start from those weights: say what it does then
        self.mode_combo.setItemText(
            0, MODES[0][1] if not has_weights else "Train all layers from the weights (full lr)"
        )

    def _on_changed(self, *_: Any) -> None:
        # the choice made is the one kept when the preset list arrives (it set the saved one back: a Custom
        # ResNeXt chosen at start-up, and trained, read "Auto" once the list came)
        self._arch_wanted = self.arch()
        pretrained = self.model_config().pretrained
        pending = self.pretrained_choice() == "file" and not pretrained  # (no file chosen yet: still weights)
        if pretrained != self._pretrained_now and not pending:
            before, self._pretrained_now = self._pretrained_now, pretrained
            self.pretrained_changed.emit(before, pretrained)
        self.changed.emit()
        self.schedule_summary()

    # ---- summary ------------------------------------------------------------------------------------------------
    def set_context(
        self,
        *,
        device_type: str | None = None,
        num_classes: int | None = None,
        image_size: int | None = None,
        batch_size: int | None = None,
        amp: bool | None = None,
    ) -> None:
        """What the summary depends on besides the model: device, classes, image size, batch size, AMP."""
        new = {
            "device_type": device_type,
            "num_classes": num_classes,
            "image_size": image_size,
            "batch_size": batch_size,
            "amp": amp,
        }
        changed = False
        for k, v in new.items():
            if v is not None and self._context[k] != v:
                self._context[k] = v
                changed = True
        if changed:
            self.schedule_summary()

    def schedule_summary(self) -> None:
        self._timer.start()

    def _start_summary(self) -> None:
        if self._summary_worker is not None:
            self._summary_pending = True
            return
        c = self._context
        worker = FunctionWorker(
            _summarise,
            self.arch(),
            c["device_type"],
            max(2, int(c["num_classes"])),
            int(c["image_size"]),
            int(c["batch_size"]),
            bool(c["amp"]),
            self.model_config().pretrained or ("file" if self.pretrained_choice() == "file" else None),
        )
        connect_worker(
            worker, self, result=self._on_summary, failed=self._on_summary_failed, finished=self._on_summary_finished
        )
        self._summary_worker = worker
        self.summary_label.setText("Model size: computing…")
        start_worker(worker, self)

    def _on_summary(self, info: dict) -> None:
        self.last_summary = info
        self.summary_error = ""
        text = (
            f"<b>{info['arch']}</b>: {human_count(info['params'])} parameters · "
            f"{human_count(info['macs'])}MACs per image at {info['image_size']} px<br>"
        )
        if self.mode_combo.currentData() == "linear" or self.freeze_check.isChecked():
            # (the estimate is of training every layer: it read 2.3 GB for a probe that took 290 MB)
            text += (
                f"Only the classifier trains: ≈ {human_bytes(4 * info['params'])} of weights, far less than the "
                f"≈ {human_bytes(info['memory'])} of training every layer at batch {info['batch_size']}"
            )
        else:
            text += (
                f"≈ {human_bytes(info['memory'])} to train at batch {info['batch_size']} (weights, optimizer state, "
                f"activations)"
            )
        if self.pretrained_choice() == "imagenet" and not info["has_imagenet_weights"]:  # (problem() refuses it)
            text += f"<br><span style='color:#b3261e'>No ImageNet weights for this architecture: {NO_IMAGENET_ADVICE}</span>"
        self.summary_label.setText(text)
        self.summary_ready.emit(info)

    def _on_summary_failed(self, message: str) -> None:
        self.last_summary = None
        self.summary_error = message
        self.summary_label.setText(f"<span style='color:#b3261e'>{message}</span>")
        self.summary_ready.emit(None)

    def _on_summary_finished(self) -> None:
        self._summary_worker = None
        if self._summary_pending:
            self._summary_pending = False
            self._start_summary()

    def cancel_all(self) -> None:
        self._timer.stop()

    # ---- settings -----------------------------------------------------------------------------------------------
    def _restore(self) -> None:
        s = settings()
        self.set_arch(self._arch_wanted)
        choice = str(s.value("model/pretrained", "none"))
        i = self.pretrained_combo.findData(choice)
        self.pretrained_combo.setCurrentIndex(max(0, i))
        self.weights_edit.setText(str(s.value("model/weights_file", "")))
        mode = self.mode_combo.findData(str(s.value("model/mode", "scratch")))
        self.mode_combo.setCurrentIndex(max(0, mode))
        self.freeze_check.setChecked(str(s.value("model/freeze", "false")).lower() == "true")
        if self.mode_combo.currentData() in ("linear", "finetune"):  # the mode decides (an older version saved
            self.freeze_check.setChecked(self.mode_combo.currentData() == "linear")  # fine-tune + frozen)
        self._update_visibility()

    def save_settings(self) -> None:
        s = settings()
        s.setValue("model/arch", self.arch())
        s.setValue("model/pretrained", self.pretrained_choice())
        s.setValue("model/weights_file", self.weights_edit.text())
        s.setValue("model/mode", str(self.mode_combo.currentData()))
        s.setValue("model/freeze", "true" if self.freeze_check.isChecked() else "false")
