"""Throttling that holds under concurrency and that nobody can turn against someone else
(RFC 6749 §2.3.1, §10.10), over HTTP: sign-ins per (account, address) with the account's
slow-down and the device cookie, client authentication per (client_id, address), and a
burst of parallel guesses against a real server."""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from keyturn.core.clock import FrozenClock
from keyturn.core.login_throttle import LoginThrottle
from keyturn.core.models import Account
from keyturn.runtime import Runtime
from keyturn.settings import Settings

from ..cli_helpers import free_port, run_keyturn, start_server, stop_server, wait_until_ready
from ..helpers import add_account
from .test_authorize_http import assert_error_page, final_cookie, login_page, post_login
from .test_backchannel_http import VERIFIER, Registered, basic, code_for, register

EMAIL = "ann@example.com"
PASSWORD = "correct horse battery staple"
WRONG = "wrong password!"
REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_overrides(
        scopes={"sms": "Send SMS messages"},
        default_scopes=["sms"],
        login_failures_before_account_slowdown=3,
        login_account_slowdown_max_delay=8,
    )


@pytest.fixture
def user(runtime: Runtime) -> Account:
    return add_account(runtime, EMAIL, PASSWORD)


Browsers = Callable[[str], TestClient]


@pytest.fixture
def browsers(client: TestClient) -> Browsers:
    """Browsers of their own (cookie jar, address) on the one app."""

    def at(address: str) -> TestClient:
        # Not entered as a context manager: its lifespan would close the shared runtime.
        return TestClient(client.app, base_url=str(client.base_url), follow_redirects=False, client=(address, 50000))

    return at


def fail(browser: TestClient, email: str = EMAIL) -> httpx.Response:
    return post_login(browser, login_page(browser), email, WRONG)


# ==== sign-in ====


def test_a_successful_sign_in_gives_its_slot_back(browsers: Browsers, runtime: Runtime, user: Account) -> None:
    runtime.ctx.settings = runtime.settings.with_overrides(login_failures_before_account_slowdown=0)
    browser = browsers("198.51.100.1")
    for _ in range(4):
        assert fail(browser).status_code == 400
    for _ in range(3):
        assert post_login(browser, login_page(browser), EMAIL, PASSWORD).status_code == 303
        browser.cookies.clear()  # signed out, and stays a browser without a device cookie
    assert fail(browser).status_code == 400  # the fifth failure
    assert fail(browser).status_code == 429


def test_ipv6_addresses_of_one_64_prefix_share_their_limits(
    browsers: Browsers, runtime: Runtime, user: Account
) -> None:
    runtime.ctx.settings = runtime.settings.with_overrides(login_failures_before_account_slowdown=0)
    # A new address of the same /64 for every guess: still one source.
    statuses = [fail(browsers(f"2001:db8:1:2::{i:x}")).status_code for i in range(1, 8)]
    assert statuses == [400] * 5 + [429] * 2
    # The owner, from another /64, signs in.
    owner = browsers("2001:db8:1:3::1")
    assert post_login(owner, login_page(owner), EMAIL, PASSWORD).status_code == 303


def test_the_account_slow_down_spaces_out_attempts_from_addresses_that_failed(
    browsers: Browsers, clock: FrozenClock, user: Account
) -> None:
    a, b, c = browsers("203.0.113.1"), browsers("203.0.113.2"), browsers("203.0.113.3")
    for browser in (a, b, c):  # three failures: the threshold
        assert fail(browser).status_code == 400
    # Past it, an address that failed before gets one attempt per delay, which doubles with
    # each failure: 1, 2, 4, then the maximum of 8 s.
    for delay in (1, 2, 4, 8, 8):
        assert fail(a).status_code == 400
        refused = fail(b)
        assert_error_page(refused, 429)
        assert refused.headers["retry-after"] == str(delay)
        assert "Try again in" in refused.text
        # Even with the right password: the attempt is refused before it is checked.
        assert post_login(c, login_page(c), EMAIL, PASSWORD).status_code == 429
        clock.advance(delay)
        a, b = b, a
    # The owner, from an address with no failures, is not slowed down at all.
    owner = browsers("192.0.2.50")
    assert post_login(owner, login_page(owner), EMAIL, PASSWORD).status_code == 303


