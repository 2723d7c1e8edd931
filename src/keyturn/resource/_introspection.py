"""Opaque tokens and API keys, asked about at the introspection endpoint (RFC 7662)."""

from __future__ import annotations

from base64 import b64encode
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote_plus

import httpx

from ._principal import Principal

#: What Keyturn's ``token_use`` says a credential is; refresh tokens are no access credential.
ACCEPTED_USES = ("access_token", "api_key")


def basic_credentials(client_id: str, client_secret: str) -> str:
    # RFC 6749 §2.3.1: both are form-urlencoded before they are joined and encoded.
    pair = f"{quote_plus(client_id)}:{quote_plus(client_secret)}"
    return "Basic " + b64encode(pair.encode("utf-8")).decode("ascii")


def introspection_request(endpoint: str, authorization: str, credential: str) -> httpx.Request:
    # RFC 7662 §2.1: a POST with the token as a form parameter; the resource server
    # authenticates as a client (here: client_secret_basic).
    return httpx.Request(
        "POST",
        endpoint,
        data={"token": credential},
        headers={"authorization": authorization, "accept": "application/json"},
    )


def _audiences(value: Any) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, list) else (value,)


def principal_from(body: Mapping[str, Any], *, issuer: str, audience: str, now: float) -> tuple[Principal | None, str]:
    """The principal an introspection response describes, or None and why not."""
    # RFC 7662 §2.2: "active" is REQUIRED; anything but true is inactive.
    if body.get("active") is not True:
        return None, "inactive"
    use = body.get("token_use", "access_token")
    if use not in ACCEPTED_USES:
        return None, f"token_use {use!r} is no access credential"
    exp = body.get("exp")
    if exp is not None and (not isinstance(exp, int) or exp <= now):
        return None, "expired"
    if "iss" in body and body["iss"] != issuer:
        return None, f"issued by {body['iss']!r}"
    if "aud" in body and audience not in _audiences(body["aud"]):
        return None, f"audience {body['aud']!r}"
    sub, scope, client_id = body.get("sub"), body.get("scope", ""), body.get("client_id")
    if not isinstance(sub, str) or not isinstance(scope, str) or not isinstance(client_id, str | None):
        return None, "sub, scope or client_id missing or malformed"
    principal = Principal(
        sub=sub,
        scopes=frozenset(scope.split()),
        client_id=None if use == "api_key" else client_id,
        kind="api_key" if use == "api_key" else "access_token",
        expires_at=exp,
        claims=dict(body),
    )
    return principal, "active"
