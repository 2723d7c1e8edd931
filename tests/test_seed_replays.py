"""The seed platforms' own examples, replayed literally against a running `keyturn serve`:
Sinch and sms77 with curl, SIPSIM with curl and Python requests. Only the host and the
token path change (each platform's URL becomes this server's /oauth/token)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from keyturn.core.codes import issue_code
from keyturn.core.models import Account, Client, ClientKind
from keyturn.core.registration import NewClient
from keyturn.core.service import commit_now
from keyturn.runtime import Runtime, open_runtime
from keyturn.settings import load_settings

from .cli_helpers import free_port, start_server, stop_server, wait_until_ready
from .helpers import add_account, add_client

pytestmark = pytest.mark.slow

SECRET = "seed-replay-secret-" + "r" * 32
TOKEN_MEMBERS = {"access_token", "token_type", "expires_in", "scope", "created_at"}


@dataclass
class Server:
    base: str
    #: An in-process runtime on the server's database, to set up what a portal would.
    runtime: Runtime
    database: Path

    def account(self, email: str, **fields: Any) -> Account:
        return add_account(self.runtime, email, **fields)

    def register(self, owner: Account, **options: Any) -> NewClient:
        return add_client(self.runtime, owner, **options)

    def token_rows(self, client_id: str) -> int:
        with sqlite3.connect(self.database) as connection:
            (count,) = connection.execute("SELECT count(*) FROM tokens WHERE client_id = ?", (client_id,)).fetchone()
        assert isinstance(count, int)
        return count


@contextmanager
def keyturn_serving(tmp_path: Path, config: str) -> Iterator[Server]:
    database = tmp_path / "keyturn.db"
    config_file = tmp_path / "keyturn.toml"
    config_file.write_text(f'database_url = "sqlite:///{database}"\n{config}', encoding="utf-8")
    env = {"KEYTURN_SECRET": SECRET}
    port = free_port()
    process = start_server("--config", str(config_file), cwd=tmp_path, port=port, env=env)
    try:
        wait_until_ready(process, port)
        runtime = open_runtime(load_settings(config_file, environ=env), migrate=False)
        try:
            yield Server(f"http://127.0.0.1:{port}", runtime, database)
        finally:
            runtime.close()
    finally:
        code, _, err = stop_server(process)
    assert code == 0, err
    assert "Traceback" not in err


@dataclass
class CurlResponse:
    status: int
    headers: dict[str, str]
    body: Any


def curl(*args: str) -> CurlResponse:
    """Runs curl as the docs show it, plus -sS (quiet) and -i (to see status and headers)."""
    result = subprocess.run(["curl", "-sS", "-i", *args], capture_output=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    # Bytes, not text: universal newlines would hide the CRLF that ends the header block.
    head, _, body = result.stdout.decode("utf-8").partition("\r\n\r\n")
    status_line, *lines = head.split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return CurlResponse(int(status_line.split(" ")[1]), headers, json.loads(body) if body else None)


def assert_token_response(body: dict[str, Any], *, expires_in: int, scope: str, refresh: bool, since: int) -> None:
    assert set(body) == (TOKEN_MEMBERS | {"refresh_token"} if refresh else TOKEN_MEMBERS)
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == expires_in
    assert body["scope"] == scope
    assert isinstance(body["created_at"], int)
    assert since <= body["created_at"] <= int(time.time())


def assert_error(status: int, body: Any, expected_status: int, error: str) -> None:
    assert status == expected_status, body
    assert set(body) == {"error", "error_description"}
    assert body["error"] == error


# ---- Sinch (003): client credentials with client_secret_basic, 1 h tokens ----

SINCH_CONFIG = "access_token_ttl = 3600\n"


def test_sinch_access_key_with_curl(tmp_path: Path) -> None:
    with keyturn_serving(tmp_path, SINCH_CONFIG) as server:
        project = server.account(
            "ops@example.com", company="Example Ltd", attributes={"project_id": "f7e9a3b2-5c1d-4e8f"}
        )
        created = server.register(project, name="CI pipeline", kind=ClientKind.ACCESS_KEY)
        key_id, key_secret = created.client.client_id, created.client_secret
        assert key_secret is not None
        since = int(time.time())

        # curl https://auth.sinch.com/oauth2/token -d grant_type=client_credentials -u YOUR_Key_ID:YOUR_Key_Secret
        response = curl(
            f"{server.base}/oauth/token", "-d", "grant_type=client_credentials", "-u", f"{key_id}:{key_secret}"
        )
        assert response.status == 200, response.body
        assert response.headers["content-type"] == "application/json"
        assert (response.headers["cache-control"], response.headers["pragma"]) == ("no-store", "no-cache")
        assert_token_response(response.body, expires_in=3600, scope="", refresh=False, since=since)
        access_token = response.body["access_token"]

        # curl -i -X GET '...' -H 'Authorization: Bearer {YOUR_access_token} ' -H 'Content-Type: application/json'
        me = curl(
            "-X",
            "GET",
            f"{server.base}/me",
            "-H",
            f"Authorization: Bearer {access_token} ",
            "-H",
            "Content-Type: application/json",
        )
        assert me.status == 200, me.body
        assert me.body == {
            "success": True,
            "user_id": project.id,
            "project_id": "f7e9a3b2-5c1d-4e8f",
            "email": "ops@example.com",
            "company": "Example Ltd",
            "alias": "",
            "scope": "",
            "client_id": key_id,
        }

        wrong = curl(f"{server.base}/oauth/token", "-d", "grant_type=client_credentials", "-u", f"{key_id}:not-it")
        assert_error(wrong.status, wrong.body, 401, "invalid_client")
        assert wrong.headers["www-authenticate"] == 'Basic realm="keyturn"'


# ---- SIPSIM (004): client credentials with the secret in the body, dotted scopes, 2 h ----

SIPSIM_CONFIG = """\
access_token_ttl = 7200

