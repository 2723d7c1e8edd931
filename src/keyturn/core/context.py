"""What the protocol functions need, wired once at start-up (see keyturn.runtime)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from keyturn.settings import Settings

from .cache import AccountCache, ClientCache
from .clock import Clock
from .credentials import Hasher
from .errors import RateLimited
from .ports import Store
from .ratelimit import Limiter, NoLimits


class JwtCodec(Protocol):
    """Signs and verifies JWT access tokens (RFC 9068); implemented in keyturn.tokens."""

    def encode(self, claims: Mapping[str, Any]) -> str: ...

    def decode(self, token: str) -> dict[str, Any] | None:
        """The claims of a token this server signed and that has not expired; else None."""
        ...


@dataclass(slots=True)
class Context:
    settings: Settings
    store: Store
    clock: Clock
    hasher: Hasher
    jwt: JwtCodec
    limiter: Limiter = field(default_factory=NoLimits)
    clients: ClientCache = field(init=False)
    accounts: AccountCache = field(init=False)

    def __post_init__(self) -> None:
        self.clients = ClientCache(self.store)
        self.accounts = AccountCache(self.store)

    def limit(self, what: str, key: str, per_minute: int, cost: int = 1) -> None:
        """Counts a request against a per-minute limit; raises RateLimited past it."""
        if per_minute <= 0:
            return
        wait = self.limiter.hit(f"{what}:{key}", per_minute, 60, cost)
        if wait is not None:
            raise RateLimited(wait)

    @property
    def audience(self) -> str:
        return self.settings.audience or self.settings.issuer
