"""Calls the sample SMS gateway with Keyturn's SDK (keyturn.client), as an API user would.

With an API key (sent as ``Authorization: Bearer``, or as ``?api_key=`` with --query):

    python client.py --api-key kt_key_... balance

With an OAuth client's credentials (the client credentials grant, RFC 6749 §4.4; the SDK
finds the token endpoint in the issuer's metadata, and gets and renews the token):

    python client.py --client-id ID --client-secret SECRET --scope "sms balance" send +4915735983768 "Hi"

A client ID that starts with "-" must be given as --client-id=ID.

Commands: balance, numbers, free, send TO TEXT. The answer is printed as JSON; an error
answer goes to stderr and the exit status is 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import httpx

from keyturn.client import ApiKeyAuth, ClientCredentialsAuth, OAuthClientError, discover


def call(gateway: str, auth: httpx.Auth | None, command: str, args: list[str]) -> httpx.Response:
    with httpx.Client(base_url=gateway, auth=auth, timeout=10) as http:
        if command == "balance":
            return http.get("/balance")
        if command == "numbers":
            return http.get("/numbers")
        if command == "free":
            return http.get("/getFreeList")
        if command == "send":
            to, text = args
            return http.post("/sms", json={"to": to, "text": text})
    raise SystemExit(f"unknown command {command!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Call the sample SMS gateway.")
    parser.add_argument("--gateway", default="http://127.0.0.1:8001", help="The gateway's base URL.")
    parser.add_argument("--issuer", default="http://127.0.0.1:8000", help="The Keyturn server.")
    parser.add_argument("--api-key", help="An API key (kt_key_...).")
    parser.add_argument("--query", action="store_true", help="Send the API key as ?api_key= instead of a header.")
    parser.add_argument("--client-id", help="An OAuth client allowed the client_credentials grant.")
    parser.add_argument("--client-secret", help="Its secret.")
    parser.add_argument("--scope", help="Scopes to ask for, space-separated (client credentials only).")
    parser.add_argument("command", choices=["balance", "numbers", "free", "send"])
    parser.add_argument("args", nargs="*", help="send: TO TEXT")
    options = parser.parse_args(argv)
    if options.command == "send" and len(options.args) != 2:
        parser.error("send needs TO and TEXT")

    if options.query and options.client_id is not None:
        parser.error("--query is for API keys only: access tokens go in the Authorization header")
    if options.client_id is not None and options.client_secret is None:
        parser.error("--client-id needs --client-secret")

    auth: httpx.Auth | None = None
    if options.api_key is not None:
        auth = ApiKeyAuth(options.api_key, in_="query" if options.query else "header")
    try:
        if options.client_id is not None:
            # client_secret_basic, as `curl -u id:secret` does; the token is fetched with
            # the first call and renewed by the SDK.
            server = discover(options.issuer)
            auth = ClientCredentialsAuth(server, options.client_id, options.client_secret, scope=options.scope)
        response = call(options.gateway, auth, options.command, options.args)
    except OAuthClientError as error:
        # The issuer's metadata or the token endpoint said no (invalid_client, invalid_scope, ...).
        print(f"authorization server: {error}", file=sys.stderr)
        return 1
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    if response.is_error:
        challenge = response.headers.get("www-authenticate")
        print(f"HTTP {response.status_code}" + (f" ({challenge})" if challenge else ""), file=sys.stderr)
        print(json.dumps(body), file=sys.stderr)
        return 1
    print(json.dumps(body, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
