"""Test-run latency per runner: Peak's example against the demo API, median and 95th percentile.

What a user waits for between pressing "Test" and seeing the preview, once the runner is warm:
bench_runners.py's measurement (a few unmeasured warm-up runs, then N test runs, the runners
taking turns, through core.runs.test_script, in this process as the app does), summarised as
median and p95.
`subprocess` is the bubblewrap sandbox, `subprocess-unisolated` the plain child process: their
difference is what the sandbox costs a test run (target: at most SANDBOX_TARGET_MS).
The example declares no dependencies, so the subprocess runner's environment is the app's own
interpreter; the docker runner uses its base image, which must already exist.

    .venv/bin/python bench/bench_latency.py [--runs 20] [--runners subprocess,subprocess-unisolated,docker] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_runners import EXAMPLE, WARM_UP_RUNS, demo_host, measure  # noqa: E402
from report import sandbox_cost  # noqa: E402

from common.errors import TributaryError  # noqa: E402  (bench_runners put the project on sys.path)
from demo.api import DemoAPI  # noqa: E402


def p95(values: list[float]) -> float:
    """The 95th percentile, interpolated between the measured values (never beyond them)."""
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def summarise(values: list[float]) -> dict:
    return {"median_s": round(statistics.median(values), 4), "p95_s": round(p95(values), 4),
            "min_s": round(min(values), 4), "max_s": round(max(values), 4), "runs": len(values)}


def measure_runners(runners: list[str], runs: int) -> dict:
    """{runner: summary of the whole test run, with the script's own part} or {runner: {"error"}}.
    The runners take turns, one test run each per round, so that a machine busy with something
    else for a while slows them all alike and their difference stays meaningful."""
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="tributary-bench-") as tmp, DemoAPI(host=demo_host()) as api:
        os.environ["TRIBUTARY_DATA_DIR"] = str(Path(tmp) / "data")
        script = EXAMPLE.read_text().replace("http://127.0.0.1:8765", api.url)
        timings: dict[str, dict] = {}
        for runner in runners:
            try:
                measure(runner, script, 0)  # its warm-up runs
            except (TributaryError, ImportError) as exc:
                results[runner] = {"error": str(exc).splitlines()[0][:200]}
                continue
            timings[runner] = {"total": [], "script": []}
        for _ in range(runs):
            for runner, taken in timings.items():
                one = measure(runner, script, 1, warm_up=0)
                taken["total"] += one["total"]
                taken["script"] += one["script"]
        for runner, taken in timings.items():
            results[runner] = {**summarise(taken["total"]), "script": summarise(taken["script"])}
    return {runner: results[runner] for runner in runners}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--runners", default="subprocess,subprocess-unisolated,docker")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of lines")
    args = parser.parse_args()
    runners = [name.strip() for name in args.runners.split(",") if name.strip()]
    results = measure_runners(runners, args.runs)
    if args.json:
        print(json.dumps({"example": EXAMPLE.name, "warm_up_runs": WARM_UP_RUNS, "runners": results}))
        return
    print(f"test runs of {EXAMPLE.name}, {args.runs} per runner after {WARM_UP_RUNS} warm-up runs")
    for runner, result in results.items():
        if "error" in result:
            print(f"{runner:>21}: not measured: {result['error']}")
        else:
            print(f"{runner:>21}: median {result['median_s'] * 1000:7.1f} ms   p95 {result['p95_s'] * 1000:7.1f} ms   "
                  f"(script alone: median {result['script']['median_s'] * 1000:.1f} ms)")
    isolated, plain = results.get("subprocess", {}), results.get("subprocess-unisolated", {})
    if "median_s" in isolated and "median_s" in plain:
        print(sandbox_cost(isolated["median_s"], plain["median_s"]))


if __name__ == "__main__":
    main()
