"""core.jsontext.compact: the same bytes as json.dumps with compact separators."""

from __future__ import annotations

import json
from typing import Any

import pytest

from keyturn.core import jsontext

VALUES: list[Any] = [
    {"access_token": "kt_at_x", "token_type": "Bearer", "expires_in": 3600, "scope": "sms balance"},
    {"nested": {"list": [1, 2.5, None, True, False, -0.0, 10**20], "empty": {}, "none": []}},
    {"unicode": "café ☎ \u2028 \"quoted\" back\\slash\ttab", "ключ": "значение"},
    ["top", "level", "list"],
    "a top-level string",
    12,
    None,
    (1, 2),
    {7: "int key", True: "bool key", None: "null key", 2.5: "float key"},
    {"nan": float("nan"), "inf": float("inf")},
]


@pytest.mark.parametrize("value", VALUES)
def test_compact_is_json_dumps_with_compact_separators(value: Any) -> None:
    assert jsontext.compact(value) == json.dumps(value, separators=(",", ":")).encode("utf-8")


@pytest.mark.parametrize("value", [{"a": object()}, [b"bytes"], {("tuple", "key"): 1}])
def test_what_json_cannot_say_is_a_type_error(value: Any) -> None:
    with pytest.raises(TypeError):
        jsontext.compact(value)


def test_the_encoder_is_made_once_and_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[object] = []
    real = jsontext.c_make_encoder
    assert real is not None

    def counting(*args: Any) -> Any:
        made.append(args)
        return real(*args)

    monkeypatch.setattr(jsontext, "c_make_encoder", counting)
    encode = jsontext._encoder()
    assert [encode(value) for value in VALUES[:3]] == [json.dumps(v, separators=(",", ":")) for v in VALUES[:3]]
    assert len(made) == 1


def test_without_the_c_accelerator_the_pure_python_encoder_says_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsontext, "c_make_encoder", None)
    encode = jsontext._encoder()
    assert [encode(value) for value in VALUES] == [json.dumps(v, separators=(",", ":")) for v in VALUES]
