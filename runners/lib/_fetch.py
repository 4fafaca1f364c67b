"""`lib.fetch_many` and `lib.paginate`: many requests through the connection, within its budget.

    for response in fetch_many([f"{base}/items/{i}" for i in ids], concurrency=8):
        outputStream.write(response.json())            # in the order of the list

    for record in paginate(f"{base}/orders", style="cursor"):
        outputStream.write(record)

Pagination styles:
    next    the body names the next page's URL       {"data": [...], "next": "https://...?page=3"}
    link    the Link header does (rel="next")         Link: <https://...?page=3>; rel="next"
    cursor  the body gives a token for the next page  {"data": [...], "meta": {"next_cursor": "..."}}
    offset  ?offset=N&limit=M                          {"data": [...], "total": 2500}
    page    ?page=N&per_page=M                         {"data": [...], "total_pages": 25}
With concurrency > 1, offset and page fetch the first page, read the total from it, and fetch
the rest at once (in order, within the budget); the other styles need each page to find the
next one, so they can only be walked one page at a time.
"""

from __future__ import annotations

import math
import queue
import threading
from collections import deque
from concurrent.futures import Future
from urllib.parse import urljoin

import requests

from lib._budget import log
from lib._runtime import MISSING, dig

STYLES = ("next", "link", "cursor", "offset", "page")
ITEM_KEYS = ("data", "items", "results", "records", "entries", "values", "value", "rows")
NEXT_KEYS = ("next", "next_url", "nextUrl", "links.next", "paging.next", "_links.next.href", "@odata.nextLink",
             "meta.next", "pagination.next")
CURSOR_KEYS = ("next_cursor", "nextCursor", "meta.next_cursor", "cursor", "next_page_token", "nextPageToken",
               "response_metadata.next_cursor", "pagination.next_cursor", "paging.cursors.after")
TOTAL_KEYS = ("total", "total_count", "totalCount", "meta.total", "pagination.total", "total_results")
TOTAL_PAGES_KEYS = ("total_pages", "totalPages", "meta.total_pages", "pagination.total_pages", "page_count")


def _session(session):
    if session is not None:
        return session
    import lib

    return lib.connection


def _call(session, item):
    """A function that sends one request of fetch_many: a URL, a dict of request() arguments
    (url, method, params, json, headers...), a (method, url) pair, or a requests.Request."""
    if isinstance(item, str):
        return lambda: session.request("GET", item)
    if isinstance(item, requests.Request):
        return lambda: session.send(session.prepare_request(item))
    if isinstance(item, dict):
        kwargs = dict(item)
        method = kwargs.pop("method", "GET")
        url = kwargs.pop("url")
        return lambda: session.request(method, url, **kwargs)
    if isinstance(item, (tuple, list)) and len(item) in (2, 3):
        method, url, *rest = item
        kwargs = rest[0] if rest else {}
        return lambda: session.request(method, url, **kwargs)
    raise TypeError(f"fetch_many takes URLs, dicts of request arguments, (method, url) pairs or requests.Request "
                    f"objects, got a {type(item).__name__}")


class _Workers:
    """Daemon threads that run calls: unlike a ThreadPoolExecutor's, a script that stops
    reading (or ends) is not kept waiting at exit by requests no one will read."""

    def __init__(self, count: int):
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._work, name=f"lib-fetch-{i}", daemon=True)
                         for i in range(count)]
        for thread in self._threads:
            thread.start()

    def submit(self, call) -> Future:
        future: Future = Future()
        self._queue.put((future, call))
        return future

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            future, call = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(call())
            except BaseException as exc:  # noqa: BLE001 - handed to the reader at its turn
                future.set_exception(exc)

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(None)


def fetch_many(requests_, concurrency: int = 4, session=None):
    """Send the requests (an iterable, read as it goes) from `concurrency` threads and yield
    their responses in the order of the requests. At most 2 x concurrency responses wait to be
    read. A request that fails (after the connection's retries) raises at its turn."""
    if int(concurrency) < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    session = _session(session)
    calls = (_call(session, item) for item in requests_)
    if concurrency == 1:
        for call in calls:
            yield call()
        return
    workers = _Workers(int(concurrency))
    pending: deque = deque()
    try:
        for call in calls:
            pending.append(workers.submit(call))
            if len(pending) >= 2 * concurrency:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
        workers.close()


