"""What makes PostgreSQL stand in for Redshift in the tests.

Everything the Redshift destination sends runs on PostgreSQL unchanged, except one statement:
`COPY ... FORMAT AS PARQUET MANIFEST`, which exists only in Redshift. No Redshift can run on a
test machine, so that single step is emulated: `EmulatedCopy` records the exact statement the
destination would send, then does what Redshift would do with it - reads the manifest and the
staged Parquet objects from S3 (the moto server) and inserts their rows, by position, into the
named table. The two Redshift names the DDL uses are given PostgreSQL equivalents: the SUPER
type (a domain over jsonb) and JSON_PARSE (a function casting text to it).
"""

from __future__ import annotations

import io
import json

import pyarrow.parquet as pq

from storage.destinations.postgres import copy_arrow
from storage.destinations.redshift import CopyStatement

REDSHIFT_NAMES = [
    "CREATE DOMAIN super AS jsonb",
    "CREATE FUNCTION json_parse(text) RETURNS super LANGUAGE sql IMMUTABLE AS 'SELECT $1::jsonb'",
]


def install_redshift_names(connection) -> None:
    for statement in REDSHIFT_NAMES:
        connection.execute(statement)


class EmulatedCopy:
    def __init__(self, s3_client, bucket: str):
        self.client = s3_client
        self.bucket = bucket
        self.statements: list[CopyStatement] = []

    def _object(self, url: str) -> bytes:
        prefix = f"s3://{self.bucket}/"
        assert url.startswith(prefix), f"COPY reads {url}, outside the staging bucket"
        return self.client.get_object(Bucket=self.bucket, Key=url[len(prefix):])["Body"].read()

    def __call__(self, session, statement: CopyStatement) -> None:
        self.statements.append(statement)
        manifest = json.loads(self._object(statement.manifest_url))
        columns = [row[0] for row in session.query(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped "
            "ORDER BY attnum", [statement.table])]
        with session.connection.cursor() as cursor:
            for entry in manifest["entries"]:
                data = self._object(entry["url"])
                # Redshift requires content_length for Parquet manifests and checks it.
                assert entry["meta"]["content_length"] == len(data)
                table = pq.read_table(io.BytesIO(data))
                # Redshift matches Parquet columns to the table's by position, and both counts must agree.
                assert table.num_columns == len(columns), (table.column_names, columns)
                copy_arrow(cursor, statement.table, columns, table)
