"""Edit feed: the same four stages over a saved feed; its name cannot change, its stored
script counts as tested, its trigger is kept, and SAVE updates it."""

from core.feeds import FeedSpec, create_feed, get_feed
from core.triggers import describe
from tests.ui.conftest import ace_editors, button, labelled, landed_on, texts

SCRIPT = "from lib import outputStream\noutputStream.write({'id': 1})\n"
SCHEDULE = {"type": "schedule", "schedule": {"kind": "interval", "every": 2, "unit": "hours"}}


def open_editor(app, name="orders"):
    return app("edit", feed=name)


def test_there_is_nothing_to_edit_before_the_first_feed(app):
    at = app("edit")
    assert "There is no feed to edit yet." in texts(at)


def test_the_feed_opens_with_its_settings_and_a_read_only_name(app):
    create_feed(FeedSpec(name="orders", script=SCRIPT, dependencies=["six"], tags=["sales"], load_type="upsert",
                         primary_key=["id"]))
    at = open_editor(app)
    assert labelled(at.selectbox, "Feed").value == "orders"
    button(at, "Next").click().run()
    assert ace_editors(at)[0]["defaultValue"] == SCRIPT
    assert labelled(at.multiselect, "Install Dependency").value == ["six"]
    assert labelled(at.radio, "Load Type").value == "upsert"
    name = labelled(at.text_input, "Feed Name")
    assert name.disabled and name.value == "orders"
    assert not button(at, "Next").disabled  # the stored script was in use: no test needed


def test_a_changed_script_must_be_tested_again(app):
    create_feed(FeedSpec(name="orders", script=SCRIPT))
    at = open_editor(app)
    button(at, "Next").click().run()
    type_script_in_edit(at, SCRIPT + "print('more')\n")
    assert button(at, "Next").disabled


def type_script_in_edit(at, script):
    draft = at.session_state["editor:edit-draft"]
    generation = at.session_state["editor:ace-generation"] if "editor:ace-generation" in at.session_state else 0
    at.session_state[f"{draft.id}:script:{generation}"] = script
    return at.run()


def test_save_updates_the_feed_and_keeps_its_schedule(app):
    create_feed(FeedSpec(name="orders", script=SCRIPT, trigger=SCHEDULE))
    at = open_editor(app)
    button(at, "Next").click().run()
    labelled(at.radio, "Load Type").set_value("truncate_insert").run()
    button(at, "Next").click().run()
    button(at, "Next").click().run()
    # The feed's own schedule shows, ready to be changed or kept.
    assert labelled(at.radio, "Run this feed").value == "schedule"
    assert labelled(at.radio, "Repeat").value == "interval"
    assert (labelled(at.number_input, "Every").value, labelled(at.selectbox, "Unit").value) == (2, "hours")
    assert describe(SCHEDULE) in texts(at)
    button(at, "Save").click().run()
    assert "Feed orders saved." in texts(at)
    landed_on(at, "feeds", "Feeds")
    feed = get_feed("orders")
    assert feed.load_type == "truncate_insert"
    assert feed.trigger == SCHEDULE


def test_unsaved_changes_are_kept_until_discarded(app):
    create_feed(FeedSpec(name="orders", script=SCRIPT))
    at = open_editor(app)
    button(at, "Next").click().run()
    labelled(at.radio, "Load Type").set_value("truncate_insert").run()
    again = open_editor(app)
    assert "Unsaved changes to orders" in texts(again)
    assert labelled(again.radio, "Load Type").value == "truncate_insert"
    button(again, "Discard changes").click().run()
    assert "Unsaved changes" not in texts(again)
    button(again, "Next").click().run()
    assert labelled(again.radio, "Load Type").value == "incremental"
    assert get_feed("orders").load_type == "incremental"


def test_saving_keeps_what_the_editor_does_not_show(app):
    create_feed(FeedSpec(name="orders", script=SCRIPT, retries=3, retry_backoff_s=120, timeout_s=600))
    at = open_editor(app)
    for _ in range(3):
        button(at, "Next").click().run()
    button(at, "Save").click().run()
    feed = get_feed("orders")
    assert (feed.retries, feed.retry_backoff_s, feed.timeout_s) == (3, 120, 600)
