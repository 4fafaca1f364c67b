"""One harness per destination: how to make it against its real server, and how to read back
what it stored (rows, column types, rejects) with that system's own client, so the contract
tests can assert the same behaviour everywhere.

Rows come back as dicts with lower-case keys, JSON decoded and timestamps as datetimes.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from storage.destinations import spool
from storage.destinations.base import Destination, LoadRequest
from storage.destinations.column_types import ColumnType as T

LOADED_AT = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


class Spool:
    """Writes spool files the way a run does: JSON lines, possibly split over several files."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.count = 0

    def __call__(self, *files: list[dict]) -> list[Path]:
        paths = []
        for records in files:
            self.count += 1
            path = self.folder / f"spool-{self.count:03d}.jsonl"
            path.write_text("".join(json.dumps(r) + "\n" for r in records))
            paths.append(path)
        return paths


def request_for(files, run_id: str, load_type: str = "incremental", key=(), ratio: float = 0.0,
                table: str = "orders") -> LoadRequest:
    return LoadRequest(table=table, files=files, load_type=load_type, run_id=run_id, loaded_at=LOADED_AT,
                       primary_key=list(key), max_rejected_ratio=ratio)


TARGETS = ["duckdb", "parquet", "postgres", "s3", "snowflake", "redshift"]
CHUNK_ROWS = 2  # small chunks, so that every load in these tests streams several of them


@dataclass
class Target:
    kind: str
    make: Callable[..., Destination]
    read_rows: Callable[[str], list[dict]]
    read_types: Callable[[str], dict[str, str]]
    read_rejects: Callable[[str], list[dict]]
    type_names: dict[T, str]
    leftovers: Callable[[], list[str]] = field(default=list)
    copier: object | None = None
    # Makes the destination's undo of a failed load (its ROLLBACK, its cleanup) do its work and
    # then fail too: what a load must not let replace its first error.
    break_undo: Callable[[pytest.MonkeyPatch], None] | None = None
    # Makes the next load fail half-way, after it has written some of its rows: the failure of
    # a SQL destination's load step inside its transaction, or a spool unreadable mid-load.
    fail_mid_load: Callable[[pytest.MonkeyPatch], None] | None = None

    @property
    def destination(self) -> Destination:
        return self.make()

    def rows(self, table: str, audit: bool = False) -> list[dict]:
        """The table's rows ordered by id; without the audit columns unless asked."""
        rows = self.read_rows(table)
        if not audit:
            rows = [{k: v for k, v in r.items() if not k.startswith("_tributary")} for r in rows]
        return sorted(rows, key=lambda r: (r.get("id") is None, str(r.get("id"))))

    def types(self, table: str) -> dict[str, str]:
        return self.read_types(table)


class DiskFailure(OSError):
    pass


def fail_second_pass_after_one_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    """The spool becomes unreadable half-way through the load: the first pass (inference)
    reads it whole, the second (writing) gets one chunk and then an I/O error."""
    real = spool.read_chunks
    passes = []

    def read_chunks(files, chunk_rows=spool.DEFAULT_CHUNK_ROWS):
        passes.append(1)
        for number, chunk in enumerate(real(files, chunk_rows)):
            if len(passes) >= 2 and number == 1:
                raise DiskFailure("simulated disk failure while reading the spool")
            yield chunk

    monkeypatch.setattr(spool, "read_chunks", read_chunks)


def load_step_fails(cls) -> Callable[[pytest.MonkeyPatch], None]:
    """A SQL destination's load step (whichever: streaming, staged, native) writes its rows
    inside the transaction and then fails, before the ledger row and COMMIT."""
    def fail_mid_load(monkeypatch: pytest.MonkeyPatch) -> None:
        real = cls.commit

        def commit(self, load):
            load_rows = load.load_rows

            def failing(session):
                load_rows(session)
                raise DiskFailure("simulated disk failure while loading the rows")

            load.load_rows = failing
            return real(self, load)

        monkeypatch.setattr(cls, "commit", commit)

    return fail_mid_load


class UndoFailure(Exception):
    """The simulated failure of a load's undo."""


