"""What differs between the SQL warehouses (DuckDB, PostgreSQL, Redshift, Snowflake) when
Tributary writes its statements: type names, parameter style, how JSON text is parsed, how a
column is widened and whether DDL is transactional. Everything else in the statements is
standard SQL shared by all four. Each warehouse's dialect is declared beside it
(<name>/destination.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.destinations.column_types import ColumnType


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


@dataclass(frozen=True)
class SqlDialect:
    types: dict[ColumnType, str]
    param: str  # the driver's placeholder: "?" (DuckDB) or "%s" (psycopg, Snowflake's pyformat)
    json_parse: str = "{}"  # turns JSON text into the JSON type; "{}" is the text itself
    widen_using_cast: bool = False  # PostgreSQL's ALTER ... TYPE needs USING for non-implicit casts
    functions_in_values: bool = True  # Snowflake refuses PARSE_JSON(...) in a VALUES list; SELECT works
    transactional_ddl: bool = True  # False: the system commits DDL implicitly (Snowflake)

    @property
    def text(self) -> str:
        return self.types[ColumnType.STRING]

    @property
    def timestamp(self) -> str:
        return self.types[ColumnType.TIMESTAMP]

    def native(self, kind: ColumnType) -> str:
        return self.types[kind]

    def params(self, count: int) -> str:
        return ", ".join([self.param] * count)

    def widen(self, table: str, column: str, native: str) -> str:
        if self.widen_using_cast:
            return f"ALTER TABLE {quote(table)} ALTER COLUMN {quote(column)} TYPE {native} USING {quote(column)}::{native}"
        return f"ALTER TABLE {quote(table)} ALTER COLUMN {quote(column)} SET DATA TYPE {native}"


def column_type_of(data_type: str, numeric_scale=None) -> ColumnType:
    """Read back the type of an existing column from information_schema.columns.data_type.

    Types Tributary never creates (DATE, UUID, a user's NUMERIC(10,2)...) count as text: values
    are sent as text and the warehouse casts them, failing the load if it cannot.
    """
    name = data_type.lower()
    if name in ("number", "numeric", "decimal"):
        return ColumnType.INTEGER if not numeric_scale else ColumnType.FLOAT
    if name in ("bigint", "integer", "int", "smallint", "tinyint", "hugeint", "int8", "int4", "int2"):
        return ColumnType.INTEGER
    if name.startswith(("decimal", "numeric")):
        return ColumnType.FLOAT
    if name in ("double", "double precision", "float", "real", "float8", "float4"):
        return ColumnType.FLOAT
    if name in ("boolean", "bool"):
        return ColumnType.BOOLEAN
    if name.startswith("timestamp"):
        return ColumnType.TIMESTAMP
    if name in ("json", "jsonb", "super", "variant", "object", "array"):
        return ColumnType.JSON
    return ColumnType.STRING
