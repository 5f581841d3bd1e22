"""Data layer: scan an image folder, the one image-loading rule, splits, transforms and batch loaders."""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import io
import json
import math
import os
import random
import re
import stat
import unicodedata
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core import count_noun
from core.config import STRONG_ERASING, STRONG_JITTER, DataConfig

if TYPE_CHECKING:
    import torch

_QUIET_LARGE_IMAGES = ("ignore", None, Image.DecompressionBombWarning, None, 0)


def _quiet_large_images() -> None:
    """Pillow warns (without the file's name) for 89-179 M pixel images and raises above that: those up to the
    limit are fine to use, bigger ones are listed as too large. A process-wide filter (catch_warnings is not
    thread-safe, and the scan decodes in threads), put back if something reset the filters. Its warnings about
    damaged EXIF data (no file name either; the picture decodes), an orientation tag of two values say, are left
    out the same way."""
    if _QUIET_LARGE_IMAGES not in warnings.filters:
        warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
        warnings.filterwarnings("ignore", message=r"(Possibly )?[Cc]orrupt EXIF", category=UserWarning)
        warnings.filterwarnings(
            "ignore", message=r"Metadata Warning, tag \d+ had too many entries", category=UserWarning
        )
        warnings.filterwarnings("ignore", message=r"Truncated File Read", category=UserWarning)  # (an EXIF offset)


# .avif needs a Pillow built with libavif (its wheels are); where it is not, such files are listed as unusable
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".avif"}
# the Pillow formats a file is opened as, whatever its name: the types above and a few plain raster ones. Not
# every reader Pillow has: a PostScript file named photo.jpg went to its EPS reader, which runs Ghostscript
READ_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "DIB", "TIFF", "WEBP", "AVIF", "PPM", "TGA", "ICO")  # (JPEG: MPO too)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R 601 grey, as torchvision's colour jitter

SKIP_NAMES = {"__macosx", "thumbs.db", "desktop.ini", "$recycle.bin", "system volume information"}
SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
IN_MEMORY_BYTES = 64 << 20  # scan reads an image file whole up to this size, bigger ones in chunks
PROGRESS_STEPS = 200  # at most this many progress calls per scan / cache fill


class DataError(ValueError):
    """The whole data set is unusable (missing folder, fewer than two classes); the message is one line."""


class LoadStopped(Exception):
    """The stop token was set while a loader read its images into memory (BatchLoader's `stop`)."""

    def __init__(self) -> None:
        super().__init__("stopped while reading the images into memory")


class ImageLoadError(Exception):
    """One image cannot be used; str(e) == f"{path}: {reason}"."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


# ----------------------------------------------------------------------------------------------------------------
# Loading one image


# the first bytes of the image files people have: a file that starts as one but cannot be opened is a damaged one
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}  # (AVIF's "avif" is read)


def _damaged_kind(head: bytes | None) -> str | None:
    """The image type a file's first bytes announce (None: none known)."""
    if not head:
        return None
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return next((kind for magic, kind in _MAGIC if head.startswith(magic)), None)


@functools.cache
def _read_formats() -> tuple[str, ...]:
    """READ_FORMATS this Pillow has (one built without AVIF has no reader of that name: Image.open raised
    KeyError for it)."""
    Image.init()
    return tuple(f for f in READ_FORMATS if f in Image.OPEN)


def _head(source: Any) -> bytes | None:
    """A file's first 16 bytes (None when it cannot be read)."""
    try:
        with open(source, "rb") as f:
            return f.read(16)
    except (OSError, TypeError, ValueError):
        return None


def error_reason(exc: BaseException, head: bytes | None = None) -> str:
    """The human reason for an image that failed to open or decode (shared by scan, load_image and loaders).
    `head`: the file's first bytes, when known (a PNG whose header is damaged is said so, not "not an image")."""
    msg = str(exc)
    if isinstance(exc, Image.DecompressionBombError):
        m = re.search(r"\((\d+) pixels\)", msg)
        pixels = int(m.group(1)) if m else None
        limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
        size = f"{pixels:,} pixels" if pixels is not None else "more pixels than that"
        # (Pillow's words, "decompression bomb", named what it guards against, not what is wrong with the photo)
        return f"too large to open: {size}, over the limit of {limit:,} (make it smaller, or it may be damaged)"
    if isinstance(exc, UnidentifiedImageError):
        if head and head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:  # (an iPhone's photos)
            return _unread_text("HEIC")
        if head and head.startswith((b"%!PS", b"\xc5\xd0\xd3\xc6")):  # (READ_FORMATS leaves EPS out)
            return "a PostScript (EPS) file, which is not read (save it as PNG or JPEG)"
        kind = _damaged_kind(head)
        return (
            f"a damaged {kind} file (its header cannot be read)"
            if kind
            else "not an image (cannot identify image file)"
        )
    if isinstance(exc, FileNotFoundError):
        name = getattr(exc, "filename", None)
        if isinstance(name, str) and os.path.islink(name):  # (the link is there; what it points to is not)
            return f"broken symbolic link (to {os.readlink(name)}, which is not there)"
        return "file not found"
    if isinstance(exc, OSError) and exc.errno == errno.ELOOP:
        return "symbolic link loop (the link leads back to itself)"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, IsADirectoryError):
        return "is a folder, not a file"
    if isinstance(exc, NotADirectoryError):  # (photo.jpg/x)
        return "not found: a part of its path is a file, not a folder"
    if isinstance(exc, OSError) and exc.errno == errno.ENAMETOOLONG:
        return "file name too long for the file system"
    if isinstance(exc, OSError) and exc.errno == errno.EIO:
        return "cannot read the file (input/output error: the disk or network share failed)"
    if isinstance(exc, ImageLoadError):
        return exc.reason
    low = msg.lower()
    if "truncated" in low or "premature end" in low:
        return "truncated image"
    if "broken data stream" in low:
        return "corrupt image data (broken data stream)"
    if isinstance(exc, MemoryError):
        return "image too large to decode (out of memory)"
    if isinstance(exc, (OSError, SyntaxError, ValueError)):
        return f"corrupt image ({msg or type(exc).__name__})"
    return f"cannot decode image ({type(exc).__name__}: {msg})"


def _composite_on_white(img: Image.Image) -> Image.Image:
    rgba = img.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _gray_array_to_rgb(a: np.ndarray) -> Image.Image:
    return Image.fromarray(a.astype(np.uint8)).convert("RGB")


def _rescale_16bit(a: np.ndarray) -> np.ndarray:
    """0..65535 → 0..255 by /257 with rounding, so full scale stays full scale (never clamped)."""
    return ((a.astype(np.uint32) + 128) // 257).astype(np.uint8)


def _scale_wide(a: np.ndarray) -> np.ndarray:
    """Integer, float or boolean pixel data of unknown range → uint8. Data of no negative value is scaled so its
    full scale is white: 1.0 for floats and booleans, 255 for integers; past it (a float image of 0..1.0000001, an
    integer one of 0..4095), its brightest value is white. One rule whatever the range: a float image one rounding
    step over 1.0 was stretched min-max and a 0..256 one divided by 257, and both trained as near black. Data with
    negative values is stretched min-max."""
    full = 1.0 if a.dtype.kind in "fb" else 255.0  # (read before the cast below: it made every array a float one)
    a = a.astype(np.float64)
    finite = np.isfinite(a)
    if not finite.all():
        a = np.where(finite, a, 0.0)
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if lo >= 0:
        out = a * (255.0 / max(full, hi))
    else:
        out = (a - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(a)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def _to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode == "RGB" and "transparency" not in img.info:
        return img
    if mode.startswith("I;16"):
        a = np.asarray(img)
        grey = _rescale_16bit(a)
        if isinstance(clear := img.info.get("transparency"), int):  # (a PNG's tRNS: on white, as 8-bit ones are)
            grey[a == clear] = 255
        return _gray_array_to_rgb(grey)
    if mode in ("I", "F"):
        return _gray_array_to_rgb(_scale_wide(np.asarray(img)))
    if mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode in ("P", "L", "RGB", "1") and "transparency" in img.info):
        return _composite_on_white(img)
    return img.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB, HSV


def _from_array(a: np.ndarray) -> Image.Image:
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)) or a.size == 0:
        raise ImageLoadError("<array>", f"unsupported array shape {tuple(a.shape)} (expected HxW, HxWx3 or HxWx4)")
    if a.dtype != np.uint8:
        if a.dtype.kind not in "uif" and a.dtype != np.bool_:
            raise ImageLoadError("<array>", f"unsupported array dtype {a.dtype}")
        a = _rescale_16bit(a) if a.dtype == np.uint16 else _scale_wide(a)
    a = np.ascontiguousarray(a)
    if a.ndim == 2:
        return Image.fromarray(a).convert("RGB")
    if a.shape[2] == 4:
        return _composite_on_white(Image.fromarray(a))
    return Image.fromarray(a)


def _source_name(source: Any) -> str:
    if isinstance(source, (str, Path)):
        return str(source)
    name = getattr(source, "filename", None) or getattr(source, "name", None)
    return str(name) if isinstance(name, (str, Path)) and name else "<image>"


def folder_problem(path: str | Path, folder: str = "folder") -> str:
    """Why `path` is not a `folder` one can use ("no such folder", "a file, not a folder", …), or "" when it is.
    (os.path.exists said "no such folder" for one inside a folder that may not be entered.)"""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "no such folder"
    except NotADirectoryError:
        return "no such folder (a part of its path is a file)"
    except PermissionError:
        return "permission denied (this folder or one above it may not be opened)"
    except OSError as e:
        return f"cannot be opened ({e.strerror or e})"
    except ValueError:  # a NUL in the name: no file can have it
        return "no such folder"
    return "" if stat.S_ISDIR(st.st_mode) else f"a file, not a {folder}"


