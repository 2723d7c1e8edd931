"""Bringing a database to the schema this Keyturn expects, safely under concurrency.

Start-up reads one row (``alembic_version``) and imports Alembic only when there is
something to do. Upgrades hold a lock — a PostgreSQL advisory lock, or a lock file next
to a SQLite database — so that two servers started at once never apply a migration twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from keyturn.core.ports import StoreUnavailable

from .database import is_sqlite, sqlite_path

#: Every revision this code knows, oldest first; a test checks it against the scripts.
REVISIONS = ("0001", "0002")
HEAD = REVISIONS[-1]
_ADVISORY_LOCK_KEY = 0x6B65797475726E  # "keyturn"


class SchemaError(Exception):
    """The database's schema cannot be used by this version of Keyturn."""


def current_revision(connection: Connection) -> str | None:
    if not inspect(connection).has_table("alembic_version"):
        return None
    row = connection.execute(text("SELECT version_num FROM alembic_version")).first()
    return None if row is None else str(row[0])


def check_revision(revision: str | None) -> bool:
    """True when an upgrade is needed; raises SchemaError if the database is newer."""
    if revision == HEAD:
        return False
    if revision is not None and revision not in REVISIONS:
        raise SchemaError(
            f"the database is at schema revision {revision!r}, which this Keyturn does not know "
            f"(it knows up to {HEAD!r}): it was migrated by a newer Keyturn; upgrade Keyturn to use it"
        )
    return True


def schema_status(engine: Engine) -> str | None:
    """The database's revision; raises StoreUnavailable or SchemaError."""
    try:
        with engine.connect() as connection:
            revision = current_revision(connection)
    except SQLAlchemyError as exc:
        raise StoreUnavailable(describe_database_error(engine, exc)) from exc
    check_revision(revision)
    return revision


def upgrade(engine: Engine) -> bool:
    """Migrates the database to HEAD if needed. Returns True if anything was applied."""
    if not check_revision(schema_status(engine)):
        return False
    try:
        with _migration_lock(engine) as connection:
            # Another process may have migrated while we waited for the lock.
            if not check_revision(current_revision(connection)):
                connection.commit()
                return False
            _run_alembic(connection)
            connection.commit()
    except (SchemaError, StoreUnavailable):
        raise
    except SQLAlchemyError as exc:
        raise StoreUnavailable(describe_database_error(engine, exc)) from exc
    return True


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[Connection]:
    if not is_sqlite(str(engine.url)):
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})
            connection.commit()
            try:
                yield connection
            finally:
                connection.rollback()
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _ADVISORY_LOCK_KEY})
                connection.commit()
        return

    path = sqlite_path(str(engine.url))
    if path is None:
        with engine.connect() as connection:
            yield connection
        return
    fd = os.open(path + ".migrate-lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with engine.connect() as connection:
            yield connection
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _run_alembic(connection: Connection) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "keyturn.store:migrations")
    config.attributes["connection"] = connection
    command.upgrade(config, HEAD)


def describe_database_error(engine: Engine, exc: BaseException) -> str:
    """One line a newcomer can act on, without credentials from the URL."""
    where = engine.url.render_as_string(hide_password=True)
    original = getattr(exc, "orig", None) or exc
    message = str(original).strip().splitlines()[0] if str(original).strip() else type(original).__name__
    if is_sqlite(str(engine.url)):
        if "file is not a database" in message or "malformed" in message:
            return f"{sqlite_path(str(engine.url))} is not a usable SQLite database ({message}); is it corrupt?"
        if isinstance(exc, OperationalError) and "unable to open" in message:
            path = sqlite_path(str(engine.url))
            return f"cannot open SQLite database {path}: check that its folder exists and is writable"
    elif isinstance(exc, OperationalError | DBAPIError):
        return f"cannot reach the database at {where}: {message}"
    return f"database error at {where}: {message}"
