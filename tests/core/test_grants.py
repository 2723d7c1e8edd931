"""The grants of the token endpoint: client credentials (RFC 6749 §4.4), authorization
code with PKCE (§4.1.3, RFC 7636) and refresh with rotation (§6, RFC 9700 §4.14.2)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from keyturn.core import pkce
from keyturn.core.codes import issue_code
from keyturn.core.context import Context
from keyturn.core.credentials import Kind, kind_of
from keyturn.core.errors import InvalidGrant, InvalidRequest, InvalidScope, UnauthorizedClient, UnsupportedGrantType
from keyturn.core.models import Account, TokenKind
from keyturn.core.service import commit_now

from .conftest import Registered, register, token

VERIFIER = "dBjftJeZ4CVP-mJ92K9e3p-fQzR4Tz8uB6f3f8w5J5bRkXp1lq2"
REDIRECT = "https://app.example.com/cb"


def stored(ctx: Context, secret: str):  # type: ignore[no-untyped-def]
    return ctx.store.find_token(ctx.hasher.token_key(secret))


# ---- dispatch ----


def test_unknown_and_missing_grant_types(ctx: Context, owner: Account) -> None:
    app = register(ctx, owner)
    with pytest.raises(UnsupportedGrantType) as refused:
        token(ctx, None, app.post(grant_type="password"))
    # The request's text goes to the log detail, not back to the client.
    assert "password" not in refused.value.description
    assert refused.value.detail == "grant_type 'password'"
    with pytest.raises(InvalidRequest, match="grant_type"):
        token(ctx, None, app.post())


# ---- client credentials ----


def cc_client(ctx: Context, owner: Account, **options: object) -> Registered:
    options.setdefault("grant_types", ["client_credentials"])
    options.setdefault("redirect_uris", [])
    return register(ctx, owner, **options)


def test_client_credentials_issues_an_opaque_token_for_the_owner(ctx: Context, owner: Account) -> None:
    app = cc_client(ctx, owner, scopes=["sms", "balance"])
    body = token(ctx, app.basic(), {"grant_type": "client_credentials", "scope": "balance sms"})
    assert set(body) == {"access_token", "token_type", "expires_in", "scope", "created_at"}
    assert (body["token_type"], body["expires_in"], body["scope"]) == ("Bearer", 3600, "balance sms")
    assert body["created_at"] == ctx.clock.now()
    assert kind_of(body["access_token"]) is Kind.ACCESS_TOKEN
    record = stored(ctx, body["access_token"])
    assert record is not None
    assert (record.kind, record.account_id, record.client_id) == ("access", owner.id, app.client.client_id)
    assert (record.scopes, record.expires_at) == (("balance", "sms"), ctx.clock.now() + 3600)


def test_client_credentials_without_scope_gets_the_defaults(ctx: Context, owner: Account) -> None:
    # sms77: "If the scope is not specified or is empty, the default scope is used."
    unrestricted = cc_client(ctx, owner)
    assert token(ctx, unrestricted.basic(), {"grant_type": "client_credentials"})["scope"] == "sms"
    registered = cc_client(ctx, owner, scopes=["sms", "balance"])
    assert token(ctx, registered.basic(), {"grant_type": "client_credentials"})["scope"] == "sms"
    # Not the client's registered scopes instead: RFC 6749 §3.3 has the request fail.
    analytics = cc_client(ctx, owner, scopes=["analytics", "balance"])
    with pytest.raises(InvalidScope, match="none of the default scopes"):
        token(ctx, analytics.basic(), {"grant_type": "client_credentials"})


def test_client_credentials_without_scope_and_without_defaults_gets_the_registered_scopes(
    ctx: Context, owner: Account
) -> None:
    # SIPSIM: scopes "limited to those configured for the integration", and no default.
    ctx = replace(ctx, settings=ctx.settings.with_overrides(default_scopes=[]))
    app = cc_client(ctx, owner, scopes=["analytics", "balance"])
    assert token(ctx, app.basic(), {"grant_type": "client_credentials"})["scope"] == "analytics balance"


@pytest.mark.parametrize("scope", ["voice", "sms voice", "analytics"])
def test_client_credentials_scope_must_be_allowed(ctx: Context, owner: Account, scope: str) -> None:
    app = cc_client(ctx, owner, scopes=["sms", "balance"])
    with pytest.raises(InvalidScope):
        token(ctx, app.basic(), {"grant_type": "client_credentials", "scope": scope})


def test_client_credentials_needs_the_grant(ctx: Context, owner: Account) -> None:
    app = register(ctx, owner)  # authorization_code + refresh_token only
    with pytest.raises(UnauthorizedClient):
        token(ctx, app.basic(), {"grant_type": "client_credentials"})


def test_client_credentials_is_for_confidential_clients_only(ctx: Context, owner: Account) -> None:
    public = register(ctx, owner, confidential=False)
    with pytest.raises(UnauthorizedClient):
        token(ctx, None, public.post(grant_type="client_credentials"))


def test_per_client_lifetime(ctx: Context, owner: Account) -> None:
    app = cc_client(ctx, owner)
    changed = type(app.client)(**{**_fields(app.client), "access_token_ttl": 7200})
    commit_now(ctx.store, lambda unit: unit.update_client(changed))
    ctx.clients.invalidate(app.client.client_id)
    assert token(ctx, app.basic(), {"grant_type": "client_credentials"})["expires_in"] == 7200


def _fields(obj: object) -> dict[str, object]:
    return {name: getattr(obj, name) for name in obj.__slots__}  # type: ignore[attr-defined]


# ---- authorization code ----


def code_for(
    ctx: Context, app: Registered, owner: Account, *, challenge: bool = True, redirect: str | None = REDIRECT
) -> str:
    return issue_code(
        ctx,
        app.client,
        account_id=owner.id,
        scopes=("sms", "balance"),
        redirect_uri=redirect,
        code_challenge=pkce.s256(VERIFIER) if challenge else None,
        code_challenge_method="S256" if challenge else None,
    )


def exchange(ctx: Context, app: Registered, code: str, **extra: str) -> dict[str, object]:
    params = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": VERIFIER}
    params.update(extra)
    params = {k: v for k, v in params.items() if v}
    return token(ctx, app.basic() if app.secret else None, params if app.secret else app.post(**params))


def test_code_exchange_with_pkce(ctx: Context, owner: Account) -> None:
    app = register(ctx, owner)
    body = exchange(ctx, app, code_for(ctx, app, owner))
    assert set(body) == {"access_token", "token_type", "expires_in", "scope", "created_at", "refresh_token"}
    assert body["scope"] == "sms balance"
    access, refresh = stored(ctx, str(body["access_token"])), stored(ctx, str(body["refresh_token"]))
    assert access is not None
    assert refresh is not None
    assert (access.account_id, refresh.account_id) == (owner.id, owner.id)
    assert access.grant_id == refresh.grant_id
    assert (refresh.kind, refresh.expires_at) == ("refresh", ctx.clock.now() + ctx.settings.refresh_token_ttl)


def test_public_client_code_exchange(ctx: Context, owner: Account) -> None:
    app = register(ctx, owner, confidential=False)
    body = exchange(ctx, app, code_for(ctx, app, owner))
    assert "refresh_token" in body


def test_codes_are_stored_only_under_their_time_and_keyed_hash(ctx: Context, owner: Account) -> None:
    app = register(ctx, owner)
    code = code_for(ctx, app, owner)
    assert kind_of(code) is Kind.AUTHORIZATION_CODE
    key = ctx.hasher.token_key(code)
    unit = ctx.store.begin()
    assert unit.claim_code(ctx.hasher.digest(code), app.client.client_id, ctx.clock.now()) == (None, False)
    consumed, replayed = unit.claim_code(key, app.client.client_id, ctx.clock.now())
    assert consumed is not None
    assert not replayed
    assert consumed.code_hash == key
    assert key[6:] == ctx.hasher.digest(code)[:26]


def test_a_replayed_code_is_refused_and_revokes_what_it_issued(ctx: Context, owner: Account) -> None:
    app = register(ctx, owner)
    code = code_for(ctx, app, owner)
    body = exchange(ctx, app, code)
    ctx.clock.advance(5)
    with pytest.raises(InvalidGrant, match="already been used"):
        exchange(ctx, app, code)
    for issued in (body["access_token"], body["refresh_token"]):
        record = stored(ctx, str(issued))
        assert record is not None
        assert record.revoked_at == ctx.clock.now()
    assert [e.kind for e in ctx.store.list_events(kind="authorization_code.replayed")] == [
        "authorization_code.replayed"
    ]


def test_an_expired_code_is_refused(ctx: Context, owner: Account) -> None:
    app = register(ctx, owner)
    code = code_for(ctx, app, owner)
    ctx.clock.advance(60)
    with pytest.raises(InvalidGrant, match="expired"):
        exchange(ctx, app, code)


def test_a_code_works_until_its_last_second(ctx: Context, owner: Account) -> None:
    app = register(ctx, owner)
    code = code_for(ctx, app, owner)
    ctx.clock.advance(59)
    assert "access_token" in exchange(ctx, app, code)


def test_a_code_is_bound_to_its_client_and_left_for_it(ctx: Context, owner: Account) -> None:
    app, thief = register(ctx, owner), register(ctx, owner)
    code = code_for(ctx, app, owner)
    with pytest.raises(InvalidGrant, match="invalid"):
        exchange(ctx, thief, code)
    assert "access_token" in exchange(ctx, app, code)


@pytest.mark.parametrize("redirect_uri", ["https://app.example.com/cb/", "https://evil.example/cb", ""])
def test_the_redirect_uri_must_match_exactly(ctx: Context, owner: Account, redirect_uri: str) -> None:
    app = register(ctx, owner)
    with pytest.raises(InvalidGrant, match="redirect_uri"):
        exchange(ctx, app, code_for(ctx, app, owner), redirect_uri=redirect_uri)


def test_no_redirect_uri_needed_when_authorize_had_none(ctx: Context, owner: Account) -> None:
    app = register(ctx, owner)
    assert "access_token" in exchange(ctx, app, code_for(ctx, app, owner, redirect=None), redirect_uri="")


def test_pkce_mismatches_are_invalid_grant(ctx: Context, owner: Account) -> None:
    app = register(ctx, owner)
    with pytest.raises(InvalidGrant, match="does not match"):
        exchange(ctx, app, code_for(ctx, app, owner), code_verifier="x" * 43)
    with pytest.raises(InvalidGrant, match="code_verifier is missing"):
        exchange(ctx, app, code_for(ctx, app, owner), code_verifier="")
    with pytest.raises(InvalidGrant, match="no code_challenge"):
        exchange(ctx, app, code_for(ctx, app, owner, challenge=False))


def test_a_malformed_verifier_is_invalid_request(ctx: Context, owner: Account) -> None:
    app = register(ctx, owner)
    with pytest.raises(InvalidRequest) as refused:
        exchange(ctx, app, code_for(ctx, app, owner), code_verifier="short")
    assert (
        refused.value.description == "The code_verifier must be 43 to 128 unreserved characters (RFC 7636 section 4.1)."
    )


def test_a_public_client_must_use_pkce(ctx: Context, owner: Account) -> None:
    app = register(ctx, owner, confidential=False)
    with pytest.raises(InvalidGrant, match="PKCE"):
        exchange(ctx, app, code_for(ctx, app, owner, challenge=False), code_verifier="")


def test_a_confidential_client_may_skip_pkce(ctx: Context, owner: Account) -> None:
    app = register(ctx, owner)
    assert "access_token" in exchange(ctx, app, code_for(ctx, app, owner, challenge=False), code_verifier="")


def test_no_refresh_token_without_the_refresh_grant(ctx: Context, owner: Account) -> None:
    app = register(ctx, owner, grant_types=["authorization_code"])
    assert "refresh_token" not in exchange(ctx, app, code_for(ctx, app, owner))


def test_an_unknown_code(ctx: Context, owner: Account) -> None:
    app = register(ctx, owner)
    with pytest.raises(InvalidGrant):
        exchange(ctx, app, "kt_ac_not-a-real-code")


# ---- refresh ----


def refreshable(ctx: Context, owner: Account, **options: object) -> tuple[Registered, dict[str, object]]:
    app = register(ctx, owner, **options)
    return app, exchange(ctx, app, code_for(ctx, app, owner))


def refresh(ctx: Context, app: Registered, refresh_token: object, **extra: str) -> dict[str, object]:
    return token(ctx, app.basic(), {"grant_type": "refresh_token", "refresh_token": str(refresh_token), **extra})


def test_refresh_rotates_the_refresh_token(ctx: Context, owner: Account) -> None:
    app, first = refreshable(ctx, owner)
    ctx.clock.advance(100)
    second = refresh(ctx, app, first["refresh_token"])
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert (second["scope"], second["created_at"]) == ("sms balance", ctx.clock.now())
    old, new = stored(ctx, str(first["refresh_token"])), stored(ctx, str(second["refresh_token"]))
    assert old is not None
    assert new is not None
    assert old.rotated_at == ctx.clock.now()
    assert old.revoked_at is None
    assert (new.grant_id, new.parent_hash) == (old.grant_id, old.token_hash)
    # The first access token stays valid until it expires.
    first_access = stored(ctx, str(first["access_token"]))
    assert first_access is not None
    assert first_access.revoked_at is None


def test_a_retry_inside_the_grace_window_gets_the_same_pair(ctx: Context, owner: Account) -> None:
    app, first = refreshable(ctx, owner)
    second = refresh(ctx, app, first["refresh_token"])
    ctx.clock.advance(10)
    assert refresh(ctx, app, first["refresh_token"]) == second
    new = stored(ctx, str(second["refresh_token"]))
    assert new is not None
    assert new.revoked_at is None


def test_reuse_after_the_grace_window_revokes_the_family(ctx: Context, owner: Account) -> None:
    app, first = refreshable(ctx, owner)
    second = refresh(ctx, app, first["refresh_token"])
    ctx.clock.advance(11)
    with pytest.raises(InvalidGrant, match="family has been revoked"):
        refresh(ctx, app, first["refresh_token"])
    for issued in (first["access_token"], second["access_token"], second["refresh_token"]):
        record = stored(ctx, str(issued))
        assert record is not None
        assert record.revoked_at == ctx.clock.now()
    with pytest.raises(InvalidGrant, match="revoked"):
        refresh(ctx, app, second["refresh_token"])
    (event,) = ctx.store.list_events(kind="refresh_token.reused")
    assert (event.client_id, event.account_id, event.detail["tokens_revoked"]) == (app.client.client_id, owner.id, 4)


def test_reuse_after_the_new_token_was_used_is_a_replay_even_in_the_window(ctx: Context, owner: Account) -> None:
    app, first = refreshable(ctx, owner)
    second = refresh(ctx, app, first["refresh_token"])
    third = refresh(ctx, app, second["refresh_token"])
    with pytest.raises(InvalidGrant, match="family has been revoked"):
        refresh(ctx, app, first["refresh_token"])
    latest = stored(ctx, str(third["refresh_token"]))
    assert latest is not None
    assert latest.revoked_at is not None


def test_without_a_grace_window_any_reuse_revokes(ctx: Context, owner: Account) -> None:
    ctx.settings = ctx.settings.with_overrides(refresh_token_reuse_grace=0)
    app, first = refreshable(ctx, owner)
    second = refresh(ctx, app, first["refresh_token"])
    old = stored(ctx, str(first["refresh_token"]))
    assert old is not None
    assert old.retry_blob is None
    with pytest.raises(InvalidGrant):
        refresh(ctx, app, first["refresh_token"])
    new = stored(ctx, str(second["refresh_token"]))
    assert new is not None
    assert new.revoked_at is not None


def test_the_retry_blob_does_not_contain_the_new_tokens_in_the_clear(ctx: Context, owner: Account) -> None:
    app, first = refreshable(ctx, owner)
    second = refresh(ctx, app, first["refresh_token"])
    old = stored(ctx, str(first["refresh_token"]))
    assert old is not None
    assert old.retry_blob is not None
    assert str(second["refresh_token"]).encode() not in old.retry_blob
    assert str(second["access_token"]).encode() not in old.retry_blob


def test_refresh_may_narrow_the_scope_but_never_widen_it(ctx: Context, owner: Account) -> None:
    app, first = refreshable(ctx, owner)
    narrowed = refresh(ctx, app, first["refresh_token"], scope="sms")
    assert narrowed["scope"] == "sms"
    # RFC 6749 §6: the new refresh token keeps the original scope.
    assert refresh(ctx, app, narrowed["refresh_token"])["scope"] == "sms balance"
    fresh = exchange(ctx, app, code_for(ctx, app, owner))
    with pytest.raises(InvalidScope, match="analytics"):
        refresh(ctx, app, fresh["refresh_token"], scope="sms analytics")
    # The refused request rotated nothing.
    unchanged = stored(ctx, str(fresh["refresh_token"]))
    assert unchanged is not None
    assert unchanged.rotated_at is None


def narrow(ctx: Context, app: Registered, *scopes: str) -> None:
    """The client's registration now allows only ``scopes`` (as the portal edits it)."""
    commit_now(ctx.store, lambda unit: unit.update_client(replace(app.client, scopes=scopes)))
    ctx.clients.invalidate(app.client.client_id)


