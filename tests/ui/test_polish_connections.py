"""The Connections page: which feeds use each connection, said before a delete, and a Test
connection that calls the API and says how it answered, never showing a secret."""

from core.connection_check import check_connection, feeds_using
from core.connections import ConnectionInput, create_connection, get_connection
from core.feeds import FeedSpec, create_feed
from tests.ui.conftest import button, labelled, texts


def basic(demo_api, name="Shop", password=None):
    create_connection(name, "basic", ConnectionInput(username=demo_api.username,
                                                     password=password or demo_api.password))


def custom(demo_api, name="Partner", token_path="access_token", secret=None):
    create_connection(name, "custom", ConnectionInput(
        auth_url=f"{demo_api.url}/auth/token", token_path=token_path, token_header="Authorization: Bearer <token>",
        body={"client_id": demo_api.client_id, "client_secret": secret or demo_api.client_secret}))


def test_the_list_says_which_feeds_use_each_connection(app):
    create_connection("Used", "none")
    create_connection("Spare", "none")
    create_feed(FeedSpec(name="orders", connection="Used"))
    create_feed(FeedSpec(name="refunds", connection="Used"))
    page = texts(app("connections"))
    assert "Used by 2 feeds: orders, refunds" in page
    assert "Not used by any feed" in page
    assert feeds_using("Used") == ["orders", "refunds"]


def test_the_delete_confirmation_names_the_feeds_before_yes(app):
    create_connection("Used", "none")
    create_feed(FeedSpec(name="orders", connection="Used"))
    at = app("connections")
    button(at, "Delete connection").click().run()
    assert "It is used by 1 feed: orders. Change their connection or delete them first" in texts(at)
    button(at, "Cancel").click().run()
    assert "It is used by" not in texts(at)
    assert get_connection("Used")


def test_basic_auth_is_tested_with_a_get_to_the_users_url(app, demo_api):
    basic(demo_api)
    at = app("connections")
    labelled(at.text_input, "URL to call").set_value(f"{demo_api.url}/basic/entries")
    button(at, "Test connection").click().run()
    assert f"GET {demo_api.url}/basic/entries answered 200 OK" in texts(at)
    assert demo_api.password not in texts(at)


def test_a_wrong_password_shows_the_status_it_got(tributary, demo_api):
    basic(demo_api, password="wrong-password")
    result = check_connection("Shop", f"{demo_api.url}/basic/entries")
    assert not result.ok and result.status_code == 401
    assert "wrong-password" not in result.summary


def test_custom_auth_is_tested_with_its_token_call(app, demo_api):
    custom(demo_api)
    at = app("connections")
    assert not [t for t in at.text_input if t.label == "URL to call"]  # it calls its own authorization URL
    button(at, "Test connection").click().run()
    page = texts(at)
    assert f"POST {demo_api.url}/auth/token answered 200 OK, with a token at 'access_token'" in page
    assert demo_api.client_secret not in page


def test_custom_auth_without_a_token_where_it_is_looked_for(tributary, demo_api):
    custom(demo_api, token_path="data.token")
    result = check_connection("Partner")
    assert result.status_code == 200 and result.token_found is False and not result.ok
    assert "no token at 'data.token'" in result.summary
    custom(demo_api, name="Refused", secret="not-the-secret")
    refused = check_connection("Refused")
    assert not refused.ok and refused.status_code >= 400
    assert "not-the-secret" not in refused.summary


def test_no_auth_needs_a_url_and_an_unreachable_one_says_so(app):
    create_connection("Public", "none")
    at = app("connections")
    button(at, "Test connection").click().run()
    assert "URL is required and must start with http:// or https://" in "\n".join(e.value for e in at.error).replace("**", "")
    labelled(at.text_input, "URL to call").set_value("http://127.0.0.1:9/nothing")
    button(at, "Test connection").click().run()
    assert "the call did not get an answer" in texts(at).lower()
