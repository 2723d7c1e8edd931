"""The unit of work: the writes of one request, committed together.

Core reads through the store (``ctx.store``) and writes through a unit: the grants, the
authorization endpoint's approval and revocation queue every write of a request in one
unit, and the unit is committed as a whole before the request answers. So a family
revocation commits with its audit row, and nothing of a request is written unless all
of it is.

A unit may *claim* one row: an authorization code (``claim_code``) or a refresh token
(``rotate_refresh_token``). A claim is decided at the commit, by the database: the first
unit to commit its claim owns the row; a unit whose claim is lost writes nothing, and
its request runs again in a fresh unit (keyturn.core.service), where it sees the row as
the winner left it. ``keyturn.store`` implements units twice: the group commit of the
SQL store (many requests' units in one transaction) and the in-memory store's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from .models import AuthorizationCode, Consent, Token


class UnitOfWork(Protocol):
    def save_tokens(self, tokens: Sequence[Token]) -> None:
        """Saves new tokens (all of them or none)."""
        ...

    def save_code(self, code: AuthorizationCode) -> None: ...

    def claim_code(self, code_hash: bytes, client_id: str, now: int) -> tuple[AuthorizationCode | None, bool]:
        """Reads the client's code. Returns (code, replayed): ``replayed`` when the code
        was consumed already (RFC 6749 §4.1.2: single use); otherwise the unit claims it
        (the commit consumes it at ``now``) and the code is returned as consumed. None
        when there is no such code for this client: a code of another client is left as
        it is."""
        ...

    def rotate_refresh_token(
        self, token_hash: bytes, now: int, retry_blob: bytes | None, new_tokens: Sequence[Token]
    ) -> None:
        """Claims the refresh token: the commit marks it rotated at ``now`` with
        ``retry_blob`` and saves ``new_tokens``, unless by then it was rotated or revoked
        (the claim is lost)."""
        ...

    def revoke_token(self, token_hash: bytes, now: int) -> None: ...

    def revoke_grant(self, grant_id: str, now: int) -> int:
        """Revokes every token of a family, including those saved in the same commit;
        returns how many are live now."""
        ...

    def save_consent(self, consent: Consent) -> None:
        """Inserts or replaces the consent of this account for this client (keeping the
        first ``created_at``)."""
        ...

    def record(
        self,
        kind: str,
        now: int,
        *,
        account_id: int | None = None,
        client_id: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Queues an audit event."""
        ...

    @property
    def empty(self) -> bool:
        """Nothing to commit."""
        ...

    def discard_issued(self) -> None:
        """The request failed: drops the credentials it was to issue (tokens, codes) and
        keeps what records the attempt (audit events, its claim, revocations)."""
        ...

    def commit(self) -> bool:
        """Writes the unit now, in one transaction of its own; returns True when its
        claim was lost (then nothing of it was written)."""
        ...
