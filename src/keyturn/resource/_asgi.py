"""The ASGI side: a pure ASGI middleware, and a dependency for Starlette and FastAPI."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from ._errors import AuthError, AuthServerUnavailable, MissingCredential
from ._gate import Guard, require
from ._principal import PRINCIPAL_KEY, Principal

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: RFC 6455 §7.4.1 close codes for a refused WebSocket: policy violation / try again later.
_WS_POLICY_VIOLATION = 1008
_WS_TRY_AGAIN_LATER = 1013


class KeyturnMiddleware(Guard[ASGIApp]):
    """Authenticates every HTTP and WebSocket request to ``app`` except on public paths.

    The principal is put in ``scope["keyturn.principal"]`` and ``scope["state"]["principal"]``
    (Starlette: ``request.state.principal``); it is None on a public path. ``scopes`` are
    needed on every protected path; :func:`require_scopes` adds per-endpoint needs, and
    the :class:`AuthError` it raises is rendered here (so install this middleware inside
    the framework's error handling: Starlette's ``middleware=[Middleware(...)]``).
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, self._closing_on_shutdown(receive), send)
            return
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        principal: Principal | None = None
        if not self.gate.is_public(scope["path"]):
            try:
                principal = await self._authenticate(scope)
            except AuthError as exc:
                await self._refuse(scope, send, exc)
                return
        scope[PRINCIPAL_KEY] = principal
        scope.setdefault("state", {})["principal"] = principal

        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except AuthError as exc:
            # Raised by require_scopes inside the app, before it answered.
            if started:
                raise
            await self._refuse(scope, send, exc)

    async def _authenticate(self, scope: Scope) -> Principal:
        authorization = [v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"]
        credential, shape = self.gate.credential(authorization, scope.get("query_string", b"").decode("latin-1"))
        principal = await self.verifier.averify(credential, shape)
        return self.gate.check_scopes(principal)

    async def _refuse(self, scope: Scope, send: Send, exc: AuthError) -> None:
        response = self.gate.refusal(exc)
        if scope["type"] == "websocket":
            code = _WS_TRY_AGAIN_LATER if isinstance(exc, AuthServerUnavailable) else _WS_POLICY_VIOLATION
            await send({"type": "websocket.close", "code": code})
            return
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
        headers.append((b"content-length", str(len(response.body)).encode("ascii")))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})

    def _closing_on_shutdown(self, receive: Receive) -> Receive:
        async def wrapped() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                await self.verifier.aclose()
            return message

        return wrapped


def principal_of(scope: Scope) -> Principal | None:
    """The principal KeyturnMiddleware put in an ASGI scope (None on a public path)."""
    if PRINCIPAL_KEY not in scope:
        raise RuntimeError("no keyturn principal in the request: is KeyturnMiddleware installed?")
    principal: Principal | None = scope[PRINCIPAL_KEY]
    return principal


def require_scopes(*scopes: str) -> Callable[[HTTPConnection], Awaitable[Principal]]:
    """A dependency that returns the caller's principal if it carries every one of
    ``scopes``, and refuses the request (403 insufficient_scope) otherwise.

    FastAPI: ``principal: Principal = Depends(require_scopes("sms"))``.
    Starlette: ``principal = await require_scopes("sms")(request)``.
    Needs :class:`KeyturnMiddleware`, which renders the refusal.
    """
    # Imported here: the rest of keyturn.resource does not need Starlette.
    from starlette.requests import HTTPConnection

    needed = tuple(scopes)

    async def dependency(request: HTTPConnection) -> Principal:
        principal = principal_of(request.scope)
        if principal is None:
            # A public path: no credential was asked for, so there is none to check.
            raise MissingCredential
        return require(principal, needed)

    # FastAPI reads the parameter's type to inject the request; the module's annotations
    # are strings (PEP 563), so the resolved ones are set here.
    dependency.__annotations__ = {"request": HTTPConnection, "return": Principal}
    return dependency
