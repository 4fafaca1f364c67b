"""The next fire times of any schedule: a cron expression, a basic-schedule spec or an
APScheduler trigger (the editor's preview, and the scheduler's next fire)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone as _dt_timezone, tzinfo

from apscheduler.triggers.base import BaseTrigger

from .basic import build_trigger
from .cron import to_trigger
from .quartz import QuartzSchedule


def next_fire_times(
    source: str | QuartzSchedule | Mapping | BaseTrigger,
    n: int = 5,
    start: datetime | None = None,
    timezone: str | tzinfo = "UTC",
) -> list[datetime]:
    """The next `n` fire times strictly after `start` (default: now), as aware datetimes.

    `source` is a cron expression (read in `timezone`), a basic-schedule spec
    dict (see basic.py) or any APScheduler 3.x trigger. Fewer than `n` come
    back when the schedule ends (a year list that runs out, a one-off time).
    """
    if isinstance(source, BaseTrigger):
        trigger = source
    elif isinstance(source, Mapping):
        trigger = build_trigger(source)
    else:
        trigger = to_trigger(source, timezone)
    if start is None:
        start = datetime.now(_dt_timezone.utc)
    if start.tzinfo is None or start.utcoffset() is None:
        raise ValueError("start must be timezone-aware, e.g. datetime(..., tzinfo=timezone.utc)")
    if n < 0:
        raise ValueError("n must be 0 or more")

    times: list[datetime] = []
    previous, now = None, start
    while len(times) < n:
        fire_time = trigger.get_next_fire_time(previous, now)
        if fire_time is None:
            break
        # APScheduler treats `now` as inclusive, and a DateTrigger returns its
        # date even when past; keeping only later times makes the list start
        # strictly after `start`, as Quartz's getFireTimeAfter does.
        if fire_time > start:
            # CronTrigger hands back a wall time a DST jump skipped as e.g.
            # 01:30+00:00 in London; going through UTC shows the real 02:30+01:00.
            times.append(fire_time.astimezone(_dt_timezone.utc).astimezone(fire_time.tzinfo))
        elif previous is not None:
            break  # a trigger that does not move forward; never loop on it
        previous = now = fire_time
    return times
