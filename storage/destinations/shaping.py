"""Turning chunks of records into typed Arrow tables for a planned schema (second pass over the
spool), setting aside every record that cannot be loaded, with the reason.

Rejected records go to a RejectLog on disk (never memory: a bad run can reject millions), and
the failed row threshold decides, once the whole run is shaped, whether the load may commit.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import datetime
from typing import Self

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from storage.destinations import spool
from storage.destinations.base import (LOADED_AT_COLUMN, POSITION_COLUMN, RUN_ID_COLUMN, Capabilities,
                                       LoadRequest, RejectedRowsError)
from storage.destinations.column_types import (
    INT64_MAX,
    INT64_MIN,
    TIMESTAMP_PATTERN,
    VALUE_WORDS,
    ColumnType,
    parse_timestamp,
    value_type,
)
from storage.destinations.schema import PlannedColumn, SchemaPlan

TIMESTAMP = pa.timestamp("us", tz="UTC")
ARROW_TYPES = {
    ColumnType.BOOLEAN: pa.bool_(),
    ColumnType.INTEGER: pa.int64(),
    ColumnType.FLOAT: pa.float64(),
    ColumnType.TIMESTAMP: TIMESTAMP,
    ColumnType.STRING: pa.string(),
    ColumnType.JSON: pa.string(),  # JSON text; each destination parses it into its JSON type
}
# Python types a column takes as they are, with no per-value conversion.
_DIRECT = {
    ColumnType.BOOLEAN: {bool},
    ColumnType.INTEGER: {int},
    ColumnType.FLOAT: {int, float},
    ColumnType.STRING: {str},
}
_SAMPLES = 3


class RejectLog:
    """Records set aside by a load, spooled to a temporary file."""

    def __init__(self):
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the log; close() closes it
        self.count = 0
        self.samples: list[str] = []

    def add(self, position: int, record, reason: str) -> None:
        self.count += 1
        if len(self.samples) < _SAMPLES:
            self.samples.append(f"record {position + 1}: {reason}")
        self._file.write(orjson.dumps({"reason": reason, "record": record}) + b"\n")

    def tables(self, run_id: str, loaded_at: datetime, chunk_rows: int = spool.DEFAULT_CHUNK_ROWS,
               capabilities: Capabilities | None = None) -> Iterator[pa.Table]:
        """The rejects as tables of reason, record (JSON text) and the audit columns, made
        storable where the rejects table has the limits that rejected them (NUL, length)."""
        self._file.flush()
        self._file.seek(0)
        batch: list[dict] = []
        for line in self._file:
            batch.append(orjson.loads(line))
            if len(batch) >= chunk_rows:
                yield _reject_table(batch, run_id, loaded_at, capabilities)
                batch = []
        if batch:
            yield _reject_table(batch, run_id, loaded_at, capabilities)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _reject_table(batch: list[dict], run_id: str, loaded_at: datetime, capabilities: Capabilities | None) -> pa.Table:
    records = []
    for reject in batch:
        record = reject["record"]
        if capabilities is not None and not capabilities.text_allows_nul:
            record = _without_nul(record)
        text = orjson.dumps(record).decode()
        limit = capabilities.max_text_bytes if capabilities is not None else None
        if limit is not None and len(text.encode()) > limit:
            # Kept as a JSON string of its beginning: enough to find the record at the source.
            text = orjson.dumps(text.encode()[: limit // 2].decode(errors="ignore") + "...").decode()
        records.append(text)
    table = pa.table({
        "reason": pa.array([r["reason"] for r in batch], pa.string()),
        "record": pa.array(records, pa.string()),
    })
    return with_audit_columns(table, run_id, loaded_at)


def _without_nul(value):
    """NUL characters replaced by U+FFFD, for systems whose text cannot hold them."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


def with_audit_columns(table: pa.Table, run_id: str, loaded_at: datetime) -> pa.Table:
    rows = table.num_rows
    table = table.append_column(RUN_ID_COLUMN, pa.array([run_id] * rows, pa.string()))
    return table.append_column(LOADED_AT_COLUMN, pa.array([loaded_at] * rows, TIMESTAMP))


def check_threshold(total: int, rejects: RejectLog, max_ratio: float) -> None:
    """Fail the load when the share of rejected records is above the feed's threshold."""
    if not rejects.count:
        return
    share = rejects.count / max(total, 1)
    if share > max_ratio:
        raise RejectedRowsError(
            f"{rejects.count} of {total} records ({share:.1%}) were rejected, more than the failed row "
            f"threshold of {max_ratio:.1%} allows; nothing was loaded. " + "; ".join(rejects.samples)
        )


def _preview(value) -> str:
    text = orjson.dumps(value).decode() if not isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _as_text(value) -> str:
    if type(value) is bool:
        return "true" if value else "false"
    return value if type(value) is str else orjson.dumps(value).decode()


