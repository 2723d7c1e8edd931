"""Issued secrets: their format, and the keyed hash under which they are stored.

Every secret Keyturn issues looks like ``kt_<type>_<body><check>``: a type prefix so a
leaked one is recognisable (and scannable) on sight, a 32-byte body, and a 6-character
CRC-32 check so that a mistyped or truncated credential is refused without a database
lookup. Only ``HMAC-SHA256(server key, secret)`` is ever stored: these are high-entropy
values, so a keyed fast hash is the right tool (a slow password hash would only slow the
token endpoint down, and add nothing against a 256-bit secret).

Tokens (access and refresh tokens, a JWT's ``jti``, and authorization codes) are the
exception, as they are written thousands of times a second into tables that grow to
millions of rows: their body starts with the time they were issued (6 bytes,
milliseconds; 208 random bits follow), and they are stored under that time followed by 26 bytes of the keyed hash
(:meth:`Hasher.token_key`). New tokens then append to the primary key's index instead
of landing on a random page of it (bench/RESULTS.md). The time is no secret
(introspection tells it).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import time
import zlib
from enum import StrEnum

_BODY_BYTES = 32
_BODY_LENGTH = 43  # 32 bytes in unpadded base64url
_STAMP_BYTES = 6  # milliseconds since 1970: until the year 10889
_STAMP_LENGTH = 8  # 6 bytes in base64url, without padding
_TOKEN_ID_BYTES = 16
_CHECK_LENGTH = 6
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")


class Kind(StrEnum):
    ACCESS_TOKEN = "kt_at_"
    REFRESH_TOKEN = "kt_rt_"
    API_KEY = "kt_key_"
    CLIENT_SECRET = "kt_cs_"
    AUTHORIZATION_CODE = "kt_ac_"


#: Iterating an Enum builds its members anew each time: once, here.
_KINDS = tuple((kind, kind.value) for kind in Kind)


#: Two base-62 digits at a time, least significant first (as _check writes them).
_BASE62_PAIRS = tuple(_BASE62[n % 62] + _BASE62[n // 62] for n in range(62 * 62))


def _check(body: str) -> str:
    """The CRC-32 of ``body`` in six base-62 digits, least significant first."""
    value = zlib.crc32(body.encode("ascii"))
    pairs = _BASE62_PAIRS
    return pairs[value % 3844] + pairs[value // 3844 % 3844] + pairs[value // 14776336]


def new_secret(kind: Kind) -> str:
    """A fresh secret of the given kind, e.g. ``kt_at_…``. Access and refresh tokens
    and authorization codes start with their issue time (see the module's text); other
    secrets are random."""
    stamp = _stamp() if kind in _TOKENS else b""
    body = _base64(stamp + os.urandom(_BODY_BYTES - len(stamp)))
    return kind.value + body + _check(kind.value + body)


def new_token_id() -> str:
    """A JWT access token's ``jti`` (RFC 7519 §4.1.7): its issue time, then 80 random
    bits; stored under :meth:`Hasher.token_key` like an opaque token."""
    return _base64(_stamp() + os.urandom(_TOKEN_ID_BYTES - _STAMP_BYTES))


def _stamp() -> bytes:
    return (time.time_ns() // 1_000_000).to_bytes(_STAMP_BYTES, "big")


def _base64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def kind_of(secret: str) -> Kind | None:
    """The kind of a well-formed Keyturn secret, or None (wrong length, prefix or check)."""
    if not secret.isascii():
        return None
    for kind, prefix in _KINDS:
        if secret.startswith(prefix):
            if len(secret) != len(prefix) + _BODY_LENGTH + _CHECK_LENGTH:
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


_TOKENS = frozenset({Kind.ACCESS_TOKEN, Kind.REFRESH_TOKEN, Kind.AUTHORIZATION_CODE})
_TOKEN_PREFIXES = tuple(kind.value for kind in _TOKENS)
assert len({len(prefix) for prefix in _TOKEN_PREFIXES}) == 1  # token_key skips any of them


class Hasher:
    """Keyed SHA-256 of issued secrets. The key is derived from the server secret."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, server_secret: str) -> None:
        key = hmac.digest(server_secret.encode("utf-8"), b"keyturn/credential-hash/v1", "sha256")
        # HMAC (RFC 2104) from its two keyed SHA-256 states, made once: a call copies
        # them (0.6 µs), where copying an hmac.HMAC object costs 0.9 µs and a one-shot
        # hmac.digest, which keys both states again, 1.3 µs.
        block = key.ljust(hashlib.sha256().block_size, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def digest(self, secret: str) -> bytes:
        """HMAC-SHA256 of the secret (UTF-8) under the derived key."""
        inner = self._inner.copy()
        inner.update(secret.encode("utf-8"))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def token_key(self, secret: str) -> bytes:
        """The key an access or refresh token, an authorization code or a JWT's ``jti``
        is stored under: the issue time it carries (its first 6 bytes), then the first 26
        bytes of its keyed hash. The hash covers the whole token, time included: a
        changed time is another key. Tokens issued before keys carried the time are
        stored under ``digest``; codes issued then (they live minutes) are not found."""
        start = len(Kind.ACCESS_TOKEN.value) if secret.startswith(_TOKEN_PREFIXES) else 0
        try:  # as base64.urlsafe_b64decode, without its wrappers
            stamp = binascii.a2b_base64(secret[start : start + _STAMP_LENGTH].encode("ascii").translate(_FROM_URLSAFE))
        except (ValueError, binascii.Error):  # not base64: a key no token has
            stamp = b""
        if len(stamp) != _STAMP_BYTES:
            stamp = bytes(_STAMP_BYTES)
        return stamp + self.digest(secret)[: 32 - _STAMP_BYTES]

    def matches(self, secret: str, stored: bytes) -> bool:
        """Constant-time comparison of a presented secret with a stored digest."""
        return hmac.compare_digest(self.digest(secret), stored)
