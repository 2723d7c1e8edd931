"""Registering OAuth clients and Sinch-style access keys, and issuing API keys: what a
new one must be (``build_client``, ``check_api_key``). The portal's and the keyturn
command's operations (core/client_admin.py, core/api_keys.py) queue them in a unit with
their audit events.

Each secret is returned once, to be shown once; only its keyed digest is stored.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from .clock import Clock
from .credentials import Hasher, Kind, display_prefix, new_secret
from .models import ApiKey, Client, ClientKind, GrantType
from .redirect_uris import redirect_uri_problem
from .scopes import scope_problem
from .unit_of_work import Assigned, UnitOfWork

TOKEN_GRANTS = frozenset(g.value for g in GrantType if g is not GrantType.IMPLICIT)


class RegistrationError(ValueError):
    """The client or key cannot be created as asked; the message says why."""


@dataclass(frozen=True, slots=True)
class NewClient:
    client: Client
    #: Shown once; None for a public client.
    client_secret: str | None


@dataclass(frozen=True, slots=True)
class NewApiKey:
    api_key: ApiKey
    #: The full key: shown once.
    key: str


def new_client_id() -> str:
    """24 URL-safe characters that never start with "-": a client ID pasted after a
    command-line option (``--client-id ID``) must not be read as another option."""
    while (client_id := secrets.token_urlsafe(18)).startswith("-"):
        pass
    return client_id


@dataclass(frozen=True, slots=True)
class ClientRequest:
    """What a new client is asked to be: the portal sets the name, kind, redirect URIs and
    confidentiality; the operator (``keyturn clients create``) any of it."""

    name: str
    kind: ClientKind = ClientKind.APPLICATION
    redirect_uris: Iterable[str] = ()
    confidential: bool = True
    #: None: the kind's usual grants (client credentials for an access key, the
    #: authorization code and refresh tokens for an application).
    grant_types: Iterable[str] | None = None
    scopes: Iterable[str] = ()
    allow_implicit: bool = False
    resource_server: bool = False
    token_format: str | None = None
    access_token_ttl: int | None = None
    refresh_token_ttl: int | None = None


def build_client(
    hasher: Hasher,
    clock: Clock,
    request: ClientRequest,
    *,
    owner_id: int,
    catalogue: Mapping[str, str],
    production: bool,
) -> NewClient:
    """The client ``request`` asks for, owned by ``owner_id``, and its secret; or
    RegistrationError saying what will not do."""
    name = request.name.strip()
    if not name or len(name) > 200:
        raise RegistrationError("the client needs a name of 1 to 200 characters")
    uris = tuple(dict.fromkeys(request.redirect_uris))
    for uri in uris:
        problem = redirect_uri_problem(uri, production=production)
        if problem:
            raise RegistrationError(problem)

    if request.grant_types is None:
        grants: tuple[str, ...] = (
            (GrantType.CLIENT_CREDENTIALS.value,)
            if request.kind is ClientKind.ACCESS_KEY
            else (GrantType.AUTHORIZATION_CODE.value, GrantType.REFRESH_TOKEN.value)
        )
    else:
        grants = tuple(dict.fromkeys(request.grant_types))
    for grant in grants:
        if grant not in TOKEN_GRANTS:
            allowed = ", ".join(sorted(TOKEN_GRANTS))
            raise RegistrationError(f"unknown grant type {grant!r}; use {allowed} (and --allow-implicit)")
    if GrantType.CLIENT_CREDENTIALS.value in grants and not request.confidential:
        # RFC 6749 §4.4: "The client credentials grant type MUST only be used by
        # confidential clients."
        raise RegistrationError("a public client cannot use client_credentials")
    if request.resource_server and not request.confidential:
        raise RegistrationError("a resource server must be a confidential client (it authenticates to introspect)")
    if (GrantType.AUTHORIZATION_CODE.value in grants or request.allow_implicit) and not uris:
        raise RegistrationError("a client using the browser flow needs at least one redirect URI")

    for label, ttl in (("access token", request.access_token_ttl), ("refresh token", request.refresh_token_ttl)):
        if ttl is not None and ttl <= 0:
            raise RegistrationError(f"the {label} lifetime must be a positive number of seconds")

    allowed_scopes = tuple(dict.fromkeys(request.scopes))
    for scope in allowed_scopes:
        problem = scope_problem(scope, catalogue)
        if problem:
            raise RegistrationError(problem)

    secret = new_secret(Kind.CLIENT_SECRET) if request.confidential else None
    now = clock.now()
    client = Client(
        client_id=new_client_id(),
        name=name,
        owner_id=owner_id,
        secret_hash=None if secret is None else hasher.digest(secret),
        redirect_uris=uris,
        grant_types=grants,
        scopes=allowed_scopes,
        kind=request.kind.value,
        allow_implicit=request.allow_implicit,
        resource_server=request.resource_server,
        token_format=request.token_format,
        access_token_ttl=request.access_token_ttl,
        refresh_token_ttl=request.refresh_token_ttl,
        created_at=now,
        updated_at=now,
    )
    return NewClient(client=client, client_secret=secret)


def check_api_key(
    clock: Clock,
    *,
    name: str,
    catalogue: Mapping[str, str],
    scopes: Iterable[str] | None = None,
    expires_at: int | None = None,
) -> tuple[str, tuple[str, ...] | None]:
    """The name and the scopes (None: all the owner's) a new key is stored with; or
    RegistrationError saying what to change."""
    name = name.strip() or "API key"
    if len(name) > 200:
        raise RegistrationError("the key's name must be at most 200 characters")
    scope_list = None if scopes is None else tuple(dict.fromkeys(scopes))
    for scope in scope_list or ():
        problem = scope_problem(scope, catalogue)
        if problem:
            raise RegistrationError(problem)
    if expires_at is not None and expires_at <= clock.now():
        raise RegistrationError("the expiry must be in the future")
    return name, scope_list


@dataclass(frozen=True, slots=True)
class QueuedApiKey:
    """A new key in a unit: its id is assigned when the unit commits."""

    record: ApiKey
    key: str
    id: Assigned

    def committed(self) -> NewApiKey:
        return NewApiKey(api_key=replace(self.record, id=self.id.value), key=self.key)


def queue_api_key(
    unit: UnitOfWork,
    hasher: Hasher,
    *,
    owner_id: int,
    name: str,
    scopes: tuple[str, ...] | None,
    now: int,
    expires_at: int | None,
) -> QueuedApiKey:
    """A new key (name and scopes as ``check_api_key`` returned them), added in ``unit``."""
    key = new_secret(Kind.API_KEY)
    record = ApiKey(0, hasher.digest(key), owner_id, name, display_prefix(key), scopes, now, expires_at)
    key_id = unit.add_api_key(
        key_hash=record.key_hash,
        owner_id=owner_id,
        name=name,
        display_prefix=record.display_prefix,
        scopes=scopes,
        now=now,
        expires_at=expires_at,
    )
    return QueuedApiKey(record, key, key_id)
