"""The user's API keys from the portal (keyturn.core.api_keys): each operation writes its
key and its audit event in one unit, on every store, driven as the server drives it."""

from __future__ import annotations

import pytest

import keyturn.core.registration
from keyturn.core.api_keys import create_api_key, regenerate_api_key, revoke_api_key
from keyturn.core.clock import FrozenClock
from keyturn.core.context import Context
from keyturn.core.credentials import Kind, kind_of
from keyturn.core.models import Account
from keyturn.core.ownership import NotFound
from keyturn.core.ports import Conflict
from keyturn.core.registration import NewApiKey, RegistrationError

from ..helpers import add_account
from .conftest import drive

DAY = 86_400


def create(ctx: Context, owner: Account, name: str = "CI", **options: object) -> NewApiKey:
    options.setdefault("scopes", None)
    options.setdefault("expires_at", None)
    return drive(ctx, create_api_key(ctx, owner.id, name=name, **options))  # type: ignore[arg-type]


def events(ctx: Context) -> list[tuple[str, int | None, dict[str, object]]]:
    return [(e.kind, e.account_id, dict(e.detail)) for e in reversed(ctx.store.list_events(kind="api_key.*"))]


def test_a_new_key_is_stored_by_its_digest_with_its_event(ctx: Context, owner: Account, clock: FrozenClock) -> None:
    created = create(ctx, owner, " Billing ", scopes=["sms", "sms"], expires_at=clock.now() + DAY)
    assert kind_of(created.key) is Kind.API_KEY
    stored = ctx.store.find_api_key(ctx.hasher.digest(created.key))
    assert stored == created.api_key
    assert (stored.owner_id, stored.name, stored.scopes, stored.created_at, stored.expires_at) == (
        owner.id,
        "Billing",
        ("sms",),
        clock.now(),
        clock.now() + DAY,
    )
    assert events(ctx) == [("api_key.created", owner.id, {"key_id": stored.id})]


def test_a_key_from_the_command_line_says_so_in_its_event(ctx: Context, owner: Account) -> None:
    created = create(ctx, owner, via="cli")
    assert events(ctx) == [("api_key.created", owner.id, {"key_id": created.api_key.id, "via": "cli"})]


def test_a_key_that_will_not_do_writes_nothing(ctx: Context, owner: Account, clock: FrozenClock) -> None:
    with pytest.raises(RegistrationError, match="nope"):
        create(ctx, owner, scopes=["nope"])
    with pytest.raises(RegistrationError, match="future"):
        create(ctx, owner, expires_at=clock.now())
    assert ctx.store.list_api_keys(owner.id) == []
    assert ctx.store.list_events() == []


def test_revoking_a_key(ctx: Context, owner: Account, clock: FrozenClock) -> None:
    key = create(ctx, owner).api_key
    clock.advance(60)
    drive(ctx, revoke_api_key(ctx, owner.id, key.id))
    (stored,) = ctx.store.list_api_keys(owner.id)
    assert stored.revoked_at == clock.now()
    assert events(ctx)[-1] == ("api_key.revoked", owner.id, {"key_id": key.id})
    # Revoked once: there is nothing left to revoke.
    with pytest.raises(NotFound):
        drive(ctx, revoke_api_key(ctx, owner.id, key.id))
    assert len(events(ctx)) == 2


def test_another_users_key_is_not_found_and_not_touched(ctx: Context, owner: Account) -> None:
    key = create(ctx, owner).api_key
    bob = add_account(ctx, "bob@example.com")
    for flow in (revoke_api_key(ctx, bob.id, key.id), regenerate_api_key(ctx, bob.id, key.id)):
        with pytest.raises(NotFound):
            drive(ctx, flow)
    assert ctx.store.list_api_keys(owner.id) == [key]
    assert ctx.store.list_api_keys(bob.id) == []
    assert len(ctx.store.list_events()) == 1


def test_regenerating_replaces_the_key_in_one_unit(ctx: Context, owner: Account, clock: FrozenClock) -> None:
    old = create(ctx, owner, "Scoped", scopes=["sms"], expires_at=clock.now() + 90 * DAY).api_key
    clock.advance(3600)
    new = drive(ctx, regenerate_api_key(ctx, owner.id, old.id))
    stored_old, stored_new = ctx.store.list_api_keys(owner.id)
    assert stored_old.id == old.id
    assert stored_old.revoked_at == clock.now()
    assert stored_new == new.api_key
    assert stored_new.key_hash == ctx.hasher.digest(new.key)
    assert (stored_new.name, stored_new.scopes, stored_new.expires_at, stored_new.revoked_at) == (
        "Scoped",
        ("sms",),
        old.expires_at,
        None,
    )
    assert events(ctx)[-1] == ("api_key.regenerated", owner.id, {"key_id": old.id, "new_key_id": stored_new.id})


def test_an_ended_key_is_not_regenerated(ctx: Context, owner: Account, clock: FrozenClock) -> None:
    expiring = create(ctx, owner, expires_at=clock.now() + DAY).api_key
    clock.advance(DAY)
    with pytest.raises(NotFound):
        drive(ctx, regenerate_api_key(ctx, owner.id, expiring.id))
    assert ctx.store.list_api_keys(owner.id) == [expiring]


def test_a_regeneration_that_fails_midway_leaves_the_old_key_working(
    ctx: Context, owner: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old key's revocation and the new key commit together: a new key that cannot be
    stored (here: a digest that is taken) takes the revocation and the event with it."""
    old = create(ctx, owner)
    other = create(ctx, owner, "Other")
    monkeypatch.setattr(keyturn.core.registration, "new_secret", lambda kind: other.key)
    with pytest.raises(Conflict):
        drive(ctx, regenerate_api_key(ctx, owner.id, old.api_key.id))
    assert ctx.store.list_api_keys(owner.id) == [old.api_key, other.api_key]
    assert [kind for kind, _, _ in events(ctx)] == ["api_key.created", "api_key.created"]