def _file_problem(path: str | Path) -> str | None:
    """Why a path is no image file before opening it (opening a named pipe waits for a writer for ever, and
    /dev/zero never ends), or None."""
    st = os.stat(path)
    if stat.S_ISDIR(st.st_mode):
        return "is a folder, not a file"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file (a pipe, device or socket)"
    if st.st_size == 0:
        return "empty file (0 bytes)"
    return None


def load_image(source: str | Path | Image.Image | np.ndarray | Any, draft: int | None = None) -> Image.Image:
    """Path, file object, an encoded file's bytes, PIL image or uint8 array → RGB PIL image with EXIF orientation
    applied.

    `draft=R` lets a JPEG file decode at 1/2, 1/4 or 1/8 scale (libjpeg DCT scaling) while its shorter side stays
    ≥ R — what load_for_model asks for; images given as PIL images or arrays are used as they are.
    Raises ImageLoadError(path, reason) for anything unusable; Pillow's decompression-bomb limit stays on.
    """
    if isinstance(source, np.ndarray):
        return _from_array(source)
    if isinstance(source, (bytes, bytearray, memoryview)):  # an encoded file's bytes (a str or bytes path is
        source = io.BytesIO(bytes(source))  # no use: bytes were "corrupt image (embedded null byte)")
    name = _source_name(source)
    if not isinstance(source, (str, Path, Image.Image)) and not hasattr(source, "read"):  # ("cannot decode image
        raise ImageLoadError(  # (AttributeError: 'Tensor' object has no attribute 'read')" of a tensor or None)
            name, f"not an image: a {type(source).__name__} (give a file's path, a PIL image, a uint8 array or bytes)"
        )
    try:
        if isinstance(source, Image.Image):
            if 0 in source.size:
                raise ImageLoadError(name, f"empty image ({source.size[0]} x {source.size[1]} pixels)")
            return _to_rgb(upright(source))
        if isinstance(source, (str, Path)) and (problem := _file_problem(source)):
            raise ImageLoadError(name, problem)
        _quiet_large_images()
        with Image.open(source, formats=_read_formats()) as im:
            if draft:
                im.draft("RGB", (int(draft), int(draft)))  # a no-op for formats other than JPEG
            im.load()
            out = upright(im)
            out = _to_rgb(out)
            if out is im:
                out = im.copy()
            return out
    except ImageLoadError:
        raise
    except Exception as e:  # any decoder failure becomes one clear message
        head = _head(source) if isinstance(e, UnidentifiedImageError) and isinstance(source, (str, Path)) else None
        raise ImageLoadError(name, error_reason(e, head)) from None


_TURNS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def upright(img: Image.Image) -> Image.Image:
    """`img` turned as its EXIF orientation says (itself when it says nothing). ImageOps.exif_transpose writes the
    EXIF out again for the turned copy, and a damaged tag elsewhere in it (text where a number belongs) made it
    fail: a photo that decodes, and that `scan` passed, was then unreadable in training and predict. Such a photo
    is turned by its orientation tag alone, or used as it is when that tag cannot be read either."""
    try:
        return ImageOps.exif_transpose(img) or img
    except Exception:  # noqa: BLE001 - the EXIF's fault, not the picture's
        pass
    try:
        turn = _TURNS.get(img.getexif().get(0x0112))
    except Exception:  # noqa: BLE001
        return img
    if turn is None:
        return img
    out = img.transpose(turn)
    for key in ("exif", "Raw profile type exif", "XML:com.adobe.xmp", "xmp"):  # the turned copy keeps no
        out.info.pop(key, None)  # orientation: upright(upright(img)) must not turn it a second time
    return out


def fit_within(img: Image.Image, max_side: int) -> Image.Image:
    """`img` no larger than `max_side` px on either side (a new, smaller image; a small one is returned as it
    is): what a view shows of a photo of tens of megapixels."""
    if max(img.size) <= max_side:
        return img
    scale = max_side / max(img.size)
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)


def verify_image(path: str) -> tuple[str | None, str | None]:
    """Cheap check used by scan: (content hash, None) for a decodable image, (hash or None, reason) otherwise.

    A file up to IN_MEMORY_BYTES is read once; a bigger one is hashed in chunks and decoded from the file, so a
    scan's threads never hold more than that each."""
    try:
        if problem := _file_problem(path):
            return None, problem
        h = hashlib.blake2b(digest_size=16)
        with open(path, "rb") as f:
            data = f.read(IN_MEMORY_BYTES + 1)
            h.update(data)
            if len(data) > IN_MEMORY_BYTES:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
                data = None
    except Exception as e:
        return None, error_reason(e)
    digest = h.hexdigest()
    _quiet_large_images()
    try:
        with Image.open(io.BytesIO(data) if data is not None else path, formats=_read_formats()) as im:
            if im.format == "JPEG":
                im.draft("RGB", (64, 64))
            im.load()
    except Exception as e:
        return digest, error_reason(e, data[:16] if data is not None else _head(path))
    return digest, None


# ----------------------------------------------------------------------------------------------------------------
# Scanning a folder


@dataclass
class Sample:
    path: str
    label: int
    split: str | None = None  # set only for pre-split layouts


def one_class_reason(name: str) -> str:
    return f"only one class with images ({name!r}); at least two are needed to train"


def _rel_key(path: str, root: str) -> str:
    """A file's place under the data folder as the fingerprints name it: NFC and "/", so the same files read as the
    same on a macOS or Windows copy."""
    return class_key(Path(os.path.relpath(path, root)).as_posix())


def _listing_digest(lines: Iterable[str]) -> str:
    """A fingerprint of a listing, whatever its order."""
    h = hashlib.blake2b(digest_size=16)
    for line in sorted(lines):
        h.update(line.encode("utf-8", "surrogateescape") + b"\n")
    return h.hexdigest()


@dataclass
class DatasetIndex:
    root: str
    layout: str  # "classes" | "splits"
    classes: list[str]
    samples: list[Sample]
    bad_files: list[tuple[str, str]] = field(default_factory=list)
    empty_classes: list[str] = field(default_factory=list)
    unusable_classes: list[str] = field(default_factory=list)  # class folders of bad_files or ignored_files alone
    duplicates: list[list[str]] = field(default_factory=list)
    ignored_files: list[str] = field(default_factory=list)  # in class folders, not of an image type (notes.txt)
    notes: list[str] = field(default_factory=list)  # how the folders were read where a user may have meant otherwise
    # the images' contents with their names and classes (as files_digest, with each file's bytes): the same images
    # in another place, moved or copied, have the same; "" where not made (an index built by hand)
    content_digest: str = ""
    # each usable image's content digest, by its path (the scan makes them anyway): copies of an image in two
    # folders are known by it (see core.runs.trained_copies); {} where not made
    digests: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    _digest: str | None = field(default=None, init=False, repr=False, compare=False)  # files_digest(), once made

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(self.classes, 0)
        for s in self.samples:
            out[self.classes[s.label]] += 1
        return out

    def files_digest(self) -> str:
        """A fingerprint of which images (paths under the root, and their classes) the set holds: equal counts
        with other files (a photo replaced, renamed or moved to another class) give another digest. Made once per
        index (a resume asks for it twice: the changed-data note and config.json)."""
        if self._digest is not None:
            return self._digest
        self._digest = _listing_digest(f"{self.classes[s.label]}\t{_rel_key(s.path, self.root)}" for s in self.samples)
        return self._digest

    def val_from_train(self) -> bool:
        """Split folders without val/: the validation share is taken from train/ (split), seeded."""
        return self.layout == "splits" and not any(s.split == "val" for s in self.samples)

    def folders_gone(self) -> list[str]:
        """The folders of its images (a class folder, or a split's) not there any more: the data folder changed
        since the scan (a class folder deleted or renamed). Cheap: one look per folder."""
        folders = dict.fromkeys(os.path.dirname(s.path) for s in self.samples)
        return [f for f in folders if not os.path.isdir(f)]

    def too_few_classes(self) -> str | None:
        """Why this set cannot be trained on for want of classes (scan(min_classes=1) lets one class through, for
        an evaluation set or to show the folder), or None."""
        return one_class_reason(self.classes[0]) if len(self.classes) == 1 else None

    @property
    def unusable(self) -> list[tuple[str, str]]:
        """bad_files without the run folders: the files (and folders) that could not be used, and why."""
        return [(p, r) for p, r in self.bad_files if r != RUN_FOLDER_REASON]

    @property
    def run_folders(self) -> list[str]:
        """Run folders of this program kept in the data folder, left out (in bad_files too, with their reason):
        no fault of the data, so no cause of scan's exit code 1."""
        return [p for p, r in self.bad_files if r == RUN_FOLDER_REASON]

    def to_dict(self) -> dict:
        counts = self.counts()
        return {
            "root": self.root,
            "layout": self.layout,
            "classes": [{"name": c, "count": counts[c]} for c in self.classes],
            "num_images": len(self.samples),
            "bad_files": [{"path": p, "reason": r} for p, r in self.bad_files],
            "empty_classes": list(self.empty_classes),
            "unusable_classes": list(self.unusable_classes),
            "duplicates": [list(g) for g in self.duplicates],
            "mixed_duplicates": self.mixed_duplicates(),
            "leaked_duplicates": self.leaked_duplicates(),
            "ignored_files": list(self.ignored_files),
            "notes": list(self.notes),
        }

    def split_of(self) -> dict[str, str]:
        """Path → its split folder (train / val / test), for data sets that come split."""
        return {s.path: s.split or "train" for s in self.samples} if self.layout == "splits" else {}

    def leaked_duplicates(self) -> list[list[str]]:
        """Pre-split data sets: groups of identical files in two split folders (an image validated on is also
        trained on). Data sets split here keep each group in one split, so never any."""
        split_of = self.split_of()
        return [list(g) for g in self.duplicates if len({split_of.get(p) for p in g}) > 1] if split_of else []

    def mixed_duplicates(self) -> list[list[str]]:
        """The groups of identical files that sit in different classes: one image with two labels."""
        if not self.duplicates:
            return []
        class_of = {s.path: s.label for s in self.samples}
        return [list(g) for g in self.duplicates if len({class_of.get(p) for p in g}) > 1]

    def duplicate_notes(self) -> list[str]:
        """A sentence for each kind of identical files that undermine training: in two classes, in two split
        folders (what `scan` and `train` warn of, and the training log says)."""
        mixed, leaked = len(self.mixed_duplicates()), len(self.leaked_duplicates())
        notes = []
        if mixed:
            notes.append(
                f"{count_noun(mixed, 'group')} of identical files in different classes (one image, two labels)"
            )
        if leaked:
            notes.append(
                f"{count_noun(leaked, 'group')} of identical files in two split folders (an image validated or "
                "tested on is also trained on)"
            )
        return notes

    def problem_notes(self) -> list[str]:
        """A sentence for each kind of problem that training goes on despite, for a training log (`scan` and the
        window's Problems tab list the files; the window's training log had said nothing of them)."""
        loose = sum(r == LOOSE_REASON for _, r in self.unusable)
        within = [(p, r) for p, r in self.unusable if r != LOOSE_REASON]
        notes = []
        if within:
            are = "is" if len(within) == 1 else "are"
            notes.append(f"{files_and_folders(within)} in the class folders could not be used and {are} left out")
        if loose:
            notes.append(
                f"{count_noun(loose, 'image')} outside the class folders {'is' if loose == 1 else 'are'} left out"
            )
        return notes + self.duplicate_notes()


