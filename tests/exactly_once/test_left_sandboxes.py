"""A process that dies (kill -9) takes its run's script with it: where the script could outlive
it (the unisolated runner's own session), the next process's recovery kills the process group
the run recorded before it settles the run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from core.feeds import FeedSpec, create_feed
from core.runs import get_run, list_runs
from tests.helpers import wait_until
from tests.test_cli import cli, cli_env

MARKER = "tributary-left-sandbox-marker"
SLOW = ("import subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)  # {MARKER}'])\n"
        "time.sleep(300)\n")


def _marked() -> list[str]:
    return subprocess.run(["pgrep", "-f", MARKER], capture_output=True, text=True).stdout.split()


def test_the_next_command_kills_the_script_a_killed_cli_left_running(tributary, monkeypatch):
    monkeypatch.setenv("TRIBUTARY_RUNNER", "subprocess-unisolated")
    create_feed(FeedSpec(name="slow", script=SLOW))
    env = {**cli_env(tributary), "TRIBUTARY_RUNNER": "subprocess-unisolated"}
    process = subprocess.Popen([sys.executable, "-m", "core.cli", "run", "slow"], cwd=tributary.parent, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(_marked, 60, "the script did not start")
        [run] = list_runs("slow")
        wait_until(lambda: get_run(run.id).sandbox_ref, 10, "the run recorded no sandbox")
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
        assert _marked(), "the script died with the CLI: this runner's script has a session of its own"

        monkeypatch.setenv("TRIBUTARY_RUNNER", "subprocess-unisolated")
        assert cli(tributary, "runs").returncode == 0  # any command recovers first

        wait_until(lambda: not _marked(), 10, "the script outlived its run's recovery")
        assert get_run(run.id).status == "failed"
    finally:
        if process.poll() is None:
            process.kill()
        for pid in _marked():
            os.kill(int(pid), signal.SIGKILL)
