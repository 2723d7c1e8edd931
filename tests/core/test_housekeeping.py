"""Bounded storage: with housekeeping, churning tokens leaves the tables bounded."""

from __future__ import annotations

from keyturn.core.context import Context
from keyturn.core.housekeeping import cutoffs, purge
from keyturn.core.models import Account

from .conftest import register, token


def live_rows(ctx: Context) -> int:
    """How many token rows the store holds."""
    store = ctx.store
    if hasattr(store, "engine"):
        from sqlalchemy import func, select

        from keyturn.store.schema import tokens

        with store.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(tokens)).scalar_one())
    return len(store._tokens)  # type: ignore[attr-defined]


def test_cutoffs_follow_the_retention_settings(ctx: Context) -> None:
    settings = ctx.settings.with_overrides(expired_retention=600, audit_retention_days=2)
    assert cutoffs(settings, 1_000_000) == {
        "authorization_codes": 999_400,
        "tokens": 999_400,
        "sessions": 999_400,
        "api_keys": 999_400,
        "audit_events": 1_000_000 - 2 * 86_400,
    }


def test_churning_tokens_with_hourly_housekeeping_keeps_the_table_bounded(ctx: Context, owner: Account) -> None:
    ctx.settings = ctx.settings.with_overrides(expired_retention=0, access_token_ttl=3600)
    app = register(ctx, owner, grant_types=["client_credentials"], redirect_uris=[])
    sizes = []
    for hour in range(8):
        for _ in range(40):
            token(ctx, app.basic(), {"grant_type": "client_credentials"})
            ctx.clock.advance(90)  # 40 tokens an hour
        deleted = purge(ctx.store, ctx.clock, ctx.settings, batch=7)
        sizes.append(live_rows(ctx))
        # From the second hour on, each run deletes the hour of tokens that expired.
        assert deleted["tokens"] == (0 if hour == 0 else 40)
    # Only tokens still within their hour of life remain: never more than two hours' worth.
    assert max(sizes) <= 80
    assert sizes[-1] == sizes[-2]
