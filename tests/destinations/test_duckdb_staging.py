"""DuckDB's staged path builds the same table as the generic load, part by part, and gives way
to the generic load whenever it could not: a run whose types change in ways the staged parts
cannot follow, values beyond its types, names that need renaming."""

import json
import os
import re
from datetime import datetime, timezone

import pytest

from storage.destinations.duckdb import staging as duckdb_staging
from storage.destinations.base import LoadError, LoadRequest
from storage.destinations.duckdb import DuckDBDestination
from tests.destinations.harness import rollback_fails

AT = datetime(2026, 1, 1, tzinfo=timezone.utc)
RECORDS = [
    {"id": 1, "name": "a", "score": 1.5, "ok": True, "at": "2024-01-02T03:04:05Z", "day": "2024-01-02",
     "owner": {"id": 7}, "tags": ["x", "y"], "note": "2024-01-02T03:04:05Z"},
    {"id": 2, "name": "b", "score": 2, "ok": False, "at": "2024-01-02T03:04:05.123+02:00", "day": None, "owner": None,
     "tags": [], "note": "plain text"},
]

# Each case: the run's parts (lists of records), and whether the staged path can load it.
CASES = {
    "one part, every type": ([RECORDS], True),
    # DuckDB's own detection reads "2024-01-02 03:04" as text; the generic rules call it a timestamp.
    "timestamps without seconds": ([[{"id": 1, "at": "2024-01-02 03:04"}, {"id": 2, "at": "2024-01-03 04:05"}]], True),
    "same fields in every part": ([[{"id": i, "v": f"v{i}"} for i in range(3)],
                                   [{"id": i, "v": f"v{i}"} for i in range(3, 6)]], True),
    "integers then floats in a later part": ([[{"id": 1, "v": 1}], [{"id": 2, "v": 2.5}]], True),
    "whole floats stay floats": ([[{"id": 1, "v": 2.0}, {"id": 2, "v": 3}]], True),
    "nulls first, text later": ([[{"id": 1, "v": None}], [{"id": 2, "v": "late"}]], True),
    "a field only in a later part": ([[{"id": 1}], [{"id": 2, "extra": True}]], True),
    "a field missing from a later part": ([[{"id": 1, "v": "a"}], [{"id": 2}], [{"id": 3, "v": "c"}]], True),
    "a later part with its fields in another order": ([[{"a": 1, "b": "x"}], [{"b": "y", "a": 2}]], True),
    "a later part with a key differing only in case": ([[{"id": 1, "v": "a"}], [{"ID": 2, "v": "b"}]], False),
    "names with signs, in two parts": ([[{"a.b": i, "price ($)": 2.5, "it's": "x", 'q"uote': True, "back\\slash": "y",
                                          "é漢": i, "x[1]^-*": "z"} for i in range(2)]] * 2, True),
    "a field back after a later part's field sample": ([[{"id": i, "v": "x"} for i in range(3)],
                                                       [{"id": i} for i in range(200)] + [{"id": 200, "v": "late"}]],
                                                      True),
    "a later part with a field more after its field sample": ([[{"id": 1, "v": "a"}],
                                                               [{"id": i, "v": "b"} for i in range(200)]
                                                               + [{"id": 200, "v": "c", "w": 1}]], True),
    "a field null in every part": ([[{"id": 1, "v": None}], [{"id": 2, "v": None}]], True),
    "a field new midway through a part": ([[{"id": i} for i in range(20_000)] + [{"id": -1, "late": "x"}]], True),
    "floats appearing after the type sample": ([[{"v": i} for i in range(20_000)] + [{"v": 0.5}]], True),
    "escapes, quotes and other scripts": ([[{"id": 1, "s": 'say "hi"\n\ttab \\ back'}, {"id": 2, "s": "é ñ 漢字 🙂"},
                                            {"id": 3, "s": "it's"}]], True),
    "combining marks, emoji sequences and flags": ([[{"id": 1, "s": "e\u0301t\u00e9"}, {"id": 2, "s": "👩‍👩‍👧 🇫🇷"},
                                                     {"id": 3, "s": ""}, {"id": 4, "s": "x"}]], True),
    "negative and zero integers, 64-bit bounds": ([[{"id": -1, "v": 0}, {"id": 2, "v": 2**63 - 1},
                                                    {"id": 3, "v": -2**63}]], True),
    "integers then text": ([[{"id": 1, "v": 1}], [{"id": 2, "v": "text"}]], False),
    "text mixed with numbers in one part": ([[{"id": 1, "v": "a"}, {"id": 2, "v": 5}]], False),
    "booleans mixed with integers": ([[{"id": 1, "v": True}, {"id": 2, "v": 3}]], False),
    "timestamps, then plain text in a later part": ([[{"id": 1, "v": "2024-01-02T03:04:05Z"}],
                                                    [{"id": 2, "v": "not a time"}]], False),
    "an impossible date shaped like a timestamp": ([[{"id": 1, "v": "2024-02-30T03:04:05Z"}]], False),
    "objects mixed with scalars": ([[{"id": 1, "v": {"a": 1}}, {"id": 2, "v": "x"}]], False),
    "integers beyond 64 bits": ([[{"id": 1, "v": 2**70}, {"id": 2, "v": 5}]], False),
    "names that differ only in case": ([[{"id": 1, "ID": 2}]], False),
    "a name differing only in case, after the field sample": ([[{"id": i} for i in range(200)] + [{"ID": 7}]], False),
    "keys in another order from record to record": ([[{"b": 1, "a": "x"}, {"a": "y", "c": True, "b": 2},
                                                      {"d": 1.5, "c": False}]], True),
    "a real key that looks like a renamed one": ([[{"id": 1, "id_1": 2}]], True),
    "a field first seen after the field sample": ([[{"id": i} for i in range(200)] + [{"id": 200, "x": 1.5}]], True),
    "a field named like an audit column": ([[{"id": 1, "_tributary_run_id": "mine"}]], False),
    "records without fields": ([[{}, {}]], False),
}


