"""The back-channel endpoints over HTTP, through the in-process app: POST /oauth/token
(RFC 6749 §3.2, §5) with client authentication (§2.3), POST /oauth/introspect (RFC 7662),
POST /oauth/revoke (RFC 7009), GET /me (RFC 6750), and JWT access tokens (RFC 9068)."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import jwt
import pytest
from sqlalchemy import update
from starlette.testclient import TestClient

from keyturn.core import token_endpoint
from keyturn.core.clock import FrozenClock
from keyturn.core.codes import issue_code
from keyturn.core.credentials import Kind, kind_of, new_secret
from keyturn.core.models import Account, Client
from keyturn.core.pkce import s256
from keyturn.core.service import commit_now
from keyturn.runtime import Runtime, open_runtime
from keyturn.settings import Settings
from keyturn.store.schema import accounts
from keyturn.web.app import create_app

from ..helpers import add_account, add_api_key, add_client

ISSUER = "http://127.0.0.1:8000"
CATALOGUE = {"sms": "Send SMS messages", "balance": "Query balance", "analytics": "Query statistics"}
FORM = {"content-type": "application/x-www-form-urlencoded"}
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
#: RFC 6749 §5.2: error_description "MUST NOT include characters outside the set
#: %x20-21 / %x23-5B / %x5D-7E".
ERROR_DESCRIPTION = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]+")
BASIC_CHALLENGE = 'Basic realm="keyturn"'


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_overrides(scopes=CATALOGUE, default_scopes=["sms"])


# ---- registered parties ----


def basic(client_id: str, secret: str) -> str:
    """RFC 6749 §2.3.1: id and secret form-urlencoded, then joined and base64-encoded."""
    raw = f"{quote_plus(client_id, safe='')}:{quote_plus(secret, safe='')}"
    return "Basic " + base64.b64encode(raw.encode("utf-8")).decode("ascii")


@dataclass(frozen=True)
class Registered:
    client: Client
    secret: str | None

    @property
    def id(self) -> str:
        return self.client.client_id

    def basic(self) -> dict[str, str]:
        assert self.secret is not None
        return {"authorization": basic(self.id, self.secret)}

    def post(self, **params: str) -> dict[str, str]:
        """Form parameters with client_secret_post (or none, for a public client)."""
        credentials = {"client_id": self.id}
        if self.secret is not None:
            credentials["client_secret"] = self.secret
        return {**credentials, **params}


def register(runtime: Runtime, owner: Account, **options: Any) -> Registered:
    options.setdefault("redirect_uris", ["https://app.example.com/cb"])
    created = add_client(runtime, owner, name=options.pop("name", "App"), **options)
    return Registered(created.client, created.client_secret)


@pytest.fixture
def owner(runtime: Runtime) -> Account:
    return add_account(
        runtime, "john.doe@acme.inc", company="Acme Inc", alias="acme_inc", attributes={"balance": "627.3615"}
    )


@pytest.fixture
def app(runtime: Runtime, owner: Account) -> Registered:
    """A confidential web application: authorization_code + refresh_token."""
    return register(runtime, owner, name="Web app")


@pytest.fixture
def other_app(runtime: Runtime, owner: Account) -> Registered:
    return register(runtime, owner, name="Another app")


@pytest.fixture
def public(runtime: Runtime, owner: Account) -> Registered:
    """A public (native) client: no secret, PKCE."""
    return register(runtime, owner, name="Native app", confidential=False)


@pytest.fixture
def service(runtime: Runtime, owner: Account) -> Registered:
    """A protected API's confidential client: client_credentials, and it may introspect
    every token and API key (a resource server)."""
    return register(
        runtime, owner, name="Service", grant_types=["client_credentials"], redirect_uris=[], resource_server=True
    )


@pytest.fixture
def api_key(runtime: Runtime, owner: Account) -> str:
    return add_api_key(runtime, owner, name="Default").key


# ---- helpers ----


def code_for(runtime: Runtime, registered: Registered, owner: Account, scopes: tuple[str, ...] = ("sms",)) -> str:
    challenge = None if registered.client.confidential else s256(VERIFIER)
    return issue_code(
        runtime.ctx,
        registered.client,
        account_id=owner.id,
        scopes=scopes,
        redirect_uri=None,
        code_challenge=challenge,
        code_challenge_method=None if challenge is None else "S256",
    )


def tokens_for(
    client: TestClient, runtime: Runtime, registered: Registered, owner: Account, scopes: tuple[str, ...] = ("sms",)
) -> dict[str, Any]:
    """An access and a refresh token through the authorization code grant."""
    data = {"grant_type": "authorization_code", "code": code_for(runtime, registered, owner, scopes)}
    if registered.client.confidential:
        response = client.post("/oauth/token", data=data, headers=registered.basic())
    else:
        response = client.post("/oauth/token", data=registered.post(**data, code_verifier=VERIFIER))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def client_credentials(client: TestClient, registered: Registered, **params: str) -> httpx.Response:
    return client.post("/oauth/token", data={"grant_type": "client_credentials", **params}, headers=registered.basic())


def introspect(client: TestClient, caller: Registered, token: str, **params: str) -> httpx.Response:
    return client.post("/oauth/introspect", data={"token": token, **params}, headers=caller.basic())


def is_active(client: TestClient, caller: Registered, token: str) -> bool:
    response = introspect(client, caller, token)
    assert response.status_code == 200, response.text
    active: bool = response.json()["active"]
    return active


def stored(runtime: Runtime, secret: str) -> Any:
    return runtime.store.find_token(runtime.hasher.token_key(secret))


def assert_no_store(response: httpx.Response) -> None:
    # RFC 6749 §5.1: "Cache-Control: no-store" and "Pragma: no-cache".
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"


def assert_oauth_error(
    response: httpx.Response, status: int, error: str, *, challenge: str | None = None
) -> dict[str, str]:
    """An RFC 6749 §5.2 error: exact status, code, body members and headers."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, str] = response.json()
    assert set(body) == {"error", "error_description"}
    assert body["error"] == error
    assert ERROR_DESCRIPTION.fullmatch(body["error_description"]), body["error_description"]
    assert_no_store(response)
    assert response.headers.get("www-authenticate") == challenge
    # RFC 7235 §3.1: a 401 "MUST send a WWW-Authenticate header field".
    assert status != 401 or challenge is not None
    return body


_AUTH_PARAM = re.compile(r'([a-z_]+)="([^"]*)"')


