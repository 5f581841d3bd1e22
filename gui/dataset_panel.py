"""Dataset tab: choose and scan a folder, classes and balance, thumbnails, problems, split and augmentation."""

from __future__ import annotations

import dataclasses
import html
import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from gui.app import settings
from gui.image_view import load_thumbnail, pil_to_qimage
from gui.widgets import (
    Banner,
    ColumnShare,
    ImageGrid,
    count_noun,
    elide_path,
    load_json_setting,
    load_spin_setting,
    natural_key,
    on_return,
    path_from_setting,
    path_to_setting,
    screen_scale,
    show_folder,
    shown_path,
    store_json_setting,
    typed_path,
    wheel_scrolls_the_form,
)
from gui.worker import FunctionWorker, connect_worker, start_worker

MAX_RECENT = 10
MAX_THUMBS = 600
THUMB_CHUNK = 24
THUMB_SIZE = 72
PREVIEW_COUNT = 8
PLAIN_IMAGE = (
    "The random changes on (crops, flips, colour) leave this image as it is: it is plain, so every epoch trains on it "
    "as shown. Pick another image to see how each epoch varies it."
)
SAME_EVERY_EPOCH = (
    "No random change is on (Augmentation none, no colour jitter or erasing): every epoch trains on this image as "
    "shown. Pick an Augmentation level to see how each epoch would vary it."
)
AUGMENT_LEVELS = ("none", "light", "standard", "strong")
FLIP_TIP = "Mirror training images at random (off for text, digits, left/right classes)"
FLIP_OFF_TIP = "No flips while Augmentation is none; pick another level to use this option"
LAYOUT_NAMES = {"classes": "class folders", "splits": "train/val/test folders"}
FEW_COLOR = "#e0672b"  # gui.charts.VAL_COLOR, the bar colour of a class with few images (charts loads matplotlib)
CLASS_ROWS_SHOWN = 4  # classes the table shows without scrolling, however little room the window leaves it
NAME_WIDTH = 260  # px: a class name in a sentence is cut in the middle to this, so it never widens the window


def _scan(folder: str, progress: Any = None, stop: Any = None) -> Any:
    from core.data import scan

    return scan(folder, progress=progress, stop=stop, min_classes=1)  # one class is shown, with why it cannot train


def _preview(path: str, cfg: Any, n: int, seed: int) -> list[QImage]:
    from core.data import preview_augmentations

    return [pil_to_qimage(im) for im in preview_augmentations(path, cfg, n=n, seed=seed)]


class ThumbnailLoader(QObject):
    """Loads thumbnails in a worker thread and hands them over in chunks: chunk(list[(row, QImage)])."""

    chunk = Signal(object)
    finished = Signal()

    def __init__(self, paths: list[str], size: int = THUMB_SIZE, scale: float = 1.0) -> None:
        super().__init__()
        self.paths = paths
        self.size, self.scale = size, scale  # (scale: widgets.screen_scale(), read in the GUI thread)
        self._stop = False

    def cancel(self) -> None:
        self._stop = True

    @Slot()
    def run(self) -> None:
        batch: list[tuple[int, QImage]] = []
        try:
            for row, path in enumerate(self.paths):
                if self._stop:
                    return
                batch.append((row, load_thumbnail(path, self.size, self.scale)))
                if len(batch) >= THUMB_CHUNK:
                    self.chunk.emit(batch)
                    batch = []
            if batch and not self._stop:
                self.chunk.emit(batch)
        finally:
            self.finished.emit()


class _PathDelegate(QStyledItemDelegate):
    """Shows a cell's path cut in its folders to the cell's width: the file's name stays visible."""

    def initStyleOption(self, option: QStyleOptionViewItem, index: Any) -> None:  # noqa: N802 — Qt override
        super().initStyleOption(option, index)
        fm, path = option.fontMetrics, option.text
        width = option.rect.width() - 10  # the cell's text margins
        cut = max(path.rfind("/"), path.rfind("\\"))
        if width <= 0 or fm.horizontalAdvance(path) <= width:
            return
        if cut > 0 and (option.rect.height() - 2) // max(1, fm.lineSpacing()) > 1:  # a row two lines tall: its
            middle = Qt.TextElideMode.ElideMiddle  # folders on the first, the file's name on the second
            option.text = (
                f"{fm.elidedText(path[: cut + 1], middle, width)}\n{fm.elidedText(path[cut + 1 :], middle, width)}"
            )
            option.features |= QStyleOptionViewItem.ViewItemFeature.WrapText
        else:
            option.text = elide_path(fm, path, width)


class _ElideRightDelegate(QStyledItemDelegate):
    """Wraps a cell's text over the lines its row has room for (Qt cuts the last one at its end), whatever the
    view's elide mode (a reason cut to its first 15 characters at a large font read "not an image file…")."""

    def initStyleOption(self, option: QStyleOptionViewItem, index: Any) -> None:  # noqa: N802 — Qt override
        super().initStyleOption(option, index)
        option.textElideMode = Qt.TextElideMode.ElideRight
        fm = option.fontMetrics
        width = option.rect.width() - 10  # the cell's text margins
        lines = (option.rect.height() - 2) // max(1, fm.lineSpacing())
        if width > 0 and lines > 1 and fm.horizontalAdvance(option.text) > width:
            option.features |= QStyleOptionViewItem.ViewItemFeature.WrapText


class _LevelStrengthSpin(QDoubleSpinBox):
    """A strength where 0 means "what the augmentation level adds by itself" (`level_value`, shown as the special
    text): stepping up from there goes on from that value, not from 0."""

    level_value = 0.0

    def __init__(self) -> None:
        super().__init__()
        # wide enough for the special text of "strong", so the settings column never cuts it (or the arrows) off
        self.setMinimumWidth(self.fontMetrics().horizontalAdvance("0.30 (strong's own)") + 48)

    def stepBy(self, steps: int) -> None:  # noqa: N802 — Qt override
        if self.value() == self.minimum() and self.level_value > 0 and steps > 0:
            self.setValue(self.level_value + steps * self.singleStep())
        else:
            super().stepBy(steps)


def _problem_files(index: Any) -> list[tuple[str, str]]:
    """The Problems table's rows: unusable files with their reason, then the other files left out (not of an image
    type, or Grad-CAM overlays)."""
    from core.data import ignored_reason

    return list(index.bad_files) + [(p, ignored_reason(p)) for p in index.ignored_files]


def _left_out(index: Any) -> list[tuple[str, bool]]:
    """What the scan left out as (words, is an error), in the words the summary, the Problems tab and its list
    heading all use; one entry per kind, and their counts add up to len(_problem_files(index))."""
    from core.data import LOOSE_REASON, folder_reason, unread_photo

    folders = sum(folder_reason(reason) for _, reason in index.unusable)  # (a link that loops counted as one too)
    # good images put beside the class folders, not in one: a misplaced photo, not a damaged file ("unusable")
    loose = sum(reason == LOOSE_REASON for _, reason in index.unusable)
    # an iPhone's HEIC is a photo, of a type not read: "not images" beside its row's "a HEIC image" said both
    photos = sum(1 for path in index.ignored_files if unread_photo(path))
    kinds = (
        (len(index.unusable) - folders - loose, "unusable file", "", True),
        (folders, "folder", " not read", True),
        (loose, "image", " outside the class folders", True),
        (len(index.run_folders), "run folder", " ignored (not images)", False),
        (photos, "photo", " of a type not read (ignored)", False),
        (len(index.ignored_files) - photos, "other file", " ignored (not images)", False),
    )
    return [(count_noun(n, noun) + tail, error) for n, noun, tail, error in kinds if n]


