"""Small shared widgets and helpers: message banner, icon grid, thumbnails, counts, settings helpers, folders."""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, QRect, QSize, Qt, QUrl
from PySide6.QtGui import QColor, QDesktopServices, QFontMetrics, QIcon, QImage, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QAbstractScrollArea,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QDoubleSpinBox,
    QHeaderView,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QSizePolicy,
    QSpinBox,
    QStyle,
    QStyleOptionComboBox,
    QStyleOptionHeader,
    QStylePainter,
    QTableView,
    QTableWidgetItem,
    QTreeView,
    QWidget,
)

from core import count_noun  # noqa: F401 - the GUI's modules take it from here
from gui.app import settings

ERROR_COLOR = "#b42318"  # text of what failed (the Runs list's failed runs, Evaluate's status line)
WARNING_COLOR = "#9a6700"  # amber: a result that comes with a caution (files left out, a stopped run)


NOT_A_FOLDER = "it is a file, not a folder"


def make_folder(folder: Path) -> str:
    """Make `folder` (and the folders above it); "" when it is there, else why it cannot be: NOT_A_FOLDER, or the
    system's reason (with the path it names, when another)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        if folder.exists() and not folder.is_dir():
            return NOT_A_FOLDER
        where = f" ({e.filename})" if e.filename and Path(e.filename) != folder else ""
        return f"{e.strerror or e}{where}"
    return ""


def show_folder(folder: str, parent: QWidget | None = None) -> bool:
    """Open `folder` in the system's file manager. Where none can be started, a message gives its path (to copy)
    instead of nothing happening; False then."""
    if QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder))):
        return True
    box = QMessageBox(
        QMessageBox.Icon.Information,
        "Show folder",
        f"No file manager could be started on this system. The folder is:\n\n{folder}",
        parent=parent,
    )
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.setObjectName("noFileManager")
    box.open()  # not exec(): nothing waits on it
    return False


def ask(parent: QWidget | None, title: str, text: str, yes: str, no: str = "Cancel", default_yes: bool = False) -> bool:
    """A question whose buttons say what they do ("Stop and close" / "Keep training") instead of Yes / No. True
    when the user pressed `yes`; Escape or closing the box means `no`."""
    box = QMessageBox(QMessageBox.Icon.Question, title, text, parent=parent)
    box.setObjectName("ask")
    yes_button = box.addButton(yes, QMessageBox.ButtonRole.AcceptRole)
    no_button = box.addButton(no, QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(yes_button if default_yes else no_button)
    box.setEscapeButton(no_button)
    box.exec()
    return box.clickedButton() is yes_button


def with_suffix(path: str, suffix: str) -> str:
    """`path` as typed in a save dialog, with `suffix` (".png") added when the name has no extension."""
    return path if os.path.splitext(path)[1] else path + suffix


# A chart's export formats, by extension: the save dialog's filters (charts.save_figure writes them)
FIGURE_FILTERS = {".png": "PNG image (*.png)", ".svg": "SVG image (*.svg)", ".pdf": "PDF document (*.pdf)"}


def figure_path(path: str, chosen_filter: str = "") -> str:
    """The name typed in a chart's save dialog, with the chosen filter's extension added unless it has one of
    theirs: "curves.jpg" had been written as PNG data under that name (over a data set's photo, too)."""
    if os.path.splitext(path)[1].lower() in FIGURE_FILTERS:
        return path
    suffix = next((ext for ext, text in FIGURE_FILTERS.items() if text == chosen_filter), ".png")
    return path + suffix


def refused_output(
    parent: QWidget | None, title: str, path: str, writes: str, image_ok: bool = False, model_ok: bool = False
) -> bool:
    """True, after saying so, when an export must not be written to `path`: one of a run folder's own files
    (last.pt, history.csv …: writing over it would break the run), or an existing image or PyTorch checkpoint that
    `writes` ("the CSV", "the model") would replace; an image may be replaced by an image (`image_ok`), an exported
    model by a model (`model_ok`). The save dialog's "replace it?" is easily answered yes for a name typed in haste."""
    from core.runs import is_run_file, precious_kind

    if is_run_file(path):
        why = "is one of its run folder's own files; writing over it would break the run"
    else:
        kind = precious_kind(path, model_ok=model_ok)
        if not kind or (image_ok and kind == "an image" and _chart_export(path)):
            return False
        other = " that no chart export wrote" if image_ok and kind == "an image" else ""
        why = f"is {kind}{other}; it is not replaced with {writes}"
    QMessageBox.warning(parent, title, f"{path} {why}. Choose another name.")
    return True


def _chart_export(path: str) -> bool:
    """An image a chart export wrote (matplotlib marks its PNGs): one an export may replace. Any image was: the
    confusion matrix saved over a photo of the data set it evaluated replaced the photo."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return str(im.info.get("Software", "")).startswith("Matplotlib")
    except (OSError, ValueError):
        return False


def write_export(
    parent: QWidget | None, title: str, path: str, writes: str, write: Any, image_ok: bool = False
) -> bool:
    """An export of `writes` ("the CSV", "the curves") to `path` by `write(path)`: refused where refused_output says
    so, its folder made (one typed in the save dialog: "Could not write …: No such file or directory"), a failure
    said in a warning. True when written."""
    if refused_output(parent, title, path, writes, image_ok=image_ok):
        return False
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        write(path)
    except OSError as e:
        QMessageBox.warning(parent, title, f"Could not write {path}: {e.strerror or e}")
        return False
    return True


def buddy_label(text: str, field: QWidget) -> QLabel:
    """A label whose "&" letter (Alt+letter) puts the focus in `field`, as QFormLayout's row labels do."""
    label = QLabel(text)
    label.setBuddy(field)
    return label


def keyboard_friendly(root: QWidget) -> None:
    """Buttons under `root` click on Return or Enter as well as Space, as people expect of a focused button.
    (They keep taking focus on a click: a field being edited must finish, e.g. a typed data folder, before the
    button acts.)"""
    from PySide6.QtWidgets import QPushButton

    for button in root.findChildren(QPushButton):
        button.setAutoDefault(True)


def _show_focused(_old: QWidget | None, new: QWidget | None) -> None:
    """The widget given focus is scrolled into view in every scroll area holding it, innermost first; not for a
    click (the page moved 30 px between a thumbnail's press and its release)."""
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QScrollArea

    if new is None or QGuiApplication.mouseButtons() != Qt.MouseButton.NoButton:
        return
    parent = new.parentWidget()
    while parent is not None:
        if isinstance(parent, QScrollArea) and parent.widget() is not None and parent.widget().isAncestorOf(new):
            parent.ensureWidgetVisible(new, 8, 8)
        parent = parent.parentWidget()


def keep_focus_in_view(app: Any) -> None:
    """Tab, Shift+Tab or a label's Alt+letter into a scrolled form shows the field it gives focus to: Qt scrolls
    only for focus moving within a scroll area, and the Train tab's settings put focus on fields scrolled out of
    sight (Architecture above the tab bar, Device below the window). Once per application."""
    if not app.property("focusInView"):
        app.setProperty("focusInView", True)
        app.focusChanged.connect(_show_focused)


class _ReturnActs(QObject):
    """Event filter of an item view: Return or Enter on its current item calls `act` (see on_return)."""

    def __init__(self, view: QAbstractItemView, act: Callable[[], None]) -> None:
        super().__init__(view)
        self._act = act

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        keys = (Qt.Key.Key_Return, Qt.Key.Key_Enter)
        if event.type() == QEvent.Type.KeyPress and event.key() in keys and obj.currentIndex().isValid():
            self._act()
            return True
        return False


def on_return(view: QAbstractItemView, act: Callable[[], None]) -> None:
    """Return or Enter on the view's current item does what its double-click does (`act`). Not itemActivated:
    with a desktop's single-click activation, a click would open a file manager."""
    view.installEventFilter(_ReturnActs(view, act))


class _WheelWhenFocused(QObject):
    """Event filter of a scrolled form's fields: a wheel over one without focus scrolls the form instead."""

    def __init__(self, area: QAbstractScrollArea) -> None:
        super().__init__(area)
        self._bar = area.verticalScrollBar()

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.Wheel and isinstance(obj, QWidget) and not obj.hasFocus():
            QApplication.sendEvent(self._bar, event)  # (Qt hands a wheel a field ignores to its parents only
            return True  # when it came from the window system; this way it is the same for every wheel)
        return False


def wheel_scrolls_the_form(area: QAbstractScrollArea) -> None:
    """Combo boxes and spin boxes in `area`, a scrolled form, take the wheel only once clicked or tabbed into;
    before that the wheel scrolls the form. Otherwise a wheel turned to scroll the form changed the setting
    under the pointer, unseen (an LR schedule of "none" for the next run)."""
    guard = _WheelWhenFocused(area)
    for field in [*area.findChildren(QComboBox), *area.findChildren(QAbstractSpinBox)]:
        field.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # (the wheel's own focus would let it through)
        field.installEventFilter(guard)


def shrinkable(combo: QComboBox, chars: int = 16) -> QComboBox:
    """`combo` may be narrower than its longest entry (its popup still shows every entry whole): a long entry
    ("Fine-tune (all layers, lower backbone lr)") otherwise sets the least width of the whole form around it."""
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(chars)
    return combo


def screen_scale() -> float:
    """Device pixels per logical pixel of the sharpest screen (2.0 at 200 % scaling), read in the GUI thread:
    thumbnails are read at that many pixels, so that they are not drawn at half their size and stretched."""
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication.instance()
    return max(1.0, float(app.devicePixelRatio())) if app is not None else 1.0


class Banner(QLabel):
    """A one-line message strip: error (red) or info (blue); hidden when empty."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.hide()

    def _show(self, kind: str, text: str) -> None:
        self.setObjectName(f"{kind}Banner")
        self.setText(text)
        self.style().unpolish(self)
        self.style().polish(self)
        self.setVisible(bool(text))

    def set_error(self, text: str) -> None:
        self._show("error", text)

    def set_info(self, text: str) -> None:
        self._show("info", text)

    def clear_message(self) -> None:
        self.setText("")
        self.hide()

    @property
    def kind(self) -> str:
        return self.objectName().replace("Banner", "") if not self.isHidden() else ""


class ColumnShare(QObject):
    """Two columns of a table share the width the others leave: `first` takes what its texts need, up to half
    (more when `second` needs less than the rest), and `second` stretches over the rest. Both fixed at once, the
    short file names of a Problems list sat in half the table while their reasons were cut ("cannot identify i…").
    Kept as the table is resized; `update()` after filling it. A width the user drags the column to is kept.
    `two_lines`: when a text of the two columns is still cut, the rows are made two lines tall (their delegates
    wrap), and one line again when all fit."""

    def __init__(self, table: Any, first: int, second: int, two_lines: bool = False) -> None:
        super().__init__(table)
        self.table, self.first, self.second, self.two_lines = table, first, second, two_lines
        self._one_line = table.verticalHeader().defaultSectionSize()  # (the row height the style gives)
        header = table.horizontalHeader()
        header.setSectionResizeMode(first, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(second, QHeaderView.ResizeMode.Stretch)
        self.dragged = False
        self._setting = False
        header.sectionResized.connect(self._on_resized)
        table.viewport().installEventFilter(self)

    def _on_resized(self, column: int, _old: int, _new: int) -> None:
        if column == self.first and not self._setting:
            self.dragged = True
            if self.two_lines:
                self.update()  # (the rows' height for the width dragged to)

    def update(self) -> None:
        t, header = self.table, self.table.horizontalHeader()
        others = sum(header.sectionSize(c) for c in range(header.count()) if c not in (self.first, self.second))
        room = t.viewport().width() - others
        if room <= 0 or t.model() is None or t.model().rowCount() == 0:
            return
        pad = 12  # (the cell's margins)
        need = t.sizeHintForColumn(self.first) + pad
        need_second = max(t.sizeHintForColumn(self.second) + pad, header.sectionSizeHint(self.second))
        if not self.dragged:
            width = min(need, max(room // 2, room - need_second))
            self._setting = True
            try:
                header.resizeSection(self.first, max(width, header.sectionSizeHint(self.first)))
            finally:
                self._setting = False
        if self.two_lines:
            first = header.sectionSize(self.first)  # (the stretched second takes the rest, once the view lays out)
            cut = need > first or need_second > room - first
            t.verticalHeader().setDefaultSectionSize(self._one_line + t.fontMetrics().lineSpacing() * cut)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.Resize:
            self.update()
        return False


class FrozenFirstColumn(QTreeView):
    """The first column of a flat `tree` kept in view while its other columns scroll sideways (Qt's frozen-column
    pattern): a second view of the same model and selection, showing only column 0, laid over the tree's left
    edge while the tree is scrolled sideways, its rows following the tree's vertical scrolling. Comparing many runs,
    the settings' names had scrolled away with the runs' columns, leaving values without a name."""

    def __init__(self, tree: QTreeView) -> None:
        super().__init__(tree)
        self.tree = tree
        self.setModel(tree.model())
        self.setSelectionModel(tree.selectionModel())
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setFrameShape(QTreeView.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setRootIsDecorated(False)
        self.setItemsExpandable(False)
        self.setAlternatingRowColors(tree.alternatingRowColors())
        self.setTextElideMode(tree.textElideMode())
        self.setSelectionMode(tree.selectionMode())
        self.header().setStretchLastSection(True)
        self.header().setSectionsMovable(False)
        self.setStyleSheet(  # (a style sheet's border leaves the background unpainted unless it is named too)
            "QTreeView { border: none; border-right: 1px solid #d9dee4; border-top-left-radius: 4px;"
            " background: #ffffff; alternate-background-color: #f7f9fb; }"  # (style.qss's table colours)
        )
        self.verticalScrollBar().valueChanged.connect(tree.verticalScrollBar().setValue)
        tree.verticalScrollBar().valueChanged.connect(self.verticalScrollBar().setValue)
        tree.horizontalScrollBar().valueChanged.connect(self.place)
        tree.horizontalScrollBar().rangeChanged.connect(self.place)
        tree.header().sectionResized.connect(self.place)
        tree.model().columnsInserted.connect(self.place)
        tree.model().columnsRemoved.connect(self.place)
        tree.model().modelReset.connect(self.place)
        tree.installEventFilter(self)
        self.hide()

    def place(self, *_: Any) -> None:
        """Shown over the tree's left edge while the tree is scrolled sideways (hidden otherwise: the tree's own
        first column is in view then), as wide as that column."""
        import shiboken6

        tree = self.tree
        if not (shiboken6.isValid(tree) and shiboken6.isValid(self)):  # (the tree's model is emptied as it goes)
            return
        for c in range(1, tree.model().columnCount()):
            self.setColumnHidden(c, True)
        self.setColumnHidden(0, False)
        if tree.horizontalScrollBar().value() == 0 or tree.header().isHidden():
            self.hide()
            return
        f, width = tree.frameWidth(), tree.columnWidth(0)
        self.header().setFixedHeight(tree.header().height())  # (the runs' colour dots make the tree's taller)
        self.setGeometry(f, f, width + 1, tree.viewport().height() + tree.header().height())
        self.verticalScrollBar().setValue(tree.verticalScrollBar().value())
        self.show()
        self.raise_()

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if event.type() in (QEvent.Type.Resize, QEvent.Type.Show):
            self.place()
        return False

    def wheelEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        QApplication.sendEvent(self.tree.viewport(), event)  # the tree scrolls, this view follows


class ElidedLabel(QLabel):
    """A one-line label that never widens its window: a long text is cut with "…" in the middle (the end of a class
    name often tells it apart), where `mode` says, or, with path=True, in its folders so the file's name stays whole.
    The whole text is the tooltip and text(); it is cut again when resized or restyled (a style sheet's font
    arrives when the label is polished)."""

    def __init__(
        self,
        text: str = "",
        parent: QWidget | None = None,
        path: bool = False,
        mode: Qt.TextElideMode = Qt.TextElideMode.ElideMiddle,
    ) -> None:
        super().__init__(parent)
        self._full = ""
        self._path = path
        self._mode = mode
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 — Qt override
        self._full = str(text)
        self.setToolTip(self._full)
        self._elide()

    def text(self) -> str:
        return self._full

    def shown_text(self) -> str:
        """The text as displayed (cut to the width)."""
        return super().text()

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 — Qt override
        super().resizeEvent(event)
        self._elide()

    def changeEvent(self, event: Any) -> None:  # noqa: N802 — Qt override
        super().changeEvent(event)
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange):
            self._elide()

    def _elide(self) -> None:
        fm, width = self.fontMetrics(), max(10, self.width() - 2)
        if self._path:
            shown = elide_path(fm, self._full, width)
        else:
            shown = fm.elidedText(self._full, self._mode, width)
        super().setText(shown)


class ElidedComboBox(QComboBox):
    """A combo box whose shown text, when wider than its field, is cut in its middle with "…": Qt cuts it at the
    field's right edge without a mark (the Predict tab's model, a run's name, lost its end on a 1024-px screen).
    The list shows every item whole."""

    def shown_text(self) -> str:
        """The current text as drawn: cut to the field's width."""
        option = QStyleOptionComboBox()
        self.initStyleOption(option)
        return self._fitted(option)

    def _fitted(self, option: QStyleOptionComboBox) -> str:
        field = self.style().subControlRect(
            QStyle.ComplexControl.CC_ComboBox, option, QStyle.SubControl.SC_ComboBoxEditField, self
        )
        icon = option.iconSize.width() + 4 if not option.currentIcon.isNull() else 0
        width = max(10, field.width() - icon - 4)
        return self.fontMetrics().elidedText(option.currentText, Qt.TextElideMode.ElideMiddle, width)

    def paintEvent(self, event: Any) -> None:  # noqa: N802 — Qt override
        painter = QStylePainter(self)
        option = QStyleOptionComboBox()
        self.initStyleOption(option)
        painter.drawComplexControl(QStyle.ComplexControl.CC_ComboBox, option)
        option.currentText = self._fitted(option)
        painter.drawControl(QStyle.ControlElement.CE_ComboBoxLabel, option)


