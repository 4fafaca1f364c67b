"""Stage 4, Trigger: each kind of trigger as the user sets it up (manual, a basic weekly or
interval schedule, an advanced cron expression with its live check and preview, run once, a
webhook with its token shown once and regenerated), watchers added and removed with their
messages per field, retries and the no-network option, and SAVE that writes all of it."""

from datetime import date, datetime, time, timedelta, timezone

import pytest

from app_pages.view_models import feed_editor
from core.feeds import FeedSpec, create_feed, get_feed
from core.schedule_slots import next_fire_of
from app_pages.view_models.trigger_form import format_fire_time
from core.watchers import list_watchers
from core.webhooks import handle_trigger, regenerate_token
from tests.ui.conftest import button, errors, labelled, landed_on, new_app, texts, wait_for_runs

SCRIPT = "from lib import outputStream\noutputStream.write({'id': 1})\n"


def new_feed_at_trigger_stage(app, name="orders"):
    """A new feed whose first three stages are done (its script passed its test), as a
    draft the user comes back to."""
    draft = feed_editor.new_draft("local")
    draft.script, draft.feed_name, draft.stage = SCRIPT, name, 3
    draft.last_test = {"ok": True, "fingerprint": feed_editor.fingerprint(draft), "records": [], "logs": []}
    feed_editor.persist(draft)
    at = app("new", draft=draft.id)
    assert [s.value for s in at.subheader] == ["Trigger"]
    return at


def edit_at_trigger_stage(app, name="orders"):
    at = app("edit", feed=name)
    for _ in range(3):
        button(at, "Next").click().run()
    assert [s.value for s in at.subheader] == ["Trigger"]
    return at


def save(at):
    button(at, "Save").click().run()
    assert not at.exception, at.exception
    return landed_on(at, "feeds", "Feeds")


def pills(at, label):
    [found] = [b for b in at.button_group if b.proto.label == label]
    return found


def next_runs(at) -> list[str]:
    """The preview's list of next fire times, as shown."""
    found = [m.value for m in at.markdown if m.value.startswith(("Next 5 runs:", "Next run:"))]
    return [line[2:].replace("\\", "") for line in found[0].splitlines()[1:]] if found else []


def shown_tokens(at) -> list[str]:
    return [c.value for c in at.code if not c.value.startswith(("POST ", "curl "))]


# ---------------------------------------------------------------- trigger types


def test_a_new_feed_runs_manually_unless_told_otherwise(app):
    at = new_feed_at_trigger_stage(app)
    assert labelled(at.radio, "Run this feed").options == ["Schedule", "Run once", "Webhook"]
    assert labelled(at.radio, "Run this feed").value == "once"
    assert labelled(at.radio, "Run once").value == "manual"
    assert "runs when someone clicks Run now" in texts(at)
    save(at)
    feed = get_feed("orders")
    assert feed.trigger == {"type": "manual"}
    assert next_fire_of(feed.id) is None


def test_a_basic_weekly_schedule_shows_its_next_runs_and_is_scheduled_on_save(app):
    at = new_feed_at_trigger_stage(app)
    labelled(at.radio, "Run this feed").set_value("schedule").run()
    assert labelled(at.radio, "Schedule").value == "basic"
    assert labelled(at.radio, "Repeat").value == "weekly"
    pills(at, "Days of the week").set_value(["mon", "fri"]).run()
    labelled(at.time_input, "Time of day").set_value(time(9, 30)).run()
    labelled(at.selectbox, "Time zone").set_value("Europe/London").run()
    assert "Every Monday and Friday at 09:30 (Europe/London)" in texts(at)
    shown = next_runs(at)
    assert len(shown) == 5
    assert all(t[:3] in ("Mon", "Fri") and " 09:30 Europe/London" in t for t in shown), shown
    save(at)
    feed = get_feed("orders")
    assert feed.trigger == {"type": "schedule", "schedule": {"kind": "weekly", "days": ["mon", "fri"],
                                                              "time": "09:30", "timezone": "Europe/London"}}
    first = next_fire_of(feed.id)
    assert shown[0] == format_fire_time(first, "Europe/London")  # the preview's first run is the scheduler's


def test_a_weekly_schedule_needs_a_day(app):
    at = new_feed_at_trigger_stage(app)
    labelled(at.radio, "Run this feed").set_value("schedule").run()
    pills(at, "Days of the week").set_value([]).run()
    assert "Days of the week: choose at least one day of the week" in texts(at)
    assert button(at, "Save").disabled


