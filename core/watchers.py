"""Watchers: who hears about a feed's finished runs, and of which events.

A watcher picks events among EVENTS and one channel (core/notify/). Sending is the delivery
service's (core/services/deliveries.py); this module keeps the watchers, decides which events
a finished run triggers, and reads the deliveries back for the run page and the CLI.

Which runs notify:
- succeeded / failed: the run's final status. A retry of a failed run is a run of its own,
  so each failed attempt notifies.
- no_records: a succeeded run whose destinations loaded no records.
- long_run: a succeeded or failed run that took longer than the watcher's N minutes
  (checked when the run ends, not while it is still running).
- schema_changed: a succeeded run that added or widened a column of an existing table, or
  dropped a new field (core/schema_history.py alters_table); the document carries the diff.
- A cancelled run notifies nothing: a person stopped it and already knows. (Runs that hit
  their time limit are failed, not cancelled, so they do notify.)
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from sqlmodel import select

from common.errors import NotFound
from core import notify
from core.schema_history import alters_table
from core.validation import raise_if
from storage.db import session_scope
from storage.lookups import feed_by_name
from storage.models import Delivery, Run, Watcher

EVENTS = {
    "succeeded": "run succeeded",
    "failed": "run failed",
    "no_records": "run loaded no records",
    "long_run": "run took longer than N minutes",
    "schema_changed": "schema changed",
}
CHANNELS = {name: channel.label for name, channel in notify.CHANNELS.items()}
NOTIFYING_STATUSES = ("succeeded", "failed")
TARGET_MAX = 500  # the column's size

_EMAIL = re.compile(r"^[^@\s,;<>\"]+@[^@\s,;<>\"]+$")


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
    return feed_by_name(session, feed_name).id


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
    if run.status == "succeeded" and alters_table(run.schema_changes):
        happened.append("schema_changed")
    duration = _duration_s(run)
    if watcher.longer_than_minutes and duration is not None and duration > watcher.longer_than_minutes * 60:
        happened.append("long_run")
    return [event for event in EVENTS if event in happened and event in watcher.events]
