"""Wording the user reads: one clear field name per message, a rule said once, a length
counter that agrees with the rule, sentence-case buttons."""

from core.feeds import FeedSpec, create_feed
from core.validation import NAME_MAX
from tests.ui.conftest import button, errors, labelled, texts, type_script, wait_for_test, current_draft


def new_connection(at, name, auth_type):
    button(at, "New connection").click().run()
    at.text_input(key="newconn:name").set_value(name)
    labelled(at.radio, "Authentication type").set_value(auth_type)
    return button(at, "Save").click().run()


def test_the_connection_name_counter_agrees_with_the_rule(app):
    at = app("connections")
    button(at, "New connection").click().run()
    field = at.text_input(key="newconn:name")
    assert field.max_chars == NAME_MAX == 50
    assert "1-50" in field.help
    field.set_value("a" * 60).run()  # the field takes no more than the rule allows
    assert len(at.text_input(key="newconn:name").value) <= 50


def test_a_name_taken_meanwhile_names_the_field_once(app, monkeypatch):
    from app_pages.view_models import connection_forms

    at = app("connections")
    button(at, "New connection").click().run()
    # Another tab takes the name between the dialog's check and its save.
    monkeypatch.setattr(connection_forms, "list_connections", lambda: [])
    from core.connections import create_connection
    create_connection("Sales", "none")
    at.text_input(key="newconn:name").set_value("Sales")
    labelled(at.radio, "Authentication type").set_value("none")
    at = button(at, "Save").click().run()
    shown = "\n".join(errors(at))
    assert "Connection name 'Sales' is already taken" in shown
    assert "Connection connection name" not in shown


def test_a_broken_feed_name_rule_is_said_once(app):
    at = app("new")
    button(at, "Next").click().run()
    labelled(at.text_input, "Feed Name").set_value("orders_").run()
    page = texts(at)
    assert ":red[:material/close: Does not end with an underscore]" in page
    assert "Does not end with an underscore: feed name must not end with an underscore" not in page
    create_feed(FeedSpec(name="taken"))
    labelled(at.text_input, "Feed Name").set_value("taken").run()
    assert ":red[:material/close: Not used by another feed]" in texts(at)


def test_the_editor_buttons_are_in_sentence_case(app):
    at = app("new")
    labels = {b.label for b in at.button}
    assert {"New connection", "Next"} <= labels
    assert not labels & {"NEW CONNECTION", "NEXT", "BACK", "SAVE", "TEST"}
    button(at, "Next").click().run()
    labels = {b.label for b in at.button}
    assert {"Test", "Back", "Next"} <= labels
    type_script(at, "from lib import outputStream\noutputStream.write({'id': 1})\n")
    button(at, "Test").click().run()
    wait_for_test(at, current_draft(at).id)
    labelled(at.text_input, "Feed Name").set_value("cased").run()
    button(at, "Next").click().run()
    button(at, "Next").click().run()
    assert "Save" in {b.label for b in at.button}
    assert "New connection" in {b.label for b in app("connections").button}