def _is_stopped(stop: Any) -> bool:
    if stop is None:
        return False
    flag = getattr(stop, "stopped", None)
    if flag is not None and not callable(flag):
        return bool(flag)
    is_set = getattr(stop, "is_set", None)
    return bool(is_set()) if callable(is_set) else False


def _skipped(name: str) -> bool:
    return name.startswith(".") or name.lower() in SKIP_NAMES


def class_key(name: str) -> str:
    """A class name as compared and stored: Unicode NFC, so a folder named "café" matches whether the file system
    spells it composed or decomposed (macOS copies often decompose, Linux keeps what it is given)."""
    return unicodedata.normalize("NFC", str(name))


def _subdirs(folder: str, problems: list[tuple[str, str]] | None = None) -> list[os.DirEntry]:
    """The folders in `folder` (links to folders too), sorted. An entry that cannot be told apart (a link loop, a
    link into a folder without permission, a link to nothing: a class folder on a drive not mounted) goes to
    `problems` with the reason; it had stopped the whole scan, or was left out without a word."""
    found = []
    with os.scandir(folder) as it:
        for e in it:
            if _skipped(e.name):
                continue
            try:
                if e.is_dir():
                    found.append(e)
                elif e.is_symlink() and not os.path.exists(e.path):
                    raise FileNotFoundError(errno.ENOENT, "not there", e.path)
            except OSError as err:
                if problems is not None:
                    problems.append((e.path, error_reason(err)))
    return sorted(found, key=lambda e: e.name)


def _loose_images(folder: str) -> list[str]:
    """Image files directly in `folder` (an entry that cannot be told apart is _subdirs' to report)."""
    found = []
    with os.scandir(folder) as it:
        for e in it:
            with contextlib.suppress(OSError):
                if not _skipped(e.name) and e.is_file() and os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS:
                    found.append(e.path)
    return sorted(found)


def walk(
    folder: str | Path,
    onerror: Callable[[OSError], None] | None = None,
    onloop: Callable[[str], None] | None = None,
) -> Iterator[tuple[str, list, list]]:
    """os.walk, sorted, without hidden and system folders, following symbolic links to folders (a linked
    sub-folder of photos is part of the class) but never into a folder it has walked already, nor into one that
    holds `folder` (a link loop: `cat/up -> ..` took every other class's photos into cat). `onloop` is told of
    the links not followed for the second reason."""
    top = os.path.realpath(folder)
    seen = {top}
    for dirpath, dirnames, filenames in os.walk(folder, onerror=onerror, followlinks=True):
        keep = []
        for d in sorted(dirnames):
            if _skipped(d):
                continue
            real = os.path.realpath(os.path.join(dirpath, d))
            if real in seen:
                continue
            if top.startswith(real.rstrip(os.sep) + os.sep):
                if onloop is not None:
                    onloop(os.path.join(dirpath, d))
                continue
            seen.add(real)
            keep.append(d)
        dirnames[:] = keep
        yield dirpath, dirnames, filenames


def folder_reason(reason: str) -> bool:
    """Whether a reason of DatasetIndex.unusable is a folder's: one that cannot be read, or a link that loops."""
    return reason.startswith("cannot read folder") or reason == LOOP_REASON


def files_and_folders(unusable: list[tuple[str, str]]) -> str:
    """(path, reason) pairs of what a scan could not use, counted in words: "2 files", "1 file and 1 folder"."""
    folders = sum(folder_reason(r) for _, r in unusable)
    files = len(unusable) - folders
    return " and ".join(count_noun(n, noun) for n, noun in ((files, "file"), (folders, "folder")) if n) or "nothing"


def _loops_up(path: str, homes: Iterable[str]) -> bool:
    """Whether the folder `path` (a link, say) is one of `homes` or a folder above one (by where they really are)."""
    real = os.path.realpath(path)
    return any(home == real or home.startswith(real.rstrip(os.sep) + os.sep) for home in map(os.path.realpath, homes))


CAM_SOFTWARE = "ResNeXt Studio Grad-CAM overlay"  # the PNG text chunk of an overlay `predict --cam` writes


def is_cam_overlay(path: str | Path) -> bool:
    """Whether `path` is a Grad-CAM overlay this program wrote (core.predict.save_cam_overlay): another may replace
    it, and it is no photo of its class to learn from. Only a name ending in "_gradcam.png" is opened."""
    if not str(path).lower().endswith("_gradcam.png"):
        return False
    _quiet_large_images()  # (a 100 M pixel one printed Pillow's warning, without its name, as load_image does not)
    try:
        with Image.open(path, formats=("PNG",)) as im:
            return im.format == "PNG" and im.info.get("Software") == CAM_SOFTWARE
    except Exception:  # noqa: BLE001 - not an image, not readable: not ours
        return False


# photo types people keep in class folders that Pillow does not read: named, with what to do (iPhones save HEIC)
UNREAD_PHOTO_TYPES = {
    ".heic": "HEIC",
    ".heif": "HEIF",
    ".dng": "raw (DNG)",
    ".cr2": "raw (CR2)",
    ".cr3": "raw (CR3)",
    ".nef": "raw (NEF)",
    ".arw": "raw (ARW)",
    ".orf": "raw (ORF)",
    ".rw2": "raw (RW2)",
    ".raf": "raw (RAF)",
    ".psd": "Photoshop (PSD)",
    ".svg": "SVG",
}


def unread_photo(path: str) -> str | None:
    """For a photo of a type not read (by its name: "IMG_0001.HEIC"), what it is and what to do; else None."""
    kind = UNREAD_PHOTO_TYPES.get(os.path.splitext(path)[1].lower())
    return _unread_text(kind) if kind else None


def _unread_text(kind: str) -> str:
    return f"a {kind} image, a type not read: convert it to JPEG or PNG"


def ignored_kind(path: str) -> str | None:
    """What a file left out of a class folder is, when more than "not an image type": our Grad-CAM overlay, or a
    photo of a type not read (with what to do)."""
    if path.lower().endswith("_gradcam.png"):  # (only our overlays of that name are left out: the scan checked)
        return "a Grad-CAM overlay of predict --cam, not a photo"
    return unread_photo(path)


def ignored_reason(path: str) -> str:
    """Why a file in a class folder is not among the images (DatasetIndex.ignored_files)."""
    return f"{ignored_kind(path) or 'not an image file type'} (ignored)"


def _walk_images(
    folder: str, stop: Any, unreadable: list[tuple[str, str]] | None = None, ignored: list[str] | None = None
) -> list[str]:
    """Image files under `folder`, sorted; folders that cannot be listed go to `unreadable` with the reason, and
    other files (not hidden, not system files such as Thumbs.db) to `ignored`. A run folder of this program (a
    runs folder kept inside the data folder) is no class's images: it goes to `unreadable`, said, not walked."""
    found = []

    def failed(e: OSError) -> None:
        if unreadable is not None:
            unreadable.append((e.filename or folder, f"cannot read folder ({e.strerror or e})"))

    def loop(path: str) -> None:
        if unreadable is not None:
            unreadable.append((path, LOOP_REASON))

    for dirpath, dirnames, filenames in walk(folder, onerror=failed, onloop=loop):
        if _is_stopped(stop):
            raise DataError("scan cancelled")
        if is_run_folder(dirpath, filenames):  # (its curves.png had trained a class "runs")
            if unreadable is not None:
                unreadable.append((dirpath, RUN_FOLDER_REASON))
            dirnames[:] = []
            continue
        for name in filenames:
            if _skipped(name):
                continue
            path = os.path.join(dirpath, name)
            # a Grad-CAM overlay of `predict --cam` into the data folder is no photo of its class: it trained as one
            # (predict leaves them out), so it is left out with the other files, named
            if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS and not is_cam_overlay(path):
                found.append(path)
            elif ignored is not None:
                ignored.append(path)
    return sorted(found)


LOOSE_REASON = "outside any class folder (ignored)"  # an image directly in the data folder (or in train/ …)
RUN_FOLDER_REASON = "a run folder (checkpoints and curves, not images to learn from; ignored)"
LOOP_REASON = "a link to a folder above it (a loop): not followed"


def is_run_folder(folder: str, names: Sequence[str] | None = None) -> bool:
    """A run folder of this program: a status.json of one of its statuses beside a config.json of its sections
    (two files of those names alone, in a class folder of photos, do not make one). `names`: the folder's file
    names when listed already (a walk's): no status.json among them, no file is read."""
    if names is not None and "status.json" not in names:
        return False
    from core.runs import STATUSES, read_config, read_status

    return read_status(folder).get("status") in STATUSES and isinstance(read_config(folder).get("model"), dict)


