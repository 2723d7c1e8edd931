"""Minting access and refresh tokens, and the token endpoint's success response
(RFC 6749 §5.1). Tokens are returned to the caller once; only their digests are kept."""

from __future__ import annotations

import itertools
import os
import secrets
import time
from dataclasses import dataclass
from typing import Any

from .context import Context
from .credentials import Kind, new_secret, new_token_id
from .models import Client, Token, TokenKind
from .unit_of_work import UnitOfWork


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    access_token: str
    expires_in: int
    scopes: tuple[str, ...]
    created_at: int
    refresh_token: str | None = None

    def response(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": " ".join(self.scopes),
            "created_at": self.created_at,
        }
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        return body


def audit_issuance(ctx: Context, unit: UnitOfWork, client: Client, account_id: int, grant: str, grant_id: str) -> None:
    """The audit trail of issuance, as far as ``audit_token_issuance`` asks."""
    policy = ctx.settings.audit_token_issuance
    if policy == "none" or (policy == "user" and grant == "client_credentials"):
        return
    unit.record(
        "token.issued",
        ctx.clock.now(),
        account_id=account_id,
        client_id=client.client_id,
        detail={"grant": grant, "grant_id": grant_id},
    )


def new_grant_id() -> str:
    """A new token family's id: the time in milliseconds, this process's random prefix,
    and a counter. Time first, so that new families append to the grant_id index rather
    than land on a random page of it (bench/RESULTS.md); prefix and counter make it
    unique without a system call per id. Not a secret: it appears in audit events."""
    return f"{time.time_ns() // 1_000_000:012x}{_grant_prefix}{next(_grant_sequence) & 0xFFFFFFFF:08x}"


def _new_grant_prefix() -> None:
    global _grant_prefix, _grant_sequence
    _grant_prefix, _grant_sequence = secrets.token_hex(8), itertools.count()


_grant_prefix, _grant_sequence = "", itertools.count()
_new_grant_prefix()
# A forked worker must not hand out its parent's ids.
os.register_at_fork(after_in_child=_new_grant_prefix)


def find_issued(ctx: Context, secret: str) -> Token | None:
    """The stored token that an access or refresh token, or a JWT's ``jti``, names: one
    indexed look-up. Only when that finds nothing, a second under the key tokens had
    before their keys carried their issue time (issued by an older Keyturn, and alive
    until they expire)."""
    token = ctx.store.find_token(ctx.hasher.token_key(secret))
    if token is None:
        token = ctx.store.find_token(ctx.hasher.digest(secret))
    return token


def token_format(ctx: Context, client: Client) -> str:
    return client.token_format or ctx.settings.token_format


def mint(
    ctx: Context,
    client: Client,
    *,
    account_id: int,
    scopes: tuple[str, ...],
    grant_id: str,
    with_refresh: bool,
    refresh_scopes: tuple[str, ...] | None = None,
    parent_hash: bytes | None = None,
) -> tuple[IssuedTokens, list[Token]]:
    """New tokens and the records to store for them (the caller stores them)."""
    now = ctx.clock.now()
    ttl = client.access_token_ttl or ctx.settings.access_token_ttl
    records: list[Token] = []

    if token_format(ctx, client) == "jwt":
        jti = new_token_id()
        access = ctx.jwt.encode(
            {
                # RFC 9068 §2.2: iss, exp, aud, sub, client_id, iat, jti; scope per §2.2.3.
                "iss": ctx.settings.issuer,
                "sub": str(account_id),
                "aud": ctx.audience,
                "exp": now + ttl,
                "iat": now,
                "jti": jti,
                "client_id": client.client_id,
                "scope": " ".join(scopes),
            }
        )
        access_hash = ctx.hasher.token_key(jti)
    else:
        access = new_secret(Kind.ACCESS_TOKEN)
        access_hash = ctx.hasher.token_key(access)
    records.append(
        Token(
            token_hash=access_hash,
            kind=TokenKind.ACCESS.value,
            client_id=client.client_id,
            account_id=account_id,
            scopes=scopes,
            grant_id=grant_id,
            created_at=now,
            expires_at=now + ttl,
        )
    )

    refresh = None
    if with_refresh:
        refresh = new_secret(Kind.REFRESH_TOKEN)
        records.append(
            Token(
                token_hash=ctx.hasher.token_key(refresh),
                kind=TokenKind.REFRESH.value,
                client_id=client.client_id,
                account_id=account_id,
                # RFC 6749 §6: a new refresh token's scope is that of the one it replaces.
                scopes=refresh_scopes if refresh_scopes is not None else scopes,
                grant_id=grant_id,
                created_at=now,
                expires_at=now + (client.refresh_token_ttl or ctx.settings.refresh_token_ttl),
                parent_hash=parent_hash,
            )
        )
    issued = IssuedTokens(access_token=access, expires_in=ttl, scopes=scopes, created_at=now, refresh_token=refresh)
    return issued, records
