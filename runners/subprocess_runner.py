"""The subprocess runners: the script runs in a child process of the app.

`subprocess` (IsolatedSubprocessRunner, the embedded default) starts it in a bubblewrap sandbox
with a cgroup of its own (runners/sandbox.py). `subprocess-unisolated` (SubprocessRunner) starts
it as a plain child process. Either way the child gets a scrubbed environment (an allow-list:
no database URL, no encryption key), its own session (so cancel and timeout kill everything it
started), rlimits (an address space limit where no cgroup holds memory), and a work dir watched
against TRIBUTARY_WORK_DIR_LIMIT_MB. Output is merged, masked and handed to the log sink line by
line (cut at MAX_LINE_BYTES) as it is printed.
"""

from __future__ import annotations

import contextlib
import functools
import os
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from common.secrets import mask
from common.settings import Settings, get_settings
from runners.base import (
    MAX_LINE_BYTES,
    LogSink,
    RunHandle,
    Runner,
    ScriptJob,
    ScriptOutcome,
    WorkDirWatch,
    prepare_work_dir,
    read_outcome,
)
from runners.envs import ensure_environment
from runners.sandbox import (
    SANDBOX_WORK_DIR,
    TMP_SIZE_MB,
    Limits,
    PrivateNetwork,
    RunCgroup,
    SandboxRefused,
    apply_rlimits,
    bwrap_available,
    bwrap_command,
    ca_paths,
    cgroup_name,
    describe_limits,
    private_network,
    python_paths,
    refuse_unisolated,
    rlimits_for,
)

# Variables a script legitimately needs: finding programs, locale, proxies and CA bundles.
ALLOWED_ENV = {
    "PATH", "LANG", "LANGUAGE", "TZ", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy",
    "https_proxy", "no_proxy", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_CA_BUNDLE",
}
KILL_GRACE_S = 3.0
INSTALL_TIMEOUT_S = 3600  # the longest a private network's holder outlives an install whose app died
PROCESS_LIMIT_SIGNS = ("BlockingIOError: [Errno 11]", "can't start new thread")


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


@dataclass
class Launch:
    """How to start one script: the command, and what holds its limits."""

    argv: list[str]
    cwd: Path
    env: dict[str, str]
    rlimits: list = field(default_factory=list)
    cgroup: RunCgroup | None = None
    network: PrivateNetwork | None = None

    def release(self) -> None:
        """What the run held besides its process: its cgroup, its network helper."""
        if self.network is not None:
            self.network.close()
        if self.cgroup is not None:
            self.cgroup.remove()  # whatever the script left running goes with it

    def preexec(self):
        rlimits, cgroup = self.rlimits, self.cgroup

        def apply() -> None:  # runs in the child between fork and exec
            if cgroup is not None:
                cgroup.join_self()
            apply_rlimits(rlimits)

        return apply


