"""The user's clients, access keys and connected apps from the portal
(keyturn.core.client_admin, keyturn.core.connected_apps): each operation writes its
change and its audit event in one unit, on every store, driven as the server drives it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from keyturn.core.client_admin import create_client, delete_client, rotate_client_secret, update_client
from keyturn.core.clock import FrozenClock
from keyturn.core.connected_apps import revoke_app
from keyturn.core.context import Context
from keyturn.core.models import Account, ClientKind, Consent
from keyturn.core.ownership import NotFound
from keyturn.core.registration import ClientRequest, NewClient, RegistrationError
from keyturn.core.service import commit_now

from ..helpers import add_account
from .conftest import Registered, drive, register
from .test_grants import code_for, exchange

CALLBACK = "https://app.example.com/cb"


def create(ctx: Context, owner: Account, kind: ClientKind = ClientKind.APPLICATION, **options: object) -> NewClient:
    if kind is ClientKind.APPLICATION:
        options.setdefault("redirect_uris", [CALLBACK])
    via = options.pop("via", None)
    request = ClientRequest(name="App", kind=kind, **options)  # type: ignore[arg-type]
    return drive(ctx, create_client(ctx, owner.id, request, via=via))  # type: ignore[arg-type]


def events(ctx: Context) -> list[tuple[str, int | None, str | None]]:
    return [(e.kind, e.account_id, e.client_id) for e in reversed(ctx.store.list_events())]


def other_user(ctx: Context) -> Account:
    return add_account(ctx, "bob@example.com")


@pytest.mark.parametrize(("kind", "event"), [(ClientKind.APPLICATION, "client"), (ClientKind.ACCESS_KEY, "access_key")])
def test_a_new_client_with_its_event(ctx: Context, owner: Account, kind: ClientKind, event: str) -> None:
    created = create(ctx, owner, kind)
    assert created.client_secret is not None
    stored = ctx.store.get_client(created.client.client_id)
    assert stored == created.client
    assert (stored.owner_id, stored.kind, stored.secret_hash) == (
        owner.id,
        kind.value,
        ctx.hasher.digest(created.client_secret),
    )
    assert events(ctx) == [(f"{event}.created", owner.id, stored.client_id)]


def test_the_operators_client_with_every_option_and_its_event_via_the_cli(ctx: Context, owner: Account) -> None:
    created = create(
        ctx,
        owner,
        redirect_uris=[],
        grant_types=["client_credentials"],
        scopes=["sms"],
        resource_server=True,
        token_format="jwt",
        access_token_ttl=600,
        refresh_token_ttl=None,
        via="cli",
    )
    stored = ctx.store.get_client(created.client.client_id)
    assert stored == created.client
    assert (
        stored.grant_types,
        stored.scopes,
        stored.resource_server,
        stored.token_format,
        stored.access_token_ttl,
    ) == (
        ("client_credentials",),
        ("sms",),
        True,
        "jwt",
        600,
    )
    (event,) = ctx.store.list_events()
    assert (event.kind, event.account_id, event.client_id, dict(event.detail)) == (
        "client.created",
        owner.id,
        stored.client_id,
        {"via": "cli"},
    )


def test_a_client_that_will_not_do_writes_nothing(ctx: Context, owner: Account) -> None:
    with pytest.raises(RegistrationError, match="redirect URI"):
        create(ctx, owner, redirect_uris=[])
    assert ctx.store.list_clients(owner.id) == []
    assert ctx.store.list_events() == []


def test_updating_a_client(ctx: Context, owner: Account, clock: FrozenClock) -> None:
    client = create(ctx, owner).client
    clock.advance(10)
    flow = update_client(
        ctx, owner.id, client.client_id, name=" Renamed ", redirect_uris=[f" {CALLBACK} ", CALLBACK], scopes=["sms"]
    )
    updated = drive(ctx, flow)
    changes = {"name": "Renamed", "redirect_uris": (CALLBACK,), "scopes": ("sms",), "updated_at": clock.now()}
    assert updated == replace(client, **changes)  # type: ignore[arg-type]
    assert ctx.store.get_client(client.client_id) == updated
    assert events(ctx)[-1] == ("client.updated", owner.id, client.client_id)


@pytest.mark.parametrize(
    ("name", "uris", "scopes", "problem"),
    [
        ("", [CALLBACK], [], "The name must be 1 to 200 characters."),
        ("App", [], [], "Keep at least one redirect URL."),
        ("App", ["ftp://x"], [], "http"),
        ("App", [CALLBACK], ["nope"], "nope"),
    ],
)
def test_an_update_that_will_not_do_changes_nothing(
    ctx: Context, owner: Account, name: str, uris: list[str], scopes: list[str], problem: str
) -> None:
    client = create(ctx, owner).client
    with pytest.raises(RegistrationError, match=problem):
        drive(ctx, update_client(ctx, owner.id, client.client_id, name=name, redirect_uris=uris, scopes=scopes))
    assert ctx.store.get_client(client.client_id) == client
    assert len(events(ctx)) == 1


def test_rotating_a_secret(ctx: Context, owner: Account, clock: FrozenClock) -> None:
    created = create(ctx, owner)
    clock.advance(10)
    rotated = drive(ctx, rotate_client_secret(ctx, owner.id, created.client.client_id))
    assert rotated.client_secret not in (None, created.client_secret)
    stored = ctx.store.get_client(created.client.client_id)
    assert stored == rotated.client
    assert (stored.secret_hash, stored.updated_at) == (ctx.hasher.digest(rotated.client_secret), clock.now())
    assert events(ctx)[-1] == ("client.secret_rotated", owner.id, stored.client_id)


def test_a_public_client_has_no_secret_to_rotate(ctx: Context, owner: Account) -> None:
    public = create(ctx, owner, confidential=False).client
    with pytest.raises(NotFound):
        drive(ctx, rotate_client_secret(ctx, owner.id, public.client_id))
    assert ctx.store.get_client(public.client_id) == public


def test_deleting_a_client_takes_its_tokens_and_consents(ctx: Context, owner: Account) -> None:
    app = register(ctx, owner, redirect_uris=[CALLBACK])
    issued = exchange(ctx, app, code_for(ctx, app, owner))
    save_consent(ctx, owner, app)
    drive(ctx, delete_client(ctx, owner.id, app.client.client_id, ClientKind.APPLICATION))
    assert ctx.store.get_client(app.client.client_id) is None
    assert ctx.store.find_token(ctx.hasher.token_key(str(issued["access_token"]))) is None
    assert ctx.store.get_consent(owner.id, app.client.client_id) is None
    assert events(ctx)[-1] == ("client.deleted", owner.id, app.client.client_id)


def test_records_of_another_user_or_kind_are_not_found_and_not_touched(ctx: Context, owner: Account) -> None:
    app = create(ctx, owner).client
    key = create(ctx, owner, ClientKind.ACCESS_KEY).client
    bob = other_user(ctx)
    attempts = [
        update_client(ctx, bob.id, app.client_id, name="Mine", redirect_uris=[CALLBACK], scopes=[]),
        rotate_client_secret(ctx, bob.id, app.client_id),
        delete_client(ctx, bob.id, app.client_id, ClientKind.APPLICATION),
        delete_client(ctx, bob.id, key.client_id, ClientKind.ACCESS_KEY),
        # The right owner, the wrong kind: an access key is not an application.
        update_client(ctx, owner.id, key.client_id, name="Mine", redirect_uris=[CALLBACK], scopes=[]),
        rotate_client_secret(ctx, owner.id, key.client_id),
        delete_client(ctx, owner.id, app.client_id, ClientKind.ACCESS_KEY),
        revoke_app(ctx, bob.id, app.client_id),
    ]
    for flow in attempts:
        with pytest.raises(NotFound):
            drive(ctx, flow)
    assert {c.client_id: c for c in ctx.store.list_clients(owner.id)} == {app.client_id: app, key.client_id: key}
    assert len(events(ctx)) == 2


def save_consent(ctx: Context, account: Account, app: Registered) -> None:
    consent = Consent(account.id, app.client.client_id, ("sms",), ctx.clock.now(), ctx.clock.now())
    commit_now(ctx.store, lambda unit: unit.save_consent(consent))


def test_revoking_a_connected_app_ends_the_users_consent_and_tokens_only(
    ctx: Context, owner: Account, clock: FrozenClock
) -> None:
    app = register(ctx, owner, redirect_uris=[CALLBACK])
    bob = other_user(ctx)
    mine = exchange(ctx, app, code_for(ctx, app, owner))
    theirs = exchange(ctx, app, code_for(ctx, app, bob))
    save_consent(ctx, owner, app)
    save_consent(ctx, bob, app)
    clock.advance(5)
    assert drive(ctx, revoke_app(ctx, owner.id, app.client.client_id)) == 2
    assert ctx.store.get_consent(owner.id, app.client.client_id) is None
    for name in ("access_token", "refresh_token"):
        revoked = ctx.store.find_token(ctx.hasher.token_key(str(mine[name])))
        assert revoked is not None
        assert revoked.revoked_at == clock.now()
        kept = ctx.store.find_token(ctx.hasher.token_key(str(theirs[name])))
        assert kept is not None
        assert kept.revoked_at is None
    assert ctx.store.get_consent(bob.id, app.client.client_id) is not None
    (event,) = ctx.store.list_events(kind="consent.revoked")
    assert (event.account_id, event.client_id, dict(event.detail)) == (
        owner.id,
        app.client.client_id,
        {"tokens_revoked": 2},
    )
    # Nothing left: revoking again is not found, and writes nothing.
    with pytest.raises(NotFound):
        drive(ctx, revoke_app(ctx, owner.id, app.client.client_id))
    assert len(ctx.store.list_events(kind="consent.revoked")) == 1
