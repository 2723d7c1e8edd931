"""A fake Keyturn authorization server on httpx.MockTransport, and a clock to move by hand."""

from __future__ import annotations

import json
import time
from base64 import b64decode
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from keyturn.core.credentials import Kind, new_secret
from keyturn.resource import Verifier

ISSUER = "https://auth.example.test"
RS_CLIENT_ID = "gateway"
RS_CLIENT_SECRET = "kt_cs_gateway-secret"


class FakeClock:
    def __init__(self) -> None:
        self.wall = float(int(time.time()))
        self.mono = 1000.0

    def time(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


@dataclass
class SigningKey:
    kid: str
    private: ec.EllipticCurvePrivateKey

    def jwk(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.private.public_key()))
        return {**public, "kid": self.kid, "alg": "ES256", "use": "sig"}


def new_key(kid: str) -> SigningKey:
    return SigningKey(kid, ec.generate_private_key(ec.SECP256R1()))


@dataclass
class FakeAuthServer:
    """Answers metadata, JWKS and introspection the way Keyturn does."""

    clock: FakeClock
    keys: list[SigningKey] = field(default_factory=lambda: [new_key("key-1")])
    #: credential -> introspection response (missing: inactive)
    credentials: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    down: bool = False
    introspection_status: int = 200
    metadata_issuer: str = ISSUER
    extra_jwks: list[dict[str, Any]] = field(default_factory=list)
    seen: list[httpx.Request] = field(default_factory=list)

    # ---- issuing ----

    def api_key(self, scopes: str = "sms balance contacts", sub: str = "7") -> str:
        key = new_secret(Kind.API_KEY)
        self.credentials[key] = self._active("api_key", sub=sub, scope=scopes, client_id=None, exp=None)
        return key

    def opaque_token(
        self, scopes: str = "sms balance", sub: str = "7", ttl: int = 3600, use: str = "access_token"
    ) -> str:
        token = new_secret(Kind.REFRESH_TOKEN if use == "refresh_token" else Kind.ACCESS_TOKEN)
        self.credentials[token] = self._active(
            use, sub=sub, scope=scopes, client_id="app", exp=int(self.clock.time()) + ttl
        )
        return token

    def jwt(
        self,
        scopes: str = "sms balance",
        *,
        key: SigningKey | None = None,
        headers: Mapping[str, Any] | None = None,
        ttl: int = 3600,
        **claims: Any,
    ) -> str:
        key = key or self.keys[0]
        now = int(self.clock.time())
        body = {
            "iss": ISSUER,
            "sub": "7",
            "aud": ISSUER,
            "exp": now + ttl,
            "iat": now,
            "jti": f"jti-{len(self.credentials)}",
            "client_id": "jwt-app",
            "scope": scopes,
            **claims,
        }
        body = {k: v for k, v in body.items() if v is not None}
        token = jwt.encode(
            body, key.private, algorithm="ES256", headers={"kid": key.kid, "typ": "at+jwt", **(headers or {})}
        )
        self.credentials[token] = self._active(
            "access_token", sub="7", scope=scopes, client_id="jwt-app", exp=body.get("exp")
        )
        return token

    def revoke(self, credential: str) -> None:
        self.credentials.pop(credential)

    def _active(self, use: str, *, sub: str, scope: str, client_id: str | None, exp: int | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "active": True,
            "scope": scope,
            "sub": sub,
            "username": "user@example.com",
            "token_use": use,
            "iat": int(self.clock.time()),
            "iss": ISSUER,
            "aud": ISSUER,
        }
        if use != "refresh_token":
            body["token_type"] = "Bearer"
        if client_id is not None:
            body["client_id"] = client_id
        if exp is not None:
            body["exp"] = exp
        return body

    # ---- answering ----

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        path = request.url.path
        self.calls[path] += 1
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if path == "/.well-known/oauth-authorization-server":
            return httpx.Response(
                200,
                json={
                    "issuer": self.metadata_issuer,
                    "jwks_uri": ISSUER + "/oauth/jwks",
                    "introspection_endpoint": ISSUER + "/oauth/introspect",
                },
            )
        if path == "/oauth/jwks":
            return httpx.Response(200, json={"keys": [k.jwk() for k in self.keys] + self.extra_jwks})
        if path == "/oauth/introspect":
            if self.introspection_status != 200:
                return httpx.Response(self.introspection_status, json={"error": "invalid_client"})
            assert request.method == "POST"
            scheme, _, encoded = request.headers["authorization"].partition(" ")
            assert scheme == "Basic"
            assert b64decode(encoded).decode() == f"{RS_CLIENT_ID}:{RS_CLIENT_SECRET}"
            token = parse_qs(request.content.decode())["token"][0]
            return httpx.Response(200, json=self.credentials.get(token, {"active": False}))
        return httpx.Response(404)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)

    def verifier(self, **options: Any) -> Verifier:
        transport = self.transport()
        return Verifier(
            ISSUER,
            RS_CLIENT_ID,
            RS_CLIENT_SECRET,
            http_client=httpx.Client(transport=transport),
            async_http_client=httpx.AsyncClient(transport=transport),
            clock=self.clock,
            **options,
        )


VerifyFunction = Callable[[Verifier, str], Any]
