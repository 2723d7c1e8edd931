"""Scopes (RFC 6749 §3.3): space-delimited, case-sensitive scope tokens."""

from __future__ import annotations

from collections.abc import Mapping

from keyturn.settings import SCOPE_TOKEN

from .errors import InvalidScope


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
            raise InvalidScope("The scope parameter holds a malformed scope.", detail=f"malformed scope {token!r}")
    return tuple(dict.fromkeys(tokens))


def scope_name(scope: str, catalogue: Mapping[str, str]) -> str:
    """A scope as an error_description names it: by its name when the catalogue defines
    it; the request's own text is never repeated back (it may be anyone's, and the
    description reaches the client, on a redirect too)."""
    return f"the scope {scope!r}" if scope in catalogue else "a scope"


def scope_allowed(scope: str, allowed: tuple[str, ...], catalogue: Mapping[str, str]) -> bool:
    """Whether a client registered with ``allowed`` (empty: any) may have ``scope``."""
    return (not allowed or scope in allowed) and (not catalogue or scope in catalogue)


def scopes_for_client(
    requested: str | None, allowed: tuple[str, ...], catalogue: Mapping[str, str], defaults: tuple[str, ...]
) -> tuple[str, ...]:
    """The scopes a client gets for a request (RFC 6749 §3.3).

    ``allowed`` are the client's registered scopes; empty means any scope of the
    catalogue (or any valid scope when there is no catalogue). A request naming no
    scope gets the configured ``defaults`` (those of them the client may have); with no
    defaults configured, the client's registered scopes are its default.
    """
    if requested is None:
        # RFC 6749 §3.3: "If the client omits the scope parameter when requesting
        # authorization, the authorization server MUST either process the request using
        # a pre-defined default value or fail the request indicating an invalid scope".
        if not defaults:
            return allowed
        granted = tuple(s for s in defaults if not allowed or s in allowed)
        if not granted:
            raise InvalidScope(
                "The request names no scope, and the client may have none of the default scopes.",
                detail=f"defaults {' '.join(defaults)!r} outside the client's {' '.join(allowed)!r}",
            )
        return granted
    scopes = parse_scope(requested)
    for scope in scopes:
        if catalogue and scope not in catalogue:
            raise InvalidScope("The request names a scope this server does not know.", detail=f"unknown {scope!r}")
        if allowed and scope not in allowed:
            raise InvalidScope(f"The client may not request {scope_name(scope, catalogue)}.")
    return scopes