def test_refresh_after_the_clients_scopes_were_narrowed_returns_only_what_it_may_still_have(
    ctx: Context, owner: Account
) -> None:
    app, first = refreshable(ctx, owner)
    assert first["scope"] == "sms balance"
    narrow(ctx, app, "sms", "analytics")
    second = refresh(ctx, app, first["refresh_token"])
    assert second["scope"] == "sms"
    access, renewed = stored(ctx, str(second["access_token"])), stored(ctx, str(second["refresh_token"]))
    assert access is not None
    assert renewed is not None
    assert (access.scopes, renewed.scopes) == (("sms",), ("sms",))
    # Widening the registration again does not bring back what the refresh token lost.
    narrow(ctx, app)
    assert refresh(ctx, app, second["refresh_token"])["scope"] == "sms"


def test_refresh_asking_for_a_scope_the_client_may_no_longer_have_is_invalid_scope(
    ctx: Context, owner: Account
) -> None:
    app, first = refreshable(ctx, owner)
    narrow(ctx, app, "sms")
    # RFC 6749 §6: the requested scope "MUST NOT include any scope not originally granted".
    with pytest.raises(InvalidScope, match="no longer have the scope 'balance'"):
        refresh(ctx, app, first["refresh_token"], scope="sms balance")
    unchanged = stored(ctx, str(first["refresh_token"]))
    assert unchanged is not None
    assert unchanged.rotated_at is None
    assert refresh(ctx, app, first["refresh_token"], scope="sms")["scope"] == "sms"


