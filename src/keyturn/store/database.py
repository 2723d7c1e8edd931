"""Engines for SQLite (the embedded default) and PostgreSQL."""

from __future__ import annotations

import os
import sqlite3
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool


def sqlalchemy_url(database_url: str) -> str:
    """Keyturn's URLs name the database; SQLAlchemy's also name the driver."""
    scheme, _, rest = database_url.partition("://")
    if scheme in ("postgresql", "postgres"):
        return "postgresql+psycopg://" + rest
    return database_url


def is_sqlite(database_url: str) -> bool:
    return database_url.startswith("sqlite")


def sqlite_path(database_url: str) -> str | None:
    """The file of a SQLite URL; None for an in-memory database."""
    database = make_url(database_url).database
    return None if database in (None, "", ":memory:") else database


def create_private_file(path: str) -> None:
    """Creates the SQLite file, if it does not exist yet, readable by its owner only (like
    keyturn.secret): it holds password hashes and sealed signing keys. SQLite gives the
    -wal, -shm and -journal files it creates beside it the database file's permission bits,
    so they are 0600 too. An existing file is left as it is: its owner chose its mode."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:
        # It exists; or its folder is missing or read-only, which SQLite reports when it
        # opens the file.
        return
    os.close(fd)


#: PostgreSQL connections each process keeps open; requests run in at most this many
#: threads at once (keyturn.runtime), so none has to open a connection.
POSTGRES_POOL_SIZE = 20


def create_database_engine(database_url: str, **options: Any) -> Engine:
    url = sqlalchemy_url(database_url)
    if not is_sqlite(url):
        # Fail fast when the server is away rather than hang a request for minutes. No
        # pre-ping (a round trip per request): a broken connection is detected when used,
        # answered 503, and the pool is renewed.
        connect_args = {"connect_timeout": 5, "application_name": "keyturn"}
        # Overflow connections are closed when returned: a request that needs one pays for a
        # new server process. They serve only what runs beside the request threads
        # (housekeeping, key refresh, CLI).
        return create_engine(url, pool_size=POSTGRES_POOL_SIZE, max_overflow=5, connect_args=connect_args, **options)

    path = sqlite_path(url)
    if path is None:
        # One shared connection, or every connection would see its own empty database.
        engine = create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False}, **options)
    else:
        create_private_file(path)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10}, **options)

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=10000")
            if sqlite_path(url) is not None:
                # WAL lets readers run beside the writer; NORMAL is durable across
                # application crashes and loses at most the last commits on power loss.
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    return engine
