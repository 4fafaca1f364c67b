"""Webhook triggers: POST /api/feeds/{name}/trigger with the feed's secret token.

The token is shown once when generated; only its SHA-256 is stored, and a presented token is
compared with hmac.compare_digest (constant time). Answers, as (HTTP status, body):
    202 {"run_id"}     a run was queued; the request's JSON body is `lib.trigger.payload`
    401                no token, a wrong token, or the feed is not webhook-triggered
    404                no such feed
    409 {"run_id"}     the feed already has an active run (the call is refused, not queued)
    429                more calls than the per-feed rate allows (TRIBUTARY_WEBHOOK_RATE_PER_MINUTE)
    423                the feed is paused
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import defaultdict, deque

from common.errors import Conflict
from storage.models import ActiveRun, utcnow
from common.settings import get_settings
from storage.db import session_scope
from core import bootstrap
from core.runs import create_run
from storage.lookups import feed_by_name, find_feed

TOKEN_HEADER = "X-Tributary-Token"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def regenerate_token(feed_name: str) -> str:
    """A new secret token for the feed (the old one stops working). Shown to the user once."""
    token = secrets.token_urlsafe(32)
    with session_scope() as session:
        feed = feed_by_name(session, feed_name)
        feed.webhook_token_hash = _hash(token)
        feed.updated_at = utcnow()
        session.add(feed)
    return token


def webhook_url(feed_name: str) -> str:
    return f"{get_settings().public_url.rstrip('/')}/api/feeds/{feed_name}/trigger"


class RateLimiter:
    """A sliding window of call times per key: at most `limit` calls in `window_s` seconds."""

    def __init__(self, window_s: float = 60.0):
        self.window_s = window_s
        self._calls: dict[str, deque] = defaultdict(deque)
        self._lock = threading.Lock()

    def allow(self, key: str, limit: int, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            calls = self._calls[key]
            while calls and now - calls[0] >= self.window_s:
                calls.popleft()
            if len(calls) >= limit:
                return False
            calls.append(now)
            return True


_limiter = RateLimiter()


def handle_trigger(feed_name: str, token: str | None, payload) -> tuple[int, dict]:
    """Everything the route does, without HTTP: returns (status code, JSON body)."""
    with session_scope() as session:
        feed = find_feed(session, feed_name)
        if feed is None:
            return 404, {"error": f"feed {feed_name!r} does not exist"}
        expected = feed.webhook_token_hash
        is_webhook = (feed.trigger or {}).get("type") == "webhook"
        paused = feed.paused
    presented = _hash(token or "")
    # Compare even when nothing is expected, so that timing does not tell which case it was.
    valid = hmac.compare_digest(presented, expected or _hash(secrets.token_hex(16)))
    if not (valid and is_webhook and token):
        return 401, {"error": f"a valid token is required in the {TOKEN_HEADER} header"}
    if not _limiter.allow(feed_name, get_settings().webhook_rate_per_minute):
        return 429, {"error": "too many calls: try again in a minute"}
    if paused:
        return 423, {"error": f"feed {feed_name!r} is paused"}
    if payload is not None and not isinstance(payload, dict):
        return 400, {"error": "payload: the request body must be a JSON object"}
    try:
        run = create_run(feed_name, trigger="webhook", payload=payload)
    except Conflict:
        with session_scope() as session:
            active = session.get(ActiveRun, feed.id)
        return 409, {"error": f"feed {feed_name!r} already has an active run", "run_id": active.run_id if active else None}
    bootstrap.current().submit(run.id)
    return 202, {"run_id": run.id, "status": "queued"}


def reset_rate_limits() -> None:
    _limiter._calls.clear()
