"""S3: each run's records as files under <prefix>/<feed>/<date>/<run id>/part-NNNNN.parquet
(or .jsonl.gz), with a manifest per run and one per feed.

    <prefix>/<feed>/<date>/<run id>/part-00000.parquet
    <prefix>/<feed>/<date>/<run id>/manifest.json    the run's files (Redshift COPY's manifest format)
    <prefix>/<feed>/manifest.json                    the feed's current files, schema and committed runs
    <prefix>/<feed>__rejected/<date>/<run id>/...    records that could not be loaded, with the reason

S3 has no transactions: the feed manifest is the commit. It is replaced in one PUT after every
file of the run is uploaded, so a reader that follows it (Redshift COPY/Spectrum with MANIFEST,
DuckDB, Spark) sees a run whole or not at all. Incremental adds the run's files to it; Truncate
and Insert switches it to the run's files alone, and deletes the files it no longer lists. A
failed load deletes what it uploaded. Files are never rewritten, so an existing column keeps its
type: a value that does not fit is rejected.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from storage.destinations.configured import Configured
from storage.destinations.s3.configuration import S3Settings
from storage.destinations.base import (
    REJECTS_SUFFIX,
    Capabilities,
    Destination,
    IdentifierRules,
    LoadRequest,
    LoadResult,
    undo_keeping_error,
)
from storage.destinations.column_types import ColumnType
from storage.destinations.files import data_parts
from storage.destinations.s3 import objects
from storage.destinations.schema import RunProfile, SchemaPlan, plan_file_schema, profile_spool
from storage.destinations.shaping import RejectLog, Shaper, check_threshold

MANIFEST = "manifest.json"


def _day(request: LoadRequest) -> str:
    """The <date> of a run's folders: the day it was loaded."""
    return request.loaded_at.strftime("%Y-%m-%d")


