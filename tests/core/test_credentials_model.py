"""One credential model: introspection (RFC 7662), revocation (RFC 7009) and the
principal behind access tokens (opaque and RFC 9068 JWT), refresh tokens and API keys."""

from __future__ import annotations

import threading

import jwt
import pytest

from keyturn.core import token_endpoint
from keyturn.core.context import Context
from keyturn.core.credentials import Kind, new_secret
from keyturn.core.errors import InvalidClient, UnauthorizedClient, UnsupportedTokenType
from keyturn.core.introspection import introspect
from keyturn.core.models import Account, Token
from keyturn.core.principals import resolve
from keyturn.core.service import commit_now, run

from ..helpers import add_api_key
from .conftest import Registered, register, revoke, token
from .test_grants import code_for, exchange


def cc(ctx: Context, owner: Account, **options: object) -> tuple[Registered, dict[str, object]]:
    app = register(ctx, owner, grant_types=["client_credentials"], redirect_uris=[], **options)
    return app, token(ctx, app.basic(), {"grant_type": "client_credentials", "scope": "sms balance"})


# ---- introspection ----


def test_introspecting_an_active_access_token(ctx: Context, owner: Account) -> None:
    app, issued = cc(ctx, owner)
    body = introspect(ctx, app.basic(), {"token": str(issued["access_token"])})
    now = ctx.clock.now()
    assert body == {
        "active": True,
        "scope": "sms balance",
        "client_id": app.client.client_id,
        "sub": str(owner.id),
        "username": "ann@example.com",
        "token_type": "Bearer",
        "token_use": "access_token",
        "exp": now + 3600,
        "iat": now,
        "iss": "http://127.0.0.1:8000",
        "aud": "http://127.0.0.1:8000",
    }


def test_introspecting_a_refresh_token_and_an_api_key(ctx: Context, owner: Account) -> None:
    app = register(ctx, owner)
    pair = exchange(ctx, app, code_for(ctx, app, owner))
    body = introspect(ctx, app.basic(), {"token": str(pair["refresh_token"]), "token_type_hint": "refresh_token"})
    assert (body["active"], body["token_use"], "token_type" in body) == (True, "refresh_token", False)
    key = add_api_key(ctx, owner, name="CI")
    # API keys belong to no client: only a resource server may introspect them.
    assert introspect(ctx, app.basic(), {"token": key.key}) == {"active": False}
    api = register(ctx, owner, grant_types=["client_credentials"], redirect_uris=[], resource_server=True)
    body = introspect(ctx, api.basic(), {"token": key.key, "token_type_hint": "access_token"})
    assert body["active"] is True
    assert (body["token_use"], body["sub"], "client_id" in body, "exp" in body) == (
        "api_key",
        str(owner.id),
        False,
        False,
    )
    # An unrestricted key carries every scope of the catalogue.
    assert body["scope"] == "sms balance analytics"


@pytest.mark.parametrize("case", ["unknown", "garbage", "expired", "revoked", "rotated-refresh", "revoked-key"])
def test_anything_not_active_is_just_inactive(ctx: Context, owner: Account, case: str) -> None:
    app = register(ctx, owner, grant_types=["authorization_code", "refresh_token", "client_credentials"])
    pair = exchange(ctx, app, code_for(ctx, app, owner))
    key = add_api_key(ctx, owner, name="k")
    value = {
        "unknown": "kt_at_" + "A" * 49,
        "garbage": "not a token at all",
        "expired": str(pair["access_token"]),
        "revoked": str(pair["access_token"]),
        "rotated-refresh": str(pair["refresh_token"]),
        "revoked-key": key.key,
    }[case]
    if case == "expired":
        ctx.clock.advance(3600)
    elif case == "revoked":
        revoke(ctx, app.basic(), {"token": value})
    elif case == "rotated-refresh":
        token(ctx, app.basic(), {"grant_type": "refresh_token", "refresh_token": value})
    elif case == "revoked-key":
        commit_now(ctx.store, lambda unit: unit.revoke_api_key(key.api_key.id, owner.id, ctx.clock.now()))
    assert introspect(ctx, app.basic(), {"token": value}) == {"active": False}


def test_only_confidential_clients_introspect(ctx: Context, owner: Account) -> None:
    _, issued = cc(ctx, owner)
    public = register(ctx, owner, confidential=False)
    with pytest.raises(InvalidClient, match="confidential"):
        introspect(ctx, None, public.post(token=str(issued["access_token"])))


# ---- JWT access tokens (RFC 9068) ----


