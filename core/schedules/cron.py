"""Quartz / Unix cron expressions as APScheduler 3.x triggers.

  parse_quartz(expr)          -> QuartzSchedule (validated; ScheduleError otherwise)
  to_trigger(expr, timezone)  -> BaseTrigger that fires exactly when Quartz would
  describe(expr)              -> "At 10:15, on the last Friday of the month"
  next_fire_times(expr|trigger|spec, n, start) -> [aware datetime, ...]

Each field is expanded to explicit values by our parser rather than handed to
CronTrigger as text, because CronTrigger reads several things differently:
weekday numbers (0 = Monday there, 1 = Sunday in Quartz), "?" (unknown to it),
"mon#2" (silently every Monday) and open steps like "5/15".

Times are wall-clock times in the trigger's time zone. Across DST changes the
triggers behave as APScheduler's CronTrigger does (tests pin this): a time a
spring-forward jump skips fires once, shifted by the jump (01:30 -> 02:30 BST);
a time in the repeated hour of a fall-back fires at both occurrences.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import tzinfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from cron_descriptor import ExpressionDescriptor, FormatError, Options

from .errors import ScheduleError
from .month_day import MonthDayTrigger
from .quartz import QuartzSchedule, day_never_occurs, parse_quartz
from .timezones import resolve_timezone

__all__ = ["QuartzSchedule", "ScheduleError", "describe", "parse_quartz", "to_trigger"]

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # APScheduler's names, 0 = Monday
_ORDINALS = ("1st", "2nd", "3rd", "4th", "5th")


def to_trigger(expr: str | QuartzSchedule, timezone: str | tzinfo = "UTC") -> BaseTrigger:
    """An APScheduler trigger firing at the times the expression means, in `timezone`."""
    schedule = expr if isinstance(expr, QuartzSchedule) else parse_quartz(expr)
    tz = resolve_timezone(timezone)
    if schedule.days_or:
        if day_never_occurs(schedule.day_of_month, schedule.months):
            # "0 12 30 2 MON": only the Mondays can fire. A CronTrigger for
            # Feb 30 would search up to year 9999 on every call to say so.
            return _day_of_week_trigger(schedule, tz)
        # Unix form with both day fields restricted: cron fires on either,
        # while a single CronTrigger would require both.
        return OrTrigger([_day_of_month_trigger(schedule, tz), _day_of_week_trigger(schedule, tz)])
    # Otherwise at most one day field is restricted (Quartz needs the other to be '?').
    if schedule.day_of_month.restricted:
        return _day_of_month_trigger(schedule, tz)
    if schedule.day_of_week.restricted:
        return _day_of_week_trigger(schedule, tz)
    return _cron(schedule, tz)


def _day_of_month_trigger(schedule: QuartzSchedule, tz: tzinfo) -> BaseTrigger:
    rule = schedule.day_of_month
    if rule.kind == "days":
        return _cron(schedule, tz, day=_compact(rule.days, 1, 31))
    if rule.kind == "last" and rule.offset == 0:
        return _cron(schedule, tz, day="last")
    return MonthDayTrigger(_cron(schedule, tz), rule)  # W, LW, L-n


def _day_of_week_trigger(schedule: QuartzSchedule, tz: tzinfo) -> BaseTrigger:
    rule = schedule.day_of_week
    if rule.kind == "last":
        # CronTrigger keeps "last fri" / "3rd fri" in its day (of month) field.
        return _cron(schedule, tz, day=f"last {_WEEKDAYS[rule.weekday]}")
    if rule.kind == "nth":
        return _cron(schedule, tz, day=f"{_ORDINALS[rule.nth - 1]} {_WEEKDAYS[rule.weekday]}")
    return _cron(schedule, tz, day_of_week=_weekday_names(rule.weekdays))


def _cron(schedule: QuartzSchedule, tz: tzinfo, day: str = "*", day_of_week: str = "*") -> CronTrigger:
    # Every field is passed explicitly: CronTrigger otherwise fills fields
    # below the last one given with their minimum instead of '*'.
    kwargs = dict(
        second=_compact(schedule.seconds, 0, 59),
        minute=_compact(schedule.minutes, 0, 59),
        hour=_compact(schedule.hours, 0, 23),
        day=day,
        month=_compact(schedule.months, 1, 12),
        day_of_week=day_of_week,
        timezone=tz,
    )
    if schedule.years is not None:
        kwargs["year"] = _compact(schedule.years, 1970, 2099)
    return CronTrigger(**kwargs)


def _compact(values: Iterable[int], low: int, high: int) -> str:
    """Render a value set in CronTrigger syntax, as short as is easy: '*',
    'a-b/step' for an arithmetic run, else comma-joined ranges."""
    ordered = sorted(values)
    if ordered == list(range(low, high + 1)):
        return "*"
    if len(ordered) >= 3:
        step = ordered[1] - ordered[0]
        if ordered == list(range(ordered[0], ordered[-1] + 1, step)):
            return f"{ordered[0]}-{ordered[-1]}" + (f"/{step}" if step > 1 else "")
    return ",".join(_runs(ordered, str))


def _weekday_names(weekdays: Iterable[int]) -> str:
    # Names, never numbers: CronTrigger's 0 is Monday, and its name ranges
    # ("mon-fri") take no step, so runs are the most we compress.
    return ",".join(_runs(sorted(weekdays), lambda d: _WEEKDAYS[d]))


def _runs(ordered: list[int], render) -> list[str]:
    parts: list[str] = []
    start = prev = ordered[0]
    for value in ordered[1:] + [None]:
        if value is not None and value == prev + 1:
            prev = value
            continue
        parts.append(render(start) if start == prev else f"{render(start)}-{render(prev)}")
        if value is not None:
            start = prev = value
    return parts


def describe(expr: str, timezone: str | None = None) -> str:
    """Plain-English description, e.g. "At 10:15, on the last Friday of the month".

    The expression is validated first: cron-descriptor describes some things
    Quartz rejects. With `timezone`, " (Europe/London)" is appended.
    """
    schedule = parse_quartz(expr)
    text = _cron_descriptor_text(schedule)
    return f"{text} ({timezone})" if timezone else text


def _cron_descriptor_text(schedule: QuartzSchedule) -> str:
    parts = schedule.expression.upper().split()
    dow_index = 4 if schedule.unix else 5
    if parts[dow_index] == "L":
        parts[dow_index] = "7"  # Quartz: a lone L is Saturday; cron-descriptor refuses it
    options = Options(
        # Quartz counts weekdays from 1 = Sunday, Unix from 0 = Sunday.
        day_of_week_start_index_zero=schedule.unix,
        use_24hour_time_format=True,
        locale_code="en_US",
    )
    try:
        return ExpressionDescriptor(" ".join(parts), options).get_description()
    except (FormatError, ValueError, KeyError, IndexError):
        # A valid expression cron-descriptor can't word (rare): show it as is
        # rather than failing the page that wanted a description.
        return f"Cron schedule {schedule.expression}"
