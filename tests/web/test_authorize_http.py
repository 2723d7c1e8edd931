"""The authorization endpoint and the user's session over HTTP, through the in-process app:
GET /oauth/authorize (RFC 6749 §3.1, §4.1.1, §4.2.1) with its error responses (§4.1.2.1,
§4.2.2.1) and RFC 9207's iss, PKCE (RFC 7636, RFC 9700 §2.1.1), the login page with its
throttle (§10.10), sessions and logout, the consent page with its CSRF token (§10.12),
granular and remembered consent, and the headers every page sends (RFC 9700 §4.16)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, parse_qsl, quote, urlencode, urlsplit

import httpx
import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from keyturn.core.clock import FrozenClock
from keyturn.core.models import Account, Client
from keyturn.core.pkce import s256
from keyturn.core.service import commit_now
from keyturn.runtime import Runtime, open_runtime
from keyturn.settings import Settings
from keyturn.store.schema import authorization_codes, sessions, tokens
from keyturn.web.app import create_app

from ..helpers import add_account, add_client

ISSUER = "http://127.0.0.1:8000"
CATALOGUE = {"sms": "Send SMS messages", "balance": "Query balance", "analytics": "Query statistics"}
CALLBACK = "https://app.example.com/cb"
EMAIL = "ann@example.com"
PASSWORD = "correct horse battery staple"
OTHER_EMAIL = "bob@example.com"
OTHER_PASSWORD = "another good passphrase"
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CHALLENGE = s256(VERIFIER)  # RFC 7636 appendix B: E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM
FORM = {"content-type": "application/x-www-form-urlencoded"}
WRONG_CREDENTIALS = "Wrong email or password."
#: RFC 6749 §4.1.2.1: error_description "MUST NOT include characters outside the set
#: %x20-21 / %x23-5B / %x5D-7E".
ERROR_DESCRIPTION = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]+")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_overrides(scopes=CATALOGUE, default_scopes=["sms"])


@pytest.fixture
def browser(client: TestClient) -> TestClient:
    """The conftest client, answering redirects instead of following them."""
    client.follow_redirects = False
    return client


def other_browser(browser: TestClient, address: str = "203.0.113.7") -> TestClient:
    """A second browser (own cookie jar, own address) on the same app. Not entered as a
    context manager: its lifespan would close the shared runtime."""
    return TestClient(browser.app, base_url=str(browser.base_url), follow_redirects=False, client=(address, 50000))


# ---- registered parties ----


@dataclass(frozen=True)
class Registered:
    client: Client
    secret: str | None

    @property
    def id(self) -> str:
        return self.client.client_id


@pytest.fixture
def user(runtime: Runtime) -> Account:
    return add_account(runtime, EMAIL, PASSWORD)


@pytest.fixture
def other_user(runtime: Runtime) -> Account:
    return add_account(runtime, OTHER_EMAIL, OTHER_PASSWORD)


@pytest.fixture
def developer(runtime: Runtime) -> Account:
    return add_account(runtime, "dev@example.com")


def register(runtime: Runtime, owner: Account, **options: Any) -> Registered:
    options.setdefault("redirect_uris", [CALLBACK])
    created = add_client(runtime, owner, name=options.pop("name", "Acme SMS"), **options)
    return Registered(created.client, created.client_secret)


def configure(runtime: Runtime, registered: Registered, **changes: Any) -> Registered:
    """Changes what registration does not offer (first_party, remember_consent, required_scopes)."""
    changed = replace(registered.client, **changes)
    commit_now(runtime.store, lambda unit: unit.update_client(changed))
    runtime.ctx.clients.invalidate(changed.client_id)
    return Registered(changed, registered.secret)


@pytest.fixture
def app(runtime: Runtime, developer: Account) -> Registered:
    """A confidential web application with one redirect URI."""
    return register(runtime, developer)


@pytest.fixture
def public(runtime: Runtime, developer: Account) -> Registered:
    """A public (native) client."""
    return register(runtime, developer, name="Native app", confidential=False)


@pytest.fixture
def implicit(runtime: Runtime, developer: Account) -> Registered:
    """A confidential client that opted in to the implicit flow."""
    return register(runtime, developer, name="Browser app", allow_implicit=True)


# ---- HTML ----


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.inputs: list[dict[str, str | None]] = []
        self.buttons: list[dict[str, str | None]] = []
        self.alerts: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "input":
            self.inputs.append(attributes)
        elif tag == "button":
            self.buttons.append({**attributes, "text": ""})
            self._in = "button"
        elif attributes.get("role") == "alert":
            self.alerts.append("")
            self._in = "alert"

    def handle_endtag(self, tag: str) -> None:
        if tag in ("button", "p"):
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "button":
            self.buttons[-1]["text"] = (self.buttons[-1]["text"] or "") + data.strip()
        elif self._in == "alert":
            self.alerts[-1] += data.strip()


def parse_page(response: httpx.Response) -> _Page:
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    page = _Page()
    page.feed(response.text)
    return page


def hidden(response: httpx.Response) -> dict[str, str]:
    """The hidden inputs of a page (values unescaped, as a browser submits them)."""
    fields = [(i["name"], i.get("value") or "") for i in parse_page(response).inputs if i.get("type") == "hidden"]
    return {str(name): value for name, value in fields if name != "granted_scope"}


def checkboxes(response: httpx.Response) -> dict[str, dict[str, str | None]]:
    return {str(i["value"]): i for i in parse_page(response).inputs if i.get("type") == "checkbox"}


# ---- headers and redirects ----


def cookies_set(response: httpx.Response, name: str) -> list[tuple[str, dict[str, str]]]:
    """Each Set-Cookie for ``name``, in order: (value, lower-cased attributes)."""
    found = []
    for header in response.headers.get_list("set-cookie"):
        first, *attributes = (part.strip() for part in header.split(";"))
        cookie_name, _, value = first.partition("=")
        if cookie_name == name:
            attrs = {}
            for attribute in attributes:
                key, _, attr_value = attribute.partition("=")
                attrs[key.lower()] = attr_value
            found.append((value, attrs))
    return found


def final_cookie(response: httpx.Response, name: str) -> tuple[str, dict[str, str]]:
    """The value a browser keeps for ``name`` after this response (the last Set-Cookie wins)."""
    found = cookies_set(response, name)
    assert found, f"no Set-Cookie for {name}"
    return found[-1]


def assert_page_headers(response: httpx.Response) -> None:
    """RFC 9700 §4.16 (clickjacking) and the other headers every page sends, once each."""
    headers = response.headers
    assert headers.get_list("x-frame-options") == ["DENY"]
    assert headers.get_list("referrer-policy") == ["no-referrer"]
    assert headers.get_list("x-content-type-options") == ["nosniff"]
    (policy,) = headers.get_list("content-security-policy")
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["frame-ancestors"] == "'none'"
    assert directives["default-src"] == "'none'"


def assert_no_store(response: httpx.Response) -> None:
    assert response.headers.get_list("cache-control") == ["no-store"]


def redirect_params(
    response: httpx.Response, *, status: int = 302, fragment: bool = False, base: str = CALLBACK
) -> dict[str, str]:
    """The parameters of an authorization response sent to ``base`` (each exactly once)."""
    assert response.status_code == status, response.text
    assert_page_headers(response)
    assert_no_store(response)
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == base
    if fragment:
        assert location.query == ""
        raw = location.fragment
    else:
        assert location.fragment == ""
        raw = location.query
    pairs = parse_qsl(raw, keep_blank_values=True, strict_parsing=True)
    names = [name for name, _ in pairs]
    assert len(names) == len(set(names)), names
    return dict(pairs)


def assert_error_redirect(
    response: httpx.Response,
    error: str,
    *,
    state: str | None = "xyz",
    status: int = 302,
    fragment: bool = False,
    issuer: str = ISSUER,
    base: str = CALLBACK,
) -> dict[str, str]:
    """RFC 6749 §4.1.2.1 / §4.2.2.1 with RFC 9207 §2's iss."""
    params = redirect_params(response, status=status, fragment=fragment, base=base)
    expected = {"error", "error_description", "iss"} | ({"state"} if state is not None else set())
    assert set(params) == expected
    assert params["error"] == error
    assert ERROR_DESCRIPTION.fullmatch(params["error_description"]), params["error_description"]
    assert params["iss"] == issuer
    assert params.get("state") == state
    return params


