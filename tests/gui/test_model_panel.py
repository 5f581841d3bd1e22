"""The Train tab's Model group: modes and freezing agree with each other, and "Auto" with weights is summarised as
the model it becomes."""

from __future__ import annotations

import pytest

from gui.model_panel import MODES, ModelPanel


@pytest.fixture
def panel(qtbot):
    p = ModelPanel()
    qtbot.addWidget(p)
    return p


def _choose(panel: ModelPanel, combo, key: str) -> None:
    combo.setCurrentIndex(combo.findData(key))


def test_each_mode_sets_what_freezing_means_for_it(panel, tmp_path):
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"")
    _choose(panel, panel.pretrained_combo, "file")
    panel.weights_edit.setText(str(weights))
    _choose(panel, panel.mode_combo, "linear")
    assert panel.freeze_check.isChecked() and not panel.freeze_check.isEnabled()  # the classifier alone
    _choose(panel, panel.mode_combo, "finetune")  # it left the box ticked: a "fine-tune" that trained the head only
    assert not panel.freeze_check.isChecked() and not panel.freeze_check.isEnabled()
    assert not panel.model_config().freeze_backbone
    _choose(panel, panel.mode_combo, "scratch")
    assert panel.freeze_check.isEnabled()  # all layers from the weights: freezing is the user's choice here
    _choose(panel, panel.mode_combo, "linear")
    _choose(panel, panel.mode_combo, "scratch")  # straight from the probe: "all layers" kept the backbone frozen
    assert not panel.freeze_check.isChecked() and not panel.model_config().freeze_backbone
    panel.freeze_check.setChecked(True)  # (still the user's to tick)
    assert panel.model_config().freeze_backbone
    assert panel.mode_combo.itemText(0) == "Train all layers from the weights (full lr)"  # not "from scratch"
    _choose(panel, panel.pretrained_combo, "none")
    assert panel.mode_combo.itemText(0) == MODES[0][1] and not panel.freeze_check.isChecked()


@pytest.mark.timeout(120)
def test_auto_with_imagenet_weights_is_summarised_as_the_model_it_becomes(qtbot, panel):
    panel.set_context(device_type="cpu", num_classes=4, image_size=32, batch_size=16)
    _choose(panel, panel.pretrained_combo, "imagenet")
    # Auto + ImageNet trains ResNeXt-50 (core.engine.resolve_defaults); the tiny CPU net has no such weights
    qtbot.waitUntil(lambda: (panel.last_summary or {}).get("arch") == "resnext50_32x4d", timeout=60000)
    qtbot.waitUntil(lambda: panel._summary_worker is None and not panel._timer.isActive(), timeout=60000)
    assert panel.last_summary["arch"] == "resnext50_32x4d" and panel.problem() is None


@pytest.mark.timeout(120)
def test_auto_with_a_runs_checkpoint_is_summarised_as_that_runs_model(qtbot, panel, tmp_path):
    import torch

    ckpt = tmp_path / "best.pt"
    torch.save({"arch": "resnext11_2x4d", "model": {"fc.bias": torch.zeros(4)}, "image_size": 32}, ckpt)
    panel.set_context(device_type="cpu", num_classes=4, image_size=32, batch_size=16)
    _choose(panel, panel.pretrained_combo, "file")
    panel.weights_edit.setText(str(ckpt))
    qtbot.waitUntil(lambda: (panel.last_summary or {}).get("arch") == "resnext11_2x4d", timeout=60000)
    panel.weights_edit.setText(str(tmp_path / "other.pth"))  # not one of ours (not even there): ResNeXt-50
    qtbot.waitUntil(lambda: (panel.last_summary or {}).get("arch") == "resnext50_32x4d", timeout=60000)
    qtbot.waitUntil(lambda: panel._summary_worker is None and not panel._timer.isActive(), timeout=60000)


