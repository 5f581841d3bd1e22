"""Evaluate tab: a run's (or a checkpoint's) accuracy, confusion matrix, per-class scores and misclassified images."""

from __future__ import annotations

import csv
import html
import inspect
import json
import os
from collections import deque
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QPoint, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QCursor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFrame,
    QGraphicsOpacityEffect,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTabWidget,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from core import csv_cell
from core.runs import file_stamp, left_out_words, read_json, read_status
from gui.app import settings
from gui.image_view import ImageView, load_thumbnail, pil_to_qimage
from gui.predict_tab import PredictorCache, cam_overlay, display_copy
from gui.widgets import (
    ERROR_COLOR,
    FIGURE_FILTERS,
    WARNING_COLOR,
    SortItem,
    buddy_label,
    count_noun,
    dialog_dir,
    elide_middle,
    figure_path,
    load_json_setting,
    natural_key,
    photo_icon,
    remember_dir,
    screen_scale,
    shown_path,
    sort_header,
    store_json_setting,
    typed_path,
    with_suffix,
    write_export,
)
from gui.worker import FunctionWorker, connect_worker, start_worker

GALLERY_LIMIT = 500
TILE = 96
GALLERY_CELL = TILE + 60  # px wide: three tiles a row in half a 1366-px window at 125 % (at +84 two, and a gap)
CM_CELL = 22  # px: the smallest confusion-matrix cell; it holds "100" and leaves room for a class name beside it
CM_TEXT_MAX = 30  # classes: beyond this the cells carry no numbers (a colour scale, and tooltips, say them)
CM_ZERO_MAX = 12  # classes: up to this an empty cell says 0 (in grey); beyond, it stays blank among the numbers
PAGE_EMPTY, PAGE_NOT_EVALUATED, PAGE_RESULTS = range(3)
STATUS_COLORS = {"error": ERROR_COLOR, "warning": WARNING_COLOR, "": ""}  # (the Runs list's failed / stopped colours)


