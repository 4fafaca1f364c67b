"""Runs on many workers (issue 20): throughput of CPU-bound feeds with the local executor, one
Celery worker and two, and the latency from a run's enqueue to its start, and from a cancel to
the run's end, with Celery against the local executor.

Each scenario runs in a process of its own (the executor is chosen by TRIBUTARY_ variables at
start-up), as the app: a PostgreSQL store and warehouse (fresh databases on 127.0.0.1:5432),
a redis-server of its own on a free port (nothing on disk), and `python -m core.worker`
processes with data dirs of their own.

- throughput: FEEDS feeds of RECORDS records each, every record costing real CPU (hashing),
  started at once; wall time from the first start to the last end. The local executor and one
  worker run 2 at a time; two workers run 1 each (the same 2 slots, on 2 processes) and 2 each
  (4 slots: on a 2-core machine more slots cannot add CPU, only contention).
- latency: LATENCY_RUNS small runs one after another on an idle executor; enqueue-to-start is
  the run's started_at (the claim) minus its created_at (the store's clock for both).
- cancel: CANCEL_RUNS runs that sleep; the time from cancel_run() to the run's cancelled status.

    .venv/bin/python bench/bench_distributed.py [--records 250000] [--feeds 8] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

POSTGRES = os.environ.get("TRIBUTARY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
LATENCY_RUNS = 30
CANCEL_RUNS = 10
TARGET_P95_MS = 300
TARGET_CANCEL_S = 2.0
# (name, workers, runs at a time per worker); local: the app's own 2 threads.
SCENARIOS = [("local", 0, 2), ("celery-1x2", 1, 2), ("celery-2x1", 2, 1), ("celery-2x2", 2, 2)]

CPU_SCRIPT = """
import hashlib
from lib import outputStream
for i in range({records}):
    digest = str(i).encode()
    for _ in range(20):
        digest = hashlib.sha256(digest).digest()
    outputStream.write({{"id": i, "h": digest.hex()[:16]}})