def test_jwt_access_tokens(ctx: Context, owner: Account) -> None:
    app, issued = cc(ctx, owner, token_format="jwt")
    value = str(issued["access_token"])
    header = jwt.get_unverified_header(value)
    (jwk,) = [k for k in ctx.jwt._keyring.jwks["keys"] if k["kid"] == header["kid"]]  # type: ignore[attr-defined]
    assert (header["typ"], header["alg"]) == ("at+jwt", "ES256")
    claims = jwt.decode(
        value,
        jwt.PyJWK(jwk).key,
        algorithms=["ES256"],
        audience="http://127.0.0.1:8000",
        options={"verify_exp": False},  # the test clock is frozen in 2026-01
    )
    now = ctx.clock.now()
    assert set(claims) == {"iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope"}
    assert (claims["iss"], claims["sub"], claims["client_id"]) == (
        "http://127.0.0.1:8000",
        str(owner.id),
        app.client.client_id,
    )
    assert (claims["exp"], claims["iat"], claims["scope"]) == (now + 3600, now, "sms balance")
    # The server keeps a digest of the jti, so the token can be introspected and revoked.
    assert introspect(ctx, app.basic(), {"token": value})["active"] is True
    revoke(ctx, app.basic(), {"token": value})
    assert introspect(ctx, app.basic(), {"token": value}) == {"active": False}


def test_an_expired_jwt_is_not_a_credential(ctx: Context, owner: Account) -> None:
    _, issued = cc(ctx, owner, token_format="jwt")
    assert resolve(ctx, str(issued["access_token"])) is not None
    ctx.clock.advance(3600)
    assert resolve(ctx, str(issued["access_token"])) is None


