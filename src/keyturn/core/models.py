"""The records Keyturn keeps, as plain data. Storage maps them to rows; core reasons on them.

Times are whole seconds since the Unix epoch (UTC), from the one clock. Secrets appear
here only as their keyed digests (``*_hash``); passwords only as argon2id hashes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class GrantType(StrEnum):
    AUTHORIZATION_CODE = "authorization_code"
    REFRESH_TOKEN = "refresh_token"
    CLIENT_CREDENTIALS = "client_credentials"
    IMPLICIT = "implicit"


class ClientKind(StrEnum):
    #: A registered OAuth application ("Create New Client").
    APPLICATION = "application"
    #: A Sinch-style access key: Key ID + Key Secret for client credentials.
    ACCESS_KEY = "access_key"


class TokenKind(StrEnum):
    ACCESS = "access"
    REFRESH = "refresh"


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    email: str
    password_hash: str | None
    name: str = ""
    company: str = ""
    alias: str = ""
    #: Platform fields (balance, project id, ...) returned by /me.
    attributes: Mapping[str, Any] = field(default_factory=dict)
    disabled: bool = False
    created_at: int = 0
    updated_at: int = 0


@dataclass(frozen=True, slots=True)
class Client:
    client_id: str
    name: str
    owner_id: int
    #: Keyed digest of the client secret; None for a public client.
    secret_hash: bytes | None
    redirect_uris: tuple[str, ...] = ()
    grant_types: tuple[str, ...] = (GrantType.AUTHORIZATION_CODE.value, GrantType.REFRESH_TOKEN.value)
    #: The scopes the client may ask for.
    scopes: tuple[str, ...] = ()
    #: Scopes the consent page shows as required (the user cannot untick them).
    required_scopes: tuple[str, ...] = ()
    kind: str = ClientKind.APPLICATION.value
    allow_implicit: bool = False
    #: A protected API's own client: it may introspect every token and API key.
    resource_server: bool = False
    first_party: bool = False
    remember_consent: bool = True
    #: None: the server's setting.
    token_format: str | None = None
    access_token_ttl: int | None = None
    refresh_token_ttl: int | None = None
    created_at: int = 0
    updated_at: int = 0

    @property
    def confidential(self) -> bool:
        return self.secret_hash is not None


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: int
    key_hash: bytes
    owner_id: int
    name: str
    #: The type prefix and first characters, for listings.
    display_prefix: str
    #: None: every scope the owner has.
    scopes: tuple[str, ...] | None = None
    created_at: int = 0
    expires_at: int | None = None
    last_used_at: int | None = None
    revoked_at: int | None = None


@dataclass(frozen=True, slots=True)
class AuthorizationCode:
    code_hash: bytes
    client_id: str
    account_id: int
    scopes: tuple[str, ...]
    #: The redirect_uri sent to /authorize, if one was sent (RFC 6749 §4.1.3).
    redirect_uri: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    #: Ties together every token issued from this code, to revoke them on replay.
    grant_id: str
    created_at: int
    expires_at: int
    consumed_at: int | None = None


@dataclass(frozen=True, slots=True)
class Token:
    token_hash: bytes
    kind: str
    client_id: str
    #: The account the token acts for: the consenting user, or the client's owner.
    account_id: int
    scopes: tuple[str, ...]
    #: The token family: every token descending from one grant (code or first refresh).
    grant_id: str
    created_at: int
    expires_at: int
    #: For a refresh token: the refresh token it replaced.
    parent_hash: bytes | None = None
    revoked_at: int | None = None
    #: For a refresh token: when it was exchanged for a new pair.
    rotated_at: int | None = None
    #: For a rotated refresh token: the new pair, sealed with a key only the presented
    #: refresh token yields, so an idempotent retry inside the grace window gets it back.
    retry_blob: bytes | None = None


@dataclass(frozen=True, slots=True)
class Consent:
    account_id: int
    client_id: str
    scopes: tuple[str, ...]
    created_at: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    alg: str
    #: The public key as a JWK (RFC 7517), with kid, alg and use.
    public_jwk: Mapping[str, Any]
    #: The private key (PKCS#8 DER), sealed with a key derived from the server secret.
    private_key_sealed: bytes
    created_at: int
    #: Set when a newer key took over; the key stays published until ``expires_at``.
    retired_at: int | None = None
    #: When the key leaves the JWKS: every token it signed has expired by then.
    expires_at: int | None = None

    @property
    def active(self) -> bool:
        return self.retired_at is None


@dataclass(frozen=True, slots=True)
class AuditEvent:
    id: int
    at: int
    kind: str
    account_id: int | None = None
    client_id: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in browser. The cookie carries the secret; only its digest is stored."""

    session_hash: bytes
    account_id: int
    created_at: int
    expires_at: int
