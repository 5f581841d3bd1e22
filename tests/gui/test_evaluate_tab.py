"""Evaluate tab: evaluation.json drawn as cards, heat map (same numbers), per-class table, gallery; Evaluate now."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette

from gui.evaluate_tab import CM_ZERO_MAX, MOVED_HINT, PAGE_NOT_EVALUATED, PAGE_RESULTS, TILE, EvaluateTab
from gui.worker import active_threads
from tests.helpers import tab_chain

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


def make_dataset(root: Path, per_class: int = 4, seed: int = 0) -> Path:
    """Class folders of random images, the same for the same seed (another seed: other images)."""
    import numpy as np

    for ci, name in enumerate(CLASSES):
        for i in range(per_class):
            rng = np.random.default_rng(seed * 10_000 + ci * 100 + i)
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


def cells(matrix: list[list[int]]) -> list[list[str]]:
    """The counts as the heat map writes them: empty cells say 0 among a few classes, nothing among many."""
    return [[str(v) if v or len(matrix) <= CM_ZERO_MAX else "" for v in row] for row in matrix]


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
    assert tab.cm_canvas.texts() == cells(ev["confusion_matrix"])
    assert not tab.fit_check.isVisibleTo(tab)  # a matrix that fits has nothing to fit
    ax = tab.cm_canvas.ax
    assert [t.get_text() for t in ax.get_xticklabels()] == CLASSES
    assert [t.get_text() for t in ax.get_yticklabels()] == CLASSES
    assert tab.acc_card.value.text() == "75.0%"
    assert not tab.top5_card.isVisibleTo(tab)
    assert tab.per_class_table.rowCount() == 3
    assert tab.per_class_table.item(1, 0).text() == "dog"
    assert tab.per_class_table.item(1, 4).text() == "8"

    tab.norm_radio.setChecked(True)
    assert tab.cm_canvas.texts()[1] == ["25%", "63%", "12%"]  # (62.5 and 12.5: one of them up, to make 100)
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
def test_an_evaluation_that_cannot_be_saved_is_shown_and_said_unsaved(qtbot, tab, tmp_path, monkeypatch):
    """A full disk as evaluation.json was written: the worker failed, and the minutes of evaluation with it."""
    import errno

    from core import runs

    def full(path, doc):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(runs, "write_json_atomic", full)
    data = make_dataset(tmp_path / "pets")
    run = make_run(tmp_path / "runs", data, None)
    tab.show_run(str(run))
    tab.evaluate_now_button.click()
    wait_idle(qtbot, tab)
    assert tab.stack.currentIndex() == PAGE_RESULTS, tab.status_label.text()
    assert tab.evaluation()["num_samples"] == 3 and tab.cm_canvas is not None
    assert f"Not saved: {run / 'evaluation.json'}: No space left on device." in tab.status_label.text()
    assert not (run / "evaluation.json").exists() and not tab.shows_run_evaluation(str(run))


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
    assert tab.cm_canvas.texts() == cells(saved["confusion_matrix"])
    assert "predictions" not in saved

    # show_run again now reads the saved file
    tab.show_run(str(run))
    assert tab.evaluate_button.text() == "Evaluate again"
    assert tab.stack.currentIndex() == PAGE_RESULTS


def test_saved_results_of_a_data_folder_that_is_gone_say_so(qtbot, tab, tmp_path):
    """The run's saved results showed with grey squares for the misclassified images and no word of why;
    Evaluate again said only "Data folder not found"."""
    import shutil

    data = make_dataset(tmp_path / "pets")
    run = make_run(tmp_path / "runs", data, sample_evaluation(data))
    shutil.rmtree(data)
    tab.show_run(str(run))
    assert tab.stack.currentIndex() == PAGE_RESULTS
    text = tab.status_label.text()
    assert text.startswith(f"Its data folder {data} is not there any more") and "Browse…" in text
    tab.evaluate_now()
    # refused above the run's saved results: which results those are is said (they are not of what was asked)
    still = "\nThe results below are still those of the earlier evaluation (best.pt of "
    assert tab.status_label.text().startswith(f"{data}: no such folder. {MOVED_HINT}{still}{run.name}")
    doc = sample_evaluation(data)
    (run / "evaluation.json").write_text(json.dumps({**doc, "epoch": 1}))
    (run / "status.json").write_text(json.dumps({"status": "completed", "best_epoch": 3}))  # trained on since
    tab.show_run(str(run))  # both said: the folder gone was replaced by "best.pt has changed"
    text = tab.status_label.text()
    assert text.startswith(f"Its data folder {data} is not there any more") and "best.pt has changed" in text
    for other, said in (
        ("n" * 300, "cannot be opened (File name too long)."),
        ("config.json", "a file, not a folder."),
    ):
        tab.data_edit.setText(str(run / other))  # (a name too long raised OSError in the slot; a file there moved
        tab.evaluate_now()  # nothing: no "Moved?" hint)
        assert tab.status_label.text().startswith(f"{run / other}: {said}{still}") and not tab.is_evaluating()


@pytest.mark.timeout(60)
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_for_a_run_file_does_not_hang_the_tab(qtbot, tab, tmp_path):
    """Showing a run whose evaluation.json or config.json was a named pipe waited on it for ever: the window hung."""
    data = make_dataset(tmp_path / "pets")
    run = make_run(tmp_path / "runs", data, sample_evaluation(data))
    for name in ("evaluation.json", "config.json"):
        (run / name).unlink()
        os.mkfifo(run / name)
    tab.show_run(str(run))
    assert tab.stack.currentIndex() == PAGE_NOT_EVALUATED and tab.source_label.text() == f"Run: {run.name}"


def test_a_run_folder_deleted_outside_the_app_is_said_gone_not_untrained(qtbot, tab, tmp_path):
    """The Train tab's Evaluate on a run deleted in the file manager said "has no best.pt yet … Train it (or resume
    it)", of a folder that was not there at all."""
    run = tmp_path / "runs" / "20260101-120000-resnext11_2x4d-pets"
    tab.show_run(str(run))
    assert tab.stack.currentIndex() == PAGE_NOT_EVALUATED and not tab.evaluate_now_button.isEnabled()
    text = tab.not_evaluated_label.text()
    assert text.startswith(f"The run folder {run.name} is gone (deleted or moved)") and "Train it" not in text


def test_a_data_folder_changed_since_training_is_flagged_beside_the_numbers(qtbot, tab, tmp_path):
    """Its val split is drawn again from today's images: some may be training images, and nothing said so."""
    import shutil

    data = make_dataset(tmp_path / "pets")
    run = make_run(tmp_path / "runs", data, None)
    doc = json.loads((run / "config.json").read_text())
    doc["dataset"] = {"counts": {name: 4 for name in CLASSES}}  # as the trainer records it
    (run / "config.json").write_text(json.dumps(doc))
    tab.show_run(str(run))
    tab.evaluate_now_button.click()
    wait_idle(qtbot, tab)
    assert tab.stack.currentIndex() == PAGE_RESULTS and "Careful" not in tab.status_label.text()
    shutil.copy(data / CLASSES[0] / "0.png", data / CLASSES[0] / "new.png")
    tab.evaluate_button.click()
    wait_idle(qtbot, tab)
    text = tab.status_label.text()
    assert f"Careful: The data folder changed since this run trained ({CLASSES[0]} 4 → 5)" in text
    assert "may hold images the model trained on" in text and "choose it as the Data folder above" in text
    assert "--data" not in text  # a flag means nothing in the app
    assert "data_changed" in json.loads((run / "evaluation.json").read_text())  # shown again with the numbers
    tab.show_run(str(run))
    assert "Careful" in tab.status_label.text()


def test_missing_checkpoint_is_reported(tab, tmp_path):
    tab.set_checkpoint(str(tmp_path / "nope.pt"), str(tmp_path))
    tab.evaluate_now()
    assert not tab.is_busy()
    assert tab.status_label.text() == f"Checkpoint {tmp_path / 'nope.pt'}: no such file. Choose a best.pt (Browse…)."
    tab.ckpt_edit.setText(str(tmp_path / ("n" * 300)))  # a name too long: said, not an OSError in the slot
    tab.evaluate_now()
    assert not tab.is_busy() and ": no such file." in tab.status_label.text()
    tab.ckpt_edit.setText(str(tmp_path))  # a folder that is no run: it was "not found", though it is there
    tab.evaluate_now()
    assert f"{tmp_path}: a folder with no best.pt in it" in tab.status_label.text()
    tab.ckpt_edit.clear()  # nothing chosen yet: what to do, not a path "(none chosen)" not found
    tab.evaluate_now()
    assert tab.status_label.text().startswith("Choose a checkpoint first")


def test_a_file_that_is_no_checkpoint_is_said_before_a_data_folder_is_asked_for(qtbot, tab, tmp_path):
    """A TorchScript export or a text file as the checkpoint, the data folder empty: it asked for a data folder
    ("… does not say which folder it was trained on"), and only once one was chosen said the file was no checkpoint."""
    junk = tmp_path / "notes.pt"
    junk.write_text("not a model")
    tab.set_checkpoint(str(junk))
    tab.evaluate_now()
    assert not tab.is_busy()
    assert tab.status_label.text().startswith(f"Cannot evaluate: {junk}: not a ResNeXt Studio checkpoint (")


