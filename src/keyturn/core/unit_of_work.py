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

The portal's and the CLI's writes (accounts, clients, API keys, sessions, a connected
app's revocation, a signing key the operator rotates) are units too, of *cold* writes: a
unit holding one commits in a transaction of its own, its writes in the order they were
queued, so that a Conflict (an email taken meanwhile) fails that request alone and
writes nothing of it. A row the database numbers (an account, an API key) reports its id
through an ``Assigned``, set at the commit; an audit event's detail may name it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from .models import AuthorizationCode, Client, Consent, Session, SigningKey, Token


def audit_detail(via: str | None, **detail: Any) -> dict[str, Any] | None:
    """An audit event's detail, naming where a change came from when it was not the
    server's own pages (``via="cli"``: the keyturn command)."""
    if via is not None:
        detail["via"] = via
    return detail or None


class Unassigned(TypeError):
    """An Assigned was read before the commit that sets it."""


class Assigned:
    """The id the database gives a new row, known once the unit has committed."""

    __slots__ = ("_value",)

    def __init__(self) -> None:
        self._value: int | None = None

    @property
    def value(self) -> int:
        if self._value is None:
            raise Unassigned("the id is assigned when the unit commits")
        return self._value

    def assign(self, value: int) -> None:
        self._value = value

    def __repr__(self) -> str:
        return f"Assigned({self._value})"


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
        """Queues an audit event. Its detail's values are JSON values, or an Assigned
        of the same unit (the event then names the id the commit gives)."""
        ...

    # ---- cold writes: the portal's and the CLI's ----

    def create_account(
        self,
        *,
        email: str,
        password_hash: str | None,
        now: int,
        name: str = "",
        company: str = "",
        alias: str = "",
        attributes: Mapping[str, Any] | None = None,
    ) -> Assigned:
        """Queues a new account; its id is assigned at the commit, which raises Conflict
        if the (case-insensitive) email is taken by then."""
        ...

    def add_client(self, client: Client) -> None:
        """The commit raises Conflict if the client_id is taken."""
        ...

    def update_client(self, client: Client) -> None:
        """Replaces the client with this client_id (if it is still there)."""
        ...

    def delete_client(self, client_id: str) -> None:
        """Deletes the client with its codes, tokens and consents."""
        ...

    def add_api_key(
        self,
        *,
        key_hash: bytes,
        owner_id: int,
        name: str,
        display_prefix: str,
        scopes: tuple[str, ...] | None,
        now: int,
        expires_at: int | None = None,
    ) -> Assigned:
        """Queues a new API key; its id is assigned at the commit, which raises Conflict if
        the hash is taken."""
        ...

    def revoke_api_key(self, key_id: int, owner_id: int, now: int) -> None:
        """Revokes the owner's key, unless it is revoked already (the first time stays)."""
        ...

    def touch_api_key(self, key_id: int, now: int) -> None:
        """Records a use (last_used_at)."""
        ...

    def revoke_tokens_of(self, account_id: int, client_id: str, now: int) -> int:
        """Revokes every token a client holds for an account (connected apps); returns how
        many are live now."""
        ...

    def delete_consent(self, account_id: int, client_id: str) -> None: ...

    def create_session(self, session: Session) -> None:
        """The commit raises Conflict if the session exists."""
        ...

    def delete_session(self, session_hash: bytes) -> None: ...

    def add_signing_key(self, key: SigningKey, retire_active_until: int | None, *, replaces: str | None) -> None:
        """Adds ``key`` as the active key in place of the active key ``replaces`` (None:
        the first key, when there is no active one), which stays published until
        ``retire_active_until`` (None: until removed). There is never more than one active
        key: the commit raises Conflict, and writes nothing of the unit, if by then the
        active key is not ``replaces`` (a concurrent rotation or start-up added one first)
        or the kid is taken."""
        ...

    # ---- the unit ----

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
        claim was lost (then nothing of it was written). A unit of cold writes claims
        nothing and issues nothing (RuntimeError otherwise)."""
        ...
