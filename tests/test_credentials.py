"""Issued secrets: ``kt_<type>_<body><check>``, recognised without a database lookup, and
stored only as a keyed hash."""

from __future__ import annotations

import base64
import hashlib
import hmac
import string
import time
import zlib

import pytest

from keyturn.core.credentials import Hasher, Kind, display_prefix, kind_of, new_secret, new_token_id

SERVER_SECRET = "server-secret-" + "x" * 40
BODY_LENGTH = 43  # 32 bytes, base64url
CHECK_LENGTH = 6

ALL_KINDS = list(Kind)


def replace_at(text: str, index: int) -> str:
    """``text`` with the character at ``index`` changed to a different base64url character."""
    replacement = "A" if text[index] != "A" else "B"
    return text[:index] + replacement + text[index + 1 :]


# ---- format ----


@pytest.mark.parametrize(
    ("kind", "prefix"),
    [
        (Kind.ACCESS_TOKEN, "kt_at_"),
        (Kind.REFRESH_TOKEN, "kt_rt_"),
        (Kind.API_KEY, "kt_key_"),
        (Kind.CLIENT_SECRET, "kt_cs_"),
        (Kind.AUTHORIZATION_CODE, "kt_ac_"),
    ],
)
def test_each_kind_has_its_own_prefix(kind: Kind, prefix: str) -> None:
    assert kind.value == prefix
    assert new_secret(kind).startswith(prefix)


def test_there_are_exactly_five_kinds_with_distinct_prefixes() -> None:
    prefixes = [kind.value for kind in Kind]
    assert len(prefixes) == 5
    assert len(set(prefixes)) == 5
    # No prefix is the start of another, so a secret has one reading.
    assert not any(a != b and b.startswith(a) for a in prefixes for b in prefixes)


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_a_secret_is_prefix_body_and_check_in_url_safe_characters(kind: Kind) -> None:
    secret = new_secret(kind)
    assert len(secret) == len(kind.value) + BODY_LENGTH + CHECK_LENGTH
    body_and_check = secret[len(kind.value) :]
    assert set(body_and_check) <= set(string.ascii_letters + string.digits + "-_")
    assert set(secret[-CHECK_LENGTH:]) <= set(string.ascii_letters + string.digits)


def test_secrets_are_distinct() -> None:
    secrets = [new_secret(kind) for kind in Kind for _ in range(200)]
    assert len(set(secrets)) == len(secrets)
    bodies = {secret[-(BODY_LENGTH + CHECK_LENGTH) : -CHECK_LENGTH] for secret in secrets}
    assert len(bodies) == len(secrets)


# ---- kind_of: recognising a well-formed secret ----


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_kind_of_recognises_a_fresh_secret(kind: Kind) -> None:
    for _ in range(50):
        assert kind_of(new_secret(kind)) is kind


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_kind_of_refuses_any_single_changed_character_after_the_prefix(kind: Kind) -> None:
    secret = new_secret(kind)
    for index in range(len(kind.value), len(secret)):
        assert kind_of(replace_at(secret, index)) is None, index


def test_kind_of_refuses_a_secret_relabelled_as_another_kind() -> None:
    secret = new_secret(Kind.ACCESS_TOKEN)
    relabelled = Kind.REFRESH_TOKEN.value + secret[len(Kind.ACCESS_TOKEN.value) :]
    assert kind_of(relabelled) is None


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_kind_of_refuses_a_truncated_secret(kind: Kind) -> None:
    secret = new_secret(kind)
    assert kind_of(secret[:-1]) is None
    assert kind_of(secret[:-CHECK_LENGTH]) is None
    assert kind_of(kind.value) is None


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_kind_of_refuses_an_extended_secret(kind: Kind) -> None:
    secret = new_secret(kind)
    assert kind_of(secret + "A") is None
    assert kind_of(secret + secret[-CHECK_LENGTH:]) is None


@pytest.mark.parametrize("prefix", ["kt_xx_", "KT_AT_", "xx_at_", "kt-at-", "ak_at_"])
def test_kind_of_refuses_a_wrong_prefix(prefix: str) -> None:
    secret = new_secret(Kind.ACCESS_TOKEN)
    assert kind_of(prefix + secret[len(Kind.ACCESS_TOKEN.value) :]) is None


