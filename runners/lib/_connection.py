"""`lib.connection`: a requests.Session carrying the feed connection's authentication.

Custom Auth: the token is fetched from the authorization URL (POST of the JSON body with the
configured headers) on first use, and fetched again once when the API answers 401.
"""

from __future__ import annotations

import requests

from lib import _runtime


def _dig(data, path: str):
    """Follow a dotted path ("access_token", "data.token") into a JSON response."""
    current = data
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            raise RuntimeError(f"the auth response has no value at {path!r}")
    return current


class CustomAuthSession(requests.Session):
    def __init__(self, params: dict, secrets: dict):
        super().__init__()
        self._auth_url = params["auth_url"]
        self._token_path = params.get("token_path") or "access_token"
        template = params.get("token_header") or "Authorization: Bearer <token>"
        name, _, value = template.partition(":")
        self._header_name, self._header_value = name.strip(), value.strip()
        self._auth_headers = secrets.get("headers") or {}
        self._auth_body = secrets.get("body")
        self._token = None
        self.token_fetches = 0

    def refresh_token(self) -> str:
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

    def request(self, method, url, *args, **kwargs):
        if self._token is None:
            self.refresh_token()
        response = super().request(method, url, *args, **kwargs)
        if response.status_code == 401:
            self.refresh_token()
            response = super().request(method, url, *args, **kwargs)
        return response


def build_session() -> requests.Session:
    config = _runtime.connection_config or {"auth_type": "none"}
    params = config.get("params") or {}
    secrets = config.get("secrets") or {}
    if config.get("auth_type") == "basic":
        session = requests.Session()
        session.auth = (params.get("username", ""), secrets.get("password", ""))
        return session
    if config.get("auth_type") == "custom":
        return CustomAuthSession(params, secrets)
    return requests.Session()