def test_choosing_auto_again_brings_back_the_devices_image_size(qtbot, panel):
    """After trying a 224 px ImageNet preset, Auto on a CPU kept 224 px: the small net at 49 times its cost."""
    panel.auto_values = lambda pretrained: {"image_size": 224 if pretrained else 32}
    qtbot.waitUntil(lambda: panel.preset_combo.findData("resnext50_32x4d") >= 0, timeout=60000)  # presets loaded
    big = panel.preset_combo.findData("resnext50_32x4d")
    panel.preset_combo.setCurrentIndex(big)
    with qtbot.waitSignal(panel.image_size_suggested) as suggested:
        panel.preset_combo.activated.emit(big)
    assert suggested.args == [224]
    auto = panel.preset_combo.findData("auto")
    panel.preset_combo.setCurrentIndex(auto)
    with qtbot.waitSignal(panel.image_size_suggested) as suggested:
        panel.preset_combo.activated.emit(auto)
    assert suggested.args == [32]


def test_the_custom_depth_offers_only_depths_that_exist(qtbot, panel):
    from PySide6.QtCore import Qt

    spin = panel.depth_spin
    spin.setValue(29)
    spin.stepBy(1)
    assert spin.value() == 38  # 9n+2, not 30
    spin.setValue(47)
    spin.stepBy(1)
    assert spin.value() in (50, 56)  # from between two depths to the next real one
    spin.selectAll()
    qtbot.keyClicks(spin, "14")  # 14 is no depth: refused as typed
    assert spin.value() != 14
    spin.lineEdit().setText("13")
    spin.interpretText()
    assert spin.value() != 13
    panel.set_arch("resnext0_1x1d")  # a saved impossible depth is not turned into resnext11_1x1d
    assert panel.arch() != "resnext11_1x1d"
    panel.set_arch("resnext101_4x16d")
    assert panel.arch() == "resnext101_4x16d" and spin.value() == 101
    qtbot.keyClick(spin, Qt.Key.Key_Down)
    assert spin.value() == 92


def test_settings_saved_by_an_older_version_do_not_bring_back_a_frozen_fine_tune(qtbot, tmp_path):
    from gui.app import settings

    s = settings()
    for key, value in (
        ("model/pretrained", "file"),
        ("model/weights_file", str(tmp_path / "w.pth")),
        ("model/mode", "finetune"),
        ("model/freeze", "true"),
    ):
        s.setValue(key, value)
    p = ModelPanel()
    qtbot.addWidget(p)
    assert p.mode_combo.currentData() == "finetune" and not p.model_config().freeze_backbone


def test_the_rows_below_a_preset_description_stay_put_whichever_preset(qtbot, panel):
    from PySide6.QtWidgets import QApplication

    panel.resize(380, 700)
    panel.show()
    qtbot.waitUntil(lambda: len(panel.presets) > 3, timeout=20_000)
    tops, heights = set(), set()
    for i in range(panel.preset_combo.count()):
        panel.preset_combo.setCurrentIndex(i)
        QApplication.processEvents()
        tops.add(panel.pretrained_combo.y() - panel.description.y())  # (Custom shows its depth/C/d row above)
        heights.add(
            panel.description.fontMetrics()
            .boundingRect(0, 0, panel.description.width(), 10_000, 0x1000, panel.description.text())
            .height()
        )
    assert len(heights) > 1  # the descriptions do take different numbers of lines at this width …
    assert len(tops) == 1, tops  # … yet Pretrained, Mode and the rest keep their place


def test_a_weights_path_pasted_in_quotes_or_as_a_file_address_is_the_file(panel, tmp_path):
    """ "Copy as path" on Windows quotes it, and a file manager's copy is a file:// address: training was then
    refused with "… no such file" of the quoted name."""
    from PySide6.QtCore import QUrl

    weights = tmp_path / "my weights.pth"
    _choose(panel, panel.pretrained_combo, "file")
    for typed in (f'  "{weights}" ', f"'{weights}'", QUrl.fromLocalFile(str(weights)).toString()):
        panel.weights_edit.setText(typed)
        assert panel.model_config().pretrained == str(weights), typed


