"""Who may use the app: a team password (hash in secrets or the environment), an OIDC login
(st.login) when configured in secrets, else this computer only, which the sidebar says and
the server enforces."""

import asyncio

import pytest
from streamlit.testing.v1 import AppTest

from app_pages import access
from app_pages.access import LocalOnlyMiddleware, PasswordThrottle
from common.passwords import hash_password, verify_password
from tests.ui.conftest import PAGES, UI_SCRIPT, button, errors, labelled

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def password_hash():
    return hash_password(PASSWORD)


@pytest.fixture(autouse=True)
def fresh_throttle(monkeypatch):
    monkeypatch.setattr(access, "password_throttle", PasswordThrottle())
    from app_pages.parts import access_gate

    monkeypatch.setattr(access_gate, "password_throttle", access.password_throttle)


def open_app(page: str = "feeds", secrets: dict | None = None, user: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(UI_SCRIPT), default_timeout=60)
    if secrets:
        at.secrets.update(secrets)
    if user:
        at.user.update(user)
    at.run()
    if page != "feeds":
        at.switch_page(PAGES[page]).run()
    return at


OIDC = {"auth": {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32,
                 "client_id": "tributary", "client_secret": "s",
                 "server_metadata_url": "https://id.example.com/.well-known/openid-configuration"}}


def test_without_a_login_only_this_computer_is_served_and_the_sidebar_says_so(tributary):
    at = open_app()
    assert "Local only." in "\n".join(c.value for c in at.sidebar.caption)
    assert [t.value for t in at.title] == ["Feeds"]


@pytest.mark.parametrize("page", ["feeds", "new", "connections", "data"])
def test_a_team_password_from_the_environment_guards_every_page(tributary, monkeypatch, password_hash, page):
    monkeypatch.setenv("TRIBUTARY_PASSWORD_HASH", password_hash)
    at = open_app(page)
    assert [t.value for t in at.title] == ["Tributary"]  # the gate, not the page
    assert labelled(at.text_input, "Team password").proto.type == 1  # a password field
    assert [b.label for b in at.button] == ["Unlock"] and not at.dataframe


def test_a_wrong_password_is_refused_and_the_right_one_opens_the_app(tributary, monkeypatch, password_hash):
    monkeypatch.setenv("TRIBUTARY_PASSWORD_HASH", password_hash)
    at = open_app()
    labelled(at.text_input, "Team password").set_value("guess")
    at.button[0].click().run()
    assert errors(at) == ["That is not the team password."]
    labelled(at.text_input, "Team password").set_value(PASSWORD)
    at.button[0].click().run()
    assert [t.value for t in at.title] == ["Feeds"]
    assert "Signed in with the team password." in "\n".join(c.value for c in at.sidebar.caption)
    button(at, "Lock").click().run()
    assert [t.value for t in at.title] == ["Tributary"]


def test_the_password_hash_can_come_from_secrets(tributary, password_hash):
    at = open_app(secrets={"access": {"password_hash": password_hash}})
    assert [t.value for t in at.title] == ["Tributary"]
    labelled(at.text_input, "Team password").set_value(PASSWORD)
    at.button[0].click().run()
    assert [t.value for t in at.title] == ["Feeds"]


def test_repeated_wrong_passwords_slow_the_guesser_down(tributary, monkeypatch, password_hash):
    monkeypatch.setenv("TRIBUTARY_PASSWORD_HASH", password_hash)
    at = open_app()
    for _ in range(6):
        labelled(at.text_input, "Team password").set_value("guess")
        at.button[0].click().run()
    labelled(at.text_input, "Team password").set_value(PASSWORD)  # even the right one must wait
    at.button[0].click().run()
    assert any(e.startswith("Too many wrong passwords: try again in") for e in errors(at))
    assert [t.value for t in at.title] == ["Tributary"]


def test_oidc_in_secrets_asks_for_a_login(tributary):
    at = open_app(secrets=OIDC, user={"is_logged_in": False})
    assert [t.value for t in at.title] == ["Tributary"]
    assert [b.label for b in at.button] == ["Log in"]


def test_a_logged_in_oidc_user_gets_the_app_and_their_own_drafts(tributary):
    at = open_app("new", secrets=OIDC, user={"is_logged_in": True, "email": "ann@example.com"})
    assert [t.value for t in at.title] == ["New feed"]
    assert "Signed in as ann@example.com." in "\n".join(c.value for c in at.sidebar.caption)
    assert at.session_state["editor:new-draft"].owner == "ann@example.com"


def test_password_hashes_verify_only_their_password():
    encoded = hash_password("s3cret")
    assert encoded.startswith("scrypt$") and "s3cret" not in encoded
    assert verify_password("s3cret", encoded)
    assert not verify_password("s3cret!", encoded)
    assert not verify_password("s3cret", "not-a-hash")


def call(middleware, scope_type: str, client: str) -> list[dict]:
    sent: list[dict] = []
    reached: list[bool] = []

    async def app(scope, receive, send):
        reached.append(True)

    async def receive():
        return {"type": "http.request"}

    async def send(message):
        sent.append(message)

    asyncio.run(middleware(app)({"type": scope_type, "client": (client, 5000), "path": "/"}, receive, send))
    return sent if not reached else ["passed"]


def test_the_server_refuses_other_computers_when_no_login_is_configured(tributary, monkeypatch):
    monkeypatch.setattr(access, "current_secrets", lambda: {})
    assert call(LocalOnlyMiddleware, "http", "127.0.0.1") == ["passed"]
    assert call(LocalOnlyMiddleware, "http", "::1") == ["passed"]
    refused = call(LocalOnlyMiddleware, "http", "192.168.1.20")
    assert refused[0]["status"] == 403
    assert b"no login configured" in refused[1]["body"]
    assert call(LocalOnlyMiddleware, "websocket", "10.0.0.7")[0]["type"] == "websocket.close"


def test_a_configured_login_lets_other_computers_reach_the_login(tributary, monkeypatch, password_hash):
    monkeypatch.setattr(access, "current_secrets", lambda: {})
    monkeypatch.setenv("TRIBUTARY_PASSWORD_HASH", password_hash)
    assert call(LocalOnlyMiddleware, "http", "192.168.1.20") == ["passed"]
