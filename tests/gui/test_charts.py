"""The live training charts: curves blitted over a saved background, axes redrawn only when their limits change."""

import math

import pytest

from gui.charts import AXIS_TOP_MAX, TRAIN_COLOR, VAL_COLOR, TrainingCharts, nice_ceiling


def _flush(qtbot, charts: TrainingCharts) -> None:
    qtbot.waitUntil(lambda: not charts._dirty and not charts._timer.isActive(), timeout=5000)


def _shown_bar_chart(qtbot, width: int, height: int):
    from gui.charts import BarChart

    chart = BarChart()
    qtbot.addWidget(chart)
    chart.resize(width, height)
    chart.show()
    return chart


def _count_colour(charts: TrainingCharts, hex_colour: str, tolerance: int = 30) -> int:
    img = charts.grab().toImage()
    want = tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    n = 0
    for y in range(0, img.height(), 2):
        for x in range(0, img.width(), 2):
            c = img.pixelColor(x, y)
            if all(abs(a - b) <= tolerance for a, b in zip((c.red(), c.green(), c.blue()), want, strict=True)):
                n += 1
    return n


@pytest.fixture
def charts(qtbot):
    c = TrainingCharts()
    qtbot.addWidget(c)
    c.resize(800, 340)
    c.show()
    qtbot.waitExposed(c)
    return c


def test_nice_ceiling():
    assert nice_ceiling(2.3) == 2.5 and nice_ceiling(0.7) == pytest.approx(0.8)
    assert nice_ceiling(1.0) == 1.0 and nice_ceiling(11) == 12 and nice_ceiling(0.031) == pytest.approx(0.04)
    assert nice_ceiling(0) == 1.0 and nice_ceiling(math.inf) == 1.0
    # a diverged run's loss: a float (an int 10**19 broke matplotlib's set_ylim), and never past what it can tick
    assert type(nice_ceiling(2.3e19)) is float and nice_ceiling(2.3e19) == pytest.approx(2.5e19)
    assert type(nice_ceiling(7)) is float and nice_ceiling(1.7e308) == AXIS_TOP_MAX == nice_ceiling(9e299)


def test_a_diverged_runs_loss_of_2e19_is_drawn(qtbot, charts):
    """A run whose loss blew up to 2.3e19 (no NaN yet) stopped the live chart: the axis top was an int."""
    charts.set_planned_epochs(5, classes=4)
    charts.add_batch(1, 1, 4, 1.4)
    charts.add_batch(1, 4, 4, 2.3e19)
    charts.add_epoch(1, 2.3e19, 0.25, 2.3e19, 0.25)
    _flush(qtbot, charts)
    assert charts.ax_loss.get_ylim() == (0.0, nice_ceiling(1.1 * 2.3e19))
    charts.add_batch(2, 1, 4, 1.7e308)  # the largest float: the axis stops at a top matplotlib can still tick
    _flush(qtbot, charts)
    assert charts.ax_loss.get_ylim() == (0.0, AXIS_TOP_MAX)
    assert not charts.grab().isNull()


def test_planned_epochs_fix_the_axes_and_updates_blit(qtbot, charts):
    charts.set_planned_epochs(10)
    charts.add_batch(1, 1, 20, 1.4)
    _flush(qtbot, charts)
    full0 = charts.full_draws
    assert full0 >= 1
    xlim, ylim = charts.ax_loss.get_xlim(), charts.ax_loss.get_ylim()
    assert xlim[1] >= 10 and ylim == (0.0, nice_ceiling(1.1 * 1.4))
    blue0 = _count_colour(charts, TRAIN_COLOR)
    loss = 1.4
    for epoch in range(1, 6):
        for step in range(1, 21):
            loss *= 0.985
            charts.add_batch(epoch, step, 20, loss)
        charts.add_epoch(epoch, loss, 0.1 * epoch + 0.3, loss * 1.1, 0.1 * epoch + 0.2)
        charts._flush()  # what the throttle timer would do
    _flush(qtbot, charts)
    assert charts.epoch_points == 5
    assert charts.full_draws == full0, "epochs inside the planned span must not redraw the axes"
    assert charts.blits >= 5
    assert charts.ax_loss.get_xlim() == xlim and charts.ax_loss.get_ylim() == ylim
    # the blitted curves are really on screen: many more train-colour pixels (points and lines) than the legend's
    assert _count_colour(charts, TRAIN_COLOR) > blue0 + 40


