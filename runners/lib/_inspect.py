"""The request inspector: every HTTP request the script makes, through `lib.connection` or plain
`requests` / `urllib3`, recorded for the Test stage and the run's counts.

install() (called by the harness before the script starts) patches `requests.Session.send`
and `urllib3`'s `HTTPConnectionPool.urlopen` as those modules are imported, so that a script
importing requests itself is covered too, and nothing is imported that the script does not use.

Each request is one line of out/requests.jsonl, appended as the request ends (a test killed
midway still shows those before), at most MAX_ENTRIES lines and MAX_FILE_BYTES bytes; the
harness appends a {"summary": ...} line with the counts of every request at exit:

    {"n", "method", "url", "status", "duration_ms", "bytes", "body", "body_truncated",
     "attempts", "retries", "waits": [[seconds, why]], "request_headers": [names],
     "content_type", "kind": "request" | "token", "error"}

Secrets never reach the file: the URL's credentials and the values of query parameters named
like secrets become ****, and every known secret (the connection's, and a Custom Auth token
once fetched) is masked in the URL, the body excerpt and the error. Request headers are
recorded by name only, request bodies not at all, and the token call's answer not at all.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import json
import os
import re
import sys
import threading
import time
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

from lib import _runtime

MAX_ENTRIES = 500
MAX_FILE_BYTES = 1024 * 1024
BODY_BYTES = 4096
FILE_NAME = "requests.jsonl"
MASK = "****"

# Query parameters and JSON fields whose values are secrets whatever they hold.
SECRET_NAMES = re.compile(
    r"(^|[_-])(token|access[_-]?token|refresh[_-]?token|id[_-]?token|api[_-]?key|apikey|key|secret|"
    r"client[_-]?secret|password|passwd|pwd|signature|sig|auth|authorization|session|credentials?)$",
    re.IGNORECASE,
)
_JSON_SECRET = re.compile(
    r'("(?:access_token|refresh_token|id_token|token|api_key|apikey|client_secret|secret|password)"\s*:\s*)'
    r'"(?:[^"\\]|\\.)*"',
    re.IGNORECASE,
)

_local = threading.local()
_lock = threading.Lock()
_state = {"installed": False, "entries": 0, "bytes_written": 0, "dropped": 0}
_totals = {"requests": 0, "attempts": 0, "retries": 0, "waits": 0, "waited_s": 0.0, "bytes": 0, "errors": 0,
           "token_calls": 0}


def out_path() -> str:
    return os.path.join(_runtime.OUT_DIR, FILE_NAME)


# -- masking -----------------------------------------------------------------------------------

def mask_url(url: str) -> str:
    """The URL with its credentials, secret-named query values and known secrets masked."""
    try:
        parts = urlsplit(str(url))
    except ValueError:
        return _runtime.mask_text(str(url))
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.partition(":")[0]
        netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else f"{user}@{host}"
    query = parts.query
    if query:
        pairs = []
        for name, value in parse_qsl(query, keep_blank_values=True):
            if value and SECRET_NAMES.search(name):
                value = MASK
            pairs.append(f"{quote(name, safe='[]._-~')}={quote(value, safe='*._-~:/,')}")
        query = "&".join(pairs)
    return _runtime.mask_text(urlunsplit((parts.scheme, netloc, parts.path, query, "")))


def mask_body(text: str) -> str:
    return _runtime.mask_text(_JSON_SECRET.sub(lambda m: f'{m.group(1)}"{MASK}"', text))


_TEXT_TYPES = ("json", "text", "xml", "javascript", "html", "csv", "x-www-form-urlencoded")


def excerpt(data: bytes | None, content_type: str | None = None) -> tuple[str | None, bool]:
    """The body's first BODY_BYTES as text, secrets masked; none of a binary body."""
    if not data:
        return None, False
    if content_type and not any(kind in content_type.lower() for kind in _TEXT_TYPES):
        return None, False
    head = bytes(data[:BODY_BYTES])
    return mask_body(head.decode("utf-8", errors="replace")), len(data) > BODY_BYTES


# -- what the recording knows of the request in progress -----------------------------------------

def _stack() -> list:
    stack = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    return stack


