"""The docker runner: each script runs in a container of its own on a Docker engine.

The container sees one directory of the host, the run's work dir, mounted at /work (script,
lib, input, the connection's auth material, the spool it writes): not the data dir, the store,
the encryption key or other feeds' work dirs. Its root filesystem is read-only (a small tmpfs
for /tmp), every capability is dropped, privileges cannot be regained (no-new-privileges), and
memory (with no swap), CPU and the number of processes are capped. The environment is built
from scratch: none of the app's variables enter it.

User: when the app runs as root, the work dir is handed to the image's unprivileged user
(uid 10001) and the script runs as that user; otherwise it runs as the app's own uid, which
already owns the work dir. Either way the script is not root, and the app can read and delete
what it wrote.

Network: a feed with network access joins settings.docker_network, "bridge" by default. On the
bridge a script reaches the internet but not the host's loopback, where a local PostgreSQL
store or the app itself (which trusts loopback clients when no login is configured) may listen.
"host" shares the host's network: simplest for APIs served on the host, at the cost of that
protection. A feed with no network runs with "none".
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import docker
import requests
from docker.errors import DockerException, NotFound
from docker.types import LogConfig

from common.errors import TributaryError
from common.secrets import mask
from common.settings import Settings, get_settings
from common.process import worker_id
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
from runners.docker_engine import (
    OWNER_LABEL,
    RUN_LABEL,
    SANDBOX_LABEL,
    client,
    ping,
    remove_leftovers_once,
)
from runners.docker_images import base_image, ensure_image, remove_stale_images, remove_unused_images

SANDBOX_UID = 10001  # the `tributary` user of docker/Dockerfile
CONTAINER_WORK_DIR = "/work"
CONTAINER_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
CA_COPY_NAME = ".ca-bundle.crt"
TMPFS_SIZE = "64m"
# The container stops itself this long after the time limit, should the app that enforces the
# limit have died: an orphan does not run for ever (the next start-up removes it).
SELF_STOP_GRACE_S = 30
PROXY_ENV = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")
PROCESS_LIMIT_SIGNS = ("BlockingIOError: [Errno 11]", "can't start new thread")


def ca_bundle(settings: Settings) -> Path | None:
    raw = settings.docker_ca_bundle.strip()
    if raw in ("", "none"):
        return None
    path = Path(raw)
    if not path.is_file():
        raise TributaryError(
            f"the CA bundle {raw} for Docker builds and containers does not exist (set "
            "TRIBUTARY_DOCKER_CA_BUNDLE to a file, or to none; unset, it follows REQUESTS_CA_BUNDLE "
            "or SSL_CERT_FILE)"
        )
    return path.resolve()


def copy_ca_bundle(ca: Path, work_dir: Path) -> Path:
    """The run's own readable copy of the CA bundle, mounted read-only over the container's.
    The configured file may be readable by its owner only (the app's umask is 077), and the
    script runs as another user: a CA bundle is public, so the copy is 0644."""
    copy = work_dir / CA_COPY_NAME
    shutil.copyfile(ca, copy)
    copy.chmod(0o644)
    return copy


def proxy_environment() -> dict[str, str]:
    return {name: os.environ[name] for name in PROXY_ENV if os.environ.get(name)}


def container_environment(with_ca: bool) -> dict[str, str]:
    env = proxy_environment()
    env.update(
        HOME=CONTAINER_WORK_DIR,
        LANG="C.UTF-8",
        PYTHONUNBUFFERED="1",
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONNOUSERSITE="1",
        PYTHONIOENCODING="utf-8",
    )
    if os.environ.get("TZ"):
        env["TZ"] = os.environ["TZ"]
    if with_ca:
        # requests and pip in the image's virtual environment carry their own bundle (certifi);
        # these make them use the host's one too.
        env.update(REQUESTS_CA_BUNDLE=CONTAINER_CA_BUNDLE, SSL_CERT_FILE=CONTAINER_CA_BUNDLE,
                   PIP_CERT=CONTAINER_CA_BUNDLE)
    return env


def sandbox_user(work_dir: Path) -> str:
    """The uid:gid the script runs as (see the module docstring)."""
    if os.getuid() != 0:
        return f"{os.getuid()}:{os.getgid()}"
    for path in [work_dir, *work_dir.rglob("*")]:
        os.lchown(path, SANDBOX_UID, SANDBOX_UID)
    return f"{SANDBOX_UID}:{SANDBOX_UID}"


def container_options(job: ScriptJob, settings: Settings, user: str, ca: Path | None) -> dict:
    memory = f"{job.memory_limit_mb}m"
    volumes = {str(job.work_dir.resolve()): {"bind": CONTAINER_WORK_DIR, "mode": "rw"}}
    if ca is not None:
        volumes[str(ca)] = {"bind": CONTAINER_CA_BUNDLE, "mode": "ro"}
    return {
        "command": ["timeout", "--signal=KILL", f"{job.timeout_s + SELF_STOP_GRACE_S:g}",
                    "python", "-u", f"{CONTAINER_WORK_DIR}/_tributary_boot.py"],
        "working_dir": CONTAINER_WORK_DIR,
        "user": user,
        "environment": container_environment(ca is not None),
        "volumes": volumes,
        "labels": {SANDBOX_LABEL: "1", OWNER_LABEL: worker_id(), RUN_LABEL: job.run_id,
                   "tributary.feed": job.feed_name},
        "mem_limit": memory,
        "memswap_limit": memory,  # the same figure as memory: no swap on top
        "nano_cpus": int(settings.docker_cpus * 1e9),
        "pids_limit": settings.docker_pids_limit,
        "network_mode": settings.docker_network if job.network else "none",
        "read_only": True,
        "tmpfs": {"/tmp": f"rw,nosuid,nodev,size={TMPFS_SIZE}"},
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        # Logs are read back while the container runs, whatever the engine's default driver is.
        "log_config": LogConfig(type=LogConfig.types.JSON),
        "stdin_open": False,
        "tty": False,
    }


def _engine_refused(exc: DockerException) -> TributaryError:
    detail = getattr(exc, "explanation", None) or str(exc)
    return TributaryError(f"the Docker engine refused to run the script's container: {detail}")


class DockerHandle(RunHandle):
    def __init__(self, engine: docker.DockerClient, streaming: docker.DockerClient, container_id: str,
                 job: ScriptJob, settings: Settings, on_log: LogSink, started: float):
        self._engine = engine
        self._streaming = streaming
        self._id = container_id
        self._job = job
        self._settings = settings
        self._on_log = on_log
        self._started = started
        self._cancelled = threading.Event()
        self._timed_out = threading.Event()
        self._removed = False
        self._reader = threading.Thread(target=self._pump, name=f"logs-{job.run_id}", daemon=True)
        self._reader.start()
        self._timer = threading.Timer(job.timeout_s, self._on_timeout)
        self._timer.daemon = True
        self._timer.start()
        self._watch = WorkDirWatch(job.work_dir, settings.work_dir_limit_mb, self._kill)

    def sandbox_ref(self) -> str:
        return f"container:{self._id}"

    def _emit(self, raw: bytes) -> None:
        line = raw.decode("utf-8", errors="replace").rstrip("\r")
        self._on_log(mask(line, self._job.secrets))

    def _pump(self) -> None:
        pending = b""
        try:
            for chunk in self._streaming.api.logs(self._id, stream=True, follow=True):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for raw in lines:
                    self._emit(raw)
                while len(pending) >= MAX_LINE_BYTES:
                    self._emit(pending[:MAX_LINE_BYTES])
                    pending = pending[MAX_LINE_BYTES:]
        except (DockerException, requests.RequestException):
            pass  # the container is gone or the engine went away: wait() reports which
        if pending:
            self._emit(pending)

    def _kill(self) -> bool:
        """Kill the container; False when it was no longer running."""
        try:
            self._engine.api.kill(self._id)
            return True
        except (DockerException, requests.RequestException):
            return False

    def _on_timeout(self) -> None:
        if self._kill():
            self._timed_out.set()

    def cancel(self) -> None:
        self._cancelled.set()
        self._kill()

    def _out_of_memory(self) -> bool:
        try:
            return bool(self._engine.api.inspect_container(self._id)["State"].get("OOMKilled"))
        except (DockerException, requests.RequestException):
            return False

    def _remove(self) -> None:
        if self._removed:
            return
        try:
            self._engine.api.remove_container(self._id, force=True)
        except NotFound:
            pass
        except (DockerException, requests.RequestException):
            return  # the engine is away: the next start-up's clean-up removes it
        self._removed = True

    def wait(self) -> ScriptOutcome:
        lost: Exception | None = None
        try:
            exit_code = self._streaming.api.wait(self._id).get("StatusCode")
        except (DockerException, requests.RequestException) as exc:
            lost, exit_code = exc, None
            self._kill()
        finally:
            self._timer.cancel()
            self._timer.join()  # a timeout that fired has finished marking itself
            self._watch.stop()
        self._reader.join(timeout=5)
        out_of_memory = self._out_of_memory()
        self._remove()
        outcome = read_outcome(self._job, exit_code, time.monotonic() - self._started)
        return self._explain(outcome, out_of_memory, lost)

    def _explain(self, outcome: ScriptOutcome, out_of_memory: bool, lost: Exception | None) -> ScriptOutcome:
        limit_mb = self._job.memory_limit_mb
        if self._cancelled.is_set():
            outcome.status, outcome.error = "cancelled", "cancelled by a user"
        elif self._timed_out.is_set():
            outcome.status = "timeout"
            outcome.error = f"timed out after {self._job.timeout_s:g} s (the feed's time limit)"
        elif self._watch.exceeded:
            outcome.status, outcome.error = "failed", self._watch.error
        elif lost is not None:
            outcome.status = "failed"
            outcome.error = f"lost contact with the Docker engine during the run: {lost}"
        elif out_of_memory and not outcome.ok:
            outcome.status = "failed"
            outcome.error = f"memory limit of {limit_mb} MB exceeded (stopped by the out-of-memory killer)"
        elif outcome.error and outcome.error.startswith("MemoryError"):
            outcome.error = f"memory limit of {limit_mb} MB exceeded ({outcome.error})"
        elif outcome.error and any(sign in outcome.error for sign in PROCESS_LIMIT_SIGNS):
            outcome.error = f"process limit of {self._settings.docker_pids_limit} exceeded ({outcome.error})"
        return outcome


class DockerRunner(Runner):
    name = "docker"

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or get_settings()

    def check(self) -> None:
        """Raise a TributaryError when the engine is unreachable or the runner image missing."""
        base_image(ping(), self.settings)
        ca_bundle(self.settings)

    def start(self, job: ScriptJob, on_log: LogSink) -> RunHandle:
        engine = ping()
        streaming = client(streaming=True)
        remove_leftovers_once(engine)
        ca = ca_bundle(self.settings)
        prepare_work_dir(job)
        image = ensure_image(engine, streaming, self.settings, job.dependencies, ca, proxy_environment(), on_log)
        run_ca = copy_ca_bundle(ca, job.work_dir) if ca is not None else None
        options = container_options(job, self.settings, sandbox_user(job.work_dir), run_ca)
        try:
            container = engine.containers.create(image, **options)
        except (DockerException, requests.RequestException) as exc:
            raise _engine_refused(exc) from exc
        try:
            started = time.monotonic()
            container.start()
        except (DockerException, requests.RequestException) as exc:
            container.remove(force=True)
            raise _engine_refused(exc) from exc
        return DockerHandle(engine, streaming, container.id, job, self.settings, on_log, started)


def remove_leftovers() -> list[str]:
    """For the app's start-up: remove the containers of runs whose app process died (killed
    mid-run, it could not). Returns their run ids; raises DockerUnavailable without an engine.
    The first run of a process does the same, so the CLI cleans up too."""
    return remove_leftovers_once(ping())


def remove_old_images(named: list[list[str]] | None = None) -> list[str]:
    """For the app's start-up: remove the dependency images an earlier base image left (see
    remove_stale_images) and, given the dependency sets feeds and drafts name, those of the
    current base that nothing named or used for two weeks (remove_unused_images); their tags.
    Raises DockerUnavailable without an engine."""
    engine, settings = ping(), get_settings()
    removed = remove_stale_images(engine, settings)
    if named is not None:
        removed += remove_unused_images(engine, settings, named)
    return removed
