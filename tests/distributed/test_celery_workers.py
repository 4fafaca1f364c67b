"""Runs on many workers: the celery executor sends queued runs through a real Redis to two
real worker processes (`python -m core.worker`, each with its own data dir and working
directory), sharing a PostgreSQL store and a PostgreSQL warehouse.

Each feed script calls the test's hit counter as it starts, so a script that executed twice
would be counted twice. A run's log is written in the data dir of the worker that executed it
and shipped into the store as it grows: these tests read it as the app and the CLI do, with
the workers' own copies removed or out of reach.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import pytest

from core import bootstrap, celery_executor
from core.feeds import FeedSpec, create_feed
from core.log_chunks import stored_size
from core.runs import FINAL_STATUSES, cancel_run, create_run, get_run, list_runs, read_log, read_log_tail
from core.services import recovery
from tests.distributed.conftest import ROOT, Apart, what_it_shares
from tests.helpers import wait_until

FEEDS = [f"feed{i}" for i in range(10)]
RECORDS = 3


def _script(counter_url: str, name: str, seconds: float) -> str:
    return f"""
import time, urllib.request
from lib import outputStream, metadata
urllib.request.urlopen("{counter_url}/{name}", timeout=10).read()
print("{name} is fetching")
time.sleep({seconds})
start = metadata.get("next", 0)
for i in range(start, start + {RECORDS}):
    outputStream.write({{"id": i, "feed": "{name}"}})
