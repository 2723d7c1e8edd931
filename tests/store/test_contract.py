"""The storage contract (core/ports.py) and its unit of work (core/unit_of_work.py), held
against every implementation. Writes of the unit of work are committed here with the
unit's own ``commit``; tests/store/test_group_claims.py holds batches of them."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TypeVar

import pytest

from keyturn.core.models import (
    Account,
    AuthorizationCode,
    Client,
    Consent,
    Session,
    SigningKey,
    Token,
    TokenKind,
)
from keyturn.core.ports import Conflict, Store
from keyturn.core.unit_of_work import Assigned, Unassigned, UnitOfWork
from keyturn.store.sql import SqlStore

NOW = 1_767_225_600
T = TypeVar("T")


def digest(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def make_account(store: Store, email: str = "ann@example.com") -> Account:
    assigned = write(
        store,
        lambda unit: unit.create_account(email=email, password_hash="$argon2id$x", now=NOW, name="Ann", company="Acme"),
    )
    account = store.get_account(assigned.value)
    assert account is not None
    return account


def make_client(store: Store, owner: Account, client_id: str = "client-1", **changes: object) -> Client:
    client = Client(
        client_id=client_id,
        name="App",
        owner_id=owner.id,
        secret_hash=digest("secret"),
        redirect_uris=("https://app.example.com/cb",),
        scopes=("sms", "balance"),
        created_at=NOW,
        updated_at=NOW,
    )
    client = replace(client, **changes)  # type: ignore[arg-type]
    write(store, lambda unit: unit.add_client(client))
    return client


def make_token(client: Client, label: str, grant_id: str = "grant-1", kind: str = TokenKind.ACCESS.value) -> Token:
    return Token(
        token_hash=digest(label),
        kind=kind,
        client_id=client.client_id,
        account_id=client.owner_id,
        scopes=("sms",),
        grant_id=grant_id,
        created_at=NOW,
        expires_at=NOW + 3600,
    )


def make_code(client: Client, label: str = "code") -> AuthorizationCode:
    return AuthorizationCode(
        code_hash=digest(label),
        client_id=client.client_id,
        account_id=client.owner_id,
        scopes=("sms", "balance"),
        redirect_uri="https://app.example.com/cb",
        code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        code_challenge_method="S256",
        grant_id="grant-code",
        created_at=NOW,
        expires_at=NOW + 60,
    )


# ---- writes through a unit of work, each committed on its own ----


def commit(unit: UnitOfWork) -> None:
    assert unit.commit() is False, "the unit's claim was lost"


def write(store: Store, work: Callable[[UnitOfWork], T]) -> T:
    """``work`` in a unit, committed."""
    unit = store.begin()
    result = work(unit)
    commit(unit)
    return result


def add_api_key(store: Store, owner: Account, label: str, **options: object) -> int:
    """A key (hash ``digest(label)``, named ``label``) added in a unit of its own; its id."""
    values: dict[str, object] = {"display_prefix": "kt_key_abcd", "scopes": None, "now": NOW, **options}
    assigned = write(
        store,
        lambda unit: unit.add_api_key(key_hash=digest(label), owner_id=owner.id, name=label, **values),  # type: ignore[arg-type]
    )
    return assigned.value


def save_tokens(store: Store, tokens: list[Token]) -> None:
    unit = store.begin()
    unit.save_tokens(tokens)
    commit(unit)


def save_code(store: Store, code: AuthorizationCode) -> None:
    unit = store.begin()
    unit.save_code(code)
    commit(unit)


def save_consent(store: Store, consent: Consent) -> None:
    unit = store.begin()
    unit.save_consent(consent)
    commit(unit)


def consume_code(store: Store, code_hash: bytes, client_id: str, now: int) -> tuple[AuthorizationCode | None, bool]:
    unit = store.begin()
    found = unit.claim_code(code_hash, client_id, now)
    commit(unit)
    return found


def rotate(store: Store, token_hash: bytes, now: int, retry_blob: bytes | None, new_tokens: list[Token]) -> bool:
    """Whether the rotation's claim won."""
    unit = store.begin()
    unit.rotate_refresh_token(token_hash, now, retry_blob, new_tokens)
    return not unit.commit()


def revoke_token(store: Store, token_hash: bytes, now: int) -> None:
    unit = store.begin()
    unit.revoke_token(token_hash, now)
    commit(unit)


def revoke_grant(store: Store, grant_id: str, now: int) -> int:
    unit = store.begin()
    live = unit.revoke_grant(grant_id, now)
    commit(unit)
    return live


# ---- accounts ----


