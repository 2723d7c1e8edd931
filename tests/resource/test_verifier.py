"""The Verifier against a fake authorization server: introspection and its bounded caches
(RFC 7662), JWT access tokens and the JWKS cache (RFC 9068). Each test runs on the
blocking and on the async path."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import jwt
import pytest

from keyturn.core.credentials import Kind, new_secret
from keyturn.resource import AuthServerUnavailable, InvalidToken, Verifier, _verifier

from .fakes import ISSUER, RS_CLIENT_ID, RS_CLIENT_SECRET, FakeAuthServer, FakeClock, VerifyFunction, new_key

INTROSPECT = "/oauth/introspect"
JWKS = "/oauth/jwks"
METADATA = "/.well-known/oauth-authorization-server"


def damaged(secret: str) -> str:
    return secret[:-1] + ("0" if secret[-1] != "0" else "1")


# ---- introspection: what is accepted ----


def test_api_key_is_introspected_with_the_resource_servers_credentials(
    auth_server: FakeAuthServer, verify: VerifyFunction
) -> None:
    key = auth_server.api_key(scopes="sms balance")
    principal = verify(auth_server.verifier(), key)
    assert (principal.sub, principal.kind, principal.client_id) == ("7", "api_key", None)
    assert principal.scopes == {"sms", "balance"}
    assert principal.claims["username"] == "user@example.com"
    assert auth_server.calls[INTROSPECT] == 1


def test_opaque_access_token_carries_its_client(auth_server: FakeAuthServer, verify: VerifyFunction) -> None:
    principal = verify(auth_server.verifier(), auth_server.opaque_token(scopes="sms"))
    assert (principal.kind, principal.client_id, principal.scopes) == ("access_token", "app", {"sms"})
    assert principal.expires_at == int(auth_server.clock.time()) + 3600


def test_rfc7662_refresh_token_is_no_access_credential(auth_server: FakeAuthServer, verify: VerifyFunction) -> None:
    # Refused on sight (kt_rt_), without asking the server.
    refresh = auth_server.opaque_token(use="refresh_token")
    with pytest.raises(InvalidToken):
        verify(auth_server.verifier(), refresh)
    assert auth_server.calls[INTROSPECT] == 0


def test_an_introspection_answer_for_a_refresh_token_is_refused(
    auth_server: FakeAuthServer, verify: VerifyFunction
) -> None:
    token = auth_server.opaque_token()
    auth_server.credentials[token]["token_use"] = "refresh_token"
    with pytest.raises(InvalidToken):
        verify(auth_server.verifier(), token)


@pytest.mark.parametrize(
    ("member", "value"), [("iss", "https://other.example"), ("aud", "https://other-api.example"), ("active", "true")]
)
def test_an_answer_for_another_issuer_or_audience_is_refused(
    auth_server: FakeAuthServer, verify: VerifyFunction, member: str, value: str
) -> None:
    token = auth_server.opaque_token()
    auth_server.credentials[token][member] = value
    with pytest.raises(InvalidToken):
        verify(auth_server.verifier(), token)


def test_a_configured_audience_is_checked(auth_server: FakeAuthServer, verify: VerifyFunction) -> None:
    token = auth_server.opaque_token()
    auth_server.credentials[token]["aud"] = ["https://sms.example", "https://other.example"]
    assert verify(auth_server.verifier(audience="https://sms.example"), token).sub == "7"
    with pytest.raises(InvalidToken):
        verify(auth_server.verifier(), token)


@pytest.mark.parametrize(
    "credential",
    [
        "",
        "not-a-token",
        damaged(new_secret(Kind.API_KEY)),  # a check that does not match
        new_secret(Kind.CLIENT_SECRET),
        "kt_key_short",
        "a.b",
    ],
)
def test_malformed_credentials_are_refused_without_asking(
    auth_server: FakeAuthServer, verify: VerifyFunction, credential: str
) -> None:
    with pytest.raises(InvalidToken):
        verify(auth_server.verifier(), credential)
    assert sum(auth_server.calls.values()) == 0


# ---- the introspection cache: bounded in time and in size ----


def test_an_accepted_credential_is_cached_for_cache_ttl_and_no_longer(
    auth_server: FakeAuthServer, fake_clock: FakeClock, verify: VerifyFunction
) -> None:
    verifier = auth_server.verifier(cache_ttl=10)
    key = auth_server.api_key()
    verify(verifier, key)
    fake_clock.advance(7.9)
    verify(verifier, key)
    assert auth_server.calls[INTROSPECT] == 1
    fake_clock.advance(2.1)  # 10 s: no request came in the last fifth to renew it
    verify(verifier, key)
    assert auth_server.calls[INTROSPECT] == 2


def test_an_answer_in_use_is_renewed_by_a_request_in_the_last_fifth_of_its_lifetime(
    auth_server: FakeAuthServer, fake_clock: FakeClock, verify: VerifyFunction
) -> None:
    verifier = auth_server.verifier(cache_ttl=10)
    key = auth_server.api_key()
    verify(verifier, key)
    fake_clock.advance(8)
    assert verify(verifier, key).sub == "7"
    assert auth_server.calls[INTROSPECT] == 2  # asked again, 2 s before the answer expired
    fake_clock.advance(7.9)  # 15.9 s: the renewed answer holds until 18 s
    verify(verifier, key)
    assert auth_server.calls[INTROSPECT] == 2


def test_a_renewal_that_finds_the_credential_revoked_refuses_it_at_once(
    auth_server: FakeAuthServer, fake_clock: FakeClock, verify: VerifyFunction
) -> None:
    verifier = auth_server.verifier(cache_ttl=10)
    key = auth_server.api_key()
    verify(verifier, key)
    auth_server.revoke(key)
    fake_clock.advance(8)
    with pytest.raises(InvalidToken):
        verify(verifier, key)
    # The cached acceptance is gone, not only this request's: the refusal is what is cached.
    with pytest.raises(InvalidToken) as refused:
        verify(verifier, key)
    assert refused.value.detail == "inactive (cached)"
    assert auth_server.calls[INTROSPECT] == 2


def test_a_renewal_that_cannot_reach_the_server_keeps_the_cached_answer_within_its_lifetime(
    auth_server: FakeAuthServer, fake_clock: FakeClock, verify: VerifyFunction, caplog: pytest.LogCaptureFixture
) -> None:
    verifier = auth_server.verifier(cache_ttl=10)
    key = auth_server.api_key()
    verify(verifier, key)
    auth_server.down = True
    fake_clock.advance(8)
    assert verify(verifier, key).sub == "7"
    assert "renewing it failed" in caplog.text
    fake_clock.advance(1.9)
    assert verify(verifier, key).sub == "7"  # the next request tries again, and keeps it too
    assert auth_server.calls[INTROSPECT] == 3
    fake_clock.advance(0.1)
    with pytest.raises(AuthServerUnavailable):
        verify(verifier, key)


def test_revocation_takes_effect_within_the_cache_ttl(
    auth_server: FakeAuthServer, fake_clock: FakeClock, verify: VerifyFunction
) -> None:
    verifier = auth_server.verifier(cache_ttl=10)
    key = auth_server.api_key()
    verify(verifier, key)
    auth_server.revoke(key)
    fake_clock.advance(5)
    assert verify(verifier, key).sub == "7"  # still cached: the documented bound
    fake_clock.advance(5)
    with pytest.raises(InvalidToken):
        verify(verifier, key)


def test_the_default_bounds(auth_server: FakeAuthServer) -> None:
    verifier = auth_server.verifier()
    assert (verifier.cache_ttl, verifier.negative_cache_ttl) == (10.0, 2.0)
    assert verifier._accepted.max_entries == 10_000
    assert verifier._refused.max_entries == 1_000


def test_a_token_is_never_cached_past_its_expiry(
    auth_server: FakeAuthServer, fake_clock: FakeClock, verify: VerifyFunction
) -> None:
    verifier = auth_server.verifier(cache_ttl=10)
    token = auth_server.opaque_token(ttl=3)
    verify(verifier, token)
    fake_clock.advance(3)
    with pytest.raises(InvalidToken):
        verify(verifier, token)


def test_a_refusal_is_cached_only_briefly(
    auth_server: FakeAuthServer, fake_clock: FakeClock, verify: VerifyFunction
) -> None:
    verifier = auth_server.verifier(negative_cache_ttl=2)
    unknown = new_secret(Kind.ACCESS_TOKEN)
    for _ in range(3):
        with pytest.raises(InvalidToken):
            verify(verifier, unknown)
    assert auth_server.calls[INTROSPECT] == 1
    fake_clock.advance(2)
    # Issued meanwhile (it cannot be, but a refusal must not stick): asked again.
    auth_server.credentials[unknown] = auth_server.credentials[auth_server.opaque_token()]
    assert verify(verifier, unknown).sub == "7"
    assert auth_server.calls[INTROSPECT] == 2


def test_the_negative_ttl_never_exceeds_the_positive_one(auth_server: FakeAuthServer) -> None:
    assert auth_server.verifier(cache_ttl=1, negative_cache_ttl=30).negative_cache_ttl == 1


def test_the_cache_holds_at_most_max_entries(auth_server: FakeAuthServer, verify: VerifyFunction) -> None:
    verifier = auth_server.verifier(cache_max_entries=2)
    first, second, third = (auth_server.api_key() for _ in range(3))
    for key in (first, second, first, third):  # third evicts the least recently used: second
        verify(verifier, key)
    assert auth_server.calls[INTROSPECT] == 3
    assert len(verifier._accepted) == 2
    verify(verifier, first)
    assert auth_server.calls[INTROSPECT] == 3
    verify(verifier, second)
    assert auth_server.calls[INTROSPECT] == 4


def test_refusals_cannot_evict_accepted_credentials(auth_server: FakeAuthServer, verify: VerifyFunction) -> None:
    verifier = auth_server.verifier(cache_max_entries=1, negative_cache_max_entries=1)
    key = auth_server.api_key()
    verify(verifier, key)
    for _ in range(5):
        with pytest.raises(InvalidToken):
            verify(verifier, new_secret(Kind.API_KEY))
    verify(verifier, key)
    assert auth_server.calls[INTROSPECT] == 6
    assert (len(verifier._accepted), len(verifier._refused)) == (1, 1)


def test_cache_ttl_zero_caches_nothing(auth_server: FakeAuthServer, verify: VerifyFunction) -> None:
    verifier = auth_server.verifier(cache_ttl=0)
    key = auth_server.api_key()
    verify(verifier, key)
    verify(verifier, key)
    assert auth_server.calls[INTROSPECT] == 2


def test_cache_keys_are_digests_never_the_credential(auth_server: FakeAuthServer, verify: VerifyFunction) -> None:
    verifier = auth_server.verifier()
    key, bad = auth_server.api_key(), new_secret(Kind.API_KEY)
    verify(verifier, key)
    with pytest.raises(InvalidToken):
        verify(verifier, bad)
    stored = [*verifier._accepted._entries, *verifier._refused._entries]
    assert len(stored) == 2
    for digest in stored:
        assert isinstance(digest, bytes)
        assert len(digest) == 32
        assert key.encode() not in digest
        assert bad.encode() not in digest
    assert key not in repr(verifier._accepted._entries)


# ---- an authorization server that cannot be asked: 503, never "accept" ----


def test_unreachable_server_is_unavailable_and_nothing_is_cached(
    auth_server: FakeAuthServer, verify: VerifyFunction
) -> None:
    verifier = auth_server.verifier()
    key = auth_server.api_key()
    auth_server.down = True
    with pytest.raises(AuthServerUnavailable):
        verify(verifier, key)
    auth_server.down = False
    assert verify(verifier, key).kind == "api_key"


def test_unreachable_server_after_a_cached_answer_keeps_the_cached_answer_only(
    auth_server: FakeAuthServer, fake_clock: FakeClock, verify: VerifyFunction
) -> None:
    verifier = auth_server.verifier(cache_ttl=10)
    key = auth_server.api_key()
    verify(verifier, key)
    auth_server.down = True
    verify(verifier, key)
    fake_clock.advance(10)
    with pytest.raises(AuthServerUnavailable):
        verify(verifier, key)


@pytest.mark.parametrize("status", [401, 500, 503])
def test_an_introspection_error_is_unavailable_not_invalid(
    auth_server: FakeAuthServer, verify: VerifyFunction, status: int
) -> None:
    # 401: the resource server's own credentials were refused (misconfiguration).
    auth_server.introspection_status = status
    with pytest.raises(AuthServerUnavailable):
        verify(auth_server.verifier(), auth_server.api_key())


def test_rfc8414_metadata_for_another_issuer_is_refused(auth_server: FakeAuthServer, verify: VerifyFunction) -> None:
    auth_server.metadata_issuer = "https://evil.example"
    with pytest.raises(AuthServerUnavailable):
        verify(auth_server.verifier(), auth_server.api_key())


def test_metadata_is_fetched_once(auth_server: FakeAuthServer, verify: VerifyFunction) -> None:
    verifier = auth_server.verifier()
    for _ in range(3):
        verify(verifier, auth_server.api_key())
    verify(verifier, auth_server.jwt())
    assert auth_server.calls[METADATA] == 1


# ---- JWT access tokens (RFC 9068), checked locally ----


def test_jwt_access_token_is_checked_locally(auth_server: FakeAuthServer, verify: VerifyFunction) -> None:
    verifier = auth_server.verifier()
    principal = verify(verifier, auth_server.jwt(scopes="sms"))
    assert (principal.sub, principal.kind, principal.client_id, principal.scopes) == (
        "7",
        "access_token",
        "jwt-app",
        {"sms"},
    )
    verify(verifier, auth_server.jwt())
    assert auth_server.calls[INTROSPECT] == 0
    assert auth_server.calls[JWKS] == 1


@pytest.mark.parametrize(
    ("headers", "claims"),
    [
        ({"typ": "JWT"}, {}),  # RFC 9068 §4: typ must be at+jwt
        ({}, {"iss": "https://other.example"}),
        ({}, {"aud": "https://other-api.example"}),
        ({}, {"client_id": None}),  # RFC 9068 §2.2: REQUIRED claims
        ({}, {"jti": None}),
        ({}, {"sub": None}),
    ],
)
def test_rfc9068_a_jwt_failing_a_check_is_refused(
    auth_server: FakeAuthServer, verify: VerifyFunction, headers: dict[str, str], claims: dict[str, Any]
) -> None:
    with pytest.raises(InvalidToken):
        verify(auth_server.verifier(), auth_server.jwt(headers=headers, **claims))


def test_application_at_jwt_typ_is_accepted(auth_server: FakeAuthServer, verify: VerifyFunction) -> None:
    assert verify(auth_server.verifier(), auth_server.jwt(headers={"typ": "application/at+jwt"})).sub == "7"


def test_an_expired_jwt_is_refused(auth_server: FakeAuthServer, fake_clock: FakeClock, verify: VerifyFunction) -> None:
    verifier = auth_server.verifier()
    token = auth_server.jwt(ttl=60)
    verify(verifier, token)
    fake_clock.advance(60)
    with pytest.raises(InvalidToken, match="expired"):
        verify(verifier, token)


def test_alg_none_is_refused(auth_server: FakeAuthServer, verify: VerifyFunction) -> None:
    claims = jwt.decode(auth_server.jwt(), options={"verify_signature": False})
    unsigned = jwt.encode(claims, "", algorithm="none", headers={"kid": "key-1", "typ": "at+jwt"})
    with pytest.raises(InvalidToken):
        verify(auth_server.verifier(), unsigned)


def test_hs256_is_refused_even_with_a_published_symmetric_key(
    auth_server: FakeAuthServer, verify: VerifyFunction
) -> None:
    # A JWKS that (wrongly) publishes an "oct" key must not let its readers sign tokens.
    secret = b"s" * 32
    auth_server.extra_jwks.append(
        {"kty": "oct", "kid": "hmac", "alg": "HS256", "k": jwt.utils.base64url_encode(secret).decode()}
    )
    claims = jwt.decode(auth_server.jwt(), options={"verify_signature": False})
    verifier = auth_server.verifier()
    for kid, key in (("hmac", secret), ("key-1", auth_server.keys[0].jwk()["x"].encode())):
        forged = jwt.encode(claims, key, algorithm="HS256", headers={"kid": kid, "typ": "at+jwt"})
        with pytest.raises(InvalidToken):
            verify(verifier, forged)


def test_a_jwt_signed_by_another_key_is_refused(auth_server: FakeAuthServer, verify: VerifyFunction) -> None:
    impostor = new_key("key-1")  # same kid, other key
    with pytest.raises(InvalidToken):
        verify(auth_server.verifier(), auth_server.jwt(key=impostor))


def test_jwks_is_refetched_once_for_an_unknown_kid(
    auth_server: FakeAuthServer, fake_clock: FakeClock, verify: VerifyFunction
) -> None:
    verifier = auth_server.verifier(jwks_refresh_interval=30)
    verify(verifier, auth_server.jwt())
    rotated = new_key("key-2")
    auth_server.keys.append(rotated)  # `keyturn keys rotate`
    fake_clock.advance(30)
    assert verify(verifier, auth_server.jwt(key=rotated)).sub == "7"
    assert auth_server.calls[JWKS] == 2


def test_unknown_kid_refreshes_are_rate_limited(
    auth_server: FakeAuthServer, fake_clock: FakeClock, verify: VerifyFunction
) -> None:
    verifier = auth_server.verifier(jwks_refresh_interval=30)
    verify(verifier, auth_server.jwt())
    fake_clock.advance(30)
    made_up = auth_server.jwt(key=new_key("made-up"))
    for _ in range(3):
        with pytest.raises(InvalidToken):
            verify(verifier, made_up)
    assert auth_server.calls[JWKS] == 2  # the first fetch and one refresh
    fake_clock.advance(30)
    with pytest.raises(InvalidToken):
        verify(verifier, made_up)
    assert auth_server.calls[JWKS] == 3


def test_a_new_key_within_the_rate_limit_waits_for_the_interval(
    auth_server: FakeAuthServer, fake_clock: FakeClock, verify: VerifyFunction
) -> None:
    verifier = auth_server.verifier(jwks_refresh_interval=30)
    with pytest.raises(InvalidToken):
        verify(verifier, auth_server.jwt(key=new_key("made-up")))
    rotated = new_key("key-2")
    auth_server.keys.append(rotated)
    token = auth_server.jwt(key=rotated)
    with pytest.raises(InvalidToken):
        verify(verifier, token)
    fake_clock.advance(30)
    assert verify(verifier, token).sub == "7"


def test_jwks_older_than_max_age_is_refetched_so_removed_keys_stop_working(
    auth_server: FakeAuthServer, fake_clock: FakeClock, verify: VerifyFunction
) -> None:
    verifier = auth_server.verifier(jwks_max_age=300)
    token = auth_server.jwt(ttl=3600)
    verify(verifier, token)
    auth_server.keys = [new_key("key-2")]  # key-1 retired
    fake_clock.advance(299)
    verify(verifier, token)
    fake_clock.advance(1)
    with pytest.raises(InvalidToken):
        verify(verifier, token)


def test_jwks_unreachable_at_first_is_unavailable(auth_server: FakeAuthServer, verify: VerifyFunction) -> None:
    verifier = auth_server.verifier()
    token = auth_server.jwt()
    auth_server.down = True
    with pytest.raises(AuthServerUnavailable):
        verify(verifier, token)
    auth_server.down = False
    assert verify(verifier, token).sub == "7"  # no rate limit before the first success


def test_jwks_unreachable_later_keeps_known_keys_and_refuses_unknown_ones_with_503(
    auth_server: FakeAuthServer, fake_clock: FakeClock, verify: VerifyFunction
) -> None:
    verifier = auth_server.verifier(jwks_max_age=60, jwks_refresh_interval=30)
    token = auth_server.jwt()
    verify(verifier, token)
    auth_server.down = True
    fake_clock.advance(60)
    assert verify(verifier, token).sub == "7"
    fake_clock.advance(30)
    with pytest.raises(AuthServerUnavailable):
        verify(verifier, auth_server.jwt(key=new_key("key-2")))


def test_introspect_jwts_makes_jwt_revocation_visible_within_the_cache_ttl(
    auth_server: FakeAuthServer, fake_clock: FakeClock, verify: VerifyFunction
) -> None:
    verifier = auth_server.verifier(introspect_jwts=True, cache_ttl=10)
    token = auth_server.jwt()
    verify(verifier, token)
    auth_server.revoke(token)
    fake_clock.advance(10)
    with pytest.raises(InvalidToken):
        verify(verifier, token)
    # A forged JWT never reaches the introspection endpoint.
    with pytest.raises(InvalidToken):
        verify(verifier, auth_server.jwt(key=new_key("key-1")))
    assert auth_server.calls[INTROSPECT] == 2


@pytest.mark.parametrize("option", ["cache_ttl", "negative_cache_ttl", "jwks_refresh_interval", "leeway"])
def test_negative_bounds_are_refused(option: str) -> None:
    options: dict[str, Any] = {option: -1}
    with pytest.raises(ValueError, match=option):
        Verifier(ISSUER, "id", "secret", **options)


# ---- a JWT whose signature checked out is remembered, bounded like an introspection answer ----


@pytest.fixture
def jwt_reads(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How often the verifier parses a JWT's header and checks its signature."""
    reads: Counter[str] = Counter()

    def counted(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            reads[name] += 1
            return real(*args, **kwargs)

        return call

    monkeypatch.setattr(_verifier, "read_header", counted("header", _verifier.read_header))
    monkeypatch.setattr(_verifier, "check_token", counted("signature", _verifier.check_token))
    return reads


def test_a_checked_jwt_is_remembered_for_cache_ttl_and_no_longer(
    auth_server: FakeAuthServer, fake_clock: FakeClock, verify: VerifyFunction, jwt_reads: Counter[str]
) -> None:
    verifier = auth_server.verifier(cache_ttl=10)
    token = auth_server.jwt(ttl=3600)
    verify(verifier, token)
    fake_clock.advance(9.9)
    assert verify(verifier, token).scopes == {"sms", "balance"}
    # Known by its digest: neither parsed nor checked again.
    assert jwt_reads == {"header": 1, "signature": 1}
    fake_clock.advance(0.1)
    verify(verifier, token)
    assert jwt_reads == {"header": 2, "signature": 2}


def test_a_remembered_jwt_is_never_accepted_past_its_exp(
    auth_server: FakeAuthServer, fake_clock: FakeClock, verify: VerifyFunction
) -> None:
    verifier = auth_server.verifier(cache_ttl=10)
    token = auth_server.jwt(ttl=5)
    verify(verifier, token)
    fake_clock.advance(5)
    with pytest.raises(InvalidToken, match="expired"):
        verify(verifier, token)


def test_a_remembered_jwt_is_refused_once_its_key_is_withdrawn(
    auth_server: FakeAuthServer, fake_clock: FakeClock, verify: VerifyFunction
) -> None:
    verifier = auth_server.verifier(cache_ttl=60, jwks_refresh_interval=10)
    old = auth_server.jwt()
    verify(verifier, old)
    auth_server.keys = [new_key("key-2")]  # key-1 withdrawn, key-2 in
    fake_clock.advance(10)
    verify(verifier, auth_server.jwt())  # an unknown kid: the JWKS is fetched again
    with pytest.raises(InvalidToken):
        verify(verifier, old)  # within cache_ttl, but its key is gone


def test_a_remembered_jwt_waits_for_a_due_jwks_refresh(
    auth_server: FakeAuthServer, fake_clock: FakeClock, verify: VerifyFunction
) -> None:
    verifier = auth_server.verifier(cache_ttl=3600, jwks_max_age=300)
    token = auth_server.jwt(ttl=7200)
    verify(verifier, token)
    auth_server.keys = [new_key("key-2")]  # key-1 retired
    fake_clock.advance(299)
    assert verify(verifier, token).sub == "7"
    fake_clock.advance(1)
    with pytest.raises(InvalidToken):
        verify(verifier, token)
    assert auth_server.calls[JWKS] == 2


# ---- concurrency: one fetch for many waiting requests ----


@pytest.mark.anyio
async def test_concurrent_requests_with_a_new_kid_share_one_jwks_fetch(
    auth_server: FakeAuthServer, fake_clock: FakeClock
) -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.01)
        return auth_server.handler(request)

    verifier = Verifier(
        ISSUER,
        RS_CLIENT_ID,
        RS_CLIENT_SECRET,
        async_http_client=httpx.AsyncClient(transport=httpx.MockTransport(slow)),
        clock=fake_clock,
    )
    tokens = [auth_server.jwt() for _ in range(20)]
    principals = await asyncio.gather(*(verifier.averify(token) for token in tokens))
    assert {p.sub for p in principals} == {"7"}
    assert (auth_server.calls[METADATA], auth_server.calls[JWKS]) == (1, 1)


