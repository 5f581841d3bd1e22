"""Predict tab: drops (files, folders, non-images) fill one row per input, agreeing with Predictor and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication, QImage

from gui.predict_tab import ALL_RESULTS, COL_CLASS, COL_FILE, ERRORS_ONLY, PATH_ROLE, PredictTab
from gui.worker import active_threads

REPO = Path(__file__).resolve().parents[2]
CLASSES = ["cat", "dog", "fox"]


def make_checkpoint(path: Path, seed: int = 0, classes: list[str] = CLASSES) -> Path:
    """A tiny untrained CIFAR-style ResNeXt (32 px, 3 classes) saved in the studio checkpoint format."""
    import torch

    from core import checkpoint, models
    from core.config import DataConfig, RunConfig

    torch.manual_seed(seed)
    model = models.build("resnext11_2x4d", len(classes)).eval()
    cfg = RunConfig(data=DataConfig(image_size=32))
    cfg.model.arch = "resnext11_2x4d"
    checkpoint.save(path, checkpoint.payload(model, "resnext11_2x4d", list(classes), 32, cfg.to_dict()))
    return path


def make_image(path: Path, seed: int) -> Path:
    import numpy as np

    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 255, size=(40, 48, 3), dtype=np.uint8)
    arr[:, : 8 * (seed % 5 + 1)] = (seed * 53 % 255, seed * 97 % 255, 40)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


@pytest.fixture
def ckpt(tmp_path: Path) -> Path:
    return make_checkpoint(tmp_path / "model" / "best.pt")


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, list[Path]]:
    loose = [make_image(tmp_path / "in" / "a.png", 1), make_image(tmp_path / "in" / "b.jpg", 2)]
    folder = tmp_path / "in" / "folder"
    in_folder = [make_image(folder / f"img{i}.png", 10 + i) for i in range(3)]
    note = tmp_path / "in" / "notes.txt"
    note.write_text("not an image")
    return {"loose": loose, "folder": [folder], "in_folder": in_folder, "bad": [note]}


@pytest.fixture
def tab(qtbot, tmp_path: Path) -> PredictTab:
    (tmp_path / "runs").mkdir()
    w = PredictTab()
    w.set_runs_dir(tmp_path / "runs")
    qtbot.addWidget(w)
    w.resize(1100, 700)
    yield w
    wait_idle(qtbot, w)


def wait_idle(qtbot, w, timeout: int = 90_000) -> None:
    def idle() -> bool:
        try:
            busy = w.is_busy()
        except RuntimeError:  # the widget is already gone (teardown after a failure): only the threads matter
            busy = False
        return not busy and not active_threads()

    qtbot.waitUntil(idle, timeout=timeout)


def drop(widget, paths: list[Path]) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    drop_mime(widget, mime)


def drop_mime(widget, mime: QMimeData) -> None:
    enter = QDragEnterEvent(
        widget.rect().center(),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    widget.dragEnterEvent(enter)
    assert enter.isAccepted()
    event = QDropEvent(
        QPointF(widget.rect().center()),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    widget.dropEvent(event)


@pytest.mark.timeout(240)
@pytest.mark.filterwarnings("ignore:Function.*QDragEnterEvent:DeprecationWarning")
def test_drop_fills_one_row_per_input_matching_predictor_and_cli(qtbot, tab, ckpt, inputs, tmp_path):
    from core.predict import Predictor

    tab.set_checkpoint(str(ckpt))
    (tmp_path / "empty").mkdir()
    other = inputs["folder"][0] / "readme.md"  # in a dropped folder, not an image: counted, not classified
    other.write_text("about these photos")
    dropped = inputs["loose"] + inputs["folder"] + inputs["bad"] + [tmp_path / "empty"]
    drop(tab, dropped)
    wait_idle(qtbot, tab)

    images = [str(p) for p in inputs["loose"] + inputs["in_folder"]]
    rows = {
        tab.model.index(r, COL_FILE).data(PATH_ROLE): tab.model.index(r, COL_CLASS).data()
        for r in range(tab.row_count())
    }
    assert tab.row_count() == len(images) + 2  # the unreadable file and the empty folder have rows too
    results = {str(p.source): p for p in tab.results()}
    bad = results[str(inputs["bad"][0])]
    assert not bad.ok and bad.error
    assert rows[str(inputs["bad"][0])] == "—"

    expected = {p.source: p.label for p in Predictor.from_checkpoint(ckpt, device="cpu").predict(images)}
    assert {s: results[s].label for s in images} == expected
    assert {s: rows[s] for s in images} == expected
    assert tab.stack.currentIndex() == 2
    assert tab.count_label.text() == f"{len(images) + 1} files, 1 unreadable, 1 folder without images"
    assert tab.status_label.text() == (
        f"{len(images)} images classified; 1 could not be read; 1 folder had no images; "
        "1 other file ignored (not an image): readme.md."
    )
    assert tab.status_label.toolTip().endswith(f"Ignored, not images:\n{other}")  # which one, whole

    # the same answers from the command line (exit 1: one input was unreadable)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "main.py"),
            "predict",
            "--checkpoint",
            str(ckpt),
            "--json",
            "--device",
            "cpu",
            *[str(p) for p in dropped],
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=180,
    )
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    cli = {p["source"]: p["label"] for p in doc["predictions"] if p["ok"]}
    assert cli == expected
    assert doc["ignored_files"] == [str(other)]
    assert f"1 file in the given folders ignored (not an image type):\n  {other}" in proc.stderr


@pytest.mark.timeout(180)
def test_a_dropped_runs_folder_says_its_run_folders_were_left_out(qtbot, tab, ckpt, tmp_path):
    """A runs folder dropped: "Cannot read: no image files in this folder", though it held .png files (the runs'
    curves, left out on purpose)."""
    from core.predict import ONLY_RUN_FOLDERS
    from gui.predict_tab import COL_TOPK

    run = tmp_path / "runs" / "20261129-083604-resnext11_4x8d-sample"
    run.mkdir(parents=True)
    (run / "status.json").write_text(json.dumps({"status": "completed"}))
    (run / "config.json").write_text(json.dumps({"model": {"arch": "resnext11_2x4d"}}))
    make_image(run / "curves.png", 1)
    tab.set_checkpoint(str(ckpt))
    tab.predict_paths([str(tmp_path / "runs")])
    wait_idle(qtbot, tab)
    assert tab.row_count() == 1
    assert tab.model.index(0, COL_TOPK).data() == f"Cannot read: {ONLY_RUN_FOLDERS}"
    assert tab.count_label.text() == "0 files, 1 folder without images"  # (not "1 unreadable": no file is)
    assert tab.status_label.text() == "No images found in what was dropped."


def test_top_k_and_the_grad_cam_box_are_kept_for_the_next_start(qtbot, tab):
    """Both came back as 5 and ticked at every start."""
    tab.topk_spin.setValue(3)
    tab.cam_check.setChecked(False)
    again = PredictTab()
    qtbot.addWidget(again)
    assert again.topk_spin.value() == 3 and not again.cam_check.isChecked()


@pytest.mark.timeout(180)
def test_top_k_goes_up_to_the_models_classes_and_the_choice_comes_back_for_a_bigger_model(
    qtbot, tab, ckpt, inputs, tmp_path
):
    """On a 3-class model top-k went up to 20: 4, 5 … 20 all showed the same 3 rows."""
    from gui.app import settings
    from gui.widgets import load_json_setting

    tab.topk_spin.setValue(4)
    tab.set_checkpoint(str(ckpt))
    tab.predict_paths([str(inputs["loose"][0])])
    wait_idle(qtbot, tab)
    assert tab.topk_spin.maximum() == 3 and tab.topk_spin.value() == 3 and "knows 3 classes" in tab.topk_spin.toolTip()
    assert load_json_setting(settings(), "predict/top_k", 0) == 4  # the user's choice is kept
    bigger = make_checkpoint(tmp_path / "six.pt", classes=["a", "b", "c", "d", "e", "f"])
    tab.set_checkpoint(str(bigger))
    wait_idle(qtbot, tab)
    tab.predict_paths([str(p) for p in inputs["loose"][:2]])
    wait_idle(qtbot, tab)
    assert tab.topk_spin.maximum() == 6 and tab.topk_spin.value() == 4
    run = tmp_path / "runs" / "20240101-000000-resnext11_2x4d-shapes"  # a run's model: fitted when chosen, from
    run.mkdir(parents=True)  # the classes its config.json names (it showed 5 of 4 classes until the first answer)
    make_checkpoint(run / "best.pt", classes=["a", "b"])
    (run / "config.json").write_text(json.dumps({"dataset": {"classes": ["a", "b"]}}))
    tab.set_checkpoint(str(run / "best.pt"))
    assert tab.topk_spin.maximum() == 2 and tab.topk_spin.value() == 2


@pytest.mark.timeout(180)
def test_rows_name_files_from_the_dropped_folder(qtbot, tab, ckpt, inputs, tmp_path):
    """Two IMG_0001.jpg in different sub-folders must not look alike: rows name a file from the dropped folder."""
    from gui.predict_tab import display_name

    trip = tmp_path / "trip"
    for day in ("day 1", "day 2"):
        make_image(trip / day / "raw" / "IMG_0001.png", 3)
    tab.set_checkpoint(str(ckpt))
    tab.predict_paths([trip, inputs["loose"][0]])
    wait_idle(qtbot, tab)
    names = sorted(tab.model.index(r, COL_FILE).data() for r in range(tab.row_count()))
    assert names == ["in/a.png", "trip/day 1/raw/IMG_0001.png", "trip/day 2/raw/IMG_0001.png"]
    assert display_name("/photos/x.jpg", []) == "photos/x.jpg" and display_name("/x.jpg", ["/"]) == "x.jpg"


def test_files_of_one_name_from_two_folders_are_named_apart(qtbot, tab, ckpt, tmp_path, monkeypatch):
    """Files given one by one (Open images…, a drop of files) were named by their own folder alone: "nested/002.png"
    twice, for a cat and a dog. From more than one folder they are named from the folder above them all."""
    pets = tmp_path / "pets"
    files = [make_image(pets / kind / "nested" / "002.png", i) for i, kind in enumerate(("cat", "dog"))]
    tab.set_checkpoint(str(ckpt))
    tab.predict_paths([str(f) for f in files])
    wait_idle(qtbot, tab)
    names = sorted(tab.model.index(r, COL_FILE).data() for r in range(tab.row_count()))
    assert names == ["pets/cat/nested/002.png", "pets/dog/nested/002.png"]
    apart = [files[0], make_image(pets / "dog" / "nested" / "003.png", 3)]
    tab.predict_paths([str(f) for f in apart])  # names that differ already: as before
    wait_idle(qtbot, tab)
    assert sorted(tab.model.index(r, COL_FILE).data() for r in range(tab.row_count())) == [
        "nested/002.png",
        "nested/003.png",
    ]
    monkeypatch.chdir(pets)  # (paths relative to the working folder: named apart as well)
    tab.predict_paths([os.path.relpath(f) for f in files])
    wait_idle(qtbot, tab)
    names = sorted(tab.model.index(r, COL_FILE).data() for r in range(tab.row_count()))
    assert names == ["pets/cat/nested/002.png", "pets/dog/nested/002.png"]


def test_every_top_class_keeps_its_percentage_beside_long_names(qtbot, tab, tmp_path):
    """The first of three 70-character names filled the Top classes cell: no percentage showed on any row."""
    from gui.predict_tab import COL_TOPK, TOP_NAME

    long = [f"{i:02d}_a_very_long_class_name_that_goes_on_and_on_forever_and_ever_{i}" for i in range(3)]
    ckpt = make_checkpoint(tmp_path / "model" / "best.pt", classes=long)
    images = [make_image(tmp_path / "in" / f"{i}.png", i) for i in range(2)]
    tab.show()
    tab.set_checkpoint(str(ckpt))
    tab.topk_spin.setValue(3)
    tab.predict_paths([str(p) for p in images])
    wait_idle(qtbot, tab)
    for row in range(tab.row_count()):
        index = tab.model.index(row, COL_TOPK)
        parts = index.data().split("   ")
        assert len(parts) == 3 and all(p.endswith("%") for p in parts)
        assert all(len(p.rsplit(" ", 1)[0]) <= TOP_NAME for p in parts)
        assert all(n in index.data(Qt.ItemDataRole.ToolTipRole) for n in long)  # whole in the tooltip
        room = tab.table.columnWidth(COL_TOPK) - 12  # (the cell's margins)
        assert tab.table.fontMetrics().horizontalAdvance(parts[0] + "   " + parts[1]) < room  # two in sight


def test_column_titles_fit_a_larger_font(qtbot, tmp_path):
    """Fixed 160 and 120 px cut the bold titles at 14 pt: "redicted clas", "Confiden"."""
    from PySide6.QtGui import QFont, QFontMetrics
    from PySide6.QtWidgets import QApplication

    from gui.predict_tab import COL_CLASS, COL_CONF

    app = QApplication.instance()
    normal = app.font()
    large = QFont(normal)
    large.setPointSizeF(normal.pointSizeF() * 1.8)
    app.setFont(large)
    try:
        w = PredictTab()
        qtbot.addWidget(w)
    finally:
        app.setFont(normal)
    header = w.table.horizontalHeader()
    bold = QFont(header.font())
    bold.setBold(True)
    for col in (COL_CLASS, COL_CONF):
        title = w.model.headerData(col, Qt.Orientation.Horizontal)
        assert header.sectionSize(col) >= QFontMetrics(bold).horizontalAdvance(title) + 20, title


def test_the_file_column_fits_the_rows_a_filter_shows(qtbot, tab, ckpt, tmp_path):
    """After a filter of short names the File column kept their width, and "Problems only" then cut every
    name ("revgui-…tes.txt") beside an empty Top classes column."""
    short = make_image(tmp_path / "in" / "a.png", 1)
    long = make_image(tmp_path / "in" / "a_picture_with_a_rather_long_file_name.png", 2)
    tab.show()
    tab.set_checkpoint(str(ckpt))
    tab.predict_paths([str(short), str(long)])
    wait_idle(qtbot, tab)
    header = tab.table.horizontalHeader()
    tab.filter_edit.setText("a.png")
    assert tab.visible_row_count() == 1
    narrow = header.sectionSize(COL_FILE)
    tab.filter_edit.clear()
    assert tab.table.sizeHintForColumn(COL_FILE) > narrow  # (the long name needs more than the short one had)
    assert header.sectionSize(COL_FILE) >= tab.table.sizeHintForColumn(COL_FILE)


def test_filters_sort_and_export(qtbot, tab, ckpt, inputs, tmp_path, monkeypatch):
    import csv

    tab.set_checkpoint(str(ckpt))
    tab.predict_paths([str(p) for p in inputs["loose"] + inputs["folder"] + inputs["bad"]])
    wait_idle(qtbot, tab)
    assert tab.visible_row_count() == 6

    tab.mode_combo.setCurrentText(ERRORS_ONLY)
    assert tab.visible_row_count() == 1
    bad = tab.results()[tab.proxy.mapToSource(tab.proxy.index(0, 0)).row()]
    tab._on_row_activated(tab.proxy.index(0, COL_FILE))  # (double-click or Enter on it did nothing at all)
    assert tab.status_label.text() == f"{bad.source}: {bad.error}" and tab.stack.currentIndex() == 2
    tab.mode_combo.setCurrentIndex(0)
    tab.filter_edit.setText("no file is called this")  # an export of the header alone is not offered
    assert tab.count_label.text().endswith(" — none match the filter") and not tab.export_button.isEnabled()
    assert "The filter hides every result" in tab.export_button.toolTip()
    tab.filter_edit.clear()
    assert tab.export_button.isEnabled()
    tab.filter_edit.setText("img")
    assert tab.visible_row_count() == 3
    tab.filter_edit.clear()
    label = tab.results()[-1].label or tab.results()[0].label
    tab.mode_combo.setCurrentText(label)
    assert tab.visible_row_count() == sum(1 for r in tab.results() if r.ok and r.label == label)
    tab.mode_combo.setCurrentIndex(0)
    choices = [tab.mode_combo.itemText(i) for i in range(2, tab.mode_combo.count())]
    assert choices == sorted(CLASSES)  # every class the model knows, those never predicted too
    never = [c for c in CLASSES if all(r.label != c for r in tab.results())]
    if never:
        tab.mode_combo.setCurrentText(never[0])
        assert tab.visible_row_count() == 0 and tab.count_label.text().endswith(" — none match the filter")
        tab.mode_combo.setCurrentIndex(0)

    out = tmp_path / "preds.csv"
    tab.export_csv(str(out))
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6
    assert sum(1 for r in rows if r["ok"] == "no") == 1

    tab.filter_edit.setText("img")  # what the table shows is what is written: "Wrote 1499 rows" with 150 shown
    tab.table.sortByColumn(COL_FILE, Qt.SortOrder.DescendingOrder)
    assert "3 results shown" in tab.export_button.toolTip()
    tab.export_csv(str(out))
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [Path(r["source"]).name for r in rows] == ["img2.png", "img1.png", "img0.png"]
    assert "Wrote 3 rows" in tab.status_label.text() and "the filter hides 3 others" in tab.status_label.text()

    # the save dialog opens beside the images the first time (it opened in the home folder)
    assert tab.images_folder() == str(inputs["loose"][0].parent)  # (in/ and in/folder/: in/)
    image = Path(rows[0]["source"])  # a name typed over one of the images just classified: refused, kept
    before = image.read_bytes()
    warned = []
    monkeypatch.setattr("gui.widgets.QMessageBox.warning", lambda *a, **k: warned.append(a[2]))
    tab.export_csv(str(image))
    assert warned == [f"{image} is an image; it is not replaced with the CSV. Choose another name."]
    assert image.read_bytes() == before


@pytest.mark.timeout(180)
def test_one_image_shows_bars_and_gradcam(qtbot, tab, ckpt, inputs, monkeypatch):
    import threading

    import gui.predict_tab as predict_tab

    shown_on = []  # the threads the image was shown on (a bar's Grad-CAM was shown from the worker's thread)
    real_show = tab._show_single_image
    monkeypatch.setattr(tab, "_show_single_image", lambda: (shown_on.append(threading.current_thread()), real_show()))
    tab.set_checkpoint(str(ckpt))
    tab.topk_spin.setValue(2)
    tab.predict_paths([str(inputs["loose"][0])])
    wait_idle(qtbot, tab)
    pred = tab.single_result()
    assert pred is not None and pred.ok
    assert tab.stack.currentIndex() == 1
    assert [n for n, _ in tab.bars.items()] == [n for n, _ in pred.top]
    assert len(tab.bars.items()) == 2
    assert tab.class_label.text() == pred.label
    assert tab.cam_check.isEnabled() and tab.cam_check.isChecked()  # shown from the start, as in Evaluate
    overlaid = tab.image_view._pixmap.toImage()
    tab.cam_check.setChecked(False)
    assert tab.image_view._pixmap.toImage() != overlaid
    tab.cam_check.setChecked(True)
    assert tab.image_view._pixmap.toImage() == overlaid
    # a click on the second class's bar: its Grad-CAM (what speaks for it), and the bar says which is shown
    assert tab.bars.highlight() == pred.label
    second = pred.top[1][0]
    tab.bars.resize(300, tab.bars.height())
    qtbot.mouseClick(tab.bars, Qt.MouseButton.LeftButton, pos=QPoint(150, 2 + tab.bars.ROW + tab.bars.ROW // 2))
    qtbot.waitUntil(lambda: tab.bars.highlight() == second, timeout=30_000)
    assert tab.image_view._pixmap.toImage() != overlaid and second in tab.cam_check.text()
    qtbot.waitUntil(lambda: tab._cam_worker is None, timeout=30_000)
    # and back to the top class's from the keyboard (Tab skipped the bars: a choice for the mouse only)
    tab.show()
    tab.bars.setFocus(Qt.FocusReason.TabFocusReason)
    qtbot.waitUntil(tab.bars.hasFocus, timeout=5000)
    assert tab.bars.focusPolicy() == Qt.FocusPolicy.StrongFocus and tab.bars.cursor == 1  # (on the class shown)
    from gui.image_view import ProbabilityBars

    assert ProbabilityBars().focusPolicy() == Qt.FocusPolicy.NoFocus  # (no rows: no Tab stop)
    qtbot.keyClick(tab.bars, Qt.Key.Key_Up)
    assert tab.bars.cursor == 0 and tab.bars.highlight() == second  # moving only moves the dashed box
    qtbot.keyClick(tab.bars, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: tab.bars.highlight() == pred.label, timeout=30_000)
    assert tab.image_view._pixmap.toImage() == overlaid
    qtbot.waitUntil(lambda: tab._cam_worker is None, timeout=30_000)
    assert len(shown_on) >= 4 and set(shown_on) == {threading.main_thread()}
    # a Grad-CAM that fails says so, from the window's thread too
    noted = []
    real_note = tab.cam_note.setText
    monkeypatch.setattr(
        tab.cam_note, "setText", lambda t: (noted.append((t, threading.current_thread())), real_note(t))
    )

    def failing(*_args, **_kwargs):
        raise ValueError("no layer to hook")

    monkeypatch.setattr(predict_tab, "_cam_of_class", failing)
    tab.show_cam_of(second)
    qtbot.waitUntil(lambda: tab._cam_worker is None, timeout=30_000)
    assert noted[-1] == ("Grad-CAM unavailable: no layer to hook", threading.main_thread()), noted
    from gui.app import load_stylesheet

    tab.setStyleSheet(load_stylesheet())  # the app's style: the predicted class stands out
    assert tab.class_label.fontInfo().pointSizeF() >= 1.5 * tab.conf_label.fontInfo().pointSizeF()
    # the side pane may be squeezed to its 300 px: the ranking's title wraps there (it was cut mid-word at 150 %)
    assert (
        tab.top_title.minimumSizeHint().width()
        < 300
        <= tab.top_title.fontMetrics().horizontalAdvance(tab.top_title.text()) * 1.5
    )
    tab.setStyleSheet("")

    # one unreadable file: its reason, and no empty ranking or Grad-CAM switch
    tab.predict_paths([str(inputs["bad"][0])])
    wait_idle(qtbot, tab)
    assert not tab.single_result().ok and tab.class_label.text() == "Unreadable image"
    assert tab.conf_label.text() == tab.single_result().error
    assert not tab.bars.isVisibleTo(tab) and not tab.cam_check.isVisibleTo(tab)
    assert not tab.top_title.isVisibleTo(tab)
    tab.predict_paths([str(inputs["loose"][1])])
    wait_idle(qtbot, tab)
    assert tab.single_result().ok and tab.bars.isVisibleTo(tab) and tab.cam_check.isVisibleTo(tab)


@pytest.mark.timeout(180)
def test_paste_image_from_clipboard(qtbot, tab, ckpt, inputs):
    tab.set_checkpoint(str(ckpt))
    QGuiApplication.clipboard().setImage(QImage(str(inputs["loose"][1])))
    if not QGuiApplication.clipboard().mimeData().hasImage():
        pytest.skip("this Qt platform has no clipboard")
    tab.paste()
    wait_idle(qtbot, tab)
    assert tab.single_result() is not None and tab.single_result().ok
    assert tab.file_label.text() == "Pasted image"

    # Ctrl+V with the focus in Top-k or the filter: the image, not the field's text (nothing was classified)
    tab.show()
    tab.activateWindow()
    for field in (tab.topk_spin, tab.filter_edit):
        tab._clear_results("cleared")
        field.setFocus()
        qtbot.waitUntil(field.hasFocus)
        qtbot.keyClick(field, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
        qtbot.waitUntil(lambda: tab.single_result() is not None, timeout=5000)
        wait_idle(qtbot, tab)
        assert tab.single_result().ok and tab.file_label.text() == "Pasted image"
    QGuiApplication.clipboard().setText("star")  # text: the filter's own (a name to filter by)
    tab.filter_edit.setFocus()
    qtbot.keyClick(tab.filter_edit, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert tab.filter_edit.text() == "star"


@pytest.mark.timeout(180)
@pytest.mark.filterwarnings("ignore:Function.*QDragEnterEvent:DeprecationWarning")
def test_an_image_dropped_from_a_web_browser_is_called_dropped_not_pasted(qtbot, tab, ckpt, inputs, tmp_path):
    """An image dragged in from a web browser (its picture and web address, no file) was "Pasted image" in the
    view, the status line and the CSV's source column."""
    import csv

    tab.set_checkpoint(str(ckpt))
    mime = QMimeData()
    mime.setImageData(QImage(str(inputs["loose"][1])))
    mime.setUrls([QUrl("https://example.com/shapes/triangle.png")])
    drop_mime(tab, mime)
    wait_idle(qtbot, tab)
    pred = tab.single_result()
    assert pred is not None and pred.ok
    assert tab.file_label.text() == "Dropped image"
    assert tab.status_label.text() == f"Dropped image: {pred.label} ({pred.confidence:.1%})"
    tab.export_csv(str(tmp_path / "dropped.csv"))
    with open(tmp_path / "dropped.csv", newline="") as f:
        assert [r["source"] for r in csv.DictReader(f)] == ["Dropped image"]