def _first(data, paths) -> object:
    for path in paths:
        value = dig(data, path, MISSING)
        if value is not MISSING:
            return value
    return MISSING


def _json(response):
    try:
        return response.json()
    except ValueError:
        raise ValueError(f"page {response.url} is not JSON: {response.text[:200]!r}") from None


def _items(body, items, response):
    """The records of one page."""
    if callable(items):
        found = items(body)
    elif items is not None:
        found = dig(body, items, MISSING)
        if found is MISSING:
            raise ValueError(f"page {response.url} has no {items!r}")
    elif isinstance(body, list):
        found = body
    else:
        found = next((body[k] for k in ITEM_KEYS if isinstance(body, dict) and isinstance(body.get(k), list)), MISSING)
        if found is MISSING:
            keys = ", ".join(map(str, body)) if isinstance(body, dict) else type(body).__name__
            raise ValueError(f"page {response.url}: which field holds the records? Pass items=\"...\" (it has {keys})")
    if found is None:
        return []
    if not isinstance(found, list):
        raise ValueError(f"page {response.url}: {items or 'the records'} is a {type(found).__name__}, not a list")
    return found


def _number_at(body, response, key, keys, header):
    """A total read from the body (key, or the usual names) or from a header."""
    value = _first(body, keys) if key is None else dig(body, key, MISSING)
    if value is MISSING and header and response.headers.get(header):
        value = response.headers[header]
    try:
        return int(value) if value is not MISSING and value is not None else None
    except (TypeError, ValueError):
        return None


def paginate(url: str, style: str = "next", *, params: dict | None = None, items=None, pages: bool = False,
             session=None, concurrency: int = 1, max_pages: int | None = None, page_size: int = 100,
             next: str | None = None, cursor: str | None = None, cursor_param: str = "cursor",
             offset_param: str = "offset", limit_param: str | None = "limit", start: int | None = None,
             page_param: str = "page", size_param: str | None = "per_page", total: str | None = None,
             total_pages: str | None = None, **request_kwargs):
    """Walk a paginated endpoint and yield its records, one page after another (`pages=True`:
    yield each page's requests.Response instead).

    url, params     the first page (params are kept on every page but the next/link ones,
                    whose URL carries them)
    items           where a page's records are: a dotted path ("data", "result.items"), a
                    function of the JSON body, or None to look for a list in the usual places
    style           next | link | cursor | offset | page (see the module)
    next            next: the path of the next URL in the body (default: the usual names)
    cursor          cursor: the path of the next cursor in the body; cursor_param sends it
    offset_param, limit_param, start (0)          offset: the query parameters, first offset
    page_param, size_param, start (1)             page: the query parameters, first page
    page_size       offset's limit and page's per_page (None of the param names: not sent)
    total, total_pages   where the body says how many records or pages there are (default: the
                    usual names, then the X-Total-Count / X-Total-Pages headers); offset and
                    page stop there, or at an empty or short page
    concurrency     offset and page: fetch the pages after the first this many at once
    max_pages       stop after this many pages
    request_kwargs  passed to every request (headers, timeout, method="POST", json=...)
    """
    if style not in STYLES:
        raise ValueError(f"style must be one of {', '.join(STYLES)}, got {style!r}")
    if int(concurrency) > 1 and style not in ("offset", "page"):
        raise ValueError(f"style {style!r} finds each page from the one before: it cannot be fetched concurrently "
                         "(offset and page can)")
    options = dict(style=style, params=dict(params or {}), next=next, cursor=cursor, cursor_param=cursor_param,
                   offset_param=offset_param, limit_param=limit_param, start=start, page_param=page_param,
                   size_param=size_param, page_size=page_size, total=total, total_pages=total_pages,
                   concurrency=int(concurrency), items=items, max_pages=max_pages)
    return _paginate(url, _session(session), options, pages, max_pages, request_kwargs)


def _paginate(url, session, options, pages, max_pages, request_kwargs):
    method = request_kwargs.pop("method", "GET")
    walk = {"next": _walk_next, "link": _walk_next, "cursor": _walk_cursor, "offset": _walk_numbered,
            "page": _walk_numbered}[options["style"]]

    def send(page_url, page_params):
        response = session.request(method, page_url, params=page_params or None, **request_kwargs)
        response.raise_for_status()
        return response

    count = 0
    for response, records in walk(url, send, session, request_kwargs, method, options):
        if pages:
            yield response
        else:
            yield from records
        count += 1
        if max_pages is not None and count >= max_pages:
            return


