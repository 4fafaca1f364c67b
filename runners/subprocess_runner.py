"""The embedded default runner: the script runs in a child process of its own.

The child gets a scrubbed environment (an allow-list: no database URL, no encryption key),
its own session (so cancel and timeout kill everything it started), and an address-space
limit. Output is merged, masked and handed to the log sink line by line as it is printed.
"""

from __future__ import annotations

import os
import resource
import select
import signal
import subprocess
import threading
import time

from common.secrets import mask
from common.settings import Settings, get_settings
from runners.base import LogSink, RunHandle, Runner, ScriptJob, ScriptOutcome, prepare_work_dir, read_outcome
from runners.envs import ensure_environment

# Variables a script legitimately needs: finding programs, locale, proxies and CA bundles.
ALLOWED_ENV = {
    "PATH", "LANG", "LANGUAGE", "TZ", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy",
    "https_proxy", "no_proxy", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_CA_BUNDLE",
}
KILL_GRACE_S = 3.0


def scrubbed_environment(job: ScriptJob) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in ALLOWED_ENV or k.startswith("LC_")}
    env.update(
        HOME=str(job.work_dir),
        PYTHONUNBUFFERED="1",
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONNOUSERSITE="1",
        PYTHONIOENCODING="utf-8",
    )
    return env


def wait_for_exit(process: subprocess.Popen, timeout_s: float) -> int:
    """The process's exit code, once it ends; TimeoutExpired after timeout_s.

    Popen.wait(timeout) sleeps between checks (up to 50 ms), so a run would notice its script
    ending up to that late. A pidfd becomes readable the moment the process ends."""
    if process.poll() is not None:  # already ended (and reaped): its pid may belong to another process now
        return process.returncode
    try:
        pidfd = os.pidfd_open(process.pid)
    except (AttributeError, OSError):  # not Linux 5.3 or later
        return process.wait(timeout=timeout_s)
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if not poller.poll(max(0, int(timeout_s * 1000))):
            raise subprocess.TimeoutExpired(process.args, timeout_s)
    finally:
        os.close(pidfd)
    return process.wait()


def _limit_memory(limit_mb: int):
    def apply() -> None:  # runs in the child between fork and exec
        limit = limit_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


class SubprocessHandle(RunHandle):
    def __init__(self, process: subprocess.Popen, job: ScriptJob, on_log: LogSink, started: float):
        self._process = process
        self._job = job
        self._on_log = on_log
        self._started = started
        self._cancelled = threading.Event()
        self._timed_out = False
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        for raw in self._process.stdout:
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            self._on_log(mask(line, self._job.secrets))

    def _kill_group(self) -> None:
        try:
            os.killpg(self._process.pid, signal.SIGTERM)
            self._process.wait(timeout=KILL_GRACE_S)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        # The script may have left children behind in its session: take them down too.
        try:
            os.killpg(self._process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def cancel(self) -> None:
        self._cancelled.set()
        self._kill_group()

    def wait(self) -> ScriptOutcome:
        try:
            exit_code = wait_for_exit(self._process, self._job.timeout_s)
        except subprocess.TimeoutExpired:
            self._timed_out = True
            self._kill_group()
            exit_code = self._process.wait()
        self._reader.join(timeout=5)
        outcome = read_outcome(self._job, exit_code, time.monotonic() - self._started)
        return self._explain(outcome)

    def _explain(self, outcome: ScriptOutcome) -> ScriptOutcome:
        if self._cancelled.is_set():
            outcome.status, outcome.error = "cancelled", "cancelled by a user"
        elif self._timed_out:
            outcome.status = "timeout"
            outcome.error = f"timed out after {self._job.timeout_s:g} s (the feed's time limit)"
        elif outcome.error and outcome.error.startswith("MemoryError"):
            outcome.error = f"memory limit of {self._job.memory_limit_mb} MB exceeded ({outcome.error})"
        return outcome


class SubprocessRunner(Runner):
    name = "subprocess"

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or get_settings()

    def start(self, job: ScriptJob, on_log: LogSink) -> RunHandle:
        prepare_work_dir(job)
        if not job.network:
            # Cutting a child's network needs namespaces this runner does not assume it has.
            on_log("[tributary] note: the subprocess runner cannot take the network away; "
                   "use the docker runner for feeds that must run without network")
        python = ensure_environment(self.settings.envs_dir, job.dependencies, on_log)
        started = time.monotonic()
        process = subprocess.Popen(
            [python, "-u", "_tributary_boot.py"],
            cwd=job.work_dir,
            env=scrubbed_environment(job),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_limit_memory(job.memory_limit_mb),
        )
        return SubprocessHandle(process, job, on_log, started)
