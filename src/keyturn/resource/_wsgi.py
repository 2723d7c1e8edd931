"""The WSGI side (Flask, Django, Bottle, ...): a middleware and a decorator, on blocking
httpx.Client calls."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from wsgiref.types import WSGIApplication

from ._errors import AuthError, ErrorStyle
from ._gate import DEFAULT_QUERY_PARAMETERS, Guard
from ._principal import PRINCIPAL_KEY, Principal
from ._verifier import Verifier

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 503: "Service Unavailable"}


class KeyturnWSGIMiddleware(Guard[WSGIApplication]):
    """Authenticates every request to a WSGI ``app`` except on public paths; the principal
    is put in ``environ["keyturn.principal"]`` (None on a public path).

    Flask: ``app.wsgi_app = KeyturnWSGIMiddleware(app.wsgi_app, verifier, ...)`` and, in a
    view, ``request.environ["keyturn.principal"]``.
    """

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        principal: Principal | None = None
        if not self.gate.is_public(environ.get("PATH_INFO", "")):
            try:
                principal = self._authenticate(environ)
            except AuthError as exc:
                return self._refuse(start_response, exc)
        environ[PRINCIPAL_KEY] = principal
        started = False

        def tracking_start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            nonlocal started
            started = True
            return start_response(status, headers, exc_info)

        try:
            return self.app(environ, tracking_start_response)
        except AuthError as exc:
            # Raised by the application (a scope check in a view) before it answered.
            if started:
                raise
            return self._refuse(start_response, exc)

    def _authenticate(self, environ: WSGIEnvironment) -> Principal:
        header = environ.get("HTTP_AUTHORIZATION")
        credential, shape = self.gate.credential([] if header is None else [header], environ.get("QUERY_STRING", ""))
        return self.gate.check_scopes(self.verifier.verify(credential, shape))

    def _refuse(self, start_response: StartResponse, exc: AuthError) -> list[bytes]:
        body, status, headers = self.error_response(exc)
        start_response(f"{status} {_REASONS.get(status, 'Error')}", headers)
        return [body]

    def error_response(self, exc: AuthError) -> tuple[bytes, int, list[tuple[str, str]]]:
        """The refusal for ``exc`` as ``(body, status, headers)``: what a Flask error handler
        returns. Flask turns exceptions raised in views into responses itself, so a view's
        own scope check reaches the client through
        ``app.register_error_handler(AuthError, middleware.error_response)``."""
        response = self.gate.refusal(exc)
        return response.body, response.status, [*response.headers, ("content-length", str(len(response.body)))]


def protect_wsgi(
    verifier: Verifier,
    *scopes: str,
    public_paths: Iterable[str] = (),
    query_parameters: Iterable[str] = DEFAULT_QUERY_PARAMETERS,
    error_style: ErrorStyle = "rfc6750",
    realm: str = "api",
) -> Callable[[WSGIApplication], KeyturnWSGIMiddleware]:
    """A decorator: ``@protect_wsgi(verifier, "balance")`` on a WSGI callable lets through
    only requests whose credential carries every one of ``scopes``."""

    def decorate(app: WSGIApplication) -> KeyturnWSGIMiddleware:
        middleware = KeyturnWSGIMiddleware(
            app,
            verifier,
            scopes=scopes,
            public_paths=public_paths,
            query_parameters=query_parameters,
            error_style=error_style,
            realm=realm,
        )
        # Name and docstring only: copying the wrapped object's __dict__ could shadow ours.
        functools.update_wrapper(middleware, app, updated=())
        return middleware

    return decorate