def test_account_round_trip(store: Store) -> None:
    assigned = write(
        store,
        lambda unit: unit.create_account(
            email="Ann@Example.com",
            password_hash="$argon2id$hash",
            now=NOW,
            name="Ann",
            company="Acme Inc",
            alias="acme_inc",
            attributes={"balance": "627.3615"},
        ),
    )
    assert assigned.value >= 1
    loaded = store.get_account(assigned.value)
    assert loaded is not None
    assert (loaded.id, loaded.password_hash, loaded.name, loaded.company, loaded.alias) == (
        assigned.value,
        "$argon2id$hash",
        "Ann",
        "Acme Inc",
        "acme_inc",
    )
    assert loaded.attributes == {"balance": "627.3615"}
    assert loaded.email == "Ann@Example.com"
    assert (loaded.created_at, loaded.updated_at, loaded.disabled) == (NOW, NOW, False)


def test_account_email_lookup_ignores_case(store: Store) -> None:
    created = make_account(store, "Ann@Example.com")
    assert store.find_account_by_email("ann@example.COM") == created
    assert store.find_account_by_email("bob@example.com") is None
    assert store.get_account(created.id + 100) is None


def test_account_email_is_unique_whatever_the_case(store: Store) -> None:
    make_account(store, "ann@example.com")
    with pytest.raises(Conflict):
        make_account(store, "ANN@example.com")


def test_account_ids_are_distinct(store: Store) -> None:
    first, second = make_account(store, "a@example.com"), make_account(store, "b@example.com")
    assert first.id != second.id


def test_a_unit_creates_an_account_numbered_at_the_commit(store: Store) -> None:
    unit = store.begin()
    assigned = unit.create_account(email="Ann@Example.com", password_hash="$argon2id$x", now=NOW, company="Acme")
    unit.record("account.created", NOW, detail={"account_id": assigned, "via": "test"})
    commit(unit)
    account = store.find_account_by_email("ann@example.com")
    assert account is not None
    assert (account.id, account.email, account.company, account.created_at) == (
        assigned.value,
        "Ann@Example.com",
        "Acme",
        NOW,
    )
    (event,) = store.list_events(kind="account.created")
    assert dict(event.detail) == {"account_id": assigned.value, "via": "test"}


def test_a_taken_email_fails_the_unit_at_the_commit_and_writes_none_of_it(store: Store) -> None:
    owner = make_account(store, "ann@example.com")
    unit = store.begin()
    unit.add_client(replace(make_client_record(owner), client_id="new-client"))
    unit.create_session(Session(digest("s"), owner.id, NOW, NOW + 60))
    unit.create_account(email="ANN@example.com", password_hash=None, now=NOW)
    unit.record("account.created", NOW)
    with pytest.raises(Conflict):
        unit.commit()
    assert store.get_client("new-client") is None
    assert store.get_session(digest("s")) is None
    assert store.list_events() == []


# ---- cold writes: one unit, one transaction of its own ----


def make_client_record(owner: Account) -> Client:
    return Client(client_id="client-x", name="X", owner_id=owner.id, secret_hash=None, created_at=NOW, updated_at=NOW)


def test_a_conflict_in_the_middle_of_a_unit_undoes_the_writes_before_it(store: Store) -> None:
    owner = make_account(store)
    taken = make_client(store, owner)
    key_id = add_api_key(store, owner, "old")
    unit = store.begin()
    unit.revoke_api_key(key_id, owner.id, NOW + 1)
    unit.add_api_key(key_hash=digest("new"), owner_id=owner.id, name="new", display_prefix="p", scopes=None, now=NOW)
    unit.add_client(replace(taken, name="Duplicate"))
    unit.create_session(Session(digest("s"), owner.id, NOW, NOW + 60))
    unit.record("api_key.regenerated", NOW + 1, account_id=owner.id)
    with pytest.raises(Conflict):
        unit.commit()
    assert [(k.name, k.revoked_at) for k in store.list_api_keys(owner.id)] == [("old", None)]
    assert store.get_client(taken.client_id) == taken
    assert store.get_session(digest("s")) is None
    assert store.list_events() == []


def test_cold_writes_are_made_in_the_order_they_were_queued(store: Store) -> None:
    owner = make_account(store)
    client = make_client_record(owner)
    session = Session(digest("s"), owner.id, NOW, NOW + 60)
    write(store, lambda unit: unit.create_session(session))
    unit = store.begin()
    unit.add_client(client)
    unit.update_client(replace(client, name="Renamed"))
    unit.delete_session(session.session_hash)
    unit.create_session(replace(session, expires_at=NOW + 120))  # the same hash: replaced
    commit(unit)
    assert store.get_client(client.client_id) == replace(client, name="Renamed")
    assert store.get_session(session.session_hash) == replace(session, expires_at=NOW + 120)


