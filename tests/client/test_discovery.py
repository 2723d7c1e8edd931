"""discover() / adiscover(): RFC 8414 metadata, and its §3.3 issuer check; from_env()."""

from __future__ import annotations

import asyncio
import warnings
from base64 import b64encode

import httpx
import pytest

from keyturn.client import (
    ClientCredentialsAuth,
    IssuerMismatchError,
    ServerMetadata,
    UnexpectedResponseError,
    adiscover,
    discover,
    from_env,
)

from .fakes import ISSUER, TOKEN_URL, FakeServer, form, json_response

DOCUMENT = {
    "issuer": ISSUER,
    "authorization_endpoint": ISSUER + "/oauth/authorize",
    "token_endpoint": TOKEN_URL,
    "revocation_endpoint": ISSUER + "/oauth/revoke",
    "introspection_endpoint": ISSUER + "/oauth/introspect",
    "jwks_uri": ISSUER + "/oauth/jwks",
    "scopes_supported": ["sms", "balance"],
    "code_challenge_methods_supported": ["S256"],
    "authorization_response_iss_parameter_supported": True,
    "grant_types_supported": ["client_credentials"],
}


def serving(routes: dict[str, httpx.Response], seen: list[str] | None = None) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(str(request.url))
        return routes.get(str(request.url), httpx.Response(404))

    return httpx.MockTransport(handler)


def discovered(issuer: str, routes: dict[str, httpx.Response], seen: list[str] | None = None) -> ServerMetadata:
    with httpx.Client(transport=serving(routes, seen)) as client:
        return discover(issuer, client=client)


def test_discover_reads_the_well_known_document_rfc8414_3() -> None:
    metadata = discovered(ISSUER, {ISSUER + "/.well-known/oauth-authorization-server": json_response(200, DOCUMENT)})
    assert metadata == ServerMetadata(
        issuer=ISSUER,
        token_endpoint=TOKEN_URL,
        authorization_endpoint=ISSUER + "/oauth/authorize",
        revocation_endpoint=ISSUER + "/oauth/revoke",
        introspection_endpoint=ISSUER + "/oauth/introspect",
        jwks_uri=ISSUER + "/oauth/jwks",
        scopes_supported=("sms", "balance"),
        code_challenge_methods_supported=("S256",),
        authorization_response_iss_parameter_supported=True,
    )
    assert metadata.raw["grant_types_supported"] == ["client_credentials"]


def test_a_trailing_slash_on_the_issuer_does_not_matter() -> None:
    metadata = discovered(
        ISSUER + "/", {ISSUER + "/.well-known/oauth-authorization-server": json_response(200, DOCUMENT)}
    )
    assert metadata.issuer == ISSUER


def test_another_issuer_in_the_document_is_rejected_rfc8414_3_3() -> None:
    document = dict(DOCUMENT, issuer="https://evil.example.com")
    with pytest.raises(IssuerMismatchError, match="evil"):
        discovered(ISSUER, {ISSUER + "/.well-known/oauth-authorization-server": json_response(200, document)})


def test_an_issuer_with_a_path_is_looked_up_the_rfc8414_way_then_below_the_issuer() -> None:
    issuer = "https://example.com/tenant"
    document = dict(DOCUMENT, issuer=issuer)
    seen: list[str] = []
    metadata = discovered(
        issuer,
        {"https://example.com/tenant/.well-known/oauth-authorization-server": json_response(200, document)},
        seen,
    )
    assert metadata.issuer == issuer
    assert seen == [
        "https://example.com/.well-known/oauth-authorization-server/tenant",
        "https://example.com/tenant/.well-known/oauth-authorization-server",
    ]


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (httpx.Response(404), "HTTP 404"),
        (httpx.Response(200, text="<html/>"), "not JSON"),
        (json_response(200, dict(DOCUMENT, token_endpoint=None)), "token_endpoint"),
        (json_response(200, dict(DOCUMENT, scopes_supported="sms")), "scopes_supported"),
        (json_response(200, dict(DOCUMENT, authorization_response_iss_parameter_supported="yes")), "non-boolean"),
    ],
)
def test_a_bad_answer_raises_unexpected_response_error(answer: httpx.Response, message: str) -> None:
    with pytest.raises(UnexpectedResponseError, match=message):
        discovered(ISSUER, {ISSUER + "/.well-known/oauth-authorization-server": answer})


@pytest.mark.parametrize("issuer", ["auth.example.com", "ftp://auth.example.com", ISSUER + "?tenant=a", ISSUER + "#x"])
def test_an_issuer_that_is_no_issuer_url_is_refused_rfc8414_2(issuer: str) -> None:
    with pytest.raises(ValueError, match="issuer"):
        discovered(issuer, {})


def test_adiscover_reads_the_same_document() -> None:
    async def main() -> ServerMetadata:
        transport = serving({ISSUER + "/.well-known/oauth-authorization-server": json_response(200, DOCUMENT)})
        async with httpx.AsyncClient(transport=transport) as client:
            return await adiscover(ISSUER, client=client)

    assert asyncio.run(main()).token_endpoint == TOKEN_URL


# ---- from_env ----


def test_from_env_builds_client_credentials_auth_for_keyturns_token_endpoint() -> None:
    auth = from_env(
        {
            "KEYTURN_ISSUER": ISSUER + "/",
            "KEYTURN_CLIENT_ID": "kt_ci",
            "KEYTURN_CLIENT_SECRET": "s",
            "KEYTURN_CLIENT_SCOPE": "account.read calls.read",
        }
    )
    assert isinstance(auth, ClientCredentialsAuth)
    assert (auth.token_url, auth.client_id, auth.scope) == (TOKEN_URL, "kt_ci", "account.read calls.read")
    server = FakeServer()
    with server.client(auth) as client:
        client.get("/me")
    (request,) = server.token_requests
    assert request.headers["authorization"] == "Basic " + b64encode(b"kt_ci:s").decode()
    assert form(request) == {"grant_type": "client_credentials", "scope": "account.read calls.read"}


def test_from_env_reads_os_environ_and_names_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYTURN_ISSUER", ISSUER)
    monkeypatch.setenv("KEYTURN_CLIENT_ID", "kt_ci")
    monkeypatch.delenv("KEYTURN_CLIENT_SECRET", raising=False)
    with pytest.raises(ValueError, match="KEYTURN_CLIENT_SECRET") as caught:
        from_env()
    assert "KEYTURN_CLIENT_ID" not in str(caught.value)
    monkeypatch.setenv("KEYTURN_CLIENT_SECRET", "s")
    monkeypatch.delenv("KEYTURN_SCOPE", raising=False)
    monkeypatch.delenv("KEYTURN_CLIENT_SCOPE", raising=False)
    assert from_env().scope is None


def test_from_env_still_reads_the_deprecated_keyturn_scope_with_a_warning() -> None:
    env = {"KEYTURN_ISSUER": ISSUER, "KEYTURN_CLIENT_ID": "kt_ci", "KEYTURN_CLIENT_SECRET": "s"}
    with pytest.warns(DeprecationWarning, match="KEYTURN_CLIENT_SCOPE"):
        assert from_env({**env, "KEYTURN_SCOPE": "calls.read"}).scope == "calls.read"
    # The new name wins, without a warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert from_env({**env, "KEYTURN_SCOPE": "old", "KEYTURN_CLIENT_SCOPE": "new"}).scope == "new"
