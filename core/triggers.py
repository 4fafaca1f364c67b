"""A feed's trigger: what starts its runs.

Stored on the feed as JSON:
    {"type": "manual"}                                   Run now only
    {"type": "schedule", "schedule": {...}}              a basic or advanced (cron) schedule
    {"type": "once", "schedule": {"kind": "once", "at": "2026-12-01T09:00:00+00:00"}}
    {"type": "webhook"}                                  POST /api/feeds/{name}/trigger
The schedule dicts are those of core.schedules (weekly, interval, cron, once).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from apscheduler.triggers.base import BaseTrigger

from core import schedules

_EPSILON = timedelta(microseconds=1)
TRIGGER_TYPES = {"manual": "Manual", "schedule": "Schedule", "once": "Run once", "webhook": "Webhook"}


def trigger_problems(trigger: dict) -> list[tuple[str, str]]:
    kind = (trigger or {}).get("type", "manual")
    if kind not in TRIGGER_TYPES:
        return [("trigger", f"must be one of {', '.join(TRIGGER_TYPES)} (got {kind!r})")]
    if kind not in ("schedule", "once"):
        return []
    spec = trigger.get("schedule")
    if not isinstance(spec, dict):
        return [("schedule", "is required for this trigger")]
    if kind == "once" and spec.get("kind") != "once":
        return [("schedule", "a run-once trigger needs a date and time")]
    if kind == "schedule" and spec.get("kind") == "once":
        return [("schedule", "use the run-once trigger for a single date and time")]
    return [(field, message) for field, message in schedules.validate(spec)]


def build(trigger: dict) -> BaseTrigger | None:
    """The APScheduler trigger that computes fire times, or None for manual/webhook feeds."""
    if (trigger or {}).get("type") not in ("schedule", "once"):
        return None
    return schedules.build_trigger(trigger["schedule"])


def next_fire(trigger: dict, after: datetime, previous: datetime | None = None) -> datetime | None:
    """The first fire time strictly after `after` (None when there is none)."""
    built = build(trigger)
    if built is None:
        return None
    fire = built.get_next_fire_time(previous, after)
    # APScheduler may return `after` itself when it is a fire time; the next one is wanted.
    while fire is not None and fire <= after:
        fire = built.get_next_fire_time(fire, fire + _EPSILON)
    return fire


def latest_fire(trigger: dict, first: datetime, now: datetime, limit: int = 100_000) -> datetime:
    """The newest fire time in [first, now], walking from `first` (a fire time itself). Used to
    judge coalesced missed fires by the most recent one, as APScheduler's grace time does."""
    built = build(trigger)
    latest = first
    for _ in range(limit):
        following = built.get_next_fire_time(latest, latest + _EPSILON) if built else None
        if following is None or following > now:
            break
        latest = following
    return latest


def describe(trigger: dict) -> str:
    kind = (trigger or {}).get("type", "manual")
    if kind == "manual":
        return "Manual (Run now)"
    if kind == "webhook":
        return "Webhook"
    return schedules.describe_spec(trigger["schedule"])

