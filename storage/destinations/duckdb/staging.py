"""DuckDB's fast path: the spool parsed by DuckDB itself, a part at a time, never in Python.

A run's parts reach the stager one by one, while the script is still writing the next one
(see core/runs.py). Each part is read by DuckDB with every field as raw JSON, its values typed
by the same rules as the generic load (column_types.py: the run's set of value types per field,
joined), converted with a check on every value, and written to a Parquet file in the run's
staging directory. A part with the same fields as the last one is read with those fields
directly, the read failing on a field more or less (it then takes the usual way): its sample is
not read a second time just to name them. Once the script has ended, the parts left are typed
in order but written side by side, one per core (DuckDB parses a part's JSON on one thread), and
load() waits for them. Nothing touches the warehouse until the native load (destination.py's
NativeLoad) inserts the staged files into the table in one transaction, after the script has
succeeded.

Typing agrees with the generic load exactly or the stager gives up (`gave_up` says why) and the
run takes the generic load, which can widen columns and reject rows: a field whose values change
type between parts in a way the staged parts cannot follow losslessly (only integers becoming
floats, and fields that held only nulls so far, are followed), integers beyond 64 bits, text
mixed with other scalars, field names the destination must rename, records DuckDB cannot read.
"""

from __future__ import annotations

import os
import queue
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import duckdb

from storage.destinations.base import AUDIT_COLUMNS, LOADED_AT_COLUMN, RUN_ID_COLUMN, IdentifierRules, LoadRequest, Stager
from storage.destinations.column_types import TIMESTAMP_PATTERN, ColumnType, join
from storage.destinations.sql import quote

# Bounded memory: DuckDB spills to disk beyond this instead of growing with the run.
MEMORY_LIMIT = "96MB"
STAGING_MEMORY_LIMIT = "128MB"  # a part at a time, streamed to Parquet
_MAX_OBJECT = 16 * 1024 * 1024  # DuckDB's default; larger records take the generic load
_INTEGERS = "('BIGINT', 'UBIGINT')"
_INT64_MAX = 2**63 - 1
_FAIL = "error('tributary: a value outside the type of its field')"
_OTHER_FIELD = "tributary: a field the last part did not have"
_NULLS_CHECK = "_tributary_nulls"
SAMPLE_ROWS = 10_000  # records read to guess a new field's type; the conversion checks every one
FIELD_SAMPLE_ROWS = 100  # records whose keys name a part's fields; a key first seen later fails the read


class NotNative(Exception):
    """This run needs the generic load."""


def _text(value: str) -> str:
    """A SQL string literal's inside."""
    return value.replace("'", "''")


def _files(files: list[Path]) -> str:
    return "[" + ", ".join(f"'{_text(str(f))}'" for f in files) + "]"


def _raw_source(part: Path, fields: list[str]) -> str:
    """The part as a table with one raw JSON column per field (missing keys and nulls: NULL)."""
    columns = "{" + ", ".join(f"'{_text(f)}': 'JSON'" for f in fields) + "}"
    return (f"read_json('{_text(str(part))}', format='newline_delimited', columns={columns}, "
            f"maximum_object_size={_MAX_OBJECT})")


def _sampled_source(part: Path) -> str:
    """The part with one raw JSON column per field of its first records. DuckDB detected those
    fields itself, so a record with any other key fails the read instead of losing it."""
    return (f"read_json('{_text(str(part))}', format='newline_delimited', maximum_depth=1, "
            f"sample_size={FIELD_SAMPLE_ROWS}, maximum_object_size={_MAX_OBJECT})")


def _renamed(fields: list[str]) -> bool:
    """Whether a name may be one DuckDB made up for a key clashing with another (case aside)."""
    lowered = {f.lower() for f in fields}
    return any(f.rpartition("_")[2].isdigit() and f.rpartition("_")[0].lower() in lowered for f in fields)


