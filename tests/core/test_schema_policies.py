"""Schema history and policies, with a feed whose API adds a field (run 2: `tag`) and later
turns an integer into a float (run 3: `price`): under evolve both changes are in the feed's
schema history and a webhook watcher receives the diff; under freeze the run fails naming the
column and the table is unchanged; under discard new columns the table keeps its columns and
the run log says what was dropped. On DuckDB and on PostgreSQL as the destination."""

from __future__ import annotations

from pathlib import Path

import duckdb
import psycopg
import pytest

from common.errors import ValidationError
from core import bootstrap, watchers
from core.bootstrap import execute_run
from core.feeds import FeedSpec, create_feed, export_yaml, get_feed, import_yaml
from core.runs import create_run, read_log, run_view
from core.schema_history import schema_history
from core.services import deliveries
from core.state import set_state
from tests.core.test_watchers import Receiver

# The API as it changes over time: the feed's state says which step it is at.
SCRIPT = """
from lib import outputStream, metadata
step = metadata.get("step", 0)
if step == 0:
    outputStream.write({"id": 1, "price": 10})
elif step == 1:
    outputStream.write({"id": 2, "price": 11, "tag": "new"})
else:
    outputStream.write({"id": 3, "price": 12.5, "tag": "sale"})
metadata.save({"step": step + 1})
"""


@pytest.fixture
def receiver():
    started = Receiver()
    yield started
    started.close()


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse(request, tributary, monkeypatch):
    """Which destination, and its table's columns as {name: type}."""
    monkeypatch.setattr(deliveries, "BACKOFF_BASE_S", 0.05)
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        monkeypatch.setenv("TRIBUTARY_WAREHOUSE", "postgres")
        monkeypatch.setenv("TRIBUTARY_POSTGRES_URL", url)

        def columns():
            with psycopg.connect(url) as con:
                return _columns(con.execute(_COLUMNS_SQL).fetchall())
    else:
        def columns():
            with duckdb.connect(str(Path(tributary) / "warehouse.duckdb"), read_only=True) as con:
                return _columns(con.execute(_COLUMNS_SQL).fetchall())
    yield request.param, columns
    assert bootstrap.current().deliveries.flush(30)


_COLUMNS_SQL = ("SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = 'prices' AND table_schema = current_schema() ORDER BY ordinal_position")


def _columns(rows) -> dict:
    return {name: kind.upper() for name, kind in rows if not name.startswith("_tributary")}


def feed(destination: str, policy: str = "evolve"):
    return create_feed(FeedSpec(name="prices", script=SCRIPT, destinations=[destination], schema_policy=policy))


def run():
    return execute_run(create_run("prices").id)


def test_evolve_records_both_changes_and_the_watcher_receives_the_diff(warehouse, receiver):
    destination, columns = warehouse
    feed(destination)
    watchers.add_watcher("prices", ["schema_changed"], "webhook", receiver.url)
    first = run()
    assert first.status == "succeeded", first.error
    assert first.schema_changes[destination]["created"] is True
    added = run()
    assert added.status == "succeeded", added.error
    assert added.schema_changes[destination]["added"] == [{"column": "tag", "type": columns()["TAG".lower()]}]
    widened = run()
    assert widened.status == "succeeded", widened.error
    change = widened.schema_changes[destination]["widened"]
    assert [c["column"] for c in change] == ["price"]
    assert change[0]["from"].upper() == "BIGINT" and change[0]["to"].upper() in ("DOUBLE", "DOUBLE PRECISION")
    assert f"column price widened from {change[0]['from']} to {change[0]['to']}" in read_log(widened.id)[0]
    assert run_view(widened)["schema_changes"] == widened.schema_changes

    history = schema_history("prices")
    assert [h["run_id"] for h in history] == [widened.id, added.id, first.id]  # newest first
    assert any(line.startswith("column price widened from") for line in history[0]["lines"])
    assert history[1]["lines"] == [f"column tag added ({columns()['tag']})"]
    assert list(columns()) == ["id", "price", "tag"]

    assert bootstrap.current().deliveries.flush(30)
    documents = receiver.documents()
    # The table's creation is history, not a change a watcher hears of: runs 2 and 3 only.
    assert [d["run_id"] for d in documents] == [added.id, widened.id]
    assert all(d["event"] == "schema_changed" for d in documents)
    assert documents[0]["schema_changes"][destination]["added"][0]["column"] == "tag"
    assert documents[1]["schema_changes"][destination]["widened"][0]["column"] == "price"


def test_freeze_fails_the_run_naming_the_column_and_leaves_the_table(warehouse):
    destination, columns = warehouse
    feed(destination, "freeze")
    assert run().status == "succeeded"  # a frozen feed's first run still creates its table
    before = columns()
    failed = run()
    assert failed.status == "failed"
    assert "frozen" in failed.error and "add column tag" in failed.error
    assert columns() == before
    set_state("prices", {"step": 2}, by="test", why="the API now sends floats")
    widening = execute_run(create_run("prices").id)
    assert widening.status == "failed" and "widen column price" in widening.error
    assert columns() == before
    assert failed.id not in [h["run_id"] for h in schema_history("prices")]


def test_discard_new_columns_keeps_the_table_and_logs_what_was_dropped(warehouse):
    destination, columns = warehouse
    feed(destination, "discard_new_columns")
    assert run().status == "succeeded"
    before = columns()
    second = run()
    assert second.status == "succeeded", second.error
    assert columns() == before
    assert second.schema_changes[destination]["dropped"] == ["tag"]
    assert "field tag dropped" in read_log(second.id)[0]
    assert second.records_loaded == 1


def test_the_policy_is_validated_exported_and_imported(tributary):
    with pytest.raises(ValidationError) as caught:
        create_feed(FeedSpec(name="prices", script=SCRIPT, schema_policy="sometimes"))
    assert "schema policy" in str(caught.value) and "evolve, freeze, discard_new_columns" in str(caught.value)
    create_feed(FeedSpec(name="prices", script=SCRIPT, schema_policy="freeze"))
    text = export_yaml(["prices"])
    assert "schema_policy: freeze" in text
    import_yaml(text.replace("schema_policy: freeze", "schema_policy: discard_new_columns"), replace=True)
    assert get_feed("prices").schema_policy == "discard_new_columns"


def test_rejected_records_are_in_the_history_with_their_reasons(tributary):
    # A field reserved for Tributary's audit columns cannot be loaded: its record is rejected.
    script = ("from lib import outputStream\noutputStream.write({'id': 1})\n"
              "outputStream.write({'id': 2, '_tributary_run_id': 'x'})\n")
    create_feed(FeedSpec(name="prices", script=script, destinations=["duckdb"], max_rejected_ratio=0.5))
    finished = run()
    assert finished.status == "succeeded", finished.error
    [entry] = [h for h in schema_history("prices") if h["run_id"] == finished.id]
    assert entry["change"]["rejected"] == 1 and "reserved" in entry["change"]["reasons"][0]
    assert any(line.startswith("1 record rejected (record 2") for line in entry["lines"])
