"""The portal as a new user goes through it: sign up, create an API key and use it, create
an OAuth client and complete the code flow with it, create an access key and get a
client-credentials token, and revoke a connected app."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from .conftest import Callback, Keyturn, screenshot
from .test_authorization_flow import landed, pkce_pair

pytestmark = [pytest.mark.slow, pytest.mark.browser]
PASSWORD = "a long enough passphrase"


def sign_up(page: Any, keyturn: Keyturn) -> str:
    email = f"dev-{secrets.token_hex(4)}@example.com"
    page.goto(f"{keyturn.base}/signup")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Company").fill("Numbers Ltd")
    page.get_by_role("button", name="Create account").click()
    # A sign-up signs nobody in (it would tell a new address from a taken one): sign in.
    page.wait_for_url(f"{keyturn.base}/signup/done")
    assert page.get_by_role("status").inner_text().startswith("If this address can be used, your account is ready")
    page.get_by_role("link", name="Sign in").click()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{keyturn.base}/account")
    assert page.get_by_role("heading", name="Profile").is_visible()
    return email


def test_sign_up_and_use_an_api_key(page: Any, keyturn: Keyturn) -> None:
    email = sign_up(page, keyturn)
    page.get_by_role("link", name="API keys").click()
    page.get_by_label("Name").fill("Production server")
    page.get_by_label("Query balance").check()
    page.get_by_role("button", name="Create API key").click()
    key = page.get_by_label("API key").input_value()
    screenshot(page, "portal-api-key")
    assert key.startswith("kt_key_")

    by_header = httpx.get(f"{keyturn.base}/me", headers={"authorization": f"Bearer {key}"})
    assert by_header.status_code == 200
    assert (by_header.json()["email"], by_header.json()["scope"]) == (email, "balance")
    by_query = httpx.get(f"{keyturn.base}/me", params={"api_key": key})
    assert by_query.status_code == 200
    assert by_query.headers["cache-control"] == "no-store"
    assert by_query.headers["referrer-policy"] == "no-referrer"

    # Shown once: back on the list only the prefix and the last characters remain.
    page.goto(f"{keyturn.base}/account/api-keys")
    assert key not in page.content()
    assert page.get_by_role("cell", name=key[:11] + "…" + key[-4:]).is_visible()

    page.get_by_role("button", name="Revoke Production server").click()
    assert httpx.get(f"{keyturn.base}/me", params={"api_key": key}).status_code == 401


def test_create_a_client_and_complete_the_code_flow(page: Any, keyturn: Keyturn, callback: Callback) -> None:
    sign_up(page, keyturn)
    page.get_by_role("link", name="OAuth clients").click()
    page.get_by_label("Name").fill("Reseller dashboard")
    page.get_by_label("Redirect URL").fill(callback.url)
    assert page.get_by_label("Confidential").is_checked()
    page.get_by_role("button", name="Create").click()
    client_id = page.get_by_label("Client ID").input_value()
    client_secret = page.get_by_label("Client Secret").input_value()
    screenshot(page, "portal-client-created")

    verifier, challenge = pkce_pair()
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": callback.url,
            "scope": "sms",
            "state": "portal",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    page.goto(f"{keyturn.base}/oauth/authorize?{query}")  # already signed in: straight to consent
    page.get_by_role("button", name="Authorize").click()
    answer = landed(page, callback)
    tokens = httpx.post(
        f"{keyturn.base}/oauth/token",
        auth=(client_id, client_secret),
        data={
            "grant_type": "authorization_code",
            "code": answer["code"],
            "redirect_uri": callback.url,
            "code_verifier": verifier,
        },
    )
    assert tokens.status_code == 200, tokens.text

    # The app now appears under Connected apps; revoking it kills its refresh token.
    page.goto(f"{keyturn.base}/account/apps")
    assert page.get_by_role("cell", name="Reseller dashboard", exact=True).is_visible()
    screenshot(page, "portal-connected-apps")
    page.get_by_role("button", name="Revoke Reseller dashboard").click()
    page.wait_for_url(f"{keyturn.base}/account/apps")
    assert page.get_by_text("You have not authorized any application.").is_visible()
    refresh = httpx.post(
        f"{keyturn.base}/oauth/token",
        auth=(client_id, client_secret),
        data={"grant_type": "refresh_token", "refresh_token": tokens.json()["refresh_token"]},
    )
    assert (refresh.status_code, refresh.json()["error"]) == (400, "invalid_grant")
    me = httpx.get(f"{keyturn.base}/me", headers={"authorization": f"Bearer {tokens.json()['access_token']}"})
    assert me.status_code == 401


def test_create_an_access_key_and_get_a_client_credentials_token(page: Any, keyturn: Keyturn) -> None:
    email = sign_up(page, keyturn)
    page.get_by_role("link", name="Access keys").click()
    page.get_by_label("Display name").fill("CI pipeline")
    page.get_by_role("button", name="Confirm").click()
    key_id = page.get_by_label("Key ID").input_value()
    key_secret = page.get_by_label("Key Secret").input_value()
    screenshot(page, "portal-access-key")

    # curl https://auth.sinch.com/oauth2/token -d grant_type=client_credentials -u KEY_ID:KEY_SECRET
    token = httpx.post(
        f"{keyturn.base}/oauth/token", auth=(key_id, key_secret), data={"grant_type": "client_credentials"}
    )
    assert token.status_code == 200, token.text
    me = httpx.get(f"{keyturn.base}/me", headers={"authorization": f"Bearer {token.json()['access_token']}"})
    assert (me.status_code, me.json()["email"], me.json()["client_id"]) == (200, email, key_id)

    page.goto(f"{keyturn.base}/account/access-keys")
    assert key_secret not in page.content()
    page.get_by_role("button", name="Delete CI pipeline").click()
    page.wait_for_url(f"{keyturn.base}/account/access-keys")
    again = httpx.post(
        f"{keyturn.base}/oauth/token", auth=(key_id, key_secret), data={"grant_type": "client_credentials"}
    )
    assert again.status_code == 401
