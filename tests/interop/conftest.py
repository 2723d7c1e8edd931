"""A real `keyturn serve` for the interop tests, set up with the `keyturn` command as an
operator would, and a scripted browser that signs the user in and approves consent over
plain HTTP (GET /login, POST the form with its hidden csrf; then the consent form)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin

import httpx
import pytest

from ..cli_helpers import prepare_server, stop_server

ENV = {"KEYTURN_SECRET": "interop-secret-" + "i" * 40}
EMAIL = "ann@example.com"
PASSWORD = "correct horse battery staple"
CALLBACK = "https://app.example.com/cb"
#: A native app's loopback redirect URI (RFC 8252 §7.3).
NATIVE_CALLBACK = "http://127.0.0.1:8765/callback"


@dataclass(frozen=True)
class Server:
    issuer: str
    user_id: int
    #: client_credentials only, scope sms.
    machine_id: str
    machine_secret: str
    #: authorization_code + refresh_token, scopes sms and balance, redirect URI CALLBACK.
    web_id: str
    web_secret: str
    #: public (no secret, PKCE), authorization_code + refresh_token, redirect URI NATIVE_CALLBACK.
    native_id: str

    @property
    def token_endpoint(self) -> str:
        return self.issuer + "/oauth/token"

    @property
    def authorization_endpoint(self) -> str:
        return self.issuer + "/oauth/authorize"

    @property
    def revocation_endpoint(self) -> str:
        return self.issuer + "/oauth/revoke"

    @property
    def me(self) -> str:
        return self.issuer + "/me"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    prepared = prepare_server(
        tmp_path_factory.mktemp("keyturn-interop"), ENV, email=EMAIL, password=PASSWORD, callback=CALLBACK
    )
    user, machine, web = prepared.user, prepared.machine, prepared.web
    issuer = prepared.issuer
    native = prepared.json(
        "clients",
        "create",
        "--name",
        "Desktop app",
        "--public",
        "--redirect-uri",
        NATIVE_CALLBACK,
        "--scope",
        "sms",
        "--scope",
        "balance",
    )
    process = prepared.start()
    try:
        yield Server(
            issuer=issuer,
            user_id=int(str(user["id"])),
            machine_id=str(machine["client_id"]),
            machine_secret=str(machine["client_secret"]),
            web_id=str(web["client_id"]),
            web_secret=str(web["client_secret"]),
            native_id=str(native["client_id"]),
        )
    finally:
        code, _, err = stop_server(process)
    assert code == 0, err
    assert "Traceback" not in err


class _Form(HTMLParser):
    """What a browser would submit from a page's (one) form: hidden inputs and ticked,
    enabled checkboxes."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, list[str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "form":
            self.action = attributes.get("action")
        if tag != "input" or not attributes.get("name") or "disabled" in attributes:
            return
        kind = attributes.get("type")
        if kind == "hidden" or (kind == "checkbox" and "checked" in attributes):
            self.fields.setdefault(str(attributes["name"]), []).append(attributes.get("value") or "")


def _form(html: str) -> _Form:
    parser = _Form()
    parser.feed(html)
    return parser


def sign_in_and_consent(issuer: str, authorization_url: str) -> str:
    """What the user does in the browser, from the client's authorization URL to the
    redirect back to the client; returns that callback URL (which no one serves)."""
    with httpx.Client(base_url=issuer) as browser:
        to_login = browser.get(authorization_url)
        assert to_login.status_code == 303, to_login.text
        login_page = browser.get(to_login.headers["location"])
        assert login_page.status_code == 200, login_page.text
        login = _form(login_page.text)
        assert login.action == "/login"
        signed_in = browser.post("/login", data={**login.fields, "email": EMAIL, "password": PASSWORD})
        assert signed_in.status_code == 303, signed_in.text
        consent_page = browser.get(signed_in.headers["location"])
        if consent_page.status_code == 302:  # consent given before is remembered
            return urljoin(str(consent_page.url), consent_page.headers["location"])
        assert consent_page.status_code == 200, consent_page.text
        consent = _form(consent_page.text)
        assert consent.action == "/oauth/authorize"
        approved = browser.post("/oauth/authorize", data={**consent.fields, "decision": "authorize"})
        assert approved.status_code == 303, approved.text
        return urljoin(str(approved.url), approved.headers["location"])
