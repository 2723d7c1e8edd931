"""Rate limits: per-key windows, failures costing more, bounded memory, and the token
endpoint refusing past the limit with the time to wait."""

from __future__ import annotations

import pytest

from keyturn.core.clock import FrozenClock
from keyturn.core.context import Context
from keyturn.core.errors import InvalidClient, RateLimited
from keyturn.core.models import Account
from keyturn.core.ratelimit import LocalLimiter

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


def test_the_token_endpoint_refuses_past_the_limit_and_failures_cost_five(ctx: Context, owner: Account) -> None:
    ctx.limiter = LocalLimiter(ctx.clock)
    ctx.settings = ctx.settings.with_overrides(rate_limit_token=6)
    app = register(ctx, owner, grant_types=["client_credentials"], redirect_uris=[])
    wrong = {"grant_type": "client_credentials", "client_id": app.client.client_id, "client_secret": "kt_cs_guess"}
    with pytest.raises(InvalidClient):
        token(ctx, None, wrong)  # costs 5 of the 6
    token(ctx, app.basic(), {"grant_type": "client_credentials"})  # the 6th
    with pytest.raises(RateLimited) as caught:
        token(ctx, app.basic(), {"grant_type": "client_credentials"})
    assert (caught.value.status_code, caught.value.error, caught.value.retry_after) == (
        429,
        "temporarily_unavailable",
        60,
    )
    ctx.clock.advance(60)
    assert "access_token" in token(ctx, app.basic(), {"grant_type": "client_credentials"})
