"""The detected schema of a test: the columns and types its records make, by the destinations'
rules, and what a run would do to the feed's table as it is now (added, widened, rejected)."""

from __future__ import annotations

from core.bootstrap import execute_run
from core.feeds import FeedSpec, create_feed, edit_feed
from core.preview import PreviewRequest, preview_feed, preview_script
from core.preview_schema import detected_columns
from core.runs import create_run
from tests.helpers import warehouse_rows

FIRST = "from lib import outputStream\noutputStream.write({'id': 1, 'amount': 5, 'flag': True, 'name': 'x'})\n"
SECOND = (
    "from lib import outputStream\n"
    "outputStream.write({'id': 2, 'amount': 5.5, 'flag': {'nested': 1}, 'name': 'y', 'extra': '2024-01-02T03:04:05Z'})\n"
)


def _columns(data_dir, table: str) -> list[tuple]:
    return warehouse_rows(data_dir, "SELECT column_name, data_type FROM information_schema.columns "
                                    f"WHERE table_name = '{table}' ORDER BY ordinal_position")


def test_the_types_are_inferred_by_the_destinations_rules():
    _, columns = detected_columns([
        {"id": 1, "price": 1, "when": "2024-01-02T03:04:05Z", "tags": ["a"], "note": None},
        {"id": 2, "price": 2.5, "when": "2024-01-03 10:00", "tags": None, "note": "text"},
    ])
    assert {c["field"]: c["type"] for c in columns} == {
        "id": "integer", "price": "float", "when": "timestamp", "tags": "json", "note": "string"}
    price = next(c for c in columns if c["field"] == "price")
    assert price["types_seen"] == ["float", "integer"] and price["nulls"] == 0
    assert next(c for c in columns if c["field"] == "note")["nulls"] == 1


def test_a_script_not_saved_as_a_feed_has_its_columns_only(tributary):
    result = preview_script(PreviewRequest(script=FIRST))
    assert result.ok, (result.error, result.logs)
    assert [c["field"] for c in result.schema["columns"]] == ["id", "amount", "flag", "name"]
    assert result.schema["destinations"] == []


def test_a_feed_that_never_ran_has_no_table_yet(tributary):
    create_feed(FeedSpec(name="fresh", script=FIRST))
    result = preview_feed("fresh")
    assert result.ok, (result.error, result.logs)
    (view,) = result.schema["destinations"]
    assert view["destination"] == "duckdb" and view["table_exists"] is False and view["error"] is None


def test_the_records_are_compared_with_the_tables_current_columns(tributary):
    create_feed(FeedSpec(name="orders", script=FIRST))
    assert execute_run(create_run("orders").id).status == "succeeded"
    before = _columns(tributary, "orders")
    edit_feed("orders", script=SECOND)
    result = preview_feed("orders")
    assert result.ok, (result.error, result.logs)
    (view,) = result.schema["destinations"]
    assert view["table_exists"] is True and view["error"] is None
    by_field = {c["field"]: c for c in view["columns"]}
    assert by_field["id"]["status"] == "same" and by_field["id"]["current"] == "BIGINT"
    assert (by_field["amount"]["status"], by_field["amount"]["current"], by_field["amount"]["detected"]) == (
        "widened", "BIGINT", "DOUBLE")
    assert by_field["flag"]["status"] == "rejected" and "an object or list" in by_field["flag"]["why"]
    assert (by_field["extra"]["status"], by_field["extra"]["detected"]) == ("new", "TIMESTAMPTZ")
    assert by_field["name"]["status"] == "same"
    assert _columns(tributary, "orders") == before  # a test changes nothing in the warehouse


def test_a_column_no_record_has_and_a_reserved_field(tributary):
    create_feed(FeedSpec(name="audit", script=FIRST))
    assert execute_run(create_run("audit").id).status == "succeeded"
    edit_feed("audit", script="from lib import outputStream\noutputStream.write({'id': 3, '_tributary_run_id': 'x'})\n")
    (view,) = preview_feed("audit").schema["destinations"]
    statuses = {c["column"] or c["field"]: c["status"] for c in view["columns"]}
    assert statuses["amount"] == "absent" and statuses["id"] == "same"
    assert statuses["_tributary_run_id"] == "rejected"


def test_a_test_says_what_the_feeds_schema_policy_would_do_with_its_change(tributary):
    from app_pages.parts.test_panel import policy_effect

    create_feed(FeedSpec(name="orders", script=FIRST, schema_policy="freeze"))
    assert execute_run(create_run("orders").id).status == "succeeded"
    edit_feed("orders", script="from lib import outputStream\n"
                               "outputStream.write({'id': 2, 'amount': 5.5, 'flag': True, 'name': 'y', 'tag': 'n'})\n")
    result = preview_feed("orders")
    assert result.ok and result.schema["policy"] == "freeze"
    (view,) = result.schema["destinations"]
    assert policy_effect(view["columns"], "freeze") == (
        "The feed's schema policy is freeze: a run with these records would fail before loading anything, as it "
        "would add tag, widen amount.")
    assert policy_effect(view["columns"], "discard_new_columns") == (
        "The feed's schema policy is discard new columns: a run would load these records without tag, and keep "
        "the table's columns.")
    assert policy_effect(view["columns"], "evolve") is None