"""
SMALL_SCRIPT = "from lib import outputStream\noutputStream.write({'id': 1})\n"
SLEEP_SCRIPT = "import time\nprint('waiting', flush=True)\ntime.sleep(300)\n"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _poll(condition, timeout_s: float, interval_s: float = 0.01):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(interval_s)
    raise TimeoutError(f"not within {timeout_s} s")


class Environment:
    """Fresh databases, a redis-server and workers for one scenario; removed at the end."""

    def __init__(self, workers: int, per_worker: int):
        import psycopg

        self.home = Path(tempfile.mkdtemp(prefix="tributary-bench-dist-"))
        self.admin = psycopg.connect(POSTGRES, autocommit=True)
        self.databases = [f"bench_dist_{uuid.uuid4().hex[:8]}" for _ in range(2)]
        for name in self.databases:
            self.admin.execute(f'CREATE DATABASE "{name}"')
        base = POSTGRES.rsplit("/", 1)[0]
        self.redis_port = _free_port()
        self.redis = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(self.redis_port),
                                       "--save", "", "--appendonly", "no", "--dir", str(self.home)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.env = {
            "TRIBUTARY_DATA_DIR": str(self.home / "app"),
            "TRIBUTARY_DATABASE_URL": f"{base}/{self.databases[0]}",
            "TRIBUTARY_WAREHOUSE": "postgres", "TRIBUTARY_POSTGRES_URL": f"{base}/{self.databases[1]}",
            "TRIBUTARY_SECRET_KEY": _fernet_key(), "TRIBUTARY_MAX_CONCURRENT_RUNS": str(per_worker),
            "TRIBUTARY_EXECUTOR": "celery" if workers else "local",
            "TRIBUTARY_CELERY_BROKER_URL": f"redis://127.0.0.1:{self.redis_port}/0",
        }
        os.environ.update(self.env)
        from core import bootstrap

        bootstrap.build().start()  # the store migrated before the workers race to do it
        self.workers = [self._start_worker(i, per_worker) for i in range(workers)]

    def _start_worker(self, index: int, per_worker: int) -> subprocess.Popen:
        home = self.home / f"worker{index}"
        home.mkdir()
        log = open(home / "worker.log", "wb")  # noqa: SIM115 - kept open for the worker's life
        env = dict(os.environ, TRIBUTARY_DATA_DIR=str(home / "data"), TRIBUTARY_MAX_CONCURRENT_RUNS=str(per_worker),
                   PYTHONPATH=str(ROOT))
        worker = subprocess.Popen([sys.executable, "-m", "core.worker", "--loglevel", "WARNING"], cwd=home, env=env,
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        _poll(lambda: _seen(f"{worker.pid}"), 60, 0.1)
        return worker

    def close(self) -> None:
        for worker in self.workers:
            worker.terminate()
        for worker in self.workers:
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, 9)
                worker.wait()
        self.redis.terminate()
        self.redis.wait()
        from core import bootstrap

        bootstrap.reset()
        from storage.db import dispose_all

        dispose_all()  # the store's connections, before its database is dropped
        for name in self.databases:
            self.admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.admin.close()
        shutil.rmtree(self.home, ignore_errors=True)


def _seen(pid: str) -> bool:
    """Whether the worker of that pid says it is alive in the store (the workers registry)."""
    from core.workers import seen_workers

    return any(str(worker.pid) == pid for worker in seen_workers())


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def _ended(run_ids: list[str]):
    from core.runs import FINAL_STATUSES, get_run

    runs = [get_run(run_id) for run_id in run_ids]
    return runs if all(run.status in FINAL_STATUSES for run in runs) else None


def measure_throughput(app, feeds: int, records: int) -> dict:
    from core.feeds import FeedSpec, create_feed

    names = [f"cpu{i}" for i in range(feeds)]
    for name in names:
        create_feed(FeedSpec(name=name, script=CPU_SCRIPT.format(records=records), destinations=["postgres"]))
    started = time.perf_counter()
    run_ids = [app.start_run(name).id for name in names]
    runs = _poll(lambda: _ended(run_ids), 3600, 0.05)
    wall = time.perf_counter() - started
    failed = [(run.id, run.error) for run in runs if run.status != "succeeded"]
    if failed:
        raise RuntimeError(f"runs failed: {failed}")
    return {"wall_s": round(wall, 2), "records_per_s": round(feeds * records / wall),
            "workers": len({run.worker for run in runs})}


def measure_latency(app) -> dict:
    from core.feeds import FeedSpec, create_feed
    from common.clock import aware

    create_feed(FeedSpec(name="small", script=SMALL_SCRIPT, destinations=["postgres"]))
    waits = []
    for _ in range(LATENCY_RUNS):
        run_id = app.start_run("small").id
        (run,) = _poll(lambda: _ended([run_id]), 120)
        waits.append((aware(run.started_at) - aware(run.created_at)).total_seconds() * 1000)
    return _percentiles(waits, "ms")


def measure_cancel(app) -> dict:
    from core.feeds import FeedSpec, create_feed
    from core.runs import cancel_run, get_run

    create_feed(FeedSpec(name="sleeper", script=SLEEP_SCRIPT, destinations=["postgres"]))
    took = []
    for _ in range(CANCEL_RUNS):
        run_id = app.start_run("sleeper").id
        _poll(lambda: get_run(run_id).status == "running" and "waiting" in _log(run_id), 120)
        asked = time.perf_counter()
        cancel_run(run_id)
        _poll(lambda: get_run(run_id).status == "cancelled", 60)
        took.append(time.perf_counter() - asked)
    return _percentiles(took, "s")


def _log(run_id: str) -> str:
    from core.runs import read_log

    try:
        return read_log(run_id)[0]
    except Exception:  # noqa: BLE001 - not written yet
        return ""


def _percentiles(values: list[float], unit: str) -> dict:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    digits = 1 if unit == "ms" else 2
    return {"n": len(values), f"p50_{unit}": round(statistics.median(ordered), digits),
            f"p95_{unit}": round(p95, digits), f"max_{unit}": round(ordered[-1], digits)}


def scenario(name: str, feeds: int, records: int) -> dict:
    """One scenario, in this process (see the module docstring)."""
    _, workers, per_worker = next(s for s in SCENARIOS if s[0] == name)
    environment = Environment(workers, per_worker)
    try:
        from core import bootstrap

        app = bootstrap.build(background=True).start()
        try:
            figures = {"throughput": measure_throughput(app, feeds, records)}
            if name in ("local", "celery-1x2"):  # the latencies on an idle executor
                figures["enqueue_to_start"] = measure_latency(app)
                figures["cancel"] = measure_cancel(app)
        finally:
            app.stop()
        return figures
    finally:
        environment.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=250_000)
    parser.add_argument("--feeds", type=int, default=8)
    parser.add_argument("--scenario", help=argparse.SUPPRESS)  # one scenario, in a child process
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.scenario:
        print(json.dumps(scenario(args.scenario, args.feeds, args.records)))
        return
    results = {"feeds": args.feeds, "records": args.records, "cpus": os.cpu_count(), "scenarios": {}}
    for name, _, _ in SCENARIOS:
        out = subprocess.run([sys.executable, __file__, "--scenario", name, "--feeds", str(args.feeds),
                              "--records", str(args.records)], capture_output=True, text=True, cwd=ROOT)
        if out.returncode != 0:
            raise SystemExit(f"scenario {name} failed:\n{out.stderr[-3000:]}")
        results["scenarios"][name] = json.loads(out.stdout.strip().splitlines()[-1])
        print(_line(name, results), flush=True)
    local = results["scenarios"]["local"]
    celery = results["scenarios"]["celery-1x2"]
    results["enqueue_to_start_target_ms"] = TARGET_P95_MS
    results["enqueue_to_start_met"] = celery["enqueue_to_start"]["p95_ms"] < TARGET_P95_MS
    results["cancel_target_s"] = TARGET_CANCEL_S
    results["cancel_met"] = celery["cancel"]["p95_s"] < TARGET_CANCEL_S
    print(f"enqueue to start, p50 / p95: local {local['enqueue_to_start']['p50_ms']} / "
          f"{local['enqueue_to_start']['p95_ms']} ms; celery {celery['enqueue_to_start']['p50_ms']} / "
          f"{celery['enqueue_to_start']['p95_ms']} ms (target p95 < {TARGET_P95_MS} ms: "
          f"{'met' if results['enqueue_to_start_met'] else 'missed'})")
    print(f"cancel to cancelled, p50 / p95: local {local['cancel']['p50_s']} / {local['cancel']['p95_s']} s; "
          f"celery {celery['cancel']['p50_s']} / {celery['cancel']['p95_s']} s (target < {TARGET_CANCEL_S} s: "
          f"{'met' if results['cancel_met'] else 'missed'})")
    if args.json:
        print(json.dumps({"distributed": results}))


def _line(name: str, results: dict) -> str:
    figures = results["scenarios"][name]["throughput"]
    local = results["scenarios"].get("local", {}).get("throughput")
    ratio = f", {local['wall_s'] / figures['wall_s']:.2f}x the local executor" if local and name != "local" else ""
    return (f"{name}: {results['feeds']} feeds x {results['records']:,} records in {figures['wall_s']} s "
            f"({figures['records_per_s']:,} records/s, on {figures['workers']} worker(s)){ratio}")


if __name__ == "__main__":
    main()
