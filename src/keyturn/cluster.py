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
from collections.abc import Callable, Sequence
from typing import Any

from keyturn.core.ratelimit import LocalLimiter, Slot

log = logging.getLogger("keyturn.cluster")

CHANNEL = "keyturn:invalidate"
_RETRY_AFTER = 5.0


_TAKE = """
-- KEYS[i] is a slot's key; ARGV[3i-2], ARGV[3i-1], ARGV[3i] its limit, window and cost.
local wait = -1
for i = 1, #KEYS do
  local limit, window, cost = tonumber(ARGV[3*i-2]), tonumber(ARGV[3*i-1]), tonumber(ARGV[3*i])
  local count = tonumber(redis.call('GET', KEYS[i]) or '0')
  if count + math.max(cost, 1) > limit then
    local left = redis.call('TTL', KEYS[i])
    if left < 1 then
      if count > 0 then left = 1 else left = window end
    end
    wait = math.max(wait, left)
  end
end
if wait >= 0 then return wait end
for i = 1, #KEYS do
  local cost = tonumber(ARGV[3*i])
  if cost > 0 then
    redis.call('SET', KEYS[i], 0, 'EX', ARGV[3*i-1], 'NX')
    redis.call('INCRBY', KEYS[i], cost)
  end
end
return -1
"""

_GIVE_BACK = """
-- KEYS[i] is a slot's key, ARGV[i] what to return to it; DECRBY keeps the key's TTL.
for i = 1, #KEYS do
  local count = tonumber(redis.call('GET', KEYS[i]) or '0')
  local cost = tonumber(ARGV[i])
  if count > 0 and cost > 0 then
    redis.call('DECRBY', KEYS[i], math.min(count, cost))
  end
end
return 0
"""


def _name(key: str) -> str:
    # The window is not part of the name: a key's window is the one it was opened with
    # (as in LocalLimiter), which lets a key's window depend on the moment it opens.
    return "kt:rl:" + key


class RedisLimiter:
    """Per-key windows in Redis (the window opens at the key's first count, as in
    LocalLimiter). ``hit`` is SET NX EX, INCRBY and TTL in one transaction; ``take`` and
    ``give_back`` are Lua scripts, so a reservation over several keys is one atomic round
    trip."""

    def __init__(self, url: str, fallback: LocalLimiter) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._errors: tuple[type[Exception], ...] = (redis.RedisError, OSError)
        self._take = self._redis.register_script(_TAKE)
        self._give_back = self._redis.register_script(_GIVE_BACK)
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
        name = _name(key)
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
        name = _name(key)
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

    def take(self, slots: Sequence[Slot]) -> int | None:
        if not slots:
            return None
        if not self._usable():
            return self._fallback.take(slots)
        args = [number for slot in slots for number in (slot.limit, slot.window, slot.cost)]
        try:
            wait = int(self._take(keys=[_name(slot.key) for slot in slots], args=args))
        except self._errors as exc:
            self._lost(exc)
            return self._fallback.take(slots)
        self._back()
        return wait if wait >= 0 else None

    def give_back(self, slots: Sequence[Slot]) -> None:
        if not slots:
            return
        if not self._usable():
            self._fallback.give_back(slots)
            return
        try:
            self._give_back(keys=[_name(slot.key) for slot in slots], args=[slot.cost for slot in slots])
        except self._errors as exc:
            self._lost(exc)
            self._fallback.give_back(slots)
            return
        self._back()

    def counts(self, keys: Sequence[str]) -> list[int]:
        if not keys:
            return []
        if not self._usable():
            return self._fallback.counts(keys)
        try:
            values = self._redis.mget([_name(key) for key in keys])
        except self._errors as exc:
            self._lost(exc)
            return self._fallback.counts(keys)
        self._back()
        return [int(value) if value is not None else 0 for value in values]


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