def _accepts(fn: Any, name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _evaluate_job(
    checkpoint: str,
    data_root: str,
    split: str,
    save_to: str | None,
    own_run: str | None = None,
    moved_from: tuple[str, str] | None = None,
    trained_from: str | None = None,
    progress: Any = None,
    stop: Any = None,
    stage: Any = None,
) -> dict[str, Any]:
    """Worker: scan the data folder, evaluate the checkpoint on one split, optionally save evaluation.json.

    `own_run`: the run whose data folder this is (its held-out split is evaluated): a folder changed since it
    trained is noted in "data_changed". `moved_from` (run folder, its held-out split), for "all" of another
    folder: when that folder holds the very images the run trained on (moved or copied: core.runs.holds_its_images,
    by their bytes), its held-out split is evaluated instead, and "own_images" says so ("all" scored the images it
    trained on, without a word). `trained_from` (the run folder, for a folder other than its own): when some of its
    images are copies of the run's training images, "trained_copies" says how many (they were scored as new); that
    takes a scan of the run's own folder, said by `stage(words)` before it starts."""
    from core.data import scan
    from core.engine import evaluate
    from core.runs import held_out_warning, holds_its_images, run_data_root, trained_copies_warning

    index = scan(data_root, progress=progress, stop=stop, min_classes=1)
    moved = None
    others = moved_from is not None and split == "all" and moved_from[1] != "all"
    if others and holds_its_images(moved_from[0], index, run_data_root(moved_from[0])):
        split, own_run, moved = moved_from[1], moved_from[0], moved_from[1]
    kwargs: dict[str, Any] = {"split": split}
    if _accepts(evaluate, "progress"):
        kwargs["progress"] = progress
    if _accepts(evaluate, "stop"):
        kwargs["stop"] = stop
    stamp = file_stamp(checkpoint)  # (the file evaluated: as it is now, after the scan; replaced during the scan,
    ev = evaluate(str(checkpoint), index, **kwargs)  # the new one was evaluated and its results said out of date)
    # every image's prediction: shown and exported (Export… offered "Every image's prediction" greyed out always),
    # not saved in evaluation.json (a line per image: megabytes that the Runs tab reads for a number)
    predictions = ev.pop("predictions", None)
    ev["unusable_files"] = [list(b) for b in index.bad_files]  # the scan's: unreadable, or outside class folders
    ev["split"] = ev.get("split") or split
    ev["checkpoint"] = ev.get("checkpoint") or str(checkpoint)
    ev.setdefault("data", str(data_root))
    warning = held_out_warning(own_run, index, split, "choose it as the Data folder above") if own_run else None
    if warning:
        ev["data_changed"] = warning
    look = trained_from and not moved and not ev.get("stopped")  # (a cancelled evaluation: no scan of its own)
    copies = None
    if look:
        if stage is not None:
            stage(f"Looking for copies of the run's training images: scanning {run_data_root(trained_from)}…")
        copies = trained_copies_warning(trained_from, index, split, ev.get("class_names"), stop=stop, progress=progress)
    if copies:
        ev["trained_copies"] = copies
    if moved:
        ev["own_images"] = (
            f"{data_root} holds the images this run trained on (moved or copied): its {moved} images were "
            "evaluated, not all of them"
        )
    replaced = file_stamp(checkpoint) != stamp  # (its run trained on meanwhile: the trainer's evaluation.json, of
    if save_to and not ev.get("stopped") and replaced:  # the new best.pt, was replaced by this one of the old)
        name = Path(checkpoint).name
        ev["save_error"] = (
            f"{name} was replaced while it was evaluated (its run trained on); these are the old {name}'s"
        )
    elif save_to and not ev.get("stopped"):
        from core.runs import write_json_atomic

        try:
            write_json_atomic(save_to, ev)
        except OSError as e:  # (a full disk): the numbers are shown all the same, said unsaved
            ev["save_error"] = f"{getattr(e, 'filename', None) or save_to}: {e.strerror or e}"
    if predictions is not None:
        ev["predictions"] = predictions
    ev["checkpoint_stamp"] = stamp  # (taken off when shown)
    return ev


def _absent_class_notes(ev: dict[str, Any], absent: list[str]) -> list[str]:
    """What a class with no images in the evaluated folder does to the numbers, known from the confusion matrix's
    column: images called it make its F1 0, counted in the Macro F1; none, and its F1 reads — and is not counted.
    (It said "F1 is 0 if any image was called it …, and reads — if none was", of a matrix that showed which.)"""
    names = [str(n) for n in ev.get("class_names") or []]
    matrix = ev.get("confusion_matrix") or []
    notes = []
    for name in absent:
        j = names.index(name) if name in names else None
        called = sum(int(row[j]) for row in matrix) if j is not None and matrix else None
        if called is None:
            notes.append(f"{name}'s F1 is 0 if any image was called {name}, and reads — if none was")
        elif called:
            notes.append(
                f"{count_noun(called, 'image')} {'was' if called == 1 else 'were'} called {name}, so its F1 is 0 "
                "(counted in the Macro F1)"
            )
        else:
            notes.append(f"none was called {name}, so its F1 reads — (left out of the Macro F1)")
    return notes


def _thumbs_job(
    paths: list[str], generation: int, out: deque, scale: float = 1.0, progress: Any = None, stop: Any = None
) -> int:
    """Worker: small QImages of the misclassified images, pushed onto `out` as (generation, row, image)."""
    for i, path in enumerate(paths):
        if stop is not None and getattr(stop, "stopped", False):
            break
        out.append((generation, i, load_thumbnail(path, TILE, scale)))
        if progress:
            progress(i + 1, len(paths))
    return generation


def _cam_job(
    cache: PredictorCache,
    checkpoint: str,
    path: str,
    class_name: str,
    stamp: Any = None,
    progress: Any = None,
    stop: Any = None,
) -> dict[str, Any]:
    """Worker: the image and its Grad-CAM overlay for `class_name` (the wrongly predicted class), as the Predict
    tab shows them (a copy of screen size; the margins the model never saw in grey). `stamp`: the checkpoint file
    the results are of; replaced since, the image comes without a heat map (the new model's sat under the old
    model's answer)."""
    img = display_copy(path)
    if stamp is not None and file_stamp(checkpoint) != stamp:
        name = Path(checkpoint).name
        changed = f"{name} has changed since these results were computed: evaluate it again for its Grad-CAM."
        return {"path": path, "image": pil_to_qimage(img), "cam": None, "seen": None, "cam_error": changed}
    predictor = cache.get(checkpoint)
    idx = predictor.class_names.index(class_name) if class_name in predictor.class_names else None
    return {"path": path, "image": pil_to_qimage(img), **cam_overlay(predictor, path, img, idx)}


MOVED_HINT = "Moved? Choose where the images are now (Browse… beside Data folder) to evaluate again."


def _what_of(split: str, folder: str) -> str:
    """ "every image of FOLDER" (split "all"), or "the val split of FOLDER" (it said "on the all split of …")."""
    return f"every image of {folder}" if split == "all" else f"the {split} split of {folder}"


def _same_path(a: str, b: str) -> bool | None:
    """Whether two paths name the same file or folder (None when that cannot be told)."""
    try:
        return Path(a).resolve() == Path(b).resolve()
    except (OSError, RuntimeError):
        return None


def _row_value(row: Any, key: str, pos: int) -> Any:
    """A field of a per-class / misclassified row stored either as a dict or as a list."""
    if isinstance(row, dict):
        return row.get(key)
    return row[pos] if isinstance(row, (list, tuple)) and len(row) > pos else None


def _num_item(text: str, key: Any) -> SortItem:
    """A number's cell, right-aligned; a key of None (no score: "—") sorts before 0.000."""
    item = SortItem(text, key)
    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return item


class _Metric(QFrame):
    """A small card: caption above a large number."""

    def __init__(self, caption: str) -> None:
        super().__init__()
        self.setFrameShape(QFrame.Shape.StyledPanel)
        v = QVBoxLayout(self)
        v.setContentsMargins(12, 6, 12, 6)
        self.caption = QLabel(caption)
        self.caption.setStyleSheet("QLabel { color: palette(placeholder-text); }")
        self.value = QLabel("—")
        f = self.value.font()
        f.setPointSizeF(f.pointSizeF() * 1.7)
        f.setBold(True)
        self.value.setFont(f)
        v.addWidget(self.caption)
        v.addWidget(self.value)

    def set(self, text: str, tooltip: str = "") -> None:
        self.value.setText(text)
        self.setToolTip(tooltip)


def _shared_end(names: list[str], at_start: bool) -> str:
    """The longest start (or end) of at least 4 characters that at least half of `names` (two at least) share."""
    from collections import Counter

    ends: Counter[str] = Counter()
    for nm in names:
        ends.update(nm[:k] if at_start else nm[-k:] for k in range(4, len(nm) - 2))
    need = max(2, (len(names) + 1) // 2)
    return max((e for e, c in ends.items() if c >= need), key=len, default="")


def row_percents(counts: list[int]) -> list[int]:
    """A row's shares in whole percent that add up to 100 (largest remainders get the rounding's spare points):
    each share rounded alone, a row read 3 + 0 + 33 + 63 = 99 under a title saying each row sums to 100 %."""
    total = sum(counts)
    if total <= 0:
        return [0] * len(counts)
    whole = [100 * c // total for c in counts]
    spare = 100 - sum(whole)
    # (in whole numbers: the remainders of 1/30 and 10/30 tie, which floats told apart by their last bit)
    for j in sorted(range(len(counts)), key=lambda j: (-(100 * counts[j] % total), j))[:spare]:
        whole[j] += 1
    return whole


def _short_names(names: list[str], limit: int) -> list[str]:
    """Class names cut to `limit` characters for tick labels. What most of the long ones share at their start or
    end ("…_with_extra_words") tells none apart, so that goes first (an ellipsis marks it); then the middle."""
    long = [nm for nm in names if len(nm) > limit]
    ends = _shared_end(long, True), _shared_end(long, False)
    out = []
    for nm in names:
        if len(nm) <= limit:
            out.append(nm)
            continue
        pre, core, suf = _without_shared(nm, *ends)
        out.append(pre + elide_middle(core, limit - len(pre) - len(suf)) + suf)
    return out


def _without_shared(name: str, prefix: str, suffix: str) -> tuple[str, str, str]:
    """`name` as ("…" where `prefix` was, what is left, "…" where `suffix` was); at least 3 characters are left."""
    pre = bool(prefix) and name.startswith(prefix)
    start = len(prefix) if pre else 0
    suf = bool(suffix) and name.endswith(suffix) and len(name) - len(suffix) - start >= 3
    return "…" if pre else "", name[start : len(name) - len(suffix) if suf else len(name)], "…" if suf else ""


class ConfusionMatrixCanvas(QWidget):
    """A confusion-matrix heat map: true classes down, predicted across, the number in every cell with images.

    Many classes stay readable: a cell never shrinks below CM_CELL px (the matrix scrolls instead), long class
    names are cut in the middle, and pointing at a cell or a class name shows its numbers and the full names.
    A QWidget around a matplotlib canvas, so that matplotlib is imported only when the first one is made.
    """

    scrolls_changed = Signal()  # the scroll range changed: whether the matrix fits its pane may have too
    cell_clicked = Signal(int, int)  # (true row, predicted column) of a cell clicked

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg

        from gui.charts import chart_figure

        self.figure = chart_figure(5.5, 5)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)  # fills the space it has; scrolls only below the canvas's minimum
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setWidget(self.canvas)
        self.canvas.installEventFilter(self)  # matplotlib's canvas keeps wheel events: they scroll the matrix here
        for bar in (self.scroll.horizontalScrollBar(), self.scroll.verticalScrollBar()):
            bar.rangeChanged.connect(lambda *_: self.scrolls_changed.emit())
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.scroll)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 300)
        self.ax = self.figure.add_subplot(1, 1, 1)
        self._matrix: list[list[int]] = []
        self._names: list[str] = []
        self._normalized = False
        self._fit = False  # True: shrink to the pane rather than scroll
        self.selected: tuple[int, int] | None = None  # the cell outlined (its images are listed)
        self._outline: Any = None
        # The keyboard's way in: the arrow keys move a dashed box from cell to cell (its numbers in a tooltip), and
        # Enter or Space does what a click does. Clicks give the matrix the focus, the scroll area never takes it.
        self.cursor: tuple[int, int] | None = None
        self.by_keyboard = False  # the last cell_clicked came from Enter or Space, not a click
        self._cursor_box: Any = None
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.canvas.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.canvas.setFocusProxy(self)
        self._refit = QTimer(self)
        self._refit.setSingleShot(True)
        self._refit.setInterval(60)
        self._refit.timeout.connect(self._draw)
        self._ticks: list[int] = []  # the classes with a tick label, in order
        self.cell_texts: list[list[Any]] = []
        self.numbers_fit = True  # False while the cells are too small for their numbers: then none is drawn
        self.canvas.mpl_connect("draw_event", self._fit_after_draw)
        # The outline and the keyboard's box are drawn over a copy of the matrix (blitted): redrawing all of a
        # matrix of 300 classes for them took 0.3-0.7 s an arrow key
        self._background: Any = None
        self.canvas.mpl_connect("draw_event", self._keep_background)
        self.canvas.mpl_connect("motion_notify_event", self._on_hover)
        self.canvas.mpl_connect("button_press_event", self._on_press)
        self._draw()

    def eventFilter(self, obj: Any, event: Any) -> bool:
        if obj is self.canvas and event.type() == QEvent.Type.Wheel:
            QApplication.sendEvent(self.scroll.viewport(), event)
            return True
        return super().eventFilter(obj, event)

    def set_matrix(
        self, matrix: list[list[int]], names: list[str], normalized: bool | None = None, fit: bool | None = None
    ) -> None:
        self.selected = None  # (a new evaluation: the gallery lists everything again)
        self._matrix = [[int(v) for v in row] for row in matrix]
        if self.cursor is not None and max(self.cursor) >= len(self._matrix):  # (fewer classes than before)
            self.cursor = (0, 0) if self._matrix else None
        self._names = [shown_path(str(n)) for n in names]  # (a name not UTF-8: matplotlib raised on it)
        if normalized is not None:
            self._normalized = normalized
        if fit is not None:
            self._fit = fit
        self._draw()

    def set_normalized(self, normalized: bool) -> None:
        self._normalized = normalized
        self._draw()

    def set_fit(self, fit: bool) -> None:
        """The whole matrix in its pane, however small its cells get (their numbers show where they fit), or
        cells big enough for their numbers, scrolling."""
        self._fit = fit
        self._draw()

    def resizeEvent(self, event: Any) -> None:  # noqa: N802
        super().resizeEvent(event)
        if self._fit and self._matrix:  # the cell size (and which class names have a label) follows the pane,
            self._refit.start()  # once the resizing pauses: not a whole redraw for every step of a window drag

    def too_big_for_pane(self) -> bool:
        """The matrix (at its readable size) is larger than its pane: it scrolls."""
        bar_h, bar_v = self.scroll.horizontalScrollBar(), self.scroll.verticalScrollBar()
        return bar_h.maximum() > 0 or bar_v.maximum() > 0

    def _set_canvas_minimum(self, width: int, height: int) -> None:
        """The smallest the canvas may get; a smaller minimum than before also shrinks it to its scroll area. The
        scroll area re-fits its widget only on its own layout requests, which a canvas's new minimum does not send:
        a 6-class matrix shown after a 30-class one kept the 30-class size, with scroll bars."""
        self.canvas.setMinimumSize(width, height)
        QApplication.postEvent(self.scroll, QEvent(QEvent.Type.LayoutRequest))

    def _draw(self) -> None:
        import numpy as np

        from gui.charts import CHART_DPI, px_per_point, use_fonts_for

        use_fonts_for(self._names)  # before the axes exist: their tick labels take the font family when made
        self.figure.clear()
        self._cursor_box = None  # (gone with the figure's artists)
        self._background = None
        self.ax = self.figure.add_subplot(1, 1, 1)
        self.cell_texts = []
        self._ticks = []
        self.numbers_fit = True
        n = len(self._matrix)
        if n == 0:
            self._set_canvas_minimum(0, 0)
            self.ax.text(
                0.5, 0.5, "No evaluation yet", ha="center", va="center", color="#8a929c", transform=self.ax.transAxes
            )
            self.ax.set_axis_off()
            self.canvas.draw_idle()
            return
        counts = np.array(self._matrix, dtype=float)
        sums = counts.sum(axis=1, keepdims=True)  # images of each true class
        if self._normalized:
            shown = np.divide(counts, sums, out=np.zeros_like(counts), where=sums > 0)
            vmax = 1.0
        else:
            shown = counts
            vmax = max(1.0, float(counts.max()))
        im = self.ax.imshow(shown, cmap="Blues", vmin=0, vmax=vmax, interpolation="nearest")
        with_numbers = n <= CM_TEXT_MAX
        if not with_numbers:  # too many cells to write numbers in: a colour scale says what the shades mean instead
            cb = self.figure.colorbar(im, ax=self.ax, fraction=0.046, pad=0.03)
            cb.ax.tick_params(labelsize=8)
            if self._normalized:
                cb.ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
            else:  # counts of images: whole numbers (it read 2.5, 7.5 for a matrix of at most 10 in a cell)
                from matplotlib.ticker import MaxNLocator

                cb.ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        # Cells of at least CM_CELL px, wider for numbers of 4 digits (fewer px for hundreds of classes, which have
        # no numbers): below that the canvas stops shrinking and the scroll area around it scrolls
        cell_fs = 10 if n <= 6 else 9 if n <= 10 else 8 if n <= 16 else 7
        digits = 3 if self._normalized else len(str(int(counts.max())))
        ppp = px_per_point(self.figure)
        grow = ppp * 72 / CHART_DPI  # the text's scale: its fixed px (smallest cell, axis margins) grow with it
        cell = (
            max(round(CM_CELL * grow), round(digits * 0.64 * cell_fs * ppp) + 4)
            if with_numbers
            else max(2, min(14, 2000 // n))
        )
        if self._fit:  # the whole matrix in the pane: cells as big as it allows (numbers only where they fit)
            pane = self.scroll.viewport().size()
            cell = max(2, min(cell, int(min(pane.width() - 160 * grow, pane.height() - 150 * grow) / n)))
        step = max(1, -(-round(11 * grow) // cell))  # a tick label every `step` classes: at least 11 px apart
        self._ticks = list(range(0, n, step))
        limit = 18 if n <= 10 else 16
        short = _short_names(self._names, limit)
        labels = [short[i] for i in self._ticks]
        fs = 9 if n <= 10 else 8 if n <= 20 else 7
        label_px = max(len(s) for s in labels) * fs * 0.6 * ppp
        side = n * cell
        self._set_canvas_minimum(
            *(
                (0, 0)
                if self._fit
                else (
                    int(side + label_px + (60 + (70 if not with_numbers else 0)) * grow),
                    int(side + label_px * 0.75 + 80 * grow),
                )
            )
        )
        slant = n > 3  # (or fewer whose names are wider than their columns: _fit_after_draw)
        self.ax.set_xticks(
            self._ticks,
            labels,
            rotation=45 if slant else 0,
            ha="right" if slant else "center",
            fontsize=fs,
            rotation_mode="anchor",
        )
        self.ax.set_yticks(self._ticks, labels, fontsize=fs)
        self.ax.set_xlabel("Predicted class", fontsize=9)
        self.ax.set_ylabel("True class", fontsize=9)
        empty_rows = self._normalized and bool((sums == 0).any())
        # Small matrices write "47%"; in the smaller cells of many classes "100%" would not fit: the unit goes
        # to the title and the cells say "47"
        percent_sign = n <= 8
        if not self._normalized:
            what = "(counts)"
        elif percent_sign:
            what = "(rows with images sum to 100 %)" if empty_rows else "(each row sums to 100 %)"
        else:
            what = "in % (rows with images sum to 100)" if empty_rows else "in % (each row sums to 100)"
        # over a matrix wider than its pane the title stays in view where the scrolling starts, at the left
        self.ax.set_title(f"Confusion matrix {what}", fontsize=10, loc="center" if n <= 12 else "left")
        if with_numbers:
            unit = "%" if percent_sign else ""
            for i in range(n):
                row = []
                percents = row_percents(self._matrix[i])
                for j in range(n):
                    if self._normalized and sums[i, 0] == 0:  # no images of this class here: no row to share out
                        text = "–"  # a dash, not a row of 0 %
                    elif counts[i, j] == 0:  # a quiet grey 0: a blank column read as a class missing from the matrix
                        text = ("0" + unit * self._normalized) if n <= CM_ZERO_MAX else ""  # (many classes: blank)
                    elif not self._normalized:
                        text = str(int(counts[i, j]))
                    else:  # a few images that round to 0 % are still there
                        text = ("<1" if percents[j] == 0 else str(percents[j])) + unit
                    dark = shown[i, j] > vmax * 0.55
                    color = "white" if dark else "#1f2328" if counts[i, j] else "#a3acb6"
                    cell_text = self.ax.text(j, i, text, ha="center", va="center", fontsize=cell_fs, color=color)
                    # (inside its cell, it moves no margin: the layout measured all 900 of a 30-class matrix at
                    # every draw, 40 % of the draw)
                    cell_text.set_in_layout(False)
                    row.append(cell_text)
                self.cell_texts.append(row)
        self._outline = None
        self._place_outline()
        self._place_cursor(blit=False)
        self.canvas.draw_idle()

    def _mark(self, cell: tuple[int, int], **style: Any) -> Any:
        """A box around a cell, drawn only by _blit_marks (over the matrix drawn without it)."""
        from matplotlib.patches import Rectangle

        r, c = cell
        return self.ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, animated=True, **style))

    def _place_outline(self) -> None:
        if self._outline is not None:
            self._outline.remove()
            self._outline = None
        if self.selected is not None and max(self.selected) < len(self._matrix):  # its images are listed
            self._outline = self._mark(self.selected, edgecolor="#f28e2b", linewidth=3, zorder=5)

    def _place_cursor(self, blit: bool = True) -> None:
        """The keyboard's cell, a dashed blue box, while the matrix has the focus (none otherwise)."""
        if self._cursor_box is not None:
            self._cursor_box.remove()
            self._cursor_box = None
        n = len(self._matrix)
        if self.hasFocus() and self.cursor is not None and max(self.cursor) < n:
            self.setAccessibleDescription(self.cell_tooltip(*self.cursor))  # (a screen reader's: the tooltip's)
            self._cursor_box = self._mark(self.cursor, edgecolor="#2f6fdf", linewidth=2, linestyle="--", zorder=6)
        if blit:
            self._blit_marks()

    def _keep_background(self, event: Any) -> None:
        """After a draw (which leaves out the boxes): keep a copy of it, and draw the boxes over it. Into the
        buffer only: the draw's own update shows them (a blit here repainted inside the paint that drew)."""
        self._background = self.canvas.copy_from_bbox(self.figure.bbox)
        for mark in (self._outline, self._cursor_box):
            if mark is not None:
                self.ax.draw_artist(mark)

    def _blit_marks(self) -> None:
        if self._background is None:  # not drawn yet (or drawn anew): the boxes come with that draw
            self.canvas.draw_idle()
            return
        self.canvas.restore_region(self._background)
        for mark in (self._outline, self._cursor_box):
            if mark is not None:
                self.ax.draw_artist(mark)
        self.canvas.blit(self.figure.bbox)

    def focusInEvent(self, event: Any) -> None:  # noqa: N802 — Qt override
        super().focusInEvent(event)
        n = len(self._matrix)
        if n and (self.cursor is None or max(self.cursor) >= n):
            self.cursor = self.selected if self.selected is not None and max(self.selected) < n else (0, 0)
        self._place_cursor()

    def focusOutEvent(self, event: Any) -> None:  # noqa: N802 — Qt override
        super().focusOutEvent(event)
        self._place_cursor()

    def keyPressEvent(self, event: Any) -> None:  # noqa: N802 — Qt override
        n, key = len(self._matrix), event.key()
        steps = {Qt.Key.Key_Left: (0, -1), Qt.Key.Key_Right: (0, 1), Qt.Key.Key_Up: (-1, 0), Qt.Key.Key_Down: (1, 0)}
        if n and key in steps:
            r, c = self.cursor if self.cursor is not None and max(self.cursor) < n else (0, 0)
            dr, dc = steps[key]
            self.cursor = (min(max(r + dr, 0), n - 1), min(max(c + dc, 0), n - 1))
            self._place_cursor()
            QToolTip.showText(self.cell_point(*self.cursor), self.cell_tooltip(*self.cursor), self.canvas)
        elif n and key in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space) and self.cursor is not None:
            self.by_keyboard = True
            self.cell_clicked.emit(*self.cursor)
        else:
            super().keyPressEvent(event)

    def cell_point(self, row: int, col: int) -> QPoint:
        """The centre of a cell on the screen (scrolled into view first), where its tooltip is shown."""
        x, y = self.ax.transData.transform((col, row))  # the figure's pixels, from its bottom left
        ratio = float(getattr(self.canvas, "device_pixel_ratio", 1) or 1)
        local = QPoint(int(x / ratio), int((self.figure.bbox.height - y) / ratio))
        self.scroll.ensureVisible(local.x(), local.y(), CM_CELL * 2, CM_CELL * 2)
        return self.canvas.mapToGlobal(local)

    def select(self, cell: tuple[int, int] | None) -> None:
        """Outline `cell` (row, column), or none."""
        if cell != self.selected:
            self.selected = cell
            self._place_outline()
            self._blit_marks()

    def _fit_after_draw(self, event: Any) -> None:
        """After a draw: the class names under three columns or fewer are slanted when they are wider than their
        columns (upright, three long names ran into one unreadable line), and the cell numbers stay only if every
        one fits in its cell (all or none: a matrix with some numbers missing would read as zeros there); pointing
        at a cell still tells its number."""
        n = len(self._matrix)
        if not n:
            return
        box = self.ax.get_window_extent(event.renderer)
        labels = self.ax.get_xticklabels()
        if n <= 3 and labels:
            widest = max(
                event.renderer.get_text_width_height_descent(t.get_text(), t.get_fontproperties(), ismath=False)[0]
                for t in labels
            )
            slant = widest > box.width / n - 8
            if slant != bool(labels[0].get_rotation()):
                for t in labels:
                    t.set_rotation(45 if slant else 0)
                    t.set_horizontalalignment("right" if slant else "center")
                self.canvas.draw_idle()
        texts = [t for row in self.cell_texts for t in row if t.get_text()]
        if not texts:
            return
        width, height = box.width / n - 2, box.height / n
        fit = True
        for t in texts:
            w, h, _ = event.renderer.get_text_width_height_descent(t.get_text(), t.get_fontproperties(), ismath=False)
            if w > width or h > height:
                fit = False
                break
        if fit != self.numbers_fit:
            self.numbers_fit = fit
            for t in texts:
                t.set_visible(fit)
            self.canvas.draw_idle()

    def _on_hover(self, event: Any) -> None:
        text = self.tooltip_at(event.x, event.y)
        self.canvas.setToolTip(text)
        if QToolTip.isVisible():  # one already shown follows the pointer from cell to cell
            if text:
                QToolTip.showText(QCursor.pos(), text, self.canvas)
            else:
                QToolTip.hideText()

    def cell_at(self, x: float | None, y: float | None) -> tuple[int, int] | None:
        """The (row, column) of the cell at (x, y) in the figure's display pixels, or None."""
        n = len(self._matrix)
        if n == 0 or x is None or y is None or not self.ax.get_window_extent().contains(x, y):
            return None
        col, row = (int(round(v)) for v in self.ax.transData.inverted().transform((x, y)))
        return (row, col) if 0 <= row < n and 0 <= col < n else None

    def _on_press(self, event: Any) -> None:
        cell = self.cell_at(event.x, event.y)
        if cell is not None and event.button == 1:
            self.cursor, self.by_keyboard = cell, False  # (the arrow keys go on from here)
            self._place_cursor()
            self.cell_clicked.emit(*cell)

    def tooltip_at(self, x: float, y: float) -> str:
        """What pointing at (x, y), in the figure's display pixels, tells: a cell's numbers and classes, or the
        full name of a class whose tick label is there; "" elsewhere."""
        n = len(self._matrix)
        if n == 0 or x is None or y is None:
            return ""
        if self.ax.get_window_extent().contains(x, y):
            col, row = (int(round(v)) for v in self.ax.transData.inverted().transform((x, y)))
            if 0 <= row < n and 0 <= col < n:
                return self.cell_tooltip(row, col)
            return ""
        import math

        renderer = self.canvas.get_renderer()
        best: tuple[float, str] | None = None
        for which, labels in (
            ("True class", self.ax.get_yticklabels()),
            ("Predicted class", self.ax.get_xticklabels()),
        ):
            for i, label in zip(self._ticks, labels, strict=False):
                box = label.get_window_extent(renderer)
                if not box.contains(x, y):
                    continue
                # rotated labels' boxes overlap: the one whose line of text passes nearest to the pointer
                a = math.radians(label.get_rotation())
                dx, dy = x - (box.x0 + box.x1) / 2, y - (box.y0 + box.y1) / 2
                off = abs(-math.sin(a) * dx + math.cos(a) * dy)
                if best is None or off < best[0]:
                    best = (off, f"{which}: {self._names[i]}")
        return best[1] if best else ""

    def cell_tooltip(self, row: int, col: int) -> str:
        """A cell's images, with the full names of its true and predicted classes."""
        count = self._matrix[row][col]
        total = sum(self._matrix[row])
        share = (
            f"{count} of its {count_noun(total, 'image')} ({count / total:.1%})" if total else "No images of this class"
        )
        click = "\nClick (or Enter): list these images under Misclassified" if row != col and count else ""
        return f"True class: {self._names[row]}\nPredicted: {self._names[col]}\n{share}{click}"

    def names(self) -> list[str]:
        return list(self._names)

    def value(self, row: int, col: int) -> int:
        """The images of true class `row` predicted as `col`."""
        return self._matrix[row][col]

    def texts(self) -> list[list[str]]:
        """The numbers written in the cells, row by row ("" for an empty cell)."""
        return [[t.get_text() for t in row] for row in self.cell_texts]

    def tick_labels(self) -> list[str]:
        """The class names under the matrix, as drawn (long ones shortened)."""
        return [t.get_text() for t in self.ax.get_xticklabels()]


# What Export… writes of the evaluation shown: its menu's words, the file's suffix and the save dialog's filter
EXPORTS = {  # (and the status bar's name for what was written)
    "per_class": ("Per-class scores (CSV)…", "-per-class.csv", "CSV file (*.csv)", "per-class scores"),
    "predictions": ("Every image's prediction (CSV)…", "-predictions.csv", "CSV file (*.csv)", "predictions"),
    "matrix_csv": ("Confusion matrix counts (CSV)…", "-confusion-matrix.csv", "CSV file (*.csv)", "confusion matrix"),
    "matrix_image": ("Confusion matrix as shown (PNG, SVG or PDF)…", "-confusion-matrix.png", "", "confusion matrix"),
    "json": ("Whole evaluation (JSON)…", "-evaluation.json", "JSON file (*.json)", "evaluation"),
}


def export_rows(ev: dict[str, Any], kind: str) -> list[list[Any]]:
    """The rows of an evaluation's CSV export `kind` (per_class, predictions or matrix_csv), header first; a text
    a spreadsheet would run as a formula (a class folder "=HYPERLINK(…)", "@SUM(1)") written after a ', as the
    Predict tab's CSV does."""
    return [[csv_cell(v) if isinstance(v, str) else v for v in row] for row in _export_rows(ev, kind)]


def _export_rows(ev: dict[str, Any], kind: str) -> list[list[Any]]:
    if kind == "per_class":
        rows = [["class", "precision", "recall", "f1", "support"]]
        for r in ev.get("per_class") or []:
            values = [_row_value(r, k, i) for i, k in enumerate(("name", "precision", "recall", "f1", "support"))]
            rows.append(["" if v is None else v for v in values])  # (a class never predicted has no precision)
        return rows
    if kind == "predictions":
        rows = [["path", "true", "predicted", "confidence", "correct"]]
        for p in ev.get("predictions") or []:
            true, predicted = _row_value(p, "true", 1), _row_value(p, "predicted", 2)
            rows.append([_row_value(p, "path", 0), true, predicted, _row_value(p, "confidence", 3), true == predicted])
        return rows
    if kind == "matrix_csv":
        names = [str(n) for n in ev.get("class_names") or []]
        matrix = ev.get("confusion_matrix") or []
        return [["true \\ predicted", *names], *([name, *row] for name, row in zip(names, matrix, strict=False))]
    raise ValueError(f"export {kind!r}: not a CSV export")


class EvaluateTab(QWidget):
    """Shows a run's evaluation (from evaluation.json, or computed on request) or evaluates any checkpoint."""

    status_message = Signal(str)  # for the window's status bar (an export written)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._runs_dir: str | None = None
        self._run_dir: str | None = None
        self._checkpoint: str | None = None
        self._evaluation: dict[str, Any] | None = None
        self._ckpt_stamp: tuple[int, ...] | None = None  # the checkpoint file the results shown were computed from
        self._shows_run_file = False  # the results shown are the run's own evaluation.json
        self._cache = PredictorCache()
        self._eval_worker: FunctionWorker | None = None
        self._thumb_worker: FunctionWorker | None = None
        self._cam_worker: FunctionWorker | None = None
        self._cam_pending: tuple[str, str] | None = None
        self._cam_result: dict[str, Any] | None = None
        self._thumb_queue: deque = deque()
        self._generation = 0
        self._detail_token = 0  # the large image shown (a Grad-CAM computed for one no longer shown is dropped)
        self._eval_generation = 0  # answers of an evaluation started for another run or checkpoint are dropped
        self._eval_target: str | None = None  # the checkpoint being evaluated
        self._eval_queued = False  # "Evaluate now" pressed while a cancelled evaluation was still stopping
        self._folder_offered = ""  # the data folder last checked for being the model's own (_on_data_folder_chosen)
        self._held_out = "val"  # the split of the run's own images it never trained on
        self._run_splits: dict[str, bool] = {}  # which splits of its own data folder the shown run has images in
        self._gallery_all: list[dict[str, Any]] = []  # every misclassified image, most confident first
        self._gallery_rows: list[dict[str, Any]] = []  # those the gallery shows
        self._thumb_rows: list[int] = []  # the gallery's rows whose thumbnails the worker is making, in its order
        self._thumb_icons: dict[str, QIcon] = {}  # thumbnails made, by path
        self._thumb_gen = 0  # thumbnails of a gallery filled since are dropped
        self.diagonal_note = ""  # what a click on the diagonal last answered
        self._name_ends = ("", "")  # what most long class names start and end with (left out of gallery captions)
        self._build()

    # ------------------------------------------------------------------ layout

    def _build(self) -> None:
        form = QGridLayout()
        form.setColumnStretch(1, 1)
        self.source_label = QLabel("")
        self.source_label.setStyleSheet("QLabel { font-weight: bold; }")
        form.addWidget(self.source_label, 0, 0, 1, 4)
        self.ckpt_edit = QLineEdit()
        form.addWidget(buddy_label("&Checkpoint:", self.ckpt_edit), 1, 0)
        self.ckpt_edit.setPlaceholderText("best.pt of a run, or any ResNeXt Studio checkpoint")
        form.addWidget(self.ckpt_edit, 1, 1)
        b = QPushButton("Browse…")
        b.setToolTip("Choose a checkpoint file (.pt)")
        b.clicked.connect(self._browse_checkpoint)
        form.addWidget(b, 1, 2)
        self.data_edit = QLineEdit()
        form.addWidget(buddy_label("&Data folder:", self.data_edit), 2, 0)
        self.data_edit.setPlaceholderText("folder of class sub-folders (default: the one the model was trained on)")
        self.data_edit.editingFinished.connect(self._on_data_folder_chosen)
        for edit in (self.ckpt_edit, self.data_edit):  # a path typed or pasted, then Enter: evaluated
            edit.returnPressed.connect(self._on_return_in_field)
        form.addWidget(self.data_edit, 2, 1)
        b = QPushButton("Browse…")
        b.setToolTip("Choose a folder of class sub-folders to score the model on")
        b.clicked.connect(self._browse_data)
        form.addWidget(b, 2, 2)
        split_box = QHBoxLayout()
        self.split_combo = QComboBox()
        split_box.addWidget(buddy_label("&Split:", self.split_combo))
        for name in ("val", "test", "all"):
            self.split_combo.addItem(name, name)  # the text may become "test (empty)": the data is the split
        self.split_combo.setToolTip("val / test: the held-out images of the run's split; all: every image")
        split_box.addWidget(self.split_combo)
        self.evaluate_button = QPushButton("Evaluate")
        self.evaluate_button.setDefault(True)
        self.evaluate_button.setToolTip(
            "Score the checkpoint on the chosen split of the data folder (Enter in either field does too)"
        )
        self.evaluate_button.clicked.connect(self.evaluate_now)
        split_box.addWidget(self.evaluate_button)
        form.addLayout(split_box, 1, 3, 2, 1)

        status = QHBoxLayout()
        self.status_label = QLabel("")
        self._status_tone = ""
        self.status_label.setWordWrap(True)
        self.status_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        status.addWidget(self.status_label, 1)
        self.progress = QProgressBar()
        self.progress.setFixedWidth(240)
        self.progress.setVisible(False)
        status.addWidget(self.progress)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the evaluation; nothing is saved")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.cancel)
        status.addWidget(self.cancel_button)

        self.stack = QStackedWidget()
        empty = QLabel(
            "Nothing evaluated yet.\n\nPick a run in the Runs tab and press Evaluate,\n"
            "or choose a checkpoint and a data folder above and press Evaluate."
        )
        empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        empty.setObjectName("emptyNote")  # (style.qss: larger and grey, scaled with the desktop font)
        self.stack.addWidget(empty)
        self.stack.addWidget(self._build_not_evaluated())
        self.stack.addWidget(self._build_results())

        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addLayout(status)
        lay.addWidget(self.stack, 1)

    def _build_not_evaluated(self) -> QWidget:
        page = QWidget()
        v = QVBoxLayout(page)
        v.addStretch(1)
        self.not_evaluated_label = QLabel("This run has not been evaluated yet.")
        self.not_evaluated_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.not_evaluated_label.setWordWrap(True)
        self.not_evaluated_label.setObjectName("largeNote")
        v.addWidget(self.not_evaluated_label)
        v.addSpacing(16)
        self.evaluate_now_button = QPushButton("Evaluate now")
        self.evaluate_now_button.setMinimumSize(QSize(180, 40))
        self.evaluate_now_button.setToolTip("Score this run's model on its held-out images")
        self.evaluate_now_button.clicked.connect(self.evaluate_now)
        v.addWidget(self.evaluate_now_button, 0, Qt.AlignmentFlag.AlignHCenter)
        for signal in (self.ckpt_edit.textChanged, self.data_edit.textChanged, self.split_combo.currentIndexChanged):
            signal.connect(self._refresh_prompt)
        v.addStretch(2)
        return page

    def _on_fit_toggled(self, on: bool) -> None:
        if self.cm_canvas is not None:
            self.cm_canvas.set_fit(on)
            self._offer_fit()

    def _offer_fit(self) -> None:
        """ "Fit to pane" is offered while the matrix scrolls, and while it is on (to be turned off)."""
        scrolls = self.cm_canvas is not None and self.cm_canvas.too_big_for_pane()
        self.fit_check.setVisible(scrolls or self.fit_check.isChecked())

    def _build_results(self) -> QWidget:
        page = QWidget()
        v = QVBoxLayout(page)
        v.setContentsMargins(0, 0, 0, 0)
        cards = QHBoxLayout()
        self.acc_card = _Metric("Accuracy")
        self.top5_card = _Metric("Top-5 accuracy")
        self.loss_card = _Metric("Loss")
        self.f1_card = _Metric("Macro F1")
        self.n_card = _Metric("Images")
        for c in (self.acc_card, self.top5_card, self.loss_card, self.f1_card, self.n_card):
            cards.addWidget(c)
        v.addLayout(cards)

        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        toggle = QHBoxLayout()
        toggle.addWidget(QLabel("Show:"))
        self.counts_radio = QRadioButton("Counts")
        self.norm_radio = QRadioButton("Row-normalised (recall)")
        # as left last time (it came back as Counts at every start)
        (
            self.norm_radio if load_json_setting(settings(), "evaluate/normalised", False) else self.counts_radio
        ).setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.counts_radio)
        group.addButton(self.norm_radio)
        self.norm_radio.toggled.connect(lambda on: self.cm_canvas is not None and self.cm_canvas.set_normalized(on))
        self.norm_radio.toggled.connect(lambda on: store_json_setting(settings(), "evaluate/normalised", on))
        toggle.addWidget(self.counts_radio)
        toggle.addWidget(self.norm_radio)
        toggle.addStretch(1)
        self.fit_check = QCheckBox("Fit to pane")
        self.fit_check.setToolTip(
            "Shrink the whole matrix into view (its numbers show while they fit; point at a cell for its numbers); "
            "off: cells big enough for their numbers, and the matrix scrolls"
        )
        self.fit_check.toggled.connect(self._on_fit_toggled)
        self.fit_check.setVisible(False)  # until a matrix is too big for its pane
        toggle.addWidget(self.fit_check)
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip(
            "Save these results: the per-class scores, every image's prediction or the confusion matrix as CSV, the "
            "matrix as an image, or the whole evaluation as JSON"
        )
        menu = QMenu(self.export_button)
        self.export_actions = {}
        for kind, (words, *_) in EXPORTS.items():
            self.export_actions[kind] = menu.addAction(words, lambda k=kind: self._export(k))
        menu.aboutToShow.connect(self._update_export_actions)
        self.export_button.setMenu(menu)
        toggle.addWidget(self.export_button)
        lv.addLayout(toggle)
        self.cm_canvas: ConfusionMatrixCanvas | None = None  # made on first use: matplotlib loads slowly
        self.cm_layout = lv

        self.side_tabs = QTabWidget()
        self.per_class_table = QTableWidget(0, 5)
        sort_header(self.per_class_table)
        self.per_class_table.setAccessibleName("Precision, recall and F1 per class")
        self.per_class_table.setTabKeyNavigation(False)  # Tab leaves the table; arrows move in it
        self.per_class_table.setHorizontalHeaderLabels(["Class", "Precision", "Recall", "F1", "Support"])
        self.per_class_table.verticalHeader().setVisible(False)
        self.per_class_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.per_class_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.per_class_table.setAlternatingRowColors(True)
        self.per_class_table.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # long names differ at both ends
        self.per_class_table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.per_class_table.setSortingEnabled(True)
        h = self.per_class_table.horizontalHeader()
        h.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for c in range(1, 5):
            h.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        self.side_tabs.addTab(self.per_class_table, "Per class")
        self.side_tabs.addTab(self._build_gallery(), "Misclassified")

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(self.side_tabs)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        split.setSizes([560, 600])
        v.addWidget(split, 1)
        return page

    def _build_gallery(self) -> QWidget:
        split = QSplitter(Qt.Orientation.Vertical)
        top = QWidget()
        tv = QVBoxLayout(top)
        tv.setContentsMargins(0, 0, 0, 0)
        self.filter_row = QWidget()  # shown while a confusion-matrix cell narrows the gallery to its images
        fr = QHBoxLayout(self.filter_row)
        fr.setContentsMargins(0, 0, 0, 0)
        self.filter_label = QLabel("")
        self.filter_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        fr.addWidget(self.filter_label, 1)
        show_all = QPushButton("Show all")
        show_all.setToolTip("Every misclassified image again (as does clicking the same cell)")
        show_all.clicked.connect(lambda: self.filter_gallery(None))
        fr.addWidget(show_all)
        self.filter_row.setVisible(False)
        tv.addWidget(self.filter_row)
        self._gallery_filter: tuple[str, str] | None = None
        self.gallery = QListWidget()
        self.gallery.setAccessibleName("Misclassified images")
        self.gallery.setViewMode(QListWidget.ViewMode.IconMode)
        self.gallery.setIconSize(QSize(TILE, TILE))
        # a tile and its two-line caption, in the font's lines; room for one whole row at the least height (with a
        # 14 pt font the captions ran past the 44 px they had, and a short gallery cut them after their first line)
        cell_height = TILE + 2 * self.gallery.fontMetrics().lineSpacing() + 14
        self.gallery.setGridSize(QSize(GALLERY_CELL, cell_height))
        self.gallery.setMinimumHeight(cell_height + 2 * self.gallery.frameWidth() + 8)
        self.gallery.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.gallery.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.gallery.setMovement(QListWidget.Movement.Static)
        self.gallery.setWordWrap(True)
        self.gallery.setSpacing(4)
        self.gallery.currentRowChanged.connect(self._on_gallery_row)
        tv.addWidget(self.gallery, 1)
        split.addWidget(top)

        detail = QWidget()
        dv = QVBoxLayout(detail)
        dv.setContentsMargins(0, 0, 0, 0)
        self.detail_view = ImageView("Click a misclassified image to see it large with its Grad-CAM")
        self.detail_view.setAccessibleName("Misclassified image, large")
        dv.addWidget(self.detail_view, 1)
        row = QHBoxLayout()
        self.detail_label = QLabel("")
        self.detail_label.setWordWrap(True)
        self.detail_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        row.addWidget(self.detail_label, 1)
        self.cam_check = QCheckBox("Grad-CAM")
        self.cam_check.setChecked(True)
        self.cam_check.setToolTip("Overlay the regions that drove the (wrong) predicted class")
        self.cam_check.toggled.connect(self._show_detail_image)
        row.addWidget(self.cam_check)
        dv.addLayout(row)
        split.addWidget(detail)
        split.setSizes([300, 280])  # two whole rows of tiles over the large view (one and a bit on a laptop)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        return split

    # ------------------------------------------------------------------ sources

    def set_runs_dir(self, path: str | os.PathLike) -> None:
        self._runs_dir = str(path)

    def _browse_checkpoint(self) -> None:
        start = self.ckpt_edit.text() or self._runs_dir or dialog_dir("checkpoints")
        path, _ = QFileDialog.getOpenFileName(
            self, "Choose a checkpoint", start, "Checkpoints (*.pt *.pth);;All files (*)"
        )
        if path:
            self.set_checkpoint(path)

    def _browse_data(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Choose the data folder", self.data_edit.text() or dialog_dir("data")
        )
        if folder:
            remember_dir("data", folder)
            self.data_edit.setText(folder)
            self._on_data_folder_chosen()

    def _on_data_folder_chosen(self) -> None:
        """Another folder than the model's own: its val/test split would be a random share of it, so "all" (once
        per folder chosen: a split the user picks afterwards stays)."""
        data, own = self._data_path(), self._data_root_from_checkpoint(self._ckpt_path())
        same = _same_path(data, own) if data and own else None
        # The run's empty splits are empty in its own folder only: another folder may have test/ images
        self._offer_splits(self._run_splits if same is not False else {})
        if data == self._folder_offered:
            return
        self._folder_offered = data
        ckpt = self._ckpt_path()
        if data and not own and ckpt and os.path.isfile(ckpt) and self.split() != "all":
            # a checkpoint outside a run folder: its own folder is not known here, so any folder is another's (its
            # val split, a random quarter of it, was scored where `evaluate` scores every image)
            self._select_split("all")
            self._set_status(
                "The folder this model was trained on is not known here (its checkpoint is not in a run folder): "
                'every image in this folder will be evaluated (the split is set to "all").'
            )
            return
        if not (data and own):
            return
        if same is False and self.split() != "all":
            self._select_split("all")
            self._set_status(  # (the scan tells the run's own images moved or copied there: holds_its_images)
                "Not the folder the model was trained on: every image in it will be evaluated "
                '(the split is set to "all"), unless it holds the images the run trained on, moved or copied '
                "there: then their held-out part is."
            )
        elif same and (self.split() == "all" or not self._split_offered()) and self._held_out != "all":
            self._select_split(self._held_out)  # back on its own folder: its held-out images
            self._set_status(
                f'The folder the model was trained on: its {self._held_out} images are evaluated ("all" would '
                "include the training images)."
            )

    def _on_return_in_field(self) -> None:
        """Enter in the checkpoint or data-folder field evaluates what the fields now say (the data folder's split
        follows it first, as when the field is left). It did nothing, the results below naming another folder."""
        self._on_data_folder_chosen()
        self.evaluate_now()

    def split(self) -> str:
        """The split chosen: val, test or all."""
        return str(self.split_combo.currentData() or self.split_combo.currentText())

    def _select_split(self, name: str) -> None:
        i = self.split_combo.findData(name)
        if i >= 0:
            self.split_combo.setCurrentIndex(i)

    def _split_offered(self) -> bool:
        item = self.split_combo.model().item(self.split_combo.currentIndex())
        return item is None or item.isEnabled()

    def _offer_splits(self, has: dict[str, bool]) -> None:
        """Mark the splits the run has no images in as empty and grey them out ("test" would only fail)."""
        model = self.split_combo.model()
        for i in range(self.split_combo.count()):
            name = str(self.split_combo.itemData(i))
            ok = has.get(name, True)
            self.split_combo.setItemText(i, name if ok else f"{name} (empty)")
            model.item(i).setEnabled(ok)
            model.item(i).setToolTip("" if ok else f"This run kept no {name} images (its {name} share was 0 %)")

    def set_checkpoint(self, path: str, data_root: str = "") -> None:
        """Evaluate a checkpoint that is not (necessarily) a run: fill the fields, clear the run."""
        self._forget_running_evaluation(str(path))
        self._run_splits = {}
        self._offer_splits({})
        self._run_dir = None
        self.ckpt_edit.setText(str(path))
        if data_root:
            self.data_edit.setText(data_root)
        self.source_label.setText("Checkpoint evaluation")
        self.evaluate_button.setText("Evaluate")

    def forget_runs(self, paths: list) -> None:
        """Deleted run folders: a shown run among them is cleared from the tab."""
        if self._run_dir and any(Path(p) == Path(self._run_dir) for p in paths):
            name = Path(self._run_dir).name
            self._forget_running_evaluation()
            self._run_dir = None
            self._evaluation = None
            self.ckpt_edit.clear()
            self.data_edit.clear()
            self.evaluate_button.setText("Evaluate")  # (it said "Evaluate again" beside empty fields)
            self.source_label.setText("")
            self._set_status(f"Run {name} was deleted.")
            self.stack.setCurrentIndex(PAGE_EMPTY)

    def show_run(self, run_dir: str) -> None:
        """Show the run's evaluation.json, or offer to evaluate its best.pt on its data set."""
        run = Path(run_dir)
        self._forget_running_evaluation(str(run / "best.pt"))
        self._run_dir = str(run)
        cfg = read_json(run / "config.json")  # (the runs' reader: a named pipe there hung the window for good)
        from core.runs import section, trained_data_root

        data = section(cfg, "data")

        root = trained_data_root(run, str(data.get("root") or ""))  # (an old run's relative path: its absolute one)
        self.ckpt_edit.setText(str(run / "best.pt"))
        self.data_edit.setText(root)
        sizes = section(cfg, "dataset")  # the run's own split sizes
        has = {
            "val": sizes.get("val_size", float(data.get("val_split") or 0)) > 0,
            "test": sizes.get("test_size", float(data.get("test_split") or 0)) > 0,
        }
        self._run_splits = has
        self._offer_splits(has)
        self._held_out = "test" if has["test"] else "val" if has["val"] else "all"
        self._select_split(self._held_out)
        self.source_label.setText(f"Run: {run.name}")
        evaluation = read_json(run / "evaluation.json")
        self._set_status("")
        if evaluation:
            self.evaluate_button.setText("Evaluate again")
            self.show_evaluation(evaluation, str(run / "best.pt"))
            if evaluation.get("split"):
                self._select_split(str(evaluation["split"]))
            self._shows_run_file = True
            best, evaluated = read_status(run).get("best_epoch"), evaluation.get("epoch")
            if isinstance(best, int) and isinstance(evaluated, int) and best != evaluated:
                self._ckpt_stamp = None  # best.pt holds another epoch now: trained on, not evaluated since
            if root and not os.path.isdir(root):  # (the gallery's pictures were grey squares, and nothing said why)
                self._set_status(
                    f"Its data folder {root} is not there any more, so the misclassified images cannot be shown. "
                    + MOVED_HINT,
                    warning=True,
                )
            self.check_stale()
            return
        self.evaluate_button.setText("Evaluate")
        self._evaluation = None
        if not run.is_dir():  # (deleted or moved outside the app while the Train or Runs tab showed it)
            self.not_evaluated_label.setText(
                f"The run folder {run.name} is gone (deleted or moved), so there is nothing to evaluate.\n"
                f"It was in {run.parent}; the Runs tab lists the runs there are."
            )
            self.evaluate_now_button.setEnabled(False)
        elif not (run / "best.pt").is_file():
            self.not_evaluated_label.setText(
                f"{run.name} has no best.pt yet, so there is nothing to evaluate.\n"
                "Train it (or resume it) until it saves a checkpoint."
            )
            self.evaluate_now_button.setEnabled(False)
        else:
            self.evaluate_now_button.setEnabled(True)
            self._refresh_prompt()
        self.stack.setCurrentIndex(PAGE_NOT_EVALUATED)

    def _refresh_prompt(self) -> None:
        """The not-yet-evaluated page asks about what Evaluate will do: the checkpoint, split and folder in the
        fields now. (It was written once per run: with another folder chosen it still named the run's own.)"""
        if self._run_dir is None or not self.evaluate_now_button.isEnabled():
            return
        run = Path(self._run_dir)
        ckpt = self._ckpt_path()
        which = "its best.pt" if ckpt and Path(ckpt) == run / "best.pt" else Path(ckpt).name or "a checkpoint"
        self.not_evaluated_label.setText(
            f"{run.name} has not been evaluated yet.\n\nEvaluate {which} on "
            f"{_what_of(self.split(), self._data_path() or 'its data folder')}?"
        )

    # ------------------------------------------------------------------ evaluating

    def is_showing_nothing(self) -> bool:
        """Nothing evaluated is shown and nothing is being evaluated."""
        return self.stack.currentIndex() == PAGE_EMPTY and not self.is_busy()

    def is_busy(self) -> bool:
        return any(w is not None for w in (self._eval_worker, self._thumb_worker, self._cam_worker))

    def is_evaluating(self) -> bool:
        """An evaluation is running (thumbnails or a Grad-CAM being made do not count)."""
        return self._eval_worker is not None

    def evaluate_now(self) -> None:
        """Evaluate the checkpoint in the fields on the data folder in the fields (in a worker)."""
        if self._eval_worker is not None:
            if self._eval_worker.cancelled:  # an evaluation that is stopping: this one starts when it has
                self._eval_queued = True
                self._set_status("Starting when the previous evaluation has stopped…")
            else:
                self._set_status("An evaluation is already running; its results appear here when it ends.")
            return
        ckpt, data = self._ckpt_path(), self._data_path()
        if not ckpt:
            self._refuse("Choose a checkpoint first: Browse… for a best.pt, or Evaluate a run from the Runs tab.")
            return
        if os.path.isdir(ckpt) and os.path.isfile(os.path.join(ckpt, "best.pt")):  # a run folder: its best.pt
            ckpt = os.path.join(ckpt, "best.pt")  # (as `evaluate --checkpoint RUN_DIR` takes it)
            self.ckpt_edit.setText(ckpt)
        if not os.path.isfile(ckpt):  # (Path.is_file raised on a name too long or a folder that may not be entered)
            what = "a folder with no best.pt in it" if os.path.isdir(ckpt) else "no such file"
            self._refuse(f"Checkpoint {ckpt}: {what}. Choose a best.pt (Browse…).")
            return
        from core.runs import not_a_checkpoint

        if refused := not_a_checkpoint(ckpt):  # (before asking for a data folder, which it would be evaluated on)
            self._refuse(f"Cannot evaluate: {refused}")
            return
        if not data:
            data = self._data_root_from_checkpoint(ckpt)
            if not data:
                self._refuse(
                    f"Choose the data folder to evaluate on: {Path(ckpt).name} does not say which folder it was "
                    "trained on (it is not in a run folder, or that run's config.json names none)."
                )
                return
            self.data_edit.setText(data)
        from core.data import folder_problem

        if problem := folder_problem(data):  # (Path.is_dir raised on a name too long or a folder not to be entered)
            hint = f" {MOVED_HINT}" if problem.startswith("no such folder") else ""  # (a file there moved nothing)
            self._refuse(f"{data}: {problem}.{hint}")
            return
        save_to = None
        own_data = self._data_root_from_checkpoint(ckpt)
        split = self.split()
        if not self._split_offered():  # chosen before the folder was changed back, or set from code
            self._refuse(f"This run kept no {split} images; choose another split.")
            return
        held_out = bool(own_data) and Path(own_data).resolve() == Path(data).resolve() and split != "all"
        if held_out and self._run_dir and Path(ckpt) == Path(self._run_dir) / "best.pt":
            # Only a held-out evaluation on the run's own data set becomes the run's evaluation.json ("all" would
            # count the training images)
            save_to = str(Path(self._run_dir) / "evaluation.json")
        own_run = str(Path(ckpt).parent) if held_out else None
        # another folder's "all": unless it is the run's own images moved or copied (the worker tells, by its files)
        elsewhere = bool(own_data) and _same_path(data, own_data) is False  # (its own folder's "all" is asked for)
        moved_from = (str(Path(ckpt).parent), self._held_out) if split == "all" and elsewhere else None
        trained_from = str(Path(ckpt).parent) if elsewhere else None
        worker = FunctionWorker(_evaluate_job, ckpt, data, split, save_to, own_run, moved_from, trained_from)
        worker.progress.connect(self._on_eval_progress)
        worker.stage.connect(self._on_eval_stage)
        self._eval_generation += 1
        gen = self._eval_generation
        # Lambdas connected straight to a worker run on its thread; connect_worker relays them to ours.
        connect_worker(
            worker,
            self,
            result=lambda ev, c=ckpt, f=bool(save_to): gen == self._eval_generation and self._on_result(ev, c, f),
            failed=lambda msg, w=worker: gen == self._eval_generation and self._on_eval_failed(msg, w),
        )
        worker.finished.connect(self._on_eval_finished)
        self._eval_worker = worker
        self._eval_target = ckpt
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self.cancel_button.setVisible(True)
        self.evaluate_button.setEnabled(False)
        self.evaluate_now_button.setEnabled(False)
        self._fade_results(True)
        self._set_status(f"Evaluating {Path(ckpt).name} on {_what_of(split, data)}…")
        start_worker(worker, self)

    def _fade_results(self, faded: bool) -> None:
        """The results of the evaluation before stay in view, faded, while a new one runs: at full strength they
        read as the answer to the split just asked for."""
        page = self.stack.widget(PAGE_RESULTS)
        if not faded:
            page.setGraphicsEffect(None)
        elif page.graphicsEffect() is None:
            effect = QGraphicsOpacityEffect(page)
            effect.setOpacity(0.35)
            page.setGraphicsEffect(effect)

    def _ckpt_path(self) -> str:
        """The checkpoint field's path ("" for none), as typed or pasted (quotes, ~ and file:// taken as meant)."""
        return typed_path(self.ckpt_edit.text())

    def _data_path(self) -> str:
        """The data-folder field's path ("" for none), read as the checkpoint field's."""
        return typed_path(self.data_edit.text())

    @staticmethod
    def _data_root_from_checkpoint(ckpt: str) -> str:
        from core.runs import run_data_root

        return run_data_root(Path(ckpt).parent)

    def _on_eval_stage(self, words: str) -> None:
        """The evaluation went on to another part (the scan for copies of the training images): the status says it
        while the bar counts it, or the bar went round again under "Evaluating…" with no word why."""
        if self._eval_worker is not None and self.sender() is self._eval_worker:
            self._set_status(words)

    def _on_eval_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)

    def _on_eval_finished(self) -> None:
        self._eval_worker = None
        self._eval_target = None
        self._fade_results(False)
        self.progress.setVisible(False)
        self.cancel_button.setVisible(False)
        self.evaluate_button.setEnabled(True)
        # "Evaluate now" follows what is shown now (the run switched while this one ran may have no best.pt)
        self.evaluate_now_button.setEnabled(self._run_dir is None or (Path(self._run_dir) / "best.pt").is_file())
        if self._eval_queued:
            self._eval_queued = False
            self.evaluate_now()
        else:  # results older than their checkpoint stay marked after a cancelled or failed evaluation
            self.check_stale()

    def _on_eval_failed(self, message: str, worker: Any) -> bool:
        if worker.cancelled:  # a cancel while the folder was still being scanned ends as "scan cancelled"
            self._set_status("Evaluation cancelled.")
            return True
        self._refuse(f"Evaluation failed: {message}")
        return True

    def _refuse(self, message: str) -> None:
        """An evaluation that failed, or was refused before it began, said in red, and what the results shown
        below are then (a refusal above an earlier evaluation's results read as if they were of what was asked)."""
        shown = ""
        if self.stack.currentIndex() == PAGE_RESULTS and self._evaluation:
            shown = (
                f"\nThe results below are still those of the earlier evaluation ({self._described(self._evaluation)})."
            )
        self._set_status(f"{message}{shown}", error=True)

    # ---- export ---------------------------------------------------------------------------------------------
    def _update_export_actions(self) -> None:
        """Each export offered when the results shown have it (an evaluation.json of an older version, or one
        written by hand, may lack the predictions)."""
        ev = self._evaluation or {}
        has = {
            "per_class": bool(ev.get("per_class")),
            "predictions": bool(ev.get("predictions")),
            "matrix_csv": bool(ev.get("confusion_matrix")),
            "matrix_image": bool(ev.get("confusion_matrix")) and self.cm_canvas is not None,
            "json": bool(ev),
        }
        for kind, action in self.export_actions.items():
            action.setEnabled(has[kind])
            action.setToolTip("" if has[kind] else "These results do not hold it")

    def _export(self, kind: str) -> None:
        if not self._evaluation:
            return
        words, suffix, chosen, _ = EXPORTS[kind]
        source = self._evaluation.get("checkpoint") or self._checkpoint or ""
        stem = Path(self._run_dir).name if self._run_dir else Path(source).parent.name or "evaluation"
        name = f"{stem}-{self._evaluation.get('split', 'all')}{suffix}"
        filters = ";;".join(FIGURE_FILTERS.values()) if kind == "matrix_image" else chosen
        path, chosen = QFileDialog.getSaveFileName(
            self, f"Export {words.rstrip('…').lower()}", dialog_dir("exports", name), filters
        )
        if path:
            remember_dir("exports", path)
            ext = os.path.splitext(suffix)[1]
            self.export_results(kind, figure_path(path, chosen) if kind == "matrix_image" else with_suffix(path, ext))

    def export_results(self, kind: str, path: str) -> bool:
        """Write export `kind` (EXPORTS) of the evaluation shown to `path`, atomically; False, after saying why,
        when it cannot."""
        from core.runs import atomic_file
        from gui.charts import save_figure

        ev = self._evaluation
        image = kind == "matrix_image"
        if not ev or (image and self.cm_canvas is None):
            return False

        def write(target: str) -> None:
            if image:
                save_figure(self.cm_canvas.figure, target)
                return
            with atomic_file(target, newline="") as f:
                if kind == "json":
                    json.dump(ev, f, indent=1, ensure_ascii=False, default=str)
                else:
                    csv.writer(f).writerows(export_rows(ev, kind))

        if not write_export(self, "Export evaluation", path, "the matrix" if image else "the export", write, image):
            return False
        self.status_message.emit(f"Saved the {EXPORTS[kind][3]} to {path}")
        return True

    def _described(self, ev: dict[str, Any]) -> str:
        """ "best.pt of <run> on the val split of <folder>" for status lines."""
        ckpt = Path(self._checkpoint) if self._checkpoint else None
        what = f"{ckpt.name} of {ckpt.parent.name}" if ckpt else "the checkpoint"
        split = ev.get("split", "?")
        where = _what_of(split, ev["data_root"]) if ev.get("data_root") else f"the {split} split"
        return f"{what} on {where}"

    def _training_images_note(self, ev: dict[str, Any]) -> str:
        """ " (includes the 9 training images)" when `ev` is split "all" of the shown checkpoint's run's own data
        folder: its accuracy counts images the model learned, and the line said nothing of it. The count is the one
        the run recorded when it trained (config.json's dataset.train_size); "" otherwise."""
        if ev.get("split") != "all" or not self._checkpoint or not ev.get("data_root"):
            return ""
        own = self._data_root_from_checkpoint(self._checkpoint)
        if not own or not _same_path(str(ev["data_root"]), own):
            return ""
        from core.runs import config_section

        trained = config_section(Path(self._checkpoint).parent, "dataset").get("train_size")
        if isinstance(trained, int) and not isinstance(trained, bool) and trained > 0:
            return f" (includes the {count_noun(trained, 'training image')})"
        return " (includes the training images)"

    def cancel(self) -> None:
        if self._eval_worker is not None:
            self._eval_worker.cancel()
            self._set_status("Cancelling…")

    def _forget_running_evaluation(self, target: str | None = None) -> None:
        """Another run or checkpoint is shown: an evaluation still running is cancelled and its answer dropped.
        Showing the checkpoint being evaluated again changes nothing."""
        if self._eval_worker is not None and target is not None and self._eval_target == target:
            return
        self._eval_generation += 1
        self._eval_queued = False
        if self._eval_worker is not None:
            self._eval_worker.cancel()

    def _on_result(self, ev: dict[str, Any], checkpoint: str, saved: bool = False) -> bool:
        stamp = ev.pop("checkpoint_stamp", None)  # (the file evaluated, as the job loaded it)
        earlier = self._evaluation if self.stack.currentIndex() == PAGE_RESULTS else None
        if ev.get("stopped") and (not ev.get("num_samples") or (earlier and not earlier.get("stopped"))):
            # cancelled before any image, or over whole results: those stay (the first 64 images' numbers, of a
            # few classes, took the place of an evaluation of 180)
            n = int(ev.get("num_samples") or 0)
            said = f"Evaluation cancelled after {count_noun(n, 'image')}." if n else "Evaluation cancelled."
            if earlier:
                said += f"\nThe results below are still those of the earlier evaluation ({self._described(earlier)})."
            self._set_status(said)
            return True
        self.show_evaluation(ev, checkpoint)
        self._ckpt_stamp, self._shows_run_file = stamp, saved and not ev.get("save_error")
        if self._fields_changed(ev, checkpoint):  # (the results came under fields that said another folder and
            self._add_status(  # split: the card's "val split" beside "all" above, unexplained)
                "The checkpoint, folder or split above was changed while it ran: press Evaluate for what they say now.",
                "warning",
            )
        return True

    def _fields_changed(self, ev: dict[str, Any], checkpoint: str) -> bool:
        """Whether the fields above name another checkpoint, folder or split than the evaluation `ev` is of."""
        ckpt_now = self._ckpt_path()
        if ckpt_now and os.path.isdir(ckpt_now):  # a run folder: its best.pt
            ckpt_now = os.path.join(ckpt_now, "best.pt")
        data_now = self._data_path()
        data_then = str(ev.get("data_root") or ev.get("data") or "")
        return (
            (bool(ckpt_now) and _same_path(ckpt_now, checkpoint) is False)
            or (bool(data_now) and bool(data_then) and _same_path(data_now, data_then) is False)
            or (self.split() != ev.get("split") and not ev.get("own_images"))  # (its held-out split for "all")
        )

    def shows_run_evaluation(self, run_dir: str) -> bool:
        """Whether the results shown are this run's own evaluation.json (read, or written by this tab), which a
        finished training then replaced: showing the run again shows its new numbers without evaluating."""
        return bool(self._run_dir and self._shows_run_file and Path(self._run_dir) == Path(run_dir))

    def check_stale(self) -> bool:
        """Whether the checkpoint file changed since the results shown were computed from it (its run trained on:
        "Train more epochs", a resume): the results are faded and the status line says so until evaluated again.
        They were shown at full strength as the new best.pt's, the Predict tab meanwhile using the new one."""
        if self._evaluation is None or not self._checkpoint or self._eval_worker is not None:
            return False
        if self.stack.currentIndex() != PAGE_RESULTS:
            return False
        now = file_stamp(self._checkpoint)
        if now is None or now == self._ckpt_stamp:
            return False
        name = Path(self._checkpoint).name
        note = (
            f"{name} has changed since these results were computed (its run trained on): evaluate it again for the "
            f"new {name}'s numbers."
        )
        said = self.status_label.text()
        if note not in said:  # (after a failed or cancelled evaluation or a data folder gone, below that)
            keep = said.startswith(("Evaluation failed", "Evaluation cancelled", "Its data folder")) or (
                "Not saved:" in said  # (its checkpoint replaced while it was evaluated: both are said)
            )
            tone = self._graver("warning")
            self._set_status(f"{said}\n{note}" if keep else note, tone == "error", tone == "warning")
        self._fade_results(True)
        return True

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        self.check_stale()

    def _set_status(self, text: str, error: bool = False, warning: bool = False) -> None:
        """The status line: red for what failed, amber for results that come with a caution (files left out, a
        cancelled evaluation's partial numbers): a finished evaluation was red like a failed one."""
        self._status_tone = "error" if error else "warning" if warning else ""  # (a note added keeps the colour)
        self.status_label.setText(text)
        self.status_label.setToolTip("")
        self.status_label.setStyleSheet(
            f"QLabel {{ color: {STATUS_COLORS[self._status_tone]}; }}" if error or warning else ""
        )

    def _graver(self, tone: str) -> str:
        """The graver of `tone` and the status line's own ("" < "warning" < "error")."""
        return max(self._status_tone, tone, key=("", "warning", "error").index)

    def _add_status(self, text: str, tone: str = "") -> None:
        """`text` added to the status line, which keeps its tooltip and takes the graver colour."""
        tip, tone = self.status_label.toolTip(), self._graver(tone)
        self._set_status(f"{self.status_label.text()} {text}".strip(), tone == "error", tone == "warning")
        self.status_label.setToolTip(tip)

    # ------------------------------------------------------------------ showing

    def evaluation(self) -> dict[str, Any] | None:
        return self._evaluation

    def show_evaluation(self, ev: dict[str, Any], checkpoint: str | None = None) -> None:
        """Fill the cards, confusion matrix, per-class table and misclassified gallery from an evaluation dict."""
        self._evaluation = ev
        self._checkpoint = checkpoint
        self._ckpt_stamp = file_stamp(checkpoint) if checkpoint else None
        self._shows_run_file = False
        if self._eval_worker is None:  # (results shown as stale before)
            self._fade_results(False)
        names = [str(n) for n in ev.get("class_names", [])]
        acc, top5, loss = ev.get("accuracy"), ev.get("top5"), ev.get("loss")
        n = ev.get("num_samples") or sum(sum(r) for r in ev.get("confusion_matrix", []))
        self.acc_card.set("—" if acc is None else f"{acc:.1%}")
        self.top5_card.setVisible(top5 is not None)
        self.top5_card.set("—" if top5 is None else f"{top5:.1%}")
        self.loss_card.set("—" if loss is None else f"{loss:.4g}")  # (1.7e-05 read "0.0000")
        split = ev.get("split", "?")
        self.n_card.set(str(n), f"{n} images in the {split} split" if split != "all" else f"{n} images (all)")
        self.n_card.caption.setText("Images (all)" if split == "all" else f"Images ({split} split)")
        rows = ev.get("per_class", []) or []
        f1s = [float(_row_value(r, "f1", 3) or 0) for r in rows]
        macro_f1 = (ev.get("macro") or {}).get("f1", sum(f1s) / len(f1s) if f1s else None)
        self.f1_card.set("—" if macro_f1 is None else f"{macro_f1:.3f}")
        if self.cm_canvas is None:
            self.cm_canvas = ConfusionMatrixCanvas()
            self.cm_canvas.setAccessibleName("Confusion matrix (arrow keys: cells; Enter: its images)")
            self.cm_layout.addWidget(self.cm_canvas, 1)
            # made after the tabs beside it, it came last in the Tab order: after the gallery on the right
            QWidget.setTabOrder(self.export_button, self.cm_canvas)  # (after its row's last control, Export…)
            self.cm_canvas.scrolls_changed.connect(self._offer_fit)
            self.cm_canvas.cell_clicked.connect(self._on_cell_clicked)
        self.cm_canvas.set_matrix(
            ev.get("confusion_matrix", []), names, self.norm_radio.isChecked(), self.fit_check.isChecked()
        )
        self._fill_per_class(rows)
        self._fill_gallery(ev.get("misclassified", []) or [])
        errors = ev.get("errors") or []
        left = ev.get("left_out_classes") or {}
        left_text = f"Left out, not classes of the model: {left_out_words(ev)}." if left else ""
        unusable = [tuple(b) for b in ev.get("unusable_files") or []] + [
            (e["path"], e["reason"]) if isinstance(e, dict) else (str(e), "could not be read") for e in errors
        ]
        unread = len(unusable)
        evaluated = f"Evaluated {self._described(ev)}{self._training_images_note(ev)}." if checkpoint else ""
        absent = [str(r.get("name")) for r in rows if r.get("support") == 0]
        if absent and evaluated:  # (a folder without one of the classes: its row reads "—" and 0.000, unexplained)
            them = ", ".join(absent[:4]) + (", …" if len(absent) > 4 else "")
            evaluated += f" No images here of {them}: " + "; ".join(_absent_class_notes(ev, absent[:4])) + "."
        if ev.get("stopped"):
            self._set_status(f"Cancelled: these numbers cover only the first {n} images.", warning=True)
        elif unread or left:
            unread_text = (
                f"{count_noun(unread, 'file')} could not be used and {'was' if unread == 1 else 'were'} left out "
                "(hover over this line for which and why). "
                if unread
                else ""
            )
            # what was evaluated stays in the line: the warning alone left no word of which model and folder
            self._set_status(f"{evaluated} {unread_text}{left_text}".strip(), warning=True)
            lines = [f"{path}: {reason}" for path, reason in unusable[:20]]
            self.status_label.setToolTip("\n".join(lines + (["…"] if unread > 20 else [])))
        else:
            self._set_status(evaluated)
        if ev.get("data_changed") and not ev.get("stopped"):  # its held-out split may hold training images
            note = str(ev["data_changed"])
            self._add_status(f"Careful: {note[0].upper()}{note[1:]}.", "warning")
        if ev.get("trained_copies"):  # another folder holding some of the images it trained on
            note = str(ev["trained_copies"])
            self._add_status(f"Careful: {note[0].upper()}{note[1:]}.", "warning")
        if ev.get("own_images") and not ev.get("stopped"):
            self._select_split(str(ev.get("split")))  # (the split evaluated, not "all")
            self._add_status(f"Note: {ev['own_images']}.")
        if ev.get("save_error"):  # shown, not kept: the run's evaluation.json is the one before (or none)
            self._add_status(f"Not saved: {ev['save_error']}.", "error")
        self.stack.setCurrentIndex(PAGE_RESULTS)

    def _fill_per_class(self, rows: list[Any]) -> None:
        t = self.per_class_table
        t.setSortingEnabled(False)
        t.setRowCount(0)  # (items replaced one by one in a full table cost its size each: 300 classes took 3 s)
        t.setRowCount(len(rows))
        for i, r in enumerate(rows):
            name = str(_row_value(r, "name", 0))
            prec, rec, f1 = (_row_value(r, k, p) for k, p in (("precision", 1), ("recall", 2), ("f1", 3)))
            support = _row_value(r, "support", 4)
            item = SortItem(name, natural_key(name))  # (class_2 before class_10, case aside)
            item.setToolTip(name)
            t.setItem(i, 0, item)
            for c, v in ((1, prec), (2, rec), (3, f1)):
                t.setItem(i, c, _num_item("—" if v is None else f"{float(v):.3f}", None if v is None else float(v)))
            t.setItem(i, 4, _num_item(str(support), support))
        t.setSortingEnabled(True)

    def _fill_gallery(self, mis: list[Any]) -> None:
        self._generation += 1
        entries = []
        for m in mis:
            entries.append(
                {
                    "path": str(_row_value(m, "path", 0)),
                    "true": str(_row_value(m, "true", 1)),
                    "predicted": str(_row_value(m, "predicted", 2)),
                    "confidence": float(_row_value(m, "confidence", 3) or 0.0),
                }
            )
        entries.sort(key=lambda e: -e["confidence"])
        self._gallery_all = entries
        self._thumb_icons = {}
        self._gallery_filter = None
        self.filter_row.setVisible(False)
        self._show_gallery(entries[:GALLERY_LIMIT])
        self.detail_view.set_image(None)
        self.detail_label.setText("")
        self._cam_result = None
        self._cam_pending = None
        more = f", {len(entries) - GALLERY_LIMIT} more not shown" if len(entries) > GALLERY_LIMIT else ""
        self.side_tabs.setTabText(1, f"Misclassified ({len(entries)}{more})")
        if not entries:
            self.detail_view.set_hint("No misclassified images — every image in this split was classified correctly.")
        else:
            self.detail_view.set_hint("Click a misclassified image to see it large with its Grad-CAM")

    def _show_gallery(self, rows: list[dict[str, Any]], keep: dict[str, Any] | None = None) -> None:
        """Fill the gallery with these misclassified images (the most confident of all, or of one cell of the
        matrix), `keep` still chosen if it is among them (its Grad-CAM stays). Thumbnails made before are reused;
        the others are made in a worker."""
        if self._thumb_worker is not None:
            self._thumb_worker.cancel()
        self._thumb_gen += 1
        self._thumb_queue.clear()
        self._gallery_rows = []  # (clear() moves the current row as it goes: no row may be shown from it)
        self.gallery.clear()
        self._gallery_rows = rows
        placeholder = QPixmap(TILE, TILE)
        placeholder.fill(Qt.GlobalColor.lightGray)
        names = {n for e in rows for n in (e["true"], e["predicted"]) if len(n) > 20}
        self._name_ends = _shared_end(sorted(names), True), _shared_end(sorted(names), False)
        captions = [self._caption(e) for e in rows]
        lines = max((c.count("\n") + 1 for c in captions), default=2)
        self.gallery.setGridSize(QSize(GALLERY_CELL, TILE + 12 + lines * self.gallery.fontMetrics().lineSpacing()))
        for e, caption in zip(rows, captions, strict=True):
            item = QListWidgetItem(self._thumb_icons.get(e["path"]) or QIcon(placeholder), caption)
            item.setToolTip(f"{e['true']} → {e['predicted']} ({e['confidence']:.1%})\n{e['path']}")
            item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
            self.gallery.addItem(item)
        if keep is not None and keep in rows:
            self.gallery.blockSignals(True)  # chosen as it was: not shown (and its Grad-CAM computed) anew
            self.gallery.setCurrentRow(rows.index(keep))
            self.gallery.blockSignals(False)
        self._thumb_rows = [i for i, e in enumerate(rows) if e["path"] not in self._thumb_icons]
        if not self._thumb_rows:
            return
        worker = FunctionWorker(
            _thumbs_job, [rows[i]["path"] for i in self._thumb_rows], self._thumb_gen, self._thumb_queue, screen_scale()
        )
        worker.progress.connect(self._drain_thumbs)
        connect_worker(worker, self, finished=lambda w=worker: self._on_thumbs_finished(w))
        self._thumb_worker = worker
        start_worker(worker, self)

    def _on_cell_clicked(self, row: int, col: int) -> None:
        names = self.cm_canvas.names() if self.cm_canvas is not None else []
        if not (0 <= row < len(names) and 0 <= col < len(names)):
            return
        if row == col:  # right answers, which the gallery does not hold: the list stays, and the click is answered
            self.diagonal_note = (
                f"{names[row]}: {count_noun(self.cm_canvas.value(row, col), 'image')} classified right. The "
                "Misclassified list holds the wrong answers only: click a cell off the diagonal (or move there and "
                "press Enter) for its images."
            )
            at = self.cm_canvas.cell_point(row, col) if self.cm_canvas.by_keyboard else QCursor.pos()
            QToolTip.showText(at, self.diagonal_note, self.cm_canvas)
            return
        pair = (names[row], names[col])
        self.filter_gallery(None if pair == self._gallery_filter else pair)
        self.side_tabs.setCurrentIndex(1)

    def filter_gallery(self, pair: tuple[str, str] | None) -> None:
        """Show only the misclassified images of true class → predicted class `pair` (a cell of the confusion
        matrix clicked), or all of them (None). A cell's images are taken from every misclassified image, not only
        from the most confident ones the gallery holds: with many classes most cells had none of those, and a cell
        of 12 listed "0 images"."""
        self._gallery_filter = pair
        at = self.gallery.currentRow()
        current = self._gallery_rows[at] if 0 <= at < len(self._gallery_rows) else None
        rows = [e for e in self._gallery_all if pair is None or (e["true"], e["predicted"]) == pair]
        self._show_gallery(rows[:GALLERY_LIMIT], keep=current)
        if current is not None and current not in self._gallery_rows:
            self._detail_token += 1  # a Grad-CAM still being computed is of the image no longer shown
            self._cam_result = self._cam_pending = None
            self.detail_view.set_image(None)
            self.detail_label.setText("")
        if self.gallery.currentRow() < 0:
            # (the hint left was the one before that image's Grad-CAM: "Computing Grad-CAM…", for good)
            if pair is not None:
                hint = "Click an image to see it large with its Grad-CAM" if rows else "No images in this cell"
            elif rows:
                hint = "Click a misclassified image to see it large with its Grad-CAM"
            else:
                hint = "No misclassified images — every image in this split was classified correctly."
            self.detail_view.set_hint(hint)
        self.filter_row.setVisible(pair is not None)
        if self.cm_canvas is not None:
            names = self.cm_canvas.names()
            cell = (names.index(pair[0]), names.index(pair[1])) if pair and set(pair) <= set(names) else None
            self.cm_canvas.select(cell)
        if pair is not None:
            shown = f", the {GALLERY_LIMIT} most confident shown" if len(rows) > GALLERY_LIMIT else ""
            # each name cut in its middle to fit (the line was cut at the pane's edge, its count with it); written
            # as text, not markup ("<unknown>", a folder's name, was taken for a tag and vanished)
            true, said = (html.escape(elide_middle(name, 28)) for name in pair)
            self.filter_label.setText(
                f"<b>{true}</b> predicted as <b>{said}</b>: {count_noun(len(rows), 'image')}{shown}"
            )
            self.filter_label.setToolTip(f"{pair[0]} → {pair[1]}")

    def _caption(self, e: dict[str, Any]) -> str:
        """ "true → predicted" over "(confidence)" under a tile; names too long for it are cut in the middle (class
        names often differ at both ends: "15_a_long_…_number_15"), each on its own line, after what most of the
        long names share ("…_with_extra_words"). The tooltip has them whole."""
        fm = self.gallery.fontMetrics()
        width = self.gallery.gridSize().width() - 12
        confidence = f"({e['confidence']:.0%})"
        both = f"{e['true']} → {e['predicted']}"
        if fm.horizontalAdvance(both) <= width:
            return f"{both}\n{confidence}"

        def cut(name: str, room: int) -> str:
            if fm.horizontalAdvance(name) <= room:
                return name
            pre, core, suf = _without_shared(name, *self._name_ends)
            room -= fm.horizontalAdvance(pre + suf)
            return pre + fm.elidedText(core, Qt.TextElideMode.ElideMiddle, room) + suf

        return f"{cut(e['true'], width)}\n→ {cut(e['predicted'], width - fm.horizontalAdvance('→ '))}\n{confidence}"

    def _drain_thumbs(self, *_: Any) -> None:
        while self._thumb_queue:
            gen, i, img = self._thumb_queue.popleft()
            if gen == self._thumb_gen and img is not None and i < len(self._thumb_rows):
                row = self._thumb_rows[i]
                icon = photo_icon(img)
                self._thumb_icons[self._gallery_rows[row]["path"]] = icon  # (for the gallery filled again by a cell)
                while len(self._thumb_icons) > 2 * GALLERY_LIMIT:  # (the oldest go: cell after cell of a big set)
                    del self._thumb_icons[next(iter(self._thumb_icons))]
                self.gallery.item(row).setIcon(icon)

    def _on_thumbs_finished(self, worker: FunctionWorker) -> None:
        self._drain_thumbs()
        if self._thumb_worker is worker:
            self._thumb_worker = None

    def gallery_entries(self) -> list[dict[str, Any]]:
        """The misclassified images as shown: path, true, predicted, confidence (most confident first)."""
        return list(self._gallery_rows)

    # ------------------------------------------------------------------ detail + Grad-CAM

    def _on_gallery_row(self, row: int) -> None:
        if 0 <= row < len(self._gallery_rows):
            e = self._gallery_rows[row]
            self.detail_label.setText(
                f"<b>{e['true']}</b> predicted as <b>{e['predicted']}</b> "
                f"({e['confidence']:.1%})<br><small>{e['path']}</small>"
            )
            self.show_detail(e["path"], e["predicted"])

    def show_detail(self, path: str, predicted: str) -> None:
        """Show one image large with the Grad-CAM of `predicted` (computed in a worker)."""
        if not self._checkpoint or not Path(self._checkpoint).is_file():
            self.detail_view.set_image(None)
            self.detail_view.set_hint("The checkpoint of this evaluation is gone; Grad-CAM is unavailable.")
            return
        if self._cam_worker is not None:
            self._cam_pending = (path, predicted)
            return
        self.detail_view.set_hint("Computing Grad-CAM…")
        worker = FunctionWorker(_cam_job, self._cache, self._checkpoint, path, predicted, self._ckpt_stamp)
        gen = self._generation  # a gallery refilled meanwhile (a new evaluation) makes this answer stale
        token = self._detail_token  # and so does the image being filtered away

        def current() -> bool:
            return gen == self._generation and token == self._detail_token

        connect_worker(
            worker,
            self,
            result=lambda r: current() and self._on_cam(r),
            failed=lambda m: current() and self.detail_view.set_hint(m),
        )
        worker.finished.connect(self._on_cam_finished)
        self._cam_worker = worker
        start_worker(worker, self)

    def _on_cam(self, result: dict[str, Any]) -> None:
        self._cam_result = result
        self.cam_check.setEnabled(result["cam"] is not None)
        if result["cam_error"]:
            self.detail_label.setText(self.detail_label.text() + f"<br><small>{result['cam_error']}</small>")
        self._show_detail_image()

    def _show_detail_image(self) -> None:
        r = self._cam_result
        if not r:
            return
        use_cam = self.cam_check.isChecked() and r.get("cam") is not None
        self.detail_view.set_image(r["cam"] if use_cam else r["image"])
        self.detail_view.set_outline(r.get("seen") if use_cam else None)
        self.detail_view.setToolTip(
            "The model sees only the outlined centre square; the greyed edges were cropped away"
            if use_cam and r.get("seen")
            else ""
        )

    def detail_result(self) -> dict[str, Any] | None:
        return self._cam_result

    def _on_cam_finished(self) -> None:
        self._cam_worker = None
        if self._cam_pending is not None:
            path, predicted = self._cam_pending
            self._cam_pending = None
            self.show_detail(path, predicted)
