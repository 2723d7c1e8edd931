"""The storage contract core talks to. ``keyturn.store`` implements it on SQL; the
in-memory reference implementation (``keyturn.store.memory``) backs core's unit tests.
One contract test suite (tests/store/test_contract.py) runs against every implementation.

Reads are methods of the store. Writes go through a unit of work (``Store.begin``, see
core/unit_of_work.py), committed as a whole: a protocol request's tokens, codes, claims,
revocations and consents, and the portal's and the CLI's accounts, clients, API keys and
sessions, and the signing keys (start-up's first, and each rotation with its audit
event). The store has no write of its own.
"""

from __future__ import annotations

from typing import Protocol

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
    def get_account(self, account_id: int) -> Account | None: ...

    def find_account_by_email(self, email: str) -> Account | None: ...


class ClientStore(Protocol):
    def get_client(self, client_id: str) -> Client | None: ...

    def list_clients(self, owner_id: int) -> list[Client]: ...

    def longest_access_token_ttl(self) -> int | None:
        """The longest per-client access-token lifetime, if any client sets one."""
        ...


class ApiKeyStore(Protocol):
    def find_api_key(self, key_hash: bytes) -> ApiKey | None: ...

    def list_api_keys(self, owner_id: int) -> list[ApiKey]: ...


class TokenStore(Protocol):
    def find_token(self, token_hash: bytes) -> Token | None: ...


class ConsentStore(Protocol):
    def get_consent(self, account_id: int, client_id: str) -> Consent | None: ...

    def list_consents(self, account_id: int) -> list[Consent]: ...


class SessionStore(Protocol):
    def get_session(self, session_hash: bytes) -> Session | None: ...

    def get_session_and_consent(self, session_hash: bytes, client_id: str) -> tuple[Session | None, Consent | None]:
        """The session, and its account's consent to ``client_id`` (None when there is no
        session): the authorization endpoint's one look-up for a signed-in user."""
        ...


class SigningKeyStore(Protocol):
    """Keys are added in a unit of work (``UnitOfWork.add_signing_key``)."""

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
    """Events are recorded in the unit of work of the change they tell of
    (``UnitOfWork.record``); the store only lists them."""

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
