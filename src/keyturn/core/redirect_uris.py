"""Redirect URIs (RFC 6749 §3.1.2, RFC 8252 §7, RFC 9700 §2.1): which ones a client may
register, whether a request's URI is one of them, and the Location that goes back."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, urlsplit

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})

#: A loopback IP redirect URI (RFC 8252 §7.3): "http", an IP literal, an optional port.
#: "localhost" is not one of them: RFC 8252 §8.3 says it is "NOT RECOMMENDED", and it
#: may resolve elsewhere than the loopback interface, so it must match exactly.
_LOOPBACK = re.compile(r"http://(127\.0\.0\.1|\[::1\])(?::([1-9][0-9]{0,4}))?([/?].*)?", re.DOTALL)

#: What stays as it is in a Location: RFC 3986's unreserved and reserved characters, and
#: "%" (a registered URI is stored encoded already). Everything else is percent-encoded
#: as UTF-8: spaces, control characters, non-ASCII.
_URL_SAFE = "-._~:/?#[]@!$&'()*+,;=%"


def redirect_uri_problem(uri: str, *, production: bool) -> str | None:
    """Why ``uri`` cannot be registered, or None. Messages name the fix."""
    if not uri or uri != uri.strip():
        return f"redirect URI {uri!r} is empty or starts or ends with whitespace"
    # RFC 3986 §2: a URI is printable ASCII; anything else travels percent-encoded.
    if " " in uri:
        return f"redirect URI {uri!r} contains a space; write it as %20"
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in uri):
        return f"redirect URI {uri!r} contains a control character (a tab, a line break, ...); remove it"
    if not uri.isascii():
        return (
            f"redirect URI {uri!r} contains non-ASCII characters; write them percent-encoded "
            f"(e.g. {quote(uri, safe=_URL_SAFE)}), or an internationalised host as punycode (xn--...)"
        )
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        return f"redirect URI {uri!r} is not a valid URI"
    # RFC 6749 §3.1.2: "The redirection endpoint URI MUST be an absolute URI" ...
    if not parts.scheme:
        return f"redirect URI {uri!r} must be absolute (start with https://)"
    # ... "The endpoint URI MUST NOT include a fragment component."
    if parts.fragment or "#" in uri:
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


def _without_port(uri: str) -> str | None:
    """A loopback IP redirect URI with its port taken out; None for any other URI."""
    match = _LOOPBACK.fullmatch(uri)
    if match is None or (match[2] is not None and int(match[2]) > 65535):
        return None
    return f"http://{match[1]}{match[3] or ''}"


def redirect_uri_matches(registered: Iterable[str], given: str) -> bool:
    """Whether a request's redirect_uri is one of the client's registered URIs."""
    # RFC 9700 §4.1.3: "exact string matching" against the registered URIs ...
    candidates = tuple(registered)
    if given in candidates:
        return True
    # ... with one exception, RFC 8252 §7.3: "The authorization server MUST allow any port
    # to be specified at the time of the request for loopback IP redirect URIs, to
    # accommodate clients that obtain an available ephemeral port from the operating
    # system at the time of the request." Scheme, host, path and query still match exactly.
    portless = _without_port(given)
    return portless is not None and any(_without_port(uri) == portless for uri in candidates)


def location(uri: str) -> str:
    """A redirect URI made fit for a Location header: whatever is not URL-safe (a space,
    a control character, non-ASCII, as an old registration may hold) percent-encoded as
    UTF-8, the rest, including existing %-escapes, as it is (RFC 3986 §2.1, §2.4)."""
    return uri if _is_url_safe(uri) else quote(uri, safe=_URL_SAFE)


_SAFE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789" + _URL_SAFE)


def _is_url_safe(uri: str) -> bool:
    return all(ch in _SAFE_CHARS for ch in uri)
