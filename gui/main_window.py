"""MainWindow: the tabs Dataset · Train · Evaluate · Predict · Runs, their wiring, drops, settings, closing."""

from __future__ import annotations

import contextlib
import html
import importlib
import os
import sys
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings, QSize, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QFrame,
    QGridLayout,
    QLabel,
    QLayout,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QSplitter,
    QStyle,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from gui.app import (
    SAMPLE_DIR,
    freeze_imported_objects,
    pause_gc_for_imports,
    resume_gc,
    settings,
    settings_problem,
    written_settings,
)
from gui.dataset_panel import DatasetPanel
from gui.train_tab import IDLE, PAUSED, TrainTab
from gui.widgets import (
    ElidedLabel,
    ask,
    gone_checkpoint,
    keep_focus_in_view,
    keyboard_friendly,
    make_folder,
    show_folder,
)
from gui.worker import FunctionWorker, connect_worker, start_worker, wait_for_workers

TAB_NAMES = ("Dataset", "Train", "Evaluate", "Predict", "Runs")
OPTIONAL_TABS = {
    "evaluate": ("evaluate_tab", "EvaluateTab"),
    "predict": ("predict_tab", "PredictTab"),
    "runs": ("runs_tab", "RunsTab"),
}


def describe_device() -> str:
    """'GPU: <name>' or 'CPU, N threads' (imports torch: call it off the GUI thread)."""
    import torch

    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        name = torch.cuda.get_device_name(0)
        return f"GPU: {name}" + (f" (×{n})" if n > 1 else "")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "GPU: Apple MPS"
    return f"CPU, {torch.get_num_threads()} threads"


def warm_up() -> str:
    """Import the heavy modules once in the background, so the first Start / summary does not stall."""
    device = describe_device()
    for name in ("core.data", "core.models", "core.engine"):
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    return device


def import_plotting() -> None:
    """Import matplotlib's Qt canvas (about a second) so that creating the charts afterwards is instant."""
    importlib.import_module("gui.charts")


def _placeholder(text: str) -> QWidget:
    w = QWidget()
    lay = QVBoxLayout(w)
    label = QLabel(text)
    label.setObjectName("placeholder")
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setWordWrap(True)
    lay.addWidget(label)
    return w


