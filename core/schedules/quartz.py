"""Parsing Quartz (6/7 fields) and Unix (5 fields) cron expressions.

The result, QuartzSchedule, holds plain value sets plus the few day rules that
are not sets (L, LW, nW, nL, n#k). Weekdays are stored in Python's numbering
(0 = Monday ... 6 = Sunday, as in ``date.weekday()`` and APScheduler's names)
so nothing downstream has to remember that Quartz counts 1 = Sunday.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass

from . import fields as f
from .errors import ScheduleError

DOM = "day of month"
DOW = "day of week"
_BOTH = "day of month and day of week"
# Longest each month can be; February counts its leap day so "29 2" stays valid.
_LONGEST_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


@dataclass(frozen=True)
class DayOfMonth:
    """kind: "any", "days" (the `days` set), "last" (L, or L-offset),
    "last_weekday" (LW) or "nearest_weekday" (`day`W)."""

    kind: str
    days: frozenset[int] = frozenset()
    offset: int = 0
    day: int = 0

    @property
    def restricted(self) -> bool:
        return self.kind != "any"

    def day_in(self, year: int, month: int) -> int | None:
        """The day of `month` a last/weekday rule picks, or None if there is none."""
        last = calendar.monthrange(year, month)[1]
        if self.kind == "last":
            day = last - self.offset
            return day if day >= 1 else None
        if self.kind == "last_weekday":
            # Saturday (5) steps back one day, Sunday (6) two.
            return last - max(0, calendar.weekday(year, month, last) - 4)
        if self.kind == "nearest_weekday":
            day = self.day
            if day > last:
                # "31W" in a 30-day month: like a plain "31", the day does not
                # exist, so the month is skipped rather than guessed at.
                return None
            weekday = calendar.weekday(year, month, day)
            # Never leave the month: a Saturday 1st moves to Monday the 3rd,
            # a Sunday last day back to Friday.
            if weekday == 5:
                return day - 1 if day > 1 else day + 2
            if weekday == 6:
                return day + 1 if day < last else day - 2
            return day
        raise ValueError(f"day_in() does not apply to kind {self.kind!r}")


@dataclass(frozen=True)
class DayOfWeek:
    """kind: "any", "days" (`weekdays`), "last" (last `weekday` of the month,
    Quartz nL) or "nth" (`nth` `weekday` of the month, Quartz n#k)."""

    kind: str
    weekdays: frozenset[int] = frozenset()
    weekday: int = 0
    nth: int = 0

    @property
    def restricted(self) -> bool:
        return self.kind != "any"


@dataclass(frozen=True)
class QuartzSchedule:
    expression: str
    unix: bool  # written in the 5-field Unix form
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    day_of_month: DayOfMonth
    months: frozenset[int]
    day_of_week: DayOfWeek
    years: frozenset[int] | None  # None: every year

    @property
    def days_or(self) -> bool:
        """Unix cron fires when day of month OR day of week matches if both
        are restricted; otherwise (and always in Quartz) only one applies."""
        return self.unix and self.day_of_month.restricted and self.day_of_week.restricted


def parse_quartz(expr: str) -> QuartzSchedule:
    """Validate a Quartz or Unix cron expression; raise ScheduleError naming the field."""
    if not isinstance(expr, str) or not expr.strip():
        raise ScheduleError("expression", "is empty; e.g. 0 0 12 * * ? fires every day at noon")
    # Quartz upper-cases the expression, so names and L/W are case-insensitive.
    parts = expr.upper().split()
    if len(parts) == 5:
        unix = True
        seconds_text, year_text = "0", None
        minutes_text, hours_text, dom_text, month_text, dow_text = parts
    elif len(parts) in (6, 7):
        unix = False
        seconds_text, minutes_text, hours_text, dom_text, month_text, dow_text = parts[:6]
        year_text = parts[6] if len(parts) == 7 else None
    else:
        raise ScheduleError(
            "expression",
            f"expected 6 or 7 fields (Quartz: seconds minutes hours day-of-month month "
            f"day-of-week [year]) or 5 (Unix: minute hour day-of-month month day-of-week), "
            f"got {len(parts)}",
        )

    dow_spec = f.UNIX_DAY_OF_WEEK if unix else f.QUARTZ_DAY_OF_WEEK
    seconds = f.parse_values(seconds_text, f.SECONDS)
    minutes = f.parse_values(minutes_text, f.MINUTES)
    hours = f.parse_values(hours_text, f.HOURS)
    day_of_month = _parse_day_of_month(dom_text)
    months = f.parse_values(month_text, f.MONTH)
    day_of_week = _parse_day_of_week(dow_text, dow_spec)
    years = None if year_text in (None, "*") else f.parse_values(year_text, f.YEAR)

    if not unix:
        _check_question_marks(dom_text, dow_text)
    schedule = QuartzSchedule(
        expr.strip(), unix, seconds, minutes, hours, day_of_month, months, day_of_week, years
    )
    # "0 0 12 30 2 ?" is well formed but would never fire. In the Unix OR form
    # the weekday side still fires, so it is allowed there (to_trigger drops
    # the dead side).
    problem = day_never_occurs(day_of_month, months)
    if problem and not schedule.days_or:
        raise ScheduleError(DOM, problem)
    return schedule


def _check_question_marks(dom_text: str, dow_text: str) -> None:
    # Quartz cannot combine the two day fields, so exactly one must be '?'.
    if dom_text == "?" and dow_text == "?":
        raise ScheduleError(
            DOW, "only one of them can be '?'; put '*' or a value in the other", label=_BOTH
        )
    if dom_text != "?" and dow_text != "?":
        raise ScheduleError(
            DOW,
            "one of them must be '?', e.g. '0 0 12 * * ?' (every day) or '0 0 12 ? * MON'",
            label=_BOTH,
        )


def day_never_occurs(day_of_month: DayOfMonth, months: frozenset[int]) -> str | None:
    """Why the day-of-month rule can never match in these months, or None."""
    longest = max(_LONGEST_MONTH[m - 1] for m in months)
    month_names = ",".join(f.MONTH_NAMES[m - 1] for m in sorted(months))
    if day_of_month.kind == "days" and min(day_of_month.days) > longest:
        return f"day {min(day_of_month.days)} never occurs in {month_names}"
    if day_of_month.kind == "nearest_weekday" and day_of_month.day > longest:
        return f"day {day_of_month.day} never occurs in {month_names}"
    if day_of_month.kind == "last" and longest - day_of_month.offset < 1:
        return f"L-{day_of_month.offset} falls before the 1st in {month_names}"
    return None


_LAST_OFFSET = re.compile(r"L-([0-9]+)")
_NEAREST = re.compile(r"([0-9]+)W")


def _parse_day_of_month(text: str) -> DayOfMonth:
    if text in ("?", "*"):
        return DayOfMonth("any")
    if "L" in text or "W" in text:
        if "," in text:
            raise ScheduleError(DOM, f"'L' and 'W' can't be combined with other days in a list ({text!r})")
        if text == "L":
            return DayOfMonth("last")
        if text == "LW":
            return DayOfMonth("last_weekday")
        if m := _LAST_OFFSET.fullmatch(text):
            offset = int(m.group(1))
            if offset > 30:
                raise ScheduleError(DOM, f"L-{offset}: 'L-' takes 0-30 days before the last day")
            return DayOfMonth("last", offset=offset)
        if m := _NEAREST.fullmatch(text):
            day = int(m.group(1))
            if not 1 <= day <= 31:
                raise ScheduleError(DOM, f"{day}W: 'W' needs a day 1-31 before it, e.g. 15W")
            return DayOfMonth("nearest_weekday", day=day)
        if "W" in text:
            raise ScheduleError(
                DOM, f"{text!r}: 'W' needs a single day 1-31 before it (e.g. 15W), or LW for the last weekday"
            )
        raise ScheduleError(DOM, f"{text!r}: 'L' must stand alone as L, L-3 (3 days before the last) or LW")
    days = f.parse_values(text, f.DAY_OF_MONTH)
    if len(days) == 31:
        return DayOfMonth("any")
    return DayOfMonth("days", days=days)


_NTH = re.compile(r"([0-9]+|[A-Z]+)#([0-9]+)")
_LAST_OF = re.compile(r"([0-9]+|[A-Z]+)L")


def _parse_day_of_week(text: str, spec: f.FieldSpec) -> DayOfWeek:
    if text in ("?", "*"):
        return DayOfWeek("any")
    example = "5" if spec is f.UNIX_DAY_OF_WEEK else "6"  # Friday in each numbering
    first = spec.low if spec is f.QUARTZ_DAY_OF_WEEK else 0
    if "#" in text:
        if "," in text:
            raise ScheduleError(DOW, f"'#' can't be combined with other days in a list ({text!r})")
        m = _NTH.fullmatch(text)
        rule = (
            f"'#' needs a weekday {first}-{spec.high} and an occurrence 1-5 "
            f"(e.g. {example}#3 = third Friday); got {text!r}"
        )
        if not m or not 1 <= int(m.group(2)) <= 5:
            raise ScheduleError(DOW, rule)
        try:
            weekday = _to_python_weekday(f.parse_value(m.group(1), spec), spec)
        except ScheduleError:
            raise ScheduleError(DOW, rule) from None
        return DayOfWeek("nth", weekday=weekday, nth=int(m.group(2)))
    if text == "L":
        # 'L' alone is the last day of the week: Saturday.
        return DayOfWeek("days", weekdays=frozenset({5}))
    if "L" in text and text not in spec.names:
        if "," in text:
            raise ScheduleError(DOW, f"'L' can't be combined with other days in a list ({text!r})")
        m = _LAST_OF.fullmatch(text)
        if not m:
            raise ScheduleError(
                DOW, f"{text!r}: 'L' needs a single weekday before it, e.g. {example}L = last Friday"
            )
        weekday = _to_python_weekday(f.parse_value(m.group(1), spec), spec)
        return DayOfWeek("last", weekday=weekday)
    weekdays = frozenset(_to_python_weekday(v, spec) for v in f.parse_values(text, spec))
    if len(weekdays) == 7:
        return DayOfWeek("any")
    return DayOfWeek("days", weekdays=weekdays)


def _to_python_weekday(value: int, spec: f.FieldSpec) -> int:
    # Quartz 1=SUN..7=SAT and Unix 0/7=SUN..6=SAT -> Python 0=MON..6=SUN.
    if spec is f.QUARTZ_DAY_OF_WEEK:
        return (value + 5) % 7
    return (value + 6) % 7