@pytest.mark.parametrize("value", ["", "kt_", "kt_at", " ", "Bearer"])
def test_kind_of_refuses_empty_and_prefix_only_strings(value: str) -> None:
    assert kind_of(value) is None


def test_kind_of_refuses_surrounding_whitespace() -> None:
    secret = new_secret(Kind.API_KEY)
    assert kind_of(" " + secret) is None
    assert kind_of(secret + "\n") is None


def test_kind_of_returns_none_for_a_non_ascii_character_instead_of_raising() -> None:
    # A presented bearer token is attacker-controlled and may hold any character.
    secret = new_secret(Kind.ACCESS_TOKEN)
    tampered = secret[:10] + "é" + secret[11:]
    assert len(tampered) == len(secret)
    assert kind_of(tampered) is None


# ---- Hasher ----


def test_a_digest_is_32_bytes() -> None:
    digest = Hasher(SERVER_SECRET).digest(new_secret(Kind.API_KEY))
    assert isinstance(digest, bytes)
    assert len(digest) == 32


def test_a_digest_is_deterministic_across_hasher_instances() -> None:
    secret = new_secret(Kind.API_KEY)
    assert Hasher(SERVER_SECRET).digest(secret) == Hasher(SERVER_SECRET).digest(secret)


def test_a_digest_depends_on_the_server_secret() -> None:
    secret = new_secret(Kind.API_KEY)
    assert Hasher(SERVER_SECRET).digest(secret) != Hasher(SERVER_SECRET + "y").digest(secret)


def test_a_digest_depends_on_the_input() -> None:
    hasher = Hasher(SERVER_SECRET)
    secret = new_secret(Kind.API_KEY)
    assert hasher.digest(secret) != hasher.digest(replace_at(secret, len(secret) - 1))
    assert hasher.digest("a") != hasher.digest("b")


@pytest.mark.parametrize("secret", ["", "kt_key_x", "é" * 70, new_secret(Kind.API_KEY)])
def test_a_digest_is_hmac_sha256_under_a_key_derived_from_the_server_secret(secret: str) -> None:
    # Stored digests must stay what they were: any other function would orphan them.
    key = hmac.digest(SERVER_SECRET.encode(), b"keyturn/credential-hash/v1", "sha256")
    assert Hasher(SERVER_SECRET).digest(secret) == hmac.digest(key, secret.encode(), "sha256")


def test_the_check_is_the_crc32_of_prefix_and_body_in_base62_least_significant_digit_first() -> None:
    digits = string.digits + string.ascii_uppercase + string.ascii_lowercase
    for _ in range(200):
        secret = new_secret(Kind.ACCESS_TOKEN)
        value, check = zlib.crc32(secret[:-CHECK_LENGTH].encode()), ""
        for _ in range(CHECK_LENGTH):
            value, digit = divmod(value, 62)
            check += digits[digit]
        assert secret[-CHECK_LENGTH:] == check


def test_a_digest_is_not_a_plain_sha256_of_the_secret() -> None:
    secret = new_secret(Kind.API_KEY)
    assert Hasher(SERVER_SECRET).digest(secret) != hashlib.sha256(secret.encode()).digest()


def test_matches_accepts_the_secret_that_was_hashed() -> None:
    hasher = Hasher(SERVER_SECRET)
    secret = new_secret(Kind.CLIENT_SECRET)
    assert hasher.matches(secret, hasher.digest(secret)) is True


def test_matches_refuses_another_secret() -> None:
    hasher = Hasher(SERVER_SECRET)
    stored = hasher.digest(new_secret(Kind.CLIENT_SECRET))
    assert hasher.matches(new_secret(Kind.CLIENT_SECRET), stored) is False
    assert hasher.matches("", stored) is False


def test_matches_refuses_a_digest_made_under_another_server_secret() -> None:
    secret = new_secret(Kind.CLIENT_SECRET)
    stored = Hasher(SERVER_SECRET + "y").digest(secret)
    assert Hasher(SERVER_SECRET).matches(secret, stored) is False


def test_matches_refuses_a_truncated_digest() -> None:
    hasher = Hasher(SERVER_SECRET)
    secret = new_secret(Kind.CLIENT_SECRET)
    assert hasher.matches(secret, hasher.digest(secret)[:16]) is False


