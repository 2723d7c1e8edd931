"""From a presented credential to a :class:`Principal`, or an :class:`AuthError`.

JWT access tokens are checked locally against the issuer's JWKS. Opaque access tokens and
API keys are asked about at the introspection endpoint, and the answer is cached for at
most ``cache_ttl`` seconds: a token or API key revoked at the authorization server stops
working here within that bound (a refusal is cached for ``negative_cache_ttl`` seconds; an
answer in use is renewed before it expires: see ``_answers``). An authorization server
that cannot be asked means 503, never "accept".

The checks are one flow without I/O (:meth:`Verifier._flow`, in the shape of httpx's
``auth_flow``: see ``_flow``): it yields the requests it needs and decides all the rest.
:meth:`Verifier.verify` drives it with the blocking client and :meth:`Verifier.averify`
with the async one; a driver holds only what depends on how it waits: the lock a shared
fetch runs under, and the flight in which one request asks about a credential no cached
answer covers while the others presenting it wait (``_flight``). A credential a cached
answer covers costs a digest and a dict lookup, and no flow.
"""

from __future__ import annotations

import logging
import threading
from typing import TypeVar

import anyio
import httpx

from ._answers import Accepted, Answers
from ._cache import TTLCache
from ._clock import Clock, SystemClock
from ._credentials import Digester, Shape, check_shape
from ._discovery import Discovery, introspection_endpoint, json_object, well_known_url
from ._errors import AuthServerUnavailable, InvalidToken
from ._flight import Flight
from ._flow import Done, Flow, Reply, Shared, fetch, resume
from ._http import AsyncHttp, SyncHttp, running_loop
from ._introspection import basic_credentials, introspection_request, principal_from
from ._jwt import Header, check_token, read_header
from ._keyset import KeySet
from ._principal import Principal

log = logging.getLogger("keyturn.resource")

T = TypeVar("T")

