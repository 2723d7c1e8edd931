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
    """Per-key windows: a key's window opens at its first hit and lasts ``window``
    seconds, so a burst cannot straddle a shared boundary to get twice the limit."""

    def __init__(self, clock: Clock, max_keys: int = 100_000) -> None:
        self._clock = clock
        self._max_keys = max_keys
        self._counts: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def _current(self, key: str, window: int, now: int) -> tuple[int, int] | None:
        entry = self._counts.get(key)
        if entry is None or now >= entry[0] + window:
            return None
        return entry

    def hit(self, key: str, limit: int, window: int, cost: int = 1) -> int | None:
        now = self._clock.now()
        with self._lock:
            entry = self._current(key, window, now)
            opened, count = entry if entry is not None else (now, 0)
            count += cost
            if key not in self._counts and len(self._counts) >= self._max_keys:
                self._evict(now, window)
            self._counts[key] = (opened, count)
        return max(1, opened + window - now) if count > limit else None

    def peek(self, key: str, limit: int, window: int) -> int | None:
        now = self._clock.now()
        entry = self._current(key, window, now)
        if entry is None or entry[1] < limit:
            return None
        return max(1, entry[0] + window - now)

    def _evict(self, now: int, window: int) -> None:
        """Bounded memory: drop finished windows, or the oldest key if none has finished."""
        stale = [k for k, (opened, _) in self._counts.items() if now >= opened + window]
        for key in stale or [next(iter(self._counts))]:
            del self._counts[key]


class NoLimits:
    """For tools and tests that need no limits."""

    def hit(self, key: str, limit: int, window: int, cost: int = 1) -> None:
        return None

    def peek(self, key: str, limit: int, window: int) -> None:
        return None
