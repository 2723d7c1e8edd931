"""The hot statements (issue a token, find a token, an API key, a session and its
consent), on the driver.

These run on every token request, introspection and API call. Each is one statement in
autocommit mode: one round trip to PostgreSQL (no BEGIN, no COMMIT, no pre-ping) and one
short implicit transaction in SQLite, without SQLAlchemy's per-statement machinery. A
multi-row INSERT keeps issuing a token pair atomic. Everything else goes through
SQLAlchemy Core in sql.py.

Group commit: inside ``collect()`` a request's writes are queued instead of written; the
requests queued together are then written by one transaction, and each request answers
only after that transaction committed. On SQLite (requests run on the event loop) that is
every request of one turn of the loop; on PostgreSQL (requests run in threads) every
request that finished while the previous batch was committing. A commit costs far more
than an insert (on PostgreSQL, a WAL flush), so this is what lets one writer issue
thousands of tokens a second without weakening durability.

A request may also queue one claim: the conditional UPDATE that makes an authorization
code or a refresh token its own (``WHERE consumed_at IS NULL``, ``WHERE rotated_at IS
NULL``). The batch runs the claims before the inserts; a claim that changes no row means
another request got there first, and that request's writes are skipped and it is told
so (:class:`ClaimLost`) so that it can run again and see the claim. Claims stay atomic
across processes, since they are decided by the database. On PostgreSQL one statement
claims all the rows of one kind (codes, refresh tokens) of a batch, with one statement
text whatever the batch's size (so that it is prepared once), and the batch is
pipelined: it costs two round trips (claims; inserts and COMMIT), however many requests
it holds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, Generic, TypeVar

from sqlalchemy import Engine

from keyturn.core.models import ApiKey, AuthorizationCode, Consent, Session, Token
from keyturn.core.ports import Conflict, StoreUnavailable

from .checkpoint import BACKSTOP_PAGES, WalCheckpointer
from .database import sqlite_path
from .workers import Workers

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


def _session(row: Sequence[Any]) -> Session:
    return Session(bytes(row[0]), row[1], row[2], row[3])


def _consent(row: Sequence[Any]) -> Consent:
    return Consent(row[0], row[1], _scopes(row[2]), row[3], row[4])


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


def code_from_row(row: Sequence[Any]) -> AuthorizationCode:
    return AuthorizationCode(
        code_hash=bytes(row[0]),
        client_id=row[1],
        account_id=row[2],
        scopes=_scopes(row[3]),
        redirect_uri=row[4],
        code_challenge=row[5],
        code_challenge_method=row[6],
        grant_id=row[7],
        created_at=row[8],
        expires_at=row[9],
        consumed_at=row[10],
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
        self._insert_token = self._insert_tokens + self._token_values
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
        self._insert_code = (
            f"INSERT INTO authorization_codes ({', '.join(CODE_COLUMNS)}) "  # noqa: S608 - constant names
            f"VALUES ({', '.join([mark] * len(CODE_COLUMNS))})"
        )
        code_key = f"code_hash = {mark} AND client_id = {mark}"
        self._select_code = f"SELECT {', '.join(CODE_COLUMNS)} FROM authorization_codes WHERE {code_key}"  # noqa: S608 - constant names
        # The two claims: whoever changes the row first owns the code, or the rotation.
        self._claim_code = _Claim(
            "authorization_codes",
            sets=(("consumed_at", "bigint"),),
            match=(("code_hash", "bytea"), ("client_id", "text")),
            unset=("consumed_at",),
            mark=mark,
        )
        self._claim_rotation = _Claim(
            "tokens",
            sets=(("rotated_at", "bigint"), ("retry_blob", "bytea")),
            match=(("token_hash", "bytea"),),
            unset=("rotated_at", "revoked_at"),
            mark=mark,
        )
        session_columns = "s.session_hash, s.account_id, s.created_at, s.expires_at"
        consent_columns = "c.account_id, c.client_id, c.scope, c.created_at, c.updated_at"
        self._select_session = f"SELECT {session_columns} FROM sessions s WHERE s.session_hash = {mark}"  # noqa: S608
        self._select_consent = (
            f"SELECT {consent_columns} FROM consents c WHERE c.account_id = {mark} AND c.client_id = {mark}"  # noqa: S608
        )
        self._select_session_and_consent = (
            f"SELECT {session_columns}, {consent_columns} FROM sessions s LEFT JOIN consents c "  # noqa: S608 - constant
            f"ON c.account_id = s.account_id AND c.client_id = {mark} WHERE s.session_hash = {mark}"
        )
        self._local = threading.local()
        self._units: list[_Unit] = []
        self._batch: _Batch | None = None
        self._writer: asyncio.Task[None] | None = None
        file_backed = self.sqlite and sqlite_path(str(engine.url)) is not None
        self._wal = WalCheckpointer(self._own_connection) if file_backed else None
        self._committer = Workers(1, "keyturn-commit")  # PostgreSQL: one batch at a time

    # ---- group commit ----

    @property
    def _unit(self) -> _Unit | None:
        """The request this thread is collecting writes for, if any."""
        unit: _Unit | None = getattr(self._local, "unit", None)
        return unit

    def collect(self, func: Callable[[], T]) -> Outcome[T]:
        """Runs ``func`` (one request's synchronous work, in any thread) collecting its
        writes: tokens, codes, audit rows and at most one claim are queued, not written.
        Then, on the event loop, ``submit`` the outcome's handle and await it before
        answering. If ``func`` raises, its tokens and codes are dropped, and its audit
        rows and claim are kept (a code presented with a wrong verifier is used up)."""
        handle = Deferred()
        self._local.unit = handle.unit
        try:
            return Outcome(handle, func(), None)
        except Exception as exc:
            handle.unit.tokens.clear()
            handle.unit.codes.clear()
            return Outcome(handle, None, exc)
        finally:
            self._local.unit = None

    def submit(self, handle: Deferred) -> None:
        """Queues a collected request's writes for the next group commit (on the event
        loop). SQLite commits in the next turn of the loop, on the loop: a commit takes
        microseconds there. PostgreSQL commits in a thread, one batch at a time: what
        arrives meanwhile waits for the next batch."""
        unit = handle.unit
        if unit.claim is None and not unit.tokens and not unit.codes and not unit.audit:
            return
        self._units.append(unit)
        if self._batch is None:
            loop = asyncio.get_running_loop()
            self._batch = _Batch()
            if self.sqlite:
                loop.call_soon(self._write_batch)
            elif self._writer is None:
                self._writer = loop.create_task(self._write_batches())
        handle.batch = self._batch

    def _take_batch(self) -> tuple[list[_Unit], _Batch]:
        units, batch = self._units, self._batch
        self._units, self._batch = [], None
        assert batch is not None
        return units, batch

    def _write_batch(self) -> None:
        units, batch = self._take_batch()
        wal = self._wal
        try:
            if wal is not None and wal.restart_due:
                with self._autocommit() as cursor:
                    wal.catch_up(cursor)
            lost = self._commit(units)
        except Exception as exc:  # every waiting request gets the error, none hangs
            batch.finish(error=exc)
            return
        if wal is not None:
            wal.committed()
        batch.finish(lost)

    async def _write_batches(self) -> None:
        try:
            while self._batch is not None:
                units, batch = self._take_batch()
                try:
                    lost = await self._committer.run(functools.partial(self._commit, units))
                except Exception as exc:
                    batch.finish(error=exc)
                else:
                    batch.finish(lost)
        finally:
            self._writer = None

    def _commit(self, units: Sequence[_Unit]) -> frozenset[Deferred]:
        """One transaction for every queued request; returns the requests whose claim
        another request (or another process) had made first: none of their writes is
        kept."""
        lost: set[Deferred] = set()
        rows: list[Token] = []
        codes: list[tuple[Any, ...]] = []
        audit: list[tuple[Any, ...]] = []
        with self._transaction(pipelined=not self.sqlite) as cursor:
            for claim in (self._claim_code, self._claim_rotation):
                lost.update(self._decide(cursor, claim, [unit for unit in units if unit.claim is claim]))
            for unit in units:
                if unit.handle not in lost:
                    rows.extend(unit.tokens)
                    codes.extend(unit.codes)
                    audit.extend(unit.audit)
            if self.sqlite:
                self._insert_token_rows(cursor, rows)
            elif rows:  # pipelined: one prepared INSERT per row costs less than one long text
                cursor.executemany(self._insert_token, [token_row(token) for token in rows])
            if codes:
                cursor.executemany(self._insert_code, codes)
            if audit:
                cursor.executemany(self._insert_audit, audit)
        return frozenset(lost)

    def _decide(self, cursor: Any, claim: _Claim, units: list[_Unit]) -> list[Deferred]:
        """Runs one kind of claim for ``units``; returns the requests that lost. Rows are
        claimed in key order, so that two processes' batches cannot deadlock on each
        other's rows; within one key, first come first served (the others lose)."""
        units.sort(key=lambda unit: unit.claim_key)
        lost: list[Deferred] = []
        first: dict[bytes, _Unit] = {}
        for unit in units:
            if unit.claim_key in first:
                lost.append(unit.handle)
            else:
                first[unit.claim_key] = unit
        if not first:
            return lost
        if self.sqlite:  # a statement costs microseconds here: one per claim
            for unit in first.values():
                cursor.execute(claim.one, unit.claim_params)
                if cursor.rowcount != 1:
                    lost.append(unit.handle)
            return lost
        cursor.execute(claim.many, claim.many_params(first.values()))
        won = {bytes(row[0]) for row in cursor.fetchall()}
        lost.extend(unit.handle for key, unit in first.items() if key not in won)
        return lost

    @contextmanager
    def _transaction(self, pipelined: bool = False) -> Iterator[Any]:
        """A cursor inside one transaction (SQLite: taking the write lock at once).
        ``pipelined`` (PostgreSQL): statements are sent without waiting for each one's
        result, until a result is fetched or the transaction ends: a batch of writes
        costs one or two round trips, not one per statement."""
        with self._autocommit() as cursor:
            batching = cursor.connection.pipeline() if pipelined else nullcontext()
            try:
                with batching:
                    cursor.execute("BEGIN IMMEDIATE" if self.sqlite else "BEGIN")
                    yield cursor
                    cursor.execute("COMMIT")
            except BaseException:
                cursor.execute("ROLLBACK")  # after a pipeline's end, so that it runs
                raise

    def _insert_token_rows(self, cursor: Any, tokens: Sequence[Token], chunk: int = 64) -> None:
        """Multi-row INSERTs of at most ``chunk`` rows each."""
        for offset in range(0, len(tokens), chunk):
            part = tokens[offset : offset + chunk]
            sql = self._insert_tokens + ", ".join([self._token_values] * len(part))
            cursor.execute(sql, [value for token in part for value in token_row(token)])

    def _autocommit(self) -> AbstractContextManager[Any]:
        """A cursor in autocommit mode; database errors become Conflict or StoreUnavailable."""
        return self._sqlite_cursor() if self.sqlite else self._pooled_cursor()

    @contextmanager
    def _pooled_cursor(self) -> Iterator[Any]:
        pooled = self.engine.raw_connection()
        connection = pooled.driver_connection
        assert connection is not None
        try:
            connection.autocommit = True
            try:
                cursor = connection.cursor()
                try:
                    yield cursor
                finally:
                    cursor.close()
            finally:
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

    @contextmanager
    def _sqlite_cursor(self) -> Iterator[Any]:
        """SQLite: each thread keeps one connection of its own in autocommit mode for
        these statements (on a server, that is the event loop's thread), outside the
        pool: checking a connection out and back in cost as much as the statement."""
        cursor = getattr(self._local, "cursor", None)
        if cursor is None:
            connection = self._own_connection()
            connection.isolation_level = None
            cursor = self._local.cursor = connection.cursor()
            if self._wal is not None:  # its thread checkpoints: SQLite only if it falls behind
                cursor.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
        try:
            yield cursor
        except self._integrity_error as exc:
            raise Conflict(str(exc)) from exc
        except self._error as exc:
            self._local.cursor = None
            cursor.connection.close()
            raise StoreUnavailable(self._describe(exc)) from exc

    def _own_connection(self) -> Any:
        """A connection out of the pool, for one thread to keep (SQLite)."""
        pooled = self.engine.raw_connection()  # configured by the engine's connect hook
        connection = pooled.driver_connection
        assert connection is not None
        pooled.detach()
        return connection

    def close(self) -> None:
        """Stops the WAL checkpoints' thread and the commit thread, and closes this
        thread's own SQLite connection (others close with their threads)."""
        if self._wal is not None:
            self._wal.close()
        self._committer.close()
        cursor = getattr(self._local, "cursor", None)
        if cursor is not None:
            self._local.cursor = None
            cursor.connection.close()

    def insert_tokens(self, tokens: Sequence[Token]) -> None:
        """One multi-row INSERT: all of them or none (queued, inside ``collect()``)."""
        unit = self._unit
        if unit is not None:
            unit.tokens.extend(tokens)
            return
        with self._autocommit() as cursor:
            self._insert_token_rows(cursor, tokens, chunk=max(len(tokens), 1))  # one statement

    def record(self, event: tuple[Any, ...]) -> bool:
        """Queues an audit row (at, kind, account_id, client_id, detail JSON) inside
        ``collect()``; returns False when not collecting (the caller writes it)."""
        unit = self._unit
        if unit is None:
            return False
        unit.audit.append(event)
        return True

    def save_code(self, row: tuple[Any, ...]) -> bool:
        """Queues an authorization code row inside ``collect()``; False otherwise."""
        unit = self._unit
        if unit is None:
            return False
        unit.codes.append(row)
        return True

    @staticmethod
    def _claim(unit: _Unit, claim: _Claim, params: tuple[Any, ...]) -> None:
        if unit.claim is not None:
            raise RuntimeError("one claim per collected request")
        unit.claim = claim
        unit.claim_params = params
        unit.claim_key = params[len(claim.sets)]

    def rotate(self, token_hash: bytes, now: int, retry_blob: bytes | None, new_tokens: Sequence[Token]) -> bool:
        """Claims the refresh token (not rotated, not revoked) and saves its successors,
        atomically. Inside ``collect()`` the claim is decided at the group commit: this
        returns True, and ``Deferred.committed()`` raises :class:`ClaimLost` if another
        request had claimed the token first (nothing of this request is then written)."""
        claim = (now, retry_blob, token_hash)
        unit = self._unit
        if unit is not None:
            self._claim(unit, self._claim_rotation, claim)
            unit.tokens.extend(new_tokens)
            return True
        with self._transaction() as cursor:
            cursor.execute(self._claim_rotation.one, claim)
            claimed = bool(cursor.rowcount == 1)
            if claimed:
                self._insert_token_rows(cursor, new_tokens)
        return claimed

    def consume_code(self, code_hash: bytes, client_id: str, now: int) -> tuple[AuthorizationCode | None, bool]:
        """The store's ``consume_code``. Inside ``collect()`` the claim is decided at the
        group commit (see :meth:`rotate`)."""
        key = (code_hash, client_id)
        unit = self._unit
        with self._autocommit() as cursor:
            if unit is None:
                cursor.execute(self._claim_code.one, (now, *key))
                claimed = bool(cursor.rowcount == 1)
            cursor.execute(self._select_code, key)
            rows = cursor.fetchall()
        if not rows:
            return None, False
        code = code_from_row(rows[0])
        if unit is None:
            return code, not claimed
        if code.consumed_at is not None:
            return code, True
        self._claim(unit, self._claim_code, (now, *key))
        return dataclasses.replace(code, consumed_at=now), False

    def find_token(self, token_hash: bytes) -> Token | None:
        row = self._one(self._select_token, (token_hash,))
        return None if row is None else token_from_row(row)

    def find_api_key(self, key_hash: bytes) -> ApiKey | None:
        row = self._one(self._select_api_key, (key_hash,))
        return None if row is None else api_key_from_row(row)

    def find_session(self, session_hash: bytes) -> Session | None:
        row = self._one(self._select_session, (session_hash,))
        return None if row is None else _session(row)

    def find_consent(self, account_id: int, client_id: str) -> Consent | None:
        row = self._one(self._select_consent, (account_id, client_id))
        return None if row is None else _consent(row)

    def find_session_and_consent(self, session_hash: bytes, client_id: str) -> tuple[Session | None, Consent | None]:
        row = self._one(self._select_session_and_consent, (client_id, session_hash))
        if row is None:
            return None, None
        return _session(row), None if row[4] is None else _consent(row[4:])

    def _one(self, sql: str, params: tuple[Any, ...]) -> Sequence[Any] | None:
        with self._autocommit() as cursor:
            cursor.execute(sql, params)
            # All rows (there is one at most): on SQLite that also ends the statement,
            # so the connection holds no read snapshot between requests.
            rows: list[Sequence[Any]] = cursor.fetchall()
        return rows[0] if rows else None