def _optional_tab(module: str, cls: str) -> tuple[Any | None, QWidget]:
    """Instantiate gui.<module>.<cls> if it exists; otherwise a placeholder label explaining why."""
    try:
        mod = importlib.import_module(f"gui.{module}")
        widget = getattr(mod, cls)()
        return widget, widget
    except Exception as exc:  # noqa: BLE001 — a broken optional tab must not stop the window
        print(f"{module}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return None, _placeholder(f"This tab is not available in this build ({type(exc).__name__}: {exc}).")


def first_size(free: QSize | None) -> QSize:
    """The window's size on a first start: 1280 x 820, or less on a smaller screen (its free area less the title
    bar and frame, ~40 px; below what the tabs need, they scroll). It was never below 800 x 600: on a 1280 x 720
    screen at 150 % (853 x 480 free) its bottom and status bar were off the screen."""
    if free is None or free.isEmpty():
        return QSize(1280, 820)
    return QSize(min(1280, max(400, free.width() - 16)), min(820, max(300, free.height() - 40)))


def first_maximized(free: QSize | None) -> bool:
    """Whether a first start fills the screen: below 1280 x 720 free (a 1024 x 600 netbook, a 1366 x 768 laptop at
    125 %) the window's own first size leaves the charts a few dozen pixels and every pixel counts."""
    return free is not None and not free.isEmpty() and (free.width() < 1280 or free.height() < 720)


def fitted_width(need: int, chrome: int, free: int) -> int | None:
    """The width for a text `need` px wide unwrapped, in a dialog that adds `chrome` px (icon, margins), on a screen
    `free` px wide: None when it fits whole; else what the screen leaves it (its lines then wrap)."""
    frame = 40  # (the window's frame and a margin from the screen's edges)
    return None if need + chrome + frame <= free else max(160, free - chrome - frame)


class ShortcutsDialog(QDialog):
    """Help ▸ Keyboard shortcuts: the table of keys, as wide as its widest row so that no row wraps, up to the
    screen's width. (A QMessageBox sized its text ~72 average characters wide, and 6 of the 16 descriptions
    wrapped; it also never grows past 1000 px, so a 15 pt desktop font wrapped a row whatever it was told.)"""

    def __init__(self, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("shortcuts")
        self.setWindowTitle("Keyboard shortcuts")
        icon = QLabel()
        size = self.style().pixelMetric(QStyle.PixelMetric.PM_MessageBoxIconSize, None, self)
        icon.setPixmap(self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxInformation).pixmap(size, size))
        self.label = QLabel(text)
        self.label.setObjectName("shortcutsText")
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.label.setWordWrap(False)  # (its width: the widest row)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok)
        buttons.accepted.connect(self.accept)
        ok = buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setDefault(True)
        ok.setFocus()
        grid = QGridLayout(self)
        grid.setHorizontalSpacing(18)
        grid.addWidget(icon, 0, 0, Qt.AlignmentFlag.AlignTop)
        grid.addWidget(self.label, 0, 1)
        grid.addWidget(buttons, 1, 0, 1, 2)
        grid.setSizeConstraint(QLayout.SizeConstraint.SetFixedSize)  # (its size follows the text's, never less)
        self.fit_to_screen()

    def fit_to_screen(self) -> None:
        """Rows wrap only on a screen narrower than the widest of them."""
        screen = (self.parentWidget() or self).screen() or QApplication.primaryScreen()
        if screen is None:
            return
        self.ensurePolished()  # (the style sheet's font, the rows' width)
        need = self.label.sizeHint().width()
        chrome = self.sizeHint().width() - need
        width = fitted_width(need, chrome, screen.availableGeometry().width())
        self.label.setWordWrap(width is not None)
        if width is not None:
            self.label.setFixedWidth(width)


def _splitter_keys(name: str, widget: QWidget) -> list[tuple[str, QSplitter]]:
    """The settings key of each splitter in a tab (its place, direction and panes: a changed layout starts
    afresh rather than from another splitter's sizes)."""
    found = widget.findChildren(QSplitter)
    return [
        (f"splitters/{name}/{i}-{'h' if s.orientation() == Qt.Orientation.Horizontal else 'v'}{s.count()}", s)
        for i, s in enumerate(found)
    ]


def _plain(value: Any) -> Any:
    """A settings value in a form to compare (the INI file gives strings back for the numbers written)."""
    if isinstance(value, QByteArray):
        return bytes(value.data())
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value)
    return str(value)


def _settings_snapshot() -> dict[str, Any]:
    """Every settings value as it is now, in _plain's form."""
    s = settings()
    return {k: _plain(s.value(k)) for k in s.allKeys()}


def _restore_splitters(name: str, widget: QWidget) -> None:
    """The pane sizes the user left a tab's splitters at, when the window was last closed."""
    for key, splitter in _splitter_keys(name, widget):
        state = settings().value(key)
        if isinstance(state, QByteArray) and not state.isEmpty():
            splitter.restoreState(state)


