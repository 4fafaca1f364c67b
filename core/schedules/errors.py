"""The one exception type the schedule layer raises for bad user input."""

from __future__ import annotations


class ScheduleError(ValueError):
    """A schedule setting is invalid.

    ``field`` names the setting the user has to fix, so a form can put the
    message next to the right input: for cron expressions one of "seconds",
    "minutes", "hours", "day of month", "month", "day of week", "year" or
    "expression" (wrong field count / empty); for basic schedules the key of
    the spec dict ("days", "time", "timezone", "every", "unit", "at", "kind").

    ``str(error)`` is "<label>: <message>", where label defaults to the field.
    A label differs from the field only when a rule spans two fields (the
    Quartz day-of-month / day-of-week '?' rule): the message then names both
    while ``field`` still points at one input.
    """

    def __init__(self, field: str, message: str, *, label: str | None = None):
        self.field = field
        self.message = message
        self.label = label or field
        super().__init__(f"{self.label}: {message}")
