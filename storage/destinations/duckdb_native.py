"""DuckDB's fast path: the spool read by DuckDB itself, never parsed in Python.

Most runs need no widening and reject nothing. For those, DuckDB infers the fields' types over
the whole spool, the types are mapped to Tributary's column types exactly as the generic load
would name them, and one INSERT ... SELECT FROM read_json(...) streams the spool into the
table. When anything falls outside what this path can do the same way as the generic one (an
existing column of another type, an unusual inferred type, a value DuckDB cannot convert), it
gives way (NotNative) and the generic load (sql_warehouse.py, with widening and rejects)
handles the run. Nothing is committed before that decision.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from storage.destinations.base import LOADED_AT_COLUMN, RUN_ID_COLUMN, LoadRequest
from storage.destinations.column_types import TIMESTAMP_PATTERN, ColumnType
from storage.destinations.sql import quote

# Bounded memory: DuckDB spills to disk beyond this instead of growing with the run.
MEMORY_LIMIT = "128MB"
_MAX_OBJECT = 16 * 1024 * 1024  # DuckDB's default; larger records take the generic load

_INFERRED = {
    "BOOLEAN": ColumnType.BOOLEAN,
    "TINYINT": ColumnType.INTEGER, "SMALLINT": ColumnType.INTEGER, "INTEGER": ColumnType.INTEGER,
    "BIGINT": ColumnType.INTEGER, "UTINYINT": ColumnType.INTEGER, "USMALLINT": ColumnType.INTEGER,
    "UINTEGER": ColumnType.INTEGER,
    "DOUBLE": ColumnType.FLOAT, "FLOAT": ColumnType.FLOAT,
    "VARCHAR": ColumnType.STRING, '"NULL"': ColumnType.STRING, "NULL": ColumnType.STRING,
    "JSON": ColumnType.JSON,
    # Strings DuckDB read as dates, times or UUIDs are text to the generic load too (a
    # timestamp needs a time of day); they are read back as the text they were.
    "DATE": ColumnType.STRING, "TIME": ColumnType.STRING, "UUID": ColumnType.STRING,
}
_TIMESTAMPS = ("TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S")


class NotNative(Exception):
    """This run needs the generic load."""


def _files(files: list[Path]) -> str:
    return "[" + ", ".join("'" + str(f).replace("'", "''") + "'" for f in files) + "]"


def _column_type(inferred: str) -> ColumnType:
    upper = inferred.upper()
    if upper in _INFERRED:
        return _INFERRED[upper]
    if upper in _TIMESTAMPS:
        return ColumnType.TIMESTAMP  # checked against the generic load's pattern in infer()
    if upper.startswith(("STRUCT", "MAP")) or upper.endswith("]"):
        return ColumnType.JSON  # objects and lists
    # HUGEINT (beyond 64 bits) and anything unusual: let the generic load decide.
    raise NotNative(f"inferred type {inferred}")


def infer(con: duckdb.DuckDBPyConnection, files: list[Path]) -> dict[str, ColumnType]:
    try:
        rows = con.execute(
            f"DESCRIBE SELECT * FROM read_json({_files(files)}, format='newline_delimited', union_by_name=true, "
            f"sample_size=-1, maximum_object_size={_MAX_OBJECT})"
        ).fetchall()
    except duckdb.Error as exc:  # a record DuckDB cannot read: the generic load explains it per record
        raise NotNative(str(exc)) from exc
    kinds = {row[0]: _column_type(row[1]) for row in rows}
    _check_strings(con, files, kinds)
    return kinds


def _check_strings(con: duckdb.DuckDBPyConnection, files: list[Path], kinds: dict[str, ColumnType]) -> None:
    """The generic load calls a field a timestamp when every value matches its ISO 8601
    pattern; DuckDB's own detection accepts other spellings and misses some ISO ones (no
    seconds). Both are checked here in one scan; any disagreement hands the run over."""
    fields = [f for f, k in kinds.items() if k in (ColumnType.TIMESTAMP, ColumnType.STRING)]
    if not fields:
        return
    columns = "{" + ", ".join(f"'{_sql_text(f)}': 'VARCHAR'" for f in fields) + "}"
    pattern = _sql_text(TIMESTAMP_PATTERN)
    aggregates = []
    for f in fields:
        # The cheap length and dash tests spare the regular expression most plain text.
        looks = f"(length({quote(f)}) BETWEEN 16 AND 40 AND substr({quote(f)}, 5, 1) = '-')"
        aggregates.append(f"count({quote(f)}), count_if({looks} AND regexp_full_match({quote(f)}, '{pattern}'))")
    counts = con.execute(
        f"SELECT {', '.join(aggregates)} FROM read_json({_files(files)}, format='newline_delimited', "
        f"columns={columns}, maximum_object_size={_MAX_OBJECT})"
    ).fetchone()
    for i, f in enumerate(fields):
        values, timestamps = counts[2 * i], counts[2 * i + 1]
        generic_kind = ColumnType.TIMESTAMP if values and timestamps == values else ColumnType.STRING
        if values and generic_kind != kinds[f]:
            raise NotNative(f"field {f}: the generic load types it as {generic_kind.value}")


def _sql_text(text: str) -> str:
    return text.replace("'", "''")


def plan(inferred: dict[str, ColumnType], existing: dict[str, tuple[ColumnType, str]] | None
         ) -> tuple[dict[str, ColumnType], list[str]]:
    """The column each field goes to, and the new columns; NotNative when a field meets a
    column of another type (widening and rejects are the generic load's work)."""
    by_lower = {name.lower(): (name, kind) for name, (kind, _) in (existing or {}).items()}
    targets, new = {}, []
    for field, kind in inferred.items():
        if field.lower() in by_lower:
            name, column_kind = by_lower[field.lower()]
            if column_kind != kind:
                raise NotNative(f"field {field} is {kind.value}, its column is {column_kind.value}")
            targets[field] = kind
        else:
            targets[field] = kind
            new.append(field)
    return targets, new


def insert(con: duckdb.DuckDBPyConnection, table: str, files: list[Path], targets: dict[str, ColumnType],
           native, request: LoadRequest) -> int:
    """INSERT the spool; DuckDB's conversion errors become NotNative (the caller rolls back)."""
    columns = "{" + ", ".join(f"'{_sql_text(f)}': '{native(k)}'" for f, k in targets.items()) + "}"
    names = ", ".join(quote(f) for f in targets)
    source = (f"read_json({_files(files)}, format='newline_delimited', columns={columns}, "
              f"maximum_object_size={_MAX_OBJECT})")
    try:
        return con.execute(
            f"INSERT INTO {quote(table)} ({names}, {quote(RUN_ID_COLUMN)}, {quote(LOADED_AT_COLUMN)}) "
            f"SELECT {names}, ?, ? FROM {source}",
            [request.run_id, request.loaded_at],
        ).fetchone()[0]
    except (duckdb.ConversionException, duckdb.InvalidInputException, duckdb.OutOfMemoryException) as exc:
        raise NotNative(str(exc)) from exc
