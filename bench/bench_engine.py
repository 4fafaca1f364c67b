"""The full run path at scale: a feed writing N records, run through the command line.

Prints wall time, records per second and the peak RSS of every process involved (the CLI that
runs and loads, the sandboxed script), for N = 100,000 and 1,000,000 by default, and splits
each run's wall time into start-up and exit, the script, and the load with its commit.

    .venv/bin/python bench/bench_engine.py [--records 1000000 ...] [--repeat 3]

The workload (PRELUDE and RECORD) is defined here once: bench_dlt.py and bench_floor.py build
exactly the same records from the same source text, so every contender does the same work.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from procwatch import describe, run_watched  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

# Records shaped like public-apis entries plus a float, a list and an object (issue: benchmarks).
# RECORD is a Python expression of the loop variable `i`; it is pasted inline (not called as a
# function) into each contender's loop so that none pays for an extra call the others skip.
PRELUDE = 'categories = ["Animals", "Books", "Finance", "Weather", "Music"]'
RECORD = '''{
        "id": i,
        "API": f"API {i}",
        "Description": f"Description of API number {i} for benchmarking",
        "Auth": "apiKey" if i % 3 else "",
        "HTTPS": i % 2 == 0,
        "Cors": "yes" if i % 5 else "unknown",
        "Link": f"https://example.com/api/{i}",
        "Category": categories[i % 5],
        "score": i * 0.5,
        "tags": ["t" + str(i % 7), "t" + str(i % 11)],
        "owner": {"id": i % 1000, "login": f"user{i % 1000}"},
    }'''

# A Peak-style feed script: one outputStream.write(record) per record.
SCRIPT = '''from lib import outputStream
{prelude}
for i in range({n}):
    outputStream.write({record})
'''

_SCRIPT_FINISHED = re.compile(r"script finished: \d+ records in ([0-9.]+) s")


def peak_script(n: int) -> str:
    return SCRIPT.format(prelude=PRELUDE, n=n, record=RECORD)


def cli_env(data_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIBUTARY_")}
    env.update(TRIBUTARY_DATA_DIR=str(data_dir), PYTHONPATH=str(ROOT))
    return env


def _phases(wall: float, view: dict, log_text: str) -> dict:
    """Where the wall time went, from the run's own record: the script's duration as the run
    log states it, the rest of the run (load, commit, bookkeeping), and everything outside the
    run (interpreter and import start-up, opening the store, exit)."""
    run_s = view.get("duration_s") or 0.0
    match = _SCRIPT_FINISHED.search(log_text)
    script_s = float(match.group(1)) if match else None
    return {
        "outside_run_s": round(wall - run_s, 3),
        "script_s": script_s,
        "load_and_commit_s": round(run_s - script_s, 3) if script_s is not None else None,
    }


def one_run(n: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="tributary-bench-") as tmp:
        data = Path(tmp) / "data"
        script = Path(tmp) / "script.py"
        script.write_text(peak_script(n))
        env = cli_env(data)
        cli = [sys.executable, "-m", "core.cli"]
        code, _, _, out = run_watched([*cli, "feeds", "create", "bench", "--script", f"@{script}"], env=env)
        assert code == 0, out
        code, wall, watch, out = run_watched([*cli, "--json", "run", "bench"], env=env)
        assert code == 0, out
        view = json.loads(out)
        assert view["status"] == "succeeded" and view["records_loaded"] == n, view
        log_path = data / "logs" / f"{view['id']}.log"
        log_text = log_path.read_text() if log_path.exists() else ""
        return {"wall_s": wall, "peak_rss_mb": watch.sum_of_peaks_mb, "processes": describe(watch),
                "phases": _phases(wall, view, log_text)}


def _median_phases(runs: list[dict]) -> dict:
    keys = runs[0]["phases"].keys()
    values = {k: [r["phases"][k] for r in runs if r["phases"][k] is not None] for k in keys}
    return {k: round(statistics.median(v), 3) if v else None for k, v in values.items()}


def measure(n: int, repeat: int) -> dict:
    """Median wall time and peak RSS of `repeat` runs of N records, with every run's figures."""
    return summarize(n, [one_run(n) for _ in range(repeat)])


def summarize(n: int, runs: list[dict]) -> dict:
    wall = statistics.median(r["wall_s"] for r in runs)
    return {
        "records": n,
        "runs": len(runs),
        "wall_s": round(wall, 3),
        "records_per_s": round(n / wall),
        "peak_rss_mb": round(statistics.median(r["peak_rss_mb"] for r in runs), 1),
        "all_wall_s": [round(r["wall_s"], 3) for r in runs],
        "all_peak_rss_mb": [round(r["peak_rss_mb"], 1) for r in runs],
        "phases": _median_phases(runs),
        "processes": runs[-1]["processes"],
    }


def format_phases(phases: dict) -> str:
    def fmt(value):
        return "n/a" if value is None else f"{value:.2f} s"

    return (f"start-up and exit {fmt(phases['outside_run_s'])}, script {fmt(phases['script_s'])}, "
            f"load and commit {fmt(phases['load_and_commit_s'])}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    results = {}
    for n in args.records:
        result = results[n] = measure(n, args.repeat)
        print(f"{n:>9,} records: {result['wall_s']:6.2f} s  {result['records_per_s']:>10,} records/s  "
              f"peak RSS (sum over processes) {result['peak_rss_mb']:6.1f} MB")
        print(f"    median phases: {format_phases(result['phases'])}")
        print("\n".join(result["processes"]))
    if len(results) >= 2:
        small, large = min(results), max(results)
        growth = results[large]["peak_rss_mb"] / results[small]["peak_rss_mb"] - 1
        print(f"peak RSS growth from {small:,} to {large:,} records: {growth:+.0%}")


if __name__ == "__main__":
    main()
