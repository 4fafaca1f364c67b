"""The two ways the SQL warehouses load shaped Arrow chunks, each a TableLoad of the commit
protocol (sql_warehouse.py), and the two small destination bases that choose them:

    StreamingLoad   chunks stream into the open transaction (DuckDB, PostgreSQL COPY):
                    StreamingSqlDestination brings `write`
    StagedLoad      chunks are staged as files before the transaction opens, then copied
                    (Redshift: S3 + COPY; Snowflake: PUT + COPY INTO): StagedSqlDestination
                    brings `stage`, `copy_staged` and `discard_staged`

Both profile the spool first (types of every field) and plan the table's columns against what
it holds (new columns, widened columns, unloadable fields); too many rejects fail the load
before anything commits; rejects are stored in <table>__rejected in the same transaction.
"""

from __future__ import annotations

import uuid
from abc import abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from storage.destinations.base import LOADED_AT_COLUMN, POSITION_COLUMN, REJECT_FIELDS, RUN_ID_COLUMN, LoadRequest
from storage.destinations.column_types import ColumnType
from storage.destinations.schema import PlannedColumn, SchemaPlan, apply_policy, plan_schema, profile_spool
from storage.destinations.sql import quote
from storage.destinations.sql_warehouse import SqlDestination, SqlSession, TableLoad

if TYPE_CHECKING:
    import pyarrow as pa

    from storage.destinations.shaping import RejectLog

STAGING_TABLE = "_tributary_staging"
_RANK = "_tributary_rank"
_REJECTS_PER_INSERT = 500


def _shaping():
    """The Arrow-based shaping, imported on first use: DuckDB's native load, the common case,
    needs no Arrow (pyarrow costs a process about 0.2 s and 35 MB)."""
    from storage.destinations import shaping

    return shaping


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


