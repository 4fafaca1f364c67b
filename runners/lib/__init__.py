"""The `lib` package a feed's script imports inside the sandbox.

Peak's contract: `from lib import outputStream, metadata`. Extensions: `connection` (a
requests.Session with the feed's connection auth applied, retries and a request budget:
`connection.configure(rate=10, per="second", max_in_flight=4, retries=5)`), `fetch_many`
(requests in parallel, responses in order), `paginate` (every page of an endpoint),
`trigger` (the webhook payload), `logger`. Only the standard library is needed, plus
`requests` for `connection`, `fetch_many` and `paginate`.
"""

import threading

from lib._runtime import logger, metadata, outputStream, trigger

_BUILDING = threading.Lock()


def __getattr__(name):
    # `connection` imports requests; build it only when a script asks for it, once even when
    # threads ask at the same time (its budget must be the run's one budget).
    if name == "connection":
        with _BUILDING:
            if "connection" not in globals():
                from lib._connection import build_session

                globals()["connection"] = build_session()
        return globals()["connection"]
    if name in ("fetch_many", "paginate"):
        from lib import _fetch

        value = getattr(_fetch, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lib' has no attribute {name!r}")


__all__ = ["outputStream", "metadata", "connection", "trigger", "logger", "fetch_many", "paginate"]
