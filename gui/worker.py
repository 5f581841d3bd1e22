"""Background work for the GUI: a generic FunctionWorker, the TrainingWorker (core events → Qt signals), threads."""

from __future__ import annotations

import ast
import contextlib
import inspect
import re
import sys
import time
import traceback
import weakref
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QCoreApplication, QEventLoop, QObject, Qt, QThread, Signal, Slot

from core.stop import StopToken

# Every (thread, worker) started by start_worker, kept alive here until the thread has finished.
_ACTIVE: list[list[Any]] = []  # [thread, worker, relay]

BATCH_INTERVAL_S = 0.25  # batch signals at most 4 per second: each wakes the GUI thread, which then competes
# with the training threads for the cores and the GIL


_USER_ERRORS = (
    "DataError",
    "ConfigError",
    "CheckpointError",
    "ModelError",
    "DownloadStopped",  # (a Cancel: each printed a traceback)
    "ImageLoadError",
    "ExportError",
    "ModelLoadError",
)


def _is_user_error(exc: BaseException) -> bool:
    """Errors about the user's input or files, whose message says it all (no traceback needed): our own types,
    plain ValueErrors (not JSONDecodeError & co: their text needs the type) and file errors with a reason."""
    return (
        type(exc) is ValueError
        or type(exc).__name__ in _USER_ERRORS
        or (isinstance(exc, OSError) and bool(exc.strerror))
    )


def error_text(exc: BaseException) -> str:
    """One readable line: our own error types and ValueErrors carry a user message already ("the test split of …
    is empty"), file errors say which file and why; anything else gets its type name."""
    name = type(exc).__name__
    text = str(exc).strip() or name
    if isinstance(exc, OSError) and exc.strerror:
        where = " → ".join(str(f) for f in (exc.filename, exc.filename2) if f)  # a rename names both
        return f"{where}: {exc.strerror}" if where else exc.strerror
    if _is_user_error(exc):
        return _runs_folder_words(text)
    return f"{name}: {text}"


def _runs_folder_words(text: str) -> str:
    """The engine names the runs folder as its setting ("runs_dir='/data/runs': not writable", the command line's
    --runs-dir): in the window, in words ("The runs folder /data/runs: not writable")."""
    m = re.match(r"runs_dir=('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"): ", text)
    if m is not None:
        try:
            text = f"the runs folder {ast.literal_eval(m.group(1))}: {text[m.end() :]}"
        except (ValueError, SyntaxError):
            return text
    if not text.startswith("the runs folder "):  # (the default folder: the engine names it so)
        return text
    if text.endswith(": a file, not a folder"):
        text = text.removesuffix(": a file, not a folder") + " is a file, not a folder"
    return "T" + text[1:]


