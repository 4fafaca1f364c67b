"""The webhook channel of watchers: one HTTP POST of the event's JSON document.

Errors are raised as WebhookError with a short message meant for the run page. The message
names the receiver by host and port only: a webhook URL often carries a token in its path or
query, and the run page is seen by more people than the watcher's settings.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from common.settings import Settings
from core.notify.base import Channel, DeliveryError

TIMEOUT_S = 10


class WebhookError(DeliveryError):
    """The receiver could not be reached or did not answer 2xx."""


def _where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


def _root_reason(exc: BaseException) -> str:
    """The operating system's reason ('Connection refused', 'Name or service not known')
    buried under requests' and urllib3's wrappers, whose own text repeats the full URL."""
    seen, current, reason = set(), exc, None
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            reason = current.strerror
        current = current.__cause__ or current.__context__
    return reason or type(exc).__name__


def send(url: str, document: dict, delivery_id: int, timeout_s: float = TIMEOUT_S) -> None:
    headers = {
        "User-Agent": "Tributary",
        "X-Tributary-Event": str(document.get("event", "")),
        # Stays the same across the retries of one delivery, so a receiver that did get an
        # earlier attempt (and whose answer was lost) can recognise the repeat.
        "X-Tributary-Delivery": str(delivery_id),
    }
    import requests  # here: every CLI command would otherwise pay for importing it (about 30 ms)

    try:
        # Redirects are not followed: requests would turn the POST into a GET and drop the body.
        response = requests.post(url, json=document, timeout=timeout_s, headers=headers, allow_redirects=False)
    except requests.Timeout:
        raise WebhookError(f"no answer from {_where(url)} within {timeout_s:g} s") from None
    except requests.RequestException as exc:
        raise WebhookError(f"could not reach {_where(url)}: {_root_reason(exc)}") from None
    if 200 <= response.status_code < 300:
        return
    message = f"{_where(url)} answered HTTP {response.status_code} {response.reason or ''}".rstrip()
    if 300 <= response.status_code < 400:
        message += " (redirects are not followed: use the final URL)"
    detail = " ".join(response.text.split())[:200]
    raise WebhookError(f"{message}: {detail}" if detail else message)


class WebhookChannel(Channel):
    name, label = "webhook", "Webhook (HTTP POST of a JSON document)"

    def send(self, target: str, title: str, document: dict, delivery_id: int, settings: Settings) -> None:
        send(target, document, delivery_id)
