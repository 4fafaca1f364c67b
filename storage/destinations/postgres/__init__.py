"""PostgreSQL: its settings (configuration.py) and the destination (destination.py), whose
psycopg session Redshift shares."""

from storage.destinations.postgres.configuration import PostgresSettings
from storage.destinations.postgres.destination import (
    POSTGRES,
    PostgresDestination,
    PsycopgSession,
    copy_arrow,
    psycopg_session,
)

__all__ = ["POSTGRES", "PostgresDestination", "PostgresSettings", "PsycopgSession", "copy_arrow", "psycopg_session"]
