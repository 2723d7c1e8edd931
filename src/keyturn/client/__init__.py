"""Keyturn's client SDK, for API users: ``httpx`` auth that gets, caches and renews
OAuth 2.0 tokens, API keys, and the authorization code flow with PKCE for web apps.

    import httpx
    from keyturn.client import ClientCredentialsAuth, discover

    server = discover("https://auth.example.com")
    auth = ClientCredentialsAuth(server, "CLIENT_ID", "CLIENT_SECRET", scope="account.read")
    with httpx.Client(auth=auth) as api:
        api.get("https://api.example.com/me")

It depends on ``httpx`` only, and imports nothing of Keyturn's server.
"""

from ._auth import ApiKeyAuth, ClientCredentialsAuth, RefreshTokenAuth
from ._env import from_env
from ._errors import IssuerMismatchError, OAuthClientError, StateMismatchError, UnexpectedResponseError
from ._flow import AuthorizationCodeFlow, AuthorizationRequest
from ._metadata import ServerMetadata, adiscover, discover
from ._tokens import TokenResponse

__all__ = [
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
