"""KeyturnMiddleware and require_scopes in a Starlette app: RFC 6750 errors and
challenges, scopes, public paths, header and query, the OnlineSIM error style."""

from __future__ import annotations

import inspect
import typing
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect

from keyturn.core.credentials import Kind, new_secret
from keyturn.resource import PRINCIPAL_KEY, KeyturnMiddleware, Principal, principal_of, require_scopes

from .fakes import FakeAuthServer

SEND_SMS = require_scopes("sms")
READ_BALANCE = require_scopes("balance")
BARE_CHALLENGE = 'Bearer realm="api"'


async def whoami(request: Request) -> JSONResponse:
    principal: Principal | None = request.state.principal
    assert request.scope[PRINCIPAL_KEY] is principal
    if principal is None:
        return JSONResponse(None)
    return JSONResponse(
        {
            "sub": principal.sub,
            "kind": principal.kind,
            "client_id": principal.client_id,
            "scopes": sorted(principal.scopes),
        }
    )


async def sms(request: Request) -> JSONResponse:
    principal = await SEND_SMS(request)
    return JSONResponse({"sent_by": principal.sub})


async def balance(request: Request) -> JSONResponse:
    principal = await READ_BALANCE(request)
    return JSONResponse({"sub": principal.sub})


async def free_list(request: Request) -> JSONResponse:
    return JSONResponse({"numbers": ["+4915735983768"], "principal": request.state.principal})


async def socket(websocket: WebSocket) -> None:
    await websocket.accept()
    principal = principal_of(websocket.scope)
    assert principal is not None
    await websocket.send_text(principal.sub)
    await websocket.close()


def make_app(auth_server: FakeAuthServer, **options: Any) -> Starlette:
    options.setdefault("public_paths", ["/getFreeList", "/docs/*"])
    return Starlette(
        routes=[
            Route("/whoami", whoami),
            Route("/sms", sms, methods=["POST"]),
            Route("/balance", balance),
            Route("/getFreeList", free_list),
            Route("/getFreeList/more", free_list),
            Route("/docs/{page}", lambda request: PlainTextResponse("docs")),
            WebSocketRoute("/ws", socket),
        ],
        middleware=[Middleware(KeyturnMiddleware, verifier=auth_server.verifier(), **options)],
    )


@pytest.fixture
def client(auth_server: FakeAuthServer) -> TestClient:
    return TestClient(make_app(auth_server))


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


# ---- accepted, and where the principal is ----


def test_api_key_in_the_header(client: TestClient, auth_server: FakeAuthServer) -> None:
    response = client.get("/whoami", headers=bearer(auth_server.api_key(scopes="sms")))
    assert response.status_code == 200
    assert response.json() == {"sub": "7", "kind": "api_key", "client_id": None, "scopes": ["sms"]}


@pytest.mark.parametrize("name", ["api_key", "apikey"])
def test_api_key_in_the_query(client: TestClient, auth_server: FakeAuthServer, name: str) -> None:
    response = client.get("/whoami", params={name: auth_server.api_key()})
    assert response.status_code == 200
    assert response.json()["kind"] == "api_key"


def test_opaque_and_jwt_access_tokens(client: TestClient, auth_server: FakeAuthServer) -> None:
    opaque = client.get("/whoami", headers=bearer(auth_server.opaque_token()))
    assert (opaque.status_code, opaque.json()["client_id"]) == (200, "app")
    signed = client.get("/whoami", headers=bearer(auth_server.jwt()))
    assert (signed.status_code, signed.json()["client_id"]) == (200, "jwt-app")


def test_configured_query_parameters(auth_server: FakeAuthServer) -> None:
    client = TestClient(make_app(auth_server, query_parameters=["key"]))
    assert client.get("/whoami", params={"key": auth_server.api_key()}).status_code == 200
    refused = client.get("/whoami", params={"api_key": auth_server.api_key()})
    assert (refused.status_code, refused.headers["www-authenticate"]) == (401, BARE_CHALLENGE)


# ---- public paths ----


