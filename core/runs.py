"""Run folders: create / list / load / delete, status.json, history.csv, batches.csv and the curves plot."""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import math
import os
import re
import shutil
import socket
import stat
import sys
import tempfile
import threading
import time
import unicodedata
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from core import count_noun
from core.config import MAX_EPOCHS

HISTORY_FIELDS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")
BATCH_FIELDS = ("epoch", "step", "steps", "loss")  # batches.csv: the epoch's running mean loss as training went
STATUSES = ("running", "completed", "stopped", "failed", "interrupted")
# In a run folder while its training is paused (the app's Pause; status.json goes on saying "running"): other
# programs' listings (`runs`, another window) said "running" all through a pause.
PAUSED_MARKER = ".paused"


def default_runs_dir() -> Path:
    """$RESNEXT_STUDIO_RUNS if set, else the platform's user data dir / "runs"."""
    env = os.environ.get("RESNEXT_STUDIO_RUNS")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("resnext-studio", appauthor=False)) / "runs"


def runs_dir_named(root: str | Path) -> str:
    """The default runs folder `root` as a message names it: by the environment variable that chose it, else as
    "the runs folder" (not as --runs-dir, a flag the user did not give)."""
    return f"RESNEXT_STUDIO_RUNS={root}" if os.environ.get("RESNEXT_STUDIO_RUNS") else f"the runs folder {root}"


class _NotKept(Exception):
    """A reader's answer that is not kept (it could not read the file: a cause that may pass, a permission given,
    a network share back, without the file changing)."""

    def __init__(self, value: Any) -> None:
        super().__init__("not kept")
        self.value = value


class _FileMemo:
    """What a reader made of a file, kept while the file stays as it was (its size, times and inode):
    the Runs and Predict tabs list every run folder each time they are shown, and 300 runs took 0.6 s of the
    window's thread, most of it opening each checkpoint's zip index and parsing each history.csv again."""

    def __init__(self, limit: int) -> None:
        self._items: OrderedDict[str, tuple[tuple[int, ...], Any]] = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def get(self, path: str | Path, read: Callable[[str | Path], Any]) -> Any:
        name, state = os.path.abspath(path), self._state(path)
        if state is not None:
            with self._lock:
                kept = self._items.get(name)
                if kept is not None and kept[0] == state:
                    self._items.move_to_end(name)
                    return kept[1]
        try:
            value = read(path)
        except _NotKept as e:
            return e.value
        if state is not None:
            with self._lock:
                self._items[name] = (state, value)
                self._items.move_to_end(name)
                while len(self._items) > self._limit:
                    self._items.popitem(last=False)
        return value

    @staticmethod
    def _state(path: str | Path) -> tuple[int, ...] | None:
        """What tells the file changed: its times (the change time too: no one can set it, and a rewrite that puts
        the modification time back, rsync -t or touch -r, moves it), size and inode. None: nothing is kept (no
        file, or one changed just now: a change within the file system clock's tick, a few ms, keeps its time)."""
        try:
            st = os.stat(path)
        except (OSError, ValueError):
            return None
        if time.time_ns() - st.st_mtime_ns < 2_000_000_000:
            return None
        return (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)


_CUT_SHORT = _FileMemo(4096)
_HISTORIES = _FileMemo(1024)
_BATCHES = _FileMemo(4)  # (one run's may hold 200,000 rows: the few drawn last)


def cut_short(path: str | Path) -> bool:
    """Whether a checkpoint file is empty, or a zip (torch.save's format) whose index is missing: a copy or a save
    that did not finish. Cheap (the end of the file); the older, non-zip format is not judged."""
    return _CUT_SHORT.get(path, _cut_short)


def _cut_short(path: str | Path) -> bool:
    try:
        with open(path, "rb") as f:
            if not f.read(1):
                return True
    except OSError:  # (not read at all: another matter than a cut-short file)
        raise _NotKept(False) from None
    return zip_kind(path) == "damaged"


def _all_trained(train: dict[str, Any], history: list[dict[str, Any]]) -> bool:
    """history.csv holds every epoch config.json plans."""
    planned = _count(train.get("epochs"))
    return bool(planned) and len(history) >= planned


@dataclass
class RunInfo:
    path: Path
    name: str
    created: float  # seconds since the epoch
    arch: str
    dataset: str
    epochs_done: int
    epochs_planned: int | None
    best_val_acc: float | None
    best_epoch: int | None
    status: str
    has_best: bool
    has_last: bool
    message: str = ""  # how it ended, in words (status.json's message: the failure, "stopped during epoch 3" …)
    data_root: str = ""  # the data folder it trained on, absolute where known ("" when its config says none)
    damaged_files: tuple[str, ...] = ()  # its checkpoints that are empty or cut short (not counted as had)
    unreadable_files: tuple[str, ...] = ()  # its status.json, config.json or history.csv, there but not readable
    host: str = ""  # the machine its status.json names, when that is another one (a run copied from there, or shared)
    paused: bool = False  # running, and paused by the app that trains it (PAUSED_MARKER)

    @property
    def ended_early(self) -> bool:
        """It ended before its last epoch: stopped, failed, or its process gone."""
        return self.status in ("interrupted", "failed", "stopped")

    @property
    def nothing_saved(self) -> bool:
        """It ended before it saved a checkpoint: nothing to resume, evaluate or predict with."""
        return self.ended_early and not self.has_last and not self.has_best

    @property
    def resumable(self) -> bool:
        """A run that ended before its last epoch and kept a last.pt to go on from."""
        return self.ended_early and self.has_last

    def to_dict(self) -> dict[str, Any]:
        """Its fields, and what `runs` says of it in words (ended early, resumable, nothing saved)."""
        d = dict(self.__dict__)
        d["path"] = str(self.path)
        d.update(ended_early=self.ended_early, resumable=self.resumable, nothing_saved=self.nothing_saved)
        return d


@dataclass
class RunRecord:
    path: Path
    config: dict[str, Any]
    history: list[dict[str, Any]]
    status: dict[str, Any]
    evaluation: dict[str, Any] | None


def _slug(text: str) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")
    return s[:60] or "data"


def _not_a_file(path: str | Path) -> bool:
    """Whether `path` is there but no regular file: a named pipe there (status.json made by mkfifo) hung `runs`
    and the Runs tab for good on the read."""
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def read_json(path: Path) -> dict[str, Any]:
    """A run file's JSON object: {} when it is missing, damaged, not an object, or no regular file (a pipe)."""
    if _not_a_file(path):
        return {}
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return d if isinstance(d, dict) else {}


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _current_umask()  # read once, at import: os.umask can only be read by setting it


def share_like_a_new_file(path: str | Path) -> None:
    """Give a temp file (mkstemp makes them 0600) the permissions a plainly created file would get."""
    os.chmod(path, 0o666 & ~_UMASK)


TEMP_SUFFIX = ".tmp"  # atomic writes go through ".<name>.<random>.tmp" in the same folder
# Windows refuses to replace a file that any program has open (the app reading status.json, a search indexer,
# antivirus, a sync client) with "access denied": such a reader lets go within moments, so a replace is retried.
REPLACE_RETRY_S = 2.0 if os.name == "nt" else 0.0


def replace_file(src: str | Path, dst: str | Path) -> None:
    """os.replace, retried for up to REPLACE_RETRY_S while the destination is held open elsewhere (Windows)."""
    deadline = time.monotonic() + REPLACE_RETRY_S
    delay = 0.01
    while True:
        try:
            os.replace(src, dst)
            return
        except PermissionError:
            if time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(2 * delay, 0.25)


