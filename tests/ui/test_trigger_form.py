"""Stage 4's trigger form without a browser: the trigger each choice makes, the problems
named by field, the preview (valid or not, in words, the next 5 fire times), and the
webhook, watcher and retry texts the stage shows. `now` is fixed, so every time is exact."""

from datetime import datetime, timezone

import pytest

from app_pages.view_models import trigger_form as tf
from core.schedules import next_fire_times
from core.triggers import next_fire

NOW = datetime(2026, 11, 26, 13, 0, tzinfo=timezone.utc)  # a Thursday


def form(**values) -> dict:
    return {**tf.default_form(NOW), **values}


def test_a_new_form_means_manual_with_every_other_choice_ready():
    assert tf.trigger_from_form(tf.default_form(NOW), NOW) == ({"type": "manual"}, [])
    ready = tf.default_form(NOW)
    assert (ready["timezone"], ready["date"]) == ("UTC", "2026-11-27")
    assert ready["days"] == ["mon", "tue", "wed", "thu", "fri"]


def test_basic_weekly_makes_the_schedule_and_previews_those_days_at_that_time():
    chosen = form(type="schedule", schedule_mode="basic", basic_kind="weekly", days=["fri", "mon"], time="09:30",
                  timezone="Europe/London")
    trigger, problems = tf.trigger_from_form(chosen, NOW)
    assert problems == []
    assert trigger == {"type": "schedule", "schedule": {"kind": "weekly", "days": ["mon", "fri"], "time": "09:30",
                                                         "timezone": "Europe/London"}}
    preview = tf.preview(chosen, NOW)
    assert preview.description == "Every Monday and Friday at 09:30 (Europe/London)"
    assert preview.fire_times == [
        "Fri 2026-11-27 09:30 Europe/London (09:30 UTC)", "Mon 2026-11-30 09:30 Europe/London (09:30 UTC)",
        "Fri 2026-12-04 09:30 Europe/London (09:30 UTC)", "Mon 2026-12-07 09:30 Europe/London (09:30 UTC)",
        "Fri 2026-12-11 09:30 Europe/London (09:30 UTC)",
    ]
    # What the preview promises is what the scheduler does.
    assert next_fire(trigger, NOW) == datetime(2026, 11, 27, 9, 30, tzinfo=timezone.utc)


def test_basic_weekly_without_a_day_names_the_field():
    trigger, problems = tf.trigger_from_form(form(type="schedule", days=[]), NOW)
    assert trigger is None
    assert problems == [("days of the week", "choose at least one day of the week")]


def test_basic_interval_runs_on_round_times_and_names_its_limit():
    chosen = form(type="schedule", schedule_mode="basic", basic_kind="interval", every=2, unit="hours")
    assert tf.trigger_from_form(chosen, NOW)[0] == {"type": "schedule",
                                                    "schedule": {"kind": "interval", "every": 2, "unit": "hours"}}
    preview = tf.preview(chosen, NOW)
    assert preview.description == "Every 2 hours"
    assert preview.fire_times == [f"Thu 2026-11-26 {h}:00 UTC" for h in (14, 16, 18, 20, 22)]
    too_long = tf.preview({**chosen, "every": 200}, NOW)
    assert too_long.problems == [("every", "every 200 hours: use a whole number from 1 to 168")]
    assert too_long.fire_times == []


def test_a_valid_cron_expression_is_described_with_its_next_5_times_in_its_zone():
    chosen = form(type="schedule", schedule_mode="advanced", expression="0 0 12 1 * ? 2099", timezone="Europe/London")
    preview = tf.preview(chosen, NOW)
    assert preview.ok and preview.cron.ok and preview.cron.dialect == "Quartz"
    assert preview.description == "At 12:00, on day 1 of the month, only in 2099 (Europe/London)"
    assert preview.fire_times == [  # London's summer time shows beside UTC
        "Thu 2099-01-01 12:00 Europe/London (12:00 UTC)", "Sun 2099-02-01 12:00 Europe/London (12:00 UTC)",
        "Sun 2099-03-01 12:00 Europe/London (12:00 UTC)", "Wed 2099-04-01 12:00 Europe/London (11:00 UTC)",
        "Fri 2099-05-01 12:00 Europe/London (11:00 UTC)",
    ]
    assert tf.trigger_from_form(chosen, NOW)[0]["schedule"] == {
        "kind": "cron", "expression": "0 0 12 1 * ? 2099", "timezone": "Europe/London"}