def test_open_images_offers_every_image_type_the_app_reads_in_any_case(qtbot, tab, tmp_path, monkeypatch):
    """The dialog's types were a list of their own: .jfif, .jpe and .avif photos, which the app reads, could not
    be chosen."""
    from PySide6.QtWidgets import QFileDialog, QFileSystemModel

    from core.data import IMAGE_EXTENSIONS

    asked = []
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda _p, _t, _d, types: asked.append(types) or ([], ""))
    tab._open_images()
    folder = tmp_path / "photos"
    folder.mkdir()
    photos = {f"photo{e}" for e in IMAGE_EXTENSIONS} | {"UPPER.JPG", "Mixed.Jfif", "CAMERA.AVIF"}
    for name in photos | {"notes.txt"}:
        (folder / name).write_bytes(b"x")
    dialog = QFileDialog(None, "Open images", str(folder), asked[0])
    dialog.setOption(QFileDialog.Option.DontUseNativeDialog)  # (Qt's own: how it matches the types)
    qtbot.addWidget(dialog)
    files = dialog.findChild(QFileSystemModel)
    root = files.index(str(folder))

    def listed() -> set[str]:
        return {files.index(r, 0, root).data() for r in range(files.rowCount(root))}

    qtbot.waitUntil(lambda: photos <= listed(), timeout=10_000)
    assert "notes.txt" not in listed()