[scopes]
"account.read" = "Read account information"
"calls.read" = "Read call history and details"
"calls.write" = "Initiate and manage calls"
"phones.read" = "Read phone numbers"
"phones.write" = "Manage phone numbers"
"tags.read" = "Read tags"
"tags.write" = "Manage tags"
"""
SIPSIM_SCOPE = "account.read calls.read phones.read"


@pytest.fixture
def sipsim(tmp_path: Path) -> Iterator[tuple[Server, Account, NewClient]]:
    with keyturn_serving(tmp_path, SIPSIM_CONFIG) as server:
        account = server.account("pbx@example.com", company="Example PBX", attributes={"balance": "12.50"})
        integration = server.register(
            account,
            name="CRM integration",
            grant_types=["client_credentials"],
            scopes=["account.read", "calls.read", "calls.write", "phones.read"],
        )
        yield server, account, integration


def test_sipsim_token_with_python_requests(sipsim: tuple[Server, Account, NewClient]) -> None:
    server, account, integration = sipsim
    since = int(time.time())
    response = requests.post(
        f"{server.base}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": integration.client.client_id,
            "client_secret": integration.client_secret,
            "scope": "account.read calls.read phones.read",
        },
        timeout=10,
    )
    tokens = response.json()
    access_token = tokens["access_token"]
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert_token_response(tokens, expires_in=7200, scope=SIPSIM_SCOPE, refresh=False, since=since)

    # "Include the access token in the Authorization header of all API requests"
    me = requests.get(f"{server.base}/me", headers={"Authorization": f"Bearer {access_token}"}, timeout=10)
    assert me.status_code == 200
    assert me.json() == {
        "success": True,
        "user_id": account.id,
        "balance": "12.50",
        "email": "pbx@example.com",
        "company": "Example PBX",
        "alias": "",
        "scope": SIPSIM_SCOPE,
        "client_id": integration.client.client_id,
    }


def test_sipsim_token_with_curl(sipsim: tuple[Server, Account, NewClient]) -> None:
    server, _, integration = sipsim
    since = int(time.time())
    # The scope goes out with its spaces unencoded, exactly as the documented command sends it.
    response = curl(
        "-X",
        "POST",
        f"{server.base}/oauth/token",
        "-H",
        "Content-Type: application/x-www-form-urlencoded",
        "-d",
        "grant_type=client_credentials",
        "-d",
        f"client_id={integration.client.client_id}",
        "-d",
        f"client_secret={integration.client_secret}",
        "-d",
        "scope=account.read calls.read phones.read",
    )
    assert response.status == 200, response.body
    assert_token_response(response.body, expires_in=7200, scope=SIPSIM_SCOPE, refresh=False, since=since)


def test_sipsim_client_caches_its_token(sipsim: tuple[Server, Account, NewClient]) -> None:
    server, account, integration = sipsim
    base = server.base

    class SipsimClient:  # the documented class, with the platform's URLs pointed here
        def __init__(self, client_id: str, client_secret: str) -> None:
            self.client_id = client_id
            self.client_secret = client_secret
            self.access_token: str | None = None
            self.token_expires_at = 0.0

        def get_access_token(self) -> str:
            """Get a valid access token, refreshing if needed."""
            if self.access_token and time.time() < self.token_expires_at - 60:
                return self.access_token
            response = requests.post(
                f"{base}/oauth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": self.client_id,
                    "client_secret": self.client_secret,
                    "scope": "account.read calls.read phones.read",
                },
                timeout=10,
            )
            tokens = response.json()
            self.access_token = tokens["access_token"]
            self.token_expires_at = time.time() + tokens["expires_in"]
            return self.access_token

        def api_request(self, endpoint: str, method: str = "GET", **kwargs: Any) -> requests.Response:
            """Make an authenticated API request."""
            headers = {"Authorization": f"Bearer {self.get_access_token()}"}
            return requests.request(method, f"{base}{endpoint}", headers=headers, timeout=10, **kwargs)

    assert integration.client_secret is not None
    sipsim_client = SipsimClient(integration.client.client_id, integration.client_secret)
    for _ in range(3):
        response = sipsim_client.api_request("/me")
        assert response.status_code == 200
        assert response.json()["user_id"] == account.id
    assert server.token_rows(integration.client.client_id) == 1


def test_sipsim_error_examples(sipsim: tuple[Server, Account, NewClient]) -> None:
    server, account, integration = sipsim

    def token(client_id: str, client_secret: str | None, scope: str = SIPSIM_SCOPE) -> requests.Response:
        return requests.post(
            f"{server.base}/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": client_secret,
                "scope": scope,
            },
            timeout=10,
        )

    # invalid_client: "Check your Client ID and Secret"
    for client_id, secret in [(integration.client.client_id, "wrong"), ("unknown-client", integration.client_secret)]:
        response = token(client_id, secret)
        assert_error(response.status_code, response.json(), 401, "invalid_client")
        assert response.headers["cache-control"] == "no-store"
    # invalid_scope: "Request only scopes configured in your integration"
    for scope in ("account.read tags.write", "account.read admin"):
        response = token(integration.client.client_id, integration.client_secret, scope)
        assert_error(response.status_code, response.json(), 400, "invalid_scope")
    # unauthorized_client: "Ensure your integration is properly configured"
    browser_app = server.register(account, name="Browser app", redirect_uris=["https://pbx.example.com/callback"])
    response = token(browser_app.client.client_id, browser_app.client_secret)
    assert_error(response.status_code, response.json(), 400, "unauthorized_client")
    assert server.token_rows(integration.client.client_id) == 0


# ---- sms77 (002): authorization code with client_secret_basic, refresh, /me ----

SMS77_CONFIG = """\
access_token_ttl = 3600
default_scopes = ["sms"]

