"""`lib.connection`: a requests.Session carrying the feed connection's authentication, with
retries and a request budget.

Custom Auth: the token is fetched from the authorization URL (POST of the JSON body with the
configured headers) on first use, and fetched again once when the API answers 401.

Every request through the session (each redirect too) goes through its transport adapter,
which waits for the connection's budget (see lib/_budget.py) before each attempt and retries
what lib/_retry.py says to, logging each wait:

    429 from api.example.com, waiting 2.0 s (Retry-After)

Defaults: 5 retries, no rate and no in-flight limit. The connection's settings may give others
(params["limits"], the same names as configure()), and the script may change them:

    connection.configure(rate=10, per="second", max_in_flight=4, retries=5)
"""

from __future__ import annotations

import collections
import threading
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from lib import _inspect, _runtime
from lib._budget import Budget, Timing, log
from lib._retry import RetryPolicy, server_wait

# Enough pooled connections for fetch_many's threads: past the pool's size urllib3 opens
# connections it then throws away, with a warning each time.
POOL_SIZE = 64
CONFIG_KEYS = ("rate", "per", "max_in_flight", "retries", "backoff", "max_backoff", "max_wait", "retry_on",
               "retry_methods", "timeout")


def _dig(data, path: str):
    """Follow a dotted path ("access_token", "data.token") into a JSON response."""
    value = _runtime.dig(data, path, _runtime.MISSING)
    if value is _runtime.MISSING:
        raise RuntimeError(f"the auth response has no value at {path!r}")
    return value


def host_of(url: str) -> str:
    return urlsplit(url).netloc.rpartition("@")[2] or url


def _replayable(request: requests.PreparedRequest) -> bool:
    """A body that is a stream or a generator is gone once sent: such a request is not retried."""
    body = request.body
    return body is None or isinstance(body, (bytes, str))


class BudgetAdapter(HTTPAdapter):
    """Sends each attempt within the session's budget and retries by its policy."""

    def __init__(self, session: "ResilientSession"):
        super().__init__(pool_connections=10, pool_maxsize=POOL_SIZE)
        self._session = session

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        session = self._session
        if timeout is None:
            timeout = session.default_timeout
        host = host_of(request.url)
        retry = 0
        while True:
            response = error = None
            with session.budget.slot(host):
                try:
                    response = super().send(request, stream=stream, timeout=timeout, verify=verify, cert=cert,
                                            proxies=proxies)
                except (requests.ConnectionError, requests.Timeout) as exc:
                    error = exc
            session.attempts += 1
            wait = self._wait_before_retry(request, response, error, retry, host)
            if wait is None:
                if error is not None:
                    raise error
                return response  # as it came, or the last answer once retrying is over
            retry += 1
            if response is not None:
                response.close()  # its connection goes back to the pool
            session.timing.sleep(wait)

    def _wait_before_retry(self, request, response, error, retry: int, host: str) -> float | None:
        """How long to wait before trying the request again; None: do not try it again."""
        session = self._session
        policy = session.retry_policy
        if response is not None and not policy.retryable_response(request.method, response):
            return None
        if error is not None and not policy.retryable_error(request.method, error):
            return None
        what = str(response.status_code) if response is not None else type(error).__name__
        if not _replayable(request):
            log(f"{what} from {host}, not retried: the request's body cannot be sent again")
            return None
        if retry >= policy.retries:
            if retry:
                log(f"{what} from {host}, giving up after {retry} retries")
            return None
        named = server_wait(policy, response, session.timing.time()) if response is not None else None
        if named is None:
            wait = policy.backoff_s(retry + 1, session.timing.random())
            reason = f"backoff, retry {retry + 1} of {policy.retries}"
        else:
            wait, reason = named
            if wait > policy.max_wait:
                log(f"{what} from {host}: {reason} asks for {wait:.0f} s, more than max_wait "
                    f"({policy.max_wait:g} s); not waiting")
                return None
            session.budget.pause_for(wait)  # the server's word is for the connection: every thread waits
        log(f"{what} from {host}, waiting {wait:.1f} s ({reason})")
        session.retry_waits.append((what, host, round(wait, 3), reason))
        _inspect.note_wait(wait, f"{what}: {reason}")
        return wait


