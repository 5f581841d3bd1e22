"""Matplotlib canvases for the GUI: live training curves (set_data updates) and the class-balance bar chart."""

from __future__ import annotations

import functools
import math
import textwrap
import time
from collections.abc import Callable, Sequence
from typing import Any

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from PySide6.QtCore import QRectF, QTimer
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QSizePolicy

TRAIN_COLOR = "#2f6fdf"
VAL_COLOR = "#e0672b"
BATCH_COLOR = "#9bb7ea"
_RC = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
}


def chart_style() -> Any:
    """A context in which matplotlib makes text at the charts' sizes (_RC). A text's size is fixed when it is made
    (a title by set_title, a legend by legend, tick labels when ticks are made: also at a draw, after ax.clear()),
    so every chart makes its artists, and draws, inside it; made outside, they took matplotlib's 10 pt. (Leaving it
    undoes every rcParams change made inside: use_fonts_for's font fallback is made before entering it.)"""
    import matplotlib

    return matplotlib.rc_context(_RC)


def _styled(method: Callable) -> Callable:
    """`method`, run in chart_style()."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with chart_style():
            return method(*args, **kwargs)

    return wrapper


CHART_DPI = 100  # the charts' dots per inch at style.qss's 10 pt: their 8-10 pt text then sits beside the window's


def chart_figure(width: float, height: float) -> Figure:
    """A white, constrained-layout figure of `width` x `height` inches for a chart, at CHART_DPI scaled with a
    desktop font larger than 10 pt, so its titles, ticks and legends grow with the window's text (at 13 pt they
    had stayed 8 pt beside 13 pt labels)."""
    from gui.app import text_scale

    return Figure(figsize=(width, height), dpi=CHART_DPI * text_scale(), layout="constrained", facecolor="white")


def save_figure(figure: Figure, path: str) -> None:
    """Write a chart as drawn to `path`, atomically, in its extension's format (PNG at 150 dpi, SVG or PDF; see
    widgets.FIGURE_FILTERS; another name gets PNG). Raises OSError."""
    import os

    from core.runs import atomic_file

    kind = os.path.splitext(path)[1].lower().lstrip(".")
    with atomic_file(path, "wb") as f:
        figure.savefig(
            f, format=kind if kind in ("svg", "pdf") else "png", dpi=150, facecolor="white", bbox_inches="tight"
        )


def px_per_point(figure: Figure) -> float:
    """Screen pixels (Qt's logical ones) per point of `figure`'s text, at the dpi it was made with (its dpi times
    the screen's pixel ratio, while on a canvas): for sizing by a label's length before drawing."""
    return figure.dpi / figure.canvas.device_pixel_ratio / 72


_fallback_family: dict[frozenset[str], str | None] = {}


def use_fonts_for(texts: Sequence[str]) -> None:
    """Make matplotlib able to draw `texts` (class names: 日本, Ελλάδα …). Its default font has no CJK glyphs, so
    those drew as empty boxes while the tables beside the charts showed them. A font that has the missing glyphs is
    looked for among matplotlib's known fonts, then the system's (a font installed after matplotlib built its font
    list is found too), and added after the default as a per-glyph fallback. Nothing is searched for Latin text."""
    import matplotlib
    from matplotlib import font_manager

    default = font_manager.get_font(font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans")))
    missing = frozenset(c for t in texts for c in t if not c.isspace() and not default.get_char_index(ord(c)))
    if not missing:
        return
    if missing not in _fallback_family:
        _fallback_family[missing] = _find_family_with(missing)
    family = _fallback_family[missing]
    current = matplotlib.rcParams["font.family"]
    if family and family not in current:
        import logging

        # bold titles then log "Failed to find font weight bold for <fallback>" (drawn regular): expected, not news
        log = logging.getLogger("matplotlib.font_manager")
        if _quiet_bold_fallback not in log.filters:
            log.addFilter(_quiet_bold_fallback)
        matplotlib.rcParams["font.family"] = ["DejaVu Sans", *[f for f in current if f != "DejaVu Sans"], family]


def _quiet_bold_fallback(record: Any) -> bool:
    """A logging filter: drop only matplotlib's note that a fallback font has no bold weight."""
    return "Failed to find font weight" not in record.getMessage()


def _find_family_with(chars: frozenset[str]) -> str | None:
    from matplotlib import font_manager

    def covers(path: str) -> bool:
        try:
            font = font_manager.get_font(path)
        except (OSError, RuntimeError, ValueError):
            return False
        return all(font.get_char_index(ord(c)) for c in chars)

    known = [f for f in font_manager.fontManager.ttflist if f.fname.lower().endswith((".ttf", ".otf", ".ttc"))]
    for entry in known:
        if "last resort" not in entry.name.lower() and covers(entry.fname):  # its glyphs are boxes too
            return entry.name
    seen = {f.fname for f in known}
    for path in font_manager.findSystemFonts():
        if path not in seen and covers(path):
            font_manager.fontManager.addfont(path)
            return font_manager.FontProperties(fname=path).get_name()
    return None  # no font on this system has them: matplotlib draws boxes, the tables still show the names


def _style_axes(ax: Any) -> None:
    ax.grid(True, color="#e3e6ea", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color("#9aa3ad")
    ax.tick_params(colors="#4a525c")


class _Canvas(FigureCanvasQTAgg):
    """A canvas that redraws at most every MIN_DRAW_INTERVAL_S, and only while it is visible."""

    MIN_DRAW_INTERVAL_S = 0.25  # epoch points, dataset charts: soon
    BATCH_DRAW_INTERVAL_S = 1.0  # per-batch curve: at most every second (a draw holds the GIL)

    def __init__(self, width: float, height: float) -> None:
        with chart_style():
            fig = chart_figure(width, height)
        super().__init__(fig)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumHeight(160)
        self._last_draw = 0.0
        self._draw_cost = 0.0
        self._dirty = False
        self._relayout = True
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._flush)
        self._frame: QImage | None = None  # the picture as drawn before a resize, until it is drawn at its new size
        self.mpl_connect("draw_event", self._forget_frame)

    def request_draw(self, soon: bool = True, later: bool = False) -> None:
        """Schedule a redraw, coalescing bursts of updates (batch events) into a few draws per second.

        Training runs in a thread of this process, so every millisecond spent drawing here is taken from it:
        batch-driven draws wait at least two seconds, and longer when a draw is expensive. `later`: not at once
        even when one is due (at the next turn of the event loop at the soonest).
        """
        self._dirty = True
        if not self.isVisible():
            return  # drawn by showEvent
        interval = self.MIN_DRAW_INTERVAL_S if soon else max(self.BATCH_DRAW_INTERVAL_S, 10 * self._draw_cost)
        wait = interval - (time.monotonic() - self._last_draw)
        if wait <= 0 and not later:
            self._flush()
        elif not self._timer.isActive() or (soon and self._timer.remainingTime() > wait * 1000):
            self._timer.start(max(0, int(wait * 1000) + 1))

    def _flush(self) -> None:
        if self._dirty and self.isVisible():
            self._dirty = False
            start = time.monotonic()
            self._render()
            if self._relayout:
                # Constrained layout doubles the cost of a draw; lay out once, again only after a resize.
                self.figure.set_layout_engine("none")
                self._relayout = False
            self._last_draw = time.monotonic()
            self._draw_cost = self._last_draw - start

    def relayout(self) -> None:
        """Lay the figure out again at the next draw (after a resize, or when tick labels change width)."""
        if not self._relayout:
            self.figure.set_layout_engine("constrained")
            self._relayout = True

    def _render(self) -> None:
        """Bring the pixels up to date (subclasses may blit instead of drawing everything)."""
        self.draw()

    @_styled
    def draw(self) -> None:
        """A full draw, in the charts' style: ticks made by it (after a clear, on new limits) take _RC's sizes."""
        super().draw()

    def draw_idle(self) -> None:
        """Matplotlib's redraw after a resize, paced as the chart's own (and none while hidden: showEvent draws):
        each resize drew the whole figure at the next turn of the event loop, besides the chart's own draw (a
        rescan showing and hiding the progress row above it drew 150 classes' bars five times, 0.1-0.2 s each; a
        window dragged larger, once per step, the training charts too, and those of hidden tabs as well). At the
        next turn of the event loop at the soonest: the resize that asks has not finished placing the titles."""
        self.request_draw(later=True)

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 — Qt override
        self._keep_frame()
        self.relayout()
        super().resizeEvent(event)

    def _keep_frame(self) -> None:
        """Before the first resize since a draw: keep the picture drawn, to be shown stretched over the canvas until
        the paced draw at its new size (matplotlib painted an empty one meanwhile: a window dragged showed blank
        charts in most frames)."""
        renderer = getattr(self, "renderer", None)
        if self._frame is not None or renderer is None:
            return
        pixels = renderer.buffer_rgba()
        height, width = pixels.shape[:2]
        self._frame = QImage(bytes(pixels), width, height, QImage.Format.Format_RGBA8888).copy()  # (its own copy)

    def _forget_frame(self, _event: Any = None) -> None:
        self._frame = None  # (drawn at its size)

    def paintEvent(self, event: Any) -> None:  # noqa: N802 — Qt override
        if self._frame is None:
            super().paintEvent(event)
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.drawImage(QRectF(self.rect()), self._frame)
        painter.end()

    def showEvent(self, event: Any) -> None:  # noqa: N802 — Qt override
        super().showEvent(event)
        if self._dirty:
            self._flush()


OFF_SCALE = 3.0


def loss_cap(train: Sequence[float], floor: float = 0.0) -> float:
    """The largest validation loss drawn to scale: OFF_SCALE × the largest training loss (or `floor`, about an
    untrained model's loss). A model trained from scratch can score a first validation loss of 30 against a training
    loss of 1.4 (its BatchNorm statistics are far off), which flattened every other point onto the axis. Training
    losses are always drawn to scale: a run that diverges must show it."""
    finite = [v for v in train if math.isfinite(v)]
    return OFF_SCALE * max(max(finite), floor) if finite else math.inf


def off_scale_note(points: Sequence[tuple[float, float]]) -> str:
    """'validation loss 31.2 at epoch 1 is off the scale' for the (epoch, loss) points drawn as ▲ on the top edge."""
    if not points:
        return ""
    epoch, value = max(points, key=lambda p: p[1])
    if len(points) == 1:
        return f"▲ validation loss {value:.3g} at epoch {epoch:g} is off the scale"
    return f"▲ {len(points)} validation losses off the scale (up to {value:.3g}, epoch {epoch:g})"


class LossSmoother:
    """The per-batch loss line's smoothing: an exponential moving average, bias-corrected (so it starts at the
    first value, not at 0). The Train tab draws with it live and the Runs tab from batches.csv."""

    FACTOR = 0.9

    def __init__(self) -> None:
        self._ema = 0.0
        self._n = 0

    def __call__(self, value: float) -> float:
        self._n += 1
        self._ema = self.FACTOR * self._ema + (1 - self.FACTOR) * value
        return self._ema / (1 - self.FACTOR**self._n)


class TrainingCharts(_Canvas):
    """Loss and accuracy against epochs: per-epoch train/val points and a smoothed per-batch training loss.

    Drawing the axes (tick labels, legends, titles: text rendering) is most of a matplotlib draw, and training
    competes with it for the GIL. So the axes are drawn only when they change and the curves are blitted over a
    saved background: the x axis spans the planned epochs from the start (set_planned_epochs), accuracy spans
    0-100 %, and the loss axis grows in "nice" steps only when a value passes its top.
    """

    @_styled
    def __init__(self, width: float = 7.0, height: float = 3.2) -> None:
        super().__init__(width, height)
        self.ax_loss, self.ax_acc = self.figure.subplots(1, 2)
        for ax, title, ylabel in ((self.ax_loss, "Loss", "loss"), (self.ax_acc, "Accuracy", "accuracy (%)")):
            _style_axes(ax)
            ax.set_title(title, loc="left", fontweight="bold")
            ax.set_ylabel(ylabel)  # (the x label: _place_legend, with the legend's place)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_autoscale_on(False)  # limits are set here, and only when they must change
        line = {"animated": True}  # drawn by _draw_curves over the saved background, not by a full draw
        (self.batch_line,) = self.ax_loss.plot([], [], color=BATCH_COLOR, linewidth=1.2, label="per batch", **line)
        (self.train_loss_line,) = self.ax_loss.plot(
            [], [], "o-", color=TRAIN_COLOR, markersize=4, label="train", **line
        )
        (self.val_loss_line,) = self.ax_loss.plot(
            [], [], "s-", color=VAL_COLOR, markersize=4, label="validation", **line
        )
        # validation losses too large for the axis: a ▲ on its top edge each, and a note saying how large
        (self.off_scale_line,) = self.ax_loss.plot(
            [], [], "^", color=VAL_COLOR, markersize=6, clip_on=False, linestyle="none", **line
        )
        self.off_scale_text = self.ax_loss.text(
            1.0,
            1.015,
            "",
            transform=self.ax_loss.transAxes,
            ha="right",
            va="bottom",
            color=VAL_COLOR,
            fontsize=8,
            **line,
        )  # (placed by _place_off_scale_note)
        for artist in (self.off_scale_line, self.off_scale_text):
            artist.set_in_layout(False)  # inside the axes: the layout must not make room for them
        (self.train_acc_line,) = self.ax_acc.plot([], [], "o-", color=TRAIN_COLOR, markersize=4, label="train", **line)
        (self.val_acc_line,) = self.ax_acc.plot([], [], "s-", color=VAL_COLOR, markersize=4, label="validation", **line)
        self._legend: Any = None
        self._compact = False
        self._place_legend()
        self.ax_acc.set_ylim(0, 101)
        self._background: Any = None
        self.full_draws = 0  # counters for tests and benchmarks
        self.blits = 0
        self.mpl_connect("draw_event", self._on_full_draw)
        self.planned_epochs = 0
        self._expected_top = 0.0
        self._note_source = ""  # the off-scale note as off_scale_note wrote it (the artist may hold it wrapped)
        self.reset()

    COMPACT_BELOW_PX = 250  # shorter than this, the plot titles go (the y labels still name the plots)

    @_styled
    def _place_legend(self) -> None:
        """One legend for both plots (they use the same styles), never over a curve: in a row above them, or in a
        compact chart in a column at their right, and no "epoch" under the axes (at 1280 x 720 the row and the
        labels left the plots 80 px of the canvas's 170)."""
        if self._legend is not None:
            self._legend.remove()
        compact = self._compact
        self._legend = self.figure.legend(
            handles=[self.batch_line, self.train_loss_line, self.val_loss_line],
            loc="outside right upper" if compact else "outside upper center",
            ncols=1 if compact else 3,
            frameon=False,
            handlelength=1.8,
            columnspacing=1.6,
        )
        for ax in (self.ax_loss, self.ax_acc):
            ax.set_xlabel("" if compact else "epoch")

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 — Qt override
        compact = event.size().height() < self.COMPACT_BELOW_PX
        if compact != self._compact:
            self._compact = compact
            self._place_legend()
        super().resizeEvent(event)
        self._place_off_scale_note()  # (its room changed: above the plot, inside, wrapped)

    def _note_width(self, note: Any) -> float:
        """The note's width in pixels as drawn now (0 before the canvas can tell)."""
        try:
            return float(note.get_window_extent(renderer=self.get_renderer()).width)
        except Exception:  # noqa: BLE001 - no renderer yet: a resize places it again
            return 0.0

    def _fit_note(self, note: Any) -> bool:
        """True when the note, on one line, is no wider than the Loss plot (it ran on under the Accuracy title);
        else it is wrapped to the plot's width for its place inside, and False."""
        text = self._note_source
        note.set_text(text)
        width, room = self._note_width(note), 0.96 * self.ax_loss.bbox.width
        if width <= room:
            return True
        lines = math.ceil(width / max(room, 1.0))  # as many as it needs, about equally long
        note.set_text(textwrap.fill(text, max(12, math.ceil(len(text) / lines) + 3)))
        return False

    @_styled
    def _place_off_scale_note(self) -> bool:
        """The off-scale note takes the Loss title's place in the row above the plot, clear of the curves (the
        y label still names the plot); a compact chart has no title row, so there it goes inside the plot's top
        right corner on a white backing. True when a title changed (the axes need a full draw)."""
        note, compact = self.off_scale_text, self._compact
        inside = compact or not self._fit_note(note)
        if inside:
            note.set_position((0.99, 0.97))
            note.set_ha("right")
            note.set_multialignment("left")
            note.set_va("top")
            note.set_bbox({"facecolor": "white", "edgecolor": "none", "pad": 1.5})
        else:
            note.set_position((0.0, 1.02))
            note.set_ha("left")
            note.set_va("bottom")
            note.set_bbox(None)
        changed = False
        for ax, title in ((self.ax_loss, "Loss"), (self.ax_acc, "Accuracy")):
            want = "" if compact or (ax is self.ax_loss and note.get_text() and not inside) else title
            if ax.get_title(loc="left") != want:
                ax.set_title(want, loc="left", fontweight="bold")
                changed = True
        return changed

    def reset(self) -> None:
        self.epochs: list[int] = []
        self.train_loss: list[float] = []
        self.val_loss: list[float] = []
        self.train_acc: list[float] = []
        self.val_acc: list[float] = []
        self.batch_x: list[float] = []
        self.batch_y: list[float] = []
        self._smooth = LossSmoother()
        self._loss_top = 0.0
        self._refresh()

    def set_planned_epochs(self, epochs: int, classes: int = 0) -> None:
        """Span the x axis over the whole run from its start, so it need not be redrawn as epochs arrive; with the
        number of classes, start the loss axis where an untrained model's loss (about ln classes) fits."""
        self.planned_epochs = max(0, int(epochs))
        self.setAccessibleDescription(self.describe())
        if classes >= 2:
            self._expected_top = nice_ceiling(1.1 * math.log(classes))
        self._update_limits(soon=True)

    @property
    def epoch_points(self) -> int:
        """Number of per-epoch points drawn on the training-loss curve."""
        return len(self.train_loss_line.get_xdata())

    def add_batch(self, epoch: int, step: int, steps: int, loss: float) -> None:
        if self._append_batch(epoch, step, steps, loss):
            self.batch_line.set_data(self.batch_x, self.batch_y)
            self._update_limits(soon=False)

    def _append_batch(self, epoch: int, step: int, steps: int, loss: float) -> bool:
        if loss is None or not math.isfinite(loss) or epoch < 1:  # (epoch 0: a linear probe's feature pass)
            return False
        smoothed = self._smooth(float(loss))
        # epoch is 1-based and the epoch's point sits at x = epoch, so batch k of epoch e sits at e - 1 + k/steps
        self.batch_x.append(epoch - 1 + step / max(steps, 1))
        self.batch_y.append(smoothed)
        return True

    def add_epoch(
        self, epoch: int, train_loss: float, train_acc: float, val_loss: float | None, val_acc: float | None
    ) -> None:
        self.epochs.append(epoch)
        self.train_loss.append(train_loss)
        self.train_acc.append(100.0 * train_acc)
        self.val_loss.append(math.nan if val_loss is None else val_loss)
        self.val_acc.append(math.nan if val_acc is None else 100.0 * val_acc)
        self._refresh()

    def add_metrics(self, m: Any) -> None:
        """Add one core.engine.EpochMetrics."""
        self.add_epoch(m.epoch, m.train_loss, m.train_acc, m.val_loss, m.val_acc)

    def set_history(self, history: Sequence[dict], batches: Sequence[tuple[int, int, int, float]] = ()) -> None:
        """Show the epochs of an existing run (resume); rows as in history.csv, and its per-batch running losses
        as (epoch, step, steps, loss) from batches.csv."""
        self.reset()

        def num(row: dict, key: str) -> float | None:
            v = row.get(key)
            try:
                return None if v in (None, "") else float(v)
            except (TypeError, ValueError):
                return None

        for row in history:
            self.epochs.append(int(float(row.get("epoch", len(self.epochs) + 1))))
            tl, ta = num(row, "train_loss"), num(row, "train_acc")
            self.train_loss.append(math.nan if tl is None else tl)
            self.train_acc.append(math.nan if ta is None else 100.0 * ta)
            vl, va = num(row, "val_loss"), num(row, "val_acc")
            self.val_loss.append(math.nan if vl is None else vl)
            self.val_acc.append(math.nan if va is None else 100.0 * va)
        for row in batches:
            self._append_batch(*row)
        self._refresh()

    def _refresh(self) -> None:
        self.setAccessibleDescription(self.describe())
        self.train_loss_line.set_data(self.epochs, self.train_loss)
        self.val_loss_line.set_data(self.epochs, self.val_loss)
        self.train_acc_line.set_data(self.epochs, self.train_acc)
        self.val_acc_line.set_data(self.epochs, self.val_acc)
        self.batch_line.set_data(self.batch_x, self.batch_y)
        self._update_limits(soon=True)

    def describe(self) -> str:
        """The curves' latest values in words (a screen reader's description: the chart itself is a picture)."""
        if not self.epochs:
            return "No epoch finished yet."

        def pair(loss: float, acc: float) -> str:
            words = [
                f"loss {loss:.4g}" if math.isfinite(loss) else "",
                f"accuracy {acc:.1f}%" if math.isfinite(acc) else "",
            ]
            return ", ".join(w for w in words if w) or "not measured"

        of = f" of {self.planned_epochs}" if self.planned_epochs >= self.epochs[-1] else ""
        text = f"Epoch {self.epochs[-1]}{of}: train {pair(self.train_loss[-1], self.train_acc[-1])}"
        if math.isfinite(self.val_loss[-1]) or math.isfinite(self.val_acc[-1]):
            text += f"; validation {pair(self.val_loss[-1], self.val_acc[-1])}"
        finite = [(a, e) for a, e in zip(self.val_acc, self.epochs, strict=True) if math.isfinite(a)]
        if len(finite) > 1:
            best, epoch = max(finite, key=lambda acc_epoch: acc_epoch[0])  # (the first epoch to reach it)
            text += f"; best validation accuracy {best:.1f}% at epoch {epoch}"
        return text + "."

    # -- limits: changed rarely, each change costs a full draw
    def _update_limits(self, soon: bool) -> None:
        last = max([0, *self.epochs, *(math.ceil(x) for x in self.batch_x[-1:])])
        right = max(1, self.planned_epochs, last)
        xlim = (0.0, right + max(0.2, 0.02 * right))
        cap = loss_cap((*self.train_loss, *self.batch_y), self._expected_top)
        finite = [v for v in (*self.train_loss, *self.val_loss, *self.batch_y) if math.isfinite(v) and v <= cap]
        peak = max(finite, default=0.0)
        if not finite:
            self._loss_top = self._expected_top  # 0: no guess, the axis shows 0-1 until values arrive
        elif peak > self._loss_top or peak < 0.25 * self._loss_top:
            self._loss_top = nice_ceiling(1.1 * peak)
        ylim = (0.0, self._loss_top or 1.0)
        off = [(e, v) for e, v in zip(self.epochs, self.val_loss, strict=True) if math.isfinite(v) and v > ylim[1]]
        self.off_scale_line.set_data([e for e, _ in off], [ylim[1]] * len(off))
        note = off_scale_note(off)
        if note != self._note_source:  # (placing it measures the text: not again for every batch)
            self._note_source = note
            self.off_scale_text.set_text(note)
            if self._place_off_scale_note():
                self.relayout()
        if tuple(self.ax_loss.get_xlim()) != xlim or tuple(self.ax_loss.get_ylim()) != ylim:
            for ax in (self.ax_loss, self.ax_acc):
                ax.set_xlim(*xlim)
            self.ax_loss.set_ylim(*ylim)
            self.relayout()  # a full draw, laid out again: new tick labels may be wider
        self.request_draw(soon)

    # -- drawing: a full draw saves the background; updates blit the curves over it
    def _curves(self) -> list[tuple[Any, Any]]:
        return [
            (self.ax_loss, self.batch_line),
            (self.ax_loss, self.train_loss_line),
            (self.ax_loss, self.val_loss_line),
            (self.ax_loss, self.off_scale_line),
            (self.ax_loss, self.off_scale_text),
            (self.ax_acc, self.train_acc_line),
            (self.ax_acc, self.val_acc_line),
        ]

    def _on_full_draw(self, _event: Any) -> None:
        self.full_draws += 1
        self._background = self.copy_from_bbox(self.figure.bbox)
        self._draw_curves()

    def _draw_curves(self) -> None:
        for ax, line in self._curves():
            ax.draw_artist(line)

    def _render(self) -> None:
        if self._background is None or self._relayout:  # first draw, new size or new limits
            self.draw()  # draw_event → _on_full_draw: background saved, curves drawn on top
            return
        self.restore_region(self._background)
        self._draw_curves()
        self.blit(self.figure.bbox)
        self.blits += 1


AXIS_TOP_MAX = 1e300  # the highest axis top: matplotlib's tick arithmetic overflows near the float's maximum


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 (times a power of ten) that is ≥ value, as a float, at most
    AXIS_TOP_MAX. (An int power of ten above 2**63, from a diverged run's loss of 2e19, made matplotlib's set_ylim
    raise a TypeError: the Runs tab then showed no curves, settings or buttons for that run.)"""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    if value >= AXIS_TOP_MAX:
        return AXIS_TOP_MAX
    exp = math.floor(math.log10(value))
    for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        top = m * 10.0**exp
        if top >= value * (1 - 1e-12):
            return min(top, AXIS_TOP_MAX)
    return AXIS_TOP_MAX


class BarChart(_Canvas):
    """Horizontal bars: images per class, with the count printed at the end of each bar."""

    def __init__(self, width: float = 4.0, height: float = 2.6) -> None:
        super().__init__(width, height)
        with chart_style():
            self.ax = self.figure.subplots()
            # the figure's title, from its left edge: an axes title starts after the class names and was cut off
            self.figure.suptitle("Images per class", x=0.02, ha="left", fontweight="bold", fontsize=10)
        self.set_counts([], [])

    def set_counts(self, names: Sequence[str], counts: Sequence[int]) -> None:
        from gui.widgets import shown_path

        # a class folder's name whose bytes are not UTF-8 (a zip from Windows) as the table shows it: matplotlib
        # raised on it at every draw, and the chart kept the data set before
        names = [shown_path(str(n)) for n in names]
        # before the axes are cleared, and outside chart_style (which would undo it): new tick labels take the font
        # family when made
        use_fonts_for(names)
        self._set_counts(names, counts)

    @_styled
    def _set_counts(self, names: Sequence[str], counts: Sequence[int]) -> None:
        ax = self.ax
        ax.clear()
        _style_axes(ax)
        ax.grid(True, axis="x", color="#e3e6ea")
        ax.grid(False, axis="y")
        self._labels: list[str] = []
        self._counts: list[Any] = []
        if not names:
            ax.text(0.5, 0.5, "no data set loaded", ha="center", va="center", color="#8a939c", transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
        else:
            y = list(range(len(names)))
            mean = sum(counts) / len(counts)
            colors = [VAL_COLOR if c < 0.5 * mean else TRAIN_COLOR for c in counts]
            bars = ax.barh(y, counts, color=colors, height=0.65)
            from gui.widgets import elide_middle

            self._labels = [elide_middle(n, 18) for n in names]
            ax.invert_yaxis()
            self._counts = ax.bar_label(bars, padding=3, fontsize=8, color="#4a525c")
            ax.set_xlim(0, max(counts) * 1.18 + 1)
            ax.xaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))  # 0, 1, 2, not 0.5; few, not "80100120"
        self._names_shown = 0
        self._thin_labels()
        if names:
            pairs = sorted(zip(counts, names, strict=True))
            self.setAccessibleDescription(
                f"{len(names)} classes, {sum(counts)} images: from {pairs[0][0]} ({pairs[0][1]}) "
                f"to {pairs[-1][0]} ({pairs[-1][1]})."
            )
        else:
            self.setAccessibleDescription("No data set loaded.")
        self.relayout()  # new class names: room for them is found again at the next draw
        self.request_draw()

    LABEL_PX = 11  # the least height a class name needs: with less room per bar, every k-th name is written

    @_styled
    def _thin_labels(self) -> None:
        """Many classes in a short chart: name every k-th bar (and print its count) rather than overlap them all."""
        labels = getattr(self, "_labels", [])
        if not labels:
            return
        room = max(1.0, self.height() - 70) / len(labels)  # the plot's height per bar, less title and axis
        k = max(1, math.ceil(self.LABEL_PX / room))
        if k == self._names_shown:
            return
        self._names_shown = k
        shown = range(0, len(labels), k)
        self.ax.set_yticks(list(shown), [labels[i] for i in shown], fontsize=8)
        for i, text in enumerate(self._counts):
            text.set_visible(i % k == 0)

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 — Qt override
        if getattr(self, "_labels", None):  # (before the resize's own draw: a request of its own drew twice)
            self._thin_labels()
        super().resizeEvent(event)
