"""The run lifecycle: records land in DuckDB, and the state advances only after they do."""

import pytest

from core.connections import ConnectionInput, create_connection
from common.errors import Conflict
from core.feeds import FeedSpec, create_feed, edit_feed
from core.runs import create_run, get_run, list_runs, read_log
from core.bootstrap import execute_run
from common.settings import get_settings
from core.state import current_state, state_history
from demo.api import DemoAPI
from tests.helpers import example, table_exists, warehouse_rows

PAGED = """
from lib import outputStream, metadata
start = metadata.get("next", 1)
for i in range(start, start + 4):
    outputStream.write({"id": i, "page_start": start})
metadata.save({"next": start + 4})
"""


def run(feed: str):
    return execute_run(create_run(feed).id)


def test_incremental_runs_load_each_page_once(any_store, demo_api):
    create_feed(FeedSpec(name="data", script=example("incremental_get_data.py", demo_api.url)))
    for _ in range(3):
        finished = run("data")
        assert finished.status == "succeeded", finished.error
    assert warehouse_rows(any_store, "SELECT count(*), count(DISTINCT id), min(id), max(id) FROM data") == [
        (2500, 2500, 1, 2500)
    ]
    assert [h.state for h in state_history("data")] == [{"next": 1001}, {"next": 2001}, {"next": None}]
    runs = list_runs("data")
    assert [r.records_loaded for r in reversed(runs)] == [1000, 1000, 500]
    assert [r.state_before for r in reversed(runs)] == [{}, {"next": 1001}, {"next": 2001}]


def test_typed_columns_new_keys_and_nested_json(tributary):
    create_feed(FeedSpec(name="typed", script=(
        "from lib import outputStream\n"
        "outputStream.write({'i': 1, 'f': 1.5, 'b': True, 's': 'x', 'ts': '2024-01-02T03:04:05Z',"
        " 'obj': {'k': [1, 2]}, 'lst': ['a']})\n")))
    assert run("typed").status == "succeeded"
    edit_feed("typed", script="from lib import outputStream\noutputStream.write({'i': 2, 'extra': 'new'})\n")
    assert run("typed").status == "succeeded"
    types = dict(warehouse_rows(tributary, "SELECT column_name, data_type FROM information_schema.columns "
                                           "WHERE table_name = 'typed'"))
    assert types == {"i": "BIGINT", "f": "DOUBLE", "b": "BOOLEAN", "s": "VARCHAR", "ts": "TIMESTAMP WITH TIME ZONE",
                     "obj": "JSON", "lst": "JSON", "extra": "VARCHAR", "_tributary_run_id": "VARCHAR",
                     "_tributary_loaded_at": "TIMESTAMP WITH TIME ZONE"}
    rows = warehouse_rows(tributary, "SELECT i, obj->>'$.k[1]', extra FROM typed ORDER BY i")
    assert rows == [(1, "2", None), (2, None, "new")]
    run_ids = warehouse_rows(tributary, "SELECT DISTINCT _tributary_run_id FROM typed")
    assert {r[0] for r in run_ids} == {r.id for r in list_runs("typed")}


def _baseline(feed: str, data_dir) -> tuple[list, dict]:
    create_feed(FeedSpec(name=feed, script=PAGED))
    assert run(feed).status == "succeeded"
    return warehouse_rows(data_dir, f"SELECT * FROM {feed} ORDER BY id"), current_state(feed)


def test_a_script_failing_after_writing_changes_nothing(any_store):
    rows, state = _baseline("paged", any_store)
    script = PAGED + "raise ValueError('upstream broke')\n"
    edit_feed("paged", script=script)
    failed = run("paged")
    assert failed.status == "failed"
    assert "ValueError: upstream broke" in failed.error
    assert failed.error_line == script.splitlines().index("raise ValueError('upstream broke')") + 1
    assert failed.records_written == 4 and failed.records_loaded == 0
    assert warehouse_rows(any_store, "SELECT * FROM paged ORDER BY id") == rows
    assert current_state("paged") == state == {"next": 5}
    assert failed.state_after == failed.state_before == state


def test_a_failing_load_changes_nothing(any_store):
    rows, state = _baseline("paged", any_store)
    # Upsert by a key the records do not have: the loader refuses inside its transaction.
    edit_feed("paged", load_type="upsert", primary_key=["order_id"])
    failed = run("paged")
    assert failed.status == "failed"
    assert "loading into duckdb failed" in failed.error and "order_id" in failed.error
    assert warehouse_rows(any_store, "SELECT * FROM paged ORDER BY id") == rows
    assert current_state("paged") == state


