"""The load flow shared by the SQL warehouses; each subclass brings its driver and bulk path.

    first pass   profile the spool (types of every field), before connecting
    plan         compare with the table: new columns, widened columns, unloadable fields
    second pass  shape chunks into Arrow tables and either
                   stream them into the open transaction (DuckDB, PostgreSQL COPY), or
                   stage them as files first (Redshift: S3 + COPY; Snowflake: PUT + COPY INTO)
    threshold    too many rejects fail the load before anything commits
    commit       load type applied (append, replace, delete-insert by key), rejects stored in
                 <table>__rejected, the run recorded in _tributary_loads, all in one transaction

The ledger row is what makes a retried load a no-op: `has_run` looks there, not at the data,
so a run that loaded no rows, or whose rows a later Truncate and Insert replaced, still counts.
"""

from __future__ import annotations

import time
import uuid
from abc import abstractmethod
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from storage.destinations import spool
from storage.destinations.base import (
    LOAD_LEDGER,
    LOADED_AT_COLUMN,
    REJECTS_SUFFIX,
    RUN_ID_COLUMN,
    Destination,
    LoadRequest,
    LoadResult,
)
from storage.destinations.column_types import ColumnType
from storage.destinations.schema import (
    ExistingColumns,
    PlannedColumn,
    RunProfile,
    SchemaPlan,
    plan_schema,
    profile_spool,
)
from storage.destinations.base import POSITION_COLUMN, REJECT_FIELDS
from storage.destinations.sql import SqlDialect, column_type_of, quote

if TYPE_CHECKING:
    import pyarrow as pa

    from storage.destinations.shaping import RejectLog


def _shaping():
    """The Arrow-based shaping, imported on first use: DuckDB's staged load, the common case,
    needs no Arrow (pyarrow costs a process about 0.2 s and 35 MB)."""
    from storage.destinations import shaping

    return shaping

STAGING_TABLE = "_tributary_staging"
_RANK = "_tributary_rank"
_REJECTS_PER_INSERT = 500
_LEDGER_RACE_WAIT_S = 5.0


class SqlSession(Protocol):
    def execute(self, sql: str, params: Sequence = ()) -> None: ...

    def query(self, sql: str, params: Sequence = ()) -> list[tuple]: ...

    def executemany(self, sql: str, rows: list[Sequence]) -> None: ...


@dataclass
class Staging:
    """The temporary table a load goes through: data columns are named c0, c1... (positional
    and safe for every COPY dialect), then the record's position and the audit columns."""

    table: str
    columns: list[PlannedColumn]

    @property
    def data_names(self) -> list[str]:
        return [f"c{i}" for i in range(len(self.columns))]

    @property
    def names(self) -> list[str]:
        return [*self.data_names, POSITION_COLUMN, RUN_ID_COLUMN, LOADED_AT_COLUMN]


