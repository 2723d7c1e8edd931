"""Sign-up: the form, the per-address limit, and one answer whether or not the address
already has an account (until addresses are verified, a page that said so would let
anyone find out who has an account)."""

from __future__ import annotations

import contextlib

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from keyturn.core.accounts import AccountError, AccountExists, check_new_account, new_password_hash, sign_up
from keyturn.core.ratelimit import counted_address

from .base import Pages, first, read_form, redirect

_HOUR = 3600


class Signup:
    def __init__(self, pages: Pages) -> None:
        self.pages = pages
        self.ctx = pages.ctx

    def routes(self) -> list[Route]:
        return [
            Route("/signup", self.form, methods=["GET"]),
            Route("/signup", self.submit, methods=["POST"]),
            Route("/signup/done", self.done, methods=["GET"]),
        ]

    async def form(self, request: Request) -> Response:
        binding, new = self.pages.sessions.csrf_binding(request)
        response = self._page(binding, {})
        if new:
            self.pages.sessions.set_pre_session(response, binding)
        return response

    def _page(self, binding: str, values: dict[str, str], error: str = "", status: int = 200) -> Response:
        return self.pages.render(
            "signup.html",
            status,
            csrf=self.pages.sessions.csrf_token(binding),
            values=values,
            error=error,
            min_length=self.ctx.settings.password_min_length,
        )

    async def submit(self, request: Request) -> Response:
        form = await read_form(request)
        binding, _ = self.pages.sessions.csrf_binding(request)
        if not self.pages.sessions.csrf_valid(request, first(form, "csrf")):
            return self.pages.error_page("Please try again", "This form expired. Reload the page and sign up again.")
        values = {name: first(form, name).strip() for name in ("email", "company", "alias", "name")}
        password = first(form, "password")
        settings = self.ctx.settings
        try:
            # What the form says is checked without looking anything up; a refusal here
            # tells nothing about which accounts exist, and costs no argon2 time.
            check_new_account(values["email"], password, settings.password_min_length)
        except AccountError as exc:
            return self._page(binding, values, str(exc), status=400)

        # Accounts made in bulk from one address are throttled. The attempt is counted
        # (atomically, and across nodes with Redis) before the account is created, so that
        # concurrent sign-ups cannot all slip in under the limit.
        limit = settings.signups_per_address_per_hour
        address = request.client.host if request.client else "unknown"
        if limit > 0:
            key = "signup_address:" + counted_address(address)  # an IPv6 address: its /64
            wait = await self.pages.blocking(self.ctx.limiter.hit, key, limit, _HOUR)
            if wait is not None:
                self.pages.metrics.inc("keyturn_rate_limited_total", (("limit", "signup"),))
                response = self.pages.error_page(
                    "Too many sign-ups",
                    f"Too many accounts were created from this address. Try again in {(wait + 59) // 60} minute(s).",
                    status=429,
                )
                response.headers["retry-after"] = str(wait)
                return response

        # A taken address is answered exactly like a new account (same redirect, no cookie,
        # the same argon2 time spent before the insert): the page must not tell anyone that
        # an address has an account. Its owner signs in as usual. argon2 takes its time:
        # in a thread, never on the event loop.
        password_hash = await anyio.to_thread.run_sync(new_password_hash, password)
        with contextlib.suppress(AccountExists):
            await self.pages.blocking.flow(
                sign_up(
                    self.ctx,
                    email=values["email"],
                    password_hash=password_hash,
                    name=values["name"],
                    company=values["company"],
                    alias=values["alias"],
                )
            )
        # Nobody is signed in here, in either case: a session for a new account but not
        # for a taken address would tell the two apart.
        return redirect("/signup/done")

    async def done(self, request: Request) -> Response:
        return self.pages.render("signup_done.html")