def test_public_path_needs_nothing(client: TestClient, auth_server: FakeAuthServer) -> None:
    response = client.get("/getFreeList")
    assert response.status_code == 200
    assert response.json()["principal"] is None
    # Not even a look at a credential that is there.
    assert client.get("/getFreeList", params={"api_key": "garbage"}).status_code == 200
    assert sum(auth_server.calls.values()) == 0


def test_public_paths_are_exact_unless_they_end_in_a_star(client: TestClient) -> None:
    assert client.get("/getFreeList/more").status_code == 401
    assert client.get("/docs/intro").status_code == 200


def test_require_scopes_on_a_public_path_is_the_bare_challenge(auth_server: FakeAuthServer) -> None:
    client = TestClient(make_app(auth_server, public_paths=["/balance"]))
    response = client.get("/balance", headers=bearer(auth_server.api_key()))
    assert (response.status_code, response.headers["www-authenticate"]) == (401, BARE_CHALLENGE)


# ---- RFC 6750 §3 errors ----


def test_rfc6750_s3_1_no_credential_gets_the_bare_challenge(client: TestClient) -> None:
    response = client.get("/whoami")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == BARE_CHALLENGE
    assert "error" not in response.json()
    assert response.headers["cache-control"] == "no-store"


def test_rfc6750_s3_1_other_scheme_gets_the_bare_challenge(client: TestClient) -> None:
    response = client.get("/whoami", auth=("user", "pass"))
    assert (response.status_code, response.headers["www-authenticate"]) == (401, BARE_CHALLENGE)


@pytest.mark.parametrize("credential", ["garbage", new_secret(Kind.API_KEY), new_secret(Kind.REFRESH_TOKEN)])
def test_rfc6750_s3_1_invalid_token(client: TestClient, credential: str) -> None:
    response = client.get("/whoami", headers=bearer(credential))
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="api", error="invalid_token", error_description="')
    assert response.json()["error"] == "invalid_token"
    assert credential not in response.text


def test_rfc6750_s3_1_a_malformed_credential_is_refused_without_asking(
    client: TestClient, auth_server: FakeAuthServer
) -> None:
    response = client.get("/whoami", headers=bearer("not-a-token"))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        'Bearer realm="api", error="invalid_token", error_description="The credential is malformed."'
    )
    assert response.json() == {"error": "invalid_token", "error_description": "The credential is malformed."}
    assert sum(auth_server.calls.values()) == 0


def test_rfc6750_s2_3_an_accepted_access_token_is_still_refused_in_the_query(
    client: TestClient, auth_server: FakeAuthServer
) -> None:
    token = auth_server.opaque_token()
    assert client.get("/whoami", headers=bearer(token)).status_code == 200  # now cached
    response = client.get("/whoami", params={"api_key": token})
    assert response.status_code == 401
    assert response.json()["error_description"] == "Only API keys may be sent as a query parameter."


def test_rfc6750_s3_1_access_token_in_the_query_is_invalid_token(
    client: TestClient, auth_server: FakeAuthServer
) -> None:
    response = client.get("/whoami", params={"api_key": auth_server.opaque_token()})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert auth_server.calls["/oauth/introspect"] == 0


def test_rfc6750_s3_1_two_methods_is_invalid_request(client: TestClient, auth_server: FakeAuthServer) -> None:
    key = auth_server.api_key()
    response = client.get("/whoami", headers=bearer(key), params={"api_key": key})
    assert response.status_code == 400
    assert 'error="invalid_request"' in response.headers["www-authenticate"]
    assert response.json()["error"] == "invalid_request"


def test_rfc6750_s3_1_insufficient_scope_names_the_needed_scope(
    client: TestClient, auth_server: FakeAuthServer
) -> None:
    key = auth_server.api_key(scopes="balance")
    assert client.get("/balance", headers=bearer(key)).status_code == 200
    response = client.post("/sms", headers=bearer(key))
    assert response.status_code == 403
    assert response.headers["www-authenticate"] == (
        'Bearer realm="api", error="insufficient_scope", '
        'error_description="This request needs the scope: sms.", scope="sms"'
    )
    assert response.json() == {"error": "insufficient_scope", "error_description": "This request needs the scope: sms."}