metadata.save({{"next": start + {RECORDS}}})
"""


def _feed(counter, name: str, seconds: float = 0.5, cluster=None, **options) -> None:
    url = cluster.reach(counter.url) if cluster else counter.url  # as the cluster's workers reach it
    create_feed(FeedSpec(name=name, script=_script(url, name, seconds), destinations=["postgres"],
                         **options))


def _ended(run_ids: list[str]) -> list:
    runs = [get_run(run_id) for run_id in run_ids]
    return runs if all(run.status in FINAL_STATUSES for run in runs) else []


def _rows(url: str, table: str) -> tuple:
    with psycopg.connect(url) as con:
        return con.execute(f'SELECT count(*), count(DISTINCT id), count(DISTINCT _tributary_run_id) FROM "{table}"'
                           ).fetchone()


@pytest.mark.parametrize("cluster_hosts", [(None, None), (Apart("worker-a"), Apart("worker-b"))],
                         ids=["on-this-host", "machines-of-their-own"])
def test_twenty_runs_of_ten_feeds_execute_once_each_spread_over_both_workers(cluster, hit_counter):
    if any(w.apart for w in cluster.workers):  # they share nothing but the store, broker and warehouse
        assert [what_it_shares(cluster, w) for w in cluster.workers] == [
            {"app data dir": False, "other workers": False, "host loopback": False}] * 2
    for name in FEEDS:
        _feed(hit_counter, name, cluster=cluster)
    app = bootstrap.build(background=True).start()  # this process as the app: the dispatcher sends
    try:
        run_ids = []
        for _round in (1, 2):  # a feed has one active run at a time: its second run once the first ended
            started = [app.start_run(name).id for name in FEEDS]
            wait_until(lambda: _ended(started), 180,
                       lambda: f"runs left: {[(r, get_run(r).status) for r in started]}\n{cluster.logs()}")
            run_ids += started
    finally:
        app.stop()
    runs = [get_run(run_id) for run_id in run_ids]
    assert [(run.status, run.error) for run in runs] == [("succeeded", None)] * 20, cluster.logs()
    assert dict(hit_counter.hits) == {name: 2 for name in FEEDS}  # each run's script executed once
    workers = {cluster.worker_of(run.worker).pid for run in runs if cluster.worker_of(run.worker)}
    assert workers == {w.pid for w in cluster.workers}, [run.worker for run in runs]
    assert all(run.heartbeat_at is not None and run.records_loaded == RECORDS for run in runs)
    for run in runs:  # each run's log was written in the data dir of the worker that executed it
        assert Path(run.log_path).parent == cluster.worker_of(run.worker).data_dir / "logs", run.log_path
    for worker in cluster.workers:  # and the app reads it from the store: no folder is shared
        shutil.rmtree(worker.data_dir / "logs")
    for run in runs:
        log = read_log(run.id)[0]
        assert f"run {run.id} of feed {run.feed_name} started" in log and f"{run.feed_name} is fetching" in log
        assert log.rstrip("\n").splitlines()[-1].endswith(f"run succeeded: {RECORDS} records loaded; state saved")
    for name in FEEDS:
        assert _rows(cluster.warehouse_url, name) == (2 * RECORDS, 2 * RECORDS, 2)
        assert [run.state_after for run in sorted(list_runs(name), key=lambda r: r.created_at)] == [
            {"next": RECORDS}, {"next": 2 * RECORDS}]


def test_a_task_delivered_twice_executes_its_run_once(cluster, hit_counter):
    _feed(hit_counter, "twice", seconds=1)
    run = create_run("twice", announce=False)
    celery_executor.send(run.id)
    celery_executor.send(run.id)  # the same task again: a redelivery
    wait_until(lambda: _ended([run.id]), 60, lambda: cluster.logs())
    assert (get_run(run.id).status, get_run(run.id).error) == ("succeeded", None)
    assert hit_counter.hits["twice"] == 1
    assert _rows(cluster.warehouse_url, "twice") == (RECORDS, RECORDS, 1)
    wait_until(lambda: run.id in cluster.logs() and "nothing to do" in cluster.logs(), 30,
               lambda: f"no worker said the second delivery did nothing:\n{cluster.logs()}")
    said = cluster.logs().count(f"run {run.id} ")
    celery_executor.send(run.id)  # and once more, after the run ended
    wait_until(lambda: cluster.logs().count(f"run {run.id} ") > said, 30, lambda: cluster.logs())
    assert "it is succeeded" in cluster.logs()
    assert hit_counter.hits["twice"] == 1
    assert _rows(cluster.warehouse_url, "twice") == (RECORDS, RECORDS, 1)


def test_cancel_reaches_the_remote_worker(cluster, hit_counter):
    _feed(hit_counter, "long", seconds=300)
    run = create_run("long", announce=False)
    celery_executor.send(run.id)
    wait_until(lambda: get_run(run.id).status == "running" and hit_counter.hits["long"] == 1, 60,
               lambda: f"{get_run(run.id).status}\n{cluster.logs()}")
    worker = cluster.worker_of(get_run(run.id).worker)
    assert worker is not None  # a worker process executes it, not this one
    beat = get_run(run.id).heartbeat_at
    wait_until(lambda: get_run(run.id).heartbeat_at > beat, 10, "the running run's heartbeat was not renewed")
    cancel_run(run.id)  # how long it takes to reach the worker is measured in bench/ (distributed)
    ended = wait_until(lambda: (r := get_run(run.id)).status in FINAL_STATUSES and r, 10,
                       lambda: f"{get_run(run.id).status}\n{worker.log()[-4000:]}")
    assert ended.status == "cancelled", (ended.status, ended.error)
    assert _rows_or_none(cluster.warehouse_url, "long") is None  # nothing was loaded


def _ended_retry(feed: str):
    return next((r for r in list_runs(feed) if r.attempt == 2 and r.status in FINAL_STATUSES), None)


def _rows_or_none(url: str, table: str):
    try:
        return _rows(url, table)
    except psycopg.errors.UndefinedTable:
        return None


FIRST_RUN_HANGS = """
import time, urllib.request
from lib import outputStream
if urllib.request.urlopen("{url}/victim", timeout=10).read() == b"1":
    time.sleep(300)  # the first attempt: its worker's machine dies meanwhile
for i in range({records}):
    outputStream.write({{"id": i}})