def test_an_event_names_the_id_its_unit_assigns(store: Store) -> None:
    owner = make_account(store)
    add_api_key(store, owner, "first")
    unit = store.begin()
    assigned = unit.add_api_key(
        key_hash=digest("k"), owner_id=owner.id, name="k", display_prefix="p", scopes=None, now=NOW
    )
    unit.record("api_key.created", NOW, account_id=owner.id, detail={"key_id": assigned})
    unit.record("plain", NOW, account_id=owner.id, detail={"n": 1})
    commit(unit)
    key = store.find_api_key(digest("k"))
    assert key is not None
    assert {e.kind: dict(e.detail) for e in store.list_events()} == {
        "api_key.created": {"key_id": key.id},
        "plain": {"n": 1},
    }


def test_a_unit_of_cold_writes_claims_and_issues_nothing(store: Store) -> None:
    owner = make_account(store)
    client = make_client(store, owner)
    unit = store.begin()
    unit.save_tokens([make_token(client, "at")])
    unit.create_session(Session(digest("s"), owner.id, NOW, NOW + 60))
    with pytest.raises(RuntimeError, match="cold writes"):
        unit.commit()
    assert store.find_token(digest("at")) is None
    assert store.get_session(digest("s")) is None


def test_a_unit_of_cold_writes_that_fails_fails_alone(store: Store) -> None:
    """The server commits both as one request each, in the same turn: the token request's
    unit is not the sign-up's, whose taken email fails it alone."""
    owner = make_account(store)
    client = make_client(store, owner)
    hot, cold = store.begin(), store.begin()
    hot.save_tokens([make_token(client, "at")])
    hot.record("token.issued", NOW, client_id=client.client_id)
    cold.create_account(email=owner.email, password_hash=None, now=NOW)

    async def together() -> list[bool | BaseException]:
        if isinstance(store, SqlStore):
            commits = [store.group.commit(unit) for unit in (hot, cold)]
            return await asyncio.gather(*commits, return_exceptions=True)
        return [hot.commit(), *await asyncio.gather(asyncio.to_thread(cold.commit), return_exceptions=True)]

    hot_lost, cold_error = asyncio.run(together())
    assert hot_lost is False
    assert isinstance(cold_error, Conflict)
    assert store.find_token(digest("at")) is not None
    assert [e.kind for e in store.list_events()] == ["token.issued"]


def test_an_assigned_id_is_unknown_before_the_commit() -> None:
    assigned = Assigned()
    with pytest.raises(Unassigned):
        assert assigned.value
    assigned.assign(7)
    assert assigned.value == 7


# ---- clients ----


def test_client_round_trip_keeps_every_field(store: Store) -> None:
    owner = make_account(store)
    client = Client(
        client_id="abc",
        name="Dashboard",
        owner_id=owner.id,
        secret_hash=digest("s"),
        redirect_uris=("https://a.example/cb", "https://b.example/cb"),
        grant_types=("authorization_code", "refresh_token", "client_credentials"),
        scopes=("sms", "voice"),
        required_scopes=("sms",),
        kind="access_key",
        allow_implicit=True,
        first_party=True,
        remember_consent=False,
        token_format="jwt",
        access_token_ttl=7200,
        refresh_token_ttl=86400,
        created_at=NOW,
        updated_at=NOW + 1,
    )
    write(store, lambda unit: unit.add_client(client))
    assert store.get_client("abc") == client
    assert store.get_client("missing") is None


def test_public_client_has_no_secret(store: Store) -> None:
    owner = make_account(store)
    make_client(store, owner, "public", secret_hash=None)
    loaded = store.get_client("public")
    assert loaded is not None
    assert loaded.secret_hash is None
    assert not loaded.confidential


def test_client_id_is_unique(store: Store) -> None:
    owner = make_account(store)
    make_client(store, owner)
    with pytest.raises(Conflict):
        make_client(store, owner)


def test_clients_are_listed_per_owner(store: Store) -> None:
    ann, bob = make_account(store, "ann@example.com"), make_account(store, "bob@example.com")
    make_client(store, ann, "a1")
    make_client(store, bob, "b1")
    make_client(store, ann, "a2")
    assert [c.client_id for c in store.list_clients(ann.id)] == ["a1", "a2"]
    assert [c.client_id for c in store.list_clients(bob.id)] == ["b1"]


def test_client_update(store: Store) -> None:
    owner = make_account(store)
    client = make_client(store, owner)
    changed = replace(client, name="Renamed", scopes=("sms",))
    write(store, lambda unit: unit.update_client(changed))
    assert store.get_client(client.client_id) == changed
    ghost = replace(client, client_id="ghost")
    write(store, lambda unit: unit.update_client(ghost))  # gone meanwhile: nothing to change
    assert store.get_client("ghost") is None