def _blocked(name: str, path: str, unlisted: list[tuple[str, str]]) -> set[str]:
    """{name} when the class folder at `path` could not be listed, or holds run folders (then it is not called
    empty: the run folders are named instead)."""
    inside = path + os.sep
    hit = any(f == path or (why == RUN_FOLDER_REASON and f.startswith(inside)) for f, why in unlisted)
    return {name} if hit else set()


def _unicode_twins(folders: list[os.DirEntry]) -> list[str]:
    """Class folders whose names differ only in their Unicode form (café composed and decomposed, as copies between
    macOS and Linux make them): one class, as the name is compared, said rather than merged without a word."""
    by_key: dict[str, set[str]] = {}
    for e in folders:
        by_key.setdefault(class_key(e.name), set()).add(e.name)
    return [
        f"folders named {name!r} in {len(spellings)} Unicode spellings are one class (their images are merged)"
        for name, spellings in sorted(by_key.items())
        if len(spellings) > 1
    ]


def _detect_splits(root: str, top: list[os.DirEntry]) -> bool:
    """Only split folders (train/, val/, test/ …), holding class folders: a held-out set may be test/ alone."""
    names = [SPLIT_NAMES.get(e.name.lower()) for e in top]
    return bool(top) and all(names) and any(_subdirs(e.path) for e in top)


def default_workers() -> int:
    return max(2, min(16, 2 * (os.cpu_count() or 1)))


def scan(
    root: str | Path,
    progress: Callable[[int, int], None] | None = None,
    stop: Any = None,
    workers: int | None = None,
    min_classes: int = 2,
    use_cache: bool = True,
) -> DatasetIndex:
    """Index an image folder (class folders or train/val/test folders), verifying every image by decoding it.

    `min_classes`: training needs two classes; a folder to evaluate a model on may hold one (min_classes=1).
    `use_cache`: images found good by an earlier scan of the folder, unchanged since (size, times, inode), are not
    decoded again (scan_cache_dir())."""
    if problem := folder_problem(root):
        raise DataError(f"{root}: {problem}")
    root_s = os.path.abspath(root)
    entries: list[tuple[str, str]] = []  # links that cannot be followed, with the reason
    try:
        top = _subdirs(root_s, entries)
    except OSError as e:
        raise DataError(f"{root_s}: cannot read folder ({e.strerror or e})") from None

    bad: list[tuple[str, str]] = [(p, LOOSE_REASON) for p in _loose_images(root_s)] + entries
    candidates: list[tuple[str, str, str | None]] = []  # (path, class, split)
    unlisted: list[tuple[str, str]] = []  # folders that could not be listed, with the reason
    ignored: list[str] = []  # files in class folders that are not of an image type
    blocked: set[str] = set()  # classes whose folder could not be listed (not "empty": named in bad_files)
    others: dict[str, list[str]] = {}  # class -> its files of other types (HEIC photos …): not "empty" either
    class_names: set[str] = set()
    notes: list[str] = []
    split_like = [e.name for e in top if e.name.lower() in SPLIT_NAMES]
    if len(split_like) >= 2 and not _detect_splits(root_s, top):  # train/ + val/ + notes/: neither layout
        others = [e.name for e in top if e.name.lower() not in SPLIT_NAMES]
        if others:
            why = f"{' and '.join(split_like)} look like split folders, but {', '.join(others)} does not"
        else:
            why = f"{' and '.join(split_like)} hold no class folders"
        raise DataError(
            f"{root_s}: {why}; use ROOT/train/<class>/… (val/, test/ beside it) or ROOT/<class>/… with no split folders"
        )

    taken: list[os.DirEntry] = []  # the class folders (not the links among them that loop, left out)

    def take(cls: os.DirEntry, split_name: str | None, home: str) -> None:
        """A class folder's images, its other files and whether it could be listed. A link among the class folders
        to `home` (the folder that holds them) or to a folder above it is a loop, said and not made a class: walked,
        `dot -> .` took every class's photos into one class more, `up -> ..` every other data set beside this one
        (the walk of a class folder can only tell links above that class folder, not above the data folder)."""
        if _loops_up(cls.path, (root_s, home)):
            unlisted.append((cls.path, LOOP_REASON))
            return
        taken.append(cls)
        name = class_key(cls.name)
        class_names.add(name)
        before = len(ignored)
        candidates.extend((p, name, split_name) for p in _walk_images(cls.path, stop, unlisted, ignored))
        others.setdefault(name, []).extend(ignored[before:])
        blocked.update(_blocked(name, cls.path, unlisted))

    if _detect_splits(root_s, top):
        layout = "splits"
        for split_dir in top:
            split_name = SPLIT_NAMES[split_dir.name.lower()]
            bad += [(p, LOOSE_REASON) for p in _loose_images(split_dir.path)]
            for cls in _subdirs(split_dir.path, bad):
                take(cls, split_name, split_dir.path)
    else:
        layout = "classes"
        lone = [e.name for e in top if e.name.lower() in SPLIT_NAMES]
        if lone and len(top) > 1:  # train/ beside cat/ and dog/: a class named "train", said
            notes.append(
                f"{lone[0]}/ is read as a class beside the others; for a data set split in advance put every "
                f"class folder in train/ (and val/, test/ beside it): ROOT/train/<class>/…"
            )
        for cls in top:
            take(cls, None, root_s)
    bad += unlisted

    # (a scan's cache: what was found good before, by file stamp, is not decoded again)
    cache = _ScanCache(root_s) if use_cache else None
    results = _verify_all([c[0] for c in candidates], progress, stop, workers, cache)

    good: dict[str, list[tuple[str, str | None]]] = {c: [] for c in class_names}
    unusable_in: dict[str, list[tuple[str, str]]] = {}  # class -> its files that cannot be used, and why
    by_hash: dict[str, list[str]] = {}
    for (path, cls, split_name), (digest, reason) in zip(candidates, results, strict=True):
        if reason is not None:
            bad.append((path, reason))
            unusable_in.setdefault(cls, []).append((path, reason))
            continue
        good[cls].append((path, split_name))
        by_hash.setdefault(digest, []).append(path)

    classes = sorted(c for c in class_names if good[c])
    lost = sorted(c for c in class_names if not good[c] and unusable_in.get(c))  # every file unusable: not "empty"
    # files of other types alone (a class of iPhone photos, all HEIC): left out as unusable, with the reason, not
    # called empty (train said "empty class folder left out" of a folder of photos)
    left = sorted(c for c in class_names if not good[c] and c not in blocked and c not in lost)
    other_only = [c for c in left if others.get(c)]
    empty = [c for c in left if not others.get(c)]
    if len(classes) < min_classes or not classes:
        loose = sum(reason == LOOSE_REASON for _, reason in bad)
        if not class_names and loose:
            why = (
                f"{count_noun(loose, 'image')} directly in this folder, but no class folders: put each "
                "class's images in a sub-folder named after the class (ROOT/cat/…, ROOT/dog/…)"
            )
        elif not class_names:
            why = "no class folders (expected ROOT/<class>/<image> or ROOT/train/<class>/<image>)"
        elif not classes:
            why = f"no readable images in {len(class_names)} class folder(s)"
        else:
            why = one_class_reason(classes[0])
        runs = [f for f, reason in bad if reason == RUN_FOLDER_REASON]
        if runs:  # (a class folder taken for one would be missing without a word)
            why += f"; {len(runs)} run folder{'s' if len(runs) != 1 else ''} left out, e.g. {runs[0]}"
        if lost:  # classes whose every file is unusable: which, how many files, and one of them with its reason
            n = sum(len(unusable_in[c]) for c in lost)
            path, reason = min(unusable_in[lost[0]])
            why += (
                f"; {', '.join(map(repr, lost[:4]))}{', …' if len(lost) > 4 else ''} "
                f"{'holds' if len(lost) == 1 else 'hold'} only files that cannot be used ({n} file{'s' if n != 1 else ''}, e.g. "
                f"{path}: {reason})"
            )
        if other_only:
            n = sum(len(others[c]) for c in other_only)
            path = min(others[other_only[0]])
            why += (
                f"; {', '.join(map(repr, other_only[:4]))}{', …' if len(other_only) > 4 else ''} "
                f"{'holds' if len(other_only) == 1 else 'hold'} no image of a type read ({n} other "
                f"file{'s' if n != 1 else ''}, e.g. {path}: {ignored_reason(path)})"
            )
        raise DataError(f"{root_s}: {why}")

    samples = [Sample(path, label, split_name) for label, cls in enumerate(classes) for path, split_name in good[cls]]
    if layout == "splits" and any(s == "train" for c in classes for _, s in good[c]):
        untrained = [c for c in classes if all(s != "train" for _, s in good[c])]
        if untrained:  # (training refuses a train/ of one class, and warns of the others)
            notes.append(
                f"no images in train/ for {', '.join(untrained)} (only in "
                f"{' and '.join(sorted({f'{s}/' for c in untrained for _, s in good[c]}))}): a model trained here "
                f"cannot learn to predict {'them' if len(untrained) > 1 else 'it'}"
            )
    duplicates = sorted(sorted(g) for g in by_hash.values() if len(g) > 1)
    content = _listing_digest(  # (of the bytes' digests the scan made anyway, for the duplicates)
        f"{cls}\t{_rel_key(path, root_s)}\t{digest}"
        for (path, cls, _), (digest, reason) in zip(candidates, results, strict=True)
        if reason is None and cls in classes
    )
    return DatasetIndex(
        root=root_s,
        layout=layout,
        classes=classes,
        samples=samples,
        bad_files=sorted(bad),
        empty_classes=empty,
        unusable_classes=sorted(lost + other_only),
        duplicates=duplicates,
        ignored_files=sorted(ignored),
        notes=notes + _unicode_twins(taken),
        content_digest=content if samples else "",
        digests={
            path: digest
            for (path, cls, _), (digest, reason) in zip(candidates, results, strict=True)
            if reason is None and cls in classes and digest
        },
    )