def _walk_next(url, send, session, request_kwargs, method, o):
    page_url, params, seen = url, o["params"], set()
    while page_url:
        response = send(page_url, params)
        body = _json(response)
        records = _items(body, o["items"], response)
        yield response, records
        if o["style"] == "link":
            link = response.links.get("next", {}).get("url")
        else:
            link = dig(body, o["next"]) if o["next"] else _first(body, NEXT_KEYS)
            if isinstance(link, dict):
                link = link.get("href") or link.get("url")
            link = None if link is MISSING else link
        if not link or not isinstance(link, str):
            return
        page_url, params = urljoin(response.url, link), None  # the link carries its query
        if page_url in seen:
            raise RuntimeError(f"pagination loops: {page_url} was already fetched")
        seen.add(page_url)


def _walk_cursor(url, send, session, request_kwargs, method, o):
    params, seen = dict(o["params"]), set()
    while True:
        response = send(url, params)
        body = _json(response)
        records = _items(body, o["items"], response)
        yield response, records
        token = dig(body, o["cursor"]) if o["cursor"] else _first(body, CURSOR_KEYS)
        if token is MISSING or token in (None, "") or not records:
            return
        if token in seen:
            raise RuntimeError(f"pagination loops: the cursor {token!r} came back")
        seen.add(token)
        params = {**o["params"], o["cursor_param"]: token}


def _walk_numbered(url, send, session, request_kwargs, method, o):
    """offset and page: the position of each page is known in advance."""
    offset_style = o["style"] == "offset"
    size = o["page_size"]
    position = o["start"] if o["start"] is not None else (0 if offset_style else 1)

    def page_params(at):
        params = dict(o["params"])
        if offset_style:
            params[o["offset_param"]] = at
            if o["limit_param"] and size:
                params[o["limit_param"]] = size
        else:
            params[o["page_param"]] = at
            if o["size_param"] and size:
                params[o["size_param"]] = size
        return params

    first = send(url, page_params(position))
    body = _json(first)
    records = _items(body, o["items"], first)
    yield first, records
    total = _number_at(body, first, o["total"], TOTAL_KEYS, "X-Total-Count")
    pages_total = None if offset_style else _number_at(body, first, o["total_pages"], TOTAL_PAGES_KEYS,
                                                       "X-Total-Pages")
    if not records:
        return
    if o["concurrency"] > 1:
        positions = _remaining_positions(offset_style, position, len(records), size, total, pages_total)
        if positions is not None:
            if o["max_pages"] is not None:
                positions = positions[:max(0, o["max_pages"] - 1)]
            requests_ = [dict(method=method, url=url, params=page_params(at), **request_kwargs) for at in positions]
            for response in fetch_many(requests_, o["concurrency"], session):
                response.raise_for_status()
                yield response, _items(_json(response), o["items"], response)
            return
        log(f"{url}: the first page gives no total, so its pages are fetched one at a time")
    sent_size = bool(size and (o["limit_param"] if offset_style else o["size_param"]))
    step, done = len(records), len(records)
    while True:
        if offset_style:
            position += step
            if total is not None and done >= total:
                return
        else:
            position += 1
            if pages_total is not None and position > pages_total:
                return
            if pages_total is None and total is not None and done >= total:
                return
        if total is None and pages_total is None and sent_size and step < size:
            return  # a short page is the last
        response = send(url, page_params(position))
        body = _json(response)
        records = _items(body, o["items"], response)
        if not records:
            return
        yield response, records
        step, done = len(records), done + len(records)


def _remaining_positions(offset_style, first_position, first_count, size, total, pages_total):
    """The offsets or page numbers after the first page, when the first page tells the total."""
    if offset_style:
        if total is None:
            return None
        # The offsets of `total` records from the first (0, or 1 for an API that counts from 1).
        return list(range(first_position + first_count, first_position + total, first_count))
    if pages_total is None and total is not None and size:
        pages_total = first_position - 1 + math.ceil(total / max(first_count, 1)) if first_count else None
    if pages_total is None:
        return None
    return list(range(first_position + 1, pages_total + 1))
