"""Rendering refusals (RFC 6750 §3): the challenge, the body, the OnlineSIM style."""

from __future__ import annotations

import json

import pytest

from keyturn.resource import AuthServerUnavailable, InsufficientScope, InvalidRequest, InvalidToken, MissingCredential
from keyturn.resource._errors import render


def test_rfc6750_s3_challenge_values_stay_quotable() -> None:
    response = render(InvalidToken('a "quoted" \\ description\n'), realm='my "api"', style="rfc6750")
    challenge = dict(response.headers)["www-authenticate"]
    assert challenge == (
        'Bearer realm="my \'api\'", error="invalid_token", error_description="a \'quoted\' / description?"'
    )


@pytest.mark.parametrize(
    ("exc", "status", "error"),
    [
        (MissingCredential(), 401, None),
        (InvalidRequest(), 400, "invalid_request"),
        (InvalidToken(), 401, "invalid_token"),
        (InsufficientScope(("sms",)), 403, "insufficient_scope"),
    ],
)
def test_statuses_and_bodies(exc: InvalidToken, status: int, error: str | None) -> None:
    response = render(exc, realm="api", style="rfc6750")
    assert response.status == status
    body = json.loads(response.body)
    assert body.get("error") == error
    assert body["error_description"] == exc.description
    onlinesim = render(exc, realm="api", style="onlinesim")
    assert (onlinesim.status, json.loads(onlinesim.body)) == (status, {"response": "ERROR_WRONG_KEY"})
    assert dict(onlinesim.headers)["www-authenticate"] == dict(response.headers)["www-authenticate"]


def test_the_detail_is_never_sent() -> None:
    response = render(InvalidToken(detail="kid abc unknown"), realm="api", style="rfc6750")
    assert b"abc" not in response.body
    assert "abc" not in dict(response.headers)["www-authenticate"]


def test_unavailable_has_no_challenge_and_a_retry_after() -> None:
    response = render(AuthServerUnavailable(detail="connection refused"), realm="api", style="onlinesim")
    headers = dict(response.headers)
    assert response.status == 503
    assert "www-authenticate" not in headers
    assert headers["retry-after"] == "5"
    assert json.loads(response.body)["error"] == "temporarily_unavailable"