def test_threads_with_a_new_kid_share_one_jwks_fetch(auth_server: FakeAuthServer) -> None:
    verifier = auth_server.verifier()
    tokens = [auth_server.jwt() for _ in range(20)]
    with ThreadPoolExecutor(8) as pool:
        principals = list(pool.map(verifier.verify, tokens))
    assert {p.sub for p in principals} == {"7"}
    assert (auth_server.calls[METADATA], auth_server.calls[JWKS]) == (1, 1)


def _slow_introspection(
    auth_server: FakeAuthServer, fake_clock: FakeClock, gate: threading.Event | None = None, **options: Any
) -> Verifier:
    """A verifier whose authorization server takes 10 ms to answer, on both paths (on the
    blocking path, only once ``gate`` is set, when given)."""

    def slow(request: httpx.Request) -> httpx.Response:
        if gate is not None:
            gate.wait(10)
        time.sleep(0.01)
        return auth_server.handler(request)

    async def aslow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.01)
        return auth_server.handler(request)

    return Verifier(
        ISSUER,
        RS_CLIENT_ID,
        RS_CLIENT_SECRET,
        http_client=httpx.Client(transport=httpx.MockTransport(slow)),
        async_http_client=httpx.AsyncClient(transport=httpx.MockTransport(aslow)),
        clock=fake_clock,
        **options,
    )