class SteadyLabel(QLabel):
    """A word-wrapped label as tall as the tallest of the texts it may show (`set_texts`), so that the rows below
    it stay put when it changes from one to another (a preset's description, say)."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.setWordWrap(True)
        self._texts: list[str] = []

    def set_texts(self, texts: list[str]) -> None:
        self._texts = [t for t in texts if t]
        self.updateGeometry()

    def heightForWidth(self, width: int) -> int:
        m = self.contentsMargins()
        inner = QRect(0, 0, max(1, width - m.left() - m.right()), 100_000)
        flags = int(Qt.TextFlag.TextWordWrap)
        tallest = max((self.fontMetrics().boundingRect(inner, flags, t).height() for t in self._texts), default=0)
        return max(super().heightForWidth(width), tallest + m.top() + m.bottom())

    def sizeHint(self) -> QSize:  # (QLabel's own guesses a width of its text alone, and some layouts take it)
        hint = super().sizeHint()
        return QSize(hint.width(), self.heightForWidth(self.width() if self.width() > 1 else hint.width()))


def gone_checkpoint(path: str) -> str:
    """Why a checkpoint file is not there: its run folder may be gone as a whole (deleted or moved outside the
    app while a tab still showed the run)."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        return f"no such checkpoint file: its folder {os.path.basename(folder)} was deleted or moved"
    return "no such checkpoint file"


