"""The developer portal over HTTP, through the in-process app: sign-up and profile, API keys,
OAuth clients ("Create New Client"), Sinch-style access keys and connected apps. Every
action goes through the real forms (GET the page, take its CSRF token, POST), and every
refusal is checked against the stored state: a refused request changes nothing."""

from __future__ import annotations

import html
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from keyturn.core.clock import FrozenClock
from keyturn.core.credentials import Kind, kind_of
from keyturn.core.models import Account, ApiKey, Client
from keyturn.core.ports import Conflict
from keyturn.runtime import Runtime, open_runtime
from keyturn.settings import Settings
from keyturn.store.schema import metadata
from keyturn.web.app import create_app

from ..helpers import add_account, add_client

ISSUER = "http://127.0.0.1:8000"
CATALOGUE = {"sms": "Send SMS messages", "balance": "Query balance"}
CALLBACK = "https://app.example.com/cb"
ANN, ANN_PASSWORD = "ann@example.com", "correct horse battery staple"
BOB, BOB_PASSWORD = "bob@example.com", "another good passphrase"
DAY = 86_400
START = "2026-01-01 00:00 UTC"  # FrozenClock's start, as the pages print it
EXPIRED_FORM = "This form expired"
CSRF_INPUT = re.compile(r'<input type="hidden" name="csrf" value="([^"]*)">')
SHOWN = re.compile(
    r'<label for="secret-\d+">([^<]+)</label>\s*<input id="secret-\d+" type="text" readonly value="([^"]*)">'
)
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


# ---- the server ----


@pytest.fixture
def runtime(settings: Settings, clock: FrozenClock) -> Iterator[Runtime]:
    opened = open_runtime(settings.with_overrides(scopes=CATALOGUE, default_scopes=["sms"]), clock=clock)
    yield opened
    opened.close()


@pytest.fixture
def server(runtime: Runtime) -> Any:
    return create_app(runtime)


def browser_for(server: Any) -> TestClient:
    """A browser with its own cookie jar. Not entered as a context manager: the app's
    lifespan would close the runtime, which the fixture closes."""
    return TestClient(server, base_url=ISSUER, follow_redirects=False)


@pytest.fixture
def anonymous(server: Any) -> Iterator[TestClient]:
    browser = browser_for(server)
    yield browser
    browser.close()


# ---- pages ----


def csrf_of(response: httpx.Response) -> str:
    tokens: set[str] = set(CSRF_INPUT.findall(response.text))
    assert len(tokens) == 1, tokens
    token = tokens.pop()
    assert re.fullmatch(r"[0-9a-f]{64}", token)
    return token


def shown(response: httpx.Response) -> dict[str, str]:
    """The secrets a page shows in its "copy it now" box: label → value."""
    return {label: html.unescape(value) for label, value in SHOWN.findall(response.text)}


def alert(response: httpx.Response) -> str:
    found = re.search(r'<p (?:class="alert" )?role="alert">([^<]*)</p>', response.text)
    assert found is not None, response.text
    return html.unescape(found.group(1))


def input_value(response: httpx.Response, name: str) -> str:
    found = re.search(rf'<input id="{name}" name="{name}"[^>]*\bvalue="([^"]*)">', response.text)
    assert found is not None, name
    return html.unescape(found.group(1))


def assert_page(response: httpx.Response, status: int = 200) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"


def assert_redirect(response: httpx.Response, location: str) -> None:
    assert response.status_code == 303, response.text
    assert response.headers["location"] == location


def assert_expired_form(response: httpx.Response) -> None:
    assert_page(response, 400)
    assert EXPIRED_FORM in alert(response)


def assert_not_found(response: httpx.Response) -> None:
    assert_page(response, 404)
    assert alert(response) == "There is nothing here."


# ---- stored state ----


def snapshot(runtime: Runtime) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table."""
    with runtime.store.engine.connect() as connection:  # type: ignore[attr-defined]
        return {
            table.name: sorted((tuple(row) for row in connection.execute(select(table))), key=repr)
            for table in metadata.sorted_tables
        }


def assert_not_stored(runtime: Runtime, secret: str) -> None:
    """The secret, or its random part, is in no column of any table."""
    prefix = secret[: secret.index("_", 3) + 1] if secret.startswith("kt_") else ""
    assert_text_not_stored(runtime, secret, secret.removeprefix(prefix))


def assert_text_not_stored(runtime: Runtime, *needles: str) -> None:
    for name, rows in snapshot(runtime).items():
        for row in rows:
            for value in row:
                for needle in needles:
                    if isinstance(value, str):
                        assert needle not in value, (name, row)
                    elif isinstance(value, bytes | bytearray | memoryview):
                        assert needle.encode() not in bytes(value), (name, row)


def only_key(runtime: Runtime, owner: Account) -> ApiKey:
    keys = runtime.store.list_api_keys(owner.id)
    assert len(keys) == 1, keys
    return keys[0]


def only_client(runtime: Runtime, owner: Account, kind: str = "application") -> Client:
    found = [c for c in runtime.store.list_clients(owner.id) if c.kind == kind]
    assert len(found) == 1, found
    return found[0]


# ---- users, signed in through the real forms ----


def signup_page(browser: TestClient) -> httpx.Response:
    page = browser.get("/signup")
    assert_page(page)
    return page


def post_signup(browser: TestClient, csrf: str | None, **fields: str) -> httpx.Response:
    data = dict(fields)
    if csrf is not None:
        data["csrf"] = csrf
    return browser.post("/signup", data=data)


@dataclass
class User:
    browser: TestClient
    account: Account
    password: str

    def csrf(self) -> str:
        page = self.browser.get("/account")
        assert_page(page)
        return csrf_of(page)

    def sign_in(self) -> None:
        """Signs in again through the login form (after the session expired)."""
        page = self.browser.get("/login")
        assert_page(page)
        response = self.browser.post(
            "/login",
            data={"csrf": csrf_of(page), "next": "/account", "email": self.account.email, "password": self.password},
        )
        assert_redirect(response, "/account")

    def get(self, path: str) -> httpx.Response:
        return self.browser.get(path)

    def post(self, path: str, data: dict[str, Any] | None = None, *, csrf: str | None = "page") -> httpx.Response:
        """Posts a portal form: with the page's CSRF token, a given one, or none (None)."""
        form = dict(data or {})
        if csrf == "page":
            form["csrf"] = self.csrf()
        elif csrf is not None:
            form["csrf"] = csrf
        return self.browser.post(path, data=form)


def sign_up(server: Any, runtime: Runtime, email: str, password: str, **profile: str) -> User:
    """Signs up through the form, then signs in: a sign-up signs nobody in."""
    browser = browser_for(server)
    page = signup_page(browser)
    response = post_signup(browser, csrf_of(page), email=email, password=password, **profile)
    assert_signed_up(response)
    account = runtime.store.find_account_by_email(email)
    assert account is not None
    user = User(browser, account, password)
    user.sign_in()
    return user


def assert_signed_up(response: httpx.Response) -> None:
    """The one answer to a sign-up that passed the form's checks, whether or not the
    address already had an account: the same redirect, and no cookie at all."""
    assert_redirect(response, "/signup/done")
    assert "set-cookie" not in response.headers


