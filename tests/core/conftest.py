"""Core is tested through its public functions, on every store (memory, SQLite, PostgreSQL)
and with a frozen clock."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import pytest

from keyturn.core.clock import FrozenClock
from keyturn.core.context import Context
from keyturn.core.credentials import Hasher
from keyturn.core.models import Account, Client
from keyturn.core.ports import Store
from keyturn.core.registration import register_client
from keyturn.settings import Settings
from keyturn.tokens.jwt import JwtAccessTokens
from keyturn.tokens.keys import KeyRing, KeySealer

from ..conftest import TEST_SECRET

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
    return ctx.store.create_account(email="ann@example.com", password_hash=None, now=ctx.clock.now(), company="Acme")


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
    created = register_client(
        ctx.store,
        ctx.hasher,
        ctx.clock,
        name=options.pop("name", "App"),
        owner_id=owner.id,
        catalogue=ctx.settings.scopes,
        production=False,
        **options,
    )
    return Registered(created.client, created.client_secret)
