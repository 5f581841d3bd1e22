"""Small builders shared by the test modules (tiny data sets that a tiny model learns in seconds)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

COLOURS = [(220, 40, 40), (40, 200, 40), (40, 40, 220)]
# `main.py train` flags for a run of a few seconds on the CPU
TINY_TRAIN_ARGS = [
    "--arch",
    "resnext11_2x4d",
    "--image-size",
    "16",
    "--batch-size",
    "4",
    "--device",
    "cpu",
    "--num-workers",
    "0",
    "--no-augment",
    "--lr",
    "0.01",
]


def make_colour_set(root: Path, per_class: int = 8, size: int = 16) -> Path:
    """Three classes (c0, c1, c2) of noisy red, green and blue PNGs; deterministic."""
    rng = np.random.default_rng(0)
    for c, col in enumerate(COLOURS):
        d = root / f"c{c}"
        d.mkdir(parents=True)
        for i in range(per_class):
            a = np.clip(np.array(col)[None, None] + rng.normal(0, 30, (size, size, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(a).save(d / f"{i:02d}.png")
    return root


def tab_chain(start) -> list:
    """The widgets Tab can visit after `start`, in order, until it comes back round: Qt's focus chain less the
    widgets that take no focus from Tab (hidden ones stay in: a tab page not shown is in the chain)."""
    from PySide6.QtCore import Qt

    chain, w = [], start
    for _ in range(1000):
        w = w.nextInFocusChain()
        if w is start:
            break
        if w.focusPolicy() & Qt.FocusPolicy.TabFocus:
            chain.append(w)
    return chain


def flip_a_weight_byte(src: Path, dst: Path) -> None:
    """Copy the torch.save file `src` to `dst` with one byte of its first tensor's data flipped (bit rot: the file
    still unpickles; only its zip checksums tell)."""
    import zipfile

    raw = bytearray(src.read_bytes())
    with zipfile.ZipFile(src) as z:
        info = next(i for i in z.infolist() if "/data/" in i.filename and i.file_size >= 8)
    at = info.header_offset
    start = (
        at + 30 + int.from_bytes(raw[at + 26 : at + 28], "little") + int.from_bytes(raw[at + 28 : at + 30], "little")
    )
    raw[start + 4] ^= 0x5A  # (a low byte of the second number: the value stays finite)
    dst.write_bytes(bytes(raw))


def train_tiny(data: Path, runs: Path, *more: str) -> Path:
    """`main.py train` of one quiet epoch of a tiny model on `data` into the empty folder `runs`: its run folder."""
    from core.cli import main

    assert (
        main(
            ["train", "--data", str(data), "--epochs", "1", "--runs-dir", str(runs), "--quiet", *TINY_TRAIN_ARGS, *more]
        )
        == 0
    )
    (run_dir,) = Path(runs).iterdir()
    return run_dir


def look_while_paused(monkeypatch, token, look) -> Callable[[], None]:
    """Another program looking at the runs while a trainer waits, paused: returns start(), to call right after
    token.pause(). `look()` runs on a thread of its own once the trainer has marked its folder paused
    (runs.mark_paused), then Resume is pressed (also when the mark never comes within 20 s: the test fails, not
    hangs)."""
    import threading

    from core import runs

    marked = threading.Event()
    mark = runs.mark_paused

    def mark_and_tell(run_dir, paused):
        mark(run_dir, paused)
        if paused:
            marked.set()

    def program() -> None:
        try:
            if marked.wait(20):
                look()
        finally:
            token.resume()

    monkeypatch.setattr(runs, "mark_paused", mark_and_tell)
    return lambda: threading.Thread(target=program, daemon=True).start()