def test_a_higher_loss_grows_the_axis_with_one_full_draw(qtbot, charts):
    charts.set_planned_epochs(3)
    charts.add_epoch(1, 0.9, 0.5, 1.0, 0.5)
    _flush(qtbot, charts)
    full0, top0 = charts.full_draws, charts.ax_loss.get_ylim()[1]
    charts.add_epoch(2, 0.8, 0.6, 2.5, 0.4)  # validation loss jumps above the top
    _flush(qtbot, charts)
    assert charts.ax_loss.get_ylim()[1] == nice_ceiling(1.1 * 2.5) > top0
    assert charts.full_draws == full0 + 1
    assert not charts.off_scale_text.get_text() and len(charts.off_scale_line.get_xdata()) == 0


def test_a_validation_loss_far_above_training_goes_off_the_scale_with_a_note(qtbot, charts):
    """From scratch, a first validation loss of 31 (BatchNorm statistics far off) flattened the whole run's curves
    onto the axis: it is drawn as a ▲ on the top edge, with its value, and the axis fits the rest."""
    charts.set_planned_epochs(5, classes=4)
    charts.add_epoch(1, 1.3, 0.4, 31.2, 0.25)
    charts.add_epoch(2, 1.0, 0.55, 1.1, 0.5)
    _flush(qtbot, charts)
    top = charts.ax_loss.get_ylim()[1]
    assert top == nice_ceiling(1.1 * math.log(4)) < 31.2  # where an untrained 4-class model starts
    assert list(charts.off_scale_line.get_xdata()) == [1] and list(charts.off_scale_line.get_ydata()) == [top]
    assert "31.2 at epoch 1" in charts.off_scale_text.get_text()
    assert _count_colour(charts, VAL_COLOR, tolerance=20) > 0  # marker and note are drawn (blitted) on screen
    # the note stands in the title's row, above the plot (inside it, it covered the curves' start)
    if not charts._compact:
        assert charts.ax_loss.get_title(loc="left") == "" and charts.off_scale_text.get_position()[1] > 1.0
    charts.add_epoch(3, 8.0, 0.2, 9.0, 0.2)  # the training loss itself jumps (diverging): always to scale
    _flush(qtbot, charts)
    assert charts.ax_loss.get_ylim()[1] == nice_ceiling(1.1 * 9.0)
    assert "31.2 at epoch 1" in charts.off_scale_text.get_text()  # 31.2 > 3 × 8.0: still off the scale
    charts.set_history([])
    assert not charts.off_scale_text.get_text() and len(charts.off_scale_line.get_xdata()) == 0
    assert charts.ax_loss.get_title(loc="left") in ("Loss", "")  # its title back (none in a compact chart)
    assert (charts.ax_loss.get_title(loc="left") == "") == charts._compact


def test_running_past_the_plan_and_resizing_redraw_everything(qtbot, charts):
    charts.set_planned_epochs(2)
    for e in (1, 2):
        charts.add_epoch(e, 1.0 / e, 0.5, None, None)
    _flush(qtbot, charts)
    full0 = charts.full_draws
    charts.add_epoch(3, 0.3, 0.6, None, None)  # e.g. a resumed run given more epochs
    _flush(qtbot, charts)
    assert charts.ax_acc.get_xlim()[1] >= 3 and charts.full_draws == full0 + 1
    charts.resize(640, 300)
    qtbot.waitUntil(lambda: charts.full_draws > full0 + 1, timeout=5000)
    assert charts._background is not None  # saved again for the new size


def test_reset_and_history_show_old_epochs(qtbot, charts):
    charts.set_history(
        [
            {"epoch": "1", "train_loss": "2.0", "train_acc": "0.3", "val_loss": "", "val_acc": ""},
            {"epoch": "2", "train_loss": "1.5", "train_acc": "0.5", "val_loss": "1.6", "val_acc": "0.4"},
        ]
    )
    assert charts.epoch_points == 2 and math.isnan(charts.val_loss[0])
    assert charts.ax_loss.get_ylim()[1] >= 2.0 and charts.batch_x == []
    charts.set_history([{"epoch": 1, "train_loss": 2.0}], [(1, 1, 4, 2.4), (1, 2, 4, math.nan), (1, 4, 4, 2.0)])
    assert charts.batch_x == [0.25, 1.0] and len(charts.batch_y) == 2  # the NaN row is not drawn
    assert charts.batch_y[0] == pytest.approx(2.4) and 2.0 < charts.batch_y[1] < 2.4  # smoothed as when live
    charts.reset()
    assert charts.epoch_points == 0 and charts.ax_loss.get_ylim() == (0.0, 1.0)


