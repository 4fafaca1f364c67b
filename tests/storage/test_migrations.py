"""The store's schema comes from Alembic migrations, and they match the models."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import storage.models  # noqa: F401
from storage.db import get_engine


def test_migrations_build_exactly_the_models_schema(any_store):
    engine = get_engine()  # migrates a fresh store to head
    with engine.connect() as connection:
        context = MigrationContext.configure(connection)
        assert context.get_current_revision() is not None
        diff = compare_metadata(context, SQLModel.metadata)
    assert diff == [], f"models and migrations differ; add a migration: {diff}"


def test_upgrade_in_place_keeps_existing_feeds(tmp_path, monkeypatch):
    """A store created by the first release upgrades to head with its rows intact."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine, text

    from storage.db import _MIGRATIONS

    url = f"sqlite:///{tmp_path / 'old.db'}"
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    command.upgrade(config, "0001")
    engine = create_engine(url)
    with engine.begin() as con:
        con.execute(text(
            "INSERT INTO feeds (name, script, dependencies, load_type, primary_key, destinations, trigger, tags,"
            " paused, created_at, updated_at) VALUES ('old', 'print(1)', '[]', 'incremental', '[]', '[\"duckdb\"]',"
            " '{}', '[]', 0, '2026-01-01', '2026-01-01')"))
    command.upgrade(config, "head")
    with engine.connect() as con:
        row = con.execute(text("SELECT name, retries, retry_backoff_s FROM feeds")).one()
    assert tuple(row) == ("old", 0, 60)


def test_schema_head_names_the_newest_revision():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from storage.db import _MIGRATIONS
    from storage.migrations import SCHEMA_HEAD

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == SCHEMA_HEAD
