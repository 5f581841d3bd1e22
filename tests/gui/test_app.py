"""Start-up: display checks, lazy heavy imports, the main window, its tabs, settings, drops and wiring."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QApplication, QMessageBox

from gui import app as gui_app

REPO = Path(__file__).resolve().parents[2]


def _env_without_display() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["PYTHONPATH"] = str(REPO)
    return env


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the display check is Linux-only")
def test_no_display_prints_one_line_and_returns_2():
    proc = subprocess.run(
        [sys.executable, str(REPO / "main.py")],
        env=_env_without_display(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [gui_app.NO_DISPLAY_MESSAGE]
    assert "QT_QPA_PLATFORM=offscreen" in proc.stderr and "Aborted" not in proc.stderr


def test_display_checks():
    assert gui_app.check_display({}, "linux") == gui_app.NO_DISPLAY_MESSAGE
    assert gui_app.check_display({"QT_QPA_PLATFORM": "offscreen"}, "linux") is None
    assert gui_app.check_display({}, "win32") is None
    assert gui_app.check_display({}, "darwin") is None


def test_a_platform_qt_does_not_have_is_said_in_one_line(tmp_path):
    """QT_QPA_PLATFORM=bogus: Qt printed a paragraph and aborted, dumping core (exit 134)."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "main.py")],
        env={**_env_without_display(), "QT_QPA_PLATFORM": "bogus"},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("QT_QPA_PLATFORM=bogus: no such Qt platform here (there are ") and "offscreen" in line
    for fine in ("offscreen", "wayland;xcb", "bogus;offscreen", "offscreen:fontengine=freetype"):
        assert gui_app.check_display({"QT_QPA_PLATFORM": fine, "WAYLAND_DISPLAY": "w"}, "linux") is None, fine
    assert gui_app._unknown_platform("bogus", tmp_path / "none") is None  # (no plugins to look at: Qt tells)


