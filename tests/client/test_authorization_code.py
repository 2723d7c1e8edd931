"""AuthorizationCodeFlow: the request (RFC 6749 §4.1.1) with PKCE S256 (RFC 7636), the
response's state (§10.12) and iss (RFC 9207) checks, errors (§4.1.2.1), the code exchange
(§4.1.3)."""

from __future__ import annotations

import asyncio
import re
from base64 import b64decode
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from keyturn.client import (
    AuthorizationCodeFlow,
    IssuerMismatchError,
    OAuthClientError,
    ServerMetadata,
    StateMismatchError,
    UnexpectedResponseError,
)
from keyturn.client._flow import code_challenge

from .fakes import ISSUER, TOKEN_URL, Clock, form, json_response

AUTHORIZE = ISSUER + "/oauth/authorize"
SERVER = ServerMetadata(
    issuer=ISSUER,
    token_endpoint=TOKEN_URL,
    authorization_endpoint=AUTHORIZE,
    authorization_response_iss_parameter_supported=True,
)
CALLBACK = "https://app.example.com/cb"
TOKENS = {"access_token": "at-1", "token_type": "Bearer", "expires_in": 3600, "refresh_token": "rt-1", "scope": "sms"}


APP_SECRET = "app-secret"


def flow(server: ServerMetadata = SERVER, secret: str | None = APP_SECRET) -> AuthorizationCodeFlow:
    return AuthorizationCodeFlow(server, "kt_app", secret, CALLBACK, ["sms", "balance"], clock=Clock())


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def callback(**parameters: str) -> str:
    return CALLBACK + "?" + "&".join(f"{name}={value}" for name, value in parameters.items())


# ---- start() ----


def test_start_builds_the_authorization_url_with_state_and_pkce_s256() -> None:
    url, state, verifier = flow().start()
    assert url.startswith(AUTHORIZE + "?")
    assert query(url) == {
        "response_type": ["code"],
        "client_id": ["kt_app"],
        "redirect_uri": [CALLBACK],
        "scope": ["sms balance"],
        "state": [state],
        "code_challenge": [code_challenge(verifier)],
        "code_challenge_method": ["S256"],
    }
    # RFC 7636 §4.1: 43 to 128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~".
    assert re.fullmatch(r"[A-Za-z0-9\-._~]{43,128}", verifier)
    assert len(state) >= 32


def test_each_start_has_its_own_state_and_verifier() -> None:
    first, second = flow().start(), flow().start()
    assert first.state != second.state
    assert first.code_verifier != second.code_verifier


def test_code_challenge_matches_rfc7636_appendix_b() -> None:
    assert (
        code_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )


def test_start_keeps_the_endpoints_own_query_and_adds_extra_parameters() -> None:
    server = ServerMetadata(issuer=ISSUER, token_endpoint=TOKEN_URL, authorization_endpoint=AUTHORIZE + "?tenant=a")
    url, _, _ = flow(server).start(prompt="consent")
    assert query(url)["tenant"] == ["a"]
    assert query(url)["prompt"] == ["consent"]


def test_a_server_without_an_authorization_endpoint_is_refused() -> None:
    with pytest.raises(ValueError, match="authorization_endpoint"):
        flow(ServerMetadata(issuer=ISSUER, token_endpoint=TOKEN_URL))


# ---- the callback's checks ----


def test_the_code_comes_back_from_the_callback_url_a_query_string_or_a_mapping() -> None:
    started = flow().start()
    for answer in (
        callback(code="c-1", state=started.state, iss=ISSUER),
        f"code=c-1&state={started.state}&iss={ISSUER}",
        {"code": "c-1", "state": started.state, "iss": ISSUER},
    ):
        assert flow().authorization_code(answer, started.state) == "c-1"


@pytest.mark.parametrize("state", [None, "", "forged"])
def test_a_missing_or_different_state_is_rejected_rfc6749_10_12(state: str | None) -> None:
    parameters = {"code": "c-1", "iss": ISSUER}
    if state is not None:
        parameters["state"] = state
    with pytest.raises(StateMismatchError) as caught:
        flow().authorization_code(parameters, "expected-state")
    assert caught.value.error == "state_mismatch"


def test_a_missing_iss_is_rejected_when_the_server_advertises_it_rfc9207_2_4() -> None:
    with pytest.raises(IssuerMismatchError, match="no iss"):
        flow().authorization_code({"code": "c-1", "state": "s"}, "s")


def test_an_iss_of_another_server_is_rejected_rfc9207_2_4() -> None:
    for iss in ("https://evil.example.com", ISSUER + "/"):
        with pytest.raises(IssuerMismatchError, match=r"not 'https://auth\.example\.com'"):
            flow().authorization_code({"code": "c-1", "state": "s", "iss": iss}, "s")


