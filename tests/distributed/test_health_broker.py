"""/api/health with the celery executor reports the broker: reachable, its URL without its
password, and the workers seen; once the broker stops it answers 503 and says why."""

from __future__ import annotations

import redis
import requests

from tests.helpers import wait_until
from tests.ui.server import start_server


def test_health_reports_the_broker_up_then_down(tmp_path, redis_url):
    server = start_server(tmp_path / "data", {"TRIBUTARY_EXECUTOR": "celery", "TRIBUTARY_CELERY_BROKER_URL":
                                              redis_url.replace("redis://", "redis://default:hunter2@")})
    try:
        up = requests.get(server.url + "/api/health", timeout=10)
        assert up.status_code == 200, up.text
        body = up.json()
        assert body["executor"] == "celery" and body["workers"] == 1  # the app's own worker
        assert body["broker"] == {"url": redis_url.replace("redis://", "redis://default:***@"), "reachable": True}
        assert "hunter2" not in up.text
        try:
            redis.Redis.from_url(redis_url).shutdown(nosave=True)
        except redis.ConnectionError:
            pass  # the server closes the connection as it stops
        # A list: a 503 response is falsy, and wait_until waits for something truthy.
        [down] = wait_until(lambda: [r for r in [requests.get(server.url + "/api/health", timeout=10)]
                                     if r.status_code == 503], 20, lambda: f"health did not report the broker down: {requests.get(server.url + '/api/health', timeout=10).text}")
        body = down.json()
        assert body["status"] == "error" and body["broker"]["reachable"] is False
        assert "the broker at redis://default:***@" in body["error"] and "not reachable" in body["error"]
        assert "hunter2" not in down.text
    finally:
        server.stop()
