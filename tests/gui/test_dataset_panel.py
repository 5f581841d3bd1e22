"""Dataset panel: scanning in the background, class table, thumbnails, problems, split and augmentation preview."""

from __future__ import annotations

import os
import shutil

import pytest
from PIL import Image
from PySide6.QtCore import Qt

from gui.dataset_panel import DatasetPanel
from tests.helpers import tab_chain


@pytest.fixture
def panel(qtbot):
    p = DatasetPanel()
    qtbot.addWidget(p)
    p.resize(1200, 700)
    p.show()
    yield p
    p.cancel_all()


def _load(qtbot, panel, folder, timeout=60000):
    with qtbot.waitSignal(panel.scan_finished, timeout=timeout) as blocker:
        panel.load_folder(str(folder))
    return blocker.args[0]


def _table_counts(panel) -> dict[str, int]:
    t = panel.class_table
    return {t.item(r, 0).text(): int(t.item(r, 1).text()) for r in range(t.rowCount())}


@pytest.mark.timeout(180)
def test_bundled_sample_fills_class_table_with_scan_counts(qtbot, panel, sample_path):
    from core.data import scan

    index = _load(qtbot, panel, sample_path, timeout=150000)
    assert index is not None, panel.banner.text()
    assert _table_counts(panel) == scan(sample_path).counts()
    assert panel.index is index
    assert not panel.banner.isVisible()


def test_the_settings_column_fits_a_720_pixel_window_with_the_preview_in_sight(qtbot, panel, tiny_dataset):
    """In a 1280 x 720 window the panel gets 1280 x 641; its settings column scrolled, the preview half below."""
    from PySide6.QtWidgets import QScrollArea

    from gui.app import load_stylesheet

    panel.setStyleSheet(load_stylesheet())  # the app's paddings and fonts
    panel.resize(1280, 641)
    _load(qtbot, panel, tiny_dataset)
    panel.augment_combo.setCurrentText("standard")
    column = panel.preview_grid.parentWidget()
    while not isinstance(column, QScrollArea):
        column = column.parentWidget()
    qtbot.waitUntil(lambda: panel.preview_grid.count() > 0, timeout=30000)
    assert column.verticalScrollBar().maximum() == 0
    grid = panel.preview_grid
    tile_row = grid.gridSize().height()
    assert grid.viewport().height() >= tile_row
    assert grid.sizeHint().height() - (grid.height() - grid.viewport().height()) >= tile_row  # (frame and padding)
    shown = panel.preview_grid.mapTo(column.viewport(), panel.preview_grid.rect().bottomLeft())
    assert shown.y() <= column.viewport().height()


def test_tiny_dataset_counts_split_and_config(qtbot, panel, tiny_dataset):
    index = _load(qtbot, panel, tiny_dataset)
    assert _table_counts(panel) == {"blue": 12, "green": 12, "red": 12}
    panel.val_spin.setValue(25)
    panel.test_spin.setValue(0)
    panel.size_spin.setValue(32)
    panel.augment_combo.setCurrentText("light")
    cfg = panel.data_config()
    assert (cfg.root, cfg.val_split, cfg.image_size, cfg.augment) == (index.root, 0.25, 32, "light")
    assert panel.split_counts.text().startswith("train 27 · val 9")


def test_a_folder_path_typed_or_pasted_in_the_folder_box_opens_on_enter(qtbot, panel, tiny_dataset, tmp_path):
    """The box was a list of recent folders only: a path copied from a file manager could not be pasted."""
    from PySide6.QtCore import QEvent, Qt
    from PySide6.QtGui import QFocusEvent
    from PySide6.QtWidgets import QApplication

    edit = panel.recent_combo.lineEdit()
    edit.setText(str(tmp_path / "nowhere"))
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    assert panel.banner.text() == f"{tmp_path / 'nowhere'}: no such folder" and panel.index is None
    edit.setText(f'"{tiny_dataset}"')  # (Windows' "Copy as path" quotes it)
    with qtbot.waitSignal(panel.scan_finished, timeout=60000):
        qtbot.keyClick(edit, Qt.Key.Key_Return)
    assert panel.index is not None and panel.index.root == str(tiny_dataset)
    assert panel.recent_combo.currentText() == str(tiny_dataset)

    # a path refused does not stay in the box once it is left (or on Escape): it read as the folder open
    for leave in ("escape", "focus"):
        edit.setText(str(tmp_path / "nowhere"))
        qtbot.keyClick(edit, Qt.Key.Key_Return)
        # what is still open, and trains on Start, is said
        assert panel.banner.text() == f"{tmp_path / 'nowhere'}: no such folder. Still open: {tiny_dataset}"
        assert edit.text() == str(tmp_path / "nowhere")
        if leave == "escape":
            qtbot.keyClick(edit, Qt.Key.Key_Escape)
        else:
            edit.setText(str(tmp_path / "nowhere"))
            QApplication.sendEvent(edit, QFocusEvent(QEvent.Type.FocusOut, Qt.FocusReason.TabFocusReason))
        assert panel.recent_combo.currentText() == str(tiny_dataset) and panel.index.root == str(tiny_dataset)
    edit.setText(str(tmp_path / "half typ"))  # the popup of recent folders opening keeps what is typed …
    QApplication.sendEvent(edit, QFocusEvent(QEvent.Type.FocusOut, Qt.FocusReason.PopupFocusReason))
    assert edit.text() == str(tmp_path / "half typ")
    # … and so does Alt+Tab to another program (to look up the folder's name)
    QApplication.sendEvent(edit, QFocusEvent(QEvent.Type.FocusOut, Qt.FocusReason.ActiveWindowFocusReason))
    assert edit.text() == str(tmp_path / "half typ")
    from PySide6.QtCore import QUrl

    other = shutil.copytree(tiny_dataset, tmp_path / "other set")  # a file manager's copy: "file:///…/other%20set"
    edit.setText(QUrl.fromLocalFile(str(other)).toString())
    with qtbot.waitSignal(panel.scan_finished, timeout=60000):
        qtbot.keyClick(edit, Qt.Key.Key_Return)
    assert panel.index.root == str(other)


def test_a_rescan_keeps_the_class_looked_at(qtbot, panel, tiny_dataset, tmp_path):
    """Rescan went back to the first class; another folder starts at its first."""
    _load(qtbot, panel, tiny_dataset)
    panel.class_table.selectRow(2)
    with qtbot.waitSignal(panel.scan_finished, timeout=60000):
        panel.rescan_button.click()
    assert panel.selected_class() == 2 and panel.index.classes[2] == "red"
    other = tmp_path / "other"
    for name in ("apple", "red"):
        (other / name).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (8, 8), (i * 90, 10, 10)).save(other / name / f"{i}.png")
    with qtbot.waitSignal(panel.scan_finished, timeout=60000):
        panel.load_folder(str(other))
    assert panel.selected_class() == 0


