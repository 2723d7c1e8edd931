"""Rotating the signing key, from the command line or on the server's schedule
(``signing_key_rotation_days``): the new active key and its "keys.rotated" audit event
are one unit of work, so the log never lacks a key that signs tokens, nor names one that
was not added. The key is made by the key ring (keyturn.tokens.keys.KeyRing); the caller
reloads the ring once the flow has returned.

A rotation replaces the active key the ring saw, and no other: when another node (or the
command) rotated in between, the commit raises Conflict and writes nothing, so that nodes
whose schedules fall due together add one key between them, not one each."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Protocol

from .context import Context
from .models import SigningKey
from .ports import Conflict
from .service import Flow, in_unit
from .unit_of_work import UnitOfWork, audit_detail

_DAY = 86_400


@dataclass(frozen=True, slots=True)
class Rotation:
    #: The new active key.
    key: SigningKey
    #: The kid of the active key it retires; None when there is none yet (the first key).
    replaces: str | None
    #: Until when the retired key stays published (None: until removed).
    retire_until: int | None


class SigningKeys(Protocol):
    """The key ring (keyturn.tokens.keys.KeyRing), as a rotation sees it."""

    def successor(self, alg: str, keep_previous_for: int | None) -> Rotation:
        """A new key to make active in place of the ring's active key, which then stays
        published ``keep_previous_for`` seconds (None: until removed)."""
        ...

    def active_since(self) -> int | None:
        """When the ring's active key was added (None: there is none)."""
        ...


def keep_for_tokens(store_ttl: int | None, settings_ttl: int) -> int:
    """How long a retired key stays published: while tokens it signed may live (the
    longest access-token lifetime), plus a minute for clock skew."""
    return max(settings_ttl, store_ttl or 0) + 60


def rotation_due(ctx: Context, keys: SigningKeys) -> bool:
    """Whether the active key is ``signing_key_rotation_days`` old (0: never due)."""
    days = ctx.settings.signing_key_rotation_days
    created = keys.active_since()
    return days > 0 and created is not None and ctx.clock.now() - created >= days * _DAY


def rotate_signing_key(ctx: Context, rotation: Rotation, *, via: str | None = None) -> Flow[None]:
    """Makes ``rotation.key`` the active key in place of ``rotation.replaces``. Conflict
    if by the commit another key took its place, or the key id is taken (then nothing is
    written)."""
    key = rotation.key

    def work(unit: UnitOfWork) -> None:
        unit.add_signing_key(key, rotation.retire_until, replaces=rotation.replaces)
        unit.record("keys.rotated", key.created_at, detail=audit_detail(via, kid=key.kid))

    yield from in_unit(ctx, work)


def rotate_for_tokens(ctx: Context, keys: SigningKeys, *, via: str) -> Flow[SigningKey]:
    """Rotates to a new key of ``signing_alg``; the retired one stays published while
    tokens it signed may live. Conflict as ``rotate_signing_key``."""
    keep = keep_for_tokens(ctx.store.longest_access_token_ttl(), ctx.settings.access_token_ttl)
    rotation = keys.successor(ctx.settings.signing_alg, keep)
    yield from rotate_signing_key(ctx, rotation, via=via)
    return rotation.key


def rotate_when_due(ctx: Context, keys: SigningKeys) -> Flow[SigningKey | None]:
    """The server's scheduled rotation: the new key when the active one was due and this
    node rotated it; None when it was not due, or another node rotated it first (that is
    no error: its key serves this node as well once the ring is reloaded)."""
    if not rotation_due(ctx, keys):
        return None
    with contextlib.suppress(Conflict):
        return (yield from rotate_for_tokens(ctx, keys, via="schedule"))
    return None