def bearer_challenge(response: httpx.Response) -> dict[str, str]:
    """The auth-params of a ``WWW-Authenticate: Bearer`` challenge (RFC 6750 §3)."""
    scheme, _, rest = response.headers["www-authenticate"].partition(" ")
    assert scheme == "Bearer"
    params = dict(_AUTH_PARAM.findall(rest))
    assert ", ".join(f'{name}="{value}"' for name, value in params.items()) == rest
    return params


def token_response_members(body: dict[str, Any], *, refresh: bool) -> None:
    expected = {"access_token", "token_type", "expires_in", "scope", "created_at"}
    assert set(body) == (expected | {"refresh_token"} if refresh else expected)
    assert body["token_type"] == "Bearer"


@contextmanager
def serving(settings: Settings, clock: FrozenClock, **overrides: Any) -> Iterator[TestClient]:
    """A second app on the same database, with other settings."""
    runtime = open_runtime(settings.with_overrides(**overrides), clock=clock)
    try:
        with TestClient(create_app(runtime), base_url=ISSUER) as http:
            yield http
    finally:
        runtime.close()


# ---- POST /oauth/token: success responses (RFC 6749 §5.1) ----


def test_client_credentials_with_basic_returns_exactly_the_token_response(
    client: TestClient, runtime: Runtime, service: Registered, owner: Account
) -> None:
    response = client_credentials(client, service)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert_no_store(response)
    body = response.json()
    assert body == {
        "access_token": body["access_token"],
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": "sms",  # the configured default
        "created_at": runtime.clock.now(),
    }
    assert kind_of(body["access_token"]) is Kind.ACCESS_TOKEN
    token = stored(runtime, body["access_token"])
    assert (token.kind, token.client_id, token.account_id, token.scopes) == ("access", service.id, owner.id, ("sms",))
    assert token.expires_at == runtime.clock.now() + 3600


def test_client_credentials_with_client_secret_post_and_a_scope(client: TestClient, service: Registered) -> None:
    response = client.post("/oauth/token", data=service.post(grant_type="client_credentials", scope="balance sms"))
    assert response.status_code == 200, response.text
    assert_no_store(response)
    body = response.json()
    token_response_members(body, refresh=False)
    assert body["scope"] == "balance sms"


def test_authorization_code_then_refresh_token_with_basic(
    client: TestClient, runtime: Runtime, clock: FrozenClock, app: Registered, owner: Account
) -> None:
    code = code_for(runtime, app, owner, ("sms", "balance"))
    response = client.post("/oauth/token", data={"grant_type": "authorization_code", "code": code}, headers=app.basic())
    assert response.status_code == 200, response.text
    assert_no_store(response)
    first = response.json()
    token_response_members(first, refresh=True)
    assert (first["scope"], first["expires_in"], first["created_at"]) == ("sms balance", 3600, runtime.clock.now())
    assert kind_of(first["refresh_token"]) is Kind.REFRESH_TOKEN

    clock.advance(100)
    refreshed = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"], "scope": "sms"},
        headers=app.basic(),
    )
    assert refreshed.status_code == 200, refreshed.text
    assert_no_store(refreshed)
    second = refreshed.json()
    token_response_members(second, refresh=True)
    assert (second["scope"], second["created_at"]) == ("sms", runtime.clock.now())
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    assert stored(runtime, first["refresh_token"]).rotated_at == runtime.clock.now()


def test_refresh_with_client_secret_post_as_onlinesim_documents_it(
    client: TestClient, runtime: Runtime, app: Registered, owner: Account
) -> None:
    tokens = tokens_for(client, runtime, app, owner)
    response = client.post(
        "/oauth/token", data=app.post(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    )
    assert response.status_code == 200, response.text
    token_response_members(response.json(), refresh=True)


def test_public_client_authenticates_with_none_and_pkce(
    client: TestClient, runtime: Runtime, public: Registered, owner: Account
) -> None:
    code = code_for(runtime, public, owner)
    response = client.post(
        "/oauth/token",
        data={"grant_type": "authorization_code", "code": code, "client_id": public.id, "code_verifier": VERIFIER},
    )
    assert response.status_code == 200, response.text
    assert_no_store(response)
    token_response_members(response.json(), refresh=True)


def test_a_refresh_token_of_another_client_is_invalid_grant(
    client: TestClient, runtime: Runtime, app: Registered, other_app: Registered, owner: Account
) -> None:
    tokens = tokens_for(client, runtime, app, owner)
    response = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        headers=other_app.basic(),
    )
    assert_oauth_error(response, 400, "invalid_grant")
    assert stored(runtime, tokens["refresh_token"]).rotated_at is None


def test_a_replayed_code_is_invalid_grant_and_revokes_what_it_gave(
    client: TestClient, runtime: Runtime, app: Registered, owner: Account
) -> None:
    code = code_for(runtime, app, owner)
    data = {"grant_type": "authorization_code", "code": code}
    first = client.post("/oauth/token", data=data, headers=app.basic())
    assert first.status_code == 200
    assert_oauth_error(client.post("/oauth/token", data=data, headers=app.basic()), 400, "invalid_grant")
    assert stored(runtime, first.json()["access_token"]).revoked_at == runtime.clock.now()
    assert stored(runtime, first.json()["refresh_token"]).revoked_at == runtime.clock.now()


# ---- client authentication (RFC 6749 §2.3) ----


def test_basic_credentials_are_form_urldecoded(client: TestClient, service: Registered) -> None:
    """§2.3.1: the id and the secret are form-urlencoded before base64; a client may
    percent-encode any character, unreserved ones included."""
    assert service.secret is not None
    every_char = "".join(f"%{byte:02X}" for byte in f"{service.id}".encode())
    every_secret_char = "".join(f"%{byte:02X}" for byte in service.secret.encode())
    header = "Basic " + base64.b64encode(f"{every_char}:{every_secret_char}".encode()).decode()
    response = client.post("/oauth/token", data={"grant_type": "client_credentials"}, headers={"authorization": header})
    assert response.status_code == 200, response.text


def test_basic_credentials_with_characters_that_need_encoding(
    client: TestClient, runtime: Runtime, owner: Account
) -> None:
    client_id, secret = "acme app:1/ü", "pa ss+wörd%:/&="
    acme = Client(
        client_id=client_id,
        name="Acme",
        owner_id=owner.id,
        secret_hash=runtime.hasher.digest(secret),
        grant_types=("client_credentials",),
    )
    commit_now(runtime.store, lambda unit: unit.add_client(acme))
    data = {"grant_type": "client_credentials"}
    encoded = client.post("/oauth/token", data=data, headers={"authorization": basic(client_id, secret)})
    assert encoded.status_code == 200, encoded.text
    # Sent raw, the ":" of the id splits the pair in the wrong place.
    raw = "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    assert_oauth_error(
        client.post("/oauth/token", data=data, headers={"authorization": raw}),
        401,
        "invalid_client",
        challenge=BASIC_CHALLENGE,
    )
    # client_secret_post carries the same values form-encoded in the body.
    posted = client.post("/oauth/token", data={**data, "client_id": client_id, "client_secret": secret})
    assert posted.status_code == 200, posted.text


