"""Load throughput of the SQL destinations: 1,000,000 records into DuckDB and PostgreSQL.

    .venv/bin/python bench/bench_destinations.py [--records N] [--postgres URL]

Writes the records as spool files (JSON lines, as a run does), loads them into a fresh DuckDB
file and a fresh PostgreSQL database (created on the server given, dropped afterwards), and
prints records per second and the process's peak memory, which stays flat as the load streams
the spool in chunks. Each load runs in a fresh process; CPU seconds are printed beside wall
seconds because a busy machine slows the wall clock, not the work. PostgreSQL defaults to
postgresql://postgres@127.0.0.1:5432/postgres.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from storage.destinations.settings import PostgresSettings
from storage.destinations.base import LoadRequest
from storage.destinations.duckdb import DuckDBDestination
from storage.destinations.postgres import PostgresDestination

RECORDS_PER_FILE = 250_000


def write_spool(folder: Path, records: int) -> list[Path]:
    """Records shaped like a typical API's: ids, text, numbers, a flag, a timestamp, nested values."""
    files = []
    for start in range(0, records, RECORDS_PER_FILE):
        path = folder / f"spool-{len(files):03d}.jsonl"
        with open(path, "w") as handle:
            handle.writelines(json.dumps({
                    "id": i, "name": f"customer {i}", "price": i * 0.25, "active": i % 3 == 0,
                    "created_at": f"2024-01-{1 + i % 28:02d}T{i % 24:02d}:15:00Z",
                    "tags": ["a", "b"] if i % 2 else [], "address": {"city": "Paris", "zip": f"{i % 99999:05d}"},
                }) + "\n" for i in range(start, min(start + RECORDS_PER_FILE, records)))
        files.append(path)
    return files


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load(destination, files: list[Path], records: int) -> str:
    request = LoadRequest(table="bench", files=files, load_type="incremental", run_id=uuid.uuid4().hex,
                          loaded_at=datetime.now(UTC))
    wall, cpu = time.perf_counter(), time.process_time()
    result = destination.load(request)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert result.rows == records, result
    return (f"{records:>10,} records  {wall:6.2f} s  {records / wall:>9,.0f} records/s  "
            f"(CPU {cpu:6.2f} s: {records / cpu:>9,.0f} records/CPU-s)  peak RSS {peak_rss_mb():,.0f} MB")


def load_duckdb(folder: Path, files: list[Path], records: int) -> str:
    return load(DuckDBDestination(path=folder / "bench.duckdb"), files, records)


def load_postgres(admin_url: str, files: list[Path], records: int) -> str:
    import psycopg

    name = f"tributary_bench_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        return f"skipped: cannot reach {admin_url}: {exc}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = admin_url.rsplit("/", 1)[0] + "/" + name
        return load(PostgresDestination(config=PostgresSettings(url=url)), files, records)
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def in_fresh_process(function, *args) -> str:
    """Each load in a process of its own, so that its peak memory is its own."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(function, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tributary-bench-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        files = write_spool(folder, args.records)
        size = sum(f.stat().st_size for f in files) / 2**20
        print(f"spool     {args.records:>10,} records in {len(files)} files, {size:,.0f} MB "
              f"(written in {time.perf_counter() - started:.1f} s)")
        print(f"duckdb    {in_fresh_process(load_duckdb, folder, files, args.records)}")
        print(f"postgres  {in_fresh_process(load_postgres, args.postgres, files, args.records)}")


if __name__ == "__main__":
    main()
