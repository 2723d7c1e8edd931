"""Redirect URIs: what registration accepts (RFC 6749 §3.1.2, RFC 3986 §2), which request
URI matches a registered one (RFC 9700 §4.1.3, RFC 8252 §7.3), and the Location built
from one (RFC 3986 §2.1)."""

from __future__ import annotations

import pytest

from keyturn.core.redirect_uris import location, redirect_uri_matches, redirect_uri_problem


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("https://app.example.com/a b", "redirect URI 'https://app.example.com/a b' contains a space; write it as %20"),
        (
            "https://app.example.com/a\tb",
            "redirect URI 'https://app.example.com/a\\tb' contains a control character (a tab, a line break, ...); "
            "remove it",
        ),
        (
            "https://app.example.com/a\x00b",
            "redirect URI 'https://app.example.com/a\\x00b' contains a control character (a tab, a line break, ...); "
            "remove it",
        ),
        (
            "https://app.example.com/a\x7f",
            "redirect URI 'https://app.example.com/a\\x7f' contains a control character (a tab, a line break, ...); "
            "remove it",
        ),
        (
            "https://app.example.com/café",
            "redirect URI 'https://app.example.com/café' contains non-ASCII characters; write them percent-encoded "
            "(e.g. https://app.example.com/caf%C3%A9), or an internationalised host as punycode (xn--...)",
        ),
        (
            "https://app.example.com/a\u00a0b",
            "redirect URI 'https://app.example.com/a\\xa0b' contains non-ASCII characters; write them percent-encoded "
            "(e.g. https://app.example.com/a%C2%A0b), or an internationalised host as punycode (xn--...)",
        ),
        # RFC 6749 §3.1.2: "The endpoint URI MUST NOT include a fragment component."
        ("https://app.example.com/cb#top", "redirect URI 'https://app.example.com/cb#top' must not contain a fragment"),
        ("https://app.example.com/cb#", "redirect URI 'https://app.example.com/cb#' must not contain a fragment"),
        ("https://app.example.com:port/cb", "redirect URI 'https://app.example.com:port/cb' is not a valid URI"),
    ],
)
def test_registration_refuses_uris_that_are_not_clean(uri: str, message: str) -> None:
    problem = redirect_uri_problem(uri, production=False)
    assert problem is not None
    assert problem.startswith(message)


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example.com/caf%C3%A9?tenant=a%20b",
        "http://127.0.0.1/cb",
        "http://[::1]:8080/cb",
        "com.example.app:/oauth2redirect",
        "https://xn--caf-dma.example/cb",
    ],
)
def test_clean_uris_are_accepted(uri: str) -> None:
    assert redirect_uri_problem(uri, production=False) is None


@pytest.mark.parametrize(
    ("registered", "given", "matches"),
    [
        ("https://app.example.com/cb", "https://app.example.com/cb", True),
        ("https://app.example.com/cb", "https://app.example.com:443/cb", False),
        ("http://127.0.0.1/cb", "http://127.0.0.1:49152/cb", True),
        ("http://127.0.0.1:3000/cb", "http://127.0.0.1/cb", True),
        ("http://[::1]/cb?x=1", "http://[::1]:49152/cb?x=1", True),
        ("http://[::1]/cb?x=1", "http://[::1]:49152/cb?x=2", False),
        ("http://127.0.0.1/cb", "http://[::1]:49152/cb", False),
        # RFC 8252 §8.3: "localhost" is "NOT RECOMMENDED"; it matches exactly or not at all.
        ("http://localhost/cb", "http://localhost:49152/cb", False),
        ("http://127.0.0.1/cb", "http://127.0.0.1:70000/cb", False),
    ],
)
def test_redirect_uri_matching(registered: str, given: str, matches: bool) -> None:
    assert redirect_uri_matches([registered], given) is matches


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("https://app.example.com/cb?x=1&y=a%20b", "https://app.example.com/cb?x=1&y=a%20b"),
        ("https://app.example.com/café cb", "https://app.example.com/caf%C3%A9%20cb"),
        ("https://app.example.com/a\r\nSet-Cookie: x=1", "https://app.example.com/a%0D%0ASet-Cookie:%20x=1"),
        ("/login?next=%2Foauth%2Fauthorize", "/login?next=%2Foauth%2Fauthorize"),
    ],
)
def test_a_location_is_percent_encoded_once(uri: str, expected: str) -> None:
    assert location(uri) == expected
    assert location(expected) == expected
