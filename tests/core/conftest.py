"""Core is tested through its public functions, on every store (memory, SQLite, PostgreSQL)
and with a frozen clock. Core's flows that write are driven as the server drives them:
on SQL stores through the group commit (SQLite inline on an event loop, PostgreSQL in
threads), on the in-memory store committing each unit at once."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

from keyturn.core.clock import FrozenClock
from keyturn.core.context import Context
from keyturn.core.credentials import Hasher
from keyturn.core.models import Account, Client
from keyturn.core.params import Params
from keyturn.core.ports import Store
from keyturn.core.revocation import revoke as revoke_flow
from keyturn.core.service import Flow, run
from keyturn.core.token_endpoint import token as token_flow
from keyturn.runtime import Blocking
from keyturn.settings import Settings
from keyturn.store.sql import SqlStore
from keyturn.store.workers import Workers
from keyturn.tokens.jwt import JwtAccessTokens
from keyturn.tokens.keys import KeyRing, KeySealer

from ..conftest import TEST_SECRET
from ..helpers import add_account, add_client

T = TypeVar("T")
_THREADS = Workers(2, "keyturn-test-db")

CATALOGUE = {"sms": "Send SMS messages", "balance": "Query balance", "analytics": "Query statistics"}


@pytest.fixture
def ctx(store: Store, clock: FrozenClock) -> Context:
    settings = Settings().with_overrides(
        secret=TEST_SECRET, scopes=CATALOGUE, default_scopes=["sms"], refresh_token_reuse_grace=10
    )
    keyring = KeyRing(store, KeySealer(TEST_SECRET), clock)
    keyring.ensure("ES256")
    return Context(
        settings=settings,
        store=store,
        clock=clock,
        hasher=Hasher(TEST_SECRET),
        jwt=JwtAccessTokens(keyring, settings.issuer, clock),
    )


@pytest.fixture
def owner(ctx: Context) -> Account:
    return add_account(ctx, "ann@example.com", company="Acme")


@dataclass
class Registered:
    client: Client
    secret: str | None

    def basic(self) -> bytes:
        assert self.secret is not None
        raw = f"{self.client.client_id}:{self.secret}".encode()
        return b"Basic " + base64.b64encode(raw)

    def post(self, **params: str) -> dict[str, str]:
        """Form parameters with client_secret_post credentials."""
        credentials = {"client_id": self.client.client_id}
        if self.secret is not None:
            credentials["client_secret"] = self.secret
        return {**credentials, **params}


def register(ctx: Context, owner: Account, **options: Any) -> Registered:
    options.setdefault("redirect_uris", ["https://app.example.com/cb"])
    created = add_client(ctx, owner, name=options.pop("name", "App"), **options)
    return Registered(created.client, created.client_secret)


def drive(ctx: Context, flow: Flow[T]) -> T:
    """Runs a flow as a server on ctx's store would."""
    store = ctx.store
    if not isinstance(store, SqlStore):
        return run(flow)
    threads = None if store.connections.sqlite else _THREADS
    return asyncio.run(Blocking(threads, store.group.commit).flow(flow))


def token(ctx: Context, authorization: bytes | None, params: Params, address: str = "") -> dict[str, Any]:
    """POST /oauth/token, as core answers it."""
    return drive(ctx, token_flow(ctx, authorization, params, address))


def revoke(ctx: Context, authorization: bytes | None, params: Params, address: str = "") -> None:
    """POST /oauth/revoke, as core answers it."""
    drive(ctx, revoke_flow(ctx, authorization, params, address))
