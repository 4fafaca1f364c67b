"""Basic schedules (weekly, interval, once) and the JSON spec form."""

from __future__ import annotations

import json
import pickle
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from core.schedules import ScheduleError, build_trigger, describe_spec, next_fire_times, normalize, validate
from core.schedules.basic import interval_trigger, once_trigger, weekly_trigger

UTC = timezone.utc
LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")


def local(tz, *args):
    return datetime(*args, tzinfo=tz)


# -- weekly -----------------------------------------------------------------------

def test_weekly_across_the_spring_dst_change():
    spec = {"kind": "weekly", "days": ["mon", "wed", "fri"], "time": "09:30", "timezone": "Europe/London"}
    fires = next_fire_times(spec, 5, datetime(2026, 3, 25, 12, tzinfo=UTC))
    # Clocks go forward on Sunday 2026-03-29: 09:30 stays 09:30 on the wall clock.
    assert fires == [
        local(LONDON, 2026, 3, 27, 9, 30),
        local(LONDON, 2026, 3, 30, 9, 30),
        local(LONDON, 2026, 4, 1, 9, 30),
        local(LONDON, 2026, 4, 3, 9, 30),
        local(LONDON, 2026, 4, 6, 9, 30),
    ]
    assert [f.astimezone(UTC).hour for f in fires] == [9, 8, 8, 8, 8]
    assert [f.isoformat() for f in fires[:2]] == ["2026-03-27T09:30:00+00:00", "2026-03-30T09:30:00+01:00"]


def test_weekly_across_the_autumn_dst_change_in_new_york():
    spec = {"kind": "weekly", "days": ["sun", "sat"], "time": "18:00", "timezone": "America/New_York"}
    fires = next_fire_times(spec, 4, datetime(2026, 10, 30, tzinfo=UTC))
    # Clocks go back on Sunday 2026-11-01 (EDT -04:00 -> EST -05:00).
    assert fires == [
        local(NEW_YORK, 2026, 10, 31, 18), local(NEW_YORK, 2026, 11, 1, 18),
        local(NEW_YORK, 2026, 11, 7, 18), local(NEW_YORK, 2026, 11, 8, 18),
    ]
    assert [f.astimezone(UTC).hour for f in fires] == [22, 23, 23, 23]


def test_weekly_time_inside_the_dst_gap_runs_once_after_it():
    # 01:30 does not exist in London on 2026-03-29; the run happens at 02:30 BST.
    spec = {"kind": "weekly", "days": ["sun"], "time": "01:30", "timezone": "Europe/London"}
    fires = next_fire_times(spec, 2, datetime(2026, 3, 28, tzinfo=UTC))
    assert [f.isoformat() for f in fires] == ["2026-03-29T02:30:00+01:00", "2026-04-05T01:30:00+01:00"]


def test_weekly_time_inside_the_repeated_hour_runs_at_both():
    # 01:30 happens twice in London on 2026-10-25 (APScheduler fires at both).
    spec = {"kind": "weekly", "days": ["sun"], "time": "01:30", "timezone": "Europe/London"}
    fires = next_fire_times(spec, 3, datetime(2026, 10, 24, tzinfo=UTC))
    assert [f.isoformat() for f in fires] == [
        "2026-10-25T01:30:00+01:00", "2026-10-25T01:30:00+00:00", "2026-11-01T01:30:00+00:00",
    ]


def test_weekly_defaults_to_utc_and_accepts_full_names_any_case():
    spec = {"kind": "weekly", "days": ["Tuesday", "THU"], "time": "7:05"}
    assert next_fire_times(spec, 3, datetime(2026, 1, 1, tzinfo=UTC)) == [
        datetime(2026, 1, 1, 7, 5, tzinfo=UTC),  # a Thursday
        datetime(2026, 1, 6, 7, 5, tzinfo=UTC),
        datetime(2026, 1, 8, 7, 5, tzinfo=UTC),
    ]


def test_weekly_trigger_type_and_fields():
    trigger = weekly_trigger(["fri", "mon"], "23:59", "Asia/Tokyo")
    assert isinstance(trigger, CronTrigger)
    assert "day_of_week='mon,fri'" in str(trigger) and "hour='23'" in str(trigger)
    assert str(trigger.timezone) == "Asia/Tokyo"


# -- interval ---------------------------------------------------------------------

def test_every_15_minutes_lands_on_quarter_hours():
    fires = next_fire_times({"kind": "interval", "every": 15, "unit": "minutes"}, 5,
                            datetime(2026, 5, 1, 10, 7, 12, tzinfo=UTC))
    assert fires == [datetime(2026, 5, 1, 10, 15, tzinfo=UTC) + timedelta(minutes=15 * i) for i in range(5)]


def test_every_2_hours():
    fires = next_fire_times({"kind": "interval", "every": 2, "unit": "hours"}, 4,
                            datetime(2026, 5, 1, 9, 0, tzinfo=UTC))
    assert fires == [datetime(2026, 5, 1, h, tzinfo=UTC) for h in (10, 12, 14, 16)]


