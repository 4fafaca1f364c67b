"""`streamlit run app.py` starts everything: the UI, /api/health, the demo API, and the
local-only guard when no login is configured."""

import pytest
import requests

from tests.ui.server import start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("server") / "data")
    yield server
    server.stop()


def test_health_reports_the_store_and_the_demo_api(server):
    body = requests.get(server.url + "/api/health", timeout=5).json()
    assert body["status"] == "ok" and body["store"] == "ok"
    assert body["demo_api"] == server.demo_api_url


def test_the_demo_api_is_served_with_the_app(server):
    entries = requests.get(server.demo_api_url + "/entries", timeout=5).json()
    assert entries["count"] == 1425


def test_the_ui_is_served(server):
    page = requests.get(server.url + "/", timeout=5)
    assert page.status_code == 200 and "<html" in page.text.lower()


def test_the_store_is_created_in_the_data_dir(server):
    assert (server.data_dir / "tributary.db").exists()


def test_the_webhook_route_queues_a_run_with_the_payload(server, monkeypatch):
    from core import webhooks
    from core.feeds import FeedSpec, create_feed
    from core.runs import get_run, wait_for_run
    from storage.db import dispose_all

    monkeypatch.setenv("TRIBUTARY_DATA_DIR", str(server.data_dir))  # the server's own store
    script = "from lib import outputStream, trigger\noutputStream.write({'order': trigger.payload['order']})\n"
    create_feed(FeedSpec(name="hooked", script=script, trigger={"type": "webhook"}))
    token = webhooks.regenerate_token("hooked")
    url = f"{server.url}/api/feeds/hooked/trigger"

    assert requests.post(url, json={"order": 1}, timeout=5).status_code == 401
    assert requests.post(url, data="{not json", headers={webhooks.TOKEN_HEADER: token}, timeout=5).status_code == 400
    answer = requests.post(url, json={"order": 7}, headers={webhooks.TOKEN_HEADER: token}, timeout=5)
    assert answer.status_code == 202, answer.text
    run = wait_for_run(answer.json()["run_id"], timeout_s=30)
    assert run.status == "succeeded" and run.trigger == "webhook"
    assert get_run(run.id).trigger_payload == {"order": 7}
    dispose_all()
