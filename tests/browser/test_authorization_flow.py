"""The browser flow as a user of an OnlineSIM- or sms77-style platform goes through it:
"redirected to the authorization page to enter the login and password ... he has to
click on the Authorize button". Elements are found by label and role, as a screen reader
finds them."""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from .conftest import PASSWORD, Callback, Keyturn, screenshot

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_url(keyturn: Keyturn, **params: str) -> str:
    return f"{keyturn.base}/oauth/authorize?{urlencode(params)}"


def sign_in(page: Any, email: str = "ann@example.com", password: str = PASSWORD) -> None:
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def landed(page: Any, callback: Callback) -> dict[str, str]:
    """The query parameters the client's redirect endpoint received."""
    page.wait_for_url(f"{callback.url}*")
    query = parse_qs(urlsplit(page.url).query)
    return {k: v[0] for k, v in query.items()}


def register(keyturn: Keyturn, callback: Callback, *extra: str) -> dict[str, Any]:
    return keyturn.cli("clients", "create", "--name", "Acme Dashboard", "--redirect-uri", callback.url, *extra)


def test_code_flow_with_pkce_for_a_confidential_client(page: Any, keyturn: Keyturn, callback: Callback) -> None:
    client = register(keyturn, callback)
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(16)
    page.goto(
        authorize_url(
            keyturn,
            response_type="code",
            client_id=client["client_id"],
            redirect_uri=callback.url,
            scope="sms balance",
            state=state,
            code_challenge=challenge,
            code_challenge_method="S256",
        )
    )
    assert page.get_by_role("heading", name="Sign in").is_visible()
    screenshot(page, "login")
    sign_in(page)

    assert page.get_by_role("heading", name="Acme Dashboard wants to access your account").is_visible()
    assert page.get_by_label("Send SMS messages").is_checked()
    assert page.get_by_label("Query balance").is_checked()
    screenshot(page, "consent")
    page.get_by_role("button", name="Authorize").click()

    answer = landed(page, callback)
    assert set(answer) == {"code", "state", "iss"}
    assert (answer["state"], answer["iss"]) == (state, keyturn.base)
    tokens = httpx.post(
        f"{keyturn.base}/oauth/token",
        auth=(client["client_id"], client["client_secret"]),
        data={
            "grant_type": "authorization_code",
            "code": answer["code"],
            "redirect_uri": callback.url,
            "code_verifier": verifier,
        },
    )
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    assert (body["scope"], body["token_type"]) == ("sms balance", "Bearer")
    assert "refresh_token" in body
    me = httpx.get(f"{keyturn.base}/me", headers={"authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert (me.json()["email"], me.json()["company"], me.json()["scope"]) == (
        "ann@example.com",
        "Acme Inc",
        "sms balance",
    )

    # Remembered consent: the same request again goes straight back to the client.
    page.goto(
        authorize_url(
            keyturn,
            response_type="code",
            client_id=client["client_id"],
            scope="sms",
            state="again",
            code_challenge=challenge,
            code_challenge_method="S256",
        )
    )
    again = landed(page, callback)
    assert again["state"] == "again"
    assert "code" in again


def test_code_flow_with_pkce_for_a_public_client_and_granular_consent(
    page: Any, keyturn: Keyturn, callback: Callback
) -> None:
    client = register(keyturn, callback, "--public")
    verifier, challenge = pkce_pair()
    page.goto(
        authorize_url(
            keyturn,
            response_type="code",
            client_id=client["client_id"],
            scope="sms balance analytics",
            state="s1",
            code_challenge=challenge,
            code_challenge_method="S256",
        )
    )
    sign_in(page)
    page.get_by_label("Query statistics").uncheck()
    page.get_by_role("button", name="Authorize").click()
    answer = landed(page, callback)
    tokens = httpx.post(
        f"{keyturn.base}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "client_id": client["client_id"],
            "code": answer["code"],
            "code_verifier": verifier,
        },
    )
    assert tokens.status_code == 200, tokens.text
    assert tokens.json()["scope"] == "sms balance"
    me = httpx.get(f"{keyturn.base}/me", headers={"authorization": f"Bearer {tokens.json()['access_token']}"})
    assert (me.status_code, me.json()["client_id"]) == (200, client["client_id"])


def test_deny_sends_access_denied_back(page: Any, keyturn: Keyturn, callback: Callback) -> None:
    client = register(keyturn, callback)
    page.goto(authorize_url(keyturn, response_type="code", client_id=client["client_id"], state="nope", scope="sms"))
    sign_in(page)
    page.get_by_role("button", name="Deny").click()
    answer = landed(page, callback)
    assert (answer["error"], answer["state"], answer["iss"]) == ("access_denied", "nope", keyturn.base)
    assert "code" not in answer


def test_the_implicit_flow_puts_the_token_in_the_fragment(page: Any, keyturn: Keyturn, callback: Callback) -> None:
    client = register(keyturn, callback, "--public", "--allow-implicit")
    page.goto(authorize_url(keyturn, response_type="token", client_id=client["client_id"], scope="sms", state="imp"))
    sign_in(page)
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(f"{callback.url}*")
    parts = urlsplit(page.url)
    assert parts.query == ""
    fragment = {k: v[0] for k, v in parse_qs(parts.fragment).items()}
    assert set(fragment) == {"access_token", "token_type", "expires_in", "scope", "state", "iss"}
    assert (fragment["token_type"], fragment["scope"], fragment["state"]) == ("Bearer", "sms", "imp")
    me = httpx.get(f"{keyturn.base}/me", headers={"authorization": f"Bearer {fragment['access_token']}"})
    assert me.status_code == 200
    # The fragment never reached the client's server.
    assert all("access_token" not in path for path in callback.requests)


def test_wrong_password_then_right(page: Any, keyturn: Keyturn, callback: Callback) -> None:
    client = register(keyturn, callback)
    page.goto(authorize_url(keyturn, response_type="code", client_id=client["client_id"], scope="sms", state="w"))
    sign_in(page, password="not the password")
    assert page.get_by_role("alert").inner_text() == "Wrong email or password."
    sign_in(page)
    assert page.get_by_role("button", name="Authorize").is_visible()


def test_an_unknown_client_gets_an_error_page_not_a_redirect(page: Any, keyturn: Keyturn, callback: Callback) -> None:
    response = page.goto(authorize_url(keyturn, response_type="code", client_id="nobody", redirect_uri=callback.url))
    assert response.status == 400
    assert page.get_by_role("heading", name="This link cannot be used").is_visible()
    assert page.url.startswith(keyturn.base)


def test_signing_in_to_an_app_already_authorized_goes_straight_back_to_it(
    page: Any, browser: Any, keyturn: Keyturn, callback: Callback
) -> None:
    """The login form's POST is answered 303 to /oauth/authorize, and that 302 to the client:
    the pages' form-action must not stop the browser on the way."""
    client = register(keyturn, callback)
    url = authorize_url(keyturn, response_type="code", client_id=client["client_id"], scope="sms", state="first")
    page.goto(url)
    sign_in(page)
    page.get_by_role("button", name="Authorize").click()
    assert landed(page, callback)["state"] == "first"

    context = browser.new_context()  # another browser, signed out
    context.set_default_timeout(10_000)
    try:
        other = context.new_page()
        other.goto(url.replace("state=first", "state=again"))
        sign_in(other)
        again = landed(other, callback)
        assert again["state"] == "again"
        assert "code" in again
    finally:
        context.close()
