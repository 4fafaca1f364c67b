"""Issue 18: pulling a paginated REST API over real HTTP, Tributary against Peak's sequential
loop and dlt's rest_api source.

The bundled demo API (demo/api.py) serves in this process, on its own thread, with
--latency-ms per page (50 ms by default): /pages/page?page=N&per_page=100 over a dataset of
--records records (100,000 by default, so 1,000 pages; the demo's dataset is made that long
here by setting demo.api.RECORD_COUNT, the only change: same endpoint, same record shape). Each
contender is a separate process that loads every record into DuckDB, timed from start to exit,
the contenders taking turns in rounds (median of --rounds, 3 by default):

    sequential   Peak's style: a plain `requests.get` loop over the pages, one record at a time
                 to outputStream.write, run by `python -m core.cli run` (sandbox, spool, load)
    paginate16   the same feed with `lib.paginate(..., style="page", concurrency=16)`
    dlt_seq      dlt's rest_api source, its page_number paginator, one resource
    dlt_par      the same with `parallelized=True` on the resource
    budget45     paginate16 with the server rate-limited to 50 requests/s and
                 `connection.configure(rate=45, per="second")` in the script: its 429s are counted

Every run's row count is checked, outside the timing; the 429s are the server's own count
(`DemoAPI.rejected`).

    .venv/bin/python bench/bench_rest.py [--rounds 3] [--records 100000] [--latency-ms 50]
                                         [--contenders sequential,paginate16,dlt_seq,dlt_par,budget45] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT))

from bench_dlt import dlt_env  # noqa: E402
from bench_engine import cli_env  # noqa: E402
from procwatch import run_watched  # noqa: E402

PAGE = 100
CONCURRENCY = 16
SERVER_RATE = 50  # requests per second the server allows in budget45
BUDGET_RATE = 45  # the connection's budget in budget45
CONTENDERS = {
    "sequential": "Peak's sequential script: a plain requests loop over the pages (core.cli run)",
    "paginate16": f"Tributary: lib.paginate(style=\"page\", concurrency={CONCURRENCY}) (core.cli run)",
    "dlt_seq": "dlt rest_api source, page_number paginator, sequential",
    "dlt_par": "dlt rest_api source, page_number paginator, parallelized=True",
    "budget45": f"Tributary paginate16, server limit {SERVER_RATE} req/s, connection.configure(rate={BUDGET_RATE})",
}
SHORT = {"sequential": "Peak sequential", "paginate16": f"Tributary paginate x{CONCURRENCY}",
         "dlt_seq": "dlt rest_api", "dlt_par": "dlt rest_api parallelized",
         "budget45": f"Tributary x{CONCURRENCY}, budget {BUDGET_RATE}/s"}

SEQUENTIAL_SCRIPT = '''import requests
from lib import outputStream

page = 1
while True:
    body = requests.get("{url}/pages/page", params={{"page": page, "per_page": {page_size}, "count": {n}}}).json()
    for record in body["data"]:
        outputStream.write(record)
    if page >= body["total_pages"]:
        break
    page += 1
'''

PAGINATE_SCRIPT = '''from lib import connection, outputStream, paginate
{configure}
for record in paginate("{url}/pages/page", style="page", params={{"count": {n}}}, page_size={page_size},
                       concurrency={concurrency}):
    outputStream.write(record)
'''

DLT_SCRIPT = '''import dlt
from dlt.sources.rest_api import rest_api_source

source = rest_api_source({{
    "client": {{
        "base_url": "{url}/",
        "paginator": {{"type": "page_number", "base_page": 1, "page_param": "page", "total_path": "total_pages"}},
    }},
    "resources": [{{
        "name": "records",
        "endpoint": {{"path": "pages/page", "params": {{"per_page": {page_size}, "count": {n}}}, "data_selector": "data"}},
        "parallelized": {parallelized},
    }}],
}})
pipeline = dlt.pipeline(pipeline_name="bench_rest", destination=dlt.destinations.duckdb({db!r}), dataset_name="rest")
pipeline.run(source)
'''


def demo_api(latency_s: float, records: int):
    """The demo API with a dataset of `records` records, serving on a thread of this process."""
    import demo.api as demo

    demo.RECORD_COUNT = records  # read at call time by all_records() and the pages' ?count=
    demo.all_records.cache_clear()
    demo.all_records()  # built before any timing
    return demo.DemoAPI(latency_s=latency_s).start()


def _tributary_run(script: str, n: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="tributary-bench-rest-") as tmp:
        data, path = Path(tmp) / "data", Path(tmp) / "script.py"
        path.write_text(script)
        env = cli_env(data)
        cli = [sys.executable, "-m", "core.cli"]
        code, _, _, out = run_watched([*cli, "feeds", "create", "bench", "--script", f"@{path}"], env=env)
        assert code == 0, out
        code, wall, watch, out = run_watched([*cli, "--json", "run", "bench"], env=env)
        if code != 0:
            raise RuntimeError(f"the run failed ({code}):\n{out[-3000:]}")
        view = json.loads(out)
        assert view["status"] == "succeeded" and view["records_loaded"] == n, view
        return {"wall_s": wall, "peak_rss_mb": watch.sum_of_peaks_mb, "rows": view["records_loaded"]}


def _dlt_run(url: str, n: int, parallelized: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="tributary-bench-rest-dlt-") as tmp_name:
        tmp = Path(tmp_name)
        db = tmp / "warehouse.duckdb"
        script = tmp / "pipeline.py"
        script.write_text(DLT_SCRIPT.format(url=url, n=n, page_size=PAGE, parallelized=parallelized, db=str(db)))
        code, wall, watch, out = run_watched([sys.executable, str(script)], env=dlt_env(tmp), cwd=tmp_name)
        if code != 0:
            raise RuntimeError(f"dlt failed ({code}):\n{out[-3000:]}")
        count = subprocess.run([sys.executable, "-c", f"import duckdb; print(duckdb.connect({str(db)!r}, read_only=True)"
                                ".execute('select count(*) from rest.records').fetchone()[0])"],
                               capture_output=True, text=True, check=True)
        rows = int(count.stdout.strip())
        assert rows == n, f"dlt loaded {rows} rows, not {n}"
        return {"wall_s": wall, "peak_rss_mb": watch.sum_of_peaks_mb, "rows": rows}


def one_run(key: str, api, n: int) -> dict:
    api.reset_counters()
    api.rate_limit = SERVER_RATE if key == "budget45" else None
    if key == "sequential":
        fig = _tributary_run(SEQUENTIAL_SCRIPT.format(url=api.url, n=n, page_size=PAGE), n)
    elif key in ("paginate16", "budget45"):
        configure = f'connection.configure(rate={BUDGET_RATE}, per="second")' if key == "budget45" else ""
        fig = _tributary_run(PAGINATE_SCRIPT.format(url=api.url, n=n, page_size=PAGE, concurrency=CONCURRENCY,
                                                    configure=configure), n)
    else:
        fig = _dlt_run(api.url, n, parallelized=key == "dlt_par")
    fig.update(requests=api.request_count, rejected=api.rejected, max_in_flight=api.max_in_flight,
               max_per_window=api.max_requests_per_window())
    api.rate_limit = None
    return fig


def summarize(n: int, runs: list[dict]) -> dict:
    wall = statistics.median(r["wall_s"] for r in runs)
    return {"records": n, "runs": len(runs), "wall_s": round(wall, 3), "records_per_s": round(n / wall),
            "peak_rss_mb": round(statistics.median(r["peak_rss_mb"] for r in runs), 1),
            "all_wall_s": [round(r["wall_s"], 3) for r in runs],
            "requests": [r["requests"] for r in runs], "rejected": [r["rejected"] for r in runs],
            "max_in_flight": max(r["max_in_flight"] for r in runs),
            "max_per_window": max(r["max_per_window"] for r in runs)}


def _ratio_line(results: dict, num: str, den: str) -> float | None:
    a, b = results["figures"].get(num), results["figures"].get(den)
    if not a or not b:
        return None
    return round(b["wall_s"] / a["wall_s"], 2)


def targets(results: dict, latency_s: float, n: int) -> list[dict]:
    figs, out = results["figures"], []
    pages = -(-n // PAGE)
    floor = pages * latency_s / CONCURRENCY
    ours = figs.get("paginate16")

    def distance(need: float, got: float, base: dict) -> str:
        wall = base["wall_s"] / need
        why = (f"needs {need / got:.2f}x faster: wall <= {wall:.2f} s (now {ours['wall_s']:.2f} s); "
               f"latency floor {pages:,} pages x {latency_s * 1000:.0f} ms / {CONCURRENCY} = {floor:.2f} s")
        if wall < floor:
            why += ", so out of reach at this concurrency"
        else:
            why += "; the rest is the run's start-up, the load and a shared machine's CPU"
        return why

    if ours and figs.get("sequential"):
        got = _ratio_line(results, "paginate16", "sequential")
        out.append({"target": "paginate x16 >= 8x the records/s of Peak's sequential script",
                    "measured": f"{got:.2f}x ({ours['wall_s']:.2f} s vs {figs['sequential']['wall_s']:.2f} s); "
                                f"round by round {' '.join(f'{r:.2f}' for r in results['by_round'].get('sequential', []))}x",
                    "status": "MET" if got >= 8 else "NOT MET",
                    "distance": "" if got >= 8 else distance(8, got, figs["sequential"])})
    dlts = [k for k in ("dlt_seq", "dlt_par") if figs.get(k)]
    if ours and dlts:
        best = min(dlts, key=lambda k: figs[k]["wall_s"])
        got = _ratio_line(results, "paginate16", best)
        out.append({"target": f"paginate x16 >= 1.5x the records/s of dlt's best setting ({SHORT[best]})",
                    "measured": f"{got:.2f}x ({ours['wall_s']:.2f} s vs {figs[best]['wall_s']:.2f} s); "
                                f"round by round {' '.join(f'{r:.2f}' for r in results['by_round'].get(best, []))}x",
                    "status": "MET" if got >= 1.5 else "NOT MET",
                    "distance": "" if got >= 1.5 else distance(1.5, got, figs[best])})
    if figs.get("budget45"):
        rejected = figs["budget45"]["rejected"]
        out.append({"target": f"server limit {SERVER_RATE} req/s, budget {BUDGET_RATE}/s: zero 429 answers",
                    "measured": f"429s per run: {' '.join(map(str, rejected))}; most requests in one second: "
                                f"{figs['budget45']['max_per_window']}",
                    "status": "MET" if not any(rejected) else "NOT MET",
                    "distance": "" if not any(rejected) else f"{max(rejected)} answers 429 in the worst run"})
    return out


def measure(keys: list[str], rounds: int, n: int, latency_s: float, log=print) -> dict:
    api = demo_api(latency_s, n)
    runs: dict[str, list[dict]] = {k: [] for k in keys}
    try:
        for number in range(1, rounds + 1):
            for key in keys:
                runs[key].append(one_run(key, api, n))
            log(f"  round {number}: " + ", ".join(
                f"{SHORT[k]} {runs[k][-1]['wall_s']:.2f} s" + (f" ({runs[k][-1]['rejected']} x 429)"
                                                              if runs[k][-1]["rejected"] else "") for k in keys))
    finally:
        api.stop()
    results = {"records": n, "page_size": PAGE, "pages": -(-n // PAGE), "latency_s": latency_s,
               "concurrency": CONCURRENCY, "rounds": rounds,
               "figures": {k: summarize(n, v) for k, v in runs.items()}, "by_round": {}}
    if "paginate16" in runs:
        for key in keys:
            if key != "paginate16":
                results["by_round"][key] = [round(b["wall_s"] / a["wall_s"], 2)
                                            for a, b in zip(runs["paginate16"], runs[key])]
    results["targets"] = targets(results, latency_s, n)
    return results


def report_lines(results: dict) -> list[str]:
    figs = results["figures"]
    ours = figs.get("paginate16")
    lines = [f"  {'contender':<32} {'wall (median)':>13} {'records/s':>10} {'peak RSS':>9} {'429s':>5}  "
             f"{'Tributary x16 vs it':>19}  runs"]
    for key, fig in figs.items():
        vs = f"{fig['wall_s'] / ours['wall_s']:.2f}x" if ours and key != "paginate16" else ""
        lines.append(f"  {SHORT[key]:<32} {fig['wall_s']:>11.2f} s {fig['records_per_s']:>10,} {fig['peak_rss_mb']:>6.0f} MB "
                     f"{sum(fig['rejected']):>5}  {vs:>19}  {' '.join(f'{w:.2f}' for w in fig['all_wall_s'])} s")
    floor = results["pages"] * results["latency_s"]
    lines.append(f"  latency floor: {results['pages']:,} pages x {results['latency_s'] * 1000:.0f} ms = {floor:.1f} s "
                 f"one page at a time, {floor / results['concurrency']:.2f} s at {results['concurrency']} at once; "
                 f"at {BUDGET_RATE} req/s the budget alone takes {results['pages'] / BUDGET_RATE:.1f} s")
    for t in results["targets"]:
        lines.append(f"  [{t['status']:^9}] {t['target']}: {t['measured']}" + (f"  -> {t['distance']}" if t["distance"] else ""))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--json", action="store_true", help="print one JSON document last")
    args = parser.parse_args()
    keys = [k.strip() for k in args.contenders.split(",") if k.strip()]
    if unknown := set(keys) - set(CONTENDERS):
        parser.error(f"unknown contenders: {', '.join(sorted(unknown))}")
    print(f"{args.records:,} records in pages of {PAGE} over HTTP from the demo API, {args.latency_ms:g} ms per page, "
          f"into DuckDB; {args.rounds} rounds:\n" + "\n".join(f"  {SHORT[k]:<32} {CONTENDERS[k]}" for k in keys), flush=True)
    results = measure(keys, args.rounds, args.records, args.latency_ms / 1000, log=lambda s: print(s, flush=True))
    print("\n".join(report_lines(results)), flush=True)
    if args.json:
        print(json.dumps({"rest": results}))


if __name__ == "__main__":
    main()
