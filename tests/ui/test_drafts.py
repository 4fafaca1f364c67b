"""The feed being edited is a draft on disk: a page switch, a new browser session (a reload,
a lost session) or a restart never loses it."""

import pytest

from app_pages.view_models import drafts
from app_pages.view_models import feed_editor
from common.errors import ValidationError
from core.feeds import PEAK_TEMPLATE
from app_pages.view_models.test_sessions import current_test
from tests.ui.conftest import ace_editors, button, current_draft, labelled, new_app, texts, type_script

SCRIPT = "from lib import outputStream\noutputStream.write({'kept': True})\n"


def test_a_new_session_opens_the_draft_where_it_was_left(app):
    at = app("new")
    button(at, "Next").click().run()
    type_script(at, SCRIPT)
    labelled(at.text_input, "Feed Name").set_value("kept_feed").run()
    draft_id = current_draft(at).id

    again = new_app("new")  # a reload: a new session with nothing in memory
    assert current_draft(again).id == draft_id
    assert any(s.value == "Import Configuration" for s in again.subheader)
    assert ace_editors(again)[0]["defaultValue"] == SCRIPT
    assert labelled(again.text_input, "Feed Name").value == "kept_feed"


def test_the_draft_named_in_the_url_is_the_one_opened(app):
    first = feed_editor.new_draft("local")
    first.feed_name = "first_one"
    feed_editor.persist(first)
    feed_editor.persist(feed_editor.new_draft("local"))  # a newer draft
    at = app("new", draft=first.id)
    assert current_draft(at).id == first.id
    assert at.query_params["draft"] == first.id  # a reload keeps it
    assert popover_labels(at) == ["Other drafts (1)"]  # the newer one is one click away


def popover_labels(at) -> list[str]:
    return [block.proto.popover.label for block in at.get("popover")]


def test_switching_pages_and_back_keeps_the_script(app):
    at = app("new")
    button(at, "Next").click().run()
    type_script(at, SCRIPT)
    at.switch_page("app_pages/feeds.py").run()
    at.switch_page("app_pages/new_feed.py").run()
    assert ace_editors(at)[0]["defaultValue"] == SCRIPT


def test_start_over_discards_the_draft_and_opens_peaks_template(app):
    at = app("new")
    button(at, "Next").click().run()
    type_script(at, SCRIPT)
    old = current_draft(at).id
    button(at, "Start over").click().run()
    button(at, "Yes, start over").click().run()
    assert current_draft(at).id != old
    assert not drafts.draft_exists(old)
    button(at, "Next").click().run()
    assert ace_editors(at)[0]["defaultValue"] == PEAK_TEMPLATE


def test_a_test_still_running_is_found_again_after_a_reload(app):
    at = app("new")
    button(at, "Next").click().run()
    type_script(at, "import time\nprint('working', flush=True)\ntime.sleep(3)\n")
    button(at, "Test").click().run()
    again = new_app("new")
    assert "Testing…" in texts(again)
    session = current_test(current_draft(again).id)
    assert session.wait(10)
    again.run()
    assert "Test succeeded" in texts(again)


def test_another_users_draft_cannot_be_opened_by_its_id(tributary):
    theirs = feed_editor.new_draft("bob@example.com")
    with pytest.raises(Exception, match="does not exist"):
        feed_editor.open_draft(theirs.id, "ann@example.com")


@pytest.mark.parametrize("bad_id", ["../secret", "a/b", "", "x" * 200])
def test_draft_ids_cannot_name_other_files(tributary, bad_id):
    with pytest.raises(ValidationError):
        drafts.load_draft(bad_id)
