"""PostgreSQL and Snowflake specifics: schemas, names, limits and unreachable servers."""

from __future__ import annotations

from dataclasses import replace

import psycopg
import pytest

from storage.destinations.settings import PostgresSettings
from storage.destinations.base import LoadError, RejectedRowsError
from storage.destinations.postgres import PostgresDestination
from storage.destinations.snowflake import SnowflakeDestination
from tests.destinations.harness import make_target, request_for


def test_postgres_loads_into_the_configured_schema(postgres_url, spool_files):
    destination = PostgresDestination(config=PostgresSettings(url=postgres_url, schema="analytics"))
    destination.load(request_for(spool_files([{"id": 1}, {"id": 2}]), "run-1"))
    with psycopg.connect(postgres_url) as con:
        assert con.execute("SELECT count(*) FROM analytics.orders").fetchone() == (2,)
        assert con.execute("SELECT to_regclass('public.orders')").fetchone() == (None,)
    assert destination.describe_target("orders") == "table analytics.orders in PostgreSQL"


def test_postgres_rejects_text_with_a_nul_character_instead_of_failing_the_load(request, tmp_path, spool_files):
    pg = make_target("postgres", request, tmp_path)
    files = spool_files([{"id": 1, "note": "fine"}, {"id": 2, "note": "bad\x00byte"}, {"id": 3, "doc": {"k": "\x00"}}])
    with pytest.raises(RejectedRowsError, match="field 'note' contains a NUL character"):
        pg.destination.load(request_for(files, "run-1"))
    assert pg.destination.load(request_for(files, "run-1", ratio=0.7)).rejected == 2
    assert [r["id"] for r in pg.rows("orders")] == [1]


def test_long_field_names_become_distinct_columns_within_postgres_limit(request, tmp_path, spool_files):
    pg = make_target("postgres", request, tmp_path)
    first, second = "a_really_long_field_name_" * 3 + "one", "a_really_long_field_name_" * 3 + "two"
    pg.destination.load(request_for(spool_files([{"id": 1, first: "x", second: "y"}]), "run-1"))
    columns = [c for c in pg.types("orders") if c.startswith("a_really")]
    assert len(columns) == 2 and all(len(c.encode()) <= 63 for c in columns)
    assert sorted(pg.rows("orders")[0][c] for c in columns) == ["x", "y"]


def test_an_unreachable_postgres_is_reported_clearly(spool_files):
    destination = PostgresDestination(config=PostgresSettings(url="postgresql://postgres@127.0.0.1:1/none"))
    with pytest.raises(LoadError, match="cannot connect to PostgreSQL"):
        destination.check()
    with pytest.raises(LoadError, match="not configured"):
        PostgresDestination(config=PostgresSettings()).check()


def test_snowflake_names_are_upper_case_so_they_query_without_quotes(request, tmp_path, spool_files):
    import snowflake.connector

    from storage.destinations.snowflake import connection_arguments

    sf = make_target("snowflake", request, tmp_path)
    sf.destination.load(request_for(spool_files([{"id": 1, "payload": {"sku": "A"}}]), "run-1"))
    settings = sf.make().config
    with snowflake.connector.connect(**connection_arguments(settings)) as con:
        cursor = con.cursor()
        cursor.execute("SELECT id, payload:sku FROM orders")
        assert cursor.fetchall() == [(1, '"A"')]
    assert sf.types("orders")["payload"] == "VARIANT"
    assert sf.make().describe_target("orders") == f"table {settings.database}.LOADS.ORDERS in Snowflake"


def test_an_unreachable_snowflake_is_reported_clearly(snowflake_settings):
    destination = SnowflakeDestination(config=replace(snowflake_settings, port=1))
    with pytest.raises(LoadError, match="cannot connect to Snowflake"):
        destination.check()
    with pytest.raises(LoadError, match="not configured"):
        SnowflakeDestination(config=replace(snowflake_settings, account="")).check()


class BrokenCopy(Exception):
    pass


def _fail_the_fill(monkeypatch) -> None:
    """The load fails inside its transaction, after Snowflake has committed its DDL."""
    def fill(*args, **kwargs):
        raise BrokenCopy("simulated failure of COPY INTO")

    monkeypatch.setattr(SnowflakeDestination, "copy_staged", fill)


def test_a_snowflake_load_failing_after_its_ddl_takes_back_the_columns_and_the_table_it_made(
        request, tmp_path, spool_files, monkeypatch):
    sf = make_target("snowflake", request, tmp_path)
    with monkeypatch.context() as patch:
        _fail_the_fill(patch)
        with pytest.raises(BrokenCopy):
            sf.make().load(request_for(spool_files([{"id": 1, "name": "Ada"}]), "run-1"))
    assert sf.types("orders") == {}  # the table it created is gone

    sf.make().load(request_for(spool_files([{"id": 1, "name": "Ada"}]), "run-1"))
    rows, types = sf.rows("orders", audit=True), sf.types("orders")
    files = spool_files([{"id": 2, "name": "Bo", "added": 1.5, "note": "new"}])
    with monkeypatch.context() as patch:
        _fail_the_fill(patch)
        with pytest.raises(BrokenCopy):
            sf.make().load(request_for(files, "run-2"))
    assert (sf.rows("orders", audit=True), sf.types("orders")) == (rows, types)  # no stray empty columns
    assert not sf.make().has_run("orders", "run-2")

    assert sf.make().load(request_for(files, "run-2")).rows == 1  # the retry adds them again
    assert [(r["id"], r.get("added"), r.get("note")) for r in sf.rows("orders")] == [(1, None, None), (2, 1.5, "new")]
