"""The SQL warehouses' one commit protocol (SqlDestination.commit), over each of them on its
real server: the order of its steps whatever the load step (streaming, staged, DuckDB's
native), the ledger check that skips a loaded run before anything else, and DDL before the
transaction only where the dialect says DDL commits on its own."""

from __future__ import annotations

from contextlib import contextmanager

import pytest

from storage.destinations.sql_warehouse import SqlDestination
from tests.destinations.harness import make_target, request_for

STEPS = ("start", "prepare", "create_tables", "load_rows", "drop_created", "close")
STATEMENTS = ("BEGIN", "COMMIT", "ROLLBACK")


def record_the_protocol(monkeypatch, cls) -> list[str]:
    """What the protocol does, in order: the load step's methods called and the transaction
    statements sent."""
    calls: list[str] = []
    real_commit, real_connect = cls.commit, cls.connect

    def commit(self, load):
        for step in STEPS:
            setattr(load, step, _recorded(calls, step, getattr(load, step)))
        return real_commit(self, load)

    @contextmanager
    def connect(self):
        with real_connect(self) as session:
            execute = session.execute

            def recorded(sql, params=()):
                if sql in STATEMENTS:
                    calls.append(sql)
                execute(sql, params)

            session.execute = recorded
            yield session

    monkeypatch.setattr(cls, "commit", commit)
    monkeypatch.setattr(cls, "connect", connect)
    return calls


def _recorded(calls: list[str], name: str, method):
    def step(*args, **kwargs):
        calls.append(name)
        return method(*args, **kwargs)

    return step


SQL_TARGETS = ["duckdb", "postgres", "snowflake", "redshift"]  # parquet and s3 have no transaction


@pytest.fixture(params=SQL_TARGETS)
def sql_target(request, tmp_path):
    target = make_target(request.param, request, tmp_path)
    assert isinstance(target.destination, SqlDestination)
    return target


@pytest.mark.parametrize("load_type", ["incremental", "upsert"])
def test_a_load_runs_the_steps_in_the_protocols_order(sql_target, spool_files, monkeypatch, load_type):
    destination = sql_target.destination
    calls = record_the_protocol(monkeypatch, type(destination))
    result = destination.load(request_for(spool_files([{"id": 1}, {"id": 2}]), "run-1", load_type, ["id"]))
    assert result.rows == 2
    transaction = ["BEGIN", "create_tables", "load_rows", "COMMIT"]
    if not destination.dialect.transactional_ddl:
        transaction = ["create_tables", "BEGIN", "load_rows", "COMMIT"]
    assert calls == ["start", "prepare", *transaction, "close"]


def test_a_loaded_run_is_skipped_before_anything_is_prepared(sql_target, spool_files, monkeypatch):
    files = spool_files([{"id": 1}])
    sql_target.destination.load(request_for(files, "run-1", "upsert", ["id"]))
    calls = record_the_protocol(monkeypatch, type(sql_target.destination))
    assert sql_target.make().load(request_for(files, "run-1", "upsert", ["id"])).skipped
    assert calls == ["start", "close"]


def test_a_failing_load_step_is_rolled_back_and_its_ddl_taken_back(sql_target, spool_files, monkeypatch):
    destination = sql_target.destination
    calls = record_the_protocol(monkeypatch, type(destination))
    sql_target.fail_mid_load(monkeypatch)
    with pytest.raises(OSError, match="simulated disk failure"):
        destination.load(request_for(spool_files([{"id": 1}, {"id": 2}]), "run-1", "upsert", ["id"]))
    end = ["BEGIN", "create_tables", "load_rows", "ROLLBACK", "close"]
    if not destination.dialect.transactional_ddl:
        end = ["create_tables", "BEGIN", "load_rows", "ROLLBACK", "drop_created", "close"]
    assert calls == ["start", "prepare", *end]
    assert sql_target.rows("orders") == [] and not sql_target.make().has_run("orders", "run-1")