class _RollbackFails:
    """A session whose ROLLBACK takes effect and then fails, as one on a connection that died
    with it ("cannot rollback - no transaction is active")."""

    def __init__(self, session):
        self._session = session

    def __getattr__(self, name: str):
        return getattr(self._session, name)

    def execute(self, sql: str, params: Sequence = ()) -> None:
        self._session.execute(sql, params)
        if sql.strip().upper() == "ROLLBACK":
            raise UndoFailure("cannot rollback - no transaction is active")


def rollback_fails(cls) -> Callable[[pytest.MonkeyPatch], None]:
    """Every session of a SQL destination class rolls back, then fails."""
    def break_undo(monkeypatch: pytest.MonkeyPatch) -> None:
        real = cls.connect

        @contextmanager
        def connect(self):
            with real(self) as session:
                yield _RollbackFails(session)

        monkeypatch.setattr(cls, "connect", connect)

    return break_undo


def cleanup_fails(cls, method: str) -> Callable[[pytest.MonkeyPatch], None]:
    """A file destination's cleanup of a failed load does its work, then fails."""
    def break_undo(monkeypatch: pytest.MonkeyPatch) -> None:
        real = getattr(cls, method)

        def failing(self, *args, **kwargs):
            real(self, *args, **kwargs)
            raise UndoFailure("simulated failure of the cleanup")

        monkeypatch.setattr(cls, method, failing)

    return break_undo


def _normalise(row: dict, json_columns: set[str]) -> dict:
    out = {}
    for key, value in row.items():
        key = key.lower()
        if key in json_columns and isinstance(value, str):
            value = json.loads(value)
        out[key] = value
    return out


# ---------------------------------------------------------------- DuckDB and local Parquet


def _duckdb(request, tmp_path: Path) -> Target:
    from storage.destinations.duckdb import DuckDBDestination

    path = tmp_path / "warehouse.duckdb"

    def query(sql: str, params=()) -> list[tuple]:
        if not path.exists():
            return []
        with duckdb.connect(str(path), read_only=True) as con:
            return con.execute(sql, list(params)).fetchall()

    def types(table: str) -> dict[str, str]:
        return {n.lower(): t for n, t in query(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? "
            "ORDER BY ordinal_position", [table])}

    def rows(table: str) -> list[dict]:
        if not types(table):
            return []
        with duckdb.connect(str(path), read_only=True) as con:
            result = con.execute(f'SELECT * FROM "{table}"')
            names = [d[0] for d in result.description]
            data = result.fetchall()
        json_columns = {n for n, t in types(table).items() if t == "JSON"}
        return [_normalise(dict(zip(names, r)), json_columns) for r in data]

    return Target(
        "duckdb", lambda **kw: DuckDBDestination(path=path, chunk_rows=CHUNK_ROWS, **kw), rows, types,
        lambda table: rows(f"{table}__rejected"),
        {T.INTEGER: "BIGINT", T.FLOAT: "DOUBLE", T.BOOLEAN: "BOOLEAN", T.TIMESTAMP: "TIMESTAMP WITH TIME ZONE",
         T.STRING: "VARCHAR", T.JSON: "JSON"},
        break_undo=rollback_fails(DuckDBDestination), fail_mid_load=load_step_fails(DuckDBDestination),
    )


def _parquet_tables(paths: list[Path]) -> list[dict]:
    tables = [pq.read_table(p) for p in paths]
    if not tables:
        return []
    return pa.concat_tables(tables, promote_options="default").to_pylist()


def _parquet(request, tmp_path: Path) -> Target:
    from storage.destinations.parquet import STATE_FILE, ParquetDestination

    root = tmp_path / "parquet"

    def types(table: str) -> dict[str, str]:
        state = root / table / STATE_FILE
        return {c["name"].lower(): c["type"] for c in json.loads(state.read_text())["columns"]} if state.exists() else {}

    def rows(table: str) -> list[dict]:
        json_columns = {n for n, t in types(table).items() if t == "json"} | {"record"}
        return [_normalise(r, json_columns) for r in _parquet_tables(sorted((root / table).glob("run_id=*/*.parquet")))]

    def leftovers() -> list[str]:
        return [str(p) for p in root.glob("**/.tmp-*")]

    return Target(
        "parquet", lambda **kw: ParquetDestination(root=root, chunk_rows=CHUNK_ROWS, **kw), rows, types,
        lambda table: rows(f"{table}__rejected"), {k: k.value for k in T}, leftovers,
        break_undo=cleanup_fails(ParquetDestination, "discard"), fail_mid_load=fail_second_pass_after_one_chunk,
    )


