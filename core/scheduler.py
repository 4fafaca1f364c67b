"""Scheduled and run-once feeds: when each fires, and starting exactly one run per fire.

Each scheduled feed has a row in `schedules` holding its next fire time, computed with the
APScheduler trigger of its schedule (core.triggers). `tick(now)` fires every due row: it
claims the fire with a conditional update (only if next_fire_at still holds that time) and
moves next_fire_at past `now`. Hence:
  - two app processes on one store start one run per fire (only one update matches);
  - fires missed while the app was down are coalesced into one, run at start-up if the newest
    missed fire is within the grace time, skipped (and recorded) otherwise;
  - the clock is a parameter, so tests drive time without sleeping.
APScheduler's BackgroundScheduler calls tick() every second in the app process.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlmodel import select, update

from core import dispatch, triggers
from common.errors import Conflict
from storage.models import Feed, ScheduleSlot, utcnow
from common.settings import get_settings
from storage.db import session_scope

if TYPE_CHECKING:
    from apscheduler.schedulers.background import BackgroundScheduler

log = logging.getLogger(__name__)
TICK_S = 1.0


def _schedulable(feed: Feed) -> bool:
    return not feed.paused and (feed.trigger or {}).get("type") in ("schedule", "once")


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands datetimes back without a zone; the store always writes UTC.
    if value is not None and value.tzinfo is None:
        from datetime import timezone

        return value.replace(tzinfo=timezone.utc)
    return value


def sync_feed(feed_name: str, now: datetime | None = None) -> datetime | None:
    """Recompute a feed's next fire after it was created, edited, paused or resumed; return it."""
    now = now or utcnow()
    with session_scope() as session:
        feed = session.exec(select(Feed).where(Feed.name == feed_name)).first()
        if feed is None:
            return None
        slot = session.get(ScheduleSlot, feed.id)
        if not _schedulable(feed):
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
            if feed_id not in feeds or not _schedulable(feeds[feed_id]):
                session.delete(slot)
        for feed_id, feed in feeds.items():
            if _schedulable(feed) and feed_id not in slots:
                session.add(ScheduleSlot(feed_id=feed_id, next_fire_at=triggers.next_fire(feed.trigger, after=now),
                                         updated_at=now))


def next_fire_of(feed_id: int) -> datetime | None:
    with session_scope() as session:
        slot = session.get(ScheduleSlot, feed_id)
        return _aware(slot.next_fire_at) if slot else None


def _claim(feed_id: int, due: datetime, following: datetime | None, outcome: str, now: datetime) -> bool:
    with session_scope() as session:
        result = session.execute(
            update(ScheduleSlot)
            .where(ScheduleSlot.feed_id == feed_id, ScheduleSlot.next_fire_at == due)
            .values(next_fire_at=following, last_fire_at=due, last_outcome=outcome, updated_at=now)
        )
        return result.rowcount == 1


def _record(feed_id: int, outcome: str) -> None:
    with session_scope() as session:
        slot = session.get(ScheduleSlot, feed_id)
        if slot is not None:
            slot.last_outcome = outcome[:200]
            session.add(slot)


def tick(now: datetime | None = None, grace_s: int | None = None) -> list[tuple[str, str]]:
    """Fire every due schedule once; return (feed name, outcome) for each fire handled here."""
    from core.runs import create_run

    now = now or utcnow()
    grace = timedelta(seconds=get_settings().misfire_grace_s if grace_s is None else grace_s)
    with session_scope() as session:
        due_rows = session.exec(
            select(ScheduleSlot, Feed).join(Feed, Feed.id == ScheduleSlot.feed_id).where(ScheduleSlot.next_fire_at <= now)
        ).all()
    handled = []
    for slot, feed in due_rows:
        due = slot.next_fire_at  # as stored: the claim compares against exactly this value
        following = triggers.next_fire(feed.trigger, after=now)  # coalesce: skip every missed fire
        late = now - triggers.latest_fire(feed.trigger, _aware(due), now)
        outcome = "missed: the app was down past the grace time" if late > grace else "fired"
        if not _claim(feed.id, due, following, outcome, now):
            continue  # another process fired it
        if late > grace:
            handled.append((feed.name, outcome))
            continue
        try:
            run = create_run(feed.name, trigger="schedule", scheduled_for=_aware(due))
        except Conflict as exc:
            outcome = f"skipped: {exc}"
        else:
            outcome = f"started run {run.id}"
            dispatch.submit(run.id)
        _record(feed.id, outcome)
        handled.append((feed.name, outcome))
    return handled


_scheduler: BackgroundScheduler | None = None


def start() -> BackgroundScheduler:
    """Start the scheduler and the run queue once in this process (the st.App lifespan)."""
    global _scheduler
    if _scheduler is None:
        from core import retries  # noqa: F401  (registers the retry listener)

        from apscheduler.schedulers.background import BackgroundScheduler  # only the app's process runs one

        dispatch.start()
        rebuild()
        _scheduler = BackgroundScheduler(timezone="UTC")
        _scheduler.add_job(_safe_tick, "interval", seconds=TICK_S, id="tributary-tick", coalesce=True,
                           max_instances=1, misfire_grace_time=None)
        _scheduler.start()
    return _scheduler


def _safe_tick() -> None:
    try:
        tick()
    except Exception:  # noqa: BLE001 - the next tick tries again
        log.exception("scheduler tick failed")


def stop() -> None:
    global _scheduler
    if _scheduler is not None:
        _scheduler.shutdown(wait=False)
        _scheduler = None
    dispatch.stop()
