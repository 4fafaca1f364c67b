"""The embedded warehouse: a DuckDB file (data/warehouse.duckdb by default).

Most runs take the fast path (duckdb_staging.py): DuckDB parses and types the spool part by part,
while the script still runs, and load() inserts the staged parts. Runs it cannot type exactly
as the generic load would take the generic load: shaped chunks go in as Arrow tables. Either
way the load is one transaction; DuckDB's DDL is transactional, so new and widened columns roll
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
from storage.destinations import duckdb_staging, spool
from storage.destinations.base import (LOADED_AT_COLUMN, RUN_ID_COLUMN, Capabilities, IdentifierRules, LoadRequest,
                                       LoadResult, Stager)
from storage.destinations.sql import DUCKDB, quote
from storage.destinations.sql_warehouse import SqlDestination

if TYPE_CHECKING:
    import pyarrow as pa

_LOCK_RETRY_S = 30.0
_STAGED_LOAD_TYPES = ("incremental", "truncate_insert")  # upserts merge: the generic load's work

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

    def stager(self, load_type: str, work_dir: Path) -> Stager | None:
        if load_type not in _STAGED_LOAD_TYPES:
            return None
        return duckdb_staging.DuckDBStager(work_dir, self.capabilities.identifiers)

    def load(self, request: LoadRequest) -> LoadResult:
        staged = request.staged if isinstance(request.staged, duckdb_staging.DuckDBStager) else None
        if staged is None and request.load_type in _STAGED_LOAD_TYPES:
            # Nothing was staged while the script ran (a load of a finished spool): stage it now.
            if self.has_run(request.table, request.run_id):
                return LoadResult(rows=0, skipped=True, location=self.describe_target(request.table))
            with self._staged_now(request) as staged:
                return self._load_staged_or_generic(request, staged)
        return self._load_staged_or_generic(request, staged)

    @contextmanager
    def _staged_now(self, request: LoadRequest) -> Iterator[duckdb_staging.DuckDBStager]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        work_dir = Path(tempfile.mkdtemp(prefix="tributary-stage-", dir=self.path.parent))
        stager = duckdb_staging.DuckDBStager(work_dir, self.capabilities.identifiers, threads=os.cpu_count())
        stager.script_ended()  # the spool is complete: its parts are written side by side
        try:
            for part in request.files:
                stager.add(Path(part))
            yield stager
        finally:
            stager.close()

    def _load_staged_or_generic(self, request: LoadRequest, staged: duckdb_staging.DuckDBStager | None) -> LoadResult:
        if staged is not None:
            try:
                return self._load_staged(request, staged)
            except duckdb_staging.NotNative:
                pass  # rolled back
        return super().load(request)  # the generic load takes the run from the start

    def _load_staged(self, request: LoadRequest, stager: duckdb_staging.DuckDBStager) -> LoadResult:
        stager.wait()  # for parts still being written: before the warehouse is opened, not after
        if stager.gave_up:
            raise duckdb_staging.NotNative(stager.gave_up)
        if stager.parts != len(request.files) or not stager.rows or not stager.columns():
            raise duckdb_staging.NotNative("the staged parts are not the whole spool, or it holds no fields")
        table = self.table_name(request.table)
        with self.connect() as session:
            con = session.con
            con.execute(f"SET memory_limit = '{duckdb_staging.MEMORY_LIMIT}'")
            con.execute("SET preserve_insertion_order = false")  # lets DuckDB insert in parallel
            con.execute("SET TimeZone = 'UTC'")
            if self._ledger_has(session, table, request.run_id):
                return LoadResult(rows=0, skipped=True, location=self.describe_target(request.table))
            existing = self.existing_columns(session, table)
            targets, new = duckdb_staging.plan(stager.columns(), existing)
            self._ensure_ledger(session)
            con.execute("BEGIN")
            try:
                changes = self._native_ddl(session, table, targets, new, existing is None)
                if request.load_type == "truncate_insert" and existing is not None:
                    con.execute(f"DELETE FROM {quote(table)}")
                rows = stager.insert(con, table, targets, self.dialect.native, request)
                self._record(session, table, request, rows, 0)
                con.execute("COMMIT")
            except (duckdb.ConversionException, duckdb.InvalidInputException, duckdb.OutOfMemoryException) as exc:
                con.execute("ROLLBACK")
                raise duckdb_staging.NotNative(str(exc)) from exc
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return LoadResult(rows=rows, location=self.describe_target(request.table), schema_changes=changes)

    def _native_ddl(self, session: _Session, table: str, targets: dict, new: list[str], create: bool) -> list[str]:
        native = self.dialect.native
        if create:
            columns = [f"{quote(f)} {native(k)}" for f, k in targets.items()]
            columns += [f"{quote(RUN_ID_COLUMN)} {self.dialect.text} NOT NULL",
                        f"{quote(LOADED_AT_COLUMN)} {self.dialect.timestamp} NOT NULL"]
            session.execute(f"CREATE TABLE {quote(table)} ({', '.join(columns)})")
            return [f"created table {table} with {len(targets)} columns"]
        for field in new:
            session.execute(f"ALTER TABLE {quote(table)} ADD COLUMN {quote(field)} {native(targets[field])}")
        return [f"added column {f} ({native(targets[f])})" for f in new]

    def query(self, sql: str, params: list | None = None):
        """Read-only access for the CLI, the Data page and tests."""
        with duckdb.connect(str(self.path), read_only=True) as con:
            return con.execute(sql, params or []).fetchall()
