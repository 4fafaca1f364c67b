"""Amazon Redshift: shaped chunks are staged as Parquet in S3, then loaded with
`COPY ... FORMAT AS PARQUET MANIFEST` into a temporary table and applied with plain SQL
(StagedLoad). Its settings are configuration.py's RedshiftSettings and the S3 section's bucket.

The SQL (DDL, COPY, delete-insert merges) goes over the PostgreSQL wire protocol with psycopg:
Redshift speaks it, while redshift_connector cannot be tested against anything that runs
locally (see STACK-NOTES). Staged files carry timestamps and JSON as text, cast with CAST and
JSON_PARSE on the way into the table (SUPER columns hold the JSON). Redshift cannot change a
column's type inside a transaction, so a value that does not fit its column is rejected; text
over 65535 bytes (VARCHAR's limit) and NUL characters are rejected too. Names are lower case,
as Redshift folds them.

How COPY runs is injectable (`copier`): the default sends the statement to Redshift. The tests
run everything else against PostgreSQL and replace only that one statement by an equivalent
loader, because no Redshift can run on a test machine.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from common.settings import Settings, get_settings
from storage.destinations import spool
from storage.destinations.base import Capabilities, IdentifierRules, LoadError, LoadRequest, undo_keeping_error
from storage.destinations.column_types import ColumnType
from storage.destinations.files import parquet_parts
from storage.destinations.postgres.destination import PsycopgSession, psycopg_session
from storage.destinations.s3 import objects
from storage.destinations.sql import SqlDialect, quote
from storage.destinations.sql_loads import StagedSqlDestination, Staging, staged_file_table

# Redshift's VARCHAR is limited to 65535 bytes; SUPER holds semi-structured values and is
# filled from JSON text with JSON_PARSE.
REDSHIFT = SqlDialect(
    types={
        ColumnType.BOOLEAN: "BOOLEAN", ColumnType.INTEGER: "BIGINT", ColumnType.FLOAT: "DOUBLE PRECISION",
        ColumnType.TIMESTAMP: "TIMESTAMPTZ", ColumnType.STRING: "VARCHAR(65535)", ColumnType.JSON: "SUPER",
    },
    param="%s",
    json_parse="JSON_PARSE({})",
)

def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dataclass
class CopyStatement:
    table: str
    manifest_url: str
    authorization: str  # IAM_ROLE '...' or ACCESS_KEY_ID '...' SECRET_ACCESS_KEY '...'
    redacted_authorization: str

    def _sql(self, authorization: str) -> str:
        return (f"COPY {quote(self.table)} FROM {_literal(self.manifest_url)} {authorization} "
                "FORMAT AS PARQUET MANIFEST")

    @property
    def sql(self) -> str:
        return self._sql(self.authorization)

    @property
    def redacted(self) -> str:
        """The statement as it may appear in a log."""
        return self._sql(self.redacted_authorization)


def run_copy(session: PsycopgSession, statement: CopyStatement) -> None:
    session.execute(statement.sql)


@dataclass
class StagedFiles:
    prefix: str
    manifest_key: str
    keys: list[str] = field(default_factory=list)
    parts: int = 0


class RedshiftDestination(StagedSqlDestination):
    name = "redshift"
    title = "Amazon Redshift"
    capabilities = Capabilities(
        load_types=frozenset({"incremental", "truncate_insert", "upsert"}),
        json_type="SUPER",
        identifiers=IdentifierRules(max_length=127, case="lower"),
        max_text_bytes=65535,
        text_allows_nul=False,
    )
    dialect = REDSHIFT

    def __init__(self, settings: Settings | None = None, config=None, s3_config=None,
                 copier: Callable[[PsycopgSession, CopyStatement], None] = run_copy,
                 chunk_rows: int = spool.DEFAULT_CHUNK_ROWS):
        self.settings = settings or get_settings()
        self._config = config
        self._s3_config = s3_config
        self._client = None
        self.copier = copier
        self.chunk_rows = chunk_rows

    def _load_settings(self) -> None:
        from storage.destinations.settings import load_warehouse_settings

        ws = load_warehouse_settings(self.settings)
        self._config = self._config or ws.redshift
        self._s3_config = self._s3_config or ws.s3

    @property
    def config(self):
        if self._config is None:
            self._load_settings()
        return self._config

    @property
    def s3_config(self):
        if self._s3_config is None:
            self._load_settings()
        return self._s3_config

    @property
    def client(self):
        if self._client is None:
            self._client = objects.s3_client(self.s3_config)
        return self._client

    def describe_target(self, table: str) -> str:
        return f"table {self.config.schema}.{self.table_name(table)} in Redshift (staged through S3)"

    @contextmanager
    def connect(self) -> Iterator[PsycopgSession]:
        with psycopg_session(self.config.url, self.config.schema, "Redshift") as session:
            yield session

    def check(self) -> None:
        super().check()
        objects.check_bucket(self.client, self.s3_config.bucket)

    def copy_statement(self, table: str, manifest_url: str) -> CopyStatement:
        if self.config.iam_role:
            auth = f"IAM_ROLE {_literal(self.config.iam_role)}"
            return CopyStatement(table, manifest_url, auth, auth)
        if not self.s3_config.access_key_id:
            raise LoadError("Redshift COPY needs an IAM role (warehouse settings) or S3 access keys")
        auth = (f"ACCESS_KEY_ID {_literal(self.s3_config.access_key_id)} "
                f"SECRET_ACCESS_KEY {_literal(self.s3_config.secret_access_key)}")
        redacted = f"ACCESS_KEY_ID {_literal(self.s3_config.access_key_id)} SECRET_ACCESS_KEY '****'"
        return CopyStatement(table, manifest_url, auth, redacted)

    def stage(self, session, request: LoadRequest, batches: Iterable[pa.Table]) -> StagedFiles:
        bucket = self.s3_config.bucket
        objects.check_bucket(self.client, bucket)
        prefix = objects.join_key(self.config.staging_prefix, self.table_name(request.table), request.run_id,
                                  uuid.uuid4().hex[:8])
        staged = StagedFiles(prefix=prefix, manifest_key=objects.join_key(prefix, "manifest.json"))
        entries = []
        try:
            with tempfile.TemporaryDirectory(prefix="tributary-redshift-") as tmp:
                for part in parquet_parts((staged_file_table(b) for b in batches), Path(tmp)):
                    key = objects.join_key(prefix, part.name)
                    staged.keys.append(key)
                    entries.append(objects.upload(self.client, bucket, key, part))
                    part.unlink()
            staged.keys.append(staged.manifest_key)
            objects.put_json(self.client, bucket, staged.manifest_key, {"entries": entries})
        except BaseException as exc:
            undo_keeping_error(exc, lambda: self.discard_staged(staged), "deleting the staged files")
            raise
        staged.parts = len(entries)
        return staged

    def copy_staged(self, session: PsycopgSession, staging: Staging, staged: StagedFiles) -> None:
        if not staged.parts:
            return  # every record was rejected (within the threshold): nothing to copy
        manifest_url = objects.url(self.s3_config.bucket, staged.manifest_key)
        self.copier(session, self.copy_statement(staging.table, manifest_url))

    def discard_staged(self, staged: StagedFiles) -> None:
        objects.delete_keys(self.client, self.s3_config.bucket, staged.keys)
