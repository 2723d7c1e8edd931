"""The authorization server's metadata (RFC 8414): where its keys and its introspection
endpoint are."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from ._errors import AuthServerUnavailable
from ._flow import Fetch, Flow, Shared, fetch

WELL_KNOWN = "/.well-known/oauth-authorization-server"


@dataclass(frozen=True, slots=True)
class Metadata:
    issuer: str
    jwks_uri: str | None
    introspection_endpoint: str | None


def well_known_url(issuer: str) -> str:
    """RFC 8414 §3.1: the well-known suffix goes between the host and the issuer's path."""
    parts = urlsplit(issuer)
    return urlunsplit((parts.scheme, parts.netloc, WELL_KNOWN + parts.path.rstrip("/"), "", ""))


class Discovery:
    """The metadata, fetched once, on first use."""

    def __init__(self, url: str, issuer: str) -> None:
        self.url = url
        self.issuer = issuer
        self.known: Metadata | None = None

    def metadata(self) -> Flow[Metadata]:
        while self.known is None:  # a fetch that failed raises here
            yield Shared(self._fetch())
        return self.known

    def _fetch(self) -> Fetch[None]:
        # Asked again under the driver's lock: the request before this one may have fetched it.
        if self.known is None:
            response = yield from fetch(metadata_request(self.url))
            self.known = parse_metadata(response, self.issuer)


def json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    """A 200 JSON object from the authorization server; AuthServerUnavailable otherwise."""
    if response.status_code != 200:
        raise AuthServerUnavailable(detail=f"{what}: HTTP {response.status_code} from {response.request.url}")
    try:
        body = response.json()
    except ValueError:
        raise AuthServerUnavailable(detail=f"{what}: the response is not JSON") from None
    if not isinstance(body, dict):
        raise AuthServerUnavailable(detail=f"{what}: the response is not a JSON object")
    return body


def parse_metadata(response: httpx.Response, issuer: str) -> Metadata:
    body = json_object(response, "metadata")
    # RFC 8414 §3.3: "The "issuer" value returned MUST be identical to the authorization
    # server's issuer identifier value into which the well-known URI string was inserted".
    if body.get("issuer") != issuer:
        raise AuthServerUnavailable(detail=f"metadata names the issuer {body.get('issuer')!r}, expected {issuer!r}")
    jwks_uri, introspection = body.get("jwks_uri"), body.get("introspection_endpoint")
    return Metadata(
        issuer=issuer,
        jwks_uri=jwks_uri if isinstance(jwks_uri, str) else None,
        introspection_endpoint=introspection if isinstance(introspection, str) else None,
    )


def metadata_request(url: str) -> httpx.Request:
    return httpx.Request("GET", url, headers={"accept": "application/json"})


def jwks_request(metadata: Metadata) -> httpx.Request:
    if metadata.jwks_uri is None:
        raise AuthServerUnavailable(detail="the metadata names no jwks_uri")
    return httpx.Request("GET", metadata.jwks_uri, headers={"accept": "application/json"})


def introspection_endpoint(metadata: Metadata) -> str:
    if metadata.introspection_endpoint is None:
        raise AuthServerUnavailable(detail="the metadata names no introspection_endpoint")
    return metadata.introspection_endpoint
