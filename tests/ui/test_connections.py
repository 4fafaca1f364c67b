"""Connections, on their page and in stage 1: NEW CONNECTION names the connection and its
auth type first, then asks for the type's parameters; every rule has its message; saved
secrets come back masked with "Replace"; deletion asks first and is refused while feeds use
the connection."""


import pytest

from core.connections import get_connection, sandbox_material
from core.feeds import FeedSpec, create_feed
from tests.ui.conftest import ace_editors, button, errors, labelled, texts


def new_connection(at, name: str, auth_type: str):
    button(at, "New connection").click().run()
    at.text_input(key="newconn:name").set_value(name)  # the dialog's field
    labelled(at.radio, "Authentication type").set_value(auth_type)
    return button(at, "Save").click().run()


def stored_secrets(name: str) -> dict:
    material, _ = sandbox_material(get_connection(name))
    return material["secrets"]


@pytest.mark.parametrize(("name", "message"), [
    ("", "Connection name is required (1-50 letters, digits and underscores)"),
    ("sales-api", "Connection name may contain only letters, digits and underscores (A-Z, a-z, 0-9, _)"),
])
def test_the_new_connection_dialog_checks_the_name(app, name, message):
    at = app("connections")
    at = new_connection(at, name, "basic")
    assert message in "\n".join(errors(at))
    assert at.text_input(key="newconn:name")  # the dialog stays open


def test_a_taken_connection_name_is_refused(app):
    at = new_connection(app("connections"), "Sales", "none")
    at = new_connection(at, "Sales", "none")
    assert "Connection name 'Sales' is already taken" in "\n".join(errors(at))


def test_no_auth_is_saved_at_once(app):
    at = new_connection(app("connections"), "Public", "none")
    assert "Connection Public saved." in texts(at)
    assert get_connection("Public").auth_type == "none"


def test_basic_auth_asks_for_its_parameters_after_name_and_type(app):
    at = new_connection(app("connections"), "Shop", "basic")
    assert "parameters" in texts(at) and "Shop" in texts(at)
    button(at, "Save parameters").click().run()
    page = "\n".join(errors(at))
    assert "Username is required for Basic Auth" in page
    assert "Password is required for Basic Auth" in page
    labelled(at.text_input, "Username").set_value("ann")
    labelled(at.text_input, "Password").set_value("s3cret-pass")
    button(at, "Save parameters").click().run()
    assert "Connection Shop saved." in texts(at)
    assert stored_secrets("Shop") == {"password": "s3cret-pass"}
    assert "s3cret-pass" not in texts(at)


def test_custom_auth_rules_each_have_a_message(app):
    at = new_connection(app("connections"), "Partner", "custom")
    labelled(at.text_input, "Token header").set_value("Bearer <token>")
    labelled(at.text_input, "Header").set_value("")
    labelled(at.text_input, "Value").set_value("orphan-value")
    body_key = next(k for k in at.session_state if str(k).endswith(":body"))
    at.session_state[body_key] = '{"client_id": "x",\n "client_secret": }'
    at.run()
    assert "JSON body is not valid JSON: Expecting value at line 2, column 19" in texts(at)
    assert not ace_editors(at)  # a plain text box: no editor completing words in JSON
    button(at, "Save parameters").click().run()
    page = "\n".join(errors(at))
    assert "Headers row 1 has a value but no header name" in page
    assert "JSON body is not valid JSON" in page


def test_custom_auth_is_validated_by_the_service_and_saved_masked(app):
    at = new_connection(app("connections"), "Partner", "custom")
    labelled(at.text_input, "Authorization URL").set_value("ftp://auth.example.com")
    labelled(at.text_input, "Token header").set_value("X-Token")
    button(at, "Save parameters").click().run()
    page = "\n".join(errors(at))
    assert "Authorization URL is required and must start with http:// or https://" in page
    assert "Token header must look like 'Header-Name: value with <token>'" in page

    labelled(at.text_input, "Authorization URL").set_value("https://auth.example.com/token")
    labelled(at.text_input, "Token header").set_value("Authorization: Bearer <token>")
    labelled(at.text_input, "Header").set_value("X-Client-Id")
    labelled(at.text_input, "Value").set_value("client-007")
    body_key = next(k for k in at.session_state if str(k).endswith(":body"))
    at.session_state[body_key] = '{"client_secret": "very-secret"}'
    at.run()
    assert "Valid JSON" in texts(at)
    button(at, "Save parameters").click().run()
    assert "Connection Partner saved." in texts(at)
    assert stored_secrets("Partner") == {"headers": {"X-Client-Id": "client-007"},
                                         "body": {"client_secret": "very-secret"}}

    # Shown back masked: header names, never values or the body.
    page = texts(at)
    assert "X-Client-Id: ****" in page
    assert "client-007" not in page and "very-secret" not in page