def test_interval_start_on_a_fire_time_is_excluded():
    fires = next_fire_times({"kind": "interval", "every": 2, "unit": "hours"}, 1,
                            datetime(2026, 5, 1, 10, 0, tzinfo=UTC))
    assert fires == [datetime(2026, 5, 1, 12, tzinfo=UTC)]


def test_interval_counts_elapsed_time_across_dst():
    spec = {"kind": "interval", "every": 1, "unit": "hours", "timezone": "Europe/London"}
    fires = next_fire_times(spec, 3, datetime(2026, 3, 29, 0, 30, tzinfo=UTC))
    assert [f.astimezone(UTC).hour for f in fires] == [1, 2, 3]
    assert [f.hour for f in fires] == [2, 3, 4]  # local: 01:00 GMT becomes 02:00 BST


def test_interval_trigger_is_an_interval_trigger_and_does_not_depend_on_now():
    # Same spec, built at different moments, gives the same times.
    first, second = interval_trigger(15, "minutes"), interval_trigger(15, "minutes")
    assert isinstance(first, IntervalTrigger)
    start = datetime(2026, 5, 1, tzinfo=UTC)
    assert next_fire_times(first, 3, start) == next_fire_times(second, 3, start)


# -- once ---------------------------------------------------------------------------

def test_once_fires_once_and_nothing_after():
    spec = {"kind": "once", "at": "2026-12-01T09:00:00+00:00"}
    assert next_fire_times(spec, 5, datetime(2026, 11, 1, tzinfo=UTC)) == [datetime(2026, 12, 1, 9, tzinfo=UTC)]
    trigger = build_trigger(spec)
    assert isinstance(trigger, DateTrigger)
    fired = trigger.get_next_fire_time(None, datetime(2026, 11, 1, tzinfo=UTC))
    assert trigger.get_next_fire_time(fired, fired) is None


def test_once_in_the_past_has_no_fire_times():
    spec = {"kind": "once", "at": "2026-12-01T09:00:00+00:00"}
    assert next_fire_times(spec, 5, datetime(2026, 12, 1, 9, 0, 1, tzinfo=UTC)) == []
    assert next_fire_times(spec, 5, datetime(2026, 12, 1, 9, 0, 0, tzinfo=UTC)) == []


def test_once_with_naive_time_and_a_timezone():
    spec = {"kind": "once", "at": "2026-07-01T09:00", "timezone": "Europe/London"}
    assert next_fire_times(spec, 2, datetime(2026, 1, 1, tzinfo=UTC)) == [datetime(2026, 7, 1, 8, tzinfo=UTC)]
    assert normalize(spec)["at"] == "2026-07-01T09:00:00+01:00"


def test_once_trigger_accepts_an_aware_datetime():
    at = datetime(2027, 1, 2, 3, 4, tzinfo=NEW_YORK)
    assert once_trigger(at).run_date == at


# -- validation ----------------------------------------------------------------------

@pytest.mark.parametrize(
    "spec, field, fragment",
    [
        ({"kind": "weekly", "days": [], "time": "09:30"}, "days", "choose at least one day"),
        ({"kind": "weekly", "time": "09:30"}, "days", "choose at least one day"),
        ({"kind": "weekly", "days": ["mon", "funday"], "time": "09:30"}, "days", "'funday' is not a day"),
        ({"kind": "weekly", "days": ["mon"], "time": "24:00"}, "time", "use 24-hour HH:MM"),
        ({"kind": "weekly", "days": ["mon"], "time": "9.30"}, "time", "'9.30' is not a time of day"),
        ({"kind": "weekly", "days": ["mon"], "time": "09:60"}, "time", "HH:MM"),
        ({"kind": "weekly", "days": ["mon"]}, "time", "is not a time of day"),
        ({"kind": "weekly", "days": ["mon"], "time": "09:30", "timezone": "Europe/Londn"},
         "timezone", "'Europe/Londn' is not a known IANA time zone"),
        ({"kind": "weekly", "days": ["mon"], "time": "09:30", "timezone": ""}, "timezone", "choose a time zone"),
        ({"kind": "interval", "every": 0, "unit": "minutes"}, "every", "whole number from 1 to 1440"),
        ({"kind": "interval", "every": 1441, "unit": "minutes"}, "every", "from 1 to 1440"),
        ({"kind": "interval", "every": 169, "unit": "hours"}, "every", "from 1 to 168"),
        ({"kind": "interval", "every": 1.5, "unit": "hours"}, "every", "whole number"),
        ({"kind": "interval", "every": "15", "unit": "minutes"}, "every", "whole number"),
        ({"kind": "interval", "every": True, "unit": "minutes"}, "every", "whole number"),
        ({"kind": "interval", "every": 2, "unit": "days"}, "unit", "use minutes or hours"),
        ({"kind": "once", "at": "2026-12-01T09:00:00"}, "at", "needs a UTC offset"),
        ({"kind": "once", "at": "next tuesday"}, "at", "is not a date and time"),
        ({"kind": "once"}, "at", "give the date and time"),
        ({"kind": "cron", "expression": "0 0 12 ? * 8"}, "expression", "day of week: 8 is out of range 1-7 (SUN-SAT)"),
        ({"kind": "cron", "expression": "0 0 12 * * ?", "timezone": "Nowhere/Town"}, "timezone", "IANA"),
        ({"kind": "cron"}, "expression", "is empty"),
        ({"kind": "hourly"}, "kind", "use one of weekly, interval, cron, once"),
        ({}, "kind", "is not a schedule kind"),
        ("weekly", "kind", "must be a dict"),
    ],
)
def test_validation_names_the_field(spec, field, fragment):
    problems = validate(spec)
    assert problems and problems[0][0] == field, problems
    assert fragment in problems[0][1]
    with pytest.raises(ScheduleError) as info:
        build_trigger(spec)
    assert info.value.field == field


