"""Watchers: real runs notify a real local SMTP server and real local HTTP receivers; failing
receivers are retried, their failures show on the run, and the run never waits for them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller

from core import bootstrap
from core.services import deliveries
from core import watchers
from common.errors import NotFound, ValidationError
from core.feeds import FeedSpec, create_feed, edit_feed
from storage.models import Delivery, Run, Watcher, utcnow
from core.runs import create_run, get_run, list_runs
from core.bootstrap import execute_run
from core.services.recovery import recover_interrupted_runs
from common.process import worker_id
from storage.db import session_scope

PUBLIC_URL = "http://tributary.example:8501"
TWO_RECORDS = "from lib import outputStream\noutputStream.write({'a': 1})\noutputStream.write({'a': 2})\n"
NOTHING = "from lib import outputStream\n"
BROKEN = "from lib import outputStream\nraise ValueError('upstream broke')\n"
ROOT = Path(__file__).resolve().parents[2]
HELD_S = 5  # how long a held request waits for the test: only reached if the run waited for it


def run(feed: str) -> Run:
    return execute_run(create_run(feed).id)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(autouse=True)
def app(tributary, monkeypatch):
    """Quick retries, a known public URL, no SMTP unless a test starts one; and no delivery
    left running into the next test."""
    monkeypatch.setattr(deliveries, "BACKOFF_BASE_S", 0.05)
    monkeypatch.setenv("TRIBUTARY_PUBLIC_URL", PUBLIC_URL)
    for name in ("HOST", "PORT", "USERNAME", "PASSWORD", "FROM", "STARTTLS"):
        monkeypatch.delenv(f"TRIBUTARY_SMTP_{name}", raising=False)
    yield tributary
    assert bootstrap.current().deliveries.flush(30), "deliveries were still running at the end of the test"


# ---------------------------------------------------------------- a real SMTP server


class Mailbox:
    """aiosmtpd handler: keeps every accepted message, refuses the addresses in `refuse`."""

    def __init__(self):
        self.messages = []
        self.refuse: set[str] = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted for delivery"


@pytest.fixture
def mailbox(monkeypatch):
    handler = Mailbox()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    monkeypatch.setenv("TRIBUTARY_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("TRIBUTARY_SMTP_PORT", str(controller.port))
    monkeypatch.setenv("TRIBUTARY_SMTP_FROM", "tributary@data.example")
    yield handler
    controller.stop()


# ---------------------------------------------------------------- real HTTP receivers


class Receiver:
    """A local HTTP server keeping every JSON document posted to it. It answers the statuses
    in `statuses` in turn, then 200; with `hold`, each request waits for the test's go."""

    def __init__(self, statuses=(), hold: threading.Event | None = None):
        self.statuses = list(statuses)
        self.posts: list[tuple[dict, dict]] = []  # (headers, document)
        self.hold = hold
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/tributary"

    def documents(self) -> list[dict]:
        return [document for _, document in self.posts]

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    receiver.posts.append((dict(self.headers), json.loads(body)))
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                if receiver.hold is not None:
                    receiver.hold.wait(HELD_S)
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status < 300 else b"receiver is down for maintenance")

            def log_message(self, *args):
                pass

        return Handler

    def close(self):
        if self.hold is not None:
            self.hold.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers():
    started: list[Receiver] = []

    def start(statuses=(), hold=None) -> Receiver:
        started.append(Receiver(statuses, hold))
        return started[-1]

    yield start
    for receiver in started:
        receiver.close()


# ---------------------------------------------------------------- webhooks


def test_a_receiver_failing_twice_gets_the_run_on_the_third_attempt(receivers):
    receiver = receivers(statuses=[500, 500])
    create_feed(FeedSpec(name="orders", script=TWO_RECORDS))
    watcher = watchers.add_watcher("orders", ["succeeded"], "webhook", receiver.url)

    finished = run("orders")
    assert finished.status == "succeeded"
    assert bootstrap.current().deliveries.flush(30)

    [delivery] = watchers.deliveries_for_run(finished.id)
    assert (delivery.watcher_id, delivery.event, delivery.status, delivery.attempts, delivery.error) == (
        watcher.id, "succeeded", "delivered", 3, None)
    assert len(receiver.posts) == 3
    # The same document each time, under one delivery id a receiver can use to spot repeats.
    assert {h["X-Tributary-Delivery"] for h, _ in receiver.posts} == {str(delivery.id)}
    assert all(document == receiver.documents()[0] for document in receiver.documents())
    document = receiver.documents()[0]
    assert document == {
        "event": "succeeded", "feed": "orders", "run_id": finished.id, "status": "succeeded",
        "records_written": 2, "records_loaded": 2, "error": None,
        "started_at": finished.started_at.isoformat(), "finished_at": finished.finished_at.isoformat(),
        "duration_s": document["duration_s"], "link": f"{PUBLIC_URL}/runs?run={finished.id}",
    }
    assert document["duration_s"] == round((finished.finished_at - finished.started_at).total_seconds(), 3)


