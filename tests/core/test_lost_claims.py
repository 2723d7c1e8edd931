"""A claim lost at the commit (keyturn.core.service): the grant runs again in a fresh
unit and answers as it does for a token already rotated. On every store, through the
unit of work a server commits: the SQL stores' group commit, the in-memory store's."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from keyturn.core.context import Context
from keyturn.core.errors import InvalidGrant
from keyturn.core.models import Account
from keyturn.core.service import Done, Flow, advance
from keyturn.core.token_endpoint import token as token_flow
from keyturn.core.unit_of_work import UnitOfWork
from keyturn.store.sql import SqlStore

from .conftest import Registered, register, token
from .test_grants import code_for, exchange


async def _commit(ctx: Context, unit: UnitOfWork) -> bool:
    store = ctx.store
    return await store.group.commit(unit) if isinstance(store, SqlStore) else unit.commit()


def _race(ctx: Context, app: Registered, refresh_token: str) -> tuple[Flow[dict[str, Any]], Flow[dict[str, Any]]]:
    """Two refreshes of one token that both claim it before either commits (as two
    requests of one batch do), committed together: the first wins, the second loses."""
    params = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    first, second = token_flow(ctx, app.basic(), params), token_flow(ctx, app.basic(), params)
    units = advance(first), advance(second)
    assert not isinstance(units[0], Done)
    assert not isinstance(units[1], Done)

    async def together() -> list[bool]:
        return list(await asyncio.gather(*(_commit(ctx, unit) for unit in units)))  # type: ignore[arg-type]

    assert asyncio.run(together()) == [False, True]
    return first, second


def test_a_refresh_that_lost_its_claim_runs_again_and_gets_the_winners_pair(ctx: Context, owner: Account) -> None:
    app = register(ctx, owner)
    pair = exchange(ctx, app, code_for(ctx, app, owner))
    winner, loser = _race(ctx, app, str(pair["refresh_token"]))

    won = advance(winner, False)
    assert isinstance(won, Done)
    # Run again: the token is rotated now, and this is a retry inside the grace window.
    # It writes nothing more, and answers with the pair the winner got.
    again = advance(loser, True)
    assert isinstance(again, Done)
    assert again.value == won.value
    new = ctx.store.find_token(ctx.hasher.token_key(won.value["refresh_token"]))
    assert new is not None
    assert new.revoked_at is None
    assert [e.detail["grant"] for e in ctx.store.list_events(kind="token.issued")] == [
        "refresh_token",
        "authorization_code",
    ]


def test_without_a_grace_window_the_loser_is_a_reuse_and_revokes_the_family(ctx: Context, owner: Account) -> None:
    ctx.settings = ctx.settings.with_overrides(refresh_token_reuse_grace=0)
    app = register(ctx, owner)
    pair = exchange(ctx, app, code_for(ctx, app, owner))
    winner, loser = _race(ctx, app, str(pair["refresh_token"]))

    won = advance(winner, False)
    assert isinstance(won, Done)
    # Run again: a rotated token presented again, with no grace: RFC 9700 §4.14.2 reuse.
    # Its unit (the family's revocation and the audit event) is committed before the
    # error is the answer.
    revocation = advance(loser, True)
    assert not isinstance(revocation, Done)
    assert asyncio.run(_commit(ctx, revocation)) is False
    with pytest.raises(InvalidGrant, match="family has been revoked"):
        advance(loser, False)
    for issued in (won.value["access_token"], won.value["refresh_token"], pair["access_token"]):
        stored = ctx.store.find_token(ctx.hasher.token_key(str(issued)))
        assert stored is not None
        assert stored.revoked_at == ctx.clock.now()
    (event,) = ctx.store.list_events(kind="refresh_token.reused")
    assert event.detail["tokens_revoked"] == 4  # the first pair (its refresh token rotated) and the new
    with pytest.raises(InvalidGrant, match="revoked"):
        token(ctx, app.basic(), {"grant_type": "refresh_token", "refresh_token": won.value["refresh_token"]})
