"""Browser tests: a real `keyturn serve`, a local client callback, and Debian's Chromium
driven by Playwright (never a downloaded browser). Screenshots go to test-artifacts/."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ..cli_helpers import free_port, run_keyturn, start_server, stop_server, wait_until_ready

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SECRET = "browser-test-secret-" + "b" * 30
PASSWORD = "correct horse battery"
CONFIG = """
default_scopes = ["sms"]
[scopes]
sms = "Send SMS messages"
balance = "Query balance"
analytics = "Query statistics"
"""

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@dataclass
class Callback:
    """The client application's redirect endpoint: it records what arrives."""

    url: str
    requests: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def callback() -> Iterator[Callback]:
    received: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            received.append(self.path)
            body = b"<!doctype html><title>Client app</title><h1>Back at the client</h1>"
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Callback(f"http://127.0.0.1:{server.server_address[1]}/cb", received)
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Keyturn:
    base: str
    folder: Path
    env: dict[str, str]

    def cli(self, *args: str) -> dict[str, Any]:
        result = run_keyturn(
            *args, "--config", str(self.folder / "keyturn.toml"), "--json", cwd=self.folder, env=self.env
        )
        assert result.returncode == 0, result.stderr
        payload: dict[str, Any] = json.loads(result.stdout)
        return payload


@pytest.fixture(scope="module")
def keyturn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keyturn]:
    yield from running_keyturn(tmp_path_factory, CONFIG)


def running_keyturn(tmp_path_factory: pytest.TempPathFactory, config: str) -> Iterator[Keyturn]:
    """A keyturn serve with this TOML configuration and one user, ann@example.com."""
    folder = tmp_path_factory.mktemp("keyturn")
    (folder / "keyturn.toml").write_text(config)
    port = free_port()
    env = {"KEYTURN_SECRET": SECRET, "KEYTURN_ISSUER": f"http://127.0.0.1:{port}"}
    server = start_server("--config", str(folder / "keyturn.toml"), cwd=folder, port=port, env=env)
    try:
        wait_until_ready(server, port)
        instance = Keyturn(f"http://127.0.0.1:{port}", folder, env)
        instance.cli("users", "create", "--email", "ann@example.com", "--password", PASSWORD, "--company", "Acme Inc")
        yield instance
    finally:
        stop_server(server)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Module scope: Playwright's sync API keeps an event loop running while it lives,
    # which would break later tests that start their own (asyncio.run).
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: run `make chromium` (make test does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1000, "height": 760})
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
