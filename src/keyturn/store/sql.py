"""The storage contract (core/ports.py) on SQL, for SQLite and PostgreSQL.

The cold calls (accounts, clients, keys, listings, housekeeping) are SQLAlchemy Core
statements, each call one short transaction. The hot reads are raw driver statements
(store/reads.py). Writes go through a unit of work (store/group_commit.py: the group
commit, and store/cold_writes.py: the portal's and the CLI's), but for housekeeping's
``purge``, which deletes in short transactions of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Row, delete, func, or_, select, text, tuple_

from keyturn.core.models import (
    Account,
    ApiKey,
    AuditEvent,
    Client,
    Consent,
    Session,
    SigningKey,
    Token,
)

from .connections import Connections
from .group_commit import GroupCommit, GroupUnit
from .migrate import describe_database_error
from .reads import Reads
from .rows import (
    account_from_row,
    api_key_from_row,
    audit_event_from_row,
    client_from_row,
    consent_from_row,
    signing_key_from_row,
)
from .schema import (
    accounts,
    api_keys,
    audit_events,
    authorization_codes,
    clients,
    consents,
    sessions,
    signing_keys,
    tokens,
)

T = TypeVar("T")


class SqlStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.connections = Connections(engine, lambda exc: describe_database_error(engine, exc))
        self.reads = Reads(self.connections)
        self.group = GroupCommit(self.connections, self.reads)

    def begin(self) -> GroupUnit:
        return self.group.begin()

    def _begin(self) -> AbstractContextManager[Connection]:
        return self.connections.begin()

    def _read(self, statement: Any, mapper: Callable[[Row[Any]], T]) -> T | None:
        with self._begin() as connection:
            row = connection.execute(statement).first()
        return None if row is None else mapper(row)

    def _read_all(self, statement: Any, mapper: Callable[[Row[Any]], T]) -> list[T]:
        with self._begin() as connection:
            return [mapper(row) for row in connection.execute(statement)]

    def ping(self) -> None:
        with self._begin() as connection:
            connection.execute(text("SELECT 1"))

    def close(self) -> None:
        self.group.close()
        self.connections.close()
        self.engine.dispose()

    # ---- accounts ----

    def get_account(self, account_id: int) -> Account | None:
        return self._read(select(accounts).where(accounts.c.id == account_id), account_from_row)

    def find_account_by_email(self, email: str) -> Account | None:
        return self._read(select(accounts).where(accounts.c.email_key == email.casefold()), account_from_row)

    # ---- clients ----

    def get_client(self, client_id: str) -> Client | None:
        return self._read(select(clients).where(clients.c.client_id == client_id), client_from_row)

    def list_clients(self, owner_id: int) -> list[Client]:
        statement = (
            select(clients).where(clients.c.owner_id == owner_id).order_by(clients.c.created_at, clients.c.client_id)
        )
        return self._read_all(statement, client_from_row)

    def longest_access_token_ttl(self) -> int | None:
        with self._begin() as connection:
            value = connection.execute(select(func.max(clients.c.access_token_ttl))).scalar()
        return None if value is None else int(value)

    # ---- API keys ----

    def find_api_key(self, key_hash: bytes) -> ApiKey | None:
        return self.reads.api_key(key_hash)

    def list_api_keys(self, owner_id: int) -> list[ApiKey]:
        statement = select(api_keys).where(api_keys.c.owner_id == owner_id).order_by(api_keys.c.id)
        return self._read_all(statement, api_key_from_row)

    # ---- tokens ----

    def find_token(self, token_hash: bytes) -> Token | None:
        return self.reads.token(token_hash)

    # ---- consents ----

    def get_consent(self, account_id: int, client_id: str) -> Consent | None:
        return self.reads.consent(account_id, client_id)

    def list_consents(self, account_id: int) -> list[Consent]:
        statement = (
            select(consents)
            .where(consents.c.account_id == account_id)
            .order_by(consents.c.created_at, consents.c.client_id)
        )
        return self._read_all(statement, consent_from_row)

    # ---- sessions ----

    def get_session(self, session_hash: bytes) -> Session | None:
        return self.reads.session(session_hash)

    def get_session_and_consent(self, session_hash: bytes, client_id: str) -> tuple[Session | None, Consent | None]:
        return self.reads.session_and_consent(session_hash, client_id)

    # ---- signing keys ----

    def list_signing_keys(self, now: int) -> list[SigningKey]:
        statement = (
            select(signing_keys)
            .where((signing_keys.c.expires_at.is_(None)) | (signing_keys.c.expires_at > now))
            .order_by(signing_keys.c.id.desc())
        )
        return self._read_all(statement, signing_key_from_row)

    # ---- housekeeping ----

    def purge(self, kind: str, before: int, limit: int) -> int:
        table, key, condition = _purge_rule(kind, before)
        # Delete by primary key through a LIMITed sub-select: short transactions, no long
        # locks, whatever the size of the table.
        keys = select(*key).where(condition).limit(limit)
        target = key[0].in_(keys) if len(key) == 1 else tuple_(*key).in_(keys)
        with self._begin() as connection:
            return int(connection.execute(delete(table).where(target)).rowcount)

    # ---- audit ----

    def list_events(
        self,
        *,
        limit: int = 100,
        kind: str | None = None,
        account_id: int | None = None,
        client_id: str | None = None,
        since: int | None = None,
    ) -> list[AuditEvent]:
        events = audit_events.c
        statement = select(audit_events).order_by(events.id.desc()).limit(limit)
        if kind is not None:
            condition = (
                events.kind.startswith(kind[:-1], autoescape=True) if kind.endswith("*") else events.kind == kind
            )
            statement = statement.where(condition)
        if account_id is not None:
            statement = statement.where(events.account_id == account_id)
        if client_id is not None:
            statement = statement.where(events.client_id == client_id)
        if since is not None:
            statement = statement.where(events.at >= since)
        return self._read_all(statement, audit_event_from_row)


def _purge_rule(kind: str, before: int) -> tuple[Any, tuple[Any, ...], Any]:
    if kind == "authorization_codes":
        return authorization_codes, (authorization_codes.c.code_hash,), authorization_codes.c.expires_at < before
    if kind == "tokens":
        return tokens, (tokens.c.token_hash,), tokens.c.expires_at < before
    if kind == "sessions":
        return sessions, (sessions.c.session_hash,), sessions.c.expires_at < before
    if kind == "api_keys":
        ended = or_(api_keys.c.revoked_at < before, api_keys.c.expires_at < before)
        return api_keys, (api_keys.c.id,), ended
    if kind == "audit_events":
        return audit_events, (audit_events.c.id,), audit_events.c.at < before
    raise ValueError(f"cannot purge {kind!r}")