@pytest.mark.timeout(180)
def test_cancel_keeps_partial_results_and_stops_the_worker(qtbot, tab, ckpt, tmp_path):
    folder = tmp_path / "many"
    for i in range(160):
        make_image(folder / f"{i:03d}.png", i)
    tab.set_checkpoint(str(ckpt))
    tab.predict_paths([str(folder)])
    assert tab.is_busy() and tab.cancel_button.isVisibleTo(tab)
    qtbot.waitUntil(lambda: tab.row_count() > 0 or not tab.is_busy(), timeout=60_000)
    tab.cancel()
    wait_idle(qtbot, tab)
    assert 0 < tab.row_count() < 160
    assert all(r.ok for r in tab.results())  # no "cancelled" rows are added
    assert tab.status_label.text().startswith("Cancelled after")
    assert not tab.cancel_button.isVisibleTo(tab)


def test_bad_checkpoint_is_reported_in_the_tab(qtbot, tab, inputs, tmp_path):
    import torch

    bad = tmp_path / "broken.pt"  # a torch.save file (it passes the first look), but not of this program
    torch.save({"weights": torch.zeros(2)}, bad)
    tab.set_checkpoint(str(bad))
    tab.predict_paths([str(p) for p in inputs["loose"]])  # (dropped while the file loads: they wait for it)
    wait_idle(qtbot, tab)
    assert "broken.pt" in tab.status_label.text() and "color" in tab.status_label.styleSheet()
    assert tab.status_label.text().endswith(
        "Not taken as the model: no model is chosen. The images dropped meanwhile were not classified."
    )
    assert tab.row_count() == 0
    assert tab.stack.currentIndex() == 0  # back to the drop hint
    assert tab.model_combo.findData(str(bad)) < 0 and tab.checkpoint() is None


@pytest.mark.timeout(180)
def test_a_model_file_that_does_not_load_leaves_the_list_and_the_answer_on_screen_stays(
    qtbot, tab, ckpt, inputs, tmp_path, monkeypatch
):
    """Another program's torch.save file passes the quick look at its first bytes. Chosen as the model it stayed
    listed and chosen, the answer on screen was cleared, and every drop after failed on it again."""
    import torch
    from PySide6.QtWidgets import QFileDialog

    other = tmp_path / "other_program.pt"
    torch.save({"epoch": 3, "state": {"w": torch.zeros(2)}}, other)
    tab.set_checkpoint(str(ckpt))
    tab.predict_paths([str(inputs["loose"][0])])
    wait_idle(qtbot, tab)
    answer = tab.single_result()
    entries = [tab.model_combo.itemText(i) for i in range(tab.model_combo.count())]
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *_a: (str(other), ""))
    tab.model_combo.setCurrentIndex(tab.model_combo.findText("Choose checkpoint file…"))
    tab.model_combo.activated.emit(tab.model_combo.currentIndex())
    assert tab.checkpoint() == str(other) and tab.is_busy()  # (chosen, while it loads)
    wait_idle(qtbot, tab)
    status = tab.status_label.text()
    assert status.startswith(f"{other}: ") and "color" in tab.status_label.styleSheet()
    assert status.endswith(f"Not taken as the model: the model is still {ckpt}.")
    assert tab.checkpoint() == str(ckpt) and tab.model_combo.findData(str(other)) < 0
    assert [tab.model_combo.itemText(i) for i in range(tab.model_combo.count())] == entries
    assert tab.stack.currentIndex() == 1 and tab.single_result() is answer and tab._jobs["one"][3] == str(ckpt)
    tab.predict_paths([str(inputs["loose"][1])])  # the next drop: classified with the model before
    wait_idle(qtbot, tab)
    assert tab.single_result().ok and tab._jobs["one"][3] == str(ckpt)


