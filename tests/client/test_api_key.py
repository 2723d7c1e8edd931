"""ApiKeyAuth: the key as a Bearer credential (RFC 6750 §2.1) or, as OnlineSIM's API users
send it, a query parameter."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from keyturn.client import ApiKeyAuth

KEY = "kt_ak_example"


def sent(auth: ApiKeyAuth, url: str = "https://api.example.com/getBalance?lang=en") -> httpx.Request:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    with httpx.Client(auth=auth, transport=httpx.MockTransport(handler)) as client:
        client.get(url)
    (request,) = seen
    return request


def test_the_key_goes_in_the_authorization_header_by_default() -> None:
    request = sent(ApiKeyAuth(KEY))
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert str(request.url) == "https://api.example.com/getBalance?lang=en"


def test_the_key_goes_in_the_api_key_query_parameter() -> None:
    request = sent(ApiKeyAuth(KEY, in_="query"))
    assert "authorization" not in request.headers
    assert request.url.params["api_key"] == KEY
    assert request.url.params["lang"] == "en"


def test_the_query_parameter_name_is_configurable_and_replaces_an_existing_one() -> None:
    request = sent(ApiKeyAuth(KEY, in_="query", query_parameter="apikey"), "https://api.example.com/x?apikey=old")
    assert request.url.params.get_list("apikey") == [KEY]


def test_it_serves_an_async_client() -> None:
    async def main() -> httpx.Request:
        seen: list[httpx.Request] = []

        async def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(200)

        async with httpx.AsyncClient(auth=ApiKeyAuth(KEY), transport=httpx.MockTransport(handler)) as client:
            await client.get("https://api.example.com/")
        return seen[0]

    assert asyncio.run(main()).headers["authorization"] == f"Bearer {KEY}"


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="in_"):
        ApiKeyAuth(KEY, in_="cookie")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty"):
        ApiKeyAuth("")


def test_repr_shows_no_key() -> None:
    assert KEY not in repr(ApiKeyAuth(KEY))
