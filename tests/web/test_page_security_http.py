"""The pages' Content-Security-Policy and, in production, their ``__Host-`` cookies, over
HTTP through the in-process app. (That Chromium lets the consent and login forms reach
the client's redirect URI under this policy is shown by tests/browser.)"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest
from starlette.testclient import TestClient

from keyturn.core.clock import FrozenClock
from keyturn.core.models import Account
from keyturn.runtime import Runtime, open_runtime
from keyturn.settings import Settings
from keyturn.web.app import create_app
from keyturn.web.pages.csp import csp_source

from ..helpers import add_account
from .test_authorize_http import (
    CATALOGUE,
    EMAIL,
    PASSWORD,
    Registered,
    code_request,
    consent_page,
    cookies_set,
    final_cookie,
    hidden,
    login_page,
    post_login,
    redirect_params,
    register,
    submit,
)

PAGE_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
#: The consent page's: its form's answer is a redirect to https://app.example.com/cb.
CONSENT_POLICY = PAGE_POLICY.replace("form-action 'self'", "form-action 'self' https://app.example.com")
HTTPS_ISSUER = "https://auth.example.com"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_overrides(scopes=CATALOGUE, default_scopes=["sms"])


@pytest.fixture
def browser(client: TestClient) -> TestClient:
    client.follow_redirects = False
    return client


@pytest.fixture
def user(runtime: Runtime) -> Account:
    return add_account(runtime, EMAIL, PASSWORD)


@pytest.fixture
def app(runtime: Runtime) -> Registered:
    developer = add_account(runtime, "dev@example.com")
    return register(runtime, developer)


def policy(response: httpx.Response) -> str:
    (value,) = response.headers.get_list("content-security-policy")
    return value


# ---- Content-Security-Policy ----


def test_pages_allow_forms_to_post_to_this_origin_only(browser: TestClient, user: Account) -> None:
    pages = [browser.get("/login"), browser.get("/signup"), browser.get("/signup/done")]
    refused = post_login(browser, login_page(browser), EMAIL, "not the password")
    assert refused.status_code == 400
    signed_in = post_login(browser, login_page(browser), EMAIL, PASSWORD)
    assert signed_in.status_code == 303
    pages += [refused, signed_in, browser.get("/account"), browser.get("/account/clients"), browser.get("/logout")]
    for page in pages:
        assert policy(page) == PAGE_POLICY, page.url


def test_the_consent_page_also_allows_the_redirect_uri_origin(
    browser: TestClient, user: Account, app: Registered
) -> None:
    post_login(browser, login_page(browser), EMAIL, PASSWORD)
    page = consent_page(browser, code_request(app))
    assert policy(page) == CONSENT_POLICY
    # The form's answer: a 303 to the client (it carries the pages' own policy).
    answer = submit(browser, page, "authorize")
    assert "code" in redirect_params(answer, status=303)
    assert policy(answer) == PAGE_POLICY


def test_the_login_page_of_an_authorization_request_also_allows_its_redirect_uri_origin(
    browser: TestClient, user: Account, app: Registered
) -> None:
    # Signing in answers 303 to /oauth/authorize, which may answer 302 to the client at once.
    request = "/oauth/authorize?" + urlencode(code_request(app))
    page = login_page(browser, request)
    assert hidden(page)["next"] == request
    assert policy(page) == CONSENT_POLICY
    refused = post_login(browser, page, EMAIL, "not the password")
    assert policy(refused) == CONSENT_POLICY
    # An error for the client is redirected to its (registered) redirect URI as well.
    bad_scope = "/oauth/authorize?" + urlencode(code_request(app, scope="nope"))
    assert policy(login_page(browser, bad_scope)) == CONSENT_POLICY
    # An unknown client is answered with an error page, here: nothing more is allowed.
    unknown = "/oauth/authorize?" + urlencode(code_request(app, client_id="nobody"))
    assert policy(login_page(browser, unknown)) == PAGE_POLICY


@pytest.mark.parametrize(
    ("uri", "source"),
    [
        ("https://app.example.com/cb", "https://app.example.com"),
        ("https://App.Example.com:8443/cb?x=1", "https://app.example.com:8443"),
        ("http://127.0.0.1:53124/callback", "http://127.0.0.1:53124"),
        ("com.example.app:/oauth2redirect", "com.example.app:"),
        # A source expression cannot name an IPv6 literal: its scheme stands for it.
        ("http://[::1]:8080/cb", "http:"),
        ("/no/scheme", None),
    ],
)
def test_a_redirect_uri_becomes_the_source_expression_of_its_origin(uri: str, source: str | None) -> None:
    assert csp_source(uri) == source


# ---- cookies in production: __Host- ----


@pytest.fixture
def production(settings: Settings, clock: FrozenClock) -> Iterator[tuple[Runtime, TestClient, Registered]]:
    runtime = open_runtime(settings.with_overrides(env="production", issuer=HTTPS_ISSUER), clock=clock)
    add_account(runtime, EMAIL, PASSWORD)
    developer = add_account(runtime, "dev@example.com")
    registered = register(runtime, developer)
    browser = TestClient(create_app(runtime), base_url=HTTPS_ISSUER, follow_redirects=False)
    yield runtime, browser, registered
    browser.close()
    runtime.close()


def test_production_cookies_carry_the_host_prefix(production: tuple[Runtime, TestClient, Registered]) -> None:
    # RFC 6265bis §4.1.3.2: a "__Host-" cookie must be Secure, with Path=/ and no Domain.
    _, browser, registered = production
    page = login_page(browser)
    assert cookies_set(page, "kt_pre") == []
    _, pre = final_cookie(page, "__Host-kt_pre")
    assert pre == {"httponly": "", "max-age": "3600", "path": "/", "samesite": "lax", "secure": ""}
    response = post_login(browser, page, EMAIL, PASSWORD)
    assert response.status_code == 303, response.text
    assert cookies_set(response, "kt_session") == []
    session, attributes = final_cookie(response, "__Host-kt_session")
    assert attributes == {"httponly": "", "max-age": "43200", "path": "/", "samesite": "lax", "secure": ""}
    assert final_cookie(response, "__Host-kt_pre")[0] == '""'
    # RFC 6265bis §4.1.3.1: the device cookie, sent to /login alone, is "__Secure-".
    assert cookies_set(response, "kt_device") == []
    _, device = final_cookie(response, "__Secure-kt_device")
    assert device == {"httponly": "", "max-age": "15552000", "path": "/login", "samesite": "strict", "secure": ""}

    # The prefixed cookie is the session: the portal, the consent page, and a remembered
    # consent answered without a page (authorize_silently) all find it.
    assert browser.get("/account").status_code == 200
    assert "code" in redirect_params(
        submit(browser, consent_page(browser, code_request(registered)), "authorize"), status=303
    )
    assert "code" in redirect_params(browser.get("/oauth/authorize", params=code_request(registered)))

    # A cookie under the plain name is not a session in production.
    plain = TestClient(browser.app, base_url=HTTPS_ISSUER, follow_redirects=False)
    plain.cookies.set("kt_session", session, domain="auth.example.com", path="/")
    assert plain.get("/account").status_code == 303
    assert plain.get("/oauth/authorize", params=code_request(registered)).status_code == 303  # to the login

    logout = browser.post("/logout", data={"csrf": hidden(browser.get("/logout"))["csrf"]})
    assert logout.status_code == 303
    assert final_cookie(logout, "__Host-kt_session")[0] == '""'
    assert browser.get("/account").status_code == 303


def test_development_cookies_keep_their_plain_names(browser: TestClient, user: Account) -> None:
    page = login_page(browser)
    assert cookies_set(page, "__Host-kt_pre") == []
    response = post_login(browser, page, EMAIL, PASSWORD)
    _, attributes = final_cookie(response, "kt_session")
    assert "secure" not in attributes


# ---- redirects ----


@pytest.mark.parametrize("path", ["/login/", "/signup/", "/account/", "/account/clients/", "/oauth/authorize/"])
def test_a_trailing_slash_is_not_redirected_to_the_host_the_request_names(browser: TestClient, path: str) -> None:
    # Such a redirect was built from the Host header, not by web.http.location: anyone
    # naming another host (through a cache that ignores Host, say) sent users there.
    response = browser.get(path, headers={"host": "evil.example"})
    assert response.status_code == 404
    assert "location" not in response.headers
    assert response.json() == {"error": "not_found", "error_description": "No such endpoint."}