def test_the_path_fields_take_a_run_folder_quotes_a_home_folder_and_a_file_address(qtbot, tab, tmp_path, monkeypatch):
    """A run folder typed as the checkpoint was "Checkpoint not found" (`evaluate --checkpoint RUN_DIR` takes its
    best.pt); a path pasted in quotes, with ~, or as a file manager's file:// address was "no such folder. Moved?",
    though the Dataset tab's folder box took all three."""
    from PySide6.QtCore import QUrl

    data = make_dataset(tmp_path / "my pets")
    run = make_run(tmp_path / "runs", data, None)
    monkeypatch.setenv("HOME", str(tmp_path))
    tab.set_checkpoint(f'"{run}"', f"file://{QUrl.fromLocalFile(str(data)).path()}")
    tab.evaluate_now()
    wait_idle(qtbot, tab)
    assert tab.stack.currentIndex() == PAGE_RESULTS, tab.status_label.text()
    assert tab.ckpt_edit.text() == str(run / "best.pt") and tab.evaluation()["data_root"] == str(data)
    tab.set_checkpoint(f"'{run / 'best.pt'}'", "~/my pets")
    tab._evaluation = None
    tab.evaluate_now()
    wait_idle(qtbot, tab)
    assert tab.evaluation() is not None and tab.evaluation()["data_root"] == str(data), tab.status_label.text()


def test_a_class_without_images_in_the_evaluated_folder_is_said(qtbot, tab, tmp_path):
    """Its row read "—" and F1 0.000, and the Macro F1 counted it, without a word."""
    data = make_dataset(tmp_path / "pets")
    ev = sample_evaluation(data)
    for row in ev["per_class"]:
        if row["name"] == "dog":
            row.update(support=0, recall=None, f1=0.0)
    dog = ev["class_names"].index("dog")
    ev["confusion_matrix"][dog] = [0] * len(ev["class_names"])  # no dog here; some images were called dog
    called = sum(row[dog] for row in ev["confusion_matrix"])
    tab.show_run(str(make_run(tmp_path / "runs", data, ev)))
    # what the matrix shows is said, not "its F1 is 0 if any image was called dog …, and reads — if none was"
    said = "No images here of dog: 1 image was called dog, so its F1 is 0 (counted in the Macro F1)."
    assert called == 1 and said in tab.status_label.text()


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
def test_the_runs_own_images_moved_elsewhere_are_evaluated_on_their_held_out_part(qtbot, tab, tmp_path):
    """Chosen at their new place, the run's own images were all scored ("all", the folder being another), the ones
    it trained on too, without a word. The file list the run recorded tells them."""
    import shutil

    from core.data import scan

    data = make_dataset(tmp_path / "pets")
    run = make_run(tmp_path / "runs", data, None)
    cfg = json.loads((run / "config.json").read_text())
    index = scan(str(data), min_classes=1)
    cfg["dataset"] = {"root": str(data), "files": index.files_digest(), "content": index.content_digest}
    (run / "config.json").write_text(json.dumps(cfg))
    moved = shutil.copytree(data, tmp_path / "elsewhere" / "pets")
    tab.show_run(str(run))
    tab.split_combo.setCurrentText("all")  # "all" of its own folder, asked for: all of it (not the held-out part)
    tab.evaluate_now()
    wait_idle(qtbot, tab)
    assert tab.evaluation()["split"] == "all" and tab.evaluation()["num_samples"] == 12
    assert "holds the images" not in tab.status_label.text()
    tab.split_combo.setCurrentText("val")
    tab.data_edit.setText(str(moved))
    tab._on_data_folder_chosen()
    assert tab.split() == "all"  # (another folder, as far as its path tells)
    assert "unless it holds the images the run trained on" in tab.status_label.text()  # (it did not say so)
    tab.evaluate_now()
    wait_idle(qtbot, tab)
    ev = tab.evaluation()
    assert ev["split"] == "val" and ev["num_samples"] == 3 and tab.split() == "val"  # 12 images, 25 % held out
    assert f"Note: {moved} holds the images this run trained on (moved or copied)" in tab.status_label.text()
    assert not (run / "evaluation.json").exists()  # (another folder's numbers are not the run's evaluation)
    Image.new("RGB", (36, 36), "white").save(moved / "cat" / "0.png")  # the same names, another image: another set
    tab.split_combo.setCurrentText("all")
    tab.evaluate_now()
    wait_idle(qtbot, tab)
    assert tab.evaluation()["split"] == "all" and "holds the images" not in tab.status_label.text()
    # but most of its images are the run's training images, scored as new: said (the accuracy read high, unsaid)
    from core.data import split

    trained = [index.samples[i].path for i in split(index, 0.25, 0.0, 0).train]
    copies = sum(Path(p).relative_to(data).as_posix() != "cat/0.png" for p in trained)
    assert copies >= 8 and f"Careful: {copies} of these 12 images are copies of images this model trained on" in (
        tab.status_label.text()
    )


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
    earlier = "\nThe results below are still those of the earlier evaluation (best.pt of "
    said = tab.status_label.text()
    assert said.startswith("Evaluation cancelled"), said  # (in the scan: the earlier results go on being shown)
    assert tab.evaluation()["num_samples"] == 16  # what was shown stays (before any image, or after some)
    # no image at all: the answer is not drawn over the previous results
    tab._on_result(
        {"stopped": True, "num_samples": 0, "confusion_matrix": [[0] * 3] * 3, "class_names": CLASSES},
        str(run / "best.pt"),
    )
    assert tab.status_label.text().startswith("Evaluation cancelled." + earlier)


def offered(tab) -> dict[str, bool]:
    """The split chooser's items as shown: text -> whether it can be picked."""
    combo = tab.split_combo
    return {combo.itemText(i): combo.model().item(i).isEnabled() for i in range(combo.count())}


def test_splits_the_run_does_not_have_are_not_offered(tab, tmp_path):
    data = make_dataset(tmp_path / "pets")
    run = make_run(tmp_path / "runs", data, None)  # val 25 %, test 0
    tab.show_run(str(run))
    assert offered(tab) == {"val": True, "test (empty)": False, "all": True} and tab.split() == "val"
    tab.set_checkpoint(str(run / "best.pt"), str(data))  # a plain checkpoint: every split may be tried
    assert offered(tab) == {"val": True, "test": True, "all": True}


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


def _evaluated_run(qtbot, tab, tmp_path) -> tuple[Path, Path]:
    """A run of an untrained model on a small "pets" set, shown and evaluated (it confuses some images)."""
    data = make_dataset(tmp_path / "pets")
    run = make_run(tmp_path / "runs", data, None)
    tab.show_run(str(run))
    tab.evaluate_now_button.click()
    wait_idle(qtbot, tab)
    return data, run


def test_evaluate_again_shows_no_image_large_until_one_is_clicked(qtbot, tab, tmp_path):
    """Evaluate again after an image was shown large: the refilled gallery has no image chosen, and the pane
    shows none (it showed the new second tile's Grad-CAM with no caption, which nobody had clicked)."""
    _evaluated_run(qtbot, tab, tmp_path)
    assert tab.gallery.count() >= 2, tab.gallery_entries()
    tab.gallery.setCurrentRow(0)
    wait_idle(qtbot, tab)
    assert tab.detail_result() is not None and "predicted as" in tab.detail_label.text()
    tab.evaluate_button.click()
    # while it runs, the numbers before are faded: at full strength they read as the answer to the new run
    assert tab.stack.currentIndex() == 2 and tab.stack.currentWidget().graphicsEffect().opacity() < 0.5
    assert not tab.progress.isHidden()
    wait_idle(qtbot, tab)
    assert tab.gallery.currentRow() == -1 and tab.detail_result() is None and tab.detail_label.text() == ""
    assert tab.stack.currentWidget().graphicsEffect() is None and tab.progress.isHidden()


def test_filtering_the_image_shown_away_leaves_a_hint_and_drops_its_grad_cam(qtbot, tab, tmp_path):
    """Filtered to a cell without images, the empty pane read "Computing Grad-CAM…" for good (the hint from before
    the image's Grad-CAM came)."""
    _evaluated_run(qtbot, tab, tmp_path)
    entries = tab.gallery_entries()
    names = tab.cm_canvas.names()
    confused = {(e["true"], e["predicted"]) for e in entries}
    empty = next((t, p) for t in names for p in names if t != p and (t, p) not in confused)
    first = (entries[0]["true"], entries[0]["predicted"])
    other = next((pair for pair in sorted(confused) if pair != first), empty)  # a cell without the first image
    tab.gallery.setCurrentRow(0)
    wait_idle(qtbot, tab)
    assert tab.detail_result() is not None
    tab.filter_gallery(empty)
    assert tab.gallery.currentRow() == -1 and tab.detail_result() is None
    assert tab.detail_view._hint == "No images in this cell" and tab.detail_label.text() == ""
    tab.filter_gallery(None)
    tab.gallery.setCurrentRow(0)  # its Grad-CAM is computed in a worker while its cell is filtered away
    tab.filter_gallery(other)
    wait_idle(qtbot, tab)
    assert tab.detail_result() is None and "Computing" not in tab.detail_view._hint


def test_tab_reaches_the_matrix_right_after_its_own_controls(qtbot, tab, tmp_path):
    """Made after the tabs beside it, the matrix came after the gallery and the Grad-CAM box in the Tab order."""
    _evaluated_run(qtbot, tab, tmp_path)
    chain = tab_chain(tab.norm_radio)
    assert tab.cm_canvas in chain
    at = chain.index(tab.cm_canvas)
    later = {tab.side_tabs.tabBar(), tab.per_class_table, tab.gallery, tab.cam_check}
    assert not later & set(chain[:at]) and later <= set(chain[at:])
    assert chain[at - 1] is tab.export_button  # the row above it first, as on screen (Export… came after the matrix)


