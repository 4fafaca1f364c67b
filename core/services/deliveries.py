"""Watcher deliveries: sending what a finished run's watchers asked to hear.

When a run finishes, on_run_finished writes one Delivery row (pending) per triggered event and
watcher (core/watchers.py decides which) and hands the sending to the service's small pool of
threads: the run has already ended and never waits for, or fails because of, a notification.
Each delivery is tried up to max_attempts times through its channel (core/notify/) with an
exponential backoff (common/backoff.py); every attempt updates its row, so the run page can
show what was sent, what is still being tried and why something failed.

Each row names the process sending it (host:pid:start). A CLI command waits for its
deliveries before it exits (flush). A process that is killed leaves its deliveries pending:
the next start of the app on the same host sends them (resume_left), its attempts counted on
from the row's. The X-Tributary-Delivery header stays the same, so a receiver that got an
attempt whose answer was lost can recognise the repeat.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Callable
from urllib.parse import quote

from sqlmodel import select, update

from common.backoff import backoff_s
from common.process import died, worker_id
from common.settings import Settings, get_settings
from core import events
from core.notify import DeliveryError, NotConfigured, get_channel
from core.runs import run_view
from core.watchers import NOTIFYING_STATUSES, event_title, events_for
from storage.db import session_scope
from storage.models import Delivery, Run, Watcher, utcnow

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 4
BACKOFF_BASE_S = 1.0
POOL_SIZE = 4


def run_link(run_id: str, public_url: str) -> str:
    return f"{public_url.rstrip('/')}/runs?run={quote(run_id)}"


def document_for(run: Run, event: str, public_url: str) -> dict:
    """The JSON a webhook receives; the email says the same."""
    view = run_view(run)
    document = {
        "event": event, "feed": run.feed_name, "run_id": run.id, "status": run.status,
        "records_written": run.records_written, "records_loaded": run.records_loaded, "error": run.error,
        "started_at": view["started_at"], "finished_at": view["finished_at"], "duration_s": view["duration_s"],
        "link": run_link(run.id, public_url),
    }
    if event == "schema_changed":  # the diff, per destination (core/schema_history.py)
        document["schema_changes"] = run.schema_changes or {}
    return document


@dataclass(frozen=True)
class _Job:
    """Everything a delivery needs, fixed when the run finished: the background thread must
    not read settings or the store's address later, when they may have changed."""

    delivery_id: int
    channel: str
    target: str
    title: str
    document: dict
    settings: Settings
    max_attempts: int
    backoff_base_s: float
    attempts_done: int = 0  # by a process that died before it could finish them