# ---- display_prefix ----


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_display_prefix_is_the_type_prefix_four_characters_and_the_last_four(kind: Kind) -> None:
    secret = new_secret(kind)
    shown = display_prefix(secret)
    assert shown == kind.value + secret[len(kind.value) : len(kind.value) + 4] + "…" + secret[-4:]


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_display_prefix_shows_only_check_characters_at_the_end(kind: Kind) -> None:
    # The last six characters are the CRC check of the rest: showing four reveals no
    # random bits; only four of the 43 random characters are shown.
    for _ in range(50):
        secret = new_secret(kind)
        head, _, tail = display_prefix(secret).partition("…")
        assert secret.startswith(head)
        assert secret.endswith(tail)
        assert len(head) - len(kind.value) == 4
        assert len(tail) == 4


def test_display_prefix_stops_at_the_type_prefix_even_if_the_body_has_underscores() -> None:
    secret = "kt_key_" + "_ab_" + "c" * 39 + "000000"
    assert display_prefix(secret) == "kt_key__ab_…0000"


def test_display_prefix_of_a_foreign_string_is_its_first_and_last_four_characters() -> None:
    assert display_prefix("sk_live_abcdef") == "sk_l…cdef"


# ---- tokens: their issue time first, in the secret and in the stored key ----


def _stamp_of(body: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(body[:8]), "big")


@pytest.mark.parametrize("kind", [Kind.ACCESS_TOKEN, Kind.REFRESH_TOKEN, Kind.AUTHORIZATION_CODE])
def test_a_token_starts_with_its_issue_time_then_208_random_bits(kind: Kind) -> None:
    before = time.time_ns() // 1_000_000
    tokens = [new_secret(kind) for _ in range(50)]
    after = time.time_ns() // 1_000_000
    bodies = [token[len(kind.value) : -CHECK_LENGTH] for token in tokens]
    assert all(before <= _stamp_of(body) <= after for body in bodies)
    assert len({base64.urlsafe_b64decode(body + "=")[6:] for body in bodies}) == 50
    assert all(kind_of(token) is kind for token in tokens)


def test_other_secrets_are_random_throughout() -> None:
    now = time.time_ns() // 1_000_000
    for kind in (Kind.API_KEY, Kind.CLIENT_SECRET):
        stamps = [_stamp_of(new_secret(kind)[len(kind.value) :]) for _ in range(20)]
        assert sum(abs(stamp - now) < 86_400_000 for stamp in stamps) < 20, kind


def test_token_keys_are_the_issue_time_then_the_keyed_hash_and_sort_by_issue_time() -> None:
    hasher = Hasher(SERVER_SECRET)
    keys = []
    for _ in range(3):
        secret = new_secret(Kind.REFRESH_TOKEN)
        key = hasher.token_key(secret)
        assert len(key) == 32
        assert key[:6] == base64.urlsafe_b64decode(secret[6:14])
        assert key[6:] == hasher.digest(secret)[:26]
        keys.append(key)
        time.sleep(0.002)
    assert keys == sorted(keys)
    # The time is covered by the hash: the same token with another time is another key.
    secret = new_secret(Kind.ACCESS_TOKEN)
    assert hasher.token_key(replace_at(secret, 7))[6:] != hasher.token_key(secret)[6:]


def test_a_jwt_id_carries_its_issue_time_too() -> None:
    hasher = Hasher(SERVER_SECRET)
    before = time.time_ns() // 1_000_000
    jti = new_token_id()
    assert len(jti) == 22  # 128 bits, base64url
    assert before <= _stamp_of(jti) <= time.time_ns() // 1_000_000
    assert hasher.token_key(jti) == base64.urlsafe_b64decode(jti[:8]) + hasher.digest(jti)[:26]
    assert new_token_id() != jti


@pytest.mark.parametrize("value", ["", "kt_at_", "kt_at_!!!!!!!!", "é" * 12, "short", "a.b.c"])
def test_the_token_key_of_anything_else_is_a_key_no_token_has(value: str) -> None:
    hasher = Hasher(SERVER_SECRET)
    key = hasher.token_key(value)
    assert len(key) == 32
    assert key[:6] == bytes(6)
    assert key[6:] == hasher.digest(value)[:26]
