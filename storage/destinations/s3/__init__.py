"""Amazon S3 files: their settings (configuration.py), the destination (destination.py) and the
boto3 helpers it shares with Redshift's staging (objects.py)."""

from storage.destinations.s3.configuration import FILE_FORMATS, S3Settings
from storage.destinations.s3.destination import MANIFEST, S3Destination

__all__ = ["FILE_FORMATS", "MANIFEST", "S3Destination", "S3Settings"]
