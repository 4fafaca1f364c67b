"""Schedule expressions for feed triggers: Quartz/Unix cron and basic schedules,
turned into APScheduler 3.x triggers, validated, described and previewed.

No scheduler wiring lives here; callers hand the triggers to APScheduler.
"""

from .basic import build_trigger, normalize, validate
from .basic import describe as describe_spec
from .cron import describe, parse_quartz, to_trigger
from .fire_times import next_fire_times
from .errors import ScheduleError
from .month_day import MonthDayTrigger
from .quartz import DayOfMonth, DayOfWeek, QuartzSchedule
from .timezones import resolve_timezone

__all__ = [
    "DayOfMonth",
    "DayOfWeek",
    "MonthDayTrigger",
    "QuartzSchedule",
    "ScheduleError",
    "build_trigger",
    "describe",
    "describe_spec",
    "next_fire_times",
    "normalize",
    "parse_quartz",
    "resolve_timezone",
    "to_trigger",
    "validate",
]
