"""The embedded warehouse: a DuckDB file (data/warehouse.duckdb by default).

Most runs take the native load (NativeLoad): DuckDB parses and types the spool part by part
while the script still runs (staging.py), and the load inserts the staged Parquet parts. Runs
it cannot type exactly as the generic load would take the generic load (StreamingLoad): chunks
go in as Arrow tables. Both are load steps of the one commit protocol (SqlDestination.commit),
so either way the load is one transaction, behind the same ledger check; DuckDB's DDL is transactional, so new and widened columns roll
back with the rows when a load fails. Identifiers are matched case-insensitively, as DuckDB does.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from common.settings import Settings, get_settings
from storage.destinations import spool
from storage.destinations.base import Capabilities, IdentifierRules, LoadRequest, LoadResult, Stager
from storage.destinations.column_types import ColumnType
from storage.destinations.duckdb import staging
from storage.destinations.duckdb.configuration import DuckDBSettings
from storage.destinations.schema import frozen_error, schema_diff
from storage.destinations.sql import SqlDialect, quote
from storage.destinations.sql_loads import StreamingSqlDestination
from storage.destinations.sql_warehouse import TableLoad

if TYPE_CHECKING:
    import pyarrow as pa

_LOCK_RETRY_S = 30.0
_NATIVE_LOAD_TYPES = ("incremental", "truncate_insert")  # upserts merge: the generic load's work
# Values the staged types turn out not to hold, or a run too big for the native load's memory:
# rolled back, and the generic load takes the run from the start.
_GIVES_WAY = (staging.NotNative, duckdb.ConversionException, duckdb.InvalidInputException,
              duckdb.OutOfMemoryException)

DUCKDB = SqlDialect(
    types={
        ColumnType.BOOLEAN: "BOOLEAN", ColumnType.INTEGER: "BIGINT", ColumnType.FLOAT: "DOUBLE",
        ColumnType.TIMESTAMP: "TIMESTAMPTZ", ColumnType.STRING: "VARCHAR", ColumnType.JSON: "JSON",
    },
    param="?",
)

__all__ = ["DUCKDB", "DuckDBDestination", "NativeLoad", "connect", "quote"]


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


class NativeLoad(TableLoad):
    """The load step of a run a DuckDBStager staged whole: DuckDB inserts the typed Parquet
    parts itself. Raises staging.NotNative (before connecting, or while planning) when the
    parts cannot be loaded as they are."""

    destination: DuckDBDestination

    def __init__(self, destination: DuckDBDestination, request: LoadRequest, stager: staging.DuckDBStager):
        super().__init__(destination, request)
        self.stager = stager

    def start(self) -> None:
        self.stager.wait()  # for parts still being written: before the warehouse is opened, not after
        if self.stager.gave_up:
            raise staging.NotNative(self.stager.gave_up)
        if self.stager.parts != len(self.request.files) or not self.stager.rows or not self.stager.columns():
            raise staging.NotNative("the staged parts are not the whole spool, or it holds no fields")

    def prepare(self, session: _Session) -> None:
        session.execute(f"SET memory_limit = '{staging.MEMORY_LIMIT}'")
        session.execute("SET preserve_insertion_order = false")  # lets DuckDB insert in parallel
        session.execute("SET TimeZone = 'UTC'")
        existing = self.destination.existing_columns(session, self.table)
        self.targets, self.new = staging.plan(self.stager.columns(), existing)
        self.table_exists = existing is not None
        native = self.destination.dialect.native
        if self.table_exists and self.new and self.request.schema_policy == "freeze":
            raise frozen_error(self.table, [(f, native(self.targets[f])) for f in self.new], [])
        if self.table_exists and self.new and self.request.schema_policy == "discard_new_columns":
            raise staging.NotNative("new fields to leave out: the generic load's work")
        if not self.table_exists:
            self.schema_diff = schema_diff(True, [(f, native(k)) for f, k in self.targets.items()], [], [])
        else:
            self.schema_diff = schema_diff(False, [(f, native(self.targets[f])) for f in self.new], [], [])

    def create_tables(self, session: _Session) -> None:
        native, table = self.destination.dialect.native, quote(self.table)
        if not self.table_exists:
            columns = [f"{quote(f)} {native(k)}" for f, k in self.targets.items()] + self.destination.audit_columns()
            session.execute(f"CREATE TABLE {table} ({', '.join(columns)})")
            self.schema_changes = [f"created table {self.table} with {len(self.targets)} columns"]
            return
        for field in self.new:
            session.execute(f"ALTER TABLE {table} ADD COLUMN {quote(field)} {native(self.targets[field])}")
        self.schema_changes = [f"added column {f} ({native(self.targets[f])})" for f in self.new]

    def load_rows(self, session: _Session) -> None:
        if self.request.load_type == "truncate_insert" and self.table_exists:
            session.execute(f"DELETE FROM {quote(self.table)}")
        self.rows = self.stager.insert(session.con, self.table, self.targets, self.destination.dialect.native,
                                       self.request)


class DuckDBDestination(StreamingSqlDestination):
    name = "duckdb"
    title = "DuckDB warehouse"
    capabilities = Capabilities(
        load_types=frozenset({"incremental", "truncate_insert", "upsert"}),
        json_type="JSON",
        identifiers=IdentifierRules(max_length=255, case_insensitive=True),
        widens_columns=True,
        local_files=True,
    )
    dialect = DUCKDB

    def __init__(self, settings: Settings | None = None, path: Path | None = None,
                 chunk_rows: int = spool.DEFAULT_CHUNK_ROWS):
        self.settings = settings or get_settings()
        self.path = Path(path or DuckDBSettings.from_settings(self.settings).path)
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

    def stager(self, load_type: str, work_dir: Path) -> Stager | None:
        if load_type not in _NATIVE_LOAD_TYPES:
            return None
        return staging.DuckDBStager(work_dir, self.capabilities.identifiers)

    def load(self, request: LoadRequest) -> LoadResult:
        """The native load when the run's types allow it, else the generic one; both commit
        through the same protocol (SqlDestination.commit)."""
        self.require_load_type(request)
        if request.load_type not in _NATIVE_LOAD_TYPES:
            return super().load(request)
        if isinstance(request.staged, staging.DuckDBStager):
            return self._native_or_generic(request, request.staged)
        # Nothing was staged while the script ran (a load of a finished spool): stage it now.
        if self.has_run(request.table, request.run_id):
            return self.skipped(request)
        with self._staged_now(request) as stager:
            return self._native_or_generic(request, stager)

    def _native_or_generic(self, request: LoadRequest, stager: staging.DuckDBStager) -> LoadResult:
        try:
            return self.commit(NativeLoad(self, request, stager))
        except _GIVES_WAY:
            return super().load(request)  # rolled back: the generic load takes the run from the start

    @contextmanager
    def _staged_now(self, request: LoadRequest) -> Iterator[staging.DuckDBStager]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        work_dir = Path(tempfile.mkdtemp(prefix="tributary-stage-", dir=self.path.parent))
        stager = staging.DuckDBStager(work_dir, self.capabilities.identifiers, threads=os.cpu_count())
        stager.script_ended()  # the spool is complete: its parts are written side by side
        try:
            for part in request.files:
                stager.add(Path(part))
            yield stager
        finally:
            stager.close()

    def query(self, sql: str, params: list | None = None):
        """Read-only access for the CLI, the Data page and tests."""
        with duckdb.connect(str(self.path), read_only=True) as con:
            return con.execute(sql, params or []).fetchall()
