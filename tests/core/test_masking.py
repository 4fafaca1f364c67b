"""Secrets are masked in every form they travel in, and secrets too short to mask are refused."""

import base64
from urllib.parse import quote, urlencode

import pytest

from common.errors import ValidationError
from common.secrets import MASK, Masker, basic_auth_value, mask, secret_forms, secret_strings
from core.bootstrap import execute_run
from core.connections import ConnectionInput, create_connection, edit_connection, get_connection, sandbox_material
from core.feeds import FeedSpec, create_feed
from core.runs import create_run, read_log


def test_a_secret_is_masked_url_encoded_and_base64_encoded():
    secret = "p@ss word/1+="
    forms = secret_forms(secret)
    assert {secret, quote(secret, safe=""), base64.b64encode(secret.encode()).decode()} <= forms
    text = (f"raw {secret} url {quote(secret, safe='')} query {urlencode({'p': secret})} "
            f"b64 {base64.b64encode(secret.encode()).decode()} urlsafe {base64.urlsafe_b64encode(secret.encode()).decode()}")
    masked = mask(text, secret_strings({"password": secret}))
    assert "p@ss" not in masked and "cEBzcy" not in masked and "%40" not in masked, masked


def test_basic_auth_connections_mask_the_authorization_header_value(tributary):
    create_connection("api", "basic", ConnectionInput(username="ann", password="hunter22"))
    _, secrets = sandbox_material(get_connection("api"))
    header = "Basic " + base64.b64encode(b"ann:hunter22").decode()
    assert basic_auth_value("ann", "hunter22") in secrets
    assert mask(f"Authorization: {header}", secrets) == f"Authorization: Basic {MASK}"


def test_secrets_learnt_while_running_are_masked_from_then_on():
    masker = Masker(["known-secret"])
    assert masker("known-secret token-xyz") == f"{MASK} token-xyz"
    masker.learn_secret("token-xyz")
    masker.learn_secret("")
    assert masker("known-secret token-xyz " + base64.b64encode(b"token-xyz").decode()) == f"{MASK} {MASK} {MASK}"


def test_a_script_printing_its_basic_auth_request_headers_shows_a_mask(tributary, demo_api):
    create_connection("demo", "basic", ConnectionInput(username="demo", password="demo-password"))
    script = (f"from lib import connection\nr = connection.get({demo_api.url + '/basic/entries'!r})\n"
              "print('status', r.status_code)\nprint(dict(r.request.headers))\n"
              "import base64; print('b64', base64.b64encode(b'demo-password').decode())\n")
    create_feed(FeedSpec(name="printer", connection="demo", script=script))
    finished = execute_run(create_run("printer").id)
    assert finished.status == "succeeded", finished.error
    log, _ = read_log(finished.id)
    assert "status 200" in log
    assert f"'Authorization': 'Basic {MASK}'" in log, log
    assert basic_auth_value("demo", "demo-password") not in log and "demo-password" not in log
    assert f"b64 {MASK}" in log


@pytest.mark.parametrize("data, message", [
    (ConnectionInput(username="ann", password="abc"), "password: at least 4 characters, so that logs can mask it"),
])
def test_a_basic_auth_password_shorter_than_4_characters_is_refused(tributary, data, message):
    with pytest.raises(ValidationError) as caught:
        create_connection("api", "basic", data)
    assert str(caught.value) == message


def test_short_or_broken_header_values_and_names_are_refused(tributary):
    url = "https://auth.example.com/token"
    with pytest.raises(ValidationError, match="header 'X-Key': at least 4 characters, so that logs can mask it"):
        create_connection("tok", "custom", ConnectionInput(auth_url=url, headers={"X-Key": "k1"}))
    with pytest.raises(ValidationError, match="header 'X-Key': the value must not contain a line break"):
        create_connection("tok", "custom", ConnectionInput(auth_url=url, headers={"X-Key": "value\r\nX-Evil: 1"}))
    with pytest.raises(ValidationError, match="a header name must not contain a line break"):
        create_connection("tok", "custom", ConnectionInput(auth_url=url, headers={"X-Key\nX-Evil": "long-value"}))
    with pytest.raises(ValidationError, match="is not a header name"):
        create_connection("tok", "custom", ConnectionInput(auth_url=url, headers={"X Key": "long-value"}))
    with pytest.raises(ValidationError, match="token header: .*a header name must not contain a line break"):
        create_connection("tok", "custom", ConnectionInput(auth_url=url, token_header="X\r\nY: Bearer <token>"))
    create_connection("tok", "custom", ConnectionInput(auth_url=url, headers={"X-Key": "long-value"}))


@pytest.mark.parametrize("url, message", [
    ("auth.example.com/token", "must start with http:// or https://"),
    ("ftp://auth.example.com/token", "must start with http:// or https://"),
    ("https:///token", "must name a host"),
    ("https://", "must name a host"),
    ("https://auth.example.com:99999/", "(?i)port out of range"),
    ("https://auth.example.com/a b", "must not contain spaces"),
])
def test_authorization_urls_need_an_http_scheme_and_a_host(tributary, url, message):
    with pytest.raises(ValidationError, match=message) as caught:
        create_connection("tok", "custom", ConnectionInput(auth_url=url))
    assert str(caught.value).startswith("authorization URL: ")


def test_an_edit_keeping_a_stored_password_is_not_checked_again(tributary):
    create_connection("api", "basic", ConnectionInput(username="ann", password="long-enough"))
    edit_connection("api", ConnectionInput(username="bob"))
    with pytest.raises(ValidationError, match="password: at least 4 characters"):
        edit_connection("api", ConnectionInput(password="x"))
