"""The verifier's time: wall time for ``exp``, monotonic time for cache lifetimes."""

from __future__ import annotations

from time import monotonic, time
from typing import Protocol


class Clock(Protocol):
    """Wall time (for ``exp``) and monotonic time (for cache lifetimes and rate limits)."""

    def time(self) -> float: ...

    def monotonic(self) -> float: ...


class SystemClock:
    # The C functions themselves: read on every request, they need no Python frame.
    time = staticmethod(time)
    monotonic = staticmethod(monotonic)
