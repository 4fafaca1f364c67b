"""Exponential backoff, one rule for everything that tries again (run retries, watcher
deliveries): base, then twice that, and so on."""

from __future__ import annotations


def backoff_s(base_s: float, attempt: int) -> float:
    """Wait after failed attempt number `attempt` (1-based) before the next one."""
    return base_s * 2 ** (max(1, attempt) - 1)