def test_editing_shows_name_and_type_read_only_and_replaces_a_secret_only_when_asked(app):
    at = new_connection(app("connections"), "Shop", "basic")
    labelled(at.text_input, "Username").set_value("ann")
    labelled(at.text_input, "Password").set_value("first-pass")
    button(at, "Save parameters").click().run()

    name, kind = labelled(at.text_input, "Connection name"), labelled(at.text_input, "Authentication type")
    assert name.disabled and name.value == "Shop"
    assert kind.disabled and kind.value == "Basic Auth"
    assert labelled(at.text_input, "Password").value == "****"

    labelled(at.text_input, "Username").set_value("bob")
    button(at, "Save parameters").click().run()
    assert get_connection("Shop").params["username"] == "bob"
    assert stored_secrets("Shop") == {"password": "first-pass"}  # kept

    labelled(at.toggle, "Replace").set_value(True).run()
    labelled(at.text_input, "New password").set_value("second-pass")
    button(at, "Save parameters").click().run()
    assert stored_secrets("Shop") == {"password": "second-pass"}


def test_deleting_asks_first_and_is_refused_while_feeds_use_the_connection(app):
    at = new_connection(app("connections"), "Used", "none")
    create_feed(FeedSpec(name="orders", connection="Used"))
    create_feed(FeedSpec(name="refunds", connection="Used"))
    at.run()
    button(at, "Delete connection").click().run()
    assert "Delete the connection **Used**?" in texts(at)
    button(at, "Yes, delete").click().run()
    assert "connection 'Used' is used by feeds: orders, refunds; change or delete them first" in errors(at)
    assert get_connection("Used")


def test_deleting_an_unused_connection(app):
    at = new_connection(app("connections"), "Spare", "none")
    button(at, "Delete connection").click().run()
    button(at, "Cancel").click().run()
    assert get_connection("Spare")
    button(at, "Delete connection").click().run()
    button(at, "Yes, delete").click().run()
    assert "Connection Spare deleted." in texts(at)
    assert "Spare" not in [e.label for e in at.expander]


def test_a_connections_rate_limit_and_retries_are_set_in_its_form(app):
    at = new_connection(app("connections"), "Paced", "basic")
    labelled(at.text_input, "Username").set_value("ann")
    labelled(at.text_input, "Password").set_value("s3cret-pass")
    labelled(at.number_input, "Requests per period (0: no limit)").set_value(45.0)
    labelled(at.selectbox, "Period").set_value("second")
    labelled(at.number_input, "Requests at once (0: no limit)").set_value(8)
    labelled(at.number_input, "Retries").set_value(2)
    labelled(at.number_input, "Runs at once (0: no limit)").set_value(3)
    button(at, "Save parameters").click().run()
    assert get_connection("Paced").params["limits"] == {"rate": 45, "per": "second", "max_in_flight": 8,
                                                        "retries": 2, "max_concurrent_runs": 3}


def test_a_no_auth_connection_gets_a_rate_limit_too(app):
    at = new_connection(app("connections"), "Public", "none")
    labelled(at.number_input, "Requests per period (0: no limit)").set_value(2.0)
    labelled(at.selectbox, "Period").set_value("minute")
    labelled(at.number_input, "Runs at once (0: no limit)").set_value(1)
    button(at, "Save parameters").click().run()
    assert get_connection("Public").params["limits"] == {"rate": 2, "per": "minute", "retries": 5,
                                                         "max_concurrent_runs": 1}
