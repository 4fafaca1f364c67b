"""The Runs page says which worker ran each run, as host and pid (not the raw process id with
its start time), in the table and in the run's detail; a run no worker took shows none."""

import socket

from sqlmodel import update

from core.bootstrap import start_run
from core.feeds import FeedSpec, create_feed
from core.runs import create_run
from storage.db import session_scope
from storage.models import Run
from tests.ui.conftest import texts


def test_the_table_and_the_detail_show_the_worker_of_each_run(app):
    create_feed(FeedSpec(name="orders", script="print(1)"))
    create_feed(FeedSpec(name="refunds", script="print(1)"))
    here = start_run("orders", wait=True)
    elsewhere = start_run("orders", wait=True)
    with session_scope() as session:  # as a worker on another machine records it
        session.execute(update(Run).where(Run.id == elsewhere.id).values(worker="box-b:4242:987654"))
    queued = create_run("refunds", announce=False)

    at = app("runs")
    table = at.dataframe[0].value
    workers = dict(zip(table["Run"], table["Worker"]))
    assert workers[elsewhere.id] == "box-b (pid 4242)"
    assert workers[here.id].startswith(f"{socket.gethostname()} (pid ") and ":" not in workers[here.id]
    assert workers[queued.id] == ""

    detail = texts(app("runs", run=elsewhere.id))
    assert "on worker box-b (pid 4242)" in detail and "987654" not in detail
