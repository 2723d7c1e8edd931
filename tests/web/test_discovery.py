"""RFC 8414 metadata, the JWKS, health checks, and what every response carries."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import jwt
import pytest
from starlette.testclient import TestClient

from keyturn.core.key_rotation import keep_for_tokens, rotate_for_tokens, rotate_signing_key
from keyturn.core.models import SigningKey
from keyturn.core.service import run
from keyturn.runtime import Runtime, StartupError, open_runtime
from keyturn.settings import Settings
from keyturn.store.schema import signing_keys
from keyturn.web.app import create_app

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
}


def rotate(runtime: Runtime) -> SigningKey:
    """What ``keyturn keys rotate`` does: the new active key."""
    key = run(rotate_for_tokens(runtime.ctx, runtime.keyring, via="cli"))
    runtime.keys_changed()
    return key


def test_metadata_lists_every_endpoint_and_capability(settings: Settings) -> None:
    settings = settings.with_overrides(
        issuer="https://auth.example.com/", scopes={"sms": "Send SMS messages", "balance": "Query balance"}
    )
    runtime = open_runtime(settings)
    try:
        with TestClient(create_app(runtime)) as client:
            response = client.get("/.well-known/oauth-authorization-server")
    finally:
        runtime.close()
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "issuer": "https://auth.example.com",
        "authorization_endpoint": "https://auth.example.com/oauth/authorize",
        "token_endpoint": "https://auth.example.com/oauth/token",
        "jwks_uri": "https://auth.example.com/oauth/jwks",
        "introspection_endpoint": "https://auth.example.com/oauth/introspect",
        "revocation_endpoint": "https://auth.example.com/oauth/revoke",
        "response_types_supported": ["code", "token"],
        "response_modes_supported": ["query", "fragment"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials", "implicit"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
        "scopes_supported": ["sms", "balance"],
    }


def test_metadata_without_a_catalogue_omits_scopes_supported(client: TestClient) -> None:
    body = client.get("/.well-known/oauth-authorization-server").json()
    assert body["issuer"] == "http://127.0.0.1:8000"
    assert "scopes_supported" not in body


def test_jwks_publishes_the_active_key_that_verifies_its_signatures(client: TestClient, runtime: Runtime) -> None:
    response = client.get("/oauth/jwks")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/jwk-set+json"
    (jwk,) = response.json()["keys"]
    assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == ("EC", "P-256", "ES256", "sig")
    assert set(jwk) == {"kty", "crv", "x", "y", "kid", "alg", "use"}  # no private member "d"
    active = runtime.keyring.active
    signed = jwt.encode({"sub": "1"}, active.private_key, algorithm="ES256", headers={"kid": active.kid})
    assert jwk["kid"] == active.kid
    assert jwt.decode(signed, jwt.PyJWK(jwk).key, algorithms=["ES256"]) == {"sub": "1"}


def test_eddsa_keys(settings: Settings) -> None:
    runtime = open_runtime(settings.with_overrides(signing_alg="EdDSA"))
    try:
        (jwk,) = runtime.keyring.jwks["keys"]
        assert (jwk["kty"], jwk["crv"], jwk["alg"]) == ("OKP", "Ed25519", "EdDSA")
        active = runtime.keyring.active
        signed = jwt.encode({"sub": "1"}, active.private_key, algorithm="EdDSA")
        assert jwt.decode(signed, jwt.PyJWK(jwk).key, algorithms=["EdDSA"]) == {"sub": "1"}
    finally:
        runtime.close()


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_access_tokens_are_compact_jws_that_pyjwt_verifies(settings: Settings, alg: str) -> None:
    runtime = open_runtime(settings.with_overrides(signing_alg=alg))
    try:
        claims = {
            "iss": "http://127.0.0.1:8000",
            "sub": "7",
            "iat": 1,
            "exp": 4_000_000_000,
            "jti": "j",
            "scope": "sms é",
        }
        token = runtime.ctx.jwt.encode(claims)
        header, payload, signature = token.split(".")
        assert "=" not in token  # RFC 7515 §2: base64url without padding
        (jwk,) = runtime.keyring.jwks["keys"]
        assert jwt.get_unverified_header(token) == {"alg": alg, "kid": jwk["kid"], "typ": "at+jwt"}
        assert jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=[alg], options={"verify_aud": False}) == claims
        # ES256: R || S, 64 bytes (RFC 7518 §3.4); Ed25519: 64 bytes (RFC 8037 §3.1).
        assert len(jwt.utils.base64url_decode(signature)) == 64
        tampered = f"{header}.{payload[:-2]}{'A' if payload[-2] != 'A' else 'B'}{payload[-1]}.{signature}"
        assert runtime.ctx.jwt.decode(token) == claims
        assert runtime.ctx.jwt.decode(tampered) is None
        # After a rotation the new key signs, and the header names it.
        new = rotate(runtime)
        assert jwt.get_unverified_header(runtime.ctx.jwt.encode(claims))["kid"] == new.kid
    finally:
        runtime.close()


def test_rotation_publishes_both_keys_and_survives_a_restart(settings: Settings, runtime: Runtime) -> None:
    first = runtime.keyring.active.kid
    new = rotate(runtime)
    assert runtime.keyring.active.kid == new.kid != first
    assert [k["kid"] for k in runtime.keyring.jwks["keys"]] == [new.kid, first]
    runtime.close()
    reopened = open_runtime(settings, clock=runtime.clock)  # the old key's tokens still live
    try:
        assert reopened.keyring.active.kid == new.kid
        assert [k["kid"] for k in reopened.keyring.jwks["keys"]] == [new.kid, first]
    finally:
        reopened.close()


def test_private_keys_are_stored_sealed_and_need_the_server_secret(settings: Settings, runtime: Runtime) -> None:
    from cryptography.hazmat.primitives.serialization import load_der_private_key

    with runtime.store.engine.connect() as connection:  # type: ignore[attr-defined]
        (sealed,) = connection.execute(
            signing_keys.select().with_only_columns(signing_keys.c.private_key_sealed)
        ).scalars()
    with pytest.raises(ValueError, match="Could not deserialize"):
        load_der_private_key(sealed, password=None)
    runtime.close()
    with pytest.raises(StartupError, match="sealed with a different server secret"):
        open_runtime(settings.with_overrides(secret="another-secret-" + "y" * 40))


def test_health_and_readiness(client: TestClient) -> None:
    health = client.get("/healthz")
    assert (health.status_code, health.json(), health.headers["cache-control"]) == (200, {"status": "ok"}, "no-store")
    ready = client.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready", "database": "ok"})


def test_readiness_fails_when_the_database_is_gone(runtime: Runtime) -> None:
    from keyturn.store.database import create_database_engine
    from keyturn.store.sql import SqlStore

    runtime.ctx.store = SqlStore(create_database_engine("postgresql://nobody@127.0.0.1:1/keyturn"))
    with TestClient(create_app(runtime)) as client:
        ready = client.get("/readyz")
        assert (ready.status_code, ready.json()) == (503, {"status": "unavailable", "database": "unreachable"})
        assert client.get("/healthz").status_code == 200


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_a_server_process_freezes_what_start_up_built_and_an_embedded_app_does_not(
    unfrozen: None, settings: Settings
) -> None:
    # An app mounted by someone else's server leaves their collector alone.
    embedded = open_runtime(settings)
    with TestClient(create_app(embedded)) as client:
        assert client.get("/healthz").status_code == 200
        assert gc.get_freeze_count() == 0
    # keyturn serve: full collections no longer walk the start-up heap.
    served = open_runtime(settings)
    with TestClient(create_app(served, freeze_heap=True)) as client:
        assert client.get("/healthz").status_code == 200
        assert gc.get_freeze_count() > 10_000


def test_unknown_path_and_wrong_method(client: TestClient) -> None:
    missing = client.get("/nowhere")
    assert (missing.status_code, missing.json()["error"]) == (404, "not_found")
    wrong = client.post("/.well-known/oauth-authorization-server")
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "GET, HEAD"
    assert wrong.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    "path", ["/.well-known/oauth-authorization-server", "/oauth/jwks", "/healthz", "/readyz", "/nowhere"]
)
def test_every_response_carries_the_security_headers(client: TestClient, path: str) -> None:
    headers = client.get(path).headers
    assert {name: headers.get(name) for name in SECURITY_HEADERS} == SECURITY_HEADERS
    assert "server" not in headers


def test_a_rotated_key_leaves_the_jwks_once_its_tokens_have_expired(runtime: Runtime) -> None:
    first = runtime.keyring.active.kid
    clock = runtime.clock
    # A client's tokens live 7200 s, longer than the settings' 3600 s.
    rotation = runtime.keyring.successor("ES256", keep_for_tokens(store_ttl=7200, settings_ttl=3600))
    run(rotate_signing_key(runtime.ctx, rotation))
    runtime.keys_changed()
    new = rotation.key
    assert [k["kid"] for k in runtime.keyring.jwks["keys"]] == [new.kid, first]
    clock.advance(7200 + 59)  # type: ignore[attr-defined]
    runtime.keyring.reload()
    assert [k["kid"] for k in runtime.keyring.jwks["keys"]] == [new.kid, first]
    clock.advance(1)  # type: ignore[attr-defined]
    runtime.keyring.reload()
    assert [k["kid"] for k in runtime.keyring.jwks["keys"]] == [new.kid]
