"""A feed's queue: its name rule, the DuckDB/Parquet rule (their files are on the app's host),
where its runs are routed, and the queues a worker consumes."""

from __future__ import annotations

import json

import pytest

from common.errors import ValidationError
from common.settings import get_settings
from core import queues
from core.feeds import FeedSpec, create_feed, edit_feed, export_yaml, get_feed
from core.worker import consumed_queues


def test_a_feed_is_pinned_to_a_queue_and_a_blank_one_is_the_default(any_store, monkeypatch):
    monkeypatch.setenv("TRIBUTARY_WAREHOUSE", "postgres")
    assert create_feed(FeedSpec(name="big_one", queue="big-memory.v2")).queue == "big-memory.v2"
    assert "queue: big-memory.v2" in export_yaml(["big_one"])
    assert edit_feed("big_one", queue="  ").queue is None
    assert queues.route(get_feed("big_one").queue, ["postgres"]) == queues.DEFAULT_QUEUE
    assert queues.route("big", ["postgres"]) == "big"


@pytest.mark.parametrize("queue, message", [
    ("has space", "'has space' may contain only letters, digits, '-', '_' and '.'"),
    ("q" * 65, "must be at most 64 characters (got 65)"),
])
def test_a_bad_queue_name_is_refused_naming_the_field_and_rule(tributary, queue, message):
    with pytest.raises(ValidationError) as refused:
        create_feed(FeedSpec(name="orders", queue=queue))
    assert ("queue", message) in refused.value.problems


@pytest.mark.parametrize("destination, title", [("duckdb", "DuckDB warehouse"), ("parquet", "Local Parquet files")])
def test_a_feed_loading_into_files_on_the_app_host_cannot_be_pinned_elsewhere(tributary, destination, title):
    with pytest.raises(ValidationError) as refused:
        create_feed(FeedSpec(name="local_one", destinations=[destination], queue="big"))
    [(field, message)] = refused.value.problems
    assert field == "queue"
    assert f"{title} is a file on the app's host, and only the app host's worker has it" in message
    feed = create_feed(FeedSpec(name="local_one", destinations=[destination]))
    assert queues.route(feed.queue, feed.destinations) == queues.APP_HOST_QUEUE
    with pytest.raises(ValidationError, match="only the app host's worker has it"):
        edit_feed("local_one", queue="big")


def test_a_worker_consumes_the_queues_it_is_given_else_the_default(tributary, monkeypatch):
    assert consumed_queues(None, get_settings()) == [queues.DEFAULT_QUEUE]
    monkeypatch.setenv("TRIBUTARY_WORKER_QUEUES", "big, small,big")
    assert consumed_queues(None, get_settings()) == ["big", "small"]
    assert consumed_queues("tributary.runs,big", get_settings()) == ["tributary.runs", "big"]
    with pytest.raises(ValidationError, match=r"--queues: 'a b' may contain only"):
        consumed_queues("a b", get_settings())
    with pytest.raises(ValidationError, match="TRIBUTARY_WORKER_QUEUES: tributary.app-host is the app host's queue"):
        monkeypatch.setenv("TRIBUTARY_WORKER_QUEUES", queues.APP_HOST_QUEUE)
        consumed_queues(None, get_settings())


def test_the_heartbeat_settings_keep_their_names_and_messages(tributary, monkeypatch):
    monkeypatch.setenv("TRIBUTARY_HEARTBEAT_S", "often")
    with pytest.raises(ValueError, match="TRIBUTARY_HEARTBEAT_S must be a number of seconds, got 'often'"):
        get_settings()
    monkeypatch.setenv("TRIBUTARY_HEARTBEAT_S", "2")
    monkeypatch.setenv("TRIBUTARY_HEARTBEAT_STALE_S", "0")
    with pytest.raises(ValueError, match="TRIBUTARY_HEARTBEAT_STALE_S must be more than 0 seconds"):
        get_settings()


def test_the_command_line_refuses_pinning_a_duckdb_feed_saying_why(tmp_path):
    from tests.test_cli import cli

    data = tmp_path / "data"
    refused = cli(data, "feeds", "create", "prices", "--script", "print(1)", "--queue", "big")
    assert refused.returncode != 0
    assert "queue: 'big' cannot be chosen: DuckDB warehouse is a file on the app's host" in refused.stderr
    created = cli(data, "feeds", "create", "prices", "--script", "print(1)", "--queue", "")
    assert created.returncode == 0, created.stderr
    assert json.loads(cli(data, "--json", "feeds", "show", "prices").stdout)["queue"] is None
    wrong = cli(data, "feeds", "edit", "prices", "--queue", "no spaces")
    assert wrong.returncode != 0 and "queue: 'no spaces' may contain only letters" in wrong.stderr