def test_a_split_that_leaves_too_few_training_images_says_so_beside_the_counts(qtbot, panel, tmp_path, dataset_factory):
    """A train/ folder of one image: "train 1" came with no word until Start refused it. (Two images, the same
    file in two classes, at 50 % for validation went to validation together, "train 0"; a group of copies larger
    than the share asks for now stays in train.)"""
    root = dataset_factory(tmp_path / "d", {"a": 1, "b": 1})
    shutil.copy(root / "a" / "a_000.jpg", root / "b" / "b_000.jpg")
    _load(qtbot, panel, root)
    panel.test_spin.setValue(0)
    panel.val_spin.setValue(50)
    assert panel.split_counts.text().startswith("train 2 · val 0")
    split = dataset_factory(tmp_path / "s" / "val", {"a": 2, "b": 2}).parent
    (split / "train" / "a").mkdir(parents=True)
    shutil.copy(split / "val" / "a" / "a_000.jpg", split / "train" / "a" / "one.jpg")
    _load(qtbot, panel, split)
    assert panel.split_counts.text().startswith("train 1 · val 4")
    assert "too few to train (at least 2): add images" in panel.split_counts.text()


def test_a_lone_train_folder_read_as_a_class_is_said_in_the_summary(qtbot, panel, tmp_path, dataset_factory):
    root = dataset_factory(tmp_path / "d", {"cat": 3, "dog": 3, "train": 3})
    _load(qtbot, panel, root)
    assert "train/ is read as a class beside the others" in panel.summary_label.text()
    assert panel.recent_combo.currentText() == str(root) and str(root) not in panel.summary_label.text()  # once
    box = panel.preview_next.parentWidget().layout()  # "Another image" above the preview, in sight on 720 px
    order = [box.itemAt(i).widget() or box.itemAt(i).layout() for i in range(box.count())]
    assert order.index(panel.preview_grid) == len(order) - 1


