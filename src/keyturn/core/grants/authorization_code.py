"""The authorization code grant (RFC 6749 §4.1.3), with PKCE (RFC 7636)."""

from __future__ import annotations

import logging
from typing import Any

from .. import pkce
from ..context import Context
from ..errors import InvalidGrant, InvalidRequest, UnauthorizedClient
from ..issuing import audit_issuance, mint
from ..models import Client, GrantType
from ..params import Params, require
from ..unit_of_work import UnitOfWork

log = logging.getLogger("keyturn.grants")


def authorization_code(ctx: Context, unit: UnitOfWork, client: Client, params: Params) -> dict[str, Any]:
    if GrantType.AUTHORIZATION_CODE.value not in client.grant_types:
        raise UnauthorizedClient("This client is not allowed to use the authorization_code grant.")
    code_value = require(params, "code")
    verifier = params.get("code_verifier")
    if verifier is not None and not pkce.valid_verifier(verifier):
        # RFC 7636 §4.1: code-verifier = 43*128unreserved
        raise InvalidRequest("The code_verifier must be 43 to 128 unreserved characters (RFC 7636 section 4.1).")
    now = ctx.clock.now()

    # The unit's claim decides whether this is the code's first use (the commit, in the
    # database: of two concurrent exchanges one loses, runs again, and is the replay); a
    # code issued to another client is left untouched for its rightful owner.
    code, replayed = unit.claim_code(ctx.hasher.token_key(code_value), client.client_id, now)
    if code is None:
        raise InvalidGrant("The authorization code is invalid.", detail="unknown code, or issued to another client")
    if replayed:
        # RFC 6749 §4.1.2: "If an authorization code is used more than once, the
        # authorization server MUST deny the request and SHOULD revoke (when possible)
        # all tokens previously issued based on that authorization code."
        revoked = unit.revoke_grant(code.grant_id, now)
        unit.record(
            "authorization_code.replayed",
            now,
            account_id=code.account_id,
            client_id=client.client_id,
            detail={"grant_id": code.grant_id, "tokens_revoked": revoked},
        )
        log.warning("authorization code replayed by client %s: revoked %d tokens", client.client_id, revoked)
        raise InvalidGrant("The authorization code has already been used.")
    if code.expires_at <= now:
        raise InvalidGrant("The authorization code has expired.")

    # RFC 6749 §4.1.3: redirect_uri is "REQUIRED, if the "redirect_uri" parameter was
    # included in the authorization request ..., and their values MUST be identical."
    if code.redirect_uri is not None and params.get("redirect_uri") != code.redirect_uri:
        raise InvalidGrant("The redirect_uri does not match the one of the authorization request.")

    if code.code_challenge is not None:
        if verifier is None:
            raise InvalidGrant("The code_verifier is missing (the authorization request used PKCE).")
        if not pkce.verify(verifier, code.code_challenge):
            raise InvalidGrant("The code_verifier does not match the code_challenge.")
    elif verifier is not None:
        raise InvalidGrant("A code_verifier was sent but the authorization request had no code_challenge.")
    elif not client.confidential:
        raise InvalidGrant("A public client must use PKCE.")

    issued, records = mint(
        ctx,
        client,
        account_id=code.account_id,
        scopes=code.scopes,
        grant_id=code.grant_id,
        with_refresh=GrantType.REFRESH_TOKEN.value in client.grant_types,
    )
    unit.save_tokens(records)
    audit_issuance(ctx, unit, client, code.account_id, "authorization_code", code.grant_id)
    return issued.response()