def test_clicking_a_confusion_matrix_cell_lists_its_images_under_misclassified(qtbot, tab, tmp_path):
    """A cell said how many images were confused, but not which: the gallery mixed every pair."""
    from types import SimpleNamespace

    _evaluated_run(qtbot, tab, tmp_path)
    entries = tab.gallery_entries()
    assert entries, "the untrained model confuses some images"
    names = tab.cm_canvas.names()
    pair = (entries[-1]["true"], entries[-1]["predicted"])
    row, col = names.index(pair[0]), names.index(pair[1])

    def click(r: int, c: int) -> None:  # where the cell is drawn, as matplotlib reports a press there
        tab.cm_canvas.canvas.draw()
        x, y = tab.cm_canvas.ax.transData.transform((c, r))
        tab.cm_canvas._on_press(SimpleNamespace(x=x, y=y, button=1))

    tab.side_tabs.setCurrentIndex(0)
    click(row, col)
    shown = tab.gallery_entries()
    assert shown and all((e["true"], e["predicted"]) == pair for e in shown)
    assert shown == [e for e in entries if (e["true"], e["predicted"]) == pair] and tab.gallery.count() == len(shown)
    assert tab.side_tabs.currentIndex() == 1 and not tab.filter_row.isHidden()
    assert tab.filter_label.text().endswith(f"{len(shown)} image" + ("s" if len(shown) != 1 else ""))
    assert "Click (or Enter): list these images" in tab.cm_canvas.cell_tooltip(row, col)
    assert tab.cm_canvas.selected == (row, col) and tab.cm_canvas._outline is not None  # outlined in the matrix
    click(row, row)  # the diagonal (right answers): the list stays as it is, and the click is answered
    assert tab.gallery_entries() == shown
    right = tab.cm_canvas.value(row, row)
    assert tab.diagonal_note.startswith(f"{pair[0]}: {right} image") and "wrong answers only" in tab.diagonal_note
    click(row, col)  # the same cell again: every image
    assert tab.gallery_entries() == entries and tab.gallery.count() == len(entries) and tab.filter_row.isHidden()
    assert tab.cm_canvas.selected is None and tab.cm_canvas._outline is None


@pytest.mark.timeout(180)
def test_a_cell_lists_its_images_beyond_the_most_confident_the_gallery_holds(qtbot, tab, tmp_path, monkeypatch):
    """The gallery holds the GALLERY_LIMIT most confident mistakes; a cell was filtered out of those alone, so with
    many classes most cells (a tooltip of "9 of its 12 images") listed "0 images"."""
    from gui import evaluate_tab

    monkeypatch.setattr(evaluate_tab, "GALLERY_LIMIT", 2)
    data = make_dataset(tmp_path / "pets")
    tab.show_run(str(make_run(tmp_path / "runs", data, sample_evaluation(data))))
    wait_idle(qtbot, tab)
    top = tab.gallery_entries()
    assert [e["confidence"] for e in top] == [0.91, 0.70]  # cat → dog (0.55) is not among them
    assert tab.side_tabs.tabText(1) == "Misclassified (3, 1 more not shown)"
    tab.gallery.setCurrentRow(0)  # dog → cat, shown large
    wait_idle(qtbot, tab)
    cam = tab.detail_result()
    assert cam is not None and cam["path"] == top[0]["path"]

    def thumb(row: int) -> str:  # a pixel of the tile's icon: lightGray (#c0c0c0) until its thumbnail is made
        return tab.gallery.item(row).icon().pixmap(8, 8).toImage().pixelColor(4, 4).name()

    made = thumb(0)
    assert made != "#c0c0c0"

    tab.filter_gallery(("dog", "cat"))  # the image shown is in the cell: it stays chosen, its Grad-CAM with it
    assert tab.gallery_entries() == [top[0]] and tab.gallery.currentRow() == 0
    assert tab.detail_result() is cam and tab._cam_worker is None
    assert thumb(0) == made  # its thumbnail, not made again
    tab.filter_gallery(("cat", "dog"))
    assert [(e["true"], e["predicted"], e["confidence"]) for e in tab.gallery_entries()] == [("cat", "dog", 0.55)]
    assert tab.filter_label.text().endswith(": 1 image") and tab.gallery.count() == 1
    assert tab.gallery.currentRow() == -1 and tab.detail_result() is None
    assert tab.detail_view._hint == "Click an image to see it large with its Grad-CAM"
    wait_idle(qtbot, tab)  # its thumbnail is made
    assert thumb(0) != "#c0c0c0"
    tab.filter_gallery(("fox", "cat"))
    assert tab.gallery.count() == 0 and tab.detail_view._hint == "No images in this cell"
    tab.filter_gallery(None)  # Show all: the most confident again
    assert tab.gallery_entries() == top and tab.filter_row.isHidden() and tab.cm_canvas.selected is None
    assert tab.detail_view._hint == "Click a misclassified image to see it large with its Grad-CAM"


def test_the_outline_and_the_keyboard_box_are_drawn_over_the_matrix_not_with_it(qtbot, qtlog, tab, tmp_path):
    """Each arrow key and each cell clicked redrew the whole matrix (0.3-0.7 s a key for 300 classes): the boxes
    are now blitted over a copy of it, and still seen, and gone when taken away."""
    _evaluated_run(qtbot, tab, tmp_path)
    tab.show()
    cm = tab.cm_canvas
    qtbot.wait(50)  # (the draw the showing asked for)
    cm.canvas.draw()
    draws = []
    cm.canvas.mpl_connect("draw_event", lambda e: draws.append(e))

    def edge_colour(row: int, col: int) -> str:  # the middle of the cell's left edge, as the canvas shows it
        x, y = cm.ax.transData.transform((col - 0.5, row))  # (figure pixels, from the bottom)
        img = cm.canvas.grab().toImage()
        return img.pixelColor(round(x) + 1, round(img.height() - y)).name()  # (1 px in: the 3 pt line covers it)

    plain = edge_colour(1, 1)
    cm.select((1, 1))
    assert edge_colour(1, 1) == "#f28e2b" != plain  # the outline, orange
    cm.setFocus()
    qtbot.waitUntil(cm.hasFocus, timeout=5000)
    for key in (Qt.Key.Key_Down, Qt.Key.Key_Right, Qt.Key.Key_Up):
        qtbot.keyClick(cm, key)
    assert cm.cursor == (1, 2) and cm._cursor_box is not None  # (from the cell outlined)
    cm.select(None)
    assert edge_colour(1, 1) == plain  # gone again
    qtbot.wait(50)  # (a draw_idle would have run by now)
    assert draws == []  # not one draw of the whole matrix for any of it
    cm.set_normalized(True)  # the matrix itself changes: drawn again (in the paint of a grab), the box with it
    img = cm.canvas.grab().toImage()
    assert len(draws) >= 1 and cm._cursor_box is not None and cm._cursor_box.get_xy() == (1.5, 0.5)
    x, y = cm.ax.transData.transform((2, 0.5))  # the middle of the box's lower edge (dashed: a few px around it)
    seen = {
        img.pixelColor(round(x) + dx, round(img.height() - y) + dy).name() for dx in range(-6, 7) for dy in (-1, 0, 1)
    }
    assert "#2f6fdf" in seen, seen
    # (drawn into the paint that drew, not repainted from inside it: Qt said "Recursive repaint detected")
    assert not [r for r in qtlog.records if "epaint" in r.message or "paintEngine" in r.message]
    cm.clearFocus()


def test_the_confusion_matrix_is_used_from_the_keyboard(qtbot, tab, tmp_path):
    """Tab reached the matrix's scroll area, with no mark, and no key picked a cell: the filter by cell and every
    cell's numbers were for the mouse only."""
    from types import SimpleNamespace

    from PySide6.QtWidgets import QToolTip

    _evaluated_run(qtbot, tab, tmp_path)
    tab.show()
    cm = tab.cm_canvas
    entries = tab.gallery_entries()
    names = cm.names()
    pair = (entries[-1]["true"], entries[-1]["predicted"])
    row, col = names.index(pair[0]), names.index(pair[1])
    assert cm.focusPolicy() == Qt.FocusPolicy.StrongFocus and cm.scroll.focusPolicy() == Qt.FocusPolicy.NoFocus
    cm.setFocus()
    qtbot.waitUntil(cm.hasFocus, timeout=5000)
    assert cm.cursor == (0, 0) and cm._cursor_box is not None  # the keyboard's cell, outlined
    cm.canvas.draw()
    for _ in range(row):
        qtbot.keyClick(cm, Qt.Key.Key_Down)
    for _ in range(col):
        qtbot.keyClick(cm, Qt.Key.Key_Right)
    assert cm.cursor == (row, col)
    assert QToolTip.isVisible() and QToolTip.text() == cm.cell_tooltip(row, col)
    assert cm.accessibleDescription() == cm.cell_tooltip(row, col)  # what a screen reader says of the cell
    qtbot.keyClick(cm, Qt.Key.Key_Left, Qt.KeyboardModifier.NoModifier)
    qtbot.keyClick(cm, Qt.Key.Key_Right)
    qtbot.keyClick(cm, Qt.Key.Key_Return)
    shown = tab.gallery_entries()
    assert shown and all((e["true"], e["predicted"]) == pair for e in shown) and cm.selected == (row, col)
    for _ in range(len(names) + 2):  # the edge holds
        qtbot.keyClick(cm, Qt.Key.Key_Up)
    assert cm.cursor == (0, col)
    cm.canvas.draw()
    x, y = cm.ax.transData.transform((1, 1))
    cm._on_press(SimpleNamespace(x=x, y=y, button=1))  # a click: the dashed box follows it
    assert cm.cursor == (1, 1) and cm._cursor_box.get_xy() == (0.5, 0.5) and not cm.by_keyboard
    cm.set_matrix([[1, 0], [0, 1]], names[:2])  # fewer classes: the keyboard's cell stays on the matrix
    assert max(cm.cursor) < 2
    cm.clearFocus()
    qtbot.waitUntil(lambda: not cm.hasFocus(), timeout=5000)
    assert cm._cursor_box is None  # no dashed box without the focus
    QToolTip.hideText()