def test_failing_receivers_never_fail_or_hold_up_the_run_and_their_errors_show_on_it(receivers):
    release = threading.Event()
    down = receivers(statuses=[500] * 10, hold=release)
    closed_port = free_port()  # nothing listens there
    create_feed(FeedSpec(name="orders", script=TWO_RECORDS))
    watchers.add_watcher("orders", ["succeeded"], "webhook", down.url)
    watchers.add_watcher("orders", ["succeeded"], "webhook", f"http://127.0.0.1:{closed_port}/hook?token=s3cret")

    finished = run("orders")

    # The run has ended while the first receiver still holds the first attempt of its delivery.
    assert finished.status == "succeeded" and finished.error is None
    held = watchers.deliveries_for_run(finished.id)[0]
    assert (held.status, held.attempts) == ("pending", 0)
    release.set()
    assert bootstrap.current().deliveries.flush(30)

    to_down, to_nowhere = watchers.deliveries_for_run(finished.id)
    assert (to_down.status, to_down.attempts) == ("failed", deliveries.MAX_ATTEMPTS)
    assert "answered HTTP 500" in to_down.error and "receiver is down for maintenance" in to_down.error
    assert len(down.posts) == deliveries.MAX_ATTEMPTS
    assert (to_nowhere.status, to_nowhere.attempts) == ("failed", deliveries.MAX_ATTEMPTS)
    assert f"could not reach 127.0.0.1:{closed_port}" in to_nowhere.error
    assert "s3cret" not in to_nowhere.error  # URLs often carry tokens; the run page must not
    after = get_run(finished.id)
    assert after.status == "succeeded" and after.error is None
    assert after.finished_at < to_down.updated_at

    views = watchers.delivery_views(finished.id)
    assert [(v["channel"], v["status"], v["title"]) for v in views] == [("webhook", "failed", "run succeeded")] * 2


def test_a_run_that_loads_nothing_notifies_no_records(receivers):
    receiver = receivers()
    create_feed(FeedSpec(name="quiet", script=NOTHING))
    watchers.add_watcher("quiet", ["no_records", "succeeded"], "webhook", receiver.url)

    finished = run("quiet")
    assert finished.status == "succeeded"
    assert bootstrap.current().deliveries.flush(30)

    assert sorted((d["event"], d["records_loaded"]) for d in receiver.documents()) == [
        ("no_records", 0), ("succeeded", 0)]
    assert {d.status for d in watchers.deliveries_for_run(finished.id)} == {"delivered"}


def test_a_long_run_notifies_watchers_whose_threshold_it_passed(receivers):
    receiver = receivers()
    create_feed(FeedSpec(name="slow", script=TWO_RECORDS))
    watchers.add_watcher("slow", ["long_run"], "webhook", receiver.url, longer_than_minutes=5)

    finished = run("slow")  # a few seconds: under the threshold
    assert bootstrap.current().deliveries.flush(30)
    assert watchers.deliveries_for_run(finished.id) == [] and receiver.posts == []

    with session_scope() as session:  # as if it had taken six minutes
        row = session.get(Run, finished.id)
        row.started_at = row.finished_at - timedelta(minutes=6)
        session.add(row)
    [delivery] = bootstrap.current().deliveries.notify(get_run(finished.id))
    assert bootstrap.current().deliveries.notify(get_run(finished.id)) == []  # never the same news twice
    assert bootstrap.current().deliveries.flush(30)

    [document] = receiver.documents()
    assert (document["event"], document["run_id"], document["duration_s"]) == ("long_run", finished.id, 360.0)
    assert watchers.deliveries_for_run(finished.id)[0].status == "delivered"


