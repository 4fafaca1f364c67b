"""The destination contract, run against every destination on its real server: DuckDB, local
Parquet, PostgreSQL, S3 (moto), Snowflake (fakesnow) and Redshift (PostgreSQL + S3, with only
the COPY statement emulated). What differs between them is read from their capabilities,
never from their names."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from storage.destinations.base import LoadError, RejectedRowsError, SpoolError
from storage.destinations.column_types import ColumnType as T
from tests.destinations.harness import LOADED_AT, DiskFailure, fail_second_pass_after_one_chunk, request_for


def supports(target, load_type: str) -> bool:
    return load_type in target.destination.capabilities.load_types


def widens(target) -> bool:
    return target.destination.capabilities.widens_columns


# ---------------------------------------------------------------- load types


def test_incremental_appends_every_run_with_its_audit_columns(target, spool_files):
    d = target.destination
    first = d.load(request_for(spool_files([{"id": 1, "name": "Ada"}, {"id": 2, "name": "Bob"}, {"id": 3}]), "run-1"))
    second = d.load(request_for(spool_files([{"id": 4, "name": "Dee"}]), "run-2"))
    assert (first.rows, second.rows) == (3, 1) and not first.skipped
    rows = target.rows("orders", audit=True)
    assert [(r["id"], r["name"], r["_tributary_run_id"]) for r in rows] == [
        (1, "Ada", "run-1"), (2, "Bob", "run-1"), (3, None, "run-1"), (4, "Dee", "run-2")]
    assert {r["_tributary_loaded_at"] for r in rows} == {LOADED_AT}


def test_truncate_and_insert_replaces_the_contents(target, spool_files):
    if not supports(target, "truncate_insert"):
        pytest.fail("every destination offers Truncate and Insert")
    d = target.destination
    d.load(request_for(spool_files([{"id": 1}, {"id": 2}, {"id": 3}]), "run-1", "truncate_insert"))
    d.load(request_for(spool_files([{"id": 7, "note": "new"}]), "run-2", "truncate_insert"))
    assert target.rows("orders") == [{"id": 7, "note": "new"}]
    d.load(request_for(spool_files([]), "run-3", "truncate_insert"))
    assert target.rows("orders") == []  # an empty run empties it
    assert target.leftovers() == []


def test_upsert_updates_by_key_and_the_last_record_of_a_key_wins(target, spool_files):
    d = target.destination
    first = spool_files([{"k": 1, "region": "eu", "v": 1}, {"k": 2, "region": "eu", "v": 1},
                         {"k": 1, "region": "us", "v": 1}])
    second = spool_files([{"k": 2, "region": "eu", "v": 2}, {"k": 3, "region": "eu", "v": 2},
                          {"k": 2, "region": "eu", "v": 3}])
    if not supports(target, "upsert"):
        with pytest.raises(LoadError, match="does not support the load type Upsert"):
            d.load(request_for(first, "run-1", "upsert", ["k", "region"]))
        assert target.rows("orders") == [] and not d.has_run("orders", "run-1")
        return
    d.load(request_for(first, "run-1", "upsert", ["k", "region"]))
    d.load(request_for(second, "run-2", "upsert", ["k", "region"]))
    rows = sorted((r["k"], r["region"], r["v"]) for r in target.rows("orders"))
    assert rows == [(1, "eu", 1), (1, "us", 1), (2, "eu", 3), (3, "eu", 2)]


def test_upsert_rejects_records_without_their_key(target, spool_files):
    if not supports(target, "upsert"):
        return  # refused as a whole above
    files = spool_files([{"id": 1, "v": 1}, {"v": 2}])
    with pytest.raises(RejectedRowsError, match="primary key field 'id' is missing"):
        target.destination.load(request_for(files, "run-1", "upsert", ["id"]))
    assert target.rows("orders") == []


# ---------------------------------------------------------------- types and schema evolution


def test_columns_are_typed_from_the_values(target, spool_files):
    target.destination.load(request_for(spool_files([
        {"id": 1, "price": 9.5, "paid": True, "at": "2024-01-02T03:04:05Z", "note": "x", "meta": {"a": [1]}},
        {"id": 2, "price": 3, "paid": False, "at": "2024-01-02 05:04:05+02:00", "note": None, "meta": [1, "b"]},
    ]), "run-1"))
    names = target.type_names
    types = target.types("orders")
    assert {k: v for k, v in types.items() if not k.startswith("_tributary")} == {
        "id": names[T.INTEGER], "price": names[T.FLOAT], "paid": names[T.BOOLEAN], "at": names[T.TIMESTAMP],
        "note": names[T.STRING], "meta": names[T.JSON]}
    rows = target.rows("orders")
    assert [r["at"] for r in rows] == [datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)] * 2
    assert [r["price"] for r in rows] == [9.5, 3.0]


def test_new_keys_add_columns_across_runs(target, spool_files):
    d = target.destination
    d.load(request_for(spool_files([{"id": 1, "name": "Ada"}]), "run-1"))
    result = d.load(request_for(spool_files([{"id": 2, "email": "bob@example.com", "score": 1.5}]), "run-2"))
    assert target.rows("orders") == [
        {"id": 1, "name": "Ada", "email": None, "score": None},
        {"id": 2, "name": None, "email": "bob@example.com", "score": 1.5},
    ]
    assert target.types("orders")["score"] == target.type_names[T.FLOAT]
    assert any("email" in change.lower() for change in result.schema_changes)


def test_a_wider_value_widens_its_column_or_is_rejected(target, spool_files):
    d = target.destination
    d.load(request_for(spool_files([{"id": 1, "qty": 5}]), "run-1"))
    if widens(target):
        d.load(request_for(spool_files([{"id": 2, "qty": 2.5}]), "run-2"))
        assert target.types("orders")["qty"] == target.type_names[T.FLOAT]
        assert [r["qty"] for r in target.rows("orders")] == [5.0, 2.5]
        d.load(request_for(spool_files([{"id": 3, "qty": "a dozen"}]), "run-3"))
        assert target.types("orders")["qty"] == target.type_names[T.STRING]
        assert [r["qty"] for r in target.rows("orders")][2] == "a dozen"
        return
    with pytest.raises(RejectedRowsError, match=r"field 'qty' holds a number with a fraction \(2.5\)"):
        d.load(request_for(spool_files([{"id": 2, "qty": 2.5}]), "run-2"))
    assert target.types("orders")["qty"] == target.type_names[T.INTEGER]
    assert target.rows("orders") == [{"id": 1, "qty": 5}]


def test_nested_values_round_trip_through_the_json_column(target, spool_files):
    records = [
        {"id": 1, "payload": {"items": [{"sku": "A", "n": 2}], "note": "ünïcode \"quoted\""}},
        {"id": 2, "payload": [1, 2.5, None, True]},
        {"id": 3, "payload": {}},
    ]
    target.destination.load(request_for(spool_files(records), "run-1"))
    assert target.types("orders")["payload"] == target.type_names[T.JSON]
    assert [r["payload"] for r in target.rows("orders")] == [r["payload"] for r in records]


# ---------------------------------------------------------------- rejects and the threshold


def test_rows_that_do_not_fit_fail_the_load_under_the_threshold(target, spool_files):
    d = target.destination
    d.load(request_for(spool_files([{"id": 1, "qty": 5}]), "run-1"))
    bad = spool_files([{"id": 2, "qty": 6}, {"id": 3, "qty": {"value": 7}}, {"id": 4, "qty": 8}])
    with pytest.raises(RejectedRowsError) as failure:
        d.load(request_for(bad, "run-2"))
    message = str(failure.value)
    assert "1 of 3 records (33.3%) were rejected" in message and "threshold of 0.0%" in message
    assert re.search(r"record 2: field 'qty' holds an object or list \(\{\"value\":7\}\), which column qty", message,
                     re.IGNORECASE)  # Snowflake names the column QTY
    assert target.rows("orders") == [{"id": 1, "qty": 5}]
    assert not d.has_run("orders", "run-2")

    result = d.load(request_for(bad, "run-2", ratio=0.5))
    assert (result.rows, result.rejected) == (2, 1)
    assert [r["id"] for r in target.rows("orders")] == [1, 2, 4]
    rejects = target.read_rejects("orders")
    assert [(r["record"], r["_tributary_run_id"]) for r in rejects] == [({"id": 3, "qty": {"value": 7}}, "run-2")]
    assert "which column qty" in rejects[0]["reason"].lower()


def test_a_load_where_every_record_is_rejected_within_the_threshold_loads_nothing(target, spool_files):
    d = target.destination
    d.load(request_for(spool_files([{"id": 1}]), "run-1"))
    result = d.load(request_for(spool_files([{"id": [1]}, {"id": {"x": 1}}]), "run-2", ratio=1.0))
    assert (result.rows, result.rejected) == (0, 2)
    assert target.rows("orders") == [{"id": 1}]
    assert len(target.read_rejects("orders")) == 2
    assert d.has_run("orders", "run-2")


# ---------------------------------------------------------------- idempotency and failures


def test_loading_the_same_run_again_changes_nothing(target, spool_files):
    files = spool_files([{"id": 1}, {"id": 2}])
    first = target.destination.load(request_for(files, "run-1"))
    again = target.make().load(request_for(files, "run-1"))  # a new instance, as a retry would have
    assert not first.skipped and again.skipped and again.rows == 0
    assert [r["id"] for r in target.rows("orders")] == [1, 2]
    assert target.make().has_run("orders", "run-1") and not target.make().has_run("orders", "run-9")


def test_an_empty_run_is_remembered_too(target, spool_files):
    d = target.destination
    assert not d.load(request_for(spool_files([]), "run-1")).skipped
    assert d.has_run("orders", "run-1")
    assert d.load(request_for(spool_files([]), "run-1")).skipped


@pytest.mark.parametrize("load_type", ["incremental", "truncate_insert", "upsert"])
def test_a_failure_mid_load_leaves_the_destination_unchanged(target, spool_files, monkeypatch, load_type):
    if not supports(target, load_type):
        return  # refused before anything is read (test_upsert_updates_by_key...)
    key = ["id"] if load_type == "upsert" else []
    d = target.destination
    d.load(request_for(spool_files([{"id": 1, "name": "Ada", "qty": 1}]), "run-1", load_type, key))
    rows, types = target.rows("orders", audit=True), target.types("orders")
    # A new column, and (where the destination widens) a column widened, before the failure.
    qty = 2.5 if widens(target) else 2
    records = [{"id": i, "name": f"n{i}", "added": i * 1.5, "qty": qty} for i in range(1, 9)]
    files = spool_files(records[:3], records[3:])
    fail_second_pass_after_one_chunk(monkeypatch)
    with pytest.raises(DiskFailure):
        target.make().load(request_for(files, "run-2", load_type, key))
    assert target.rows("orders", audit=True) == rows
    assert target.types("orders") == types
    assert not target.make().has_run("orders", "run-2")
    assert target.leftovers() == []
    monkeypatch.undo()
    assert target.make().load(request_for(files, "run-2", load_type, key)).rows == 8  # the retry loads it all
    assert len(target.rows("orders")) == (9 if load_type == "incremental" else 8)


def test_a_load_failing_half_way_whose_undo_fails_too_raises_the_first_error(target, spool_files, monkeypatch):
    """The load fails after writing some of its rows, and its undo (a ROLLBACK on a connection
    that died, a cleanup) fails as well: the error raised is the load's, with the undo's failure
    as a note on it, and the rows, the columns and the run ids are as they were."""
    d = target.destination
    d.load(request_for(spool_files([{"id": 1, "name": "Ada"}]), "run-1"))
    rows, types = target.rows("orders", audit=True), target.types("orders")
    records = [{"id": i, "name": f"n{i}", "added": i * 1.5} for i in range(2, 8)]
    files = spool_files(records[:3], records[3:])
    target.fail_mid_load(monkeypatch)
    target.break_undo(monkeypatch)
    with pytest.raises(DiskFailure, match="simulated disk failure") as failure:
        target.make().load(request_for(files, "run-2"))
    assert [n for n in getattr(failure.value, "__notes__", []) if "failed as well: UndoFailure" in n]
    monkeypatch.undo()
    assert (target.rows("orders", audit=True), target.types("orders")) == (rows, types)
    assert not target.make().has_run("orders", "run-2")
    assert target.make().load(request_for(files, "run-2")).rows == 6  # the retry loads it all


def test_a_run_id_already_loaded_is_skipped_whatever_the_retry_brings(target, spool_files):
    """The exactly-once guard reads the run ids committed, not the data: a second load of a
    run id loads nothing, even with other records and another load type."""
    target.destination.load(request_for(spool_files([{"id": i} for i in range(5)]), "run-1"))
    again = target.make().load(request_for(spool_files([{"id": 9, "x": "new"}]), "run-1", "truncate_insert"))
    assert (again.rows, again.skipped) == (0, True)
    assert [r["id"] for r in target.rows("orders")] == [0, 1, 2, 3, 4]
    assert "x" not in target.types("orders")


def test_a_damaged_spool_fails_the_load_with_the_file_and_line(target, spool_files):
    files = spool_files([{"id": 1}])
    files[0].write_text('{"id": 1}\n{"id": 2, "trunc')
    with pytest.raises(SpoolError, match=r"spool-001.jsonl is damaged at line 2"):
        target.destination.load(request_for(files, "run-1"))
    assert target.rows("orders") == []


def test_each_destination_commits_on_its_own_and_a_retry_skips_those_that_did(target, spool_files, tmp_path):
    """Two destinations in one run: the first commits, the second fails; retrying the run's
    load skips the first (it holds the run id) and completes the second."""
    from storage.destinations.duckdb import DuckDBDestination

    files = spool_files([{"id": 1}, {"id": 2}, {"id": 3}])
    other = DuckDBDestination(path=tmp_path / "other.duckdb", chunk_rows=2)
    assert not target.destination.load(request_for(files, "run-1")).skipped
    with pytest.raises(SpoolError):
        other.load(request_for(files + [_damaged(tmp_path)], "run-1"))
    retried = [target.make().load(request_for(files, "run-1")), other.load(request_for(files, "run-1"))]
    assert [r.skipped for r in retried] == [True, False]
    assert [r["id"] for r in target.rows("orders")] == [1, 2, 3]
    assert other.query("SELECT count(*) FROM orders") == [(3,)]


def _damaged(folder: Path) -> Path:
    path = folder / "damaged.jsonl"
    path.write_text("{not json\n")
    return path


def test_drop_removes_the_data_and_its_rejects(target, spool_files):
    d = target.destination
    d.load(request_for(spool_files([{"id": 1}]), "run-1"))
    d.load(request_for(spool_files([{"id": 2}, {"id": {"x": 1}}]), "run-2", ratio=1.0))
    assert len(target.read_rejects("orders")) == 1
    d.drop("orders")
    assert target.rows("orders") == [] and target.read_rejects("orders") == []
    assert not target.make().has_run("orders", "run-2")


def test_loads_of_different_feeds_at_the_same_time_both_commit(target, spool_files):
    """The run queue loads several feeds at once; the first loads of a new destination race to
    create its shared bookkeeping."""
    from concurrent.futures import ThreadPoolExecutor

    files = {feed: spool_files([{"id": i} for i in range(5)]) for feed in ("orders", "invoices")}
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda feed: target.make().load(request_for(files[feed], f"run-{feed}", table=feed)),
                                files))
    assert [r.rows for r in results] == [5, 5]
    assert [len(target.rows(feed)) for feed in files] == [5, 5]
