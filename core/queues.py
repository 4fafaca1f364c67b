"""Queues: which workers execute a feed's runs, when the executor is `celery`.

A feed may be pinned to a queue (`queue`: a worker with more memory, one inside a customer's
network); a worker consumes the queues it is started with (`python -m core.worker --queues
big`, or TRIBUTARY_WORKER_QUEUES), the default queue when none. A feed whose destinations keep
their data in files on the app's host (the embedded DuckDB warehouse, local Parquet files:
`local_files` in their capabilities) runs on the app host's queue, which only the app's own
worker consumes (core/bootstrap.py starts it in the app process): a worker elsewhere would load
into a file of its own, not the app's. Pinning such a feed to another queue is refused.

Nothing here imports Celery: the feed rules use it whatever the executor.
"""

from __future__ import annotations

from storage.destinations import destination_class

DEFAULT_QUEUE = "tributary.runs"  # every worker's, unless it is told otherwise
APP_HOST_QUEUE = "tributary.app-host"  # the app process's own worker only


def app_host_destinations(destinations: list[str]) -> list[str]:
    """The titles of the destinations whose data is a file on the app's host."""
    titles = []
    for name in destinations:
        try:
            cls = destination_class(name)
        except Exception:  # noqa: BLE001 - an unknown destination is reported by the feed's own rules
            continue
        if cls.capabilities.local_files:
            titles.append(cls.title)
    return titles


def app_host_reason(destinations: list[str]) -> str | None:
    """Why the feed's runs go to the app host's worker, or None when they need not."""
    titles = app_host_destinations(destinations)
    if not titles:
        return None
    one = len(titles) == 1
    return (f"{' and '.join(titles)} {'is a file' if one else 'are files'} on the app's host, and only the "
            f"app host's worker has {'it' if one else 'them'}: this feed's runs execute there (in the app's "
            "process), not on another worker")


def pin_problems(queue: str | None, destinations: list[str]) -> list[tuple[str, str]]:
    """A feed loading into files on the app's host cannot be pinned to another queue."""
    reason = app_host_reason(destinations)
    if not queue or queue == APP_HOST_QUEUE or reason is None:
        return []
    return [("queue", f"{queue!r} cannot be chosen: {reason}; leave the queue empty")]


def route(queue: str | None, destinations: list[str]) -> str:
    """The queue a feed's runs are sent to."""
    if app_host_destinations(destinations):
        return APP_HOST_QUEUE
    return queue or DEFAULT_QUEUE
