"""The README's first steps and docs/client.md's examples, run as a reader would run them,
against a fresh `keyturn serve` in an empty folder.

A README block is run when an HTML comment ``<!-- first-steps -->`` stands right before its
```` ```sh ```` fence; a docs/client.md block when ``<!-- checked -->`` stands before its
```` ```python ```` fence. The server's address and the placeholders of the examples are
rewritten to the test's own; nothing else is.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import keyturn.client

from .cli_helpers import (
    KEYTURN,
    clean_environment,
    free_port,
    keyturn_json,
    start_server,
    stop_server,
    wait_until_ready,
)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CLIENT_DOC = ROOT / "docs" / "client.md"
PASSWORD = "correct horse battery staple 7"
README_BASE = "http://127.0.0.1:8000"


def marked_blocks(text: str, mark: str, language: str) -> list[str]:
    return re.findall(rf"<!-- {mark} -->\n```{language}\n(.*?)```", text, re.S)


def json_objects(text: str) -> list[Any]:
    """The JSON values printed one after another (curl prints no newline after a body)."""
    decoder = json.JSONDecoder()
    values: list[Any] = []
    position = 0
    while (position := _skip_space(text, position)) < len(text):
        value, position = decoder.raw_decode(text, position)
        values.append(value)
    return values


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position].isspace():
        position += 1
    return position


@dataclass
class Server:
    folder: Path
    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """What `make serve` starts: `keyturn serve` with no configuration at all."""
    folder = tmp_path_factory.mktemp("first-steps")
    port = free_port()
    # The issuer is said explicitly, so that discovery (RFC 8414 §3.3) matches on any port.
    process = start_server(cwd=folder, port=port, env={"KEYTURN_ISSUER": f"http://127.0.0.1:{port}"})
    try:
        wait_until_ready(process, port)
        yield Server(folder, port)
    finally:
        code, _, err = stop_server(process)
    assert code == 0, err
    assert "Traceback" not in err


def run_first_steps(server: Server, blocks: list[str]) -> list[str]:
    """Runs the blocks in one bash, in order (later blocks use earlier blocks' variables);
    returns each block's standard output."""
    script = ["set -euo pipefail"]
    for number, block in enumerate(blocks):
        rewritten = block.replace(README_BASE, server.base).replace(".venv/bin/keyturn", shlex.quote(KEYTURN))
        script += [f"printf '\\n@@step {number}@@\\n'", rewritten]
    result = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        cwd=server.folder,
        env=clean_environment(),
        input=f"{PASSWORD}\n{PASSWORD}\n",  # the password prompt of `users create`, and its confirmation
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"a first step failed:\n{result.stdout}\n{result.stderr}"
    outputs = re.split(r"\n@@step \d+@@\n", result.stdout)[1:]
    assert len(outputs) == len(blocks)
    return outputs


def test_readme_first_steps_reach_a_token_me_and_an_api_key(server: Server) -> None:
    text = README.read_text()
    blocks = marked_blocks(text, "first-steps", "sh")
    assert len(blocks) == 3, "the README's first steps: an account, a client credentials token, an API key"
    account, token, api_key = run_first_steps(server, blocks)

    assert "created account 1 <ann@example.com>" in account

    token_response, me = json_objects(token)
    assert token_response["access_token"].startswith("kt_at_")
    assert token_response["token_type"] == "Bearer"
    assert token_response["expires_in"] == 3600
    assert token_response["scope"] == "sms"
    assert me["success"] is True
    assert me["scope"] == "sms"
    assert isinstance(me["client_id"], str)
    assert me["client_id"]

    by_query, by_header = json_objects(api_key)
    for answer in (by_query, by_header):
        assert answer["success"] is True
        assert answer["email"] == "ann@example.com"
        assert answer["client_id"] is None


def test_readme_first_steps_links_open(server: Server) -> None:
    section = README.read_text().split("## First steps", 1)[1].split("\n## ", 1)[0]
    links = re.findall(rf"<({re.escape(README_BASE)}/[^>]*)>", section)
    assert f"{README_BASE}/signup" in links
    for link in links:
        response = httpx.get(link.replace(README_BASE, server.base), follow_redirects=True)
        assert response.status_code == 200, link
    signup = httpx.get(f"{server.base}/signup")
    assert "<form" in signup.text
    assert 'name="email"' in signup.text


# ---- docs/client.md ----


def test_client_doc_names_every_public_name_of_the_sdk() -> None:
    text = CLIENT_DOC.read_text()
    missing = [name for name in keyturn.client.__all__ if f"`{name}" not in text and f"{name}(" not in text]
    assert missing == []


def test_client_doc_examples_run_against_a_server(server: Server) -> None:
    text = CLIENT_DOC.read_text()
    blocks = marked_blocks(text, "checked", "python")
    assert len(blocks) >= 3, "the client credentials (sync and async) and API key examples"
    client = keyturn_json(
        server.folder, {}, "clients", "create", "--name", "SDK docs", "--grant-type", "client_credentials",
        "--scope", "sms", "--scope", "balance",
    )  # fmt: skip
    owner = "sdk@example.com"
    keyturn_json(server.folder, {}, "users", "create", "--email", owner, "--password", PASSWORD)
    key = keyturn_json(server.folder, {}, "api-keys", "create", "--owner", owner, "--name", "SDK docs")
    replacements = {
        "https://auth.example.com": server.base,
        "https://api.example.com": server.base,
        "CLIENT_ID": str(client["client_id"]),
        "CLIENT_SECRET": str(client["client_secret"]),
        "kt_key_...": str(key["key"]),
    }
    for block in blocks:
        code = block
        for placeholder, value in replacements.items():
            code = code.replace(placeholder, value)
        result = subprocess.run(
            [sys.executable, "-c", code], env=clean_environment(), capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, f"{block}\n{result.stderr}"
        answers = json_objects(result.stdout)
        assert answers, block
        for answer in answers:
            assert answer["success"] is True, block
