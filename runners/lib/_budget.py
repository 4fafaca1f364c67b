"""The request budget of one connection: at most `rate` requests started in any window of
`per` seconds, at most `max_in_flight` requests at once, and a pause that a 429 sets for
every thread of the run.

The rate is a sliding log, not a token bucket: a bucket that holds `rate` tokens lets
through nearly twice `rate` in one fixed second of the server's clock, and most APIs count in
fixed windows. A request reaches the server some time after it starts here (a new connection
takes a while) and before its answer comes back, so the log holds, for each request, the time
its answer came (at most a quarter of the period after its start, up to 2 s; that long while
it is in flight): a request starts only once `per` has passed since that time for the request
`rate` places before it. However late the requests arrive, no window of the server's clock of
`per` seconds sees more than `rate` of them. Each start is a reservation made under a lock, so
threads are served in the order they asked and none overtakes the budget while another sleeps.
"""

from __future__ import annotations

import random as _random
import sys
import threading
import time as _time
from collections import deque
from contextlib import contextmanager

from lib import _inspect

PERIODS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}
# A budget wait shorter than this is ordinary throttling and is not worth a line in the log.
LOG_WAITS_FROM_S = 1.0


class Timing:
    """The clocks and the sleep a connection uses; tests swap in a fake one."""

    monotonic = staticmethod(_time.monotonic)
    time = staticmethod(_time.time)
    sleep = staticmethod(_time.sleep)
    random = staticmethod(_random.random)


_LOG_LOCK = threading.Lock()


def log(line: str) -> None:
    """One line in the run's log (the sandbox masks secrets in everything printed). One write
    under a lock: print() writes the newline apart, and threads' lines would run together."""
    with _LOG_LOCK:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


def period_seconds(per) -> float:
    """"second", "minute", "hour", "day" (plural or not), or a number of seconds."""
    if isinstance(per, (int, float)) and not isinstance(per, bool):
        if per <= 0:
            raise ValueError(f"per must be a positive number of seconds, got {per}")
        return float(per)
    name = str(per).strip().lower()
    if name.endswith("s") and name[:-1] in PERIODS:
        name = name[:-1]
    name = {"s": "second", "sec": "second", "min": "minute", "h": "hour", "d": "day"}.get(name, name)
    if name not in PERIODS:
        raise ValueError(f"per must be 'second', 'minute', 'hour', 'day' or a number of seconds, got {per!r}")
    return PERIODS[name]


class Budget:
    """Shared by every request of a connection, from any thread."""

    def __init__(self, rate: float | None = None, per="second", max_in_flight: int | None = None,
                 timing: Timing | None = None):
        self.timing = timing or Timing()
        self.period_s = period_seconds(per)
        if rate is not None and rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        if max_in_flight is not None and int(max_in_flight) < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {max_in_flight}")
        self.rate = rate
        self.max_in_flight = int(max_in_flight) if max_in_flight else None
        # A fractional rate (0.5 per second) is one request per 2 seconds.
        if rate is not None and rate < 1:
            self._count, self._window = 1, self.period_s / rate
        elif rate is not None:
            self._count, self._window = int(rate), self.period_s * int(rate) / rate
        else:
            self._count, self._window = 0, 0.0
        self._arrival_bound_s = min(2.0, self._window / 4)
        # [time] per request: its start plus the bound while in flight, then when it ended.
        self._log: deque[list[float]] = deque(maxlen=self._count or None)
        self._last_start = float("-inf")
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(self.max_in_flight) if self.max_in_flight else None
        self.paused_until = 0.0
        self.waited_s = 0.0  # time spent waiting for the budget, all threads together

    def describe(self) -> str:
        parts = []
        if self.rate is not None:
            per = next((name for name, s in PERIODS.items() if s == self.period_s), f"{self.period_s:g} s")
            parts.append(f"{self.rate:g} per {per}")
        if self.max_in_flight:
            parts.append(f"{self.max_in_flight} in flight")
        return ", ".join(parts) or "unlimited"

    def pause_for(self, seconds: float) -> None:
        """No request of this connection starts for `seconds` (the server said so)."""
        with self._lock:
            self.paused_until = max(self.paused_until, self.timing.monotonic() + seconds)

    def _reserve(self) -> tuple[float, list[float] | None]:
        """The time this request may start, reserved now: how long to wait, and its entry."""
        with self._lock:
            now = self.timing.monotonic()
            start = max(now, self.paused_until)
            if not self._count:
                return start - now, None
            start = max(start, self._last_start)  # first come, first served
            if len(self._log) == self._count:
                start = max(start, self._log[0][0] + self._window)
            entry = [start + self._arrival_bound_s]
            self._log.append(entry)
            self._last_start = start
            return start - now, entry

    def _ended(self, entry: list[float] | None) -> None:
        if entry is not None:
            with self._lock:
                entry[0] = min(entry[0], self.timing.monotonic())

    @contextmanager
    def slot(self, host: str = ""):
        """Hold one of the in-flight places and one start of the rate for one request."""
        if self._slots is not None:
            self._slots.acquire()
        entry = None
        try:
            wait, entry = self._reserve()
            if wait > 0:
                if wait >= LOG_WAITS_FROM_S:
                    where = f" for {host}" if host else ""
                    log(f"request budget ({self.describe()}) reached{where}, waiting {wait:.1f} s")
                self.waited_s += wait
                _inspect.note_wait(wait, "request budget")
                self.timing.sleep(wait)
            yield
        finally:
            self._ended(entry)
            if self._slots is not None:
                self._slots.release()