def test_the_device_cookie_exempts_the_owners_browser_from_the_slow_down(
    browsers: Browsers, runtime: Runtime, user: Account
) -> None:
    runtime.ctx.settings = runtime.settings.with_overrides(login_failures_before_account_slowdown=5)
    home = "198.51.100.7"
    owner = browsers(home)
    signed_in = post_login(owner, login_page(owner), EMAIL, PASSWORD)
    assert signed_in.status_code == 303
    value, attributes = final_cookie(signed_in, "kt_device")
    assert attributes["path"] == "/login"
    assert attributes["max-age"] == str(runtime.settings.login_device_cookie_ttl)
    assert attributes["samesite"] == "strict"
    assert "httponly" in attributes
    assert value.startswith("d1.")
    owner.cookies.delete("kt_session")

    # Someone guesses from the owner's own address (a shared NAT) and from elsewhere: the
    # address's pair limit is spent and the account is past its slow-down threshold.
    guesser = browsers(home)
    for _ in range(5):
        assert fail(guesser).status_code == 400
    assert fail(guesser).status_code == 429
    assert fail(browsers("203.0.113.9")).status_code == 400
    assert post_login(guesser, login_page(guesser), EMAIL, PASSWORD).status_code == 429

    # The owner's browser counts as a source of its own: it signs in.
    again = post_login(owner, login_page(owner), EMAIL, PASSWORD)
    assert again.status_code == 303
    renewed, _ = final_cookie(again, "kt_device")
    assert renewed != value  # a fresh cookie at each sign-in
    owner.cookies.delete("kt_session")

    # Its own failures still count, per (account, device), with the same limit.
    for _ in range(5):
        assert fail(owner).status_code == 400
    assert fail(owner).status_code == 429


def test_a_device_cookie_helps_only_its_own_account_and_only_if_genuine(
    browsers: Browsers, runtime: Runtime, user: Account
) -> None:
    runtime.ctx.settings = runtime.settings.with_overrides(login_failures_before_account_slowdown=0)
    add_account(runtime, "bob@example.com", "another good passphrase")
    owner = browsers("198.51.100.7")
    cookie, _ = final_cookie(post_login(owner, login_page(owner), EMAIL, PASSWORD), "kt_device")
    owner.cookies.clear()
    version, expires, nonce, signature = cookie.split(".")
    forged = ".".join((version, str(int(expires) + 1), nonce, signature))
    cases = [
        ("192.0.2.1", cookie, EMAIL, PASSWORD, 303),  # genuine: its failures are the device's own
        ("192.0.2.2", cookie, "bob@example.com", "another good passphrase", 429),  # another account
        ("192.0.2.3", forged, EMAIL, PASSWORD, 429),  # tampered with
    ]
    for address, value, email, password, then in cases:
        holder = browsers(address)
        holder.cookies.set("kt_device", value, path="/login")
        for _ in range(5):
            assert fail(holder, email).status_code == 400
        # Another browser at the same address: refused only if the failures counted there.
        plain = browsers(address)
        assert post_login(plain, login_page(plain), email, password).status_code == then


def test_device_cookies_expire_and_can_be_turned_off(clock: FrozenClock, runtime: Runtime) -> None:
    throttle = LoginThrottle(runtime.ctx)
    cookie = throttle.device_cookie(EMAIL)
    assert cookie is not None
    assert throttle.device(cookie, EMAIL.upper()) is not None
    assert throttle.device(cookie, "bob@example.com") is None
    assert throttle.device("d1.99999999999.x.y", EMAIL) is None
    clock.advance(runtime.settings.login_device_cookie_ttl)
    assert throttle.device(cookie, EMAIL) is None
    runtime.ctx.settings = runtime.settings.with_overrides(login_device_cookie_ttl=0)
    assert throttle.device_cookie(EMAIL) is None


# ==== client authentication ====


@pytest.fixture
def developer(runtime: Runtime) -> Account:
    return add_account(runtime, "dev@example.com")