def write_parts(tmp_path, parts, prefix="part"):
    files = []
    for i, records in enumerate(parts):
        path = tmp_path / f"{prefix}-{i:05d}.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        files.append(path)
    return files


def request(files, run_id, load_type="incremental", staged=None):
    return LoadRequest(table="t", files=files, load_type=load_type, run_id=run_id, loaded_at=AT, staged=staged)


@pytest.fixture
def staged_inserts(tributary, monkeypatch):
    """One entry per load that went the staged way."""
    used = []
    real = duckdb_staging.DuckDBStager.insert
    monkeypatch.setattr(duckdb_staging.DuckDBStager, "insert", lambda *a, **k: used.append(True) or real(*a, **k))
    return used


def columns(destination, table="t"):
    return destination.query(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
        [table])


def contents(destination):
    return destination.query("SELECT * EXCLUDE (_tributary_loaded_at) FROM t ORDER BY ALL")


def generic_load(destination, files, run_id, load_type="incremental"):
    """The generic load, called directly, for comparison."""
    return super(DuckDBDestination, destination).load(request(files, run_id, load_type))


@pytest.mark.parametrize("parts, staged", CASES.values(), ids=CASES.keys())
def test_the_staged_and_generic_loads_build_the_same_table(tmp_path, staged_inserts, parts, staged):
    files = write_parts(tmp_path, parts)
    generic = DuckDBDestination(path=tmp_path / "generic.duckdb")
    native = DuckDBDestination(path=tmp_path / "native.duckdb")
    try:
        expected = generic_load(generic, files, "r1")
    except LoadError as exc:  # rows the generic load rejects (over the threshold): the same refusal
        with pytest.raises(type(exc), match=re.escape(str(exc))):
            native.load(request(files, "r1"))
        assert staged_inserts == []
        return
    result = native.load(request(files, "r1"))
    assert staged_inserts == ([True] if staged else [])
    assert columns(native) == columns(generic)
    assert contents(native) == contents(generic)
    assert (result.rows, result.rejected) == (expected.rows, expected.rejected)


def test_parts_staged_as_they_come_load_like_a_finished_spool(tmp_path, staged_inserts):
    parts = [[{"id": i, "v": i} for i in range(k * 10, k * 10 + 10)] for k in range(3)]
    parts[2].append({"id": 99, "v": 0.5, "new": "x"})
    files = write_parts(tmp_path, parts)
    destination = DuckDBDestination(path=tmp_path / "w.duckdb")
    stager = destination.stager("incremental", tmp_path / "stage")
    for part in files:  # as core/runs.py hands them over while the script runs
        stager.add(part)
    try:
        result = destination.load(request(files, "r1", staged=stager))
    finally:
        stager.close()
    assert staged_inserts == [True] and result.rows == 31
    assert destination.query("SELECT count(*), sum(v), count(new) FROM t") == [(31, sum(range(30)) + 0.5, 1)]
    assert not (tmp_path / "stage").exists()


def test_a_stager_that_missed_a_part_is_not_trusted(tmp_path, staged_inserts):
    files = write_parts(tmp_path, [[{"id": 1}], [{"id": 2}]])
    destination = DuckDBDestination(path=tmp_path / "w.duckdb")
    stager = destination.stager("incremental", tmp_path / "stage")
    stager.add(files[0])
    destination.load(request(files, "r1", staged=stager))
    stager.close()
    assert staged_inserts == []  # the generic load read both parts
    assert destination.query("SELECT id FROM t ORDER BY id") == [(1,), (2,)]