def _place(index: Any, path: str) -> list[str]:
    """An image's place in the data folder, its parts ("train", "circle", "000.png"); [] if it is not under it."""
    parts = os.path.relpath(path, index.root).split(os.sep)
    return [] if parts[0] == os.pardir else parts


def _caption(index: Any, path: str) -> str:
    """A class's image named within its class folder: "000.png", or with the sub-folder it is in ("day 2/000.png").
    (Which split it is in, a tile has no room for: the label above the tiles says their order.)"""
    parts = _place(index, path)
    if len(parts) < 2:  # (not under the root as listed: its name alone)
        return os.path.basename(path)
    return "/".join(parts[2 if index.layout == "splits" and len(parts) > 2 else 1 :])


def _split_order(samples: list[Any]) -> str:
    """ " (test 4 · train 12 · val 4, in that order)" for a class of a train/val/test folder, whose files may be
    named alike in each split (it showed "000.png" three times, with no word of which was which); "" otherwise."""
    counts: dict[str, int] = {}
    runs = 0  # stretches of one split in the list: as many as splits when each stands together
    for i, s in enumerate(samples):
        counts[s.split] = counts.get(s.split, 0) + 1
        runs += i == 0 or s.split != samples[i - 1].split
    if len(counts) < 2:
        return ""
    return f" ({' · '.join(f'{k} {n}' for k, n in counts.items())}{', in that order' if runs == len(counts) else ''})"


def _dup_groups(index: Any) -> str:
    return count_noun(len(index.duplicates), "group") + " of identical files"


def _red(text: str) -> str:
    return f"<span style='color:#b3261e'>{text}</span>"


def _few_images(counts: list[int]) -> list[int]:
    """Rows the balance chart draws in orange (gui.charts.BarChart): classes with under half the mean count."""
    mean = sum(counts) / len(counts) if counts else 0
    return [i for i, c in enumerate(counts) if c < 0.5 * mean]


def _elide(widget: QWidget, text: str, width: int = NAME_WIDTH) -> str:
    return widget.fontMetrics().elidedText(text, Qt.TextElideMode.ElideMiddle, width)


def _classes_missing(index: Any, part: list[int]) -> list[str]:
    """The classes that have no image among the samples `part`."""
    have = {index.samples[i].label for i in part}
    return [name for label, name in enumerate(index.classes) if label not in have]


def _warning(text: str) -> str:
    """`text` in the error colour, for a hint label (rich text)."""
    return f'<span style="color:#b3261e">{html.escape(text)}</span>'


def _fit_words(widget: QWidget, text: str, width: int = 2 * NAME_WIDTH) -> str:
    """`text` for a word-wrapped label: a word it cannot break (a path, a class name) is cut in the middle to
    `width`, so it never sets the window's minimum width."""
    return " ".join(_elide(widget, word, width) for word in text.split(" "))


