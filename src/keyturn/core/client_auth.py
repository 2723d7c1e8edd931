"""Client authentication at the token, introspection and revocation endpoints
(RFC 6749 §2.3): client_secret_basic, client_secret_post, and none for public clients."""

from __future__ import annotations

import binascii
from base64 import b64decode
from dataclasses import dataclass
from urllib.parse import unquote

from .cache import ClientCache
from .credentials import Hasher
from .errors import InvalidClient, InvalidRequest
from .models import Client
from .params import Params


@dataclass(frozen=True, slots=True)
class PresentedClient:
    client_id: str
    secret: str | None
    method: str  # client_secret_basic | client_secret_post | none
    #: The client used the Authorization header (so a failure gets a Basic challenge).
    used_basic: bool = False


def _from_basic(header: bytes) -> tuple[str, str]:
    encoded = header[6:]  # after "Basic "
    try:
        decoded = b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidClient("The Basic credentials are malformed.", used_basic=True) from None
    raw_id, colon, raw_secret = decoded.partition(":")
    if not colon or not raw_id:
        raise InvalidClient("The Basic credentials are malformed.", used_basic=True)
    # RFC 6749 §2.3.1: "The client identifier is encoded using the
    # "application/x-www-form-urlencoded" encoding algorithm ... and the encoded value
    # is used as the username; the client password is encoded using the same algorithm".
    return unquote(raw_id.replace("+", " ")), unquote(raw_secret.replace("+", " "))


def presented_client(authorization: bytes | None, params: Params) -> PresentedClient:
    """Which client the request says it is, and how it proves it."""
    body_id = params.get("client_id")
    body_secret = params.get("client_secret")
    if authorization is not None:
        if authorization[:6].lower() != b"basic ":
            # RFC 6749 §5.2: a client that tried the Authorization header gets 401 and a
            # challenge naming the scheme it should use.
            raise InvalidClient("Authenticate the client with the Basic scheme.", used_basic=True)
        client_id, secret = _from_basic(authorization)
        # RFC 6749 §2.3: "The client MUST NOT use more than one authentication method in
        # each request." A client_id in the body as well is tolerated when it agrees.
        if body_secret is not None:
            raise InvalidRequest("Use one client authentication method, not Basic and client_secret both.")
        if body_id is not None and body_id != client_id:
            raise InvalidRequest("The client_id in the body does not match the Basic credentials.")
        if not secret:
            # An empty password is no password (RFC 6749 §3.1: empty means omitted): a
            # public client identifying itself, as some libraries send it.
            return PresentedClient(client_id, None, "none", used_basic=True)
        return PresentedClient(client_id, secret, "client_secret_basic", used_basic=True)
    if body_id is None:
        raise InvalidClient("Client authentication is required.", detail="no client credentials presented")
    if body_secret is not None:
        return PresentedClient(body_id, body_secret, "client_secret_post")
    return PresentedClient(body_id, None, "none")


def authenticate_client(presented: PresentedClient, clients: ClientCache, hasher: Hasher) -> Client:
    """The client, once its credentials check out; InvalidClient otherwise."""
    client = clients.get(presented.client_id)
    if client is None:
        raise InvalidClient(used_basic=presented.used_basic, detail="unknown client_id")
    if client.secret_hash is None:
        if presented.secret is not None:
            raise InvalidClient(used_basic=presented.used_basic, detail="a public client presented a secret")
        return client
    if presented.secret is None:
        raise InvalidClient(used_basic=presented.used_basic, detail="a confidential client did not authenticate")
    if not hasher.matches(presented.secret, client.secret_hash):
        raise InvalidClient(used_basic=presented.used_basic, detail="wrong client secret")
    return client
