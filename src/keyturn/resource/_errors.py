"""The protected resource's errors (RFC 6750 §3) and the one place that renders them."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import ClassVar, Literal

ErrorStyle = Literal["rfc6750", "onlinesim"]
ERROR_STYLES: tuple[ErrorStyle, ...] = ("rfc6750", "onlinesim")

# RFC 6750 §3: error_description and scope values use %x20-21 / %x23-5B / %x5D-7E.
_NOT_ALLOWED = re.compile(r"[^\x20-\x21\x23-\x5b\x5d-\x7e]")
#: Seconds a client is asked to wait when the authorization server cannot be reached.
RETRY_AFTER = 5


def _quotable(text: str) -> str:
    return _NOT_ALLOWED.sub("?", text.replace('"', "'").replace("\\", "/"))


class AuthError(Exception):
    """Base of the errors a protected resource answers with. ``description`` is public;
    ``detail`` is only logged."""

    error: ClassVar[str | None] = None
    status_code: ClassVar[int] = 401
    default_description: ClassVar[str] = "Authentication failed."

    def __init__(self, description: str | None = None, *, detail: str | None = None) -> None:
        self.description = _quotable(description or self.default_description)
        self.detail = detail
        super().__init__(self.description)


class MissingCredential(AuthError):
    """RFC 6750 §3.1: "If the request lacks any authentication information (e.g., the
    client was unaware that authentication is necessary or attempted using an unsupported
    authentication method), the resource server SHOULD NOT include an error code or other
    error information." """

    default_description = "This API needs an access token or an API key."


class InvalidRequest(AuthError):
    """RFC 6750 §3.1: "The request is missing a required parameter, includes an unsupported
    parameter or parameter value, repeats the same parameter, uses more than one method for
    including an access token, or is otherwise malformed." (400)"""

    error = "invalid_request"
    status_code = 400
    default_description = "The request is malformed."


class InvalidToken(AuthError):
    """RFC 6750 §3.1: "The access token provided is expired, revoked, malformed, or invalid
    for other reasons." (401)"""

    error = "invalid_token"
    status_code = 401
    default_description = "The access token or API key is invalid, expired or revoked."


class InsufficientScope(AuthError):
    """RFC 6750 §3.1: "The request requires higher privileges than provided by the access
    token. The resource server SHOULD respond with the HTTP 403 (Forbidden) status code and
    MAY include the "scope" attribute with the scope necessary to access the protected
    resource." """

    error = "insufficient_scope"
    status_code = 403
    default_description = "The credential lacks a scope this request needs."

    def __init__(self, needed: tuple[str, ...], description: str | None = None, *, detail: str | None = None) -> None:
        self.needed = needed
        super().__init__(description or f"This request needs the scope: {' '.join(needed)}.", detail=detail)


class AuthServerUnavailable(AuthError):
    """The authorization server cannot be asked (down, unreachable, or refusing this
    resource server's credentials). The request is refused with 503, never let through."""

    error = "temporarily_unavailable"
    status_code = 503
    default_description = "The authorization server cannot be reached; try again shortly."


@dataclass(frozen=True, slots=True)
class ErrorResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def render(exc: AuthError, *, realm: str, style: ErrorStyle) -> ErrorResponse:
    """The HTTP response for an error, in the configured style."""
    headers = [("content-type", "application/json"), ("cache-control", "no-store")]
    if isinstance(exc, AuthServerUnavailable):
        # Not a credential problem: no challenge, and no ERROR_WRONG_KEY (which tells an
        # OnlineSIM client to throw its key or token away).
        headers.append(("retry-after", str(RETRY_AFTER)))
        return ErrorResponse(
            exc.status_code, headers, _json({"error": exc.error, "error_description": exc.description})
        )
    headers.append(("www-authenticate", challenge(exc, realm)))
    if style == "onlinesim":
        return ErrorResponse(exc.status_code, headers, _json({"response": "ERROR_WRONG_KEY"}))
    body = {"error_description": exc.description}
    if exc.error is not None:
        body = {"error": exc.error, **body}
    return ErrorResponse(exc.status_code, headers, _json(body))


def challenge(exc: AuthError, realm: str) -> str:
    """The ``WWW-Authenticate`` value (RFC 6750 §3)."""
    parts = [f'Bearer realm="{_quotable(realm)}"']
    if exc.error is not None:
        parts.append(f'error="{exc.error}"')
        parts.append(f'error_description="{exc.description}"')
    if isinstance(exc, InsufficientScope):
        parts.append(f'scope="{_quotable(" ".join(exc.needed))}"')
    return ", ".join(parts)


def _json(body: dict[str, str]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode("utf-8")