class SubprocessHandle(RunHandle):
    def __init__(self, process: subprocess.Popen, job: ScriptJob, on_log: LogSink, started: float,
                 work_dir_limit_mb: int, launch: Launch | None = None, pids_limit: int | None = None):
        self._process = process
        self._job = job
        self._on_log = on_log
        self._started = started
        self._launch = launch
        self._cgroup = launch.cgroup if launch is not None else None
        self._pids_limit = pids_limit
        self._cancelled = threading.Event()
        self._timed_out = False
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()
        self._watch = WorkDirWatch(job.work_dir, work_dir_limit_mb, self._kill_group)

    def sandbox_ref(self) -> str:
        return f"pgid:{self._process.pid}"  # its own session: the group holds all it started

    def _pump(self) -> None:
        stream = self._process.stdout
        try:
            while raw := stream.readline(MAX_LINE_BYTES):  # a line without end is cut here
                line = raw.decode("utf-8", errors="replace").rstrip("\n")
                self._on_log(mask(line, self._job.secrets))
        finally:
            stream.close()

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
            try:
                exit_code = wait_for_exit(self._process, self._job.timeout_s)
            except subprocess.TimeoutExpired:
                self._timed_out = True
                self._kill_group()
                exit_code = self._process.wait()
            self._reader.join(timeout=5)
            outcome = read_outcome(self._job, exit_code, time.monotonic() - self._started)
            return self._explain(outcome)
        finally:
            self._watch.stop()
            if self._launch is not None:
                self._launch.release()

    def _explain(self, outcome: ScriptOutcome) -> ScriptOutcome:
        limit_mb = self._job.memory_limit_mb
        cgroup = self._cgroup
        if self._cancelled.is_set():
            outcome.status, outcome.error = "cancelled", "cancelled by a user"
        elif self._timed_out:
            outcome.status = "timeout"
            outcome.error = f"timed out after {self._job.timeout_s:g} s (the feed's time limit)"
        elif self._watch.exceeded:
            outcome.status, outcome.error = "failed", self._watch.error
        elif cgroup is not None and cgroup.out_of_memory() and not outcome.ok:
            detail = outcome.error or "stopped by the out-of-memory killer"
            outcome.error = f"memory limit of {limit_mb} MB exceeded (a process of the run was stopped by " \
                            f"the out-of-memory killer; {detail})"
        elif outcome.error and outcome.error.startswith("MemoryError"):
            outcome.error = f"memory limit of {limit_mb} MB exceeded ({outcome.error})"
        elif not outcome.ok and outcome.error and (
                (cgroup is not None and cgroup.process_limit_hit())
                or any(sign in outcome.error for sign in PROCESS_LIMIT_SIGNS)):
            outcome.error = f"process limit of {self._pids_limit} exceeded ({outcome.error})"
        return outcome


class SubprocessRunner(Runner):
    """The script as a plain child process of the app (see the module docstring)."""

    name = "subprocess-unisolated"

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or get_settings()

    def limits(self, job: ScriptJob) -> Limits:
        return Limits(memory_mb=job.memory_limit_mb, pids=self.settings.sandbox_pids_limit,
                      cpus=self.settings.sandbox_cpus, work_dir_mb=self.settings.work_dir_limit_mb,
                      timeout_s=job.timeout_s)

    def environment(self, job: ScriptJob, on_log: LogSink) -> str:
        return ensure_environment(self.settings.envs_dir, job.dependencies, on_log,
                                  allow_direct=self.settings.allow_direct_requirements)

    def launch(self, job: ScriptJob, on_log: LogSink) -> Launch:
        if not job.network:
            # Cutting a child's network needs namespaces this runner does not assume it has.
            on_log("[tributary] note: the subprocess-unisolated runner cannot take the network away; "
                   "use the subprocess or docker runner for feeds that must run without network")
        python = self.environment(job, on_log)
        # An address-space limit per process and a cap on a file's size, as this runner always had:
        # no process or CPU-time rlimits (RLIMIT_NPROC would count every process of the user's).
        return Launch([python, "-u", "_tributary_boot.py"], job.work_dir, scrubbed_environment(job),
                      rlimits_for(self.limits(job), {"pids", "cpu"}))

    def start(self, job: ScriptJob, on_log: LogSink) -> RunHandle:
        prepare_work_dir(job)
        launch = self.launch(job, on_log)
        process = None
        try:
            if launch.cgroup is not None:
                launch.cgroup.open_procs()
            started = time.monotonic()
            process = subprocess.Popen(
                launch.argv,
                cwd=launch.cwd,
                env=launch.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=launch.preexec(),
            )
            if launch.cgroup is not None:
                launch.cgroup.close_procs()
        except BaseException:
            if process is not None:
                _kill_session(process)
            launch.release()
            raise
        return SubprocessHandle(process, job, on_log, started, self.settings.work_dir_limit_mb, launch,
                                self.settings.sandbox_pids_limit)


