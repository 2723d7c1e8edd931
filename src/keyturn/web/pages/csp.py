"""The pages' Content-Security-Policy (CSP Level 3)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit


def page_csp(form_action: str = "'self'") -> str:
    """The pages' Content-Security-Policy: styles from this origin only, no scripts at all,
    no framing, no <base>, and forms that post to ``form_action`` only."""
    return (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; "
        f"form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    )


_CSP_HOST = re.compile(r"[A-Za-z0-9.-]+")
_CSP_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")


def form_action_to(redirect_uri: str) -> str:
    """form-action for a page whose form's answer redirects to ``redirect_uri``: this
    origin, and that URI's."""
    source = csp_source(redirect_uri)
    return "'self'" if source is None else f"'self' {source}"


def csp_source(uri: str) -> str | None:
    """A CSP source expression that matches the origin of ``uri``: ``scheme://host[:port]``
    for http(s), ``scheme:`` for other schemes (a native app's private-use scheme, RFC 8252
    §7.1) and for hosts a source expression cannot name (IPv6 literals); None when there is
    no scheme."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if not _CSP_SCHEME.fullmatch(scheme):
        return None
    host = parts.hostname or ""
    if scheme in ("http", "https") and _CSP_HOST.fullmatch(host):
        port = f":{parts.port}" if parts.port is not None else ""
        return f"{scheme}://{host}{port}"
    return f"{scheme}:"
