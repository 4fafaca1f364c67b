"""Quartz / Unix cron expressions -> APScheduler triggers.

The fire times are checked against croniter, an independent implementation.
croniter speaks a slightly different dialect, so a case carries croniter's
spelling of the same schedule where the two differ:
  * croniter numbers weekdays 0-6 from Sunday in every form, Quartz 1-7, so
    Quartz weekday numbers are given to croniter as names;
  * Quartz "6L" (last Friday) is croniter "L5"; Quartz "6#3" is "FRI#3".
Where croniter cannot express a case or gets it wrong, the expected times come
from a brute-force walk over the calendar that applies the textbook rule
(HAND_CHECKED below, each with the reason).
"""

from __future__ import annotations

import calendar
import pickle
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from croniter import CroniterBadDateError, croniter

from core.schedules import MonthDayTrigger, ScheduleError, describe, next_fire_times, parse_quartz, to_trigger

UTC = timezone.utc
N = 10

STARTS = [
    pytest.param(datetime(2026, 1, 15, 8, 0, tzinfo=UTC), id="2026-01-15"),
    pytest.param(datetime(2026, 4, 30, 23, 59, 30, tzinfo=UTC), id="month-end-2026-04-30"),
    pytest.param(datetime(2028, 2, 27, 12, 0, tzinfo=UTC), id="leap-feb-2028-02-27"),
    pytest.param(datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC), id="year-end-2026-12-31"),
]

# (our expression, croniter's spelling or None when identical)
CRONITER_CASES = [
    # Quartz documentation classics
    ("0 0 12 * * ?", None),
    ("0 15 10 ? * *", None),
    ("0 15 10 * * ?", None),
    ("0 15 10 * * ? *", None),
    ("0 15 10 * * ? 2027", None),
    ("0 * 14 * * ?", None),
    ("0 0/5 14 * * ?", None),
    ("0 0/5 14,18 * * ?", None),
    ("0 0-5 14 * * ?", None),
    ("0 10,44 14 ? 3 WED", None),
    ("0 15 10 ? * MON-FRI", None),
    ("0 15 10 15 * ?", None),
    ("0 15 10 L * ?", None),
    ("0 15 10 ? * 6L", "0 15 10 ? * L5"),
    ("0 15 10 ? * 6L 2027-2029", "0 15 10 ? * L5 2027-2029"),
    ("0 15 10 ? * 6#3", "0 15 10 ? * FRI#3"),
    ("0 0 12 1/5 * ?", None),
    ("0 11 11 11 11 ?", None),
    ("0 0 9 15W * ?", None),
    ("0 0 9 1W * ?", None),
    ("0 30 7 10W * ?", None),
    # day of week: numbers (1 = SUN) and names, '?' on either side
    ("0 0 8 ? * 2-6", "0 0 8 ? * MON-FRI"),
    ("0 30 9 ? * 1,7", "0 30 9 ? * SUN,SAT"),
    ("0 30 9 ? * SUN,SAT", None),
    ("0 0 12 ? * 1", "0 0 12 ? * SUN"),
    ("0 0 12 ? * 7", "0 0 12 ? * SAT"),
    ("0 0 12 ? * L", "0 0 12 ? * SAT"),  # a lone L is the last day of the week
    ("0 0 12 ? * 1L", "0 0 12 ? * L0"),
    ("0 0 12 ? * FRIL", "0 0 12 ? * L5"),
    ("0 0 18 ? * FRI-MON", None),  # wraps past Saturday
    ("0 0 12 ? * 2-6/2", "0 0 12 ? * MON,WED,FRI"),
    ("0 0 7 ? * 2#1", "0 0 7 ? * MON#1"),
    ("0 0 7 ? * 2#2", "0 0 7 ? * MON#2"),  # CronTrigger's own "mon#2" means every Monday
    ("0 0 7 ? * 2#5", "0 0 7 ? * MON#5"),  # months without a fifth Monday are skipped
    ("0 0 7 ? * MON#1", None),
    # months, days of month
    ("0 0 6 1 JAN-MAR,OCT ?", None),
    ("0 0 6 ? JUN-AUG SAT", None),
    ("0 0 0 1 1/3 ?", None),
    ("0 0 0 29 2 ?", None),
    ("0 0 0 31 * ?", None),
    ("0 0 12 L 2 ?", None),
    ("0 0 12 28-3 * ?", None),  # wraps past the month's end
    # seconds, steps, lists, lower case
    ("*/30 * * * * ?", None),
    ("15/20 * * * * ?", None),
    ("0 0 */6 * * ?", None),
    ("0 0 22-2 * * ?", None),
    ("0 5-50/15 9-17 ? * MON-FRI", None),
    ("0 15 10 ? * mon-fri", None),
    # years
    ("0 0 0 1 1 ? 2027/2", None),
    ("0 30 10 ? * WED 2026,2028", None),
    ("0 0 0 ? * * 2030", None),
    # Unix 5-field form: minute hour day-of-month month day-of-week, 0/7 = Sunday
    ("*/15 * * * *", None),
    ("0 9 * * 1-5", None),
    ("0 0 * * 0", None),
    ("0 0 * * 7", None),
    ("30 6 1 1 *", None),
    ("0 12 1,15 * MON", None),  # both day fields restricted: either one fires
    ("0 12 13 * 5", None),
    ("0 12 30 2 MON", None),  # Feb 30 never comes, the Mondays of February still do
    ("0 0 L * *", None),
    ("0 9 15W * *", None),
    ("0 0 * * 5L", "0 0 * * L5"),
    ("0 0 * * 5#2", None),
]