@pytest.mark.timeout(180)
def test_a_model_file_refused_is_not_kept_and_the_model_before_it_stays(
    qtbot, tab, ckpt, inputs, tmp_path, monkeypatch
):
    """A TorchScript export, an ONNX model or junk chosen as the model was refused in red, but stayed in the list
    as "File: …", chosen: the next drop failed on it again."""
    import warnings

    import torch
    from PySide6.QtWidgets import QFileDialog

    from core.runs import not_a_checkpoint

    exported, onnx, junk = tmp_path / "exported.pt", tmp_path / "model.onnx", tmp_path / "junk.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (torch.jit's deprecation)
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), exported)
    onnx.write_bytes(b"\x08\x08\x12\x07pytorch\x1a\x032.1" + bytes(range(200)))
    junk.write_bytes(b"this is not a checkpoint")
    tab.set_checkpoint(str(ckpt))
    tab.predict_paths([str(inputs["loose"][0])])
    wait_idle(qtbot, tab)
    entries = [tab.model_combo.itemText(i) for i in range(tab.model_combo.count())]
    for refused in (exported, onnx, junk):
        monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *_a, f=refused: (str(f), ""))
        tab.model_combo.setCurrentIndex(tab.model_combo.findText("Choose checkpoint file…"))
        tab.model_combo.activated.emit(tab.model_combo.currentIndex())
        wait_idle(qtbot, tab)
        # why, and which model is still in use (as a file refused once loaded says)
        said = f"{not_a_checkpoint(refused).rstrip('.')}. Not taken as the model: the model is still {ckpt}."
        assert tab.status_label.text() == said and "color" in tab.status_label.styleSheet()
        assert tab.model_combo.findData(str(refused)) < 0 and tab.checkpoint() == str(ckpt)
        assert [tab.model_combo.itemText(i) for i in range(tab.model_combo.count())] == entries
    tab.predict_paths([str(inputs["loose"][1])])  # the next drop: classified with the model before
    wait_idle(qtbot, tab)
    assert tab.single_result().ok and tab._jobs["one"][3] == str(ckpt)


@pytest.mark.timeout(180)
def test_model_files_chosen_while_another_loads_are_each_checked(qtbot, tab, ckpt, inputs, tmp_path):
    """A second file chosen while the first loaded left the first unchecked: a broken first file stayed listed, and
    became "the model before" a broken second one, so every drop failed on it again. A file that loads after a run
    was chosen fitted top-k to its own classes, under the run's name."""
    import json
    import shutil

    import torch

    bad1, bad2 = tmp_path / "bad1.pt", tmp_path / "bad2.pt"
    for bad in (bad1, bad2):
        torch.save({"state": {"w": torch.zeros(2)}}, bad)
    tab.set_checkpoint(str(ckpt))
    wait_idle(qtbot, tab)
    tab.set_checkpoint(str(bad1))
    tab.set_checkpoint(str(bad2))
    wait_idle(qtbot, tab)
    assert tab.checkpoint() == str(ckpt)
    assert tab.model_combo.findData(str(bad1)) < 0 and tab.model_combo.findData(str(bad2)) < 0
    said = tab.status_label.text()
    assert "bad2.pt: not a ResNeXt Studio checkpoint" in said and f"the model is still {ckpt}." in said, said

    run = tmp_path / "runs" / "20261129-000000-resnext11_2x4d-six"  # a run of 6 classes, chosen from the list
    run.mkdir()
    six = [f"k{i}" for i in range(6)]
    make_checkpoint(run / "best.pt", classes=six)
    (run / "config.json").write_text(json.dumps({"model": {"arch": "resnext11_2x4d"}, "dataset": {"classes": six}}))
    (run / "status.json").write_text(json.dumps({"status": "completed", "started": 1_800_000_000}))
    two = make_checkpoint(tmp_path / "two" / "best.pt", seed=1, classes=["x", "y"])
    shutil.copy(two, tmp_path / "two.pt")
    tab.set_checkpoint(str(tmp_path / "two.pt"))  # loading…
    tab.refresh_models()
    tab.model_combo.setCurrentIndex(tab.model_combo.findData(str(run / "best.pt")))
    tab.model_combo.activated.emit(tab.model_combo.currentIndex())
    tab._fit_topk_to_run()
    tab.predict_paths([str(inputs["loose"][0])])  # (for the run's model: it waits for no other file)
    wait_idle(qtbot, tab)
    assert tab.checkpoint() == str(run / "best.pt") and tab.topk_spin.maximum() == 6
    assert tab.single_result().ok and tab.single_result().label in six


def test_no_model_gives_a_hint_and_starts_nothing(qtbot, tab, inputs):
    assert tab.checkpoint() is None
    tab.predict_paths([str(inputs["loose"][0])])
    assert not tab.is_busy()
    assert "Choose a model" in tab.status_label.text()


def test_default_model_is_the_latest_runs_best(qtbot, tmp_path, ckpt):
    import shutil

    runs = tmp_path / "runs2"
    for name, started, status in (
        ("20240101-000000-a-d", 1_700_000_000, "completed"),
        ("20240202-000000-b-d", 1_800_000_000, "stopped"),
    ):
        d = runs / name
        d.mkdir(parents=True)
        (d / "config.json").write_text(json.dumps({"model": {"arch": "resnext11_2x4d"}, "train": {"epochs": 3}}))
        (d / "status.json").write_text(json.dumps({"status": status, "started": started, "epochs_done": 1}))
        (d / "history.csv").write_text("epoch,train_loss,train_acc\n1,0.9,0.5\n")
        shutil.copy(ckpt, d / "best.pt")
    w = PredictTab()
    qtbot.addWidget(w)
    w.set_runs_dir(runs)
    assert w.checkpoint() == str(runs / "20240202-000000-b-d" / "best.pt")
    names = [w.model_combo.itemText(i) for i in range(2)]  # an unfinished run says so; a finished one needs not
    assert names == ["stopped, 1/3 epochs  ·  20240202-000000-b-d", "20240101-000000-a-d"]
    assert w.topk_spin.maximum() == 20  # (their config.json names no classes)
    config = json.loads((runs / "20240202-000000-b-d" / "config.json").read_text())
    config["dataset"] = {"classes": ["a", "b", "c", "d"]}
    (runs / "20240202-000000-b-d" / "config.json").write_text(json.dumps(config))
    w.refresh_models(keep=False)  # the model the list starts on: top-k fits its 4 classes before any answer
    assert (w.topk_spin.maximum(), w.topk_spin.value()) == (4, 4)
    other = tmp_path / "other.pt"
    shutil.copy(ckpt, other)
    w.set_checkpoint(str(other))
    assert w.checkpoint() == str(other)
    w.refresh_models()
    assert w.checkpoint() == str(other)


def test_a_model_name_wider_than_its_box_is_cut_in_the_middle_not_at_its_end(qtbot, tab):
    """On a 1024-px screen the model box cut "val acc 73.3%  ·  20261129-135702-resnext11_4x8d-sample" at its right
    edge, no "…": the run's name lost its end (its data set). Now its middle goes, and the box draws what it says."""
    from gui.widgets import ElidedComboBox

    name = "val acc 73.3%  ·  20261129-135702-resnext11_4x8d-sample-of-shapes"
    tab.show()  # (the list is made again when shown)
    tab.model_combo.setItemText(tab.model_combo.currentIndex(), name)
    tab.model_combo.setFixedWidth(240)
    shown = tab.model_combo.shown_text()
    assert "…" in shown and shown.startswith("val acc 73.3%") and shown.endswith("shapes"), shown
    assert tab.model_combo.fontMetrics().horizontalAdvance(shown) < 240
    assert tab.model_combo.currentText() == name  # (and the list: whole)
    # drawn as a box holding the cut text itself
    same = ElidedComboBox(tab)
    same.addItem(shown)
    same.setGeometry(tab.model_combo.geometry())
    same.show()
    assert same.shown_text() == shown
    assert same.grab().toImage() == tab.model_combo.grab().toImage()
    tab.model_combo.setFixedWidth(800)  # room: whole
    assert tab.model_combo.shown_text() == name