def test_the_loss_axis_starts_where_an_untrained_models_loss_fits(qtbot, charts):
    charts.set_planned_epochs(5, classes=4)
    _flush(qtbot, charts)
    full0 = charts.full_draws
    assert charts.ax_loss.get_ylim() == (0.0, nice_ceiling(1.1 * math.log(4)))
    charts.add_batch(1, 1, 10, 1.45)  # about ln 4: inside the axis, so no full draw when training starts
    charts.add_epoch(1, 1.3, 0.4, 1.35, 0.4)
    _flush(qtbot, charts)
    assert charts.full_draws == full0 and charts.blits >= 1
    charts.add_epoch(2, 0.05, 0.99, 0.08, 0.98)  # mostly far below: the axis stays (its peak is still 1.45)
    _flush(qtbot, charts)
    assert charts.ax_loss.get_ylim()[1] == nice_ceiling(1.1 * math.log(4))


def test_wider_tick_labels_after_a_limit_change_keep_the_axis_label_inside(qtbot, charts):
    charts.set_planned_epochs(4)
    charts.add_epoch(1, 0.9, 0.5, 0.9, 0.5)  # loss axis 0-1: tick labels like "0.2"
    _flush(qtbot, charts)
    charts.add_epoch(2, 1.5, 0.5, 1.5, 0.5)  # 0-2 in quarters: "0.25", wider
    _flush(qtbot, charts)
    assert charts.ax_loss.get_ylim()[1] == 2.0
    box = charts.ax_loss.yaxis.label.get_window_extent(charts.get_renderer())
    assert box.x0 >= 0, "the y-axis label was pushed out of the figure"


def test_a_short_chart_drops_the_titles_and_gives_the_plots_the_room(qtbot, charts):
    charts.set_planned_epochs(3)
    charts.add_epoch(1, 1.2, 0.4, 1.3, 0.35)
    _flush(qtbot, charts)
    assert charts.ax_loss.get_title(loc="left") == "Loss"
    charts.resize(800, 180)
    _flush(qtbot, charts)
    _flush(qtbot, charts)
    assert charts.ax_loss.get_title(loc="left") == "" and charts.ax_acc.get_title(loc="left") == ""
    renderer = charts.figure.canvas.get_renderer()
    ticks = [t.get_window_extent(renderer) for t in charts.ax_loss.get_xticklabels() if t.get_text()]
    plot = charts.ax_loss.get_window_extent(renderer)
    assert charts.ax_loss.get_xlabel() == ""  # (no "epoch" under the axes: the ticks say it)
    # laid out again, for the titles gone too: the tick labels inside, the plot ≥ 60 px tall
    assert ticks and min(t.y0 for t in ticks) >= 0 and plot.height >= 60
    charts.resize(800, 340)
    _flush(qtbot, charts)
    assert charts.ax_acc.get_title(loc="left") == "Accuracy"


def _draw_warnings(chart) -> list[str]:
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        chart.figure.canvas.draw()
    return [str(w.message) for w in caught if "missing from font" in str(w.message)]


@pytest.mark.parametrize(
    "name",
    [
        "script \u210a",  # not in matplotlib's default font; in its bundled STIX fonts, so found on every machine
        pytest.param("日本", id="cjk"),  # needs a CJK font on the system (skipped where there is none)
    ],
)
def test_class_names_outside_the_default_font_are_drawn_not_boxes(qtbot, name, monkeypatch):
    """Class names are drawn with a fallback font for glyphs matplotlib's default lacks (the tables showed 日本
    while the charts drew two empty boxes)."""
    import matplotlib

    from gui import charts as charts_module
    from gui.charts import BarChart

    if name == "日本" and charts_module._find_family_with(frozenset(name)) is None:
        pytest.skip("no font with CJK glyphs on this system")
    import logging

    monkeypatch.setattr(charts_module, "_fallback_family", {})  # found afresh, and forgotten after the test
    log = logging.getLogger("matplotlib.font_manager")
    monkeypatch.setattr(log, "filters", list(log.filters))
    with matplotlib.rc_context():  # the fallback is a global rcParams change: undone after the test
        chart = BarChart()
        qtbot.addWidget(chart)
        chart.set_counts(["plain", name], [3, 4])
        assert _draw_warnings(chart) == []
        from gui.evaluate_tab import ConfusionMatrixCanvas

        matrix = ConfusionMatrixCanvas()
        qtbot.addWidget(matrix)
        matrix.set_matrix([[3, 1], [0, 4]], ["plain", name])
        assert _draw_warnings(matrix) == []
        family = matplotlib.rcParams["font.family"]
        assert family[0] == "DejaVu Sans" and len(family) >= 2  # Latin text keeps the default font


