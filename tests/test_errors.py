"""The error model: one class per RFC error code, with the RFC's HTTP status, a public
description and an internal detail that never reaches the client."""

from __future__ import annotations

import pytest

from keyturn.core.errors import (
    ERRORS,
    AccessDenied,
    InsufficientScope,
    InvalidClient,
    InvalidGrant,
    InvalidRequest,
    InvalidScope,
    InvalidToken,
    OAuthError,
    RateLimited,
    ServerError,
    TemporarilyUnavailable,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    UnsupportedTokenType,
)

# class, error code, HTTP status, the RFC section its docstring cites, and the RFC's own words.
#
# RFC 6749 §5.2: token endpoint errors are 400 "unless specified otherwise"; invalid_client
# MAY be 401. RFC 6750 §3.1: invalid_token 401, insufficient_scope 403. RFC 7009 §2.2.1 uses
# the §5.2 format (400). The §4.1.2.1 codes travel in a redirect and the RFC gives them no
# status; server_error and temporarily_unavailable exist because 500 and 503 cannot be sent
# through a redirect, and access_denied is shown as 403 when no redirect is possible.
TABLE = [
    (
        InvalidRequest,
        "invalid_request",
        400,
        "RFC 6749 §5.2",
        "The request is missing a required parameter, includes an unsupported parameter value (other than "
        "grant type), repeats a parameter, includes multiple credentials, utilizes more than one mechanism "
        "for authenticating the client, or is otherwise malformed.",
    ),
    (
        InvalidClient,
        "invalid_client",
        401,
        "RFC 6749 §5.2",
        "Client authentication failed (e.g., unknown client, no client authentication included, or "
        "unsupported authentication method).",
    ),
    (
        InvalidGrant,
        "invalid_grant",
        400,
        "RFC 6749 §5.2",
        "The provided authorization grant (e.g., authorization code, resource owner credentials) or refresh "
        "token is invalid, expired, revoked, does not match the redirection URI used in the authorization "
        "request, or was issued to another client.",
    ),
    (
        UnauthorizedClient,
        "unauthorized_client",
        400,
        "RFC 6749 §5.2",
        "The authenticated client is not authorized to use this authorization grant type.",
    ),
    (
        UnsupportedGrantType,
        "unsupported_grant_type",
        400,
        "RFC 6749 §5.2",
        "The authorization grant type is not supported by the authorization server.",
    ),
    (
        InvalidScope,
        "invalid_scope",
        400,
        "RFC 6749 §5.2",
        "The requested scope is invalid, unknown, malformed, or exceeds the scope granted by the resource owner.",
    ),
    (
        AccessDenied,
        "access_denied",
        403,
        "RFC 6749 §4.1.2.1",
        "The resource owner or authorization server denied the request.",
    ),
    (
        UnsupportedResponseType,
        "unsupported_response_type",
        400,
        "RFC 6749 §4.1.2.1",
        "The authorization server does not support obtaining an authorization code using this method.",
    ),
    (
        ServerError,
        "server_error",
        500,
        "RFC 6749 §4.1.2.1",
        "The authorization server encountered an unexpected condition that prevented it from fulfilling the request.",
    ),
    (
        TemporarilyUnavailable,
        "temporarily_unavailable",
        503,
        "RFC 6749 §4.1.2.1",
        "The authorization server is currently unable to handle the request due to a temporary overloading "
        "or maintenance of the server.",
    ),
    (
        InvalidToken,
        "invalid_token",
        401,
        "RFC 6750 §3.1",
        "The access token provided is expired, revoked, malformed, or invalid for other reasons.",
    ),
    (
        InsufficientScope,
        "insufficient_scope",
        403,
        "RFC 6750 §3.1",
        "The request requires higher privileges than provided by the access token.",
    ),
    (
        UnsupportedTokenType,
        "unsupported_token_type",
        400,
        "RFC 7009 §2.2.1",
        "The authorization server does not support the revocation of the presented token type.",
    ),
]
CLASSES = [row[0] for row in TABLE]


def one_line(text: str | None) -> str:
    return " ".join((text or "").split())


# ---- codes and statuses ----


@pytest.mark.parametrize(("cls", "code", "status"), [row[:3] for row in TABLE], ids=[row[1] for row in TABLE])
def test_each_class_has_its_rfc_error_code_and_status(cls: type[OAuthError], code: str, status: int) -> None:
    assert cls.error == code
    assert cls.status_code == status
    error = cls()
    assert error.error == code
    assert error.status_code == status


def test_every_class_is_an_oauth_error_and_an_exception() -> None:
    for cls in CLASSES:
        assert issubclass(cls, OAuthError)
        assert issubclass(cls, Exception)


