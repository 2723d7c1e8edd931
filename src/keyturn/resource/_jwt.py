"""JWT access tokens (RFC 9068), checked locally against the issuer's published keys."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from ._errors import InvalidToken
from ._principal import Principal

log = logging.getLogger("keyturn.resource")

#: Asymmetric algorithms only: never ``none``, never HS* (a symmetric key published in a
#: JWKS would let anyone who reads it sign tokens).
ALLOWED_ALGORITHMS = frozenset(
    {"ES256", "ES384", "ES512", "EdDSA", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
)
#: RFC 9068 §4: the resource server "MUST verify that the "typ" header value is "at+jwt" or
#: "application/at+jwt" and reject tokens carrying any other value".
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
#: RFC 9068 §2.2: claims a JWT access token MUST carry.
REQUIRED_CLAIMS = ("iss", "exp", "aud", "sub", "client_id", "iat", "jti")


@dataclass(frozen=True, slots=True)
class Header:
    kid: str
    alg: str


def parse_jwks(document: Any) -> dict[str, jwt.PyJWK]:
    """The usable signature keys of a JWKS, by ``kid``; anything else is skipped."""
    keys: dict[str, jwt.PyJWK] = {}
    members = document.get("keys") if isinstance(document, Mapping) else None
    if not isinstance(members, list):
        raise ValueError("a JWKS is an object with a keys array")
    for member in members:
        if not isinstance(member, dict) or not isinstance(member.get("kid"), str):
            continue
        if member.get("use", "sig") != "sig" or member.get("kty") == "oct":
            continue
        try:
            # The algorithm comes from the key (its "alg", or its type and curve), never
            # from the token being checked.
            key = jwt.PyJWK(member)
        except jwt.PyJWKError as exc:
            log.warning("skipping JWK %s: %s", member["kid"], exc)
            continue
        if key.algorithm_name in ALLOWED_ALGORITHMS:
            keys.setdefault(member["kid"], key)
    return keys


def read_header(token: str) -> Header:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise InvalidToken("The access token is malformed.") from None
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
        raise InvalidToken("The JWT is not an access token.", detail=f"typ {typ!r}")
    kid, alg = header.get("kid"), header.get("alg")
    if not isinstance(kid, str) or not isinstance(alg, str):
        raise InvalidToken("The access token is malformed.", detail="no kid or alg")
    return Header(kid=kid, alg=alg)


def check_token(
    token: str, header: Header, key: jwt.PyJWK, *, issuer: str, audience: str, now: float, leeway: float
) -> Principal:
    """The principal of a JWT access token signed by ``key``; InvalidToken otherwise."""
    if header.alg != key.algorithm_name:
        # RFC 8725 §3.1: use only the algorithm the key is for.
        raise InvalidToken(detail=f"alg {header.alg!r} does not match the key's {key.algorithm_name!r}")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=[key.algorithm_name],
            # RFC 9068 §4: iss "MUST exactly match" the issuer; aud MUST name this resource.
            issuer=issuer,
            audience=audience,
            # Time is checked below against the verifier's clock.
            options={"require": list(REQUIRED_CLAIMS), "verify_exp": False, "verify_iat": False, "verify_nbf": False},
        )
    except jwt.InvalidTokenError as exc:
        raise InvalidToken(detail=f"JWT rejected: {exc}") from None
    exp, nbf = claims["exp"], claims.get("nbf")
    # RFC 9068 §4: "The current time MUST be before the time represented by the "exp" claim."
    if not isinstance(exp, int | float) or now >= exp + leeway:
        raise InvalidToken("The access token has expired.")
    if nbf is not None and (not isinstance(nbf, int | float) or now < nbf - leeway):
        raise InvalidToken("The access token is not valid yet.")
    scope, client_id, sub = claims.get("scope", ""), claims["client_id"], claims["sub"]
    if not isinstance(scope, str) or not isinstance(client_id, str) or not isinstance(sub, str):
        raise InvalidToken("The access token is malformed.", detail="scope, client_id or sub is not a string")
    return Principal(
        sub=sub,
        scopes=frozenset(scope.split()),
        client_id=client_id,
        kind="access_token",
        expires_at=int(exp),
        claims=claims,
    )
