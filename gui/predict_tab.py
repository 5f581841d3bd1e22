"""Predict tab: choose a model, drop / paste / open images, see top-k (one image) or a live results table (many)."""

from __future__ import annotations

import os
import threading
from collections import deque
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QDragEnterEvent,
    QDragLeaveEvent,
    QDragMoveEvent,
    QDropEvent,
    QFont,
    QFontMetrics,
    QGuiApplication,
    QKeySequence,
    QPixmap,
    QShortcut,
    QShowEvent,
    QStandardItem,
    QStandardItemModel,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QStyle,
    QStyledItemDelegate,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from core.runs import file_stamp
from gui.app import settings
from gui.image_view import (
    DropHint,
    ImageView,
    ProbabilityBars,
    grey_outside,
    load_thumbnail,
    model_crop_box,
    pil_to_qimage,
)
from gui.widgets import (
    ERROR_COLOR,
    ColumnShare,
    ElidedComboBox,
    ElidedLabel,
    buddy_label,
    count_noun,
    dialog_dir,
    elide_middle,
    gone_checkpoint,
    load_json_setting,
    load_number_setting,
    load_spin_setting,
    natural_key,
    photo_icon,
    refused_output,
    remember_dir,
    screen_scale,
    sort_header,
    store_json_setting,
    with_suffix,
)
from gui.worker import FunctionWorker, connect_worker, error_text, start_worker

CHOOSE_FILE = "Choose checkpoint file…"
THUMB = 48
CLASSES_TITLE = "Most likely classes (click one for its Grad-CAM)"
CLICK_HINT = "Click: what in the image speaks for this class (its Grad-CAM)"
TOP_K = 5  # classes shown per image unless the user chooses
TOP_NAME = 24  # characters of a class name in the Top classes column (its tooltip has it whole)
DISPLAY_MAX = 2048  # px: the longest side of a picture (and its Grad-CAM) shown large; about a screen

# table columns
COL_THUMB, COL_FILE, COL_CLASS, COL_CONF, COL_TOPK = range(5)
HEADERS = ["", "File", "Predicted class", "Confidence", "Top classes"]
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
OK_ROLE = Qt.ItemDataRole.UserRole + 2
PATH_ROLE = Qt.ItemDataRole.UserRole + 3

ALL_RESULTS = "All results"
ERRORS_ONLY = "Problems only"  # files not read, folders without images ("Errors" read as wrong answers)

UNSEEN_NOTE = "The model sees only the outlined centre square; the greyed edges were cropped away before it looked."


class ModelLoadError(ValueError):
    """A checkpoint that could not be loaded as a model (gone, or a file that passed the quick look but is not one of
    ours); its message names the file."""


