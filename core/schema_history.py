"""A feed's schema history: what each run changed in the tables it loaded (columns added,
widened, fields dropped by the discard-new-columns policy, records rejected), as recorded on
the run (Run.schema_changes, per destination), newest first.

A change per destination is {"created", "added": [{column, type}], "widened": [{column, from,
to}], "dropped": [fields], "rejected": count, "reasons": a sample}. The policies themselves
(evolve, freeze, discard_new_columns) are the destinations' (storage/destinations/base.py
SCHEMA_POLICIES): they apply to every destination, the SQL warehouses and DuckDB at their
table's DDL, Parquet and S3 at the column list their state or manifest keeps.
"""

from __future__ import annotations

from sqlmodel import select

from storage.db import session_scope
from storage.models import Run

HISTORY_LIMIT = 200


def change_entry(diff: dict, rejected: int, reasons: list[str]) -> dict:
    """One destination's change as a run records it; {} when nothing changed."""
    if not diff and not rejected:
        return {}
    entry = {"created": False, "added": [], "widened": [], "dropped": [], **diff}
    entry.update(rejected=rejected, reasons=list(reasons))
    return entry


def merged(before: dict | None, name: str, entry: dict) -> dict:
    """The run's changes with one more destination's (a run's checkpoints add up)."""
    changes = {k: dict(v) for k, v in (before or {}).items()}
    if not entry:
        return changes
    if name not in changes:
        changes[name] = entry
        return changes
    old = changes[name]
    for key in ("added", "widened", "dropped"):
        old[key] = list(old.get(key, [])) + list(entry.get(key, []))
    old["created"] = old.get("created", False) or entry.get("created", False)
    old["rejected"] = old.get("rejected", 0) + entry.get("rejected", 0)
    old["reasons"] = (list(old.get("reasons", [])) + list(entry.get("reasons", [])))[:10]
    return changes


def record_change(run_id: str, destination: str, result) -> dict:
    """Add one destination's change (from its LoadResult) to the run's schema_changes; the
    entry recorded ({} when nothing changed)."""
    entry = change_entry(result.schema_diff, result.rejected, result.rejected_reasons)
    if entry:
        with session_scope() as session:
            run = session.get(Run, run_id)
            run.schema_changes = merged(run.schema_changes, destination, entry)
            session.add(run)
    return entry


def alters_table(changes: dict | None) -> bool:
    """Whether the run changed an existing table's columns (what a 'schema changed' watcher
    hears of): a column added or widened, or a field dropped. Creating the table and rejecting
    records are recorded, but are not a schema change."""
    return any(not c.get("created") and (c.get("added") or c.get("widened") or c.get("dropped"))
               for c in (changes or {}).values())


def change_lines(entry: dict) -> list[str]:
    """The change in words: "column price widened from BIGINT to DOUBLE"."""
    if entry.get("created"):
        columns = ", ".join(f"{c['column']} ({c['type']})" for c in entry.get("added", []))
        lines = [f"table created with columns {columns}"]
    else:
        lines = [f"column {c['column']} added ({c['type']})" for c in entry.get("added", [])]
    lines += [f"column {c['column']} widened from {c['from']} to {c['to']}" for c in entry.get("widened", [])]
    lines += [f"field {f} dropped: no column added for it (schema policy: discard new columns)"
              for f in entry.get("dropped", [])]
    if entry.get("rejected"):
        count = entry["rejected"]
        lines.append(f"{count} record{'' if count == 1 else 's'} rejected"
                     + (f" ({entry['reasons'][0]})" if entry.get("reasons") else ""))
    return lines


def schema_history(feed_name: str, limit: int = HISTORY_LIMIT) -> list[dict]:
    """The feed's runs that changed its tables or rejected records, newest first: {run_id,
    at, status, destination, lines, change}, one per run and destination."""
    with session_scope() as session:
        runs = session.exec(select(Run).where(Run.feed_name == feed_name, Run.schema_changes.is_not(None))
                            .order_by(Run.created_at.desc()).limit(limit)).all()
    history = []
    for run in runs:
        for destination, entry in (run.schema_changes or {}).items():
            history.append({"run_id": run.id, "at": (run.finished_at or run.created_at).isoformat(),
                            "status": run.status, "destination": destination, "lines": change_lines(entry),
                            "change": entry})
    return history
