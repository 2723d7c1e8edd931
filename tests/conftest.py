"""Shared fixtures: settings, stores on every backend, and a throw-away PostgreSQL database.

PostgreSQL tests use the server named by KEYTURN_TEST_POSTGRES_URL (default: this project's
machines' postgresql://root@127.0.0.1:5432/test). Each test run creates its own database
and drops it at the end, so two runs never collide. Set KEYTURN_TEST_POSTGRES_URL="" to
skip them on a machine without PostgreSQL.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from keyturn.core.clock import FrozenClock
from keyturn.core.credentials import Hasher
from keyturn.core.ports import Store
from keyturn.settings import Settings
from keyturn.store.database import create_database_engine
from keyturn.store.memory import MemoryStore
from keyturn.store.migrate import upgrade
from keyturn.store.schema import metadata
from keyturn.store.sql import SqlStore

DEFAULT_POSTGRES = "postgresql://root@127.0.0.1:5432/test"
TEST_SECRET = "test-secret-" + "x" * 40


def _admin_url() -> str | None:
    url = os.environ.get("KEYTURN_TEST_POSTGRES_URL", DEFAULT_POSTGRES)
    return url or None


def _sqlalchemy(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, dropped afterwards."""
    admin = _admin_url()
    if admin is None:
        pytest.skip("KEYTURN_TEST_POSTGRES_URL is empty: PostgreSQL tests are off")
    name = f"keyturn_test_{os.getpid()}_{secrets.token_hex(4)}"
    engine = create_engine(_sqlalchemy(admin), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    base, _, _ = admin.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@pytest.fixture
def fresh_postgres_url(postgres_url: str) -> Iterator[str]:
    """An empty PostgreSQL database of its own (for migration tests)."""
    admin = _admin_url()
    assert admin is not None
    name = f"{postgres_url.rpartition('/')[2]}_{secrets.token_hex(3)}"
    engine = create_engine(_sqlalchemy(admin), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{admin.rpartition('/')[0]}/{name}"
    finally:
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def hasher() -> Hasher:
    return Hasher(TEST_SECRET)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'keyturn.db'}"


@pytest.fixture
def settings(sqlite_url: str) -> Settings:
    return Settings().with_overrides(database_url=sqlite_url, secret=TEST_SECRET)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, sqlite_url: str) -> Iterator[Store]:
    """The storage contract's implementations: the in-memory fake, SQLite, PostgreSQL."""
    if request.param == "memory":
        yield MemoryStore()
        return
    url = sqlite_url if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    engine = create_database_engine(url)
    upgrade(engine)
    sql_store = SqlStore(engine)
    try:
        yield sql_store
    finally:
        if request.param == "postgres":
            # One database per run; empty it between tests.
            names = ", ".join(table.name for table in metadata.sorted_tables)
            with engine.begin() as connection:
                connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        sql_store.close()
