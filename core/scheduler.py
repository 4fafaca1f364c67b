"""Scheduled and run-once feeds: starting exactly one run per fire.

`tick(now)` fires every due slot (core/schedule_slots.py): it claims the fire with a
conditional update (only if next_fire_at still holds that time) and moves next_fire_at past
`now`. Hence:
  - two app processes on one store start one run per fire (only one update matches);
  - fires missed while the app was down are coalesced into one, run at start-up if the newest
    missed fire is within the grace time, skipped (and recorded) otherwise;
  - the clock is a parameter, so tests drive time without sleeping.
SchedulerService calls tick() every second in the app process (core/bootstrap.py).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlmodel import select

from common.clock import aware
from common.errors import Conflict
from common.settings import get_settings
from core import triggers
from core.runs import create_run
from core.schedule_slots import claim, rebuild, record
from core.services.loop import LoopService
from storage.db import session_scope
from storage.models import Feed, ScheduleSlot, utcnow

log = logging.getLogger(__name__)
TICK_S = 1.0


def tick(now: datetime | None = None, grace_s: int | None = None) -> list[tuple[str, str]]:
    """Fire every due schedule once; return (feed name, outcome) for each fire handled here."""
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
        late = now - triggers.latest_fire(feed.trigger, aware(due), now)
        outcome = "missed: the app was down past the grace time" if late > grace else "fired"
        if not claim(feed.id, due, following, outcome, now):
            continue  # another process fired it
        if late > grace:
            handled.append((feed.name, outcome))
            continue
        try:
            run = create_run(feed.name, trigger="schedule", scheduled_for=aware(due))
        except Conflict as exc:
            outcome = f"skipped: {exc}"
        else:
            outcome = f"started run {run.id}"
        record(feed.id, outcome)
        handled.append((feed.name, outcome))
    return handled


class SchedulerService(LoopService):
    """Fires the due schedules once a second; at start, makes the slots match the feeds."""

    name = "scheduler"

    def __init__(self, interval_s: float = TICK_S):
        super().__init__(interval_s)

    def on_start(self) -> None:
        rebuild()

    def run_once(self) -> None:
        tick()