def fsync(fd: int) -> None:
    """os.fsync(fd), except on macOS: there fsync hands the data to the drive, whose own cache a power cut can
    still lose (Apple's fsync(2)); fcntl F_FULLFSYNC asks the drive to write it out. A filesystem that refuses
    F_FULLFSYNC (some network ones) gets os.fsync."""
    if os.name == "posix":
        import fcntl

        if hasattr(fcntl, "F_FULLFSYNC"):  # (macOS builds of Python only)
            try:
                fcntl.fcntl(fd, fcntl.F_FULLFSYNC)
                return
            except OSError:
                pass
    os.fsync(fd)


@contextlib.contextmanager
def atomic_file(path: str | Path, mode: str = "w", newline: str | None = None) -> Iterator[IO[Any]]:
    """Write `path` through a temp file in the same folder, flushed and fsynced, then `os.replace`.

    Readers never see half a file; if anything fails the temp file is removed and the previous file stays.
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    except OSError as e:
        raise OSError(e.errno, e.strerror or str(e), str(path)) from None
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8", newline=newline) as f:
            yield f
            f.flush()
            fsync(f.fileno())
        share_like_a_new_file(tmp)
        replace_file(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.filename in (None, tmp):  # name the file meant, not its temp file
            raise OSError(e.errno, e.strerror or str(e), str(path)) from None
        raise


TRAINER_FILES = (
    "last.pt",
    "best.pt",
    "history.csv",
    "batches.csv",
    "status.json",
    "config.json",
    "curves.png",
    "progress.json",  # (torchrun runs)
)


def run_checkpoint(folder: str | Path) -> Path | None:
    """The checkpoint a run folder stands for: its best.pt, its last.pt before it has a best; None without both."""
    return next((Path(folder) / n for n in ("best.pt", "last.pt") if (Path(folder) / n).is_file()), None)


def is_run_file(path: str | Path) -> bool:
    """A file the trainer (or evaluate) writes in a run folder, which an export or a CSV must not replace: an
    export over RUN/last.pt broke the run's resume, and a CSV over RUN/history.csv its curves."""
    path = Path(path)
    folder = path.absolute().parent
    is_run = (folder / "status.json").is_file() or (folder / "config.json").is_file()
    names = {n.casefold() for n in (*TRAINER_FILES, "evaluation.json", "error.txt", ".lock")}
    return is_run and path.name.casefold() in names  # (Last.pt is last.pt on Windows and macOS)


TORCH_LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"  # torch.save before zip files


def is_torch_legacy(path: str | Path) -> bool:
    """A file in torch.save's older format: its magic number pickled first (after protocol 4's frame header)."""
    try:
        with open(path, "rb") as f:
            head = f.read(32)
    except OSError:
        return False
    return head[:1] == b"\x80" and TORCH_LEGACY_MAGIC[2:] in head[:24]


def special_kind(path: str | Path) -> str:
    """What an existing path is, in words, when it is no regular file an output may replace: a symbolic link, a
    named pipe, a device or a socket; "" otherwise (or when nothing is there). Outputs are written beside and
    renamed over their path, which replaces the path itself: `export --out /dev/null` left /dev/null a regular
    file, and a CSV written to a link replaced the link."""
    import stat

    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return ""
    if stat.S_ISLNK(mode):
        try:
            return f"a symbolic link (to {os.readlink(path)})"
        except OSError:  # (gone meanwhile, or a reparse point Windows will not read as a link)
            return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return ""


def zip_kind(path: str | Path) -> str:
    """What a file is as a zip archive (torch.save's format): "torch.save" (a checkpoint or weights file, by its
    index), "torchscript" (an export), "zip" (another archive), "damaged" (it starts as one but its index is cut
    off or broken), "" (no zip, or no file)."""
    try:
        with open(path, "rb") as f:
            if f.read(4) != b"PK\x03\x04":
                return ""
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (OSError, zipfile.BadZipFile, ValueError, EOFError):
        return "damaged"
    if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
        return "torchscript"
    return "torch.save" if any(n.endswith("/data.pkl") for n in names) else "zip"


def zip_damage(path: str | Path) -> str:
    """Which part of a zip file (torch.save's format) no longer matches the checksum written with it, in words, or
    "" (all match; not a zip; unreadable: the reader says that). torch's reader does not check them: a checkpoint
    with flipped bytes in its weights (a copy gone wrong, a failing disk) loaded, and answered at random."""
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
    except (OSError, zipfile.BadZipFile, ValueError, EOFError, RuntimeError):
        return ""
    return f"its part {bad} no longer matches its checksum: a copy gone wrong, or a failing disk" if bad else ""


TORCHSCRIPT_REFUSAL = (
    "{path}: a TorchScript export (a model for other programs), not a checkpoint; use the run's best.pt"
)


def not_a_checkpoint(path: str | Path) -> str:
    """Why the file `path` cannot be a checkpoint, as `load` would say it, told from its first bytes and its zip
    index alone (nothing unpickled: quick enough to ask before anything else is asked of the user); "" when it may
    be one (`load` tells the rest)."""
    kind = zip_kind(path)
    if kind == "torchscript":
        return TORCHSCRIPT_REFUSAL.format(path=path)
    if kind in ("torch.save", "damaged") or is_torch_legacy(path):
        return ""
    return f"{path}: not a ResNeXt Studio checkpoint ({not_torch_file(path, kind)})"


def not_torch_file(path: str | Path, kind: str | None = None) -> str:
    """What a file torch.load could not read is, in words, from the file itself ("an empty file", "an ONNX model",
    "a zip archive …"): the unpickler's own words were "pop from empty list", "101" or "[enforce fail at …]".
    `kind`: its zip_kind, when the caller has it."""
    try:
        if os.path.getsize(path) == 0:
            return "an empty file"
    except OSError as e:
        return e.strerror or "unreadable"
    kind = zip_kind(path) if kind is None else kind
    if kind == "zip":
        return "a zip archive that torch.save did not write"
    if is_torch_legacy(path):  # (torch's older format, cut short: "unexpected EOF" from the unpickler)
        return "damaged or incomplete (torch's older format)"
    if kind == "damaged":
        return "a zip archive, damaged or cut short"
    if is_onnx(path):  # (by its bytes: by its name, an ONNX export named .pt was "not a file saved by …")
        return "an ONNX model, not a file saved by torch.save: use the run's best.pt, or run the model with onnxruntime"
    return "not a file saved by torch.save"


def precious_kind(path: str | Path, model_ok: bool = False) -> str:
    """What an existing file is that an output of another kind must not replace, in words ("an image", "a
    PyTorch checkpoint or weights file", "a TorchScript model", "an ONNX model"), or "" (`export --out photo.jpg`
    wrote a model over the photo, and a CSV typed over an image in a save dialog replaced it). Nor a read-only
    file. An export (`model_ok`) replaces an earlier export or an empty file only; a checkpoint never."""
    from core.data import IMAGE_EXTENSIONS

    special = special_kind(path)
    if special:
        return special
    path = Path(path)
    if not path.is_file():
        return ""
    if _read_only(path):  # (the rename over it replaced it anyway, and left it writable)
        return "a read-only file"
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return "an image"
    kind = zip_kind(path)
    if kind == "torch.save":
        return "a PyTorch checkpoint or weights file"
    if is_torch_legacy(path):
        return "a PyTorch checkpoint or weights file"
    onnx = is_onnx(path)  # (by its bytes: any file named *.onnx had been replaced by an export)
    if model_ok:  # an earlier export (or an empty file); `export --out notes.txt` replaced the notes
        if kind == "torchscript" or onnx or path.stat().st_size == 0:
            return ""
        # (cut short, it may as well have been a checkpoint: the user deletes it, knowing what it was)
        if kind == "damaged":
            return "a damaged zip archive (a model or a checkpoint cut short)"
        return "a file that is not an exported model"
    if kind == "torchscript":
        return "a TorchScript model"
    return "an ONNX model" if onnx or path.suffix.lower() == ".onnx" else ""


