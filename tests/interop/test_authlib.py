"""Authlib's httpx clients (``OAuth2Client``, ``AsyncOAuth2Client``) against a real
`keyturn serve`: server metadata, client credentials with both secret methods, the
authorization code flow with PKCE S256, refresh (by hand and automatic), and revocation."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuth2Client, OAuthError
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata, get_well_known_url

from .conftest import CALLBACK, NATIVE_CALLBACK, Server, sign_in_and_consent

pytestmark = pytest.mark.slow

METHODS = ["client_secret_basic", "client_secret_post"]


class Wire:
    """Records the requests a client sends (an httpx event hook), to check what went out."""

    def __init__(self) -> None:
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> None:
        self.requests.append(request)

    async def async_hook(self, request: httpx2.Request) -> None:
        self.requests.append(request)

    def to(self, path: str) -> list[httpx2.Request]:
        return [r for r in self.requests if r.url.path == path]


def form(request: httpx2.Request) -> dict[str, str]:
    return {k: v for k, (v,) in parse_qs(request.content.decode("ascii")).items()}


def assert_authenticated_with(request: httpx2.Request, method: str, client_id: str, secret: str) -> None:
    body = form(request)
    if method == "client_secret_basic":
        expected = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        assert request.headers["authorization"] == f"Basic {expected}"
        assert "client_secret" not in body
    else:
        assert "authorization" not in request.headers
        assert (body["client_id"], body["client_secret"]) == (client_id, secret)


# ---- RFC 8414 metadata ----


def test_server_metadata_passes_authlib_validation(server: Server) -> None:
    url = get_well_known_url(server.issuer, external=True)
    assert url == server.issuer + "/.well-known/oauth-authorization-server"
    with OAuth2Client() as client:
        response = client.request("GET", url, withhold_token=True)
    assert response.status_code == 200, response.text
    metadata = AuthorizationServerMetadata(response.json())
    # RFC 8414 §2 wants an https issuer; Authlib lets a loopback http one pass (as RFC 8252
    # §7.3 does for redirect URIs), which is what this test server has.
    metadata.validate()
    # RFC 8414 §3.3: the issuer is the one the client derived the metadata URL from.
    assert metadata["issuer"] == server.issuer
    assert metadata["token_endpoint"] == server.token_endpoint
    assert metadata["authorization_endpoint"] == server.authorization_endpoint
    assert metadata["revocation_endpoint"] == server.revocation_endpoint
    assert set(METHODS) <= set(metadata.token_endpoint_auth_methods_supported)
    assert set(METHODS) <= set(metadata.revocation_endpoint_auth_methods_supported)
    assert "S256" in metadata["code_challenge_methods_supported"]
    assert {"authorization_code", "refresh_token", "client_credentials"} <= set(metadata.grant_types_supported)
    assert set(metadata["scopes_supported"]) == {"sms", "balance"}


# ---- client credentials ----


@pytest.mark.parametrize("method", METHODS)
def test_client_credentials_then_me(server: Server, method: str) -> None:
    wire = Wire()
    with OAuth2Client(
        server.machine_id,
        server.machine_secret,
        token_endpoint_auth_method=method,
        scope="sms",
        event_hooks={"request": [wire]},
    ) as client:
        token = client.fetch_token(server.token_endpoint, grant_type="client_credentials")
        me = client.get(server.me)

    assert token["token_type"] == "Bearer"
    assert token["scope"] == "sms"
    assert token["expires_in"] == 3600
    assert token["expires_at"] == pytest.approx(time.time() + 3600, abs=30)
    assert "refresh_token" not in token  # RFC 6749 §4.4.3
    (token_request,) = wire.to("/oauth/token")
    assert_authenticated_with(token_request, method, server.machine_id, server.machine_secret)
    assert form(token_request)["grant_type"] == "client_credentials"
    assert me.status_code == 200, me.text
    assert me.json()["client_id"] == server.machine_id
    assert me.json()["user_id"] is not None
    assert me.request.headers["authorization"] == f"Bearer {token['access_token']}"


@pytest.mark.parametrize("method", METHODS)
def test_a_wrong_secret_is_invalid_client(server: Server, method: str) -> None:
    with (
        OAuth2Client(server.machine_id, "not-the-secret", token_endpoint_auth_method=method) as client,
        pytest.raises(OAuthError) as caught,
    ):
        client.fetch_token(server.token_endpoint, grant_type="client_credentials")
    assert caught.value.error == "invalid_client"


def test_client_credentials_token_is_renewed_when_due(server: Server) -> None:
    renewals: list[tuple[dict[str, Any], str]] = []

    def update_token(token: dict[str, Any], access_token: str) -> None:
        renewals.append((token, access_token))

    with OAuth2Client(
        server.machine_id,
        server.machine_secret,
        token_endpoint=server.token_endpoint,
        grant_type="client_credentials",
        update_token=update_token,
    ) as client:
        first = client.fetch_token()
        assert client.get(server.me).status_code == 200
        assert renewals == []
        client.token = {**first, "expires_at": int(time.time()) + 30}  # inside the 60 s leeway
        me = client.get(server.me)
    assert me.status_code == 200, me.text
    ((renewed, old),) = renewals
    assert old == first["access_token"]
    assert renewed["access_token"] != first["access_token"]
    assert me.request.headers["authorization"] == f"Bearer {renewed['access_token']}"


@pytest.mark.parametrize("method", METHODS)
def test_async_client_credentials_then_me(server: Server, method: str) -> None:
    wire = Wire()

    async def main() -> tuple[dict[str, Any], list[httpx2.Response]]:
        async with AsyncOAuth2Client(
            server.machine_id,
            server.machine_secret,
            token_endpoint_auth_method=method,
            event_hooks={"request": [wire.async_hook]},
        ) as client:
            token = await client.fetch_token(server.token_endpoint, grant_type="client_credentials")
            responses = await asyncio.gather(*(client.get(server.me) for _ in range(5)))
            return dict(token), list(responses)

    token, responses = asyncio.run(main())
    assert token["scope"] == "sms"  # no scope asked: the client's registered scope
    assert [r.status_code for r in responses] == [200] * 5
    assert {r.json()["client_id"] for r in responses} == {server.machine_id}
    (token_request,) = wire.to("/oauth/token")
    assert_authenticated_with(token_request, method, server.machine_id, server.machine_secret)


# ---- authorization code + PKCE, refresh, revocation ----


def web_client(server: Server, **kwargs: Any) -> OAuth2Client:
    return OAuth2Client(
        server.web_id,
        server.web_secret,
        scope="sms balance",
        redirect_uri=CALLBACK,
        code_challenge_method="S256",
        **kwargs,
    )


def authorize(
    server: Server, client: OAuth2Client | AsyncOAuth2Client, verifier: str, callback_uri: str = CALLBACK
) -> tuple[str, str]:
    """The client's authorization URL through the user's browser; (callback URL, state)."""
    url, state = client.create_authorization_url(server.authorization_endpoint, code_verifier=verifier)
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge"] == [create_s256_code_challenge(verifier)]
    assert query["code_challenge_method"] == ["S256"]
    assert query["state"] == [state]
    callback = sign_in_and_consent(server.issuer, url)
    assert callback.startswith(callback_uri + "?")
    returned = parse_qs(urlsplit(callback).query)
    assert returned["state"] == [state]
    assert returned["iss"] == [server.issuer]  # RFC 9207
    return callback, state


def test_authorization_code_with_pkce_refresh_and_revocation(server: Server) -> None:
    wire = Wire()
    verifier = generate_token(48)
    with web_client(server, event_hooks={"request": [wire]}) as client:
        callback, state = authorize(server, client, verifier)
        token = client.fetch_token(
            server.token_endpoint, authorization_response=callback, state=state, code_verifier=verifier
        )
        assert token["token_type"] == "Bearer"
        assert token["scope"] == "sms balance"
        assert token["expires_at"] == pytest.approx(time.time() + 3600, abs=30)
        code_request = wire.to("/oauth/token")[-1]
        assert form(code_request)["code_verifier"] == verifier
        assert form(code_request)["redirect_uri"] == CALLBACK
        assert_authenticated_with(code_request, "client_secret_basic", server.web_id, server.web_secret)

        me = client.get(server.me)
        assert me.status_code == 200, me.text
        assert (me.json()["user_id"], me.json()["client_id"]) == (server.user_id, server.web_id)
        assert me.json()["scope"] == "sms balance"

        first = dict(token)
        refreshed = client.refresh_token(server.token_endpoint)
        assert refreshed["access_token"] != first["access_token"]
        assert refreshed["refresh_token"] not in (None, first["refresh_token"])  # rotated
        assert refreshed["scope"] == "sms balance"
        assert form(wire.to("/oauth/token")[-1])["refresh_token"] == first["refresh_token"]
        assert client.get(server.me).request.headers["authorization"] == f"Bearer {refreshed['access_token']}"

        # RFC 7009: revoking the refresh token ends the grant, its access tokens too.
        revoked = client.revoke_token(
            server.revocation_endpoint, token=refreshed["refresh_token"], token_type_hint="refresh_token"
        )
        assert revoked.status_code == 200, revoked.text
        revocation = wire.to("/oauth/revoke")[-1]
        assert form(revocation)["token_type_hint"] == "refresh_token"
        assert_authenticated_with(revocation, "client_secret_basic", server.web_id, server.web_secret)
        after = client.get(server.me)
        assert after.status_code == 401
        assert 'error="invalid_token"' in after.headers["www-authenticate"]
        with pytest.raises(OAuthError) as caught:
            client.refresh_token(server.token_endpoint)
        assert caught.value.error == "invalid_grant"


def test_a_wrong_code_verifier_is_invalid_grant(server: Server) -> None:
    verifier = generate_token(48)
    with web_client(server) as client:
        callback, state = authorize(server, client, verifier)
        with pytest.raises(OAuthError) as caught:
            client.fetch_token(
                server.token_endpoint, authorization_response=callback, state=state, code_verifier=generate_token(48)
            )
    assert caught.value.error == "invalid_grant"


def test_public_client_with_pkce_refresh_and_revocation(server: Server) -> None:
    # No secret: Authlib picks the "none" method (RFC 7591 §2), client_id in the body.
    wire = Wire()
    verifier = generate_token(48)
    with OAuth2Client(
        server.native_id,
        scope="sms",
        redirect_uri=NATIVE_CALLBACK,
        code_challenge_method="S256",
        event_hooks={"request": [wire]},
    ) as client:
        callback, state = authorize(server, client, verifier, NATIVE_CALLBACK)
        token = client.fetch_token(
            server.token_endpoint, authorization_response=callback, state=state, code_verifier=verifier
        )
        assert token["scope"] == "sms"
        code_request = wire.to("/oauth/token")[-1]
        assert "authorization" not in code_request.headers
        assert form(code_request)["client_id"] == server.native_id
        assert "client_secret" not in form(code_request)
        assert client.get(server.me).json()["client_id"] == server.native_id

        refreshed = client.refresh_token(server.token_endpoint)
        assert refreshed["refresh_token"] not in (None, token["refresh_token"])  # rotated (RFC 9700 §4.14.2)
        assert form(wire.to("/oauth/token")[-1])["client_id"] == server.native_id

        revoked = client.revoke_token(server.revocation_endpoint, token=refreshed["refresh_token"])
        assert revoked.status_code == 200, revoked.text
        assert form(wire.to("/oauth/revoke")[-1])["client_id"] == server.native_id
        assert client.get(server.me).status_code == 401


def test_access_token_is_refreshed_automatically(server: Server) -> None:
    verifier = generate_token(48)
    updates: list[tuple[dict[str, Any], str]] = []

    def update_token(token: dict[str, Any], refresh_token: str) -> None:
        updates.append((dict(token), refresh_token))

    with web_client(server, token_endpoint=server.token_endpoint, update_token=update_token) as client:
        callback, state = authorize(server, client, verifier)
        first = dict(client.fetch_token(authorization_response=callback, state=state, code_verifier=verifier))
        assert client.get(server.me).status_code == 200
        assert updates == []

        # The stored token is found due (as an hour later): the next call refreshes first.
        client.token = {**first, "expires_at": int(time.time()) - 1}
        me = client.get(server.me)
        assert me.status_code == 200, me.text
        ((rotated, old_refresh_token),) = updates
        assert old_refresh_token == first["refresh_token"]
        assert rotated["refresh_token"] not in (None, first["refresh_token"])
        assert me.request.headers["authorization"] == f"Bearer {rotated['access_token']}"
        assert client.token["refresh_token"] == rotated["refresh_token"]


def test_async_authorization_code_automatic_refresh_and_revocation(server: Server) -> None:
    verifier = generate_token(48)
    updates: list[tuple[dict[str, Any], str]] = []

    async def update_token(token: dict[str, Any], refresh_token: str) -> None:
        updates.append((dict(token), refresh_token))

    async def main() -> None:
        async with AsyncOAuth2Client(
            server.web_id,
            server.web_secret,
            scope="sms",
            redirect_uri=CALLBACK,
            code_challenge_method="S256",
            token_endpoint=server.token_endpoint,
            update_token=update_token,
        ) as client:
            # The browser part is synchronous: run it off the event loop.
            callback, state = await asyncio.to_thread(authorize, server, client, verifier)
            first = dict(
                await client.fetch_token(
                    server.token_endpoint, authorization_response=callback, state=state, code_verifier=verifier
                )
            )
            assert first["scope"] == "sms"
            assert (await client.get(server.me)).json()["user_id"] == server.user_id

            # Five concurrent calls on a due token: the client's lock makes one refresh.
            client.token = {**first, "expires_at": int(time.time()) - 1}
            responses = await asyncio.gather(*(client.get(server.me) for _ in range(5)))
            assert [r.status_code for r in responses] == [200] * 5
            ((rotated, old_refresh_token),) = updates
            assert old_refresh_token == first["refresh_token"]
            assert {r.request.headers["authorization"] for r in responses} == {f"Bearer {rotated['access_token']}"}

            # Revoking only the access token (RFC 7009 §2.1) leaves the refresh token usable.
            revoked = await client.revoke_token(
                server.revocation_endpoint, token=rotated["access_token"], token_type_hint="access_token"
            )
            assert revoked.status_code == 200, revoked.text
            assert (await client.get(server.me)).status_code == 401
            again = await client.refresh_token(server.token_endpoint)
            assert again["access_token"] != rotated["access_token"]
            assert (await client.get(server.me)).status_code == 200

    asyncio.run(main())
