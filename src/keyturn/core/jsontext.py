"""Compact JSON (no spaces), as UTF-8, from one encoder made once: ``json.dumps`` and
``JSONEncoder.encode`` build a new C encoder on every call, and these run on every token
response, JWT and sealed refresh."""

from __future__ import annotations

import json
from collections.abc import Callable
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any


def _not_json(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _encoder() -> Callable[[Any], str]:
    if c_make_encoder is None:  # an interpreter without the C accelerator
        return json.JSONEncoder(separators=(",", ":")).encode
    # What JSONEncoder.iterencode makes per call, made once. Its arguments: no circular
    # check (markers=None: these values are trees), default, the string encoder
    # (ensure_ascii), indent, key and item separators, sort_keys, skipkeys, allow_nan.
    chunks = c_make_encoder(None, _not_json, encode_basestring_ascii, None, ":", ",", False, False, True)
    return lambda value: "".join(chunks(value, 0))


_encode = _encoder()


def compact(value: Any) -> bytes:
    return _encode(value).encode("utf-8")