def assert_error_page(response: httpx.Response, status: int = 400) -> _Page:
    """An HTML page for the user, never a redirect."""
    assert response.status_code == status, response.text
    assert "location" not in response.headers
    assert_page_headers(response)
    assert_no_store(response)
    return parse_page(response)


# ---- stored state ----


def count(runtime: Runtime, table: Any, **where: Any) -> int:
    statement = select(func.count()).select_from(table)
    for column, value in where.items():
        statement = statement.where(table.c[column] == value)
    with runtime.store.engine.connect() as connection:  # type: ignore[attr-defined]
        result: int = connection.execute(statement).scalar_one()
    return result


# ---- flows ----

Params = Mapping[str, str | Sequence[str]]


def authorize(browser: TestClient, **params: str | Sequence[str]) -> httpx.Response:
    return browser.get("/oauth/authorize", params=params)


def code_request(registered: Registered, **params: str | Sequence[str]) -> dict[str, str | Sequence[str]]:
    request: dict[str, str | Sequence[str]] = {
        "response_type": "code",
        "client_id": registered.id,
        "scope": "sms balance",
        "state": "xyz",
    }
    if not registered.client.confidential:
        request.update(code_challenge=CHALLENGE, code_challenge_method="S256")
    request.update(params)
    return {name: value for name, value in request.items() if value is not None}


def login_page(browser: TestClient, next_: str | None = None) -> httpx.Response:
    page = browser.get("/login" if next_ is None else "/login?next=" + quote(next_, safe=""))
    assert page.status_code == 200, page.text
    return page


def post_login(browser: TestClient, page: httpx.Response, email: str, password: str, **extra: str) -> httpx.Response:
    fields = hidden(page)
    return browser.post(
        "/login", data={"csrf": fields["csrf"], "next": fields["next"], "email": email, "password": password, **extra}
    )


def sign_in(browser: TestClient, email: str = EMAIL, password: str = PASSWORD, next_: str | None = None) -> str:
    """Signs in; returns the session cookie's value."""
    response = post_login(browser, login_page(browser, next_), email, password)
    assert response.status_code == 303, response.text
    value, _ = final_cookie(response, "kt_session")
    return value


def submit(
    browser: TestClient,
    page: httpx.Response,
    decision: str,
    *,
    untick: Sequence[str] = (),
    csrf: str | None = None,
    overrides: Mapping[str, list[str]] | None = None,
) -> httpx.Response:
    """Posts the consent form as a browser would: hidden inputs, the enabled checkboxes
    left ticked, and the button pressed."""
    pairs: list[tuple[str, str]] = []
    for field in parse_page(page).inputs:
        name, value = str(field["name"]), field.get("value") or ""
        if field.get("type") == "hidden":
            pairs.append((name, csrf if name == "csrf" and csrf is not None else value))
        elif field.get("type") == "checkbox" and "checked" in field and "disabled" not in field and value not in untick:
            pairs.append((name, value))
    if overrides is not None:
        pairs = [(n, v) for n, v in pairs if n not in overrides]
        pairs += [(n, v) for n, values in overrides.items() for v in values]
    pairs.append(("decision", decision))
    return browser.post("/oauth/authorize", content=urlencode(pairs), headers=FORM)


def consent_page(browser: TestClient, request: Params) -> httpx.Response:
    page = browser.get("/oauth/authorize", params=request)
    assert page.status_code == 200, page.headers.get("location", page.text)
    return page


def approve(browser: TestClient, request: Params, base: str = CALLBACK, **options: Any) -> dict[str, str]:
    """Consent page → Authorize → the parameters of the code response."""
    page = consent_page(browser, request)
    return redirect_params(submit(browser, page, "authorize", **options), status=303, base=base)


def straight_back(browser: TestClient, request: Params, base: str = CALLBACK) -> dict[str, str]:
    """An authorization the user consented to before: no page, the code at once."""
    return redirect_params(browser.get("/oauth/authorize", params=request), status=302, base=base)


def exchange(browser: TestClient, registered: Registered, code: str, **params: str) -> httpx.Response:
    data = {"grant_type": "authorization_code", "code": code, **params}
    if registered.secret is not None:
        return browser.post("/oauth/token", data=data, auth=(registered.id, registered.secret))
    return browser.post("/oauth/token", data={"client_id": registered.id, **data})


# ==== the client and the redirect URI: an error page, never a redirect ====


def test_unknown_client_gets_an_error_page(browser: TestClient, app: Registered) -> None:
    response = authorize(browser, **code_request(app, client_id="no-such-client"))
    page = assert_error_page(response)
    assert page.alerts == ["The application that sent you here is not registered."]


@pytest.mark.parametrize("client_id", [None, "", "__twice__"])
def test_missing_or_repeated_client_id_gets_an_error_page(
    browser: TestClient, app: Registered, client_id: str | None
) -> None:
    value: Any = [app.id, app.id] if client_id == "__twice__" else client_id
    assert_error_page(authorize(browser, **code_request(app, client_id=value)))


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://app.example.com/cb/",
        "https://app.example.com/cb?x=1",
        "https://app.example.com/cb#frag",
        "https://APP.example.com/cb",
        "https://app.example.com:443/cb",
        "http://app.example.com/cb",
        "https://app.example.com/cb/../cb",
        "https://app.example.com/c",
        "https://app.example.com/cbx",
        "https://evil.example/cb",
    ],
)
def test_a_redirect_uri_that_is_not_an_exact_match_gets_an_error_page(
    browser: TestClient, app: Registered, redirect_uri: str
) -> None:
    # RFC 9700 §4.1.3: exact string matching; and even with other errors in the
    # request, nothing is sent to an unverified URI (RFC 6749 §4.1.2.1).
    for response_type in ("code", "bogus"):
        response = authorize(browser, **code_request(app, redirect_uri=redirect_uri, response_type=response_type))
        page = assert_error_page(response)
        assert page.alerts == ["The redirect_uri is not registered for this application."]


def test_a_repeated_redirect_uri_gets_an_error_page(browser: TestClient, app: Registered) -> None:
    assert_error_page(authorize(browser, **code_request(app, redirect_uri=[CALLBACK, CALLBACK])))