def staged_file_table(batch: pa.Table) -> pa.Table:
    """A shaped batch as it is written to a staged file: positional names and timestamps as
    ISO text with an explicit UTC offset, which every warehouse's CAST reads the same way (a
    Parquet timestamp's zone handling differs between COPY implementations)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arrays = []
    for array in batch.columns:
        if pa.types.is_timestamp(array.type):
            text = pc.strftime(array, format="%Y-%m-%dT%H:%M:%S")
            array = pc.binary_join_element_wise(text, pa.scalar("+00:00"), "")
        arrays.append(array)
    names = [f"c{i}" for i in range(batch.num_columns - 3)] + [POSITION_COLUMN, RUN_ID_COLUMN, LOADED_AT_COLUMN]
    return pa.Table.from_arrays(arrays, names=names)


class SqlDestination(Destination):
    dialect: ClassVar[SqlDialect]
    stages_files: ClassVar[bool] = False  # files are staged before the transaction opens
    ddl_in_transaction: ClassVar[bool] = True  # False: the system commits DDL implicitly (Snowflake)
    chunk_rows: int = spool.DEFAULT_CHUNK_ROWS

    # ------------------------------------------------------------ what each warehouse provides

    @abstractmethod
    def connect(self) -> AbstractContextManager[SqlSession]:
        """A session on the warehouse, in autocommit mode, in the destination's schema."""

    def write(self, session: SqlSession, table: str, columns: list[str], batches: Iterable[pa.Table]) -> None:
        """Stream batches (columns in the order given) into a table: the bulk path of the
        warehouses that load inside the open transaction."""
        raise NotImplementedError

    def stage(self, session: SqlSession, request: LoadRequest, batches: Iterable[pa.Table]) -> Any:
        """Write the batches as files where the warehouse's COPY reads them; returns a handle."""
        raise NotImplementedError

    def copy_staged(self, session: SqlSession, staging: Staging, staged: Any) -> None:
        raise NotImplementedError

    def discard_staged(self, staged: Any) -> None:
        """Remove staged files once the load has committed or failed."""

    def staging_type(self, kind: ColumnType) -> str:
        """Staged files carry timestamps and JSON as text (see staged_file_table)."""
        if self.stages_files and kind in (ColumnType.TIMESTAMP, ColumnType.JSON):
            return self.dialect.text
        return self.dialect.native(kind)

    def from_staging(self, kind: ColumnType, expression: str) -> str:
        """The expression that turns a staging column into the target column's value."""
        if self.stages_files and kind == ColumnType.TIMESTAMP:
            return f"CAST({expression} AS {self.dialect.timestamp})"
        if self.stages_files and kind == ColumnType.JSON:
            return self.dialect.json_parse.format(expression)
        return expression

    # ------------------------------------------------------------ names

    def table_name(self, feed: str) -> str:
        return self.capabilities.identifiers.name(feed)

    def ident(self, name: str) -> str:
        """A name Tributary chose (audit and ledger columns), in the warehouse's case."""
        return self.capabilities.identifiers.name(name)

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
            session.execute(f"DROP TABLE IF EXISTS {quote(self.table_name(table + REJECTS_SUFFIX))}")
            ledger = self.ident(LOAD_LEDGER)
            if self.existing_columns(session, ledger) is not None:
                session.execute(f"DELETE FROM {quote(ledger)} WHERE {quote(self.ident('table_name'))} = "
                                f"{self.dialect.param}", [name])

    # ------------------------------------------------------------ the load

    def load(self, request: LoadRequest) -> LoadResult:
        self.require_load_type(request)
        table = self.table_name(request.table)
        with self.connect() as session, _shaping().RejectLog() as rejects:
            if self._ledger_has(session, table, request.run_id):
                return LoadResult(rows=0, skipped=True, location=self.describe_target(request.table))
            profile = profile_spool(request.files, self.chunk_rows)
            existing = self.existing_columns(session, table)
            plan = plan_schema(table, profile, existing, self.capabilities, self.dialect.native)
            # Named per load: temporary tables are per session, but not on every server.
            staging = Staging(self.ident(f"{STAGING_TABLE}_{uuid.uuid4().hex[:8]}"), plan.loaded)
            staged = None
            try:
                if self.stages_files and profile.records:
                    shaper = _shaping().Shaper(plan, request, self.capabilities, rejects, positions=True)
                    staged = self.stage(session, request, shaper.batches(self.chunk_rows))
                    _shaping().check_threshold(profile.records, rejects, request.max_rejected_ratio)
                self._ensure_ledger(session)
                try:
                    if not self.ddl_in_transaction:
                        self._prepare_tables(session, plan, profile, rejects, staging, staged is not None)
                    self._load_in_transaction(session, request, table, plan, profile, rejects, staging, staged)
                except BaseException:
                    if not self.ddl_in_transaction:
                        self._undo_evolve(session, plan)
                    raise
            finally:
                if staged is not None:
                    self.discard_staged(staged)
        return LoadResult(rows=profile.records - rejects.count, location=self.describe_target(request.table),
                          rejected=rejects.count, schema_changes=plan.changes())

    def _load_in_transaction(self, session: SqlSession, request: LoadRequest, table: str, plan: SchemaPlan,
                             profile: RunProfile, rejects: RejectLog, staging: Staging, staged) -> None:
        session.execute("BEGIN")
        try:
            if self.ddl_in_transaction:
                self._prepare_tables(session, plan, profile, rejects, staging, staged is not None)
            self._fill(session, request, plan, profile, rejects, staging, staged)
            self._record(session, table, request, profile.records - rejects.count, rejects.count)
            session.execute("COMMIT")
        except BaseException:
            with suppress(Exception):  # a broken connection rolls back by itself; keep the first error
                session.execute("ROLLBACK")
            raise

    def _undo_evolve(self, session: SqlSession, plan: SchemaPlan) -> None:
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

    def _prepare_tables(self, session: SqlSession, plan: SchemaPlan, profile: RunProfile, rejects: RejectLog,
                        staging: Staging, staged: bool) -> None:
        """DDL: the target's new and widened columns, the staging table, and the rejects table
        when the rejects are already known (staged loads)."""
        if not profile.records:
            return
        self._evolve(session, plan)
        if staged:
            self._create_staging(session, staging)
            if rejects.count:
                self._create_rejects(session, plan.table)

    def _evolve(self, session: SqlSession, plan: SchemaPlan) -> None:
        table = quote(plan.table)
        if not plan.table_exists:
            columns = [f"{quote(c.name)} {c.native}" for c in plan.columns]
            columns += [f"{quote(self.ident(RUN_ID_COLUMN))} {self.dialect.text} NOT NULL",
                        f"{quote(self.ident(LOADED_AT_COLUMN))} {self.dialect.timestamp} NOT NULL"]
            session.execute(f"CREATE TABLE {table} ({', '.join(columns)})")
            return
        for column in plan.new:
            session.execute(f"ALTER TABLE {table} ADD COLUMN {quote(column.name)} {column.native}")
        for column in plan.widened:
            session.execute(self.dialect.widen(plan.table, column.name, column.native))

    def _create_staging(self, session: SqlSession, staging: Staging) -> None:
        types = [self.staging_type(c.type) for c in staging.columns]
        types += [self.dialect.native(ColumnType.INTEGER), self.dialect.text, self.staging_type(ColumnType.TIMESTAMP)]
        columns = ", ".join(f"{quote(n)} {t}" for n, t in zip(staging.names, types))
        session.execute(f"CREATE TEMPORARY TABLE {quote(staging.table)} ({columns})")

    def _rejects_name(self, table: str) -> str:
        return self.table_name(table + REJECTS_SUFFIX)

    def _create_rejects(self, session: SqlSession, table: str) -> str:
        name = self._rejects_name(table)
        columns = [f"{quote(self.ident('reason'))} {self.dialect.text}",
                   f"{quote(self.ident('record'))} {self.dialect.native(ColumnType.JSON)}",
                   f"{quote(self.ident(RUN_ID_COLUMN))} {self.dialect.text} NOT NULL",
                   f"{quote(self.ident(LOADED_AT_COLUMN))} {self.dialect.timestamp} NOT NULL"]
        session.execute(f"CREATE TABLE IF NOT EXISTS {quote(name)} ({', '.join(columns)})")
        return name

    def _ensure_ledger(self, session: SqlSession) -> None:
        """Create the ledger on its own, before any load's transaction: loads of different feeds
        run concurrently, and two transactions creating the same table conflict."""
        ledger = self.ident(LOAD_LEDGER)
        if self.existing_columns(session, ledger) is not None:
            return
        d = self.dialect
        columns = [("table_name", d.text), ("run_id", d.text), ("load_type", d.text),
                   ("records", d.native(ColumnType.INTEGER)), ("rejected", d.native(ColumnType.INTEGER)),
                   ("loaded_at", d.timestamp)]
        body = ", ".join(f"{quote(self.ident(n))} {t} NOT NULL" for n, t in columns)
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

    def _fill(self, session: SqlSession, request: LoadRequest, plan: SchemaPlan, profile: RunProfile,
              rejects: RejectLog, staging: Staging, staged: Any) -> None:
        target = quote(plan.table)
        if not profile.records:
            if request.load_type == "truncate_insert" and plan.table_exists:
                session.execute(f"DELETE FROM {target}")  # an empty run empties the table
            return
        if staged is not None:
            self.copy_staged(session, staging, staged)
            self._from_staging(session, request, plan, staging)
        elif request.load_type == "upsert":
            self._create_staging(session, staging)
            shaper = _shaping().Shaper(plan, request, self.capabilities, rejects, positions=True)
            self.write(session, staging.table, staging.names, shaper.batches(self.chunk_rows))
            _shaping().check_threshold(profile.records, rejects, request.max_rejected_ratio)
            self._from_staging(session, request, plan, staging)
        else:
            if request.load_type == "truncate_insert":
                session.execute(f"DELETE FROM {target}")
            names = [c.name for c in plan.loaded] + [self.ident(RUN_ID_COLUMN), self.ident(LOADED_AT_COLUMN)]
            shaper = _shaping().Shaper(plan, request, self.capabilities, rejects)
            self.write(session, plan.table, names, shaper.batches(self.chunk_rows))
            _shaping().check_threshold(profile.records, rejects, request.max_rejected_ratio)
        if rejects.count:
            # Staged loads created the rejects table with the other DDL, before the transaction.
            name = self._rejects_name(plan.table) if staged is not None else self._create_rejects(session, plan.table)
            self._store_rejects(session, name, request, rejects)

    def _from_staging(self, session: SqlSession, request: LoadRequest, plan: SchemaPlan, staging: Staging) -> None:
        target, source = quote(plan.table), quote(staging.table)
        by_field = {c.field: (c, n) for c, n in zip(staging.columns, staging.data_names)}
        values = [self.from_staging(c.type, quote(n)) for c, n in zip(staging.columns, staging.data_names)]
        values += [quote(RUN_ID_COLUMN), self.from_staging(ColumnType.TIMESTAMP, quote(LOADED_AT_COLUMN))]
        names = [quote(c.name) for c in staging.columns] + [quote(self.ident(RUN_ID_COLUMN)),
                                                             quote(self.ident(LOADED_AT_COLUMN))]
        rows = source
        if request.load_type == "upsert":
            keys = [by_field[k] for k in request.primary_key]
            match = " AND ".join(f"{target}.{quote(c.name)} = {self.from_staging(c.type, f'{source}.{quote(n)}')}"
                                 for c, n in keys)
            session.execute(f"DELETE FROM {target} USING {source} WHERE {match}")
            # Several records with one key in a run: the last one written wins, as in a merge.
            partition = ", ".join(quote(n) for _, n in keys)
            rows = (f"(SELECT *, ROW_NUMBER() OVER (PARTITION BY {partition} ORDER BY {quote(POSITION_COLUMN)} DESC) "
                    f"AS {_RANK} FROM {source}) AS latest WHERE {_RANK} = 1")
        elif request.load_type == "truncate_insert":
            session.execute(f"DELETE FROM {target}")
        session.execute(f"INSERT INTO {target} ({', '.join(names)}) SELECT {', '.join(values)} FROM {rows}")
        # The temporary staging table goes with the session. Dropping it here would be DDL inside
        # the transaction, which Snowflake answers by committing it early.

    def _store_rejects(self, session: SqlSession, name: str, request: LoadRequest, rejects: RejectLog) -> None:
        names = [self.ident(n) for n in (*REJECT_FIELDS, RUN_ID_COLUMN, LOADED_AT_COLUMN)]
        if not self.stages_files:
            self.write(session, name, names, rejects.tables(request.run_id, request.loaded_at, self.chunk_rows,
                                                           self.capabilities))
            return
        # Staged warehouses: rejects are few (the threshold bounds them), so plain multi-row
        # inserts do, parsing the JSON text on the way in. Snowflake takes no functions in a
        # VALUES list, so there the rows are selected FROM VALUES.
        p, columns = self.dialect.param, ", ".join(quote(n) for n in names)
        row = f"({self.dialect.params(4)})"
        if self.dialect.functions_in_values:
            shape = f"{p}, {self.dialect.json_parse.format(p)}, {p}, CAST({p} AS {self.dialect.timestamp})"
            prefix, row = f"INSERT INTO {quote(name)} ({columns}) VALUES ", f"({shape})"
        else:
            select = (f"column1, {self.dialect.json_parse.format('column2')}, column3, "
                      f"CAST(column4 AS {self.dialect.timestamp})")
            prefix = f"INSERT INTO {quote(name)} ({columns}) SELECT {select} FROM VALUES "
        for batch in rejects.tables(request.run_id, request.loaded_at, _REJECTS_PER_INSERT, self.capabilities):
            rows = [(r["reason"], r["record"], r[RUN_ID_COLUMN], r[LOADED_AT_COLUMN].isoformat())
                    for r in batch.to_pylist()]
            session.execute(prefix + ", ".join([row] * len(rows)), [v for r in rows for v in r])

    def _record(self, session: SqlSession, table: str, request: LoadRequest, rows: int, rejected: int) -> None:
        names = ", ".join(quote(self.ident(n)) for n in ("table_name", "run_id", "load_type", "records", "rejected",
                                                         "loaded_at"))
        session.execute(
            f"INSERT INTO {quote(self.ident(LOAD_LEDGER))} ({names}) VALUES ({self.dialect.params(6)})",
            [table, request.run_id, request.load_type, rows, rejected, request.loaded_at],
        )
