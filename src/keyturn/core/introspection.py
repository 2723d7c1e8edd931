"""Token introspection (RFC 7662) for access tokens, refresh tokens and API keys alike."""

from __future__ import annotations

from typing import Any

from . import client_throttle
from .client_auth import presented_client
from .context import Context
from .errors import InvalidClient
from .params import Params, require
from .principals import resolve

INACTIVE: dict[str, Any] = {"active": False}


def introspect(ctx: Context, authorization: bytes | None, params: Params, address: str = "") -> dict[str, Any]:
    # RFC 7662 §2.1: "the endpoint MUST also require some form of authorization";
    # here: a confidential client.
    presented = presented_client(authorization, params)
    client = client_throttle.authenticate(ctx, presented, address, "introspect", ctx.settings.rate_limit_introspect)
    if not client.confidential:
        raise InvalidClient("Only confidential clients may introspect tokens.", used_basic=presented.used_basic)
    token = require(params, "token")
    # token_type_hint is optional and only a hint (§2.1): one credential model serves all.
    principal = resolve(ctx, token, accept_refresh=True)
    # A client sees its own tokens; a resource server sees every token and API key.
    if principal is not None and not client.resource_server and principal.client_id != client.client_id:
        principal = None
    if principal is None:
        # §2.2: "If the introspection call is properly authorized but the token is not
        # active, does not exist on this server, or the protected resource is not allowed
        # to introspect this particular token, then the authorization server MUST return
        # an introspection response with the "active" field set to "false"."
        return dict(INACTIVE)
    account = ctx.accounts.get(principal.account_id)
    if account is None or account.disabled:
        return dict(INACTIVE)
    response: dict[str, Any] = {
        "active": True,
        "scope": principal.scope_string(tuple(ctx.settings.scopes)),
        "sub": str(principal.account_id),
        "username": account.email,
        "token_use": principal.kind,
        "iat": principal.issued_at,
        "iss": ctx.settings.issuer,
        "aud": ctx.audience,
    }
    if principal.kind != "refresh_token":
        # §2.2: token_type is the type of RFC 6749 §5.1; a refresh token has none.
        response["token_type"] = "Bearer"
    if principal.client_id is not None:
        response["client_id"] = principal.client_id
    if principal.expires_at is not None:
        response["exp"] = principal.expires_at
    return response
