"""Shared image widgets: a fit-to-size image view, probability bars, a drop hint, PIL ↔ Qt conversion, and the
part of an image a model sees (for Grad-CAM views)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, QPoint, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QPainter, QPaintEvent, QPalette, QPen, QPixmap
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

if TYPE_CHECKING:
    from PIL import Image

ACCENT = QColor(52, 120, 198)
ERROR = QColor(190, 50, 50)


def pil_to_qimage(img: Image.Image) -> QImage:
    """A deep-copied QImage of a PIL image (safe to build on a worker thread)."""
    if img.mode not in ("RGB", "RGBA"):
        img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
    fmt = QImage.Format.Format_RGBA8888 if img.mode == "RGBA" else QImage.Format.Format_RGB888
    data = img.tobytes()
    bpl = img.width * (4 if img.mode == "RGBA" else 3)
    return QImage(data, img.width, img.height, bpl, fmt).copy()


def qimage_to_pil(qimg: QImage) -> Image.Image:
    """A PIL RGB image from a QImage (e.g. from the clipboard)."""
    from PIL import Image

    rgba = qimg.convertToFormat(QImage.Format.Format_RGBA8888)
    w, h = rgba.width(), rgba.height()
    raw = bytes(rgba.constBits())[: rgba.bytesPerLine() * h]
    img = Image.frombuffer("RGBA", (w, h), raw, "raw", "RGBA", rgba.bytesPerLine(), 1)
    background = Image.new("RGB", (w, h), (255, 255, 255))
    background.paste(img, mask=img.getchannel("A"))
    return background


def load_thumbnail(path: str, size: int = 96, scale: float = 1.0) -> QImage | None:
    """A small QImage of an image file, `size` logical px at `scale` device px each (widgets.screen_scale()), or
    None when it cannot be read (runs on any thread). Read as training reads it (core.data.load_image): Qt's reader,
    which the Dataset tab used, left tiles blank for AVIF, a 1 x 4000 strip and a file name that is not UTF-8, and
    a PNG or WebP photo unturned by its EXIF orientation. A picture less than half the size is enlarged by a whole
    factor, pixels kept square and sharp: a 32-px training image sat as a speck in the middle of its tile. One
    between half and the whole size is enlarged smoothly to it: a 64-px image left a 96-px tile's row a third
    empty (the Misclassified gallery's captions sat under it, a gap below them)."""
    try:
        from PIL import Image

        from core.data import load_image

        px = max(1, round(size * scale))
        img = load_image(path, draft=px)  # (a JPEG decoded at 1/2 … 1/8 scale: a 12-megapixel photo in 1/3 the time)
    except Exception:
        return None
    img.thumbnail((px, px))
    factor = px // max(img.size)
    if factor >= 2:
        img = img.resize((img.width * factor, img.height * factor), Image.Resampling.NEAREST)
    elif max(img.size) < px:
        ratio = px / max(img.size)
        img = img.resize(
            (max(1, round(img.width * ratio)), max(1, round(img.height * ratio))), Image.Resampling.BICUBIC
        )
    out = pil_to_qimage(img)
    out.setDevicePixelRatio(scale)
    return out


def model_crop_box(size: tuple[int, int], image_size: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) in an image's own pixels: the centre square a model trained at `image_size` px sees of it
    (shorter side resized, centre-cropped), as core.predict places its Grad-CAM heat map (0 outside this box)."""
    from core.data import resize_size

    w, h = size
    side = image_size * min(w, h) / resize_size(image_size)
    left, top = (w - side) / 2, (h - side) / 2
    return (
        max(0, int(round(left))),
        max(0, int(round(top))),
        min(w, int(round(left + side))),
        min(h, int(round(top + side))),
    )


def grey_outside(overlay: Image.Image, original: Image.Image, box: tuple[int, int, int, int]) -> Image.Image:
    """The overlay inside `box`; outside it the original, grey and faded: parts of the image the model never saw
    must not look like parts it paid little attention to (the colour map's blue)."""
    from PIL import Image

    grey = original.convert("L").convert("RGB")
    out = Image.blend(grey, Image.new("RGB", grey.size, (150, 150, 150)), 0.6)
    out.paste(overlay.convert("RGB").crop(box), box[:2])
    return out


class ImageView(QWidget):
    """Shows one image scaled to fit (aspect kept), or a centred hint when empty; optionally outlines a rectangle
    of the image (the part a model sees)."""

    def __init__(self, hint: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._pixmap: QPixmap | None = None
        self._outline: QRect | None = None
        self._hint = hint
        self.setMinimumSize(160, 120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_hint(self, text: str) -> None:
        self._hint = text
        self.update()

    def set_image(self, image: QImage | QPixmap | Image.Image | None) -> None:
        """Show `image` (None: the hint); an outline set for the previous image is removed."""
        self._outline = None
        if image is None:
            self._pixmap = None
        elif isinstance(image, QPixmap):
            self._pixmap = image
        elif isinstance(image, QImage):
            self._pixmap = QPixmap.fromImage(image)
        else:
            self._pixmap = QPixmap.fromImage(pil_to_qimage(image))
        self.update()

    def set_outline(self, box: tuple[int, int, int, int] | None) -> None:
        """Outline (x0, y0, x1, y1), in the image's own pixels, with a dashed frame (None: no outline)."""
        self._outline = None if box is None else QRect(box[0], box[1], box[2] - box[0], box[3] - box[1])
        self.update()

    def outline(self) -> tuple[int, int, int, int] | None:
        r = self._outline
        return None if r is None else (r.x(), r.y(), r.x() + r.width(), r.y() + r.height())

    def has_image(self) -> bool:
        return self._pixmap is not None and not self._pixmap.isNull()

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(480, 360)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        p = QPainter(self)
        rect = self.rect()
        if self.has_image():
            scaled = self._pixmap.size().scaled(rect.size(), Qt.AspectRatioMode.KeepAspectRatio)
            # never blow tiny images up past 8x: they turn into blocks
            if scaled.width() > self._pixmap.width() * 8:
                scaled = self._pixmap.size() * 8
            # smooth when shrinking or enlarging a little; a small image enlarged 2x or more keeps sharp pixels (a
            # 32-px training image was a blur, beside its sharp thumbnail)
            smooth = scaled.width() < 2 * self._pixmap.width()
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
            x = rect.x() + (rect.width() - scaled.width()) // 2
            y = rect.y() + (rect.height() - scaled.height()) // 2
            p.drawPixmap(x, y, scaled.width(), scaled.height(), self._pixmap)
            if self._outline is not None:  # drawn at screen resolution: a line in a 4000 px image would vanish
                sx = scaled.width() / self._pixmap.width()
                sy = scaled.height() / self._pixmap.height()
                r = self._outline
                frame = QRectF(x + r.x() * sx, y + r.y() * sy, r.width() * sx, r.height() * sy).adjusted(1, 1, -1, -1)
                p.setBrush(Qt.BrushStyle.NoBrush)
                p.setPen(QPen(QColor(255, 255, 255), 2))
                p.drawRect(frame)
                p.setPen(QPen(QColor(40, 40, 40), 2, Qt.PenStyle.DashLine))
                p.drawRect(frame)
        elif self._hint:
            p.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            p.drawText(
                rect.adjusted(12, 12, -12, -12), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._hint
            )
        p.end()


class ProbabilityBars(QWidget):
    """Horizontal bars for the top-k classes: name on the left, bar, percentage on the right. A click on a row
    emits `clicked(class)`; the highlighted row (the class a Grad-CAM explains) is outlined. From the keyboard the
    Up and Down keys move a dashed box from row to row and Enter or Space clicks it."""

    ROW = 30
    clicked = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._items: list[tuple[str, float]] = []
        self._highlight: str | None = None
        self.click_hint = ""  # a second tooltip line: what a click does
        self.cursor = 0  # the keyboard's row
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # (until set_items gives it rows)

    def set_items(self, items: list[tuple[str, float]], highlight: str | None = None) -> None:
        self._items = [(str(n), float(p)) for n, p in items]
        self._highlight = highlight
        self.cursor = 0
        self.setAccessibleDescription(", ".join(f"{n} {p:.1%}" for n, p in self._items))  # (painted: no text else)
        # a Tab stop only with rows to choose from (an empty one would be an unmarked stop)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus if self._items else Qt.FocusPolicy.NoFocus)
        self.setFixedHeight(max(1, len(self._items)) * self.ROW + 4)
        self.updateGeometry()
        self.update()

    def set_highlight(self, name: str | None) -> None:
        self._highlight = name
        self.update()

    def highlight(self) -> str | None:
        return self._highlight

    def mousePressEvent(self, event: Any) -> None:  # noqa: N802
        item = self.item_at(event.position().y())
        if item is not None and event.button() == Qt.MouseButton.LeftButton:
            self.cursor = self._items.index(item)
            self.clicked.emit(item[0])
        super().mousePressEvent(event)

    def focusInEvent(self, event: Any) -> None:  # noqa: N802 — Qt override
        super().focusInEvent(event)
        names = [n for n, _ in self._items]
        if event.reason() != Qt.FocusReason.MouseFocusReason and self._highlight in names:
            self.cursor = names.index(self._highlight)
        self.update()

    def focusOutEvent(self, event: Any) -> None:  # noqa: N802 — Qt override
        super().focusOutEvent(event)
        self.update()

    def keyPressEvent(self, event: Any) -> None:  # noqa: N802 — Qt override
        key, n = event.key(), len(self._items)
        if n and key in (Qt.Key.Key_Up, Qt.Key.Key_Down):
            self.cursor = min(max(self.cursor + (1 if key == Qt.Key.Key_Down else -1), 0), n - 1)
            self.update()
            name, prob = self._items[self.cursor]
            at = self.mapToGlobal(QPoint(self.width() // 2, self.cursor * self.ROW + self.ROW // 2))
            hint = f"\n{self.click_hint.replace('Click', 'Enter')}" if self.click_hint else ""
            QToolTip.showText(at, f"{name}: {prob:.2%}{hint}", self)
        elif n and key in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space):
            self.clicked.emit(self._items[min(self.cursor, n - 1)][0])
        else:
            super().keyPressEvent(event)

    def items(self) -> list[tuple[str, float]]:
        return list(self._items)

    def item_at(self, y: float) -> tuple[str, float] | None:
        """The (class, probability) of the row at height y, or None."""
        i = int((y - 2) // self.ROW)
        return self._items[i] if 0 <= i < len(self._items) and y >= 2 else None

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip:  # a cut name is shown whole
            item = self.item_at(event.pos().y())
            if item is None:
                QToolTip.hideText()
                event.ignore()
            else:
                hint = f"\n{self.click_hint}" if self.click_hint else ""
                QToolTip.showText(event.globalPos(), f"{item[0]}: {item[1]:.2%}{hint}", self)
            return True
        return super().event(event)

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(320, max(1, len(self._items)) * self.ROW + 4)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        fm = QFontMetrics(self.font())
        bold = QFont(self.font())
        bold.setBold(True)
        bfm = QFontMetrics(bold)
        widest = max((bfm.horizontalAdvance(n) for n, _ in self._items), default=60)
        name_w = min(widest + 16, self.width() // 2)
        pct_w = fm.horizontalAdvance("100.0%") + 8
        bar_w = max(20, self.width() - name_w - pct_w - 4)
        text_color = self.palette().color(QPalette.ColorRole.WindowText)
        track = self.palette().color(QPalette.ColorRole.Mid)
        track.setAlpha(60)
        for i, (name, prob) in enumerate(self._items):
            y = i * self.ROW + 2
            h = self.ROW - 8
            p.setPen(text_color)
            font = QFont(self.font())
            font.setBold(i == 0)
            p.setFont(font)
            # cut in the middle: long class names often differ only at their end ("…_number_15_with_extra_words")
            shown = (bfm if i == 0 else fm).elidedText(name, Qt.TextElideMode.ElideMiddle, name_w - 8)
            p.drawText(QRectF(0, y, name_w - 8, h), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, shown)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(track)
            p.drawRoundedRect(QRectF(name_w, y + 3, bar_w, h - 6), 4, 4)
            color = QColor(ACCENT) if i == 0 else QColor(ACCENT).lighter(150)
            p.setBrush(color)
            p.drawRoundedRect(QRectF(name_w, y + 3, max(2.0, bar_w * max(0.0, min(1.0, prob))), h - 6), 4, 4)
            p.setPen(QPen(text_color))
            p.drawText(
                QRectF(name_w + bar_w + 4, y, pct_w, h),
                Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                f"{prob * 100:.1f}%",
            )
            if name == self._highlight and len(self._items) > 1:  # the class the Grad-CAM shows
                p.setPen(QPen(QColor(ACCENT), 1.5))
                p.setBrush(Qt.BrushStyle.NoBrush)
                p.drawRoundedRect(QRectF(1, y - 1, self.width() - 2, h + 2), 5, 5)
            if self.hasFocus() and i == self.cursor:  # the keyboard's row
                p.setPen(QPen(QColor(ACCENT), 1, Qt.PenStyle.DashLine))
                p.setBrush(Qt.BrushStyle.NoBrush)
                p.drawRoundedRect(QRectF(3, y + 1, self.width() - 6, h - 2), 4, 4)
        p.end()


class DropHint(QWidget):
    """A large dashed drop target with a title and a smaller line below; highlights while a drag hovers."""

    def __init__(self, title: str, detail: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._title = title
        self._detail = detail
        self._active = False
        self.setMinimumSize(240, 160)

    def set_active(self, active: bool) -> None:
        self._active = active
        self.update()

    def set_text(self, title: str, detail: str = "") -> None:
        self._title, self._detail = title, detail
        self.update()

    def text(self) -> str:
        return f"{self._title}\n{self._detail}".strip()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = QRectF(self.rect()).adjusted(16, 16, -16, -16)
        color = QColor(ACCENT) if self._active else self.palette().color(QPalette.ColorRole.Mid)
        pen = QPen(color, 2, Qt.PenStyle.DashLine)
        p.setPen(pen)
        if self._active:
            fill = QColor(ACCENT)
            fill.setAlpha(25)
            p.setBrush(fill)
        p.drawRoundedRect(rect, 14, 14)
        title_font = QFont(self.font())
        title_font.setPointSizeF(self.font().pointSizeF() * 1.6)
        title_font.setBold(True)
        p.setFont(title_font)
        p.setPen(self.palette().color(QPalette.ColorRole.WindowText))
        mid = rect.center().y()
        p.drawText(QRectF(rect.left(), mid - 48, rect.width(), 40), Qt.AlignmentFlag.AlignCenter, self._title)
        p.setFont(self.font())
        p.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
        p.drawText(
            QRectF(rect.left() + 20, mid, rect.width() - 40, rect.height() / 2 - 10),
            Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap,
            self._detail,
        )
        p.end()
