"""The authorization endpoint (RFC 6749 §3.1, §4.1.1, §4.2.1): validating a request,
and answering it once the user has decided.

Order matters (RFC 6749 §4.1.2.1): the client and the redirect URI are checked first,
and a problem with either is shown to the user (``InvalidClientRequest``), never sent
to an unverified URI. Every later problem is an ``AuthorizeError`` that goes back to the
client's redirect URI.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from . import pkce
from .codes import save_new_code
from .context import Context
from .errors import (
    AccessDenied,
    InvalidRequest,
    InvalidScope,
    OAuthError,
    UnauthorizedClient,
    UnsupportedResponseType,
)
from .issuing import audit_issuance, mint, new_grant_id
from .models import Client, Consent, GrantType
from .redirect_uris import redirect_uri_matches
from .scopes import scopes_for_client
from .service import Flow, in_unit
from .unit_of_work import UnitOfWork

RESPONSE_TYPES = ("code", "token")
#: The parameters /authorize reads; a repeated one is invalid_request (RFC 6749 §3.1).
PARAMETERS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
)


class LookUp:
    """The type of ``LOOK_UP``: the caller has not read the consent; read it."""


LOOK_UP = LookUp()


class InvalidClientRequest(Exception):
    """The client or redirect URI is unknown or does not match: shown on an error page
    with status 400, never redirected (RFC 6749 §4.1.2.1, RFC 9700 §4.1.3)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    client: Client
    redirect_uri: str
    #: Whether the request named the redirect URI (then the token request must repeat it).
    redirect_uri_given: bool
    response_type: str
    scopes: tuple[str, ...]
    state: str | None
    code_challenge: str | None
    code_challenge_method: str | None

    def as_params(self) -> dict[str, str]:
        """The request as query/form parameters (to carry it through login and consent)."""
        params = {"response_type": self.response_type, "client_id": self.client.client_id}
        if self.redirect_uri_given:
            params["redirect_uri"] = self.redirect_uri
        params["scope"] = " ".join(self.scopes)
        for name in ("state", "code_challenge", "code_challenge_method"):
            value = getattr(self, name)
            if value is not None:
                params[name] = value
        return params


class AuthorizeError(Exception):
    """An error to send back to the client's redirect URI."""

    def __init__(self, error: OAuthError, redirect_uri: str, state: str | None, fragment: bool) -> None:
        super().__init__(error.description)
        self.error = error
        self.redirect_uri = redirect_uri
        self.state = state
        self.fragment = fragment