def croniter_times(expr: str, start: datetime, n: int = N) -> list[datetime]:
    it = croniter(expr, start, second_at_beginning=len(expr.split()) > 5)
    times = []
    for _ in range(n):
        try:
            times.append(it.get_next(datetime))
        except CroniterBadDateError:  # the schedule ran out (year list)
            break
    return times


@pytest.mark.parametrize("start", STARTS)
@pytest.mark.parametrize("expr, oracle", [pytest.param(e, o, id=e) for e, o in CRONITER_CASES])
def test_fire_times_match_croniter(expr, oracle, start):
    assert next_fire_times(expr, N, start) == croniter_times(oracle or expr, start)


def test_case_table_is_big_enough():
    quartz = [e for e, _ in CRONITER_CASES if len(e.split()) > 5] + [e for e, *_ in HAND_CHECKED]
    assert len(quartz) >= 40


# -- cases croniter cannot check ------------------------------------------------

def _last_day(d: date) -> int:
    return calendar.monthrange(d.year, d.month)[1]


def _weekdays_of_month(d: date) -> list[date]:
    days = (date(d.year, d.month, k) for k in range(1, _last_day(d) + 1))
    return [x for x in days if x.weekday() < 5]


def last_weekday(d: date) -> bool:
    return d == _weekdays_of_month(d)[-1]


def nearest_weekday(target: int):
    """Quartz nW: the weekday of the same month closest to day `target`.
    A month without that day has none (as a plain day number would)."""

    def matches(d: date) -> bool:
        if target > _last_day(d):
            return False
        return d == min(_weekdays_of_month(d), key=lambda w: abs(w.day - target))

    return matches


def days_before_last(offset: int):
    return lambda d: d.day == _last_day(d) - offset


def walk_days(start: datetime, at: time, matches, tz=UTC, n: int = N) -> list[datetime]:
    """Every day from `start` on, in order: keep `at` on the days that match."""
    times, day = [], start.astimezone(tz).date()
    for _ in range(366 * 10):
        if len(times) == n:
            break
        if matches(day):
            fire = datetime.combine(day, at, tzinfo=tz)
            if fire > start:
                times.append(fire)
        day += timedelta(days=1)
    return times


