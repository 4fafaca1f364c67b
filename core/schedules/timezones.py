"""Turning an IANA time zone name into a tzinfo, with a field-named error."""

from __future__ import annotations

from datetime import timezone as _dt_timezone
from datetime import tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ScheduleError


def resolve_timezone(value: str | tzinfo | None, field: str = "timezone") -> tzinfo:
    """Return a tzinfo for an IANA name ("Europe/London"), "UTC" or a tzinfo.

    "UTC" maps to ``datetime.timezone.utc``, the same object APScheduler uses,
    so triggers built here compare equal to ones APScheduler builds itself.
    """
    if value is None:
        return _dt_timezone.utc
    if isinstance(value, tzinfo):
        return value
    if not isinstance(value, str) or not value.strip():
        raise ScheduleError(field, "choose a time zone, e.g. UTC or Europe/London")
    name = value.strip()
    if name.upper() == "UTC":
        return _dt_timezone.utc
    try:
        return ZoneInfo(name)
    # ValueError covers names ZoneInfo refuses outright (absolute paths, "..").
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            field,
            f"{name!r} is not a known IANA time zone (e.g. UTC, Europe/London, America/New_York)",
        ) from None
