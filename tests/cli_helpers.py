"""Running the installed ``keyturn`` command the way a user does."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

KEYTURN = str(Path(sys.executable).parent / "keyturn")


def clean_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The process environment without any KEYTURN_* setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYTURN_")}
    env.update(extra or {})
    return env


def run_keyturn(
    *args: str, cwd: Path, env: Mapping[str, str] | None = None, input: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KEYTURN, *args],
        cwd=cwd,
        env=clean_environment(env),
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(*args: str, cwd: Path, port: int, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [KEYTURN, "serve", "--port", str(port), *args],
        cwd=cwd,
        env=clean_environment(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until_ready(process: subprocess.Popen[str], port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            _, err = process.communicate()
            raise AssertionError(f"server exited with {process.returncode}: {err}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"server on port {port} did not answer within {timeout} s")


def stop_server(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    if process.poll() is None:
        process.terminate()
    try:
        out, err = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
    return process.returncode, out, err


@dataclass
class Prepared:
    """A configured (not yet started) server folder with one user, a client-credentials
    client and a confidential web client, all made with the CLI."""

    folder: Path
    env: dict[str, str]
    port: int
    user: dict[str, object]
    machine: dict[str, object]
    web: dict[str, object]

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config(self) -> Path:
        return self.folder / "keyturn.toml"

    def json(self, *args: str) -> dict[str, object]:
        """Runs a keyturn command with --json against this folder's configuration."""
        return keyturn_json(self.folder, self.env, *args, "--config", str(self.config))

    def start(self) -> subprocess.Popen[str]:
        process = start_server("--config", str(self.config), cwd=self.folder, port=self.port, env=self.env)
        wait_until_ready(process, self.port)
        return process


def keyturn_json(folder: Path, env: Mapping[str, str], *args: str) -> dict[str, object]:
    result = run_keyturn(*args, "--json", cwd=folder, env=env)
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert isinstance(payload, dict)
    return payload


def prepare_server(folder: Path, env: Mapping[str, str], *, email: str, password: str, callback: str) -> Prepared:
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    (folder / "keyturn.toml").write_text(
        f'issuer = "{issuer}"\n'
        f'database_url = "sqlite:///{folder / "keyturn.db"}"\n'
        "access_token_ttl = 3600\n"
        "[scopes]\n"
        'sms = "Send SMS messages"\n'
        'balance = "Query balance"\n',
        encoding="utf-8",
    )
    prepared = Prepared(folder, dict(env), port, {}, {}, {})
    prepared.user = prepared.json("users", "create", "--email", email, "--password", password, "--company", "Acme")
    prepared.machine = prepared.json(
        "clients", "create", "--name", "CI pipeline", "--grant-type", "client_credentials", "--scope", "sms"
    )
    prepared.web = prepared.json(
        "clients", "create", "--name", "Web app", "--redirect-uri", callback,
        "--grant-type", "authorization_code", "--grant-type", "refresh_token", "--scope", "sms", "--scope", "balance",
    )  # fmt: skip
    return prepared