def single(params: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = [v for v in params.get(name, ()) if v != ""]
    return values[0] if values else None


def validate(ctx: Context, params: Mapping[str, Sequence[str]]) -> AuthorizationRequest:
    """Checks an authorization request; raises InvalidClientRequest or AuthorizeError."""
    client_ids = params.get("client_id", [])
    if len(client_ids) != 1 or not client_ids[0]:
        raise InvalidClientRequest("The request must name exactly one client_id.")
    client = ctx.clients.get(client_ids[0])
    if client is None:
        raise InvalidClientRequest("The application that sent you here is not registered.")

    redirect_uris = params.get("redirect_uri", [])
    if len(redirect_uris) > 1:
        raise InvalidClientRequest("The request repeats redirect_uri.")
    given = redirect_uris[0] if redirect_uris and redirect_uris[0] else None
    if given is None:
        # RFC 6749 §3.1.2.3: with several registered URIs the request must name one.
        if len(client.redirect_uris) != 1:
            raise InvalidClientRequest("The request must name its redirect_uri.")
        redirect_uri = client.redirect_uris[0]
    else:
        if not redirect_uri_matches(client.redirect_uris, given):
            raise InvalidClientRequest("The redirect_uri is not registered for this application.")
        redirect_uri = given

    state = single(params, "state")
    response_types = params.get("response_type", [])
    fragment = "token" in response_types

    def fail(error: OAuthError) -> AuthorizeError:
        return AuthorizeError(error, redirect_uri, state, fragment)

    for name in PARAMETERS:
        if len(params.get(name, ())) > 1:
            raise fail(InvalidRequest(f"The parameter {name} is repeated."))
    response_type = single(params, "response_type")
    if response_type is None:
        raise fail(InvalidRequest("The response_type parameter is missing."))
    if response_type not in RESPONSE_TYPES:
        # The server's own words only: this description goes back to the client's page.
        raise fail(
            UnsupportedResponseType(
                "Only response_type=code (and token, where allowed) is supported.",
                detail=f"response_type {response_type[:100]!r}",
            )
        )
    if response_type == "token" and not client.allow_implicit:
        raise fail(UnauthorizedClient("This application may not use the implicit flow."))
    if response_type == "code" and GrantType.AUTHORIZATION_CODE.value not in client.grant_types:
        raise fail(UnauthorizedClient("This application may not use the authorization code flow."))

    settings = ctx.settings
    try:
        scopes = scopes_for_client(single(params, "scope"), client.scopes, settings.scopes, settings.default_scopes)
    except InvalidScope as exc:
        raise fail(exc) from None
    if not scopes:
        raise fail(InvalidScope("No scope was requested and no default scope applies."))

    challenge = single(params, "code_challenge")
    method = single(params, "code_challenge_method")
    if response_type == "code":
        if challenge is None:
            if method is not None:
                raise fail(InvalidRequest("code_challenge_method was sent without a code_challenge."))
            # RFC 9700 §2.1.1: public clients MUST use PKCE; a setting extends it to all.
            if not client.confidential or settings.require_pkce:
                raise fail(InvalidRequest("PKCE is required: send code_challenge with code_challenge_method=S256."))
        else:
            # RFC 7636 §4.3: a missing method means "plain", which Keyturn does not accept.
            if method not in pkce.METHODS:
                raise fail(InvalidRequest("code_challenge_method must be S256."))
            if not pkce.valid_challenge(challenge):
                raise fail(InvalidRequest("The code_challenge must be 43 base64url characters (RFC 7636 section 4.2)."))
    elif challenge is not None or method is not None:
        raise fail(InvalidRequest("PKCE applies to response_type=code only."))

    return AuthorizationRequest(
        client=client,
        redirect_uri=redirect_uri,
        redirect_uri_given=given is not None,
        response_type=response_type,
        scopes=scopes,
        state=state,
        code_challenge=challenge,
        code_challenge_method=method if challenge is not None else None,
    )


def consent_needed(
    ctx: Context, request: AuthorizationRequest, account_id: int, consent: Consent | LookUp | None = LOOK_UP
) -> bool:
    """False when the user already granted these scopes to this client (and the client
    remembers consent), or when the client is first-party. ``consent``: the account's
    consent to this client if the caller has read it already."""
    client = request.client
    if client.first_party:
        return False
    if not client.remember_consent:
        return True
    if isinstance(consent, LookUp):
        consent = ctx.store.get_consent(account_id, client.client_id)
    return consent is None or not set(request.scopes) <= set(consent.scopes)


def approve_if_consented(
    ctx: Context, request: AuthorizationRequest, account_id: int, consent: Consent | LookUp | None = LOOK_UP
) -> Flow[str | None]:
    """The answer to a request the user needs not be asked about again (remembered
    consent, first-party client), or None when the consent page must be shown."""
    if consent_needed(ctx, request, account_id, consent):
        return None
    return (yield from approve(ctx, request, account_id, request.scopes, remembered=True))


def granted_scopes(request: AuthorizationRequest, ticked: Sequence[str]) -> tuple[str, ...]:
    """The scopes the user left ticked, plus those the client marked required; always
    within what was requested (granular consent)."""
    required = set(request.client.required_scopes)
    chosen = set(ticked)
    return tuple(s for s in request.scopes if s in required or s in chosen)


def approve(
    ctx: Context, request: AuthorizationRequest, account_id: int, scopes: tuple[str, ...], *, remembered: bool = False
) -> Flow[str]:
    """The redirect URL that answers an approved request: a code, or (implicit) a token;
    the consent, the code or token and their audit events are one unit of work.
    ``remembered``: the consent is known to cover the scopes already (nothing to save)."""
    if not scopes:
        return deny(ctx, request, "No permission was granted.")
    return (yield from in_unit(ctx, lambda unit: _approved(ctx, unit, request, account_id, scopes, remembered)))


def _approved(
    ctx: Context,
    unit: UnitOfWork,
    request: AuthorizationRequest,
    account_id: int,
    scopes: tuple[str, ...],
    remembered: bool,
) -> str:
    now = ctx.clock.now()
    client = request.client
    if client.remember_consent and not client.first_party and not remembered:
        previous = ctx.store.get_consent(account_id, client.client_id)
        # A remembered consent that already covers these scopes is not written again.
        if previous is None or not set(scopes) <= set(previous.scopes):
            union = tuple(dict.fromkeys((*(previous.scopes if previous else ()), *scopes)))
            unit.save_consent(Consent(account_id, client.client_id, union, now, now))
            unit.record(
                "consent.granted",
                now,
                account_id=account_id,
                client_id=client.client_id,
                detail={"scope": " ".join(scopes)},
            )
    issuer = ctx.settings.issuer
    if request.response_type == "token":
        # RFC 6749 §4.2.2: "The authorization server MUST NOT issue a refresh token."
        grant_id = new_grant_id()
        issued, records = mint(ctx, client, account_id=account_id, scopes=scopes, grant_id=grant_id, with_refresh=False)
        unit.save_tokens(records)
        audit_issuance(ctx, unit, client, account_id, "implicit", grant_id)
        body: dict[str, Any] = {
            "access_token": issued.access_token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "scope": " ".join(scopes),
        }
        if request.state is not None:
            body["state"] = request.state
        body["iss"] = issuer
        return with_params(request.redirect_uri, body, fragment=True)
    code = save_new_code(
        ctx,
        unit,
        client,
        account_id=account_id,
        scopes=scopes,
        redirect_uri=request.redirect_uri if request.redirect_uri_given else None,
        code_challenge=request.code_challenge,
        code_challenge_method=request.code_challenge_method,
    )
    response = {"code": code}
    if request.state is not None:
        response["state"] = request.state
    # RFC 9207 §2: the "iss" parameter in the authorization response.
    response["iss"] = issuer
    return with_params(request.redirect_uri, response, fragment=False)


def deny(ctx: Context, request: AuthorizationRequest, description: str = "The user denied the request.") -> str:
    error = AuthorizeError(
        AccessDenied(description), request.redirect_uri, request.state, request.response_type == "token"
    )
    return error_redirect(ctx, error)


def error_redirect(ctx: Context, error: AuthorizeError) -> str:
    """RFC 6749 §4.1.2.1 / §4.2.2.1 with RFC 9207's iss."""
    params = error.error.to_dict()
    if error.state is not None:
        params["state"] = error.state
    params["iss"] = ctx.settings.issuer
    return with_params(error.redirect_uri, params, fragment=error.fragment)


def with_params(uri: str, params: Mapping[str, Any], *, fragment: bool) -> str:
    """The redirect URI with the response's parameters (web's Location percent-encodes
    what an old registration may hold that is not URL-safe)."""
    encoded = urlencode(params)
    if fragment:
        return f"{uri}#{encoded}"
    # RFC 6749 §3.1.2: the registered URI's own query component "MUST be retained".
    return f"{uri}{'&' if '?' in uri else '?'}{encoded}"
