"""The workers registry: which worker processes are alive, their queues and their load.

A worker (core/worker.py) runs a Presence: a thread that writes the worker's row in the store
(`workers`) at its start and renews it every TRIBUTARY_HEARTBEAT_S with the number of runs it
executes (runs running or loading whose worker column is this process's worker id); on stop it
removes its row. A worker that died without stopping leaves a row that ages: readers
(`seen_workers`) show only the rows renewed within the last minute, and not those of this
host's processes that no longer exist (seen dead at once, as recovery sees them).

Readers: the Settings page, /api/health (with `broker_health`), and `worker_label`, the
readable form of a run's worker column for the Runs page and the CLI.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import tomllib
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from pathlib import Path

from sqlmodel import delete, func, select, update

from common.clock import aware, utcnow
from common.process import died, worker_fields, worker_id, worker_label  # noqa: F401 - readers' names
from core.heartbeat import LEASE_STATUSES, heartbeat_s
from storage.db import session_scope
from storage.models import Run, WorkerPresence

log = logging.getLogger("tributary.workers")

SEEN_WITHIN_S = 60
FORGET_AFTER = timedelta(days=1)  # rows of workers gone this long are removed
BROKER_TIMEOUT_S = 2.0  # a health check must answer even when the broker does not
PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


@cache
def project_version() -> str | None:
    """The version this worker runs (pyproject's), so that Settings shows workers left behind
    by an upgrade; None when the checkout has no pyproject (an image that left it out)."""
    try:
        return tomllib.loads(PYPROJECT.read_text())["project"]["version"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return None


@dataclass(frozen=True)
class SeenWorker:
    id: str
    name: str
    host: str
    pid: int
    queues: list[str]
    concurrency: int
    running: int
    started_at: object
    last_seen_at: object
    version: str | None

    @property
    def load(self) -> str:
        return f"{self.running} / {self.concurrency}"


def running_count(worker: str) -> int:
    with session_scope() as session:
        return session.exec(select(func.count()).select_from(Run).where(
            Run.worker == worker, Run.status.in_(LEASE_STATUSES))).one()


class Presence:
    """This worker process's row in the registry, renewed on a thread until stopped."""

    def __init__(self, name: str, queues: list[str], concurrency: int, interval_s: float | None = None):
        self.name, self.queues, self.concurrency = name, list(queues), concurrency
        self.interval_s = interval_s or heartbeat_s()
        self.id = worker_id()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="worker-presence", daemon=True)

    def start(self) -> "Presence":
        _forget_gone()
        self.renew()
        self._thread.start()
        return self

    def renew(self) -> None:
        """Say this worker is alive now, with its load (the row is written again if missing)."""
        values = {"running": running_count(self.id), "last_seen_at": utcnow(), "queues": self.queues,
                  "concurrency": self.concurrency}
        with session_scope() as session:
            renewed = session.execute(update(WorkerPresence).where(WorkerPresence.id == self.id).values(**values))
            if renewed.rowcount == 0:
                session.add(WorkerPresence(id=self.id, name=self.name, host=socket.gethostname(), pid=os.getpid(),
                                           version=project_version(), **values))

    def stop(self) -> None:
        """Stop renewing and leave the registry (readers no longer show this worker)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        try:
            with session_scope() as session:
                session.execute(delete(WorkerPresence).where(WorkerPresence.id == self.id))
        except Exception as exc:  # noqa: BLE001 - the store gone: the row ages out of the list instead
            log.warning("worker %s: could not leave the registry: %s", self.name, exc)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.renew()
            except Exception as exc:  # noqa: BLE001 - a store hiccup: the next renewal tries again
                log.warning("worker %s: its presence could not be renewed: %s", self.name, exc)


class Registered:
    """A worker that runs inside another process (the app host's worker in the app, see
    core/celery_executor.py), listed in the registry while it runs: the runs of feeds loading
    into files on the app's host execute there, so Settings must not say no worker is up."""

    def __init__(self, worker, queues: list[str]):
        self.worker, self.queues = worker, list(queues)
        self._presence: Presence | None = None

    def start(self) -> "Registered":
        self.worker.start()
        self._presence = Presence(self.worker.hostname, self.queues, self.worker.concurrency).start()
        return self

    def stop(self) -> None:
        if self._presence is not None:
            self._presence.stop()
            self._presence = None
        self.worker.stop()


def _forget_gone() -> None:
    """Remove the rows of workers not seen for a day, and of this host's dead processes."""
    with session_scope() as session:
        session.execute(delete(WorkerPresence).where(WorkerPresence.last_seen_at < utcnow() - FORGET_AFTER))
        host = socket.gethostname()
        for row in session.exec(select(WorkerPresence).where(WorkerPresence.host == host)).all():
            if died(row.id):
                session.delete(row)


def seen_workers(within_s: float = SEEN_WITHIN_S) -> list[SeenWorker]:
    """The workers that renewed their presence within `within_s` seconds and are not known
    dead, by host and pid."""
    since = utcnow() - timedelta(seconds=within_s)
    with session_scope() as session:
        rows = session.exec(select(WorkerPresence).order_by(WorkerPresence.host, WorkerPresence.pid)).all()
        return [SeenWorker(id=r.id, name=r.name, host=r.host, pid=r.pid, queues=list(r.queues or []),
                           concurrency=r.concurrency, running=r.running, started_at=aware(r.started_at),
                           last_seen_at=aware(r.last_seen_at), version=r.version)
                for r in rows if aware(r.last_seen_at) >= since and not died(r.id)]


def broker_health(url: str) -> dict:
    """Whether the broker answers within BROKER_TIMEOUT_S, with its URL's password masked."""
    from core.celery_executor import _shown  # celery is imported only with the celery executor

    from kombu import Connection

    shown = _shown(url)
    try:
        with Connection(url, connect_timeout=BROKER_TIMEOUT_S,
                        transport_options={"socket_timeout": BROKER_TIMEOUT_S, "max_retries": 0}) as connection:
            connection.ensure_connection(max_retries=0, timeout=BROKER_TIMEOUT_S)  # one try: a refusal is said at once
    except Exception as exc:  # noqa: BLE001 - any failure to connect is "not reachable", said with why
        return {"url": shown, "reachable": False, "error": str(exc).replace(url, shown)}
    return {"url": shown, "reachable": True}
