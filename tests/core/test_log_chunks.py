"""A run's log shipped into the store (core/log_chunks.py), as a worker ships it: the readers
the Runs page and the CLI use read it from there, with the file's offsets and its limit, once
the file is gone; a store that fails for a while costs the run nothing; the chunks go with
their run and their feed."""

from __future__ import annotations

import logging
import shutil
import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import func, select

from core import log_chunks
from core.bootstrap import execute_run
from core.feeds import FeedSpec, create_feed, delete_feed
from core.log_chunks import CHUNK_BYTES, LogShipper
from core.run_log import RunLog, read_tail
from core.runs import FINAL_STATUSES, cancel_run, create_run, get_run, read_log, read_log_tail, run_log_size
from storage.db import get_engine, session_scope
from storage.models import Run, RunLogChunk
from tests.helpers import wait_until


def _queued_run(name: str = "shipped") -> Run:
    create_feed(FeedSpec(name=name, script="print('hi')"))
    return create_run(name, announce=False)


def _shipping_log(run: Run, limit_bytes: int = 0) -> RunLog:
    path = Path(run.log_path)
    return RunLog(path, limit_bytes=limit_bytes, shipper=LogShipper(run.id, run.feed_id, path))


def _stored_chunks(run_id: str) -> list[RunLogChunk]:
    with session_scope() as session:
        return list(session.exec(select(RunLogChunk).where(RunLogChunk.run_id == run_id)
                                 .order_by(RunLogChunk.seq)).all())


def _without_file(run: Run, keep: Path) -> None:
    """The worker's file out of the readers' reach (a copy kept for comparing)."""
    shutil.move(run.log_path, keep)


def test_a_shipped_log_is_read_from_the_store_as_from_its_file_once_the_file_is_gone(any_store, tmp_path):
    run = _queued_run()
    log = _shipping_log(run)
    lines = [f"line {n} ünïcødé ✓" for n in range(300)] + ["a NUL \x00 in the output", "é" * 100_000]
    for line in lines[:100]:
        log(line)
    wait_until(lambda: "line 99 " in read_log(run.id)[0], 10, "the first lines did not reach the store")
    live = run_log_size(run.id)
    for line in lines[100:]:
        log(line)
    log.close()
    copy = tmp_path / "worker-copy.log"
    _without_file(run, copy)
    assert run_log_size(run.id) == copy.stat().st_size > live
    whole, end = read_log(run.id)
    assert whole == copy.read_text().replace("\x00", "?") and end == copy.stat().st_size
    assert whole.endswith("é" * 100_000 + "\n")  # a long line split into chunks, no character broken
    chunks = _stored_chunks(run.id)
    assert len(chunks) > 3 and all(c.byte_end - c.byte_start <= CHUNK_BYTES for c in chunks)
    expected = tmp_path / "as-stored.log"  # the store's text holds no NUL: a one-byte stand-in
    expected.write_bytes(copy.read_bytes().replace(b"\x00", b"?"))
    for max_bytes, offset in [(1000, 0), (150_000, 0), (10**9, 0), (500, 1234), (10**9, live), (10, end + 5)]:
        assert read_log_tail(run.id, max_bytes, offset) == read_tail(expected, max_bytes, offset), (max_bytes, offset)
    assert read_log(run.id, live) == (expected.read_bytes()[live:].decode(), end)  # the CLI's --follow goes on


def test_the_store_copy_keeps_the_files_limit_head_and_tail(any_store, tmp_path):
    run = _queued_run()
    log = _shipping_log(run, limit_bytes=10_000)
    for n in range(20_000):
        log(f"line {n:06d}")
    wait_until(lambda: "is held back" in read_log(run.id)[0], 10, "the live log does not say it holds back")
    log.system("run succeeded")
    log.close()
    copy = tmp_path / "worker-copy.log"
    _without_file(run, copy)
    stored, _ = read_log(run.id)
    assert stored == copy.read_text() and len(stored) < 10_500
    shown = stored.splitlines()
    assert shown[0] == "line 000000" and shown[-2] == "line 019999" and shown[-1].endswith("run succeeded")
    assert sum("of output cut (TRIBUTARY_RUN_LOG_LIMIT_MB)" in s for s in shown) == 1


def test_a_store_that_fails_for_a_while_costs_the_run_nothing_and_gets_the_log_later(any_store, caplog):
    run = _queued_run()
    log = _shipping_log(run)
    log("before the hiccup")
    wait_until(lambda: "before the hiccup" in read_log(run.id)[0], 10, "the first line did not reach the store")
    caplog.set_level(logging.INFO, logger="tributary.runs")
    with get_engine().begin() as con:  # the store loses the table: every flush fails
        con.execute(text("ALTER TABLE run_log_chunks RENAME TO run_log_chunks_away"))
    try:
        for n in range(50):
            log(f"during the hiccup {n}")  # written at once, whatever the store does
        wait_until(lambda: "could not be shipped to the store" in caplog.text, 10, "the worker's log says nothing")
    finally:
        with get_engine().begin() as con:
            con.execute(text("ALTER TABLE run_log_chunks_away RENAME TO run_log_chunks"))
    wait_until(lambda: "during the hiccup 49" in read_log(run.id)[0], 10, "the held lines never reached the store")
    log.close()
    assert caplog.text.count("could not be shipped to the store") == 1  # said once, not every flush
    assert "its log reaches the store again" in caplog.text
    stored = read_log(run.id)[0]
    assert stored == Path(run.log_path).read_text()
    assert stored.count("before the hiccup") == 1  # nothing shipped twice


@pytest.fixture
def worker_process(monkeypatch):
    """This process ships its runs' logs, as core/worker.py makes a worker do."""
    monkeypatch.setattr(log_chunks, "_shipping", threading.Event())
    log_chunks.ship_from_this_process()


SCRIPT = """
from lib import outputStream
for i in range(200):
    print("working on", i)
outputStream.write({"n": 1})
{end}
"""


@pytest.mark.parametrize("end, status, last", [("", "succeeded", "run succeeded: 1 records loaded"),
                                               ("raise SystemExit('out of luck')", "failed", "run failed")])
def test_a_worker_run_seen_ended_has_its_whole_log_in_the_store(tributary, worker_process, end, status, last):
    create_feed(FeedSpec(name="remote", script=SCRIPT.replace("{end}", end)))
    run = create_run("remote", announce=False)
    seen_ended: list[str] = []

    def watch() -> None:  # what a reader elsewhere gets the moment it sees the run ended
        wait_until(lambda: get_run(run.id).status in FINAL_STATUSES, 60, "the run did not end")
        seen_ended.append(read_log(run.id)[0])

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        finished = execute_run(run.id)
    finally:
        watcher.join(timeout=30)
    assert finished.status == status, finished.error
    Path(finished.log_path).unlink()  # the worker's own copy is not what the app reads
    assert seen_ended and "working on 199" in seen_ended[0] and last in seen_ended[0]
    assert read_log(run.id)[0] == seen_ended[0]


def test_log_chunks_go_with_their_run_and_with_their_feed(tributary):
    first, second = _queued_run("kept"), _queued_run("dropped")
    for run in (first, second):
        log = _shipping_log(run)
        log(f"a line of {run.feed_name}")
        log.close()
    with session_scope() as session:
        session.delete(session.get(Run, first.id))  # a run deleted
    cancel_run(second.id)
    delete_feed("dropped")  # a feed deleted, with its run history
    with session_scope() as session:
        assert session.exec(select(func.count()).select_from(RunLogChunk)).one() == 0
