"""Offline demo REST API used by examples, tests and demos.

The server imitates the kinds of APIs Tributary pulls from (an open
catalogue, an offset-paginated feed, Basic Auth and OAuth-style bearer
token endpoints) without any network access. Everything it returns is
generated deterministically, so two processes always serve the same data
and tests can assert on exact values.

Standard library only, so it runs anywhere the app runs.

Endpoints (all JSON):
    GET  /health                      -> {"status": "ok"}
    GET  /entries[?category=&title=]  -> {"count", "entries"}  (1,425 entries)
    GET  /get-data?from=N&limit=M     -> {"data", "next", "total"}  (2,500 records)
    GET  /basic/entries               -> first 100 entries, HTTP Basic Auth
    POST /auth/token                  -> {"access_token", "token_type", "expires_in"}
    GET  /protected/data?page=N       -> {"data", "page", "next_page"}, Bearer token

Practice for slow, rate-limited APIs (the 2,500 records again, page by page; ?count=N serves
only the first N records):
    GET  /pages/next?after=ID&page_size=M  -> {"data", "next"}: the next page's URL in the body
                                              (?relative=1: a relative URL)
    GET  /pages/link?page=N&per_page=M     -> [records], Link: <...>; rel="next", rel="last"...
    GET  /pages/cursor?cursor=C&limit=M    -> {"data", "meta": {"next_cursor"}} (opaque cursor)
    GET  /pages/offset?offset=N&limit=M    -> {"data", "offset", "limit", "total"}
    GET  /pages/page?page=N&per_page=M     -> {"data", "page", "per_page", "total", "total_pages"}
                                              (offset and page: ?no_total=1 leaves the totals out)
    GET, POST /flaky?key=K&fail=N&status=503[&retry_after=S|date][&reset=S]
                                           -> `status` for the first N requests of key K, then
                                              {"key", "attempts"}
Any request takes ?latency=S (seconds, up to 10) to answer that much later, on top of the
server's latency_s. With rate_limit=N, more than N requests in one window of rate_window_s
(fixed windows of the server's clock) answer 429 with Retry-After (or, by rate_limit_header,
an HTTP date or X-RateLimit-Reset only). /health is never limited or counted. The server
counts every request per window (window_counts) for tests to check a client's budget.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import collections
import email.utils
import functools
import json
import math
import random
import secrets
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional
from urllib.parse import parse_qs, urlencode, urlsplit

__all__ = ["DemoAPI", "serve_in_background", "ENTRY_COUNT", "RECORD_COUNT"]

# --------------------------------------------------------------------------
# Deterministic datasets
# --------------------------------------------------------------------------

ENTRY_COUNT = 1425
RECORD_COUNT = 2500
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
BASIC_ENTRY_COUNT = 100
PROTECTED_RECORD_COUNT = 100
PROTECTED_PAGE_SIZE = 25
MAX_BODY_BYTES = 64 * 1024
MAX_LATENCY_S = 10.0
RATE_LIMIT_HEADERS = ("retry-after", "http-date", "reset", "none")
PAGE_STYLES = ("next", "link", "cursor", "offset", "page")

# Fixed seeds: random.Random with an int seed produces the same sequence in
# every process, which is what makes the data stable across runs.
_ENTRIES_SEED = 20240601
_RECORDS_SEED = 20240602

CATEGORIES = (
    "Animals", "Anime", "Anti-Malware", "Art & Design", "Authentication",
    "Blockchain", "Books", "Business", "Calendar", "Cloud Storage",
    "Continuous Integration", "Cryptocurrency", "Currency Exchange",
    "Data Validation", "Development", "Dictionaries", "Documents & Productivity",
    "Email", "Entertainment", "Environment", "Events", "Finance",
    "Food & Drink", "Games & Comics", "Geocoding", "Government", "Health",
    "Jobs", "Machine Learning", "Music", "News", "Open Data", "Patent",
    "Personality", "Phone", "Photography", "Programming", "Science & Math",
    "Security", "Shopping", "Social", "Sports & Fitness", "Transportation",
    "Vehicle", "Weather",
)

# 40 x 40 name parts give 1,600 distinct API names, enough for 1,425 unique
# entries without any collision handling.
_NAME_PREFIXES = (
    "Open", "Free", "Quick", "Smart", "Rapid", "Bright", "Clear", "Deep",
    "Easy", "Fast", "Global", "Happy", "Instant", "Just", "Keen", "Live",
    "Mega", "Neat", "Omni", "Prime", "Pure", "Real", "Simple", "True",
    "Ultra", "Vivid", "Wise", "Zen", "Agile", "Bold", "Cosmic", "Daily",
    "Epic", "Fresh", "Grand", "Hyper", "Iron", "Jolly", "Lunar", "Micro",
)
_NAME_SUFFIXES = (
    "Data", "Hub", "Stack", "Base", "Feed", "Cloud", "Link", "Point",
    "Track", "Scope", "Verse", "Works", "Box", "Flow", "Gate", "Grid",
    "Lab", "Map", "Net", "Path", "Pulse", "Query", "Sense", "Sync",
    "Vault", "View", "Wave", "Zone", "Bridge", "Cast", "Dash", "Engine",
    "Forge", "Graph", "Index", "Kit", "Ledger", "Mint", "Nest", "Stream",
)
_DESCRIPTION_VERBS = (
    "Search", "Browse", "Track", "Generate", "Look up", "Aggregate",
    "Explore", "Monitor", "Convert", "Validate",
)
_DESCRIPTION_OBJECTS = (
    "records", "facts", "statistics", "listings", "images", "metadata",
    "events", "prices", "reports", "resources",
)

_RECORD_ADJECTIVES = (
    "amber", "brisk", "calm", "dusty", "eager", "fuzzy", "gentle", "hollow",
    "icy", "jade", "lucky", "misty", "noble", "olive", "proud", "quiet",
)
_RECORD_NOUNS = (
    "falcon", "harbor", "meadow", "canyon", "river", "lantern", "orchard",
    "summit", "glacier", "prairie", "beacon", "thicket",
)
_RECORD_TAGS = (
    "alpha", "beta", "gamma", "delta", "retail", "wholesale", "priority",
    "archived", "trial", "enterprise", "internal", "external",
)
_OWNER_LOGINS = (
    "ada", "grace", "linus", "guido", "margaret", "ken", "barbara", "dennis",
    "frances", "edsger", "radia", "tim", "katherine", "john", "hedy",
    "alan", "donald", "sophie", "bjarne", "anita",
)
_RECORD_EPOCH = datetime(2023, 1, 1, tzinfo=timezone.utc)


@functools.lru_cache(maxsize=None)
def all_entries() -> tuple[dict[str, Any], ...]:
    """The full public-apis style catalogue, built once per process."""
    rng = random.Random(_ENTRIES_SEED)
    names = [prefix + suffix for prefix in _NAME_PREFIXES for suffix in _NAME_SUFFIXES]
    rng.shuffle(names)
    entries = [_make_entry(rng, index, name) for index, name in enumerate(names[:ENTRY_COUNT])]
    # The original catalogue is grouped by category, then alphabetical.
    entries.sort(key=lambda entry: (entry["Category"], entry["API"]))
    return tuple(entries)


def _make_entry(rng: random.Random, index: int, name: str) -> dict[str, Any]:
    # Round-robin categories so every category is populated (about 31 each).
    category = CATEGORIES[index % len(CATEGORIES)]
    verb = rng.choice(_DESCRIPTION_VERBS)
    obj = rng.choice(_DESCRIPTION_OBJECTS)
    return {
        "API": name,
        "Description": f"{verb} {category.lower()} {obj}",
        # Weighted so "no auth" and API keys dominate, as in the real list.
        "Auth": rng.choices(("", "apiKey", "OAuth"), weights=(5, 4, 1))[0],
        "HTTPS": rng.random() < 0.85,
        "Cors": rng.choice(("yes", "no", "unknown")),
        "Link": f"https://{name.lower()}.example.com/docs",
        "Category": category,
    }


@functools.lru_cache(maxsize=None)
def all_records() -> tuple[dict[str, Any], ...]:
    """The 2,500-record feed behind /get-data and /protected/data."""
    rng = random.Random(_RECORDS_SEED)
    return tuple(_make_record(rng, record_id) for record_id in range(1, RECORD_COUNT + 1))


def _make_record(rng: random.Random, record_id: int) -> dict[str, Any]:
    # created_at grows with the id (97-minute steps plus < 1h of jitter), so
    # incremental loads keyed on either column behave the same way.
    created = _RECORD_EPOCH + timedelta(minutes=record_id * 97 + rng.randrange(60))
    owner_index = rng.randrange(len(_OWNER_LOGINS))
    return {
        "id": record_id,
        "name": f"{rng.choice(_RECORD_ADJECTIVES)}-{rng.choice(_RECORD_NOUNS)}-{record_id}",
        "amount": round(rng.uniform(0.5, 5000.0), 2),
        "active": rng.random() < 0.7,
        "created_at": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "tags": rng.sample(_RECORD_TAGS, 2),
        "owner": {"id": owner_index + 1, "login": _OWNER_LOGINS[owner_index]},
    }


def filter_entries(query: dict[str, str]) -> list[dict[str, Any]]:
    """Apply the original API's optional filters (all case-insensitive)."""
    entries: list[dict[str, Any]] = list(all_entries())
    category = query.get("category")
    if category:
        entries = [e for e in entries if e["Category"].lower() == category.lower()]
    title = query.get("title")
    if title:
        entries = [e for e in entries if title.lower() in e["API"].lower()]
    return entries


