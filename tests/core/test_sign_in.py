"""Signing up, in and out (keyturn.core.accounts.sign_up, keyturn.core.sign_in) and the
operator's account (ensure_account): each a flow whose writes commit together, on every
store, driven as the server drives it."""

from __future__ import annotations

import hashlib

import pytest

from keyturn.core.accounts import AccountExists, ensure_account, new_password_hash, sign_up
from keyturn.core.clock import FrozenClock
from keyturn.core.context import Context
from keyturn.core.models import Account, Session
from keyturn.core.passwords import verify_password
from keyturn.core.ports import Conflict
from keyturn.core.service import Done, advance, failed, run
from keyturn.core.sign_in import sign_in, sign_in_failed, sign_out

from .conftest import drive

PASSWORD = "a long enough passphrase"


def digest(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def test_signing_up_creates_the_account(ctx: Context, clock: FrozenClock) -> None:
    password_hash = new_password_hash(PASSWORD)
    flow = sign_up(
        ctx, email=" Bob@Example.com ", password_hash=password_hash, name=" Bob ", company="Acme", alias=" b "
    )
    account = drive(ctx, flow)
    assert ctx.store.find_account_by_email("bob@example.com") == account
    assert (account.email, account.name, account.company, account.alias, account.created_at) == (
        "Bob@Example.com",
        "Bob",
        "Acme",
        "b",
        clock.now(),
    )
    assert verify_password(password_hash, PASSWORD)


def test_signing_up_with_a_taken_email_writes_nothing(ctx: Context, owner: Account) -> None:
    with pytest.raises(AccountExists):
        drive(ctx, sign_up(ctx, email=owner.email.upper(), password_hash=new_password_hash(PASSWORD)))
    assert ctx.store.find_account_by_email(owner.email) == owner
    assert ctx.store.list_events() == []


def test_the_operators_account_is_created_once_without_a_password(ctx: Context, clock: FrozenClock) -> None:
    created = drive(ctx, ensure_account(ctx, email="operator@keyturn.local", name="Keyturn operator"))
    assert ctx.store.find_account_by_email("operator@keyturn.local") == created
    assert (created.password_hash, created.name, created.created_at) == (None, "Keyturn operator", clock.now())
    clock.advance(60)
    assert drive(ctx, ensure_account(ctx, email="Operator@keyturn.local", name="other")) == created
    assert ctx.store.list_events() == []


def test_the_operators_account_created_meanwhile_is_read_not_duplicated(ctx: Context) -> None:
    flow = ensure_account(ctx, email="operator@keyturn.local", name="Keyturn operator")
    unit = advance(flow)
    assert not isinstance(unit, Done)
    # Another command commits the account between this one's look-up and its commit.
    meanwhile = run(ensure_account(ctx, email="operator@keyturn.local", name="Keyturn operator"))
    with pytest.raises(Conflict):
        unit.commit()
    assert failed(flow, Conflict("email taken")) == Done(meanwhile)


def test_signing_in_replaces_the_browsers_session_and_records_it(
    ctx: Context, owner: Account, clock: FrozenClock
) -> None:
    first = drive(ctx, sign_in(ctx, owner.id, digest("first"), address="192.0.2.1"))
    assert first == Session(digest("first"), owner.id, clock.now(), clock.now() + ctx.settings.session_ttl)
    assert ctx.store.get_session(digest("first")) == first
    clock.advance(60)
    second = drive(ctx, sign_in(ctx, owner.id, digest("second"), address="192.0.2.2", replaces=digest("first")))
    # No session fixation: the browser's old session ends with the sign-in.
    assert ctx.store.get_session(digest("first")) is None
    assert ctx.store.get_session(digest("second")) == second
    events = [(e.kind, e.account_id, dict(e.detail)) for e in reversed(ctx.store.list_events())]
    assert events == [
        ("login.succeeded", owner.id, {"address": "192.0.2.1"}),
        ("login.succeeded", owner.id, {"address": "192.0.2.2"}),
    ]


def test_a_sign_in_that_cannot_be_stored_records_nothing(ctx: Context, owner: Account) -> None:
    drive(ctx, sign_in(ctx, owner.id, digest("s"), address="192.0.2.1"))
    with pytest.raises(Conflict):
        drive(ctx, sign_in(ctx, owner.id, digest("s"), address="192.0.2.2", replaces=digest("old")))
    assert [dict(e.detail) for e in ctx.store.list_events()] == [{"address": "192.0.2.1"}]


def test_a_failed_sign_in_is_recorded_without_an_account(ctx: Context) -> None:
    drive(ctx, sign_in_failed(ctx, address="192.0.2.9"))
    (event,) = ctx.store.list_events()
    assert (event.kind, event.account_id, dict(event.detail)) == ("login.failed", None, {"address": "192.0.2.9"})


def test_signing_out_ends_the_session(ctx: Context, owner: Account) -> None:
    drive(ctx, sign_in(ctx, owner.id, digest("s"), address="192.0.2.1"))
    drive(ctx, sign_out(ctx, digest("s")))
    assert ctx.store.get_session(digest("s")) is None
    drive(ctx, sign_out(ctx, digest("s")))  # gone already: nothing to do