def test_wrong_secrets_for_a_public_client_id_do_not_refuse_the_client(
    browsers: Browsers, runtime: Runtime, developer: Account
) -> None:
    runtime.ctx.settings = runtime.settings.with_overrides(rate_limit_token=10)
    public = register(runtime, developer, name="Native app", confidential=False)
    attacker = browsers("203.0.113.66")
    statuses = [
        attacker.post("/oauth/token", data=public.post(grant_type="client_credentials", client_secret="guess"))
        for _ in range(120)
    ]
    limit = runtime.settings.client_auth_failures_per_client_and_address
    assert [r.status_code for r in statuses] == [401] * limit + [429] * (120 - limit)
    assert {r.json()["error"] for r in statuses} == {"invalid_client", "temporarily_unavailable"}
    # Anyone can authenticate as a public client (there is nothing to prove): its request
    # rate is counted per address, so bogus requests elsewhere do not use it up.
    flooder = browsers("203.0.113.67")
    bogus = [
        flooder.post("/oauth/token", data=public.post(grant_type="authorization_code", code="kt_ac_x")).status_code
        for _ in range(11)
    ]
    assert bogus == [400] * 10 + [429]
    # The real client, elsewhere, exchanges its code.
    app = browsers("198.51.100.20")
    data = {"grant_type": "authorization_code", "code": code_for(runtime, public, developer), "code_verifier": VERIFIER}
    answer = app.post("/oauth/token", data=public.post(**data))
    assert answer.status_code == 200, answer.text


def test_wrong_secrets_for_a_confidential_client_refuse_only_the_guessing_address(
    browsers: Browsers, clock: FrozenClock, runtime: Runtime, developer: Account
) -> None:
    runtime.ctx.settings = runtime.settings.with_overrides(
        rate_limit_token=5, client_auth_failures_per_client_and_address=3
    )
    service = register(runtime, developer, name="Service", grant_types=["client_credentials"], redirect_uris=[])
    guess = {"authorization": basic(service.id, "kt_cs_guess")}
    attacker, real = browsers("203.0.113.66"), browsers("198.51.100.20")
    for path, data in (
        ("/oauth/token", {"grant_type": "client_credentials"}),
        ("/oauth/introspect", {"token": "x"}),
        ("/oauth/revoke", {"token": "x"}),
    ):
        statuses = [attacker.post(path, data=data, headers=guess).status_code for _ in range(4)]
        # The failures are counted across the three endpoints.
        assert statuses == ([401, 401, 401, 429] if path == "/oauth/token" else [429] * 4)
    refused = attacker.post("/oauth/token", data={"grant_type": "client_credentials"}, headers=service.basic())
    assert (refused.status_code, refused.json()["error"], refused.headers["retry-after"]) == (
        429,
        "temporarily_unavailable",
        "60",
    )
    # The client itself, elsewhere, still has its whole rate: its successes alone count.
    assert [client_credentials(real, service) for _ in range(6)] == [200] * 5 + [429]
    clock.advance(60)
    assert client_credentials(attacker, service) == 200


def test_client_authentication_failures_count_per_ipv6_64_prefix(
    browsers: Browsers, runtime: Runtime, developer: Account
) -> None:
    runtime.ctx.settings = runtime.settings.with_overrides(client_auth_failures_per_client_and_address=3)
    service = register(runtime, developer, name="Service", grant_types=["client_credentials"], redirect_uris=[])
    guess = {"authorization": basic(service.id, "kt_cs_guess")}
    statuses = [
        browsers(f"2001:db8:1:2::{i:x}").post("/oauth/token", data={"grant_type": "client_credentials"}, headers=guess)
        for i in range(1, 6)
    ]
    assert [r.status_code for r in statuses] == [401, 401, 401, 429, 429]
    assert client_credentials(browsers("2001:db8:1:3::1"), service) == 200


def client_credentials(browser: TestClient, service: Registered) -> int:
    return browser.post("/oauth/token", data={"grant_type": "client_credentials"}, headers=service.basic()).status_code


# ==== a real server, a burst of parallel guesses ====