def test_the_first_model_is_the_newest_trained_on_the_open_data_set(qtbot, tmp_path, ckpt):
    """The newest run of all was another data set's: 1,495 photos came back as star, triangle, square, circle."""
    import shutil

    runs, photos, shapes = tmp_path / "runs3", tmp_path / "photos", tmp_path / "shapes"
    for name, started, folder in (
        ("20240101-000000-a-photos", 1_700_000_000, photos),
        ("20240102-000000-a-photos", 1_750_000_000, photos),
        ("20240202-000000-b-shapes", 1_800_000_000, shapes),
    ):
        d = runs / name
        d.mkdir(parents=True)
        cfg = {"data": {"root": "relative/as/typed"}, "dataset": {"root": str(folder)}, "model": {"arch": "x"}}
        (d / "config.json").write_text(json.dumps(cfg))
        (d / "status.json").write_text(json.dumps({"status": "completed", "started": started}))
        shutil.copy(ckpt, d / "best.pt")
    photos.mkdir()
    w = PredictTab()
    qtbot.addWidget(w)
    w.set_runs_dir(runs)
    assert w.checkpoint() == str(runs / "20240202-000000-b-shapes" / "best.pt")  # no data set open: the newest
    w.set_data_folder(str(photos / "." / ""))
    assert w.checkpoint() == str(runs / "20240102-000000-a-photos" / "best.pt")
    w.set_data_folder(str(tmp_path / "unknown"))
    assert w.checkpoint() == str(runs / "20240202-000000-b-shapes" / "best.pt")
    w.model_combo.setCurrentIndex(w.model_combo.findData(str(runs / "20240101-000000-a-photos" / "best.pt")))
    w.model_combo.activated.emit(w.model_combo.currentIndex())  # the user's choice stays the choice
    w.set_data_folder(str(shapes))
    assert w.checkpoint() == str(runs / "20240101-000000-a-photos" / "best.pt")
    # the model in use is deleted (Runs tab): the choice is made again as above, and said, not left to the run that
    # slid into its place in the list (another data set's), while the status line named the deleted file
    w.set_checkpoint(str(runs / "20240102-000000-a-photos" / "best.pt"))
    shutil.rmtree(runs / "20240102-000000-a-photos")
    w.forget_runs([str(runs / "20240102-000000-a-photos")])
    assert w.checkpoint() == str(runs / "20240202-000000-b-shapes" / "best.pt")
    assert w.status_label.text() == "The model was deleted; the model is now 20240202-000000-b-shapes."


@pytest.mark.timeout(240)
def test_changing_the_model_or_top_k_classifies_the_shown_images_again(qtbot, tab, ckpt, inputs, tmp_path):
    import csv

    from core.predict import Predictor

    other = make_checkpoint(tmp_path / "model_b" / "best.pt", seed=7)
    images = [str(p) for p in inputs["loose"] + inputs["in_folder"]]
    tab.set_checkpoint(str(ckpt))
    tab.topk_spin.setValue(2)
    tab.predict_paths(images)
    wait_idle(qtbot, tab)
    assert all(len(r.top) == 2 for r in tab.results())

    tab.set_checkpoint(str(other), rerun=True)  # chosen here: the table must not keep the first model's answers
    assert tab.is_busy()
    wait_idle(qtbot, tab)
    expected = Predictor.from_checkpoint(other, device="cpu").predict(images, top_k=2)
    assert [(r.label, round(r.confidence, 4)) for r in tab.results()] == [
        (e.label, round(e.confidence, 4)) for e in expected
    ]

    def header(path):
        tab.export_csv(str(path))
        with open(path, newline="") as f:
            return next(csv.reader(f))

    tab.topk_spin.setValue(4)
    assert not tab.is_busy()  # not yet: a short pause for more clicks
    h = header(tmp_path / "before.csv")  # exported now, it must describe the table (top 2), not the spin box
    assert "top2" in h and "top3" not in h
    qtbot.waitUntil(tab.is_busy, timeout=5000)
    wait_idle(qtbot, tab)
    assert all(len(r.top) == 3 for r in tab.results())  # only three classes exist
    h = header(tmp_path / "after.csv")
    assert "top3" in h and "top4" not in h  # top 4 asked; a column that would always be empty is left out

    # a row opened from the table, the model changed there, then back: the table is classified again too
    tab.model_combo.setCurrentIndex(tab.model_combo.findData(str(ckpt)))
    tab._on_row_activated(tab.proxy.index(0, 0))
    wait_idle(qtbot, tab)
    tab.set_checkpoint(str(other), rerun=True)
    wait_idle(qtbot, tab)
    tab.back_button.click()
    wait_idle(qtbot, tab)
    assert tab._jobs["many"][3] == str(other)

    # chosen from another tab ("Predict with this model"): old answers are cleared, not re-classified
    tab.set_checkpoint(str(ckpt))
    assert tab.stack.currentIndex() == 0 and tab.row_count() == 0 and not tab._jobs
    wait_idle(qtbot, tab)  # (the file is loaded once, to be sure it is a model: nothing is classified with it)
    assert tab.stack.currentIndex() == 0 and tab.row_count() == 0 and not tab._jobs


def test_answers_of_a_model_file_replaced_since_are_classified_again_when_looked_at(qtbot, tab, ckpt, inputs, tmp_path):
    """best.pt replaced by another program (`train --resume --epochs` found a better epoch): the table kept the old
    model's answers, and a row opened from it gave the new model's. Shown again, the tab classifies them again."""
    import os

    from core.predict import Predictor

    images = [str(p) for p in inputs["loose"] + inputs["in_folder"]]
    tab.show()
    tab.set_checkpoint(str(ckpt))
    tab.predict_paths(images)
    wait_idle(qtbot, tab)
    before = [(r.label, round(r.confidence, 4)) for r in tab.results()]
    tab.hide()
    tab.show()  # nothing changed: nothing is classified again
    assert not tab.is_busy()
    os.replace(make_checkpoint(tmp_path / "new.pt", seed=7), ckpt)  # as checkpoint.save replaces it
    tab.hide()
    tab.show()
    assert tab.is_busy()
    wait_idle(qtbot, tab)
    expected = [
        (e.label, round(e.confidence, 4)) for e in Predictor.from_checkpoint(ckpt, device="cpu").predict(images)
    ]
    assert [(r.label, round(r.confidence, 4)) for r in tab.results()] == expected != before

    # the window come back to (from the terminal), the file replaced by one copied in with its time kept (cp -p): the
    # answers and the model that gives them are the new file's, not the old model's by its time alone
    from PySide6.QtCore import QCoreApplication, QEvent

    then = os.stat(ckpt).st_mtime_ns
    os.replace(make_checkpoint(tmp_path / "copied.pt", seed=3), ckpt)
    os.utime(ckpt, ns=(then, then))
    QCoreApplication.sendEvent(tab, QEvent(QEvent.Type.WindowActivate))
    assert tab.is_busy()
    wait_idle(qtbot, tab)
    expected = [
        (e.label, round(e.confidence, 4)) for e in Predictor.from_checkpoint(ckpt, device="cpu").predict(images)
    ]
    assert [(r.label, round(r.confidence, 4)) for r in tab.results()] == expected

    # come back to while the list stands on "Choose checkpoint file…" (its dialog closing): no "Choose a model first"
    os.replace(make_checkpoint(tmp_path / "newer.pt", seed=8), ckpt)
    said = tab.status_label.text()
    tab.model_combo.setCurrentIndex(tab.model_combo.count() - 1)
    assert tab.checkpoint() is None
    tab._rerun_if_stale(replaced_only=True)
    assert not tab.is_busy() and tab.status_label.text() == said


def test_a_deleted_run_leaves_the_model_list_and_takes_its_answers(qtbot, tab, ckpt, inputs, tmp_path):
    tab.set_checkpoint(str(ckpt))
    assert tab.checkpoint() == str(ckpt)
    tab.predict_paths([str(inputs["loose"][0])])
    wait_idle(qtbot, tab)
    assert tab.stack.currentIndex() == 1 and tab.single_result() is not None
    tab.forget_runs([str(tmp_path / "another-run")])  # not this model's: the answer stays
    assert tab.stack.currentIndex() == 1 and tab.single_result() is not None
    tab.forget_runs([str(ckpt.parent)])
    assert tab.model_combo.findData(str(ckpt)) < 0 and tab.checkpoint() != str(ckpt)
    assert tab.stack.currentIndex() == 0 and tab.single_result() is None
    assert "The model of these results was deleted" in tab.status_label.text()
    assert tab.checkpoint() is None  # (it said "the model is now none chosen. Drop images or folders to classify")
    assert tab.status_label.text() == (
        "The model of these results was deleted; no other model is there. Choose a model file (or train one) to "
        "classify images."
    )


def test_after_a_deleted_model_the_new_one_is_named_by_its_run_not_the_list_text(qtbot, tab, ckpt, tmp_path):
    """The line read "…the model is now val acc 26.7%  ·  20261129-083604-resnext11_4x8d-sample.": the model
    list's text pasted into the sentence."""
    import shutil

    runs = tmp_path / "runs"
    for name, started in (("20261128-000000-resnext11_2x4d-sample", 1), ("20261129-083604-resnext11_4x8d-sample", 2)):
        d = runs / name
        d.mkdir()
        (d / "config.json").write_text(json.dumps({"model": {"arch": "resnext11_2x4d"}, "train": {"epochs": 1}}))
        (d / "status.json").write_text(json.dumps({"status": "completed", "started": 1_700_000_000 + started}))
        (d / "history.csv").write_text("epoch,train_loss,train_acc,val_loss,val_acc\n1,1.0,0.3,1.1,0.267\n")
        shutil.copy(ckpt, d / "best.pt")
    tab.refresh_models()
    newest = runs / "20261129-083604-resnext11_4x8d-sample"
    assert tab.model_combo.currentText() == f"val acc 26.7%  ·  {newest.name}"
    older = runs / "20261128-000000-resnext11_2x4d-sample"
    tab.set_checkpoint(str(older / "best.pt"))
    shutil.rmtree(older)
    tab.forget_runs([str(older)])
    assert tab.checkpoint() == str(newest / "best.pt")
    assert tab.status_label.text() == f"The model was deleted; the model is now {newest.name}."
    tab.set_checkpoint(str(ckpt))  # a file chosen as a model ("File: …" in the list): named by its path
    wait_idle(qtbot, tab)
    tab.set_checkpoint(str(newest / "best.pt"))
    shutil.rmtree(newest)
    tab.forget_runs([str(newest)])
    assert tab.checkpoint() == str(ckpt)
    assert tab.status_label.text() == f"The model was deleted; the model is now {ckpt}."


