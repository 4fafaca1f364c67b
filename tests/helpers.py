"""Small helpers shared by the tests."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, TypeVar

import duckdb

T = TypeVar("T")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DEMO_HOST = "127.0.0.1:8765"


def example(name: str, api_url: str) -> str:
    """One of the bundled example scripts, pointed at a demo API started by the test."""
    text = (EXAMPLES / name).read_text()
    return text.replace(f"http://{DEMO_HOST}", api_url)


def warehouse_rows(data_dir: Path, sql: str) -> list[tuple]:
    path = data_dir / "warehouse.duckdb"
    if not path.exists():
        return []
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


def table_exists(data_dir: Path, table: str) -> bool:
    return bool(warehouse_rows(data_dir, f"SELECT 1 FROM information_schema.tables WHERE table_name = '{table}'"))


def capture_queued_runs() -> list[str]:
    """Keep the ids of the runs queued from now on instead of executing them (the process's
    services are built again, in the foreground, by the next bootstrap.build())."""
    from core import bootstrap, events

    services = bootstrap.build()
    queued: list[str] = []
    events.bus.clear(events.RunQueued)
    events.bus.subscribe(events.RunQueued, lambda event: queued.append(event.run_id))
    services.submit = lambda run_id: None  # queued above already
    return queued


def wait_until(condition: Callable[[], T], timeout_s: float, message: str | Callable[[], str],
               interval_s: float = 0.05) -> T:
    """Poll `condition` until it returns something truthy, and return that; fail with `message`
    (or what a callable `message` says then) once `timeout_s` has passed. In place of a fixed
    sleep: as quick as the machine allows, as patient as the timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message() if callable(message) else message} (after {timeout_s} s)")
        time.sleep(interval_s)
