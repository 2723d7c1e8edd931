"""The refresh token grant (RFC 6749 §6) with rotation and reuse detection
(RFC 9700 §4.14.2), and an idempotent retry inside a short grace window.

Two requests that rotate one token at once both claim it in their units; the one whose
claim is lost at the commit runs again (keyturn.core.service.in_unit) and then finds the
token rotated: it is a retry inside the grace window, or a reuse."""

from __future__ import annotations

import logging
from typing import Any

from .. import retry
from ..context import Context
from ..credentials import Kind, kind_of
from ..errors import InvalidGrant, InvalidScope, UnauthorizedClient
from ..issuing import audit_issuance, find_issued, mint
from ..models import Client, GrantType, Token, TokenKind
from ..params import Params, require
from ..scopes import parse_scope, scope_allowed, scope_name
from ..unit_of_work import UnitOfWork

log = logging.getLogger("keyturn.grants")


def refresh_token(ctx: Context, unit: UnitOfWork, client: Client, params: Params) -> dict[str, Any]:
    if GrantType.REFRESH_TOKEN.value not in client.grant_types:
        raise UnauthorizedClient("This client is not allowed to use the refresh_token grant.")
    presented = require(params, "refresh_token")
    if kind_of(presented) is not Kind.REFRESH_TOKEN:
        raise InvalidGrant("The refresh token is invalid.", detail="not a well-formed refresh token")
    token = find_issued(ctx, presented)
    now = ctx.clock.now()
    if token is None or token.kind != TokenKind.REFRESH.value:
        raise InvalidGrant("The refresh token is invalid.", detail="unknown refresh token")
    # RFC 6749 §6: the server MUST "validate the refresh token" and "ensure that the
    # refresh token was issued to the authenticated client".
    if token.client_id != client.client_id:
        raise InvalidGrant("The refresh token is invalid.", detail="refresh token of another client")
    if token.revoked_at is not None:
        raise InvalidGrant("The refresh token has been revoked.")
    if token.expires_at <= now:
        raise InvalidGrant("The refresh token has expired.")
    if token.rotated_at is not None:
        return _reused(ctx, unit, client, token, presented, now)

    catalogue = ctx.settings.scopes
    # The client's registration may have been narrowed since the user consented: what
    # it may no longer have is not handed out again.
    still_granted = tuple(s for s in token.scopes if scope_allowed(s, client.scopes, catalogue))
    scopes = still_granted
    if "scope" in params:
        scopes = parse_scope(params["scope"])
        # RFC 6749 §6: "The requested scope MUST NOT include any scope not originally
        # granted by the resource owner".
        extra = [s for s in scopes if s not in token.scopes]
        if extra:
            raise InvalidScope(f"The request names {scope_name(extra[0], catalogue)} that was not granted originally.")
        withdrawn = [s for s in scopes if s not in still_granted]
        if withdrawn:
            raise InvalidScope(f"The client may no longer have {scope_name(withdrawn[0], catalogue)}.")
    if token.scopes and not scopes:
        # Nothing the user granted is left: no token without a scope (the client asks anew).
        # A grant that never had a scope (none asked, no defaults) refreshes as it was.
        raise InvalidScope("None of the scopes granted is still allowed for this client.")

    issued, records = mint(
        ctx,
        client,
        account_id=token.account_id,
        scopes=scopes,
        grant_id=token.grant_id,
        with_refresh=True,
        # RFC 6749 §6: the new refresh token keeps the scope of the grant, as far as the
        # client may still have it.
        refresh_scopes=still_granted,
        parent_hash=token.token_hash,
    )
    response = issued.response()
    blob = retry.seal(presented, response) if ctx.settings.refresh_token_reuse_grace > 0 else None
    unit.rotate_refresh_token(token.token_hash, now, blob, records)
    audit_issuance(ctx, unit, client, token.account_id, "refresh_token", token.grant_id)
    return response


def _reused(ctx: Context, unit: UnitOfWork, client: Client, token: Token, presented: str, now: int) -> dict[str, Any]:
    """A refresh token presented after it was rotated."""
    grace = ctx.settings.refresh_token_reuse_grace
    if grace and token.rotated_at is not None and now - token.rotated_at <= grace and token.retry_blob:
        response = retry.unseal(presented, token.retry_blob)
        if response is not None:
            # Only while the pair it got is untouched: once the client has used the new
            # refresh token, an old one coming back is a replay, not a retry.
            child = find_issued(ctx, response["refresh_token"])
            if child is not None and child.revoked_at is None and child.rotated_at is None:
                return response
    # RFC 9700 §4.14.2: "If a refresh token is compromised and subsequently used by both
    # the attacker and the legitimate client, one of them will present an invalidated
    # refresh token, which will inform the authorization server of the breach ... [it]
    # cannot determine which party submitted the invalid refresh token, but it will
    # revoke the active refresh token."
    revoked = unit.revoke_grant(token.grant_id, now)
    unit.record(
        "refresh_token.reused",
        now,
        account_id=token.account_id,
        client_id=client.client_id,
        detail={"grant_id": token.grant_id, "tokens_revoked": revoked},
    )
    log.warning("rotated refresh token reused by client %s: revoked its family (%d tokens)", client.client_id, revoked)
    raise InvalidGrant("The refresh token has already been used; its token family has been revoked.")