def test_which_events_a_finished_run_triggers():
    everything = Watcher(feed_id=1, events=list(watchers.EVENTS), channel="webhook", target="http://x",
                         longer_than_minutes=10)

    def finished(status, loaded=5, minutes=1.0, kind="run"):
        end = utcnow()
        return Run(id="r", feed_name="f", kind=kind, status=status, records_loaded=loaded,
                   started_at=end - timedelta(minutes=minutes), finished_at=end)

    assert watchers.events_for(finished("succeeded"), everything) == ["succeeded"]
    assert watchers.events_for(finished("succeeded", loaded=0), everything) == ["succeeded", "no_records"]
    assert watchers.events_for(finished("failed", loaded=0, minutes=11), everything) == ["failed", "long_run"]
    # A person cancelled it: nobody needs telling, however long it ran.
    assert watchers.events_for(finished("cancelled", minutes=60), everything) == []
    assert watchers.events_for(finished("succeeded", kind="test"), everything) == []
    only_failures = Watcher(feed_id=1, events=["failed"], channel="webhook", target="http://x")
    assert watchers.events_for(finished("succeeded", loaded=0, minutes=60), only_failures) == []


# ---------------------------------------------------------------- email


def test_an_email_watcher_on_failures_hears_only_of_failed_runs(mailbox):
    create_feed(FeedSpec(name="orders", script=TWO_RECORDS))
    watchers.add_watcher("orders", ["failed"], "email", "ops@data.example")

    ok = run("orders")
    assert ok.status == "succeeded"
    assert bootstrap.current().deliveries.flush(30)
    assert watchers.deliveries_for_run(ok.id) == [] and mailbox.messages == []

    edit_feed("orders", script=BROKEN)
    failed = run("orders")
    assert failed.status == "failed"
    assert bootstrap.current().deliveries.flush(30)

    [message] = mailbox.messages
    assert message["Subject"] == "[Tributary] feed orders: run failed"
    assert (message["To"], message["From"]) == ("ops@data.example", "tributary@data.example")
    body = message.get_content()
    assert failed.id in body and "Status:          failed" in body
    assert "ValueError: upstream broke" in body
    assert f"{PUBLIC_URL}/runs?run={failed.id}" in body
    [delivery] = watchers.deliveries_for_run(failed.id)
    assert (delivery.status, delivery.attempts, delivery.event) == ("delivered", 1, "failed")


def test_email_failures_show_on_the_run(mailbox, monkeypatch):
    create_feed(FeedSpec(name="orders", script=TWO_RECORDS))
    mailbox.refuse.add("gone@data.example")
    watchers.add_watcher("orders", ["succeeded"], "email", "gone@data.example")
    watchers.add_watcher("orders", ["succeeded"], "email", "ops@data.example")

    finished = run("orders")
    assert bootstrap.current().deliveries.flush(30)
    refused, accepted = watchers.deliveries_for_run(finished.id)
    assert (refused.status, refused.attempts) == ("failed", deliveries.MAX_ATTEMPTS)
    assert "refused the recipient" in refused.error and "550" in refused.error
    assert (accepted.status, accepted.attempts) == ("delivered", 1)
    assert [m["To"] for m in mailbox.messages] == ["ops@data.example"]

    # Without an SMTP server in the settings, retrying is pointless: one attempt, and what to set.
    monkeypatch.delenv("TRIBUTARY_SMTP_HOST")
    second = run("orders")
    assert second.status == "succeeded"
    assert bootstrap.current().deliveries.flush(30)
    for delivery in watchers.deliveries_for_run(second.id):
        assert (delivery.status, delivery.attempts) == ("failed", 1)
        assert "TRIBUTARY_SMTP_HOST" in delivery.error


# ---------------------------------------------------------------- managing watchers


def test_watchers_are_listed_per_feed_and_removed():
    create_feed(FeedSpec(name="orders", script=TWO_RECORDS))
    create_feed(FeedSpec(name="users", script=TWO_RECORDS))
    first = watchers.add_watcher("orders", ["failed", "failed", "long_run"], "email", " ops@data.example ",
                                 longer_than_minutes=30)
    second = watchers.add_watcher("orders", ["succeeded"], "webhook", "https://hooks.example/t", longer_than_minutes=9)
    assert (first.events, first.target, first.longer_than_minutes) == (["failed", "long_run"], "ops@data.example", 30)
    assert second.longer_than_minutes is None  # only long-run watchers keep a threshold
    assert [w.id for w in watchers.list_watchers("orders")] == [first.id, second.id]
    assert watchers.list_watchers("users") == []
    assert watchers.event_title("long_run", 30) == "run took longer than 30 minutes"

    watchers.remove_watcher(first.id)
    assert [w.id for w in watchers.list_watchers("orders")] == [second.id]
    with pytest.raises(NotFound):
        watchers.remove_watcher(first.id)
    with pytest.raises(NotFound):
        watchers.add_watcher("nope", ["failed"], "email", "ops@data.example")