# (expression, time of day, day rule, why croniter is not the oracle)
HAND_CHECKED = [
    ("0 0 9 LW * ?", time(9), last_weekday, "croniter rejects LW"),
    ("0 0 9 31W * ?", time(9), nearest_weekday(31),
     "croniter moves 31W onto the last weekday of 30-day months and February; "
     "we skip months without a 31st, as a plain 31 does (Quartz itself rolls "
     "such a date into the next month)"),
    ("0 0 9 30W 1-3 ?", time(9), lambda d: d.month <= 3 and nearest_weekday(30)(d),
     "same as 31W, for February"),
    ("0 0 12 L-3 * ?", time(12), days_before_last(3), "croniter has no L-n"),
    ("0 0 12 L-0 * ?", time(12), days_before_last(0), "croniter has no L-n"),
    ("0 9 LW * *", time(9), last_weekday, "croniter rejects LW"),
    ("0 0 1 * MON#1", time(0), lambda d: d.day == 1 or (d.weekday() == 0 and d.day <= 7),
     "Unix ORs restricted day fields; croniter drops the day of month when the "
     "weekday uses '#'"),
    ("0 12 15W * MON", time(12), lambda d: nearest_weekday(15)(d) or d.weekday() == 0,
     "Unix OR again; croniter intersects when the day of month uses 'W'"),
]


@pytest.mark.parametrize("start", STARTS)
@pytest.mark.parametrize("expr, at, matches", [pytest.param(e, a, m, id=e) for e, a, m, _ in HAND_CHECKED])
def test_fire_times_match_hand_checked_rules(expr, at, matches, start):
    assert next_fire_times(expr, N, start) == walk_days(start, at, matches)


def test_31w_fires_only_in_months_with_a_31st():
    fires = next_fire_times("0 0 9 31W * ?", 7, datetime(2026, 1, 1, tzinfo=UTC))
    # 2026-01-31 is a Saturday -> Friday the 30th; May 31 is a Sunday -> Friday the 29th.
    assert [f.date() for f in fires] == [
        date(2026, 1, 30), date(2026, 3, 31), date(2026, 5, 29), date(2026, 7, 31),
        date(2026, 8, 31), date(2026, 10, 30), date(2026, 12, 31),
    ]


def test_nearest_weekday_never_leaves_the_month():
    # 2026-08-01 is a Saturday: 1W moves forward to Monday the 3rd, not back into July.
    assert next_fire_times("0 0 9 1W 8 ?", 1, datetime(2026, 7, 1, tzinfo=UTC))[0].date() == date(2026, 8, 3)
    # 2026-05-31 is a Sunday: 31W moves back to Friday the 29th, not into June.
    assert next_fire_times("0 0 9 31W 5 ?", 1, datetime(2026, 5, 1, tzinfo=UTC))[0].date() == date(2026, 5, 29)


# -- other time zones, across DST changes ----------------------------------------

ZONED = [
    ("0 15 10 ? * MON-FRI", None, "Europe/London", datetime(2026, 3, 25, tzinfo=UTC)),
    ("0 0/30 9-10 * * ?", None, "Europe/London", datetime(2026, 10, 23, tzinfo=UTC)),
    ("0 0 12 ? * 6L", "0 0 12 ? * L5", "America/New_York", datetime(2026, 2, 1, tzinfo=UTC)),
    ("0 0 8 ? * 2#2", "0 0 8 ? * MON#2", "America/New_York", datetime(2026, 2, 1, tzinfo=UTC)),
    ("0 0 9 15W * ?", None, "Australia/Sydney", datetime(2026, 3, 1, tzinfo=UTC)),
    ("0 9 * * 1-5", None, "Asia/Kolkata", datetime(2026, 3, 1, tzinfo=UTC)),
]


@pytest.mark.parametrize("expr, oracle, tz, start", [pytest.param(*c, id=f"{c[0]}@{c[2]}") for c in ZONED])
def test_fire_times_in_other_time_zones(expr, oracle, tz, start):
    expected = croniter_times(oracle or expr, start.astimezone(ZoneInfo(tz)))
    assert next_fire_times(expr, N, start, timezone=tz) == expected


def test_last_weekday_in_a_zone_ahead_of_utc():
    # 09:00 in Sydney is the previous evening in UTC: the day rule must use the local date.
    tz = ZoneInfo("Australia/Sydney")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert next_fire_times("0 0 9 LW * ?", N, start, timezone=tz) == walk_days(start, time(9), last_weekday, tz)


