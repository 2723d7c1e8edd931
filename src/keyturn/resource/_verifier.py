"""From a presented credential to a :class:`Principal`, or an :class:`AuthError`.

JWT access tokens are checked locally against the issuer's JWKS. Opaque access tokens and
API keys are asked about at the introspection endpoint, and the answer is cached for at
most ``cache_ttl`` seconds: a token or API key revoked at the authorization server stops
working here within that bound. A negative answer is cached for ``negative_cache_ttl``
seconds only. An authorization server that cannot be asked means 503, never "accept".
"""

from __future__ import annotations

import logging
import time
from typing import Protocol

import httpx

from ._cache import TTLCache
from ._credentials import Digester, Shape, shape_of
from ._discovery import Metadata, json_object, parse_metadata, well_known_url
from ._errors import AuthServerUnavailable, InvalidToken
from ._http import AsyncHttp, SyncHttp
from ._introspection import basic_credentials, introspection_request, principal_from
from ._jwt import Header, check_token, parse_jwks, read_header
from ._keyset import KeySet
from ._principal import Principal

log = logging.getLogger("keyturn.resource")

DEFAULT_CACHE_TTL = 10.0
DEFAULT_NEGATIVE_CACHE_TTL = 2.0
DEFAULT_CACHE_MAX_ENTRIES = 10_000
DEFAULT_NEGATIVE_CACHE_MAX_ENTRIES = 1_000
DEFAULT_JWKS_REFRESH_INTERVAL = 10.0
DEFAULT_JWKS_MAX_AGE = 300.0