def test_a_basic_interval_schedule_and_its_limit(app):
    at = new_feed_at_trigger_stage(app)
    labelled(at.radio, "Run this feed").set_value("schedule").run()
    labelled(at.radio, "Repeat").set_value("interval").run()
    labelled(at.selectbox, "Unit").set_value("hours").run()
    labelled(at.number_input, "Every").set_value(200).run()
    assert "Every: every 200 hours: use a whole number from 1 to 168" in texts(at)
    assert next_runs(at) == [] and button(at, "Save").disabled
    labelled(at.number_input, "Every").set_value(2).run()
    assert "**Every 2 hours**" in texts(at)
    shown = next_runs(at)
    assert len(shown) == 5 and all(int(t.split()[2][:2]) % 2 == 0 and t.split()[2].endswith(":00") for t in shown)
    save(at)
    assert get_feed("orders").trigger == {"type": "schedule", "schedule": {"kind": "interval", "every": 2,
                                                                           "unit": "hours"}}


def test_an_advanced_cron_expression_is_checked_described_and_previewed_while_typing(app):
    at = new_feed_at_trigger_stage(app)
    labelled(at.radio, "Run this feed").set_value("schedule").run()
    labelled(at.radio, "Schedule").set_value("advanced").run()
    field = labelled(at.text_input, "Cron expression")
    assert field.proto.live_debounce_ms > 0  # checked as the user types, not only on Enter
    field.set_value("0 0 12 1 * ? 2099").run()
    labelled(at.selectbox, "Time zone").set_value("Europe/London").run()
    page = texts(at)
    assert "Valid Quartz cron expression" in page
    assert "At 12:00, on day 1 of the month, only in 2099 (Europe/London)" in page
    assert next_runs(at) == [
        "Thu 2099-01-01 12:00 Europe/London (12:00 UTC)", "Sun 2099-02-01 12:00 Europe/London (12:00 UTC)",
        "Sun 2099-03-01 12:00 Europe/London (12:00 UTC)", "Wed 2099-04-01 12:00 Europe/London (11:00 UTC)",
        "Fri 2099-05-01 12:00 Europe/London (11:00 UTC)",
    ]
    save(at)
    feed = get_feed("orders")
    assert feed.trigger["schedule"] == {"kind": "cron", "expression": "0 0 12 1 * ? 2099", "timezone": "Europe/London"}
    assert next_fire_of(feed.id) == datetime(2099, 1, 1, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(("expression", "message"), [
    ("0 0 9 ? * 8", "Not valid: the day of week field: 8 is out of range 1-7 (SUN-SAT)"),
    ("0 0 25 * * ?", "Not valid: the hours field: 25 is out of range 0-23"),
    ("0 0 9", "Not valid: expected 6 or 7 fields"),
])
def test_an_invalid_cron_expression_names_its_field_and_cannot_be_saved(app, expression, message):
    at = new_feed_at_trigger_stage(app)
    labelled(at.radio, "Run this feed").set_value("schedule").run()
    labelled(at.radio, "Schedule").set_value("advanced").run()
    labelled(at.text_input, "Cron expression").set_value(expression).run()
    assert message in texts(at)
    assert "Valid Quartz" not in texts(at) and next_runs(at) == []
    assert button(at, "Save").disabled


def test_a_unix_expression_is_accepted(app):
    at = new_feed_at_trigger_stage(app)
    labelled(at.radio, "Run this feed").set_value("schedule").run()
    labelled(at.radio, "Schedule").set_value("advanced").run()
    labelled(at.text_input, "Cron expression").set_value("*/15 * * * *").run()
    assert "Valid Unix cron expression" in texts(at) and "Every 15 minutes (UTC)" in texts(at)
    assert len(next_runs(at)) == 5 and not button(at, "Save").disabled


def test_run_once_at_a_date_and_time_in_a_time_zone(app):
    at = new_feed_at_trigger_stage(app)
    labelled(at.radio, "Run once").set_value("at").run()
    labelled(at.date_input, "Date").set_value(date.today() - timedelta(days=1)).run()
    labelled(at.time_input, "Time").set_value(time(0, 0)).run()
    assert "has passed: choose a later time, or Manual" in texts(at)
    assert button(at, "Save").disabled
    labelled(at.date_input, "Date").set_value(date(2099, 6, 1)).run()
    labelled(at.time_input, "Time").set_value(time(10, 0)).run()
    labelled(at.selectbox, "Time zone").set_value("Europe/Paris").run()
    assert "Once, at 2099-06-01 10:00 (Europe/Paris)" in texts(at)
    assert next_runs(at) == ["Mon 2099-06-01 10:00 Europe/Paris (08:00 UTC)"]
    save(at)
    feed = get_feed("orders")
    assert feed.trigger == {"type": "once", "schedule": {"kind": "once", "at": "2099-06-01T10:00:00+02:00",
                                                          "timezone": "Europe/Paris"}}
    assert next_fire_of(feed.id) == datetime(2099, 6, 1, 8, 0, tzinfo=timezone.utc)


def test_switching_trigger_types_keeps_what_was_typed_and_a_reload_keeps_it_too(app):
    at = new_feed_at_trigger_stage(app)
    labelled(at.radio, "Run this feed").set_value("schedule").run()
    labelled(at.radio, "Schedule").set_value("advanced").run()
    labelled(at.text_input, "Cron expression").set_value("0 30 6 ? * SUN").run()
    labelled(at.radio, "Run this feed").set_value("webhook").run()
    labelled(at.radio, "Run this feed").set_value("schedule").run()
    assert labelled(at.text_input, "Cron expression").value == "0 30 6 ? * SUN"
    again = new_app("new", draft=at.session_state["editor:new-draft"].id)  # a reload: a new session
    assert labelled(again.radio, "Run this feed").value == "schedule"
    assert labelled(again.text_input, "Cron expression").value == "0 30 6 ? * SUN"


# ---------------------------------------------------------------- webhook


def test_a_new_webhook_feed_gets_its_token_on_save_shown_once(app):
    at = new_feed_at_trigger_stage(app)
    labelled(at.radio, "Run this feed").set_value("webhook").run()
    page = texts(at)
    assert "POST http://127.0.0.1:8501/api/feeds/orders/trigger" in page
    assert '-H "X-Tributary-Token: $TRIBUTARY_TOKEN"' in page
    assert "409 when a run of this feed is already in progress" in page
    assert "generated when you Save, and shown once" in page
    at = save(at)
    [token] = shown_tokens(at)
    assert f'-H "X-Tributary-Token: {token}"' in texts(at)  # the curl example, ready to paste
    assert handle_trigger("orders", "not-the-token", None)[0] == 401
    status, body = handle_trigger("orders", token, {"order": 7})
    assert status == 202
    assert wait_for_runs("orders").id == body["run_id"]
    at.run()
    assert shown_tokens(at) == [token]  # still there until the user has copied it
    button(at, "I have copied it: hide the token").click().run()
    assert shown_tokens(at) == []
    assert shown_tokens(new_app("feeds")) == []  # and never again


def test_regenerating_a_token_shows_the_new_one_and_the_old_one_stops_working(app):
    create_feed(FeedSpec(name="orders", script=SCRIPT, trigger={"type": "webhook"}))
    old = regenerate_token("orders")
    at = edit_at_trigger_stage(app)
    assert labelled(at.radio, "Run this feed").value == "webhook"
    assert "cannot show it again" in texts(at) and shown_tokens(at) == []
    button(at, "Regenerate token").click().run()
    assert "calls with the old token are refused" in texts(at)
    assert handle_trigger("orders", old, None)[0] != 401  # nothing changed before the confirmation
    wait_for_runs("orders")
    button(at, "Yes, regenerate the token").click().run()
    [new] = shown_tokens(at)
    assert new != old
    assert handle_trigger("orders", old, None)[0] == 401
    assert handle_trigger("orders", new, None)[0] == 202
    wait_for_runs("orders")
    button(at, "I have copied it: hide the token").click().run()
    assert shown_tokens(at) == [] and "cannot show it again" in texts(at)


# ---------------------------------------------------------------- watchers


def add_watcher_form(at, events, target, channel="email", minutes=None):
    labelled(at.multiselect, "Events").set_value(events).run()
    if minutes is not None:
        labelled(at.number_input, "Longer than (minutes)").set_value(minutes).run()
    labelled(at.radio, "Channel").set_value(channel).run()
    labelled(at.text_input, "Email address" if channel == "email" else "Webhook URL").set_value(target).run()
    return button(at, "Add watcher").click().run()


def test_watchers_are_checked_field_by_field_added_removed_and_saved(app):
    at = new_feed_at_trigger_stage(app)
    button(at, "Add watcher").click().run()
    page = texts(at)
    assert "Events: choose at least one: run succeeded, run failed" in page
    assert "Email address: is required" in page

    at = add_watcher_form(at, ["failed", "long_run"], "not-an-email")
    page = texts(at)
    assert "Events: choose" not in page  # fixed fields stop complaining
    assert "Minutes: a long-run watcher needs a whole number of minutes, at least 1" in page
    assert "Email address: 'not-an-email' is not an email address (like ops@example.com)" in page
    at = add_watcher_form(at, ["failed", "long_run"], "ops@example.com", minutes=30)
    assert "Email ops@example.com when: run failed, run took longer than 30 minutes" in texts(at)
    assert labelled(at.multiselect, "Events").value == []  # the form is ready for the next one
    assert "is required" not in texts(at)

    at = add_watcher_form(at, ["succeeded", "no_records"], "ftp://example.com", channel="webhook")
    assert "Webhook URL: must be an http:// or https:// URL" in texts(at)
    at = add_watcher_form(at, ["succeeded", "no_records"], "https://example.com/hooks/tributary", channel="webhook")
    assert "Watchers** (2 watchers)" in texts(at)
    [first_remove, _] = [b for b in at.button if b.label == "Remove"]
    first_remove.click().run()
    assert "ops@example.com" not in texts(at)
    save(at)
    [watcher] = list_watchers("orders")
    assert (watcher.events, watcher.channel, watcher.target) == (
        ["succeeded", "no_records"], "webhook", "https://example.com/hooks/tributary")


def test_an_edited_feed_shows_its_watchers_and_changes_them_on_save_only(app):
    from core.watchers import add_watcher

    create_feed(FeedSpec(name="orders", script=SCRIPT))
    add_watcher("orders", ["failed"], "email", "ops@example.com")
    at = edit_at_trigger_stage(app)
    assert "Email ops@example.com when: run failed" in texts(at) and "added when you Save" not in texts(at)
    button(at, "Remove").click().run()
    add_watcher_form(at, ["succeeded"], "https://example.com/hook", channel="webhook")
    assert [w.target for w in list_watchers("orders")] == ["ops@example.com"]  # nothing changes before SAVE
    save(at)
    assert [(w.events, w.target) for w in list_watchers("orders")] == [(["succeeded"], "https://example.com/hook")]


def test_a_failed_save_keeps_everything_and_saving_again_finishes_the_job(app, monkeypatch):
    at = new_feed_at_trigger_stage(app)
    add_watcher_form(at, ["failed"], "ops@example.com")
    add_watcher_form(at, ["succeeded"], "https://example.com/hook", channel="webhook")
    real = feed_editor.add_watcher
    calls = []

    def store_fails_on_the_second(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise OSError("the store is unreachable")
        return real(*args, **kwargs)

    monkeypatch.setattr(feed_editor, "add_watcher", store_fails_on_the_second)
    button(at, "Save").click().run()
    assert any("feed orders was saved, but not all of its watchers and webhook token (the store is unreachable); "
               "Save again to finish" in e for e in errors(at))
    assert "Watchers** (2 watchers)" in texts(at)  # nothing typed is lost
    monkeypatch.setattr(feed_editor, "add_watcher", real)
    save(at)
    assert [w.target for w in list_watchers("orders")] == ["ops@example.com", "https://example.com/hook"]


# ---------------------------------------------------------------- retries and network


def test_retries_with_backoff_and_running_without_network(app):
    at = new_feed_at_trigger_stage(app)
    assert "A failed run is not tried again." in texts(at)
    labelled(at.number_input, "Retry attempts").set_value(3).run()
    labelled(at.number_input, "First retry after (seconds)").set_value(30).run()
    assert "tried again up to 3 times, waiting 30 s, 60 s and 2 min" in texts(at)
    labelled(at.checkbox, "Run without network").check().run()
    from app_pages.view_models.settings_view import network_can_be_cut

    # The bubblewrap sandbox can take it away; without bubblewrap the page says it cannot.
    assert ("cannot take the network away" in texts(at)) is not network_can_be_cut()
    save(at)
    feed = get_feed("orders")
    assert (feed.retries, feed.retry_backoff_s, feed.network) == (3, 30, False)


def test_running_without_network_on_a_runner_that_cannot_take_it_away_says_so(app, monkeypatch):
    monkeypatch.setenv("TRIBUTARY_RUNNER", "subprocess-unisolated")
    at = new_feed_at_trigger_stage(app)
    labelled(at.checkbox, "Run without network").check().run()
    assert "subprocess-unisolated runner, which cannot take the network away" in texts(at)
