"""Signing in and out of the pages: the session and the audit trail of each sign-in,
written as one unit of work. The caller makes the session's secret (the cookie) and
gives its keyed digest; the password check and the throttling come before."""

from __future__ import annotations

from .context import Context
from .models import Session
from .service import Flow, in_unit
from .unit_of_work import UnitOfWork


def sign_in(
    ctx: Context, account_id: int, session_hash: bytes, *, address: str, replaces: bytes | None = None
) -> Flow[Session]:
    """A new session for the account, ending the one the browser had (``replaces``): a
    sign-in never keeps a session it did not create (no session fixation)."""

    def work(unit: UnitOfWork) -> Session:
        now = ctx.clock.now()
        if replaces is not None:
            unit.delete_session(replaces)
        session = Session(session_hash, account_id, now, now + ctx.settings.session_ttl)
        unit.create_session(session)
        unit.record("login.succeeded", now, account_id=account_id, detail={"address": address})
        return session

    return (yield from in_unit(ctx, work))


def sign_in_failed(ctx: Context, *, address: str) -> Flow[None]:
    """The audit trail of a refused sign-in (which account was tried is not said)."""
    yield from in_unit(ctx, lambda unit: unit.record("login.failed", ctx.clock.now(), detail={"address": address}))


def sign_out(ctx: Context, session_hash: bytes) -> Flow[None]:
    yield from in_unit(ctx, lambda unit: unit.delete_session(session_hash))
