"""Watchers: tell people (email) or systems (webhook) about a feed's finished runs.

A watcher picks events among EVENTS and one channel. When a run finishes, the listener below
writes one Delivery row (pending) per triggered event and watcher, and hands the sending to a
small pool of background threads: the run has already ended and never waits for, or fails
because of, a notification. Each delivery is tried up to MAX_ATTEMPTS times with an
exponential backoff (BACKOFF_BASE_S, then twice that, ...); every attempt updates its row, so
the run page can show what was sent, what is still being tried and why something failed.

Which runs notify:
- succeeded / failed: the run's final status. A retry of a failed run is a run of its own,
  so each failed attempt notifies.
- no_records: a succeeded run whose destinations loaded no records.
- long_run: a succeeded or failed run that took longer than the watcher's N minutes
  (checked when the run ends, not while it is still running).
- A cancelled run notifies nothing: a person stopped it and already knows. (Runs that hit
  their time limit are failed, not cancelled, so they do notify.)

Deliveries are sent by threads of the process that finished the run, and each row names
that process (host:pid). Python waits for the pool at exit, so a CLI run still sends before it
ends. A process that is killed leaves its deliveries pending: the next start of the app on the
same host sends them (resume_left_deliveries), its attempts counted on from the row's. The
X-Tributary-Delivery header stays the same, so a receiver that got an attempt whose answer
was lost can recognise the repeat.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from sqlmodel import select, update

from core import events, notify_email, notify_webhook
from common.errors import NotFound
from storage.models import Delivery, Feed, Run, Watcher, utcnow
from common.settings import Settings, get_settings
from core.validation import raise_if
from common.process import died, worker_id
from storage.db import session_scope

log = logging.getLogger(__name__)

EVENTS = {
    "succeeded": "run succeeded",
    "failed": "run failed",
    "no_records": "run loaded no records",
    "long_run": "run took longer than N minutes",
}
CHANNELS = {"email": "Email", "webhook": "Webhook (HTTP POST of a JSON document)"}
NOTIFYING_STATUSES = ("succeeded", "failed")
TARGET_MAX = 500  # the column's size

# Module settings rather than app settings: operators rarely need to tune them, tests do.
MAX_ATTEMPTS = 4
BACKOFF_BASE_S = 1.0
POOL_SIZE = 4

_EMAIL = re.compile(r"^[^@\s,;<>\"]+@[^@\s,;<>\"]+$")
_pool = ThreadPoolExecutor(max_workers=POOL_SIZE, thread_name_prefix="tributary-watchers")
_pending: set[Future] = set()
_pending_lock = threading.Lock()


# ---------------------------------------------------------------- managing watchers


def event_title(event: str, longer_than_minutes: int | None = None) -> str:
    """The event as people read it: "run failed", "run took longer than 30 minutes"."""
    if event == "long_run" and longer_than_minutes:
        unit = "minute" if longer_than_minutes == 1 else "minutes"
        return f"run took longer than {longer_than_minutes} {unit}"
    return EVENTS.get(event, event)


def watcher_problems(events_: list[str], channel: str, target: str,
                     longer_than_minutes: int | None) -> list[tuple[str, str]]:
    problems = []
    if not events_:
        problems.append(("events", f"choose at least one: {', '.join(EVENTS.values())}"))
    for event in events_:
        if event not in EVENTS:
            problems.append(("events", f"unknown event {event!r} (choose from {', '.join(EVENTS)})"))
    if "long_run" in events_ and (
        isinstance(longer_than_minutes, bool) or not isinstance(longer_than_minutes, int) or longer_than_minutes < 1
    ):
        problems.append(("long run minutes", "a long-run watcher needs a whole number of minutes, at least 1"))
    if channel not in CHANNELS:
        problems.append(("channel", f"must be one of {', '.join(CHANNELS)} (got {channel!r})"))
    if not target:
        problems.append(("target", "is required: an email address or a webhook URL"))
    elif len(target) > TARGET_MAX:
        problems.append(("target", f"must be at most {TARGET_MAX} characters (got {len(target)})"))
    elif channel == "email" and not _EMAIL.match(target):
        problems.append(("target", f"{target!r} is not an email address (like ops@example.com)"))
    elif channel == "webhook":
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in target):
            problems.append(("target", "must be an http:// or https:// URL, like https://example.com/hooks/tributary"))
    return problems


def _feed_id(session, feed_name: str) -> int:
    feed = session.exec(select(Feed).where(Feed.name == feed_name)).first()
    if feed is None:
        raise NotFound(f"feed {feed_name!r} does not exist")
    return feed.id


def add_watcher(feed_name: str, events: list[str], channel: str, target: str,
                longer_than_minutes: int | None = None) -> Watcher:
    chosen = [events] if isinstance(events, str) else list(dict.fromkeys(events or []))
    target = (target or "").strip()
    raise_if(watcher_problems(chosen, channel, target, longer_than_minutes))
    with session_scope() as session:
        watcher = Watcher(
            feed_id=_feed_id(session, feed_name), events=chosen, channel=channel, target=target,
            # Kept only when it means something, so the watcher list never shows a stray threshold.
            longer_than_minutes=longer_than_minutes if "long_run" in chosen else None,
        )
        session.add(watcher)
        session.flush()
        return watcher


def list_watchers(feed_name: str) -> list[Watcher]:
    with session_scope() as session:
        feed_id = _feed_id(session, feed_name)
        return list(session.exec(select(Watcher).where(Watcher.feed_id == feed_id).order_by(Watcher.id)).all())


def remove_watcher(watcher_id: int) -> None:
    """Delete a watcher. Its past deliveries stay on their runs, as history."""
    with session_scope() as session:
        watcher = session.get(Watcher, watcher_id)
        if watcher is None:
            raise NotFound(f"watcher {watcher_id} does not exist")
        session.delete(watcher)


def delete_watchers_in(session, feed_id: int) -> int:
    """For deleting a feed, inside its transaction: a store may reuse the feed's id, and a
    new feed must not inherit the old one's watchers."""
    watchers = session.exec(select(Watcher).where(Watcher.feed_id == feed_id)).all()
    for watcher in watchers:
        session.delete(watcher)
    return len(watchers)