def test_error_codes_are_distinct() -> None:
    codes = [cls.error for cls in CLASSES]
    assert len(set(codes)) == len(codes)


# ---- the registry ----


def test_the_registry_maps_every_code_to_its_class() -> None:
    assert {row[1]: row[0] for row in TABLE} == ERRORS


def test_the_registry_keys_are_the_classes_own_codes() -> None:
    for code, cls in ERRORS.items():
        assert cls.error == code


# ---- docstrings ----


@pytest.mark.parametrize(("cls", "section", "words"), [(r[0], r[3], r[4]) for r in TABLE], ids=[r[1] for r in TABLE])
def test_every_class_docstring_cites_and_quotes_its_rfc(cls: type[OAuthError], section: str, words: str) -> None:
    doc = one_line(cls.__doc__)
    assert doc.startswith(section + ":")
    assert f'"{words}' in doc


# ---- the public body ----


@pytest.mark.parametrize("cls", CLASSES, ids=[cls.error for cls in CLASSES])
def test_to_dict_has_exactly_error_and_error_description(cls: type[OAuthError]) -> None:
    body = cls("Public text.", detail="client 42 sent a revoked token from 10.0.0.7").to_dict()
    assert body == {"error": cls.error, "error_description": "Public text."}


@pytest.mark.parametrize("cls", CLASSES, ids=[cls.error for cls in CLASSES])
def test_the_detail_never_reaches_the_body_or_the_message(cls: type[OAuthError]) -> None:
    detail = "secret-internal-detail-xyz"
    error = cls(detail=detail)
    assert error.detail == detail
    assert detail not in repr(error.to_dict())
    assert detail not in str(error)


@pytest.mark.parametrize("cls", CLASSES, ids=[cls.error for cls in CLASSES])
def test_without_a_description_the_default_is_used(cls: type[OAuthError]) -> None:
    error = cls()
    assert error.description == cls.default_description
    assert error.description
    assert error.to_dict()["error_description"] == cls.default_description
    assert error.detail is None


def test_an_empty_description_falls_back_to_the_default() -> None:
    assert InvalidGrant("").description == InvalidGrant.default_description


def test_the_message_is_the_public_description() -> None:
    error = InvalidRequest("Missing grant_type.", detail="form was empty")
    assert str(error) == "Missing grant_type."
    assert error.args == ("Missing grant_type.",)


def test_repr_shows_the_detail_for_the_logs() -> None:
    error = InvalidToken("Bad token.", detail="hash not found")
    assert repr(error) == "InvalidToken('Bad token.', detail='hash not found')"


def test_default_descriptions_differ_per_class() -> None:
    descriptions = [cls.default_description for cls in CLASSES]
    assert len(set(descriptions)) == len(descriptions)


# ---- extra attributes ----


def test_invalid_client_records_whether_basic_auth_was_used() -> None:
    assert InvalidClient().used_basic is False
    error = InvalidClient("Bad credentials.", detail="wrong secret", used_basic=True)
    assert error.used_basic is True
    assert error.to_dict() == {"error": "invalid_client", "error_description": "Bad credentials."}


def test_insufficient_scope_records_the_scope_needed_but_keeps_the_body_to_two_keys() -> None:
    assert InsufficientScope().scope == ""
    error = InsufficientScope(scope="sms balance")
    assert error.scope == "sms balance"
    assert set(error.to_dict()) == {"error", "error_description"}


# ---- the headers an error calls for ----


@pytest.mark.parametrize("cls", [c for c in CLASSES if c.status_code == 401], ids=lambda c: c.error)
def test_every_401_carries_a_challenge(cls: type[OAuthError]) -> None:
    # RFC 7235 §3.1: a 401 "MUST send a WWW-Authenticate header field".
    (header,) = cls().headers()
    assert header[0] == "WWW-Authenticate"
    assert header[1].split(" ", 1)[0] in ("Basic", "Bearer")


def test_invalid_client_challenges_basic_however_the_client_authenticated() -> None:
    for used_basic in (False, True):
        assert InvalidClient(used_basic=used_basic).headers() == [("WWW-Authenticate", 'Basic realm="keyturn"')]


def test_invalid_token_challenges_bearer_with_its_code() -> None:
    assert InvalidToken("Gone.").headers() == [
        ("WWW-Authenticate", 'Bearer realm="keyturn", error="invalid_token", error_description="Gone."')
    ]


def test_other_errors_call_for_no_header_but_a_rate_limit_for_retry_after() -> None:
    assert InvalidRequest().headers() == []
    assert RateLimited(7).headers() == [("Retry-After", "7")]
