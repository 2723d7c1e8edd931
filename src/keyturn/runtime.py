"""Wiring: from validated settings to an open store, a key ring and the helpers core needs,
and how a server runs core on that store (where blocking calls run, what commits a unit
of work).

Shared by the CLI and the web app so that both see the same database the same way.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from keyturn.core.clock import Clock, SystemClock
from keyturn.core.context import Context
from keyturn.core.credentials import Hasher
from keyturn.core.ports import Store, StoreUnavailable
from keyturn.core.service import Done, Flow, advance, failed
from keyturn.core.unit_of_work import UnitOfWork
from keyturn.settings import Settings

if TYPE_CHECKING:
    from keyturn.cluster import Invalidations
    from keyturn.tokens.keys import KeyRing

log = logging.getLogger("keyturn")
T = TypeVar("T")

DEV_SECRET_FILE = "keyturn.secret"


class StartupError(Exception):
    """Keyturn cannot start as configured; the message is one line a newcomer can act on."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Threads(Protocol):
    """Threads that run blocking calls for the event loop (keyturn.store.workers)."""

    def run(self, call: Callable[[], T]) -> Awaitable[T]: ...

    def close(self) -> None: ...


class Blocking:
    """How a server runs core, which does blocking database I/O: inline on the event loop
    (``threads`` None: SQLite, where a call takes microseconds), or in worker threads
    (PostgreSQL: one slow query must not stall the loop). ``flow`` drives core's flows
    that write (keyturn.core.service): each unit goes to ``commit`` (the store's group
    commit), and the request answers once its unit is committed."""

    def __init__(self, threads: Threads | None, commit: Callable[[UnitOfWork], Awaitable[bool]]) -> None:
        self._threads = threads
        self._commit = commit

    async def __call__(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        call = functools.partial(func, *args, **kwargs)
        threads = self._threads
        return call() if threads is None else await threads.run(call)

    async def flow(self, flow: Flow[T]) -> T:
        threads = self._threads
        step = advance(flow) if threads is None else await threads.run(functools.partial(advance, flow))
        while not isinstance(step, Done):
            try:
                lost = await self._commit(step)
            except Exception as exc:
                step = failed(flow, exc)
                continue
            if lost and threads is not None:  # it runs again: blocking I/O
                step = await threads.run(functools.partial(advance, flow, True))
            else:  # after a commit that lost nothing, a flow ends without I/O
                step = advance(flow, lost)
        return step.value

    def close(self) -> None:
        if self._threads is not None:
            self._threads.close()


@dataclass(slots=True)
class Runtime:
    #: What the protocol functions get.
    ctx: Context
    keyring: KeyRing
    #: How a server runs core: where blocking calls run, and what commits a unit of work.
    blocking: Blocking
    #: Cross-node cache invalidation, when Redis is configured.
    invalidations: Invalidations | None = None

    def client_changed(self, client_id: str) -> None:
        """A client was changed or deleted: forget it here and on every other node."""
        self.ctx.clients.invalidate(client_id)
        if self.invalidations is not None:
            self.invalidations.publish_client(client_id)

    def keys_changed(self) -> None:
        self.keyring.reload()
        if self.invalidations is not None:
            self.invalidations.publish_keys()

    @property
    def settings(self) -> Settings:
        return self.ctx.settings

    @property
    def store(self) -> Store:
        return self.ctx.store

    @property
    def clock(self) -> Clock:
        return self.ctx.clock

    @property
    def hasher(self) -> Hasher:
        return self.ctx.hasher

    def close(self) -> None:
        if self.invalidations is not None:
            self.invalidations.stop()
        self.blocking.close()
        self.ctx.store.close()


def server_secret(settings: Settings) -> str:
    """The configured secret; in development, one kept in a file beside the database."""
    if settings.secret is not None:
        return settings.secret
    if settings.production:  # settings validation refuses this already
        raise StartupError("KEYTURN_SECRET is required in production", exit_code=2)
    from keyturn.store.database import is_sqlite, sqlite_path

    folder = "."
    if is_sqlite(settings.database_url):
        path = sqlite_path(settings.database_url)
        if path is not None:
            folder = os.path.dirname(path) or "."
    secret_path = os.path.join(folder, DEV_SECRET_FILE)
    try:
        fd = os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    except OSError as exc:
        raise StartupError(f"cannot create the development secret file {secret_path}: {exc.strerror}") from None
    else:
        import secrets

        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
        log.warning("development mode: created a server secret in %s (set KEYTURN_SECRET in production)", secret_path)
    try:
        with open(secret_path, encoding="utf-8") as handle:
            secret = handle.read().strip()
    except OSError as exc:
        raise StartupError(f"cannot read the development secret file {secret_path}: {exc.strerror}") from None
    if len(secret) < 32:
        raise StartupError(
            f"the development secret file {secret_path} is damaged; delete it only if this database is new"
        )
    return secret


def open_runtime(settings: Settings, *, migrate: bool = True, clock: Clock | None = None) -> Runtime:
    """Opens the database (migrating it when ``migrate``), and loads or creates the
    signing keys. Raises StartupError with a one-line explanation."""
    from cryptography.exceptions import InvalidTag

    from keyturn.store.database import POSTGRES_POOL_SIZE, create_database_engine, is_sqlite
    from keyturn.store.migrate import SchemaError, check_revision, schema_status, upgrade
    from keyturn.store.sql import SqlStore
    from keyturn.tokens.keys import KeyRing, KeySealer

    secret = server_secret(settings)
    clock = clock or SystemClock()
    engine = create_database_engine(settings.database_url)
    try:
        if migrate:
            upgrade(engine)
        elif check_revision(schema_status(engine)):
            raise StartupError("the database schema is not up to date: run `keyturn db upgrade` first")
        store = SqlStore(engine)
        keyring = KeyRing(store, KeySealer(secret), clock)
        keyring.ensure(settings.signing_alg)
    except StoreUnavailable as exc:
        engine.dispose()
        raise StartupError(str(exc)) from None
    except SchemaError as exc:
        engine.dispose()
        raise StartupError(str(exc)) from None
    except InvalidTag:
        engine.dispose()
        raise StartupError(
            "the signing keys in this database were sealed with a different server secret: "
            "set KEYTURN_SECRET to the secret the database was created with"
        ) from None
    except StartupError:
        engine.dispose()
        raise
    from keyturn.core.ratelimit import Limiter, LocalLimiter
    from keyturn.tokens.jwt import JwtAccessTokens

    limiter: Limiter = LocalLimiter(clock)
    if settings.redis_url is not None:
        from keyturn.cluster import RedisLimiter

        limiter = RedisLimiter(settings.redis_url, fallback=LocalLimiter(clock))
    ctx = Context(
        settings=settings,
        store=store,
        clock=clock,
        hasher=Hasher(secret),
        jwt=JwtAccessTokens(keyring, settings.issuer, clock),
        limiter=limiter,
    )
    from keyturn.store.workers import Workers

    # As many threads as pooled connections: more would wait for a connection, or open
    # (and close again) one of their own. Not anyio's to_thread nor an executor (see
    # keyturn.store.workers).
    threads = None if is_sqlite(settings.database_url) else Workers(POSTGRES_POOL_SIZE, "keyturn-db")
    runtime = Runtime(ctx=ctx, keyring=keyring, blocking=Blocking(threads, store.group.commit))
    if settings.redis_url is not None:
        from keyturn.cluster import Invalidations

        runtime.invalidations = Invalidations(settings.redis_url, ctx.clients.invalidate, keyring.reload)
    return runtime
