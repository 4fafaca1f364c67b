"""The webhook trigger's decisions (the HTTP route over a real server is tested in
tests/server/test_webhook_http.py)."""

import pytest

from core import bootstrap, webhooks
from core.feeds import FeedSpec, create_feed, set_paused
from core.runs import get_run
from core.bootstrap import execute_run
from tests.helpers import capture_queued_runs

SCRIPT = "from lib import outputStream, trigger\noutputStream.write({'got': trigger.payload})\n"


@pytest.fixture
def hooked(tributary):
    capture_queued_runs()
    webhooks.reset_rate_limits()
    create_feed(FeedSpec(name="hooked", script=SCRIPT, trigger={"type": "webhook"}))
    yield webhooks.regenerate_token("hooked")
    bootstrap.build()


def test_a_valid_token_queues_a_run_with_the_payload(hooked):
    status, body = webhooks.handle_trigger("hooked", hooked, {"order": 7})
    assert status == 202 and body["status"] == "queued"
    run = execute_run(body["run_id"])
    assert run.status == "succeeded" and run.trigger == "webhook"
    assert get_run(run.id).trigger_payload == {"order": 7}


def test_wrong_missing_or_old_tokens_are_refused(hooked):
    assert webhooks.handle_trigger("hooked", None, None)[0] == 401
    assert webhooks.handle_trigger("hooked", hooked + "x", None)[0] == 401
    webhooks.regenerate_token("hooked")
    assert webhooks.handle_trigger("hooked", hooked, None)[0] == 401  # the old token stopped working


def test_unknown_feed_active_run_rate_limit_and_pause(hooked, monkeypatch):
    assert webhooks.handle_trigger("nope", hooked, None)[0] == 404
    status, body = webhooks.handle_trigger("hooked", hooked, None)
    assert status == 202
    status, conflict = webhooks.handle_trigger("hooked", hooked, None)
    assert status == 409 and conflict["run_id"] == body["run_id"]
    execute_run(body["run_id"])
    monkeypatch.setenv("TRIBUTARY_WEBHOOK_RATE_PER_MINUTE", "2")
    assert webhooks.handle_trigger("hooked", hooked, None)[0] == 429  # a third call within a minute
    webhooks.reset_rate_limits()
    set_paused("hooked", True)
    assert webhooks.handle_trigger("hooked", hooked, None)[0] == 423


def test_a_feed_not_triggered_by_webhook_refuses_even_a_right_token(tributary):
    create_feed(FeedSpec(name="manual", script=SCRIPT))
    token = webhooks.regenerate_token("manual")
    assert webhooks.handle_trigger("manual", token, None)[0] == 401


def test_only_the_tokens_hash_is_stored(hooked):
    from core.feeds import get_feed

    assert hooked not in (get_feed("hooked").webhook_token_hash or "")
    assert len(get_feed("hooked").webhook_token_hash) == 64


def test_rate_limiter_window():
    limiter = webhooks.RateLimiter(window_s=60)
    assert [limiter.allow("f", 2, now=t) for t in (0, 1, 2)] == [True, True, False]
    assert limiter.allow("f", 2, now=60.5)  # the first call left the window


def test_payloads_that_are_not_json_or_nest_too_deeply_are_refused_with_400():
    assert webhooks.parse_payload(b"") is None and webhooks.parse_payload(b"  \n") is None
    assert webhooks.parse_payload(b'{"a": [1, {"b": "[[[["}]}') == {"a": [1, {"b": "[[[["}]}
    deep_ok = b"[" * 64 + b"]" * 64
    assert webhooks.parse_payload(deep_ok) is not None
    for raw, message in [(b"{nope", "not valid JSON"), (b"[" * 65 + b"]" * 65, "deeper than 64 levels"),
                         (b"[" * 100_000, "deeper than 64 levels"), (b'{"a": "\\"[[[' + b"[" * 70 + b'"}', None)]:
        if message is None:  # brackets inside a string (after an escaped quote) do not nest
            assert webhooks.parse_payload(raw) == {"a": '"[[[' + "[" * 70}
            continue
        with pytest.raises(webhooks.PayloadProblem) as caught:
            webhooks.parse_payload(raw)
        assert caught.value.status == 400 and message in str(caught.value)


def test_a_body_over_one_mebibyte_is_413():
    with pytest.raises(webhooks.PayloadProblem) as caught:
        webhooks.parse_payload(b" " * (webhooks.MAX_BODY_BYTES + 1))
    assert caught.value.status == 413


def test_the_token_is_checked_on_its_own_before_any_body(hooked):
    assert webhooks.check_token("hooked", hooked) is None
    assert webhooks.check_token("hooked", "wrong")[0] == 401
    assert webhooks.check_token("nope", hooked)[0] == 404
