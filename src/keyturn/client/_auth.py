"""``httpx.Auth`` classes: an API key, and Bearer tokens that fetch and renew themselves.

An auth flow is a generator that serves ``httpx.Client`` and ``httpx.AsyncClient`` alike.
The token flows yield their token request to the client that is sending the API request
(so it goes through the same transport, proxies and timeouts); they override
``sync_auth_flow`` / ``async_auth_flow`` only to hold a lock while that request is out,
so that concurrent requests wait for one token instead of fetching one each.
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import AsyncGenerator, Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Literal

import anyio
import httpx

from ._challenge import rejects_token
from ._metadata import ServerMetadata
from ._tokens import AuthMethod, ClientAuthentication, TokenResponse, read_token_response, scope_string

Clock = Callable[[], float]

#: Renew a token this many seconds before it expires (the SIPSIM docs' margin).
RENEW_BEFORE = 60.0


class ApiKeyAuth(httpx.Auth):
    """An API key in the ``Authorization: Bearer`` header, or in a query parameter (the
    OnlineSIM ``?api_key=`` style; Keyturn also accepts ``apikey``)."""

    def __init__(self, key: str, in_: Literal["header", "query"] = "header", query_parameter: str = "api_key") -> None:
        if in_ not in ("header", "query"):
            raise ValueError(f"in_ must be 'header' or 'query', not {in_!r}.")
        if not key:
            raise ValueError("The API key is empty.")
        self._key = key
        self.in_ = in_
        self.query_parameter = query_parameter

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self.in_ == "header":
            request.headers["Authorization"] = f"Bearer {self._key}"
        else:
            request.url = request.url.copy_set_param(self.query_parameter, self._key)
        yield request

    def __repr__(self) -> str:
        return f"ApiKeyAuth(in_={self.in_!r}, query_parameter={self.query_parameter!r})"


@dataclass(frozen=True, slots=True)
class _Cached:
    access_token: str
    #: When to stop using the token and fetch another (None: until the server rejects it).
    renew_at: float | None


def _bearer(request: httpx.Request, access_token: str) -> httpx.Request:
    request.headers["Authorization"] = f"Bearer {access_token}"
    return request


class _TokenAuth(httpx.Auth):
    """Bearer token auth that caches its token, renews it ``renew_before`` seconds before
    it expires, fetches one token at a time, and retries a request once when the
    resource server says the token is invalid.

    One instance may be shared by the threads of a program (``httpx.Client``) or by the
    tasks of one event loop (``httpx.AsyncClient``).
    """

    def __init__(
        self, token_url: str | ServerMetadata, client: ClientAuthentication, clock: Clock, renew_before: float
    ) -> None:
        self.token_url = token_url.token_endpoint if isinstance(token_url, ServerMetadata) else token_url
        self._client = client
        self._clock = clock
        self._renew_before = renew_before
        self._cached: _Cached | None = None
        self._thread_lock = threading.Lock()
        self._task_lock = anyio.Lock()

    @property
    def client_id(self) -> str:
        return self._client.client_id

    # ---- what a grant supplies ----

    def _token_request(self) -> httpx.Request:
        raise NotImplementedError

    def _accept(self, token: TokenResponse) -> object:
        """Called with each new token before it is used; may return an awaitable."""
        return None

    # ---- the cache ----

    def _usable(self, rejected: str | None) -> str | None:
        """The cached access token, unless it is due for renewal or was just rejected."""
        cached = self._cached
        if cached is None or cached.access_token == rejected:
            return None
        if cached.renew_at is not None and self._clock() >= cached.renew_at:
            return None
        return cached.access_token

    def _cache(self, access_token: str, expires_at: float | None, lifetime: float | None = None) -> None:
        margin = self._renew_before
        if lifetime is not None:
            # A token that lives less than twice the margin is used for half its life,
            # rather than not at all.
            margin = min(margin, lifetime / 2)
        self._cached = _Cached(access_token, None if expires_at is None else expires_at - margin)

    def _read(self, response: httpx.Response) -> tuple[TokenResponse, object]:
        token = read_token_response(response, self._clock())
        return token, self._accept(token)

    def _keep(self, token: TokenResponse) -> str:
        self._cache(token.access_token, token.expires_at, token.expires_in)
        return token.access_token

    # ---- the flows ----

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        # The request may be sent a second time after a 401, so its body must be in memory.
        request.read()
        rejected: str | None = None
        for attempt in (1, 2):
            access_token = self._usable(rejected)
            if access_token is None:
                with self._thread_lock:
                    # Whoever held the lock before may have fetched a token already.
                    access_token = self._usable(rejected)
                    if access_token is None:
                        response = yield self._token_request()
                        response.read()
                        token, pending = self._read(response)
                        if inspect.isawaitable(pending):
                            _discard(pending)
                            raise TypeError("on_rotate returned an awaitable: use a plain function with httpx.Client.")
                        access_token = self._keep(token)
            response = yield _bearer(request, access_token)
            if attempt == 2 or not rejects_token(response):
                return
            rejected = access_token

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        await request.aread()
        rejected: str | None = None
        for attempt in (1, 2):
            access_token = self._usable(rejected)
            if access_token is None:
                async with self._task_lock:
                    access_token = self._usable(rejected)
                    if access_token is None:
                        response = yield self._token_request()
                        await response.aread()
                        token, pending = self._read(response)
                        if inspect.isawaitable(pending):
                            await pending
                        access_token = self._keep(token)
            response = yield _bearer(request, access_token)
            if attempt == 2 or not rejects_token(response):
                return
            rejected = access_token


def _discard(awaitable: object) -> None:
    close = getattr(awaitable, "close", None)  # a coroutine never awaited warns unless closed
    if callable(close):
        close()


class ClientCredentialsAuth(_TokenAuth):
    """The client credentials grant (RFC 6749 §4.4) for server-to-server calls.

    ``token_url`` is the token endpoint, or the :class:`ServerMetadata` that names it.
    ``clock`` (seconds since the epoch) is there for tests.
    """

    def __init__(
        self,
        token_url: str | ServerMetadata,
        client_id: str,
        client_secret: str,
        *,
        scope: str | Sequence[str] | None = None,
        auth_method: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic",
        clock: Clock = time.time,
        renew_before: float = RENEW_BEFORE,
    ) -> None:
        super().__init__(token_url, ClientAuthentication.of(client_id, client_secret, auth_method), clock, renew_before)
        self.scope = scope_string(scope)

    def _token_request(self) -> httpx.Request:
        parameters = {"grant_type": "client_credentials"}
        if self.scope:
            parameters["scope"] = self.scope
        return self._client.token_request(self.token_url, parameters)

    def __repr__(self) -> str:
        return f"ClientCredentialsAuth({self.token_url!r}, {self._client.client_id!r}, scope={self.scope!r})"


RotateCallback = Callable[[TokenResponse], object]


class RefreshTokenAuth(_TokenAuth):
    """Calls an API for a user with the tokens of an authorization: uses ``access_token``
    while it lasts, then the refresh token grant (RFC 6749 §6) for the next one.

    A server that rotates refresh tokens (RFC 9700 §4.14.2) answers with a new one and
    the old one stops working: ``on_rotate`` is called with that token response before
    the new access token is used, so that the new refresh token can be stored. It may be
    a coroutine function when the auth serves an ``httpx.AsyncClient``. If it raises, the
    exception reaches the caller and the next request refreshes (and calls it) again.
    """

    def __init__(
        self,
        token_url: str | ServerMetadata,
        client_id: str,
        client_secret: str | None,
        refresh_token: str,
        *,
        on_rotate: RotateCallback,
        access_token: str | None = None,
        expires_at: float | None = None,
        scope: str | Sequence[str] | None = None,
        auth_method: AuthMethod | None = None,
        clock: Clock = time.time,
        renew_before: float = RENEW_BEFORE,
    ) -> None:
        super().__init__(token_url, ClientAuthentication.of(client_id, client_secret, auth_method), clock, renew_before)
        if not refresh_token:
            raise ValueError("The refresh token is empty.")
        self.scope = scope_string(scope)
        self._refresh_token = refresh_token
        self._on_rotate = on_rotate
        if access_token:
            self._cache(access_token, expires_at)

    @property
    def refresh_token(self) -> str:
        """The refresh token the next refresh will present."""
        return self._refresh_token

    def _token_request(self) -> httpx.Request:
        parameters = {"grant_type": "refresh_token", "refresh_token": self._refresh_token}
        if self.scope:
            parameters["scope"] = self.scope
        return self._client.token_request(self.token_url, parameters)

    def _accept(self, token: TokenResponse) -> object:
        if token.refresh_token is None or token.refresh_token == self._refresh_token:
            return None
        # The old refresh token is spent either way: keep the new one even if storing it fails.
        self._refresh_token = token.refresh_token
        return self._on_rotate(token)

    def __repr__(self) -> str:
        return f"RefreshTokenAuth({self.token_url!r}, {self._client.client_id!r}, scope={self.scope!r})"
