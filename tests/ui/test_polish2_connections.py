"""Custom Auth secrets are edited one field at a time: a saved header or body field shows its
name with ****, and each can be replaced or removed on its own while the others keep their
stored values; the JSON body is a plain text box (no editor completing local words)."""

from core.connections import ConnectionInput, create_connection
from tests.ui.conftest import ace_editors, button, labelled, texts
from tests.ui.test_connections import stored_secrets


def saved_partner():
    create_connection("Partner", "custom", ConnectionInput(
        auth_url="https://auth.example.com/token", token_header="Authorization: Bearer <token>",
        headers={"X-Client-Id": "client-007", "X-Api-Key": "key-0000"},
        body={"client_id": "app-1", "client_secret": "very-secret"}))


def open_partner(app):
    return app("connections")  # each connection's "Edit parameters" holds its form


def test_keys_are_visible_and_values_masked(app):
    saved_partner()
    at = open_partner(app)
    page = texts(at)
    for field in ("X-Client-Id", "X-Api-Key", "client_id", "client_secret"):
        assert f"{field}: ****" in page
    assert "client-007" not in page and "very-secret" not in page and "app-1" not in page
    assert not ace_editors(at)


def test_one_header_and_one_body_field_are_replaced_the_others_kept(app):
    saved_partner()
    at = open_partner(app)
    [header_switch] = [t for t in at.toggle if t.key.endswith(":h-replace:X-Api-Key")]
    header_switch.set_value(True).run()
    labelled(at.text_input, "New value of X-Api-Key").set_value("key-1111")
    [body_switch] = [t for t in at.toggle if t.key.endswith(":b-replace:client_secret")]
    body_switch.set_value(True).run()
    labelled(at.text_input, "New value of client_secret").set_value("newer-secret")
    button(at, "Save parameters").click().run()
    assert stored_secrets("Partner") == {
        "headers": {"X-Client-Id": "client-007", "X-Api-Key": "key-1111"},
        "body": {"client_id": "app-1", "client_secret": "newer-secret"}}


def test_a_header_and_a_body_field_are_removed_and_added_on_their_own(app):
    saved_partner()
    at = open_partner(app)
    [remove] = [b for b in at.button if str(b.key).endswith(":h-remove:X-Client-Id")]
    remove.click().run()
    assert "X-Client-Id: ****" not in [t.value for t in at.text]  # its row is gone (the summary above still lists it)
    button(at, "Add field").click().run()
    labelled(at.text_input, "Field").set_value("audience")
    labelled(at.text_input, "Value").set_value("api://partner")
    button(at, "Save parameters").click().run()
    assert stored_secrets("Partner") == {
        "headers": {"X-Api-Key": "key-0000"},
        "body": {"client_id": "app-1", "client_secret": "very-secret", "audience": "api://partner"}}


def test_saving_without_touching_a_secret_keeps_them_all(app):
    saved_partner()
    at = open_partner(app)
    labelled(at.text_input, "Token path").set_value("data.token")
    button(at, "Save parameters").click().run()
    assert stored_secrets("Partner") == {
        "headers": {"X-Client-Id": "client-007", "X-Api-Key": "key-0000"},
        "body": {"client_id": "app-1", "client_secret": "very-secret"}}
