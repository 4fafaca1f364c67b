"""wait_for_exit: the subprocess runner's wait for its script's process."""

from __future__ import annotations

import subprocess
import sys

import pytest

from runners.subprocess_runner import wait_for_exit


def test_returns_the_exit_code_of_the_process():
    process = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(3)"])
    assert wait_for_exit(process, timeout_s=60) == 3
    assert process.returncode == 3  # reaped: no zombie left behind


def test_a_process_outliving_the_timeout_raises_and_keeps_running():
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            wait_for_exit(process, timeout_s=0.2)
        assert process.poll() is None  # the caller decides: the runner kills it and reports a timeout
    finally:
        process.kill()
        process.wait()


def test_a_process_already_reaped_still_reports_its_exit_code():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    assert wait_for_exit(process, timeout_s=5) == 0
