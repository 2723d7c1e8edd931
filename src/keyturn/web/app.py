"""The ASGI application Keyturn serves: an exact-path table for the protocol API
(keyturn.web.api, bare ASGI) and the discovery, health and metrics endpoints; every
other path goes to the pages (keyturn.web.pages, Starlette). Errors of the API become
responses in keyturn.web.errors. Also the server's lifespan: housekeeping and
re-reading the signing keys."""

from __future__ import annotations

import contextlib
import gc
import logging
import random
from collections.abc import Awaitable, Callable

import anyio

from keyturn.core.errors import OAuthError
from keyturn.core.metadata import (
    AUTHORIZE_PATH,
    INTROSPECT_PATH,
    JWKS_PATH,
    ME_PATH,
    METADATA_PATH,
    REVOKE_PATH,
    TOKEN_PATH,
    server_metadata,
)
from keyturn.core.ports import StoreUnavailable
from keyturn.runtime import Runtime

from .api import ProtocolEndpoints
from .errors import NOT_FOUND, send_error, send_unavailable, send_unexpected
from .http import NO_STORE, Message, Receive, Request, Scope, Send, json_bytes, send_bytes, send_json
from .metrics import Metrics, multiprocess
from .observability import log_request, now, request_id
from .pages import create_pages_app

log = logging.getLogger("keyturn.web")
#: Seconds between re-reads of the signing keys by a running server.
KEY_REFRESH_INTERVAL = 5.0
#: Seconds between writes of a worker's gauges (several workers only).
GAUGE_REFRESH_INTERVAL = 5.0

Handler = Callable[[Request, Receive, Send], Awaitable[None]]
_JSON = b"application/json"
_PUBLIC_CACHE = [(b"cache-control", b"public, max-age=300")]


