"""Local Parquet files: their settings (configuration.py) and the destination (destination.py)."""

from storage.destinations.parquet.configuration import ParquetSettings
from storage.destinations.parquet.destination import STATE_FILE, ParquetDestination

__all__ = ["STATE_FILE", "ParquetDestination", "ParquetSettings"]