class DatasetPanel(QWidget):
    """Everything about the data set. `index` holds the last good scan; `data_config()` the chosen settings."""

    index_changed = Signal(object)  # DatasetIndex | None
    scan_started = Signal(str)  # the folder being scanned (Start waits for it: it would train on the set before)
    scan_finished = Signal(object)  # DatasetIndex, or None when the scan failed or was cancelled
    config_changed = Signal()  # split / size / augmentation changed
    status_message = Signal(str)

    def __init__(self, parent: QWidget | None = None, defer_charts: bool = False) -> None:
        super().__init__(parent)
        self.balance_chart: Any = None  # gui.charts.BarChart, created by ensure_charts() (matplotlib is slow)
        self._chart_data: tuple[list, list] = ([], [])
        self.index: Any = None
        self.folder = ""
        self.last_error = ""
        self._scan_worker: FunctionWorker | None = None
        self._recent_paths: list[str] = []  # the folder box's entries' paths (see _fill_recent)
        self._scan_gen = 0
        self._thumb_loader: ThumbnailLoader | None = None
        self._thumb_gen = 0
        self._preview_worker: FunctionWorker | None = None
        self._preview_pending = False
        self._preview_sample = 0
        self._flip_pref = True  # the user's flip choice, kept while Augmentation "none" shows the box off
        self._restoring = True
        self._build()
        self._restore_settings()
        self._restoring = False
        if not defer_charts:
            self.ensure_charts()

    def ensure_charts(self) -> None:
        """Create the matplotlib chart (deferred at start-up so the window shows before matplotlib loads)."""
        if self.balance_chart is None:
            from gui.charts import BarChart

            self.balance_chart = BarChart(4.0, 2.4)
            self.balance_chart.setAccessibleName("Images per class (chart)")
            self.chart_holder.layout().addWidget(self.balance_chart)
            self.balance_chart.set_counts(*self._chart_data)

    def _set_chart(self, names: list, counts: list) -> None:
        self._chart_data = (list(names), list(counts))
        if self.balance_chart is not None:
            self.balance_chart.set_counts(names, counts)

    # ---- layout -------------------------------------------------------------------------------------------------
    def _build(self) -> None:
        root = QVBoxLayout(self)
        root.setContentsMargins(12, 12, 12, 8)
        root.setSpacing(8)

        bar = QHBoxLayout()
        title = QLabel("&Data set folder")  # (Alt+D: the field; its buddy is set below)
        title.setObjectName("sectionTitle")
        bar.addWidget(title)
        self.recent_combo = QComboBox()
        self.recent_combo.setAccessibleName("Data set folder")
        title.setBuddy(self.recent_combo)
        self.recent_combo.setMinimumContentsLength(40)
        self.recent_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.recent_combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.recent_combo.setToolTip(
            "Recently opened data sets; pick one to open it again, or type (paste) a folder's path and press Enter"
        )
        self.recent_combo.setEditable(True)  # (a path copied from a file manager or a terminal could not be pasted)
        self.recent_combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.recent_combo.lineEdit().setPlaceholderText(
            "a folder of class sub-folders: type or paste its path, or Open folder…"
        )
        self.recent_combo.lineEdit().returnPressed.connect(self._on_path_typed)
        self.recent_combo.lineEdit().installEventFilter(self)  # (Escape or leaving it: back to the open folder)
        self.recent_combo.activated.connect(self._on_recent_activated)
        bar.addWidget(self.recent_combo, 1)
        self.browse_button = QPushButton("Open folder…")
        self.browse_button.setToolTip("Choose a folder with one sub-folder per class (or train/val/test folders)")
        self.browse_button.clicked.connect(self.browse)
        bar.addWidget(self.browse_button)
        self.rescan_button = QPushButton("Rescan")
        self.rescan_button.setToolTip("Scan the folder again (after adding or removing images)")
        self.rescan_button.clicked.connect(lambda: self.folder and self.load_folder(self.folder))
        bar.addWidget(self.rescan_button)
        root.addLayout(bar)

        prog = QHBoxLayout()
        self.scan_label = QLabel("")
        self.scan_progress = QProgressBar()
        self.scan_progress.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop scanning")
        self.cancel_button.clicked.connect(self.cancel_scan)
        prog.addWidget(self.scan_label)
        prog.addWidget(self.scan_progress, 1)
        prog.addWidget(self.cancel_button)
        self.scan_row = QWidget()
        self.scan_row.setLayout(prog)
        prog.setContentsMargins(0, 0, 0, 0)
        self.scan_row.hide()
        root.addWidget(self.scan_row)

        self.banner = Banner()
        root.addWidget(self.banner)
        self.summary_label = QLabel("Open a folder of images sorted into one sub-folder per class, or drop it here.")
        self.summary_label.setObjectName("summaryLabel")
        self.summary_label.setWordWrap(True)
        root.addWidget(self.summary_label)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.setChildrenCollapsible(False)
        split.addWidget(self._build_classes())
        split.addWidget(self._build_middle())
        split.addWidget(self._build_settings())
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 5)
        split.setStretchFactor(2, 3)
        split.setSizes([330, 560, 360])
        root.addWidget(split, 1)

    def _build_classes(self) -> QWidget:
        box = QGroupBox("Classes")
        lay = QVBoxLayout(box)
        self.class_table = QTableWidget(0, 2)
        self.class_table.setAccessibleName("Classes and their numbers of images")
        self.class_table.setTabKeyNavigation(False)  # Tab goes on to the next control; arrows move in the table
        self.class_table.setHorizontalHeaderLabels(["Class", "Images"])
        self.class_table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.class_table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        # long names are cut in the middle (whole in the tooltip) so the counts always show, with no scrollbar
        self.class_table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.class_table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.class_table.setMinimumWidth(self.fontMetrics().horizontalAdvance("a_class_name…0000 Images") + 40)
        self.class_table.verticalHeader().hide()
        self.class_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.class_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.class_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.class_table.setAlternatingRowColors(True)
        self.class_table.itemSelectionChanged.connect(self._on_class_selected)
        self.class_table.setToolTip("Select a class to see its images")
        lay.addWidget(self.class_table, 2)
        self.chart_holder = QWidget()
        self.chart_holder.setMinimumHeight(180)
        holder = QVBoxLayout(self.chart_holder)
        holder.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.chart_holder, 3)
        self.balance_note = QLabel()  # why some bars are orange
        self.balance_note.setObjectName("hintLabel")
        self.balance_note.setWordWrap(True)
        self.balance_note.hide()
        lay.addWidget(self.balance_note)
        return box

    def _build_middle(self) -> QWidget:
        self.middle_tabs = QTabWidget()
        images = QWidget()
        il = QVBoxLayout(images)
        self.thumb_label = QLabel("Select a class on the left to see its images.")
        self.thumb_label.setObjectName("hintLabel")
        self.thumb_label.setWordWrap(True)
        il.addWidget(self.thumb_label)
        self.thumb_grid = ImageGrid(THUMB_SIZE, selectable=True)
        self.thumb_grid.setAccessibleName("Images of the selected class")
        self.thumb_grid.itemDoubleClicked.connect(lambda it: self.reveal(it.toolTip()))
        on_return(self.thumb_grid, lambda: self.reveal(self.thumb_grid.currentItem().toolTip()))
        il.addWidget(self.thumb_grid, 1)
        self.middle_tabs.addTab(images, "Images")

        problems = QWidget()
        pl = QVBoxLayout(problems)
        self.bad_label = QLabel()
        self.bad_label.setWordWrap(True)
        pl.addWidget(self.bad_label)
        self.bad_table = QTableWidget(0, 3)
        self.bad_table.setAccessibleName("Problems: files left out and why")
        self.bad_table.setTabKeyNavigation(False)
        self.bad_table.setHorizontalHeaderLabels(["File", "Reason", ""])
        hh = self.bad_table.horizontalHeader()
        hh.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self._bad_columns = ColumnShare(self.bad_table, 0, 1, two_lines=True)  # short paths leave the reasons room
        self.bad_table.verticalHeader().hide()
        self.bad_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.bad_table.setWordWrap(False)
        self.bad_table.setItemDelegateForColumn(0, _PathDelegate(self.bad_table))  # "02_a_ra…words/corrupt.jpg"
        self.bad_table.setItemDelegateForColumn(1, _ElideRightDelegate(self.bad_table))  # a reason reads from the start
        bar = self.bad_table.verticalScrollBar()  # rows coming into view get their Show buttons
        bar.valueChanged.connect(self._add_show_buttons)
        bar.rangeChanged.connect(self._add_show_buttons)
        pl.addWidget(self.bad_table, 3)
        self.dup_label = QLabel()
        self.dup_label.setWordWrap(True)
        pl.addWidget(self.dup_label)
        self.dup_list = QListWidget()  # one file a line, wrapped at "/" when narrow: never a sideways scroll
        self.dup_list.setAccessibleName("Identical files")
        self.dup_list.setWordWrap(True)
        self.dup_list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.dup_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.dup_list.setResizeMode(QListView.ResizeMode.Adjust)
        self.dup_list.itemDoubleClicked.connect(lambda it: self.reveal(it.data(Qt.ItemDataRole.UserRole)))
        on_return(self.dup_list, lambda: self.reveal(self.dup_list.currentItem().data(Qt.ItemDataRole.UserRole)))
        pl.addWidget(self.dup_list, 2)
        self._problems_stretch = QWidget()  # takes the room of the hidden lists when there is nothing to show
        pl.addWidget(self._problems_stretch, 1)
        self._show_problem_lists(None)
        self.middle_tabs.addTab(problems, "Problems")
        return self.middle_tabs

    def _build_settings(self) -> QWidget:
        col = QWidget()
        lay = QVBoxLayout(col)
        lay.setContentsMargins(0, 0, 0, 0)

        split_box = QGroupBox("Split")
        f = QFormLayout(split_box)
        self.val_spin = QSpinBox()
        self.val_spin.setRange(0, 90)
        self.val_spin.setSuffix(" %")
        self.val_spin.setValue(20)
        self.val_spin.setToolTip("Share of each class held out to validate after every epoch")
        self.test_spin = QSpinBox()
        self.test_spin.setRange(0, 90)
        self.test_spin.setSuffix(" %")
        self.test_spin.setToolTip("Share of each class kept aside for the final test (never used in training)")
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setToolTip("Random seed of the split: the same seed gives the same split")
        self.split_counts = QLabel("–")
        self.split_counts.setObjectName("hintLabel")
        self.split_counts.setWordWrap(True)  # an error from the split is a sentence
        # Validation and test share a row, and the flip its level's row: in a 1280 x 720 window the preview below
        # then shows whole instead of half under the fold.
        shares = QHBoxLayout()
        shares.addWidget(self.val_spin, 1)
        test_label = QLabel("Te&st")
        test_label.setBuddy(self.test_spin)
        shares.addSpacing(8)
        shares.addWidget(test_label)
        shares.addWidget(self.test_spin, 1)
        val_label = QLabel("Val&idation")
        val_label.setBuddy(self.val_spin)
        f.addRow(val_label, shares)
        f.addRow("Split s&eed", self.seed_spin)  # ("Seed" alone read as the Train tab's training seed too)
        f.addRow("Images", self.split_counts)
        lay.addWidget(split_box)

        aug_box = QGroupBox("Input and augmentation")
        g = QFormLayout(aug_box)
        self.size_spin = QSpinBox()
        self.size_spin.setRange(16, 1024)
        self.size_spin.setSingleStep(16)
        self.size_spin.setValue(64)
        self.size_spin.setSuffix(" px")
        self.size_spin.setToolTip("Side of the square image the network sees (32-64 for small images, 224 for photos)")
        self.augment_combo = QComboBox()
        self.augment_combo.addItems(AUGMENT_LEVELS)
        self.augment_combo.setCurrentText("standard")
        self.augment_combo.setToolTip("How strongly training images are randomly cropped and scaled")
        self.flip_check = QCheckBox("Horizontal flip")
        self.flip_check.setChecked(True)
        self.flip_check.setToolTip(FLIP_TIP)
        self.jitter_spin = _LevelStrengthSpin()
        self.jitter_spin.setRange(0.0, 1.0)
        self.jitter_spin.setSingleStep(0.1)
        self.jitter_spin.setDecimals(2)
        self.jitter_spin.setToolTip("Random brightness / contrast / saturation changes (0 = off, 1 = strong)")
        self.erasing_spin = _LevelStrengthSpin()
        self.erasing_spin.setRange(0.0, 1.0)
        self.erasing_spin.setSingleStep(0.1)
        self.erasing_spin.setDecimals(2)
        self.erasing_spin.setToolTip("Probability of blanking a random rectangle of each training image")
        g.addRow("Image si&ze", self.size_spin)
        level = QHBoxLayout()
        level.addWidget(self.augment_combo, 1)
        level.addWidget(self.flip_check)
        level_label = QLabel("&Augmentation")
        level_label.setBuddy(self.augment_combo)
        g.addRow(level_label, level)
        g.addRow("&Colour jitter", self.jitter_spin)
        g.addRow("&Random erasing", self.erasing_spin)
        lay.addWidget(aug_box)

        prev_box = QGroupBox("Augmentation preview")
        pv = QVBoxLayout(prev_box)
        self.preview_grid = ImageGrid(72, selectable=False)
        self.preview_grid.setAccessibleName("Augmentation preview")
        self.preview_grid.setMinimumHeight(110)
        row = QHBoxLayout()  # above the images: below them the button was out of sight on a 720-px screen
        self.preview_label = QLabel("")
        self.preview_label.setObjectName("hintLabel")
        self.preview_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        row.addWidget(self.preview_label, 1)
        self.preview_next = QPushButton("Another image")
        self.preview_next.setToolTip("Preview the augmentations on a different training image")
        self.preview_next.clicked.connect(self._next_preview_sample)
        self.preview_next.setEnabled(False)  # (until a data set with images is open: it did nothing)
        row.addWidget(self.preview_next)
        pv.addLayout(row)
        pv.addWidget(self.preview_grid, 1)
        lay.addWidget(prev_box, 1)

        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(250)
        self._preview_timer.timeout.connect(self._start_preview)
        for w in (self.val_spin, self.test_spin, self.seed_spin):
            w.valueChanged.connect(self._on_split_changed)
        for w in (self.size_spin, self.jitter_spin, self.erasing_spin):
            w.valueChanged.connect(self._on_augment_changed)
        self.augment_combo.currentIndexChanged.connect(self._on_augment_level_changed)
        self.flip_check.toggled.connect(self._on_flip_toggled)
        self._sync_flip()
        self._sync_strength_fields()
        # On a short screen the column scrolls instead of setting the window's minimum height.
        scroll = QScrollArea()
        scroll.setWidget(col)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(col.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width())
        scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # (Tab goes to its fields, which scroll into view)
        wheel_scrolls_the_form(scroll)
        return scroll

    # ---- public API ---------------------------------------------------------------------------------------------
    def browse(self) -> None:
        start = self.folder or str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Open a data set folder", start)
        if folder:
            self.load_folder(folder)

    def handle_dropped_paths(self, paths: list[str]) -> bool:
        folders = [p for p in paths if os.path.isdir(p)]
        if not folders:
            return False
        self.load_folder(folders[0])
        return True

    def load_folder(self, folder: str) -> None:
        """Scan `folder` in the background; the result fills the panel (scan_finished is emitted either way)."""
        folder = str(folder)
        self.cancel_scan()
        self._scan_gen += 1
        gen = self._scan_gen
        self.folder = folder
        self._fill_recent(folder)  # the folder box names the folder being scanned (it kept the last one until done)
        self.banner.clear_message()
        self.banner.setToolTip("")
        self.summary_label.setText(_fit_words(self.summary_label, f"Scanning {folder} …"))
        self.summary_label.setToolTip(folder)
        self.status_message.emit(f"Scanning {folder} …")  # (the status bar said "Opened" the last folder meanwhile)
        self.scan_label.setText("Checking images")
        self.scan_progress.setRange(0, 0)
        self.scan_row.show()
        worker = FunctionWorker(_scan, folder)
        connect_worker(
            worker,
            self,
            progress=lambda d, t: gen == self._scan_gen and self._on_scan_progress(d, t),
            result=lambda idx: gen == self._scan_gen and self._on_scan_done(idx),
            failed=lambda msg: gen == self._scan_gen and self._on_scan_failed(msg, worker.cancelled),
        )
        self._scan_worker = worker
        start_worker(worker, self)
        self.scan_started.emit(folder)

    def cancel_scan(self) -> None:
        if self._scan_worker is not None:
            self._scan_worker.cancel()

    def cancel_all(self) -> None:
        """Stop every background job of this panel (scan, thumbnails, preview)."""
        self.cancel_scan()
        self._preview_timer.stop()
        if self._thumb_loader is not None:
            self._thumb_loader.cancel()

    def is_scanning(self) -> bool:
        return self._scan_worker is not None

    def set_image_size(self, size: int) -> None:
        self.size_spin.setValue(int(size))

    def set_augment(self, level: str) -> None:
        self.augment_combo.setCurrentText(level)

    def image_size(self) -> int:
        return int(self.size_spin.value())

    def augment(self) -> str:
        return self.augment_combo.currentText()

    def data_config(self) -> Any:
        """The chosen data settings as a core.config.DataConfig."""
        from core.config import DataConfig

        return DataConfig(
            root=self.index.root if self.index is not None else self.folder,
            image_size=self.image_size(),
            val_split=self.val_spin.value() / 100.0,
            test_split=self.test_spin.value() / 100.0,
            seed=int(self.seed_spin.value()),
            augment=self.augment_combo.currentText(),
            hflip=self.flip_check.isChecked(),  # off while augment is "none" (see _sync_flip)
            color_jitter=round(self.jitter_spin.value(), 3),
            random_erasing=round(self.erasing_spin.value(), 3),
        )

    def reveal(self, path: str | None) -> bool:
        """Open the folder holding `path` in the file manager."""
        if not path:
            return False
        folder = path if os.path.isdir(path) else os.path.dirname(path)
        return show_folder(folder, self)

    # ---- scan results -------------------------------------------------------------------------------------------
    def _on_scan_progress(self, done: int, total: int) -> bool:
        if total > 0:
            self.scan_progress.setRange(0, total)
            self.scan_progress.setValue(done)
            self.scan_progress.setFormat("%v / %m images")
        return True

    def _on_scan_failed(self, message: str, cancelled: bool) -> bool:
        self.scan_row.hide()
        self._scan_worker = None
        if cancelled and self.index is not None:  # the data set open before stays open (it was thrown away)
            self.last_error = self.training_problem()  # ("" for a set to train on)
            self.banner.set_info(
                _fit_words(self.banner, f"Scan of {self.folder} cancelled; {self.index.root} is still open.")
            )
            self.folder = self.index.root
            self._fill_recent(self.folder)
            self._fill(self.index)
            self.scan_finished.emit(self.index)
            return True
        if cancelled:
            self.last_error = ""
            self.banner.set_info(_fit_words(self.banner, f"Scan of {self.folder} cancelled."))
            self.summary_label.setText("")
        else:
            self.last_error = message
            self.banner.set_error(_fit_words(self.banner, message))
            self.banner.setToolTip(message)  # the whole message, paths uncut
            self.summary_label.setText("Fix the folder and press Rescan, or open another folder.")
            self._remember_folder(self.folder, ok=False)
            self.status_message.emit(f"Could not open {self.folder}")  # (the banner says why)
        self.index = None
        self._fill(None)
        self.index_changed.emit(None)
        self.scan_finished.emit(None)
        return True

    def training_problem(self) -> str:
        """Why the open data set cannot be trained on (one class), or ""."""
        too_few = self.index.too_few_classes() if self.index is not None else None
        return f"{self.index.root}: {too_few}; add a folder for each other class and press Rescan" if too_few else ""

    def _on_scan_done(self, index: Any) -> bool:
        self.scan_row.hide()
        self._scan_worker = None
        row = self.selected_class()  # a rescan of the same folder keeps the class looked at (it went to the first)
        same = self.index is not None and self.index.root == index.root and row is not None
        keep = self.index.classes[row] if same else None
        self.index = index
        self.last_error = self.training_problem()
        self._remember_folder(index.root, ok=not self.last_error)
        self._fill(index, keep)
        if self.last_error:  # (after _fill: it is said, and the folder's one class, its images and problems are shown)
            self.banner.set_error(_fit_words(self.banner, self.last_error))
            self.banner.setToolTip(self.last_error)
        self.status_message.emit(
            f"Opened {index.root}: {count_noun(len(index.classes), 'class', 'classes')}, "
            f"{count_noun(len(index.samples), 'image')}"
        )
        self.index_changed.emit(index)
        self.scan_finished.emit(index)
        return True

    SHOW_BUTTONS_AHEAD = 40  # rows below the last one in view that have their Show buttons made already

    def _add_show_buttons(self, *_: Any) -> None:
        """A Show button for each problem row in view (and a few below), made as the rows come into view: made for
        every row at once, 2,000 files left out held the window 0.6 s."""
        table = self.bad_table
        top, bottom = table.rowAt(0), table.rowAt(table.viewport().height() - 1)
        top = max(0, top)
        end = min(table.rowCount(), max(top, bottom if bottom >= 0 else table.rowCount()) + self.SHOW_BUTTONS_AHEAD)
        for r in range(top, end):
            if table.cellWidget(r, 2) is not None or table.item(r, 0) is None:
                continue
            path, name = table.item(r, 0).toolTip(), table.item(r, 0).text()
            button = QPushButton("Show")  # (as "Show run folder": the file manager; narrower, the reasons get room)
            button.setAutoDefault(True)  # (Return clicks it, as gui.widgets.keyboard_friendly sets for the rest)
            button.setToolTip(f"Show the folder holding {name} in the file manager")
            button.setAccessibleName(f"Show {name}")  # (every row's was "Show" alone to a screen reader)
            button.clicked.connect(lambda _=False, p=path: self.reveal(p))
            table.setCellWidget(r, 2, button)
            if table.rowHeight(r) < button.sizeHint().height():  # (a large font: it stuck out below its row)
                table.setRowHeight(r, button.sizeHint().height())
        if table.rowCount():  # room for one whole row at the least height (a 14 pt font left half of one)
            frame = 2 * table.frameWidth() + table.horizontalHeader().height()
            table.setMinimumHeight(max(table.minimumHeight(), frame + table.rowHeight(0) + 2))

    def _fill(self, index: Any, select: str | None = None) -> None:
        """The panel shows `index`, with the class named `select` selected (the first when it has none)."""
        self.class_table.setRowCount(0)
        self.bad_table.setRowCount(0)
        self.dup_list.clear()
        self._clear_thumbs()
        self.preview_grid.clear()
        self.preview_grid.set_note("")
        self.preview_next.setEnabled(index is not None and bool(index.samples))
        self.thumb_label.setText("Select a class on the left to see its images." if index is not None else "")
        self.thumb_label.setToolTip("")
        self.preview_label.setText("")
        self.preview_label.setToolTip("")
        if index is None:
            self._set_chart([], [])
            self._set_balance_note([], [])
            self.split_counts.setText("–")
            self.middle_tabs.setTabText(1, "Problems")
            self.middle_tabs.setTabToolTip(1, "")
            self._show_problem_lists(None)
            return
        counts = index.counts()
        few = _few_images([counts[c] for c in index.classes])
        self.class_table.setRowCount(len(index.classes))
        for row, name in enumerate(index.classes):
            item = QTableWidgetItem(name)
            item.setToolTip(name)
            self.class_table.setItem(row, 0, item)
            count = QTableWidgetItem()
            count.setData(Qt.ItemDataRole.DisplayRole, counts[name])
            count.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if row in few:
                count.setForeground(QColor(FEW_COLOR))
                count.setToolTip(f"{count_noun(counts[name], 'image')}: under half the average of the classes")
            self.class_table.setItem(row, 1, count)
        self._set_chart(index.classes, [counts[c] for c in index.classes])
        self._set_balance_note(index.classes, [counts[c] for c in index.classes])
        # up to four classes are all in view: at 125 % on a 1366 x 768 screen the table scrolled for four, with
        # the last one cut in half, while the chart below took more room than its bars needed
        t = self.class_table
        rows = min(len(index.classes), CLASS_ROWS_SHOWN)
        header = t.horizontalHeader().sizeHint().height()
        t.setMinimumHeight(header + rows * t.verticalHeader().defaultSectionSize() + 2 * t.frameWidth() + 2)

        parts = [
            f"<b>{len(index.classes)}</b> {'class' if len(index.classes) == 1 else 'classes'}",
            f"<b>{len(index.samples)}</b> images",
            f"layout: {LAYOUT_NAMES.get(index.layout, index.layout)}",
        ]
        parts += [_red(text) if error else text for text, error in _left_out(index)]
        mixed = index.mixed_duplicates()  # one image, two labels
        if index.duplicates:
            parts.append(_dup_groups(index))
        if mixed:
            parts.append(_red(f"{len(mixed)} of them in different classes (one image, two labels)"))
        leaked = index.leaked_duplicates()  # pre-split sets: the same image in train/ and val/
        if leaked:
            parts.append(_red(f"{len(leaked)} of them in two split folders"))
        if index.empty_classes:
            empty = ", ".join(html.escape(_elide(self, c)) for c in index.empty_classes)
            parts.append(f"empty folders ignored: {empty}")
        if index.unusable_classes:  # (their files are in the Problems list, with the reasons)
            lost = ", ".join(html.escape(_elide(self, c)) for c in index.unusable_classes)
            parts.append(_red(f"left out, no usable image: {lost}"))
        parts += [_red(html.escape(note)) for note in index.notes]  # (train/ read as a class, twin spellings)
        # the folder's path once: the box above shows it (a path typed otherwise, "~/photos", is said as read)
        shown = self.recent_combo.currentText().strip()
        same = bool(shown) and os.path.normcase(os.path.abspath(os.path.expanduser(shown))) == os.path.normcase(
            shown_path(index.root)
        )
        head = "" if same else f"{html.escape(_fit_words(self.summary_label, index.root))}<br>"
        self.summary_label.setText(head + " · ".join(parts))

        for path, reason in _problem_files(index)[:2000]:
            r = self.bad_table.rowCount()
            self.bad_table.insertRow(r)
            item = QTableWidgetItem(os.path.relpath(path, index.root))
            item.setToolTip(path)
            self.bad_table.setItem(r, 0, item)
            reason_item = QTableWidgetItem(reason)
            reason_item.setToolTip(reason)
            self.bad_table.setItem(r, 1, reason_item)
        self._add_show_buttons()
        self._bad_columns.update()
        for group in index.duplicates:
            rel = [os.path.relpath(p, index.root) for p in group]
            where = ", in different classes" * (group in mixed) + ", in two split folders" * (group in leaked)
            item = QListWidgetItem(f"{len(group)} identical files{where}:\n" + "\n".join(rel))
            item.setToolTip("\n".join(group))
            item.setData(Qt.ItemDataRole.UserRole, group[0])
            self.dup_list.addItem(item)
        self._show_problem_lists(index)
        kinds = [text for text, _ in _left_out(index)] + ([_dup_groups(index)] if index.duplicates else [])
        n_problems = len(_problem_files(index)) + len(index.duplicates)  # the sum of the counts in `kinds`
        self.middle_tabs.setTabText(1, f"Problems ({n_problems})" if n_problems else "Problems")
        self.middle_tabs.setTabToolTip(1, ", ".join(kinds) if kinds else "Nothing left out, no identical files")

        split_layout = index.layout == "splits"
        # train/ without val/: the Validation share of train/ is held out (seeded), as training does; it was greyed
        # out while it still decided the split
        for w in (self.val_spin, self.seed_spin):
            w.setEnabled(not split_layout or index.val_from_train())
        self.test_spin.setEnabled(not split_layout)
        self._update_split_counts()
        if index.classes:
            self.class_table.selectRow(index.classes.index(select) if select in index.classes else 0)
        self._preview_sample = 0
        self._schedule_preview()

    def _set_balance_note(self, names: list[str], counts: list[int]) -> None:
        """Say in words why some bars (and counts) are orange, naming those classes."""
        few = _few_images(counts)
        shown = [f"{html.escape(_elide(self, names[i]))} ({counts[i]})" for i in few[:5]]  # rich text
        more = f" and {len(few) - 5} more" if len(few) > 5 else ""
        self.balance_note.setText(
            f"<span style='color:{FEW_COLOR}'>Orange</span>: {count_noun(len(few), 'class', 'classes')} with under half the "
            f"average number of images ({sum(counts) / max(1, len(counts)):.0f}), too few to learn well: "
            + ", ".join(shown)
            + more
            if few
            else ""
        )
        self.balance_note.setToolTip("\n".join(f"{names[i]}: {count_noun(counts[i], 'image')}" for i in few))
        self.balance_note.setVisible(bool(few))

    def _show_problem_lists(self, index: Any) -> None:
        """Say what the Problems tab found; an empty list is replaced by a sentence saying there is nothing."""
        bad = len(_problem_files(index)) if index is not None else 0
        dups = len(index.duplicates) if index is not None else 0
        if index is None:
            self.bad_label.setText("")
            self.dup_label.setText("")
        else:
            shown = f" (the first {self.bad_table.rowCount()} listed)" if bad > self.bad_table.rowCount() else ""
            self.bad_label.setText(
                f"Left out of training: {', '.join(text for text, _ in _left_out(index))}{shown}:"
                if bad
                else "Every image file could be read: none is left out."
            )
            together = " (each group is kept together in one split)" if index.layout != "splits" else ""
            self.dup_label.setText(f"{_dup_groups(index)}{together}:" if dups else "No identical files.")
        self.bad_table.setVisible(bad > 0)
        self.dup_list.setVisible(dups > 0)
        self._problems_stretch.setVisible(not bad or not dups)

    # ---- split --------------------------------------------------------------------------------------------------
    def _on_split_changed(self) -> None:
        self._update_split_counts()
        if not self._restoring:
            self.config_changed.emit()

    def _update_split_counts(self) -> None:
        self.split_counts.setToolTip("")
        if self.index is None:
            self.split_counts.setText("–")
            return
        if self.val_spin.value() + self.test_spin.value() >= 100:
            self.split_counts.setText(_warning("validation + test must stay below 100 %"))
            return
        try:
            from core.data import split

            s = split(self.index, self.val_spin.value() / 100, self.test_spin.value() / 100, self.seed_spin.value())
        except Exception as exc:  # noqa: BLE001 — shown to the user, never a crash
            self.split_counts.setText(_fit_words(self.split_counts, str(exc), 160))  # the column's width
            self.split_counts.setToolTip(str(exc))
            return
        text = f"train {len(s.train)} · val {len(s.val)} · test {len(s.test)}"
        if self.index.layout == "splits":
            from_train = self.index.val_from_train()
            text += " (val from train/, the rest from the folders)" if from_train else " (from the folders)"
        tips = []
        for part, words in ((s.val, "validation"), (s.test, "test")):
            missing = _classes_missing(self.index, part) if part else []
            if missing:  # (a class of 2 images has none in test; of 1, none in validation: said nowhere)
                names = ", ".join(_elide(self, n) for n in missing[:3]) + (", …" if len(missing) > 3 else "")
                text += "<br>" + _warning(f"no {words} image: {names}")
                tips.append(
                    f"Classes with no {words} image (too few images, or none in its folder):\n" + "\n".join(missing)
                )
        self.split_counts.setToolTip("\n\n".join(tips))
        if len(s.train) < 2:  # (Start would refuse it: say so here, with what to change)
            fix = "add images to train/" if self.index.layout == "splits" else "add images, or lower the shares"
            text += "<br>" + _warning(f"too few to train (at least 2): {fix}")
        self.split_counts.setText(text)

    # ---- thumbnails ---------------------------------------------------------------------------------------------
    def _clear_thumbs(self) -> None:
        if self._thumb_loader is not None:
            self._thumb_loader.cancel()
            self._thumb_loader = None
        self._thumb_gen += 1
        self.thumb_grid.clear()

    def selected_class(self) -> int | None:
        rows = self.class_table.selectionModel().selectedRows() if self.class_table.selectionModel() else []
        return rows[0].row() if rows else None

    def _on_class_selected(self) -> None:
        label = self.selected_class()
        self._clear_thumbs()
        if self.index is None or label is None:
            return
        samples = [s for s in self.index.samples if s.label == label]
        # numbers in order (2.jpg before 10.jpg: "the first 600" were 0, 1, 10, 100, 1000 …), each split together
        first: dict[str | None, int] = {}
        for x in samples:
            first.setdefault(x.split, len(first))
        samples.sort(key=lambda x: (first[x.split], natural_key(x.path)))
        paths = [s.path for s in samples]
        shown = paths[:MAX_THUMBS]
        name = self.index.classes[label]
        more = f" (showing the first {len(shown)})" if len(paths) > len(shown) else ""
        order = _split_order(samples) if self.index.layout == "splits" else ""
        self.thumb_label.setText(
            f"{_elide(self.thumb_label, name)}: {count_noun(len(paths), 'image')}{order}{more}. Double-click an "
            "image to open its folder."
        )
        self.thumb_label.setToolTip(name)
        for p in shown:
            self.thumb_grid.add_tile(_caption(self.index, p), p)
        self.thumb_grid.scrollToTop()  # each class from its first image (the last one's scroll stayed)
        gen = self._thumb_gen
        loader = ThumbnailLoader(shown, scale=screen_scale())
        connect_worker(loader, self, chunk=lambda items: gen == self._thumb_gen and self._on_thumbs(items))
        self._thumb_loader = loader
        start_worker(loader, self)
        self._preview_sample = 0
        self._schedule_preview()

    def _on_thumbs(self, items: list[tuple[int, QImage]]) -> bool:
        for row, image in items:
            item = self.thumb_grid.item(row)
            if item is not None:
                self.thumb_grid.set_tile_image(item, image)
        return True

    @property
    def thumbnails_loaded(self) -> int:
        return sum(1 for i in range(self.thumb_grid.count()) if ImageGrid.has_image(self.thumb_grid.item(i)))

    # ---- augmentation preview -----------------------------------------------------------------------------------
    def flip_preference(self) -> bool:
        """The user's horizontal-flip choice, kept (and saved) even while Augmentation "none" turns flips off."""
        return self._flip_pref

    def _sync_flip(self) -> None:
        """With Augmentation "none" the flip box is off and disabled; otherwise it shows the user's choice."""
        none = self.augment_combo.currentText() == "none"
        self.flip_check.blockSignals(True)
        self.flip_check.setChecked(self._flip_pref and not none)
        self.flip_check.blockSignals(False)
        self.flip_check.setEnabled(not none)
        self.flip_check.setToolTip(FLIP_OFF_TIP if none else FLIP_TIP)

    def _sync_strength_fields(self) -> None:
        """At 0 the jitter / erasing fields mean "the level's own": say what that is (strong adds both)."""
        from core.config import STRONG_ERASING, STRONG_JITTER  # light (no torch), needed only here

        strong = self.augment_combo.currentText() == "strong"
        for spin, value, what in (
            (self.jitter_spin, STRONG_JITTER, "colour jitter"),
            (self.erasing_spin, STRONG_ERASING, "erasing"),
        ):
            spin.level_value = value if strong else 0.0
            spin.setSpecialValueText(f"{value:.2f} (strong's own)" if strong else "off")
            spin.setToolTip(
                f"{'Strength' if spin is self.jitter_spin else 'Probability'} of {what}: at the minimum "
                + (f"{value:.2f}, what strong adds; raise it to use more" if strong else "off")
                + ("" if strong else " (strong adds it by itself)")
            )

    def _on_augment_level_changed(self) -> None:
        self._sync_flip()  # before config_changed, so listeners read a consistent data_config()
        self._sync_strength_fields()
        self._on_augment_changed()

    def _on_flip_toggled(self, checked: bool) -> None:
        self._flip_pref = checked
        if self.augment_combo.currentText() == "none":  # set from code while flips are off: remember, stay off
            self._sync_flip()
            return
        self._on_augment_changed()

    def _on_augment_changed(self) -> None:
        if not self._restoring:
            self.config_changed.emit()
        self._schedule_preview()

    def _next_preview_sample(self) -> None:
        self._preview_sample += 1
        self._schedule_preview()

    def _schedule_preview(self) -> None:
        if self.index is not None and not self._restoring:
            self._preview_timer.start()

    def _preview_path(self) -> str | None:
        if self.index is None or not self.index.samples:
            return None
        label = self.selected_class()
        of_class = [s for s in self.index.samples if label is None or s.label == label] or self.index.samples
        # a train/val/test folder: its training images alone (a val or test image is never augmented)
        pool = [s.path for s in of_class if s.split in (None, "train")] or [s.path for s in of_class]
        return pool[self._preview_sample % len(pool)]

    def _start_preview(self) -> None:
        path = self._preview_path()
        if path is None:
            return
        if self._preview_worker is not None:  # one at a time; the newest settings run when it ends
            self._preview_pending = True
            return
        # (the split shares play no part in a picture of augmentation: over 100 % together, which the Split box
        # says in its own words, the preview had said "val_split 0.6 + test_split 0.5 = 1.1: …" and stopped)
        cfg = dataclasses.replace(self.data_config(), val_split=0.0, test_split=0.0)
        try:
            cfg.validate()
        except ValueError as exc:
            self.preview_label.setText(str(exc))
            self.preview_label.setToolTip(str(exc))  # one line here: the whole message on hover
            return
        from core.data import AugmentPlan, augment_plan

        still = augment_plan(cfg, train=True) == AugmentPlan("center")  # no random change is on
        worker = FunctionWorker(_preview, path, cfg, PREVIEW_COUNT, self._preview_sample)
        connect_worker(
            worker,
            self,
            result=lambda images, p=path: self._on_preview(p, images, still),
            failed=self._on_preview_failed,
            finished=self._on_preview_finished,
        )
        self._preview_worker = worker
        self.preview_label.setText("Rendering…")
        start_worker(worker, self)

    def _on_preview(self, path: str, images: list[QImage], still: bool = False) -> None:
        """The tiles of one image as epochs see it; `still`: no random change is on (else an image that every
        change leaves as it is, a plain one, was said to have Augmentation none while it was on)."""
        if path != self._preview_path():  # the folder or the class changed while it rendered
            return
        self.preview_grid.clear()
        same = len(images) > 1 and all(img == images[0] for img in images[1:])
        self.preview_grid.set_note((SAME_EVERY_EPOCH if still else PLAIN_IMAGE) if same else "")
        if same:  # six identical tiles would say nothing
            self.preview_grid.add_tile("every epoch", path, images[0])
        else:
            for i, img in enumerate(images):
                self.preview_grid.add_tile(f"#{i + 1}", path, img)
        # its place in the data folder: "circle/000.png", "train/circle/000.png" (each split names its files alike)
        parts = _place(self.index, path) if self.index is not None else []
        self.preview_label.setText("/".join(parts) or Path(path).name)
        why = "no random change is on" if still else "the random changes leave this image as it is"
        self.preview_label.setToolTip(
            f"{path}, as training sees it" + (f": {why}, so every epoch sees the same" if same else "")
        )

    def _on_preview_failed(self, msg: str) -> None:
        self.preview_label.setText(f"Preview failed: {msg}")
        self.preview_label.setToolTip(msg)

    def _on_preview_finished(self) -> None:
        self._preview_worker = None
        if self._preview_pending:
            self._preview_pending = False
            self._start_preview()

    # ---- settings -----------------------------------------------------------------------------------------------
    def recent_folders(self) -> list[str]:
        """The recent folders saved (JSON, so a name that is not valid UTF-8 keeps its bytes); only its strings (a
        hand-edited `[1]` or `null` in it stopped the window from opening)."""
        return [f for f in load_json_setting(settings(), "data/recent", []) if isinstance(f, str) and f]

    @staticmethod
    def last_folder() -> str:
        """The folder last opened well, as saved by _remember_folder ("" for none): a name that is not valid UTF-8
        is kept JSON-quoted, as Qt drops its bytes from a plain value (the next start opened the sample set)."""
        return path_from_setting(settings().value("data/last_folder", ""))

    def _remember_folder(self, folder: str, ok: bool) -> None:
        s = settings()
        recent = [f for f in self.recent_folders() if f != folder]
        if ok:
            recent.insert(0, folder)
            s.setValue("data/last_folder", path_to_setting(folder))
        store_json_setting(s, "data/recent", recent[:MAX_RECENT])
        self._fill_recent(folder)

    def _fill_recent(self, current: str = "") -> None:
        """The folder box's list. Each entry's path is kept here too (`_recent_paths`): Qt drops a byte that is not
        valid UTF-8 from a name (Linux), and the entry chosen then named no such folder; it shows as U+FFFD."""
        self.recent_combo.blockSignals(True)
        self.recent_combo.clear()
        items = self.recent_folders()
        if current and current not in items:
            items = [current, *items]
        self._recent_paths = list(items)
        for f in items:
            shown = shown_path(f)
            self.recent_combo.addItem(shown, f)
            self.recent_combo.setItemData(self.recent_combo.count() - 1, shown, Qt.ItemDataRole.ToolTipRole)
        if current:
            self.recent_combo.setCurrentIndex(items.index(current))
        self.recent_combo.blockSignals(False)

    def recent_path(self, i: int) -> str:
        """The folder of the folder box's entry `i` ("" for none)."""
        return self._recent_paths[i] if 0 <= i < len(self._recent_paths) else ""

    def _on_path_typed(self) -> None:
        text = self.recent_combo.currentText().strip()
        folder = typed_path(text)
        if not folder or folder == self.folder or (self.folder and text == shown_path(self.folder)):
            return
        self._open_chosen(folder)

    def _open_chosen(self, folder: str) -> None:
        """Open a folder typed or picked from the list; one that is not there any more leaves the open one open."""
        if not os.path.isdir(folder):
            why = "a file, not a folder" if os.path.exists(folder) else "no such folder"
            # (above the open folder's classes and images, and a Start training that would train on them, the
            # banner alone read as if nothing were open any more)
            # (the open one: self.folder is already the one being scanned, which is not open yet)
            still = f". Still open: {shown_path(self.index.root)}" if self.index is not None else ""
            self.banner.set_error(f"{folder}: {why}{still}")
            return
        self.load_folder(os.path.abspath(folder))

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        """The folder box shows the folder open once it is left (or on Escape): a path refused (no such folder)
        stayed in it after the banner had said so, above the open folder's images, as if it were the one open."""
        if obj is self.recent_combo.lineEdit() and self.folder:
            kind = event.type()
            escape = kind == QEvent.Type.KeyPress and event.key() == Qt.Key.Key_Escape
            kept = (Qt.FocusReason.PopupFocusReason, Qt.FocusReason.ActiveWindowFocusReason)  # (its list; Alt+Tab)
            left = kind == QEvent.Type.FocusOut and event.reason() not in kept
            if (escape or left) and self.recent_combo.currentText() != shown_path(self.folder):
                self._fill_recent(self.folder)
                return escape
        return super().eventFilter(obj, event)

    def _on_recent_activated(self, i: int) -> None:
        folder = self.recent_path(i)
        if folder and folder != self.folder:
            self._open_chosen(folder)  # (a folder gone since had closed the open data set)

    def _restore_settings(self) -> None:
        """Each value on its own: one not valid (hand-edited, another version's) keeps its field's default, and a
        number past its field's range is brought into it (past 32 bits setValue raised, and no window opened)."""
        s = settings()
        for key, spin in (
            ("data/val_percent", self.val_spin),
            ("data/test_percent", self.test_spin),
            ("data/seed", self.seed_spin),
            ("data/image_size", self.size_spin),
        ):
            spin.setValue(load_spin_setting(s, key, spin))
        level = str(s.value("data/augment", "standard"))
        self.augment_combo.setCurrentText(level if level in AUGMENT_LEVELS else "standard")
        self._flip_pref = str(s.value("data/hflip", "true")).lower() == "true"
        self._sync_flip()
        self._sync_strength_fields()
        self.jitter_spin.setValue(load_spin_setting(s, "data/color_jitter", self.jitter_spin, 0.0))
        self.erasing_spin.setValue(load_spin_setting(s, "data/random_erasing", self.erasing_spin, 0.0))
        self._fill_recent()

    def save_settings(self) -> None:
        s = settings()
        s.setValue("data/val_percent", self.val_spin.value())
        s.setValue("data/test_percent", self.test_spin.value())
        s.setValue("data/seed", self.seed_spin.value())
        s.setValue("data/image_size", self.size_spin.value())
        s.setValue("data/augment", self.augment_combo.currentText())
        s.setValue("data/hflip", "true" if self._flip_pref else "false")  # the choice, not the "none" override
        s.setValue("data/color_jitter", self.jitter_spin.value())
        s.setValue("data/random_erasing", self.erasing_spin.value())
