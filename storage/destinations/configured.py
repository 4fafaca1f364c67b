"""What the destinations reaching a remote system share: their section of the warehouse
settings (`configuration`, the Section class of their configuration.py), read on first use (so
describing a target never needs credentials), or given directly (tests, the Settings page's
Test connection)."""

from __future__ import annotations

from typing import ClassVar

from common.settings import Settings, get_settings
from storage.destinations import spool
from storage.destinations.configuration import Section


class Configured:
    configuration: ClassVar[type[Section]]

    def __init__(self, settings: Settings | None = None, config=None, chunk_rows: int = spool.DEFAULT_CHUNK_ROWS):
        self.settings = settings or get_settings()
        self._config = config
        self._client = None
        self.chunk_rows = chunk_rows

    @property
    def config(self):
        if self._config is None:
            from storage.destinations.settings import load_warehouse_settings

            self._config = getattr(load_warehouse_settings(self.settings), self.configuration.section)
        return self._config
