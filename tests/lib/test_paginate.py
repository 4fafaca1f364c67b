"""lib.paginate walks every pagination style of the demo API to its last page."""

from __future__ import annotations

import pytest
import requests


@pytest.fixture
def walk(lib, demo_api):
    from lib._connection import ResilientSession

    session = ResilientSession()

    def walk(path, style, **kwargs):
        pages = list(lib.paginate(demo_api.url + path, style, session=session, pages=True, **kwargs))
        items = kwargs.get("items")
        ids = [record["id"] for page in pages
               for record in (page.json() if style == "link" else _dig(page.json(), items or "data"))]
        return pages, ids

    yield walk
    session.close()


def _dig(body, path):
    for part in path.split("."):
        body = body[part]
    return body


@pytest.mark.parametrize("style, path, params, kwargs, pages", [
    ("next", "/pages/next", {"count": 230, "page_size": 25}, {}, 10),
    ("next", "/pages/next", {"count": 230, "page_size": 25, "relative": 1}, {}, 10),
    ("link", "/pages/link", {"count": 230, "per_page": 25}, {}, 10),
    ("cursor", "/pages/cursor", {"count": 230, "limit": 25}, {}, 10),
    ("offset", "/pages/offset", {"count": 230}, {"page_size": 25}, 10),
    ("offset", "/pages/offset", {"count": 230, "no_total": 1}, {"page_size": 25}, 10),
    ("offset", "/pages/offset", {"count": 250, "no_total": 1}, {"page_size": 25}, 10),  # and an empty 11th
    ("page", "/pages/page", {"count": 230}, {"page_size": 25}, 10),
    ("page", "/pages/page", {"count": 230, "no_total": 1}, {"page_size": 25}, 10),
])
def test_each_style_walks_to_the_last_page(walk, style, path, params, kwargs, pages):
    responses, ids = walk(path, style, params=params, **kwargs)
    assert ids == list(range(1, 231 if params["count"] == 230 else 251))
    assert len(responses) == pages


def test_records_are_yielded_by_default(lib, demo_api):
    from lib._connection import ResilientSession

    with ResilientSession() as session:
        records = list(lib.paginate(demo_api.url + "/pages/cursor", "cursor", session=session,
                                    params={"count": 60, "limit": 25}))
        assert [r["id"] for r in records] == list(range(1, 61))
        # A named path and a named cursor field work the same.
        named = lib.paginate(demo_api.url + "/pages/cursor", "cursor", session=session, items="data",
                             cursor="meta.next_cursor", params={"count": 60, "limit": 25})
        assert [r["id"] for r in named] == list(range(1, 61))
        # /get-data: offset pagination with other parameter names and a start of 1.
        get_data = lib.paginate(demo_api.url + "/get-data", "offset", session=session, offset_param="from",
                                start=1, page_size=1000)
        assert [r["id"] for r in get_data] == list(range(1, 2501))


@pytest.mark.parametrize("style, path, size_name", [("offset", "/pages/offset", "limit"),
                                                    ("page", "/pages/page", "per_page")])
def test_offset_and_page_fetch_concurrently_with_a_known_total(lib, demo_api, style, path, size_name):
    from lib._connection import ResilientSession

    demo_api.reset_counters()
    with ResilientSession() as session:
        pages = list(lib.paginate(demo_api.url + path, style, session=session, pages=True, concurrency=6,
                                  page_size=25, params={"latency": 0.02}))
    ids = [record["id"] for page in pages for record in page.json()["data"]]
    assert ids == list(range(1, 2501)) and len(pages) == 100
    assert demo_api.request_count == 100  # not one page past the end
    assert demo_api.max_in_flight > 1


def test_concurrency_without_a_total_walks_one_page_at_a_time(lib, demo_api, log_lines):
    from lib._connection import ResilientSession

    with ResilientSession() as session:
        records = list(lib.paginate(demo_api.url + "/pages/page", "page", session=session, concurrency=4,
                                    page_size=40, params={"count": 100, "no_total": 1}))
    assert [r["id"] for r in records] == list(range(1, 101))
    assert any("no total" in line for line in log_lines)


def test_styles_that_chain_cannot_be_concurrent(lib, demo_api):
    with pytest.raises(ValueError, match="cannot be fetched concurrently"):
        lib.paginate(demo_api.url + "/pages/cursor", "cursor", concurrency=4)
    with pytest.raises(ValueError, match="style must be one of"):
        lib.paginate(demo_api.url + "/pages/cursor", "token")


def test_max_pages_and_errors(lib, demo_api):
    from lib._connection import ResilientSession

    with ResilientSession() as session:
        two = list(lib.paginate(demo_api.url + "/pages/link", "link", session=session, max_pages=2,
                                params={"per_page": 10}))
        assert [r["id"] for r in two] == list(range(1, 21))
        with pytest.raises(requests.HTTPError):
            list(lib.paginate(demo_api.url + "/pages/cursor", "cursor", session=session,
                              params={"cursor": "bogus"}))
        with pytest.raises(ValueError, match="which field holds the records"):
            list(lib.paginate(demo_api.url + "/health", "next", session=session))


def test_paginate_uses_the_connection_by_default(lib, demo_api):
    lib.connection.configure(rate=None, max_in_flight=None)
    records = list(lib.paginate(demo_api.url + "/pages/next", params={"count": 30, "page_size": 10}))
    assert len(records) == 30


@pytest.mark.parametrize("concurrency", [1, 3])
def test_an_offset_counted_from_1_reaches_the_last_record(lib, demo_api, concurrency):
    from lib._connection import ResilientSession

    # /get-data?from=1: 833 a page ends with a page of one record, at offset 2500.
    with ResilientSession() as session:
        records = list(lib.paginate(demo_api.url + "/get-data", "offset", session=session, offset_param="from",
                                    start=1, page_size=833, concurrency=concurrency))
    assert [r["id"] for r in records] == list(range(1, 2501))


def test_max_pages_bounds_the_concurrent_mode(lib, demo_api):
    from lib._connection import ResilientSession

    demo_api.reset_counters()
    with ResilientSession() as session:
        records = list(lib.paginate(demo_api.url + "/pages/page", "page", session=session, concurrency=4,
                                    page_size=10, max_pages=3))
    assert [r["id"] for r in records] == list(range(1, 31))
    assert demo_api.request_count == 3