@pytest.fixture
def ann(server: Any, runtime: Runtime) -> Iterator[User]:
    user = sign_up(server, runtime, ANN, ANN_PASSWORD, company="Acme Inc", alias="acme_inc")
    yield user
    user.browser.close()


@pytest.fixture
def bob(server: Any, runtime: Runtime) -> Iterator[User]:
    user = sign_up(server, runtime, BOB, BOB_PASSWORD)
    yield user
    user.browser.close()


@pytest.fixture
def api_owner(runtime: Runtime) -> Account:
    return add_account(runtime, "api@example.com")


@pytest.fixture
def resource_server(runtime: Runtime, api_owner: Account) -> tuple[str, str]:
    """A protected API's client: it may introspect every token."""
    created = add_client(
        runtime, api_owner, name="Resource server", resource_server=True, grant_types=["client_credentials"]
    )
    assert created.client_secret is not None
    return created.client.client_id, created.client_secret


@pytest.fixture
def third_party(runtime: Runtime, api_owner: Account) -> tuple[str, str]:
    """Somebody else's confidential web application, for the connected-apps page."""
    created = add_client(runtime, api_owner, name="Third Party App", redirect_uris=[CALLBACK])
    assert created.client_secret is not None
    return created.client.client_id, created.client_secret


# ---- portal actions through the forms ----


def create_api_key(user: User, name: str = "Server", expires: str = "never", scopes: tuple[str, ...] = ()) -> str:
    response = user.post("/account/api-keys", {"name": name, "expires": expires, "scope": list(scopes)})
    assert_page(response)
    key = shown(response)["API key"]
    assert kind_of(key) is Kind.API_KEY
    return key


def create_client(
    user: User, name: str = "Web app", uris: str = CALLBACK, confidential: bool = True
) -> tuple[str, str | None]:
    data = {"name": name, "redirect_uris": uris}
    if confidential:
        data["confidential"] = "on"
    response = user.post("/account/clients", data)
    assert_page(response)
    values = shown(response)
    return values["Client ID"], values.get("Client Secret")


def create_access_key(user: User, name: str = "Project key") -> tuple[str, str]:
    response = user.post("/account/access-keys", {"name": name})
    assert_page(response)
    values = shown(response)
    assert set(values) == {"Key ID", "Key Secret"}
    return values["Key ID"], values["Key Secret"]


