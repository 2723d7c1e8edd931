"""What a verifier remembers of the answers it got, and for how long.

An accepted credential is remembered by its digest for at most ``ttl`` seconds, never past
its own expiry, and a JWT only while the key its signature was checked with is published.
An introspection answer in use is renewed before it expires: the first request in the
last fifth of its lifetime asks again, while the requests beside it keep the cached
answer (which still holds). A refused credential is remembered for ``negative_ttl``
seconds, apart, so that a flood of bad credentials cannot evict the good ones.
"""

from __future__ import annotations

import math
import threading
from typing import NamedTuple

from ._cache import TTLCache
from ._clock import Clock
from ._errors import InvalidToken
from ._keyset import KeySet
from ._principal import Principal

#: An introspection answer is renewed once this share of its lifetime has passed.
RENEW_AFTER = 0.8


class Accepted(NamedTuple):
    """A cached positive answer for one credential."""

    principal: Principal
    #: The JWKS key a JWT's signature was checked with (None: an introspection answer
    #: alone): the answer counts only while that key is published.
    kid: str | None
    #: When (monotonic) a request should ask the authorization server again; never for
    #: a JWT checked locally, which costs no request to check again.
    renew_at: float


class Answers:
    """The cached answers, by credential digest, and when a request should renew one."""

    def __init__(
        self,
        accepted: TTLCache[Accepted],
        refused: TTLCache[str],
        *,
        ttl: float,
        negative_ttl: float,
        keys: KeySet,
        clock: Clock,
    ) -> None:
        self._accepted = accepted
        self._refused = refused
        self._ttl = ttl
        self._negative_ttl = negative_ttl
        self._keys = keys
        self._clock = clock
        #: Digests of the credentials whose answer a request is renewing right now.
        self._renewing: set[bytes] = set()
        self._renewing_lock = threading.Lock()

    def recall(self, key: bytes) -> tuple[Principal | None, bool]:
        """The cached principal of the credential with digest ``key``, if it still holds,
        and whether this request is the one to renew it (then the principal is what it
        keeps if the authorization server cannot be asked; it calls :meth:`renewed`)."""
        accepted = self._accepted.get(key)
        if accepted is None:
            return None, False
        principal, kid, renew_at = accepted
        # Never past the credential's own expiry, even within the cache lifetime.
        if principal.expires_at is not None and principal.expires_at <= self._clock.time():
            return None, False
        # A checked signature counts only while its key is published: when the JWKS is due
        # to be fetched again (it may have dropped the key), the token takes the long way.
        if kid is not None and (self._keys.get(kid) is None or self._keys.wants_refresh(kid)):
            return None, False
        if self._clock.monotonic() < renew_at:
            return principal, False
        with self._renewing_lock:
            if key in self._renewing:  # another request is renewing it
                return principal, False
            self._renewing.add(key)
        return principal, True

    def renewed(self, key: bytes) -> None:
        with self._renewing_lock:
            self._renewing.discard(key)

    def raise_if_refused(self, key: bytes) -> None:
        reason = self._refused.get(key)
        if reason is not None:
            raise InvalidToken(detail=f"{reason} (cached)")

    def remember_jwt(self, key: bytes, principal: Principal, kid: str) -> Principal:
        """Remembers a JWT whose signature checked out with the key ``kid``."""
        # A signature checked once need not be checked again for ttl seconds (never past
        # exp, and only while its key is published): the bound of an introspection answer.
        self._accepted.put(key, Accepted(principal, kid, math.inf), self._lifetime(principal))
        return principal

    def remember(self, key: bytes, principal: Principal, kid: str | None) -> Principal:
        """Remembers the authorization server's positive answer, to be renewed."""
        ttl = self._lifetime(principal)
        self._accepted.put(key, Accepted(principal, kid, self._clock.monotonic() + ttl * RENEW_AFTER), ttl)
        return principal

    def remember_refusal(self, key: bytes, reason: str) -> InvalidToken:
        """Remembers the authorization server's refusal; the error to raise."""
        self._accepted.discard(key)  # a renewal found it revoked: no request keeps it
        self._refused.put(key, reason, self._negative_ttl)
        return InvalidToken(detail=reason)

    def _lifetime(self, principal: Principal) -> float:
        if principal.expires_at is None:
            return self._ttl
        return min(self._ttl, principal.expires_at - self._clock.time())
