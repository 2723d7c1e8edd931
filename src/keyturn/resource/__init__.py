"""Keyturn for API owners: accept access tokens and API keys in your own API.

A :class:`Verifier` checks credentials issued by one Keyturn authorization server;
:class:`KeyturnMiddleware` (ASGI) or :class:`KeyturnWSGIMiddleware` / :func:`protect_wsgi`
(WSGI) put it in front of an API, and :func:`require_scopes` asks for scopes per endpoint::

    verifier = Verifier("https://auth.example.com", client_id, client_secret)
    app = Starlette(routes=..., middleware=[
        Middleware(KeyturnMiddleware, verifier=verifier, public_paths=["/getFreeList"]),
    ])

Credentials come from ``Authorization: Bearer`` or, for API keys only, from the query
parameters ``api_key`` / ``apikey``. JWT access tokens (RFC 9068) are checked locally
against the issuer's JWKS; opaque access tokens and API keys at the introspection
endpoint (RFC 7662), with the resource server's client credentials.

Revocation bound: an introspection answer is cached for at most ``cache_ttl`` seconds
(default 10), so a token or API key revoked at the authorization server stops working
here within that time. A refusal is cached for ``negative_cache_ttl`` seconds (default 2).
A JWT checked locally stays valid until its ``exp`` unless ``introspect_jwts=True``.
The caches hold at most ``cache_max_entries`` (default 10,000) accepted and
``negative_cache_max_entries`` (default 1,000) refused credentials, keyed by a keyed
digest, never by the credential. An authorization server that cannot be asked means 503.

This package imports nothing of Keyturn's server side (and no Starlette, except for
:func:`require_scopes`).
"""

from ._asgi import KeyturnMiddleware, principal_of, require_scopes
from ._clock import Clock
from ._errors import (
    AuthError,
    AuthServerUnavailable,
    ErrorStyle,
    InsufficientScope,
    InvalidRequest,
    InvalidToken,
    MissingCredential,
)
from ._gate import DEFAULT_QUERY_PARAMETERS
from ._principal import PRINCIPAL_KEY, Principal
from ._verifier import Verifier
from ._wsgi import KeyturnWSGIMiddleware, protect_wsgi

__all__ = [
    "DEFAULT_QUERY_PARAMETERS",
    "PRINCIPAL_KEY",
    "AuthError",
    "AuthServerUnavailable",
    "Clock",
    "ErrorStyle",
    "InsufficientScope",
    "InvalidRequest",
    "InvalidToken",
    "KeyturnMiddleware",
    "KeyturnWSGIMiddleware",
    "MissingCredential",
    "Principal",
    "Verifier",
    "principal_of",
    "protect_wsgi",
    "require_scopes",
]
