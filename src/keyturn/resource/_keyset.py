"""The issuer's signing keys, cached, and when to fetch them again.

The JWKS is fetched on first use, again when it is older than ``max_age`` (so a removed
key stops being accepted), and again when a token names an unknown ``kid`` (a rotated-in
key) — but at most once per ``refresh_interval``, so tokens with made-up key ids cannot
turn the resource server into a JWKS-fetching loop against the authorization server.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import jwt

from ._discovery import Metadata, json_object, jwks_request
from ._errors import AuthServerUnavailable
from ._flow import Fetch, fetch
from ._jwt import parse_jwks

log = logging.getLogger("keyturn.resource")


class KeySet:
    def __init__(self, *, refresh_interval: float, max_age: float, monotonic: Callable[[], float]) -> None:
        self.refresh_interval = refresh_interval
        self.max_age = max_age
        self._monotonic = monotonic
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None

    @property
    def fetched(self) -> bool:
        return self._fetched_at is not None

    def get(self, kid: str) -> jwt.PyJWK | None:
        return self._keys.get(kid)

    def wants_refresh(self, kid: str) -> bool:
        """Whether a token with this ``kid`` is a reason to fetch the JWKS now."""
        now = self._monotonic()
        if self._fetched_at is None:
            # Nothing to verify with yet: every request may try (each failure is a 503).
            return True
        if self._attempted_at is not None and now - self._attempted_at < self.refresh_interval:
            return False
        return kid not in self._keys or now - self._fetched_at >= self.max_age

    def attempt(self) -> None:
        self._attempted_at = self._monotonic()

    def replace(self, keys: dict[str, jwt.PyJWK]) -> None:
        self._keys = keys
        self._fetched_at = self._monotonic()

    def refresh(self, kid: str, metadata: Metadata) -> Fetch[None]:
        """Fetches the JWKS for a token naming ``kid``, if that is still wanted: run under the
        driver's lock, this asks again whether the request before it already fetched. A
        failed fetch keeps the keys known, unless ``kid`` is not among them."""
        if not self.wants_refresh(kid):
            return
        self.attempt()
        try:
            response = yield from fetch(jwks_request(metadata))
            keys = parse_jwks(json_object(response, "JWKS"))
        except (AuthServerUnavailable, ValueError) as exc:
            if self.get(kid) is None:
                # Cannot tell a good token from a bad one: 503, not 401.
                raise AuthServerUnavailable(detail=f"JWKS: {exc!r}") from None
            log.warning("keeping the cached JWKS: refreshing it failed (%r)", exc)
            return
        self.replace(keys)