def test_several_registered_uris_need_a_redirect_uri(browser: TestClient, runtime: Runtime, developer: Account) -> None:
    several = register(runtime, developer, redirect_uris=[CALLBACK, "https://app.example.com/other"])
    page = assert_error_page(authorize(browser, **code_request(several, scope="bogus")))
    assert page.alerts == ["The request must name its redirect_uri."]
    named = authorize(browser, **code_request(several, redirect_uri="https://app.example.com/other", scope="bogus"))
    assert_error_redirect(named, "invalid_scope", base="https://app.example.com/other")


def test_a_signed_in_user_also_gets_the_error_page(browser: TestClient, app: Registered, user: Account) -> None:
    sign_in(browser)
    assert_error_page(authorize(browser, **code_request(app, client_id="nope")))
    assert_error_page(authorize(browser, **code_request(app, redirect_uri="https://evil.example/cb")))


# ==== later errors go back to the redirect URI ====


def test_missing_response_type(browser: TestClient, app: Registered) -> None:
    assert_error_redirect(authorize(browser, **code_request(app, response_type=None)), "invalid_request")


@pytest.mark.parametrize("name", ["response_type", "scope", "state", "code_challenge", "code_challenge_method"])
def test_a_repeated_parameter_is_invalid_request(browser: TestClient, public: Registered, name: str) -> None:
    request = code_request(public)
    value = request[name]
    assert isinstance(value, str)
    request[name] = [value, value]
    # The state is echoed even when it is the repeated parameter (its first value).
    assert_error_redirect(authorize(browser, **request), "invalid_request", state="xyz")


def test_an_empty_repeat_is_still_a_repeat(browser: TestClient, app: Registered) -> None:
    assert_error_redirect(authorize(browser, **code_request(app, scope=["sms", ""])), "invalid_request")


@pytest.mark.parametrize("response_type", ["id_token", "code token", "token code", "CODE", "none"])
def test_unsupported_response_type(browser: TestClient, app: Registered, response_type: str) -> None:
    response = authorize(browser, **code_request(app, response_type=response_type))
    assert_error_redirect(response, "unsupported_response_type")


@pytest.mark.parametrize(
    ("params", "error", "description"),
    [
        (
            {"response_type": "Call_+1-555-0100_to_unlock"},
            "unsupported_response_type",
            "Only response_type=code (and token, where allowed) is supported.",
        ),
        (
            {"scope": "sms Visit-evil.example-to-restore-access"},
            "invalid_scope",
            "The request names a scope this server does not know.",
        ),
        (
            {"scope": "sms <script>alert(1)</script>"},
            "invalid_scope",
            "The request names a scope this server does not know.",
        ),
        ({"scope": "sms \u00e9vil"}, "invalid_scope", "The scope parameter holds a malformed scope."),
    ],
)
def test_error_descriptions_sent_to_the_client_are_the_servers_own_words(
    browser: TestClient, app: Registered, params: dict[str, str], error: str, description: str
) -> None:
    response = authorize(browser, **code_request(app, **params))
    assert assert_error_redirect(response, error)["error_description"] == description


def test_errors_carry_no_state_when_none_was_sent(browser: TestClient, app: Registered) -> None:
    assert_error_redirect(
        authorize(browser, **code_request(app, scope="nope", state=None)), "invalid_scope", state=None
    )


def test_implicit_for_a_client_without_it_is_unauthorized_client_in_the_fragment(
    browser: TestClient, app: Registered
) -> None:
    response = authorize(browser, **code_request(app, response_type="token"))
    assert_error_redirect(response, "unauthorized_client", fragment=True)


def test_code_for_an_implicit_only_client_is_unauthorized_client(
    browser: TestClient, runtime: Runtime, developer: Account
) -> None:
    implicit_only = register(runtime, developer, grant_types=[], allow_implicit=True)
    assert_error_redirect(authorize(browser, **code_request(implicit_only)), "unauthorized_client")


@pytest.mark.parametrize("scope", ["nope", "sms nope", "sms\\", 'sms "x"'])
def test_unknown_or_malformed_scope_is_invalid_scope(browser: TestClient, app: Registered, scope: str) -> None:
    assert_error_redirect(authorize(browser, **code_request(app, scope=scope)), "invalid_scope")


def test_a_scope_the_client_may_not_have_is_invalid_scope(
    browser: TestClient, runtime: Runtime, developer: Account
) -> None:
    limited = register(runtime, developer, scopes=["sms"])
    assert_error_redirect(authorize(browser, **code_request(limited, scope="sms balance")), "invalid_scope")
    token = register(runtime, developer, scopes=["sms"], allow_implicit=True)
    response = authorize(browser, **code_request(token, response_type="token", scope="balance"))
    assert_error_redirect(response, "invalid_scope", fragment=True)


def test_errors_keep_the_query_of_a_registered_redirect_uri(
    browser: TestClient, runtime: Runtime, developer: Account
) -> None:
    # RFC 6749 §3.1.2: the registered URI's query component "MUST be retained".
    uri = "https://app.example.com/cb?tenant=7"
    with_query = register(runtime, developer, redirect_uris=[uri])
    response = authorize(browser, **code_request(with_query, scope="nope"))
    location = urlsplit(response.headers["location"])
    assert (location.scheme, location.netloc, location.path) == ("https", "app.example.com", "/cb")
    query = parse_qs(location.query, strict_parsing=True)
    assert query["tenant"] == ["7"]
    assert query["error"] == ["invalid_scope"]
    assert query["iss"] == [ISSUER]


# ==== loopback redirect URIs (RFC 8252 §7.3) ====

LOOPBACK = "http://127.0.0.1/cb"
LOOPBACK_V6 = "http://[::1]:8080/cb"


@pytest.fixture
def native(runtime: Runtime, developer: Account) -> Registered:
    """A public native app listening on the loopback interface."""
    return register(
        runtime, developer, name="CLI tool", confidential=False, redirect_uris=[LOOPBACK, LOOPBACK_V6, LOCALHOST]
    )


LOCALHOST = "http://localhost/cb"


