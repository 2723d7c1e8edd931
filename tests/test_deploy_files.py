"""The Dockerfile and compose.yaml (no container runtime here): the image installs Keyturn
the way the README and the Makefile do, runs as a user that is not root, checks /healthz
with the standard library; compose's nodes share one secret, database and Redis behind a
proxy, with settings Keyturn accepts in production."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from keyturn.settings import load_settings

from .cli_helpers import free_port, start_server, stop_server, wait_until_ready

ROOT = Path(__file__).resolve().parents[1]
#: What `pip install` names in a line: the package (`.` or `keyturn`) with its extra.
INSTALL = re.compile(r"pip install (?:--?\S+ )*'(?:\.|keyturn)\[(\w+)\]'")


def _instructions(text: str) -> list[tuple[str, str]]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    return [
        (keyword.upper(), rest.strip())
        for keyword, _, rest in (line.strip().partition(" ") for line in joined.splitlines() if line.strip())
    ]


def _values(instructions: list[tuple[str, str]], keyword: str) -> list[str]:
    return [rest for kw, rest in instructions if kw == keyword]


DOCKERFILE = _instructions((ROOT / "Dockerfile").read_text())


def _makefile_serve_extra() -> str:
    makefile = (ROOT / "Makefile").read_text()
    stamp = re.search(r"^serve: (\S+)", makefile, re.MULTILINE)
    assert stamp is not None
    recipe = re.search(rf"^{re.escape(stamp.group(1))}:.*\n\t(.*)", makefile, re.MULTILINE)
    assert recipe is not None
    return INSTALL.findall(recipe.group(1).replace("-e ", ""))[0]


def test_the_image_installs_the_server_extra_as_the_readme_and_makefile_do() -> None:
    assert _values(DOCKERFILE, "FROM") == ["python:3.11-slim"]
    installs = [extra for run in _values(DOCKERFILE, "RUN") for extra in INSTALL.findall(run)]
    readme = INSTALL.findall((ROOT / "README.md").read_text())
    assert installs == ["server"]
    assert "server" in readme
    assert _makefile_serve_extra() == "server"
    # What it copies is all the install reads: the project file, the readme and the source.
    assert _values(DOCKERFILE, "COPY") == ["pyproject.toml README.md ./", "src ./src"]


def test_the_image_runs_keyturn_serve_as_a_user_that_is_not_root() -> None:
    users = _values(DOCKERFILE, "USER")
    assert users == ["keyturn"]
    last_user = max(i for i, (kw, _) in enumerate(DOCKERFILE) if kw == "USER")
    assert all(kw != "RUN" for kw, _ in DOCKERFILE[last_user:])
    assert any("useradd" in run and "keyturn" in run for run in _values(DOCKERFILE, "RUN"))
    [entrypoint] = _values(DOCKERFILE, "ENTRYPOINT")
    [cmd] = _values(DOCKERFILE, "CMD")
    every_address = "0.0.0.0"  # noqa: S104 - in a container, the network is the container's own
    assert json.loads(entrypoint) + json.loads(cmd) == ["keyturn", "serve", "--host", every_address, "--port", "8000"]


def test_the_image_checks_healthz_with_the_standard_library() -> None:
    [healthcheck] = _values(DOCKERFILE, "HEALTHCHECK")
    command = json.loads(healthcheck[healthcheck.index("CMD") + len("CMD") :])
    assert command[:2] == ["python", "-c"]
    compile(command[2], "HEALTHCHECK", "exec")
    assert "http://127.0.0.1:8000/healthz" in command[2]
    assert "curl" not in healthcheck
    assert "wget" not in healthcheck


def _healthcheck_code() -> str:
    [healthcheck] = _values(DOCKERFILE, "HEALTHCHECK")
    command = json.loads(healthcheck[healthcheck.index("CMD") + len("CMD") :])
    assert command[:2] == ["python", "-c"]
    return str(command[2])


@pytest.mark.slow
def test_the_health_check_passes_on_a_running_server_and_fails_once_it_stopped(tmp_path: Path) -> None:
    port = free_port()
    code = _healthcheck_code().replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    server = start_server(cwd=tmp_path, port=port)
    try:
        wait_until_ready(server, port)
        up = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    finally:
        stop_server(server)
    assert (up.returncode, up.stderr) == (0, "")
    down = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert down.returncode == 1
    assert "Connection refused" in down.stderr


def _compose() -> dict[str, Any]:
    document = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(document, dict)
    return document


def _substituted(value: str) -> str:
    """Compose's ``${NAME:-default}``, with the default; ``${NAME:?...}`` with a made-up value."""
    value = re.sub(r"\$\{KEYTURN_SECRET:\?[^}]*\}", "s" * 40, value)
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)


def test_compose_runs_two_nodes_behind_a_proxy_on_one_postgres_and_redis() -> None:
    services = _compose()["services"]
    assert set(services) == {"postgres", "redis", "migrate", "keyturn-1", "keyturn-2", "proxy"}
    nodes = [services["keyturn-1"], services["keyturn-2"]]
    assert nodes[0] == nodes[1]
    environment = nodes[0]["environment"]
    assert services["migrate"]["environment"] == environment
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert environment["KEYTURN_SECRET"].startswith("${KEYTURN_SECRET:?")
    assert environment["KEYTURN_DATABASE_URL"].split("@")[1].startswith("postgres:5432/")
    assert environment["KEYTURN_REDIS_URL"].startswith("redis://redis:6379/")
    assert nodes[0]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert services["proxy"]["depends_on"] == {
        "keyturn-1": {"condition": "service_healthy"},
        "keyturn-2": {"condition": "service_healthy"},
    }
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "server keyturn-1:8000" in nginx
    assert "server keyturn-2:8000" in nginx
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in nginx


def test_compose_settings_are_accepted_in_production_and_believe_the_proxy_alone() -> None:
    compose = _compose()
    environment = {k: _substituted(v) for k, v in compose["services"]["keyturn-1"]["environment"].items()}
    settings = load_settings(None, environ=environment)
    assert settings.env == "production"
    assert settings.issuer == "http://localhost:8080"
    assert settings.secret == "s" * 40
    proxy_address = compose["services"]["proxy"]["networks"]["keyturn"]["ipv4_address"]
    assert settings.forwarded_allow_ips == (proxy_address,)
    subnet = compose["networks"]["keyturn"]["ipam"]["config"][0]["subnet"]
    assert proxy_address.rsplit(".", 1)[0] == subnet.rsplit(".", 1)[0]
    assert shlex.split(compose["services"]["proxy"]["ports"][0]) == ["8080:80"]
