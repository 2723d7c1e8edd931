"""The token endpoint (RFC 6749 §3.2): authenticate the client, then run its grant in a
unit of work (keyturn.core.service)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import client_throttle
from .client_auth import presented_client
from .context import Context
from .credentials import Kind, kind_of
from .errors import UnsupportedGrantType
from .grants.authorization_code import authorization_code
from .grants.client_credentials import client_credentials
from .grants.refresh_token import refresh_token
from .issuing import find_issued
from .models import Client
from .params import Params, require
from .service import Flow, in_unit
from .unit_of_work import UnitOfWork

Grant = Callable[[Context, UnitOfWork, Client, Params], dict[str, Any]]

GRANTS: dict[str, Grant] = {
    "client_credentials": client_credentials,
    "authorization_code": authorization_code,
    "refresh_token": refresh_token,
}


def token(ctx: Context, authorization: bytes | None, params: Params, address: str = "") -> Flow[dict[str, Any]]:
    """The success body of RFC 6749 §5.1, or an OAuthError. ``address`` is the caller's
    network address (what failed client authentications are counted by). The client is
    authenticated once; its grant runs in a unit, again if the unit's claim was lost."""
    grant_type = require(params, "grant_type")
    grant = GRANTS.get(grant_type)
    if grant is None:
        raise UnsupportedGrantType(
            "The grant_type is not supported; use " + ", ".join(GRANTS) + ".", detail=f"grant_type {grant_type[:100]!r}"
        )
    if grant_type == "refresh_token" and authorization is None and "client_id" not in params:
        params = _public_refresh(ctx, params)
    presented = presented_client(authorization, params)
    client = client_throttle.authenticate(ctx, presented, address, "token", ctx.settings.rate_limit_token)
    return (yield from in_unit(ctx, lambda unit: grant(ctx, unit, client, params)))


def _public_refresh(ctx: Context, params: Params) -> Params:
    """RFC 6749 §6: a refresh request needs client authentication only "if the client type
    is confidential or the client was issued client credentials"; §3.2.1 makes client_id
    optional there. A public client may thus send just the refresh token: it is
    identified by the token. Everyone else still has to authenticate."""
    presented = params.get("refresh_token")
    if presented is None or kind_of(presented) is not Kind.REFRESH_TOKEN:
        return params
    token = find_issued(ctx, presented)
    if token is None:
        return params
    client = ctx.clients.get(token.client_id)
    if client is None or client.confidential:
        return params
    return {**params, "client_id": client.client_id}
