"""Rotating the signing key (keyturn.core.key_rotation), from the command line and on the
server's schedule: the new key and its audit event in one unit, on every store, driven
as the server drives it; a rotation that another node's beat writes nothing."""

from __future__ import annotations

import pytest

from keyturn.core.clock import FrozenClock
from keyturn.core.context import Context
from keyturn.core.key_rotation import rotate_for_tokens, rotate_signing_key, rotate_when_due
from keyturn.core.ports import Conflict
from keyturn.tokens.keys import KeyRing, KeySealer

from ..conftest import TEST_SECRET
from .conftest import drive

DAY = 86_400


def ring(ctx: Context, clock: FrozenClock) -> KeyRing:
    """A node's key ring on ctx's store, loaded now."""
    loaded = KeyRing(ctx.store, KeySealer(TEST_SECRET), clock)
    loaded.reload()
    return loaded


def events(ctx: Context) -> list[tuple[str, int, dict[str, object]]]:
    return [(e.kind, e.at, dict(e.detail)) for e in ctx.store.list_events()]


def test_the_new_key_is_active_and_recorded_with_it(ctx: Context, clock: FrozenClock) -> None:
    keys = ring(ctx, clock)
    before = keys.active.kid
    clock.advance(10)
    rotation = keys.successor("ES256", 3600)
    assert (rotation.replaces, rotation.retire_until) == (before, clock.now() + 3600)
    drive(ctx, rotate_signing_key(ctx, rotation, via="cli"))
    keys.reload()
    assert keys.active.kid == rotation.key.kid
    assert [k["kid"] for k in keys.jwks["keys"]] == [rotation.key.kid, before]
    assert events(ctx) == [("keys.rotated", clock.now(), {"kid": rotation.key.kid, "via": "cli"})]


def test_a_rotation_that_conflicts_writes_neither_key_nor_event(ctx: Context, clock: FrozenClock) -> None:
    rotation = ring(ctx, clock).successor("ES256", None)
    drive(ctx, rotate_signing_key(ctx, rotation))
    published = ctx.store.list_signing_keys(clock.now())
    with pytest.raises(Conflict):  # the key it replaces is no longer active, and its id is taken
        drive(ctx, rotate_signing_key(ctx, rotation))
    assert ctx.store.list_signing_keys(clock.now()) == published
    assert [(kind, detail) for kind, _, detail in events(ctx)] == [("keys.rotated", {"kid": rotation.key.kid})]


def test_the_retired_key_stays_published_while_its_tokens_live(ctx: Context, clock: FrozenClock) -> None:
    keys = ring(ctx, clock)
    before = keys.active.kid
    key = drive(ctx, rotate_for_tokens(ctx, keys, via="cli"))
    # The longest access-token lifetime plus a minute of clock skew.
    keep = ctx.settings.access_token_ttl + 60
    published = ctx.store.list_signing_keys(clock.now())
    assert [(k.kid, k.retired_at, k.expires_at) for k in published] == [
        (key.kid, None, None),
        (before, clock.now(), clock.now() + keep),
    ]


def test_the_schedule_rotates_once_the_active_key_is_the_configured_days_old(ctx: Context, clock: FrozenClock) -> None:
    keys = ring(ctx, clock)
    first = keys.active.kid
    assert drive(ctx, rotate_when_due(ctx, keys)) is None  # 0 days: never
    ctx.settings = ctx.settings.with_overrides(signing_key_rotation_days=2)
    clock.advance(2 * DAY - 1)
    assert drive(ctx, rotate_when_due(ctx, keys)) is None
    assert events(ctx) == []
    clock.advance(1)
    key = drive(ctx, rotate_when_due(ctx, keys))
    assert key is not None
    keys.reload()
    assert [k["kid"] for k in keys.jwks["keys"]] == [key.kid, first]
    assert events(ctx) == [("keys.rotated", clock.now(), {"kid": key.kid, "via": "schedule"})]
    assert drive(ctx, rotate_when_due(ctx, keys)) is None  # the new key is not due yet


def test_a_scheduled_rotation_that_loses_to_another_nodes_writes_nothing(ctx: Context, clock: FrozenClock) -> None:
    ctx.settings = ctx.settings.with_overrides(signing_key_rotation_days=1)
    this_node, other_node = ring(ctx, clock), ring(ctx, clock)
    first = this_node.active.kid
    clock.advance(DAY)
    # Both nodes find the key due; the other commits its rotation first (the command's path).
    theirs = drive(ctx, rotate_for_tokens(ctx, other_node, via="cli"))
    assert this_node.active.kid == first  # not reloaded yet: it still finds the key due
    assert drive(ctx, rotate_when_due(ctx, this_node)) is None
    published = ctx.store.list_signing_keys(clock.now())
    assert [(k.kid, k.active) for k in published] == [(theirs.kid, True), (first, False)]
    assert events(ctx) == [("keys.rotated", clock.now(), {"kid": theirs.kid, "via": "cli"})]
    this_node.reload()
    assert this_node.active.kid == theirs.kid
    assert drive(ctx, rotate_when_due(ctx, this_node)) is None
