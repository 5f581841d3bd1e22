"""Headless command line: argparse subcommands over core (scan, summary, train, evaluate, predict, export, runs)."""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import math
import os
import shlex
import signal
import sys
import time
from pathlib import Path
from typing import Any

from core import count_noun

PROG = "resnext-studio"


class _Ended(KeyboardInterrupt):
    """SIGTERM or SIGHUP (a `kill`, a closed terminal) outside training: unwound as Ctrl-C is, so no hidden
    temporary file of an export or a CSV is left behind; exit 128 + the signal's number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def _ending_on_signals() -> Any:
    """SIGTERM and SIGHUP end a command as Ctrl-C does (training stops after its batch instead: engine); the
    handlers before are put back after it (main() called from Python, as the tests do). Each signal is noted too
    (_raise_if_signalled)."""

    def handler(signum: int, _frame: Any) -> None:
        _SIGNALLED.append(signum)
        if signum == getattr(signal, "SIGHUP", None):  # the terminal is gone: what is said after fails there
            from core import quiet_closed_terminal

            quiet_closed_terminal()
        raise _Ended(signum)

    def on_ctrl_c(signum: int, _frame: Any) -> None:
        _SIGNALLED.append(signum)
        raise KeyboardInterrupt

    from core import handle_signals

    _SIGNALLED.clear()
    restore = handle_signals(("SIGTERM", "SIGHUP"), handler)
    restore_ctrl_c = handle_signals(("SIGINT",), on_ctrl_c)
    try:
        yield
    finally:
        restore_ctrl_c()
        restore()


_SIGNALLED: list[int] = []  # the signals the command's handlers were given


def _raise_if_signalled() -> None:
    """Raise a signal the command was given and did not end by: raised inside a callback (a module lock's, while
    torch was imported), Python reports the exception as "ignored" and goes on, and a Ctrl-C pressed as `train`
    started was lost: the run trained to its end and exited 0."""
    if _SIGNALLED:
        signum = _SIGNALLED[-1]
        raise KeyboardInterrupt if signum == signal.SIGINT else _Ended(signum)


class UsageError(Exception):
    """Bad flag or input: exit 2 with one line. `own`: it may be this process's alone under torchrun (found while
    the trainer was set up, not in the arguments): every process says it, tagged with its rank."""

    def __init__(self, message: str = "", own: bool = False) -> None:
        super().__init__(message)
        self.own = own


class _ArgumentError(UsageError):
    """argparse's own: a flag or argument it could not read."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints a usage block otherwise)
        raise _ArgumentError(f"{self.prog}: {message}")


class _OutputError(OSError):
    """Standard output could not be written (a full disk, `> /dev/full`): said as the output's, for the bare
    "error: No space left on device" named nothing. A closed pipe stays a BrokenPipeError (`… | head`: exit 0)."""


@contextlib.contextmanager
def _writing_output() -> Any:
    """A failed write to standard output raised as _OutputError."""
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as e:
        raise _OutputError(*e.args) from e


class _Output:
    """sys.stdout while a command runs: every print() of it goes through here, so that a failed write is known to
    be the output's (_OutputError); all else is the stream's own."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        with _writing_output():
            return self._stream.write(text)

    def flush(self) -> None:
        with _writing_output():
            self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def _standard_streams() -> Any:
    """stdout as _Output; a closed stderr (`2>&-`, a service, a job runner, pythonw: sys.stderr is None) as the
    null device: progress and messages go nowhere, as asked, instead of failing the command (None.isatty()) or
    going to stdout (print(file=None) writes there, into a --json document). The null device takes the lowest free
    descriptor, 2 when stderr alone was closed: torch's own C++ warnings then never land in a file opened there.
    Both are put back after (main() called from Python, as the tests do)."""
    stdout, stderr = sys.stdout, sys.stderr
    if stderr is None:
        sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - closed below
    if stdout is not None:
        sys.stdout = _Output(stdout)
    try:
        yield
    finally:
        if sys.stderr is not stderr:
            with contextlib.suppress(OSError):
                sys.stderr.close()
        sys.stdout, sys.stderr = stdout, stderr


def _drop_output() -> None:
    """After the output failed: what is still buffered for it is let go to the null device (Python's own flush at
    exit failed again, and said "Exception ignored … No space left on device" and exit 120). The process's own
    stdout only (not a stream that main()'s caller put there)."""
    if getattr(sys.stdout, "_stream", sys.stdout) is not sys.__stdout__:
        return
    with contextlib.suppress(OSError, ValueError, AttributeError):
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, sys.stdout.fileno())
        finally:
            os.close(null)


def _emit_json(doc: Any) -> None:
    from core.runs import json_safe

    if sys.stdout is None:  # (`>&-`: nowhere to write, as print() has it; it raised AttributeError)
        return
    sys.stdout.write(json.dumps(json_safe(doc), indent=2, default=str, allow_nan=False) + "\n")
    sys.stdout.flush()


def _err(msg: str) -> None:
    """One line on stderr: a line break or tab in it (from a file or class name) is written as \\n, \\t."""
    print(_field(msg), file=sys.stderr, flush=True)


def _speaks() -> bool:
    """Under torchrun, whether this process says what every process of its machine would say alike (a refused
    argument, a warning about the arguments): the first of each machine (LOCAL_RANK 0) does; each had printed it."""
    try:
        alone = int(os.environ.get("WORLD_SIZE", "1")) <= 1
    except ValueError:
        alone = True
    return alone or os.environ.get("LOCAL_RANK", "0") == "0"