class ClaimLost(Exception):
    """Another request claimed the same code or refresh token first: the request should
    run again, and will now see the claim."""


class _Claim:
    """A conditional UPDATE that makes a row a request's own: whoever changes the row
    first owns it. Its parameters, per row: the new values of ``sets``, then the values
    of ``match`` (the first is the table's primary key, the claim's key). ``one`` claims
    one row; ``many`` (PostgreSQL) claims any number of rows in one statement, its
    parameters one array per column (``many_params``), and returns the keys of the rows
    it changed."""

    def __init__(
        self,
        table: str,
        sets: tuple[tuple[str, str], ...],
        match: tuple[tuple[str, str], ...],
        unset: tuple[str, ...],
        mark: str,
    ) -> None:
        self.table, self.sets, self.match, self.unset = table, sets, match, unset
        assignments = ", ".join(f"{name} = {mark}" for name, _ in sets)
        where = " AND ".join([f"{name} = {mark}" for name, _ in match] + [f"{name} IS NULL" for name in unset])
        self.one = f"UPDATE {table} SET {assignments} WHERE {where}"  # noqa: S608 - constant names
        self.many = self._many_sql() if mark == "%s" else ""

    def many_params(self, units: Iterable[_Unit]) -> list[list[Any]]:
        """``many``'s parameters: one array per column, a row per unit."""
        return [list(column) for column in zip(*(unit.claim_params for unit in units), strict=True)]

    def _many_sql(self) -> str:
        # One text whatever the number of rows (arrays, not a VALUES list): psycopg
        # converts it once and PostgreSQL prepares it once per connection. The rows
        # are locked (FOR UPDATE, after ORDER BY) in key order before they are
        # changed; a row that another transaction claims meanwhile is checked again
        # once that one commits, and drops out.
        table, key = self.table, self.match[0][0]
        columns = (*self.sets, *self.match)
        names = ", ".join(name for name, _ in columns)
        arrays = ", ".join(f"%s::{kind}[]" for _, kind in columns)
        joined = " AND ".join(
            [f"t.{name} = v.{name}" for name, _ in self.match] + [f"t.{name} IS NULL" for name in self.unset]
        )
        assignments = ", ".join(f"{name} = v.{name}" for name, _ in self.sets)
        return (
            f"WITH v AS (SELECT * FROM unnest({arrays}) AS v ({names})), "  # noqa: S608 - constant names
            f"claimed AS (SELECT t.{key} FROM {table} t JOIN v ON {joined} ORDER BY t.{key} FOR UPDATE OF t) "
            f"UPDATE {table} SET {assignments} FROM v, claimed "
            f"WHERE {table}.{key} = claimed.{key} AND v.{key} = claimed.{key} RETURNING {table}.{key}"
        )