def test_missing_xcb_cursor_prints_the_apt_command(monkeypatch):
    import ctypes.util

    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None if name == "xcb-cursor" else f"lib{name}.so")
    msg = gui_app.check_display({"DISPLAY": ":0"}, "linux")
    assert msg == gui_app.XCB_CURSOR_MESSAGE and "sudo apt install libxcb-cursor0" in msg
    assert gui_app.check_display({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"}, "linux") is None
    assert gui_app.check_display({"DISPLAY": ":0", "QT_QPA_PLATFORM": "xcb"}, "linux") == msg
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: f"lib{name}.so")
    assert gui_app.check_display({"DISPLAY": ":0"}, "linux") is None


def test_every_missing_xcb_library_is_named_not_only_xcb_cursor(monkeypatch):
    """With libxcb-cursor0 installed but libxcb-icccm4 missing, Qt aborted naming xcb-cursor0 (and the check, which
    looked for xcb-cursor alone, let it): every library the xcb plugin loads is looked for, the missing named."""
    import ctypes.util

    asked: list[str] = []

    def finder(missing: set[str]):
        def find(name: str) -> str | None:
            asked.append(name)
            return None if name in missing else f"lib{name}.so.0"

        return find

    x11 = {"DISPLAY": ":0"}
    monkeypatch.setattr(ctypes.util, "find_library", finder({"xcb-icccm"}))  # (what it finds libraries with)
    msg = gui_app.check_display(x11, "linux")
    assert msg == "ResNeXt Studio needs the X11 library libxcb-icccm4 (Qt's xcb plugin): sudo apt install libxcb-icccm4"
    msg = gui_app.check_display(x11, "linux", finder({"xcb-keysyms", "xkbcommon-x11", "xcb-render-util"}))
    assert msg is not None and len(msg.splitlines()) == 1 and "xcb-cursor" not in msg
    assert msg.endswith("sudo apt install libxkbcommon-x11-0 libxcb-keysyms1 libxcb-render-util0"), msg
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    listed = readme.split("sudo apt-get install", 1)[1].split("```", 1)[0].replace("\\", " ").split()
    asked.clear()
    assert gui_app.check_display(x11, "linux", finder(set())) is None
    # the README's packages, but libxcb-xinerama0: Qt 6's plugin does not load it (Qt 5's did)
    assert {p for p in listed if p != "libxcb-xinerama0"} <= set(gui_app.XCB_LIBRARIES)
    assert sorted(asked) == sorted(gui_app.XCB_LIBRARIES.values())
    every = gui_app.check_display(x11, "linux", lambda name: None)
    assert every == gui_app.xcb_message(list(gui_app.XCB_LIBRARIES)) and len(every.splitlines()) == 1
    assert gui_app.check_display({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"}, "linux", lambda n: None) is None


def test_bad_data_flag_is_a_usage_error(tmp_path, capsys):
    assert gui_app.main(["--data", str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err == f"error: --data {tmp_path / 'missing'}: no such folder\n"
    assert gui_app.main([str(tmp_path / "missing")]) == 2  # `main.py gui DIR`: no flag was typed to name
    assert capsys.readouterr().err == f"error: {tmp_path / 'missing'}: no such folder\n"
    assert gui_app.main(["--data", str(tmp_path / ("n" * 300))]) == 2  # (a name too long raised OSError)
    assert "cannot be opened (File name too long)" in capsys.readouterr().err
    assert gui_app._parse([str(tmp_path)]).data == str(tmp_path)  # `main.py gui FOLDER` opens FOLDER
    assert gui_app._parse(["--platform", "offscreen"]).data is None  # Qt's own options pass through
    with pytest.raises(SystemExit) as e:
        gui_app._parse(["--dta", str(tmp_path)])  # a typo opened the last folder without a word
    assert e.value.code == 2 and "unrecognized arguments: --dta" in capsys.readouterr().err


def test_importing_the_main_window_loads_no_torch_and_no_matplotlib():
    code = (
        "import sys, gui.main_window, gui.app; "
        "bad = [m for m in ('torch', 'torchvision', 'core.engine', 'core.models', 'matplotlib') "
        "if m in sys.modules]; print(bad)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_window_fits_a_1366x768_laptop_screen(qtbot, window):
    """No tab may force the window taller than a 768-px screen leaves (taskbar and title bar take ~85 px)."""
    from gui.app import load_stylesheet

    w = window()
    w.setStyleSheet(load_stylesheet())  # the app's fonts and paddings, as create_application sets them
    qtbot.waitUntil(lambda: w.dataset_panel.index is not None, timeout=150000)
    hint = w.tabs.minimumSizeHint()  # (the window's own is small: below it, the tabs scroll)
    chrome = w.menuBar().sizeHint().height() + w.statusBar().sizeHint().height()
    assert hint.height() + chrome <= 680 and hint.width() <= 1280, hint
    w.resize(1100, 680)
    qtbot.waitUntil(lambda: w.height() <= 680)


def test_every_kind_of_button_shows_the_focus_ring(qtbot):
    """Stop's pink border outranked the focus ring: with the keyboard on it, nothing said so."""
    from PySide6.QtWidgets import QHBoxLayout, QPushButton, QWidget

    from gui.app import load_stylesheet

    box = QWidget()
    qtbot.addWidget(box)
    box.setStyleSheet(load_stylesheet())
    lay = QHBoxLayout(box)
    buttons = {name: QPushButton(name) for name in ("plain", "primaryButton", "dangerButton")}
    for name, b in buttons.items():
        b.setObjectName(name)
        lay.addWidget(b)
    box.show()
    qtbot.waitExposed(box)

    def edge(b: QPushButton) -> str:  # the middle of its left border
        img = b.grab().toImage()
        return img.pixelColor(0, img.height() // 2).name()

    for name, b in buttons.items():
        unfocused = edge(b)
        b.setFocus()
        qtbot.waitUntil(b.hasFocus)
        ring = edge(b)
        assert ring != unfocused and ring in ("#2f6fdf", "#0f2f6e"), (name, unfocused, ring)


def test_a_larger_desktop_font_is_followed_and_a_smaller_one_kept_at_the_styles_size(qtbot):
    """style.qss set 10 pt on every widget: a user who had raised the desktop font to 13 pt got 10 pt."""
    from PySide6.QtWidgets import QLabel

    from gui.app import load_stylesheet

    assert load_stylesheet(9.0) == load_stylesheet(10.0)  # (Qt's own default, 9 pt, under it: unchanged)
    big = load_stylesheet(13.0)
    assert "font-size: 13pt" in big and "font-size: 26pt" in big  # the text and the predicted class, scaled alike
    assert big.count("font-size: 16.9pt") == 2  # the empty pages' notes too (they were set on the widgets, fixed)
    label = QLabel("Epochs")
    qtbot.addWidget(label)
    label.setStyleSheet(big)
    label.ensurePolished()
    assert label.font().pointSizeF() == 13.0


def test_screen_readers_get_a_name_for_every_view_without_text_of_its_own(qtbot, window):
    """Charts, image views, tables, the confusion matrix and Predict's painted class bars had no accessible name
    (Qt takes one from a buddy label or a button's text; these have none)."""
    from gui.image_view import ProbabilityBars

    w = window(load_initial=False)
    w.train_tab.ensure_charts()
    w.dataset_panel.ensure_charts()
    w.runs_tab._ensure_canvas()
    ev, pr, runs, data = w.evaluate_tab, w.predict_tab, w.runs_tab, w.dataset_panel
    views = {
        "class balance chart": data.balance_chart,
        "folder box": data.recent_combo,
        "thumbnails": data.thumb_grid,
        "augmentation preview": data.preview_grid,
        "training curves": w.train_tab.charts,
        "per-class table": ev.per_class_table,
        "gallery": ev.gallery,
        "detail image": ev.detail_view,
        "predict image": pr.image_view,
        "class bars": pr.bars,
        "results": pr.table,
        "filter": pr.filter_edit,
        "run list": runs.table,
        "settings": runs.settings_tree,
        "curves": runs.canvas,
    }

    def name(widget):  # (what Qt's accessibility bridge gives a screen reader first)
        return widget.accessibleName()

    assert [k for k, v in views.items() if v is None or not name(v)] == []
    assert name(data.recent_combo) == "Data set folder"  # (it was named by the path it showed)
    bars = ProbabilityBars()
    qtbot.addWidget(bars)
    bars.set_items([("triangle", 0.92), ("star", 0.05)])
    assert bars.accessibleDescription() == "triangle 92.0%, star 5.0%"


def test_a_field_given_focus_from_the_keyboard_is_scrolled_into_view(qtbot, window):
    """Tab from the tab bar (or Shift+Tab from Start) gave focus to Train settings scrolled out of sight: the
    Architecture box above the column's top, Device and the seed below the window."""
    w = window(load_initial=False)
    w.tabs.setCurrentWidget(w.train_tab)
    w.resize(1280, 640)
    w.activateWindow()
    column, tab = w.train_tab._form_scroll, w.train_tab
    bar = column.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0)  # (the settings are longer than the column)
    tab.device_combo.setFocus(Qt.FocusReason.BacktabFocusReason)
    qtbot.waitUntil(tab.device_combo.hasFocus)
    assert bar.value() > 0 and not tab.device_combo.visibleRegion().isEmpty()
    arch = tab.model_panel.preset_combo
    arch.setFocus(Qt.FocusReason.TabFocusReason)
    qtbot.waitUntil(arch.hasFocus)
    assert not arch.visibleRegion().isEmpty() and arch.visibleRegion().boundingRect().height() == arch.height()


def test_a_click_into_a_partly_shown_view_does_not_move_the_page_under_the_pointer(qtbot, window):
    """Focus given by a click scrolled the window's page to show the view whole: the page moved 30 px between a
    thumbnail's press and its release, which landed on another. (Focus from the keyboard still shows it whole.)"""
    from PySide6.QtCore import QPoint
    from PySide6.QtTest import QTest

    w = window(load_initial=False)
    w.activateWindow()
    w.setMinimumSize(400, 300)
    w.resize(800, 400)  # (a small screen's window: the page scrolls)
    bar, view, grid = w.scroller.verticalScrollBar(), w.scroller.viewport(), w.dataset_panel.thumb_grid
    qtbot.waitUntil(lambda: bar.maximum() > 0)
    bar.setValue(0)
    top = grid.mapTo(view, QPoint(0, 0)).y()
    assert top < view.height() < top + grid.height()  # cut at the bottom edge
    QTest.mousePress(grid.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(20, 20))
    qtbot.waitUntil(grid.hasFocus)
    QApplication.processEvents()
    assert bar.value() == 0
    QTest.mouseRelease(grid.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(20, 20))


def test_on_a_narrow_window_the_settings_column_gives_the_log_room(qtbot, window):
    """At 1024 px the settings column kept its content's 455 px and left the Log 205, where each epoch's line
    wrapped to six: it now narrows to 390 px with nothing cut off, and is wider again on a wider window."""
    w = window(load_initial=False)
    w.tabs.setCurrentWidget(w.train_tab)
    tab, column = w.train_tab, w.train_tab._form_scroll
    w.resize(1024, 700)
    qtbot.waitUntil(lambda: w.width() == 1024 and column.width() <= 392, timeout=5000)
    assert tab.log.width() >= 240
    assert column.widget().width() <= column.viewport().width()  # the fields fit: none cut off at the right
    w.resize(1366, 700)
    qtbot.waitUntil(lambda: column.width() >= 470, timeout=5000)
    # a larger font (a desktop set to 125 %): the column is never narrower than its fields need
    font = column.widget().font()
    font.setPointSizeF(font.pointSizeF() * 1.4)
    column.widget().setFont(font)
    w.resize(1000, 700)
    w.resize(1024, 700)
    qtbot.waitUntil(lambda: w.width() == 1024 and column.width() < 470, timeout=5000)
    assert column.widget().width() <= column.viewport().width()  # nothing cut off at the right


def test_fields_that_grow_after_the_last_resize_widen_the_settings_column(qtbot, window):
    """The column was fitted on the tab's resizes only: at 14 pt the fields were laid out wider (491 px) after the
    hidden tab's last resize, and every field and combo arrow stayed cut off at the right until the window moved."""
    w = window(load_initial=False)
    w.resize(1280, 720)
    tab, column = w.train_tab, w.train_tab._form_scroll
    qtbot.waitUntil(lambda: column.width() >= 390)
    tab.device_combo.setMinimumWidth(column.width())  # the fields now need more than the column has; no resize
    w.tabs.setCurrentWidget(tab)
    need = column.widget().minimumSizeHint().width
    qtbot.waitUntil(lambda: column.viewport().width() >= need() > column.viewport().width() - 40, timeout=5000)
    assert column.widget().width() <= column.viewport().width()
    right = tab.device_combo.mapTo(column.viewport(), tab.device_combo.rect().topRight()).x()
    assert right < column.viewport().width()  # the widest field whole, its arrow in sight


@pytest.mark.timeout(300)
def test_the_smallest_window_has_room_for_the_first_data_set_it_opens(qtbot, window, sample_path):
    """The minimum was fixed before the first scan's tables, chart and notes were in: at the smallest window the
    sample set's Dataset tab scrolled (both ways on a large screen; the offscreen one is too narrow anyway)."""
    w = window(data_dir=str(sample_path))
    qtbot.waitUntil(lambda: w.dataset_panel.index is not None, timeout=150000)
    chrome = w.menuBar().sizeHint().height() + w.statusBar().sizeHint().height()
    # (the tabs' height, whole: the width is capped by this 800-px screen, and its scroll bar takes a few px more)
    qtbot.waitUntil(lambda: w.minimumSize().height() >= w.tabs.minimumSizeHint().height() + chrome, timeout=5000)


def test_a_longer_message_scrolls_the_tabs_and_never_grows_the_window(qtbot, window):
    """A window grows to its layout's minimum: wrapped error lines on the Evaluate tab made it 80 px taller and a
    wider Train tab pushed "Idle" past a 1024-px screen's edge. Its minimum is fixed once the tabs are built, and
    capped at the screen (the offscreen one is 800 px wide: the tabs need more). Below what the tabs need they
    scroll: they were cut at the window's edge ("Start training" read "art traini" on an 800-px screen)."""
    w = window(load_initial=False)
    free = w.screen().availableGeometry().size()
    assert w.minimumSize().width() <= free.width() and w.minimumSize().height() <= free.height()
    w.tabs.setCurrentWidget(w.train_tab)
    w.resize(w.minimumSize())
    qtbot.waitUntil(lambda: w.size() == w.minimumSize())
    need = w.tabs.minimumSizeHint()
    assert need.width() > w.width()  # (this screen is too narrow for the tabs) …
    qtbot.waitUntil(lambda: w.scroller.horizontalScrollBar().maximum() > 0)
    assert w.tabs.width() >= need.width()  # … so they scroll, whole, rather than being cut
    before = w.size()
    w.train_tab.state_label.setText("A state name far wider than any the tab was built with")
    for _ in range(5):
        QApplication.processEvents()
    assert w.tabs.minimumSizeHint().width() > need.width()  # what the tab needs now …
    assert w.size() == before  # … and the window stays as the user left it
    qtbot.waitUntil(lambda: w.tabs.width() >= w.tabs.minimumSizeHint().width())  # the tab scrolls further
    w.resize(1280, 760)
    qtbot.waitUntil(lambda: w.width() == 1280)
    bars = (w.scroller.horizontalScrollBar(), w.scroller.verticalScrollBar())
    assert [b.maximum() for b in bars] == [0, 0]  # on a large enough window: no scroll bars


def test_a_screen_too_low_for_the_tabs_scrolls_them_down_only(qtbot, window, monkeypatch):
    """On a 1024 x 600 screen the minimum's height was capped and its width was not widened for the vertical scroll
    bar: at the smallest window the tabs scrolled both ways and their right edge was cut ("Evaluate again")."""
    from PySide6.QtCore import QSize

    w = window(load_initial=False)
    w.tabs.setCurrentWidget(w.train_tab)
    need = w.tabs.minimumSizeHint()
    monkeypatch.setattr(w, "_free_area", lambda: QSize(need.width() + 400, need.height() // 2))
    w.settle_minimum_size()
    w.resize(w.minimumSize())
    qtbot.waitUntil(lambda: w.size() == w.minimumSize())
    qtbot.waitUntil(lambda: w.scroller.verticalScrollBar().maximum() > 0)  # too low: it scrolls down …
    for _ in range(5):
        QApplication.processEvents()
    assert w.scroller.horizontalScrollBar().maximum() == 0  # … and not sideways
    assert w.scroller.viewport().width() >= w.tabs.minimumSizeHint().width()


def test_a_first_start_fits_the_screen():
    """The window opened at 1280 x 820 on every screen: on a 1366 x 768 laptop its bottom 52 px were off-screen."""
    from PySide6.QtCore import QSize

    from gui.main_window import first_size

    assert first_size(QSize(1920, 1040)) == QSize(1280, 820)
    assert first_size(QSize(1366, 728)) == QSize(1280, 688)  # 768 less a 40 px taskbar: the title bar fits too
    assert first_size(QSize(1280, 680)) == QSize(1264, 640)
    assert first_size(QSize(853, 480)) == QSize(837, 440)  # 1280 x 720 at 150 %: it was 837 x 600, off the screen
    assert first_size(None) == QSize(1280, 820)
    # a small screen is filled instead (at 1024 x 600 the window had opened at 922 x 536, charts ~70 px high)
    from gui.main_window import first_maximized

    assert first_maximized(QSize(1024, 576)) and first_maximized(QSize(1366, 688))
    assert not first_maximized(QSize(1366, 728)) and not first_maximized(None)


def test_menus_reach_every_tab_and_follow_the_training_state(qtbot, window, tmp_path):
    from PIL import Image

    from gui.train_tab import IDLE, PAUSED, RUNNING

    w = window(load_initial=False)
    assert w.actions["start"].shortcut().toString() == "F5"  # not Ctrl+Return: text fields of every tab take it
    t = w.train_tab
    assert t.start_button.toolTip().endswith("(F5)") and t.stop_button.toolTip().endswith("(Ctrl+.)")
    titles = [a.text() for a in w.menuBar().actions()]
    assert titles == ["&File", "&Training", "&View", "&Help"]
    for i, name in enumerate(("dataset", "train", "evaluate", "predict", "runs")):
        action = w.actions[f"tab_{name}"]
        assert action.shortcut().toString() == f"Ctrl+{i + 1}"
        action.trigger()
        assert w.tabs.currentIndex() == i
    assert (
        w.actions["open"].shortcut().matches(QKeySequence(QKeySequence.StandardKey.Open))
        == QKeySequence.SequenceMatch.ExactMatch
    )
    a, tab = w.actions, w.train_tab
    assert a["start"].isEnabled() and not a["stop"].isEnabled() and not a["pause"].isEnabled()
    tab._set_state(RUNNING)  # what a running fit looks like to the menus
    assert not a["start"].isEnabled() and a["stop"].isEnabled() and a["pause"].isEnabled()
    assert w.runs_tab._training_busy  # and to the Runs tab's Resume
    tab.run_dir = "/runs/r"
    tab._set_state(PAUSED)
    assert w.runs_tab._paused_run == "/runs/r"  # (its row says "paused", not "running")
    tab._set_state(IDLE)
    assert a["start"].isEnabled() and not a["stop"].isEnabled()
    assert not w.runs_tab._training_busy and w.runs_tab._paused_run is None
    a["start"].trigger()  # no data set is open: the Train tab says so instead of starting
    assert w.tabs.currentWidget() is tab and tab.state == IDLE and "data set" in tab.banner.text()
    (tmp_path / "one" / "cat").mkdir(parents=True)  # a data set that cannot be trained on: Start is not offered
    for i in range(2):
        Image.new("RGB", (16, 16), (40 * i, 0, 0)).save(tmp_path / "one" / "cat" / f"{i}.png")
    with qtbot.waitSignal(w.dataset_panel.scan_finished, timeout=60000):
        w.dataset_panel.load_folder(str(tmp_path / "one"))
    assert not a["start"].isEnabled() and not tab.start_button.isEnabled()
    # the buttons that show a folder in the file manager say so ("Open folder" also chose data and classified)
    assert (tab.open_button.text(), w.runs_tab.open_folder_button.text()) == ("Show run folder", "Show runs folder")
    text = w.about_text()
    assert "ResNeXt Studio 0." in text and "PySide6" in text
    # Help ▸ Keyboard shortcuts lists every menu shortcut (read from the menus) and the tabs' own keys
    keys = w.shortcuts_text()
    for key, action in a.items():
        if not key.startswith("tab_") and not action.shortcut().isEmpty():
            assert f"<b>{action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)}</b>" in keys, key
    assert keys.count("<b>F5</b>") == 1 and "Start training (on the Runs tab: refresh the list)" in keys  # (twice)
    assert "<b>Ctrl+1 … Ctrl+5</b>" in keys
    assert "<b>Ctrl+V</b>" in keys and "<b>Esc</b>" in keys and "<b>Del</b>" in keys


def _lines_per_cell(label) -> list[int]:
    """The number of lines each cell of `label`'s rich-text table is drawn on, at the label's width and font."""
    from PySide6.QtGui import QTextDocument

    doc = QTextDocument()
    doc.setDefaultFont(label.font())
    doc.setDocumentMargin(0)  # (as a QLabel lays its text out)
    doc.setHtml(label.text())
    doc.setTextWidth(label.contentsRect().width())
    doc.size()  # (laid out)
    block, lines = doc.begin(), []
    while block.isValid():
        if block.text():
            lines.append(block.layout().lineCount())
        block = block.next()
    return lines


def test_the_shortcuts_box_shows_every_row_on_one_line(qtbot, window):
    """Qt sized the box about 300 px wide: most descriptions wrapped onto two or three lines; sized then to ~72
    average characters, 6 of the 16 still wrapped. It is as wide as its widest row."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QLabel

    w = window(load_initial=False)
    seen: list = []

    def look() -> None:
        box = QApplication.activeModalWidget()
        if box is not None and box.objectName() == "shortcuts":
            label = box.findChild(QLabel, "shortcutsText") or box.findChild(QLabel, "qt_msgbox_label")
            rows = label.text().count("<tr>")
            seen.append((rows, _lines_per_cell(label), label.height(), label.fontMetrics().lineSpacing()))
            box.accept()
        elif box is not None:  # (any other box is closed: a test that fails must not hang)
            box.reject()
        if not seen and look.tries < 2000:  # about 20 s, then the assertion below fails
            look.tries += 1
            QTimer.singleShot(10, look)

    look.tries = 0
    QTimer.singleShot(0, look)
    w.actions["shortcuts"].trigger()
    assert seen, "no shortcuts box"
    rows, lines, height, line = seen[0]
    assert rows >= 16 and len(lines) == 2 * rows, seen  # a key and a description a row
    assert lines == [1] * len(lines), lines  # none wrapped
    assert height < rows * 1.5 * line, seen  # one line a row (two lines a row would be ~2x)


def test_the_shortcuts_box_is_as_wide_as_its_widest_row_up_to_the_screens_width():
    from gui.main_window import fitted_width

    assert fitted_width(600, 90, 1280) is None  # it fits: no row wraps
    assert fitted_width(1400, 90, 3840) is None  # wider than a QMessageBox may grow (1000 px), still whole
    assert fitted_width(600, 90, 640) == 640 - 90 - 40  # a small screen: the screen's width, the rows wrap
    assert fitted_width(600, 90, 200) == 160  # (never a sliver)


def test_tab_moves_on_from_every_table_and_list(qtbot, window):
    """Keyboard users: Tab must leave a table for the next control (Qt tables cycle through their cells by default,
    which traps the keyboard there); arrow keys move inside."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QAbstractItemView, QApplication

    w = window(load_initial=False)
    w.finish_deferred()  # every tab built
    views = w.findChildren(QAbstractItemView)
    assert len(views) >= 8  # classes, problems, duplicates, thumbnails, per-class, results, runs, settings …
    trapping = [type(v).__name__ + ":" + v.objectName() for v in views if v.tabKeyNavigation()]
    assert trapping == []
    w.actions["tab_dataset"].trigger()
    w.activateWindow()
    table = w.dataset_panel.class_table
    table.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is table)
    qtbot.keyClick(table, Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is not table
    # a focused button clicks on Return as well as Space, in every tab, and scroll areas are no Tab stops
    from PySide6.QtWidgets import QPushButton, QScrollArea

    buttons = w.findChildren(QPushButton)
    assert len(buttons) > 30 and [b.text() for b in buttons if not b.autoDefault()] == []
    stops = [a for a in w.train_tab.findChildren(QScrollArea) if a.focusPolicy() != Qt.FocusPolicy.NoFocus]
    assert [a for a in stops if a.widget() is not None and a.widget().findChildren(QPushButton)] == []
    w.actions["tab_train"].trigger()
    clicked = []
    reset = w.train_tab.defaults_button
    reset.clicked.connect(lambda: clicked.append(1))
    reset.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is reset)
    qtbot.keyClick(reset, Qt.Key.Key_Return)
    assert clicked == [1]


@pytest.mark.timeout(180)
def test_first_start_opens_the_bundled_sample(qtbot, window, sample_path):
    from core.data import scan

    w = window()
    assert w.windowTitle() == "ResNeXt Studio"
    assert [w.tabs.tabText(i) for i in range(w.tabs.count())] == ["Dataset", "Train", "Evaluate", "Predict", "Runs"]
    assert w.tabs.currentWidget() is w.dataset_panel
    qtbot.waitUntil(lambda: w.dataset_panel.index is not None, timeout=150000)
    t = w.dataset_panel.class_table
    assert {t.item(r, 0).text(): int(t.item(r, 1).text()) for r in range(t.rowCount())} == scan(sample_path).counts()


def test_last_folder_is_reopened_and_recent_list_kept(qtbot, window, tiny_dataset):
    w = window(data_dir=str(tiny_dataset))
    qtbot.waitUntil(lambda: w.dataset_panel.index is not None, timeout=60000)
    w.close()
    w2 = window()
    assert w2.dataset_panel.folder == str(tiny_dataset)
    assert w2.dataset_panel.recent_combo.itemData(0) == str(tiny_dataset)
    qtbot.waitUntil(lambda: w2.dataset_panel.index is not None, timeout=60000)


def test_predict_starts_on_a_model_of_the_data_set_the_dataset_tab_opens(qtbot, window, tiny_dataset, runs_dir):
    import json

    made = {}
    for name, started, folder in (("20240101-000000-x-tiny", 1, tiny_dataset), ("20240202-000000-x-else", 2, "/else")):
        d = runs_dir / name
        d.mkdir(parents=True)
        (d / "config.json").write_text(json.dumps({"dataset": {"root": str(folder)}, "model": {"arch": "x"}}))
        (d / "status.json").write_text(json.dumps({"status": "completed", "started": started}))
        (d / "best.pt").write_bytes(b"-")
        made[name] = str(d / "best.pt")
    w = window(data_dir=str(tiny_dataset))
    assert w.predict_tab.checkpoint() in made.values()  # (made before the folder was scanned, or after)
    qtbot.waitUntil(lambda: w.dataset_panel.index is not None, timeout=60000)
    assert w.predict_tab.checkpoint() == made["20240101-000000-x-tiny"]


def test_hyper_parameters_survive_a_restart(qtbot, window, tiny_dataset):
    w = window(data_dir=str(tiny_dataset))
    w.train_tab.set_train_values({"epochs": 7, "batch_size": 12, "lr": 0.005, "optimizer": "sgd"})
    w.train_tab.set_train_values({"scheduler": "step", "warmup_epochs": 1.5})
    assert w.train_tab.train_values()["warmup_epochs"] == 0.0 and not w.train_tab.warmup_spin.isEnabled()
    w.dataset_panel.val_spin.setValue(30)
    w.close()
    w2 = window(data_dir=str(tiny_dataset))
    v = w2.train_tab.train_values()
    assert (v["epochs"], v["batch_size"], v["lr"], v["optimizer"]) == (7, 12, 0.005, "sgd")
    assert w2.dataset_panel.val_spin.value() == 30
    w2.train_tab.scheduler_combo.setCurrentText("cosine")  # the warm-up belongs to cosine: it comes back with it
    assert w2.train_tab.warmup_spin.isEnabled() and w2.train_tab.train_values()["warmup_epochs"] == 1.5


def test_the_panes_keep_the_sizes_they_were_left_at(qtbot, window, tiny_dataset):
    """A splitter dragged in the Dataset and Runs tabs came back at its first sizes after a restart; so does the
    one between the Train tab's Log and Result (the log's lines wrapped to five on a 1024-px screen)."""
    from PySide6.QtWidgets import QSplitter

    def splitters(w):
        return [
            w.dataset_panel.findChildren(QSplitter)[0],
            w.runs_tab.findChildren(QSplitter)[0],
            w.train_tab.bottom_split,
        ]

    w = window(data_dir=str(tiny_dataset))
    w.tabs.setCurrentIndex(1)
    w.tabs.setCurrentIndex(4)  # (the Runs tab is built when first shown)
    assert w.train_tab.bottom_split.indexOf(w.train_tab.log.parentWidget()) == 0
    qtbot.waitUntil(lambda: all(s.sizes()[0] > 0 for s in splitters(w)), timeout=10000)
    for splitter in splitters(w):
        sizes = splitter.sizes()
        splitter.setSizes([sizes[0] + 40, sizes[1] - 40, *sizes[2:]])
    wanted = [s.sizes() for s in splitters(w)]
    w.close()
    w2 = window(data_dir=str(tiny_dataset))
    w2.tabs.setCurrentIndex(1)
    w2.tabs.setCurrentIndex(4)
    assert [s.sizes() for s in splitters(w2)] == wanted


def test_dropping_a_folder_opens_it(qtbot, window, tiny_dataset, tmp_path):
    w = window(load_initial=False)
    w.tabs.setCurrentIndex(1)
    assert not w.handle_dropped_paths([str(tmp_path / "nothing-here")])
    with qtbot.waitSignal(w.dataset_panel.scan_finished, timeout=60000):
        assert w.handle_dropped_paths([str(tiny_dataset)])
    assert w.tabs.currentWidget() is w.dataset_panel
    assert w.dataset_panel.index.root == str(tiny_dataset)


def test_dropping_files_with_a_folder_sends_all_of_them_to_predict(qtbot, window, tiny_dataset, monkeypatch):
    w = window(load_initial=False)
    sent = []
    monkeypatch.setattr(w.predict_tab, "predict_paths", lambda paths: sent.append(paths))
    image = next(p for p in Path(tiny_dataset).rglob("*") if p.is_file())
    assert w.handle_dropped_paths([str(image), str(tiny_dataset)])
    assert sent == [[str(image), str(tiny_dataset)]] and w.tabs.currentWidget() is w.predict_tab
    assert w.dataset_panel.index is None  # not opened as the data set, images ignored


def test_a_finished_run_fills_an_empty_evaluate_tab_or_its_own_but_replaces_nothing_else(qtbot, window, tmp_path):
    """After training in the app, the Evaluate tab said "Nothing evaluated yet" though the run had evaluated."""
    import json

    from core.engine import FitResult
    from gui.evaluate_tab import PAGE_EMPTY, PAGE_RESULTS

    w = window(load_initial=False)
    runs = []
    for name in ("first", "second"):
        run = tmp_path / name
        run.mkdir()
        ev = {"split": "val", "class_names": ["a", "b"], "confusion_matrix": [[1, 0], [0, 1]], "accuracy": 1.0}
        (run / "evaluation.json").write_text(json.dumps(ev | {"num_samples": 2, "per_class": [], "misclassified": []}))
        runs.append(run)
    tab = w.evaluate_tab
    assert tab.stack.currentIndex() == PAGE_EMPTY
    done = FitResult("completed", "", 1, 1.0, str(runs[0]), evaluation={"accuracy": 1.0})
    w.train_tab.run_finished.emit(done)
    assert tab.stack.currentIndex() == PAGE_RESULTS and runs[0].name in tab.source_label.text()
    w.train_tab.run_finished.emit(FitResult("completed", "", 1, 1.0, str(runs[1]), evaluation={"accuracy": 1.0}))
    assert runs[0].name in tab.source_label.text()  # what the user looks at is not replaced
    assert w.tabs.currentWidget() is not tab  # and the tab is not switched to

    # the run shown trains on ("Train more epochs"): its new evaluation.json replaces the one shown
    ev = json.loads((runs[0] / "evaluation.json").read_text())
    (runs[0] / "evaluation.json").write_text(json.dumps(ev | {"accuracy": 0.5, "confusion_matrix": [[1, 1], [0, 2]]}))
    assert tab.acc_card.value.text() == "100.0%"
    w.train_tab.run_finished.emit(FitResult("completed", "", 2, 1.0, str(runs[0]), evaluation={"accuracy": 0.5}))
    assert tab.acc_card.value.text() == "50.0%" and runs[0].name in tab.source_label.text()


def test_result_buttons_switch_tabs(qtbot, window, monkeypatch, tmp_path):
    w = window(load_initial=False)
    calls = []
    best = tmp_path / "r1" / "best.pt"  # (Predict is asked only for a checkpoint that is there)
    best.parent.mkdir()
    best.write_bytes(b"placeholder")
    if w.evaluate_tab is not None:
        monkeypatch.setattr(w.evaluate_tab, "show_run", lambda d: calls.append(("eval", d)))
        w.train_tab.evaluate_requested.emit("/runs/r1")
        assert calls[-1] == ("eval", "/runs/r1") and w.tabs.currentWidget() is w.evaluate_tab
    if w.predict_tab is not None:
        monkeypatch.setattr(w.predict_tab, "set_checkpoint", lambda p: calls.append(("pred", p)))
        w.train_tab.predict_requested.emit(str(best))
        assert calls[-1] == ("pred", str(best)) and w.tabs.currentWidget() is w.predict_tab
    opened = []
    monkeypatch.setattr("gui.widgets.QDesktopServices.openUrl", lambda url: opened.append(url) or True)
    w.train_tab.open_folder_requested.emit("/runs/r1")
    assert opened and opened[0].toLocalFile() == "/runs/r1"
    # no file manager on this system: a message gives the path instead of nothing happening
    monkeypatch.setattr("gui.widgets.QDesktopServices.openUrl", lambda url: False)
    assert w.open_folder("/runs/r2") is False
    box = w.findChild(QMessageBox, "noFileManager")
    assert box is not None and box.isVisible() and "/runs/r2" in box.text()
    box.close()


def test_status_bar_shows_the_device(qtbot, window):
    w = window(load_initial=False)
    w.start_background_init()
    qtbot.waitUntil(lambda: "detecting" not in w.device_label.text(), timeout=120000)
    text = w.device_label.text()
    assert text.startswith("GPU") or (text.startswith("CPU, ") and text.endswith("threads"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="offscreen start-up path")
def test_application_main_shows_the_window(tmp_path):
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "RESNEXT_STUDIO_EXIT_WHEN_SHOWN": "1",
        "PYTHONPATH": str(REPO),
        "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
        "HOME": str(tmp_path),
    }
    proc = subprocess.run(
        [sys.executable, str(REPO / "main.py"), "gui"], env=env, cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "window-visible True" in proc.stdout


def _app_process(tmp_path: Path, *argv: str) -> subprocess.Popen:
    """The app in a process of its own (offscreen; its settings and runs under tmp_path), saying
    "window-visible True" on stdout once its window shows."""
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "RESNEXT_STUDIO_SAY_SHOWN": "1",
        "RESNEXT_STUDIO_RUNS": str(tmp_path / "runs"),
        "PYTHONPATH": str(REPO),
        "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
        "HOME": str(tmp_path),
    }
    return subprocess.Popen(
        [sys.executable, *argv], env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT", "SIGHUP"])
def test_a_terminating_signal_closes_the_window_as_quit_does(tmp_path, sig):
    """A logout's SIGTERM (or Ctrl-C in the terminal) ended the process on the spot: the settings changed since
    the last quit were lost (a tiny model then came back with 64-px images: 4x the work) and so was the window's
    place. Now the window closes as File > Quit does, saving them, and the process exits 0."""
    import select
    import signal

    proc = _app_process(tmp_path, str(REPO / "main.py"), "gui")
    try:  # (deadlines below the test's own: a hang fails this test, not the whole run)
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        assert ready and proc.stdout.readline().strip() == "window-visible True"
        proc.send_signal(getattr(signal, sig))
        _out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "Error" not in err, err[-2000:]  # (a wake-up left unread spun the loop)
    saved = list((tmp_path / "cfg").rglob("*.ini"))
    assert saved and "geometry" in saved[0].read_text(encoding="utf-8")  # the settings were written on the way out
    assert "image_size" in saved[0].read_text(encoding="utf-8")


LATE_JOB = """
import sys, time
import gui.app as app_module
from gui.worker import FunctionWorker, start_worker

real = app_module.create_application

def create(*args, **kwargs):
    app = real(*args, **kwargs)

    def late_job():  # started after the window's close waited for its workers, as a queued answer may ask
        def job(stop=None):
            while not stop.stopped:
                time.sleep(0.01)
            print("job-stopped", flush=True)

        start_worker(FunctionWorker(job))

    app.aboutToQuit.connect(late_job)
    return app

app_module.create_application = create
import main
sys.exit(main.entry())
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_job_started_as_the_window_closes_is_stopped_and_waited_for(tmp_path):
    """A job started after the window's close had waited for its workers (the model's summary, asked for by the
    device's answer arriving then) was still running when Python let go of its thread: Qt ended the process with
    "QThread: Destroyed while thread is still running" (SIGABRT, 2 of ~1,200 launches closed during start-up)."""
    import select
    import signal

    proc = _app_process(tmp_path, "-c", LATE_JOB)
    try:  # (deadlines below the test's own: a hang fails this test, not the whole run)
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        assert ready and proc.stdout.readline().strip() == "window-visible True"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert "Destroyed while thread" not in err, err[-2000:]
    assert proc.returncode == 0 and "job-stopped" in out, (proc.returncode, err[-2000:])


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_an_app_started_under_nohup_outlives_its_terminal(qtbot, window):
    """nohup starts a process with SIGHUP ignored; the app's own handler replaced that and closed the window."""
    import signal

    from gui.app import close_on_signals

    before = {s: signal.getsignal(s) for s in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)}
    w = window(load_initial=False)
    try:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        close_on_signals(w)
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN  # left ignored, as nohup asked
        assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN, before[signal.SIGTERM])
    finally:
        signal.set_wakeup_fd(-1)
        for sig, handler in before.items():
            signal.signal(sig, handler)


def test_file_dialogs_open_where_the_user_last_went_else_home(qapp, tmp_path, monkeypatch):
    from gui.widgets import dialog_dir, remember_dir

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    assert dialog_dir("exports") == str(tmp_path / "home")  # never the process's working directory
    (tmp_path / "out").mkdir()
    remember_dir("exports", str(tmp_path / "out" / "predictions.csv"))
    assert dialog_dir("exports", "x.csv") == str(tmp_path / "out" / "x.csv")
    assert dialog_dir("images") == str(tmp_path / "home")  # each kind remembers its own folder
    (tmp_path / "out").rmdir()
    assert dialog_dir("exports") == str(tmp_path / "home")  # a folder since removed: home again
    (tmp_path / "data").mkdir()  # first time, with a data set open: Predict's Open images… starts beside it
    assert dialog_dir("images", near=str(tmp_path / "data")) == str(tmp_path / "data")
    assert dialog_dir("images", near=str(tmp_path / "gone")) == str(tmp_path / "home")


def test_the_status_bar_says_when_training_is_paused(qtbot, window):
    """Paused, the status bar still said "Training on CPU"; it says "Paused on CPU" until Resume."""
    from gui.train_tab import IDLE, PAUSED, PREPARING, RUNNING

    w = window(load_initial=False)
    tab = w.train_tab
    w._on_device_known("CPU, 2 threads")
    tab._set_state(PREPARING)  # as a run starts: the device is known at the fit's start
    try:
        tab.device_in_use.emit("CPU")
        tab._set_state(RUNNING)
        assert w.device_label.text() == "Training on CPU"
        tab._set_state(PAUSED)  # what Pause does to the state
        assert w.device_label.text() == "Paused on CPU"
        tab._set_state(RUNNING)  # Resume
        assert w.device_label.text() == "Training on CPU"
    finally:
        tab._set_state(IDLE)  # (closing waits for a run that is not idle)
    tab.device_in_use.emit("")  # the run ended: the device found at start-up again
    assert w.device_label.text() == "CPU, 2 threads"


def test_disabled_controls_look_disabled(qtbot):
    """The style's one text colour for every widget made a disabled check box, field or combo-box entry look like an
    enabled one ("Freeze the backbone" without weights to freeze; picking "Linear probe" then did nothing)."""
    from PySide6.QtGui import QColor
    from PySide6.QtWidgets import QCheckBox, QWidget

    from gui.app import load_stylesheet

    def darkest(widget: QWidget) -> int:
        image = widget.grab().toImage()
        return min(QColor(image.pixel(x, y)).lightness() for x in range(image.width()) for y in range(image.height()))

    host = QWidget()
    host.setStyleSheet(load_stylesheet())
    qtbot.addWidget(host)
    boxes = [QCheckBox("Freeze the backbone", host) for _ in range(2)]
    boxes[1].setEnabled(False)
    for i, box in enumerate(boxes):
        box.move(0, 30 * i)
    host.show()
    enabled, disabled = (darkest(b) for b in boxes)
    assert enabled < 80 and disabled > enabled + 60, (enabled, disabled)


def test_a_dark_desktop_palette_leaves_every_field_and_table_readable(qtbot):
    """Under a dark desktop theme fields, tables and menus kept its near-black base while the stylesheet wrote its
    dark text on them: the settings could not be read. The app draws its light theme over a palette of its own."""
    from PySide6.QtGui import QColor, QPalette, QStandardItem, QStandardItemModel
    from PySide6.QtWidgets import QLineEdit, QMenu, QTableView, QVBoxLayout, QWidget

    app = QApplication.instance()
    before, style = app.palette(), app.style().name()
    dark = QPalette()
    for role, colour in (("Window", "#2b2b2b"), ("WindowText", "#e6e6e6"), ("Base", "#1e1e1e"), ("Text", "#e6e6e6")):
        dark.setColor(getattr(QPalette.ColorRole, role), QColor(colour))
    dark.setColor(QPalette.ColorRole.Button, QColor("#353535"))
    app.setPalette(dark)  # what a dark theme hands the application
    try:
        gui_app.create_application()
        host = QWidget()
        qtbot.addWidget(host)
        lay = QVBoxLayout(host)
        field = QLineEdit("/home/me/photos")
        model = QStandardItemModel(2, 1)
        model.setItem(0, 0, QStandardItem("cat.jpg"))
        table = QTableView()
        table.setModel(model)
        lay.addWidget(field)
        lay.addWidget(table)
        menu = QMenu()
        menu.addAction("Start training")
        host.show()
        for widget in (field, table.viewport(), menu):
            pal = widget.palette()
            base = pal.color(QPalette.ColorRole.Base if widget is not menu else QPalette.ColorRole.Window)
            text = pal.color(QPalette.ColorRole.Text if widget is not menu else QPalette.ColorRole.WindowText)
            assert base.lightness() > 200 and text.lightness() < 80, (widget, base.name(), text.name())
        image = field.grab().toImage()  # drawn light: the field's inside, away from its frame
        assert QColor(image.pixel(image.width() - 6, image.height() // 2)).lightness() > 200
    finally:
        app.setStyleSheet("")
        app.setPalette(before)
        app.setStyle(style)


def test_every_field_of_a_tab_has_its_own_alt_letter(qtbot, window):
    """Keyboard users tabbed through some twenty fields to reach one: no label had an Alt+letter. Each tab's
    letters are its own (the hidden tabs' labels do not answer) and leave the menus' F, T, V and H alone."""
    import re

    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QLabel

    w = window(data_dir=None)
    menus = {re.search(r"&(\w)", a.text()).group(1).lower() for a in w.menuBar().actions()}
    assert menus == {"f", "t", "v", "h"}
    for i in range(w.tabs.count()):
        page = w.tabs.widget(i)
        letters = [
            re.search(r"&(\w)", label.text()).group(1).lower()
            for label in page.findChildren(QLabel)
            if label.buddy() is not None and "&" in label.text()
        ]
        assert len(letters) == len(set(letters)) and not set(letters) & menus, (w.tabs.tabText(i), letters)
    expected = {"Dataset": 8, "Train": 16, "Evaluate": 3, "Predict": 2}
    for name, count in expected.items():
        page = w.tabs.widget([w.tabs.tabText(i) for i in range(w.tabs.count())].index(name))
        assert sum(lb.buddy() is not None for lb in page.findChildren(QLabel)) >= count, name
    w.tabs.setCurrentWidget(w.train_tab)
    w.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w, timeout=5000)
    qtbot.keyClick(w.windowHandle(), Qt.Key.Key_E, Qt.KeyboardModifier.AltModifier)  # (as typed: shortcuts too)
    qtbot.waitUntil(w.train_tab.epochs_spin.hasFocus, timeout=5000)
    qtbot.keyClick(w.windowHandle(), Qt.Key.Key_L, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(w.train_tab.lr_edit.hasFocus, timeout=5000)


def test_cyclic_garbage_is_collected_on_the_gui_thread_not_a_workers(qtbot):
    """A training thread's collection freed Qt objects of the GUI thread there: the test process crashed."""
    import gc
    import threading

    freed_in: list[str] = []

    class Cycle:
        def __init__(self) -> None:
            self.me = self

        def __del__(self) -> None:
            freed_in.append(threading.current_thread().name)

    assert not gc.isenabled()  # (the conftest installs the app's collector, as create_application does)
    Cycle()  # unreachable at once, freed only by a cyclic collection

    def churn() -> None:  # allocations far past every threshold: an automatic collection would run here
        for _ in range(20):
            junk = [[] for _ in range(10 * gc.get_threshold()[0])]
            for a, b in zip(junk, junk[1:], strict=False):
                a.append(b)
                b.append(a)

    worker = threading.Thread(target=churn, name="worker")
    worker.start()
    worker.join()
    assert freed_in == []  # not in the worker
    qtbot.waitUntil(lambda: bool(freed_in), timeout=10_000)  # the GUI thread's timer collects
    assert freed_in == [threading.main_thread().name]


def test_a_check_box_with_the_keyboard_focus_is_plain_to_see(qtbot):
    """Fusion marks a focused check box or radio button with a pale box round its text alone: a keyboard user
    lost track of the focus on the settings forms. style.qss gives it a tinted band."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QColor
    from PySide6.QtWidgets import QCheckBox, QLineEdit, QVBoxLayout, QWidget

    from gui.app import load_stylesheet

    host = QWidget()
    qtbot.addWidget(host)
    host.setStyleSheet(load_stylesheet())
    lay = QVBoxLayout(host)
    edit, box = QLineEdit(), QCheckBox("Freeze the backbone")
    lay.addWidget(edit)
    lay.addWidget(box)
    host.show()
    host.activateWindow()
    qtbot.waitUntil(host.isActiveWindow)
    band = QColor("#d6e4fb")

    def tinted() -> int:
        img = box.grab().toImage()
        return sum(img.pixelColor(x, y) == band for y in range(0, img.height(), 2) for x in range(0, img.width(), 2))

    edit.setFocus()
    before = tinted()
    qtbot.keyClick(edit, Qt.Key.Key_Tab)
    assert box.hasFocus()
    assert before == 0 and tinted() > box.width() * box.height() // 40  # (a tenth of the pixels sampled)


def test_f5_refreshes_the_runs_list_on_its_tab_and_starts_training_elsewhere(qtbot, window, monkeypatch):
    """F5 on the Runs tab (where it means Refresh) switched to Train and started a run, unasked."""
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    w = window(load_initial=False)
    w.activateWindow()
    runs = w.runs_tab
    w.tabs.setCurrentIndex(4)
    refreshed, started = [], []
    monkeypatch.setattr(runs, "refresh", lambda: refreshed.append(1))
    monkeypatch.setattr(w.train_tab, "start", lambda: started.append(1))
    bar = w.tabs.tabBar()  # (where the focus is after clicking a tab; no run yet, so no table)
    bar.setFocus()
    qtbot.waitUntil(bar.hasFocus, timeout=5000)
    QTest.keyClick(bar, Qt.Key.Key_F5)
    assert refreshed == [1] and started == [] and w.tabs.currentIndex() == 4
    w.tabs.setCurrentIndex(0)
    QTest.keyClick(bar, Qt.Key.Key_F5)
    assert started == [1] and w.tabs.currentWidget() is w.train_tab and refreshed == [1]
    w.tabs.setCurrentIndex(4)
    w.actions["start"].trigger()  # the menu's Start training starts, on any tab
    assert started == [1, 1] and w.tabs.currentWidget() is w.train_tab
    assert not w.actions["quit"].shortcut().isEmpty()  # (Ctrl+Q where the desktop names no Quit key)


def test_predicting_with_a_run_deleted_outside_the_app_says_so(qtbot, window, tmp_path):
    """The Train tab's Predict on a run deleted in the file manager added a "File: …/best.pt" model that did not
    exist, and classifying then said "FileNotFoundError: …" with a traceback on stderr, as if the app had failed."""
    from gui.predict_tab import PredictorCache

    w = window(load_initial=False)
    gone = tmp_path / "runs" / "20260101-120000-resnext11_2x4d-pets" / "best.pt"
    before = w.tabs.currentIndex()
    w.predict_with(str(gone))
    assert w.tabs.currentIndex() == before
    assert w.statusBar().currentMessage() == (
        f"{gone}: no such checkpoint file: its folder {gone.parent.name} was deleted or moved"
    )
    assert w.predict_tab.model_combo.findData(str(gone)) < 0
    with pytest.raises(ValueError, match="no such checkpoint file: its folder"):  # (a user error: no traceback)
        PredictorCache().get(str(gone))
    w.predict_with(str(tmp_path / ("n" * 300) / "best.pt"))  # a name too long: said, not an OSError in a slot
    assert w.tabs.currentIndex() == before and ": no such checkpoint file" in w.statusBar().currentMessage()


def test_the_exports_of_the_evaluate_and_runs_tabs_are_said_in_the_status_bar(qtbot, window):
    w = window(load_initial=False)
    for tab in (w.evaluate_tab, w.runs_tab):
        tab.status_message.emit(f"Saved it from {type(tab).__name__}")
        assert w.statusBar().currentMessage() == f"Saved it from {type(tab).__name__}"


def test_show_runs_folder_on_a_runs_path_that_cannot_be_a_folder_says_why(qtbot, window, tmp_path, monkeypatch):
    """A runs path that is a file (or under one) raised from mkdir, on stderr only, and nothing happened."""
    import gui.main_window as main_window

    opened: list[str] = []
    monkeypatch.setattr(main_window, "show_folder", lambda folder, parent=None: opened.append(folder) or True)
    w = window(load_initial=False)
    a_file = tmp_path / "runs-file"
    a_file.write_text("not a folder")
    for path, reason in ((a_file, "it is a file, not a folder"), (a_file / "runs", "Not a directory")):
        w.runs_dir = str(path)
        w.actions["runs_folder"].trigger()
        assert w.statusBar().currentMessage() == f"Cannot show the runs folder {path}: {reason}"
    assert opened == []
    w.runs_dir = str(tmp_path / "new" / "runs")  # (one that can be made is, and shown)
    w.actions["runs_folder"].trigger()
    assert opened == [str(tmp_path / "new" / "runs")] and (tmp_path / "new" / "runs").is_dir()


def _problem_label(w):
    from PySide6.QtWidgets import QLabel

    return w.statusBar().findChild(QLabel, "settingsProblem")


def test_a_settings_file_that_cannot_be_written_is_said_once_at_start(qtbot, window, tmp_path, capsys):
    """Its changes were lost without a word (nothing read QSettings.status()). Its folder's path runs through a
    file here: root, as the tests run, is refused that too."""
    from PySide6.QtCore import QSettings

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(blocker / "config"))
    path = gui_app.settings().fileName()
    w = window(load_initial=False)
    label = _problem_label(w)
    assert label is not None and label.isVisible()
    assert label.text() == f"Settings are not saved: {path} cannot be written (not-a-folder is a file, not a folder)"
    assert w.settings_problem == label.text()
    w.dataset_panel.val_spin.setValue(33)
    w.close()  # the settings are written now, and fail: not said again
    assert not Path(path).exists()  # (the writes did fail)
    assert capsys.readouterr().err == ""
    assert len([c for c in w.statusBar().children() if c.objectName() == "settingsProblem"]) == 1


def test_settings_that_cannot_be_written_when_the_window_closes_are_said(qtbot, window, capsys):
    """Writable at start, not at the close (their folder replaced by a file): said as the window closes."""
    import shutil

    path = Path(gui_app.settings().fileName())
    w = window(load_initial=False)
    assert _problem_label(w) is None  # (nothing to say yet)
    w.dataset_panel.val_spin.setValue(33)
    shutil.rmtree(path.parent, ignore_errors=True)
    path.parent.write_text("in the way")
    w.close()
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"Settings are not saved: {path} cannot be written ({path.parent.name} is a file, not a folder)"
    ]
    assert w.settings_problem == err.strip()


def test_a_settings_file_that_cannot_be_read_is_said_at_start(qtbot, window):
    path = Path(gui_app.settings().fileName())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xff\xfe[[[\x00\x00garbage=\n[a\n")
    from PySide6.QtCore import QSettings

    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(path.parent.parent))  # (read anew)
    w = window(load_initial=False)
    label = _problem_label(w)
    assert label is not None and label.isVisible()
    assert label.text() == (
        f"Settings could not all be read from {path} (not an INI file): what could not be read is at its defaults"
    )


def test_a_folder_scan_in_the_background_loads_no_torch(tmp_path):
    """A background job's stop token came from core.engine, which imports torch: the first folder scan waited about
    4 s for that import (a job that never touches the model)."""
    from tests.gui.conftest import make_dataset

    data = make_dataset(tmp_path / "data", {"a": 3, "b": 3})
    code = (
        "import sys\n"
        "from core.data import scan\n"
        "from gui.worker import FunctionWorker\n"
        f"w = FunctionWorker(scan, {str(data)!r})\n"
        "got = []\n"
        "w.result.connect(got.append)\n"
        "w.run()\n"
        "assert got and got[0].counts() == {'a': 3, 'b': 3}, got\n"
        "print('torch' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


def test_closing_during_the_weights_download_asks_about_the_download(qtbot, window, answer_question, monkeypatch):
    """Closing while the ImageNet weights downloaded asked about "a training run in progress" that "keeps
    everything trained so far": there was no run yet, nothing to keep or resume. And each Cancel of a download
    printed a traceback (DownloadStopped was not known as the user's own doing)."""
    from core.models import DownloadStopped
    from gui.worker import _is_user_error

    assert _is_user_error(DownloadStopped())
    w = window(load_initial=False)
    monkeypatch.setattr(w.train_tab, "is_running", lambda: True)
    w.train_tab._download_worker = object()
    seen = answer_question("Keep downloading")
    assert not w.close()  # (kept open)
    text, buttons, title = seen[0]
    assert title == "Downloading the ImageNet weights" and "Cancel and close" in buttons and "trained" not in text
    w.train_tab._download_worker, w.confirm_close = None, False  # (pytest-qt closes it before monkeypatch undoes)