def test_deleting_a_client_deletes_its_codes_tokens_and_consents(store: Store) -> None:
    owner = make_account(store)
    client = make_client(store, owner)
    other = make_client(store, owner, "other")
    save_code(store, make_code(client))
    save_tokens(store, [make_token(client, "t1"), make_token(other, "t2")])
    save_consent(store, Consent(owner.id, client.client_id, ("sms",), NOW, NOW))
    write(store, lambda unit: unit.delete_client(client.client_id))
    assert store.get_client(client.client_id) is None
    assert store.find_token(digest("t1")) is None
    assert store.find_token(digest("t2")) is not None
    assert store.get_consent(owner.id, client.client_id) is None
    assert consume_code(store, digest("code"), client.client_id, NOW) == (None, False)
    assert store.get_client(other.client_id) is not None


# ---- API keys ----


def test_api_key_round_trip(store: Store) -> None:
    owner = make_account(store)
    unit = store.begin()
    assigned = unit.add_api_key(
        key_hash=digest("key"), owner_id=owner.id, name="CI", display_prefix="kt_key_abcd", scopes=("sms",), now=NOW
    )
    with pytest.raises(Unassigned):  # the database numbers the key at the commit
        assert assigned.value
    commit(unit)
    key = store.find_api_key(digest("key"))
    assert key is not None
    assert key.id == assigned.value
    assert (key.owner_id, key.name, key.display_prefix, key.scopes, key.created_at) == (
        owner.id,
        "CI",
        "kt_key_abcd",
        ("sms",),
        NOW,
    )
    assert (key.revoked_at, key.last_used_at, key.expires_at) == (None, None, None)
    assert store.find_api_key(digest("other")) is None


def test_api_key_without_scope_restriction(store: Store) -> None:
    owner = make_account(store)
    add_api_key(store, owner, "k", scopes=None)
    found = store.find_api_key(digest("k"))
    assert found is not None
    assert found.scopes is None


def test_api_key_ids_are_distinct_and_in_order(store: Store) -> None:
    owner = make_account(store)
    first, second = add_api_key(store, owner, "a"), add_api_key(store, owner, "b")
    assert first < second
    assert [k.id for k in store.list_api_keys(owner.id)] == [first, second]


def test_api_key_revocation_is_owner_only_and_once(store: Store) -> None:
    ann, bob = make_account(store, "ann@example.com"), make_account(store, "bob@example.com")
    key_id = add_api_key(store, ann, "k")
    write(store, lambda unit: unit.revoke_api_key(key_id, bob.id, NOW + 5))
    assert store.find_api_key(digest("k")).revoked_at is None  # type: ignore[union-attr]
    write(store, lambda unit: unit.revoke_api_key(key_id, ann.id, NOW + 5))
    write(store, lambda unit: unit.revoke_api_key(key_id, ann.id, NOW + 6))  # the first time stays
    found = store.find_api_key(digest("k"))
    assert found is not None
    assert found.revoked_at == NOW + 5


def test_api_key_use_is_recorded(store: Store) -> None:
    owner = make_account(store)
    key_id = add_api_key(store, owner, "k")
    write(store, lambda unit: unit.touch_api_key(key_id, NOW + 30))
    found = store.find_api_key(digest("k"))
    assert found is not None
    assert found.last_used_at == NOW + 30


def test_api_keys_are_listed_per_owner_and_unique(store: Store) -> None:
    ann, bob = make_account(store, "ann@example.com"), make_account(store, "bob@example.com")
    add_api_key(store, ann, "one")
    add_api_key(store, bob, "two")
    assert [k.name for k in store.list_api_keys(ann.id)] == ["one"]
    with pytest.raises(Conflict):
        add_api_key(store, bob, "one")
    assert [k.name for k in store.list_api_keys(bob.id)] == ["two"]


# ---- authorization codes ----


def test_code_is_consumed_exactly_once(store: Store) -> None:
    client = make_client(store, make_account(store))
    code = make_code(client)
    save_code(store, code)
    first, replayed = consume_code(store, code.code_hash, client.client_id, NOW + 1)
    assert replayed is False
    assert first is not None
    assert first.consumed_at == NOW + 1
    assert (first.scopes, first.redirect_uri, first.code_challenge) == (
        code.scopes,
        code.redirect_uri,
        code.code_challenge,
    )
    second, replayed = consume_code(store, code.code_hash, client.client_id, NOW + 2)
    assert replayed is True
    assert second is not None
    assert second.consumed_at == NOW + 1
    assert second.grant_id == "grant-code"


