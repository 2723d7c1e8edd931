"""Rate limits (RFC 6749 §2.3.1 and §10.10 ask for protection against guessing; RFC 7662
§4 for introspection): fixed windows per key, where failures cost more than successes.

``LocalLimiter`` counts in this process; ``keyturn.cluster.RedisLimiter`` counts across
every worker and node, and falls back to a local limiter while Redis is away.
"""

from __future__ import annotations

import threading
from typing import Protocol

from .clock import Clock

#: What a failed attempt costs (a success costs 1): guessing exhausts a limit faster.
FAILURE_COST = 5


class Limiter(Protocol):
    def hit(self, key: str, limit: int, window: int, cost: int = 1) -> int | None:
        """Counts ``cost`` against ``key``; returns the seconds to wait if the key is now
        over ``limit`` in its window (the hit is still counted), else None."""
        ...

    def peek(self, key: str, limit: int, window: int) -> int | None:
        """Like hit, without counting."""
        ...


class LocalLimiter:
    def __init__(self, clock: Clock, max_keys: int = 100_000) -> None:
        self._clock = clock
        self._max_keys = max_keys
        self._counts: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def _window(self, window: int) -> tuple[int, int]:
        now = self._clock.now()
        start = now - now % window
        return start, start + window - now

    def hit(self, key: str, limit: int, window: int, cost: int = 1) -> int | None:
        start, remaining = self._window(window)
        with self._lock:
            began, count = self._counts.get(key, (start, 0))
            count = cost if began != start else count + cost
            if key not in self._counts and len(self._counts) >= self._max_keys:
                self._evict(start)
            self._counts[key] = (start, count)
        return max(1, remaining) if count > limit else None

    def peek(self, key: str, limit: int, window: int) -> int | None:
        start, remaining = self._window(window)
        began, count = self._counts.get(key, (start, 0))
        return max(1, remaining) if began == start and count >= limit else None

    def _evict(self, current: int) -> None:
        """Bounded memory: drop finished windows, or the oldest key if none has finished."""
        stale = [k for k, (began, _) in self._counts.items() if began != current]
        for key in stale or [next(iter(self._counts))]:
            del self._counts[key]


class NoLimits:
    """For tools and tests that need no limits."""

    def hit(self, key: str, limit: int, window: int, cost: int = 1) -> None:
        return None

    def peek(self, key: str, limit: int, window: int) -> None:
        return None
