"""Notification channels, registered by name: email and webhook (see base.py for the contract)."""

from __future__ import annotations

from core.notify.base import Channel, DeliveryError, NotConfigured
from core.notify.email import EmailChannel
from core.notify.webhook import WebhookChannel

CHANNELS: dict[str, Channel] = {channel.name: channel for channel in (EmailChannel(), WebhookChannel())}


def get_channel(name: str) -> Channel:
    try:
        return CHANNELS[name]
    except KeyError:
        raise NotConfigured(f"unknown channel {name!r}") from None


__all__ = ["CHANNELS", "Channel", "DeliveryError", "NotConfigured", "get_channel"]
