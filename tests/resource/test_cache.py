"""The bounded TTL cache."""

from __future__ import annotations

from keyturn.resource._cache import TTLCache

from .fakes import FakeClock


def test_entries_expire_after_their_ttl() -> None:
    clock = FakeClock()
    cache: TTLCache[str] = TTLCache(10, clock.monotonic)
    cache.put(b"a", "A", 5)
    clock.advance(4.99)
    assert cache.get(b"a") == "A"
    clock.advance(0.01)
    assert cache.get(b"a") is None
    assert len(cache) == 0


def test_least_recently_used_entry_is_evicted_at_max_entries() -> None:
    clock = FakeClock()
    cache: TTLCache[int] = TTLCache(2, clock.monotonic)
    cache.put(b"a", 1, 10)
    cache.put(b"b", 2, 10)
    assert cache.get(b"a") == 1
    cache.put(b"c", 3, 10)
    assert (cache.get(b"a"), cache.get(b"b"), cache.get(b"c")) == (1, None, 3)
    assert len(cache) == 2


def test_zero_ttl_or_zero_size_stores_nothing() -> None:
    clock = FakeClock()
    cache: TTLCache[int] = TTLCache(2, clock.monotonic)
    cache.put(b"a", 1, 0)
    assert cache.get(b"a") is None
    empty: TTLCache[int] = TTLCache(0, clock.monotonic)
    empty.put(b"a", 1, 10)
    assert empty.get(b"a") is None


def test_a_put_renews_the_lifetime() -> None:
    clock = FakeClock()
    cache: TTLCache[int] = TTLCache(2, clock.monotonic)
    cache.put(b"a", 1, 5)
    clock.advance(4)
    cache.put(b"a", 2, 5)
    clock.advance(4)
    assert cache.get(b"a") == 2
