"""Reading an authorization server's JSON answers, or saying clearly why they cannot be read."""

from __future__ import annotations

import json
from typing import Any

import httpx

from ._errors import OAuthClientError, UnexpectedResponseError


def json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    """The response body as a JSON object; UnexpectedResponseError if it is not one."""
    content_type = response.headers.get("content-type", "")
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        raise UnexpectedResponseError(
            f"The {what} is not JSON (HTTP {response.status_code}, content-type {content_type!r}).",
            response.status_code,
        ) from None
    if not isinstance(body, dict):
        raise UnexpectedResponseError(f"The {what} is not a JSON object.", response.status_code)
    return body


def oauth_error(response: httpx.Response, what: str) -> OAuthClientError:
    """The exception for an error answer: RFC 6749 §5.2's ``error`` and
    ``error_description`` when the body has them, UnexpectedResponseError otherwise."""
    body = json_object(response, what)
    error = body.get("error")
    description = body.get("error_description")
    if not isinstance(error, str) or not error:
        raise UnexpectedResponseError(
            f"The {what} is HTTP {response.status_code} without an RFC 6749 error code.", response.status_code
        )
    return OAuthClientError(error, description if isinstance(description, str) else None, response.status_code)


def required_string(body: dict[str, Any], name: str, what: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise UnexpectedResponseError(f"The {what} has no {name!r} (a non-empty string).")
    return value


def optional_string(body: dict[str, Any], name: str, what: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise UnexpectedResponseError(f"The {what} has a {name!r} that is not a string.")
    return value