def test_class_balance_chart_makes_room_for_new_class_names(qtbot):
    """The layout is computed once per size (it doubles a draw's cost); new class names must get it done again,
    or they are drawn off the canvas's left edge."""

    chart = _shown_bar_chart(qtbot, 260, 300)
    _flush(qtbot, chart)  # laid out with no data set: no names
    bare = chart.ax.get_position().x0
    chart.set_counts(["a rather long class name", "b"], [5, 7])
    _flush(qtbot, chart)
    renderer = chart.figure.canvas.get_renderer()
    left = min(t.get_window_extent(renderer).x0 for t in chart.ax.get_yticklabels())
    assert chart.ax.get_position().x0 > bare and left >= 0  # every name inside the canvas


def test_class_balance_chart_counts_in_whole_images_with_room_between_the_numbers(qtbot):
    """Classes of one image each: the count axis reads 0, 1, 2 (it read 0.0, 0.5, 1.0 …)."""

    chart = _shown_bar_chart(qtbot, 260, 300)
    chart.set_counts(["a", "b"], [1, 1])
    _flush(qtbot, chart)
    ticks = [t for t in chart.ax.get_xticks() if 0 <= t <= chart.ax.get_xlim()[1]]
    assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks), ticks
    chart.set_counts(["a", "b", "c", "d"], [150, 140, 160, 155])  # (the sample's counts: "0 20 40 60 80100120…")
    _flush(qtbot, chart)
    renderer = chart.figure.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in chart.ax.get_xticklabels() if t.get_text()]
    assert len(boxes) >= 2 and all(a.x1 + 4 <= b.x0 for a, b in zip(boxes, boxes[1:], strict=False)), boxes


def test_class_balance_chart_resized_draws_once_per_burst_of_resizes(qtbot, monkeypatch):
    """Each resize drew all its bars at the next turn of the event loop, and once more for the chart's own request:
    a rescan (its progress row shown, then hidden) drew 150 classes five times, a window dragged larger at each
    step, 0.1-0.2 s apiece on the window's thread."""
    from PySide6.QtWidgets import QApplication

    chart = _shown_bar_chart(qtbot, 300, 700)
    qtbot.waitExposed(chart)
    chart.set_counts([f"class {i}" for i in range(150)], [10 + i % 7 for i in range(150)])
    _flush(qtbot, chart)
    shown = chart._names_shown
    draws = []
    real = chart.draw
    monkeypatch.setattr(chart, "draw", lambda: (draws.append(chart.height()), real())[1])
    for step in range(5):
        chart.resize(300, 500 - 40 * step)
        QApplication.processEvents()
    _flush(qtbot, chart)
    QApplication.processEvents()
    assert 1 <= len(draws) <= 2 and draws[-1] == 340, draws  # (the last size drawn, at least)
    assert chart._names_shown > shown  # every k-th name, k fitted to the last height


def test_training_charts_resized_draw_once_per_burst_and_not_while_hidden(qtbot, charts, monkeypatch):
    """The training charts took matplotlib's redraw at every resize: a window dragged drew them whole at each step
    (0.1-0.4 s apiece while a run trained beside them), and those of a hidden tab too."""
    from PySide6.QtWidgets import QApplication

    charts.set_planned_epochs(3)
    charts.add_epoch(1, 1.2, 0.4, 1.3, 0.35)
    _flush(qtbot, charts)
    draws = []
    real = charts.draw
    monkeypatch.setattr(charts, "draw", lambda: (draws.append(charts.width()), real())[1])
    for step in range(5):
        charts.resize(800 - 40 * step, 340)
        QApplication.processEvents()
    _flush(qtbot, charts)
    QApplication.processEvents()
    assert 1 <= len(draws) <= 2 and draws[-1] == 640, draws  # (the last size drawn, at least)
    draws.clear()
    charts.hide()
    for step in range(3):
        charts.resize(700 + 20 * step, 300)
        QApplication.processEvents()
    QApplication.processEvents()  # (a draw asked of a hidden chart at the next turn would have run by now)
    assert draws == []
    charts.show()  # drawn once, at its new size
    _flush(qtbot, charts)
    QApplication.processEvents()
    assert draws == [740]


