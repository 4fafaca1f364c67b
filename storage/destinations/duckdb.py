"""The embedded warehouse: a DuckDB file (data/warehouse.duckdb by default).

Shaped chunks go in as Arrow tables, inside one transaction; DuckDB's DDL is transactional, so
new and widened columns roll back with the rows when a load fails. Identifiers are matched
case-insensitively, as DuckDB does.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pyarrow as pa

from core.settings import Settings, get_settings
from storage.destinations import spool
from storage.destinations.base import Capabilities, IdentifierRules
from storage.destinations.sql import DUCKDB, quote
from storage.destinations.sql_warehouse import SqlDestination

_LOCK_RETRY_S = 30.0

__all__ = ["DuckDBDestination", "connect", "quote"]


def connect(path: Path, retry_s: float = _LOCK_RETRY_S) -> duckdb.DuckDBPyConnection:
    """Open the warehouse, waiting while another process holds DuckDB's file lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + retry_s
    while True:
        try:
            return duckdb.connect(str(path))
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


class _Session:
    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con

    def execute(self, sql: str, params: Sequence = ()) -> None:
        self.con.execute(sql, list(params))

    def query(self, sql: str, params: Sequence = ()) -> list[tuple]:
        return self.con.execute(sql, list(params)).fetchall()

    def executemany(self, sql: str, rows: list[Sequence]) -> None:
        self.con.executemany(sql, [list(r) for r in rows])


class DuckDBDestination(SqlDestination):
    name = "duckdb"
    title = "DuckDB warehouse"
    capabilities = Capabilities(
        load_types=frozenset({"incremental", "truncate_insert", "upsert"}),
        json_type="JSON",
        identifiers=IdentifierRules(max_length=255, case_insensitive=True),
        widens_columns=True,
    )
    dialect = DUCKDB

    def __init__(self, settings: Settings | None = None, path: Path | None = None,
                 chunk_rows: int = spool.DEFAULT_CHUNK_ROWS):
        self.settings = settings or get_settings()
        self.path = Path(path or self.settings.duckdb_path)
        self.chunk_rows = chunk_rows

    def describe_target(self, table: str) -> str:
        return f"table {table} in the DuckDB file {self.path}"

    @contextmanager
    def connect(self) -> Iterator[_Session]:
        with connect(self.path) as con:
            yield _Session(con)

    def has_run(self, table: str, run_id: str) -> bool:
        if not self.path.exists():
            return False
        return super().has_run(table, run_id)

    def write(self, session: _Session, table: str, columns: list[str], batches: Iterable[pa.Table]) -> None:
        names = ", ".join(quote(c) for c in columns)
        for batch in batches:
            session.con.register("_tributary_batch", batch.rename_columns(columns))
            try:
                session.con.execute(f"INSERT INTO {quote(table)} ({names}) SELECT {names} FROM _tributary_batch")
            finally:
                session.con.unregister("_tributary_batch")

    def query(self, sql: str, params: list | None = None):
        """Read-only access for the CLI, the Data page and tests."""
        with duckdb.connect(str(self.path), read_only=True) as con:
            return con.execute(sql, params or []).fetchall()
