"""Evaluate tab: evaluation.json drawn as cards, heat map (same numbers), per-class table, gallery; Evaluate now."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from gui.evaluate_tab import PAGE_NOT_EVALUATED, PAGE_RESULTS, EvaluateTab
from gui.worker import active_threads

CLASSES = ["cat", "dog", "fox"]


def make_checkpoint(path: Path, data_root: str = "", val_split: float = 0.25) -> Path:
    """A tiny untrained CIFAR-style ResNeXt (32 px, 3 classes) saved in the studio checkpoint format."""
    import torch

    from core import checkpoint, models
    from core.config import DataConfig, RunConfig

    torch.manual_seed(0)
    model = models.build("resnext11_2x4d", len(CLASSES)).eval()
    cfg = RunConfig(data=DataConfig(root=data_root, image_size=32, val_split=val_split, num_workers=0))
    cfg.model.arch = "resnext11_2x4d"
    checkpoint.save(path, checkpoint.payload(model, "resnext11_2x4d", CLASSES, 32, cfg.to_dict()))
    return path


def make_dataset(root: Path, per_class: int = 4) -> Path:
    import numpy as np

    for ci, name in enumerate(CLASSES):
        for i in range(per_class):
            rng = np.random.default_rng(ci * 100 + i)
            arr = rng.integers(0, 255, size=(36, 36, 3), dtype=np.uint8)
            arr[..., ci] = 230
            (root / name).mkdir(parents=True, exist_ok=True)
            Image.fromarray(arr).save(root / name / f"{i}.png")
    return root


def make_run(root: Path, data: Path, evaluation: dict | None) -> Path:
    run = root / "20240101-000000-resnext11_2x4d-pets"
    run.mkdir(parents=True)
    make_checkpoint(run / "best.pt", str(data))
    (run / "config.json").write_text(
        json.dumps(
            {"data": {"root": str(data), "val_split": 0.25, "test_split": 0.0}, "model": {"arch": "resnext11_2x4d"}}
        )
    )
    (run / "status.json").write_text(json.dumps({"status": "completed"}))
    if evaluation is not None:
        (run / "evaluation.json").write_text(json.dumps(evaluation))
    return run


def wait_idle(qtbot, w, timeout: int = 90_000) -> None:
    def idle() -> bool:
        try:
            busy = w.is_busy()
        except RuntimeError:  # the widget is already gone (teardown after a failure): only the threads matter
            busy = False
        return not busy and not active_threads()

    qtbot.waitUntil(idle, timeout=timeout)


@pytest.fixture
def tab(qtbot) -> EvaluateTab:
    w = EvaluateTab()
    qtbot.addWidget(w)
    w.resize(1200, 800)
    yield w
    wait_idle(qtbot, w)


def sample_evaluation(data: Path) -> dict:
    cm = [[3, 1, 0], [2, 5, 1], [0, 0, 4]]
    return {
        "split": "val",
        "loss": 0.8123,
        "accuracy": 12 / 16,
        "top5": None,
        "num_samples": 16,
        "class_names": CLASSES,
        "confusion_matrix": cm,
        "per_class": [
            {"name": "cat", "precision": 0.6, "recall": 0.75, "f1": 0.667, "support": 4},
            {"name": "dog", "precision": 0.833, "recall": 0.625, "f1": 0.714, "support": 8},
            {"name": "fox", "precision": 0.8, "recall": 1.0, "f1": 0.889, "support": 4},
        ],
        "misclassified": [
            {"path": str(data / "cat" / "0.png"), "true": "cat", "predicted": "dog", "confidence": 0.55},
            {"path": str(data / "dog" / "1.png"), "true": "dog", "predicted": "cat", "confidence": 0.91},
            {"path": str(data / "dog" / "2.png"), "true": "dog", "predicted": "fox", "confidence": 0.70},
        ],
        "errors": [],
    }


@pytest.mark.timeout(180)
def test_show_run_draws_evaluation_json(qtbot, tab, tmp_path):
    data = make_dataset(tmp_path / "pets")
    ev = sample_evaluation(data)
    run = make_run(tmp_path / "runs", data, ev)
    tab.show_run(str(run))
    assert tab.stack.currentIndex() == PAGE_RESULTS
    assert tab.cm_canvas.texts() == [[str(v) for v in row] for row in ev["confusion_matrix"]]
    ax = tab.cm_canvas.ax
    assert [t.get_text() for t in ax.get_xticklabels()] == CLASSES
    assert [t.get_text() for t in ax.get_yticklabels()] == CLASSES
    assert tab.acc_card.value.text() == "75.0%"
    assert not tab.top5_card.isVisibleTo(tab)
    assert tab.per_class_table.rowCount() == 3
    assert tab.per_class_table.item(1, 0).text() == "dog"
    assert tab.per_class_table.item(1, 4).text() == "8"

    tab.norm_radio.setChecked(True)
    assert tab.cm_canvas.texts()[1] == ["25%", "62%", "12%"]
    assert tab.cm_canvas.ax.get_title() == "Confusion matrix (each row sums to 100 %)"
    tab.counts_radio.setChecked(True)
    assert tab.cm_canvas.texts()[0] == ["3", "1", "0"]
    assert tab.cm_canvas.figure.axes == [tab.cm_canvas.ax]  # numbers in every cell: no colour bar beside them
    tab.cm_canvas.set_matrix([[2, 1, 0], [0, 0, 0], [0, 1, 3]], CLASSES, normalized=True)
    assert tab.cm_canvas.texts()[1] == ["–", "–", "–"]  # no dog images here: no row of 0 % under "sums to 100 %"
    assert tab.cm_canvas.ax.get_title() == "Confusion matrix (rows with images sum to 100 %)"
    tab.cm_canvas.set_matrix(ev["confusion_matrix"], CLASSES, normalized=False)

    # gallery: most confident mistakes first; clicking one computes its Grad-CAM in a worker
    assert [e["confidence"] for e in tab.gallery_entries()] == [0.91, 0.70, 0.55]
    assert tab.gallery.count() == 3
    assert "dog → cat" in tab.gallery.item(0).text()
    wait_idle(qtbot, tab)
    tab.gallery.setCurrentRow(0)
    wait_idle(qtbot, tab)
    detail = tab.detail_result()
    assert detail is not None and detail["path"] == ev["misclassified"][1]["path"]
    assert detail["cam"] is not None and detail["image"].width() == 36


@pytest.mark.timeout(240)
def test_evaluate_now_runs_in_a_worker_and_saves_the_json(qtbot, tab, tmp_path):
    data = make_dataset(tmp_path / "pets")
    run = make_run(tmp_path / "runs", data, None)
    tab.show_run(str(run))
    assert tab.stack.currentIndex() == PAGE_NOT_EVALUATED
    assert tab.evaluate_now_button.isEnabled()
    tab.evaluate_now_button.click()
    assert tab.is_busy()
    wait_idle(qtbot, tab)
    assert tab.stack.currentIndex() == PAGE_RESULTS, tab.status_label.text()
    saved = json.loads((run / "evaluation.json").read_text())
    assert saved["num_samples"] == 3  # 25 % of 12 images, stratified
    assert tab.cm_canvas.texts() == [[str(v) for v in row] for row in saved["confusion_matrix"]]
    assert "predictions" not in saved

    # show_run again now reads the saved file
    tab.show_run(str(run))
    assert tab.evaluate_button.text() == "Evaluate again"
    assert tab.stack.currentIndex() == PAGE_RESULTS


def test_missing_checkpoint_is_reported(tab, tmp_path):
    tab.set_checkpoint(str(tmp_path / "nope.pt"), str(tmp_path))
    tab.evaluate_now()
    assert not tab.is_busy()
    assert "Checkpoint not found" in tab.status_label.text()


@pytest.mark.timeout(180)
def test_another_folder_does_not_replace_the_runs_own_evaluation(qtbot, tab, tmp_path):
    data = make_dataset(tmp_path / "pets")
    run = make_run(tmp_path / "runs", data, sample_evaluation(data))
    other = make_dataset(tmp_path / "other_pets", per_class=2)
    tab.show_run(str(run))
    tab.data_edit.setText(str(other))
    tab.split_combo.setCurrentText("all")
    tab.evaluate_now()
    wait_idle(qtbot, tab)
    assert tab.stack.currentIndex() == PAGE_RESULTS and tab.evaluation()["num_samples"] == 6
    assert json.loads((run / "evaluation.json").read_text()) == sample_evaluation(data)  # untouched


@pytest.mark.timeout(180)
def test_an_answer_for_a_run_no_longer_shown_is_dropped(qtbot, tab, tmp_path, monkeypatch):
    import gui.evaluate_tab as evaluate_tab

    data = make_dataset(tmp_path / "pets")
    a = make_run(tmp_path / "runs_a", data, None)
    b = make_run(tmp_path / "runs_b", data, sample_evaluation(data))
    real_job = evaluate_tab._evaluate_job
    # A's job finishes with a real answer even though it is cancelled: only the tab may drop it
    monkeypatch.setattr(
        evaluate_tab, "_evaluate_job", lambda *args, progress=None, stop=None: real_job(*args, progress=progress)
    )
    tab.show_run(str(a))
    tab.evaluate_now_button.click()
    assert tab.is_busy()
    tab.show_run(str(b))  # the user moves on before A's evaluation ends
    wait_idle(qtbot, tab)
    assert tab.evaluation()["num_samples"] == 16  # B's own numbers stay on screen, not A's answer
    assert tab.source_label.text().endswith(b.name) and "failed" not in tab.status_label.text()


@pytest.mark.timeout(180)
def test_showing_the_run_being_evaluated_again_keeps_its_evaluation(qtbot, tab, tmp_path):
    data = make_dataset(tmp_path / "pets")
    run = make_run(tmp_path / "runs", data, None)
    tab.show_run(str(run))
    tab.evaluate_now_button.click()
    tab.show_run(str(run))  # e.g. the Train tab's Evaluate button pressed again
    wait_idle(qtbot, tab)
    assert tab.stack.currentIndex() == PAGE_RESULTS and (run / "evaluation.json").is_file()


@pytest.mark.timeout(180)
def test_evaluate_now_after_switching_waits_for_the_stopping_one(qtbot, tab, tmp_path):
    data = make_dataset(tmp_path / "pets")
    a = make_run(tmp_path / "runs_a", data, None)
    b = make_run(tmp_path / "runs_b", data, None)
    tab.show_run(str(a))
    tab.evaluate_now_button.click()
    tab.show_run(str(b))  # A's evaluation is cancelled; it may still be stopping
    tab.evaluate_now_button.click()
    wait_idle(qtbot, tab)
    assert tab.stack.currentIndex() == PAGE_RESULTS and (b / "evaluation.json").is_file()
    assert not (a / "evaluation.json").exists()


@pytest.mark.timeout(180)
def test_cancelling_before_any_image_keeps_what_was_shown(qtbot, tab, tmp_path):
    data = make_dataset(tmp_path / "pets")
    run = make_run(tmp_path / "runs", data, sample_evaluation(data))
    tab.show_run(str(run))
    tab.evaluate_now()
    tab.cancel()  # at once: while the folder is being scanned, or before the first batch
    wait_idle(qtbot, tab)
    assert tab.status_label.text() in (
        "Evaluation cancelled.",
        f"Cancelled: these numbers cover only the first {tab.evaluation()['num_samples']} images.",
    )
    if tab.status_label.text() == "Evaluation cancelled.":
        assert tab.evaluation()["num_samples"] == 16  # what was shown stays
    # no image at all: the answer is not drawn over the previous results
    tab._on_result(
        {"stopped": True, "num_samples": 0, "confusion_matrix": [[0] * 3] * 3, "class_names": CLASSES},
        str(run / "best.pt"),
    )
    assert tab.status_label.text() == "Evaluation cancelled."


def test_splits_the_run_does_not_have_are_not_offered(tab, tmp_path):
    data = make_dataset(tmp_path / "pets")
    run = make_run(tmp_path / "runs", data, None)  # val 25 %, test 0
    tab.show_run(str(run))
    enabled = {
        tab.split_combo.itemText(i): tab.split_combo.model().item(i).isEnabled() for i in range(tab.split_combo.count())
    }
    assert enabled == {"val": True, "test": False, "all": True} and tab.split_combo.currentText() == "val"
    tab.set_checkpoint(str(run / "best.pt"), str(data))  # a plain checkpoint: every split may be tried
    assert all(tab.split_combo.model().item(i).isEnabled() for i in range(tab.split_combo.count()))


@pytest.mark.timeout(180)
def test_a_grad_cam_that_arrives_after_the_gallery_was_refilled_is_dropped(qtbot, tab, tmp_path):
    data = make_dataset(tmp_path / "pets")
    ev = sample_evaluation(data)
    run = make_run(tmp_path / "runs", data, ev)
    tab.show_run(str(run))
    wait_idle(qtbot, tab)
    tab.gallery.setCurrentRow(0)  # its Grad-CAM is computed in a worker …
    tab.show_evaluation(ev, str(run / "best.pt"))  # … while a new evaluation refills the gallery
    wait_idle(qtbot, tab)
    assert tab.gallery.currentRow() == -1 and tab.detail_result() is None  # nothing shown nobody asked for


@pytest.mark.timeout(180)
def test_a_failed_evaluation_says_which_results_are_still_shown(qtbot, tab, tmp_path):
    data = make_dataset(tmp_path / "pets")
    run = make_run(tmp_path / "runs", data, None)
    tab.show_run(str(run))
    tab.evaluate_now_button.click()
    wait_idle(qtbot, tab)
    assert tab.stack.currentIndex() == PAGE_RESULTS
    assert tab.status_label.text() == f"Evaluated best.pt of {run.name} on the val split of {data}."
    other = tmp_path / "birds"
    for name in ("owl", "emu"):
        (other / name).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (20, 20), (i * 90, 40, 200)).save(other / name / f"{i}.png")
    tab.data_edit.setText(str(other))
    tab._on_data_folder_chosen()  # as after typing the folder or picking it with Browse…
    assert (
        tab.split_combo.currentText() == "all" and "Not the folder the model was trained on" in tab.status_label.text()
    )
    tab.split_combo.setCurrentText("val")  # the user's own choice for this folder …
    tab._on_data_folder_chosen()  # … stays when the field loses focus again
    assert tab.split_combo.currentText() == "val"
    tab.split_combo.setCurrentText("all")
    tab.evaluate_now()
    wait_idle(qtbot, tab)
    text = tab.status_label.text()
    assert text.startswith("Evaluation failed:") and "none of its classes" in text, text
    assert f"still those of the earlier evaluation (best.pt of {run.name} on the val split of {data})" in text


@pytest.mark.timeout(180)
def test_all_of_the_runs_own_folder_is_shown_but_never_saved_as_its_evaluation(qtbot, tab, tmp_path):
    data = make_dataset(tmp_path / "pets")
    run = make_run(tmp_path / "runs", data, sample_evaluation(data))
    other = make_dataset(tmp_path / "other_pets", per_class=2)
    tab.show_run(str(run))
    tab.data_edit.setText(str(other))
    tab._on_data_folder_chosen()
    assert tab.split_combo.currentText() == "all"
    tab.data_edit.setText(str(data))  # back on the model's own folder: its held-out split again
    tab._on_data_folder_chosen()
    assert tab.split_combo.currentText() == "val" and "would include the training images" in tab.status_label.text()
    tab.split_combo.setCurrentText("all")  # asked for explicitly: evaluated and shown …
    tab.evaluate_now()
    wait_idle(qtbot, tab)
    assert tab.evaluation()["split"] == "all" and tab.evaluation()["num_samples"] == 12
    assert json.loads((run / "evaluation.json").read_text()) == sample_evaluation(data)  # … but not saved


@pytest.mark.timeout(180)
def test_classes_the_model_does_not_know_are_left_out_and_named(qtbot, tab, tmp_path):
    data = make_dataset(tmp_path / "pets")
    mixed = tmp_path / "mixed"
    for name in ("cat", "owl"):
        (mixed / name).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (20, 20), (i * 90, 40, 200 if name == "owl" else 20)).save(mixed / name / f"{i}.png")
    tab.set_checkpoint(str(make_checkpoint(tmp_path / "best.pt", str(data))), str(mixed))
    tab.split_combo.setCurrentText("all")
    tab.evaluate_now()
    wait_idle(qtbot, tab)
    assert tab.stack.currentIndex() == PAGE_RESULTS and tab.evaluation()["num_samples"] == 2  # the cats
    assert tab.status_label.text() == "Left out, not classes of the model: owl (2 images)."

    (mixed / "cat" / "truncated.jpg").write_bytes(b"\xff\xd8\xff\xe0 not the rest of a JPEG")
    (mixed / "owl" / "1.png").unlink()
    tab.evaluate_now()
    wait_idle(qtbot, tab)
    assert tab.status_label.text() == (  # the scan's unusable file is named too (it was dropped in silence)
        "1 file could not be used and was left out (point here for which and why). "
        "Left out, not classes of the model: owl (1 image)."
    )
    assert "truncated.jpg" in tab.status_label.toolTip()