def _read_only(path: Path) -> bool:
    """`path`'s mode lets no one write it (os.access answers yes to root whatever the mode), or this user may not
    write it."""
    try:
        return not path.stat().st_mode & 0o222 or not os.access(path, os.W_OK)
    except OSError:
        return False


def is_onnx(path: str | Path) -> bool:
    """A file that starts as an ONNX model does: its ir_version field (tag 0x08, a one-byte number), then its
    producer's name (tag 0x12)."""
    try:
        with open(path, "rb") as f:
            head = f.read(3)
    except OSError:
        return False
    return len(head) == 3 and head[0] == 0x08 and head[1] < 0x80 and head[2] == 0x12


def mark_paused(run_dir: str | Path, paused: bool) -> None:
    """Say in the run folder that its training is paused (PAUSED_MARKER), or no longer. Never raises: a folder
    that cannot take the mark only goes on being listed as running."""
    path = Path(run_dir) / PAUSED_MARKER
    with contextlib.suppress(OSError):
        if paused:
            path.touch()
        else:
            path.unlink(missing_ok=True)


DEBRIS_AGE_S = 900.0  # a trainer's temp file or new folder untouched this long is what a killed one left
TIDY_EVERY_S = 60.0  # RunStore.list tidies a runs folder at most this often
_tidied_at: dict[Path, float] = {}  # runs folder -> when list() last tidied it (time.monotonic)


def _trainer_temp(name: str) -> bool:
    """Whether a file name is one of a trainer's atomic writes in progress (`.last.pt.x1y2z3.tmp`)."""
    return name.endswith(TEMP_SUFFIX) and any(name.startswith(f".{file}.") for file in TRAINER_FILES)


def remove_stale_temp_files(folder: str | Path) -> int:
    """Delete the temp files a killed training left in its run folder (`.last.pt.x1y2z3.tmp`, up to a full
    checkpoint each); returns how many. Only the files the lock holder writes: the app may be writing
    evaluation.json there at the same moment. For a run folder this process has locked."""
    n = 0
    with contextlib.suppress(OSError):
        for p in Path(folder).iterdir():
            if _trainer_temp(p.name) and p.is_file():
                with contextlib.suppress(OSError):
                    p.unlink()
                    n += 1
    return n


def json_safe(obj: Any) -> Any:
    """NaN and ±inf as null: json writes them as bare NaN/Infinity, which JSON parsers (jq, browsers) reject."""
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes, dict, list, tuple)):  # numpy / torch scalars
        with contextlib.suppress(ValueError, TypeError, RuntimeError):
            obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """Write JSON to `path` atomically (see atomic_file); non-finite numbers become null."""
    with atomic_file(path) as f:
        json.dump(json_safe(obj), f, indent=2, default=_json_default, allow_nan=False)


def _json_default(o: Any) -> Any:
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def file_stamp(path: str | Path) -> tuple[int, int, int, int] | None:
    """What changes when a file is replaced or rewritten (its inode, size, and modification and change times: a
    copy that keeps its time, `cp -p`, changes the ctime); None when it cannot be read. A resume checks last.pt with
    it, the Evaluate tab the checkpoint its results came from, a scan the images it found good before."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def read_status(run_dir: str | Path) -> dict[str, Any]:
    """status.json as written ({} when missing or unreadable, or when its status is none of STATUSES: {"x": 1}
    there ended `runs` in a traceback); `effective_status` says whether "running" still is."""
    doc = read_json(Path(run_dir) / "status.json")
    return doc if doc.get("status") in STATUSES else {}


def read_config(run_dir: str | Path) -> dict[str, Any]:
    """config.json as written ({} when missing or unreadable)."""
    return read_json(Path(run_dir) / "config.json")


def write_status(run_dir: str | Path, status: str, **extra: Any) -> dict[str, Any]:
    """Replace status.json with {status, updated, ...extra}; keeps pid/hostname/started/device from the previous
    file."""
    if status not in STATUSES:
        raise ValueError(f"status {status!r}: one of {STATUSES}")
    run_dir = Path(run_dir)
    prev = read_status(run_dir)
    doc = {k: prev[k] for k in ("pid", "hostname", "started", "device") if k in prev}
    if status == "running":
        doc.update(pid=os.getpid(), hostname=socket.gethostname())
        if "started" not in doc:
            # a new run; or a resumed one whose status.json could not be read: the time in its name (dated now, it
            # went to the top of a list sorted by date)
            named = _named_time(run_dir.name) if (run_dir / "status.json").exists() else None
            doc["started"] = named or time.time()
    doc.update(status=status, updated=time.time())
    doc.update(extra)
    write_json_atomic(run_dir / "status.json", doc)
    return doc


def append_history(run_dir: str | Path, row: dict[str, Any]) -> None:
    """Append one epoch row to history.csv (header written with the first row), flushed to disk."""
    path = Path(run_dir) / "history.csv"
    new = not path.exists() or path.stat().st_size == 0
    with open(path, "a", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=HISTORY_FIELDS, extrasaction="ignore")
        if new:
            w.writeheader()
        w.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in HISTORY_FIELDS})
        f.flush()
        fsync(f.fileno())


def write_history(run_dir: str | Path, rows: list[dict[str, Any]]) -> None:
    """Rewrite history.csv from `rows` (used on resume, so the file matches the checkpoint exactly)."""
    with atomic_file(Path(run_dir) / "history.csv", newline="") as f:
        w = csv.DictWriter(f, fieldnames=HISTORY_FIELDS, extrasaction="ignore")
        w.writeheader()
        for row in rows:
            w.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in HISTORY_FIELDS})


def append_batches(run_dir: str | Path, rows: list[tuple[int, int, int, float]]) -> None:
    """Append (epoch, step, steps, running loss) rows to batches.csv, flushed to disk. A line cut short by a crash
    is skipped by read_batches, and a resume rewrites the file (write_batches)."""
    if not rows:
        return
    path = Path(run_dir) / "batches.csv"
    new = not path.exists() or path.stat().st_size == 0
    with open(path, "a", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        if new:
            w.writerow(BATCH_FIELDS)
        w.writerows((e, s, n, f"{loss:.6g}") for e, s, n, loss in rows)
        f.flush()
        fsync(f.fileno())


def write_batches(run_dir: str | Path, rows: list[tuple[int, int, int, float]]) -> None:
    """Rewrite batches.csv from `rows` (on resume, so it holds what the checkpoint trained and nothing after)."""
    with atomic_file(Path(run_dir) / "batches.csv", newline="") as f:
        w = csv.writer(f)
        w.writerow(BATCH_FIELDS)
        w.writerows((e, s, n, f"{loss:.6g}") for e, s, n, loss in rows)


class RecentLoss:
    """The mean training loss of the steps since the previous call, from progress events' running means and image
    counts (core.engine.BatchProgress); the first call of a run or an epoch gives its running mean. batches.csv and
    the loss line hold these: the running mean lags behind the loss, moving less as an epoch goes on, and jumps at
    each epoch's start."""

    def __init__(self) -> None:
        self._at: tuple[int, float, int] | None = None  # (epoch, loss sum, images) at the previous call
        self._last: float | None = None  # the value it gave then

    def resume_at(self, epoch: int, mean_loss: float, seen: int) -> None:
        """Where a stopped epoch was (its running mean over `seen` images): a resumed run's next value is then the
        loss since the stop, as without the stop."""
        self._at, self._last = (epoch, mean_loss * seen, seen), None

    def behind(self, p: Any) -> bool:
        """Whether `p` holds images the previous call did not."""
        return self._at is None or self._at[0] != p.epoch or p.seen > self._at[2]

    def __call__(self, p: Any) -> float:
        if not p.seen:  # (the count not known: a feature pass, an older progress file)
            return p.loss
        if not self.behind(p):  # no image since (a last batch of one image does not train): the value as it was
            return p.loss if self._last is None else self._last
        at = self._at
        total = p.loss * p.seen
        self._at = (p.epoch, total, p.seen)
        self._last = p.loss if at is None or at[0] != p.epoch else (total - at[1]) / (p.seen - at[2])
        return self._last


