"""From a presented credential to a :class:`Principal`, or an :class:`AuthError`.

JWT access tokens are checked locally against the issuer's JWKS. Opaque access tokens and
API keys are asked about at the introspection endpoint, and the answer is cached for at
most ``cache_ttl`` seconds: a token or API key revoked at the authorization server stops
working here within that bound. A negative answer is cached for ``negative_cache_ttl``
seconds only. An authorization server that cannot be asked means 503, never "accept".

An answer in use is renewed before it expires: the first request in the last fifth of its
lifetime asks again, while the requests beside it keep the cached answer (which still
holds). So a credential in steady use is asked about by one request every
``cache_ttl * 4/5`` seconds, and never by every request in flight at the moment its answer
expires. Should that renewal find the server unreachable, the request keeps the cached
answer, within its lifetime.

A credential no cached answer covers is asked about once however many requests present it
at the same moment (a client starting fifty calls with a new key): the first request
asks, and the others wait for its answer, or its error, instead of asking too.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass, field
from time import monotonic, time
from typing import Generic, NamedTuple, Protocol, TypeVar

import anyio
import httpx

from ._cache import TTLCache
from ._credentials import Digester, Shape, check_shape
from ._discovery import Metadata, json_object, parse_metadata, well_known_url
from ._errors import AuthError, AuthServerUnavailable, InvalidToken
from ._http import AsyncHttp, SyncHttp, running_loop
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
#: An introspection answer is renewed once this share of its lifetime has passed.
RENEW_AFTER = 0.8


class Clock(Protocol):
    """Wall time (for ``exp``) and monotonic time (for cache lifetimes and rate limits)."""

    def time(self) -> float: ...

    def monotonic(self) -> float: ...


class SystemClock:
    # The C functions themselves: read on every request, they need no Python frame.
    time = staticmethod(time)
    monotonic = staticmethod(monotonic)


class _Accepted(NamedTuple):
    """A cached positive answer for one credential."""

    principal: Principal
    #: The JWKS key a JWT's signature was checked with (None: an introspection answer
    #: alone): the answer counts only while that key is published.
    kid: str | None
    #: When (monotonic) a request should ask the authorization server again; never for
    #: a JWT checked locally, which costs no request to check again.
    renew_at: float


_Done = TypeVar("_Done", threading.Event, anyio.Event)


@dataclass(eq=False)
class _Flight(Generic[_Done]):
    """One request's question about a credential no cached answer covers; the requests
    presenting that credential meanwhile wait for its outcome instead of asking too."""

    #: Set once the question has its outcome (threading.Event on the blocking path).
    done: _Done
    #: The event loop of an async question (None: blocking, or not asyncio).
    loop: object = None
    principal: Principal | None = None
    error: AuthError | None = field(default=None, repr=False)

    def outcome(self) -> Principal | None:
        """The answer, raised if it was an error; None when the asking request ended
        without one (it was cancelled): then the waiting request asks itself."""
        if self.error is not None:
            raise self.error.with_traceback(None)
        return self.principal


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
        self._accepted: TTLCache[_Accepted] = TTLCache(cache_max_entries, self._clock.monotonic)
        # Separate, so that a flood of bad credentials cannot evict the good ones.
        self._refused: TTLCache[str] = TTLCache(negative_cache_max_entries, self._clock.monotonic)
        #: Digests of the credentials whose answer a request is renewing right now.
        self._renewing: set[bytes] = set()
        self._renewing_lock = threading.Lock()
        #: Credentials no cached answer covers, being asked about right now (by digest).
        self._flights: dict[bytes, _Flight[threading.Event]] = {}
        self._flights_lock = threading.Lock()
        self._aflights: dict[bytes, _Flight[anyio.Event]] = {}
        self._keys = KeySet(
            refresh_interval=jwks_refresh_interval, max_age=jwks_max_age, monotonic=self._clock.monotonic
        )
        self._metadata: Metadata | None = None
        self._sync = SyncHttp(http_client, timeout)
        self._async = AsyncHttp(async_http_client, timeout)

    # ---- blocking (WSGI) ----

    def verify(self, credential: str, shape: Shape | None = None) -> Principal:
        """The principal behind ``credential``; raises an :class:`AuthError` otherwise.
        ``shape``: what ``find_credential`` found it to be (when omitted, checked here for
        a credential the cache does not know)."""
        key = self._digest(credential)
        # A credential accepted within cache_ttl is known by its digest alone: its shape,
        # header and signature were checked then, and no authorization server is asked.
        known, renew = self._recall(key)
        if known is not None and not renew:
            return known
        if known is None:
            return self._first_answer(key, credential, shape)
        try:
            return self._verify(key, credential, shape)
        except AuthServerUnavailable as exc:
            return self._keep(known, exc)
        finally:
            if renew:
                self._renewed(key)

    def _first_answer(self, key: bytes, credential: str, shape: Shape | None) -> Principal:
        """:meth:`_verify`, once for all the threads presenting ``credential`` meanwhile."""
        while True:
            with self._flights_lock:
                flight = self._flights.get(key)
                if flight is None:
                    flight = self._flights[key] = _Flight(threading.Event())
                    break
            flight.done.wait()
            principal = flight.outcome()
            if principal is not None:
                return principal
        try:
            flight.principal = self._verify(key, credential, shape)
            return flight.principal
        except AuthError as exc:
            flight.error = exc
            raise
        finally:
            with self._flights_lock:
                del self._flights[key]
            flight.done.set()

    def _verify(self, key: bytes, credential: str, shape: Shape | None) -> Principal:
        shape = shape or check_shape(credential)
        kid: str | None = None
        if shape is Shape.JWT:
            header = read_header(credential)
            kid = header.kid
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
            principal = self._check_jwt(credential, header)
            if not self.introspect_jwts:
                return self._remember_jwt(key, principal, header.kid)
        self._raise_if_refused(key)
        endpoint = self._introspection_endpoint(self._metadata_sync())
        response = self._sync.send(introspection_request(endpoint, self._authorization, credential))
        return self._remember(key, response, kid)

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
        key = self._digest(credential)
        known, renew = self._recall(key)
        if known is not None and not renew:
            return known
        if known is None:
            return await self._afirst_answer(key, credential, shape)
        try:
            return await self._averify(key, credential, shape)
        except AuthServerUnavailable as exc:
            return self._keep(known, exc)
        finally:
            if renew:
                self._renewed(key)

    async def _afirst_answer(self, key: bytes, credential: str, shape: Shape | None) -> Principal:
        """:meth:`_averify`, once for all the requests presenting ``credential`` meanwhile
        (on this event loop: a question asked on another loop is not waited for)."""
        loop = running_loop()
        while (flight := self._aflights.get(key)) is not None and flight.loop is loop:
            await flight.done.wait()
            principal = flight.outcome()
            if principal is not None:
                return principal
        flight = self._aflights[key] = _Flight(anyio.Event(), loop)
        try:
            flight.principal = await self._averify(key, credential, shape)
            return flight.principal
        except AuthError as exc:
            flight.error = exc
            raise
        finally:
            if self._aflights.get(key) is flight:
                del self._aflights[key]
            flight.done.set()

    async def _averify(self, key: bytes, credential: str, shape: Shape | None) -> Principal:
        shape = shape or check_shape(credential)
        kid: str | None = None
        if shape is Shape.JWT:
            header = read_header(credential)
            kid = header.kid
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
            principal = self._check_jwt(credential, header)
            if not self.introspect_jwts:
                return self._remember_jwt(key, principal, header.kid)
        self._raise_if_refused(key)
        endpoint = self._introspection_endpoint(await self._metadata_async())
        response = await self._async.send(introspection_request(endpoint, self._authorization, credential))
        return self._remember(key, response, kid)

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
        return check_token(
            token, header, key, issuer=self.issuer, audience=self.audience, now=self._clock.time(), leeway=self.leeway
        )

    def _recall(self, key: bytes) -> tuple[Principal | None, bool]:
        """The cached principal of the credential with digest ``key``, if it still holds,
        and whether this request is the one to renew it (then the principal is what it
        keeps if the authorization server cannot be asked)."""
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

    def _renewed(self, key: bytes) -> None:
        with self._renewing_lock:
            self._renewing.discard(key)

    @staticmethod
    def _keep(known: Principal | None, exc: AuthServerUnavailable) -> Principal:
        """A renewal that could not ask the server keeps the cached answer, which still
        holds; without one, the request cannot be decided (503)."""
        if known is None:
            raise exc
        log.warning("keeping a cached answer: renewing it failed (%s)", exc.detail)
        return known

    def _raise_if_refused(self, key: bytes) -> None:
        reason = self._refused.get(key)
        if reason is not None:
            raise InvalidToken(detail=f"{reason} (cached)")

    def _remember_jwt(self, key: bytes, principal: Principal, kid: str) -> Principal:
        # A signature checked once need not be checked again for cache_ttl seconds (never
        # past exp, and only while its key is published): the bound of an introspection answer.
        self._accepted.put(key, _Accepted(principal, kid, math.inf), self._ttl(principal))
        return principal

    def _remember(self, key: bytes, response: httpx.Response, kid: str | None) -> Principal:
        body = json_object(response, "introspection")
        principal, reason = principal_from(body, issuer=self.issuer, audience=self.audience, now=self._clock.time())
        if principal is None:
            self._accepted.discard(key)  # a renewal found it revoked: no request keeps it
            self._refused.put(key, reason, self.negative_cache_ttl)
            raise InvalidToken(detail=reason)
        ttl = self._ttl(principal)
        self._accepted.put(key, _Accepted(principal, kid, self._clock.monotonic() + ttl * RENEW_AFTER), ttl)
        return principal

    def _ttl(self, principal: Principal) -> float:
        if principal.expires_at is None:
            return self.cache_ttl
        return min(self.cache_ttl, principal.expires_at - self._clock.time())

    def _introspection_endpoint(self, metadata: Metadata) -> str:
        if metadata.introspection_endpoint is None:
            raise AuthServerUnavailable(detail="the metadata names no introspection_endpoint")
        return metadata.introspection_endpoint


def _jwks_request(metadata: Metadata) -> httpx.Request:
    if metadata.jwks_uri is None:
        raise AuthServerUnavailable(detail="the metadata names no jwks_uri")
    return httpx.Request("GET", metadata.jwks_uri, headers={"accept": "application/json"})