def discover_fields(con: duckdb.DuckDBPyConnection, part: Path, first_records: int | None = None) -> list[str]:
    """The part's field names (of its first records only, if given) in order of first
    appearance (the generic load's column order), read on one thread so that DuckDB numbers
    the lines in file order."""
    source = f"read_json_objects('{_text(str(part))}', format='newline_delimited', maximum_object_size={_MAX_OBJECT})"
    if first_records:
        source = f"(SELECT * FROM {source} LIMIT {int(first_records)})"
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    if threads != 1:
        con.execute("SET threads = 1")
    try:
        shapes = con.execute(
            f"SELECT keys, min(n) AS first FROM (SELECT CASE WHEN starts_with(json::VARCHAR, '{{') THEN json_keys(json) "
            f"END AS keys, row_number() OVER () AS n FROM {source}) GROUP BY keys ORDER BY first"
        ).fetchall()
    finally:
        if threads != 1:
            con.execute(f"SET threads = {int(threads)}")
    if any(keys is None for keys, _ in shapes):
        raise NotNative(f"{part.name} holds values that are not objects")
    return list(dict.fromkeys(key for keys, _ in shapes for key in keys))


def classify(con: duckdb.DuckDBPyConnection, source: str, fields: list[str],
             sample_rows: int | None = None) -> dict[str, set[ColumnType]]:
    """The value types each field takes in a part (or its first sample_rows records), named as
    the generic load names them."""
    if not fields:
        return {}
    inner = TIMESTAMP_PATTERN.removeprefix("^").removesuffix("$")
    projections, aggregates = [], []
    for i, f in enumerate(fields):
        # Each value's JSON type and its JSON text, computed once: the aggregates test those.
        projections.append(f"json_type({quote(f)}) AS t{i}, {quote(f)}::VARCHAR AS v{i}, "
                           f"CASE WHEN contains({quote(f)}::VARCHAR, '\\') THEN '\"' || ({quote(f)} ->> '$') || '\"' "
                           f"ELSE {quote(f)}::VARCHAR END AS s{i}")
        t, v, text = f"t{i}", f"v{i}", f"s{i}"
        aggregates += [
            f"count_if({t} = 'BOOLEAN')",
            f"count_if({t} IN {_INTEGERS})",
            f"count_if({_huge(t, v)})",
            f"count_if({t} = 'DOUBLE')",
            f"count_if({t} = 'VARCHAR')",
            # The quoted text of a timestamp; the cheap length and dash tests spare the regular
            # expression most plain text.
            f"count_if({t} = 'VARCHAR' AND length({text}) BETWEEN 18 AND 42 AND substr({text}, 6, 1) = '-' "
            f"AND regexp_full_match({text}, '\"{_text(inner)}\"'))",
            f"count_if({t} IN ('OBJECT', 'ARRAY'))",
        ]
    limit = f" LIMIT {int(sample_rows)}" if sample_rows else ""
    counts = con.execute(
        f"SELECT {', '.join(aggregates)} FROM (SELECT {', '.join(projections)} FROM {source}{limit})"
    ).fetchone()
    found = {}
    for i, f in enumerate(fields):
        # (count_if over values that are all NULL gives NULL, not 0)
        booleans, integers, huge, floats, strings, timestamps, nested = (c or 0 for c in counts[7 * i: 7 * i + 7])
        if huge:
            raise NotNative(f"field {f} holds integers beyond 64 bits")
        kinds = set()
        for count, kind in ((booleans, ColumnType.BOOLEAN), (integers, ColumnType.INTEGER),
                            (floats - huge, ColumnType.FLOAT), (timestamps, ColumnType.TIMESTAMP),
                            (strings - timestamps, ColumnType.STRING), (nested, ColumnType.JSON)):
            if count:
                kinds.add(kind)
        found[f] = kinds
    return found