def test_an_existing_column_of_another_type_takes_the_generic_load(tmp_path, staged_inserts):
    destination = DuckDBDestination(path=tmp_path / "w.duckdb")
    destination.load(request(write_parts(tmp_path, [[{"n": 1.5}]], "a"), "r1"))
    result = destination.load(request(write_parts(tmp_path, [[{"n": 2}]], "b"), "r2"))
    assert staged_inserts == [True]  # the first run only: a FLOAT column takes the integer the generic way
    assert result.rows == 1
    assert destination.query("SELECT n FROM t ORDER BY n") == [(1.5,), (2.0,)]


def test_a_run_that_needs_widening_takes_the_generic_load(tmp_path, staged_inserts):
    destination = DuckDBDestination(path=tmp_path / "w.duckdb")
    destination.load(request(write_parts(tmp_path, [[{"n": 1}]], "a"), "r1"))
    result = destination.load(request(write_parts(tmp_path, [[{"n": "text now"}]], "b"), "r2"))
    assert staged_inserts == [True]
    assert any("widened" in change for change in result.schema_changes)
    assert destination.query("SELECT n FROM t ORDER BY _tributary_run_id") == [("1",), ("text now",)]


def test_truncate_and_insert_replaces_the_rows_on_the_staged_path(tmp_path, staged_inserts):
    destination = DuckDBDestination(path=tmp_path / "w.duckdb")
    destination.load(request(write_parts(tmp_path, [[{"id": 1}, {"id": 2}]], "a"), "r1", "truncate_insert"))
    destination.load(request(write_parts(tmp_path, [[{"id": 3}]], "b"), "r2", "truncate_insert"))
    assert staged_inserts == [True, True]
    assert destination.query("SELECT id, _tributary_run_id FROM t") == [(3, "r2")]


def test_a_retried_run_is_skipped_before_any_staging(tmp_path, staged_inserts):
    destination = DuckDBDestination(path=tmp_path / "r.duckdb")
    files = write_parts(tmp_path, [RECORDS])
    assert destination.load(request(files, "r1")).rows == 2
    assert destination.load(request(files, "r1")).skipped
    assert destination.query("SELECT count(*) FROM t") == [(2,)]
    assert staged_inserts == [True]