def test_a_five_field_unix_expression_is_accepted_too():
    preview = tf.preview(form(type="schedule", schedule_mode="advanced", expression="*/15 * * * *"), NOW)
    assert preview.cron.ok and preview.cron.dialect == "Unix"
    assert preview.description == "Every 15 minutes (UTC)"
    assert preview.fire_times[:2] == ["Thu 2026-11-26 13:15 UTC", "Thu 2026-11-26 13:30 UTC"]


@pytest.mark.parametrize(("expression", "field", "message"), [
    ("0 0 9 ? * 8", "day of week", "the day of week field: 8 is out of range 1-7 (SUN-SAT)"),
    ("0 0 25 * * ?", "hours", "the hours field: 25 is out of range 0-23"),
    ("0 61 * * * ?", "minutes", "the minutes field: 61 is out of range 0-59"),
    ("0 0 9 * * MON", "day of month and day of week", "the day of month and day of week field: one of them must be "
                                                      "'?', e.g. '0 0 12 * * ?' (every day) or '0 0 12 ? * MON'"),
])
def test_an_invalid_cron_expression_names_the_field_at_fault(expression, field, message):
    preview = tf.preview(form(type="schedule", schedule_mode="advanced", expression=expression), NOW)
    assert not preview.cron.ok and preview.cron.field == field
    assert preview.problems == [("cron expression", message)]
    assert preview.description == "" and preview.fire_times == []


def test_a_cron_expression_with_the_wrong_shape_says_so():
    for expression, message in [("", "the expression is empty"), ("0 0 9", "expected 6 or 7 fields")]:
        check = tf.check_cron(expression)
        assert not check.ok and check.field is None and check.message.startswith(message)


def test_a_schedule_that_never_fires_again_is_refused():
    trigger, problems = tf.trigger_from_form(
        form(type="schedule", schedule_mode="advanced", expression="0 0 9 ? * MON-FRI 2020"), NOW)
    assert trigger is None and problems[0][0] == "schedule" and "never fires" in problems[0][1]


def test_an_unknown_time_zone_is_named():
    _, problems = tf.trigger_from_form(form(type="schedule", timezone="Mars/Olympus"), NOW)
    assert problems == [("time zone", "'Mars/Olympus' is not a known IANA time zone "
                                      "(e.g. UTC, Europe/London, America/New_York)")]


def test_run_once_at_a_date_and_time_in_a_zone():
    chosen = form(type="once", once_mode="at", date="2099-06-01", at_time="10:00", timezone="Europe/Paris")
    trigger, problems = tf.trigger_from_form(chosen, NOW)
    assert problems == []
    assert trigger == {"type": "once", "schedule": {"kind": "once", "at": "2099-06-01T10:00:00+02:00",
                                                     "timezone": "Europe/Paris"}}
    preview = tf.preview(chosen, NOW)
    assert preview.description == "Once, at 2099-06-01 10:00 (Europe/Paris)"
    assert preview.fire_times == ["Mon 2099-06-01 10:00 Europe/Paris (08:00 UTC)"]
    assert tf.form_from_trigger(trigger, NOW) == chosen  # an edited feed opens on what was saved


def test_run_once_in_the_past_is_refused():
    trigger, problems = tf.trigger_from_form(form(type="once", once_mode="at", date="2026-11-26", at_time="12:59"), NOW)
    assert trigger is None
    assert problems == [("date and time", "2026-11-26 12:59 (UTC) has passed: choose a later time, or Manual")]


def test_webhook_and_manual_need_nothing_more():
    assert tf.trigger_from_form(form(type="webhook"), NOW) == ({"type": "webhook"}, [])
    assert tf.trigger_from_form(form(type="once", once_mode="manual"), NOW) == ({"type": "manual"}, [])
    assert "Run now" in tf.preview(form(type="once", once_mode="manual"), NOW).description


@pytest.mark.parametrize("trigger", [
    {"type": "manual"},
    {"type": "webhook"},
    {"type": "schedule",
     "schedule": {"kind": "weekly", "days": ["tue", "sat"], "time": "07:05", "timezone": "Asia/Tokyo"}},
    {"type": "schedule", "schedule": {"kind": "interval", "every": 45, "unit": "minutes"}},
    {"type": "schedule", "schedule": {"kind": "cron", "expression": "0 15 10 ? * 6#3", "timezone": "UTC"}},
])
def test_a_stored_trigger_opens_in_the_form_and_saves_back_unchanged(trigger):
    assert tf.trigger_from_form(tf.form_from_trigger(trigger, NOW), NOW) == (trigger, [])