@pytest.mark.parametrize("scheme", ["Basic", "basic", "BASIC"])
def test_the_basic_scheme_name_is_case_insensitive(client: TestClient, service: Registered, scheme: str) -> None:
    header = service.basic()["authorization"].replace("Basic", scheme, 1)
    response = client.post("/oauth/token", data={"grant_type": "client_credentials"}, headers={"authorization": header})
    assert response.status_code == 200, response.text


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


@pytest.mark.parametrize(
    "credentials",
    [
        pytest.param("Basic !!!not-base64!!!", id="not-base64"),
        pytest.param("Basic " + _b64(b"no-colon-at-all")[:-2], id="bad-padding"),
        pytest.param("Basic " + _b64(b"no-colon-at-all"), id="no-colon"),
        pytest.param("Basic " + _b64(b":secret-without-id"), id="empty-id"),
        pytest.param("Basic " + _b64(b"\xff\xfe:\xfd"), id="not-utf-8"),
        pytest.param("Basic " + _b64(b"%zz%:%%41%"), id="percent-garbage"),
        pytest.param("Basic ", id="empty"),
    ],
)
def test_malformed_basic_credentials_are_invalid_client_with_the_basic_challenge(
    client: TestClient, service: Registered, credentials: str
) -> None:
    response = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers={"authorization": credentials}
    )
    assert_oauth_error(response, 401, "invalid_client", challenge=BASIC_CHALLENGE)


def test_a_wrong_secret_in_basic_is_401_with_the_basic_challenge(client: TestClient, service: Registered) -> None:
    for secret in ["%", "wrong", new_secret(Kind.CLIENT_SECRET)]:
        response = client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers={"authorization": basic(service.id, secret)},
        )
        assert_oauth_error(response, 401, "invalid_client", challenge=BASIC_CHALLENGE)
    unknown = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"authorization": basic("no-such-client", "secret")},
    )
    assert_oauth_error(unknown, 401, "invalid_client", challenge=BASIC_CHALLENGE)


@pytest.mark.parametrize(
    "credentials",
    [
        pytest.param({"client_id": "no-such-client", "client_secret": "x"}, id="unknown-client"),
        pytest.param({"client_secret": "x"}, id="secret-without-id"),
        pytest.param({}, id="nothing"),
    ],
)
def test_failed_authentication_without_basic_is_401_with_the_basic_challenge(
    client: TestClient, credentials: dict[str, str]
) -> None:
    response = client.post("/oauth/token", data={"grant_type": "client_credentials", **credentials})
    assert_oauth_error(response, 401, "invalid_client", challenge=BASIC_CHALLENGE)


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/introspect", "/oauth/revoke"])
def test_a_wrong_client_secret_post_is_401_with_the_basic_challenge(
    client: TestClient, service: Registered, path: str
) -> None:
    # RFC 7235 §3.1: every 401 carries a challenge; RFC 6749 §5.2 invalid_client is a 401.
    data = {"grant_type": "client_credentials", "token": "kt_at_x", "client_id": service.id, "client_secret": "wrong"}
    assert_oauth_error(client.post(path, data=data), 401, "invalid_client", challenge=BASIC_CHALLENGE)


def test_a_confidential_client_must_authenticate(client: TestClient, service: Registered) -> None:
    wrong = client.post(
        "/oauth/token", data={"grant_type": "client_credentials", "client_id": service.id, "client_secret": "wrong"}
    )
    assert_oauth_error(wrong, 401, "invalid_client", challenge=BASIC_CHALLENGE)
    missing = client.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": service.id})
    assert_oauth_error(missing, 401, "invalid_client", challenge=BASIC_CHALLENGE)


def test_a_public_client_presenting_a_secret_is_invalid_client(
    client: TestClient, runtime: Runtime, public: Registered, owner: Account
) -> None:
    data = {"grant_type": "authorization_code", "code": code_for(runtime, public, owner), "code_verifier": VERIFIER}
    posted = client.post("/oauth/token", data={**data, "client_id": public.id, "client_secret": "anything"})
    assert_oauth_error(posted, 401, "invalid_client", challenge=BASIC_CHALLENGE)
    with_basic = client.post("/oauth/token", data=data, headers={"authorization": basic(public.id, "anything")})
    assert_oauth_error(with_basic, 401, "invalid_client", challenge=BASIC_CHALLENGE)


def test_basic_and_client_secret_in_the_body_is_invalid_request(client: TestClient, service: Registered) -> None:
    assert service.secret is not None
    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_secret": service.secret},
        headers=service.basic(),
    )
    assert_oauth_error(response, 400, "invalid_request")


def test_a_client_id_in_the_body_that_matches_basic_is_accepted(client: TestClient, service: Registered) -> None:
    response = client.post(
        "/oauth/token", data={"grant_type": "client_credentials", "client_id": service.id}, headers=service.basic()
    )
    assert response.status_code == 200, response.text
    token_response_members(response.json(), refresh=False)


def test_a_client_id_in_the_body_that_contradicts_basic_is_invalid_request(
    client: TestClient, service: Registered, app: Registered
) -> None:
    response = client.post(
        "/oauth/token", data={"grant_type": "client_credentials", "client_id": app.id}, headers=service.basic()
    )
    assert_oauth_error(response, 400, "invalid_request")


def test_credentials_in_the_query_string_are_ignored(client: TestClient, service: Registered) -> None:
    assert service.secret is not None
    query = f"client_id={quote(service.id)}&client_secret={quote(service.secret)}"
    response = client.post(f"/oauth/token?{query}", data={"grant_type": "client_credentials"})
    assert_oauth_error(response, 401, "invalid_client", challenge=BASIC_CHALLENGE)


# ---- POST /oauth/token: request errors (RFC 6749 §5.2) ----


