"""The protocol API's back-channel endpoints: token (RFC 6749 §3.2), introspection
(RFC 7662), revocation (RFC 7009) and /me, on bare ASGI. Each decodes the request, has
core answer it (the writing ones as a flow, committed before the answer), and encodes
core's answer; the app turns their errors into responses (keyturn.web.errors), except
/me's, which answers as a protected resource (RFC 6750 §3)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from keyturn.core import introspection, revocation, token_endpoint
from keyturn.core.context import Context
from keyturn.core.credentials import Kind, kind_of
from keyturn.core.errors import InvalidRequest, InvalidToken, OAuthError, RateLimited, bearer_challenge
from keyturn.core.models import Account
from keyturn.core.params import Params, parse_form
from keyturn.core.principals import Principal, resolve
from keyturn.runtime import Blocking

from ..errors import send_error
from ..http import NO_STORE, BodyTooLarge, Receive, Request, Send, json_bytes, read_body, send_bytes, send_json
from ..metrics import Metrics

_FORM = b"application/x-www-form-urlencoded"
_JSON = b"application/json"


async def read_form(request: Request, receive: Receive, limit: int) -> Params:
    content_type = (request.header(b"content-type") or b"").split(b";", 1)[0].strip().lower()
    if content_type != _FORM:
        # RFC 6749 §3.2: the client sends parameters "using the
        # "application/x-www-form-urlencoded" format".
        raise InvalidRequest("The body must be application/x-www-form-urlencoded.")
    try:
        body = await read_body(receive, limit)
    except BodyTooLarge:
        raise InvalidRequest(f"The request body is larger than {limit} bytes.") from None
    # RFC 6749 §3.2 / §3.1: query parameters are no place for credentials here.
    return parse_form(body)


class ProtocolEndpoints:
    def __init__(self, ctx: Context, blocking: Blocking, metrics: Metrics) -> None:
        self.ctx = ctx
        self.blocking = blocking
        self.metrics = metrics
        self.limit = ctx.settings.max_body_size

    async def token(self, request: Request, receive: Receive, send: Send) -> None:
        params = await read_form(request, receive, self.limit)
        body = await self.blocking.flow(
            token_endpoint.token(self.ctx, request.header(b"authorization"), params, request.client_host)
        )
        self.metrics.inc("keyturn_tokens_issued_total", (("grant", params["grant_type"]),))
        # RFC 6749 §5.1: Cache-Control: no-store and Pragma: no-cache.
        await send_bytes(send, 200, json_bytes(body), _JSON, NO_STORE)

    async def introspect(self, request: Request, receive: Receive, send: Send) -> None:
        params = await read_form(request, receive, self.limit)
        body = await self.blocking(
            introspection.introspect, self.ctx, request.header(b"authorization"), params, request.client_host
        )
        await send_bytes(send, 200, json_bytes(body), _JSON, NO_STORE)

    async def revoke(self, request: Request, receive: Receive, send: Send) -> None:
        params = await read_form(request, receive, self.limit)
        await self.blocking.flow(
            revocation.revoke(self.ctx, request.header(b"authorization"), params, request.client_host)
        )
        # RFC 7009 §2.2: "The content of the response body is ignored by the client".
        await send_bytes(send, 200, b"", None, NO_STORE)

    async def me(self, request: Request, receive: Receive, send: Send) -> None:
        try:
            presented = self._bearer_or_api_key(request)
            principal, account = await self.blocking(self._principal, presented)
        except OAuthError as exc:
            if isinstance(exc, RateLimited):
                self.metrics.inc("keyturn_rate_limited_total", (("limit", "api_key"),))
            await send_error(send, exc, resource_style=self.ctx.settings.error_style)
            return
        body: dict[str, Any] = {"success": True, "user_id": account.id}
        body.update(account.attributes)
        body.update(
            email=account.email,
            company=account.company,
            alias=account.alias,
            # null: an API key restricted to no scopes may use them all, as in the CLI's
            # JSON; a string lists what the token or key carries ("" for a token with none).
            scope=None if principal.scopes is None else " ".join(principal.scopes),
            client_id=principal.client_id,
        )
        await send_json(send, 200, body, NO_STORE)

    def _bearer_or_api_key(self, request: Request) -> str | None:
        """RFC 6750 §2.1 header, or an API key in a configured query parameter; never both."""
        found: list[str] = []
        header = request.header(b"authorization")
        if header is not None:
            scheme, _, value = header.decode("latin-1").partition(" ")
            # Another scheme (Basic, ...) carries no Bearer credential: RFC 6750 §3.1
            # answers that with the bare challenge.
            if scheme.lower() == "bearer" and value.strip():
                found.append(value.strip())
        names = self.ctx.settings.api_key_query_parameters
        if names and request.query_string:
            for name, value in parse_qsl(request.query_string.decode("latin-1")):
                if name in names and value:
                    # Only API keys travel in URLs (the seeds' ?api_key=); RFC 6750 §2.3
                    # discourages access tokens there, and URLs end up in logs.
                    if kind_of(value) is not Kind.API_KEY:
                        raise InvalidToken("Only API keys may be sent as a query parameter.")
                    found.append(value)
        if len(found) > 1:
            # RFC 6750 §2: "Clients MUST NOT use more than one method to transmit the token
            # in each request."
            raise InvalidRequest("Send the credential once: in the Authorization header or the query, not both.")
        return found[0] if found else None

    def _principal(self, presented: str | None) -> tuple[Principal, Account]:
        """The credential's principal and its account, in one call (one thread hop)."""
        if presented is None:
            raise _NoCredential
        principal = resolve(self.ctx, presented)
        if principal is None:
            raise InvalidToken("The access token or API key is invalid, expired or revoked.")
        account = self.ctx.accounts.get(principal.account_id)
        if account is None or account.disabled:
            raise InvalidToken(detail="the account behind the credential is gone or disabled")
        return principal, account


class _NoCredential(InvalidToken):
    """RFC 6750 §3.1: "If the request lacks any authentication information ..., the
    resource server SHOULD NOT include an error code or other error information"."""

    default_description = "This endpoint needs an access token or an API key."

    def challenge(self) -> str:
        return bearer_challenge(None)

    def to_dict(self) -> dict[str, str]:
        # RFC 6750 §3.1: no error code when the request carried no credential at all.
        return {"error_description": self.description}
