"""Run events for whoever wants them (watchers, retries), without core/runs.py knowing them.

Listeners are called after a run reached its final status, in the thread that finished it;
a listener must be quick or hand its work to a thread of its own, and its errors are
swallowed (logged on the run) so that it can never fail or delay a run.
"""

from __future__ import annotations

import logging
from typing import Callable

log = logging.getLogger(__name__)
_listeners: list[Callable] = []


def on_run_finished(listener: Callable) -> Callable:
    if listener not in _listeners:
        _listeners.append(listener)
    return listener


def run_finished(run) -> None:
    for listener in list(_listeners):
        try:
            listener(run)
        except Exception:  # noqa: BLE001 - see the module docstring
            log.exception("run listener %s failed for run %s", getattr(listener, "__name__", listener), run.id)
