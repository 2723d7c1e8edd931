"""The SDK against a real `keyturn serve`, set up with the `keyturn` command as an operator
would: client credentials and API keys calling /me with httpx.Client and httpx.AsyncClient,
discovery, a revoked token replaced on the fly, and the authorization code flow (driven
through the login and consent pages over HTTP) followed by a rotating refresh."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin

import httpx
import pytest

from keyturn.client import (
    ApiKeyAuth,
    AuthorizationCodeFlow,
    ClientCredentialsAuth,
    OAuthClientError,
    RefreshTokenAuth,
    ServerMetadata,
    TokenResponse,
    adiscover,
    discover,
    from_env,
)

from ..cli_helpers import prepare_server, stop_server

pytestmark = pytest.mark.slow

ENV = {"KEYTURN_SECRET": "client-sdk-e2e-secret-" + "c" * 32}
EMAIL = "ann@example.com"
PASSWORD = "correct horse battery staple"
CALLBACK = "https://app.example.com/cb"


@dataclass
class Server:
    issuer: str
    client_id: str
    client_secret: str
    api_key: str
    web_client_id: str
    web_client_secret: str
    user_id: int


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    prepared = prepare_server(
        tmp_path_factory.mktemp("keyturn"), ENV, email=EMAIL, password=PASSWORD, callback=CALLBACK
    )
    user, machine, web = prepared.user, prepared.machine, prepared.web
    key = prepared.json("api-keys", "create", "--owner", EMAIL)
    issuer = prepared.issuer
    process = prepared.start()
    try:
        yield Server(
            issuer=issuer,
            client_id=str(machine["client_id"]),
            client_secret=str(machine["client_secret"]),
            api_key=str(key["key"]),
            web_client_id=str(web["client_id"]),
            web_client_secret=str(web["client_secret"]),
            user_id=int(str(user["id"])),
        )
    finally:
        code, _, err = stop_server(process)
    assert code == 0, err
    assert "Traceback" not in err


def token_url(server: Server) -> str:
    return server.issuer + "/oauth/token"


# ---- client credentials ----


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post"])
def test_client_credentials_with_httpx_client_calls_me(server: Server, auth_method: str) -> None:
    auth = ClientCredentialsAuth(
        token_url(server),
        server.client_id,
        server.client_secret,
        scope="sms",
        auth_method=auth_method,  # type: ignore[arg-type]
    )
    with httpx.Client(auth=auth, base_url=server.issuer) as api:
        first = api.get("/me")
        second = api.get("/me")
    assert first.status_code == 200, first.text
    assert first.json()["client_id"] == server.client_id
    assert first.json()["scope"] == "sms"
    # The token response is in the first call's history, and only there: the token is cached.
    assert [r.request.url.path for r in first.history] == ["/oauth/token"]
    assert second.history == []


def test_client_credentials_with_httpx_async_client_calls_me(server: Server) -> None:
    auth = ClientCredentialsAuth(token_url(server), server.client_id, server.client_secret)

    async def main() -> list[httpx.Response]:
        async with httpx.AsyncClient(auth=auth, base_url=server.issuer) as api:
            return list(await asyncio.gather(*(api.get("/me") for _ in range(5))))

    responses = asyncio.run(main())
    assert [r.status_code for r in responses] == [200] * 5
    assert {r.json()["client_id"] for r in responses} == {server.client_id}
    assert sum(len(r.history) for r in responses) == 1  # one token request for five calls


def test_a_revoked_token_is_replaced_and_the_call_retried(server: Server) -> None:
    auth = ClientCredentialsAuth(token_url(server), server.client_id, server.client_secret)
    with httpx.Client(auth=auth, base_url=server.issuer) as api:
        first = api.get("/me")
        revoked = first.request.headers["authorization"].removeprefix("Bearer ")
        revocation = httpx.post(
            server.issuer + "/oauth/revoke", data={"token": revoked}, auth=(server.client_id, server.client_secret)
        )
        assert revocation.status_code == 200
        again = api.get("/me")
    assert again.status_code == 200, again.text
    assert [r.status_code for r in again.history] == [401, 200]  # rejected call, new token
    assert 'error="invalid_token"' in again.history[0].headers["www-authenticate"]
    assert again.request.headers["authorization"] != f"Bearer {revoked}"


def test_a_wrong_secret_raises_invalid_client(server: Server) -> None:
    auth = ClientCredentialsAuth(token_url(server), server.client_id, "not-the-secret")
    with httpx.Client(auth=auth) as api, pytest.raises(OAuthClientError) as caught:
        api.get(server.issuer + "/me")
    assert (caught.value.error, caught.value.status_code) == ("invalid_client", 401)


def test_from_env_calls_me(server: Server) -> None:
    auth = from_env(
        {
            "KEYTURN_ISSUER": server.issuer,
            "KEYTURN_CLIENT_ID": server.client_id,
            "KEYTURN_CLIENT_SECRET": server.client_secret,
        }
    )
    with httpx.Client(auth=auth) as api:
        assert api.get(server.issuer + "/me").status_code == 200


# ---- API keys ----


@pytest.mark.parametrize(
    "auth", [ApiKeyAuth("<key>"), ApiKeyAuth("<key>", in_="query"), ApiKeyAuth("<key>", "query", "apikey")]
)
def test_api_key_in_header_and_query_calls_me(server: Server, auth: ApiKeyAuth) -> None:
    auth = ApiKeyAuth(server.api_key, auth.in_, auth.query_parameter)
    with httpx.Client(auth=auth, base_url=server.issuer) as api:
        response = api.get("/me")
    assert response.status_code == 200, response.text
    assert response.json()["user_id"] == server.user_id
    assert response.json()["email"] == EMAIL


# ---- discovery ----


def test_discover_finds_the_endpoints(server: Server) -> None:
    metadata = discover(server.issuer)
    assert metadata.issuer == server.issuer
    assert metadata.token_endpoint == token_url(server)
    assert metadata.authorization_endpoint == server.issuer + "/oauth/authorize"
    assert metadata.authorization_response_iss_parameter_supported is True
    assert set(metadata.scopes_supported) == {"sms", "balance"}
    with httpx.Client(auth=ClientCredentialsAuth(metadata, server.client_id, server.client_secret)) as api:
        assert api.get(server.issuer + "/me").status_code == 200


def test_adiscover_finds_the_same_endpoints(server: Server) -> None:
    assert asyncio.run(adiscover(server.issuer)) == discover(server.issuer)


# ---- the authorization code flow, then refresh ----


class HiddenInputs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "input" and attributes.get("type") == "hidden" and attributes.get("name"):
            self.values[str(attributes["name"])] = attributes.get("value") or ""


def hidden_inputs(html: str) -> dict[str, str]:
    parser = HiddenInputs()
    parser.feed(html)
    return parser.values


def sign_in_and_consent(browser: httpx.Client, authorization_url: str) -> str:
    """What the user does in the browser; returns the URL they are sent back to."""
    to_login = browser.get(authorization_url)
    assert to_login.status_code == 303, to_login.text
    login_page = browser.get(to_login.headers["location"])
    login = hidden_inputs(login_page.text)
    signed_in = browser.post("/login", data={**login, "email": EMAIL, "password": PASSWORD})
    assert signed_in.status_code == 303, signed_in.text
    consent_page = browser.get(signed_in.headers["location"])
    if consent_page.status_code == 302:  # consent given before is remembered
        return urljoin(str(consent_page.url), consent_page.headers["location"])
    assert consent_page.status_code == 200, consent_page.text
    consent = {**hidden_inputs(consent_page.text), "decision": "authorize"}
    approved = browser.post("/oauth/authorize", data={**consent, "granted_scope": ["sms", "balance"]})
    assert approved.status_code == 303, approved.text
    location: str = approved.headers["location"]
    return urljoin(str(approved.url), location)


def test_authorization_code_flow_then_refresh_with_rotation(server: Server) -> None:
    metadata = discover(server.issuer)
    flow = AuthorizationCodeFlow(metadata, server.web_client_id, server.web_client_secret, CALLBACK, "sms balance")
    url, state, verifier = flow.start()
    with httpx.Client(base_url=server.issuer) as browser:
        redirected = sign_in_and_consent(browser, url)
    assert redirected.startswith(CALLBACK + "?")

    tokens = flow.finish(redirected, state, verifier)
    assert tokens.scope == "sms balance"
    assert tokens.refresh_token is not None
    assert tokens.expires_at is not None
    assert tokens.expires_at == pytest.approx(time.time() + 3600, abs=30)

    rotations: list[TokenResponse] = []
    auth = RefreshTokenAuth(
        metadata,
        server.web_client_id,
        server.web_client_secret,
        tokens.refresh_token,
        on_rotate=rotations.append,
        access_token=tokens.access_token,
        expires_at=tokens.expires_at,
    )
    with httpx.Client(auth=auth, base_url=server.issuer) as api:
        me = api.get("/me")
    assert me.status_code == 200, me.text
    assert me.json()["user_id"] == server.user_id
    assert me.history == []  # the access token from the code exchange was used
    assert rotations == []

    # An hour later the access token is due: the auth refreshes, and the server rotates.
    later = RefreshTokenAuth(
        metadata,
        server.web_client_id,
        server.web_client_secret,
        tokens.refresh_token,
        on_rotate=rotations.append,
        access_token=tokens.access_token,
        expires_at=tokens.expires_at,
        clock=lambda: time.time() + 3600,
    )
    with httpx.Client(auth=later, base_url=server.issuer) as api:
        me = api.get("/me")
    assert me.status_code == 200, me.text
    assert [r.request.url.path for r in me.history] == ["/oauth/token"]
    (rotated,) = rotations
    assert rotated.refresh_token not in (None, tokens.refresh_token)
    assert later.refresh_token == rotated.refresh_token
    assert me.request.headers["authorization"] == f"Bearer {rotated.access_token}"


def test_a_replayed_authorization_response_is_refused_by_the_server(server: Server) -> None:
    metadata = ServerMetadata(
        issuer=server.issuer,
        token_endpoint=token_url(server),
        authorization_endpoint=server.issuer + "/oauth/authorize",
        authorization_response_iss_parameter_supported=True,
    )
    flow = AuthorizationCodeFlow(metadata, server.web_client_id, server.web_client_secret, CALLBACK, "sms")
    url, state, verifier = flow.start()
    with httpx.Client(base_url=server.issuer) as browser:
        redirected = sign_in_and_consent(browser, url)
    flow.finish(redirected, state, verifier)
    with pytest.raises(OAuthClientError) as caught:
        flow.finish(redirected, state, verifier)
    assert (caught.value.error, caught.value.status_code) == ("invalid_grant", 400)
