"""The embedded warehouse, DuckDB: its settings (configuration.py), the destination and its
native load (destination.py), and the stager that types the spool while the script runs
(staging.py)."""

from storage.destinations.duckdb.configuration import DuckDBSettings
from storage.destinations.duckdb.destination import DUCKDB, DuckDBDestination, connect, quote

__all__ = ["DUCKDB", "DuckDBDestination", "DuckDBSettings", "connect", "quote"]
