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
"""

from __future__ import annotations

import argparse
import base64
import binascii
import functools
import json
import random
import secrets
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional
from urllib.parse import parse_qs, urlsplit

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
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _HTTPError(400, f"'{name}' must be an integer, got {raw!r}") from None
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
}


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
        try:
            status, body, headers = self._route(method, path, query)
        except _HTTPError as exc:
            status, body, headers = exc.status, {"error": exc.message}, exc.headers
        except Exception as exc:  # keep the server alive for the next request
            status, body, headers = 500, {"error": f"internal error: {exc}"}, {}
        self._send_json(status, body, headers)

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


class _Server(ThreadingHTTPServer):
    # Request threads must not keep the process (or a test run) alive.
    daemon_threads = True

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
                 token_ttl_s: int = 300):
        self.host = host
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
    args = parser.parse_args(argv)
    api = DemoAPI(host=args.host, port=args.port, username=args.username,
                  password=args.password, client_id=args.client_id,
                  client_secret=args.client_secret, token_ttl_s=args.token_ttl)
    api.serve_forever(on_ready=lambda a: print(f"Demo API listening on {a.url}", flush=True))
    return 0