@pytest.mark.timeout(180)
def test_a_failed_evaluation_says_which_results_are_still_shown(qtbot, tab, tmp_path):
    data, run = _evaluated_run(qtbot, tab, tmp_path)
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


@pytest.mark.timeout(240)
def test_all_of_the_runs_own_folder_says_it_includes_the_training_images(qtbot, tab, tmp_path):
    """ "Evaluated best.pt of … on every image of pets." read like an honest figure, though the run had trained on 9
    of those 12 images."""
    data = make_dataset(tmp_path / "pets")
    run = make_run(tmp_path / "runs", data, None)
    doc = json.loads((run / "config.json").read_text())
    doc["dataset"] = {"train_size": 9, "val_size": 3, "test_size": 0}  # as the trainer records it
    (run / "config.json").write_text(json.dumps(doc))
    tab.show_run(str(run))
    tab.split_combo.setCurrentText("all")
    tab.evaluate_now()
    wait_idle(qtbot, tab)
    assert tab.evaluation()["num_samples"] == 12
    assert tab.status_label.text() == (
        f"Evaluated best.pt of {run.name} on every image of {data} (includes the 9 training images)."
    )
    other = make_dataset(tmp_path / "other_pets", per_class=2, seed=1)  # another folder: none of its images trained it
    tab.data_edit.setText(str(other))
    tab._on_data_folder_chosen()
    tab.evaluate_now()
    wait_idle(qtbot, tab)
    assert tab.status_label.text() == f"Evaluated best.pt of {run.name} on every image of {other}."


@pytest.mark.timeout(180)
def test_classes_the_model_does_not_know_are_left_out_and_named(qtbot, tab, tmp_path):
    """The red "Left out, …" line took the place of "Evaluated best.pt of … on …": which model and folder the
    numbers were of was no longer said. Both are said now."""
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
    cm, names = tab.evaluation()["confusion_matrix"], tab.evaluation()["class_names"]
    notes = []
    for name in ("dog", "fox"):  # (the random model's answers: each said as the matrix has it)
        k = sum(row[names.index(name)] for row in cm)
        notes.append(
            f"{k} image{'s' if k != 1 else ''} {'was' if k == 1 else 'were'} called {name}, so its F1 is 0 (counted in "
            "the Macro F1)"
            if k
            else f"none was called {name}, so its F1 reads — (left out of the Macro F1)"
        )
    evaluated = f"Evaluated best.pt of {tmp_path.name} on every image of {mixed}. No images here of dog, fox: " + (
        "; ".join(notes) + "."
    )
    assert tab.status_label.text() == f"{evaluated} Left out, not classes of the model: owl (2 images)."
    # numbers that came with a caution: amber, not the red of a failed evaluation
    assert tab.status_label.palette().color(QPalette.ColorRole.WindowText).name() == "#9a6700"

    (mixed / "cat" / "truncated.jpg").write_bytes(b"\xff\xd8\xff\xe0 not the rest of a JPEG")
    (mixed / "owl" / "1.png").unlink()
    tab.evaluate_now()
    wait_idle(qtbot, tab)
    assert tab.status_label.text() == (  # the scan's unusable file is named too (it was dropped in silence)
        f"{evaluated} 1 file could not be used and was left out (hover over this line for which and why). "
        "Left out, not classes of the model: owl (1 image)."
    )
    assert "truncated.jpg" in tab.status_label.toolTip()


LONG = [f"{i:02d}_a_rather_long_class_name_for_category_number_{i}_with_extra_words" for i in range(28)] + [
    "x",
    "Ünïcödé café 日本語 class",
]


def many_classes_matrix() -> list[list[int]]:
    """30 classes: two images each, mostly right, a few confused; one class confused all the time."""
    n = len(LONG)
    cm = [[0] * n for _ in range(n)]
    for i in range(n):
        cm[i][i] = 2
    cm[3] = [0] * n
    cm[3][17] = 2  # every image of class 3 taken for class 17: "100" in normalised mode
    cm[15][15], cm[15][16] = 1, 1
    return cm


def draw_at(cm, width: int, height: int) -> None:
    """Draw the heat map as a canvas of width x height px would (a hidden widget gets no resize events)."""
    cm.figure.set_size_inches(width / cm.figure.dpi, height / cm.figure.dpi)
    cm.canvas.draw()


def test_three_long_class_names_under_the_matrix_do_not_run_together(qtbot):
    """Up to three classes had upright labels: three long names ran into one unreadable line. Short ones stay
    upright."""
    from gui.evaluate_tab import ConfusionMatrixCanvas

    cm = ConfusionMatrixCanvas()
    qtbot.addWidget(cm)
    cm.resize(640, 520)
    names = [f"a_very_long_class_name_to_test_the_layout_{c * 18}" for c in "xyz"]
    for classes, slanted in ((names, True), (["cat", "dog", "fox"], False)):
        cm.set_matrix([[2, 0, 0], [0, 2, 0], [0, 0, 2]], classes)
        draw_at(cm, 640, 520)
        cm.canvas.draw()  # (a draw measures the names; the next one shows them slanted if they need it)
        renderer = cm.canvas.get_renderer()
        labels = cm.ax.get_xticklabels()
        assert (labels[0].get_rotation() != 0) == slanted
        boxes = [t.get_window_extent(renderer) for t in labels]
        if not slanted:
            assert all(a.x1 <= b.x0 for a, b in zip(boxes, boxes[1:], strict=False))  # side by side, apart
        else:  # each slanted line of text clears the next one's start
            assert all(a.x1 <= b.x1 and a.y0 < b.y0 + b.height for a, b in zip(boxes, boxes[1:], strict=False))


def test_a_confusion_matrix_of_many_classes_stays_readable(qtbot):
    from gui.evaluate_tab import CM_CELL, ConfusionMatrixCanvas

    cm = ConfusionMatrixCanvas()
    qtbot.addWidget(cm)
    cm.resize(640, 520)  # the pane beside the per-class table
    matrix = many_classes_matrix()
    cm.set_matrix(matrix, LONG, normalized=False)
    assert cm.texts() == cells(matrix)  # no zeros: 870 of the 900 cells are empty
    n = len(LONG)
    # cells never shrink below a readable size: the matrix scrolls instead
    assert cm.canvas.minimumWidth() >= n * CM_CELL and cm.canvas.minimumHeight() >= n * CM_CELL

    cm.set_normalized(True)
    assert cm.texts()[3][17] == "100" and cm.texts()[15][15] == "50" and cm.texts()[0][1] == ""
    assert "in %" in cm.ax.get_title(loc="left")  # the unit is said once, not in every cell
    draw_at(cm, cm.canvas.minimumWidth(), cm.canvas.minimumHeight())
    assert cm.numbers_fit
    box = cm.ax.get_window_extent()
    for row in cm.cell_texts:
        for t in row:
            if t.get_text():
                assert t.get_visible() and t.get_window_extent().width < box.width / n  # inside its cell
    # inside their cells, the numbers move no margin: the layout left out (it measured all 900 at each draw)
    assert not any(t.get_in_layout() for row in cm.cell_texts for t in row)

    # tick labels: short, told apart by their numbers; the full names on hover
    labels = cm.tick_labels()
    assert len(set(labels)) == n and all(len(s) <= 16 for s in labels)
    assert labels[28] == "x" and "mber_15" in labels[15] and labels[15].startswith("15_")
    x, y = cm.ax.transData.transform((17, 3))
    tip = cm.tooltip_at(x, y)
    assert (
        LONG[3] in tip
        and LONG[17] in tip
        and "\n2 of its 2 images (100.0%)\nClick (or Enter): list these images" in tip
    )
    renderer = cm.canvas.get_renderer()
    for which, label, i in (
        ("True class", cm.ax.get_yticklabels()[15], 15),
        ("Predicted class", cm.ax.get_xticklabels()[15], 15),
        ("Predicted class", cm.ax.get_xticklabels()[16], 16),  # slanted labels' boxes overlap: the right one
    ):
        b = label.get_window_extent(renderer)
        assert cm.tooltip_at((b.x0 + b.x1) / 2, (b.y0 + b.y1) / 2) == f"{which}: {LONG[i]}"


def test_numbers_that_do_not_fit_their_cells_are_left_out(qtbot):
    from gui.evaluate_tab import ConfusionMatrixCanvas

    cm = ConfusionMatrixCanvas()
    qtbot.addWidget(cm)
    cm.set_matrix(many_classes_matrix(), LONG, normalized=True)
    draw_at(cm, 400, 400)  # smaller than its minimum (as a canvas shown without the scroll area would be)
    assert not cm.numbers_fit
    assert not any(t.get_visible() for row in cm.cell_texts for t in row if t.get_text())  # none, not some
    x, y = cm.ax.transData.transform((17, 3))
    assert "100.0%" in cm.tooltip_at(x, y)  # pointing still tells
    draw_at(cm, cm.canvas.minimumWidth(), cm.canvas.minimumHeight())
    assert cm.numbers_fit and all(t.get_visible() for row in cm.cell_texts for t in row)


