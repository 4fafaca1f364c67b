"""Writing shaped batches as data files (Parquet, or gzipped JSON lines), a part at a time, for
the file destinations (local Parquet, S3) and for staging (Redshift, Snowflake)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from storage.destinations.column_types import ColumnType
from storage.destinations.sql import quote

ROWS_PER_PART = 1_000_000
FORMATS = {"parquet": ".parquet", "jsonl": ".jsonl.gz"}

# How a column's type is named to a user of a file destination.
FILE_TYPES = {
    ColumnType.BOOLEAN: "boolean",
    ColumnType.INTEGER: "int64",
    ColumnType.FLOAT: "double",
    ColumnType.TIMESTAMP: "timestamp (UTC)",
    ColumnType.STRING: "string",
    ColumnType.JSON: "JSON text",
}


def file_type(kind: ColumnType) -> str:
    return FILE_TYPES[kind]


def part_name(index: int, file_format: str = "parquet") -> str:
    return f"part-{index:05d}{FORMATS[file_format]}"


def parquet_parts(batches: Iterable[pa.Table], folder: Path, rows_per_part: int = ROWS_PER_PART) -> Iterator[Path]:
    """Write batches into part-00000.parquet, part-00001.parquet... in folder, yielding each
    part once it is complete (so a caller can upload it and free the disk)."""
    folder.mkdir(parents=True, exist_ok=True)
    writer, path, rows, index = None, None, 0, 0
    for batch in batches:
        if writer is None:
            path = folder / part_name(index)
            writer = pq.ParquetWriter(path, batch.schema, compression="zstd")
        writer.write_table(batch)
        rows += batch.num_rows
        if rows >= rows_per_part:
            writer.close()
            yield path
            writer, rows, index = None, 0, index + 1
    if writer is not None:
        writer.close()
        yield path


def jsonl_parts(batches: Iterable[pa.Table], folder: Path, json_columns: list[str]) -> Iterator[Path]:
    """Gzipped JSON lines, one part per batch; JSON columns are written as nested values, not
    as the text they are carried in."""
    folder.mkdir(parents=True, exist_ok=True)
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        for index, batch in enumerate(batches):
            path = folder / part_name(index, "jsonl")
            con.register("_batch", batch)
            replace = ", ".join(f"{quote(c)}::JSON AS {quote(c)}" for c in json_columns)
            select = f"SELECT * REPLACE ({replace}) FROM _batch" if json_columns else "SELECT * FROM _batch"
            target = str(path).replace("'", "''")
            con.execute(f"COPY ({select}) TO '{target}' (FORMAT json, COMPRESSION gzip)")
            con.unregister("_batch")
            yield path


def data_parts(batches: Iterable[pa.Table], folder: Path, file_format: str, json_columns: list[str]) -> Iterator[Path]:
    if file_format == "jsonl":
        return jsonl_parts(batches, folder, json_columns)
    return parquet_parts(batches, folder)