class S3Destination(Configured, Destination):
    configuration = S3Settings
    name = "s3"
    title = "Amazon S3 files"
    capabilities = Capabilities(
        load_types=frozenset({"incremental", "truncate_insert"}),
        json_type="JSON (text in Parquet, nested in JSON lines)",
        identifiers=IdentifierRules(max_length=255),
    )

    @property
    def client(self):
        if self._client is None:
            self._client = objects.s3_client(self.config)
        return self._client

    def _feed_prefix(self, table: str) -> str:
        return objects.join_key(self.config.prefix, table)

    def describe_target(self, table: str) -> str:
        where = objects.url(self.config.bucket or "<bucket>", self._feed_prefix(table))
        return f"{self.config.file_format} files in {where}/<date>/<run id>/, listed by {where}/{MANIFEST}"

    def manifest(self, table: str) -> dict | None:
        """The feed's manifest: its current files, schema and committed runs."""
        return objects.read_json(self.client, self.config.bucket, objects.join_key(self._feed_prefix(table), MANIFEST))

    def has_run(self, table: str, run_id: str) -> bool:
        manifest = self.manifest(table)
        return bool(manifest) and any(r["run_id"] == run_id for r in manifest["runs"])

    def check(self) -> None:
        objects.check_bucket(self.client, self.config.bucket)

    def load(self, request: LoadRequest) -> LoadResult:
        self.require_load_type(request)
        objects.check_bucket(self.client, self.config.bucket)
        current = self.manifest(request.table) or {"entries": [], "columns": [], "runs": []}
        if any(r["run_id"] == request.run_id for r in current["runs"]):
            return LoadResult(rows=0, skipped=True, location=self.describe_target(request.table))
        profile = profile_spool(request.files, self.chunk_rows)
        plan = plan_file_schema(request.table, profile, current["columns"], self.capabilities, request.schema_policy)
        run_prefix = objects.join_key(self._feed_prefix(request.table), _day(request), request.run_id)
        with RejectLog() as rejects, tempfile.TemporaryDirectory(prefix="tributary-s3-") as tmp:
            replaced = self._upload_and_commit(request, plan, profile, rejects, current, Path(tmp), run_prefix)
            reasons = list(rejects.samples)
        if replaced:
            self._delete_replaced(request.table, replaced)
        return LoadResult(rows=profile.records - rejects.count, location=objects.url(self.config.bucket, run_prefix),
                          rejected=rejects.count, schema_changes=plan.changes(), schema_diff=plan.diff(),
                          rejected_reasons=reasons)

    def _upload_and_commit(self, request: LoadRequest, plan: SchemaPlan, profile: RunProfile, rejects: RejectLog,
                           current: dict, tmp: Path, run_prefix: str) -> list[dict]:
        """Upload the run's files, its rejects and its manifest, then replace the feed manifest;
        the entries it no longer lists. A failure deletes what was uploaded."""
        uploaded: list[str] = []
        try:
            entries = self._upload_data(request, plan, rejects, tmp, run_prefix, uploaded)
            check_threshold(profile.records, rejects, request.max_rejected_ratio)
            if rejects.count:
                self._upload_rejects(request, rejects, tmp, uploaded)
            run_manifest = objects.join_key(run_prefix, MANIFEST)
            objects.put_json(self.client, self.config.bucket, run_manifest, {"entries": entries})
            uploaded.append(run_manifest)
            return self._commit(request, plan, current, entries, profile.records - rejects.count, rejects.count)
        except BaseException as exc:
            undo_keeping_error(exc, lambda: self.discard(uploaded), "deleting the run's files")
            raise

    def discard(self, keys: list[str]) -> None:
        """Delete what a failed load uploaded (the feed manifest does not list it)."""
        objects.delete_keys(self.client, self.config.bucket, keys)

    def _upload_data(self, request: LoadRequest, plan: SchemaPlan, rejects: RejectLog, tmp: Path, run_prefix: str,
                     uploaded: list[str]) -> list[dict]:
        shaper = Shaper(plan, request, self.capabilities, rejects, include_absent=True)
        json_columns = [c.name for c in plan.columns if c.type == ColumnType.JSON]
        entries = []
        for part in data_parts(shaper.batches(self.chunk_rows), tmp / "data", self.config.file_format, json_columns):
            key = objects.join_key(run_prefix, part.name)
            entries.append(objects.upload(self.client, self.config.bucket, key, part))
            uploaded.append(key)
            part.unlink()  # bounded local disk: one part at a time
        return entries

    def _upload_rejects(self, request: LoadRequest, rejects: RejectLog, tmp: Path, uploaded: list[str]) -> None:
        prefix = objects.join_key(self.config.prefix, request.table + REJECTS_SUFFIX, _day(request), request.run_id)
        tables = rejects.tables(request.run_id, request.loaded_at, self.chunk_rows)
        for part in data_parts(tables, tmp / "rejects", self.config.file_format, ["record"]):
            key = objects.join_key(prefix, part.name)
            objects.upload(self.client, self.config.bucket, key, part)
            uploaded.append(key)

    def _commit(self, request: LoadRequest, plan: SchemaPlan, current: dict, entries: list[dict], rows: int,
                rejected: int) -> list[dict]:
        """Replace the feed manifest (the commit); returns the entries it no longer lists."""
        for entry in entries:
            entry["run_id"] = request.run_id
        keep = current["entries"] if request.load_type == "incremental" else []
        replaced = [] if request.load_type == "incremental" else current["entries"]
        manifest = {
            "feed": request.table,
            "format": self.config.file_format,
            "updated_at": request.loaded_at.isoformat(),
            "columns": [{"name": c.name, "type": c.type.value} for c in plan.columns] or current["columns"],
            "entries": keep + entries,
            "runs": current["runs"] + [{"run_id": request.run_id, "load_type": request.load_type, "rows": rows,
                                        "rejected": rejected, "loaded_at": request.loaded_at.isoformat()}],
        }
        key = objects.join_key(self._feed_prefix(request.table), MANIFEST)
        objects.put_json(self.client, self.config.bucket, key, manifest)
        return replaced

    def _delete_replaced(self, table: str, replaced: list[dict]) -> None:
        """After a Truncate and Insert: the files (and run manifests) the feed no longer lists."""
        keys = {objects.key_of(self.config.bucket, e["url"]) for e in replaced}
        keys |= {k.rsplit("/", 1)[0] + "/" + MANIFEST for k in keys}
        objects.delete_keys(self.client, self.config.bucket, sorted(keys))

    def drop(self, table: str) -> None:
        bucket = self.config.bucket
        for prefix in (self._feed_prefix(table), objects.join_key(self.config.prefix, table + REJECTS_SUFFIX)):
            objects.delete_keys(self.client, bucket, objects.list_keys(self.client, bucket, prefix + "/"))
