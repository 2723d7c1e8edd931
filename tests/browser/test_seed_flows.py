"""The seeds' authorization-code examples, replayed literally against a running server:
OnlineSIM's (its query parameters; client_id and client_secret in the POST body; a
refresh with an empty scope) and sms77's (no redirect_uri; `curl -u id:secret`)."""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from .conftest import Callback, Keyturn, running_keyturn
from .test_authorization_flow import landed, sign_in

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CONFIG = """
access_token_ttl = 3600
default_scopes = ["sms"]
[scopes]
sms-scope = "Manage numbers for receiving SMS"
rent-scope = "Rent phone numbers"
proxy-scope = "Manage proxies"
free-scope = "Use free numbers"
sms = "Send SMS messages"
analytics = "Query statistics"
"""


@pytest.fixture(scope="module")
def keyturn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keyturn]:
    yield from running_keyturn(tmp_path_factory, CONFIG)


def curl(*args: str) -> dict[str, Any]:
    result = subprocess.run(["curl", "-s", "-S", *args], capture_output=True, text=True, timeout=30, check=True)
    payload: dict[str, Any] = json.loads(result.stdout)
    return payload


def test_onlinesim_authorization_code_example(page: Any, keyturn: Keyturn, callback: Callback) -> None:
    client = keyturn.cli("clients", "create", "--name", "Number reseller", "--redirect-uri", callback.url)
    # session()->put('state', $state = Str::random(40)); http_build_query([...])
    state = secrets.token_hex(20)
    query = urlencode(
        {
            "client_id": client["client_id"],
            "redirect_uri": callback.url,
            "response_type": "code",
            "scope": "sms-scope rent-scope",
            "state": state,
        }
    )
    page.goto(f"{keyturn.base}/oauth/authorize?{query}")
    sign_in(page)
    assert page.get_by_label("Manage numbers for receiving SMS").is_checked()
    page.get_by_role("button", name="Authorize").click()
    answer = landed(page, callback)
    assert answer["state"] == state  # "At this point, you can check the state parameter"

    # $http->post('https://onlinesim.io/oauth/token', ['form_params' => [...]])
    tokens = httpx.post(
        f"{keyturn.base}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
            "redirect_uri": callback.url,
            "code": answer["code"],
        },
    )
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    assert {"access_token", "refresh_token", "expires_in"} <= set(body)
    assert (body["expires_in"], body["scope"]) == (3600, "sms-scope rent-scope")

    refreshed = httpx.post(
        f"{keyturn.base}/oauth/token",
        data={
            "grant_type": "refresh_token",
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
            "refresh_token": body["refresh_token"],
            "scope": "",
        },
    )
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["scope"] == "sms-scope rent-scope"
    me = httpx.get(f"{keyturn.base}/me", headers={"authorization": f"Bearer {refreshed.json()['access_token']}"})
    assert me.status_code == 200


def test_sms77_authorization_code_example(page: Any, keyturn: Keyturn, callback: Callback) -> None:
    client = keyturn.cli("clients", "create", "--name", "sms77 integration", "--redirect-uri", callback.url)
    state = secrets.token_hex(10)  # bin2hex(openssl_random_pseudo_bytes(10))
    query = urlencode(
        {"response_type": "code", "client_id": client["client_id"], "state": state, "scope": "sms analytics"}
    )
    page.goto(f"{keyturn.base}/oauth/authorize?{query}")
    sign_in(page)
    page.get_by_role("button", name="Authorize").click()
    answer = landed(page, callback)
    assert answer["state"] == state

    credentials = f"{client['client_id']}:{client['client_secret']}"
    body = curl(
        "-u", credentials, f"{keyturn.base}/oauth/token", "-d", f"grant_type=authorization_code&code={answer['code']}"
    )
    assert set(body) == {"access_token", "expires_in", "token_type", "scope", "refresh_token", "created_at"}
    assert (body["expires_in"], body["token_type"], body["scope"]) == (3600, "Bearer", "sms analytics")

    renewed = curl(
        "-u",
        credentials,
        f"{keyturn.base}/oauth/token",
        "-d",
        f"grant_type=refresh_token&refresh_token={body['refresh_token']}",
    )
    assert renewed["refresh_token"] != body["refresh_token"]
    me = curl(f"{keyturn.base}/me", "-H", f"Authorization: Bearer {renewed['access_token']}")
    assert (me["success"], me["email"], me["company"]) == (True, "ann@example.com", "Acme Inc")
    assert isinstance(me["user_id"], int)


def test_sms77_denial_returns_the_error(page: Any, keyturn: Keyturn, callback: Callback) -> None:
    client = keyturn.cli("clients", "create", "--name", "sms77 integration", "--redirect-uri", callback.url)
    page.goto(
        f"{keyturn.base}/oauth/authorize?"
        + urlencode({"response_type": "code", "client_id": client["client_id"], "state": "s"})
    )
    sign_in(page)
    # "If the scope is not specified or is empty, the default scope is used."
    assert page.get_by_label("Send SMS messages").is_checked()
    page.get_by_role("button", name="Deny").click()
    assert landed(page, callback)["error"] == "access_denied"