def test_training_charts_show_their_last_picture_between_a_resize_and_its_draw(qtbot, charts, monkeypatch):
    """While a paced draw waited, matplotlib painted a renderer it had just made anew at the new size: empty. A
    window dragged showed blank charts in most of its frames."""
    from PySide6.QtWidgets import QApplication

    charts.set_planned_epochs(3)
    charts.add_epoch(1, 1.2, 0.4, 1.3, 0.35)
    charts.add_epoch(2, 0.9, 0.6, 1.0, 0.55)
    _flush(qtbot, charts)
    drawn = _count_colour(charts, TRAIN_COLOR)
    assert drawn > 20
    full = charts.full_draws
    monkeypatch.setattr(charts, "MIN_DRAW_INTERVAL_S", 3600.0)  # (the paced draw waits, whatever the machine's pace)
    for step in range(3):  # (a drag: resizes sooner than the paced draw, each painted)
        charts.resize(760 - 30 * step, 320)
        QApplication.processEvents()
        assert charts.full_draws == full and _count_colour(charts, TRAIN_COLOR) > drawn // 2  # stretched, not blank
    charts._timer.stop()
    charts._flush()  # (the paced draw)
    assert charts.full_draws == full + 1 and charts._frame is None  # drawn at its size: the kept picture let go
    assert _count_colour(charts, TRAIN_COLOR) > drawn // 2


def test_class_balance_chart_of_many_classes_names_every_kth_bar_rather_than_overlap_them(qtbot):

    chart = _shown_bar_chart(qtbot, 260, 300)
    names = [f"{i:02d}_class" for i in range(30)]
    chart.set_counts(names, [8] * 29 + [2])
    _flush(qtbot, chart)
    renderer = chart.figure.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in chart.ax.get_yticklabels()]
    assert 3 <= len(boxes) < 30 and boxes[0].y0 > 0
    assert all(a.y0 >= b.y1 - 1 for a, b in zip(boxes, boxes[1:], strict=False))  # top to bottom, none overlapping
    assert sum(t.get_visible() for t in chart.ax.texts) == len(boxes)  # a count beside each named bar
    chart.resize(260, 900)  # room for every name
    qtbot.waitUntil(lambda: len(chart.ax.get_yticklabels()) == 30, timeout=5000)


def test_laying_out_again_at_the_same_size_gives_the_same_axes(qtbot, charts):
    """Artists inside the plots (the off-scale note) once took part in the layout: every resize added margins
    until the plots collapsed to a strip."""
    charts.set_planned_epochs(5, classes=4)
    charts.add_epoch(1, 1.3, 0.4, 1.4, 0.4)
    _flush(qtbot, charts)
    before = charts.ax_loss.get_position().bounds
    for size in ((1200, 600), (800, 340), (1000, 450), (800, 340)):
        charts.resize(*size)
        qtbot.waitUntil(lambda s=size: (charts.width(), charts.height()) == s, timeout=5000)
        charts.request_draw()
        _flush(qtbot, charts)
    assert charts.ax_loss.get_position().bounds == pytest.approx(before, abs=0.005)


def test_an_off_scale_note_too_wide_for_the_title_row_wraps_inside_the_plot(qtbot, charts):
    """On a narrow chart the note ran on under the Accuracy title."""
    charts.resize(480, 380)
    charts.set_planned_epochs(6, classes=4)
    for epoch, val_loss in ((1, 99.0), (2, 1.1), (3, 123.0)):
        charts.add_epoch(epoch, 1.3 - 0.2 * epoch, 0.4, val_loss, 0.3)
    _flush(qtbot, charts)
    note = charts.off_scale_text
    assert "2 validation losses off the scale" in note.get_text().replace("\n", " ")
    assert "\n" in note.get_text() and note.get_position()[1] < 1.0  # wrapped, inside the plot
    assert charts.ax_loss.get_title(loc="left") == "Loss"
    assert charts._note_width(note) <= charts.ax_loss.bbox.width
    charts.resize(1400, 380)  # room enough: one line in the title's row
    _flush(qtbot, charts)
    qtbot.waitUntil(lambda: "\n" not in note.get_text() and note.get_position()[1] > 1.0)
    assert charts.ax_loss.get_title(loc="left") == ""