@contextlib.contextmanager
def marked(kind: str):
    """Requests made within are recorded with this kind ("token": the Custom Auth token call)."""
    previous = getattr(_local, "kind", None)
    _local.kind = kind
    try:
        yield
    finally:
        _local.kind = previous


def note_wait(seconds: float, why: str) -> None:
    """A wait before a retry of the request in progress (lib.connection's retries)."""
    stack = _stack()
    if stack:
        stack[-1]["waits"].append([round(float(seconds), 3), str(why)[:200]])


def _start(method, url) -> dict:
    return {"method": str(method or "GET").upper()[:16], "url": str(url), "status": None, "attempts": 0,
            "waits": [], "started": time.monotonic(), "kind": getattr(_local, "kind", None) or "request",
            "request_headers": [], "bytes": None, "body": None, "body_truncated": False, "content_type": None,
            "error": None}


def _finish(entry: dict) -> None:
    duration_ms = round((time.monotonic() - entry.pop("started")) * 1000, 1)
    token = entry["kind"] == "token"
    line = {
        "method": entry["method"], "url": mask_url(entry["url"]), "status": entry["status"],
        "duration_ms": duration_ms, "bytes": entry["bytes"],
        "body": None if token else entry["body"], "body_truncated": False if token else entry["body_truncated"],
        "content_type": entry["content_type"], "attempts": max(1, entry["attempts"]),
        "retries": max(0, entry["attempts"] - 1), "waits": entry["waits"],
        "request_headers": sorted(set(entry["request_headers"]))[:50], "kind": entry["kind"],
        "error": _runtime.mask_text(entry["error"])[:500] if entry["error"] else None,
    }
    with _lock:
        _totals["requests"] += 1
        _totals["attempts"] += line["attempts"]
        _totals["retries"] += line["retries"]
        _totals["waits"] += len(line["waits"])
        _totals["waited_s"] = round(_totals["waited_s"] + sum(w[0] for w in line["waits"]), 3)
        _totals["bytes"] += line["bytes"] or 0
        _totals["errors"] += 1 if line["error"] or (line["status"] or 0) >= 400 else 0
        _totals["token_calls"] += 1 if token else 0
        line["n"] = _totals["requests"]
        _append(line)


def _append(line: dict) -> None:
    """Append one line to out/requests.jsonl, within the file's bounds (called under _lock)."""
    if _state["entries"] >= MAX_ENTRIES:
        _state["dropped"] += 1
        return
    data = (json.dumps(line, ensure_ascii=False, default=str) + "\n").encode("utf-8")
    if _state["bytes_written"] + len(data) > MAX_FILE_BYTES - 4096:  # room left for the summary
        _state["dropped"] += 1
        return
    if not _write(data):
        return
    _state["entries"] += 1
    _state["bytes_written"] += len(data)


