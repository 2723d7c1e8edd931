"""Driver connections for the hot statements (store/reads.py, store/group_commit.py).

Each hot statement runs in autocommit mode on the driver itself: one round trip to
PostgreSQL (no BEGIN, no COMMIT, no pre-ping) and one short implicit transaction in
SQLite, without SQLAlchemy's per-statement machinery. Database errors become
:class:`Conflict` (a unique key is taken) or :class:`StoreUnavailable`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from keyturn.core.ports import Conflict, StoreUnavailable

from .checkpoint import BACKSTOP_PAGES
from .database import sqlite_path


class Connections:
    def __init__(self, engine: Engine, describe: Callable[[BaseException], str]) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        #: A SQLite database in a file (in WAL mode), not in memory.
        self.file_backed = self.sqlite and sqlite_path(str(engine.url)) is not None
        #: The driver's parameter marker.
        self.mark = "?" if self.sqlite else "%s"
        self._describe = describe
        dbapi = engine.dialect.dbapi
        assert dbapi is not None
        self._integrity_error: type[Exception] = dbapi.IntegrityError
        self._error: type[Exception] = dbapi.Error
        self._local = threading.local()

    def autocommit(self) -> AbstractContextManager[Any]:
        """A cursor in autocommit mode."""
        return self._sqlite_cursor() if self.sqlite else self._pooled_cursor()

    @contextmanager
    def transaction(self, pipelined: bool = False) -> Iterator[Any]:
        """A cursor inside one transaction (SQLite: taking the write lock at once).
        ``pipelined`` (PostgreSQL): statements are sent without waiting for each one's
        result, until a result is fetched or the transaction ends: a batch of writes
        costs one or two round trips, not one per statement."""
        with self.autocommit() as cursor:
            batching = cursor.connection.pipeline() if pipelined else nullcontext()
            try:
                with batching:
                    cursor.execute("BEGIN IMMEDIATE" if self.sqlite else "BEGIN")
                    yield cursor
                    cursor.execute("COMMIT")
            except BaseException:
                cursor.execute("ROLLBACK")  # after a pipeline's end, so that it runs
                raise

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A SQLAlchemy connection in a transaction of its own, for the cold statements
        (the store's reads and housekeeping, units of cold writes): committed at the end,
        rolled back on an error, which becomes Conflict or StoreUnavailable."""
        try:
            with self.engine.begin() as connection:
                yield connection
        except IntegrityError as exc:
            raise Conflict(str(exc.orig)) from exc
        except SQLAlchemyError as exc:
            raise StoreUnavailable(self._describe(exc)) from exc

    def one(self, sql: str, params: tuple[Any, ...]) -> Any:
        """The first row of a query (there is one at most), or None."""
        with self.autocommit() as cursor:
            cursor.execute(sql, params)
            # All rows: on SQLite that also ends the statement, so the connection holds
            # no read snapshot between requests.
            rows = cursor.fetchall()
        return rows[0] if rows else None

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
            connection = self.own_connection()
            connection.isolation_level = None
            cursor = self._local.cursor = connection.cursor()
            if self.file_backed:  # a thread checkpoints: SQLite only if it falls behind
                cursor.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
        try:
            yield cursor
        except self._integrity_error as exc:
            raise Conflict(str(exc)) from exc
        except self._error as exc:
            self._local.cursor = None
            cursor.connection.close()
            raise StoreUnavailable(self._describe(exc)) from exc

    def own_connection(self) -> Any:
        """A connection out of the pool, for one thread to keep (SQLite)."""
        pooled = self.engine.raw_connection()  # configured by the engine's connect hook
        connection = pooled.driver_connection
        assert connection is not None
        pooled.detach()
        return connection

    def close(self) -> None:
        """Closes this thread's own SQLite connection (others close with their threads)."""
        cursor = getattr(self._local, "cursor", None)
        if cursor is not None:
            self._local.cursor = None
            cursor.connection.close()