@pytest.mark.timeout(180)
def test_long_class_names_and_paths_are_cut_in_the_middle_not_at_the_edge(qtbot, tab, tmp_path):
    """A heading cut at its right edge ("15_a_rather_long_class_nar") hides what tells classes apart; the whole
    text is the tooltip, and a long path keeps its file name."""
    from PySide6.QtGui import QFontMetrics

    from gui.widgets import elide_path

    long = [f"{i:02d}_a_rather_long_class_name_for_category_number_{i}_with_extra_words" for i in range(3)]
    ckpt = make_checkpoint(tmp_path / "model" / "best.pt", classes=long)
    deep = tmp_path / ("a_folder_with_a_very_long_name_" * 3) / ("and_another_one_" * 3)
    image = make_image(deep / "photo.png", 4)
    tab.resize(900, 600)
    tab.show()
    qtbot.waitExposed(tab)
    tab.set_checkpoint(str(ckpt))
    tab.predict_paths([str(image)])
    wait_idle(qtbot, tab)
    pred = tab.single_result()
    assert pred.ok and pred.label in long

    heading = tab.class_label
    shown = heading.shown_text()
    assert heading.text() == pred.label and heading.toolTip() == pred.label
    assert "…" in shown and shown.startswith(pred.label[:4]) and shown.endswith("_with_extra_words")
    assert heading.fontMetrics().horizontalAdvance(shown) <= heading.width()
    path = tab.file_label.shown_text()
    assert tab.file_label.text() == str(image) and tab.file_label.toolTip() == str(image)
    assert "…" in path and path.endswith("/photo.png")
    assert tab.file_label.fontMetrics().horizontalAdvance(path) <= tab.file_label.width()
    assert tab.bars.item_at(5) == pred.top[0]  # the bars' names are cut too: the tooltip names the class whole

    fm = QFontMetrics(tab.font())
    p = "/photos/" + "x" * 80 + "/IMG_0001.jpg"
    assert elide_path(fm, "/a/b.jpg", 500) == "/a/b.jpg"
    width = fm.horizontalAdvance("/IMG_0001.jpg") + 60
    cut = elide_path(fm, p, width)
    assert cut.endswith("/IMG_0001.jpg") and "…" in cut and fm.horizontalAdvance(cut) <= width
    assert "…" in elide_path(fm, p, 40)  # no room even for the name: the name is cut in its middle
    short = "circle/broken.jpg"  # room for the name and "…/", not for 3 "…" more: its folder is said cut
    assert elide_path(fm, short, fm.horizontalAdvance("…/broken.jpg")) == "…/broken.jpg"
    # no room for the whole name either: it is cut in its middle, and its folders are still said cut
    # ("square/truncated_photo_from_phone.jpg" read "truncated_p…m_phone.jpg", a file beside the class folders)
    long_name = "square/truncated_photo_from_phone.jpg"
    width = fm.horizontalAdvance("…/truncated_photo")
    shown = elide_path(fm, long_name, width)
    assert shown.startswith("…/") and shown.endswith(".jpg") and "…" in shown[2:], shown
    assert fm.horizontalAdvance(shown) <= width


def test_crop_box_matches_where_core_places_the_grad_cam():
    import numpy as np

    from core.data import resize_size
    from core.predict import _place_heatmap
    from gui.image_view import model_crop_box

    for size, image_size in (((800, 600), 224), ((600, 800), 224), ((64, 48), 32), ((333, 500), 96)):
        heat = _place_heatmap(np.ones((7, 7), np.float32), size, image_size, resize_size(image_size))
        ys, xs = np.nonzero(heat)
        assert model_crop_box(size, image_size) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    assert model_crop_box((40, 40), 32) == (0, 0, 40, 40)


@pytest.mark.timeout(180)
def test_a_huge_photo_is_shown_from_a_screen_sized_copy(qtbot, tab, ckpt, tmp_path, monkeypatch):
    """A 95-megapixel photo was shown, and its Grad-CAM drawn, at full size: 3.9 GB and a 2 s stall of the
    window. The view gets a copy at most DISPLAY_MAX px on a side (here made small); the answer is the model's."""
    import numpy as np

    import gui.predict_tab as pt
    from core.predict import Predictor

    monkeypatch.setattr(pt, "DISPLAY_MAX", 100)
    arr = (np.random.default_rng(3).random((150, 400, 3)) * 255).astype(np.uint8)
    Image.fromarray(arr).save(tmp_path / "panorama.png")
    tab.set_checkpoint(str(ckpt))
    tab.predict_paths([str(tmp_path / "panorama.png")])
    wait_idle(qtbot, tab)
    single = tab._single
    assert single["pred"].ok and single["cam_error"] is None
    assert (single["image"].width(), single["image"].height()) == (100, 38)
    assert (single["cam"].width(), single["cam"].height()) == (100, 38)
    assert tab.image_view.outline() == (31, 0, 69, 38)  # the centre square of the copy
    expected = Predictor.from_checkpoint(ckpt, device="cpu").predict([str(tmp_path / "panorama.png")])[0]
    assert single["pred"].label == expected.label


def test_grad_cam_greys_the_margins_the_model_never_saw(qtbot, tab, ckpt, tmp_path):
    """The model sees the centre square of a 4:3 photo; the rest must not look like "low attention" (the colour
    map's blue): it is grey, outlined off, and a note says why."""
    import numpy as np

    from gui.image_view import qimage_to_pil

    arr = np.zeros((48, 64, 3), np.uint8)
    arr[..., 0] = 200  # a red picture: blended with the colour map's blue it would be purple, not grey
    arr[16:32, 24:40] = (20, 220, 60)
    Image.fromarray(arr).save(tmp_path / "wide.png")
    tab.set_checkpoint(str(ckpt))
    tab.predict_paths([str(tmp_path / "wide.png")])
    wait_idle(qtbot, tab)
    assert tab.single_result().ok and tab.cam_check.isChecked()
    seen = (8, 0, 56, 48)  # a 32 px model: the shorter side to 32, the centre 32 x 32
    assert tab.image_view.outline() == seen
    assert "cropped away" in tab.cam_note.text()
    cam = np.asarray(qimage_to_pil(tab._single["cam"])).astype(int)
    margins = np.concatenate([cam[:, :8], cam[:, 56:]], axis=1)
    assert (margins.max(axis=2) - margins.min(axis=2)).max() <= 2  # grey: no colour at all
    inside = cam[:, 8:56]
    assert (inside.max(axis=2) - inside.min(axis=2)).max() > 40  # the heat map's colours where the model looked

    tab.cam_check.setChecked(False)  # the photo itself: no outline, no note
    assert tab.image_view.outline() is None and tab.cam_note.text() == ""
    tab.cam_check.setChecked(True)
    assert tab.image_view.outline() == seen

    Image.fromarray(arr[:, 8:56]).save(tmp_path / "square.png")  # all of it seen: nothing to grey or explain
    tab.predict_paths([str(tmp_path / "square.png")])
    wait_idle(qtbot, tab)
    assert tab.image_view.outline() is None and tab.cam_note.text() == ""


@pytest.mark.timeout(240)
def test_back_and_export_refer_to_the_current_job_only(qtbot, tab, ckpt, inputs, tmp_path):
    """One file predicted after a list: no "Back to the list", and Export writes that one answer (an unreadable
    file's error too), never the previous list; a row opened from the list keeps Back and exports the list."""
    import csv

    def exported(name: str) -> list[dict]:
        tab.export_csv(str(tmp_path / name))
        with open(tmp_path / name, newline="") as f:
            return list(csv.DictReader(f))

    images = [str(p) for p in inputs["loose"] + inputs["in_folder"]]
    tab.set_checkpoint(str(ckpt))
    tab.predict_paths(images)
    wait_idle(qtbot, tab)
    assert tab.export_button.isEnabled() and len(exported("list.csv")) == len(images)

    broken = str(inputs["bad"][0])
    tab.predict_paths([broken])
    wait_idle(qtbot, tab)
    assert tab.stack.currentIndex() == 1 and not tab.single_result().ok
    assert tab.class_label.text() == "Unreadable image" and tab.conf_label.text() == tab.single_result().error
    assert not tab.back_button.isVisibleTo(tab)
    assert tab.row_count() == 0 and "many" not in tab._jobs  # the old list is gone, not waiting behind a button
    assert tab.export_button.isEnabled() and "this image" in tab.export_button.toolTip()
    rows = exported("broken.csv")
    assert [(r["source"], r["ok"]) for r in rows] == [(broken, "no")] and rows[0]["error"]

    tab.predict_paths(images)  # a row of a list opened large: Back to it, and Export still writes the list
    wait_idle(qtbot, tab)
    listed = tab.status_label.text()
    assert listed.endswith("classified.")
    tab.show()
    tab.activateWindow()
    tab.table.setFocus()
    qtbot.waitUntil(tab.table.hasFocus)
    tab.table.setCurrentIndex(tab.proxy.index(0, 0))
    qtbot.keyClick(tab.table, Qt.Key.Key_Return)  # the keyboard opens a row as a double-click does
    wait_idle(qtbot, tab)
    assert tab.stack.currentIndex() == 1 and tab.back_button.isVisibleTo(tab)
    assert tab.bars.hasFocus()  # the arrow keys walk its classes next (focus was on Back: Enter went back)
    assert tab.export_button.isEnabled() and len(exported("drill.csv")) == len(images)
    assert tab.status_label.text() != listed  # (the row's answer, then the export's line)
    qtbot.keyClick(tab.image_view, Qt.Key.Key_Escape)  # Esc goes back as the button does
    assert tab.stack.currentIndex() == 2 and tab.row_count() == len(images)
    assert tab.status_label.text() == listed  # the list's line again, not the row's answer

    tab.predict_paths([images[0]])  # one good image on its own: that image, exported alone
    wait_idle(qtbot, tab)
    assert tab.single_result().ok and not tab.back_button.isVisibleTo(tab) and tab.row_count() == 0
    rows = exported("one.csv")
    assert [(r["source"], r["label"]) for r in rows] == [(images[0], tab.single_result().label)]
    tab.topk_spin.setValue(1)  # a re-run classifies the image shown again, not the list that was dropped
    qtbot.waitUntil(tab.is_busy, timeout=5000)
    wait_idle(qtbot, tab)
    assert tab.stack.currentIndex() == 1 and tab.row_count() == 0 and len(tab.single_result().top) == 1

    tab._clear_results("cleared")
    assert not tab.export_button.isEnabled()


