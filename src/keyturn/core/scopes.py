"""Scopes (RFC 6749 §3.3): space-delimited, case-sensitive scope tokens."""

from __future__ import annotations

import re
from collections.abc import Mapping

from .errors import InvalidScope

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


def scope_problem(scope: str, catalogue: Mapping[str, str]) -> str | None:
    if not SCOPE_TOKEN.fullmatch(scope):
        return f"{scope!r} is not a valid scope name (RFC 6749 §3.3)"
    if catalogue and scope not in catalogue:
        known = ", ".join(sorted(catalogue))
        return f"unknown scope {scope!r}; the catalogue has: {known}"
    return None


def parse_scope(value: str) -> tuple[str, ...]:
    """Splits a ``scope`` parameter; duplicates collapse, order is kept."""
    # RFC 6749 §3.3: "The value of the scope parameter is expressed as a list of
    # space-delimited, case-sensitive strings."
    tokens = [token for token in value.split(" ") if token]
    for token in tokens:
        if not SCOPE_TOKEN.fullmatch(token):
            raise InvalidScope(f"{token!r} is not a valid scope.")
    return tuple(dict.fromkeys(tokens))