def _huge(json_kind: str, text: str) -> str:
    """Integers beyond 64 bits: DuckDB calls them UBIGINT or DOUBLE, the generic load text.
    (DuckDB may evaluate both sides of an AND: the casts must not fail on other values.)"""
    return (f"(({json_kind} = 'UBIGINT' AND TRY_CAST({text} AS UBIGINT) > {_INT64_MAX}) OR "
            f"({json_kind} = 'DOUBLE' AND NOT regexp_matches({text}, '[.eE]')))")


def staged_kind(seen: set[ColumnType]) -> ColumnType | None:
    """The column type for the value types a field took, when the staged path writes it exactly
    as the generic load would; None while it held only nulls."""
    if not seen:
        return None
    kind = join(seen)
    text_like = {ColumnType.STRING, ColumnType.TIMESTAMP}
    if kind == ColumnType.STRING and not seen <= text_like:
        raise NotNative(f"text mixed with {', '.join(sorted(k.value for k in seen - text_like))}")
    if kind == ColumnType.JSON and seen != {ColumnType.JSON}:
        raise NotNative("objects or lists mixed with scalars")
    return kind


def _exactly(field: str) -> str:
    """The field's column, matched by its exact name. DuckDB binds a plain column name without
    regard to case: "id" would read a column "ID". Each ASCII sign goes in a class of its own so
    that nothing in the name acts as a regular expression."""
    signs = "".join(f"[{chr(92) + ch if ch in chr(92) + '[]^-' else ch}]" if ch.isascii() and not ch.isalnum() else ch
                    for ch in field)
    return f"COLUMNS('^{_text(signs)}$')"


def _converted(field: str, kind: ColumnType, column: str | None = None) -> str:
    """The typed value of one raw JSON field, or error() when a value falls outside the type.
    column: how to refer to the field's column (its quoted name by default).

    The tests read the value's JSON text (DuckDB's own serialisation: strings quoted, numbers
    with a fraction or exponent hold '.', 'e' or 'E', integers none) rather than asking
    json_type(), which parses every value again and made staging half as fast."""
    col = column or quote(field)
    text = f"({col}::VARCHAR)"
    fractional = f"(contains({text}, '.') OR contains({text}, 'e') OR contains({text}, 'E'))"
    value = {
        ColumnType.BOOLEAN: f"WHEN {text} = 'true' THEN true WHEN {text} = 'false' THEN false",
        # One cast, not a test and a cast: coalesce() only reaches error() when the cast failed.
        ColumnType.INTEGER: f"WHEN NOT {fractional} THEN coalesce(TRY_CAST({text} AS BIGINT), {_FAIL})",
        # An integer beyond 64 bits is text to the generic load, not a float.
        ColumnType.FLOAT: f"WHEN TRY_CAST({text} AS DOUBLE) IS NOT NULL AND ({fractional} OR TRY_CAST({text} AS BIGINT) "
                          f"IS NOT NULL) THEN {text}::DOUBLE",
        # Text without escapes is its JSON text unquoted (substr with length is faster than a
        # slice; both count characters, so any script is cut right); the rest DuckDB decodes.
        ColumnType.STRING: f"WHEN starts_with({text}, '\"') AND NOT contains({text}, '\\') "
                           f"THEN substr({text}, 2, length({text}) - 2) "
                           f"WHEN starts_with({text}, '\"') THEN {col} ->> '$'",
        ColumnType.TIMESTAMP: f"WHEN json_type({col}) = 'VARCHAR' AND regexp_full_match({col} ->> '$', "
                              f"'{_text(TIMESTAMP_PATTERN)}') THEN CAST({col} ->> '$' AS TIMESTAMPTZ)",
        ColumnType.JSON: f"WHEN starts_with({text}, '{{') OR starts_with({text}, '[') THEN {col}",
    }[kind]
    return f"CASE WHEN {col} IS NULL THEN NULL {value} ELSE {_FAIL} END"