class SortItem(QTableWidgetItem):
    """A table cell that sorts by a key stored beside its display text (None before any key)."""

    def __init__(self, text: str, key: Any) -> None:
        super().__init__(text)
        self.key = key

    def __lt__(self, other: QTableWidgetItem) -> bool:
        a, b = self.key, getattr(other, "key", None)
        if a is None or b is None:
            return a is None and b is not None
        return a < b


def natural_key(name: str) -> str:
    """A sort key putting "2.png" before "10.png": numbers padded, case ignored."""
    return re.sub(r"\d+", lambda m: m.group().zfill(12), name.casefold())


def elide_middle(text: str, limit: int) -> str:
    """`text` cut to `limit` characters in its middle: class names often differ at both ends ("15_a_long_…_15"),
    which cutting only the end would lose."""
    if len(text) <= limit:
        return text
    head = limit // 2
    tail = limit - 1 - head
    return text[:head] + "…" + (text[-tail:] if tail > 0 else "")


class SortHeader(QHeaderView):
    """A table's column header whose sorted section keeps its label clear of the sort arrow. Under the style sheet
    (its section padding) Qt draws the label in the whole section and the arrow over its end: a right-aligned
    "Best val acc", sorted, read "Best val ac" and an arrow."""

    def paintSection(self, painter: QPainter, rect: QRect, index: int) -> None:  # noqa: N802 - Qt override
        if not (self.isSortIndicatorShown() and index == self.sortIndicatorSection()):
            super().paintSection(painter, rect, index)
            return
        opt = QStyleOptionHeader()
        self.initStyleOption(opt)
        self.initStyleOptionForIndex(opt, index)
        opt.rect = rect
        label, opt.text = opt.text, ""
        style = self.style()
        style.drawControl(QStyle.ControlElement.CE_Header, opt, painter, self)  # the section and its arrow
        opt.text = label
        opt.sortIndicator = QStyleOptionHeader.SortIndicator.None_
        room = style.pixelMetric(QStyle.PixelMetric.PM_HeaderMarkSize, opt, self) + 4  # the arrow's, and a gap
        opt.rect = style.subElementRect(QStyle.SubElement.SE_HeaderLabel, opt, self).adjusted(0, 0, -room, 0)
        style.drawControl(QStyle.ControlElement.CE_HeaderLabel, opt, painter, self)  # the label, left of it


