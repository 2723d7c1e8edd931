"""The storage contract (core/ports.py) on SQLAlchemy Core, for SQLite and PostgreSQL.

Core statements rather than the ORM: every call is one short transaction of one or two
indexed statements, and the rows map straight onto core's frozen records.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Row, and_, delete, func, insert, or_, select, text, tuple_, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from keyturn.core.models import (
    Account,
    ApiKey,
    AuditEvent,
    AuthorizationCode,
    Client,
    Consent,
    Session,
    SigningKey,
    Token,
)
from keyturn.core.ports import Conflict, StoreUnavailable

from .hotpath import CODE_COLUMNS, HotPath
from .migrate import describe_database_error
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


def _scope_text(scopes: Sequence[str]) -> str:
    return " ".join(scopes)


def _scope_tuple(text_value: str | None) -> tuple[str, ...]:
    return tuple(text_value.split()) if text_value else ()


class SqlStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.hot = HotPath(engine, lambda exc: describe_database_error(engine, exc))

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as connection:
                yield connection
        except IntegrityError as exc:
            raise Conflict(str(exc.orig)) from exc
        except SQLAlchemyError as exc:
            raise StoreUnavailable(describe_database_error(self.engine, exc)) from exc

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
        self.hot.close()
        self.engine.dispose()

    # ---- accounts ----

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
        values: dict[str, Any] = {
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
        with self._begin() as connection:
            result = connection.execute(insert(accounts).values(**values))
            account_id = result.inserted_primary_key[0]  # type: ignore[index]
        values.pop("email_key")
        return Account(id=int(account_id), **values)

    @staticmethod
    def _account(row: Row[Any]) -> Account:
        m = row._mapping
        return Account(
            id=m["id"],
            email=m["email"],
            password_hash=m["password_hash"],
            name=m["name"],
            company=m["company"],
            alias=m["alias"],
            attributes=m["attributes"],
            disabled=m["disabled"],
            created_at=m["created_at"],
            updated_at=m["updated_at"],
        )

    def get_account(self, account_id: int) -> Account | None:
        return self._read(select(accounts).where(accounts.c.id == account_id), self._account)

    def find_account_by_email(self, email: str) -> Account | None:
        return self._read(select(accounts).where(accounts.c.email_key == email.casefold()), self._account)

    # ---- clients ----

    @staticmethod
    def _client_values(client: Client) -> dict[str, Any]:
        return {
            "client_id": client.client_id,
            "name": client.name,
            "owner_id": client.owner_id,
            "secret_hash": client.secret_hash,
            "kind": client.kind,
            "redirect_uris": list(client.redirect_uris),
            "grant_types": list(client.grant_types),
            "scopes": list(client.scopes),
            "required_scopes": list(client.required_scopes),
            "allow_implicit": client.allow_implicit,
            "resource_server": client.resource_server,
            "first_party": client.first_party,
            "remember_consent": client.remember_consent,
            "token_format": client.token_format,
            "access_token_ttl": client.access_token_ttl,
            "refresh_token_ttl": client.refresh_token_ttl,
            "created_at": client.created_at,
            "updated_at": client.updated_at,
        }

    @staticmethod
    def _client(row: Row[Any]) -> Client:
        m = dict(row._mapping)
        for key in ("redirect_uris", "grant_types", "scopes", "required_scopes"):
            m[key] = tuple(m[key])
        return Client(**m)

    def add_client(self, client: Client) -> None:
        with self._begin() as connection:
            connection.execute(insert(clients).values(**self._client_values(client)))

    def get_client(self, client_id: str) -> Client | None:
        return self._read(select(clients).where(clients.c.client_id == client_id), self._client)

    def list_clients(self, owner_id: int) -> list[Client]:
        statement = (
            select(clients).where(clients.c.owner_id == owner_id).order_by(clients.c.created_at, clients.c.client_id)
        )
        return self._read_all(statement, self._client)

    def longest_access_token_ttl(self) -> int | None:
        with self._begin() as connection:
            value = connection.execute(select(func.max(clients.c.access_token_ttl))).scalar()
        return None if value is None else int(value)

    def update_client(self, client: Client) -> bool:
        values = self._client_values(client)
        del values["client_id"]
        with self._begin() as connection:
            result = connection.execute(update(clients).where(clients.c.client_id == client.client_id).values(**values))
        return result.rowcount == 1

    def delete_client(self, client_id: str) -> bool:
        # The foreign keys cascade to codes, tokens and consents.
        with self._begin() as connection:
            result = connection.execute(delete(clients).where(clients.c.client_id == client_id))
        return result.rowcount == 1

    # ---- API keys ----

    @staticmethod
    def _api_key(row: Row[Any]) -> ApiKey:
        m = row._mapping
        return ApiKey(
            id=m["id"],
            key_hash=m["key_hash"],
            owner_id=m["owner_id"],
            name=m["name"],
            display_prefix=m["display_prefix"],
            scopes=None if m["scope"] is None else _scope_tuple(m["scope"]),
            created_at=m["created_at"],
            expires_at=m["expires_at"],
            last_used_at=m["last_used_at"],
            revoked_at=m["revoked_at"],
        )

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
    ) -> ApiKey:
        values = {
            "key_hash": key_hash,
            "owner_id": owner_id,
            "name": name,
            "display_prefix": display_prefix,
            "scope": None if scopes is None else _scope_text(scopes),
            "created_at": now,
            "expires_at": expires_at,
        }
        with self._begin() as connection:
            key_id = connection.execute(insert(api_keys).values(**values)).inserted_primary_key[0]  # type: ignore[index]
        return ApiKey(
            id=int(key_id),
            key_hash=key_hash,
            owner_id=owner_id,
            name=name,
            display_prefix=display_prefix,
            scopes=scopes,
            created_at=now,
            expires_at=expires_at,
        )

    def find_api_key(self, key_hash: bytes) -> ApiKey | None:
        return self.hot.find_api_key(key_hash)

    def list_api_keys(self, owner_id: int) -> list[ApiKey]:
        statement = select(api_keys).where(api_keys.c.owner_id == owner_id).order_by(api_keys.c.id)
        return self._read_all(statement, self._api_key)

    def revoke_api_key(self, key_id: int, owner_id: int, now: int) -> bool:
        statement = (
            update(api_keys)
            .where(api_keys.c.id == key_id, api_keys.c.owner_id == owner_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        with self._begin() as connection:
            return connection.execute(statement).rowcount == 1

    def touch_api_key(self, key_id: int, now: int) -> None:
        with self._begin() as connection:
            connection.execute(update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=now))

    # ---- authorization codes ----

    @staticmethod
    def _code(row: Row[Any]) -> AuthorizationCode:
        m = row._mapping
        return AuthorizationCode(
            code_hash=m["code_hash"],
            client_id=m["client_id"],
            account_id=m["account_id"],
            scopes=_scope_tuple(m["scope"]),
            redirect_uri=m["redirect_uri"],
            code_challenge=m["code_challenge"],
            code_challenge_method=m["code_challenge_method"],
            grant_id=m["grant_id"],
            created_at=m["created_at"],
            expires_at=m["expires_at"],
            consumed_at=m["consumed_at"],
        )

    def save_code(self, code: AuthorizationCode) -> None:
        row = (
            code.code_hash,
            code.client_id,
            code.account_id,
            _scope_text(code.scopes),
            code.redirect_uri,
            code.code_challenge,
            code.code_challenge_method,
            code.grant_id,
            code.created_at,
            code.expires_at,
            code.consumed_at,
        )
        if self.hot.save_code(row):
            return
        with self._begin() as connection:
            connection.execute(insert(authorization_codes).values(**dict(zip(CODE_COLUMNS, row, strict=True))))

    def consume_code(self, code_hash: bytes, client_id: str, now: int) -> tuple[AuthorizationCode | None, bool]:
        # One conditional UPDATE decides who consumed the code: concurrent exchanges of
        # the same code cannot both see it unconsumed.
        return self.hot.consume_code(code_hash, client_id, now)

    # ---- tokens ----

    @staticmethod
    def _token_values(token: Token) -> dict[str, Any]:
        return {
            "token_hash": token.token_hash,
            "kind": token.kind,
            "client_id": token.client_id,
            "account_id": token.account_id,
            "scope": _scope_text(token.scopes),
            "grant_id": token.grant_id,
            "parent_hash": token.parent_hash,
            "created_at": token.created_at,
            "expires_at": token.expires_at,
            "revoked_at": token.revoked_at,
            "rotated_at": token.rotated_at,
            "retry_blob": token.retry_blob,
        }

    def save_tokens(self, new_tokens: Sequence[Token]) -> None:
        if new_tokens:
            self.hot.insert_tokens(new_tokens)

    def find_token(self, token_hash: bytes) -> Token | None:
        return self.hot.find_token(token_hash)

    def rotate_refresh_token(
        self, token_hash: bytes, now: int, retry_blob: bytes | None, new_tokens: Sequence[Token]
    ) -> bool:
        return self.hot.rotate(token_hash, now, retry_blob, new_tokens)

    def _revoke(self, condition: Any, now: int) -> int:
        statement = update(tokens).where(condition, tokens.c.revoked_at.is_(None)).values(revoked_at=now)
        with self._begin() as connection:
            return int(connection.execute(statement).rowcount)

    def revoke_token(self, token_hash: bytes, now: int) -> bool:
        return self._revoke(tokens.c.token_hash == token_hash, now) == 1

    def revoke_grant(self, grant_id: str, now: int) -> int:
        return self._revoke(tokens.c.grant_id == grant_id, now)

    def revoke_tokens_of(self, account_id: int, client_id: str, now: int) -> int:
        return self._revoke(and_(tokens.c.account_id == account_id, tokens.c.client_id == client_id), now)

    # ---- consents ----

    @staticmethod
    def _consent(row: Row[Any]) -> Consent:
        m = row._mapping
        return Consent(
            account_id=m["account_id"],
            client_id=m["client_id"],
            scopes=_scope_tuple(m["scope"]),
            created_at=m["created_at"],
            updated_at=m["updated_at"],
        )

    def get_consent(self, account_id: int, client_id: str) -> Consent | None:
        return self.hot.find_consent(account_id, client_id)

    def save_consent(self, consent: Consent) -> None:
        key = and_(consents.c.account_id == consent.account_id, consents.c.client_id == consent.client_id)
        values = {"scope": _scope_text(consent.scopes), "updated_at": consent.updated_at}
        with self._begin() as connection:
            if connection.execute(update(consents).where(key).values(**values)).rowcount == 0:
                connection.execute(
                    insert(consents).values(
                        account_id=consent.account_id,
                        client_id=consent.client_id,
                        created_at=consent.created_at,
                        **values,
                    )
                )

    def delete_consent(self, account_id: int, client_id: str) -> bool:
        statement = delete(consents).where(consents.c.account_id == account_id, consents.c.client_id == client_id)
        with self._begin() as connection:
            return connection.execute(statement).rowcount == 1

    def list_consents(self, account_id: int) -> list[Consent]:
        statement = (
            select(consents)
            .where(consents.c.account_id == account_id)
            .order_by(consents.c.created_at, consents.c.client_id)
        )
        return self._read_all(statement, self._consent)

    # ---- sessions ----

    def create_session(self, session: Session) -> None:
        with self._begin() as connection:
            connection.execute(
                insert(sessions).values(
                    session_hash=session.session_hash,
                    account_id=session.account_id,
                    created_at=session.created_at,
                    expires_at=session.expires_at,
                )
            )

    def get_session(self, session_hash: bytes) -> Session | None:
        return self.hot.find_session(session_hash)

    def get_session_and_consent(self, session_hash: bytes, client_id: str) -> tuple[Session | None, Consent | None]:
        return self.hot.find_session_and_consent(session_hash, client_id)

    def delete_session(self, session_hash: bytes) -> bool:
        with self._begin() as connection:
            return connection.execute(delete(sessions).where(sessions.c.session_hash == session_hash)).rowcount == 1

    # ---- signing keys ----

    @staticmethod
    def _signing_key(row: Row[Any]) -> SigningKey:
        values = dict(row._mapping)
        del values["id"], values["current"]
        return SigningKey(**values)

    def add_signing_key(self, key: SigningKey, retire_active_until: int | None, *, replace_active: bool = True) -> None:
        with self._begin() as connection:
            if replace_active:
                connection.execute(
                    update(signing_keys)
                    .where(signing_keys.c.retired_at.is_(None))
                    .values(retired_at=key.created_at, expires_at=retire_active_until, current=None)
                )
            connection.execute(
                insert(signing_keys).values(
                    kid=key.kid,
                    alg=key.alg,
                    public_jwk=dict(key.public_jwk),
                    private_key_sealed=key.private_key_sealed,
                    created_at=key.created_at,
                    retired_at=key.retired_at,
                    expires_at=key.expires_at,
                    current=True if key.retired_at is None else None,
                )
            )

    def list_signing_keys(self, now: int) -> list[SigningKey]:
        statement = (
            select(signing_keys)
            .where((signing_keys.c.expires_at.is_(None)) | (signing_keys.c.expires_at > now))
            .order_by(signing_keys.c.id.desc())
        )
        return self._read_all(statement, self._signing_key)

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

    def record(
        self,
        kind: str,
        now: int,
        *,
        account_id: int | None = None,
        client_id: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        if self.hot.record((now, kind, account_id, client_id, json.dumps(dict(detail or {})))):
            return
        with self._begin() as connection:
            connection.execute(
                insert(audit_events).values(
                    at=now, kind=kind, account_id=account_id, client_id=client_id, detail=dict(detail or {})
                )
            )

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
        return self._read_all(statement, lambda row: AuditEvent(**row._mapping))


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
