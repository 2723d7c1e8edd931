"""The error model: one exception class per RFC error code.

Every protocol error is an :class:`OAuthError` carrying its RFC ``error`` code, its HTTP
status, a public ``description`` (sent as ``error_description``) and an internal
``detail`` that is only ever logged. ``web`` is the one place that turns these into JSON
bodies, redirects or error pages.
"""

from __future__ import annotations

import re
from typing import ClassVar

# RFC 6749 §5.2: error_description = *( %x20-21 / %x23-5B / %x5D-7E )
_NOT_ALLOWED = re.compile(r"[^\x20-\x21\x23-\x5b\x5d-\x7e]")


def _printable(text: str) -> str:
    """A description in the character set RFC 6749 allows, whatever it quotes."""
    return _NOT_ALLOWED.sub("?", text.replace('"', "'").replace("\\", "/"))


#: The realm of every challenge Keyturn sends (RFC 7235 §2.2).
REALM = "keyturn"


class OAuthError(Exception):
    """Base of all protocol errors."""

    error: ClassVar[str] = "server_error"
    status_code: ClassVar[int] = 500
    default_description: ClassVar[str] = "The request could not be processed."

    def __init__(self, description: str | None = None, *, detail: str | None = None) -> None:
        self.description = _printable(description or self.default_description)
        #: For the logs only: never sent to the client.
        self.detail = detail
        super().__init__(self.description)

    def to_dict(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}

    def challenge(self) -> str | None:
        """The ``WWW-Authenticate`` challenge this error is answered with, if any. RFC 7235
        §3.1: a 401 response "MUST send a WWW-Authenticate header field containing at
        least one challenge applicable to the target resource"."""
        return None

    def headers(self) -> list[tuple[str, str]]:
        """The response headers this error calls for (besides the body's): the one place
        that decides them, for every endpoint and renderer."""
        challenge = self.challenge()
        return [] if challenge is None else [("WWW-Authenticate", challenge)]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description!r}, detail={self.detail!r})"


# ---- RFC 6749 §4.1.2.1, §4.2.2.1 and §5.2 ----


class InvalidRequest(OAuthError):
    """RFC 6749 §5.2: "The request is missing a required parameter, includes an unsupported
    parameter value (other than grant type), repeats a parameter, includes multiple
    credentials, utilizes more than one mechanism for authenticating the client, or is
    otherwise malformed." """

    error = "invalid_request"
    status_code = 400
    default_description = "The request is missing a parameter or is malformed."


class InvalidClient(OAuthError):
    """RFC 6749 §5.2: "Client authentication failed (e.g., unknown client, no client
    authentication included, or unsupported authentication method)." The server MAY answer
    401; it MUST when the client tried the Authorization header."""

    error = "invalid_client"
    status_code = 401
    default_description = "Client authentication failed."

    def __init__(self, description: str | None = None, *, detail: str | None = None, used_basic: bool = False) -> None:
        super().__init__(description, detail=detail)
        #: Whether the client tried the Authorization header (for the logs; the challenge
        #: is Basic either way).
        self.used_basic = used_basic

    def challenge(self) -> str:
        # RFC 6749 §5.2: with the Authorization header the server "MUST respond with an
        # HTTP 401 (Unauthorized) status code and include the "WWW-Authenticate" response
        # header field matching the authentication scheme used by the client"; a client
        # that sent its secret in the body gets the same 401, and RFC 7235 §3.1 a
        # challenge with it: Basic, the scheme Keyturn prefers (RFC 7617 §2).
        return f'Basic realm="{REALM}"'


class InvalidGrant(OAuthError):
    """RFC 6749 §5.2: "The provided authorization grant (e.g., authorization code, resource
    owner credentials) or refresh token is invalid, expired, revoked, does not match the
    redirection URI used in the authorization request, or was issued to another client." """

    error = "invalid_grant"
    status_code = 400
    default_description = "The authorization grant is invalid, expired or revoked."


class UnauthorizedClient(OAuthError):
    """RFC 6749 §5.2: "The authenticated client is not authorized to use this
    authorization grant type." """

    error = "unauthorized_client"
    status_code = 400
    default_description = "The client is not allowed to use this grant type."


class UnsupportedGrantType(OAuthError):
    """RFC 6749 §5.2: "The authorization grant type is not supported by the
    authorization server." """

    error = "unsupported_grant_type"
    status_code = 400
    default_description = "The grant type is not supported."


class InvalidScope(OAuthError):
    """RFC 6749 §5.2: "The requested scope is invalid, unknown, malformed, or exceeds the
    scope granted by the resource owner." """

    error = "invalid_scope"
    status_code = 400
    default_description = "The requested scope is invalid or not allowed for this client."


