"""GUI start-up: display checks, QApplication, stylesheet, settings, the main window."""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # (PySide6 is imported late: `main.py --help` and the no-display message need none of it)
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

ORG = "ResNeXt Studio"
APP = "ResNeXt Studio"
NO_DISPLAY_MESSAGE = (
    "ResNeXt Studio needs a display: run it in a desktop session, or use the command line: "
    "python main.py --help (headless: QT_QPA_PLATFORM=offscreen)"
)
# The X11 libraries Qt's xcb platform plugin loads, as Debian/Ubuntu packages and the names ctypes.util.find_library
# knows them by: the README's list first (what a desktop often lacks), then the rest the plugin links. Without any of
# them Qt aborts with a message that names only xcb-cursor0. (The README also lists libxcb-xinerama0, which Qt 5
# loaded; Qt 6's plugin does not: a machine without it opens the window.)
XCB_LIBRARIES = {
    "libxcb-cursor0": "xcb-cursor",
    "libxkbcommon-x11-0": "xkbcommon-x11",
    "libxcb-icccm4": "xcb-icccm",
    "libxcb-image0": "xcb-image",
    "libxcb-keysyms1": "xcb-keysyms",
    "libxcb-randr0": "xcb-randr",
    "libxcb-render-util0": "xcb-render-util",
    "libxcb-shape0": "xcb-shape",
    "libxcb-xkb1": "xcb-xkb",
    "libxcb-util1": "xcb-util",
    "libxcb-render0": "xcb-render",
    "libxcb-shm0": "xcb-shm",
    "libxcb-sync1": "xcb-sync",
    "libxcb-xfixes0": "xcb-xfixes",
    "libxkbcommon0": "xkbcommon",
    "libx11-xcb1": "X11-xcb",
    "libxcb1": "xcb",
    "libx11-6": "X11",
}


def xcb_message(missing: list[str]) -> str:
    """The one line saying which of the xcb plugin's libraries (packages) are missing, and how to install them."""
    what = f"library {missing[0]}" if len(missing) == 1 else f"libraries {', '.join(missing)}"
    return f"ResNeXt Studio needs the X11 {what} (Qt's xcb plugin): sudo apt install {' '.join(missing)}"


XCB_CURSOR_MESSAGE = xcb_message(["libxcb-cursor0"])


def missing_xcb_libraries(find_library: Any = None) -> list[str]:
    """The packages of XCB_LIBRARIES whose library `find_library` (ctypes.util.find_library) does not find."""
    if find_library is None:
        import ctypes.util

        find_library = ctypes.util.find_library
    return [package for package, name in XCB_LIBRARIES.items() if find_library(name) is None]


STYLE_PATH = Path(__file__).with_name("style.qss")
SAMPLE_DIR = Path(__file__).resolve().parent.parent / "resources" / "sample"


def check_display(
    environ: dict[str, str] | None = None, platform: str | None = None, find_library: Any = None
) -> str | None:
    """The one-line reason the window cannot open here, or None when Qt has somewhere to draw (and, for X11, every
    library its xcb plugin loads; `find_library` as ctypes.util.find_library, which it is by default)."""
    env = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if not platform.startswith("linux"):
        return None
    qpa = env.get("QT_QPA_PLATFORM", "").strip()
    if not qpa and not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        return NO_DISPLAY_MESSAGE
    if qpa and not env.get("QT_QPA_PLATFORM_PLUGIN_PATH") and (unknown := _unknown_platform(qpa)):
        return unknown
    uses_xcb = qpa.startswith("xcb") or (not qpa and not env.get("WAYLAND_DISPLAY"))
    if uses_xcb and (missing := missing_xcb_libraries(find_library)):
        return xcb_message(missing)
    return None


def _unknown_platform(qpa: str, plugins: Path | None = None) -> str | None:
    """The one line for a QT_QPA_PLATFORM that names no platform plugin Qt has here ("bogus", a typo of
    "offscreen"): Qt aborted, dumping core, after a paragraph. None when one of its names (it may list several,
    "wayland;xcb", each with ":options") has a plugin, or the plugins cannot be looked at."""
    if plugins is None:
        from PySide6.QtCore import QLibraryInfo

        plugins = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)) / "platforms"
    try:
        have = sorted(n.name[4:].split(".")[0] for n in plugins.iterdir() if n.name.startswith("libq"))
    except OSError:
        return None
    wanted = [part.split(":")[0].strip() for part in qpa.split(";")]
    if not have or any(name in have for name in wanted):
        return None
    return (
        f"QT_QPA_PLATFORM={qpa}: no such Qt platform here (there are {', '.join(have)}); unset it, or use one of those"
    )


_read_status: dict[str, Any] = {}  # settings file -> what went wrong when it was first read (QSettings.Status)