def test_a_failed_staged_load_leaves_the_table_as_it_was(tmp_path, staged_inserts, monkeypatch):
    destination = DuckDBDestination(path=tmp_path / "w.duckdb")
    destination.load(request(write_parts(tmp_path, [[{"id": 1}]], "a"), "r1"))

    def broken_insert(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(duckdb_staging.DuckDBStager, "insert", broken_insert)
    with pytest.raises(RuntimeError, match="disk full"):
        destination.load(request(write_parts(tmp_path, [[{"id": 2, "new": "x"}]], "b"), "r2"))
    assert destination.query("SELECT id FROM t") == [(1,)]
    assert [name for name, _ in columns(destination)] == ["id", "_tributary_run_id", "_tributary_loaded_at"]
    assert not destination.has_run("t", "r2")


def test_a_failed_staged_load_whose_rollback_fails_raises_the_first_error(tmp_path, staged_inserts, monkeypatch):
    """A disk-full insert followed by "cannot rollback - no transaction is active": the error
    raised is the disk-full one, the rollback's failure a note on it."""
    destination = DuckDBDestination(path=tmp_path / "w.duckdb")
    destination.load(request(write_parts(tmp_path, [[{"id": 1}]], "a"), "r1"))

    def broken_insert(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(duckdb_staging.DuckDBStager, "insert", broken_insert)
    rollback_fails(DuckDBDestination)(monkeypatch)
    with pytest.raises(RuntimeError, match="disk full") as failure:
        destination.load(request(write_parts(tmp_path, [[{"id": 2, "new": "x"}]], "b"), "r2"))
    assert failure.value.__notes__ == [
        "ROLLBACK failed as well: UndoFailure: cannot rollback - no transaction is active"]
    monkeypatch.undo()
    assert destination.query("SELECT id FROM t") == [(1,)]
    assert not destination.has_run("t", "r2")


AFTER_THE_SCRIPT_CASES = {
    "same shape": [[{"id": i, "v": "x"} for i in range(10)], [{"id": i, "v": "y"} for i in range(10, 20)]],
    "a float after the type sample": [[{"id": 1, "v": 1}], [{"id": i, "v": i} for i in range(20_000)] + [{"id": -1, "v": 0.5}]],
    "a key after the field sample": [[{"id": 1}], [{"id": i} for i in range(200)] + [{"id": -1, "late": "x"}]],
    "text where integers were": [[{"id": 1, "v": 1}], [{"id": 2, "v": "text"}]],
    "a field only in the last part": [[{"id": 1}], [{"id": 2}], [{"id": 3, "extra": True}]],
    "nulls, then text": [[{"id": 1}], [{"id": 2, "v": None}], [{"id": 3, "v": "late"}]],
    "integers, then floats": [[{"id": 1}], [{"id": 2, "v": 1}], [{"id": 3, "v": 0.5}]],
    "text, then integers": [[{"id": 1}], [{"id": 2, "v": "a"}], [{"id": 3, "v": 7}]],
    "text while an integer part is being written": [[{"id": 1}]] + [[{"id": i, "v": i}] for i in range(2, 6)]
                                                   + [[{"id": 6, "v": "text"}]],
}


def staged_with_the_script_ending_after_the_first_part(destination, files, tmp_path):
    stager = destination.stager("incremental", tmp_path / "stage")
    stager.add(files[0])
    stager.script_ended()
    for part in files[1:]:
        stager.add(part)
    return stager


@pytest.mark.parametrize("parts", AFTER_THE_SCRIPT_CASES.values(), ids=AFTER_THE_SCRIPT_CASES.keys())
def test_parts_taken_after_the_script_ended_use_every_core_and_build_the_same_table(tmp_path, tributary, parts):
    files = write_parts(tmp_path, parts)
    native = DuckDBDestination(path=tmp_path / "native.duckdb")
    stager = staged_with_the_script_ending_after_the_first_part(native, files, tmp_path)
    assert stager.threads == os.cpu_count()
    try:
        result = native.load(request(files, "r1", staged=stager))
    finally:
        stager.close()
    generic = DuckDBDestination(path=tmp_path / "generic.duckdb")
    expected = generic_load(generic, files, "r1")
    assert columns(native) == columns(generic)
    assert contents(native) == contents(generic)
    assert result.rows == expected.rows


def test_the_script_ending_while_a_part_is_being_staged_lets_it_finish(tmp_path, tributary):
    """script_ended() comes from another thread while a part (a large one here) is being
    staged: that part goes on to the end."""
    import threading
    import time

    def record(i):
        return {"id": i, "name": f"record {i}", "text": f"a longer description of record number {i}",
                "score": i / 2, "ok": i % 2 == 0, "tags": ["a", f"t{i % 7}"], "owner": {"id": i % 100}}

    sizes = [(0, 10), (10, 200_010)]
    files = write_parts(tmp_path, [[record(i) for i in range(a, b)] for a, b in sizes])
    destination = DuckDBDestination(path=tmp_path / "w.duckdb")
    stager = destination.stager("incremental", tmp_path / "stage")
    stager.add(files[0])
    worker = threading.Thread(target=stager.add, args=(files[1],))
    worker.start()
    time.sleep(0.2)  # well into the large part's conversion
    stager.script_ended()
    worker.join()
    assert not stager.gave_up
    assert [p.name for p in stager.staged] == ["part-00000.parquet", "part-00001.parquet"]
    try:
        result = destination.load(request(files, "r1", staged=stager))
    finally:
        stager.close()
    assert result.rows == 200_010
    assert destination.query("SELECT count(*), count(DISTINCT id), min(id), max(id) FROM t") == [(200_010, 200_010, 0, 200_009)]


@pytest.mark.parametrize("staged", [True, False], ids=["staged path", "generic load"])
def test_a_first_load_waits_for_another_load_creating_the_ledger(tmp_path, staged):
    """Two feeds' first loads into a new warehouse race to create the load ledger. DuckDB fails
    the loser's CREATE while the winner has not committed; the loser must wait, not fail."""
    import threading
    import time

    dest = DuckDBDestination(path=tmp_path / "w.duckdb")
    files = write_parts(tmp_path, [[{"id": 1}, {"id": 2}]])
    with dest.connect() as winner:
        winner.execute("BEGIN")
        dest._ensure_ledger(winner)  # created, not yet committed
        outcome = {}

        def load():
            try:
                outcome["result"] = dest.load(LoadRequest(table="orders", files=files,
                                                          load_type="incremental" if staged else "upsert",
                                                          run_id="run-1", loaded_at=AT, primary_key=["id"]))
            except Exception as exc:
                outcome["error"] = exc

        loser = threading.Thread(target=load)
        loser.start()
        time.sleep(0.1)
        winner.execute("COMMIT")
        loser.join(30)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["result"].rows == 2
    assert dest.query("SELECT id FROM orders ORDER BY id") == [(1,), (2,)]