SCAN_CACHE_VERSION = 2  # (2: runs.file_stamp's order)


def scan_cache_dir() -> Path:
    """$RESNEXT_STUDIO_CACHE/scans, else the platform's user cache folder for resnext-studio / scans."""
    env = os.environ.get("RESNEXT_STUDIO_CACHE")
    if env:
        return Path(env) / "scans"
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("resnext-studio", appauthor=False)) / "scans"


class _ScanCache:
    """The images a scan of one folder found good, with their digests, by file stamp: the next scan of the folder
    (the app opens on the last one at every start) decodes only the files changed since. A file whose stamp
    differs is checked again; a file found bad is never kept (checked at every scan, its reason said afresh). A
    cache that cannot be read or written costs only the time it would have saved."""

    def __init__(self, root: str) -> None:
        key = hashlib.blake2b(root.encode("utf-8", "surrogateescape"), digest_size=12).hexdigest()
        self.file = scan_cache_dir() / f"{key}.json"
        self.root = root
        self.files: dict[str, list] = {}
        try:
            doc = json.loads(self.file.read_text(encoding="utf-8"))
            same = (doc.get("version"), doc.get("pillow"), doc.get("root")) == (
                SCAN_CACHE_VERSION,
                Image.__version__,
                root,
            )
            if same and isinstance(doc.get("files"), dict):  # (another Pillow may read a file otherwise)
                self.files = doc["files"]
        except (OSError, ValueError, AttributeError):
            pass

    def get(self, path: str, stamp: list[int] | None) -> tuple[str, None] | None:
        """(digest, None) of an image found good with this stamp (runs.file_stamp, as a list: JSON's), else None."""
        entry = self.files.get(path)
        if stamp is None or not isinstance(entry, list) or len(entry) != 2 or entry[0] != stamp:
            return None
        return (entry[1], None) if isinstance(entry[1], str) else None

    def save(self, paths: list[str], stamps: list, results: list[tuple[str | None, str | None]]) -> None:
        files = {
            p: [st, digest]
            for p, st, (digest, reason) in zip(paths, stamps, results, strict=True)
            if st is not None and digest and reason is None
        }
        if files == self.files:
            return  # (nothing changed: a data set of 20,000 images reopened rewrote 3 MB)
        doc = {"version": SCAN_CACHE_VERSION, "pillow": Image.__version__, "root": self.root, "files": files}
        tmp = self.file.with_name(f".{self.file.name}.{os.getpid()}.tmp")
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(doc, separators=(",", ":")), encoding="utf-8")
            os.replace(tmp, self.file)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()
        self.files = files


def _verify_all(
    paths: list[str],
    progress: Callable[[int, int], None] | None,
    stop: Any,
    workers: int | None,
    cache: _ScanCache | None = None,
) -> list[tuple[str | None, str | None]]:
    total = len(paths)
    results: list[tuple[str | None, str | None]] = [(None, None)] * total
    if progress:
        progress(0, total)
    if not total:
        return results
    if cache is not None:
        from core.runs import file_stamp

        stamps = [None if (st := file_stamp(p)) is None else list(st) for p in paths]
    else:
        stamps = [None] * total
    todo = []
    for i, (path, st) in enumerate(zip(paths, stamps, strict=True)):
        known = cache.get(path, st) if cache is not None else None
        if known is None:
            todo.append(i)
        else:
            results[i] = known
    step = max(1, total // PROGRESS_STEPS)
    n_workers = max(1, min(workers or default_workers(), max(1, len(todo))))

    def check(i: int) -> tuple[int, tuple[str | None, str | None] | None]:
        return i, None if _is_stopped(stop) else verify_image(paths[i])

    done = total - len(todo)
    if progress and done:
        progress(done, total)
    with ThreadPoolExecutor(n_workers, thread_name_prefix="scan") as pool:
        futures = [pool.submit(check, i) for i in todo]
        try:
            for fut in as_completed(futures):
                i, res = fut.result()
                if res is None or _is_stopped(stop):
                    raise DataError("scan cancelled")
                results[i] = res
                done += 1
                if progress and (done % step == 0 or done == total):
                    progress(done, total)
        finally:
            for fut in futures:
                fut.cancel()
    if cache is not None:
        cache.save(paths, stamps, results)
    return results


# ----------------------------------------------------------------------------------------------------------------
# Splitting


@dataclass
class Split:
    train: list[int]
    val: list[int]
    test: list[int]


def _groups(index: DatasetIndex) -> list[list[int]]:
    """Sample indices grouped so that identical files stay together."""
    pos = {s.path: i for i, s in enumerate(index.samples)}
    seen: set[int] = set()
    groups = []
    for dup in index.duplicates:
        g = sorted(pos[p] for p in dup if p in pos and pos[p] not in seen)
        if g:
            seen.update(g)
            groups.append(g)
    groups += [[i] for i in range(len(index.samples)) if i not in seen]
    return groups


def _stratified(
    index: DatasetIndex, pool: Sequence[int], val: float, test: float, seed: int
) -> tuple[list[int], list[int], list[int]]:
    in_pool = set(pool)
    by_class: dict[int, list[list[int]]] = {}
    for g in _groups(index):
        g = [i for i in g if i in in_pool]
        if g:
            by_class.setdefault(index.samples[g[0]].label, []).append(g)
    rng = random.Random(seed)
    train: list[int] = []
    val_l: list[int] = []
    test_l: list[int] = []
    for label in sorted(by_class):
        units = by_class[label]
        rng.shuffle(units)
        n = sum(len(u) for u in units)
        n_val = round(n * val)
        n_test = round(n * test)
        if val > 0 and n >= 2:
            n_val = max(1, n_val)
        if test > 0 and n >= 3:
            n_test = max(1, n_test)
        while n_val + n_test > n - 1 and n_val + n_test > 0:
            if n_test >= n_val and n_test > 0:
                n_test -= 1
            else:
                n_val -= 1
        held = 0  # images of this class given to val and test so far; at least one stays in train
        for part, quota in ((val_l, n_val), (test_l, n_test)):
            taken, units = _fill(units, quota, n - 1 - held)
            part += taken
            held += len(taken)
        train += [i for u in units for i in u]
    return sorted(train), sorted(val_l), sorted(test_l)


def _fill(units: list[list[int]], quota: int, room: int) -> tuple[list[int], list[list[int]]]:
    """Take groups (identical files stay together) in their shuffled order while they fit `quota` images; if some
    are still owed, the smallest group left when it brings the part nearer its quota (or as near: two copies for
    a quota of one) and leaves room in train. Returns the images taken and the groups left. Every group whole as
    it came, a burst of 6 copies in 18 images went to validation at 20 % (8 of 18), and a class of copies of one
    photo went there entire, leaving none to train on whatever the share."""
    taken: list[int] = []
    left: list[list[int]] = []
    limit = min(quota, room)  # (validation may have taken a pair for a quota of one: test must not empty train)
    for u in units:
        if len(taken) + len(u) <= limit:
            taken += u
        else:
            left.append(u)
    owed = quota - len(taken)
    if owed > 0 and left:
        u = min(left, key=len)
        if len(u) <= 2 * owed and len(taken) + len(u) <= room:
            taken += u
            left.remove(u)
    return taken, left


def split(index: DatasetIndex, val: float = 0.2, test: float = 0.0, seed: int = 0) -> Split:
    """Stratified, seeded split; duplicate files always land in the same part; pre-split folders are respected."""
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise DataError(f"val={val}, test={test}: fractions must be in [0, 1) and sum to less than 1")
    if index.layout == "splits":
        parts: dict[str, list[int]] = {"train": [], "val": [], "test": []}
        for i, s in enumerate(index.samples):
            parts[s.split or "train"].append(i)
        if index.val_from_train() and val > 0:
            # Only train/ (and maybe test/) exists: carve the validation part out of train.
            tr, va, _ = _stratified(index, parts["train"], val, 0.0, seed)
            parts["train"], parts["val"] = tr, va
        return Split(parts["train"], parts["val"], parts["test"])
    tr, va, te = _stratified(index, range(len(index.samples)), val, test, seed)
    return Split(tr, va, te)


# ----------------------------------------------------------------------------------------------------------------
# Decode stage and batch transforms


def resize_size(image_size: int) -> int:
    return image_size if image_size <= 64 else round(image_size * 256 / 224)


def _resize_crop(img: Image.Image, r: int) -> Image.Image:
    """Shorter side resized to r, centre r x r crop. A picture more than 4:1 resizes only the part the crop keeps:
    resizing all of a 1 x 1,000,000 strip first took 6 GB. (Pillow's filter reads the same source pixels either
    way; results can differ by one level of 255, so ordinary photos keep the documented resize-then-crop.)"""
    w, h = img.size
    if w <= h:
        nw, nh = r, max(r, int(r * h / w))
    else:
        nw, nh = max(r, int(r * w / h)), r
    if max(nw, nh) > 4 * r:
        sx, sy = w / nw, h / nh
        left, top = int(round((nw - r) / 2.0)), int(round((nh - r) / 2.0))
        return img.resize((r, r), Image.Resampling.BILINEAR, box=(left * sx, top * sy, (left + r) * sx, (top + r) * sy))
    if (nw, nh) != (w, h):
        img = img.resize((nw, nh), Image.Resampling.BILINEAR)
    left = int(round((nw - r) / 2.0))
    top = int(round((nh - r) / 2.0))
    if (nw, nh) != (r, r):
        img = img.crop((left, top, left + r, top + r))
    return img


def decode_for_size(img: Image.Image, image_size: int) -> torch.Tensor:
    """RGB PIL image → uint8 [3, R, R]: shorter side resized to R = resize_size(image_size), centre-cropped."""
    import torch

    if img.mode != "RGB":
        img = _to_rgb(img)
    img = _resize_crop(img, resize_size(image_size))
    return torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).contiguous()


