"""ClientCredentialsAuth (RFC 6749 §4.4) against a fake server: the request it sends
(§2.3.1, §3.2), the token cache renewed 60 s before expiry, one token request at a time,
and one retry after RFC 6750 §3.1's invalid_token."""

from __future__ import annotations

import asyncio
import threading
from base64 import b64decode

import httpx
import pytest

from keyturn.client import ClientCredentialsAuth, OAuthClientError, ServerMetadata, UnexpectedResponseError

from .fakes import ISSUER, TOKEN_URL, Clock, FakeServer, form, json_response

ID = "kt_client id"
SECRET = "s3cret:with/odd+chars"


def make_auth(clock: Clock | None = None, **options: object) -> ClientCredentialsAuth:
    return ClientCredentialsAuth(TOKEN_URL, ID, SECRET, clock=clock or Clock(), **options)  # type: ignore[arg-type]


# ---- the token request ----


def test_client_secret_basic_form_urlencodes_id_and_secret_rfc6749_2_3_1() -> None:
    server = FakeServer()
    with server.client(make_auth(scope=["account.read", "calls.read"])) as client:
        assert client.get("/account").status_code == 200
    (request,) = server.token_requests
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    scheme, _, encoded = request.headers["authorization"].partition(" ")
    assert scheme == "Basic"
    assert b64decode(encoded).decode() == "kt_client+id:s3cret%3Awith%2Fodd%2Bchars"
    assert form(request) == {"grant_type": "client_credentials", "scope": "account.read calls.read"}


def test_client_secret_post_puts_the_credentials_in_the_body_as_sipsim_does() -> None:
    server = FakeServer()
    with server.client(make_auth(auth_method="client_secret_post", scope="account.read")) as client:
        client.get("/account")
    (request,) = server.token_requests
    assert "authorization" not in request.headers
    assert form(request) == {
        "grant_type": "client_credentials",
        "client_id": ID,
        "client_secret": SECRET,
        "scope": "account.read",
    }


def test_no_scope_sends_no_scope_parameter() -> None:
    server = FakeServer()
    with server.client(make_auth()) as client:
        client.get("/account")
    assert form(server.token_requests[0]) == {"grant_type": "client_credentials"}


def test_the_token_url_can_come_from_server_metadata() -> None:
    metadata = ServerMetadata(issuer=ISSUER, token_endpoint=TOKEN_URL)
    server = FakeServer()
    with server.client(ClientCredentialsAuth(metadata, ID, SECRET)) as client:
        assert client.get("/account").json()["token"] == "at-1"
    assert str(server.token_requests[0].url) == TOKEN_URL


def test_an_unknown_auth_method_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="auth_method"):
        make_auth(auth_method="private_key_jwt")


def test_repr_shows_no_secret() -> None:
    assert SECRET not in repr(make_auth())


# ---- the cache: renewed 60 s before expiry ----


def test_the_token_is_reused_until_60_seconds_before_it_expires() -> None:
    clock = Clock()
    server = FakeServer(expires_in=3600)
    with server.client(make_auth(clock)) as client:
        assert client.get("/a").json()["token"] == "at-1"
        clock.advance(3600 - 60 - 1)
        assert client.get("/b").json()["token"] == "at-1"
        clock.advance(1)  # now exactly 60 s before expiry
        assert client.get("/c").json()["token"] == "at-2"
        assert client.get("/d").json()["token"] == "at-2"
    assert len(server.token_requests) == 2
    assert len(server.api_requests) == 4


def test_renew_before_is_configurable() -> None:
    clock = Clock()
    server = FakeServer(expires_in=3600)
    with server.client(make_auth(clock, renew_before=300)) as client:
        client.get("/a")
        clock.advance(3299)
        assert client.get("/b").json()["token"] == "at-1"
        clock.advance(1)
        assert client.get("/c").json()["token"] == "at-2"


def test_a_token_shorter_lived_than_twice_the_margin_is_used_for_half_its_life() -> None:
    clock = Clock()
    server = FakeServer(expires_in=60)
    with server.client(make_auth(clock)) as client:
        client.get("/a")
        clock.advance(29)
        assert client.get("/b").json()["token"] == "at-1"
        clock.advance(1)
        assert client.get("/c").json()["token"] == "at-2"


