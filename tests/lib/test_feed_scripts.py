"""Feed scripts that use lib.paginate and lib.connection's budget, run by the real runner."""

from __future__ import annotations

import re

from core.preview import PreviewRequest, preview_script
from demo.api import DemoAPI

PAGED_SCRIPT = """\
from lib import connection, outputStream, paginate

connection.configure(max_in_flight=4)
for record in paginate("{url}/pages/page", style="page", params={{"count": 300}}, page_size=20, concurrency=4):
    outputStream.write({{"id": record["id"], "name": record["name"]}})
"""

CURSOR_SCRIPT = """\
from lib import connection, outputStream, paginate

connection.configure(rate=20, per="second", retries=3)
for record in paginate("{url}/pages/cursor", style="cursor", params={{"count": 120, "limit": 30}}):
    outputStream.write(record)
print("attempts", connection.attempts)
"""


def test_a_paginated_feed_waits_out_the_rate_limit_and_loads_every_record(tributary):
    # 15 pages, 4 at a time, from an API that allows 5 requests a second: some get a 429.
    with DemoAPI(rate_limit=5) as api:
        result = preview_script(PreviewRequest(script=PAGED_SCRIPT.format(url=api.url), run_to_completion=True))
        assert result.ok, (result.error, result.logs)
        assert result.count == 300
        assert [r["id"] for r in result.records] == list(range(1, 11))
        assert api.request_count == 15 + api.rejected
    waits = [line for line in result.logs if re.search(r"429 from 127\.0\.0\.1:\d+, waiting \d+\.\d s \(Retry-After\)",
                                                       line)]
    assert api.rejected >= 1 and len(waits) == api.rejected


def test_a_cursor_feed_within_its_budget(tributary, demo_api):
    result = preview_script(PreviewRequest(script=CURSOR_SCRIPT.format(url=demo_api.url), run_to_completion=True))
    assert result.ok, (result.error, result.logs)
    assert result.count == 120
    assert result.records[0] == next(iter(_records(demo_api)))
    assert "attempts 4" in result.logs


def _records(api):
    import requests

    return requests.get(api.url + "/pages/cursor", params={"limit": 1}, timeout=10).json()["data"]