@pytest.mark.timeout(240)
def test_back_after_top_k_changed_returns_to_the_row_that_was_opened(qtbot, tab, ckpt, inputs):
    """Top-k changed while a row of a sorted list was open: Back classified the list again into an emptied table
    and came to no row at all (current row -1); untouched, it came back on the row opened."""
    from gui.predict_tab import COL_CONF

    images = [str(p) for p in inputs["loose"] + inputs["in_folder"]]
    tab.set_checkpoint(str(ckpt))
    tab.topk_spin.setValue(3)
    tab.predict_paths(images)
    wait_idle(qtbot, tab)
    tab.table.sortByColumn(COL_CONF, Qt.SortOrder.DescendingOrder)
    tab.show()
    tab.activateWindow()
    tab.table.setFocus()
    qtbot.waitUntil(tab.table.hasFocus)
    tab.table.setCurrentIndex(tab.proxy.index(0, 0))
    opened = tab.proxy.index(0, COL_FILE).data(PATH_ROLE)  # (the top row by confidence, wherever it came in)
    qtbot.keyClick(tab.table, Qt.Key.Key_Return)
    wait_idle(qtbot, tab)
    assert tab.stack.currentIndex() == 1 and tab.file_label.text() == opened
    tab.topk_spin.setValue(2)
    qtbot.waitUntil(lambda: not tab._rerun_timer.isActive(), timeout=5000)  # (then the image is classified again)
    wait_idle(qtbot, tab)
    qtbot.keyClick(tab.image_view, Qt.Key.Key_Escape)
    wait_idle(qtbot, tab)
    assert tab.stack.currentIndex() == 2 and all(len(r.top) == 2 for r in tab.results())
    current = tab.table.currentIndex()
    assert current.isValid() and current.siblingAtColumn(COL_FILE).data(PATH_ROLE) == opened
    assert tab.table.selectionModel().isRowSelected(current.row())


@pytest.mark.timeout(180)
def test_a_run_just_trained_becomes_the_model_unless_one_was_chosen(qtbot, tab, tmp_path, inputs):
    """After a run on the open data set the earlier answers' model stayed: a shapes image came back "leaf 79.7%"
    from the last data set's model while the new run sat in the list."""
    runs, photos = tmp_path / "runs", tmp_path / "photos"
    photos.mkdir()

    def run(name: str, started: int, seed: int, data: Path = photos) -> Path:
        d = runs / name
        d.mkdir(parents=True)
        cfg = {"data": {"root": str(data)}, "model": {"arch": "resnext11_2x4d"}}
        (d / "config.json").write_text(json.dumps(cfg))
        (d / "status.json").write_text(json.dumps({"status": "completed", "started": started}))
        make_checkpoint(d / "best.pt", seed=seed)
        return d

    old = run("20240101-000000-a-photos", 1_700_000_000, 0)
    tab.refresh_models()
    tab.set_data_folder(str(photos))
    tab.predict_paths([str(inputs["loose"][0])])
    wait_idle(qtbot, tab)
    assert tab._jobs["one"][3] == str(old / "best.pt")
    new = run("20240102-000000-a-photos", 1_750_000_000, 1)
    tab.new_run_trained(str(new))
    wait_idle(qtbot, tab)
    assert tab.checkpoint() == str(new / "best.pt") and tab._jobs["one"][3] == str(new / "best.pt")  # again
    make_checkpoint(new / "best.pt", seed=5)  # trained further (Train more epochs): new weights, the same file
    shown = tab._jobs["one"]
    tab.new_run_trained(str(new))
    wait_idle(qtbot, tab)
    assert tab._jobs["one"] is not shown  # classified again (the answers were the old weights')
    run("20240102-050000-a-shapes", 1_755_000_000, 3, data=tmp_path / "shapes")
    tab.set_data_folder(str(tmp_path / "shapes"))  # (another data set opened: the answers on screen keep theirs)
    elsewhere = run("20240102-100000-a-other", 1_760_000_000, 4, data=tmp_path / "other")  # (a resumed old run)
    tab.new_run_trained(str(elsewhere))
    assert tab.checkpoint() == str(new / "best.pt")  # another folder's run: the model of the answers stays
    tab.model_combo.setCurrentIndex(tab.model_combo.findData(str(old / "best.pt")))
    tab.model_combo.activated.emit(tab.model_combo.currentIndex())  # the user's choice: it stays
    wait_idle(qtbot, tab)
    tab.new_run_trained(str(run("20240103-000000-a-photos", 1_800_000_000, 2)))
    assert tab.checkpoint() == str(old / "best.pt")


def test_the_csv_export_is_offered_beside_the_images_folder_not_in_it(qtbot, tab, ckpt, inputs, monkeypatch):
    """In the folder, the CSV was an "other file" of the next prediction over it."""
    from PySide6.QtWidgets import QFileDialog

    from gui.app import settings

    settings().remove("dialogs/exports")
    tab.set_checkpoint(str(ckpt))
    tab.predict_paths([str(p) for p in inputs["folder"]])
    wait_idle(qtbot, tab)
    offered = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda _p, _t, path, _f: offered.append(path) or ("", ""))
    tab._export_csv()
    folder = inputs["folder"][0]
    assert tab.images_folder() == str(folder) and offered == [str(folder.parent / "predictions.csv")]
    tab.predict_paths([str(p) for p in inputs["loose"]])  # loose files: their own folder (its parent may be /home)
    wait_idle(qtbot, tab)
    tab._export_csv()
    assert offered[-1] == str(inputs["loose"][0].parent / "predictions.csv")


def test_the_progress_bar_keeps_up_with_the_rows_shown(qtbot, tab):
    """The worker runs ahead of its queued progress signals: the bar read "1 / 600" beside "13 files"."""
    from core.predict import Prediction

    tab.progress.setVisible(True)
    for i in range(13):
        tab._queue.append(
            ("pred", Prediction(f"/x/{i}.png", True, top=[("cat", 0.9)], label="cat", confidence=0.9), None, None)
        )
    tab._on_many_progress(1, 600)
    assert tab.row_count() == 13 and tab.progress.value() == 13 and tab.progress.maximum() == 600


def test_the_files_a_folder_held_that_are_not_images_are_named():
    from gui.predict_tab import IGNORED_TIP_MAX, _ignored_tip, _ignored_words

    four = ["a/x.txt", "b/y.md", "c/z.doc", "d/w.csv"]
    assert _ignored_words(four) == "; 4 other files ignored (not images): x.txt, y.md, z.doc, …"
    assert _ignored_words(four[:1]) == "; 1 other file ignored (not an image): x.txt" and _ignored_words([]) == ""
    many = [f"f/{i}.txt" for i in range(IGNORED_TIP_MAX + 2)]
    tip = _ignored_tip(many)
    assert tip.splitlines()[1] == "f/0.txt" and tip.endswith("… and 2 more") and _ignored_tip([]) is None


def _gated(monkeypatch, name: str, honour_stop: bool = True):
    """Hold the tab's worker function `name` until the returned event is set (the job stays running meanwhile).
    honour_stop=False: the job goes on as if its batch were already on its way when it was cancelled."""
    import functools
    import threading

    import gui.predict_tab as predict_tab

    real = getattr(predict_tab, name)
    gate = threading.Event()

    @functools.wraps(real)  # (its signature: the worker passes the keywords it takes)
    def held(*args, **kwargs):
        assert gate.wait(60)
        if not honour_stop:
            kwargs["stop"] = None
        return real(*args, **kwargs)

    monkeypatch.setattr(predict_tab, name, held)
    return gate


@pytest.mark.timeout(120)
def test_a_model_or_top_k_changed_while_the_first_image_runs_classifies_it_again(
    qtbot, tab, ckpt, inputs, tmp_path, monkeypatch
):
    """The drop page shows until the first image's answer comes: a model chosen meanwhile left the old model's
    answer (its classes, its top-k) beside the new model's name, and Export wrote it."""
    other = make_checkpoint(tmp_path / "other" / "best.pt", classes=["a", "b", "c", "d"])
    tab.set_checkpoint(str(other))
    tab.set_checkpoint(str(ckpt))
    wait_idle(qtbot, tab)
    gate = _gated(monkeypatch, "_predict_one")
    tab.predict_paths([str(inputs["loose"][0])])
    running = tab.is_busy() and tab.stack.currentIndex() == 0
    index = tab.model_combo.findData(str(other))
    tab.model_combo.setCurrentIndex(index)
    tab.model_combo.activated.emit(index)  # chosen in the list
    gate.set()
    wait_idle(qtbot, tab)
    assert running
    assert tab.stack.currentIndex() == 1 and tab._single["checkpoint"] == str(other)
    assert {n for n, _ in tab.bars.items()} <= {"a", "b", "c", "d"} and len(tab.bars.items()) == 4

    gate = _gated(monkeypatch, "_predict_one")  # Top-k changed while a new image runs
    tab.predict_paths([str(inputs["loose"][1])])
    tab.topk_spin.setValue(2)
    tab._rerun_timer.timeout.emit()  # (the pause for more clicks, over)
    gate.set()
    wait_idle(qtbot, tab)
    assert len(tab.bars.items()) == 2 and tab._single["name"] == str(inputs["loose"][1])