def test_a_token_without_expires_in_is_kept_until_the_api_rejects_it() -> None:
    clock = Clock()
    server = FakeServer(expires_in=None)
    with server.client(make_auth(clock)) as client:
        client.get("/a")
        clock.advance(10 * 365 * 86400)
        assert client.get("/b").json()["token"] == "at-1"
        server.valid.clear()
        assert client.get("/c").json()["token"] == "at-2"


def test_the_same_instance_serves_a_sync_and_an_async_client() -> None:
    server = FakeServer()
    auth = make_auth()
    with server.client(auth) as client:
        client.get("/a")

    async def call() -> str:
        async with server.async_client(auth) as client:
            token: str = (await client.get("/b")).json()["token"]
            return token

    assert asyncio.run(call()) == "at-1"
    assert len(server.token_requests) == 1


# ---- one token request at a time ----


def test_concurrent_threads_cause_exactly_one_token_request() -> None:
    server = FakeServer(delay=0.05)
    auth = make_auth()
    threads = 20
    start = threading.Barrier(threads)
    tokens: list[str] = []
    with server.client(auth) as client:

        def call() -> None:
            start.wait()
            tokens.append(client.get("/account").json()["token"])

        workers = [threading.Thread(target=call) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    assert len(server.token_requests) == 1
    assert tokens == ["at-1"] * threads


def test_concurrent_tasks_cause_exactly_one_token_request() -> None:
    server = FakeServer(delay=0.05)
    auth = make_auth()

    async def main() -> list[str]:
        async with server.async_client(auth) as client:
            responses = await asyncio.gather(*(client.get(f"/account/{n}") for n in range(20)))
        return [response.json()["token"] for response in responses]

    assert asyncio.run(main()) == ["at-1"] * 20
    assert len(server.token_requests) == 1


def test_concurrent_renewal_after_expiry_is_one_token_request_too() -> None:
    clock = Clock()
    server = FakeServer(delay=0.05)
    auth = make_auth(clock)

    async def main() -> list[str]:
        async with server.async_client(auth) as client:
            await client.get("/warm-up")
            clock.advance(3600)
            responses = await asyncio.gather(*(client.get(f"/account/{n}") for n in range(10)))
        return [response.json()["token"] for response in responses]

    assert asyncio.run(main()) == ["at-2"] * 10
    assert len(server.token_requests) == 2


def test_a_failed_token_request_releases_the_lock() -> None:
    server = FakeServer(token_answers=[httpx.Response(503, text="maintenance")])
    with server.client(make_auth()) as client:
        with pytest.raises(UnexpectedResponseError, match="HTTP 503"):
            client.get("/a")
        assert client.get("/b").json()["token"] == "at-2"

    server = FakeServer(token_answers=[httpx.Response(503, text="maintenance")])

    async def main() -> str:
        async with server.async_client(make_auth()) as client:
            with pytest.raises(UnexpectedResponseError):
                await client.get("/a")
            token: str = (await client.get("/b")).json()["token"]
            return token

    assert asyncio.run(main()) == "at-2"


# ---- one retry after invalid_token ----


def test_a_401_invalid_token_fetches_a_new_token_and_retries_once() -> None:
    server = FakeServer()
    with server.client(make_auth()) as client:
        client.get("/a")
        server.valid.discard("at-1")  # revoked on the server
        response = client.post("/calls", content=b"dial 555")
    assert response.status_code == 200
    assert response.json() == {"token": "at-2", "body": "dial 555"}
    assert [r.status_code for r in response.history] == [401, 200]  # the rejected call, the token
    assert server.presented == ["at-1", "at-1", "at-2"]


def test_a_retry_that_fails_again_returns_the_401_without_looping() -> None:
    server = FakeServer()
    with server.client(make_auth()) as client:
        client.get("/a")
        server.reject_all = True
        response = client.get("/b")
    assert response.status_code == 401
    # at-1 rejected, at-2 fetched and rejected too: no third try.
    assert len(server.token_requests) == 2
    assert server.presented == ["at-1", "at-1", "at-2"]


def test_a_retry_that_fails_again_returns_the_401_async() -> None:
    server = FakeServer()

    async def main() -> httpx.Response:
        async with server.async_client(make_auth()) as client:
            await client.get("/a")
            server.reject_all = True
            return await client.get("/b")

    response = asyncio.run(main())
    assert response.status_code == 401
    assert len(server.token_requests) == 2
    assert len(server.api_requests) == 3


def test_an_async_401_invalid_token_retries_once_with_a_new_token() -> None:
    server = FakeServer()

    async def main() -> httpx.Response:
        async with server.async_client(make_auth()) as client:
            await client.get("/a")
            server.valid.discard("at-1")
            return await client.post("/calls", json={"to": "555"})

    response = asyncio.run(main())
    assert response.json() == {"token": "at-2", "body": '{"to":"555"}'}


@pytest.mark.parametrize(
    ("status", "challenge"),
    [
        (401, 'Bearer realm="api"'),  # RFC 6750 §3.1: no credentials, no error code
        (403, 'Bearer error="insufficient_scope", scope="calls.write"'),
        (401, 'Basic realm="api", charset="UTF-8"'),
        (400, 'Bearer error="invalid_request"'),
    ],
)
def test_other_errors_are_returned_without_a_retry(status: int, challenge: str) -> None:
    server = FakeServer()

    def handler(request: httpx.Request) -> httpx.Response:
        if str(request.url) == TOKEN_URL:
            return server.handle(request)
        server.api_requests.append(request)
        return httpx.Response(status, headers={"www-authenticate": challenge})

    with httpx.Client(auth=make_auth(), transport=httpx.MockTransport(handler)) as client:
        assert client.get("https://api.example.com/a").status_code == status
    assert len(server.token_requests) == 1
    assert len(server.api_requests) == 1


def test_invalid_token_is_found_among_several_challenges() -> None:
    server = FakeServer()
    challenge = 'Basic realm="x", Bearer realm="api", error_description="a \\"quoted\\" one", error=invalid_token'
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if str(request.url) == TOKEN_URL:
            return server.handle(request)
        calls.append(request.headers["authorization"])
        if len(calls) == 1:
            return httpx.Response(401, headers={"www-authenticate": challenge})
        return httpx.Response(200)

    with httpx.Client(auth=make_auth(), transport=httpx.MockTransport(handler)) as client:
        assert client.get("https://api.example.com/a").status_code == 200
    assert calls == ["Bearer at-1", "Bearer at-2"]


# ---- errors from the token endpoint ----


def test_an_error_response_raises_with_the_rfc_error_code() -> None:
    answer = json_response(401, {"error": "invalid_client", "error_description": "Client authentication failed."})
    server = FakeServer(token_answers=[answer])
    with server.client(make_auth()) as client, pytest.raises(OAuthClientError) as caught:
        client.get("/a")
    error = caught.value
    assert (error.error, error.description, error.status_code) == (
        "invalid_client",
        "Client authentication failed.",
        401,
    )
    assert str(error) == "invalid_client: Client authentication failed."
    assert server.api_requests == []


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (httpx.Response(200, text="<html>login</html>"), "not JSON"),
        (httpx.Response(502, text="Bad Gateway"), "not JSON \\(HTTP 502"),
        (json_response(200, ["access_token"]), "not a JSON object"),
        (json_response(200, {"token_type": "Bearer"}), "access_token"),
        (json_response(200, {"access_token": "x", "token_type": "mac"}), "not Bearer"),
        (json_response(200, {"access_token": "x", "token_type": "Bearer", "expires_in": "soon"}), "expires_in"),
        (json_response(400, {"response": "ERROR_WRONG_KEY"}), "without an RFC 6749 error code"),
    ],
)
def test_a_malformed_answer_raises_unexpected_response_error(answer: httpx.Response, message: str) -> None:
    server = FakeServer(token_answers=[answer])
    with server.client(make_auth()) as client, pytest.raises(UnexpectedResponseError, match=message) as caught:
        client.get("/a")
    assert caught.value.error == "unexpected_response"
    assert caught.value.status_code == answer.status_code or caught.value.status_code is None