def sort_header(table: QTableView) -> QHeaderView:
    """Give `table` (a QTableView or QTableWidget, before its columns are set up) a SortHeader, as a table's own
    header is (clickable, its sections highlighted with the selection); returns it."""
    header = SortHeader(Qt.Orientation.Horizontal, table)
    header.setSectionsClickable(True)
    header.setHighlightSections(True)
    table.setHorizontalHeader(header)
    return header


class ImageGrid(QListWidget):
    """A grid of image tiles with captions (QListWidget in icon mode)."""

    def __init__(self, tile: int = 72, selectable: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tile = tile
        self._blank_icon: QIcon | None = None
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setIconSize(QSize(tile, tile))
        self._fit_grid()
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setUniformItemSizes(True)
        self.setWordWrap(False)
        # names of a folder often share a long start ("class_00_000.jpg", "apple_0010.jpg"): cut at the end, every
        # caption read "class_00_0…"; in the middle, "apple…0.jpg". The end (the number) tells them apart.
        self.setTextElideMode(Qt.TextElideMode.ElideLeft)
        self.setSpacing(2)
        self._note = ""  # set_note: words in the room the tiles leave
        if not selectable:  # (pictures to look at: as a Tab stop it showed no mark and did nothing)
            self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
            self.setFocusPolicy(Qt.FocusPolicy.NoFocus)

    def _fit_grid(self) -> None:
        """Cells of tile + 18 by tile + 24 px at the style's 10 pt, wider and taller with a larger font (fixed, a
        13 pt desktop font cut the augmentation preview's "every epoch" to "…epoch")."""
        from gui.app import at_font

        width = at_font(self.tile + 18, self)
        self.setGridSize(QSize(width, self.tile + max(24, self.fontMetrics().height() + 8)))

    def sizeHint(self) -> QSize:
        """One row of tiles high: a list view's own hint (192 px) counted in a word-wrapping form's height, and the
        Dataset tab's settings column scrolled on a 720-px screen though the preview fitted."""
        hint = super().sizeHint()
        margins = self.contentsMargins()  # (the frame, and the style sheet's padding)
        row = self.gridSize().height() + margins.top() + margins.bottom() + 2 * self.spacing()
        return QSize(hint.width(), max(self.minimumHeight(), row))

    def changeEvent(self, event: QEvent) -> None:
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange):
            self._fit_grid()
        super().changeEvent(event)

    def set_note(self, text: str) -> None:
        """Words drawn in the room the tiles leave, beside the last one (below the first row when that is too
        narrow); "" for none. (One tile alone in the augmentation preview's box looked like a preview that had
        failed: why there is one was said only in a tooltip.)"""
        self._note = text
        self.viewport().update()

    def note(self) -> str:
        return self._note

    def note_rect(self) -> QRect:
        """Where set_note's words go, in the viewport: beside the last tile of the first row, or below it."""
        area = self.viewport().rect().adjusted(8, 6, -8, -6)
        last = self.visualItemRect(self.item(self.count() - 1)) if self.count() else QRect(0, 0, 0, 0)
        beside = QRect(area.left() + last.right() + 8, area.top(), area.right() - last.right() - 8, area.height())
        if self.count() and beside.width() >= 8 * self.fontMetrics().averageCharWidth() + 8:
            return beside
        return QRect(area.left(), area.top() + last.bottom() + 4, area.width(), area.height() - last.bottom() - 4)

    def paintEvent(self, event: Any) -> None:  # noqa: N802 — Qt override
        super().paintEvent(event)
        if self._note:
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            flags = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap
            painter.drawText(self.note_rect(), int(flags), self._note)
            painter.end()

    def _blank(self) -> QIcon:
        if getattr(self, "_blank_icon", None) is None:
            pm = QPixmap(self.tile, self.tile)
            pm.fill(QColor("#eef1f4"))
            self._blank_icon = QIcon(pm)
        return self._blank_icon

    def add_tile(self, caption: str, tooltip: str = "", image: QImage | None = None) -> QListWidgetItem:
        item = QListWidgetItem(caption)
        item.setToolTip(tooltip or caption)
        item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter)
        item.setIcon(self._blank())  # a full-size tile from the start, so every cell has its final size
        item.setData(Qt.ItemDataRole.UserRole + 1, False)
        if image is not None:
            self.set_tile_image(item, image)
        self.addItem(item)
        return item

    def set_tile_image(self, item: QListWidgetItem, image: QImage | None) -> None:
        if image is None or image.isNull():  # (an image that could not be read: its tile stays blank)
            return
        scale = image.devicePixelRatio()  # (load_thumbnail's: a tile of `tile` logical px holds tile * scale pixels)
        side = max(1, round(self.tile * scale))
        pm = QPixmap.fromImage(image)
        if pm.width() != side and pm.height() != side:
            pm = pm.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
        if pm.width() != pm.height():  # centred on a square tile: every caption then sits at the same height
            square = QPixmap(side, side)
            square.fill(Qt.GlobalColor.transparent)
            painter = QPainter(square)
            pm.setDevicePixelRatio(1.0)  # (placed in the square's own pixels)
            painter.drawPixmap((side - pm.width()) // 2, (side - pm.height()) // 2, pm)
            painter.end()
            pm = square
        pm.setDevicePixelRatio(scale)
        item.setIcon(photo_icon(pm))
        item.setData(Qt.ItemDataRole.UserRole + 1, True)

    @staticmethod
    def has_image(item: QListWidgetItem) -> bool:
        return bool(item.data(Qt.ItemDataRole.UserRole + 1))


def photo_icon(image: QImage | QPixmap) -> QIcon:
    """An icon of a photo that keeps its colours when its row or tile is selected (a plain QIcon is tinted with the
    selection colour there: a purple background turned blue-grey beside the same image shown large)."""
    pm = image if isinstance(image, QPixmap) else QPixmap.fromImage(image)
    icon = QIcon(pm)
    icon.addPixmap(pm, QIcon.Mode.Selected)
    return icon


def load_json_setting(s: Any, key: str, default: Any) -> Any:
    """A JSON-encoded QSettings value (lists and dicts survive every backend unchanged)."""
    raw = s.value(key, "")
    if not raw:
        return default
    try:
        value = json.loads(str(raw))
    except ValueError:
        return default
    return value if isinstance(value, type(default)) else default


def store_json_setting(s: Any, key: str, value: Any) -> None:
    s.setValue(key, json.dumps(value))


def load_number_setting(s: Any, key: str, kind: type, low: float | None, high: float | None, default: Any) -> Any:
    """A number setting read as `kind` (int or float) and brought into [low, high] (None: no bound); `default` when
    it is missing or not such a number ("abc", "12.5" for a whole number, "nan", a list). A hand-edited or foreign
    value past a spin box's range raised OverflowError in setValue (past 32 bits), and the window never opened."""
    raw = s.value(key)
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):  # (None: missing; a list: "1, 2" in INI)
        return default
    value: int | float | None = None
    if kind is int and not isinstance(raw, float):
        with contextlib.suppress(ValueError):
            value = int(raw)  # (exact, where the float of a long number is not)
    if value is None:  # a float, or a whole number written as one ("20.0", "1e3")
        try:
            number = float(raw)
        except ValueError:
            return default
        if not math.isfinite(number) or (kind is int and not number.is_integer()):
            return default
        value = kind(number)
    if low is not None:
        value = max(value, kind(low))
    if high is not None:
        value = min(value, kind(high))
    return value


