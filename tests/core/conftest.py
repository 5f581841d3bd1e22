"""Fixtures for core tests: image folders with every awkward case the scanner and loader must handle."""

from __future__ import annotations

import shutil
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def write_jpeg(path: Path, seed: int, size: tuple[int, int] = (48, 40)) -> Path:
    """A small, unique JPEG (different content per seed)."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, "JPEG", quality=90)
    return path


def write_png_header(path: Path, width: int, height: int) -> Path:
    """A tiny PNG whose IHDR claims width x height pixels (8-bit RGB) — never decodable in memory."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    )
    path.write_bytes(data)
    return path


def write_exif_rotated(path: Path) -> Path:
    """40x20 stored JPEG, top half red / bottom half blue, EXIF orientation 6 (display rotated 90° clockwise)."""
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:10] = (255, 0, 0)
    arr[10:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(arr).save(path, "JPEG", quality=95, exif=exif)
    return path


def write_16bit_png(path: Path) -> Path:
    """16-bit grayscale PNG: columns 0-9 = 65535, 10-19 = 32896, 20-29 = 0."""
    arr = np.zeros((10, 30), np.uint16)
    arr[:, :10] = 65535
    arr[:, 10:20] = 32896
    Image.fromarray(arr).save(path)  # uint16 → mode I;16
    return path


def write_palette_png(path: Path) -> Path:
    """Palette PNG: left half index 0 (fully transparent), right half index 1 (opaque red)."""
    img = Image.new("P", (20, 10), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.paste(1, (10, 0, 20, 10))
    img.save(path, transparency=0)
    return path


def write_cmyk_jpeg(path: Path) -> Path:
    Image.new("CMYK", (24, 24), (0, 255, 255, 0)).save(path, "JPEG", quality=95)  # red
    return path


@dataclass
class Awkward:
    root: Path
    good: dict[str, Path] = field(default_factory=dict)  # name -> path, must be in samples
    bad: dict[str, tuple[Path, str]] = field(default_factory=dict)  # name -> (path, reason fragment)
    ignored: list[Path] = field(default_factory=list)  # must appear nowhere
    duplicate_pair: tuple[Path, Path] | None = None


@pytest.fixture
def awkward_dir(tmp_path: Path) -> Awkward:
    root = tmp_path / "awkward"
    cats, dogs = root / "cats", root / "dogs"
    a = Awkward(root)
    for i in range(4):
        a.good[f"cat{i}"] = write_jpeg(cats / f"cat{i}.jpg", seed=i)
        a.good[f"dog{i}"] = write_jpeg(dogs / f"dog{i}.JPEG", seed=100 + i)
    a.good["nested"] = write_jpeg(cats / "nested" / "deeper" / "n.jpg", seed=7)
    a.good["unicode"] = write_jpeg(cats / "чёрный кот 猫.jpg", seed=8)
    a.good["cmyk"] = write_cmyk_jpeg(cats / "cmyk.jpg")
    a.good["gray16"] = write_16bit_png(dogs / "gray16.png")
    a.good["palette"] = write_palette_png(dogs / "palette.png")
    a.good["exif6"] = write_exif_rotated(dogs / "exif6.jpg")
    dup_a = write_jpeg(cats / "dup_a.jpg", seed=9)
    dup_b = dogs / "dup_b.jpg"
    shutil.copy(dup_a, dup_b)
    a.good["dup_a"], a.good["dup_b"] = dup_a, dup_b
    a.duplicate_pair = (dup_a, dup_b)

    data = a.good["cat0"].read_bytes()
    (cats / "truncated.jpg").write_bytes(data[: len(data) // 2])
    a.bad["truncated"] = (cats / "truncated.jpg", "truncated image")
    (cats / "zero.jpg").write_bytes(b"")
    a.bad["zero"] = (cats / "zero.jpg", "empty file (0 bytes)")
    (dogs / "text.jpg").write_text("this is not an image\n")
    a.bad["text"] = (dogs / "text.jpg", "not an image (cannot identify image file)")
    a.bad["bomb"] = (write_png_header(dogs / "bomb.png", 20000, 20000), "too large to open: 400,000,000 pixels")

    (cats / "._cat0.jpg").write_bytes(b"\x00\x05\x16\x07AppleDouble")
    (cats / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (dogs / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
    (dogs / "notes.txt").write_text("not an image extension\n")
    a.ignored += [cats / "._cat0.jpg", cats / ".DS_Store", dogs / "Thumbs.db", dogs / "notes.txt"]
    a.ignored.append(write_jpeg(root / ".hidden" / "secret.jpg", seed=20))
    a.ignored.append(write_jpeg(cats / ".thumbnails" / "t.jpg", seed=21))
    a.ignored.append(write_jpeg(root / "__MACOSX" / "cats" / "m.jpg", seed=22))
    (root / "__MACOSX" / "cats" / "._cat0.jpg").write_bytes(b"\x00\x05\x16\x07")
    (root / "empty_class").mkdir()
    return a


@pytest.fixture
def jpeg_writer():
    """write_jpeg(path, seed, size=(48, 40)): a small unique JPEG."""
    return write_jpeg


@pytest.fixture
def png_header_writer():
    """write_png_header(path, width, height): a tiny PNG claiming a huge size."""
    return write_png_header


@pytest.fixture
def small_dataset(tmp_path: Path) -> Path:
    """Three classes of 12 small JPEGs each (unique content), class folders layout."""
    root = tmp_path / "small"
    for c, name in enumerate(("ant", "bee", "cow")):
        for i in range(12):
            write_jpeg(root / name / f"{i:02d}.jpg", seed=1000 * c + i, size=(40 + i, 36))
    return root
