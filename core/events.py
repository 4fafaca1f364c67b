"""The event bus: how the run lifecycle tells whoever listens (the dispatcher, retries,
watcher deliveries) without the modules knowing each other.

The composition root (core/bootstrap.py) subscribes every listener explicitly; importing a
module never subscribes anything. Listeners are called in the publishing thread, so a
listener must be quick or hand its work to a thread of its own; its errors are logged and
swallowed, so that a listener can never fail or delay a run.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Callable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunQueued:
    """A run was queued and may execute now (or at its not_before)."""

    run_id: str


@dataclass(frozen=True)
class RunFinished:
    """A run reached its final status (succeeded, failed or cancelled)."""

    run: Any  # storage.models.Run, as it was read after it finished


@dataclass(frozen=True)
class CancelRequested:
    """Someone asked a run to stop; the process executing it kills its sandbox."""

    run_id: str


class EventBus:
    def __init__(self) -> None:
        self._listeners: dict[type, list[Callable]] = defaultdict(list)
        self._lock = threading.Lock()

    def subscribe(self, event_type: type, listener: Callable) -> None:
        with self._lock:
            if listener not in self._listeners[event_type]:
                self._listeners[event_type].append(listener)

    def clear(self, event_type: type | None = None) -> None:
        """Forget every listener (of one event type, when given)."""
        with self._lock:
            if event_type is None:
                self._listeners.clear()
            else:
                self._listeners.pop(event_type, None)

    def listeners(self, event_type: type) -> list[Callable]:
        with self._lock:
            return list(self._listeners.get(event_type, ()))

    def publish(self, event) -> int:
        """Call every listener of the event's type; return how many there were."""
        listeners = self.listeners(type(event))
        for listener in listeners:
            try:
                listener(event)
            except Exception:  # noqa: BLE001 - see the module docstring
                log.exception("listener %s failed for %s", getattr(listener, "__qualname__", listener), event)
        return len(listeners)


# The process's bus. bootstrap.build() replaces its subscriptions; nothing else subscribes.
bus = EventBus()