class _Unit:
    """One request's queued writes."""

    __slots__ = ("audit", "claim", "claim_key", "claim_params", "codes", "handle", "tokens")

    def __init__(self, handle: Deferred) -> None:
        self.handle = handle
        self.claim: _Claim | None = None
        self.claim_params: tuple[Any, ...] = ()
        self.claim_key = b""
        self.tokens: list[Token] = []
        self.codes: list[tuple[Any, ...]] = []
        self.audit: list[tuple[Any, ...]] = []


class _Batch:
    """One group commit's outcome, and the requests waiting for it. Each waits on a
    future of its own: a request that gives up (its task cancelled) cancels only that."""

    __slots__ = ("done", "error", "lost", "waiters")

    def __init__(self) -> None:
        self.done = False
        self.error: Exception | None = None
        self.lost: frozenset[Deferred] = frozenset()
        self.waiters: list[asyncio.Future[None]] = []

    def finish(self, lost: frozenset[Deferred] = frozenset(), error: Exception | None = None) -> None:
        self.done, self.lost, self.error = True, lost, error
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_result(None)


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome(Generic[T]):
    """A collected request: its handle, and what it returned or raised."""

    handle: Deferred
    result: T | None
    error: Exception | None


class Deferred:
    """A request's collected writes, and what it waits for before it answers."""

    __slots__ = ("batch", "unit")

    def __init__(self) -> None:
        self.unit = _Unit(self)
        self.batch: _Batch | None = None

    async def committed(self) -> None:
        """Returns once the request's writes are durable; raises :class:`ClaimLost`
        when its claim lost (then nothing of it was written)."""
        batch = self.batch
        if batch is None:
            return
        if not batch.done:
            waiter = asyncio.get_running_loop().create_future()
            batch.waiters.append(waiter)
            await waiter
        if batch.error is not None:
            raise batch.error
        if self in batch.lost:
            raise ClaimLost
