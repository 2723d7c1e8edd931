"""Installs: ``pip install keyturn`` brings the SDK and the resource toolkit without the
server's dependencies; the ``keyturn`` command then says to install ``keyturn[server]``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from keyturn._command import INSTALL_HINT, SERVER_MODULES

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

#: Distributions whose import name differs from their project name.
IMPORT_NAMES = {"argon2-cffi": "argon2", "pyjwt": "jwt", "prometheus-client": "prometheus_client"}
SERVER_ONLY = (
    "sqlalchemy",
    "starlette",
    "uvicorn",
    "argon2",
    "alembic",
    "psycopg",
    "redis",
    "click",
    "jinja2",
    "prometheus_client",
)


def _clean_environment() -> dict[str, str]:
    """The fresh venv sees only what is installed in it: not the PYTHONPATH the suite runs with."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}


def _project(requirement: str) -> str:
    return re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower()


def _import_name(requirement: str) -> str:
    name = _project(requirement)
    return IMPORT_NAMES.get(name, name)


def test_the_command_checks_for_every_module_of_the_server_extra() -> None:
    server = [r for r in PYPROJECT["project"]["optional-dependencies"]["server"] if "sys_platform" not in r]
    assert sorted(_import_name(r) for r in server) == sorted(SERVER_MODULES)


def test_the_light_install_names_no_server_dependency_and_dev_includes_the_server() -> None:
    base = {_import_name(r) for r in PYPROJECT["project"]["dependencies"]}
    assert base == {"anyio", "cryptography", "httpx", "jwt"}
    assert base.isdisjoint(SERVER_ONLY)
    assert "keyturn[server]" in PYPROJECT["project"]["optional-dependencies"]["dev"]
    assert PYPROJECT["project"]["scripts"]["keyturn"] == "keyturn._command:main"


@pytest.mark.slow
def test_the_wheel_installs_the_sdk_and_the_toolkit_without_the_server(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(wheels), str(ROOT)],
        check=True,
        timeout=120,
    )
    [wheel] = wheels.glob("keyturn-*.whl")
    env = _clean_environment()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=60, env=env)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(wheel)], check=True, timeout=180, env=env)

    code = (
        "import importlib.util, json, keyturn.client, keyturn.resource;"
        f"print(json.dumps([m for m in {list(SERVER_ONLY)!r} if importlib.util.find_spec(m)]))"
    )
    imported = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == "[]"

    command = subprocess.run(
        [str(venv / "bin" / "keyturn"), "--help"], capture_output=True, text=True, timeout=60, env=env
    )
    assert command.returncode == 2
    assert command.stdout == ""
    lines = command.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].endswith(INSTALL_HINT)
    assert INSTALL_HINT == "pip install 'keyturn[server]'"
