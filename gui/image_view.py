"""Shared image widgets: a fit-to-size image view, probability bars, a drop hint, and PIL ↔ Qt conversion."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QPainter, QPalette, QPen, QPixmap
from PySide6.QtWidgets import QSizePolicy, QWidget

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


def load_thumbnail(path: str, size: int = 96) -> QImage | None:
    """A small QImage of an image file, or None when it cannot be read (runs on any thread)."""
    try:
        from core.data import load_image

        img = load_image(path)
    except Exception:
        return None
    img.thumbnail((size, size))
    return pil_to_qimage(img)


class ImageView(QWidget):
    """Shows one image scaled to fit (aspect kept), or a centred hint when empty."""

    def __init__(self, hint: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._pixmap: QPixmap | None = None
        self._hint = hint
        self.setMinimumSize(160, 120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_hint(self, text: str) -> None:
        self._hint = text
        self.update()

    def set_image(self, image: QImage | QPixmap | Image.Image | None) -> None:
        if image is None:
            self._pixmap = None
        elif isinstance(image, QPixmap):
            self._pixmap = image
        elif isinstance(image, QImage):
            self._pixmap = QPixmap.fromImage(image)
        else:
            self._pixmap = QPixmap.fromImage(pil_to_qimage(image))
        self.update()

    def has_image(self) -> bool:
        return self._pixmap is not None and not self._pixmap.isNull()

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(480, 360)

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        rect = self.rect()
        if self.has_image():
            scaled = self._pixmap.size().scaled(rect.size(), Qt.AspectRatioMode.KeepAspectRatio)
            # never blow tiny images up past 8x: they turn into blocks
            if scaled.width() > self._pixmap.width() * 8:
                scaled = self._pixmap.size() * 8
            x = rect.x() + (rect.width() - scaled.width()) // 2
            y = rect.y() + (rect.height() - scaled.height()) // 2
            p.drawPixmap(x, y, scaled.width(), scaled.height(), self._pixmap)
        elif self._hint:
            p.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            p.drawText(
                rect.adjusted(12, 12, -12, -12), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._hint
            )
        p.end()


class ProbabilityBars(QWidget):
    """Horizontal bars for the top-k classes: name on the left, bar, percentage on the right."""

    ROW = 30

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._items: list[tuple[str, float]] = []
        self._highlight: str | None = None
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_items(self, items: list[tuple[str, float]], highlight: str | None = None) -> None:
        self._items = [(str(n), float(p)) for n, p in items]
        self._highlight = highlight
        self.setFixedHeight(max(1, len(self._items)) * self.ROW + 4)
        self.updateGeometry()
        self.update()

    def items(self) -> list[tuple[str, float]]:
        return list(self._items)

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(320, max(1, len(self._items)) * self.ROW + 4)

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        fm = QFontMetrics(self.font())
        bold = QFont(self.font())
        bold.setBold(True)
        bfm = QFontMetrics(bold)
        widest = max((bfm.horizontalAdvance(n) for n, _ in self._items), default=60)
        name_w = min(widest + 16, self.width() // 2)
        pct_w = fm.horizontalAdvance("100.0 %") + 8
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
            shown = (bfm if i == 0 else fm).elidedText(name, Qt.TextElideMode.ElideRight, name_w - 8)
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
                f"{prob * 100:.1f} %",
            )
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

    def paintEvent(self, event) -> None:  # noqa: N802
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