@pytest.mark.parametrize(
    "redirect_uri",
    ["http://127.0.0.1:51234/cb", "http://127.0.0.1:1/cb", "http://[::1]:65535/cb", "http://[::1]/cb", LOOPBACK],
)
def test_a_loopback_redirect_uri_may_name_any_port(
    browser: TestClient, native: Registered, user: Account, redirect_uri: str
) -> None:
    # RFC 8252 §7.3: "The authorization server MUST allow any port to be specified at the
    # time of the request for loopback IP redirect URIs".
    error = authorize(browser, **code_request(native, redirect_uri=redirect_uri, scope="nope"))
    assert_error_redirect(error, "invalid_scope", base=redirect_uri)
    sign_in(browser)
    params = approve(browser, code_request(native, redirect_uri=redirect_uri), base=redirect_uri)
    # RFC 6749 §4.1.3: the token request repeats the URI of the authorization request,
    # port and all; the registered one is not it.
    for other in {LOOPBACK, "http://127.0.0.1:51235/cb"} - {redirect_uri}:
        refused = exchange(browser, native, params["code"], redirect_uri=other, code_verifier=VERIFIER)
        assert (refused.status_code, refused.json()["error"]) == (400, "invalid_grant")
    params = straight_back(browser, code_request(native, redirect_uri=redirect_uri), base=redirect_uri)
    ok = exchange(browser, native, params["code"], redirect_uri=redirect_uri, code_verifier=VERIFIER)
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://localhost:51234/cb",  # RFC 8252 §8.3: localhost is not a loopback IP literal
        "http://127.0.0.1:51234/cb/",
        "http://127.0.0.1:51234/CB",
        "http://127.0.0.1:51234/cb?x=1",
        "http://127.0.0.1:51234/cb#x",
        "https://127.0.0.1:51234/cb",
        "HTTP://127.0.0.1:51234/cb",
        "http://127.0.0.2:51234/cb",
        "http://127.1:51234/cb",
        "http://[::1]:51234/other",
        "http://127.0.0.1:0/cb",
        "http://127.0.0.1:65536/cb",
        "http://127.0.0.1:051234/cb",
        "http://127.0.0.1:/cb",
        "http://127.0.0.1:51234@evil.example/cb",
        "http://evil.example:80@127.0.0.1/cb",
    ],
)
def test_only_the_port_of_a_loopback_redirect_uri_may_differ(
    browser: TestClient, native: Registered, redirect_uri: str
) -> None:
    response = authorize(browser, **code_request(native, redirect_uri=redirect_uri))
    page = assert_error_page(response)
    assert page.alerts == ["The redirect_uri is not registered for this application."]


def test_a_registered_loopback_port_is_not_required(browser: TestClient, runtime: Runtime, developer: Account) -> None:
    with_port = register(runtime, developer, confidential=False, redirect_uris=["http://127.0.0.1:3000/cb"])
    for uri in ("http://127.0.0.1/cb", "http://127.0.0.1:4000/cb"):
        assert_error_redirect(
            authorize(browser, **code_request(with_port, redirect_uri=uri, scope="no")), "invalid_scope", base=uri
        )


# ==== a redirect URI that needs percent-encoding ====

#: As a row from before registration refused spaces and non-ASCII may hold it.
RAW_CALLBACK = "https://app.example.com/café cb"
ENCODED_CALLBACK = "https://app.example.com/caf%C3%A9%20cb"


def assert_ascii_location(response: httpx.Response) -> None:
    raw = dict(response.headers.raw)[b"location"]
    assert raw.isascii(), raw
    assert b" " not in raw, raw


def test_a_raw_registered_redirect_uri_gets_a_percent_encoded_location(
    browser: TestClient, runtime: Runtime, app: Registered, user: Account
) -> None:
    old = configure(runtime, app, redirect_uris=(RAW_CALLBACK,))
    error = authorize(browser, **code_request(old, scope="nope"))
    assert_ascii_location(error)
    assert_error_redirect(error, "invalid_scope", base=ENCODED_CALLBACK)

    sign_in(browser)
    # The page path: the consent page, then Authorize.
    page = consent_page(browser, code_request(old))
    answer = submit(browser, page, "authorize")
    assert_ascii_location(answer)
    params = redirect_params(answer, status=303, base=ENCODED_CALLBACK)
    assert exchange(browser, old, params["code"]).status_code == 200

    # The silent path (remembered consent), with the URI named in the request too.
    for request in (code_request(old), code_request(old, redirect_uri=RAW_CALLBACK)):
        silent = authorize(browser, **request)
        assert_ascii_location(silent)
        params = redirect_params(silent, status=302, base=ENCODED_CALLBACK)
    token = exchange(browser, old, params["code"], redirect_uri=RAW_CALLBACK)
    assert token.status_code == 200, token.text


# ==== PKCE ====


@pytest.mark.parametrize(
    ("challenge", "method"),
    [
        (None, None),  # a public client must use PKCE
        (CHALLENGE, None),  # no method means "plain" (RFC 7636 §4.3)
        (CHALLENGE, "plain"),
        (CHALLENGE, "s256"),
        (None, "S256"),
        (CHALLENGE[:-1], "S256"),  # 42 characters
        (CHALLENGE + "A", "S256"),  # 44 characters
        (CHALLENGE[:-1] + "=", "S256"),
    ],
)
def test_public_clients_need_s256(
    browser: TestClient, public: Registered, challenge: str | None, method: str | None
) -> None:
    request = code_request(public, code_challenge=challenge, code_challenge_method=method)
    for name, value in (("code_challenge", challenge), ("code_challenge_method", method)):
        if value is None:
            request.pop(name, None)
    assert_error_redirect(authorize(browser, **request), "invalid_request")


def test_a_malformed_code_challenge_is_described_in_full(browser: TestClient, public: Registered) -> None:
    # The server's own words arrive as written: nothing in them is outside RFC 6749 §5.2's
    # character set, so nothing is replaced (a "§" used to arrive as "?").
    request = code_request(public, code_challenge=CHALLENGE[:-1], code_challenge_method="S256")
    params = assert_error_redirect(authorize(browser, **request), "invalid_request")
    assert params["error_description"] == "The code_challenge must be 43 base64url characters (RFC 7636 section 4.2)."


def test_a_confidential_client_may_go_without_pkce(browser: TestClient, app: Registered) -> None:
    response = authorize(browser, **code_request(app))
    assert response.status_code == 303
    assert urlsplit(response.headers["location"]).path == "/login"


def test_implicit_with_a_code_challenge_is_invalid_request(browser: TestClient, implicit: Registered) -> None:
    request = code_request(implicit, response_type="token", code_challenge=CHALLENGE, code_challenge_method="S256")
    assert_error_redirect(authorize(browser, **request), "invalid_request", fragment=True)


def test_require_pkce_applies_to_confidential_clients(settings: Settings, clock: FrozenClock) -> None:
    runtime = open_runtime(settings.with_overrides(require_pkce=True), clock=clock)
    try:
        developer = add_account(runtime, "dev@example.com")
        confidential = register(runtime, developer)
        browser = TestClient(create_app(runtime), base_url=ISSUER, follow_redirects=False)
        assert_error_redirect(authorize(browser, **code_request(confidential)), "invalid_request")
        with_pkce = code_request(confidential, code_challenge=CHALLENGE, code_challenge_method="S256")
        response = authorize(browser, **with_pkce)
        assert response.status_code == 303
        assert urlsplit(response.headers["location"]).path == "/login"
    finally:
        runtime.close()


def test_public_client_code_flow_end_to_end(browser: TestClient, public: Registered, user: Account) -> None:
    sign_in(browser)
    params = approve(browser, code_request(public))
    assert set(params) == {"code", "state", "iss"}
    missing = exchange(browser, public, params["code"])
    assert (missing.status_code, missing.json()["error"]) == (400, "invalid_grant")
    params = straight_back(browser, code_request(public))
    wrong = exchange(browser, public, params["code"], code_verifier="x" * 43)
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_grant")
    params = straight_back(browser, code_request(public))
    ok = exchange(browser, public, params["code"], code_verifier=VERIFIER)
    assert ok.status_code == 200, ok.text
    assert ok.json()["scope"] == "sms balance"


def test_a_code_verifier_for_a_code_without_challenge_is_refused(
    browser: TestClient, app: Registered, user: Account
) -> None:
    # RFC 9700 §4.8.2: PKCE downgrade.
    sign_in(browser)
    params = approve(browser, code_request(app))
    response = exchange(browser, app, params["code"], code_verifier=VERIFIER)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")