class DeliveryService:
    """The process's deliveries: a pool of POOL_SIZE threads, created with the service."""

    def __init__(self, settings: Callable[[], Settings] = get_settings, max_attempts: int | None = None,
                 backoff_base_s: float | None = None, sleep: Callable[[float], None] = time.sleep):
        self._settings, self._sleep = settings, sleep
        self.max_attempts = max_attempts
        self.backoff_base_s = backoff_base_s
        self._pool = ThreadPoolExecutor(max_workers=POOL_SIZE, thread_name_prefix="tributary-deliveries")
        self._pending: set[Future] = set()
        self._lock = threading.Lock()

    # ------------------------------------------------------------ queueing

    def on_run_finished(self, event: events.RunFinished) -> list[Delivery]:
        return self.notify(event.run)

    def notify(self, run: Run) -> list[Delivery]:
        """Record a pending delivery per (watcher, event) this run triggers and queue the
        sending. Quick by design: it runs in the thread that finished the run. A (watcher,
        event) already delivered for this run is skipped, so calling it twice sends nothing
        twice."""
        if run.kind != "run" or run.status not in NOTIFYING_STATUSES:
            return []
        settings = self._settings()
        created: list[tuple[Delivery, Watcher]] = []
        with session_scope(settings.database_url) as session:
            watchers = session.exec(select(Watcher).where(Watcher.feed_id == run.feed_id).order_by(Watcher.id)).all()
            if not watchers:
                return []
            done = {(d.watcher_id, d.event) for d in session.exec(select(Delivery).where(Delivery.run_id == run.id))}
            for watcher in watchers:
                for event in events_for(run, watcher):
                    if (watcher.id, event) not in done:
                        delivery = Delivery(run_id=run.id, watcher_id=watcher.id, event=event, worker=worker_id())
                        session.add(delivery)
                        created.append((delivery, watcher))
            session.flush()
        for delivery, watcher in created:
            self._submit(self._job(delivery, watcher, run, settings))
        return [delivery for delivery, _ in created]

    def resume_left(self) -> list[int]:
        """Send the pending deliveries that a process of this host left when it died (killed
        while a receiver was slow or down, a restart during a backoff); their ids. Each is
        claimed with a conditional update first, so two processes starting at once do not both
        send it. A row from before deliveries named their process has no worker: it is taken
        too, since no running process can still be sending it."""
        settings = self._settings()
        me, jobs, ended = worker_id(), [], []
        with session_scope(settings.database_url) as session:
            left = session.exec(select(Delivery).where(Delivery.status == "pending")).all()
            for delivery in [d for d in left if d.worker is None or died(d.worker)]:
                owner = Delivery.worker.is_(None) if delivery.worker is None else Delivery.worker == delivery.worker
                claim = update(Delivery).where(Delivery.id == delivery.id, Delivery.status == "pending", owner)
                if session.execute(claim.values(worker=me)).rowcount != 1:
                    continue  # another process claimed it first
                watcher, run = session.get(Watcher, delivery.watcher_id), session.get(Run, delivery.run_id)
                if watcher is None or run is None:
                    gone = "its watcher was removed" if watcher is None else "its run was deleted"
                    delivery.status, delivery.error = "failed", f"not sent: {gone} while it was pending"
                    delivery.updated_at = utcnow()
                    session.add(delivery)
                    ended.append(delivery.id)
                    continue
                jobs.append(self._job(delivery, watcher, run, settings))
        for job in jobs:
            self._submit(job)
        return sorted([job.delivery_id for job in jobs] + ended)

    def flush(self, timeout_s: float = 60) -> bool:
        """Wait until every queued delivery has ended (delivered or failed). True if they all
        did within timeout_s; the ones left keep going in the background."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                pending = list(self._pending)
            remaining = deadline - time.monotonic()
            if not pending:
                return True
            if remaining <= 0:
                return False
            wait(pending, timeout=remaining)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False)

    def _job(self, delivery: Delivery, watcher: Watcher, run: Run, settings: Settings) -> _Job:
        # Read at each job, not at start: operators rarely tune them, tests do.
        attempts = self.max_attempts if self.max_attempts is not None else MAX_ATTEMPTS
        base = self.backoff_base_s if self.backoff_base_s is not None else BACKOFF_BASE_S
        return _Job(
            delivery_id=delivery.id, channel=watcher.channel, target=watcher.target,
            title=event_title(delivery.event, watcher.longer_than_minutes),
            document=document_for(run, delivery.event, settings.public_url), settings=settings,
            max_attempts=max(1, attempts), backoff_base_s=base, attempts_done=delivery.attempts,
        )

    def _submit(self, job: _Job) -> None:
        future = self._pool.submit(self._deliver, job)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._forget)

    def _forget(self, future: Future) -> None:
        with self._lock:
            self._pending.discard(future)

    # ------------------------------------------------------------ sending

    def _deliver(self, job: _Job) -> None:
        attempt = job.attempts_done
        try:
            if attempt >= job.max_attempts:
                _record(job, attempt, "failed", f"no attempt left after {attempt} by a process that stopped")
                return
            channel = get_channel(job.channel)
            for attempt in range(job.attempts_done + 1, job.max_attempts + 1):
                try:
                    channel.send(job.target, job.title, job.document, job.delivery_id, job.settings)
                except NotConfigured as exc:
                    _record(job, attempt, "failed", str(exc))
                    return
                except DeliveryError as exc:
                    last = attempt == job.max_attempts
                    _record(job, attempt, "failed" if last else "pending", f"attempt {attempt}: {exc}")
                    log.warning("delivery %s (%s) attempt %s failed: %s", job.delivery_id, job.channel, attempt, exc)
                    if not last:
                        self._sleep(backoff_s(job.backoff_base_s, attempt))
                    continue
                _record(job, attempt, "delivered", None)
                return
        except NotConfigured as exc:  # an unknown channel
            _record(job, attempt, "failed", str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug here must still leave a visible trace
            log.exception("delivery %s stopped unexpectedly", job.delivery_id)
            try:
                _record(job, attempt, "failed", f"delivery stopped unexpectedly: {type(exc).__name__}: {exc}")
            except Exception:  # noqa: BLE001 - the store itself is unreachable; the log has it
                pass


def _record(job: _Job, attempts: int, status: str, error: str | None) -> None:
    with session_scope(job.settings.database_url) as session:
        delivery = session.get(Delivery, job.delivery_id)
        if delivery is None:
            return
        delivery.attempts, delivery.status, delivery.error = attempts, status, error
        delivery.updated_at = utcnow()
        session.add(delivery)