class MainWindow(QMainWindow):
    """The application window. Tests use `.tabs`, the tab attributes and `confirm_close`."""

    def __init__(
        self, data_dir: str | None = None, runs_dir: str | None = None, load_initial: bool = True, defer: bool = False
    ) -> None:
        """`defer=True` (the application) shows the window first and loads matplotlib and the other tabs just
        after, in the background; tests build everything at once."""
        super().__init__()
        self.setWindowTitle("ResNeXt Studio")
        self.setAcceptDrops(True)
        self.confirm_close = True
        self.runs_dir = runs_dir
        self._closing = False
        self.workers_left = False  # closing, the jobs still running after the wait for them
        self._device_text = ""
        self._training_device = ""  # the device a run trains on now ("" when none does)
        self._settings_at_start = _settings_snapshot()  # (closing: another window's changes since are kept)

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        # On a screen smaller than the tabs need (1366 x 768 at 150 %: 910 x 512 free), the window scrolls; the tabs
        # were cut at its edge ("Start training" read "art traini"). Elsewhere its minimum keeps the scroll bars off.
        self.scroller = QScrollArea()
        self.scroller.setFrameShape(QFrame.Shape.NoFrame)
        self.scroller.setWidgetResizable(True)
        self.scroller.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # (a stop of its own in the Tab chain, showing nothing)
        self.scroller.setWidget(self.tabs)
        self.setCentralWidget(self.scroller)

        self.dataset_panel = DatasetPanel(defer_charts=defer)
        self.train_tab = TrainTab(self.dataset_panel, runs_dir=runs_dir, defer_charts=defer)
        self.tabs.addTab(self.dataset_panel, "Dataset")
        self.tabs.addTab(self.train_tab, "Train")
        self._optional: dict[str, Any] = {}  # name -> widget (or None when unavailable), once built
        for name in OPTIONAL_TABS:
            self.tabs.addTab(_placeholder("Loading…"), name.capitalize())
        self.tabs.currentChanged.connect(self._on_tab_changed)

        self.device_label = QLabel("Device: detecting…")
        self.device_label.setObjectName("deviceLabel")
        self.statusBar().addPermanentWidget(self.device_label)
        # (the tabs have read their settings: a file that could not be read is known; and no message shows yet, which
        # would hide the label for good: QStatusBar shows a widget added under a message only if it was never hidden)
        self.settings_problem = ""  # what was said about the settings file (once): see _say_settings_problem
        self._say_settings_problem(settings_problem())
        self.dataset_panel.status_message.connect(self._show_status)
        self.train_tab.status_message.connect(self._show_status)
        self.train_tab.device_in_use.connect(self._on_device_in_use)
        self.train_tab.state_changed.connect(self._show_training_device)
        self._wire()
        self._build_menus()
        keyboard_friendly(self)
        keep_focus_in_view(QApplication.instance())
        if not defer:
            self.finish_deferred()

        self._restore_geometry()
        for name, widget in self._built_tabs().items():  # (the others when they are built: _optional_tab)
            _restore_splitters(name, widget)
        if load_initial:
            self._open_initial(data_dir)

    def _say_settings_problem(self, problem: str | None) -> None:
        """Say, once, that the settings are not kept (or could not be read), naming their file: in the status bar,
        where it stays, whole in its tooltip (as a message it was soon replaced by the scan's). The status bar's
        messages cover it while they show."""
        if not problem or self.settings_problem:
            return
        self.settings_problem = problem
        label = ElidedLabel(problem)
        label.setObjectName("settingsProblem")
        label.setStyleSheet("color: #b3261e;")
        label.setAccessibleName(problem)
        self.statusBar().addWidget(label, 1)

    def _built_tabs(self) -> dict[str, QWidget]:
        """The tabs built so far, by name ("dataset", "train", and those of OPTIONAL_TABS shown once)."""
        built = {name: w for name, w in self._optional.items() if w is not None}
        return {"dataset": self.dataset_panel, "train": self.train_tab, **built}

    def _show_status(self, message: str) -> None:
        self.statusBar().showMessage(message, 8000)

    # ---- tabs built on demand -----------------------------------------------------------------------------------
    def _optional_tab(self, name: str) -> Any | None:
        if name in self._optional:
            return self._optional[name]
        module, cls = OPTIONAL_TABS[name]
        widget, shown = _optional_tab(module, cls)
        self._optional[name] = widget
        i = TAB_NAMES.index(name.capitalize())
        current = self.tabs.currentIndex()
        self.tabs.blockSignals(True)
        old = self.tabs.widget(i)
        self.tabs.removeTab(i)
        old.deleteLater()
        keyboard_friendly(shown)
        if widget is not None:
            _restore_splitters(name, widget)
        self.tabs.insertTab(i, shown, name.capitalize())
        self.tabs.setCurrentIndex(current)
        self.tabs.blockSignals(False)
        if widget is not None:
            if hasattr(widget, "set_data_folder"):  # before the runs: its first model is one trained on this folder
                index = self.dataset_panel.index
                widget.set_data_folder(index.root if index is not None else None)
                self.dataset_panel.index_changed.connect(
                    lambda index: widget.set_data_folder(index.root if index is not None else None)
                )
            if self.runs_dir and hasattr(widget, "set_runs_dir"):
                widget.set_runs_dir(self.runs_dir)
            if hasattr(widget, "status_message"):  # (the Runs and Evaluate tabs' exports)
                widget.status_message.connect(self._show_status)
            if name == "runs":
                for sig, slot in (
                    ("predict_requested", self.predict_with),
                    ("evaluate_requested", self.show_evaluation),
                    ("resume_requested", self.resume_run),
                    ("extend_requested", self.resume_run),
                    ("runs_deleted", self._on_runs_deleted),
                ):
                    if hasattr(widget, sig):
                        getattr(widget, sig).connect(slot)
                t = self.train_tab
                if hasattr(widget, "set_training_busy"):  # one run trains at a time: Resume waits for it
                    widget.set_training_busy(t.state != IDLE, t.run_dir)
                    t.state_changed.connect(lambda state: widget.set_training_busy(state != IDLE, t.run_dir))
                if hasattr(widget, "set_paused_run"):
                    widget.set_paused_run(t.run_dir if t.state == PAUSED else None)
                    t.state_changed.connect(lambda state: widget.set_paused_run(t.run_dir if state == PAUSED else None))
        return widget

    @property
    def evaluate_tab(self) -> Any | None:
        return self._optional_tab("evaluate")

    @property
    def predict_tab(self) -> Any | None:
        return self._optional_tab("predict")

    @property
    def runs_tab(self) -> Any | None:
        return self._optional_tab("runs")

    def _on_tab_changed(self, i: int) -> None:
        name = TAB_NAMES[i].lower() if 0 <= i < len(TAB_NAMES) else ""
        if name in OPTIONAL_TABS:
            self._optional_tab(name)

    def finish_deferred(self) -> None:
        """Create the charts and the Evaluate / Predict / Runs tabs (synchronously)."""
        self.dataset_panel.ensure_charts()
        self.train_tab.ensure_charts()
        for name in OPTIONAL_TABS:
            self._optional_tab(name)
        self.settle_minimum_size()

    def settle_minimum_size(self) -> None:
        """Fix the window's smallest size at what its tabs need now (all built), capped at the screen's free area
        (below that, `scroller` scrolls them).

        A window grows to its layout's minimum whenever that changes: a longer message, a wider name or a wrapped
        error line then pushed its edge past a small screen ("Idle" read "Id", the status bar was cut). With the
        minimum set, the tabs scroll instead; the window only moves when the user moves it.
        (The layout is told to leave the minimum alone: an explicit minimum alone was overridden under X11 when
        Stop's "Stopping after this batch…" widened the Train tab, and a 1024-px screen's window grew to 1060.)"""
        from PySide6.QtWidgets import QLayout

        self.layout().setSizeConstraint(QLayout.SizeConstraint.SetDefaultConstraint)  # (its own minimum, to read)
        self.scroller.setMinimumSize(self.tabs.minimumSizeHint())  # (the scroll area alone asks for next to nothing)
        need = self.minimumSizeHint()
        self.scroller.setMinimumSize(0, 0)
        free = self._free_area()
        if free is not None and not free.isEmpty():
            # Capped one way, the tabs scroll that way, and its scroll bar takes room the other way: on a 1024 x 600
            # screen the height alone was capped, and the bar then made the tabs scroll sideways too, their right
            # edge ("Evaluate again", the Support column) cut.
            vertical = self.scroller.verticalScrollBar()
            transient = self.style().styleHint(QStyle.StyleHint.SH_ScrollBar_Transient, None, vertical)
            bar = 0 if transient else self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent, None, vertical)
            if need.height() > free.height():
                need.setWidth(need.width() + bar)
            if need.width() > free.width():
                need.setHeight(need.height() + bar)
            need = need.boundedTo(free)
        self.layout().setSizeConstraint(QLayout.SizeConstraint.SetNoConstraint)
        self.setMinimumSize(need)

    def _free_area(self) -> QSize | None:
        """The screen's room for the window (without panels and docks)."""
        return self.screen().availableGeometry().size() if self.screen() else None

    def _say_gone_folder(self, _index: Any) -> None:
        """Once: the data set open last time is not there any more, and which one is open instead."""
        self.dataset_panel.scan_finished.disconnect(self._say_gone_folder)
        banner = self.dataset_panel.banner
        if not banner.text() and self.dataset_panel.index is not None:
            banner.set_info(f"{self._gone_folder}, the data set open last time, is not there any more.")
            banner.setToolTip(f"{self._gone_folder} is not there any more: {self.dataset_panel.index.root} is open")

    def _settle_after_first_scan(self, _index: Any) -> None:
        self.dataset_panel.scan_finished.disconnect(self._settle_after_first_scan)
        QTimer.singleShot(0, self.settle_minimum_size)

    def _finish_deferred_step(self, remaining: list[str]) -> None:
        """One piece per event-loop turn, so the window stays responsive while the rest appears."""
        if self._closing:
            return
        if not remaining:
            self.settle_minimum_size()
            return
        step = remaining.pop(0)
        if step == "charts":
            self.dataset_panel.ensure_charts()
            self.train_tab.ensure_charts()
        else:
            self._optional_tab(step)
        QTimer.singleShot(0, lambda: self._finish_deferred_step(remaining))

    # ---- menus --------------------------------------------------------------------------------------------------
    def _build_menus(self) -> None:
        """File, Training, View and Help menus: every main action has a menu entry and a keyboard shortcut."""
        self.actions: dict[str, QAction] = {}

        def add(menu: Any, key: str, text: str, slot: Any, shortcut: Any = None, tip: str = "") -> QAction:
            action = QAction(text, self)
            if shortcut is not None:
                action.setShortcut(QKeySequence(shortcut))
            if tip:
                action.setStatusTip(tip)
            action.triggered.connect(slot)
            menu.addAction(action)
            self.actions[key] = action
            return action

        bar = self.menuBar()
        m = bar.addMenu("&File")
        add(
            m,
            "open",
            "&Open data folder…",
            self._open_data_folder,
            QKeySequence.StandardKey.Open,
            "Choose a folder with one sub-folder per class",
        )
        add(
            m,
            "sample",
            "Open the &sample data set",
            lambda: self._open_data(str(SAMPLE_DIR)),
            tip="The bundled shapes data set",
        )
        add(
            m,
            "runs_folder",
            "Show the &runs folder",
            self._show_runs_folder,
            tip="Where every run's checkpoints, history and curves are saved",
        )
        m.addSeparator()
        quit_keys = QKeySequence(QKeySequence.StandardKey.Quit)  # (none on Windows and some Linux desktops)
        add(m, "quit", "&Quit", self.close, quit_keys if not quit_keys.isEmpty() else "Ctrl+Q")

        m = bar.addMenu("&Training")
        t = self.train_tab
        # F5, not Ctrl+Return: a window-wide Ctrl+Return would start a run from any text field of any tab
        start = add(m, "start", "&Start training", lambda: (self.tabs.setCurrentWidget(t), t.start()), "F5")
        # The key itself: on the Runs tab F5 refreshes its list, as it does in a file manager (it started a run
        # there, unasked). The menu's action keeps "F5" beside it, for its own menu only.
        start.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        QShortcut(QKeySequence("F5"), self, self._f5)
        add(m, "pause", "&Pause", t.pause, "Ctrl+Shift+P")
        add(m, "resume", "&Resume", t.resume, "Ctrl+Shift+R")
        add(m, "stop", "S&top after this batch", t.stop, "Ctrl+.")
        for key, button in (
            ("start", t.start_button),
            ("pause", t.pause_button),
            ("resume", t.resume_button),
            ("stop", t.stop_button),
        ):  # a button's tooltip names its key (only the menu did)
            keys = self.actions[key].shortcut().toString(QKeySequence.SequenceFormat.NativeText)
            button.setToolTip(f"{button.toolTip()} ({keys})")
        t.state_changed.connect(self._sync_training_actions)
        t.start_changed.connect(self._sync_training_actions)
        self._sync_training_actions()

        m = bar.addMenu("&View")
        for i, name in enumerate(TAB_NAMES):
            add(
                m, f"tab_{name.lower()}", f"&{name}", lambda _=False, i=i: self.tabs.setCurrentIndex(i), f"Ctrl+{i + 1}"
            )

        m = bar.addMenu("&Help")
        add(m, "shortcuts", "&Keyboard shortcuts", self._shortcuts, QKeySequence.StandardKey.HelpContents)
        add(m, "about", "&About ResNeXt Studio", self._about)

    def _f5(self) -> None:
        """F5: refresh the Runs tab's list there; start training everywhere else (when Start is enabled)."""
        runs = self._optional.get("runs")
        if self.tabs.currentIndex() == TAB_NAMES.index("Runs"):
            if runs is not None:
                runs.refresh()
        elif self.actions["start"].isEnabled():
            self.actions["start"].trigger()

    def _sync_training_actions(self, *_: Any) -> None:
        t, a = self.train_tab, self.actions
        for key, button in (
            ("start", t.start_button),
            ("pause", t.pause_button),
            ("resume", t.resume_button),
            ("stop", t.stop_button),
        ):
            a[key].setEnabled(button.isEnabled())

    def _open_data_folder(self) -> None:
        self.tabs.setCurrentWidget(self.dataset_panel)
        self.dataset_panel.browse()

    def _open_data(self, folder: str) -> None:
        self.tabs.setCurrentWidget(self.dataset_panel)
        self.dataset_panel.load_folder(folder)

    def _show_runs_folder(self) -> None:
        from core.runs import default_runs_dir

        folder = Path(self.runs_dir) if self.runs_dir else default_runs_dir()
        reason = make_folder(folder)
        if reason:  # a file of that name, a folder that cannot be made: it said nothing (stderr only)
            self.statusBar().showMessage(f"Cannot show the runs folder {folder}: {reason}", 15000)
            return
        self.open_folder(str(folder))

    def about_text(self) -> str:
        import PySide6

        import core

        versions = [
            f"ResNeXt Studio {core.__version__}",
            f"PySide6 {PySide6.__version__}",
            f"Python {sys.version.split()[0]}",
        ]
        torch = sys.modules.get("torch")  # loaded in the background at start-up; not imported here
        if torch is not None:
            versions.insert(1, f"PyTorch {torch.__version__}")
        device = self._device_text or "detecting…"
        return (
            "<p><b>ResNeXt Studio</b> trains, evaluates and uses ResNeXt image classifiers "
            "(Xie et al., <i>Aggregated Residual Transformations for Deep Neural Networks</i>, CVPR 2017).</p>"
            f"<p>{' · '.join(versions)}<br>Device: {device}</p>"
            "<p>Everything the window does is also a command; to list them:<br>"
            "<code>python main.py --help</code></p>"
        )

    def _about(self) -> None:
        QMessageBox.about(self, "About ResNeXt Studio", self.about_text())

    def shortcuts_text(self) -> str:
        """Every menu entry's shortcut (read from the menus, so the list cannot fall behind them) and the keys of
        the tabs themselves, as a table."""
        native = QKeySequence.SequenceFormat.NativeText
        rows = [
            (a.shortcut().toString(native), a.text().replace("&", "").rstrip("…"))
            for key, a in self.actions.items()
            if not a.shortcut().isEmpty() and not key.startswith("tab_") and key != "start"  # (F5: its own row)
        ]
        first, last = (
            self.actions[f"tab_{n.lower()}"].shortcut().toString(native) for n in (TAB_NAMES[0], TAB_NAMES[-1])
        )
        rows += [
            (f"{first} … {last}", "The tabs, left to right"),
            ("Ctrl+V", "Predict: classify the image on the clipboard"),
            ("Esc", "Predict: back to the list from an image shown large"),
            ("F5", "Start training (on the Runs tab: refresh the list)"),
            (QKeySequence(QKeySequence.StandardKey.Delete).toString(native), "Runs: delete the selected runs (asks)"),
            ("Return, Space", "Press the focused button"),
            ("Tab", "The next field (a setting takes the mouse wheel once it has the focus)"),
            ("Alt+letter", "The field whose label has that letter underlined"),
            ("Arrows, Return", "Evaluate: walk the confusion matrix, list a cell's images"),
            ("Up, Down, Return", "Predict: another class's Grad-CAM"),
            ("Return", "Runs: evaluate the run; Dataset: open an image's folder"),
        ]
        body = "".join(
            f"<tr><td><b>{html.escape(k)}</b>&nbsp;&nbsp;</td><td>{html.escape(t)}</td></tr>" for k, t in rows
        )
        return f"<table>{body}</table>"

    def _shortcuts(self) -> None:
        ShortcutsDialog(self.shortcuts_text(), self).exec()

    # ---- wiring -------------------------------------------------------------------------------------------------
    def _wire(self) -> None:
        t = self.train_tab
        t.run_finished.connect(self._on_run_finished)
        t.evaluate_requested.connect(self.show_evaluation)
        t.predict_requested.connect(self.predict_with)
        t.open_folder_requested.connect(self.open_folder)

    def _on_run_finished(self, result: object) -> None:
        runs = self._optional.get("runs")  # a tab not built yet lists the runs when it is
        if runs is not None and hasattr(runs, "refresh"):
            runs.refresh()
        run_dir = getattr(result, "run_dir", None)
        predict = self._optional.get("predict")
        if run_dir and predict is not None and hasattr(predict, "new_run_trained"):
            predict.new_run_trained(str(run_dir))
        tab = self._optional.get("evaluate")
        if run_dir and tab is None and getattr(result, "evaluation", None):
            tab = self.evaluate_tab  # (built now: it shows the evaluation below)
        if run_dir and tab is not None:
            # an empty Evaluate tab shows the run's final evaluation (it said "Nothing evaluated yet" after
            # training); one that shows the run's own evaluation.json shows the new one; other results of its
            # best.pt are marked as older than the file ("Train more epochs" had left them as the new model's)
            if getattr(result, "evaluation", None) and (
                tab.is_showing_nothing() or (tab.shows_run_evaluation(str(run_dir)) and not tab.is_evaluating())
            ):
                tab.show_run(str(run_dir))
            else:
                tab.check_stale()

    def _on_runs_deleted(self, paths: list) -> None:
        """No tab may keep pointing at a deleted run: the Train tab's result, the Evaluate tab, Predict's list."""
        self.train_tab.forget_runs(paths)
        for name in ("evaluate", "predict"):
            tab = self._optional.get(name)
            if tab is not None and hasattr(tab, "forget_runs"):
                tab.forget_runs(paths)

    def show_evaluation(self, run_dir: str) -> None:
        if self.evaluate_tab is None:
            self.statusBar().showMessage("The Evaluate tab is not available in this build.", 8000)
            return
        self.evaluate_tab.show_run(str(run_dir))
        self.tabs.setCurrentWidget(self.evaluate_tab)

    def predict_with(self, checkpoint: str) -> None:
        if self.predict_tab is None:
            self.statusBar().showMessage("The Predict tab is not available in this build.", 8000)
            return
        if not os.path.isfile(checkpoint):  # (a run deleted or moved outside the app while a tab showed it)
            self.statusBar().showMessage(f"{checkpoint}: {gone_checkpoint(checkpoint)}", 15000)
            return
        self.predict_tab.set_checkpoint(str(checkpoint))
        self.tabs.setCurrentWidget(self.predict_tab)

    def resume_run(self, run_dir: str, epochs: int | None = None) -> None:
        self.tabs.setCurrentWidget(self.train_tab)
        self.train_tab.resume_run(str(run_dir), epochs=epochs)

    def open_folder(self, path: str) -> bool:
        return show_folder(str(path), self)

    # ---- start-up -----------------------------------------------------------------------------------------------
    def _open_initial(self, data_dir: str | None) -> None:
        last = self.dataset_panel.last_folder()  # (a name that is not UTF-8 kept whole: it opened the sample set)
        target = data_dir or (last if last and Path(last).is_dir() else "")
        if not target and SAMPLE_DIR.is_dir():
            target = str(SAMPLE_DIR)
        if target:
            self.dataset_panel.load_folder(target)
            if last and not data_dir and target != last:  # (the sample opened instead, without a word)
                self._gone_folder = last
                self.dataset_panel.scan_finished.connect(self._say_gone_folder)
            if self.dataset_panel.is_scanning():
                # its tables, chart and notes need more room than the empty tab: the minimum is settled again once
                # they are in (it was fixed before, and at the smallest window the tabs scrolled both ways)
                self.dataset_panel.scan_finished.connect(self._settle_after_first_scan)

    def start_background_init(self) -> None:
        """After show: load matplotlib off the GUI thread, then the deferred widgets; import torch and the core
        modules off the GUI thread and show the device in the status bar."""
        self._imports_pending = 2
        pause_gc_for_imports()
        plots = FunctionWorker(import_plotting)
        connect_worker(
            plots, self, finished=lambda: (self._imports_done(), self._finish_deferred_step(["charts", *OPTIONAL_TABS]))
        )
        start_worker(plots, self)
        worker = FunctionWorker(warm_up)
        connect_worker(
            worker,
            self,
            result=self._on_device_known,
            failed=lambda msg: self.device_label.setText("Device: unknown"),
            finished=self._imports_done,
        )
        self._warmup_thread = start_worker(worker, self)

    def _imports_done(self) -> None:
        self._imports_pending -= 1
        if self._imports_pending == 0:
            freeze_imported_objects()

    def _on_device_known(self, text: str) -> None:
        self._device_text = text
        self.device_label.setText(text)
        if not self._closing:  # the answer can arrive while closing waits for workers: start no new one then
            self.train_tab.on_environment_ready()

    def _on_device_in_use(self, text: str) -> None:
        self._training_device = text
        if not text:
            self.device_label.setText(self._device_text)
        self._show_training_device()

    def _show_training_device(self, *_: Any) -> None:
        """While a run trains, the status bar says on which device, and "Paused on CPU" while it is paused (it said
        "Training on CPU" all through a pause). With no run it keeps what it shows (the device found at start-up)."""
        text = self._training_device
        if text:
            self.device_label.setText(f"Paused on {text}" if self.train_tab.state == PAUSED else f"Training on {text}")

    def _restore_geometry(self) -> None:
        geo = settings().value("window/geometry")
        self.maximize_first = False  # a small screen's first start: the whole screen (see first_maximized)
        if isinstance(geo, QByteArray) and not geo.isEmpty():
            self.restoreGeometry(geo)
        else:
            free = self._free_area()
            self.resize(first_size(free))
            self.maximize_first = first_maximized(free)

    # ---- drops --------------------------------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 — Qt override
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 — Qt override
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if self.handle_dropped_paths(paths):
            event.acceptProposedAction()

    def handle_dropped_paths(self, paths: list[str]) -> bool:
        """One dropped folder opens as the data set; files (with or without folders) go to the Predict tab, all of
        them: a drop is never half used."""
        folders = [p for p in paths if os.path.isdir(p)]
        files = [p for p in paths if os.path.isfile(p)]
        if folders and not files:
            self.tabs.setCurrentWidget(self.dataset_panel)
            self.dataset_panel.load_folder(folders[0])
            if len(folders) > 1:
                self.statusBar().showMessage(
                    f"Opened {folders[0]} as the data set; drop one folder at a time (or drop them on Predict).", 8000
                )
            return True
        if files and self.predict_tab is not None and hasattr(self.predict_tab, "predict_paths"):
            self.tabs.setCurrentWidget(self.predict_tab)
            self.predict_tab.predict_paths(files + folders)
            return True
        if paths:
            self.statusBar().showMessage("Drop a folder of class sub-folders to open it as a data set.", 8000)
        return False

    # ---- closing ------------------------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 — Qt override
        downloading = getattr(self.train_tab, "_download_worker", None) is not None  # (no run yet: nothing to keep)
        if (
            self.train_tab.is_running()
            and self.confirm_close
            and not (
                ask(
                    self,
                    "Downloading the ImageNet weights",
                    "The ImageNet weights are downloading, and the training starts once they are in. Cancel the "
                    "download and close the window?",
                    yes="Cancel and close",
                    no="Keep downloading",
                )
                if downloading
                else ask(
                    self,
                    "Training in progress",
                    "A training run is in progress. Stop it and close the window?\n\nIt stops after the current "
                    "batch and keeps everything trained so far; Resume training in the Runs tab goes on from there.",
                    yes="Stop and close",
                    no="Keep training",
                )
            )
        ):
            event.ignore()
            return
        self._closing = True
        s = settings()
        mine = {k: _plain(v) for k, v in written_settings(s.fileName()).items()}  # (this window's writes so far)
        s.sync()  # (what another window of the app wrote meanwhile, read)
        theirs = {k: s.value(k) for k in s.allKeys()}
        self.train_tab.save_settings()
        self.dataset_panel.save_settings()
        s.setValue("window/geometry", self.saveGeometry())
        for name, widget in self._built_tabs().items():
            for key, splitter in _splitter_keys(name, widget):
                s.setValue(key, splitter.saveState())
        # Each tab writes every key it has: with two windows open, the one closed last wrote the values it had read
        # at its start over what the other had changed. A value left here as this window last had it (read at
        # start-up, or written since, at Start), and changed in the file since, stays as the other window left it.
        for key, value in theirs.items():
            last = mine.get(key, self._settings_at_start.get(key))
            if last is not None and _plain(s.value(key)) == last and _plain(value) != last:
                s.setValue(key, value)
        s.sync()  # (written now: its status says whether they were)
        if s.status() != QSettings.Status.NoError and not self.settings_problem:  # (not said at start-up)
            problem = settings_problem(s)
            self._say_settings_problem(problem)
            print(problem, file=sys.stderr)  # (the window is going)
        self.train_tab.stop_and_wait()
        self.dataset_panel.cancel_all()
        self.workers_left = not wait_for_workers(timeout_s=120.0)  # (main() then waits no more for them)
        resume_gc()  # in case the window closes before the background imports have reported back
        event.accept()
