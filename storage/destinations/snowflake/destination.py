"""Snowflake: shaped chunks are written as Parquet, PUT to a temporary stage, copied with
COPY INTO a temporary table and applied with plain SQL in one transaction (StagedLoad). Its
settings are configuration.py's SnowflakeSettings.

Snowflake commits DDL implicitly, so the DDL (new columns, the staging and rejects tables) runs
before the transaction, and only after the whole run is staged and the failed row threshold is
met: a load that fails before that leaves the target untouched, and one that fails after it
drops the table or the columns its DDL added (SqlDestination.undo_evolve). Existing columns
cannot change type in place, so a value that does not fit is rejected. JSON lands in VARIANT
through PARSE_JSON. Names are upper case, as Snowflake folds unquoted names, so users can query
ORDERS.ID without quotes.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from storage.destinations.base import Capabilities, IdentifierRules, LoadError, LoadRequest
from storage.destinations.column_types import ColumnType
from storage.destinations.configured import Configured
from storage.destinations.snowflake.configuration import SnowflakeSettings
from storage.destinations.files import parquet_parts
from storage.destinations.sql import SqlDialect, quote
from storage.destinations.sql_loads import StagedSqlDestination, Staging, staged_file_table
from storage.destinations.drivers import driver

SNOWFLAKE = SqlDialect(
    types={
        ColumnType.BOOLEAN: "BOOLEAN", ColumnType.INTEGER: "NUMBER(38,0)", ColumnType.FLOAT: "FLOAT",
        ColumnType.TIMESTAMP: "TIMESTAMP_TZ", ColumnType.STRING: "VARCHAR", ColumnType.JSON: "VARIANT",
    },
    param="%s",
    json_parse="PARSE_JSON({})",
    functions_in_values=False,
    transactional_ddl=False,
)
STAGE = "TRIBUTARY_LOAD"  # a temporary stage: Snowflake drops it, and its files, with the session


class _Session:
    def __init__(self, connection):
        self.connection = connection

    def execute(self, sql: str, params: Sequence = ()) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute(sql, list(params) or None)

    def query(self, sql: str, params: Sequence = ()) -> list[tuple]:
        with self.connection.cursor() as cursor:
            cursor.execute(sql, list(params) or None)
            return cursor.fetchall()

    def executemany(self, sql: str, rows: list[Sequence]) -> None:
        with self.connection.cursor() as cursor:
            cursor.executemany(sql, rows)


@dataclass
class StagedRun:
    path: str  # @STAGE/<table>/<run id>/
    parts: int


def connection_arguments(config) -> dict:
    arguments = {
        "account": config.account, "user": config.user, "password": config.password,
        "database": config.database, "schema": config.schema, "warehouse": config.warehouse, "role": config.role,
        "login_timeout": 30,
        "session_parameters": {"TIMEZONE": "UTC", "CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
    }
    if config.host:  # a private link or a compatible server; otherwise the account's own host
        arguments.update(host=config.host, port=config.port, protocol=config.protocol)
    return {k: v for k, v in arguments.items() if v not in ("", None)}


class SnowflakeDestination(Configured, StagedSqlDestination):
    configuration = SnowflakeSettings
    name = "snowflake"
    title = "Snowflake"
    capabilities = Capabilities(
        load_types=frozenset({"incremental", "truncate_insert", "upsert"}),
        json_type="VARIANT",
        identifiers=IdentifierRules(max_length=255, case="upper"),
    )
    dialect = SNOWFLAKE

    def describe_target(self, table: str) -> str:
        where = ".".join(p for p in (self.config.database, self.config.schema) if p) or "<database>.<schema>"
        return f"table {where}.{self.table_name(table)} in Snowflake"

    @contextmanager
    def connect(self) -> Iterator[_Session]:
        connector = driver("snowflake.connector", "snowflake-connector-python", "Snowflake")  # on use

        if not (self.config.account and self.config.user and self.config.database):
            raise LoadError("Snowflake is not configured: set the account, user and database in the warehouse settings")
        try:
            connection = connector.connect(**connection_arguments(self.config))
        except connector.errors.Error as exc:
            raise LoadError(f"cannot connect to Snowflake: {str(exc).strip()}") from None
        try:
            yield _Session(connection)
        finally:
            connection.close()

    def stage(self, session: _Session, request: LoadRequest, batches: Iterable[pa.Table]) -> StagedRun:
        session.execute(f"CREATE TEMPORARY STAGE IF NOT EXISTS {STAGE}")
        path = f"@{STAGE}/{self.table_name(request.table)}/{request.run_id}/"
        parts = 0
        with tempfile.TemporaryDirectory(prefix="tributary-snowflake-") as tmp:
            for part in parquet_parts((staged_file_table(b) for b in batches), Path(tmp)):
                uri = "file://" + part.as_posix().replace("'", "\\'")
                session.execute(f"PUT '{uri}' {path} AUTO_COMPRESS = FALSE OVERWRITE = TRUE")
                part.unlink()
                parts += 1
        return StagedRun(path, parts)

    def copy_staged(self, session: _Session, staging: Staging, staged: StagedRun) -> None:
        if not staged.parts:
            return  # every record was rejected (within the threshold): nothing to copy
        types = [self.staging_type(c.type) for c in staging.columns]
        types += ["NUMBER(38,0)", "VARCHAR", "VARCHAR"]
        select = ", ".join(f"$1:{quote(n)}::{t}" for n, t in zip(staging.names, types))
        session.execute(f"COPY INTO {quote(staging.table)} FROM (SELECT {select} FROM {staged.path}) "
                        "FILE_FORMAT = (TYPE = PARQUET)")
