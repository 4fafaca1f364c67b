"""The server's guards over real HTTP, against the running st.App server (streamlit run app.py):
allowed host names on pages, the websocket and the /api routes; the webhook's token checked
before its body is read, its body bounded, and deeply nested JSON refused."""

from __future__ import annotations

import base64
import os
import select
import socket
import time
from urllib.parse import urlsplit

import pytest
import requests

from core import webhooks
from core.feeds import FeedSpec, create_feed
from tests.ui.server import start_server

SCRIPT = "from lib import outputStream\noutputStream.write({'n': 1})\n"
MB = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("hardening") / "data"
    running = start_server(data, extra_env={"TRIBUTARY_DEMO_API": "0", "TRIBUTARY_ALLOWED_HOSTS": "tributary.internal"})
    yield running
    running.stop()


@pytest.fixture(scope="module")
def token(server):
    saved = os.environ.get("TRIBUTARY_DATA_DIR")
    os.environ["TRIBUTARY_DATA_DIR"] = str(server.data_dir)  # the server's own store
    try:
        create_feed(FeedSpec(name="hooked", script=SCRIPT, trigger={"type": "webhook"}))
        yield webhooks.regenerate_token("hooked")
    finally:
        from storage.db import dispose_all

        dispose_all()
        if saved is None:
            os.environ.pop("TRIBUTARY_DATA_DIR", None)
        else:
            os.environ["TRIBUTARY_DATA_DIR"] = saved


def address(server) -> tuple[str, int]:
    parts = urlsplit(server.url)
    return parts.hostname, parts.port


def rss_kb(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def raw_request(server, head: str, chunks=(), timeout_s: float = 30) -> tuple[bytes, int]:
    """Send a request head, then body chunks until the server answers; returns (the answer
    so far, the number of body bytes sent). The server may answer, and close, long before a
    body ends: that is what these tests check."""
    sock = socket.create_connection(address(server), timeout=timeout_s)
    sent = 0
    try:
        sock.sendall(head.encode("latin-1"))
        deadline = time.monotonic() + timeout_s
        for chunk in chunks:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable or time.monotonic() > deadline:
                break
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        answer = b""
        sock.settimeout(timeout_s)
        try:
            while b"\r\n\r\n" not in answer:
                more = sock.recv(65536)
                if not more:
                    break
                answer += more
        except ConnectionResetError:
            pass
        return answer, sent
    finally:
        sock.close()


def chunked(total: int, size: int = 64 * 1024):
    piece = b"x" * size
    frame = f"{size:x}\r\n".encode() + piece + b"\r\n"
    for _ in range(total // size):
        yield frame
    yield b"0\r\n\r\n"


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


# ---------------------------------------------------------------- host names


@pytest.mark.parametrize("path", ["/", "/api/health", "/_stcore/health"])
def test_a_foreign_host_name_is_refused_on_pages_and_routes(server, path):
    refused = requests.get(server.url + path, headers={"Host": "evil.example"}, timeout=10)
    assert refused.status_code == 403
    assert "TRIBUTARY_ALLOWED_HOSTS" in refused.text
    assert requests.get(server.url + path, timeout=10).status_code == 200


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]", "tributary.internal"])
def test_allowed_host_names_are_served(server, host):
    port = address(server)[1]
    answer = requests.get(server.url + "/api/health", headers={"Host": f"{host}:{port}"}, timeout=10)
    assert answer.status_code == 200, answer.text


def test_a_foreign_origin_is_refused(server):
    answer = requests.get(server.url + "/api/health", headers={"Origin": "https://evil.example"}, timeout=10)
    assert answer.status_code == 403 and "origin" in answer.text
    fine = requests.get(server.url + "/api/health", headers={"Origin": server.url}, timeout=10)
    assert fine.status_code == 200


def websocket_head(host: str, origin: str | None = None) -> str:
    key = base64.b64encode(os.urandom(16)).decode()
    lines = ["GET /_stcore/stream HTTP/1.1", f"Host: {host}", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    if origin:
        lines.append(f"Origin: {origin}")
    return "\r\n".join(lines) + "\r\n\r\n"


def test_the_websocket_refuses_a_foreign_host_or_origin_and_serves_an_allowed_one(server):
    port = address(server)[1]
    answer, _ = raw_request(server, websocket_head("evil.example"))
    assert status_of(answer) == 403, answer
    answer, _ = raw_request(server, websocket_head(f"127.0.0.1:{port}", origin="http://evil.example"))
    assert status_of(answer) == 403, answer
    answer, _ = raw_request(server, websocket_head(f"127.0.0.1:{port}", origin=server.url))
    assert status_of(answer) == 101, answer


# ---------------------------------------------------------------- the webhook's body


def trigger_head(server, token: str, extra: str = "Transfer-Encoding: chunked\r\n") -> str:
    return (f"POST /api/feeds/hooked/trigger HTTP/1.1\r\nHost: {urlsplit(server.url).netloc}\r\n"
            f"Content-Type: application/json\r\n{webhooks.TOKEN_HEADER}: {token}\r\n{extra}\r\n")


def test_a_huge_chunked_body_with_a_wrong_token_is_refused_unread(server, token):
    before = rss_kb(server.process.pid)
    answer, sent = raw_request(server, trigger_head(server, token + "wrong"), chunked(400 * MB))
    assert status_of(answer) == 401, answer
    assert sent < 400 * MB  # answered before the body ended
    grown_mb = (rss_kb(server.process.pid) - before) / 1024
    assert grown_mb < 50, f"the server grew by {grown_mb:.0f} MB"
    assert requests.get(server.url + "/api/health", timeout=10).status_code == 200


def test_a_body_over_one_mebibyte_with_the_right_token_is_413(server, token):
    answer, _ = raw_request(server, trigger_head(server, token), chunked(2 * MB))
    assert status_of(answer) == 413, answer
    declared = requests.post(f"{server.url}/api/feeds/hooked/trigger", data=b" " * (2 * MB),
                             headers={webhooks.TOKEN_HEADER: token}, timeout=30)
    assert declared.status_code == 413 and "larger than 1 MB" in declared.json()["error"]


def test_deeply_nested_json_is_400_not_a_crash(server, token):
    answer = requests.post(f"{server.url}/api/feeds/hooked/trigger", data=b"[" * 100_000 + b"]" * 100_000,
                           headers={webhooks.TOKEN_HEADER: token}, timeout=30)
    assert answer.status_code == 400 and "deeper than 64 levels" in answer.json()["error"]
    assert requests.get(server.url + "/api/health", timeout=10).status_code == 200
