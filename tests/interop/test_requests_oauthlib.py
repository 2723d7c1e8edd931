"""requests-oauthlib's ``OAuth2Session`` (on oauthlib) against a real `keyturn serve`: the
authorization code flow with PKCE S256 and a client secret, refresh (by hand and
automatic), a protected call to /me, and ``BackendApplicationClient`` for client
credentials, each used the way the requests-oauthlib documentation shows."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from oauthlib.oauth2 import BackendApplicationClient, InvalidClientError, InvalidGrantError
from requests.auth import HTTPBasicAuth
from requests_oauthlib import OAuth2Session

from .conftest import CALLBACK, NATIVE_CALLBACK, Server, sign_in_and_consent

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _loopback_http(monkeypatch: pytest.MonkeyPatch) -> None:
    # oauthlib refuses any http:// endpoint unless told otherwise, as RFC 6749 §3.1 and
    # §3.2 require TLS for the authorization and token endpoints. It is right; the test
    # server simply listens on plain HTTP on the loopback interface.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")


class Wire:
    """Records what a session sent (a requests response hook)."""

    def __init__(self, session: requests.Session) -> None:
        self.requests: list[requests.PreparedRequest] = []
        session.hooks["response"].append(self._record)

    def _record(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.requests.append(response.request)

    def to(self, path: str) -> list[requests.PreparedRequest]:
        return [r for r in self.requests if urlsplit(r.url).path == path]


def form(request: requests.PreparedRequest) -> dict[str, str]:
    body = request.body
    text = body.decode("ascii") if isinstance(body, bytes) else str(body or "")
    return {k: v for k, (v,) in parse_qs(text).items()}


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


# ---- authorization code + PKCE, refresh, /me ----


@pytest.fixture
def session(server: Server) -> Iterator[OAuth2Session]:
    with OAuth2Session(server.web_id, redirect_uri=CALLBACK, scope=["sms", "balance"], pkce="S256") as session:
        yield session


def authorize(server: Server, session: OAuth2Session, callback_uri: str = CALLBACK) -> str:
    """The session's authorization URL through the user's browser; the callback URL."""
    url, state = session.authorization_url(server.authorization_endpoint)
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["state"] == [state]
    callback = sign_in_and_consent(server.issuer, url)
    assert callback.startswith(callback_uri + "?")
    assert parse_qs(urlsplit(callback).query)["state"] == [state]
    return callback


def test_authorization_code_with_pkce_refresh_and_me(server: Server, session: OAuth2Session) -> None:
    wire = Wire(session)
    callback = authorize(server, session)
    token = session.fetch_token(server.token_endpoint, authorization_response=callback, client_secret=server.web_secret)
    assert token["token_type"] == "Bearer"
    assert token["scope"] == ["sms", "balance"]  # oauthlib hands scope back as a list
    assert token["expires_at"] == pytest.approx(time.time() + 3600, abs=30)
    (code_request,) = wire.to("/oauth/token")
    sent = form(code_request)
    assert sent["grant_type"] == "authorization_code"
    assert sent["redirect_uri"] == CALLBACK
    assert len(sent["code_verifier"]) == 43
    # With no auth given, client_id and client_secret become the Basic credentials
    # (client_secret_basic), and nothing of the client goes in the body.
    assert code_request.headers["Authorization"] == basic(server.web_id, server.web_secret)
    assert "client_id" not in sent
    assert "client_secret" not in sent

    me = session.get(server.me)
    assert me.status_code == 200, me.text
    assert me.json()["user_id"] == server.user_id
    assert me.json()["client_id"] == server.web_id
    assert me.json()["scope"] == "sms balance"

    # refresh_token() sends no client authentication of its own: pass it (RFC 6749 §6,
    # "the client MUST authenticate with the authorization server").
    refreshed = session.refresh_token(server.token_endpoint, auth=HTTPBasicAuth(server.web_id, server.web_secret))
    assert refreshed["access_token"] != token["access_token"]
    assert refreshed["refresh_token"] not in (None, token["refresh_token"])  # rotated
    assert refreshed["scope"] == ["sms", "balance"]
    assert form(wire.to("/oauth/token")[-1])["refresh_token"] == token["refresh_token"]

    me = session.get(server.me)
    assert me.status_code == 200, me.text
    assert me.request.headers["Authorization"] == f"Bearer {refreshed['access_token']}"


def test_client_id_in_the_body_alongside_basic_auth(server: Server, session: OAuth2Session) -> None:
    # requests-oauthlib's documented way to force client_id into the body along with an
    # auth object (2.0.0 no longer does it by default). RFC 6749 §3.2.1 lets a client send its
    # client_id to identify itself; with Basic credentials that agree, it is one client
    # authenticating once, which Keyturn accepts.
    wire = Wire(session)
    callback = authorize(server, session)
    token = session.fetch_token(
        server.token_endpoint,
        authorization_response=callback,
        auth=HTTPBasicAuth(server.web_id, server.web_secret),
        include_client_id=True,
    )
    (code_request,) = wire.to("/oauth/token")
    assert code_request.headers["Authorization"] == basic(server.web_id, server.web_secret)
    assert form(code_request)["client_id"] == server.web_id
    assert token["scope"] == ["sms", "balance"]
    assert session.get(server.me).status_code == 200


def test_a_wrong_client_secret_is_invalid_client(server: Server, session: OAuth2Session) -> None:
    callback = authorize(server, session)
    with pytest.raises(InvalidClientError):
        session.fetch_token(server.token_endpoint, authorization_response=callback, client_secret="not-the-secret")


def test_a_code_is_used_once(server: Server, session: OAuth2Session) -> None:
    callback = authorize(server, session)
    session.fetch_token(server.token_endpoint, authorization_response=callback, client_secret=server.web_secret)
    with pytest.raises(InvalidGrantError):
        session.fetch_token(server.token_endpoint, authorization_response=callback, client_secret=server.web_secret)


def test_access_token_is_refreshed_automatically(server: Server, session: OAuth2Session) -> None:
    callback = authorize(server, session)
    first = dict(
        session.fetch_token(server.token_endpoint, authorization_response=callback, client_secret=server.web_secret)
    )
    saved: list[dict[str, Any]] = []
    with OAuth2Session(
        server.web_id,
        token={**first, "expires_at": time.time() - 1},  # found due, as an hour later
        auto_refresh_url=server.token_endpoint,
        token_updater=saved.append,
    ) as later:
        # client_id and client_secret on the call become the refresh request's Basic credentials.
        me = later.get(server.me, client_id=server.web_id, client_secret=server.web_secret)
    assert me.status_code == 200, me.text
    (rotated,) = saved
    assert rotated["refresh_token"] not in (None, first["refresh_token"])
    assert me.request.headers["Authorization"] == f"Bearer {rotated['access_token']}"


# ---- a public client (no secret) with PKCE ----


@pytest.fixture
def public_session(server: Server) -> Iterator[OAuth2Session]:
    with OAuth2Session(server.native_id, redirect_uri=NATIVE_CALLBACK, scope=["sms"], pkce="S256") as session:
        yield session


def public_code_exchange(server: Server, session: OAuth2Session) -> dict[str, Any]:
    callback = authorize(server, session, NATIVE_CALLBACK)
    # Workaround: without include_client_id=True, requests-oauthlib sends a public client's
    # id as Basic credentials with an empty password and nothing in the body. That is
    # client authentication with a secret the client does not have; RFC 6749 §3.2.1 and
    # §4.1.3 say an unauthenticated client MUST send client_id as a body parameter in the
    # authorization_code request. Keyturn answers the empty-password Basic with 401.
    token: dict[str, Any] = session.fetch_token(
        server.token_endpoint, authorization_response=callback, include_client_id=True
    )
    return token


def test_public_client_with_pkce_then_refresh_naming_itself(server: Server, public_session: OAuth2Session) -> None:
    wire = Wire(public_session)
    token = public_code_exchange(server, public_session)
    (code_request,) = wire.to("/oauth/token")
    assert "Authorization" not in code_request.headers
    assert form(code_request)["client_id"] == server.native_id
    assert form(code_request)["code_verifier"]
    assert public_session.get(server.me).json()["client_id"] == server.native_id

    # client_id as an extra body parameter (RFC 6749 §3.2.1: a client MAY name itself).
    refreshed = public_session.refresh_token(server.token_endpoint, client_id=server.native_id)
    assert refreshed["refresh_token"] not in (None, token["refresh_token"])
    assert public_session.get(server.me).status_code == 200


def test_public_client_refresh_without_client_id(server: Server, public_session: OAuth2Session) -> None:
    """requests-oauthlib's plain refresh_token() for a public client sends grant_type,
    scope and refresh_token only. RFC 6749 §6 lists exactly those parameters; a client
    must authenticate only "if the client type is confidential or the client was issued
    client credentials", and §3.2.1 makes client_id a MAY outside the authorization_code
    grant. The refresh token itself names the (public) client it was issued to."""
    token = public_code_exchange(server, public_session)
    refreshed = public_session.refresh_token(server.token_endpoint)
    assert refreshed["refresh_token"] not in (None, token["refresh_token"])
    me = public_session.get(server.me)
    assert me.status_code == 200, me.text
    assert me.json()["client_id"] == server.native_id


# ---- client credentials with BackendApplicationClient ----


def test_backend_application_client_with_basic_auth(server: Server) -> None:
    # As documented: fetch_token(token_url=..., client_id=..., client_secret=...).
    with OAuth2Session(client=BackendApplicationClient(client_id=server.machine_id)) as session:
        wire = Wire(session)
        token = session.fetch_token(
            token_url=server.token_endpoint, client_id=server.machine_id, client_secret=server.machine_secret
        )
        me = session.get(server.me)
    assert token["token_type"] == "Bearer"
    assert token["scope"] == ["sms"]
    assert "refresh_token" not in token  # RFC 6749 §4.4.3
    (token_request,) = wire.to("/oauth/token")
    assert token_request.headers["Authorization"] == basic(server.machine_id, server.machine_secret)
    assert form(token_request)["grant_type"] == "client_credentials"
    assert me.status_code == 200, me.text
    assert me.json()["client_id"] == server.machine_id


def test_backend_application_client_with_explicit_auth(server: Server) -> None:
    with OAuth2Session(client=BackendApplicationClient(client_id=server.machine_id, scope=["sms"])) as session:
        token = session.fetch_token(
            token_url=server.token_endpoint, auth=HTTPBasicAuth(server.machine_id, server.machine_secret)
        )
        me = session.get(server.me)
    assert token["scope"] == ["sms"]
    assert me.status_code == 200, me.text


def test_backend_application_client_with_secret_in_body(server: Server) -> None:
    # client_secret_post: include_client_id=True puts client_id and client_secret in the form.
    with OAuth2Session(client=BackendApplicationClient(client_id=server.machine_id)) as session:
        wire = Wire(session)
        session.fetch_token(
            token_url=server.token_endpoint, include_client_id=True, client_secret=server.machine_secret
        )
        me = session.get(server.me)
    (token_request,) = wire.to("/oauth/token")
    assert "Authorization" not in token_request.headers
    sent = form(token_request)
    assert (sent["client_id"], sent["client_secret"]) == (server.machine_id, server.machine_secret)
    assert me.status_code == 200, me.text


def test_backend_application_client_with_a_wrong_secret(server: Server) -> None:
    with (
        OAuth2Session(client=BackendApplicationClient(client_id=server.machine_id)) as session,
        pytest.raises(InvalidClientError),
    ):
        session.fetch_token(token_url=server.token_endpoint, client_id=server.machine_id, client_secret="nope")
