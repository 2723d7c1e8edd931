"""Server-rendered pages: login, logout, and the authorization endpoint with its consent
page (RFC 6749 §3.1, §4.1.1, §4.2.1). They work without JavaScript."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import anyio
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request, cookie_parser
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keyturn.core import authorize
from keyturn.core.accounts import AccountError, normalise_email
from keyturn.core.context import Context
from keyturn.core.login_throttle import DEVICE_COOKIE, Attempt, LoginThrottle
from keyturn.core.passwords import dummy_hash, verify_password
from keyturn.core.ports import StoreUnavailable

from . import http
from .csp import form_action_to, page_csp
from .observability import Metrics
from .protocol import Blocking
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
_PAGE_HEADERS = [(name.encode("ascii"), value.encode("ascii")) for name, value in PAGE_HEADERS.items()]
_MAX_FORM = 16_384


class SecurityHeaders:
    """Adds PAGE_HEADERS to every page response (pure ASGI)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.headers = _PAGE_HEADERS

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
        self.throttle = LoginThrottle(ctx)
        self.templates = Environment(
            loader=PackageLoader("keyturn.web", "templates"), autoescape=select_autoescape(), auto_reload=False
        )
        self.templates.filters["datetime"] = lambda ts: time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))

    def render(self, name: str, status: int = 200, **values: Any) -> HTMLResponse:
        values.setdefault("issuer", self.ctx.settings.issuer)
        return HTMLResponse(self.templates.get_template(name).render(**values), status_code=status)

    def error_page(self, title: str, message: str, status: int = 400) -> HTMLResponse:
        return self.render("error.html", status, title=title, message=message)

    # ---- login and logout ----

    async def login_form(self, request: Request) -> Response:
        account = await self.blocking(self.sessions.account, request)
        target = safe_next(request.query_params.get("next"))
        if account is not None:
            return redirect(target)
        return await self._login_page(request, target)

    async def _login_page(
        self, request: Request, target: str, *, error: str = "", email: str = "", status: int = 200
    ) -> Response:
        binding, new = self.sessions.csrf_binding(request)
        response = self.render(
            "login.html", status, next=target, error=error, email=email, csrf=self.sessions.csrf_token(binding)
        )
        if new:
            self.sessions.set_pre_session(response, binding)
        form_action = await self.blocking(self._login_form_action, target)
        response.headers["content-security-policy"] = page_csp(form_action)
        return response

    def _login_form_action(self, target: str) -> str:
        """The login form's form-action. A sign-in that continues an authorization request
        is answered 303 to /oauth/authorize, which, with consent remembered (or on an error
        for the client), answers 302 to the client's redirect URI; Chromium checks every
        redirect of a form's navigation against form-action, so that request's validated
        redirect URI's origin is allowed too."""
        parts = urlsplit(target)
        if parts.path != "/oauth/authorize":
            return "'self'"
        try:
            redirect_uri = authorize.validate(self.ctx, parse_qs(parts.query, keep_blank_values=True)).redirect_uri
        except authorize.InvalidClientRequest:
            return "'self'"  # answered with an error page, here
        except authorize.AuthorizeError as exc:
            redirect_uri = exc.redirect_uri
        return form_action_to(redirect_uri)

    def _audit(self, kind: str, account_id: int | None, detail: dict[str, Any]) -> None:
        self.ctx.store.record(kind, self.ctx.clock.now(), account_id=account_id, detail=detail)

    async def login(self, request: Request) -> Response:
        form = await read_form(request)
        target = safe_next(first(form, "next"))
        email = first(form, "email").strip()
        if not self.sessions.csrf_valid(request, first(form, "csrf")):
            return self.error_page("Please try again", "This form expired. Go back, reload the page and sign in again.")
        address = request.client.host if request.client else "unknown"
        # RFC 6749 §10.10: guessing must be made hard, without letting anyone lock the
        # owner out (see keyturn.core.login_throttle). The attempt is counted before the
        # password hash runs, and given back if it succeeds.
        attempt = await self.blocking(self.throttle.begin, email, address, request.cookies.get(DEVICE_COOKIE))
        if not isinstance(attempt, Attempt):
            self.metrics.inc("keyturn_rate_limited_total", (("limit", "login"),))
            return self._too_many_attempts(attempt)

        account = None
        with contextlib.suppress(AccountError):  # not an email address: no such account
            account = await self.blocking(self.ctx.store.find_account_by_email, normalise_email(email))
        stored_hash = account.password_hash if account is not None and not account.disabled else None
        password = first(form, "password")
        ok = await anyio.to_thread.run_sync(verify_password, stored_hash or dummy_hash(), password)
        if not ok or stored_hash is None or account is None:
            self.metrics.inc("keyturn_login_failures_total")
            await self.blocking(self._audit, "login.failed", None, {"address": address})
            # One generic message: it does not tell whether the email exists.
            # 400, not 401: a 401 would need a WWW-Authenticate challenge (RFC 9110 §15.5.2),
            # and this is a form that was not accepted.
            return await self._login_page(request, target, error="Wrong email or password.", email=email, status=400)

        await self.blocking(self.throttle.succeeded, attempt)
        signed_in = redirect(target)
        await self.blocking(self.sessions.start, request, signed_in, account)
        device = self.throttle.device_cookie(email)
        if device is not None:
            # Only the sign-in form needs it: sent to /login alone, never to scripts.
            signed_in.set_cookie(
                DEVICE_COOKIE,
                device,
                max_age=self.ctx.settings.login_device_cookie_ttl,
                path="/login",
                secure=self.sessions.secure,
                httponly=True,
                samesite="strict",
            )
        await self.blocking(self._audit, "login.succeeded", account.id, {"address": address})
        return signed_in

    def _too_many_attempts(self, wait: int) -> Response:
        when = f"{wait} second(s)" if wait < 120 else f"{(wait + 59) // 60} minute(s)"
        response = self.error_page("Too many attempts", f"Too many failed sign-ins. Try again in {when}.", status=429)
        response.headers["retry-after"] = str(wait)
        return response

    async def logout(self, request: Request) -> Response:
        if request.method == "GET":
            account = await self.blocking(self.sessions.account, request)
            if account is None:
                return redirect("/login")
            return self.render("logout.html", email=account.email, csrf=self._csrf(request))
        form = await read_form(request)
        if not self.sessions.csrf_valid(request, first(form, "csrf")):
            return self.error_page("Please try again", "This form expired. Reload the page and sign out again.")
        response = redirect("/login")
        await self.blocking(self.sessions.end, request, response)
        return response

    def _csrf(self, request: Request) -> str:
        """The CSRF token of a signed-in page (bound to the session cookie)."""
        return self.sessions.csrf_token(self.sessions.csrf_binding(request)[0])

    # ---- the authorization endpoint ----

    async def authorize_silently(self, request: http.Request, send: http.Send) -> bool:
        """GET /oauth/authorize when there is nothing to show: a valid request from a
        signed-in user who already consented (or to a first-party client). Answers the
        redirect on bare ASGI, without the page machinery, and returns True; returns
        False, having changed nothing, for everything else (login, consent, errors),
        which the page handlers below answer."""
        cookie = _cookie(request.header(b"cookie"), self.sessions.session_cookie)
        query = request.query_string
        if not cookie or not query.isascii():
            return False
        params = parse_qs(query.decode("ascii"), keep_blank_values=True)
        location = await self.blocking(self._approve_silently, params, cookie)
        if location is None:
            return False
        headers = [(b"location", http.location(location)), (b"content-length", b"0"), *_PAGE_HEADERS]
        await send({"type": "http.response.start", "status": 302, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return True

    def _approve_silently(self, params: dict[str, list[str]], cookie: str) -> str | None:
        try:
            auth = authorize.validate(self.ctx, params)
        except (authorize.InvalidClientRequest, authorize.AuthorizeError):
            return None
        account, consent = self.sessions.account_and_consent(cookie, auth.client.client_id)
        if account is None:
            return None
        return authorize.approve_if_consented(self.ctx, auth, account.id, consent)

    async def authorize_get(self, request: Request) -> Response:
        params = parse_qs(request.url.query, keep_blank_values=True)
        return await self._authorize(request, params, consent_form=None)

    async def authorize_post(self, request: Request) -> Response:
        form = await read_form(request)
        return await self._authorize(request, form, consent_form=form)

    async def _authorize(
        self, request: Request, params: dict[str, list[str]], consent_form: dict[str, list[str]] | None
    ) -> Response:
        try:
            auth = await self.blocking(authorize.validate, self.ctx, params)
        except authorize.InvalidClientRequest as exc:
            return self.error_page("This link cannot be used", exc.message)
        except authorize.AuthorizeError as exc:
            return self._redirect(authorize.error_redirect(self.ctx, exc), consent_form is not None)

        account = await self.blocking(self.sessions.account, request)
        if account is None:
            query = urlencode(auth.as_params())
            return redirect("/login?next=" + quote(f"/oauth/authorize?{query}", safe=""))

        if consent_form is None:
            location = await self.blocking(authorize.approve_if_consented, self.ctx, auth, account.id)
            if location is not None:
                return self._redirect(location, False)
            return self._consent_page(request, auth, account.email)

        # A POST from the consent page: only with a valid CSRF token does anything change.
        if not self.sessions.csrf_valid(request, first(consent_form, "csrf")):
            return self.error_page("Please try again", "This form expired. Go back to the application and start again.")
        decision = first(consent_form, "decision")
        if decision == "deny":
            return self._redirect(authorize.deny(self.ctx, auth), True)
        if decision != "authorize":
            return self.error_page("Please try again", "Choose Authorize or Deny.")
        scopes = authorize.granted_scopes(auth, consent_form.get("granted_scope", []))
        location = await self.blocking(authorize.approve, self.ctx, auth, account.id, scopes)
        return self._redirect(location, True)

    def _consent_page(self, request: Request, auth: authorize.AuthorizationRequest, email: str) -> Response:
        catalogue = self.ctx.settings.scopes
        required = set(auth.client.required_scopes)
        scopes = [{"name": s, "description": catalogue.get(s, s), "required": s in required} for s in auth.scopes]
        response = self.render(
            "consent.html",
            client=auth.client,
            scopes=scopes,
            email=email,
            params=auth.as_params(),
            csrf=self._csrf(request),
            implicit=auth.response_type == "token",
        )
        # The form posts to /oauth/authorize, which answers with a 303 to the client's
        # redirect URI; Chromium applies form-action to that redirect too (CSP3 §6.4.1
        # "form-action"), so this page alone also allows the redirect URI's origin.
        response.headers["content-security-policy"] = page_csp(form_action_to(auth.redirect_uri))
        return response

    @staticmethod
    def _redirect(location: str, after_post: bool) -> Response:
        # 303 turns the consent POST into a GET at the client; a GET is answered with 302.
        return redirect(location, 303 if after_post else 302)

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

    return files("keyturn.web").joinpath("static/keyturn.css").read_bytes()


_STYLESHEET = _read_stylesheet()


def _cookie(header: bytes | None, name: str) -> str | None:
    if header is None:
        return None
    return cookie_parser(header.decode("latin-1")).get(name)


def create_pages_app(
    ctx: Context, blocking: Blocking, metrics: Metrics, client_changed: Callable[[str], None] | None = None
) -> tuple[Pages, ASGIApp]:
    """The pages, and the ASGI app that serves them."""
    from .portal import Portal

    pages = Pages(ctx, blocking, metrics, client_changed)
    routes = [
        Route("/login", pages.login_form, methods=["GET"]),
        Route("/login", pages.login, methods=["POST"]),
        Route("/logout", pages.logout, methods=["GET", "POST"]),
        Route("/oauth/authorize", pages.authorize_get, methods=["GET"]),
        Route("/oauth/authorize", pages.authorize_post, methods=["POST"]),
        Route("/static/keyturn.css", pages.stylesheet, methods=["GET"]),
        *Portal(pages).routes(),
    ]
    handlers = {404: _not_found, StoreUnavailable: pages.unavailable}
    app = Starlette(routes=routes, exception_handlers=handlers)
    # Starlette would answer "/login/" with a redirect to the URL the Host header names;
    # every Location is built by web.http.location from the server's own URLs.
    app.router.redirect_slashes = False
    return pages, SecurityHeaders(app)


async def _not_found(request: Request, exc: Exception) -> Response:
    from starlette.responses import JSONResponse

    return JSONResponse(
        {"error": "not_found", "error_description": "No such endpoint."},
        status_code=404,
        headers={"content-security-policy": "default-src 'none'; frame-ancestors 'none'"},
    )
