"""The `lib` package a feed's script imports inside the sandbox.

Peak's contract: `from lib import outputStream, metadata`. Extensions: `connection` (a
requests.Session with the feed's connection auth applied), `trigger` (the webhook payload),
`logger`. Only the standard library is needed, plus `requests` for `connection`.
"""

from lib._runtime import logger, metadata, outputStream, trigger


def __getattr__(name):
    # `connection` imports requests; build it only when a script asks for it.
    if name == "connection":
        from lib._connection import build_session

        session = build_session()
        globals()["connection"] = session
        return session
    raise AttributeError(f"module 'lib' has no attribute {name!r}")


__all__ = ["outputStream", "metadata", "connection", "trigger", "logger"]
