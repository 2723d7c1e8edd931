"""The developer portal: sign-up (see signup.py), profile, API keys, OAuth clients ("Create New Client"),
Sinch-style access keys and connected apps. Every page needs a signed-in user, every form
a CSRF token, and every record is looked up within the user's own: another user's id is
answered as if it did not exist."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from keyturn.core.credentials import Kind, new_secret
from keyturn.core.models import Account, ApiKey, Client, ClientKind, GrantType
from keyturn.core.redirect_uris import redirect_uri_problem
from keyturn.core.registration import RegistrationError, issue_api_key, register_client
from keyturn.core.scopes import scope_problem

from .base import Pages, first, read_form, redirect

Form = dict[str, list[str]]
_DAY = 86_400
EXPIRY_CHOICES = {"never": None, "30": 30, "90": 90, "365": 365}


class NotFound(Exception):
    """The record does not exist, or is not the signed-in user's."""


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

    def _own_client(self, account: Account, client_id: str, kind: ClientKind) -> Client:
        client = self.ctx.store.get_client(client_id)
        if client is None or client.owner_id != account.id or client.kind != kind.value:
            raise NotFound
        return client

    def _own_key(self, account: Account, key_id: int) -> ApiKey:
        key = next((k for k in self.ctx.store.list_api_keys(account.id) if k.id == key_id), None)
        if key is None:
            raise NotFound
        return key

    def _audit(self, kind: str, account: Account, client_id: str | None = None, **detail: Any) -> None:
        self.ctx.store.record(kind, self.ctx.clock.now(), account_id=account.id, client_id=client_id, detail=detail)

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
        scopes = form.get("scope") or None
        expiry = first(form, "expires")
        if expiry not in EXPIRY_CHOICES:
            return await self.api_keys(request, account, error="Choose an expiry from the list.", status=400)
        days = EXPIRY_CHOICES[expiry]
        try:
            created = await self.blocking(
                lambda: issue_api_key(
                    self.ctx.store,
                    self.ctx.hasher,
                    self.ctx.clock,
                    owner_id=account.id,
                    name=first(form, "name"),
                    catalogue=self.ctx.settings.scopes,
                    scopes=scopes,
                    expires_at=None if days is None else self.ctx.clock.now() + days * _DAY,
                )
            )
        except RegistrationError as exc:
            return await self.api_keys(request, account, error=str(exc), status=400)
        await self.blocking(self._audit, "api_key.created", account, None, key_id=created.api_key.id)
        return await self.api_keys(request, account, created_key=created.key, created_name=created.api_key.name)

    async def revoke_api_key(self, request: Request, account: Account, form: Form) -> Response:
        key_id = int(request.path_params["key_id"])
        revoked = await self.blocking(self.ctx.store.revoke_api_key, key_id, account.id, self.ctx.clock.now())
        if not revoked:
            raise NotFound
        await self.blocking(self._audit, "api_key.revoked", account, None, key_id=key_id)
        return redirect("/account/api-keys")

    async def regenerate_api_key(self, request: Request, account: Account, form: Form) -> Response:
        """A new key with the old one's name and scopes; the old one stops working."""
        old = await self.blocking(self._own_key, account, int(request.path_params["key_id"]))
        now = self.ctx.clock.now()
        # An ended key is not offered for regeneration, and may not come back without its
        # expiry: it is answered like one that does not exist.
        if old.revoked_at is not None or (old.expires_at is not None and old.expires_at <= now):
            raise NotFound

        def regenerate() -> str:
            self.ctx.store.revoke_api_key(old.id, account.id, self.ctx.clock.now())
            return issue_api_key(
                self.ctx.store,
                self.ctx.hasher,
                self.ctx.clock,
                owner_id=account.id,
                name=old.name,
                catalogue={},
                scopes=old.scopes,
                expires_at=old.expires_at,
            ).key

        key = await self.blocking(regenerate)
        await self.blocking(self._audit, "api_key.regenerated", account, None, key_id=old.id)
        return await self.api_keys(request, account, created_key=key, created_name=old.name)

    # ---- OAuth clients ----

    async def clients(self, request: Request, account: Account, **values: Any) -> Response:
        found = await self.blocking(self.ctx.store.list_clients, account.id)
        apps = [c for c in found if c.kind == ClientKind.APPLICATION.value]
        status = values.pop("status", 200)
        return self.render("portal/clients.html", request, account, status, clients=apps, **values)

    async def create_client(self, request: Request, account: Account, form: Form) -> Response:
        uris = [line.strip() for line in first(form, "redirect_uris").splitlines() if line.strip()]
        confidential = first(form, "confidential") == "on"
        try:
            created = await self.blocking(
                lambda: register_client(
                    self.ctx.store,
                    self.ctx.hasher,
                    self.ctx.clock,
                    name=first(form, "name"),
                    owner_id=account.id,
                    catalogue=self.ctx.settings.scopes,
                    production=self.ctx.settings.production,
                    redirect_uris=uris,
                    confidential=confidential,
                )
            )
        except RegistrationError as exc:
            return await self.clients(request, account, error=str(exc), form=form_values(form), status=400)
        await self.blocking(self._audit, "client.created", account, created.client.client_id)
        return self.render(
            "portal/client_created.html", request, account, client=created.client, secret=created.client_secret
        )

    async def client_detail(self, request: Request, account: Account, **values: Any) -> Response:
        client = await self.blocking(
            self._own_client, account, request.path_params["client_id"], ClientKind.APPLICATION
        )
        status = values.pop("status", 200)
        return self.render("portal/client_detail.html", request, account, status, client=client, **values)

    async def update_client(self, request: Request, account: Account, form: Form) -> Response:
        client = await self.blocking(
            self._own_client, account, request.path_params["client_id"], ClientKind.APPLICATION
        )
        name = first(form, "name").strip()
        uris = tuple(dict.fromkeys(line.strip() for line in first(form, "redirect_uris").splitlines() if line.strip()))
        scopes = tuple(form.get("scope", []))
        problem = None
        if not name or len(name) > 200:
            problem = "The name must be 1 to 200 characters."
        elif not uris and GrantType.AUTHORIZATION_CODE.value in client.grant_types:
            problem = "Keep at least one redirect URL."
        else:
            production = self.ctx.settings.production
            problems = [redirect_uri_problem(u, production=production) for u in uris]
            problems += [scope_problem(s, self.ctx.settings.scopes) for s in scopes]
            problem = next((p for p in problems if p), None)
        if problem:
            return await self.client_detail(request, account, error=problem, status=400)
        updated = replace(client, name=name, redirect_uris=uris, scopes=scopes, updated_at=self.ctx.clock.now())
        await self.blocking(self.ctx.store.update_client, updated)
        self._changed(client.client_id)
        await self.blocking(self._audit, "client.updated", account, client.client_id)
        return redirect(f"/account/clients/{client.client_id}")

    async def regenerate_secret(self, request: Request, account: Account, form: Form) -> Response:
        client = await self.blocking(
            self._own_client, account, request.path_params["client_id"], ClientKind.APPLICATION
        )
        if not client.confidential:
            raise NotFound
        secret = new_secret(Kind.CLIENT_SECRET)
        updated = replace(client, secret_hash=self.ctx.hasher.digest(secret), updated_at=self.ctx.clock.now())
        await self.blocking(self.ctx.store.update_client, updated)
        self._changed(client.client_id)
        await self.blocking(self._audit, "client.secret_rotated", account, client.client_id)
        return self.render(
            "portal/client_created.html", request, account, client=updated, secret=secret, regenerated=True
        )

    async def delete_client(self, request: Request, account: Account, form: Form) -> Response:
        client = await self.blocking(
            self._own_client, account, request.path_params["client_id"], ClientKind.APPLICATION
        )
        # Its codes, tokens and consents go with it (foreign keys cascade).
        await self.blocking(self.ctx.store.delete_client, client.client_id)
        self._changed(client.client_id)
        await self.blocking(self._audit, "client.deleted", account, client.client_id)
        return redirect("/account/clients")

    # ---- access keys (Sinch style: Key ID + Key Secret for client credentials) ----

    async def access_keys(self, request: Request, account: Account, **values: Any) -> Response:
        found = await self.blocking(self.ctx.store.list_clients, account.id)
        keys = [c for c in found if c.kind == ClientKind.ACCESS_KEY.value]
        status = values.pop("status", 200)
        return self.render("portal/access_keys.html", request, account, status, keys=keys, **values)

    async def create_access_key(self, request: Request, account: Account, form: Form) -> Response:
        try:
            created = await self.blocking(
                lambda: register_client(
                    self.ctx.store,
                    self.ctx.hasher,
                    self.ctx.clock,
                    name=first(form, "name"),
                    owner_id=account.id,
                    catalogue=self.ctx.settings.scopes,
                    production=self.ctx.settings.production,
                    kind=ClientKind.ACCESS_KEY,
                )
            )
        except RegistrationError as exc:
            return await self.access_keys(request, account, error=str(exc), status=400)
        await self.blocking(self._audit, "access_key.created", account, created.client.client_id)
        return await self.access_keys(
            request, account, created_id=created.client.client_id, created_secret=created.client_secret
        )

    async def delete_access_key(self, request: Request, account: Account, form: Form) -> Response:
        key = await self.blocking(self._own_client, account, request.path_params["client_id"], ClientKind.ACCESS_KEY)
        await self.blocking(self.ctx.store.delete_client, key.client_id)
        self._changed(key.client_id)
        await self.blocking(self._audit, "access_key.deleted", account, key.client_id)
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

        def revoke() -> bool:
            now = self.ctx.clock.now()
            found = self.ctx.store.delete_consent(account.id, client_id)
            revoked = self.ctx.store.revoke_tokens_of(account.id, client_id, now)
            if found or revoked:
                self.ctx.store.record(
                    "consent.revoked",
                    now,
                    account_id=account.id,
                    client_id=client_id,
                    detail={"tokens_revoked": revoked},
                )
            return found

        if not await self.blocking(revoke):
            raise NotFound
        return redirect("/account/apps")


def form_values(form: Form) -> dict[str, str]:
    return {name: values[0] for name, values in form.items() if values and name != "csrf"}