@pytest.mark.parametrize(
    "grant_type", ["password", "implicit", "urn:ietf:params:oauth:grant-type:device_code", "CLIENT_CREDENTIALS"]
)
def test_an_unknown_grant_type_is_unsupported_grant_type(
    client: TestClient, service: Registered, grant_type: str
) -> None:
    response = client.post("/oauth/token", data={"grant_type": grant_type}, headers=service.basic())
    assert_oauth_error(response, 400, "unsupported_grant_type")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({}, id="no-grant_type"),
        pytest.param({"grant_type": ""}, id="empty-grant_type"),
        pytest.param({"grant_type": "authorization_code"}, id="no-code"),
        pytest.param({"grant_type": "refresh_token"}, id="no-refresh_token"),
    ],
)
def test_a_missing_parameter_is_invalid_request(client: TestClient, app: Registered, data: dict[str, str]) -> None:
    response = client.post("/oauth/token", data=data, headers=app.basic())
    assert_oauth_error(response, 400, "invalid_request")


@pytest.mark.parametrize(
    "body",
    [
        b"grant_type=client_credentials&grant_type=client_credentials",
        b"grant_type=client_credentials&scope=sms&scope=balance",
        b"grant_type=client_credentials&scope=&scope=sms",
        b"grant_type=client_credentials&grant_%74ype=client_credentials",
    ],
)
def test_a_repeated_parameter_is_invalid_request(client: TestClient, service: Registered, body: bytes) -> None:
    response = client.post("/oauth/token", content=body, headers={**FORM, **service.basic()})
    assert_oauth_error(response, 400, "invalid_request")


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", json.dumps({"grant_type": "client_credentials"}).encode()),
        ("text/plain", b"grant_type=client_credentials"),
        ("multipart/form-data; boundary=x", b'--x\r\nContent-Disposition: form-data; name="grant_type"\r\n\r\n'),
        (None, b"grant_type=client_credentials"),
    ],
)
def test_a_body_that_is_not_form_urlencoded_is_invalid_request(
    client: TestClient, service: Registered, content_type: str | None, body: bytes
) -> None:
    headers = service.basic()
    if content_type is not None:
        headers["content-type"] = content_type
    response = client.post("/oauth/token", content=body, headers=headers)
    assert_oauth_error(response, 400, "invalid_request")


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded; charset=UTF-8", "Application/X-WWW-Form-URLEncoded"]
)
def test_form_content_type_parameters_and_case_are_accepted(
    client: TestClient, service: Registered, content_type: str
) -> None:
    response = client.post(
        "/oauth/token",
        content=b"grant_type=client_credentials",
        headers={"content-type": content_type, **service.basic()},
    )
    assert response.status_code == 200, response.text


def test_a_body_that_is_not_utf8_is_invalid_request(client: TestClient, service: Registered) -> None:
    response = client.post(
        "/oauth/token", content=b"grant_type=client_credentials&scope=%FF", headers={**FORM, **service.basic()}
    )
    assert_oauth_error(response, 400, "invalid_request")


def test_a_body_over_max_body_size_is_invalid_request(
    client: TestClient, runtime: Runtime, service: Registered
) -> None:
    limit = runtime.settings.max_body_size
    head = b"grant_type=client_credentials&padding="
    at_limit = head + b"x" * (limit - len(head))
    assert len(at_limit) == limit
    accepted = client.post("/oauth/token", content=at_limit, headers={**FORM, **service.basic()})
    assert accepted.status_code == 200, accepted.text
    too_large = client.post("/oauth/token", content=at_limit + b"x", headers={**FORM, **service.basic()})
    assert_oauth_error(too_large, 400, "invalid_request")


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_methods_on_the_token_endpoint_are_405(client: TestClient, method: str) -> None:
    response = client.request(method, "/oauth/token")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert_no_store(response)
    assert set(response.json()) == {"error", "error_description"}
    assert response.json()["error"] == "invalid_request"


def test_a_client_without_the_grant_is_unauthorized_client(
    client: TestClient, runtime: Runtime, app: Registered, service: Registered, public: Registered, owner: Account
) -> None:
    assert_oauth_error(client_credentials(client, app), 400, "unauthorized_client")
    code = code_for(runtime, service, owner)
    response = client.post(
        "/oauth/token", data={"grant_type": "authorization_code", "code": code}, headers=service.basic()
    )
    assert_oauth_error(response, 400, "unauthorized_client")
    refresh = new_secret(Kind.REFRESH_TOKEN)
    response = client.post(
        "/oauth/token", data={"grant_type": "refresh_token", "refresh_token": refresh}, headers=service.basic()
    )
    assert_oauth_error(response, 400, "unauthorized_client")
    # RFC 6749 §4.4: client credentials are for confidential clients only.
    response = client.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": public.id})
    assert_oauth_error(response, 400, "unauthorized_client")


def test_scopes_outside_the_catalogue_or_the_clients_registration_are_invalid_scope(
    client: TestClient, runtime: Runtime, owner: Account
) -> None:
    limited = register(runtime, owner, grant_types=["client_credentials"], redirect_uris=[], scopes=["sms", "balance"])
    assert client_credentials(client, limited, scope="sms balance").json()["scope"] == "sms balance"
    assert_oauth_error(client_credentials(client, limited, scope="analytics"), 400, "invalid_scope")
    assert_oauth_error(client_credentials(client, limited, scope="sms voice"), 400, "invalid_scope")


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("scope", "sms é", "invalid_scope"),
        ("scope", 'sms a"b', "invalid_scope"),
        ("scope", "sms a\\b", "invalid_scope"),
        ("grant_type", 'pass"word', "unsupported_grant_type"),
        ("grant_type", "pässword", "unsupported_grant_type"),
    ],
)
def test_error_descriptions_stay_in_the_rfc_character_set_whatever_was_sent(
    client: TestClient, service: Registered, field: str, value: str, error: str
) -> None:
    """RFC 6749 §5.2 restricts error_description to printable ASCII without '"' and '\\'."""
    data = {"grant_type": "client_credentials", field: value}
    assert_oauth_error(client.post("/oauth/token", data=data, headers=service.basic()), 400, error)


@pytest.mark.parametrize(
    ("body", "error", "description"),
    [
        (
            b"grant_type=Call+support+at+evil.example",
            "unsupported_grant_type",
            "The grant_type is not supported; use client_credentials, authorization_code, refresh_token.",
        ),
        (
            b"grant_type=client_credentials&scope=sms+Visit-evil.example-to-restore-access",
            "invalid_scope",
            "The request names a scope this server does not know.",
        ),
        (
            b"grant_type=client_credentials&scope=sms+%22evil%22",
            "invalid_scope",
            "The scope parameter holds a malformed scope.",
        ),
        (
            b"grant_type=client_credentials&Visit-evil.example=1&Visit-evil.example=2",
            "invalid_request",
            "The request repeats a parameter.",
        ),
        (b"grant_type=client_credentials&scope=sms&scope=sms", "invalid_request", "The request repeats scope."),
    ],
)
def test_error_descriptions_describe_the_error_without_repeating_the_request(
    client: TestClient, service: Registered, body: bytes, error: str, description: str
) -> None:
    response = client.post("/oauth/token", content=body, headers={**FORM, **service.basic()})
    assert assert_oauth_error(response, 400, error)["error_description"] == description


