"""The Verifier's one I/O-free flow, driven by hand: what it asks for (metadata, JWKS,
introspection), what it decides from the answers, and what it asks nothing for. The
requests are answered by the fake authorization server's handler, called directly."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from keyturn.core.credentials import Kind, new_secret
from keyturn.resource import AuthServerUnavailable, InvalidToken, Principal, Verifier
from keyturn.resource._flow import Done, Flow, Shared, resume

from .fakes import ISSUER, FakeAuthServer, FakeClock, new_key

INTROSPECT = ISSUER + "/oauth/introspect"
JWKS = ISSUER + "/oauth/jwks"
METADATA = ISSUER + "/.well-known/oauth-authorization-server"


def flow_for(verifier: Verifier, credential: str, known: Principal | None = None) -> Flow[Principal]:
    return verifier._flow(verifier._digest(credential), credential, None, known)


def request_of(step: object) -> httpx.Request:
    assert isinstance(step, httpx.Request), step
    return step


def shared_fetch(step: object) -> Shared:
    assert isinstance(step, Shared), step
    return step


def outcome(advance: Callable[[], Any]) -> Any:
    """What a flow returns at this step (it must yield nothing more)."""
    with pytest.raises(StopIteration) as done:
        advance()
    return done.value.value


def fetch_metadata(auth_server: FakeAuthServer, step: object) -> None:
    fetch = shared_fetch(step)
    request = request_of(next(fetch.flow))
    assert (request.method, str(request.url)) == ("GET", METADATA)
    assert outcome(lambda: fetch.flow.send(auth_server.handler(request))) is None


# ---- what it asks for ----


def test_an_opaque_credential_yields_the_metadata_fetch_then_an_introspection_request(
    auth_server: FakeAuthServer,
) -> None:
    verifier = auth_server.verifier()
    key = auth_server.api_key()
    flow = flow_for(verifier, key)
    fetch_metadata(auth_server, next(flow))
    introspection = request_of(flow.send(None))
    # RFC 7662 §2.1: a POST with the token as a form parameter.
    assert (introspection.method, str(introspection.url)) == ("POST", INTROSPECT)
    assert parse_qs(introspection.content.decode()) == {"token": [key]}
    assert introspection.headers["authorization"].startswith("Basic ")
    principal = outcome(lambda: flow.send(auth_server.handler(introspection)))
    assert (principal.sub, principal.kind) == ("7", "api_key")
    assert len(verifier._accepted) == 1  # remembered by the flow, not by its driver


def test_once_the_metadata_is_known_an_opaque_credential_yields_the_introspection_request_at_once(
    auth_server: FakeAuthServer,
) -> None:
    verifier = auth_server.verifier()
    verifier.verify(auth_server.api_key())
    flow = flow_for(verifier, auth_server.opaque_token())
    assert str(request_of(next(flow)).url) == INTROSPECT


def test_a_jwt_with_an_unknown_kid_yields_a_jwks_request(auth_server: FakeAuthServer, fake_clock: FakeClock) -> None:
    verifier = auth_server.verifier(jwks_refresh_interval=30)
    verifier.verify(auth_server.jwt())  # the metadata and key-1 are known
    rotated = new_key("key-2")
    auth_server.keys.append(rotated)
    fake_clock.advance(30)
    flow = flow_for(verifier, auth_server.jwt(key=rotated))
    refresh = shared_fetch(next(flow))
    jwks = request_of(next(refresh.flow))
    assert (jwks.method, str(jwks.url)) == ("GET", JWKS)
    assert outcome(lambda: refresh.flow.send(auth_server.handler(jwks))) is None
    # RFC 9068: checked locally with the new key; no introspection.
    assert outcome(lambda: flow.send(None)).client_id == "jwt-app"


def test_a_jwt_with_a_known_kid_yields_nothing(auth_server: FakeAuthServer) -> None:
    verifier = auth_server.verifier()
    verifier.verify(auth_server.jwt())
    flow = flow_for(verifier, auth_server.jwt(scopes="sms"))
    assert outcome(lambda: next(flow)).scopes == {"sms"}


def test_with_introspect_jwts_a_jwt_that_checks_out_yields_an_introspection_request(
    auth_server: FakeAuthServer,
) -> None:
    verifier = auth_server.verifier(introspect_jwts=True)
    verifier.verify(auth_server.jwt())
    assert str(request_of(next(flow_for(verifier, auth_server.jwt()))).url) == INTROSPECT
    # A forged one is refused before anything is asked.
    with pytest.raises(InvalidToken):
        next(flow_for(verifier, auth_server.jwt(key=new_key("key-1"))))


# ---- what it asks nothing for ----


def test_a_refused_cached_credential_yields_nothing(auth_server: FakeAuthServer) -> None:
    verifier = auth_server.verifier()
    unknown = new_secret(Kind.API_KEY)
    with pytest.raises(InvalidToken):
        verifier.verify(unknown)
    with pytest.raises(InvalidToken) as refused:
        next(flow_for(verifier, unknown))
    assert refused.value.detail == "inactive (cached)"


def test_a_malformed_credential_yields_nothing(auth_server: FakeAuthServer) -> None:
    with pytest.raises(InvalidToken):
        next(flow_for(auth_server.verifier(), "kt_key_short"))


def test_a_cached_credential_creates_no_flow(auth_server: FakeAuthServer, monkeypatch: pytest.MonkeyPatch) -> None:
    flows: list[str] = []
    real = Verifier._flow

    def counted(self: Verifier, *args: Any) -> Flow[Principal]:
        flows.append(args[1])
        return real(self, *args)

    monkeypatch.setattr(Verifier, "_flow", counted)
    verifier = auth_server.verifier()
    key = auth_server.api_key()
    for _ in range(3):
        verifier.verify(key)
    assert flows == [key]


# ---- what it decides ----


def test_a_shared_fetch_asks_again_whether_the_one_before_it_fetched(auth_server: FakeAuthServer) -> None:
    verifier = auth_server.verifier()
    first, second = (flow_for(verifier, auth_server.api_key()) for _ in range(2))
    first_fetch, second_fetch = shared_fetch(next(first)), shared_fetch(next(second))
    # The driver runs them one after the other, under its lock.
    fetch_metadata(auth_server, first_fetch)
    assert outcome(lambda: next(second_fetch.flow)) is None  # no request
    assert str(request_of(first.send(None)).url) == str(request_of(second.send(None)).url) == INTROSPECT
    assert auth_server.calls["/.well-known/oauth-authorization-server"] == 1


def test_a_renewal_that_cannot_reach_the_server_returns_the_answer_it_had(
    auth_server: FakeAuthServer, caplog: pytest.LogCaptureFixture
) -> None:
    verifier = auth_server.verifier()
    key = auth_server.api_key()
    known = verifier.verify(key)
    flow = flow_for(verifier, key, known)
    request_of(next(flow))
    assert outcome(lambda: flow.throw(AuthServerUnavailable(detail="connection refused"))) is known
    assert "renewing it failed (connection refused)" in caplog.text


def test_a_first_answer_that_cannot_reach_the_server_is_unavailable(auth_server: FakeAuthServer) -> None:
    verifier = auth_server.verifier()
    verifier.verify(auth_server.api_key())
    key = auth_server.api_key()
    flow = flow_for(verifier, key)
    request_of(next(flow))
    with pytest.raises(AuthServerUnavailable):
        flow.throw(AuthServerUnavailable(detail="connection refused"))
    # Nothing is remembered of it: the next request asks again.
    assert (len(verifier._accepted), len(verifier._refused)) == (1, 0)


def test_a_renewal_that_finds_the_credential_revoked_forgets_the_cached_answer(auth_server: FakeAuthServer) -> None:
    verifier = auth_server.verifier()
    key = auth_server.api_key()
    known = verifier.verify(key)
    auth_server.revoke(key)
    flow = flow_for(verifier, key, known)
    introspection = request_of(next(flow))
    with pytest.raises(InvalidToken):
        flow.send(auth_server.handler(introspection))
    assert (len(verifier._accepted), len(verifier._refused)) == (0, 1)


def test_a_failed_jwks_refresh_keeps_the_known_keys(
    auth_server: FakeAuthServer, fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    verifier = auth_server.verifier(jwks_max_age=60)
    token = auth_server.jwt()
    verifier.verify(token)
    fake_clock.advance(60)  # the JWKS is due to be fetched again
    flow = flow_for(verifier, token)
    refresh = shared_fetch(next(flow))
    jwks = request_of(next(refresh.flow))
    assert outcome(lambda: refresh.flow.send(httpx.Response(500, request=jwks))) is None
    assert outcome(lambda: flow.send(None)).sub == "7"
    assert "keeping the cached JWKS" in caplog.text


def test_a_jwks_fetch_failing_with_the_kid_unknown_is_raised_in_the_flow_that_asked(
    auth_server: FakeAuthServer,
) -> None:
    verifier = auth_server.verifier()
    flow = flow_for(verifier, auth_server.jwt())
    fetch_metadata(auth_server, next(flow))
    refresh = shared_fetch(flow.send(None))
    request_of(next(refresh.flow))
    # The shared fetch hands its error back (its driver holds a lock) ...
    error = outcome(lambda: refresh.flow.throw(AuthServerUnavailable(detail="connection refused")))
    assert isinstance(error, AuthServerUnavailable)
    assert error.detail is not None
    assert error.detail.startswith("JWKS: ")
    # ... and resume() raises it in the flow: 503, not 401 (a good token cannot be told from a bad one).
    with pytest.raises(AuthServerUnavailable):
        resume(flow, error)


def test_resume_returns_the_next_step_and_then_the_outcome(auth_server: FakeAuthServer) -> None:
    verifier = auth_server.verifier()
    verifier.verify(auth_server.api_key())
    flow = flow_for(verifier, auth_server.api_key(sub="8"))
    introspection = request_of(resume(flow, None))
    done = resume(flow, auth_server.handler(introspection))
    assert isinstance(done, Done)
    assert done.value.sub == "8"
