"""Webhook triggers: POST /api/feeds/{name}/trigger with the feed's secret token.

The token is shown once when generated; only its SHA-256 is stored, and a presented token is
compared with hmac.compare_digest (constant time). Answers, as (HTTP status, body):
    202 {"run_id"}     a run was queued; the request's JSON body is `lib.trigger.payload`
    401                no token, a wrong token, or the feed is not webhook-triggered
    404                no such feed
    413                a body larger than 1 MiB (read no further than that)
    400                a body that is not JSON, nests deeper than 64 levels, or is not an object
    409 {"run_id"}     the feed already has an active run (the call is refused, not queued)
    429                more calls than the per-feed rate allows (TRIBUTARY_WEBHOOK_RATE_PER_MINUTE)
    423                the feed is paused
"""

from __future__ import annotations

import hashlib
import hmac
import json
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


def check_token(feed_name: str, token: str | None) -> tuple[int, dict] | None:
    """The refusal (404, 401) for a call that names no feed or lacks its valid token, or None
    when the call may go on. The route asks this before it reads a byte of the body."""
    with session_scope() as session:
        feed = find_feed(session, feed_name)
        if feed is None:
            return 404, {"error": f"feed {feed_name!r} does not exist"}
        expected = feed.webhook_token_hash
        is_webhook = (feed.trigger or {}).get("type") == "webhook"
    presented = _hash(token or "")
    # Compare even when nothing is expected, so that timing does not tell which case it was.
    valid = hmac.compare_digest(presented, expected or _hash(secrets.token_hex(16)))
    if not (valid and is_webhook and token):
        return 401, {"error": f"a valid token is required in the {TOKEN_HEADER} header"}
    return None


def trigger_checked(feed_name: str, payload) -> tuple[int, dict]:
    """The rest of a call whose token check_token accepted: rate, pause, payload, the run."""
    if not _limiter.allow(feed_name, get_settings().webhook_rate_per_minute):
        return 429, {"error": "too many calls: try again in a minute"}
    with session_scope() as session:
        feed = find_feed(session, feed_name)
        if feed is None:
            return 404, {"error": f"feed {feed_name!r} does not exist"}
        feed_id, paused = feed.id, feed.paused
    if paused:
        return 423, {"error": f"feed {feed_name!r} is paused"}
    if payload is not None and not isinstance(payload, dict):
        return 400, {"error": "payload: the request body must be a JSON object"}
    try:
        run = create_run(feed_name, trigger="webhook", payload=payload)
    except Conflict:
        with session_scope() as session:
            active = session.get(ActiveRun, feed_id)
        return 409, {"error": f"feed {feed_name!r} already has an active run", "run_id": active.run_id if active else None}
    bootstrap.current().submit(run.id)
    return 202, {"run_id": run.id, "status": "queued"}


def handle_trigger(feed_name: str, token: str | None, payload) -> tuple[int, dict]:
    """Everything the route does, without HTTP: returns (status code, JSON body)."""
    return check_token(feed_name, token) or trigger_checked(feed_name, payload)


# ---------------------------------------------------------------- the request body

MAX_BODY_BYTES = 1024 * 1024  # a trigger's payload is a small JSON object
MAX_JSON_DEPTH = 64


class PayloadProblem(ValueError):
    """A request body the webhook refuses: (HTTP status, message)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def body_too_large() -> PayloadProblem:
    return PayloadProblem(413, f"payload: the request body is larger than {MAX_BODY_BYTES // (1024 * 1024)} MB")


def json_depth_exceeds(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether JSON text nests arrays and objects deeper than `limit` (brackets inside
    strings do not count). Checked before parsing: json.loads recurses, and a deep enough
    document would exhaust the stack instead of failing cleanly."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False  # not enough brackets to nest that deep, wherever they are
    depth, in_string, escaped = 0, False, False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return False


def parse_payload(raw: bytes):
    """A request body as the trigger's payload: None when empty, else the parsed JSON.
    Raises PayloadProblem (400) for a body that is not JSON or nests too deeply."""
    if len(raw) > MAX_BODY_BYTES:
        raise body_too_large()
    if not raw.strip():
        return None
    if json_depth_exceeds(raw):
        raise PayloadProblem(400, f"payload: the JSON nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise PayloadProblem(400, "payload: the request body is not valid JSON") from None


def reset_rate_limits() -> None:
    _limiter._calls.clear()
