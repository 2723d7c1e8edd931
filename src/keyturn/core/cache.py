"""In-process caches for the hot paths, bounded in size and in staleness.

A cached entry lives at most ``ttl`` seconds, so a change made by another process (a
deleted client, a rotated secret) takes effect within that bound; changes made through
this process invalidate the entry at once.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

from .models import Account, Client
from .ports import AccountStore, ClientStore

K = TypeVar("K")
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    def __init__(self, loader: Callable[[K], V | None], ttl: float, max_entries: int = 10_000) -> None:
        self._loader = loader
        self._ttl = ttl
        self._max = max_entries
        self._entries: OrderedDict[K, tuple[float, V | None]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: K) -> V | None:
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            self.hits += 1
            return entry[1]
        self.misses += 1
        value = self._loader(key)
        with self._lock:
            self._entries[key] = (now + self._ttl, value)
            self._entries.move_to_end(key)
            if len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return value

    def invalidate(self, key: K) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class ClientCache(TtlCache[str, Client]):
    """Clients by client_id (unknown ids are cached too, as None)."""

    def __init__(self, store: ClientStore, ttl: float = 1.0, max_entries: int = 10_000) -> None:
        super().__init__(store.get_client, ttl, max_entries)


class AccountCache(TtlCache[int, Account]):
    """Accounts by id, for introspection and /me (a disabled account is refused within
    the same one-second bound as a changed client)."""

    def __init__(self, store: AccountStore, ttl: float = 1.0, max_entries: int = 10_000) -> None:
        super().__init__(store.get_account, ttl, max_entries)
