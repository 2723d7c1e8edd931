"""Signing in and out (the session behind the authorization endpoint and the portal).

Guessing is throttled without locking anyone else out (keyturn.core.login_throttle): the
attempt is counted before the password hash runs, and given back when it succeeds."""

from __future__ import annotations

import contextlib
from urllib.parse import parse_qs, urlsplit

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from keyturn.core import authorize, sign_in
from keyturn.core.accounts import AccountError, normalise_email
from keyturn.core.login_throttle import Attempt, LoginThrottle
from keyturn.core.passwords import dummy_hash, verify_password

from .base import Pages, first, read_form, redirect, safe_next
from .csp import form_action_to, page_csp


class Login:
    def __init__(self, pages: Pages) -> None:
        self.pages = pages
        self.ctx = pages.ctx
        self.blocking = pages.blocking
        self.sessions = pages.sessions
        self.throttle = LoginThrottle(pages.ctx)

    def routes(self) -> list[Route]:
        return [
            Route("/login", self.login_form, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.logout, methods=["GET", "POST"]),
        ]

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
        response = self.pages.render(
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

    async def login(self, request: Request) -> Response:
        form = await read_form(request)
        target = safe_next(first(form, "next"))
        email = first(form, "email").strip()
        if not self.sessions.csrf_valid(request, first(form, "csrf")):
            return self.pages.error_page(
                "Please try again", "This form expired. Go back, reload the page and sign in again."
            )
        address = request.client.host if request.client else "unknown"
        # RFC 6749 §10.10: guessing must be made hard, without letting anyone lock the
        # owner out (see keyturn.core.login_throttle). The attempt is counted before the
        # password hash runs, and given back if it succeeds.
        presented_device = request.cookies.get(self.sessions.device_cookie)
        attempt = await self.blocking(self.throttle.begin, email, address, presented_device)
        if not isinstance(attempt, Attempt):
            self.pages.metrics.inc("keyturn_rate_limited_total", (("limit", "login"),))
            return self._too_many_attempts(attempt)

        account = None
        with contextlib.suppress(AccountError):  # not an email address: no such account
            account = await self.blocking(self.ctx.store.find_account_by_email, normalise_email(email))
        stored_hash = account.password_hash if account is not None and not account.disabled else None
        password = first(form, "password")
        ok = await anyio.to_thread.run_sync(verify_password, stored_hash or dummy_hash(), password)
        if not ok or stored_hash is None or account is None:
            self.pages.metrics.inc("keyturn_login_failures_total")
            await self.blocking.flow(sign_in.sign_in_failed(self.ctx, address=address))
            # One generic message: it does not tell whether the email exists.
            # 400, not 401: a 401 would need a WWW-Authenticate challenge (RFC 9110 §15.5.2),
            # and this is a form that was not accepted.
            return await self._login_page(request, target, error="Wrong email or password.", email=email, status=400)

        await self.blocking(self.throttle.succeeded, attempt)
        # A new session, and the browser's old one ended (no session fixation), with the
        # sign-in's audit event: one unit.
        value, session_hash = self.sessions.new_session()
        replaces = self.sessions.current(request)
        await self.blocking.flow(
            sign_in.sign_in(self.ctx, account.id, session_hash, address=address, replaces=replaces)
        )
        signed_in = redirect(target)
        self.sessions.set_session(signed_in, value)
        device = self.throttle.device_cookie(email)
        if device is not None:
            # Only the sign-in form needs it: sent to /login alone, never to scripts.
            signed_in.set_cookie(
                self.sessions.device_cookie,
                device,
                max_age=self.ctx.settings.login_device_cookie_ttl,
                path="/login",
                secure=self.sessions.secure,
                httponly=True,
                samesite="strict",
            )
        return signed_in

    def _too_many_attempts(self, wait: int) -> Response:
        when = f"{wait} second(s)" if wait < 120 else f"{(wait + 59) // 60} minute(s)"
        response = self.pages.error_page(
            "Too many attempts", f"Too many failed sign-ins. Try again in {when}.", status=429
        )
        response.headers["retry-after"] = str(wait)
        return response

    async def logout(self, request: Request) -> Response:
        if request.method == "GET":
            account = await self.blocking(self.sessions.account, request)
            if account is None:
                return redirect("/login")
            return self.pages.render("logout.html", email=account.email, csrf=self.pages.csrf(request))
        form = await read_form(request)
        if not self.sessions.csrf_valid(request, first(form, "csrf")):
            return self.pages.error_page("Please try again", "This form expired. Reload the page and sign out again.")
        session_hash = self.sessions.current(request)
        if session_hash is not None:
            await self.blocking.flow(sign_in.sign_out(self.ctx, session_hash))
        response = redirect("/login")
        self.sessions.clear(response)
        return response
