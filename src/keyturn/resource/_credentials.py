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


#: Every two-digit base-62 number, least significant digit first (as the check is written).
_PAIRS = tuple(_BASE62[n % 62] + _BASE62[n // 62] for n in range(62 * 62))


def _check(text: str) -> str:
    """The CRC-32 of ``text`` in six base-62 digits, least significant first (62**6 > 2**32),
    two digits per lookup: checked on every protected request."""
    value = zlib.crc32(text.encode("ascii"))
    return _PAIRS[value % 3844] + _PAIRS[value // 3844 % 3844] + _PAIRS[value // 14776336]


def _well_formed(value: str, prefix: str) -> bool:
    if len(value) != len(prefix) + _BODY_LENGTH + _CHECK_LENGTH or not _B64TOKEN.fullmatch(value):
        return False
    head, check = value[:-_CHECK_LENGTH], value[-_CHECK_LENGTH:]
    return hmac.compare_digest(_check(head), check)


def shape_of(value: str) -> Shape | None:
    """The shape of a credential a resource may accept, or None (malformed, or a kind
    that is no access credential, such as a refresh token or a client secret). Either shape
    is made of RFC 6750 §2.1 b64token characters (a JWT's base64url parts are)."""
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
    never holds a usable credential. The key is random per process.

    Keyed BLAKE2b: RFC 7693 "can be directly keyed, making it functionally equivalent to a
    Message Authentication Code (MAC)". One is computed per protected request, and CPython's
    own BLAKE2b takes a quarter of the time of an HMAC-SHA256 through OpenSSL 3."""

    __slots__ = ("_keyed",)

    def __init__(self) -> None:
        # The key block is hashed once, here; every digest starts from a copy of that state.
        self._keyed = hashlib.blake2b(key=secrets.token_bytes(32), digest_size=32)

    def __call__(self, credential: str) -> bytes:
        digest = self._keyed.copy()
        digest.update(credential.encode("utf-8"))
        return digest.digest()


def check_shape(value: str) -> Shape:
    """The shape of a presented credential; InvalidToken if it has none."""
    shape = shape_of(value)
    if shape is None:
        raise InvalidToken("The credential is malformed.")
    return shape


def find_credential(
    authorization: Iterable[str], query_string: str, query_parameters: Iterable[str]
) -> tuple[str, Shape | None]:
    """The one credential a request carries: ``Authorization: Bearer`` (RFC 6750 §2.1) or,
    for API keys only, a configured query parameter. Raises an :class:`AuthError`.

    Returned with its shape if it came in the query (checked here: it must be an API key);
    from the header, with None: the verifier checks the shape (:func:`check_shape`) of a
    credential it does not know already, and a known one has passed that check before."""
    found: list[str] = []
    for header in authorization:
        scheme, _, value = header.strip().partition(" ")
        value = value.strip()
        # Another scheme (Basic, ...) carries no bearer credential: that is the bare
        # challenge of RFC 6750 §3.1, not an error.
        if value and scheme.lower() == "bearer":
            found.append(value)
    from_query: list[str] = []
    if query_string:
        names = set(query_parameters)
        from_query = [value for name, value in parse_qsl(query_string) if name in names and value]
        found.extend(from_query)
    if len(found) > 1:
        # RFC 6750 §2: "Clients MUST NOT use more than one method to transmit the token in
        # each request."
        raise InvalidRequest("Send the credential once: in the Authorization header or the query, not both.")
    if not found:
        raise MissingCredential
    credential = found[0]
    if not from_query:
        return credential, None
    if shape_of(credential) is not Shape.API_KEY:
        # Only API keys travel in URLs (the OnlineSIM ?api_key=); RFC 6750 §2.3 advises
        # against access tokens there ("URLs end up in logs").
        raise InvalidToken("Only API keys may be sent as a query parameter.")
    return credential, Shape.API_KEY
