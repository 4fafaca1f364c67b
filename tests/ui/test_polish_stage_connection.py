"""Stage 1 after a reload: a connection created inside the feed editor stays selected, its
parameters saved, and the feed can go on to stage 2."""

from core.connections import get_connection
from tests.ui.conftest import button, current_draft, labelled, new_app, texts


def create_in_editor(at, name="Shop"):
    button(at, "New connection").click().run()
    at.text_input(key="newconn:name").set_value(name)
    labelled(at.radio, "Authentication type").set_value("basic")
    button(at, "Save").click().run()
    labelled(at.text_input, "Username").set_value("ann")
    labelled(at.text_input, "Password").set_value("s3cret-pass")
    return button(at, "Save parameters").click().run()


def test_a_connection_made_in_the_editor_is_still_selected_after_a_reload(app):
    at = create_in_editor(app("new"))
    assert "Connection Shop saved." in texts(at)
    draft_id = current_draft(at).id

    again = new_app("new")  # a reload: nothing in memory, only the draft on disk
    assert current_draft(again).id == draft_id
    assert labelled(again.selectbox, "Select Connection").value == "Shop"
    page = texts(again)
    assert "parameters not saved yet" not in page
    assert "Username **ann**" in page
    assert "s3cret-pass" not in page
    assert not [b for b in again.button if b.label == "Save parameters" and not b.disabled
                and "pending" in str(b.key)]
    assert get_connection("Shop").params["username"] == "ann"
    assert not next(b for b in again.button if b.label == "Next").disabled
