"""DuckDB's fast path gives the same table as the generic load, and gives way to it when a
run needs widening, rejects or types it does not map."""

import json
from datetime import datetime, timezone

import pytest

from storage.destinations import duckdb_native
from storage.destinations.base import LoadRequest
from storage.destinations.duckdb import DuckDBDestination

RECORDS = [
    {"id": 1, "name": "a", "score": 1.5, "ok": True, "at": "2024-01-02T03:04:05Z", "day": "2024-01-02",
     "owner": {"id": 7}, "tags": ["x", "y"], "note": "2024-01-02T03:04:05Z"},
    {"id": 2, "name": "b", "score": 2, "ok": False, "at": "2024-01-02T03:04:05.123+02:00", "day": None, "owner": None,
     "tags": [], "note": "plain text"},
]
# DuckDB reads "2024-01-02 03:04" as text; the generic load's pattern calls it a timestamp.
DISAGREEING = [{"id": 1, "at": "2024-01-02 03:04"}, {"id": 2, "at": "2024-01-03 04:05"}]


def spool(tmp_path, records, name="part-00000.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return [path]


def load(destination, files, run_id, table="t", load_type="incremental"):
    return destination.load(LoadRequest(table=table, files=files, load_type=load_type, run_id=run_id,
                                        loaded_at=datetime(2026, 1, 1, tzinfo=timezone.utc)))


@pytest.fixture
def paths(tributary, tmp_path, monkeypatch):
    used = []
    real = duckdb_native.insert
    monkeypatch.setattr(duckdb_native, "insert", lambda *a, **k: used.append(True) or real(*a, **k))
    return used


def columns(destination, table):
    return destination.query(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
        [table])


@pytest.mark.parametrize("records, native_used", [(RECORDS, True), (DISAGREEING, False)])
def test_native_and_generic_loads_build_the_same_table(tmp_path, paths, records, native_used):
    native = DuckDBDestination(path=tmp_path / "native.duckdb")
    load(native, spool(tmp_path, records), "r1")
    assert paths == ([True] if native_used else [])
    generic = DuckDBDestination(path=tmp_path / "generic.duckdb")
    # The generic load, called directly, on the same records:
    super(DuckDBDestination, generic).load(LoadRequest(
        table="t", files=spool(tmp_path, records), load_type="incremental", run_id="r1",
        loaded_at=datetime(2026, 1, 1, tzinfo=timezone.utc)))
    assert columns(native, "t") == columns(generic, "t")
    query = "SELECT * EXCLUDE (_tributary_loaded_at) FROM t ORDER BY id"
    assert native.query(query) == generic.query(query)


def test_a_run_that_needs_widening_takes_the_generic_load(tmp_path, paths):
    destination = DuckDBDestination(path=tmp_path / "w.duckdb")
    load(destination, spool(tmp_path, [{"n": 1}]), "r1")
    result = load(destination, spool(tmp_path, [{"n": "text now"}], "p2.jsonl"), "r2")
    assert paths == [True]  # only the first run went the native way
    assert any("widened" in change for change in result.schema_changes)
    assert destination.query("SELECT n FROM t ORDER BY _tributary_run_id") == [("1",), ("text now",)]


def test_a_retried_run_is_skipped_on_the_fast_path(tmp_path, paths):
    destination = DuckDBDestination(path=tmp_path / "r.duckdb")
    files = spool(tmp_path, RECORDS)
    assert load(destination, files, "r1").rows == 2
    assert load(destination, files, "r1").skipped
    assert destination.query("SELECT count(*) FROM t") == [(2,)]