def _fmt_time(s: float | None) -> str:
    if s is None or s != s or s == float("inf"):
        return "--:--"
    s = int(round(s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60:02d}:{s % 60:02d}"


# ---------------------------------------------------------------- scan / summary


def cmd_scan(args: argparse.Namespace) -> int:
    from core.data import DataError, scan

    progress = _Progress("scanning") if not args.quiet else None
    try:  # (one class is listed, with why it cannot train: it is enough to evaluate on, as `evaluate --data` does)
        index = scan(args.dir, progress=progress, min_classes=1)
    except DataError as e:
        if progress:
            progress.close()
        raise UsageError(str(e)) from None
    if progress:
        progress.close()
    doc = index.to_dict()
    doc["bad_files"], doc["run_folders"] = _unusable(index), index.run_folders  # (no cause of exit code 1: apart)
    doc["cannot_train"] = index.too_few_classes()  # (None: it can)
    if args.json:
        _emit_json(doc)
    else:
        print(f"{_field(doc['root'])}  ({doc['layout']} layout)")
        print(f"{count_noun(doc['num_images'], 'image')} in {count_noun(len(doc['classes']), 'class', 'classes')}")
        width = max(_width(c["name"]) for c in doc["classes"])
        for c in doc["classes"]:
            print(f"  {_pad(c['name'], width)}  {c['count']:>6}")
        for name in doc["empty_classes"]:
            print(f"  empty class folder (ignored): {_field(name)}")
        for name in doc["unusable_classes"]:
            print(f"  class folder left out, none of its files can be used (listed below): {_field(name)}")
        for note in doc["notes"]:
            print(f"note: {_field(note)}")
        if doc["cannot_train"]:
            print(f"note: {_field(doc['cannot_train'])}; enough to evaluate a model on (evaluate --data)")
        if doc["duplicates"]:
            mixed, leaked = doc["mixed_duplicates"], doc["leaked_duplicates"]
            where = "" if doc["layout"] == "splits" else " (kept together in one split)"
            print(f"{count_noun(len(doc['duplicates']), 'group')} of identical files{where}:")
            for group in doc["duplicates"][:20]:
                notes = ["in different classes!"] * (group in mixed) + ["in two split folders!"] * (group in leaked)
                more = [f"… {len(group) - 8} more copies"] * (len(group) > 8)  # (4000 copies made one line of 259 kB)
                line = "  ==  ".join([*map(_field, group[:8]), *more])
                print("  " + line + (f"  ({', '.join(notes)})" if notes else ""))
            if len(doc["duplicates"]) > 20:
                print(f"  … and {len(doc['duplicates']) - 20} more (--json lists them all)")
            _warn_duplicates(index)
        for path in doc["run_folders"][:20]:
            print(f"run folder ignored (not images): {_field(path)}")
        if len(doc["run_folders"]) > 20:
            print(f"  … and {len(doc['run_folders']) - 20} more run folders (--json lists them all)")
        if doc["bad_files"]:
            print(f"{count_noun(len(doc['bad_files']), 'file')} could not be used:")
            for b in doc["bad_files"]:
                print(f"  {_field(b['path'])}: {b['reason']}")
        if doc["ignored_files"]:
            ignored = doc["ignored_files"]
            from core.data import ignored_kind

            print(f"{count_noun(len(ignored), 'file')} in class folders ignored (not images to learn from):")
            for path in ignored[:20]:
                what = ignored_kind(path)
                print(f"  {_field(path)}" + (f"  ({what})" if what else ""))
            if len(ignored) > 20:
                print(f"  … and {len(ignored) - 20} more (--json lists them all)")
    return 1 if doc["bad_files"] else 0


def _width(text: str) -> int:
    """Columns `text` takes in a terminal: East Asian wide characters (日本) take two, and a byte of a file name that
    is not UTF-8 (a lone surrogate) is printed as its escape, "\\udce9": six."""
    import unicodedata

    def columns(c: str) -> int:
        if "\ud800" <= c <= "\udfff":
            return 6
        return 2 if unicodedata.east_asian_width(c) in "WF" else 1

    return sum(columns(c) for c in _field(text))


def _pad(text: str, width: int) -> str:
    """`text` left-aligned in `width` terminal columns (str.ljust counts 日本 as 2 columns, a terminal as 4)."""
    return _field(text) + " " * max(0, width - _width(text))


def cmd_summary(args: argparse.Namespace) -> int:
    from core.models import ModelError, parse_arch, summary

    try:
        parse_arch(args.arch)
    except ModelError as e:
        raise UsageError(f"--arch: {e}") from None
    try:
        s = summary(args.arch, num_classes=args.num_classes, image_size=args.image_size)
    except ModelError as e:
        raise UsageError(_flag_message(e)) from None  # "--image-size 1: …", the flag as typed
    s = {"arch": args.arch, "num_classes": args.num_classes, "image_size": args.image_size, **s}
    if args.json:
        _emit_json(s)
        return 0
    print(
        f"{args.arch}: {s['params']:,} parameters, {s['macs'] / 1e9:.2f} G multiply-adds "
        f"at {args.image_size}×{args.image_size}, {count_noun(args.num_classes, 'class', 'classes')}"
    )
    for st in s.get("stages", []):
        shape = "×".join(str(v) for v in st.get("output_shape", []))
        print(f"  {st['name']:<10} {shape:>18}  {st['params']:>12,}")
    return 0


# ---------------------------------------------------------------- progress printing


class _Progress:
    """A one-line progress bar on stderr (redrawn in place on a terminal, sparse lines otherwise)."""

    def __init__(self, label: str, counts: bool = True) -> None:
        """`counts=False`: a share ("45%") in place of "done/total", for a bar whose units are of two kinds (evaluate
        counts the images it reads, then the batches: "0/122" was shown for 120 images)."""
        self.label = label
        self.counts = counts
        self.tty = sys.stderr.isatty()
        self.last = 0.0

    def __call__(self, done: int, total: int, extra: str = "") -> None:
        now = time.monotonic()
        if done < total and now - self.last < (0.1 if self.tty else 5.0):
            return
        self.last = now
        width = 24
        frac = done / total if total else 1.0
        bar = "█" * int(frac * width) + "·" * (width - int(frac * width))
        line = f"{self.label} {bar} {f'{done}/{total}' if self.counts else f'{frac:.0%}'} {extra}"
        if self.tty:
            sys.stderr.write("\r" + line[:160].ljust(100))
            sys.stderr.flush()
        else:
            _err(line)

    def close(self) -> None:
        if self.tty:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _make_printer(warnings_only: bool = False):
    """The command line's training callback; `warnings_only` (--quiet): its warnings alone (that best.pt was
    damaged and its weights lost, that the data changed, that an epoch's end could not be saved: --quiet hid
    them all)."""
    from core.config import settings_summary
    from core.engine import Callback

    if warnings_only:

        class Warnings(Callback):
            def on_warning(self, msg: str) -> None:
                _err(f"warning: {msg}")

        return Warnings()

    class Printer(Callback):
        """Prints trainer events to stderr: a per-batch bar and one line per epoch."""

        def __init__(self) -> None:
            self.bar: _Progress | None = None
            self.reading: tuple[float, _Progress | None] | None = None  # (its start, its bar once it takes a while)
            self.epochs = 0
            self.monitor = "val_acc"  # (train.monitor, from on_fit_start)
            self.acc = "acc"

        def on_loading(self, done: int, total: int) -> None:
            """The images read into memory: a bar once it has taken a second (a small set's says nothing)."""
            start, bar = self.reading or (time.monotonic(), None)
            if bar is None and time.monotonic() - start >= 1.0:
                bar = _Progress("reading the images into memory")
            if bar is not None:
                bar(done, total)
            self.reading = (start, bar)

        def on_fit_start(self, info) -> None:
            from core.config import train_acc_name

            if self.reading and self.reading[1] is not None:
                self.reading[1].close()
            self.reading = None
            self.epochs = info.epochs
            self.acc = train_acc_name(info.config)
            self.monitor = (info.config.get("train") or {}).get("monitor", "val_acc")
            _err(f"run folder: {info.run_dir}")
            if info.start_epoch or info.resume_step:  # (where a resume goes on: it was not said)
                within = ""
                if info.resume_step and info.resume_step >= info.steps_per_epoch:  # (stopped while validating)
                    within = f", at the validation of epoch {info.start_epoch + 1}"
                elif info.resume_step:
                    within = f", from batch {info.resume_step + 1} of epoch {info.start_epoch + 1}"
                _err(f"resuming after epoch {info.start_epoch} of {info.epochs}{within}")
            _err(
                f"device: {info.device_name}; model {info.arch} ({info.params:,} parameters), "
                f"{count_noun(info.num_classes, 'class', 'classes')}; images: {info.train_size} train / {info.val_size} val / "
                f"{info.test_size} test; data: {info.loader_mode}"
            )
            config = info.config
            world = max(1, int(getattr(info, "world_size", 1) or 1))
            batch = (config.get("train") or {}).get("batch_size")
            if world > 1 and isinstance(batch, int) and batch % world:  # the global batch torchrun trains with
                config = {**config, "train": {**config["train"], "batch_size": batch // world * world}}
            _err(f"settings: {settings_summary(config)}")  # what the defaults for this machine came to

        def on_epoch_start(self, epoch: int) -> None:
            self.bar = _Progress(f"epoch {epoch}/{self.epochs}" if epoch else "features (backbone pass)")

        def on_batch_end(self, p) -> None:
            if self.bar:
                self.bar(
                    p.step, p.steps, f"loss {_loss(p.loss)}  {p.images_per_s:,.0f} img/s  ETA {_fmt_time(p.eta_s)}"
                )

        def on_epoch_end(self, m) -> None:
            if self.bar:
                self.bar.close()
            val = "" if m.val_loss is None else f"  val loss {_loss(m.val_loss)}  val acc {m.val_acc:.2%}"
            _err(
                f"epoch {m.epoch}/{self.epochs}: train loss {_loss(m.train_loss)}  {self.acc} {m.train_acc:.2%}{val}  "
                f"{m.lr_text()}  {m.seconds:.1f}s"
            )

        def on_warning(self, msg: str) -> None:
            _err(f"warning: {msg}")

        def on_fit_end(self, r) -> None:
            best = "" if r.best_metric is None else f"; best epoch {r.best_epoch} ({_best_what(r, self.monitor)})"
            _err(f"{r.reason}{': ' + r.message if r.message else ''}{best}")

    return Printer()


# ---------------------------------------------------------------- train / evaluate / runs


def _best_what(r, monitor: str = "val_acc") -> str:
    """What made the best epoch best (train.monitor), named: "val acc 84.00%", "val loss 0.4123" (or "train loss
    0.4123" for a run without validation images); the bare score read as a fraction, or an accuracy of 0 as a
    count."""
    row = next((h for h in r.history if h.get("epoch") == r.best_epoch), {})
    if monitor == "val_loss" and row.get("val_loss") is not None:
        return f"val loss {_loss(row['val_loss'])}"
    if row.get("val_acc") is not None:
        return f"val acc {row['val_acc']:.2%}"
    if row.get("train_loss") is not None:
        return f"train loss {_loss(row['train_loss'])}"
    return f"{r.best_metric:.4g}"


def _loss(value: float) -> str:
    """0.6931, or 5.66e+32 for a loss that is running away (not a 33-digit number)."""
    return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.3g}"


def _device_name(text: str) -> str:
    """--device as torch spells it: "CPU", " cuda:0" and "Cuda" are cpu, cuda:0 and cuda (predict crashed on "CPU",
    train refused it while evaluate took it)."""
    return text.strip().lower()


def _check_device(name: str | None) -> None:
    """--device names an existing device (before anything is built or written)."""
    if name is None:
        return
    from core.config import ConfigError
    from core.engine import resolve_device

    try:
        resolve_device(name)
    except ConfigError as e:
        raise UsageError(f"--device {name}: {str(e).split(': ', 1)[-1]}") from None


def _check_output(flag: str, path: str | None, folder: bool, inputs: list | tuple = (), writes: str = "") -> None:
    """An output path of the right kind, checked before any work is done: not a folder for a file (or the other
    way round), in a folder that is one, and never one of the command's inputs (it would be overwritten). Nor an
    image or a PyTorch checkpoint or weights file (`export --out photo.jpg` wrote a model over the photo);
    `writes`: what would be written, for the message."""
    if path is None:
        return
    target = Path(path)
    parent = next((p for p in target.absolute().parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise UsageError(f"{flag} {path}: {parent} is a file, not a folder")
    # the folder the output's file(s) will be made in can take a file: said now, not after every image is done
    # (a probe: os.access answers wrongly on Windows and for root)
    base = target if folder and target.is_dir() else parent
    if base is not None and base.is_dir():
        import tempfile

        try:
            with tempfile.TemporaryFile(dir=base):
                pass
        except OSError as e:
            raise UsageError(f"{flag} {path}: cannot write in {base} ({e.strerror or e})") from None
    from core.runs import is_run_file

    run_file = not folder and is_run_file(target)
    own = f"{flag} {path}: one of a run folder's own files; it would be overwritten (name another file)"
    if not folder:
        from core.runs import special_kind

        special = special_kind(target)  # (a link, a pipe, a device: the write would replace the path itself)
        if special:
            raise UsageError(f"{flag} {path}: {special}, not a regular file; name a file to write {writes or 'to'}")
    if not target.exists():
        if run_file:
            raise UsageError(own)
        return
    if folder and not target.is_dir():
        raise UsageError(f"{flag} {path}: a file, not a folder")
    if not folder and target.is_dir():
        raise UsageError(f"{flag} {path}: a folder; give a file name")
    for item in inputs:
        try:
            same = Path(item).exists() and os.path.samefile(item, target)
        except OSError:
            same = False
        if same:
            raise UsageError(f"{flag} {path}: that is one of the inputs; it would be overwritten")
    if run_file:
        raise UsageError(own)
    if folder:
        return
    from core.runs import precious_kind

    kind = precious_kind(target, model_ok=writes.endswith(" model"))  # (an export may replace an older export)
    if kind:
        raise UsageError(f"{flag} {path}: {kind}; not overwriting it with {writes or 'this'} (name another file)")


def _warn_duplicates(index, hint: str = "") -> None:
    """Warn (stderr) about identical files that undermine training: in two classes, or in two split folders."""
    for note in index.duplicate_notes():
        _err(f"warning: {note}{hint}")


def _report_data_notes(index) -> None:
    """What `scan` would warn about beyond unreadable files, before training on the folder (train said nothing)."""
    if os.environ.get("RANK", "0") != "0":
        return
    doc = index.to_dict()
    _warn_duplicates(index, hint=f"; python main.py scan {shlex.quote(index.root)} lists them")
    for note in doc["notes"]:
        _err(f"note: {note}")
    if doc["empty_classes"]:
        _err(
            f"warning: empty class folder{'s' if len(doc['empty_classes']) > 1 else ''} left out: "
            + ", ".join(doc["empty_classes"])
        )
    if doc["unusable_classes"]:
        _err(
            f"warning: class folder{'s' if len(doc['unusable_classes']) > 1 else ''} left out, none of "
            f"{'their' if len(doc['unusable_classes']) > 1 else 'its'} files can be used: "
            + ", ".join(doc["unusable_classes"])
        )


def _report_ignored(index) -> None:
    """Photos in class folders of types not read (HEIC from an iPhone, raw …): counted, one named with what to do
    (train and evaluate left them out without a word). Other files (notes.txt) are for scan to list."""
    if os.environ.get("RANK", "0") != "0":
        return
    from core.data import ignored_reason, unread_photo

    photos = [p for p in index.ignored_files if unread_photo(p)]
    if photos:
        first = min(photos)
        _err(
            f"note: {count_noun(len(photos), 'photo')} in class folders left out, of a type not read, e.g. "
            f"{first}: {ignored_reason(first)}; python main.py scan {shlex.quote(index.root)} lists them"
        )


def _unusable(index) -> list[dict[str, str]]:
    """The files the scan could not use, for --json (the exit code 1 they cause must be explained there too)."""
    return [{"path": str(p), "reason": r} for p, r in index.unusable]


def _report_unusable(index, limit: int = 20) -> int:
    """Warn (stderr) about the files the scan could not use; returns how many there were."""
    bad, runs = index.unusable, index.run_folders
    if runs and os.environ.get("RANK", "0") == "0":
        more = f" and {len(runs) - 1} more" if len(runs) > 1 else ""
        _err(f"note: run folders in the data folder are left out (not images to learn from): {runs[0]}{more}")
    if bad and os.environ.get("RANK", "0") == "0":  # under torchrun, one process speaks
        from core.data import files_and_folders

        are = "is" if len(bad) == 1 else "are"  # ("1 file(s)", also of a folder that could not be read)
        _err(f"warning: {files_and_folders(bad)} in {index.root} could not be used and {are} left out:")
        for path, reason in bad[:limit]:
            _err(f"  {path}: {reason}")
        if len(bad) > limit:
            _err(f"  … and {len(bad) - limit} more (python main.py scan {shlex.quote(index.root)} lists them all)")
    return len(bad)


def _warn_unused_split_flags(args: argparse.Namespace, index) -> None:
    """A data set with train/ val/ test/ folders keeps its own split: say so when a split flag asks otherwise."""
    if index.layout != "splits" or os.environ.get("RANK", "0") != "0":
        return
    has_val = any(s.split == "val" for s in index.samples)
    if getattr(args, "val_split", None) is not None and has_val:
        _err(f"warning: --val-split {args.val_split} is not used: {index.root} has its own val/ folder")
    if getattr(args, "test_split", None) is not None:
        has_test = any(s.split == "test" for s in index.samples)
        where = (
            "keeps its test images in test/"
            if has_test
            else "has split folders: test images come from a test/ folder (it has none)"
        )
        _err(f"warning: --test-split {args.test_split} is not used: {index.root} {where}")


def _train_config(args: argparse.Namespace):
    from core.config import ConfigError, RunConfig

    cfg = RunConfig()
    if args.config:
        path = Path(args.config)
        if path.is_dir():  # a run folder: its config.json, as --checkpoint takes a run folder for its best.pt
            path = path / "config.json"
        try:
            cfg = RunConfig.from_json(path)
        except OSError as e:
            raise UsageError(f"--config {path}: {e.strerror or e}") from None
        except ConfigError as e:
            raise UsageError(f"--config {path}: {str(e).removeprefix(f'{path}: ')}") from None
    if args.pretrained is not None:  # before the device defaults: pretrained weights choose a different preset
        cfg.model.pretrained = args.pretrained
    own_warmup = cfg.train.warmup_epochs  # (the config file's, else none: a preset's is the cosine's, below)
    if args.arch is None and cfg.model.arch == "auto":
        # Device-suited defaults first, so every flag the user gives below overrides them.
        from core.engine import resolve_defaults, resolve_device

        cfg = resolve_defaults(cfg, resolve_device(args.device or cfg.train.device))
    d, m, t = cfg.data, cfg.model, cfg.train
    d.root = args.data or d.root  # a saved config.json names its data folder
    for name, obj in (
        ("image_size", d),
        ("val_split", d),
        ("test_split", d),
        ("augment", d),
        ("cache", d),
        ("num_workers", d),
        ("arch", m),
        ("mode", m),
        ("epochs", t),
        ("batch_size", t),
        ("lr", t),
        ("optimizer", t),
        ("weight_decay", t),
        ("scheduler", t),
        ("warmup_epochs", t),
        ("label_smoothing", t),
        ("mixup", t),
        ("cutmix", t),
        ("grad_clip", t),
        ("early_stop_patience", t),
        ("save_every_s", t),
        ("device", t),
        ("sync_bn", t),
    ):
        value = getattr(args, name)
        if value is not None:
            setattr(obj, name, value)
    if args.warmup_epochs is None and t.scheduler != "cosine":  # --scheduler step: the preset's warm-up was for
        t.warmup_epochs = own_warmup  # its cosine (a warning then said it belonged to the cosine; not the user's)
    if args.seed is not None:
        d.seed = t.seed = args.seed
    if args.freeze_backbone:
        if m.pretrained is None:  # (the app offers it with weights only; here a random backbone was frozen)
            raise UsageError(
                "--freeze-backbone needs --pretrained imagenet|PATH: a frozen backbone of random weights leaves "
                "only the last layer to learn"
            )
        m.freeze_backbone = True
    if args.class_weights:
        t.class_weights = True
    if args.no_amp:
        t.amp = False
    if args.compile:
        t.compile = True
    if args.channels_last is not None:
        t.channels_last = args.channels_last
    if args.no_augment:
        d.augment = "none"
    if args.mode is None and m.pretrained and m.mode == "scratch":
        # Pretrained weights without a mode: a linear probe on a CPU, fine-tuning on a GPU.
        from core.engine import resolve_device
        from core.transfer import default_mode

        m.mode = default_mode(m.pretrained, resolve_device(t.device).type)
    try:
        cfg.validate()
    except ConfigError as e:
        raise UsageError(_flag_message(e, args)) from None
    if m.pretrained not in (None, "imagenet") and not Path(m.pretrained).is_file():
        what = "a folder, not a file" if Path(m.pretrained).is_dir() else "no such file"
        # named where the user gave it: a config file's value was blamed on a --pretrained never typed
        where = "--pretrained" if args.pretrained is not None else f"--config {args.config}: model.pretrained"
        raise UsageError(f"{where} {m.pretrained}: {what} (give a state-dict .pth file or 'imagenet')")
    return cfg


def _flag_message(e: Exception, args: argparse.Namespace | None = None) -> str:
    """A ConfigError ("train.batch_size=1: must be ≥ 2") as the flag the user typed: "--batch-size 1: must be ≥ 2".
    With `args` of a command given --config FILE, a setting whose flag was not typed is the file's, and named so
    ("--config FILE: model.arch=…": it was blamed on an --arch never typed)."""
    import dataclasses

    from core.config import DataConfig, ModelConfig, TrainConfig

    fields = {f.name for c in (DataConfig, ModelConfig, TrainConfig) for f in dataclasses.fields(c)}
    fields |= {"runs_dir", "num_classes"}  # (summary's --num-classes)
    if str(e).startswith("val_split ") and " + test_split " in str(e):  # (both: "val_split 0.2 + test_split 0.9 …")
        # in words, with the flags that change them (one may be the default or the --config file's, not typed)
        return (
            str(e).replace("val_split", "the validation share", 1).replace("test_split", "the test share", 1)
            + " (--val-split, --test-split)"
        )
    field, _, why = str(e).partition(": ")
    name, _, value = field.partition("=")
    section, _, name = name.rpartition(".")
    if not why or name not in fields or section not in ("", "data", "model", "train"):
        return str(e)  # not "[section.]setting[=value]: reason" ("exp.lr: this run is training…", say)
    flag = "--" + {"root": "data", "save_every_s": "save_every"}.get(name, name).replace("_", "-")
    if args is not None and getattr(args, "config", None) and getattr(args, flag[2:].replace("-", "_"), None) is None:
        return f"--config {args.config}: {e}"
    value = value.strip("'")
    value = value[:-2] if value.endswith(".0") and value[:-2].lstrip("-").isdigit() else value  # (--lr 0 read 0.0)
    return f"{flag} {value}: {why}" if value else f"{flag}: {why}"


RESUME_FLAGS = ("epochs", "device", "data", "resume", "json", "quiet", "command", "func", "parser_defaults")


def _run_finished(run_dir: Path):
    """(its RunInfo, whether it is finished): all its epochs trained, or an early stop (which a resume trained on
    past). Without a status.json that can be read its history says (RunStore.info): it went on to end "completed"
    again, rewriting the run's evaluation and curves."""
    from core.runs import RunStore

    info = RunStore(run_dir.parent).info(run_dir)  # (its status says it: see RunStore.info)
    return info, info.status == "completed"


def _planned(run_dir: Path) -> int:
    """The epochs config.json plans for the run (0 when it says none): an extension killed before its first new
    epoch saved has raised it above last.pt's."""
    from core.runs import planned_epochs

    return planned_epochs(run_dir) or 0


def _resume_config(args: argparse.Namespace, parser_defaults: dict[str, Any]):
    """The settings for `train --resume`: the run's own, except --epochs (extend), --device and --data (moved)."""
    from core.checkpoint import CheckpointError, load
    from core.config import RunConfig
    from core.data import folder_problem

    run_dir = Path(args.resume)
    if problem := folder_problem(run_dir, "run folder"):
        raise UsageError(f"--resume {args.resume}: {problem}")
    if not (run_dir / "last.pt").is_file():
        from core.config import ConfigError
        from core.engine import refuse_a_running_run

        try:  # a run still training, before its first save, is that: not a folder without last.pt
            refuse_a_running_run(run_dir)
        except ConfigError as e:
            raise UsageError(f"--resume {e}") from None
        raise UsageError(f"--resume {args.resume}: no last.pt in that folder")
    ignored = [k for k, v in vars(args).items() if k not in RESUME_FLAGS and v != parser_defaults.get(k)]
    if ignored:
        flags = ", ".join("--" + k.replace("_", "-") for k in ignored)
        _err(
            f"warning: {flags} ignored: a resumed run keeps its stored settings (only --epochs, --device and "
            f"--data apply)"
        )
    if args.epochs is None:  # a finished run has nothing left to train (status.json and config.json say so;
        info, finished = _run_finished(run_dir)  # last.pt, the big file, is read once, by the Trainer)
        done = info.epochs_done
        if finished:
            if not info.epochs_planned or done >= info.epochs_planned:
                how = f"has trained all its {count_noun(done, 'epoch')}"
                more = f"--epochs {done + 5} (say) to train it further"
            else:
                why = f" ({info.message})" if info.message else ""
                how = f"stopped early after epoch {done} of {info.epochs_planned}{why}"
                more = f"--epochs {info.epochs_planned} to train on to its planned end"
            raise UsageError(
                f"--resume {args.resume}: the run {how}; give {more}, or evaluate it with: evaluate --checkpoint "
                f"{shlex.quote(str(args.resume))}"
            )
    if args.epochs is None and args.device is None and args.data is None:
        return None
    try:
        ck = load(run_dir / "last.pt")
        cfg = RunConfig.from_dict(ck["config"], source=run_dir / "last.pt")
    except (CheckpointError, KeyError, TypeError, ValueError) as e:
        raise UsageError(f"--resume {args.resume}: {e}") from None
    done = int(ck.get("epoch") or 0)
    cfg.data.root = ""
    if args.data is not None:
        if problem := folder_problem(args.data):
            raise UsageError(f"--data {args.data}: {problem}")
        cfg.data.root = args.data
    if args.epochs is not None:
        if args.epochs < 1:
            raise UsageError(f"--epochs {args.epochs}: must be ≥ 1")
        # a run killed after its last epoch (in its evaluation, its status write) has its end to make, as a plain
        # --resume would (it was refused); a finished one, by the same test as a plain --resume's, has none
        if args.epochs < done or (args.epochs == done and _run_finished(run_dir)[1]):
            raise UsageError(
                f"--epochs {args.epochs}: the run has already trained {done} "
                f"epoch{'s' if done != 1 else ''}; give more to extend it"
            )
        planned = max(cfg.train.epochs, _planned(run_dir))
        if args.epochs < planned and cfg.train.scheduler == "cosine" and _speaks():  # (the README: extending only)
            _err(
                f"warning: --epochs {args.epochs} is fewer than the {planned} this run planned: its "
                f"cosine learning-rate schedule is squeezed to end at epoch {args.epochs} (the rate "
                f"falls sooner than it would have); leave out --epochs to train on to {planned}"
            )
        cfg.train.epochs = args.epochs
    else:  # the run's plan: config.json's, which an extension killed before its first new epoch saved has raised
        cfg.train.epochs = max(cfg.train.epochs, _planned(run_dir))
    if args.device is not None:
        cfg.train.device = args.device
    return cfg


def _fetch_imagenet_weights(arch: str, pretrained: str | None, quiet: bool) -> None:
    """The ImageNet weights a new run starts from, downloaded (once, into torchvision's cache) with its progress on
    stderr before the trainer is set up: the README promised progress, and 100-340 MB came without a word."""
    from core import models

    if str(pretrained or "").strip().lower() != "imagenet":
        return
    try:
        spec = models.parse_arch(arch)
    except models.ModelError:
        return  # ("auto", a name the trainer refuses in its own words)
    if not spec.has_imagenet_weights:
        return
    shown = {"at": 0.0}  # (a file in the cache already: checked against its hash, and no progress is said)
    speaks = _speaks() and not quiet
    tty = speaks and sys.stderr is not None and sys.stderr.isatty()

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        end = bool(total) and done >= total
        if not speaks or (now - shown["at"] < (0.5 if tty else 10.0) and not end and done):
            return
        shown["at"] = now
        of = f" of {total / 1e6:.1f}" if total else ""
        line = f"downloading the ImageNet weights of {spec.name}: {done / 1e6:.1f}{of} MB"
        if tty:
            print(f"\r{line}", end="\n" if end else "", file=sys.stderr, flush=True)
        else:
            _err(line)

    try:
        models.imagenet_weights_path(spec.name, progress=progress)
    except models.ModelError as e:
        if tty:
            print(file=sys.stderr)
        raise UsageError(str(e), own=True) from None


def cmd_train(args: argparse.Namespace) -> int:
    from core.checkpoint import CheckpointError
    from core.config import ConfigError
    from core.data import DataError, folder_problem
    from core.engine import Trainer
    from core.models import ModelError

    _check_device(args.device)
    if args.runs_dir and Path(args.runs_dir).exists() and not Path(args.runs_dir).is_dir():
        raise UsageError(f"--runs-dir {args.runs_dir}: a file, not a folder")
    if args.resume:
        cfg = _resume_config(args, args.parser_defaults)
    else:
        cfg = _train_config(args)
        if not cfg.data.root:
            raise UsageError("train: --data DIR is required (or --resume RUN_DIR)")
        if problem := folder_problem(cfg.data.root):  # (the --config file's: blamed on a --data never typed)
            where = "--data" if args.data is not None else f"--config {args.config}: data.root"
            raise UsageError(f"{where} {cfg.data.root}: {problem}")
        _fetch_imagenet_weights(cfg.model.arch, cfg.model.pretrained, quiet=args.quiet)
    callbacks = [_make_printer(warnings_only=True) if args.quiet else _make_printer()]
    try:
        trainer = Trainer(
            cfg, callbacks=callbacks, runs_dir=args.runs_dir, resume=args.resume, extend=args.epochs is not None
        )
    except ConfigError as e:
        raise UsageError(_flag_message(e, args), own=True) from None
    except (DataError, ModelError, CheckpointError) as e:
        hint = ""
        if args.resume and args.data is None and str(e).endswith(": no such folder"):
            hint = "; if its images moved, give --data DIR where they are now"
        raise UsageError(f"{e}{hint}", own=True) from None
    unusable = _report_unusable(trainer.index)
    _report_ignored(trainer.index)
    _report_data_notes(trainer.index)
    _warn_unused_split_flags(args, trainer.index)
    _raise_if_signalled()
    try:
        result = trainer.fit()
    except KeyboardInterrupt:  # a second Ctrl-C: what status.json says of it, for a script reading --json
        args.answered = trainer.run_dir is not None  # (before its folder: main() answers)
        if args.json and getattr(trainer, "is_main", True) and trainer.run_dir is not None:
            from core.runs import read_status

            status = read_status(trainer.run_dir)
            with contextlib.suppress(OSError):  # (a closed terminal)
                _emit_json(
                    {
                        "run_dir": str(Path(trainer.run_dir).absolute()),
                        "reason": "interrupted",
                        "message": status.get("message") or "interrupted at once",
                        "epochs_done": status.get("epochs_done"),
                    }
                )
        raise
    args.answered = True  # (a Ctrl-C from here on, while the answer is written, must not add "interrupted")
    if args.quiet and result.reason not in ("completed", "early_stop"):  # quiet hides progress, not failures
        _err(f"{result.reason}: {result.message}")
    if args.json and getattr(trainer, "is_main", True):  # under torchrun only rank 0 answers
        _emit_json(
            {
                "run_dir": str(Path(result.run_dir).absolute()) if result.run_dir else None,  # (as `runs --json`)
                "reason": result.reason,
                "message": result.message,
                "best_epoch": result.best_epoch,
                "best_metric": result.best_metric,
                "history": result.history,
                "evaluation": _eval_summary(result.evaluation),
                "unreadable": [{"path": p, "reason": r} for p, r in result.unreadable],
                "unusable": _unusable(trainer.index),
            }
        )
    if result.reason not in ("completed", "early_stop"):
        return 1
    if not getattr(trainer, "is_main", True):  # under torchrun rank 0 speaks for the run: a partial result is its to
        return 0  # say, and another process ending non-zero first would have torchrun stop rank 0 mid-evaluation
    return 1 if unusable or result.unreadable else 0  # trained on the rest; some inputs could not be read


def _eval_summary(ev: dict | None) -> dict | None:
    if not ev:
        return None
    keys = ("split", "loss", "accuracy", "top5", "num_samples", "class_names", "confusion_matrix", "per_class", "macro")
    return {k: ev[k] for k in keys if k in ev}


def cmd_evaluate(args: argparse.Namespace) -> int:
    from core.checkpoint import CheckpointError, load
    from core.data import DataError, scan
    from core.engine import evaluate

    _check_device(args.device)
    try:
        ckpt = load(args.checkpoint)
    except CheckpointError as e:
        raise UsageError(str(e)) from None
    # (trained_data_root: an older run's relative data path, where it was)
    from core.runs import config_section, run_data_root, trained_data_root

    run_dir = Path(args.checkpoint).parent if Path(args.checkpoint).is_file() else None
    stored = (ckpt.get("config") or {}).get("data", {})
    # the run's config.json first: a resume given the data folder's new place writes it there, not into best.pt
    own = (run_data_root(run_dir) if run_dir is not None else "") or trained_data_root(
        run_dir, stored.get("root") or ""
    )
    data = args.data
    if not data:
        data = own
        if not data:
            raise UsageError("evaluate: --data DIR is required (the checkpoint names no data folder)")
        if not Path(data).is_dir():
            raise UsageError(f"evaluate: the data folder the model was trained on ({data}) is gone; give --data DIR")
    try:
        index = scan(data, min_classes=1)  # a held-out folder may hold one class
    except DataError as e:
        raise UsageError(f"--data: {e}") from None
    own_folder = bool(own) and Path(own).is_dir() and os.path.samefile(own, data)
    from core.runs import holds_its_images

    if not own_folder and run_dir is not None and holds_its_images(run_dir, index, own):
        # the images the run trained on, in another place (the folder moved or was copied): its own, so its
        # held-out part; "all" scored the images it trained on with no word (66.67 % on a moved folder)
        own_folder = True
        _err(f"note: {data} holds the images this run trained on ({own or 'its data folder'}, moved or copied)")
    if args.split is None:  # another folder: every image is new to the model; its own folder: the held-out part,
        # test if the run kept one, else val, as the app and the run's own evaluation.json do
        args.split = "all"
        if own_folder:
            from core.data import split as split_of

            parts = None
            with contextlib.suppress(DataError, TypeError, ValueError):
                parts = split_of(
                    index,
                    float(stored.get("val_split", 0.2)),
                    float(stored.get("test_split", 0.0)),
                    int(stored.get("seed", 0)),
                )
                args.split = "test" if parts.test else "val" if parts.val else "all"
            if parts is not None and args.split == "all":  # (not when its split could not be drawn again)
                _err(
                    "warning: this run kept no validation or test images, so every image of its data folder is "
                    "scored, the ones it trained on too (the accuracy reads high); evaluate a folder of new images "
                    "(--data) for an honest figure"
                )
    elif own_folder and args.split == "all":  # asked for: said as the app says it
        trained = config_section(run_dir, "dataset").get("train_size") if run_dir else None
        n = f"the {trained} " if isinstance(trained, int) and not isinstance(trained, bool) else "the "
        _err(
            f"note: --split all of the run's own data folder includes {n}images it trained on (the accuracy reads high)"
        )
    unusable = _report_unusable(index)
    _report_ignored(index)
    if own_folder and args.split in ("val", "test"):
        from core.runs import held_out_warning

        warning = held_out_warning(run_dir, index, args.split)
        if warning:
            _err(f"warning: {warning}")
    bar = None if args.quiet else _Progress(f"evaluating ({args.split})", counts=False)
    try:
        ev = evaluate(ckpt, index, split=args.split, device=args.device, progress=bar)
    except CheckpointError as e:
        raise UsageError(f"{args.checkpoint}: {e}") from None
    except ValueError as e:  # an empty split, classes the model does not know
        raise UsageError(str(e)) from None
    finally:
        if bar:
            bar.close()
    if not ev.get("num_samples"):  # every image of the split failed to load since the scan (a drive unplugged)
        for e in ev.get("errors", []):
            _err(f"could not read {e['path']}: {e['reason']}" if isinstance(e, dict) else f"could not read {e}")
        raise UsageError(f"{index.root}: no image of the {args.split} split could be read")
    if ev.get("checkpoint") is None:  # (evaluated from the loaded dict: the file is named here, as predict does)
        ev["checkpoint"] = str(args.checkpoint)
    copies = None
    if not own_folder and run_dir is not None:  # another folder holding some of the images it trained on
        from core.runs import trained_copies_warning

        bar = None if args.quiet else _Progress("looking for copies of its training images (scanning its folder)")
        try:
            copies = trained_copies_warning(run_dir, index, args.split, ev.get("class_names"), progress=bar)
        finally:
            if bar:
                bar.close()
        if copies:
            _err(f"warning: {copies}")
    if args.json:
        doc = {**{k: v for k, v in ev.items() if k != "predictions"}, "unusable": _unusable(index)}
        _emit_json({**doc, "trained_copies": copies} if copies else doc)
    else:
        top5 = "" if ev.get("top5") is None else f", top-5 {ev['top5']:.2%}"
        print(
            f"{count_noun(ev['num_samples'], 'image')} ({args.split}): accuracy {ev['accuracy']:.2%}{top5}, "
            f"loss {ev['loss']:.4f}"
        )
        names = ev["class_names"]
        w = max(8, *(_width(n) for n in names))
        print(f"{'class':<{w}}  precision  recall     f1  support")
        for row in ev["per_class"]:
            if row["f1"] is None:  # a class with no images here and never predicted
                print(f"{_pad(row['name'], w)}  {'—':>9}  {'—':>6}  {'—':>5}  {row['support']:>7}")
                continue
            prec, rec = (("—" if row[k] is None else f"{row[k]:.3f}") for k in ("precision", "recall"))
            print(f"{_pad(row['name'], w)}  {prec:>9}  {rec:>6}  {row['f1']:>5.3f}  {row['support']:>7}")
        print("confusion matrix (rows = true, columns = predicted):")
        for name, row in zip(names, ev["confusion_matrix"], strict=True):
            print(f"  {_pad(name, w)} " + " ".join(f"{v:>5}" for v in row))
        for e in ev.get("errors", []):
            _err(f"could not read {e['path']}: {e['reason']}" if isinstance(e, dict) else f"could not read {e}")
    left = ev.get("left_out_classes") or {}
    if left:  # classes the model does not know: their images were not evaluated
        from core.runs import left_out_words

        _err(f"left out, not classes of the model: {left_out_words(ev)}")
    return 1 if ev.get("errors") or unusable or left else 0


def cmd_runs(args: argparse.Namespace) -> int:
    from core.runs import RunStore, default_runs_dir

    root = Path(args.runs_dir) if args.runs_dir else default_runs_dir()
    if root.exists() and not root.is_dir():
        from core.runs import runs_dir_named

        where = f"--runs-dir {root}" if args.runs_dir else runs_dir_named(root)  # (not a flag the user did not give)
        raise UsageError(f"{where}: a file, not a folder")
    if args.runs_dir and not root.exists():  # (a mistyped folder; the default one is made by the first run)
        raise UsageError(f"--runs-dir {root}: no such folder")
    runs = RunStore(root).list()
    if args.json:
        _emit_json({"runs_dir": str(root), "runs": [_run_info_dict(r) for r in runs]})
        return 0
    if not runs:
        hint = ""
        if (root / "status.json").is_file() or (root / "config.json").is_file():  # a run's own folder was given
            hint = f" ({root.name} is a run; its runs folder is {root.parent})"
        print(f"no runs in {root}{hint}")
        return 0
    print(f"{count_noun(len(runs), 'run')} in {root}")
    for r in runs:
        # (none measured, or a damaged history.csv's NaN: a dash, not "" or "nan%")
        acc = f"{r.best_val_acc:.2%}" if r.best_val_acc is not None and math.isfinite(r.best_val_acc) else "—"
        planned = "?" if r.epochs_planned is None else r.epochs_planned
        note = ""
        if r.damaged_files or r.unreadable_files:  # (before "nothing saved": why nothing counts as saved)
            note = f"  ({r.message if len(r.message) <= 70 else r.message[:69] + '…'})"
        elif r.nothing_saved:
            note = "  (nothing saved: it cannot be resumed)"
        elif r.ended_early and not r.resumable:
            note = "  (no last.pt: it cannot be resumed; best.pt can be used)"
        elif r.message and r.status in ("failed", "unreadable", "interrupted"):  # (a damaged status.json: why)
            note = f"  ({r.message if len(r.message) <= 70 else r.message[:69] + '…'})"
        status = "paused" if r.paused else r.status  # (status.json says "running" through a pause)
        print(f"  {_pad(r.name, 48)} {status:<12} epochs {r.epochs_done}/{planned}  best val acc {acc}{_field(note)}")
    return 0


def _run_info_dict(r) -> dict:
    """A run for --json: its fields, and ended_early / resumable / nothing_saved (the text's notes)."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in r.to_dict().items()}


# ---------------------------------------------------------------- predict / export


def cmd_predict(args: argparse.Namespace) -> int:
    from core.checkpoint import CheckpointError
    from core.predict import Predictor, expand_paths, prediction_to_dict, write_csv

    if args.top_k < 1:
        raise UsageError(f"--top-k {args.top_k}: must be ≥ 1")
    _check_device(args.device)
    ignored: list[str] = []
    overlays: list[str] = []
    to_stdout = args.csv == "-"  # the table on stdout, in place of the text lines (it wrote a file named "-")
    if to_stdout and args.json:
        raise UsageError("--csv - and --json both write to stdout: choose one")
    if "-" in args.paths and not os.path.exists("-"):  # (it said "-: file not found")
        raise UsageError("-: predict reads images from files, not from standard input; give the image's path")
    run_folders: list[str] = []
    files, problems = expand_paths(args.paths, ignored=ignored, overlays=overlays, run_folders=run_folders)
    if not to_stdout:
        _check_output("--csv", args.csv, folder=False, inputs=[*files, args.checkpoint], writes="a table")
    _check_output("--cam", args.cam, folder=True)
    try:
        predictor = Predictor.from_checkpoint(args.checkpoint, device=args.device)
    except (CheckpointError, FileNotFoundError) as e:
        raise UsageError(str(e)) from None
    bar = None if args.quiet or len(files) < 2 else _Progress("predicting")
    preds = predictor.predict(files, top_k=args.top_k, progress=bar) if files else []
    if bar:
        bar.close()
    failed = [p for p in preds if not p.ok]
    for path, reason in problems:
        _err(f"error: {path}: {reason}")
    for p in failed:
        _err(f"error: {p.source}: {p.error}")
    if ignored:  # said, as scan says it: a folder's other files are no error, but no silent skip either
        _err(f"note: {count_noun(len(ignored), 'file')} in the given folders ignored (not an image type):")
        for path in ignored[:20]:
            _err(f"  {path}")
        if len(ignored) > 20:
            _err(f"  … and {len(ignored) - 20} more (--json lists them all)")
    if overlays:
        _err(f"note: {count_noun(len(overlays), 'Grad-CAM overlay')} of an earlier predict --cam left out (not photos)")
    if run_folders:
        more = f" and {len(run_folders) - 1} more" if len(run_folders) > 1 else ""
        _err(
            f"note: run folders in the given folders left out (checkpoints and curves, not photos): {run_folders[0]}{more}"
        )
    cam_interrupted: KeyboardInterrupt | None = None
    overlay_of: dict[str, str] = {}  # source -> the overlay written for it (--json names it: same-named photos
    if args.cam:  # from two folders get 0_gradcam.png and 0_2_gradcam.png, and nothing said which was whose)
        from core.predict import OVERLAY_MAX_SIDE, cam_names, save_cam_overlay

        out = Path(args.cam)
        out.mkdir(parents=True, exist_ok=True)
        # images of the same name from different folders get _2, _3, …; so does a name held by an input or by a
        # file that is no overlay of ours: only an older overlay is replaced
        names = cam_names([p.source for p in preds if p.ok], out, [*files, args.checkpoint])
        wanted, made = sum(p.ok for p in preds), 0
        full = ""  # the disk is full: why every overlay after it is missing (not tried, nor said one by one)
        try:
            for i, p in enumerate(preds):
                if p.ok and full:
                    problems.append((p.source, full))
                elif p.ok:
                    try:
                        cam = predictor.gradcam(p.source, max_side=OVERLAY_MAX_SIDE)  # (a 15000 px photo's
                        saved = save_cam_overlay(cam, out, p.source, file_name=names[str(p.source)])  # took 4 GB)
                        overlay_of[str(p.source)] = str(saved)
                        made += 1
                    except Exception as e:  # noqa: BLE001 - the prediction stands; only its overlay is missing
                        why = f"no Grad-CAM overlay: {_overlay_error(e)}"
                        problems.append((p.source, why))
                        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
                            full = f"no Grad-CAM overlay: {out} is full"  # (160 lines, one per image, said it)
                            left = sum(q.ok for q in preds[i + 1 :])
                            _err(f"error: {p.source}: {why}; the {count_noun(left, 'overlay')} after it are not made")
                        else:
                            _err(f"error: {p.source}: {why}")
        except KeyboardInterrupt as e:  # (a Ctrl-C, or SIGTERM as _Ended): the answers are not thrown away
            cam_interrupted = e
            with contextlib.suppress(OSError):  # (a closed terminal)
                _err(
                    f"note: Grad-CAM overlays interrupted with {made} of {wanted} made (in {out}); "
                    "the predictions are written and printed all the same"
                )
    csv_error = None
    if to_stdout:  # as the file would hold it: a name's own bytes, rows ending \r\n once (text mode doubled the \r)
        from core.predict import csv_text

        sys.stdout.flush()
        out = getattr(sys.stdout, "buffer", None)
        text = csv_text(preds, args.top_k)
        if out is not None:
            with _writing_output():  # (past _Output, which sees text only)
                out.write(text.encode("utf-8", errors="surrogateescape"))
                out.flush()
        else:  # (a stream without bytes: what pytest's capture gives)
            sys.stdout.write(text)
    elif args.csv:
        try:
            write_csv(preds, args.csv, args.top_k)
        except OSError as e:  # (a full disk): the answers are still printed, not lost with the table
            why = f"could not write the table ({e.strerror or e}); the answers are printed instead"
            _err(f"error: {args.csv}: {why}")
            csv_error = f"{args.csv}: {why}"
    if args.json:
        _emit_json(
            {
                "checkpoint": str(args.checkpoint),
                "class_names": predictor.class_names,
                "predictions": [  # with --cam, each image's overlay (None: none was made)
                    {**prediction_to_dict(p), **({"overlay": overlay_of.get(str(p.source))} if args.cam else {})}
                    for p in preds
                ],
                "errors": [{"source": str(s), "error": r} for s, r in problems],
                "ignored_files": ignored,
                "overlays_left_out": overlays,
                **({"csv_error": csv_error} if csv_error else {}),
                **({"cam_interrupted_after": made} if cam_interrupted else {}),
            }
        )
    elif not to_stdout:
        for p in preds:
            if p.ok:
                tops = "  ".join(f"{_field(n)} {c:.1%}" for n, c in p.top[1:])
                print(f"{_field(p.source)}\t{_field(p.label)}\t{p.confidence:.1%}" + (f"\t({tops})" if tops else ""))
    if cam_interrupted is not None:
        raise cam_interrupted  # (exit 130, or 128 + the signal's number, as any interrupted command)
    if not files and not problems:
        raise UsageError("predict: no images found in the given paths")
    if not any(p.ok for p in preds):
        return 2  # nothing could be classified: every input was bad (each is named above)
    return 1 if (failed or problems or csv_error) else 0


def _field(value: Any) -> str:
    """A name as one field of a tab-separated line: a tab or a line break in it (legal in file names) written as
    \\t, \\n, \\r (they split the line; --csv and --json keep names exactly)."""
    return str(value).replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _overlay_error(e: Exception) -> str:
    """Why one Grad-CAM overlay could not be made or saved (the image changed since it was classified, the disk)."""
    from core.data import ImageLoadError, error_reason

    if isinstance(e, ImageLoadError):
        return e.reason
    if isinstance(e, OSError) and e.strerror:
        return f"{e.strerror}{f' ({e.filename})' if e.filename else ''}"
    return error_reason(e) if isinstance(e, MemoryError) else (str(e) or type(e).__name__)


def cmd_export(args: argparse.Namespace) -> int:
    from core.checkpoint import CheckpointError
    from core.export import ExportError, export_onnx, export_torchscript

    fn = export_onnx if args.format == "onnx" else export_torchscript
    model = "an ONNX model" if args.format == "onnx" else "a TorchScript model"
    if args.out == "-":  # (as `predict --csv -` reads, standard output; it wrote a file named "-")
        raise UsageError(f"--out -: export writes {model} to a file, not to standard output; name the file")
    _check_output("--out", args.out, folder=False, inputs=[args.checkpoint], writes=model)
    suffix = Path(args.out).suffix.lower()  # a name that says the other format: read back as that, it failed
    clash = suffix in (".pt", ".pth", ".ts") if args.format == "onnx" else suffix == ".onnx"
    if clash:
        want, other = (".onnx", "torchscript") if args.format == "onnx" else (".pt", "onnx")
        raise UsageError(
            f"--out {args.out}: a {suffix} name for {model} (it would be taken for the other format); name it "
            f"{Path(args.out).with_suffix(want).name}, or give --format {other}"
        )
    try:
        info = fn(args.checkpoint, args.out)
    except (CheckpointError, ExportError) as e:
        raise UsageError(str(e)) from None
    if args.json:
        _emit_json(info)
    elif not args.quiet:
        print(
            f"wrote {info['path']} ({info['size_bytes'] / 1e6:.1f} MB); checked on {info['n_samples']} images: "
            f"max |Δ logits| {info['max_abs_diff']:.2e}, top-1 agrees: {info['top1_agree']}"
        )
    return 0


# ---------------------------------------------------------------- parser


CKPT_HELP = "a checkpoint (best.pt, last.pt) or a run folder (its best.pt)"


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG,
        description="Train, evaluate and use ResNeXt image classifiers. With no command, opens the desktop app.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__import__('core').__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def add(name: str, help: str, fn) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help)
        sp.set_defaults(func=fn)
        return sp

    sp = sub.add_parser("gui", help="open the desktop app (same as no command)")
    sp.add_argument("--data", metavar="DIR", help="open on this data folder")

    sp = add("scan", "check a folder of class sub-folders: counts, bad files, duplicates", cmd_scan)
    sp.add_argument("dir", metavar="DIR")
    sp.add_argument("--json", action="store_true", help="print one JSON document")
    sp.add_argument("--quiet", action="store_true", help="no progress on stderr")

    sp = add("summary", "parameters and multiply-adds of an architecture", cmd_summary)
    sp.add_argument(
        "--arch", required=True, type=str.strip, metavar="NAME", help="e.g. resnext50_32x4d, resnext29_8x64d"
    )
    sp.add_argument("--num-classes", type=int, default=1000, metavar="N", help="classifier outputs (default 1000)")
    sp.add_argument("--image-size", type=int, default=224, metavar="S", help="input side in pixels (default 224)")
    sp.add_argument("--json", action="store_true", help="print one JSON document")

    sp = add("train", "train a classifier on a folder of images", cmd_train)
    sp.add_argument("--data", metavar="DIR", help="folder of class sub-folders (or train/val/test folders)")
    sp.add_argument("--config", metavar="JSON", help="start from a saved config.json (flags override it)")
    sp.add_argument("--arch", type=str.strip, metavar="NAME", help="architecture; default: chosen for the device")
    sp.add_argument(
        "--mode",
        choices=["scratch", "linear", "finetune"],
        help="scratch: every layer at the full rate, from random weights (or --pretrained's); linear: only the "
        "head, on cached backbone features; finetune: every layer, the backbone at a tenth of the rate",
    )
    sp.add_argument(
        "--pretrained",
        metavar="imagenet|PATH",
        help="start from ImageNet weights, a state-dict file or a run's checkpoint (whose model Auto then is)",
    )
    sp.add_argument(
        "--freeze-backbone", action="store_true", help="train only the classifier head (needs --pretrained)"
    )
    sp.add_argument("--epochs", type=int, metavar="N", help="passes over the training images")
    sp.add_argument("--batch-size", type=int, metavar="B", help="images per step (the global batch under torchrun)")
    sp.add_argument("--lr", type=float, metavar="LR", help="learning rate")
    sp.add_argument("--optimizer", choices=["adam", "adamw", "sgd"], help="optimizer (sgd: with momentum 0.9)")
    sp.add_argument("--weight-decay", type=float, metavar="WD", help="weight decay (not on biases and norms)")
    sp.add_argument("--scheduler", choices=["cosine", "step", "plateau", "none"], help="learning-rate schedule")
    sp.add_argument("--warmup-epochs", type=float, metavar="E", help="linear warm-up of the cosine schedule")
    sp.add_argument("--label-smoothing", type=float, metavar="F", help="label smoothing of the loss, 0-1")
    sp.add_argument("--mixup", type=float, metavar="ALPHA", help="MixUp with Beta(ALPHA, ALPHA); 0: off")
    sp.add_argument("--cutmix", type=float, metavar="ALPHA", help="CutMix with Beta(ALPHA, ALPHA); 0: off")
    sp.add_argument("--grad-clip", type=float, metavar="NORM", help="clip the gradient norm to NORM")
    sp.add_argument("--class-weights", action="store_true", help="weight the loss by inverse class frequency")
    sp.add_argument("--early-stop-patience", type=int, metavar="N", help="stop after N epochs without improvement")
    sp.add_argument(
        "--save-every",
        dest="save_every_s",
        type=float,
        metavar="SECONDS",
        help="write last.pt (and a new best.pt) at an epoch's end at most this often (default 30; 0: every epoch; "
        "the last epoch and a stop are always saved)",
    )
    sp.add_argument("--image-size", type=int, metavar="S", help="training image side in pixels")
    sp.add_argument("--val-split", type=float, metavar="F", help="share of each class for validation")
    sp.add_argument("--test-split", type=float, metavar="F", help="share of each class for the final test")
    sp.add_argument("--augment", choices=["none", "light", "standard", "strong"], help="training augmentation")
    sp.add_argument("--no-augment", action="store_true", help="same as --augment none")
    sp.add_argument("--cache", choices=["auto", "memory", "stream"], help="decoded-image cache (default auto)")
    sp.add_argument("--num-workers", type=int, metavar="N", help="DataLoader workers when streaming")
    sp.add_argument("--seed", type=int, metavar="N", help="seed of the split, the weights and the augmentation")
    sp.add_argument(
        "--device",
        type=_device_name,
        metavar="auto|cpu|cuda|cuda:N|mps",
        help="default auto: CUDA if present, else the CPU",
    )
    sp.add_argument("--no-amp", action="store_true", help="train in fp32 on CUDA")
    sp.add_argument(
        "--channels-last", choices=["auto", "on", "off"], help="memory format (auto: where measured faster)"
    )
    sp.add_argument("--compile", action="store_true", help="torch.compile the model")
    sp.add_argument("--sync-bn", action="store_true", default=None, help="SyncBatchNorm under torchrun")
    sp.add_argument("--runs-dir", metavar="DIR", help="where run folders go (env RESNEXT_STUDIO_RUNS)")
    sp.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue a stopped or interrupted run, or train a finished one further (a larger --epochs)",
    )
    sp.add_argument("--json", action="store_true", help="print one JSON document (the result) on stdout")
    sp.add_argument("--quiet", action="store_true", help="no progress on stderr (warnings and failures still)")

    sp = add("evaluate", "accuracy, confusion matrix and per-class scores of a checkpoint", cmd_evaluate)
    sp.add_argument("--checkpoint", required=True, metavar="CKPT", help=CKPT_HELP)
    sp.add_argument("--data", metavar="DIR", help="default: the data folder the model was trained on")
    sp.add_argument(
        "--split",
        choices=["val", "test", "all"],
        help=(
            "default: on the model's own data folder the images it never trained on (test if the run kept a test "
            "split, else val); all on another folder"
        ),
    )
    sp.add_argument("--device", type=_device_name, default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    sp.add_argument("--json", action="store_true", help="print one JSON document")
    sp.add_argument("--quiet", action="store_true", help="no progress on stderr")

    sp = add("predict", "classify images (files or folders)", cmd_predict)
    sp.add_argument("--checkpoint", required=True, metavar="CKPT", help=CKPT_HELP)
    sp.add_argument("paths", nargs="+", metavar="PATH")
    sp.add_argument("--top-k", type=int, default=3, metavar="K", help="classes listed per image (default 3)")
    sp.add_argument(
        "--csv",
        metavar="FILE",
        help="also write the results as CSV (- : the CSV on stdout, in place of the text lines)",
    )
    sp.add_argument(
        "--cam",
        metavar="DIR",
        help="write Grad-CAM overlays into DIR (at most 4096 px on a side; --json names each image's overlay)",
    )
    sp.add_argument("--device", type=_device_name, default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    sp.add_argument("--json", action="store_true", help="print one JSON document")
    sp.add_argument("--quiet", action="store_true", help="no progress on stderr")

    sp = add("export", "export a checkpoint to ONNX or TorchScript (checked against PyTorch)", cmd_export)
    sp.add_argument("--checkpoint", required=True, metavar="CKPT", help=CKPT_HELP)
    sp.add_argument("--format", required=True, choices=["onnx", "torchscript"], help="file format")
    sp.add_argument("--out", required=True, metavar="FILE", help="the exported file (never an input)")
    sp.add_argument("--json", action="store_true", help="print one JSON document")
    sp.add_argument(
        "--quiet", action="store_true", help="print nothing when it succeeds (the line that names the file written)"
    )

    sp = add("runs", "list past training runs", cmd_runs)
    sp.add_argument("--runs-dir", metavar="DIR", help="where run folders are (env RESNEXT_STUDIO_RUNS)")
    sp.add_argument("--json", action="store_true", help="print one JSON document")
    return p


def _command_actions(parser: argparse.ArgumentParser, command: str | None) -> list[argparse.Action]:
    for action in parser._subparsers._group_actions if parser._subparsers else []:
        sub = getattr(action, "choices", {}).get(command) if command else None
        if sub is not None:
            return list(sub._actions)
    return []


def _defaults_of(parser: argparse.ArgumentParser, command: str | None) -> dict[str, Any]:
    """The default of every flag of `command` (to tell which flags the user gave)."""
    return {a.dest: a.default for a in _command_actions(parser, command)}


def _refuse_empty(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """An empty argument (an unset shell variable: `predict "$IMG"`) is refused: as a path, "" means the working
    folder, so predict classified everything under it and --data "" fell back to the run's own folder."""
    for action in _command_actions(parser, args.command):
        value = getattr(args, action.dest, None)
        if value == "" or (isinstance(value, list) and "" in value):
            name = action.option_strings[-1] if action.option_strings else (action.metavar or action.dest)
            raise UsageError(f'{name}: an empty value ("")')


def _run_checkpoint(folder: str, flag: str = "--checkpoint") -> str:
    """--checkpoint RUN_DIR (and --pretrained RUN_DIR) means the run's best.pt (its last.pt when it has no best
    yet)."""
    from core.runs import run_checkpoint

    found = run_checkpoint(folder)
    if found is not None:
        if Path(found).name != "best.pt":  # (said only in --json's "checkpoint": the numbers read as best.pt's)
            _err(f"note: {flag} {folder}: the run has no best.pt yet; its {Path(found).name} is used")
        return str(found)
    raise UsageError(f"{flag} {folder}: a folder without best.pt or last.pt; give a checkpoint file")


def _answer_interrupted(args: argparse.Namespace | None, how: str) -> None:
    """`train --json` interrupted before its run had a folder (the imports, the scan): the document a script reads
    says so (stdout was empty). A resumed run's folder is there already, as it was."""
    if args is None or getattr(args, "command", None) != "train" or not getattr(args, "json", False):
        return
    if getattr(args, "answered", False) or os.environ.get("RANK", "0") != "0":  # (under torchrun: rank 0 answers)
        return
    from core.runs import read_status

    resumed = getattr(args, "resume", None)
    doc = {
        "run_dir": str(Path(resumed).absolute()) if resumed else None,
        "reason": "interrupted",
        "message": f"interrupted ({how}) before training "
        + ("went on; the run is as it was" if resumed else "began; nothing was saved"),
        "epochs_done": read_status(resumed).get("epochs_done") if resumed else 0,
    }
    with contextlib.suppress(OSError):  # (a closed terminal)
        _emit_json(doc)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    for stream in (sys.stdout, sys.stderr):  # a file name that is not valid UTF-8 prints escaped, never crashes
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")
    with _standard_streams():  # (round the messages of failures too: with no stderr they went to stdout)
        return _main(argv)


def _main(argv: list[str]) -> int:
    args = None
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 0 if not argv else 2
        _refuse_empty(parser, args)
        args.parser_defaults = _defaults_of(parser, args.command)
        if getattr(args, "checkpoint", None) and os.path.isdir(args.checkpoint):  # (Path.is_dir could raise)
            args.checkpoint = _run_checkpoint(args.checkpoint)
        pretrained = getattr(args, "pretrained", None)
        if pretrained and pretrained != "imagenet" and os.path.isdir(pretrained):  # (a run, as for --checkpoint)
            args.pretrained = _run_checkpoint(pretrained, "--pretrained")
        with _ending_on_signals():
            code = int(args.func(args) or 0)
        if sys.stdout is not None:  # what is still buffered: a failure is said here (at exit: "Exception ignored")
            sys.stdout.flush()
        return code
    except UsageError as e:
        hint = ""
        if isinstance(e, _ArgumentError):  # "-odd.png" read as a flag: argparse said only that PATH was missing
            options = argv[: argv.index("--")] if "--" in argv else argv
            dashed = next((a for a in options if a.startswith("-") and len(a) > 1 and os.path.exists(a)), None)
            hint = f" ({dashed} is a file: put -- before names that begin with '-')" if dashed else ""
        if _speaks():
            _err(f"error: {e}{hint}")
        elif e.own:
            _err(f"[rank {os.environ.get('RANK', '?')}] error: {e}{hint}")
        return 2
    except BrokenPipeError:  # `… | head`: the reader has gone; before OSError, of which it is one
        os._exit(0)
    except _OutputError as e:  # (a full disk): said to be the output, not some file
        _drop_output()
        _err(f"error: cannot write the output (standard output): {e.strerror or e}")
        return 2
    except OSError as e:  # a path that cannot be written or read (a folder given for a file, no permission, …)
        name = getattr(e, "filename2", None) or getattr(e, "filename", None)  # os.replace: the destination
        where = f"{name}: " if name else ""
        _err(f"error: {where}{e.strerror or e}")
        return 2
    except _Ended as e:
        _answer_interrupted(args, signal.Signals(e.signum).name)
        with contextlib.suppress(OSError):  # (a closed terminal)
            _err(f"interrupted ({signal.Signals(e.signum).name})")
        return 128 + e.signum
    except KeyboardInterrupt:
        _answer_interrupted(args, "Ctrl-C")
        _err("interrupted")
        return 130


if __name__ == "__main__":  # `python -m core.cli …`, as `python main.py …` (it exited 0 having done nothing)
    from core import exit_on_signals_with, ignore_signals_at_the_last

    ignore_signals_at_the_last()
    code = main()
    exit_on_signals_with(code)
    sys.exit(code)
