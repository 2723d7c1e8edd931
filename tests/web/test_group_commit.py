"""Requests that arrive together share one commit (the group commit of
keyturn.store.group_commit): on SQLite those of one turn of the event loop, on PostgreSQL
those that finish while a batch is committing. Codes and refresh tokens are claimed
inside that commit; these tests send the racing requests together, through the ASGI app
itself, so that they do land in one batch (SQLite) or in batches close together."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from keyturn.core.models import Account
from keyturn.runtime import Runtime
from keyturn.settings import Settings
from keyturn.store.group_commit import GroupCommit
from keyturn.store.schema import audit_events, tokens
from keyturn.store.sql import SqlStore
from keyturn.web.app import create_app

from ..helpers import add_account
from .test_backchannel_http import VERIFIER, Registered, code_for, register

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    if request.param == "postgres":
        return settings.with_overrides(database_url=request.getfixturevalue("fresh_postgres_url"))
    return settings


@pytest.fixture
def owner(runtime: Runtime) -> Account:
    return add_account(runtime, "ada@example.com")


@pytest.fixture
def web_app(runtime: Runtime, owner: Account) -> Registered:
    return register(runtime, owner, name="Web app")


@pytest.fixture
async def http(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
        yield client


def _sqlite(runtime: Runtime) -> bool:
    assert isinstance(runtime.store, SqlStore)
    return runtime.store.connections.sqlite


def _count(runtime: Runtime, statement: Any) -> int:
    assert isinstance(runtime.store, SqlStore)
    with runtime.store.engine.connect() as connection:
        return int(connection.execute(statement).scalar_one())


async def _together(
    http: httpx.AsyncClient, registered: Registered, data: dict[str, str], n: int
) -> list[httpx.Response]:
    return list(
        await asyncio.gather(*(http.post("/oauth/token", data=data, headers=registered.basic()) for _ in range(n)))
    )


async def _exchange(
    http: httpx.AsyncClient, runtime: Runtime, registered: Registered, owner: Account
) -> dict[str, Any]:
    code = code_for(runtime, registered, owner)
    response = await http.post(
        "/oauth/token", data={"grant_type": "authorization_code", "code": code}, headers=registered.basic()
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_racing_refreshes_commit_one_rotation_and_all_get_its_pair(
    http: httpx.AsyncClient, runtime: Runtime, web_app: Registered, owner: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    pair = await _exchange(http, runtime, web_app, owner)
    batches: list[int] = []
    write = GroupCommit.write

    def counting(self: GroupCommit, units: Any) -> Any:
        batches.append(len(units))
        return write(self, units)

    monkeypatch.setattr(GroupCommit, "write", counting)
    responses = await _together(
        http, web_app, {"grant_type": "refresh_token", "refresh_token": pair["refresh_token"]}, 4
    )

    assert [r.status_code for r in responses] == [200] * 4, [r.text for r in responses]
    if _sqlite(runtime):
        # All four were queued in one batch; three lost their claim, ran again, and got
        # the winner's pair through the retry window (nothing more to write for them).
        assert batches[0] == 4
    assert len({r.json()["refresh_token"] for r in responses}) == 1
    assert len({r.json()["access_token"] for r in responses}) == 1
    # Exactly one new pair was stored: the two of the code exchange plus two.
    assert _count(runtime, select(func.count()).select_from(tokens)) == 4
    issued = select(func.count()).select_from(audit_events).where(audit_events.c.kind == "token.issued")
    assert _count(runtime, issued) == 2  # the exchange and one rotation


async def test_without_a_retry_window_a_racing_refresh_is_reuse_and_revokes_the_family(
    runtime: Runtime, owner: Account, settings: Any, clock: Any
) -> None:
    from keyturn.runtime import open_runtime

    strict = open_runtime(settings.with_overrides(refresh_token_reuse_grace=0), clock=clock)
    try:
        registered = register(strict, owner, name="Strict app")
        transport = httpx.ASGITransport(app=create_app(strict))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as http:
            pair = await _exchange(http, strict, registered, owner)
            data = {"grant_type": "refresh_token", "refresh_token": pair["refresh_token"]}
            responses = await _together(http, registered, data, 2)
            statuses = sorted(r.status_code for r in responses)
            assert statuses == [200, 400], [r.text for r in responses]
            refused = next(r for r in responses if r.status_code == 400)
            assert refused.json()["error"] == "invalid_grant"
            winner = next(r for r in responses if r.status_code == 200).json()
            # RFC 9700 §4.14.2: the reuse revoked the family, the winner's new pair with it.
            later = await http.post(
                "/oauth/token",
                data={"grant_type": "refresh_token", "refresh_token": winner["refresh_token"]},
                headers=registered.basic(),
            )
            assert later.status_code == 400
            assert later.json()["error"] == "invalid_grant"
    finally:
        strict.close()


async def test_racing_exchanges_of_one_code_are_a_replay(
    http: httpx.AsyncClient, runtime: Runtime, web_app: Registered, owner: Account
) -> None:
    code = code_for(runtime, web_app, owner)
    responses = await _together(http, web_app, {"grant_type": "authorization_code", "code": code}, 2)

    assert sorted(r.status_code for r in responses) == [200, 400], [r.text for r in responses]
    refused = next(r for r in responses if r.status_code == 400).json()
    assert refused["error"] == "invalid_grant"
    assert refused["error_description"] == "The authorization code has already been used."
    # RFC 6749 §4.1.2: the replay revoked what the code gave.
    granted = next(r for r in responses if r.status_code == 200).json()
    introspected = await http.post(
        "/oauth/introspect", data={"token": granted["access_token"]}, headers=web_app.basic()
    )
    assert introspected.json() == {"active": False}
    replayed = (
        select(func.count()).select_from(audit_events).where(audit_events.c.kind == "authorization_code.replayed")
    )
    assert _count(runtime, replayed) == 1


async def test_a_code_presented_with_a_wrong_verifier_is_used_up(
    http: httpx.AsyncClient, runtime: Runtime, owner: Account
) -> None:
    public = register(runtime, owner, name="Native app", confidential=False)
    code = code_for(runtime, public, owner)
    wrong = await http.post(
        "/oauth/token",
        data=public.post(grant_type="authorization_code", code=code, code_verifier="w" * 43),
    )
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"
    again = await http.post(
        "/oauth/token",
        data=public.post(grant_type="authorization_code", code=code, code_verifier=VERIFIER),
    )
    assert again.status_code == 400
    assert again.json()["error_description"] == "The authorization code has already been used."
