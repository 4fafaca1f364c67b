"""The Executor contract (core/executors.py), run over every registered executor: `local` (this
process's threads) and `celery` (a real Redis and a real worker process, which this suite
starts when the test needs one to execute).

What every executor promises the dispatcher:
- a submitted run executes, once, even when it is submitted twice;
- it takes no more runs than its room (`max_concurrent`, for the runs' queue), and refuses the
  rest (they stay queued); `free_slots()` is never below what submit() would take;
- after `shutdown()` it takes nothing more.
"""

from __future__ import annotations

import pytest

from core import bootstrap
from core.executors import EXECUTORS, Executor, executor_class
from core.feeds import FeedSpec, create_feed
from core.runs import FINAL_STATUSES, create_run, get_run
from tests.helpers import wait_until

# Each run takes a couple of seconds, so that an executor's slots stay taken while the test
# looks at them (the local executor's runs execute at once).
SCRIPT = """
import time, urllib.request
from lib import outputStream
urllib.request.urlopen("{url}/{name}", timeout=10).read()
time.sleep(2)
outputStream.write({{"id": 1}})
"""


@pytest.fixture(params=sorted(EXECUTORS))
def executor_name(request) -> str:
    return request.param


@pytest.fixture
def cluster_hosts():
    return ()  # the tests start a worker when they need one


def _executor(name: str, cluster, max_concurrent: int = 2) -> Executor:
    services = bootstrap.build().start()
    return executor_class(name)(execute=services.execute_run, max_concurrent=max_concurrent)


def _queued_runs(counter, names: list[str]) -> list[str]:
    for name in names:
        create_feed(FeedSpec(name=name, script=SCRIPT.format(url=counter.url, name=name), destinations=["postgres"]))
    return [create_run(name, announce=False).id for name in names]


def _ended(run_ids: list[str]) -> bool:
    return all(get_run(run_id).status in FINAL_STATUSES for run_id in run_ids)


def _let_it_execute(name: str, cluster) -> None:
    if name == "celery":
        cluster.start_worker()


def test_a_run_submitted_twice_executes_once(executor_name, cluster, hit_counter):
    executor = _executor(executor_name, cluster)
    (run_id,) = _queued_runs(hit_counter, ["once"])
    assert executor.submit(run_id)
    executor.submit(run_id)  # again, as a dispatcher that lost track would
    _let_it_execute(executor_name, cluster)
    wait_until(lambda: _ended([run_id]), 60, lambda: f"{get_run(run_id)}\n{cluster.logs()}")
    assert (get_run(run_id).status, get_run(run_id).error) == ("succeeded", None)
    assert hit_counter.hits["once"] == 1
    executor.shutdown(wait=True)


def test_it_takes_no_more_runs_than_its_free_slots(executor_name, cluster, hit_counter):
    executor = _executor(executor_name, cluster, max_concurrent=2)
    assert executor.free_slots() == 2
    run_ids = _queued_runs(hit_counter, ["a1", "a2", "a3"])
    taken = [run_id for run_id in run_ids if executor.submit(run_id)]
    assert taken == run_ids[:2]
    assert get_run(run_ids[2]).status == "queued"  # refused, it stays in the store's queue
    _let_it_execute(executor_name, cluster)
    wait_until(lambda: _ended(taken), 60, lambda: f"{[get_run(r) for r in taken]}\n{cluster.logs()}")
    assert all(get_run(run_id).status == "succeeded" for run_id in taken)
    executor.shutdown(wait=True)


def test_a_full_executor_refuses(executor_name, cluster, hit_counter):
    executor = _executor(executor_name, cluster, max_concurrent=1)
    first, second = _queued_runs(hit_counter, ["b1", "b2"])
    assert executor.submit(first)
    assert executor.submit(second) is False  # holding the first: executing it, or sent and unclaimed
    assert get_run(second).status == "queued"
    _let_it_execute(executor_name, cluster)
    wait_until(lambda: _ended([first]), 60, lambda: cluster.logs())
    executor.shutdown(wait=True)


def test_after_shutdown_it_takes_nothing(executor_name, cluster, hit_counter):
    executor = _executor(executor_name, cluster)
    (run_id,) = _queued_runs(hit_counter, ["late"])
    executor.shutdown()
    assert executor.free_slots() == 0
    assert executor.submit(run_id) is False
    assert get_run(run_id).status == "queued"
