"""The cold writes of a unit of work on SQL (core/unit_of_work.py): the portal's and the
CLI's accounts, clients, API keys, sessions, connected apps and signing keys.

Each method queues a step, a SQLAlchemy Core statement run on the connection of the
commit. A unit that holds any commits alone (``commit_alone``), not in a group commit:
a Conflict in one of its statements (an email taken meanwhile) must fail that request,
not the batch it would share. Its steps run in the order they were queued, then its audit
events and other changes, in one transaction: an error anywhere rolls back all of it.
These are rare, so they are written for clarity; the hot writes stay in group_commit.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, delete, func, insert, select, update

from keyturn.core.models import Client, Session, SigningKey
from keyturn.core.ports import Conflict
from keyturn.core.unit_of_work import Assigned

from .rows import audit_row, client_values, scope_text, session_row
from .schema import SESSION_COLUMNS, accounts, api_keys, clients, consents, sessions, signing_keys, tokens

if TYPE_CHECKING:
    from .group_commit import GroupCommit, GroupUnit

#: One queued cold write.
Step = Callable[[Connection], object]


def _insert_returning_id(table: Any, values: Mapping[str, Any], assigned: Assigned) -> Step:
    def step(connection: Connection) -> None:
        assigned.assign(int(connection.execute(insert(table).values(**values)).inserted_primary_key[0]))  # type: ignore[index]

    return step


class ColdWrites:
    """The cold half of the SQL unit (GroupUnit): each write is a step of ``steps``."""

    __slots__ = ("steps",)
    _group: GroupCommit
    #: Empty (a shared tuple: a request of the protocol allocates nothing for it) until
    #: the first cold write.
    steps: tuple[()] | list[Step]

    def _queue(self, step: Step) -> None:
        if self.steps:
            self.steps.append(step)
        else:
            self.steps = [step]

    def _execute(self, statement: Any) -> None:
        self._queue(lambda connection: connection.execute(statement))

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
        values = account_values(email, password_hash, now, name, company, alias, attributes)
        assigned = Assigned()
        self._queue(_insert_returning_id(accounts, values, assigned))
        return assigned

    def add_client(self, client: Client) -> None:
        statement = insert(clients).values(**client_values(client))
        self._execute(statement)

    def update_client(self, client: Client) -> None:
        values = client_values(client)
        del values["client_id"]
        statement = update(clients).where(clients.c.client_id == client.client_id).values(**values)
        self._execute(statement)

    def delete_client(self, client_id: str) -> None:
        # The foreign keys cascade to codes, tokens and consents.
        statement = delete(clients).where(clients.c.client_id == client_id)
        self._execute(statement)

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
        values = {
            "key_hash": key_hash,
            "owner_id": owner_id,
            "name": name,
            "display_prefix": display_prefix,
            "scope": None if scopes is None else scope_text(scopes),
            "created_at": now,
            "expires_at": expires_at,
        }
        assigned = Assigned()
        self._queue(_insert_returning_id(api_keys, values, assigned))
        return assigned

    def revoke_api_key(self, key_id: int, owner_id: int, now: int) -> None:
        mine = (api_keys.c.id == key_id, api_keys.c.owner_id == owner_id, api_keys.c.revoked_at.is_(None))
        statement = update(api_keys).where(*mine).values(revoked_at=now)
        self._execute(statement)

    def touch_api_key(self, key_id: int, now: int) -> None:
        statement = update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=now)
        self._execute(statement)

    def revoke_tokens_of(self, account_id: int, client_id: str, now: int) -> int:
        live = (tokens.c.account_id == account_id, tokens.c.client_id == client_id, tokens.c.revoked_at.is_(None))
        statement = update(tokens).where(*live).values(revoked_at=now)
        self._execute(statement)
        with self._group.connections.begin() as connection:
            return int(connection.execute(select(func.count()).select_from(tokens).where(*live)).scalar_one())

    def delete_consent(self, account_id: int, client_id: str) -> None:
        statement = delete(consents).where(consents.c.account_id == account_id, consents.c.client_id == client_id)
        self._execute(statement)

    def create_session(self, session: Session) -> None:
        statement = insert(sessions).values(**dict(zip(SESSION_COLUMNS, session_row(session), strict=True)))
        self._execute(statement)

    def delete_session(self, session_hash: bytes) -> None:
        statement = delete(sessions).where(sessions.c.session_hash == session_hash)
        self._execute(statement)

    def add_signing_key(self, key: SigningKey, retire_active_until: int | None, *, replaces: str | None) -> None:
        if replaces is not None:
            # Only the key the caller saw active: when a concurrent rotation retired it
            # first (PostgreSQL re-reads the row once that one commits), nothing matches.
            retire = (
                update(signing_keys)
                .where(signing_keys.c.kid == replaces, signing_keys.c.retired_at.is_(None))
                .values(retired_at=key.created_at, expires_at=retire_active_until, current=None)
            )

            def retire_replaced(connection: Connection) -> None:
                if connection.execute(retire).rowcount != 1:
                    raise Conflict(f"the active signing key is no longer {replaces!r}")

            self._queue(retire_replaced)
        # ``current`` is unique: a second active key (a first key added when there is one
        # already, or a concurrent rotation's) is a Conflict.
        add = insert(signing_keys).values(
            kid=key.kid,
            alg=key.alg,
            public_jwk=dict(key.public_jwk),
            private_key_sealed=key.private_key_sealed,
            created_at=key.created_at,
            retired_at=key.retired_at,
            expires_at=key.expires_at,
            current=True if key.retired_at is None else None,
        )
        self._execute(add)

    def _record_assigned(
        self, kind: str, now: int, account_id: int | None, client_id: str | None, detail: Mapping[str, Any] | None
    ) -> None:
        """An audit event that names an Assigned: written as a step, once the id is known."""
        sql = self._group.writes.insert_audit
        self._queue(
            lambda connection: connection.exec_driver_sql(sql, audit_row(kind, now, account_id, client_id, detail))
        )


def account_values(
    email: str,
    password_hash: str | None,
    now: int,
    name: str,
    company: str,
    alias: str,
    attributes: Mapping[str, Any] | None,
) -> dict[str, Any]:
    return {
        "email": email,
        "email_key": email.casefold(),
        "password_hash": password_hash,
        "name": name,
        "company": company,
        "alias": alias,
        "attributes": dict(attributes or {}),
        "disabled": False,
        "created_at": now,
        "updated_at": now,
    }


def commit_alone(group: GroupCommit, unit: GroupUnit) -> None:
    """Writes a unit of cold writes in a transaction of its own."""
    if unit.claim is not None or unit.tokens or unit.codes:
        raise RuntimeError("a unit of cold writes claims nothing and issues nothing")
    with group.connections.begin() as connection:
        for step in unit.steps:
            step(connection)
        if unit.audit:
            connection.exec_driver_sql(group.writes.insert_audit, unit.audit)
        for sql, params in unit.changes:
            connection.exec_driver_sql(sql, params)
