"""GUI test setup: offscreen Qt, temp settings and runs dir, tiny data sets, and a guard against leaked threads."""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"  # before any Qt import
os.environ.setdefault("MPLBACKEND", "Agg")

import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from PySide6.QtCore import QSettings  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "resources" / "sample"


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path_factory, monkeypatch):
    """Settings and runs go to temp folders; nothing touches the user's real configuration."""
    cfg = tmp_path_factory.mktemp("settings")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(cfg))
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.SystemScope, str(cfg / "system"))
    runs = tmp_path_factory.mktemp("runs")
    monkeypatch.setenv("RESNEXT_STUDIO_RUNS", str(runs))
    yield cfg


@pytest.fixture(autouse=True, scope="session")
def _gui_thread_gc(qapp):
    """Collections on the GUI thread, as the app has them (gui.app.create_application): a training thread's
    collection freed an earlier test's widgets there, and the test process crashed."""
    from gui.app import install_gui_thread_gc

    install_gui_thread_gc(qapp)


@pytest.fixture
def runs_dir() -> Path:
    return Path(os.environ["RESNEXT_STUDIO_RUNS"])


@pytest.fixture(autouse=True)
def _no_leaked_threads(request):
    """Fail a test that leaves a worker QThread running or a non-daemon Python thread alive."""
    before = {t.ident for t in threading.enumerate()}
    yield
    if "qapp" not in request.fixturenames and "qtbot" not in request.fixturenames:
        return
    from PySide6.QtCore import QCoreApplication

    from gui.worker import active_threads

    app = QCoreApplication.instance()
    deadline = time.monotonic() + 10.0  # work already finishing (a summary, a thumbnail chunk) may end
    while time.monotonic() < deadline and (active_threads() or _new_threads(before)):
        if app is not None:
            app.processEvents()
        time.sleep(0.02)
    leaked = [t.objectName() or repr(t) for t in active_threads()]
    py = [t.name for t in _new_threads(before)]
    if leaked or py:
        from gui.worker import wait_for_workers

        wait_for_workers(timeout_s=60)  # clean up so the next test starts fresh, then fail this one
        pytest.fail(f"test left threads running: QThreads {leaked}, Python threads {py}")


def _new_threads(before: set) -> list[threading.Thread]:
    return [
        t
        for t in threading.enumerate()
        if t.ident not in before and t.is_alive() and not t.daemon and t is not threading.main_thread()
    ]


def make_dataset(root: Path, classes: dict[str, int], size: int = 24, seed: int = 0) -> Path:
    """Class folders of small JPEGs whose colour depends on the class (learnable in an epoch or two)."""
    import random

    from PIL import Image

    rng = random.Random(seed)
    palette = [(220, 40, 40), (40, 200, 60), (40, 70, 220), (230, 200, 40), (160, 40, 200)]
    for ci, (name, n) in enumerate(classes.items()):
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        base = palette[ci % len(palette)]
        for i in range(n):
            colour = tuple(max(0, min(255, c + rng.randint(-30, 30))) for c in base)
            img = Image.new("RGB", (size, size), colour)
            for _ in range(4):
                x, y = rng.randrange(size), rng.randrange(size)
                img.putpixel((x, y), (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
            img.save(d / f"{name}_{i:03d}.jpg", quality=90)
    return root


@pytest.fixture
def dataset_factory():
    """make_dataset(root, {class: count}, size=24) -> root."""
    return make_dataset


@pytest.fixture
def sample_path() -> Path:
    if not SAMPLE.is_dir():
        pytest.skip("resources/sample not generated (python resources/make_sample.py)")
    return SAMPLE


@pytest.fixture
def tiny_dataset(tmp_path) -> Path:
    return make_dataset(tmp_path / "tiny", {"red": 12, "green": 12, "blue": 12})


@pytest.fixture
def answer_question():
    """answer_question("Keep training") clicks that button of the next `gui.widgets.ask` box once it shows, and
    returns a list that then holds (box text, [button texts], window title): the real dialog is shown and
    answered."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    def arrange(button: str) -> list:
        seen: list = []
        tries = [0]

        def poll() -> None:
            box = QApplication.activeModalWidget()
            if isinstance(box, QMessageBox) and box.objectName() == "ask":
                seen.append((box.text(), [b.text() for b in box.buttons()], box.windowTitle()))
                match = [b for b in box.buttons() if b.text() == button]
                (match[0].click() if match else box.reject())  # a missing button answers no, and the test sees why
            elif tries[0] < 2000:  # about 20 s: the box never came; the test's assertion on `seen` fails
                tries[0] += 1
                QTimer.singleShot(10, poll)

        QTimer.singleShot(0, poll)
        return seen

    return arrange


@pytest.fixture
def window(qtbot, runs_dir):
    """make(**kwargs): a shown MainWindow on this test's runs folder, closed without asking at the end."""
    from gui.main_window import MainWindow

    created = []

    def make(**kwargs):
        w = MainWindow(runs_dir=str(runs_dir), **kwargs)
        qtbot.addWidget(w)
        w.show()
        created.append(w)
        return w

    yield make
    for w in created:
        w.confirm_close = False
        w.close()