def test_a_code_presented_by_another_client_is_left_untouched(store: Store) -> None:
    owner = make_account(store)
    client, other = make_client(store, owner), make_client(store, owner, "other")
    code = make_code(client)
    save_code(store, code)
    assert consume_code(store, code.code_hash, other.client_id, NOW + 1) == (None, False)
    mine, replayed = consume_code(store, code.code_hash, client.client_id, NOW + 2)
    assert mine is not None
    assert (mine.consumed_at, replayed) == (NOW + 2, False)


def test_unknown_code(store: Store) -> None:
    assert consume_code(store, digest("nope"), "client-1", NOW) == (None, False)


# ---- tokens ----


def test_tokens_round_trip(store: Store) -> None:
    client = make_client(store, make_account(store))
    access = make_token(client, "at")
    refresh = make_token(client, "rt", kind=TokenKind.REFRESH.value)
    save_tokens(store, [access, refresh])
    assert store.find_token(access.token_hash) == access
    assert store.find_token(refresh.token_hash) == refresh
    assert store.find_token(digest("none")) is None


def test_saving_a_duplicate_token_saves_nothing(store: Store) -> None:
    client = make_client(store, make_account(store))
    save_tokens(store, [make_token(client, "a")])
    with pytest.raises(Conflict):
        save_tokens(store, [make_token(client, "b"), make_token(client, "a")])
    assert store.find_token(digest("b")) is None


def test_refresh_rotation_happens_once(store: Store) -> None:
    client = make_client(store, make_account(store))
    old = make_token(client, "rt0", kind=TokenKind.REFRESH.value)
    save_tokens(store, [old])
    new_pair = [make_token(client, "at1"), make_token(client, "rt1", kind=TokenKind.REFRESH.value)]
    assert rotate(store, old.token_hash, NOW + 10, b"sealed", new_pair) is True
    rotated = store.find_token(old.token_hash)
    assert rotated is not None
    assert (rotated.rotated_at, rotated.retry_blob, rotated.revoked_at) == (NOW + 10, b"sealed", None)
    assert store.find_token(digest("rt1")) is not None
    # A second rotation of the same token loses and writes nothing.
    again = [make_token(client, "at2"), make_token(client, "rt2", kind=TokenKind.REFRESH.value)]
    assert rotate(store, old.token_hash, NOW + 11, b"other", again) is False
    assert store.find_token(digest("rt2")) is None
    unchanged = store.find_token(old.token_hash)
    assert unchanged is not None
    assert unchanged.retry_blob == b"sealed"


def test_a_revoked_refresh_token_cannot_rotate(store: Store) -> None:
    client = make_client(store, make_account(store))
    old = make_token(client, "rt0", kind=TokenKind.REFRESH.value)
    save_tokens(store, [old])
    revoke_token(store, old.token_hash, NOW)
    assert rotate(store, old.token_hash, NOW + 1, None, [make_token(client, "at1")]) is False
    assert store.find_token(digest("at1")) is None


def test_revoke_token(store: Store) -> None:
    client = make_client(store, make_account(store))
    save_tokens(store, [make_token(client, "a")])
    revoke_token(store, digest("a"), NOW + 3)
    revoke_token(store, digest("a"), NOW + 4)  # revoked already: it stays as it was
    revoke_token(store, digest("unknown"), NOW + 4)
    token = store.find_token(digest("a"))
    assert token is not None
    assert token.revoked_at == NOW + 3


def test_revoke_grant_revokes_the_family_only(store: Store) -> None:
    client = make_client(store, make_account(store))
    save_tokens(store, [make_token(client, "a", "g1"), make_token(client, "b", "g1"), make_token(client, "c", "g2")])
    revoke_token(store, digest("b"), NOW)
    assert revoke_grant(store, "g1", NOW + 1) == 1
    a, b, c = (store.find_token(digest(x)) for x in "abc")
    assert a is not None
    assert b is not None
    assert c is not None
    assert (a.revoked_at, b.revoked_at, c.revoked_at) == (NOW + 1, NOW, None)


def test_a_unit_that_lost_its_claim_writes_nothing(store: Store) -> None:
    client = make_client(store, make_account(store))
    code = make_code(client)
    save_code(store, code)
    first, second = store.begin(), store.begin()
    for unit in (first, second):
        assert unit.claim_code(code.code_hash, client.client_id, NOW + 1)[1] is False
        unit.save_tokens([make_token(client, f"at-{id(unit)}")])
        unit.record("token.issued", NOW + 1, client_id=client.client_id)
        unit.revoke_grant("grant-1", NOW + 1)
    assert first.commit() is False
    assert second.commit() is True
    assert store.find_token(digest(f"at-{id(first)}")) is not None
    assert store.find_token(digest(f"at-{id(second)}")) is None
    assert len(store.list_events(kind="token.issued")) == 1


