"""The embedded warehouse: a DuckDB file (data/warehouse.duckdb by default).

DuckDB reads the spool's JSON-lines files itself, streaming and in parallel, so records never
pass through Python. Types are inferred over the whole spool; columns that already exist keep
their type (a value that does not fit fails the load, which rolls back whole); new keys add
columns; objects and lists are stored as JSON.
"""

from __future__ import annotations

import time
from pathlib import Path

import duckdb

from core.settings import Settings, get_settings
from storage.destinations.base import (
    LOADED_AT_COLUMN,
    RUN_ID_COLUMN,
    Capabilities,
    Destination,
    LoadRequest,
    LoadResult,
)

_LOCK_RETRY_S = 30.0


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def column_type(inferred: str) -> str:
    """Map a type DuckDB inferred from JSON to the column type we create."""
    upper = inferred.upper()
    if upper in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER"):
        return "BIGINT"
    if upper in ("UBIGINT", "HUGEINT", "UHUGEINT"):
        return "HUGEINT"
    if upper in ("FLOAT", "DOUBLE") or upper.startswith("DECIMAL"):
        return "DOUBLE"
    if upper in ("BOOLEAN", "VARCHAR", "DATE", "TIME", "UUID"):
        return "UUID" if upper == "UUID" else upper
    if upper.startswith("TIMESTAMP"):
        return "TIMESTAMPTZ"
    if upper == '"NULL"' or upper == "NULL":
        return "VARCHAR"  # every value was null: text is the least surprising home
    return "JSON"  # STRUCT, MAP, LIST, arrays, mixed shapes


def _files_literal(files: list[Path]) -> str:
    return "[" + ", ".join("'" + str(f).replace("'", "''") + "'" for f in files) + "]"


def _columns_literal(types: dict[str, str]) -> str:
    return "{" + ", ".join("'" + k.replace("'", "''") + "': '" + v + "'" for k, v in types.items()) + "}"


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


