"""Recognising credentials on sight, and finding the one a request carries.

Keyturn's secrets look like ``kt_<type>_<body><check>`` with a CRC-32 check, so a
mistyped, truncated or made-up value is refused here without asking the authorization
server. JWT access tokens are three dot-separated parts.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import zlib
from collections.abc import Iterable
from enum import Enum
from urllib.parse import parse_qsl

from ._errors import InvalidRequest, InvalidToken, MissingCredential

ACCESS_TOKEN_PREFIX = "kt_at_"
API_KEY_PREFIX = "kt_key_"
_BODY_LENGTH = 43
_CHECK_LENGTH = 6
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_JWT = re.compile(r"[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+")


class Shape(Enum):
    """What a presented value is, judged by its form alone."""

    OPAQUE_TOKEN = "opaque access token"
    API_KEY = "API key"
    JWT = "JWT"


def _check(text: str) -> str:
    value = zlib.crc32(text.encode("ascii"))
    out = []
    for _ in range(_CHECK_LENGTH):
        value, digit = divmod(value, 62)
        out.append(_BASE62[digit])
    return "".join(out)


def _well_formed(value: str, prefix: str) -> bool:
    if len(value) != len(prefix) + _BODY_LENGTH + _CHECK_LENGTH:
        return False
    head, check = value[:-_CHECK_LENGTH], value[-_CHECK_LENGTH:]
    return hmac.compare_digest(_check(head), check)


def shape_of(value: str) -> Shape | None:
    """The shape of a credential a resource may accept, or None (malformed, or a kind
    that is no access credential, such as a refresh token or a client secret)."""
    if not value.isascii():
        return None
    if value.startswith(ACCESS_TOKEN_PREFIX):
        return Shape.OPAQUE_TOKEN if _well_formed(value, ACCESS_TOKEN_PREFIX) else None
    if value.startswith(API_KEY_PREFIX):
        return Shape.API_KEY if _well_formed(value, API_KEY_PREFIX) else None
    if _JWT.fullmatch(value):
        return Shape.JWT
    return None


class Digester:
    """Keyed digests of credentials, used as cache keys: a cache (or a memory dump of it)
    never holds a usable credential. The key is random per process."""

    __slots__ = ("_key",)

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def __call__(self, credential: str) -> bytes:
        return hmac.digest(self._key, credential.encode("utf-8"), hashlib.sha256)


def find_credential(
    authorization: Iterable[str], query_string: str, query_parameters: Iterable[str]
) -> tuple[str, Shape]:
    """The one credential a request carries: ``Authorization: Bearer`` (RFC 6750 §2.1) or,
    for API keys only, a configured query parameter. Raises an :class:`AuthError`."""
    found: list[str] = []
    for header in authorization:
        scheme, _, value = header.strip().partition(" ")
        # Another scheme (Basic, ...) carries no bearer credential: that is the bare
        # challenge of RFC 6750 §3.1, not an error.
        if scheme.lower() == "bearer" and value.strip():
            found.append(value.strip())
    from_query: list[str] = []
    names = set(query_parameters)
    if names and query_string:
        from_query = [value for name, value in parse_qsl(query_string) if name in names and value]
        found.extend(from_query)
    if len(found) > 1:
        # RFC 6750 §2: "Clients MUST NOT use more than one method to transmit the token in
        # each request."
        raise InvalidRequest("Send the credential once: in the Authorization header or the query, not both.")
    if not found:
        raise MissingCredential
    credential = found[0]
    shape = shape_of(credential) if _B64TOKEN.fullmatch(credential) else None
    if from_query and shape is not Shape.API_KEY:
        # Only API keys travel in URLs (the OnlineSIM ?api_key=); RFC 6750 §2.3 advises
        # against access tokens there ("URLs end up in logs").
        raise InvalidToken("Only API keys may be sent as a query parameter.")
    if shape is None:
        raise InvalidToken("The credential is malformed.")
    return credential, shape
