"""Rotating the signing key from the command line: the new active key and its audit event
are one unit of work, so the log never lacks a key that signs tokens, nor names one that
was not added. The key is made by the key ring (keyturn.tokens.keys.KeyRing.successor);
the caller reloads the ring once the flow has returned."""

from __future__ import annotations

from .context import Context
from .models import SigningKey
from .service import Flow, in_unit
from .unit_of_work import UnitOfWork, audit_detail


def rotate_signing_key(
    ctx: Context, key: SigningKey, retire_active_until: int | None, *, via: str | None = None
) -> Flow[None]:
    """Makes ``key`` the active key; the active one stays published until
    ``retire_active_until`` (None: until removed). Conflict if a concurrent rotation
    committed first (then nothing is written)."""

    def work(unit: UnitOfWork) -> None:
        unit.add_signing_key(key, retire_active_until)
        unit.record("keys.rotated", key.created_at, detail=audit_detail(via, kid=key.kid))

    yield from in_unit(ctx, work)