@pytest.mark.anyio
async def test_while_one_request_renews_an_answer_the_requests_beside_it_keep_the_cached_one(
    auth_server: FakeAuthServer, fake_clock: FakeClock
) -> None:
    verifier = _slow_introspection(auth_server, fake_clock, cache_ttl=10)
    key = auth_server.api_key()
    await verifier.averify(key)
    fake_clock.advance(9)
    principals = await asyncio.gather(*(verifier.averify(key) for _ in range(20)))
    assert {p.sub for p in principals} == {"7"}
    assert auth_server.calls[INTROSPECT] == 2


def test_threads_beside_a_renewal_keep_the_cached_answer(auth_server: FakeAuthServer, fake_clock: FakeClock) -> None:
    verifier = _slow_introspection(auth_server, fake_clock, cache_ttl=10)
    key = auth_server.api_key()
    verifier.verify(key)
    fake_clock.advance(9)
    with ThreadPoolExecutor(8) as pool:
        principals = list(pool.map(verifier.verify, [key] * 20))
    assert {p.sub for p in principals} == {"7"}
    assert auth_server.calls[INTROSPECT] == 2


# ---- concurrency: one question for a credential no cached answer covers ----


@pytest.mark.anyio
async def test_concurrent_requests_with_a_new_credential_ask_once(
    auth_server: FakeAuthServer, fake_clock: FakeClock
) -> None:
    verifier = _slow_introspection(auth_server, fake_clock)
    key, other = auth_server.api_key(), auth_server.api_key(sub="8")
    principals = await asyncio.gather(*(verifier.averify(credential) for credential in [key] * 20 + [other] * 5))
    assert [p.sub for p in principals] == ["7"] * 20 + ["8"] * 5
    assert auth_server.calls[INTROSPECT] == 2
    assert verifier._aflights == {}


