"""The token endpoint (RFC 6749 §3.2): authenticate the client, then run its grant."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .client_auth import authenticate_client, presented_client
from .context import Context
from .errors import InvalidClient, UnsupportedGrantType
from .grants.authorization_code import authorization_code
from .grants.client_credentials import client_credentials
from .grants.refresh_token import refresh_token
from .models import Client
from .params import Params, require
from .ratelimit import FAILURE_COST

Grant = Callable[[Context, Client, Params], dict[str, Any]]

GRANTS: dict[str, Grant] = {
    "client_credentials": client_credentials,
    "authorization_code": authorization_code,
    "refresh_token": refresh_token,
}


def token(ctx: Context, authorization: bytes | None, params: Params) -> dict[str, Any]:
    """The success body of RFC 6749 §5.1, or an OAuthError."""
    grant_type = require(params, "grant_type")
    grant = GRANTS.get(grant_type)
    if grant is None:
        raise UnsupportedGrantType(f"The grant type {grant_type!r} is not supported.")
    presented = presented_client(authorization, params)
    limit = ctx.settings.rate_limit_token
    ctx.limit("token", presented.client_id, limit)
    try:
        client = authenticate_client(presented, ctx.clients, ctx.hasher)
    except InvalidClient:
        ctx.limit("token", presented.client_id, limit, FAILURE_COST - 1)
        raise
    return grant(ctx, client, params)
