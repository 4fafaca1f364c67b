"""Real-HTTP tests for the bundled offline demo API (demo/api.py)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

# No __init__.py here on purpose: a tests/demo package would shadow the
# top-level ``demo`` package. Make the project root importable instead.
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from demo.api import DemoAPI, serve_in_background  # noqa: E402

ENTRY_KEYS = {"API", "Description", "Auth", "HTTPS", "Cors", "Link", "Category"}
RECORD_KEYS = {"id", "name", "amount", "active", "created_at", "tags", "owner"}


@pytest.fixture(scope="module")
def api():
    with DemoAPI() as server:
        yield server


@pytest.fixture()
def fresh_api():
    # Token tests mutate server state, so they get their own instance.
    with DemoAPI(token_ttl_s=60) as server:
        yield server


def _get(api: DemoAPI, path: str, **kwargs) -> requests.Response:
    return requests.get(api.url + path, timeout=10, **kwargs)


def _token(api: DemoAPI, secret: str = "demo-secret") -> requests.Response:
    body = {"client_id": "demo-client", "client_secret": secret}
    return requests.post(api.url + "/auth/token", json=body, timeout=10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- lifecycle ---------------------------------------------------------------


def test_port_zero_binds_a_real_port_and_url(api):
    assert api.port > 0
    assert api.url == f"http://127.0.0.1:{api.port}"


def test_health(api):
    resp = _get(api, "/health")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.json() == {"status": "ok"}


def test_serve_in_background_and_stop_releases_port():
    server = serve_in_background("127.0.0.1", 0)
    try:
        assert _get(server, "/health").json() == {"status": "ok"}
        port = server.port
    finally:
        server.stop()
    server.stop()  # idempotent
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/health", timeout=2)


def test_unknown_path_is_json_404(api):
    resp = _get(api, "/nope")
    assert resp.status_code == 404
    assert resp.headers["Content-Type"] == "application/json"
    assert "error" in resp.json()


def test_wrong_method_is_405(api):
    resp = requests.post(api.url + "/entries", json={}, timeout=10)
    assert resp.status_code == 405
    assert resp.headers["Allow"] == "GET"


# -- /entries -----------------------------------------------------------------


def test_entries_count_and_shape(api):
    body = _get(api, "/entries").json()
    assert body["count"] == 1425 == len(body["entries"])
    for entry in body["entries"]:
        assert set(entry) == ENTRY_KEYS
        assert entry["Auth"] in ("", "apiKey", "OAuth")
        assert isinstance(entry["HTTPS"], bool)
        assert entry["Cors"] in ("yes", "no", "unknown")
        assert entry["Link"].startswith("https://")
    assert len({e["API"] for e in body["entries"]}) == 1425
    assert 40 <= len({e["Category"] for e in body["entries"]}) <= 50


def test_entries_are_deterministic_across_servers(api):
    first = _get(api, "/entries").content
    with DemoAPI() as other:
        assert _get(other, "/entries").content == first


def test_entries_category_filter_is_case_insensitive(api):
    body = _get(api, "/entries", params={"category": "animals"}).json()
    assert body["count"] == len(body["entries"]) > 0
    assert {e["Category"] for e in body["entries"]} == {"Animals"}


def test_entries_title_filter_is_substring(api):
    body = _get(api, "/entries", params={"title": "hub"}).json()
    assert body["count"] > 0
    assert all("hub" in e["API"].lower() for e in body["entries"])


# -- /get-data ------------------------------------------------------------------


def test_pagination_covers_every_id_once(api):
    seen: list[int] = []
    start, pages = 1, 0
    while start is not None:
        body = _get(api, "/get-data", params={"from": start, "limit": 300}).json()
        assert body["total"] == 2500
        seen.extend(record["id"] for record in body["data"])
        start, pages = body["next"], pages + 1
    assert seen == list(range(1, 2501))
    assert pages == 9  # ceil(2500 / 300)


def test_get_data_defaults_and_record_shape(api):
    body = _get(api, "/get-data").json()
    assert [r["id"] for r in body["data"]] == list(range(1, 101))
    assert body["next"] == 101
    record = body["data"][0]
    assert set(record) == RECORD_KEYS
    assert isinstance(record["amount"], float)
    assert isinstance(record["active"], bool)
    assert record["created_at"].endswith("Z")
    assert len(record["tags"]) == 2
    assert set(record["owner"]) == {"id", "login"}


def test_get_data_past_the_end_is_empty(api):
    body = _get(api, "/get-data", params={"from": 2500, "limit": 10}).json()
    assert [r["id"] for r in body["data"]] == [2500]
    assert body["next"] is None
    assert _get(api, "/get-data", params={"from": 9999}).json()["data"] == []


@pytest.mark.parametrize("params, name", [
    ({"limit": 1001}, "limit"),
    ({"limit": 0}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"from": "x"}, "from"),
    ({"from": 0}, "from"),
])
def test_get_data_validation_names_parameter(api, params, name):
    resp = _get(api, "/get-data", params=params)
    assert resp.status_code == 400
    assert resp.headers["Content-Type"] == "application/json"
    assert f"'{name}'" in resp.json()["error"]


def test_limit_above_max_message(api):
    error = _get(api, "/get-data", params={"limit": 5000}).json()["error"]
    assert error == "'limit' must be between 1 and 1000, got 5000"


# -- /basic/entries -----------------------------------------------------------


def test_basic_auth_success(api):
    resp = _get(api, "/basic/entries", auth=("demo", "demo-password"))
    assert resp.status_code == 200
    body = resp.json()
    assert body["count"] == len(body["entries"]) == 100
    assert body["entries"] == _get(api, "/entries").json()["entries"][:100]


@pytest.mark.parametrize("auth", [None, ("demo", "wrong"), ("other", "demo-password")])
def test_basic_auth_rejected(api, auth):
    resp = _get(api, "/basic/entries", auth=auth)
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"] == 'Basic realm="demo"'
    assert "error" in resp.json()


# -- token flow -----------------------------------------------------------------


def test_bad_client_secret_is_401(fresh_api):
    resp = _token(fresh_api, secret="wrong")
    assert resp.status_code == 401
    assert resp.json() == {"error": "invalid_client"}
    assert fresh_api.token_requests == 1


def test_non_json_token_request_is_400(fresh_api):
    resp = requests.post(fresh_api.url + "/auth/token", data="nope", timeout=10)
    assert resp.status_code == 400


def test_protected_requires_token(fresh_api):
    assert _get(fresh_api, "/protected/data").status_code == 401
    resp = _get(fresh_api, "/protected/data", headers={"Authorization": "Bearer made-up"})
    assert resp.status_code == 401
    assert resp.json() == {"error": "invalid_token"}


def test_token_flow_expire_and_refresh(fresh_api):
    body = _token(fresh_api).json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 60
    headers = {"Authorization": f"Bearer {body['access_token']}"}

    ok = _get(fresh_api, "/protected/data", headers=headers)
    assert ok.status_code == 200
    assert len(ok.json()["data"]) == 25

    fresh_api.expire_tokens()
    assert _get(fresh_api, "/protected/data", headers=headers).status_code == 401

    new_token = _token(fresh_api).json()["access_token"]
    assert new_token != body["access_token"]
    retry = _get(fresh_api, "/protected/data",
                 headers={"Authorization": f"Bearer {new_token}"})
    assert retry.status_code == 200
    assert fresh_api.token_requests == 2


def test_nested_auth_body_is_accepted(fresh_api):
    body = {"auth": {"client_id": "demo-client", "client_secret": "demo-secret"}}
    resp = requests.post(fresh_api.url + "/auth/token", json=body, timeout=10)
    assert resp.status_code == 200
    assert resp.json()["access_token"]


def test_token_expires_after_ttl():
    with DemoAPI(token_ttl_s=0) as server:
        token = _token(server).json()["access_token"]
        resp = _get(server, "/protected/data", headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 401


def test_protected_pages_walk(fresh_api):
    token = _token(fresh_api).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    ids, page = [], 1
    while page is not None:
        body = _get(fresh_api, "/protected/data", params={"page": page}, headers=headers).json()
        assert body["page"] == page
        ids.extend(r["id"] for r in body["data"])
        page = body["next_page"]
    assert ids == list(range(1, 101))
    bad = _get(fresh_api, "/protected/data", params={"page": "two"}, headers=headers)
    assert bad.status_code == 400 and "'page'" in bad.json()["error"]


# -- python -m demo -------------------------------------------------------------


def test_module_entry_point_serves_health(api):
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "demo", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        body = _wait_for_health(f"http://127.0.0.1:{port}/health", proc)
        assert body == {"status": "ok"}
        # Another process must serve byte-identical generated data.
        other = requests.get(f"http://127.0.0.1:{port}/entries", timeout=10).content
        assert other == _get(api, "/entries").content
        page = {"from": 2001, "limit": 500}
        other = requests.get(f"http://127.0.0.1:{port}/get-data", params=page, timeout=10)
        assert other.content == _get(api, "/get-data", params=page).content
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()


def _wait_for_health(url: str, proc: subprocess.Popen, timeout_s: float = 15) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"demo server exited early: {proc.stderr.read().decode()}")
        try:
            return json.loads(requests.get(url, timeout=1).content)
        except requests.ConnectionError:
            time.sleep(0.1)
    pytest.fail("demo server did not answer /health in time")
