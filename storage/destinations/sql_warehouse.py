"""The commit protocol shared by the SQL warehouses (DuckDB, PostgreSQL, Redshift, Snowflake),
written once, in SqlDestination.load:

    ledger check   the run id already in _tributary_loads: skipped (the exactly-once guard)
    prepare        outside any transaction: read the table, plan its columns, stage files
    BEGIN
    DDL            create or alter the table (before BEGIN where DDL commits on its own)
    load           the rows (and rejects), the one step each way of loading implements
    ledger row     the run recorded in _tributary_loads
    COMMIT         or, on any error, ROLLBACK; the first error is the one raised

A TableLoad is one run's load into one table: the steps the protocol calls. The ways of
loading are TableLoads: StreamingLoad and StagedLoad (sql_loads.py) for shaped Arrow chunks,
DuckDB's native load of the Parquet its stager wrote (duckdb/destination.py). The ledger row is
what makes a retried load a no-op: `has_run` looks there, not at the data, so a run that loaded
no rows, or whose rows a later Truncate and Insert replaced, still counts.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager, suppress
from typing import ClassVar, Protocol

from storage.destinations import spool
from storage.destinations.base import (
    LOAD_LEDGER,
    LOADED_AT_COLUMN,
    REJECTS_SUFFIX,
    RUN_ID_COLUMN,
    Destination,
    LoadRequest,
    LoadResult,
    undo_keeping_error,
)
from storage.destinations.column_types import ColumnType
from storage.destinations.schema import ExistingColumns, SchemaPlan
from storage.destinations.sql import SqlDialect, column_type_of, quote

_LEDGER_RACE_WAIT_S = 5.0
_LEDGER_COLUMNS = ("table_name", "run_id", "load_type", "records", "rejected", "loaded_at")


class SqlSession(Protocol):
    """A connection in autocommit mode: transactions are explicit BEGIN / COMMIT / ROLLBACK."""

    def execute(self, sql: str, params: Sequence = ()) -> None: ...

    def query(self, sql: str, params: Sequence = ()) -> list[tuple]: ...

    def executemany(self, sql: str, rows: list[Sequence]) -> None: ...


class TableLoad(ABC):
    """One run's load into one table: the steps SqlDestination.load's protocol calls, in
    this order, each at most once, and `close` always:

        start()               before connecting: work that needs no warehouse
        prepare(session)      connected, the run not in the ledger, no transaction open:
                              read the table, plan, stage. Changes nothing in the table.
        create_tables(s)      DDL: create or alter the table (and work tables). Inside the
                              transaction where the dialect's DDL is transactional.
        load_rows(s)          inside the transaction: the rows; sets `rows` and `rejected`.
        drop_created(s)       only where DDL commits on its own, after a failure: take back
                              what create_tables did. Best effort.
        close()               release what the load holds (files, logs).

    Any step may raise; the protocol then rolls back and raises that first error."""

    def __init__(self, destination: SqlDestination, request: LoadRequest):
        self.destination = destination
        self.request = request
        self.table = destination.table_name(request.table)
        self.rows = 0
        self.rejected = 0
        self.schema_changes: list[str] = []
        self.schema_diff: dict = {}  # see schema.SchemaPlan.diff
        self.rejected_reasons: list[str] = []

    def start(self) -> None:
        """Work before the warehouse is opened."""

    def prepare(self, session: SqlSession) -> None:
        """Work outside the transaction, once the run is known not to be loaded."""

    @abstractmethod
    def create_tables(self, session: SqlSession) -> None:
        """Create or alter the target table for this run's fields."""

    @abstractmethod
    def load_rows(self, session: SqlSession) -> None:
        """Apply the load type and insert the rows (and the rejects), in the transaction."""

    def drop_created(self, session: SqlSession) -> None:
        """Take back the DDL of a failed load where it committed on its own."""

    def close(self) -> None:
        """Let go of what the load holds; called whether it committed or not."""

    def result(self) -> LoadResult:
        return LoadResult(rows=self.rows, location=self.destination.describe_target(self.request.table),
                          rejected=self.rejected, schema_changes=self.schema_changes, schema_diff=self.schema_diff,
                          rejected_reasons=self.rejected_reasons)


