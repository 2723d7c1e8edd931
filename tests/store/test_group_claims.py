"""Claims inside a group commit (keyturn.store.group_commit): one batch decides the claims
of every unit in it, whoever else claims the same rows, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest

from keyturn.core.models import Client, TokenKind
from keyturn.store.group_commit import GroupUnit
from keyturn.store.sql import SqlStore

from .test_contract import (
    NOW,
    digest,
    make_account,
    make_client,
    make_code,
    make_token,
    revoke_token,
    rotate,
    save_code,
)

SQL_STORES = pytest.mark.parametrize(
    "store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


def _rotation(store: SqlStore, client: Client, label: str, successor: str, blob: bytes) -> GroupUnit:
    pair = [make_token(client, f"at-{successor}"), make_token(client, f"rt-{successor}", kind=TokenKind.REFRESH.value)]
    unit = store.begin()
    unit.rotate_refresh_token(digest(label), NOW + 1, blob, pair)
    return unit


def _refresh_tokens(store: SqlStore, client: Client, *labels: str) -> None:
    unit = store.begin()
    unit.save_tokens([make_token(client, label, kind=TokenKind.REFRESH.value) for label in labels])
    assert unit.commit() is False


@SQL_STORES
def test_one_batch_decides_every_claim_first_come_first_served(store: SqlStore) -> None:
    client = make_client(store, make_account(store))
    _refresh_tokens(store, client, "a", "b", "revoked", "rotated")
    revoke_token(store, digest("revoked"), NOW)
    assert rotate(store, digest("rotated"), NOW, None, []) is True
    code = make_code(client)
    save_code(store, code)

    first_a = _rotation(store, client, "a", "a1", b"first")
    second_a = _rotation(store, client, "a", "a2", b"second")
    b = _rotation(store, client, "b", "b1", b"b")
    revoked = _rotation(store, client, "revoked", "r1", b"r")
    rotated = _rotation(store, client, "rotated", "x1", b"x")
    exchange = store.begin()
    assert exchange.claim_code(code.code_hash, client.client_id, NOW + 1)[1] is False

    lost = store.group.write([first_a, second_a, b, revoked, rotated, exchange])

    assert lost == {second_a, revoked, rotated}
    a = store.find_token(digest("a"))
    assert a is not None
    assert (a.rotated_at, a.retry_blob) == (NOW + 1, b"first")
    assert store.find_token(digest("rt-a1")) is not None
    assert store.find_token(digest("rt-a2")) is None
    assert store.find_token(digest("rt-b1")) is not None
    for label in ("rt-r1", "rt-x1"):
        assert store.find_token(digest(label)) is None
    untouched = store.find_token(digest("revoked"))
    assert untouched is not None
    assert (untouched.rotated_at, untouched.retry_blob) == (None, None)
    consumed, replayed = store.begin().claim_code(code.code_hash, client.client_id, NOW + 2)
    assert consumed is not None
    assert (consumed.consumed_at, replayed) == (NOW + 1, True)


@SQL_STORES
def test_batches_racing_for_the_same_rows_claim_each_row_once(store: SqlStore) -> None:
    """Two writers (two connections, as two processes would have) claim the same
    refresh tokens at once, in opposite arrival order: every token is rotated by exactly
    one of them, and neither fails (no deadlock)."""
    client = make_client(store, make_account(store))
    labels = [f"rt{i:02}" for i in range(40)]
    _refresh_tokens(store, client, *labels)
    batches = {
        writer: [_rotation(store, client, label, f"{writer}-{label}", writer.encode()) for label in order]
        for writer, order in (("one", labels), ("two", labels[::-1]))
    }
    lost: dict[str, frozenset[GroupUnit]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def commit(writer: str) -> None:
        start.wait()
        try:
            lost[writer] = store.group.write(batches[writer])
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            store.connections.close()

    threads = [threading.Thread(target=commit, args=(writer,)) for writer in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    for index, label in enumerate(labels):
        position = {"one": index, "two": len(labels) - 1 - index}
        won = [writer for writer in batches if batches[writer][position[writer]] not in lost[writer]]
        assert len(won) == 1, (label, won)
        token = store.find_token(digest(label))
        assert token is not None
        assert token.retry_blob == won[0].encode()
        assert store.find_token(digest(f"rt-{won[0]}-{label}")) is not None
        other = "two" if won[0] == "one" else "one"
        assert store.find_token(digest(f"rt-{other}-{label}")) is None