def authorize(user: User, client_id: str, scope: str = "sms balance") -> str:
    """The code flow through the real consent page (or straight back when the user
    consented to these scopes before): returns the code."""
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": CALLBACK, "scope": scope, "state": "s1"}
    response = user.browser.get("/oauth/authorize", params=params)
    if response.status_code != 302:
        assert_page(response)
        form: list[tuple[str, str]] = [(name, html.unescape(value)) for name, value in HIDDEN.findall(response.text)]
        form += [("granted_scope", s) for s in scope.split()] + [("decision", "authorize")]
        response = user.browser.post(
            "/oauth/authorize",
            content=urlencode(form),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 303, response.text
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == CALLBACK
    query = parse_qs(location.query)
    assert query["state"] == ["s1"]
    return query["code"][0]


def token(browser: TestClient, client_id: str, secret: str, **data: str) -> httpx.Response:
    return browser.post("/oauth/token", data=data, auth=(client_id, secret))


def tokens_for(user: User, client_id: str, secret: str, scope: str = "sms balance") -> dict[str, Any]:
    code = authorize(user, client_id, scope)
    response = token(user.browser, client_id, secret, grant_type="authorization_code", code=code, redirect_uri=CALLBACK)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["scope"] == scope
    return body


def me(browser: TestClient, credential: str) -> httpx.Response:
    return browser.get("/me", headers={"authorization": f"Bearer {credential}"})


def assert_invalid_token(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_token"
    assert response.headers["www-authenticate"].startswith('Bearer realm="keyturn", error="invalid_token"')


def assert_invalid_client(response: httpx.Response) -> None:
    """RFC 6749 §5.2: 401, with the Basic challenge (RFC 7235 §3.1) however the client authenticated."""
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"
    assert response.headers.get("www-authenticate") == 'Basic realm="keyturn"'


def active(browser: TestClient, caller: tuple[str, str], credential: str) -> bool:
    response = browser.post("/oauth/introspect", data={"token": credential}, auth=caller)
    assert response.status_code == 200, response.text
    result: bool = response.json()["active"]
    return result


# ==== sign-up and profile ====


def test_signup_creates_the_account_and_asks_to_sign_in(anonymous: TestClient, runtime: Runtime) -> None:
    page = signup_page(anonymous)
    for name in ("email", "password", "company", "alias"):
        assert f'name="{name}"' in page.text
    response = post_signup(
        anonymous, csrf_of(page), email=ANN, password=ANN_PASSWORD, company="Acme Inc", alias="acme_inc"
    )
    assert_signed_up(response)
    account = runtime.store.find_account_by_email(ANN)
    assert account is not None
    assert (account.email, account.company, account.alias) == (ANN, "Acme Inc", "acme_inc")
    assert account.password_hash is not None
    assert account.password_hash.startswith("$argon2id$")
    assert_text_not_stored(runtime, ANN_PASSWORD)

    done = anonymous.get("/signup/done")
    assert_page(done)
    assert "If this address can be used, your account is ready: sign in" in done.text
    assert '<a class="button primary" href="/login">Sign in</a>' in done.text
    assert_redirect(anonymous.get("/account"), "/login?next=/account")

    User(anonymous, account, ANN_PASSWORD).sign_in()
    profile = anonymous.get("/account")
    assert_page(profile)
    text = html.unescape(profile.text)
    for term, value in (("User ID", str(account.id)), ("Email", ANN), ("Company", "Acme Inc"), ("Alias", "acme_inc")):
        assert f"<dt>{term}</dt><dd>{value}</dd>" in text


def test_company_and_alias_are_optional(anonymous: TestClient, runtime: Runtime) -> None:
    response = post_signup(anonymous, csrf_of(signup_page(anonymous)), email=ANN, password=ANN_PASSWORD)
    assert_signed_up(response)
    account = runtime.store.find_account_by_email(ANN)
    assert account is not None
    assert (account.company, account.alias) == ("", "")
    User(anonymous, account, ANN_PASSWORD).sign_in()
    profile = anonymous.get("/account")
    assert_page(profile)
    assert f"<dt>Email</dt><dd>{ANN}</dd>" in profile.text
    assert "<dt>Company</dt>" not in profile.text
    assert "<dt>Alias</dt>" not in profile.text


def test_the_signup_form_says_the_password_rule(anonymous: TestClient) -> None:
    page = signup_page(anonymous)
    assert 'minlength="12"' in page.text
    assert "At least 12 characters, and not one of the most common passwords." in page.text


@pytest.mark.parametrize(
    ("email", "password", "message"),
    [
        (ANN, "short1!", "Use at least 12 characters."),
        (ANN, "a" * 11, "Use at least 12 characters."),
        (ANN, "abababababab", "Use at least 4 different characters."),
        (ANN, "ANN@example.com", "Choose a password that is not your email address."),
        (ANN, "qwerty123456", "This password is one of the most common; choose another."),
        (ANN, "1Q2W3E4R5T6Y", "This password is one of the most common; choose another."),
        ("not-an-email", ANN_PASSWORD, "'not-an-email' is not an email address"),
        ("ann@example", ANN_PASSWORD, "'ann@example' is not an email address"),
        ("", ANN_PASSWORD, "'' is not an email address"),
    ],
)
def test_signup_refusals_are_400_with_the_message_and_no_account(
    anonymous: TestClient, runtime: Runtime, email: str, password: str, message: str
) -> None:
    before = snapshot(runtime)
    page = signup_page(anonymous)
    response = post_signup(anonymous, csrf_of(page), email=email, password=password, company="Acme", alias="acme")
    assert_page(response, 400)
    assert alert(response) == message
    # The form keeps what was typed, except the password.
    assert input_value(response, "email") == email
    assert input_value(response, "company") == "Acme"
    assert input_value(response, "alias") == "acme"
    assert 'name="password" type="password"' in response.text
    assert password not in response.text
    assert "kt_session" not in response.cookies
    assert snapshot(runtime) == before
    assert anonymous.get("/account").status_code == 303


def test_the_minimum_password_length_is_a_setting(settings: Settings, clock: FrozenClock) -> None:
    opened = open_runtime(settings.with_overrides(password_min_length=20), clock=clock)
    browser = browser_for(create_app(opened))
    try:
        page = signup_page(browser)
        assert 'minlength="20"' in page.text
        assert "At least 20 characters" in page.text
        refused = post_signup(browser, csrf_of(page), email=ANN, password="nineteen characters")
        assert_page(refused, 400)
        assert alert(refused) == "Use at least 20 characters."
        assert_signed_up(post_signup(browser, csrf_of(page), email=ANN, password="twenty characters ok"))
        assert opened.store.find_account_by_email(ANN) is not None
    finally:
        browser.close()
        opened.close()


def test_signup_with_a_taken_email_is_answered_like_a_new_one(
    ann: User, server: Any, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keyturn.core.accounts

    hashed: list[str] = []
    real_hash = keyturn.core.accounts.hash_password

    def counting_hash(password: str) -> str:
        hashed.append(password)
        return real_hash(password)

    monkeypatch.setattr(keyturn.core.accounts, "hash_password", counting_hash)
    new_browser, taken_browser = browser_for(server), browser_for(server)
    try:
        new = post_signup(new_browser, csrf_of(signup_page(new_browser)), email=BOB, password=BOB_PASSWORD)
        before = snapshot(runtime)
        taken = post_signup(
            taken_browser, csrf_of(signup_page(taken_browser)), email="ANN@Example.com", password=BOB_PASSWORD
        )
    finally:
        new_browser.close()
        taken_browser.close()
    for response in (new, taken):
        assert_signed_up(response)

    def answer(response: httpx.Response) -> tuple[int, dict[str, str], bytes]:
        headers = {name: value for name, value in response.headers.items() if name != "x-request-id"}
        return response.status_code, headers, response.content

    assert answer(taken) == answer(new)
    # argon2 ran for the taken address too: the time spent does not tell them apart.
    assert hashed == [BOB_PASSWORD, BOB_PASSWORD]
    assert snapshot(runtime) == before
    assert runtime.store.find_account_by_email(ANN) == ann.account
    # Ann's account is hers as it was: her password still signs her in.
    again = User(browser_for(server), ann.account, ANN_PASSWORD)
    again.sign_in()
    assert again.get("/account").status_code == 200
    again.browser.close()


@pytest.fixture
def limited(settings: Settings, clock: FrozenClock) -> Iterator[tuple[Runtime, Any]]:
    """A server that allows 3 sign-ups per address and hour."""
    opened = open_runtime(settings.with_overrides(signups_per_address_per_hour=3), clock=clock)
    yield opened, create_app(opened)
    opened.close()


def test_signups_are_limited_per_address_per_hour(limited: tuple[Runtime, Any], clock: FrozenClock) -> None:
    runtime, server = limited
    browser = browser_for(server)
    try:
        for i in range(3):
            assert_signed_up(
                post_signup(browser, csrf_of(signup_page(browser)), email=f"u{i}@example.com", password=ANN_PASSWORD)
            )
        # A taken address counts like a new one: the limit cannot be used to tell them apart.
        refused = post_signup(browser, csrf_of(signup_page(browser)), email="u0@example.com", password=ANN_PASSWORD)
        assert_page(refused, 429)
        assert refused.headers["retry-after"] == "3600"
        assert alert(refused) == "Too many accounts were created from this address. Try again in 60 minute(s)."
        refused = post_signup(browser, csrf_of(signup_page(browser)), email="late@example.com", password=ANN_PASSWORD)
        assert_page(refused, 429)
        assert runtime.store.find_account_by_email("late@example.com") is None
        # A form refused for what it says is not counted: it creates nothing and costs no argon2.
        clock.advance(3600)
        for _ in range(5):
            too_short = post_signup(browser, csrf_of(signup_page(browser)), email="late@example.com", password="short")
            assert_page(too_short, 400)
        assert_signed_up(
            post_signup(browser, csrf_of(signup_page(browser)), email="late@example.com", password=ANN_PASSWORD)
        )
        assert runtime.store.find_account_by_email("late@example.com") is not None
    finally:
        browser.close()


def test_signups_from_one_ipv6_64_prefix_share_the_limit(limited: tuple[Runtime, Any]) -> None:
    runtime, server = limited
    statuses = []
    for i in range(1, 6):
        # Every sign-up from a new address of the same /64.
        browser = TestClient(server, base_url=ISSUER, follow_redirects=False, client=(f"2001:db8:1:2::{i:x}", 50000))
        try:
            statuses.append(
                post_signup(browser, csrf_of(signup_page(browser)), email=f"u{i}@example.com", password=ANN_PASSWORD)
            )
        finally:
            browser.close()
    assert [r.status_code for r in statuses] == [303, 303, 303, 429, 429]
    assert runtime.store.find_account_by_email("u4@example.com") is None


def test_concurrent_signups_cannot_pass_the_limit(limited: tuple[Runtime, Any]) -> None:
    runtime, server = limited
    browsers = [browser_for(server) for _ in range(8)]
    tokens = [csrf_of(signup_page(browser)) for browser in browsers]
    start = threading.Barrier(len(browsers))

    def sign_up_at_once(i: int) -> int:
        start.wait()
        return post_signup(browsers[i], tokens[i], email=f"u{i}@example.com", password=ANN_PASSWORD).status_code

    try:
        with ThreadPoolExecutor(len(browsers)) as pool:
            statuses = sorted(pool.map(sign_up_at_once, range(len(browsers))))
    finally:
        for browser in browsers:
            browser.close()
    assert statuses == [303] * 3 + [429] * 5
    created = [i for i in range(len(browsers)) if runtime.store.find_account_by_email(f"u{i}@example.com")]
    assert len(created) == 3


def test_no_signup_limit_when_set_to_zero(settings: Settings, clock: FrozenClock) -> None:
    opened = open_runtime(settings.with_overrides(signups_per_address_per_hour=0), clock=clock)
    browser = browser_for(create_app(opened))
    try:
        for i in range(12):
            assert_signed_up(
                post_signup(browser, csrf_of(signup_page(browser)), email=f"u{i}@example.com", password=ANN_PASSWORD)
            )
    finally:
        browser.close()
        opened.close()


@pytest.mark.parametrize("csrf", [None, "", "0" * 64, "not-a-token"])
def test_signup_without_a_valid_csrf_token_creates_nothing(
    anonymous: TestClient, runtime: Runtime, csrf: str | None
) -> None:
    signup_page(anonymous)
    before = snapshot(runtime)
    response = post_signup(anonymous, csrf, email=ANN, password=ANN_PASSWORD)
    assert_expired_form(response)
    assert "kt_session" not in response.cookies
    assert snapshot(runtime) == before
    assert runtime.store.find_account_by_email(ANN) is None


def test_signup_with_no_pre_session_cookie_creates_nothing(server: Any, runtime: Runtime) -> None:
    first, second = browser_for(server), browser_for(server)
    try:
        token_of_another_browser = csrf_of(signup_page(first))
        before = snapshot(runtime)
        response = post_signup(second, token_of_another_browser, email=ANN, password=ANN_PASSWORD)
        assert_expired_form(response)
        assert snapshot(runtime) == before
    finally:
        first.close()
        second.close()


# ==== signed out, CSRF, and other users: refused, nothing changed ====

PAGES = ["/account", "/account/api-keys", "/account/clients", "/account/access-keys", "/account/apps"]


@dataclass
class Things:
    """One of everything Ann can own, and tokens from them."""

    key: str
    key_id: int
    client_id: str
    client_secret: str
    access_key_id: str
    access_key_secret: str
    app_id: str
    app_secret: str
    app_tokens: dict[str, Any]


@pytest.fixture
def things(ann: User, runtime: Runtime, third_party: tuple[str, str]) -> Things:
    key = create_api_key(ann, "Mine")
    client_id, secret = create_client(ann, "Ann's app")
    assert secret is not None
    access_id, access_secret = create_access_key(ann, "Ann's access key")
    app_tokens = tokens_for(ann, *third_party)
    return Things(
        key=key,
        key_id=only_key(runtime, ann.account).id,
        client_id=client_id,
        client_secret=secret,
        access_key_id=access_id,
        access_key_secret=access_secret,
        app_id=third_party[0],
        app_secret=third_party[1],
        app_tokens=app_tokens,
    )


def record_actions(t: Things) -> list[tuple[str, dict[str, Any]]]:
    """Every POST of the portal that acts on one of Ann's records, with a valid body."""
    return [
        (f"/account/api-keys/{t.key_id}/revoke", {}),
        (f"/account/api-keys/{t.key_id}/regenerate", {}),
        (f"/account/clients/{t.client_id}", {"name": "Renamed", "redirect_uris": CALLBACK}),
        (f"/account/clients/{t.client_id}/secret", {}),
        (f"/account/clients/{t.client_id}/delete", {}),
        (f"/account/access-keys/{t.access_key_id}/delete", {}),
    ]


def actions(t: Things) -> list[tuple[str, dict[str, Any]]]:
    """Every POST of the portal, with a valid body."""
    return [
        ("/account/api-keys", {"name": "New", "expires": "never"}),
        ("/account/clients", {"name": "New", "redirect_uris": CALLBACK, "confidential": "on"}),
        ("/account/access-keys", {"name": "New"}),
        *record_actions(t),
        (f"/account/apps/{t.app_id}/revoke", {}),
    ]


def assert_things_work(user: User, runtime: Runtime, t: Things) -> None:
    """Everything of ``things`` still works (nothing was revoked, deleted or replaced)."""
    assert me(user.browser, t.key).status_code == 200
    assert token(user.browser, t.access_key_id, t.access_key_secret, grant_type="client_credentials").status_code == 200
    # The client authenticates with its secret (then the refresh token is found to be nonsense).
    refused = token(user.browser, t.client_id, t.client_secret, grant_type="refresh_token", refresh_token="x")
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_grant")
    detail = user.get(f"/account/clients/{t.client_id}")
    assert_page(detail)
    assert "<h1>Ann&#39;s app</h1>" in detail.text
    # The connected app: consent and tokens as they were.
    assert runtime.store.get_consent(user.account.id, t.app_id) is not None
    assert me(user.browser, t.app_tokens["access_token"]).status_code == 200
    refresh = runtime.store.find_token(runtime.hasher.token_key(t.app_tokens["refresh_token"]))
    assert refresh is not None
    assert (refresh.revoked_at, refresh.rotated_at) == (None, None)


@pytest.mark.parametrize("path", PAGES)
def test_pages_need_a_signed_in_user(anonymous: TestClient, path: str) -> None:
    response = anonymous.get(path)
    assert_redirect(response, f"/login?next={path}")


def test_client_detail_needs_a_signed_in_user(anonymous: TestClient, things: Things) -> None:
    path = f"/account/clients/{things.client_id}"
    assert_redirect(anonymous.get(path), f"/login?next={path}")


def test_every_post_signed_out_redirects_to_login_and_changes_nothing(
    anonymous: TestClient, ann: User, runtime: Runtime, things: Things
) -> None:
    csrf = ann.csrf()  # a real token, but of another browser's session
    before = snapshot(runtime)
    for path, data in actions(things):
        for form in (data, {**data, "csrf": csrf}):
            assert_redirect(anonymous.post(path, data=form), f"/login?next={path}")
    assert snapshot(runtime) == before
    assert_things_work(ann, runtime, things)


@pytest.mark.parametrize("csrf", [None, "", "0" * 64, "other-user"])
def test_every_post_without_a_valid_csrf_token_changes_nothing(
    ann: User, bob: User, runtime: Runtime, things: Things, csrf: str | None
) -> None:
    presented = bob.csrf() if csrf == "other-user" else csrf
    before = snapshot(runtime)
    for path, data in actions(things):
        response = ann.post(path, data, csrf=presented)
        assert_expired_form(response)
        assert not shown(response)
    assert snapshot(runtime) == before
    assert_things_work(ann, runtime, things)


def test_another_users_records_are_404_and_unchanged(
    ann: User, bob: User, runtime: Runtime, things: Things, third_party: tuple[str, str]
) -> None:
    tokens_for(bob, *third_party)  # Bob uses the same app: his consent is his own
    before = snapshot(runtime)
    assert_not_found(bob.get(f"/account/clients/{things.client_id}"))
    # (Bob authorized Ann's connected app too: revoking it is his own business, tested below.)
    for path, data in record_actions(things):
        assert_not_found(bob.post(path, data))
    assert snapshot(runtime) == before
    assert_things_work(ann, runtime, things)

    # Bob's lists show none of Ann's records.
    for path in PAGES[1:]:
        page = bob.get(path)
        assert_page(page)
        for private in ("Mine", "Ann&#39;s app", things.client_id, "Ann&#39;s access key", things.access_key_id):
            assert private not in page.text


def test_revoking_an_app_the_user_never_authorized_is_404(
    ann: User, bob: User, runtime: Runtime, things: Things
) -> None:
    before = snapshot(runtime)
    assert_not_found(bob.post(f"/account/apps/{things.app_id}/revoke"))
    assert_not_found(bob.post("/account/apps/no-such-client/revoke"))
    assert snapshot(runtime) == before
    assert_things_work(ann, runtime, things)


def test_records_of_the_other_kind_or_unknown_ids_are_404(ann: User, runtime: Runtime, things: Things) -> None:
    before = snapshot(runtime)
    # An access key is not an OAuth client on these pages, and the other way round.
    assert_not_found(ann.get(f"/account/clients/{things.access_key_id}"))
    assert_not_found(ann.post(f"/account/clients/{things.access_key_id}", {"name": "x", "redirect_uris": CALLBACK}))
    assert_not_found(ann.post(f"/account/clients/{things.access_key_id}/secret"))
    assert_not_found(ann.post(f"/account/clients/{things.access_key_id}/delete"))
    assert_not_found(ann.post(f"/account/access-keys/{things.client_id}/delete"))
    # Ids that do not exist.
    assert_not_found(ann.get("/account/clients/no-such-client"))
    assert_not_found(ann.post("/account/clients/no-such-client/delete"))
    assert_not_found(ann.post("/account/access-keys/no-such-client/delete"))
    assert_not_found(ann.post(f"/account/api-keys/{things.key_id + 1000}/revoke"))
    assert_not_found(ann.post(f"/account/api-keys/{things.key_id + 1000}/regenerate"))
    assert snapshot(runtime) == before
    assert_things_work(ann, runtime, things)


# ==== API keys ====


def test_an_api_key_is_shown_once_and_stored_only_as_a_hash(ann: User, runtime: Runtime, clock: FrozenClock) -> None:
    response = ann.post("/account/api-keys", {"name": "Production server", "expires": "never"})
    assert_page(response)
    assert list(shown(response)) == ["API key"]
    key = shown(response)["API key"]
    assert "Your new API key “Production server”" in html.unescape(response.text)

    stored = only_key(runtime, ann.account)
    assert stored.key_hash == runtime.hasher.digest(key)
    assert (stored.name, stored.scopes, stored.expires_at, stored.revoked_at) == ("Production server", None, None, None)
    assert stored.created_at == clock.now()
    assert stored.display_prefix == key[:11] + "…" + key[-4:]
    assert_not_stored(runtime, key)

    listing = ann.get("/account/api-keys")
    assert_page(listing)
    assert key not in listing.text
    assert key[7:-6] not in listing.text
    assert not shown(listing)
    row = re.search(r"<tr>\s*<td>Production server</td>(.*?)</tr>", listing.text, re.S)
    assert row is not None
    cells = re.findall(r"<td>(.*?)</td>", row.group(1), re.S)
    assert cells[:5] == [f"<code>{stored.display_prefix}</code>", "all scopes", START, "never", "never"]

    # Used an hour later: the listing says when.
    clock.advance(3600)
    used = me(ann.browser, key)
    assert used.status_code == 200
    # "All scopes" in JSON is null, as in the CLI's --json (the page above says "all scopes").
    assert used.json()["scope"] is None
    listing = ann.get("/account/api-keys")
    row = re.search(r"<tr>\s*<td>Production server</td>(.*?)</tr>", listing.text, re.S)
    assert row is not None
    assert re.findall(r"<td>(.*?)</td>", row.group(1), re.S)[:5] == [
        f"<code>{stored.display_prefix}</code>",
        "all scopes",
        START,
        "2026-01-01 01:00 UTC",
        "never",
    ]
    assert key not in listing.text


def test_an_api_key_opens_me_in_the_header_and_in_both_query_parameters(ann: User) -> None:
    key = create_api_key(ann)
    for response in (
        me(ann.browser, key),
        ann.browser.get("/me", params={"api_key": key}),
        ann.browser.get("/me", params={"apikey": key}),
    ):
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["user_id"], body["email"], body["company"], body["alias"]) == (
            ann.account.id,
            ANN,
            "Acme Inc",
            "acme_inc",
        )
        assert body["scope"] is None  # an unrestricted key: all scopes
        assert body["client_id"] is None


@pytest.mark.parametrize("name", ["api_key", "apikey"])
def test_a_key_in_the_query_gets_no_store_and_no_referrer_whatever_the_answer(ann: User, name: str) -> None:
    key = create_api_key(ann)
    good = ann.browser.get("/me", params={name: key})
    assert ann.post(f"/account/api-keys/{only_key_id(ann)}/revoke").status_code == 303
    revoked = ann.browser.get("/me", params={name: key})
    assert good.status_code == 200
    assert_invalid_token(revoked)
    for response in (good, revoked):
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["referrer-policy"] == "no-referrer"


def only_key_id(user: User) -> int:
    ids = re.findall(r'action="/account/api-keys/(\d+)/revoke"', user.get("/account/api-keys").text)
    assert len(ids) == 1, ids
    return int(ids[0])


def test_a_scope_restricted_key_reports_only_its_scopes(ann: User, runtime: Runtime) -> None:
    key = create_api_key(ann, "SMS only", scopes=("sms",))
    assert only_key(runtime, ann.account).scopes == ("sms",)
    assert me(ann.browser, key).json()["scope"] == "sms"
    assert ann.browser.get("/me", params={"api_key": key}).json()["scope"] == "sms"
    row = re.search(
        r"<td>SMS only</td>\s*<td><code>[^<]*</code></td>\s*<td>([^<]*)</td>", ann.get("/account/api-keys").text
    )
    assert row is not None
    assert row.group(1) == "sms"

    both = create_api_key(ann, "Both", scopes=("balance", "sms"))
    assert me(ann.browser, both).json()["scope"] == "balance sms"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"name": "k", "expires": "never", "scope": ["voice"]},
            "unknown scope 'voice'; the catalogue has: balance, sms",
        ),
        ({"name": "k", "expires": "7"}, "Choose an expiry from the list."),
        ({"name": "k"}, "Choose an expiry from the list."),
        ({"name": "x" * 201, "expires": "never"}, "the key's name must be at most 200 characters"),
    ],
)
def test_api_key_refusals_are_400_and_create_nothing(
    ann: User, runtime: Runtime, data: dict[str, Any], message: str
) -> None:
    before = snapshot(runtime)
    response = ann.post("/account/api-keys", data)
    assert_page(response, 400)
    assert alert(response) == message
    assert not shown(response)
    assert snapshot(runtime) == before