class ShapedLoad(TableLoad):
    """What both ways share: the profile and plan, the staging table, the merge from it, the
    threshold and the rejects. Subclasses fill the table (`fill`) and store the rejects."""

    rejects: RejectLog | None = None  # set by prepare, with the profile, the plan and the staging table
    plan: SchemaPlan | None = None

    def prepare(self, session: SqlSession) -> None:
        d = self.destination
        self.rejects = _shaping().RejectLog()
        self.profile = profile_spool(self.request.files, d.chunk_rows)
        existing = d.existing_columns(session, self.table)
        plan = plan_schema(self.table, self.profile, existing, d.capabilities, d.dialect.native)
        self.plan = apply_policy(plan, self.request.schema_policy)  # under freeze: fails here, before BEGIN
        self.schema_changes, self.schema_diff = self.plan.changes(), self.plan.diff()
        # Named per load: temporary tables are per session, but not on every server.
        self.staging = Staging(d.ident(f"{STAGING_TABLE}_{uuid.uuid4().hex[:8]}"), self.plan.loaded)

    def close(self) -> None:
        if self.rejects is not None:
            self.rejects.close()

    def create_tables(self, session: SqlSession) -> None:
        if self.profile.records:
            self.destination.evolve(session, self.plan)

    def drop_created(self, session: SqlSession) -> None:
        if self.plan is not None:
            self.destination.undo_evolve(session, self.plan)

    def load_rows(self, session: SqlSession) -> None:
        if not self.profile.records:
            if self.request.load_type == "truncate_insert" and self.plan.table_exists:
                session.execute(f"DELETE FROM {quote(self.table)}")  # an empty run empties the table
            return
        self.fill(session)
        if self.rejects.count:
            self.store_rejects(session)
        self.rows, self.rejected = self.profile.records - self.rejects.count, self.rejects.count
        self.rejected_reasons = list(self.rejects.samples)

    @abstractmethod
    def fill(self, session: SqlSession) -> None:
        """Put the run's rows into the table, as its load type says."""

    @abstractmethod
    def store_rejects(self, session: SqlSession) -> None:
        """Insert the rejected records into <table>__rejected."""

    def shaper(self, positions: bool = False):
        return _shaping().Shaper(self.plan, self.request, self.destination.capabilities, self.rejects,
                                 positions=positions)

    def check_threshold(self) -> None:
        _shaping().check_threshold(self.profile.records, self.rejects, self.request.max_rejected_ratio)

    # ------------------------------------------------------------ the staging table

    def staging_type(self, kind: ColumnType) -> str:
        return self.destination.dialect.native(kind)

    def from_staging(self, kind: ColumnType, expression: str) -> str:
        """The expression that turns a staging column into the target column's value."""
        return expression

    def create_staging(self, session: SqlSession) -> None:
        d, staging = self.destination, self.staging
        types = [self.staging_type(c.type) for c in staging.columns]
        types += [d.dialect.native(ColumnType.INTEGER), d.dialect.text, self.staging_type(ColumnType.TIMESTAMP)]
        columns = ", ".join(f"{quote(n)} {t}" for n, t in zip(staging.names, types))
        session.execute(f"CREATE TEMPORARY TABLE {quote(staging.table)} ({columns})")

    def merge_from_staging(self, session: SqlSession) -> None:
        """The staged rows into the table: appended, replacing it, or by key (upsert)."""
        target, source, staging = quote(self.table), quote(self.staging.table), self.staging
        values = [self.from_staging(c.type, quote(n)) for c, n in zip(staging.columns, staging.data_names)]
        values += [quote(RUN_ID_COLUMN), self.from_staging(ColumnType.TIMESTAMP, quote(LOADED_AT_COLUMN))]
        ident = self.destination.ident
        names = [quote(c.name) for c in staging.columns] + [quote(ident(RUN_ID_COLUMN)), quote(ident(LOADED_AT_COLUMN))]
        rows = source
        if self.request.load_type == "upsert":
            rows = self._latest_by_key(session)
        elif self.request.load_type == "truncate_insert":
            session.execute(f"DELETE FROM {target}")
        session.execute(f"INSERT INTO {target} ({', '.join(names)}) SELECT {', '.join(values)} FROM {rows}")
        # The temporary staging table goes with the session. Dropping it here would be DDL inside
        # the transaction, which Snowflake answers by committing it early.

    def _latest_by_key(self, session: SqlSession) -> str:
        """Delete the rows the staged keys replace; the staged rows to insert, one per key."""
        target, source, staging = quote(self.table), quote(self.staging.table), self.staging
        by_field = {c.field: (c, n) for c, n in zip(staging.columns, staging.data_names)}
        keys = [by_field[k] for k in self.request.primary_key]
        match = " AND ".join(f"{target}.{quote(c.name)} = {self.from_staging(c.type, f'{source}.{quote(n)}')}"
                             for c, n in keys)
        session.execute(f"DELETE FROM {target} USING {source} WHERE {match}")
        # Several records with one key in a run: the last one written wins, as in a merge.
        partition = ", ".join(quote(n) for _, n in keys)
        return (f"(SELECT *, ROW_NUMBER() OVER (PARTITION BY {partition} ORDER BY {quote(POSITION_COLUMN)} DESC) "
                f"AS {_RANK} FROM {source}) AS latest WHERE {_RANK} = 1")

    def reject_names(self) -> list[str]:
        return [self.destination.ident(n) for n in (*REJECT_FIELDS, RUN_ID_COLUMN, LOADED_AT_COLUMN)]


class StreamingLoad(ShapedLoad):
    """Shaped chunks go straight into the open transaction through the destination's `write`
    (an upsert through a temporary staging table)."""

    destination: StreamingSqlDestination

    def fill(self, session: SqlSession) -> None:
        d, request = self.destination, self.request
        if request.load_type == "upsert":
            self.create_staging(session)
            d.write(session, self.staging.table, self.staging.names, self.shaper(positions=True).batches(d.chunk_rows))
            self.check_threshold()
            self.merge_from_staging(session)
            return
        if request.load_type == "truncate_insert":
            session.execute(f"DELETE FROM {quote(self.table)}")
        names = [c.name for c in self.plan.loaded] + [d.ident(RUN_ID_COLUMN), d.ident(LOADED_AT_COLUMN)]
        d.write(session, self.table, names, self.shaper().batches(d.chunk_rows))
        self.check_threshold()

    def store_rejects(self, session: SqlSession) -> None:
        d, request = self.destination, self.request
        name = d.create_rejects(session, self.table)
        d.write(session, name, self.reject_names(),
                self.rejects.tables(request.run_id, request.loaded_at, d.chunk_rows, d.capabilities))


