"""Token revocation (RFC 7009)."""

from __future__ import annotations

import logging

from . import client_throttle
from .client_auth import presented_client
from .context import Context
from .credentials import Kind, kind_of
from .errors import UnauthorizedClient, UnsupportedTokenType
from .issuing import find_issued
from .models import Token, TokenKind
from .params import Params, require
from .service import Flow, in_unit
from .unit_of_work import UnitOfWork

log = logging.getLogger("keyturn.revocation")


def revoke(ctx: Context, authorization: bytes | None, params: Params, address: str = "") -> Flow[None]:
    presented = presented_client(authorization, params)
    client = client_throttle.authenticate(ctx, presented, address, "revoke", ctx.settings.rate_limit_revoke)
    value = require(params, "token")
    kind = kind_of(value)
    if kind is Kind.API_KEY:
        # API keys belong to accounts, not to clients: they are revoked in the portal.
        raise UnsupportedTokenType("API keys are revoked by their owner in the portal, not here.")
    if kind in (Kind.ACCESS_TOKEN, Kind.REFRESH_TOKEN):
        token = find_issued(ctx, value)
    elif kind is None and value.count(".") == 2:
        claims = ctx.jwt.decode(value)
        if claims is None or not isinstance(claims.get("jti"), str):
            return
        token = find_issued(ctx, claims["jti"])
    else:
        # RFC 7009 §2.2: "invalid tokens do not cause an error response".
        return
    if token is None:
        return
    if token.client_id != client.client_id:
        # §2.1: the server "verifies whether the token was issued to the client making
        # the revocation request. If this validation fails, the request is refused".
        raise UnauthorizedClient("This token was not issued to this client.")
    yield from in_unit(ctx, lambda unit: _revoke(unit, token, client.client_id, ctx.clock.now()))


def _revoke(unit: UnitOfWork, token: Token, client_id: str, now: int) -> None:
    if token.kind == TokenKind.REFRESH.value:
        # §2.1: revoking a refresh token SHOULD also invalidate the access tokens
        # "based on the same authorization grant".
        count = unit.revoke_grant(token.grant_id, now)
    elif token.revoked_at is None:
        unit.revoke_token(token.token_hash, now)
        count = 1
    else:
        count = 0
    if count:
        unit.record(
            "token.revoked",
            now,
            account_id=token.account_id,
            client_id=client_id,
            detail={"kind": token.kind, "tokens_revoked": count},
        )
