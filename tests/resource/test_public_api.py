"""keyturn.resource's public names, and what importing it loads: nothing of Keyturn's
server side, no ORM, no server, no web framework."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import keyturn.resource

PACKAGE = Path(keyturn.resource.__file__).parent
SERVER_SIDE = ("keyturn.core", "keyturn.store", "keyturn.web", "keyturn.settings", "keyturn.runtime", "keyturn.tokens")
FORBIDDEN = ("sqlalchemy", "alembic", "psycopg", "uvicorn", "starlette", "jinja2", "argon2", "fastapi", "flask")


def test_public_names() -> None:
    assert len(set(keyturn.resource.__all__)) == len(keyturn.resource.__all__)
    assert set(keyturn.resource.__all__) == {
        "DEFAULT_QUERY_PARAMETERS",
        "PRINCIPAL_KEY",
        "AuthError",
        "AuthServerUnavailable",
        "Clock",
        "ErrorStyle",
        "InsufficientScope",
        "InvalidRequest",
        "InvalidToken",
        "KeyturnMiddleware",
        "KeyturnWSGIMiddleware",
        "MissingCredential",
        "Principal",
        "Verifier",
        "principal_of",
        "protect_wsgi",
        "require_scopes",
    }
    for name in keyturn.resource.__all__:
        assert getattr(keyturn.resource, name) is not None


def test_modules_are_private() -> None:
    assert sorted(p.name for p in PACKAGE.glob("*.py") if not p.name.startswith("_")) == []


def test_importing_loads_no_server_side_framework_or_orm() -> None:
    code = "import sys, json, keyturn.resource; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(result.stdout)
    assert [m for m in loaded if m.startswith(SERVER_SIDE) or m == "keyturn.cli"] == []
    assert [m for m in loaded if m.split(".")[0] in FORBIDDEN] == []
    assert "keyturn.resource._verifier" in loaded


def test_source_imports_nothing_of_the_server_side() -> None:
    imported: set[str] = set()
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module)
    third_party = {name.split(".")[0] for name in imported} - set(sys.stdlib_module_names)
    # starlette: only inside require_scopes (and for type checking).
    assert third_party == {"anyio", "httpx", "jwt", "starlette"}
    assert [n for n in imported if n.startswith(SERVER_SIDE)] == []
