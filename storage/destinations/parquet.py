"""Local Parquet files: one folder per run under <parquet dir>/<feed>/, written by DuckDB.

A run's files are written to a hidden temporary folder and renamed into place, so a reader
never sees half a run. Truncate and Insert removes the older runs' folders only after the new
one is in place. Upsert needs a table engine: it is not offered here.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import duckdb

from core.settings import Settings, get_settings
from storage.destinations.base import LOADED_AT_COLUMN, RUN_ID_COLUMN, Capabilities, Destination, LoadRequest, LoadResult
from storage.destinations.duckdb import _columns_literal, _files_literal, column_type, quote


class ParquetDestination(Destination):
    name = "parquet"
    title = "Local Parquet files"
    capabilities = Capabilities(load_types=frozenset({"incremental", "truncate_insert"}), json_type="JSON (text)")

    def __init__(self, settings: Settings | None = None, root: Path | None = None):
        self.settings = settings or get_settings()
        self.root = Path(root or self.settings.parquet_dir)

    def describe_target(self, table: str) -> str:
        return f"Parquet files in {self.root / table}/run_id=<run id>/"

    def _run_dir(self, table: str, run_id: str) -> Path:
        return self.root / table / f"run_id={run_id}"

    def has_run(self, table: str, run_id: str) -> bool:
        return self._run_dir(table, run_id).exists()

    def load(self, request: LoadRequest) -> LoadResult:
        final = self._run_dir(request.table, request.run_id)
        if final.exists():
            return LoadResult(rows=0, skipped=True, location=str(final))
        files = [f for f in request.files if f.stat().st_size > 0]
        tmp = self.root / request.table / f".tmp-{uuid.uuid4().hex[:8]}"
        tmp.mkdir(parents=True, exist_ok=True)
        try:
            rows = self._write(files, tmp, request) if files else 0
            tmp.rename(final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if request.load_type == "truncate_insert":
            for old in (self.root / request.table).glob("run_id=*"):
                if old != final:
                    shutil.rmtree(old, ignore_errors=True)
        return LoadResult(rows=rows, location=str(final))

    def _write(self, files: list[Path], target: Path, request: LoadRequest) -> int:
        with duckdb.connect() as con:
            described = con.execute(
                f"DESCRIBE SELECT * FROM read_json({_files_literal(files)}, format='newline_delimited', "
                "union_by_name=true, sample_size=-1)"
            ).fetchall()
            types = {row[0]: column_type(row[1]) for row in described}
            select = ", ".join(quote(c) for c in types)
            source = f"read_json({_files_literal(files)}, format='newline_delimited', columns={_columns_literal(types)})"
            out = str(target / "part-00000.parquet").replace("'", "''")
            con.execute(
                f"COPY (SELECT {select}, ?::VARCHAR AS {RUN_ID_COLUMN}, ?::TIMESTAMPTZ AS {LOADED_AT_COLUMN} "
                f"FROM {source}) TO '{out}' (FORMAT parquet, COMPRESSION zstd)",
                [request.run_id, request.loaded_at],
            )
            return con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0]

    def drop(self, table: str) -> None:
        shutil.rmtree(self.root / table, ignore_errors=True)
