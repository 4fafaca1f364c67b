"""An APScheduler 3.x trigger for the Quartz day rules CronTrigger lacks.

CronTrigger has "last" but nothing for W (nearest weekday), LW (last weekday)
or L-n (n days before the last). Those rules pick at most one day per month,
so this trigger lets a CronTrigger find the time of day (seconds, minutes,
hours, month, year) and only checks, month by month, that the candidate falls
on the picked day, jumping straight to that day or to the next month otherwise.
"""

from __future__ import annotations

from datetime import datetime, timezone

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

from .quartz import DayOfMonth

# Each step moves to a later day or month, so this only stops a runaway loop
# on a rule that can never match (parse_quartz already rejects those it can see).
_MAX_STEPS = 10_000


class MonthDayTrigger(BaseTrigger):
    """Fire at the times of `times` (a CronTrigger whose day fields are '*'),
    but only on the day `rule.day_in(year, month)` picks in each month."""

    def __init__(self, times: CronTrigger, rule: DayOfMonth):
        self.times = times
        self.rule = rule

    @property
    def timezone(self):
        return self.times.timezone

    def get_next_fire_time(self, previous_fire_time, now):
        # The first candidate honours APScheduler's previous/now contract;
        # later ones are plain "first time at or after this instant" searches.
        candidate = self.times.get_next_fire_time(previous_fire_time, now)
        for _ in range(_MAX_STEPS):
            if candidate is None:
                return None
            local = candidate.astimezone(self.timezone)
            target = self.rule.day_in(local.year, local.month)
            if target == local.day:
                return candidate
            if target is not None and local.day < target:
                resume = self._midnight(local.year, local.month, target)
            elif local.month == 12:
                resume = self._midnight(local.year + 1, 1, 1)
            else:
                resume = self._midnight(local.year, local.month + 1, 1)
            candidate = self.times.get_next_fire_time(None, resume)
        return None

    def _midnight(self, year: int, month: int, day: int) -> datetime:
        # Via UTC so a midnight that a DST jump skips still becomes a real
        # instant (the moment the day begins) rather than a wall-clock fiction.
        return datetime(year, month, day, tzinfo=self.timezone).astimezone(timezone.utc)

    # Explicit state: APScheduler's OrTrigger pickles its members by calling
    # __getstate__ / __setstate__ directly, and job stores pickle triggers.
    def __getstate__(self):
        return {"version": 1, "times": self.times, "rule": self.rule}

    def __setstate__(self, state):
        if state.get("version", 1) > 1:
            raise ValueError(f"MonthDayTrigger state version {state['version']} is newer than this code")
        self.times = state["times"]
        self.rule = state["rule"]

    def __str__(self):
        return f"month_day[{self._rule_text()}, {self.times}]"

    def __repr__(self):
        return f"<{self.__class__.__name__} ({self._rule_text()}, {self.times!r})>"

    def _rule_text(self) -> str:
        rule = self.rule
        if rule.kind == "last_weekday":
            return "LW"
        if rule.kind == "nearest_weekday":
            return f"{rule.day}W"
        return f"L-{rule.offset}"