def test_a_forged_jwt_is_not_a_credential(ctx: Context, owner: Account) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    app, issued = cc(ctx, owner, token_format="jwt")
    claims = jwt.decode(str(issued["access_token"]), options={"verify_signature": False})
    header = jwt.get_unverified_header(str(issued["access_token"]))
    forged = jwt.encode(claims, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256", headers=header)
    assert resolve(ctx, forged) is None
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": header["kid"], "typ": "at+jwt"})
    assert resolve(ctx, unsigned) is None
    assert introspect(ctx, app.basic(), {"token": forged}) == {"active": False}


# ---- revocation ----


def test_revoking_unknown_or_garbage_tokens_succeeds_silently(ctx: Context, owner: Account) -> None:
    app, _ = cc(ctx, owner)
    revoke(ctx, app.basic(), {"token": "kt_at_" + "B" * 49})
    revoke(ctx, app.basic(), {"token": "whatever", "token_type_hint": "bogus_hint"})


def test_revoking_an_access_token_leaves_its_family(ctx: Context, owner: Account) -> None:
    app = register(ctx, owner)
    pair = exchange(ctx, app, code_for(ctx, app, owner))
    revoke(ctx, app.basic(), {"token": str(pair["access_token"]), "token_type_hint": "access_token"})
    assert resolve(ctx, str(pair["access_token"])) is None
    assert resolve(ctx, str(pair["refresh_token"]), accept_refresh=True) is not None


def test_revoking_a_refresh_token_revokes_its_family(ctx: Context, owner: Account) -> None:
    app = register(ctx, owner)
    pair = exchange(ctx, app, code_for(ctx, app, owner))
    revoke(ctx, app.basic(), {"token": str(pair["refresh_token"])})
    assert resolve(ctx, str(pair["access_token"])) is None
    assert resolve(ctx, str(pair["refresh_token"]), accept_refresh=True) is None
    (event,) = ctx.store.list_events(kind="token.revoked")
    assert event.detail == {"kind": "refresh", "tokens_revoked": 2}


def test_a_client_revokes_only_its_own_tokens(ctx: Context, owner: Account) -> None:
    _, issued = cc(ctx, owner)
    other, _ = cc(ctx, owner)
    with pytest.raises(UnauthorizedClient):
        revoke(ctx, other.basic(), {"token": str(issued["access_token"])})
    assert resolve(ctx, str(issued["access_token"])) is not None


def test_a_public_client_revokes_its_own_tokens(ctx: Context, owner: Account) -> None:
    app = register(ctx, owner, confidential=False)
    pair = exchange(ctx, app, code_for(ctx, app, owner))
    revoke(ctx, None, app.post(token=str(pair["refresh_token"])))
    assert resolve(ctx, str(pair["access_token"])) is None


def test_api_keys_are_not_revoked_here(ctx: Context, owner: Account) -> None:
    app, _ = cc(ctx, owner)
    key = add_api_key(ctx, owner, name="k")
    with pytest.raises(UnsupportedTokenType):
        revoke(ctx, app.basic(), {"token": key.key})
    assert resolve(ctx, key.key) is not None


# ---- API keys as principals ----


def test_api_key_use_is_recorded_at_most_once_a_minute(ctx: Context, owner: Account) -> None:
    key = add_api_key(ctx, owner, name="k", scopes=("sms",))
    principal = resolve(ctx, key.key)
    assert principal is not None
    assert (principal.kind, principal.account_id, principal.scopes, principal.client_id) == (
        "api_key",
        owner.id,
        ("sms",),
        None,
    )
    first = ctx.clock.now()
    ctx.clock.advance(30)
    resolve(ctx, key.key)
    assert ctx.store.list_api_keys(owner.id)[0].last_used_at == first
    ctx.clock.advance(30)
    resolve(ctx, key.key)
    assert ctx.store.list_api_keys(owner.id)[0].last_used_at == ctx.clock.now()


def test_an_expired_api_key(ctx: Context, owner: Account) -> None:
    key = add_api_key(ctx, owner, name="k", expires_at=ctx.clock.now() + 10)
    assert resolve(ctx, key.key) is not None
    ctx.clock.advance(10)
    assert resolve(ctx, key.key) is None


def test_a_mistyped_api_key_is_refused_without_a_lookup(ctx: Context, owner: Account) -> None:
    key = add_api_key(ctx, owner, name="k")
    typo = key.key[:-8] + ("A" if key.key[-8] != "A" else "B") + key.key[-7:]

    class NoLookups:
        def __getattr__(self, name: str) -> object:
            raise AssertionError(f"unexpected store call {name}")

    real_store, ctx.store = ctx.store, NoLookups()  # type: ignore[assignment]
    try:
        assert resolve(ctx, typo) is None
    finally:
        ctx.store = real_store


# ---- concurrency ----


def test_concurrent_refreshes_of_one_token_get_one_pair(
    ctx: Context, owner: Account, request: pytest.FixtureRequest
) -> None:
    if "memory" in request.node.callspec.id:
        pytest.skip("the memory store serialises everything; this is about the databases")
    app = register(ctx, owner)
    pair = exchange(ctx, app, code_for(ctx, app, owner))
    results: list[object] = []
    barrier = threading.Barrier(4)

    def attempt() -> None:
        # As four processes would: each thread commits its own units, at once.
        params = {"grant_type": "refresh_token", "refresh_token": str(pair["refresh_token"])}
        barrier.wait()
        try:
            results.append(run(token_endpoint.token(ctx, app.basic(), params)))
        except Exception as exc:  # recorded for the assertion below
            results.append(exc)

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(isinstance(r, dict) for r in results), results
    assert len({r["refresh_token"] for r in results}) == 1  # type: ignore[index]


# ---- tokens stored by an older Keyturn ----


def _stored_the_old_way(ctx: Context, app: Registered, owner: Account, kind: Kind) -> str:
    """A token as Keyturn stored it before keys carried the issue time: under the plain
    keyed hash of the token."""
    value = new_secret(kind)
    now = ctx.clock.now()
    unit = ctx.store.begin()
    unit.save_tokens(
        [
            Token(
                token_hash=ctx.hasher.digest(value),
                kind="refresh" if kind is Kind.REFRESH_TOKEN else "access",
                client_id=app.client.client_id,
                account_id=owner.id,
                scopes=("sms",),
                grant_id="old-grant",
                created_at=now - 60,
                expires_at=now + 3600,
            )
        ]
    )
    assert unit.commit() is False
    return value


def test_tokens_stored_by_an_older_keyturn_still_work_until_they_expire(ctx: Context, owner: Account) -> None:
    app = register(ctx, owner)
    access = _stored_the_old_way(ctx, app, owner, Kind.ACCESS_TOKEN)
    refresh = _stored_the_old_way(ctx, app, owner, Kind.REFRESH_TOKEN)
    assert introspect(ctx, app.basic(), {"token": access})["active"] is True
    principal = resolve(ctx, access)
    assert principal is not None
    assert (principal.account_id, principal.scopes) == (owner.id, ("sms",))

    pair = token(ctx, app.basic(), {"grant_type": "refresh_token", "refresh_token": refresh})
    old = ctx.store.find_token(ctx.hasher.digest(refresh))
    assert old is not None
    assert old.rotated_at == ctx.clock.now()
    new = ctx.store.find_token(ctx.hasher.token_key(str(pair["refresh_token"])))
    assert new is not None
    assert (new.grant_id, new.parent_hash) == ("old-grant", old.token_hash)
    # A retry of the old one within the grace period gets the same pair.
    again = token(ctx, app.basic(), {"grant_type": "refresh_token", "refresh_token": refresh})
    assert again["refresh_token"] == pair["refresh_token"]

    revoke(ctx, app.basic(), {"token": access})
    assert resolve(ctx, access) is None
    revoked = ctx.store.find_token(ctx.hasher.digest(access))
    assert revoked is not None
    assert revoked.revoked_at == ctx.clock.now()
