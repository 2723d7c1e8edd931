"""The WSGI side: KeyturnWSGIMiddleware and the protect_wsgi decorator, on blocking calls."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

import httpx
import pytest

from keyturn.resource import PRINCIPAL_KEY, InsufficientScope, KeyturnWSGIMiddleware, Principal, protect_wsgi

from .fakes import FakeAuthServer

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment


def whoami(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """Tells who called; /sms needs the scope sms, checked in the view."""
    principal: Principal | None = environ[PRINCIPAL_KEY]
    if environ["PATH_INFO"] == "/sms" and principal is not None and not principal.has_scopes("sms"):
        raise InsufficientScope(("sms",))
    body = json.dumps(None if principal is None else {"sub": principal.sub, "kind": principal.kind}).encode()
    start_response("200 OK", [("content-type", "application/json")])
    return [body]


def client_for(app: KeyturnWSGIMiddleware) -> httpx.Client:
    return httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://api.test")


def test_the_decorator_protects_a_wsgi_callable(auth_server: FakeAuthServer) -> None:
    @protect_wsgi(auth_server.verifier(), "balance", public_paths=["/getFreeList"])
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """The balance API."""
        return whoami(environ, start_response)

    assert getattr(app, "__name__", None) == "app"
    assert app.__doc__ == "The balance API."
    client = client_for(app)
    ok = client.get("/balance", headers={"Authorization": f"Bearer {auth_server.api_key(scopes='balance')}"})
    assert (ok.status_code, ok.json()) == (200, {"sub": "7", "kind": "api_key"})
    forbidden = client.get("/balance", headers={"Authorization": f"Bearer {auth_server.jwt(scopes='sms')}"})
    assert forbidden.status_code == 403
    assert forbidden.headers["www-authenticate"].endswith('scope="balance"')
    assert client.get("/getFreeList").json() is None


@pytest.mark.parametrize("name", ["api_key", "apikey"])
def test_middleware_reads_header_and_query(auth_server: FakeAuthServer, name: str) -> None:
    client = client_for(KeyturnWSGIMiddleware(whoami, auth_server.verifier()))
    assert client.get("/me", params={name: auth_server.api_key()}).status_code == 200
    assert client.get("/me", headers={"Authorization": f"Bearer {auth_server.opaque_token()}"}).status_code == 200
    refused = client.get("/me", params={name: auth_server.opaque_token()})
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]


def test_middleware_errors(auth_server: FakeAuthServer) -> None:
    client = client_for(KeyturnWSGIMiddleware(whoami, auth_server.verifier(), realm="sms"))
    missing = client.get("/me")
    assert (missing.status_code, missing.headers["www-authenticate"]) == (401, 'Bearer realm="sms"')
    assert missing.headers["content-length"] == str(len(missing.content))
    key = auth_server.api_key()
    both = client.get("/me", params={"api_key": key}, headers={"Authorization": f"Bearer {key}"})
    assert both.status_code == 400
    auth_server.down = True
    assert client.get("/me", params={"api_key": key}).status_code == 503


def test_an_insufficient_scope_raised_by_the_app_is_rendered(auth_server: FakeAuthServer) -> None:
    client = client_for(KeyturnWSGIMiddleware(whoami, auth_server.verifier()))
    response = client.get("/sms", params={"api_key": auth_server.api_key(scopes="balance")})
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"
    assert response.headers["www-authenticate"].endswith('scope="sms"')


def test_onlinesim_style(auth_server: FakeAuthServer) -> None:
    client = client_for(KeyturnWSGIMiddleware(whoami, auth_server.verifier(), error_style="onlinesim"))
    response = client.get("/getNumbersStats.php", params={"apikey": "wrong"})
    assert (response.status_code, response.json()) == (401, {"response": "ERROR_WRONG_KEY"})


def test_the_verifier_is_shared_between_wsgi_and_asgi_caches(auth_server: FakeAuthServer) -> None:
    verifier = auth_server.verifier()
    key = auth_server.api_key()
    client_for(KeyturnWSGIMiddleware(whoami, verifier)).get("/me", params={"api_key": key})
    client_for(KeyturnWSGIMiddleware(whoami, verifier)).get("/me", params={"api_key": key})
    assert auth_server.calls["/oauth/introspect"] == 1


def test_error_response_is_a_flask_error_handler_result(auth_server: FakeAuthServer) -> None:
    middleware = KeyturnWSGIMiddleware(whoami, auth_server.verifier(), realm="sms")
    body, status, headers = middleware.error_response(InsufficientScope(("sms", "balance")))
    assert status == 403
    assert json.loads(body)["error"] == "insufficient_scope"
    assert dict(headers)["www-authenticate"].endswith('scope="sms balance"')