def test_wall_time_skipped_by_dst_fires_once_an_hour_later():
    # 01:30 does not exist in London on 2026-03-29; the run happens at 02:30 BST
    # (croniter would pick 02:00 instead).
    fires = next_fire_times("0 30 1 * * ?", 3, datetime(2026, 3, 28, 12, tzinfo=UTC), timezone="Europe/London")
    assert [f.isoformat() for f in fires] == [
        "2026-03-29T02:30:00+01:00", "2026-03-30T01:30:00+01:00", "2026-03-31T01:30:00+01:00",
    ]


def test_wall_time_repeated_by_dst_fires_at_both_occurrences():
    # 01:30 happens twice in London on 2026-10-25. APScheduler (and croniter)
    # fire at both; pinned so a change in that behaviour is noticed.
    fires = next_fire_times("0 30 1 * * ?", 3, datetime(2026, 10, 24, 12, tzinfo=UTC), timezone="Europe/London")
    assert [f.isoformat() for f in fires] == [
        "2026-10-25T01:30:00+01:00", "2026-10-25T01:30:00+00:00", "2026-10-26T01:30:00+00:00",
    ]


# -- the triggers themselves -----------------------------------------------------

@pytest.mark.parametrize(
    "expr, kind",
    [
        ("0 0 12 * * ?", CronTrigger),
        ("0 15 10 ? * 6L", CronTrigger),
        ("0 15 10 ? * 6#3", CronTrigger),
        ("0 0 9 15W * ?", MonthDayTrigger),
        ("0 0 9 LW * ?", MonthDayTrigger),
        ("0 0 9 L-2 * ?", MonthDayTrigger),
        ("0 12 1,15 * MON", OrTrigger),
        ("0 12 * * MON", CronTrigger),  # one restricted day field: no OR needed
        ("0 12 30 2 MON", CronTrigger),  # Feb 30 never comes: only the weekday side is kept
    ],
)
def test_trigger_types(expr, kind):
    trigger = to_trigger(expr)
    assert isinstance(trigger, BaseTrigger)
    assert type(trigger) is kind


def test_crontrigger_gets_weekday_names_not_numbers():
    # APScheduler's weekday 0 is Monday; Quartz 2 (MON) must not reach it as "2" (Wednesday).
    trigger = to_trigger("0 0 8 ? * 2-6")
    assert "day_of_week='mon-fri'" in str(trigger)


