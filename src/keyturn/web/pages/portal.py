"""The developer portal: sign-up (see signup.py), profile, API keys, OAuth clients ("Create New Client"),
Sinch-style access keys and connected apps. Every page needs a signed-in user, every form
a CSRF token, and every record is looked up within the user's own: another user's id is
answered as if it did not exist (core's NotFound, a 404 here). Each form that changes
something is one core flow (core/api_keys.py, core/client_admin.py,
core/connected_apps.py): its writes and audit event commit together."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from keyturn.core import api_keys, client_admin, connected_apps
from keyturn.core.models import Account, Client, ClientKind
from keyturn.core.ownership import NotFound, own_client
from keyturn.core.registration import ClientRequest, RegistrationError

from .base import Pages, first, read_form, redirect

Form = dict[str, list[str]]
_DAY = 86_400
EXPIRY_CHOICES = {"never": None, "30": 30, "90": 90, "365": 365}


class Portal:
    def __init__(self, pages: Pages) -> None:
        self.pages = pages
        self.ctx = pages.ctx
        self.blocking = pages.blocking

    def routes(self) -> list[Route]:
        get, post = ["GET"], ["POST"]
        return [
            Route("/account", self.page(self.profile), methods=get),
            Route("/account/api-keys", self.page(self.api_keys), methods=get),
            Route("/account/api-keys", self.form(self.create_api_key), methods=post),
            Route("/account/api-keys/{key_id:int}/revoke", self.form(self.revoke_api_key), methods=post),
            Route("/account/api-keys/{key_id:int}/regenerate", self.form(self.regenerate_api_key), methods=post),
            Route("/account/clients", self.page(self.clients), methods=get),
            Route("/account/clients", self.form(self.create_client), methods=post),
            Route("/account/clients/{client_id}", self.page(self.client_detail), methods=get),
            Route("/account/clients/{client_id}", self.form(self.update_client), methods=post),
            Route("/account/clients/{client_id}/secret", self.form(self.regenerate_secret), methods=post),
            Route("/account/clients/{client_id}/delete", self.form(self.delete_client), methods=post),
            Route("/account/access-keys", self.page(self.access_keys), methods=get),
            Route("/account/access-keys", self.form(self.create_access_key), methods=post),
            Route("/account/access-keys/{client_id}/delete", self.form(self.delete_access_key), methods=post),
            Route("/account/apps", self.page(self.connected_apps), methods=get),
            Route("/account/apps/{client_id}/revoke", self.form(self.revoke_app), methods=post),
        ]

    # ---- plumbing: sign-in, CSRF, ownership ----

    def page(
        self, handler: Callable[[Request, Account], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            account = await self.blocking(self.pages.sessions.account, request)
            if account is None:
                return redirect(f"/login?next={request.url.path}")
            try:
                return await handler(request, account)
            except NotFound:
                return self.pages.error_page("Not found", "There is nothing here.", status=404)

        return endpoint

    def form(
        self, handler: Callable[[Request, Account, Form], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request, account: Account) -> Response:
            form = await read_form(request)
            if not self.pages.sessions.csrf_valid(request, first(form, "csrf")):
                return self.pages.error_page("Please try again", "This form expired. Reload the page and try again.")
            return await handler(request, account, form)

        return self.page(endpoint)

    def render(self, name: str, request: Request, account: Account, status: int = 200, **values: Any) -> Response:
        csrf = self.pages.sessions.csrf_token(self.pages.sessions.csrf_binding(request)[0])
        return self.pages.render(
            name, status, account=account, csrf=csrf, catalogue=self.ctx.settings.scopes, section=name, **values
        )

    def _changed(self, client_id: str) -> None:
        """A client changed or went away: every node stops using its cached copy."""
        self.pages.client_changed(client_id)

    # ---- profile ----

    async def profile(self, request: Request, account: Account) -> Response:
        return self.render("portal/profile.html", request, account)

    # ---- API keys ----

    async def api_keys(self, request: Request, account: Account, **values: Any) -> Response:
        keys = await self.blocking(self.ctx.store.list_api_keys, account.id)
        now = self.ctx.clock.now()
        active = [k for k in keys if k.revoked_at is None and (k.expires_at is None or k.expires_at > now)]
        status = values.pop("status", 200)
        return self.render("portal/api_keys.html", request, account, status, keys=active, **values)

    async def create_api_key(self, request: Request, account: Account, form: Form) -> Response:
        expiry = first(form, "expires")
        if expiry not in EXPIRY_CHOICES:
            return await self.api_keys(request, account, error="Choose an expiry from the list.", status=400)
        days = EXPIRY_CHOICES[expiry]
        expires_at = None if days is None else self.ctx.clock.now() + days * _DAY
        flow = api_keys.create_api_key(
            self.ctx, account.id, name=first(form, "name"), scopes=form.get("scope") or None, expires_at=expires_at
        )
        try:
            created = await self.blocking.flow(flow)
        except RegistrationError as exc:
            return await self.api_keys(request, account, error=str(exc), status=400)
        return await self.api_keys(request, account, created_key=created.key, created_name=created.api_key.name)

    async def revoke_api_key(self, request: Request, account: Account, form: Form) -> Response:
        await self.blocking.flow(api_keys.revoke_api_key(self.ctx, account.id, int(request.path_params["key_id"])))
        return redirect("/account/api-keys")

    async def regenerate_api_key(self, request: Request, account: Account, form: Form) -> Response:
        """A new key with the old one's name and scopes; the old one stops working."""
        key_id = int(request.path_params["key_id"])
        created = await self.blocking.flow(api_keys.regenerate_api_key(self.ctx, account.id, key_id))
        return await self.api_keys(request, account, created_key=created.key, created_name=created.api_key.name)

    # ---- OAuth clients ----

    async def clients(self, request: Request, account: Account, **values: Any) -> Response:
        found = await self.blocking(self.ctx.store.list_clients, account.id)
        apps = [c for c in found if c.kind == ClientKind.APPLICATION.value]
        status = values.pop("status", 200)
        return self.render("portal/clients.html", request, account, status, clients=apps, **values)

    async def create_client(self, request: Request, account: Account, form: Form) -> Response:
        flow = client_admin.create_client(
            self.ctx,
            account.id,
            ClientRequest(
                name=first(form, "name"),
                redirect_uris=[line.strip() for line in first(form, "redirect_uris").splitlines() if line.strip()],
                confidential=first(form, "confidential") == "on",
            ),
        )
        try:
            created = await self.blocking.flow(flow)
        except RegistrationError as exc:
            return await self.clients(request, account, error=str(exc), form=form_values(form), status=400)
        return self.render(
            "portal/client_created.html", request, account, client=created.client, secret=created.client_secret
        )

    async def client_detail(self, request: Request, account: Account, **values: Any) -> Response:
        client = await self._own_application(request, account)
        status = values.pop("status", 200)
        return self.render("portal/client_detail.html", request, account, status, client=client, **values)

    async def _own_application(self, request: Request, account: Account) -> Client:
        client_id = request.path_params["client_id"]
        return await self.blocking(own_client, self.ctx, account.id, client_id, ClientKind.APPLICATION)

    async def update_client(self, request: Request, account: Account, form: Form) -> Response:
        client_id = request.path_params["client_id"]
        flow = client_admin.update_client(
            self.ctx,
            account.id,
            client_id,
            name=first(form, "name"),
            redirect_uris=first(form, "redirect_uris").splitlines(),
            scopes=form.get("scope", []),
        )
        try:
            await self.blocking.flow(flow)
        except RegistrationError as exc:
            return await self.client_detail(request, account, error=str(exc), status=400)
        self._changed(client_id)
        return redirect(f"/account/clients/{client_id}")

    async def regenerate_secret(self, request: Request, account: Account, form: Form) -> Response:
        client_id = request.path_params["client_id"]
        rotated = await self.blocking.flow(client_admin.rotate_client_secret(self.ctx, account.id, client_id))
        self._changed(client_id)
        return self.render(
            "portal/client_created.html",
            request,
            account,
            client=rotated.client,
            secret=rotated.client_secret,
            regenerated=True,
        )

    async def delete_client(self, request: Request, account: Account, form: Form) -> Response:
        client_id = request.path_params["client_id"]
        # Its codes, tokens and consents go with it (foreign keys cascade).
        await self.blocking.flow(client_admin.delete_client(self.ctx, account.id, client_id, ClientKind.APPLICATION))
        self._changed(client_id)
        return redirect("/account/clients")

    # ---- access keys (Sinch style: Key ID + Key Secret for client credentials) ----

    async def access_keys(self, request: Request, account: Account, **values: Any) -> Response:
        found = await self.blocking(self.ctx.store.list_clients, account.id)
        keys = [c for c in found if c.kind == ClientKind.ACCESS_KEY.value]
        status = values.pop("status", 200)
        return self.render("portal/access_keys.html", request, account, status, keys=keys, **values)

    async def create_access_key(self, request: Request, account: Account, form: Form) -> Response:
        asked = ClientRequest(name=first(form, "name"), kind=ClientKind.ACCESS_KEY)
        flow = client_admin.create_client(self.ctx, account.id, asked)
        try:
            created = await self.blocking.flow(flow)
        except RegistrationError as exc:
            return await self.access_keys(request, account, error=str(exc), status=400)
        return await self.access_keys(
            request, account, created_id=created.client.client_id, created_secret=created.client_secret
        )

    async def delete_access_key(self, request: Request, account: Account, form: Form) -> Response:
        client_id = request.path_params["client_id"]
        await self.blocking.flow(client_admin.delete_client(self.ctx, account.id, client_id, ClientKind.ACCESS_KEY))
        self._changed(client_id)
        return redirect("/account/access-keys")

    # ---- connected apps ----

    async def connected_apps(self, request: Request, account: Account) -> Response:
        def load() -> list[dict[str, Any]]:
            apps = []
            for consent in self.ctx.store.list_consents(account.id):
                client = self.ctx.store.get_client(consent.client_id)
                if client is not None:
                    apps.append({"client": client, "consent": consent})
            return apps

        return self.render("portal/apps.html", request, account, apps=await self.blocking(load))

    async def revoke_app(self, request: Request, account: Account, form: Form) -> Response:
        client_id = request.path_params["client_id"]
        await self.blocking.flow(connected_apps.revoke_app(self.ctx, account.id, client_id))
        return redirect("/account/apps")


def form_values(form: Form) -> dict[str, str]:
    return {name: values[0] for name, values in form.items() if values and name != "csrf"}