def test_an_unexpected_failure_is_server_error_and_not_cached(
    client: TestClient, service: Registered, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object) -> dict[str, Any]:
        raise RuntimeError("database exploded at /secret/path")

    monkeypatch.setitem(token_endpoint.GRANTS, "client_credentials", broken)
    body = assert_oauth_error(client_credentials(client, service), 500, "server_error")
    assert "secret/path" not in body["error_description"]


# ---- POST /oauth/introspect (RFC 7662) ----


def test_introspecting_an_access_token(
    client: TestClient, runtime: Runtime, app: Registered, service: Registered, owner: Account
) -> None:
    tokens = tokens_for(client, runtime, app, owner, ("sms", "balance"))
    now = runtime.clock.now()
    response = introspect(client, service, tokens["access_token"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert_no_store(response)
    assert response.json() == {
        "active": True,
        "scope": "sms balance",
        "client_id": app.id,
        "sub": str(owner.id),
        "username": "john.doe@acme.inc",
        "token_type": "Bearer",
        "token_use": "access_token",
        "exp": now + 3600,
        "iat": now,
        "iss": ISSUER,
        "aud": ISSUER,
    }


def test_introspecting_a_refresh_token(client: TestClient, runtime: Runtime, app: Registered, owner: Account) -> None:
    tokens = tokens_for(client, runtime, app, owner)
    now = runtime.clock.now()
    response = introspect(client, app, tokens["refresh_token"], token_type_hint="refresh_token")
    assert response.status_code == 200
    assert response.json() == {
        "active": True,
        "scope": "sms",
        "client_id": app.id,
        "sub": str(owner.id),
        "username": "john.doe@acme.inc",
        "token_use": "refresh_token",
        "exp": now + runtime.settings.refresh_token_ttl,
        "iat": now,
        "iss": ISSUER,
        "aud": ISSUER,
    }


def test_introspecting_an_api_key(client: TestClient, runtime: Runtime, service: Registered, owner: Account) -> None:
    now = runtime.clock.now()
    unrestricted = add_api_key(runtime, owner, name="All").key
    expiring = add_api_key(runtime, owner, name="Balance only", scopes=["balance"], expires_at=now + 86400).key
    common = {
        "active": True,
        "sub": str(owner.id),
        "username": "john.doe@acme.inc",
        "token_type": "Bearer",
        "token_use": "api_key",
        "iat": now,
        "iss": ISSUER,
        "aud": ISSUER,
    }
    # An API key belongs to an account, not to a client: no client_id; no expiry, no exp.
    assert introspect(client, service, unrestricted).json() == {**common, "scope": "sms balance analytics"}
    assert introspect(client, service, expiring).json() == {**common, "scope": "balance", "exp": now + 86400}


def test_the_token_type_hint_is_only_a_hint(
    client: TestClient, runtime: Runtime, service: Registered, app: Registered, owner: Account, api_key: str
) -> None:
    tokens = tokens_for(client, runtime, app, owner)
    for token in (tokens["access_token"], tokens["refresh_token"], api_key):
        for hint in ("access_token", "refresh_token", "something_else"):
            assert introspect(client, service, token, token_type_hint=hint).json()["active"] is True


def test_a_client_that_is_not_a_resource_server_sees_only_its_own_tokens(
    client: TestClient, runtime: Runtime, app: Registered, other_app: Registered, owner: Account, api_key: str
) -> None:
    tokens = tokens_for(client, runtime, app, owner)
    assert introspect(client, app, tokens["access_token"]).json()["active"] is True
    # RFC 7662 §2.2: a token the caller may not see is simply inactive to it.
    for token in (tokens["access_token"], tokens["refresh_token"], api_key):
        assert introspect(client, other_app, token).json() == {"active": False}
    assert introspect(client, app, api_key).json() == {"active": False}


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("nonsense", id="garbage"),
        pytest.param("a.b.c", id="jwt-shaped-garbage"),
        pytest.param(new_secret(Kind.ACCESS_TOKEN), id="unknown-access-token"),
        pytest.param(new_secret(Kind.REFRESH_TOKEN), id="unknown-refresh-token"),
        pytest.param(new_secret(Kind.API_KEY), id="unknown-api-key"),
        pytest.param(new_secret(Kind.ACCESS_TOKEN)[:-1] + "x", id="bad-check-digits"),
        pytest.param(
            jwt.encode({"sub": "1", "exp": 4_000_000_000}, "k" * 32, algorithm="HS256", headers={"typ": "at+jwt"}),
            id="foreign-jwt",
        ),
    ],
)
def test_introspecting_an_unknown_token_is_inactive(client: TestClient, app: Registered, token: str) -> None:
    response = introspect(client, app, token)
    assert response.status_code == 200
    assert_no_store(response)
    assert response.json() == {"active": False}


def test_introspecting_codes_and_client_secrets_is_inactive(
    client: TestClient, runtime: Runtime, app: Registered, owner: Account
) -> None:
    assert app.secret is not None
    for token in (code_for(runtime, app, owner), app.secret):
        assert introspect(client, app, token).json() == {"active": False}


def test_revoked_expired_and_rotated_tokens_are_inactive(
    client: TestClient, runtime: Runtime, clock: FrozenClock, app: Registered, owner: Account, api_key: str
) -> None:
    revoked = tokens_for(client, runtime, app, owner)
    assert client.post("/oauth/revoke", data={"token": revoked["access_token"]}, headers=app.basic()).status_code == 200
    assert introspect(client, app, revoked["access_token"]).json() == {"active": False}

    rotated = tokens_for(client, runtime, app, owner)
    renewed = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": rotated["refresh_token"]},
        headers=app.basic(),
    )
    assert renewed.status_code == 200
    assert introspect(client, app, rotated["refresh_token"]).json() == {"active": False}
    assert is_active(client, app, renewed.json()["refresh_token"])

    key = runtime.store.find_api_key(runtime.hasher.digest(api_key))
    assert key is not None
    commit_now(runtime.store, lambda unit: unit.revoke_api_key(key.id, owner.id, clock.now()))
    assert introspect(client, app, api_key).json() == {"active": False}

    fresh = tokens_for(client, runtime, app, owner)
    assert is_active(client, app, fresh["access_token"])
    clock.advance(3600)
    assert introspect(client, app, fresh["access_token"]).json() == {"active": False}
    assert is_active(client, app, fresh["refresh_token"])