@pytest.mark.timeout(120)
def test_a_model_set_by_another_tab_while_images_run_leaves_the_page_clear(
    qtbot, tab, ckpt, inputs, tmp_path, monkeypatch
):
    """ "Predict with this model" while a folder was being classified: the cancelled job's rows, still coming in,
    filled the cleared table again with the old model's answers and said "Cancelled after …"."""
    other = make_checkpoint(tmp_path / "other" / "best.pt", seed=3)
    tab.set_checkpoint(str(ckpt))
    wait_idle(qtbot, tab)
    gate = _gated(monkeypatch, "_predict_many", honour_stop=False)
    finished = []
    tab.predictions_finished.connect(finished.append)
    tab.predict_paths([str(p) for p in inputs["loose"] + inputs["in_folder"]])
    running = tab.is_busy() and tab.stack.currentIndex() == 2
    tab.set_checkpoint(str(other))  # as the window's "Predict with this model" does
    gate.set()
    wait_idle(qtbot, tab)
    assert running
    assert tab.row_count() == 0 and tab.results() == [] and tab.stack.currentIndex() == 0
    assert tab.status_label.text().startswith(f"Model: {other}") and not finished
    assert tab.mode_combo.count() == 2  # no class of the old job's answers to filter by

    gate = _gated(monkeypatch, "_predict_one", honour_stop=False)  # and the first image of a drop, not yet shown
    tab.predict_paths([str(inputs["loose"][0])])
    tab.set_checkpoint(str(ckpt))
    gate.set()
    wait_idle(qtbot, tab)
    assert tab.stack.currentIndex() == 0 and tab.single_result() is None and not finished


@pytest.mark.timeout(60)
def test_arrow_keys_and_the_wheel_on_the_model_list_open_no_file_dialog(qtbot, tab, ckpt, tmp_path, monkeypatch):
    """ "Choose checkpoint file…" is the list's last item: arrowing or wheeling onto it opened a file dialog, and a
    wheel turned over the tab's scrolling page changed the model."""
    from PySide6.QtCore import QPoint
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication, QFileDialog

    from gui.predict_tab import CHOOSE_FILE

    opened = []
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (opened.append(a), ("", ""))[1])
    tab.show()
    tab.set_checkpoint(str(ckpt))
    wait_idle(qtbot, tab)
    combo = tab.model_combo
    assert combo.itemText(combo.count() - 1) == CHOOSE_FILE and combo.currentIndex() == combo.count() - 2
    before = combo.currentIndex()

    def wheel(down: bool) -> None:
        delta = QPoint(0, -120 if down else 120)
        event = QWheelEvent(
            QPointF(5, 5), QPointF(combo.mapToGlobal(QPoint(5, 5))), QPoint(), delta,
            Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False,
        )  # fmt: skip
        QApplication.sendEvent(combo, event)

    wheel(down=True)  # not focused: the page scrolls, the model stays
    assert combo.currentIndex() == before and not opened
    combo.setFocus()
    for _ in range(3):
        qtbot.keyClick(combo, Qt.Key.Key_Down)
        wheel(down=True)
    assert not opened and combo.currentText() != CHOOSE_FILE and combo.currentIndex() == before
    index = combo.findText(CHOOSE_FILE)  # chosen from the open list: the dialog
    combo.setCurrentIndex(index)
    combo.activated.emit(index)
    assert len(opened) == 1 and combo.currentIndex() == before


@pytest.mark.timeout(180)
def test_the_show_choice_stays_when_the_list_is_classified_again(qtbot, tab, ckpt, inputs, tmp_path):
    """Top-k changed with "Problems only" chosen: the list came back on All results, the filter text kept, the
    count line meaning something else unsaid. A class the new model does not know goes back to All results."""
    tab.set_checkpoint(str(ckpt))
    tab.predict_paths([str(p) for p in inputs["loose"] + inputs["in_folder"] + inputs["bad"]])
    wait_idle(qtbot, tab)
    tab.mode_combo.setCurrentText(ERRORS_ONLY)
    assert tab.visible_row_count() == 1
    tab.topk_spin.setValue(2)
    tab._rerun_timer.timeout.emit()
    wait_idle(qtbot, tab)
    assert tab.results()[0].top and len(tab.results()[0].top) == 2  # classified again
    assert tab.mode_combo.currentText() == ERRORS_ONLY and tab.visible_row_count() == 1
    assert "showing 1" in tab.count_label.text()

    tab.mode_combo.setCurrentText("dog")
    shown = tab.visible_row_count()
    tab.set_checkpoint(str(make_checkpoint(tmp_path / "b" / "best.pt", seed=5)), rerun=True)  # same classes
    wait_idle(qtbot, tab)
    assert tab.mode_combo.currentText() == "dog"
    assert tab.visible_row_count() == sum(1 for r in tab.results() if r.label == "dog") != tab.row_count() or shown
    other = make_checkpoint(tmp_path / "c" / "best.pt", classes=["p", "q"])
    tab.set_checkpoint(str(other), rerun=True)
    wait_idle(qtbot, tab)
    assert tab.mode_combo.currentText() == ALL_RESULTS and tab.mode_combo.findText("dog") < 0
    assert tab.visible_row_count() == tab.row_count()


@pytest.mark.timeout(120)
def test_top_k_comes_back_to_its_default_after_a_model_with_fewer_classes(qtbot, tab, ckpt, inputs, tmp_path):
    """Never touched, Top-k showed 3 for a 30-class model once a 3-class one had cut it to 3."""
    tab.set_checkpoint(str(ckpt))
    wait_idle(qtbot, tab)
    assert tab.topk_spin.value() == 3
    tab.set_checkpoint(str(make_checkpoint(tmp_path / "b" / "best.pt", classes=[f"c{i}" for i in range(8)])))
    wait_idle(qtbot, tab)
    assert tab.topk_spin.maximum() == 8 and tab.topk_spin.value() == 5


@pytest.mark.timeout(120)
def test_the_file_column_sorts_by_the_names_shown_with_numbers_in_order(qtbot, tab, ckpt, tmp_path):
    """It sorted by the whole path (a loose file's folder before the names shown) and 10.png before 2.png."""
    for name in ("2.png", "10.png", "1.png"):
        make_image(tmp_path / "photos" / name, len(name))
    loose = make_image(tmp_path / "aaa" / "zeta.png", 4)
    tab.set_checkpoint(str(ckpt))
    tab.predict_paths([str(tmp_path / "photos"), str(loose)])
    wait_idle(qtbot, tab)
    tab.table.sortByColumn(COL_FILE, Qt.SortOrder.AscendingOrder)
    shown = [tab.proxy.index(r, COL_FILE).data() for r in range(tab.proxy.rowCount())]
    assert [Path(s).as_posix() for s in shown] == ["aaa/zeta.png", "photos/1.png", "photos/2.png", "photos/10.png"]


@pytest.mark.timeout(120)
def test_many_bars_scroll_in_their_pane_and_a_long_status_wraps(qtbot, tab, tmp_path, inputs):
    """Top-k 20 drew the bars over the Grad-CAM box, or made the whole tab taller than the window; a refused
    model file's message was cut at the window's edge before it said which model is still in use."""
    from PySide6.QtWidgets import QScrollArea

    many = make_checkpoint(tmp_path / "many.pt", classes=[f"class_{i:02d}" for i in range(30)])
    tab.show()
    tab.topk_spin.setValue(20)
    tab.set_checkpoint(str(many))
    wait_idle(qtbot, tab)
    tab.predict_paths([str(inputs["loose"][0])])
    wait_idle(qtbot, tab)
    assert len(tab.bars.items()) == 20
    assert tab.minimumSizeHint().height() < tab.height()  # the tab fits its 700 px
    assert tab.cam_check.geometry().top() >= tab.bars.geometry().bottom()  # below the bars, not under them
    pane = tab.bars.parentWidget().parentWidget().parentWidget()
    assert isinstance(pane, QScrollArea) and pane.verticalScrollBar().maximum() > 0
    pane.ensureWidgetVisible(tab.cam_check)
    assert pane.verticalScrollBar().value() > 0

    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00not a checkpoint" * 4)
    tab.set_checkpoint(str(junk))
    said = tab.status_label.text()
    assert "Not taken as the model: the model is still" in said
    qtbot.waitUntil(lambda: tab.status_label.height() >= tab.status_label.heightForWidth(tab.status_label.width()))
    assert tab.status_label.heightForWidth(tab.status_label.width()) > tab.status_label.fontMetrics().height() * 1.5


@pytest.mark.timeout(120)
def test_a_model_without_grad_cam_offers_no_click_for_one(qtbot, tab, ckpt, inputs, monkeypatch):
    """Its note said Grad-CAM was unavailable, while the title still said "click one for its Grad-CAM" and a click
    did nothing."""
    import gui.predict_tab as predict_tab

    monkeypatch.setattr(
        predict_tab, "cam_overlay", lambda *a, **k: {"cam": None, "seen": None, "cam_error": "Grad-CAM unavailable: x"}
    )
    tab.set_checkpoint(str(ckpt))
    tab.predict_paths([str(inputs["loose"][0])])
    wait_idle(qtbot, tab)
    assert tab.top_title.text() == "Most likely classes" and tab.bars.click_hint == ""
    assert tab.cam_note.text() == "Grad-CAM unavailable: x"
    other = next(n for n, _ in tab.bars.items() if n != tab.single_result().label)
    tab.bars.clicked.emit(other)
    assert tab._cam_worker is None and tab.cam_note.text() == "Grad-CAM unavailable: x"
    monkeypatch.undo()
    tab.predict_paths([str(inputs["loose"][1])])  # a model with one: offered again
    wait_idle(qtbot, tab)
    assert "click one for its Grad-CAM" in tab.top_title.text() and tab.bars.click_hint


def test_no_unnamed_stop_for_tab_around_the_side_pane(tab):
    """The side pane's scroll area was a stop of its own in the Tab chain: unnamed, and with nothing on screen to
    show where the focus was (the widgets in it take the focus, and the pane scrolls to them)."""
    from PySide6.QtWidgets import QScrollArea

    stops = [
        a
        for a in tab.findChildren(QScrollArea)
        if a.focusPolicy() & Qt.FocusPolicy.TabFocus and not a.accessibleName() and type(a) is QScrollArea
    ]
    assert stops == []