def test_the_wheel_scrolls_a_confusion_matrix_too_big_for_its_pane(qtbot):
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    cm = shown_matrix(qtbot, 500, 400)
    bar = cm.scroll.verticalScrollBar()
    assert bar.maximum() > 0 and bar.value() == 0
    pos = QPointF(100, 100)
    wheel = QWheelEvent(
        pos,
        cm.canvas.mapToGlobal(pos),
        QPoint(),
        QPoint(0, -120),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(cm.canvas, wheel)
    assert bar.value() > 0


def test_a_small_matrix_after_a_big_one_fits_its_pane_again(qtbot):
    """Evaluating a 6-class run after a 30-class one, the Evaluate tab hidden meanwhile: the matrix kept the
    30-class size (100 px cells, scroll bars both ways) until Counts/Row-normalised was toggled."""
    from PySide6.QtWidgets import QLabel, QTabWidget

    from gui.evaluate_tab import ConfusionMatrixCanvas

    tabs = QTabWidget()
    qtbot.addWidget(tabs)
    cm = ConfusionMatrixCanvas()
    tabs.addTab(cm, "matrix")
    tabs.addTab(QLabel("elsewhere"), "other")
    tabs.resize(700, 600)
    tabs.show()
    qtbot.waitExposed(tabs)
    drawn = []  # the canvas sizes matplotlib drew at
    cm.canvas.mpl_connect("draw_event", lambda _: drawn.append(cm.canvas.size()))
    cm.set_matrix(many_classes_matrix(), LONG)
    qtbot.waitUntil(lambda: cm.scroll.verticalScrollBar().maximum() > 0 and drawn[-1:] == [cm.canvas.size()])
    tabs.setCurrentIndex(1)
    small = [[5 if i == j else 1 for j in range(6)] for i in range(6)]
    cm.set_matrix(small, [f"class{i}" for i in range(6)])
    tabs.setCurrentIndex(0)
    viewport = cm.scroll.viewport()
    qtbot.waitUntil(lambda: cm.canvas.size() == viewport.size())
    assert cm.scroll.verticalScrollBar().maximum() == 0 and cm.scroll.horizontalScrollBar().maximum() == 0


def shown_matrix(qtbot, width: int, height: int):
    """A ConfusionMatrixCanvas of the 30-class matrix, shown at width x height."""
    from gui.evaluate_tab import ConfusionMatrixCanvas

    cm = ConfusionMatrixCanvas()
    qtbot.addWidget(cm)
    cm.resize(width, height)
    cm.set_matrix(many_classes_matrix(), LONG)
    cm.show()
    qtbot.waitExposed(cm)
    return cm


def test_a_cells_line_above_the_gallery_cuts_long_names_and_writes_them_as_text(qtbot, tab):
    """The line was cut at the pane's edge, its count with it, and a class named "<unknown>" vanished (taken for a
    tag)."""
    from PySide6.QtGui import QTextDocument

    long = "a_rather_long_class_name_for_category_number_15_with_extra_words"
    tab.filter_gallery(("<unknown>", long))
    doc = QTextDocument()
    doc.setHtml(tab.filter_label.text())
    shown = doc.toPlainText()
    assert shown.startswith("<unknown> predicted as a_rather_long") and shown.endswith("extra_words: 0 images")
    assert "…" in shown and len(shown) < 70 and tab.filter_label.toolTip() == f"<unknown> → {long}"


def test_the_colour_scale_of_a_matrix_of_counts_reads_whole_images(qtbot):
    """A matrix of many classes has a colour scale in place of numbers; of counts it read 0.5, 1.5, 2.5."""
    from gui.evaluate_tab import CM_TEXT_MAX, ConfusionMatrixCanvas

    n = CM_TEXT_MAX + 5
    matrix = [[(3 if i == j else (i + j) % 2) for j in range(n)] for i in range(n)]
    cm = ConfusionMatrixCanvas()
    qtbot.addWidget(cm)
    cm.set_matrix(matrix, [f"c{i}" for i in range(n)], normalized=False)
    cm.canvas.draw()
    (scale,) = [ax for ax in cm.figure.axes if ax is not cm.ax]
    ticks = [t for t in scale.get_yticks() if 0 <= t <= 3]
    assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks), ticks
    cm.set_normalized(True)  # (shares: per cent, as before)
    cm.canvas.draw()
    (scale,) = [ax for ax in cm.figure.axes if ax is not cm.ax]
    assert [t.get_text() for t in scale.get_yticklabels() if t.get_text()][-1] == "100%"


def test_fit_to_pane_shows_a_big_matrix_whole(qtbot):
    """30 classes never fitted, even maximised: the diagonal and the class names could not be seen together."""
    cm = shown_matrix(qtbot, 640, 560)
    qtbot.waitUntil(cm.too_big_for_pane)
    cm.set_fit(True)
    qtbot.waitUntil(lambda: not cm.too_big_for_pane())
    assert cm.canvas.size() == cm.scroll.viewport().size()
    cm.canvas.draw()
    box = cm.ax.get_window_extent()
    assert box.width >= 300 and box.height >= 300  # it fills the pane, not a thumbnail
    assert len(cm.ax.get_xticklabels()) >= len(LONG) // 2  # still names the classes
    cm.set_fit(False)
    qtbot.waitUntil(cm.too_big_for_pane)


def test_fit_to_pane_is_offered_while_the_matrix_scrolls(qtbot, tab, tmp_path):
    data = make_dataset(tmp_path / "pets")
    tab.show()
    tab.resize(900, 640)
    qtbot.waitExposed(tab)
    ev = sample_evaluation(data) | {"class_names": LONG, "confusion_matrix": many_classes_matrix(), "per_class": []}
    ev["misclassified"] = []
    tab.show_evaluation(ev, None)
    qtbot.waitUntil(lambda: tab.fit_check.isVisibleTo(tab))
    tab.fit_check.click()
    qtbot.waitUntil(lambda: not tab.cm_canvas.too_big_for_pane())
    assert tab.fit_check.isVisibleTo(tab)  # it stays, to be turned off again
    tab.show_evaluation(sample_evaluation(data), None)  # a small matrix while it is on: still there to turn off
    assert tab.fit_check.isVisibleTo(tab) and tab.fit_check.isChecked()
    tab.fit_check.click()
    qtbot.waitUntil(lambda: not tab.fit_check.isVisibleTo(tab))  # (it stayed, though the matrix fitted)
    wait_idle(qtbot, tab)  # its gallery's thumbnails load in a worker


def test_a_small_matrix_keeps_its_percent_signs_and_full_names(qtbot):
    from gui.evaluate_tab import ConfusionMatrixCanvas

    cm = ConfusionMatrixCanvas()
    qtbot.addWidget(cm)
    cm.set_matrix(
        [[47, 53, 0, 0], [0, 100, 0, 0], [10, 0, 90, 0], [0, 0, 0, 100]], ["circle", "square", "star", "triangle"], True
    )
    assert cm.texts()[0] == ["47%", "53%", "0%", "0%"] and cm.texts()[1][1] == "100%"
    assert cm.tick_labels() == ["circle", "square", "star", "triangle"]
    assert cm.ax.get_title() == "Confusion matrix (each row sums to 100 %)"


def test_the_numbers_of_a_row_normalised_matrix_add_up_to_100_as_its_title_says(qtbot):
    """Each share rounded alone, a row of 1, 0, 10, 19 images read 3 + 0 + 33 + 63 = 99 %."""
    from gui.evaluate_tab import ConfusionMatrixCanvas, row_percents

    assert row_percents([1, 0, 10, 19]) == [4, 0, 33, 63]  # the spare point to the largest remainder (a tie: first)
    assert row_percents([2, 0, 1, 0]) == [67, 0, 33, 0] and row_percents([0, 0]) == [0, 0]
    assert row_percents([1, 399, 0]) == [0, 100, 0]  # (a quarter percent: shown "<1")
    cm = ConfusionMatrixCanvas()
    qtbot.addWidget(cm)
    rows = [[1, 0, 10, 19], [2, 9, 9, 0], [7, 0, 27, 66], [1, 1, 1, 797]]
    cm.set_matrix(rows, ["circle", "square", "star", "triangle"], True)
    for texts in cm.texts():
        assert sum(0 if t == "<1%" else int(t.rstrip("%")) for t in texts) == 100, texts
    assert cm.texts()[3][:3] == ["<1%", "<1%", "<1%"]  # a few images are still there
    assert cm.ax.get_title() == "Confusion matrix (each row sums to 100 %)"


def test_gallery_captions_of_long_class_names_keep_what_tells_them_apart(qtbot, tab, tmp_path):
    data = make_dataset(tmp_path / "pets")
    ev = sample_evaluation(data)
    ev["misclassified"] = [
        {"path": str(data / "cat" / "0.png"), "true": LONG[18], "predicted": LONG[17], "confidence": 0.199},
        {"path": str(data / "dog" / "1.png"), "true": "dog", "predicted": "cat", "confidence": 0.91},
    ]
    tab.show_evaluation(ev)
    long_item, short_item = tab.gallery.item(1), tab.gallery.item(0)
    assert short_item.text() == "dog → cat\n(91%)"  # short names: as before
    lines = long_item.text().split("\n")
    fm = tab.gallery.fontMetrics()
    assert all(fm.horizontalAdvance(line) <= tab.gallery.gridSize().width() - 8 for line in lines)  # nothing cut off
    assert lines[0].startswith("18_") and "ber_18" in lines[0]  # both ends of the name
    assert lines[1].startswith("→ 17_") and "ber_17" in lines[1] and lines[2] == "(20%)"
    assert long_item.toolTip().startswith(f"{LONG[18]} → {LONG[17]} (19.9%)")
    # three lines fit under the tile
    assert tab.gallery.gridSize().height() >= 96 + 3 * fm.lineSpacing()


def test_an_empty_test_split_is_marked_for_the_runs_own_folder_only(qtbot, tab, tmp_path):
    data = make_dataset(tmp_path / "pets")
    other = make_dataset(tmp_path / "other_pets", per_class=2)
    run = make_run(tmp_path / "runs", data, None)  # val 25 %, test 0
    tab.show_run(str(run))
    assert offered(tab) == {"val": True, "test (empty)": False, "all": True}
    tab.data_edit.setText(str(other))
    tab._on_data_folder_chosen()  # another folder: its test split is its own business
    assert offered(tab) == {"val": True, "test": True, "all": True} and tab.split() == "all"
    tab._select_split("test")
    tab.data_edit.setText(str(data))
    tab._on_data_folder_chosen()  # back on the model's own folder: its empty test split is not chosen
    assert offered(tab)["test (empty)"] is False and tab.split() == "val"
    tab._select_split("test")  # set from code: refused, not sent off to fail
    tab.evaluate_now()
    assert not tab.is_busy() and "no test images" in tab.status_label.text()


