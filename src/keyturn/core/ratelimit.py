"""Rate limits (RFC 6749 §2.3.1 and §10.10 ask for protection against guessing; RFC 7662
§4 for introspection): fixed windows per key.

A key's window opens at its first count and lasts the window given then; its end is kept
with the count, so keys of different windows live side by side. Two ways to count:
- ``hit`` counts a request and says whether it went over the limit (request rates);
- ``take`` reserves room in several keys at once, all or nothing, *before* the guarded
  work runs, and ``give_back`` returns it when the work turned out not to need counting
  (a successful sign-in). Parallel requests cannot all pass a check that is counted only
  after their slow work: each reservation is atomic.

``LocalLimiter`` counts in this process; ``keyturn.cluster.RedisLimiter`` counts across
every worker and node, and falls back to a local limiter while Redis is away.
"""

from __future__ import annotations

import heapq
import ipaddress
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from .clock import Clock

#: The limit of a slot that counts without ever refusing.
UNLIMITED = 1 << 52
#: The IPv6 prefix one per-address limit covers.
IPV6_PREFIX = 64


def counted_address(address: str) -> str:
    """A caller's address as per-address limits count it. An IPv6 host is routinely given
    a whole /64 and may use any address in it (RFC 8981's temporary addresses are made at
    will): counted per address, one machine would never run out of attempts. So an IPv6
    address counts for its /64, an IPv4-mapped one for its IPv4 address, and anything else
    as it is."""
    if ":" not in address:
        return address  # IPv4 (or "unknown"): nothing to do, on every token request
    try:
        ip = ipaddress.IPv6Address(address.partition("%")[0])
    except ValueError:
        return address
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    # RFC 4291 §2.5.1: "Interface IDs are required to be 64 bits long": the /64 is the link.
    return str(ipaddress.IPv6Network((ip, IPV6_PREFIX), strict=False))


@dataclass(frozen=True, slots=True)
class Slot:
    """Room for ``cost`` in ``key`` (at most ``limit`` per ``window`` seconds). A slot of
    cost 0 counts nothing: it only checks that the key has room for one more."""

    key: str
    limit: int
    window: int
    cost: int = 1

    def refuses(self, count: int) -> bool:
        return count + max(self.cost, 1) > self.limit


class Limiter(Protocol):
    def hit(self, key: str, limit: int, window: int, cost: int = 1) -> int | None:
        """Counts ``cost`` against ``key``; returns the seconds to wait if the key is now
        over ``limit`` in its window (the hit is still counted), else None."""
        ...

    def peek(self, key: str, limit: int, window: int) -> int | None:
        """The seconds to wait if ``key`` has reached ``limit``, else None; counts nothing."""
        ...

    def take(self, slots: Sequence[Slot]) -> int | None:
        """Atomically: if every slot has room, counts each slot's cost and returns None;
        otherwise counts nothing and returns the seconds until the last full key's window
        ends."""
        ...

    def give_back(self, slots: Sequence[Slot]) -> None:
        """Returns what ``take`` counted (never below zero; a window that ended meanwhile
        is left alone)."""
        ...

    def counts(self, keys: Sequence[str]) -> list[int]:
        """The current count of each key (0 when its window ended or never opened)."""
        ...


class LocalLimiter:
    """Per-key windows in this process, with bounded memory: past ``max_keys``, adding a
    key evicts one whose window has ended, or else the one whose window ends soonest;
    a long window is never dropped for a short one's sake."""

    def __init__(self, clock: Clock, max_keys: int = 100_000) -> None:
        self._clock = clock
        self._max_keys = max_keys
        #: key -> (window end, count)
        self._counts: dict[str, tuple[int, int]] = {}
        #: (window end, key), soonest first; entries whose key has since ended and been
        #: reopened are stale and skipped (see _evict_one).
        self._ends: list[tuple[int, str]] = []
        self._lock = threading.Lock()

    def _count(self, key: str, now: int) -> tuple[int, int] | None:
        entry = self._counts.get(key)
        return entry if entry is not None and now < entry[0] else None

    def _add(self, key: str, window: int, cost: int, now: int) -> tuple[int, int]:
        """Counts ``cost`` against ``key`` (the lock is held); returns (end, count)."""
        entry = self._count(key, now)
        if entry is None:
            if key not in self._counts and len(self._counts) >= self._max_keys:
                self._evict_one()
            entry = (now + window, 0)
            heapq.heappush(self._ends, (entry[0], key))
            if len(self._ends) > 2 * len(self._counts) + 1024:
                self._ends = [(end, k) for k, (end, _) in self._counts.items()]
                heapq.heapify(self._ends)
        entry = (entry[0], entry[1] + cost)
        self._counts[key] = entry
        return entry

    def _evict_one(self) -> None:
        while self._ends:
            end, key = heapq.heappop(self._ends)
            entry = self._counts.get(key)
            if entry is not None and entry[0] == end:
                del self._counts[key]
                return

    def hit(self, key: str, limit: int, window: int, cost: int = 1) -> int | None:
        now = self._clock.now()
        with self._lock:
            end, count = self._add(key, window, cost, now)
        return max(1, end - now) if count > limit else None

    def peek(self, key: str, limit: int, window: int) -> int | None:
        now = self._clock.now()
        entry = self._count(key, now)
        if entry is None or entry[1] < limit:
            return None
        return max(1, entry[0] - now)

    def take(self, slots: Sequence[Slot]) -> int | None:
        now = self._clock.now()
        with self._lock:
            wait = None
            for slot in slots:
                entry = self._count(slot.key, now)
                if slot.refuses(entry[1] if entry is not None else 0):
                    left = max(1, entry[0] - now) if entry is not None else slot.window
                    wait = left if wait is None else max(wait, left)
            if wait is not None:
                return wait
            for slot in slots:
                if slot.cost:
                    self._add(slot.key, slot.window, slot.cost, now)
        return None

    def give_back(self, slots: Sequence[Slot]) -> None:
        now = self._clock.now()
        with self._lock:
            for slot in slots:
                entry = self._count(slot.key, now)
                if entry is not None and slot.cost:
                    self._counts[slot.key] = (entry[0], max(0, entry[1] - slot.cost))

    def counts(self, keys: Sequence[str]) -> list[int]:
        now = self._clock.now()
        return [entry[1] if (entry := self._count(key, now)) is not None else 0 for key in keys]


class NoLimits:
    """For tools and tests that need no limits."""

    def hit(self, key: str, limit: int, window: int, cost: int = 1) -> None:
        return None

    def peek(self, key: str, limit: int, window: int) -> None:
        return None

    def take(self, slots: Sequence[Slot]) -> None:
        return None

    def give_back(self, slots: Sequence[Slot]) -> None:
        return None

    def counts(self, keys: Sequence[str]) -> list[int]:
        return [0] * len(keys)
