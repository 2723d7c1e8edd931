"""Sealing a refresh response so that an idempotent retry can get it back.

When a refresh token is rotated, the new pair is stored encrypted under a key derived
from the *presented* refresh token, which the server keeps only as a digest. So the
stored blob is useless to anyone without that refresh token, and whoever retries with it
inside the grace window gets back exactly the pair the first request produced.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .jsontext import compact

_CONTEXT = b"keyturn/refresh-retry/v1\x00"
_NONCE = 12


def _aead(refresh_token: str) -> AESGCM:
    return AESGCM(hashlib.sha256(_CONTEXT + refresh_token.encode("utf-8")).digest())


def seal(refresh_token: str, response: dict[str, Any]) -> bytes:
    nonce = os.urandom(_NONCE)
    plaintext = compact(response)
    return nonce + _aead(refresh_token).encrypt(nonce, plaintext, None)


def unseal(refresh_token: str, blob: bytes) -> dict[str, Any] | None:
    try:
        plaintext = _aead(refresh_token).decrypt(blob[:_NONCE], blob[_NONCE:], None)
    except (InvalidTag, ValueError):
        return None
    response: dict[str, Any] = json.loads(plaintext)
    return response
