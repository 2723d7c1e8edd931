"""The one place that turns errors into JSON responses.

Every protocol error is an OAuthError carrying its RFC error code, HTTP status and
description, and building its own headers (its challenge, Retry-After:
``OAuthError.headers``). This module adds the body, logs the internal detail, and knows
the two shapes the server answers in: RFC 6749 §5.2 at the authorization server's own
endpoints, and RFC 6750 §3 at a protected resource (/me), where every error carries the
Bearer challenge and the OnlineSIM style replaces the body. The pages render their
errors as pages (keyturn.web.pages.base); an authorization error that goes back to the
client is a redirect (keyturn.core.authorize.error_redirect).
"""

from __future__ import annotations

import logging

from keyturn.core.errors import OAuthError, RateLimited, ServerError, TemporarilyUnavailable, bearer_challenge

from .http import NO_STORE, Send, error_headers, send_json

log = logging.getLogger("keyturn.web")

#: What a page-app 404 answers: nothing there, in JSON like the API's.
NOT_FOUND = {"error": "not_found", "error_description": "No such endpoint."}


async def send_error(send: Send, exc: OAuthError, *, resource_style: str | None = None) -> None:
    """The JSON answer to ``exc``. ``resource_style``: answering as a protected resource
    (RFC 6750 §3), in that ``error_style`` ("rfc6750" or "onlinesim")."""
    if exc.detail:
        log.info("%s: %s", exc.error, exc.detail)
    headers = error_headers(exc)
    body: dict[str, str] = exc.to_dict()
    if resource_style is not None and not isinstance(exc, RateLimited):
        # RFC 6750 §3: a protected resource answers every credential error with the Bearer
        # challenge ("invalid_request", "invalid_token", "insufficient_scope").
        if exc.challenge() is None:
            headers.append((b"www-authenticate", bearer_challenge(exc).encode("ascii")))
        if resource_style == "onlinesim":
            body = {"response": "ERROR_WRONG_KEY"}
    await send_json(send, exc.status_code, body, [*headers, *NO_STORE])


async def send_unavailable(send: Send, path: str, exc: Exception) -> None:
    """The database cannot be reached: 503, try again shortly."""
    log.error("database unavailable on %s: %s", path, exc)
    await send_error(send, TemporarilyUnavailable("The database is unavailable; try again shortly."))


async def send_unexpected(send: Send, method: str, path: str) -> None:
    """Anything unexpected is server_error with a generic text; the detail is logged."""
    log.exception("unexpected error on %s %s", method, path)
    await send_error(send, ServerError())
