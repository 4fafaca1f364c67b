"""Edit feed: the "unsaved changes" note appears only after a real change, and Discard
changes makes it go away for good."""

from app_pages.view_models import drafts, feed_editor
from core.feeds import FeedSpec, create_feed
from tests.ui.conftest import go_to_stage, labelled, new_app, texts

SCRIPT = "from lib import outputStream\noutputStream.write({'id': 1})\n"


def next_button(at):
    [found] = [b for b in at.button if b.label == "Next"]
    return found


def open_editor():
    create_feed(FeedSpec(name="orders", script=SCRIPT))
    return new_app("edit", feed="orders")


def no_draft_on_disk() -> bool:
    return not drafts.draft_exists(feed_editor.edit_draft_id("orders", "local"))


def test_walking_through_the_stages_is_not_a_change(tributary):
    at = open_editor()
    next_button(at).click().run()  # stage 2 with the stored script in the editor
    go_to_stage(at, 3)
    go_to_stage(at, 4)
    go_to_stage(at, 2)
    assert "Unsaved changes" not in texts(at)
    assert no_draft_on_disk()
    again = new_app("edit", feed="orders")
    assert "Unsaved changes" not in texts(again)


def test_a_real_change_is_kept_and_discarding_it_keeps_the_note_away(tributary):
    at = open_editor()
    next_button(at).click().run()
    labelled(at.radio, "Load Type").set_value("truncate_insert").run()
    again = new_app("edit", feed="orders")
    assert "Unsaved changes to orders" in texts(again)
    [discard] = [b for b in again.button if b.label == "Discard changes"]
    discard.click().run()
    assert no_draft_on_disk()
    next_button(again).click().run()
    go_to_stage(again, 4)
    assert "Unsaved changes" not in texts(again)
    assert no_draft_on_disk()
    assert "Unsaved changes" not in texts(new_app("edit", feed="orders"))


def test_undoing_a_change_drops_the_draft(tributary):
    at = open_editor()
    next_button(at).click().run()
    labelled(at.radio, "Load Type").set_value("truncate_insert").run()
    assert not no_draft_on_disk()
    labelled(at.radio, "Load Type").set_value("incremental").run()
    assert no_draft_on_disk()


def test_a_draft_left_with_no_change_in_it_is_dropped_on_opening(tributary):
    create_feed(FeedSpec(name="orders", script=SCRIPT))
    leftover = feed_editor.draft_for_feed("orders", "local")
    leftover.stage = 2  # what an older version saved on a mere click through the stages
    feed_editor.persist(leftover)
    at = new_app("edit", feed="orders")
    assert "Unsaved changes" not in texts(at)
    assert no_draft_on_disk()
