"""The stop / pause flags a job shares with whoever controls it: torch-free, so a window makes one without
loading torch (a first folder scan waited 4 s for torch to import, for this alone)."""

from __future__ import annotations

import threading


class StopToken:
    """Thread-safe stop / pause flags shared between a running job and whoever controls it."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()  # wake a paused job so that it can see the stop

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def pause(self) -> None:
        if not self.stopped:
            self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def wait_if_paused(self, timeout: float | None = None) -> bool:
        """Block while paused (up to `timeout` seconds); True when no longer paused."""
        return self._running.wait(timeout)
