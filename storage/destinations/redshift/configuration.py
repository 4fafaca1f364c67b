"""Redshift's settings: the "redshift" section of the warehouse settings (settings.py stores
them), each field overridable by TRIBUTARY_REDSHIFT_<FIELD>, e.g. TRIBUTARY_REDSHIFT_URL. The
files COPY reads are staged in the S3 section's bucket (s3/configuration.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from storage.destinations.configuration import Section
from storage.destinations.postgres.configuration import url_problems


@dataclass(frozen=True)
class RedshiftSettings(Section):
    section: ClassVar[str] = "redshift"
    secrets: ClassVar[frozenset[str]] = frozenset({"url"})

    url: str = ""  # postgresql://user:password@cluster.region.redshift.amazonaws.com:5439/dev
    schema: str = "public"
    iam_role: str = ""  # the role COPY assumes to read the staged files; else the S3 keys are used
    staging_prefix: str = "tributary-staging"  # in the S3 settings' bucket

    def problems(self) -> list[tuple[str, str]]:
        return url_problems(self.label("url"), self.url)
