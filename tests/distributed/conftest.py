"""Fixtures of the distributed tests: a redis-server of the test's own on a free port, a
PostgreSQL store and a PostgreSQL warehouse (each a fresh database), worker processes
(`python -m core.worker`, each with its own data dir and working directory), and a hit counter
that feed scripts call over HTTP, so that a test can count how often each script executed.

This test process plays the app: its settings choose the celery executor, and a test that
wants the dispatcher builds bootstrap's background services.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

import pytest
from cryptography.fernet import Fernet

from tests.conftest import _isolate, _postgres_admin, missing_service
from tests.helpers import wait_until

ROOT = Path(__file__).resolve().parents[2]
WORKER_CONCURRENCY = 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture
def redis_url(tmp_path):
    """A redis-server of this test's own, on a free port, keeping nothing on disk."""
    program = shutil.which("redis-server")
    if program is None:
        missing_service("Redis: redis-server is not installed (Debian: apt-get install redis-server)")
    port = _free_port()
    server = subprocess.Popen([program, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                               "--appendonly", "no", "--dir", str(tmp_path)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: _answers(port) or server.poll() is not None, 10, "redis-server did not start")
        if server.poll() is not None:
            missing_service(f"Redis: redis-server exited at once ({server.returncode}) on port {port}")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def warehouse_url():
    """A second fresh PostgreSQL database: the warehouse, apart from the store."""
    admin = _postgres_admin()
    name = f"tributary_wh_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{_base_url()}/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _base_url() -> str:
    from tests.conftest import POSTGRES_ADMIN_URL

    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0]


class TextServer:
    """A local HTTP server whose GET answers are `answer(path)`'s text, each in a thread."""

    def __init__(self, answer: Callable[[str], str]):
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the http.server API
                body = answer(self.path.strip("/")).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class HitCounter(TextServer):
    """Counts GET /<name> requests (each feed script calls it once as it starts), and answers
    with the count: the script of a name's first run can tell it is the first."""

    def __init__(self):
        self.hits: Counter = Counter()
        self.lock = threading.Lock()
        super().__init__(self._hit)

    def _hit(self, name: str) -> str:
        with self.lock:
            self.hits[name] += 1
            return str(self.hits[name])


@pytest.fixture
def hit_counter():
    counter = HitCounter()
    yield counter
    counter.close()


@dataclass
class Worker:
    process: subprocess.Popen
    data_dir: Path
    log_path: Path
    apart: bool = False  # on a machine of its own (Apart)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def pid(self) -> int:
        return self.process.pid


@dataclass
class Cluster:
    broker_url: str
    store_url: str
    warehouse_url: str
    data_dir: Path
    root: Path
    workers: list[Worker] = field(default_factory=list)
    machines: list = field(default_factory=list)

    def reach(self, url: str) -> str:
        """A URL of this host (a test's HTTP server) as the workers reach it: through the
        slirp4netns gateway when they are on machines of their own."""
        return Machine.address(url) if any(w.apart for w in self.workers) else url

    def logs(self) -> str:
        return "\n".join(f"--- worker {w.pid} ---\n{w.log()[-6000:]}" for w in self.workers)

    def start_worker(self, hostname: str | Apart | None = None) -> Worker:
        return start_worker(self, self.root / f"worker{len(self.workers) + 1}", hostname)

    def worker_of(self, worker_id: str | None) -> Worker | None:
        """The worker process named by a run's worker column (host:pid:start)."""
        pid = (worker_id or "").split(":")[1:2]
        return next((w for w in self.workers if pid and str(w.pid) == pid[0]), None)


@pytest.fixture
def cluster_hosts() -> tuple[str | Apart | None, ...]:
    """The workers the cluster starts: each on this host (None), under another host name, or
    on a machine of its own (Apart)."""
    return (None, None)