def _kill_session(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()
    if process.stdout is not None:
        process.stdout.close()


class IsolatedSubprocessRunner(SubprocessRunner):
    """The embedded default: the script in a bubblewrap sandbox with a cgroup of its own
    (runners/sandbox.py). Without bubblewrap it runs unisolated and its log says so, unless a
    login is configured: then it refuses, unless TRIBUTARY_ALLOW_UNISOLATED=1."""

    name = "subprocess"

    def check(self) -> None:
        bwrap, _, problem = bwrap_available(self.settings)
        if bwrap is None:
            refuse_unisolated(self.settings, problem)

    def environment(self, job: ScriptJob, on_log: LogSink) -> str:
        bwrap, userns, _ = bwrap_available(self.settings)
        slirp, _ = private_network(self.settings)
        wrap = None if bwrap is None else functools.partial(install_command, bwrap, userns, slirp)
        return ensure_environment(self.settings.envs_dir, job.dependencies, on_log,
                                  allow_direct=self.settings.allow_direct_requirements, wrap=wrap)

    def launch(self, job: ScriptJob, on_log: LogSink) -> Launch:
        bwrap, userns, problem = bwrap_available(self.settings)
        if bwrap is None:
            refuse_unisolated(self.settings, problem)
            on_log(f"sandbox: not isolated: {problem}")
            return super().launch(job, on_log)
        slirp, network_problem = private_network(self.settings)
        if network_problem and job.network:
            raise SandboxRefused(f"sandbox: {network_problem}")  # fail closed: no host network instead
        limits = self.limits(job)
        cgroup = RunCgroup.create(cgroup_name(job.run_id), limits.memory_mb, limits.pids, limits.cpus)
        controllers = cgroup.controllers if cgroup is not None else set()
        launch = Launch([], job.work_dir, {}, rlimits_for(limits, controllers), cgroup)
        who = "runs as nobody (user namespace)" if userns else "runs as the app's user, no capabilities"
        network = "off" if not job.network else (
            "on (its own, through slirp4netns: the host's loopback is out of reach)" if slirp else
            "on (the host's, its loopback included)")
        on_log("sandbox: bubblewrap; " + "; ".join(describe_limits(limits, controllers))
               + f"; /tmp {TMP_SIZE_MB} MB; network {network}; {who}")
        try:
            python = self.environment(job, on_log)
            env = scrubbed_environment(job)
            env["HOME"] = SANDBOX_WORK_DIR
            prefix: list[str] = []
            if slirp and job.network:  # bwrap joins the run's own network instead of the host's
                launch.network = PrivateNetwork(slirp, self.settings.data_dir / "sandbox")
                prefix = launch.network.open(job.timeout_s + KILL_GRACE_S + 60)
            launch.argv = prefix + bwrap_command(
                bwrap, userns, [python, "-u", f"{SANDBOX_WORK_DIR}/_tributary_boot.py"],
                rw=[(str(job.work_dir.resolve()), SANDBOX_WORK_DIR)],
                ro=[*python_paths(python), *ca_paths(env)], env=env, network=job.network,
                chdir=SANDBOX_WORK_DIR, extra=launch.network.bwrap_args if launch.network else None)
        except BaseException:
            launch.release()
            raise
        # Only bwrap itself sees this environment (the script gets --setenv's): keep it bare.
        launch.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
        return launch


@contextlib.contextmanager
def install_command(bwrap: str, userns: bool, slirp: str | None, argv: list[str], env_dir: Path,
                    env: dict[str, str]) -> Iterator[list[str]]:
    """A dependency install's command, in a sandbox: network on (a private one, given slirp),
    the environment being built read-write, the app's interpreter read-only, nothing of the data
    dir besides."""
    network = PrivateNetwork(slirp, env_dir / ".install-cache") if slirp else None
    try:
        prefix = network.open(INSTALL_TIMEOUT_S) if network is not None else []
        yield prefix + bwrap_command(
            bwrap, userns, argv, rw=[(str(env_dir), str(env_dir))],
            ro=[*python_paths(sys.executable), *ca_paths(env), *[Path(p) for p in argv[:1]]],
            env=env, network=True, chdir=str(env_dir), extra=network.bwrap_args if network is not None else None)
    finally:
        if network is not None:
            network.close()