def test_tokens_of_a_disabled_account_are_inactive(
    client: TestClient, runtime: Runtime, app: Registered, owner: Account, api_key: str
) -> None:
    tokens = tokens_for(client, runtime, app, owner)
    with runtime.store.engine.begin() as connection:  # type: ignore[attr-defined]
        connection.execute(update(accounts).where(accounts.c.id == owner.id).values(disabled=True))
    for token in (tokens["access_token"], tokens["refresh_token"], api_key):
        assert introspect(client, app, token).json() == {"active": False}
        me = client.get("/me", headers={"authorization": f"Bearer {token}"})
        assert me.status_code == 401


def test_a_public_client_may_not_introspect(
    client: TestClient, runtime: Runtime, public: Registered, owner: Account
) -> None:
    tokens = tokens_for(client, runtime, public, owner)
    response = client.post("/oauth/introspect", data={"token": tokens["access_token"], "client_id": public.id})
    assert_oauth_error(response, 401, "invalid_client", challenge=BASIC_CHALLENGE)
    with_basic = client.post(
        "/oauth/introspect",
        data={"token": tokens["access_token"]},
        headers={"authorization": basic(public.id, "")},
    )
    assert_oauth_error(with_basic, 401, "invalid_client", challenge=BASIC_CHALLENGE)


def test_introspection_needs_an_authenticated_caller_and_a_token(
    client: TestClient, runtime: Runtime, app: Registered, owner: Account
) -> None:
    token = tokens_for(client, runtime, app, owner)["access_token"]
    assert_oauth_error(
        client.post("/oauth/introspect", data={"token": token}), 401, "invalid_client", challenge=BASIC_CHALLENGE
    )
    wrong = client.post("/oauth/introspect", data={"token": token}, headers={"authorization": basic(app.id, "wrong")})
    assert_oauth_error(wrong, 401, "invalid_client", challenge=BASIC_CHALLENGE)
    assert_oauth_error(client.post("/oauth/introspect", data={}, headers=app.basic()), 400, "invalid_request")
    both = client.post("/oauth/introspect", data={"token": token, "client_secret": "x"}, headers=app.basic())
    assert_oauth_error(both, 400, "invalid_request")
    as_json = client.post("/oauth/introspect", json={"token": token}, headers=app.basic())
    assert_oauth_error(as_json, 400, "invalid_request")
    get = client.get("/oauth/introspect", params={"token": token}, headers=app.basic())
    assert (get.status_code, get.headers["allow"]) == (405, "POST")


# ---- POST /oauth/revoke (RFC 7009) ----


def test_revoking_an_access_token_revokes_only_it(
    client: TestClient, runtime: Runtime, app: Registered, owner: Account
) -> None:
    tokens = tokens_for(client, runtime, app, owner)
    response = client.post("/oauth/revoke", data={"token": tokens["access_token"]}, headers=app.basic())
    assert response.status_code == 200
    assert response.content == b""
    assert_no_store(response)
    assert stored(runtime, tokens["access_token"]).revoked_at == runtime.clock.now()
    assert stored(runtime, tokens["refresh_token"]).revoked_at is None
    assert client.get("/me", headers={"authorization": f"Bearer {tokens['access_token']}"}).status_code == 401


def test_revoking_a_refresh_token_revokes_the_access_tokens_of_its_family(
    client: TestClient, runtime: Runtime, app: Registered, owner: Account
) -> None:
    first = tokens_for(client, runtime, app, owner)
    rotated = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        headers=app.basic(),
    ).json()
    unrelated = tokens_for(client, runtime, app, owner)
    response = client.post(
        "/oauth/revoke",
        data={"token": rotated["refresh_token"], "token_type_hint": "refresh_token"},
        headers=app.basic(),
    )
    assert response.status_code == 200
    for token in (first["access_token"], rotated["access_token"], rotated["refresh_token"]):
        assert stored(runtime, token).revoked_at is not None
        assert not is_active(client, app, token)
    for token in (unrelated["access_token"], unrelated["refresh_token"]):
        assert stored(runtime, token).revoked_at is None
    refused = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": rotated["refresh_token"]},
        headers=app.basic(),
    )
    assert_oauth_error(refused, 400, "invalid_grant")


@pytest.mark.parametrize("hint", [None, "access_token", "refresh_token", "no_such_type"])
def test_the_revocation_hint_is_optional_and_only_a_hint(
    client: TestClient, runtime: Runtime, app: Registered, owner: Account, hint: str | None
) -> None:
    tokens = tokens_for(client, runtime, app, owner)
    data = {"token": tokens["access_token"]}
    if hint is not None:
        data["token_type_hint"] = hint
    response = client.post("/oauth/revoke", data=data, headers=app.basic())
    assert response.status_code == 200, response.text
    assert stored(runtime, tokens["access_token"]).revoked_at is not None


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("nonsense", id="garbage"),
        pytest.param("a.b.c", id="jwt-shaped-garbage"),
        pytest.param(new_secret(Kind.ACCESS_TOKEN), id="unknown-access-token"),
        pytest.param(new_secret(Kind.REFRESH_TOKEN), id="unknown-refresh-token"),
        pytest.param(new_secret(Kind.AUTHORIZATION_CODE), id="unknown-code"),
    ],
)
def test_revoking_an_unknown_token_is_200(client: TestClient, app: Registered, token: str) -> None:
    """RFC 7009 §2.2: "invalid tokens do not cause an error response"."""
    response = client.post("/oauth/revoke", data={"token": token}, headers=app.basic())
    assert response.status_code == 200
    assert response.content == b""
    assert_no_store(response)


def test_revoking_twice_is_200_both_times(
    client: TestClient, runtime: Runtime, app: Registered, owner: Account
) -> None:
    tokens = tokens_for(client, runtime, app, owner)
    for _ in range(2):
        response = client.post("/oauth/revoke", data={"token": tokens["refresh_token"]}, headers=app.basic())
        assert response.status_code == 200


def test_a_client_revokes_only_its_own_tokens(
    client: TestClient, runtime: Runtime, app: Registered, other_app: Registered, owner: Account
) -> None:
    tokens = tokens_for(client, runtime, app, owner)
    for token in (tokens["access_token"], tokens["refresh_token"]):
        response = client.post("/oauth/revoke", data={"token": token}, headers=other_app.basic())
        assert_oauth_error(response, 400, "unauthorized_client")
        assert stored(runtime, token).revoked_at is None
        assert is_active(client, app, token)