def test_long_names_in_the_per_class_table_are_cut_in_the_middle(tab, tmp_path):
    from PySide6.QtCore import Qt

    ev = sample_evaluation(tmp_path)
    ev["per_class"][0]["name"] = LONG[15]
    tab.show_evaluation(ev)
    assert tab.per_class_table.textElideMode() == Qt.TextElideMode.ElideMiddle  # "15_a_rath…number_15_with…"
    assert tab.per_class_table.item(0, 0).toolTip() == LONG[15]


def test_the_grad_cam_of_a_wide_photo_greys_what_the_model_never_saw(tmp_path):
    from gui.evaluate_tab import _cam_job
    from gui.predict_tab import PredictorCache

    ckpt = make_checkpoint(tmp_path / "best.pt", str(tmp_path))
    wide = tmp_path / "wide.png"
    Image.new("RGB", (80, 40), (200, 30, 30)).save(wide)
    out = _cam_job(PredictorCache(), str(ckpt), str(wide), CLASSES[1])
    assert out["cam_error"] is None and out["seen"] == (20, 0, 60, 40)  # the centre square of the 80×40 photo
    cam = out["cam"]
    left, mid = cam.pixelColor(5, 20), cam.pixelColor(40, 20)
    assert left.red() == left.green() == left.blue()  # grey: never seen, not "low attention" blue
    assert not (mid.red() == mid.green() == mid.blue())


def test_an_old_run_with_a_relative_data_folder_offers_its_absolute_folder(qtbot, tab, tmp_path, monkeypatch):
    """Runs made before data.root was stored absolute kept "pets"; the tab offered that, relative to nothing."""
    data = make_dataset(tmp_path / "pets")
    run = make_run(tmp_path / "runs", data, None)
    doc = json.loads((run / "config.json").read_text())
    doc["data"]["root"] = "pets"
    doc["dataset"] = {"root": str(data), "val_size": 3, "test_size": 0}
    (run / "config.json").write_text(json.dumps(doc))
    monkeypatch.chdir(tmp_path / "runs")  # the app's working folder is not where the run was trained
    tab.show_run(str(run))
    assert tab.stack.currentIndex() == PAGE_NOT_EVALUATED
    assert tab.data_edit.text() == str(data)
    assert str(data) in tab.not_evaluated_label.text()


def test_the_evaluate_now_prompt_names_the_folder_and_split_the_fields_hold(qtbot, tab, tmp_path):
    """The prompt was written once per run: with another folder typed it still asked about the run's own."""
    data = make_dataset(tmp_path / "pets")
    other = make_dataset(tmp_path / "more pets")
    run = make_run(tmp_path / "runs", data, None)
    tab.show_run(str(run))
    assert tab.stack.currentIndex() == PAGE_NOT_EVALUATED
    assert f"its best.pt on the {tab.split()} split of {data}?" in tab.not_evaluated_label.text()
    tab.data_edit.setText(str(other))
    tab.data_edit.editingFinished.emit()  # (another folder: the split becomes "all")
    assert tab.split() == "all"
    assert tab.not_evaluated_label.text().endswith(f"on every image of {other}?")  # (not "on the all split of")
    tab.ckpt_edit.setText(str(run / "last.pt"))
    assert "Evaluate last.pt on every image of" in tab.not_evaluated_label.text()


def test_a_deleted_run_leaves_no_evaluate_again_button(qtbot, tab, tmp_path):
    data = make_dataset(tmp_path / "pets")
    run = make_run(tmp_path / "runs", data, sample_evaluation(data))
    tab.show_run(str(run))
    assert tab.evaluate_button.text() == "Evaluate again"
    tab.forget_runs([str(tmp_path / "runs" / "another")])  # not the shown run: nothing changes
    assert tab.ckpt_edit.text() and tab.evaluate_button.text() == "Evaluate again"
    tab.forget_runs([str(run)])
    assert tab.evaluate_button.text() == "Evaluate" and not tab.ckpt_edit.text() and not tab.data_edit.text()
    assert "was deleted" in tab.status_label.text()


def test_small_images_fill_their_gallery_tiles_with_sharp_pixels(tmp_path):
    """A 32-px training image was a speck in a 96-px tile; a big photo is still shrunk to fit."""
    import numpy as np

    from gui.image_view import load_thumbnail

    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (32, 20, 3), dtype=np.uint8)).save(tmp_path / "small.png")
    Image.new("RGB", (400, 300), (10, 200, 30)).save(tmp_path / "big.png")
    small = load_thumbnail(str(tmp_path / "small.png"), 96)
    assert (small.width(), small.height()) == (60, 96)  # three times, a whole factor
    src = Image.open(tmp_path / "small.png").convert("RGB")
    assert small.pixelColor(2, 2).getRgb()[:3] == src.getpixel((0, 0))  # copied pixels, not blurred
    big = load_thumbnail(str(tmp_path / "big.png"), 96)
    assert (big.width(), big.height()) == (96, 72)
    assert load_thumbnail(str(tmp_path / "missing.png"), 96) is None
    # between half and the whole tile: enlarged to it, smoothly (a 64-px image left a third of the row empty)
    Image.fromarray(rng.integers(0, 255, (64, 48, 3), dtype=np.uint8)).save(tmp_path / "mid.png")
    mid = load_thumbnail(str(tmp_path / "mid.png"), 96)
    assert (mid.width(), mid.height()) == (72, 96)


def test_thumbnails_are_read_at_the_screens_pixel_density(qtbot, tmp_path):
    """At 200 % scaling a 96-px tile is 192 screen pixels: thumbnails read at 96 were stretched to a blur."""
    from PySide6.QtCore import QSize

    from gui.image_view import load_thumbnail
    from gui.widgets import ImageGrid

    Image.new("RGB", (800, 600), (10, 200, 30)).save(tmp_path / "big.png")
    Image.new("RGB", (32, 32), (200, 20, 30)).save(tmp_path / "small.png")
    sharp = load_thumbnail(str(tmp_path / "big.png"), 96, 2.0)
    assert (sharp.width(), sharp.height(), sharp.devicePixelRatio()) == (192, 144, 2.0)
    assert sharp.deviceIndependentSize().toSize() == QSize(96, 72)  # laid out as before
    small = load_thumbnail(str(tmp_path / "small.png"), 96, 2.0)
    assert (small.width(), small.devicePixelRatio()) == (192, 2.0)  # six times, a whole factor
    read = load_thumbnail(str(tmp_path / "big.png"), 72, 2.0)
    assert (read.width(), read.height(), read.devicePixelRatio()) == (144, 108, 2.0)
    grid = ImageGrid(tile=72)
    qtbot.addWidget(grid)
    item = grid.add_tile("big.png", image=read)
    pm = item.icon().pixmap(QSize(72, 72), 2.0)
    assert (pm.width(), pm.height()) == (144, 144)  # the square tile, at the screen's pixels
    assert pm.toImage().pixelColor(72, 72).getRgb()[:3] == (10, 200, 30)  # (the photo, centred on it)
    plain = ImageGrid(tile=72)
    qtbot.addWidget(plain)
    one = plain.add_tile("big.png", image=load_thumbnail(str(tmp_path / "big.png"), 72)).icon().pixmap(QSize(72, 72))
    assert (one.width(), one.height(), one.devicePixelRatio()) == (72, 72, 1.0)


def test_a_small_image_shown_large_keeps_sharp_pixels(qtbot):
    """The large view of a 32-px image was smooth-scaled to a blur; a photo shown smaller stays smooth."""
    from PySide6.QtGui import QColor, QImage

    from gui.image_view import ImageView

    view = ImageView()
    qtbot.addWidget(view)
    view.resize(400, 300)
    img = QImage(2, 1, QImage.Format.Format_RGB32)
    img.setPixelColor(0, 0, QColor(0, 0, 0))
    img.setPixelColor(1, 0, QColor(255, 255, 255))
    view.set_image(img)
    shot = view.grab().toImage()  # drawn 8x (the most): 16 x 8 px in the middle
    x0, y = (shot.width() - 16) // 2, shot.height() // 2
    assert shot.pixelColor(x0 + 7, y).getRgb()[:3] == (0, 0, 0)  # the last black pixel before the edge
    assert shot.pixelColor(x0 + 8, y).getRgb()[:3] == (255, 255, 255)


def test_an_error_lines_tooltip_keeps_the_tooltip_colours(qtbot, tab):
    """The status line in red: its tooltip (which files, and why) was red on the dark tooltip background."""
    from PySide6.QtCore import QPoint
    from PySide6.QtGui import QPalette
    from PySide6.QtWidgets import QApplication, QToolTip

    from gui.app import load_stylesheet

    app = QApplication.instance()
    app.setStyleSheet(load_stylesheet())
    try:
        tab.show()
        tab._set_status("2 files could not be used", error=True)
        tab.status_label.setToolTip("a.jpg: truncated image")
        QToolTip.showText(tab.status_label.mapToGlobal(QPoint(4, 4)), tab.status_label.toolTip(), tab.status_label)
        tip = next(w for w in app.topLevelWidgets() if w.objectName() == "qtooltip_label")
        tip.ensurePolished()
        assert tab.status_label.palette().color(QPalette.ColorRole.WindowText).name() == "#b42318"
        assert tip.palette().color(QPalette.ColorRole.WindowText).name() == "#ffffff"  # style.qss's QToolTip
    finally:
        QToolTip.hideText()
        app.setStyleSheet("")


