from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from keyturn.core.ports import Store
from keyturn.store.database import create_database_engine
from keyturn.store.memory import MemoryStore
from keyturn.store.migrate import upgrade
from keyturn.store.schema import metadata
from keyturn.store.sql import SqlStore


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
