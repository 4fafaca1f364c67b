"""A connection's runs at once (limits `max_concurrent_runs`): set with the connection (bad
values refused naming the field), and held by the dispatcher, which offers no run of a
connection at its cap and offers the runs queued behind it in their turn."""

from __future__ import annotations

import json
import threading

import pytest
from sqlmodel import update

from common.errors import ValidationError
from core.connections import ConnectionInput, create_connection, edit_connection, get_connection, masked_view
from core.executors import LocalExecutor
from core.feeds import FeedSpec, create_feed
from core.run_caps import Cap
from core.runs import create_run, get_run
from core.services.dispatcher import Dispatcher
from storage.db import session_scope
from storage.models import Run
from tests.helpers import wait_until
from tests.test_cli import cli


def test_runs_at_once_is_kept_with_the_connections_other_limits(tributary):
    create_connection("Paced", "none", ConnectionInput(limits={"max_concurrent_runs": 2, "rate": 5}))
    assert masked_view(get_connection("Paced"))["limits"] == {"rate": 5, "per": "second", "retries": 5,
                                                             "max_concurrent_runs": 2}
    edit_connection("Paced", ConnectionInput(limits={"max_concurrent_runs": 0, "rate": 5}))  # 0: no cap
    assert "max_concurrent_runs" not in get_connection("Paced").params["limits"]


@pytest.mark.parametrize("runs", [-1, 257, 2.5, "2", True])
def test_bad_runs_at_once_is_refused_naming_the_field(tributary, runs):
    with pytest.raises(ValidationError) as refused:
        create_connection("Bad", "none", ConnectionInput(limits={"max_concurrent_runs": runs}))
    assert refused.value.problems == [("runs at once", "must be a whole number from 1 to 256 (0: no limit)")]


def test_runs_at_once_from_the_command_line_for_every_auth_type(tmp_path):
    data = tmp_path / "data"
    for name, auth in (("public", ["none"]), ("billing", ["basic", "--username", "ann", "--password", "pa55-word"]),
                       ("tokens", ["custom", "--auth-url", "http://127.0.0.1:9/token"])):
        made = cli(data, "--json", "connections", "create", name, "--auth", *auth, "--runs-at-once", "3")
        assert made.returncode == 0, made.stderr
        assert json.loads(made.stdout)["limits"]["max_concurrent_runs"] == 3
    edited = cli(data, "--json", "connections", "edit", "billing", "--runs-at-once", "1")
    assert json.loads(edited.stdout)["limits"]["max_concurrent_runs"] == 1
    assert json.loads(cli(data, "--json", "connections", "edit", "billing", "--username", "bob").stdout)[
        "limits"]["max_concurrent_runs"] == 1  # an edit that does not name it keeps it
    refused = cli(data, "connections", "edit", "public", "--runs-at-once", "300")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "error: runs at once: must be a whole number from 1 to 256 (0: no limit)" in refused.stderr.splitlines()


class HeldRuns:
    """The local executor's `execute`: claims the run (queued -> running, as the run executor
    does) and holds it until the test lets it end."""

    def __init__(self):
        self.release = {}

    def __call__(self, run_id: str) -> None:
        self.release[run_id] = threading.Event()
        _set_status(run_id, "running")
        self.release[run_id].wait(30)
        _set_status(run_id, "succeeded")

    def end(self, run_id: str) -> None:
        wait_until(lambda: run_id in self.release, 10, f"run {run_id} was not executed")
        self.release[run_id].set()

    def end_all(self) -> None:
        for event in list(self.release.values()):
            event.set()


def _set_status(run_id: str, status: str) -> None:
    with session_scope() as session:
        session.execute(update(Run).where(Run.id == run_id).values(status=status))


@pytest.fixture
def held():
    runs = HeldRuns()
    yield runs
    runs.end_all()


def _runs_of(connection: str, names: list[str]) -> list[str]:
    ids = []
    for name in names:
        create_feed(FeedSpec(name=name, script="print(1)\n", connection=connection))
        ids.append(create_run(name, announce=False).id)
    return ids


def test_a_capped_connections_runs_wait_and_the_runs_behind_them_start(any_store, held):
    create_connection("Limited", "none", ConnectionInput(limits={"max_concurrent_runs": 2}))
    create_connection("Open", "none")
    capped = _runs_of("Limited", ["a1", "a2", "a3", "a4"])
    uncapped = _runs_of("Open", ["b1"])
    executor = LocalExecutor(held, max_concurrent=4)
    dispatcher = Dispatcher(executor)

    assert dispatcher.run_once() == [capped[0], capped[1], uncapped[0]]  # a free slot is left for nobody
    assert dispatcher.run_once() == []
    waiting = [get_run(run_id) for run_id in capped[2:]]
    assert dispatcher.capped_waits(waiting) == {run_id: (Cap("Limited", 2), 2) for run_id in capped[2:]}

    held.end(capped[0])
    wait_until(lambda: len(executor.in_flight()) == 2, 10, "the ended run stayed in the executor")
    assert dispatcher.run_once() == [capped[2]]  # one of the connection's runs ended: the next one starts
    assert dispatcher.run_once() == []


def test_runs_handed_over_and_not_yet_claimed_count_against_the_cap(any_store):
    create_connection("Limited", "none", ConnectionInput(limits={"max_concurrent_runs": 1}))
    capped = _runs_of("Limited", ["a1", "a2"])
    never_claims = threading.Event()
    executor = LocalExecutor(lambda run_id: never_claims.wait(30), max_concurrent=4)  # the run stays queued
    try:
        dispatcher = Dispatcher(executor)
        assert dispatcher.run_once() == [capped[0]]
        assert get_run(capped[0]).status == "queued"
        assert dispatcher.run_once() == []
        assert dispatcher.capped_waits([get_run(r) for r in capped]) == {capped[1]: (Cap("Limited", 1), 1)}
    finally:
        never_claims.set()


def test_a_long_queue_of_a_capped_connection_does_not_hide_the_runs_behind_it(any_store, held):
    create_connection("Limited", "none", ConnectionInput(limits={"max_concurrent_runs": 1}))
    capped = _runs_of("Limited", [f"a{i}" for i in range(25)])  # more than the dispatcher reads at a time
    behind = _runs_of(None, ["late"])  # a feed without a connection has no cap
    dispatcher = Dispatcher(LocalExecutor(held, max_concurrent=4))
    assert dispatcher.run_once() == [capped[0], behind[0]]
