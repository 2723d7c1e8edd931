"""Who is calling: the principal behind an accepted access token or API key."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

#: The ASGI scope key and the WSGI environ key under which the principal is put.
PRINCIPAL_KEY = "keyturn.principal"

Kind = Literal["access_token", "api_key"]


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller, as the authorization server described it."""

    #: The account the credential acts for (the token's ``sub``).
    sub: str
    #: The scopes the credential carries. An API key without a scope restriction carries
    #: the whole catalogue (the introspection endpoint lists it).
    scopes: frozenset[str]
    #: The OAuth client the token was issued to; None for an API key.
    client_id: str | None
    #: ``access_token`` or ``api_key``.
    kind: Kind
    #: Unix time the credential expires at; None for an API key without expiry.
    expires_at: int | None = None
    #: The token's claims or the introspection response, for anything else the API needs
    #: (``username`` for introspected credentials, ``jti`` for JWTs, ...).
    claims: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def has_scopes(self, *needed: str) -> bool:
        return self.scopes.issuperset(needed)

    def missing_scopes(self, *needed: str) -> tuple[str, ...]:
        return tuple(scope for scope in needed if scope not in self.scopes)