def test_threads_with_a_new_credential_ask_once(auth_server: FakeAuthServer, fake_clock: FakeClock) -> None:
    verifier = _slow_introspection(auth_server, fake_clock)
    key, other = auth_server.api_key(), auth_server.api_key(sub="8")
    with ThreadPoolExecutor(8) as pool:
        principals = list(pool.map(verifier.verify, [key] * 20 + [other] * 5))
    assert [p.sub for p in principals] == ["7"] * 20 + ["8"] * 5
    # Eight threads: a thread may come back to a credential after its question ended,
    # and then finds the cached answer.
    assert auth_server.calls[INTROSPECT] == 2
    assert verifier._flights == {}


@pytest.mark.anyio
async def test_requests_waiting_on_a_refusal_are_all_refused_by_one_question(
    auth_server: FakeAuthServer, fake_clock: FakeClock
) -> None:
    verifier = _slow_introspection(auth_server, fake_clock)
    unknown = new_secret(Kind.API_KEY)
    outcomes = await asyncio.gather(*(verifier.averify(unknown) for _ in range(10)), return_exceptions=True)
    assert all(isinstance(outcome, InvalidToken) for outcome in outcomes)
    assert auth_server.calls[INTROSPECT] == 1


def test_threads_waiting_on_an_unreachable_server_all_get_503_from_one_attempt(
    auth_server: FakeAuthServer, fake_clock: FakeClock
) -> None:
    gate = threading.Event()
    gate.set()
    verifier = _slow_introspection(auth_server, fake_clock, gate)
    verifier.verify(auth_server.api_key())  # metadata known: the next question is an introspection
    key = auth_server.api_key(sub="8")
    auth_server.down = True
    # The question is answered only once every thread has presented the credential: a
    # thread that came after the answer would ask again (a failure is not remembered), so
    # without the gate a slow machine could start a thread too late and count two questions.
    gate.clear()
    started = iter(range(1, 9))
    count = threading.Lock()

    def attempt(_: int) -> BaseException | None:
        with count:
            if next(started) == 8:
                threading.Timer(0.05, gate.set).start()
        try:
            verifier.verify(key)
        except AuthServerUnavailable as exc:
            return exc
        return None

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(attempt, range(8)))
    assert all(isinstance(outcome, AuthServerUnavailable) for outcome in outcomes)
    assert auth_server.calls[INTROSPECT] == 2
    # Nothing is cached: once the server is back, the credential is asked about again.
    auth_server.down = False
    assert verifier.verify(key).sub == "8"
    assert auth_server.calls[INTROSPECT] == 3


@pytest.mark.anyio
async def test_a_request_waiting_on_a_cancelled_question_asks_itself(
    auth_server: FakeAuthServer, fake_clock: FakeClock
) -> None:
    verifier = _slow_introspection(auth_server, fake_clock)
    verifier.verify(auth_server.api_key())  # metadata known
    key = auth_server.api_key(sub="8")
    asking = asyncio.ensure_future(verifier.averify(key))
    await asyncio.sleep(0.002)  # its introspection is under way
    waiting = asyncio.ensure_future(verifier.averify(key))
    await asyncio.sleep(0.002)
    asking.cancel()
    principal = await waiting
    assert principal.sub == "8"
    assert asking.cancelled()
    # The cancelled question never reached the server (it takes 10 ms to answer).
    assert auth_server.calls[INTROSPECT] == 2
    assert verifier._aflights == {}
