"""Basic (non-cron) schedules and the JSON spec form every schedule is stored in.

Spec dicts, as stored in JSON:
  {"kind": "weekly", "days": ["mon", "wed"], "time": "09:30", "timezone": "Europe/London"}
  {"kind": "interval", "every": 15, "unit": "minutes"}          # or "hours"
  {"kind": "cron", "expression": "0 0 12 ? * MON-FRI", "timezone": "UTC"}
  {"kind": "once", "at": "2026-12-01T09:00:00+00:00"}
"timezone" is optional everywhere (default "UTC"); for "once" it only gives a
naive "at" its zone. validate() lists every problem as (field, message) with
field a key of the spec; build_trigger() raises ScheduleError on the first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone as _dt_timezone, tzinfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from . import cron
from .errors import ScheduleError
from .timezones import resolve_timezone

KINDS = ("weekly", "interval", "cron", "once")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_DAY_ALIASES = {**{d: d for d in DAYS}, **{n.lower(): d for n, d in zip(_DAY_NAMES, DAYS)}}
# Upper bounds: a day in minutes, a week in hours. Longer gaps read better as
# a weekly or cron schedule.
INTERVAL_LIMITS = {"minutes": 1440, "hours": 168}
# Intervals count from a fixed instant so they land on round clock times
# (every 15 minutes -> :00, :15, :30, :45 UTC) and the preview shown when the
# schedule is saved is what the scheduler later does, whenever it starts.
INTERVAL_ANCHOR = datetime(2000, 1, 1, tzinfo=_dt_timezone.utc)
_TIME = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])")


# -- the three basic trigger kinds -------------------------------------------

def weekly_trigger(days: Sequence[str], time: str, timezone: str | tzinfo = "UTC") -> CronTrigger:
    """Fire at `time` ("HH:MM", wall clock in `timezone`) on each of `days`."""
    day_list = parse_days(days)
    hour, minute = parse_time(time)
    return CronTrigger(
        day_of_week=",".join(day_list), hour=hour, minute=minute, second=0,
        timezone=resolve_timezone(timezone),
    )


def interval_trigger(every: int, unit: str = "minutes", timezone: str | tzinfo = "UTC") -> IntervalTrigger:
    """Fire every `every` minutes or hours, counted from INTERVAL_ANCHOR."""
    every, unit = parse_interval(every, unit)
    return IntervalTrigger(
        **{unit: every}, start_date=INTERVAL_ANCHOR, timezone=resolve_timezone(timezone)
    )


def once_trigger(at: str | datetime, timezone: str | tzinfo | None = None) -> DateTrigger:
    """Fire once at `at` (aware, or naive plus `timezone`)."""
    run_at = parse_at(at, timezone)
    return DateTrigger(run_date=run_at, timezone=run_at.tzinfo)


# -- field parsers: each returns the clean value or raises ScheduleError ------

def parse_days(days) -> tuple[str, ...]:
    if isinstance(days, str):
        days = [d for d in days.split(",") if d.strip()]
    if not isinstance(days, (list, tuple, set, frozenset)) or not days:
        raise ScheduleError("days", "choose at least one day of the week")
    chosen = set()
    for day in days:
        key = day.strip().lower() if isinstance(day, str) else None
        if key not in _DAY_ALIASES:
            raise ScheduleError("days", f"{day!r} is not a day; use mon, tue, wed, thu, fri, sat or sun")
        chosen.add(_DAY_ALIASES[key])
    return tuple(d for d in DAYS if d in chosen)


def parse_time(text) -> tuple[int, int]:
    match = _TIME.fullmatch(text.strip()) if isinstance(text, str) else None
    if not match:
        raise ScheduleError("time", f"{text!r} is not a time of day; use 24-hour HH:MM, e.g. 09:30")
    return int(match.group(1)), int(match.group(2))


def parse_interval(every, unit) -> tuple[int, str]:
    unit = unit.strip().lower() if isinstance(unit, str) else unit
    unit = {"minute": "minutes", "hour": "hours"}.get(unit, unit)
    if unit not in INTERVAL_LIMITS:
        raise ScheduleError("unit", f"{unit!r} is not a unit; use minutes or hours")
    limit = INTERVAL_LIMITS[unit]
    # bool is an int subclass; True minutes is not a schedule anyone meant.
    if isinstance(every, bool) or not isinstance(every, int) or not 1 <= every <= limit:
        raise ScheduleError("every", f"every {every!r} {unit}: use a whole number from 1 to {limit}")
    return every, unit


def parse_at(at, timezone: str | tzinfo | None = None) -> datetime:
    if isinstance(at, str):
        try:
            at = datetime.fromisoformat(at.strip())
        except ValueError:
            raise ScheduleError("at", f"{at!r} is not a date and time; use ISO 8601, e.g. 2026-12-01T09:00:00+00:00") from None
    if not isinstance(at, datetime):
        raise ScheduleError("at", "give the date and time to run at, e.g. 2026-12-01T09:00:00+00:00")
    if at.tzinfo is None or at.utcoffset() is None:
        if timezone is None:
            raise ScheduleError("at", "needs a UTC offset (e.g. 2026-12-01T09:00:00+00:00) or a timezone")
        at = at.replace(tzinfo=resolve_timezone(timezone))
    return at


# -- the spec dict ------------------------------------------------------------

def validate(spec) -> list[tuple[str, str]]:
    """Every problem with a spec as (field, message); empty when it is valid."""
    return _parse(spec)[1]


def normalize(spec) -> dict:
    """The canonical JSON-ready form of a valid spec (unknown keys dropped,
    days ordered, time as HH:MM, "at" as ISO 8601). Raises ScheduleError."""
    clean, errors = _parse(spec)
    if errors:
        raise ScheduleError(*errors[0])
    return clean


def build_trigger(spec) -> BaseTrigger:
    """The APScheduler 3.x trigger for a spec. Raises ScheduleError."""
    clean = normalize(spec)
    kind = clean["kind"]
    if kind == "weekly":
        return weekly_trigger(clean["days"], clean["time"], clean["timezone"])
    if kind == "interval":
        return interval_trigger(clean["every"], clean["unit"], clean["timezone"])
    if kind == "cron":
        return cron.to_trigger(clean["expression"], clean["timezone"])
    return once_trigger(clean["at"])


def describe(spec) -> str:
    """A sentence for a spec, e.g. "Every Monday and Friday at 09:30 (Europe/London)"."""
    clean = normalize(spec)
    kind = clean["kind"]
    if kind == "weekly":
        return f"{_describe_days(clean['days'])} at {clean['time']} ({clean['timezone']})"
    if kind == "interval":
        every, unit = clean["every"], clean["unit"]
        return f"Every {unit[:-1]}" if every == 1 else f"Every {every} {unit}"
    if kind == "cron":
        return cron.describe(clean["expression"], clean["timezone"])
    at = parse_at(clean["at"])
    return f"Once, at {at:%Y-%m-%d %H:%M} ({clean.get('timezone') or at.strftime('%Z')})"


def _describe_days(days: Sequence[str]) -> str:
    if len(days) == 7:
        return "Every day"
    if tuple(days) == DAYS[:5]:
        return "Every weekday (Monday to Friday)"
    names = [_DAY_NAMES[DAYS.index(d)] for d in days]
    joined = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"Every {joined}"


def _parse(spec) -> tuple[dict, list[tuple[str, str]]]:
    if not isinstance(spec, Mapping):
        return {}, [("kind", "a schedule must be a dict with a 'kind'")]
    kind = spec.get("kind")
    if kind not in KINDS:
        return {}, [("kind", f"{kind!r} is not a schedule kind; use one of {', '.join(KINDS)}")]
    clean: dict = {"kind": kind}
    errors: list[tuple[str, str]] = []

    def check(parse, *args):
        try:
            return parse(*args)
        except ScheduleError as error:
            errors.append((error.field, error.message))
            return None

    tz_name = spec.get("timezone")
    tz = check(resolve_timezone, tz_name if tz_name is not None else "UTC")
    if kind != "once":
        clean["timezone"] = tz_name.strip() if isinstance(tz_name, str) and tz else "UTC"
    if kind == "weekly":
        clean["days"] = list(check(parse_days, spec.get("days")) or [])
        hm = check(parse_time, spec.get("time"))
        clean["time"] = f"{hm[0]:02d}:{hm[1]:02d}" if hm else None
    elif kind == "interval":
        parsed = check(parse_interval, spec.get("every"), spec.get("unit", "minutes"))
        clean["every"], clean["unit"] = parsed or (None, None)
    elif kind == "cron":
        expression = spec.get("expression")
        try:
            cron.parse_quartz(expression)
        except ScheduleError as error:
            # The cron field is inside the message ("day of week: 8 is ...");
            # the spec field is the expression input.
            errors.append(("expression", str(error)))
        clean["expression"] = expression.strip() if isinstance(expression, str) else expression
    else:
        at = check(parse_at, spec.get("at"), tz_name if tz else None)
        clean["at"] = at.isoformat() if at else None
        if tz_name is not None and tz:
            clean["timezone"] = tz_name
    # Report in the order a form shows the inputs, whatever order they were checked in.
    errors.sort(key=lambda error: _FIELD_ORDER.index(error[0]) if error[0] in _FIELD_ORDER else 99)
    return clean, errors


_FIELD_ORDER = ["kind", "days", "time", "every", "unit", "expression", "at", "timezone"]