# What this process last wrote to each settings file, key by key: at closing, a value the window left as it was
# and another window of the app changed meanwhile stays the other's (MainWindow.closeEvent).
_written: dict[str, dict[str, Any]] = {}
_recording: list[type] = []


def written_settings(path: str) -> dict[str, Any]:
    """The values this process has written to the settings file at `path` (a copy)."""
    return dict(_written.get(path, {}))


def _settings_class() -> type:
    if not _recording:
        from PySide6.QtCore import QSettings

        class _Recording(QSettings):
            def setValue(self, key: str, value: Any) -> None:  # noqa: N802 - Qt override
                _written.setdefault(self.fileName(), {})[key] = value
                super().setValue(key, value)

        _recording.append(_Recording)
    return _recording[0]


def settings() -> QSettings:
    """The application's settings (an INI file in the user scope, so tests can redirect it with QSettings.setPath)."""
    from PySide6.QtCore import QSettings

    s = _settings_class()(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORG, APP)
    if s.status() != QSettings.Status.NoError:  # (known only to the first QSettings that reads the file: Qt keeps
        _read_status.setdefault(s.fileName(), s.status())  # what it read for the others)
    return s


def settings_write_problem(path: str | os.PathLike) -> str | None:
    """Why the settings file at `path` cannot be written, or None. Qt writes a new file beside it (and a .lock) and
    renames it over the old one, and refuses an old one it cannot open for writing."""
    import tempfile

    file = Path(path)
    if file.is_dir():
        return "it is a folder"
    folder = file.parent
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        return f"{existing.name} is a file, not a folder"
    try:
        folder.mkdir(parents=True, exist_ok=True)  # (as Qt does before writing)
        fd, probe = tempfile.mkstemp(prefix=".write-check-", dir=folder)
        os.close(fd)
        os.unlink(probe)
        if file.exists():
            with open(file, "r+b"):
                pass
    except OSError as e:
        return e.strerror or str(e)
    return None


def settings_problem(s: QSettings | None = None) -> str | None:
    """One line naming the settings file when its settings are lost: it cannot be written (checked now, or `s`'s
    status after a sync) or could not be read (a file not in the INI format: the defaults were used). Else None.
    (Nothing checked the settings' status: a settings file that could not be written lost every change silently.)"""
    from PySide6.QtCore import QSettings

    s = settings() if s is None else s
    path, status = s.fileName(), s.status()
    read = _read_status.get(path)
    reason = settings_write_problem(path)
    if reason or QSettings.Status.AccessError in (status, read):
        return f"Settings are not saved: {path} cannot be written ({reason or 'access denied'})"
    if QSettings.Status.FormatError in (status, read):
        return (
            f"Settings could not all be read from {path} (not an INI file): what could not be read is at its defaults"
        )
    return None


STYLE_POINT_SIZE = 10.0  # style.qss's text size, and the smallest the app uses


def text_scale(font_points: float | None = None) -> float:
    """How much larger than style.qss's 10 pt the desktop's font is (`font_points`, by default the application's
    font as the desktop set it), never below 1: what the style sheet's and the charts' text sizes are scaled by."""
    if font_points is None:
        from PySide6.QtWidgets import QApplication

        app = QApplication.instance()
        font_points = app.font().pointSizeF() if app is not None else STYLE_POINT_SIZE
    return max(1.0, font_points / STYLE_POINT_SIZE)  # (a font set in pixels has no point size: -1)


def at_font(px: int, widget: Any) -> int:
    """A size of `px` pixels at the style's 10 pt, scaled to `widget`'s font."""
    return round(px * text_scale(widget.font().pointSizeF()))


def load_stylesheet(font_points: float | None = None) -> str:
    """style.qss, its text sizes scaled up for a desktop font larger than its own 10 pt (`font_points`, by default
    the application's font as the desktop set it): a user who had raised theirs to 13 pt got 10 pt everywhere."""
    try:
        text = STYLE_PATH.read_text(encoding="utf-8")
    except OSError:
        return ""
    scale = text_scale(font_points)
    if scale == 1.0:
        return text
    import re

    return re.sub(r"font-size:\s*([\d.]+)pt", lambda m: f"font-size: {float(m.group(1)) * scale:.3g}pt", text)


# Qt's own command-line options (QApplication takes them from argv, with one dash or two); others are mistakes
QT_VALUE_OPTIONS = {"platform", "style", "stylesheet", "qmljsdebugger", "session", "display", "geometry", "title"}
QT_FLAG_OPTIONS = {"widgetcount", "reverse", "nograb", "dograb", "sync"}


