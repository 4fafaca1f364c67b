"""DuckDB's settings: where the warehouse file is, the app's TRIBUTARY_DUCKDB_PATH (by default
<data dir>/warehouse.duckdb); nothing of it is in warehouse.json."""

from __future__ import annotations

from storage.destinations.configuration import LocalSettings


class DuckDBSettings(LocalSettings):
    setting = "duckdb_path"
    env = "TRIBUTARY_DUCKDB_PATH"
