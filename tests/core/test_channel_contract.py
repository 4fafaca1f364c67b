"""The notification Channel contract (core/notify/base.py), run over every registered channel
against a real receiver: an SMTP server (aiosmtpd) for email, an HTTP server for webhooks."""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller

from common.settings import get_settings
from core.notify import CHANNELS, DeliveryError, NotConfigured, get_channel

DOCUMENT = {"event": "failed", "feed": "orders", "run_id": "20261202-abc", "status": "failed",
            "records_written": 3, "records_loaded": 0, "error": "boom", "started_at": None,
            "finished_at": None, "duration_s": 1.5, "link": "http://127.0.0.1:8501/runs?run=20261202-abc"}
SECRET = "tok3n-in-the-target"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Mailbox:
    def __init__(self):
        self.messages: list = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("nobody"):
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


class EmailHarness:
    name = "email"

    def __init__(self):
        self.mailbox = _Mailbox()
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=_free_port())
        self.controller.start()
        self.settings = dataclasses.replace(get_settings(), smtp_host="127.0.0.1", smtp_port=self.controller.port)
        self.down_settings = dataclasses.replace(self.settings, smtp_port=_free_port())
        self.good, self.refused, self.down = "team@data.example", "nobody@data.example", "team@data.example"
        self.unconfigured = dataclasses.replace(self.settings, smtp_host=None)

    def received(self) -> list[str]:
        return [m["Subject"] + "\n" + m.get_content() for m in self.mailbox.messages]

    def close(self):
        self.controller.stop()


class WebhookHarness:
    name = "webhook"

    def __init__(self):
        self.posts: list[dict] = []
        posts = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                refuse = "refuse" in self.path
                if not refuse:
                    posts.append(body)
                self.send_response(500 if refuse else 200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.good = f"{base}/hooks?token={SECRET}"
        self.refused = f"{base}/refuse?token={SECRET}"
        self.down = f"http://127.0.0.1:{_free_port()}/hooks?token={SECRET}"
        self.settings = self.down_settings = get_settings()
        self.unconfigured = None  # a webhook needs nothing from the app's configuration

    def received(self) -> list[str]:
        return [json.dumps(post) for post in self.posts]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


HARNESSES = {"email": EmailHarness, "webhook": WebhookHarness}


def test_every_registered_channel_is_covered_here():
    assert set(CHANNELS) == set(HARNESSES)


@pytest.fixture(params=sorted(HARNESSES))
def harness(request, tributary):
    made = HARNESSES[request.param]()
    yield made
    made.close()


def test_a_delivered_message_carries_the_events_facts(harness):
    get_channel(harness.name).send(harness.good, "run failed", DOCUMENT, 7, harness.settings)
    [message] = harness.received()
    for fact in ("orders", "20261202-abc", DOCUMENT["link"], "boom"):
        assert fact in message


def test_a_receiver_that_refuses_is_a_delivery_error_that_names_it_without_its_secrets(harness):
    with pytest.raises(DeliveryError) as raised:
        get_channel(harness.name).send(harness.refused, "run failed", DOCUMENT, 7, harness.settings)
    assert not isinstance(raised.value, NotConfigured)  # another attempt may succeed
    assert "127.0.0.1" in str(raised.value)
    assert SECRET not in str(raised.value)
    assert harness.received() == []


def test_a_receiver_that_is_down_is_a_delivery_error(harness):
    with pytest.raises(DeliveryError) as raised:
        get_channel(harness.name).send(harness.down, "run failed", DOCUMENT, 7, harness.down_settings)
    assert not isinstance(raised.value, NotConfigured)
    assert SECRET not in str(raised.value) and len(str(raised.value)) < 300


def test_a_channel_the_app_is_not_configured_for_says_what_to_set(harness):
    channel = get_channel(harness.name)
    if harness.unconfigured is None:
        assert channel.configured(harness.settings) is None
        return
    assert channel.configured(harness.unconfigured)
    with pytest.raises(NotConfigured) as raised:
        channel.send(harness.good, "run failed", DOCUMENT, 7, harness.unconfigured)
    assert "TRIBUTARY_SMTP_HOST" in str(raised.value)
    assert channel.configured(harness.settings) is None


def test_an_unknown_channel_is_refused_as_not_configured():
    with pytest.raises(NotConfigured, match="unknown channel 'pigeon'"):
        get_channel("pigeon")
