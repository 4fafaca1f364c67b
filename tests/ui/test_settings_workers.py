"""The Settings page's Workers tab: with the celery executor, each worker seen in the last
minute with its host, queues and load; none seen warns that queued runs wait; with the local
executor, one line says there are no workers."""

from __future__ import annotations

import socket

from core import bootstrap
from core.workers import Presence
from tests.ui.conftest import new_app, texts

SETTINGS_PAGE = "app_pages/settings.py"


def _settings():
    at = new_app()
    at.switch_page(SETTINGS_PAGE).run()
    assert not at.exception, at.exception
    return at


def test_the_workers_seen_show_with_their_host_queues_and_load(tributary, monkeypatch):
    monkeypatch.setenv("TRIBUTARY_EXECUTOR", "celery")
    monkeypatch.setenv("TRIBUTARY_CELERY_BROKER_URL", "redis://127.0.0.1:1/0")
    bootstrap.build().start()
    presence = Presence("tributary-7@box", ["tributary.runs", "big-memory"], 4, interval_s=60).start()
    try:
        at = _settings()
        [table] = [d.value for d in at.dataframe if "Worker" in d.value.columns]
        assert list(table["Worker"]) == ["tributary-7@box"]
        assert list(table["Host"]) == [socket.gethostname()]
        assert list(table["Queues"]) == ["tributary.runs, big-memory"]
        assert list(table["Load"]) == ["0 / 4"]
        assert table["Last seen"][0].endswith("s ago")
    finally:
        presence.stop()
    at = _settings()
    assert "No worker seen in the last minute: queued runs wait until a worker starts." in texts(at)


def test_the_local_executor_has_no_workers_to_show(tributary, monkeypatch):
    monkeypatch.delenv("TRIBUTARY_EXECUTOR", raising=False)
    at = _settings()
    assert "there are no workers to show" in texts(at)
    assert not [d for d in at.dataframe if "Worker" in d.value.columns]