@dataclass(frozen=True)
class Apart:
    """A worker on a machine of its own, as far as this host allows (root, util-linux,
    slirp4netns): a host name, a mount namespace in which the cluster's folders (the app's data
    dir, the other workers' homes) are hidden but its own home, and a network namespace of its
    own that reaches this host only through slirp4netns's gateway (SLIRP_HOST), the way
    another machine reaches the store, the broker and the warehouse by their address."""

    hostname: str


SLIRP_HOST = "10.0.2.2"  # this host, from inside a slirp4netns network


def _as_host(hostname: str | None) -> list[str]:
    """The command prefix that starts a worker under another host name: a UTS namespace of its
    own (root, util-linux's unshare), so that its worker ids are another host's."""
    if hostname is None:
        return []
    unshare = shutil.which("unshare")
    probe = subprocess.run([unshare or "unshare", "--uts", "true"], capture_output=True) if unshare else None
    if probe is None or probe.returncode != 0:
        missing_service("a worker of another host needs `unshare --uts` (util-linux, as root)")
    return [unshare, "--uts", "sh", "-c", f'hostname "{hostname}" && exec "$0" "$@"']


class Machine:
    """The namespaces of an Apart worker: a holder process owns the UTS and network namespaces
    (so that they outlive a worker killed with -9, as a machine outlives its processes), and
    slirp4netns connects the network. The worker joins them with nsenter and hides, in a mount
    namespace of its own, everything of the cluster but its home."""

    def __init__(self, apart: Apart, cluster_root: Path, home: Path):
        self.apart, self.root, self.home = apart, cluster_root, home
        tools = {name: shutil.which(name) for name in ("unshare", "nsenter", "slirp4netns")}
        if not all(tools.values()):
            missing_service("a worker on a machine of its own needs unshare, nsenter (util-linux) and slirp4netns "
                            "(apt-get install slirp4netns)")
        self.tools = tools
        self.holder = subprocess.Popen([tools["unshare"], "--net", "--uts", "--", "sleep", "3600"],
                                       start_new_session=True)
        self.slirp = None
        wait_until(self._made, 10, "unshare --net --uts did not make the namespaces")
        ready_r, ready_w = os.pipe()
        self.slirp = subprocess.Popen([tools["slirp4netns"], "--configure", "--mtu=65520", f"--ready-fd={ready_w}",
                                       str(self.holder.pid), "tap0"], pass_fds=(ready_w,),
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        os.close(ready_w)
        with os.fdopen(ready_r, "rb") as ready:
            connected = ready.read(1) == b"1"
        if not connected:
            self.close()
            missing_service("slirp4netns could not connect a worker's network namespace")
        subprocess.run([*self.enter(), "hostname", apart.hostname], check=True)

    def _made(self) -> bool:
        try:
            return os.readlink(f"/proc/{self.holder.pid}/ns/net") != os.readlink("/proc/self/ns/net")
        except OSError:
            return False

    def enter(self) -> list[str]:
        pid = self.holder.pid
        return [self.tools["nsenter"], f"--net=/proc/{pid}/ns/net", f"--uts=/proc/{pid}/ns/uts", "--"]

    def prefix(self) -> list[str]:
        """Join the machine, then hide the cluster's folders but this worker's home: bind the
        home aside, cover the cluster's root with an empty tmpfs, and put the home back."""
        hide = (f'set -e; mount --bind "{self.home}" /mnt; mount -t tmpfs tmpfs "{self.root}"; '
                f'mkdir -p "{self.home}"; mount --move /mnt "{self.home}"; cd "{self.home}"; exec "$0" "$@"')
        return [*self.enter(), self.tools["unshare"], "--mount", "--propagation", "private", "sh", "-c", hide]

    @staticmethod
    def address(value: str) -> str:
        """A setting that names this host's loopback, as the machine reaches it."""
        return value.replace("@127.0.0.1:", f"@{SLIRP_HOST}:").replace("//127.0.0.1:", f"//{SLIRP_HOST}:")

    def close(self) -> None:
        for process in (self.slirp, self.holder):
            if process is not None and process.poll() is None:
                process.kill()
            if process is not None:
                process.wait()


def start_worker(cluster: Cluster, home: Path, hostname: str | Apart | None = None) -> Worker:
    """`python -m core.worker` in a folder of its own (its working directory and data dir)."""
    home.mkdir(parents=True)
    env = dict(os.environ, TRIBUTARY_DATA_DIR=str(home / "data"),
               TRIBUTARY_MAX_CONCURRENT_RUNS=str(WORKER_CONCURRENCY),
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    machine = None
    if isinstance(hostname, Apart):
        machine = Machine(hostname, cluster.root, home)
        cluster.machines.append(machine)
        env = {key: machine.address(value) if key.startswith("TRIBUTARY_") else value for key, value in env.items()}
        prefix = machine.prefix()
    else:
        prefix = _as_host(hostname)
    log_path = home / "worker.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([*prefix, sys.executable, "-m", "core.worker"], cwd=home, env=env,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    worker = Worker(process, home / "data", log_path, apart=machine is not None)
    cluster.workers.append(worker)
    wait_until(lambda: " ready." in worker.log() or process.poll() is not None, 60,
               lambda: f"worker {worker.pid} did not start:\n{worker.log()}")
    assert process.poll() is None, f"worker {worker.pid} exited:\n{worker.log()}"
    return worker


def stop_workers(workers: list[Worker]) -> None:
    for worker in workers:
        if worker.process.poll() is None:
            worker.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    for worker in workers:
        try:
            worker.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.process.pid, signal.SIGKILL)
            worker.process.wait()


@pytest.fixture
def cluster(monkeypatch, tmp_path, redis_url, postgres_url, warehouse_url, cluster_hosts):
    """This process as the app (the celery executor, a PostgreSQL store and warehouse) and the
    workers of `cluster_hosts` (two on this host by default)."""
    data = _isolate(monkeypatch, tmp_path, postgres_url)
    env = {
        "TRIBUTARY_EXECUTOR": "celery", "TRIBUTARY_CELERY_BROKER_URL": redis_url,
        "TRIBUTARY_WAREHOUSE": "postgres", "TRIBUTARY_POSTGRES_URL": warehouse_url,
        "TRIBUTARY_SECRET_KEY": Fernet.generate_key().decode(),
        "TRIBUTARY_HEARTBEAT_S": "1", "TRIBUTARY_MAX_CONCURRENT_RUNS": "4",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    cluster = Cluster(broker_url=redis_url, store_url=postgres_url, warehouse_url=warehouse_url, data_dir=data,
                      root=tmp_path)
    # The store exists, migrated, before the workers start (they would race to create it).
    from core import bootstrap

    bootstrap.build().start()
    try:
        for hostname in cluster_hosts:
            cluster.start_worker(hostname)
        yield cluster
    finally:
        stop_workers(cluster.workers)
        for machine in cluster.machines:
            machine.close()


def what_it_shares(cluster: Cluster, worker: Worker) -> dict:
    """What a worker sees of this host, looked at from inside its namespaces (nsenter into its
    process): the app's data dir, the other workers' homes, the host's loopback (the store's
    port 5432 on 127.0.0.1, which it must reach by the host's address instead)."""
    others = [str(w.data_dir.parent) for w in cluster.workers if w is not worker]
    probe = ("import os, socket, sys, json\n"
             "def seen(path): return os.path.exists(path)\n"
             "def reaches(port):\n"
             "    try: socket.create_connection(('127.0.0.1', port), timeout=1).close(); return True\n"
             "    except OSError: return False\n"
             "print(json.dumps({'app data dir': seen(sys.argv[1]), 'other workers': any(seen(p) for p in sys.argv[2:]),"
             " 'host loopback': reaches(5432)}))\n")
    nsenter = shutil.which("nsenter") or "nsenter"
    out = subprocess.run([nsenter, f"--target={worker.pid}", "--mount", "--net", "--", sys.executable, "-c", probe,
                          str(cluster.data_dir), *others], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)