def test_row_normalised_is_kept_for_the_next_start(qtbot, tab):
    """It came back as Counts at every start."""
    assert tab.counts_radio.isChecked()
    tab.norm_radio.setChecked(True)
    again = EvaluateTab()
    qtbot.addWidget(again)
    assert again.norm_radio.isChecked() and not again.counts_radio.isChecked()


def _replace_checkpoint(path: Path) -> None:
    """best.pt as a run trained on writes it: a new file, a later time."""
    make_checkpoint(path, str(path.parent))
    later = path.stat().st_mtime + 5
    os.utime(path, (later, later))


def test_results_older_than_their_checkpoint_are_marked_until_evaluated_again(qtbot, tab, tmp_path):
    """After "Train more epochs" the tab went on showing the old best.pt's numbers at full strength, as the new
    model's (the Predict tab meanwhile used the new one)."""
    data, run = _evaluated_run(qtbot, tab, tmp_path)
    assert not tab.check_stale() and "changed" not in tab.status_label.text()
    assert tab.stack.widget(PAGE_RESULTS).graphicsEffect() is None

    _replace_checkpoint(run / "best.pt")
    assert tab.check_stale()
    assert "best.pt has changed since these results were computed" in tab.status_label.text()
    assert "evaluate it again" in tab.status_label.text()
    assert tab.stack.widget(PAGE_RESULTS).graphicsEffect() is not None  # faded, as while evaluating

    tab.evaluate_button.click()  # cancelled: the old results come back marked, below the cancellation
    tab.cancel()
    wait_idle(qtbot, tab)
    assert tab.check_stale() and tab.stack.widget(PAGE_RESULTS).graphicsEffect() is not None
    assert tab.status_label.text().count("has changed since") == 1
    tab.evaluate_button.click()
    wait_idle(qtbot, tab)
    assert not tab.check_stale() and "changed" not in tab.status_label.text()
    assert tab.stack.widget(PAGE_RESULTS).graphicsEffect() is None

    # a run's evaluation.json of another epoch than its best.pt holds now (the run trained on without a held-out
    # split to evaluate again); the file's times are not asked (a copied folder's are the copy's)
    tab.show_run(str(run))
    assert "has changed" not in tab.status_label.text()
    evaluated = json.loads((run / "evaluation.json").read_text())["epoch"]
    (run / "status.json").write_text(json.dumps({"status": "completed", "best_epoch": evaluated + 3}))
    tab.show_run(str(run))
    assert tab.stack.currentIndex() == PAGE_RESULTS and "has changed" in tab.status_label.text()
    assert tab.shows_run_evaluation(str(run))


def test_a_checkpoint_evaluated_on_another_folder_is_not_the_runs_evaluation(qtbot, tab, tmp_path):
    data, run = _evaluated_run(qtbot, tab, tmp_path)
    assert tab.shows_run_evaluation(str(run))  # (the tab wrote it)
    other = make_dataset(tmp_path / "other")
    tab.data_edit.setText(str(other))
    qtbot.keyClick(tab.data_edit, Qt.Key.Key_Return)  # Enter in the field evaluates it (it did nothing)
    assert tab.split() == "all"  # (another folder: all of it, as when the field is left)
    wait_idle(qtbot, tab)
    assert tab.stack.currentIndex() == PAGE_RESULTS and str(other) in tab.status_label.text()
    assert not tab.shows_run_evaluation(str(run))


def test_a_checkpoint_outside_a_run_asks_for_its_data_folder_and_says_why(tab, tmp_path):
    """The field's placeholder promises the model's own folder by default: a file that names none says so."""
    ckpt = make_checkpoint(tmp_path / "loose" / "model.pt")
    tab.set_checkpoint(str(ckpt))
    tab.evaluate_now()
    assert tab.status_label.text().startswith("Choose the data folder to evaluate on: model.pt does not say which")
    assert not tab.is_busy()


@pytest.mark.timeout(180)
def test_the_scan_for_copies_of_the_training_images_is_said_while_it_runs(qtbot, tab, tmp_path, monkeypatch):
    """Evaluating another folder scans the run's own folder too, for copies of its training images: the bar went
    round a second time under "Evaluating…", as long as the evaluation itself for a large set, with no word why."""
    import threading

    import core.runs

    data = make_dataset(tmp_path / "pets")
    run = make_run(tmp_path / "runs", data, None)
    other = make_dataset(tmp_path / "other_pets", per_class=2, seed=5)
    release, seen = threading.Event(), []
    real = core.runs.trained_copies_warning

    def held(*args, progress=None, **kwargs):  # the real scan, held at its end until the status has been read
        def counting(done, total):
            seen.append((done, total))
            if progress is not None:
                progress(done, total)

        said = real(*args, progress=counting, **kwargs)
        release.wait(60)
        return said

    monkeypatch.setattr(core.runs, "trained_copies_warning", held)
    tab.show_run(str(run))
    tab.data_edit.setText(str(other))
    tab._on_data_folder_chosen()
    tab.evaluate_now()
    try:
        qtbot.waitUntil(
            lambda: "Looking for copies of the run's training images" in tab.status_label.text(), timeout=60_000
        )
        assert str(data) in tab.status_label.text() and not tab.progress.isHidden()
        qtbot.waitUntil(lambda: tab.progress.maximum() == 12 and tab.progress.value() == 12)  # its own 12 images
    finally:
        release.set()
    wait_idle(qtbot, tab)
    assert seen and seen[-1] == (12, 12)
    assert "Looking for copies" not in tab.status_label.text()  # (the results' own words once they are in)


def test_the_results_shown_are_exported_as_csv_json_and_an_image(qtbot, tab, tmp_path, monkeypatch):
    """Evaluate had no export: the per-class scores, each image's answer and the matrix stayed in the window (the
    command line's --json alone gave them)."""
    import csv

    from PySide6.QtWidgets import QFileDialog, QMessageBox

    from gui.widgets import FIGURE_FILTERS

    data = make_dataset(tmp_path / "pets")
    ev = sample_evaluation(data)
    run = make_run(tmp_path / "runs", data, ev)
    tab.show_run(str(run))
    assert tab.stack.currentIndex() == PAGE_RESULTS and tab.export_button.isEnabled()
    said = []
    tab.status_message.connect(said.append)
    tab._update_export_actions()  # (as the menu opens) an evaluation.json without every image's answer
    assert not tab.export_actions["predictions"].isEnabled() and tab.export_actions["per_class"].isEnabled()

    ev["predictions"] = [
        {"path": str(data / "cat" / "0.png"), "true": "cat", "predicted": "dog", "confidence": 0.55},
        {"path": str(data / "cat" / "1.png"), "true": "cat", "predicted": "cat", "confidence": 0.9},
    ]
    ev["per_class"][2]["precision"] = None  # (a class never predicted: no precision)
    tab.show_evaluation(ev, str(run / "best.pt"))
    tab._update_export_actions()
    assert all(a.isEnabled() for a in tab.export_actions.values())
    out = tmp_path / "out"

    def read(name: str) -> list[list[str]]:
        with open(out / name, newline="", encoding="utf-8") as f:
            return list(csv.reader(f))

    assert tab.export_results("per_class", str(out / "scores.csv"))  # (into a folder not made yet)
    assert read("scores.csv") == [
        ["class", "precision", "recall", "f1", "support"],
        ["cat", "0.6", "0.75", "0.667", "4"],
        ["dog", "0.833", "0.625", "0.714", "8"],
        ["fox", "", "1.0", "0.889", "4"],
    ]
    assert said[-1] == f"Saved the per-class scores to {out / 'scores.csv'}"
    assert tab.export_results("predictions", str(out / "pred.csv"))
    assert read("pred.csv") == [
        ["path", "true", "predicted", "confidence", "correct"],
        [str(data / "cat" / "0.png"), "cat", "dog", "0.55", "False"],
        [str(data / "cat" / "1.png"), "cat", "cat", "0.9", "True"],
    ]
    assert tab.export_results("matrix_csv", str(out / "cm.csv"))
    assert read("cm.csv") == [["true \\ predicted", *CLASSES]] + [
        [name, *map(str, row)] for name, row in zip(CLASSES, ev["confusion_matrix"], strict=True)
    ]
    assert tab.export_results("json", str(out / "ev.json"))
    assert json.loads((out / "ev.json").read_text(encoding="utf-8")) == ev

    # through the menu and its save dialog: the name the extension the export needs, the image the format chosen
    answers = iter([(str(out / "named"), ""), (str(out / "matrix"), FIGURE_FILTERS[".svg"])])
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: next(answers))
    tab.export_actions["per_class"].trigger()
    tab.export_actions["matrix_image"].trigger()
    assert read("named.csv")[0][0] == "class"
    assert (out / "matrix.svg").read_text(encoding="utf-8").lstrip().startswith("<?xml")
    assert said[-1] == f"Saved the confusion matrix to {out / 'matrix.svg'}"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["scores.csv", "pred.csv", "cm.csv", "ev.json", "named.csv", "matrix.svg"]
    )  # (no temp files left)

    # never over a run's own files, nor an image by a CSV
    warned = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: warned.append(a[2]))
    kept = {p: p.read_bytes() for p in (run / "evaluation.json", data / "cat" / "0.png")}
    assert not tab.export_results("json", str(run / "evaluation.json"))
    assert not tab.export_results("predictions", str(data / "cat" / "0.png"))
    assert not tab.export_results("matrix_image", str(data / "cat" / "0.png"))  # (a photo of the data set: it was
    assert {p: p.read_bytes() for p in kept} == kept and len(warned) == 3  # replaced by the matrix)
    assert tab.export_results("matrix_image", str(out / "again.png"))  # an earlier export of it is replaced
    assert tab.export_results("matrix_image", str(out / "again.png")) and len(warned) == 3

    # a class folder a spreadsheet would run as a formula: written as text
    ev["class_names"] = ['=HYPERLINK("http://x")', "@SUM(1)", "-1"]
    for row, name in zip(ev["per_class"], ev["class_names"], strict=True):
        row["name"] = name
    tab.show_evaluation(ev, str(run / "best.pt"))
    assert tab.export_results("per_class", str(out / "f.csv")) and tab.export_results("matrix_csv", str(out / "fm.csv"))
    assert [r[0] for r in read("f.csv")[1:]] == ['\'=HYPERLINK("http://x")', "'@SUM(1)", "-1"]
    assert read("fm.csv")[0][1:] == ['\'=HYPERLINK("http://x")', "'@SUM(1)", "-1"]


