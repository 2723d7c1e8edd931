"""Request parameters of the protocol endpoints (RFC 6749 §3.1, §3.2, Appendix B)."""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from .errors import InvalidRequest

Params = dict[str, str]

#: The parameters of the back-channel endpoints (RFC 6749 §2.3.1, §4.1.3, §4.4.2, §6,
#: RFC 7636 §4.5, RFC 7009 §2.1, RFC 7662 §2.1).
PROTOCOL_PARAMETERS = frozenset(
    {
        "grant_type",
        "code",
        "redirect_uri",
        "code_verifier",
        "refresh_token",
        "scope",
        "client_id",
        "client_secret",
        "token",
        "token_type_hint",
    }
)


def parse_form(body: bytes) -> Params:
    """Decodes an ``application/x-www-form-urlencoded`` body.

    RFC 6749 §3.2: "Request and response parameters MUST NOT be included more than once."
    §3.1: "Parameters sent without a value MUST be treated as if they were omitted from
    the request." Values must be UTF-8 (Appendix B).
    """
    params: Params = {}
    if not body:
        return params
    for field in body.split(b"&"):
        if not field:
            continue
        raw_name, _, raw_value = field.partition(b"=")
        try:
            name = unquote_to_bytes(raw_name.replace(b"+", b" ")).decode("utf-8")
            value = unquote_to_bytes(raw_value.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidRequest("The request body is not valid UTF-8.") from None
        if name in params:
            # A name the protocol defines is named; anything else is the request's own text,
            # which error_description never repeats.
            named = name if name in PROTOCOL_PARAMETERS else "a parameter"
            raise InvalidRequest(f"The request repeats {named}.", detail=f"repeated parameter {name[:100]!r}")
        params[name] = value
    # Present-but-empty counts as omitted (but still counted for the repetition rule).
    return {name: value for name, value in params.items() if value}


def require(params: Params, name: str) -> str:
    value = params.get(name)
    if value is None:
        raise InvalidRequest(f"The {name} parameter is missing.")
    return value