class DuckDBDestination(Destination):
    name = "duckdb"
    title = "DuckDB warehouse"
    capabilities = Capabilities(
        load_types=frozenset({"incremental", "truncate_insert", "upsert"}), json_type="JSON", max_identifier_length=255
    )

    def __init__(self, settings: Settings | None = None, path: Path | None = None):
        self.settings = settings or get_settings()
        self.path = Path(path or self.settings.duckdb_path)

    def describe_target(self, table: str) -> str:
        return f"table {table} in the DuckDB file {self.path}"

    def _existing_columns(self, con, table: str) -> dict[str, str]:
        rows = con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position",
            [table],
        ).fetchall()
        return {name: dtype for name, dtype in rows}

    def has_run(self, table: str, run_id: str) -> bool:
        if not self.path.exists():
            return False
        with connect(self.path) as con:
            return self._has_run(con, table, run_id)

    def _has_run(self, con, table: str, run_id: str) -> bool:
        if not self._existing_columns(con, table):
            return False
        row = con.execute(f"SELECT 1 FROM {quote(table)} WHERE {RUN_ID_COLUMN} = ? LIMIT 1", [run_id]).fetchone()
        return row is not None

    def _infer(self, con, files: list[Path]) -> dict[str, str]:
        rows = con.execute(
            f"DESCRIBE SELECT * FROM read_json({_files_literal(files)}, format='newline_delimited', "
            "union_by_name=true, sample_size=-1, maximum_object_size=134217728)"
        ).fetchall()
        return {row[0]: column_type(row[1]) for row in rows}

    def _evolve(self, con, table: str, inferred: dict[str, str]) -> dict[str, str]:
        """Create the table or add new columns; return the type to read each column as."""
        existing = self._existing_columns(con, table)
        if not existing:
            columns = [f"{quote(c)} {t}" for c, t in inferred.items()]
            columns += [f"{RUN_ID_COLUMN} VARCHAR NOT NULL", f"{LOADED_AT_COLUMN} TIMESTAMPTZ NOT NULL"]
            con.execute(f"CREATE TABLE {quote(table)} ({', '.join(columns)})")
            return dict(inferred)
        lower_existing = {c.lower(): c for c in existing}
        read_types = {}
        for col, inferred_type in inferred.items():
            if col.lower() in lower_existing:
                read_types[col] = existing[lower_existing[col.lower()]]
            else:
                con.execute(f"ALTER TABLE {quote(table)} ADD COLUMN {quote(col)} {inferred_type}")
                read_types[col] = inferred_type
        return read_types

    def _stage(self, con, files: list[Path], read_types: dict[str, str], request: LoadRequest) -> int:
        source = (
            f"read_json({_files_literal(files)}, format='newline_delimited', "
            f"columns={_columns_literal(read_types)}, maximum_object_size=134217728)"
        )
        select = ", ".join(quote(c) for c in read_types)
        con.execute(
            f"CREATE TEMP TABLE _staging AS SELECT {select}, ?::VARCHAR AS {RUN_ID_COLUMN}, "
            f"?::TIMESTAMPTZ AS {LOADED_AT_COLUMN} FROM {source}",
            [request.run_id, request.loaded_at],
        )
        if request.load_type == "upsert":
            self._dedupe_staging(con, request.primary_key)
        return con.execute("SELECT count(*) FROM _staging").fetchone()[0]

    def _dedupe_staging(self, con, key: list[str]) -> None:
        # Several records with one key in a run: the last one written wins, as in a merge.
        keys = ", ".join(quote(k) for k in key)
        con.execute(
            "CREATE TEMP TABLE _staging_dedup AS SELECT * EXCLUDE (_rn) FROM ("
            f"SELECT *, row_number() OVER (PARTITION BY {keys} ORDER BY _pos DESC) AS _rn "
            "FROM (SELECT *, row_number() OVER () AS _pos FROM _staging)) WHERE _rn = 1"
        )
        con.execute("DROP TABLE _staging")
        con.execute("ALTER TABLE _staging_dedup RENAME TO _staging")
        con.execute("ALTER TABLE _staging DROP COLUMN _pos")

    def _apply(self, con, table: str, request: LoadRequest, columns: list[str]) -> None:
        target = quote(table)
        if request.load_type == "truncate_insert":
            con.execute(f"DELETE FROM {target}")
        elif request.load_type == "upsert":
            for key in request.primary_key:
                if key not in columns:
                    raise ValueError(f"primary key field {key!r} is missing from the records")
            match = " AND ".join(f"{target}.{quote(k)} IS NOT DISTINCT FROM _staging.{quote(k)}" for k in request.primary_key)
            con.execute(f"DELETE FROM {target} WHERE EXISTS (SELECT 1 FROM _staging WHERE {match})")
        names = ", ".join(quote(c) for c in [*columns, RUN_ID_COLUMN, LOADED_AT_COLUMN])
        con.execute(f"INSERT INTO {target} ({names}) SELECT {names} FROM _staging")

    def load(self, request: LoadRequest) -> LoadResult:
        table = request.table
        with connect(self.path) as con:
            con.execute("BEGIN TRANSACTION")
            try:
                if self._has_run(con, table, request.run_id):
                    con.execute("ROLLBACK")
                    return LoadResult(rows=0, skipped=True, location=self.describe_target(table))
                rows = self._load_in_transaction(con, request)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return LoadResult(rows=rows, location=self.describe_target(table))

    def _load_in_transaction(self, con, request: LoadRequest) -> int:
        files = [f for f in request.files if f.stat().st_size > 0]
        if not files:
            if request.load_type == "truncate_insert" and self._existing_columns(con, request.table):
                con.execute(f"DELETE FROM {quote(request.table)}")  # an empty run empties the table
            return 0
        read_types = self._evolve(con, request.table, self._infer(con, files))
        rows = self._stage(con, files, read_types, request)
        self._apply(con, request.table, request, list(read_types))
        con.execute("DROP TABLE _staging")
        return rows

    def drop(self, table: str) -> None:
        with connect(self.path) as con:
            con.execute(f"DROP TABLE IF EXISTS {quote(table)}")

    def query(self, sql: str, params: list | None = None):
        """Read-only access for the CLI, the Data page and tests."""
        with duckdb.connect(str(self.path), read_only=True) as con:
            return con.execute(sql, params or []).fetchall()
