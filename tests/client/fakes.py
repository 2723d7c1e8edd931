"""An authorization server and an API, faked behind httpx.MockTransport, and a clock to set."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx

ISSUER = "https://auth.example.com"
TOKEN_URL = ISSUER + "/oauth/token"
API = "https://api.example.com"
INVALID_TOKEN = 'Bearer realm="api", error="invalid_token", error_description="The access token expired"'


@dataclass
class Clock:
    """Seconds since the epoch, moved by hand."""

    now: float = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def form(request: httpx.Request) -> dict[str, str]:
    return dict(parse_qsl(request.content.decode()))


@dataclass
class FakeServer:
    """Issues access tokens ``at-1``, ``at-2``, ... (and, for the refresh token grant,
    refresh tokens ``rt-1``, ...); the API accepts the tokens in ``valid``."""

    expires_in: int | None = 3600
    rotate: bool = True
    #: Seconds each token request takes, to let concurrent requests pile up.
    delay: float = 0.0
    token_requests: list[httpx.Request] = field(default_factory=list)
    api_requests: list[httpx.Request] = field(default_factory=list)
    #: The token each API request carried (the request objects are reused on a retry).
    presented: list[str] = field(default_factory=list)
    valid: set[str] = field(default_factory=set)
    #: Canned answers for the next token requests (status, body), before normal service.
    token_answers: list[httpx.Response] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    #: The API rejects every token (a revoked client, say).
    reject_all: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _token(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.token_requests.append(request)
            number = len(self.token_requests)
            if self.token_answers:
                return self.token_answers.pop(0)
        access_token = f"at-{number}"
        self.valid.add(access_token)
        self.events.append(f"issued {access_token}")
        body: dict[str, Any] = {"access_token": access_token, "token_type": "Bearer", "created_at": 1}
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        if form(request).get("grant_type") == "refresh_token" and self.rotate:
            body["refresh_token"] = f"rt-{number}"
        return httpx.Response(200, json=body, headers={"cache-control": "no-store"})

    def _api(self, request: httpx.Request) -> httpx.Response:
        self.api_requests.append(request)
        presented = request.headers.get("authorization", "").removeprefix("Bearer ")
        self.presented.append(presented)
        self.events.append(f"api with {presented}")
        if presented in self.valid and not self.reject_all:
            return httpx.Response(200, json={"token": presented, "body": request.content.decode()})
        return httpx.Response(401, headers={"www-authenticate": INVALID_TOKEN}, json={"error": "invalid_token"})

    def handle(self, request: httpx.Request) -> httpx.Response:
        if str(request.url) == TOKEN_URL:
            if self.delay:
                time.sleep(self.delay)
            return self._token(request)
        return self._api(request)

    async def ahandle(self, request: httpx.Request) -> httpx.Response:
        if str(request.url) == TOKEN_URL and self.delay:
            await asyncio.sleep(self.delay)
            return self._token(request)
        return self.handle(request)

    def client(self, auth: httpx.Auth) -> httpx.Client:
        return httpx.Client(auth=auth, transport=httpx.MockTransport(self.handle), base_url=API)

    def async_client(self, auth: httpx.Auth) -> httpx.AsyncClient:
        return httpx.AsyncClient(auth=auth, transport=httpx.MockTransport(self.ahandle), base_url=API)


def json_response(status: int, body: object, **headers: str) -> httpx.Response:
    return httpx.Response(
        status, content=json.dumps(body).encode(), headers={"content-type": "application/json", **headers}
    )