@pytest.mark.parametrize("events, channel, target, minutes, problem", [
    ([], "email", "ops@data.example", None, ("events", "choose at least one")),
    (["exploded"], "email", "ops@data.example", None, ("events", "unknown event 'exploded'")),
    (["failed"], "email", "ops at data.example", None, ("target", "is not an email address")),
    (["failed"], "email", "", None, ("target", "is required")),
    (["failed"], "webhook", "ftp://files.example/x", None, ("target", "must be an http:// or https:// URL")),
    (["failed"], "webhook", "hooks.example/t", None, ("target", "must be an http:// or https:// URL")),
    (["failed"], "sms", "+441234", None, ("channel", "must be one of email, webhook")),
    (["long_run"], "email", "ops@data.example", None, ("long run minutes", "at least 1")),
    (["long_run"], "email", "ops@data.example", 0, ("long run minutes", "at least 1")),
])
def test_invalid_watchers_are_refused_naming_the_field(events, channel, target, minutes, problem):
    create_feed(FeedSpec(name="orders", script=TWO_RECORDS))
    with pytest.raises(ValidationError) as raised:
        watchers.add_watcher("orders", events, channel, target, longer_than_minutes=minutes)
    field, fragment = problem
    assert any(f == field and fragment in message for f, message in raised.value.problems), raised.value.problems
    assert watchers.list_watchers("orders") == []


# ---------------------------------------------------------------- a process that dies mid-delivery