class KeyturnApp:
    def __init__(self, runtime: Runtime, *, freeze_heap: bool = False) -> None:
        self.runtime = runtime
        self._freeze_heap = freeze_heap
        self._metadata = json_bytes(server_metadata(runtime.settings))
        self.metrics = metrics = Metrics()
        _describe(metrics, runtime)
        protocol = ProtocolEndpoints(runtime.ctx, runtime.blocking, metrics)
        self._authorization, self.pages = create_pages_app(
            runtime.ctx, runtime.blocking, metrics, runtime.client_changed
        )
        self._metrics_addresses = frozenset(runtime.settings.metrics_addresses)
        post = frozenset({"POST"})
        # path -> (allowed methods, handler)
        self.routes: dict[str, tuple[frozenset[str], Handler]] = {
            TOKEN_PATH: (post, protocol.token),
            INTROSPECT_PATH: (post, protocol.introspect),
            REVOKE_PATH: (post, protocol.revoke),
            ME_PATH: (frozenset({"GET"}), protocol.me),
            METADATA_PATH: (frozenset({"GET", "HEAD"}), self.metadata),
            JWKS_PATH: (frozenset({"GET", "HEAD"}), self.jwks),
            "/healthz": (frozenset({"GET", "HEAD"}), self.healthz),
            "/readyz": (frozenset({"GET", "HEAD"}), self.readyz),
            "/metrics": (frozenset({"GET"}), self.metrics_endpoint),
        }
        self._page_prefixes = ("/oauth/authorize", "/login", "/logout", "/signup", "/account", "/static")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        started = now()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode("ascii"))]
            await send(message)

        request = Request(scope)
        rid = request_id(request.header(b"x-request-id"))
        try:
            await self._dispatch(request, scope, receive, send_and_note)
        finally:
            elapsed = now() - started
            path = request.path
            endpoint = (
                path if path in self.routes else next((p for p in self._page_prefixes if path.startswith(p)), "other")
            )
            self.metrics.observe_request(endpoint, request.method, status, elapsed)
            client = scope.get("client")
            log_request(rid, request.method, path, status, elapsed, client[0] if client else None)

    async def _dispatch(self, request: Request, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routes.get(request.path)
        if route is None:
            if request.path == AUTHORIZE_PATH and request.method == "GET":
                # The one hot page: a signed-in user's silent approval (or a 503).
                with contextlib.suppress(StoreUnavailable):  # the page handlers answer it
                    if await self._authorization.authorize_silently(request, send):
                        return
            # Everything that is not a hot protocol endpoint: the server-rendered pages.
            await self.pages(scope, receive, send)
            return
        try:
            methods, handler = route
            if request.method not in methods:
                allow = ", ".join(sorted(methods)).encode("ascii")
                await send_json(
                    send,
                    405,
                    {"error": "invalid_request", "error_description": f"Use {allow.decode()} for this endpoint."},
                    [(b"allow", allow), *NO_STORE],
                )
                return
            await handler(request, receive, send)
        except OAuthError as exc:
            if exc.error == "invalid_client":
                self.metrics.inc("keyturn_client_auth_failures_total", (("endpoint", request.path),))
            elif exc.status_code == 429:
                self.metrics.inc("keyturn_rate_limited_total", (("limit", request.path),))
            await send_error(send, exc)
        except StoreUnavailable as exc:
            await send_unavailable(send, request.path, exc)
        except Exception:
            await send_unexpected(send, request.method, request.path)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        async with anyio.create_task_group() as background:
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    if self.runtime.invalidations is not None:
                        self.runtime.invalidations.start()
                    if self.runtime.settings.purge_interval > 0:
                        background.start_soon(self._housekeeping)
                    background.start_soon(self._refresh_keys)
                    if multiprocess():
                        background.start_soon(self._refresh_gauges)
                    if self._freeze_heap:
                        _freeze_heap()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    background.cancel_scope.cancel()
                    break
        self.runtime.close()
        await send({"type": "lifespan.shutdown.complete"})

    async def _housekeeping(self) -> None:
        """Deletes what has expired every purge_interval seconds (jittered, so that the
        workers and nodes of one deployment do not all run at the same moment)."""
        from keyturn.core.housekeeping import purge

        interval = self.runtime.settings.purge_interval
        while True:
            await anyio.sleep(interval * random.uniform(0.8, 1.2))  # noqa: S311 - jitter, not security
            try:
                deleted = await anyio.to_thread.run_sync(
                    lambda: purge(self.runtime.store, self.runtime.clock, self.runtime.settings)
                )
                await self._rotate_keys_if_due()
            except StoreUnavailable as exc:
                log.warning("housekeeping skipped: %s", exc)
                continue
            if any(deleted.values()):
                log.info("housekeeping deleted %s", deleted)

    async def _refresh_keys(self) -> None:
        """Re-reads the signing keys every few seconds, so a rotation made elsewhere (the
        CLI, another node) reaches this process without Redis too."""
        while True:
            await anyio.sleep(KEY_REFRESH_INTERVAL)
            try:
                await anyio.to_thread.run_sync(self.runtime.keyring.reload)
            except StoreUnavailable as exc:
                log.warning("signing keys not refreshed: %s", exc)

    async def _refresh_gauges(self) -> None:
        """Writes this worker's gauges now and then, so that the worker that answers a
        scrape reads the others' too (keyturn.web.metrics)."""
        while True:
            self.metrics.refresh_gauges()
            await anyio.sleep(GAUGE_REFRESH_INTERVAL)

    async def _rotate_keys_if_due(self) -> None:
        """Re-reads the key ring (a retired key leaves the JWKS once its tokens have
        expired) and rotates when signing_key_rotation_days says so: the key and its
        audit event in one unit. Another node that rotated first wins, and this one
        writes nothing (keyturn.core.key_rotation)."""
        from keyturn.core.key_rotation import rotate_when_due

        runtime = self.runtime
        await anyio.to_thread.run_sync(runtime.keyring.reload)
        rotated = await runtime.blocking.flow(rotate_when_due(runtime.ctx, runtime.keyring))
        if rotated is not None:
            await anyio.to_thread.run_sync(runtime.keys_changed)
            log.info("rotated the signing key to %s (signing_key_rotation_days)", rotated.kid)

    # ---- endpoints ----

    async def metadata(self, request: Request, receive: Receive, send: Send) -> None:
        await send_bytes(send, 200, self._metadata, _JSON, _PUBLIC_CACHE)

    async def jwks(self, request: Request, receive: Receive, send: Send) -> None:
        await send_bytes(send, 200, self.runtime.keyring.jwks_json, b"application/jwk-set+json", _PUBLIC_CACHE)

    async def metrics_endpoint(self, request: Request, receive: Receive, send: Send) -> None:
        client = request.scope.get("client")
        if "*" not in self._metrics_addresses and (client is None or client[0] not in self._metrics_addresses):
            await send_json(send, 404, NOT_FOUND)
            return
        await send_bytes(
            send,
            200,
            self.metrics.render(),
            b"text/plain; version=0.0.4; charset=utf-8",
            [(b"cache-control", b"no-store")],
        )

    async def healthz(self, request: Request, receive: Receive, send: Send) -> None:
        await send_json(send, 200, {"status": "ok"}, [(b"cache-control", b"no-store")])

    async def readyz(self, request: Request, receive: Receive, send: Send) -> None:
        try:
            with anyio.fail_after(5):
                await anyio.to_thread.run_sync(self.runtime.store.ping)
        except (StoreUnavailable, TimeoutError) as exc:
            log.warning("readiness check failed: %s", exc or "database did not answer within 5 s")
            await send_json(
                send, 503, {"status": "unavailable", "database": "unreachable"}, [(b"cache-control", b"no-store")]
            )
            return
        await send_json(send, 200, {"status": "ready", "database": "ok"}, [(b"cache-control", b"no-store")])


def _describe(metrics: Metrics, runtime: Runtime) -> None:
    limiter = runtime.ctx.limiter
    if hasattr(limiter, "available"):
        metrics.add_gauge("keyturn_redis_up", lambda: [((), 1.0 if limiter.available else 0.0)])
    clients = runtime.ctx.clients
    metrics.add_gauge(
        "keyturn_cache_lookups",
        lambda: [
            ((("cache", "clients"), ("result", "hit")), float(clients.hits)),
            ((("cache", "clients"), ("result", "miss")), float(clients.misses)),
        ],
    )


def create_app(runtime: Runtime, *, freeze_heap: bool = False) -> KeyturnApp:
    """The ASGI app. ``freeze_heap``: for a server process (``keyturn serve``), which
    then owns the interpreter's garbage collector."""
    return KeyturnApp(runtime, freeze_heap=freeze_heap)


def _freeze_heap() -> None:
    """Moves what start-up built (modules, classes, settings, caches) out of the cyclic
    garbage collector's reach. A full collection walks every tracked object; with these,
    it stalled the event loop under load, and every request in flight waited
    (bench/RESULTS.md). What start-up built lives as long as the process anyway."""
    gc.collect()
    gc.freeze()
