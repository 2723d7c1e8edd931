"""One credential model: an access token (opaque or JWT), a refresh token or an API key,
resolved to the account it acts for and the scopes it carries."""

from __future__ import annotations

from dataclasses import dataclass

from .context import Context
from .credentials import Kind, kind_of
from .issuing import find_issued
from .models import TokenKind
from .service import commit_now

#: How often at most an API key's last-used time is written (a write per request would
#: put a database write on every API call).
API_KEY_TOUCH_INTERVAL = 60


@dataclass(frozen=True, slots=True)
class Principal:
    #: access_token | refresh_token | api_key
    kind: str
    account_id: int
    #: None for an API key (it belongs to an account, not to a client).
    client_id: str | None
    #: None: unrestricted (an API key without a scope restriction).
    scopes: tuple[str, ...] | None
    issued_at: int
    expires_at: int | None

    def scope_string(self, catalogue: tuple[str, ...]) -> str:
        """RFC 7662's ``scope``: an unrestricted API key lists the catalogue, so that a
        resource server checking scope names finds them (elsewhere "all" is JSON null)."""
        return " ".join(catalogue if self.scopes is None else self.scopes)

    def has_scopes(self, needed: tuple[str, ...]) -> bool:
        return self.scopes is None or all(scope in self.scopes for scope in needed)


def resolve(ctx: Context, presented: str, *, accept_refresh: bool = False) -> Principal | None:
    """The principal behind a presented credential, or None when it is unknown, malformed,
    expired or revoked. One indexed look-up for a token that exists (see
    :func:`find_issued`); none for a malformed value."""
    now = ctx.clock.now()
    kind = kind_of(presented)
    if kind is Kind.API_KEY:
        return _api_key(ctx, presented, now)
    if kind is Kind.ACCESS_TOKEN or (kind is Kind.REFRESH_TOKEN and accept_refresh):
        token = find_issued(ctx, presented)
    elif kind is None and presented.count(".") == 2:
        claims = ctx.jwt.decode(presented)
        if claims is None or not isinstance(claims.get("jti"), str):
            return None
        token = find_issued(ctx, claims["jti"])
    else:
        return None
    if token is None or token.revoked_at is not None or token.expires_at <= now:
        return None
    if token.kind == TokenKind.REFRESH.value and (not accept_refresh or token.rotated_at is not None):
        return None
    return Principal(
        kind="refresh_token" if token.kind == TokenKind.REFRESH.value else "access_token",
        account_id=token.account_id,
        client_id=token.client_id,
        scopes=token.scopes,
        issued_at=token.created_at,
        expires_at=token.expires_at,
    )


def _api_key(ctx: Context, presented: str, now: int) -> Principal | None:
    digest = ctx.hasher.digest(presented)
    ctx.limit("api_key", digest[:12].hex(), ctx.settings.rate_limit_api_key)
    key = ctx.store.find_api_key(digest)
    if key is None or key.revoked_at is not None or (key.expires_at is not None and key.expires_at <= now):
        return None
    if key.last_used_at is None or now - key.last_used_at >= API_KEY_TOUCH_INTERVAL:
        # A write on a read path: committed at once, on its own (it claims nothing).
        commit_now(ctx.store, lambda unit: unit.touch_api_key(key.id, now))
    return Principal(
        kind="api_key",
        account_id=key.owner_id,
        client_id=None,
        scopes=key.scopes,
        issued_at=key.created_at,
        expires_at=key.expires_at,
    )