def _without_qt_options(argv: list[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        name = a.lstrip("-").split("=")[0] if a.startswith("-") else ""
        if name in QT_VALUE_OPTIONS:
            skip = "=" not in a  # its value is the next argument
        elif name not in QT_FLAG_OPTIONS:
            out.append(a)
    return out


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="resnext-studio gui", description="Open the ResNeXt Studio window.")
    p.add_argument("--data", metavar="DIR", help="data set folder to open")
    p.add_argument("folder", nargs="?", metavar="DIR", help="the same as --data DIR")
    args, rest = p.parse_known_args(_without_qt_options(argv))
    if rest:  # a typo such as --dta silently opened the last folder instead
        p.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.folder and args.data and args.folder != args.data:
        p.error(f"two data folders: {args.folder} and --data {args.data}")
    args.data = args.data or args.folder
    return args


_gui_gc: Any = None  # the GuiThreadCollector, once installed


def install_gui_thread_gc(app: Any) -> None:
    """Cyclic garbage collection on the GUI thread only, from now on (once per application).

    Python collects in whichever thread allocates when a threshold is passed, often the training thread, and a
    collection frees whatever cycles it finds there: Qt objects of the GUI thread among them (a closed dialog, a
    widget of a tab rebuilt), whose destruction off their thread crashed the process (a segfault while a run built
    its model). Automatic collection is switched off, and a timer on the GUI thread collects when the counts pass
    the same thresholds."""
    global _gui_gc
    if _gui_gc is not None:
        return
    from PySide6.QtCore import QTimer

    class GuiThreadCollector(QTimer):
        def __init__(self) -> None:
            super().__init__(app)
            self.paused = False
            self.thresholds = gc.get_threshold()
            self.timeout.connect(self.collect)
            self.start(250)

        def collect(self) -> None:
            counts = gc.get_count()
            if self.paused or counts[0] <= self.thresholds[0]:
                return
            generation = 2 if counts[2] > self.thresholds[2] else 1 if counts[1] > self.thresholds[1] else 0
            gc.collect(generation)

    gc.disable()
    _gui_gc = GuiThreadCollector()


def resume_gc() -> None:
    """Collections as before a pause: on the GUI thread's timer where that is installed, else Python's own."""
    if _gui_gc is not None:
        _gui_gc.paused = False
    else:
        gc.enable()


def pause_gc_for_imports() -> None:
    """Before the background imports: no cyclic collections while torch and matplotlib build their modules."""
    gc.disable()
    if _gui_gc is not None:
        _gui_gc.paused = True


def freeze_imported_objects() -> None:
    """After the heavy imports: hand the objects alive now (torch, torchvision, matplotlib, Qt wrappers, about a
    million of them) to the collector's permanent generation and collect again as usual.

    A full cyclic collection walks every tracked object while holding the GIL: with those modules loaded it took
    100-250 ms, and whichever thread triggered it (often the training thread) froze the window for that long.
    Frozen objects are never walked again; everything created later (runs, models, figures) is collected as usual.
    """
    gc.freeze()
    resume_gc()


# The light theme's colours (style.qss uses the same): a dark desktop palette under it left fields, tables and menus
# near-black with the stylesheet's dark text on them.
LIGHT_PALETTE = {
    "Window": "#f4f6f8",
    "WindowText": "#1f2328",
    "Base": "#ffffff",
    "AlternateBase": "#f7f9fb",
    "Text": "#1f2328",
    "PlaceholderText": "#6a737d",
    "Button": "#f6f7f9",
    "ButtonText": "#1f2328",
    "BrightText": "#ffffff",
    "Light": "#ffffff",
    "Midlight": "#e8ebef",
    "Mid": "#c4ccd5",
    "Dark": "#9fa7b0",
    "Shadow": "#6e7781",
    "Highlight": "#2f6fdf",
    "HighlightedText": "#ffffff",
    "Link": "#1f4fa8",
    "LinkVisited": "#6639ba",
    "ToolTipBase": "#1f2328",
    "ToolTipText": "#ffffff",
}
LIGHT_DISABLED = {"WindowText": "#9aa3ad", "Text": "#9aa3ad", "ButtonText": "#9aa3ad", "Base": "#f6f7f9"}


def light_palette() -> Any:
    """The palette the stylesheet is drawn over, whatever the desktop's (dark themes included)."""
    from PySide6.QtGui import QColor, QPalette

    palette = QPalette()
    for name, colour in LIGHT_PALETTE.items():
        palette.setColor(getattr(QPalette.ColorRole, name), QColor(colour))
    for name, colour in LIGHT_DISABLED.items():
        palette.setColor(QPalette.ColorGroup.Disabled, getattr(QPalette.ColorRole, name), QColor(colour))
    return palette


def create_application(argv: list[str] | None = None) -> QApplication:
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        app = QApplication([sys.argv[0] if sys.argv else "resnext-studio", *(argv or [])])
    app.setOrganizationName(ORG)
    app.setApplicationName(APP)
    app.setApplicationDisplayName(APP)
    app.setStyle("Fusion")
    hints = app.styleHints()
    if hasattr(hints, "setColorScheme"):  # (Qt 6.8+: title bars and native dialogs light too, where the OS obliges)
        from PySide6.QtCore import Qt

        hints.setColorScheme(Qt.ColorScheme.Light)
    app.setPalette(light_palette())
    app.setStyleSheet(load_stylesheet())
    install_gui_thread_gc(app)
    return app


def close_on_signals(window: Any) -> None:
    """SIGTERM (a logout, `kill`), SIGINT (Ctrl-C in the terminal that started the app) and SIGHUP (that terminal
    closed) close the window as File > Quit does, without asking: a run in progress stops after its batch and keeps
    last.pt, and the settings, the window's place and its panes are saved. A second one ends the process at once.

    Python runs a signal's handler only when it next runs code, and Qt's loop may wait for ever: the signal wakes
    the loop through a socket. Before, the default ended the process on the spot (the Dataset settings changed
    since the last quit were lost, and so was the last half-minute of a run's training)."""
    import signal
    import socket

    from PySide6.QtCore import QSocketNotifier, QTimer

    from core import quiet_closed_terminal, takes_signal

    wake_r, wake_w = socket.socketpair()
    for sock in (wake_r, wake_w):
        sock.setblocking(False)
    signal.set_wakeup_fd(wake_w.fileno())
    notifier = QSocketNotifier(wake_r.fileno(), QSocketNotifier.Type.Read, window)

    def drain(*_: Any) -> None:  # (the byte read, or the notifier fires on every turn of the loop)
        with contextlib.suppress(OSError):
            wake_r.recv(64)

    notifier.activated.connect(drain)

    # SIGHUP: the terminal the app was started from was closed (it ended the app and a run in it on the spot)
    signals = [s for s in (signal.SIGTERM, signal.SIGINT, getattr(signal, "SIGHUP", None)) if takes_signal(s)]

    def handler(signum: int, frame: Any) -> None:
        for sig in signals:
            signal.signal(sig, signal.SIG_DFL)  # (the second one)
        if signum == getattr(signal, "SIGHUP", None):
            quiet_closed_terminal()  # (what is printed on the way out goes nowhere instead of failing)
        window.confirm_close = False
        QTimer.singleShot(0, window.close)

    for sig in signals:
        signal.signal(sig, handler)
    window._signal_wakeup = (wake_r, wake_w, notifier)  # kept as long as the window


def main(argv: list[str] | None = None) -> int:
    """Open the main window; returns the exit code (2 with one line on stderr when no display is usable)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parse(argv)
    if args.data:
        from core.data import folder_problem  # (never raises: Path.is_dir did on a name too long)

        if problem := folder_problem(args.data):  # ("--data /x: not a folder" of `main.py gui /x`, a folder missing)
            flag = "--data " if any(a == "--data" or a.startswith("--data=") for a in argv) else ""
            print(f"error: {flag}{args.data}: {problem}", file=sys.stderr)
            return 2
    problem = check_display()
    if problem:
        print(problem, file=sys.stderr)
        return 2
    app = create_application()
    from gui.main_window import MainWindow

    window = MainWindow(data_dir=args.data, defer=True)
    if window.maximize_first:
        window.showMaximized()
    else:
        window.show()
    window.start_background_init()
    close_on_signals(window)
    if os.environ.get("RESNEXT_STUDIO_SAY_SHOWN"):  # (for tests: the window is up)
        from PySide6.QtCore import QTimer

        QTimer.singleShot(0, lambda: print(f"window-visible {window.isVisible()}", flush=True))
    if os.environ.get("RESNEXT_STUDIO_EXIT_WHEN_SHOWN"):  # start-up benchmark: report and leave
        from PySide6.QtCore import QTimer

        def _report() -> None:
            print(f"window-visible {window.isVisible()}", flush=True)
            os._exit(0)  # a measurement hook: skip waiting for the background imports

        QTimer.singleShot(0, _report)
    rc = int(app.exec())
    # A job started after the window's close waited for its workers (a queued answer asking for one: the model's
    # summary once the device was known) must end before Python lets go of its thread: Qt ended the process on
    # "QThread: Destroyed while thread is still running" (SIGABRT; 2 of ~1,200 launches closed during start-up).
    from gui.worker import wait_for_workers

    # (one that would not stop, here or at the close: the process ends without Python's teardown)
    if not wait_for_workers(timeout_s=2.0 if window.workers_left else 60.0):
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(rc)
    return rc
