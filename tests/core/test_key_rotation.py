"""Rotating the signing key from the command line (keyturn.core.key_rotation): the new
key and its audit event in one unit, on every store, driven as the server drives it."""

from __future__ import annotations

import pytest

from keyturn.core.clock import FrozenClock
from keyturn.core.context import Context
from keyturn.core.key_rotation import rotate_signing_key
from keyturn.core.ports import Conflict
from keyturn.tokens.keys import KeyRing, KeySealer

from ..conftest import TEST_SECRET
from .conftest import drive


def test_the_new_key_is_active_and_recorded_with_it(ctx: Context, clock: FrozenClock) -> None:
    ring = KeyRing(ctx.store, KeySealer(TEST_SECRET), clock)
    ring.reload()
    before = ring.active.kid
    clock.advance(10)
    key, until = ring.successor("ES256", 3600)
    assert until == clock.now() + 3600
    drive(ctx, rotate_signing_key(ctx, key, until, via="cli"))
    ring.reload()
    assert ring.active.kid == key.kid
    assert [k["kid"] for k in ring.jwks["keys"]] == [key.kid, before]
    assert [(e.kind, e.at, dict(e.detail)) for e in ctx.store.list_events()] == [
        ("keys.rotated", clock.now(), {"kid": key.kid, "via": "cli"})
    ]


def test_a_rotation_that_conflicts_writes_neither_key_nor_event(ctx: Context, clock: FrozenClock) -> None:
    ring = KeyRing(ctx.store, KeySealer(TEST_SECRET), clock)
    key, until = ring.successor("ES256", None)
    drive(ctx, rotate_signing_key(ctx, key, until))
    published = ctx.store.list_signing_keys(clock.now())
    with pytest.raises(Conflict):  # the same key id again
        drive(ctx, rotate_signing_key(ctx, key, until))
    assert ctx.store.list_signing_keys(clock.now()) == published
    assert [(e.kind, dict(e.detail)) for e in ctx.store.list_events()] == [("keys.rotated", {"kid": key.kid})]
