"""The Runs page for runs that wait and runs that notify: a queued run says why it waits (a
retry's backoff, or every run slot taken), and a run's detail shows what its watchers were
sent, with each failure and its reason. Receivers are real local HTTP servers."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from core import bootstrap
from core.services import deliveries
from core.feeds import FeedSpec, create_feed
from core.runs import cancel_run, create_run, get_run, list_runs, wait_for_run
from core.bootstrap import start_run
from core.watchers import add_watcher
from tests.ui.conftest import errors, labelled, texts

FAILING = "from lib import outputStream\nraise KeyError('cursor')\n"
ONE = "from lib import outputStream\noutputStream.write({'id': 1})\n"
SLOW = "import time\nfor i in range(60):\n    print(f'tick {i}', flush=True)\n    time.sleep(0.25)\n"


@pytest.fixture
def receiver():
    """A local webhook receiver answering every POST with `status[0]`."""
    status = [200]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(status[0])
            self.end_headers()
            self.wfile.write(b"receiver says no" if status[0] >= 400 else b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield status, f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def row_of(at, run_id):
    table = at.dataframe[0].value
    return table[table["Run"] == run_id].iloc[0]


def test_a_retry_waiting_for_its_backoff_shows_as_queued_with_when_it_starts(app):
    create_feed(FeedSpec(name="flaky", script=FAILING, retries=2, retry_backoff_s=600))
    first = start_run("flaky", wait=True)
    [retry] = [r for r in list_runs("flaky") if r.status == "queued"]
    assert retry.attempt == 2 and retry.parent_run_id == first.id
    at = app("runs", run=retry.id)
    row = row_of(at, retry.id)
    assert row["Status"] == "queued"
    assert row["Waiting for"].startswith("Retry, attempt 2 of 3: waits for its backoff until ")
    assert "(in 9 min" in row["Waiting for"] or "(in 10 min" in row["Waiting for"]
    [info] = [i.value for i in at.info]
    assert info == row["Waiting for"]
    assert row_of(at, first.id)["Waiting for"] == ""  # only queued runs wait


def test_a_run_waiting_for_a_free_slot_says_so(app, monkeypatch):
    monkeypatch.setenv("TRIBUTARY_MAX_CONCURRENT_RUNS", "1")
    create_feed(FeedSpec(name="slow", script=SLOW))
    create_feed(FeedSpec(name="orders", script=ONE))
    busy = start_run("slow")
    deadline = time.monotonic() + 20
    while get_run(busy.id).status == "queued" and time.monotonic() < deadline:
        time.sleep(0.05)
    waiting = create_run("orders")  # queued; without a free slot the dispatcher would leave it there
    try:
        at = app("runs", run=waiting.id)
        expected = "Waiting for a free slot: 1 of 1 runs are running (at most 1 at a time)"
        assert row_of(at, waiting.id)["Waiting for"] == expected
        assert [i.value for i in at.info] == [expected]
    finally:
        cancel_run(waiting.id)
        cancel_run(busy.id)
        wait_for_run(busy.id, timeout_s=15)


def test_a_runs_detail_shows_its_watcher_deliveries_and_their_failures(app, monkeypatch, receiver):
    monkeypatch.setattr(deliveries, "MAX_ATTEMPTS", 2)
    monkeypatch.setattr(deliveries, "BACKOFF_BASE_S", 0.01)
    monkeypatch.delenv("TRIBUTARY_SMTP_HOST", raising=False)
    status, url = receiver
    create_feed(FeedSpec(name="refunds", script=FAILING))
    add_watcher("refunds", ["failed"], "webhook", url)
    add_watcher("refunds", ["failed"], "email", "ops@example.com")
    run = start_run("refunds", wait=True)
    assert bootstrap.current().deliveries.flush(30)
    at = app("runs", run=run.id)
    [_, table] = [d.value for d in at.dataframe]
    assert list(table["Status"]) == ["delivered", "failed"]
    assert list(table["To"]) == [url, "ops@example.com"]
    assert list(table["Attempts"]) == [1, 1]
    [failure] = [e for e in errors(at) if e.startswith("Could not deliver")]
    assert failure.startswith("Could not deliver the email to ops@example.com (run failed) after 1 attempt: ")
    assert "SMTP" in failure  # what to set for email to work

    status[0] = 500
    second = start_run("refunds", wait=True)
    assert bootstrap.current().deliveries.flush(30)
    at = app("runs", run=second.id)
    webhook_failure = [e for e in errors(at) if e.startswith(f"Could not deliver the webhook call to {url}")]
    assert webhook_failure and "after 2 attempts" in webhook_failure[0] and "HTTP 500" in webhook_failure[0]


def test_a_run_without_watchers_says_nobody_was_told(app):
    create_feed(FeedSpec(name="orders", script=ONE))
    run = start_run("orders", wait=True)
    at = app("runs", run=run.id)
    assert "No watcher was notified about this run." in texts(at)
    assert at.subheader[0].value == f"Run {run.id}"