def load_spin_setting(s: Any, key: str, spin: QSpinBox | QDoubleSpinBox, default: Any = ...) -> Any:
    """`key` read for `spin` (load_number_setting with its type and range); `default` is the spin's own value."""
    kind = float if isinstance(spin, QDoubleSpinBox) else int
    return load_number_setting(
        s, key, kind, spin.minimum(), spin.maximum(), spin.value() if default is ... else default
    )


def path_to_setting(path: str) -> str:
    """A path as it can be stored in QSettings: as it is, or, when its name is not valid UTF-8 (Linux bytes kept
    as surrogates by os.fsdecode, which Qt drops), JSON-quoted with those escaped ("\\udcff"). The quoted form
    never is a path of its own (no absolute path starts with a quote)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(path)
    return path


def path_from_setting(value: Any) -> str:
    """A path stored by path_to_setting (or a plain one of an older version); "" for anything else."""
    if not isinstance(value, str):
        return ""
    if value.startswith('"'):
        try:
            decoded = json.loads(value)
        except ValueError:
            return value
        return decoded if isinstance(decoded, str) else ""
    return value


def typed_path(text: str) -> str:
    """A path as typed or pasted into a path field, made a path: spaces around it and the quotes of a copied path
    ("Copy as path" on Windows; a shell's '…') taken off, a file:// address (a file manager's copy) made a local
    path, and ~ expanded. "" stays ""."""
    text = text.strip()
    if len(text) > 1 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    if text.lower().startswith("file:"):
        local = QUrl(text).toLocalFile()
        text = local or text
    return os.path.expanduser(text) if text else ""


def shown_path(path: str) -> str:
    """A path as it can be shown: a byte that is not valid UTF-8 in its name as U+FFFD (Qt dropped it)."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def dialog_dir(kind: str, name: str = "", near: str | None = None) -> str:
    """Where a file dialog of this kind ("images", "exports", "weights") opens: the folder last used for it, else
    `near` (the open data set, say), else the home folder (never the process's working directory); with `name`,
    that file in it."""
    folder = str(settings().value(f"dialogs/{kind}", "") or "")
    if not folder or not os.path.isdir(folder):
        folder = near if near and os.path.isdir(near) else os.path.expanduser("~")
    return os.path.join(folder, name) if name else folder


