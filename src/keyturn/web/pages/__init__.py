"""The server-rendered pages (Starlette, Jinja2): sign-in, the authorization endpoint's
consent, sign-up and the developer portal. Every form carries a CSRF token; every page
gets the security headers of ``base.PAGE_HEADERS``."""

from __future__ import annotations

from collections.abc import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from keyturn.core.context import Context
from keyturn.core.ports import StoreUnavailable
from keyturn.runtime import Blocking

from ..errors import NOT_FOUND
from ..http import SECURITY_HEADERS
from ..metrics import Metrics
from .authorize import Authorization
from .base import Pages, SecurityHeaders
from .login import Login
from .portal import Portal
from .signup import Signup


def create_pages_app(
    ctx: Context, blocking: Blocking, metrics: Metrics, client_changed: Callable[[str], None] | None = None
) -> tuple[Authorization, ASGIApp]:
    """The authorization endpoint's pages (whose silent approval the app calls on bare
    ASGI), and the ASGI app that serves every page."""
    pages = Pages(ctx, blocking, metrics, client_changed)
    authorization = Authorization(pages)
    routes = [
        *Login(pages).routes(),
        *authorization.routes(),
        *Signup(pages).routes(),
        *Portal(pages).routes(),
        Route("/static/keyturn.css", pages.stylesheet, methods=["GET"]),
    ]
    handlers = {404: _not_found, StoreUnavailable: pages.unavailable}
    app = Starlette(routes=routes, exception_handlers=handlers)
    # Starlette would answer "/login/" with a redirect to the URL the Host header names;
    # every Location is built by web.http.location from the server's own URLs.
    app.router.redirect_slashes = False
    return authorization, SecurityHeaders(app)


_API_CSP = dict(SECURITY_HEADERS)[b"content-security-policy"].decode("ascii")


async def _not_found(request: Request, exc: Exception) -> Response:
    """No such page: answered like the API's unknown paths, in JSON."""
    return JSONResponse(NOT_FOUND, status_code=404, headers={"content-security-policy": _API_CSP})
