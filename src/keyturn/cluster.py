"""Several workers and nodes: shared rate limits and cache invalidation over Redis.

Nodes share nothing but the database and, when ``redis_url`` is set, Redis:
- ``RedisLimiter`` counts rate limits across every node. While Redis is unreachable it
  counts per node (logged once, visible in /metrics) and tries Redis again after a pause.
- ``Invalidations`` publishes "this client changed" and "the signing keys changed" and
  applies what other nodes publish, so a change takes effect everywhere at once. The
  in-process caches also expire on their own within one second, so even without Redis
  (or while it is away) a revoked, deleted or rotated credential stops working on every
  node within that bound; revoked tokens are never cached at all.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from keyturn.core.ratelimit import LocalLimiter

log = logging.getLogger("keyturn.cluster")

CHANNEL = "keyturn:invalidate"
_RETRY_AFTER = 5.0


class RedisLimiter:
    """Per-key windows in Redis (the window opens at the key's first hit, as in
    LocalLimiter): SET NX EX, INCRBY and TTL in one round trip."""

    def __init__(self, url: str, fallback: LocalLimiter) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._errors: tuple[type[Exception], ...] = (redis.RedisError, OSError)
        self._fallback = fallback
        self._down_until = 0.0
        self.available = True

    def _usable(self) -> bool:
        return self.available or time.monotonic() >= self._down_until

    def _lost(self, exc: Exception) -> None:
        if self.available:
            log.warning("Redis is unreachable (%s): rate limits count per node until it returns", exc)
        self.available = False
        self._down_until = time.monotonic() + _RETRY_AFTER

    def _back(self) -> None:
        if not self.available:
            log.warning("Redis is back: rate limits count across nodes again")
        self.available = True

    def hit(self, key: str, limit: int, window: int, cost: int = 1) -> int | None:
        if not self._usable():
            return self._fallback.hit(key, limit, window, cost)
        name = f"kt:rl:{window}:{key}"
        try:
            pipe = self._redis.pipeline(transaction=True)
            pipe.set(name, 0, ex=window, nx=True)
            pipe.incrby(name, cost)
            pipe.ttl(name)
            _, count, remaining = pipe.execute()
        except self._errors as exc:
            self._lost(exc)
            return self._fallback.hit(key, limit, window, cost)
        self._back()
        return max(1, int(remaining)) if int(count) > limit else None

    def peek(self, key: str, limit: int, window: int) -> int | None:
        if not self._usable():
            return self._fallback.peek(key, limit, window)
        name = f"kt:rl:{window}:{key}"
        try:
            pipe = self._redis.pipeline(transaction=True)
            pipe.get(name)
            pipe.ttl(name)
            value, remaining = pipe.execute()
        except self._errors as exc:
            self._lost(exc)
            return self._fallback.peek(key, limit, window)
        self._back()
        return max(1, int(remaining)) if value is not None and int(value) >= limit else None


class Invalidations:
    """Publishes and applies cache invalidations on a Redis channel."""

    def __init__(self, url: str, on_client: Callable[[str], None], on_keys: Callable[[], None]) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self._errors: tuple[type[Exception], ...] = (redis.RedisError, OSError)
        self._on_client = on_client
        self._on_keys = on_keys
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def publish_client(self, client_id: str) -> None:
        self._publish("client:" + client_id)

    def publish_keys(self) -> None:
        self._publish("keys")

    def _publish(self, message: str) -> None:
        try:
            self._redis.publish(CHANNEL, message)
        except self._errors as exc:
            # The caches' own one-second expiry still bounds the staleness.
            log.warning("could not publish a cache invalidation (%s)", exc)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._listen, name="keyturn-invalidations", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _apply(self, data: Any) -> None:
        message = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
        if message.startswith("client:"):
            self._on_client(message[len("client:") :])
        elif message == "keys":
            self._on_keys()

    def _listen(self) -> None:
        warned = False
        while not self._stop.is_set():
            try:
                pubsub = self._redis.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call, unused-ignore]  # typed from redis 8 on
                pubsub.subscribe(CHANNEL)
                if warned:
                    log.warning("Redis is back: cache invalidations flow again")
                    warned = False
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=0.5)
                    if message is not None and message.get("type") == "message":
                        self._apply(message["data"])
            except self._errors as exc:
                if not warned:
                    log.warning("cache invalidations paused, Redis is unreachable (%s)", exc)
                    warned = True
                self._stop.wait(_RETRY_AFTER)
