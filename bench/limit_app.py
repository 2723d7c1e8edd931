"""The limit: a bare ASGI app on the same server as Keyturn (uvicorn, uvloop, httptools).

It reads a small form POST, parses it, and answers a ~200-byte JSON body with the
headers of a token response: the most any app can do per request on this server.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

_BODY = json.dumps(
    {
        "access_token": "kt_at_" + "x" * 43,
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": "sms",
        "created_at": 1_795_000_000,
        "note": "bare ASGI: the form was parsed and nothing else was done.",
    }
).encode()
_HEADERS = [
    (b"content-type", b"application/json"),
    (b"content-length", str(len(_BODY)).encode()),
    (b"cache-control", b"no-store"),
    (b"pragma", b"no-cache"),
]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    form = dict(parse_qsl(body.decode("latin-1")))
    status = 200 if scope["method"] == "GET" or form.get("grant_type") else 400
    await send({"type": "http.response.start", "status": status, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": _BODY})