def test_a_revocation_reaches_the_tokens_saved_by_the_same_commit(store: Store) -> None:
    client = make_client(store, make_account(store))
    save_tokens(store, [make_token(client, "a", "g1")])
    unit = store.begin()
    unit.save_tokens([make_token(client, "b", "g1")])
    assert unit.revoke_grant("g1", NOW + 1) == 1  # live before the commit
    commit(unit)
    assert [store.find_token(digest(x)).revoked_at for x in "ab"] == [NOW + 1, NOW + 1]  # type: ignore[union-attr]


def test_a_failed_request_keeps_its_record_and_claim_but_issues_nothing(store: Store) -> None:
    client = make_client(store, make_account(store))
    code = make_code(client)
    save_code(store, code)
    unit = store.begin()
    unit.claim_code(code.code_hash, client.client_id, NOW + 1)
    unit.save_tokens([make_token(client, "at")])
    unit.save_code(make_code(client, "another"))
    unit.record("token.failed", NOW + 1)
    unit.discard_issued()
    assert unit.empty is False
    commit(unit)
    assert store.find_token(digest("at")) is None
    assert consume_code(store, digest("another"), client.client_id, NOW + 2) == (None, False)
    assert consume_code(store, code.code_hash, client.client_id, NOW + 2)[1] is True
    assert [e.kind for e in store.list_events()] == ["token.failed"]


def test_a_unit_makes_one_claim_at_most(store: Store) -> None:
    unit = store.begin()
    assert unit.empty is True
    unit.rotate_refresh_token(digest("rt"), NOW, None, [])
    assert unit.empty is False
    with pytest.raises(RuntimeError, match="one claim"):
        unit.rotate_refresh_token(digest("other"), NOW, None, [])


def test_revoke_tokens_of_an_account_for_a_client(store: Store) -> None:
    ann, bob = make_account(store, "ann@example.com"), make_account(store, "bob@example.com")
    client = make_client(store, ann)
    other = make_client(store, ann, "other")
    bobs = replace(make_token(client, "bob"), account_id=bob.id)
    save_tokens(store, [make_token(client, "ann1"), make_token(client, "ann2", "g2"), make_token(other, "ann3"), bobs])
    unit = store.begin()
    assert unit.revoke_tokens_of(ann.id, client.client_id, NOW) == 2  # live before the commit
    commit(unit)
    assert store.find_token(digest("ann3")).revoked_at is None  # type: ignore[union-attr]
    assert store.find_token(digest("bob")).revoked_at is None  # type: ignore[union-attr]
    assert store.find_token(digest("ann1")).revoked_at == NOW  # type: ignore[union-attr]


# ---- consents ----


def test_consent_upsert_list_delete(store: Store) -> None:
    owner = make_account(store)
    client = make_client(store, owner)
    save_consent(store, Consent(owner.id, client.client_id, ("sms",), NOW, NOW))
    save_consent(store, Consent(owner.id, client.client_id, ("sms", "balance"), NOW + 5, NOW + 5))
    consent = store.get_consent(owner.id, client.client_id)
    assert consent == Consent(owner.id, client.client_id, ("sms", "balance"), NOW, NOW + 5)
    assert store.list_consents(owner.id) == [consent]
    write(store, lambda unit: unit.delete_consent(owner.id, client.client_id))
    write(store, lambda unit: unit.delete_consent(owner.id, client.client_id))  # gone already: nothing
    assert store.get_consent(owner.id, client.client_id) is None
    assert store.list_consents(owner.id) == []


# ---- sessions ----


def test_sessions_are_created_found_and_deleted(store: Store) -> None:
    owner = make_account(store)
    session = Session(session_hash=digest("s1"), account_id=owner.id, created_at=NOW, expires_at=NOW + 3600)
    write(store, lambda unit: unit.create_session(session))
    assert store.get_session(digest("s1")) == session
    assert store.get_session(digest("s2")) is None
    with pytest.raises(Conflict):
        write(store, lambda unit: unit.create_session(session))
    write(store, lambda unit: unit.delete_session(digest("s1")))
    write(store, lambda unit: unit.delete_session(digest("s1")))  # gone already: nothing
    assert store.get_session(digest("s1")) is None


