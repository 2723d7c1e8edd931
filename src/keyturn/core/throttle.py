"""Slowing down guessing: failures per key (an account, an address) in a sliding window.

A key with too many recent failures is refused until the oldest of them leaves the
window, so the real owner is never locked out for good.
"""

from __future__ import annotations

import threading
from collections import deque

from .clock import Clock


class Throttle:
    def __init__(self, clock: Clock, *, limit: int, window: int, max_keys: int = 100_000) -> None:
        self._clock = clock
        self.limit = limit
        self.window = window
        self._max_keys = max_keys
        self._failures: dict[str, deque[int]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: int) -> deque[int] | None:
        failures = self._failures.get(key)
        if failures is None:
            return None
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return None
        return failures

    def retry_after(self, key: str) -> int | None:
        """Seconds until ``key`` may try again, or None if it may now."""
        now = self._clock.now()
        with self._lock:
            failures = self._recent(key, now)
            if failures is None or len(failures) < self.limit:
                return None
            return max(1, failures[0] + self.window - now)

    def fail(self, key: str) -> None:
        now = self._clock.now()
        with self._lock:
            failures = self._recent(key, now)
            if failures is None:
                if len(self._failures) >= self._max_keys:
                    # Bounded memory: forget the oldest key rather than grow without end.
                    self._failures.pop(next(iter(self._failures)))
                failures = self._failures[key] = deque(maxlen=self.limit)
            failures.append(now)

    def reset(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)
