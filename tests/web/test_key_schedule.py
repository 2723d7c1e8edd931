"""The server's scheduled rotation of the signing key (signing_key_rotation_days), run by
housekeeping: the new key and its "keys.rotated" audit event in one unit, the old key
published while its tokens live, and no second rotation when another node rotated first."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from starlette.testclient import TestClient

from keyturn.core.clock import FrozenClock
from keyturn.core.key_rotation import rotate_for_tokens
from keyturn.core.service import run
from keyturn.runtime import Runtime, open_runtime
from keyturn.settings import Settings
from keyturn.web.app import create_app

DAY = 86_400


@pytest.fixture
def scheduled(settings: Settings) -> Settings:
    # Housekeeping every second (jittered), rotation once a day.
    return settings.with_overrides(signing_key_rotation_days=1, purge_interval=1)


@pytest.fixture
def node(scheduled: Settings, clock: FrozenClock) -> Iterator[Runtime]:
    opened = open_runtime(scheduled, clock=clock)
    yield opened
    opened.close()


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within 10 s")
        time.sleep(0.05)


def published(client: TestClient) -> list[str]:
    response = client.get("/oauth/jwks")
    assert response.status_code == 200
    return [key["kid"] for key in response.json()["keys"]]


def rotations(runtime: Runtime) -> list[tuple[int, dict[str, object]]]:
    return [(event.at, dict(event.detail)) for event in runtime.store.list_events(kind="keys.rotated")]


def test_housekeeping_rotates_the_key_after_a_day_and_audits_it_with_the_key(node: Runtime, clock: FrozenClock) -> None:
    first = node.keyring.active.kid
    clock.advance(DAY)
    now = clock.now()
    claims = {"iss": node.settings.issuer, "sub": "7", "iat": now, "exp": now + 3600, "jti": "j", "scope": "sms"}
    signed_before = node.ctx.jwt.encode(claims)
    with TestClient(create_app(node), base_url="http://127.0.0.1:8000") as client:
        wait_for(lambda: len(published(client)) == 2, "housekeeping did not rotate the key")
        new = node.keyring.active.kid
        assert new != first
        assert published(client) == [new, first]
        assert rotations(node) == [(clock.now(), {"kid": new, "via": "schedule"})]
        # The old key stays published while tokens it signed may live: the longest
        # access-token lifetime plus a minute of clock skew.
        keep = node.settings.access_token_ttl + 60
        keys = node.store.list_signing_keys(clock.now())
        assert [(k.kid, k.created_at, k.retired_at, k.expires_at) for k in keys] == [
            (new, clock.now(), None, None),
            (first, clock.now() - DAY, clock.now(), clock.now() + keep),
        ]
        assert node.ctx.jwt.decode(signed_before) == claims
        clock.advance(keep - 1)
        node.keyring.reload()
        assert published(client) == [new, first]
        clock.advance(1)
        wait_for(lambda: published(client) == [new], "the old key did not leave the JWKS")
        assert node.keyring.active.kid == new
        assert len(rotations(node)) == 1


def test_no_rotation_before_the_day_has_passed(node: Runtime, clock: FrozenClock) -> None:
    first = node.keyring.active.kid
    clock.advance(DAY - 1)
    with TestClient(create_app(node), base_url="http://127.0.0.1:8000") as client:
        time.sleep(2.5)  # housekeeping runs every 0.8-1.2 s: twice at least
        assert published(client) == [first]
    assert rotations(node) == []


def test_housekeeping_after_another_nodes_rotation_writes_no_second_key(
    node: Runtime, scheduled: Settings, clock: FrozenClock
) -> None:
    first = node.keyring.active.kid
    clock.advance(DAY)
    other = open_runtime(scheduled, clock=clock)  # another node, on the same database
    try:
        theirs = run(rotate_for_tokens(other.ctx, other.keyring, via="cli"))  # the command's path
    finally:
        other.close()
    assert node.keyring.active.kid == first  # this node has not seen it yet
    with TestClient(create_app(node), base_url="http://127.0.0.1:8000") as client:
        wait_for(lambda: node.keyring.active.kid == theirs.kid, "housekeeping did not reload the key ring")
        time.sleep(2.5)  # housekeeping runs every 0.8-1.2 s: twice at least
        assert published(client) == [theirs.kid, first]
    assert [k.kid for k in node.store.list_signing_keys(clock.now())] == [theirs.kid, first]
    assert rotations(node) == [(clock.now(), {"kid": theirs.kid, "via": "cli"})]
