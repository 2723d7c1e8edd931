"""JWT access tokens (RFC 9068), signed with the key ring's active key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jwt

from keyturn.core.clock import Clock

from .keys import KeyRing

#: RFC 9068 §2.1: access tokens "MUST include this media type in the "typ" header".
TYP = "at+jwt"


class JwtAccessTokens:
    """Implements core.context.JwtCodec."""

    def __init__(self, keyring: KeyRing, issuer: str, clock: Clock) -> None:
        self._keyring = keyring
        self._issuer = issuer
        self._clock = clock

    def encode(self, claims: Mapping[str, Any]) -> str:
        active = self._keyring.active
        return jwt.encode(
            dict(claims), active.private_key, algorithm=active.alg, headers={"kid": active.kid, "typ": TYP}
        )

    def decode(self, token: str) -> dict[str, Any] | None:
        try:
            header = jwt.get_unverified_header(token)
            public = self._keyring.public_key(header.get("kid", ""))
            if public is None or header.get("typ") != TYP or header.get("alg") != public.algorithm_name:
                return None
            claims: dict[str, Any] = jwt.decode(
                token,
                public,
                algorithms=[public.algorithm_name],
                issuer=self._issuer,
                # Time is checked against the server's one clock below, not PyJWT's.
                options={
                    "require": ["exp", "iat", "jti", "iss"],
                    "verify_aud": False,
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.InvalidTokenError:
            return None
        if not isinstance(claims["exp"], int) or claims["exp"] <= self._clock.now():
            return None
        return claims