def test_validation_lists_every_problem_in_form_order():
    problems = validate({"kind": "weekly", "days": [], "time": "25:00", "timezone": "Mars/Base"})
    assert [field for field, _ in problems] == ["days", "time", "timezone"]


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "weekly", "days": ["mon"], "time": "09:30", "timezone": "Europe/London"},
        {"kind": "interval", "every": 1440, "unit": "minutes"},
        {"kind": "interval", "every": 168, "unit": "hours"},
        {"kind": "cron", "expression": "0 0 12 ? * MON-FRI", "timezone": "UTC"},
        {"kind": "once", "at": "2026-12-01T09:00:00+00:00"},
    ],
)
def test_valid_specs_have_no_problems(spec):
    assert validate(spec) == []


# -- the stored form ---------------------------------------------------------------

def test_normalize_gives_a_canonical_json_form():
    spec = {"kind": "weekly", "days": ["FRI", "monday", "fri"], "time": "7:05", "timezone": "Europe/London",
            "label": "ignored"}
    assert normalize(spec) == {"kind": "weekly", "days": ["mon", "fri"], "time": "07:05", "timezone": "Europe/London"}
    assert normalize({"kind": "interval", "every": 1, "unit": "hour"}) == {
        "kind": "interval", "every": 1, "unit": "hours", "timezone": "UTC"}
    assert normalize({"kind": "once", "at": "2026-12-01T09:00:00Z"}) == {
        "kind": "once", "at": "2026-12-01T09:00:00+00:00"}


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "weekly", "days": ["mon", "thu"], "time": "09:30", "timezone": "Europe/London"},
        {"kind": "interval", "every": 15, "unit": "minutes"},
        {"kind": "cron", "expression": "0 0 9 LW * ?", "timezone": "America/New_York"},
        {"kind": "once", "at": "2026-12-01T09:00:00+00:00"},
    ],
)
def test_specs_round_trip_through_json_and_pickle(spec):
    stored = json.loads(json.dumps(normalize(spec)))
    start = datetime(2026, 6, 1, tzinfo=UTC)
    expected = next_fire_times(spec, 5, start)
    assert expected
    assert next_fire_times(stored, 5, start) == expected
    trigger = pickle.loads(pickle.dumps(build_trigger(stored)))
    assert next_fire_times(trigger, 5, start) == expected


def test_cron_spec_uses_its_timezone():
    spec = {"kind": "cron", "expression": "0 0 9 * * ?", "timezone": "Europe/Berlin"}
    assert next_fire_times(spec, 1, datetime(2026, 7, 1, tzinfo=UTC)) == [datetime(2026, 7, 1, 7, tzinfo=UTC)]


# -- describe ------------------------------------------------------------------------

@pytest.mark.parametrize(
    "spec, text",
    [
        ({"kind": "weekly", "days": ["mon", "wed", "fri"], "time": "09:30", "timezone": "Europe/London"},
         "Every Monday, Wednesday and Friday at 09:30 (Europe/London)"),
        ({"kind": "weekly", "days": ["sun"], "time": "18:00"}, "Every Sunday at 18:00 (UTC)"),
        ({"kind": "weekly", "days": ["mon", "tue", "wed", "thu", "fri"], "time": "08:00"},
         "Every weekday (Monday to Friday) at 08:00 (UTC)"),
        ({"kind": "weekly", "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "time": "00:00"},
         "Every day at 00:00 (UTC)"),
        ({"kind": "interval", "every": 15, "unit": "minutes"}, "Every 15 minutes"),
        ({"kind": "interval", "every": 1, "unit": "hours"}, "Every hour"),
        ({"kind": "interval", "every": 2, "unit": "hours"}, "Every 2 hours"),
        ({"kind": "cron", "expression": "0 15 10 ? * 6L", "timezone": "UTC"},
         "At 10:15, on the last Friday of the month (UTC)"),
        ({"kind": "once", "at": "2026-12-01T09:00:00+00:00"}, "Once, at 2026-12-01 09:00 (UTC)"),
        ({"kind": "once", "at": "2026-07-01T09:00", "timezone": "Europe/London"},
         "Once, at 2026-07-01 09:00 (Europe/London)"),
    ],
)
def test_describe_spec(spec, text):
    assert describe_spec(spec) == text


def test_describe_spec_rejects_invalid_specs():
    with pytest.raises(ScheduleError) as info:
        describe_spec({"kind": "weekly", "days": [], "time": "09:30"})
    assert info.value.field == "days"
