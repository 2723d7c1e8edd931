"""Migrations: they agree with the tables, run once under concurrency, and refuse what
they cannot handle without touching it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from keyturn.core.ports import StoreUnavailable
from keyturn.store.database import create_database_engine
from keyturn.store.migrate import HEAD, REVISIONS, SchemaError, current_revision, schema_status, upgrade
from keyturn.store.schema import metadata


def _script_directory() -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", "keyturn.store:migrations")
    return ScriptDirectory.from_config(config)


def test_known_revisions_match_the_migration_scripts() -> None:
    scripts = _script_directory()
    chain = [rev.revision for rev in scripts.walk_revisions()]
    assert tuple(reversed(chain)) == REVISIONS
    assert scripts.get_heads() == [HEAD]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    if request.param == "sqlite":
        return sqlite_url
    url: str = request.getfixturevalue("fresh_postgres_url")
    return url


def test_migrations_create_exactly_the_tables_the_code_defines(empty_database: str) -> None:
    engine = create_database_engine(empty_database)
    try:
        assert upgrade(engine) is True
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
            assert current_revision(connection) == HEAD
    finally:
        engine.dispose()


def test_upgrade_is_idempotent(empty_database: str) -> None:
    engine = create_database_engine(empty_database)
    try:
        assert upgrade(engine) is True
        assert upgrade(engine) is False
        assert schema_status(engine) == HEAD
    finally:
        engine.dispose()


def test_downgrade_then_upgrade_round_trips(empty_database: str) -> None:
    from alembic import command

    engine = create_database_engine(empty_database)
    try:
        upgrade(engine)
        with engine.begin() as connection:
            config = Config()
            config.set_main_option("script_location", "keyturn.store:migrations")
            config.attributes["connection"] = connection
            command.downgrade(config, "base")
        with engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) <= {"alembic_version"}
        assert upgrade(engine) is True
    finally:
        engine.dispose()


def test_upgrading_from_the_first_revision_keeps_the_data(empty_database: str) -> None:
    from alembic import command

    engine = create_database_engine(empty_database)
    try:
        with engine.begin() as connection:
            config = Config()
            config.set_main_option("script_location", "keyturn.store:migrations")
            config.attributes["connection"] = connection
            command.upgrade(config, REVISIONS[0])
            connection.execute(
                text(
                    "INSERT INTO accounts (email, email_key, name, company, alias, attributes, disabled, created_at,"
                    " updated_at) VALUES ('a@example.com', 'a@example.com', '', '', '', '{}', false, 1, 1)"
                )
            )
        assert schema_status(engine) == REVISIONS[0]
        assert upgrade(engine) is True
        with engine.connect() as connection:
            assert connection.execute(text("SELECT email FROM accounts")).all() == [("a@example.com",)]
            assert current_revision(connection) == HEAD
    finally:
        engine.dispose()


def test_a_database_newer_than_the_code_is_refused_untouched(empty_database: str) -> None:
    engine = create_database_engine(empty_database)
    try:
        upgrade(engine)
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
            connection.execute(text("DROP TABLE audit_events"))
        with pytest.raises(SchemaError, match=r"'9999_future'.*newer Keyturn"):
            upgrade(engine)
        with engine.connect() as connection:
            assert current_revision(connection) == "9999_future"
            assert not inspect(connection).has_table("audit_events")
    finally:
        engine.dispose()


def test_a_corrupt_sqlite_file_is_reported_and_left_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "keyturn.db"
    garbage = b"this is not a database\n" * 400
    path.write_bytes(garbage)
    engine = create_database_engine(f"sqlite:///{path}")
    try:
        with pytest.raises(StoreUnavailable, match="is not a usable SQLite database"):
            upgrade(engine)
    finally:
        engine.dispose()
    assert path.read_bytes() == garbage


def test_an_unreachable_postgres_is_one_clear_error() -> None:
    engine = create_database_engine("postgresql://nobody@127.0.0.1:1/keyturn")
    try:
        with pytest.raises(
            StoreUnavailable, match=r"^cannot reach the database at postgresql\+psycopg://nobody@127.0.0.1:1/keyturn"
        ):
            upgrade(engine)
    finally:
        engine.dispose()


def _concurrent_upgrades(database_url: str, count: int) -> list[subprocess.CompletedProcess[str]]:
    script = (
        "import sys;"
        "from keyturn.store.database import create_database_engine;"
        "from keyturn.store.migrate import upgrade;"
        "e = create_database_engine(sys.argv[1]);"
        "print('applied' if upgrade(e) else 'skipped')"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, database_url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(count)
    ]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        results.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    return results


def test_concurrent_upgrades_apply_the_migration_once(empty_database: str) -> None:
    results = _concurrent_upgrades(empty_database, 4)
    assert [r.returncode for r in results] == [0, 0, 0, 0], [r.stderr for r in results]
    outcomes = sorted(r.stdout.strip() for r in results)
    assert outcomes == ["applied", "skipped", "skipped", "skipped"]
    engine = create_database_engine(empty_database)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
        assert [tuple(r) for r in rows] == [(HEAD,)]
    finally:
        engine.dispose()
