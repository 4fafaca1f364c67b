"""Snowflake: its settings (configuration.py) and the destination (destination.py)."""

from storage.destinations.snowflake.configuration import SnowflakeSettings
from storage.destinations.snowflake.destination import SNOWFLAKE, SnowflakeDestination, connection_arguments

__all__ = ["SNOWFLAKE", "SnowflakeDestination", "SnowflakeSettings", "connection_arguments"]
