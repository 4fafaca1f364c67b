"""Each scheduled or run-once feed's next fire time, kept in the store (`schedules` table).

A feed's slot is recomputed whenever it is created, edited, paused or resumed, with the
APScheduler trigger of its schedule (core.triggers). Firing the slots is the scheduler's
(core/scheduler.py); this module only keeps them, so that core/feeds.py can keep them current
without knowing runs.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import select, update

from common.clock import aware
from core import triggers
from storage.db import session_scope
from storage.lookups import find_feed
from storage.models import Feed, ScheduleSlot, utcnow


def schedulable(feed: Feed) -> bool:
    return not feed.paused and (feed.trigger or {}).get("type") in ("schedule", "once")


def sync_feed(feed_name: str, now: datetime | None = None) -> datetime | None:
    """Recompute a feed's next fire after it was created, edited, paused or resumed; return it."""
    now = now or utcnow()
    with session_scope() as session:
        feed = find_feed(session, feed_name)
        if feed is None:
            return None
        slot = session.get(ScheduleSlot, feed.id)
        if not schedulable(feed):
            if slot is not None:
                session.delete(slot)
            return None
        next_fire = triggers.next_fire(feed.trigger, after=now)
        if slot is None:
            slot = ScheduleSlot(feed_id=feed.id)
        slot.next_fire_at, slot.updated_at = next_fire, now
        session.add(slot)
        return next_fire


def forget_feed(feed_id: int) -> None:
    with session_scope() as session:
        slot = session.get(ScheduleSlot, feed_id)
        if slot is not None:
            session.delete(slot)


def rebuild(now: datetime | None = None) -> None:
    """At start-up: make the slots match the feeds. A slot whose fire passed while the app
    was down keeps it, so the next tick runs it once (or skips it past the grace time)."""
    now = now or utcnow()
    with session_scope() as session:
        feeds = {f.id: f for f in session.exec(select(Feed)).all()}
        slots = {s.feed_id: s for s in session.exec(select(ScheduleSlot)).all()}
        for feed_id, slot in slots.items():
            if feed_id not in feeds or not schedulable(feeds[feed_id]):
                session.delete(slot)
        for feed_id, feed in feeds.items():
            if schedulable(feed) and feed_id not in slots:
                session.add(ScheduleSlot(feed_id=feed_id, next_fire_at=triggers.next_fire(feed.trigger, after=now),
                                         updated_at=now))


def next_fire_of(feed_id: int) -> datetime | None:
    with session_scope() as session:
        slot = session.get(ScheduleSlot, feed_id)
        return aware(slot.next_fire_at) if slot else None


def claim(feed_id: int, due: datetime, following: datetime | None, outcome: str, now: datetime) -> bool:
    with session_scope() as session:
        result = session.execute(
            update(ScheduleSlot)
            .where(ScheduleSlot.feed_id == feed_id, ScheduleSlot.next_fire_at == due)
            .values(next_fire_at=following, last_fire_at=due, last_outcome=outcome, updated_at=now)
        )
        return result.rowcount == 1


def record(feed_id: int, outcome: str) -> None:
    with session_scope() as session:
        slot = session.get(ScheduleSlot, feed_id)
        if slot is not None:
            slot.last_outcome = outcome[:200]
            session.add(slot)
