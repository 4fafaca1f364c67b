"""The Destination stage of the feed editor shows the destinations of the configured warehouse
(AppTest on the stage as the editor renders it)."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest


def _destination_stage():
    import streamlit as st

    from app_pages.parts import stage_destination
    from app_pages.view_models.feed_editor import FeedDraft

    draft = FeedDraft(id="draft", owner="tester", stage=2, feed_name="orders",
                      load_type=st.session_state.get("load_type", "incremental"))
    stage_destination.render(draft)


def _stage(load_type: str = "incremental") -> AppTest:
    at = AppTest.from_function(_destination_stage, default_timeout=30)
    at.session_state["load_type"] = load_type
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.mark.parametrize("warehouse, titles", [
    ("local", ["DuckDB warehouse", "Local Parquet files"]),
    ("postgres", ["PostgreSQL"]),
    ("redshift", ["Amazon Redshift", "Amazon S3 files"]),
    ("snowflake", ["Snowflake"]),
])
def test_the_stage_offers_the_configured_warehouses_destinations(tributary, monkeypatch, warehouse, titles):
    monkeypatch.setenv("TRIBUTARY_WAREHOUSE", warehouse)
    at = _stage()
    assert [box.label for box in at.checkbox] == titles
    captions = " ".join(c.value for c in at.caption)
    assert f"warehouse: {warehouse}" in captions


def test_the_stage_warns_when_a_destination_cannot_do_the_load_type(tributary, monkeypatch):
    monkeypatch.setenv("TRIBUTARY_WAREHOUSE", "redshift")
    captions = " ".join(c.value for c in _stage("upsert").caption)
    assert "Amazon S3 files does not support the load type Upsert" in captions
    assert "Amazon Redshift does not support" not in captions
