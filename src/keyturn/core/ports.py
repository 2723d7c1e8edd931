"""The storage contract core talks to. ``keyturn.store`` implements it on SQL; the
in-memory reference implementation (``keyturn.store.memory``) backs core's unit tests.
One contract test suite (tests/store/test_contract.py) runs against every implementation.

Reads, and the writes of the portal and the CLI, are methods of the store, each one
atomic step. The writes of a protocol request (tokens, codes, claims, revocations,
consents and their audit events) go through a unit of work (``Store.begin``, see
core/unit_of_work.py), committed as a whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from .models import (
    Account,
    ApiKey,
    AuditEvent,
    Client,
    Consent,
    Session,
    SigningKey,
    Token,
)
from .unit_of_work import UnitOfWork


class Conflict(Exception):
    """A record with that unique key exists already."""


class StoreUnavailable(Exception):
    """The database cannot be reached or answered with an error; nothing was changed."""


class AccountStore(Protocol):
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
    ) -> Account:
        """Raises Conflict if the (case-insensitive) email is taken."""
        ...

    def get_account(self, account_id: int) -> Account | None: ...

    def find_account_by_email(self, email: str) -> Account | None: ...


class ClientStore(Protocol):
    def add_client(self, client: Client) -> None:
        """Raises Conflict if the client_id is taken."""
        ...

    def get_client(self, client_id: str) -> Client | None: ...

    def list_clients(self, owner_id: int) -> list[Client]: ...

    def update_client(self, client: Client) -> bool: ...

    def longest_access_token_ttl(self) -> int | None:
        """The longest per-client access-token lifetime, if any client sets one."""
        ...

    def delete_client(self, client_id: str) -> bool:
        """Deletes the client with its codes, tokens and consents."""
        ...


class ApiKeyStore(Protocol):
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
    ) -> ApiKey: ...

    def find_api_key(self, key_hash: bytes) -> ApiKey | None: ...

    def list_api_keys(self, owner_id: int) -> list[ApiKey]: ...

    def revoke_api_key(self, key_id: int, owner_id: int, now: int) -> bool: ...

    def touch_api_key(self, key_id: int, now: int) -> None:
        """Records a use (last_used_at)."""
        ...


class TokenStore(Protocol):
    def find_token(self, token_hash: bytes) -> Token | None: ...

    def revoke_tokens_of(self, account_id: int, client_id: str, now: int) -> int:
        """Revokes every token a client holds for an account (connected apps)."""
        ...


class ConsentStore(Protocol):
    def get_consent(self, account_id: int, client_id: str) -> Consent | None: ...

    def delete_consent(self, account_id: int, client_id: str) -> bool: ...

    def list_consents(self, account_id: int) -> list[Consent]: ...


class SessionStore(Protocol):
    def create_session(self, session: Session) -> None: ...

    def get_session(self, session_hash: bytes) -> Session | None: ...

    def get_session_and_consent(self, session_hash: bytes, client_id: str) -> tuple[Session | None, Consent | None]:
        """The session, and its account's consent to ``client_id`` (None when there is no
        session): the authorization endpoint's one look-up for a signed-in user."""
        ...

    def delete_session(self, session_hash: bytes) -> bool: ...


class SigningKeyStore(Protocol):
    def add_signing_key(self, key: SigningKey, retire_active_until: int | None, *, replace_active: bool = True) -> None:
        """Atomically adds ``key`` as the active key and retires the previously active
        one, which stays published until ``retire_active_until`` (None: indefinitely).
        With ``replace_active=False`` the key is added only if there is no active key.
        There is never more than one active key: when a concurrent call added one first,
        this raises Conflict and changes nothing."""
        ...

    def list_signing_keys(self, now: int) -> list[SigningKey]:
        """The published keys (not yet expired), the most recently added first."""
        ...


#: What housekeeping deletes, and the time column that decides it.
PURGEABLE = ("authorization_codes", "tokens", "sessions", "api_keys", "audit_events")


class Housekeeping(Protocol):
    def purge(self, kind: str, before: int, limit: int) -> int:
        """Deletes at most ``limit`` rows of ``kind`` (one of PURGEABLE) that expired, were
        revoked or happened before ``before``, in one short transaction; returns how many."""
        ...


class AuditLog(Protocol):
    def record(
        self,
        kind: str,
        now: int,
        *,
        account_id: int | None = None,
        client_id: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None: ...

    def list_events(
        self,
        *,
        limit: int = 100,
        kind: str | None = None,
        account_id: int | None = None,
        client_id: str | None = None,
        since: int | None = None,
    ) -> list[AuditEvent]:
        """Newest first; each filter given narrows the list (``kind`` may end in "*")."""
        ...


class Store(
    AccountStore,
    ClientStore,
    ApiKeyStore,
    TokenStore,
    ConsentStore,
    SessionStore,
    SigningKeyStore,
    AuditLog,
    Housekeeping,
    Protocol,
):
    def begin(self) -> UnitOfWork:
        """A new, empty unit of work on this store."""
        ...

    def ping(self) -> None:
        """Raises StoreUnavailable unless the database answers."""
        ...

    def close(self) -> None: ...
