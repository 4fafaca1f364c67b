"""The run queue: executes queued runs, at most `max_concurrent_runs` at a time.

Runs wait in the store with status `queued` (the Runs page shows them); the dispatcher picks
the oldest due ones whenever a slot is free. Each run is claimed with a conditional update
(see core.runs.execute_run), so two app processes never execute the same run. Without a
dispatcher (the CLI), a submitted run executes in a thread of its own at once.
"""

from __future__ import annotations

import logging
import threading

from storage.models import utcnow
from common.settings import get_settings

log = logging.getLogger(__name__)
POLL_S = 1.0


class Dispatcher:
    def __init__(self, max_concurrent: int, poll_s: float = POLL_S):
        self.max_concurrent = max(1, max_concurrent)
        self._slots = threading.Semaphore(self.max_concurrent)
        self._in_flight: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._poll_s = poll_s
        self._thread: threading.Thread | None = None

    def start(self) -> "Dispatcher":
        self._thread = threading.Thread(target=self._loop, name="tributary-dispatcher", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=5)

    def wake(self) -> None:
        self._wake.set()

    @property
    def running(self) -> int:
        with self._lock:
            return len(self._in_flight)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.dispatch_due()
            except Exception:  # noqa: BLE001 - a store hiccup must not stop the queue
                log.exception("dispatching queued runs failed")
            self._wake.wait(self._poll_s)
            self._wake.clear()

    def dispatch_due(self) -> list[str]:
        """Start as many due queued runs as there are free slots; return their ids."""
        from core.runs import due_queued_runs

        started = []
        for run in due_queued_runs(utcnow()):
            with self._lock:
                if run.id in self._in_flight:
                    continue
            if not self._slots.acquire(blocking=False):
                break
            with self._lock:
                self._in_flight.add(run.id)
            threading.Thread(target=self._execute, args=(run.id,), name=f"run-{run.id}", daemon=True).start()
            started.append(run.id)
        return started

    def _execute(self, run_id: str) -> None:
        from core.runs import execute_run

        try:
            execute_run(run_id)
        except Exception:  # noqa: BLE001 - recorded on the run by execute_run where it can be
            log.exception("run %s crashed", run_id)
        finally:
            with self._lock:
                self._in_flight.discard(run_id)
            self._slots.release()
            self._wake.set()  # a slot is free: look at the queue again


_dispatcher: Dispatcher | None = None


def start(max_concurrent: int | None = None) -> Dispatcher:
    global _dispatcher
    if _dispatcher is None:
        _dispatcher = Dispatcher(max_concurrent or get_settings().max_concurrent_runs).start()
    return _dispatcher


def stop() -> None:
    global _dispatcher
    if _dispatcher is not None:
        _dispatcher.stop()
        _dispatcher = None


def current() -> Dispatcher | None:
    return _dispatcher


def submit(run_id: str) -> None:
    if _dispatcher is not None:
        _dispatcher.wake()
        return
    from core.runs import execute_run

    threading.Thread(target=execute_run, args=(run_id,), name=f"run-{run_id}", daemon=True).start()
