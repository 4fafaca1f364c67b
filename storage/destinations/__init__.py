"""The destinations' registry: each implementation of the Destination interface (base.py)
registered by name, and which ones each warehouse setting offers (as in Peak: Redshift users
get Redshift and S3, Snowflake users get Snowflake).

Each destination is a package, storage/destinations/<name>/, holding its settings
(configuration.py) and its implementation (destination.py). The SQL warehouses share one commit
protocol (sql_warehouse.py) and load through StreamingLoad or StagedLoad (sql_loads.py), or
their own load step (DuckDB's native load). Drivers load only when used: importing a
destination's module never imports psycopg, boto3 or the Snowflake connector.
"""

from __future__ import annotations

from importlib import import_module

from common.errors import TributaryError
from storage.destinations.base import Destination

DESTINATIONS = {
    "duckdb": "storage.destinations.duckdb.destination:DuckDBDestination",
    "parquet": "storage.destinations.parquet.destination:ParquetDestination",
    "postgres": "storage.destinations.postgres.destination:PostgresDestination",
    "redshift": "storage.destinations.redshift.destination:RedshiftDestination",
    "s3": "storage.destinations.s3.destination:S3Destination",
    "snowflake": "storage.destinations.snowflake.destination:SnowflakeDestination",
}

WAREHOUSES = {
    "local": ["duckdb", "parquet"],
    "postgres": ["postgres"],
    "redshift": ["redshift", "s3"],
    "snowflake": ["snowflake"],
}


def destinations_for_warehouse(warehouse: str) -> list[str]:
    if warehouse not in WAREHOUSES:
        raise TributaryError(f"warehouse: unknown warehouse {warehouse!r}; choose one of {', '.join(WAREHOUSES)}")
    return list(WAREHOUSES[warehouse])


def destination_class(name: str) -> type[Destination]:
    if name not in DESTINATIONS:
        raise TributaryError(f"destinations: unknown destination {name!r}; choose from {', '.join(DESTINATIONS)}")
    module_name, _, class_name = DESTINATIONS[name].partition(":")
    return getattr(import_module(module_name), class_name)


def get_destination(name: str, settings=None) -> Destination:
    return destination_class(name)(settings)
