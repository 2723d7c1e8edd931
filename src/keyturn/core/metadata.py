"""Authorization server metadata (RFC 8414)."""

from __future__ import annotations

from typing import Any

from keyturn.settings import Settings

#: The protocol surface: paths are part of Keyturn's contract.
AUTHORIZE_PATH = "/oauth/authorize"
TOKEN_PATH = "/oauth/token"
INTROSPECT_PATH = "/oauth/introspect"
REVOKE_PATH = "/oauth/revoke"
JWKS_PATH = "/oauth/jwks"
ME_PATH = "/me"
METADATA_PATH = "/.well-known/oauth-authorization-server"

CLIENT_AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")


def server_metadata(settings: Settings) -> dict[str, Any]:
    issuer = settings.issuer
    metadata: dict[str, Any] = {
        # RFC 8414 §3.3: "The issuer value returned MUST be identical to the
        # authorization server's issuer identifier value".
        "issuer": issuer,
        "authorization_endpoint": issuer + AUTHORIZE_PATH,
        "token_endpoint": issuer + TOKEN_PATH,
        "jwks_uri": issuer + JWKS_PATH,
        "introspection_endpoint": issuer + INTROSPECT_PATH,
        "revocation_endpoint": issuer + REVOKE_PATH,
        "response_types_supported": ["code", "token"],
        "response_modes_supported": ["query", "fragment"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials", "implicit"],
        "token_endpoint_auth_methods_supported": list(CLIENT_AUTH_METHODS),
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": list(CLIENT_AUTH_METHODS),
        "code_challenge_methods_supported": ["S256"],
        # RFC 9207: authorization responses carry `iss`.
        "authorization_response_iss_parameter_supported": True,
    }
    if settings.scopes:
        metadata["scopes_supported"] = list(settings.scopes)
    return metadata