def test_a_session_is_found_with_its_accounts_consent_to_one_client(store: Store) -> None:
    owner, other = make_account(store), make_account(store, "bob@example.com")
    client = make_client(store, owner)
    second = make_client(store, owner, "client-2")
    mine = Session(digest("s-ann"), owner.id, NOW, NOW + 3600)
    theirs = Session(digest("s-bob"), other.id, NOW, NOW + 3600)
    write(store, lambda unit: unit.create_session(mine))
    write(store, lambda unit: unit.create_session(theirs))
    consent = Consent(owner.id, client.client_id, ("sms", "balance"), NOW, NOW + 5)
    save_consent(store, consent)
    save_consent(store, Consent(other.id, second.client_id, ("sms",), NOW, NOW))

    assert store.get_session_and_consent(digest("s-ann"), client.client_id) == (mine, consent)
    # A consent to another client, or another account's consent, is not this one.
    assert store.get_session_and_consent(digest("s-ann"), second.client_id) == (mine, None)
    assert store.get_session_and_consent(digest("s-bob"), client.client_id) == (theirs, None)
    assert store.get_session_and_consent(digest("s-none"), client.client_id) == (None, None)


# ---- signing keys ----


def signing_key(kid: str, created_at: int) -> SigningKey:
    return SigningKey(
        kid=kid,
        alg="ES256",
        public_jwk={"kty": "EC", "kid": kid},
        private_key_sealed=b"sealed-" + kid.encode(),
        created_at=created_at,
    )


def add_key(store: Store, kid: str, created_at: int, replaces: str | None, retire_until: int | None = None) -> None:
    """``kid`` as the active key in place of ``replaces``, in a unit of its own."""
    write(store, lambda unit: unit.add_signing_key(signing_key(kid, created_at), retire_until, replaces=replaces))


def test_adding_a_signing_key_retires_the_active_one(store: Store) -> None:
    add_key(store, "k1", NOW, replaces=None)
    add_key(store, "k2", NOW + 10, replaces="k1", retire_until=NOW + 100)
    keys = store.list_signing_keys(NOW + 20)
    assert [k.kid for k in keys] == ["k2", "k1"]
    assert keys[0].active
    assert (keys[1].retired_at, keys[1].expires_at) == (NOW + 10, NOW + 100)
    assert keys[1].private_key_sealed == b"sealed-k1"
    assert dict(keys[0].public_jwk) == {"kty": "EC", "kid": "k2"}
    # Past its expiry the retired key is no longer published.
    assert [k.kid for k in store.list_signing_keys(NOW + 100)] == ["k2"]


def test_rotation_within_one_second_keeps_the_new_key_first(store: Store) -> None:
    add_key(store, "k1", NOW, replaces=None)
    add_key(store, "k2", NOW, replaces="k1")
    keys = store.list_signing_keys(NOW)
    assert [(k.kid, k.active) for k in keys] == [("k2", True), ("k1", False)]


def test_a_first_key_is_added_only_when_there_is_no_active_one(store: Store) -> None:
    add_key(store, "k1", NOW, replaces=None)
    with pytest.raises(Conflict):
        add_key(store, "k2", NOW, replaces=None)
    assert [(k.kid, k.active) for k in store.list_signing_keys(NOW)] == [("k1", True)]


def test_a_key_replaces_only_the_active_key_it_names(store: Store) -> None:
    add_key(store, "k1", NOW, replaces=None)
    add_key(store, "k2", NOW + 10, replaces="k1", retire_until=NOW + 100)
    # A rotation that saw k1 active, committed after k2's: another rotation won.
    with pytest.raises(Conflict):
        add_key(store, "k3", NOW + 10, replaces="k1", retire_until=NOW + 200)
    with pytest.raises(Conflict):
        add_key(store, "k3", NOW + 10, replaces="nowhere")
    keys = store.list_signing_keys(NOW + 20)
    assert [(k.kid, k.active, k.expires_at) for k in keys] == [("k2", True, None), ("k1", False, NOW + 100)]


def test_two_rotations_of_one_key_at_once_add_one_key(store: Store) -> None:
    add_key(store, "k1", NOW, replaces=None)
    start = threading.Barrier(2)

    def rotate(kid: str) -> str:
        start.wait()
        try:
            add_key(store, kid, NOW + 10, replaces="k1", retire_until=NOW + 100)
        except Conflict:
            return "lost"
        return "won"

    with ThreadPoolExecutor(2) as pool:
        outcomes = dict(zip(("k2", "k3"), pool.map(rotate, ("k2", "k3")), strict=True))
    assert sorted(outcomes.values()) == ["lost", "won"]
    (winner,) = (kid for kid, outcome in outcomes.items() if outcome == "won")
    keys = store.list_signing_keys(NOW + 20)
    assert [(k.kid, k.active, k.expires_at) for k in keys] == [(winner, True, None), ("k1", False, NOW + 100)]


def test_signing_key_id_is_unique(store: Store) -> None:
    add_key(store, "k1", NOW, replaces=None)
    with pytest.raises(Conflict):
        add_key(store, "k1", NOW + 1, replaces="k1")
    # The failed insert retired nothing.
    assert [k.active for k in store.list_signing_keys(NOW + 1)] == [True]