def test_a_public_client_revokes_its_own_refresh_token_with_its_client_id(
    client: TestClient, runtime: Runtime, public: Registered, owner: Account
) -> None:
    tokens = tokens_for(client, runtime, public, owner)
    response = client.post("/oauth/revoke", data={"token": tokens["refresh_token"], "client_id": public.id})
    assert response.status_code == 200, response.text
    assert stored(runtime, tokens["refresh_token"]).revoked_at is not None
    assert stored(runtime, tokens["access_token"]).revoked_at is not None


def test_api_keys_are_not_revoked_at_the_revocation_endpoint(client: TestClient, app: Registered, api_key: str) -> None:
    response = client.post("/oauth/revoke", data={"token": api_key}, headers=app.basic())
    assert_oauth_error(response, 400, "unsupported_token_type")
    assert client.get("/me", headers={"authorization": f"Bearer {api_key}"}).status_code == 200


def test_revocation_needs_an_authenticated_client_and_a_token(
    client: TestClient, runtime: Runtime, app: Registered, owner: Account
) -> None:
    token = tokens_for(client, runtime, app, owner)["access_token"]
    assert_oauth_error(
        client.post("/oauth/revoke", data={"token": token}), 401, "invalid_client", challenge=BASIC_CHALLENGE
    )
    wrong = client.post("/oauth/revoke", data={"token": token}, headers={"authorization": basic(app.id, "wrong")})
    assert_oauth_error(wrong, 401, "invalid_client", challenge=BASIC_CHALLENGE)
    assert_oauth_error(client.post("/oauth/revoke", data={}, headers=app.basic()), 400, "invalid_request")
    assert stored(runtime, token).revoked_at is None
    get = client.get("/oauth/revoke", headers=app.basic())
    assert (get.status_code, get.headers["allow"]) == (405, "POST")


# ---- GET /me (RFC 6750) ----


def test_me_with_an_access_token(client: TestClient, runtime: Runtime, app: Registered, owner: Account) -> None:
    tokens = tokens_for(client, runtime, app, owner, ("sms", "balance"))
    response = client.get("/me", headers={"authorization": f"Bearer {tokens['access_token']}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == {
        "success": True,
        "user_id": owner.id,
        "email": "john.doe@acme.inc",
        "company": "Acme Inc",
        "alias": "acme_inc",
        "balance": "627.3615",
        "scope": "sms balance",
        "client_id": app.id,
    }


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_me_with_an_api_key_in_the_header(client: TestClient, owner: Account, api_key: str, scheme: str) -> None:
    response = client.get("/me", headers={"authorization": f"{scheme} {api_key}"})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "success": True,
        "user_id": owner.id,
        "email": "john.doe@acme.inc",
        "company": "Acme Inc",
        "alias": "acme_inc",
        "balance": "627.3615",
        "scope": None,  # an unrestricted key: all scopes, spelt null as in every JSON output
        "client_id": None,
    }


@pytest.mark.parametrize("name", ["api_key", "apikey"])
def test_me_with_an_api_key_in_the_query(client: TestClient, owner: Account, api_key: str, name: str) -> None:
    response = client.get("/me", params={name: api_key})
    assert response.status_code == 200, response.text
    assert response.json()["user_id"] == owner.id
    assert response.json()["client_id"] is None


def test_a_scoped_api_key_reports_its_scopes(client: TestClient, runtime: Runtime, owner: Account) -> None:
    key = add_api_key(runtime, owner, name="SMS", scopes=["sms"]).key
    assert client.get("/me", params={"api_key": key}).json()["scope"] == "sms"


def test_query_parameters_not_configured_are_ignored(
    settings: Settings, clock: FrozenClock, client: TestClient, api_key: str
) -> None:
    with serving(settings, clock, api_key_query_parameters=[]) as no_query:
        response = no_query.get("/me", params={"api_key": api_key})
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Bearer realm="keyturn"'
        assert no_query.get("/me", headers={"authorization": f"Bearer {api_key}"}).status_code == 200
    with serving(settings, clock, api_key_query_parameters=["key"]) as renamed:
        assert renamed.get("/me", params={"key": api_key}).status_code == 200
        assert renamed.get("/me", params={"apikey": api_key}).status_code == 401


def test_me_without_a_credential_is_401_with_a_bare_challenge(client: TestClient) -> None:
    for response in (client.get("/me"), client.get("/me", params={"api_key": ""}), client.get("/me?other=1")):
        assert response.status_code == 401
        # RFC 6750 §3.1: no error code when the request has no authentication information.
        assert response.headers["www-authenticate"] == 'Bearer realm="keyturn"'
        assert_no_store(response)
        assert response.json() == {"error_description": "This endpoint needs an access token or an API key."}


@pytest.mark.parametrize(
    "credential",
    [
        pytest.param("nonsense", id="garbage"),
        pytest.param(new_secret(Kind.ACCESS_TOKEN), id="unknown-access-token"),
        pytest.param(new_secret(Kind.API_KEY), id="unknown-api-key"),
        pytest.param(new_secret(Kind.CLIENT_SECRET), id="client-secret"),
    ],
)
def test_me_with_a_bad_credential_is_invalid_token(client: TestClient, credential: str) -> None:
    for response in (
        client.get("/me", headers={"authorization": f"Bearer {credential}"}),
        client.get("/me", params={"api_key": credential}),
    ):
        body = assert_oauth_error(response, 401, "invalid_token", challenge=response.headers.get("www-authenticate"))
        assert bearer_challenge(response) == {
            "realm": "keyturn",
            "error": "invalid_token",
            "error_description": body["error_description"],
        }


def test_refresh_revoked_and_expired_tokens_do_not_open_me(
    client: TestClient, runtime: Runtime, clock: FrozenClock, app: Registered, owner: Account
) -> None:
    tokens = tokens_for(client, runtime, app, owner)
    refresh = client.get("/me", headers={"authorization": f"Bearer {tokens['refresh_token']}"})
    assert bearer_challenge(refresh)["error"] == "invalid_token"
    assert refresh.status_code == 401
    fine = client.get("/me", headers={"authorization": f"Bearer {tokens['access_token']}"})
    assert fine.status_code == 200
    clock.advance(3600)
    expired = client.get("/me", headers={"authorization": f"Bearer {tokens['access_token']}"})
    assert (expired.status_code, bearer_challenge(expired)["error"]) == (401, "invalid_token")


