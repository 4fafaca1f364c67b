"""The column types Tributary infers from JSON values, and which values each type can hold.

Every destination maps these six types to its own (BIGINT, NUMBER(38,0), int64...). The rules
here are shared so that a record is accepted, widened or rejected the same way everywhere:

- a new column gets the narrowest type holding every value the run saw (integers and floats
  make a float column; any other mix of scalars makes a string column; objects or lists make
  a JSON column);
- an existing column accepts values it can hold losslessly (a float column takes integers, a
  string column takes any scalar as text, a JSON column takes anything);
- otherwise a destination that can widen in place does so along integer -> float -> string
  (booleans and timestamps -> string), and one that cannot rejects the row.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from enum import Enum

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

# An ISO 8601 date with a time; the zone is optional (a naive time is taken as UTC). Months,
# days, hours and minutes are range-checked here so that the pattern alone (which the first
# pass applies to whole columns at once) agrees with the parser on all but impossible dates
# such as February 30th, which then count as text.
TIMESTAMP_PATTERN = (
    r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[T ]([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,9})?)?"
    r"(Z|[+-]\d{2}(:?\d{2})?)?$"
)
_TIMESTAMP = re.compile(TIMESTAMP_PATTERN)


class ColumnType(str, Enum):
    BOOLEAN = "boolean"
    INTEGER = "integer"
    FLOAT = "float"
    TIMESTAMP = "timestamp"
    STRING = "string"
    JSON = "json"


# How a value's type is named in a reject reason.
VALUE_WORDS = {
    ColumnType.BOOLEAN: "a boolean",
    ColumnType.INTEGER: "an integer",
    ColumnType.FLOAT: "a number with a fraction",
    ColumnType.TIMESTAMP: "a timestamp",
    ColumnType.STRING: "text",
    ColumnType.JSON: "an object or list",
}

_WIDENINGS = {
    ColumnType.INTEGER: (ColumnType.FLOAT, ColumnType.STRING),
    ColumnType.FLOAT: (ColumnType.STRING,),
    ColumnType.BOOLEAN: (ColumnType.STRING,),
    ColumnType.TIMESTAMP: (ColumnType.STRING,),
}


def parse_timestamp(text: str) -> datetime | None:
    if not _TIMESTAMP.match(text):
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:  # shaped like a timestamp but not a real one (month 13...)
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def value_type(value) -> ColumnType | None:
    """The type of one JSON value; None for null."""
    kind = type(value)
    if value is None:
        return None
    if kind is bool:
        return ColumnType.BOOLEAN
    if kind is int:
        return ColumnType.INTEGER if INT64_MIN <= value <= INT64_MAX else ColumnType.STRING
    if kind is float:
        return ColumnType.FLOAT
    if kind is str:
        return ColumnType.TIMESTAMP if parse_timestamp(value) else ColumnType.STRING
    return ColumnType.JSON


def accepts(column: ColumnType, value: ColumnType) -> bool:
    if column == value or column == ColumnType.JSON:
        return True
    if column == ColumnType.FLOAT:
        return value == ColumnType.INTEGER
    if column == ColumnType.STRING:
        return value != ColumnType.JSON
    return False


def join(types: Iterable[ColumnType]) -> ColumnType:
    """The narrowest type that holds values of all these types (for a new column)."""
    kinds = set(types)
    if not kinds:
        return ColumnType.STRING  # every value was null: text is the least surprising home
    if len(kinds) == 1:
        return kinds.pop()
    if ColumnType.JSON in kinds:
        return ColumnType.JSON
    if kinds <= {ColumnType.INTEGER, ColumnType.FLOAT}:
        return ColumnType.FLOAT
    return ColumnType.STRING


def widened(column: ColumnType, values: Iterable[ColumnType]) -> ColumnType | None:
    """The wider type an existing column must become to hold these values, or None when it
    already holds them or cannot be widened to (objects never widen a scalar column)."""
    misfits = {v for v in values if not accepts(column, v) and v != ColumnType.JSON}
    if not misfits:
        return None
    target = join({column, *misfits})
    return target if target in _WIDENINGS.get(column, ()) else None
