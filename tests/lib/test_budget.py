"""The request budget: a rate no window of the server's clock sees exceeded, a cap on the
requests in flight, and fetch_many's order."""

from __future__ import annotations

import threading

import pytest

from demo.api import DemoAPI


@pytest.fixture
def real_session(lib):
    from lib._connection import ResilientSession

    with ResilientSession() as connection:
        yield connection


def test_a_budget_of_10_per_second_is_never_exceeded(lib, real_session, log_lines):
    # The server answers 429 to an 11th request in one second of its clock, and counts them all.
    with DemoAPI(rate_limit=10) as api:
        real_session.configure(rate=10, per="second")
        urls = [f"{api.url}/pages/offset?offset={i}&limit=1" for i in range(32)]
        answers = list(lib.fetch_many(urls, concurrency=8, session=real_session))
        assert [r.json()["data"][0]["id"] for r in answers] == list(range(1, 33))
        assert api.rejected == 0 and api.request_count == 32
        assert api.max_requests_per_window() <= 10
        assert len(api.window_counts) >= 4  # 32 requests at 10 a second span at least 4 seconds
        assert not real_session.retry_waits


def test_budget_reservations_keep_every_window_within_the_rate(lib, timing):
    from lib._budget import Budget

    budget = Budget(rate=10, per="second", timing=timing)
    starts = []
    for _ in range(35):
        with budget.slot():
            starts.append(timing.now)
    for first in range(len(starts) - 10):
        assert starts[first + 10] - starts[first] >= 1.0  # any 11 starts span a second or more
    assert starts[:10] == [starts[0]] * 10  # a burst of 10 goes at once


def test_per_minute_and_fractional_rates(lib, timing, log_lines):
    from lib._budget import Budget

    budget = Budget(rate=0.5, per="second", timing=timing)  # one every 2 s
    for _ in range(3):
        with budget.slot("api.example.com"):
            pass
    assert timing.sleeps == [2.0, 2.0]
    assert log_lines == ["request budget (0.5 per second) reached for api.example.com, waiting 2.0 s"] * 2
    minute = Budget(rate=3, per="minute", timing=timing)
    for _ in range(4):
        with minute.slot():
            pass
    assert timing.sleeps[-1] == 60.0 and minute.describe() == "3 per minute"


def test_a_pause_holds_every_request_back(lib, timing):
    from lib._budget import Budget

    budget = Budget(timing=timing)
    budget.pause_for(7)
    with budget.slot():
        pass
    assert timing.sleeps == [7.0]


def test_max_in_flight_caps_concurrent_requests(lib, real_session, demo_api):
    demo_api.reset_counters()
    real_session.configure(max_in_flight=3)
    urls = [f"{demo_api.url}/get-data?limit=1&from={i}&latency=0.05" for i in range(1, 25)]
    answers = list(lib.fetch_many(urls, concurrency=8, session=real_session))
    assert [r.json()["data"][0]["id"] for r in answers] == list(range(1, 25))
    assert 1 <= demo_api.max_in_flight <= 3


def test_fetch_many_keeps_the_order_of_100_pages(lib, real_session, demo_api):
    demo_api.reset_counters()
    # Uneven latencies make later pages finish before earlier ones.
    requests_ = [{"url": f"{demo_api.url}/pages/page", "params": {"page": page, "per_page": 25,
                                                                    "latency": (page * 7 % 5) / 100}}
                 for page in range(1, 101)]
    answers = list(lib.fetch_many(requests_, concurrency=8, session=real_session))
    assert [r.json()["page"] for r in answers] == list(range(1, 101))
    ids = [record["id"] for r in answers for record in r.json()["data"]]
    assert ids == list(range(1, 2501))
    assert demo_api.max_in_flight > 1  # they did run at once


def test_fetch_many_takes_urls_pairs_and_requests(lib, real_session, demo_api):
    import requests

    items = [f"{demo_api.url}/health", ("GET", f"{demo_api.url}/get-data?limit=2"),
             requests.Request("GET", f"{demo_api.url}/get-data", params={"limit": 3}),
             ("POST", f"{demo_api.url}/auth/token", {"json": {"client_id": "demo-client",
                                                              "client_secret": "demo-secret"}})]
    health, two, three, token = lib.fetch_many(items, concurrency=2, session=real_session)
    assert health.json() == {"status": "ok"}
    assert len(two.json()["data"]) == 2 and len(three.json()["data"]) == 3
    assert token.json()["token_type"] == "Bearer"
    with pytest.raises(TypeError, match="fetch_many takes"):
        list(lib.fetch_many([42], session=real_session))


def test_fetch_many_reads_a_generator_lazily_and_stops_early(lib, real_session, demo_api):
    asked = []

    def urls():
        for i in range(1, 1000):
            asked.append(i)
            yield f"{demo_api.url}/get-data?limit=1&from={i}"

    responses = lib.fetch_many(urls(), concurrency=4, session=real_session)
    for n, response in enumerate(responses, 1):
        if n == 3:
            break
    responses.close()
    assert len(asked) <= 3 + 2 * 4  # no more than the window ahead was asked for


def test_one_connection_is_built_for_all_threads(lib):
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(lib.connection)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(s) for s in seen}) == 1
    assert hasattr(lib.connection, "configure")