def test_without_the_metadata_flag_iss_is_optional_but_still_checked() -> None:
    server = ServerMetadata(issuer=ISSUER, token_endpoint=TOKEN_URL, authorization_endpoint=AUTHORIZE)
    assert flow(server).authorization_code({"code": "c-1", "state": "s"}, "s") == "c-1"
    with pytest.raises(IssuerMismatchError):
        flow(server).authorization_code({"code": "c-1", "state": "s", "iss": "https://evil.example.com"}, "s")


def test_an_error_in_the_callback_raises_with_its_code_and_description_rfc6749_4_1_2_1() -> None:
    answer = callback(error="access_denied", error_description="The+user+said+no", state="s", iss=ISSUER)
    with pytest.raises(OAuthClientError) as caught:
        flow().authorization_code(answer, "s")
    assert (caught.value.error, caught.value.description, caught.value.status_code) == (
        "access_denied",
        "The user said no",
        None,
    )


def test_an_error_with_a_forged_state_is_a_state_mismatch() -> None:
    with pytest.raises(StateMismatchError):
        flow().authorization_code(callback(error="access_denied", state="forged", iss=ISSUER), "s")


def test_a_repeated_parameter_is_rejected_rfc6749_3_1() -> None:
    with pytest.raises(UnexpectedResponseError, match="repeats"):
        flow().authorization_code(callback(code="c-1", state="s", iss=ISSUER) + "&code=c-2", "s")


def test_a_callback_without_code_or_error_is_rejected() -> None:
    with pytest.raises(UnexpectedResponseError, match="neither"):
        flow().authorization_code({"state": "s", "iss": ISSUER}, "s")


# ---- finish(): the code exchange ----


def exchanging(seen: list[httpx.Request], answer: httpx.Response | None = None) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer or json_response(200, TOKENS)

    return httpx.MockTransport(handler)


def test_finish_exchanges_the_code_with_the_verifier() -> None:
    started = flow().start()
    seen: list[httpx.Request] = []
    with httpx.Client(transport=exchanging(seen)) as client:
        tokens = flow().finish(
            callback(code="c-1", state=started.state, iss=ISSUER), started.state, started.code_verifier, client=client
        )
    (request,) = seen
    assert str(request.url) == TOKEN_URL
    assert b64decode(request.headers["authorization"].removeprefix("Basic ")) == b"kt_app:app-secret"
    assert form(request) == {
        "grant_type": "authorization_code",
        "code": "c-1",
        "redirect_uri": CALLBACK,
        "code_verifier": started.code_verifier,
    }
    assert (tokens.access_token, tokens.refresh_token, tokens.expires_in, tokens.scope) == ("at-1", "rt-1", 3600, "sms")
    assert tokens.expires_at == Clock().now + 3600
    assert "at-1" not in repr(tokens)
    assert "rt-1" not in repr(tokens)


def test_a_public_client_sends_its_client_id_and_no_secret() -> None:
    seen: list[httpx.Request] = []
    with httpx.Client(transport=exchanging(seen)) as client:
        flow(secret=None).finish({"code": "c", "state": "s", "iss": ISSUER}, "s", "v" * 43, client=client)
    assert "authorization" not in seen[0].headers
    assert form(seen[0])["client_id"] == "kt_app"


def test_finish_checks_before_it_sends_anything() -> None:
    seen: list[httpx.Request] = []
    with httpx.Client(transport=exchanging(seen)) as client, pytest.raises(StateMismatchError):
        flow().finish({"code": "c", "state": "forged", "iss": ISSUER}, "s", "v" * 43, client=client)
    assert seen == []


def test_a_refused_exchange_raises_with_the_rfc_error_code() -> None:
    answer = json_response(400, {"error": "invalid_grant", "error_description": "The code was already used."})
    with httpx.Client(transport=exchanging([], answer)) as client, pytest.raises(OAuthClientError) as caught:
        flow().finish({"code": "c", "state": "s", "iss": ISSUER}, "s", "v" * 43, client=client)
    assert (caught.value.error, caught.value.status_code) == ("invalid_grant", 400)


def test_afinish_exchanges_the_code_with_an_async_client() -> None:
    seen: list[httpx.Request] = []

    async def main() -> str:
        async with httpx.AsyncClient(transport=exchanging(seen)) as client:
            tokens = await flow().afinish({"code": "c", "state": "s", "iss": ISSUER}, "s", "v" * 43, client=client)
        return tokens.access_token

    assert asyncio.run(main()) == "at-1"
    assert form(seen[0])["code"] == "c"