# ---------------------------------------------------------------- PostgreSQL and Redshift


def _postgres_reader(url: str):
    import psycopg

    def query(sql: str, params=()) -> list[tuple]:
        with psycopg.connect(url) as con:
            return con.execute(sql, list(params) or None).fetchall()

    def types(table: str) -> dict[str, str]:
        return {n.lower(): t for n, t in query(
            "SELECT column_name, COALESCE(domain_name, data_type) FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position", [table])}

    def rows(table: str) -> list[dict]:
        if not types(table):
            return []
        with psycopg.connect(url) as con:
            cursor = con.execute(f'SELECT * FROM "{table}"')
            names = [d.name for d in cursor.description]
            return [_normalise(dict(zip(names, r)), set()) for r in cursor.fetchall()]

    return types, rows


def _postgres(request, tmp_path: Path) -> Target:
    from storage.destinations.settings import PostgresSettings
    from storage.destinations.postgres import PostgresDestination

    url = request.getfixturevalue("postgres_url")
    types, rows = _postgres_reader(url)
    return Target(
        "postgres", lambda **kw: PostgresDestination(config=PostgresSettings(url=url), chunk_rows=CHUNK_ROWS, **kw),
        rows, types, lambda table: rows(f"{table}__rejected"),
        {T.INTEGER: "bigint", T.FLOAT: "double precision", T.BOOLEAN: "boolean",
         T.TIMESTAMP: "timestamp with time zone", T.STRING: "text", T.JSON: "jsonb"},
        break_undo=rollback_fails(PostgresDestination), fail_mid_load=load_step_fails(PostgresDestination),
    )


REDSHIFT_ROLE = "arn:aws:iam::123456789012:role/tributary-load"


def _redshift(request, tmp_path: Path) -> Target:
    import psycopg

    from storage.destinations.settings import RedshiftSettings
    from storage.destinations.redshift import RedshiftDestination
    from storage.destinations.s3.objects import list_keys, s3_client
    from tests.destinations.redshift_emulation import EmulatedCopy, install_redshift_names

    url = request.getfixturevalue("postgres_url")
    s3 = request.getfixturevalue("s3_settings")
    with psycopg.connect(url, autocommit=True) as con:
        install_redshift_names(con)
    client = s3_client(s3)
    copier = EmulatedCopy(client, s3.bucket)
    config = RedshiftSettings(url=url, iam_role=REDSHIFT_ROLE, staging_prefix="staging")
    types, rows = _postgres_reader(url)

    def make(**kw):
        kw.setdefault("copier", copier)
        return RedshiftDestination(config=config, s3_config=s3, chunk_rows=CHUNK_ROWS, **kw)

    return Target(
        "redshift", make, rows, types, lambda table: rows(f"{table}__rejected"),
        {T.INTEGER: "bigint", T.FLOAT: "double precision", T.BOOLEAN: "boolean",
         T.TIMESTAMP: "timestamp with time zone", T.STRING: "character varying", T.JSON: "super"},
        leftovers=lambda: list_keys(client, s3.bucket, "staging/"), copier=copier,
        break_undo=rollback_fails(RedshiftDestination), fail_mid_load=load_step_fails(RedshiftDestination),
    )


# ---------------------------------------------------------------- S3 and Snowflake


