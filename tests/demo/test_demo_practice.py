"""The demo API's practice for slow, rate-limited APIs: latency, a rate limit answering 429,
a flaky endpoint and pages of five pagination styles."""

from __future__ import annotations

import email.utils
import time

import pytest
import requests

from demo.api import DemoAPI


class Clock:
    def __init__(self, now: float = 1_800_000_000.25):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_latency_per_request_and_per_server():
    with DemoAPI(latency_s=0.1) as api:
        started = time.monotonic()
        assert requests.get(api.url + "/get-data", params={"limit": 1, "latency": 0.2}, timeout=10).ok
        assert time.monotonic() - started >= 0.3
        started = time.monotonic()
        requests.get(api.url + "/health", timeout=10)  # never slowed down
        assert time.monotonic() - started < 0.1
        bad = requests.get(api.url + "/get-data", params={"latency": 60}, timeout=10)
        assert bad.status_code == 400 and "'latency'" in bad.json()["error"]


@pytest.mark.parametrize("style, header, value", [
    ("retry-after", "Retry-After", "1"),
    ("http-date", "Retry-After", email.utils.formatdate(1_800_000_001, usegmt=True)),
    ("reset", "X-RateLimit-Reset", "1800000001"),
])
def test_the_rate_limit_answers_429_naming_the_wait(style, header, value):
    clock = Clock()
    with DemoAPI(rate_limit=2, rate_limit_header=style, clock=clock) as api:
        answers = [requests.get(api.url + "/entries", params={"title": "hub"}, timeout=10) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert answers[2].headers[header] == value
        assert answers[2].headers["X-RateLimit-Remaining"] == "0"
        assert answers[2].json() == {"error": "rate limit exceeded"}
        assert requests.get(api.url + "/health", timeout=10).ok  # not limited, not counted
        clock.now += 1  # the next window
        assert requests.get(api.url + "/entries", timeout=10).ok
        assert api.rejected == 1 and api.request_count == 4
        assert dict(api.window_counts) == {1_800_000_000: 3, 1_800_000_001: 1}
        assert api.max_requests_per_window() == 3


def test_flaky_fails_the_first_n_requests_of_each_key():
    with DemoAPI() as api:
        url = api.url + "/flaky"
        first = requests.get(url, params={"key": "a", "fail": 2, "status": 502, "retry_after": 3}, timeout=10)
        assert first.status_code == 502 and first.headers["Retry-After"] == "3"
        assert requests.get(url, params={"key": "a", "fail": 2}, timeout=10).status_code == 503
        assert requests.get(url, params={"key": "a", "fail": 2}, timeout=10).json() == {"key": "a", "attempts": 3}
        assert requests.get(url, params={"key": "b", "fail": 0}, timeout=10).ok
        limited = requests.post(url, params={"key": "c", "status": 429, "reset": 30}, timeout=10)
        assert limited.headers["X-RateLimit-Reset"] == "30" and limited.headers["X-RateLimit-Remaining"] == "0"


def test_pages_next_link_cursor(demo_api):
    body = requests.get(demo_api.url + "/pages/next", params={"count": 15, "page_size": 10}, timeout=10).json()
    assert [r["id"] for r in body["data"]] == list(range(1, 11))
    last = requests.get(body["next"], timeout=10).json()
    assert [r["id"] for r in last["data"]] == list(range(11, 16)) and last["next"] is None
    relative = requests.get(demo_api.url + "/pages/next", params={"relative": 1, "page_size": 5}, timeout=10)
    assert relative.json()["next"].startswith("/pages/next?")

    linked = requests.get(demo_api.url + "/pages/link", params={"count": 95, "per_page": 30, "page": 2}, timeout=10)
    assert [r["id"] for r in linked.json()] == list(range(31, 61))
    assert set(linked.links) == {"next", "prev", "first", "last"}
    assert "page=4" in linked.links["last"]["url"] and "count=95" in linked.links["next"]["url"]

    first = requests.get(demo_api.url + "/pages/cursor", params={"count": 40, "limit": 25}, timeout=10).json()
    cursor = first["meta"]["next_cursor"]
    second = requests.get(demo_api.url + "/pages/cursor", params={"count": 40, "limit": 25, "cursor": cursor},
                          timeout=10).json()
    assert [r["id"] for r in second["data"]] == list(range(26, 41)) and second["meta"]["next_cursor"] is None
    bad = requests.get(demo_api.url + "/pages/cursor", params={"cursor": "nope"}, timeout=10)
    assert bad.status_code == 400 and "'cursor'" in bad.json()["error"]


def test_pages_offset_and_page(demo_api):
    body = requests.get(demo_api.url + "/pages/offset", params={"offset": 2490, "limit": 25}, timeout=10).json()
    assert [r["id"] for r in body["data"]] == list(range(2491, 2501))
    assert body["total"] == 2500 and body["offset"] == 2490 and body["limit"] == 25
    body = requests.get(demo_api.url + "/pages/page", params={"page": 3, "per_page": 40}, timeout=10).json()
    assert [r["id"] for r in body["data"]] == list(range(81, 121))
    assert body["total_pages"] == 63 and body["total"] == 2500
    bare = requests.get(demo_api.url + "/pages/page", params={"no_total": 1}, timeout=10).json()
    assert "total" not in bare and "total_pages" not in bare