class AccessDenied(OAuthError):
    """RFC 6749 §4.1.2.1: "The resource owner or authorization server denied the
    request." """

    error = "access_denied"
    status_code = 403
    default_description = "The resource owner denied the request."


class UnsupportedResponseType(OAuthError):
    """RFC 6749 §4.1.2.1: "The authorization server does not support obtaining an
    authorization code using this method." """

    error = "unsupported_response_type"
    status_code = 400
    default_description = "The response type is not supported."


class ServerError(OAuthError):
    """RFC 6749 §4.1.2.1: "The authorization server encountered an unexpected condition
    that prevented it from fulfilling the request." Anything unexpected becomes this,
    with a generic text."""

    error = "server_error"
    status_code = 500
    default_description = "The server encountered an unexpected condition."


class TemporarilyUnavailable(OAuthError):
    """RFC 6749 §4.1.2.1: "The authorization server is currently unable to handle the
    request due to a temporary overloading or maintenance of the server." (the database
    cannot be reached, say), with the seconds to wait before trying again."""

    error = "temporarily_unavailable"
    status_code = 503
    default_description = "The server is temporarily unavailable; try again shortly."

    def __init__(self, description: str | None = None, *, retry_after: int = 5, detail: str | None = None) -> None:
        super().__init__(description, detail=detail)
        self.retry_after = retry_after

    def headers(self) -> list[tuple[str, str]]:
        # RFC 9110 §10.2.3: Retry-After "indicates how long the user agent ought to wait
        # before making a follow-up request" after a 503 (and a 429, RFC 6585 §4).
        return [*super().headers(), ("Retry-After", str(self.retry_after))]


class RateLimited(TemporarilyUnavailable):
    """Too many requests (RFC 6585 §4). RFC 6749 has no code for it; the nearest is
    "temporarily_unavailable", sent with status 429 and a Retry-After header."""

    status_code = 429
    default_description = "Too many requests; slow down."

    def __init__(self, retry_after: int, description: str | None = None) -> None:
        super().__init__(description or f"Too many requests; retry in {retry_after} s.", retry_after=retry_after)


# ---- RFC 6750 §3.1 (protected resources) ----


class InvalidToken(OAuthError):
    """RFC 6750 §3.1: "The access token provided is expired, revoked, malformed, or
    invalid for other reasons." (401)"""

    error = "invalid_token"
    status_code = 401
    default_description = "The access token is invalid, expired or revoked."

    def challenge(self) -> str:
        return bearer_challenge(self)


class InsufficientScope(OAuthError):
    """RFC 6750 §3.1: "The request requires higher privileges than provided by the access
    token." (403)"""

    error = "insufficient_scope"
    status_code = 403
    default_description = "The access token does not carry the scope this request needs."

    def __init__(self, description: str | None = None, *, detail: str | None = None, scope: str = "") -> None:
        super().__init__(description, detail=detail)
        #: RFC 6750 §3: the scope needed, for the WWW-Authenticate ``scope`` attribute.
        self.scope = scope


def bearer_challenge(error: OAuthError | None) -> str:
    """RFC 6750 §3: the ``Bearer`` challenge of a protected resource; without an error
    code when the request carried no credential (§3.1)."""
    if error is None:
        return f'Bearer realm="{REALM}"'
    # The description is in RFC 6749's character set already: no quote or backslash to escape.
    return f'Bearer realm="{REALM}", error="{error.error}", error_description="{error.description}"'


# ---- RFC 7009 §2.2.1 (revocation) ----


class UnsupportedTokenType(OAuthError):
    """RFC 7009 §2.2.1: "The authorization server does not support the revocation of the
    presented token type." """

    error = "unsupported_token_type"
    status_code = 400
    default_description = "This token type cannot be revoked."


# RFC 7662 defines no error codes of its own: an introspection request is answered with
# {"active": false} for any token it cannot vouch for, and with the RFC 6749 §5.2 errors
# above (invalid_client, invalid_request) for a bad caller.

ERRORS: dict[str, type[OAuthError]] = {
    cls.error: cls
    for cls in (
        InvalidRequest,
        InvalidClient,
        InvalidGrant,
        UnauthorizedClient,
        UnsupportedGrantType,
        InvalidScope,
        AccessDenied,
        UnsupportedResponseType,
        ServerError,
        TemporarilyUnavailable,
        InvalidToken,
        InsufficientScope,
        UnsupportedTokenType,
    )
}