@pytest.mark.parametrize(
    ("headers", "query"),
    [
        pytest.param(True, "api_key", id="header-and-api_key"),
        pytest.param(True, "apikey", id="header-and-apikey"),
        pytest.param(False, "both", id="api_key-and-apikey"),
    ],
)
def test_a_credential_sent_twice_is_invalid_request(
    client: TestClient, api_key: str, headers: bool, query: str
) -> None:
    params = {"api_key": api_key, "apikey": api_key} if query == "both" else {query: api_key}
    response = client.get("/me", params=params, headers={"authorization": f"Bearer {api_key}"} if headers else {})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert bearer_challenge(response)["error"] == "invalid_request"


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer    ", "Token abc"])
def test_an_authorization_header_without_a_bearer_credential_gets_the_bare_challenge(
    client: TestClient, header: str
) -> None:
    # RFC 6750 §3.1: no Bearer credential is "no authentication information": 401 with
    # a challenge that carries no error code.
    response = client.get("/me", headers={"authorization": header})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="keyturn"'


def test_an_access_token_is_not_accepted_in_the_query(
    client: TestClient, runtime: Runtime, app: Registered, owner: Account
) -> None:
    tokens = tokens_for(client, runtime, app, owner)
    response = client.get("/me", params={"api_key": tokens["access_token"]})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert "Only API keys" in response.json()["error_description"]


def test_me_answers_get_only(client: TestClient, api_key: str) -> None:
    response = client.post("/me", headers={"authorization": f"Bearer {api_key}"})
    assert (response.status_code, response.headers["allow"]) == (405, "GET")


def test_me_in_the_onlinesim_error_style(
    settings: Settings, clock: FrozenClock, client: TestClient, owner: Account, api_key: str
) -> None:
    with serving(settings, clock, error_style="onlinesim") as onlinesim:
        for response in (
            onlinesim.get("/me", params={"apikey": new_secret(Kind.API_KEY)}),
            onlinesim.get("/me", headers={"authorization": "Bearer nonsense"}),
        ):
            assert response.status_code == 401
            assert response.json() == {"response": "ERROR_WRONG_KEY"}
            assert bearer_challenge(response)["error"] == "invalid_token"
            assert_no_store(response)
        missing = onlinesim.get("/me")
        assert (missing.status_code, missing.json()) == (401, {"response": "ERROR_WRONG_KEY"})
        assert missing.headers["www-authenticate"] == 'Bearer realm="keyturn"'
        fine = onlinesim.get("/me", params={"apikey": api_key})
        assert fine.status_code == 200
        assert fine.json()["user_id"] == owner.id
        # The token endpoint keeps RFC 6749 errors in this style.
        assert_oauth_error(onlinesim.post("/oauth/token", data={}), 400, "invalid_request")


# ---- JWT access tokens (RFC 9068) ----


@pytest.fixture
def jwt_service(runtime: Runtime, owner: Account) -> Registered:
    return register(
        runtime, owner, name="JWT service", grant_types=["client_credentials"], redirect_uris=[], token_format="jwt"
    )


def test_jwt_access_tokens_verify_against_the_jwks(
    client: TestClient, runtime: Runtime, clock: FrozenClock, jwt_service: Registered, owner: Account
) -> None:
    clock.current = int(time.time())  # PyJWT below checks exp and iat against the wall clock
    response = client_credentials(client, jwt_service, scope="sms balance")
    assert response.status_code == 200, response.text
    assert_no_store(response)
    body = response.json()
    token_response_members(body, refresh=False)
    token = body["access_token"]

    header = jwt.get_unverified_header(token)
    jwks = client.get("/oauth/jwks").json()
    (jwk,) = (key for key in jwks["keys"] if key["kid"] == header.get("kid"))
    assert header == {"alg": "ES256", "kid": jwk["kid"], "typ": "at+jwt"}
    claims = jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=["ES256"], audience=ISSUER, issuer=ISSUER)
    now = clock.now()
    assert claims == {
        "iss": ISSUER,
        "sub": str(owner.id),
        "aud": ISSUER,
        "exp": now + 3600,
        "iat": now,
        "jti": claims["jti"],
        "client_id": jwt_service.id,
        "scope": "sms balance",
    }
    assert body["expires_in"] == claims["exp"] - claims["iat"]

    assert introspect(client, jwt_service, token).json() == {
        "active": True,
        "scope": "sms balance",
        "client_id": jwt_service.id,
        "sub": str(owner.id),
        "username": "john.doe@acme.inc",
        "token_type": "Bearer",
        "token_use": "access_token",
        "exp": now + 3600,
        "iat": now,
        "iss": ISSUER,
        "aud": ISSUER,
    }
    me = client.get("/me", headers={"authorization": f"Bearer {token}"})
    assert (me.status_code, me.json()["client_id"], me.json()["scope"]) == (200, jwt_service.id, "sms balance")


def test_a_revoked_jwt_is_inactive(
    client: TestClient, runtime: Runtime, clock: FrozenClock, jwt_service: Registered
) -> None:
    clock.current = int(time.time())
    token = client_credentials(client, jwt_service).json()["access_token"]
    assert is_active(client, jwt_service, token)
    response = client.post("/oauth/revoke", data={"token": token}, headers=jwt_service.basic())
    assert response.status_code == 200
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    assert stored(runtime, jti).revoked_at == clock.now()
    assert introspect(client, jwt_service, token).json() == {"active": False}
    assert client.get("/me", headers={"authorization": f"Bearer {token}"}).status_code == 401


def test_a_tampered_jwt_is_inactive(client: TestClient, clock: FrozenClock, jwt_service: Registered) -> None:
    clock.current = int(time.time())
    token = client_credentials(client, jwt_service).json()["access_token"]
    head, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["scope"] = "sms balance analytics"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert introspect(client, jwt_service, f"{head}.{forged}.{signature}").json() == {"active": False}


@pytest.mark.parametrize(
    "offset",
    [pytest.param(-30 * 86400, id="server-clock-behind-wall-clock"), pytest.param(30, id="server-clock-ahead")],
)
def test_jwt_validity_follows_the_server_clock(
    client: TestClient, clock: FrozenClock, jwt_service: Registered, offset: int
) -> None:
    """DESIGN: "Time comes from one clock object". A JWT is valid from its iat to its exp
    by that clock, as an opaque token is: a node whose clock runs a few seconds ahead of
    another's must not mint tokens the other refuses."""
    clock.current = int(time.time()) + offset
    token = client_credentials(client, jwt_service).json()["access_token"]
    assert is_active(client, jwt_service, token)
    assert client.get("/me", headers={"authorization": f"Bearer {token}"}).status_code == 200
    clock.advance(3600)
    assert introspect(client, jwt_service, token).json() == {"active": False}
