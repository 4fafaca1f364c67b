"""The schema policies on every destination: freeze fails a load that would add or widen a
column before it commits, naming it, and leaves the table as it was; discard_new_columns
loads the rows without the new fields and reports them; every load reports its change as
data (LoadResult.schema_diff)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from storage.destinations.base import SchemaFrozenError
from tests.destinations.harness import make_target, request_for


def _names(types: dict) -> set[str]:
    return {name.lower() for name in types}


def test_freeze_refuses_a_new_column_and_leaves_the_table(target, spool_files):
    destination = target.destination
    first = destination.load(replace(request_for(spool_files([{"id": 1, "price": 10}]), "r1"), schema_policy="freeze"))
    assert first.schema_diff["created"] is True
    before = target.types("orders")
    frozen = replace(request_for(spool_files([{"id": 2, "price": 11, "tag": "new"}]), "r2"), schema_policy="freeze")
    with pytest.raises(SchemaFrozenError) as caught:
        destination.load(frozen)
    assert "add column tag" in str(caught.value).lower() and "frozen" in str(caught.value)
    assert target.types("orders") == before
    assert not destination.has_run("orders", "r2")
    assert [r["id"] for r in target.rows("orders")] == [1]


WIDENING = ["duckdb", "postgres"]  # the others reject a wider value instead of widening the column


def test_the_destinations_that_widen_columns_are_those_named_here(target):
    assert target.destination.capabilities.widens_columns is (target.kind in WIDENING)


@pytest.fixture(params=WIDENING)
def widening_target(request, tmp_path):
    return make_target(request.param, request, tmp_path)


def test_freeze_refuses_a_widened_column(widening_target, spool_files):
    target = widening_target
    destination = target.destination
    destination.load(request_for(spool_files([{"id": 1, "price": 10}]), "r1"))
    before = target.types("orders")
    with pytest.raises(SchemaFrozenError, match="(?i)widen column price"):
        destination.load(replace(request_for(spool_files([{"id": 2, "price": 1.5}]), "r2"), schema_policy="freeze"))
    assert target.types("orders") == before


def test_discard_new_columns_loads_the_rows_without_the_new_fields(target, spool_files):
    destination = target.destination
    destination.load(request_for(spool_files([{"id": 1, "price": 10}]), "r1"))
    before = target.types("orders")
    result = destination.load(replace(request_for(spool_files([{"id": 2, "price": 11, "tag": "new"}]), "r2"),
                                      schema_policy="discard_new_columns"))
    assert result.schema_diff["dropped"] == ["tag"] and result.schema_diff["added"] == []
    assert target.types("orders") == before and "tag" not in _names(target.types("orders"))
    assert [r["id"] for r in target.rows("orders")] == [1, 2]


def test_evolve_reports_added_and_widened_columns_as_data(target, spool_files):
    destination = target.destination
    destination.load(request_for(spool_files([{"id": 1, "price": 10}]), "r1"))
    added = destination.load(request_for(spool_files([{"id": 2, "price": 11, "tag": "new"}]), "r2"))
    assert [c["column"].lower() for c in added.schema_diff["added"]] == ["tag"]
    if destination.capabilities.widens_columns:
        widened = destination.load(request_for(spool_files([{"id": 3, "price": 1.5}]), "r3"))
        assert [c["column"].lower() for c in widened.schema_diff["widened"]] == ["price"]