def read_batches(run_dir: str | Path) -> list[tuple[int, int, int, float]]:
    """batches.csv as (epoch, step, steps, loss) tuples in file order; malformed lines (a write cut short) are
    skipped; [] if there is none (runs from before this file existed)."""
    return list(_BATCHES.get(Path(run_dir) / "batches.csv", _read_batches))  # (parsed again at each redraw: 0.2 s)


def _read_batches(path: str | Path) -> list[tuple[int, int, int, float]]:
    rows: list[tuple[int, int, int, float]] = []
    if _not_a_file(path):
        return rows
    try:
        with open(path, encoding="utf-8", newline="") as f:
            for rec in csv.reader(f):
                try:
                    e, s, n, loss = int(rec[0]), int(rec[1]), int(rec[2]), float(rec[3])
                except (ValueError, IndexError):
                    continue  # the header, or a line cut short
                if len(rec) == 4 and e >= 1 and 1 <= s <= n and math.isfinite(loss):
                    rows.append((e, s, n, loss))
    except OSError:
        raise _NotKept(rows) from None
    except (csv.Error, UnicodeDecodeError):
        return rows
    return rows


def _count(value: Any) -> int | None:
    """A count of epochs from a (perhaps hand-edited) JSON value: 5, 5.0, "5"; None otherwise (and past the most
    epochs a run can have: status.json's 1e308 was listed as a 309-digit number)."""
    try:
        n = float(value)
    except (TypeError, ValueError, OverflowError):  # (OverflowError: an integer past a float's range)
        return None
    return int(n) if math.isfinite(n) and n == int(n) and 0 <= n <= MAX_EPOCHS else None


def _num(text: str) -> int | float | None:
    if text in ("", None):
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return None


def read_history(run_dir: str | Path) -> list[dict[str, Any]]:
    """history.csv as a list of dicts with numbers (None for empty cells); [] if there is none. Rows without an
    epoch number (a damaged or hand-edited line) are left out: the run list counted them as epochs done."""
    return _read_history(run_dir)[0]


def _read_history(run_dir: str | Path) -> tuple[list[dict[str, Any]], bool]:
    """read_history's rows, and whether the file is there but could not be read whole (bytes that are no text, or
    lines without an epoch number)."""
    rows, damaged = _HISTORIES.get(Path(run_dir) / "history.csv", _parse_history)
    return [dict(r) for r in rows], damaged  # (copies: a caller's change stays its own)


def _parse_history(path: str | Path) -> tuple[list[dict[str, Any]], bool]:
    if _not_a_file(path):
        return [], True
    try:
        with open(path, encoding="utf-8", newline="") as f:
            text = f.read()
        lines = list(csv.DictReader(io.StringIO(text, newline="")))
        if lines and not text.endswith(("\n", "\r")) and None in lines[-1].values():
            lines.pop()  # a line the trainer is writing (read between its writes): no epoch yet ("3 / 2" epochs)
        rows = [{k: _num(v) for k, v in row.items() if k} for row in lines]
    except FileNotFoundError:
        raise _NotKept(([], False)) from None
    except OSError:
        raise _NotKept(([], True)) from None
    except (ValueError, csv.Error):  # ValueError: UnicodeDecodeError (a damaged file)
        return [], True
    kept = [r for r in rows if isinstance(r.get("epoch"), int)]
    return kept, len(kept) < len(rows)


def draw_curves(history: list[dict[str, Any]], out_png: str | Path) -> None:
    """Save loss and accuracy curves (train vs val) as a PNG, with the non-interactive Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.6), dpi=100)
    FigureCanvasAgg(fig)
    epochs = [r.get("epoch") for r in history]
    for ax, key, title in ((fig.add_subplot(1, 2, 1), "loss", "Loss"), (fig.add_subplot(1, 2, 2), "acc", "Accuracy")):
        for part, style in (("train", "-o"), ("val", "-s")):
            pts = [(e, r.get(f"{part}_{key}")) for e, r in zip(epochs, history, strict=True)]
            pts = [(e, v) for e, v in pts if e is not None and v is not None and math.isfinite(v)]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], style, markersize=3, label=part)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    fig.tight_layout()
    with atomic_file(out_png, "wb") as f:
        fig.savefig(f, format="png")


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine."""
    if pid <= 0:
        return False
    if os.name == "nt":
        import ctypes

        handle = ctypes.windll.kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        code = ctypes.c_ulong()
        ctypes.windll.kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        ctypes.windll.kernel32.CloseHandle(handle)
        return code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def section(doc: Any, key: str) -> dict[str, Any]:
    """doc[key] when it is a dict, else {}: a hand-edited config.json may hold anything ("train": "x")."""
    value = doc.get(key) if isinstance(doc, dict) else None
    return value if isinstance(value, dict) else {}


def config_section(run_dir: str | Path, key: str) -> dict[str, Any]:
    """One section of a run's config.json ("data", "train", "dataset" …); {} when it is missing or not a dict."""
    return section(read_config(run_dir), key)


def trained_data_root(run_dir: str | Path | None, root: str) -> str:
    """The data folder a run trained on, given its config's data.root. Earlier runs kept that as typed, so a
    relative path (`--data photos`) meant another folder, or none, from another working folder: then config.json's
    dataset.root (always absolute) is used, when it is there."""
    if not root or os.path.isabs(root) or run_dir is None:
        return root
    saved = config_section(run_dir, "dataset").get("root")
    return saved if isinstance(saved, str) and os.path.isdir(saved) else root


def run_data_root(run_dir: str | Path) -> str:
    """The data folder a run trains on now: its config.json's data.root (a resume given the folder's new place
    writes it there, while a best.pt from before still names the old one), as trained_data_root reads it; "" when
    config.json names none."""
    root = config_section(run_dir, "data").get("root")
    return trained_data_root(run_dir, root) if isinstance(root, str) and root else ""


def planned_epochs(run_dir: str | Path) -> int | None:
    """The epochs config.json plans for a run (an extension writes its new total there before training), or None."""
    epochs = config_section(run_dir, "train").get("epochs")
    return epochs if isinstance(epochs, int) and not isinstance(epochs, bool) and epochs > 0 else None


