"""The full run path at scale: a feed writing N records, run through the command line.

Prints wall time, records per second and the peak RSS of every process involved (the CLI that
runs and loads, the sandboxed script), for N = 100,000 and 1,000,000 by default.

    .venv/bin/python bench/bench_engine.py [--records 1000000 ...] [--repeat 3]
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
from procwatch import describe, run_watched  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

# Records shaped like public-apis entries plus a float, a list and an object (issue: benchmarks).
SCRIPT = '''
from lib import outputStream
N = {n}
categories = ["Animals", "Books", "Finance", "Weather", "Music"]
for i in range(N):
    outputStream.write({{
        "id": i,
        "API": f"API {{i}}",
        "Description": f"Description of API number {{i}} for benchmarking",
        "Auth": "apiKey" if i % 3 else "",
        "HTTPS": i % 2 == 0,
        "Cors": "yes" if i % 5 else "unknown",
        "Link": f"https://example.com/api/{{i}}",
        "Category": categories[i % 5],
        "score": i * 0.5,
        "tags": ["t" + str(i % 7), "t" + str(i % 11)],
        "owner": {{"id": i % 1000, "login": f"user{{i % 1000}}"}},
    }})
'''


def cli_env(data_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIBUTARY_")}
    env.update(TRIBUTARY_DATA_DIR=str(data_dir), PYTHONPATH=str(ROOT))
    return env


def one_run(n: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="tributary-bench-") as tmp:
        data = Path(tmp) / "data"
        script = Path(tmp) / "script.py"
        script.write_text(SCRIPT.format(n=n))
        env = cli_env(data)
        cli = [sys.executable, "-m", "core.cli"]
        code, _, _, out = run_watched([*cli, "feeds", "create", "bench", "--script", f"@{script}"], env=env)
        assert code == 0, out
        code, wall, watch, out = run_watched([*cli, "--json", "run", "bench"], env=env)
        assert code == 0, out
        view = json.loads(out)
        assert view["records_loaded"] == n, view
        return {"wall_s": wall, "peak_rss_mb": watch.sum_of_peaks_mb, "processes": describe(watch)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    results = {}
    for n in args.records:
        runs = [one_run(n) for _ in range(args.repeat)]
        wall = statistics.median(r["wall_s"] for r in runs)
        rss = statistics.median(r["peak_rss_mb"] for r in runs)
        results[n] = {"wall_s": wall, "records_per_s": n / wall, "peak_rss_mb": rss}
        print(f"{n:>9,} records: {wall:6.2f} s  {n / wall:>10,.0f} records/s  peak RSS (sum over processes) {rss:6.1f} MB")
        print("\n".join(runs[-1]["processes"]))
    if len(results) >= 2:
        small, large = min(results), max(results)
        growth = results[large]["peak_rss_mb"] / results[small]["peak_rss_mb"] - 1
        print(f"peak RSS growth from {small:,} to {large:,} records: {growth:+.0%}")


if __name__ == "__main__":
    main()