def test_timezone_is_applied():
    trigger = to_trigger("0 0 9 * * ?", timezone="Europe/Paris")
    assert str(trigger.timezone) == "Europe/Paris"
    first = next_fire_times(trigger, 1, datetime(2026, 7, 1, tzinfo=UTC))[0]
    assert first.astimezone(UTC) == datetime(2026, 7, 1, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize("expr", ["0 0 9 LW * ?", "0 12 15W * MON", "0 15 10 ? * 6#3"])
def test_triggers_survive_pickling(expr):
    # APScheduler job stores pickle triggers (OrTrigger via __getstate__/__setstate__).
    trigger = to_trigger(expr, timezone="Europe/London")
    copy = pickle.loads(pickle.dumps(trigger))
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert next_fire_times(copy, 5, start) == next_fire_times(trigger, 5, start)


def test_month_day_trigger_follows_the_scheduler_contract():
    trigger = to_trigger("0 0 9 LW * ?")
    first = trigger.get_next_fire_time(None, datetime(2026, 1, 1, tzinfo=UTC))
    assert first == datetime(2026, 1, 30, 9, tzinfo=UTC)  # the 31st is a Saturday
    # Asked again with the previous fire time, it moves on instead of repeating.
    assert trigger.get_next_fire_time(first, first) == datetime(2026, 2, 27, 9, tzinfo=UTC)


# -- next_fire_times ---------------------------------------------------------------

def test_next_fire_times_is_strictly_after_start():
    start = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    assert next_fire_times("0 0 12 * * ?", 2, start) == [
        datetime(2026, 1, 16, 12, tzinfo=UTC), datetime(2026, 1, 17, 12, tzinfo=UTC),
    ]


def test_next_fire_times_stops_when_the_years_run_out():
    fires = next_fire_times("0 0 12 25 12 ? 2026-2027", 5, datetime(2026, 1, 1, tzinfo=UTC))
    assert fires == [datetime(2026, 12, 25, 12, tzinfo=UTC), datetime(2027, 12, 25, 12, tzinfo=UTC)]


def test_next_fire_times_returns_aware_datetimes_in_the_trigger_zone():
    fires = next_fire_times("0 0 9 * * ?", 3, datetime(2026, 1, 1, tzinfo=UTC), timezone="Asia/Tokyo")
    assert all(f.tzinfo is not None and f.utcoffset() == timedelta(hours=9) for f in fires)
    assert [f.hour for f in fires] == [9, 9, 9]


def test_next_fire_times_defaults_to_now():
    before = datetime.now(UTC)
    fires = next_fire_times("0 * * * * ?", 2)
    assert len(fires) == 2 and before < fires[0] < fires[1] <= before + timedelta(minutes=2, seconds=1)


def test_next_fire_times_rejects_a_naive_start():
    with pytest.raises(ValueError, match="timezone-aware"):
        next_fire_times("0 0 12 * * ?", 3, datetime(2026, 1, 1))


def test_next_fire_times_n_zero():
    assert next_fire_times("0 0 12 * * ?", 0, datetime(2026, 1, 1, tzinfo=UTC)) == []


# -- validation ----------------------------------------------------------------------

INVALID = [
    ("", "expression", "is empty"),
    ("0 0 12 *", "expression", "expected 6 or 7 fields"),
    ("0 0 12 * * ? 2027 1", "expression", "got 8"),
    ("60 0 12 * * ?", "seconds", "60 is out of range 0-59"),
    ("? 0 12 * * ?", "seconds", "'?' is only allowed in day of month or day of week"),
    ("0 0/0 12 * * ?", "minutes", "step '0' must be a whole number 1-59"),
    ("0 0/75 12 * * ?", "minutes", "step '75' must be a whole number 1-59"),
    ("0 60 12 * * ?", "minutes", "60 is out of range 0-59"),
    ("0 0 24 * * ?", "hours", "24 is out of range 0-23"),
    ("0 0 L * * ?", "hours", "'L' is only allowed in day of month or day of week"),
    ("0 0 12 32 * ?", "day of month", "32 is out of range 1-31"),
    ("0 0 12 1,,2 * ?", "day of month", "empty entry"),
    ("0 0 12 1-5W * ?", "day of month", "'W' needs a single day 1-31"),
    ("0 0 12 L,15 * ?", "day of month", "can't be combined with other days"),
    ("0 0 12 L-31 * ?", "day of month", "0-30 days before the last day"),
    ("0 0 12 6#3 * ?", "day of month", "'#' is only allowed in day of week"),
    ("0 0 12 30 2 ?", "day of month", "day 30 never occurs in FEB"),
    ("0 0 12 ? 13 *", "month", "13 is out of range 1-12 (JAN-DEC)"),
    ("0 0 12 ? FOO *", "month", "'FOO' is not a valid value; use 1-12 (JAN-DEC)"),
    ("0 0 12 ? * 8", "day of week", "8 is out of range 1-7 (SUN-SAT)"),
    ("0 0 12 ? * 0", "day of week", "0 is out of range 1-7 (SUN-SAT)"),  # Unix numbering in Quartz
    ("0 0 12 ? * MON-", "day of week", "not a valid range"),
    ("0 0 12 ? * 15W", "day of week", "'W' is only allowed in day of month"),
    ("0 0 12 ? * 6#6", "day of week", "'#' needs a weekday 1-7 and an occurrence 1-5"),
    ("0 0 12 ? * 8#2", "day of week", "'#' needs a weekday 1-7 and an occurrence 1-5"),
    ("0 0 12 ? * 6#0", "day of week", "'#' needs a weekday 1-7 and an occurrence 1-5"),
    ("0 0 12 ? * 2#1,3#1", "day of week", "'#' can't be combined with other days"),
    ("0 0 12 ? * 6L,2", "day of week", "'L' can't be combined with other days"),
    ("0 0 12 ? * L5", "day of week", "'L' needs a single weekday before it"),  # croniter's spelling
    ("0 0 12 * * *", "day of week", "one of them must be '?'"),
    ("0 0 12 ? * ?", "day of week", "only one of them can be '?'"),
    ("0 0 12 * * ? 1969", "year", "1969 is out of range 1970-2099"),
    ("0 0 12 * * ? 2029-2027", "year", "runs backwards"),
    ("0 12 * * 8", "day of week", "8 is out of range 0-7 (SUN-SAT; 0 and 7 are both Sunday)"),
    ("0 12 * * 5#3,1", "day of week", "'#' can't be combined"),
    ("61 12 * * *", "minutes", "61 is out of range 0-59"),
]


@pytest.mark.parametrize("expr, field, rule", [pytest.param(*c, id=c[0] or "<empty>") for c in INVALID])
def test_invalid_expressions_name_the_field_and_rule(expr, field, rule):
    with pytest.raises(ScheduleError) as info:
        parse_quartz(expr)
    assert info.value.field == field
    assert rule in str(info.value)
    # The same error comes out of every entry point.
    with pytest.raises(ScheduleError):
        to_trigger(expr)
    with pytest.raises(ScheduleError):
        describe(expr)


def test_schedule_error_message_starts_with_the_field():
    with pytest.raises(ValueError) as info:  # a ValueError subclass
        parse_quartz("0 0 12 ? * 8")
    assert str(info.value) == "day of week: 8 is out of range 1-7 (SUN-SAT)"


def test_question_mark_rule_names_both_day_fields():
    with pytest.raises(ScheduleError) as info:
        parse_quartz("0 0 12 * * MON")
    assert str(info.value).startswith("day of month and day of week: one of them must be '?'")


def test_unix_form_does_not_need_a_question_mark():
    parse_quartz("0 12 1 * MON")  # both restricted is fine: Unix ORs them


def test_bad_timezone_is_reported_as_timezone():
    with pytest.raises(ScheduleError) as info:
        to_trigger("0 0 12 * * ?", timezone="Mars/Olympus_Mons")
    assert info.value.field == "timezone"
    assert "not a known IANA time zone" in str(info.value)


def test_parse_result():
    schedule = parse_quartz("0 15 10 ? 1,3 2-6 2027")
    assert schedule.seconds == {0} and schedule.minutes == {15} and schedule.hours == {10}
    assert schedule.months == {1, 3} and schedule.years == {2027}
    assert schedule.day_of_week.weekdays == {0, 1, 2, 3, 4}  # Python numbering: MON-FRI
    assert not schedule.day_of_month.restricted and not schedule.unix


# -- describe --------------------------------------------------------------------------

@pytest.mark.parametrize(
    "expr, text",
    [
        ("0 0 12 * * ?", "At 12:00"),
        ("0 15 10 ? * 6L", "At 10:15, on the last Friday of the month"),
        ("0 15 10 ? * 6#3", "At 10:15, on the third Friday of the month"),
        ("0 0 9 LW * ?", "At 09:00, on the last weekday of the month"),
        ("0 0 9 15W * ?", "At 09:00, on the weekday nearest day 15 of the month"),
        ("0 15 10 ? * MON-FRI", "At 10:15, Monday through Friday"),
        ("0 0 12 ? * 1", "At 12:00, only on Sunday"),  # Quartz 1 = Sunday
        ("0 0 12 ? * L", "At 12:00, only on Saturday"),
        ("0 15 10 * * ? 2027", "At 10:15, only in 2027"),
        ("0 9 * * 0", "At 09:00, only on Sunday"),  # Unix 0 = Sunday
        ("*/15 * * * *", "Every 15 minutes"),
    ],
)
def test_describe(expr, text):
    assert describe(expr) == text


def test_describe_with_timezone():
    assert describe("0 0 12 * * ?", timezone="Europe/London") == "At 12:00 (Europe/London)"
