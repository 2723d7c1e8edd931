"""End to end: a real `keyturn serve` (sms77 scope catalogue), the sample SMS gateway of
examples/sms_gateway protected by keyturn.resource, and real credentials made with the
`keyturn` command: API keys, opaque and JWT access tokens, a resource-server client."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from keyturn.core.service import commit_now
from keyturn.resource import Verifier
from keyturn.runtime import open_runtime
from keyturn.settings import load_settings

from ..cli_helpers import clean_environment, free_port, run_keyturn, start_server, stop_server, wait_until_ready

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sms_gateway"
SECRET = "resource-e2e-secret-" + "g" * 32
USER = "owner@sms.example"
#: The example's own server configuration: the sms77 scope catalogue.
CONFIG = EXAMPLE / "keyturn.toml"


@dataclass
class OAuthClient:
    client_id: str
    client_secret: str

    @property
    def auth(self) -> tuple[str, str]:
        return (self.client_id, self.client_secret)


@dataclass
class Platform:
    base: str
    env: dict[str, str]
    cwd: Path
    gateway: OAuthClient
    opaque_app: OAuthClient
    jwt_app: OAuthClient
    plain_app: OAuthClient
    api_keys: dict[str, tuple[int, str]] = field(default_factory=dict)

    def keyturn(self, *args: str) -> dict[str, Any]:
        result = run_keyturn(*args, "--config", str(CONFIG), "--json", cwd=self.cwd, env=self.env)
        assert result.returncode == 0, result.stderr
        body: dict[str, Any] = json.loads(result.stdout)
        return body

    def new_api_key(self, *scopes: str) -> tuple[int, str]:
        options = [arg for scope in scopes for arg in ("--scope", scope)]
        created = self.keyturn("api-keys", "create", "--owner", USER, *options)
        return created["id"], created["key"]

    def token(self, client: OAuthClient, scope: str | None = None) -> str:
        form = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
        response = httpx.post(f"{self.base}/oauth/token", data=form, auth=client.auth)
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    def revoke_token(self, client: OAuthClient, token: str) -> None:
        response = httpx.post(f"{self.base}/oauth/revoke", data={"token": token}, auth=client.auth)
        assert response.status_code == 200, response.text

    def revoke_api_key(self, key_id: int) -> None:
        # What the portal's "revoke" button does.
        runtime = open_runtime(load_settings(CONFIG, environ=self.env), migrate=False)
        try:
            owner = runtime.store.find_account_by_email(USER)
            assert owner is not None
            now = runtime.clock.now()
            commit_now(runtime.store, lambda unit: unit.revoke_api_key(key_id, owner.id, now))
        finally:
            runtime.close()

    def verifier(self, client: OAuthClient | None = None, **options: Any) -> Verifier:
        client = client or self.gateway
        return Verifier(self.base, client.client_id, client.client_secret, **options)


def _client(platform: Platform, name: str, *options: str) -> OAuthClient:
    created = platform.keyturn(
        "clients", "create", "--name", name, "--grant-type", "client_credentials", "--owner", USER, *options
    )
    return OAuthClient(created["client_id"], created["client_secret"])


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    cwd = tmp_path_factory.mktemp("keyturn")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"KEYTURN_SECRET": SECRET, "KEYTURN_ISSUER": base, "KEYTURN_DATABASE_URL": f"sqlite:///{cwd / 'keyturn.db'}"}
    process = start_server("--config", str(CONFIG), cwd=cwd, port=port, env=env)
    try:
        wait_until_ready(process, port)
        metadata = httpx.get(f"{base}/.well-known/oauth-authorization-server").json()
        assert "validate_for_voice" in metadata["scopes_supported"]
        empty = OAuthClient("", "")
        platform = Platform(base, env, cwd, empty, empty, empty, empty)
        created = run_keyturn(
            "users", "create", "--email", USER, "--password", "correct horse battery staple 7",
            "--config", str(CONFIG), "--json", cwd=cwd, env=env,
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
        gateway = platform.keyturn(
            "clients", "create", "--name", "SMS gateway", "--resource-server", "--grant-type", "client_credentials"
        )
        platform.gateway = OAuthClient(gateway["client_id"], gateway["client_secret"])
        platform.opaque_app = _client(
            platform, "Opaque app", "--scope", "sms", "--scope", "balance", "--scope", "contacts"
        )
        platform.jwt_app = _client(platform, "JWT app", "--token-format", "jwt", "--scope", "sms", "--scope", "balance")
        platform.plain_app = _client(platform, "Not a resource server")
        yield platform
    finally:
        code, _, err = stop_server(process)
    assert code == 0, err
    assert "Traceback" not in err


def load_gateway() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sms_gateway_app", EXAMPLE / "app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gateway_module() -> ModuleType:
    return load_gateway()


@pytest.fixture
def make_gateway(gateway_module: ModuleType, platform: Platform) -> Iterator[Callable[..., TestClient]]:
    opened: list[TestClient] = []

    def make(verifier: Verifier | None = None, **options: Any) -> TestClient:
        app: Starlette = gateway_module.create_app(verifier or platform.verifier(), **options)
        client = TestClient(app)
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def wait_until_refused(call: Callable[[], Any], bound: float) -> float:
    """Seconds until ``call`` answers 401; fails when that takes longer than ``bound``."""
    start = time.monotonic()
    while (response := call()).status_code == 200:
        assert time.monotonic() - start < bound, "still accepted after the cache bound"
        time.sleep(0.05)
    assert response.status_code == 401, response.text
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    return time.monotonic() - start


# ---- accepted ----


def test_api_key_in_the_header_and_the_query(platform: Platform, make_gateway: Callable[..., TestClient]) -> None:
    gateway = make_gateway()
    _, key = platform.new_api_key()
    for headers, params in ((bearer(key), {}), ({}, {"api_key": key}), ({}, {"apikey": key})):
        response = gateway.get("/balance", headers=headers, params=params)
        assert response.status_code == 200, response.text
        assert response.json() == {"amount": 10.0, "currency": "EUR"}
    sent = gateway.post("/sms", params={"api_key": key}, json={"to": "+4915735983768", "text": "Hello"})
    assert sent.status_code == 200, sent.text
    assert sent.json()["balance"] == 9.925
    numbers = gateway.get("/numbers", headers=bearer(key))
    assert numbers.json() == {"numbers": ["+4915735983768"], "via": "api_key"}


def test_opaque_access_token(platform: Platform, make_gateway: Callable[..., TestClient]) -> None:
    gateway = make_gateway()
    token = platform.token(platform.opaque_app, "sms balance")
    assert token.startswith("kt_at_")
    assert gateway.get("/balance", headers=bearer(token)).status_code == 200
    sent = gateway.post("/sms", headers=bearer(token), data={"to": "+79001234567", "text": "Hi"})
    assert sent.status_code == 200, sent.text


def test_jwt_access_token_is_checked_locally(platform: Platform, make_gateway: Callable[..., TestClient]) -> None:
    asked: list[str] = []

    async def record(request: httpx.Request) -> None:
        asked.append(request.url.path)

    http = httpx.AsyncClient(event_hooks={"request": [record]})
    gateway = make_gateway(platform.verifier(async_http_client=http))
    token = platform.token(platform.jwt_app, "sms balance")
    assert token.count(".") == 2
    for _ in range(3):
        assert gateway.get("/balance", headers=bearer(token)).status_code == 200
    assert gateway.post("/sms", headers=bearer(token), json={"to": "+4915735983768", "text": "Hi"}).status_code == 200
    assert asked == ["/.well-known/oauth-authorization-server", "/oauth/jwks"]
    gateway.portal.call(http.aclose)  # type: ignore[union-attr]


def test_getfreelist_needs_nothing(platform: Platform, make_gateway: Callable[..., TestClient]) -> None:
    gateway = make_gateway()
    assert gateway.get("/getFreeList").status_code == 200
    assert gateway.get("/getFreeList", params={"api_key": "wrong"}).json()["response"] == "1"


# ---- refused ----


def test_insufficient_scope_is_403(platform: Platform, make_gateway: Callable[..., TestClient]) -> None:
    gateway = make_gateway()
    _, balance_only = platform.new_api_key("balance")
    assert gateway.get("/balance", params={"api_key": balance_only}).status_code == 200
    response = gateway.post("/sms", params={"api_key": balance_only}, json={"to": "+49157", "text": "x"})
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"
    assert response.headers["www-authenticate"].endswith('scope="sms"')
    sms_only = platform.token(platform.jwt_app, "sms")
    response = gateway.get("/numbers", headers=bearer(sms_only))
    assert response.status_code == 403
    assert response.headers["www-authenticate"].endswith('scope="contacts"')


def test_missing_and_wrong_credentials(platform: Platform, make_gateway: Callable[..., TestClient]) -> None:
    gateway = make_gateway()
    missing = gateway.get("/balance")
    assert (missing.status_code, missing.headers["www-authenticate"]) == (401, 'Bearer realm="api"')
    wrong = gateway.get("/balance", params={"api_key": "kt_key_wrong"})
    assert wrong.status_code == 401
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
    # A token in the query: refused before anyone is asked (RFC 6750 §2.3).
    in_query = gateway.get("/balance", params={"api_key": platform.token(platform.opaque_app)})
    assert in_query.status_code == 401


def test_onlinesim_style(platform: Platform, make_gateway: Callable[..., TestClient]) -> None:
    gateway = make_gateway(error_style="onlinesim")
    _, key = platform.new_api_key()
    assert gateway.get("/balance", params={"apikey": key}).status_code == 200
    damaged = key[:-1] + ("0" if key[-1] != "0" else "1")
    response = gateway.get("/balance", params={"apikey": damaged})
    assert (response.status_code, response.json()) == (401, {"response": "ERROR_WRONG_KEY"})


def test_only_a_resource_server_client_sees_api_keys(
    platform: Platform, make_gateway: Callable[..., TestClient]
) -> None:
    gateway = make_gateway(platform.verifier(platform.plain_app))
    _, key = platform.new_api_key()
    assert gateway.get("/balance", params={"api_key": key}).status_code == 401


def test_an_unreachable_authorization_server_is_503(make_gateway: Callable[..., TestClient]) -> None:
    verifier = Verifier(f"http://127.0.0.1:{free_port()}", "gateway", "secret", timeout=2)
    gateway = make_gateway(verifier)
    response = gateway.get("/balance", headers=bearer("kt_key_" + "x" * 49))
    assert response.status_code == 401  # malformed: refused without asking
    response = gateway.get("/balance", headers=bearer("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiI3In0.c2ln"))
    assert response.status_code == 401  # not an access token JWT (no typ)
    from keyturn.core.credentials import Kind, new_secret

    response = gateway.get("/balance", headers=bearer(new_secret(Kind.API_KEY)))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"


# ---- revocation within the cache bound ----

CACHE_TTL = 1.0
#: The cache bound, plus time for the requests themselves on a slow machine.
BOUND = CACHE_TTL + 2.0


def test_a_revoked_api_key_stops_working_within_the_cache_ttl(
    platform: Platform, make_gateway: Callable[..., TestClient]
) -> None:
    gateway = make_gateway(platform.verifier(cache_ttl=CACHE_TTL))
    key_id, key = platform.new_api_key()
    assert gateway.get("/balance", params={"api_key": key}).status_code == 200
    platform.revoke_api_key(key_id)
    wait_until_refused(lambda: gateway.get("/balance", params={"api_key": key}), BOUND)


def test_a_revoked_opaque_token_stops_working_within_the_cache_ttl(
    platform: Platform, make_gateway: Callable[..., TestClient]
) -> None:
    gateway = make_gateway(platform.verifier(cache_ttl=CACHE_TTL))
    token = platform.token(platform.opaque_app, "balance")
    assert gateway.get("/balance", headers=bearer(token)).status_code == 200
    platform.revoke_token(platform.opaque_app, token)
    wait_until_refused(lambda: gateway.get("/balance", headers=bearer(token)), BOUND)


def test_a_revoked_jwt_stops_working_within_the_cache_ttl_with_introspect_jwts(
    platform: Platform, make_gateway: Callable[..., TestClient]
) -> None:
    gateway = make_gateway(platform.verifier(cache_ttl=CACHE_TTL, introspect_jwts=True))
    token = platform.token(platform.jwt_app, "balance")
    assert gateway.get("/balance", headers=bearer(token)).status_code == 200
    platform.revoke_token(platform.jwt_app, token)
    wait_until_refused(lambda: gateway.get("/balance", headers=bearer(token)), BOUND)


def test_without_the_context_manager_each_request_may_run_on_its_own_event_loop(
    gateway_module: ModuleType, platform: Platform
) -> None:
    # TestClient without `with` starts a loop per request; the verifier's AsyncClient follows.
    client = TestClient(gateway_module.create_app(platform.verifier(cache_ttl=0)))
    _, key = platform.new_api_key()
    for _ in range(3):
        assert client.get("/balance", params={"api_key": key}).status_code == 200


# ---- the README: the gateway under uvicorn, and client.py ----


def test_readme_gateway_and_client_script(platform: Platform) -> None:
    port = free_port()
    gateway_url = f"http://127.0.0.1:{port}"
    env = clean_environment(
        {
            "SMS_GATEWAY_ISSUER": platform.base,
            "SMS_GATEWAY_CLIENT_ID": platform.gateway.client_id,
            "SMS_GATEWAY_CLIENT_SECRET": platform.gateway.client_secret,
        }
    )
    process = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port)], cwd=EXAMPLE, env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.communicate()[1]
            try:
                if httpx.get(f"{gateway_url}/getFreeList", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the gateway did not start"
            time.sleep(0.05)

        def client(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "client.py", "--gateway", gateway_url, "--issuer", platform.base, *args],
                cwd=EXAMPLE,
                env=env,
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )

        _, key = platform.new_api_key()
        balance = client("--api-key", key, "balance")
        assert balance.returncode == 0, balance.stderr
        assert json.loads(balance.stdout) == {"amount": 10.0, "currency": "EUR"}
        assert client("--api-key", key, "--query", "numbers").returncode == 0
        app = platform.opaque_app
        sent = client(
            f"--client-id={app.client_id}", "--client-secret", app.client_secret, "--scope", "sms",
            "send", "+4915735983768", "Hello from client.py",
        )  # fmt: skip
        assert sent.returncode == 0, sent.stderr
        assert json.loads(sent.stdout)["messages"][0]["text"] == "Hello from client.py"
        forbidden = client(
            f"--client-id={app.client_id}", "--client-secret", app.client_secret, "--scope", "sms", "balance"
        )
        assert forbidden.returncode == 1
        assert "HTTP 403" in forbidden.stderr
        refused = client(f"--client-id={app.client_id}", "--client-secret", "kt_cs_not-the-secret", "balance")
        assert refused.returncode == 1
        assert "authorization server: invalid_client" in refused.stderr
        assert "Traceback" not in refused.stderr
        assert client("free").returncode == 0
    finally:
        process.terminate()
        _, err = process.communicate(timeout=15)
    assert "Traceback" not in err
