"""Issuing authorization codes (RFC 6749 §4.1.2); /authorize does once the user has
consented. Codes are single-use, short-lived, and stored only as digests."""

from __future__ import annotations

from .context import Context
from .credentials import Kind, new_secret
from .issuing import new_grant_id
from .models import AuthorizationCode, Client
from .service import in_unit, run
from .unit_of_work import UnitOfWork


def issue_code(
    ctx: Context,
    client: Client,
    *,
    account_id: int,
    scopes: tuple[str, ...],
    redirect_uri: str | None,
    code_challenge: str | None = None,
    code_challenge_method: str | None = None,
) -> str:
    """A code saved at once, outside a request (tools, tests)."""
    return run(
        in_unit(
            ctx,
            lambda unit: save_new_code(
                ctx,
                unit,
                client,
                account_id=account_id,
                scopes=scopes,
                redirect_uri=redirect_uri,
                code_challenge=code_challenge,
                code_challenge_method=code_challenge_method,
            ),
        )
    )


def save_new_code(
    ctx: Context,
    unit: UnitOfWork,
    client: Client,
    *,
    account_id: int,
    scopes: tuple[str, ...],
    redirect_uri: str | None,
    code_challenge: str | None = None,
    code_challenge_method: str | None = None,
) -> str:
    code = new_secret(Kind.AUTHORIZATION_CODE)
    now = ctx.clock.now()
    unit.save_code(
        AuthorizationCode(
            code_hash=ctx.hasher.token_key(code),
            client_id=client.client_id,
            account_id=account_id,
            scopes=scopes,
            redirect_uri=redirect_uri,
            code_challenge=code_challenge,
            code_challenge_method=code_challenge_method,
            grant_id=new_grant_id(),
            created_at=now,
            # RFC 6749 §4.1.2: "A maximum authorization code lifetime of 10 minutes is
            # RECOMMENDED."
            expires_at=now + ctx.settings.authorization_code_ttl,
        )
    )
    return code
