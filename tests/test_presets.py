"""The platform presets in examples/platforms/ start a server shaped like each seed."""

from __future__ import annotations

import tomllib
from pathlib import Path

import httpx
import pytest

from keyturn.settings import load_settings

from .cli_helpers import free_port, start_server, stop_server, wait_until_ready

PRESETS = Path(__file__).resolve().parents[1] / "examples" / "platforms"
EXPECTED = {
    "onlinesim": {"error_style": "onlinesim", "access_token_ttl": 3600, "scope": "rent-scope"},
    "sms77": {"error_style": "rfc6750", "access_token_ttl": 3600, "scope": "validate_for_voice"},
    "sinch": {"error_style": "rfc6750", "access_token_ttl": 3600, "scope": None},
    "sipsim": {"error_style": "rfc6750", "access_token_ttl": 7200, "scope": "phones.write"},
}


def test_every_preset_is_listed() -> None:
    assert sorted(p.stem for p in PRESETS.glob("*.toml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_preset_settings(name: str) -> None:
    settings = load_settings(PRESETS / f"{name}.toml", environ={})
    expected = EXPECTED[name]
    assert (settings.error_style, settings.access_token_ttl) == (expected["error_style"], expected["access_token_ttl"])
    if expected["scope"] is not None:
        assert expected["scope"] in settings.scopes


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_server_starts_with_each_preset(tmp_path: Path, name: str) -> None:
    port = free_port()
    config = PRESETS / f"{name}.toml"
    server = start_server("--config", str(config), cwd=tmp_path, port=port, env={"KEYTURN_SECRET": "p" * 40})
    try:
        wait_until_ready(server, port)
        metadata = httpx.get(f"http://127.0.0.1:{port}/.well-known/oauth-authorization-server").json()
        me = httpx.get(f"http://127.0.0.1:{port}/me", headers={"authorization": "Bearer kt_at_wrong"})
    finally:
        stop_server(server)
    scopes = tomllib.loads(config.read_text()).get("scopes", {})
    assert metadata.get("scopes_supported", []) == list(scopes)
    assert me.status_code == 401
    if EXPECTED[name]["error_style"] == "onlinesim":
        assert me.json() == {"response": "ERROR_WRONG_KEY"}
    else:
        assert me.json()["error"] == "invalid_token"
