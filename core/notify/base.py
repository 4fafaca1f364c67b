"""The notification Channel: how a watcher's message reaches a person or a system.

A channel is registered by name (core/notify/__init__.py) and gets, for one delivery, its
watcher's target (an address, a URL), the event's title and its JSON document (the same facts
whatever the channel). The contract, checked over every channel by
tests/core/test_channel_contract.py:

- `send()` returns when the receiver accepted the message;
- it raises `DeliveryError` when this attempt failed and another one may succeed (the
  receiver is down, answered an error, timed out); the message is short, meant for the run
  page, and names the receiver without the secrets a target may carry;
- it raises `NotConfigured` (a DeliveryError) when no attempt can succeed until someone
  changes the app's configuration: the delivery then fails at once;
- it never raises anything else for a receiver's behaviour.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from common.settings import Settings


class DeliveryError(Exception):
    """This attempt failed; a later one may succeed."""


class NotConfigured(DeliveryError):
    """No attempt can succeed until the app's configuration changes."""


class Channel(ABC):
    name: str = ""
    label: str = ""

    @abstractmethod
    def send(self, target: str, title: str, document: dict, delivery_id: int, settings: Settings) -> None:
        """Deliver one event's message to the target (see the module docstring)."""

    def configured(self, settings: Settings) -> str | None:
        """None when the app can send through this channel; else what to set, for the UI."""
        return None
