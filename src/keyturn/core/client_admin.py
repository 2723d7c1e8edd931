"""The user's OAuth clients and Sinch-style access keys, from the portal (and a client
from the command line: ``create_client`` with ``via="cli"``): created, changed, given a
new secret, deleted. Each operation is a flow (core/service.py) whose
write and audit event are one unit of work. A client changed or deleted here is still
in the clients' caches: the caller invalidates it once the flow has returned."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from .context import Context
from .credentials import Kind, new_secret
from .models import Client, ClientKind, GrantType
from .ownership import NotFound, own_client
from .ports import Conflict
from .redirect_uris import redirect_uri_problem
from .registration import ClientRequest, NewClient, RegistrationError, build_client
from .scopes import scope_problem
from .service import Flow, in_unit
from .unit_of_work import UnitOfWork, audit_detail

#: The audit events' prefix per kind of client.
_EVENT = {ClientKind.APPLICATION: "client", ClientKind.ACCESS_KEY: "access_key"}


def create_client(ctx: Context, account_id: int, request: ClientRequest, *, via: str | None = None) -> Flow[NewClient]:
    """A new client of the account's; RegistrationError if it cannot be created as asked.
    ``via`` names where the change came from in the audit event."""
    created = build_client(
        ctx.hasher,
        ctx.clock,
        request,
        owner_id=account_id,
        catalogue=ctx.settings.scopes,
        production=ctx.settings.production,
    )
    kind = request.kind
    client_id = created.client.client_id

    def work(unit: UnitOfWork) -> NewClient:
        unit.add_client(created.client)
        now = ctx.clock.now()
        unit.record(
            f"{_EVENT[kind]}.created", now, account_id=account_id, client_id=client_id, detail=audit_detail(via)
        )
        return created

    try:
        return (yield from in_unit(ctx, work))
    except Conflict:  # 144 random bits: only a broken RNG gets here
        raise RegistrationError("client id collision; try again") from None


def update_client(
    ctx: Context, account_id: int, client_id: str, *, name: str, redirect_uris: Iterable[str], scopes: Iterable[str]
) -> Flow[Client]:
    """The user's application with a new name, redirect URIs and scopes; NotFound unless
    it is theirs, RegistrationError (saying what to change) if the change will not do."""

    def work(unit: UnitOfWork) -> Client:
        client = own_client(ctx, account_id, client_id, ClientKind.APPLICATION)
        new_name = name.strip()
        uris = tuple(dict.fromkeys(uri.strip() for uri in redirect_uris if uri.strip()))
        allowed = tuple(scopes)
        problem = _problem(ctx, client, new_name, uris, allowed)
        if problem:
            raise RegistrationError(problem)
        now = ctx.clock.now()
        updated = replace(client, name=new_name, redirect_uris=uris, scopes=allowed, updated_at=now)
        unit.update_client(updated)
        unit.record("client.updated", now, account_id=account_id, client_id=client_id)
        return updated

    return (yield from in_unit(ctx, work))


def _problem(ctx: Context, client: Client, name: str, uris: tuple[str, ...], scopes: tuple[str, ...]) -> str | None:
    if not name or len(name) > 200:
        return "The name must be 1 to 200 characters."
    if not uris and GrantType.AUTHORIZATION_CODE.value in client.grant_types:
        return "Keep at least one redirect URL."
    production = ctx.settings.production
    problems = [redirect_uri_problem(uri, production=production) for uri in uris]
    problems += [scope_problem(scope, ctx.settings.scopes) for scope in scopes]
    return next((p for p in problems if p), None)


def rotate_client_secret(ctx: Context, account_id: int, client_id: str) -> Flow[NewClient]:
    """A new secret for the user's confidential application; the old one stops working.
    NotFound for a public client: it has no secret to replace."""
    secret = new_secret(Kind.CLIENT_SECRET)

    def work(unit: UnitOfWork) -> NewClient:
        client = own_client(ctx, account_id, client_id, ClientKind.APPLICATION)
        if not client.confidential:
            raise NotFound
        now = ctx.clock.now()
        updated = replace(client, secret_hash=ctx.hasher.digest(secret), updated_at=now)
        unit.update_client(updated)
        unit.record("client.secret_rotated", now, account_id=account_id, client_id=client_id)
        return NewClient(client=updated, client_secret=secret)

    return (yield from in_unit(ctx, work))


def delete_client(ctx: Context, account_id: int, client_id: str, kind: ClientKind) -> Flow[None]:
    """Deletes the user's client of this kind, with its codes, tokens and consents."""

    def work(unit: UnitOfWork) -> None:
        own_client(ctx, account_id, client_id, kind)
        unit.delete_client(client_id)
        unit.record(f"{_EVENT[kind]}.deleted", ctx.clock.now(), account_id=account_id, client_id=client_id)

    yield from in_unit(ctx, work)
