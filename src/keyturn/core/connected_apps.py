"""The applications a user authorized (their consents), from the portal."""

from __future__ import annotations

from .context import Context
from .ownership import NotFound
from .service import Flow, in_unit
from .unit_of_work import UnitOfWork


def revoke_app(ctx: Context, account_id: int, client_id: str) -> Flow[int]:
    """Ends the user's consent to the client and every token it holds for the user, in
    one unit with its audit event; returns how many tokens were revoked. NotFound when
    the user has neither a consent to it nor a live token of it (another user's are not
    touched)."""

    def work(unit: UnitOfWork) -> int:
        consented = ctx.store.get_consent(account_id, client_id) is not None
        now = ctx.clock.now()
        revoked = unit.revoke_tokens_of(account_id, client_id, now)
        if not consented and not revoked:
            raise NotFound
        unit.delete_consent(account_id, client_id)
        detail = {"tokens_revoked": revoked}
        unit.record("consent.revoked", now, account_id=account_id, client_id=client_id, detail=detail)
        return revoked

    return (yield from in_unit(ctx, work))
