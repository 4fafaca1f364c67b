"""The Settings page's logic: what it tells about the warehouse, runner, mail and store, how its
forms save, and that no secret comes back in clear."""

from __future__ import annotations

import pytest

from common.secrets import MASK
from app_pages.view_models.settings_view import (
    form_fields,
    mask_url,
    runner_status,
    save_section,
    smtp_rows,
    store_rows,
    stored_url,
    warehouse_overview,
)
from storage.destinations.settings import stored_warehouse_settings, update_warehouse_settings


@pytest.fixture(autouse=True)
def plain_environment(tributary, monkeypatch):
    for name in ("TRIBUTARY_WAREHOUSE", "TRIBUTARY_POSTGRES_URL", "TRIBUTARY_POSTGRES_SCHEMA", "TRIBUTARY_SMTP_HOST",
                 "TRIBUTARY_SMTP_PASSWORD", "TRIBUTARY_SMTP_USERNAME"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("url, shown", [
    ("postgresql://loader:hunter2@db:5432/dw", f"postgresql://loader:{MASK}@db:5432/dw"),
    ("postgresql://loader:p@ss/w0rd@db/dw", f"postgresql://loader:{MASK}@db/dw"),
    ("postgresql://db/dw?sslpassword=hunter2&application_name=x",
     f"postgresql://db/dw?sslpassword={MASK}&application_name=x"),
    ("postgresql://postgres@127.0.0.1:5432/postgres", "postgresql://postgres@127.0.0.1:5432/postgres"),
    ("sqlite:////srv/tributary/data/tributary.db", "sqlite:////srv/tributary/data/tributary.db"),
])
def test_urls_are_shown_without_their_secrets(url, shown):
    assert mask_url(url) == shown


def test_the_warehouse_in_use_and_its_destinations_come_from_the_environment(monkeypatch):
    assert warehouse_overview().destinations == [("duckdb", "DuckDB warehouse"), ("parquet", "Local Parquet files")]
    monkeypatch.setenv("TRIBUTARY_WAREHOUSE", "redshift")
    overview = warehouse_overview()
    assert (overview.name, overview.title) == ("redshift", "Amazon Redshift")
    assert [title for _, title in overview.destinations] == ["Amazon Redshift", "Amazon S3 files"]
    monkeypatch.setenv("TRIBUTARY_WAREHOUSE", "bigquery")
    assert "TRIBUTARY_WAREHOUSE=bigquery" in warehouse_overview().problem


def test_a_stored_secret_shows_as_a_mask_and_a_blank_one_keeps_it():
    update_warehouse_settings("snowflake", account="acme", password="s3cret-pw")
    fields = {f.name: f for f in form_fields("snowflake")}
    assert (fields["password"].kind, fields["password"].value, fields["password"].placeholder) == ("secret", "", MASK)
    assert fields["account"].value == "acme" and fields["port"].kind == "number"
    assert save_section("snowflake", {"account": "  acme2 ", "password": ""}).saved
    stored = stored_warehouse_settings().snowflake
    assert (stored.account, stored.password) == ("acme2", "s3cret-pw")


def test_an_unset_secret_has_no_mask():
    assert form_fields("postgres")[0].placeholder == ""
    assert stored_url("postgres") is None


def test_a_url_secret_tells_its_server_but_not_its_password():
    save_section("postgres", {"url": "postgresql://loader:hunter2@db.example:5432/dw"})
    assert stored_url("postgres") == f"postgresql://loader:{MASK}@db.example:5432/dw"


def test_refused_values_come_back_per_field_and_nothing_is_saved(tributary):
    outcome = save_section("postgres", {"url": "mysql://db/dw", "schema": "x"})
    assert not outcome.saved and outcome.field_problems == {"url": "must start with postgresql://"}
    assert save_section("snowflake", {"port": "four"}).field_problems == {"port": "must be a whole number"}
    assert not (tributary / "warehouse.json").exists()


def test_an_environment_override_is_pointed_out(monkeypatch):
    monkeypatch.setenv("TRIBUTARY_POSTGRES_SCHEMA", "analytics")
    fields = {f.name: f for f in form_fields("postgres")}
    assert fields["schema"].overridden_by == "TRIBUTARY_POSTGRES_SCHEMA"
    assert fields["url"].overridden_by is None


def test_smtp_settings_are_shown_but_never_the_password(monkeypatch):
    monkeypatch.setenv("TRIBUTARY_SMTP_HOST", "mail.example.com")
    monkeypatch.setenv("TRIBUTARY_SMTP_PORT", "587")
    monkeypatch.setenv("TRIBUTARY_SMTP_PASSWORD", "mail-pw-123")
    rows = {row.label: row.value for row in smtp_rows()}
    assert (rows["Host"], rows["Port"], rows["Password"]) == ("mail.example.com", "587", "set")
    assert "mail-pw-123" not in str(smtp_rows())


def test_store_settings_mask_the_store_password(monkeypatch):
    from dataclasses import replace

    from common.settings import get_settings

    monkeypatch.setenv("TRIBUTARY_MAX_CONCURRENT_RUNS", "3")
    monkeypatch.setenv("TRIBUTARY_MISFIRE_GRACE_S", "600")
    settings = replace(get_settings(), database_url="postgresql://app:store-pw@db/tributary")
    rows = {row.label: row.value for row in store_rows(settings)}
    assert rows["Store"] == f"postgresql://app:{MASK}@db/tributary"
    assert "at most 3 at a time" in rows["Concurrent runs"] and rows["Misfire grace"].startswith("600 s")


def test_an_unknown_runner_is_reported(monkeypatch):
    monkeypatch.setenv("TRIBUTARY_RUNNER", "kubernetes")
    status = runner_status()
    assert not status.ok and "TRIBUTARY_RUNNER=kubernetes" in status.message and "docker" in status.message