def test_refresh_when_no_granted_scope_is_still_allowed_is_invalid_scope_and_rotates_nothing(
    ctx: Context, owner: Account
) -> None:
    app, first = refreshable(ctx, owner)
    narrow(ctx, app, "analytics")
    with pytest.raises(InvalidScope, match="None of the scopes granted"):
        refresh(ctx, app, first["refresh_token"])
    unchanged = stored(ctx, str(first["refresh_token"]))
    assert unchanged is not None
    assert (unchanged.rotated_at, unchanged.revoked_at) == (None, None)


def test_refresh_of_a_grant_that_never_had_a_scope_keeps_working(ctx: Context, owner: Account) -> None:
    app = register(ctx, owner)
    code = issue_code(
        ctx,
        app.client,
        account_id=owner.id,
        scopes=(),
        redirect_uri=REDIRECT,
        code_challenge=pkce.s256(VERIFIER),
        code_challenge_method="S256",
    )
    first = exchange(ctx, app, code)
    second = refresh(ctx, app, first["refresh_token"])
    assert second["scope"] == ""
    assert second["refresh_token"] != first["refresh_token"]


def test_a_refresh_token_is_bound_to_its_client(ctx: Context, owner: Account) -> None:
    app, first = refreshable(ctx, owner)
    other = register(ctx, owner)
    with pytest.raises(InvalidGrant):
        refresh(ctx, other, first["refresh_token"])
    # The rightful client can still use it.
    assert "refresh_token" in refresh(ctx, app, first["refresh_token"])


