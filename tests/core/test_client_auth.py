"""Client authentication (RFC 6749 §2.3)."""

from __future__ import annotations

import base64
from urllib.parse import quote

import pytest

from keyturn.core import registration
from keyturn.core.client_auth import authenticate_client, presented_client
from keyturn.core.context import Context
from keyturn.core.errors import InvalidClient, InvalidRequest
from keyturn.core.models import Account
from keyturn.core.service import commit_now

from .conftest import register


def basic(client_id: str, secret: str) -> bytes:
    # RFC 6749 §2.3.1: each part form-urlencoded, then joined with ":" and base64-encoded.
    raw = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
    return b"Basic " + base64.b64encode(raw)


def test_client_secret_basic(ctx: Context, owner: Account) -> None:
    app = register(ctx, owner)
    assert app.secret is not None
    presented = presented_client(basic(app.client.client_id, app.secret), {})
    assert (presented.method, presented.used_basic) == ("client_secret_basic", True)
    assert authenticate_client(presented, ctx.clients, ctx.hasher) == app.client


def test_basic_credentials_are_form_urldecoded() -> None:
    presented = presented_client(basic("id with:colon", "s+cret%/x"), {})
    assert (presented.client_id, presented.secret) == ("id with:colon", "s+cret%/x")
    plus = presented_client(b"Basic " + base64.b64encode(b"a+b:c+d"), {})
    assert (plus.client_id, plus.secret) == ("a b", "c d")


def test_the_basic_scheme_name_is_case_insensitive(ctx: Context, owner: Account) -> None:
    app = register(ctx, owner)
    assert app.secret is not None
    header = b"bAsIc " + basic(app.client.client_id, app.secret)[6:]
    assert authenticate_client(presented_client(header, {}), ctx.clients, ctx.hasher) == app.client


def test_client_secret_post(ctx: Context, owner: Account) -> None:
    app = register(ctx, owner)
    presented = presented_client(None, app.post())
    assert presented.method == "client_secret_post"
    assert authenticate_client(presented, ctx.clients, ctx.hasher) == app.client


def test_none_for_a_public_client(ctx: Context, owner: Account) -> None:
    app = register(ctx, owner, confidential=False)
    presented = presented_client(None, {"client_id": app.client.client_id})
    assert presented.method == "none"
    assert authenticate_client(presented, ctx.clients, ctx.hasher) == app.client


def test_two_methods_at_once_are_invalid_request(ctx: Context, owner: Account) -> None:
    app = register(ctx, owner)
    assert app.secret is not None
    with pytest.raises(InvalidRequest, match="one client authentication method"):
        presented_client(basic(app.client.client_id, app.secret), app.post())


def test_a_client_id_in_the_body_must_match_basic(ctx: Context, owner: Account) -> None:
    app = register(ctx, owner)
    assert app.secret is not None
    header = basic(app.client.client_id, app.secret)
    assert presented_client(header, {"client_id": app.client.client_id}).method == "client_secret_basic"
    with pytest.raises(InvalidRequest, match="does not match"):
        presented_client(header, {"client_id": "someone-else"})


@pytest.mark.parametrize(
    "header",
    [b"Basic !!!not-base64", b"Basic " + base64.b64encode(b"no-colon"), b"Basic " + base64.b64encode(b":secret")],
)
def test_malformed_basic_is_invalid_client_with_a_basic_challenge(header: bytes) -> None:
    with pytest.raises(InvalidClient) as caught:
        presented_client(header, {})
    assert caught.value.used_basic is True
    assert caught.value.status_code == 401


def test_no_credentials_at_all(ctx: Context) -> None:
    with pytest.raises(InvalidClient) as caught:
        presented_client(None, {"grant_type": "client_credentials"})
    assert caught.value.used_basic is False


@pytest.mark.parametrize("case", ["unknown", "wrong-secret", "public-with-secret", "confidential-without-secret"])
def test_authentication_failures_are_invalid_client(ctx: Context, owner: Account, case: str) -> None:
    confidential = register(ctx, owner)
    public = register(ctx, owner, confidential=False)
    params = {
        "unknown": {"client_id": "nobody", "client_secret": "x"},
        "wrong-secret": {"client_id": confidential.client.client_id, "client_secret": "kt_cs_wrong"},
        "public-with-secret": {"client_id": public.client.client_id, "client_secret": "anything"},
        "confidential-without-secret": {"client_id": confidential.client.client_id},
    }[case]
    with pytest.raises(InvalidClient) as caught:
        authenticate_client(presented_client(None, params), ctx.clients, ctx.hasher)
    assert caught.value.description == "Client authentication failed."
    assert caught.value.detail  # the reason is for the log only


def test_a_deleted_client_stops_authenticating_once_the_cache_is_told(ctx: Context, owner: Account) -> None:
    app = register(ctx, owner)
    presented = presented_client(None, app.post())
    assert authenticate_client(presented, ctx.clients, ctx.hasher) == app.client
    commit_now(ctx.store, lambda unit: unit.delete_client(app.client.client_id))
    ctx.clients.invalidate(app.client.client_id)
    with pytest.raises(InvalidClient):
        authenticate_client(presented, ctx.clients, ctx.hasher)


@pytest.mark.parametrize("header", [b"Bearer kt_at_something", b"Digest username=x", b"Basic"])
def test_another_authorization_scheme_is_invalid_client_with_a_basic_challenge(
    ctx: Context, owner: Account, header: bytes
) -> None:
    # RFC 6749 §5.2: the client tried the Authorization header, so 401 and a challenge;
    # valid credentials in the body do not make the header go away.
    app = register(ctx, owner)
    with pytest.raises(InvalidClient) as caught:
        presented_client(header, app.post())
    assert caught.value.used_basic is True


def test_an_empty_basic_password_is_a_public_client_identifying_itself(ctx: Context, owner: Account) -> None:
    public = register(ctx, owner, confidential=False)
    presented = presented_client(b"Basic " + base64.b64encode(f"{public.client.client_id}:".encode()), {})
    assert (presented.method, presented.secret, presented.used_basic) == ("none", None, True)
    assert authenticate_client(presented, ctx.clients, ctx.hasher) == public.client
    confidential = register(ctx, owner)
    empty = presented_client(b"Basic " + base64.b64encode(f"{confidential.client.client_id}:".encode()), {})
    with pytest.raises(InvalidClient) as caught:
        authenticate_client(empty, ctx.clients, ctx.hasher)
    assert caught.value.used_basic is True


def test_a_client_id_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    # One base64url ID in 64 would start with "-", and `--client-id -Ab3…` on a command
    # line is then read as another option.
    drawn = iter(["-starts-with-a-dash-1234", "Ab3starts-with-a-letter-", "unused"])
    monkeypatch.setattr(registration.secrets, "token_urlsafe", lambda n: next(drawn))
    assert registration.new_client_id() == "Ab3starts-with-a-letter-"