def test_a_short_chart_keeps_its_height_for_the_plots(qtbot, charts):
    """At 1280 x 720 the legend's row and the "epoch" labels left the plots 80 px of a 170-px canvas: a short
    chart puts the legend in a column at the right and drops the labels, and a tall one has them back."""
    charts.set_planned_epochs(10)
    charts.add_epoch(1, 1.2, 0.4, 1.3, 0.35)

    def extents() -> tuple:
        charts.draw()  # (the layout is made at a draw)
        return charts.ax_loss.get_window_extent(), charts.ax_acc.get_window_extent(), charts._legend.get_window_extent()

    charts.resize(800, 170)
    qtbot.waitUntil(lambda: charts.height() == 170)
    assert charts._compact and charts.ax_loss.get_xlabel() == ""
    loss, acc, legend = extents()
    assert legend.x0 >= acc.x1  # beside the plots, not above them
    assert loss.height >= 0.6 * charts.figure.bbox.height, (loss.height, charts.figure.bbox.height)
    charts.resize(800, 340)
    qtbot.waitUntil(lambda: charts.height() == 340)
    assert not charts._compact and charts.ax_loss.get_xlabel() == "epoch"
    loss, acc, legend = extents()
    assert legend.y0 >= loss.y1  # a row above them


def _tick_label_height(qtbot, charts: TrainingCharts) -> float:
    charts.resize(800, 340)
    charts.show()
    qtbot.waitExposed(charts)
    charts.figure.canvas.draw()
    renderer = charts.figure.canvas.get_renderer()
    label = next(t for t in charts.figure.axes[0].get_yticklabels() if t.get_text())
    return label.get_window_extent(renderer).height / charts.devicePixelRatioF()


def test_chart_text_grows_with_a_larger_desktop_font(qtbot):
    """The window's text follows a desktop font above 10 pt (load_stylesheet); the charts' titles and ticks stayed
    8-10 pt beside it until their figures' dpi followed it too."""
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    before = app.font()
    small = TrainingCharts()
    qtbot.addWidget(small)
    small_h = _tick_label_height(qtbot, small)
    big_font = app.font()
    big_font.setPointSizeF(13.0)
    app.setFont(big_font)
    try:
        big = TrainingCharts()
        qtbot.addWidget(big)
        big_h = _tick_label_height(qtbot, big)
    finally:
        app.setFont(before)
    assert big_h / small_h == pytest.approx(1.3, rel=0.15)


def _text_sizes(canvas) -> dict[str, set[float]]:
    """The font sizes (pt) of a chart's tick labels, axis labels, titles and legends, as drawn now."""
    canvas.draw()  # (as the app draws: tick labels are made at a draw)
    sizes: dict[str, set[float]] = {"ticks": set(), "labels": set(), "titles": set(), "legend": set()}
    for ax in canvas.figure.axes:
        ticks = (*ax.get_xticklabels(), *ax.get_yticklabels())
        sizes["ticks"] |= {t.get_fontsize() for t in ticks if t.get_text() and t.get_visible()}
        sizes["labels"] |= {a.label.get_fontsize() for a in (ax.xaxis, ax.yaxis) if a.label.get_text()}
        titles = (ax.title, ax._left_title, ax._right_title)
        sizes["titles"] |= {t.get_fontsize() for t in titles if t.get_text()}
    for legend in canvas.figure.legends:
        sizes["legend"] |= {t.get_fontsize() for t in legend.get_texts()}
    return sizes