def _cli_run_killed_while_delivering(feed: str, receiver: Receiver) -> str:
    """`core.cli run` in a process of its own, killed (SIGKILL) while its delivery's first
    attempt is held by the receiver; the run's id."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-m", "core.cli", "--json", "run", feed], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not receiver.posts:
            assert child.poll() is None, child.stdout.read().decode()
            assert time.monotonic() < deadline, "the run's delivery never reached the receiver"
            time.sleep(0.05)
    finally:
        child.kill()
        child.wait()
    [finished] = list_runs(feed)
    return finished.id


def test_a_delivery_left_pending_by_a_killed_process_is_sent_when_the_app_starts_again(receivers):
    release = threading.Event()
    receiver = receivers(statuses=[500], hold=release)  # the first attempt: held, then refused
    create_feed(FeedSpec(name="orders", script=TWO_RECORDS))
    watchers.add_watcher("orders", ["succeeded"], "webhook", receiver.url)
    run_id = _cli_run_killed_while_delivering("orders", receiver)
    release.set()
    [left] = watchers.deliveries_for_run(run_id)
    assert (left.status, left.attempts) == ("pending", 0)

    assert bootstrap.current().deliveries.resume_left() == [left.id]
    assert bootstrap.current().deliveries.flush(30)

    [sent] = watchers.deliveries_for_run(run_id)
    assert (sent.status, sent.attempts, sent.error) == ("delivered", 1, None)
    assert sent.worker == worker_id()
    # The killed process's attempt and this one: the same document under the same delivery id.
    assert [h["X-Tributary-Delivery"] for h, _ in receiver.posts] == [str(left.id)] * 2
    assert receiver.documents()[0] == receiver.documents()[1]
    assert receiver.documents()[1]["run_id"] == run_id and receiver.documents()[1]["status"] == "succeeded"
    assert bootstrap.current().deliveries.resume_left() == []  # taken once


def _pending_delivery(run_id: str, watcher_id: int, worker: str | None, attempts: int = 0) -> int:
    with session_scope() as session:
        delivery = Delivery(run_id=run_id, watcher_id=watcher_id, event="succeeded", worker=worker, attempts=attempts)
        session.add(delivery)
        session.flush()
        return delivery.id


def _dead_worker() -> str:
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                              check=True)
    return f"{socket.gethostname()}:{finished.stdout.strip()}"


def test_deliveries_of_living_processes_and_of_other_hosts_are_left_to_them(receivers):
    receiver = receivers()
    create_feed(FeedSpec(name="orders", script=TWO_RECORDS))
    finished = run("orders")  # no watcher yet: nothing sent
    watcher = watchers.add_watcher("orders", ["succeeded"], "webhook", receiver.url)
    sending_here = _pending_delivery(finished.id, watcher.id, worker_id())
    other_host = _pending_delivery(finished.id, watcher.id, "another-host.example:1")

    assert bootstrap.current().deliveries.resume_left() == []
    assert bootstrap.current().deliveries.flush(30)
    assert receiver.posts == []
    statuses = {d.id: (d.status, d.worker) for d in watchers.deliveries_for_run(finished.id)}
    assert statuses == {sending_here: ("pending", worker_id()), other_host: ("pending", "another-host.example:1")}


def test_a_left_delivery_goes_on_with_the_attempts_it_has_left(receivers):
    receiver = receivers(statuses=[500] * 10)
    create_feed(FeedSpec(name="orders", script=TWO_RECORDS))
    finished = run("orders")
    watcher = watchers.add_watcher("orders", ["succeeded"], "webhook", receiver.url)
    left = _pending_delivery(finished.id, watcher.id, _dead_worker(), attempts=deliveries.MAX_ATTEMPTS - 1)

    assert bootstrap.current().deliveries.resume_left() == [left]
    assert bootstrap.current().deliveries.flush(30)
    [delivery] = watchers.deliveries_for_run(finished.id)
    assert (delivery.status, delivery.attempts) == ("failed", deliveries.MAX_ATTEMPTS)
    assert len(receiver.posts) == 1  # the last attempt only


def test_a_left_delivery_whose_watcher_was_removed_fails_saying_so(receivers):
    create_feed(FeedSpec(name="orders", script=TWO_RECORDS))
    finished = run("orders")
    watcher = watchers.add_watcher("orders", ["succeeded"], "webhook", receivers().url)
    left = _pending_delivery(finished.id, watcher.id, _dead_worker())
    watchers.remove_watcher(watcher.id)

    assert bootstrap.current().deliveries.resume_left() == [left]
    [delivery] = watchers.deliveries_for_run(finished.id)
    assert (delivery.status, delivery.error) == ("failed", "not sent: its watcher was removed while it was pending")


def _run_left_running_by_a_dead_process(feed: str) -> Run:
    stale = create_run(feed)
    with session_scope() as session:
        row = session.get(Run, stale.id)
        row.status, row.worker = "running", _dead_worker()
        session.add(row)
    return stale


def test_a_run_that_died_with_its_process_notifies_its_failure_and_is_retried(receivers):
    receiver = receivers()
    create_feed(FeedSpec(name="orders", script=TWO_RECORDS, retries=1, retry_backoff_s=3600))
    watchers.add_watcher("orders", ["failed"], "webhook", receiver.url)
    stale = _run_left_running_by_a_dead_process("orders")
    services = bootstrap.current()  # a process's services exist before its recovery runs

    assert recover_interrupted_runs() == [stale.id]
    assert services.deliveries.flush(30)

    [document] = receiver.documents()
    assert (document["run_id"], document["event"], document["status"]) == (stale.id, "failed", "failed")
    assert "interrupted" in document["error"]
    retry = next(r for r in list_runs("orders") if r.id != stale.id)
    assert (retry.status, retry.parent_run_id, retry.attempt) == ("queued", stale.id, 2)


def test_two_processes_starting_at_once_recover_a_dead_run_once(receivers, any_store):
    receiver = receivers()
    create_feed(FeedSpec(name="orders", script=TWO_RECORDS))
    watchers.add_watcher("orders", ["failed"], "webhook", receiver.url)
    stale = _run_left_running_by_a_dead_process("orders")
    services = bootstrap.current()  # a process's services exist before its recovery runs
    start, results = threading.Barrier(2), []

    def recover() -> None:
        start.wait()
        results.append(recover_interrupted_runs())

    threads = [threading.Thread(target=recover) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert services.deliveries.flush(30)

    assert sorted(results) == [[], [stale.id]]
    assert [d["run_id"] for d in receiver.documents()] == [stale.id]
    assert get_run(stale.id).status == "failed"