def test_middleware_wide_scopes(auth_server: FakeAuthServer) -> None:
    client = TestClient(make_app(auth_server, scopes=["sms", "balance"], realm="sms-gateway"))
    assert client.get("/whoami", headers=bearer(auth_server.api_key(scopes="sms balance"))).status_code == 200
    response = client.get("/whoami", headers=bearer(auth_server.jwt(scopes="sms")))
    assert response.status_code == 403
    assert response.headers["www-authenticate"].startswith('Bearer realm="sms-gateway", error="insufficient_scope"')
    assert response.headers["www-authenticate"].endswith('scope="sms balance"')


def test_unreachable_authorization_server_is_503_never_accept(client: TestClient, auth_server: FakeAuthServer) -> None:
    key = auth_server.api_key()
    auth_server.down = True
    response = client.get("/whoami", headers=bearer(key))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert "www-authenticate" not in response.headers
    assert response.json()["error"] == "temporarily_unavailable"


# ---- the OnlineSIM error style ----


@pytest.mark.parametrize(
    ("params", "headers", "status"),
    [
        ({}, {}, 401),
        ({"api_key": new_secret(Kind.API_KEY)}, {}, 401),
        ({}, {"Authorization": "Bearer garbage"}, 401),
    ],
)
def test_onlinesim_error_wrong_key(
    auth_server: FakeAuthServer, params: dict[str, str], headers: dict[str, str], status: int
) -> None:
    client = TestClient(make_app(auth_server, error_style="onlinesim"))
    response = client.get("/whoami", params=params, headers=headers)
    assert response.status_code == status
    assert response.json() == {"response": "ERROR_WRONG_KEY"}
    assert response.headers["www-authenticate"].startswith('Bearer realm="api"')


def test_onlinesim_style_keeps_403_and_503(auth_server: FakeAuthServer) -> None:
    client = TestClient(make_app(auth_server, error_style="onlinesim"))
    forbidden = client.post("/sms", headers=bearer(auth_server.api_key(scopes="balance")))
    assert (forbidden.status_code, forbidden.json()) == (403, {"response": "ERROR_WRONG_KEY"})
    assert 'scope="sms"' in forbidden.headers["www-authenticate"]
    key = auth_server.api_key()
    auth_server.down = True
    unavailable = client.get("/whoami", headers=bearer(key))
    assert unavailable.status_code == 503
    assert unavailable.json()["error"] == "temporarily_unavailable"


def test_an_unknown_error_style_is_refused(auth_server: FakeAuthServer) -> None:
    with pytest.raises(ValueError, match="error_style"):
        KeyturnMiddleware(PlainTextResponse("x"), auth_server.verifier(), error_style="plain")  # type: ignore[arg-type]


# ---- WebSocket, lifespan, the dependency's shape ----


def test_websocket_is_authenticated(client: TestClient, auth_server: FakeAuthServer) -> None:
    with client.websocket_connect("/ws", headers=bearer(auth_server.api_key())) as websocket:
        assert websocket.receive_text() == "7"
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/ws"):
        pass
    assert refused.value.code == 1008


def test_lifespan_shutdown_closes_the_verifiers_client(auth_server: FakeAuthServer) -> None:
    app = make_app(auth_server)
    closed: list[bool] = []
    middleware = KeyturnMiddleware(app, auth_server.verifier(), public_paths=["/getFreeList"])

    async def aclose() -> None:
        closed.append(True)

    middleware.verifier.aclose = aclose  # type: ignore[method-assign]
    with TestClient(middleware) as client:
        assert client.get("/getFreeList").status_code == 200
        assert closed == []
    assert closed == [True]


def test_require_scopes_is_a_fastapi_dependency() -> None:
    # FastAPI injects the request by the parameter's resolved type.
    hints = typing.get_type_hints(SEND_SMS)
    assert hints == {"request": HTTPConnection, "return": Principal}
    assert inspect.signature(SEND_SMS).parameters["request"].annotation is HTTPConnection


@pytest.mark.anyio
async def test_require_scopes_without_the_middleware_says_so() -> None:
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": []})
    with pytest.raises(RuntimeError, match="KeyturnMiddleware"):
        await SEND_SMS(request)
