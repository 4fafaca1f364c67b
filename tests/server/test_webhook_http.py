"""The webhook trigger over real HTTP, against the running st.App server (streamlit run app.py)."""


import pytest
import requests

from core import webhooks
from core.feeds import FeedSpec, create_feed
from core.runs import wait_for_run
from tests.helpers import warehouse_rows
from tests.ui.server import start_server

SCRIPT = (
    "import time\nfrom lib import outputStream, trigger\n"
    "time.sleep(float((trigger.payload or {}).get('sleep', 0)))\n"
    "outputStream.write({'order': (trigger.payload or {}).get('order')})\n"
)


@pytest.fixture
def server(tmp_path, monkeypatch):
    data = tmp_path / "data"
    # The test talks to the same store as the server, as a second process of the same install.
    monkeypatch.setenv("TRIBUTARY_DATA_DIR", str(data))
    monkeypatch.delenv("TRIBUTARY_DATABASE_URL", raising=False)
    running = start_server(data, extra_env={"TRIBUTARY_WEBHOOK_RATE_PER_MINUTE": "4", "TRIBUTARY_DEMO_API": "0"})
    yield running
    running.stop()


def post(server, feed, token=None, payload=None):
    headers = {webhooks.TOKEN_HEADER: token} if token else {}
    return requests.post(f"{server.url}/api/feeds/{feed}/trigger", json=payload, headers=headers, timeout=10)


def test_webhook_answers_over_http(server):
    create_feed(FeedSpec(name="hooked", script=SCRIPT, trigger={"type": "webhook"}))
    token = webhooks.regenerate_token("hooked")

    accepted = post(server, "hooked", token, {"order": 42, "sleep": 2})
    assert accepted.status_code == 202, accepted.text
    run_id = accepted.json()["run_id"]
    busy = post(server, "hooked", token, {"order": 43})
    assert busy.status_code == 409 and busy.json()["run_id"] == run_id  # refused, not queued

    finished = wait_for_run(run_id, timeout_s=60)
    assert finished.status == "succeeded", finished.error
    assert finished.trigger == "webhook"
    assert warehouse_rows(server.data_dir, "SELECT \"order\" FROM hooked") == [(42,)]

    assert post(server, "hooked").status_code == 401
    assert post(server, "hooked", token + "x").status_code == 401
    assert post(server, "nosuchfeed", token).status_code == 404

    # The limit is 4 calls a minute per feed; two were made with the right token already.
    codes = []
    for _ in range(3):
        response = post(server, "hooked", token, {"order": 1})
        codes.append(response.status_code)
        if response.status_code == 202:
            wait_for_run(response.json()["run_id"], timeout_s=60)
    assert codes == [202, 202, 429]


def test_bad_json_is_refused_with_a_message(server):
    create_feed(FeedSpec(name="hooked", script=SCRIPT, trigger={"type": "webhook"}))
    token = webhooks.regenerate_token("hooked")
    response = requests.post(f"{server.url}/api/feeds/hooked/trigger", data="{nope",
                             headers={webhooks.TOKEN_HEADER: token, "Content-Type": "application/json"}, timeout=10)
    assert response.status_code == 400 and "not valid JSON" in response.json()["error"]
    listed = post(server, "hooked", token, ["not", "an", "object"])
    assert listed.status_code == 400 and "must be a JSON object" in listed.json()["error"]
