"""S3's settings: the "s3" section of the warehouse settings (settings.py stores them), each
field overridable by TRIBUTARY_S3_<FIELD>, e.g. TRIBUTARY_S3_SECRET_ACCESS_KEY. Redshift stages
its files in this bucket too."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from storage.destinations.configuration import Section

FILE_FORMATS = ("parquet", "jsonl")


@dataclass(frozen=True)
class S3Settings(Section):
    section: ClassVar[str] = "s3"
    secrets: ClassVar[frozenset[str]] = frozenset({"secret_access_key"})

    bucket: str = ""
    prefix: str = "tributary"
    region: str = "us-east-1"
    endpoint_url: str = ""  # empty: AWS; set for an S3-compatible service
    access_key_id: str = ""  # empty: boto3's default chain (instance role, ~/.aws, AWS_* variables)
    secret_access_key: str = ""
    file_format: str = "parquet"  # parquet | jsonl

    def problems(self) -> list[tuple[str, str]]:
        if self.file_format not in FILE_FORMATS:
            return [(self.label("file_format"), f"must be one of {', '.join(FILE_FORMATS)}")]
        return []