def test_a_confidential_client_that_sends_pkce_is_held_to_it(
    browser: TestClient, app: Registered, user: Account
) -> None:
    sign_in(browser)
    request = code_request(app, code_challenge=CHALLENGE, code_challenge_method="S256")
    params = approve(browser, request)
    without = exchange(browser, app, params["code"])
    assert (without.status_code, without.json()["error"]) == (400, "invalid_grant")
    params = straight_back(browser, request)
    ok = exchange(browser, app, params["code"], code_verifier=VERIFIER)
    assert ok.status_code == 200, ok.text


# ==== not signed in: login, then back to the same request ====


def test_login_then_back_to_the_same_request(
    browser: TestClient, runtime: Runtime, app: Registered, user: Account
) -> None:
    state = "a b&c=d/é+%25?#"
    request = code_request(app, redirect_uri=CALLBACK, state=state, scope="balance sms")
    response = authorize(browser, **request)
    assert response.status_code == 303
    assert_page_headers(response)
    location = urlsplit(response.headers["location"])
    assert location.path == "/login"
    (next_,) = parse_qs(location.query, strict_parsing=True)["next"]

    page = browser.get(response.headers["location"])
    assert page.status_code == 200
    assert_page_headers(page)
    fields = {str(i["name"]): i for i in parse_page(page).inputs}
    assert (fields["email"]["type"], fields["password"]["type"]) == ("email", "password")
    assert hidden(page)["next"] == next_

    signed_in = post_login(browser, page, EMAIL, PASSWORD)
    assert signed_in.status_code == 303
    back = urlsplit(signed_in.headers["location"])
    assert (back.netloc, back.path) == ("", "/oauth/authorize")
    assert {k: v for k, v in parse_qsl(back.query, strict_parsing=True)} == request

    consent = browser.get(signed_in.headers["location"])
    assert consent.status_code == 200
    params = redirect_params(submit(browser, consent, "authorize"), status=303)
    assert params == {"code": params["code"], "state": state, "iss": ISSUER}
    # RFC 6749 §4.1.3: the redirect_uri was sent, so the token request must repeat it.
    without = exchange(browser, app, params["code"])
    assert (without.status_code, without.json()["error"]) == (400, "invalid_grant")
    params = straight_back(browser, request)
    assert params["state"] == state
    token = exchange(browser, app, params["code"], redirect_uri=CALLBACK)
    assert token.status_code == 200, token.text
    assert token.json()["scope"] == "balance sms"


def test_errors_do_not_wait_for_a_login(browser: TestClient, app: Registered) -> None:
    assert_error_redirect(authorize(browser, **code_request(app, scope="nope")), "invalid_scope")


def test_the_login_page_has_email_password_and_a_csrf_token(browser: TestClient) -> None:
    page = browser.get("/login")
    assert page.status_code == 200
    assert_page_headers(page)
    assert_no_store(page)
    fields = {str(i["name"]): i for i in parse_page(page).inputs}
    assert set(fields) == {"csrf", "next", "email", "password"}
    assert re.fullmatch(r"[0-9a-f]{64}", str(fields["csrf"]["value"]))
    assert fields["next"]["value"] == "/account"
    pre, attributes = final_cookie(page, "kt_pre")
    assert len(pre) >= 43
    assert attributes == {"httponly": "", "max-age": "3600", "path": "/", "samesite": "lax"}


def test_wrong_password_and_unknown_email_look_the_same(browser: TestClient, user: Account) -> None:
    page = login_page(browser)
    wrong = post_login(browser, page, EMAIL, "not the password")
    unknown = post_login(browser, page, "nobody@example.com", "not the password")
    not_an_email = post_login(browser, page, "nobody", "not the password")
    for response in (wrong, unknown, not_an_email):
        assert response.status_code == 400
        assert "kt_session" not in response.headers.get("set-cookie", "")
        assert parse_page(response).alerts == [WRONG_CREDENTIALS]
        assert_page_headers(response)
    # Apart from the echoed email, the pages are the same.
    assert wrong.text.replace(EMAIL, "E") == unknown.text.replace("nobody@example.com", "E")


def test_login_without_a_valid_csrf_token_signs_nobody_in(browser: TestClient, user: Account) -> None:
    page = login_page(browser)
    for csrf in ("", "0" * 64):
        response = browser.post("/login", data={"csrf": csrf, "next": "/account", "email": EMAIL, "password": PASSWORD})
        assert_error_page(response)
        assert cookies_set(response, "kt_session") == []
    assert post_login(browser, page, EMAIL, PASSWORD).status_code == 303


def test_session_cookie_attributes_over_http(browser: TestClient, user: Account) -> None:
    response = post_login(browser, login_page(browser), EMAIL, PASSWORD)
    value, attributes = final_cookie(response, "kt_session")
    assert len(value) >= 43
    assert attributes == {"httponly": "", "max-age": "43200", "path": "/", "samesite": "lax"}


def test_session_cookie_is_secure_under_an_https_issuer(settings: Settings, clock: FrozenClock) -> None:
    issuer = "https://auth.example.com"
    # Configured with a trailing slash: iss must still equal the metadata's issuer (RFC 9207 §2).
    runtime = open_runtime(settings.with_overrides(issuer=issuer + "/"), clock=clock)
    try:
        add_account(runtime, EMAIL, PASSWORD)
        developer = add_account(runtime, "dev@example.com")
        registered = register(runtime, developer)
        browser = TestClient(create_app(runtime), base_url=issuer, follow_redirects=False)
        assert browser.get("/.well-known/oauth-authorization-server").json()["issuer"] == issuer
        page = login_page(browser)
        _, pre = final_cookie(page, "kt_pre")
        assert "secure" in pre
        response = post_login(browser, page, EMAIL, PASSWORD)
        assert response.status_code == 303
        _, attributes = final_cookie(response, "kt_session")
        assert attributes == {"httponly": "", "max-age": "43200", "path": "/", "samesite": "lax", "secure": ""}
        # The Secure cookie is sent back over https, and iss is the https issuer.
        assert browser.get("/account").status_code == 200
        params = approve(browser, code_request(registered))
        assert params["iss"] == issuer
        assert_error_redirect(
            authorize(browser, **code_request(registered, scope="nope")), "invalid_scope", issuer=issuer
        )
    finally:
        runtime.close()


def test_the_pre_session_cookie_is_replaced_at_login(browser: TestClient, user: Account) -> None:
    page = login_page(browser)
    pre = browser.cookies.get("kt_pre")
    assert pre
    response = post_login(browser, page, EMAIL, PASSWORD)
    session, _ = final_cookie(response, "kt_session")
    assert session != pre
    assert final_cookie(response, "kt_pre")[0] == '""'
    assert browser.cookies.get("kt_pre") is None
    assert browser.get("/account").status_code == 200


def test_a_planted_session_value_is_not_adopted(browser: TestClient, runtime: Runtime, user: Account) -> None:
    # No session fixation: a value set before login is replaced, not promoted.
    browser.cookies.set("kt_session", "planted-by-an-attacker", domain="127.0.0.1", path="/")
    session = sign_in(browser)
    assert session != "planted-by-an-attacker"
    assert browser.cookies.get("kt_session") == session
    planted = other_browser(browser)
    planted.cookies.set("kt_session", "planted-by-an-attacker", domain="127.0.0.1", path="/")
    assert planted.get("/account").status_code == 303