def _s3(request, tmp_path: Path) -> Target:
    from storage.destinations.s3 import S3Destination
    from storage.destinations.s3.objects import list_keys, s3_client

    settings = request.getfixturevalue("s3_settings")
    client = s3_client(settings)

    def manifest(table: str) -> dict | None:
        try:
            body = client.get_object(Bucket=settings.bucket, Key=f"lake/{table}/manifest.json")["Body"].read()
        except client.exceptions.NoSuchKey:
            return None
        return json.loads(body)

    def types(table: str) -> dict[str, str]:
        current = manifest(table)
        return {c["name"].lower(): c["type"] for c in current["columns"]} if current else {}

    def read_objects(keys: list[str]) -> list[dict]:
        tables = [pq.read_table(io.BytesIO(client.get_object(Bucket=settings.bucket, Key=k)["Body"].read()))
                  for k in keys]
        return pa.concat_tables(tables, promote_options="default").to_pylist() if tables else []

    def rows(table: str) -> list[dict]:
        current = manifest(table)
        if not current:
            return []
        keys = [e["url"].split(f"s3://{settings.bucket}/", 1)[1] for e in current["entries"]]
        json_columns = {n for n, t in types(table).items() if t == "json"}
        return [_normalise(r, json_columns) for r in read_objects(keys)]

    def rejects(table: str) -> list[dict]:
        keys = [k for k in list_keys(client, settings.bucket, f"lake/{table}__rejected/") if k.endswith(".parquet")]
        return [_normalise(r, {"record"}) for r in read_objects(keys)]

    def leftovers() -> list[str]:
        """Objects no manifest lists (a failed or replaced load must not leave any)."""
        listed = set()
        for key in list_keys(client, settings.bucket, "lake/"):
            if key.endswith("/manifest.json") and key.count("/") == 2:
                listed.add(key)
                listed |= {e["url"].split(f"s3://{settings.bucket}/", 1)[1] for e in json.loads(
                    client.get_object(Bucket=settings.bucket, Key=key)["Body"].read())["entries"]}
        data = [k for k in list_keys(client, settings.bucket, "lake/") if "__rejected/" not in k]
        run_manifests = {k for k in data if k.endswith("/manifest.json") and k.count("/") > 2}
        return [k for k in data if k not in listed and k not in run_manifests]

    return Target(
        "s3", lambda **kw: S3Destination(config=kw.pop("config", settings), chunk_rows=CHUNK_ROWS, **kw),
        rows, types, rejects, {k: k.value for k in T}, leftovers,
        break_undo=cleanup_fails(S3Destination, "discard"), fail_mid_load=fail_second_pass_after_one_chunk,
    )


def _snowflake(request, tmp_path: Path) -> Target:
    import snowflake.connector

    from storage.destinations.snowflake import SnowflakeDestination, connection_arguments

    settings = request.getfixturevalue("snowflake_settings")

    def query(sql: str, params=()):
        with snowflake.connector.connect(**connection_arguments(settings)) as con:
            cursor = con.cursor()
            cursor.execute(sql, list(params) or None)
            return [d[0] for d in cursor.description], cursor.fetchall()

    def types(table: str) -> dict[str, str]:
        _, found = query("SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = %s "
                         "AND table_name = %s ORDER BY ordinal_position", [settings.schema, table.upper()])
        return {n.lower(): t for n, t in found}

    def rows(table: str) -> list[dict]:
        columns = types(table)
        if not columns:
            return []
        # The test server returns NULL timestamps as 1970-01-01 over HTTP: read NULL-ness alongside.
        timestamps = [c for c, t in columns.items() if t.startswith("TIMESTAMP")]
        flags = "".join(f', "{c.upper()}" IS NULL AS "NULL_{c.upper()}"' for c in timestamps)
        names, found = query(f'SELECT *{flags} FROM "{table.upper()}"')
        result = []
        for values in found:
            row = dict(zip(names, values))
            for c in timestamps:
                if row.pop(f"NULL_{c.upper()}"):
                    row[c.upper()] = None
            result.append(_normalise(row, {c for c, t in columns.items() if t == "VARIANT"}))
        return result

    return Target(
        "snowflake", lambda **kw: SnowflakeDestination(config=settings, chunk_rows=CHUNK_ROWS, **kw),
        rows, types, lambda table: rows(f"{table}__rejected"),
        {T.INTEGER: "NUMBER", T.FLOAT: "FLOAT", T.BOOLEAN: "BOOLEAN", T.TIMESTAMP: "TIMESTAMP_TZ",
         T.STRING: "TEXT", T.JSON: "VARIANT"},
        break_undo=rollback_fails(SnowflakeDestination), fail_mid_load=load_step_fails(SnowflakeDestination),
    )


_FACTORIES = {"duckdb": _duckdb, "parquet": _parquet, "postgres": _postgres, "redshift": _redshift, "s3": _s3,
              "snowflake": _snowflake}


def make_target(kind: str, request, tmp_path: Path) -> Target:
    return _FACTORIES[kind](request, tmp_path)
