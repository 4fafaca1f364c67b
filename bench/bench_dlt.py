"""The same records through dlt into DuckDB, each setting as a separate process.

Settings (real dlt pipelines, written to a temp dir and run with the interpreter given):
  default      a @dlt.resource yielding one dict at a time; dlt's default loader file format
  pages        the documented "yield pages instead of rows" (lists of PAGE dicts), with
               loader_file_format="parquet"
  arrow        pages turned into Arrow tables (pa.Table.from_pylist) and yielded, with
               loader_file_format="parquet": dlt's documented fast path for Arrow data

Every contender builds its records from bench_engine.RECORD, inline in its loop. dlt's
telemetry is switched off and its data dir kept in the temp dir, so nothing leaves the machine.
The row count is checked after the process ends, outside the timed part.

    .venv/bin/python bench/bench_dlt.py [--records 100000 ...] [--repeat 3] [--settings default,pages,arrow]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_engine import PRELUDE, RECORD  # noqa: E402
from procwatch import run_watched  # noqa: E402

# dlt's performance guide shows pages of 1,000 and of 10,000 items; 10,000 was the faster of the
# two for this workload on the 2-core machine (bench/README.md), so dlt gets that.
PAGE = 10_000

SETTINGS = {
    "default": "dlt default: one dict per yield",
    "pages": f"dlt pages of {PAGE:,} dicts, parquet loader files",
    "arrow": f"dlt Arrow tables of {PAGE:,} rows, parquet loader files",
}

_HEADER = '''import dlt
{imports}
{prelude}
N = {n}
'''

_DEFAULT = '''
@dlt.resource(name="records", write_disposition="append")
def records():
    for i in range(N):
        yield {record}

pipeline = dlt.pipeline(pipeline_name="bench", destination=dlt.destinations.duckdb({db!r}),
                        dataset_name="bench", pipelines_dir={pipelines!r})
pipeline.run(records())
'''

_PAGED = '''
@dlt.resource(name="records", write_disposition="append")
def records():
    page = []
    for i in range(N):
        page.append({record})
        if len(page) == {page_size}:
            yield {wrap}
            page = []
    if page:
        yield {wrap}

pipeline = dlt.pipeline(pipeline_name="bench", destination=dlt.destinations.duckdb({db!r}),
                        dataset_name="bench", pipelines_dir={pipelines!r})
pipeline.run(records(), loader_file_format="parquet")
'''


def program(setting: str, n: int, db: Path, pipelines: Path, page_size: int = PAGE) -> str:
    """The dlt pipeline for one setting, as a standalone Python program."""
    imports = "import pyarrow as pa" if setting == "arrow" else ""
    text = _HEADER.format(imports=imports, prelude=PRELUDE, n=n)
    if setting == "default":
        return text + _DEFAULT.format(record=RECORD, db=str(db), pipelines=str(pipelines))
    wrap = "pa.Table.from_pylist(page)" if setting == "arrow" else "page"
    return text + _PAGED.format(record=RECORD, db=str(db), pipelines=str(pipelines), page_size=page_size, wrap=wrap)


def dlt_env(tmp: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DLT_", "RUNTIME__", "DATA_WRITER__"))}
    env.update(DLT_DATA_DIR=str(tmp / "dlt-data"), RUNTIME__DLTHUB_TELEMETRY="false")
    return env


def _count_rows(python: str, db: Path) -> int:
    code = ("import duckdb, sys; con = duckdb.connect(sys.argv[1], read_only=True); "
            "print(con.execute('SELECT count(*) FROM bench.records').fetchone()[0])")
    out = subprocess.run([python, "-c", code, str(db)], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def one_run(setting: str, n: int, python: str, page_size: int = PAGE) -> dict:
    with tempfile.TemporaryDirectory(prefix="tributary-bench-dlt-") as tmp_name:
        tmp = Path(tmp_name)
        db = tmp / "warehouse.duckdb"  # not bench.duckdb: a catalog named like the dataset is ambiguous
        script = tmp / "pipeline.py"
        script.write_text(program(setting, n, db, tmp / "pipelines", page_size))
        # cwd is the temp dir: dlt reads .dlt/ config from there, and there is none.
        code, wall, watch, out = run_watched([python, str(script)], env=dlt_env(tmp), cwd=tmp_name)
        if code != 0:
            raise RuntimeError(f"dlt ({setting}) failed with exit code {code}:\n{out[-3000:]}")
        rows = _count_rows(python, db)
        if rows != n:
            raise RuntimeError(f"dlt ({setting}) loaded {rows} rows, expected {n}")
        return {"wall_s": wall, "peak_rss_mb": watch.sum_of_peaks_mb, "processes": len(watch.peak_kb)}


def measure(setting: str, n: int, repeat: int, python: str = sys.executable) -> dict:
    return summarize(n, [one_run(setting, n, python) for _ in range(repeat)])


def summarize(n: int, runs: list[dict]) -> dict:
    """The median of runs of N records, with every run's figures."""
    wall = statistics.median(r["wall_s"] for r in runs)
    return {
        "records": n,
        "runs": len(runs),
        "wall_s": round(wall, 3),
        "records_per_s": round(n / wall),
        "peak_rss_mb": round(statistics.median(r["peak_rss_mb"] for r in runs), 1),
        "all_wall_s": [round(r["wall_s"], 3) for r in runs],
        "all_peak_rss_mb": [round(r["peak_rss_mb"], 1) for r in runs],
        "processes": max(r["processes"] for r in runs),
    }


def dlt_version(python: str = sys.executable) -> str | None:
    out = subprocess.run([python, "-c", "import dlt; print(dlt.__version__)"], capture_output=True, text=True, check=False)
    return out.stdout.strip() if out.returncode == 0 else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, nargs="*", default=[100_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--settings", default="default,pages,arrow")
    parser.add_argument("--python", default=sys.executable, help="the interpreter that has dlt installed")
    parser.add_argument("--page-sizes", type=int, nargs="*",
                        help="instead of the settings: time the pages setting at each page size (once each)")
    args = parser.parse_args()
    print(f"dlt {dlt_version(args.python)}")
    if args.page_sizes:
        for n in args.records:
            for size in args.page_sizes:
                for setting in ("pages", "arrow"):
                    run = one_run(setting, n, args.python, size)
                    print(f"{n:>9,} records  {setting:>6} page {size:>7,}: {run['wall_s']:7.2f} s  "
                          f"peak RSS {run['peak_rss_mb']:7.1f} MB")
        return
    for n in args.records:
        for setting in [s.strip() for s in args.settings.split(",") if s.strip()]:
            result = measure(setting, n, args.repeat, args.python)
            print(f"{n:>9,} records  {SETTINGS[setting]:<48} {result['wall_s']:7.2f} s  "
                  f"{result['records_per_s']:>9,} records/s  peak RSS {result['peak_rss_mb']:7.1f} MB")


if __name__ == "__main__":
    main()
