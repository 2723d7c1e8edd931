"""The SDK's public surface, pinned, and its independence from Keyturn's server side."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import keyturn.client

PUBLIC_NAMES = [
    "ApiKeyAuth",
    "AuthorizationCodeFlow",
    "AuthorizationRequest",
    "ClientCredentialsAuth",
    "IssuerMismatchError",
    "OAuthClientError",
    "RefreshTokenAuth",
    "ServerMetadata",
    "StateMismatchError",
    "TokenResponse",
    "UnexpectedResponseError",
    "adiscover",
    "discover",
    "from_env",
]

SERVER_SIDE = (
    "keyturn.core",
    "keyturn.store",
    "keyturn.web",
    "keyturn.resource",
    "keyturn.tokens",
    "keyturn.settings",
    "keyturn.runtime",
    "keyturn.cli",
    "sqlalchemy",
    "starlette",
    "uvicorn",
    "alembic",
    "jinja2",
    "argon2",
    "jwt",
    "psycopg",
)


def test_all_is_the_pinned_list_of_public_names() -> None:
    assert keyturn.client.__all__ == PUBLIC_NAMES
    for name in PUBLIC_NAMES:
        assert getattr(keyturn.client, name).__module__.startswith("keyturn.client")


def test_every_module_behind_the_names_is_private() -> None:
    modules = {getattr(keyturn.client, name).__module__ for name in PUBLIC_NAMES}
    assert all(module.rsplit(".", 1)[1].startswith("_") for module in modules), modules


def test_signatures_of_the_entry_points() -> None:
    assert list(inspect.signature(keyturn.client.ClientCredentialsAuth).parameters) == [
        "token_url", "client_id", "client_secret", "scope", "auth_method", "clock", "renew_before"
    ]  # fmt: skip
    assert list(inspect.signature(keyturn.client.RefreshTokenAuth).parameters)[:5] == [
        "token_url", "client_id", "client_secret", "refresh_token", "on_rotate"
    ]  # fmt: skip
    assert list(inspect.signature(keyturn.client.ApiKeyAuth).parameters) == ["key", "in_", "query_parameter"]
    assert list(inspect.signature(keyturn.client.AuthorizationCodeFlow.finish).parameters) == [
        "self", "callback", "expected_state", "code_verifier", "client"
    ]  # fmt: skip


def test_importing_the_sdk_loads_nothing_of_the_server() -> None:
    code = (
        "import json, sys\n"
        "import keyturn.client\n"
        f"prefixes = {SERVER_SIDE!r}\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(prefixes))))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    loaded = [m for m in json.loads(result.stdout) if any(m == p or m.startswith(p + ".") for p in SERVER_SIDE)]
    assert loaded == []
