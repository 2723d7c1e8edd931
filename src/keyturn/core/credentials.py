"""Issued secrets: their format, and the keyed hash under which they are stored.

Every secret Keyturn issues looks like ``kt_<type>_<body><check>``: a type prefix so a
leaked one is recognisable (and scannable) on sight, 256 random bits, and a 6-character
CRC-32 check so that a mistyped or truncated credential is refused without a database
lookup. Only ``HMAC-SHA256(server key, secret)`` is ever stored: these are high-entropy
values, so a keyed fast hash is the right tool (a slow password hash would only slow the
token endpoint down, and add nothing against a 256-bit secret).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import zlib
from enum import StrEnum

_BODY_BYTES = 32
_BODY_LENGTH = 43  # len(secrets.token_urlsafe(32))
_CHECK_LENGTH = 6
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


class Kind(StrEnum):
    ACCESS_TOKEN = "kt_at_"
    REFRESH_TOKEN = "kt_rt_"
    API_KEY = "kt_key_"
    CLIENT_SECRET = "kt_cs_"
    AUTHORIZATION_CODE = "kt_ac_"


def _check(body: str) -> str:
    value = zlib.crc32(body.encode("ascii"))
    out = []
    for _ in range(_CHECK_LENGTH):
        value, digit = divmod(value, 62)
        out.append(_BASE62[digit])
    return "".join(out)


def new_secret(kind: Kind) -> str:
    """A fresh secret of the given kind, e.g. ``kt_at_…``."""
    body = secrets.token_urlsafe(_BODY_BYTES)
    return kind.value + body + _check(kind.value + body)


def kind_of(secret: str) -> Kind | None:
    """The kind of a well-formed Keyturn secret, or None (wrong length, prefix or check)."""
    if not secret.isascii():
        return None
    for kind in Kind:
        if secret.startswith(kind.value):
            if len(secret) != len(kind.value) + _BODY_LENGTH + _CHECK_LENGTH:
                return None
            head, check = secret[:-_CHECK_LENGTH], secret[-_CHECK_LENGTH:]
            return kind if hmac.compare_digest(_check(head), check) else None
    return None


def display_prefix(secret: str) -> str:
    """What a listing may show of a secret: its type prefix, first characters and last
    characters. The last six characters are the check, derived from the rest, so showing
    four of them reveals nothing of the 256 random bits."""
    prefix_end = secret.index("_", 3) + 1 if secret.startswith("kt_") else 0
    return secret[: prefix_end + 4] + "…" + secret[-4:]


class Hasher:
    """Keyed SHA-256 of issued secrets. The key is derived from the server secret."""

    __slots__ = ("_keyed",)

    def __init__(self, server_secret: str) -> None:
        key = hmac.digest(server_secret.encode("utf-8"), b"keyturn/credential-hash/v1", "sha256")
        # Keyed once: copying the keyed state costs half of setting up HMAC per call.
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)

    def digest(self, secret: str) -> bytes:
        mac = self._keyed.copy()
        mac.update(secret.encode("utf-8"))
        return mac.digest()

    def matches(self, secret: str, stored: bytes) -> bool:
        """Constant-time comparison of a presented secret with a stored digest."""
        return hmac.compare_digest(self.digest(secret), stored)
