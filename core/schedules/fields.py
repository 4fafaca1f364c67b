"""Per-field rules of Quartz / Unix cron: ranges, names and step limits.

Kept apart from the parser so the numbers the error messages quote live in one
place next to the values they describe.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import ScheduleError

MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
# Quartz and Unix both number the week from Sunday, but Quartz starts at 1.
WEEKDAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")

_NUMBER = re.compile(r"[0-9]+")  # str.isdigit() would also accept '²' and friends


@dataclass(frozen=True)
class FieldSpec:
    name: str  # what the user sees in messages, e.g. "day of week"
    low: int
    high: int  # highest value a user may write
    hint: str  # how messages describe the valid values
    max_step: int
    names: dict[str, int] = field(default_factory=dict)
    # Highest value '*' and open-ended steps ("1/2") cover. Differs from
    # `high` only for Unix day of week, where 7 is an alias of 0 (Sunday) and
    # must not make '*/2' hit Sunday twice.
    star_high: int | None = None

    @property
    def top(self) -> int:
        return self.high if self.star_high is None else self.star_high


SECONDS = FieldSpec("seconds", 0, 59, "0-59", 59)
MINUTES = FieldSpec("minutes", 0, 59, "0-59", 59)
HOURS = FieldSpec("hours", 0, 23, "0-23", 23)
DAY_OF_MONTH = FieldSpec("day of month", 1, 31, "1-31", 31)
MONTH = FieldSpec(
    "month", 1, 12, "1-12 (JAN-DEC)", 12, {n: i for i, n in enumerate(MONTH_NAMES, start=1)}
)
QUARTZ_DAY_OF_WEEK = FieldSpec(
    "day of week", 1, 7, "1-7 (SUN-SAT)", 7, {n: i for i, n in enumerate(WEEKDAY_NAMES, start=1)}
)
UNIX_DAY_OF_WEEK = FieldSpec(
    "day of week",
    0,
    7,
    "0-7 (SUN-SAT; 0 and 7 are both Sunday)",
    7,
    {n: i for i, n in enumerate(WEEKDAY_NAMES)},
    star_high=6,
)
YEAR = FieldSpec("year", 1970, 2099, "1970-2099", 129)

# Where the special characters are allowed, for "not allowed here" messages.
_SPECIAL_HOMES = {
    "?": "day of month or day of week",
    "L": "day of month or day of week",
    "W": "day of month",
    "#": "day of week",
}


def parse_values(text: str, spec: FieldSpec) -> frozenset[int]:
    """Expand a plain field ("*", "5", "1-5", "0/15", "MON-FRI", lists) to its values."""
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise ScheduleError(spec.name, f"empty entry in the list {text!r}")
        values.update(_parse_item(item, spec))
    return frozenset(values)


def parse_value(text: str, spec: FieldSpec) -> int:
    """One number or name, range-checked."""
    if _NUMBER.fullmatch(text):
        value = int(text)
    elif text in spec.names:
        return spec.names[text]
    elif text == "?" and spec.name in _SPECIAL_HOMES["?"]:
        raise ScheduleError(spec.name, "'?' must be the whole field, not part of a list or range")
    else:
        for char, home in _SPECIAL_HOMES.items():
            if char in text and spec.name not in home:
                raise ScheduleError(spec.name, f"'{char}' is only allowed in {home}")
        raise ScheduleError(spec.name, f"{text!r} is not a valid value; use {spec.hint}")
    if not spec.low <= value <= spec.high:
        raise ScheduleError(spec.name, f"{value} is out of range {spec.hint}")
    return value


def _parse_item(item: str, spec: FieldSpec) -> list[int]:
    base, slash, step_text = item.partition("/")
    step = _parse_step(step_text, spec) if slash else 1
    if base == "*":
        first, last = spec.low, spec.top
    elif "-" in base:
        first_text, _, last_text = base.partition("-")
        if not first_text or not last_text or "-" in last_text:
            raise ScheduleError(spec.name, f"{item!r} is not a valid range; write first-last, e.g. 1-5")
        first, last = parse_value(first_text, spec), parse_value(last_text, spec)
    elif not base:
        raise ScheduleError(spec.name, f"{item!r}: '/' needs a start value or '*' before it, e.g. 0/15")
    else:
        first = parse_value(base, spec)
        # Quartz reads "5/15" as "from 5 to the end of the field, every 15".
        last = spec.top if slash else first
    return _span(first, last, spec, item)[::step]


def _parse_step(text: str, spec: FieldSpec) -> int:
    step = int(text) if _NUMBER.fullmatch(text) else 0
    if not 1 <= step <= spec.max_step:
        raise ScheduleError(
            spec.name, f"step {text!r} must be a whole number 1-{spec.max_step}"
        )
    return step


def _span(first: int, last: int, spec: FieldSpec, item: str) -> list[int]:
    if first <= last:
        return list(range(first, last + 1))
    # Quartz lets a range wrap past the end of the field ("22-2" hours is
    # 22,23,0,1,2; "FRI-MON"). Years have no end to wrap past.
    if spec is YEAR:
        raise ScheduleError(spec.name, f"range {item!r} runs backwards; write the earlier year first")
    return list(range(first, spec.top + 1)) + list(range(spec.low, last + 1))