# --------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------


class _HTTPError(Exception):
    """Raised by request helpers to short-circuit into a JSON error reply."""

    def __init__(self, status: int, message: str, headers: Optional[dict[str, str]] = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def _int_param(query: dict[str, str], name: str, default: int,
               minimum: int, maximum: Optional[int] = None) -> int:
    """Parse an integer query parameter, naming it in any 400 error."""
    return _number_param(query, name, default, minimum, maximum, int, "an integer")


def _float_param(query: dict[str, str], name: str, default: float, minimum: float, maximum: float) -> float:
    return _number_param(query, name, default, minimum, maximum, float, "a number")


def _number_param(query: dict[str, str], name: str, default: Any, minimum: Any, maximum: Any,
                  convert: Callable[[str], Any], kind: str) -> Any:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = convert(raw)
    except ValueError:
        raise _HTTPError(400, f"'{name}' must be {kind}, got {raw!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise _HTTPError(400, f"'{name}' must be {bounds}, got {value}")
    return value


# Response tuple returned by endpoint methods: (status, body, extra headers).
_Response = tuple[int, Any, dict[str, str]]

# path -> {method: handler method name}. Keeping routing in one table means a
# known path with the wrong method can answer 405 instead of a misleading 404.
_ROUTES: dict[str, dict[str, str]] = {
    "/health": {"GET": "_health"},
    "/entries": {"GET": "_entries"},
    "/get-data": {"GET": "_get_data"},
    "/basic/entries": {"GET": "_basic_entries"},
    "/auth/token": {"POST": "_auth_token"},
    "/protected/data": {"GET": "_protected_data"},
    **{f"/pages/{style}": {"GET": f"_pages_{style}"} for style in PAGE_STYLES},
    "/flaky": {"GET": "_flaky", "POST": "_flaky"},
}
# Never rate-limited, slowed down or counted: a client must always be able to ask if we are up.
_UNMETERED = frozenset({"/health"})


def _encode_cursor(next_id: int) -> str:
    return base64.urlsafe_b64encode(f"after:{next_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        label, _, value = text.partition(":")
        if label != "after":
            raise ValueError(text)
        return int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _HTTPError(400, f"'cursor' is not a cursor this API gave: {cursor!r}") from None


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    server_version = "TributaryDemoAPI/1.0"

    # -- dispatch ---------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 (stdlib naming)
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/") or "/"
        # Single-valued view of the query string; the last value wins.
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        metered = path not in _UNMETERED
        if metered:
            self.server.api.in_flight_change(+1)
        try:
            if metered:
                self._meter(query)
            status, body, headers = self._route(method, path, query)
        except _HTTPError as exc:
            status, body, headers = exc.status, {"error": exc.message}, exc.headers
        except Exception as exc:  # keep the server alive for the next request
            status, body, headers = 500, {"error": f"internal error: {exc}"}, {}
        finally:
            if metered:
                self.server.api.in_flight_change(-1)
        self._send_json(status, body, headers)

    def _meter(self, query: dict[str, str]) -> None:
        """Count the request, answer 429 past the rate limit, then wait out the latency."""
        api = self.server.api
        latency = _float_param(query, "latency", 0.0, 0.0, MAX_LATENCY_S)
        limited = api.count_request()
        if limited is not None:
            raise _HTTPError(429, "rate limit exceeded", limited)
        delay = api.latency_s + latency
        if delay > 0:
            time.sleep(delay)

    def _route(self, method: str, path: str, query: dict[str, str]) -> _Response:
        methods = _ROUTES.get(path)
        if methods is None:
            raise _HTTPError(404, f"not found: {path}")
        name = methods.get(method)
        if name is None:
            raise _HTTPError(405, f"method {method} not allowed on {path}",
                             {"Allow": ", ".join(sorted(methods))})
        return getattr(self, name)(query)

    def _send_json(self, status: int, body: Any, headers: dict[str, str]) -> None:
        payload = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        # Per-request stderr lines drown test and demo output; stay quiet.
        pass

    # -- request helpers --------------------------------------------------

    def _read_json_body(self) -> Any:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise _HTTPError(400, "invalid Content-Length") from None
        if length > MAX_BODY_BYTES:
            raise _HTTPError(413, "request body too large")
        raw = self.rfile.read(length) if length > 0 else b""
        try:
            return json.loads(raw or b"null")
        except ValueError:
            raise _HTTPError(400, "invalid_request: body must be JSON") from None

    def _basic_credentials(self) -> Optional[tuple[str, str]]:
        header = self.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic" or not encoded:
            return None
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        username, sep, password = decoded.partition(":")
        return (username, password) if sep else None

    def _bearer_token(self) -> Optional[str]:
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        return token.strip() or None

    # -- endpoints ----------------------------------------------------------

    def _health(self, query: dict[str, str]) -> _Response:
        return 200, {"status": "ok"}, {}

    def _entries(self, query: dict[str, str]) -> _Response:
        entries = filter_entries(query)
        return 200, {"count": len(entries), "entries": entries}, {}

    def _get_data(self, query: dict[str, str]) -> _Response:
        start = _int_param(query, "from", 1, minimum=1)
        limit = _int_param(query, "limit", DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT)
        records = all_records()
        page = list(records[start - 1:start - 1 + limit])
        # "next" is the id to pass as ?from= for the following page.
        next_id = start + limit if start - 1 + limit < len(records) else None
        return 200, {"data": page, "next": next_id, "total": len(records)}, {}

    def _basic_entries(self, query: dict[str, str]) -> _Response:
        if not self.server.api.check_basic(self._basic_credentials()):
            raise _HTTPError(401, "authentication required",
                             {"WWW-Authenticate": 'Basic realm="demo"'})
        entries = filter_entries(query)[:BASIC_ENTRY_COUNT]
        return 200, {"count": len(entries), "entries": entries}, {}

    def _auth_token(self, query: dict[str, str]) -> _Response:
        api = self.server.api
        api._count_token_request()
        body = self._read_json_body()
        if not isinstance(body, dict):
            raise _HTTPError(400, "invalid_request: body must be a JSON object")
        # Some clients nest credentials under "auth"; accept both shapes.
        creds = body["auth"] if isinstance(body.get("auth"), dict) else body
        token = api.issue_token(creds.get("client_id"), creds.get("client_secret"))
        if token is None:
            raise _HTTPError(401, "invalid_client")
        return 200, {"access_token": token, "token_type": "Bearer",
                     "expires_in": api.token_ttl_s}, {}

    def _protected_data(self, query: dict[str, str]) -> _Response:
        if not self.server.api.check_token(self._bearer_token()):
            raise _HTTPError(401, "invalid_token", {"WWW-Authenticate": 'Bearer realm="demo"'})
        page = _int_param(query, "page", 1, minimum=1)
        offset = (page - 1) * PROTECTED_PAGE_SIZE
        end = min(offset + PROTECTED_PAGE_SIZE, PROTECTED_RECORD_COUNT)
        data = list(all_records()[offset:end]) if offset < end else []
        next_page = page + 1 if end < PROTECTED_RECORD_COUNT else None
        return 200, {"data": data, "page": page, "next_page": next_page}, {}


    # -- pagination practice ---------------------------------------------------

    def _page_records(self, query: dict[str, str]) -> tuple[dict[str, Any], ...]:
        count = _int_param(query, "count", RECORD_COUNT, minimum=0, maximum=RECORD_COUNT)
        return all_records()[:count]

    def _self_url(self, path: str, params: dict[str, Any], relative: bool = False) -> str:
        query = urlencode({k: v for k, v in params.items() if v is not None})
        if relative:
            return f"{path}?{query}"
        host = self.headers.get("Host") or f"{self.server.api.host}:{self.server.api.port}"
        return f"http://{host}{path}?{query}"

    @staticmethod
    def _passed_on(query: dict[str, str], *names: str) -> dict[str, str]:
        """The query parameters a page link keeps (the dataset, the latency...)."""
        return {k: query[k] for k in ("count", "latency", "no_total", "relative", *names) if k in query}

    def _pages_next(self, query: dict[str, str]) -> _Response:
        records = self._page_records(query)
        after = _int_param(query, "after", 0, minimum=0)
        size = _int_param(query, "page_size", DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT)
        page = list(records[after:after + size])
        next_url = None
        if after + size < len(records):
            params = {**self._passed_on(query), "after": after + size, "page_size": size}
            next_url = self._self_url("/pages/next", params, relative=query.get("relative") == "1")
        return 200, {"data": page, "next": next_url}, {}

    def _pages_link(self, query: dict[str, str]) -> _Response:
        records = self._page_records(query)
        page = _int_param(query, "page", 1, minimum=1)
        size = _int_param(query, "per_page", 30, minimum=1, maximum=MAX_LIMIT)
        last = max(1, math.ceil(len(records) / size))
        data = list(records[(page - 1) * size:page * size])

        def link(number: int, rel: str) -> str:
            params = {**self._passed_on(query), "page": number, "per_page": size}
            return f'<{self._self_url("/pages/link", params)}>; rel="{rel}"'

        links = []
        if page < last:
            links.append(link(page + 1, "next"))
        if page > 1:
            links.append(link(page - 1, "prev"))
        links += [link(1, "first"), link(last, "last")]
        return 200, data, {"Link": ", ".join(links)}

    def _pages_cursor(self, query: dict[str, str]) -> _Response:
        records = self._page_records(query)
        cursor = query.get("cursor")
        after = _decode_cursor(cursor) if cursor else 0
        size = _int_param(query, "limit", DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT)
        page = list(records[after:after + size])
        next_cursor = _encode_cursor(after + size) if after + size < len(records) else None
        return 200, {"data": page, "meta": {"next_cursor": next_cursor, "count": len(page)}}, {}

    def _pages_offset(self, query: dict[str, str]) -> _Response:
        records = self._page_records(query)
        offset = _int_param(query, "offset", 0, minimum=0)
        size = _int_param(query, "limit", DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT)
        body: dict[str, Any] = {"data": list(records[offset:offset + size]), "offset": offset, "limit": size}
        if query.get("no_total") != "1":
            body["total"] = len(records)
        return 200, body, {}

    def _pages_page(self, query: dict[str, str]) -> _Response:
        records = self._page_records(query)
        page = _int_param(query, "page", 1, minimum=1)
        size = _int_param(query, "per_page", DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT)
        body: dict[str, Any] = {"data": list(records[(page - 1) * size:page * size]), "page": page,
                                "per_page": size}
        if query.get("no_total") != "1":
            body["total"] = len(records)
            body["total_pages"] = math.ceil(len(records) / size)
        return 200, body, {}

    def _flaky(self, query: dict[str, str]) -> _Response:
        key = query.get("key") or "default"
        fail = _int_param(query, "fail", 1, minimum=0)
        status = _int_param(query, "status", 503, minimum=400, maximum=599)
        attempts = self.server.api.count_attempt(key)
        if attempts <= fail:
            headers: dict[str, str] = {}
            retry_after = query.get("retry_after")
            if retry_after == "date":
                wait = _float_param(query, "wait", 1.0, 0.0, 3600.0)
                headers["Retry-After"] = email.utils.formatdate(self.server.api.clock() + wait, usegmt=True)
            elif retry_after:
                headers["Retry-After"] = retry_after
            if query.get("reset"):
                headers["X-RateLimit-Reset"] = query["reset"]
                headers["X-RateLimit-Remaining"] = "0"
            raise _HTTPError(status, f"failing on purpose ({attempts} of {fail})", headers)
        return 200, {"key": key, "attempts": attempts}, {}


class _Server(ThreadingHTTPServer):
    # Request threads must not keep the process (or a test run) alive.
    daemon_threads = True
    # socketserver's backlog of 5 drops the connections of a client that opens 8 at once;
    # each dropped one arrives a second late, when its SYN is sent again.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], api: "DemoAPI"):
        self.api = api
        super().__init__(address, _Handler)


# --------------------------------------------------------------------------
# Public server object
# --------------------------------------------------------------------------


def _same(given: Any, expected: str) -> bool:
    # Constant-time compare on bytes; non-string input is simply wrong.
    if not isinstance(given, str):
        return False
    return secrets.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


class DemoAPI:
    """The demo server. ``start()`` serves from a daemon thread.

    Use as ``with DemoAPI() as api: requests.get(api.url + "/health")``.
    Port 0 (the default) binds a free port; read it back from ``port``.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 username: str = "demo", password: str = "demo-password",
                 client_id: str = "demo-client", client_secret: str = "demo-secret",
                 token_ttl_s: int = 300, latency_s: float = 0.0, rate_limit: Optional[int] = None,
                 rate_window_s: float = 1.0, rate_limit_header: str = "retry-after",
                 clock: Callable[[], float] = time.time):
        if rate_limit_header not in RATE_LIMIT_HEADERS:
            raise ValueError(f"rate_limit_header must be one of {RATE_LIMIT_HEADERS}, got {rate_limit_header!r}")
        self.host = host
        # Slow and rate-limited API practice; each may be changed while the server runs.
        self.latency_s = latency_s
        self.rate_limit = rate_limit
        self.rate_window_s = rate_window_s
        self.rate_limit_header = rate_limit_header
        self.clock = clock  # the rate windows' clock (Unix time); tests may pass a fake one
        self.window_counts: collections.Counter[int] = collections.Counter()  # window -> requests
        self.request_count = 0  # every request but /health
        self.rejected = 0  # the 429s of the rate limit
        self.arrivals: list[float] = []  # clock() of each counted request
        self.in_flight = 0  # requests being answered now
        self.max_in_flight = 0  # the most answered at once
        self._attempts: collections.Counter[str] = collections.Counter()  # /flaky key -> requests
        self.username = username
        self.password = password
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_ttl_s = token_ttl_s
        # Counters for tests: every POST /auth/token, and the successful ones.
        self.token_requests = 0
        self.tokens_issued = 0
        self._requested_port = port
        self._tokens: dict[str, float] = {}  # token -> monotonic expiry time
        self._lock = threading.Lock()
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> "DemoAPI":
        """Bind and serve in a background daemon thread; returns self."""
        server = self._bind()
        # A short poll interval keeps stop() fast (shutdown waits one poll).
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,),
                                        name=f"demo-api-{self.port}", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self, on_ready: Optional[Callable[["DemoAPI"], None]] = None) -> None:
        """Serve in the calling thread until interrupted (used by ``python -m demo``)."""
        server = self._bind()
        if on_ready is not None:
            on_ready(self)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
            self._server = None

    def stop(self) -> None:
        """Stop serving and release the port. Safe to call more than once."""
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def _bind(self) -> _Server:
        if self._server is not None:
            raise RuntimeError("DemoAPI is already running")
        self._server = _Server((self.host, self._requested_port), self)
        return self._server

    def __enter__(self) -> "DemoAPI":
        return self if self._server is not None else self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._server is not None:
            return self._server.server_address[1]
        if self._requested_port:
            return self._requested_port
        raise RuntimeError("DemoAPI was asked for a free port and is not running yet")

    @property
    def url(self) -> str:
        # A wildcard bind is reachable locally via loopback.
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}"

    # -- auth state ---------------------------------------------------------

    def check_basic(self, credentials: Optional[tuple[str, str]]) -> bool:
        if credentials is None:
            return False
        username, password = credentials
        # Evaluate both so timing does not reveal which half was wrong.
        return _same(username, self.username) & _same(password, self.password)

    def issue_token(self, client_id: Any, client_secret: Any) -> Optional[str]:
        """Return a fresh bearer token, or None for wrong client credentials."""
        if not (_same(client_id, self.client_id) & _same(client_secret, self.client_secret)):
            return None
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = time.monotonic() + self.token_ttl_s
            self.tokens_issued += 1
        return token

    def check_token(self, token: Optional[str]) -> bool:
        if not token:
            return False
        with self._lock:
            expiry = self._tokens.get(token)
            if expiry is None:
                return False
            if expiry <= time.monotonic():
                del self._tokens[token]
                return False
            return True

    def expire_tokens(self) -> None:
        """Invalidate every issued token, to force clients through a refresh."""
        with self._lock:
            self._tokens.clear()

    # -- metering -------------------------------------------------------------

    def count_request(self) -> Optional[dict[str, str]]:
        """Count one request in its window; past the rate limit, the 429's headers."""
        with self._lock:
            now = self.clock()
            window = math.floor(now / self.rate_window_s)
            self.window_counts[window] += 1
            self.request_count += 1
            self.arrivals.append(now)
            if self.rate_limit is None or self.window_counts[window] <= self.rate_limit:
                return None
            self.rejected += 1
        reset_at = (window + 1) * self.rate_window_s
        headers = {"X-RateLimit-Limit": str(self.rate_limit), "X-RateLimit-Remaining": "0"}
        wait = max(1, math.ceil(reset_at - now))  # delay-seconds is a whole number
        if self.rate_limit_header == "retry-after":
            headers["Retry-After"] = str(wait)
        elif self.rate_limit_header == "http-date":
            headers["Retry-After"] = email.utils.formatdate(now + wait, usegmt=True)
        elif self.rate_limit_header == "reset":
            headers["X-RateLimit-Reset"] = str(math.ceil(reset_at))
        return headers

    def in_flight_change(self, step: int) -> None:
        with self._lock:
            self.in_flight += step
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def max_requests_per_window(self) -> int:
        with self._lock:
            return max(self.window_counts.values(), default=0)

    def max_requests_in_any(self, seconds: float) -> int:
        """The most requests that arrived within any `seconds` (a sliding window)."""
        with self._lock:
            times = sorted(self.arrivals)
        best, first = 0, 0
        for last, at in enumerate(times):
            while at - times[first] >= seconds:
                first += 1
            best = max(best, last - first + 1)
        return best

    def reset_counters(self) -> None:
        with self._lock:
            self.window_counts.clear()
            self.arrivals.clear()
            self._attempts.clear()
            self.request_count = self.rejected = self.max_in_flight = 0

    def count_attempt(self, key: str) -> int:
        with self._lock:
            self._attempts[key] += 1
            return self._attempts[key]

    def _count_token_request(self) -> None:
        with self._lock:
            self.token_requests += 1


def serve_in_background(host: str = "127.0.0.1", port: int = 0) -> DemoAPI:
    """Start a DemoAPI with default credentials and return it (already running)."""
    return DemoAPI(host=host, port=port).start()


def main(argv: Optional[list[str]] = None) -> int:
    """Command-line entry point: serve in the foreground until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m demo",
                                     description="Serve the offline Tributary demo API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--username", default="demo")
    parser.add_argument("--password", default="demo-password")
    parser.add_argument("--client-id", default="demo-client")
    parser.add_argument("--client-secret", default="demo-secret")
    parser.add_argument("--token-ttl", type=int, default=300, help="token lifetime in seconds")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    parser.add_argument("--rate-limit", type=int, default=None,
                        help="requests allowed per window; more answer 429")
    parser.add_argument("--rate-window", type=float, default=1.0, help="the rate limit's window in seconds")
    parser.add_argument("--rate-limit-header", choices=RATE_LIMIT_HEADERS, default="retry-after",
                        help="how a 429 names its wait")
    args = parser.parse_args(argv)
    api = DemoAPI(host=args.host, port=args.port, username=args.username,
                  password=args.password, client_id=args.client_id,
                  client_secret=args.client_secret, token_ttl_s=args.token_ttl,
                  latency_s=args.latency, rate_limit=args.rate_limit, rate_window_s=args.rate_window,
                  rate_limit_header=args.rate_limit_header)
    api.serve_forever(on_ready=lambda a: print(f"Demo API listening on {a.url}", flush=True))
    return 0