@pytest.mark.parametrize(("choice", "days"), [("30", 30), ("90", 90), ("365", 365)])
def test_an_expiring_key_stops_working_when_it_expires(
    ann: User, runtime: Runtime, clock: FrozenClock, choice: str, days: int
) -> None:
    key = create_api_key(ann, expires=choice)
    expires_at = clock.now() + days * DAY
    assert only_key(runtime, ann.account).expires_at == expires_at
    listing = ann.get("/account/api-keys").text
    assert f"<td>{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(expires_at))}</td>" in listing
    clock.advance(days * DAY - 1)
    assert me(ann.browser, key).status_code == 200
    clock.advance(1)
    assert_invalid_token(me(ann.browser, key))
    assert_invalid_token(ann.browser.get("/me", params={"api_key": key}))
    # An expired key leaves the listing.
    assert_redirect(ann.get("/account/api-keys"), "/login?next=/account/api-keys")  # the session expired too
    ann.sign_in()
    assert "You have no API keys yet." in ann.get("/account/api-keys").text


def test_names_are_escaped_and_an_empty_key_name_gets_a_default(ann: User, runtime: Runtime) -> None:
    create_api_key(ann, "")
    create_api_key(ann, "<b>bold</b>")
    assert sorted(k.name for k in runtime.store.list_api_keys(ann.account.id)) == ["<b>bold</b>", "API key"]
    listing = ann.get("/account/api-keys").text
    assert "<td>API key</td>" in listing
    assert "<td>&lt;b&gt;bold&lt;/b&gt;</td>" in listing
    assert "<b>bold</b>" not in listing
    client_id, _ = create_client(ann, "<script>x</script>")
    for path in ("/account/clients", f"/account/clients/{client_id}"):
        page = ann.get(path).text
        assert "&lt;script&gt;x&lt;/script&gt;" in page
        assert "<script>" not in page


