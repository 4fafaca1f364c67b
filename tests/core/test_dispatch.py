"""The run queue (a cap on concurrent runs) and retries with exponential backoff."""

import time

import pytest

from core import bootstrap
from core.feeds import FeedSpec, create_feed
from core.services.retries import retry_delay_s
from core.runs import get_run, list_runs, wait_for_run
from core.bootstrap import start_run
from tests.helpers import wait_until

SLEEPY = "import time\nfrom lib import outputStream\ntime.sleep(3)\noutputStream.write({'a': 1})\n"


@pytest.fixture
def dispatcher(tributary):
    services = bootstrap.build(background=True, max_concurrent=2).start()
    yield services.dispatcher
    services.stop()
    bootstrap.build()


def test_runs_above_the_cap_wait_in_the_queue(dispatcher):
    for name in ("one", "two", "three"):
        create_feed(FeedSpec(name=name, script=SLEEPY))
    runs = [start_run(name) for name in ("one", "two", "three")]
    deadline = time.monotonic() + 20
    while True:
        statuses = sorted(get_run(r.id).status for r in runs)
        if statuses.count("running") == 2:
            break
        assert time.monotonic() < deadline, statuses
        time.sleep(0.1)
    assert statuses == ["queued", "running", "running"]
    assert dispatcher.running == 2
    finished = [wait_for_run(r.id, timeout_s=60) for r in runs]
    assert [(r.status, r.error) for r in finished] == [("succeeded", None)] * 3


def test_failed_runs_are_retried_with_backoff_each_attempt_its_own_run(dispatcher):
    create_feed(FeedSpec(name="flaky", script="raise RuntimeError('always down')\n", retries=2, retry_backoff_s=1))
    first = start_run("flaky")
    deadline = time.monotonic() + 60
    while True:
        runs = sorted(list_runs("flaky"), key=lambda r: r.attempt)
        if len(runs) == 3 and runs[-1].status == "failed":
            break
        assert time.monotonic() < deadline, [(r.attempt, r.status) for r in runs]
        time.sleep(0.2)
    assert [r.attempt for r in runs] == [1, 2, 3]
    assert [r.parent_run_id for r in runs] == [None, first.id, first.id]
    assert (runs[1].started_at - runs[0].finished_at).total_seconds() >= 1
    assert (runs[2].started_at - runs[1].finished_at).total_seconds() >= 2
    # The third attempt's end is handled (a retry queued, if one were due) before it leaves the
    # executor: once nothing is in flight, a fourth attempt would be in the store.
    wait_until(lambda: dispatcher.running == 0, 10, "the last attempt stayed in the executor")
    assert len(list_runs("flaky")) == 3  # no fourth attempt


def test_backoff_doubles():
    assert [retry_delay_s(60, attempt) for attempt in (1, 2, 3)] == [60, 120, 240]
