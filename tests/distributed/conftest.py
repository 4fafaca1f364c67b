"""Fixtures of the distributed tests: a redis-server of the test's own on a free port, a
PostgreSQL store and a PostgreSQL warehouse (each a fresh database), worker processes
(`python -m core.worker`, each with its own data dir and working directory), and a hit counter
that feed scripts call over HTTP, so that a test can count how often each script executed.

This test process plays the app: its settings choose the celery executor, and a test that
wants the dispatcher builds bootstrap's background services.
"""

from __future__ import annotations

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


class HitCounter:
    """Counts GET /<name> requests: each feed script calls it once as it starts."""

    def __init__(self):
        self.hits: Counter = Counter()
        counter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the http.server API
                counter.hits[self.path.strip("/")] += 1
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


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
    workers: list[Worker] = field(default_factory=list)

    def logs(self) -> str:
        return "\n".join(f"--- worker {w.pid} ---\n{w.log()[-6000:]}" for w in self.workers)

    def worker_of(self, worker_id: str | None) -> Worker | None:
        """The worker process named by a run's worker column (host:pid:start)."""
        pid = (worker_id or "").split(":")[1:2]
        return next((w for w in self.workers if pid and str(w.pid) == pid[0]), None)


@pytest.fixture
def cluster(monkeypatch, tmp_path, redis_url, postgres_url, warehouse_url):
    """This process as the app (the celery executor, a PostgreSQL store and warehouse) and two
    workers started with `python -m core.worker`, each in a folder of its own."""
    data = _isolate(monkeypatch, tmp_path, postgres_url)
    env = {
        "TRIBUTARY_EXECUTOR": "celery", "TRIBUTARY_CELERY_BROKER_URL": redis_url,
        "TRIBUTARY_WAREHOUSE": "postgres", "TRIBUTARY_POSTGRES_URL": warehouse_url,
        "TRIBUTARY_SECRET_KEY": Fernet.generate_key().decode(),
        "TRIBUTARY_HEARTBEAT_S": "1", "TRIBUTARY_MAX_CONCURRENT_RUNS": "4",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    cluster = Cluster(broker_url=redis_url, store_url=postgres_url, warehouse_url=warehouse_url, data_dir=data)
    # The store exists, migrated, before the workers start (they would race to create it).
    from core import bootstrap

    bootstrap.build().start()
    try:
        for number in (1, 2):
            home = tmp_path / f"worker{number}"
            home.mkdir()
            worker_env = dict(os.environ, TRIBUTARY_DATA_DIR=str(home / "data"),
                              TRIBUTARY_MAX_CONCURRENT_RUNS=str(WORKER_CONCURRENCY),
                              PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
            log_path = home / "worker.log"
            with open(log_path, "wb") as log:
                process = subprocess.Popen([sys.executable, "-m", "core.worker"], cwd=home, env=worker_env,
                                           stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            cluster.workers.append(Worker(process, home / "data", log_path))
        for worker in cluster.workers:
            wait_until(lambda: " ready." in worker.log() or worker.process.poll() is not None, 60,
                       lambda: f"worker {worker.pid} did not start:\n{worker.log()}")
            assert worker.process.poll() is None, f"worker {worker.pid} exited:\n{worker.log()}"
        yield cluster
    finally:
        for worker in cluster.workers:
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for worker in cluster.workers:
            try:
                worker.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(worker.process.pid, signal.SIGKILL)
                worker.process.wait()