class ResilientSession(requests.Session):
    """A requests.Session whose requests respect a budget and are retried (see the module)."""

    def __init__(self, limits: dict | None = None, timing: Timing | None = None):
        super().__init__()
        self.timing = timing or Timing()
        self.attempts = 0  # requests sent, retries included
        # The latest waits: (status or error, host, seconds, why).
        self.retry_waits: collections.deque[tuple[str, str, float, str]] = collections.deque(maxlen=1000)
        self.default_timeout = None
        self._settings: dict = {}
        self.configure(**(limits or {}))
        adapter = BudgetAdapter(self)
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def configure(self, rate: float | None = ..., per=..., max_in_flight: int | None = ..., retries: int = ...,
                  backoff: float = ..., max_backoff: float = ..., max_wait: float = ..., retry_on=...,
                  retry_methods=..., timeout=...) -> "ResilientSession":
        """Change the connection's budget and retries; names left out keep their value.

        rate, per       at most `rate` requests per `per` ("second", "minute", "hour", or
                        seconds); rate=None: no limit
        max_in_flight   at most this many requests at once (None: no limit)
        retries         how many times a failed request is tried again (0: never)
        backoff         the first retry's wait when the server names none (seconds; doubles)
        max_backoff     the longest such wait
        max_wait        a server asking for a longer wait has its answer returned instead
        retry_on        the statuses retried (default 429, 502, 503, 504)
        retry_methods   the methods retried after an answer that may have been processed
        timeout         the timeout of requests that give none (seconds, or (connect, read))
        """
        given = {k: v for k, v in locals().items() if k in CONFIG_KEYS and v is not ...}
        settings = {**self._settings, **given}
        policy_args = {"retries": settings.get("retries", 5)}
        for name in ("backoff", "max_backoff", "max_wait"):
            if settings.get(name) is not None:
                policy_args[name] = float(settings[name])
        if settings.get("retry_on") is not None:
            policy_args["statuses"] = frozenset(settings["retry_on"])
        if settings.get("retry_methods") is not None:
            policy_args["methods"] = frozenset(settings["retry_methods"])
        policy_args["retries"] = int(policy_args["retries"] if policy_args["retries"] is not None else 0)
        policy = RetryPolicy(**policy_args)
        old = getattr(self, "budget", None)
        budget = Budget(settings.get("rate"), settings.get("per") or "second", settings.get("max_in_flight"),
                        timing=self.timing)
        if old is not None:
            budget.paused_until = old.paused_until
        self._settings, self.retry_policy, self.budget = settings, policy, budget
        self.default_timeout = settings.get("timeout")
        return self

    @property
    def settings(self) -> dict:
        return dict(self._settings)


class CustomAuthSession(ResilientSession):
    def __init__(self, params: dict, secrets: dict, limits: dict | None = None, timing: Timing | None = None):
        super().__init__(limits, timing)
        self._auth_url = params["auth_url"]
        self._token_path = params.get("token_path") or "access_token"
        template = params.get("token_header") or "Authorization: Bearer <token>"
        name, _, value = template.partition(":")
        self._header_name, self._header_value = name.strip(), value.strip()
        self._auth_headers = secrets.get("headers") or {}
        self._auth_body = secrets.get("body")
        self._token = None
        self._token_lock = threading.Lock()
        self.token_fetches = 0

    def refresh_token(self) -> str:
        with _inspect.marked("token"):  # the inspector marks the token call (and keeps none of its answer)
            response = requests.post(self._auth_url, headers=self._auth_headers, json=self._auth_body, timeout=60)
        if response.status_code >= 400:
            raise RuntimeError(f"authorization URL answered {response.status_code}: {response.text[:200]}")
        token = str(_dig(response.json(), self._token_path))
        _runtime.add_secret(token)
        self._token = token
        self.token_fetches += 1
        value = self._header_value.replace("{token}", token).replace("<token>", token)
        self.headers[self._header_name] = value
        return token

    def _refresh_unless_done(self, stale) -> None:
        """Threads that all saw the same token fail fetch one new token between them."""
        with self._token_lock:
            if self._token is stale:
                self.refresh_token()

    def request(self, method, url, *args, **kwargs):
        if self._token is None:
            self._refresh_unless_done(None)
        used = self._token
        response = super().request(method, url, *args, **kwargs)
        if response.status_code == 401:
            self._refresh_unless_done(used)
            response = super().request(method, url, *args, **kwargs)
        return response


def connection_limits(config: dict) -> dict:
    """The budget and retries the connection's settings give (params["limits"]), if any."""
    params = config.get("params") or {}
    limits = params.get("limits") or {}
    if not isinstance(limits, dict):
        return {}
    return {k: v for k, v in limits.items() if k in CONFIG_KEYS}


def build_session() -> ResilientSession:
    config = _runtime.connection_config or {"auth_type": "none"}
    params = config.get("params") or {}
    secrets = config.get("secrets") or {}
    limits = connection_limits(config)
    if config.get("auth_type") == "basic":
        session = ResilientSession(limits)
        session.auth = (params.get("username", ""), secrets.get("password", ""))
        return session
    if config.get("auth_type") == "custom":
        return CustomAuthSession(params, secrets, limits)
    return ResilientSession(limits)
