"""The hot statements (issue a token, find a token, find an API key), on the driver.

These run on every token request, introspection and API call. Each is one statement in
autocommit mode: one round trip to PostgreSQL (no BEGIN, no COMMIT, no pre-ping) and one
short implicit transaction in SQLite, without SQLAlchemy's per-statement machinery. A
multi-row INSERT keeps issuing a token pair atomic. Everything else goes through
SQLAlchemy Core in sql.py.

Group commit (SQLite, where requests run on the event loop): inside ``deferred()`` new
tokens are queued instead of written; every request queued in the same turn of the event
loop is then written by one transaction, and each request answers only after that
transaction committed. A commit costs far more than an insert, so this is what lets one
SQLite writer issue thousands of tokens a second without weakening durability.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Engine

from keyturn.core.models import ApiKey, Token
from keyturn.core.ports import Conflict, StoreUnavailable

T = TypeVar("T")

TOKEN_COLUMNS = (
    "token_hash",
    "kind",
    "client_id",
    "account_id",
    "scope",
    "grant_id",
    "parent_hash",
    "created_at",
    "expires_at",
    "revoked_at",
    "rotated_at",
    "retry_blob",
)
CODE_COLUMNS = (
    "code_hash",
    "client_id",
    "account_id",
    "scope",
    "redirect_uri",
    "code_challenge",
    "code_challenge_method",
    "grant_id",
    "created_at",
    "expires_at",
    "consumed_at",
)
API_KEY_COLUMNS = (
    "id",
    "key_hash",
    "owner_id",
    "name",
    "display_prefix",
    "scope",
    "created_at",
    "expires_at",
    "last_used_at",
    "revoked_at",
)


def _scopes(text: str | None) -> tuple[str, ...]:
    return tuple(text.split()) if text else ()


def token_row(token: Token) -> tuple[Any, ...]:
    return (
        token.token_hash,
        token.kind,
        token.client_id,
        token.account_id,
        " ".join(token.scopes),
        token.grant_id,
        token.parent_hash,
        token.created_at,
        token.expires_at,
        token.revoked_at,
        token.rotated_at,
        token.retry_blob,
    )


def token_from_row(row: Sequence[Any]) -> Token:
    return Token(
        token_hash=bytes(row[0]),
        kind=row[1],
        client_id=row[2],
        account_id=row[3],
        scopes=_scopes(row[4]),
        grant_id=row[5],
        parent_hash=None if row[6] is None else bytes(row[6]),
        created_at=row[7],
        expires_at=row[8],
        revoked_at=row[9],
        rotated_at=row[10],
        retry_blob=None if row[11] is None else bytes(row[11]),
    )


def api_key_from_row(row: Sequence[Any]) -> ApiKey:
    return ApiKey(
        id=row[0],
        key_hash=bytes(row[1]),
        owner_id=row[2],
        name=row[3],
        display_prefix=row[4],
        scopes=None if row[5] is None else _scopes(row[5]),
        created_at=row[6],
        expires_at=row[7],
        last_used_at=row[8],
        revoked_at=row[9],
    )


class HotPath:
    def __init__(self, engine: Engine, describe: Callable[[BaseException], str]) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        self._describe = describe
        mark = "?" if self.sqlite else "%s"
        self._token_values = "(" + ", ".join([mark] * len(TOKEN_COLUMNS)) + ")"
        self._insert_tokens = f"INSERT INTO tokens ({', '.join(TOKEN_COLUMNS)}) VALUES "  # noqa: S608 - constant column names
        self._select_token = f"SELECT {', '.join(TOKEN_COLUMNS)} FROM tokens WHERE token_hash = {mark}"  # noqa: S608 - constant column names
        self._select_api_key = f"SELECT {', '.join(API_KEY_COLUMNS)} FROM api_keys WHERE key_hash = {mark}"  # noqa: S608 - constant column names
        dbapi = engine.dialect.dbapi
        assert dbapi is not None
        self._integrity_error: type[Exception] = dbapi.IntegrityError
        self._error: type[Exception] = dbapi.Error
        json_mark = mark if self.sqlite else "%s::json"
        self._insert_audit = (
            "INSERT INTO audit_events (at, kind, account_id, client_id, detail) "  # noqa: S608 - constant
            f"VALUES ({mark}, {mark}, {mark}, {mark}, {json_mark})"
        )
        self._deferring = False
        self._queued: list[Token] = []
        self._queued_audit: list[tuple[Any, ...]] = []
        self._queued_codes: list[tuple[Any, ...]] = []
        self._insert_code = (
            f"INSERT INTO authorization_codes ({', '.join(CODE_COLUMNS)}) "  # noqa: S608 - constant names
            f"VALUES ({', '.join([mark] * len(CODE_COLUMNS))})"
        )
        self._batch: asyncio.Future[None] | None = None

    # ---- group commit ----

    @contextmanager
    def deferred(self) -> Iterator[Deferred]:
        """Within this block (synchronous code on the event loop), new tokens are queued;
        await ``Deferred.committed()`` afterwards, before answering."""
        handle = Deferred()
        start, audit_start, code_start = len(self._queued), len(self._queued_audit), len(self._queued_codes)
        self._deferring = True
        try:
            yield handle
        except BaseException:
            # A failed request's tokens are not written; its audit events are (they may
            # record why it failed).
            del self._queued[start:]
            del self._queued_codes[code_start:]
            raise
        finally:
            self._deferring = False
        if len(self._queued) > start or len(self._queued_audit) > audit_start or len(self._queued_codes) > code_start:
            if self._batch is None:
                loop = asyncio.get_running_loop()
                self._batch = loop.create_future()
                loop.call_soon(self._write_batch)
            handle.batch = self._batch

    def _write_batch(self) -> None:
        rows, audit, codes, batch = self._queued, self._queued_audit, self._queued_codes, self._batch
        self._queued, self._queued_audit, self._queued_codes, self._batch = [], [], [], None
        assert batch is not None
        try:
            self._insert_in_one_transaction(rows, audit, codes)
        except (Conflict, StoreUnavailable) as exc:
            batch.set_exception(exc)
            return
        batch.set_result(None)

    def _insert_in_one_transaction(
        self,
        rows: Sequence[Token],
        audit: Sequence[tuple[Any, ...]] = (),
        codes: Sequence[tuple[Any, ...]] = (),
        chunk: int = 64,
    ) -> None:
        with self._autocommit() as cursor:
            cursor.execute("BEGIN IMMEDIATE" if self.sqlite else "BEGIN")
            try:
                for offset in range(0, len(rows), chunk):
                    part = rows[offset : offset + chunk]
                    sql = self._insert_tokens + ", ".join([self._token_values] * len(part))
                    cursor.execute(sql, [value for token in part for value in token_row(token)])
                if codes:
                    cursor.executemany(self._insert_code, codes)
                if audit:
                    cursor.executemany(self._insert_audit, audit)
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            cursor.execute("COMMIT")

    @contextmanager
    def _autocommit(self) -> Iterator[Any]:
        pooled = self.engine.raw_connection()
        connection = pooled.driver_connection
        assert connection is not None
        try:
            if self.sqlite:
                previous = connection.isolation_level
                connection.isolation_level = None
            else:
                connection.autocommit = True
            try:
                cursor = connection.cursor()
                try:
                    yield cursor
                finally:
                    cursor.close()
            finally:
                if self.sqlite:
                    connection.isolation_level = previous
                else:
                    connection.autocommit = False
        except self._integrity_error as exc:
            raise Conflict(str(exc)) from exc
        except self._error as exc:
            # The connection may be broken: drop it (and the pool's others, which are
            # likely broken the same way) rather than hand it to the next request.
            pooled.invalidate(exc)
            self.engine.pool.dispose()
            raise StoreUnavailable(self._describe(exc)) from exc
        finally:
            pooled.close()

    def insert_tokens(self, tokens: Sequence[Token]) -> None:
        """One multi-row INSERT: all of them or none (queued, inside ``deferred()``)."""
        if self._deferring:
            self._queued.extend(tokens)
            return
        sql = self._insert_tokens + ", ".join([self._token_values] * len(tokens))
        params = [value for token in tokens for value in token_row(token)]
        with self._autocommit() as cursor:
            cursor.execute(sql, params)

    def record(self, event: tuple[Any, ...]) -> bool:
        """Queues an audit row (at, kind, account_id, client_id, detail JSON) inside
        ``deferred()``; returns False when not deferring (the caller writes it)."""
        if not self._deferring:
            return False
        self._queued_audit.append(event)
        return True

    def save_code(self, row: tuple[Any, ...]) -> bool:
        """Queues an authorization code row inside ``deferred()``; False otherwise."""
        if not self._deferring:
            return False
        self._queued_codes.append(row)
        return True

    def find_token(self, token_hash: bytes) -> Token | None:
        with self._autocommit() as cursor:
            cursor.execute(self._select_token, (token_hash,))
            row = cursor.fetchone()
        return None if row is None else token_from_row(row)

    def find_api_key(self, key_hash: bytes) -> ApiKey | None:
        with self._autocommit() as cursor:
            cursor.execute(self._select_api_key, (key_hash,))
            row = cursor.fetchone()
        return None if row is None else api_key_from_row(row)


class Deferred:
    """What a request inside ``HotPath.deferred()`` waits for before it answers."""

    __slots__ = ("batch",)

    def __init__(self) -> None:
        self.batch: asyncio.Future[None] | None = None

    async def committed(self) -> None:
        if self.batch is not None:
            # Shielded: one request giving up must not cancel the others' commit.
            await asyncio.shield(self.batch)