"""


@pytest.mark.parametrize("cluster_hosts", [("worker-b",)])
def test_a_run_whose_worker_host_died_is_settled_by_its_stale_heartbeat_and_retried(cluster, hit_counter,
                                                                                     monkeypatch):
    monkeypatch.setenv("TRIBUTARY_HEARTBEAT_STALE_S", "3")
    create_feed(FeedSpec(name="victim", script=FIRST_RUN_HANGS.format(url=hit_counter.url, records=RECORDS),
                         destinations=["postgres"], retries=1, retry_backoff_s=1))
    remote = cluster.workers[0]
    app = bootstrap.build(background=True).start()
    try:
        first = app.start_run("victim")
        wait_until(lambda: get_run(first.id).status == "running" and hit_counter.hits["victim"] == 1, 60,
                   lambda: f"{get_run(first.id).status}\n{cluster.logs()}")
        assert get_run(first.id).worker.startswith("worker-b:")  # another host's worker id
        os.killpg(remote.pid, signal.SIGKILL)  # the machine dies: worker and sandbox at once
        remote.process.wait()
        # Its process cannot be seen from this host: only its heartbeat, stale after 3 s, tells.
        assert recovery.recover_interrupted_runs() == []
        wait_until(lambda: first.id in recovery.recover_interrupted_runs() or get_run(first.id).status == "failed",
                   30, lambda: f"not settled: {get_run(first.id)}")
        assert (get_run(first.id).status, get_run(first.id).error) == ("failed", recovery.INTERRUPTED)
        survivor = cluster.start_worker()  # another worker takes the retry
        retry = wait_until(lambda: _ended_retry("victim"), 60, lambda: f"{list_runs('victim')}\n{cluster.logs()}")
    finally:
        app.stop()
    assert (retry.status, retry.error, retry.parent_run_id) == ("succeeded", None, first.id)
    assert cluster.worker_of(retry.worker) is survivor
    assert hit_counter.hits["victim"] == 2
    assert _rows(cluster.warehouse_url, "victim") == (RECORDS, RECORDS, 1)


class Gate:
    """An HTTP server the script waits on: GET /<n> answers once the test opens step n."""

    def __init__(self):
        self.steps = [threading.Event() for _ in range(STEPS)]
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the http.server API
                opened = gate.steps[int(self.path.strip("/"))].wait(120)
                self.send_response(200 if opened else 504)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        for step in self.steps:
            step.set()
        self.server.shutdown()
        self.server.server_close()


STEPS = 4
STEPPING = """
import urllib.request
for step in range({steps}):
    print("step", step, "of the remote run", flush=True)
    urllib.request.urlopen("{url}/%d" % step, timeout=150).read()
print("the remote run's last line")
"""


def _cli_logs(run_id: str) -> str:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    out = subprocess.run([sys.executable, "-m", "core.cli", "logs", run_id], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.parametrize("cluster_hosts", [(Apart("worker-far"),)])
def test_the_app_tails_the_log_of_a_run_on_a_machine_of_its_own_and_shows_it_whole(cluster, hit_counter):
    gate = Gate()
    try:
        create_feed(FeedSpec(name="far", script=STEPPING.format(steps=STEPS, url=cluster.reach(gate.url))))
        run = create_run("far", announce=False)
        celery_executor.send(run.id)
        text, offset = "", 0
        for step in range(STEPS):  # each step's line reaches the app while the run waits in it
            def tailed():
                nonlocal text, offset
                more, offset, skipped = read_log_tail(run.id, 512 * 1024, offset)  # as the live log view reads
                assert not skipped
                text += more
                # Read from the store: the worker's file is on its machine (here its home is seen).
                return f"step {step} of the remote run" in text and (stored_size(run.id) or 0) >= offset
            wait_until(tailed, 60, lambda: f"step {step} not in the app's tail: {text!r}\n{cluster.logs()}")
            assert get_run(run.id).status == "running" and f"step {step + 1} " not in text
            gate.steps[step].set()
        ended = wait_until(lambda: _ended([run.id]), 60, lambda: cluster.logs())[0]
    finally:
        gate.close()
    assert (ended.status, ended.error) == ("succeeded", None)
    shutil.rmtree(cluster.workers[0].data_dir / "logs")  # what the app reads is not the worker's file
    whole = read_log(run.id)[0]
    assert whole.startswith(text) and "the remote run's last line" in whole and "run succeeded" in whole
    assert _cli_logs(run.id) == whole.rstrip("\n") + "\n"