@pytest.mark.slow
@pytest.mark.parametrize("redis", [False, True], ids=["local", "redis"])
def test_parallel_wrong_passwords_reach_the_password_check_at_most_the_limit(tmp_path: Path, redis: bool) -> None:
    email = f"ann-{secrets.token_hex(4)}@example.com"  # the Redis keys are this run's own
    env = {
        "KEYTURN_SECRET": "burst-secret-" + "b" * 30,
        # Only the per-(account, address) limit: others' runs on a shared Redis add to the
        # per-address count.
        "KEYTURN_LOGIN_FAILURES_PER_ADDRESS": "0",
    }
    if redis:
        env["KEYTURN_REDIS_URL"] = REDIS
    created = run_keyturn("users", "create", "--email", email, "--password", PASSWORD, cwd=tmp_path, env=env)
    assert created.returncode == 0, created.stderr
    port = free_port()
    server = start_server(cwd=tmp_path, port=port, env=env)
    try:
        wait_until_ready(server, port)
        wrong, right, after, metrics = asyncio.run(_burst(f"http://127.0.0.1:{port}", email))
    finally:
        stop_server(server)
    # Exactly five wrong passwords were checked; the other 25 were refused unchecked.
    assert sorted(r.status_code for r in wrong) == [400] * 5 + [429] * 25
    assert "keyturn_login_failures_total 5.0" in metrics
    # The right password, sent in the burst once the five were spent, does not sign in.
    for response in [*right, after]:
        assert response.status_code == 429
        assert "kt_session" not in response.headers.get("set-cookie", "")
        assert int(response.headers["retry-after"]) > 800


async def _burst(base: str, email: str) -> tuple[list[httpx.Response], list[httpx.Response], httpx.Response, str]:
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        page = await http.get("/login")
        found = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
        assert found is not None
        csrf = found.group(1)

        async def attempt(password: str) -> httpx.Response:
            return await http.post(
                "/login", data={"csrf": csrf, "next": "/account", "email": email, "password": password}
            )

        wrong = [asyncio.ensure_future(attempt(WRONG)) for _ in range(30)]
        checked = 0
        for finished in asyncio.as_completed(wrong):
            checked += (await finished).status_code == 400
            if checked == 5:
                break
        # The limit is spent (failures keep their slots); the burst goes on.
        right = await asyncio.gather(*(attempt(PASSWORD) for _ in range(5)))
        await asyncio.gather(*wrong)
        after = await attempt(PASSWORD)
        metrics = (await http.get("/metrics")).text
    return [task.result() for task in wrong], list(right), after, metrics


# ==== a real server: whose X-Forwarded-For is believed ====


def _sign_in_failures(base: str, forwarded_for: list[str]) -> list[int]:
    """One wrong password per X-Forwarded-For value, each from a browser of its own."""
    statuses = []
    for address in forwarded_for:
        with httpx.Client(base_url=base, headers={"x-forwarded-for": address}) as browser:
            found = re.search(r'name="csrf" value="([0-9a-f]+)"', browser.get("/login").text)
            assert found is not None
            data = {"csrf": found.group(1), "email": EMAIL, "password": WRONG}
            statuses.append(browser.post("/login", data=data).status_code)
    return statuses


@pytest.mark.slow
@pytest.mark.parametrize(
    ("allowed", "believed"),
    [("127.0.0.1", True), ("192.0.2.1", False)],
    ids=["from-an-allowed-proxy", "from-anyone-else"],
)
def test_x_forwarded_for_names_the_address_only_when_an_allowed_proxy_sends_it(
    tmp_path: Path, allowed: str, believed: bool
) -> None:
    env = {"KEYTURN_SECRET": "forwarded-secret-" + "f" * 30, "KEYTURN_FORWARDED_ALLOW_IPS": allowed}
    port = free_port()
    server = start_server(cwd=tmp_path, port=port, env=env)
    try:
        wait_until_ready(server, port)
        base = f"http://127.0.0.1:{port}"
        # Five failures "from" 203.0.113.1, then one each "from" two more addresses.
        statuses = _sign_in_failures(base, ["203.0.113.1"] * 5 + ["203.0.113.1", "203.0.113.2"])
    finally:
        stop_server(server)
    if believed:
        # The proxy's word is the address: 203.0.113.1 is refused, 203.0.113.2 is not.
        assert statuses == [400] * 5 + [429, 400]
    else:
        # Anyone else's header is ignored: all seven came from the one peer, whatever they said.
        assert statuses == [400] * 5 + [429, 429]


@pytest.mark.slow
def test_serve_warns_that_any_caller_may_forge_its_address_when_every_proxy_is_believed(tmp_path: Path) -> None:
    port = free_port()
    server = start_server(cwd=tmp_path, port=port, env={"KEYTURN_FORWARDED_ALLOW_IPS": "*"})
    try:
        wait_until_ready(server, port)
    finally:
        code, _, err = stop_server(server)
    assert code == 0, err
    assert 'keyturn: warning: forwarded_allow_ips = "*" lets every caller choose its own address' in err