def _only_nulls(fields: list[str]) -> str:
    """A column that fails unless these fields (typed by nulls alone so far) are null: they are
    left out of the staged file, so a value there must not pass unseen."""
    nulls = " AND ".join(f"{quote(f)} IS NULL" for f in fields)
    return f"CASE WHEN {nulls} THEN NULL::BOOLEAN ELSE {_FAIL} END AS {_NULLS_CHECK}"


def _no_other_fields(fields: list[str]) -> str:
    """Select items that fail the read if the source has a column besides these fields (none
    when it has not). A column missing from the source fails the binding instead. (EXCLUDE
    ignores case: _exactly catches a name differing only in case.)"""
    others = f"COLUMNS(* EXCLUDE ({', '.join(quote(f) for f in fields)}))"
    return f"CASE WHEN {others} IS NULL THEN error('{_OTHER_FIELD}') ELSE error('{_OTHER_FIELD}') END"


def _select(source: str, fields: list[str], kinds: dict[str, ColumnType | None],
            only_these: bool = False) -> tuple[str, list[str]]:
    """A part's values, each converted to its type and checked, and the fields it types.
    only_these: the read fails if the source has any other field."""
    # Fields that held only nulls so far are left out: the insert reads them as NULL, in
    # whatever type they take later (union_by_name would otherwise make them text).
    typed = [f for f in fields if kinds[f] is not None]
    # Read with only_these, the part's columns must bear the fields' exact names, case included.
    # (An alias of a COLUMNS expression may refer to the regex's groups: a backslash is doubled.)
    values = [f"{_converted(f, kinds[f], _exactly(f))} AS {quote(f.replace(chr(92), chr(92) * 2))}" if only_these
              else f"{_converted(f, kinds[f])} AS {quote(f)}" for f in typed]
    nulls = [f for f in fields if kinds[f] is None]
    if nulls or not values:
        values.append(_only_nulls(nulls) if nulls else f"NULL AS {_NULLS_CHECK}")
    if only_these:
        values.append(_no_other_fields(fields))
    return f"SELECT {', '.join(values)} FROM {source}", typed


def _other_fields(exc: duckdb.Error) -> bool:
    """Whether a read with only_these failed on the part's fields rather than on a value."""
    return isinstance(exc, duckdb.BinderException) or _OTHER_FIELD in str(exc)


def _copy(con: duckdb.DuckDBPyConnection, select: str, target: Path) -> int:
    """Write a select's rows to a Parquet file; the rows written (no file on failure)."""
    try:
        return con.execute(f"COPY ({select}) TO '{_text(str(target))}' (FORMAT parquet, COMPRESSION snappy)"
                           ).fetchone()[0]
    except duckdb.Error:
        target.unlink(missing_ok=True)
        raise


# Where a field's type may move between parts with the parts already staged still right:
# a cast at insert time turns them into the final type exactly as the generic load would.
_FOLLOWABLE = {(None, k) for k in ColumnType} | {(ColumnType.INTEGER, ColumnType.FLOAT)}


