"""A sample platform API: a small SMS gateway protected by keyturn.resource.

    POST /sms          send a message               scope: sms
    GET  /balance      the account's balance        scope: balance
    GET  /numbers      the account's saved numbers  scope: contacts
    GET  /getFreeList  free numbers                 public (as on OnlineSIM)

Callers present an access token (``Authorization: Bearer``) or an API key (the same
header, or ``?api_key=`` / ``?apikey=``). Configuration comes from the environment:

    SMS_GATEWAY_ISSUER         the Keyturn server (default http://127.0.0.1:8000)
    SMS_GATEWAY_CLIENT_ID      a resource-server client of it (required)
    SMS_GATEWAY_CLIENT_SECRET  its secret (required)
    SMS_GATEWAY_ERROR_STYLE    rfc6750 (default) or onlinesim
    SMS_GATEWAY_CACHE_TTL      seconds an introspection answer is kept (default 10)

Run it with ``python app.py [--port 8001]`` or ``uvicorn app:create_app --factory``.
"""

from __future__ import annotations

import argparse
import itertools
import os
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from keyturn.resource import KeyturnMiddleware, Verifier, require_scopes

PUBLIC_PATHS = ["/getFreeList"]
PRICE_PER_SMS = Decimal("0.075")
STARTING_BALANCE = Decimal("10.00")
MAX_TEXT_LENGTH = 1520

SEND_SMS = require_scopes("sms")
READ_BALANCE = require_scopes("balance")
READ_NUMBERS = require_scopes("contacts")


class Accounts:
    """The gateway's own data, per Keyturn account (the principal's ``sub``). In memory:
    this is a sample."""

    def __init__(self) -> None:
        self.balances: dict[str, Decimal] = {}
        self.sent: dict[str, list[dict[str, Any]]] = {}
        self._ids = itertools.count(1)

    def balance(self, sub: str) -> Decimal:
        return self.balances.setdefault(sub, STARTING_BALANCE)

    def send(self, sub: str, to: str, text: str) -> dict[str, Any] | None:
        if self.balance(sub) < PRICE_PER_SMS:
            return None
        self.balances[sub] -= PRICE_PER_SMS
        message = {"id": str(next(self._ids)), "recipient": to, "text": text, "success": True}
        self.sent.setdefault(sub, []).append(message)
        return message


async def _params(request: Request) -> Mapping[str, Any]:
    """The parameters of POST /sms: a JSON object, a form, or the query (as on sms77)."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        body = await request.json()
        return body if isinstance(body, dict) else {}
    if content_type.startswith("application/x-www-form-urlencoded"):
        # Parsed here: Starlette's form parser needs python-multipart.
        return dict(parse_qsl((await request.body()).decode("utf-8")))
    return request.query_params


async def send_sms(request: Request) -> JSONResponse:
    principal = await SEND_SMS(request)
    params = await _params(request)
    to, text = str(params.get("to", "")).strip(), str(params.get("text", ""))
    if not to.lstrip("+").isdigit() or not text or len(text) > MAX_TEXT_LENGTH:
        return JSONResponse(
            {"success": False, "error": "'to' must be a phone number and 'text' 1-1520 characters"}, 400
        )
    accounts: Accounts = request.app.state.accounts
    message = accounts.send(principal.sub, to, text)
    if message is None:
        return JSONResponse({"success": False, "error": "insufficient balance"}, 402)
    return JSONResponse(
        {
            "success": True,
            "total_price": float(PRICE_PER_SMS),
            "balance": float(accounts.balance(principal.sub)),
            "messages": [message],
        }
    )


async def balance(request: Request) -> JSONResponse:
    principal = await READ_BALANCE(request)
    accounts: Accounts = request.app.state.accounts
    return JSONResponse({"amount": float(accounts.balance(principal.sub)), "currency": "EUR"})


async def numbers(request: Request) -> JSONResponse:
    principal = await READ_NUMBERS(request)
    accounts: Accounts = request.app.state.accounts
    recipients = sorted({m["recipient"] for m in accounts.sent.get(principal.sub, [])})
    return JSONResponse({"numbers": recipients, "via": principal.kind})


async def free_list(request: Request) -> JSONResponse:
    # Public: KeyturnMiddleware asks for no credential here.
    return JSONResponse(
        {
            "response": "1",
            "numbers": [{"country": 49, "number": "+4915735983768"}, {"country": 7, "number": "+79001234567"}],
        }
    )


def verifier_from_environment(environ: Mapping[str, str] = os.environ) -> Verifier:
    try:
        client_id, client_secret = environ["SMS_GATEWAY_CLIENT_ID"], environ["SMS_GATEWAY_CLIENT_SECRET"]
    except KeyError as missing:
        raise SystemExit(f"set {missing.args[0]} (a resource-server client of the Keyturn server)") from None
    return Verifier(
        environ.get("SMS_GATEWAY_ISSUER", "http://127.0.0.1:8000"),
        client_id,
        client_secret,
        cache_ttl=float(environ.get("SMS_GATEWAY_CACHE_TTL", "10")),
    )


def create_app(verifier: Verifier | None = None, *, error_style: str | None = None) -> Starlette:
    style = error_style or os.environ.get("SMS_GATEWAY_ERROR_STYLE", "rfc6750")
    if style not in ("rfc6750", "onlinesim"):
        raise SystemExit("SMS_GATEWAY_ERROR_STYLE must be rfc6750 or onlinesim")
    app = Starlette(
        routes=[
            Route("/sms", send_sms, methods=["POST"]),
            Route("/balance", balance),
            Route("/numbers", numbers),
            Route("/getFreeList", free_list),
        ],
        middleware=[
            # Inside Starlette's error handling, so that require_scopes' refusals reach it.
            Middleware(
                KeyturnMiddleware,
                verifier=verifier or verifier_from_environment(),
                public_paths=PUBLIC_PATHS,
                error_style="onlinesim" if style == "onlinesim" else "rfc6750",
            )
        ],
    )
    app.state.accounts = Accounts()
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the sample SMS gateway.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    import uvicorn

    uvicorn.run(create_app(), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