def test_a_regeneration_that_fails_midway_changes_nothing(
    ann: User, runtime: Runtime, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old key's revocation, the new key and the audit event commit together: when the
    new key cannot be stored (here its digest is taken), the old key keeps working."""
    import keyturn.core.registration

    old = create_api_key(ann, "Old")
    other = create_api_key(ann, "Other")
    old_id = next(k.id for k in runtime.store.list_api_keys(ann.account.id) if k.name == "Old")
    clock.advance(60)
    before = snapshot(runtime)
    monkeypatch.setattr(keyturn.core.registration, "new_secret", lambda kind: other)
    with pytest.raises(Conflict):
        ann.post(f"/account/api-keys/{old_id}/regenerate")
    assert snapshot(runtime) == before
    assert me(ann.browser, old).status_code == 200


def test_an_expired_key_cannot_be_regenerated_into_one_that_never_expires(
    ann: User, runtime: Runtime, clock: FrozenClock
) -> None:
    """An expired key is gone from the listing like a revoked one; regenerating it by id
    must not bring back a key, least of all one without the expiry its owner chose."""
    key = create_api_key(ann, "Monthly", expires="30")
    key_id = only_key(runtime, ann.account).id
    clock.advance(30 * DAY)
    assert_invalid_token(me(ann.browser, key))
    ann.sign_in()
    before = snapshot(runtime)
    response = ann.post(f"/account/api-keys/{key_id}/regenerate")
    assert_not_found(response)
    assert not shown(response)
    assert snapshot(runtime) == before
    assert [k.id for k in runtime.store.list_api_keys(ann.account.id)] == [key_id]


def test_revoking_a_key(ann: User, runtime: Runtime, clock: FrozenClock) -> None:
    key = create_api_key(ann)
    other = create_api_key(ann, "Other")
    key_id = next(k.id for k in runtime.store.list_api_keys(ann.account.id) if k.name == "Server")
    clock.advance(60)
    assert_redirect(ann.post(f"/account/api-keys/{key_id}/revoke"), "/account/api-keys")
    revoked = next(k for k in runtime.store.list_api_keys(ann.account.id) if k.id == key_id)
    assert revoked.revoked_at == clock.now()
    assert_invalid_token(me(ann.browser, key))
    assert me(ann.browser, other).status_code == 200
    listing = ann.get("/account/api-keys").text
    assert "<td>Server</td>" not in listing
    assert "<td>Other</td>" in listing
    # Revoked once: there is nothing left to revoke or regenerate.
    before = snapshot(runtime)
    assert_not_found(ann.post(f"/account/api-keys/{key_id}/revoke"))
    assert_not_found(ann.post(f"/account/api-keys/{key_id}/regenerate"))
    assert snapshot(runtime) == before


def test_regenerating_a_key_replaces_it(ann: User, runtime: Runtime, clock: FrozenClock) -> None:
    old = create_api_key(ann, "Scoped", expires="90", scopes=("sms",))
    old_record = only_key(runtime, ann.account)
    clock.advance(3600)
    response = ann.post(f"/account/api-keys/{old_record.id}/regenerate")
    assert_page(response)
    assert list(shown(response)) == ["API key"]
    new = shown(response)["API key"]
    assert kind_of(new) is Kind.API_KEY
    assert new != old

    assert_invalid_token(me(ann.browser, old))
    fresh = me(ann.browser, new)
    assert fresh.status_code == 200
    assert fresh.json()["scope"] == "sms"

    records = {k.id: k for k in runtime.store.list_api_keys(ann.account.id)}
    assert records[old_record.id].revoked_at == clock.now()
    (replacement,) = [k for k in records.values() if k.id != old_record.id]
    assert replacement.key_hash == runtime.hasher.digest(new)
    assert (replacement.name, replacement.scopes, replacement.expires_at) == ("Scoped", ("sms",), old_record.expires_at)
    assert replacement.revoked_at is None
    assert_not_stored(runtime, new)
    assert_not_stored(runtime, old)

    listing = ann.get("/account/api-keys")
    assert new not in listing.text
    assert not shown(listing)
    assert listing.text.count("<td>Scoped</td>") == 1


# ==== OAuth clients ====


def test_creating_a_confidential_client_shows_its_secret_once(ann: User, runtime: Runtime) -> None:
    uris = f"{CALLBACK}\r\n  https://app.example.com/other  \n\n{CALLBACK}\n"
    response = ann.post("/account/clients", {"name": "My web app", "redirect_uris": uris, "confidential": "on"})
    assert_page(response)
    values = shown(response)
    assert list(values) == ["Client ID", "Client Secret"]
    client_id, secret = values["Client ID"], values["Client Secret"]
    assert kind_of(secret) is Kind.CLIENT_SECRET

    stored = runtime.store.get_client(client_id)
    assert stored is not None
    assert stored == only_client(runtime, ann.account)
    assert stored.name == "My web app"
    assert stored.redirect_uris == (CALLBACK, "https://app.example.com/other")
    assert stored.grant_types == ("authorization_code", "refresh_token")
    assert stored.scopes == ()
    assert stored.secret_hash == runtime.hasher.digest(secret)
    assert_not_stored(runtime, secret)

    for path in ("/account/clients", f"/account/clients/{client_id}"):
        page = ann.get(path)
        assert_page(page)
        assert client_id in page.text
        assert "My web app" in page.text
        assert secret not in page.text
        assert secret[6:-6] not in page.text
        assert not shown(page)
    detail = ann.get(f"/account/clients/{client_id}").text
    assert "<dt>Type</dt><dd>Confidential</dd>" in detail

    # The secret works at the token endpoint.
    tokens_for(ann, client_id, secret)


def test_creating_a_public_client_shows_no_secret(ann: User, runtime: Runtime) -> None:
    response = ann.post("/account/clients", {"name": "Mobile app", "redirect_uris": "com.example.app:/cb"})
    assert_page(response)
    values = shown(response)
    assert list(values) == ["Client ID"]
    stored = runtime.store.get_client(values["Client ID"])
    assert stored is not None
    assert stored.secret_hash is None
    assert stored.redirect_uris == ("com.example.app:/cb",)
    detail = ann.get(f"/account/clients/{stored.client_id}")
    assert "<dt>Type</dt><dd>Public</dd>" in detail.text
    assert f'action="/account/clients/{stored.client_id}/secret"' not in detail.text
    # A public client has no secret to regenerate.
    before = snapshot(runtime)
    assert_not_found(ann.post(f"/account/clients/{stored.client_id}/secret"))
    assert snapshot(runtime) == before


@pytest.mark.parametrize(
    ("name", "uris", "message"),
    [
        ("", CALLBACK, "the client needs a name of 1 to 200 characters"),
        ("   ", CALLBACK, "the client needs a name of 1 to 200 characters"),
        ("x" * 201, CALLBACK, "the client needs a name of 1 to 200 characters"),
        ("App", "", "a client using the browser flow needs at least one redirect URI"),
        ("App", "/cb", "redirect URI '/cb' must be absolute (start with https://)"),
        (
            "App",
            "https://app.example.com/cb#top",
            "redirect URI 'https://app.example.com/cb#top' must not contain a fragment (#...)",
        ),
        (
            "App",
            "https://app.example.com/cb#",
            "redirect URI 'https://app.example.com/cb#' must not contain a fragment (#...)",
        ),
        ("App", "javascript:alert(1)", "redirect URI scheme 'javascript' is not allowed"),
        (
            "App",
            "https://app.example.com/a b",
            "redirect URI 'https://app.example.com/a b' contains a space; write it as %20",
        ),
        (
            "App",
            "https://app.example.com/a\x01b",
            "redirect URI 'https://app.example.com/a\\x01b' contains a control character (a tab, a line break, ...); "
            "remove it",
        ),
        (
            "App",
            "https://app.example.com/café",
            "redirect URI 'https://app.example.com/café' contains non-ASCII characters; write them percent-encoded "
            "(e.g. https://app.example.com/caf%C3%A9), or an internationalised host as punycode (xn--...)",
        ),
        (
            "App",
            "https://user:pw@app.example.com/cb",
            "redirect URI 'https://user:pw@app.example.com/cb' must not contain credentials",
        ),
        ("App", f"{CALLBACK}\nhttps:///nohost", "redirect URI 'https:///nohost' has no host"),
    ],
)
def test_client_refusals_are_400_and_create_nothing(
    ann: User, runtime: Runtime, name: str, uris: str, message: str
) -> None:
    before = snapshot(runtime)
    response = ann.post("/account/clients", {"name": name, "redirect_uris": uris, "confidential": "on"})
    assert_page(response, 400)
    assert alert(response) == message
    assert not shown(response)
    assert snapshot(runtime) == before
    # The form keeps what was typed.
    assert f">{html.escape(uris)}</textarea>" in response.text


def test_editing_a_client(ann: User, runtime: Runtime, clock: FrozenClock) -> None:
    client_id, secret = create_client(ann)
    assert secret is not None
    tokens_for(ann, client_id, secret)  # this node has the client cached now
    clock.advance(60)
    new_uri = "https://app.example.com/new"
    response = ann.post(
        f"/account/clients/{client_id}", {"name": "Renamed app", "redirect_uris": f"{new_uri}\n", "scope": ["sms"]}
    )
    assert_redirect(response, f"/account/clients/{client_id}")
    stored = runtime.store.get_client(client_id)
    assert stored is not None
    assert (stored.name, stored.redirect_uris, stored.scopes) == ("Renamed app", (new_uri,), ("sms",))
    assert stored.updated_at == clock.now()
    assert stored.secret_hash == runtime.hasher.digest(secret)

    detail = ann.get(f"/account/clients/{client_id}")
    assert_page(detail)
    assert "<h1>Renamed app</h1>" in detail.text
    assert f">{new_uri}</textarea>" in detail.text
    assert re.search(r'name="scope" value="sms" checked>', detail.text)
    assert re.search(r'name="scope" value="balance" >', detail.text)

    # The change holds at once on this node: the old redirect URI is refused.
    old = ann.browser.get(
        "/oauth/authorize",
        params={"response_type": "code", "client_id": client_id, "redirect_uri": CALLBACK, "scope": "sms"},
    )
    assert_page(old, 400)
    # ... and so is a scope the client may no longer ask for.
    scoped = ann.browser.get(
        "/oauth/authorize",
        params={"response_type": "code", "client_id": client_id, "redirect_uri": new_uri, "scope": "balance"},
    )
    assert scoped.status_code == 302
    assert parse_qs(urlsplit(scoped.headers["location"]).query)["error"] == ["invalid_scope"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "", "redirect_uris": CALLBACK}, "The name must be 1 to 200 characters."),
        ({"name": "x" * 201, "redirect_uris": CALLBACK}, "The name must be 1 to 200 characters."),
        ({"name": "App", "redirect_uris": " \n "}, "Keep at least one redirect URL."),
        (
            {"name": "App", "redirect_uris": "https://app.example.com/cb#frag"},
            "redirect URI 'https://app.example.com/cb#frag' must not contain a fragment (#...)",
        ),
        ({"name": "App", "redirect_uris": "cb"}, "redirect URI 'cb' must be absolute (start with https://)"),
        (
            {"name": "App", "redirect_uris": CALLBACK, "scope": ["voice"]},
            "unknown scope 'voice'; the catalogue has: balance, sms",
        ),
    ],
)
def test_edit_refusals_are_400_and_change_nothing(
    ann: User, runtime: Runtime, data: dict[str, Any], message: str
) -> None:
    client_id, _ = create_client(ann)
    before = snapshot(runtime)
    response = ann.post(f"/account/clients/{client_id}", data)
    assert_page(response, 400)
    assert alert(response) == message
    assert snapshot(runtime) == before


def test_regenerating_a_secret_retires_the_old_one_at_once(ann: User, runtime: Runtime) -> None:
    client_id, old = create_client(ann)
    assert old is not None
    tokens = tokens_for(ann, client_id, old)  # the old secret works, and is cached on this node
    response = ann.post(f"/account/clients/{client_id}/secret")
    assert_page(response)
    values = shown(response)
    assert list(values) == ["Client ID", "Client Secret"]
    assert values["Client ID"] == client_id
    new = values["Client Secret"]
    assert kind_of(new) is Kind.CLIENT_SECRET
    assert new != old
    assert "New secret for Web app" in response.text

    stored = runtime.store.get_client(client_id)
    assert stored is not None
    assert stored.secret_hash == runtime.hasher.digest(new)
    assert_not_stored(runtime, new)

    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    assert_invalid_client(token(ann.browser, client_id, old, **refresh))
    assert_invalid_client(
        ann.browser.post("/oauth/token", data={**refresh, "client_id": client_id, "client_secret": old})
    )
    renewed = token(ann.browser, client_id, new, **refresh)
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["scope"] == "sms balance"

    for path in ("/account/clients", f"/account/clients/{client_id}"):
        page = ann.get(path)
        assert new not in page.text
        assert not shown(page)


def test_deleting_a_client_ends_its_tokens_and_consents(
    ann: User, bob: User, runtime: Runtime, resource_server: tuple[str, str]
) -> None:
    client_id, secret = create_client(ann)
    assert secret is not None
    kept_id, kept_secret = create_client(ann, "Kept app")
    assert kept_secret is not None
    mine = tokens_for(ann, client_id, secret)
    bobs = tokens_for(bob, client_id, secret)
    kept = tokens_for(ann, kept_id, kept_secret)
    for credential in (mine["access_token"], mine["refresh_token"], bobs["access_token"]):
        assert active(ann.browser, resource_server, credential)
    assert runtime.store.get_consent(bob.account.id, client_id) is not None
    assert "Web app" in bob.get("/account/apps").text

    assert_redirect(ann.post(f"/account/clients/{client_id}/delete"), "/account/clients")

    assert runtime.store.get_client(client_id) is None
    for credential in (mine["access_token"], mine["refresh_token"], bobs["access_token"], bobs["refresh_token"]):
        assert not active(ann.browser, resource_server, credential)
        assert runtime.store.find_token(runtime.hasher.token_key(credential)) is None
    assert_invalid_token(me(ann.browser, mine["access_token"]))
    assert_invalid_token(me(bob.browser, bobs["access_token"]))
    assert runtime.store.get_consent(ann.account.id, client_id) is None
    assert runtime.store.get_consent(bob.account.id, client_id) is None
    assert all(
        row_client != client_id for row_client in (c.client_id for c in runtime.store.list_consents(bob.account.id))
    )
    assert "You have not authorized any application." in bob.get("/account/apps").text
    assert_invalid_client(
        token(ann.browser, client_id, secret, grant_type="refresh_token", refresh_token=mine["refresh_token"])
    )
    assert_not_found(ann.get(f"/account/clients/{client_id}"))
    listing = ann.get("/account/clients").text
    assert client_id not in listing
    assert kept_id in listing

    # The other client and its tokens are untouched.
    assert active(ann.browser, resource_server, kept["access_token"])
    assert runtime.store.get_consent(ann.account.id, kept_id) is not None


# ==== access keys ====


def test_an_access_key_gives_client_credentials_tokens_with_basic(
    ann: User, runtime: Runtime, clock: FrozenClock
) -> None:
    response = ann.post("/account/access-keys", {"name": "Sinch project"})
    assert_page(response)
    values = shown(response)
    assert list(values) == ["Key ID", "Key Secret"]
    key_id, key_secret = values["Key ID"], values["Key Secret"]
    assert "The Key Secret is only viewable now." in response.text

    stored = only_client(runtime, ann.account, "access_key")
    assert stored.client_id == key_id
    assert (stored.name, stored.grant_types, stored.redirect_uris) == ("Sinch project", ("client_credentials",), ())
    assert stored.secret_hash == runtime.hasher.digest(key_secret)
    assert_not_stored(runtime, key_secret)

    issued = token(ann.browser, key_id, key_secret, grant_type="client_credentials")
    assert issued.status_code == 200, issued.text
    body = issued.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == runtime.settings.access_token_ttl
    assert body["scope"] == "sms"
    assert body["created_at"] == clock.now()
    assert "refresh_token" not in body
    account = me(ann.browser, body["access_token"])
    assert account.status_code == 200
    assert (account.json()["user_id"], account.json()["client_id"]) == (ann.account.id, key_id)

    listing = ann.get("/account/access-keys")
    assert_page(listing)
    assert f"<td>Sinch project</td><td><code>{key_id}</code></td><td>{START}</td>" in listing.text
    assert key_secret not in listing.text
    assert not shown(listing)
    # It is no OAuth client of the "Create New Client" list.
    assert key_id not in ann.get("/account/clients").text


@pytest.mark.parametrize("name", ["", "  ", "x" * 201])
def test_an_access_key_needs_a_display_name(ann: User, runtime: Runtime, name: str) -> None:
    before = snapshot(runtime)
    response = ann.post("/account/access-keys", {"name": name})
    assert_page(response, 400)
    assert alert(response) == "the client needs a name of 1 to 200 characters"
    assert not shown(response)
    assert snapshot(runtime) == before


def test_deleting_an_access_key(ann: User, runtime: Runtime, resource_server: tuple[str, str]) -> None:
    key_id, key_secret = create_access_key(ann)
    kept_id, kept_secret = create_access_key(ann, "Kept")
    issued = token(ann.browser, key_id, key_secret, grant_type="client_credentials").json()["access_token"]
    assert active(ann.browser, resource_server, issued)

    assert_redirect(ann.post(f"/account/access-keys/{key_id}/delete"), "/account/access-keys")

    assert runtime.store.get_client(key_id) is None
    assert_invalid_client(token(ann.browser, key_id, key_secret, grant_type="client_credentials"))
    assert not active(ann.browser, resource_server, issued)
    assert_invalid_token(me(ann.browser, issued))
    listing = ann.get("/account/access-keys").text
    assert key_id not in listing
    assert kept_id in listing
    assert token(ann.browser, kept_id, kept_secret, grant_type="client_credentials").status_code == 200
    before = snapshot(runtime)
    assert_not_found(ann.post(f"/account/access-keys/{key_id}/delete"))
    assert snapshot(runtime) == before


# ==== connected apps ====


def test_connected_apps_lists_what_the_user_authorized(
    ann: User, runtime: Runtime, third_party: tuple[str, str]
) -> None:
    assert "You have not authorized any application." in ann.get("/account/apps").text
    tokens_for(ann, *third_party, scope="balance")
    page = ann.get("/account/apps")
    assert_page(page)
    assert re.search(
        rf"<td>Third Party App</td>\s*<td>balance</td>\s*<td>{START}</td>\s*"
        rf'<td><form method="post" action="/account/apps/{third_party[0]}/revoke"',
        page.text,
    )


def test_revoking_a_connected_app_ends_its_consent_and_tokens_for_this_user_only(
    ann: User, bob: User, runtime: Runtime, third_party: tuple[str, str], resource_server: tuple[str, str]
) -> None:
    client_id, secret = third_party
    first = tokens_for(ann, client_id, secret)
    second = tokens_for(ann, client_id, secret, scope="sms")  # consented before: straight back
    bobs = tokens_for(bob, client_id, secret)

    assert_redirect(ann.post(f"/account/apps/{client_id}/revoke"), "/account/apps")

    assert runtime.store.get_consent(ann.account.id, client_id) is None
    for issued in (first, second):
        refused = token(
            ann.browser, client_id, secret, grant_type="refresh_token", refresh_token=issued["refresh_token"]
        )
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"] == "invalid_grant"
        assert_invalid_token(me(ann.browser, issued["access_token"]))
        assert not active(ann.browser, resource_server, issued["access_token"])
    assert "You have not authorized any application." in ann.get("/account/apps").text
    events = runtime.store.list_events(kind="consent.revoked")
    assert [(e.account_id, e.client_id, dict(e.detail)) for e in events] == [
        (ann.account.id, client_id, {"tokens_revoked": 4})
    ]

    # Bob's consent and tokens for the same app stay.
    assert runtime.store.get_consent(bob.account.id, client_id) is not None
    assert me(bob.browser, bobs["access_token"]).status_code == 200
    renewed = token(bob.browser, client_id, secret, grant_type="refresh_token", refresh_token=bobs["refresh_token"])
    assert renewed.status_code == 200, renewed.text
    assert "Third Party App" in bob.get("/account/apps").text

    # The app is gone from Ann's list: revoking again is 404.
    before = snapshot(runtime)
    assert_not_found(ann.post(f"/account/apps/{client_id}/revoke"))
    assert snapshot(runtime) == before
