"""The guards' decisions without a server: host names, origins, and the per-client password
throttle (the HTTP behaviour is in test_hardening_http.py)."""

from __future__ import annotations

import asyncio

import pytest

from app_pages import access
from app_pages.access import AllowedHostsMiddleware, PasswordThrottle, allowed_hosts, host_name, host_problem
from common.passwords import hash_password
from common.settings import read_settings


@pytest.fixture(scope="module")
def encoded():
    return hash_password("the right one")


def test_each_client_address_is_throttled_on_its_own(encoded, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(access.time, "monotonic", lambda: clock[0])
    throttle = PasswordThrottle(free=2, base_delay_s=10)
    for _ in range(3):
        assert not throttle.check("guess", encoded, "203.0.113.7")
    assert throttle.wait_s("203.0.113.7") == 10
    assert not throttle.check("the right one", encoded, "203.0.113.7")  # must wait, even when right
    assert throttle.wait_s("198.51.100.2") == 0
    assert throttle.check("the right one", encoded, "198.51.100.2")  # another client is not locked out
    clock[0] += 10
    assert throttle.check("the right one", encoded, "203.0.113.7")
    assert throttle.wait_s("203.0.113.7") == 0


def test_the_throttle_remembers_a_bounded_number_of_clients(encoded):
    throttle = PasswordThrottle(free=0, max_clients=3)
    for n in range(10):
        throttle.check("guess", encoded, f"10.0.0.{n}")
    assert len(throttle._clients) <= 3


@pytest.mark.parametrize("value, name", [
    ("localhost:8501", "localhost"), ("LOCALHOST", "localhost"), ("[::1]:8501", "::1"), ("[::1]", "::1"),
    ("example.com.", "example.com"), ("::1", None), ("a b", None), ("", None), ("x:y", None), ("[::1]x", None),
])
def test_host_header_values(value, name):
    assert host_name(value) == name


def test_allowed_hosts_are_loopback_the_public_url_and_the_setting(monkeypatch):
    monkeypatch.setenv("TRIBUTARY_PUBLIC_URL", "https://Feeds.Example.com/tributary")
    monkeypatch.setenv("TRIBUTARY_ALLOWED_HOSTS", " a.internal , B.internal:8443,[fd00::5],")
    allowed = allowed_hosts(read_settings())
    assert allowed == {"localhost", "127.0.0.1", "::1", "feeds.example.com", "a.internal", "b.internal", "fd00::5"}
    assert host_problem({"host": "feeds.example.com"}, allowed) is None
    assert host_problem({"host": "feeds.example.com", "origin": "https://a.internal:8443"}, allowed) is None
    assert "host" in host_problem({"host": "evil.example"}, allowed)
    assert "host" in host_problem({}, allowed)
    assert "origin" in host_problem({"host": "localhost", "origin": "null"}, allowed)
    assert "origin" in host_problem({"host": "localhost", "origin": "https://evil.example"}, allowed)
    assert host_problem({"host": "evil.example"}, {"*"}) is None


def call(scope: dict) -> list[dict]:
    sent: list[dict] = []

    async def app(scope, receive, send):
        sent.append({"type": "passed"})

    async def send(message):
        sent.append(message)

    asyncio.run(AllowedHostsMiddleware(app)(scope, None, send))
    return sent


def test_the_middleware_refuses_http_and_websockets_with_a_message(monkeypatch):
    monkeypatch.delenv("TRIBUTARY_ALLOWED_HOSTS", raising=False)
    evil = [(b"host", b"evil.example")]
    refused = call({"type": "http", "headers": evil})
    assert refused[0]["status"] == 403 and b"TRIBUTARY_ALLOWED_HOSTS" in refused[1]["body"]
    ws = call({"type": "websocket", "headers": evil, "extensions": {"websocket.http.response": {}}})
    assert ws[0]["type"] == "websocket.http.response.start" and ws[0]["status"] == 403
    assert call({"type": "websocket", "headers": evil})[0]["type"] == "websocket.close"
    assert call({"type": "http", "headers": [(b"host", b"127.0.0.1:8501")]}) == [{"type": "passed"}]
    assert call({"type": "lifespan"}) == [{"type": "passed"}]
