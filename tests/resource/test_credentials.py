"""Finding the credential in a request (RFC 6750 §2) and recognising it on sight."""

from __future__ import annotations

import secrets

import pytest

from keyturn.core.credentials import Kind, new_secret
from keyturn.core.credentials import _check as server_check
from keyturn.resource import InvalidRequest, InvalidToken, MissingCredential
from keyturn.resource._credentials import Digester, Shape, _check, check_shape, find_credential, shape_of

API_KEY = new_secret(Kind.API_KEY)
ACCESS_TOKEN = new_secret(Kind.ACCESS_TOKEN)
JWT = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiI3In0.c2lnbmF0dXJl"
NAMES = ("api_key", "apikey")


@pytest.mark.parametrize(
    ("kind", "shape"),
    [
        (Kind.API_KEY, Shape.API_KEY),
        (Kind.ACCESS_TOKEN, Shape.OPAQUE_TOKEN),
        (Kind.REFRESH_TOKEN, None),
        (Kind.CLIENT_SECRET, None),
        (Kind.AUTHORIZATION_CODE, None),
    ],
)
def test_shapes_agree_with_the_servers_secret_format(kind: Kind, shape: Shape | None) -> None:
    for _ in range(50):
        assert shape_of(new_secret(kind)) is shape


def test_a_damaged_secret_has_no_shape() -> None:
    assert shape_of(API_KEY[:-1] + ("A" if API_KEY[-1] != "A" else "B")) is None
    assert shape_of(API_KEY[:-2]) is None
    assert shape_of(API_KEY + "x") is None
    assert shape_of("kt_key_é" + API_KEY[8:]) is None
    assert shape_of(JWT) is Shape.JWT
    assert shape_of("a.b") is None


def test_bearer_header() -> None:
    # The header's credential is shaped by the verifier, after its cache: None here.
    assert find_credential([f"Bearer {ACCESS_TOKEN}"], "", NAMES) == (ACCESS_TOKEN, None)
    # RFC 6750 §2.1 / RFC 9110 §11.1: the scheme is case-insensitive.
    assert find_credential([f"bearer {JWT}"], "", NAMES) == (JWT, None)


@pytest.mark.parametrize("name", NAMES)
def test_api_key_in_the_query(name: str) -> None:
    assert find_credential([], f"foo=1&{name}={API_KEY}", NAMES) == (API_KEY, Shape.API_KEY)


def test_configured_query_parameter_names_only() -> None:
    assert find_credential([], f"key={API_KEY}", ("key",))[0] == API_KEY
    with pytest.raises(MissingCredential):
        find_credential([], f"api_key={API_KEY}", ("key",))
    with pytest.raises(MissingCredential):
        find_credential([], f"api_key={API_KEY}", ())


@pytest.mark.parametrize("token", [ACCESS_TOKEN, JWT])
def test_rfc6750_s2_3_access_tokens_are_refused_in_the_query(token: str) -> None:
    with pytest.raises(InvalidToken, match="Only API keys"):
        find_credential([], f"api_key={token}", NAMES)


@pytest.mark.parametrize(
    ("headers", "query"),
    [
        ([f"Bearer {API_KEY}"], f"api_key={API_KEY}"),
        ([], f"api_key={API_KEY}&apikey={API_KEY}"),
        ([f"Bearer {API_KEY}", f"Bearer {ACCESS_TOKEN}"], ""),
    ],
)
def test_rfc6750_s2_one_method_only(headers: list[str], query: str) -> None:
    with pytest.raises(InvalidRequest):
        find_credential(headers, query, NAMES)


@pytest.mark.parametrize(
    ("headers", "query"), [([], ""), ([], "api_key="), (["Basic dXNlcjpwYXNz"], ""), (["Bearer "], "")]
)
def test_rfc6750_s3_1_no_credential(headers: list[str], query: str) -> None:
    with pytest.raises(MissingCredential):
        find_credential(headers, query, NAMES)


@pytest.mark.parametrize("value", ["not a token", "kt_at_nope", "ключ"])
def test_malformed_credential(value: str) -> None:
    credential, _ = find_credential([f"Bearer {value}"], "", NAMES)
    with pytest.raises(InvalidToken, match="malformed"):
        check_shape(credential)


@pytest.mark.parametrize("value", ["not a token", "kt_at_nope", "ключ"])
def test_a_malformed_credential_in_the_query_is_no_api_key(value: str) -> None:
    with pytest.raises(InvalidToken, match="Only API keys"):
        find_credential([], f"api_key={value}", NAMES)


def test_rfc6750_s2_1_a_secret_with_a_valid_check_but_no_b64token_is_malformed() -> None:
    # Prefix, length and CRC-32 check are right; "!" is no b64token character.
    head = API_KEY[:7] + "!" + API_KEY[8:-6]
    forged = head + server_check(head)
    assert shape_of(forged) is None
    with pytest.raises(InvalidToken, match="malformed"):
        check_shape(forged)


def test_the_check_digits_agree_with_the_servers() -> None:
    for _ in range(2000):
        text = secrets.token_urlsafe(32)
        assert _check(text) == server_check(text)


def test_digests_are_keyed_stable_and_not_the_credential() -> None:
    digest = Digester()
    assert digest(API_KEY) == digest(API_KEY)
    assert digest(API_KEY) != digest(ACCESS_TOKEN)
    assert digest(API_KEY) != Digester()(API_KEY)  # a random key per process
    assert len(digest(API_KEY)) == 32
