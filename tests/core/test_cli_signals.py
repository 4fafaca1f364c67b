"""Ctrl-C (SIGINT) and SIGTERM sent to a `python -m core.cli run` of a slow feed: the run ends
as cancelled within 5 s, the command exits 128 + the signal's number, and no process of it
(the CLI, its sandbox, what the script started) is left."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_cli import cli, cli_env

# Writes a record, starts a child of its own, then waits far longer than the test.
SLOW = """\
import subprocess, sys, time
from lib import outputStream
outputStream.write({"id": 1})
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
print("waiting", flush=True)
time.sleep(300)
"""


def parent_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            fields = handle.read().rpartition(")")[2].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else int(fields[1])  # a zombie is as good as gone


def descendants(pid: int) -> set[int]:
    parents = {int(p.name): parent_of(int(p.name)) for p in Path("/proc").iterdir() if p.name.isdigit()}
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def script_started(pid: int) -> set[int] | None:
    """The processes under `pid` once the script has started its own child, else None."""
    found = descendants(pid)
    return found if any("time.sleep(300)" in command_line(p) for p in found) else None


def alive(pid: int) -> bool:
    return parent_of(pid) is not None


def poll(condition, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout_s} s waiting for {what}")


def default_sigint() -> None:
    """The CLI as a terminal starts it: SIGINT not ignored (a shell's background job has it
    ignored, and the CLI keeps an ignored signal ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_ends_the_run_as_cancelled_and_leaves_no_process(tmp_path, signum):
    data = tmp_path / "data"
    created = cli(data, "feeds", "create", "slow", "--script", SLOW)
    assert created.returncode == 0, created.stderr
    child = subprocess.Popen([sys.executable, "-m", "core.cli", "--json", "run", "slow"], cwd=tmp_path,
                             env=cli_env(data), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    try:
        # The sandbox and the script's own child are running.
        processes = poll(lambda: script_started(child.pid), 120, "the script and its child to start")
        assert len(processes) >= 2  # the sandbox and the script's child
        child.send_signal(signum)
        sent = time.monotonic()
        stdout, stderr = child.communicate(timeout=5)
        assert time.monotonic() - sent < 5
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 128 + signum, stdout + stderr
    assert "Traceback" not in stderr and "cancelling the run" in stderr
    view = json.loads(stdout)
    assert view["status"] == "cancelled" and view["error"] == "cancelled by a user"
    stored = json.loads(cli(data, "--json", "runs", view["id"]).stdout)
    assert stored["status"] == "cancelled"
    poll(lambda: not [pid for pid in processes if alive(pid)], 5, f"processes {sorted(processes)} to end")
    # The feed is free again.
    assert json.loads(cli(data, "--json", "runs", "--feed", "slow", "--status", "running").stdout) == []


def test_a_signal_during_a_retrys_backoff_cancels_the_retry(tmp_path):
    data = tmp_path / "data"
    created = cli(data, "feeds", "create", "flaky", "--script", "raise RuntimeError('the API is down')",
                  "--retries", "2", "--retry-backoff", "60")
    assert created.returncode == 0, created.stderr
    child = subprocess.Popen([sys.executable, "-m", "core.cli", "run", "flaky"], cwd=tmp_path, env=cli_env(data),
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=default_sigint)
    try:
        line = child.stderr.readline()
        assert "attempt 2 starts after its backoff" in line
        child.send_signal(signal.SIGINT)
        stdout, stderr = child.communicate(timeout=5)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 130, stdout + stderr
    assert "cancelled" in stdout and "attempt 3" not in stderr
    history = json.loads(cli(data, "--json", "runs", "--feed", "flaky").stdout)
    assert sorted((r["attempt"], r["status"]) for r in history) == [(1, "failed"), (2, "cancelled")]
