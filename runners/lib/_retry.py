"""When a request through `lib.connection` is tried again, and how long it waits first.

Retried: 429, 502, 503, 504 and connection errors (and GitHub's 403 with
X-RateLimit-Remaining: 0, which is a 429 by another name). A wait the server names is
honoured: Retry-After (seconds or an HTTP date) on any of these, X-RateLimit-Reset or
RateLimit-Reset (seconds from now, or a Unix time) on a 429. Otherwise the wait grows
exponentially with jitter: half of backoff * 2**retry, plus a random part of the other half.

A request that may have reached the server (a read timeout, a 502 or 504) is tried again only
when its method is idempotent; a 429, a 503 and a refused connection say the request was
never processed, so every method is tried again after them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
NOT_PROCESSED = frozenset({429, 503})
RESET_HEADERS = ("X-RateLimit-Reset", "RateLimit-Reset", "X-Rate-Limit-Reset")
# A reset larger than this is a Unix time (in seconds, or in milliseconds past 1e12); below
# it, a number of seconds from now. 1e9 s is September 2001: no window lasts 30 years.
UNIX_TIME_FROM = 1e9


@dataclass
class RetryPolicy:
    retries: int = 5
    backoff: float = 0.5  # the first retry waits about this long, the next twice as long...
    max_backoff: float = 60.0
    max_wait: float = 900.0  # a server asking for a longer wait gets its answer returned instead
    statuses: frozenset = field(default_factory=lambda: frozenset({429, 502, 503, 504}))
    methods: frozenset = IDEMPOTENT

    def __post_init__(self):
        if self.retries < 0:
            raise ValueError(f"retries must be 0 or more, got {self.retries}")
        self.statuses = frozenset(int(s) for s in self.statuses)
        self.methods = frozenset(m.upper() for m in self.methods)

    def backoff_s(self, retry: int, random_fraction: float) -> float:
        """The wait before retry number `retry` (1 for the first) when the server names none."""
        base = min(self.max_backoff, self.backoff * 2 ** (retry - 1))
        return base / 2 + base / 2 * random_fraction

    def rate_limited(self, response: requests.Response) -> bool:
        if response.status_code == 429:
            return True
        # GitHub and others answer 403 once the hour's budget is spent.
        return response.status_code == 403 and response.headers.get("X-RateLimit-Remaining", "").strip() == "0"

    def retryable_response(self, method: str, response: requests.Response) -> bool:
        limited = self.rate_limited(response)
        if limited and 429 not in self.statuses:
            return False
        if not limited and response.status_code not in self.statuses:
            return False
        return limited or response.status_code in NOT_PROCESSED or method.upper() in self.methods

    def retryable_error(self, method: str, error: Exception) -> bool:
        if not isinstance(error, (requests.ConnectionError, requests.Timeout)):
            return False
        return method.upper() in self.methods or never_sent(error)


def never_sent(error: Exception) -> bool:
    """A connection that was refused or never made: the server has not seen the request."""
    if isinstance(error, requests.ConnectTimeout):
        return True
    reason = getattr(error.args[0], "reason", None) if error.args else None
    return isinstance(reason, (NewConnectionError, ConnectTimeoutError))


def _number(text: str) -> float | None:
    try:
        value = float(text.strip())
    except (TypeError, ValueError):
        return None
    return value if value == value and value not in (float("inf"), float("-inf")) else None


def retry_after_s(value: str, now: float) -> float | None:
    """Retry-After: a number of seconds, or an HTTP date (compared with `now`, a Unix time)."""
    seconds = _number(value)
    if seconds is not None:
        return max(0.0, seconds)
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:  # an HTTP date is always GMT
        from datetime import timezone

        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - now)


def reset_s(value: str, now: float) -> float | None:
    """X-RateLimit-Reset / RateLimit-Reset: seconds from now, or a Unix time."""
    number = _number(value)
    if number is None:
        return None
    if number > UNIX_TIME_FROM * 1000:
        number /= 1000  # milliseconds
    if number > UNIX_TIME_FROM:
        return max(0.0, number - now)
    return max(0.0, number)


def server_wait(policy: RetryPolicy, response: requests.Response, now: float) -> tuple[float, str] | None:
    """The wait the server asked for, and the header that said it."""
    value = response.headers.get("Retry-After")
    if value:
        seconds = retry_after_s(value, now)
        if seconds is not None:
            return seconds, "Retry-After"
    if policy.rate_limited(response):
        for name in RESET_HEADERS:
            value = response.headers.get(name)
            if value:
                seconds = reset_s(value, now)
                if seconds is not None:
                    return seconds, name
    return None
