"""Executors: where a queued run executes. The extension point behind the dispatcher.

The dispatcher (core/services/dispatcher.py) decides *which* queued runs may start; an
Executor decides *where*. `local` (the default) executes them on a bounded pool of this
process's threads; an executor that hands runs to workers on other machines implements the
same interface. Whatever the executor, a run executes once: the run executor claims it with a
conditional update before anything else (core/execution.py).
"""

from __future__ import annotations

import importlib
import logging
import threading
from abc import ABC, abstractmethod
from typing import Callable

from common.errors import TributaryError

log = logging.getLogger(__name__)


class Executor(ABC):
    """Contract of an executor."""

    @abstractmethod
    def submit(self, run_id: str) -> bool:
        """Start executing the queued run, without waiting for it. False when there is no free
        slot now (the run stays queued; the dispatcher offers it again later)."""

    @abstractmethod
    def in_flight(self) -> set[str]:
        """Ids of the runs this executor has taken and not finished."""

    @abstractmethod
    def free_slots(self) -> int:
        """How many more runs submit() may take now: 0 when none at all. An executor with
        room per queue (celery) says the room of a queue, and submit() answers for each run's."""

    @abstractmethod
    def shutdown(self, wait: bool = False) -> None:
        """Take no more runs; with wait=True, return once those in flight have ended."""


class LocalExecutor(Executor):
    """At most `max_concurrent` runs at a time, each on a thread of this process."""

    def __init__(self, execute: Callable[[str], object], max_concurrent: int,
                 on_done: Callable[[str], None] = lambda run_id: None):
        self.max_concurrent = max(1, max_concurrent)
        self._execute, self._on_done = execute, on_done
        self._in_flight: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self._closed = False

    @property
    def running(self) -> int:
        with self._lock:
            return len(self._in_flight)

    def in_flight(self) -> set[str]:
        with self._lock:
            return set(self._in_flight)

    def free_slots(self) -> int:
        with self._lock:
            return 0 if self._closed else self.max_concurrent - len(self._in_flight)

    def submit(self, run_id: str) -> bool:
        with self._lock:
            if self._closed or len(self._in_flight) >= self.max_concurrent or run_id in self._in_flight:
                return False
            thread = threading.Thread(target=self._work, args=(run_id,), name=f"run-{run_id}", daemon=True)
            self._in_flight[run_id] = thread
        thread.start()
        return True

    def _work(self, run_id: str) -> None:
        try:
            self._execute(run_id)
        except Exception:  # noqa: BLE001 - recorded on the run by the run executor where it can be
            log.exception("run %s crashed", run_id)
        finally:
            with self._lock:
                self._in_flight.pop(run_id, None)
            self._on_done(run_id)

    def shutdown(self, wait: bool = False) -> None:
        with self._lock:
            self._closed = True
            threads = list(self._in_flight.values())
        if wait:
            for thread in threads:
                thread.join()


# An executor is a class, or "module:Class" for one imported only when chosen (so that the local
# path never imports Celery).
EXECUTORS: dict[str, type[Executor] | str] = {"local": LocalExecutor, "celery": "core.celery_executor:CeleryExecutor"}


def executor_class(name: str) -> type[Executor]:
    try:
        found = EXECUTORS[name]
    except KeyError:
        raise TributaryError(f"executor: unknown {name!r} (known: {', '.join(sorted(EXECUTORS))})") from None
    if isinstance(found, str):
        module, _, attribute = found.partition(":")
        try:
            found = getattr(importlib.import_module(module), attribute)
        except ImportError as exc:
            raise TributaryError(f"executor: {name} needs {exc.name or 'a package'}, which is not installed: "
                                 "make extras (or .venv/bin/uv pip install -r requirements-extras.txt)") from None
    return found
