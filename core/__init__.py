"""Headless core of ResNeXt Studio: data, models, training, prediction, export, runs. Never imports Qt."""

from collections.abc import Callable

__version__ = "0.1.0"


def count_noun(n: int, noun: str, plural: str = "") -> str:
    """'1 image', '3 images', '0 runs'; words that add more than an s say so: count_noun(2, "class", "classes")."""
    return f"{n} {noun}" if n == 1 else f"{n} {plural or noun + 's'}"


def csv_cell(cell: str) -> str:
    """A text cell for a CSV file: one a spreadsheet would run as a formula (a file or class folder named
    "=HYPERLINK(…)", "-x", "@x") is written after a ', as OWASP advises; a plain number runs nothing and is written
    as it is (class folders "-1" and "+1" stay "-1" and "+1" for scripts)."""
    import re

    if cell[:1] not in ("=", "+", "-", "@", "\t", "\r") or re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", cell):
        return cell
    return "'" + cell


def quiet_closed_terminal() -> None:
    """stdout and stderr that are a terminal to the null device (on SIGHUP: the terminal is gone, and a write to it
    fails); a file or a pipe keeps what is written (nohup.out, a log, the app reading a torchrun job's JSON).
    A terminal that has hung up is no tty to isatty any more: a character device is taken as one (the null device
    is one too, harmlessly)."""
    import contextlib
    import os
    import stat
    import sys

    with contextlib.suppress(OSError, ValueError, AttributeError):
        null = os.open(os.devnull, os.O_WRONLY)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError, AttributeError):
                fd = stream.fileno()
                if not (os.isatty(fd) or stat.S_ISCHR(os.fstat(fd).st_mode)):
                    continue
                with contextlib.suppress(OSError, ValueError):
                    stream.flush()
                os.dup2(null, stream.fileno())
        os.close(null)


def takes_signal(sig: object) -> bool:
    """Whether a handler may be put on `sig`: it exists here (no SIGHUP on Windows) and was not set to be ignored
    (`nohup` starts a process with SIGHUP ignored: a run started so must outlive the terminal)."""
    import signal

    return sig is not None and signal.getsignal(sig) is not signal.SIG_IGN  # type: ignore[arg-type]


def handle_signals(names: tuple[str, ...], handler: Callable[..., None]) -> Callable[[], None]:
    """`handler` on the signals of `names` this system has and that are not ignored (takes_signal), from the main
    thread (elsewhere none is set); returns the function that puts the handlers before back."""
    import contextlib
    import signal

    before = {}
    for name in names:
        sig = getattr(signal, name, None)
        if takes_signal(sig):  # (nohup: SIGHUP ignored, as it asked)
            with contextlib.suppress(ValueError, OSError):  # (not the main thread: left as they are)
                before[sig] = signal.signal(sig, handler)

    def restore() -> None:
        for sig, previous in before.items():
            with contextlib.suppress(ValueError, OSError, TypeError):
                signal.signal(sig, previous)

    return restore


def exit_on_signals_with(rc: int) -> None:
    """Once a command has finished: Ctrl-C, SIGTERM or SIGHUP during the interpreter's shutdown (threads joined,
    modules torn down) ends the process with the command's own exit status; its files are complete, and what it
    printed is flushed where the stream allows (not from inside a flush the signal interrupted). Before, such a
    Ctrl-C killed it by SIGINT after "exported …" (exit -2; 130 in a shell)."""
    import contextlib
    import os
    import sys

    def handler(_signum: int, _frame: object) -> None:
        for stream in (sys.stdout, sys.stderr):
            # (a closed pipe or terminal; RuntimeError: the signal came inside that stream's own flush)
            with contextlib.suppress(OSError, ValueError, AttributeError, RuntimeError):
                stream.flush()
        os._exit(rc)

    handle_signals(("SIGINT", "SIGTERM", "SIGHUP"), handler)


def ignore_signals_at_the_last() -> None:
    """Called first thing by an entry point: after the other atexit callbacks (they run last registered first),
    Ctrl-C, SIGTERM and SIGHUP are ignored. Past them Python puts its handlers back to the default before it tears
    the modules down (seconds with torch loaded), and a Ctrl-C then killed a finished command by SIGINT (exit -2);
    an ignored signal stays ignored. Until then exit_on_signals_with's handler ends the process at once."""
    import atexit
    import signal

    atexit.register(handle_signals, ("SIGINT", "SIGTERM", "SIGHUP"), signal.SIG_IGN)
