"""Compact JSON (no spaces), as UTF-8, from one encoder made once: ``json.dumps`` with
options builds a new encoder on every call, and these run on every token response,
JWT and sealed refresh."""

from __future__ import annotations

import json
from typing import Any

_encode = json.JSONEncoder(separators=(",", ":")).encode


def compact(value: Any) -> bytes:
    return _encode(value).encode("utf-8")