def _accepts(fn: Callable, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


class FunctionWorker(QObject):
    """Runs `fn(*args, **kwargs)` in a worker thread; `fn` also gets `progress=`, `stage=` and `stop=` if it
    accepts them.

    Signals: progress(done, total) (throttled, the final one always sent), stage(words) (what the progress now
    counts, when a job has several parts), result(value), failed(message), finished() — always last. `cancel()`
    sets the stop token; a function that honours it ends early.
    """

    progress = Signal(int, int)
    stage = Signal(str)
    result = Signal(object)
    failed = Signal(str)
    finished = Signal()

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.exception: BaseException | None = None
        self._token = StopToken()
        self._last_progress = 0.0

    def cancel(self) -> None:
        self._token.stop()

    @property
    def cancelled(self) -> bool:
        return self._token.stopped

    def _progress(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done >= total or now - self._last_progress >= 0.05:
            self._last_progress = now
            self.progress.emit(int(done), int(total))

    @Slot()
    def run(self) -> None:
        try:
            kwargs = dict(self.kwargs)
            if _accepts(self.fn, "progress") and "progress" not in kwargs:
                kwargs["progress"] = self._progress
            if _accepts(self.fn, "stage") and "stage" not in kwargs:
                kwargs["stage"] = self.stage.emit
            if _accepts(self.fn, "stop") and "stop" not in kwargs:
                kwargs["stop"] = self._token
            value = self.fn(*self.args, **kwargs)
        except Exception as exc:  # noqa: BLE001 — every failure becomes one `failed` signal
            self.exception = exc
            if not _is_user_error(exc):  # a bug: its traceback helps whoever reads the console
                traceback.print_exc(file=sys.stderr)
            self.failed.emit(error_text(exc))
        else:
            self.result.emit(value)
        finally:
            self.finished.emit()
            release_free_memory()


_TRIM: list[Any] = []  # glibc's malloc_trim, once looked up (None where there is none: macOS, Windows, musl)


def release_free_memory() -> None:
    """Hand back to the system the memory the C allocator keeps free (glibc's malloc_trim; elsewhere nothing).

    Every job runs on a thread of its own, and glibc keeps what a thread freed in that thread's arena for later:
    over a session of trainings, evaluations and predictions the app grew ~27 MB a round (1.0 to 1.5 GB in 20
    rounds) while ~200 MB of it was in use. Called on the worker's thread as its job ends: a few milliseconds."""
    if not _TRIM:
        trim = None
        if sys.platform.startswith("linux"):
            with contextlib.suppress(OSError, AttributeError):
                import ctypes

                trim = ctypes.CDLL(None).malloc_trim
        _TRIM.append(trim)
    if _TRIM[0] is not None:
        with contextlib.suppress(Exception):
            _TRIM[0](0)


class _Relay(QObject):
    """Calls a Python callable on the thread this relay lives in (the GUI thread).

    PySide6 runs a plain function or lambda connected to a worker's signal in the *worker* thread; a bound method
    of a QObject that lives in the GUI thread is queued there instead. Relays turn any callable into the latter.
    """

    def __init__(self, fn: Callable[..., Any], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.fn = fn

    def call(self, *args: Any) -> None:
        self.fn(*args)


def connect_worker(worker: QObject, owner: QObject, **handlers: Callable[..., Any]) -> None:
    """Connect `worker.<signal>` to callables that run on `owner`'s thread, e.g. result=..., failed=....

    The relays are parented to `owner` and deleted once `worker.finished` has been delivered.
    """
    relays: list[_Relay] = []
    for name, fn in handlers.items():
        if name == "finished":
            continue
        relay = _Relay(fn, owner)
        getattr(worker, name).connect(relay.call)
        relays.append(relay)
    done = handlers.get("finished")

    def _finish(*args: Any) -> None:
        try:
            if done is not None:
                done(*args)
        finally:
            for r in relays:
                r.deleteLater()

    last = _Relay(_finish, owner)
    relays.append(last)
    worker.finished.connect(last.call)


def start_worker(worker: QObject, parent: QObject | None = None) -> QThread:
    """Move `worker` to a new QThread and start it: started → run, worker.finished → quit; released when done.

    Call on the GUI thread. The thread has no Qt parent (destroying a parent with a running thread aborts Qt); it
    is tracked here until it has finished. When `parent` is destroyed the worker is asked to stop. Connect the
    worker's signals to bound methods of GUI objects or via `connect_worker` (a lambda would run in the worker
    thread). `wait_for_workers()` stops and waits for all of them (window close, tests).
    """
    thread = QThread()
    thread.setObjectName(f"{type(worker).__name__}Thread")
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    # direct: quit() is thread-safe, so the thread ends even while the GUI thread is blocked waiting for it
    worker.finished.connect(thread.quit, Qt.ConnectionType.DirectConnection)
    # No worker.deleteLater: it would run ~QObject on the worker thread, which needs the GIL while holding Qt's
    # connection lock, and deadlocks with a GUI thread that holds the GIL while connecting signals. The worker and
    # the thread are released by _forget instead, on the GUI thread, once the thread has finished.
    entry: list[Any] = [thread, worker]
    stop_on_destroyed: list[Callable[..., Any]] = []  # (connected to the parent while the worker runs)

    def _forget(*_: Any) -> None:  # on the GUI thread, after the thread has finished
        thread.wait()
        if entry in _ACTIVE:
            _ACTIVE.remove(entry)
        forget_relay.deleteLater()
        for fn in stop_on_destroyed:  # (each worker left one on its tab, for the tab's life: a leak per job)
            with contextlib.suppress(RuntimeError, TypeError):  # (the parent gone already)
                parent.destroyed.disconnect(fn)

    forget_relay = _Relay(_forget)
    entry.append(forget_relay)
    thread.finished.connect(forget_relay.call)
    _ACTIVE.append(entry)
    if parent is not None:
        stopper = getattr(worker, "cancel", None) or getattr(worker, "stop", None)
        if stopper is not None:
            ref = weakref.WeakMethod(stopper)
            stop_on_destroyed.append(lambda *_: (m := ref()) is not None and m())
            parent.destroyed.connect(stop_on_destroyed[0])
    thread.start()
    return thread


def is_running(thread: QThread | None) -> bool:
    """True while `thread` exists and runs (safe on a thread whose C++ object was already deleted)."""
    if thread is None:
        return False
    try:
        import shiboken6

        return shiboken6.isValid(thread) and thread.isRunning()
    except RuntimeError:
        return False


def active_threads() -> list[QThread]:
    """Threads started by start_worker that have not finished yet."""
    return [e[0] for e in list(_ACTIVE) if is_running(e[0])]


def wait_for_workers(timeout_s: float = 30.0, cancel: bool = True) -> bool:
    """Ask every tracked worker to stop and wait for the threads while processing events. True if all ended.

    Delivering a finished worker's result can start another worker (a scan's result starts the thumbnails):
    those are stopped and waited for too, until nothing runs or the time is up."""
    deadline = time.monotonic() + timeout_s
    app = QCoreApplication.instance()
    while True:
        if cancel:
            for _, worker, *_rest in list(_ACTIVE):
                stopper = getattr(worker, "cancel", None) or getattr(worker, "stop", None)
                if stopper is not None:
                    with contextlib.suppress(RuntimeError):
                        stopper()
        while time.monotonic() < deadline and active_threads():
            if app is not None:
                app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
            for t in active_threads():
                t.wait(20)
        if app is not None:  # deliver the queued finished/deleteLater events
            app.processEvents()
        if not active_threads() or time.monotonic() >= deadline:
            return not active_threads()


class TrainingWorker(QObject):
    """Runs `core.engine.Trainer.fit()` in a QThread and re-emits its events as Qt signals.

    Signals: fit_started(FitInfo), epoch_started(int), batch(BatchProgress) at ≤ 4 Hz (the last step of each
    epoch always), epoch_end(EpochMetrics), warning(str), checkpoint(path, kind), finished(FitResult | None),
    failed(str) when an exception escapes (then finished(None) follows). stop() / pause() / resume() steer it.
    """

    loading = Signal(int, int)  # images read into memory, of how many (before fit_started), at ≤ 4 Hz
    fit_started = Signal(object)
    epoch_started = Signal(int)
    batch = Signal(object)
    epoch_end = Signal(object)
    warning = Signal(str)
    checkpoint = Signal(str, str)
    failed = Signal(str)
    finished = Signal(object)

    def __init__(
        self,
        config: Any,
        index: Any = None,
        runs_dir: str | None = None,
        resume: str | None = None,
        batch_interval_s: float = BATCH_INTERVAL_S,
        extend: bool = False,
    ) -> None:
        super().__init__()
        self.config = config
        self.index = index
        self.runs_dir = runs_dir
        self.resume_dir = resume
        self.extend = extend  # (a resume given more epochs on purpose: Trainer's `extend`)
        self.batch_interval_s = batch_interval_s
        self.result: Any = None
        self.exception: BaseException | None = None
        self._token = StopToken()
        self._held_batch: list[Any] = []

    def stop(self) -> None:
        self._token.stop()

    cancel = stop

    def pause(self) -> None:
        self._token.pause()

    def resume(self) -> None:
        self._token.resume()

    @property
    def paused(self) -> bool:
        return self._token.paused

    @property
    def stopping(self) -> bool:
        return self._token.stopped

    def _make_callback(self) -> Any:
        from core.engine import Callback

        worker = self
        last = [float("-inf")]
        held = self._held_batch  # the newest batch the throttle held back: sent when the run ends (a Stop left the
        held.clear()  # bar a few batches behind the one last.pt holds)

        class _QtCallback(Callback):
            def on_loading(self, done: int, total: int) -> None:
                now = time.monotonic()
                if now - last[0] >= worker.batch_interval_s or done >= total:
                    last[0] = now
                    worker.loading.emit(int(done), int(total))

            def on_fit_start(self, info: Any) -> None:
                worker.fit_started.emit(info)

            def on_batch_end(self, p: Any) -> None:
                now = time.monotonic()
                held[:] = [p]
                if now - last[0] >= worker.batch_interval_s or p.step >= p.steps:
                    last[0] = now
                    held.clear()
                    worker.batch.emit(p)

            def on_epoch_start(self, epoch: int) -> None:
                held.clear()  # (a batch of the epoch before is not the bar's news any more)
                worker.epoch_started.emit(int(epoch))

            def on_epoch_end(self, m: Any) -> None:
                worker.epoch_end.emit(m)

            def on_checkpoint(self, path: str, kind: str) -> None:
                worker.checkpoint.emit(str(path), str(kind))

            def on_warning(self, msg: str) -> None:
                worker.warning.emit(str(msg))

        return _QtCallback()

    @Slot()
    def run(self) -> None:
        result = None
        try:
            from core.engine import Trainer

            token = self._token
            cfg = self.config
            if cfg is not None and self.resume_dir is None:
                from core.engine import choose_arch

                choose_arch(cfg)  # here, so the engine's device preset does not replace the form's values
            trainer = Trainer(
                self.config,
                self.index,
                callbacks=[self._make_callback()],
                stop=token,
                runs_dir=self.runs_dir,
                resume=self.resume_dir,
                extend=self.extend,
            )
            result = trainer.fit()
            self.result = result
        except Exception as exc:  # noqa: BLE001 — surfaces as one `failed` signal and a dialog
            self.exception = exc
            if not _is_user_error(exc):
                traceback.print_exc(file=sys.stderr)
            self.failed.emit(error_text(exc))
            result = None
        finally:
            if self._held_batch and result is not None and result.reason != "failed":  # (not after an error: the
                self.batch.emit(self._held_batch.pop())  # batch that failed is not one last.pt holds)
            self.finished.emit(result)
            release_free_memory()
