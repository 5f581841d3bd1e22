"""The Qt binding in use must not leak references to None from its event-loop calls (PySide6 6.12.0 does)."""

from __future__ import annotations

import sys

from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtTest import QTest


def test_event_loop_calls_keep_none_alive(qapp):
    before = sys.getrefcount(None)
    loop = QEventLoop()
    for _ in range(300):
        qapp.processEvents()
        loop.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 1)
        QTest.qWait(0)
        inner = QEventLoop()
        QTimer.singleShot(0, inner.quit)
        inner.exec()
    # Each leaking call drops one reference; 300 rounds of four calls would lose ≥ 1,200.
    assert sys.getrefcount(None) - before > -50