[scopes]
analytics = "Query statistics"
balance = "Query balance"
contacts = "Query and edit contacts"
hooks = "Allow to change and view webhooks"
journal = "Query your logbook"
lookup = "Perform lookup requests (HLR, MNP etc.)"
pricing = "Query prices of the account"
sms = "Send SMS messages"
status = "Query status report of SMS"
subaccounts = "Edit and view subaccounts"
validate_for_voice = "Verify phone numbers as originators for voice"
voice = "Send voice messages"
"""


def test_sms77_code_exchange_refresh_and_me_with_curl(tmp_path: Path) -> None:
    with keyturn_serving(tmp_path, SMS77_CONFIG) as server:
        developer = server.account("dev@acme.inc", company="Acme Inc")
        customer = server.account(
            "john.doe@acme.inc", company="Acme Inc", alias="acme_inc", attributes={"balance": "627.3615"}
        )
        # The page's application: client_id testclient; its curl examples use the password testpass.
        runtime = server.runtime
        testclient = Client(
            client_id="testclient",
            name="Acme",
            owner_id=developer.id,
            secret_hash=runtime.hasher.digest("testpass"),
            redirect_uris=("https://acme.inc/oauth_redirect",),
        )
        commit_now(runtime.store, lambda unit: unit.add_client(testclient))
        code = issue_code(runtime.ctx, testclient, account_id=customer.id, scopes=("sms",), redirect_uri=None)
        since = int(time.time())

        # curl -u testclient:testpass https://oauth.sms77.io/token -d 'grant_type=authorization_code&code=...'
        exchanged = curl(
            "-u",
            "testclient:testpass",
            f"{server.base}/oauth/token",
            "-d",
            f"grant_type=authorization_code&code={code}",
        )
        assert exchanged.status == 200, exchanged.body
        assert (exchanged.headers["cache-control"], exchanged.headers["pragma"]) == ("no-store", "no-cache")
        assert_token_response(exchanged.body, expires_in=3600, scope="sms", refresh=True, since=since)

        # curl -u testclient:testpass https://oauth.sms77.io/token -d 'grant_type=refresh_token&refresh_token=...'
        refresh_token = exchanged.body["refresh_token"]
        refreshed = curl(
            "-u",
            "testclient:testpass",
            f"{server.base}/oauth/token",
            "-d",
            f"grant_type=refresh_token&refresh_token={refresh_token}",
        )
        assert refreshed.status == 200, refreshed.body
        assert_token_response(refreshed.body, expires_in=3600, scope="sms", refresh=True, since=since)
        assert refreshed.body["access_token"] != exchanged.body["access_token"]
        assert refreshed.body["refresh_token"] != refresh_token

        # curl https://oauth.sms77.io/me -H 'Authorization: Bearer ACCESS_TOKEN'
        access_token = refreshed.body["access_token"]
        me = curl(f"{server.base}/me", "-H", f"Authorization: Bearer {access_token}")
        assert me.status == 200, me.body
        assert me.body == {
            "success": True,
            "user_id": customer.id,
            "email": "john.doe@acme.inc",
            "company": "Acme Inc",
            "alias": "acme_inc",
            "balance": "627.3615",
            "scope": "sms",
            "client_id": "testclient",
        }

        # The code is single-use, and the page's other secret (testsecret) is not this client's.
        replayed = curl(
            "-u",
            "testclient:testpass",
            f"{server.base}/oauth/token",
            "-d",
            f"grant_type=authorization_code&code={code}",
        )
        assert_error(replayed.status, replayed.body, 400, "invalid_grant")
        wrong = curl(
            "-u",
            "testclient:testsecret",
            f"{server.base}/oauth/token",
            "-d",
            f"grant_type=refresh_token&refresh_token={refresh_token}",
        )
        assert_error(wrong.status, wrong.body, 401, "invalid_client")
        assert wrong.headers["www-authenticate"] == 'Basic realm="keyturn"'
        bad = curl(f"{server.base}/me", "-H", "Authorization: Bearer worw5xlrl0sjwqkvmstibwn4pw0mdvpddljzkfi8")
        assert bad.status == 401
        assert bad.headers["www-authenticate"].startswith('Bearer realm="keyturn", error="invalid_token"')