def test_switching_choices_keeps_what_was_typed_in_the_others():
    typed = form(type="schedule", schedule_mode="advanced", expression="0 30 6 ? * SUN")
    as_webhook = {**typed, "type": "webhook"}
    back = {**as_webhook, "type": "schedule"}
    assert tf.trigger_from_form(back, NOW)[0]["schedule"]["expression"] == "0 30 6 ? * SUN"


def test_the_fire_times_shown_are_the_schedules_own():
    spec = {"kind": "cron", "expression": "0 0/20 8-9 ? * MON-FRI", "timezone": "America/New_York"}
    shown = tf.preview(form(type="schedule", schedule_mode="advanced", expression=spec["expression"],
                            timezone=spec["timezone"]), NOW).fire_times
    expected = [tf.format_fire_time(t, spec["timezone"]) for t in next_fire_times(spec, 5, start=NOW)]
    assert shown == expected and shown[0] == "Thu 2026-11-26 08:20 America/New_York (13:20 UTC)"


def test_time_zones_start_with_utc_and_hold_the_usual_names():
    zones = tf.timezone_choices()
    assert zones[0] == "UTC" and {"Europe/London", "America/New_York", "Asia/Kolkata"} <= set(zones)


def test_the_curl_example_sends_the_token_header():
    assert tf.curl_example("http://h/api/feeds/f/trigger") == (
        'curl -X POST "http://h/api/feeds/f/trigger" \\\n  -H "X-Tributary-Token: $TRIBUTARY_TOKEN" \\\n'
        "  -H \"Content-Type: application/json\" \\\n  -d '{}'")
    assert '-H "X-Tributary-Token: s3cret"' in tf.curl_example("http://h/x", "s3cret")


def test_a_new_token_is_handed_over_once_and_only_to_its_owner():
    tf.hold_new_token("ana", "orders", "t1")
    assert tf.take_new_tokens("bo") == []
    assert tf.take_new_tokens("ana") == [("orders", "t1")]
    assert tf.take_new_tokens("ana") == []


def test_watcher_problems_are_given_per_field():
    empty = tf.new_watcher([], "email", "", None)
    assert set(tf.watcher_field_problems(empty)) == {"events", "target"}
    bad_email = tf.new_watcher(["failed"], "email", "not-an-email", None)
    assert tf.watcher_field_problems(bad_email) == {
        "target": ["'not-an-email' is not an email address (like ops@example.com)"]}
    no_minutes = tf.new_watcher(["long_run"], "webhook", "https://example.com/hook", None)
    assert list(tf.watcher_field_problems(no_minutes)) == ["long run minutes"]
    assert tf.watchers_problems([tf.new_watcher(["failed"], "email", "a@b.co", None), bad_email]) == [
        ("watcher 2 target", "'not-an-email' is not an email address (like ops@example.com)")]


def test_a_watcher_reads_as_a_sentence_and_keeps_minutes_only_for_long_runs():
    watcher = tf.new_watcher(["long_run", "failed"], "email", " ops@example.com ", 30)
    assert watcher == {"id": None, "events": ["failed", "long_run"], "channel": "email", "target": "ops@example.com",
                       "longer_than_minutes": 30}
    assert tf.describe_watcher(watcher) == "Email ops@example.com when: run failed, run took longer than 30 minutes"
    assert tf.new_watcher(["failed"], "email", "a@b.co", 30)["longer_than_minutes"] is None


def test_the_retry_plan_spells_out_the_waits():
    assert tf.retry_plan(0, 60) == "A failed run is not tried again."
    assert tf.retry_plan(1, 60) == "A failed run is tried again once, waiting 60 s."
    assert tf.retry_plan(3, 30) == ("A failed run is tried again up to 3 times, waiting 30 s, 60 s and 2 min "
                                    "(each wait twice the one before).")
    assert tf.retry_problems(11, 0) == [("retries", "must be between 0 and 10"),
                                        ("first retry delay", "must be between 1 second and 1 day (86400 s)")]
