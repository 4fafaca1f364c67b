"""Warehouse credentials: encrypted at rest, overridable from the environment, masked for the
UI, and a "Test connection" that really reaches each destination."""

from __future__ import annotations

import json
import stat
from dataclasses import fields, replace

import pytest

from common.errors import ValidationError
from common.secrets import MASK
from storage.destinations.settings import (
    SECRET_FIELDS,
    SECTIONS,
    PostgresSettings,
    WarehouseSettings,
    load_warehouse_settings,
    masked,
    save_warehouse_settings,
    stored_warehouse_settings,
    check_connections,
    update_warehouse_settings,
)
from storage.destinations import get_destination
from tests.destinations.harness import request_for


def test_settings_are_stored_encrypted_and_read_back(tributary):
    ws = WarehouseSettings(postgres=PostgresSettings(url="postgresql://loader:hunter2@db.example:5432/dw"))
    save_warehouse_settings(ws)
    path = tributary / "warehouse.json"
    assert "hunter2" not in path.read_text() and "db.example" not in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["version"] == 1
    assert load_warehouse_settings().postgres.url == "postgresql://loader:hunter2@db.example:5432/dw"


def test_environment_variables_take_precedence_and_are_not_saved(tributary, monkeypatch):
    save_warehouse_settings(WarehouseSettings(postgres=PostgresSettings(url="postgresql://stored/db")))
    monkeypatch.setenv("TRIBUTARY_POSTGRES_URL", "postgresql://from-env/db")
    monkeypatch.setenv("TRIBUTARY_SNOWFLAKE_PORT", "8443")
    assert load_warehouse_settings().postgres.url == "postgresql://from-env/db"
    assert load_warehouse_settings().snowflake.port == 8443
    update_warehouse_settings("postgres", schema="analytics")
    assert stored_warehouse_settings().postgres == PostgresSettings(url="postgresql://stored/db", schema="analytics")


def test_a_form_that_leaves_a_secret_masked_keeps_it(tributary):
    update_warehouse_settings("snowflake", account="acme", user="loader", password="s3cret")
    view = masked(load_warehouse_settings())
    assert view["snowflake"]["password"] == MASK and view["snowflake"]["user"] == "loader"
    update_warehouse_settings("snowflake", user="etl", password=view["snowflake"]["password"])
    assert stored_warehouse_settings().snowflake.password == "s3cret"
    update_warehouse_settings("postgres", url="postgresql://loader:pw@host/db")
    assert masked(load_warehouse_settings())["postgres"]["url"] == f"postgresql://loader:{MASK}@host/db"


def test_bad_values_are_refused(tributary):
    with pytest.raises(ValidationError, match="must start with postgresql://"):
        update_warehouse_settings("postgres", url="mysql://x")
    with pytest.raises(ValidationError, match="must be one of parquet, jsonl"):
        update_warehouse_settings("s3", file_format="csv")
    with pytest.raises(ValidationError, match="unknown field"):
        update_warehouse_settings("s3", colour="blue")


def test_test_connection_reaches_postgres_and_reports_a_bad_one(tributary, postgres_url):
    update_warehouse_settings("postgres", url=postgres_url)
    [check] = check_connections("postgres")
    assert check.ok and check.title == "PostgreSQL", check.message
    update_warehouse_settings("postgres", url="postgresql://postgres@127.0.0.1:1/nowhere")
    [check] = check_connections("postgres")
    assert not check.ok and "cannot connect to PostgreSQL" in check.message


def test_test_connection_covers_every_destination_of_the_warehouse(tributary, postgres_url, s3_settings,
                                                                   snowflake_settings):
    from dataclasses import asdict

    save_warehouse_settings(WarehouseSettings(
        s3=s3_settings, snowflake=snowflake_settings,
        redshift=replace(WarehouseSettings().redshift, url=postgres_url, iam_role="arn:aws:iam::1:role/r"),
    ))
    results = {w: [(c.destination, c.ok) for c in check_connections(w)] for w in ("local", "redshift", "snowflake")}
    assert results == {"local": [("duckdb", True), ("parquet", True)],
                       "redshift": [("redshift", True), ("s3", True)], "snowflake": [("snowflake", True)]}
    update_warehouse_settings("s3", bucket="missing-bucket")
    assert [(c.destination, c.ok) for c in check_connections("redshift")] == [("redshift", False), ("s3", False)]
    assert asdict(stored_warehouse_settings().snowflake) == asdict(snowflake_settings)


def test_destinations_named_by_a_feed_use_the_stored_settings(tributary, postgres_url, spool_files):
    """What a run does: get_destination(name) with no configuration of its own."""
    import psycopg

    update_warehouse_settings("postgres", url=postgres_url, schema="feeds")
    get_destination("postgres").load(request_for(spool_files([{"id": 1}]), "run-1"))
    with psycopg.connect(postgres_url) as con:
        assert con.execute("SELECT id, _tributary_run_id FROM feeds.orders").fetchall() == [(1, "run-1")]


@pytest.mark.parametrize("name", list(SECTIONS))
def test_every_section_keeps_the_settings_contract(name, monkeypatch):
    """configuration.Section, for each destination's settings: named as in the file, its
    secrets among its fields, valid defaults, each field read from TRIBUTARY_<SECTION>_<FIELD>."""
    section = SECTIONS[name]()
    assert section.section == name
    assert section.secrets and {s for n, s in SECRET_FIELDS if n == name} == section.secrets
    assert section.secrets <= {f.name for f in fields(section)}
    assert section.problems() == []
    text_fields = [f.name for f in fields(section) if isinstance(getattr(section, f.name), str)]
    for field_name in text_fields:
        monkeypatch.setenv(f"TRIBUTARY_{name.upper()}_{field_name.upper()}", f"env-{field_name}")
    from_env = section.with_environment()
    assert {f: getattr(from_env, f) for f in text_fields} == {f: f"env-{f}" for f in text_fields}