def data_changes(dataset: dict[str, Any], counts: dict[str, int], files_digest: str | None = None) -> list[str] | None:
    """How a data folder differs from a run's record of it (config.json's "dataset", written when it last trained):
    the classes whose image counts changed ("cat 24 → 27"), or ["other images, the same counts"]; [] when
    unchanged; None when the record holds nothing to compare with. A run's split is drawn again from today's
    images, so a changed folder means its validation and test images are not the ones it held out: some may be
    images it trained on."""
    then = dataset.get("counts")
    if not isinstance(then, dict):
        return None
    then = {unicodedata.normalize("NFC", str(c)): n for c, n in then.items()}  # (recorded before names were NFC)
    changed = [f"{c} {then.get(c, 0)} → {n}" for c, n in counts.items() if then.get(c) != n]
    changed += [f"{c} {n} → 0" for c, n in then.items() if c not in counts]
    saved = dataset.get("files")
    if not changed and files_digest and isinstance(saved, str) and saved != files_digest:
        changed = ["other images, the same counts"]
    return changed


def holds_its_images(run_dir: str | Path, index: Any, trained_root: str = "") -> bool:
    """Whether `index`, a folder other than the run's own, holds the very images the run trained on (moved or
    copied there): its held-out split is then the honest figure, not "all". Known by the bytes the run recorded;
    a run from before they were recorded, by the names and classes, and only when its own folder is gone (a new
    set that reuses the names, beside the old one, is another)."""
    dataset = config_section(run_dir, "dataset")
    content = dataset.get("content")
    if isinstance(content, str) and content:
        return content == getattr(index, "content_digest", "")
    names = dataset.get("files")
    gone = not trained_root or not os.path.isdir(trained_root)
    return isinstance(names, str) and gone and names == index.files_digest()


def trained_copies(
    run_dir: str | Path,
    index: Any,
    split: str = "all",
    classes: Sequence[str] | None = None,
    stop: Any = None,
    progress: Any = None,
) -> tuple[int, int] | None:
    """(how many of `index`'s `split` images are copies of images the run trained on, how many there are), for a
    folder other than the run's own: "all" of a folder holding some of its training images (copied into a "test"
    set) scored them as new, and the accuracy read high without a word. Known by the bytes, from a scan of the
    run's own folder and its split drawn again; None when that folder is gone or cannot be read. `classes`: the
    model's (images of other classes are not evaluated, so not counted). `stop` (a StopToken) ends the scan of
    the run's folder: None then (what it had read was not verified); `progress(done, total)` follows that scan."""
    from core.data import DataError, scan
    from core.data import split as split_of

    own_root = run_data_root(run_dir)
    if not own_root or not os.path.isdir(own_root) or not getattr(index, "digests", None):
        return None
    with contextlib.suppress(OSError):
        if os.path.samefile(own_root, index.root):
            return None
    cfg = config_section(run_dir, "data")
    try:
        val, test, seed = float(cfg.get("val_split", 0.2)), float(cfg.get("test_split", 0.0)), int(cfg.get("seed", 0))
        own = scan(own_root, min_classes=1, stop=stop, progress=progress)
        if stop is not None and getattr(stop, "stopped", False):
            return None
        trained = {own.digests.get(own.samples[i].path) for i in split_of(own, val, test, seed).train} - {None}
        ids = range(len(index.samples)) if split == "all" else getattr(split_of(index, val, test, seed), split)
    except (DataError, OSError, TypeError, ValueError):
        return None
    known = None if classes is None else set(classes)
    paths = [index.samples[i].path for i in ids if known is None or index.classes[index.samples[i].label] in known]
    return sum(index.digests.get(p) in trained for p in paths), len(paths)


def trained_copies_warning(
    run_dir: str | Path,
    index: Any,
    split: str = "all",
    classes: Sequence[str] | None = None,
    stop: Any = None,
    progress: Any = None,
) -> str | None:
    """trained_copies as a sentence (None when there are none or it cannot be known)."""
    found = trained_copies(run_dir, index, split, classes, stop, progress)
    if not found or not found[0]:
        return None
    n, total = found
    return (
        f"{n} of these {total} images are copies of images this model trained on (their bytes are those of its "
        "training images), so the accuracy can read high; evaluate a folder of new images for an honest figure"
    )


def left_out_words(ev: dict[str, Any]) -> str:
    """The classes of an evaluated folder the model does not know, with their image counts, and for a folder named
    as one of its classes but for case or spaces the name to give it: "Green (5 images; the model's class is
    "green": name the folder so to evaluate them), moss (2 images)"; "" for none."""
    left = ev.get("left_out_classes") or {}
    near = ev.get("left_out_near") or {}
    words = []
    for name, n in left.items():
        hint = f'; the model\'s class is "{near[name]}": name the folder so to evaluate them' if name in near else ""
        words.append(f"{name} ({count_noun(int(n), 'image')}{hint})")
    return ", ".join(words)


def held_out_warning(run_dir: str | Path, index: Any, split: str, other_folder: str = "--data") -> str | None:
    """The warning for evaluating run_dir's held-out `split` of `index` (its own data folder, scanned now) when the
    folder changed since the run trained; None when it did not (or the run recorded nothing). `other_folder`: how
    to choose another folder (the command line's flag, or the app's field)."""
    changed = data_changes(config_section(run_dir, "dataset"), index.counts(), index.files_digest())
    if not changed:
        return None
    what = ", ".join(changed[:4]) + (", …" if len(changed) > 4 else "")
    return (
        f"the data folder changed since this run trained ({what}): its {split} split is drawn again from today's "
        "images, so it may hold images the model trained on (the accuracy can read high); evaluate a folder of new "
        f"images ({other_folder}) for an honest figure"
    )


_BUSY = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES, errno.EDEADLK)  # what a lock held elsewhere raises
_HELD: set[Path] = set()  # the .lock files this process holds (a second open of one would not see its lock on NFS)


