"""Keyturn as the benchmark sees it: its settings, its clients and credentials, a signed-in
user with remembered consent, and pre-generated refresh tokens.

Everything is made the way an operator and a user make it: the ``keyturn`` command for
the account, clients and API key, the /login form and the consent page for the user's
session and consent. Only the authorization codes behind the refresh tokens are made
in-process (``keyturn.core.codes.issue_code`` on the same database and secret).
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from .processes import BenchError, Processes, Server, free_port, run_wrk_until_done

KEYTURN = str(Path(sys.executable).parent / "keyturn")
USER_EMAIL = "bench@keyturn.local"
REDIRECT_URI = "http://127.0.0.1:9/callback"
SCOPES = {"sms": "Send SMS messages", "balance": "Query the account balance"}


@dataclass(frozen=True)
class Client:
    client_id: str
    client_secret: str

    @property
    def basic(self) -> str:
        pair = f"{quote(self.client_id, safe='')}:{quote(self.client_secret, safe='')}"
        return "Basic " + base64.b64encode(pair.encode()).decode()


#: Codes issued, then exchanged, per round of :meth:`KeyturnFixture.refresh_tokens`.
CODES_PER_ROUND = 10_000


def settings_environment(database_url: str, port: int, secret: str) -> dict[str, str]:
    """The process environment of every ``keyturn`` process of the run: no other
    KEYTURN_* variable, the rate limits off (they would refuse a benchmark's load), and
    housekeeping off (so that no purge runs during a measurement)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYTURN_")}
    env.update(
        {
            "KEYTURN_DATABASE_URL": database_url,
            "KEYTURN_SECRET": secret,
            "KEYTURN_ISSUER": f"http://127.0.0.1:{port}",
            "KEYTURN_RATE_LIMIT_TOKEN": "0",
            "KEYTURN_RATE_LIMIT_INTROSPECT": "0",
            "KEYTURN_RATE_LIMIT_REVOKE": "0",
            "KEYTURN_RATE_LIMIT_API_KEY": "0",
            "KEYTURN_PURGE_INTERVAL": "0",
        }
    )
    for name, description in SCOPES.items():
        env[f"KEYTURN_SCOPES__{name.upper()}"] = description
    return env


class KeyturnFixture:
    def __init__(self, processes: Processes, database_url: str, work_dir: Path) -> None:
        self.processes = processes
        self.database_url = database_url
        self.work_dir = work_dir
        self.port = free_port()
        self.env = settings_environment(database_url, self.port, secrets.token_urlsafe(32))
        self.password = secrets.token_urlsafe(16)
        self.account_id = 0
        self.cc_opaque = self.cc_jwt = self.resource_server = self.web = Client("", "")
        self.api_key = ""
        self.session_cookie = ""

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ---- the keyturn command ----

    def cli(self, *args: str) -> dict[str, Any]:
        try:
            completed = subprocess.run(
                [KEYTURN, *args],
                env=self.env,
                cwd=self.work_dir,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise BenchError(f"keyturn {args[0]} did not finish within 120 s") from None
        if completed.returncode != 0:
            raise BenchError(f"keyturn {' '.join(args[:2])} failed: {completed.stderr.strip()}")
        if "--json" not in args:
            return {}
        result: dict[str, Any] = json.loads(completed.stdout)
        return result

    def _client(self, *args: str) -> Client:
        created = self.cli("clients", "create", *args, "--json")
        return Client(created["client_id"], created["client_secret"])

    def create_credentials(self) -> None:
        self.cli("db", "upgrade")
        user = self.cli("users", "create", "--email", USER_EMAIL, "--password", self.password, "--json")
        self.account_id = int(user["id"])
        cc = ("--grant-type", "client_credentials", "--scope", "sms", "--scope", "balance")
        self.cc_opaque = self._client("--name", "Bench CC opaque", *cc, "--token-format", "opaque")
        self.cc_jwt = self._client("--name", "Bench CC JWT", *cc, "--token-format", "jwt")
        self.resource_server = self._client(
            "--name", "Bench resource server", "--resource-server", "--grant-type", "client_credentials"
        )
        self.web = self._client(
            "--name",
            "Bench web app",
            "--redirect-uri",
            REDIRECT_URI,
            "--grant-type",
            "authorization_code",
            "--grant-type",
            "refresh_token",
            "--scope",
            "sms",
            "--owner",
            USER_EMAIL,
        )
        self.api_key = self.cli("api-keys", "create", "--owner", USER_EMAIL, "--name", "bench", "--json")["key"]

    # ---- the server ----

    def start(self) -> Server:
        return self.processes.start_server(
            "keyturn",
            [KEYTURN, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            port=self.port,
            env=self.env,
            cwd=self.work_dir,
            ready_path="/healthz",
        )

    # ---- a signed-in user with remembered consent ----

    @property
    def authorize_path(self) -> str:
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.web.client_id,
                "redirect_uri": REDIRECT_URI,
                "scope": "sms",
                "state": "bench",
            }
        )
        return f"/oauth/authorize?{query}"

    def sign_in_and_consent(self, server: Server) -> None:
        """Signs in once through /login and authorizes the web app once through the
        consent page, so that later authorization requests redirect at once."""
        with httpx.Client(base_url=server.base, timeout=30) as browser:
            page = browser.get("/login")
            response = browser.post(
                "/login",
                data={
                    "csrf": _hidden(page.text, "csrf"),
                    "next": "/account",
                    "email": USER_EMAIL,
                    "password": self.password,
                },
            )
            if response.status_code != 303 or "kt_session" not in browser.cookies:
                raise BenchError(f"signing in failed: {response.status_code} {response.text[:200]}")
            self.session_cookie = f"kt_session={browser.cookies['kt_session']}"
            consent = browser.get(self.authorize_path)
            if consent.status_code != 200:
                raise BenchError(f"no consent page: {consent.status_code} {consent.text[:200]}")
            form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', consent.text))
            form = {name: _unescape(value) for name, value in form.items()}
            decided = browser.post("/oauth/authorize", data={**form, "granted_scope": "sms", "decision": "authorize"})
            if decided.status_code != 303 or "code=" not in decided.headers.get("location", ""):
                raise BenchError(f"consent failed: {decided.status_code} {decided.text[:200]}")
            again = browser.get(self.authorize_path)
            if again.status_code != 302:
                raise BenchError(f"consent is not remembered: {again.status_code} {again.text[:200]}")

    # ---- tokens ----

    def access_token(self, server: Server, client: Client, scope: str = "sms") -> str:
        response = httpx.post(
            server.base + "/oauth/token",
            data={"grant_type": "client_credentials", "scope": scope},
            headers={"Authorization": client.basic},
            timeout=30,
        )
        if response.status_code != 200:
            raise BenchError(f"no access token: {response.status_code} {response.text[:200]}")
        token: str = response.json()["access_token"]
        return token

    def issue_codes(self, count: int) -> list[str]:
        """Authorization codes for the web app and the bench user, made in-process."""
        from keyturn.core.codes import issue_code
        from keyturn.runtime import open_runtime
        from keyturn.settings import load_settings

        runtime = open_runtime(load_settings(None, environ=self.env), migrate=False)
        try:
            client = runtime.store.get_client(self.web.client_id)
            if client is None:
                raise BenchError("the web app client is gone")
            return [
                issue_code(runtime.ctx, client, account_id=self.account_id, scopes=("sms",), redirect_uri=None)
                for _ in range(count)
            ]
        finally:
            runtime.close()

    def refresh_tokens(
        self, server: Server, count: int, work_dir: Path, *, load_cpu: int | None, connections: int
    ) -> tuple[list[str], float]:
        """``count`` fresh refresh tokens, each from its own authorization code exchanged
        at the token endpoint (by wrk), and how many exchanges that made per second.
        Codes are issued and exchanged CODES_PER_ROUND at a time: an authorization code
        lives 60 s, and 70,000 codes issued at once outlived that before wrk reached the
        last of them (PostgreSQL, 2,800 exchanges/s)."""
        tokens: list[str] = []
        exchanging = 0.0
        for offset in range(0, count, CODES_PER_ROUND):
            more, seconds = self._exchange_codes(
                server, min(CODES_PER_ROUND, count - offset), work_dir, load_cpu=load_cpu, connections=connections
            )
            tokens += more
            exchanging += seconds
        return tokens, (count / exchanging if exchanging else 0.0)

    def _exchange_codes(
        self, server: Server, count: int, work_dir: Path, *, load_cpu: int | None, connections: int
    ) -> tuple[list[str], float]:
        """``count`` refresh tokens from as many new codes, and the seconds the exchanges took."""
        codes = self.issue_codes(count)
        stem = f"exchange-{secrets.token_hex(4)}"
        codes_file, out_file = work_dir / f"{stem}-codes.txt", work_dir / f"{stem}-tokens.txt"
        codes_file.write_text("\n".join(codes) + "\n")
        marker = out_file.with_name(out_file.name + ".done")
        started = time.monotonic()
        run_wrk_until_done(
            server.base + "/oauth/token",
            "exchange.lua",
            marker,
            timeout=60 + count / 50,
            connections=connections,
            load_cpu=load_cpu,
            env={"BENCH_CODES": str(codes_file), "BENCH_OUT": str(out_file), "BENCH_AUTH": self.web.basic},
        )
        elapsed = time.monotonic() - started
        failures = int(marker.read_text().strip() or "0")
        tokens = [line for line in out_file.read_text().splitlines() if line]
        if failures or len(tokens) != count:
            raise BenchError(f"exchanging {count} codes gave {len(tokens)} refresh tokens ({failures} failures)")
        return tokens, elapsed


def _hidden(page: str, name: str) -> str:
    found = re.search(rf'<input type="hidden" name="{name}" value="([^"]*)"', page)
    if found is None:
        raise BenchError(f"no {name} field on the page")
    return _unescape(found.group(1))


def _unescape(value: str) -> str:
    return html.unescape(value)
