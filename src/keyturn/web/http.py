"""The few HTTP primitives the protocol endpoints need, on bare ASGI.

The protocol endpoints (metadata, JWKS, token, introspection, revocation, /me) are the hot
paths: they run on these helpers directly, without a framework's per-request objects.
Portal pages, which are not hot, use Starlette.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from keyturn.core.errors import OAuthError
from keyturn.core.jsontext import compact
from keyturn.core.redirect_uris import location as url_safe

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

#: Sent on every response: no sniffing, no framing, no referrer leaks (RFC 9700 §4.2.4).
SECURITY_HEADERS: Headers = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
]
#: RFC 6749 §5.1: token responses "MUST include the HTTP "Cache-Control" response header
#: field with a value of "no-store" ... as well as the "Pragma" response header field
#: with a value of "no-cache"."
NO_STORE: Headers = [(b"cache-control", b"no-store"), (b"pragma", b"no-cache")]
_JSON = (b"content-type", b"application/json")


class BodyTooLarge(Exception):
    pass


class Request:
    """What a protocol endpoint needs of a request, decoded once."""

    __slots__ = ("_headers", "method", "path", "scope")

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self._headers: dict[bytes, bytes] | None = None

    def header(self, name: bytes) -> bytes | None:
        """The value of a header (lower-case name); repeated headers: the first."""
        if self._headers is None:
            headers: dict[bytes, bytes] = {}
            for key, value in self.scope["headers"]:
                headers.setdefault(key, value)
            self._headers = headers
        return self._headers.get(name)

    @property
    def client_host(self) -> str:
        """The caller's address: the peer, or what the server's proxy-header handling
        (forwarded_allow_ips) put in its place."""
        client = self.scope.get("client")
        return str(client[0]) if client else "unknown"

    @property
    def query_string(self) -> bytes:
        query: bytes = self.scope.get("query_string", b"")
        return query


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole request body; raises BodyTooLarge past ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk: bytes = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def send_bytes(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes | None,
    extra_headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    headers = [(b"content-length", str(len(body)).encode("ascii"))]
    if content_type is not None:
        headers.append((b"content-type", content_type))
    headers.extend(SECURITY_HEADERS)
    headers.extend(extra_headers)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


json_bytes = compact


def error_headers(error: OAuthError) -> Headers:
    """The headers an error calls for (``OAuthError.headers``), as ASGI wants them."""
    return [(name.lower().encode("ascii"), value.encode("ascii")) for name, value in error.headers()]


def location(url: str) -> bytes:
    """The value of a Location header; every redirect the server answers is built here.
    Whatever is not URL-safe is percent-encoded: a raw space or non-ASCII byte in a
    header makes the HTTP server drop the connection, and the user, with a code already
    issued, would never reach the client."""
    return url_safe(url).encode("ascii")


async def send_json(send: Send, status: int, payload: Any, extra_headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    await send_bytes(send, status, json_bytes(payload), _JSON[1], extra_headers)
