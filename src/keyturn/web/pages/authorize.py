"""The authorization endpoint's pages (RFC 6749 §3.1, §4.1.1, §4.2.1): sign-in first, the
consent page, and the redirect back to the client; they work without JavaScript. A
signed-in user's request that needs no page (consent remembered) is answered on bare
ASGI, without the page machinery (``authorize_silently``)."""

from __future__ import annotations

from urllib.parse import parse_qs, quote, urlencode

from starlette.requests import Request, cookie_parser
from starlette.responses import Response
from starlette.routing import Route

from keyturn.core import authorize
from keyturn.core.service import Flow

from .. import http
from .base import PAGE_HEADER_LIST, Pages, first, read_form, redirect
from .csp import form_action_to, page_csp


class Authorization:
    def __init__(self, pages: Pages) -> None:
        self.pages = pages
        self.ctx = pages.ctx
        self.blocking = pages.blocking
        self.sessions = pages.sessions

    def routes(self) -> list[Route]:
        return [
            Route("/oauth/authorize", self.authorize_get, methods=["GET"]),
            Route("/oauth/authorize", self.authorize_post, methods=["POST"]),
        ]

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
        location = await self.blocking.flow(self._approve_silently(params, cookie))
        if location is None:
            return False
        headers = [(b"location", http.location(location)), (b"content-length", b"0"), *PAGE_HEADER_LIST]
        await send({"type": "http.response.start", "status": 302, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return True

    def _approve_silently(self, params: dict[str, list[str]], cookie: str) -> Flow[str | None]:
        try:
            auth = authorize.validate(self.ctx, params)
        except (authorize.InvalidClientRequest, authorize.AuthorizeError):
            return None
        account, consent = self.sessions.account_and_consent(cookie, auth.client.client_id)
        if account is None:
            return None
        return (yield from authorize.approve_if_consented(self.ctx, auth, account.id, consent))

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
            return self.pages.error_page("This link cannot be used", exc.message)
        except authorize.AuthorizeError as exc:
            return self._redirect(authorize.error_redirect(self.ctx, exc), consent_form is not None)

        account = await self.blocking(self.sessions.account, request)
        if account is None:
            query = urlencode(auth.as_params())
            return redirect("/login?next=" + quote(f"/oauth/authorize?{query}", safe=""))

        if consent_form is None:
            location = await self.blocking.flow(authorize.approve_if_consented(self.ctx, auth, account.id))
            if location is not None:
                return self._redirect(location, False)
            return self._consent_page(request, auth, account.email)

        # A POST from the consent page: only with a valid CSRF token does anything change.
        if not self.sessions.csrf_valid(request, first(consent_form, "csrf")):
            return self.pages.error_page(
                "Please try again", "This form expired. Go back to the application and start again."
            )
        decision = first(consent_form, "decision")
        if decision == "deny":
            return self._redirect(authorize.deny(self.ctx, auth), True)
        if decision != "authorize":
            return self.pages.error_page("Please try again", "Choose Authorize or Deny.")
        scopes = authorize.granted_scopes(auth, consent_form.get("granted_scope", []))
        location = await self.blocking.flow(authorize.approve(self.ctx, auth, account.id, scopes))
        return self._redirect(location, True)

    def _consent_page(self, request: Request, auth: authorize.AuthorizationRequest, email: str) -> Response:
        catalogue = self.ctx.settings.scopes
        required = set(auth.client.required_scopes)
        scopes = [{"name": s, "description": catalogue.get(s, s), "required": s in required} for s in auth.scopes]
        response = self.pages.render(
            "consent.html",
            client=auth.client,
            scopes=scopes,
            email=email,
            params=auth.as_params(),
            csrf=self.pages.csrf(request),
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


def _cookie(header: bytes | None, name: str) -> str | None:
    if header is None:
        return None
    return cookie_parser(header.decode("latin-1")).get(name)
