"""LoopService: a step run every `interval_s` on a thread of its own, until stopped.

The one loop mechanism of the process (the dispatcher, the scheduler tick): a service's work
is its `run_once()`, which tests call directly instead of waiting for the thread. `wake()`
runs the next step at once (a run was queued, a slot freed). A failing step is logged and the
loop goes on: a store hiccup must not stop the queue or the schedule.
"""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)


class LoopService:
    name = "service"

    def __init__(self, interval_s: float):
        self.interval_s = interval_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> object:
        """One step of the service's work."""
        raise NotImplementedError

    def on_start(self) -> None:
        """Called once, in the caller's thread, before the loop starts."""

    def on_stop(self) -> None:
        """Called once after the loop ended."""

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> "LoopService":
        if self.running:
            return self
        self.on_start()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=f"tributary-{self.name}", daemon=True)
        self._thread.start()
        return self

    def wake(self, *_event) -> None:
        self._wake.set()

    def stop(self, timeout_s: float = 5) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
            self._thread = None
        self.on_stop()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # noqa: BLE001 - see the module docstring
                log.exception("%s: a step failed; the next one tries again", self.name)
            self._wake.wait(self.interval_s)
            self._wake.clear()