class PredictorCache:
    """Keeps the last Predictor so repeated predictions with one checkpoint load it once (used from workers)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[str, Any] | None = None
        self._predictor: Any = None

    def get(self, checkpoint: str) -> Any:
        """The Predictor of `checkpoint`, loaded again when the file was replaced (its inode, size or modification
        time: one copied in with its time kept, `cp -p` or `rsync -t`, was the old model by its time alone)."""
        from core.predict import Predictor

        stamp = file_stamp(checkpoint)
        if stamp is None:  # (a message for the user, not a FileNotFoundError without a reason, which read as a bug)
            raise ModelLoadError(f"{checkpoint}: {gone_checkpoint(checkpoint)}")
        key = (os.path.abspath(checkpoint), stamp)
        with self._lock:
            if self._key != key:
                try:
                    self._predictor = Predictor.from_checkpoint(checkpoint)
                except (ValueError, OSError) as e:  # CheckpointError / ModelError already name the file
                    raise ModelLoadError(error_text(e)) from e
                except Exception as e:  # noqa: BLE001 — e.g. torch.load failing on a truncated file
                    raise ModelLoadError(f"{checkpoint}: cannot load this checkpoint ({type(e).__name__}: {e})") from e
                self._key = key
            return self._predictor


class _ModelCombo(ElidedComboBox):
    """The model list. Stepped through with the arrow keys or the wheel, it does not open the file dialog on
    "Choose checkpoint file…" (a wheel turned over the tab's scrolling page opened it), and the wheel turns it only
    once it has the focus (a click or Tab)."""

    stepping = False  # an arrow key or the wheel is changing the item

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # (not WheelFocus: a turn of the wheel does not take it)

    def _step(self, handler: Any, event: Any) -> None:
        self.stepping = True
        try:
            handler(event)
        finally:
            self.stepping = False

    def keyPressEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        self._step(super().keyPressEvent, event)

    def wheelEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        if not self.hasFocus():
            event.ignore()  # the page under it scrolls
            return
        self._step(super().wheelEvent, event)


class _ElideRight(QStyledItemDelegate):
    """Cut a cell's text at its end ("star 24.5 %  triangle 2…"), not in its middle."""

    def initStyleOption(self, option: Any, index: Any) -> None:  # noqa: N802 - Qt override
        super().initStyleOption(option, index)
        option.textElideMode = Qt.TextElideMode.ElideRight


def image_filter() -> str:
    """The Open images… dialog's types: every extension the app reads (a list of its own left out .jfif, .jpe and
    .avif). Qt's dialog matches them in any case (PHOTO.JPG too)."""
    from core.data import IMAGE_EXTENSIONS  # (here: importing this module loads neither numpy nor PIL)

    return f"Images ({' '.join(f'*{e}' for e in sorted(IMAGE_EXTENSIONS))});;All files (*)"


def display_name(source: str, folders: list[str]) -> str:
    """How the table names a file: from the dropped folder that holds it ("trip/day 2/IMG_0001.jpg", so files of
    the same name in two sub-folders differ), else its own folder and name ("photos/cat.jpg")."""
    path = Path(os.path.abspath(source))
    for folder in folders:
        try:
            rel = path.relative_to(os.path.abspath(folder))
        except ValueError:
            continue
        return (Path(folder).name / rel).as_posix() if Path(folder).name else rel.as_posix()
    return path.name if not path.parent.name else f"{path.parent.name}/{path.name}"


def _common_folder(paths: list[Any]) -> list[str]:
    """[the folder above the files among `paths`] when two of them read alike named by their own folder alone
    ("cat/nested/002.png" and "dog/nested/002.png" were both "nested/002.png"), else []."""
    files = [os.path.abspath(p) for p in paths if isinstance(p, (str, Path)) and os.path.isfile(p)]
    short = [display_name(f, []) for f in files]
    if len(set(short)) == len(short):
        return []
    try:
        return [os.path.commonpath([os.path.dirname(f) for f in files])]
    except ValueError:  # (on two Windows drives)
        return []


def _iter_predictions(predictor: Any, files: list[str], top_k: int, stop: Any) -> Any:
    """Predictions one by one, in small batches so results appear while the rest is computed."""
    for pred in predictor.predict_iter(files, top_k=top_k, batch_size=16, stop=stop):
        if not pred.ok and pred.error == "cancelled" and getattr(stop, "stopped", False):
            return
        yield pred


def _predict_many(
    cache: PredictorCache,
    checkpoint: str,
    paths: list[str],
    top_k: int,
    out: deque,
    scale: float = 1.0,
    progress: Any = None,
    stop: Any = None,
) -> dict[str, Any]:
    """Worker: expand folders, then predict every image, pushing (prediction, thumbnail) onto `out` as they come
    (thumbnails at `scale` device px per logical px: widgets.screen_scale())."""
    from core.predict import expand_paths

    predictor = cache.get(checkpoint)
    ignored: list[str] = []
    overlays: list[str] = []
    files, problems = expand_paths(paths, ignored=ignored, overlays=overlays)
    total = len(files) + len(problems)
    for src, reason in problems:
        out.append(("pred", _error_prediction(str(src), str(reason)), None, None))
    done = len(problems)
    if progress:
        progress(done, total)
    for pred in _iter_predictions(predictor, files, top_k, stop):
        thumb = load_thumbnail(str(pred.source), THUMB, scale) if pred.ok else None
        out.append(("pred", pred, None, thumb))
        done += 1
        if progress:
            progress(done, total)
    names = list(predictor.class_names)
    return {"total": total, "done": done, "class_names": names, "ignored": ignored, "overlays": len(overlays)}


IGNORED_NAMED = 3  # files that are not images, named in the status line after a folder is classified (then "…")
IGNORED_TIP_MAX = 30  # and listed whole in its tooltip


def _ignored_words(ignored: list[str]) -> str:
    """ "; 1 other file ignored (not an image): notes.txt" for the status line ("" for none)."""
    if not ignored:
        return ""
    names = ", ".join(Path(p).name for p in ignored[:IGNORED_NAMED]) + (", …" if len(ignored) > IGNORED_NAMED else "")
    what = "not an image" if len(ignored) == 1 else "not images"
    return f"; {count_noun(len(ignored), 'other file')} ignored ({what}): {names}"


def _ignored_tip(ignored: list[str]) -> str | None:
    if not ignored:
        return None
    more = len(ignored) - IGNORED_TIP_MAX
    return (
        "Ignored, not images:\n" + "\n".join(ignored[:IGNORED_TIP_MAX]) + (f"\n… and {more} more" if more > 0 else "")
    )


def _error_prediction(source: str, reason: str) -> Any:
    """A Prediction for an input that never reached the model (not an image, missing, unreadable)."""
    from core.predict import Prediction

    return Prediction(source=source, ok=False, error=reason, top=[], label=None, confidence=None, index=None)


def _predict_one(
    cache: PredictorCache, checkpoint: str, item: Any, top_k: int, name: str, progress: Any = None, stop: Any = None
) -> dict[str, Any]:
    """Worker: predict one image (path or PIL image) and compute its Grad-CAM overlay.

    The model sees only a centre square of the image; the overlay shows the rest in grey (`seen` is the square), so
    margins it never saw do not look like regions of low attention (the colour map's blue)."""
    predictor = cache.get(checkpoint)
    pred = predictor.predict([item], top_k=top_k)[0]
    result: dict[str, Any] = {"pred": pred, "name": name, "image": None, "cam": None, "cam_error": None, "seen": None}
    result["top_k"], result["pasted"] = top_k, not isinstance(item, (str, Path))
    result["item"], result["checkpoint"], result["cam_class"] = item, checkpoint, pred.label
    result["classes"] = len(predictor.class_names)
    if not pred.ok:
        return result
    img = display_copy(item)
    result["image"] = pil_to_qimage(img)
    result.update(cam_overlay(predictor, item, img, pred.index))
    return result


def display_copy(item: Any) -> Any:
    """Item's picture for the view: at most DISPLAY_MAX px on a side (a JPEG decoded at a reduced scale). A
    95-megapixel photo was shown from a full-size copy and overlay: 3.9 GB, and the window stalled 2 s."""
    from core.data import fit_within, load_image

    return fit_within(load_image(item, draft=DISPLAY_MAX), DISPLAY_MAX)


def cam_overlay(predictor: Any, item: Any, img: Any, class_index: int | None) -> dict[str, Any]:
    """The Grad-CAM overlay of `class_index` on `img` (item's picture as shown): {"cam", "seen", "cam_error"}."""
    try:
        cam = predictor.gradcam(item, class_index=class_index, max_side=max(img.size))
        overlay = cam.overlay
        if overlay.size != img.size:
            overlay = overlay.resize(img.size)
        seen = model_crop_box(img.size, predictor.image_size)
        if seen != (0, 0, *img.size):
            overlay = grey_outside(overlay, img, seen)
        return {"cam": pil_to_qimage(overlay), "seen": seen if seen != (0, 0, *img.size) else None, "cam_error": None}
    except Exception as e:  # noqa: BLE001 — the prediction stands; the overlay is optional
        return {"cam": None, "seen": None, "cam_error": f"Grad-CAM unavailable: {e}"}


def _cam_of_class(cache: PredictorCache, checkpoint: str, item: Any, name: str, progress: Any = None, stop: Any = None):
    """Worker: the Grad-CAM overlay of class `name` for one image (a bar clicked), with "cam_class"."""
    predictor = cache.get(checkpoint)
    img = display_copy(item)
    return {**cam_overlay(predictor, item, img, predictor.class_names.index(name)), "cam_class": name}


class _ResultsFilter(QSortFilterProxyModel):
    """Text filter on file and class, plus a mode: all rows, error rows only, or one predicted class."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._text = ""
        self._mode = ALL_RESULTS
        self.setSortRole(SORT_ROLE)
        self.setDynamicSortFilter(True)

    def set_text(self, text: str) -> None:
        self._change_filter(lambda: setattr(self, "_text", text.strip().lower()))

    def set_mode(self, mode: str) -> None:
        self._change_filter(lambda: setattr(self, "_mode", mode))

    def _change_filter(self, change: Any) -> None:
        if hasattr(self, "beginFilterChange"):  # Qt ≥ 6.9; invalidateFilter is deprecated there
            self.beginFilterChange()
            change()
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            change()
            self.invalidateFilter()

    def filterAcceptsRow(self, row: int, parent: QModelIndex | QPersistentModelIndex) -> bool:  # noqa: N802
        model = self.sourceModel()
        ok = model.index(row, COL_FILE, parent).data(OK_ROLE)
        cls = model.index(row, COL_CLASS, parent).data() or ""
        if self._mode == ERRORS_ONLY and ok:
            return False
        if self._mode not in (ALL_RESULTS, ERRORS_ONLY) and (not ok or cls != self._mode):
            return False
        if self._text:
            path = model.index(row, COL_FILE, parent).data(PATH_ROLE) or ""
            return self._text in path.lower() or self._text in cls.lower()
        return True


class PredictTab(QWidget):
    """Classify images with a trained model: drop, paste or open them; results fill in live."""

    predictions_finished = Signal(int)  # number of results in the table / 1 for a single image

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self._runs_dir: str | None = None
        self._data_folder: str | None = None  # the Dataset tab's folder: the first model is one trained on it
        self._model_chosen = False  # the user (or another tab) chose the model: it is not changed for them
        self._cache = PredictorCache()
        self._queue: deque = deque()
        self._worker: FunctionWorker | None = None
        self._running: str | None = None  # the running job's kind ("one", "many")
        # its answers are not shown: the job was replaced (by another, or results cleared for another tab's model)
        self._discarded = False
        self._pending: tuple[str, Any] | None = None
        # model files just chosen, loading to be sure they are models: path -> [the model before it (one that was
        # no file being checked), classify again once loaded?, loaded?]
        self._checking: dict[str, list] = {}
        self._results: list[Any] = []  # Prediction objects (and error stand-ins) in arrival order
        self._status: tuple[str, bool] = ("", False)  # the status line and whether it is an error
        self._list_status: tuple[str, bool] | None = None  # the list's, while one of its rows is open large
        self._dropped_folders: list[str] = []  # of the table's job
        self._name_roots: list[str] = []  # its rows are named from these (_common_folder)
        self._single: dict[str, Any] | None = None
        self._classes_seen: set[str] = set()
        self._prev_combo_index = -1
        self._image_name = "Image"
        self._reselect: str | None = None  # the file whose row is made current again as a re-run's rows come in
        # what the table and the single view show: (kind, item, from_list, checkpoint, top_k, the checkpoint's
        # file_stamp) of the job that made it
        self._jobs: dict[str, tuple] = {}
        self._classes_of: dict[str, int] = {}  # model files loaded here -> how many classes they know (for Top-k)
        self._build()
        self.refresh_models()

    # ------------------------------------------------------------------ layout

    def _build(self) -> None:
        top = QHBoxLayout()
        self.model_combo = _ModelCombo()
        top.addWidget(buddy_label("&Model:", self.model_combo))
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_combo.setMinimumContentsLength(24)  # the whole name is its tooltip and in the list
        self.model_combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.model_combo.activated.connect(self._on_model_activated)
        self.model_combo.currentIndexChanged.connect(self._fit_topk_to_run)
        top.addWidget(self.model_combo, 1)
        top.addSpacing(8)
        self.topk_spin = QSpinBox()
        top.addWidget(buddy_label("Top-&k:", self.topk_spin))
        self.topk_spin.setRange(1, 20)
        self.topk_spin.setValue(TOP_K)  # (a saved value past the box's range raised OverflowError, and no tab showed)
        self.topk_spin.setValue(load_spin_setting(settings(), "predict/top_k", self.topk_spin))
        self.topk_spin.valueChanged.connect(lambda v: store_json_setting(settings(), "predict/top_k", v))
        self.topk_spin.setToolTip("How many of the most likely classes to show per image")
        top.addWidget(self.topk_spin)
        self._rerun_timer = QTimer(self)  # a few spin-box clicks make one new run, not one each
        self._rerun_timer.setSingleShot(True)
        self._rerun_timer.setInterval(400)
        self._rerun_timer.timeout.connect(self._rerun_if_stale)
        self.topk_spin.valueChanged.connect(lambda _v: self._rerun_timer.start())
        top.addSpacing(8)
        self.open_button = QPushButton("Open images…")
        self.open_button.setToolTip("Choose image files to classify")
        self.open_button.clicked.connect(self._open_images)
        self.folder_button = QPushButton("Open folder…")
        self.folder_button.setToolTip("Classify every image in a folder and its sub-folders")
        self.folder_button.clicked.connect(self._open_folder)
        self.paste_button = QPushButton("Paste")
        self.paste_button.setToolTip("Classify the image on the clipboard (Ctrl+V)")
        self.paste_button.clicked.connect(self.paste)
        self.export_button = QPushButton("Export CSV…")
        self.export_button.setEnabled(False)
        self.export_button.setToolTip("Save the predictions shown as a CSV file")
        self.export_button.clicked.connect(self._export_csv)
        for b in (self.open_button, self.folder_button, self.paste_button, self.export_button):
            top.addWidget(b)

        self.stack = QStackedWidget()
        self.drop_hint = DropHint(
            "Drop images or folders here",
            "…or use Open images / Open folder, or paste an image with Ctrl+V.\n"
            "One image is shown large with its top classes and a Grad-CAM heat map; "
            "many images fill a table you can sort, filter and export.",
        )
        self.stack.addWidget(self.drop_hint)
        self.stack.addWidget(self._build_single())
        self.stack.addWidget(self._build_table())
        self.stack.currentChanged.connect(lambda _i: self._update_export())

        bottom = QHBoxLayout()
        self.status_label = QLabel("")
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        # wrapped: a refused model file's message ends with the model still in use and what to do (it was cut)
        self.status_label.setWordWrap(True)
        bottom.addWidget(self.status_label, 1)
        self.progress = QProgressBar()
        self.progress.setFixedWidth(260)
        self.progress.setFormat("%v / %m")
        self.progress.setVisible(False)
        bottom.addWidget(self.progress)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop classifying; the rows done so far stay")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.cancel)
        bottom.addWidget(self.cancel_button)

        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.stack, 1)
        lay.addLayout(bottom)

        paste = QShortcut(QKeySequence.StandardKey.Paste, self)
        paste.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        paste.activated.connect(self.paste)
        for field in (self.topk_spin, self.filter_edit):  # (they took Ctrl+V for their text: nothing classified)
            field.installEventFilter(self)

    def eventFilter(self, obj: Any, event: Any) -> bool:  # noqa: N802 - Qt override
        """Ctrl+V in Top-k or the filter field classifies an image or files on the clipboard, as everywhere else on
        the tab; text (a file name to filter by, a number) still pastes into the field."""
        if (
            event.type() == QEvent.Type.ShortcutOverride
            and event.matches(QKeySequence.StandardKey.Paste)
            and obj in (self.topk_spin, self.filter_edit)
        ):
            mime = QGuiApplication.clipboard().mimeData()
            files = mime is not None and mime.hasUrls() and any(u.isLocalFile() for u in mime.urls())
            if mime is not None and (mime.hasImage() or files):
                return True  # not taken by the field: the tab's Ctrl+V runs
        return super().eventFilter(obj, event)

    def keyPressEvent(self, event: Any) -> None:  # noqa: N802
        if event.key() == Qt.Key.Key_Escape and self.stack.currentIndex() == 1 and self.back_button.isVisibleTo(self):
            self._back()  # Esc, from a row opened large: back to the list
            return
        super().keyPressEvent(event)

    def _back(self) -> None:
        """From a row opened large back to the list, on the row that was opened, with the list's status line."""
        self.stack.setCurrentIndex(2)
        if self._list_status is not None:
            self._set_status(*self._list_status)
        self._rerun_if_stale()
        self.table.setFocus()

    def _build_single(self) -> QWidget:
        split = QSplitter(Qt.Orientation.Horizontal)
        self.image_view = ImageView("")
        self.image_view.setAccessibleName("Image classified")
        split.addWidget(self.image_view)
        side = QWidget()
        side.setMinimumWidth(300)
        v = QVBoxLayout(side)
        self.back_button = QPushButton("← Back to the list")
        self.back_button.clicked.connect(self._back)
        self.back_button.setToolTip("Back to the list (Esc)")
        self.back_button.setVisible(False)
        v.addWidget(self.back_button, 0, Qt.AlignmentFlag.AlignLeft)
        # long paths and class names are cut in the middle (a file's name and a class name's end often tell it
        # apart), shown whole in the tooltip; text() is the whole text
        self.file_label = ElidedLabel("", path=True)
        self.file_label.setStyleSheet("QLabel { color: palette(placeholder-text); }")
        v.addWidget(self.file_label)
        self.class_label = ElidedLabel("")
        self.class_label.setObjectName("predictedClass")  # large and bold: style.qss (a setFont loses to the QSS)
        v.addWidget(self.class_label)
        self.conf_label = QLabel("")
        self.conf_label.setWordWrap(True)  # an unreadable file's reason can be long
        v.addWidget(self.conf_label)
        line = QFrame()
        line.setFrameShape(QFrame.Shape.HLine)
        line.setFrameShadow(QFrame.Shadow.Sunken)
        v.addWidget(line)
        self.top_title = QLabel(CLASSES_TITLE)
        self.top_title.setWordWrap(True)  # (the side pane may be 300 px: at 150 % it was cut, "…for its Grad-CA")
        v.addWidget(self.top_title)
        self.bars = ProbabilityBars()
        self.bars.setAccessibleName("Most likely classes (arrow keys; Enter: its Grad-CAM)")
        self.bars.click_hint = CLICK_HINT
        self.bars.clicked.connect(self.show_cam_of)
        self._cam_worker: FunctionWorker | None = None
        v.addWidget(self.bars)
        self.cam_check = QCheckBox("Show Grad-CAM overlay")
        # on at first, as in Evaluate (the overlay is computed with every single prediction); then as left
        self.cam_check.setChecked(bool(load_json_setting(settings(), "predict/cam", True)))
        self.cam_check.toggled.connect(lambda on: store_json_setting(settings(), "predict/cam", on))
        self.cam_check.setToolTip("Highlights the image regions that drove the predicted class")
        self.cam_check.toggled.connect(self._show_single_image)
        v.addWidget(self.cam_check)
        self.cam_note = QLabel("")
        self.cam_note.setWordWrap(True)
        self.cam_note.setStyleSheet("QLabel { color: palette(placeholder-text); }")
        v.addWidget(self.cam_note)
        v.addStretch(1)
        # the pane scrolls by itself (20 bars ran over the check box, or the whole tab scrolled the image away)
        pane = QScrollArea()
        pane.setWidget(side)
        pane.setWidgetResizable(True)
        pane.setFrameShape(QFrame.Shape.NoFrame)
        pane.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        pane.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # (Tab stopped on it, unnamed and unmarked; it follows the focus)
        pane.setMinimumWidth(side.minimumWidth())
        split.addWidget(pane)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        split.setSizes([700, 340])
        return split

    def _build_table(self) -> QWidget:
        page = QWidget()
        v = QVBoxLayout(page)
        v.setContentsMargins(0, 0, 0, 0)
        bar = QHBoxLayout()
        self.filter_edit = QLineEdit()
        self.filter_edit.setAccessibleName("Filter the results")
        self.filter_edit.setPlaceholderText("Filter by file name or class…")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.setAcceptDrops(False)
        bar.addWidget(self.filter_edit, 1)
        bar.addWidget(QLabel("Show:"))
        self.mode_combo = QComboBox()
        self.mode_combo.addItems([ALL_RESULTS, ERRORS_ONLY])
        self.mode_combo.setMinimumContentsLength(14)
        bar.addWidget(self.mode_combo)
        self.count_label = QLabel("")
        bar.addWidget(self.count_label)
        v.addLayout(bar)

        self.model = QStandardItemModel(0, len(HEADERS), self)
        self.model.setHorizontalHeaderLabels(HEADERS)
        self.proxy = _ResultsFilter(self)
        self.proxy.setSourceModel(self.model)
        self.filter_edit.textChanged.connect(self._on_filter_changed)
        self.mode_combo.currentTextChanged.connect(self._on_filter_changed)

        self.table = QTableView()
        sort_header(self.table)
        self.table.setAccessibleName("Results, one row per image")
        self.table.setTabKeyNavigation(False)  # Tab leaves the table; arrows move in it
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setIconSize(QPixmap(THUMB, THUMB).size())
        self.table.verticalHeader().setDefaultSectionSize(THUMB + 6)
        self.table.verticalHeader().setVisible(False)
        h = self.table.horizontalHeader()
        h.setSectionResizeMode(COL_THUMB, QHeaderView.ResizeMode.Fixed)
        h.resizeSection(COL_THUMB, THUMB + 12)
        # at least their bold titles and a sort arrow wide: at 14 pt 160 and 120 px read "redicted clas", "Confiden"
        bold = QFont(h.font())
        bold.setBold(True)
        titles = QFontMetrics(bold)
        for col, least in ((COL_FILE, 320), (COL_CLASS, 160), (COL_CONF, 120)):
            title = str(self.model.headerData(col, Qt.Orientation.Horizontal) or "")
            h.resizeSection(col, max(least, titles.horizontalAdvance(title) + 36))
        self._columns = ColumnShare(self.table, COL_FILE, COL_TOPK)  # short names leave the ranking room
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # file paths keep their start and their name
        self.table.setItemDelegateForColumn(COL_TOPK, _ElideRight(self.table))  # a ranking keeps its first classes
        self.table.activated.connect(self._on_row_activated)  # a double-click, or Return on the selected row
        self.table.setToolTip("Double-click a row (or press Return) to see the image large with its Grad-CAM")
        v.addWidget(self.table, 1)
        return page

    # ------------------------------------------------------------------ models

    def set_runs_dir(self, path: str | os.PathLike) -> None:
        self._runs_dir = str(path)
        self.refresh_models()

    def _store(self) -> Any:
        from core.runs import RunStore

        return RunStore(self._runs_dir) if self._runs_dir else RunStore()

    def set_data_folder(self, folder: str | None) -> None:
        """The data set open in the Dataset tab. Until a model is chosen, the model is the newest run trained on
        it (the newest run of all was often another data set's: every photo came back as star or triangle)."""
        self._data_folder = folder
        if not self._model_chosen and not self._jobs and self._worker is None:
            self.refresh_models()

    def new_run_trained(self, run_dir: str) -> None:
        """A run just trained on the open data set is the model from now on, unless the user chose one here: the
        model of earlier answers stayed (a shapes image came back "leaf 79.7%" from the last data set's model, the
        new run only listed). What is on screen is classified again with it, so no answer sits beside another
        model's name."""
        best = Path(run_dir) / "best.pt"
        if self._model_chosen or self._worker is not None or not best.is_file():
            return
        before = self.checkpoint()
        self.refresh_models(keep=False)
        if self.checkpoint() != str(best):  # (a resumed run of another folder than the one open: nothing changes)
            idx = self.model_combo.findData(before) if before else -1
            if idx >= 0:
                self.model_combo.setCurrentIndex(idx)
                self._prev_combo_index = idx
            return
        self._set_status(f"Model: {best.parent.name}, the run just trained")
        # (the same run trained further: its best.pt may hold new weights under the same name)
        self._rerun_if_stale(force=before == str(best))

    def _default_model_index(self, runs: list[Any]) -> int:
        """The newest run trained on the open data folder, else the newest run (runs are listed newest first)."""
        if self._data_folder:
            want = os.path.normcase(os.path.realpath(self._data_folder))
            for i, r in enumerate(runs):
                if r.data_root and os.path.normcase(os.path.realpath(r.data_root)) == want:
                    return i
        return 0

    def refresh_models(self, keep: bool = True) -> None:
        """Re-read the runs folder into the model combo, keeping the chosen model (until one is chosen, or with
        keep=False: the newest run trained on the open data set, else the newest run)."""
        current = self.checkpoint() if keep and (self._model_chosen or self._jobs) else None  # (results: their model)
        extra = [
            self.model_combo.itemData(i)
            for i in range(self.model_combo.count())
            if self.model_combo.itemText(i).startswith("File: ")
        ]
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        try:
            runs = [r for r in self._store().list() if r.has_best]
        except OSError:
            runs = []
        for r in runs:
            # the accuracy first: a narrow window cuts the end of the text, and the run name's date is long
            acc = "" if r.best_val_acc is None else f"val acc {r.best_val_acc:.1%}  ·  "
            # a run that did not finish says so: its model is from fewer epochs than one beside it that did
            how = (
                "" if r.status == "completed" else f"{r.status}, {r.epochs_done}/{r.epochs_planned or '?'} epochs  ·  "
            )
            self.model_combo.addItem(f"{acc}{how}{r.name}", str(Path(r.path) / "best.pt"))
            self.model_combo.setItemData(
                self.model_combo.count() - 1, str(Path(r.path) / "best.pt"), Qt.ItemDataRole.ToolTipRole
            )
        for path in extra:
            self._add_file_item(path)
        if self.model_combo.count() == 0:
            self.model_combo.addItem("No trained model yet: train one, or choose a file", None)
        self.model_combo.addItem(CHOOSE_FILE, None)
        idx = self.model_combo.findData(current) if current else -1
        self.model_combo.setCurrentIndex(idx if idx >= 0 else self._default_model_index(runs))
        self._prev_combo_index = self.model_combo.currentIndex()
        self.model_combo.blockSignals(False)
        self._fit_topk_to_run()  # (the model chosen with the signals blocked: 5 of a 4-class model was shown)

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802
        super().showEvent(event)
        if self._worker is None:
            self.refresh_models()  # runs finished since the last visit appear in the list
            self._rerun_if_stale(replaced_only=True)  # (its model file replaced meanwhile)

    def event(self, event: QEvent) -> bool:
        # the window is come back to (from a terminal that trained the run on): WindowActivate reaches every widget
        # in it (ActivationChange only the window itself)
        if event.type() == QEvent.Type.WindowActivate and self.isVisible() and self._worker is None:
            self._rerun_if_stale(replaced_only=True)
        return super().event(event)

    def _add_file_item(self, path: str) -> int:
        idx = self.model_combo.findData(path)
        if idx >= 0:
            return idx
        pos = (
            max(0, self.model_combo.count() - 1)
            if self.model_combo.findText(CHOOSE_FILE) >= 0
            else self.model_combo.count()
        )
        self.model_combo.insertItem(pos, f"File: {path}", path)
        self.model_combo.setItemData(pos, path, Qt.ItemDataRole.ToolTipRole)
        placeholder = self.model_combo.findText("No trained model yet", Qt.MatchFlag.MatchStartsWith)
        if placeholder >= 0:
            self.model_combo.removeItem(placeholder)
        return self.model_combo.findData(path)

    def forget_runs(self, paths: list) -> None:
        """Deleted run folders leave the model list (a "File:" entry for one of their checkpoints too)."""
        gone = [Path(p) for p in paths]
        chosen = self.checkpoint()
        lost = chosen is not None and any(Path(chosen).parent == g for g in gone)
        for i in reversed(range(self.model_combo.count())):
            data = self.model_combo.itemData(i)
            if data and any(Path(str(data)).parent == g for g in gone):
                self.model_combo.removeItem(i)
        shown = self._jobs.get({1: "one", 2: "many"}.get(self.stack.currentIndex(), ""))
        shown_lost = shown is not None and any(Path(shown[3]).parent == g for g in gone)
        if lost:  # the model in use was deleted: choose as at start-up (the newest run on the open data set), not
            self._model_chosen = False  # whichever run slid into its place in the list (another data set's)
        self.refresh_models(keep=not lost)  # never leaves the list without a model or its placeholder
        self._prev_combo_index = self.model_combo.currentIndex()
        if self.checkpoint():
            now = f"the model is now {self._model_name()}"
            then = "Drop images or folders to classify them."
        else:  # ("the model is now none chosen. Drop images…", which then asked for a model first)
            now, then = "no other model is there", "Choose a model file (or train one) to classify images."
        if shown_lost:
            self._clear_results(f"The model of these results was deleted; {now}. {then}")
        elif lost:  # (the line under the drop area named the deleted file)
            self._set_status(f"The model was deleted; {now}." + ("" if self.checkpoint() else f" {then}"))

    def _model_name(self) -> str:
        """The chosen model in words: its run folder's name, or the path of a file chosen as one (the list's text,
        "val acc 26.7%  ·  20261129-…", read oddly inside a sentence)."""
        chosen = self.checkpoint() or ""
        return chosen if self.model_combo.currentText().startswith("File: ") else Path(chosen).parent.name

    def checkpoint(self) -> str | None:
        """The checkpoint file predictions use, or None when none is chosen."""
        data = self.model_combo.currentData()
        return str(data) if data else None

    def set_checkpoint(self, path: str, rerun: bool = False) -> None:
        """Use this checkpoint file (adds it to the model list if it is not a listed run's best.pt).

        Results of another model on screen are classified again when the user chose the model here (rerun=True);
        when another tab sets it ("Predict with this model"), they are cleared instead: a large table is not
        re-classified behind the user's back, and no answer of the old model stays next to the new name. A file that
        cannot be a checkpoint, told from its first bytes, is refused in red and not listed: the model before stays."""
        from core.runs import not_a_checkpoint

        path = str(path)
        if refused := not_a_checkpoint(path):  # (told from its first bytes: a TorchScript export, an ONNX model, junk)
            # not listed: it stayed in the list as "File: …", chosen, and every drop after failed on it again
            self.model_combo.setCurrentIndex(max(0, self._prev_combo_index))  # the model before it (not "Choose…")
            self._refused_model(refused, self.checkpoint())  # (which model is in use, as a later refusal says)
            return
        self._model_chosen = True
        # the model before it: the one chosen, or, when it comes from "Choose checkpoint file…", the one before that
        dialog = self.model_combo.currentText() == CHOOSE_FILE
        before = self.model_combo.itemData(self._prev_combo_index) if dialog else self.checkpoint()
        if self._worker is None:
            self.refresh_models()  # a run trained since the last visit gets its name, not a "File:" entry
        idx = self.model_combo.findData(path)
        if idx < 0:
            idx = self._add_file_item(path)
        self.model_combo.setCurrentIndex(idx)
        self._prev_combo_index = idx
        self._set_status(f"Model: {path}")
        shown = self.stack.currentIndex() in (1, 2) or self._worker is not None  # (a first image still running)
        if not rerun and shown and any(job[3] != path for job in self._jobs.values()):
            self._clear_results(f"Model: {path}. Drop images or folders to classify them.")
        if self.model_combo.itemText(idx).startswith("File: "):
            if before in self._checking:  # (chosen while another file loads: the model before that one)
                before = self._checking[before][0]
            self._check_model_file(path, before if before != path else None, rerun)
        elif rerun:
            self._rerun_if_stale()

    def _check_model_file(self, path: str, before: str | None, rerun: bool) -> None:
        """Load a model file chosen here before anything is classified with it. A file that passes the quick look
        but is no model of ours (another program's torch.save) stayed listed, chosen, until a drop failed on it, and
        every drop after failed again. Drops meanwhile wait for it (and the model is loaded once for them)."""
        if path in self._checking:  # (chosen again while it loads: that load answers)
            self._checking[path][1] = self._checking[path][1] or rerun
            return
        self._checking[path] = [before, rerun, False]
        worker = FunctionWorker(self._cache.get, path)
        connect_worker(
            worker,
            self,
            result=lambda predictor: self._model_file_loaded(path, predictor),
            failed=lambda message: self._model_file_refused(path, message),
            finished=lambda: self._model_file_checked(path),
        )
        start_worker(worker, self)

    def _model_file_loaded(self, path: str, predictor: Any) -> None:
        if path in self._checking:
            self._checking[path][2] = True
        self._classes_of[path] = len(predictor.class_names)
        if self.checkpoint() == path:  # (not when another model was chosen meanwhile: top-k is that one's)
            self._fit_topk(len(predictor.class_names))

    def _model_file_refused(self, path: str, message: str) -> None:
        """Not a model: off the list, and the model before it is chosen again; nothing is classified with it."""
        if path not in self._checking:
            return
        before, chosen = self._checking[path][0], self.checkpoint() == path
        idx = self.model_combo.findData(path)
        if idx >= 0:
            self.model_combo.removeItem(idx)
        if not chosen:  # (another model was chosen while it loaded: that one stays)
            self._prev_combo_index = self.model_combo.findData(self.checkpoint())
            said, error = self._status  # (another file's refusal just said stays, this one after it)
            self._set_status(
                f"{said + ' ' if error else ''}{message.rstrip('.')}. It is off the model list.", error=True
            )
            return
        back = self.model_combo.findData(before) if before else -1
        if back < 0:
            self._model_chosen = False  # as at start-up: the newest run on the open data set, if any
            self.refresh_models(keep=False)
            back = self.model_combo.currentIndex()
        self.model_combo.setCurrentIndex(back)
        self._prev_combo_index = back
        waited = self._pending is not None and self._worker is None  # (a drop made while it loaded)
        if waited:
            self._pending = None
        self._refused_model(message, before, " The images dropped meanwhile were not classified." if waited else "")

    def _refused_model(self, message: str, before: str | None, more: str = "") -> None:
        """A model file refused, said in red with the model in use now (the one `before` it, or another)."""
        name = self._model_name() if self.checkpoint() else None
        still = (
            f"the model is {'still' if self.checkpoint() == before else 'now'} {name}" if name else "no model is chosen"
        )
        self._set_status(f"{message.rstrip('.')}. Not taken as the model: {still}.{more}", error=True)

    def _model_file_checked(self, path: str) -> None:
        """The check has ended (this runs after its result): what waited for it starts. Busy until then: between
        the two, a test that waited for the tab to be idle found it idle with a drop not yet started."""
        _, rerun, loaded = self._checking.pop(path, [None, False, False])
        if rerun and loaded and self.checkpoint() == path:  # what is on screen, with this model (a drop made
            self._rerun_if_stale()  # meanwhile is newer: it goes instead)
        if self._worker is None and self.checkpoint() not in self._checking:
            self._show_idle()
            self._start_pending()

    def _clear_results(self, status: str) -> None:
        """Back to the drop page: the answers shown (and any job still running) are dropped."""
        self._discarded = self._worker is not None  # (its rows, coming in still, filled the cleared table again)
        self.cancel()
        self._jobs.clear()
        self._reset_table()
        self._single = None
        self.stack.setCurrentIndex(0)
        self._set_status(status)

    def _on_model_activated(self, index: int) -> None:
        stepping = self.model_combo.stepping
        if self.model_combo.itemText(index) != CHOOSE_FILE:
            self._model_chosen = True
            self._prev_combo_index = index
            if stepping:  # (each model passed on the way classified the images again)
                self._rerun_timer.start()
            else:
                self._rerun_if_stale()
            return
        if stepping:  # the dialog opens from the list only (a click, or Alt+Down and Enter)
            self.model_combo.setCurrentIndex(max(0, self._prev_combo_index))
            return
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Choose a checkpoint",
            str(self._runs_dir or dialog_dir("checkpoints")),
            "Checkpoints (*.pt *.pth);;All files (*)",
        )
        if path:
            self.set_checkpoint(path, rerun=True)
        else:
            self.model_combo.setCurrentIndex(max(0, self._prev_combo_index))

    # ------------------------------------------------------------------ input

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        mime = event.mimeData()
        if (mime.hasUrls() and any(u.isLocalFile() for u in mime.urls())) or mime.hasImage():
            event.acceptProposedAction()
            self.drop_hint.set_active(True)
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:  # noqa: N802
        event.acceptProposedAction()

    def dragLeaveEvent(self, event: QDragLeaveEvent) -> None:  # noqa: N802
        self.drop_hint.set_active(False)

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        self.drop_hint.set_active(False)
        mime = event.mimeData()
        paths = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()] if mime.hasUrls() else []
        if paths:
            event.acceptProposedAction()
            self.predict_paths(paths)
        elif mime.hasImage():  # (dragged from a web browser: the picture, with a web address that is no file)
            event.acceptProposedAction()
            self._predict_qimage(mime.imageData(), "Dropped image")  # (it was called "Pasted image")
        else:
            event.ignore()

    def paste(self) -> None:
        """Classify the clipboard's image (or the files it holds)."""
        mime = QGuiApplication.clipboard().mimeData()
        if mime is not None and mime.hasImage():
            self._predict_qimage(mime.imageData())
        elif mime is not None and mime.hasUrls() and any(u.isLocalFile() for u in mime.urls()):
            self.predict_paths([u.toLocalFile() for u in mime.urls() if u.isLocalFile()])
        else:
            self._set_status(
                "The clipboard holds no image. Copy an image (or image files) and press Ctrl+V.", error=True
            )

    def _predict_qimage(self, qimg: Any, name: str = "Pasted image") -> None:
        """Classify an image given as picture data, named `name` in the view, the status line and the CSV."""
        from gui.image_view import qimage_to_pil

        if qimg is None or qimg.isNull():
            empty = "The clipboard image is empty." if name == "Pasted image" else f"The {name.lower()} is empty."
            self._set_status(empty, error=True)
            return
        self.predict_image(qimage_to_pil(qimg), name)

    def _open_images(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self, "Open images", dialog_dir("images", near=self._data_folder), image_filter()
        )
        if files:
            remember_dir("images", files[0])
            self.predict_paths(files)

    def _open_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Open a folder of images", dialog_dir("images", near=self._data_folder)
        )
        if folder:
            remember_dir("images", os.path.dirname(folder.rstrip("/\\")) or folder)
            self.predict_paths([folder])

    # ------------------------------------------------------------------ running

    def is_busy(self) -> bool:
        return self._worker is not None or bool(self._checking)

    def predict_paths(self, paths: list[str]) -> None:
        """Classify files and/or folders: one file → large view with Grad-CAM; otherwise → the results table."""
        paths = [str(p) for p in paths if str(p)]
        if not paths:
            return
        if len(paths) == 1 and os.path.isfile(paths[0]):
            self._start("one", paths[0])
        else:
            self._start("many", paths)

    def predict_image(self, image: Any, name: str = "Image") -> None:
        """Classify a PIL image (e.g. from the clipboard) in the large view."""
        self._image_name = name
        self._start("one", image)

    def cancel(self) -> None:
        waited, self._pending = self._pending, None
        if self._worker is not None:
            self._worker.cancel()
            self.cancel_button.setEnabled(False)
            self._set_status("Cancelling…")
        elif waited is not None:  # (waiting for a model file to load)
            self._show_idle()
            self._set_status("Cancelled: nothing was classified.")

    def _show_idle(self) -> None:
        self.progress.setVisible(False)
        self.cancel_button.setVisible(False)

    def _start(self, kind: str, item: Any, from_list: bool = False) -> None:
        checkpoint = self.checkpoint()
        if not checkpoint:
            self._set_status(
                "Choose a model first: train one in the Train tab, or pick “Choose checkpoint file…”.", error=True
            )
            return
        if self._worker is not None or checkpoint in self._checking:  # after the current job (or the model's check)
            self._pending = (kind, item, from_list)
            if self._worker is not None:
                # what it answers is replaced by this job, unless this is a row opened from the list it fills (the
                # rows done stay): the answer of a model no longer chosen showed under its name
                self._discarded = self._discarded or not (self._running == "many" and kind == "one" and from_list)
                self._worker.cancel()
            else:  # (the model file is loading: the drop shows it is taken, and can be cancelled)
                self.progress.setRange(0, 0)
                self.progress.setVisible(True)
                self.cancel_button.setVisible(True)
                self.cancel_button.setEnabled(True)
                self._set_status(f"Loading the model {Path(checkpoint).name}…")
            return
        top_k = self.topk_spin.value()
        if kind == "one" and not from_list and "many" in self._jobs:
            # a new image, not a row of the list: the list is another job's, so no Back or Export refers to it
            self._jobs.pop("many")
            self._reset_table()
            if self.stack.currentIndex() == 2:
                self.stack.setCurrentIndex(0)
        self._reselect = self._row_to_keep(item) if kind == "many" else None
        self._jobs[kind] = (kind, item, from_list, checkpoint, top_k, file_stamp(checkpoint))
        if kind == "many":
            self._reset_table()
            self._dropped_folders = [str(p) for p in item if isinstance(p, (str, Path)) and Path(p).is_dir()]
            self._name_roots = self._dropped_folders + _common_folder(item)
            self.stack.setCurrentIndex(2)
            worker = FunctionWorker(
                _predict_many, self._cache, checkpoint, list(item), top_k, self._queue, screen_scale()
            )
            worker.progress.connect(self._on_many_progress)
            worker.result.connect(self._on_many_done)
            self.progress.setRange(0, 0)
            self._set_status(f"Predicting with {Path(checkpoint).parent.name}/{Path(checkpoint).name}…")
        else:
            name = item if isinstance(item, str) else self._image_name
            worker = FunctionWorker(_predict_one, self._cache, checkpoint, item, top_k, name)
            worker.result.connect(self._on_one_done)
            self.back_button.setVisible(from_list)
            if from_list and self.stack.currentIndex() == 2:
                self._list_status = self._status  # (_back shows it again)
            self.progress.setRange(0, 0)
            self._set_status("Predicting…")
        worker.failed.connect(self._on_failed)
        worker.finished.connect(self._on_finished)
        self._worker, self._running, self._discarded = worker, kind, False
        self.progress.setVisible(True)
        self.cancel_button.setVisible(kind == "many")
        self.cancel_button.setEnabled(True)
        self._update_export()
        start_worker(worker, self)

    def _row_to_keep(self, item: Any) -> str | None:
        """The file of the row to select again when the list is classified again (`item` is the list's own inputs):
        the table's current row, else the row opened large from it. The re-run empties the table, and Back came to
        no row at all (Top-k changed while a row was open)."""
        job = self._jobs.get("many")
        if job is None or job[1] is not item:  # (a new list: nothing of the old one to find)
            return None
        current = self.table.currentIndex()
        if current.isValid():
            return self.model.index(self.proxy.mapToSource(current).row(), COL_FILE).data(PATH_ROLE)
        opened = self._jobs.get("one")
        return str(opened[1]) if opened is not None and opened[2] else None

    def _rerun_if_stale(self, force: bool = False, replaced_only: bool = False) -> None:
        """The model or top-k changed: classify what is on screen again, so no table or view shows answers of a
        model that is no longer chosen. `force`: the same file with new weights (a run trained further here). The
        file replaced since (by another program: `train --resume`) is new weights too: the table kept the old
        answers while a row opened from it showed the new model's. `replaced_only`: that alone is looked at (the
        tab or the window come back to, the list maybe on "Choose checkpoint file…" with its dialog closing)."""
        if self._pending is not None:  # a job waiting to start uses the current model and top-k anyway
            return
        # the job running (a first image: the drop page shows until it answers), else the one shown
        shown = self._running or {1: "one", 2: "many"}.get(self.stack.currentIndex())
        job = self._jobs.get(shown) if shown else None
        if job is None:
            return
        replaced = job[3] == self.checkpoint() and file_stamp(job[3]) not in (None, job[5])
        changed = (job[3], job[4]) != (self.checkpoint(), self.topk_spin.value())
        if replaced or (not replaced_only and (force or changed)):
            self._start(job[0], job[1], job[2])

    def _on_finished(self) -> None:
        self._drain()
        self._worker, self._running, self._discarded = None, None, False
        self._show_idle()
        self._start_pending()

    def _start_pending(self) -> None:
        """The job that waited (for a job or a model file's check) starts now."""
        if self._pending is not None:
            kind, item, from_list = self._pending
            self._pending = None
            self._start(kind, item, from_list)

    def _on_failed(self, message: str) -> None:
        if self._discarded:
            return
        self._set_status(message, error=True)
        if self.stack.currentIndex() == 2 and self.model.rowCount() == 0:
            self.stack.setCurrentIndex(0)

    def _set_status(self, text: str, error: bool = False, tip: str | None = None) -> None:
        self._status = (text, error)
        self.status_label.setText(text)
        self.status_label.setToolTip(text if tip is None else f"{text}\n\n{tip}")
        self.status_label.setStyleSheet(f"QLabel {{ color: {ERROR_COLOR}; }}" if error else "")

    # ------------------------------------------------------------------ one image

    def _fit_topk(self, classes: int) -> None:
        """Top-k goes up to the model's number of classes (above it, every k showed the same rows); the value the
        user chose is kept in the settings, and comes back for a model with more classes."""
        if classes < 1 or self.topk_spin.maximum() == classes:
            return
        # (unset: the default, not the value a model of fewer classes cut it to)
        wanted = load_number_setting(settings(), "predict/top_k", int, 1, None, TOP_K)
        self.topk_spin.blockSignals(True)  # (not a choice of the user's: nothing is stored or classified again)
        try:
            self.topk_spin.setMaximum(classes)
            self.topk_spin.setValue(max(1, min(wanted, classes)))
        finally:
            self.topk_spin.blockSignals(False)
        knows = count_noun(classes, "class", "classes")
        self.topk_spin.setToolTip(f"How many of the most likely classes to show per image (this model knows {knows})")

    def _fit_topk_to_run(self, *_: Any) -> None:
        """Top-k fitted when a run's model is chosen, from the classes its config.json names (it showed 5 for a
        model of 4 classes until the first answer came)."""
        from core.runs import config_section

        ckpt = self.checkpoint()
        classes = config_section(Path(ckpt).parent, "dataset").get("classes") if ckpt else None
        if isinstance(classes, list):
            self._fit_topk(len(classes))
        elif ckpt in self._classes_of:  # a model file loaded before (a file chosen again: its answer had Top-k of
            self._fit_topk(self._classes_of[ckpt])  # the model before)

    def _on_one_done(self, result: dict[str, Any]) -> None:
        if self._discarded:
            return
        pred = result["pred"]
        self._fit_topk(int(result.get("classes") or 0))
        self._single = result
        from_table = self.table.hasFocus()  # (a row opened with Enter: its page hides, and Qt moved focus to Back)
        self.stack.setCurrentIndex(1)
        name = result["name"]
        self.file_label.setText(name)
        for w in (self.top_title, self.bars, self.cam_check):  # nothing to rank or explain for an unreadable file
            w.setVisible(pred.ok)
        if not pred.ok:
            self.image_view.set_image(None)  # and no outline
            self.image_view.set_hint(f"Cannot read this image:\n{pred.error}")
            self.class_label.setText("Unreadable image")
            self.conf_label.setText(pred.error or "")
            self.bars.set_items([])
            self.cam_check.setEnabled(False)
            self.cam_note.setText("")
            self._set_status(f"{name}: {pred.error}", error=True)
        else:
            self.class_label.setText(pred.label)
            self.conf_label.setText(f"Confidence {pred.confidence:.1%}")
            # no Grad-CAM for this model (its note says why): the bars offer none ("click one for its Grad-CAM"
            # stayed, and a click did nothing)
            cam = result["cam"] is not None or not result.get("cam_error")
            self.top_title.setText(CLASSES_TITLE if cam else "Most likely classes")
            self.bars.click_hint = CLICK_HINT if cam else ""
            self.bars.set_items(list(pred.top), highlight=pred.label)
            self.cam_check.setText("Show Grad-CAM overlay")  # (of the top class; a bar clicked names its class)
            self.cam_check.setEnabled(result["cam"] is not None)
            self._show_single_image()
            self._set_status(f"{Path(name).name}: {pred.label} ({pred.confidence:.1%})")
        if from_table:  # the keys go on to the class bars, as the README says (Down did nothing, Enter went Back)
            (self.bars if pred.ok else self.back_button).setFocus(Qt.FocusReason.OtherFocusReason)
        self._update_export()
        self.predictions_finished.emit(1)

    def _show_single_image(self) -> None:
        if not self._single or self._single.get("image") is None:
            return
        show_cam = self.cam_check.isChecked() and self._single.get("cam") is not None
        self.image_view.set_image(self._single["cam"] if show_cam else self._single["image"])
        seen = self._single.get("seen") if show_cam else None
        self.image_view.set_outline(seen)
        self.cam_note.setText(self._single.get("cam_error") or (UNSEEN_NOTE if seen else ""))

    def show_cam_of(self, name: str) -> None:
        """The Grad-CAM of class `name` (a bar clicked) instead of the top class's, computed in the background."""
        single = self._single
        if not single or not single["pred"].ok or name == single.get("cam_class") or not self.bars.click_hint:
            return  # (no Grad-CAM for this model: its note says why)
        if self._cam_worker is not None or self._worker is not None:  # (one model, one job at a time: Grad-CAM hooks
            return  # its layers while it runs)
        worker = FunctionWorker(_cam_of_class, self._cache, single["checkpoint"], single["item"], name)
        connect_worker(  # (lambdas connected to the worker's signals straight ran on its thread, widgets and all)
            worker,
            self,
            result=lambda r, s=single: self._on_cam_of(s, r),
            failed=lambda msg: self.cam_note.setText(f"Grad-CAM unavailable: {msg}"),
            finished=lambda: setattr(self, "_cam_worker", None),
        )
        self._cam_worker = worker
        self.cam_note.setText(f"Computing the Grad-CAM of {name}…")
        start_worker(worker, self)

    def _on_cam_of(self, single: dict[str, Any], result: dict[str, Any]) -> None:
        if single is not self._single:  # another image is shown by now
            return
        single.update(result)
        self.bars.set_highlight(result["cam_class"])
        self.cam_check.setText(f"Show Grad-CAM overlay ({result['cam_class']})")
        self.cam_check.setEnabled(result["cam"] is not None)
        self._show_single_image()

    def single_result(self) -> Any:
        """The last single-image Prediction (None before the first)."""
        return self._single["pred"] if self._single else None

    # ------------------------------------------------------------------ many images

    def _reset_table(self) -> None:
        """An empty table; the Show choice stays, as the filter text does (it went back to All results after a
        re-run, and the count line changed meaning unsaid): a class stays a choice until the model is known."""
        mode = self.mode_combo.currentText() or ALL_RESULTS
        self._queue.clear()
        self._results = []
        self._classes_seen = set()
        self.model.removeRows(0, self.model.rowCount())
        self.mode_combo.blockSignals(True)
        self.mode_combo.clear()
        self.mode_combo.addItems([ALL_RESULTS, ERRORS_ONLY])
        if mode not in (ALL_RESULTS, ERRORS_ONLY):
            self._classes_seen.add(mode)
            self._insert_class_choice(mode)
        self.mode_combo.setCurrentText(mode)
        self.mode_combo.blockSignals(False)
        self.proxy.set_mode(mode)
        self._update_count()

    def _on_many_progress(self, done: int, total: int) -> None:
        if self._discarded:
            return
        self._drain()
        self.progress.setRange(0, max(1, total))
        # the rows drained are as far as the worker has got: the signal's count, queued behind them, lagged (the
        # bar read "1 / 600" beside "13 files")
        self.progress.setValue(min(total, max(done, len(self._results))))

    def _drain(self) -> None:
        if self._discarded:
            self._queue.clear()
            return
        added = False
        found = -1
        while self._queue:
            _, pred, _, thumb = self._queue.popleft()
            self._add_row(pred, thumb)
            added = True
            if self._reselect is not None and str(pred.source) == self._reselect:
                found = self.model.rowCount() - 1
        if added:
            self._update_count()
        if found >= 0:  # the row current before a re-run, back as the current one (where the sort puts it now)
            self._reselect = None
            if not self.table.currentIndex().isValid():  # (unless another row was chosen meanwhile)
                shown = self.proxy.mapFromSource(self.model.index(found, 0))
                if shown.isValid():
                    self.table.setCurrentIndex(shown)
                    self.table.scrollTo(shown)

    def _add_row(self, pred: Any, thumb: Any) -> None:
        self._results.append(pred)
        source = str(pred.source)
        thumb_item = QStandardItem()
        if thumb is not None:
            thumb_item.setIcon(photo_icon(thumb))
        else:
            thumb_item.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning))
        thumb_item.setData(len(self._results), SORT_ROLE)
        file_item = QStandardItem(display_name(source, self._name_roots))
        file_item.setToolTip(source)
        file_item.setData(natural_key(file_item.text()), SORT_ROLE)  # as shown (it sorted by the whole path)
        file_item.setData(bool(pred.ok), OK_ROLE)
        file_item.setData(source, PATH_ROLE)
        if pred.ok:
            class_item = QStandardItem(pred.label)
            class_item.setData(pred.label.lower(), SORT_ROLE)
            conf_item = QStandardItem(f"{pred.confidence:.1%}")
            conf_item.setData(float(pred.confidence), SORT_ROLE)
            conf_item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            # each name cut to TOP_NAME characters: a long first name filled the cell, and no percentage showed
            tops = "   ".join(f"{elide_middle(n, TOP_NAME)} {p:.1%}" for n, p in pred.top)
            top_item = QStandardItem(tops)
            top_item.setToolTip("\n".join(f"{n}: {p:.2%}" for n, p in pred.top))
            top_item.setData(tops, SORT_ROLE)
            if pred.label not in self._classes_seen:
                self._classes_seen.add(pred.label)
                self._insert_class_choice(pred.label)
        else:
            class_item = QStandardItem("—")
            class_item.setData("", SORT_ROLE)
            conf_item = QStandardItem("")
            conf_item.setData(-1.0, SORT_ROLE)
            top_item = QStandardItem(f"Cannot read: {pred.error}")
            top_item.setToolTip(f"{source}\n{pred.error}")
            top_item.setForeground(QColor(ERROR_COLOR))
            top_item.setData(str(pred.error), SORT_ROLE)
        self.model.appendRow([thumb_item, file_item, class_item, conf_item, top_item])

    def _insert_class_choice(self, label: str) -> None:
        names = sorted(self._classes_seen)
        self.mode_combo.insertItem(2 + names.index(label), label)

    def _on_filter_changed(self, *_: Any) -> None:
        self.proxy.set_text(self.filter_edit.text())
        self.proxy.set_mode(self.mode_combo.currentText() or ALL_RESULTS)
        self._update_count()
        self._columns.update()  # the File column fits the rows shown (it kept the width of a filter's short names)

    def _problems(self) -> tuple[int, int]:
        """(files that could not be read, folders with no images) among the results."""
        from core.predict import NO_IMAGES_REASONS  # loaded already: the results came from there

        folders = sum(1 for r in self._results if not r.ok and r.error in NO_IMAGES_REASONS)
        return sum(1 for r in self._results if not r.ok) - folders, folders

    def _update_count(self) -> None:
        total = self.model.rowCount()
        shown = self.proxy.rowCount()
        errors, folders = self._problems()
        text = (
            count_noun(total - folders, "file")
            + (f", {errors} unreadable" if errors else "")
            + (f", {count_noun(folders, 'folder')} without images" if folders else "")
        )
        if shown != total:
            text += f" — showing {shown}" if shown else " — none match the filter"
        self.count_label.setText(text)
        self._update_export()  # its tooltip counts the rows shown

    def _on_many_done(self, info: dict[str, Any]) -> None:
        if self._discarded:
            return
        self._drain()
        known = info.get("class_names") or []
        self._fit_topk(len(known))
        for name in known:  # every class the model knows is a choice, those it never
            if name not in self._classes_seen:  # predicted too ("square" missing read as not filterable)
                self._classes_seen.add(name)
                self._insert_class_choice(name)
        kept = self.mode_combo.currentText()
        if known and kept not in (ALL_RESULTS, ERRORS_ONLY, *known):  # a class of the model before, not of this one
            self._classes_seen.discard(kept)
            self.mode_combo.removeItem(self.mode_combo.currentIndex())  # (currentTextChanged: All results shown)
            self.mode_combo.setCurrentText(ALL_RESULTS)
        self._columns.update()
        n = len(self._results)
        errors, folders = self._problems()
        if info["done"] < info["total"]:
            self._set_status(f"Cancelled after {info['done']} of {info['total']} images.")
        elif n == folders:
            self._set_status("No images found in what was dropped.", error=True)
        else:
            ignored = [str(p) for p in info.get("ignored") or []]
            self._set_status(
                f"{count_noun(n - errors - folders, 'image')} classified"
                + (f"; {errors} could not be read" if errors else "")
                + (f"; {count_noun(folders, 'folder')} had no images" if folders else "")
                + _ignored_words(ignored)
                + (f"; {count_noun(info['overlays'], 'Grad-CAM overlay')} left out" if info.get("overlays") else "")
                + ".",
                error=False,
                # (which files: the status named none, the Dataset tab's Problems list names them)
                tip=_ignored_tip(ignored),
            )
        self.predictions_finished.emit(n)

    def _on_row_activated(self, index: QModelIndex) -> None:
        src = self.proxy.mapToSource(index)
        path = self.model.index(src.row(), COL_FILE).data(PATH_ROLE)
        ok = self.model.index(src.row(), COL_FILE).data(OK_ROLE)
        if path and ok:
            self._start("one", path, from_list=True)
        elif path:  # (nothing happened: the table's tooltip says a double-click shows the image large)
            self._set_status(f"{path}: {self._results[src.row()].error}", error=True)

    def images_folder(self) -> str | None:
        """The folder holding the classified images (the one above them all), or None (a pasted image alone)."""
        folders = {
            os.path.dirname(os.path.abspath(str(r.source))) for r in self._results if not str(r.source).startswith("<")
        }
        try:
            common = os.path.commonpath(sorted(folders)) if folders else None
        except ValueError:  # (drives of their own on Windows)
            common = None
        if common is None or common == os.path.dirname(common):  # two trees meet at "/" only: the first one's
            return min(folders) if folders else None
        return common

    def results(self) -> list[Any]:
        """Every row's Prediction (error rows have ok=False, error=reason), in arrival order."""
        return list(self._results)

    def row_count(self) -> int:
        return self.model.rowCount()

    def visible_row_count(self) -> int:
        return self.proxy.rowCount()

    def _export_scope(self) -> str | None:
        """What Export CSV writes: "list" (the table, also while one of its rows is open large), "single" (the
        one image shown, opened on its own), or None (nothing shown)."""
        page = self.stack.currentIndex()
        if page == 2 or (page == 1 and self.back_button.isVisibleTo(self)):
            return "list" if self._results else None
        if page == 1 and self._single is not None:
            return "single"
        return None

    def _update_export(self) -> None:
        scope = self._export_scope()
        hidden_all = scope == "list" and self.proxy.rowCount() == 0  # (it wrote a CSV of its header alone)
        self.export_button.setEnabled(scope is not None and not hidden_all)
        if hidden_all:
            tip = "The filter hides every result: change it to export what it shows"
        elif scope == "list":
            tip = f"Save the {count_noun(self.proxy.rowCount(), 'result')} shown (filter and order as in the table) as a CSV file"
        elif scope == "single":
            tip = "Save this image's prediction as a CSV file"
        else:
            tip = "Save the predictions shown as a CSV file"
        self.export_button.setToolTip(tip)

    def _export_csv(self) -> None:
        # beside a folder of images given, not in it (the first export opened in the home folder, far from the
        # images; in the folder it was an "other file" of the next run over it), where that can be written
        near = folder = self.images_folder()
        given = {os.path.normcase(os.path.abspath(f)) for f in self._dropped_folders}
        if folder and os.path.normcase(folder) in given and os.access(os.path.dirname(folder), os.W_OK):
            near = os.path.dirname(folder)
        path, _ = QFileDialog.getSaveFileName(
            self, "Export predictions as CSV", dialog_dir("exports", "predictions.csv", near=near), "CSV files (*.csv)"
        )
        if path:
            remember_dir("exports", path)
            self.export_csv(with_suffix(path, ".csv"))

    def export_csv(self, path: str) -> None:
        """Write what is shown to a CSV file: every result of the list (errors included), or the one image shown."""
        import dataclasses

        from core.predict import write_csv

        if refused_output(self, "Export predictions", path, "the CSV"):
            return
        scope = self._export_scope()
        if scope == "single":
            pred = self._single["pred"]
            if self._single["pasted"]:  # named as the view names it ("Pasted image"), not "<image 0>"
                pred = dataclasses.replace(pred, source=self._single["name"])
            rows, top_k = [pred], self._single["top_k"]
        elif scope == "list":
            rows, top_k = (
                self._shown_results(),
                self._jobs["many"][4] if "many" in self._jobs else self.topk_spin.value(),
            )
        else:
            self._set_status("Nothing to export: classify some images first.", error=True)
            return
        try:
            write_csv(rows, path, top_k)
        except OSError as e:
            self._set_status(f"Could not write {path}: {e.strerror or e}", error=True)
            return
        hidden = len(self._results) - len(rows) if scope == "list" else 0
        more = f" (the filter hides {count_noun(hidden, 'other')})" if hidden else ""
        self._set_status(f"Wrote {count_noun(len(rows), 'row')} to {path}{more}")

    def _shown_results(self) -> list[Any]:
        """The list's results as the table shows them: the filter's rows, in its sort order."""
        return [
            self._results[self.proxy.mapToSource(self.proxy.index(r, 0)).row()] for r in range(self.proxy.rowCount())
        ]