def test_every_charts_text_has_the_charts_sizes_when_built_and_when_redrawn(qtbot, charts):
    """The Train tab's curves had matplotlib's 10 pt ticks, labels and legend (the Runs tab draws the same curves at
    8/9 pt), and the class balance chart 10 pt counts beside 8 pt class names: only the figure was made with the
    charts' sizes, not the axes, legends and ticks made after it (and again at a clear, a new legend, a reset)."""
    from gui.charts import _RC, BarChart

    tick, label, title, legend = _RC["xtick.labelsize"], _RC["axes.labelsize"], _RC["axes.titlesize"], 8
    full = {"ticks": {tick}, "labels": {label}, "titles": {title}, "legend": {legend}}
    charts.set_planned_epochs(5, classes=4)
    assert _text_sizes(charts) == full, "built"
    charts.resize(800, 170)  # compact: a new legend, at the right, and no titles
    qtbot.waitUntil(lambda: charts._compact)
    assert _text_sizes(charts) == {**full, "titles": set(), "labels": {label}}, "compact"
    charts.resize(800, 340)  # a new legend again, the titles back
    qtbot.waitUntil(lambda: not charts._compact)
    charts.add_epoch(1, 1.3, 0.4, 40.0, 0.3)  # off the scale: the note takes the Loss title's place
    assert _text_sizes(charts) == full, "an off-scale note"
    charts.reset()
    charts.set_planned_epochs(12, classes=4)  # new limits: ticks made again
    charts.add_epoch(1, 1.3, 0.4, 1.2, 0.3)
    assert _text_sizes(charts) == full and charts.ax_loss.get_title(loc="left") == "Loss", "reset"

    bars = BarChart()
    qtbot.addWidget(bars)
    bars.resize(260, 300)
    bars.show()
    qtbot.waitExposed(bars)
    bars.set_counts(["circle", "square", "star"], [150, 140, 60])
    assert _text_sizes(bars) == {"ticks": {tick}, "labels": set(), "titles": set(), "legend": set()}
    assert {t.get_fontsize() for t in bars.ax.texts if t.get_visible()} == {tick}  # the counts beside the bars
    bars.set_counts([f"class {i}" for i in range(40)], [8 * (i + 1) for i in range(40)])  # cleared, redrawn
    bars.resize(260, 200)  # fewer names: set again
    qtbot.waitUntil(lambda: bars.height() == 200)
    assert _text_sizes(bars)["ticks"] == {tick}


def test_a_class_name_that_is_not_utf8_is_drawn_as_the_tables_show_it(qtbot):
    """A class folder named in bytes that are not UTF-8 (a zip made on Windows): matplotlib raised at every draw,
    and the balance chart kept the data set before."""
    from gui.evaluate_tab import ConfusionMatrixCanvas

    chart = _shown_bar_chart(qtbot, 400, 300)
    chart.set_counts(["cat", "dog"], [5, 5])
    _flush(qtbot, chart)
    chart.set_counts(["bytes_\udcff", "ok"], [3, 4])
    _flush(qtbot, chart)
    assert [t.get_text() for t in chart.ax.get_yticklabels()] == ["bytes_\ufffd", "ok"]
    matrix = ConfusionMatrixCanvas()
    qtbot.addWidget(matrix)
    matrix.set_matrix([[3, 1], [0, 4]], ["bytes_\udcff", "ok"])
    matrix.figure.canvas.draw()
    assert "bytes_\ufffd" in [t.get_text() for t in matrix.figure.axes[0].get_yticklabels()]


def test_the_charts_say_in_words_what_they_draw(qtbot):
    """The charts are pictures: a screen reader had their names alone, and no value."""
    charts = TrainingCharts()
    qtbot.addWidget(charts)
    assert charts.accessibleDescription() == "No epoch finished yet."
    charts.set_planned_epochs(10, 3)
    charts.add_epoch(1, 1.2, 0.40, 1.1, 0.45)
    charts.add_epoch(2, 0.9, 0.60, 1.0, 0.625)
    charts.add_epoch(3, 0.7, 0.70, 1.3, 0.50)
    text = charts.accessibleDescription()
    assert text.startswith("Epoch 3 of 10: train loss 0.7, accuracy 70.0%; validation loss 1.3, accuracy 50.0%")
    assert "best validation accuracy 62.5% at epoch 2" in text
    charts.add_epoch(4, 0.6, 0.75, None, None)  # (an epoch without validation)
    assert "validation loss" not in charts.accessibleDescription().split(";")[1]

    chart = _shown_bar_chart(qtbot, 300, 200)
    assert chart.accessibleDescription() == "No data set loaded."
    chart.set_counts(["cat", "dog", "fox"], [30, 5, 12])
    assert chart.accessibleDescription() == "3 classes, 47 images: from 5 (dog) to 30 (cat)."