DEFAULT_CACHE_TTL = 10.0
DEFAULT_NEGATIVE_CACHE_TTL = 2.0
DEFAULT_CACHE_MAX_ENTRIES = 10_000
DEFAULT_NEGATIVE_CACHE_MAX_ENTRIES = 1_000
DEFAULT_JWKS_REFRESH_INTERVAL = 10.0
DEFAULT_JWKS_MAX_AGE = 300.0


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
        self._discovery = Discovery(metadata_url or well_known_url(issuer), issuer)
        self._authorization = basic_credentials(client_id, client_secret)
        self._clock: Clock = clock or SystemClock()
        self._digest = Digester()
        self._keys = KeySet(
            refresh_interval=jwks_refresh_interval, max_age=jwks_max_age, monotonic=self._clock.monotonic
        )
        self._accepted: TTLCache[Accepted] = TTLCache(cache_max_entries, self._clock.monotonic)
        self._refused: TTLCache[str] = TTLCache(negative_cache_max_entries, self._clock.monotonic)
        self._answers = Answers(
            self._accepted,
            self._refused,
            ttl=self.cache_ttl,
            negative_ttl=self.negative_cache_ttl,
            keys=self._keys,
            clock=self._clock,
        )
        #: Credentials no cached answer covers, being asked about right now (by digest).
        self._flights: dict[bytes, Flight[threading.Event]] = {}
        self._flights_lock = threading.Lock()
        self._aflights: dict[bytes, Flight[anyio.Event]] = {}
        self._sync = SyncHttp(http_client, timeout)
        self._async = AsyncHttp(async_http_client, timeout)

    # ---- blocking (WSGI): drives the flow with the blocking client ----

    def verify(self, credential: str, shape: Shape | None = None) -> Principal:
        """The principal behind ``credential``; raises an :class:`AuthError` otherwise.
        ``shape``: what ``find_credential`` found it to be (when omitted, checked here for
        a credential the cache does not know)."""
        key = self._digest(credential)
        # A credential accepted within cache_ttl is known by its digest alone: its shape,
        # header and signature were checked then, and no authorization server is asked.
        known, renew = self._answers.recall(key)
        if known is not None and not renew:
            return known
        if known is None:
            return self._first_answer(key, credential, shape)
        try:
            return self._drive(self._flow(key, credential, shape, known))
        finally:
            self._answers.renewed(key)

    def _first_answer(self, key: bytes, credential: str, shape: Shape | None) -> Principal:
        """The flow, run once for all the threads presenting ``credential`` meanwhile."""
        flight = Flight(threading.Event())
        while (asking := self._board(key, flight)) is not flight:
            asking.done.wait()
            if (principal := asking.outcome()) is not None:
                return principal
        try:
            return self._drive(flight.record(self._flow(key, credential, shape)))
        finally:
            self._land(key, flight)

    def _board(self, key: bytes, flight: Flight[threading.Event]) -> Flight[threading.Event]:
        """The flight asking about ``key``: another thread's, or else ``flight``."""
        with self._flights_lock:
            return self._flights.setdefault(key, flight)

    def _land(self, key: bytes, flight: Flight[threading.Event]) -> None:
        with self._flights_lock:
            del self._flights[key]
        flight.done.set()

    def _drive(self, flow: Flow[T]) -> T:
        """Runs ``flow`` with the blocking client, a :class:`Shared` fetch under the lock."""
        step = resume(flow, None)
        while not isinstance(step, Done):
            reply: Reply
            if isinstance(step, Shared):
                with self._sync.exclusive():
                    reply = self._drive(step.flow)
            else:
                reply = self._sync.ask(step)
            step = resume(flow, reply)
        return step.value

    def close(self) -> None:
        """Closes the blocking HTTP client this verifier opened."""
        self._sync.close()

    # ---- async (ASGI): drives the flow with the async client ----

    async def averify(self, credential: str, shape: Shape | None = None) -> Principal:
        """:meth:`verify` without blocking the event loop."""
        key = self._digest(credential)
        known, renew = self._answers.recall(key)
        if known is not None and not renew:
            return known
        if known is None:
            return await self._afirst_answer(key, credential, shape)
        try:
            return await self._adrive(self._flow(key, credential, shape, known))
        finally:
            self._answers.renewed(key)

    async def _afirst_answer(self, key: bytes, credential: str, shape: Shape | None) -> Principal:
        """The flow, run once for all the requests presenting ``credential`` meanwhile (on
        this event loop: a question asked on another loop is not waited for)."""
        flight = Flight(anyio.Event(), running_loop())
        while (asking := self._aboard(key, flight)) is not flight:
            await asking.done.wait()
            if (principal := asking.outcome()) is not None:
                return principal
        try:
            return await self._adrive(flight.record(self._flow(key, credential, shape)))
        finally:
            self._aland(key, flight)

    def _aboard(self, key: bytes, flight: Flight[anyio.Event]) -> Flight[anyio.Event]:
        """The flight asking about ``key`` on this event loop, or else ``flight``."""
        asking = self._aflights.get(key)
        if asking is None or asking.loop is not flight.loop:
            asking = self._aflights[key] = flight
        return asking

    def _aland(self, key: bytes, flight: Flight[anyio.Event]) -> None:
        if self._aflights.get(key) is flight:  # not replaced by another loop's
            del self._aflights[key]
        flight.done.set()

    async def _adrive(self, flow: Flow[T]) -> T:
        """Runs ``flow`` with the async client, a :class:`Shared` fetch under the lock."""
        step = resume(flow, None)
        while not isinstance(step, Done):
            reply: Reply
            if isinstance(step, Shared):
                async with self._async.exclusive():
                    reply = await self._adrive(step.flow)
            else:
                reply = await self._async.ask(step)
            step = resume(flow, reply)
        return step.value

    async def aclose(self) -> None:
        """Closes the async HTTP client this verifier opened; it reopens when needed."""
        await self._async.aclose()

    # ---- the flow: no I/O ----

    def _flow(
        self, key: bytes, credential: str, shape: Shape | None, known: Principal | None = None
    ) -> Flow[Principal]:
        """From ``credential`` (digest ``key``) to its principal: yields the requests that
        takes, and remembers the answer. ``known``: the cached answer a renewal keeps if the
        authorization server cannot be asked."""
        try:
            shape = shape or check_shape(credential)
            kid: str | None = None
            if shape is Shape.JWT:
                header = read_header(credential)
                kid = header.kid
                if self._keys.wants_refresh(kid):
                    metadata = yield from self._discovery.metadata()
                    yield Shared(self._keys.refresh(kid, metadata))
                principal = self._check_jwt(credential, header)
                if not self.introspect_jwts:
                    return self._answers.remember_jwt(key, principal, kid)
            self._answers.raise_if_refused(key)
            endpoint = introspection_endpoint((yield from self._discovery.metadata()))
            response = yield from fetch(introspection_request(endpoint, self._authorization, credential))
            return self._answered(key, response, kid)
        except AuthServerUnavailable as exc:
            return _keep(known, exc)

    def _check_jwt(self, token: str, header: Header) -> Principal:
        key = self._keys.get(header.kid)
        if key is None:
            raise InvalidToken(detail=f"unknown kid {header.kid!r}")
        return check_token(
            token, header, key, issuer=self.issuer, audience=self.audience, now=self._clock.time(), leeway=self.leeway
        )

    def _answered(self, key: bytes, response: httpx.Response, kid: str | None) -> Principal:
        body = json_object(response, "introspection")
        principal, reason = principal_from(body, issuer=self.issuer, audience=self.audience, now=self._clock.time())
        if principal is None:
            raise self._answers.remember_refusal(key, reason)
        return self._answers.remember(key, principal, kid)


def _keep(known: Principal | None, exc: AuthServerUnavailable) -> Principal:
    """A renewal that could not ask the server keeps the cached answer, which still
    holds; without one, the request cannot be decided (503)."""
    if known is None:
        raise exc
    log.warning("keeping a cached answer: renewing it failed (%s)", exc.detail)
    return known
