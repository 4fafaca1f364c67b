"""PostgreSQL: shaped chunks stream in with COPY (CSV written by Arrow), inside one transaction
(StreamingLoad). Its settings are configuration.py's PostgresSettings.

PostgreSQL's DDL is transactional, so new and widened columns roll back with the rows when a
load fails. Text cannot hold NUL characters there, so a record carrying one is rejected rather
than failing the whole load. Names keep their case (quote them in queries: "userId").
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

import pyarrow as pa
import pyarrow.csv as pacsv

from storage.destinations.base import Capabilities, IdentifierRules, LoadError
from storage.destinations.column_types import ColumnType
from storage.destinations.configured import Configured
from storage.destinations.postgres.configuration import PostgresSettings
from storage.destinations.sql import SqlDialect, quote
from storage.destinations.sql_loads import StreamingSqlDestination
from storage.destinations.drivers import driver

_CSV = pacsv.WriteOptions(include_header=False)

POSTGRES = SqlDialect(
    types={
        ColumnType.BOOLEAN: "boolean", ColumnType.INTEGER: "bigint", ColumnType.FLOAT: "double precision",
        ColumnType.TIMESTAMP: "timestamptz", ColumnType.STRING: "text", ColumnType.JSON: "jsonb",
    },
    param="%s",
    widen_using_cast=True,
)


def copy_arrow(cursor, table: str, columns: list[str], batch: pa.Table) -> None:
    """COPY one Arrow table into a table: CSV written by Arrow in C++, parsed by the server.
    Arrow writes null as an unquoted empty field and an empty string as "", which is exactly
    how PostgreSQL's CSV format tells them apart."""
    buffer = io.BytesIO()
    pacsv.write_csv(batch, buffer, write_options=_CSV)
    names = ", ".join(quote(c) for c in columns)
    with cursor.copy(f"COPY {quote(table)} ({names}) FROM STDIN (FORMAT csv)") as copy:
        copy.write(buffer.getbuffer())


class PsycopgSession:
    """A psycopg 3 connection in autocommit mode; transactions are explicit BEGIN/COMMIT."""

    def __init__(self, connection):
        self.connection = connection

    def execute(self, sql: str, params: Sequence = ()) -> None:
        self.connection.execute(sql, list(params) or None)

    def query(self, sql: str, params: Sequence = ()) -> list[tuple]:
        return self.connection.execute(sql, list(params) or None).fetchall()

    def executemany(self, sql: str, rows: list[Sequence]) -> None:
        with self.connection.cursor() as cursor:
            cursor.executemany(sql, rows)


@contextmanager
def psycopg_session(url: str, schema: str, what: str) -> Iterator[PsycopgSession]:
    psycopg = driver("psycopg", "psycopg[binary]", what)  # on use: only PostgreSQL and Redshift need it

    if not url:
        raise LoadError(f"{what} is not configured: set its URL in the warehouse settings")
    try:
        connection = psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise LoadError(f"cannot connect to {what}: {str(exc).strip()}") from None
    try:
        connection.execute("SET TIME ZONE 'UTC'")
        connection.execute(f"SET search_path TO {quote(schema)}")
        yield PsycopgSession(connection)
    finally:
        connection.close()


class PostgresDestination(Configured, StreamingSqlDestination):
    configuration = PostgresSettings
    name = "postgres"
    title = "PostgreSQL"
    capabilities = Capabilities(
        load_types=frozenset({"incremental", "truncate_insert", "upsert"}),
        json_type="JSONB",
        identifiers=IdentifierRules(max_length=63),
        widens_columns=True,
        text_allows_nul=False,
    )
    dialect = POSTGRES

    def describe_target(self, table: str) -> str:
        return f"table {self.config.schema}.{table} in PostgreSQL"

    @contextmanager
    def connect(self) -> Iterator[PsycopgSession]:
        with psycopg_session(self.config.url, self.config.schema, "PostgreSQL") as session:
            if not session.query("SELECT 1 FROM pg_namespace WHERE nspname = %s", [self.config.schema]):
                session.execute(f"CREATE SCHEMA {quote(self.config.schema)}")
            yield session

    def write(self, session: PsycopgSession, table: str, columns: list[str], batches: Iterable[pa.Table]) -> None:
        with session.connection.cursor() as cursor:
            for batch in batches:
                copy_arrow(cursor, table, columns, batch)