class DuckDBStager(Stager):
    def __init__(self, work_dir: Path, identifiers: IdentifierRules, threads: int | None = None):
        self.work_dir = work_dir
        self.identifiers = identifiers
        # While the script runs, a core is left for it.
        self.threads = threads or max(1, (os.cpu_count() or 1) - 1)
        self.seen: dict[str, set[ColumnType]] = {}  # field -> value types in the staged parts
        self.kinds: dict[str, ColumnType | None] = {}  # field -> its type in the staged parts
        self.staged: list[Path] = []
        self.present: set[str] = set()  # fields with a value in some staged file
        self.last_fields: list[str] = []  # the fields of the last part staged, in its order
        self.finishing = False
        self.parts = 0
        self.rows = 0
        self._con: duckdb.DuckDBPyConnection | None = None
        self._pool: ThreadPoolExecutor | None = None  # writes parts side by side once the script ended
        self._writing: list[tuple[Path, Future, list[str], Path]] = []  # part, its write, typed fields, file
        self._cursors: queue.SimpleQueue = queue.SimpleQueue()  # connections for the writers, one each
        # Opened now: a stager is made while the sandbox starts, so the first part does not
        # wait for the connection and DuckDB's JSON functions.
        self._connection().execute("SELECT json_valid('{}')").fetchone()

    # -------------------------------------------------------------- taking parts

    def add(self, part: Path) -> None:
        self.parts += 1
        if self.gave_up or not part.exists() or not part.stat().st_size:
            return
        if self.finishing:
            self._take_side_by_side(part)
        else:
            self._take(part)

    def _take(self, part: Path) -> None:
        try:
            self._stage_part(self._connection(), part)
        except NotNative as exc:
            self._give_up(str(exc))
        except duckdb.Error as exc:  # a record DuckDB cannot read: the generic load explains it per record
            self._give_up(f"DuckDB could not read {part.name}: {str(exc).splitlines()[0]}")

    def _stage_part(self, con: duckdb.DuckDBPyConnection, part: Path) -> None:
        target = self.work_dir / f"{part.stem}.parquet"
        # The fast way: the fields of the part's first records, read so that any other key fails
        # the read, and the types of new fields guessed from a sample; the conversion checks
        # every value against its type. Anything else costs a second, exact pass over the part
        # (its every field in order of first appearance, every value typed), never a wrong table.
        try:
            fields, found, rows = self._stage_like_the_last(con, part, target) or self._stage_guessed(con, part, target)
        except (duckdb.InvalidInputException, duckdb.ConversionException):
            fields = discover_fields(con, part)
            self._check_names(fields)
            source = _raw_source(part, fields)
            found = classify(con, source, fields)
            rows = self._stage(con, source, fields, self._joined(found), target)
        self._follow(found)
        self.last_fields = fields
        self.staged.append(target)
        self.rows += rows

    def _like_the_last(self, part: Path) -> tuple[str, list[str], list[str]] | None:
        """The part's select, its fields and the ones it types, when it can be read with the
        last part's fields, every one of them typed: the usual case, parts of one shape. The
        read itself then checks the fields (a field more or less fails it), so the part's
        sample is not read a second time to name them."""
        fields = self.last_fields
        if not fields or any(self.kinds.get(f) is None for f in fields):
            return None
        select, typed = _select(_sampled_source(part), fields, self.kinds, only_these=True)
        return select, fields, typed

    def _stage_like_the_last(self, con: duckdb.DuckDBPyConnection, part: Path, target: Path):
        """Staged as _like_the_last reads it; None when its fields are not the last part's
        (it takes the guess then). A value outside its type raises, as in the guess."""
        like = self._like_the_last(part)
        if like is None:
            return None
        select, fields, typed = like
        try:
            rows = _copy(con, select, target)
        except duckdb.Error as exc:
            if _other_fields(exc):
                return None
            raise
        self.present.update(typed)
        return fields, {f: set() for f in fields}, rows

    def _follow(self, found: dict[str, set[ColumnType]]) -> dict[str, ColumnType | None]:
        """Take a part's value types into the run's; each field's type for that part."""
        kinds = self._joined(found)
        for f, part_kinds in found.items():
            self.seen.setdefault(f, set()).update(part_kinds)
        self.kinds.update(kinds)
        return kinds

    # ------------------------------------------ once the script has ended: side by side

    def _take_side_by_side(self, part: Path) -> None:
        """Type the part here, in order, as _stage_guessed does, and hand its writing to a
        thread of its own. A part the guess does not fit is staged here, the usual way."""
        con = self._connection()
        try:
            if like := self._like_the_last(part):  # a field more or less fails its write: staged again
                select, fields, typed = like
            else:
                source, fields, found = self._guess(con, part)
                select, typed = _select(source, fields, self._follow(found))
                self.last_fields = fields
        except NotNative as exc:
            self._give_up(str(exc))
            return
        except duckdb.Error:
            # The guess does not fit (the usual way copes), or the parts being written hold
            # the memory: let them finish first.
            self.wait()
            self._take(part)
            return
        if self._pool is None:
            writers = os.cpu_count() or 1
            for _ in range(writers):  # made here: the planning connection is not shared meanwhile
                cursor = con.cursor()
                cursor.execute("SET TimeZone = 'UTC'")
                self._cursors.put(cursor)
            self._pool = ThreadPoolExecutor(max_workers=writers, thread_name_prefix="stager")
        target = self.work_dir / f"{part.stem}.parquet"
        self._writing.append((part, self._pool.submit(self._write, select, target), typed, target))

    def _write(self, select: str, target: Path) -> int:
        cursor = self._cursors.get()
        try:
            return _copy(cursor, select, target)
        finally:
            self._cursors.put(cursor)

    def wait(self) -> None:
        """Wait for the parts being written side by side. One whose write failed (a value
        outside its guessed type, a key after the sample) is staged again the usual way."""
        writing, self._writing, failed = self._writing, [], []
        for part, write, typed, target in writing:
            try:
                rows = write.result()
            except duckdb.Error:
                failed.append(part)
                continue
            self.present.update(typed)
            self.staged.append(target)
            self.rows += rows
        self._stop_writers()
        for part in failed:  # one at a time, once the others have let go of their memory
            if not self.gave_up:
                self._take(part)

    def _stop_writers(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        while not self._cursors.empty():
            self._cursors.get().close()

    def _sampled_fields(self, con: duckdb.DuckDBPyConnection, source: str) -> list[str]:
        columns = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
        fields = [name for name, *_ in columns]
        # DuckDB names the columns itself: records without fields come as one map, and a key
        # differing from another only in case is renamed ("ID" next to "id" becomes "ID_1").
        # Either needs the exact pass.
        if any(kind != "JSON" for _, kind, *_ in columns) or _renamed(fields):
            raise duckdb.InvalidInputException("the sample's columns are not its keys")
        self._check_names(fields)
        return fields

    def _guess(self, con: duckdb.DuckDBPyConnection, part: Path):
        """The part's source, its fields (of its first records) and the value types of the new
        ones (from a sample)."""
        source = _sampled_source(part)
        fields = self._sampled_fields(con, source)
        unknown = [f for f in fields if self.kinds.get(f) is None]  # new, or only nulls so far
        return source, fields, {f: set() for f in fields} | classify(con, source, unknown, SAMPLE_ROWS)

    def _stage_guessed(self, con: duckdb.DuckDBPyConnection, part: Path, target: Path):
        source, fields, found = self._guess(con, part)
        return fields, found, self._stage(con, source, fields, self._joined(found), target)

    def _check_names(self, fields: list[str]) -> None:
        rules = self.identifiers
        reserved = {rules.identity(c) for c in (*AUDIT_COLUMNS, _NULLS_CHECK)}
        identities = [rules.identity(f) for f in fields]
        if len(set(identities)) < len(identities) or reserved & set(identities):
            raise NotNative("field names that would share a column, or Tributary's audit columns")
        earlier = {rules.identity(f): f for f in self.kinds}
        if any(earlier.get(identity, f) != f for identity, f in zip(identities, fields)):
            raise NotNative("a field whose name differs only in case from an earlier part's")
        for f in fields:
            if rules.name(f) != f:
                raise NotNative(f"field {f!r} needs another column name")

    def _joined(self, found: dict[str, set[ColumnType]]) -> dict[str, ColumnType | None]:
        """Each field's type once this part's value types join the staged parts' ones."""
        kinds = {}
        for f, part_kinds in found.items():
            before = self.kinds.get(f)
            after = staged_kind(self.seen.get(f, set()) | part_kinds)
            if before != after and (before, after) not in _FOLLOWABLE:
                raise NotNative(f"field {f} changed from {before.value} to {after.value} during the run")
            kinds[f] = after
        return kinds

    def _stage(self, con: duckdb.DuckDBPyConnection, source: str, fields: list[str],
               kinds: dict[str, ColumnType | None], target: Path) -> int:
        select, typed = _select(source, fields, kinds)
        rows = _copy(con, select, target)
        self.present.update(typed)
        return rows

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self.finishing and self.threads < (os.cpu_count() or 1):
            self.threads = os.cpu_count() or 1  # the script has ended: every core
            if self._con is not None:
                self._con.execute(f"SET threads = {self.threads}")
        if self._con is None:
            self.work_dir.mkdir(parents=True, exist_ok=True)
            self._con = duckdb.connect()  # in memory: parts go to Parquet files, not into a database
            self._con.execute(f"SET memory_limit = '{STAGING_MEMORY_LIMIT}'")
            self._con.execute(f"SET temp_directory = '{_text(str(self.work_dir / 'spill'))}'")
            self._con.execute(f"SET threads = {self.threads}")
            self._con.execute("SET preserve_insertion_order = false")
            self._con.execute("SET TimeZone = 'UTC'")  # a timestamp without a zone is UTC, as in the generic load
        return self._con

    def script_ended(self) -> None:
        """Runs while add() may be working on another thread: only a flag, read when the next
        part begins. (The part in hand goes on: stopping it would waste what it has done, and
        DuckDB parses a part's JSON on one thread however many it has.)"""
        self.finishing = True

    def _give_up(self, reason: str) -> None:
        self.gave_up = reason
        self._writing = []  # the generic load takes the run: what is being written no longer counts
        self._release()

    def _release(self) -> None:
        self._stop_writers()  # their connections come from this one
        if self._con is not None:
            self._con.close()
            self._con = None

    def close(self) -> None:
        self._release()
        shutil.rmtree(self.work_dir, ignore_errors=True)

    # -------------------------------------------------------------- the load

    def columns(self) -> dict[str, ColumnType]:
        """The run's fields and their column types (a field that held only nulls is text)."""
        return {f: kind or ColumnType.STRING for f, kind in self.kinds.items()}

    def insert(self, con: duckdb.DuckDBPyConnection, table: str, targets: dict[str, ColumnType], native,
               request: LoadRequest) -> int:
        """INSERT the staged parts into the table, inside the caller's transaction; the rows
        inserted."""
        self._release()  # the stager's memory goes back before the warehouse's load starts
        if not self.staged:
            return 0
        names = ", ".join(quote(f) for f in targets)
        values = ", ".join(f"CAST({quote(f) if f in self.present else 'NULL'} AS {native(kind)})"
                           for f, kind in targets.items())
        return con.execute(
            f"INSERT INTO {quote(table)} ({names}, {quote(RUN_ID_COLUMN)}, {quote(LOADED_AT_COLUMN)}) "
            f"SELECT {values}, ?, ? FROM read_parquet({_files(self.staged)}, union_by_name = true)",
            [request.run_id, request.loaded_at],
        ).fetchone()[0]


def plan(inferred: dict[str, ColumnType], existing: dict[str, tuple[ColumnType, str]] | None
         ) -> tuple[dict[str, ColumnType], list[str]]:
    """The column each field goes to, and the new columns; NotNative when a field meets a
    column of another type (widening and rejects are the generic load's work)."""
    by_lower = {name.lower(): (name, kind) for name, (kind, _) in (existing or {}).items()}
    targets, new = {}, []
    for field, kind in inferred.items():
        if field.lower() in by_lower:
            column_kind = by_lower[field.lower()][1]
            if column_kind != kind:
                raise NotNative(f"field {field} is {kind.value}, its column is {column_kind.value}")
        else:
            new.append(field)
        targets[field] = kind
    return targets, new
