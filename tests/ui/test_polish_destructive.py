"""Destructive actions ask first: Start over, deleting a feed with its data (type its name),
and no connection can be deleted from inside the feed editor."""

from app_pages.view_models import drafts, feed_editor
from core.bootstrap import start_run
from core.connections import create_connection
from core.feeds import FeedSpec, create_feed, list_feeds
from tests.ui.conftest import button, current_draft, labelled, texts

THREE = "from lib import outputStream\nfor i in range(3):\n    outputStream.write({'id': i})\n"
SCRIPT = "from lib import outputStream\noutputStream.write({'kept': True})\n"


def test_start_over_asks_first_and_cancel_keeps_the_draft(app):
    kept = feed_editor.new_draft("local")
    kept.script = SCRIPT
    feed_editor.persist(kept)
    draft_id = kept.id
    at = app("new", draft=draft_id)
    button(at, "Start over").click().run()
    assert "This cannot be undone." in texts(at)
    button(at, "Cancel").click().run()
    assert current_draft(at).id == draft_id and drafts.draft_exists(draft_id)
    assert current_draft(at).script == SCRIPT
    button(at, "Start over").click().run()
    button(at, "Yes, start over").click().run()
    assert current_draft(at).id != draft_id and not drafts.draft_exists(draft_id)


def test_deleting_a_feed_with_its_data_needs_its_name_typed(app):
    create_feed(FeedSpec(name="refunds", script=THREE))
    start_run("refunds", wait=True)
    at = app("feeds")
    [delete] = [b for b in at.button if b.label == "Delete"]
    delete.click().run()
    assert not button(at, "Yes, delete").disabled  # keeping the data: a plain confirmation
    labelled(at.checkbox, "Also delete its data in the warehouse").check().run()
    assert "the data cannot be recovered" in texts(at)
    assert button(at, "Yes, delete").disabled
    field = labelled(at.text_input, "Type refunds to delete the feed with its data")
    field.set_value("refund").run()
    assert button(at, "Yes, delete").disabled
    labelled(at.text_input, "Type refunds to delete the feed with its data").set_value("refunds").run()
    button(at, "Yes, delete").click().run()
    assert "Feed refunds deleted with its data." in texts(at)
    assert [f.name for f in list_feeds()] == []


def test_stage_1_offers_no_delete_of_a_connection(app):
    create_connection("Public", "none")
    at = app("new")
    labelled(at.selectbox, "Select Connection").set_value("Public").run()
    assert "Delete connection" not in [b.label for b in at.button]
    assert "Manage connections" in [link.label for link in at.get("page_link")]