class SqlDestination(Destination):
    """A warehouse that speaks SQL. Subclasses bring the driver (`connect`) and the way of
    loading (`table_load`); the commit protocol is `load`'s."""

    dialect: ClassVar[SqlDialect]
    chunk_rows: int = spool.DEFAULT_CHUNK_ROWS

    @abstractmethod
    def connect(self) -> AbstractContextManager[SqlSession]:
        """A session on the warehouse, in autocommit mode, in the destination's schema."""

    @abstractmethod
    def table_load(self, request: LoadRequest) -> TableLoad:
        """The load step for this request (StreamingLoad, StagedLoad, or the destination's own)."""

    # ------------------------------------------------------------ the commit protocol

    def load(self, request: LoadRequest) -> LoadResult:
        self.require_load_type(request)
        return self.commit(self.table_load(request))

    def commit(self, load: TableLoad) -> LoadResult:
        """Run one TableLoad through the protocol (see the module's docstring), then close it."""
        try:
            result = self._protocol(load)
        except BaseException as exc:
            undo_keeping_error(exc, load.close, "Cleaning up the failed load")
            raise
        load.close()
        return result

    def _protocol(self, load: TableLoad) -> LoadResult:
        load.start()
        with self.connect() as session:
            if self._ledger_has(session, load.table, load.request.run_id):
                return self.skipped(load.request)
            load.prepare(session)
            self._ensure_ledger(session)
            self._apply(session, load)
        return load.result()

    def skipped(self, request: LoadRequest) -> LoadResult:
        return LoadResult(rows=0, skipped=True, location=self.describe_target(request.table))

    def _apply(self, session: SqlSession, load: TableLoad) -> None:
        if self.dialect.transactional_ddl:
            self._transaction(session, load, ddl=True)
            return
        try:
            load.create_tables(session)
            self._transaction(session, load, ddl=False)
        except BaseException:
            load.drop_created(session)
            raise

    def _transaction(self, session: SqlSession, load: TableLoad, ddl: bool) -> None:
        session.execute("BEGIN")
        try:
            if ddl:
                load.create_tables(session)
            load.load_rows(session)
            self._record(session, load)
            session.execute("COMMIT")
        except BaseException as exc:
            undo_keeping_error(exc, lambda: session.execute("ROLLBACK"), "ROLLBACK")
            raise

    # ------------------------------------------------------------ names

    def table_name(self, feed: str) -> str:
        return self.capabilities.identifiers.name(feed)

    def ident(self, name: str) -> str:
        """A name Tributary chose (audit and ledger columns), in the warehouse's case."""
        return self.capabilities.identifiers.name(name)

    def rejects_name(self, table: str) -> str:
        return self.table_name(table + REJECTS_SUFFIX)

    # ------------------------------------------------------------ reading the warehouse

    def existing_columns(self, session: SqlSession, table: str) -> ExistingColumns | None:
        rows = session.query(
            "SELECT column_name, data_type, numeric_scale FROM information_schema.columns "
            f"WHERE table_schema = current_schema() AND table_name = {self.dialect.param} ORDER BY ordinal_position",
            [table],
        )
        if not rows:
            return None
        audit = {self.ident(RUN_ID_COLUMN), self.ident(LOADED_AT_COLUMN)}
        return {name: (column_type_of(dtype, scale), dtype) for name, dtype, scale in rows if name not in audit}

    def _ledger_has(self, session: SqlSession, table: str, run_id: str) -> bool:
        ledger = self.ident(LOAD_LEDGER)
        if self.existing_columns(session, ledger) is None:
            return False
        p = self.dialect.param
        rows = session.query(
            f"SELECT 1 FROM {quote(ledger)} WHERE {quote(self.ident('table_name'))} = {p} "
            f"AND {quote(self.ident('run_id'))} = {p}",
            [table, run_id],
        )
        return bool(rows)

    def has_run(self, table: str, run_id: str) -> bool:
        with self.connect() as session:
            return self._ledger_has(session, self.table_name(table), run_id)

    def check(self) -> None:
        with self.connect() as session:
            session.query("SELECT 1")

    def drop(self, table: str) -> None:
        name = self.table_name(table)
        with self.connect() as session:
            session.execute(f"DROP TABLE IF EXISTS {quote(name)}")
            session.execute(f"DROP TABLE IF EXISTS {quote(self.rejects_name(table))}")
            ledger = self.ident(LOAD_LEDGER)
            if self.existing_columns(session, ledger) is not None:
                session.execute(f"DELETE FROM {quote(ledger)} WHERE {quote(self.ident('table_name'))} = "
                                f"{self.dialect.param}", [name])

    # ------------------------------------------------------------ DDL the loads share

    def audit_columns(self) -> list[str]:
        """The audit columns' definitions, last in every table Tributary creates."""
        return [f"{quote(self.ident(RUN_ID_COLUMN))} {self.dialect.text} NOT NULL",
                f"{quote(self.ident(LOADED_AT_COLUMN))} {self.dialect.timestamp} NOT NULL"]

    def evolve(self, session: SqlSession, plan: SchemaPlan) -> None:
        """Create the table, or add its new columns and widen the ones that must."""
        table = quote(plan.table)
        if not plan.table_exists:
            columns = [f"{quote(c.name)} {c.native}" for c in plan.columns] + self.audit_columns()
            session.execute(f"CREATE TABLE {table} ({', '.join(columns)})")
            return
        for column in plan.new:
            session.execute(f"ALTER TABLE {table} ADD COLUMN {quote(column.name)} {column.native}")
        for column in plan.widened:
            session.execute(self.dialect.widen(plan.table, column.name, column.native))

    def undo_evolve(self, session: SqlSession, plan: SchemaPlan) -> None:
        """Where DDL commits at once (Snowflake), a load that fails after it takes back the table
        or the columns it added, which hold no row of anyone's: the table is left as the load
        found it, as the rollback does elsewhere. Best effort, each statement on its own (the
        connection may be what failed); a column kept is empty, and the retry reuses it."""
        table = quote(plan.table)
        undo = [f"DROP TABLE IF EXISTS {table}"] if not plan.table_exists else [
            f"ALTER TABLE {table} DROP COLUMN IF EXISTS {quote(column.name)}" for column in plan.new]
        for statement in undo:
            with suppress(Exception):
                session.execute(statement)

    def create_rejects(self, session: SqlSession, table: str) -> str:
        name = self.rejects_name(table)
        columns = [f"{quote(self.ident('reason'))} {self.dialect.text}",
                   f"{quote(self.ident('record'))} {self.dialect.native(ColumnType.JSON)}", *self.audit_columns()]
        session.execute(f"CREATE TABLE IF NOT EXISTS {quote(name)} ({', '.join(columns)})")
        return name

    # ------------------------------------------------------------ the ledger

    def _ensure_ledger(self, session: SqlSession) -> None:
        """Create the ledger on its own, before any load's transaction: loads of different feeds
        run concurrently, and two transactions creating the same table conflict."""
        ledger = self.ident(LOAD_LEDGER)
        if self.existing_columns(session, ledger) is not None:
            return
        d = self.dialect
        types = (d.text, d.text, d.text, d.native(ColumnType.INTEGER), d.native(ColumnType.INTEGER), d.timestamp)
        body = ", ".join(f"{quote(self.ident(n))} {t} NOT NULL" for n, t in zip(_LEDGER_COLUMNS, types))
        deadline = time.monotonic() + _LEDGER_RACE_WAIT_S
        while True:
            try:
                session.execute(f"CREATE TABLE IF NOT EXISTS {quote(ledger)} ({body})")
                return
            except Exception:
                # A lost race can fail while the winner has not yet committed (DuckDB raises a
                # write-write conflict then): wait for the winner's table before calling it a failure.
                time.sleep(0.05)
                if self.existing_columns(session, ledger) is not None:
                    return
                if time.monotonic() > deadline:
                    raise

    def _record(self, session: SqlSession, load: TableLoad) -> None:
        names = ", ".join(quote(self.ident(n)) for n in _LEDGER_COLUMNS)
        request = load.request
        session.execute(
            f"INSERT INTO {quote(self.ident(LOAD_LEDGER))} ({names}) VALUES ({self.dialect.params(6)})",
            [load.table, request.run_id, request.load_type, load.rows, load.rejected, request.loaded_at],
        )
