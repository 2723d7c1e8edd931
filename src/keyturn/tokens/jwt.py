"""JWT access tokens (RFC 9068), signed with the key ring's active key."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from keyturn.core.clock import Clock
from keyturn.core.jsontext import compact

from .keys import ActiveKey, KeyRing

#: RFC 9068 §2.1: access tokens "MUST include this media type in the "typ" header".
TYP = "at+jwt"
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


def _b64(data: bytes) -> bytes:
    # RFC 7515 §2: base64url without padding.
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _signature(key: ActiveKey, signing_input: bytes) -> bytes:
    private_key = key.private_key
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        return private_key.sign(signing_input)  # RFC 8037 §3.1: the 64-byte signature
    # RFC 7518 §3.4: ES256 is R || S, each 32 bytes big-endian (not the DER of OpenSSL).
    r, s = decode_dss_signature(private_key.sign(signing_input, _ECDSA_SHA256))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


class JwtAccessTokens:
    """Implements core.context.JwtCodec."""

    def __init__(self, keyring: KeyRing, issuer: str, clock: Clock) -> None:
        self._keyring = keyring
        self._issuer = issuer
        self._clock = clock
        self._header: tuple[ActiveKey, bytes] | None = None

    def encode(self, claims: Mapping[str, Any]) -> str:
        """The JWS compact serialisation (RFC 7515 §7.1), written here rather than by
        PyJWT: its per-call work (key preparation, header merging, sorted JSON) cost
        as much as the signature. Verification stays with PyJWT."""
        active = self._keyring.active
        if self._header is None or self._header[0] is not active:
            self._header = (active, _b64(compact({"alg": active.alg, "kid": active.kid, "typ": TYP})))
        signing_input = self._header[1] + b"." + _b64(compact(dict(claims)))
        return (signing_input + b"." + _b64(_signature(active, signing_input))).decode("ascii")

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
