"""The Settings page: the warehouse in use and its credential forms (secrets masked, stored
encrypted, refused values explained per field), "Test connection" against a real PostgreSQL,
the Docker engine's status, outgoing mail and the store settings."""

from __future__ import annotations

import socket

import pytest

from common.secrets import MASK
from storage.destinations.settings import stored_warehouse_settings, update_warehouse_settings
from tests.conftest import POSTGRES_ADMIN_URL, missing_service
from tests.ui.conftest import labelled, new_app, texts

SETTINGS_PAGE = "app_pages/settings.py"


@pytest.fixture(autouse=True)
def plain_environment(tributary, monkeypatch):
    """Whatever the machine sets, these tests start from the defaults they assert on."""
    for name in ("TRIBUTARY_WAREHOUSE", "TRIBUTARY_POSTGRES_URL", "TRIBUTARY_POSTGRES_SCHEMA", "TRIBUTARY_SMTP_HOST",
                 "TRIBUTARY_SMTP_PORT", "TRIBUTARY_SMTP_FROM", "TRIBUTARY_SMTP_USERNAME", "TRIBUTARY_SMTP_PASSWORD",
                 "TRIBUTARY_MAX_CONCURRENT_RUNS", "TRIBUTARY_MISFIRE_GRACE_S"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TRIBUTARY_RUNNER", "subprocess")


def settings_page():
    at = new_app()
    at.switch_page(SETTINGS_PAGE).run()
    assert not at.exception, at.exception
    return at


def panel(at, title: str):
    """A warehouse's expander on the Warehouse tab."""
    found = [e for e in at.expander if e.label.split(" (in use)")[0] == title]
    assert len(found) == 1, [e.label for e in at.expander]
    return found[0]


def click(block, label: str, at):
    [target] = [b for b in block.button if b.label == label]
    target.click()
    return at.run()


def everything_shown(at) -> str:
    """Texts, plus what every input shows (its value and its placeholder)."""
    widgets = [f"{w.value} {w.placeholder}" for w in at.text_input]
    return "\n".join([texts(at), *widgets])


def test_each_section_renders_from_the_environment(monkeypatch, tributary):
    monkeypatch.setenv("TRIBUTARY_MAX_CONCURRENT_RUNS", "3")
    monkeypatch.setenv("TRIBUTARY_MISFIRE_GRACE_S", "600")
    at = settings_page()
    assert [t.value for t in at.title] == ["Settings"]
    assert [t.label for t in at.tabs] == ["Warehouse", "Runner", "Workers", "Notifications", "Store and data"]
    shown = texts(at)
    assert "In use: Local (embedded DuckDB and Parquet)" in shown
    assert "destinations offered: DuckDB warehouse, Local Parquet files" in shown
    assert "TRIBUTARY_WAREHOUSE environment variable" in shown
    assert "In use: `subprocess`" in shown and "TRIBUTARY_RUNNER" in shown
    assert "No SMTP host is set" in shown and "TRIBUTARY_SMTP_HOST" in shown
    assert f"| Data dir | {tributary} |" in shown and f"sqlite:///{tributary}/tributary.db" in shown
    assert "at most 3 at a time" in shown and "| Misfire grace | 600 s" in shown
    assert not at.error


def test_the_warehouse_named_by_the_environment_is_the_one_in_use(monkeypatch):
    monkeypatch.setenv("TRIBUTARY_WAREHOUSE", "redshift")
    at = settings_page()
    shown = texts(at)
    assert "In use: Amazon Redshift** (`redshift`)" in shown
    assert "destinations offered: Amazon Redshift, Amazon S3 files" in shown
    assert at.expander[0].label == "Amazon Redshift (in use)"
    assert {t.label for t in panel(at, "Amazon Redshift").text_input} >= {"URL", "IAM role", "Bucket",
                                                                          "Secret access key"}


def test_a_bad_postgres_url_is_refused_under_its_field(tributary):
    at = settings_page()
    labelled(panel(at, "PostgreSQL").text_input, "URL").input("mysql://loader@db/dw")
    at = click(panel(at, "PostgreSQL"), "Save", at)
    assert "URL must start with postgresql://" in texts(at)
    assert labelled(panel(at, "PostgreSQL").text_input, "URL").value == "mysql://loader@db/dw"  # kept to fix
    assert not (tributary / "warehouse.json").exists()


def test_a_saved_password_stays_masked_and_is_stored_encrypted(tributary):
    url = "postgresql://loader:hunter2-secret@db.example:5432/dw"
    at = settings_page()
    labelled(panel(at, "PostgreSQL").text_input, "URL").input(url)
    at = click(panel(at, "PostgreSQL"), "Save", at)
    assert "PostgreSQL settings saved." in texts(at)
    field = labelled(panel(at, "PostgreSQL").text_input, "URL")
    assert (field.value, field.placeholder) == ("", MASK)
    assert f"Stored URL: `postgresql://loader:{MASK}@db.example:5432/dw`" in texts(at)
    assert "hunter2-secret" not in everything_shown(at)
    assert "hunter2-secret" not in (tributary / "warehouse.json").read_text()

    # Another field changed, the URL left blank: the stored URL is kept.
    labelled(panel(at, "PostgreSQL").text_input, "Schema").input("analytics")
    at = click(panel(at, "PostgreSQL"), "Save", at)
    assert stored_warehouse_settings().postgres.url == url
    assert stored_warehouse_settings().postgres.schema == "analytics"
    assert "hunter2-secret" not in everything_shown(settings_page())  # a new session, from the file


def test_a_saved_snowflake_password_shows_as_a_mask():
    update_warehouse_settings("snowflake", account="acme", password="snow-pw-123")
    at = settings_page()
    field = labelled(panel(at, "Snowflake").text_input, "Password")
    assert (field.value, field.placeholder) == ("", MASK)
    assert "Leave blank to keep" in field.help
    assert "snow-pw-123" not in everything_shown(at)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_test_connection_reaches_postgres_and_reports_a_closed_port():
    import psycopg

    try:
        psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        missing_service(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {exc}")
    update_warehouse_settings("postgres", url=POSTGRES_ADMIN_URL)
    at = settings_page()
    at = click(panel(at, "PostgreSQL"), "Test connection", at)
    [ok] = panel(at, "PostgreSQL").success
    assert ok.value.startswith("**PostgreSQL**: connected") and not at.error

    update_warehouse_settings("postgres", url=f"postgresql://postgres@127.0.0.1:{closed_port()}/postgres")
    at = click(panel(at, "PostgreSQL"), "Test connection", at)
    [failed] = panel(at, "PostgreSQL").error
    assert "cannot connect to PostgreSQL" in failed.value and not panel(at, "PostgreSQL").success


def test_an_unreachable_docker_engine_is_explained(monkeypatch):
    monkeypatch.setenv("TRIBUTARY_RUNNER", "docker")
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")
    at = settings_page()
    [message] = [e.value for e in at.error]
    assert "Docker engine not reachable at unix:///nonexistent.sock" in message
    assert "subprocess runner are not affected" in message
    assert "In use: `docker`" in texts(at) and "tributary-runner" in texts(at)


def test_a_reachable_docker_engine_and_its_image_after_check_again(monkeypatch):
    from common.settings import get_settings
    from runners.docker_engine import ping

    monkeypatch.setenv("TRIBUTARY_RUNNER", "docker")
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")
    at = settings_page()
    assert at.error
    monkeypatch.delenv("DOCKER_HOST")
    try:
        ping().images.get(get_settings().docker_image)
    except Exception as exc:  # noqa: BLE001 - engine or image missing: say which
        missing_service(f"Docker engine or runner image {get_settings().docker_image} missing: {exc}")
    at = click(at, "Check again", at)
    [reachable] = [s.value for s in at.success]
    assert "Docker engine reachable" in reachable and f"{get_settings().docker_image} is present" in reachable
    assert not at.error


def test_the_smtp_settings_in_use_without_the_password(monkeypatch):
    monkeypatch.setenv("TRIBUTARY_SMTP_HOST", "mail.example.com")
    monkeypatch.setenv("TRIBUTARY_SMTP_PORT", "587")
    monkeypatch.setenv("TRIBUTARY_SMTP_FROM", "feeds@example.com")
    monkeypatch.setenv("TRIBUTARY_SMTP_PASSWORD", "mail-pw-123")
    at = settings_page()
    shown = texts(at)
    assert "| Host | mail.example.com |" in shown and "| Port | 587 |" in shown
    assert "| From | feeds@example.com |" in shown and "| Password | set |" in shown
    assert "No SMTP host is set" not in shown
    assert "mail-pw-123" not in everything_shown(at) and "mail-pw-123" not in str(at.main)