class Shaper:
    """Shapes chunks for one load: one instance per load, fed the chunks in spool order."""

    def __init__(self, plan: SchemaPlan, request: LoadRequest, capabilities: Capabilities, rejects: RejectLog,
                 positions: bool = False, include_absent: bool = False):
        self.plan = plan
        self.request = request
        self.capabilities = capabilities
        self.rejects = rejects
        self.positions = positions  # add POSITION_COLUMN (for upsert staging)
        self.columns = plan.columns if include_absent else plan.loaded
        self.key_fields = list(request.primary_key) if request.load_type == "upsert" else []
        self.records_seen = 0  # rejected ones included

    def batches(self, chunk_rows: int = spool.DEFAULT_CHUNK_ROWS) -> Iterator[pa.Table]:
        """The second pass: every accepted record, as tables of at most chunk_rows rows."""
        for rows in spool.read_chunks(self.request.files, chunk_rows):
            table = self.shape(rows)
            if table.num_rows:
                yield table

    def shape(self, rows: list) -> pa.Table:
        start, self.records_seen = self.records_seen, self.records_seen + len(rows)
        all_objects = set(map(type, rows)) == {dict}
        reasons: dict[int, str] = {}
        if not all_objects or self.key_fields or self.plan.unloadable:
            self._check_records(rows, reasons)
        converted = {c.name: self._convert(c, rows, all_objects, reasons) for c in self.columns if c.field is not None}
        keep = [i for i in range(len(rows)) if i not in reasons]
        kept = pa.array(keep, pa.int64()) if reasons else None
        arrays, names = [], []
        for column in self.columns:
            if column.field is None:
                arrays.append(pa.nulls(len(keep), ARROW_TYPES[column.type]))
            else:
                values = converted[column.name]
                arrays.append(values if kept is None else values.take(kept))
            names.append(column.name)
        if self.positions:
            arrays.append(pa.array([start + i for i in keep], pa.int64()))
            names.append(POSITION_COLUMN)
        arrays += [pa.array([self.request.run_id] * len(keep), pa.string()),
                   pa.array([self.request.loaded_at] * len(keep), TIMESTAMP)]
        names += [RUN_ID_COLUMN, LOADED_AT_COLUMN]
        table = self._check_text(pa.Table.from_arrays(arrays, names=names), keep, reasons)
        for index in sorted(reasons):
            self.rejects.add(start + index, rows[index], reasons[index])
        return table

    def _check_records(self, rows: list, reasons: dict[int, str]) -> None:
        for index, row in enumerate(rows):
            if type(row) is not dict:
                reasons[index] = "the record is not a JSON object"
                continue
            for field_name in self.key_fields:
                if row.get(field_name) is None:
                    reasons[index] = f"primary key field {field_name!r} is missing"
                    break
            else:
                for field_name, why in self.plan.unloadable.items():
                    if row.get(field_name) is not None:
                        reasons[index] = why
                        break

    def _convert(self, column: PlannedColumn, rows: list, all_objects: bool, reasons: dict[int, str]) -> pa.Array:
        """One column of the chunk as an Arrow array (rejected rows included, as nulls)."""
        name, arrow_type = column.field, ARROW_TYPES[column.type]
        values = [r.get(name) for r in rows] if all_objects else [r.get(name) if type(r) is dict else None for r in rows]
        kinds = set(map(type, values)) - {type(None)}
        if kinds <= _DIRECT.get(column.type, set()) and not (int in kinds and not _ints_fit(values)):
            return pa.array(values, arrow_type)
        if column.type == ColumnType.JSON:
            return pa.array([None if v is None else orjson.dumps(v) for v in values], arrow_type)
        if column.type == ColumnType.TIMESTAMP and kinds == {str}:
            timestamps = _timestamps(values)
            if timestamps is not None:
                return timestamps
        return pa.array([None if v is None else self._value(column, v, i, reasons) for i, v in enumerate(values)],
                        arrow_type)

    def _value(self, column: PlannedColumn, value, index: int, reasons: dict[int, str]):
        if column.type == ColumnType.TIMESTAMP and type(value) is str:
            parsed = parse_timestamp(value)
            if parsed is not None:
                return parsed
        kind = value_type(value)
        if column.type == ColumnType.STRING and kind != ColumnType.JSON:
            return _as_text(value)
        if column.type == ColumnType.FLOAT and kind in (ColumnType.INTEGER, ColumnType.FLOAT):
            return float(value)
        if column.type == kind:
            return value
        reasons.setdefault(index, f"field {column.field!r} holds {VALUE_WORDS[kind]} ({_preview(value)}), "
                                  f"which column {column.name} ({column.native}) cannot hold")
        return None

    def _check_text(self, table: pa.Table, keep: list[int], reasons: dict[int, str]) -> pa.Table:
        """Reject strings the destination cannot store (NUL characters, over-long text)."""
        caps = self.capabilities
        if (caps.text_allows_nul and caps.max_text_bytes is None) or not table.num_rows:
            return table
        bad = None
        for column in self.columns:
            if column.type not in (ColumnType.STRING, ColumnType.JSON) or column.field is None:
                continue
            array = table.column(column.name)
            problems = []
            if not caps.text_allows_nul:
                nul = "\\u0000" if column.type == ColumnType.JSON else "\x00"
                problems.append((pc.match_substring(array, nul), "contains a NUL character"))
            if caps.max_text_bytes is not None:
                problems.append((pc.greater(pc.binary_length(array), caps.max_text_bytes),
                                 f"is longer than {caps.max_text_bytes} bytes"))
            for mask, what in problems:
                mask = pc.fill_null(mask, False)
                if not pc.any(mask).as_py():
                    continue
                for position in pc.indices_nonzero(mask).to_pylist():
                    reasons.setdefault(keep[position], f"field {column.field!r} {what}, which column "
                                                       f"{column.name} ({column.native}) cannot store")
                bad = mask if bad is None else pc.or_(bad, mask)
        return table if bad is None else table.filter(pc.invert(bad))


def _timestamps(values: list) -> pa.Array | None:
    """Arrow's own parser for a column of ISO timestamps that all carry their zone (the usual
    case); None when some do not, or are not timestamps, and need parsing one by one."""
    strings = pa.array(values, pa.string())
    if not pc.all(pc.match_substring_regex(strings, TIMESTAMP_PATTERN)).as_py():
        return None
    try:
        return strings.cast(TIMESTAMP)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _ints_fit(values: list) -> bool:
    ints = [v for v in values if type(v) is int]
    return min(ints) >= INT64_MIN and max(ints) <= INT64_MAX