def test_an_expired_refresh_token(ctx: Context, owner: Account) -> None:
    app, first = refreshable(ctx, owner)
    ctx.clock.advance(ctx.settings.refresh_token_ttl)
    with pytest.raises(InvalidGrant, match="expired"):
        refresh(ctx, app, first["refresh_token"])


@pytest.mark.parametrize("value", ["garbage", "kt_at_" + "x" * 49])
def test_malformed_or_wrong_kind_refresh_tokens(ctx: Context, owner: Account, value: str) -> None:
    app, _ = refreshable(ctx, owner)
    with pytest.raises(InvalidGrant):
        refresh(ctx, app, value)


def test_an_access_token_is_not_a_refresh_token(ctx: Context, owner: Account) -> None:
    app, first = refreshable(ctx, owner)
    with pytest.raises(InvalidGrant):
        refresh(ctx, app, first["access_token"])


def test_refresh_needs_the_grant(ctx: Context, owner: Account) -> None:
    _, first = refreshable(ctx, owner)
    limited = register(ctx, owner, grant_types=["authorization_code"])
    with pytest.raises(UnauthorizedClient):
        refresh(ctx, limited, first["refresh_token"])


def test_refreshed_access_tokens_keep_the_token_kind(ctx: Context, owner: Account) -> None:
    app, first = refreshable(ctx, owner)
    second = refresh(ctx, app, first["refresh_token"])
    record = stored(ctx, str(second["access_token"]))
    assert record is not None
    assert record.kind == TokenKind.ACCESS.value


def test_a_public_client_may_refresh_with_the_token_alone(ctx: Context, owner: Account) -> None:
    # RFC 6749 §6: authentication only for confidential clients; §3.2.1: client_id optional.
    app = register(ctx, owner, confidential=False)
    pair = exchange(ctx, app, code_for(ctx, app, owner))
    body = token(ctx, None, {"grant_type": "refresh_token", "refresh_token": str(pair["refresh_token"])})
    assert body["refresh_token"] != pair["refresh_token"]


def test_a_confidential_client_must_still_authenticate_to_refresh(ctx: Context, owner: Account) -> None:
    from keyturn.core.errors import InvalidClient

    _, pair = refreshable(ctx, owner)
    with pytest.raises(InvalidClient):
        token(ctx, None, {"grant_type": "refresh_token", "refresh_token": str(pair["refresh_token"])})
    with pytest.raises(InvalidClient):
        token(ctx, None, {"grant_type": "refresh_token", "refresh_token": "kt_rt_unknown"})