def _write(data: bytes) -> bool:
    try:
        os.makedirs(_runtime.OUT_DIR, exist_ok=True)
        fd = os.open(out_path(), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return False
    try:
        os.write(fd, data)  # one write per line: lines of threads never interleave
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def totals() -> dict:
    with _lock:
        return {**_totals, "recorded": _state["entries"], "dropped": _state["dropped"]}


def write_summary() -> None:
    """The counts of every request, the file's last line (the harness calls it at exit)."""
    if not _state["installed"]:
        return
    summary = totals()
    if summary["requests"] == 0:
        return
    with _lock:
        _write((json.dumps({"summary": summary}) + "\n").encode("utf-8"))


# -- the patches ---------------------------------------------------------------------------------

def _headers_of(headers) -> list[str]:
    try:
        return [str(name)[:100] for name in (headers or {})]
    except Exception:  # noqa: BLE001 - a header mapping of the script's own making
        return []


def _patch_session(sessions_module) -> None:
    Session = sessions_module.Session
    if getattr(Session.send, "_tributary_inspected", False):
        return
    original = Session.send

    def send(self, request, **kwargs):
        entry = _start(getattr(request, "method", None), getattr(request, "url", ""))
        entry["request_headers"] = _headers_of(getattr(request, "headers", None))
        stack = _stack()
        stack.append(entry)
        try:
            response = original(self, request, **kwargs)
        except BaseException as exc:
            entry["error"] = f"{type(exc).__name__}: {exc}"
            raise
        else:
            _describe_response(entry, response, kwargs.get("stream", False))
            return response
        finally:
            stack.pop()
            with contextlib.suppress(Exception):
                _finish(entry)

    send._tributary_inspected = True
    Session.send = send


def _describe_response(entry: dict, response, stream: bool) -> None:
    entry["status"] = getattr(response, "status_code", None)
    headers = getattr(response, "headers", None) or {}
    entry["content_type"] = (headers.get("Content-Type") or "")[:100] or None
    if not stream and getattr(response, "_content_consumed", False):
        content = response._content or b""
        entry["bytes"] = len(content)
        entry["body"], entry["body_truncated"] = excerpt(content, entry["content_type"])
    else:
        length = headers.get("Content-Length")
        entry["bytes"] = int(length) if length and str(length).isdigit() else None


def _patch_pool(connectionpool_module) -> None:
    Pool = connectionpool_module.HTTPConnectionPool
    if getattr(Pool.urlopen, "_tributary_inspected", False):
        return
    original = Pool.urlopen

    def urlopen(self, method, url, *args, **kwargs):
        stack = _stack()
        if stack:  # within requests' send (or an outer urlopen retrying): one more attempt of it
            stack[-1]["attempts"] += 1
            response = original(self, method, url, *args, **kwargs)
            if not stack[-1].get("via_requests", True):
                stack[-1]["status"] = getattr(response, "status", None)
            return response
        entry = _start(method, _full_url(self, url))
        entry["via_requests"] = False
        entry["request_headers"] = _headers_of(kwargs.get("headers") or (args[1] if len(args) > 1 else None))
        entry["attempts"] = 1
        stack.append(entry)
        try:
            response = original(self, method, url, *args, **kwargs)
        except BaseException as exc:
            entry["error"] = f"{type(exc).__name__}: {exc}"
            raise
        else:
            entry["status"] = getattr(response, "status", None)
            headers = getattr(response, "headers", None) or {}
            entry["content_type"] = (headers.get("Content-Type") or "")[:100] or None
            data = getattr(response, "_body", None)
            if data is not None:  # read already (preload_content, urllib3's default)
                entry["bytes"] = len(data)
                entry["body"], entry["body_truncated"] = excerpt(data, entry["content_type"])
            else:
                length = headers.get("Content-Length")
                entry["bytes"] = int(length) if length and str(length).isdigit() else None
            return response
        finally:
            stack.pop()
            entry.pop("via_requests", None)
            with contextlib.suppress(Exception):
                _finish(entry)

    urlopen._tributary_inspected = True
    Pool.urlopen = urlopen


def _full_url(pool, url) -> str:
    url = str(url)
    if url.startswith(("http://", "https://")):
        return url
    scheme = getattr(pool, "scheme", "http")
    host = getattr(pool, "host", "")
    port = getattr(pool, "port", None)
    default = {"http": 80, "https": 443}.get(scheme)
    where = f"{host}:{port}" if port and port != default else host
    return f"{scheme}://{where}{url}"


_PATCHES = {"requests.sessions": _patch_session, "urllib3.connectionpool": _patch_pool}


class _PatchingLoader(importlib.abc.Loader):
    def __init__(self, inner, patch):
        self._inner, self._patch = inner, patch

    def create_module(self, spec):
        return self._inner.create_module(spec)

    def exec_module(self, module):
        self._inner.exec_module(module)
        with contextlib.suppress(Exception):  # an unknown version of the module: left as it is
            self._patch(module)

    def __getattr__(self, name):
        return getattr(self._inner, name)


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Patches requests and urllib3 as they are imported (they may never be)."""

    def find_spec(self, name, path, target=None):
        patch = _PATCHES.get(name)
        if patch is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _PatchingLoader(spec.loader, patch)
        return spec


def install() -> None:
    """Record every request from now on (modules imported already are patched at once)."""
    if _state["installed"]:
        return
    _state["installed"] = True
    for name, patch in _PATCHES.items():
        module = sys.modules.get(name)
        if module is not None:
            with contextlib.suppress(Exception):
                patch(module)
    sys.meta_path.insert(0, _PatchOnImport())
