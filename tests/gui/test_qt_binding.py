"""The Qt binding in use must not leak references to None from its event-loop calls (PySide6 6.12.0 does)."""

from __future__ import annotations

import gc
import sys

import pytest
from PySide6.QtCore import QCoreApplication, QEvent, QEventLoop, QTimer
from PySide6.QtTest import QTest


# From Python 3.12 None is immortal (PEP 683): its count never moves, so the check could not fail there
@pytest.mark.skipif(sys.version_info >= (3, 12), reason="None's reference count is fixed from Python 3.12")
def test_event_loop_calls_keep_none_alive(qapp):
    # Widgets of earlier tests still waiting for deleteLater (and garbage) free objects, and with them references
    # to None, as soon as the loop runs: let that happen before counting.
    for _ in range(3):
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        qapp.processEvents()
        gc.collect()
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