def test_signing_in_again_ends_the_previous_session(browser: TestClient, runtime: Runtime, user: Account) -> None:
    first = sign_in(browser)
    assert browser.get("/login").status_code == 303  # already signed in
    csrf = hidden(browser.get("/logout"))["csrf"]
    again = browser.post("/login", data={"csrf": csrf, "next": "/account", "email": EMAIL, "password": PASSWORD})
    assert again.status_code == 303
    latest, _ = final_cookie(again, "kt_session")
    assert latest not in ("", first)
    assert count(runtime, sessions, account_id=user.id) == 1
    stale = other_browser(browser)
    stale.cookies.set("kt_session", first, domain="127.0.0.1", path="/")
    assert stale.get("/account").status_code == 303
    assert browser.get("/account").status_code == 200


def test_a_login_sets_each_cookie_once(browser: TestClient, user: Account) -> None:
    # RFC 6265 §4.1.1: "Servers SHOULD NOT include more than one Set-Cookie header field
    # in the same response with the same cookie-name."
    response = post_login(browser, login_page(browser), EMAIL, PASSWORD)
    assert response.status_code == 303
    assert len(cookies_set(response, "kt_session")) == 1
    assert len(cookies_set(response, "kt_pre")) == 1


def test_a_session_ends_after_its_lifetime(
    browser: TestClient, clock: FrozenClock, app: Registered, user: Account
) -> None:
    sign_in(browser)
    clock.advance(43_199)
    assert consent_page(browser, code_request(app)).status_code == 200
    clock.advance(1)
    response = authorize(browser, **code_request(app))
    assert response.status_code == 303
    assert urlsplit(response.headers["location"]).path == "/login"
    account = browser.get("/account")
    assert (account.status_code, account.headers["location"]) == (303, "/login?next=/account")


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example/",
        "\\\\evil.example/",
        "https:evil.example",
        "/\t/evil.example/",
        "javascript:alert(1)",
    ],
)
def test_login_never_redirects_off_site(browser: TestClient, user: Account, target: str) -> None:
    page = login_page(browser, target)
    assert hidden(page)["next"] == "/account"
    # Even when the form itself is forged.
    forged = browser.post(
        "/login", data={"csrf": hidden(page)["csrf"], "next": target, "email": EMAIL, "password": PASSWORD}
    )
    assert (forged.status_code, forged.headers["location"]) == (303, "/account")
    already = browser.get("/login?next=" + quote(target, safe=""))
    assert (already.status_code, already.headers["location"]) == (303, "/account")


def test_a_local_next_is_kept(browser: TestClient, user: Account) -> None:
    response = post_login(browser, login_page(browser, "/account?tab=keys"), EMAIL, PASSWORD)
    assert (response.status_code, response.headers["location"]) == (303, "/account?tab=keys")


# ==== throttling (RFC 6749 §10.10) ====


def test_five_failures_for_an_account_from_one_address_are_refused_there_until_the_window_passes(
    browser: TestClient, clock: FrozenClock, user: Account
) -> None:
    page = login_page(browser)
    for _ in range(5):
        assert post_login(browser, page, EMAIL, "wrong password!").status_code == 400
    refused = post_login(browser, page, EMAIL, PASSWORD)
    assert_error_page(refused, 429)
    assert refused.headers["retry-after"] == "900"
    assert cookies_set(refused, "kt_session") == []
    # Whatever the email's case, from this address.
    assert post_login(browser, page, EMAIL.upper(), PASSWORD).status_code == 429
    # Someone else's failures never lock the owner out: from another address, the owner
    # signs in.
    elsewhere = other_browser(browser)
    assert post_login(elsewhere, login_page(elsewhere), EMAIL, PASSWORD).status_code == 303
    clock.advance(600)
    still = post_login(browser, page, EMAIL, PASSWORD)
    assert (still.status_code, still.headers["retry-after"]) == (429, "300")
    clock.advance(300)
    assert post_login(browser, page, EMAIL, PASSWORD).status_code == 303


def test_the_account_throttle_does_not_touch_other_accounts(
    browser: TestClient, user: Account, other_user: Account
) -> None:
    page = login_page(browser)
    for _ in range(5):
        post_login(browser, page, EMAIL, "wrong password!")
    assert post_login(browser, page, OTHER_EMAIL, OTHER_PASSWORD).status_code == 303


def test_four_failures_do_not_stop_the_owner(browser: TestClient, user: Account) -> None:
    page = login_page(browser)
    for _ in range(4):
        assert post_login(browser, page, EMAIL, "wrong password!").status_code == 400
    assert post_login(browser, page, EMAIL, PASSWORD).status_code == 303


def test_thirty_failures_from_one_address_are_refused_until_the_window_passes(
    browser: TestClient, clock: FrozenClock, user: Account
) -> None:
    page = login_page(browser)
    for i in range(30):
        assert post_login(browser, page, f"nobody{i}@example.com", "wrong password!").status_code == 400
    refused = post_login(browser, page, EMAIL, PASSWORD)
    assert_error_page(refused, 429)
    assert refused.headers["retry-after"] == "900"
    # Another address is not affected.
    elsewhere = other_browser(browser)
    assert post_login(elsewhere, login_page(elsewhere), EMAIL, PASSWORD).status_code == 303
    clock.advance(900)
    assert post_login(browser, page, EMAIL, PASSWORD).status_code == 303


# ==== logout ====


def test_logout_ends_the_session(browser: TestClient, runtime: Runtime, user: Account) -> None:
    session = sign_in(browser)
    assert browser.get("/account").status_code == 200
    page = browser.get("/logout")
    assert page.status_code == 200
    assert_page_headers(page)
    # GET only shows the form: the session is still there.
    assert count(runtime, sessions, account_id=user.id) == 1
    response = browser.post("/logout", data={"csrf": hidden(page)["csrf"]})
    assert (response.status_code, response.headers["location"]) == (303, "/login")
    value, attributes = final_cookie(response, "kt_session")
    assert (value, attributes["max-age"]) == ('""', "0")
    assert count(runtime, sessions, account_id=user.id) == 0
    replay = other_browser(browser)
    replay.cookies.set("kt_session", session, domain="127.0.0.1", path="/")
    account = replay.get("/account")
    assert (account.status_code, account.headers["location"]) == (303, "/login?next=/account")


def test_logout_without_the_csrf_token_changes_nothing(browser: TestClient, runtime: Runtime, user: Account) -> None:
    sign_in(browser)
    for data in ({}, {"csrf": "0" * 64}):
        assert_error_page(browser.post("/logout", data=data))
    assert count(runtime, sessions, account_id=user.id) == 1
    assert browser.get("/account").status_code == 200


# ==== the consent page ====


