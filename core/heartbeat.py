"""The run's heartbeat: the lease of the process executing a run.

A process that claims a run records its worker id (common/process.py) and a heartbeat time on
it (core/execution.py's claim); while the run executes, a thread of that process renews the
heartbeat every HEARTBEAT_S (TRIBUTARY_HEARTBEAT_S, default 5 s). Recovery
(core/services/recovery.py) judges a run's process dead when the process table of its host
says so (this host only), or when its heartbeat is older than STALE_AFTER_S
(TRIBUTARY_HEARTBEAT_STALE_S, default 60 s) and its worker is on another host, whose processes
cannot be seen from here: a worker machine that died, or lost the store for that long.

The renewal is conditional (the run still active and still this process's): once it matches
nothing, the run was taken over (recovery settled it) or has ended, and the heartbeat stops
and tells its owner, which kills the run's sandbox if it still runs.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from typing import Callable

from sqlmodel import update

from common.clock import aware, utcnow
from common.process import worker_id
from common.settings import get_settings
from storage.db import session_scope
from storage.models import Run

log = logging.getLogger("tributary.heartbeat")

LEASE_STATUSES = ("running", "loading")


def heartbeat_s() -> float:
    """How often a running run's heartbeat is renewed."""
    return get_settings().heartbeat_s


def stale_after_s() -> float:
    """How old a heartbeat may be before its run's process is judged dead (another host's)."""
    return get_settings().heartbeat_stale_s


def stale(heartbeat_at: datetime | None, now: datetime | None = None) -> bool:
    """Whether a heartbeat is older than the stale limit (none recorded: not judged)."""
    if heartbeat_at is None:
        return False
    return (now or utcnow()) - aware(heartbeat_at) > timedelta(seconds=stale_after_s())


def beat(run_id: str, worker: str) -> bool:
    """Renew the run's lease; False when the run is no longer active and this worker's."""
    with session_scope() as session:
        result = session.execute(
            update(Run).where(Run.id == run_id, Run.worker == worker, Run.status.in_(LEASE_STATUSES))
            .values(heartbeat_at=utcnow())
        )
        return result.rowcount == 1


class Heartbeat:
    """Renews a run's heartbeat on a thread until stopped, or until the lease is lost (then
    `on_lost(run_id)` is called once). A renewal that fails (the store unreachable) is tried
    again at the next beat: the lease ages meanwhile, as it should."""

    def __init__(self, run_id: str, on_lost: Callable[[str], None] = lambda run_id: None,
                 interval_s: float | None = None):
        self.run_id, self._on_lost = run_id, on_lost
        self.interval_s = interval_s or heartbeat_s()
        self._worker = worker_id()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-{run_id}", daemon=True)

    def start(self) -> "Heartbeat":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        held = False  # renewed at least once: a miss before that is a run this process never claimed
        while not self._stop.wait(self.interval_s):
            try:
                renewed = beat(self.run_id, self._worker)
            except Exception as exc:  # noqa: BLE001 - a store hiccup: the next beat tries again
                log.warning("run %s: its heartbeat could not be renewed: %s", self.run_id, exc)
                continue
            if renewed:
                held = True
                continue
            if held and not self._stop.is_set():
                log.warning("run %s: no longer this process's to execute (ended, or settled by recovery "
                            "after its heartbeat went stale): stopping it", self.run_id)
                try:
                    self._on_lost(self.run_id)
                except Exception:  # noqa: BLE001 - the owner's reaction must not kill the thread quietly
                    log.exception("run %s: stopping it after its lease was lost failed", self.run_id)
            return
