"""The user's API keys, from the portal (and from the command line: ``create_api_key``
with ``via="cli"``): created, revoked, regenerated. Each operation is
a flow (core/service.py) whose writes and audit event are one unit of work."""

from __future__ import annotations

from collections.abc import Iterable

from .context import Context
from .ownership import NotFound, own_api_key
from .registration import NewApiKey, QueuedApiKey, check_api_key, queue_api_key
from .service import Flow, in_unit
from .unit_of_work import UnitOfWork, audit_detail


def create_api_key(
    ctx: Context,
    account_id: int,
    *,
    name: str,
    scopes: Iterable[str] | None,
    expires_at: int | None,
    via: str | None = None,
) -> Flow[NewApiKey]:
    """A new key of the account's; RegistrationError if the name, scopes or expiry will not
    do. ``via`` names where the change came from in the audit event."""
    catalogue = ctx.settings.scopes
    name, scope_list = check_api_key(ctx.clock, name=name, catalogue=catalogue, scopes=scopes, expires_at=expires_at)

    def work(unit: UnitOfWork) -> QueuedApiKey:
        now = ctx.clock.now()
        queued = queue_api_key(
            unit, ctx.hasher, owner_id=account_id, name=name, scopes=scope_list, now=now, expires_at=expires_at
        )
        unit.record("api_key.created", now, account_id=account_id, detail=audit_detail(via, key_id=queued.id))
        return queued

    return (yield from in_unit(ctx, work)).committed()


def revoke_api_key(ctx: Context, account_id: int, key_id: int) -> Flow[None]:
    """The key stops working now; NotFound unless it is the user's and not revoked."""

    def work(unit: UnitOfWork) -> None:
        key = own_api_key(ctx, account_id, key_id)
        now = ctx.clock.now()
        unit.revoke_api_key(key.id, account_id, now)
        unit.record("api_key.revoked", now, account_id=account_id, detail={"key_id": key.id})

    yield from in_unit(ctx, work)


def regenerate_api_key(ctx: Context, account_id: int, key_id: int) -> Flow[NewApiKey]:
    """A new key with the old one's name, scopes and expiry; the old one stops working in
    the same commit. An ended key is not regenerated (NotFound), least of all into one
    without the expiry its owner chose."""

    def work(unit: UnitOfWork) -> QueuedApiKey:
        old = own_api_key(ctx, account_id, key_id)
        now = ctx.clock.now()
        if old.expires_at is not None and old.expires_at <= now:
            raise NotFound
        unit.revoke_api_key(old.id, account_id, now)
        queued = queue_api_key(
            unit, ctx.hasher, owner_id=account_id, name=old.name, scopes=old.scopes, now=now, expires_at=old.expires_at
        )
        detail = {"key_id": old.id, "new_key_id": queued.id}
        unit.record("api_key.regenerated", now, account_id=account_id, detail=detail)
        return queued

    return (yield from in_unit(ctx, work)).committed()
