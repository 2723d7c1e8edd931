"""What every page shares: the templates, the security headers, forms and redirects,
the session, and the error page (keyturn.web.pages holds the pages themselves)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keyturn.core.context import Context
from keyturn.runtime import Blocking

from .. import http
from ..metrics import Metrics
from .csp import page_csp
from .sessions import Sessions

log = logging.getLogger("keyturn.web")

#: Pages: no framing, no referrer, and the policy of csp.page_csp.
PAGE_HEADERS = {
    "x-frame-options": "DENY",
    "content-security-policy": page_csp(),
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
}
PAGE_HEADER_LIST = [(name.encode("ascii"), value.encode("ascii")) for name, value in PAGE_HEADERS.items()]
_MAX_FORM = 16_384


class SecurityHeaders:
    """Adds PAGE_HEADERS to every page response (pure ASGI)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.headers = PAGE_HEADER_LIST

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message["headers"]}
                message["headers"] = [
                    *message["headers"],
                    *((k, v) for k, v in self.headers if k not in present),
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def redirect(url: str, status: int = 303) -> Response:
    """A redirect from a page (the Location built by ``http.location``)."""
    return Response(status_code=status, headers={"location": http.location(url).decode("ascii")})


def safe_next(target: str | None, default: str = "/account") -> str:
    """Only a local path may follow a login (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


async def read_form(request: Request) -> dict[str, list[str]]:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM:
            return {}
    return parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)


def first(form: dict[str, list[str]], name: str) -> str:
    values = form.get(name)
    return values[0] if values else ""


class Pages:
    def __init__(
        self,
        ctx: Context,
        blocking: Blocking,
        metrics: Metrics,
        client_changed: Callable[[str], None] | None = None,
    ) -> None:
        self.ctx = ctx
        self.blocking = blocking
        self.metrics = metrics
        self.client_changed = client_changed or ctx.clients.invalidate
        self.sessions = Sessions(ctx)
        self.templates = Environment(
            loader=PackageLoader("keyturn.web.pages", "templates"), autoescape=select_autoescape(), auto_reload=False
        )
        self.templates.filters["datetime"] = lambda ts: time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))

    def render(self, name: str, status: int = 200, **values: Any) -> HTMLResponse:
        values.setdefault("issuer", self.ctx.settings.issuer)
        return HTMLResponse(self.templates.get_template(name).render(**values), status_code=status)

    def error_page(self, title: str, message: str, status: int = 400) -> HTMLResponse:
        return self.render("error.html", status, title=title, message=message)

    def csrf(self, request: Request) -> str:
        """The CSRF token of a signed-in page (bound to the session cookie)."""
        return self.sessions.csrf_token(self.sessions.csrf_binding(request)[0])

    async def unavailable(self, request: Request, exc: Exception) -> Response:
        log.error("database unavailable on %s: %s", request.url.path, exc)
        response = self.error_page(
            "Temporarily unavailable", "The service cannot reach its database. Try again in a moment.", status=503
        )
        response.headers["retry-after"] = "5"
        return response

    # ---- static ----

    async def stylesheet(self, request: Request) -> Response:
        return Response(_STYLESHEET, media_type="text/css", headers={"cache-control": "public, max-age=3600"})


def _read_stylesheet() -> bytes:
    from importlib.resources import files

    return files("keyturn.web.pages").joinpath("static/keyturn.css").read_bytes()


_STYLESHEET = _read_stylesheet()
