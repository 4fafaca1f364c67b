"""Answer one read-only question about the embedded DuckDB warehouse, in a process of its own.

Run as `python -m core.warehouse_reader <duckdb file> <max rows>` with a JSON request on stdin
({"sql": "..."}); writes the result as an Arrow IPC stream on stdout, or a JSON error on
stderr (exit 3: the query failed, exit 4: the file is locked by a load in progress).

Why a separate process: inside the app's process the loader holds the same file read-write,
and DuckDB refuses a second, read-only configuration of an open file; worse, a read-only
connection held by the UI would make a concurrent load fail. Across processes DuckDB's file
lock simply makes one wait. The connection is read-only, with file-system access, extension
installs and configuration changes disabled, so a user's SQL can read the warehouse and
nothing else on the server.
"""

from __future__ import annotations

import json
import sys

import duckdb
import pyarrow as pa

BATCH_ROWS = 1000
EXIT_QUERY_FAILED = 3
EXIT_LOCKED = 4


def _connect(path: str) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(path, read_only=True, config={
        "enable_external_access": False,
        "lock_configuration": True,
        "memory_limit": "1GB",
        "threads": 2,
    })


def _fail(code: int, message: str) -> int:
    sys.stderr.write(json.dumps({"error": message}))
    return code


def main(argv: list[str]) -> int:
    path, max_rows = argv[0], int(argv[1])
    request = json.loads(sys.stdin.read() or "{}")
    try:
        con = _connect(path)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            return _fail(EXIT_LOCKED, str(exc))
        return _fail(EXIT_QUERY_FAILED, str(exc))
    try:
        result = con.execute(request.get("sql", ""))
        if result.description is None:
            table = pa.table({"result": pa.array([], pa.string())})
        else:
            table = _first_rows(result.to_arrow_reader(BATCH_ROWS), max_rows)
    except duckdb.Error as exc:
        return _fail(EXIT_QUERY_FAILED, str(exc))
    finally:
        con.close()
    with pa.ipc.new_stream(sys.stdout.buffer, table.schema) as writer:
        writer.write_table(table)
    return 0


def _first_rows(reader: pa.RecordBatchReader, max_rows: int) -> pa.Table:
    """Up to max_rows + 1 rows: the extra one tells the caller the result was cut."""
    batches, count = [], 0
    for batch in reader:
        batches.append(batch)
        count += batch.num_rows
        if count > max_rows:
            break
    table = pa.Table.from_batches(batches, schema=reader.schema)
    return table.slice(0, max_rows + 1)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
