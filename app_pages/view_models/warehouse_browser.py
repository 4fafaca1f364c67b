"""The Data page's services: the warehouse's tables, a read-only SQL query, the Parquet
datasets, and records loaded per run.

Queries run in a short-lived process (core.warehouse_reader) with a read-only, sandboxed
DuckDB connection: see that module for why. While a load holds the file, reads wait a little
and then report that the warehouse is busy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa

from common.errors import TributaryError
from core.feeds import list_feeds
from core.runs import list_runs
from common.settings import PROJECT_ROOT, get_settings
from storage.destinations.duckdb import quote

MAX_ROWS = 1000
QUERY_TIMEOUT_S = 60
BUSY_WAIT_S = 10.0
_EXIT_QUERY_FAILED, _EXIT_LOCKED = 3, 4


class QueryFailed(TributaryError):
    """The SQL could not run; the message is DuckDB's own."""


class WarehouseBusy(TributaryError):
    """A load holds the warehouse file longer than we wait."""


@dataclass
class QueryResult:
    frame: pd.DataFrame
    truncated: bool  # more rows exist than were fetched
    duration_s: float


def embedded_warehouse() -> bool:
    return get_settings().warehouse == "local"


def warehouse_path() -> Path:
    return get_settings().duckdb_path


def _reader_env() -> dict[str, str]:
    # Nothing of the app's environment (secret key, database URL...) reaches the reader.
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(PROJECT_ROOT),
            "LANG": os.environ.get("LANG", "C.UTF-8")}


def _read(sql: str, max_rows: int, timeout_s: float) -> pa.Table:
    deadline = time.monotonic() + BUSY_WAIT_S
    while True:
        proc = subprocess.run(
            [sys.executable, "-m", "core.warehouse_reader", str(warehouse_path()), str(max_rows)],
            input=json.dumps({"sql": sql}).encode("utf-8"), capture_output=True, timeout=timeout_s,
            env=_reader_env(), cwd=str(PROJECT_ROOT),
        )
        if proc.returncode == 0:
            return pa.ipc.open_stream(proc.stdout).read_all()
        message = _error_message(proc.stderr)
        if proc.returncode == _EXIT_LOCKED:
            if time.monotonic() < deadline:
                time.sleep(0.3)
                continue
            raise WarehouseBusy("the warehouse is busy loading a run; try again in a moment")
        if proc.returncode == _EXIT_QUERY_FAILED:
            raise QueryFailed(message)
        raise TributaryError(f"the warehouse reader stopped unexpectedly: {message}")


def _error_message(stderr: bytes) -> str:
    text = stderr.decode("utf-8", errors="replace").strip()
    try:
        return json.loads(text)["error"]
    except (ValueError, KeyError, TypeError):
        return text.splitlines()[-1] if text else "no details"


def run_query(sql: str, max_rows: int = MAX_ROWS, timeout_s: float = QUERY_TIMEOUT_S) -> QueryResult:
    """Run the user's SQL read-only against the embedded warehouse; at most max_rows rows."""
    if not sql.strip():
        raise QueryFailed("the query is empty")
    if not warehouse_path().exists():
        raise QueryFailed("the warehouse is empty: no feed has loaded data into DuckDB yet")
    started = time.monotonic()
    try:
        table = _read(sql, max_rows, timeout_s)
    except subprocess.TimeoutExpired:
        raise QueryFailed(f"the query ran longer than {timeout_s:.0f} s and was stopped") from None
    frame = table.to_pandas()
    truncated = len(frame) > max_rows
    return QueryResult(frame.head(max_rows), truncated, round(time.monotonic() - started, 3))


def list_tables() -> pd.DataFrame:
    """The warehouse's tables with their row and column counts (empty before any load).
    Tributary's own bookkeeping tables start with "_", which no feed name can: not shown."""
    columns = ["table", "rows", "columns"]
    if not warehouse_path().exists():
        return pd.DataFrame(columns=columns)
    names = run_query(
        "SELECT table_name, column_count FROM duckdb_tables() "
        "WHERE schema_name = 'main' AND NOT starts_with(table_name, '_') ORDER BY table_name"
    ).frame
    if names.empty:
        return pd.DataFrame(columns=columns)
    counts_sql = " UNION ALL ".join(
        f"SELECT '{name.replace(chr(39), chr(39) * 2)}' AS table_name, count(*) AS rows FROM {quote(name)}"
        for name in names["table_name"]
    )
    counts = run_query(counts_sql).frame
    merged = names.merge(counts, on="table_name")
    return merged.rename(columns={"table_name": "table", "column_count": "columns"})[columns]


def example_query(table: str | None) -> str:
    """What the SQL box starts with: a look at the first table."""
    return f"SELECT * FROM {quote(table)} LIMIT 100" if table else "SELECT 42 AS answer"


def table_preview(table: str, limit: int = 100) -> QueryResult:
    return run_query(f"SELECT * FROM {quote(table)} LIMIT {int(limit)}", max_rows=limit)


def parquet_datasets() -> pd.DataFrame:
    """One row per feed with Parquet files: how many runs, files and bytes, and where."""
    root = get_settings().parquet_dir
    rows = []
    if root.exists():
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            runs = [r for r in folder.glob("run_id=*") if r.is_dir()]
            files = [f for r in runs for f in r.glob("*.parquet")]
            rows.append({"dataset": folder.name, "runs": len(runs), "files": len(files),
                         "bytes": sum(f.stat().st_size for f in files), "location": str(folder)})
    return pd.DataFrame(rows, columns=["dataset", "runs", "files", "bytes", "location"])


def records_per_run(limit: int = 300) -> pd.DataFrame:
    """Records loaded by each successful run of the feeds that exist, oldest first (for a
    chart): a deleted feed's runs are left out. `label` names the run on the chart's axis."""
    feeds = {f.name for f in list_feeds()}
    runs = [r for r in list_runs(limit=limit, status="succeeded") if r.feed_name in feeds]
    rows = [{"feed": r.feed_name, "run": r.id, "finished": r.finished_at or r.created_at,
             "records": r.records_loaded} for r in runs]
    frame = pd.DataFrame(rows, columns=["feed", "run", "finished", "records"])
    frame = frame.sort_values("finished").reset_index(drop=True)
    frame["label"] = [f"{t:%m-%d %H:%M:%S} · {feed}" for t, feed in zip(frame["finished"], frame["feed"])]
    return frame