def test_bad_files_and_duplicates_are_listed(qtbot, panel, tmp_path, dataset_factory):
    root = dataset_factory(tmp_path / "d", {"a": 4, "b": 4})
    (root / "a" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    shutil.copy(root / "b" / "b_000.jpg", root / "b" / "copy_of_b0.jpg")
    _load(qtbot, panel, root)
    assert panel.bad_table.rowCount() == 1
    assert "broken.jpg" in panel.bad_table.item(0, 0).text()
    assert panel.bad_table.item(0, 1).text()  # the reason
    show = panel.bad_table.cellWidget(0, 2)
    assert show.text() == "Show"
    # every row's button was "Show" alone to a screen reader, with the same tooltip: they name their file now
    assert "broken.jpg" in show.accessibleName() and "broken.jpg" in show.toolTip()
    assert panel.dup_list.count() == 1
    assert "copy_of_b0.jpg" in panel.dup_list.item(0).text()
    assert panel.middle_tabs.tabText(1) == "Problems (2)"
    assert panel.bad_label.text() == "Left out of training: 1 unusable file:"
    assert (
        "1 unusable file</span> ·" in panel.summary_label.text()
        and "1 group of identical files" in panel.summary_label.text()
    )
    assert "different classes" not in panel.summary_label.text()  # both copies are b's
    shutil.copy(root / "b" / "b_001.jpg", root / "a" / "looks_like_a.jpg")  # the same image under two labels
    _load(qtbot, panel, root)
    assert "1 of them in different classes (one image, two labels)" in panel.summary_label.text()
    texts = [panel.dup_list.item(i).text() for i in range(panel.dup_list.count())]
    assert any("in different classes:" in t and "looks_like_a.jpg" in t for t in texts), texts
    assert panel.dup_label.text().startswith("2 groups of identical files")
    assert not panel.bad_table.isHidden() and not panel.dup_list.isHidden()
    (root / "a" / "notes.txt").write_text("where these came from")
    _load(qtbot, panel, root)
    rows = {panel.bad_table.item(r, 0).text(): panel.bad_table.item(r, 1).text() for r in range(2)}
    assert rows[os.path.join("a", "notes.txt")] == "not an image file type (ignored)"  # named, not skipped
    assert "1 other file ignored (not images)" in panel.summary_label.text()
    assert panel.middle_tabs.tabText(1) == "Problems (4)"
    assert panel.bad_label.text() == "Left out of training: 1 unusable file, 1 other file ignored (not images):"
    # good photos beside the class folders are misplaced, not "unusable" (they were counted as such, in red)
    for name in ("left.jpg", "right.jpg"):
        shutil.copy(root / "a" / "a_000.jpg", root / name)
    _load(qtbot, panel, root)
    assert panel.bad_label.text() == (
        "Left out of training: 1 unusable file, 2 images outside the class folders, 1 other file ignored (not images):"
    )
    assert "2 images outside the class folders</span>" in panel.summary_label.text()
    (root / "a" / "IMG_0001.HEIC").write_bytes(b"an iPhone photo")  # a photo, of a type not read: not "not images"
    _load(qtbot, panel, root)
    assert panel.bad_label.text() == (
        "Left out of training: 1 unusable file, 2 images outside the class folders, 1 photo of a type not read "
        "(ignored), 1 other file ignored (not images):"
    )

    _load(qtbot, panel, dataset_factory(tmp_path / "clean", {"a": 3, "b": 3}))
    assert panel.middle_tabs.tabText(1) == "Problems"  # nothing to list: sentences, not two empty tables
    assert panel.bad_label.text() == "Every image file could be read: none is left out."
    assert panel.dup_label.text() == "No identical files."
    assert panel.bad_table.isHidden() and panel.dup_list.isHidden()


def test_data_error_is_shown_in_the_panel(qtbot, panel, tmp_path):
    root = tmp_path / "none"
    (root / "cat").mkdir(parents=True)  # a class folder, empty
    result = _load(qtbot, panel, root)
    assert result is None and panel.index is None
    assert panel.banner.isVisible() and panel.banner.kind == "error"
    assert "no readable images in 1 class folder" in panel.banner.text()
    assert panel.class_table.rowCount() == 0


def test_a_folder_of_one_class_is_shown_with_why_it_cannot_train(qtbot, panel, tmp_path, dataset_factory):
    """A folder holding one class showed the error above an empty table: which class, how many images and what
    was wrong with the other folders were not to be seen."""
    root = dataset_factory(tmp_path / "one", {"only": 3})
    (root / "dog").mkdir()
    (root / "dog" / "broken.jpg").write_bytes(b"not a jpeg")
    index = _load(qtbot, panel, root)
    assert index is not None and index.classes == ["only"]
    assert panel.banner.isVisible() and panel.banner.kind == "error"
    assert "only one class with images ('only'); at least two are needed to train" in panel.banner.toolTip()
    assert "only one class" in panel.last_error and "Rescan" in panel.last_error
    assert _table_counts(panel) == {"only": 3}
    assert "<b>1</b> class " in panel.summary_label.text()
    assert "no usable image: dog" in panel.summary_label.text() and "empty" not in panel.summary_label.text()
    assert panel.middle_tabs.tabText(1) == "Problems (1)"  # dog/broken.jpg, and why
    qtbot.waitUntil(lambda: panel.thumbnails_loaded == 3, timeout=60000)
    assert str(root) not in panel.recent_folders()  # (not offered again as a folder to train on)


def test_a_cancelled_scan_keeps_why_the_open_one_class_folder_cannot_train(qtbot, panel, tmp_path, dataset_factory):
    """The scan of another folder cancelled: the one-class set stayed open, but why it cannot train was forgotten
    (Start then said "Open a data set first")."""
    import threading

    import gui.dataset_panel as dp

    root = dataset_factory(tmp_path / "one", {"only": 3})
    _load(qtbot, panel, root)
    reason = panel.last_error
    assert "only one class" in reason
    real, started = dp._scan, threading.Event()

    def slow_scan(folder, progress=None, stop=None):
        from core.data import DataError

        started.set()
        while not stop.stopped:
            stop.wait_if_paused(0.01)
        raise DataError("scan cancelled")

    dp._scan = slow_scan
    try:
        with qtbot.waitSignal(panel.scan_finished, timeout=20000):
            panel.load_folder(str(tmp_path))
            qtbot.waitUntil(started.is_set)
            panel.cancel_button.click()
    finally:
        dp._scan = real
    assert panel.index is not None and panel.index.classes == ["only"] and panel.last_error == reason
    assert panel.training_problem() == reason


def test_missing_folder_is_an_error_not_a_crash(qtbot, panel, tmp_path, tiny_dataset):
    assert _load(qtbot, panel, tiny_dataset) is not None
    panel.class_table.selectRow(0)
    qtbot.waitUntil(lambda: "as training sees it" in panel.preview_label.toolTip(), timeout=60000)
    said = []
    panel.status_message.connect(said.append)
    assert _load(qtbot, panel, tmp_path / "nope") is None
    assert "no such folder" in panel.last_error
    # the status bar no longer says "Opened" the folder before (beside a banner saying this one is missing)
    assert said == [f"Scanning {tmp_path / 'nope'} …", f"Could not open {tmp_path / 'nope'}"]
    # nothing of the previous folder is left on screen
    assert panel.class_table.rowCount() == 0 and panel.thumb_grid.count() == 0
    assert panel.thumb_label.text() == "" and panel.preview_label.text() == "" and not panel.preview_label.toolTip()


def test_cancel_scan(qtbot, panel, tmp_path, monkeypatch):
    import gui.dataset_panel as dp

    def slow_scan(folder, progress=None, stop=None):
        from core.data import DataError

        while not stop.stopped:
            stop.wait_if_paused(0.01)
            progress(1, 10)
            import time

            time.sleep(0.01)
        raise DataError("stopped")  # (the word "cancelled" below is the panel's own)

    monkeypatch.setattr(dp, "_scan", slow_scan)
    with qtbot.waitSignal(panel.scan_finished, timeout=20000) as blocker:
        panel.load_folder(str(tmp_path))
        qtbot.waitUntil(lambda: panel.scan_row.isVisible())
        assert panel.is_scanning()
        assert panel.recent_combo.currentData() == str(tmp_path)  # the folder box names what is being scanned
        panel.cancel_button.click()
    assert blocker.args[0] is None
    assert panel.banner.kind == "info" and panel.banner.text() == f"Scan of {tmp_path} cancelled."
    assert not panel.is_scanning()


def test_cancelling_the_scan_of_another_folder_keeps_the_open_data_set(
    qtbot, panel, tiny_dataset, tmp_path, monkeypatch
):
    """The panel emptied to "no data set loaded" although the set open before had not changed."""
    import gui.dataset_panel as dp

    _load(qtbot, panel, tiny_dataset)
    before = panel.index
    rows = panel.class_table.rowCount()

    def slow_scan(folder, progress=None, stop=None):
        from core.data import DataError

        while not stop.stopped:
            stop.wait_if_paused(0.01)
        raise DataError("scan cancelled")

    monkeypatch.setattr(dp, "_scan", slow_scan)
    changes = []
    panel.index_changed.connect(changes.append)
    with qtbot.waitSignal(panel.scan_finished, timeout=20000) as blocker:
        panel.load_folder(str(tmp_path))
        qtbot.waitUntil(lambda: panel.scan_row.isVisible())
        panel.cancel_button.click()
    assert blocker.args[0] is before and panel.index is before and changes == []
    assert panel.class_table.rowCount() == rows and panel.folder == before.root
    assert panel.recent_combo.currentData() == before.root
    assert f"{before.root} is still open" in panel.banner.toolTip() + panel.banner.text()


def test_thumbnails_load_for_the_selected_class_only(qtbot, panel, tmp_path, dataset_factory):
    root = dataset_factory(tmp_path / "t", {"a": 5, "b": 9})
    _load(qtbot, panel, root)
    panel.class_table.selectRow(1)
    assert panel.thumb_grid.count() == 9
    qtbot.waitUntil(lambda: panel.thumbnails_loaded == 9, timeout=20000)
    assert all("b_" in panel.thumb_grid.item(i).text() for i in range(9))
    revealed = []
    panel.reveal = revealed.append  # (a file manager otherwise)
    panel.thumb_grid.setCurrentRow(2)
    qtbot.keyClick(panel.thumb_grid, Qt.Key.Key_Return)  # Enter does what a double-click does
    assert revealed == [panel.thumb_grid.item(2).toolTip()] and "b_" in revealed[0]


def test_thumbnails_are_read_as_training_reads_the_images(qtbot, panel, tmp_path, dataset_factory):
    """Qt's reader, which the tiles used, left them blank for a 2 x 200 strip, a name that is not UTF-8 and AVIF,
    and showed a PNG turned by its EXIF orientation unturned, while training, Predict and Grad-CAM turn it."""
    from PIL import features
    from PySide6.QtCore import QSize

    root = dataset_factory(tmp_path / "odd", {"a": 1, "b": 2})
    wide = Image.new("RGB", (64, 40), (200, 30, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # (turned a quarter: a portrait picture)
    wide.save(root / "a" / "turned.png", exif=exif)
    Image.new("RGB", (2, 200), (30, 30, 200)).save(root / "a" / "strip.png")
    odd_name = os.fsdecode(b"caf\xe9.png")  # (Latin-1 bytes: no UTF-8 name)
    wide.save(root / "a" / odd_name)
    if features.check("avif"):
        wide.save(root / "a" / "photo.avif")
    _load(qtbot, panel, root)
    panel.class_table.selectRow(0)
    count = panel.thumb_grid.count()
    assert count == (5 if features.check("avif") else 4)
    qtbot.waitUntil(lambda: panel.thumbnails_loaded == count, timeout=20000)
    (turned,) = [panel.thumb_grid.item(i) for i in range(count) if panel.thumb_grid.item(i).text() == "turned.png"]
    tile = turned.icon().pixmap(QSize(72, 72), 1.0).toImage()
    assert tile.pixelColor(36, 2).alpha() == 255 and tile.pixelColor(2, 36).alpha() == 0  # upright: tall


def test_thumbnails_of_a_split_folder_are_said_in_their_splits_order(qtbot, panel, tmp_path, dataset_factory):
    """A train/val/test folder whose splits name their files alike showed "a_000.jpg" once for each split, with
    nothing to tell which was which: the label says how many of each, in their order; a sub-folder is named."""
    for split, n in (("train", 4), ("val", 2)):
        dataset_factory(tmp_path / "tv" / split, {"a": n, "b": n})
    (tmp_path / "tv" / "train" / "a" / "day 2").mkdir()
    shutil.copy(tmp_path / "tv" / "train" / "b" / "b_000.jpg", tmp_path / "tv" / "train" / "a" / "day 2" / "x.jpg")
    _load(qtbot, panel, tmp_path / "tv")
    panel.class_table.selectRow(0)
    assert panel.thumb_label.text().startswith("a: 7 images (train 5 · val 2, in that order). ")
    captions = [panel.thumb_grid.item(i).text() for i in range(panel.thumb_grid.count())]
    assert captions == [f"a_00{i}.jpg" for i in range(4)] + ["day 2/x.jpg", "a_000.jpg", "a_001.jpg"]
    tips = [panel.thumb_grid.item(i).toolTip() for i in range(panel.thumb_grid.count())]
    assert [os.path.relpath(t, tmp_path / "tv").split(os.sep)[0] for t in tips] == ["train"] * 5 + ["val"] * 2
    _load(qtbot, panel, dataset_factory(tmp_path / "flat", {"a": 2, "b": 2}))
    panel.class_table.selectRow(0)
    assert sorted(panel.thumb_grid.item(i).text() for i in range(2)) == ["a_000.jpg", "a_001.jpg"]  # (as before)
    assert panel.thumb_label.text().startswith("a: 2 images. ")


def test_the_augmentation_preview_of_a_split_folder_shows_training_images_named_by_their_split(
    qtbot, panel, tmp_path, dataset_factory
):
    """It drew val and test images too (never augmented in training), captioned "a/a_000.jpg" as the train one of
    that name was."""
    for split, n in (("train", 3), ("val", 2), ("test", 2)):
        dataset_factory(tmp_path / "tvt" / split, {"a": n, "b": n})
    _load(qtbot, panel, tmp_path / "tvt")
    panel.class_table.selectRow(0)
    shown = []
    for _ in range(4):  # (three training images of "a": the fourth is the first again)
        qtbot.waitUntil(lambda: "as training sees it" in panel.preview_label.toolTip(), timeout=60000)
        shown.append((panel.preview_label.text(), panel.preview_label.toolTip().split(",")[0]))
        panel.preview_label.setToolTip("")
        panel.preview_next.click()
    assert [text for text, _ in shown] == [f"train/a/a_00{i}.jpg" for i in (0, 1, 2, 0)]
    assert all(path == str(tmp_path / "tvt" / text) for text, path in shown)


def test_each_class_s_thumbnails_start_at_its_first_image(qtbot, panel, tmp_path, dataset_factory):
    """The grid kept the last class's scroll: "square" opened at its 54th image."""
    root = dataset_factory(tmp_path / "t", {"a": 40, "b": 40})
    panel.resize(900, 500)
    panel.show()
    _load(qtbot, panel, root)
    panel.class_table.selectRow(0)
    bar = panel.thumb_grid.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0, timeout=10000)
    bar.setValue(bar.maximum())
    panel.class_table.selectRow(1)
    qtbot.waitUntil(lambda: bar.maximum() > 0, timeout=10000)
    assert bar.value() == 0


def test_augmentation_preview_follows_options(qtbot, panel, tiny_dataset, tmp_path):
    assert not panel.preview_next.isEnabled()  # no data set: "Another image" had nothing to show, and did nothing
    _load(qtbot, panel, tiny_dataset)
    assert panel.preview_next.isEnabled()
    qtbot.waitUntil(lambda: panel.preview_grid.count() == 8, timeout=60000)
    panel.preview_grid.clear()
    panel.augment_combo.setCurrentText("strong")
    qtbot.waitUntil(lambda: panel.preview_grid.count() == 8, timeout=60000)
    assert "as training sees it" in panel.preview_label.toolTip() and "/" in panel.preview_label.text()
    panel.augment_combo.setCurrentText("none")  # no random change: one tile, not eight identical ones
    qtbot.waitUntil(lambda: panel.preview_grid.count() == 1, timeout=60000)
    assert panel.preview_grid.item(0).text() == "every epoch" and "every epoch sees the same" in (
        panel.preview_label.toolTip()
    )
    # and why, in the box beside the tile (alone in an empty box, it looked like a preview that had failed)
    grid = panel.preview_grid
    assert (
        grid.note().startswith("No random change is on")
        and grid.note_rect().left() > grid.visualItemRect(grid.item(0)).right()
    )
    panel.show()
    shot, note = grid.viewport().grab().toImage(), grid.note()
    grid.set_note("")
    bare = grid.viewport().grab().toImage()
    grid.set_note(note)
    area = grid.note_rect()
    differ = sum(
        shot.pixel(x, y) != bare.pixel(x, y)
        for x in range(area.left(), min(area.right(), shot.width()), 2)
        for y in range(area.top(), min(area.top() + 40, shot.height()), 2)
    )
    assert differ > 20  # the words are drawn there
    panel.augment_combo.setCurrentText("light")
    qtbot.waitUntil(lambda: panel.preview_grid.count() == 8, timeout=60000)
    assert grid.note() == ""  # eight different tiles say it themselves
    # validation + test over 100 %: the Split box says so; the preview, which no split touches, goes on
    panel.val_spin.setValue(60)
    panel.test_spin.setValue(50)
    assert "must stay below 100" in panel.split_counts.text()
    panel.preview_grid.clear()
    panel.augment_combo.setCurrentText("strong")
    qtbot.waitUntil(lambda: panel.preview_grid.count() == 8, timeout=60000)
    assert "as training sees it" in panel.preview_label.toolTip() and "split" not in panel.preview_label.text()
    (tmp_path / "none" / "cat").mkdir(parents=True)  # a folder that cannot be opened: nothing to preview again
    assert _load(qtbot, panel, tmp_path / "none") is None and not panel.preview_next.isEnabled()

    _load(qtbot, panel, tiny_dataset)
    chain = tab_chain(panel.augment_combo)  # the pictures are looked at, not a stop of their own with no mark
    assert panel.preview_next in chain and panel.thumb_grid in chain and panel.preview_grid not in chain


def test_dropped_folder_is_scanned(qtbot, panel, tiny_dataset, tmp_path):
    assert not panel.handle_dropped_paths([str(tmp_path / "file.txt")])
    with qtbot.waitSignal(panel.scan_finished, timeout=60000):
        assert panel.handle_dropped_paths([str(tiny_dataset)])
    assert panel.index is not None and panel.folder == str(tiny_dataset)
    assert panel.recent_folders()[0] == str(tiny_dataset)


def test_jitter_and_erasing_fields_say_what_strong_adds_at_zero(panel):
    from core.data import augment_plan

    panel.augment_combo.setCurrentText("strong")
    assert panel.jitter_spin.value() == 0 and panel.jitter_spin.text() == "0.30 (strong's own)"
    assert panel.erasing_spin.text() == "0.25 (strong's own)"
    plan = augment_plan(panel.data_config(), train=True)  # what training does matches what the fields say
    assert (plan.jitter, plan.erasing) == (0.3, 0.25)
    panel.jitter_spin.stepUp()  # "raise it to use more": from strong's own 0.30, not from 0
    assert panel.jitter_spin.value() == pytest.approx(0.4) and panel.data_config().color_jitter == pytest.approx(0.4)
    panel.jitter_spin.setValue(0)
    panel.augment_combo.setCurrentText("standard")
    assert panel.jitter_spin.text() == "off" and panel.erasing_spin.text() == "off"
    assert augment_plan(panel.data_config(), train=True).jitter == 0
    panel.jitter_spin.stepUp()
    assert panel.jitter_spin.value() == pytest.approx(0.1)  # standard adds none: from 0


def test_flip_is_off_and_disabled_while_augment_is_none(qtbot, panel):
    from gui.app import settings

    flip = panel.flip_check
    panel.augment_combo.setCurrentText("standard")
    assert flip.isEnabled() and flip.isChecked() and panel.data_config().hflip

    panel.augment_combo.setCurrentText("none")
    assert not flip.isEnabled() and not flip.isChecked()
    assert panel.data_config().hflip is False  # what training gets matches what the box shows
    assert panel.flip_preference() is True  # the user's choice is only hidden, not lost

    panel.augment_combo.setCurrentText("standard")
    assert flip.isEnabled() and flip.isChecked() and panel.data_config().hflip

    # the user turns flips off; going through "none" and back keeps it off
    flip.click()
    assert not flip.isChecked() and panel.flip_preference() is False
    panel.augment_combo.setCurrentText("none")
    assert not flip.isEnabled() and not flip.isChecked()
    panel.augment_combo.setCurrentText("standard")
    assert flip.isEnabled() and not flip.isChecked() and panel.data_config().hflip is False

    # and a checked choice survives too, also through saved settings while "none" is picked
    flip.click()
    panel.augment_combo.setCurrentText("none")
    with qtbot.assertNotEmitted(panel.config_changed):
        flip.setChecked(True)  # set from code while disabled: remembered, but the box stays off
    assert not flip.isChecked()
    panel.save_settings()
    assert str(settings().value("data/hflip")) == "true"
    assert settings().value("data/augment") == "none"
    again = DatasetPanel()
    qtbot.addWidget(again)
    assert again.augment_combo.currentText() == "none"
    assert not again.flip_check.isEnabled() and not again.flip_check.isChecked()
    assert again.flip_preference() is True
    again.augment_combo.setCurrentText("light")
    assert again.flip_check.isEnabled() and again.flip_check.isChecked()


def test_config_changed_sees_the_flip_state_of_the_new_level(qtbot, panel):
    panel.augment_combo.setCurrentText("standard")
    seen = []
    panel.config_changed.connect(lambda: seen.append(panel.data_config().hflip))
    panel.augment_combo.setCurrentText("none")
    panel.flip_check.click()  # disabled: nothing happens
    panel.augment_combo.setCurrentText("light")
    panel.flip_check.click()
    assert seen == [False, True, False]


def test_captions_that_share_a_long_start_still_tell_the_files_apart(qtbot):
    """Cut at the end, every caption of class_00_000.jpg, class_00_001.jpg, … read "class_00_0…"."""
    from gui.widgets import ImageGrid

    grid = ImageGrid(64)
    qtbot.addWidget(grid)
    grid.resize(400, 200)
    for name in ("class_00_some_long_shared_start_000.jpg", "class_00_some_long_shared_start_001.jpg"):
        grid.add_tile(name)
    grid.show()
    qtbot.waitExposed(grid)
    shot = grid.viewport().grab().toImage()
    captions = []
    for row in range(2):
        rect = grid.visualItemRect(grid.item(row))
        rect.setTop(rect.top() + 64 + 2)  # below the tile: the caption
        captions.append(shot.copy(rect))
    assert captions[0].size() == captions[1].size()
    assert captions[0] != captions[1]  # the ends differ: "…000.jpg" and "…001.jpg"


def test_thumbnails_of_any_shape_sit_on_square_tiles(qtbot):
    """A wide and a tall picture get the same tile height, so their captions line up in the grid."""
    from PySide6.QtGui import QColor, QIcon, QImage

    from gui.widgets import ImageGrid

    grid = ImageGrid(64)
    qtbot.addWidget(grid)
    sizes = []
    for w, h in ((400, 50), (30, 90), (64, 64)):
        image = QImage(w, h, QImage.Format.Format_RGB32)
        image.fill(QColor("red"))
        item = grid.add_tile(f"{w}x{h}", image=image)
        sizes.append(item.icon().availableSizes()[0])
    assert {(s.width(), s.height()) for s in sizes} == {(64, 64)}
    wide = grid.item(0).icon().pixmap(64, 64).toImage()
    assert wide.pixelColor(32, 32) == QColor("red") and wide.pixelColor(32, 2).alpha() == 0  # centred, not stretched
    # selected, a photo keeps its colours (the style tinted it with the selection colour beside the large view)
    selected = grid.item(2).icon().pixmap(64, 64, QIcon.Mode.Selected).toImage()
    assert selected.pixelColor(32, 32) == QColor("red")


LONG = "a_rather_long_class_name_for_category_number_{}_with_extra_words_" + "and_more_words_" * 4


@pytest.fixture
def awkward(tmp_path, dataset_factory):
    """Long class names in a deep folder, one class with two images, an unusable file, a note and a duplicate."""
    root = tmp_path / ("a_deeply_nested_folder_with_a_long_name_" * 4) / "data"
    classes = {f"{i:02d}_" + LONG.format(i): 8 for i in range(6)}
    classes["05_" + LONG.format(5)] = 2
    dataset_factory(root, classes)
    first, second = (root / name for name in list(classes)[:2])
    (second / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (second / "notes.txt").write_text("where these came from")
    shutil.copy(first / f"{first.name}_000.jpg", second / "dup_of_first.jpg")
    return root


def test_long_names_and_paths_do_not_widen_the_panel(qtbot, panel, awkward):
    """A one-line label holding a class name or a path set the window's minimum width (1329 px with 30 long names:
    off a 1280 px screen). Every such label wraps or cuts the name, whatever the Problems tab shows."""
    _load(qtbot, panel, awkward)
    panel.class_table.selectRow(0)
    for tab in (0, 1):
        panel.middle_tabs.setCurrentIndex(tab)
        assert panel.minimumSizeHint().width() < 800, tab
    name = panel.index.classes[0]
    assert panel.thumb_label.toolTip() == name and "…" in panel.thumb_label.text()  # cut, whole on hover
    assert panel.summary_label.toolTip() == str(awkward)

    missing = awkward / ("no_such_folder_" * 8)  # an error naming a long path: cut in the banner, whole on hover
    assert _load(qtbot, panel, missing) is None
    assert not panel.banner.isHidden() and str(missing) in panel.banner.toolTip()
    assert panel.minimumSizeHint().width() < 800


def test_class_list_shows_every_count_and_whole_names_on_hover(qtbot, panel, awkward):
    _load(qtbot, panel, awkward)
    panel.resize(panel.minimumSizeHint().width(), 700)  # the narrowest the window allows
    qtbot.wait(50)
    table = panel.class_table
    assert table.width() >= 200  # not squeezed to a sliver by the middle column
    assert not table.horizontalScrollBar().isVisible()
    header = table.horizontalHeader()
    assert header.sectionViewportPosition(1) + header.sectionSize(1) <= table.viewport().width()  # counts show
    assert header.sectionSize(0) >= 60 and table.textElideMode() == Qt.TextElideMode.ElideMiddle
    assert [table.item(r, 0).toolTip() for r in range(table.rowCount())] == panel.index.classes


def test_classes_with_few_images_are_explained(qtbot, panel, awkward):
    from matplotlib.colors import to_hex

    from gui.charts import VAL_COLOR
    from gui.dataset_panel import FEW_COLOR

    _load(qtbot, panel, awkward)
    few = panel.index.classes[5]
    note = panel.balance_note
    assert not note.isHidden() and "1 class with under half the average" in note.text()
    assert few[:8] in note.text() and "(2)" in note.text() and few in note.toolTip()
    assert panel.class_table.item(5, 1).foreground().color().name() == FEW_COLOR == VAL_COLOR
    assert "2 images" in panel.class_table.item(5, 1).toolTip()
    orange = [i for i, bar in enumerate(panel.balance_chart.ax.patches) if to_hex(bar.get_facecolor()) == VAL_COLOR]
    assert orange == [5]  # the note names exactly the bars drawn in orange
    assert not panel.class_table.item(0, 1).toolTip()

    _load(qtbot, panel, awkward.parent.parent.parent / "missing")
    assert note.isHidden()


def test_two_small_classes_are_counted_in_words(qtbot, panel, tmp_path, dataset_factory):
    """The note read "2 classs with under half the average"."""
    from gui.widgets import count_noun

    root = dataset_factory(tmp_path / "d", {"a": 12, "b": 12, "c": 12, "d": 2, "e": 2})
    _load(qtbot, panel, root)
    assert "2 classes with under half the average" in panel.balance_note.text()
    assert [count_noun(1, "class", "classes"), count_noun(2, "epoch"), count_noun(0, "run")] == [
        "1 class",
        "2 epochs",
        "0 runs",
    ]


def test_bar_chart_cuts_long_names_in_the_middle(qtbot, panel, tmp_path, dataset_factory):
    """Names that share a long beginning stay apart on the chart: it keeps their ends."""
    root = dataset_factory(tmp_path / "d", {"photos_of_the_category_cat": 3, "photos_of_the_category_dog": 3})
    _load(qtbot, panel, root)
    labels = [t.get_text() for t in panel.balance_chart.ax.get_yticklabels()]
    assert len(set(labels)) == 2 and all(t.endswith(("_cat", "_dog")) for t in labels), labels


def test_problem_counts_agree_everywhere(qtbot, panel, awkward):
    """The summary, the Problems tab and its list heading count the same things with the same words."""
    import re

    _load(qtbot, panel, awkward)
    left_out = ["1 unusable file", "1 other file ignored (not images)"]
    summary = re.sub("<[^>]+>", "", panel.summary_label.text())
    assert all(part in summary for part in left_out) and "1 group of identical files" in summary
    assert panel.bad_label.text() == f"Left out of training: {', '.join(left_out)}:"
    assert panel.bad_table.rowCount() == 2
    tip = panel.middle_tabs.tabToolTip(1)
    assert tip == ", ".join([*left_out, "1 group of identical files"])
    total = sum(int(n) for n in re.findall(r"(\d+) ", tip))
    assert panel.middle_tabs.tabText(1) == f"Problems ({total})" == "Problems (3)"


def test_show_buttons_of_many_problems_are_made_as_their_rows_come_into_view(qtbot, panel, tmp_path, dataset_factory):
    """A button for each of 2,000 files left out, made at once, held the window 0.6 s at the end of the scan."""
    root = dataset_factory(tmp_path / "bad", {"a": 3, "b": 3})
    for i in range(300):
        (root / "a" / f"broken_{i:03d}.jpg").write_bytes(b"not a jpeg")
    _load(qtbot, panel, root)
    panel.middle_tabs.setCurrentIndex(1)
    panel.resize(1000, 700)
    table = panel.bad_table
    qtbot.waitUntil(lambda: table.viewport().height() > 100)
    made = [r for r in range(table.rowCount()) if table.cellWidget(r, 2) is not None]
    assert table.rowCount() == 300 and made[0] == 0 and len(made) < 120
    assert table.cellWidget(0, 2).text() == "Show"
    table.scrollToBottom()
    assert table.cellWidget(299, 2) is not None and table.cellWidget(150, 2) is None  # (scrolled past: not made)
    revealed = []
    panel.reveal = revealed.append
    table.cellWidget(299, 2).click()
    assert revealed == [table.item(299, 0).toolTip()] and revealed[0].endswith("broken_299.jpg")


def test_problem_paths_keep_their_file_names_visible(qtbot, panel, awkward):
    from PySide6.QtCore import QModelIndex
    from PySide6.QtWidgets import QStyleOptionViewItem

    _load(qtbot, panel, awkward)
    panel.middle_tabs.setCurrentIndex(1)
    panel.resize(1000, 700)
    qtbot.wait(50)
    table = panel.bad_table
    paths = {table.item(r, 0).toolTip() for r in range(table.rowCount())}
    assert {os.path.basename(p) for p in paths} == {"corrupt.jpg", "notes.txt"} and all(map(os.path.isabs, paths))
    shown = []
    for row in range(table.rowCount()):  # what the file column paints: cut in the folders, the name whole
        option = QStyleOptionViewItem()
        option.rect = table.visualItemRect(table.item(row, 0))
        table.itemDelegateForColumn(0).initStyleOption(option, table.model().index(row, 0, QModelIndex()))
        lines = option.text.split("\n")  # (a row two lines tall: the folders on the first, the name on the second)
        assert len(lines) <= (option.rect.height() - 2) // option.fontMetrics.lineSpacing(), option.text
        assert all(option.fontMetrics.horizontalAdvance(t) <= option.rect.width() for t in lines), option.text
        shown.append(lines)
    assert all("…" in lines[0] for lines in shown), shown
    assert {lines[-1].split("/")[-1] for lines in shown} == {"corrupt.jpg", "notes.txt"}, shown
    option = QStyleOptionViewItem()  # a reason reads from its start: cut at the end
    table.itemDelegateForColumn(1).initStyleOption(option, table.model().index(0, 1, QModelIndex()))
    assert option.textElideMode == Qt.TextElideMode.ElideRight

    dups = panel.dup_list
    assert dups.wordWrap() and not dups.horizontalScrollBar().isVisible()  # wrapped, not run off the side
    lines = dups.item(0).text().split("\n")
    assert lines[0] == "2 identical files, in different classes:" and len(lines) == 3  # one file a line


def test_two_columns_share_the_width_by_what_their_texts_need(qtbot):
    """File and Reason each had half the Problems table: "a/zzz.jpg" sat in 230 px while its reason was cut."""
    from PySide6.QtWidgets import QTableWidget, QTableWidgetItem

    from gui.widgets import ColumnShare

    table = QTableWidget(2, 3)
    qtbot.addWidget(table)
    table.resize(600, 200)
    table.horizontalHeader().resizeSection(2, 80)
    share = ColumnShare(table, 0, 1)
    table.show()

    def fill(first: str, second: str) -> tuple[int, int]:
        for r in range(2):
            table.setItem(r, 0, QTableWidgetItem(first))
            table.setItem(r, 1, QTableWidgetItem(second))
        share.update()
        h = table.horizontalHeader()
        return h.sectionSize(0), h.sectionSize(1)

    room = table.viewport().width() - 80
    fm = table.fontMetrics()
    short, reason = "a/zzz.jpg", "not an image (cannot identify image file, or no decoder)"
    first, second = fill(short, reason)
    assert first < fm.horizontalAdvance(short) + 40 and second >= fm.horizontalAdvance(reason)  # the reason whole
    long_path = "a_deeply_nested_folder/" * 6 + "photo.jpg"
    first, second = fill(long_path, "truncated image")
    assert second >= fm.horizontalAdvance("truncated image") and first > room // 2  # the path gets the rest
    first, second = fill(long_path, reason * 3)
    assert abs(first - room // 2) <= 2  # both long: half each
    table.resize(900, 200)  # kept as the table is resized
    qtbot.waitUntil(lambda: abs(table.horizontalHeader().sectionSize(0) - (table.viewport().width() - 80) // 2) <= 2)
    table.horizontalHeader().resizeSection(0, 123)  # as when the user drags the border: that width is kept
    table.resize(700, 200)
    fill(short, reason)
    assert table.horizontalHeader().sectionSize(0) == 123


def test_four_classes_are_all_in_view_in_a_short_window(qtbot, panel, tmp_path, dataset_factory):
    """At 125 % on a 1366 x 768 screen the Classes table scrolled for four classes, the last one cut in half."""
    root = dataset_factory(tmp_path / "four", {"circle": 2, "square": 2, "star": 2, "triangle": 2})
    _load(qtbot, panel, root)
    panel.resize(1000, 400)
    t = panel.class_table
    qtbot.waitUntil(lambda: t.height() < 300)
    assert t.verticalScrollBar().maximum() == 0, t.height()
    assert t.visualItemRect(t.item(3, 0)).bottom() < t.viewport().height()


def test_grid_cells_grow_with_a_larger_font_so_short_captions_stay_whole(qtbot):
    """Cells were fixed at tile + 18 by tile + 24 px: with a 13 pt desktop font the augmentation preview's caption
    "every epoch" was cut to "…epoch" and a line of text no longer fitted under the tile."""
    from PySide6.QtGui import QFont, QFontMetrics

    from gui.widgets import ImageGrid

    grid = ImageGrid(72)
    qtbot.addWidget(grid)
    small = grid.gridSize()
    font = QFont(grid.font())
    font.setPointSizeF(13.0)
    grid.setFont(font)
    fm = QFontMetrics(font)
    big = grid.gridSize()
    assert big.width() >= fm.horizontalAdvance("every epoch") + 8 and big.width() > small.width()
    assert big.height() >= 72 + fm.height() + 8


def test_problem_rows_grow_to_two_lines_when_their_reasons_are_cut(qtbot, panel, tmp_path, dataset_factory):
    """At a large font in a 720p window the reasons were cut to about 15 characters ("not an ima…"), the whole
    text only in a tooltip: a row two lines tall shows them wrapped, and one line again when there is room."""
    from PySide6.QtWidgets import QStyleOptionViewItem, QTableWidget

    root = dataset_factory(tmp_path / "d", {"a": 4, "b": 4})
    (root / "a" / "notes_about_where_these_photos_came_from.txt").write_text("x")
    _load(qtbot, panel, root)
    panel.middle_tabs.setCurrentIndex(1)  # (the Problems tab)
    table = panel.bad_table
    fresh = QTableWidget()
    one_line = fresh.verticalHeader().defaultSectionSize()  # (the style's row height)
    panel.resize(2400, 700)
    qtbot.waitUntil(lambda: table.viewport().width() > 900)
    assert table.rowHeight(0) == one_line  # (room for all: one line)
    panel.resize(1100, 700)
    qtbot.waitUntil(lambda: table.rowHeight(0) > one_line)
    assert table.rowHeight(0) >= one_line + table.fontMetrics().lineSpacing()
    # the cut cells wrap over the two lines: the path at its folder, the reason at its words
    for column in (0, 1):
        option = QStyleOptionViewItem()
        option.rect = table.visualRect(table.model().index(0, column))
        option.fontMetrics = table.fontMetrics()
        table.itemDelegateForColumn(column).initStyleOption(option, table.model().index(0, column))
        assert option.features & QStyleOptionViewItem.ViewItemFeature.WrapText, column
    option = QStyleOptionViewItem()
    option.rect = table.visualRect(table.model().index(0, 0))
    table.itemDelegateForColumn(0).initStyleOption(option, table.model().index(0, 0))
    assert option.text.split("\n")[0] == "a" + os.sep and option.text.endswith(".txt")
    panel.resize(2400, 700)
    qtbot.waitUntil(lambda: table.rowHeight(0) == one_line)


@pytest.mark.timeout(120)
def test_without_a_val_folder_the_validation_share_of_train_stays_a_choice(qtbot, panel, tmp_path, dataset_factory):
    """train/ and test/, no val/: the Validation share was greyed out while it took 20 % of train/ (a saved 50 %
    took half, and could not be changed)."""
    root = tmp_path / "d"
    dataset_factory(root / "train", {"a": 8, "b": 8})
    dataset_factory(root / "test", {"a": 3, "b": 3})
    _load(qtbot, panel, root)
    assert panel.val_spin.isEnabled() and panel.seed_spin.isEnabled() and not panel.test_spin.isEnabled()
    panel.val_spin.setValue(25)
    assert panel.split_counts.text().startswith("train 12 · val 4 · test 6 (val from train/")
    assert panel.data_config().val_split == 0.25
    dataset_factory(root / "val", {"a": 2, "b": 2})  # with its own val/: the folders decide everything
    _load(qtbot, panel, root)
    assert not any(w.isEnabled() for w in (panel.val_spin, panel.test_spin, panel.seed_spin))
    assert panel.split_counts.text().startswith("train 16 · val 4 · test 6 (from the folders)")


@pytest.mark.timeout(120)
def test_classes_left_without_validation_or_test_images_are_named(qtbot, panel, tmp_path, dataset_factory):
    """A class of 2 images got none in test, one of 1 none in validation: the Split box gave totals alone."""
    root = dataset_factory(tmp_path / "d", {"common": 20, "rare": 2, "single": 1})
    _load(qtbot, panel, root)
    panel.val_spin.setValue(20)
    panel.test_spin.setValue(10)
    text = panel.split_counts.text()
    assert "no validation image: single" in text and "no test image: rare, single" in text
    assert "Classes with no test image" in panel.split_counts.toolTip() and "rare" in panel.split_counts.toolTip()
    panel.test_spin.setValue(0)  # no test part asked for: nothing to say of it
    assert "no test image" not in panel.split_counts.text()


@pytest.mark.timeout(120)
def test_a_plain_image_under_augmentation_is_not_said_to_have_none(qtbot, panel, tmp_path, dataset_factory):
    """A one-colour image looks the same under crops and flips: the preview said "No random change is on
    (Augmentation none …)" with Augmentation on standard."""
    from PIL import Image

    root = dataset_factory(tmp_path / "d", {"a": 2, "b": 2})
    for f in (root / "a").iterdir():
        Image.new("RGB", (40, 40), (200, 30, 30)).save(f)
    _load(qtbot, panel, root)
    panel.set_image_size(96)  # (random crops of a part of it, and flips: at 64 px and under, a padded shift
    panel.augment_combo.setCurrentText("standard")  # shows the padding's edge)
    qtbot.waitUntil(lambda: panel.preview_grid.count() == 1 and panel.preview_grid.note() != "", timeout=60000)
    assert "leave this image as it is" in panel.preview_grid.note() and "Augmentation none" not in (
        panel.preview_grid.note()
    )


@pytest.mark.timeout(120)
def test_a_wrong_path_typed_during_a_scan_names_the_folder_still_open(
    qtbot, panel, tiny_dataset, tmp_path, monkeypatch
):
    """While another folder was being scanned, "Still open:" named that folder, not the one open."""
    import threading

    import gui.dataset_panel as dp

    _load(qtbot, panel, tiny_dataset)
    gate = threading.Event()
    real = dp._scan

    def held(folder, progress=None, stop=None):
        gate.wait(30)
        return real(folder, progress=progress, stop=stop)

    monkeypatch.setattr(dp, "_scan", held)
    other = tmp_path / "other"
    shutil.copytree(tiny_dataset, other)
    try:
        panel.load_folder(str(other))
        panel.recent_combo.setEditText(str(tmp_path / "nowhere"))
        panel._on_path_typed()
        said = panel.banner.text()
    finally:
        gate.set()
    qtbot.waitUntil(lambda: not panel.is_scanning(), timeout=60000)
    assert said == f"{tmp_path / 'nowhere'}: no such folder. Still open: {tiny_dataset}"


def test_thumbnails_put_numbered_files_in_number_order(qtbot, panel, tmp_path, dataset_factory):
    """ "showing the first 600" were 0, 1, 10, 100, 1000 … of a class of numbered photos."""
    root = dataset_factory(tmp_path / "d", {"a": 5, "b": 2})
    for i, name in enumerate(("2.jpg", "10.jpg", "1.jpg")):
        (root / "a" / f"a_00{i}.jpg").rename(root / "a" / name)
    _load(qtbot, panel, root)
    panel.class_table.selectRow(0)
    captions = [panel.thumb_grid.item(i).text() for i in range(panel.thumb_grid.count())]
    assert captions == ["1.jpg", "2.jpg", "10.jpg", "a_003.jpg", "a_004.jpg"]


def test_the_problems_list_keeps_room_for_a_whole_row_and_its_button(qtbot, panel, tmp_path, dataset_factory):
    """With a 14 pt font at the window's least size the Problems list showed half a row, its Show button sticking
    out below it: the table's least height is one whole row, as tall as its button."""
    from PySide6.QtGui import QFont

    panel.bad_table.setFont(QFont(panel.font().family(), 16))
    root = dataset_factory(tmp_path / "d", {"a": 4, "b": 4})
    (root / "a" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    _load(qtbot, panel, root)
    table = panel.bad_table
    show = table.cellWidget(0, 2)
    assert table.rowHeight(0) >= show.sizeHint().height()
    assert table.minimumHeight() >= table.horizontalHeader().height() + table.rowHeight(0)
