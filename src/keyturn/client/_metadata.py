"""Authorization server metadata (RFC 8414): discovered, or written out by hand."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from ._errors import IssuerMismatchError, UnexpectedResponseError
from ._responses import json_object, optional_string, required_string

WELL_KNOWN = "/.well-known/oauth-authorization-server"
_WHAT = "authorization server metadata"


@dataclass(frozen=True, slots=True)
class ServerMetadata:
    """The part of RFC 8414 §2 metadata that a client uses.

    Build it with :func:`discover`, or by hand from the endpoints your provider documents:
    ``ServerMetadata(issuer="https://auth.example.com", token_endpoint="https://auth.example.com/oauth/token")``.
    """

    issuer: str
    token_endpoint: str
    authorization_endpoint: str | None = None
    revocation_endpoint: str | None = None
    introspection_endpoint: str | None = None
    jwks_uri: str | None = None
    scopes_supported: tuple[str, ...] = ()
    code_challenge_methods_supported: tuple[str, ...] = ()
    #: RFC 9207 §3: when true, authorization responses carry ``iss`` and the client
    #: MUST reject one without it.
    authorization_response_iss_parameter_supported: bool = False
    #: The whole metadata document as the server sent it.
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> ServerMetadata:
        """Metadata from an RFC 8414 document; UnexpectedResponseError if a member is not
        of the type §2 gives it."""
        body = dict(document)
        iss_supported = body.get("authorization_response_iss_parameter_supported", False)
        if not isinstance(iss_supported, bool):
            raise UnexpectedResponseError(
                f"The {_WHAT} has a non-boolean authorization_response_iss_parameter_supported."
            )
        return cls(
            issuer=required_string(body, "issuer", _WHAT),
            token_endpoint=required_string(body, "token_endpoint", _WHAT),
            authorization_endpoint=optional_string(body, "authorization_endpoint", _WHAT),
            revocation_endpoint=optional_string(body, "revocation_endpoint", _WHAT),
            introspection_endpoint=optional_string(body, "introspection_endpoint", _WHAT),
            jwks_uri=optional_string(body, "jwks_uri", _WHAT),
            scopes_supported=_strings(body, "scopes_supported"),
            code_challenge_methods_supported=_strings(body, "code_challenge_methods_supported"),
            authorization_response_iss_parameter_supported=iss_supported,
            raw=body,
        )


def _strings(body: dict[str, Any], name: str) -> tuple[str, ...]:
    value = body.get(name, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise UnexpectedResponseError(f"The {_WHAT} has a {name!r} that is not a list of strings.")
    return tuple(value)


def metadata_urls(issuer: str) -> list[str]:
    """Where the metadata of ``issuer`` may be, in the order to try.

    RFC 8414 §3.1 inserts the well-known path between the host and the issuer's path
    ("any terminating "/" MUST be removed"); a server mounted under a path prefix (Keyturn
    behind a reverse proxy) serves it below the issuer instead, tried second."""
    parts = urlsplit(issuer)
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.query or parts.fragment:
        # RFC 8414 §2: "a URL that uses the "https" scheme and has no query or fragment".
        raise ValueError(f"The issuer {issuer!r} is not an http(s) URL without query or fragment.")
    path = parts.path.rstrip("/")
    rfc8414 = urlunsplit((parts.scheme, parts.netloc, WELL_KNOWN + path, "", ""))
    if not path:
        return [rfc8414]
    return [rfc8414, urlunsplit((parts.scheme, parts.netloc, path + WELL_KNOWN, "", ""))]


def _same_issuer(asked: str, returned: str) -> bool:
    # RFC 8414 §3.3: "The "issuer" value returned MUST be identical to the authorization
    # server's issuer identifier value into which the well-known URI string was inserted".
    # §3.1 drops a terminating "/" before inserting, so that one slash does not count.
    return asked.removesuffix("/") == returned.removesuffix("/")


def _accept(issuer: str, response: httpx.Response) -> ServerMetadata:
    if response.status_code != 200:
        raise UnexpectedResponseError(
            f"The {_WHAT} at {response.request.url} answered HTTP {response.status_code}.", response.status_code
        )
    metadata = ServerMetadata.from_dict(json_object(response, _WHAT))
    if not _same_issuer(issuer, metadata.issuer):
        raise IssuerMismatchError(f"Asked for the metadata of {issuer!r}, got that of {metadata.issuer!r}.")
    return metadata


def discover(issuer: str, *, client: httpx.Client | None = None, timeout: float = 10.0) -> ServerMetadata:
    """Fetch and check the metadata of ``issuer`` (RFC 8414 §3), with ``client`` or a
    short-lived client of its own."""
    if client is None:
        with httpx.Client(timeout=timeout) as own:
            return discover(issuer, client=own)
    urls = metadata_urls(issuer)
    for url in urls:
        response = client.get(url, headers={"accept": "application/json"})
        if response.status_code != 404 or url == urls[-1]:
            break
    return _accept(issuer, response)


async def adiscover(issuer: str, *, client: httpx.AsyncClient | None = None, timeout: float = 10.0) -> ServerMetadata:
    """:func:`discover` for asyncio and trio."""
    if client is None:
        async with httpx.AsyncClient(timeout=timeout) as own:
            return await adiscover(issuer, client=own)
    urls = metadata_urls(issuer)
    for url in urls:
        response = await client.get(url, headers={"accept": "application/json"})
        if response.status_code != 404 or url == urls[-1]:
            break
    return _accept(issuer, response)