def test_a_signing_key_added_in_a_unit_commits_with_its_audit_event(store: Store) -> None:
    add_key(store, "k1", NOW, replaces=None)

    def rotate(unit: UnitOfWork, kid: str, replaces: str) -> None:
        unit.add_signing_key(signing_key(kid, NOW + 10), retire_active_until=NOW + 100, replaces=replaces)
        unit.record("keys.rotated", NOW + 10, detail={"kid": kid})

    write(store, lambda unit: rotate(unit, "k2", "k1"))
    keys = store.list_signing_keys(NOW + 20)
    assert [(k.kid, k.active, k.expires_at) for k in keys] == [("k2", True, None), ("k1", False, NOW + 100)]
    assert [(e.kind, dict(e.detail)) for e in store.list_events()] == [("keys.rotated", {"kid": "k2"})]
    # A key id taken: the unit writes neither the key nor its event, and retires nothing.
    with pytest.raises(Conflict):
        write(store, lambda unit: rotate(unit, "k1", "k2"))
    # The active key not the one it replaces: the same.
    with pytest.raises(Conflict):
        write(store, lambda unit: rotate(unit, "k3", "k1"))
    assert [(k.kid, k.active) for k in store.list_signing_keys(NOW + 20)] == [("k2", True), ("k1", False)]
    assert len(store.list_events()) == 1


# ---- audit ----


def test_audit_events_newest_first_and_filtered(store: Store) -> None:
    write(store, lambda unit: unit.record("login", NOW, account_id=1, detail={"ip": "127.0.0.1"}))
    detail = {"grant": "client_credentials"}
    write(store, lambda unit: unit.record("token.issued", NOW + 1, account_id=1, client_id="c", detail=detail))
    write(store, lambda unit: unit.record("login", NOW + 2, account_id=2))
    events = store.list_events()
    assert [(e.kind, e.at) for e in events] == [("login", NOW + 2), ("token.issued", NOW + 1), ("login", NOW)]
    assert events[1].client_id == "c"
    assert dict(events[1].detail) == {"grant": "client_credentials"}
    assert [e.at for e in store.list_events(kind="login", limit=1)] == [NOW + 2]


# ---- housekeeping ----


def test_purge_deletes_only_what_ended_before_the_cutoff_in_batches(store: Store) -> None:
    owner = make_account(store)
    client = make_client(store, owner)
    expired = [replace(make_token(client, f"old{i}"), expires_at=NOW - 10) for i in range(5)]
    save_tokens(store, [*expired, make_token(client, "live")])
    assert store.purge("tokens", NOW, 2) == 2
    assert store.purge("tokens", NOW, 10) == 3
    assert store.purge("tokens", NOW, 10) == 0
    assert store.find_token(digest("live")) is not None
    assert all(store.find_token(t.token_hash) is None for t in expired)


def test_purge_codes_sessions_keys_and_audit(store: Store) -> None:
    owner = make_account(store)
    client = make_client(store, owner)
    save_code(store, replace(make_code(client, "old"), expires_at=NOW - 1))
    save_code(store, make_code(client, "new"))
    write(store, lambda unit: unit.create_session(Session(digest("s-old"), owner.id, NOW - 100, NOW - 1)))
    write(store, lambda unit: unit.create_session(Session(digest("s-new"), owner.id, NOW, NOW + 100)))
    revoked = add_api_key(store, owner, "a")
    write(store, lambda unit: unit.revoke_api_key(revoked, owner.id, NOW - 5))
    add_api_key(store, owner, "b", expires_at=NOW - 1)
    add_api_key(store, owner, "c")
    write(store, lambda unit: unit.record("old", NOW - 10))
    write(store, lambda unit: unit.record("new", NOW))
    assert store.purge("authorization_codes", NOW, 100) == 1
    assert store.purge("sessions", NOW, 100) == 1
    assert store.purge("api_keys", NOW, 100) == 2
    assert store.purge("audit_events", NOW, 100) == 1
    assert consume_code(store, digest("new"), client.client_id, NOW)[0] is not None
    assert store.get_session(digest("s-new")) is not None
    assert [k.name for k in store.list_api_keys(owner.id)] == ["c"]
    assert [e.kind for e in store.list_events()] == ["new"]


def test_the_longest_per_client_access_token_lifetime(store: Store) -> None:
    owner = make_account(store)
    assert store.longest_access_token_ttl() is None
    make_client(store, owner, "a", access_token_ttl=7200)
    make_client(store, owner, "b", access_token_ttl=600)
    make_client(store, owner, "c")
    assert store.longest_access_token_ttl() == 7200
