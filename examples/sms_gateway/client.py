"""Calls the sample SMS gateway with plain httpx, as an API user would.

With an API key (sent as ``Authorization: Bearer``, or as ``?api_key=`` with --query):

    python client.py --api-key kt_key_... balance

With an OAuth client's credentials (the client credentials grant, RFC 6749 §4.4):

    python client.py --client-id ID --client-secret SECRET --scope "sms balance" send +4915735983768 "Hi"

Commands: balance, numbers, free, send TO TEXT. The answer is printed as JSON; an error
answer goes to stderr and the exit status is 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import httpx


def fetch_token(issuer: str, client_id: str, client_secret: str, scope: str | None) -> str:
    """An access token for the client itself, from the token endpoint the issuer names."""
    with httpx.Client(timeout=10) as http:
        metadata = http.get(f"{issuer}/.well-known/oauth-authorization-server")
        metadata.raise_for_status()
        form = {"grant_type": "client_credentials"}
        if scope:
            form["scope"] = scope
        # client_secret_basic, as `curl -u id:secret` does.
        response = http.post(metadata.json()["token_endpoint"], data=form, auth=(client_id, client_secret))
    if response.status_code != 200:
        raise SystemExit(f"token endpoint: HTTP {response.status_code}: {response.text}")
    token: str = response.json()["access_token"]
    return token


def call(gateway: str, credential: str | None, in_query: bool, command: str, args: list[str]) -> httpx.Response:
    headers: dict[str, str] = {}
    params: dict[str, str] = {}
    if credential is not None:
        if in_query:
            params["api_key"] = credential
        else:
            headers["Authorization"] = f"Bearer {credential}"
    with httpx.Client(base_url=gateway, headers=headers, params=params, timeout=10) as http:
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

    credential: str | None = options.api_key
    if options.client_id is not None:
        if options.client_secret is None:
            parser.error("--client-id needs --client-secret")
        credential = fetch_token(options.issuer, options.client_id, options.client_secret, options.scope)
    if options.query and options.client_id is not None:
        parser.error("--query is for API keys only: access tokens go in the Authorization header")

    response = call(options.gateway, credential, options.query, options.command, options.args)
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
