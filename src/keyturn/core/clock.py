"""The one source of time, so that expiry is testable without sleeping."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> int:
        """Seconds since the Unix epoch (UTC)."""
        ...


class SystemClock:
    __slots__ = ()

    def now(self) -> int:
        return int(time.time())


class FrozenClock:
    """A clock that moves only when told to; for tests."""

    __slots__ = ("current",)

    def __init__(self, start: int = 1_767_225_600) -> None:  # 2026-01-01T00:00:00Z
        self.current = start

    def now(self) -> int:
        return self.current

    def advance(self, seconds: int) -> None:
        self.current += seconds
