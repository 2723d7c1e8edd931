"""What goes wrong talking to an authorization server, as exceptions.

One base class, :class:`OAuthClientError`, carries the RFC ``error`` code, the server's
``error_description`` and the HTTP status; the subclasses say which side is at fault
when it is not the server's own verdict.
"""

from __future__ import annotations


class OAuthClientError(Exception):
    """An OAuth error: the server's answer (RFC 6749 §5.2, §4.1.2.1) or a failed check.

    ``error`` is the RFC error code (``invalid_client``, ``access_denied``, ...),
    ``description`` the human-readable ``error_description`` (if any), and
    ``status_code`` the HTTP status of the answer (None for an error that came back
    through a redirect, or that the client raised itself).
    """

    def __init__(self, error: str, description: str | None = None, status_code: int | None = None) -> None:
        self.error = error
        self.description = description
        self.status_code = status_code
        super().__init__(f"{error}: {description}" if description else error)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.error!r}, {self.description!r}, {self.status_code!r})"


class UnexpectedResponseError(OAuthClientError):
    """The server answered something that is not what the RFC describes: not JSON, not a
    JSON object, a member missing or of the wrong type, or a token type this client
    cannot use (RFC 6749 §7.1: "The client MUST NOT use an access token if it does not
    understand the token type")."""

    def __init__(self, description: str, status_code: int | None = None) -> None:
        super().__init__("unexpected_response", description, status_code)


class StateMismatchError(OAuthClientError):
    """RFC 6749 §10.12: the ``state`` of an authorization response is not the one this
    client sent, so the response may be forged (cross-site request forgery)."""

    def __init__(self, description: str = "The state of the authorization response does not match.") -> None:
        super().__init__("state_mismatch", description)


class IssuerMismatchError(OAuthClientError):
    """The issuer is not the one expected: an authorization response's ``iss`` (RFC 9207
    §2.4, mix-up attacks) or the ``issuer`` of discovered metadata (RFC 8414 §3.3)."""

    def __init__(self, description: str) -> None:
        super().__init__("issuer_mismatch", description)