def test_truncate_and_insert_replaces_the_contents(tributary):
    create_feed(FeedSpec(name="snap", script=PAGED, load_type="truncate_insert"))
    run("snap")
    run("snap")
    assert warehouse_rows(tributary, "SELECT id FROM snap ORDER BY id") == [(5,), (6,), (7,), (8,)]


def test_upsert_updates_by_key_and_inserts_new_rows(tributary):
    script = (
        "from lib import outputStream, metadata\nv = metadata.get('v', 1)\n"
        "for k in range(v, v + 3):\n    outputStream.write({'k': k, 'region': 'eu', 'version': v})\n"
        "metadata.save({'v': v + 1})\n"
    )
    create_feed(FeedSpec(name="up", script=script, load_type="upsert", primary_key=["k", "region"]))
    run("up")
    run("up")
    assert warehouse_rows(tributary, "SELECT k, version FROM up ORDER BY k") == [(1, 1), (2, 2), (3, 2), (4, 2)]


def test_one_active_run_per_feed(any_store):
    create_feed(FeedSpec(name="paged", script=PAGED))
    first = create_run("paged")
    with pytest.raises(Conflict, match="already has an active run"):
        create_run("paged")
    execute_run(first.id)
    assert execute_run(create_run("paged").id).status == "succeeded"  # the slot is free again


def test_run_history_has_timings_counts_and_the_log(any_store):
    create_feed(FeedSpec(name="paged", script="print('hello from the script')\n" + PAGED))
    finished = run("paged")
    stored = get_run(finished.id)
    assert stored.status == "succeeded"
    assert stored.started_at <= stored.loading_at <= stored.finished_at
    assert stored.records_written == stored.records_loaded == 4
    assert stored.state_before == {} and stored.state_after == {"next": 5}
    log, _ = read_log(finished.id)
    assert "hello from the script" in log
    assert "4 rows committed" in log


def test_basic_auth_through_lib_connection(tributary, demo_api):
    create_connection("demo", "basic", ConnectionInput(username="demo", password="demo-password"))
    create_feed(FeedSpec(name="basic", connection="demo", script=example("basic_auth_connection.py", demo_api.url)))
    finished = run("basic")
    assert finished.status == "succeeded", finished.error
    assert finished.records_loaded == 100


def test_basic_auth_with_a_wrong_password_fails_clearly(tributary, demo_api):
    create_connection("demo", "basic", ConnectionInput(username="demo", password="wrong-password"))
    create_feed(FeedSpec(name="basic", connection="demo", script=example("basic_auth_connection.py", demo_api.url)))
    finished = run("basic")
    assert finished.status == "failed" and "401" in finished.error


def test_custom_auth_fetches_and_refreshes_its_token(tributary):
    # Tokens live 1 s here; the script waits past that between pages, so the API answers 401
    # and lib.connection must fetch a new token and retry.
    with DemoAPI(token_ttl_s=1) as api:
        create_connection("tok", "custom", ConnectionInput(
            auth_url=f"{api.url}/auth/token", body={"client_id": "demo-client", "client_secret": "demo-secret"}))
        script = example("custom_auth_connection.py", api.url).replace(
            "    page = body[\"next_page\"]", "    page = body[\"next_page\"]\n    import time; time.sleep(1.2)")
        script += "\nprint('token fetches:', connection.token_fetches)\n"
        create_feed(FeedSpec(name="custom", connection="tok", script=script))
        finished = run("custom")
        assert finished.status == "succeeded", finished.error
        assert finished.records_loaded == 100
        log, _ = read_log(finished.id)
        fetches = int(log.split("token fetches:")[1].split()[0])
        assert fetches >= 2
        assert api.tokens_issued == fetches


def test_runs_left_active_by_a_dead_process_are_recovered(any_store):
    import socket

    from core.services.recovery import recover_interrupted_runs
    from storage.db import session_scope

    create_feed(FeedSpec(name="paged", script=PAGED))
    stale = create_run("paged")
    with session_scope() as session:
        row = session.get(type(stale), stale.id)
        row.status, row.worker = "running", f"{socket.gethostname()}:999999"  # a pid that is not alive
        session.add(row)
    work_root = get_settings().work_root
    left = [work_root / stale.id / "out" / "spool", work_root / f"{stale.id}.parts", work_root / f"{stale.id}.stage-duckdb"]
    for path in left:
        path.mkdir(parents=True)
    (work_root / "another-run").mkdir()
    assert recover_interrupted_runs() == [stale.id]
    assert sorted(p.name for p in work_root.iterdir()) == ["another-run"]  # the dead run's files only
    recovered = get_run(stale.id)
    assert recovered.status == "failed" and "interrupted" in recovered.error
    assert execute_run(create_run("paged").id).status == "succeeded"  # the feed is free again


