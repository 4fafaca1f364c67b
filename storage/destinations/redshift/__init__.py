"""Amazon Redshift: its settings (configuration.py) and the destination (destination.py), which
stages files in S3 and speaks the PostgreSQL wire protocol."""

from storage.destinations.redshift.configuration import RedshiftSettings
from storage.destinations.redshift.destination import REDSHIFT, CopyStatement, RedshiftDestination, StagedFiles, run_copy

__all__ = ["REDSHIFT", "CopyStatement", "RedshiftDestination", "RedshiftSettings", "StagedFiles", "run_copy"]