def deliveries_for_run(run_id: str) -> list[Delivery]:
    with session_scope() as session:
        return list(session.exec(select(Delivery).where(Delivery.run_id == run_id).order_by(Delivery.id)).all())


def delivery_views(run_id: str) -> list[dict]:
    """A run's deliveries as the UI and the CLI's --json show them, with their watcher's
    channel and target (None once the watcher was removed)."""
    deliveries = deliveries_for_run(run_id)
    with session_scope() as session:
        ids = {d.watcher_id for d in deliveries}
        watchers = {w.id: w for w in session.exec(select(Watcher).where(Watcher.id.in_(ids))).all()} if ids else {}
    views = []
    for delivery in deliveries:
        watcher = watchers.get(delivery.watcher_id)
        views.append({
            "id": delivery.id, "watcher_id": delivery.watcher_id, "event": delivery.event,
            "title": event_title(delivery.event, watcher.longer_than_minutes if watcher else None),
            "channel": watcher.channel if watcher else None, "target": watcher.target if watcher else None,
            "status": delivery.status, "attempts": delivery.attempts, "error": delivery.error,
            "updated_at": delivery.updated_at.isoformat() if delivery.updated_at else None,
        })
    return views


# ---------------------------------------------------------------- which events a run triggers


def _duration_s(run: Run) -> float | None:
    started, finished = run.started_at, run.finished_at
    if started is None or finished is None:
        return None
    if (started.tzinfo is None) != (finished.tzinfo is None):
        # Both are UTC; a store may hand one back without its zone.
        started, finished = started.replace(tzinfo=None), finished.replace(tzinfo=None)
    return (finished - started).total_seconds()


def events_for(run: Run, watcher: Watcher) -> list[str]:
    """The watcher's events that this finished run triggers (see the module docstring)."""
    if run.kind != "run" or run.status not in NOTIFYING_STATUSES:
        return []
    happened = [run.status]
    if run.status == "succeeded" and not run.records_loaded:
        happened.append("no_records")
    duration = _duration_s(run)
    if watcher.longer_than_minutes and duration is not None and duration > watcher.longer_than_minutes * 60:
        happened.append("long_run")
    return [event for event in EVENTS if event in happened and event in watcher.events]


def run_link(run_id: str, public_url: str) -> str:
    return f"{public_url.rstrip('/')}/runs?run={quote(run_id)}"


def document_for(run: Run, event: str, public_url: str) -> dict:
    """The JSON a webhook receives; the email says the same."""
    from core.runs import run_view  # imported here: core.runs registers this module's listener

    view = run_view(run)
    return {
        "event": event, "feed": run.feed_name, "run_id": run.id, "status": run.status,
        "records_written": run.records_written, "records_loaded": run.records_loaded, "error": run.error,
        "started_at": view["started_at"], "finished_at": view["finished_at"], "duration_s": view["duration_s"],
        "link": run_link(run.id, public_url),
    }


