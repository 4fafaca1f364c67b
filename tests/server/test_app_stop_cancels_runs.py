"""The app stopping (SIGTERM, or Ctrl-C in its terminal) cancels the runs it executes: they
end `cancelled` with their sandboxes gone, instead of being found "interrupted" at the next
start."""

from __future__ import annotations

import signal
import subprocess

import pytest

from core.feeds import FeedSpec, create_feed
from core.runs import create_run, get_run
from tests.helpers import wait_until
from tests.ui.server import start_server

MARKER = "tributary-stop-test-marker"
# The script's child carries the marker on its command line, where pgrep finds it.
SLOW = ("import subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)  # {MARKER}'])\n"
        "time.sleep(300)\n")


def _processes_with(marker: str) -> list[str]:
    found = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()
    return found


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_stopping_the_app_cancels_its_running_runs(tributary, stop):
    server = start_server(tributary, {"TRIBUTARY_DEMO_API": "0"})
    try:
        create_feed(FeedSpec(name="slow", script=SLOW))
        run = create_run("slow")  # queued in the store: the app's dispatcher takes it
        wait_until(lambda: get_run(run.id).status == "running", 60, "the app did not start the run")
        wait_until(lambda: _processes_with(MARKER), 30, "the script did not start")

        server.process.send_signal(stop)
        server.process.wait(timeout=30)

        ended = get_run(run.id)
        assert ended.status == "cancelled", (ended.status, ended.error, server.log()[-2000:])
        wait_until(lambda: not _processes_with(MARKER), 10, "the script outlived the app")
    finally:
        if server.process.poll() is None:
            server.stop()
