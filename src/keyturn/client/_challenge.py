"""Reading a protected resource's ``WWW-Authenticate`` challenge (RFC 6750 §3, RFC 9110 §11.6.1)."""

from __future__ import annotations

import re

import httpx

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
# An auth-param (name=token or name="quoted string"), or a bare token: a challenge's scheme
# (or a token68, which is never "bearer" and so does no harm).
_ITEM = re.compile(rf'(?P<name>{_TOKEN})(?:\s*=\s*(?P<value>"(?:[^"\\]|\\.)*"|{_TOKEN}))?')
_ESCAPE = re.compile(r"\\(.)")


def bearer_error(response: httpx.Response) -> str | None:
    """The ``error`` of the response's Bearer challenge, if it has one."""
    for header in response.headers.get_list("www-authenticate"):
        scheme = ""
        for item in _ITEM.finditer(header):
            name, value = item["name"], item["value"]
            if value is None:
                scheme = name.lower()
            elif scheme == "bearer" and name.lower() == "error":
                return _ESCAPE.sub(r"\1", value[1:-1]) if value.startswith('"') else value
    return None


def rejects_token(response: httpx.Response) -> bool:
    """RFC 6750 §3.1: 401 with ``error="invalid_token"``: "The access token provided is
    expired, revoked, malformed, or invalid for other reasons. ... The client MAY request
    a new access token and retry the protected resource request." """
    return response.status_code == 401 and bearer_error(response) == "invalid_token"
