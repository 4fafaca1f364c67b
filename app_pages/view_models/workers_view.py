"""What the Settings page shows of the workers (the celery executor's), without Streamlit."""

from __future__ import annotations

from dataclasses import dataclass

from common.clock import utcnow
from common.settings import get_settings
from core.workers import SEEN_WITHIN_S, seen_workers


@dataclass(frozen=True)
class WorkersOverview:
    executor: str
    rows: list[dict]  # one per worker seen in the last minute

    @property
    def distributed(self) -> bool:
        return self.executor == "celery"


def _ago(moment) -> str:
    return f"{max(0, int((utcnow() - moment).total_seconds()))} s ago"


def workers_overview() -> WorkersOverview:
    executor = get_settings().executor
    if executor != "celery":
        return WorkersOverview(executor, [])
    rows = [{"Worker": w.name, "Host": w.host, "Queues": ", ".join(w.queues), "Load": w.load,
             "Last seen": _ago(w.last_seen_at), "Started": f"{w.started_at:%Y-%m-%d %H:%M:%S} UTC",
             "Version": w.version or ""} for w in seen_workers(SEEN_WITHIN_S)]
    return WorkersOverview(executor, rows)