def load_for_model(source: Any, image_size: int) -> torch.Tensor:
    """THE decode for model input: uint8 [3, R, R] as the cache, the streaming loader and the Predictor hold it.

    JPEG files decode reduced (load_image's draft) to the smallest power-of-2 scale whose shorter side is still
    ≥ R = resize_size(image_size), then decode_for_size resizes and centre-crops; every path that feeds a model
    must call this so that training, evaluation, prediction and export checks see identical tensors.
    """
    return decode_for_size(load_image(source, draft=resize_size(image_size)), image_size)


def load_with_original(source: Any, image_size: int, draft: int | None = None) -> tuple[torch.Tensor, Image.Image]:
    """(load_for_model(source, image_size), the full-resolution load_image(source)) reading the source once:
    for views that show the model's answer over the original picture (Grad-CAM). `draft`: the picture may be
    decoded at a reduced scale keeping `draft` px (a JPEG's; see load_image)."""
    if not isinstance(source, (str, Path, Image.Image, np.ndarray)) and hasattr(source, "read"):
        name = _source_name(source)
        try:
            raw = source.read()
        except Exception as e:  # noqa: BLE001 - an unreadable stream is one image error like any other
            raise ImageLoadError(name, error_reason(e)) from None
        try:
            return load_for_model(io.BytesIO(raw), image_size), load_image(io.BytesIO(raw), draft=draft)
        except ImageLoadError as e:
            raise ImageLoadError(name, e.reason) from None
    return load_for_model(source, image_size), load_image(source, draft=draft)


@dataclass
class AugmentPlan:
    crop: str  # "center" | "pad" | "rrc"
    scale: tuple[float, float] = (1.0, 1.0)
    hflip: bool = False
    jitter: float = 0.0
    erasing: float = 0.0


def augment_plan(cfg: DataConfig, train: bool) -> AugmentPlan:
    if not train:
        return AugmentPlan("center")
    small = cfg.image_size <= 64
    level = cfg.augment
    if level == "none":
        plan = AugmentPlan("center")
    elif level == "light":
        plan = AugmentPlan("pad", hflip=True) if small else AugmentPlan("rrc", (0.6, 1.0), hflip=True)
    else:
        plan = AugmentPlan("pad", hflip=True) if small else AugmentPlan("rrc", (0.35, 1.0), hflip=True)
        if level == "strong":
            plan.jitter, plan.erasing = STRONG_JITTER, STRONG_ERASING
    if not cfg.hflip:
        plan.hflip = False
    if cfg.color_jitter > 0:
        plan.jitter = cfg.color_jitter
    if cfg.random_erasing > 0:
        plan.erasing = cfg.random_erasing
    return plan


