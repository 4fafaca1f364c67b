"""Local Parquet's settings: the folder the files go to, the app's TRIBUTARY_PARQUET_DIR (by
default <data dir>/parquet); nothing of it is in warehouse.json."""

from __future__ import annotations

from storage.destinations.configuration import LocalSettings


class ParquetSettings(LocalSettings):
    setting = "parquet_dir"
    env = "TRIBUTARY_PARQUET_DIR"