@pytest.mark.timeout(180)
def test_an_evaluation_made_here_exports_every_images_prediction(qtbot, tab, tmp_path):
    """ "Every image's prediction (CSV)" was greyed out for every evaluation made in the app (the answers were
    dropped with the saved file's); evaluation.json still leaves them out (a line per image)."""
    import csv

    _data, run = _evaluated_run(qtbot, tab, tmp_path)
    ev = tab.evaluation()
    tab._update_export_actions()
    assert tab.export_actions["predictions"].isEnabled() and len(ev["predictions"]) == ev["num_samples"]
    assert tab.export_results("predictions", str(tmp_path / "p.csv"))
    with open(tmp_path / "p.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert len(rows) == ev["num_samples"] + 1 and rows[0] == ["path", "true", "predicted", "confidence", "correct"]
    saved = json.loads((run / "evaluation.json").read_text())
    assert "predictions" not in saved and "checkpoint_stamp" not in saved and "checkpoint_stamp" not in ev


@pytest.mark.timeout(180)
def test_an_evaluation_cancelled_over_whole_results_leaves_them(qtbot, tab, tmp_path, monkeypatch):
    """Cancelled after its first batch, the first images' numbers (of a few classes) took the place of a whole
    evaluation, with no word of which model or folder."""
    import core.engine

    _data, _run = _evaluated_run(qtbot, tab, tmp_path)
    whole = tab.evaluation()
    real = core.engine.evaluate

    def cut_short(*args, **kwargs):
        ev = real(*args, **kwargs)
        return {**ev, "stopped": True, "num_samples": 3}  # as a Cancel after the first images leaves it

    monkeypatch.setattr(core.engine, "evaluate", cut_short)
    tab.evaluate_button.click()
    wait_idle(qtbot, tab)
    assert tab.evaluation() is whole and tab.stack.currentIndex() == PAGE_RESULTS
    said = tab.status_label.text()
    assert said.startswith("Evaluation cancelled after 3 images.")
    assert "The results below are still those of the earlier evaluation (best.pt of" in said
    assert tab.stack.widget(PAGE_RESULTS).graphicsEffect() is None


@pytest.mark.timeout(180)
def test_a_checkpoint_replaced_before_it_is_loaded_is_the_one_the_results_are_of(qtbot, tab, tmp_path, monkeypatch):
    """best.pt replaced while the folder was scanned: the new file was evaluated, and its results were faded at
    once as out of date. Replaced after, the Grad-CAM of an image came from the new model under the old answer."""
    import core.data

    data = make_dataset(tmp_path / "pets")
    run = make_run(tmp_path / "runs", data, None)
    tab.show_run(str(run))
    real = core.data.scan

    def scan_then_replace(*args, **kwargs):
        index = real(*args, **kwargs)
        _replace_checkpoint(run / "best.pt")
        return index

    monkeypatch.setattr(core.data, "scan", scan_then_replace)
    tab.evaluate_now_button.click()
    wait_idle(qtbot, tab)
    assert tab.stack.currentIndex() == PAGE_RESULTS and not tab.check_stale()
    monkeypatch.undo()

    _replace_checkpoint(run / "best.pt")
    assert tab.check_stale()
    assert tab.gallery.count() >= 1
    tab.gallery.setCurrentRow(0)
    wait_idle(qtbot, tab)
    cam = tab.detail_result()
    assert cam is not None and cam["cam"] is None and cam["image"] is not None
    assert "best.pt has changed since these results were computed: evaluate it again" in cam["cam_error"]


@pytest.mark.timeout(180)
def test_a_checkpoint_replaced_during_its_evaluation_leaves_the_runs_evaluation_json(qtbot, tab, tmp_path, monkeypatch):
    """Evaluate pressed while the run trained: the trainer's final evaluation.json, of the new best.pt, was
    replaced by this evaluation of the old one."""
    import core.engine

    data = make_dataset(tmp_path / "pets")
    run = make_run(tmp_path / "runs", data, sample_evaluation(data))
    final = (run / "evaluation.json").read_bytes()
    tab.show_run(str(run))
    real = core.engine.evaluate

    def while_training(*args, **kwargs):
        ev = real(*args, **kwargs)
        _replace_checkpoint(run / "best.pt")  # the run's next best epoch, and its own evaluation.json, meanwhile
        return ev

    monkeypatch.setattr(core.engine, "evaluate", while_training)
    tab.evaluate_button.click()
    wait_idle(qtbot, tab)
    assert (run / "evaluation.json").read_bytes() == final
    said = tab.status_label.text()
    assert "Not saved: best.pt was replaced while it was evaluated (its run trained on)" in said
    assert tab.check_stale()


@pytest.mark.timeout(180)
def test_results_of_fields_changed_while_they_were_computed_say_so(qtbot, tab, tmp_path, monkeypatch):
    """The split changed to "all" while the val split was evaluated: the results came under "all" with their card
    saying "val split", unexplained."""
    import threading

    import core.engine

    data = make_dataset(tmp_path / "pets")
    run = make_run(tmp_path / "runs", data, None)
    tab.show_run(str(run))
    gate = threading.Event()
    real = core.engine.evaluate

    def held(*args, **kwargs):
        assert gate.wait(60)
        return real(*args, **kwargs)

    monkeypatch.setattr(core.engine, "evaluate", held)
    try:
        tab.evaluate_now_button.click()
        assert tab.is_busy() and tab.split() == "val"
        tab._select_split("all")
    finally:
        gate.set()
    wait_idle(qtbot, tab)
    assert tab.evaluation()["split"] == "val"
    assert "changed while it ran: press Evaluate for what they say now" in tab.status_label.text()
    tab._select_split("val")  # evaluated as the fields say: nothing to add
    tab.evaluate_button.click()
    wait_idle(qtbot, tab)
    assert "changed while it ran" not in tab.status_label.text()


def test_the_per_class_table_sorts_scores_of_zero_apart_from_none_and_names_in_number_order(tab, tmp_path):
    """A precision of 0.000 sorted among the "—"s (a 0.0 taken for no score), and class_10 came before class_2;
    a loss of 1.7e-05 read 0.0000."""
    data = make_dataset(tmp_path / "pets")
    ev = sample_evaluation(data)
    ev["class_names"] = ["class_10", "class_2", "Class_1"]
    for row, name, precision in zip(ev["per_class"], ev["class_names"], (None, 0.0, 0.5), strict=True):
        row["name"], row["precision"] = name, precision
    ev["loss"] = 1.7e-05
    tab.show_evaluation(ev)
    t = tab.per_class_table

    def column(c: int) -> list[str]:
        return [t.item(r, c).text() for r in range(t.rowCount())]

    t.sortItems(1, Qt.SortOrder.AscendingOrder)
    assert column(1) == ["—", "0.000", "0.500"]
    t.sortItems(1, Qt.SortOrder.DescendingOrder)
    assert column(1) == ["0.500", "0.000", "—"]
    t.sortItems(0, Qt.SortOrder.AscendingOrder)
    assert column(0) == ["Class_1", "class_2", "class_10"]
    assert tab.loss_card.value.text() == "1.7e-05"


@pytest.mark.timeout(180)
def test_a_checkpoint_outside_a_run_is_evaluated_on_every_image_of_the_folder_chosen(qtbot, tab, tmp_path):
    """Not in a run folder, its own folder is not known here: the val split of the folder chosen (a random quarter)
    was scored, where `evaluate --data` scores every image."""
    data = make_dataset(tmp_path / "pets")
    bare = make_checkpoint(tmp_path / "copied" / "model.pt", str(tmp_path / "elsewhere"))
    tab.ckpt_edit.setText(str(bare))
    tab.data_edit.setText(str(data))
    tab._on_data_folder_chosen()
    assert tab.split() == "all" and "is not known here" in tab.status_label.text()
    tab.evaluate_button.click()
    wait_idle(qtbot, tab)
    images = sum(1 for _ in data.rglob("*.png"))
    assert tab.evaluation()["split"] == "all" and tab.evaluation()["num_samples"] == images


def test_the_gallery_keeps_room_for_a_whole_row_of_tiles_and_captions(qtbot):
    """With a 14 pt font at the window's least size the gallery cut its captions ("circle → triangle (41%)")
    after their first line: its cells were 44 px taller than a tile whatever the font, and it could be shorter
    than one cell."""
    from PySide6.QtGui import QFont
    from PySide6.QtWidgets import QApplication

    before = QApplication.font()
    QApplication.setFont(QFont(before.family(), 14))
    try:
        big = EvaluateTab()
        qtbot.addWidget(big)
    finally:
        QApplication.setFont(before)
    lines = 2 * big.gallery.fontMetrics().lineSpacing()
    assert big.gallery.gridSize().height() >= TILE + lines
    assert big.gallery.minimumHeight() >= big.gallery.gridSize().height()