@pytest.mark.timeout(120)
def test_what_start_refuses_is_of_the_choice_now_not_of_the_summary_still_coming(qtbot, panel):
    """Start before the summary came back: a custom net + ImageNet went to the download, which said "no internet
    connection?"; and with Pretrained None again, the stale "has no ImageNet weights" still refused Start."""
    panel.set_context(device_type="cpu", num_classes=4, image_size=32, batch_size=16)
    qtbot.waitUntil(lambda: panel.preset_combo.findData("resnext50_32x4d") >= 0, timeout=60000)  # presets loaded
    _choose(panel, panel.pretrained_combo, "imagenet")
    panel.set_arch("resnext29_8x16d")  # no ImageNet weights; asked at once, before any summary
    assert panel.problem() == (
        "resnext29_8x16d has no ImageNet weights: choose ResNeXt-50/101, a ResNet, or another weights source."
    )
    qtbot.waitUntil(lambda: (panel.last_summary or {}).get("arch") == "resnext29_8x16d", timeout=60000)
    qtbot.waitUntil(lambda: panel._summary_worker is None and not panel._timer.isActive(), timeout=60000)
    assert "No ImageNet weights for this architecture" in panel.summary_label.text()
    _choose(panel, panel.pretrained_combo, "none")
    assert panel.problem() is None  # (at once: the next summary has not come)
    _choose(panel, panel.pretrained_combo, "imagenet")
    panel.set_arch("resnext50_32x4d")
    assert panel.problem() is None


@pytest.mark.timeout(120)
def test_a_probe_is_not_summarised_as_the_memory_of_training_every_layer(qtbot, panel, tmp_path):
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"")
    panel.set_context(device_type="cpu", num_classes=4, image_size=64, batch_size=16)
    qtbot.waitUntil(lambda: panel.preset_combo.findData("resnext50_32x4d") >= 0, timeout=60000)  # presets loaded
    panel.set_arch("resnext11_2x4d")
    qtbot.waitUntil(lambda: (panel.last_summary or {}).get("arch") == "resnext11_2x4d", timeout=60000)
    qtbot.waitUntil(lambda: panel._summary_worker is None and not panel._timer.isActive(), timeout=60000)
    assert "to train at batch 16 (weights, optimizer state, activations)" in panel.summary_label.text()
    _choose(panel, panel.pretrained_combo, "file")
    panel.weights_edit.setText(str(weights))
    _choose(panel, panel.mode_combo, "linear")
    qtbot.waitUntil(lambda: "Only the classifier trains" in panel.summary_label.text(), timeout=60000)
    assert "of training every layer at batch 16" in panel.summary_label.text()


@pytest.mark.timeout(120)
def test_an_architecture_chosen_before_the_preset_list_arrives_is_kept(qtbot):
    """The list loads in the background at start-up: a Custom ResNeXt chosen (and trained) before it came was set
    back to the saved choice, "Auto", when it did; the form then said Auto beside a run of the custom model."""
    from gui.app import settings
    from gui.model_panel import CUSTOM, _presets

    settings().setValue("model/arch", "auto")
    panel = ModelPanel()
    qtbot.addWidget(panel)
    panel.preset_combo.setCurrentIndex(panel.preset_combo.findData(CUSTOM))  # the user's choice, list or not
    panel.depth_spin.setValue(11)
    panel.card_spin.setValue(2)
    panel.width_spin.setValue(4)
    assert panel.arch() == "resnext11_2x4d"
    panel._on_presets(_presets())  # the list arrives (again, if it came already)
    assert panel.arch() == "resnext11_2x4d" and panel.preset_combo.currentData() == CUSTOM
    panel.preset_combo.setCurrentIndex(panel.preset_combo.findData("resnext50_32x4d"))
    panel._on_presets(_presets())
    assert panel.arch() == "resnext50_32x4d"


def test_a_weights_file_that_is_not_there_is_said_before_start(qtbot, panel, tmp_path):
    """A weights file remembered from the last time and deleted since showed a normal summary and an enabled
    Start, whose error box was the first word of it."""
    _choose(panel, panel.pretrained_combo, "file")
    panel.weights_edit.setText(str(tmp_path / "gone.pth"))
    assert panel.problem().startswith(f"{tmp_path / 'gone.pth'}: no such weights file")
    panel.weights_edit.setText(str(tmp_path))
    assert panel.problem().startswith(f"{tmp_path}: a folder, not a weights file")
    (tmp_path / "w.pth").write_bytes(b"x")
    panel.weights_edit.setText(f'"{tmp_path / "w.pth"}"')  # (pasted in quotes)
    assert panel.problem() is None or "no such" not in panel.problem()
