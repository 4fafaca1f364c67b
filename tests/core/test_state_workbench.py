"""The state workbench: set, reset and rewind a feed's state by hand, each recorded with who and
why, refused while a run is in progress; a diff before the change; on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from common.errors import Conflict, NotFound, ValidationError
from core.bootstrap import execute_run
from core.feeds import FeedSpec, create_feed
from core.runs import create_run, list_runs
from core.state import current_state, diff_states, reset_state, rewind_state, set_state, state_history
from tests.helpers import example, warehouse_rows


def test_set_reset_and_rewind_are_recorded_with_who_and_why(any_store, demo_api):
    create_feed(FeedSpec(name="data", script=example("incremental_get_data.py", demo_api.url)))
    first = execute_run(create_run("data").id)
    second = execute_run(create_run("data").id)
    assert (first.status, second.status) == ("succeeded", "succeeded")
    assert current_state("data") == {"next": 2001}

    set_state("data", {"next": 1501}, by="ana", why="the API re-sent 1501-2000")
    assert current_state("data") == {"next": 1501}
    reset_state("data", by="ana", why="start over")
    assert current_state("data") == {}
    rewind_state("data", first.id, by="bo")
    assert current_state("data") == {"next": 1001}

    history = [(h.reason, h.run_id, h.changed_by, h.note, h.state) for h in state_history("data")]
    assert history == [
        ("run", first.id, None, None, {"next": 1001}),
        ("run", second.id, None, None, {"next": 2001}),
        ("edit", None, "ana", "the API re-sent 1501-2000", {"next": 1501}),
        ("reset", None, "ana", "start over", {}),
        ("rewind", None, "bo", f"rewound to the state after run {first.id}", {"next": 1001}),
    ]


def test_rewind_then_run_loads_the_records_after_that_run_again(tributary, demo_api):
    create_feed(FeedSpec(name="data", script=example("incremental_get_data.py", demo_api.url), load_type="upsert",
                         primary_key=["id"]))
    first = execute_run(create_run("data").id)
    execute_run(create_run("data").id)
    rewind_state("data", first.id, by="ana", why="reload the second page")
    again = execute_run(create_run("data").id)
    assert again.status == "succeeded", again.error
    assert again.state_before == {"next": 1001}
    assert again.records_loaded == 1000
    assert warehouse_rows(tributary, "SELECT count(*), count(DISTINCT id), max(id) FROM data") == [(2000, 2000, 2000)]


def test_a_change_while_a_run_is_in_progress_is_refused_with_the_reason(tributary):
    create_feed(FeedSpec(name="data", script="print(1)\n"))
    set_state("data", {"a": 1})
    run = create_run("data")  # queued: the feed's one active run
    with pytest.raises(Conflict, match=f"has a run in progress \\({run.id}\\)"):
        set_state("data", {"a": 2}, by="ana")
    with pytest.raises(Conflict):
        reset_state("data")
    assert current_state("data") == {"a": 1}
    assert [r.status for r in list_runs("data")] == ["queued"]


def test_bad_states_and_unknown_runs_are_refused_naming_the_field(tributary):
    create_feed(FeedSpec(name="data", script="print(1)\n"))
    with pytest.raises(ValidationError, match="state: must be a JSON object, not list"):
        set_state("data", [1, 2])
    with pytest.raises(ValidationError, match="state: must hold JSON values only"):
        set_state("data", {"when": float("nan")})
    with pytest.raises(ValidationError, match="why: at most 500 characters"):
        set_state("data", {}, why="x" * 501)
    with pytest.raises(NotFound, match="run: 'nope' committed no state of feed data"):
        rewind_state("data", "nope")
    assert state_history("data") == []


def test_the_diff_names_each_added_removed_and_changed_key():
    old = {"next": 10, "since": "2026-01-01", "page": {"size": 100, "cursor": "a"}}
    new = {"next": 10, "page": {"size": 100, "cursor": "b", "sort": "id"}, "extra": True}
    assert diff_states(old, new) == [
        {"path": "extra", "change": "added", "old": None, "new": True},
        {"path": "page.cursor", "change": "changed", "old": "a", "new": "b"},
        {"path": "page.sort", "change": "added", "old": None, "new": "id"},
        {"path": "since", "change": "removed", "old": "2026-01-01", "new": None},
    ]
    assert diff_states({"n": 1}, {"n": 1.0}) == [{"path": "n", "change": "changed", "old": 1, "new": 1.0}]


def test_the_cli_sets_diffs_rewinds_and_lists_with_who_and_why(tmp_path, demo_api):
    import json

    from tests.test_cli import cli, script_file

    data = tmp_path / "data"
    assert cli(data, "feeds", "create", "data", "--script",
               script_file(tmp_path, "incremental_get_data.py", demo_api.url)).returncode == 0
    first = json.loads(cli(data, "--json", "run", "data").stdout)
    assert cli(data, "run", "data").returncode == 0

    diff = cli(data, "state", "data", "--diff", '{"next": 5, "note": "x"}', "--json")
    assert json.loads(diff.stdout) == [{"path": "next", "change": "changed", "old": 2001, "new": 5},
                                       {"path": "note", "change": "added", "old": None, "new": "x"}]
    rewound = cli(data, "state", "data", "--rewind", first["id"], "--by", "ana", "--why", "reload page 2")
    assert rewound.returncode == 0, rewound.stderr
    assert '{"next": 1001}' in rewound.stdout and "1 change(s)" in rewound.stdout
    history = json.loads(cli(data, "--json", "state", "data", "--history").stdout)
    assert (history[-1]["reason"], history[-1]["by"], history[-1]["why"]) == ("rewind", "ana", "reload page 2")

    both = cli(data, "state", "data", "--reset", "--rewind", first["id"])
    assert both.returncode == 2 and "error: --rewind: cannot be given with --reset" in both.stderr, both.stderr
    assert "Traceback" not in both.stderr
