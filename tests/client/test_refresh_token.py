"""RefreshTokenAuth: the refresh token grant (RFC 6749 §6) with rotation (RFC 9700
§4.14.2): the new refresh token is handed to on_rotate before the new access token is used."""

from __future__ import annotations

import asyncio
from base64 import b64decode

import httpx
import pytest

from keyturn.client import OAuthClientError, RefreshTokenAuth, TokenResponse

from .fakes import TOKEN_URL, Clock, FakeServer, form, json_response

ID = "kt_web"
SECRET = "web-secret"


def test_a_given_access_token_is_used_until_it_is_due_then_refreshed() -> None:
    clock = Clock()
    server = FakeServer()
    server.valid.add("at-0")
    rotations: list[TokenResponse] = []
    auth = RefreshTokenAuth(
        TOKEN_URL,
        ID,
        SECRET,
        "rt-0",
        on_rotate=rotations.append,
        access_token="at-0",
        expires_at=clock.now + 3600,
        clock=clock,
    )
    with server.client(auth) as client:
        assert client.get("/a").json()["token"] == "at-0"
        assert server.token_requests == []
        clock.advance(3540)
        assert client.get("/b").json()["token"] == "at-1"
    (request,) = server.token_requests
    assert form(request) == {"grant_type": "refresh_token", "refresh_token": "rt-0"}
    assert b64decode(request.headers["authorization"].removeprefix("Basic ")) == b"kt_web:web-secret"
    assert [token.refresh_token for token in rotations] == ["rt-1"]
    assert auth.refresh_token == "rt-1"


def test_on_rotate_is_called_before_the_new_access_token_is_used() -> None:
    server = FakeServer()

    def store(token: TokenResponse) -> None:
        server.events.append(f"stored {token.refresh_token} for {token.access_token}")

    with server.client(RefreshTokenAuth(TOKEN_URL, ID, SECRET, "rt-0", on_rotate=store)) as client:
        client.get("/a")
    assert server.events == ["issued at-1", "stored rt-1 for at-1", "api with at-1"]


def test_the_next_refresh_presents_the_rotated_refresh_token() -> None:
    clock = Clock()
    server = FakeServer(expires_in=600)
    auth = RefreshTokenAuth(TOKEN_URL, ID, SECRET, "rt-0", on_rotate=lambda token: None, clock=clock)
    with server.client(auth) as client:
        client.get("/a")
        clock.advance(600)
        client.get("/b")
    assert [form(r)["refresh_token"] for r in server.token_requests] == ["rt-0", "rt-1"]


def test_a_server_that_does_not_rotate_keeps_the_refresh_token_and_skips_the_callback() -> None:
    server = FakeServer(rotate=False)
    rotations: list[TokenResponse] = []
    auth = RefreshTokenAuth(TOKEN_URL, ID, SECRET, "rt-0", on_rotate=rotations.append)
    with server.client(auth) as client:
        assert client.get("/a").json()["token"] == "at-1"
    assert rotations == []
    assert auth.refresh_token == "rt-0"


def test_when_on_rotate_fails_the_token_is_not_used_and_the_next_request_refreshes_again() -> None:
    server = FakeServer()
    calls: list[str | None] = []

    def flaky_store(token: TokenResponse) -> None:
        calls.append(token.refresh_token)
        if len(calls) == 1:
            raise OSError("database down")

    auth = RefreshTokenAuth(TOKEN_URL, ID, SECRET, "rt-0", on_rotate=flaky_store)
    with server.client(auth) as client:
        with pytest.raises(OSError, match="database down"):
            client.get("/a")
        assert server.api_requests == []
        assert client.get("/b").json()["token"] == "at-2"
    # The spent rt-0 is not presented again: the second refresh uses rt-1.
    assert [form(r)["refresh_token"] for r in server.token_requests] == ["rt-0", "rt-1"]
    assert calls == ["rt-1", "rt-2"]


def test_an_async_on_rotate_is_awaited_with_an_async_client() -> None:
    server = FakeServer()

    async def store(token: TokenResponse) -> None:
        await asyncio.sleep(0)
        server.events.append(f"stored {token.refresh_token}")

    async def main() -> None:
        auth = RefreshTokenAuth(TOKEN_URL, ID, SECRET, "rt-0", on_rotate=store)
        async with server.async_client(auth) as client:
            await client.get("/a")

    asyncio.run(main())
    assert server.events == ["issued at-1", "stored rt-1", "api with at-1"]


def test_an_async_on_rotate_with_a_sync_client_is_an_error() -> None:
    async def store(token: TokenResponse) -> None:
        pass

    server = FakeServer()
    auth = RefreshTokenAuth(TOKEN_URL, ID, SECRET, "rt-0", on_rotate=store)
    with server.client(auth) as client, pytest.raises(TypeError, match="awaitable"):
        client.get("/a")


def test_concurrent_tasks_refresh_once() -> None:
    server = FakeServer(delay=0.05)
    rotations: list[TokenResponse] = []

    async def main() -> list[str]:
        auth = RefreshTokenAuth(TOKEN_URL, ID, SECRET, "rt-0", on_rotate=rotations.append)
        async with server.async_client(auth) as client:
            responses = await asyncio.gather(*(client.get(f"/{n}") for n in range(10)))
        return [r.json()["token"] for r in responses]

    assert asyncio.run(main()) == ["at-1"] * 10
    assert len(server.token_requests) == 1
    assert len(rotations) == 1


def test_a_rejected_access_token_is_refreshed_and_the_request_retried_once() -> None:
    server = FakeServer()
    auth = RefreshTokenAuth(TOKEN_URL, ID, SECRET, "rt-0", on_rotate=lambda token: None, access_token="revoked")
    with server.client(auth) as client:
        response = client.get("/a")
    assert response.json()["token"] == "at-1"
    assert server.presented == ["revoked", "at-1"]


def test_a_public_client_identifies_itself_with_client_id_in_the_body() -> None:
    server = FakeServer()
    with server.client(RefreshTokenAuth(TOKEN_URL, "kt_spa", None, "rt-0", on_rotate=lambda t: None)) as client:
        client.get("/a")
    (request,) = server.token_requests
    assert "authorization" not in request.headers
    assert form(request) == {"grant_type": "refresh_token", "refresh_token": "rt-0", "client_id": "kt_spa"}


def test_an_invalid_grant_raises_with_the_rfc_error_code() -> None:
    answer = json_response(400, {"error": "invalid_grant", "error_description": "The refresh token has expired."})
    server = FakeServer(token_answers=[answer])
    rotations: list[TokenResponse] = []
    auth = RefreshTokenAuth(TOKEN_URL, ID, SECRET, "rt-0", on_rotate=rotations.append)
    with server.client(auth) as client, pytest.raises(OAuthClientError) as caught:
        client.get("/a")
    assert (caught.value.error, caught.value.status_code) == ("invalid_grant", 400)
    assert rotations == []


def test_repr_shows_no_token() -> None:
    auth = RefreshTokenAuth(TOKEN_URL, ID, SECRET, "rt-secret", on_rotate=lambda t: None, access_token="at-secret")
    assert "secret" not in repr(auth)


def test_the_refresh_requests_a_narrower_scope_when_asked() -> None:
    server = FakeServer()
    auth = RefreshTokenAuth(TOKEN_URL, ID, SECRET, "rt-0", on_rotate=lambda t: None, scope=["sms"])
    with httpx.Client(auth=auth, transport=httpx.MockTransport(server.handle)) as client:
        client.get("https://api.example.com/a")
    assert form(server.token_requests[0])["scope"] == "sms"
