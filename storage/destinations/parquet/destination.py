"""Local Parquet files: one folder per run, <parquet dir>/<feed>/run_id=<run id>/part-NNNNN.parquet.

A run's files are written to a hidden temporary folder and renamed into place, so a reader
never sees half a run. Truncate and Insert removes the older runs' folders only after the new
one is in place. Every run's files carry the feed's full schema (columns a run did not see are
null), kept with the committed run ids in <feed>/_tributary.json; an existing column keeps
its type (older files cannot be rewritten), so a value that does not fit is rejected, and
rejects go to <parquet dir>/<feed>__rejected/run_id=<run id>/. Upsert needs a table engine:
it is not offered here.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

from common.settings import Settings, get_settings
from storage.destinations import spool
from storage.destinations.base import (
    REJECTS_SUFFIX,
    Capabilities,
    Destination,
    IdentifierRules,
    LoadRequest,
    LoadResult,
    undo_keeping_error,
)
from storage.destinations.files import parquet_parts
from storage.destinations.parquet.configuration import ParquetSettings
from storage.destinations.schema import RunProfile, SchemaPlan, plan_file_schema, profile_spool
from storage.destinations.shaping import RejectLog, Shaper, check_threshold

STATE_FILE = "_tributary.json"


class ParquetDestination(Destination):
    name = "parquet"
    title = "Local Parquet files"
    capabilities = Capabilities(
        load_types=frozenset({"incremental", "truncate_insert"}),
        json_type="JSON (text)",
        identifiers=IdentifierRules(max_length=255),
        local_files=True,
    )

    def __init__(self, settings: Settings | None = None, root: Path | None = None,
                 chunk_rows: int = spool.DEFAULT_CHUNK_ROWS):
        self.settings = settings or get_settings()
        self.root = Path(root or ParquetSettings.from_settings(self.settings).path)
        self.chunk_rows = chunk_rows

    def describe_target(self, table: str) -> str:
        return f"Parquet files in {self.root / table}/run_id=<run id>/"

    def _run_dir(self, table: str, run_id: str) -> Path:
        return self.root / table / f"run_id={run_id}"

    def _state(self, table: str) -> dict:
        path = self.root / table / STATE_FILE
        return json.loads(path.read_text()) if path.exists() else {"columns": [], "runs": []}

    def _save_state(self, table: str, state: dict) -> None:
        path = self.root / table / STATE_FILE
        tmp = path.with_suffix(f".{uuid.uuid4().hex[:8]}.tmp")
        tmp.write_text(json.dumps(state, indent=1))
        os.replace(tmp, path)  # atomic: a reader sees the old state or the new one

    def has_run(self, table: str, run_id: str) -> bool:
        return self._run_dir(table, run_id).exists() or run_id in self._state(table)["runs"]

    def load(self, request: LoadRequest) -> LoadResult:
        self.require_load_type(request)
        final = self._run_dir(request.table, request.run_id)
        if self.has_run(request.table, request.run_id):
            return LoadResult(rows=0, skipped=True, location=str(final))
        profile = profile_spool(request.files, self.chunk_rows)
        state = self._state(request.table)
        plan = plan_file_schema(request.table, profile, state["columns"], self.capabilities, request.schema_policy)
        with RejectLog() as rejects:
            self._write_run(request, plan, profile, rejects, final)
            self._commit_state(request, plan, state)
            reasons = list(rejects.samples)
        if request.load_type == "truncate_insert":
            self._remove_other_runs(request.table, final)
        return LoadResult(rows=profile.records - rejects.count, location=str(final), rejected=rejects.count,
                          schema_changes=plan.changes(), schema_diff=plan.diff(), rejected_reasons=reasons)

    def _write_run(self, request: LoadRequest, plan: SchemaPlan, profile: RunProfile, rejects: RejectLog,
                   final: Path) -> None:
        """The run's files, and its rejects', written in hidden folders and renamed into place;
        none of them if the load fails."""
        tmp = self.root / request.table / f".tmp-{uuid.uuid4().hex[:8]}"
        rejects_tmp = self.root / f"{request.table}{REJECTS_SUFFIX}" / f".tmp-{uuid.uuid4().hex[:8]}"
        try:
            shaper = Shaper(plan, request, self.capabilities, rejects, include_absent=True)
            tmp.mkdir(parents=True, exist_ok=True)
            for _ in parquet_parts(shaper.batches(self.chunk_rows), tmp):
                pass
            check_threshold(profile.records, rejects, request.max_rejected_ratio)
            if rejects.count:
                for _ in parquet_parts(rejects.tables(request.run_id, request.loaded_at), rejects_tmp):
                    pass
                rejects_tmp.rename(self._run_dir(f"{request.table}{REJECTS_SUFFIX}", request.run_id))
            tmp.rename(final)
        except BaseException as exc:
            undo_keeping_error(exc, lambda: self.discard(tmp, rejects_tmp), "removing the run's files")
            raise

    def _remove_other_runs(self, table: str, final: Path) -> None:
        """After a Truncate and Insert is in place: the older runs' folders."""
        for old in (self.root / table).glob("run_id=*"):
            if old != final:
                shutil.rmtree(old, ignore_errors=True)

    def discard(self, *folders: Path) -> None:
        """Remove a failed load's folders (not yet renamed into place)."""
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)

    def _commit_state(self, request: LoadRequest, plan: SchemaPlan, state: dict) -> None:
        if plan.columns:
            state["columns"] = [{"name": c.name, "type": c.type.value} for c in plan.columns]
        state["runs"].append(request.run_id)
        self._save_state(request.table, state)

    def drop(self, table: str) -> None:
        shutil.rmtree(self.root / table, ignore_errors=True)
        shutil.rmtree(self.root / f"{table}{REJECTS_SUFFIX}", ignore_errors=True)

    def check(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        probe = self.root / f".check-{uuid.uuid4().hex[:8]}"
        probe.write_text("ok")
        probe.unlink()
