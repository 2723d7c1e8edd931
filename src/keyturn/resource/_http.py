"""HTTP clients for talking to the authorization server: httpx.Client for WSGI apps,
httpx.AsyncClient for ASGI apps (so the event loop never blocks on the network)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager

import anyio
import httpx

from ._errors import AuthServerUnavailable


def unreachable(request: httpx.Request, exc: httpx.HTTPError) -> AuthServerUnavailable:
    return AuthServerUnavailable(detail=f"{request.url}: {exc!r}")


def running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:  # another async library (trio): one client for it
        return None


class AsyncHttp:
    """An AsyncClient and locks bound to the running event loop.

    An AsyncClient's pooled connections belong to the loop they were opened on. A test
    client that starts a loop per request would hand a later loop dead connections, and
    leave the earlier loop's sockets unclosed; so a new loop gets a new client, and each
    client is closed when its loop shuts down (see :func:`_closing`). A client passed in
    by the application is used as it is, and closed by the application.
    """

    def __init__(self, given: httpx.AsyncClient | None, timeout: float) -> None:
        self._given = given
        self._timeout = timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: httpx.AsyncClient | None = None
        self._closer: AsyncGenerator[None, None] | None = None
        self._lock = anyio.Lock()

    async def bind(self) -> httpx.AsyncClient:
        loop = running_loop()
        if self._client is None or loop is not self._loop:
            self._loop = loop
            self._lock = anyio.Lock()
            if self._given is not None:
                self._client = self._given
            else:
                self._client = httpx.AsyncClient(timeout=self._timeout)
                self._closer = _closing(self._client)
                await self._closer.__anext__()
        return self._client

    async def ask(self, request: httpx.Request) -> httpx.Response | AuthServerUnavailable:
        """The response to ``request``, or why there is none."""
        client = await self.bind()
        try:
            return await client.send(request)
        except httpx.HTTPError as exc:
            return unreachable(request, exc)

    @asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """Held while fetching what all requests share: one such fetch at a time."""
        await self.bind()  # the lock belongs to the running event loop
        async with self._lock:
            yield

    async def aclose(self) -> None:
        """Closes the client this class opened (not one the application passed in)."""
        closer, self._closer, self._client = self._closer, None, None
        if closer is not None and self._loop is running_loop():
            await closer.aclose()


async def _closing(client: httpx.AsyncClient) -> AsyncGenerator[None, None]:
    """Closes ``client`` when the event loop shuts down.

    Once iterated, an async generator is registered with the running loop (PEP 525
    ``firstiter`` hook), and ``asyncio.run`` / ``anyio.run`` close every registered
    generator before closing the loop ("shutdown_asyncgens"), while it still runs.
    """
    try:
        yield
    finally:
        await client.aclose()


class SyncHttp:
    def __init__(self, given: httpx.Client | None, timeout: float) -> None:
        self._given = given
        self._timeout = timeout
        self._client: httpx.Client | None = None
        self._create = threading.Lock()
        self._lock = threading.Lock()

    def _get(self) -> httpx.Client:
        if self._client is None:
            with self._create:
                if self._client is None:
                    self._client = self._given or httpx.Client(timeout=self._timeout)
        return self._client

    def ask(self, request: httpx.Request) -> httpx.Response | AuthServerUnavailable:
        """The response to ``request``, or why there is none."""
        try:
            return self._get().send(request)
        except httpx.HTTPError as exc:
            return unreachable(request, exc)

    def exclusive(self) -> threading.Lock:
        """Held while fetching what all requests share: one such fetch at a time."""
        return self._lock

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and client is not self._given:
            client.close()