def test_the_consent_page_shows_the_client_and_each_scope(
    browser: TestClient, runtime: Runtime, app: Registered, user: Account
) -> None:
    sign_in(browser)
    page = consent_page(browser, code_request(app, scope="sms analytics"))
    assert_page_headers(page)
    assert_no_store(page)
    assert "Acme SMS" in page.text
    assert "Send SMS messages" in page.text
    assert "Query statistics" in page.text
    assert "Query balance" not in page.text
    assert set(checkboxes(page)) == {"sms", "analytics"}
    parsed = parse_page(page)
    assert {(b["name"], b["value"], b["text"]) for b in parsed.buttons} == {
        ("decision", "deny", "Deny"),
        ("decision", "authorize", "Authorize"),
    }
    fields = hidden(page)
    assert re.fullmatch(r"[0-9a-f]{64}", fields["csrf"])
    assert fields == {
        "csrf": fields["csrf"],
        "response_type": "code",
        "client_id": app.id,
        "scope": "sms analytics",
        "state": "xyz",
    }
    # Showing the page decides nothing.
    assert runtime.store.get_consent(user.id, app.id) is None
    assert count(runtime, authorization_codes) == 0


def test_the_default_scope_applies_when_none_is_asked(browser: TestClient, app: Registered, user: Account) -> None:
    sign_in(browser)
    request = code_request(app, scope=None)
    assert set(checkboxes(consent_page(browser, request))) == {"sms"}
    params = approve(browser, request)
    assert exchange(browser, app, params["code"]).json()["scope"] == "sms"


def test_with_no_scope_asked_the_default_scope_not_the_registered_ones_is_offered(
    browser: TestClient, runtime: Runtime, developer: Account, user: Account
) -> None:
    # sms77: "If the scope is not specified or is empty, the default scope is used."
    registered = register(runtime, developer, scopes=["sms", "balance"])
    sign_in(browser)
    request = code_request(registered, scope=None)
    assert set(checkboxes(consent_page(browser, request))) == {"sms"}
    # A client that may have none of the defaults: RFC 6749 §3.3 "fail the request
    # indicating an invalid scope request", on the code and the implicit flow alike.
    analytics = register(runtime, developer, scopes=["analytics"], allow_implicit=True)
    assert_error_redirect(authorize(browser, **code_request(analytics, scope=None)), "invalid_scope")
    response = authorize(browser, **code_request(analytics, response_type="token", scope=None))
    assert_error_redirect(response, "invalid_scope", fragment=True)


def test_the_client_name_is_escaped(browser: TestClient, runtime: Runtime, developer: Account, user: Account) -> None:
    hostile = register(runtime, developer, name='<script>alert("x")</script>')
    sign_in(browser)
    page = consent_page(browser, code_request(hostile))
    assert "<script>" not in page.text
    assert "&lt;script&gt;" in page.text


def test_approve_issues_a_code_with_exactly_the_ticked_scopes(
    browser: TestClient, runtime: Runtime, app: Registered, user: Account
) -> None:
    sign_in(browser)
    request = code_request(app, scope="sms balance analytics")
    params = approve(browser, request, untick=["balance"])
    assert params == {"code": params["code"], "state": "xyz", "iss": ISSUER}
    token = exchange(browser, app, params["code"])
    assert token.status_code == 200, token.text
    assert token.json()["scope"] == "sms analytics"
    consent = runtime.store.get_consent(user.id, app.id)
    assert consent is not None
    assert consent.scopes == ("sms", "analytics")


def test_required_scopes_cannot_be_unticked(
    browser: TestClient, runtime: Runtime, app: Registered, user: Account
) -> None:
    app = configure(runtime, app, required_scopes=("sms",))
    sign_in(browser)
    request = code_request(app, scope="sms balance")
    page = consent_page(browser, request)
    boxes = checkboxes(page)
    assert "disabled" in boxes["sms"]
    assert "disabled" not in boxes["balance"]
    params = redirect_params(submit(browser, page, "authorize", untick=["sms", "balance"]), status=303)
    assert exchange(browser, app, params["code"]).json()["scope"] == "sms"
    # A forged form without the required scope still gets it; one that adds an
    # unrequested scope does not get that.
    forged = submit(browser, consent_page(browser, request), "authorize", overrides={"granted_scope": ["analytics"]})
    params = redirect_params(forged, status=303)
    assert exchange(browser, app, params["code"]).json()["scope"] == "sms"


def test_unticking_everything_is_access_denied(
    browser: TestClient, runtime: Runtime, app: Registered, user: Account
) -> None:
    sign_in(browser)
    page = consent_page(browser, code_request(app))
    assert_error_redirect(submit(browser, page, "authorize", untick=["sms", "balance"]), "access_denied", status=303)
    assert runtime.store.get_consent(user.id, app.id) is None
    assert count(runtime, authorization_codes) == 0


def test_deny_is_access_denied_and_stores_nothing(
    browser: TestClient, runtime: Runtime, app: Registered, user: Account
) -> None:
    sign_in(browser)
    page = consent_page(browser, code_request(app))
    assert_error_redirect(submit(browser, page, "deny"), "access_denied", status=303)
    assert runtime.store.get_consent(user.id, app.id) is None
    assert count(runtime, authorization_codes) == 0
    # Nothing was remembered: the next request asks again.
    assert consent_page(browser, code_request(app)).status_code == 200


def test_a_consent_post_without_a_valid_csrf_token_changes_nothing(
    browser: TestClient, runtime: Runtime, app: Registered, user: Account, other_user: Account
) -> None:
    sign_in(browser)
    page = consent_page(browser, code_request(app))
    # Another user's valid token, bound to another session.
    attacker = other_browser(browser)
    sign_in(attacker, OTHER_EMAIL, OTHER_PASSWORD)
    foreign = hidden(consent_page(attacker, code_request(app)))["csrf"]
    for csrf in ("", "0" * 64, foreign):
        for decision in ("authorize", "deny"):
            assert_error_page(submit(browser, page, decision, csrf=csrf))
    no_token = browser.post(
        "/oauth/authorize",
        data={**{k: v for k, v in hidden(page).items() if k != "csrf"}, "decision": "authorize"},
    )
    assert_error_page(no_token)
    assert runtime.store.get_consent(user.id, app.id) is None
    assert count(runtime, authorization_codes) == 0
    assert count(runtime, tokens) == 0
    # The page's own token still works.
    assert redirect_params(submit(browser, page, "authorize"), status=303)["state"] == "xyz"


def test_a_consent_post_without_a_decision_changes_nothing(
    browser: TestClient, runtime: Runtime, app: Registered, user: Account
) -> None:
    sign_in(browser)
    page = consent_page(browser, code_request(app))
    assert_error_page(submit(browser, page, ""))
    assert runtime.store.get_consent(user.id, app.id) is None
    assert count(runtime, authorization_codes) == 0


def test_a_consent_post_after_logout_goes_to_the_login(browser: TestClient, app: Registered, user: Account) -> None:
    sign_in(browser)
    page = consent_page(browser, code_request(app))
    browser.post("/logout", data={"csrf": hidden(browser.get("/logout"))["csrf"]})
    response = submit(browser, page, "authorize")
    assert response.status_code == 303
    assert urlsplit(response.headers["location"]).path == "/login"


# ==== remembered consent and first-party clients ====


