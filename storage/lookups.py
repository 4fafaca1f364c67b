"""Lookups in the store that every use case needs, with the error a user should see."""

from __future__ import annotations

from sqlmodel import select

from common.errors import NotFound
from storage.models import Feed


def find_feed(session, name: str) -> Feed | None:
    return session.exec(select(Feed).where(Feed.name == name)).first()


def feed_by_name(session, name: str) -> Feed:
    feed = find_feed(session, name)
    if feed is None:
        raise NotFound(f"feed {name!r} does not exist")
    return feed