# ---------------------------------------------------------------- delivering


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


@events.on_run_finished
def notify_watchers(run: Run) -> list[Delivery]:
    """Record a pending delivery per (watcher, event) this run triggers and queue the sending.
    Quick by design: it runs in the thread that finished the run. A (watcher, event) already
    delivered for this run is skipped, so calling it twice sends nothing twice."""
    if run.kind != "run" or run.status not in NOTIFYING_STATUSES:
        return []
    settings = get_settings()
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
        _submit(_job(delivery, watcher, run, settings))
    return [delivery for delivery, _ in created]


def _job(delivery: Delivery, watcher: Watcher, run: Run, settings: Settings) -> _Job:
    return _Job(
        delivery_id=delivery.id, channel=watcher.channel, target=watcher.target,
        title=event_title(delivery.event, watcher.longer_than_minutes),
        document=document_for(run, delivery.event, settings.public_url), settings=settings,
        max_attempts=max(1, MAX_ATTEMPTS), backoff_base_s=BACKOFF_BASE_S, attempts_done=delivery.attempts,
    )


def resume_left_deliveries() -> list[int]:
    """Send the pending deliveries that a process of this host left when it died (killed
    while a receiver was slow or down, a restart during a backoff); their ids. Each is claimed
    with a conditional update first, so two processes starting at once do not both send it.
    Called at the app's start-up. A row from before deliveries named their process has no
    worker: it is taken too, since no running process can still be sending it."""
    settings = get_settings()
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
            jobs.append(_job(delivery, watcher, run, settings))
    for job in jobs:
        _submit(job)
    return sorted([job.delivery_id for job in jobs] + ended)


def _submit(job: _Job) -> None:
    future = _pool.submit(_deliver, job)
    with _pending_lock:
        _pending.add(future)
    future.add_done_callback(_forget)


def _forget(future: Future) -> None:
    with _pending_lock:
        _pending.discard(future)


def flush(timeout_s: float = 60) -> bool:
    """Wait until every queued delivery has ended (delivered or failed). True if they all did
    within timeout_s; the ones left keep going in the background."""
    deadline = time.monotonic() + timeout_s
    while True:
        with _pending_lock:
            pending = list(_pending)
        remaining = deadline - time.monotonic()
        if not pending:
            return True
        if remaining <= 0:
            return False
        wait(pending, timeout=remaining)


def backoff_s(base_s: float, attempt: int) -> float:
    """Wait after failed attempt number `attempt` (1-based) before the next one."""
    return base_s * 2 ** (attempt - 1)


def _send(job: _Job) -> None:
    if job.channel == "webhook":
        notify_webhook.send(job.target, job.document, job.delivery_id)
    elif job.channel == "email":
        subject, body = notify_email.compose(job.document, job.title)
        notify_email.send(job.settings, job.target, subject, body)
    else:
        raise notify_email.NotConfigured(f"unknown channel {job.channel!r}")


def _record(job: _Job, attempts: int, status: str, error: str | None) -> None:
    with session_scope(job.settings.database_url) as session:
        delivery = session.get(Delivery, job.delivery_id)
        if delivery is None:
            return
        delivery.attempts, delivery.status, delivery.error = attempts, status, error
        delivery.updated_at = utcnow()
        session.add(delivery)


def _deliver(job: _Job) -> None:
    attempt = job.attempts_done
    try:
        if attempt >= job.max_attempts:
            _record(job, attempt, "failed", f"no attempt left after {attempt} by a process that stopped")
            return
        for attempt in range(job.attempts_done + 1, job.max_attempts + 1):
            try:
                _send(job)
            except notify_email.NotConfigured as exc:
                _record(job, attempt, "failed", str(exc))
                return
            except (notify_webhook.WebhookError, notify_email.EmailError) as exc:
                last = attempt == job.max_attempts
                _record(job, attempt, "failed" if last else "pending", f"attempt {attempt}: {exc}")
                log.warning("delivery %s (%s) attempt %s failed: %s", job.delivery_id, job.channel, attempt, exc)
                if not last:
                    time.sleep(backoff_s(job.backoff_base_s, attempt))
                continue
            _record(job, attempt, "delivered", None)
            return
    except Exception as exc:  # noqa: BLE001 - a bug here must still leave a visible trace
        log.exception("delivery %s stopped unexpectedly", job.delivery_id)
        try:
            _record(job, attempt, "failed", f"delivery stopped unexpectedly: {type(exc).__name__}: {exc}")
        except Exception:  # noqa: BLE001 - the store itself is unreachable; the log has it
            pass
