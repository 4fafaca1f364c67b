"""What the two-phase commit's extra store write costs a run: the pending outcome recorded
before any destination commits (core/execution.py). The completion that makes the state current
and clears it is timed too: it was the run's finish before, one transaction as then.

A feed writing N records (bench_engine's workload) runs in this process on the embedded
defaults (SQLite store, DuckDB warehouse, the subprocess runner); the two store writes are
timed where they happen, and printed next to the run's wall time, for N = 100,000 and
1,000,000 by default.

    .venv/bin/python bench/bench_commit.py [--records 100000 1000000] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_engine import peak_script  # noqa: E402


class Timed:
    """Wraps a function and keeps the duration of each call whose kwargs include `when`."""

    def __init__(self, fn, when: str | None = None):
        self.fn, self.when, self.calls = fn, when, []

    def __call__(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            if self.when is None or self.when in kwargs:
                self.calls.append(time.perf_counter() - started)


def one_run(n: int) -> dict:
    from core import execution
    from core.bootstrap import execute_run
    from core.feeds import FeedSpec, create_feed
    from core.runs import create_run

    pending, complete = Timed(execution._update, when="pending_outcome"), Timed(execution.complete_run)
    execution._update, execution.complete_run = pending, complete
    name = f"bench_{n}_{int(time.time() * 1000)}"
    create_feed(FeedSpec(name=name, script=peak_script(n), timeout_s=3600))
    started = time.perf_counter()
    run = execute_run(create_run(name).id)
    wall = time.perf_counter() - started
    execution._update, execution.complete_run = pending.fn, complete.fn
    if run.status != "succeeded":
        raise SystemExit(f"the run of {n:,} records {run.status}: {run.error}")
    return {"wall_s": wall, "pending_s": sum(pending.calls), "complete_s": sum(complete.calls)}


def measure(n: int, repeat: int) -> dict:
    runs = [one_run(n) for _ in range(repeat)]
    med = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    extra = med["pending_s"]  # the completion was the run's finish before; the pending write is new
    return {**{k: round(v, 4) for k, v in med.items()}, "extra_ms": round(extra * 1000, 2),
            "extra_share": round(extra / med["wall_s"], 5), "runs": repeat}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print one JSON document last")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tributary-bench-commit-") as data:
        os.environ.update(TRIBUTARY_DATA_DIR=data, TRIBUTARY_DEMO_API="0")
        for key in ("TRIBUTARY_DATABASE_URL", "TRIBUTARY_DUCKDB_PATH", "TRIBUTARY_RUNNER"):
            os.environ.pop(key, None)
        figures = {}
        print(f"{'records':>10}  {'run (median)':>12}  {'pending write':>13}  {'completion':>10}  {'pending share':>13}")
        for n in args.records:
            fig = figures[str(n)] = measure(n, args.repeat)
            print(f"{n:>10,}  {fig['wall_s']:>10.2f} s  {fig['pending_s'] * 1000:>10.1f} ms  "
                  f"{fig['complete_s'] * 1000:>7.1f} ms  {fig['extra_share']:>12.2%}", flush=True)
    if args.json:
        print(json.dumps({"commit": figures}))


if __name__ == "__main__":
    main()
