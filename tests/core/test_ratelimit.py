"""Rate limits: per-key windows, atomic reservations over several keys, bounded memory
that never drops a long window for a short one, and the token endpoint refusing past the
limit with the time to wait, counting failed client authentications per address."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from keyturn.core.clock import FrozenClock
from keyturn.core.context import Context
from keyturn.core.errors import InvalidClient, RateLimited
from keyturn.core.models import Account
from keyturn.core.ratelimit import LocalLimiter, Slot, counted_address

from .conftest import register, token


def test_a_window_opens_at_the_first_hit() -> None:
    clock = FrozenClock(1_000_000 + 899)  # one second before a multiple of 900
    limiter = LocalLimiter(clock)
    assert [limiter.hit("k", 3, 900) for _ in range(3)] == [None, None, None]
    clock.advance(1)  # a shared boundary would reset the count here; a per-key window does not
    assert limiter.hit("k", 3, 900) == 899
    assert limiter.peek("k", 3, 900) == 899
    clock.advance(899)
    assert limiter.peek("k", 3, 900) is None
    assert limiter.hit("k", 3, 900) is None


@pytest.mark.parametrize(
    ("address", "counted"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("unknown", "unknown"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:eeee:dddd:cccc", "2001:db8:1:2::/64"),
        ("2001:DB8:1:3::1", "2001:db8:1:3::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        ("::1", "::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("not:an:address", "not:an:address"),
    ],
)
def test_an_ipv6_address_counts_for_its_64_prefix(address: str, counted: str) -> None:
    # A host picks addresses in its /64 at will (RFC 8981): per address, it would never
    # run out of attempts.
    assert counted_address(address) == counted


def test_keys_are_independent_and_cost_counts() -> None:
    limiter = LocalLimiter(FrozenClock())
    assert limiter.hit("a", 5, 60, cost=5) is None
    assert limiter.hit("a", 5, 60) == 60
    assert limiter.hit("b", 5, 60) is None


def test_memory_is_bounded() -> None:
    clock = FrozenClock()
    limiter = LocalLimiter(clock, max_keys=3)
    for key in "abcd":
        limiter.hit(key, 10, 60)
    assert len(limiter._counts) == 3


def test_eviction_drops_ended_windows_first_and_never_a_long_window_for_a_short_one() -> None:
    clock = FrozenClock()
    limiter = LocalLimiter(clock, max_keys=3)
    limiter.hit("login", 5, 900, cost=5)  # a 15-minute window, full
    limiter.hit("a", 10, 60)
    limiter.hit("b", 10, 60)
    clock.advance(61)  # a and b have ended; login has 839 s to go
    limiter.hit("d", 10, 60)
    clock.advance(1)
    limiter.hit("c", 10, 60)
    assert limiter.peek("login", 5, 900) == 838
    assert set(limiter._counts) == {"login", "c", "d"}
    # None has ended: the key whose window ends soonest goes (d), never login.
    limiter.hit("e", 10, 60)
    assert set(limiter._counts) == {"login", "c", "e"}
    assert limiter.hit("login", 5, 900) == 838
    # Its own window, not the newest one's, decides when a key ends.
    clock.advance(837)
    assert limiter.peek("login", 5, 900) == 1
    clock.advance(1)
    assert limiter.peek("login", 5, 900) is None


def test_the_eviction_heap_stays_bounded_when_windows_reopen() -> None:
    clock = FrozenClock()
    limiter = LocalLimiter(clock, max_keys=10)
    for _ in range(5000):
        limiter.hit("k", 10, 1)
        clock.advance(1)
    assert len(limiter._counts) == 1
    assert len(limiter._ends) <= 2 * len(limiter._counts) + 1024


def test_take_is_all_or_nothing_and_waits_for_the_last_full_key() -> None:
    clock = FrozenClock()
    limiter = LocalLimiter(clock)
    assert limiter.take([Slot("short", 2, 60, cost=2)]) is None
    clock.advance(10)
    assert limiter.take([Slot("long", 1, 900)]) is None
    # Both full: nothing is counted on the third key, and the wait is the longer one.
    assert limiter.take([Slot("short", 2, 60), Slot("long", 1, 900), Slot("free", 9, 60)]) == 900
    assert limiter.counts(["short", "long", "free", "never"]) == [2, 1, 0, 0]
    clock.advance(50)  # short's window ends
    assert limiter.take([Slot("short", 2, 60), Slot("free", 9, 60)]) is None
    assert limiter.counts(["short", "free"]) == [1, 1]


def test_a_slot_of_cost_zero_only_checks() -> None:
    limiter = LocalLimiter(FrozenClock())
    assert limiter.take([Slot("failures", 2, 60, cost=0)]) is None
    assert limiter.counts(["failures"]) == [0]
    limiter.hit("failures", 2, 60, cost=2)
    assert limiter.take([Slot("rate", 9, 60), Slot("failures", 2, 60, cost=0)]) == 60
    assert limiter.counts(["rate"]) == [0]


def test_give_back_returns_what_take_counted_and_no_more() -> None:
    clock = FrozenClock()
    limiter = LocalLimiter(clock)
    slots = [Slot("a", 1, 60), Slot("b", 5, 900)]
    assert limiter.take(slots) is None
    assert limiter.take(slots) == 60
    limiter.give_back(slots)
    assert limiter.counts(["a", "b"]) == [0, 0]
    limiter.give_back(slots)  # never below zero
    assert limiter.take(slots) is None
    assert limiter.counts(["a", "b"]) == [1, 1]
    clock.advance(60)
    limiter.give_back(slots)  # a's window ended: left alone; b's count is returned
    assert limiter.counts(["a", "b"]) == [0, 0]


def test_parallel_takes_never_pass_the_limit() -> None:
    limiter = LocalLimiter(FrozenClock())
    start = threading.Barrier(30)

    def attempt() -> int | None:
        start.wait()
        return limiter.take([Slot("account", 5, 900), Slot("address", 30, 900)])

    with ThreadPoolExecutor(30) as pool:
        results = list(pool.map(lambda _: attempt(), range(30)))
    assert results.count(None) == 5
    assert limiter.counts(["account", "address"]) == [5, 5]


def test_the_token_endpoint_refuses_past_the_limit_counting_only_authenticated_requests(
    ctx: Context, owner: Account
) -> None:
    ctx.limiter = LocalLimiter(ctx.clock)
    ctx.settings = ctx.settings.with_overrides(rate_limit_token=2, client_auth_failures_per_client_and_address=3)
    app = register(ctx, owner, grant_types=["client_credentials"], redirect_uris=[])
    wrong = {"grant_type": "client_credentials", "client_id": app.client.client_id, "client_secret": "kt_cs_guess"}
    for _ in range(3):
        with pytest.raises(InvalidClient):
            token(ctx, None, wrong, "203.0.113.9")
    # That address has spent its failures with this client_id: refused before checking,
    # even the right secret.
    with pytest.raises(RateLimited) as caught:
        token(ctx, app.basic(), {"grant_type": "client_credentials"}, "203.0.113.9")
    assert (caught.value.status_code, caught.value.error, caught.value.retry_after) == (
        429,
        "temporarily_unavailable",
        60,
    )
    # The failures did not count against the client: from its own address it has its
    # whole rate, and no more.
    for _ in range(2):
        assert "access_token" in token(ctx, app.basic(), {"grant_type": "client_credentials"}, "198.51.100.1")
    with pytest.raises(RateLimited):
        token(ctx, app.basic(), {"grant_type": "client_credentials"}, "198.51.100.1")
    ctx.clock.advance(60)
    assert "access_token" in token(ctx, app.basic(), {"grant_type": "client_credentials"}, "203.0.113.9")
