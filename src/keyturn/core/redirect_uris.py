"""Which redirect URIs a client may register (RFC 6749 §3.1.2, RFC 8252 §7, RFC 9700 §2.1)."""

from __future__ import annotations

from urllib.parse import urlsplit

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})


def redirect_uri_problem(uri: str, *, production: bool) -> str | None:
    """Why ``uri`` cannot be registered, or None."""
    if not uri or uri != uri.strip() or any(ch.isspace() for ch in uri):
        return f"redirect URI {uri!r} is empty or contains whitespace"
    try:
        parts = urlsplit(uri)
    except ValueError:
        return f"redirect URI {uri!r} is not a valid URI"
    # RFC 6749 §3.1.2: "The redirection endpoint URI MUST be an absolute URI" ...
    if not parts.scheme:
        return f"redirect URI {uri!r} must be absolute (start with https://)"
    # ... "The endpoint URI MUST NOT include a fragment component."
    if parts.fragment or uri.endswith("#"):
        return f"redirect URI {uri!r} must not contain a fragment (#...)"
    scheme = parts.scheme.lower()
    if scheme in ("javascript", "data", "file", "vbscript"):
        return f"redirect URI scheme {scheme!r} is not allowed"
    if scheme in ("http", "https"):
        if not parts.hostname:
            return f"redirect URI {uri!r} has no host"
        if parts.username is not None or parts.password is not None:
            return f"redirect URI {uri!r} must not contain credentials"
        # RFC 8252 §8.3 / RFC 9700 §2.1: plain http only for loopback (native apps).
        if scheme == "http" and production and parts.hostname not in LOOPBACK_HOSTS:
            return f"redirect URI {uri!r} must use https (http is allowed only for localhost)"
        return None
    # RFC 8252 §7.1: private-use URI schemes are reverse domain names, e.g. com.example.app:/cb
    if "." not in scheme:
        return (
            f"redirect URI scheme {scheme!r} must be https, or a reverse-domain private scheme such as com.example.app"
        )
    return None