class Clock(Protocol):
    """Wall time (for ``exp``) and monotonic time (for cache lifetimes and rate limits)."""

    def time(self) -> float: ...

    def monotonic(self) -> float: ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class Verifier:
    """Validates access tokens and API keys issued by one Keyturn authorization server.

    ``client_id``/``client_secret`` are a resource-server client's (``keyturn clients
    create --resource-server --grant-type client_credentials``): only such a client may
    introspect other clients' tokens and API keys. One verifier serves both
    :meth:`verify` (blocking, for WSGI) and :meth:`averify` (for ASGI).
    """

    def __init__(
        self,
        issuer: str,
        client_id: str,
        client_secret: str,
        *,
        audience: str | None = None,
        cache_ttl: float = DEFAULT_CACHE_TTL,
        negative_cache_ttl: float = DEFAULT_NEGATIVE_CACHE_TTL,
        cache_max_entries: int = DEFAULT_CACHE_MAX_ENTRIES,
        negative_cache_max_entries: int = DEFAULT_NEGATIVE_CACHE_MAX_ENTRIES,
        jwks_refresh_interval: float = DEFAULT_JWKS_REFRESH_INTERVAL,
        jwks_max_age: float = DEFAULT_JWKS_MAX_AGE,
        introspect_jwts: bool = False,
        leeway: float = 0.0,
        timeout: float = 5.0,
        metadata_url: str | None = None,
        http_client: httpx.Client | None = None,
        async_http_client: httpx.AsyncClient | None = None,
        clock: Clock | None = None,
    ) -> None:
        for name, value in (
            ("cache_ttl", cache_ttl),
            ("negative_cache_ttl", negative_cache_ttl),
            ("jwks_refresh_interval", jwks_refresh_interval),
            ("jwks_max_age", jwks_max_age),
            ("leeway", leeway),
        ):
            if value < 0:
                raise ValueError(f"{name} must be 0 or more")
        if not issuer.startswith(("https://", "http://")):
            raise ValueError("issuer must be an http(s) URL")
        self.issuer = issuer
        #: Keyturn's access tokens name the issuer as audience unless it is configured.
        self.audience = audience or issuer
        self.cache_ttl = cache_ttl
        # "Only briefly": never longer than a positive answer is kept.
        self.negative_cache_ttl = min(negative_cache_ttl, cache_ttl)
        self.introspect_jwts = introspect_jwts
        self.leeway = leeway
        self._metadata_url = metadata_url or well_known_url(issuer)
        self._authorization = basic_credentials(client_id, client_secret)
        self._clock: Clock = clock or SystemClock()
        self._digest = Digester()
        self._accepted: TTLCache[Principal] = TTLCache(cache_max_entries, self._clock.monotonic)
        # Separate, so that a flood of bad credentials cannot evict the good ones.
        self._refused: TTLCache[str] = TTLCache(negative_cache_max_entries, self._clock.monotonic)
        self._keys = KeySet(
            refresh_interval=jwks_refresh_interval, max_age=jwks_max_age, monotonic=self._clock.monotonic
        )
        self._metadata: Metadata | None = None
        self._sync = SyncHttp(http_client, timeout)
        self._async = AsyncHttp(async_http_client, timeout)

    # ---- blocking (WSGI) ----

    def verify(self, credential: str, shape: Shape | None = None) -> Principal:
        """The principal behind ``credential``; raises an :class:`AuthError` otherwise.
        ``shape``: what ``find_credential`` found it to be (checked here when omitted)."""
        shape = shape or _shape(credential)
        if shape is Shape.JWT:
            header = read_header(credential)
            if self._keys.wants_refresh(header.kid):
                with self._sync.lock:
                    if self._keys.wants_refresh(header.kid):
                        self._keys.attempt()
                        outcome: httpx.Response | AuthServerUnavailable
                        try:
                            outcome = self._sync.send(_jwks_request(self._metadata_sync()))
                        except AuthServerUnavailable as exc:
                            outcome = exc
                        self._use_jwks(header.kid, outcome)
            if not self.introspect_jwts:
                checked = self._checked_jwt(credential, header)
                if checked is not None:
                    return checked
            principal = self._check_jwt(credential, header)
            if not self.introspect_jwts:
                return principal
        key = self._digest(credential)
        cached = self._cached(key)
        if cached is not None:
            return cached
        endpoint = self._introspection_endpoint(self._metadata_sync())
        response = self._sync.send(introspection_request(endpoint, self._authorization, credential))
        return self._remember(key, response)

    def _metadata_sync(self) -> Metadata:
        if self._metadata is None:
            with self._sync.lock:
                if self._metadata is None:
                    request = httpx.Request("GET", self._metadata_url, headers={"accept": "application/json"})
                    self._metadata = parse_metadata(self._sync.send(request), self.issuer)
        return self._metadata

    def close(self) -> None:
        """Closes the blocking HTTP client this verifier opened."""
        self._sync.close()

    # ---- async (ASGI) ----

    async def averify(self, credential: str, shape: Shape | None = None) -> Principal:
        """:meth:`verify` without blocking the event loop."""
        shape = shape or _shape(credential)
        if shape is Shape.JWT:
            header = read_header(credential)
            if self._keys.wants_refresh(header.kid):
                metadata = await self._metadata_async()
                async with self._async.keys_lock:
                    if self._keys.wants_refresh(header.kid):
                        self._keys.attempt()
                        outcome: httpx.Response | AuthServerUnavailable
                        try:
                            outcome = await self._async.send(_jwks_request(metadata))
                        except AuthServerUnavailable as exc:
                            outcome = exc
                        self._use_jwks(header.kid, outcome)
            if not self.introspect_jwts:
                checked = self._checked_jwt(credential, header)
                if checked is not None:
                    return checked
            principal = self._check_jwt(credential, header)
            if not self.introspect_jwts:
                return principal
        key = self._digest(credential)
        cached = self._cached(key)
        if cached is not None:
            return cached
        endpoint = self._introspection_endpoint(await self._metadata_async())
        response = await self._async.send(introspection_request(endpoint, self._authorization, credential))
        return self._remember(key, response)

    async def _metadata_async(self) -> Metadata:
        if self._metadata is None:
            await self._async.bind()
            async with self._async.metadata_lock:
                if self._metadata is None:
                    request = httpx.Request("GET", self._metadata_url, headers={"accept": "application/json"})
                    self._metadata = parse_metadata(await self._async.send(request), self.issuer)
        return self._metadata

    async def aclose(self) -> None:
        """Closes the async HTTP client this verifier opened; it reopens when needed."""
        await self._async.aclose()

    # ---- shared, no I/O ----

    def _use_jwks(self, kid: str, outcome: httpx.Response | AuthServerUnavailable) -> None:
        try:
            if isinstance(outcome, AuthServerUnavailable):
                raise outcome
            keys = parse_jwks(json_object(outcome, "JWKS"))
        except (AuthServerUnavailable, ValueError) as exc:
            if self._keys.get(kid) is None:
                # Cannot tell a good token from a bad one: 503, not 401.
                raise AuthServerUnavailable(detail=f"JWKS: {exc!r}") from None
            log.warning("keeping the cached JWKS: refreshing it failed (%r)", exc)
            return
        self._keys.replace(keys)

    def _check_jwt(self, token: str, header: Header) -> Principal:
        key = self._keys.get(header.kid)
        if key is None:
            raise InvalidToken(detail=f"unknown kid {header.kid!r}")
        now = self._clock.time()
        principal = check_token(
            token, header, key, issuer=self.issuer, audience=self.audience, now=now, leeway=self.leeway
        )
        if not self.introspect_jwts:
            # A signature checked once need not be checked again for cache_ttl seconds
            # (never past exp, and only while its key is still published): the same
            # bound as an introspection answer.
            ttl = self.cache_ttl if principal.expires_at is None else min(self.cache_ttl, principal.expires_at - now)
            if ttl > 0:
                self._accepted.put(self._digest(token), principal, ttl)
        return principal

    def _checked_jwt(self, token: str, header: Header) -> Principal | None:
        if self._keys.get(header.kid) is None:
            return None
        principal = self._accepted.get(self._digest(token))
        if principal is not None and (principal.expires_at is None or principal.expires_at > self._clock.time()):
            return principal
        return None

    def _cached(self, key: bytes) -> Principal | None:
        principal = self._accepted.get(key)
        # Never past the credential's own expiry, even within the cache lifetime.
        if principal is not None and (principal.expires_at is None or principal.expires_at > self._clock.time()):
            return principal
        reason = self._refused.get(key)
        if reason is not None:
            raise InvalidToken(detail=f"{reason} (cached)")
        return None

    def _remember(self, key: bytes, response: httpx.Response) -> Principal:
        body = json_object(response, "introspection")
        now = self._clock.time()
        principal, reason = principal_from(body, issuer=self.issuer, audience=self.audience, now=now)
        if principal is None:
            self._refused.put(key, reason, self.negative_cache_ttl)
            raise InvalidToken(detail=reason)
        ttl = self.cache_ttl
        if principal.expires_at is not None:
            ttl = min(ttl, principal.expires_at - now)
        self._accepted.put(key, principal, ttl)
        return principal

    def _introspection_endpoint(self, metadata: Metadata) -> str:
        if metadata.introspection_endpoint is None:
            raise AuthServerUnavailable(detail="the metadata names no introspection_endpoint")
        return metadata.introspection_endpoint


def _shape(credential: str) -> Shape:
    shape = shape_of(credential)
    if shape is None:
        raise InvalidToken("The credential is malformed.")
    return shape


def _jwks_request(metadata: Metadata) -> httpx.Request:
    if metadata.jwks_uri is None:
        raise AuthServerUnavailable(detail="the metadata names no jwks_uri")
    return httpx.Request("GET", metadata.jwks_uri, headers={"accept": "application/json"})