def test_remembered_consent_goes_straight_back(
    browser: TestClient, runtime: Runtime, app: Registered, user: Account
) -> None:
    sign_in(browser)
    approve(browser, code_request(app, scope="sms balance analytics"), untick=["analytics"])
    for scope in ("sms", "balance sms", "sms balance"):
        params = redirect_params(authorize(browser, **code_request(app, scope=scope)), status=302)
        assert params == {"code": params["code"], "state": "xyz", "iss": ISSUER}
        assert exchange(browser, app, params["code"]).json()["scope"] == scope
    # A scope not granted before: the page again; what is granted then adds up.
    page = consent_page(browser, code_request(app, scope="sms analytics"))
    assert set(checkboxes(page)) == {"sms", "analytics"}
    redirect_params(submit(browser, page, "authorize"), status=303)
    consent = runtime.store.get_consent(user.id, app.id)
    assert consent is not None
    assert consent.scopes == ("sms", "balance", "analytics")


def test_a_silent_approval_is_answered_without_the_page_app(
    browser: TestClient, runtime: Runtime, app: Registered, user: Account
) -> None:
    sign_in(browser)
    approve(browser, code_request(app))
    keyturn: Any = browser.app
    pages = keyturn.pages

    async def refuse(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError(f"the page app was asked for {scope['path']}")

    keyturn.pages = refuse
    try:
        response = authorize(browser, **code_request(app))
    finally:
        keyturn.pages = pages
    params = redirect_params(response, status=302)
    assert exchange(browser, app, params["code"]).status_code == 200
    assert_page_headers(response)
    assert_no_store(response)
    assert response.headers["content-length"] == "0"
    assert response.headers["x-request-id"]


def test_a_silent_approval_reads_the_session_and_consent_in_one_look_up(
    browser: TestClient, runtime: Runtime, app: Registered, user: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    sign_in(browser)
    approve(browser, code_request(app))
    store: Any = runtime.store
    looked_up: list[str] = []
    joined = store.get_session_and_consent

    def one_look_up(session_hash: bytes, client_id: str) -> Any:
        looked_up.append(client_id)
        return joined(session_hash, client_id)

    def separate(*args: Any) -> Any:
        raise AssertionError("a second look-up on the silent path")

    monkeypatch.setattr(store, "get_session_and_consent", one_look_up)
    monkeypatch.setattr(store, "get_session", separate)
    monkeypatch.setattr(store, "get_consent", separate)
    params = redirect_params(authorize(browser, **code_request(app)), status=302)
    assert looked_up == [app.id]
    monkeypatch.undo()
    assert exchange(browser, app, params["code"]).status_code == 200


def test_a_stale_session_cookie_on_a_silent_request_goes_to_login(
    browser: TestClient, runtime: Runtime, app: Registered, user: Account
) -> None:
    sign_in(browser)
    approve(browser, code_request(app))
    browser.cookies.clear()
    browser.cookies.set("kt_session", "not-a-session")
    response = authorize(browser, **code_request(app))
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")


def test_consent_is_remembered_per_user(
    browser: TestClient, runtime: Runtime, app: Registered, user: Account, other_user: Account
) -> None:
    sign_in(browser)
    approve(browser, code_request(app))
    second = other_browser(browser)
    sign_in(second, OTHER_EMAIL, OTHER_PASSWORD)
    assert consent_page(second, code_request(app)).status_code == 200


def test_a_client_that_does_not_remember_consent_asks_every_time(
    browser: TestClient, runtime: Runtime, app: Registered, user: Account
) -> None:
    app = configure(runtime, app, remember_consent=False)
    sign_in(browser)
    approve(browser, code_request(app))
    assert runtime.store.get_consent(user.id, app.id) is None
    assert consent_page(browser, code_request(app)).status_code == 200


def test_a_first_party_client_skips_consent(
    browser: TestClient, runtime: Runtime, app: Registered, user: Account
) -> None:
    app = configure(runtime, app, first_party=True)
    sign_in(browser)
    params = redirect_params(authorize(browser, **code_request(app)), status=302)
    assert params == {"code": params["code"], "state": "xyz", "iss": ISSUER}
    assert exchange(browser, app, params["code"]).json()["scope"] == "sms balance"
    assert runtime.store.get_consent(user.id, app.id) is None


# ==== implicit (RFC 6749 §4.2) ====


def test_implicit_returns_a_token_in_the_fragment(
    browser: TestClient, runtime: Runtime, implicit: Registered, user: Account
) -> None:
    sign_in(browser)
    request = code_request(implicit, response_type="token", scope="sms balance")
    page = consent_page(browser, request)
    assert hidden(page)["response_type"] == "token"
    params = redirect_params(submit(browser, page, "authorize", untick=["balance"]), status=303, fragment=True)
    assert params == {
        "access_token": params["access_token"],
        "token_type": "Bearer",
        "expires_in": "3600",
        "scope": "sms",
        "state": "xyz",
        "iss": ISSUER,
    }
    stored = runtime.store.find_token(runtime.hasher.token_key(params["access_token"]))
    assert stored is not None
    assert (stored.kind, stored.client_id, stored.account_id, stored.scopes) == (
        "access",
        implicit.id,
        user.id,
        ("sms",),
    )
    # RFC 6749 §4.2.2: no refresh token.
    assert count(runtime, tokens) == 1
    assert count(runtime, tokens, kind="refresh") == 0
    me = browser.get("/me", headers={"authorization": f"Bearer {params['access_token']}"})
    assert (me.status_code, me.json()["email"], me.json()["client_id"]) == (200, EMAIL, implicit.id)


def test_implicit_with_remembered_consent_goes_straight_back(
    browser: TestClient, implicit: Registered, user: Account
) -> None:
    sign_in(browser)
    request = code_request(implicit, response_type="token", scope="sms", state=None)
    redirect_params(submit(browser, consent_page(browser, request), "authorize"), status=303, fragment=True)
    params = redirect_params(authorize(browser, **request), status=302, fragment=True)
    assert set(params) == {"access_token", "token_type", "expires_in", "scope", "iss"}


def test_implicit_deny_is_access_denied_in_the_fragment(
    browser: TestClient, runtime: Runtime, implicit: Registered, user: Account
) -> None:
    sign_in(browser)
    page = consent_page(browser, code_request(implicit, response_type="token"))
    assert_error_redirect(submit(browser, page, "deny"), "access_denied", status=303, fragment=True)
    assert count(runtime, tokens) == 0


def test_an_implicit_client_may_still_use_the_code_flow(
    browser: TestClient, implicit: Registered, user: Account
) -> None:
    sign_in(browser)
    params = approve(browser, code_request(implicit))
    assert set(params) == {"code", "state", "iss"}


# ==== headers on every page ====


def test_every_page_and_authorization_response_sends_the_security_headers(
    browser: TestClient, app: Registered, user: Account
) -> None:
    responses: list[httpx.Response] = [
        browser.get("/login"),
        authorize(browser, **code_request(app, client_id="nope")),
        authorize(browser, **code_request(app, scope="nope")),
        authorize(browser, **code_request(app)),
    ]
    sign_in(browser)
    page = consent_page(browser, code_request(app))
    responses += [
        page,
        browser.get("/account"),
        browser.get("/logout"),
        submit(browser, page, "authorize"),
        authorize(browser, **code_request(app)),
    ]
    assert [r.status_code for r in responses] == [200, 400, 302, 303, 200, 200, 200, 303, 302]
    for response in responses:
        assert_page_headers(response)
        assert_no_store(response)
