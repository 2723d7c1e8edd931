"""The authorization code flow for web applications (RFC 6749 §4.1) with PKCE (RFC 7636),
``state`` (RFC 6749 §10.12) and the ``iss`` check against mix-up attacks (RFC 9207)."""

from __future__ import annotations

import hmac
import secrets
import time
from base64 import urlsafe_b64encode
from collections.abc import Callable, Mapping, Sequence
from hashlib import sha256
from typing import NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx

from ._errors import IssuerMismatchError, OAuthClientError, StateMismatchError, UnexpectedResponseError
from ._metadata import ServerMetadata
from ._tokens import AuthMethod, ClientAuthentication, TokenResponse, read_token_response, scope_string

Callback = str | Mapping[str, str]


class AuthorizationRequest(NamedTuple):
    """Where to send the user, and what to keep (in the user's session) until they return."""

    url: str
    state: str
    code_verifier: str


def code_challenge(code_verifier: str) -> str:
    """RFC 7636 §4.2: ``BASE64URL-ENCODE(SHA256(ASCII(code_verifier)))``, without padding."""
    digest = sha256(code_verifier.encode("ascii")).digest()
    return urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def callback_parameters(callback: Callback) -> dict[str, str]:
    """The parameters of an authorization response: from the redirect URL the user came
    back to, its query string, or a mapping of them (a web framework's query params)."""
    if not isinstance(callback, str):
        return dict(callback)
    parts = urlsplit(callback)
    query = parts.query if parts.scheme or "?" in callback else callback.lstrip("?")
    parameters: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name in parameters:
            # RFC 6749 §3.1: "Request and response parameters MUST NOT be included more than once."
            raise UnexpectedResponseError(f"The authorization response repeats the parameter {name!r}.")
        parameters[name] = value
    return parameters


class AuthorizationCodeFlow:
    """Signs users in to a web application with the authorization code flow.

    ``start()`` gives the URL to redirect the user to, plus ``state`` and ``code_verifier``
    to keep in their session; ``finish()`` checks the URL they come back to and exchanges
    the code for tokens. A public client passes ``client_secret=None``.
    """

    def __init__(
        self,
        server: ServerMetadata,
        client_id: str,
        client_secret: str | None,
        redirect_uri: str,
        scope: str | Sequence[str] | None = None,
        *,
        auth_method: AuthMethod | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if server.authorization_endpoint is None:
            raise ValueError("The server metadata has no authorization_endpoint.")
        self.server = server
        self._client = ClientAuthentication.of(client_id, client_secret, auth_method)
        self.redirect_uri = redirect_uri
        self.scope = scope_string(scope)
        self._clock = clock

    @property
    def client_id(self) -> str:
        return self._client.client_id

    def start(self, **parameters: str) -> AuthorizationRequest:
        """A new authorization request (RFC 6749 §4.1.1); ``parameters`` are added to it."""
        state = secrets.token_urlsafe(32)
        # RFC 7636 §4.1: 43 to 128 unreserved characters; 48 random bytes make 64.
        code_verifier = secrets.token_urlsafe(48)
        query = {"response_type": "code", "client_id": self._client.client_id, "redirect_uri": self.redirect_uri}
        if self.scope:
            query["scope"] = self.scope
        query.update(state=state, code_challenge=code_challenge(code_verifier), code_challenge_method="S256")
        query.update(parameters)
        endpoint = self.server.authorization_endpoint
        assert endpoint is not None  # checked in __init__
        # RFC 6749 §3.1: the endpoint's own query component "MUST be retained".
        separator = "&" if urlsplit(endpoint).query else "?"
        return AuthorizationRequest(endpoint + separator + urlencode(query), state, code_verifier)

    def authorization_code(self, callback: Callback, expected_state: str) -> str:
        """The code of an authorization response, once ``state`` and ``iss`` check out;
        the authorization server's ``error`` as an OAuthClientError."""
        parameters = callback_parameters(callback)
        state = parameters.get("state")
        # RFC 6749 §10.12: the client MUST check that the response belongs to a request it sent.
        if state is None or not hmac.compare_digest(state.encode(), expected_state.encode()):
            raise StateMismatchError
        self._check_issuer(parameters.get("iss"))
        error = parameters.get("error")
        if error is not None:
            raise OAuthClientError(error, parameters.get("error_description"))
        code = parameters.get("code")
        if not code:
            raise UnexpectedResponseError("The authorization response has neither a code nor an error.")
        return code

    def _check_issuer(self, iss: str | None) -> None:
        if iss is None:
            # RFC 9207 §2.4: "Clients MUST reject authorization responses without the iss
            # parameter from authorization servers that do support the parameter".
            if self.server.authorization_response_iss_parameter_supported:
                raise IssuerMismatchError("The authorization response has no iss, which this server always sends.")
            return
        # RFC 9207 §2.4: the client "MUST compare" iss "to the issuer identifier of the
        # authorization server where it originally sent the authorization request" (a
        # simple string comparison, RFC 3986 §6.2.1).
        if iss != self.server.issuer:
            raise IssuerMismatchError(f"The authorization response comes from {iss!r}, not {self.server.issuer!r}.")

    def _token_request(self, code: str, code_verifier: str) -> httpx.Request:
        # RFC 6749 §4.1.3, RFC 7636 §4.5.
        parameters = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": code_verifier,
        }
        return self._client.token_request(self.server.token_endpoint, parameters)

    def finish(
        self, callback: Callback, expected_state: str, code_verifier: str, *, client: httpx.Client | None = None
    ) -> TokenResponse:
        """Check the authorization response and exchange its code for tokens."""
        request = self._token_request(self.authorization_code(callback, expected_state), code_verifier)
        if client is None:
            with httpx.Client(timeout=10.0) as own:
                response = own.send(request)
        else:
            response = client.send(request)
        return read_token_response(response, self._clock())

    async def afinish(
        self,
        callback: Callback,
        expected_state: str,
        code_verifier: str,
        *,
        client: httpx.AsyncClient | None = None,
    ) -> TokenResponse:
        """:meth:`finish` for asyncio and trio."""
        request = self._token_request(self.authorization_code(callback, expected_state), code_verifier)
        if client is None:
            async with httpx.AsyncClient(timeout=10.0) as own:
                response = await own.send(request)
        else:
            response = await client.send(request)
        return read_token_response(response, self._clock())