def test_rows_that_do_not_fit_are_rejected_within_the_feeds_threshold(tributary):
    script = (
        "from lib import outputStream, metadata\nrun = metadata.get('run', 1)\n"
        "values = [1, 2, 3] if run == 1 else [4, {'not': 'a number'}, 6, 7]\n"
        "for v in values:\n    outputStream.write({'n': v})\nmetadata.save({'run': run + 1})\n"
    )
    create_feed(FeedSpec(name="strict", script=script))
    assert run("strict").status == "succeeded"
    failed = run("strict")  # one row in four cannot be loaded: over the default 0% threshold
    assert failed.status == "failed" and "reject" in failed.error.lower()
    assert current_state("strict") == {"run": 2}
    edit_feed("strict", max_rejected_ratio=0.5)
    passed = run("strict")
    assert passed.status == "succeeded", passed.error
    assert passed.destination_results["duckdb"]["rejected"] == 1
    assert warehouse_rows(tributary, "SELECT count(*) FROM strict") == [(6,)]
    assert warehouse_rows(tributary, "SELECT count(*) FROM strict__rejected") == [(1,)]


def test_a_queued_run_cancelled_before_it_starts_never_runs(any_store):
    from core.runs import cancel_run

    create_feed(FeedSpec(name="paged", script=PAGED))
    queued = create_run("paged")
    assert cancel_run(queued.id).status == "cancelled"
    assert execute_run(queued.id).status == "cancelled"  # the claim refuses it
    assert not table_exists(any_store, "paged")
    assert execute_run(create_run("paged").id).status == "succeeded"  # the feed is free again


def test_a_run_whose_dead_process_pid_is_reused_is_recovered_and_a_living_ones_run_is_not(tributary):
    """In a container the app is pid 1 after every restart: the pid alone would keep the run
    of the process before the restart active for ever. Its start time tells them apart."""
    import os
    import socket

    from core.services.recovery import recover_interrupted_runs
    from common.process import worker_id
    from storage.db import session_scope

    create_feed(FeedSpec(name="paged", script=PAGED))
    create_feed(FeedSpec(name="other", script=PAGED))
    before_restart, running_here = create_run("paged"), create_run("other")
    with session_scope() as session:
        for run, worker in ((before_restart, f"{socket.gethostname()}:{os.getpid()}:1"), (running_here, worker_id())):
            row = session.get(type(run), run.id)
            row.status, row.worker = "running", worker
            session.add(row)
    assert recover_interrupted_runs() == [before_restart.id]
    assert get_run(running_here.id).status == "running"


def test_the_files_of_a_run_whose_process_died_after_it_ended_are_removed_by_recovery(tributary):
    from core.services.recovery import recover_interrupted_runs

    create_feed(FeedSpec(name="paged", script=PAGED))
    ended = run("paged")
    work_root = get_settings().work_root
    left = [work_root / ended.id, work_root / f"{ended.id}.parts", work_root / f"{ended.id}.stage-duckdb"]
    active = create_run("paged")
    for path in left + [work_root / f"{active.id}.parts", work_root / "not-a-run"]:
        path.mkdir(parents=True)
    assert recover_interrupted_runs() == []
    assert sorted(p.name for p in work_root.iterdir()) == sorted([f"{active.id}.parts", "not-a-run"])


def test_a_failed_runs_log_ends_with_a_line_saying_how_it_ended(tributary):
    create_feed(FeedSpec(name="broken", script="raise RuntimeError('the API said no')\n"))
    finished = run("broken")
    assert finished.status == "failed"
    text, _ = read_log(finished.id)
    last = text.strip().splitlines()[-1]
    assert "run failed:" in last and "the API said no" in last


def test_the_parquet_line_of_the_log_names_the_runs_own_folder(tributary):
    create_feed(FeedSpec(name="files", script="from lib import outputStream\noutputStream.write({'a': 1})\n",
                         destinations=["parquet"]))
    finished = run("files")
    assert finished.status == "succeeded", finished.error
    log, _ = read_log(finished.id)
    assert f"run_id={finished.id}/" in log and "<run id>" not in log


def test_a_runs_http_requests_are_counted_in_its_history(tributary, demo_api):
    create_feed(FeedSpec(name="data", script=example("incremental_get_data.py", demo_api.url)))
    finished = run("data")
    assert finished.status == "succeeded", finished.error
    counts = get_run(finished.id).request_counts
    assert counts["requests"] == 1 and counts["retries"] == 0 and counts["bytes"] > 1000, counts
    from core.runs import run_view

    assert run_view(get_run(finished.id))["requests"]["requests"] == 1
