"""A small, bounded, thread-safe cache with a lifetime per entry.

Bounded twice: no entry outlives its time-to-live, and the cache never holds more than
``max_entries`` (the least recently used entry goes first). Keys are digests of
credentials (see ``_credentials.Digester``), never credentials.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

V = TypeVar("V")


class TTLCache(Generic[V]):
    def __init__(self, max_entries: int, monotonic: Callable[[], float]) -> None:
        if max_entries < 0:
            raise ValueError("max_entries must be 0 or more")
        self.max_entries = max_entries
        self._monotonic = monotonic
        self._entries: OrderedDict[bytes, tuple[float, V]] = OrderedDict()
        # Held only for dict operations, never across I/O: safe on an event loop too.
        self._lock = threading.Lock()

    def get(self, key: bytes) -> V | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires, value = entry
            if self._monotonic() >= expires:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return value

    def put(self, key: bytes, value: V, ttl: float) -> None:
        if ttl <= 0 or self.max_entries == 0:
            return
        with self._lock:
            self._entries[key] = (self._monotonic() + ttl, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def discard(self, key: bytes) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
