"""lib.connection's retries against the demo API over real HTTP, on a fake clock: every wait
is asked of the clock, which moves by it at once, so no test waits seconds."""

from __future__ import annotations

import email.utils
import socket

import pytest
import requests

from demo.api import DemoAPI


def test_a_429_with_retry_after_is_waited_for_and_retried(lib, timing, session, log_lines):
    # Windows of a minute on the server's (fake) clock: the third request is one too many.
    with DemoAPI(rate_limit=2, rate_window_s=60, clock=timing.time) as api:
        host = f"127.0.0.1:{api.port}"
        answers = [session.get(f"{api.url}/get-data", params={"limit": 1}) for _ in range(3)]
        assert [r.status_code for r in answers] == [200, 200, 200]
        window_end = (int(timing.now // 60)) * 60  # where the fake clock moved to
        assert timing.sleeps == [20.0]  # the fake clock starts 20 s before a minute ends
        assert window_end == timing.now
        assert api.rejected == 1 and api.request_count == 4
        assert log_lines == [f"429 from {host}, waiting 20.0 s (Retry-After)"]
        assert list(session.retry_waits) == [("429", host, 20.0, "Retry-After")]


def test_a_429_pauses_the_whole_connection(lib, timing, session):
    with DemoAPI(rate_limit=1, rate_window_s=60, clock=timing.time) as api:
        session.get(api.url + "/get-data")
        session.get(api.url + "/get-data")  # 429, then waits 20 s
        assert session.budget.paused_until == pytest.approx(timing.now)


def test_retry_after_as_an_http_date(lib, timing, session, api, log_lines):
    response = session.get(api.url + "/flaky", params={"key": "date", "retry_after": "date", "wait": 30})
    assert response.json() == {"key": "date", "attempts": 2}
    assert timing.sleeps == [30.0]
    assert log_lines[0].endswith("waiting 30.0 s (Retry-After)")


@pytest.mark.parametrize("reset, expected", [("12", 12.0), ("unix+45", 45.0), ("unix_ms+8", 8.0)])
def test_x_ratelimit_reset_as_seconds_or_a_unix_time(lib, timing, session, api, log_lines, reset, expected):
    if reset.startswith("unix_ms"):
        reset = str(int((timing.now + 8) * 1000))
    elif reset.startswith("unix"):
        reset = str(int(timing.now + 45))
    response = session.get(api.url + "/flaky", params={"key": reset, "status": 429, "reset": reset})
    assert response.status_code == 200
    assert timing.sleeps == [expected]
    assert log_lines[0].endswith(f"waiting {expected:.1f} s (X-RateLimit-Reset)")


def test_githubs_403_with_no_requests_remaining_is_a_rate_limit(lib, timing, session, api):
    reset = str(int(timing.now + 5))
    response = session.get(api.url + "/flaky", params={"key": "gh", "status": 403, "reset": reset})
    assert response.status_code == 200 and timing.sleeps == [5.0]


def test_a_plain_403_is_not_retried(lib, timing, session, api):
    response = session.get(api.url + "/flaky", params={"key": "forbidden", "status": 403})
    assert response.status_code == 403 and timing.sleeps == []


@pytest.mark.parametrize("status", [502, 503, 504])
def test_5xx_backs_off_exponentially(lib, timing, session, api, log_lines, status):
    response = session.get(api.url + "/flaky", params={"key": f"b{status}", "fail": 3, "status": status})
    assert response.json()["attempts"] == 4
    # backoff 0.5 s doubling; half of it fixed, the other half times random() (0.5 here).
    assert timing.sleeps == [0.375, 0.75, 1.5]
    assert log_lines[1].endswith("waiting 0.8 s (backoff, retry 2 of 5)")
    assert log_lines[1].startswith(f"{status} from 127.0.0.1:")


def test_jitter_spreads_the_waits(lib):
    from lib._retry import RetryPolicy

    policy = RetryPolicy(backoff=1, max_backoff=8)
    assert policy.backoff_s(1, 0.0) == 0.5 and policy.backoff_s(1, 1.0) == 1.0
    assert policy.backoff_s(10, 1.0) == 8.0  # capped


def test_giving_up_returns_the_last_answer(lib, timing, session, api, log_lines):
    session.configure(retries=2)
    response = session.get(api.url + "/flaky", params={"key": "down", "fail": 10})
    assert response.status_code == 503
    assert len(timing.sleeps) == 2
    assert log_lines[-1].endswith("giving up after 2 retries")


def test_retries_zero_sends_once(lib, timing, session, api, log_lines):
    session.configure(retries=0)
    assert session.get(api.url + "/flaky", params={"key": "once"}).status_code == 503
    assert timing.sleeps == [] and log_lines == []


def test_a_wait_longer_than_max_wait_is_not_waited(lib, timing, session, api, log_lines):
    session.configure(max_wait=60)
    response = session.get(api.url + "/flaky", params={"key": "long", "status": 429, "retry_after": 3600})
    assert response.status_code == 429 and timing.sleeps == []
    assert "more than max_wait" in log_lines[0]


def test_post_is_retried_only_where_the_server_did_not_process_it(lib, timing, session, api):
    assert session.post(api.url + "/flaky?key=p502&status=502").status_code == 502  # may have been done
    assert session.post(api.url + "/flaky?key=p503&status=503").status_code == 200  # was refused: retried
    assert session.post(api.url + "/flaky?key=p429&status=429").status_code == 200
    assert len(timing.sleeps) == 2


def test_connection_errors_are_retried_then_raised(lib, timing, session, log_lines):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    session.configure(retries=3)
    with pytest.raises(requests.ConnectionError):
        session.get(f"http://127.0.0.1:{port}/nothing", timeout=2)
    assert len(timing.sleeps) == 3
    assert log_lines[0].startswith(f"ConnectionError from 127.0.0.1:{port}, waiting")


def test_retry_statuses_are_configurable(lib, timing, session, api):
    session.configure(retry_on=[500])
    assert session.get(api.url + "/flaky?key=s503").status_code == 503
    assert session.get(api.url + "/flaky?key=s500&status=500").status_code == 200


def test_the_retry_after_parsers(lib):
    from lib._retry import reset_s, retry_after_s

    now = 1_800_000_000.0
    assert retry_after_s("2", now) == 2.0
    assert retry_after_s("1.5", now) == 1.5
    assert retry_after_s(email.utils.formatdate(now + 90, usegmt=True), now) == 90.0
    assert retry_after_s(email.utils.formatdate(now - 90, usegmt=True), now) == 0.0
    assert retry_after_s("soon", now) is None
    assert reset_s("30", now) == 30.0
    assert reset_s(str(now + 30), now) == 30.0
    assert reset_s("nan", now) is None


def test_limits_come_from_the_connections_settings(lib, monkeypatch):
    from lib import _connection, _runtime

    config = {"auth_type": "basic", "params": {"username": "demo", "limits": {"rate": 5, "per": "minute",
                                                                           "max_in_flight": 2, "retries": 1}},
              "secrets": {"password": "pw"}}
    monkeypatch.setattr(_runtime, "connection_config", config)
    session = _connection.build_session()
    assert session.auth == ("demo", "pw")
    assert session.budget.rate == 5 and session.budget.period_s == 60 and session.budget.max_in_flight == 2
    assert session.retry_policy.retries == 1
    session.configure(rate=10, per="second")  # the script's word wins; the rest is kept
    assert session.budget.rate == 10 and session.budget.period_s == 1 and session.budget.max_in_flight == 2
    assert session.retry_policy.retries == 1
    assert session.settings == {"rate": 10, "per": "second", "max_in_flight": 2, "retries": 1}


def test_a_bad_setting_is_named(lib, session):
    with pytest.raises(ValueError, match="per must be"):
        session.configure(per="fortnight")
    with pytest.raises(ValueError, match="max_in_flight"):
        session.configure(max_in_flight=0)
    with pytest.raises(TypeError):
        session.configure(rate_limit=3)