def remember_dir(kind: str, path: str) -> None:
    """Note the folder of a path chosen in a dialog of this kind (a folder itself, or a file's folder)."""
    if path:
        settings().setValue(f"dialogs/{kind}", path if os.path.isdir(path) else os.path.dirname(path))


def elide_path(fm: QFontMetrics, path: str, width: int) -> str:
    """`path` cut to `width` px in its folders, so the file's name stays whole ("/data/ph…/day 2/IMG_0001.jpg");
    a name too long for the width on its own is cut in its middle."""
    if fm.horizontalAdvance(path) <= width:
        return path
    cut = max(path.rfind("/"), path.rfind("\\"))
    name = path[cut:]  # with its separator
    room = width - fm.horizontalAdvance(name)
    if cut > 0 and room >= 3 * fm.horizontalAdvance("…"):
        head = fm.elidedText(path[:cut], Qt.TextElideMode.ElideMiddle, room)
        if head:
            return head + name
    if cut > 0 and fm.horizontalAdvance("…" + name) <= width:  # its folders cut, said so ("circle/broken.jpg"
        return "…" + name  # read "broken.jpg", a file beside the class folders)
    if cut > 0:  # the name cut too, its folders still said cut: "…/trunc…hone.jpg", not "trunc…hone.jpg"
        lead = "…" + path[cut]
        short = fm.elidedText(path[cut + 1 :], Qt.TextElideMode.ElideMiddle, width - fm.horizontalAdvance(lead))
        if short:
            return lead + short
    return fm.elidedText(path[cut + 1 :], Qt.TextElideMode.ElideMiddle, width)