def _lock_byte(f: IO[bytes], shared: bool = False) -> None:
    """Lock the file without waiting (OSError with an errno in _BUSY when another holds it): exclusively, or
    `shared` (a reader's probe: probes then never block each other; Windows has exclusive locks only)."""
    if os.name == "nt":
        import msvcrt

        f.seek(0)  # msvcrt locks bytes from the position ("a+" starts at the end); byte 0 is the one unlocked
        msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
    else:
        import fcntl

        fcntl.flock(f.fileno(), (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)


def _lock_within(f: IO[bytes], wait_s: float, shared: bool = False) -> bool | None:
    """Lock `f`, trying again for `wait_s` while another holds it: True locked, False still held elsewhere, None
    when the file system has no locks (some network shares)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            _lock_byte(f, shared)
            return True
        except OSError as e:
            if e.errno not in _BUSY:
                return None
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)


def _unlock_byte(f: IO[bytes]) -> None:
    if os.name == "nt":  # Windows frees a closed handle's locks only eventually: unlock first
        import msvcrt

        with contextlib.suppress(OSError):
            f.seek(0)
            msvcrt.locking(f.fileno(), msvcrt.LK_UNLCK, 1)
    # (on POSIX closing the file releases the flock)


class RunLock:
    """An exclusive lock on one run folder, held by the process that trains it (the file `.lock` in the folder).

    The operating system drops it when that process ends, however it ends, so a killed run never stays locked.
    It settles two resumes that start at the same moment (both see the old run's process gone), and it tells a
    reader whether a run that status.json calls "running" still is (probe()): a process id alone can belong to
    another program after a crash and a reboot."""

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / ".lock"
        self._file: IO[bytes] | None = None

    def acquire(self, wait_s: float = 0.5) -> bool:
        """Take the lock; False when another process (or another RunLock here) holds it. Waits up to `wait_s`
        for a holder that is only probing (a reader holds it for microseconds)."""
        if self._file is not None:
            return True
        if self.path in _HELD:
            return False
        f = open(self.path, "a+b")  # noqa: SIM115 - kept open while the lock is held (OSError: cannot write)
        got = _lock_within(f, wait_s)
        if not got:
            f.close()
            return got is None  # (a file system without locks: go on without one)
        self._file = f
        _HELD.add(self.path)
        return True

    def release(self) -> None:
        """Let go of the lock; the empty file stays, so no other process can be left holding a lock on a file that
        was removed."""
        if self._file is not None:
            _unlock_byte(self._file)
            self._file.close()
            self._file = None
            _HELD.discard(self.path)

    @property
    def held(self) -> bool:
        return self._file is not None

    def __del__(self) -> None:  # (a lock dropped without release() would stay in _HELD)
        with contextlib.suppress(Exception):
            self.release()

    def probe(self) -> bool | None:
        """Whether some process holds this lock now: True, False, or None when that cannot be told (no .lock: a
        run from before locks, or one that could not make it; a file system without locks)."""
        if self.path in _HELD:
            return True
        try:
            f = open(self.path, "r+b")  # noqa: SIM115 - (never creates the file)
        except OSError:
            return None
        with f:  # (shared: probes never block each other; Windows has exclusive locks only: wait out another)
            got = _lock_within(f, 0.02 if os.name == "nt" else 0.0, shared=True)
            if got:
                _unlock_byte(f)
            return None if got is None else not got


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


# A run that status.json says is running on another machine (copied from there mid-run, or that machine crashed)
# is taken to have ended there once nothing holds its folder's lock AND status.json has not been written for this
# long. The lock alone is not enough: a network share may keep each machine's locks to itself (sshfs, some SMB and
# NFS mounts, Windows' byte locks beside Linux's flock), so a free lock here cannot rule out a process training the
# folder on the other machine. A live run rewrites status.json when it saves: at its epochs' ends, at most every
# save_every_s (30 s by default). So the quiet must also outlast twice the run's save_every_s and twice its longest
# epoch (foreign_quiet_s), and both clocks must say so: status.json's "updated" (the writer's) and its modification
# time here (a clock minutes behind made every live run look quiet). A run paused there writes nothing: Delete
# names the machine it was last seen on, and asks.
FOREIGN_QUIET_S = 10 * 60


def effective_status(status: dict[str, Any], run_dir: str | Path | None = None) -> str:
    """The status to show: "running" becomes "interrupted" when its process is gone: on this host, its run folder's
    lock is free, or (runs without a lock) no process has its id; on another host (status.json's hostname), its
    lock is free (or cannot be told) and status.json has been quiet for FOREIGN_QUIET_S."""
    return judge_status(status, run_dir)[0]


def judge_status(
    status: dict[str, Any],
    run_dir: str | Path | None = None,
    config: dict[str, Any] | None = None,
    history: list[dict[str, Any]] | None = None,
) -> tuple[str, str]:
    """effective_status, and a note in words when a run of another host is taken as interrupted ("last seen running
    on alice-laptop (2026-11-29 05:22)"; "" otherwise). `config` and `history`: the run's, when already read."""
    s = status.get("status") or "interrupted"
    if s != "running":
        return s, ""
    host = status.get("hostname")
    if host == socket.gethostname():
        held = RunLock(run_dir).probe() if run_dir is not None else None
        if held is not None:
            return (s if held else "interrupted"), ""
        try:
            pid = int(status.get("pid", -1))
            alive = pid_alive(pid) and not _started_after(pid, float(status.get("updated") or 0))
        except (TypeError, ValueError):
            alive = False
        return (s if alive else "interrupted"), ""
    if not isinstance(host, str) or not host.strip():
        return s, ""  # (no machine named: a hand-written file; its process cannot be looked for)
    # another machine's process id means nothing here; the lock does, where the folder is shared (see FOREIGN_QUIET_S)
    if run_dir is not None and RunLock(run_dir).probe():
        return s, ""
    last = last_written(status, run_dir)
    if last is None or time.time() - last < foreign_quiet_s(run_dir, config, history):
        return s, ""
    when = datetime.fromtimestamp(last).strftime("%Y-%m-%d %H:%M")
    return "interrupted", f"last seen running on {host} ({when})"


def foreign_quiet_s(
    run_dir: str | Path | None, config: dict[str, Any] | None = None, history: list[dict[str, Any]] | None = None
) -> float:
    """How long a run of another machine must have left status.json unwritten to be taken as ended there:
    FOREIGN_QUIET_S, or twice its save_every_s, or twice its longest epoch so far, whichever is longest (its
    config.json and history.csv read here unless given)."""
    quiet = float(FOREIGN_QUIET_S)
    if run_dir is None:
        return quiet
    config = read_config(run_dir) if config is None else config
    save_every = section(config, "train").get("save_every_s")
    if isinstance(save_every, (int, float)) and not isinstance(save_every, bool) and math.isfinite(save_every):
        quiet = max(quiet, 2.0 * save_every)
    for row in read_history(run_dir) if history is None else history:
        try:
            seconds = float(row.get("seconds") or 0)
        except (TypeError, ValueError):
            continue
        if math.isfinite(seconds):
            quiet = max(quiet, 2.0 * seconds)
    return quiet


def last_written(status: dict[str, Any], run_dir: str | Path | None) -> float | None:
    """When status.json was last written, as the later of its "updated" time (the writer's clock; a copy keeps it)
    and its modification time here; None when neither is known."""
    known = []
    updated = status.get("updated")
    if isinstance(updated, (int, float)) and not isinstance(updated, bool) and 0 < updated < 1e11:
        known.append(float(updated))
    if run_dir is not None:
        known.append(_mtime(Path(run_dir) / "status.json"))
    return max((t for t in known if t), default=None)


def _started_after(pid: int, when: float) -> bool:
    """Whether process `pid` began after `when` (so it cannot be the one that wrote status.json then: after a
    crash and a reboot its id may belong to another program). False where that cannot be known (not Linux)."""
    if not when:
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])  # field 22, starttime, in clock ticks after boot
        with open("/proc/stat", encoding="ascii") as f:
            boot = next(float(line.split()[1]) for line in f if line.startswith("btime "))
        return boot + ticks / os.sysconf("SC_CLK_TCK") > when + 2.0
    except (OSError, ValueError, IndexError, StopIteration):
        return False


def _named_time(name: str) -> float | None:
    """The time a run folder's name begins with (20260101-120000-…), or None."""
    try:
        return datetime.strptime(name[:15], "%Y%m%d-%H%M%S").timestamp()
    except ValueError:
        return None


DELETING_PREFIX = ".deleting-"  # a run folder being deleted is renamed so first (hidden: the listing skips it)


class PartlyDeleted(OSError):
    """A run folder was taken off the list (renamed to `left`, a hidden folder beside it) but some of its files
    could not be removed: they are still in `left`. Its message says so (without the run's name)."""

    def __init__(self, run: Path, left: Path, failed: list[tuple[str, BaseException]]) -> None:
        from core import count_noun

        why = failed[0][1]
        reason = _reason(why)
        remaining = _files_under(left)
        if remaining:
            shown = ", ".join(remaining[:4]) + (f" and {len(remaining) - 4} more" if len(remaining) > 4 else "")
            text = (
                f"deleted from the run list, but {count_noun(len(remaining), 'file')} could not be removed "
                f"({reason}): {shown}; {'they are' if len(remaining) > 1 else 'it is'} left in {left} (delete that "
                "folder by hand)"
            )
        else:
            text = f"deleted from the run list, but its emptied folder {left} could not be removed ({reason})"
        super().__init__(text)
        self.errno = getattr(why, "errno", None)
        self.run, self.left, self.remaining = run, left, remaining


def _files_under(folder: Path) -> list[str]:
    """The files in a folder and its sub-folders, as paths relative to it, sorted."""
    return sorted(str(Path(where, name).relative_to(folder)) for where, _, names in os.walk(folder) for name in names)


def _reason(error: BaseException) -> str:
    return getattr(error, "strerror", None) or str(error) or type(error).__name__


def _set_aside(folder: Path) -> Path:
    """Rename a run folder to a free hidden name beside it (.deleting-NAME, .deleting-NAME-2 …) and return that.
    OSError, saying that nothing was deleted, when it cannot be renamed."""
    for i in range(1, 1000):
        aside = folder.with_name(f"{DELETING_PREFIX}{folder.name}{'' if i == 1 else f'-{i}'}")
        if os.path.lexists(aside):
            continue
        deadline = time.monotonic() + REPLACE_RETRY_S  # (Windows: a reader, indexer or antivirus lets go soon)
        while True:
            try:
                os.rename(folder, aside)
                return aside
            except FileExistsError:
                break  # (taken meanwhile: the next name)
            except OSError as e:
                if isinstance(e, PermissionError) and time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                held = ", or a program has one of its files open" if os.name == "nt" else ""
                error = OSError(
                    f"not deleted: its folder could not be renamed to {aside.name}, the first step of deleting it "
                    f"({e.strerror or e}{held}); nothing was removed"
                )
                error.errno = e.errno
                raise error from None
    raise OSError(f"not deleted: no free name beside it for {DELETING_PREFIX}{folder.name}; nothing was removed")


def _remove_tree(folder: Path) -> list[tuple[str, BaseException]]:
    """shutil.rmtree that goes on past what it cannot remove: the paths it could not remove, with why."""
    failed: list[tuple[str, BaseException]] = []

    def note(func: Any, path: str, error: BaseException) -> None:
        if os.name == "nt" and isinstance(error, PermissionError) and func in (os.unlink, os.remove):
            with contextlib.suppress(OSError):  # a read-only file (a sync client's): Windows removes none
                os.chmod(path, stat.S_IWRITE)
                func(path)
                return
        failed.append((path, error))

    if sys.version_info >= (3, 12):
        shutil.rmtree(folder, onexc=note)
    else:
        shutil.rmtree(folder, onerror=lambda func, path, info: note(func, path, info[1]))
    return failed


def unreadable_run(path: Path, error: OSError) -> RunInfo:
    """The RunInfo of a run folder that cannot be read: its name, its time from the name, and why."""
    return RunInfo(
        path=path,
        name=path.name,
        created=_named_time(path.name) or 0.0,
        arch="?",
        dataset="?",
        epochs_done=0,
        epochs_planned=None,
        best_val_acc=None,
        best_epoch=None,
        status="unreadable",
        has_best=False,
        has_last=False,
        message=f"cannot read the run folder ({error.strerror or error})",
    )


def _is_run_dir(p: Path) -> bool:
    """A folder holding config.json or status.json (a run's first files)."""
    for name in ("config.json", "status.json"):  # (os.stat: Path.exists answers False for any error
        try:  # from Python 3.12 on, which would hide a folder that cannot be read)
            os.stat(p / name)
            return True
        except FileNotFoundError:
            continue
        except OSError:  # a folder that cannot be read (chmod 000): listed as unreadable, not ending the
            return _named_time(p.name) is not None  # listing (a folder named as runs are)
    return False


class RunStore:
    """All run folders under one root directory."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_runs_dir()

    def create(self, arch: str, dataset_name: str) -> Path:
        """Make a new, empty run folder `<YYYYmmdd-HHMMSS>-<arch>-<dataset>` (suffixed -2, -3… if taken)."""
        self.root.mkdir(parents=True, exist_ok=True)
        base = f"{datetime.now():%Y%m%d-%H%M%S}-{_slug(arch)}-{_slug(dataset_name)}"
        for i in range(1, 1000):
            path = self.root / (base if i == 1 else f"{base}-{i}")
            try:
                path.mkdir()
                return path
            except FileExistsError:
                continue
        raise OSError(f"{self.root}: cannot create a new run folder named {base}")

    def _run_dirs(self) -> list[Path]:
        return [p for p in self._folders() if _is_run_dir(p)]

    def _folders(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return [p for p in self.root.iterdir() if not p.name.startswith(".") and p.is_dir()]

    def forming(self, limit: int = 20) -> list[Path]:
        """Folders in the runs folder that are no run yet, newest name first: one a trainer has just made, or one
        being copied in (`cp -r` writes config.json last). A window watches them to list the run once it is one."""
        return sorted((p for p in self._folders() if not _is_run_dir(p)), key=lambda p: p.name, reverse=True)[:limit]

    def tidy(self) -> list[Path]:
        """Remove what a training killed at once (kill -9, a power cut) left where no run goes on: its half-written
        trainer files (`.last.pt.x1y2z3.tmp`, up to a checkpoint each: only a resume removed them, and a run killed
        before its first last.pt cannot be resumed), and a folder it had only just made (its lock, a half-written
        config.json, an empty error.txt of a full disk: never listed, kept for ever). Returns what was removed.

        Only what no process trains: a run whose status is not "running" (judge_status: its lock, its process, or
        for another machine's run a quiet status.json), or a new folder whose lock this process can take; and only
        files untouched for DEBRIS_AGE_S by this machine's clock (a network share may keep another machine's locks
        to itself). A folder's names are read once; only the candidates are looked at further."""
        removed: list[Path] = []
        now = time.time()

        def quiet(path: Path) -> bool:
            try:
                return now - path.stat().st_mtime > DEBRIS_AGE_S
            except OSError:  # (not known: taken as being written)
                return False

        for folder in self._folders():
            try:
                names = os.listdir(folder)
            except OSError:
                continue
            temps = [n for n in names if _trainer_temp(n)]
            just_made = ".lock" in names and all(n in (".lock", "error.txt", *temps) for n in names)
            if not temps and not just_made:
                continue
            if just_made and "error.txt" in names and _size(folder / "error.txt") != 0:
                just_made = False  # (a failure's words: kept)
            if not just_made and judge_status(read_status(folder), folder)[0] == "running":
                continue
            if just_made:  # all of it, or nothing
                if not all(quiet(folder / n) for n in names):
                    continue
                doomed = [n for n in names if n != ".lock"]
            else:
                doomed = [n for n in temps if quiet(folder / n)]
                if not doomed:
                    continue
            lock = RunLock(folder) if ".lock" in names else None  # (never made where there was none)
            try:
                if lock is not None and (not lock.acquire(wait_s=0.0) or not lock.held):
                    continue  # held: trained now (or a file system without locks: not known)
                for name in doomed:
                    with contextlib.suppress(OSError):
                        (folder / name).unlink()
                        removed.append(folder / name)
                if just_made:  # (its lock goes too: nothing else locks a folder that is no run)
                    with contextlib.suppress(OSError):
                        (folder / ".lock").unlink()
                        folder.rmdir()
                        removed.append(folder)
            except OSError:  # (a folder this user may not write)
                continue
            finally:
                if lock is not None:
                    lock.release()
        return removed

    def info(self, path: str | Path) -> RunInfo:
        """Summary of one run folder (tolerates missing or half-written files)."""
        path = Path(path)
        cfg = read_config(path)
        status = read_status(path)
        history, history_damaged = _read_history(path)
        model, train, dataset, data = (section(cfg, k) for k in ("model", "train", "dataset", "data"))
        best_acc, best_epoch = None, None
        for row in history:
            acc = row.get("val_acc")
            if acc is not None and (best_acc is None or acc > best_acc):
                best_acc, best_epoch = acc, row.get("epoch")
        saved = status.get("best_epoch")  # the epoch in best.pt: ties (and monitor="val_loss") pick differently
        row = next((r for r in history if r.get("epoch") == saved), None) if saved is not None else None
        if row is not None and row.get("val_acc") is not None:
            best_acc, best_epoch = row["val_acc"], saved
        elif saved is not None and best_acc is None:
            best_epoch = saved
            metric = status.get("best_metric")  # (history.csv lost or damaged: best.pt's own number, when accuracy)
            number = isinstance(metric, (int, float)) and not isinstance(metric, bool)
            if train.get("monitor", "val_acc") == "val_acc" and number and 0 <= metric <= 1:
                best_acc = float(metric)
        started = status.get("started")
        if isinstance(started, bool) or not isinstance(started, (int, float)) or not 0 < started < 1e11:
            started = None  # hand-edited: true (a 1970 date), "soon", NaN or 1e300 (not a date): as if not there
        try:
            created = float(started or _named_time(path.name) or path.stat().st_mtime)
        except OSError:
            created = 0.0
        # a file there that cannot be read is said (the run showed as interrupted and dated today, without a word)
        # (and said beside status.json's own message: a damaged config.json or history.csv of a completed run was
        # in `runs --json` alone, or not at all)
        damaged = [n for n, doc in (("status.json", status), ("config.json", cfg)) if not doc and (path / n).exists()]
        # (no rows where status.json counts epochs done, or not even its header line: cut short, by a full disk or
        # a copy; the run showed "0 / 5" epochs and empty charts without a word)
        counted = _count(status.get("epochs_done")) or 0
        emptied = not history and (path / "history.csv").is_file() and (counted > 0 or _size(path / "history.csv") == 0)
        damaged += ["history.csv"] if history_damaged or emptied else []
        message = str(status.get("message") or "")
        host = status.get("hostname")
        shown, seen = judge_status(status, path, cfg, history) if status else ("", "")
        if seen:  # (a run of another machine, taken as interrupted: where it was last seen running)
            message = f"{seen}; {message}" if message else seen
        if status and shown != "running" and 0 < counted < len(history):  # (killed between two saves of last.pt)
            note = f"last.pt holds {counted} of the {len(history)} epochs trained: a resume goes on from there"
            message = f"{note}; {message}" if message else note
        if damaged:
            note = f"{' and '.join(damaged)} cannot be read (damaged or empty)"
            message = f"{note}; {message}" if message else note
        # an empty or cut-short checkpoint (a copy that did not finish) showed as a usable one until evaluate failed
        cut = tuple(n for n in ("best.pt", "last.pt") if (path / n).is_file() and cut_short(path / n))
        if cut:
            note = f"{' and '.join(cut)} {'is' if len(cut) == 1 else 'are'} empty or cut short: not usable"
            message = f"{note}; {message}" if message else note  # (first: the listing cuts long messages)
        return RunInfo(
            path=path,
            name=path.name,
            created=created,
            arch=str(model.get("arch") or status.get("arch") or "?"),
            dataset=str(dataset.get("name") or Path(str(data.get("root") or "?")).name),
            # (status.json's count too: a history.csv lost or damaged showed a finished run as "0/4")
            epochs_done=max(len(history), counted),
            epochs_planned=_count(train.get("epochs")),
            best_val_acc=best_acc,
            best_epoch=best_epoch,
            # no status.json: a run being made (its folder locked, config.json written first) or one that ended
            # before it could write one; or one that cannot be read, whose history may say it trained every
            # epoch (it was "interrupted" here while `train --resume` took it as finished)
            status=shown
            or ("running" if RunLock(path).probe() else "completed" if _all_trained(train, history) else "interrupted"),
            has_best=(path / "best.pt").is_file() and "best.pt" not in cut,
            has_last=(path / "last.pt").is_file() and "last.pt" not in cut,
            message=message,
            data_root=str(dataset.get("root") or data.get("root") or ""),
            damaged_files=cut,
            unreadable_files=tuple(damaged),
            host=host if isinstance(host, str) and host != socket.gethostname() else "",
            paused=shown == "running" and (path / PAUSED_MARKER).exists(),  # (a killed run's mark is not a pause)
        )

    def list(self) -> list[RunInfo]:
        """Every run under the root, newest first; one that cannot be read is listed as "unreadable" with the
        reason (it ended the whole listing: `runs` printed one Permission denied and no run). What killed
        trainings left behind goes first (tidy)."""
        if time.monotonic() - _tidied_at.get(self.root, -TIDY_EVERY_S) >= TIDY_EVERY_S:  # (a window lists
            _tidied_at[self.root] = time.monotonic()  # at every change in the folder: a look a minute is enough,
            self.tidy()  # for leftovers 15 minutes old)
        infos = []
        for p in self._run_dirs():
            try:
                os.listdir(p)  # (its files' readers take a folder that cannot be listed for an empty one)
                infos.append(self.info(p))
            except OSError as e:
                infos.append(unreadable_run(p, e))
        infos.sort(key=lambda r: (r.created, r.name), reverse=True)
        return infos

    def load(self, path: str | Path, evaluation: bool = True) -> RunRecord:
        """Everything stored about one run: config, history, status and evaluation (None if not evaluated, or not
        asked for: evaluation.json holds a line per image evaluated, megabytes that curves do not need)."""
        path = Path(path)
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: no such run folder")
        status = read_status(path)
        if status:
            status["status"] = effective_status(status, path)
        ev = path / "evaluation.json"
        return RunRecord(
            path=path,
            config=read_config(path),
            history=read_history(path),
            status=status,
            evaluation=read_json(ev) if evaluation and ev.is_file() else None,
        )

    def delete(self, path: str | Path) -> None:
        """Remove one run folder; refuses anything that is not a folder directly inside the root (ValueError).

        The folder is first renamed to a hidden sibling (DELETING_PREFIX + its name, which no listing shows), then
        removed: one file that could not be removed (held open on Windows, immutable, in a read-only folder) left a
        run half deleted, its checkpoints gone and its status.json still listing it. A rename that fails raises
        OSError and leaves the run whole; a removal that stops part-way raises PartlyDeleted (the run is off the
        list; what is left, and where, in its message)."""
        target = Path(path).expanduser().resolve()
        root = self.root.resolve()
        if target.parent != root or not target.is_dir() or Path(path).is_symlink():
            raise ValueError(f"{path}: not a run folder inside {root}; refusing to delete")
        lock = RunLock(target)  # held while deleting: a resume cannot start in the folder meanwhile
        try:
            try:
                taken = lock.acquire(wait_s=0.2)
            except OSError as e:  # (no .lock, and a folder that cannot be written: nor could it be emptied)
                raise OSError(f"not deleted: cannot write in its folder ({_reason(e)}); nothing was removed") from None
            if not taken:
                raise ValueError(f"{path}: this run is training right now; stop it before deleting it")
            if os.name == "nt":
                lock.release()  # (Windows deletes no open file, nor renames a folder holding one)
            aside = _set_aside(target)
            files = _files_under(aside)
            failed = _remove_tree(aside)
            if failed and files and _files_under(aside) == files:  # nothing could go (a read-only folder): put back
                try:
                    os.rename(aside, target)
                except OSError:
                    pass  # (then it is said as partly deleted, below)
                else:
                    raise OSError(
                        f"not deleted: none of its files could be removed ({_reason(failed[0][1])}); the run is as "
                        "it was"
                    )
        finally:
            lock.release()
        if failed:
            raise PartlyDeleted(target, aside, failed)
