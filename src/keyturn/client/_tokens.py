"""Token requests (RFC 6749 §3.2, §2.3.1) and token responses (§5.1, §5.2)."""

from __future__ import annotations

from base64 import b64encode
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args
from urllib.parse import quote_plus

import httpx

from ._errors import UnexpectedResponseError
from ._responses import json_object, oauth_error, optional_string, required_string

AuthMethod = Literal["client_secret_basic", "client_secret_post", "none"]
AUTH_METHODS: tuple[str, ...] = get_args(AuthMethod)
_WHAT = "token response"


@dataclass(frozen=True, slots=True)
class TokenResponse:
    """A successful token response (RFC 6749 §5.1). The tokens are left out of ``repr``."""

    access_token: str = field(repr=False)
    token_type: str
    expires_in: int | None
    scope: str | None
    refresh_token: str | None = field(repr=False)
    #: When the access token expires, in seconds since the epoch by this client's clock
    #: (the time the response arrived plus ``expires_in``); None when the server gave no
    #: lifetime.
    expires_at: float | None
    #: The whole response body (``created_at`` and any other member).
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class ClientAuthentication:
    """How the client proves who it is at the token endpoint (RFC 6749 §2.3)."""

    client_id: str
    client_secret: str | None = field(repr=False)
    method: str

    @classmethod
    def of(cls, client_id: str, client_secret: str | None, method: str | None) -> ClientAuthentication:
        """``method`` defaults to client_secret_basic with a secret, none (a public client) without."""
        if method is None:
            method = "none" if client_secret is None else "client_secret_basic"
        if method not in AUTH_METHODS:
            raise ValueError(f"auth_method must be one of {', '.join(AUTH_METHODS)}, not {method!r}.")
        if method == "none" and client_secret is not None:
            raise ValueError("auth_method 'none' is for public clients, which have no client_secret.")
        if method != "none" and client_secret is None:
            raise ValueError(f"auth_method {method!r} needs a client_secret.")
        if not client_id:
            raise ValueError("client_id is empty.")
        return cls(client_id, client_secret, method)

    def token_request(self, url: str, parameters: Mapping[str, str]) -> httpx.Request:
        """A POST to the token endpoint, form-encoded as RFC 6749 §3.2 asks."""
        form = dict(parameters)
        headers = {"accept": "application/json"}
        if self.method == "client_secret_basic":
            assert self.client_secret is not None
            # RFC 6749 §2.3.1: the id and the secret are form-urlencoded before they become
            # the Basic user-id and password.
            pair = f"{quote_plus(self.client_id)}:{quote_plus(self.client_secret)}"
            headers["authorization"] = "Basic " + b64encode(pair.encode()).decode("ascii")
        elif self.method == "client_secret_post":
            assert self.client_secret is not None
            form.update(client_id=self.client_id, client_secret=self.client_secret)
        else:
            # RFC 6749 §3.2.1: a public client sends its client_id to identify itself.
            form["client_id"] = self.client_id
        return httpx.Request("POST", url, data=form, headers=headers)


def scope_string(scope: str | Sequence[str] | None) -> str | None:
    """RFC 6749 §3.3: scopes are one space-delimited string."""
    if scope is None or isinstance(scope, str):
        return scope or None
    return " ".join(scope) or None


def read_token_response(response: httpx.Response, now: float) -> TokenResponse:
    """The token response, or OAuthClientError with the server's error code (§5.2)."""
    if response.status_code != 200:
        raise oauth_error(response, _WHAT)
    body = json_object(response, _WHAT)
    access_token = required_string(body, "access_token", _WHAT)
    token_type = required_string(body, "token_type", _WHAT)
    if token_type.lower() != "bearer":
        # RFC 6749 §7.1: "The client MUST NOT use an access token if it does not
        # understand the token type."
        raise UnexpectedResponseError(f"The token type {token_type!r} is not Bearer (RFC 6750).")
    expires_in = _lifetime(body.get("expires_in"))
    return TokenResponse(
        access_token=access_token,
        token_type=token_type,
        expires_in=expires_in,
        scope=optional_string(body, "scope", _WHAT),
        refresh_token=optional_string(body, "refresh_token", _WHAT),
        expires_at=None if expires_in is None else now + expires_in,
        raw=body,
    )


def _lifetime(value: object) -> int | None:
    """``expires_in``: seconds, a JSON number (some servers send it as a string)."""
    if value is None:
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise UnexpectedResponseError(f"The {_WHAT} has an expires_in that is not a number of seconds.")
    return int(value)