class BatchTransform:
    """uint8 [B, 3, R, R] on any device → float32 normalised [B, 3, S, S]; per-sample augmentation when training."""

    def __init__(self, cfg: DataConfig, train: bool) -> None:
        self.image_size = cfg.image_size
        self.resize = resize_size(cfg.image_size)
        self.train = train
        self.plan = augment_plan(cfg, train)
        self.mean = IMAGENET_MEAN
        self.std = IMAGENET_STD

    def describe(self) -> str:
        p, s = self.plan, self.image_size
        parts = []
        if p.crop == "center":
            parts.append(f"centre-crop {s}" if self.resize != s else f"{s}px")
        elif p.crop == "pad":
            parts.append(f"pad-4 random crop {s}")
        else:
            parts.append(f"random-resized-crop {s} (scale {p.scale[0]:g}-{p.scale[1]:g})")
        if p.hflip:
            parts.append("h-flip")
        if p.jitter:
            parts.append(f"colour jitter {p.jitter:g}")
        if p.erasing:
            parts.append(f"random erasing {p.erasing:g}")
        parts.append("normalise (ImageNet)")
        return ("train: " if self.train else "eval: ") + ", ".join(parts)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        import torch

        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"BatchTransform expects uint8 [B, 3, R, R], got {tuple(x.shape)}")
        dev, b, s = x.device, x.shape[0], self.image_size
        p = self.plan

        def rand(*shape: int) -> torch.Tensor:  # parameters drawn on the CPU so a CPU generator works anywhere
            return to_device(torch.rand(*shape, generator=generator), dev)

        if b == 0:
            return torch.empty(0, 3, s, s, device=dev)
        if p.crop == "rrc":
            y = self._rrc(x.float(), p, generator)
        else:
            x = self._center(x, s)
            if p.crop == "pad":
                x = self._pad_crop(x, s, generator, flip=p.hflip)
            elif p.hflip:
                flip = rand(b) < 0.5
                x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            y = x.float()
        scale, shift, gray_w = self._constants(dev)
        if p.jitter:  # jitter works on [0, 1] colours
            y = self._jitter(y / 255.0, p.jitter, rand(3, b), gray_w)
            scale = scale * 255.0
        y = torch.addcmul(shift, y, scale)  # (y / 255 - mean) / std in one kernel
        if p.erasing:
            y = self._erase(y, p.erasing, rand(5, b))
        return y

    def _constants(self, dev: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """scale = 1 / (255 std) and shift = -mean / std as [1, 3, 1, 1] tensors on `dev`, made once per device
        (a copy per batch would sync): normalising a uint8-valued batch is then one multiply-add. Also the luma
        weights [1, 3, 1, 1] that colour jitter uses."""
        import torch

        key = (dev, tuple(self.mean), tuple(self.std))  # mean/std may be replaced (the Predictor does)
        cached = getattr(self, "_const", None)
        if cached is None or cached[0] != key:
            mean = torch.tensor(key[1], dtype=torch.float64).view(1, 3, 1, 1)
            std = torch.tensor(key[2], dtype=torch.float64).view(1, 3, 1, 1)
            scale = (1.0 / (255.0 * std)).float().to(dev)
            shift = (-mean / std).float().to(dev)
            gray_w = torch.tensor(LUMA_WEIGHTS).view(1, 3, 1, 1).to(dev)
            cached = self._const = (key, scale, shift, gray_w)
        return cached[1:]

    @staticmethod
    def _center(x: torch.Tensor, s: int) -> torch.Tensor:
        h, w = x.shape[-2:]
        if (h, w) == (s, s):
            return x
        if h < s or w < s:
            import torch.nn.functional as F

            return (
                F.interpolate(x.float(), size=(s, s), mode="bilinear", antialias=True, align_corners=False)
                .round()
                .clamp(0, 255)
                .to(x.dtype)
            )
        top, left = (h - s) // 2, (w - s) // 2
        return x[..., top : top + s, left : left + s]

    @staticmethod
    def _pad_crop(
        x: torch.Tensor, s: int, generator: torch.Generator | None, pad: int = 4, flip: bool = False
    ) -> torch.Tensor:
        """Zero-pad by `pad`, take a random s x s window per image (and mirror it left-right with probability ½):
        the rows and columns each image keeps are worked out on the CPU and sent in one copy, then two gathers
        crop (and flip) the whole batch."""
        import torch
        import torch.nn.functional as F

        b, _, h, w = x.shape
        xp = F.pad(x, (pad, pad, pad, pad))
        oy = torch.randint(0, h + 2 * pad - s + 1, (b,), generator=generator)
        ox = torch.randint(0, w + 2 * pad - s + 1, (b,), generator=generator)
        ar = torch.arange(s)
        cols = ox[:, None] + ar
        if flip:
            mirrored = torch.rand(b, generator=generator) < 0.5
            cols = torch.where(mirrored[:, None], cols.flip(1), cols)
        rows, cols = to_device(torch.stack([oy[:, None] + ar, cols]), x.device)  # one copy
        xp = xp.gather(2, rows[:, None, :, None].expand(b, 3, s, w + 2 * pad))
        return xp.gather(3, cols[:, None, None, :].expand(b, 3, s, s))

    def _rrc(self, x: torch.Tensor, p: AugmentPlan, generator: torch.Generator | None) -> torch.Tensor:
        """Random-resized crop (+ flip) of the whole batch in one grid_sample. The crop boxes are drawn on the CPU
        and worked out with numpy (a few microseconds; two dozen torch calls on 32 numbers took ~80 µs a batch), sent
        in one copy, and the sampling grid is one multiply-add on a grid made once: on a GPU, every small kernel
        of a batch costs more launch time than the crop itself. The grid equals F.affine_grid's for the matrix
        [[±w, 0, cx], [0, h, cy]] (align_corners=False)."""
        import torch
        import torch.nn.functional as F

        b, s = x.shape[0], self.image_size
        lo, hi = p.scale
        # one draw for all the numbers, in the order of one draw each: area, aspect, x, y (, flip)
        r = torch.rand(5 if p.hflip else 4, b, generator=generator).numpy()
        area = lo + (hi - lo) * r[0]
        ratio = np.exp(math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * r[1])
        cw = np.minimum(np.sqrt(area * ratio), 1.0)  # fractions of the full width / height
        ch = np.minimum(np.sqrt(area / ratio), 1.0)
        box = np.empty((b, 4), np.float32)  # x scale, y scale, x centre, y centre in normalised coordinates
        box[:, 0] = np.where(r[4] < 0.5, -cw, cw) if p.hflip else cw
        box[:, 1] = ch
        box[:, 2] = (1 - cw) * (2 * r[2] - 1)  # the crop stays inside the picture
        box[:, 3] = (1 - ch) * (2 * r[3] - 1)
        box_dev = to_device(torch.from_numpy(box), x.device)[:, None, None, :]
        grid = torch.addcmul(box_dev[..., 2:], self._base_grid(s, x.device), box_dev[..., :2])
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    def _base_grid(self, s: int, dev: torch.device) -> torch.Tensor:
        """[1, s, s, 2] pixel centres (x, y) in normalised coordinates, as F.affine_grid places them for the
        identity; made once per size and device."""
        import torch

        key = (s, dev)
        cached = getattr(self, "_grid", None)
        if cached is None or cached[0] != key:
            c = (torch.arange(s, dtype=torch.float32) * 2 + 1) / s - 1
            grid = torch.stack([c.expand(s, s), c[:, None].expand(s, s)], dim=-1)[None]
            cached = self._grid = (key, grid.to(dev))
        return cached[1]

    @staticmethod
    def _jitter(y: torch.Tensor, j: float, r: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Brightness, contrast and saturation factors 1 ± j from the uniform draws r [3, B]."""
        b = y.shape[0]
        brightness, contrast, saturation = (1 - j + 2 * j * r).clamp(min=0).view(3, b, 1, 1, 1)
        y = (y * brightness).clamp(0, 1)
        mean = (y * weights).sum(1, keepdim=True).mean((2, 3), keepdim=True)
        y = ((y - mean) * contrast + mean).clamp(0, 1)
        gray = (y * weights).sum(1, keepdim=True)
        return ((y - gray) * saturation + gray).clamp(0, 1)

    @staticmethod
    def _erase(y: torch.Tensor, prob: float, r: torch.Tensor) -> torch.Tensor:
        """Random erasing of one box per image (with probability prob) from the uniform draws r [5, B]."""
        import torch

        b, _, h, w = y.shape
        area = (0.02 + (0.33 - 0.02) * r[0]) * h * w
        ratio = torch.exp(math.log(0.3) + (math.log(3.3) - math.log(0.3)) * r[1])
        eh = torch.sqrt(area * ratio).clamp(1, h).floor()
        ew = torch.sqrt(area / ratio).clamp(1, w).floor()
        y0 = ((h - eh + 1) * r[2]).floor().clamp(max=h - 1)
        x0 = ((w - ew + 1) * r[3]).floor().clamp(max=w - 1)
        apply = r[4] < prob
        rows = torch.arange(h, device=y.device).view(1, h, 1)
        cols = torch.arange(w, device=y.device).view(1, 1, w)
        mask = (
            (rows >= y0.view(b, 1, 1))
            & (rows < (y0 + eh).view(b, 1, 1))
            & (cols >= x0.view(b, 1, 1))
            & (cols < (x0 + ew).view(b, 1, 1))
            & apply.view(b, 1, 1)
        )
        return y.masked_fill(mask[:, None], 0.0)


def to_device(t: torch.Tensor, dev: torch.device) -> torch.Tensor:
    """A small CPU tensor (augmentation parameters, batch indices) on `dev` without making the host wait.

    On CUDA it is staged in pinned memory first: from pageable memory the driver may have to wait for the stream
    before it copies, which would drain the GPU's queue once per batch. Pinned blocks come from PyTorch's caching
    host allocator, which hands a block out again only after its copy has finished."""
    if dev.type != "cuda":
        return t.to(dev)
    return t.pin_memory().to(dev, non_blocking=True)


def denormalize(y: torch.Tensor) -> torch.Tensor:
    """Normalised float [B, 3, S, S] → uint8 images (for previews)."""
    import torch

    mean = torch.tensor(IMAGENET_MEAN, device=y.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=y.device).view(1, 3, 1, 1)
    return ((y * std + mean) * 255).round().clamp(0, 255).to(torch.uint8)


def preview_augmentations(path: Any, cfg: DataConfig, n: int = 8, seed: int = 0) -> list[Image.Image]:
    """n augmented versions of one image as the training pipeline sees them (for the GUI's live preview)."""
    import torch

    x = load_for_model(path, cfg.image_size).unsqueeze(0).repeat(n, 1, 1, 1)
    y = BatchTransform(cfg, train=True)(x, generator=torch.Generator().manual_seed(seed))
    arr = denormalize(y).permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray(a) for a in arr]


# ----------------------------------------------------------------------------------------------------------------
# Loaders


@dataclass
class Batch:
    x: torch.Tensor  # uint8 [B, 3, R, R], on the loader's device
    y: torch.Tensor  # long [B], on the loader's device
    idx: torch.Tensor  # long [B] indices into index.samples, on the CPU
    errors: list[tuple[str, str]] = field(default_factory=list)  # (path, reason) dropped from this batch


def epoch_order(n: int, shuffle: bool, seed: int, epoch: int, rank: int = 0, world_size: int = 1) -> list[int]:
    """Positions 0..n-1 this rank visits in an epoch (DistributedSampler semantics: padded to divide evenly)."""
    import torch

    if shuffle:
        g = torch.Generator().manual_seed(seed + epoch)
        order = torch.randperm(n, generator=g).tolist()
    else:
        order = list(range(n))
    if world_size > 1 and n:
        total = math.ceil(n / world_size) * world_size
        while len(order) < total:
            order += order[: total - len(order)]
        order = order[rank:total:world_size]
    return order


class _EpochSampler:
    def __init__(self, n: int, shuffle: bool, seed: int, rank: int, world_size: int) -> None:
        self.n, self.shuffle, self.seed, self.rank, self.world_size = n, shuffle, seed, rank, world_size
        self.epoch = 0
        self.skip = 0  # positions of this epoch already trained (a resumed, stopped epoch)

    def __iter__(self) -> Iterator[int]:
        return iter(epoch_order(self.n, self.shuffle, self.seed, self.epoch, self.rank, self.world_size)[self.skip :])

    def __len__(self) -> int:
        return max(0, (math.ceil(self.n / self.world_size) if self.n else 0) - self.skip)


class _StreamDataset:
    """Map-style dataset: position → (uint8 tensor | None, label, sample index, error reason | None)."""

    def __init__(self, paths: list[str], labels: list[int], ids: list[int], image_size: int) -> None:
        self.paths, self.labels, self.ids, self.image_size = paths, labels, ids, image_size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[Any, int, int, str | None]:
        try:
            return load_for_model(self.paths[i], self.image_size), self.labels[i], self.ids[i], None
        except ImageLoadError as e:
            return None, self.labels[i], self.ids[i], e.reason
        except Exception as e:
            return None, self.labels[i], self.ids[i], error_reason(e)


def _collate(items: list[tuple[Any, int, int, str | None]], resize: int) -> tuple[Any, Any, Any, list[tuple[int, str]]]:
    import torch

    ok = [it for it in items if it[3] is None]
    errors = [(it[2], it[3]) for it in items if it[3] is not None]
    x = torch.stack([it[0] for it in ok]) if ok else torch.empty(0, 3, resize, resize, dtype=torch.uint8)
    y = torch.tensor([it[1] for it in ok], dtype=torch.long)
    idx = torch.tensor([it[2] for it in ok], dtype=torch.long)
    return x, y, idx, errors


class _Collate:
    def __init__(self, resize: int) -> None:
        self.resize = resize

    def __call__(self, items: list) -> tuple:
        return _collate(items, self.resize)


def _leave_ctrl_c_to_the_trainer(_worker_id: int) -> None:
    """A terminal's Ctrl-C reaches the loader workers too; they ignore it, and the training process stops after
    its batch (last.pt saved) and shuts them down, instead of dying mid-batch under it."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _device(device: Any) -> torch.device:
    import torch

    if device in (None, "auto"):
        return torch.device("cpu")
    return torch.device(device)


def _windows_memory() -> tuple[int, int] | None:
    """(total, available) physical memory from GlobalMemoryStatusEx (Windows has neither /proc nor sysconf)."""
    import ctypes

    class MemoryStatusEx(ctypes.Structure):
        _fields_ = [
            ("dwLength", ctypes.c_ulong),
            ("dwMemoryLoad", ctypes.c_ulong),
            *((name, ctypes.c_ulonglong) for name in ("total", "avail", "page", "page_free", "virt", "virt_free", "x")),
        ]

    st = MemoryStatusEx()
    st.dwLength = ctypes.sizeof(st)
    try:
        if not ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(st)):  # type: ignore[attr-defined]
            return None
    except (AttributeError, OSError):
        return None
    return int(st.total), int(st.avail)


def available_memory_bytes() -> int:
    """Available host memory (Linux: MemAvailable; Windows: available physical memory), else the total."""
    if os.name == "nt":
        got = _windows_memory()
        if got:
            return got[1]
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return total_memory_bytes()


def total_memory_bytes() -> int:
    """Physical memory (4 GiB where it cannot be read)."""
    if os.name == "nt":
        got = _windows_memory()
        if got:
            return got[0]
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")  # (Linux and macOS)
    except (ValueError, OSError, AttributeError):
        return 4 << 30


def cache_budget_bytes(cfg: DataConfig, device: Any) -> int:
    """How many bytes the decoded-image cache may use on this device."""
    if cfg.cache_budget_mb is not None:
        return int(cfg.cache_budget_mb) * 1024 * 1024
    dev = _device(device)
    if dev.type == "cuda":
        import torch

        free, _ = torch.cuda.mem_get_info(dev)
        return int(free * 0.25)
    # the processes of a torchrun on this machine share its memory, and each caches the whole training set
    try:
        local = max(1, int(os.environ.get("LOCAL_WORLD_SIZE") or 1))
    except ValueError:
        local = 1
    return int(min(total_memory_bytes() / 4, available_memory_bytes() / 2) / local)


def usable_cores() -> int:
    """The cores this process may run on (taskset's or a cpuset's share, where the system says; a CPU quota of a
    container is not seen)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # (macOS and Windows have no affinity call)
        return max(1, os.cpu_count() or 1)


def default_num_workers(device: Any = None) -> int:
    """Streaming decode processes: one core is left to the training loop; a GPU eats images faster than a CPU
    trains on them, so it gets up to 8 (8 x ~125 photos/s each), a CPU up to 4. Windows: up to 4 (each spawned
    process loads torch's CUDA libraries into memory of its own, and 8 ran out of paging file: pytorch#59904)."""
    cap = 8 if _device(device).type == "cuda" and os.name != "nt" else 4
    return max(0, min(cap, usable_cores() - 1))


class BatchLoader:
    """Iterable of Batch for one split: "memory" (decoded-image cache) or "stream" (DataLoader) mode."""

    def __init__(
        self,
        index: DatasetIndex,
        indices: Sequence[int],
        cfg: DataConfig,
        *,
        batch_size: int,
        shuffle: bool,
        seed: int,
        device: Any,
        drop_last: bool = False,
        num_workers: int | None = None,
        rank: int = 0,
        world_size: int = 1,
        progress: Callable[[int, int], None] | None = None,
        budget: int | None = None,
        stop: Any = None,
    ) -> None:
        """`budget`: the cache's bytes, when not this device's (cache_budget_bytes): the ranks of a distributed run
        take one, so that every rank caches or every rank streams. `progress(done, total)` follows the reading of
        the images into memory; `stop` (a StopToken) ends it: LoadStopped is raised (a Stop pressed then had waited
        for every image to be decoded, minutes for a large set)."""
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size}: must be ≥ 1")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank={rank}: must be in [0, world_size={world_size})")
        self.index, self.cfg = index, cfg
        self.batch_size, self.shuffle, self.seed, self.drop_last = batch_size, shuffle, seed, drop_last
        self.rank, self.world_size = rank, world_size
        self.device = _device(device)
        self.epoch = 0
        self.skip = 0  # batches of this epoch to leave out (set_epoch)
        self.served = 0  # batches of this epoch handed out so far (including the left-out ones)
        self.resize = resize_size(cfg.image_size)
        self.ids = [int(i) for i in indices]
        self._pending: list[tuple[str, str]] = []
        self.budget = cache_budget_bytes(cfg, self.device) if budget is None else int(budget)
        self.need = len(self.ids) * 3 * self.resize * self.resize
        self.note = ""
        want_memory = cfg.cache != "stream" and self.need <= self.budget
        if cfg.cache == "memory" and not want_memory:
            self.note = f" (cache=memory but {_mb(self.need)} > budget {_mb(self.budget)})"
        self.mode = "memory" if want_memory else "stream"
        self.workers = 0
        self._loader = None
        if self.mode == "memory":
            self._fill_cache(progress, stop)
        else:
            self._make_stream(num_workers)

    # -- memory mode
    def _fill_cache(self, progress: Callable[[int, int], None] | None, stop: Any = None) -> None:
        import torch

        total = len(self.ids)
        r = self.resize
        cache = torch.empty(total, 3, r, r, dtype=torch.uint8, device=self.device)
        ok = [False] * total
        step = max(1, total // PROGRESS_STEPS)
        done = 0
        if progress:
            progress(0, total)

        def work(pos: int) -> tuple[int, Any, str | None]:
            if stop is not None and stop.stopped:
                return pos, None, None  # (not read: the loop below ends at it)
            path = self.index.samples[self.ids[pos]].path
            try:
                return pos, load_for_model(path, self.cfg.image_size), None
            except ImageLoadError as e:
                return pos, None, e.reason
            except Exception as e:
                return pos, None, error_reason(e)

        threads = max(1, min(default_workers(), total or 1))
        chunk = 1024
        with ThreadPoolExecutor(threads, thread_name_prefix="cache") as pool:
            for start in range(0, total, chunk):
                stage = torch.empty(min(chunk, total - start), 3, r, r, dtype=torch.uint8)
                for pos, t, reason in pool.map(work, range(start, min(start + chunk, total))):
                    if stop is not None and stop.stopped:
                        pool.shutdown(wait=False, cancel_futures=True)  # (the decodes under way are waited for)
                        raise LoadStopped
                    if reason is None:
                        stage[pos - start] = t
                        ok[pos] = True
                    else:
                        self._pending.append((self.index.samples[self.ids[pos]].path, reason))
                    done += 1
                    if progress and (done % step == 0 or done == total):
                        progress(done, total)
                cache[start : start + len(stage)] = stage.to(self.device)
        keep = [p for p in range(total) if ok[p]]
        if len(keep) < total:
            cache = cache[torch.tensor(keep, dtype=torch.long, device=self.device)]
            self.ids = [self.ids[p] for p in keep]
        self.cache = cache
        self.labels = torch.tensor(
            [self.index.samples[i].label for i in self.ids], dtype=torch.long, device=self.device
        )
        self.need = cache.numel()

    # -- stream mode
    def _make_stream(self, num_workers: int | None) -> None:
        import torch
        from torch.utils.data import DataLoader

        workers = num_workers if num_workers is not None else self.cfg.num_workers
        self.workers = default_num_workers(self.device) if workers is None else int(workers)
        cores = usable_cores()
        if self.workers > cores:  # each a process of its own torch (~0.5 GB), twice (train and val loaders): more
            self.note += f"; {self.workers} workers asked for, {cores} used (one per core)"  # only fill memory
            self.workers = cores  # (only a number given can be more: the default leaves a core to training)
        samples = self.index.samples
        ds = _StreamDataset(
            [samples[i].path for i in self.ids],
            [samples[i].label for i in self.ids],
            list(self.ids),
            self.cfg.image_size,
        )
        self._sampler = _EpochSampler(len(self.ids), self.shuffle, self.seed, self.rank, self.world_size)
        kwargs: dict[str, Any] = {}
        if self.workers > 0:
            kwargs = {
                "multiprocessing_context": "spawn",
                "persistent_workers": True,
                "prefetch_factor": 4,
                "worker_init_fn": _leave_ctrl_c_to_the_trainer,
            }
        self._loader = DataLoader(
            ds,
            batch_size=self.batch_size,
            sampler=self._sampler,
            drop_last=self.drop_last,
            num_workers=self.workers,
            collate_fn=_Collate(self.resize),
            pin_memory=self.device.type == "cuda" and torch.cuda.is_available(),
            **kwargs,
        )

    # -- common
    def close(self) -> None:
        """Ends the stream's worker processes now. Persistent, they lived as long as the loader, and a trainer held
        in a reference cycle kept 4 whole torch processes alive after its run until a garbage collection. The
        loader is not iterated again after this."""
        loader, self._loader = self._loader, None
        shutdown = getattr(getattr(loader, "_iterator", None), "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()

    @property
    def num_samples(self) -> int:
        """Images this rank sees per epoch (before drop_last)."""
        n = len(self.ids)
        return math.ceil(n / self.world_size) if n else 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """The epoch whose order the next pass follows; `skip` leaves out its first batches (already trained by a
        run that was stopped in this epoch) without reading them."""
        self.epoch, self.skip = int(epoch), max(0, int(skip))
        if self.mode == "stream":
            self._sampler.epoch = self.epoch
            self._sampler.skip = self.skip * self.batch_size

    def __len__(self) -> int:
        n = self.num_samples
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def describe(self) -> str:
        n = len(self.ids)
        if self.mode == "memory":
            where = "GPU" if self.device.type == "cuda" else "memory"
            return f"cached {n} images in {where}, {_mb(self.need)}"
        return (
            f"streaming {n} images from disk with {self.workers} worker(s) "
            f"({_mb(self.need)} decoded > cache budget {_mb(self.budget)}){self.note}"
            if self.cfg.cache != "stream"
            else f"streaming {n} images from disk with {self.workers} worker(s){self.note}"
        )

    def __iter__(self) -> Iterator[Batch]:
        if self.mode == "memory":
            yield from self._iter_memory()
        else:
            yield from self._iter_stream()

    def _take_pending(self) -> list[tuple[str, str]]:
        errs, self._pending = self._pending, []
        return errs

    def _iter_memory(self) -> Iterator[Batch]:
        import torch

        order = torch.tensor(
            epoch_order(len(self.ids), self.shuffle, self.seed, self.epoch, self.rank, self.world_size),
            dtype=torch.long,
        )
        order_dev = to_device(order, self.device)  # one copy per epoch, none per batch
        ids = torch.tensor(self.ids, dtype=torch.long)
        self.served = self.skip
        for start in range(self.skip * self.batch_size, len(order), self.batch_size):
            stop = start + self.batch_size
            if self.drop_last and stop > len(order):
                break
            p_dev = order_dev[start:stop]
            self.served += 1
            yield Batch(  # (index_select: one kernel, less host time than advanced indexing)
                self.cache.index_select(0, p_dev),
                self.labels.index_select(0, p_dev),
                ids[order[start:stop]],
                self._take_pending(),
            )
        if self._pending:
            yield self._empty(self._take_pending())

    def _empty(self, errors: list[tuple[str, str]]) -> Batch:
        import torch

        r = self.resize
        return Batch(
            torch.empty(0, 3, r, r, dtype=torch.uint8, device=self.device),
            torch.empty(0, dtype=torch.long, device=self.device),
            torch.empty(0, dtype=torch.long),
            errors,
        )

    def _iter_stream(self) -> Iterator[Batch]:
        samples = self.index.samples
        non_blocking = self.device.type == "cuda"
        if self._loader is None:
            raise RuntimeError("this loader was closed")
        self.served = self.skip
        for x, y, idx, errs in self._loader:
            self.served += 1
            self._pending += [(samples[i].path, reason) for i, reason in errs]
            if len(idx) == 0:
                continue  # every image of this batch failed: its errors ride on the next batch
            yield Batch(
                x.to(self.device, non_blocking=non_blocking),
                y.to(self.device, non_blocking=non_blocking),
                idx,
                self._take_pending(),
            )
        if self._pending:
            yield self._empty(self._take_pending())


def _mb(n: float) -> str:
    if n >= 1 << 30:
        return f"{n / (1 << 30):.1f} GB"
    return f"{n / (1 << 20):.1f} MB"


# A BatchLoader over index.samples[i] for i in indices; yields uint8 batches (transform them on the device).
make_loader = BatchLoader