class StagedLoad(ShapedLoad):
    """Shaped chunks are staged as files (with the threshold checked) before the transaction
    opens; the transaction copies them into a staging table and merges them. Staged files carry
    timestamps and JSON as text (see staged_file_table), cast on the way into the table."""

    destination: StagedSqlDestination
    staged: Any = None

    def prepare(self, session: SqlSession) -> None:
        super().prepare(session)
        if self.profile.records:
            d = self.destination
            self.staged = d.stage(session, self.request, self.shaper(positions=True).batches(d.chunk_rows))
            self.check_threshold()

    def close(self) -> None:
        try:
            if self.staged is not None:
                self.destination.discard_staged(self.staged)
        finally:
            super().close()

    def create_tables(self, session: SqlSession) -> None:
        """The target's new and widened columns, the staging table, and the rejects table (the
        rejects are known once the run is staged)."""
        if not self.profile.records:
            return
        super().create_tables(session)
        self.create_staging(session)
        if self.rejects.count:
            self.destination.create_rejects(session, self.table)

    def fill(self, session: SqlSession) -> None:
        self.destination.copy_staged(session, self.staging, self.staged)
        self.merge_from_staging(session)

    def staging_type(self, kind: ColumnType) -> str:
        return self.destination.staging_type(kind)

    def from_staging(self, kind: ColumnType, expression: str) -> str:
        dialect = self.destination.dialect
        if kind == ColumnType.TIMESTAMP:
            return f"CAST({expression} AS {dialect.timestamp})"
        if kind == ColumnType.JSON:
            return dialect.json_parse.format(expression)
        return expression

    def store_rejects(self, session: SqlSession) -> None:
        """Rejects are few (the threshold bounds them), so plain multi-row inserts do, parsing
        the JSON text on the way in. Snowflake takes no functions in a VALUES list, so there the
        rows are selected FROM VALUES."""
        dialect, request = self.destination.dialect, self.request
        name, columns = self.destination.rejects_name(self.table), ", ".join(quote(n) for n in self.reject_names())
        p = dialect.param
        if dialect.functions_in_values:
            shape = f"{p}, {dialect.json_parse.format(p)}, {p}, CAST({p} AS {dialect.timestamp})"
            prefix, row = f"INSERT INTO {quote(name)} ({columns}) VALUES ", f"({shape})"
        else:
            select = f"column1, {dialect.json_parse.format('column2')}, column3, CAST(column4 AS {dialect.timestamp})"
            prefix, row = f"INSERT INTO {quote(name)} ({columns}) SELECT {select} FROM VALUES ", f"({dialect.params(4)})"
        for batch in self.rejects.tables(request.run_id, request.loaded_at, _REJECTS_PER_INSERT,
                                         self.destination.capabilities):
            rows = [(r["reason"], r["record"], r[RUN_ID_COLUMN], r[LOADED_AT_COLUMN].isoformat())
                    for r in batch.to_pylist()]
            session.execute(prefix + ", ".join([row] * len(rows)), [v for r in rows for v in r])


class StreamingSqlDestination(SqlDestination):
    """A warehouse whose driver streams rows into an open transaction."""

    def table_load(self, request: LoadRequest) -> TableLoad:
        return StreamingLoad(self, request)

    @abstractmethod
    def write(self, session: SqlSession, table: str, columns: list[str], batches: Iterable[pa.Table]) -> None:
        """Stream batches (columns in the order given) into a table, inside the open transaction."""


class StagedSqlDestination(SqlDestination):
    """A warehouse that loads files staged where its COPY reads them."""

    def table_load(self, request: LoadRequest) -> TableLoad:
        return StagedLoad(self, request)

    @abstractmethod
    def stage(self, session: SqlSession, request: LoadRequest, batches: Iterable[pa.Table]) -> Any:
        """Write the batches as files where the warehouse's COPY reads them; returns a handle.
        Called before the transaction opens; must not touch the target table."""

    @abstractmethod
    def copy_staged(self, session: SqlSession, staging: Staging, staged: Any) -> None:
        """COPY the staged files into the staging table, inside the transaction."""

    def discard_staged(self, staged: Any) -> None:
        """Remove staged files once the load has committed or failed."""

    def staging_type(self, kind: ColumnType) -> str:
        """A staging column's type: staged files carry timestamps and JSON as text."""
        if kind in (ColumnType.TIMESTAMP, ColumnType.JSON):
            return self.dialect.text
        return self.dialect.native(kind)
